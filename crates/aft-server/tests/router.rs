//! The REST API in-process: the real router over a fresh store, called with tower's
//! `oneshot`. Every route of the OpenAPI document goes through the authentication matrix,
//! so a new route cannot be left out; refusals are JSON `{"error"}` with their status; the
//! document describes what the routes answer; a job queued with an API key runs to the end.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::json;
use utoipa::openapi::path::{Operation, ParameterIn};

use support::{Service, Who};

/// Routes anyone may call (docs/api.md, "Authentication"); `GET /v1/openapi.json` is
/// served outside the document and checked on its own.
const PUBLIC: &[(&str, &str)] = &[
    ("GET", "/v1/health"),
    ("GET", "/v1/ready"),
    ("GET", "/v1/setup"),
    ("POST", "/v1/setup"),
    ("POST", "/v1/session"),
    ("GET", "/metrics"),
];

/// Routes an API key may call (docs/api.md, the automation row); every other
/// authenticated route is an admin's.
const API_KEY_ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/jobs"),
    ("GET", "/v1/jobs"),
    ("GET", "/v1/jobs/{id}"),
    ("DELETE", "/v1/jobs/{id}"),
    ("GET", "/v1/jobs/{id}/log"),
    ("GET", "/v1/jobs/{id}/transfers"),
];

/// Routes only the local CLI token may call.
const LOCAL_ONLY: &[(&str, &str)] = &[("POST", "/v1/jobs/run")];

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Public,
    ApiKey,
    Admin,
    LocalOnly,
}

/// One operation of the OpenAPI document.
struct Route {
    method: Method,
    /// The path as documented, `{param}` and all.
    template: String,
    operation: Operation,
}

impl Route {
    fn key(&self) -> (&str, &str) {
        (self.method.as_str(), self.template.as_str())
    }

    fn access(&self) -> Access {
        let key = self.key();
        if PUBLIC.contains(&key) {
            Access::Public
        } else if API_KEY_ROUTES.contains(&key) {
            Access::ApiKey
        } else if LOCAL_ONLY.contains(&key) {
            Access::LocalOnly
        } else {
            Access::Admin
        }
    }

    /// A concrete path: every parameter names something that does not exist.
    fn path(&self) -> String {
        let mut path = String::new();
        let mut rest = self.template.as_str();
        while let Some(open) = rest.find('{') {
            let close = rest[open..].find('}').expect("closed parameter") + open;
            path.push_str(&rest[..open]);
            path.push_str("no-such-thing");
            rest = &rest[close + 1..];
        }
        path.push_str(rest);
        path
    }

    /// A body for methods that take one: an empty object, which no route accepts as a
    /// complete request, so nothing is created.
    fn body(&self) -> Option<serde_json::Value> {
        matches!(self.method, Method::POST | Method::PUT | Method::PATCH).then(|| json!({}))
    }

    fn documented_statuses(&self) -> BTreeSet<u16> {
        self.operation
            .responses
            .responses
            .keys()
            .filter_map(|code| code.parse().ok())
            .collect()
    }
}

/// Every operation of `api::openapi()`, with `DELETE /v1/session` (sign out) last so a
/// session used for the whole matrix stays signed in until then.
fn routes() -> Vec<Route> {
    let api = aft_server::api::openapi();
    let mut routes = Vec::new();
    for (template, item) in &api.paths.paths {
        let operations = [
            (Method::GET, &item.get),
            (Method::PUT, &item.put),
            (Method::POST, &item.post),
            (Method::DELETE, &item.delete),
            (Method::PATCH, &item.patch),
            (Method::HEAD, &item.head),
            (Method::OPTIONS, &item.options),
            (Method::TRACE, &item.trace),
        ];
        for (method, operation) in operations {
            if let Some(operation) = operation {
                routes.push(Route {
                    method,
                    template: template.clone(),
                    operation: operation.clone(),
                });
            }
        }
    }
    routes.sort_by_key(|r| r.key() == ("DELETE", "/v1/session"));
    assert!(
        routes.len() > 30,
        "only {} operations documented",
        routes.len()
    );
    routes
}

/// `(method, template) -> statuses` seen answering the matrix.
type Seen = BTreeMap<(String, String), BTreeSet<u16>>;

/// Answers that break a rule, by a stable key (`"caller: METHOD template -> status"`),
/// with the whole answer for the message.
type Misanswers = BTreeMap<String, String>;

/// Misanswers the matrix finds, pinned so that fixing one fails the test until it is taken
/// off this list (and a new one fails it at once); none are left.
const KNOWN_MISANSWERS: &[&str] = &[];

/// Statuses routes answer that their OpenAPI responses do not describe, pinned like
/// [`KNOWN_MISANSWERS`]; none are left (`describe_auth` in `api/mod.rs` documents the
/// refusals every authenticated route shares).
const KNOWN_UNDOCUMENTED: &[(&str, &[u16])] = &[];

/// Panics unless `found` holds exactly the keys of `known`: listing what is new, and what
/// is known but no longer happens (to take off the list).
fn assert_only_known(what: &str, found: &Misanswers, known: &[String]) {
    let new: Vec<&String> = found
        .iter()
        .filter(|(key, _)| !known.contains(key))
        .map(|(_, detail)| detail)
        .collect();
    let gone: Vec<&String> = known.iter().filter(|k| !found.contains_key(*k)).collect();
    assert!(
        new.is_empty() && gone.is_empty(),
        "{what}\n{} new:\n{}\n{} fixed (take them off the known list):\n{}",
        new.len(),
        new.iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        gone.len(),
        gone.iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
    );
}

/// Call every route as `who` (`label` in messages), check each answer with `expect` and
/// that every refusal is a JSON `{"error"}`; note the statuses in `seen`.
async fn sweep(
    service: &Service,
    label: &str,
    who: &Who,
    seen: &mut Seen,
    wrong: &mut Misanswers,
    expect: impl Fn(&Route, StatusCode) -> Result<(), String>,
) {
    for route in routes() {
        let answer = service
            .call(who, route.method.clone(), &route.path(), route.body())
            .await;
        let key = format!(
            "{label}: {} {} -> {}",
            route.method,
            route.template,
            answer.status.as_u16()
        );
        if let Err(why) = expect(&route, answer.status) {
            wrong.insert(key.clone(), format!("{label}: {answer}: {why}"));
        }
        if (answer.status.is_client_error() || answer.status.is_server_error())
            && let Err(why) = answer.error_shape()
        {
            wrong.insert(format!("{key} (shape)"), format!("{label}: {why}"));
        }
        seen.entry((route.method.to_string(), route.template.clone()))
            .or_default()
            .insert(answer.status.as_u16());
    }
}

fn is_auth_refusal(status: StatusCode) -> bool {
    status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN
}

/// Each caller against every documented route; see [`auth_matrix`] for the rules.
async fn observe(service: &Service) -> (Seen, Misanswers) {
    let key = service.api_key("matrix").await;
    let local = service.local();
    let session = service.admin_session("matrix-admin").await;
    let mut seen = Seen::new();
    let mut wrong = Misanswers::new();

    sweep(
        service,
        "nobody",
        &Who::Nobody,
        &mut seen,
        &mut wrong,
        |route, status| match (route.access(), status) {
            (Access::Public, s) if is_auth_refusal(s) => Err("public route refused".into()),
            (Access::Public, _) | (_, StatusCode::UNAUTHORIZED) => Ok(()),
            (_, s) => Err(format!("expected 401 without credentials, got {s}")),
        },
    )
    .await;
    sweep(
        service,
        "API key",
        &key,
        &mut seen,
        &mut wrong,
        |route, status| match (route.access(), status) {
            (Access::Public, _) => Ok(()),
            (Access::ApiKey, s) if is_auth_refusal(s) => Err("a job route refused it".into()),
            (Access::ApiKey, _) => Ok(()),
            (Access::Admin | Access::LocalOnly, StatusCode::FORBIDDEN) => Ok(()),
            (_, s) => Err(format!("expected 403, got {s}")),
        },
    )
    .await;
    sweep(
        service,
        "local token",
        &local,
        &mut seen,
        &mut wrong,
        |_, status| {
            if is_auth_refusal(status) {
                Err("refused".into())
            } else {
                Ok(())
            }
        },
    )
    .await;
    let no_csrf = session.without_csrf();
    sweep(
        service,
        "session without CSRF",
        &no_csrf,
        &mut seen,
        &mut wrong,
        |route, status| {
            let safe = route.method == Method::GET;
            match (route.access(), status) {
                (Access::Public, _) => Ok(()),
                (_, StatusCode::FORBIDDEN) if !safe => Ok(()),
                (_, s) if !safe => Err(format!("expected 403 without X-CSRF-Token, got {s}")),
                (_, s) if is_auth_refusal(s) => Err("a GET refused".into()),
                _ => Ok(()),
            }
        },
    )
    .await;
    sweep(
        service,
        "admin session",
        &session,
        &mut seen,
        &mut wrong,
        |route, status| match (route.access(), status) {
            (Access::Public, _) | (Access::LocalOnly, StatusCode::FORBIDDEN) => Ok(()),
            (Access::LocalOnly, s) => Err(format!("expected 403, got {s}")),
            (_, s) if is_auth_refusal(s) => Err("refused".into()),
            _ => Ok(()),
        },
    )
    .await;
    (seen, wrong)
}

/// Each caller against every route of the OpenAPI document: without credentials 401
/// except on the public routes; an API key 403 on every admin route and let in on the job
/// routes; the local token let in everywhere; an admin session let in everywhere but
/// `/v1/jobs/run` (the local token's alone), and refused with 403 on every state-changing
/// request without its `X-CSRF-Token`. Every refusal is a JSON `{"error"}`.
async fn auth_matrix(service: Service) {
    let (_, wrong) = observe(&service).await;
    let known: Vec<String> = KNOWN_MISANSWERS.iter().map(|s| s.to_string()).collect();
    assert_only_known("callers answered against the access rules", &wrong, &known);
}

/// Every status a route answered in the matrix is among its OpenAPI responses.
async fn statuses_documented(service: Service) {
    let (seen, _) = observe(&service).await;
    let mut undocumented = Misanswers::new();
    for route in routes() {
        let documented = route.documented_statuses();
        let key = (route.method.to_string(), route.template.clone());
        for status in &seen[&key] {
            if !documented.contains(status) {
                undocumented.insert(
                    format!("{} {} {status}", route.method, route.template),
                    format!(
                        "{} {} answered {status}; its OpenAPI responses are {documented:?}",
                        route.method, route.template
                    ),
                );
            }
        }
    }
    let known: Vec<String> = KNOWN_UNDOCUMENTED
        .iter()
        .flat_map(|(route, statuses)| statuses.iter().map(move |s| format!("{route} {s}")))
        .collect();
    assert_only_known(
        "statuses missing from the OpenAPI document",
        &undocumented,
        &known,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_status_a_route_answers_is_in_the_openapi_document() {
    support::run(support::Dialect::Sqlite, statuses_documented).await;
}

both_dialects!(
    every_route_answers_each_caller_as_documented,
    super::auth_matrix
);

/// The public routes answer without credentials and do their work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_routes_work_without_credentials() {
    support::run(support::Dialect::Sqlite, |service| async move {
        let nobody = Who::Nobody;
        let health = service.call(&nobody, Method::GET, "/v1/health", None).await;
        assert_eq!(health.status, StatusCode::OK, "{health}");
        assert_eq!(health.json()["status"], "ok", "{health}");

        let setup = service.call(&nobody, Method::GET, "/v1/setup", None).await;
        assert_eq!(setup.json()["adminExists"], false, "{setup}");
        let credentials = json!({"username": "first", "password": "correct horse battery staple"});
        let created = service
            .call(
                &nobody,
                Method::POST,
                "/v1/setup",
                Some(credentials.clone()),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{created}");
        service
            .call(
                &nobody,
                Method::POST,
                "/v1/setup",
                Some(credentials.clone()),
            )
            .await
            .assert_json_error(StatusCode::CONFLICT);

        let wrong = json!({"username": "first", "password": "wrong password, clearly"});
        service
            .call(&nobody, Method::POST, "/v1/session", Some(wrong))
            .await
            .assert_json_error(StatusCode::UNAUTHORIZED);
        let signed_in = service
            .call(&nobody, Method::POST, "/v1/session", Some(credentials))
            .await;
        assert_eq!(signed_in.status, StatusCode::OK, "{signed_in}");
        assert!(signed_in.json()["csrfToken"].is_string(), "{signed_in}");

        let metrics = service.call(&nobody, Method::GET, "/metrics", None).await;
        assert_eq!(metrics.status, StatusCode::OK, "{metrics}");
        assert!(
            metrics.headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/plain"),
            "{metrics}"
        );

        let served = service
            .call(&nobody, Method::GET, "/v1/openapi.json", None)
            .await;
        assert_eq!(served.status, StatusCode::OK, "{served}");
        assert_eq!(
            served.json(),
            serde_json::to_value(aft_server::api::openapi()).unwrap(),
            "GET /v1/openapi.json is not api::openapi()"
        );
    })
    .await;
}

/// The access tables above name only documented routes (so they cannot rot silently when a
/// route is renamed).
#[test]
fn access_tables_name_documented_routes() {
    let documented: BTreeSet<(String, String)> = routes()
        .iter()
        .map(|r| (r.method.to_string(), r.template.clone()))
        .collect();
    for (method, path) in PUBLIC.iter().chain(API_KEY_ROUTES).chain(LOCAL_ONLY) {
        assert!(
            documented.contains(&(method.to_string(), path.to_string())),
            "{method} {path} is not in api::openapi()"
        );
    }
}

/// One bad request and the status it must get.
struct BadRequest {
    what: &'static str,
    who: Who,
    method: Method,
    path: &'static str,
    /// `Content-Type` and body, if any.
    body: Option<(&'static str, String)>,
    status: StatusCode,
}

impl BadRequest {
    fn new(what: &'static str, who: &Who, method: Method, path: &'static str) -> BadRequest {
        BadRequest {
            what,
            who: who.clone(),
            method,
            path,
            body: None,
            status: StatusCode::BAD_REQUEST,
        }
    }

    fn body(self, content_type: &'static str, body: impl Into<String>) -> BadRequest {
        BadRequest {
            body: Some((content_type, body.into())),
            ..self
        }
    }

    fn json(self, body: impl Into<String>) -> BadRequest {
        self.body("application/json", body)
    }

    fn gets(self, status: StatusCode) -> BadRequest {
        BadRequest { status, ..self }
    }
}

/// Representative bad requests: each is refused with its status and a JSON `{"error"}`,
/// with the API's no-sniff and no-store headers, and stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_json_errors_with_their_status() {
    support::run(support::Dialect::Sqlite, |service| async move {
        use BadRequest as R;
        let local = service.local();
        let key = service.api_key("bad-requests").await;
        let nobody = Who::Nobody;
        let big = format!(r#"{{"name": "big", "body": "{}"}}"#, "x".repeat(3 << 20));
        let script = r#"{"name": "a", "body": "Log(1)"}"#;
        let cases = [
            R::new("body not JSON", &local, Method::POST, "/v1/scripts").json("{not json"),
            R::new(
                "JSON of the wrong shape",
                &local,
                Method::POST,
                "/v1/scripts",
            )
            .json(r#"{"name": 5}"#),
            R::new("no JSON content type", &local, Method::POST, "/v1/scripts")
                .body("text/plain", script)
                .gets(StatusCode::UNSUPPORTED_MEDIA_TYPE),
            R::new(
                "no content type",
                &local,
                Method::PUT,
                "/v1/settings/max-concurrent-jobs",
            )
            .body("", r#"{"value": "2"}"#)
            .gets(StatusCode::UNSUPPORTED_MEDIA_TYPE),
            R::new("body above the limit", &local, Method::POST, "/v1/scripts")
                .json(big)
                .gets(StatusCode::PAYLOAD_TOO_LARGE),
            R::new("unknown route", &local, Method::GET, "/v1/no-such-route")
                .gets(StatusCode::NOT_FOUND),
            R::new(
                "unknown route, no credentials",
                &nobody,
                Method::GET,
                "/v1/nope",
            )
            .gets(StatusCode::NOT_FOUND),
            R::new("method not allowed", &local, Method::PATCH, "/v1/jobs")
                .gets(StatusCode::METHOD_NOT_ALLOWED),
            R::new(
                "path segment not UTF-8",
                &local,
                Method::GET,
                "/v1/jobs/%FF",
            ),
            R::new("unknown job", &local, Method::GET, "/v1/jobs/no-such-job")
                .gets(StatusCode::NOT_FOUND),
            R::new(
                "query value not a number",
                &local,
                Method::GET,
                "/v1/jobs?limit=many",
            ),
            R::new(
                "unknown status in query",
                &local,
                Method::GET,
                "/v1/jobs?status=asleep",
            ),
            R::new(
                "log query not a number",
                &local,
                Method::GET,
                "/v1/jobs/x/log?after=x",
            ),
            R::new(
                "schedule query not a number",
                &local,
                Method::GET,
                "/v1/schedules/x/next?n=x",
            ),
            R::new(
                "unknown setting",
                &local,
                Method::PUT,
                "/v1/settings/no-such-setting",
            )
            .json(r#"{"value": "1"}"#),
            R::new("job body not JSON", &key, Method::POST, "/v1/jobs").json("nope"),
            R::new("job body not an object", &key, Method::POST, "/v1/jobs").json("[1, 2]"),
            R::new("job names two scripts", &key, Method::POST, "/v1/jobs")
                .json(r#"{"scriptName": "a", "scriptId": "b"}"#),
            R::new("job params not flat", &key, Method::POST, "/v1/jobs")
                .json(r#"{"scriptName": "a", "params": {"x": {"y": 1}}}"#),
            R::new("job of an unknown script", &key, Method::POST, "/v1/jobs")
                .json(r#"{"scriptName": "no-such-script"}"#)
                .gets(StatusCode::NOT_FOUND),
            R::new(
                "unknown API key",
                &Who::ApiKey("aft_nope".into()),
                Method::GET,
                "/v1/jobs",
            )
            .gets(StatusCode::UNAUTHORIZED),
            R::new(
                "wrong local token",
                &Who::Local("nope".into()),
                Method::GET,
                "/v1/scripts",
            )
            .gets(StatusCode::UNAUTHORIZED),
            R::new(
                "unknown session",
                &Who::Session {
                    cookie: "nope".into(),
                    csrf: None,
                },
                Method::GET,
                "/v1/scripts",
            )
            .gets(StatusCode::UNAUTHORIZED),
        ];
        for case in cases {
            let what = case.what;
            let mut builder = case
                .who
                .apply(Request::builder().method(case.method).uri(case.path));
            let body = match case.body {
                Some((content_type, body)) => {
                    if !content_type.is_empty() {
                        builder = builder.header(header::CONTENT_TYPE, content_type);
                    }
                    Body::from(body)
                }
                None => Body::empty(),
            };
            let answer = service.send(builder.body(body).unwrap()).await;
            assert_eq!(answer.status, case.status, "{what}: {answer}");
            answer.assert_json_error(case.status);
            for (name, value) in [
                ("x-content-type-options", "nosniff"),
                ("cache-control", "no-store"),
            ] {
                assert_eq!(
                    answer.headers.get(name).and_then(|v| v.to_str().ok()),
                    Some(value),
                    "{what}: {name} of {answer}"
                );
            }
        }
        assert!(
            service.store().list_scripts().await.unwrap().is_empty(),
            "a refused request stored a script"
        );
    })
    .await;
}

/// A cookie session must send its CSRF token on state-changing requests: without it, or
/// with a wrong one, nothing happens and the answer is 403; reads need none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_without_its_csrf_token_changes_nothing() {
    support::run(support::Dialect::Sqlite, |service| async move {
        let session = service.admin_session("csrf-admin").await;
        let Who::Session { cookie, .. } = &session else {
            unreachable!()
        };
        let script = json!({"name": "csrf", "body": "Log(1)"});
        let wrong = Who::Session {
            cookie: cookie.clone(),
            csrf: Some("0".repeat(64)),
        };
        for who in [session.without_csrf(), wrong] {
            service
                .call(&who, Method::POST, "/v1/scripts", Some(script.clone()))
                .await
                .assert_json_error(StatusCode::FORBIDDEN);
            service
                .call(&who, Method::DELETE, "/v1/session", None)
                .await
                .assert_json_error(StatusCode::FORBIDDEN);
        }
        assert!(service.store().list_scripts().await.unwrap().is_empty());

        let read = service
            .call(&session.without_csrf(), Method::GET, "/v1/scripts", None)
            .await;
        assert_eq!(read.status, StatusCode::OK, "{read}");
        let created = service
            .call(&session, Method::POST, "/v1/scripts", Some(script))
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{created}");
        assert_eq!(service.store().list_scripts().await.unwrap().len(), 1);
    })
    .await;
}

/// The OpenAPI document: each operation documents a success, describes at least one
/// answer's body with a schema, and declares every `{param}` of its path.
#[test]
fn every_operation_documents_a_success_a_schema_and_its_path_parameters() {
    let mut wrong = Misanswers::new();
    for route in routes() {
        let name = format!("{} {}", route.method, route.template);
        let responses = &route.operation.responses.responses;
        if !route
            .documented_statuses()
            .iter()
            .any(|s| (200..300).contains(s))
        {
            wrong.insert(
                format!("{name}: no 2xx"),
                format!("{name}: no 2xx response"),
            );
        }
        let has_schema = responses.values().any(|response| match response {
            utoipa::openapi::RefOr::T(response) => {
                response.content.values().any(|c| c.schema.is_some())
            }
            utoipa::openapi::RefOr::Ref(_) => true,
        });
        if !has_schema {
            wrong.insert(
                format!("{name}: no schema"),
                format!("{name}: no response describes its body with a schema"),
            );
        }
        let declared: BTreeSet<String> = route
            .operation
            .parameters
            .iter()
            .flatten()
            .filter(|p| matches!(p.parameter_in, ParameterIn::Path))
            .map(|p| p.name.clone())
            .collect();
        let in_path: BTreeSet<String> = route
            .template
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(str::to_string)
            .collect();
        if declared != in_path {
            wrong.insert(
                format!("{name}: path parameters"),
                format!("{name}: path parameters {in_path:?}, declared {declared:?}"),
            );
        }
    }
    let known: Vec<String> = KNOWN_DOCUMENT_GAPS.iter().map(|s| s.to_string()).collect();
    assert_only_known("operations described incompletely", &wrong, &known);
}

/// Gaps of the document itself, pinned like [`KNOWN_MISANSWERS`]; none are left.
const KNOWN_DOCUMENT_GAPS: &[&str] = &[];

/// The job `id` as `who` sees it once it is no longer queued or running (at most 8 s).
async fn job_when_ended(service: &Service, who: &Who, id: &str) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let answer = service
            .call(who, Method::GET, &format!("/v1/jobs/{id}"), None)
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{answer}");
        let job = answer.json();
        let status = job["status"].as_str().unwrap_or("").to_string();
        if !matches!(status.as_str(), "queued" | "running") {
            return job;
        }
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "job still {status} after 8 s: {job}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A job queued with an API key for a stored script runs to `succeeded` on the runner, its
/// log holds what the script wrote, and only that key (or an admin) sees it.
async fn job_round_trip(service: Service) {
    service
        .script("round-trip", r#"Log("hello from " + Param("who"));"#)
        .await;
    let key = service.api_key("round-trip").await;
    let other = service.api_key("other").await;
    let queued = service
        .call(
            &key,
            Method::POST,
            "/v1/jobs",
            Some(json!({"scriptName": "ROUND-TRIP", "params": {"who": "the router test"}})),
        )
        .await;
    assert_eq!(queued.status, StatusCode::ACCEPTED, "{queued}");
    let queued = queued.json();
    assert_eq!(queued["status"], "queued");
    let id = queued["jobId"].as_str().expect("jobId").to_string();

    let job = job_when_ended(&service, &key, &id).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["scriptName"], "round-trip", "{job}");
    assert_eq!(job["origin"], "api", "{job}");
    assert_eq!(job["params"], json!({"who": "the router test"}), "{job}");

    let log = service
        .call(&key, Method::GET, &format!("/v1/jobs/{id}/log"), None)
        .await;
    assert_eq!(log.status, StatusCode::OK, "{log}");
    let lines = log.json()["lines"].clone();
    assert!(
        lines
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["message"] == "hello from the router test"),
        "{log}"
    );

    let listed = service
        .call(&key, Method::GET, "/v1/jobs", None)
        .await
        .json();
    assert_eq!(listed["jobs"][0]["id"], id.as_str(), "{listed}");
    service
        .call(&other, Method::GET, &format!("/v1/jobs/{id}"), None)
        .await
        .assert_json_error(StatusCode::NOT_FOUND);
    let theirs = service
        .call(&other, Method::GET, "/v1/jobs", None)
        .await
        .json();
    assert_eq!(theirs["jobs"], json!([]), "{theirs}");
    let admin = service
        .call(
            &service.local(),
            Method::GET,
            &format!("/v1/jobs/{id}"),
            None,
        )
        .await;
    assert_eq!(admin.status, StatusCode::OK, "{admin}");
}

both_dialects!(
    a_job_queued_with_an_api_key_runs_to_success,
    super::job_round_trip
);

/// `POST /v1/jobs/run` with a well-formed body: 403 for an API key and for an admin
/// session, 403 for the local token while `allow-cli-run` is off, and once it is on the
/// handed-over script runs on this node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_local_token_may_hand_over_scripts() {
    support::run(support::Dialect::Sqlite, |service| async move {
        let body = json!({"name": "handed.syncjs", "source": "Log(\"handed over\");"});
        let key = service.api_key("run").await;
        let session = service.admin_session("run-admin").await;
        let local = service.local();
        for who in [&key, &session, &local] {
            service
                .call(who, Method::POST, "/v1/jobs/run", Some(body.clone()))
                .await
                .assert_json_error(StatusCode::FORBIDDEN);
        }
        assert!(
            service
                .store()
                .list_jobs(&Default::default())
                .await
                .unwrap()
                .is_empty(),
            "a refused hand-over queued a job"
        );

        service
            .store()
            .set_setting("allow-cli-run", "true")
            .await
            .unwrap();
        for who in [&key, &session] {
            service
                .call(who, Method::POST, "/v1/jobs/run", Some(body.clone()))
                .await
                .assert_json_error(StatusCode::FORBIDDEN);
        }
        let queued = service
            .call(&local, Method::POST, "/v1/jobs/run", Some(body))
            .await;
        assert_eq!(queued.status, StatusCode::ACCEPTED, "{queued}");
        let id = queued.json()["jobId"].as_str().unwrap().to_string();
        let job = job_when_ended(&service, &local, &id).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(job["origin"], "delegate", "{job}");
        assert_eq!(job["nodeId"], service.state.runner.node_id(), "{job}");
    })
    .await;
}
