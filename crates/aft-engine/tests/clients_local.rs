//! `LocalClient` (the local disk as a remote) through the whole client interface, plus the
//! behaviours that need no server: halts, bad options, OTFE round trips, `GetVFS` errors.

mod clients_support;

use aft_engine::{HaltFlag, MemoryHost};
use clients_support::{js, local_fixture, run, run_end_to_end, run_with_halt};

#[test]
fn local_client_runs_the_end_to_end_script() {
    let remote = tempfile::tempdir().unwrap();
    let make = format!(
        "(() => {{ const c = new LocalClient(); c.Root = {}; return c; }})()",
        js(remote.path().to_str().unwrap())
    );
    run_end_to_end(&make, MemoryHost::new());
}

#[test]
fn otfe_upload_stores_ciphertext_and_download_decrypts_it() {
    let local = tempfile::tempdir().unwrap();
    local_fixture(local.path());
    let remote = tempfile::tempdir().unwrap();
    let ran = run(
        &format!(
            r#"
            const c = new LocalClient(); c.Root = {remote};
            check(c.Connect(), c.LastError());
            c.Options.OTFE = true; c.Options.OTFEKeyFromSecret = 'otfe';
            check(c.UploadFile({local} + '/out/a.csv', '/enc/a.csv'), 'upload ' + c.LastError());
            check(c.Stat('/enc/a.csv').Size > 5, 'ciphertext is longer than the text');
            check(c.DownloadFile('/enc/a.csv', {local} + '/plain/a.csv'), 'download ' + c.LastError());
            c.Options.OTFEKeyFromSecret = 'wrong';
            check(c.DownloadFile('/enc/a.csv', {local} + '/plain/b.csv') === false, 'a missing key secret fails');
            check(c.LastError().indexOf('wrong') >= 0, c.LastError());
            "#,
            remote = js(remote.path().to_str().unwrap()),
            local = js(local.path().to_str().unwrap()),
        ),
        MemoryHost::new().with_secret("otfe", "a long passphrase for the test"),
    );
    ran.assert_ok();
    let stored = std::fs::read(remote.path().join("enc/a.csv")).unwrap();
    assert!(stored.starts_with(b"AFTE") && !stored.windows(5).any(|w| w == b"alpha"));
    assert_eq!(
        std::fs::read_to_string(local.path().join("plain/a.csv")).unwrap(),
        "alpha"
    );
}

#[test]
fn delete_source_and_adjust_time_apply_per_direction() {
    let local = tempfile::tempdir().unwrap();
    local_fixture(local.path());
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
    std::fs::File::options()
        .write(true)
        .open(local.path().join("out/a.csv"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    let remote = tempfile::tempdir().unwrap();
    let ran = run(
        &format!(
            r#"
            const c = new LocalClient(); c.Root = {remote};
            check(c.Connect(), c.LastError());
            c.Options.AdjustTimeOnUpload = true;
            c.Options.DeleteSourceAfterUpload = true;
            check(c.Upload({local} + '/out/a.csv', '/r'), 'upload ' + c.LastError());
            check(c.Stat('/r/a.csv').ModTime.getTime() === 1600000000000, 'time kept: ' + c.Stat('/r/a.csv').ModTime.toISOString());
            c.Options.DeleteSourceAfterDownload = false;
            check(c.Download('/r/a.csv', {local} + '/back'), 'download ' + c.LastError());
            check(c.Exists('/r/a.csv'), 'download kept the source (DeleteSourceAfterDownload off)');
            "#,
            remote = js(remote.path().to_str().unwrap()),
            local = js(local.path().to_str().unwrap()),
        ),
        MemoryHost::new(),
    );
    ran.assert_ok();
    assert!(
        !local.path().join("out/a.csv").exists(),
        "DeleteSourceAfterUpload removed the local file"
    );
    assert!(local.path().join("back/a.csv").exists());
}

#[test]
fn stop_on_transfer_error_stops_at_the_first_failure() {
    let local = tempfile::tempdir().unwrap();
    local_fixture(local.path());
    let remote = tempfile::tempdir().unwrap();
    // A folder where a file should go makes that one transfer fail.
    std::fs::create_dir_all(remote.path().join("r/a.csv")).unwrap();
    let ran = run(
        &format!(
            r#"
            const c = new LocalClient(); c.Root = {remote};
            check(c.Connect(), c.LastError());
            c.Options.UploadPolicy = AlwaysOverwrite;
            check(c.Upload({local} + '/out/*.csv', '/r') === false, 'one failure makes Upload false');
            check(c.Exists('/r/b.csv'), 'the other file still went (StopOnTransferError off)');
            c.DelFile('/r/b.csv');
            c.Options.StopOnTransferError = true;
            check(c.Upload({local} + '/out/*.csv', '/r') === false, 'false again');
            check(c.LastError().indexOf('a.csv') >= 0, c.LastError());
            check(!c.Exists('/r/b.csv'), 'StopOnTransferError stopped before b.csv');
            "#,
            remote = js(remote.path().to_str().unwrap()),
            local = js(local.path().to_str().unwrap()),
        ),
        MemoryHost::new(),
    );
    ran.assert_ok();
}

#[test]
fn bad_arguments_and_options_fail_with_a_reason() {
    let ran = run(
        r#"
        const c = new LocalClient();
        check(c.ListDir('/') !== null, 'a client connects on first use: ' + c.LastError());
        c.Close();
        c.Root = '/nonexistent/aft-test-dir';
        check(c.Connect() === false && c.LastError().indexOf('aft-test-dir') >= 0, 'missing Root: ' + c.LastError());
        c.Root = '/';
        check(c.Connect(), c.LastError());
        check(c.ListDir('/', 7) === null && c.LastError().indexOf('LIST_ALL') >= 0, 'bad mode');
        c.Options.UploadPolicy = 9;
        check(c.UploadFile('/etc/hostname', '/tmp/x') === false && c.LastError().indexOf('UploadPolicy') >= 0, 'bad policy');
        let threw = false;
        try { c.CopyTo({}, '/a', '/b'); } catch (e) { threw = e instanceof TypeError; }
        check(threw, 'CopyTo needs a client');
        threw = false;
        try { GetVFS('nope'); } catch (e) { threw = String(e).indexOf('nope') >= 0; }
        check(threw, 'GetVFS of an unknown entry throws naming it');
        threw = false;
        try { SftpClient(); } catch (e) { threw = e instanceof TypeError; }
        check(threw, 'constructors need new');
        check(LIST_ALL === 0 && LIST_FILES === 1 && LIST_DIRS === 2, 'list constants');
        check(TLS_MODE_NONE === 0 && TLS_MODE_EXPLICIT === 1 && TLS_MODE_IMPLICIT === 2, 'TLS constants');
        check(NeverOverwrite === 0 && AlwaysOverwrite === 1 && OverwriteIfDiffSize === 2 && OverwriteIfNewer === 3, 'policies');
        const s = new SftpClient();
        check(s.Host === '' && s.Options.VersionsToKeepRemote === 3 && s.Options.UploadPolicy === 0, 'defaults');
        check(new FtpsClient().TLSMode === TLS_MODE_EXPLICIT && new FtpClient().TLSMode === TLS_MODE_NONE, 'TLS defaults');
        "#,
        MemoryHost::new(),
    );
    ran.assert_ok();
}

#[test]
fn get_vfs_builds_a_client_that_connects_on_first_use() {
    let remote = tempfile::tempdir().unwrap();
    std::fs::write(remote.path().join("hello.txt"), "hi").unwrap();
    let host = MemoryHost::new().with_vfs_entry(
        "Disk",
        serde_json::json!({"type": "disk", "Root": remote.path().to_str().unwrap()}),
    );
    let ran = run(
        r#"
        const v = GetVFS('Disk');
        check(v instanceof LocalClient, 'a LocalClient');
        const l = v.ListDir('/', LIST_FILES);
        check(l && l.length === 1 && l[0].Name === 'hello.txt' && l[0].Size === 2, JSON.stringify(l) + v.LastError());
        "#,
        host,
    );
    ran.assert_ok();
}

#[test]
fn a_halt_stops_a_transfer_loop() {
    let local = tempfile::tempdir().unwrap();
    for i in 0..200 {
        std::fs::write(
            local.path().join(format!("f{i:03}.bin")),
            vec![7u8; 64 * 1024],
        )
        .unwrap();
    }
    let remote = tempfile::tempdir().unwrap();
    let halt = HaltFlag::new();
    let raiser = halt.clone();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(30));
        raiser.raise();
    });
    let ran = run_with_halt(
        &format!(
            r#"
            const c = new LocalClient(); c.Root = {remote};
            c.Connect();
            while (true) {{ c.Upload({local} + '/*.bin', '/r'); c.DelTree('/r'); }}
            "#,
            remote = js(remote.path().to_str().unwrap()),
            local = js(local.path().to_str().unwrap()),
        ),
        MemoryHost::new(),
        halt,
    );
    assert_eq!(ran.outcome, aft_engine::Outcome::Halted, "{}", ran.log());
}
