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

    // Five idle TCP connections (no TLS handshake) take every slot.
    let idle: Vec<TcpStream> = (0..5)
        .map(|_| TcpStream::connect(("127.0.0.1", svc.port)).unwrap())
        .collect();
    // The cap counts from the TCP accept; wait until the service has taken all five.
    let refused_quickly = support::poll(Duration::from_secs(5), || {
        let mut extra = TcpStream::connect(("127.0.0.1", svc.port)).ok()?;
        extra
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let started = Instant::now();
        let mut buf = [0u8; 1];
        match extra.read(&mut buf) {
            Ok(0) if started.elapsed() < Duration::from_secs(1) => Some(()),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Some(()),
            _ => None,
        }
    });
    assert!(
        refused_quickly.is_some(),
        "a sixth connection must be closed at once"
    );
    assert!(
        http.get(&health).send().await.is_err(),
        "no slot for a request either"
    );

    drop(idle);
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
