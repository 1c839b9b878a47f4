//! Shared helpers for the script library's tests: run a SyncJS script through the
//! engine's public `run_job` with an in-memory host, and read the real peers' addresses.

#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use aft_engine::{
    HaltFlag, JobScope, JobSpec, Limits, LogCollector, LogLevel, MemoryHost, Outcome, run_job,
};
use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::{any, get, post};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// The tokio runtime host calls block on (one for the whole test binary).
pub fn tokio() -> tokio::runtime::Handle {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime for the tests")
    })
    .handle()
    .clone()
}

/// `check(cond, what)` for scripts: throws with the description when `cond` is false.
pub const PRELUDE: &str =
    "function check(c, what) { if (!c) throw new Error('check failed: ' + what); }\n";

/// How a test script ended, with its log.
pub struct Ran {
    /// The job's outcome.
    pub outcome: Outcome,
    /// Every log line with its level.
    pub lines: Vec<(LogLevel, String)>,
}

impl Ran {
    /// The log as one string.
    pub fn log(&self) -> String {
        self.lines
            .iter()
            .map(|(_, l)| l.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Panic with the log unless the script succeeded.
    pub fn assert_ok(&self) {
        assert!(
            self.outcome.is_success(),
            "script failed: {}\n--- log ---\n{}",
            self.outcome,
            self.log()
        );
    }

    /// The warnings the library wrote.
    pub fn warnings(&self) -> Vec<String> {
        self.lines
            .iter()
            .filter(|(l, _)| *l == LogLevel::Warn)
            .map(|(_, t)| t.clone())
            .collect()
    }
}

/// Run `source` (after [`PRELUDE`]) with `host` and the given halt flag.
pub fn run_with(source: &str, host: MemoryHost, halt: HaltFlag) -> Ran {
    run_full(source, host, halt, BTreeMap::new())
}

/// Run `source` (after [`PRELUDE`]) with `host`, a halt flag and `Param` values.
pub fn run_full(
    source: &str,
    host: MemoryHost,
    halt: HaltFlag,
    params: BTreeMap<String, String>,
) -> Ran {
    let log = LogCollector::new();
    let scope = JobScope {
        host: Arc::new(host),
        log: log.sink(),
        halt,
        tokio: tokio(),
    };
    let spec = JobSpec {
        name: "library-test.syncjs".into(),
        source: format!("{PRELUDE}{source}"),
        params,
    };
    let outcome = run_job(spec, scope, Limits::default());
    Ran {
        outcome,
        lines: log.lines(),
    }
}

/// Run `source` with `host`.
pub fn run(source: &str, host: MemoryHost) -> Ran {
    run_with(source, host, HaltFlag::new())
}

/// A peer's environment variable; fails (not skips) naming it and `ci/test.sh` when unset.
pub fn peer_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests through ci/test.sh, which starts the real servers (or start ci/peers/smtp.sh by hand and source its output)")
    })
}

/// A JS string literal for `s` (paths, keys).
pub fn js(s: &str) -> String {
    serde_json::to_string(s).expect("string to JSON")
}

/// An HTTPS server on 127.0.0.1 with a certificate from a CA made for this test; routes
/// `/hello`, `/echo` (POST, 201), `/json`, `/bytes`, `/slow` (30 s), `/method` (any verb),
/// `/missing` (404) and `/auth` (basic auth user:pa55).
pub struct TestServer {
    /// `https://127.0.0.1:PORT`.
    pub base: String,
    /// The PEM file of the CA that signed its certificate.
    pub ca_file: String,
    _dir: tempfile::TempDir,
}

pub fn https_server() -> TestServer {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "aft library test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .unwrap();

    let app = Router::new()
        .route(
            "/hello",
            get(|| async { ([("x-test", "yes")], "hello world") }),
        )
        .route(
            "/echo",
            post(|headers: HeaderMap, body: Bytes| async move {
                let ct = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let custom = headers
                    .get("x-custom")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                (
                    StatusCode::CREATED,
                    [("x-seen-content-type", ct), ("x-seen-custom", custom)],
                    body,
                )
            }),
        )
        .route(
            "/json",
            get(|| async {
                (
                    [("content-type", "application/json")],
                    r#"{"name":"aft","n":3}"#,
                )
            }),
        )
        .route("/bytes", get(|| async { (0u8..=255).collect::<Vec<u8>>() }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        )
        .route(
            "/method",
            any(|m: Method| async move { ([("x-method", m.to_string())], m.to_string()) }),
        )
        .route(
            "/missing",
            get(|| async { (StatusCode::NOT_FOUND, "no such thing") }),
        )
        .route(
            "/auth",
            get(|headers: HeaderMap| async move {
                // "user:pa55" in base64.
                if headers.get("authorization").and_then(|v| v.to_str().ok())
                    == Some("Basic dXNlcjpwYTU1")
                {
                    (StatusCode::OK, "welcome")
                } else {
                    (StatusCode::UNAUTHORIZED, "who are you")
                }
            }),
        );

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let rt = tokio();
    let _guard = rt.enter();
    let server = axum_server::from_tcp_rustls(
        listener,
        axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(config)),
    );
    rt.spawn(async move {
        let _ = server.serve(app.into_make_service()).await;
    });
    TestServer {
        base: format!("https://127.0.0.1:{}", addr.port()),
        ca_file: ca_file.to_string_lossy().into_owned(),
        _dir: dir,
    }
}

/// A GnuPG home with one key pair; kills its agent when dropped.
pub struct Gpg {
    home: tempfile::TempDir,
}

impl Gpg {
    /// A new home with a key for `uid` (`algo` as gpg --quick-gen-key takes it; `ed25519`
    /// adds a cv25519 encryption subkey).
    pub fn new(uid: &str, pass: &str, algo: &str) -> Gpg {
        let home = tempfile::Builder::new()
            .prefix("aftgpg")
            .tempdir_in("/tmp")
            .unwrap();
        let g = Gpg { home };
        g.run(&[
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            pass,
            "--quick-gen-key",
            uid,
            algo,
            "default",
            "never",
        ]);
        if algo == "ed25519" {
            let fpr = g.fingerprint(uid);
            g.run(&[
                "--batch",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                pass,
                "--quick-add-key",
                &fpr,
                "cv25519",
                "encr",
                "never",
            ]);
        }
        g
    }

    /// This key ring's folder (`GNUPGHOME`).
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// Run gpg in this home.
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new("gpg")
            .env("GNUPGHOME", self.home.path())
            .args(["--no-tty", "--quiet"])
            .args(args)
            .output()
            .expect("gpg is installed by ci/install.sh (ci/peers/gnupg.apt)")
    }

    /// Run gpg and require success.
    pub fn ok(&self, args: &[&str]) -> std::process::Output {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// The primary key fingerprint of `uid`.
    pub fn fingerprint(&self, uid: &str) -> String {
        let out = self.ok(&["--with-colons", "--list-keys", uid]);
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .find(|l| l.starts_with("fpr:"))
            .and_then(|l| l.split(':').nth(9))
            .expect("fingerprint")
            .to_string()
    }

    /// Export the public and secret key of `uid` as `NAME.pub.asc`/`NAME.sec.asc` in `dir`.
    pub fn export(&self, uid: &str, pass: &str, dir: &Path, name: &str) -> (String, String) {
        let public = self.ok(&["--armor", "--export", uid]).stdout;
        let secret = self
            .ok(&[
                "--batch",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                pass,
                "--armor",
                "--export-secret-keys",
                uid,
            ])
            .stdout;
        let (p, s) = (
            dir.join(format!("{name}.pub.asc")),
            dir.join(format!("{name}.sec.asc")),
        );
        std::fs::write(&p, public).unwrap();
        std::fs::write(&s, secret).unwrap();
        (
            p.to_string_lossy().into_owned(),
            s.to_string_lossy().into_owned(),
        )
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "gpg-agent"])
            .output();
    }
}
