//! Credentials from stored secrets, read from every kind of host call, through the real
//! binary: a client's `Connect()`, `GetVFS` entries, a `CopyTo` relay between two servers and
//! a `RemoteWatcher` callback that opens another client — by `aft run` without a service and
//! by a job of `aft serve`. (A stored secret read inside `Connect()` once panicked with
//! "Cannot start a runtime from within a runtime" in both.)

mod support;

use serde_json::json;
use support::{Aft, call, peer, wait_job};

/// A script using only stored credentials; `TAG` keeps runs apart on the shared servers.
fn script(tag: &str, local_dir: &str) -> String {
    let sftp_addr = peer("AFT_TEST_SFTP_ADDR");
    let sftp_user = peer("AFT_TEST_SFTP_USER");
    let pin = peer("AFT_TEST_SFTP_HOSTKEY_SHA256");
    let home = peer("AFT_TEST_SFTP_HOME");
    format!(
        r#"
var tag = "{tag}";
var dir = "{local_dir}";
var remote = "{home}/" + tag;
WriteTextFile(dir + "/in.txt", "hello " + tag);

// A client configured in the script, its password from a secret.
var c = new SftpClient();
c.Host = "{sftp_addr}";
c.User = "{sftp_user}";
c.PassFromSecret = "sftp-pass";
c.HostKeySHA256 = "{pin}";
if (!c.Connect()) throw new Error("connect: " + c.LastError());
if (!c.MakeDir(remote)) throw new Error("mkdir: " + c.LastError());
if (!c.Upload(dir + "/in.txt", remote + "/")) throw new Error("upload: " + c.LastError());
c.Close();

// The same server as a VFS Library entry, relayed to an S3 entry whose key is a secret.
var sftp = GetVFS("partner");
var s3 = GetVFS("archive");
if (!sftp.CopyTo(s3, remote + "/in.txt", "/" + tag + "/in.txt")) throw new Error("copyto: " + sftp.LastError());
var back = s3.ListDir("/" + tag);
if (back == null || back.length != 1) throw new Error("s3 list: " + s3.LastError());

// A watcher on the entry whose callback opens another stored-credential client.
var w = new RemoteWatcher("partner");
w.PollSeconds = 1;
w.WatchDir(remote, false);
var seen = false;
w.Start(function (evt) {{
  if (evt.Object.indexOf("late.txt") < 0) return;
  var d = GetVFS("partner");
  if (!d.Download(evt.Object, dir + "/")) throw new Error("download: " + d.LastError());
  seen = true;
}});
Sleep(300);
if (!sftp.UploadFile(dir + "/in.txt", remote + "/late.txt")) throw new Error("upload late: " + sftp.LastError());
for (var i = 0; i < 100 && !seen; i++) Sleep(100);
w.Stop();
if (!seen) throw new Error("the watcher did not report late.txt");
if (ReadTextFile(dir + "/late.txt") != "hello " + tag) throw new Error("downloaded content differs");
Log("stored credentials ok " + tag);
"#
    )
}

/// A data directory with the secrets and the two VFS Library entries the script uses.
fn prepared() -> Aft {
    let aft = Aft::allowing_cli_run();
    aft.add_sftp_entry("partner", "sftp-pass", json!({}));
    aft.add_s3_entry("archive", "s3-secret");
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
fn aft_run_without_a_service_reads_stored_credentials_in_every_host_call() {
    let aft = prepared();
    let work = tempfile::tempdir().unwrap();
    let tag = unique("run");
    let file = aft.write("creds.syncjs", &script(&tag, work.path().to_str().unwrap()));
    let out = aft.run(&["run", "-f", &file]);
    let all = support::text(&out);
    assert!(out.status.success(), "aft run failed:\n{all}");
    assert!(
        all.contains(&format!("stored credentials ok {tag}")),
        "{all}"
    );
    assert!(!all.contains("panicked"), "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_job_reads_stored_credentials_in_every_host_call() {
    let aft = prepared();
    let work = tempfile::tempdir().unwrap();
    let tag = unique("svc");
    aft.push_script("Creds", &script(&tag, work.path().to_str().unwrap()));
    let key = aft.create_key("ci", "127.0.0.1");
    let svc = aft.serve();
    let http = svc.client();
    let (status, queued) = call(
        &http,
        reqwest::Method::POST,
        &format!("{}/v1/jobs", svc.base()),
        Some(("X-API-Key", &key)),
        Some(&json!({"scriptName": "Creds"})),
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
    assert!(
        log.to_string()
            .contains(&format!("stored credentials ok {tag}")),
        "{log}"
    );
}
