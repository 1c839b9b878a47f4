//! Job parameters through every way of starting a job, with the real binary: `aft run -p`,
//! `aft start --params`, `POST /v1/jobs`, schedules and watcher jobs (CLI and API) take the
//! same forms and refuse the same nested values, and a script reads the same text.

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use support::{Aft, call, wait_job};

/// The script every entry point runs: it logs what `Param` returns.
const SHOW: &str = r#"Log("dest=" + Param("dest") + " n=" + Param("n") + " on=" + Param("on") + " gone=[" + Param("gone") + "]");"#;
const EXPECTED: &str = "dest=/a n=3 on=true gone=[]";
const FLAT: &str = r#"{"dest":"/a","n":3,"on":true,"gone":null}"#;
const V3: &str =
    r#"[{"name":"dest","value":"/a"},{"name":"n","value":3},{"name":"on","value":true}]"#;
const NESTED: &str = r#"{"dest":{"deep":"/a"}}"#;

#[test]
fn aft_run_takes_both_forms_and_refuses_nested_values() {
    let aft = Aft::allowing_cli_run();
    let file = aft.write("show.syncjs", SHOW);
    for params in [FLAT, V3] {
        let out = aft.ok(&["run", "-f", &file, "-p", params]);
        assert!(out.contains(EXPECTED), "{params}: {out}");
    }
    let refused = aft.fails(&["run", "-f", &file, "-p", NESTED], 2);
    assert!(
        refused.contains("--params") && refused.contains("\"dest\""),
        "{refused}"
    );
}

#[test]
fn schedule_and_watcher_commands_refuse_nested_params_like_aft_run() {
    let aft = Aft::new();
    aft.push_script("Show", SHOW);
    for args in [
        vec![
            "schedule", "add", "s", "-s", "Show", "--cron", "@daily", "--params", NESTED,
        ],
        vec!["watcher", "add", "w", "-s", "Show", "--params", NESTED],
    ] {
        let refused = aft.fails(&args, 2);
        assert!(
            refused.contains("--params") && refused.contains("\"dest\""),
            "{args:?}: {refused}"
        );
    }
    aft.ok(&[
        "schedule", "add", "s", "-s", "Show", "--cron", "@daily", "--params", V3,
    ]);
    let listed: Value = serde_json::from_str(&aft.ok(&["schedule", "list", "--json"])).unwrap();
    let shown = &listed[0];
    assert_eq!(
        shown["params"],
        json!({"dest": "/a", "n": "3", "on": "true"}),
        "{shown}"
    );
    let refused = aft.fails(&["schedule", "update", "s", "--params", NESTED], 2);
    assert!(refused.contains("\"dest\""), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_jobs_schedules_and_watchers_take_the_same_params() {
    let aft = Aft::new();
    aft.push_script("Show", SHOW);
    let key = aft.create_key("ci", "127.0.0.1");
    let svc = aft.serve();
    let http = svc.client();
    let base = svc.base();
    let token = svc.local_token();
    let admin = ("X-Aft-Local-Token", token.as_str());
    let api_key = ("X-API-Key", key.as_str());
    let nested: Value = serde_json::from_str(NESTED).unwrap();

    // POST /v1/jobs: both forms give the script the same text; nested is a 400 naming it.
    for params in [FLAT, V3] {
        let body =
            json!({"scriptName": "Show", "params": serde_json::from_str::<Value>(params).unwrap()});
        let (status, queued) = call(
            &http,
            Method::POST,
            &format!("{base}/v1/jobs"),
            Some(api_key),
            Some(&body),
        )
        .await;
        assert_eq!(status, 202, "{queued}");
        let id = queued["jobId"].as_str().unwrap();
        let job = wait_job(&http, &base, api_key, id).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(
            job["params"],
            json!({"dest": "/a", "n": "3", "on": "true"}),
            "{job}"
        );
        let (_, log) = call(
            &http,
            Method::GET,
            &format!("{base}/v1/jobs/{id}/log"),
            Some(api_key),
            None,
        )
        .await;
        assert!(log.to_string().contains(EXPECTED), "{params}: {log}");
    }
    let (status, body) = call(
        &http,
        Method::POST,
        &format!("{base}/v1/jobs"),
        Some(api_key),
        Some(&json!({"scriptName": "Show", "params": nested})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("\"dest\""),
        "{body}"
    );

    // Schedules and watcher jobs: the same refusal, with nothing created.
    for (path, body) in [
        (
            "schedules",
            json!({"name": "s", "script": "Show", "cron": "@daily", "params": nested}),
        ),
        (
            "watchers",
            json!({"name": "w", "script": "Show", "params": nested}),
        ),
    ] {
        let (status, answer) = call(
            &http,
            Method::POST,
            &format!("{base}/v1/{path}"),
            Some(admin),
            Some(&body),
        )
        .await;
        assert_eq!(status, 400, "{path}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains("\"dest\""),
            "{path}: {answer}"
        );
        let (_, list) = call(
            &http,
            Method::GET,
            &format!("{base}/v1/{path}"),
            Some(admin),
            None,
        )
        .await;
        assert_eq!(list.as_array().map(Vec::len), Some(0), "{path}: {list}");
    }
    let body = json!({"name": "s", "script": "Show", "cron": "@daily", "params": serde_json::from_str::<Value>(V3).unwrap()});
    let (status, created) = call(
        &http,
        Method::POST,
        &format!("{base}/v1/schedules"),
        Some(admin),
        Some(&body),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        created["params"],
        json!({"dest": "/a", "n": "3", "on": "true"}),
        "{created}"
    );
    let (status, answer) = call(
        &http,
        Method::PUT,
        &format!("{base}/v1/schedules/s"),
        Some(admin),
        Some(&json!({"params": nested})),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
}
