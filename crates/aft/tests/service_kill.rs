//! `kill -9` of `aft serve` in the middle of uploads (issue 15), through the real binary
//! against real servers: three jobs of one service upload a 12 MiB file each, to SFTP
//! (OpenSSH), S3 (moto) and GCS (fake-gcs-server), each through a TCP relay written here that
//! holds the upload at byte 5 MiB. With all three held, the service is killed with SIGKILL
//! and started again on the same data directory.
//!
//! What must hold (docs/operations.md, docs/reliability.md):
//! - nothing partial under a final name or key while the service is down;
//! - after the restart, no job is left `running`: the retry-safe jobs (SFTP, GCS) are queued
//!   again and succeed at attempt 2, the SFTP one resuming the temp file the killed run
//!   kept; the other (S3) is recorded `interrupted`, once;
//! - after the reruns: the right bytes under the final names, no temp file beside them, and
//!   no unfinished multipart upload left on S3 (the rerun aborts the killed one's).

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde_json::{Value, json};
use support::{Aft, Service, call, peer, poll, wait_job, xorshift_bytes};

/// The size of each uploaded file: S3 sends it as two parts of 8 MiB and 4 MiB.
const SIZE: usize = 12 * 1024 * 1024;
/// Where the relays hold each upload: inside S3's first part.
const HOLD_AT: u64 = 5 * 1024 * 1024 + 4096;

// ---------------------------------------------------------------------------------------------
// A relay that holds the first connection to reach a byte

/// A TCP relay to `upstream`. The first connection whose client side reaches byte `at`
/// is held there: nothing more is forwarded, what the client sends is read and dropped, and
/// when the client goes away (the service killed) the server's side is closed, as the
/// kernel of a crashed machine's peer would see it. Other connections pass untouched.
struct HoldingRelay {
    addr: SocketAddr,
    /// Connections held so far (at most 1).
    held: Arc<AtomicU32>,
    /// The held connection's client went away.
    client_gone: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl HoldingRelay {
    fn start(upstream: SocketAddr, at: u64) -> HoldingRelay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let relay = HoldingRelay {
            addr,
            held: Arc::default(),
            client_gone: Arc::default(),
            stop: Arc::default(),
        };
        let (held, gone, stop) = (
            relay.held.clone(),
            relay.client_gone.clone(),
            relay.stop.clone(),
        );
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let (held, gone, stop) = (held.clone(), gone.clone(), stop.clone());
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || up(client, server, at, &held, &gone, &stop));
                std::thread::spawn(move || copy(s2, c2));
            }
        });
        relay
    }

    fn held(&self) -> bool {
        self.held.load(Ordering::SeqCst) > 0
    }

    fn client_gone(&self) -> bool {
        self.client_gone.load(Ordering::SeqCst)
    }
}

impl Drop for HoldingRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Client to server, holding at byte `at` of the first connection that reaches it.
fn up(
    mut client: TcpStream,
    mut server: TcpStream,
    at: u64,
    held: &AtomicU32,
    gone: &AtomicBool,
    stop: &AtomicBool,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut sent = 0u64;
    loop {
        let n = match client.read(&mut buf) {
            Ok(n) if n > 0 => n,
            _ => break,
        };
        if sent + n as u64 > at
            && held
                .compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            let keep = (at - sent) as usize;
            let _ = server.write_all(&buf[..keep]);
            // Held: read and drop until the client is gone (or the test ends).
            client
                .set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            while !stop.load(Ordering::SeqCst) {
                match client.read(&mut buf) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(_) => break,
                }
            }
            gone.store(true, Ordering::SeqCst);
            break;
        }
        sent += n as u64;
        if server.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = server.shutdown(Shutdown::Both);
    let _ = client.shutdown(Shutdown::Both);
}

fn copy(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 || to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
}

// ---------------------------------------------------------------------------------------------
// Backends, files and what the servers hold

fn addr_of(url_or_addr: &str) -> SocketAddr {
    let rest = url_or_addr.split("://").last().unwrap();
    rest.split('/').next().unwrap().parse().unwrap()
}

fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// A script that uploads `Param("src")` into folder `Param("remote")` with a client made
/// by `client` (JavaScript that sets `c`).
fn upload_script(client: &str) -> String {
    format!(
        r#"{client}
var src = Param("src"), remote = Param("remote");
var name = src.substring(src.lastIndexOf("/") + 1);
Log("uploading " + name);
if (!c.UploadFile(src, remote + "/" + name)) {{ Log("UPLOAD FAILED: " + c.LastError()); Exit(1); }}
Log("UPLOADED " + name);
"#
    )
}

fn sftp_client(addr: SocketAddr) -> String {
    format!(
        "var c = new SftpClient();\nc.Host = {};\nc.User = {};\nc.Pass = {};\nc.HostKeySHA256 = {};\nc.BaseDir = {};\nc.Timeout = 5;",
        js(&addr.to_string()),
        js(&peer("AFT_TEST_SFTP_USER")),
        js(&peer("AFT_TEST_SFTP_PASS")),
        js(&peer("AFT_TEST_SFTP_HOSTKEY_SHA256")),
        js(&peer("AFT_TEST_SFTP_HOME")),
    )
}

fn s3_client(addr: SocketAddr) -> String {
    format!(
        "var c = new S3Client();\nc.Endpoint = {};\nc.Bucket = {};\nc.Region = {};\nc.APIKeyID = {};\nc.APIKeySecret = {};",
        js(&format!("http://{addr}")),
        js(&peer("AFT_TEST_S3_BUCKET")),
        js(&peer("AFT_TEST_S3_REGION")),
        js(&peer("AFT_TEST_S3_KEY_ID")),
        js(&peer("AFT_TEST_S3_SECRET")),
    )
}

fn gcs_client(addr: SocketAddr) -> String {
    format!(
        "var c = new GCSClient();\nc.Endpoint = {};\nc.Bucket = {};",
        js(&format!("http://{addr}")),
        js(&peer("AFT_TEST_GCS_BUCKET")),
    )
}

fn unique(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("sk-{tag}-{}-{nanos}", std::process::id())
}

/// One backend's upload: its local source, its remote folder (no leading slash) and the
/// file name under it.
struct Upload {
    src: PathBuf,
    bytes: Vec<u8>,
    folder: String,
    name: String,
}

impl Upload {
    fn new(aft: &Aft, tag: &str, seed: u64) -> Upload {
        let name = format!("{tag}.bin");
        let src = aft.path(&name);
        let bytes = xorshift_bytes(SIZE, seed);
        std::fs::write(&src, &bytes).unwrap();
        Upload {
            src,
            bytes,
            folder: unique(tag),
            name,
        }
    }

    fn key(&self) -> String {
        format!("{}/{}", self.folder, self.name)
    }

    fn params(&self) -> Value {
        json!({"src": self.src.to_str().unwrap(), "remote": format!("/{}", self.folder)})
    }
}

/// The SFTP folder's files as (name, size), read from the server's disk.
fn sftp_files(u: &Upload) -> Vec<(String, u64)> {
    let dir = Path::new(&peer("AFT_TEST_SFTP_HOME")).join(&u.folder);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<(String, u64)> = entries
        .map(|e| e.unwrap())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    files.sort();
    files
}

/// moto answers unsigned requests.
async fn s3_get(http: &reqwest::Client, path_and_query: &str) -> (u16, Vec<u8>) {
    let url = format!(
        "{}/{}/{path_and_query}",
        peer("AFT_TEST_S3_ENDPOINT"),
        peer("AFT_TEST_S3_BUCKET")
    );
    let resp = http.get(url).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.bytes().await.unwrap().to_vec())
}

/// The unfinished multipart uploads under the upload's folder.
async fn s3_multipart_uploads(http: &reqwest::Client, u: &Upload) -> Vec<String> {
    let (status, body) = s3_get(http, &format!("?uploads&prefix={}/", u.folder)).await;
    assert_eq!(status, 200);
    String::from_utf8_lossy(&body)
        .split("<Key>")
        .skip(1)
        .filter_map(|s| s.split("</Key>").next())
        .map(str::to_string)
        .collect()
}

/// The GCS objects under the upload's folder as (name, size), from the JSON API; the
/// folder's own marker (`folder/`, made by the upload's `MakeDir` of its parent) left out.
async fn gcs_objects(http: &reqwest::Client, u: &Upload) -> Vec<(String, u64)> {
    let url = format!(
        "{}/storage/v1/b/{}/o?prefix={}/",
        peer("AFT_TEST_GCS_ENDPOINT"),
        peer("AFT_TEST_GCS_BUCKET"),
        u.folder
    );
    let list: Value = http.get(url).send().await.unwrap().json().await.unwrap();
    list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|o| {
                    (
                        o["name"].as_str().unwrap().to_string(),
                        o["size"].as_str().unwrap().parse().unwrap(),
                    )
                })
                .filter(|(name, _): &(String, u64)| !name.ends_with('/'))
                .collect()
        })
        .unwrap_or_default()
}

async fn gcs_bytes(http: &reqwest::Client, u: &Upload) -> Vec<u8> {
    let url = format!(
        "{}/storage/v1/b/{}/o/{}?alt=media",
        peer("AFT_TEST_GCS_ENDPOINT"),
        peer("AFT_TEST_GCS_BUCKET"),
        u.key().replace('/', "%2F")
    );
    let resp = http.get(url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    resp.bytes().await.unwrap().to_vec()
}

// ---------------------------------------------------------------------------------------------
// The service

async fn queue(svc: &Service, key: &str, script: &str, params: &Value) -> String {
    let (status, body) = call(
        &svc.client(),
        Method::POST,
        &format!("{}/v1/jobs", svc.base()),
        Some(("X-API-Key", key)),
        Some(&json!({"scriptName": script, "params": params})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    body["jobId"].as_str().unwrap().to_string()
}

async fn get(svc: &Service, key: &str, path: &str) -> Value {
    let (status, body) = call(
        &svc.client(),
        Method::GET,
        &format!("{}{path}", svc.base()),
        Some(("X-API-Key", key)),
        None,
    )
    .await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// The job's log lines as one text.
async fn log_text(svc: &Service, key: &str, id: &str) -> String {
    let log = get(svc, key, &format!("/v1/jobs/{id}/log")).await;
    log["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap_or_default().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_service_mid_upload_leaves_nothing_partial_and_every_job_true() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let aft = Aft::new();
    let sftp = Upload::new(&aft, "sftp", 11);
    let s3 = Upload::new(&aft, "s3", 23);
    let gcs = Upload::new(&aft, "gcs", 37);
    let sftp_relay = HoldingRelay::start(addr_of(&peer("AFT_TEST_SFTP_ADDR")), HOLD_AT);
    let s3_relay = HoldingRelay::start(addr_of(&peer("AFT_TEST_S3_ENDPOINT")), HOLD_AT);
    let gcs_relay = HoldingRelay::start(addr_of(&peer("AFT_TEST_GCS_ENDPOINT")), HOLD_AT);

    // SFTP and GCS: retry-safe (an upload may run twice); S3: not marked.
    let file = aft.write("sftp.syncjs", &upload_script(&sftp_client(sftp_relay.addr)));
    aft.ok(&["script", "push", "--retry-safe", "SftpUp", &file]);
    let file = aft.write("gcs.syncjs", &upload_script(&gcs_client(gcs_relay.addr)));
    aft.ok(&["script", "push", "--retry-safe", "GcsUp", &file]);
    aft.push_script("S3Up", &upload_script(&s3_client(s3_relay.addr)));
    let key = aft.create_key("ci", "127.0.0.1");

    let mut svc = aft.serve();
    let sftp_job = queue(&svc, &key, "SftpUp", &sftp.params()).await;
    let s3_job = queue(&svc, &key, "S3Up", &s3.params()).await;
    let gcs_job = queue(&svc, &key, "GcsUp", &gcs.params()).await;
    let relays = [&sftp_relay, &s3_relay, &gcs_relay];
    let all_held = poll(Duration::from_secs(90), || {
        relays.iter().all(|r| r.held()).then_some(())
    });
    assert!(
        all_held.is_some(),
        "the uploads did not all reach byte {HOLD_AT}: sftp {}, s3 {}, gcs {}",
        sftp_relay.held(),
        s3_relay.held(),
        gcs_relay.held()
    );
    for id in [&sftp_job, &s3_job, &gcs_job] {
        let job = get(&svc, &key, &format!("/v1/jobs/{id}")).await;
        assert_eq!(job["status"], "running", "{job}");
    }
    svc.kill9();
    let gone = poll(Duration::from_secs(10), || {
        relays.iter().all(|r| r.client_gone()).then_some(())
    });
    assert!(
        gone.is_some(),
        "the killed service's connections stayed open"
    );

    // While the service is down: nothing under a final name or key.
    let files = sftp_files(&sftp);
    assert!(
        !files.iter().any(|(n, _)| *n == sftp.name),
        "SFTP shows the file under its final name after the kill: {files:?}"
    );
    let kept: Vec<_> = files
        .iter()
        .filter(|(n, size)| n.contains(".aft-tmp-") && *size > 0)
        .collect();
    assert_eq!(
        kept.len(),
        1,
        "the killed SFTP upload's temp file: {files:?}"
    );
    let (status, _) = s3_get(&http, &s3.key()).await;
    assert_eq!(
        status, 404,
        "S3 shows an object under the key after the kill"
    );
    let unfinished = s3_multipart_uploads(&http, &s3).await;
    assert_eq!(
        unfinished,
        vec![s3.key()],
        "the killed S3 upload's multipart upload"
    );
    let objects = gcs_objects(&http, &gcs).await;
    assert!(
        objects.is_empty(),
        "GCS shows objects after the kill: {objects:?}"
    );

    // Started again on the same data directory.
    let svc = Service::start(aft.data(), &[], &[]);
    let auth = ("X-API-Key", key.as_str());
    let done = wait_job(&svc.client(), &svc.base(), auth, &sftp_job).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["attempts"], 2, "{done}");
    let done = wait_job(&svc.client(), &svc.base(), auth, &gcs_job).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["attempts"], 2, "{done}");
    let interrupted = wait_job(&svc.client(), &svc.base(), auth, &s3_job).await;
    assert_eq!(interrupted["status"], "interrupted", "{interrupted}");
    assert_eq!(interrupted["attempts"], 1, "{interrupted}");
    let jobs = get(&svc, &key, "/v1/jobs").await;
    let jobs = jobs.as_array().or_else(|| jobs["jobs"].as_array()).unwrap();
    assert!(
        jobs.iter()
            .all(|j| !matches!(j["status"].as_str(), Some("running" | "queued"))),
        "jobs left running or queued: {jobs:?}"
    );

    // SFTP: the retry resumed the kept temp file; the whole file, nothing beside it.
    let log = log_text(&svc, &key, &sftp_job).await;
    for line in ["attempt 2", "the kept bytes match the source", "UPLOADED"] {
        assert!(
            log.contains(line),
            "{line:?} missing from the SFTP job log:\n{log}"
        );
    }
    assert_eq!(sftp_files(&sftp), vec![(sftp.name.clone(), SIZE as u64)]);
    let dir = Path::new(&peer("AFT_TEST_SFTP_HOME")).join(&sftp.folder);
    assert!(std::fs::read(dir.join(&sftp.name)).unwrap() == sftp.bytes);

    // GCS: the retry wrote the whole object; nothing else under the folder.
    assert_eq!(
        gcs_objects(&http, &gcs).await,
        vec![(gcs.key(), SIZE as u64)]
    );
    assert!(gcs_bytes(&http, &gcs).await == gcs.bytes);

    // S3: a new run of the interrupted job's script succeeds and aborts the killed
    // upload's parts.
    let rerun = queue(&svc, &key, "S3Up", &s3.params()).await;
    let done = wait_job(&svc.client(), &svc.base(), auth, &rerun).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let (status, body) = s3_get(&http, &s3.key()).await;
    assert_eq!(status, 200);
    assert!(
        body == s3.bytes,
        "the S3 object's bytes differ from the source"
    );
    let left = s3_multipart_uploads(&http, &s3).await;
    assert!(left.is_empty(), "multipart uploads left on S3: {left:?}");
    let health = get(&svc, &key, "/v1/health").await;
    assert_eq!(health["runningJobs"], 0, "{health}");

    std::fs::remove_dir_all(dir).unwrap();
}

// ---------------------------------------------------------------------------------------------
// GCS's XML multipart API, which fake-gcs-server lacks

/// What a stand-in for GCS's XML multipart API holds: unfinished uploads (id → key and
/// parts), the ids aborted, and what it saw.
#[derive(Default)]
struct XmlState {
    uploads: std::collections::BTreeMap<String, (String, std::collections::BTreeMap<u32, Vec<u8>>)>,
    next_id: u32,
    aborted: Vec<String>,
    parts_stored: u32,
    /// Parts held without an answer (the first part after part 1 is held, once).
    held: u32,
    /// XML calls without the token the credentials file leads to.
    unauthorised: u32,
}

/// GCS as aft reaches it with a `CredentialsFile`: a token endpoint (`token_url` of an
/// external-account credentials file), the XML multipart calls of real GCS (initiate,
/// upload part, complete, abort, list) answered here after Google's documentation, the
/// completed object written into fake-gcs-server, and every JSON-API call passed on to it.
struct GcsXml {
    state: std::sync::Mutex<XmlState>,
    upstream: String,
    bucket: String,
    client: reqwest::Client,
}

const TOKEN: &str = "ya29.service-kill-test";

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(n) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(n);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn xml(status: u16, body: String) -> axum::response::Response {
    axum::response::Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .header("etag", "\"0f343b0931126a20f133d67c2b018a3b\"")
        .body(axum::body::Body::from(body))
        .unwrap()
}

async fn gcs_xml(
    axum::extract::State(shim): axum::extract::State<Arc<GcsXml>>,
    method: Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    let url = reqwest::Url::parse(&format!("http://shim{uri}")).unwrap();
    let query: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    if uri.path() == "/token" {
        let token = json!({"access_token": TOKEN, "expires_in": 3600, "token_type": "Bearer",
            "issued_token_type": "urn:ietf:params:oauth:token-type:access_token"});
        return axum::response::Response::builder()
            .header("content-type", "application/json")
            .body(axum::body::Body::from(token.to_string()))
            .unwrap();
    }
    let bucket_path = format!("/{}", shim.bucket);
    let xml_call = query.contains_key("uploads") || query.contains_key("uploadId");
    if xml_call && uri.path().starts_with(&bucket_path) {
        let authorised = headers
            .get("authorization")
            .is_some_and(|v| v.as_bytes() == format!("Bearer {TOKEN}").as_bytes());
        if !authorised {
            shim.state.lock().unwrap().unauthorised += 1;
            return xml(
                401,
                "<Error><Code>AuthenticationRequired</Code></Error>".into(),
            );
        }
        // opendal encodes the key's slashes (`%2F`); aft's own calls keep them.
        let key = percent_decode(
            uri.path()
                .strip_prefix(&bucket_path)
                .unwrap()
                .trim_start_matches('/'),
        );
        let upload_id = query.get("uploadId").cloned();
        match (method.as_str(), upload_id) {
            ("GET", None) => {
                let prefix = query.get("prefix").cloned().unwrap_or_default();
                let state = shim.state.lock().unwrap();
                let uploads: String = state
                    .uploads
                    .iter()
                    .filter(|(_, (k, _))| k.starts_with(&prefix))
                    .map(|(id, (k, _))| {
                        format!("<Upload><Key>{k}</Key><UploadId>{id}</UploadId><Initiated>2026-12-05T12:00:00.000Z</Initiated></Upload>")
                    })
                    .collect();
                return xml(
                    200,
                    format!(
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListMultipartUploadsResult><Bucket>{}</Bucket>{uploads}</ListMultipartUploadsResult>",
                        shim.bucket
                    ),
                );
            }
            ("POST", None) => {
                let mut state = shim.state.lock().unwrap();
                state.next_id += 1;
                let id = format!("ABPnzm{}", state.next_id);
                state
                    .uploads
                    .insert(id.clone(), (key.clone(), Default::default()));
                return xml(
                    200,
                    format!(
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><InitiateMultipartUploadResult><Bucket>{}</Bucket><Key>{key}</Key><UploadId>{id}</UploadId></InitiateMultipartUploadResult>",
                        shim.bucket
                    ),
                );
            }
            ("PUT", Some(id)) => {
                let part: u32 = query["partNumber"].parse().unwrap();
                let hold = {
                    let mut state = shim.state.lock().unwrap();
                    let hold = part > 1 && state.held == 0;
                    if hold {
                        state.held += 1;
                    }
                    hold
                };
                if hold {
                    // Never answered: the uploader is killed while it waits.
                    std::future::pending::<()>().await;
                }
                let mut state = shim.state.lock().unwrap();
                let Some((_, parts)) = state.uploads.get_mut(&id) else {
                    return xml(404, "<Error><Code>NoSuchUpload</Code></Error>".into());
                };
                parts.insert(part, body.to_vec());
                state.parts_stored += 1;
                return xml(200, String::new());
            }
            ("POST", Some(id)) => {
                let Some((key, parts)) = shim.state.lock().unwrap().uploads.remove(&id) else {
                    return xml(404, "<Error><Code>NoSuchUpload</Code></Error>".into());
                };
                let whole: Vec<u8> = parts.into_values().flatten().collect();
                let mut put = reqwest::Url::parse(&format!(
                    "{}/upload/storage/v1/b/{}/o",
                    shim.upstream, shim.bucket
                ))
                .unwrap();
                put.query_pairs_mut()
                    .append_pair("uploadType", "media")
                    .append_pair("name", &key);
                let resp = shim.client.post(put).body(whole).send().await.unwrap();
                assert!(resp.status().is_success(), "{:?}", resp.text().await);
                return xml(
                    200,
                    format!(
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><CompleteMultipartUploadResult><Bucket>{}</Bucket><Key>{key}</Key><ETag>\"0f343b0931126a20f133d67c2b018a3b-2\"</ETag></CompleteMultipartUploadResult>",
                        shim.bucket
                    ),
                );
            }
            ("DELETE", Some(id)) => {
                let mut state = shim.state.lock().unwrap();
                if state.uploads.remove(&id).is_none() {
                    return xml(404, "<Error><Code>NoSuchUpload</Code></Error>".into());
                }
                state.aborted.push(id);
                return xml(204, String::new());
            }
            _ => return xml(400, "<Error><Code>InvalidArgument</Code></Error>".into()),
        }
    }
    // The JSON API: fake-gcs-server's.
    let mut req = shim
        .client
        .request(method, format!("{}{uri}", shim.upstream))
        .body(body);
    for (name, value) in &headers {
        if !matches!(name.as_str(), "host" | "authorization" | "content-length") {
            req = req.header(name, value);
        }
    }
    let resp = req.send().await.unwrap();
    let mut out = axum::response::Response::builder().status(resp.status().as_u16());
    if let Some(t) = resp.headers().get("content-type") {
        out = out.header("content-type", t);
    }
    out.body(axum::body::Body::from(resp.bytes().await.unwrap()))
        .unwrap()
}

/// A GCS upload killed between its parts (the service killed by SIGKILL) leaves a multipart
/// upload on GCS; the next upload of the key, here the retry-safe job run again after the
/// restart, aborts it before it uploads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_gcs_multipart_upload_the_next_upload_aborts_the_parts() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let shim = Arc::new(GcsXml {
        state: Default::default(),
        upstream: peer("AFT_TEST_GCS_ENDPOINT"),
        bucket: peer("AFT_TEST_GCS_BUCKET"),
        client: reqwest::Client::new(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .fallback(gcs_xml)
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(shim.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let aft = Aft::new();
    let gcs = Upload::new(&aft, "gcs-xml", 53);
    // Workload identity federation's credentials file: a subject token in a file, traded
    // at `token_url` for an access token.
    let subject = aft.write("subject.jwt", "subject-token");
    let credentials = aft.write(
        "gcs-credentials.json",
        &json!({
            "type": "external_account",
            "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/aft/providers/ci",
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": format!("{endpoint}/token"),
            "credential_source": {"file": subject, "format": {"type": "text"}},
        })
        .to_string(),
    );
    let client = format!(
        "var c = new GCSClient();\nc.Endpoint = {};\nc.Bucket = {};\nc.CredentialsFile = {};",
        js(&endpoint),
        js(&peer("AFT_TEST_GCS_BUCKET")),
        js(&credentials),
    );
    let file = aft.write("gcs-xml.syncjs", &upload_script(&client));
    aft.ok(&["script", "push", "--retry-safe", "GcsXmlUp", &file]);
    let key = aft.create_key("ci", "127.0.0.1");

    let mut svc = aft.serve();
    let job = queue(&svc, &key, "GcsXmlUp", &gcs.params()).await;
    let between_parts = poll(Duration::from_secs(90), || {
        let state = shim.state.lock().unwrap();
        (state.parts_stored >= 1 && state.held == 1).then_some(())
    });
    if between_parts.is_none() {
        let (uploads, parts, unauthorised) = {
            let state = shim.state.lock().unwrap();
            (state.uploads.len(), state.parts_stored, state.unauthorised)
        };
        let shown = get(&svc, &key, &format!("/v1/jobs/{job}")).await;
        let log = log_text(&svc, &key, &job).await;
        panic!(
            "the upload did not reach its second part ({uploads} uploads, {parts} parts, \
             {unauthorised} unauthorised calls): {shown}\n{log}"
        );
    }
    svc.kill9();

    let killed: Vec<String> = shim.state.lock().unwrap().uploads.keys().cloned().collect();
    assert_eq!(killed.len(), 1, "the killed upload is unfinished on GCS");
    assert_eq!(shim.state.lock().unwrap().uploads[&killed[0]].0, gcs.key());
    let objects = gcs_objects(&http, &gcs).await;
    assert!(
        objects.is_empty(),
        "GCS shows objects after the kill: {objects:?}"
    );

    let svc = Service::start(aft.data(), &[], &[]);
    let done = wait_job(&svc.client(), &svc.base(), ("X-API-Key", &key), &job).await;
    let log = log_text(&svc, &key, &job).await;
    assert_eq!(done["status"], "succeeded", "{done}\n{log}");
    assert_eq!(done["attempts"], 2, "{done}");
    {
        let state = shim.state.lock().unwrap();
        assert_eq!(state.aborted, killed, "the killed upload was not aborted");
        assert!(
            state.uploads.is_empty(),
            "unfinished uploads left: {:?}",
            state.uploads.keys()
        );
        assert_eq!(state.unauthorised, 0, "XML calls without the token");
    }
    assert_eq!(
        gcs_objects(&http, &gcs).await,
        vec![(gcs.key(), SIZE as u64)]
    );
    assert!(gcs_bytes(&http, &gcs).await == gcs.bytes);
}
