//! Cluster benchmark: sustained jobs per second of a one-line script with one, two and three
//! `aft serve` nodes sharing one PostgreSQL database, beside one node on SQLite, in one run.
//! Jobs are submitted over HTTPS round-robin to the nodes; the clock stops when the store
//! counts every job as succeeded (`aft_jobs{status="succeeded"}` of `/metrics`). After each
//! PostgreSQL run the nodes are stopped and the database is checked for double or missed
//! runs (every job succeeded on its first attempt and logged its one line once); the row
//! shows how many jobs each node ran.
//!
//! `cargo run --release -p aft-bench --bin cluster [-- JOBS]`
//!
//! Needs `AFT_TEST_POSTGRES_URL` (start PostgreSQL with
//! `mkdir -p /tmp/st && bash ci/peers/postgres.sh /tmp/st` and source its output), `psql`
//! on the PATH (each configuration gets a fresh database), and a release build of aft
//! (built if `target/release/aft` is missing, or set `AFT_BIN`). All nodes run on this one
//! machine, so more nodes share the same cores: the figures show the cost of coordination
//! through PostgreSQL, not the gain of adding machines.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aft_bench::{aft_binary, row, svc};

/// Every node must decrypt the same secrets (32 bytes, base64).
const SECRET_KEY: &str = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
/// HTTP requests in flight at once, spread over the nodes.
const SUBMITTERS: u64 = 32;

/// Where a configuration keeps its jobs.
enum Database {
    /// SQLite in the first node's data directory.
    Sqlite,
    /// A PostgreSQL database `name` on the server of `server_url`.
    Postgres { server_url: String, name: String },
}

impl Database {
    /// A fresh database on the server of `AFT_TEST_POSTGRES_URL`.
    fn fresh_postgres(tag: &str) -> anyhow::Result<Database> {
        let server_url = std::env::var("AFT_TEST_POSTGRES_URL").map_err(|_| {
            anyhow::anyhow!(
                "AFT_TEST_POSTGRES_URL is not set: start PostgreSQL with \
                 `mkdir -p /tmp/st && bash ci/peers/postgres.sh /tmp/st` and source its output \
                 (ci/test.sh does this)"
            )
        })?;
        let name = format!("bench_cluster_{tag}_{}", std::process::id());
        psql(&server_url, &format!("DROP DATABASE IF EXISTS {name}"))?;
        psql(&server_url, &format!("CREATE DATABASE {name}"))?;
        Ok(Database::Postgres { server_url, name })
    }

    /// The `--database` argument, if any.
    fn url(&self) -> Option<String> {
        match self {
            Database::Sqlite => None,
            Database::Postgres { server_url, name } => {
                let (base, _) = server_url.rsplit_once('/').unwrap_or((server_url, ""));
                Some(format!("{base}/{name}"))
            }
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let Database::Postgres { server_url, name } = self else {
            return;
        };
        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        if let Err(e) = psql(server_url, &sql) {
            eprintln!("warning: cannot drop {name}: {e}");
        }
    }
}

fn psql(server_url: &str, sql: &str) -> anyhow::Result<()> {
    psql_text(server_url, sql).map(drop)
}

/// What `sql` prints, unaligned and without headers (`psql -At`).
fn psql_text(server_url: &str, sql: &str) -> anyhow::Result<String> {
    let out = Command::new("psql")
        .args([server_url, "-v", "ON_ERROR_STOP=1", "-q", "-At", "-c", sql])
        .output()
        .map_err(|e| {
            anyhow::anyhow!("cannot run psql (is the PostgreSQL client installed?): {e}")
        })?;
    anyhow::ensure!(
        out.status.success(),
        "psql {sql:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Check in the store that every job ran exactly once: `expected` jobs, all succeeded on
/// their first attempt, each with its one log line. Returns how many jobs each node ran.
fn check_ran_once(db: &Database, expected: u64) -> anyhow::Result<String> {
    let Database::Postgres { server_url, .. } = db else {
        return Ok(String::new());
    };
    let url = db.url().unwrap_or_else(|| server_url.clone());
    let counts = psql_text(
        &url,
        "SELECT count(*) || ' ' || count(*) FILTER (WHERE status = 'succeeded' AND attempts = 1) \
         || ' ' || (SELECT count(*) FROM job_logs WHERE message = 'hello') FROM jobs",
    )?;
    let want = format!("{expected} {expected} {expected}");
    anyhow::ensure!(
        counts == want,
        "double or missed runs: jobs, succeeded on attempt 1, 'hello' log lines = {counts} (want {want})"
    );
    let per_node = psql_text(
        &url,
        "SELECT string_agg(n::text, '/' ORDER BY n DESC) FROM \
         (SELECT count(*) AS n FROM jobs GROUP BY node_id) AS per_node",
    )?;
    Ok(per_node)
}

/// Run `aft` with `data` as data dir against `db`.
fn aft(bin: &Path, data: &Path, db: &Database, args: &[&str]) -> anyhow::Result<String> {
    let mut cmd = Command::new(bin);
    cmd.arg("--data").arg(data);
    if let Some(url) = db.url() {
        cmd.args(["--database", &url]);
    }
    let out = cmd
        .args(args)
        .env_remove("AFT_DATABASE")
        .env("AFT_SECRET_KEY", SECRET_KEY)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "aft {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// A running `aft serve`, stopped with SIGTERM when dropped.
struct Node {
    child: Child,
    base: String,
    http: reqwest::Client,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn start_node(bin: &Path, data: &Path, db: &Database) -> anyhow::Result<Node> {
    std::fs::create_dir_all(data)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut cmd = Command::new(bin);
    cmd.arg("--data").arg(data);
    if let Some(url) = db.url() {
        cmd.args(["--database", &url]);
    }
    let mut child = cmd
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env_remove("AFT_DATABASE")
        .env("AFT_SECRET_KEY", SECRET_KEY)
        .env("AFT_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !data.join("service.json").exists() {
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("aft serve exited: {status}");
        }
        anyhow::ensure!(Instant::now() < deadline, "aft serve did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pem = std::fs::read(data.join("tls/cert.pem"))?;
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem)?)
        .pool_max_idle_per_host(64)
        .build()?;
    Ok(Node {
        child,
        base: format!("https://127.0.0.1:{port}"),
        http,
    })
}

/// `aft_jobs{status="succeeded"}` of a node's `/metrics` (a store-wide count).
async fn succeeded(node: &Node) -> anyhow::Result<u64> {
    svc::succeeded(&node.http, &node.base).await
}

async fn post(node: &Node, key: &str) -> anyhow::Result<()> {
    let body = serde_json::json!({"scriptName": "one", "params": {"x": "hello"}});
    svc::post_job(&node.http, &node.base, key, &body).await?;
    Ok(())
}

/// Jobs per second of `jobs` one-line jobs on `nodes` nodes sharing `db`, and (on
/// PostgreSQL, checked to have run each job exactly once) how many jobs each node ran.
fn jobs_per_second(
    runtime: &tokio::runtime::Runtime,
    bin: &Path,
    db: &Database,
    nodes: usize,
    jobs: u64,
) -> anyhow::Result<(f64, String)> {
    let dir = tempfile::tempdir()?;
    let admin = dir.path().join("node0");
    std::fs::create_dir_all(&admin)?;
    let script = admin.join("one.syncjs");
    std::fs::write(&script, r#"Log(Param("x"));"#)?;
    aft(
        bin,
        &admin,
        db,
        &["script", "push", "one", &script.to_string_lossy()],
    )?;
    aft(
        bin,
        &admin,
        db,
        &["settings", "set", "max-concurrent-jobs", "16"],
    )?;
    let key = aft(
        bin,
        &admin,
        db,
        &[
            "apikey",
            "create",
            "--name",
            "bench",
            "--allow",
            "127.0.0.1",
        ],
    )?
    .trim()
    .to_string();
    let nodes = (0..nodes)
        .map(|i| start_node(bin, &dir.path().join(format!("node{i}")), db))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let nodes = std::sync::Arc::new(nodes);
    let warm = nodes.len() as u64;
    let rate = runtime.block_on(async {
        // Wait until every node answers, then warm each up with one job.
        for node in nodes.iter() {
            let deadline = Instant::now() + Duration::from_secs(30);
            while succeeded(node).await.is_err() {
                anyhow::ensure!(Instant::now() < deadline, "{} does not answer", node.base);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            post(node, &key).await?;
        }
        while succeeded(&nodes[0]).await? < warm {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        let start = Instant::now();
        let mut tasks = Vec::new();
        for worker in 0..SUBMITTERS {
            let nodes = nodes.clone();
            let key = key.clone();
            let share = jobs / SUBMITTERS + u64::from(worker < jobs % SUBMITTERS);
            tasks.push(tokio::spawn(async move {
                for n in 0..share {
                    let node = &nodes[((worker + n * SUBMITTERS) % nodes.len() as u64) as usize];
                    post(node, &key).await?;
                }
                anyhow::Ok(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        let deadline = Instant::now() + Duration::from_secs(600);
        while succeeded(&nodes[0]).await? < warm + jobs {
            anyhow::ensure!(
                Instant::now() < deadline,
                "jobs did not finish within 10 minutes"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        anyhow::Ok(jobs as f64 / start.elapsed().as_secs_f64())
    })?;
    // Stopped first, so no job is still running or being recorded while it is counted.
    drop(nodes);
    Ok((rate, check_ran_once(db, warm + jobs)?))
}

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let jobs: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(2000);
    let bin = aft_binary()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;

    let (sqlite, _) = jobs_per_second(&runtime, &bin, &Database::Sqlite, 1, jobs)?;
    let mut postgres = Vec::new();
    for nodes in 1..=3 {
        let db = Database::fresh_postgres(&format!("n{nodes}"))?;
        postgres.push((nodes, jobs_per_second(&runtime, &bin, &db, nodes, jobs)?));
    }

    println!(
        "cluster: {jobs} one-line jobs over HTTPS, {SUBMITTERS} requests in flight, \
         max-concurrent-jobs 16 per node, all nodes on this machine ({} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for (nodes, (rate, per_node)) in postgres {
        let what = format!("jobs/s, {nodes} node(s) on PostgreSQL (runs {per_node})");
        row(
            &what,
            &format!("{rate:.0}"),
            "1 node SQLite",
            &format!("{sqlite:.0}"),
        );
    }
    Ok(())
}
