//! Every refusal of the REST API reaches the client as its HTTP status with a JSON
//! `{"error": "..."}` body, over HTTP/1.1 and HTTP/2 (issue 12, item 4). Driven with the
//! `curl` command users run against the real `aft serve`, because the reported symptom
//! ("Stream error in the HTTP/2 framing layer" on an early 401) is curl's.

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::{Aft, Service};

/// Both protocol versions, as curl's flag and as curl's `%{http_version}`.
const VERSIONS: [(&str, &str); 2] = [("--http1.1", "1.1"), ("--http2", "2")];

/// How many times the unauthenticated POST of the report is repeated per version.
const REPEATS: usize = 40;

/// axum's default request body limit (2 MiB); 413 needs a body above it.
const BODY_LIMIT: usize = 2 * 1024 * 1024;

/// What curl got back.
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: String,
    http_version: String,
    body: String,
}

/// One request: `curl -sS FLAG --cacert CERT -X METHOD [-H ...] [--data-binary @FILE] URL`.
/// A curl failure (the framing-layer error among them) fails the test with curl's message.
fn curl(
    service: &Service,
    flag: &str,
    method: &str,
    path: &str,
    headers: &[String],
    body: Option<&Path>,
) -> Answer {
    const MARK: &str = "\n@@curl@@";
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", flag, "--cacert"])
        .arg(service.cert())
        .args(["-X", method])
        .args(["--max-time", "30"])
        .arg("--write-out")
        .arg(format!(
            "{MARK}%{{http_code}} %{{http_version}} %{{content_type}}"
        ));
    for header in headers {
        cmd.args(["-H", header]);
    }
    if let Some(file) = body {
        cmd.arg("--data-binary").arg(format!("@{}", file.display()));
    }
    cmd.arg(format!("{}{path}", service.base()));
    let out = cmd.output().expect("curl must be installed");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "curl {flag} -X {method} {path} failed ({}): {}\nstdout: {stdout}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let (body, meta) = stdout
        .rsplit_once(MARK)
        .unwrap_or_else(|| panic!("no --write-out in curl's output: {stdout}"));
    let mut meta = meta.splitn(3, ' ');
    Answer {
        status: meta.next().unwrap_or("").parse().unwrap_or(0),
        http_version: meta.next().unwrap_or("").to_string(),
        content_type: meta.next().unwrap_or("").to_string(),
        body: body.to_string(),
    }
}

/// The answer is `status` with a JSON `{"error": "<non-empty>"}` body, over `version`.
fn assert_json_error(answer: &Answer, status: u16, version: &str, what: &str) {
    assert_eq!(answer.status, status, "{what}: {answer:?}");
    assert_eq!(
        answer.http_version, version,
        "{what}: curl did not speak HTTP/{version}: {answer:?}"
    );
    assert!(
        answer.content_type.starts_with("application/json"),
        "{what}: content type {:?}, not JSON: {answer:?}",
        answer.content_type
    );
    let body: Value = serde_json::from_str(&answer.body)
        .unwrap_or_else(|e| panic!("{what}: body is not JSON ({e}): {answer:?}"));
    let message = body["error"].as_str().unwrap_or("");
    assert!(
        !message.trim().is_empty(),
        "{what}: no error message in {body}"
    );
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(1),
        "{what}: {{\"error\"}} only: {body}"
    );
}

/// A job request of about `size` bytes (a padded parameter), written to a file for curl.
fn job_body(aft: &Aft, name: &str, size: usize) -> std::path::PathBuf {
    let pad = "x".repeat(size);
    let body = format!(r#"{{"scriptName": "nightly", "params": {{"pad": "{pad}"}}}}"#);
    std::path::PathBuf::from(aft.write(name, &body))
}

#[test]
fn an_unauthenticated_post_gets_its_json_401_every_time_over_both_versions() {
    let aft = Aft::new();
    let service = aft.serve();
    let body = job_body(&aft, "job.json", 8 * 1024);
    let json = ["Content-Type: application/json".to_string()];
    for (flag, version) in VERSIONS {
        for attempt in 1..=REPEATS {
            let answer = curl(&service, flag, "POST", "/v1/jobs", &json, Some(&body));
            assert_json_error(
                &answer,
                401,
                version,
                &format!("unauthenticated POST {attempt}/{REPEATS} {flag}"),
            );
        }
    }
}

#[test]
fn every_refusal_is_its_status_with_a_json_error_over_both_versions() {
    let aft = Aft::new();
    aft.push_script("nightly", "Log('hi');");
    let key = aft.create_key("ci", "127.0.0.1");
    let elsewhere = aft.create_key("elsewhere", "127.0.0.2");
    let service = aft.serve();
    let token = format!("X-Aft-Local-Token: {}", service.local_token());
    let json = "Content-Type: application/json".to_string();
    let small = job_body(&aft, "job.json", 4 * 1024);
    let huge = job_body(&aft, "huge.json", BODY_LIMIT + BODY_LIMIT / 2);
    let malformed =
        std::path::PathBuf::from(aft.write("malformed.json", r#"{"name": "x", "body": "#));
    let script = std::path::PathBuf::from(
        aft.write("script.json", r#"{"name": "other", "body": "Log('hi');"}"#),
    );

    for (flag, version) in VERSIONS {
        let check = |status: u16,
                     what: &str,
                     method: &str,
                     path: &str,
                     headers: &[String],
                     body: Option<&Path>| {
            let answer = curl(&service, flag, method, path, headers, body);
            assert_json_error(&answer, status, version, &format!("{what} {flag}"));
        };
        check(
            401,
            "no key",
            "POST",
            "/v1/jobs",
            std::slice::from_ref(&json),
            Some(&small),
        );
        check(
            401,
            "unknown key",
            "POST",
            "/v1/jobs",
            &[json.clone(), "X-API-Key: aft_not_a_key".into()],
            Some(&small),
        );
        check(
            403,
            "key not allowed from 127.0.0.1",
            "POST",
            "/v1/jobs",
            &[json.clone(), format!("X-API-Key: {elsewhere}")],
            Some(&small),
        );
        check(
            413,
            "body above the limit",
            "POST",
            "/v1/jobs",
            &[json.clone(), format!("X-API-Key: {key}")],
            Some(&huge),
        );
        check(
            400,
            "undecodable path segment",
            "GET",
            "/v1/scripts/%FF",
            std::slice::from_ref(&token),
            None,
        );
        check(
            400,
            "bad query value",
            "GET",
            "/v1/jobs?limit=abc",
            std::slice::from_ref(&token),
            None,
        );
        check(
            415,
            "JSON body without a JSON content type",
            "POST",
            "/v1/scripts",
            &[token.clone(), "Content-Type: text/plain".into()],
            Some(&script),
        );
        check(
            400,
            "malformed JSON body",
            "POST",
            "/v1/scripts",
            &[token.clone(), json.clone()],
            Some(&malformed),
        );
        check(
            404,
            "unknown route",
            "POST",
            "/v1/nothing-here",
            std::slice::from_ref(&json),
            Some(&small),
        );
        check(
            405,
            "wrong method",
            "PATCH",
            "/v1/jobs",
            &[token.clone(), json.clone()],
            Some(&small),
        );
    }
}
