//! What the binary-driving tests share: a fresh data directory with the real `aft` binary
//! run against it, a running `aft serve`, HTTPS calls to it, and the peers' addresses.
//!
//! Each test file is its own crate and uses a different part of this module.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `aft` binary cargo built for these tests.
pub const AFT: &str = env!("CARGO_BIN_EXE_aft");

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A peer's setting exported by `ci/test.sh` (`AFT_TEST_SFTP_ADDR`, ...). A missing one
/// fails the test: the test command starts every peer, so absence is a broken set-up.
pub fn peer(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run the tests through ci/test.sh, which starts the peers")
    })
}

/// A folder of its own in the SFTP user's home: the tests run on the server's machine and
/// write or check files there directly.
pub fn folder_in_sftp_home(prefix: &str) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(peer("AFT_TEST_SFTP_HOME"))
        .unwrap();
    // tempdir is 0700 and owned by the test's user; the SFTP user must list it.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Stdout of a command that must have succeeded; the failure shows both streams.
pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "command failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Stdout and stderr of a command, together, for messages and assertions.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A clean data directory and the `aft` binary run against it.
pub struct Aft {
    dir: tempfile::TempDir,
}

impl Default for Aft {
    fn default() -> Self {
        Self::new()
    }
}

impl Aft {
    /// A new, empty data directory.
    pub fn new() -> Aft {
        Aft {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A data directory where `aft run` is allowed.
    pub fn allowing_cli_run() -> Aft {
        let aft = Aft::new();
        aft.ok(&["settings", "set", "allow-cli-run", "true"]);
        aft
    }

    /// The data directory.
    pub fn data(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the data directory's parent scratch space (a file a test writes).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `aft --data DIR ARGS...`, with the environment that could point it elsewhere removed.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(AFT);
        cmd.arg("--data")
            .arg(self.data())
            .args(args)
            .env_remove("AFT_DATABASE")
            .env_remove("AFT_API_KEY")
            .env_remove("AFT_SECRET_KEY")
            .env("AFT_LOG", "warn");
        cmd
    }

    /// Run `aft ARGS...` with `stdin` as its input.
    pub fn run_with_input(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.as_bytes()).unwrap();
        drop(input);
        child.wait_with_output().unwrap()
    }

    /// Run `aft ARGS...` with empty input.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_input(args, "")
    }

    /// Run `aft ARGS...`; it must succeed. Returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        ok(self.run(args))
    }

    /// Run `aft ARGS...`; it must exit with `code`. Returns stdout and stderr together.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "expected exit {code} from aft {args:?}:\n{}",
            text(&out)
        );
        text(&out)
    }

    /// The newest job of `origin` (`delegate`, `cli`, ...) that `aft jobs list --json` shows.
    pub fn newest_job_of(&self, origin: &str) -> Value {
        let jobs: Value = serde_json::from_str(&self.ok(&["jobs", "list", "--json"])).unwrap();
        jobs.as_array()
            .unwrap()
            .iter()
            .find(|j| j["origin"] == origin)
            .unwrap_or_else(|| panic!("no job of origin {origin}: {jobs:#}"))
            .clone()
    }

    /// Write `body` to `name` in the data directory and return its path as text.
    pub fn write(&self, name: &str, body: &str) -> String {
        let path = self.path(name);
        std::fs::write(&path, body).unwrap();
        path.to_str().unwrap().to_string()
    }

    /// Store a secret (the value goes through stdin, as users do).
    pub fn secret(&self, name: &str, value: &str) {
        ok(self.run_with_input(&["secret", "set", name], value));
    }

    /// Add VFS Library entry `name` of type `kind` with `fields`, as `aft vfs add` does.
    pub fn add_vfs(&self, name: &str, kind: &str, fields: &serde_json::Value) {
        self.ok(&[
            "vfs",
            "add",
            name,
            "--type",
            kind,
            "--json",
            &fields.to_string(),
        ]);
    }

    /// Store the test sshd's password as secret `secret` and add SFTP entry `name` that
    /// reads it from there, with the server's key pinned; `extra` fields (an object) are
    /// added to those.
    pub fn add_sftp_entry(&self, name: &str, secret: &str, extra: serde_json::Value) {
        self.secret(secret, &peer("AFT_TEST_SFTP_PASS"));
        let mut fields = serde_json::json!({
            "Host": peer("AFT_TEST_SFTP_ADDR"),
            "User": peer("AFT_TEST_SFTP_USER"),
            "PassFromSecret": secret,
            "HostKeySHA256": peer("AFT_TEST_SFTP_HOSTKEY_SHA256"),
        });
        if let (Some(fields), serde_json::Value::Object(extra)) = (fields.as_object_mut(), extra) {
            fields.extend(extra);
        }
        self.add_vfs(name, "sftp", &fields);
    }

    /// Store the test S3 server's secret key as secret `secret` and add S3 entry `name`
    /// (on the test bucket) that reads it from there.
    pub fn add_s3_entry(&self, name: &str, secret: &str) {
        self.secret(secret, &peer("AFT_TEST_S3_SECRET"));
        let fields = serde_json::json!({
            "Endpoint": peer("AFT_TEST_S3_ENDPOINT"),
            "Bucket": peer("AFT_TEST_S3_BUCKET"),
            "Region": peer("AFT_TEST_S3_REGION"),
            "APIKeyID": peer("AFT_TEST_S3_KEY_ID"),
            "APIKeySecretFromSecret": secret,
        });
        self.add_vfs(name, "s3", &fields);
    }

    /// Store a script under `name`.
    pub fn push_script(&self, name: &str, body: &str) {
        let file = self.write(&format!("{}.syncjs", name.replace(' ', "_")), body);
        self.ok(&["script", "push", name, &file]);
    }

    /// Create an API key allowed from `allow`; returns the key.
    pub fn create_key(&self, name: &str, allow: &str) -> String {
        self.ok(&["apikey", "create", "--name", name, "--allow", allow])
            .trim()
            .to_string()
    }

    /// Start `aft serve` on a free loopback port.
    pub fn serve(&self) -> Service {
        Service::start(self.data(), &[], &[])
    }
}

/// A running `aft serve`, killed when dropped.
pub struct Service {
    pub child: Child,
    pub data: PathBuf,
    pub port: u16,
}

impl Service {
    /// Start `aft [GLOBAL...] serve --listen 127.0.0.1:PORT [EXTRA...]` over `data` and wait
    /// until it listens.
    pub fn start(data: &Path, global: &[&str], extra: &[&str]) -> Service {
        Service::start_on(data, free_port(), global, extra)
    }

    /// The same on `port` (a restarted service keeps its address).
    pub fn start_on(data: &Path, port: u16, global: &[&str], extra: &[&str]) -> Service {
        let mut child = Command::new(AFT)
            .arg("--data")
            .arg(data)
            .args(global)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(extra)
            .env_remove("AFT_DATABASE")
            .env_remove("AFT_SECRET_KEY")
            .env("AFT_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        assert!(
            wait_until_listening(&mut child),
            "aft serve did not start listening within 60 s"
        );
        Service {
            child,
            data: data.to_path_buf(),
            port,
        }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT`, for `aft start --host`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The service's certificate file, for `--cacert` and curl.
    pub fn cert(&self) -> PathBuf {
        self.data.join("tls/cert.pem")
    }

    /// The token a local CLI uses (`X-Local-Token`), from `service.json`.
    pub fn local_token(&self) -> String {
        let info: Value =
            serde_json::from_slice(&std::fs::read(self.data.join("service.json")).unwrap())
                .unwrap();
        info["token"].as_str().unwrap().to_string()
    }

    /// An HTTPS client trusting the service's certificate, calling from address `from`.
    pub fn client_from(&self, from: &str) -> reqwest::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let pem = std::fs::read(self.cert()).unwrap();
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .local_address(from.parse::<IpAddr>().unwrap())
            .build()
            .unwrap()
    }

    /// An HTTPS client from 127.0.0.1.
    pub fn client(&self) -> reqwest::Client {
        self.client_from("127.0.0.1")
    }

    /// Kill the service with SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stop it with SIGTERM and wait for it to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        signal(self.child.id(), "TERM");
        self.child.wait().unwrap()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Send `SIG` (`INT`, `TERM`, `HUP`, ...) to process `pid`.
pub fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{sig} {pid} failed");
}

/// Call the service: `(status, JSON body or the text as a JSON string)`.
pub async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    auth: Option<(&str, &str)>,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut req = client.request(method, url);
    if let Some((header, value)) = auth {
        req = req.header(header, value);
    }
    if let Some(body) = body {
        req = req.json(body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Poll `GET /v1/jobs/{id}` until the job has ended (60 s at most); returns its JSON.
pub async fn wait_job(client: &reqwest::Client, base: &str, auth: (&str, &str), id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, job) = call(
            client,
            reqwest::Method::GET,
            &format!("{base}/v1/jobs/{id}"),
            Some(auth),
            None,
        )
        .await;
        assert_eq!(status, 200, "{job}");
        if !matches!(job["status"].as_str(), Some("queued" | "running")) {
            return job;
        }
        assert!(Instant::now() < deadline, "job {id} did not end: {job}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Poll `check` every 50 ms until it gives `Some`, for at most `limit`.
pub fn poll<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Run `aft --data DATA ARGS...` for a data directory a test made itself (not an [`Aft`]'s).
pub fn aft_at(data: &Path, args: &[&str]) -> Output {
    Command::new(AFT)
        .arg("--data")
        .arg(data)
        .args(args)
        .env_remove("AFT_DATABASE")
        .env_remove("AFT_SECRET_KEY")
        .env("AFT_LOG", "warn")
        .output()
        .unwrap()
}

/// Wait (60 s at most) until `aft serve` started as `child`, its stdout piped, prints that
/// it listens; its stdout is read to its end on a thread of its own.
pub fn wait_until_listening(child: &mut Child) -> bool {
    let stdout = child.stdout.take().expect("the service's stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("listening on") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60)).is_ok()
}

/// The peak resident memory of process `pid` in MiB (`VmHWM` of /proc/PID/status).
pub fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib / 1024
}

/// Sign in as `user`: the status, the session cookie (`aft_session=...`, empty when none
/// was set) and the JSON answer (with `csrfToken` on success).
pub async fn sign_in(
    http: &reqwest::Client,
    base: &str,
    user: &str,
    password: &str,
) -> (u16, String, Value) {
    sign_in_with(
        http,
        base,
        &serde_json::json!({"username": user, "password": password}),
    )
    .await
}

/// `POST /v1/session` with any body (a two-factor `code`, say), answered as [`sign_in`].
pub async fn sign_in_with(
    http: &reqwest::Client,
    base: &str,
    body: &Value,
) -> (u16, String, Value) {
    let resp = http
        .post(format!("{base}/v1/session"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.split(';')
                .next()
                .filter(|c| c.starts_with("aft_session="))
        })
        .unwrap_or_default()
        .to_string();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, cookie, body)
}

/// `len` deterministic pseudo-random bytes from `seed` (xorshift64, one byte per step): file
/// content in which a shifted, lost or repeated range, or a text-mode transfer, shows.
pub fn xorshift_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The SHA-256 of the file at `path`, in hex, by `sha256sum` (what a user would check).
#[allow(dead_code)]
pub fn sha256_file(path: &Path) -> String {
    checksum_file("sha256sum", path)
}

/// The BLAKE3 of the file at `path`, in hex, by `b3sum` (what a user would check a
/// transfer record's default digest with).
#[allow(dead_code)]
pub fn blake3_file(path: &Path) -> String {
    checksum_file("b3sum", path)
}

/// The first word `tool` prints for `path`: its digest.
fn checksum_file(tool: &str, path: &Path) -> String {
    let out = Command::new(tool).arg(path).output().unwrap();
    assert!(out.status.success(), "{tool} {}", path.display());
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// The digest in the first successful transfer record that `aft run` printed, as
/// (algorithm, hex): `transfer SRC -> DST: N bytes in T ms, A attempt(s), blake3 HEX: ok`.
#[allow(dead_code)]
pub fn recorded_hash(log: &str) -> Option<(String, String)> {
    log.lines()
        .filter(|l| l.contains(" transfer ") && l.ends_with(": ok"))
        .find_map(|l| {
            let (_, tail) = l.rsplit_once(" attempt(s), ")?;
            let (algo, hex) = tail.trim_end_matches(": ok").split_once(' ')?;
            Some((algo.to_string(), hex.to_string()))
        })
}
