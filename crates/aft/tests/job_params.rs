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

/// Numbers given as JSON numbers reach the script as the same text: parsed to the nearest
/// f64 (serde_json's `float_roundtrip`), not one unit off in the last digit, which the
/// default parser was for about one decimal in ten with 16 or 17 digits.
const NUMBERS: &str = r#"{"a":0.1,"b":985.6906946328695,"c":212.91890726713459,"d":-0.30000000000000004,"e":1.0715660391465826e-75,"f":9007199254740993}"#;
const NUMBERS_SEEN: &str = "nums=0.1 985.6906946328695 212.91890726713459 -0.30000000000000004 1.0715660391465826e-75 9007199254740993";
const SHOW_NUMBERS: &str = r#"Log("nums=" + ["a", "b", "c", "d", "e", "f"].map(function (n) { return Param(n); }).join(" "));"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numeric_params_keep_every_digit_through_run_start_and_the_api() {
    let aft = Aft::allowing_cli_run();
    let file = aft.write("nums.syncjs", SHOW_NUMBERS);
    let out = aft.ok(&["run", "-f", &file, "-p", NUMBERS]);
    assert!(out.contains(NUMBERS_SEEN), "aft run: {out}");

    aft.push_script("Nums", SHOW_NUMBERS);
    let key = aft.create_key("ci", "127.0.0.1");
    let svc = aft.serve();
    let (http, base) = (svc.client(), svc.base());
    let out = aft.ok(&[
        "start",
        "-n",
        "Nums",
        "-a",
        &key,
        "--host",
        &svc.host(),
        "--params",
        NUMBERS,
        "--wait",
    ]);
    assert!(out.contains(NUMBERS_SEEN), "aft start: {out}");

    // The request body as text: the numbers must not pass through this test's own parser.
    let resp = http
        .post(format!("{base}/v1/jobs"))
        .header("X-API-Key", &key)
        .header("Content-Type", "application/json")
        .body(format!(r#"{{"scriptName":"Nums","params":{NUMBERS}}}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let queued: Value = resp.json().await.unwrap();
    let id = queued["jobId"].as_str().unwrap();
    let job = wait_job(&http, &base, ("X-API-Key", &key), id).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["params"]["c"], "212.91890726713459", "{job}");
    let (_, log) = call(
        &http,
        Method::GET,
        &format!("{base}/v1/jobs/{id}/log"),
        Some(("X-API-Key", &key)),
        None,
    )
    .await;
    assert!(
        log.to_string().contains(NUMBERS_SEEN),
        "POST /v1/jobs: {log}"
    );
}
