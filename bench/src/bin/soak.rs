//! Soak benchmark: `aft serve` on SQLite under a steady mixed load, with its RSS, open
//! files, database size and p99 API latency (`GET /v1/jobs`, `GET /v1/health`) taken near
//! the start and at the end of the run.
//!
//! `cargo run --release -p aft-bench --bin soak [-- SECONDS JOBS KEEP]` (default 1200 s,
//! 20,000 jobs, `job-retention-max-jobs` and `audit-retention-max-records` 5,000; a KEEP of
//! 0 keeps every job and audit record, so the database grows all run)
//!
//! The load: 50 schedules firing every second (`* * * * * *`), 10 watcher jobs
//! (`FsWatcher` on their own folders, with a file dropped into one of them every 100 ms),
//! JOBS one-line jobs posted at an even pace over the run (`POST /v1/jobs` with an API
//! key), and a job logging 100,000 lines every minute (from 30 s on). The first sample is
//! taken once the load has run for a quarter of the run (at most five minutes: the warm-up
//! below), the last at the end, both under load and both half-way between two floods, so
//! that they compare the same phase of the load; the peak RSS of the minute before each
//! sample (a flood's) is printed beside it. Each latency is the p50 and p99 of 1,000
//! sequential requests (`GET /v1/jobs` as an admin, first page of 100, whose cost does not
//! depend on how many jobs the store holds). A line a minute traces RSS, open files and the
//! database's size over the whole run.
//!
//! The load ends some 4,000 jobs a minute; with `job-retention-max-jobs` at KEEP the service
//! purges all but the newest KEEP every minute, as a long-running service purges its
//! history by age. The store then holds at most KEEP jobs plus the minute's that ended since
//! the last purge (at KEEP 5,000, about two minutes of jobs, with up to three floods' logs):
//! the warm-up lasts until that has happened, so the start is the steady state and not an
//! empty store filling up (SQLite reuses the pages a purge frees but does not give them back,
//! so its file levels off at that most). Schedule slots go with the job history. Each
//! `POST /v1/jobs` is an audit record: `audit-retention-max-records` at KEEP too caps the
//! audit trail as the job history is capped (kept whole, as by default, it grows with the
//! posts, some 8 MiB in 20 minutes). Its size is printed apart as well.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aft_bench::svc::{
    self, Server, aft, client, free_port, open_files, post_job, rss_kib, sign_in,
};
use aft_bench::{aft_binary, mib, ms, percentiles};

const SCHEDULES: usize = 50;
const WATCHERS: usize = 10;
const FLOOD_LINES: u32 = 100_000;

const WATCH: &str = r#"
var w = new FsWatcher();
w.WatchDir(Param("dir"), false);
w.Start(function (evt) { if (evt.Event === EVT_CREATE) Log("new " + evt.Object); });
WaitForHaltSignal();
w.Stop();
"#;

const FLOOD: &str = r#"
var n = parseInt(Param("n"), 10);
for (var i = 0; i < n; i++) Log("flood line " + i + " of " + n);
"#;

struct Sample {
    rss_kib: u64,
    peak_rss_kib: u64,
    open_files: usize,
    db_bytes: u64,
    wal_bytes: u64,
    audit_bytes: u64,
    jobs: (Duration, Duration),
    health: (Duration, Duration),
}

/// The SQLite database's files, whose sizes add up to the database size printed.
const DATABASE_FILES: [&str; 3] = ["aft.db", "aft.db-wal", "aft.db-shm"];

/// The bytes of `aft.db`'s pages by table (its indexes counted with it), from SQLite's
/// `dbstat` table, read on a read-only connection of its own.
async fn table_bytes(data: &Path) -> anyhow::Result<Vec<(String, u64)>> {
    use sqlx::{ConnectOptions, Row};
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(data.join("aft.db"))
        .read_only(true)
        .connect()
        .await?;
    let rows = sqlx::query(
        "SELECT m.tbl_name AS name, SUM(d.pgsize) AS bytes FROM dbstat d \
         JOIN sqlite_master m ON m.name = d.name GROUP BY m.tbl_name ORDER BY bytes DESC",
    )
    .fetch_all(&mut conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("name")?, r.try_get::<i64, _>("bytes")? as u64)))
        .collect()
}

/// The audit trail's share of [`table_bytes`]: one record per audited request, capped by
/// `audit-retention-max-records` (KEEP).
fn audit_bytes(tables: &[(String, u64)]) -> u64 {
    tables
        .iter()
        .filter(|(name, _)| name.starts_with("audit_"))
        .map(|(_, bytes)| bytes)
        .sum()
}

/// Sequential requests per latency figure.
const LATENCY_RUNS: usize = 1000;

fn file_bytes(data: &Path, files: &[&str]) -> u64 {
    files
        .iter()
        .filter_map(|f| std::fs::metadata(data.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

/// The p50 and p99 of `runs` sequential `GET`s of `url`.
async fn latency(
    http: &reqwest::Client,
    url: &str,
    cookie: &str,
    runs: usize,
) -> anyhow::Result<(Duration, Duration)> {
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let resp = http.get(url).header("Cookie", cookie).send().await?;
        let status = resp.status();
        let _ = resp.bytes().await?;
        anyhow::ensure!(status.is_success(), "GET {url}: {status}");
        samples.push(start.elapsed());
    }
    Ok(percentiles(&mut samples))
}

async fn sample(
    http: &reqwest::Client,
    base: &str,
    cookie: &str,
    pid: u32,
    data: &Path,
    peak_rss_kib: &AtomicU64,
) -> anyhow::Result<Sample> {
    Ok(Sample {
        rss_kib: rss_kib(pid),
        peak_rss_kib: peak_rss_kib.swap(0, Ordering::SeqCst),
        open_files: open_files(pid),
        db_bytes: file_bytes(data, &DATABASE_FILES),
        wal_bytes: file_bytes(data, &["aft.db-wal"]),
        audit_bytes: audit_bytes(&table_bytes(data).await?),
        jobs: latency(http, &format!("{base}/v1/jobs"), cookie, LATENCY_RUNS).await?,
        health: latency(http, &format!("{base}/v1/health"), cookie, LATENCY_RUNS).await?,
    })
}

/// Jobs by status, from `/metrics`: `queued=8 running=16 ...`.
async fn job_counts(http: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    Ok(svc::job_counts(http, base)
        .await?
        .iter()
        .map(|(status, n)| format!("{status}={n}"))
        .collect::<Vec<_>>()
        .join(" "))
}

fn change(start: f64, end: f64) -> String {
    if start == 0.0 {
        return "-".into();
    }
    format!("{:+.1}%", (end - start) / start * 100.0)
}

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1200);
    let jobs: u64 = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(20_000);
    let keep: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(5_000);
    let run = Duration::from_secs(seconds);
    let bin = aft_binary()?;
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    std::fs::create_dir(&data)?;
    let data = data.as_path();
    for (name, body) in [
        ("one", r#"Log(Param("x"));"#),
        ("tick", r#"Log("tick");"#),
        ("watch", WATCH),
        ("flood", FLOOD),
    ] {
        let file = dir.path().join(format!("{name}.syncjs"));
        std::fs::write(&file, body)?;
        aft(
            &bin,
            data,
            &["script", "push", name, file.to_str().unwrap_or_default()],
            None,
        )?;
    }
    aft(
        &bin,
        data,
        &["settings", "set", "max-concurrent-jobs", "16"],
        None,
    )?;
    for setting in ["job-retention-max-jobs", "audit-retention-max-records"] {
        aft(
            &bin,
            data,
            &["settings", "set", setting, &keep.to_string()],
            None,
        )?;
    }
    aft(
        &bin,
        data,
        &["admin", "create", "soak"],
        Some("soak-password\n"),
    )?;
    let key = aft(
        &bin,
        data,
        &["apikey", "create", "--name", "soak", "--allow", "127.0.0.1"],
        None,
    )?
    .trim()
    .to_string();
    for i in 0..SCHEDULES {
        aft(
            &bin,
            data,
            &[
                "schedule",
                "add",
                &format!("every-second-{i}"),
                "--script",
                "tick",
                "--cron",
                "* * * * * *",
            ],
            None,
        )?;
    }
    let mut folders = Vec::new();
    for i in 0..WATCHERS {
        let folder = dir.path().canonicalize()?.join(format!("inbox-{i}"));
        std::fs::create_dir(&folder)?;
        let params = serde_json::json!({ "dir": folder.display().to_string() }).to_string();
        aft(
            &bin,
            data,
            &[
                "watcher",
                "add",
                &format!("inbox-{i}"),
                "--script",
                "watch",
                "--params",
                &params,
            ],
            None,
        )?;
        folders.push(folder);
    }

    let port = free_port()?;
    let base = format!("https://127.0.0.1:{port}");
    let server = Server::start(&bin, data, port, "info")?;
    let pid = server.pid();
    let http = client(data)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (first, last, posted, dropped, floods, counts) = runtime.block_on(async {
        let cookie = sign_in(&http, &base, "soak", "soak-password").await?;
        let stop = Arc::new(AtomicBool::new(false));
        let posted = Arc::new(AtomicU64::new(0));
        let poster = {
            let (http, base, key, stop, posted) = (
                http.clone(),
                base.clone(),
                key.clone(),
                stop.clone(),
                posted.clone(),
            );
            tokio::spawn(async move {
                let every = run / jobs.max(1) as u32;
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let body = serde_json::json!({"scriptName": "one", "params": {"x": "soak"}});
                while !stop.load(Ordering::SeqCst) && posted.load(Ordering::SeqCst) < jobs {
                    tick.tick().await;
                    post_job(&http, &base, &key, &body).await?;
                    posted.fetch_add(1, Ordering::SeqCst);
                }
                anyhow::Ok(())
            })
        };
        let dropper = {
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut n: u64 = 0;
                let mut tick = tokio::time::interval(Duration::from_millis(100));
                while !stop.load(Ordering::SeqCst) {
                    tick.tick().await;
                    let folder = &folders[n as usize % folders.len()];
                    std::fs::write(folder.join(format!("file-{n}.csv")), b"id,amount\n1,10\n")?;
                    // Keep each folder small: remove the file dropped ten rounds ago.
                    if n >= 10 * folders.len() as u64 {
                        let old = n - 10 * folders.len() as u64;
                        let _ = std::fs::remove_file(folder.join(format!("file-{old}.csv")));
                    }
                    n += 1;
                }
                anyhow::Ok(n)
            })
        };
        let floods = Arc::new(AtomicU64::new(0));
        let flooder = {
            let (http, base, key, stop, floods) = (
                http.clone(),
                base.clone(),
                key.clone(),
                stop.clone(),
                floods.clone(),
            );
            tokio::spawn(async move {
                // Floods at 30 s, 90 s, ...: the samples (at whole minutes) fall between two.
                let first = tokio::time::Instant::now() + Duration::from_secs(30);
                let mut tick = tokio::time::interval_at(first, Duration::from_secs(60));
                let body = serde_json::json!({"scriptName": "flood", "params": {"n": FLOOD_LINES.to_string()}});
                while !stop.load(Ordering::SeqCst) {
                    tick.tick().await;
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    post_job(&http, &base, &key, &body).await?;
                    floods.fetch_add(1, Ordering::SeqCst);
                }
                anyhow::Ok(())
            })
        };
        // The peak RSS since the last sample, read every 100 ms.
        let peak = Arc::new(AtomicU64::new(0));
        let peak_reader = {
            let (peak, stop) = (peak.clone(), stop.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(100));
                while !stop.load(Ordering::SeqCst) {
                    tick.tick().await;
                    peak.fetch_max(rss_kib(pid), Ordering::SeqCst);
                }
            })
        };
        let started = Instant::now();
        // A line a minute, between two floods, so the trend shows and not only its ends.
        let tracer = {
            let (http, base, stop) = (http.clone(), base.clone(), stop.clone());
            let data = data.to_path_buf();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval_at(
                    tokio::time::Instant::now() + Duration::from_secs(60),
                    Duration::from_secs(60),
                );
                println!(
                    "{:>6} {:>10} {:>6} {:>12} {:>10}  MiB by table; jobs",
                    "s", "RSS", "files", "database", "WAL"
                );
                while !stop.load(Ordering::SeqCst) {
                    tick.tick().await;
                    let tables = table_bytes(&data).await.unwrap_or_default();
                    let biggest = tables
                        .iter()
                        .take(6)
                        .map(|(name, bytes)| format!("{name} {:.1}", *bytes as f64 / 1048576.0))
                        .collect::<Vec<_>>()
                        .join(", ");
                    println!(
                        "{:>6.0} {:>10} {:>6} {:>12} {:>10}  {biggest}; {}",
                        started.elapsed().as_secs_f64(),
                        mib(rss_kib(pid)),
                        open_files(pid),
                        mib(file_bytes(&data, &DATABASE_FILES) / 1024),
                        mib(file_bytes(&data, &["aft.db-wal"]) / 1024),
                        job_counts(&http, &base).await.unwrap_or_default()
                    );
                }
            })
        };
        // Whole minutes, so the sample falls between two floods.
        let warmup = Duration::from_secs((seconds / 4 / 60 * 60).clamp(60, 300));
        tokio::time::sleep(warmup.saturating_sub(Duration::from_secs(60))).await;
        peak.store(0, Ordering::SeqCst);
        tokio::time::sleep(warmup.min(Duration::from_secs(60))).await;
        let first = sample(&http, &base, &cookie, pid, data, &peak).await?;
        println!(
            "first sample at {:.0} s: {}",
            started.elapsed().as_secs_f64(),
            job_counts(&http, &base).await?
        );
        tokio::time::sleep(run.saturating_sub(started.elapsed() + Duration::from_secs(60))).await;
        peak.store(0, Ordering::SeqCst);
        tokio::time::sleep(run.saturating_sub(started.elapsed())).await;
        let last = sample(&http, &base, &cookie, pid, data, &peak).await?;
        stop.store(true, Ordering::SeqCst);
        poster.abort();
        peak_reader.abort();
        tracer.abort();
        flooder.abort();
        let dropped = dropper.await??;
        let counts = job_counts(&http, &base).await?;
        anyhow::Ok((
            first,
            last,
            posted.load(Ordering::SeqCst),
            dropped,
            floods.load(Ordering::SeqCst),
            counts,
        ))
    })?;
    drop(server);

    println!(
        "aft serve on SQLite, {seconds} s: {SCHEDULES} schedules every second, {WATCHERS} watcher jobs \
         ({dropped} files dropped), {posted} jobs posted, {floods} jobs of {FLOOD_LINES} log lines, \
         job-retention-max-jobs and audit-retention-max-records {keep}"
    );
    println!("jobs at the end: {counts}");
    println!("{:<28} {:>14} {:>14} {:>9}", "", "start", "end", "change");
    let kib_row =
        |what: &str, a: u64, b: u64| (what.to_string(), a as f64, b as f64, mib(a), mib(b));
    let ms_row = |what: &str, a: Duration, b: Duration| {
        let (fa, fb) = (ms(a), ms(b));
        (what.to_string(), a.as_secs_f64(), b.as_secs_f64(), fa, fb)
    };
    let rows = [
        kib_row("RSS", first.rss_kib, last.rss_kib),
        kib_row(
            "RSS peak, minute before",
            first.peak_rss_kib,
            last.peak_rss_kib,
        ),
        (
            "open files".to_string(),
            first.open_files as f64,
            last.open_files as f64,
            first.open_files.to_string(),
            last.open_files.to_string(),
        ),
        kib_row(
            "database (db + wal + shm)",
            first.db_bytes / 1024,
            last.db_bytes / 1024,
        ),
        kib_row(
            "  of which the WAL",
            first.wal_bytes / 1024,
            last.wal_bytes / 1024,
        ),
        kib_row(
            "  of which the audit trail",
            first.audit_bytes / 1024,
            last.audit_bytes / 1024,
        ),
        kib_row(
            "database, audit trail aside",
            (first.db_bytes - first.audit_bytes) / 1024,
            (last.db_bytes - last.audit_bytes) / 1024,
        ),
        ms_row("GET /v1/jobs p50", first.jobs.0, last.jobs.0),
        ms_row("GET /v1/jobs p99", first.jobs.1, last.jobs.1),
        ms_row("GET /v1/health p50", first.health.0, last.health.0),
        ms_row("GET /v1/health p99", first.health.1, last.health.1),
    ];
    for (what, a, b, fa, fb) in rows {
        println!("{what:<28} {fa:>14} {fb:>14} {:>9}", change(a, b));
    }
    Ok(())
}
