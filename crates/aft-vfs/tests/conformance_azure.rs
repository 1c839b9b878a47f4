//! The Azure Blob backend against Azurite (started by `ci/peers/azurite.sh`), through the
//! shared conformance suite, plus what is particular to Azure.

use std::sync::Arc;

use aft_vfs::{Vfs, VfsError};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the tests with ci/test.sh, which starts Azurite and exports it"
        )
    })
}

fn fields() -> serde_json::Value {
    serde_json::json!({
        "Endpoint": env("AFT_TEST_AZURE_ENDPOINT"),
        "Container": env("AFT_TEST_AZURE_CONTAINER"),
        "AccountName": env("AFT_TEST_AZURE_ACCOUNT"),
        "AccountKeyFromSecret": "azure-key",
    })
}

fn secrets(name: &str) -> Option<String> {
    (name == "azure-key").then(|| env("AFT_TEST_AZURE_KEY"))
}

async fn azure() -> Arc<dyn Vfs> {
    aft_vfs::open_backend("azure", &fields(), &secrets).expect("Azure backend from fields")
}

aft_vfs::conformance_suite!(azure);

#[tokio::test]
async fn wrong_account_key_is_refused_naming_the_container() {
    let mut f = fields();
    f.as_object_mut().unwrap().remove("AccountKeyFromSecret");
    // A well-formed key that is not the account's.
    f["AccountKey"] = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ==".into();
    let vfs = aft_vfs::open_backend("azure", &f, &|_| None).expect("backend");
    let err = vfs.stat("/anything.txt").await.expect_err("wrong key");
    assert!(matches!(err, VfsError::PermissionDenied(_)), "{err:?}");
    assert!(
        err.to_string().contains(&env("AFT_TEST_AZURE_CONTAINER")),
        "{err}"
    );
}
