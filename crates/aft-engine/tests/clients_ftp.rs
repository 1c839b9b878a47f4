//! `FtpClient` and `FtpsClient` end to end against vsftpd (ci/peers/vsftpd.sh: LIST only,
//! explicit TLS with a test CA; vsftpd_implicit.sh: implicit TLS) and pyftpdlib
//! (ci/peers/pyftpdlib.sh: MLSD).

mod clients_support;

use aft_engine::MemoryHost;
use clients_support::{js, peer_env, run_end_to_end};

#[test]
fn ftps_client_explicit_tls_runs_the_end_to_end_script() {
    let make = format!(
        "(() => {{ const c = new FtpsClient(); c.Host = {}; c.User = {}; c.PassFromSecret = 'ftp-pass'; \
         c.TLSMode = TLS_MODE_EXPLICIT; c.TLSCAFile = {}; return c; }})()",
        js(&peer_env("AFT_TEST_FTP_ADDR")),
        js(&peer_env("AFT_TEST_FTP_USER")),
        js(&peer_env("AFT_TEST_FTP_CA")),
    );
    run_end_to_end(
        &make,
        MemoryHost::new().with_secret("ftp-pass", &peer_env("AFT_TEST_FTP_PASS")),
    );
}

#[test]
fn ftp_client_plain_with_mlsd_runs_the_end_to_end_script() {
    let make = format!(
        "(() => {{ const c = new FtpClient(); c.Host = {}; c.User = {}; c.Pass = {}; return c; }})()",
        js(&peer_env("AFT_TEST_FTP_MLSD_ADDR")),
        js(&peer_env("AFT_TEST_FTP_MLSD_USER")),
        js(&peer_env("AFT_TEST_FTP_MLSD_PASS")),
    );
    run_end_to_end(&make, MemoryHost::new());
}

#[test]
fn ftps_client_implicit_tls_connects_lists_and_round_trips_a_file() {
    let local = tempfile::tempdir().unwrap();
    clients_support::local_fixture(local.path());
    let base = format!("/{}", clients_support::unique("implicit"));
    let ran = clients_support::run(
        &format!(
            r#"
            const c = new FtpsClient();
            c.Host = {host}; c.User = {user}; c.PassFromSecret = 'ftp-pass';
            c.TLSMode = TLS_MODE_IMPLICIT; c.TLSCAFile = {ca};
            check(c.Connect(), 'Connect: ' + c.LastError());
            check(c.UploadFile({local} + '/out/a.csv', {base} + '/a.csv'), 'UploadFile: ' + c.LastError());
            check(c.ListFiles({base}, '*.csv').length === 1, 'ListFiles');
            check(c.DownloadFile({base} + '/a.csv', {local} + '/back/a.csv'), 'DownloadFile: ' + c.LastError());
            check(c.DelTree({base}) && c.Close(), 'clean up');
            "#,
            host = js(&peer_env("AFT_TEST_FTPS_IMPLICIT_ADDR")),
            user = js(&peer_env("AFT_TEST_FTP_USER")),
            ca = js(&peer_env("AFT_TEST_FTP_CA")),
            local = js(local.path().to_str().unwrap()),
            base = js(&base),
        ),
        MemoryHost::new().with_secret("ftp-pass", &peer_env("AFT_TEST_FTP_PASS")),
    );
    ran.assert_ok();
    assert_eq!(
        std::fs::read_to_string(local.path().join("back/a.csv")).unwrap(),
        "alpha"
    );
}
