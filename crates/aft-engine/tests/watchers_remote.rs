//! `RemoteWatcher` against the real SFTP server (`ci/peers/sshd.sh`) and S3 (moto,
//! `ci/peers/moto.sh`): uploaded files fire
//! callbacks, a second run with the same host memory fires only what changed since, and a
//! file growing across polls fires once, after it stayed unchanged for `DelayBySeconds`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aft_engine::{HaltFlag, JobScope, JobSpec, Limits, LogCollector, MemoryHost, Outcome, run_job};
use aft_vfs::Vfs;
use serde_json::json;

/// A peer's environment variable; fails (not skips) naming it and `ci/test.sh` when unset.
fn peer_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the tests through ci/test.sh, which starts the real servers \
             (or start one with `mkdir -p /tmp/st && bash ci/peers/sshd.sh /tmp/st` (or moto.sh) \
             and source its output)"
        )
    })
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

fn sftp_fields() -> serde_json::Value {
    json!({
        "Host": peer_env("AFT_TEST_SFTP_ADDR"),
        "User": peer_env("AFT_TEST_SFTP_USER"),
        "PassFromSecret": "sftp-pass",
        "HostKeySHA256": peer_env("AFT_TEST_SFTP_HOSTKEY_SHA256"),
        "BaseDir": peer_env("AFT_TEST_SFTP_HOME"),
    })
}

fn s3_fields() -> serde_json::Value {
    json!({
        "Endpoint": peer_env("AFT_TEST_S3_ENDPOINT"),
        "Bucket": peer_env("AFT_TEST_S3_BUCKET"),
        "Region": peer_env("AFT_TEST_S3_REGION"),
        "APIKeyID": peer_env("AFT_TEST_S3_KEY_ID"),
        "APIKeySecretFromSecret": "s3-secret",
    })
}

/// A host with the VFS Library entry "Partner SFTP" (or "Archive S3" for `kind` "s3").
fn host_for(kind: &str) -> Arc<MemoryHost> {
    let host = MemoryHost::new();
    Arc::new(if kind == "s3" {
        let mut entry = s3_fields();
        entry["type"] = json!("s3");
        host.with_secret("s3-secret", &peer_env("AFT_TEST_S3_SECRET"))
            .with_vfs_entry("Archive S3", entry)
    } else {
        let mut entry = sftp_fields();
        entry["type"] = json!("sftp");
        host.with_secret("sftp-pass", &peer_env("AFT_TEST_SFTP_PASS"))
            .with_vfs_entry("Partner SFTP", entry)
    })
}

fn host() -> Arc<MemoryHost> {
    host_for("sftp")
}

/// The test's own S3 connection.
fn s3() -> Arc<dyn Vfs> {
    let secret = peer_env("AFT_TEST_S3_SECRET");
    let lookup = move |name: &str| (name == "s3-secret").then(|| secret.clone());
    aft_vfs::open_backend("s3", &s3_fields(), &lookup).expect("open the S3 backend")
}

/// The test's own SFTP connection, to drop and change files.
fn sftp() -> Arc<dyn Vfs> {
    let pass = peer_env("AFT_TEST_SFTP_PASS");
    let lookup = move |name: &str| (name == "sftp-pass").then(|| pass.clone());
    aft_vfs::open_backend("sftp", &sftp_fields(), &lookup).expect("open the SFTP backend")
}

fn put(vfs: &Arc<dyn Vfs>, path: &str, data: &[u8]) {
    runtime()
        .block_on(aft_vfs::write_all(&**vfs, path, data))
        .unwrap_or_else(|e| panic!("upload {path}: {e}"));
}

fn unique_dir(vfs: &Arc<dyn Vfs>, prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let dir = format!("/{prefix}-{}-{nanos:08x}", std::process::id());
    runtime().block_on(vfs.mkdir_all(&dir)).unwrap();
    dir
}

/// Watch `dir` on "Partner SFTP", logging `EVT <kind> <path>` per callback.
fn script(delay: u32) -> String {
    script_on("Partner SFTP", delay)
}

/// Watch `dir` on VFS entry `entry`, logging `EVT <kind> <path>` per callback.
fn script_on(entry: &str, delay: u32) -> String {
    format!(
        r#"
        var w = new RemoteWatcher("{entry}");
        w.PollSeconds = 1;
        w.DelayBySeconds = {delay};
        w.ExclusionFilter = ["*.tmp"];
        w.WatchDir(Param("dir"), true);
        w.Start(function (evt) {{ Log("EVT " + evt.Event + " " + evt.Object); }});
        Log("READY");
        WaitForHaltSignal();
        w.Stop();
        Log("STOPPED");
        "#
    )
}

struct Running {
    log: LogCollector,
    halt: HaltFlag,
    thread: std::thread::JoinHandle<Outcome>,
}

fn start(host: &Arc<MemoryHost>, dir: &str, delay: u32) -> Running {
    start_source(host, dir, script(delay))
}

fn start_source(host: &Arc<MemoryHost>, dir: &str, source: String) -> Running {
    let log = LogCollector::new();
    let halt = HaltFlag::new();
    let scope = JobScope {
        host: host.clone(),
        log: log.sink(),
        halt: halt.clone(),
        tokio: runtime().handle().clone(),
    };
    let spec = JobSpec {
        name: "remote-watch.syncjs".into(),
        source,
        params: BTreeMap::from([("dir".to_string(), dir.to_string())]),
    };
    let limits = Limits {
        timeout: Some(Duration::from_secs(90)),
        ..Limits::default()
    };
    let thread = std::thread::spawn(move || run_job(spec, scope, limits));
    let running = Running { log, halt, thread };
    running.wait_for(|_| true, "READY");
    running
}

impl Running {
    /// The callbacks so far, as `"<EVT> <path>"`.
    fn events(&self) -> Vec<String> {
        events_of(&self.log)
    }

    fn wait_for(&self, done: impl Fn(&[String]) -> bool, needle: &str) {
        let until = Instant::now() + Duration::from_secs(30);
        while !(done(&self.events()) && self.log.text().contains(needle)) {
            assert!(
                Instant::now() < until,
                "waited in vain; log so far:\n{}",
                self.log.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait until every event in `want` was seen.
    fn wait_events(&self, want: &[String]) {
        self.wait_for(|got| want.iter().all(|w| got.contains(w)), "");
    }

    fn stop(self) -> Vec<String> {
        self.halt.raise();
        let Running { log, thread, .. } = self;
        let outcome = thread.join().unwrap();
        let this_log = log;
        assert_eq!(outcome, Outcome::Halted, "{}", this_log.text());
        assert!(this_log.text().contains("STOPPED"), "{}", this_log.text());
        events_of(&this_log)
    }
}

/// The callbacks a log shows, as `"<EVT> <path>"`.
fn events_of(log: &LogCollector) -> Vec<String> {
    log.text()
        .lines()
        .filter_map(|l| l.strip_prefix("EVT ").map(str::to_string))
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn uploaded_files_fire_once_and_a_restart_fires_only_what_changed_since() {
    restart_fires_only_what_changed_since(sftp(), host(), "Partner SFTP");
}

#[test]
fn s3_objects_fire_once_and_a_restart_fires_only_what_changed_since() {
    restart_fires_only_what_changed_since(s3(), host_for("s3"), "Archive S3");
}

fn restart_fires_only_what_changed_since(vfs: Arc<dyn Vfs>, host: Arc<MemoryHost>, entry: &str) {
    let dir = unique_dir(&vfs, "rwatch");
    put(&vfs, &format!("{dir}/a.txt"), b"one");
    put(&vfs, &format!("{dir}/b.txt"), b"two");

    // First run: nothing remembered yet, so what is there fires, then what arrives.
    let first = start_source(&host, &dir, script_on(entry, 0));
    let before = vec![
        format!("EVT_CREATE {dir}/a.txt"),
        format!("EVT_CREATE {dir}/b.txt"),
    ];
    first.wait_events(&before);
    runtime()
        .block_on(vfs.mkdir_all(&format!("{dir}/sub")))
        .unwrap();
    put(&vfs, &format!("{dir}/sub/c.txt"), b"three");
    put(&vfs, &format!("{dir}/skip.tmp"), b"filtered");
    let arrived = format!("EVT_CREATE {dir}/sub/c.txt");
    first.wait_events(std::slice::from_ref(&arrived));
    // Two more polls: nothing may fire twice.
    std::thread::sleep(Duration::from_millis(2500));
    let mut want = before.clone();
    want.push(arrived);
    assert_eq!(sorted(first.stop()), sorted(want));

    // Changes while no job watches.
    put(&vfs, &format!("{dir}/a.txt"), b"one, longer");
    runtime()
        .block_on(vfs.remove_file(&format!("{dir}/b.txt")))
        .unwrap();
    put(&vfs, &format!("{dir}/d.txt"), b"four");

    // Second run with the same memory: only the changes fire, old files stay quiet.
    let second = start_source(&host, &dir, script_on(entry, 0));
    let changes = vec![
        format!("EVT_WRITE {dir}/a.txt"),
        format!("EVT_REMOVE {dir}/b.txt"),
        format!("EVT_CREATE {dir}/d.txt"),
    ];
    second.wait_events(&changes);
    put(&vfs, &format!("{dir}/e.txt"), b"five");
    let new_one = format!("EVT_CREATE {dir}/e.txt");
    second.wait_events(std::slice::from_ref(&new_one));
    std::thread::sleep(Duration::from_millis(2500));
    let mut want = changes;
    want.push(new_one);
    assert_eq!(sorted(second.stop()), sorted(want));

    // The memory holds exactly what is there now.
    let key = format!("{entry}|{dir}|remote-watch.syncjs");
    let mut remembered: Vec<String> = aft_engine::JobHost::watch_state_load(&*host, &key)
        .unwrap()
        .into_iter()
        .map(|s| s.path)
        .collect();
    remembered.sort();
    assert_eq!(
        remembered,
        vec![
            format!("{dir}/a.txt"),
            format!("{dir}/d.txt"),
            format!("{dir}/e.txt"),
            format!("{dir}/sub/c.txt"),
        ]
    );
    runtime()
        .block_on(aft_vfs::remove_tree(&*vfs, &dir))
        .unwrap();
}

#[test]
fn a_file_growing_across_polls_fires_once_after_it_is_stable() {
    let vfs = sftp();
    let dir = unique_dir(&vfs, "rwatch-slow");
    let host = host();
    let running = start(&host, &dir, 3);
    let path = format!("{dir}/slow.bin");
    let mut data = Vec::new();
    // Grows for about 4 s, longer than the 3 s quiet period, changing between polls.
    for chunk in 0..6u8 {
        data.extend(std::iter::repeat_n(chunk, 1000));
        put(&vfs, &path, &data);
        std::thread::sleep(Duration::from_millis(700));
        assert!(
            running.events().is_empty(),
            "fired while the file was still growing: {:?}",
            running.events()
        );
    }
    let done = Instant::now();
    let want = format!("EVT_CREATE {path}");
    running.wait_events(std::slice::from_ref(&want));
    let waited = done.elapsed();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(running.stop(), vec![want]);
    assert!(
        waited >= Duration::from_millis(1500),
        "fired only {waited:?} after the last write"
    );
    runtime()
        .block_on(aft_vfs::remove_tree(&*vfs, &dir))
        .unwrap();
}

#[test]
fn a_callback_that_throws_leaves_its_file_to_fire_again_on_the_next_run() {
    let vfs = sftp();
    let dir = unique_dir(&vfs, "rwatch-crash");
    put(&vfs, &format!("{dir}/x.txt"), b"x");
    let host = host();
    let crashing = start_source(
        &host,
        &dir,
        r#"
        var w = new RemoteWatcher("Partner SFTP");
        w.PollSeconds = 1;
        w.WatchDir(Param("dir"), true);
        w.Start(function (evt) { Log("EVT " + evt.Event + " " + evt.Object); throw new Error("boom"); });
        Log("READY");
        WaitForHaltSignal();
        "#
        .into(),
    );
    let Running { log, thread, .. } = crashing;
    let outcome = thread.join().unwrap();
    assert!(
        !outcome.is_success() && outcome != Outcome::Halted,
        "the throw must fail the job: {outcome:?}"
    );
    assert_eq!(events_of(&log), vec![format!("EVT_CREATE {dir}/x.txt")]);

    // The callback never returned, so the file was not remembered: it fires again.
    let again = start(&host, &dir, 0);
    let want = format!("EVT_CREATE {dir}/x.txt");
    again.wait_events(std::slice::from_ref(&want));
    std::thread::sleep(Duration::from_millis(2000));
    assert_eq!(again.stop(), vec![want]);
    runtime()
        .block_on(aft_vfs::remove_tree(&*vfs, &dir))
        .unwrap();
}
