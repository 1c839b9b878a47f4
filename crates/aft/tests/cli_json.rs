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

/// `aft script versions NAME | grep -q …` and `aft jobs list | head -1`: the reader
/// leaves early. aft drops the rest of its output and exits 0, without a panic and without
/// dying by SIGPIPE (exit 141), so the pipeline passes under `set -o pipefail`.
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let aft = Aft::allowing_cli_run();
    aft.push_script("Hello", r#"Log("hello");"#);
    let script = aft.write("hello.syncjs", r#"Log("hello");"#);
    let run = |args: &[&str]| {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = aft.command(args).stdout(writer).output().expect("run aft");
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            out.status.success() && !stderr.contains("panicked"),
            "aft {args:?} on a closed pipe: {:?}, {stderr}",
            out.status
        );
    };
    run(&["run", "-f", &script]);
    let _service = aft.serve();
    for args in [
        &["script", "versions", "Hello"][..],
        &["script", "list"],
        &["settings", "get", "--json"],
        &["audit", "export"],
        // Delegated to the service, which keeps the job's record.
        &["run", "-f", &script],
    ] {
        run(args);
    }
    // A change is still made, and audited, when nobody reads what it prints.
    run(&["vfs", "add", "disk", "--type", "disk", "--set", "Root=/tmp"]);
    let entries = aft.ok(&["vfs", "list"]);
    assert!(entries.contains("disk"), "{entries}");
    let audit = aft.ok(&["audit", "export"]);
    assert!(audit.contains("disk"), "the change is not audited: {audit}");
}

/// Output that cannot be written for another reason (a full disk under `> file`) fails
/// the command, so a cut-short file is not taken for a whole one.
#[test]
fn output_to_a_full_disk_fails_the_command() {
    let aft = Aft::new();
    aft.push_script("Hello", r#"Log("hello");"#);
    for args in [&["script", "list"][..], &["audit", "export"]] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full");
        let out = aft.command(args).stdout(full).output().expect("run aft");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "aft {args:?} into /dev/full: {stderr}"
        );
        assert!(stderr.contains("No space left"), "aft {args:?}: {stderr}");
    }
}
