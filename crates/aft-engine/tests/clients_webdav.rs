//! `WebDAVClient` end to end against wsgidav (ci/peers/wsgidav.sh), its password from a
//! secret; a wrong password fails `Connect` with the reason in `LastError()`.

mod clients_support;

use aft_engine::MemoryHost;
use clients_support::{js, peer_env, run, run_end_to_end};

fn webdav_client() -> String {
    format!(
        "(() => {{ const c = new WebDAVClient(); c.Endpoint = {}; c.User = {}; \
         c.PassFromSecret = 'dav-pass'; return c; }})()",
        js(&peer_env("AFT_TEST_WEBDAV_URL")),
        js(&peer_env("AFT_TEST_WEBDAV_USER")),
    )
}

#[test]
fn webdav_client_runs_the_end_to_end_script() {
    run_end_to_end(
        &webdav_client(),
        MemoryHost::new().with_secret("dav-pass", &peer_env("AFT_TEST_WEBDAV_PASS")),
    );
}

#[test]
fn webdav_wrong_password_fails_connect_with_a_reason() {
    let ran = run(
        &format!(
            "const c = {}; check(c.Connect() === false, 'Connect must fail'); \
             check(c.LastError() !== '', 'LastError says why');",
            webdav_client()
        ),
        MemoryHost::new().with_secret("dav-pass", "wrong-password"),
    );
    ran.assert_ok();
    assert!(ran.log().contains("Connect:"), "{}", ran.log());
}
