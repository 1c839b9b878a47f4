//! Halting `aft run` from outside: SIGINT, SIGTERM and SIGHUP halt the job whether it runs
//! in-process or was handed to a local service, and a delegating `aft run` that dies
//! without a signal (kill -9) does not leave its job running in the service. Also a
//! `RemoteWatcher` started without `WatchDir`, through `aft run`.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, ChildStdout, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Aft, Service, call, folder_in_sftp_home, peer, poll, signal};

/// Loops forever, waking every 100 ms; a halt request ends it.
const FOREVER: &str = "Log('ready'); while (true) { Sleep(100); }";

/// Start `aft run -f` on `source` and wait (10 s at most) until its output has a line
/// containing `ready`. Delegated jobs print `warn`/`error` lines on stderr, so both
/// streams are read; the returned receiver yields the rest of the output.
fn start_run(aft: &Aft, source: &str) -> (Child, mpsc::Receiver<String>) {
    let file = aft.write("job.syncjs", source);
    let mut child = aft
        .command(&["run", "-f", &file])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let out: BufReader<ChildStdout> = BufReader::new(child.stdout.take().unwrap());
    let err = BufReader::new(child.stderr.take().unwrap());
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    std::thread::spawn(move || {
        for line in err.lines().map_while(Result::ok) {
            let _ = tx2.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("ready") => break,
            Ok(line) => seen.push_str(&format!("{line}\n")),
            Err(_) => {
                let _ = child.kill();
                panic!("aft run did not log ready within 10 s; output so far:\n{seen}");
            }
        }
    }
    (child, rx)
}

/// Wait for `child` to exit, `limit` at most; its exit code and how long it took.
fn wait_exit(child: &mut Child, limit: Duration) -> (Option<i32>, Duration) {
    let since = Instant::now();
    let status = poll(limit, || child.try_wait().unwrap());
    match status {
        Some(status) => (status.code(), since.elapsed()),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("aft run did not exit within {limit:?}");
        }
    }
}

/// Everything the process wrote after `ready` (its pipes are closed once it exited).
fn rest(rx: &mpsc::Receiver<String>) -> String {
    let mut text = String::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(5)) {
        text.push_str(&line);
        text.push('\n');
    }
    text
}

fn local_signal_halts(sig: &str) {
    let aft = Aft::allowing_cli_run();
    let (mut child, rx) = start_run(&aft, FOREVER);
    signal(child.id(), sig);
    let (code, took) = wait_exit(&mut child, Duration::from_secs(5));
    let log = rest(&rx);
    assert_eq!(code, Some(1), "SIG{sig}: log after ready:\n{log}");
    assert!(took < Duration::from_secs(1), "SIG{sig} took {took:?}");
    assert!(log.contains(&format!("SIG{sig} received")), "{log}");
    assert!(log.contains("halted"), "{log}");
}

#[test]
fn local_run_is_halted_by_sigint() {
    local_signal_halts("INT");
}

#[test]
fn local_run_is_halted_by_sigterm() {
    local_signal_halts("TERM");
}

#[test]
fn local_run_is_halted_by_sighup() {
    local_signal_halts("HUP");
}

/// A halt in the middle of a download stops it at once, by the job itself (not by `aft
/// run` giving up on it), and the file never appears under its name.
#[test]
fn sigint_in_the_middle_of_an_sftp_download_halts_at_once_and_leaves_no_file_at_its_name() {
    let aft = Aft::allowing_cli_run();
    let base = folder_in_sftp_home("halt-mid-");
    // 4 GiB without taking the disk space: several seconds to move even on loopback.
    let big = std::fs::File::create(base.path().join("big.bin")).unwrap();
    big.set_len(4 << 30).unwrap();
    std::fs::set_permissions(
        base.path().join("big.bin"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let js = |s: &str| serde_json::to_string(s).unwrap();
    let source = format!(
        "var cli = new SftpClient();\n\
         cli.Host = {host}; cli.User = {user}; cli.Pass = {pass};\n\
         cli.HostKeySHA256 = {key}; cli.BaseDir = {base};\n\
         if (!cli.Connect()) {{ Log('cannot connect: ' + cli.LastError()); Exit(2); }}\n\
         Log('ready');\n\
         cli.Download('/big.bin', {out});\n",
        host = js(&peer("AFT_TEST_SFTP_ADDR")),
        user = js(&peer("AFT_TEST_SFTP_USER")),
        pass = js(&peer("AFT_TEST_SFTP_PASS")),
        key = js(&peer("AFT_TEST_SFTP_HOSTKEY_SHA256")),
        base = js(&base.path().display().to_string()),
        out = js(&out.path().display().to_string()),
    );
    let (mut child, rx) = start_run(&aft, &source);
    // Bytes are landing (under a temp name): the download is under way.
    let landing = |dir: &std::path::Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.metadata().map_or(0, |m| m.len()))
            .sum::<u64>()
    };
    let started = poll(Duration::from_secs(20), || {
        (landing(out.path()) > 0).then_some(())
    });
    assert!(started.is_some(), "no byte landed in 20 s");
    signal(child.id(), "INT");
    let (code, took) = wait_exit(&mut child, Duration::from_secs(10));
    let log = rest(&rx);
    assert_eq!(code, Some(1), "{log}");
    assert!(
        took < Duration::from_secs(2),
        "SIGINT took {took:?}:\n{log}"
    );
    assert!(log.contains("SIGINT received"), "{log}");
    // The job stopped by itself, before `aft run` gave up waiting on it.
    assert!(!log.contains("did not stop in time"), "{log}");
    assert!(
        !out.path().join("big.bin").exists(),
        "a halted download left a file under its name:\n{log}"
    );
}

/// The service's jobs, newest first, as `GET /v1/jobs` gives them (local token).
fn jobs(svc: &Service) -> Vec<Value> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let token = svc.local_token();
    let (status, page) = rt.block_on(call(
        &svc.client(),
        reqwest::Method::GET,
        &format!("{}/v1/jobs", svc.base()),
        Some(("X-Aft-Local-Token", &token)),
        None,
    ));
    assert_eq!(status, 200, "{page}");
    page["jobs"].as_array().unwrap().clone()
}

/// The one delegated job of `path` (the script file), as the service shows it now.
fn delegated_job(svc: &Service, path: &str) -> Value {
    let found: Vec<Value> = jobs(svc)
        .into_iter()
        .filter(|j| j["filePath"].as_str() == Some(path))
        .collect();
    assert_eq!(found.len(), 1, "jobs of {path}: {found:?}");
    assert_eq!(found[0]["origin"], "delegate", "{}", found[0]);
    found[0].clone()
}

fn delegated_signal_halts(sig: &str) {
    let aft = Aft::allowing_cli_run();
    let svc = aft.serve();
    let (mut child, rx) = start_run(&aft, FOREVER);
    let file = aft.path("job.syncjs").display().to_string();
    assert_eq!(delegated_job(&svc, &file)["status"], "running");
    signal(child.id(), sig);
    let (code, took) = wait_exit(&mut child, Duration::from_secs(5));
    let log = rest(&rx);
    assert_eq!(code, Some(1), "SIG{sig}: log after ready:\n{log}");
    assert!(took < Duration::from_secs(1), "SIG{sig} took {took:?}");
    assert!(log.contains(&format!("SIG{sig} received")), "{log}");
    // aft run waited for the job's end, so the service already shows it halted.
    let job = delegated_job(&svc, &file);
    assert_eq!(job["status"], "halted", "{job}");
    let running: Vec<Value> = jobs(&svc)
        .into_iter()
        .filter(|j| matches!(j["status"].as_str(), Some("queued" | "running")))
        .collect();
    assert!(running.is_empty(), "jobs left running: {running:?}");
}

#[test]
fn delegated_run_is_halted_by_sigint() {
    delegated_signal_halts("INT");
}

#[test]
fn delegated_run_is_halted_by_sigterm() {
    delegated_signal_halts("TERM");
}

#[test]
fn delegated_run_is_halted_by_sighup() {
    delegated_signal_halts("HUP");
}

#[test]
fn killed_delegating_client_halts_its_job_and_frees_the_slot() {
    let aft = Aft::allowing_cli_run();
    aft.ok(&["settings", "set", "max-concurrent-jobs", "1"]);
    let svc = aft.serve();
    let (mut child, _rx) = start_run(&aft, FOREVER);
    let file = aft.path("job.syncjs").display().to_string();
    assert_eq!(delegated_job(&svc, &file)["status"], "running");
    child.kill().unwrap(); // SIGKILL: no handler runs, no halt request is sent
    child.wait().unwrap();

    let ended = poll(Duration::from_secs(5), || {
        let job = delegated_job(&svc, &file);
        (job["status"] != "running").then_some(job)
    });
    let job = ended.expect("the job of the killed aft run was still running after 5 s");
    assert_eq!(job["status"], "halted", "{job}");

    // With one slot, a next delegated run only runs if the dead client's job let go of it.
    let second = aft.write("second.syncjs", "Log('second ran');");
    let mut next = aft
        .command(&["run", "-f", &second])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (code, _) = wait_exit(&mut next, Duration::from_secs(10));
    let mut out = String::new();
    next.stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("second ran"), "{out}");
    assert_eq!(delegated_job(&svc, &second)["status"], "succeeded");
}

/// Run a script that watches entry `entry` with no `WatchDir` while files appear in
/// `root` (the local folder behind the entry's root): files directly in the root fire,
/// files in a subfolder do not.
fn watcher_without_watch_dir_sees_the_root_only(aft: &Aft, entry: &str, root: &std::path::Path) {
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("before.txt"), "1").unwrap();
    std::fs::write(root.join("sub/deep-before.txt"), "1").unwrap();
    let script = format!(
        r#"var w = new RemoteWatcher("{entry}");
w.PollSeconds = 0.2;
w.Start(function (evt) {{ Log("event " + evt.Event + " " + evt.Object); }});
Log("ready");
WaitForHaltSignal();
w.Stop();"#
    );
    let (mut child, rx) = start_run(aft, &script);
    let mut log = String::new();
    let mut wait_for = |needle: &str, log: &mut String| {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !log.contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    log.push_str(&line);
                    log.push('\n');
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!("no {needle:?} within 15 s; log:\n{log}");
                }
            }
        }
    };
    wait_for("event EVT_CREATE /before.txt", &mut log);
    // The subfolder file comes first: a recursive watch would report it no later than
    // the root file.
    std::fs::write(root.join("sub/deep-after.txt"), "2").unwrap();
    std::fs::write(root.join("after.txt"), "2").unwrap();
    wait_for("event EVT_CREATE /after.txt", &mut log);
    signal(child.id(), "INT");
    let (code, _) = wait_exit(&mut child, Duration::from_secs(5));
    log.push_str(&rest(&rx));
    assert_eq!(code, Some(1), "{log}");
    assert!(
        !log.contains("deep"),
        "a subfolder's file was reported:\n{log}"
    );
    assert!(!log.contains("ERROR"), "{log}");
}

#[test]
fn remote_watcher_without_watch_dir_watches_a_disk_entry_root() {
    let aft = Aft::allowing_cli_run();
    let root = tempfile::tempdir().unwrap();
    aft.ok(&[
        "vfs",
        "add",
        "inbox",
        "--type",
        "disk",
        "--set",
        &format!("Root={}", root.path().display()),
    ]);
    watcher_without_watch_dir_sees_the_root_only(&aft, "inbox", root.path());
}

#[test]
fn remote_watcher_without_watch_dir_watches_an_sftp_entry_base_dir() {
    let aft = Aft::allowing_cli_run();
    // That entry's BaseDir.
    let base = folder_in_sftp_home("watch-root-");
    aft.secret("sftp-pass", &peer("AFT_TEST_SFTP_PASS"));
    aft.ok(&[
        "vfs",
        "add",
        "Partner SFTP",
        "--type",
        "sftp",
        "--set",
        &format!("Host={}", peer("AFT_TEST_SFTP_ADDR")),
        "--set",
        &format!("User={}", peer("AFT_TEST_SFTP_USER")),
        "--set",
        "PassFromSecret=sftp-pass",
        "--set",
        &format!("HostKeySHA256={}", peer("AFT_TEST_SFTP_HOSTKEY_SHA256")),
        "--set",
        &format!("BaseDir={}", base.path().display()),
    ]);
    watcher_without_watch_dir_sees_the_root_only(&aft, "Partner SFTP", base.path());
}
