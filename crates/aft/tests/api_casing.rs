//! Field names of the REST API are camelCase, as docs/api.md says (`createdAt`, never
//! `created_at`): checked on every response schema of the OpenAPI document the real binary
//! serves, and on the real answers of its GET routes on a service holding one of
//! everything (a job, a failed job, a script, a schedule with a decided slot, a watcher, a
//! VFS entry, a secret, an API key, an admin, audit records).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use support::{Aft, call, wait_job};

/// A key that is not camelCase: one with `_` or `-` in it, or starting upper-case.
fn not_camel(key: &str) -> bool {
    key.contains('_') || key.contains('-') || key.starts_with(|c: char| c.is_ascii_uppercase())
}

/// Keys of objects whose keys are data, not field names: a job's `params` (the caller's
/// names) and a VFS entry's `settings` (the backend's documented `Host`,
/// `PassFromSecret`, ...), wherever they appear (audit records' `before`/`after` too).
const DATA_MAPS: &[&str] = &["params", "settings"];

/// Every not-camelCase property of the schema, following `$ref`s once each.
fn schema_keys(
    schema: &Value,
    components: &Value,
    seen: &mut BTreeSet<String>,
    at: &str,
    out: &mut BTreeSet<String>,
) {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.trim_start_matches("#/components/schemas/");
        if seen.insert(name.to_string())
            && let Some(target) = components.get(name)
        {
            schema_keys(target, components, seen, name, out);
        }
        return;
    }
    for nested in ["allOf", "oneOf", "anyOf"] {
        for member in schema
            .get(nested)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            schema_keys(member, components, seen, at, out);
        }
    }
    for nested in ["items", "additionalProperties"] {
        if let Some(inner) = schema.get(nested).filter(|v| v.is_object()) {
            schema_keys(inner, components, seen, at, out);
        }
    }
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (key, inner) in properties {
            if not_camel(key) {
                out.insert(format!("{at}.{key}"));
            }
            if !DATA_MAPS.contains(&key.as_str()) {
                schema_keys(inner, components, seen, &format!("{at}.{key}"), out);
            }
        }
    }
}

/// Every not-camelCase key of a JSON answer, as `path.key`.
fn answer_keys(value: &Value, at: &str, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                if not_camel(key) {
                    out.insert(format!("{at}.{key}"));
                }
                if !DATA_MAPS.contains(&key.as_str()) {
                    answer_keys(inner, &format!("{at}.{key}"), out);
                }
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|i| answer_keys(i, &format!("{at}[]"), out)),
        _ => {}
    }
}

/// A job with a transfer record: it uploads `src` through the VFS entry `local`.
const UPLOAD: &str = "var v = GetVFS(\"local\");\nif (!v.Connect()) throw new Error(\"connect\");\n\
if (!v.Upload(Param(\"src\"), \"/\")) throw new Error(\"upload\");\nv.Close();\nSetResult(\"done\");\n";

#[test]
fn the_key_check_tells_snake_case_from_camel_case() {
    let mut found = BTreeSet::new();
    answer_keys(
        &json!([{"createdAt": 1, "created_at": 2, "params": {"my_param": 1},
                  "inner": {"job-id": 3, "jobId": 4}}]),
        "GET /x",
        &mut found,
    );
    assert_eq!(
        found,
        BTreeSet::from([
            "GET /x[].created_at".to_string(),
            "GET /x[].inner.job-id".to_string()
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_field_is_camel_case() {
    let aft = Aft::new();
    let scratch = tempfile::tempdir().unwrap();
    aft.push_script("hello", UPLOAD);
    aft.push_script("broken", "throw new Error(\"on purpose\");\n");
    aft.push_script("waiter", "WaitForHaltSignal();\n");
    aft.secret("partner-pass", "s3cret");
    aft.ok(&[
        "vfs",
        "add",
        "local",
        "--type",
        "disk",
        "--set",
        &format!("Root={}", scratch.path().display()),
    ]);
    // A failed job's notification waits in the outbox (nothing listens on port 9).
    aft.ok(&[
        "settings",
        "set",
        "notify-webhook",
        "http://127.0.0.1:9/hook",
    ]);
    let source = aft.write("report.csv", "id\n1\n");
    let svc = aft.serve();
    let http = svc.client();
    let base = svc.base();
    let token = svc.local_token();
    let auth = ("X-Aft-Local-Token", token.as_str());
    let post = |path: &str, body: Value| {
        let (http, url) = (http.clone(), format!("{base}{path}"));
        async move {
            let (status, answer) = call(&http, Method::POST, &url, Some(auth), Some(&body)).await;
            assert!(
                (200..300).contains(&status),
                "POST {url}: {status} {answer}"
            );
            answer
        }
    };

    // One of everything, so every list answers with items and every field shows.
    let ok = post(
        "/v1/jobs",
        json!({"scriptName": "hello", "params": {"src": source}}),
    )
    .await;
    let ok = ok["jobId"].as_str().unwrap().to_string();
    let bad = post("/v1/jobs", json!({"scriptName": "broken"})).await;
    wait_job(&http, &base, auth, &ok).await;
    wait_job(&http, &base, auth, bad["jobId"].as_str().unwrap()).await;
    let dry = post(
        "/v1/jobs",
        json!({"scriptName": "hello", "params": {"src": source}, "dryRun": true}),
    )
    .await;
    let dry = dry["jobId"].as_str().unwrap().to_string();
    wait_job(&http, &base, auth, &dry).await;
    // A schedule firing every second, to have decided slots with jobs.
    post(
        "/v1/schedules",
        json!({"name": "often", "script": "hello", "cron": "* * * * * *", "timeZone": "UTC"}),
    )
    .await;
    post("/v1/watchers", json!({"name": "inbox", "script": "waiter"})).await;
    let key = post("/v1/apikeys", json!({"name": "ci", "allow": ["127.0.0.1"]})).await;
    post(
        "/v1/admins",
        json!({"username": "root", "password": "admin password"}),
    )
    .await;
    post(
        "/v1/admins",
        json!({"username": "ops", "password": "operator pass", "role": "operator"}),
    )
    .await;
    let slots_url = format!("{base}/v1/schedules/often/slots");
    let mut fired = false;
    for _ in 0..200 {
        let (_, slots) = call(&http, Method::GET, &slots_url, Some(auth), None).await;
        if slots
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["jobId"].is_string()))
        {
            fired = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(fired, "the every-second schedule fired no slot in 20 s");
    let (_, off) = call(
        &http,
        Method::PUT,
        &format!("{base}/v1/schedules/often/enabled"),
        Some(auth),
        Some(&json!({"enabled": false})),
    )
    .await;
    assert_eq!(off["enabled"], false, "{off}");

    let (status, api) = call(
        &http,
        Method::GET,
        &format!("{base}/v1/openapi.json"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200, "{api}");
    let components = &api["components"]["schemas"];

    // 1. The document: every response schema of every route.
    let mut in_schemas = BTreeSet::new();
    let mut responses = 0;
    for (path, item) in api["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().into_iter().flatten() {
                for media in response
                    .get("content")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flat_map(|c| c.values())
                {
                    if let Some(schema) = media.get("schema") {
                        responses += 1;
                        let at = format!("{} {path} {status}", method.to_uppercase());
                        schema_keys(
                            schema,
                            components,
                            &mut BTreeSet::new(),
                            &at,
                            &mut in_schemas,
                        );
                    }
                }
            }
        }
    }
    assert!(responses > 60, "only {responses} response schemas walked");

    // 2. The real answers of every GET route, path parameters filled from the data above.
    let ids: BTreeMap<&str, String> = BTreeMap::from([
        ("jobs", ok.clone()),
        ("scripts", "hello".to_string()),
        ("schedules", "often".to_string()),
        ("watchers", "inbox".to_string()),
        ("vfs", "local".to_string()),
        ("secrets", "partner-pass".to_string()),
        ("apikeys", key["id"].as_str().unwrap().to_string()),
        ("admins", "ops".to_string()),
    ]);
    let mut in_answers = BTreeSet::new();
    let mut walked = Vec::new();
    let mut unfilled = Vec::new();
    for (path, item) in api["paths"].as_object().unwrap() {
        if item.get("get").is_none() || path.ends_with("/openapi.json") {
            continue;
        }
        let mut url = String::new();
        let mut filled = true;
        let mut resource = "";
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            if segment.starts_with('{') {
                match ids.get(resource) {
                    Some(id) => url.push_str(&format!("/{id}")),
                    None => filled = false,
                }
            } else {
                resource = if resource.is_empty() || resource == "v1" {
                    segment
                } else {
                    resource
                };
                url.push_str(&format!("/{segment}"));
            }
        }
        if !filled {
            unfilled.push(path.clone());
            continue;
        }
        let (status, answer) = call(
            &http,
            Method::GET,
            &format!("{base}{url}"),
            Some(auth),
            None,
        )
        .await;
        if status == 200 && (answer.is_object() || answer.is_array()) {
            answer_keys(&answer, &format!("GET {url}"), &mut in_answers);
            walked.push(url);
        }
    }
    // The answers only one kind of job gives: a dry run's plan.
    let (_, dry_job) = call(
        &http,
        Method::GET,
        &format!("{base}/v1/jobs/{dry}"),
        Some(auth),
        None,
    )
    .await;
    assert!(dry_job["plan"].is_object(), "{dry_job}");
    answer_keys(&dry_job, "GET /v1/jobs/{dry run}", &mut in_answers);
    // The lists had something in them, so their items' fields were seen.
    for (list, items) in [
        ("transfers", format!("/v1/jobs/{ok}/transfers")),
        ("notifications", "/v1/notifications".to_string()),
    ] {
        let mut found = Value::Null;
        for _ in 0..100 {
            found = call(
                &http,
                Method::GET,
                &format!("{base}{items}"),
                Some(auth),
                None,
            )
            .await
            .1;
            let entries = found.as_array().or_else(|| {
                found
                    .as_object()
                    .and_then(|o| o.values().find_map(Value::as_array))
            });
            if entries.is_some_and(|e| !e.is_empty()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let entries = found.as_array().or_else(|| {
            found
                .as_object()
                .and_then(|o| o.values().find_map(Value::as_array))
        });
        assert!(
            entries.is_some_and(|e| !e.is_empty()),
            "no {list} to check: {found}"
        );
        answer_keys(&found, &format!("GET {items}"), &mut in_answers);
    }
    for must in [
        "/v1/jobs",
        "/v1/scripts",
        "/v1/schedules/often/slots",
        "/v1/watchers",
        "/v1/secrets",
        "/v1/apikeys",
        "/v1/admins",
        "/v1/audit",
        "/v1/settings",
        "/v1/vfs",
    ] {
        assert!(
            walked.iter().any(|w| w == must),
            "GET {must} was not walked; walked: {walked:?}"
        );
    }
    assert!(
        unfilled.is_empty() || unfilled.iter().all(|p| !p.starts_with("/v1/jobs/{")),
        "routes left unfilled: {unfilled:?}"
    );
    assert!(
        in_schemas.is_empty() && in_answers.is_empty(),
        "field names that are not camelCase (docs/api.md promises camelCase):\n\
         in /v1/openapi.json response schemas:\n  {}\nin real answers:\n  {}",
        in_schemas.iter().cloned().collect::<Vec<_>>().join("\n  "),
        in_answers.iter().cloned().collect::<Vec<_>>().join("\n  ")
    );
}
