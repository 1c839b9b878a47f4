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
