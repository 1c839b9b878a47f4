//! `POST /v1/vfs/{name}/test` end to end: the real `aft serve` on a free loopback port with a
//! temp data directory, testing entries against a temp folder and the real OpenSSH sshd of
//! `ci/peers/sshd.sh`.

use serde_json::{Value, json};

mod support;

use support::{Service, peer as env};

/// Send `body` to `path` with the local-admin token; the status and the JSON answer.
async fn call(
    svc: &Service,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let token = svc.local_token();
    support::call(
        &svc.client(),
        method,
        &format!("{}{path}", svc.base()),
        Some(("X-Aft-Local-Token", &token)),
        body.as_ref(),
    )
    .await
}

async fn add_vfs(svc: &Service, name: &str, kind: &str, settings: Value) {
    let (status, answer) = call(
        svc,
        reqwest::Method::POST,
        "/v1/vfs",
        Some(json!({"name": name, "type": kind, "settings": settings})),
    )
    .await;
    assert_eq!(status, 201, "creating vfs {name}: {answer}");
}

async fn test_vfs(svc: &Service, name: &str) -> (u16, Value) {
    call(
        svc,
        reqwest::Method::POST,
        &format!("/v1/vfs/{name}/test"),
        Some(json!({})),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_entry_test_counts_root_entries_and_unknown_entry_is_404() {
    let data = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("a.txt"), b"a").unwrap();
    std::fs::write(root.path().join("b.txt"), b"b").unwrap();
    std::fs::create_dir(root.path().join("sub")).unwrap();
    let svc = Service::start(data.path(), &[], &[]);
    add_vfs(
        &svc,
        "scratch",
        "disk",
        json!({"Root": root.path().to_str().unwrap()}),
    )
    .await;

    let (status, answer) = test_vfs(&svc, "scratch").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(answer["entries"], 3, "{answer}");
    assert_eq!(answer["more"], false, "{answer}");
    assert_eq!(
        answer["sample"],
        json!(["a.txt", "b.txt", "sub/"]),
        "{answer}"
    );
    assert!(
        answer["target"].as_str().is_some_and(|t| !t.is_empty()),
        "{answer}"
    );

    let (status, answer) = test_vfs(&svc, "no-such-entry").await;
    assert_eq!(status, 404, "{answer}");
    assert!(answer["error"].as_str().is_some(), "{answer}");

    // Without the local token the route is closed like the other VFS routes.
    let status = svc
        .client()
        .post(format!("{}{}", svc.base(), "/v1/vfs/scratch/test"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(status, 401);

    // The route is in the OpenAPI document.
    let (status, api) = call(&svc, reqwest::Method::GET, "/v1/openapi.json", None).await;
    assert_eq!(status, 200);
    assert!(
        api["paths"]["/v1/vfs/{name}/test"]["post"].is_object(),
        "POST /v1/vfs/{{name}}/test missing from openapi.json"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_entry_test_reports_pinned_ok_unknown_host_key_and_bad_password() {
    let addr = env("AFT_TEST_SFTP_ADDR");
    let user = env("AFT_TEST_SFTP_USER");
    let pass = env("AFT_TEST_SFTP_PASS");
    let host_key = env("AFT_TEST_SFTP_HOSTKEY_SHA256");
    let data = tempfile::tempdir().unwrap();
    let svc = Service::start(data.path(), &[], &[]);

    for (secret, value) in [
        ("sftp-pass", pass.as_str()),
        ("sftp-wrong", "not-the-password"),
    ] {
        let (status, answer) = call(
            &svc,
            reqwest::Method::PUT,
            &format!("/v1/secrets/{secret}"),
            Some(json!({"value": value})),
        )
        .await;
        assert!(
            status == 204 || status == 200,
            "secret {secret}: {status} {answer}"
        );
    }
    add_vfs(&svc,
        "partner-pinned",
        "sftp",
        json!({"Host": addr, "User": user, "PassFromSecret": "sftp-pass", "HostKeySHA256": host_key}),
    )
    .await;
    add_vfs(
        &svc,
        "partner-unpinned",
        "sftp",
        json!({"Host": addr, "User": user, "PassFromSecret": "sftp-pass"}),
    )
    .await;
    add_vfs(
        &svc,
        "partner-wrong-md5",
        "sftp",
        json!({"Host": addr, "User": user, "PassFromSecret": "sftp-pass",
               "HostKeyMD5": "MD5:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff"}),
    )
    .await;
    add_vfs(&svc,
        "partner-wrong-pass",
        "sftp",
        json!({"Host": addr, "User": user, "PassFromSecret": "sftp-wrong", "HostKeySHA256": host_key}),
    )
    .await;

    let (status, answer) = test_vfs(&svc, "partner-pinned").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["ok"], true, "{answer}");
    assert!(answer["entries"].is_u64(), "{answer}");
    assert!(answer["sample"].is_array(), "{answer}");
    assert!(
        answer["target"].as_str().is_some_and(|t| t.contains(&user)),
        "{answer}"
    );

    let (status, answer) = test_vfs(&svc, "partner-unpinned").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["ok"], false, "{answer}");
    assert_eq!(answer["fingerprint"], host_key.as_str(), "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("host key")),
        "{answer}"
    );

    let (status, answer) = test_vfs(&svc, "partner-wrong-md5").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["ok"], false, "{answer}");
    assert_eq!(answer["fingerprint"], host_key.as_str(), "{answer}");
    let error = answer["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("does not match") && error.contains("HostKeyMD5"),
        "a failed MD5 pin is named, not reported as unpinned: {answer}"
    );

    let (status, answer) = test_vfs(&svc, "partner-wrong-pass").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["ok"], false, "{answer}");
    assert!(answer.get("fingerprint").is_none(), "{answer}");
    let error = answer["error"].as_str().unwrap_or_default().to_lowercase();
    assert!(error.contains("authentication"), "{answer}");
    assert!(
        !error.contains("not-the-password"),
        "secret leaked: {answer}"
    );
}
