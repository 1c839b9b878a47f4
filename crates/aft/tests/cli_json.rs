//! Every list and show command of the CLI has `--json` and prints valid JSON, through the
//! real binary (scripts and pipelines parse these, as they do with kubectl or gh).

mod support;

use serde_json::Value;
use support::Aft;

fn json(aft: &Aft, args: &[&str]) -> Value {
    let out = aft.ok(args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("aft {args:?} is not JSON ({e}): {out}"))
}

#[test]
fn every_list_and_show_command_prints_json() {
    let aft = Aft::allowing_cli_run();
    aft.secret("token", "v");
    aft.push_script("Hello", r#"Log("hello"); Log("world");"#);
    aft.create_key("ci", "127.0.0.1");
    support::ok(aft.run_with_input(&["admin", "create", "alice"], "alice-password\n"));
    aft.ok(&["vfs", "add", "disk", "--type", "disk", "--set", "Root=/tmp"]);
    aft.ok(&[
        "schedule",
        "add",
        "nightly",
        "-s",
        "Hello",
        "--cron",
        "0 2 * * *",
        "--tz",
        "Europe/Rome",
    ]);
    aft.ok(&["watcher", "add", "w", "-s", "Hello"]);

    for args in [
        &["settings", "get", "--json"][..],
        &["settings", "get", "allow-cli-run", "--json"],
        &["secret", "list", "--json"],
        &["script", "list", "--json"],
        &["script", "show", "Hello", "--json"],
        &["apikey", "list", "--json"],
        &["admin", "list", "--json"],
        &["vfs", "list", "--json"],
        &["vfs", "show", "disk", "--json"],
        &["vfs", "types", "--json"],
        &["nodes", "list", "--json"],
        &["schedule", "list", "--json"],
        &["schedule", "history", "nightly", "--json"],
        &["watcher", "list", "--json"],
        &["svc", "status", "--json"],
        &["jobs", "list", "--json"],
    ] {
        json(&aft, args);
    }
    let fires = json(
        &aft,
        &[
            "schedule",
            "next",
            "nightly",
            "-n",
            "3",
            "--from",
            "2026-03-29T00:00:00Z",
            "--json",
        ],
    );
    assert_eq!(fires.as_array().map(Vec::len), Some(3), "{fires}");
    // 02:00 does not exist in Rome that morning: the slot fires at 03:00 local (01:00 UTC).
    assert_eq!(fires[0]["at"], "2026-03-29T01:00:00Z", "{fires}");
    assert_eq!(fires[0]["local"], "2026-03-29T03:00:00+02:00", "{fires}");
    let types = json(&aft, &["vfs", "types", "sftp", "--json"]);
    assert_eq!(types[0]["type"], "sftp", "{types}");
    let status = json(&aft, &["svc", "status", "--json"]);
    assert_eq!(status["running"], false, "{status}");

    // A job's log, line by line as JSON (the job ran through the service's store).
    let svc = aft.serve();
    let script = aft.write("hello.syncjs", r#"Log("hello"); Log("world");"#);
    aft.ok(&["run", "-f", &script]);
    let jobs = json(&aft, &["jobs", "list", "--json"]);
    let id = jobs[0]["id"].as_str().unwrap().to_string();
    let lines: Vec<Value> = aft
        .ok(&["jobs", "log", &id, "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "hello" && l["level"] == "info"),
        "{lines:?}"
    );
    let status = json(&aft, &["svc", "status", "--json"]);
    assert_eq!(status["running"], true, "{status}");
    drop(svc);
}
