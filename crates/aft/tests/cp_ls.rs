//! `aft ls` and `aft cp` through the real binary: local disk ↔ an SFTP entry (real sshd,
//! password in a stored secret) ↔ an S3 entry (real S3 server), each copy recorded as a job
//! with a transfer row per file, and the refusals users meet.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use support::{Aft, peer, text};

/// A folder name no other test run uses on the shared servers.
fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

fn add_entries(aft: &Aft) {
    aft.add_sftp_entry(
        "partner",
        "sftp-pass",
        json!({"BaseDir": peer("AFT_TEST_SFTP_HOME")}),
    );
    aft.add_s3_entry("archive", "s3-secret");
}

fn json_of(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[test]
fn cp_moves_files_between_local_sftp_and_s3_and_records_each_copy_as_a_job() {
    let aft = Aft::allowing_cli_run();
    add_entries(&aft);
    let dir = unique("cp");
    let local = aft.path("outbox");
    std::fs::create_dir_all(local.join("sub")).unwrap();
    let bytes: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    std::fs::write(local.join("orders.csv"), &bytes).unwrap();
    std::fs::write(local.join("sub/notes.txt"), "nested").unwrap();
    let local_text = local.to_string_lossy().to_string();

    // A folder, recursively, to a folder of the SFTP entry that does not exist yet.
    let out = aft.ok(&["cp", "-r", &local_text, &format!("partner:/{dir}/in/")]);
    assert!(out.contains("2 copied, 0 skipped, 0 failed"), "{out}");

    // ls streams the folder; -R shows the nested file; --json is an array.
    let listing = aft.ok(&["ls", &format!("partner:/{dir}/in")]);
    assert!(
        listing.contains("orders.csv") && listing.contains("sub/"),
        "{listing}"
    );
    let deep = aft.ok(&["ls", "-R", &format!("partner:/{dir}")]);
    assert!(deep.contains(&format!("/{dir}/in/sub/notes.txt")), "{deep}");
    let listed = json_of(&aft.ok(&["ls", "--json", &format!("partner:/{dir}/in")]));
    let orders = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "orders.csv")
        .unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(orders["size"], 300_000);
    assert_eq!(orders["isDir"], false);

    // SFTP -> S3 relay, one file to an exact name, then back to local disk.
    let relay = json_of(&aft.ok(&[
        "cp",
        "--json",
        &format!("partner:/{dir}/in/orders.csv"),
        &format!("archive:/{dir}/orders-copy.csv"),
    ]));
    assert_eq!(relay["status"], "succeeded", "{relay}");
    assert_eq!(relay["transferred"], 1);
    assert_eq!(relay["bytes"], 300_000);
    let back = aft.path("back.csv");
    aft.ok(&[
        "cp",
        &format!("archive:/{dir}/orders-copy.csv"),
        &back.to_string_lossy(),
    ]);
    assert_eq!(
        std::fs::read(&back).unwrap(),
        bytes,
        "the round trip changed the bytes"
    );

    // The default policy replaces; `--policy never` keeps the target and says so.
    let kept = json_of(&aft.ok(&[
        "cp",
        "--json",
        "--policy",
        "never",
        &format!("{local_text}/orders.csv"),
        &format!("partner:/{dir}/in/"),
    ]));
    assert_eq!(kept["skipped"], 1, "{kept}");

    // Every copy is a job of origin cli with its log and one transfer row per file.
    let jobs = json_of(&aft.ok(&["jobs", "list", "--json"]));
    let jobs: Vec<&Value> = jobs
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["scriptName"] == "aft cp")
        .collect();
    assert_eq!(jobs.len(), 4, "{jobs:?}");
    assert!(
        jobs.iter()
            .all(|j| j["origin"] == "cli" && j["status"] == "succeeded")
    );
    let relay_job = relay["job"].as_str().unwrap();
    let shown = json_of(&aft.ok(&["jobs", "show", relay_job, "--json"]));
    let rows = shown["transfers"]
        .as_array()
        .unwrap_or_else(|| panic!("{shown}"));
    assert_eq!(rows.len(), 1, "{shown}");
    assert_eq!(rows[0]["outcome"], "ok");
    assert_eq!(rows[0]["bytes"], 300_000);
    assert!(
        rows[0]["source"].as_str().unwrap().starts_with("sftp://"),
        "{shown}"
    );
    assert!(
        rows[0]["target"]
            .as_str()
            .unwrap()
            .ends_with("orders-copy.csv"),
        "{shown}"
    );
    let tree_job = jobs.last().unwrap()["id"].as_str().unwrap();
    let tree = json_of(&aft.ok(&["jobs", "show", tree_job, "--json"]));
    assert_eq!(
        tree["transfers"].as_array().map(Vec::len),
        Some(2),
        "{tree}"
    );
    let log = aft.ok(&["jobs", "log", relay_job]);
    assert!(
        log.contains("1 copied, 0 skipped, 0 failed, 300000 bytes"),
        "{log}"
    );
}

#[test]
fn cp_and_ls_fail_clearly_and_need_allow_cli_run() {
    let aft = Aft::new();
    let refused = aft.fails(&["ls", "/tmp"], 1);
    assert!(refused.contains("allow-cli-run"), "{refused}");
    let refused = aft.fails(&["cp", "/etc/hostname", "/tmp/x"], 1);
    assert!(refused.contains("allow-cli-run"), "{refused}");

    aft.ok(&["settings", "set", "allow-cli-run", "true"]);
    let missing = aft.fails(&["ls", "nosuch:/in"], 1);
    assert!(missing.contains("nosuch"), "{missing}");
    let src = aft.path("missing.csv");
    let out = aft.fails(
        &[
            "cp",
            &src.to_string_lossy(),
            &aft.path("x").to_string_lossy(),
        ],
        1,
    );
    assert!(out.contains("missing.csv"), "{out}");

    // A file that fails mid-copy fails the command and its job, and leaves no target behind.
    let dir = aft.path("in");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.csv"), "a").unwrap();
    let blocked = aft.path("blocked");
    std::fs::write(&blocked, "a file where a folder should be").unwrap();
    let out = aft.run(&[
        "cp",
        "--json",
        &dir.to_string_lossy(),
        &format!("{}/", blocked.join("sub").to_string_lossy()),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let jobs = json_of(&aft.ok(&["jobs", "list", "--json"]));
    assert_eq!(jobs[0]["status"], "failed", "{jobs}");
    assert!(!blocked.join("sub").exists());
}
