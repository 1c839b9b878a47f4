//! SMB through the real binary, against the two Samba servers of `ci/peers/samba.sh` (one
//! requiring SMB3 encryption, one requiring signing only): a script's `SmbClient` with its
//! password from a secret, a VFS Library `smb` entry through `GetVFS`, a `CopyTo` relay
//! between the two servers and a `RemoteWatcher` on the entry, by `aft run` and by a job of
//! `aft serve`; plus `aft vfs test`, the test-connection endpoint and `aft vfs types`.
#![cfg(feature = "smb")]

mod support;

use serde_json::json;
use support::{Aft, call, peer, wait_job};

/// A script moving files over SMB with stored credentials only; `TAG` keeps runs apart.
fn script(tag: &str, local_dir: &str) -> String {
    let host = peer("AFT_TEST_SMB_HOST");
    let port = peer("AFT_TEST_SMB_PORT_ENCRYPTED");
    let share = peer("AFT_TEST_SMB_SHARE");
    let user = peer("AFT_TEST_SMB_USER");
    format!(
        r#"
var tag = "{tag}";
var dir = "{local_dir}";
WriteTextFile(dir + "/in.txt", "hello " + tag);

// A client configured in the script, its password from a secret, on the encrypted server.
var c = new SmbClient();
c.Host = "{host}";
c.Port = {port};
c.Share = "{share}";
c.User = "{user}";
c.PassFromSecret = "smb-pass";
c.Options.UploadPolicy = AlwaysOverwrite;
if (!c.Connect()) throw new Error("connect: " + c.LastError());
if (!c.MakeDir("/" + tag + "/sub")) throw new Error("mkdir: " + c.LastError());
if (!c.Upload(dir + "/in.txt", "/" + tag + "/sub/")) throw new Error("upload: " + c.LastError());
var listed = c.ListDir("/" + tag + "/sub");
if (listed == null || listed.length != 1) throw new Error("list: " + c.LastError());
if (!c.RenFile("/" + tag + "/sub/in.txt", "/" + tag + "/sub/renamed.txt")) throw new Error("rename: " + c.LastError());
var st = c.Stat("/" + tag + "/sub/renamed.txt");
if (st == null || st.Size != ("hello " + tag).length) throw new Error("stat: " + c.LastError());

// The signing-only server as a VFS Library entry; relay the file to it.
var signed = GetVFS("smb-signed");
if (!c.CopyTo(signed, "/" + tag + "/sub/renamed.txt", "/" + tag + "/copied.txt")) throw new Error("copyto: " + c.LastError());
if (!signed.Download("/" + tag + "/copied.txt", dir + "/")) throw new Error("download: " + signed.LastError());
if (ReadTextFile(dir + "/copied.txt") != "hello " + tag) throw new Error("downloaded content differs");

// A watcher on the entry sees a file that arrives later.
var w = new RemoteWatcher("smb-signed");
w.PollSeconds = 1;
w.WatchDir("/" + tag, false);
var seen = false;
w.Start(function (evt) {{
  if (evt.Object.indexOf("late.txt") < 0) return;
  seen = true;
}});
Sleep(300);
if (!signed.UploadFile(dir + "/in.txt", "/" + tag + "/late.txt")) throw new Error("upload late: " + signed.LastError());
for (var i = 0; i < 100 && !seen; i++) Sleep(100);
w.Stop();
if (!seen) throw new Error("the watcher did not report late.txt");

if (!c.DelTree("/" + tag)) throw new Error("deltree: " + c.LastError());
if (!signed.DelTree("/" + tag)) throw new Error("deltree signed: " + signed.LastError());
if (c.Exists("/" + tag) || signed.Exists("/" + tag)) throw new Error("still there after DelTree");
c.Close();
Log("smb ok " + tag);
"#
    )
}

fn signed_entry() -> serde_json::Value {
    json!({
        "Host": peer("AFT_TEST_SMB_HOST"),
        "Port": peer("AFT_TEST_SMB_PORT_SIGNED"),
        "Share": peer("AFT_TEST_SMB_SHARE"),
        "User": peer("AFT_TEST_SMB_USER"),
        "PassFromSecret": "smb-pass",
    })
}

/// A data directory with the password as a secret and the `smb-signed` entry.
fn prepared() -> Aft {
    let aft = Aft::allowing_cli_run();
    aft.secret("smb-pass", &peer("AFT_TEST_SMB_PASS"));
    aft.ok(&[
        "vfs",
        "add",
        "smb-signed",
        "--type",
        "smb",
        "--json",
        &signed_entry().to_string(),
    ]);
    aft
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros()
    )
}

#[test]
fn aft_run_moves_files_over_smb_with_a_client_an_entry_and_a_watcher() {
    let aft = prepared();
    let work = tempfile::tempdir().unwrap();
    let tag = unique("run");
    let file = aft.write("smb.syncjs", &script(&tag, work.path().to_str().unwrap()));
    let out = aft.run(&["run", "-f", &file]);
    let all = support::text(&out);
    assert!(out.status.success(), "aft run failed:\n{all}");
    assert!(all.contains(&format!("smb ok {tag}")), "{all}");
    // The relayed copy was really on the signing-only server's disk, and is gone again.
    let on_disk = std::path::Path::new(&peer("AFT_TEST_SMB_DIR_SIGNED")).join(&tag);
    assert!(
        !on_disk.exists(),
        "{} was not cleaned up",
        on_disk.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_job_moves_files_over_smb_and_tests_the_entry() {
    let aft = prepared();
    let work = tempfile::tempdir().unwrap();
    let tag = unique("svc");
    aft.push_script("Smb", &script(&tag, work.path().to_str().unwrap()));
    let key = aft.create_key("ci", "127.0.0.1");
    let svc = aft.serve();
    let http = svc.client();
    let (status, queued) = call(
        &http,
        reqwest::Method::POST,
        &format!("{}/v1/jobs", svc.base()),
        Some(("X-API-Key", &key)),
        Some(&json!({"scriptName": "Smb"})),
    )
    .await;
    assert_eq!(status, 202, "{queued}");
    let id = queued["jobId"].as_str().unwrap();
    let job = wait_job(&http, &svc.base(), ("X-API-Key", &key), id).await;
    let (_, log) = call(
        &http,
        reqwest::Method::GET,
        &format!("{}/v1/jobs/{id}/log", svc.base()),
        Some(("X-API-Key", &key)),
        None,
    )
    .await;
    assert_eq!(job["status"], "succeeded", "{job}\nlog: {log}");
    assert!(log.to_string().contains(&format!("smb ok {tag}")), "{log}");

    // The test-connection endpoint logs in and lists the share's root.
    let marker = format!("marker-{tag}.txt");
    let marker_path = std::path::Path::new(&peer("AFT_TEST_SMB_DIR_SIGNED")).join(&marker);
    std::fs::write(&marker_path, b"x").unwrap();
    let (status, report) = call(
        &http,
        reqwest::Method::POST,
        &format!("{}/v1/vfs/smb-signed/test", svc.base()),
        Some(("X-Aft-Local-Token", &svc.local_token())),
        Some(&json!({})),
    )
    .await;
    let _ = std::fs::remove_file(&marker_path);
    assert_eq!(status, 200, "{report}");
    assert!(report.to_string().contains(&marker), "{report}");
}

#[test]
fn cli_lists_the_smb_type_and_tests_an_entry_refusing_a_wrong_password() {
    let aft = prepared();
    let types = aft.ok(&["vfs", "types"]);
    assert!(
        types.contains("smb") && types.contains("SmbClient"),
        "{types}"
    );
    let out = aft.ok(&["vfs", "test", "smb-signed"]);
    assert!(out.contains(&peer("AFT_TEST_SMB_PORT_SIGNED")), "{out}");

    aft.secret("wrong-pass", "not-the-password");
    let mut wrong = signed_entry();
    wrong["PassFromSecret"] = "wrong-pass".into();
    aft.ok(&[
        "vfs",
        "add",
        "smb-wrong",
        "--type",
        "smb",
        "--json",
        &wrong.to_string(),
    ]);
    let out = aft.run(&["vfs", "test", "smb-wrong"]);
    let all = support::text(&out);
    assert!(!out.status.success(), "{all}");
    assert!(all.contains("permission denied"), "{all}");
    assert!(!all.contains("not-the-password"), "{all}");

    // A clear-text password is refused by the VFS Library, naming the secret field.
    let mut clear = signed_entry();
    clear["Pass"] = "hunter2".into();
    let out = aft.run(&[
        "vfs",
        "add",
        "smb-clear",
        "--type",
        "smb",
        "--json",
        &clear.to_string(),
    ]);
    let all = support::text(&out);
    assert!(
        !out.status.success() && all.contains("PassFromSecret"),
        "{all}"
    );
}

/// The name the transfer code keeps a partial upload under (`name.aft-tmp-TAG`, TAG from the
/// source's path, size and time), computed here as the transfer code documents it.
fn temp_name(name: &str, src: &std::path::Path, size: u64, mtime_millis: i64) -> String {
    use std::io::Write;
    let identity = format!("{}\n{size}\n{:?}", src.display(), Some(mtime_millis));
    let mut sha = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum");
    sha.stdin
        .take()
        .unwrap()
        .write_all(identity.as_bytes())
        .unwrap();
    let out = sha.wait_with_output().unwrap();
    let hex = String::from_utf8(out.stdout).unwrap();
    format!("{name}.aft-tmp-{}", &hex[..12])
}

#[test]
fn a_kept_partial_longer_or_different_is_never_continued_and_a_matching_one_is() {
    let aft = Aft::allowing_cli_run();
    aft.secret("smb-pass", &peer("AFT_TEST_SMB_PASS"));
    let work = tempfile::tempdir().unwrap();
    let tag = unique("resume");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let src = work.path().join("in.bin");
    std::fs::write(&src, &data).unwrap();
    // A fixed time, so the partial's name is known.
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    std::fs::File::options()
        .write(true)
        .open(&src)
        .unwrap()
        .set_modified(when)
        .unwrap();
    let temp = temp_name("out.bin", &src, data.len() as u64, 1_700_000_000_000);
    // Kept partials: longer than the file (its head right, then stale bytes), as long as a
    // head but different, and a true head.
    let mut longer = data.clone();
    longer.extend(std::iter::repeat_n(0xEE, 150_000));
    let partials = [
        ("longer", longer),
        ("different", vec![0x55; 100_000]),
        ("head", data[..100_000].to_vec()),
    ];
    let on_disk = std::path::Path::new(&peer("AFT_TEST_SMB_DIR_ENCRYPTED")).join(&tag);
    for (what, partial) in partials {
        std::fs::write(work.path().join("partial.bin"), &partial).unwrap();
        let script = format!(
            r#"
var c = new SmbClient();
c.Host = "{host}";
c.Port = {port};
c.Share = "{share}";
c.User = "{user}";
c.PassFromSecret = "smb-pass";
c.Options.UploadPolicy = AlwaysOverwrite;
if (!c.Connect()) throw new Error("connect: " + c.LastError());
// Leave the partial where an interrupted upload of in.bin would have left it.
if (!c.UploadFile("{dir}/partial.bin", "/{tag}/{temp}")) throw new Error("partial: " + c.LastError());
if (!c.UploadFile("{dir}/in.bin", "/{tag}/out.bin")) throw new Error("upload: " + c.LastError());
c.Close();
Log("uploaded over the {what} partial");
"#,
            host = peer("AFT_TEST_SMB_HOST"),
            port = peer("AFT_TEST_SMB_PORT_ENCRYPTED"),
            share = peer("AFT_TEST_SMB_SHARE"),
            user = peer("AFT_TEST_SMB_USER"),
            dir = work.path().display(),
        );
        let file = aft.write("resume.syncjs", &script);
        let out = aft.run(&["run", "-f", &file]);
        let all = support::text(&out);
        assert!(out.status.success(), "{what}: aft run failed:\n{all}");
        // Only the true head is continued (the job log says from where).
        let resumed = all.contains("at byte 100000");
        assert_eq!(resumed, what == "head", "{what}:\n{all}");
        let landed = std::fs::read(on_disk.join("out.bin")).unwrap();
        assert!(
            landed == data,
            "{what}: the server holds {} bytes, not the file's {} (first difference at {:?})",
            landed.len(),
            data.len(),
            landed.iter().zip(&data).position(|(a, b)| a != b)
        );
        assert!(
            !on_disk.join(&temp).exists(),
            "{what}: the partial {temp} was not taken up (is its name still computed so?)"
        );
    }
    let _ = std::fs::remove_dir_all(&on_disk);
}

#[test]
fn require_encryption_refuses_the_signing_only_server_and_connects_to_the_encrypted_one() {
    let aft = prepared();
    for (name, port) in [
        ("smb-enc-required", peer("AFT_TEST_SMB_PORT_ENCRYPTED")),
        ("smb-sign-required", peer("AFT_TEST_SMB_PORT_SIGNED")),
    ] {
        let mut entry = signed_entry();
        entry["Port"] = port.into();
        entry["RequireEncryption"] = true.into();
        aft.ok(&[
            "vfs",
            "add",
            name,
            "--type",
            "smb",
            "--json",
            &entry.to_string(),
        ]);
    }
    let out = aft.ok(&["vfs", "test", "smb-enc-required"]);
    assert!(out.contains(&peer("AFT_TEST_SMB_PORT_ENCRYPTED")), "{out}");
    let out = aft.run(&["vfs", "test", "smb-sign-required"]);
    let all = support::text(&out);
    assert!(!out.status.success(), "{all}");
    assert!(
        all.contains("RequireEncryption") && all.contains("does not offer SMB3 encryption"),
        "{all}"
    );
    // Without the option the same server is fine (it requires signing only).
    aft.ok(&["vfs", "test", "smb-signed"]);

    // A script's client says the same.
    let script = format!(
        r#"
var c = new SmbClient();
c.Host = "{host}";
c.Port = {port};
c.Share = "{share}";
c.User = "{user}";
c.PassFromSecret = "smb-pass";
c.RequireEncryption = true;
if (c.Connect()) throw new Error("connected to a server that cannot encrypt");
Log("refused: " + c.LastError());
"#,
        host = peer("AFT_TEST_SMB_HOST"),
        port = peer("AFT_TEST_SMB_PORT_SIGNED"),
        share = peer("AFT_TEST_SMB_SHARE"),
        user = peer("AFT_TEST_SMB_USER"),
    );
    let file = aft.write("enc.syncjs", &script);
    let out = aft.run(&["run", "-f", &file]);
    let all = support::text(&out);
    assert!(out.status.success(), "{all}");
    assert!(
        all.contains("refused:") && all.contains("does not offer SMB3 encryption"),
        "{all}"
    );
}
