//! Security headers of the real `aft serve`: every REST answer (success or refusal) is
//! `X-Content-Type-Options: nosniff` and `Cache-Control: no-store` (answers carry job logs
//! and keys that must not sit in caches); every web UI answer carries
//! `Strict-Transport-Security`.

mod support;

use reqwest::Method;
use reqwest::header::{CACHE_CONTROL, STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS};
use support::Aft;

#[tokio::test]
async fn api_answers_are_nosniff_and_no_store_and_the_ui_is_hsts() {
    let aft = Aft::new();
    let service = aft.serve();
    let client = service.client();
    let token = service.local_token();
    let base = service.base();

    let api = [
        (Method::GET, "/v1/health", None, 200),
        (Method::GET, "/v1/openapi.json", None, 200),
        (Method::GET, "/metrics", None, 200),
        (Method::GET, "/v1/apikeys", Some(token.as_str()), 200),
        (Method::GET, "/v1/jobs", Some(token.as_str()), 200),
        (Method::POST, "/v1/jobs", None, 401),
        (Method::GET, "/v1/jobs?limit=abc", Some(token.as_str()), 400),
        (Method::GET, "/v1/nothing-here", None, 404),
        (Method::PATCH, "/v1/health", None, 405),
    ];
    for (method, path, local_token, status) in api {
        let mut req = client.request(method.clone(), format!("{base}{path}"));
        if let Some(token) = local_token {
            req = req.header("X-Aft-Local-Token", token);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        assert_eq!(resp.status().as_u16(), status, "{method} {path}");
        let headers = resp.headers();
        assert_eq!(
            headers
                .get(X_CONTENT_TYPE_OPTIONS)
                .and_then(|v| v.to_str().ok()),
            Some("nosniff"),
            "{method} {path}: {headers:?}"
        );
        assert_eq!(
            headers.get(CACHE_CONTROL).and_then(|v| v.to_str().ok()),
            Some("no-store"),
            "{method} {path}: {headers:?}"
        );
    }

    for (path, status) in [("/", 200), ("/app.js", 200), ("/no-such-page.js", 404)] {
        let resp = client
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert_eq!(resp.status().as_u16(), status, "GET {path}");
        let hsts = resp
            .headers()
            .get(STRICT_TRANSPORT_SECURITY)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let max_age: u64 = hsts
            .split(';')
            .find_map(|part| part.trim().strip_prefix("max-age="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        assert!(
            max_age >= 31_536_000,
            "GET {path}: Strict-Transport-Security {hsts:?} must keep HTTPS for a year at least"
        );
        assert_eq!(
            resp.headers()
                .get(X_CONTENT_TYPE_OPTIONS)
                .and_then(|v| v.to_str().ok()),
            Some("nosniff"),
            "GET {path}"
        );
    }
}
