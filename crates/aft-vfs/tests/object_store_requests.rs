//! How many requests a folder of small files costs on S3: a download sends one `GET` per
//! file (the listing stands in for each file's `stat`, and the `GET`'s ETag for its MD5), an
//! upload one `PUT` (its ETag is the MD5 the check compares, which proves the size too).
//! The requests are counted by a relay in front of moto (`ci/peers/moto.sh`), and every
//! file is compared byte for byte.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aft_vfs::Vfs;
use aft_vfs::transfer::{self, TransferOptions, TransferPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const FILES: usize = 12;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with ci/test.sh, which starts moto and exports it")
    })
}

/// Request lines (`HEAD /bucket/key`) seen on their way to the server, by method.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(String, String)>>>);

impl Seen {
    fn take(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// Record the request lines among the complete lines of `pending` (what the client sent),
/// keeping its unfinished last line. The bodies here never hold a request line (`xorshift`
/// data), so a plain scan of the stream finds exactly the requests.
fn scan(pending: &mut Vec<u8>, seen: &Seen) {
    const METHODS: [&str; 5] = ["GET ", "HEAD ", "PUT ", "POST ", "DELETE "];
    let mut line_start = 0;
    while let Some(n) = pending[line_start..].windows(2).position(|w| w == b"\r\n") {
        let line = String::from_utf8_lossy(&pending[line_start..line_start + n]).into_owned();
        if let Some(method) = METHODS.iter().find(|m| line.starts_with(*m))
            && let Some(target) = line[method.len()..].strip_suffix(" HTTP/1.1")
        {
            seen.0
                .lock()
                .unwrap()
                .push((method.trim().to_string(), target.to_string()));
        }
        line_start += n + 2;
    }
    pending.drain(..line_start);
    // A body without line ends: only its tail can begin the next request line.
    if pending.len() > 8192 {
        pending.drain(..pending.len() - 4096);
    }
}

/// A TCP relay to `upstream` that records each request line the client sends.
async fn counting_relay(upstream: String, seen: Seen) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let (upstream, seen) = (upstream.clone(), seen.clone());
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = async move {
                    let (mut chunk, mut pending) = (vec![0u8; 64 * 1024], Vec::new());
                    loop {
                        let n = match cr.read(&mut chunk).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        pending.extend_from_slice(&chunk[..n]);
                        scan(&mut pending, &seen);
                        if sw.write_all(&chunk[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = sw.shutdown().await;
                };
                let down = async move {
                    let _ = tokio::io::copy(&mut sr, &mut cw).await;
                    let _ = cw.shutdown().await;
                };
                tokio::join!(up, down);
            });
        }
    });
    format!("http://{addr}")
}

fn xorshift_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Count the requests about the files (not the listings, `?uploads` or the folder's
/// marker, asked once per folder) by method.
fn file_requests(seen: &[(String, String)], prefix: &str) -> HashMap<String, usize> {
    let mut by_method = HashMap::new();
    for (method, target) in seen {
        if target.contains(prefix) && target.ends_with(".dat") {
            *by_method.entry(method.clone()).or_insert(0) += 1;
        }
    }
    by_method
}

#[tokio::test]
async fn a_small_file_costs_one_put_up_and_one_get_down() {
    let endpoint = env("AFT_TEST_S3_ENDPOINT");
    let upstream = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let seen = Seen::default();
    let relay = counting_relay(upstream, seen.clone()).await;
    let fields = serde_json::json!({
        "Endpoint": relay,
        "Bucket": env("AFT_TEST_S3_BUCKET"),
        "Region": env("AFT_TEST_S3_REGION"),
        "APIKeyID": env("AFT_TEST_S3_KEY_ID"),
        "APIKeySecret": env("AFT_TEST_S3_SECRET"),
    });
    let s3: Arc<dyn Vfs> = aft_vfs::open_backend("s3", &fields, &|_| None).expect("S3 backend");

    let local = tempfile::tempdir().unwrap();
    let (up_dir, down_dir) = (local.path().join("up"), local.path().join("down"));
    std::fs::create_dir_all(&up_dir).unwrap();
    std::fs::create_dir_all(&down_dir).unwrap();
    let files: Vec<(String, Vec<u8>)> = (0..FILES)
        .map(|i| {
            (
                format!("f{i:02}.dat"),
                xorshift_bytes(8192 + i, i as u64 + 7),
            )
        })
        .collect();
    for (name, data) in &files {
        std::fs::write(up_dir.join(name), data).unwrap();
    }
    let prefix = format!(
        "requests-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let opts = TransferOptions {
        policy: TransferPolicy::AlwaysOverwrite,
        ..TransferOptions::default()
    };
    let outcomes = Mutex::new(Vec::new());
    let sink = |o: &transfer::TransferOutcome| outcomes.lock().unwrap().push(o.clone());

    let glob = format!("{}/*", up_dir.display());
    let up = transfer::upload(&glob, s3.as_ref(), &format!("/{prefix}"), &opts, &sink)
        .await
        .expect("upload");
    assert_eq!((up.transferred, up.failed), (FILES as u64, 0), "{up:?}");
    let sent = file_requests(&seen.take(), &prefix);
    assert_eq!(sent.get("PUT"), Some(&FILES), "one PUT per file: {sent:?}");
    assert_eq!(
        sent.len(),
        1,
        "an upload sends nothing else per file (no HEAD of the target before or after): {sent:?}"
    );
    for o in outcomes.lock().unwrap().drain(..) {
        assert!(o.hash.is_some(), "hashed and checked: {o:?}");
    }

    let down = transfer::download(
        s3.as_ref(),
        &format!("/{prefix}/*"),
        &down_dir.display().to_string(),
        &opts,
        &sink,
    )
    .await
    .expect("download");
    assert_eq!(
        (down.transferred, down.failed),
        (FILES as u64, 0),
        "{down:?}"
    );
    let sent = file_requests(&seen.take(), &prefix);
    assert_eq!(sent.get("GET"), Some(&FILES), "one GET per file: {sent:?}");
    assert_eq!(
        sent.len(),
        1,
        "a download sends nothing else per file (no HEAD for its size or MD5): {sent:?}"
    );
    for (name, data) in &files {
        let got = std::fs::read(down_dir.join(name)).unwrap();
        assert!(got == *data, "{name} came back different");
    }
    let names: Vec<String> = std::fs::read_dir(&down_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), FILES, "no temp file left: {names:?}");
    s3.remove_all(&format!("/{prefix}"))
        .await
        .expect("clean up");
}
