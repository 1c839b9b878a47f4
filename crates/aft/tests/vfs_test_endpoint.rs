//! `POST /v1/vfs/{name}/test` end to end: the real `aft serve` on a free loopback port with a
//! temp data directory, testing entries against a temp folder and the real OpenSSH sshd of
//! `ci/peers/sshd.sh`.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

const AFT: &str = env!("CARGO_BIN_EXE_aft");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A test server variable, failing (not skipping) when the peer is not running.
fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start the sshd peer (ci/peers/sshd.sh) or run ci/test.sh")
    })
}

/// A running `aft serve`, killed on drop.
struct Service {
    child: Child,
    data: PathBuf,
    port: u16,
}

impl Service {
    fn start(data: &Path) -> Service {
        let port = free_port();
        let mut child = Command::new(AFT)
            .arg("--data")
            .arg(data)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env_remove("AFT_DATABASE")
            .env("AFT_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("listening on") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(60))
            .expect("aft serve did not start listening within 60 s");
        Service {
            child,
            data: data.to_path_buf(),
            port,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    /// A client trusting the service's self-signed certificate.
    fn client(&self) -> reqwest::Client {
        // Two rustls crypto providers are compiled in; pick one as the binary does.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let pem = std::fs::read(self.data.join("tls/cert.pem")).unwrap();
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .build()
            .unwrap()
    }

    fn local_token(&self) -> String {
        let info: Value =
            serde_json::from_slice(&std::fs::read(self.data.join("service.json")).unwrap())
                .unwrap();
        info["token"].as_str().unwrap().to_string()
    }

    /// Send `body` with the local-admin token; the status and the JSON answer (`null` if none).
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .client()
            .request(method, self.url(path))
            .header("X-Aft-Local-Token", self.local_token());
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn add_vfs(&self, name: &str, kind: &str, settings: Value) {
        let (status, answer) = self
            .call(
                reqwest::Method::POST,
                "/v1/vfs",
                Some(json!({"name": name, "type": kind, "settings": settings})),
            )
            .await;
        assert_eq!(status, 201, "creating vfs {name}: {answer}");
    }

    async fn test_vfs(&self, name: &str) -> (u16, Value) {
        self.call(
            reqwest::Method::POST,
            &format!("/v1/vfs/{name}/test"),
            Some(json!({})),
        )
        .await
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_entry_test_counts_root_entries_and_unknown_entry_is_404() {
    let data = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("a.txt"), b"a").unwrap();
    std::fs::write(root.path().join("b.txt"), b"b").unwrap();
    std::fs::create_dir(root.path().join("sub")).unwrap();
    let svc = Service::start(data.path());
    svc.add_vfs(
        "scratch",
        "disk",
        json!({"Root": root.path().to_str().unwrap()}),
    )
    .await;

    let (status, answer) = svc.test_vfs("scratch").await;
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

    let (status, answer) = svc.test_vfs("no-such-entry").await;
    assert_eq!(status, 404, "{answer}");
    assert!(answer["error"].as_str().is_some(), "{answer}");

    // Without the local token the route is closed like the other VFS routes.
    let status = svc
        .client()
        .post(svc.url("/v1/vfs/scratch/test"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(status, 401);

    // The route is in the OpenAPI document.
    let (status, api) = svc
        .call(reqwest::Method::GET, "/v1/openapi.json", None)
        .await;
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
    let svc = Service::start(data.path());

    for (secret, value) in [
        ("sftp-pass", pass.as_str()),
        ("sftp-wrong", "not-the-password"),
    ] {
        let (status, answer) = svc
            .call(
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
    svc.add_vfs(
        "partner-pinned",
        "sftp",
        json!({"Host": addr, "User": user, "PassFromSecret": "sftp-pass", "HostKeySHA256": host_key}),
    )
    .await;
    svc.add_vfs(
        "partner-unpinned",
        "sftp",
        json!({"Host": addr, "User": user, "PassFromSecret": "sftp-pass"}),
    )
    .await;
    svc.add_vfs(
        "partner-wrong-md5",
        "sftp",
        json!({"Host": addr, "User": user, "PassFromSecret": "sftp-pass",
               "HostKeyMD5": "MD5:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff"}),
    )
    .await;
    svc.add_vfs(
        "partner-wrong-pass",
        "sftp",
        json!({"Host": addr, "User": user, "PassFromSecret": "sftp-wrong", "HostKeySHA256": host_key}),
    )
    .await;

    let (status, answer) = svc.test_vfs("partner-pinned").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["ok"], true, "{answer}");
    assert!(answer["entries"].is_u64(), "{answer}");
    assert!(answer["sample"].is_array(), "{answer}");
    assert!(
        answer["target"].as_str().is_some_and(|t| t.contains(&user)),
        "{answer}"
    );

    let (status, answer) = svc.test_vfs("partner-unpinned").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["ok"], false, "{answer}");
    assert_eq!(answer["fingerprint"], host_key.as_str(), "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("host key")),
        "{answer}"
    );

    let (status, answer) = svc.test_vfs("partner-wrong-md5").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["ok"], false, "{answer}");
    assert_eq!(answer["fingerprint"], host_key.as_str(), "{answer}");
    let error = answer["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("does not match") && error.contains("HostKeyMD5"),
        "a failed MD5 pin is named, not reported as unpinned: {answer}"
    );

    let (status, answer) = svc.test_vfs("partner-wrong-pass").await;
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
