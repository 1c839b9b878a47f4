//! Who started each job (issue 17, "History where it happens"), through the real binary:
//! `startedBy` names the admin, the API key, the schedule, the watcher, a delegated
//! `aft run` or `aft cp`, in `GET /v1/jobs/{id}`, `GET /v1/jobs` and `aft jobs show`.

mod support;

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use support::{Aft, call, poll, sign_in, wait_job};

/// The `startedBy` of the newest job of `script`, once there is one.
fn newest_started_by(aft: &Aft, script: &str) -> Option<String> {
    let out = aft.ok(&["jobs", "list", "--script", script, "--json"]);
    let jobs: Value = serde_json::from_str(&out).unwrap();
    jobs.as_array()?.first().map(|j| {
        j["startedBy"]
            .as_str()
            .unwrap_or_else(|| panic!("no startedBy: {j}"))
            .to_string()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_job_names_who_started_it() {
    let aft = Aft::allowing_cli_run();
    aft.push_script("one", r#"Log("one");"#);
    aft.push_script("keeper", r#"Log("watching"); WaitForHaltSignal();"#);
    aft.push_script("tick", r#"Log("tick");"#);
    support::ok(aft.run_with_input(&["admin", "create", "alice"], "alice-password-1\n"));
    let key = aft.create_key("ci", "127.0.0.1");
    let svc = aft.serve();
    let http = svc.client();
    let base = svc.base();

    // An API key.
    let (status, queued) = call(
        &http,
        Method::POST,
        &format!("{base}/v1/jobs"),
        Some(("X-API-Key", &key)),
        Some(&json!({"scriptName": "one"})),
    )
    .await;
    assert_eq!(status, 202, "{queued}");
    let id = queued["jobId"].as_str().unwrap();
    let job = wait_job(&http, &base, ("X-API-Key", &key), id).await;
    assert_eq!(job["startedBy"], "API key ci", "{job:#}");
    assert_eq!(job["origin"], "api", "{job:#}");

    // A signed-in admin (the web UI's way).
    let (status, cookie, session) = sign_in(&http, &base, "alice", "alice-password-1").await;
    assert_eq!(status, 200, "{session}");
    let csrf = session["csrfToken"].as_str().unwrap().to_string();
    let resp = http
        .post(format!("{base}/v1/jobs"))
        .header("Cookie", &cookie)
        .header("X-CSRF-Token", &csrf)
        .json(&json!({"scriptName": "one"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let queued: Value = resp.json().await.unwrap();
    let id = queued["jobId"].as_str().unwrap();
    let job = wait_job(&http, &base, ("Cookie", &cookie), id).await;
    assert_eq!(job["startedBy"], "admin alice", "{job:#}");
    let (_, page) = call(
        &http,
        Method::GET,
        &format!("{base}/v1/jobs"),
        Some(("Cookie", &cookie)),
        None,
    )
    .await;
    let listed = page["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["id"] == id)
        .unwrap();
    assert_eq!(listed["startedBy"], "admin alice", "{listed}");

    // A schedule and a watcher.
    aft.ok(&[
        "schedule",
        "add",
        "every-second",
        "--script",
        "tick",
        "--cron",
        "* * * * * *",
    ]);
    let by = poll(Duration::from_secs(20), || newest_started_by(&aft, "tick"));
    assert_eq!(by.as_deref(), Some("schedule every-second"));
    aft.ok(&["schedule", "delete", "every-second"]);
    aft.ok(&["watcher", "add", "inbox", "--script", "keeper"]);
    let by = poll(Duration::from_secs(20), || {
        newest_started_by(&aft, "keeper")
    });
    assert_eq!(by.as_deref(), Some("watcher inbox"));
    aft.ok(&["watcher", "delete", "inbox"]);

    // `aft run` delegated to the service, and `aft cp`.
    let file = aft.write("local.syncjs", r#"Log("delegated");"#);
    aft.ok(&["run", "-f", &file]);
    let delegated = aft.newest_job_of("delegate");
    assert_eq!(delegated["startedBy"], "aft run", "{delegated}");
    let src = aft.write("copy-me.txt", "copied");
    let dst = aft.path("copied.txt");
    aft.ok(&["cp", &src, dst.to_str().unwrap()]);
    let copy = aft.newest_job_of("cli");
    assert_eq!(copy["startedBy"], "aft cp", "{copy}");
    let shown: Value =
        serde_json::from_str(&aft.ok(&["jobs", "show", copy["id"].as_str().unwrap(), "--json"]))
            .unwrap();
    assert_eq!(shown["startedBy"], "aft cp", "{shown}");
    drop(svc);
}
