//! A script error names the script's own line, not the host's JavaScript: `GetVFS` of an
//! unknown entry fails with the caller's `file:line` and a stack without the host prelude's
//! `eval_script` frames, in `aft run` and in a service job (its error and its log).

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use support::{Aft, call, wait_job};

const SCRIPT: &str =
    "Log(\"start\");\nfunction open() {\n    return GetVFS(\"no-such-entry\");\n}\nopen();\n";

#[test]
fn aft_run_reports_the_scripts_line_without_host_frames() {
    let aft = Aft::allowing_cli_run();
    let file = aft.write("frames.syncjs", SCRIPT);
    let out = aft.fails(&["run", "-f", &file], 1);
    assert!(
        out.contains("no VFS Library entry named \"no-such-entry\""),
        "{out}"
    );
    // The call on line 3, and the caller on line 5, are the frames shown.
    assert!(out.contains(&format!("at {file}:3:")), "{out}");
    assert!(out.contains(&format!("at open ({file}:3:")), "{out}");
    assert!(out.contains(&format!("({file}:5:")), "{out}");
    assert!(!out.contains("eval_script"), "a host frame leaked: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_jobs_error_and_log_have_no_host_frames() {
    let aft = Aft::new();
    aft.push_script("frames", SCRIPT);
    let svc = aft.serve();
    let http = svc.client();
    let base = svc.base();
    let token = svc.local_token();
    let auth = ("X-Aft-Local-Token", token.as_str());
    let (status, queued) = call(
        &http,
        Method::POST,
        &format!("{base}/v1/jobs"),
        Some(auth),
        Some(&json!({"scriptName": "frames"})),
    )
    .await;
    assert_eq!(status, 202, "{queued}");
    let id = queued["jobId"].as_str().unwrap();
    let job = wait_job(&http, &base, auth, id).await;
    assert_eq!(job["status"], "failed", "{job}");
    let error = job["error"].as_str().unwrap_or_default();
    assert!(error.contains("no-such-entry"), "{job}");
    assert!(
        error.contains(":3:"),
        "the error names the script's line: {job}"
    );
    assert!(!error.contains("eval_script"), "{job}");

    let (status, log) = call(
        &http,
        Method::GET,
        &format!("{base}/v1/jobs/{id}/log"),
        Some(auth),
        None,
    )
    .await;
    assert_eq!(status, 200, "{log}");
    let text = log_text(&log);
    assert!(
        text.contains("at open ("),
        "the script's frames stay: {text}"
    );
    assert!(!text.contains("eval_script"), "a host frame leaked: {text}");
}

/// The messages of a `GET /v1/jobs/{id}/log` answer, one a line.
fn log_text(log: &Value) -> String {
    log["lines"]
        .as_array()
        .unwrap_or_else(|| panic!("no lines in {log}"))
        .iter()
        .map(|l| l["message"].as_str().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}
