//! The database goes away under a running service (issue 15, "the store's failures are fast
//! and named"): `aft serve` on the real PostgreSQL, reached through a TCP relay this test
//! cuts and restores. While it is cut, `/v1/health` still answers 200 and names the store's
//! trouble, `/v1/ready` and store-backed routes answer 503 with `Retry-After` and a JSON
//! error (not a 500 after 30 s); once restored, the service recovers by itself.

#[path = "support/relay.rs"]
mod relay;
mod support;

use std::time::{Duration, Instant};

use aft_store::testing::TempPostgres;
use relay::{Relay, split_address};
use reqwest::Method;
use support::{Service, call};

#[tokio::test(flavor = "multi_thread")]
async fn a_service_answers_503_while_its_database_is_away_and_recovers_by_itself() {
    let db = TempPostgres::create().await;
    let (upstream, _) = split_address(&db.url, 0);
    let relay = Relay::start(upstream);
    let (_, url) = split_address(&db.url, relay.port);
    let data = tempfile::tempdir().unwrap();
    let service = Service::start(data.path(), &["--database", &url], &[]);
    let client = service.client();
    let base = service.base();
    let token = service.local_token();
    let auth = Some((aft_server::discovery::LOCAL_TOKEN_HEADER, token.as_str()));

    let (status, ready) = call(
        &client,
        Method::GET,
        &format!("{base}/v1/ready"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200, "{ready}");
    let (status, jobs) = call(&client, Method::GET, &format!("{base}/v1/jobs"), auth, None).await;
    assert_eq!(status, 200, "{jobs}");

    relay.cut();
    // Liveness stays 200 and says what is wrong.
    let (status, health) = call(
        &client,
        Method::GET,
        &format!("{base}/v1/health"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "degraded", "{health}");
    assert_ne!(health["store"], "ok", "{health}");
    // Readiness and store-backed routes: 503, Retry-After, a JSON error, soon.
    let resp = client.get(format!("{base}/v1/ready")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    assert!(resp.headers().contains_key("retry-after"));
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("database"),
        "{body}"
    );
    let started = Instant::now();
    let resp = client
        .get(format!("{base}/v1/jobs"))
        .header(aft_server::discovery::LOCAL_TOKEN_HEADER, &token)
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(resp.status().as_u16(), 503, "took {took:?}");
    assert!(resp.headers().contains_key("retry-after"));
    assert!(took < Duration::from_secs(15), "503 took {took:?}");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("unavailable"),
        "{body}"
    );

    relay.restore();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _) = call(
            &client,
            Method::GET,
            &format!("{base}/v1/ready"),
            None,
            None,
        )
        .await;
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the service did not recover within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, jobs) = call(&client, Method::GET, &format!("{base}/v1/jobs"), auth, None).await;
    assert_eq!(status, 200, "{jobs}");
    drop(service);
    db.drop_database().await;
}
