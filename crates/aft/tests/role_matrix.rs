//! Admin roles through the real binary: every operation of `/v1/openapi.json` (the document
//! the service serves, so a new route cannot be left out) called by an `admin`, an
//! `operator` and a `viewer` session. A role below what the route table
//! (`aft_server::roles::ROUTES`) asks for gets 403 with the role refusal, before the
//! request is looked at; a role that may call it never does. Path values name nothing that
//! exists, so allowed calls change nothing.

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use support::{Aft, sign_in, text};

use aft_store::Role;

struct Session {
    role: Role,
    cookie: String,
    csrf: String,
}

#[tokio::test]
async fn every_route_by_every_role_is_allowed_or_refused_as_the_table_says() {
    let aft = Aft::new();
    for (user, role) in [("root", "admin"), ("op", "operator"), ("view", "viewer")] {
        let out = aft.run_with_input(
            &["admin", "add", user, "--role", role],
            &format!("{user}-password"),
        );
        assert!(out.status.success(), "{}", text(&out));
    }
    let service = aft.serve();
    let http = service.client();
    let base = service.base();
    let mut sessions = Vec::new();
    for (user, role) in [
        ("root", Role::Admin),
        ("op", Role::Operator),
        ("view", Role::Viewer),
    ] {
        let (status, cookie, body) = sign_in(&http, &base, user, &format!("{user}-password")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["role"], role.as_str(), "{body}");
        sessions.push(Session {
            role,
            cookie,
            csrf: body["csrfToken"].as_str().unwrap().to_string(),
        });
    }

    let api: Value = http
        .get(format!("{base}/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut operations = Vec::new();
    for (path, item) in api["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if !["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                continue;
            }
            // Public operations declare no credentials.
            if op["security"].as_array().is_none_or(|s| s.is_empty()) {
                continue;
            }
            operations.push((method.clone(), path.clone(), !op["requestBody"].is_null()));
        }
    }
    // Signing out ends the session the other calls use: last.
    operations.sort_by_key(|(m, p, _)| (m == "delete" && p == "/v1/session", p.clone()));
    assert!(operations.len() > 40, "{operations:?}");

    let mut checked = 0;
    let mut refused = 0;
    for (method, path, has_body) in &operations {
        let needed = aft_server::roles::required_role(method, path);
        assert!(
            aft_server::roles::route_rule(method, path).is_some(),
            "{method} {path} has no entry in aft_server::roles::ROUTES"
        );
        let url = format!(
            "{base}{}",
            path.split('/')
                .map(|seg| if seg.starts_with('{') {
                    "zz-no-such-thing"
                } else {
                    seg
                })
                .collect::<Vec<_>>()
                .join("/")
        );
        for s in &sessions {
            let mut req = http
                .request(
                    Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                    &url,
                )
                .header("Cookie", &s.cookie)
                .header("X-CSRF-Token", &s.csrf);
            if *has_body {
                req = req.json(&json!({}));
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap();
            let role_refusal = status == 403 && body.contains("role may not call");
            assert_ne!(status, 401, "{method} {path} as {}: {body}", s.role);
            if s.role < needed {
                assert!(
                    role_refusal,
                    "{method} {path} needs the {needed} role, but the {} role got {status} {body}",
                    s.role
                );
                refused += 1;
            } else {
                assert!(
                    !role_refusal && status < 500,
                    "{method} {path} is allowed to the {} role, but got {status} {body}",
                    s.role
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, operations.len() * 3);
    assert!(refused > 20, "{refused}");
}

#[tokio::test]
async fn roles_are_set_from_the_cli_and_the_api_and_the_last_admin_keeps_its_role() {
    let aft = Aft::new();
    let out = aft.run_with_input(&["admin", "create", "root"], "root-password");
    assert!(out.status.success(), "{}", text(&out));
    let out = aft.run_with_input(&["admin", "add", "eve", "--role", "viewer"], "eve-password");
    assert!(out.status.success(), "{}", text(&out));
    let list: Value = serde_json::from_str(&aft.ok(&["admin", "list", "--json"])).unwrap();
    assert_eq!(list[0]["role"], "viewer");
    assert_eq!(list[1]["role"], "admin");
    // The only admin cannot give its role away: nobody could manage admins.
    let out = aft.fails(&["admin", "role", "root", "viewer"], 1);
    assert!(out.contains("last admin with the admin role"), "{out}");
    let out = aft.fails(&["admin", "role", "eve", "superuser"], 2);
    assert!(out.contains("admin, operator or viewer"), "{out}");
    aft.ok(&["admin", "role", "eve", "operator"]);

    let service = aft.serve();
    let http = service.client();
    let base = service.base();
    let (_, cookie, body) = sign_in(&http, &base, "eve", "eve-password").await;
    assert_eq!(body["role"], "operator");
    let csrf = body["csrfToken"].as_str().unwrap().to_string();
    // An operator edits scripts but cannot make itself an admin.
    let put_role = |who: &str, role: &str| {
        http.put(format!("{base}/v1/admins/{who}/role"))
            .header("Cookie", &cookie)
            .header("X-CSRF-Token", &csrf)
            .json(&json!({"role": role}))
            .send()
    };
    let resp = put_role("eve", "admin").await.unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    let resp = http
        .post(format!("{base}/v1/scripts"))
        .header("Cookie", &cookie)
        .header("X-CSRF-Token", &csrf)
        .json(&json!({"name": "by-eve", "body": "Log(1);"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);

    // The admin's role change applies to eve's live session at once.
    let (_, root_cookie, root) = sign_in(&http, &base, "root", "root-password").await;
    let resp = http
        .put(format!("{base}/v1/admins/eve/role"))
        .header("Cookie", &root_cookie)
        .header("X-CSRF-Token", root["csrfToken"].as_str().unwrap())
        .json(&json!({"role": "viewer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["role"], "viewer");
    let resp = http
        .delete(format!("{base}/v1/scripts/by-eve"))
        .header("Cookie", &cookie)
        .header("X-CSRF-Token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    let listed = http
        .get(format!("{base}/v1/scripts"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status().as_u16(), 200);
}
