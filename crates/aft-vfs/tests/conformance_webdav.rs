//! The WebDAV backend against wsgidav (started by `ci/peers/wsgidav.sh`), through the
//! shared conformance suite, plus what is particular to WebDAV.

use std::sync::Arc;

use aft_vfs::{Vfs, VfsError};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the tests with ci/test.sh, which starts wsgidav and exports it"
        )
    })
}

fn fields() -> serde_json::Value {
    serde_json::json!({
        "Endpoint": env("AFT_TEST_WEBDAV_URL"),
        "User": env("AFT_TEST_WEBDAV_USER"),
        "PassFromSecret": "dav-pass",
    })
}

fn secrets(name: &str) -> Option<String> {
    (name == "dav-pass").then(|| env("AFT_TEST_WEBDAV_PASS"))
}

async fn webdav() -> Arc<dyn Vfs> {
    aft_vfs::open_backend("webdav", &fields(), &secrets).expect("WebDAV backend from fields")
}

aft_vfs::conformance_suite!(webdav);

#[tokio::test]
async fn wrong_password_is_refused_naming_the_server() {
    let mut f = fields();
    f.as_object_mut().unwrap().remove("PassFromSecret");
    f["Pass"] = "not-the-password".into();
    let vfs = aft_vfs::open_backend("webdav", &f, &|_| None).expect("backend");
    let err = vfs.stat("/anything.txt").await.expect_err("wrong password");
    assert!(
        matches!(err, VfsError::PermissionDenied(_) | VfsError::Auth(_)),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&env("AFT_TEST_WEBDAV_URL")),
        "{err}"
    );
}

#[tokio::test]
async fn upload_with_wrong_password_is_refused_naming_the_file() {
    use tokio::io::AsyncWriteExt;

    let mut f = fields();
    f.as_object_mut().unwrap().remove("PassFromSecret");
    f["Pass"] = "not-the-password".into();
    let vfs = aft_vfs::open_backend("webdav", &f, &|_| None).expect("backend");
    let path = format!("/refused-{}.bin", std::process::id());
    // The refusal comes before the body is sent (the writer looks at the folder first); a
    // server that lets the body start answers 401 at its end instead. Either way the error
    // says so and names the file.
    let msg = match vfs.write(&path, aft_vfs::WriteMode::Create).await {
        Err(err) => {
            assert!(
                matches!(err, VfsError::PermissionDenied(_) | VfsError::Auth(_)),
                "{err:?}"
            );
            err.to_string()
        }
        Ok(mut writer) => {
            // Enough to need more than one chunk of the streamed body.
            let result = async {
                writer.write_all(&vec![7u8; 3 * 1024 * 1024]).await?;
                writer.shutdown().await
            }
            .await;
            let msg = result.expect_err("wrong password").to_string();
            assert!(msg.contains("401"), "{msg}");
            msg
        }
    };
    assert!(msg.contains(&path), "{msg}");
    assert!(
        matches!(webdav().await.stat(&path).await, Err(VfsError::NotFound(_))),
        "a refused upload leaves no file"
    );
}

#[tokio::test]
async fn upload_into_missing_folders_creates_them() {
    let vfs = webdav().await;
    let dir = format!("/auto-parents-{}", std::process::id());
    let path = format!("{dir}/a/b/file.txt");
    aft_vfs::write_all(&*vfs, &path, b"nested")
        .await
        .expect("upload into folders not made yet");
    assert_eq!(
        aft_vfs::read_all(&*vfs, &path).await.expect("read back"),
        b"nested"
    );
    vfs.remove_all(&dir).await.expect("cleanup");
}
