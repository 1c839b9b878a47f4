//! One big file over several SFTP connections (`Streams`), against the real OpenSSH sshd
//! of `ci/peers/sshd.sh`: `aft run` of a script that sets the client's `Streams` to 4
//! uploads a file well past the size from which streams are used (the last request short),
//! and a second run downloads it. Both must land byte for byte, with the SHA-256 of the
//! transfer record the file's, and no temp file left on either side. The content differs at
//! every offset, so a request written or handed on at the wrong place shows. aft reaches
//! sshd through a TCP proxy of the test's own that counts the bytes each connection carried:
//! at least three connections carrying a share of the file means its requests really took
//! turns on several connections. The proxy also holds each connection to [`RATE`], as a
//! WAN path would: one connection alone then needs seconds for the file, so the others,
//! which open while the copy has begun, join it however loaded the machine is (on
//! loopback unthrottled, a busy CI machine finished the file before they had logged in).
//! With `Streams` 1 the same transfers keep one connection, even to a far server. With
//! `Streams` not set, a download keeps one connection, and an upload's number follows the
//! round trip: one through the proxy as it is, several when it also delays every byte by
//! [`FAR`] each way, as a server across a WAN would.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::{Aft, blake3_file, peer, poll, recorded_hash, text, xorshift_bytes};

/// 64 MiB and an odd end: four times the size from which streams are used.
const SIZE: usize = 64 * 1024 * 1024 + 123_457;

/// Bytes a connection must carry to count as one that moved part of the file.
const SHARE: u64 = 1024 * 1024;

/// Bytes per second the proxy lets one connection carry each way: 4 s for the file alone.
const RATE: f64 = 16.0 * 1024.0 * 1024.0;

/// The proxy's delay each way for a far server: a round trip of 12 ms, past the 4 ms from
/// which aft counts a server as far.
const FAR: Duration = Duration::from_millis(6);

/// A TCP proxy to sshd that counts the bytes each connection carried (both ways) and
/// delays each by a fixed time each way.
struct CountingProxy {
    addr: String,
    open: Arc<AtomicU64>,
    carried: Arc<Mutex<Vec<Arc<AtomicU64>>>>,
}

impl CountingProxy {
    fn start(target: String, delay: Duration) -> CountingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let open = Arc::new(AtomicU64::new(0));
        let carried: Arc<Mutex<Vec<Arc<AtomicU64>>>> = Arc::default();
        let (o, c) = (open.clone(), carried.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                let count = Arc::new(AtomicU64::new(0));
                c.lock().unwrap().push(count.clone());
                o.fetch_add(1, Ordering::SeqCst);
                let o = o.clone();
                std::thread::spawn(move || {
                    let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                    let up_count = count.clone();
                    let up = std::thread::spawn(move || pipe(c2, s2, &up_count, delay));
                    pipe(server, client, &count, delay);
                    let _ = up.join();
                    o.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        CountingProxy {
            addr,
            open,
            carried,
        }
    }

    /// How many connections of the last run carried at least [`SHARE`] bytes, once they
    /// have all closed; counting starts anew.
    fn take_carrying(&self) -> usize {
        let closed = poll(Duration::from_secs(20), || {
            (self.open.load(Ordering::SeqCst) == 0).then_some(())
        });
        assert!(closed.is_some(), "connections of an ended run stay open");
        let counts = std::mem::take(&mut *self.carried.lock().unwrap());
        counts
            .iter()
            .filter(|c| c.load(Ordering::SeqCst) >= SHARE)
            .count()
    }
}

/// Copy `from` to `to` at no more than [`RATE`], each byte `delay` after it was read,
/// until either side ends, counting the bytes, then end both.
fn pipe(from: TcpStream, mut to: TcpStream, count: &AtomicU64, delay: Duration) {
    // A reader of its own stamps each piece as it comes, so the delay does not slow the
    // reading: the line holds a round trip's worth of bytes, as a long path does.
    let (line, pieces) = std::sync::mpsc::channel::<(Instant, Vec<u8>)>();
    let mut reading = from.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = reading.read(&mut buf) {
            if n == 0
                || line
                    .send((Instant::now() + delay, buf[..n].to_vec()))
                    .is_err()
            {
                break;
            }
        }
    });
    let (start, mut moved) = (Instant::now(), 0u64);
    for (due, piece) in pieces {
        if let Some(early) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(early);
        }
        let n = piece.len();
        if to.write_all(&piece).is_err() {
            break;
        }
        count.fetch_add(n as u64, Ordering::SeqCst);
        moved += n as u64;
        let due = Duration::from_secs_f64(moved as f64 / RATE);
        if let Some(ahead) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(ahead);
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

/// `aft run` of `body` on an `SftpClient` reaching sshd at `host`, with `Streams` =
/// `streams` (not set: `None`); the script must log `DONE`. Returns the log.
fn run(aft: &Aft, host: &str, streams: Option<u32>, body: &str) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap();
    let script = format!(
        r#"var cli = new SftpClient();
cli.Host = {host};
cli.User = {user};
cli.KeyFile = {key};
cli.HostKeySHA256 = {fp};
cli.BaseDir = {home};
{streams}cli.Options.UploadPolicy = AlwaysOverwrite;
cli.Options.DownloadPolicy = AlwaysOverwrite;
if (!cli.Connect()) {{ Log("cannot connect: " + cli.LastError()); Exit(1); }}
{body}
cli.Close();
Log("DONE");
"#,
        host = q(host),
        user = q(&peer("AFT_TEST_SFTP_USER")),
        key = q(&peer("AFT_TEST_SFTP_KEY")),
        fp = q(&peer("AFT_TEST_SFTP_HOSTKEY_SHA256")),
        home = q(&peer("AFT_TEST_SFTP_HOME")),
        streams = streams
            .map(|n| format!("cli.Streams = {n};\n"))
            .unwrap_or_default(),
    );
    let file = aft.write("streams.js", &script);
    let result = aft.run(&["run", "-f", &file]);
    let log = text(&result);
    assert!(
        result.status.success() && log.contains("DONE"),
        "{}\n{script}\n{log}",
        result.status
    );
    log
}

/// The BLAKE3 (the default digest) of the transfer record `aft run` prints.
fn recorded_blake3(log: &str) -> String {
    match recorded_hash(log) {
        Some((algo, hex)) if algo == "blake3" => hex,
        other => panic!("no BLAKE3 in the transfer record ({other:?})\n{log}"),
    }
}

/// The names in `dir` (a temp file left there would show).
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Upload and download `SIZE` bytes with `Streams` = `streams`; the connections that
/// carried a share of the file (upload, download).
fn round_trip(streams: Option<u32>, delay: Duration) -> (usize, usize) {
    let proxy = CountingProxy::start(peer("AFT_TEST_SFTP_ADDR"), delay);
    let aft = Aft::allowing_cli_run();
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let data = xorshift_bytes(SIZE, 0x2545_F491_4F6C_DD1D);
    let src_file = src.path().join("big.bin");
    std::fs::write(&src_file, &data).unwrap();
    let want = blake3_file(&src_file);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir_path =
        format!("/aft-streams-{streams:?}-{}-{nanos}", std::process::id()).replace(['(', ')'], "");
    let on_disk = Path::new(&peer("AFT_TEST_SFTP_HOME")).join(dir_path.trim_start_matches('/'));
    let q = |s: &str| serde_json::to_string(s).unwrap();
    let (dir, remote) = (q(&dir_path), q(&format!("{dir_path}/big.bin")));

    let log = run(
        &aft,
        &proxy.addr,
        streams,
        &format!(
            r#"if (!cli.Upload({src}, {dir})) {{ Log("upload failed: " + cli.LastError()); Exit(1); }}"#,
            src = q(src_file.to_str().unwrap()),
        ),
    );
    let up = proxy.take_carrying();
    assert_eq!(recorded_blake3(&log), want, "upload: the record's BLAKE3");
    let landed = std::fs::read(on_disk.join("big.bin")).unwrap();
    assert_eq!(landed.len(), SIZE, "upload: size on the server");
    assert_eq!(
        landed.iter().zip(&data).position(|(a, b)| a != b),
        None,
        "upload: the file on the server differs from the source"
    );
    drop(landed);
    assert_eq!(names(&on_disk), ["big.bin"], "upload: left on the server");

    let log = run(
        &aft,
        &proxy.addr,
        streams,
        &format!(
            r#"if (!cli.Download({remote}, {out})) {{ Log("download failed: " + cli.LastError()); Exit(1); }}"#,
            out = q(out.path().to_str().unwrap()),
        ),
    );
    let down = proxy.take_carrying();
    assert_eq!(recorded_blake3(&log), want, "download: the record's BLAKE3");
    assert_eq!(
        blake3_file(&out.path().join("big.bin")),
        want,
        "download: file"
    );
    let back = std::fs::read(out.path().join("big.bin")).unwrap();
    assert_eq!(
        back.iter().zip(&data).position(|(a, b)| a != b),
        None,
        "download: the file differs from the source"
    );
    assert_eq!(names(out.path()), ["big.bin"], "download: left locally");
    std::fs::remove_dir_all(&on_disk).unwrap();
    (up, down)
}

#[test]
fn a_big_file_goes_up_and_down_over_four_streams_byte_exact() {
    let (up, down) = round_trip(Some(4), Duration::ZERO);
    assert!(
        up >= 3,
        "the upload's requests went over {up} connection(s), not several"
    );
    assert!(
        down >= 3,
        "the download's requests went over {down} connection(s), not several"
    );
}

#[test]
fn one_stream_keeps_one_connection_even_to_a_far_server() {
    let (up, down) = round_trip(Some(1), FAR);
    assert_eq!((up, down), (1, 1), "connections that carried the file");
}

#[test]
fn by_default_a_near_server_gets_one_connection_each_way() {
    let (up, down) = round_trip(None, Duration::ZERO);
    assert_eq!((up, down), (1, 1), "connections that carried the file");
}

#[test]
fn by_default_a_far_server_gets_several_connections_up_and_one_down() {
    let (up, down) = round_trip(None, FAR);
    assert!(
        up >= 3,
        "the upload's requests went over {up} connection(s), not several"
    );
    // A download's window grows instead: one connection carried it further than four.
    assert_eq!(
        down, 1,
        "the download's requests went over {down} connections"
    );
}
