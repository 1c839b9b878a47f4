//! Service benchmark: `POST /v1/jobs` → the script's first log line (p50, p99), sustained
//! jobs per second for a one-line script over HTTPS with keep-alive, on SQLite (with the
//! service's CPU time per job, the steadier figure on a busy machine), and the idle RSS of
//! `aft serve` after start and after the throughput run (anonymous memory and file pages
//! apart). `AFT_BENCH_HOLD=SECONDS` keeps the idle service up that long at the end.
//!
//! `cargo run --release -p aft-bench --bin service [-- LATENCY_RUNS THROUGHPUT_JOBS]`
//! (defaults 300 and 10,000)
//!
//! Needs a release build of aft (built if `target/release/aft` is missing, or set
//! `AFT_BIN`). There is no AFT! here to run beside it, so the peer column shows the goal
//! from the performance issue.

use std::time::{Duration, Instant};

use aft_bench::svc::{Server, aft, client, free_port, post_job, rss_parts, succeeded};
use aft_bench::{aft_binary, percentiles, row};

/// POST one job of the one-line script; its id.
async fn post(http: &reqwest::Client, base: &str, key: &str) -> anyhow::Result<String> {
    let body = serde_json::json!({"scriptName": "one", "params": {"x": "hello"}});
    post_job(http, base, key, &body).await
}

/// Time from POST to the first `line` event of the job's live log.
async fn first_line_latency(
    http: &reqwest::Client,
    base: &str,
    key: &str,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let id = post(http, base, key).await?;
    let mut resp = http
        .get(format!("{base}/v1/jobs/{id}/log"))
        .header("X-API-Key", key)
        .header("Accept", "text/event-stream")
        .send()
        .await?;
    let mut seen = String::new();
    while let Some(chunk) = resp.chunk().await? {
        seen.push_str(&String::from_utf8_lossy(&chunk));
        if seen.contains("event: line") {
            return Ok(start.elapsed());
        }
    }
    anyhow::bail!("job {id}: the log ended without a line")
}

/// CPU time (user + system, all threads) that process `pid` has used so far.
fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) are space-separated: utime
    // and stime are the 14th and 15th of the line, in clock ticks.
    let after_name = &stat[stat.rfind(')').unwrap_or(0) + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    let per_second: u64 = String::from_utf8(
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()?
            .stdout,
    )?
    .trim()
    .parse()?;
    Ok(Duration::from_secs_f64(ticks as f64 / per_second as f64))
}

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut args = std::env::args().skip(1);
    let latency_runs: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(300);
    let throughput_jobs: u64 = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10_000);
    let bin = aft_binary()?;
    let dir = tempfile::tempdir()?;
    let data = dir.path();
    std::fs::write(data.join("one.syncjs"), r#"Log(Param("x"));"#)?;
    aft(
        &bin,
        data,
        &[
            "script",
            "push",
            "one",
            data.join("one.syncjs").to_str().unwrap_or_default(),
        ],
        None,
    )?;
    aft(
        &bin,
        data,
        &["settings", "set", "max-concurrent-jobs", "16"],
        None,
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
    let port = free_port()?;
    let server = Server::start(&bin, data, port, "warn")?;
    let pid = server.pid();
    std::thread::sleep(Duration::from_millis(500));
    let idle_start = rss_parts(pid);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let base = format!("https://127.0.0.1:{port}");
    let http = client(data)?;
    let (p50, p99, jobs_per_sec, submit_rate, cpu_per_job) = runtime.block_on(async {
        for _ in 0..20 {
            first_line_latency(&http, &base, &key).await?;
        }
        let mut samples = Vec::with_capacity(latency_runs);
        for _ in 0..latency_runs {
            samples.push(first_line_latency(&http, &base, &key).await?);
        }
        let (p50, p99) = percentiles(&mut samples);

        let before = succeeded(&http, &base).await?;
        let cpu_before = cpu_time(pid)?;
        let start = Instant::now();
        let concurrency = 32;
        let mut tasks = Vec::new();
        for worker in 0..concurrency {
            let http = http.clone();
            let base = base.clone();
            let key = key.clone();
            let share =
                throughput_jobs / concurrency + u64::from(worker < throughput_jobs % concurrency);
            tasks.push(tokio::spawn(async move {
                for _ in 0..share {
                    post(&http, &base, &key).await?;
                }
                anyhow::Ok(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        let submit_rate = throughput_jobs as f64 / start.elapsed().as_secs_f64();
        let deadline = Instant::now() + Duration::from_secs(600);
        while succeeded(&http, &base).await? < before + throughput_jobs {
            anyhow::ensure!(
                Instant::now() < deadline,
                "jobs did not finish within 10 minutes"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let rate = throughput_jobs as f64 / start.elapsed().as_secs_f64();
        // The service's own CPU time per job: steadier than the rate on a busy machine.
        let cpu_per_job = (cpu_time(pid)? - cpu_before) / throughput_jobs as u32;
        anyhow::Ok((p50, p99, rate, submit_rate, cpu_per_job))
    })?;
    // Idle: tokio's spare blocking threads exit after 10 s, and the service returns freed
    // memory to the kernel every 5 s.
    std::thread::sleep(Duration::from_secs(16));
    let idle_after = rss_parts(pid);
    // AFT_BENCH_HOLD=SECONDS keeps the idle service up that long, for a look at its memory
    // (`/proc/PID/smaps`, gdb) before it is stopped.
    if let Some(hold) = std::env::var("AFT_BENCH_HOLD")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        eprintln!("aft serve (pid {pid}) idle for {hold} s");
        std::thread::sleep(Duration::from_secs(hold));
    }

    println!(
        "aft serve on SQLite, HTTPS with keep-alive, one-line script ({latency_runs} latency runs, {throughput_jobs} jobs)"
    );
    row(
        "POST /v1/jobs -> first log line, p50",
        &format!("{:.2} ms", p50.as_secs_f64() * 1000.0),
        "goal",
        "<= 3 ms",
    );
    row(
        "POST /v1/jobs -> first log line, p99",
        &format!("{:.2} ms", p99.as_secs_f64() * 1000.0),
        "goal",
        "-",
    );
    row(
        "sustained jobs per second",
        &format!("{jobs_per_sec:.0} jobs/s"),
        "goal",
        ">= 1000 jobs/s",
    );
    row(
        "  of which all POSTs answered at",
        &format!("{submit_rate:.0} jobs/s"),
        "goal",
        "-",
    );
    row(
        "aft serve CPU time per job (user + system)",
        &format!("{:.3} ms", cpu_per_job.as_secs_f64() * 1000.0),
        "goal",
        "-",
    );
    row(
        "idle RSS after start",
        &idle_start.describe(),
        "goal",
        "<= 16 MiB",
    );
    row(
        &format!("idle RSS after the run ({throughput_jobs} jobs)"),
        &idle_after.describe(),
        "goal",
        "<= 24 MiB",
    );
    Ok(())
}
