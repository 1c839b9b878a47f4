//! Slow and idle clients against the real service: past `--max-connections` a connection is
//! closed at once, and a client that never finishes its request headers is cut off, so
//! neither can hold the service's sockets.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{Aft, Service};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_are_closed_at_once_and_the_slots_come_back() {
    let aft = Aft::new();
    let svc = Service::start(aft.data(), &[], &["--max-connections", "5"]);
    let http = svc.client();
    let health = format!("{}/v1/health", svc.base());

    // Idle TCP connections (no TLS handshake) are opened one at a time, each kept while the
    // service keeps it, until one is closed at once: that is the cap refusing it. (Each
    // connection takes its slot in a task of its own, so connections opened all at once
    // could be admitted in any order.) A kept one is held until the 10 s handshake limit.
    let mut held = Vec::new();
    let mut refused = false;
    for _ in 0..20 {
        let mut conn = TcpStream::connect(("127.0.0.1", svc.port)).unwrap();
        conn.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut buf = [0u8; 1];
        match conn.read(&mut buf) {
            Ok(0) => {
                refused = true;
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                refused = true;
                break;
            }
            _ => held.push(conn),
        }
    }
    assert!(refused, "a connection past the cap must be closed at once");
    assert!(
        held.len() >= 5,
        "{} connections were kept before one was refused",
        held.len()
    );
    assert!(
        http.get(&health).send().await.is_err(),
        "no slot for a request either"
    );

    drop(held);
    let mut answered = false;
    for _ in 0..50 {
        if let Ok(resp) = http.get(&health).send().await {
            answered = resp.status().is_success();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        answered,
        "the slots come back when the idle connections close"
    );
}

#[test]
fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let aft = Aft::new();
    let svc = aft.serve();
    // A real TLS client that sends half a request line and then nothing.
    let mut client = Command::new("openssl")
        .args([
            "s_client",
            "-quiet",
            "-connect",
            &svc.host(),
            "-alpn",
            "http/1.1",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_client (Debian openssl)");
    let mut stdin = client.stdin.take().unwrap();
    stdin
        .write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    stdin.flush().unwrap();
    let started = Instant::now();
    // The service closes the connection; s_client then ends (stdin stays open).
    let ended = support::poll(Duration::from_secs(25), || client.try_wait().unwrap());
    let waited = started.elapsed();
    drop(stdin);
    let _ = client.kill();
    assert!(
        ended.is_some(),
        "the half-sent request was still open after {waited:?}"
    );
    assert!(
        waited >= Duration::from_secs(5),
        "cut off too early: {waited:?}"
    );
}
