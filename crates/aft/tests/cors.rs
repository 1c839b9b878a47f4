//! CORS through the real service: the setting `cors-origins` lets a browser app from a
//! listed origin call the API with an API key; other origins get no CORS headers, cookies
//! are never allowed cross-origin, and a change of the setting applies at once.

mod support;

use support::Aft;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listed_origins_get_cors_answers_and_others_do_not() {
    let aft = Aft::new();
    let key = aft.create_key("web", "127.0.0.1");
    let svc = aft.serve();
    let http = svc.client();
    let jobs = format!("{}/v1/jobs", svc.base());
    let preflight = |origin: &'static str| {
        http.request(reqwest::Method::OPTIONS, &jobs)
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "content-type, x-api-key")
            .send()
    };

    // Empty by default: no origin is allowed.
    let resp = preflight("https://app.example").await.unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());

    // Set while the service runs: applies at once.
    aft.ok(&["settings", "set", "cors-origins", "https://app.example"]);
    let resp = preflight("https://app.example").await.unwrap();
    assert_eq!(resp.status(), 204);
    let h = resp.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example");
    assert!(
        h["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    assert!(
        h["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_lowercase()
            .contains("x-api-key")
    );
    assert!(
        h.get("access-control-allow-credentials").is_none(),
        "cookies never cross origins"
    );

    // The actual call, and a refusal, carry the header so the app can read them.
    let resp = http
        .get(&jobs)
        .header("Origin", "https://app.example")
        .header("X-API-Key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let resp = http
        .get(&jobs)
        .header("Origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://app.example"
    );

    // Another origin: nothing.
    let resp = preflight("https://evil.example").await.unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    let resp = http
        .get(&jobs)
        .header("Origin", "https://evil.example")
        .header("X-API-Key", &key)
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());
}
