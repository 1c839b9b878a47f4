//! What the property tests of aft-vfs and aft-store (`tests/fuzz_parsers.rs` in each) share:
//! reading a committed corpus and the proptest configuration. aft-store includes this file
//! with `#[path = "../../aft-vfs/tests/fuzz_support/mod.rs"]`; `CARGO_MANIFEST_DIR` is the
//! including crate's, so each reads its own `tests/corpus`.

use std::path::{Path, PathBuf};

use proptest::prelude::ProptestConfig;

/// The files of corpus `name` (`tests/corpus/NAME` of the crate under test), sorted; an
/// empty or missing corpus fails the test.
pub fn corpus(name: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus {}", dir.display());
    files
}

/// `cases` per property, or `PROPTEST_CASES` for a longer run by hand.
pub fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(cases),
        // Failures are kept by hand in tests/corpus, with a name saying what they show.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}
