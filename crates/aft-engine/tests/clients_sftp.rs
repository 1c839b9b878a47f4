//! `SftpClient` end to end against OpenSSH's sshd (ci/peers/sshd.sh): password from a
//! secret with the host key pinned (paths below the user's home, `BaseDir`), key-file login, and an unpinned host key refused with
//! its fingerprint in `LastError()`.

mod clients_support;

use aft_engine::MemoryHost;
use clients_support::{js, peer_env, run, run_end_to_end};

fn sftp_client(auth: &str) -> String {
    format!(
        "(() => {{ const c = new SftpClient(); c.Host = {}; c.User = {}; c.HostKeySHA256 = {}; c.BaseDir = {}; {auth} return c; }})()",
        js(&peer_env("AFT_TEST_SFTP_ADDR")),
        js(&peer_env("AFT_TEST_SFTP_USER")),
        js(&peer_env("AFT_TEST_SFTP_HOSTKEY_SHA256")),
        js(&peer_env("AFT_TEST_SFTP_HOME")),
    )
}

fn host() -> MemoryHost {
    MemoryHost::new().with_secret("sftp-pass", &peer_env("AFT_TEST_SFTP_PASS"))
}

#[test]
fn sftp_client_runs_the_end_to_end_script() {
    run_end_to_end(&sftp_client("c.PassFromSecret = 'sftp-pass';"), host());
}

#[test]
fn sftp_client_logs_in_with_a_key_file() {
    let make = sftp_client(&format!(
        "c.KeyFile = {};",
        js(&peer_env("AFT_TEST_SFTP_KEY"))
    ));
    let ran = run(
        &format!(
            "const c = {make}; check(c.Connect(), 'Connect: ' + c.LastError()); check(c.ListDir('/', LIST_ALL) !== null, c.LastError()); c.Close();"
        ),
        MemoryHost::new(),
    );
    ran.assert_ok();
}

#[test]
fn sftp_unpinned_host_key_is_refused_with_its_fingerprint() {
    let fingerprint = peer_env("AFT_TEST_SFTP_HOSTKEY_SHA256");
    let ran = run(
        &format!(
            "const c = {}; c.HostKeySHA256 = ''; \
             check(c.Connect() === false, 'an unknown host key must be refused'); \
             check(c.LastError().indexOf({}) >= 0, 'the refusal names the fingerprint: ' + c.LastError());",
            sftp_client("c.PassFromSecret = 'sftp-pass';"),
            js(fingerprint.trim_start_matches("SHA256:")),
        ),
        host(),
    );
    ran.assert_ok();
}
