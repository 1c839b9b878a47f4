//! The S3 backend against moto (started by `ci/peers/moto.sh`), through the shared
//! conformance suite, plus what is particular to S3.

use std::sync::Arc;

use aft_vfs::{Vfs, VfsError};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with ci/test.sh, which starts moto and exports it")
    })
}

fn fields() -> serde_json::Value {
    serde_json::json!({
        "Endpoint": env("AFT_TEST_S3_ENDPOINT"),
        "Bucket": env("AFT_TEST_S3_BUCKET"),
        "Region": env("AFT_TEST_S3_REGION"),
        "APIKeyID": env("AFT_TEST_S3_KEY_ID"),
        "APIKeySecretFromSecret": "s3-secret",
    })
}

fn secrets(name: &str) -> Option<String> {
    (name == "s3-secret").then(|| env("AFT_TEST_S3_SECRET"))
}

async fn s3() -> Arc<dyn Vfs> {
    aft_vfs::open_backend("s3", &fields(), &secrets).expect("S3 backend from fields")
}

aft_vfs::conformance_suite!(s3);

#[tokio::test]
async fn missing_secret_is_named_in_the_error() {
    let Err(err) = aft_vfs::open_backend("s3", &fields(), &|_| None) else {
        panic!("an unknown secret must be refused");
    };
    let msg = err.to_string();
    assert!(
        msg.contains("s3-secret") && msg.contains("APIKeySecretFromSecret"),
        "{msg}"
    );
}

#[tokio::test]
async fn missing_bucket_is_not_found_with_the_bucket_in_the_message() {
    let mut f = fields();
    f["Bucket"] = "aft-no-such-bucket".into();
    let vfs = aft_vfs::open_backend("s3", &f, &secrets).expect("backend");
    let err = vfs.stat("/x.txt").await.expect_err("bucket does not exist");
    assert!(err.to_string().contains("aft-no-such-bucket"), "{err}");
}

#[tokio::test]
async fn use_metadata_when_listing_reports_etags_of_listed_files() {
    let mut f = fields();
    f["UseMetadataWhenListing"] = true.into();
    let vfs = aft_vfs::open_backend("s3", &f, &secrets).expect("backend");
    let dir = format!("/meta-listing-{}", std::process::id());
    aft_vfs::write_all(&*vfs, &format!("{dir}/a.txt"), b"abc")
        .await
        .expect("write");
    let listed: Vec<aft_vfs::Entry> =
        futures::TryStreamExt::try_collect(vfs.list(&dir).await.expect("list"))
            .await
            .expect("listing");
    assert_eq!(listed.len(), 1);
    // MD5("abc"): a single-part upload's ETag.
    assert_eq!(
        listed[0].etag.as_deref(),
        Some("900150983cd24fb0d6963f7d28e17f72")
    );
    vfs.remove_all(&dir).await.expect("cleanup");
    assert!(matches!(
        vfs.stat(&format!("{dir}/a.txt")).await,
        Err(VfsError::NotFound(_))
    ));
}

/// The keys of the multipart uploads in progress on the test bucket. moto checks no
/// signature, so a plain `GET /bucket?uploads` answers.
async fn uploads_in_progress() -> Vec<String> {
    let url = format!(
        "{}/{}?uploads",
        env("AFT_TEST_S3_ENDPOINT").trim_end_matches('/'),
        env("AFT_TEST_S3_BUCKET")
    );
    let xml = reqwest::get(&url)
        .await
        .and_then(|r| r.error_for_status())
        .unwrap_or_else(|e| panic!("list multipart uploads at {url}: {e}"))
        .text()
        .await
        .expect("ListMultipartUploadsResult body");
    xml.split("<Upload>")
        .skip(1)
        .filter_map(|upload| {
            let start = upload.find("<Key>")? + "<Key>".len();
            let end = upload[start..].find("</Key>")? + start;
            Some(upload[start..end].to_string())
        })
        .collect()
}

#[tokio::test]
async fn writer_dropped_before_shutdown_aborts_its_multipart_upload() {
    use tokio::io::AsyncWriteExt;

    let vfs = s3().await;
    let path = format!("/abort-on-drop-{}/big.bin", std::process::id());
    let key = path.trim_start_matches('/').to_string();
    let mut writer = vfs
        .write(&path, aft_vfs::WriteMode::Create)
        .await
        .expect("open upload");
    // opendal keeps the first 8 MiB part back (a file of one part goes up in one PUT) and
    // starts the multipart upload with the second: write more than two parts.
    let piece = vec![0x5au8; 1024 * 1024];
    for _ in 0..17 {
        writer.write_all(&piece).await.expect("write a piece");
    }
    writer.flush().await.expect("first part sent");
    assert!(
        uploads_in_progress().await.contains(&key),
        "a multipart upload of {key} should be in progress after the first part"
    );

    drop(writer);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while uploads_in_progress().await.contains(&key) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the multipart upload of {key} was not aborted within 10 s of dropping its writer"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        matches!(vfs.stat(&path).await, Err(VfsError::NotFound(_))),
        "an abandoned upload must leave no object at {path}"
    );
}

#[tokio::test]
async fn writer_failing_mid_file_in_a_transfer_leaves_no_multipart_upload() {
    use tokio::io::AsyncWriteExt;

    // A writer dropped on an error path (the caller's `?`), the way a failing source ends a
    // transfer: the same abort applies.
    async fn upload_until_source_fails(vfs: &dyn Vfs, path: &str) -> Result<(), String> {
        let mut writer = vfs
            .write(path, aft_vfs::WriteMode::Create)
            .await
            .map_err(|e| e.to_string())?;
        let piece = vec![0xa5u8; 1024 * 1024];
        for i in 0..30 {
            if i == 20 {
                writer.flush().await.map_err(|e| e.to_string())?;
                let key = path.trim_start_matches('/').to_string();
                assert!(
                    uploads_in_progress().await.contains(&key),
                    "a multipart upload of {key} should be in progress before the failure"
                );
                return Err("source failed mid-file".into());
            }
            writer.write_all(&piece).await.map_err(|e| e.to_string())?;
        }
        writer.shutdown().await.map_err(|e| e.to_string())
    }

    let vfs = s3().await;
    let path = format!("/abort-on-error-{}/big.bin", std::process::id());
    let key = path.trim_start_matches('/').to_string();
    let err = upload_until_source_fails(&*vfs, &path)
        .await
        .expect_err("the source fails");
    assert_eq!(err, "source failed mid-file");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while uploads_in_progress().await.contains(&key) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the multipart upload of {key} was not aborted within 10 s of the failure"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        matches!(vfs.stat(&path).await, Err(VfsError::NotFound(_))),
        "a failed upload must leave no object at {path}"
    );
}
