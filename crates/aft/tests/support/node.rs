#![allow(dead_code)]

//! One `aft serve` node on a database shared with others (PostgreSQL), for the cluster
//! tests: its own data directory and port, the test secret key every node shares, and an
//! HTTPS client that trusts the node's certificate. Included with
//! `#[path = "support/node.rs"] mod node;` next to `mod support;`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::AFT;

/// Every node of a cluster must decrypt the same secrets: one fixed test key for all.
pub const SECRET_KEY: &str = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";

/// `aft --data DATA --database DB ARGS...` with the shared key; must succeed. Returns
/// stdout.
pub fn aft(data: &Path, db: &str, args: &[&str]) -> String {
    let out = Command::new(AFT)
        .arg("--data")
        .arg(data)
        .args(["--database", db])
        .args(args)
        .env("AFT_SECRET_KEY", SECRET_KEY)
        .env_remove("AFT_API_KEY")
        .env("AFT_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "aft {args:?} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// One `aft serve` on database `db`, killed when dropped.
pub struct Node {
    pub child: Child,
    pub data: PathBuf,
    pub port: u16,
    pub http: reqwest::Client,
}

impl Node {
    /// Start `aft serve` with data dir `data` on `db`, listening on `port`; returns once it
    /// listens.
    pub fn start(data: &Path, db: &str, port: u16) -> Node {
        std::fs::create_dir_all(data).unwrap();
        let mut child = Command::new(AFT)
            .arg("--data")
            .arg(data)
            .args(["--database", db])
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("AFT_SECRET_KEY", SECRET_KEY)
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
        // Two rustls crypto providers are compiled in; pick one as the binary does.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let pem = std::fs::read(data.join("tls/cert.pem")).unwrap();
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .build()
            .unwrap();
        Node {
            child,
            data: data.to_path_buf(),
            port,
            http,
        }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// A crash: kill -9, then reap the process.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}
