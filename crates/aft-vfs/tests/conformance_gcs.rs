//! The GCS backend against fake-gcs-server (started by `ci/peers/fakegcs.sh`), through the
//! shared conformance suite.

use std::sync::Arc;

use aft_vfs::Vfs;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with ci/test.sh, which starts fake-gcs-server and exports it")
    })
}

async fn gcs() -> Arc<dyn Vfs> {
    let fields = serde_json::json!({
        "Endpoint": env("AFT_TEST_GCS_ENDPOINT"),
        "Bucket": env("AFT_TEST_GCS_BUCKET"),
    });
    aft_vfs::open_backend("gcs", &fields, &|_| None).expect("GCS backend from fields")
}

aft_vfs::conformance_suite!(gcs);

#[tokio::test]
async fn missing_credentials_file_is_reported_by_path() {
    let fields = serde_json::json!({
        "Bucket": "b",
        "CredentialsFile": "/nonexistent/aft-gcs-key.json",
    });
    let Err(err) = aft_vfs::open_backend("gcs", &fields, &|_| None) else {
        panic!("a missing CredentialsFile must be refused");
    };
    assert!(
        err.to_string().contains("/nonexistent/aft-gcs-key.json"),
        "{err}"
    );
}
