//! The fault matrix (issue 15): uploads through the real binary (`aft run`) to every backend's
//! real server, with a TCP proxy written here between `aft` and the server that resets,
//! stalls or truncates the connection at a chosen byte, and `kill -9` of `aft run` in the
//! middle of a transfer; plus a full local disk. docs/reliability.md publishes the table.
//!
//! Each cell asserts what a user relies on:
//! - no partial file under the final name (or key) at any point we look;
//! - the exit status of `aft run` (0 when a retry got through, 1 when the fault stayed);
//! - a failure names its cause (a reset, a timeout, a full disk), never "sender dropped";
//! - after the rerun (or the retry): the right bytes under the final name, no temp file and,
//!   on S3, no multipart upload left.
//!
//! Offsets count the bytes one way through one TCP connection: `login` is byte 24 of what
//! the client sends (inside the SSH key exchange, the FTP `USER` line, the TLS handshake,
//! the first HTTP request's headers); `mid` is 1.5 MB into a 3 MiB upload, within the file's
//! data; `data` is byte 262,144 (early enough that four attempts of a resumable transfer
//! cannot pass it). A fault fires `once` (the first connection that reaches the offset; the
//! transfer retries and must succeed) or `always` (every connection; the job must fail).
//! FTP's data connections go to other ports: for plain FTP the proxy rewrites the server's
//! `227` passive reply so that the data connection runs through it too (faults at `mid` and
//! `data` hit the data connection, faults at `login` the control connection); FTPS encrypts
//! its control connection, so only its login is faulted.
//!
//! Stall cells set the client's `Timeout` to [`STALL_TIMEOUT`] seconds: the proxy then goes
//! silent towards `aft` (and resets the server's side, see [`Kind::Silence`]), and the cell
//! checks that the run took at least that long and retried (a stall found, not a reset).
//! The download stall cells (FTP and the HTTP backends) go silent at byte [`EARLY`] of what
//! the server sends on every connection: the job must fail with `no data from … (Timeout)`,
//! leave nothing under the final local name, and be rerun clean.
//!
//! Backends run side by side, one thread each; cells of one backend run one after the other.
//! Every cell runs before the test judges, so one failure shows the whole table.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use support::{Aft, blake3_file, peer, poll, recorded_hash, text, xorshift_bytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::watch;

/// Size of the file of the fault cells: big enough that `mid` falls inside its data.
const SIZE: usize = 3 * 1024 * 1024;
/// Size of the kill cells' file: S3 sends it as several 8 MiB parts.
const BIG: usize = 12 * 1024 * 1024;
/// Byte of the client's stream (or the server's, for downloads) where `login` faults fire.
const LOGIN: u64 = 24;
/// Byte where `mid` faults fire.
const MID: u64 = 1_500_000;
/// Byte where lasting faults in the data fire: four attempts of a resumable transfer get
/// no further than 4 × 256 KiB.
const EARLY: u64 = 256 * 1024;
/// How long one `aft run` may take before the cell fails.
const RUN_LIMIT: Duration = Duration::from_secs(90);
/// The `Timeout` (seconds) of the stall cells: short, so that the matrix stays fast.
const STALL_TIMEOUT: u64 = 3;

// ---------------------------------------------------------------------------------------------
// The proxy

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Both sides get a TCP reset.
    Reset,
    /// Nothing more is forwarded either way; the connection stays open.
    Stall,
    /// Nothing more reaches `aft`, whose side stays open and silent; the server's side is
    /// reset (a server that froze behind a middlebox that keeps the client's connection),
    /// so the server lets go of what the connection held (vsftpd locks a file being
    /// uploaded, fake-gcs-server holds an upload) and a retry can get through.
    Silence,
    /// Both sides see the stream end (FIN) there.
    Truncate,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Way {
    /// Bytes the client (`aft`) sends: an upload's data.
    Up,
    /// Bytes the server sends: a download's data.
    Down,
}

#[derive(Clone, Copy, Debug)]
struct Fault {
    kind: Kind,
    way: Way,
    at: u64,
    /// Connections it hits: 1 (`once`) or `u32::MAX` (`always`).
    times: u32,
    /// FTP: hit the data connections rather than the control connection.
    data: bool,
}

/// A TCP relay to one server that applies one fault; stops (stalled connections included)
/// when dropped.
struct Proxy {
    addr: SocketAddr,
    /// How many connections the fault hit so far.
    fired: Arc<AtomicU32>,
    _stop: watch::Sender<bool>,
}

impl Proxy {
    /// Relay to `upstream`; `ftp`: rewrite `227` passive replies so that data connections
    /// run through a relay too.
    fn start(rt: &Runtime, upstream: SocketAddr, fault: Option<Fault>, ftp: bool) -> Proxy {
        let listener = rt
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind the proxy");
        let addr = listener.local_addr().unwrap();
        let fired = Arc::new(AtomicU32::new(0));
        let (stop, stop_rx) = watch::channel(false);
        let ctx = Relay {
            fault,
            fired: fired.clone(),
            stop: stop_rx,
            ftp,
        };
        rt.spawn(accept_loop(listener, upstream, ctx, false));
        Proxy {
            addr,
            fired,
            _stop: stop,
        }
    }

    fn fired(&self) -> u32 {
        self.fired.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
struct Relay {
    fault: Option<Fault>,
    fired: Arc<AtomicU32>,
    stop: watch::Receiver<bool>,
    ftp: bool,
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, ctx: Relay, data: bool) {
    let mut stop = ctx.stop.clone();
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { return };
                tokio::spawn(relay(client, upstream, ctx.clone(), data));
                if data {
                    return; // one data connection per passive reply
                }
            }
        }
    }
}

/// The fault of this connection, if it applies to it.
fn fault_for(ctx: &Relay, data: bool) -> Option<Fault> {
    ctx.fault.filter(|f| f.data == data)
}

/// Boxed: a relay of an FTP control connection starts relays of data connections.
fn relay(
    client: TcpStream,
    upstream: SocketAddr,
    ctx: Relay,
    data: bool,
) -> futures::future::BoxFuture<'static, ()> {
    Box::pin(relay_inner(client, upstream, ctx, data))
}

async fn relay_inner(mut client: TcpStream, upstream: SocketAddr, ctx: Relay, data: bool) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let fault = fault_for(&ctx, data);
    let mut stop = ctx.stop.clone();
    let (mut up_buf, mut down_buf) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    let (mut up, mut down) = (0u64, 0u64);
    let (mut client_open, mut server_open) = (true, true);
    while client_open || server_open {
        tokio::select! {
            _ = stop.changed() => return,
            r = client.read(&mut up_buf), if client_open => {
                let n = match r {
                    Ok(n) if n > 0 => n,
                    _ => {
                        client_open = false;
                        let _ = server.shutdown().await;
                        continue;
                    }
                };
                if let Some(f) = fault.filter(|f| f.way == Way::Up)
                    && up <= f.at
                    && f.at < up + n as u64
                    && try_fire(&ctx, f)
                {
                    let keep = (f.at - up) as usize;
                    let _ = server.write_all(&up_buf[..keep]).await;
                    apply(f.kind, client, server, stop).await;
                    return;
                }
                up += n as u64;
                if server.write_all(&up_buf[..n]).await.is_err() {
                    return;
                }
            }
            r = server.read(&mut down_buf), if server_open => {
                let n = match r {
                    Ok(n) if n > 0 => n,
                    _ => {
                        server_open = false;
                        let _ = client.shutdown().await;
                        continue;
                    }
                };
                if let Some(f) = fault.filter(|f| f.way == Way::Down)
                    && down <= f.at
                    && f.at < down + n as u64
                    && try_fire(&ctx, f)
                {
                    let keep = (f.at - down) as usize;
                    let _ = client.write_all(&down_buf[..keep]).await;
                    apply(f.kind, client, server, stop).await;
                    return;
                }
                down += n as u64;
                let mut chunk = down_buf[..n].to_vec();
                if ctx.ftp && !data {
                    chunk = passive_through_relay(&chunk, &ctx).await;
                }
                if client.write_all(&chunk).await.is_err() {
                    return;
                }
            }
        }
    }
}

fn try_fire(ctx: &Relay, f: Fault) -> bool {
    ctx.fired
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
            (n < f.times).then_some(n + 1)
        })
        .is_ok()
}

async fn apply(
    kind: Kind,
    mut client: TcpStream,
    mut server: TcpStream,
    mut stop: watch::Receiver<bool>,
) {
    match kind {
        Kind::Reset => {
            // A zero linger makes the close a reset.
            let _ = client.set_zero_linger();
            let _ = server.set_zero_linger();
        }
        Kind::Truncate => {
            let _ = server.shutdown().await;
            let _ = client.shutdown().await;
        }
        Kind::Stall => {
            // Hold both ends open, forwarding nothing, until the cell ends.
            let _ = stop.changed().await;
        }
        Kind::Silence => {
            let _ = server.set_zero_linger();
            drop(server);
            let _ = stop.changed().await;
            drop(client);
        }
    }
}

/// Rewrite a `227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)` reply so that the data
/// connection comes to a relay of ours (aft uses the control connection's address and the
/// reply's port).
async fn passive_through_relay(chunk: &[u8], ctx: &Relay) -> Vec<u8> {
    let text = String::from_utf8_lossy(chunk);
    let Some(start) = text.find("227 ") else {
        return chunk.to_vec();
    };
    let (Some(open), Some(close)) = (text[start..].find('('), text[start..].find(')')) else {
        return chunk.to_vec();
    };
    let nums: Vec<u16> = text[start + open + 1..start + close]
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    if nums.len() != 6 {
        return chunk.to_vec();
    }
    let port = nums[4] * 256 + nums[5];
    let upstream: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ours = listener.local_addr().unwrap().port();
    tokio::spawn(accept_loop(listener, upstream, ctx.clone(), true));
    let reply = format!(
        "{}({},{},{},{},{},{}){}",
        &text[..start + open],
        nums[0],
        nums[1],
        nums[2],
        nums[3],
        ours / 256,
        ours % 256,
        &text[start + close + 1..]
    );
    reply.into_bytes()
}

// ---------------------------------------------------------------------------------------------
// Backends

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Name {
    Sftp,
    Ftp,
    Ftps,
    S3,
    Azure,
    Gcs,
    WebDav,
}

struct Backend {
    name: Name,
    class: &'static str,
    /// The server's address (what the proxy relays to).
    upstream: SocketAddr,
    /// Connection fields; `{addr}` stands for the address to use (the proxy's).
    fields: Vec<(&'static str, String)>,
}

fn addr_of(url_or_addr: &str) -> SocketAddr {
    let rest = url_or_addr
        .split("://")
        .last()
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    rest.parse().unwrap()
}

impl Backend {
    fn all() -> Vec<Backend> {
        let url = |var: &str| {
            let v = peer(var);
            let a = addr_of(&v);
            (a, v.replacen(&a.to_string(), "{addr}", 1))
        };
        let (sftp, _) = (addr_of(&peer("AFT_TEST_SFTP_ADDR")), ());
        let ftp = addr_of(&peer("AFT_TEST_FTP_ADDR"));
        let (s3, s3_url) = url("AFT_TEST_S3_ENDPOINT");
        let (azure, azure_url) = url("AFT_TEST_AZURE_ENDPOINT");
        let (gcs, gcs_url) = url("AFT_TEST_GCS_ENDPOINT");
        let (dav, dav_url) = url("AFT_TEST_WEBDAV_URL");
        vec![
            Backend {
                name: Name::Sftp,
                class: "SftpClient",
                upstream: sftp,
                fields: vec![
                    ("Host", "{addr}".into()),
                    ("User", peer("AFT_TEST_SFTP_USER")),
                    ("Pass", peer("AFT_TEST_SFTP_PASS")),
                    ("HostKeySHA256", peer("AFT_TEST_SFTP_HOSTKEY_SHA256")),
                    ("BaseDir", peer("AFT_TEST_SFTP_HOME")),
                    ("Timeout", "3".into()),
                ],
            },
            Backend {
                name: Name::Ftp,
                class: "FtpClient",
                upstream: ftp,
                fields: vec![
                    ("Host", "{addr}".into()),
                    ("User", peer("AFT_TEST_FTP_USER")),
                    ("Pass", peer("AFT_TEST_FTP_PASS")),
                ],
            },
            Backend {
                name: Name::Ftps,
                class: "FtpsClient",
                upstream: ftp,
                fields: vec![
                    ("Host", "{addr}".into()),
                    ("User", peer("AFT_TEST_FTP_USER")),
                    ("Pass", peer("AFT_TEST_FTP_PASS")),
                    ("TLSMode", "TLS_MODE_EXPLICIT".into()),
                    ("TLSCAFile", peer("AFT_TEST_FTP_CA")),
                ],
            },
            Backend {
                name: Name::S3,
                class: "S3Client",
                upstream: s3,
                fields: vec![
                    ("Endpoint", s3_url),
                    ("Bucket", peer("AFT_TEST_S3_BUCKET")),
                    ("Region", peer("AFT_TEST_S3_REGION")),
                    ("APIKeyID", peer("AFT_TEST_S3_KEY_ID")),
                    ("APIKeySecret", peer("AFT_TEST_S3_SECRET")),
                ],
            },
            Backend {
                name: Name::Azure,
                class: "AzureClient",
                upstream: azure,
                fields: vec![
                    ("Endpoint", azure_url),
                    ("AccountName", peer("AFT_TEST_AZURE_ACCOUNT")),
                    ("Container", peer("AFT_TEST_AZURE_CONTAINER")),
                    ("AccountKey", peer("AFT_TEST_AZURE_KEY")),
                ],
            },
            Backend {
                name: Name::Gcs,
                class: "GCSClient",
                upstream: gcs,
                fields: vec![
                    ("Endpoint", gcs_url),
                    ("Bucket", peer("AFT_TEST_GCS_BUCKET")),
                ],
            },
            Backend {
                name: Name::WebDav,
                class: "WebDAVClient",
                upstream: dav,
                fields: vec![
                    ("Endpoint", dav_url),
                    ("User", peer("AFT_TEST_WEBDAV_USER")),
                    ("Pass", peer("AFT_TEST_WEBDAV_PASS")),
                ],
            },
        ]
    }

    fn label(&self) -> &'static str {
        match self.name {
            Name::Sftp => "sftp",
            Name::Ftp => "ftp",
            Name::Ftps => "ftps",
            Name::S3 => "s3",
            Name::Azure => "azure",
            Name::Gcs => "gcs",
            Name::WebDav => "webdav",
        }
    }

    /// The fields with `{addr}` made `addr`.
    fn fields_at(&self, addr: SocketAddr) -> Vec<(&'static str, String)> {
        self.fields
            .iter()
            .map(|(k, v)| (*k, v.replace("{addr}", &addr.to_string())))
            .collect()
    }

    /// A script that makes a client at `addr` and runs `body` with it as `c`.
    fn script(&self, addr: SocketAddr, body: &str) -> String {
        let mut s = format!("var c = new {}();\n", self.class);
        for (k, v) in self.fields_at(addr) {
            s += &format!("c.{k} = {};\n", js(&v));
        }
        s + body
    }

    /// The faults this backend's cells apply (see the module doc for FTP and FTPS).
    fn faults(&self) -> Vec<(String, Fault)> {
        let f = |kind, at, times, data| Fault {
            kind,
            way: Way::Up,
            at,
            times,
            data,
        };
        let ftp = self.name == Name::Ftp;
        let mut cells = vec![
            ("reset@login once", f(Kind::Reset, LOGIN, 1, false)),
            ("truncate@login once", f(Kind::Truncate, LOGIN, 1, false)),
            ("reset@login always", f(Kind::Reset, LOGIN, u32::MAX, false)),
        ];
        if self.name != Name::Ftps {
            cells.extend([
                ("reset@mid once", f(Kind::Reset, MID, 1, ftp)),
                ("truncate@mid once", f(Kind::Truncate, MID, 1, ftp)),
                // Early in the data: a resumable transfer (SFTP, FTP) keeps what each attempt
                // sent, so a fault at 1.5 MB of every connection is eventually passed.
                ("reset@data always", f(Kind::Reset, EARLY, u32::MAX, ftp)),
            ]);
        }
        // A server that stops answering: the cell sets `Timeout` to [`STALL_TIMEOUT`], so
        // the stalled read, write or request fails after it and is retried. FTPS's data
        // connections do not pass the proxy: its login stalls instead.
        if self.name == Name::Ftps {
            cells.push(("stall@login once", f(Kind::Silence, LOGIN, 1, false)));
        } else {
            cells.push(("stall@mid once", f(Kind::Silence, MID, 1, ftp)));
        }
        // One lasting stall, to show its error: on S3 (the HTTP transport's watch).
        if self.name == Name::S3 {
            cells.push((
                "stall@data always",
                f(Kind::Silence, EARLY, u32::MAX, false),
            ));
        }
        cells.into_iter().map(|(n, f)| (n.to_string(), f)).collect()
    }
}

fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Cells

/// One cell's result: its name, what happened, and whether it held.
struct CellResult {
    backend: String,
    cell: String,
    observed: String,
    held: Result<(), String>,
    secs: f64,
}

/// What one cell works with: its data directory, its file, its remote folder.
struct Work {
    aft: Aft,
    rt: Arc<Runtime>,
    src: PathBuf,
    content: Vec<u8>,
    remote: String,
}

fn unique(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("fm-{tag}-{}-{nanos}", std::process::id())
}

const UPLOAD: &str = r#"
var src = Param("src"), remote = Param("remote");
var name = src.substring(src.lastIndexOf("/") + 1);
if (!c.UploadFile(src, remote + "/" + name)) { Log("FAULT FAILED: " + c.LastError()); Exit(1); }
Log("FAULT OK " + name);
Exit(0);
"#;

const DOWNLOAD: &str = r#"
var from = Param("from"), to = Param("to");
if (!c.DownloadFile(from, to)) { Log("FAULT FAILED: " + c.LastError()); Exit(1); }
Log("FAULT OK");
Exit(0);
"#;

const LIST: &str = r#"
var listed = c.ListDir(Param("remote"));
// A fault during login can stop the run before it made the folder.
if (listed === null && c.LastError().indexOf("not found") >= 0) listed = [];
if (listed === null) { Log("LISTING FAILED: " + c.LastError()); Exit(1); }
Log("LISTING " + JSON.stringify(listed.map(function (f) { return [f.Name, f.Size]; })));
Exit(0);
"#;

const CLEAN: &str = r#"
c.DelTree(Param("remote"));
Exit(0);
"#;

impl Work {
    fn new(rt: Arc<Runtime>, tag: &str, len: usize) -> Work {
        let aft = Aft::allowing_cli_run();
        let remote = format!("/{}", unique(tag));
        let content = xorshift_bytes(len, tag.len() as u64 * 7919 + len as u64);
        let src = aft.path(&format!("{tag}.bin").replace(['@', ' '], "-"));
        std::fs::write(&src, &content).unwrap();
        Work {
            aft,
            rt,
            src,
            content,
            remote,
        }
    }

    fn name(&self) -> String {
        self.src.file_name().unwrap().to_str().unwrap().to_string()
    }

    /// Start `aft run` of `script` with `params`.
    fn spawn(&self, script: &str, params: &Value) -> Child {
        let file = self.aft.path(&format!("{}.syncjs", unique("s")));
        std::fs::write(&file, script).unwrap();
        self.aft
            .command(&[
                "run",
                "-f",
                file.to_str().unwrap(),
                "-p",
                &params.to_string(),
            ])
            .env("AFT_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Run `script` to its end (at most [`RUN_LIMIT`]).
    fn run(&self, script: &str, params: &Value) -> Result<Output, String> {
        finish(self.spawn(script, params))
    }

    fn upload_params(&self) -> Value {
        json!({"src": self.src.to_str().unwrap(), "remote": self.remote})
    }

    /// The remote folder's files as (name, size), straight from the server.
    fn listing(&self, b: &Backend) -> Result<Vec<(String, u64)>, String> {
        let out = self.run(&b.script(b.upstream, LIST), &json!({"remote": self.remote}))?;
        let log = text(&out);
        let line = log
            .lines()
            .find_map(|l| l.split("LISTING ").nth(1))
            .ok_or_else(|| format!("the listing failed\n{log}"))?;
        let rows: Vec<(String, u64)> =
            serde_json::from_str(line.trim()).map_err(|e| format!("bad listing {line}: {e}"))?;
        Ok(rows)
    }

    /// The remote file's bytes, downloaded straight from the server.
    fn remote_bytes(&self, b: &Backend) -> Result<Vec<u8>, String> {
        let to = self.aft.path(&unique("back"));
        let from = format!("{}/{}", self.remote, self.name());
        let out = self.run(
            &b.script(b.upstream, DOWNLOAD),
            &json!({"from": from, "to": to.to_str().unwrap()}),
        )?;
        if !out.status.success() {
            return Err(format!("downloading the result failed\n{}", text(&out)));
        }
        std::fs::read(&to).map_err(|e| e.to_string())
    }

    /// No partial file under the final name: either absent or whole.
    fn no_partial(&self, b: &Backend, listing: &[(String, u64)]) -> Result<bool, String> {
        match listing.iter().find(|(n, _)| *n == self.name()) {
            None => Ok(false),
            Some((_, size)) if *size == self.content.len() as u64 => Ok(true),
            Some((_, size)) => Err(format!(
                "{} shows {size} bytes under its final name ({} expected) on {}",
                self.name(),
                self.content.len(),
                b.label()
            )),
        }
    }

    /// After a run that must have left the whole file: right bytes, no temp file, no
    /// multipart upload.
    fn whole_and_clean(&self, b: &Backend) -> Result<(), String> {
        let listing = self.listing(b)?;
        if !self.no_partial(b, &listing)? {
            return Err(format!("{} is missing: {listing:?}", self.name()));
        }
        let extra: Vec<_> = listing.iter().filter(|(n, _)| *n != self.name()).collect();
        if !extra.is_empty() {
            return Err(format!("leftovers beside the file: {extra:?}"));
        }
        if self.remote_bytes(b)? != self.content {
            return Err("the file's bytes differ from the source".into());
        }
        self.no_multipart_uploads(b)
    }

    /// S3: no unfinished multipart upload under the cell's folder (moto answers unsigned
    /// requests).
    fn no_multipart_uploads(&self, b: &Backend) -> Result<(), String> {
        let uploads = self.multipart_uploads(b);
        if uploads.is_empty() {
            Ok(())
        } else {
            Err(format!("multipart uploads left on S3: {uploads:?}"))
        }
    }

    fn multipart_uploads(&self, b: &Backend) -> Vec<String> {
        if b.name != Name::S3 {
            return Vec::new();
        }
        let url = format!(
            "{}/{}?uploads&prefix={}",
            peer("AFT_TEST_S3_ENDPOINT"),
            peer("AFT_TEST_S3_BUCKET"),
            self.remote.trim_start_matches('/')
        );
        let body = self
            .rt
            .block_on(async { reqwest::get(&url).await.unwrap().text().await.unwrap() });
        body.split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next())
            .map(str::to_string)
            .collect()
    }

    fn clean(&self, b: &Backend) {
        let _ = self.run(
            &b.script(b.upstream, CLEAN),
            &json!({"remote": self.remote}),
        );
    }
}

/// Wait for a child (at most [`RUN_LIMIT`]); kill it when it hangs.
fn finish(mut child: Child) -> Result<Output, String> {
    let deadline = Instant::now() + RUN_LIMIT;
    loop {
        if child.try_wait().unwrap().is_some() {
            return Ok(child.wait_with_output().unwrap());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            return Err(format!(
                "aft run did not end within {RUN_LIMIT:?}\n{}",
                text(&out)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A failure names its cause.
fn named_error(log: &str) -> Result<(), String> {
    let lower = log.to_lowercase();
    if lower.contains("sender dropped") {
        return Err(format!("the error says \"sender dropped\"\n{log}"));
    }
    let failed = log
        .lines()
        .find(|l| l.contains("FAULT FAILED"))
        .ok_or_else(|| format!("no failure logged\n{log}"))?
        .to_lowercase();
    let causes = [
        "reset",
        "closed",
        "timed out",
        "timeout",
        "broken pipe",
        "end of file",
        "eof",
        "no space left",
        "disconnected",
        "connection",
    ];
    if causes.iter().any(|c| failed.contains(c)) {
        Ok(())
    } else {
        Err(format!("the failure does not name its cause: {failed}"))
    }
}

/// One fault cell: upload through a proxy with `fault`; then, if it failed, the rerun
/// straight to the server.
fn fault_cell(
    rt: &Arc<Runtime>,
    b: &Backend,
    cell: &str,
    fault: Fault,
) -> (String, Result<(), String>) {
    let stall = fault.kind == Kind::Silence;
    // FTP: vsftpd answers a data connection it lost with 426 on the control connection,
    // which aft reads once its writes are done; a file bigger than the sockets' buffers
    // keeps aft writing into the silence, which is what the cell is about.
    let size = if stall && b.name == Name::Ftp {
        BIG
    } else {
        SIZE
    };
    let work = Work::new(rt.clone(), &format!("{}-{cell}", b.label()), size);
    let proxy = Proxy::start(rt, b.upstream, Some(fault), b.name == Name::Ftp);
    let upload = if stall {
        format!("c.Timeout = {STALL_TIMEOUT};\n{UPLOAD}")
    } else {
        UPLOAD.to_string()
    };
    let result = (|| {
        let started = Instant::now();
        let out = work.run(&b.script(proxy.addr, &upload), &work.upload_params())?;
        let took = started.elapsed();
        let log = text(&out);
        if proxy.fired() == 0 {
            return Err(format!(
                "the fault never fired (the transfer did not reach byte {})\n{log}",
                fault.at
            ));
        }
        let listing = work.listing(b)?;
        let whole = work.no_partial(b, &listing)?;
        let observed;
        // A fault that fires once must be retried away, during login too (FTPS: inside
        // the TLS handshake).
        let must_retry = fault.times == 1;
        if out.status.success() && fault.times == 1 && stall {
            // The stall was detected (after `Timeout`) and retried: the transfer took more
            // than one attempt, or the connect step was tried again naming the timeout.
            let attempts = log
                .lines()
                .filter(|l| l.contains(" transfer ") && l.ends_with(": ok"))
                .find_map(|l| {
                    l.split(" attempt(s)")
                        .next()?
                        .rsplit(' ')
                        .next()?
                        .parse()
                        .ok()
                })
                .unwrap_or(1u32);
            let connect_retried = log
                .lines()
                .any(|l| l.contains("trying again") && l.to_lowercase().contains("timeout"));
            if attempts < 2 && !connect_retried {
                return Err(format!("the stall was not retried\n{log}"));
            }
            if took < Duration::from_secs(STALL_TIMEOUT) {
                return Err(format!(
                    "done in {took:?}, before the stall could be detected ({STALL_TIMEOUT} s)\n{log}"
                ));
            }
            observed = format!(
                "exit 0 (stall detected after Timeout = {STALL_TIMEOUT} s, retried; fault fired {}x)",
                proxy.fired()
            );
        } else if out.status.success() && fault.times == 1 {
            observed = format!("exit 0 (retried; fault fired {}x)", proxy.fired());
        } else if must_retry || out.status.success() {
            return Err(format!(
                "exit {} after a fault that fired {}x\n{log}",
                out.status,
                proxy.fired()
            ));
        } else {
            if out.status.code() != Some(1) {
                return Err(format!(
                    "a lasting fault: exit {} (1 expected)\n{log}",
                    out.status
                ));
            }
            named_error(&log)?;
            // The failure's record keeps what its attempts wrote.
            if fault.at != LOGIN && recorded_bytes(&log).is_none_or(|n| n == 0) {
                return Err(format!(
                    "the failure's record does not keep the bytes written\n{log}"
                ));
            }
            if whole {
                return Err(format!("the file is there after a failure\n{log}"));
            }
            // A temp file stays only to be resumed, and the job log says so.
            let leftovers: Vec<_> = listing
                .iter()
                .filter(|(n, _)| n.contains(".aft-tmp-"))
                .collect();
            let kept = log.contains("kept the temp file");
            if leftovers.len() > usize::from(kept) {
                return Err(format!(
                    "temp files left after the failure: {leftovers:?}\n{log}"
                ));
            }
            work.no_multipart_uploads(b)?;
            let error = log
                .lines()
                .find_map(|l| l.split("FAULT FAILED: ").nth(1))
                .unwrap_or("")
                .to_string();
            let rerun = work.run(&b.script(b.upstream, UPLOAD), &work.upload_params())?;
            let rerun_log = text(&rerun);
            if !rerun.status.success() {
                return Err(format!("the rerun failed\n{rerun_log}"));
            }
            let resumed = rerun_log.contains("the kept bytes match the source");
            // An empty temp (the reset came before the first write landed) has nothing to
            // resume: the rerun starts it from byte 0.
            if leftovers.iter().any(|(_, size)| *size > 0) && !resumed {
                return Err(format!(
                    "the rerun did not resume the kept temp file {leftovers:?}\n{rerun_log}"
                ));
            }
            let temp = match (leftovers.first(), resumed) {
                (Some((_, size)), true) => format!("temp {size} B kept, resumed by the rerun"),
                _ => "no temp left".into(),
            };
            let bytes = match recorded_bytes(&log) {
                Some(n) if fault.at != LOGIN => format!("record: {n} B written; "),
                _ => String::new(),
            };
            observed = format!("exit 1: {}; {bytes}{temp}; rerun exit 0", short(&error));
        }
        work.whole_and_clean(b)?;
        Ok(observed)
    })();
    drop(proxy);
    work.clean(b);
    match result {
        Ok(observed) => (observed, Ok(())),
        Err(e) => (String::new(), Err(e)),
    }
}

/// A server that goes silent in the middle of every download (byte [`EARLY`] of what it
/// sends; FTP: of the data connection) with `Timeout` = [`STALL_TIMEOUT`]: the job fails,
/// after that long, with the named `no data from … (Timeout)` error; nothing is under the
/// final local name; a temp file is kept only when the job log says so, and the rerun,
/// straight to the server, resumes it or starts clean and leaves only the whole file.
fn download_stall_cell(rt: &Arc<Runtime>, b: &Backend) -> (String, Result<(), String>) {
    let work = Work::new(rt.clone(), &format!("{}-stall-download", b.label()), SIZE);
    let local = tempfile::tempdir().unwrap();
    let to = local.path().join(work.name());
    let from = format!("{}/{}", work.remote, work.name());
    let params = json!({"from": from, "to": to.to_str().unwrap()});
    let ftp = b.name == Name::Ftp;
    let fault = Fault {
        kind: Kind::Silence,
        way: Way::Down,
        at: EARLY,
        times: u32::MAX,
        data: ftp,
    };
    let result = (|| {
        let up = work.run(&b.script(b.upstream, UPLOAD), &work.upload_params())?;
        if !up.status.success() {
            return Err(format!("the source upload failed\n{}", text(&up)));
        }
        let proxy = Proxy::start(rt, b.upstream, Some(fault), ftp);
        let download = format!("c.Timeout = {STALL_TIMEOUT};\n{DOWNLOAD}");
        let started = Instant::now();
        let out = work.run(&b.script(proxy.addr, &download), &params);
        let took = started.elapsed();
        let fired = proxy.fired();
        drop(proxy);
        let out = out?;
        let log = text(&out);
        if fired == 0 {
            return Err(format!(
                "the fault never fired (the download did not reach byte {EARLY})\n{log}"
            ));
        }
        if out.status.code() != Some(1) {
            return Err(format!(
                "a server silent mid-download: exit {} (1 expected)\n{log}",
                out.status
            ));
        }
        named_error(&log)?;
        let error = log
            .lines()
            .find_map(|l| l.split("FAULT FAILED: ").nth(1))
            .unwrap_or("")
            .to_string();
        let named = format!("for {STALL_TIMEOUT} s (Timeout)");
        if !error.contains("no data from ") || !error.contains(&named) {
            return Err(format!(
                "the error is not \"no data from … {named}\": {error}\n{log}"
            ));
        }
        if took < Duration::from_secs(STALL_TIMEOUT) {
            return Err(format!(
                "failed in {took:?}, before the stall could be detected ({STALL_TIMEOUT} s)\n{log}"
            ));
        }
        if to.exists() {
            return Err(format!(
                "{} bytes under the final local name after the failure\n{log}",
                std::fs::metadata(&to).map(|m| m.len()).unwrap_or(0)
            ));
        }
        let left = walk(local.path());
        let kept = log.contains("kept the temp file");
        if left.len() > usize::from(kept)
            || left
                .iter()
                .any(|p| !p.to_string_lossy().contains(".aft-tmp-"))
        {
            return Err(format!("left after the failure: {left:?}\n{log}"));
        }
        let rerun = work.run(&b.script(b.upstream, DOWNLOAD), &params)?;
        let rerun_log = text(&rerun);
        if !rerun.status.success() {
            return Err(format!("the rerun failed\n{rerun_log}"));
        }
        let resumed = rerun_log.contains("the kept bytes match the source");
        let kept_len = left
            .first()
            .and_then(|p| std::fs::metadata(p).ok())
            .map(|m| m.len());
        if kept_len.is_some_and(|n| n > 0) && !resumed {
            return Err(format!(
                "the rerun did not resume the kept temp file {left:?}\n{rerun_log}"
            ));
        }
        if std::fs::read(&to).unwrap_or_default() != work.content {
            return Err("the rerun's file has other bytes".into());
        }
        let after = walk(local.path());
        if after != [to.clone()] {
            return Err(format!("leftovers after the rerun: {after:?}"));
        }
        let temp = match kept_len {
            Some(n) if resumed => format!("temp {n} B kept, resumed by the rerun"),
            Some(n) => format!("temp {n} B kept, started again by the rerun"),
            None => "no temp left".into(),
        };
        Ok(format!(
            "exit 1 after {:.1} s: {}; nothing under the final name; {temp}; rerun exit 0",
            took.as_secs_f64(),
            short(&error)
        ))
    })();
    work.clean(b);
    match result {
        Ok(observed) => (observed, Ok(())),
        Err(e) => (String::new(), Err(e)),
    }
}

/// The end of an error message, where its cause is (the start repeats the paths).
fn short(s: &str) -> String {
    let chars: Vec<char> = s.trim().chars().collect();
    if chars.len() > 110 {
        format!("…{}", chars[chars.len() - 110..].iter().collect::<String>())
    } else {
        chars.into_iter().collect()
    }
}

/// `kill -9` of `aft run` while the proxy holds the upload at byte `MID`; then the rerun.
/// `damage`: change byte 1000 of the kept temp file before the rerun (SFTP: the server's
/// folder is on this machine).
fn kill_cell(rt: &Arc<Runtime>, b: &Backend, damage: bool) -> (String, Result<(), String>) {
    let tag = if damage { "kill-damaged" } else { "kill" };
    let work = Work::new(rt.clone(), &format!("{}-{tag}", b.label()), BIG);
    let fault = Fault {
        kind: Kind::Stall,
        way: Way::Up,
        // Inside S3's first 8 MiB part, on whichever connection carries it.
        at: 5 * 1024 * 1024 + 4096,
        times: 1,
        data: b.name == Name::Ftp,
    };
    let proxy = Proxy::start(rt, b.upstream, Some(fault), b.name == Name::Ftp);
    let result = (|| {
        let mut child = work.spawn(&b.script(proxy.addr, UPLOAD), &work.upload_params());
        if poll(Duration::from_secs(60), || {
            (proxy.fired() > 0).then_some(())
        })
        .is_none()
        {
            let _ = child.kill();
            return Err(format!(
                "the upload never reached byte {}\n{}",
                fault.at,
                text(&child.wait_with_output().unwrap())
            ));
        }
        child.kill().unwrap(); // SIGKILL
        let _ = child.wait();
        drop(proxy);
        let listing = work.listing(b)?;
        if work.no_partial(b, &listing)? {
            return Err("the file is whole under its final name after the kill".into());
        }
        let temps: Vec<_> = listing
            .iter()
            .filter(|(n, _)| n.contains(".aft-tmp-"))
            .cloned()
            .collect();
        let uploads = work.multipart_uploads(b);
        let left = match (temps.first(), uploads.len()) {
            (Some((_, size)), _) => format!("temp {size} B kept"),
            (None, 0) => "nothing kept".to_string(),
            (None, n) => format!("{n} multipart upload(s) kept"),
        };
        if damage {
            let Some((temp, _)) = temps.first() else {
                return Err(format!("no temp file kept: {listing:?}"));
            };
            let path = Path::new(&peer("AFT_TEST_SFTP_HOME"))
                .join(work.remote.trim_start_matches('/'))
                .join(temp);
            let mut bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            bytes[1000] ^= 0xff;
            std::fs::write(&path, &bytes).unwrap();
        }
        let rerun = work.run(&b.script(b.upstream, UPLOAD), &work.upload_params())?;
        let log = text(&rerun);
        if !rerun.status.success() {
            return Err(format!("the rerun failed\n{log}"));
        }
        let mut how = "rerun exit 0".to_string();
        if damage {
            if !log.contains("differs from the source at byte 1000; starting again from byte 0") {
                return Err(format!(
                    "the log does not say the kept part was damaged\n{log}"
                ));
            }
            how += ", damaged part found, restarted from 0";
            let recorded = recorded_blake3(&log)?;
            let truth = blake3_file(&work.src);
            if recorded != truth {
                return Err(format!(
                    "the record's BLAKE3 is {recorded}, the file's {truth}"
                ));
            }
            how += ", record hash true";
        } else if !temps.is_empty() && b.name != Name::WebDav {
            if !log.contains("the kept bytes match the source") {
                return Err(format!("the log does not say it resumed\n{log}"));
            }
            let recorded = recorded_blake3(&log)?;
            if recorded != blake3_file(&work.src) {
                return Err(format!(
                    "a resumed file's record has BLAKE3 {recorded}, not the file's"
                ));
            }
            how += ", resumed, record hash true";
        }
        work.whole_and_clean(b)?;
        Ok(format!("killed: {left}; {how}"))
    })();
    work.clean(b);
    match result {
        Ok(observed) => (observed, Ok(())),
        Err(e) => (String::new(), Err(e)),
    }
}

/// The BLAKE3 (the default digest) of the transfer record `aft run` prints.
fn recorded_blake3(log: &str) -> Result<String, String> {
    match recorded_hash(log) {
        Some((algo, hex)) if algo == "blake3" => Ok(hex),
        other => Err(format!(
            "no BLAKE3 in the transfer record ({other:?})\n{log}"
        )),
    }
}

/// The bytes of the failed transfer's record (`transfer SRC -> DST: N bytes in ...`).
fn recorded_bytes(log: &str) -> Option<u64> {
    log.lines()
        .filter(|l| l.contains(" transfer ") && l.contains(" bytes in "))
        .find_map(|l| {
            l.split(" bytes in ")
                .next()?
                .rsplit(' ')
                .next()?
                .parse()
                .ok()
        })
}

/// A full local disk: an upload bigger than an 8 MiB tmpfs fails with the disk's error and
/// leaves nothing behind (the disk is empty again); a file that fits then goes through.
fn disk_full_cell(rt: &Arc<Runtime>, _: &Backend) -> (String, Result<(), String>) {
    let work = Work::new(rt.clone(), "local-disk-full", 12 * 1024 * 1024);
    let disk = tempfile::tempdir().unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
        .arg(disk.path())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !mounted {
        return (
            String::new(),
            Err("cannot mount an 8 MiB tmpfs (the test runs as root in CI)".into()),
        );
    }
    let root = disk.path().to_str().unwrap().to_string();
    let script = format!(
        "var c = new LocalClient();\nc.Root = {};\n{UPLOAD}",
        js(&root)
    );
    let params = json!({"src": work.src.to_str().unwrap(), "remote": "/out"});
    let result = (|| {
        let out = work.run(&script, &params)?;
        let log = text(&out);
        if out.status.code() != Some(1) {
            return Err(format!(
                "exit {} on a full disk (1 expected)\n{log}",
                out.status
            ));
        }
        named_error(&log)?;
        if !log.to_lowercase().contains("no space left on device") {
            return Err(format!("the error does not say the disk is full\n{log}"));
        }
        let left: Vec<_> = walk(disk.path());
        if !left.is_empty() {
            return Err(format!("files left on the full disk: {left:?}"));
        }
        let error = log
            .lines()
            .find_map(|l| l.split("FAULT FAILED: ").nth(1))
            .unwrap_or("")
            .to_string();
        let small = xorshift_bytes(4 * 1024 * 1024, 42);
        std::fs::write(&work.src, &small).unwrap();
        let rerun = work.run(&script, &params)?;
        if !rerun.status.success() {
            return Err(format!(
                "the rerun with a file that fits failed\n{}",
                text(&rerun)
            ));
        }
        let landed = std::fs::read(disk.path().join("out").join(work.name())).unwrap_or_default();
        if landed != small {
            return Err("the rerun's file has other bytes".into());
        }
        let left: Vec<_> = walk(disk.path())
            .into_iter()
            .filter(|p| !p.ends_with(work.name()))
            .collect();
        if !left.is_empty() {
            return Err(format!("leftovers after the rerun: {left:?}"));
        }
        Ok(format!(
            "exit 1: {}; disk empty again; rerun (4 MiB) exit 0",
            short(&error)
        ))
    })();
    let _ = Command::new("umount").arg(disk.path()).status();
    match result {
        Ok(observed) => (observed, Ok(())),
        Err(e) => (String::new(), Err(e)),
    }
}

/// The files below `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// `kill -9` of a download from SFTP to local disk while the proxy holds it at 5 MiB: the
/// local temp file is kept and the rerun resumes it.
fn local_kill_cell(rt: &Arc<Runtime>, b: &Backend) -> (String, Result<(), String>) {
    let work = Work::new(rt.clone(), "local-kill", BIG);
    let local = tempfile::tempdir().unwrap();
    let to = local.path().join(work.name());
    let from = format!("{}/{}", work.remote, work.name());
    let params = json!({"from": from, "to": to.to_str().unwrap()});
    let result = (|| {
        let up = work.run(&b.script(b.upstream, UPLOAD), &work.upload_params())?;
        if !up.status.success() {
            return Err(format!("the source upload failed\n{}", text(&up)));
        }
        let fault = Fault {
            kind: Kind::Stall,
            way: Way::Down,
            at: 5 * 1024 * 1024,
            times: 1,
            data: false,
        };
        let proxy = Proxy::start(rt, b.upstream, Some(fault), false);
        let mut child = work.spawn(&b.script(proxy.addr, DOWNLOAD), &params);
        if poll(Duration::from_secs(60), || {
            (proxy.fired() > 0).then_some(())
        })
        .is_none()
        {
            let _ = child.kill();
            return Err(format!(
                "the download never reached byte {}\n{}",
                fault.at,
                text(&child.wait_with_output().unwrap())
            ));
        }
        child.kill().unwrap();
        let _ = child.wait();
        drop(proxy);
        if to.exists() {
            return Err("the file is under its final name after the kill".into());
        }
        let kept = walk(local.path());
        if kept.len() != 1 || !kept[0].to_string_lossy().contains(".aft-tmp-") {
            return Err(format!("expected one kept temp file: {kept:?}"));
        }
        let kept_len = std::fs::metadata(&kept[0]).unwrap().len();
        let rerun = work.run(&b.script(b.upstream, DOWNLOAD), &params)?;
        let log = text(&rerun);
        if !rerun.status.success() {
            return Err(format!("the rerun failed\n{log}"));
        }
        if !log.contains("the kept bytes match the source") {
            return Err(format!("the log does not say it resumed\n{log}"));
        }
        if std::fs::read(&to).unwrap_or_default() != work.content {
            return Err("the downloaded file has other bytes".into());
        }
        if recorded_blake3(&log)? != blake3_file(&work.src) {
            return Err("the record's BLAKE3 is not the file's".into());
        }
        let left = walk(local.path());
        if left.len() != 1 {
            return Err(format!("leftovers after the rerun: {left:?}"));
        }
        Ok(format!(
            "killed: temp {kept_len} B kept; rerun exit 0, resumed, record hash true"
        ))
    })();
    work.clean(b);
    match result {
        Ok(observed) => (observed, Ok(())),
        Err(e) => (String::new(), Err(e)),
    }
}

/// The sweep: a temp file untouched for two days in a target folder is deleted by the
/// next transfer into that folder; a fresh one (a transfer that may still be writing) is
/// kept. On SFTP, whose folder is on this machine.
fn sweep_cell(rt: &Arc<Runtime>, b: &Backend) -> (String, Result<(), String>) {
    let work = Work::new(rt.clone(), "sftp-sweep", 64 * 1024);
    let result = (|| {
        let first = work.run(&b.script(b.upstream, UPLOAD), &work.upload_params())?;
        if !first.status.success() {
            return Err(format!("the first upload failed\n{}", text(&first)));
        }
        let dir = Path::new(&peer("AFT_TEST_SFTP_HOME")).join(work.remote.trim_start_matches('/'));
        let stale = dir.join("gone.bin.aft-tmp-0123456789ab");
        let fresh = dir.join("busy.bin.aft-tmp-ba9876543210");
        std::fs::write(&stale, b"left by a killed run").unwrap();
        std::fs::write(&fresh, b"being written").unwrap();
        let touched = Command::new("touch")
            .args(["-d", "2 days ago"])
            .arg(&stale)
            .status()
            .unwrap();
        assert!(touched.success());
        std::fs::write(&work.src, xorshift_bytes(64 * 1024, 7)).unwrap();
        let renamed = work.src.with_file_name("second.bin");
        std::fs::rename(&work.src, &renamed).unwrap();
        let params = json!({"src": renamed.to_str().unwrap(), "remote": work.remote});
        let second = work.run(&b.script(b.upstream, UPLOAD), &params)?;
        let log = text(&second);
        if !second.status.success() {
            return Err(format!("the second upload failed\n{log}"));
        }
        if stale.exists() {
            return Err(format!("the two-day-old temp file is still there\n{log}"));
        }
        if !fresh.exists() {
            return Err("the fresh temp file was deleted".into());
        }
        if !log.contains("removed the stale temp file") {
            return Err(format!("the job log does not name the removed file\n{log}"));
        }
        Ok("2-day-old temp removed and logged; fresh temp kept".to_string())
    })();
    work.clean(b);
    match result {
        Ok(observed) => (observed, Ok(())),
        Err(e) => (String::new(), Err(e)),
    }
}

/// All of one backend's cells, one after the other.
fn backend_cells(rt: &Arc<Runtime>, b: &Backend) -> Vec<CellResult> {
    let mut results = Vec::new();
    let mut record =
        |cell: String, started: Instant, (observed, held): (String, Result<(), String>)| {
            results.push(CellResult {
                backend: b.label().to_string(),
                cell,
                observed,
                held,
                secs: started.elapsed().as_secs_f64(),
            });
        };
    for (cell, fault) in b.faults() {
        let started = Instant::now();
        record(cell.clone(), started, fault_cell(rt, b, &cell, fault));
    }
    if b.name != Name::Ftps {
        let started = Instant::now();
        record(
            "kill -9 mid-upload".into(),
            started,
            kill_cell(rt, b, false),
        );
    }
    // A server silent mid-download. FTPS's data connections do not pass the proxy.
    if matches!(
        b.name,
        Name::Ftp | Name::S3 | Name::Azure | Name::Gcs | Name::WebDav
    ) {
        let started = Instant::now();
        record(
            "stall@data always, download".into(),
            started,
            download_stall_cell(rt, b),
        );
    }
    if b.name == Name::Sftp {
        let started = Instant::now();
        record(
            "kill -9, kept part damaged at byte 1000".into(),
            started,
            kill_cell(rt, b, true),
        );
        let started = Instant::now();
        record("stale temp swept".into(), started, sweep_cell(rt, b));
    }
    results
}

/// The local disk's cells (the download's source is SFTP).
fn local_cells(rt: &Arc<Runtime>, sftp: &Backend) -> Vec<CellResult> {
    let mut results = Vec::new();
    for (cell, run) in [
        (
            "disk full (8 MiB tmpfs)",
            disk_full_cell as fn(&Arc<Runtime>, &Backend) -> _,
        ),
        ("kill -9 mid-download", local_kill_cell),
    ] {
        let started = Instant::now();
        let (observed, held) = run(rt, sftp);
        results.push(CellResult {
            backend: "local".into(),
            cell: cell.into(),
            observed,
            held,
            secs: started.elapsed().as_secs_f64(),
        });
    }
    results
}

/// Print the table (docs/reliability.md copies it) and fail with every failed cell.
fn report(results: &[CellResult], took: Duration) {
    println!("| backend | cell | held | observed | s |");
    println!("|---|---|---|---|---|");
    for r in results {
        println!(
            "| {} | {} | {} | {} | {:.1} |",
            r.backend,
            r.cell,
            if r.held.is_ok() { "yes" } else { "**no**" },
            r.observed.replace('|', "/"),
            r.secs
        );
    }
    println!("{} cells in {:.0} s", results.len(), took.as_secs_f64());
    let failed: Vec<String> = results
        .iter()
        .filter_map(|r| {
            r.held
                .as_ref()
                .err()
                .map(|e| format!("{} / {}: {e}", r.backend, r.cell))
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} cells failed:\n\n{}",
        failed.len(),
        failed.join("\n\n")
    );
}

#[test]
fn every_backend_under_resets_stalls_truncation_and_kill_9() {
    let started = Instant::now();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
    );
    let backends = Backend::all();
    let results: Vec<CellResult> = std::thread::scope(|s| {
        let mut handles: Vec<_> = backends
            .iter()
            .map(|b| {
                let rt = rt.clone();
                s.spawn(move || backend_cells(&rt, b))
            })
            .collect();
        let local_rt = rt.clone();
        let sftp = &backends[0];
        handles.push(s.spawn(move || local_cells(&local_rt, sftp)));
        handles
            .into_iter()
            .zip(backends.iter().map(Backend::label).chain(["local"]))
            .flat_map(|(h, label)| {
                h.join().unwrap_or_else(|panic| {
                    let why = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    vec![CellResult {
                        backend: label.to_string(),
                        cell: "(all)".into(),
                        observed: String::new(),
                        held: Err(format!("the cells panicked: {why}")),
                        secs: 0.0,
                    }]
                })
            })
            .collect()
    });
    report(&results, started.elapsed());
}
