//! `FsWatcher` latency and memory during a burst, beside `inotifywait` (inotify-tools).
//!
//! `cargo run --release -p aft-bench --bin watcher [-- FILES]` (default 10,000 files).
//!
//! A job watches a fresh folder; the bench writes FILES small files as fast as it can (each
//! created, written and closed in one go) and notes when each was closed. The latency of a
//! file is from its close to the script callback that reports its `EVT_CREATE` (taken in the
//! job's log sink, which the callback's `Log` calls synchronously); a callback that ran
//! before the close counts as 0. `inotifywait -m -e close_write` watches the same burst
//! in its own folder, timed from close to the line it prints. RSS: this process's peak
//! during the burst (the engine and its watcher), and inotifywait's peak (VmHWM).

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aft_bench::row;
use aft_bench::svc::proc_status_kib;
use aft_engine::{HaltFlag, JobScope, JobSpec, Limits, LogLevel, MemoryHost, run_job};

const SCRIPT: &str = r#"
var w = new FsWatcher();
w.WatchDir(Param("dir"), false);
w.Start(function (evt) { if (evt.Event === EVT_CREATE) Log("C " + evt.Object); });
Log("READY");
WaitForHaltSignal();
w.Stop();
"#;

fn main() -> anyhow::Result<()> {
    let files: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10_000);
    let dir = tempfile::tempdir()?;
    let ours = dir.path().canonicalize()?.join("aft");
    let theirs = dir.path().canonicalize()?.join("inotifywait");
    std::fs::create_dir(&ours)?;
    std::fs::create_dir(&theirs)?;

    // aft: the callback's Log line arrives in this sink on the job's thread, at once.
    let seen: Arc<Mutex<HashMap<PathBuf, Instant>>> = Arc::default();
    let ready = Arc::new(AtomicBool::new(false));
    let sink_seen = seen.clone();
    let sink_ready = ready.clone();
    let tokio = tokio::runtime::Runtime::new()?;
    let halt = HaltFlag::new();
    let scope = JobScope {
        host: Arc::new(MemoryHost::new()),
        log: Arc::new(move |_level: LogLevel, line: &str| {
            let now = Instant::now();
            if let Some(path) = line.strip_prefix("C ") {
                sink_seen.lock().unwrap().entry(path.into()).or_insert(now);
            } else if line == "READY" {
                sink_ready.store(true, Ordering::SeqCst);
            }
        }),
        halt: halt.clone(),
        tokio: tokio.handle().clone(),
    };
    let spec = JobSpec {
        name: "watcher-bench.syncjs".into(),
        source: SCRIPT.into(),
        params: BTreeMap::from([("dir".to_string(), ours.display().to_string())]),
    };
    let job = std::thread::spawn(move || run_job(spec, scope, Limits::default()));
    while !ready.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let rss_before = proc_status_kib("self", "VmRSS:");
    let peak = Arc::new(AtomicU64::new(rss_before));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        std::thread::spawn(move || {
            while sampling.load(Ordering::SeqCst) {
                peak.fetch_max(proc_status_kib("self", "VmRSS:"), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let closed = burst(&ours, files)?;
    wait_all(&seen, files, "aft's FsWatcher")?;
    sampling.store(false, Ordering::SeqCst);
    sampler.join().expect("the RSS sampler panicked");
    halt.raise();
    let outcome = job.join().expect("the job thread panicked");
    let ours_lat = latencies(&closed, &seen.lock().unwrap());

    // inotifywait on the same burst in its own folder.
    let peer = match Command::new("inotifywait")
        .args(["-m", "-q", "-e", "close_write", "--format", "%w%f"])
        .arg(&theirs)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(mut child) => {
            let pid = child.id();
            let stdout = child.stdout.take().expect("piped stdout");
            let peer_seen: Arc<Mutex<HashMap<PathBuf, Instant>>> = Arc::default();
            let reader_seen = peer_seen.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    let now = Instant::now();
                    reader_seen
                        .lock()
                        .unwrap()
                        .entry(line.into())
                        .or_insert(now);
                }
            });
            // inotifywait prints "Watches established" only without -q: give it a moment.
            std::thread::sleep(Duration::from_millis(300));
            let closed = burst(&theirs, files)?;
            let result = wait_all(&peer_seen, files, "inotifywait");
            let hwm = proc_status_kib(&pid.to_string(), "VmHWM:");
            let _ = child.kill();
            let _ = child.wait();
            result?;
            Some((latencies(&closed, &peer_seen.lock().unwrap()), hwm))
        }
        Err(e) => {
            eprintln!("inotifywait not run ({e}); install inotify-tools (ci/peers/inotify.apt)");
            None
        }
    };

    println!("FsWatcher burst of {files} files (outcome: {outcome})");
    let (p_lat, p_rss) = match &peer {
        Some((lat, hwm)) => (Some(lat), format!("{} MiB", hwm / 1024)),
        None => (None, "n/a".into()),
    };
    for (label, q) in [("p50", 0.50), ("p99", 0.99)] {
        row(
            &format!("close -> callback latency {label}"),
            &ms(percentile(&ours_lat, q)),
            "inotifywait",
            &p_lat.map_or("n/a".into(), |l| ms(percentile(l, q))),
        );
    }
    row(
        "peak RSS during the burst",
        &format!(
            "{} MiB (+{})",
            peak.load(Ordering::SeqCst) / 1024,
            (peak.load(Ordering::SeqCst) - rss_before) / 1024
        ),
        "inotifywait",
        &p_rss,
    );
    Ok(())
}

/// Write `n` small files into `dir` as fast as possible; when each was closed.
fn burst(dir: &Path, n: usize) -> anyhow::Result<HashMap<PathBuf, Instant>> {
    let mut closed = HashMap::with_capacity(n);
    for i in 0..n {
        let path = dir.join(format!("f{i:06}.dat"));
        let mut f = std::fs::File::create(&path)?;
        f.write_all(b"payload")?;
        drop(f);
        closed.insert(path, Instant::now());
    }
    Ok(closed)
}

fn wait_all(seen: &Mutex<HashMap<PathBuf, Instant>>, n: usize, who: &str) -> anyhow::Result<()> {
    let until = Instant::now() + Duration::from_secs(120);
    while seen.lock().unwrap().len() < n {
        anyhow::ensure!(
            Instant::now() < until,
            "{who} reported {} of {n} files within 120 s",
            seen.lock().unwrap().len()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

fn latencies(
    closed: &HashMap<PathBuf, Instant>,
    seen: &HashMap<PathBuf, Instant>,
) -> Vec<Duration> {
    let mut out: Vec<Duration> = closed
        .iter()
        .filter_map(|(p, c)| seen.get(p).map(|s| s.saturating_duration_since(*c)))
        .collect();
    out.sort();
    out
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}
