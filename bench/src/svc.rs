//! Driving a real `aft serve` from a benchmark: the CLI, the service process, sign-in.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Run `aft --data DATA ARGS` (with `input` on its stdin); its stdout.
pub fn aft(bin: &Path, data: &Path, args: &[&str], input: Option<&str>) -> anyhow::Result<String> {
    let mut child = Command::new(bin)
        .arg("--data")
        .arg(data)
        .args(args)
        .env_remove("AFT_DATABASE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().expect("piped");
    if let Some(text) = input {
        stdin.write_all(text.as_bytes())?;
    }
    drop(stdin);
    let out = child.wait_with_output()?;
    anyhow::ensure!(
        out.status.success(),
        "aft {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// A running `aft serve`, stopped (SIGTERM) when dropped.
pub struct Server(pub Child);

impl Server {
    /// Start `aft serve` on `127.0.0.1:PORT` over DATA (its log, at `log_level`, or at
    /// `AFT_BENCH_LOG` when set, in DATA/serve.log) and wait until it writes `service.json`.
    /// `AFT_BENCH_LOG=warn,sqlx::query=debug` logs every statement the service runs.
    pub fn start(bin: &Path, data: &Path, port: u16, log_level: &str) -> anyhow::Result<Server> {
        let _ = std::fs::remove_file(data.join("service.json"));
        let mut child = Command::new(bin)
            .arg("--data")
            .arg(data)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env(
                "AFT_LOG",
                std::env::var("AFT_BENCH_LOG").unwrap_or_else(|_| log_level.to_string()),
            )
            .env_remove("AFT_DATABASE")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(data.join("serve.log"))?)
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while !data.join("service.json").exists() {
            if let Some(status) = child.try_wait()? {
                anyhow::bail!("aft serve exited: {status}");
            }
            anyhow::ensure!(Instant::now() < deadline, "aft serve did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Server(child))
    }

    /// The service's process id.
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

/// A free loopback port.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// An HTTPS client that trusts the service's own certificate (DATA/tls/cert.pem).
pub fn client(data: &Path) -> anyhow::Result<reqwest::Client> {
    let cert = std::fs::read(data.join("tls/cert.pem"))?;
    Ok(reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&cert)?)
        .pool_max_idle_per_host(64)
        .build()?)
}

/// Sign in as an admin (`POST /v1/session`); the `aft_session=...` cookie.
pub async fn sign_in(
    http: &reqwest::Client,
    base: &str,
    user: &str,
    password: &str,
) -> anyhow::Result<String> {
    let resp = http
        .post(format!("{base}/v1/session"))
        .json(&serde_json::json!({"username": user, "password": password}))
        .send()
        .await?;
    anyhow::ensure!(resp.status().is_success(), "sign-in: {}", resp.status());
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.split(';')
                .next()
                .filter(|c| c.starts_with("aft_session="))
        })
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("sign-in: no session cookie"))
}

/// `POST /v1/jobs` with an API key and a JSON body (`{"scriptName": ..., "params": ...}`);
/// the queued job's id. Fails unless the service answers 202.
pub async fn post_job(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    body: &serde_json::Value,
) -> anyhow::Result<String> {
    let resp = http
        .post(format!("{base}/v1/jobs"))
        .header("X-API-Key", key)
        .json(body)
        .send()
        .await?;
    let status = resp.status();
    let text = resp.text().await?;
    anyhow::ensure!(
        status.as_u16() == 202,
        "POST {base}/v1/jobs: {status} {text}"
    );
    let body: serde_json::Value = serde_json::from_str(&text)?;
    Ok(body["jobId"].as_str().unwrap_or_default().to_string())
}

/// Jobs by status (`aft_jobs{status="..."}` of `/metrics`: store-wide counts).
pub async fn job_counts(http: &reqwest::Client, base: &str) -> anyhow::Result<Vec<(String, u64)>> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter_map(|l| l.strip_prefix("aft_jobs{status=\""))
        .filter_map(|l| {
            let (status, n) = l.split_once("\"} ")?;
            Some((status.to_string(), n.trim().parse().ok()?))
        })
        .collect())
}

/// How many jobs have succeeded (store-wide, from `/metrics`).
pub async fn succeeded(http: &reqwest::Client, base: &str) -> anyhow::Result<u64> {
    Ok(job_counts(http, base)
        .await?
        .into_iter()
        .find(|(status, _)| status == "succeeded")
        .map_or(0, |(_, n)| n))
}

/// A `kB` field of `/proc/PID/status` (`VmRSS:`, `VmHWM:`; PID may be `self`), 0 when
/// unreadable.
pub fn proc_status_kib(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// Resident set size of a process in KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> u64 {
    proc_status_kib(&pid.to_string(), "VmRSS:")
}

/// How many files a process has open (entries of `/proc/PID/fd`).
pub fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// A process's resident memory split by kind (KiB, from `/proc/PID/smaps_rollup`): the
/// anonymous part is what the process allocated (heap, arenas, stacks), the rest pages of
/// its binary and of mapped files.
#[derive(Debug, Clone, Copy, Default)]
pub struct RssParts {
    /// All resident pages (`Rss:`).
    pub rss: u64,
    /// Anonymous resident pages (`Anonymous:`).
    pub anon: u64,
}

impl RssParts {
    /// File-backed resident pages (the binary's code and data, mapped files).
    pub fn file(&self) -> u64 {
        self.rss.saturating_sub(self.anon)
    }

    /// `R MiB (anonymous A, file F)`.
    pub fn describe(&self) -> String {
        format!(
            "{:.1} MiB (anonymous {:.1}, file {:.1})",
            self.rss as f64 / 1024.0,
            self.anon as f64 / 1024.0,
            self.file() as f64 / 1024.0
        )
    }
}

/// [`RssParts`] of process `pid`; zeros when unreadable.
pub fn rss_parts(pid: u32) -> RssParts {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    RssParts {
        rss: field("Rss:"),
        anon: field("Anonymous:"),
    }
}
