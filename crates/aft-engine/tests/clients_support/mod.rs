//! Shared by the `clients_*` tests: run a SyncJS script through the engine with an
//! in-memory host, read the real peers' settings, and one end-to-end script that every
//! client runs against its own server.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use aft_engine::{
    HaltFlag, JobScope, JobSpec, Limits, LogCollector, LogLevel, MemoryHost, Outcome,
    TransferRecord, run_job,
};

/// The tokio runtime host calls block on (one per test binary).
pub fn tokio() -> tokio::runtime::Handle {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime for the tests")
    })
    .handle()
    .clone()
}

/// `check(cond, what)`: throws with the description when `cond` is false.
pub const PRELUDE: &str =
    "function check(c, what) { if (!c) throw new Error('check failed: ' + what); }\n";

/// How a script ended, its log and the transfers it recorded.
pub struct Ran {
    /// The job's outcome.
    pub outcome: Outcome,
    /// Every log line with its level.
    pub lines: Vec<(LogLevel, String)>,
    /// Every transfer recorded.
    pub transfers: Vec<TransferRecord>,
}

impl Ran {
    /// The log as one string.
    pub fn log(&self) -> String {
        self.lines
            .iter()
            .map(|(_, l)| l.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Panic with the log unless the script succeeded.
    pub fn assert_ok(&self) {
        assert!(
            self.outcome.is_success(),
            "script failed: {}\n--- log ---\n{}",
            self.outcome,
            self.log()
        );
    }
}

/// Run `source` (after [`PRELUDE`]) with `host`.
pub fn run(source: &str, host: MemoryHost) -> Ran {
    run_with_halt(source, host, HaltFlag::new())
}

/// Run `source` with `host` and a halt flag the test may raise.
pub fn run_with_halt(source: &str, host: MemoryHost, halt: HaltFlag) -> Ran {
    let host = Arc::new(host);
    let log = LogCollector::new();
    let scope = JobScope {
        host: host.clone(),
        log: log.sink(),
        halt,
        tokio: tokio(),
    };
    let spec = JobSpec {
        name: "clients-test.syncjs".into(),
        source: format!("{PRELUDE}{source}"),
        params: BTreeMap::new(),
    };
    let outcome = run_job(spec, scope, Limits::default());
    let transfers = host.transfers.lock().unwrap().clone();
    Ran {
        outcome,
        lines: log.lines(),
        transfers,
    }
}

/// A peer's environment variable; fails (not skips) naming it and `ci/test.sh` when unset.
pub fn peer_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the tests through ci/test.sh, which starts the real servers \
             (or start the peer with `bash ci/peers/NAME.sh DIR` and source its output)"
        )
    })
}

/// A JS string literal for `s`.
pub fn js(s: &str) -> String {
    serde_json::to_string(s).expect("string to JSON")
}

/// A folder name no other test run uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{:08x}", std::process::id(), rand_u32())
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish() as u32
}

/// Local files the end-to-end script uploads: `out/a.csv` (5 bytes), `out/b.csv` (4),
/// `out/skip.txt`, `out2/a.csv` (13), `sync/x.txt`, `sync/sub/y.txt`.
pub fn local_fixture(dir: &Path) {
    let write = |rel: &str, text: &str| {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write("out/a.csv", "alpha");
    write("out/b.csv", "beta");
    write("out/skip.txt", "not a csv");
    write("out2/a.csv", "alpha-changed");
    write("sync/x.txt", "x-file");
    write("sync/sub/y.txt", "y-file-in-sub");
}

/// The end-to-end script every client runs: `make` is a JS expression giving a new,
/// unconnected client; `base` a remote folder of its own; `local` the fixture folder.
pub fn end_to_end_script(make: &str, base: &str, local: &str) -> String {
    format!(
        r#"
const base = {base}, local = {local};
const c = {make};
check(c.Connect(), 'Connect: ' + c.LastError());
const L = new LocalClient();
check(L.Connect(), 'LocalClient.Connect: ' + L.LastError());

// MakeDir and Upload with a glob (only the .csv files).
check(c.MakeDir(base + '/in'), 'MakeDir: ' + c.LastError());
check(c.Upload(local + '/out/*.csv', base + '/in'), 'Upload: ' + c.LastError());
const files = c.ListFiles(base + '/in', '*.csv');
check(files && files.length === 2, 'ListFiles found ' + JSON.stringify(files));
check(files[0].Name === 'a.csv' && files[1].Name === 'b.csv', 'names ' + files.map(f => f.Name));
check(files[0].Path === base + '/in/a.csv', 'Path ' + files[0].Path);
check(files[0].Size === 5 && files[1].Size === 4, 'sizes');
check(files[0].IsDir === false, 'IsDir of a file');
check(files[0].ModTime instanceof Date && !isNaN(files[0].ModTime.getTime()), 'ModTime is a Date');
check(c.ListFiles(base + '/in', '*.txt').length === 0, 'the glob left skip.txt at home');

// ListDir modes and the recursive listings.
const top = c.ListDir(base, LIST_ALL);
check(top.length === 1 && top[0].Name === 'in' && top[0].IsDir === true, 'ListDir ' + JSON.stringify(top));
check(c.ListDir(base, LIST_FILES).length === 0, 'LIST_FILES of base');
check(c.ListDir(base, LIST_DIRS).length === 1, 'LIST_DIRS of base');
check(c.ListDir(base + '/in', LIST_FILES).length === 2, 'LIST_FILES of in');
check(c.ListDirR(base, LIST_FILES).length === 2, 'ListDirR files');
check(c.ListFilesR(base, 'b.*').length === 1, 'ListFilesR');

// Policies: NeverOverwrite (the default) keeps the file; OverwriteIfDiffSize replaces it.
check(c.Options.UploadPolicy === NeverOverwrite, 'default policy');
check(c.UploadFile(local + '/out2/a.csv', base + '/in/a.csv'), 'UploadFile (skipped): ' + c.LastError());
check(c.Stat(base + '/in/a.csv').Size === 5, 'NeverOverwrite kept the old file');
c.Options.UploadPolicy = OverwriteIfDiffSize;
check(c.UploadFile(local + '/out2/a.csv', base + '/in/a.csv'), 'UploadFile (diff size): ' + c.LastError());
check(c.Stat(base + '/in/a.csv').Size === 13, 'OverwriteIfDiffSize replaced it');
c.Options.UploadPolicy = OverwriteIfNewer;
check(c.UploadFile(local + '/out/a.csv', base + '/in/a.csv'), 'UploadFile (newer): ' + c.LastError());
check(c.Stat(base + '/in/a.csv').Size === 13, 'OverwriteIfNewer kept the newer remote file');

// Temp names leave no partial file behind; AlwaysOverwrite replaces.
c.Options.UploadPolicy = AlwaysOverwrite;
c.Options.UploadWithTempName = true;
check(c.UploadFile(local + '/out/a.csv', base + '/in/a.csv'), 'UploadFile (temp name): ' + c.LastError());
check(c.Stat(base + '/in/a.csv').Size === 5, 'AlwaysOverwrite replaced it');
check(c.ListDir(base + '/in', LIST_ALL).every(e => !e.Name.endsWith('.aftpart')), 'no temp file left');

// Versioned uploads keep the replaced files in .ver/, at most VersionsToKeepRemote.
c.Options.VersionedUpload = true;
c.Options.VersionsToKeepRemote = 2;
for (let i = 0; i < 3; i++) check(c.UploadFile(local + '/out/b.csv', base + '/in/b.csv'), 'versioned ' + i + ': ' + c.LastError());
const versions = c.ListFiles(base + '/in/.ver', 'b.csv.*');
check(versions.length === 2, 'versions kept: ' + JSON.stringify(versions));
c.Options.VersionedUpload = false;

// Download with a glob and one file; the download policy is separate from the upload one.
c.Options.DownloadWithTempName = true;
check(c.Download(base + '/in/*.csv', local + '/down'), 'Download: ' + c.LastError());
check(L.Stat(local + '/down/a.csv').Size === 5 && L.Stat(local + '/down/b.csv').Size === 4, 'downloaded sizes');
check(L.ListDir(local + '/down', LIST_ALL).length === 2, 'no partial download left');
check(c.DownloadFile(base + '/in/b.csv', local + '/down/single.csv'), 'DownloadFile: ' + c.LastError());
check(L.Stat(local + '/down/single.csv').Size === 4, 'DownloadFile size');

// Stat, Exists, RenFile, DelFile.
check(c.RenFile(base + '/in/b.csv', base + '/in/c.csv'), 'RenFile: ' + c.LastError());
check(!c.Exists(base + '/in/b.csv') && c.Exists(base + '/in/c.csv'), 'Exists after RenFile');
const st = c.Stat(base + '/in/c.csv');
check(st.Name === 'c.csv' && st.Size === 4 && !st.IsDir && st.ModTime instanceof Date, 'Stat ' + JSON.stringify(st));
check(c.DelFile(base + '/in/c.csv'), 'DelFile: ' + c.LastError());
check(c.Exists(base + '/in/c.csv') === false, 'gone after DelFile');

// Failures return false (or null) and say why in LastError().
check(c.DelFile(base + '/in/missing.txt') === false, 'DelFile of a missing file is false');
check(c.LastError().indexOf('missing.txt') >= 0, 'LastError names the file: ' + c.LastError());
check(c.Stat(base + '/nope') === null && c.LastError() !== '', 'Stat of a missing path is null');
check(c.Exists(base + '/in/a.csv') && c.LastError() === '', 'a success clears LastError');

// Folders.
check(c.MakeDir(base + '/empty/deeper'), 'MakeDir nested');
check(c.DelDir(base + '/empty/deeper'), 'DelDir: ' + c.LastError());
check(c.MakeDir(base + '/old'), 'MakeDir old');
check(c.UploadFile(local + '/out/a.csv', base + '/old/a.csv'), 'into old');
check(c.RenDir(base + '/old', base + '/new'), 'RenDir: ' + c.LastError());
check(c.Exists(base + '/new/a.csv') && !c.Exists(base + '/old/a.csv'), 'RenDir moved the file');

// Sync: the first run copies everything, the second nothing; Delete removes extras.
check(c.Sync(local + '/sync', base + '/sync'), 'Sync: ' + c.LastError());
check(c.ListFilesR(base + '/sync', '*').length === 2, 'Sync copied the tree');
check(c.Stat(base + '/sync/sub/y.txt').Size === 13, 'Sync kept the sub folder');
check(c.Sync(local + '/sync', base + '/sync'), 'Sync again: ' + c.LastError());
check(c.UploadFile(local + '/out/a.csv', base + '/sync/extra.csv'), 'an extra remote file');
check(c.Sync(local + '/sync', base + '/sync', {{Delete: true}}), 'Sync Delete: ' + c.LastError());
check(!c.Exists(base + '/sync/extra.csv') && c.Exists(base + '/sync/x.txt'), 'Sync Delete removed only the extra');
check(c.Sync(local + '/sync-back', base + '/sync', {{Direction: 'download'}}), 'Sync download: ' + c.LastError());
check(L.Stat(local + '/sync-back/sub/y.txt').Size === 13, 'Sync download');

// DelTree, Close.
check(c.DelTree(base), 'DelTree: ' + c.LastError());
check(!c.Exists(base + '/in/a.csv'), 'DelTree removed the files');
check(c.Close(), 'Close');
check(c.ListDir('/', LIST_ALL) !== null, 'a closed client connects again on its next call: ' + c.LastError());
check(c.Close(), 'Close again');
"#,
        base = js(base),
        local = js(local),
        make = make,
    )
}

/// Run the end-to-end script and check what it recorded.
pub fn run_end_to_end(make: &str, host: MemoryHost) {
    let local = tempfile::tempdir().unwrap();
    local_fixture(local.path());
    let base = format!("/{}", unique("e2e"));
    let ran = run(
        &end_to_end_script(make, &base, local.path().to_str().unwrap()),
        host,
    );
    ran.assert_ok();
    let ok: Vec<&TransferRecord> = ran.transfers.iter().filter(|t| t.outcome == "ok").collect();
    assert!(ok.len() >= 10, "transfers recorded: {:?}", ran.transfers);
    assert!(
        ok.iter()
            .all(|t| t.hash.as_ref().is_some_and(|h| h.len() == 64)),
        "{ok:?}"
    );
    assert!(
        ran.transfers.iter().any(|t| t.outcome == "skipped"),
        "a skipped file is recorded"
    );
    let warnings: Vec<&String> = ran
        .lines
        .iter()
        .filter(|(l, _)| *l == LogLevel::Warn)
        .map(|(_, t)| t)
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("DelFile") && w.contains("missing.txt")),
        "{warnings:?}"
    );
}
