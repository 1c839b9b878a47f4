//! Limits that keep one job from taking the service down, through the real binary: a job's
//! log is cut at `job-log-max-lines` with a line saying so, one huge line is clipped, a
//! flood of long lines waits for the store rather than filling memory, and a lowered
//! `max-concurrent-jobs` applies to the next jobs at once.

mod support;

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use support::{Aft, call, wait_job};

async fn queue(http: &reqwest::Client, base: &str, key: &str, script: &str) -> String {
    let (status, body) = call(
        http,
        Method::POST,
        &format!("{base}/v1/jobs"),
        Some(("X-API-Key", key)),
        Some(&json!({"scriptName": script})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    body["jobId"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_flood_is_cut_at_the_cap_and_a_huge_line_is_clipped() {
    let aft = Aft::new();
    aft.ok(&["settings", "set", "job-log-max-lines", "1000"]);
    aft.push_script(
        "Flood",
        r#"for (var i = 0; i < 200000; i++) Log("line " + i + " of a log flood"); Log("done");"#,
    );
    aft.push_script(
        "Huge",
        r#"var s = "x"; while (s.length < 1048576) s += s; Log(s); Log("after");"#,
    );
    let key = aft.create_key("ci", "127.0.0.1");
    let svc = aft.serve();
    let (http, base) = (svc.client(), svc.base());
    let auth = ("X-API-Key", key.as_str());

    let flood = queue(&http, &base, &key, "Flood").await;
    // The API stays responsive during the flood.
    let started = Instant::now();
    let (status, _) = call(
        &http,
        Method::GET,
        &format!("{base}/v1/jobs"),
        Some(auth),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "GET /v1/jobs took {:?}",
        started.elapsed()
    );
    let job = wait_job(&http, &base, auth, &flood).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let (_, log) = call(
        &http,
        Method::GET,
        &format!("{base}/v1/jobs/{flood}/log?limit=5000"),
        Some(auth),
        None,
    )
    .await;
    let lines = log["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 1001, "1000 lines and the note");
    let last = lines.last().unwrap();
    assert!(
        last["message"].as_str().unwrap().contains("log truncated"),
        "{last}"
    );
    assert_eq!(last["level"], "warn");
    let peak = support::peak_rss_mib(svc.child.id());
    assert!(
        peak < 150,
        "peak RSS {peak} MiB during a 200,000-line flood"
    );

    let huge = queue(&http, &base, &key, "Huge").await;
    let job = wait_job(&http, &base, auth, &huge).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let (_, log) = call(
        &http,
        Method::GET,
        &format!("{base}/v1/jobs/{huge}/log"),
        Some(auth),
        None,
    )
    .await;
    let first = log["lines"][0]["message"].as_str().unwrap();
    assert!(
        first.len() < 70 * 1024 && first.contains("more bytes not kept"),
        "{} bytes",
        first.len()
    );
    assert_eq!(log["lines"][1]["message"], "after");
}

/// Long lines under the line cap: 4,000 lines of 32 KiB, 125 MiB of text, made far faster
/// than the store takes them. The job waits for the store instead of queueing them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_long_lines_waits_for_the_store_instead_of_filling_memory() {
    let aft = Aft::new();
    aft.push_script(
        "Long",
        r#"var s = "x"; while (s.length < 32768) s += s;
for (var i = 0; i < 4000; i++) Log(i + " " + s);
Log("done");"#,
    );
    let key = aft.create_key("ci", "127.0.0.1");
    let svc = aft.serve();
    let (http, base) = (svc.client(), svc.base());
    let auth = ("X-API-Key", key.as_str());
    let job = queue(&http, &base, &key, "Long").await;
    let ended = wait_job(&http, &base, auth, &job).await;
    assert_eq!(ended["status"], "succeeded", "{ended}");
    let (_, log) = call(
        &http,
        Method::GET,
        &format!("{base}/v1/jobs/{job}/log?after=3995"),
        Some(auth),
        None,
    )
    .await;
    // Every line stored, in order, whole.
    let lines = log["lines"].as_array().unwrap();
    let n = lines.len();
    assert!(n >= 2, "{log}");
    assert_eq!(lines[n - 1]["message"], "done");
    let last_long = lines[n - 2]["message"].as_str().unwrap();
    assert!(last_long.starts_with("3999 xxx"), "{}", &last_long[..20]);
    assert_eq!(last_long.len(), "3999 ".len() + 32768);
    let peak = support::peak_rss_mib(svc.child.id());
    assert!(
        peak < 110,
        "peak RSS {peak} MiB while 125 MiB of log lines were stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lowered_max_concurrent_jobs_applies_to_the_next_jobs_at_once() {
    let aft = Aft::new();
    aft.push_script("Slow", r#"Sleep(1500); Log("slept");"#);
    let key = aft.create_key("ci", "127.0.0.1");
    let svc = aft.serve();
    let (http, base) = (svc.client(), svc.base());
    let auth = ("X-API-Key", key.as_str());
    aft.ok(&["settings", "set", "max-concurrent-jobs", "1"]);
    // The runner re-reads settings at most a second after a change.
    std::thread::sleep(Duration::from_millis(1200));
    let ids = [
        queue(&http, &base, &key, "Slow").await,
        queue(&http, &base, &key, "Slow").await,
        queue(&http, &base, &key, "Slow").await,
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut most = 0;
    loop {
        let (_, list) = call(
            &http,
            Method::GET,
            &format!("{base}/v1/jobs"),
            Some(auth),
            None,
        )
        .await;
        let jobs: &Vec<Value> = list["jobs"].as_array().unwrap();
        let running = jobs.iter().filter(|j| j["status"] == "running").count();
        most = most.max(running);
        if jobs.iter().all(|j| j["status"] == "succeeded") {
            break;
        }
        assert!(Instant::now() < deadline, "{list}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        most, 1,
        "at most one job at a time with max-concurrent-jobs 1"
    );
    assert_eq!(ids.len(), 3);
}
