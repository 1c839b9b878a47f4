//! A dry run through `run_job`: every host wrapper on the way passes the dry run on, so the
//! clients and local file calls record instead of changing the disk.

use std::collections::BTreeMap;
use std::sync::Arc;

use aft_engine::api::dry_run::DryRunHost;
use aft_engine::{HaltFlag, JobScope, JobSpec, Limits, LogCollector, MemoryHost, run_job};
use aft_vfs::dry_run::{Action, DryRun};

#[test]
fn a_dry_run_changes_nothing_on_disk_and_plans_everything() {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let d = tempfile::tempdir().unwrap();
    let root = d.path().to_str().unwrap().to_string();
    std::fs::create_dir_all(d.path().join("src/sub")).unwrap();
    std::fs::write(d.path().join("src/a.txt"), "alpha").unwrap();
    std::fs::write(d.path().join("src/sub/b.txt"), "beta").unwrap();
    std::fs::create_dir_all(d.path().join("dst/old")).unwrap();
    std::fs::write(d.path().join("dst/stale.txt"), "stale").unwrap();
    std::fs::write(d.path().join("dst/old/x.txt"), "x").unwrap();
    let before = tree(d.path());

    let run = DryRun::new();
    let log = LogCollector::new();
    let scope = JobScope {
        host: Arc::new(DryRunHost::new(
            Arc::new(MemoryHost::new().with_secret("deploy-token", "tok-5ecret")),
            run.clone(),
        )),
        log: log.sink(),
        halt: HaltFlag::new(),
        tokio: tokio.handle().clone(),
    };
    let source = format!(
        r#"
        var c = new LocalClient();
        if (!c.Sync("{root}/src", "{root}/dst", {{Delete: true}})) throw new Error(c.LastError());
        if (!c.Exists("{root}/dst/sub/b.txt")) throw new Error("the planned file is not seen");
        if (!WriteTextFile("{root}/note.txt", "hi")) throw new Error("write");
        if (!FileExists("{root}/note.txt")) throw new Error("the planned note is not seen");
        if (!MoveFile("{root}/src/a.txt", "{root}/moved.txt")) throw new Error("move");
        var r = RunProgram("/bin/sh", ["-c", "touch {root}/ran", GetSecret("deploy-token")]);
        if (!r.Ok) throw new Error("RunProgram should answer as if it ran");
        new HttpCli().Url("http://127.0.0.1:9/hook").Post();
        var w = new FsWatcher();
        w.WatchDir("{root}/src", false);
        w.Start(function (evt) {{ Log(evt.Object); }});
        w.Stop();
        "#
    );
    let spec = JobSpec {
        name: "dry.syncjs".into(),
        source,
        params: BTreeMap::new(),
    };
    let outcome = run_job(spec, scope, Limits::default());
    assert!(outcome.is_success(), "{outcome}\n{}", log.text());
    assert_eq!(tree(d.path()), before, "the disk changed:\n{}", log.text());

    let plan = run.plan();
    let has = |action: Action, tail: &str| {
        plan.effects
            .iter()
            .any(|e| e.action == action && e.target.ends_with(tail))
    };
    assert!(has(Action::Copy, "/dst/a.txt"), "{plan:#?}");
    assert!(has(Action::Copy, "/dst/sub/b.txt"), "{plan:#?}");
    assert!(has(Action::Mkdir, "/dst/sub"), "{plan:#?}");
    assert!(has(Action::Delete, "/dst/stale.txt"), "{plan:#?}");
    assert!(has(Action::Delete, "/dst/old"), "{plan:#?}");
    assert!(has(Action::Write, "/note.txt"), "{plan:#?}");
    assert!(has(Action::Rename, "/moved.txt"), "{plan:#?}");
    let calls: Vec<&str> = plan.skipped_calls.iter().map(|c| c.call.as_str()).collect();
    assert_eq!(
        calls,
        ["RunProgram", "HttpCli.POST", "FsWatcher.Start"],
        "{plan:#?}"
    );
    assert!(plan.skipped_calls[2].detail.ends_with("/src"), "{plan:#?}");
    let detail = &plan.skipped_calls[0].detail;
    assert!(
        detail.contains("***") && !detail.contains("tok-5ecret"),
        "the secret must be masked in the plan: {detail}"
    );
}

/// Every path below `root` with its bytes (folders with none).
fn tree(root: &std::path::Path) -> BTreeMap<String, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let key = path.strip_prefix(root).unwrap().display().to_string();
            if path.is_dir() {
                stack.push(path);
                out.insert(key, None);
            } else {
                out.insert(key, Some(std::fs::read(&path).unwrap()));
            }
        }
    }
    out
}
