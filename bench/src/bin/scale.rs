//! Scale benchmark: `GET /v1/jobs` with each of its filters on a SQLite store holding
//! 1,000,000 job records (p50, p99), and the API's latency while the retention purge
//! deletes about half of them.
//!
//! `cargo run --release -p aft-bench --bin scale [-- RECORDS REQUESTS]`
//!
//! The records are written straight into the `aft.db` that `aft` created with its
//! migrations (one SQL statement per 100,000 rows: statuses, scripts, origins, an API key's
//! share, created over 60 days, one job in ten with 5 log lines, one in twenty with a
//! transfer), then the real `aft serve` answers. The purge runs when the service starts, so
//! the bench restarts it with `job-retention-days` at 30 and measures reads (`GET /v1/jobs`,
//! `GET /v1/health`) and writes (`POST /v1/jobs`) until the expired jobs are gone.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aft_bench::svc::{Server, aft, client, free_port, post_job, sign_in};
use aft_bench::{aft_binary, ms, percentiles, row};
use sqlx::Connection;

const DAYS: f64 = 60.0;
const RETENTION_DAYS: u32 = 30;
const SCRIPTS: i64 = 40;

/// Write `records` finished jobs (and their logs and transfers) into the store.
async fn fill(db: &Path, records: i64, key_id: &str) -> anyhow::Result<()> {
    let url = format!("sqlite://{}", db.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await?;
    sqlx::query("PRAGMA synchronous=OFF")
        .execute(&mut conn)
        .await?;
    let now: f64 = sqlx::query_scalar("SELECT CAST(unixepoch('now') AS REAL)")
        .fetch_one(&mut conn)
        .await?;
    let start = now - DAYS * 86400.0;
    let step = DAYS * 86400.0 / records as f64;
    let chunk = 100_000;
    let mut lo = 1;
    while lo <= records {
        let hi = (lo + chunk - 1).min(records);
        let mut tx = conn.begin().await?;
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT $1 UNION ALL SELECT i + 1 FROM n WHERE i < $2) \
             INSERT INTO jobs (id, status, script_name, source, params, origin, api_key_id, \
                 retry_safe, node_id, attempts, exit_code, error, created_at, started_at, \
                 finished_at, settled) \
             SELECT printf('%08x-5ca1-4e00-8000-%012x', i, i), \
                 CASE WHEN i % 50 = 0 THEN 'failed' WHEN i % 97 = 0 THEN 'interrupted' \
                      WHEN i % 211 = 0 THEN 'halted' ELSE 'succeeded' END, \
                 'script-' || (i % $5), \
                 'Log(\"copying \" + Param(\"n\"));', '{\"n\":\"' || i || '\"}', \
                 CASE i % 4 WHEN 0 THEN 'api' WHEN 1 THEN 'schedule' WHEN 2 THEN 'watcher' \
                      ELSE 'cli' END, \
                 CASE WHEN i % 4 = 0 THEN $6 END, i % 3 = 0, 'scale-node', 1, \
                 CASE WHEN i % 50 = 0 THEN 1 ELSE 0 END, \
                 CASE WHEN i % 50 = 0 THEN 'connection reset by 127.0.0.1:22 during login' END, \
                 strftime('%Y-%m-%dT%H:%M:%fZ', $3 + i * $4, 'unixepoch'), \
                 strftime('%Y-%m-%dT%H:%M:%fZ', $3 + i * $4 + 0.05, 'unixepoch'), \
                 strftime('%Y-%m-%dT%H:%M:%fZ', $3 + i * $4 + 2.5, 'unixepoch'), 1 \
             FROM n",
        )
        .bind(lo)
        .bind(hi)
        .bind(start)
        .bind(step)
        .bind(SCRIPTS)
        .bind(key_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT $1 UNION ALL SELECT i + 10 FROM n WHERE i + 10 <= $2), \
                 l(k) AS (VALUES (1), (2), (3), (4), (5)) \
             INSERT INTO job_logs (job_id, line, at, level, message) \
             SELECT printf('%08x-5ca1-4e00-8000-%012x', i, i), k, \
                 strftime('%Y-%m-%dT%H:%M:%fZ', $3 + i * $4 + k * 0.4, 'unixepoch'), \
                 'info', 'step ' || k || ': copied /inbox/file-' || i || '.csv to sftp://backup' \
             FROM n, l",
        )
        .bind(lo + (10 - lo % 10) % 10)
        .bind(hi)
        .bind(start)
        .bind(step)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT $1 UNION ALL SELECT i + 20 FROM n WHERE i + 20 <= $2) \
             INSERT INTO job_transfers (job_id, at, source, target, bytes, hash, millis, \
                 attempts, outcome) \
             SELECT printf('%08x-5ca1-4e00-8000-%012x', i, i), \
                 strftime('%Y-%m-%dT%H:%M:%fZ', $3 + i * $4 + 1.0, 'unixepoch'), \
                 '/inbox/file-' || i || '.csv', 'sftp://backup/file-' || i || '.csv', \
                 1048576, NULL, 120, 1, 'ok' \
             FROM n",
        )
        .bind(lo + (20 - lo % 20) % 20)
        .bind(hi)
        .bind(start)
        .bind(step)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        lo = hi + 1;
    }
    sqlx::query("ANALYZE").execute(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

/// Request times (failed requests included) and how many failed.
#[derive(Default)]
struct Samples {
    times: Vec<Duration>,
    failed: usize,
}

impl Samples {
    fn add(&mut self, took: Duration, ok: bool) {
        self.times.push(took);
        self.failed += usize::from(!ok);
    }
}

#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
    cookie: String,
    key: String,
}

impl Api {
    /// `GET path` as the admin (or with the API key); the time and the number of jobs.
    async fn get(&self, path: &str, as_key: bool) -> anyhow::Result<(Duration, usize)> {
        let start = Instant::now();
        let req = self.http.get(format!("{}{path}", self.base));
        let req = if as_key {
            req.header("X-API-Key", &self.key)
        } else {
            req.header("Cookie", &self.cookie)
        };
        let resp = req.send().await?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await?;
        let took = start.elapsed();
        anyhow::ensure!(status.is_success(), "GET {path}: {status} {body}");
        let n = body["jobs"].as_array().map(Vec::len).unwrap_or(0);
        Ok((took, n))
    }

    async fn post_job(&self) -> anyhow::Result<Duration> {
        let start = Instant::now();
        let body = serde_json::json!({"scriptName": "one", "params": {"n": "x"}});
        post_job(&self.http, &self.base, &self.key, &body).await?;
        Ok(start.elapsed())
    }

    /// The `nextBefore` of a page.
    async fn next_before(&self, path: &str) -> anyhow::Result<Option<i64>> {
        let body: serde_json::Value = self
            .http
            .get(format!("{}{path}", self.base))
            .header("Cookie", &self.cookie)
            .send()
            .await?
            .json()
            .await?;
        Ok(body["nextBefore"].as_i64())
    }
}

/// p50/p99 of `requests` runs of each filter.
async fn measure_filters(
    api: &Api,
    requests: usize,
    at: &dyn Fn(f64) -> String,
) -> anyhow::Result<()> {
    // One day, 30 days back: since `day_start`, until `day_end`.
    let day_start = at(DAYS / 2.0 + 1.0);
    let day_end = at(DAYS / 2.0);
    let recent = at(1.0);
    let old = at(DAYS - 2.0);
    // Paging: the page 100 pages deep (about 10,000 jobs back).
    let mut before = None;
    for _ in 0..100 {
        let path = match before {
            Some(b) => format!("/v1/jobs?before={b}"),
            None => "/v1/jobs".to_string(),
        };
        before = api.next_before(&path).await?;
    }
    let deep = before.unwrap_or(1);
    let mid = api
        .next_before(&format!("/v1/jobs?until={day_end}&limit=1"))
        .await?
        .unwrap_or(1);
    let cases: Vec<(String, String, bool)> = vec![
        (
            "no filter (first page of 100)".into(),
            "/v1/jobs".into(),
            false,
        ),
        ("limit=1000".into(), "/v1/jobs?limit=1000".into(), false),
        (
            "status=failed".into(),
            "/v1/jobs?status=failed".into(),
            false,
        ),
        (
            "status=running (none)".into(),
            "/v1/jobs?status=running".into(),
            false,
        ),
        (
            "script=SCRIPT-7".into(),
            "/v1/jobs?script=SCRIPT-7".into(),
            false,
        ),
        (
            "script=no-such-script".into(),
            "/v1/jobs?script=no-such-script".into(),
            false,
        ),
        (
            "script + status=failed".into(),
            "/v1/jobs?script=script-10&status=failed".into(),
            false,
        ),
        (
            "since=1 day ago".into(),
            format!("/v1/jobs?since={recent}"),
            false,
        ),
        (
            "since+until: one day, 30 days back".into(),
            format!("/v1/jobs?since={day_start}&until={day_end}"),
            false,
        ),
        (
            "until=58 days ago".into(),
            format!("/v1/jobs?until={old}"),
            false,
        ),
        (
            "one day + status=failed".into(),
            format!("/v1/jobs?since={day_start}&until={day_end}&status=failed"),
            false,
        ),
        (
            "page 101 (before=seq)".into(),
            format!("/v1/jobs?before={deep}"),
            false,
        ),
        (
            "before=seq 30 days back".into(),
            format!("/v1/jobs?before={mid}"),
            false,
        ),
        (
            "API key (its jobs: one in four)".into(),
            "/v1/jobs".into(),
            true,
        ),
        (
            "API key + status=failed".into(),
            "/v1/jobs?status=failed".into(),
            true,
        ),
    ];
    for (what, path, as_key) in cases {
        for _ in 0..5 {
            api.get(&path, as_key).await?;
        }
        let mut samples = Vec::with_capacity(requests);
        let mut n = 0;
        for _ in 0..requests {
            let (took, count) = api.get(&path, as_key).await?;
            samples.push(took);
            n = count;
        }
        let (p50, p99) = percentiles(&mut samples);
        row(
            &format!("{what} [{n}]"),
            &format!("{} / {}", ms(p50), ms(p99)),
            "goal p99",
            "<= 50 ms",
        );
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut args = std::env::args().skip(1);
    let records: i64 = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let requests: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(200);
    let bin = aft_binary()?;
    let dir = tempfile::tempdir()?;
    let data = dir.path();
    std::fs::write(data.join("one.syncjs"), r#"Log(Param("n"));"#)?;
    let one = data.join("one.syncjs");
    aft(
        &bin,
        data,
        &["script", "push", "one", one.to_str().unwrap_or_default()],
        None,
    )?;
    aft(
        &bin,
        data,
        &["settings", "set", "job-retention-days", "3650"],
        None,
    )?;
    aft(
        &bin,
        data,
        &["admin", "create", "bench"],
        Some("bench-password\n"),
    )?;
    let key = aft(
        &bin,
        data,
        &[
            "apikey",
            "create",
            "--name",
            "bench",
            "--allow",
            "127.0.0.1",
        ],
        None,
    )?
    .trim()
    .to_string();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let db = data.join("aft.db");
    anyhow::ensure!(db.exists(), "no {}", db.display());
    let started = Instant::now();
    runtime.block_on(async {
        let url = format!("sqlite://{}", db.display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await?;
        let key_id: String = sqlx::query_scalar("SELECT id FROM api_keys WHERE name = 'bench'")
            .fetch_one(&mut conn)
            .await?;
        conn.close().await?;
        fill(&db, records, &key_id).await
    })?;
    let fill_time = started.elapsed();
    let db_mib = std::fs::metadata(&db)?.len() as f64 / 1048576.0;
    println!(
        "{records} job records written in {:.1} s; aft.db {db_mib:.0} MiB",
        fill_time.as_secs_f64()
    );

    let port = free_port()?;
    let base = format!("https://127.0.0.1:{port}");
    let server = Server::start(&bin, data, port, "info")?;
    let http = client(data)?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    // RFC 3339 for `days` ago, computed by SQLite as the records' dates were.
    let at = move |days: f64| -> String { chrono_like(now.as_secs_f64() - days * 86400.0) };
    let cookie = runtime.block_on(sign_in(&http, &base, "bench", "bench-password"))?;
    let api = Api {
        http,
        base,
        cookie,
        key,
    };
    println!(
        "aft serve on SQLite, {records} job records: GET /v1/jobs p50 / p99 over {requests} requests [jobs returned]"
    );
    runtime.block_on(measure_filters(&api, requests, &at))?;
    drop(server);

    // The purge: the service purges at start, so restart it with a shorter retention.
    aft(
        &bin,
        data,
        &[
            "settings",
            "set",
            "job-retention-days",
            &RETENTION_DAYS.to_string(),
        ],
        None,
    )?;
    let cutoff = at(RETENTION_DAYS as f64);
    let server = Server::start(&bin, data, port, "info")?;
    let (purge_time, reads, health, writes) = runtime.block_on(async {
        let done = Arc::new(AtomicBool::new(false));
        let reader = {
            let api = api.clone();
            let done = done.clone();
            tokio::spawn(async move {
                let (mut reads, mut health) = (Samples::default(), Samples::default());
                while !done.load(Ordering::SeqCst) {
                    let start = Instant::now();
                    let ok = api.get("/v1/jobs", false).await.is_ok();
                    reads.add(start.elapsed(), ok);
                    let start = Instant::now();
                    let ok = match api.http.get(format!("{}/v1/health", api.base)).send().await {
                        Ok(resp) => resp.status().is_success(),
                        Err(_) => false,
                    };
                    health.add(start.elapsed(), ok);
                }
                anyhow::Ok((reads, health))
            })
        };
        let writer = {
            let api = api.clone();
            let done = done.clone();
            tokio::spawn(async move {
                let mut writes = Samples::default();
                while !done.load(Ordering::SeqCst) {
                    let start = Instant::now();
                    let ok = api.post_job().await.is_ok();
                    writes.add(start.elapsed(), ok);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                anyhow::Ok(writes)
            })
        };
        let start = Instant::now();
        let deadline = start + Duration::from_secs(1800);
        loop {
            // An error (a 503 while the store is busy) means: not known yet.
            let left = api
                .get(&format!("/v1/jobs?until={cutoff}&limit=1"), false)
                .await
                .map_or(1, |(_, n)| n);
            if left == 0 {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "the purge took over 30 minutes");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let purge_time = start.elapsed();
        done.store(true, Ordering::SeqCst);
        let (reads, health) = reader.await??;
        let writes = writer.await??;
        anyhow::Ok((purge_time, reads, health, writes))
    })?;
    println!(
        "retention purge ({RETENTION_DAYS} days: about half the records) took {:.1} s after the start",
        purge_time.as_secs_f64()
    );
    for (
        what,
        Samples {
            times: mut samples,
            failed,
        },
    ) in [
        ("during the purge: GET /v1/jobs", reads),
        ("during the purge: GET /v1/health", health),
        ("during the purge: POST /v1/jobs", writes),
    ] {
        anyhow::ensure!(!samples.is_empty(), "{what}: no request finished");
        let n = samples.len();
        println!("{what}: {failed} of {n} requests failed");
        let max = samples.iter().max().copied().unwrap_or_default();
        let (p50, p99) = percentiles(&mut samples);
        row(
            &format!("{what} [{n} requests]"),
            &format!("{} / {}", ms(p50), ms(p99)),
            "max",
            &ms(max),
        );
    }
    println!("after the purge:");
    runtime.block_on(measure_filters(&api, requests, &at))?;
    drop(server);
    Ok(())
}

/// RFC 3339 (UTC, milliseconds, as aft stores times) for a Unix time in seconds.
fn chrono_like(secs: f64) -> String {
    let at = chrono::DateTime::from_timestamp_millis((secs * 1000.0) as i64).unwrap_or_default();
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
