//! Floods of bad credentials against the real service: they are refused cheaply, they do not
//! lock out the valid credentials of the same address, and a refusal says when to retry.

mod support;

use reqwest::Method;
use serde_json::json;
use support::{Aft, call};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_bad_sign_ins_stay_small_and_do_not_lock_out_others() {
    let aft = Aft::new();
    support::ok(aft.run_with_input(&["admin", "create", "alice"], "alice-password\n"));
    let svc = aft.serve();
    let http = svc.client();
    let url = format!("{}/v1/session", svc.base());

    // 200 at once, for a known and an unknown user: argon2 must not run 200 times at once.
    let flood = (0..200).map(|i| {
        let (http, url) = (http.clone(), url.clone());
        tokio::spawn(async move {
            let user = if i % 2 == 0 { "alice" } else { "mallory" };
            let resp = http
                .post(&url)
                .json(&json!({"username": user, "password": format!("wrong-{i}")}))
                .send()
                .await
                .unwrap();
            let retry_after = resp.headers().get("retry-after").is_some();
            (resp.status().as_u16(), retry_after)
        })
    });
    let mut refused = 0;
    for answer in futures::future::join_all(flood).await {
        match answer.unwrap() {
            (401, _) => {}
            (429, has_retry_after) => {
                assert!(has_retry_after, "a 429 says when to retry");
                refused += 1;
            }
            (other, _) => panic!("a bad sign-in answered {other}"),
        }
    }
    assert!(refused > 0, "a flood from one address is slowed down");
    let peak_mib = support::peak_rss_mib(svc.child.id());
    assert!(peak_mib < 100, "peak RSS {peak_mib} MiB during the flood");

    // The flood was against alice and mallory from 127.0.0.1: the local token, an API key
    // and the same address still work.
    let key = aft.create_key("ci", "127.0.0.1");
    let token = svc.local_token();
    let (status, body) = call(
        &http,
        Method::GET,
        &format!("{}/v1/jobs", svc.base()),
        Some(("X-API-Key", &key)),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(
        &http,
        Method::GET,
        &format!("{}/v1/scripts", svc.base()),
        Some(("X-Aft-Local-Token", &token)),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_bad_keys_does_not_lock_out_valid_keys_token_or_sign_in() {
    let aft = Aft::new();
    support::ok(aft.run_with_input(&["admin", "create", "alice"], "alice-password\n"));
    let key = aft.create_key("ci", "127.0.0.1");
    let svc = aft.serve();
    let http = svc.client();
    let jobs = format!("{}/v1/jobs", svc.base());

    let mut last = (0, false);
    for i in 0..40 {
        let resp = http
            .get(&jobs)
            .header("X-API-Key", format!("aft_not-a-key-{i}"))
            .send()
            .await
            .unwrap();
        last = (
            resp.status().as_u16(),
            resp.headers().get("retry-after").is_some(),
        );
        let body: serde_json::Value = resp.json().await.unwrap();
        assert!(body["error"].is_string(), "{body}");
    }
    assert_eq!(
        last,
        (429, true),
        "bad keys are slowed down, with Retry-After"
    );

    let (status, body) = call(&http, Method::GET, &jobs, Some(("X-API-Key", &key)), None).await;
    assert_eq!(status, 200, "a valid key still works: {body}");
    let token = svc.local_token();
    let (status, body) = call(
        &http,
        Method::GET,
        &format!("{}/v1/scripts", svc.base()),
        Some(("X-Aft-Local-Token", &token)),
        None,
    )
    .await;
    assert_eq!(status, 200, "the local token still works: {body}");
    let (status, body) = call(
        &http,
        Method::POST,
        &format!("{}/v1/session", svc.base()),
        None,
        Some(&json!({"username": "alice", "password": "alice-password"})),
    )
    .await;
    assert_eq!(status, 200, "sign-in still works: {body}");
}
