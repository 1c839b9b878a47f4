//! The conformance suite on local disk, under a fresh temp folder per test.

use std::sync::Arc;

use aft_vfs::Vfs;
use aft_vfs::local::LocalFs;

aft_vfs::conformance_suite!(async || -> Arc<dyn Vfs> {
    // Leaked on purpose: the folder must outlive the test body; each case cleans its own
    // subfolder and the OS temp cleaner takes the rest.
    let root = tempfile::tempdir().expect("temp dir").keep();
    Arc::new(LocalFs::new(root)) as Arc<dyn Vfs>
});
