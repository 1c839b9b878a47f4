//! `aft backup` and `aft restore` through the real binary: a backup taken while the service
//! runs 50 jobs, restored into a fresh data directory, runs the same scripts with the same
//! secrets; restores that would lose data are refused.

mod support;

use reqwest::Method;
use serde_json::json;
use support::{Aft, call, text};

const USES_SECRET: &str = r#"var t = GetSecret("token"); if (t != "s3cret-value") throw new Error("wrong secret"); Log("secret ok");"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_load_restores_into_a_fresh_data_directory_and_runs() {
    let source = Aft::allowing_cli_run();
    source.secret("token", "s3cret-value");
    source.push_script("Uses Secret", USES_SECRET);
    source.push_script("Busy", r#"Sleep(50); Log("busy done");"#);
    let key = source.create_key("ci", "127.0.0.1");
    let svc = source.serve();
    let http = svc.client();
    for _ in 0..50 {
        let (status, body) = call(
            &http,
            Method::POST,
            &format!("{}/v1/jobs", svc.base()),
            Some(("X-API-Key", &key)),
            Some(&json!({"scriptName": "Busy"})),
        )
        .await;
        assert_eq!(status, 202, "{body}");
    }
    let backups = tempfile::tempdir().unwrap();
    let file = backups.path().join("aft-backup.db");
    let file = file.to_str().unwrap();

    // Without --include-key only the database is written, and the output says so.
    let said = source.ok(&["backup", file]);
    assert!(said.contains("not in it"), "{said}");
    assert!(!std::path::Path::new(&format!("{file}.key")).exists());
    let refused = source.fails(&["backup", file], 1);
    assert!(refused.contains("exists"), "{refused}");
    let with_key = backups.path().join("with-key.db");
    let with_key = with_key.to_str().unwrap();
    source.ok(&["backup", with_key, "--include-key"]);
    use std::os::unix::fs::PermissionsExt;
    for f in [with_key.to_string(), format!("{with_key}.key")] {
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
    drop(svc);

    // A fresh data directory: without the backup's key the secrets could not be read, so
    // the restore is refused and nothing changes.
    let target = Aft::new();
    let refused = target.fails(&["restore", with_key], 1);
    assert!(refused.contains("--key"), "{refused}");
    assert!(
        !target.data().join("aft.db").exists() || target.ok(&["script", "list"]).trim().is_empty()
    );

    let restored = target.ok(&["restore", with_key, "--key", &format!("{with_key}.key")]);
    assert!(restored.contains("restored"), "{restored}");
    let listed = target.ok(&["script", "list"]);
    assert!(
        listed.contains("Uses Secret") && listed.contains("Busy"),
        "{listed}"
    );
    let script = target.write("check.syncjs", USES_SECRET);
    let out = target.run(&["run", "-f", &script]);
    assert!(
        out.status.success() && text(&out).contains("secret ok"),
        "{}",
        text(&out)
    );

    // Replacing an existing store needs --yes (there is no terminal to ask on here).
    let refused = target.fails(&["restore", file], 2);
    assert!(refused.contains("--yes"), "{refused}");

    // Never while a service runs on it.
    let mut running = target.serve();
    let refused = target.fails(&["restore", with_key, "--yes"], 1);
    assert!(refused.contains("running"), "{refused}");
    // Stopped cleanly, it no longer holds a restore back (a killed one would for a minute).
    assert!(running.terminate().success());

    // A file that is not an aft database is refused, and the store is untouched.
    let junk = target.write("junk.db", "not a database");
    let refused = target.fails(&["restore", &junk, "--yes"], 1);
    assert!(refused.contains("not an aft backup"), "{refused}");
    assert!(target.ok(&["script", "list"]).contains("Uses Secret"));
}
