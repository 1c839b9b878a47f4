//! `CopyTo` between two different real backends without local staging (SFTP -> S3 ->
//! WebDAV), and `GetVFS` from VFS Library entries whose credentials are secrets.

mod clients_support;

use aft_engine::MemoryHost;
use clients_support::{js, local_fixture, peer_env, run, unique};
use serde_json::json;

fn host() -> MemoryHost {
    MemoryHost::new()
        .with_secret("sftp-pass", &peer_env("AFT_TEST_SFTP_PASS"))
        .with_secret("s3-secret", &peer_env("AFT_TEST_S3_SECRET"))
        .with_secret("dav-pass", &peer_env("AFT_TEST_WEBDAV_PASS"))
        .with_vfs_entry(
            "Partner SFTP",
            json!({
                "type": "sftp",
                "Host": peer_env("AFT_TEST_SFTP_ADDR"),
                "User": peer_env("AFT_TEST_SFTP_USER"),
                "PassFromSecret": "sftp-pass",
                "HostKeySHA256": peer_env("AFT_TEST_SFTP_HOSTKEY_SHA256"),
                "BaseDir": peer_env("AFT_TEST_SFTP_HOME"),
            }),
        )
        .with_vfs_entry(
            "archive",
            json!({
                "type": "s3",
                "Endpoint": peer_env("AFT_TEST_S3_ENDPOINT"),
                "Bucket": peer_env("AFT_TEST_S3_BUCKET"),
                "Region": peer_env("AFT_TEST_S3_REGION"),
                "APIKeyID": peer_env("AFT_TEST_S3_KEY_ID"),
                "APIKeySecretFromSecret": "s3-secret",
            }),
        )
}

#[test]
fn copy_to_relays_files_and_folders_between_sftp_s3_and_webdav() {
    let local = tempfile::tempdir().unwrap();
    local_fixture(local.path());
    let base = format!("/{}", unique("copy"));
    let ran = run(
        &format!(
            r#"
            const base = {base}, local = {local};
            const sftp = GetVFS('Partner SFTP');
            const s3 = GetVFS('archive');
            const dav = new WebDAVClient();
            dav.Endpoint = {dav_url}; dav.User = {dav_user}; dav.PassFromSecret = 'dav-pass';
            check(dav.Connect(), 'WebDAV Connect: ' + dav.LastError());

            check(sftp.Upload(local + '/sync', base), 'Upload a tree to SFTP: ' + sftp.LastError());
            check(sftp.CopyTo(s3, base + '/x.txt', base + '/one/x.txt'), 'CopyTo one file: ' + sftp.LastError());
            check(s3.Stat(base + '/one/x.txt').Size === 6, 'the file reached S3');
            check(sftp.CopyTo(s3, base, base + '/tree'), 'CopyTo a folder: ' + sftp.LastError());
            check(s3.Stat(base + '/tree/sub/y.txt').Size === 13, 'the tree reached S3');
            check(s3.CopyTo(dav, base + '/tree/*.txt', base), 'CopyTo a glob S3 -> WebDAV: ' + s3.LastError());
            check(dav.Stat(base + '/x.txt').Size === 6 && !dav.Exists(base + '/sub'), 'the glob took only x.txt');
            check(s3.CopyTo(dav, base + '/missing.txt', base) === false, 'a missing source fails');
            check(s3.LastError().indexOf('missing.txt') >= 0, s3.LastError());

            check(sftp.DelTree(base) && s3.DelTree(base) && dav.DelTree(base), 'clean up');
            "#,
            base = js(&base),
            local = js(local.path().to_str().unwrap()),
            dav_url = js(&peer_env("AFT_TEST_WEBDAV_URL")),
            dav_user = js(&peer_env("AFT_TEST_WEBDAV_USER")),
        ),
        host(),
    );
    ran.assert_ok();
    let relayed: Vec<_> = ran
        .transfers
        .iter()
        .filter(|t| t.source.starts_with("sftp") && t.outcome == "ok")
        .collect();
    assert!(
        relayed.len() >= 3,
        "SFTP -> S3 relays are recorded: {:?}",
        ran.transfers
    );
    assert!(
        ran.transfers
            .iter()
            .all(|t| !t.source.starts_with("file:") || t.target.starts_with("sftp")),
        "no relay was staged on local disk: {:?}",
        ran.transfers
    );
}

#[test]
fn get_vfs_entry_with_a_secret_password_connects_on_first_use() {
    let base = format!("/{}", unique("getvfs"));
    let ran = run(
        &format!(
            r#"
            const v = GetVFS('Partner SFTP');
            check(v instanceof SftpClient, 'GetVFS gives an SftpClient');
            check(v.PassFromSecret === 'sftp-pass' && v.Pass === '', 'only the secret name is in the fields');
            check(v.MakeDir({base}), 'first use connects: ' + v.LastError());
            check(v.Exists({base}), 'Exists');
            check(v.DelTree({base}), 'DelTree');
            "#,
            base = js(&base),
        ),
        host(),
    );
    ran.assert_ok();
}

#[test]
fn get_vfs_with_a_missing_secret_fails_and_names_it() {
    let mut h = MemoryHost::new();
    h = h.with_vfs_entry(
        "broken",
        json!({"type": "sftp", "Host": peer_env("AFT_TEST_SFTP_ADDR"), "User": "x", "PassFromSecret": "nope-secret",
               "HostKeySHA256": peer_env("AFT_TEST_SFTP_HOSTKEY_SHA256")}),
    );
    let ran = run(
        "const v = GetVFS('broken'); check(v.ListDir('/') === null, 'fails'); \
         check(v.LastError().indexOf('nope-secret') >= 0, v.LastError());",
        h,
    );
    ran.assert_ok();
}
