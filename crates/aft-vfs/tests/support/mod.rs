//! Shared test helpers: the real servers' settings from the environment and a TCP proxy
//! that cuts connections to simulate a broken network.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aft_vfs::sftp::{SftpConfig, SftpFs};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An environment variable a peer script exports; missing means the test setup is wrong.
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start the test servers with ci/test.sh (or `bash ci/peers/sshd.sh DIR` and source its output)")
    })
}

/// Settings for the test sshd: password auth, pinned host key, rooted in the user's home.
pub fn sftp_config() -> SftpConfig {
    let mut cfg = SftpConfig::new(env("AFT_TEST_SFTP_ADDR"), env("AFT_TEST_SFTP_USER"));
    cfg.password = Some(env("AFT_TEST_SFTP_PASS").into());
    cfg.host_key_sha256 = Some(env("AFT_TEST_SFTP_HOSTKEY_SHA256"));
    cfg.base_dir = Some(env("AFT_TEST_SFTP_HOME"));
    cfg
}

/// A backend on the test sshd.
pub fn sftp() -> SftpFs {
    SftpFs::new(sftp_config())
}

/// A TCP proxy on 127.0.0.1 that forwards to `target` and cuts each of the first
/// `cut_connections` connections once `cut_after` bytes went through it (both ways);
/// later connections pass untouched.
pub struct CutProxy {
    /// `127.0.0.1:port` to connect to instead of the target.
    pub addr: String,
    /// Connections accepted so far.
    pub accepted: Arc<AtomicUsize>,
}

impl CutProxy {
    /// Start the proxy in the background.
    pub async fn start(target: &str, cut_after: u64, cut_connections: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr").to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        let target = target.to_string();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let limit = (n < cut_connections).then_some(cut_after);
                let target = target.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&target).await {
                        pipe(client, server, limit).await;
                    }
                });
            }
        });
        Self { addr, accepted }
    }
}

async fn pipe(client: TcpStream, server: TcpStream, limit: Option<u64>) {
    let budget = Arc::new(std::sync::atomic::AtomicU64::new(limit.unwrap_or(u64::MAX)));
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let up = copy_with_budget(cr, sw, budget.clone());
    let down = copy_with_budget(sr, cw, budget);
    // Whichever side ends (or hits the budget) ends both: that is the cut.
    tokio::select! {
        _ = up => {},
        _ = down => {},
    }
}

async fn copy_with_budget(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    budget: Arc<std::sync::atomic::AtomicU64>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let left = budget.load(Ordering::SeqCst);
        let take = (n as u64).min(left) as usize;
        budget.fetch_sub(take as u64, Ordering::SeqCst);
        if to.write_all(&buf[..take]).await.is_err() || take < n {
            return;
        }
    }
}

/// The sorted names in the server folder `dir` (a temp file left there would show).
pub async fn sftp_names(sftp: &SftpFs, dir: &str) -> Vec<String> {
    use aft_vfs::Vfs;
    use futures::TryStreamExt;
    let mut v: Vec<String> = sftp
        .list(dir)
        .await
        .unwrap()
        .map_ok(|e| e.name)
        .try_collect()
        .await
        .unwrap();
    v.sort();
    v
}

/// `len` pseudo-random bytes (xorshift64 from `seed`): no two requests' worth alike, and a
/// gap of zeros or a piece written at the wrong offset never matches them.
pub fn xorshift_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
