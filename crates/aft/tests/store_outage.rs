//! The database goes away under a running service (issue 15, "the store's failures are fast
//! and named"): `aft serve` on the real PostgreSQL, reached through a TCP relay this test
//! cuts and restores. While it is cut, `/v1/health` still answers 200 and names the store's
//! trouble, `/v1/ready` and store-backed routes answer 503 with `Retry-After` and a JSON
//! error (not a 500 after 30 s); once restored, the service recovers by itself.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aft_store::testing::TempPostgres;
use reqwest::Method;
use support::{Service, call};

/// A TCP relay to `upstream` that can be cut (every connection closed, the port no longer
/// listening) and restored.
struct Relay {
    port: u16,
    up: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn start(upstream: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (up_in, open_in) = (up.clone(), open.clone());
        std::thread::spawn(move || {
            // While cut, nothing listens on the port: connections are refused, as by a
            // database that is down.
            let mut listener = Some(listener);
            loop {
                let up = up_in.load(Ordering::SeqCst);
                if !up {
                    listener = None;
                } else if listener.is_none() {
                    listener = TcpListener::bind(("127.0.0.1", port)).ok();
                }
                let Some(l) = &listener else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                l.set_nonblocking(true).unwrap();
                let client = match l.accept() {
                    Ok((client, _)) => client,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                };
                client.set_nonblocking(false).unwrap();
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                {
                    let mut open = open_in.lock().unwrap();
                    open.push(client.try_clone().unwrap());
                    open.push(server.try_clone().unwrap());
                }
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                pipe(server, client);
            }
        });
        Relay { port, up, open }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}

/// The `host:port` of `postgres://user:pw@host:port/db`, and the URL with a relay's
/// `127.0.0.1:port` in its place.
fn split_address(url: &str, relay_port: u16) -> (String, String) {
    let at = url.rfind('@').unwrap();
    let slash = at + url[at..].find('/').unwrap();
    (
        url[at + 1..slash].to_string(),
        format!("{}127.0.0.1:{relay_port}{}", &url[..at + 1], &url[slash..]),
    )
}

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
