//! Every ```js example in docs/syncjs.md runs and succeeds, so the reference cannot drift
//! from the engine. (```text blocks are shown, not run: they block or fail on purpose.)

use std::collections::BTreeMap;
use std::sync::Arc;

use aft_engine::{HaltFlag, JobScope, JobSpec, Limits, LogCollector, MemoryHost, Outcome, run_job};

fn js_blocks(markdown: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (n, line) in markdown.lines().enumerate() {
        match (&mut current, line.trim_start()) {
            (None, "```js") => current = Some((n + 1, String::new())),
            (Some(_), "```") => blocks.push(current.take().unwrap()),
            (Some((_, body)), _) => {
                body.push_str(line);
                body.push('\n');
            }
            _ => {}
        }
    }
    blocks
}

#[test]
fn syncjs_reference_examples_run() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/syncjs.md");
    let markdown = std::fs::read_to_string(path).unwrap();
    let blocks = js_blocks(&markdown);
    assert!(
        blocks.len() >= 4,
        "expected the reference's examples, found {}",
        blocks.len()
    );
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for (line, source) in blocks {
        let log = LogCollector::new();
        let scope = JobScope {
            host: Arc::new(MemoryHost::new().with_secret("PartnerToken", "t0ken")),
            log: log.sink(),
            halt: HaltFlag::new(),
            tokio: tokio.handle().clone(),
        };
        let spec = JobSpec {
            name: format!("syncjs.md:{line}"),
            source,
            params: BTreeMap::from([("destination".to_string(), "/archive/2026".to_string())]),
        };
        let outcome = run_job(spec, scope, Limits::default());
        assert_eq!(
            outcome,
            Outcome::Succeeded,
            "example at docs/syncjs.md:{line}: {}",
            log.text()
        );
    }
}
