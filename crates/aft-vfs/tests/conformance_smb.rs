//! The SMB backend against Samba's smbd (started by `ci/peers/samba.sh`) through the shared
//! conformance suite: once on a server that requires SMB3 encryption, once on one that
//! requires signing only. Plus what is particular to SMB.

use std::sync::Arc;

use aft_vfs::{Vfs, VfsError};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with ci/test.sh, which starts smbd and exports it")
    })
}

fn fields(port_var: &str) -> serde_json::Value {
    serde_json::json!({
        "Host": env("AFT_TEST_SMB_HOST"),
        "Port": env(port_var),
        "Share": env("AFT_TEST_SMB_SHARE"),
        "User": env("AFT_TEST_SMB_USER"),
        "PassFromSecret": "smb-pass",
    })
}

fn secrets(name: &str) -> Option<String> {
    (name == "smb-pass").then(|| env("AFT_TEST_SMB_PASS"))
}

fn open(fields: &serde_json::Value) -> Arc<dyn Vfs> {
    aft_vfs::open_backend("smb", fields, &secrets).expect("SMB backend from fields")
}

mod encrypted {
    async fn smb() -> std::sync::Arc<dyn aft_vfs::Vfs> {
        super::open(&super::fields("AFT_TEST_SMB_PORT_ENCRYPTED"))
    }
    aft_vfs::conformance_suite!(smb);
}

mod signed {
    async fn smb() -> std::sync::Arc<dyn aft_vfs::Vfs> {
        super::open(&super::fields("AFT_TEST_SMB_PORT_SIGNED"))
    }
    aft_vfs::conformance_suite!(smb);
}

#[tokio::test]
async fn wrong_password_is_refused_naming_the_server() {
    let mut f = fields("AFT_TEST_SMB_PORT_SIGNED");
    f.as_object_mut().unwrap().remove("PassFromSecret");
    f["Pass"] = "not-the-password".into();
    let vfs = open(&f);
    let err = vfs.connect().await.expect_err("wrong password");
    assert!(
        matches!(err, VfsError::PermissionDenied(_) | VfsError::Auth(_)),
        "{err:?}"
    );
    assert!(err.to_string().contains(&vfs.describe()), "{err}");
}

#[tokio::test]
async fn nothing_listening_is_a_connection_error() {
    let mut f = fields("AFT_TEST_SMB_PORT_SIGNED");
    // The port below the two Samba instances' is not theirs.
    f["Port"] = "4444".into();
    let vfs = open(&f);
    let err = vfs.connect().await.expect_err("no server");
    assert!(err.to_string().contains(":4444"), "{err}");
}

#[tokio::test]
async fn a_folder_in_share_is_the_root_and_files_land_on_the_server_disk() {
    // Files written through SMB are the share's own files, at the path the UNC names.
    let dir = format!("base-{}", std::process::id());
    let root = open(&fields("AFT_TEST_SMB_PORT_ENCRYPTED"));
    root.mkdir_all(&format!("/{dir}")).await.expect("mkdir");
    let mut f = fields("AFT_TEST_SMB_PORT_ENCRYPTED");
    f["Share"] = format!("{}/{dir}", env("AFT_TEST_SMB_SHARE")).into();
    let based = open(&f);
    aft_vfs::write_all(&*based, "/in-base.txt", b"based")
        .await
        .expect("write");
    let on_disk = std::path::Path::new(&env("AFT_TEST_SMB_DIR_ENCRYPTED"))
        .join(&dir)
        .join("in-base.txt");
    assert_eq!(
        std::fs::read(&on_disk).expect("file on the server"),
        b"based"
    );
    assert!(
        based.describe().ends_with(&format!("/{dir}")),
        "{}",
        based.describe()
    );
    root.remove_all(&format!("/{dir}")).await.expect("cleanup");
}

#[tokio::test]
async fn resume_at_an_offset_cuts_a_longer_partial_there() {
    use aft_vfs::WriteMode;
    use tokio::io::AsyncWriteExt;
    let vfs = open(&fields("AFT_TEST_SMB_PORT_SIGNED"));
    let dir = format!("/resume-cut-{}", std::process::id());
    let path = format!("{dir}/partial.bin");
    vfs.mkdir_all(&dir).await.expect("mkdir");
    // 300,000 kept bytes; resuming at 100,000 must drop the 200,000 after it.
    aft_vfs::write_all(&*vfs, &path, &vec![0xAA; 300_000])
        .await
        .expect("write");
    let mut w = vfs
        .write(&path, WriteMode::ResumeAt(100_000))
        .await
        .expect("resume");
    w.write_all(&[0xBB; 50_000]).await.expect("write rest");
    w.shutdown().await.expect("finish");
    let on_disk = std::path::Path::new(&env("AFT_TEST_SMB_DIR_SIGNED")).join(&path[1..]);
    let got = std::fs::read(&on_disk).expect("file on the server");
    assert_eq!(
        got.len(),
        150_000,
        "stale bytes left after the resumed part"
    );
    assert!(got[..100_000].iter().all(|b| *b == 0xAA));
    assert!(got[100_000..].iter().all(|b| *b == 0xBB));
    // Resuming past the end is refused, not padded.
    let err = vfs
        .write(&path, WriteMode::ResumeAt(200_000))
        .await
        .map(|_| ())
        .expect_err("resume past the end");
    assert!(err.to_string().contains("holds only 150000 bytes"), "{err}");
    vfs.remove_all(&dir).await.expect("cleanup");
}

#[tokio::test]
async fn require_encryption_refuses_a_server_that_cannot_encrypt() {
    let mut f = fields("AFT_TEST_SMB_PORT_SIGNED");
    f["RequireEncryption"] = true.into();
    let vfs = open(&f);
    let err = vfs.connect().await.expect_err("signing-only server");
    let text = err.to_string();
    assert!(
        text.contains("does not offer SMB3 encryption") && text.contains(":4446"),
        "{text}"
    );
    let mut f = fields("AFT_TEST_SMB_PORT_ENCRYPTED");
    f["RequireEncryption"] = "true".into();
    let vfs = open(&f);
    vfs.connect().await.expect("the encrypted server");
    aft_vfs::write_all(&*vfs, "/enc-required.txt", b"sealed")
        .await
        .expect("write");
    vfs.remove_file("/enc-required.txt").await.expect("remove");
}
