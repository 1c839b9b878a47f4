//! An SSH login the network drops (issue 15, "transport errors are classified and
//! `Connect()` is retried"), through `aft run` against the real sshd peer behind a proxy
//! written here. The proxy relays the SSH handshake in the clear, parsing the client's
//! packets, and closes both sides once the client sends its first encrypted packet after
//! NEWKEYS (the service request that starts the login) — or right after the server's
//! banner. Such a drop is a connection error naming the address and the stage, retried by
//! `Connect()`; it is never "refused the password".

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::{Aft, peer};

/// Where the proxy cuts a connection.
#[derive(Clone, Copy)]
enum Cut {
    /// Right after relaying the server's identification line.
    AfterBanner,
    /// When the client sends its first packet after NEWKEYS (the login starts).
    AtLogin,
    /// When the client sends again after nothing has passed either way for this long: the
    /// request is lost, as when a firewall has forgotten an idle connection.
    AfterIdle(Duration),
}

/// A proxy to `upstream` that cuts the first `drops` connections at `cut`, then relays.
struct Proxy {
    port: u16,
    cut_so_far: Arc<AtomicUsize>,
}

impl Proxy {
    fn start(upstream: String, cut: Cut, drops: usize) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut_so_far = Arc::new(AtomicUsize::new(0));
        let counter = cut_so_far.clone();
        std::thread::spawn(move || {
            let mut accepted = 0;
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                accepted += 1;
                if accepted > drops {
                    relay(client, server);
                    continue;
                }
                let counter = counter.clone();
                std::thread::spawn(move || {
                    cut_connection(client, server, cut);
                    counter.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        Proxy { port, cut_so_far }
    }

    fn cuts(&self) -> usize {
        self.cut_so_far.load(Ordering::SeqCst)
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

fn relay(client: TcpStream, server: TcpStream) {
    pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
    pipe(server, client);
}

/// Copy `from` to `to`, noting the time of each read in `last`; with `drop_after_idle`,
/// stop without passing on the first bytes read after that long without traffic.
fn copy_noting(
    mut from: TcpStream,
    mut to: TcpStream,
    last: &Mutex<Instant>,
    drop_after_idle: Option<Duration>,
) {
    let mut buf = [0u8; 16 * 1024];
    while let Ok(n) = from.read(&mut buf) {
        let mut last = last.lock().unwrap();
        if drop_after_idle.is_some_and(|idle| last.elapsed() >= idle) {
            return;
        }
        *last = Instant::now();
        drop(last);
        if n == 0 || to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
}

/// Read one line ending in `\n` byte by byte (the identification string).
fn read_line(from: &mut TcpStream) -> Option<Vec<u8>> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        if from.read(&mut byte).ok()? == 0 {
            return None;
        }
        line.push(byte[0]);
        if byte[0] == b'\n' {
            return Some(line);
        }
    }
}

/// Relay one connection until `cut`, then close both sides.
fn cut_connection(mut client: TcpStream, mut server: TcpStream, cut: Cut) {
    match cut {
        Cut::AfterBanner => {
            if let Some(banner) = read_line(&mut server) {
                let _ = client.write_all(&banner);
            }
        }
        Cut::AfterIdle(idle) => {
            let last = Arc::new(Mutex::new(Instant::now()));
            let back = {
                let (from, to, last) = (
                    server.try_clone().unwrap(),
                    client.try_clone().unwrap(),
                    last.clone(),
                );
                std::thread::spawn(move || copy_noting(from, to, &last, None))
            };
            copy_noting(
                client.try_clone().unwrap(),
                server.try_clone().unwrap(),
                &last,
                Some(idle),
            );
            let _ = client.shutdown(Shutdown::Both);
            let _ = server.shutdown(Shutdown::Both);
            let _ = back.join();
        }
        Cut::AtLogin => {
            pipe(server.try_clone().unwrap(), client.try_clone().unwrap());
            // Client to server: the identification line, then unencrypted binary packets
            // (u32 length, padding length, message type, ...) up to NEWKEYS (21).
            if let Some(banner) = read_line(&mut client) {
                let _ = server.write_all(&banner);
                loop {
                    let mut len = [0u8; 4];
                    if client.read_exact(&mut len).is_err() {
                        break;
                    }
                    let mut packet = vec![0u8; u32::from_be_bytes(len) as usize];
                    if client.read_exact(&mut packet).is_err() {
                        break;
                    }
                    let _ = server.write_all(&len);
                    let _ = server.write_all(&packet);
                    if packet.get(1) == Some(&21) {
                        break;
                    }
                }
                // The next packet is the first encrypted one: the login begins. Cut here.
                let mut first = [0u8; 1];
                let _ = client.read(&mut first);
            }
        }
    }
    let _ = client.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
}

/// A script connecting to the proxy with the peer's user and password, listing the home
/// folder, and logging the outcome.
fn script(port: u16) -> String {
    format!(
        r#"
var c = new SftpClient();
c.Host = "127.0.0.1:{port}";
c.User = "{user}";
c.Pass = "{pass}";
c.HostKeySHA256 = "{pin}";
if (!c.Connect()) {{
  Log("connect failed: " + c.LastError());
  Exit(3); // aft run exits 1: the job failed
}}
var list = c.ListDir("{home}");
if (list == null) throw new Error("list: " + c.LastError());
Log("connected and listed");
c.Close();
"#,
        user = peer("AFT_TEST_SFTP_USER"),
        pass = peer("AFT_TEST_SFTP_PASS"),
        pin = peer("AFT_TEST_SFTP_HOSTKEY_SHA256"),
        home = peer("AFT_TEST_SFTP_HOME"),
    )
}

fn run(aft: &Aft, name: &str, port: u16) -> (Option<i32>, String) {
    let file = aft.write(name, &script(port));
    let out = aft.run(&["run", "-f", &file]);
    (out.status.code(), support::text(&out))
}

/// The line where the script logged `Connect()`'s error.
fn failure_line(out: &str) -> &str {
    out.lines()
        .find(|l| l.contains("connect failed: "))
        .unwrap_or_else(|| panic!("no failure logged: {out}"))
}

#[test]
fn a_login_dropped_twice_is_retried_by_connect_and_then_succeeds() {
    let aft = Aft::allowing_cli_run();
    let proxy = Proxy::start(peer("AFT_TEST_SFTP_ADDR"), Cut::AtLogin, 2);
    let (code, out) = run(&aft, "twice.syncjs", proxy.port);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(proxy.cuts(), 2, "{out}");
    assert!(out.contains("connected and listed"), "{out}");
    let expected = format!("connection closed by 127.0.0.1:{} during login", proxy.port);
    assert_eq!(out.matches(&expected).count(), 2, "{out}");
    assert_eq!(out.matches("trying again").count(), 2, "{out}");
    assert!(!out.contains("refused"), "{out}");
}

#[test]
fn a_login_dropped_every_time_fails_as_a_connection_error_not_a_wrong_password() {
    let aft = Aft::allowing_cli_run();
    let proxy = Proxy::start(peer("AFT_TEST_SFTP_ADDR"), Cut::AtLogin, usize::MAX);
    let (code, out) = run(&aft, "always.syncjs", proxy.port);
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(proxy.cuts(), 4, "one try and three retries: {out}");
    let failed = failure_line(&out);
    assert!(
        failed.contains(&format!(
            "connection to sftp://{}@127.0.0.1:{} failed: connection closed by 127.0.0.1:{} during login",
            peer("AFT_TEST_SFTP_USER"),
            proxy.port,
            proxy.port
        )),
        "{failed}"
    );
    assert!(failed.contains("; gave up after 4 attempts"), "{failed}");
    assert!(!out.contains("refused"), "{out}");
}

#[test]
fn a_drop_right_after_the_banner_is_a_handshake_error_and_retried() {
    let aft = Aft::allowing_cli_run();
    let proxy = Proxy::start(peer("AFT_TEST_SFTP_ADDR"), Cut::AfterBanner, 1);
    let (code, out) = run(&aft, "banner.syncjs", proxy.port);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(proxy.cuts(), 1, "{out}");
    assert!(
        out.contains(&format!(
            "127.0.0.1:{} during the SSH handshake",
            proxy.port
        )),
        "{out}"
    );
    assert!(out.contains("connected and listed"), "{out}");
}

#[test]
fn a_closed_port_is_refused_before_any_handshake_and_retried() {
    let aft = Aft::allowing_cli_run();
    // A port nothing listens on: bound, noted, closed.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, out) = run(&aft, "closed.syncjs", port);
    assert_eq!(code, Some(1), "{out}");
    let failed = failure_line(&out);
    assert!(
        failed.ends_with(&format!(
            "failed: connection refused by 127.0.0.1:{port}; gave up after 4 attempts"
        )),
        "{failed}"
    );
    assert!(!out.contains("handshake"), "{out}");
}

#[test]
fn an_unknown_host_is_named_as_such_not_a_broken_handshake() {
    let aft = Aft::allowing_cli_run();
    let file = aft.write(
        "unknown.syncjs",
        &script(22).replace("127.0.0.1:22", "no-such-host.invalid:22"),
    );
    let out = aft.run(&["run", "-f", &file]);
    let out_text = support::text(&out);
    assert_eq!(out.status.code(), Some(1), "{out_text}");
    assert!(
        out_text.contains("cannot reach no-such-host.invalid:22: "),
        "{out_text}"
    );
    assert!(
        !out_text.contains("handshake") && !out_text.contains("broke"),
        "{out_text}"
    );
}

#[test]
fn a_wrong_password_is_still_refused_at_once() {
    let aft = Aft::allowing_cli_run();
    let file = aft.write(
        "wrong.syncjs",
        &script(
            peer("AFT_TEST_SFTP_ADDR")
                .rsplit(':')
                .next()
                .unwrap()
                .parse()
                .unwrap(),
        )
        .replace(&peer("AFT_TEST_SFTP_PASS"), "not-the-password"),
    );
    let out = aft.run(&["run", "-f", &file]);
    let out_text = support::text(&out);
    assert_eq!(out.status.code(), Some(1), "{out_text}");
    assert!(out_text.contains("refused the password"), "{out_text}");
    assert!(!out_text.contains("trying again"), "{out_text}");
}

#[test]
fn a_session_dropped_after_connect_is_reconnected_by_the_next_call() {
    let aft = Aft::allowing_cli_run();
    // The first connection goes silent for the script's sleep after Connect(); the proxy
    // then drops the listing's request and closes. The listing must reconnect and succeed.
    let proxy = Proxy::start(
        peer("AFT_TEST_SFTP_ADDR"),
        Cut::AfterIdle(Duration::from_millis(1000)),
        1,
    );
    let file = aft.write(
        "idle.syncjs",
        &script(proxy.port).replace("var list = ", "Sleep(1500);\nvar list = "),
    );
    let out = aft.run(&["run", "-f", &file]);
    let text = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_eq!(proxy.cuts(), 1, "{text}");
    assert!(text.contains("connected and listed"), "{text}");
    assert_eq!(text.matches("ListDir: ").count(), 1, "{text}");
    assert!(text.contains("trying again in 500 ms"), "{text}");
}
