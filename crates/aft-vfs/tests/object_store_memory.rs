//! Uploads and downloads keep the process's memory flat: a 200 MiB file generated on the
//! fly goes up while the resident set grows by far less than the file, and comes back
//! intact (compared by hash), in parallel ranges where the store has them, within their
//! budget. Against servers that take a file in one request (WebDAV via wsgidav, GCS via
//! fake-gcs-server) and a multipart one (S3 via moto); started by `ci/peers/wsgidav.sh`,
//! `ci/peers/fakegcs.sh` and `ci/peers/moto.sh`.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use aft_vfs::Vfs;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};

/// Size of the generated upload.
const UPLOAD_SIZE: u64 = 200 * 1024 * 1024;

/// Largest resident-set growth allowed while it uploads.
const MAX_RSS_GROWTH: u64 = 64 * 1024 * 1024;

/// Largest resident-set growth allowed while it downloads with the default 4 streams: the
/// ranges held, `(4 + 2) × 4 MiB`, and room for the HTTP client's buffers (8 MiB ranges
/// held twice that).
const MAX_DOWNLOAD_GROWTH: u64 = 40 * 1024 * 1024;

/// One memory measurement at a time: tests of one binary may share a process.
static MEASURING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the tests with ci/test.sh, which starts wsgidav, fake-gcs-server and moto and exports it"
        )
    })
}

/// This process's resident set in bytes (`VmRSS` in `/proc/self/status`).
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line in /proc/self/status");
    kib * 1024
}

/// `len` pseudo-random bytes (xorshift), produced as they are read, never held whole.
struct Generated {
    left: u64,
    state: u64,
}

impl Generated {
    fn new(len: u64, seed: u64) -> Self {
        Generated {
            left: len,
            state: seed | 1,
        }
    }
}

impl AsyncRead for Generated {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = (buf.remaining() as u64).min(self.left) as usize;
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let mut x = self.state;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.state = x;
            let take = (n - out.len()).min(8);
            out.extend_from_slice(&x.to_le_bytes()[..take]);
        }
        buf.put_slice(&out);
        self.left -= n as u64;
        Poll::Ready(Ok(()))
    }
}

/// Samples the resident set every few milliseconds and keeps the highest value.
struct RssSampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    fn start() -> Self {
        let peak = Arc::new(AtomicU64::new(rss_bytes()));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        let task = tokio::spawn(async move {
            while !s.load(Ordering::SeqCst) {
                p.fetch_max(rss_bytes(), Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        RssSampler { peak, stop, task }
    }

    async fn peak(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("sampler task");
        self.peak.load(Ordering::SeqCst).max(rss_bytes())
    }
}

/// Upload a generated 200 MiB file to `vfs`, check the memory growth while it went up, and
/// check that it comes back with the same SHA-256.
async fn big_upload_keeps_memory_flat(vfs: Arc<dyn Vfs>, what: &str) {
    let _one_at_a_time = MEASURING.lock().await;
    let path = format!("/aft-memory-{}/big.bin", std::process::id());
    // Warm up the client (connections, TLS, buffers) so the baseline includes them.
    aft_vfs::write_all(&*vfs, &path, b"warm-up")
        .await
        .expect("warm-up upload");

    let baseline = rss_bytes();
    let sampler = RssSampler::start();
    let mut source = Generated::new(UPLOAD_SIZE, 0x5eed);
    let mut writer = vfs
        .write(&path, aft_vfs::WriteMode::Create)
        .await
        .expect("open upload");
    let mut sent_hash = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = source.read(&mut buf).await.expect("generate");
        if n == 0 {
            break;
        }
        sent_hash.update(&buf[..n]);
        writer.write_all(&buf[..n]).await.expect("upload chunk");
    }
    writer.shutdown().await.expect("finish upload");
    drop(writer);
    let peak = sampler.peak().await;
    let growth = peak.saturating_sub(baseline);
    eprintln!(
        "{what}: {} MiB upload, resident set {} KiB before, {} KiB at peak",
        UPLOAD_SIZE >> 20,
        baseline >> 10,
        peak >> 10
    );
    assert!(
        growth < MAX_RSS_GROWTH,
        "{what}: resident memory grew by {} MiB (baseline {} MiB, peak {} MiB) during a {} MiB upload",
        growth >> 20,
        baseline >> 20,
        peak >> 20,
        UPLOAD_SIZE >> 20
    );

    let entry = vfs.stat(&path).await.expect("stat uploaded file");
    assert_eq!(entry.size, UPLOAD_SIZE, "{what}: size on the server");
    let baseline = rss_bytes();
    let sampler = RssSampler::start();
    let mut back = vfs.read(&path, 0, None).await.expect("download");
    let mut back_hash = Sha256::new();
    let mut back_len = 0u64;
    loop {
        let n = back.read(&mut buf).await.expect("download chunk");
        if n == 0 {
            break;
        }
        back_hash.update(&buf[..n]);
        back_len += n as u64;
    }
    drop(back);
    let peak = sampler.peak().await;
    eprintln!(
        "{what}: {} MiB download, resident set {} KiB before, {} KiB at peak",
        UPLOAD_SIZE >> 20,
        baseline >> 10,
        peak >> 10
    );
    assert!(
        peak.saturating_sub(baseline) < MAX_DOWNLOAD_GROWTH,
        "{what}: resident memory grew by {} MiB (baseline {} MiB, peak {} MiB) during a {} MiB download",
        peak.saturating_sub(baseline) >> 20,
        baseline >> 20,
        peak >> 20,
        UPLOAD_SIZE >> 20
    );
    assert_eq!(back_len, UPLOAD_SIZE, "{what}: downloaded length");
    assert!(
        back_hash.finalize() == sent_hash.finalize(),
        "{what}: the 200 MiB file changed on the round trip"
    );
    vfs.remove_all(&aft_vfs::parent(&path))
        .await
        .expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webdav_200_mib_upload_streams_without_buffering_the_file() {
    let fields = serde_json::json!({
        "Endpoint": env("AFT_TEST_WEBDAV_URL"),
        "User": env("AFT_TEST_WEBDAV_USER"),
        "Pass": env("AFT_TEST_WEBDAV_PASS"),
    });
    let vfs = aft_vfs::open_backend("webdav", &fields, &|_| None).expect("WebDAV backend");
    big_upload_keeps_memory_flat(vfs, "WebDAV").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_emulator_200_mib_upload_streams_without_buffering_the_file() {
    let fields = serde_json::json!({
        "Endpoint": env("AFT_TEST_GCS_ENDPOINT"),
        "Bucket": env("AFT_TEST_GCS_BUCKET"),
    });
    let vfs = aft_vfs::open_backend("gcs", &fields, &|_| None).expect("GCS backend");
    big_upload_keeps_memory_flat(vfs, "GCS emulator").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_200_mib_multipart_upload_holds_only_a_few_parts() {
    let fields = serde_json::json!({
        "Endpoint": env("AFT_TEST_S3_ENDPOINT"),
        "Bucket": env("AFT_TEST_S3_BUCKET"),
        "Region": env("AFT_TEST_S3_REGION"),
        "APIKeyID": env("AFT_TEST_S3_KEY_ID"),
        "APIKeySecret": env("AFT_TEST_S3_SECRET"),
    });
    let vfs = aft_vfs::open_backend("s3", &fields, &|_| None).expect("S3 backend");
    big_upload_keeps_memory_flat(vfs, "S3").await;
}
