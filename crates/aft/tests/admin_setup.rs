//! The first-admin setup of a new service, through the real binary: it is offered once, and
//! a race of setups (as a script or an attacker fires them at a fresh install) makes exactly
//! one admin.

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use support::{Aft, call};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_setups_make_exactly_one_admin() {
    let aft = Aft::new();
    let svc = aft.serve();
    let http = svc.client();
    let url = format!("{}/v1/setup", svc.base());
    let (status, state) = call(&http, Method::GET, &url, None, None).await;
    assert_eq!(
        (status, &state["adminExists"]),
        (200, &json!(false)),
        "{state}"
    );

    let attempts = (0..20).map(|i| {
        let (http, url) = (http.clone(), url.clone());
        tokio::spawn(async move {
            let body = json!({"username": format!("admin{i}"), "password": "a-long-password"});
            call(&http, Method::POST, &url, None, Some(&body)).await
        })
    });
    let mut created = 0;
    for attempt in futures::future::join_all(attempts).await {
        let (status, body) = attempt.unwrap();
        match status {
            201 => created += 1,
            409 => assert!(
                body["error"].as_str().unwrap().contains("already"),
                "{body}"
            ),
            other => panic!("setup answered {other}: {body}"),
        }
    }
    assert_eq!(created, 1, "exactly one setup may succeed");
    let admins: Value = serde_json::from_str(&aft.ok(&["admin", "list", "--json"])).unwrap();
    assert_eq!(admins.as_array().map(Vec::len), Some(1), "{admins}");
    let (_, state) = call(&http, Method::GET, &url, None, None).await;
    assert_eq!(state["adminExists"], json!(true), "{state}");
}

/// Sign in as `user`: the status and the session cookie.
async fn sign_in(http: &reqwest::Client, base: &str, user: &str, password: &str) -> (u16, String) {
    let (status, cookie, _) = support::sign_in(http, base, user, password).await;
    (status, cookie)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_are_listed_deleted_and_get_new_passwords_from_cli_and_api() {
    let aft = Aft::new();
    ok_with_input(&aft, &["admin", "create", "alice"], "alice-password\n");
    ok_with_input(&aft, &["admin", "create", "bob"], "bob-password\n");

    // The CLI: a new password works at once, the last admin cannot be deleted.
    ok_with_input(&aft, &["admin", "passwd", "ALICE"], "alice-new-password\n");
    let svc = aft.serve();
    let http = svc.client();
    let base = svc.base();
    assert_eq!(
        sign_in(&http, &base, "alice", "alice-password").await.0,
        401
    );
    let (status, alice) = sign_in(&http, &base, "alice", "alice-new-password").await;
    assert_eq!(status, 200);
    let (_, bob) = sign_in(&http, &base, "bob", "bob-password").await;

    // The API, as the web UI calls it: list, change bob's password (ending his session).
    let token = svc.local_token();
    let local = ("X-Aft-Local-Token", token.as_str());
    let (status, list) = call(
        &http,
        Method::GET,
        &format!("{base}/v1/admins"),
        Some(local),
        None,
    )
    .await;
    assert_eq!(status, 200, "{list}");
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    assert!(
        list[0]["createdAt"].is_string() && list[0].get("passwordHash").is_none(),
        "{list}"
    );
    let (status, _) = call(
        &http,
        Method::GET,
        &format!("{base}/v1/session"),
        Some(("Cookie", &bob)),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = call(
        &http,
        Method::PUT,
        &format!("{base}/v1/admins/bob/password"),
        Some(local),
        Some(&json!({"password": "short"})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = call(
        &http,
        Method::PUT,
        &format!("{base}/v1/admins/bob/password"),
        Some(local),
        Some(&json!({"password": "bob-new-password"})),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (status, _) = call(
        &http,
        Method::GET,
        &format!("{base}/v1/session"),
        Some(("Cookie", &bob)),
        None,
    )
    .await;
    assert_eq!(status, 401, "a changed password ends the admin's sessions");
    assert_eq!(
        sign_in(&http, &base, "bob", "bob-new-password").await.0,
        200
    );

    // Another admin from the API (the web UI's "New admin"); a taken name is 409.
    let (status, created) = call(
        &http,
        Method::POST,
        &format!("{base}/v1/admins"),
        Some(local),
        Some(&json!({"username": "carol", "password": "carol-password"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["username"], "carol");
    let (status, body) = call(
        &http,
        Method::POST,
        &format!("{base}/v1/admins"),
        Some(local),
        Some(&json!({"username": "CAROL", "password": "carol-password"})),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        sign_in(&http, &base, "carol", "carol-password").await.0,
        200
    );
    let (status, _) = call(
        &http,
        Method::DELETE,
        &format!("{base}/v1/admins/carol"),
        Some(local),
        None,
    )
    .await;
    assert_eq!(status, 204);

    // Delete: unknown is 404, bob goes, alice is the last one and stays.
    let (status, body) = call(
        &http,
        Method::DELETE,
        &format!("{base}/v1/admins/nobody"),
        Some(local),
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = call(
        &http,
        Method::DELETE,
        &format!("{base}/v1/admins/Bob"),
        Some(local),
        None,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = call(
        &http,
        Method::DELETE,
        &format!("{base}/v1/admins/alice"),
        Some(local),
        None,
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("last admin"),
        "{body}"
    );
    let refused = aft.fails(&["admin", "delete", "alice"], 1);
    assert!(refused.contains("last admin"), "{refused}");
    let (status, _) = call(
        &http,
        Method::GET,
        &format!("{base}/v1/session"),
        Some(("Cookie", &alice)),
        None,
    )
    .await;
    assert_eq!(status, 200);
    // Without an admin credential the list is refused.
    let (status, body) = call(&http, Method::GET, &format!("{base}/v1/admins"), None, None).await;
    assert_eq!(status, 401, "{body}");
}

fn ok_with_input(aft: &Aft, args: &[&str], input: &str) -> String {
    support::ok(aft.run_with_input(args, input))
}

#[test]
fn reinit_refuses_while_a_service_on_another_data_directory_uses_the_same_database() {
    let shared = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", shared.path().join("shared.db").display());
    let node_a = Aft::new();
    let node_b = Aft::new();
    let svc = support::Service::start(node_a.data(), &["--database", &url], &[]);
    let out = node_b
        .command(&["--database", &url, "reinit", "--yes"])
        .output()
        .unwrap();
    let text = support::text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("running on this database") && text.contains(&svc.child.id().to_string()),
        "{text}"
    );
    drop(svc);
}
