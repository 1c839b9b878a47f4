//! One big file through S3 (moto), Azure Blob (Azurite) and GCS (fake-gcs-server) with
//! several parts in flight: `aft run` of a script that sets the client's `Streams` to 4
//! uploads a file of six parts (the last one short), and a second run downloads it, which
//! then must be the same bytes. The content differs at every offset, so a part sent or
//! handed on out of order shows. aft reaches the server through a TCP proxy of the test's
//! own that counts the connections open at once: one request at a time keeps one
//! connection (or two for a moment), so at least three open at once means parts or ranges
//! really were in flight together.
//!
//! A folder of small files moves more files at once than a folder of big ones (counted
//! the same way): up to 16 files under 1 MiB, 4 from 1 MiB up.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::{Aft, blake3_file, peer, poll, sha256_file, text, xorshift_bytes};

/// Five 8 MiB parts and a short sixth: more parts than streams, and an odd end.
const SIZE: usize = 5 * 8 * 1024 * 1024 + 123_457;

/// Connections open at once that only parallel parts or ranges explain.
const PARALLEL: usize = 3;

/// A TCP proxy to `target` (`host:port`) that keeps the most connections open at once,
/// and can cut every connection at once after a number of bytes to the client.
struct CountingProxy {
    addr: String,
    open: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
    cut: Cut,
}

/// Bytes to the client left before every open connection is cut (once).
#[derive(Clone)]
struct Cut {
    left: Arc<AtomicI64>,
    sockets: Arc<Mutex<Vec<TcpStream>>>,
}

impl Cut {
    /// Count `n` bytes sent to the client; the ones that use up the budget cut every
    /// connection open now, and the budget is unlimited again.
    fn sent(&self, n: usize) {
        let n = n as i64;
        let left = self.left.fetch_sub(n, Ordering::SeqCst) - n;
        if left <= 0 && left + n > 0 {
            self.left.store(i64::MAX, Ordering::SeqCst);
            for socket in self.sockets.lock().unwrap().drain(..) {
                let _ = socket.shutdown(Shutdown::Both);
            }
        }
    }
}

impl CountingProxy {
    fn start(target: String) -> CountingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let open = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let cut = Cut {
            left: Arc::new(AtomicI64::new(i64::MAX)),
            sockets: Arc::default(),
        };
        let (o, m, c) = (open.clone(), most.clone(), cut.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                let now = o.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(now, Ordering::SeqCst);
                c.sockets.lock().unwrap().push(client.try_clone().unwrap());
                let (o, c) = (o.clone(), c.clone());
                std::thread::spawn(move || {
                    let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                    let up = std::thread::spawn(move || pipe(c2, s2, None));
                    pipe(server, client, Some(&c));
                    let _ = up.join();
                    o.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        CountingProxy {
            addr,
            open,
            most,
            cut,
        }
    }

    /// Cut every connection open once `bytes` more have gone to the client.
    fn cut_after(&self, bytes: i64) {
        self.cut.left.store(bytes, Ordering::SeqCst);
    }

    /// The most connections open at once since the last call, once the last run's have
    /// all closed; counting starts anew from zero.
    fn take_most(&self) -> usize {
        let closed = poll(Duration::from_secs(20), || {
            (self.open.load(Ordering::SeqCst) == 0).then_some(())
        });
        assert!(closed.is_some(), "connections of an ended run stay open");
        self.most.swap(0, Ordering::SeqCst)
    }
}

/// Copy `from` to `to` until either side ends, then end both; bytes to the client count
/// against `cut`.
fn pipe(mut from: TcpStream, mut to: TcpStream, cut: Option<&Cut>) {
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 || to.write_all(&buf[..n]).is_err() {
            break;
        }
        if let Some(cut) = cut {
            cut.sent(n);
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

/// `url` with its `host:port` replaced by what `proxy` makes of it.
fn through(url: &str, proxy: impl FnOnce(String) -> String) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let via = proxy(host.to_string());
    if path.is_empty() {
        format!("{scheme}://{via}")
    } else {
        format!("{scheme}://{via}/{path}")
    }
}

/// `aft run` of `body` on a client `class` set up by `fields`, with `Streams` = 4; the
/// script must log `DONE`.
fn run(aft: &Aft, class: &str, fields: &[(&str, String)], body: &str) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap();
    let set: String = fields
        .iter()
        .map(|(k, v)| format!("cli.{k} = {};\n", q(v)))
        .collect();
    let script = format!(
        r#"var cli = new {class}();
{set}cli.Streams = 4;
cli.Options.UploadPolicy = AlwaysOverwrite;
cli.Options.DownloadPolicy = AlwaysOverwrite;
if (!cli.Connect()) {{ Log("cannot connect: " + cli.LastError()); Exit(1); }}
{body}
cli.Close();
Log("DONE");
"#
    );
    let file = aft.write("parallel.js", &script);
    let result = aft.run(&["run", "-f", &file]);
    let log = text(&result);
    assert!(
        result.status.success() && log.contains("DONE"),
        "{class}: {}\n{script}\n{log}",
        result.status
    );
    log
}

/// The script line that calls `cli.METHOD(FROM, TO)` (script expressions) and ends the
/// run with the client's error when it fails.
fn moved(method: &str, from: &str, to: &str) -> String {
    format!(
        r#"if (!cli.{method}({from}, {to})) {{ Log("{method} failed: " + cli.LastError()); Exit(1); }}"#
    )
}

/// Upload and download `SIZE` bytes with `class`, its endpoint field `endpoint` (reached
/// through the counting proxy) and its other `fields`.
fn round_trip(class: &str, endpoint: (&str, String), fields: &[(&str, String)]) {
    let mut proxy = None;
    let url = through(&endpoint.1, |target| {
        let p = CountingProxy::start(target);
        let addr = p.addr.clone();
        proxy = Some(p);
        addr
    });
    let proxy = proxy.unwrap();
    let mut fields = fields.to_vec();
    fields.push((endpoint.0, url));

    let aft = Aft::allowing_cli_run();
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    // Pseudo-random, so that no two parts are alike.
    let data = xorshift_bytes(SIZE, 0x9E37_79B9_7F4A_7C15);
    std::fs::write(src.path().join("big.bin"), &data).unwrap();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let q = |s: &str| serde_json::to_string(s).unwrap();
    let dir_path = format!("/aft-parallel-{}-{nanos}", std::process::id());
    let (dir, remote) = (q(&dir_path), q(&format!("{dir_path}/big.bin")));

    proxy.take_most();
    run(
        &aft,
        class,
        &fields,
        &format!(
            r#"{upload}
var st = cli.Stat({remote});
if (st.Size != {SIZE}) {{ Log("uploaded size " + st.Size); Exit(1); }}"#,
            upload = moved(
                "Upload",
                &q(src.path().join("big.bin").to_str().unwrap()),
                &dir
            ),
        ),
    );
    let upload_connections = proxy.take_most();
    // The download asks for SHA-256 in its record (the default is BLAKE3).
    let download_log = run(
        &aft,
        class,
        &fields,
        &format!(
            "cli.Options.RecordHash = \"sha256\";\n{}",
            moved("Download", &remote, &q(out.path().to_str().unwrap()))
        ),
    );
    let download_connections = proxy.take_most();
    run(&aft, class, &fields, &format!("cli.DelTree({dir});"));
    // The record's SHA-256, asked for, is computed behind the ranges' writers: it must be
    // the file's.
    let sha = sha256_file(&out.path().join("big.bin"));
    assert!(
        download_log.contains(&format!("sha256 {sha}")),
        "{class}: the download's record does not name the file's SHA-256 {sha}:\n{download_log}"
    );

    let back = std::fs::read(out.path().join("big.bin")).unwrap();
    assert_eq!(back.len(), SIZE, "{class}: downloaded size");
    let first_difference = back.iter().zip(&data).position(|(a, b)| a != b);
    assert_eq!(
        first_difference, None,
        "{class}: the downloaded file differs from the uploaded one"
    );
    assert!(
        download_connections >= PARALLEL,
        "{class}: the download had at most {download_connections} connections open at once"
    );
    // fake-gcs-server takes each upload as one streamed request (no multipart API).
    if class != "GCSClient" {
        assert!(
            upload_connections >= PARALLEL,
            "{class}: the upload had at most {upload_connections} connections open at once"
        );
    }
}

#[test]
fn s3_big_file_goes_up_and_down_in_parallel_parts_byte_exact() {
    round_trip(
        "S3Client",
        ("Endpoint", peer("AFT_TEST_S3_ENDPOINT")),
        &[
            ("Bucket", peer("AFT_TEST_S3_BUCKET")),
            ("Region", peer("AFT_TEST_S3_REGION")),
            ("APIKeyID", peer("AFT_TEST_S3_KEY_ID")),
            ("APIKeySecret", peer("AFT_TEST_S3_SECRET")),
        ],
    );
}

#[test]
fn azure_big_file_goes_up_and_down_in_parallel_parts_byte_exact() {
    round_trip(
        "AzureClient",
        ("Endpoint", peer("AFT_TEST_AZURE_ENDPOINT")),
        &[
            ("AccountName", peer("AFT_TEST_AZURE_ACCOUNT")),
            ("Container", peer("AFT_TEST_AZURE_CONTAINER")),
            ("AccountKey", peer("AFT_TEST_AZURE_KEY")),
        ],
    );
}

/// fake-gcs-server: uploads are one streamed request there (no XML multipart API), so this
/// checks the parallel ranged download.
#[test]
fn gcs_big_file_downloads_in_parallel_ranges_byte_exact() {
    round_trip(
        "GCSClient",
        ("Endpoint", peer("AFT_TEST_GCS_ENDPOINT")),
        &[("Bucket", peer("AFT_TEST_GCS_BUCKET"))],
    );
}

/// A download cut off by the network part way (every connection dropped at once, three
/// quarters in) is retried in the same run, which resumes the temp file the cut left. Its
/// ranges were written at their offsets, out of order: the temp must have been cut back to
/// what is whole from byte 0, so the kept bytes match the source (a gap would not: the
/// resume compares them byte for byte). The file ends byte-exact, with the record's
/// SHA-256 its own.
#[test]
fn s3_parallel_download_cut_off_resumes_a_temp_file_without_gaps() {
    const BIG: usize = 8 * 8 * 1024 * 1024 + 77_777;
    let (proxy, fields) = s3_through_proxy();
    let aft = Aft::allowing_cli_run();
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let data = xorshift_bytes(BIG, 0x2545_F491_4F6C_DD1D);
    std::fs::write(src.path().join("big.bin"), &data).unwrap();
    let q = |s: &str| serde_json::to_string(s).unwrap();
    let dir_path = format!("/aft-cut-{}", std::process::id());
    let dir = q(&dir_path);
    run(
        &aft,
        "S3Client",
        &fields,
        &moved(
            "Upload",
            &q(src.path().join("big.bin").to_str().unwrap()),
            &dir,
        ),
    );
    proxy.take_most();

    proxy.cut_after(BIG as i64 * 3 / 4);
    let log = run(
        &aft,
        "S3Client",
        &fields,
        &moved(
            "Download",
            &q(&format!("{dir_path}/big.bin")),
            &q(out.path().to_str().unwrap()),
        ),
    );
    run(&aft, "S3Client", &fields, &format!("cli.DelTree({dir});"));

    assert!(
        log.contains("attempt(s)") && !log.contains(" 1 attempt(s)"),
        "the cut did not fail an attempt:\n{log}"
    );
    assert!(
        !log.contains("differs from the source"),
        "the kept temp file had bytes that are not the source's:\n{log}"
    );
    let back = std::fs::read(out.path().join("big.bin")).unwrap();
    assert_eq!(back.len(), BIG, "downloaded size");
    assert!(
        back == data,
        "the downloaded file differs from the uploaded one"
    );
    let b3 = blake3_file(&out.path().join("big.bin"));
    assert!(
        log.contains(&format!(", blake3 {b3}: ok")),
        "the record does not name the file's BLAKE3 {b3}:\n{log}"
    );
    eprintln!(
        "resumed: {}",
        log.lines()
            .find(|l| l.contains("resuming"))
            .unwrap_or("no (nothing whole was kept)")
    );
}

/// The S3 client's fields, reaching moto through a new counting proxy.
fn s3_through_proxy() -> (CountingProxy, Vec<(&'static str, String)>) {
    let mut proxy = None;
    let url = through(&peer("AFT_TEST_S3_ENDPOINT"), |target| {
        let p = CountingProxy::start(target);
        let addr = p.addr.clone();
        proxy = Some(p);
        addr
    });
    let fields = vec![
        ("Endpoint", url),
        ("Bucket", peer("AFT_TEST_S3_BUCKET")),
        ("Region", peer("AFT_TEST_S3_REGION")),
        ("APIKeyID", peer("AFT_TEST_S3_KEY_ID")),
        ("APIKeySecret", peer("AFT_TEST_S3_SECRET")),
    ];
    (proxy.unwrap(), fields)
}

/// `count` files of `size` bytes each up to S3 with `Upload` and back down with
/// `Download`, byte-exact; the most connections open at once during the upload and
/// during the download.
fn folder_round_trip(count: usize, size: usize) -> (usize, usize) {
    let (proxy, fields) = s3_through_proxy();
    let aft = Aft::allowing_cli_run();
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let files: Vec<Vec<u8>> = (0..count)
        .map(|i| xorshift_bytes(size, 0x51ED_270B_2762_51A3 + i as u64))
        .collect();
    for (i, data) in files.iter().enumerate() {
        std::fs::write(src.path().join(format!("f{i:03}.bin")), data).unwrap();
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let q = |s: &str| serde_json::to_string(s).unwrap();
    let dir = q(&format!("/aft-folder-{}-{nanos}", std::process::id()));
    proxy.take_most();
    run(
        &aft,
        "S3Client",
        &fields,
        &moved(
            "Upload",
            &q(&format!("{}/*", src.path().to_str().unwrap())),
            &dir,
        ),
    );
    let up = proxy.take_most();
    run(
        &aft,
        "S3Client",
        &fields,
        &moved(
            "Download",
            &format!(r#"{dir} + "/*""#),
            &q(out.path().to_str().unwrap()),
        ),
    );
    let down = proxy.take_most();
    run(&aft, "S3Client", &fields, &format!("cli.DelTree({dir});"));
    for (i, data) in files.iter().enumerate() {
        let back = std::fs::read(out.path().join(format!("f{i:03}.bin"))).unwrap();
        assert!(back == *data, "file {i} came back different");
    }
    (up, down)
}

/// Connections that 4 files at once can explain: their 4, the one `Connect()` listed on
/// (kept for reuse), and a few of finished requests still closing.
const FOUR_FILES: usize = 8;

/// Small files to and from an object store move up to 16 at once (4 elsewhere): more
/// connections open at once than 4 files at once can explain shows it.
#[test]
fn s3_small_files_move_more_than_four_at_once() {
    let (up, down) = folder_round_trip(64, 4 * 1024);
    assert!(
        up > FOUR_FILES,
        "the upload of 64 small files had at most {up} connections open at once"
    );
    assert!(
        down > FOUR_FILES,
        "the download of 64 small files had at most {down} connections open at once"
    );
}

/// Files from 1 MiB up stay at 4 at once (each may hold several parts in memory) even
/// where small ones go 16 at once.
#[test]
fn s3_files_from_one_mib_up_stay_four_at_once() {
    let (up, down) = folder_round_trip(12, 1024 * 1024 + 4096);
    assert!(
        up <= FOUR_FILES,
        "the upload of 12 files of 1 MiB had {up} connections open at once"
    );
    assert!(
        down <= FOUR_FILES,
        "the download of 12 files of 1 MiB had {down} connections open at once"
    );
}
