//! Dry runs (issue 20, docs/dry-run.md) and Sync's safety rails, through the real binary
//! against the real SFTP and S3 servers.
//!
//! A dry run of an `Upload` and a `Sync` with `Delete` is run four ways: `aft run
//! --dry-run --json` in the CLI process, the same in human form, delegated to a running
//! service, and `POST /v1/jobs` with `"dryRun": true`. Each plan must list every effect the
//! real run would have, and the server must be byte-for-byte as before: the test lists
//! every entry (path, size, time) and downloads every file before and after. The rails
//! test runs `Sync` for real: `MaxDelete` refusing (count and percentage) and allowing, and
//! `BackupDir` moving what would have been deleted.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde_json::{Value, json};
use support::{Aft, call, peer, text, wait_job};

/// One server: its client class and fields.
struct Remote {
    name: &'static str,
    class: &'static str,
    fields: Vec<(&'static str, String)>,
}

impl Remote {
    fn sftp() -> Remote {
        Remote {
            name: "sftp",
            class: "SftpClient",
            fields: vec![
                ("Host", peer("AFT_TEST_SFTP_ADDR")),
                ("User", peer("AFT_TEST_SFTP_USER")),
                ("Pass", peer("AFT_TEST_SFTP_PASS")),
                ("HostKeySHA256", peer("AFT_TEST_SFTP_HOSTKEY_SHA256")),
                ("BaseDir", peer("AFT_TEST_SFTP_HOME")),
            ],
        }
    }

    fn s3() -> Remote {
        Remote {
            name: "s3",
            class: "S3Client",
            fields: vec![
                ("Endpoint", peer("AFT_TEST_S3_ENDPOINT")),
                ("Bucket", peer("AFT_TEST_S3_BUCKET")),
                ("Region", peer("AFT_TEST_S3_REGION")),
                ("APIKeyID", peer("AFT_TEST_S3_KEY_ID")),
                ("APIKeySecret", peer("AFT_TEST_S3_SECRET")),
            ],
        }
    }

    /// JavaScript making a connected client `c`.
    fn client(&self) -> String {
        let mut js = format!("var c = new {}();\n", self.class);
        for (field, value) in &self.fields {
            js += &format!("c.{field} = {};\n", Value::String(value.clone()));
        }
        js += "if (!c.Connect()) throw new Error('Connect: ' + c.LastError());\n";
        js
    }
}

/// A folder of its own on the server for one test.
fn unique_root(what: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("/dry-{what}-{}-{nanos}", std::process::id())
}

fn write_tree(base: &Path, files: &[(&str, &str)]) {
    for (rel, body) in files {
        let path = base.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
}

/// Run a script for real in `aft` (delegated when a service runs); its output.
fn run_script(aft: &Aft, name: &str, body: &str) -> String {
    let file = aft.write(name, body);
    let out = aft.run(&["run", "-f", &file]);
    assert!(out.status.success(), "{name} failed:\n{}", text(&out));
    text(&out)
}

/// Everything under `root` on the server: each entry's size, time and, for files, bytes.
type Snapshot = BTreeMap<String, (Value, Option<Vec<u8>>)>;

fn snapshot(aft: &Aft, remote: &Remote, root: &str) -> Snapshot {
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().to_str().unwrap();
    let script = format!(
        r#"{client}
var items = c.ListDirR({root}, LIST_ALL);
if (items === null) throw new Error("ListDirR: " + c.LastError());
for (var i = 0; i < items.length; i++) {{
    var it = items[i];
    Log("SNAP " + JSON.stringify({{p: it.Path, s: it.Size, d: it.IsDir, m: it.ModTime ? it.ModTime.getTime() : null}}));
    if (!it.IsDir && !c.DownloadFile(it.Path, {out} + it.Path.substring({root}.length)))
        throw new Error("DownloadFile: " + c.LastError());
}}
c.Close();
"#,
        client = remote.client(),
        root = json!(root),
        out = json!(out),
    );
    let output = run_script(aft, "snapshot.syncjs", &script);
    let mut snap = Snapshot::new();
    for line in output.lines() {
        let Some((_, entry)) = line.split_once("SNAP ") else {
            continue;
        };
        let entry: Value = serde_json::from_str(entry).unwrap();
        let path = entry["p"].as_str().unwrap().to_string();
        let bytes = (!entry["d"].as_bool().unwrap())
            .then(|| std::fs::read(format!("{out}{}", &path[root.len()..])).unwrap());
        snap.insert(path, (entry, bytes));
    }
    snap
}

fn delete_root(aft: &Aft, remote: &Remote, root: &str) {
    let script = format!(
        "{}c.DelTree({});\nc.Close();\n",
        remote.client(),
        json!(root)
    );
    run_script(aft, "cleanup.syncjs", &script);
}

/// The dry-run script: an Upload under OverwriteIfDiffSize, a Sync with Delete, a mail.
fn dry_script(remote: &Remote, src: &str, root: &str) -> String {
    format!(
        r#"{client}
c.Options.UploadPolicy = "OverwriteIfDiffSize";
if (!c.Upload({up_src}, {up_dst})) throw new Error("Upload: " + c.LastError());
if (!c.Sync({mirror_src}, {mirror_dst}, {{Delete: true}})) throw new Error("Sync: " + c.LastError());
SendMail("aft@example.com", "ops@example.com", "mirror done", "done");
c.Close();
"#,
        client = remote.client(),
        up_src = json!(format!("{src}/up/*")),
        up_dst = json!(format!("{root}/up")),
        mirror_src = json!(format!("{src}/mirror")),
        mirror_dst = json!(format!("{root}/mirror")),
    )
}

/// Check that `plan` lists exactly the effects the real run would have.
fn check_plan(plan: &Value, root: &str, how: &str) {
    let effects = plan["effects"].as_array().unwrap_or_else(|| {
        panic!("{how}: no plan effects in {plan:#}");
    });
    let find = |action: &str, tail: &str| -> &Value {
        let want = format!("{root}{tail}");
        effects
            .iter()
            .find(|e| e["action"] == action && e["target"].as_str().unwrap().ends_with(&want))
            .unwrap_or_else(|| panic!("{how}: no {action} of {want} in {plan:#}"))
    };
    let new = find("upload", "/up/new.txt");
    assert_eq!(new["bytes"], 12, "{how}: {new}");
    assert_ne!(new["overwrite"], true, "{how}: {new}");
    assert!(
        new["source"].as_str().unwrap().ends_with("/src/up/new.txt"),
        "{how}: {new}"
    );
    let changed = find("upload", "/up/changed.txt");
    assert_eq!(changed["overwrite"], true, "{how}: {changed}");
    let same = find("skip", "/up/same.txt");
    assert!(
        same["reason"]
            .as_str()
            .unwrap()
            .contains("OverwriteIfDiffSize"),
        "{how}: {same}"
    );
    find("upload", "/mirror/fresh.txt");
    find("upload", "/mirror/sub/deep.txt");
    let keep = find("skip", "/mirror/keep.txt");
    assert!(
        keep["reason"].as_str().unwrap().contains("unchanged"),
        "{how}: {keep}"
    );
    find("delete", "/mirror/stale.txt");
    let old = find("delete", "/mirror/olddir");
    assert_eq!(old["folder"], true, "{how}: {old}");
    find("mkdir", "/mirror/sub");
    let expected = 9;
    assert_eq!(effects.len(), expected, "{how}: {plan:#}");
    let summary = &plan["summary"];
    assert_eq!(summary["uploaded"], 4, "{how}: {summary}");
    assert_eq!(summary["overwritten"], 1, "{how}: {summary}");
    assert_eq!(summary["skipped"], 2, "{how}: {summary}");
    assert_eq!(summary["deleted"], 2, "{how}: {summary}");
    let calls = plan["skippedCalls"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "{how}: {plan:#}");
    assert_eq!(calls[0]["call"], "SendMail", "{how}: {plan:#}");
    assert!(
        calls[0]["detail"]
            .as_str()
            .unwrap()
            .contains("ops@example.com"),
        "{how}: {plan:#}"
    );
}

fn local_tree(base: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![base.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let key = path.strip_prefix(base).unwrap().display().to_string();
            if path.is_dir() {
                stack.push(path);
                out.insert(key, Vec::new());
            } else {
                out.insert(key, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

async fn dry_run_plans_everything_and_changes_nothing(remote: Remote) {
    let aft = Aft::allowing_cli_run();
    let root = unique_root(remote.name);
    let src = aft.path("src");
    // The local side first, so the seeded copies on the server are newer than it.
    write_tree(
        &src,
        &[
            ("up/new.txt", "a new file\n\n"),
            ("up/same.txt", "same size"),
            ("up/changed.txt", "a longer, changed text"),
            ("mirror/keep.txt", "keep"),
            ("mirror/fresh.txt", "fresh"),
            ("mirror/sub/deep.txt", "deep"),
        ],
    );
    let seed = aft.path("seed");
    write_tree(
        &seed,
        &[
            ("up/same.txt", "SAME-SIZE"),
            ("up/changed.txt", "short"),
            ("mirror/keep.txt", "keep"),
            ("mirror/stale.txt", "stale"),
            ("mirror/olddir/x.txt", "x"),
        ],
    );
    run_script(
        &aft,
        "seed.syncjs",
        &format!(
            "{}if (!c.Sync({}, {}, {{}})) throw new Error('seed: ' + c.LastError());\nc.Close();\n",
            remote.client(),
            json!(seed.to_str().unwrap()),
            json!(root)
        ),
    );
    let before = snapshot(&aft, &remote, &root);
    assert_eq!(before.len(), 8, "{before:#?}");
    let local_before = local_tree(&src);
    let src_text = src.to_str().unwrap();
    let script = aft.write("dry.syncjs", &dry_script(&remote, src_text, &root));

    // 1. In the CLI process, as JSON.
    let out = aft.run(&["run", "-f", &script, "--dry-run", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", text(&out)));
    assert_eq!(doc["status"], "succeeded", "{doc:#}");
    assert_eq!(doc["dryRun"], true, "{doc:#}");
    check_plan(&doc["plan"], &root, "aft run --dry-run --json");

    // 2. In the CLI process, for people.
    let out = aft.run(&["run", "-f", &script, "--dry-run"]);
    let human = text(&out);
    assert!(out.status.success(), "{human}");
    assert!(
        human.contains("plan: delete   ") && human.contains("/mirror/stale.txt"),
        "{human}"
    );
    assert!(human.contains("plan: not run SendMail"), "{human}");
    assert!(
        human
            .contains("plan summary: 4 uploaded, 0 downloaded, 0 copied, 0 written (1 overwriting"),
        "{human}"
    );

    // 3. Delegated to a running service, and 4. through the API.
    let svc = aft.serve();
    let out = aft.run(&["run", "-f", &script, "--dry-run", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", text(&out)));
    assert!(
        doc["jobId"].as_str().is_some_and(|s| !s.is_empty()),
        "{doc:#}"
    );
    assert_eq!(doc["dryRun"], true, "{doc:#}");
    check_plan(&doc["plan"], &root, "delegated aft run --dry-run");

    aft.push_script("dry", &dry_script(&remote, src_text, &root));
    let key = aft.create_key("ci", "127.0.0.1");
    let http = svc.client();
    let base = svc.base();
    let auth = ("X-API-Key", key.as_str());
    let (status, queued) = call(
        &http,
        Method::POST,
        &format!("{base}/v1/jobs"),
        Some(auth),
        Some(&json!({"scriptName": "dry", "dryRun": true})),
    )
    .await;
    assert_eq!(status, 202, "{queued}");
    let id = queued["jobId"].as_str().unwrap();
    let job = wait_job(&http, &base, auth, id).await;
    assert_eq!(job["status"], "succeeded", "{job:#}");
    assert_eq!(job["dryRun"], true, "{job:#}");
    check_plan(&job["plan"], &root, "POST /v1/jobs dryRun");
    // `aft jobs show` prints the stored plan, for people and as JSON.
    let out = aft.run(&["jobs", "show", id]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains("dry run:   yes; the plan:")
            && shown.contains("plan: not run SendMail")
            && shown.contains("plan summary: 4 uploaded"),
        "{shown}"
    );
    let out = aft.run(&["jobs", "show", id, "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["dryRun"], true, "{shown:#}");
    check_plan(&shown["plan"], &root, "aft jobs show --json");
    let (status, page) = call(
        &http,
        Method::GET,
        &format!("{base}/v1/jobs"),
        Some(auth),
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let listed = page["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["id"] == id)
        .unwrap();
    assert_eq!(listed["dryRun"], true, "{listed}");
    // `aft start --dry-run --wait` queues the same and prints the plan at the end of the log.
    let out = aft.run(&[
        "start",
        "-n",
        "dry",
        "-a",
        &key,
        "--host",
        &svc.host(),
        "--dry-run",
        "--wait",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let started = text(&out);
    assert!(
        started.contains("plan: not run SendMail") && started.contains("plan summary: 4 uploaded"),
        "{started}"
    );
    // dryRun must be a boolean.
    let (status, bad) = call(
        &http,
        Method::POST,
        &format!("{base}/v1/jobs"),
        Some(auth),
        Some(&json!({"scriptName": "dry", "dryRun": "yes"})),
    )
    .await;
    assert_eq!(status, 400, "{bad}");
    assert!(bad["error"].as_str().unwrap().contains("dryRun"), "{bad}");

    let after = snapshot(&aft, &remote, &root);
    assert_eq!(after, before, "the server changed during dry runs");
    assert_eq!(local_tree(&src), local_before, "the local side changed");
    drop(svc);
    delete_root(&aft, &remote, &root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_dry_run_plans_everything_and_changes_nothing() {
    dry_run_plans_everything_and_changes_nothing(Remote::sftp()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_dry_run_plans_everything_and_changes_nothing() {
    dry_run_plans_everything_and_changes_nothing(Remote::s3()).await;
}

/// Sync with `Delete` and `opts` (a JS object literal); the script logs `RESULT ok error`.
fn sync_with(aft: &Aft, remote: &Remote, local: &str, root: &str, opts: &str) -> String {
    let script = format!(
        "{}var ok = c.Sync({}, {}, {opts});\nLog('RESULT ' + ok + ' ' + c.LastError());\nc.Close();\n",
        remote.client(),
        json!(local),
        json!(format!("{root}/mirror")),
    );
    run_script(aft, "rails.syncjs", &script)
}

fn seed(aft: &Aft, remote: &Remote, root: &str, files: &[(&str, &str)]) {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), files);
    run_script(
        aft,
        "seed.syncjs",
        &format!(
            "{}if (!c.Sync({}, {}, {{}})) throw new Error('seed: ' + c.LastError());\nc.Close();\n",
            remote.client(),
            json!(dir.path().to_str().unwrap()),
            json!(root)
        ),
    );
}

fn files_in(snap: &Snapshot) -> BTreeMap<String, Vec<u8>> {
    snap.iter()
        .filter_map(|(p, (_, b))| b.clone().map(|b| (p.clone(), b)))
        .collect()
}

fn rails_refuse_allow_and_back_up(remote: Remote) {
    let aft = Aft::allowing_cli_run();
    let root = unique_root(&format!("rails-{}", remote.name));
    let local = aft.path("local");
    write_tree(&local, &[("a.txt", "alpha")]);
    let local = local.to_str().unwrap().to_string();
    let extra = [
        ("mirror/a.txt", "alpha"),
        ("mirror/b.txt", "bravo"),
        ("mirror/c.txt", "charlie"),
        ("mirror/d.txt", "delta"),
    ];
    seed(&aft, &remote, &root, &extra);
    let before = files_in(&snapshot(&aft, &remote, &root));
    assert_eq!(before.len(), 4, "{before:#?}");

    // 3 of the 4 files would go: over a count of 2 and over 50%, nothing is deleted.
    for (opts, limit) in [
        ("{Delete: true, MaxDelete: 2}", "MaxDelete 2 allows (2)"),
        (
            "{Delete: true, MaxDelete: '50%'}",
            "MaxDelete 50% allows (2)",
        ),
    ] {
        let out = sync_with(&aft, &remote, &local, &root, opts);
        assert!(out.contains("RESULT false"), "{opts}: {out}");
        assert!(
            out.contains("would delete 3 of the 4 files") && out.contains(limit),
            "{opts}: {out}"
        );
        assert!(out.contains("nothing was deleted"), "{opts}: {out}");
        assert_eq!(
            files_in(&snapshot(&aft, &remote, &root)),
            before,
            "{opts} deleted something"
        );
    }
    let bad = sync_with(
        &aft,
        &remote,
        &local,
        &root,
        "{Delete: true, MaxDelete: 'lots'}",
    );
    assert!(
        bad.contains("RESULT false") && bad.contains("MaxDelete must be"),
        "{bad}"
    );

    // Within the rail the sync deletes.
    let out = sync_with(
        &aft,
        &remote,
        &local,
        &root,
        "{Delete: true, MaxDelete: '75%'}",
    );
    assert!(out.contains("RESULT true"), "{out}");
    let left: Vec<String> = files_in(&snapshot(&aft, &remote, &root))
        .into_keys()
        .collect();
    assert_eq!(left, [format!("{root}/mirror/a.txt")]);

    // BackupDir: what would be deleted moves, keeping its path below the sync target.
    seed(
        &aft,
        &remote,
        &root,
        &[("mirror/b.txt", "bravo"), ("mirror/old/x.txt", "x-ray")],
    );
    let inside = sync_with(
        &aft,
        &remote,
        &local,
        &root,
        &format!(
            "{{Delete: true, BackupDir: {}}}",
            json!(format!("{root}/mirror/keep"))
        ),
    );
    assert!(
        inside.contains("RESULT false") && inside.contains("overlap"),
        "{inside}"
    );
    let out = sync_with(
        &aft,
        &remote,
        &local,
        &root,
        &format!(
            "{{Delete: true, BackupDir: {}}}",
            json!(format!("{root}/backup"))
        ),
    );
    assert!(out.contains("RESULT true"), "{out}");
    let now = files_in(&snapshot(&aft, &remote, &root));
    let expected: BTreeMap<String, Vec<u8>> = [
        ("/mirror/a.txt", "alpha"),
        ("/backup/b.txt", "bravo"),
        ("/backup/old/x.txt", "x-ray"),
    ]
    .into_iter()
    .map(|(p, b)| (format!("{root}{p}"), b.as_bytes().to_vec()))
    .collect();
    assert_eq!(now, expected);

    // A dry run of a backed-up sync plans the moves and makes none.
    seed(&aft, &remote, &root, &[("mirror/e.txt", "echo")]);
    let before = snapshot(&aft, &remote, &root);
    let script = aft.write(
        "dry-rails.syncjs",
        &format!(
            "{}if (!c.Sync({}, {}, {{Delete: true, BackupDir: {}}})) throw new Error(c.LastError());\n",
            remote.client(),
            json!(local),
            json!(format!("{root}/mirror")),
            json!(format!("{root}/backup2")),
        ),
    );
    let out = aft.run(&["run", "-f", &script, "--dry-run", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let moved = doc["plan"]["effects"].as_array().unwrap().iter().any(|e| {
        e["action"] == "rename"
            && e["source"].as_str().unwrap().ends_with("/mirror/e.txt")
            && e["target"].as_str().unwrap().ends_with("/backup2/e.txt")
    });
    assert!(moved, "{doc:#}");
    assert_eq!(snapshot(&aft, &remote, &root), before);
    delete_root(&aft, &remote, &root);
}

#[test]
fn sftp_sync_rails_refuse_allow_and_back_up() {
    rails_refuse_allow_and_back_up(Remote::sftp());
}

#[test]
fn s3_sync_rails_refuse_allow_and_back_up() {
    rails_refuse_allow_and_back_up(Remote::s3());
}
