//! A single node killed (or stopped cleanly) while jobs run, then started again, through
//! the real binary: a job of a retry-safe script is queued again and runs to success with
//! its attempt counted; a job of any other script is recorded interrupted, as is one
//! somebody had asked to halt.

mod support;

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use support::{Aft, Service, call, poll, wait_job};

/// Sleeps through its first run (the kill or the shutdown comes then) and succeeds on the
/// next.
fn script(marker: &str) -> String {
    format!(
        r#"if (FileExists("{marker}")) {{ Log("second run"); }} else {{ WriteTextFile("{marker}", "1"); Log("first run"); Sleep(120000); }}"#
    )
}

async fn queue(http: &reqwest::Client, base: &str, key: &str, name: &str) -> String {
    let (status, body) = call(
        http,
        Method::POST,
        &format!("{base}/v1/jobs"),
        Some(("X-API-Key", key)),
        Some(&json!({"scriptName": name})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    body["jobId"].as_str().unwrap().to_string()
}

async fn job(http: &reqwest::Client, base: &str, key: &str, id: &str) -> Value {
    call(
        http,
        Method::GET,
        &format!("{base}/v1/jobs/{id}"),
        Some(("X-API-Key", key)),
        None,
    )
    .await
    .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_safe_jobs_run_again_after_a_crash_and_restart_of_one_node() {
    let aft = Aft::new();
    let work = tempfile::tempdir().unwrap();
    let marker = |n: &str| work.path().join(n).to_string_lossy().into_owned();
    let safe_file = aft.write("safe.syncjs", &script(&marker("safe")));
    aft.ok(&["script", "push", "--retry-safe", "Safe", &safe_file]);
    aft.push_script("Plain", &script(&marker("plain")));
    aft.push_script("Halted", &script(&marker("halted")));
    let halted_file = aft.write("halted.syncjs", &script(&marker("halted")));
    aft.ok(&["script", "push", "--retry-safe", "Halted", &halted_file]);
    let key = aft.create_key("ci", "127.0.0.1");

    let mut svc = aft.serve();
    let (http, base) = (svc.client(), svc.base());
    let safe = queue(&http, &base, &key, "Safe").await;
    let plain = queue(&http, &base, &key, "Plain").await;
    let halted = queue(&http, &base, &key, "Halted").await;
    // All three in their first run (the markers exist) before the crash.
    let started = poll(Duration::from_secs(30), || {
        ["safe", "plain", "halted"]
            .iter()
            .all(|m| std::path::Path::new(&marker(m)).exists())
            .then_some(())
    });
    assert!(started.is_some(), "the three jobs did not start");
    // A halt asked for just before the crash must not be undone by the recovery.
    aft.ok(&["jobs", "halt", &halted]);
    svc.kill9();

    let svc = Service::start(aft.data(), &[], &[]);
    let (http, base) = (svc.client(), svc.base());
    let done = wait_job(&http, &base, ("X-API-Key", &key), &safe).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["attempts"], 2, "{done}");
    let (_, log) = call(
        &http,
        Method::GET,
        &format!("{base}/v1/jobs/{safe}/log"),
        Some(("X-API-Key", &key)),
        None,
    )
    .await;
    assert!(log.to_string().contains("second run"), "{log}");
    let plain = job(&http, &base, &key, &plain).await;
    assert_eq!(plain["status"], "interrupted", "{plain}");
    let halted = job(&http, &base, &key, &halted).await;
    assert_ne!(halted["status"], "succeeded", "{halted}");
    assert_ne!(halted["status"], "queued", "{halted}");
    assert_eq!(halted["attempts"], 1, "{halted}");
}

fn show(aft: &Aft, id: &str) -> Value {
    serde_json::from_str(&aft.ok(&["jobs", "show", id, "--json"])).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_shutdown_queues_retry_safe_jobs_again_and_the_restart_runs_them() {
    let aft = Aft::new();
    let work = tempfile::tempdir().unwrap();
    let marker = |n: &str| work.path().join(n).to_string_lossy().into_owned();
    let safe_file = aft.write("safe.syncjs", &script(&marker("safe")));
    aft.ok(&["script", "push", "--retry-safe", "Safe", &safe_file]);
    aft.push_script("Plain", &script(&marker("plain")));
    let key = aft.create_key("ci", "127.0.0.1");

    let mut svc = aft.serve();
    let (http, base) = (svc.client(), svc.base());
    let safe = queue(&http, &base, &key, "Safe").await;
    let plain = queue(&http, &base, &key, "Plain").await;
    let started = poll(Duration::from_secs(30), || {
        ["safe", "plain"]
            .iter()
            .all(|m| std::path::Path::new(&marker(m)).exists())
            .then_some(())
    });
    assert!(started.is_some(), "the two jobs did not start");
    let status = svc.terminate();
    assert!(status.success(), "aft serve exited with {status}");

    let queued = show(&aft, &safe);
    assert_eq!(queued["status"], "queued", "{queued}");
    assert_eq!(queued["attempts"], 1, "{queued}");
    let interrupted = show(&aft, &plain);
    assert_eq!(interrupted["status"], "interrupted", "{interrupted}");

    let svc = Service::start(aft.data(), &[], &[]);
    let (http, base) = (svc.client(), svc.base());
    let done = wait_job(&http, &base, ("X-API-Key", &key), &safe).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["attempts"], 2, "{done}");
    let log = aft.ok(&["jobs", "log", &safe]);
    for line in ["first run", "attempt 2", "second run"] {
        assert!(log.contains(line), "{line:?} missing from the log:\n{log}");
    }
    let plain = show(&aft, &plain);
    assert_eq!(plain["status"], "interrupted", "{plain}");
    assert_eq!(plain["attempts"], 1, "{plain}");
}
