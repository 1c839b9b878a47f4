//! A TCP relay a test puts between aft and a server (PostgreSQL) to cut the connection and
//! restore it, as a database restart or a network outage would.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A TCP relay to `upstream` that can be cut (every connection closed, the port no longer
/// listening) and restored.
pub struct Relay {
    pub port: u16,
    up: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    pub fn start(upstream: String) -> Relay {
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

    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    pub fn restore(&self) {
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
pub fn split_address(url: &str, relay_port: u16) -> (String, String) {
    let at = url.rfind('@').unwrap();
    let slash = at + url[at..].find('/').unwrap();
    (
        url[at + 1..slash].to_string(),
        format!("{}127.0.0.1:{relay_port}{}", &url[..at + 1], &url[slash..]),
    )
}
