//! The opendal glue shared by the S3, Azure Blob, GCS and WebDAV backends.
//!
//! Each of those modules only builds an [`opendal::Operator`] from its connection fields;
//! this module turns the operator into a [`Vfs`]: entries, streamed listings, ranged reads,
//! writers whose `shutdown()` commits, directories as prefixes (or real WebDAV
//! collections), and opendal errors mapped to [`VfsError`] with the endpoint in the message.
//!
//! Uploads never hold a whole file in memory: multipart stores get opendal's chunked writer
//! (aborted when dropped before commit), and servers that take a file in one request only
//! (WebDAV, fake-gcs-server) get a streamed request body (the `upload` submodule). S3,
//! Azure and GCS move several parts of one big file at once, up and down, within a memory
//! budget (the `parallel` submodule).

use std::sync::{Arc, Once};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use base64::Engine as _;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt, stream};
use opendal::{ErrorKind, Metadata, Operator};
use tokio_util::io::StreamReader;

mod parallel;
mod recent;
mod stale_uploads;
mod upload;

pub(crate) use parallel::streams;
pub(crate) use upload::StreamedTarget;
use upload::{AbortingWriter, StreamedUploads};

use crate::types::is_md5_hex;
use crate::{
    Capabilities, Entry, EntryStream, HashAlgo, Vfs, VfsError, VfsReader, VfsResult, VfsWriter,
    WriteMode, file_name, normalize,
};

/// Size of each part of a multipart upload; objects smaller than this go up in one PUT
/// (so their ETag is the content's MD5).
const UPLOAD_CHUNK: usize = 8 * 1024 * 1024;

/// How many objects are copied at once when a prefix ("directory") is renamed.
const RENAME_CONCURRENCY: usize = 8;

/// Install the ring rustls provider as the process default, once.
///
/// reqwest (under opendal) is built without a provider of its own, so aft's single choice
/// (ring) is used everywhere; the binary installs it at startup too, whichever runs first.
pub(crate) fn ensure_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Err means another part of the process installed one first: that one is used.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Finish an operator built by a backend module: give it aft's HTTP transport, which
/// fails a request after `stall` without progress (see [`crate::stall`]).
pub(crate) fn finish_operator(op: Operator, stall: Duration) -> Operator {
    ensure_crypto_provider();
    let transport = match crate::stall::StallTransport::new(stall) {
        Ok(t) => t,
        // Only a broken TLS set-up fails here; the default client then says so per request.
        Err(e) => {
            tracing::warn!("{e}");
            return op;
        }
    };
    let ctx = op
        .context()
        .with_http_transport(opendal::HttpTransporter::new(transport));
    op.with_context(ctx)
}

/// How a backend treats directories and hashes; set by the module that builds the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// Amazon S3 or an S3-compatible server.
    S3,
    /// Azure Blob Storage (or Azurite).
    Azure,
    /// Google Cloud Storage (or fake-gcs-server).
    Gcs,
    /// A WebDAV server: real directories, no server hash, writes not atomic.
    WebDav,
}

impl StoreKind {
    fn has_real_directories(self) -> bool {
        self == StoreKind::WebDav
    }
}

/// A [`Vfs`] over an opendal operator.
pub struct ObjectStoreVfs {
    op: Operator,
    kind: StoreKind,
    /// `s3://bucket at http://127.0.0.1:5000`: used in every error message.
    label: String,
    /// Complete each listed file with a `stat` (S3 `UseMetadataWhenListing`).
    stat_when_listing: bool,
    /// Send each upload as one request with a streamed body instead of through opendal
    /// (servers without multipart uploads: WebDAV, fake-gcs-server).
    streamed: Option<StreamedUploads>,
    /// S3 and GCS: aborts the unfinished multipart uploads of a key before it is written again.
    stale_uploads: Option<stale_uploads::StaleUploads>,
    /// `Timeout`: how long a request or a streamed upload may go without progress.
    stall: Duration,
    /// `Streams`: parts of one big file moved at once (see `parallel`).
    streams: usize,
    /// What the server just said about a key, for the question that follows (`recent`).
    recent: Arc<recent::Recent>,
    /// Lines for the job's log, until the transfer takes them ([`Vfs::take_notes`]).
    notes: crate::transfer::Notes,
}

impl std::fmt::Debug for ObjectStoreVfs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStoreVfs")
            .field("label", &self.label)
            .finish()
    }
}

impl ObjectStoreVfs {
    /// Wrap an operator; `label` names the bucket/container and endpoint for messages.
    pub fn new(op: Operator, kind: StoreKind, label: String) -> Self {
        let stall = Duration::from_secs(crate::stall::DEFAULT_TIMEOUT_SECS);
        ObjectStoreVfs {
            op: finish_operator(op, stall),
            kind,
            label,
            stat_when_listing: false,
            streamed: None,
            stale_uploads: None,
            stall,
            streams: 1,
            recent: Arc::default(),
            notes: crate::transfer::Notes::default(),
        }
    }

    /// Move up to `streams` parts of one big file at once (the `Streams` field, clamped to
    /// 1 to 64): multipart uploads and ranged downloads. Backends without multipart
    /// uploads keep 1.
    pub fn with_streams(mut self, streams: usize) -> Self {
        self.streams = streams.clamp(1, parallel::MAX_STREAMS);
        self
    }

    /// Fail requests, reads and writes after `stall` without progress (the `Timeout`
    /// field) instead of the default 30 s.
    pub fn with_stall_timeout(mut self, stall: Duration) -> Self {
        self.op = finish_operator(self.op, stall);
        self.stall = stall;
        self
    }

    /// `host:port` of the endpoint, named when it stops answering.
    fn peer(&self) -> String {
        let url = self.label.split_once("://").map_or("", |(_, rest)| rest);
        let host = url.split('/').next().unwrap_or("");
        match self.label.split_once("://") {
            Some(("http", _)) if !host.contains(':') => format!("{host}:80"),
            Some(("https", _)) if !host.contains(':') => format!("{host}:443"),
            _ => host.to_string(),
        }
    }

    /// S3 with explicit keys: before each upload, abort the unfinished multipart uploads
    /// of the same key that a killed run left (see `stale_uploads.rs`).
    pub(crate) fn with_stale_upload_sweep(
        mut self,
        endpoint: Option<&str>,
        bucket: &str,
        region: &str,
        key_id: &str,
        secret: &str,
    ) -> Self {
        let Some(client) = self.shared_client() else {
            return self;
        };
        self.stale_uploads =
            stale_uploads::StaleUploads::new(endpoint, bucket, region, key_id, secret, client);
        self
    }

    /// GCS with a credentials file: the same sweep over GCS's XML multipart API, the token
    /// fetched through this operator's HTTP transport (see `stale_uploads.rs`).
    pub(crate) fn with_gcs_stale_upload_sweep(
        mut self,
        endpoint: Option<&str>,
        bucket: &str,
        credentials: &str,
    ) -> Self {
        let Some(client) = self.shared_client() else {
            return self;
        };
        let transport = self.op.context().http_transport().clone();
        self.stale_uploads =
            stale_uploads::StaleUploads::gcs(endpoint, bucket, credentials, transport, client);
        self
    }

    /// The process's HTTP client for this backend's `Timeout`, the one its operator uses
    /// (`None` only when TLS cannot be set up, which the operator's requests then report).
    fn shared_client(&self) -> Option<reqwest::Client> {
        crate::stall::shared_client(crate::stall::ClientConfig {
            connect_timeout: self.stall,
            keep_alive: true,
        })
        .map_err(|e| tracing::warn!("{}: {e}", self.label))
        .ok()
    }

    /// Abort what earlier, killed uploads of `key` left, and the folder's uploads of other
    /// keys untouched for longer than [`crate::transfer::LEFT_BEHIND_AFTER`]; a failure only
    /// leaves their parts for a lifecycle rule, so it is logged, not raised.
    async fn abort_stale_uploads(&self, key: &str, target: &str) {
        let Some(stale) = &self.stale_uploads else {
            return;
        };
        let uploads = match stale.list(key).await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!("{target}: cannot list unfinished multipart uploads: {e}");
                return;
            }
        };
        for u in uploads {
            match stale.abort(&u).await {
                Ok(()) if u.key == key => self.notes.push(format!(
                    "{target}: aborted an unfinished multipart upload begun {} (a run that ended without finishing it)",
                    u.initiated
                )),
                Ok(()) => self.notes.push(format!(
                    "{}: aborted the abandoned multipart upload of {} begun {} (begun more than {} h ago)",
                    self.label,
                    u.key,
                    u.initiated,
                    crate::transfer::LEFT_BEHIND_AFTER.as_secs() / 3600
                )),
                Err(e) => tracing::warn!(
                    "{target}: cannot abort the unfinished multipart upload {}: {e}",
                    u.upload_id
                ),
            }
        }
    }

    /// Upload each file as one request to `target` with a streamed body (chunked transfer
    /// encoding), for servers that take a file in one request only: opendal would buffer
    /// the whole file in memory for them.
    pub(crate) fn with_streamed_uploads(mut self, target: StreamedTarget) -> VfsResult<Self> {
        self.streamed = Some(StreamedUploads::new(target, &self.label, self.stall)?);
        Ok(self)
    }

    /// Fetch each listed file's full metadata with a `stat` (slower, one request per file).
    pub fn with_stat_when_listing(mut self, on: bool) -> Self {
        self.stat_when_listing = on;
        self
    }

    /// The operator underneath, for callers that need an opendal feature the trait lacks.
    pub fn operator(&self) -> &Operator {
        &self.op
    }

    fn err(&self, op: &str, path: &str, e: opendal::Error) -> VfsError {
        map_error(&self.label, op, path, e)
    }

    fn native_rename(&self) -> bool {
        self.op.info().capability().rename
    }

    fn can_copy(&self) -> bool {
        self.op.info().capability().copy
    }

    /// Metadata of the object at `key` (no trailing slash), `None` when there is none; kept
    /// for a `checksum` that follows (`recent`).
    async fn stat_object(&self, path: &str, key: &str) -> VfsResult<Option<Metadata>> {
        match self.op.stat(key).await {
            Ok(meta) => {
                if meta.is_file() {
                    self.recent.stated(key, meta.clone());
                }
                Ok(Some(meta))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            // WebDAV servers answer a collection addressed without its slash this way.
            Err(e) if e.kind() == ErrorKind::IsADirectory => {
                Ok(Some(opendal::MetadataBuilder::dir().build()))
            }
            Err(e) => Err(self.err("stat", path, e)),
        }
    }

    /// Whether `path` is a directory: a marker or collection at `key/`, or any object below it.
    async fn dir_exists(&self, path: &str) -> VfsResult<bool> {
        let dkey = dir_key(path);
        if !self.kind.has_real_directories() {
            // One listing of the prefix answers both: a marker at `key/` is listed under it
            // too. (Asking for the marker first cost a request of its own for every file
            // that is not there yet, which is every file of an upload.)
            let mut lister = match self.op.lister_with(&dkey).limit(1).await {
                Ok(l) => l,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(self.err("list", path, e)),
            };
            return Ok(lister
                .try_next()
                .await
                .map_err(|e| self.err("list", path, e))?
                .is_some());
        }
        match self.op.stat(&dkey).await {
            Ok(meta) if meta.is_dir() => return Ok(true),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(self.err("stat", path, e)),
        }
        Ok(self.first_child(path).await?.is_some())
    }

    /// The first entry inside directory `path` (not the directory's own marker).
    async fn first_child(&self, path: &str) -> VfsResult<Option<opendal::Entry>> {
        let dkey = dir_key(path);
        let lister = match self.op.lister_with(&dkey).limit(2).await {
            Ok(l) => l,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.err("list", path, e)),
        };
        let mut lister = lister;
        while let Some(entry) = lister
            .try_next()
            .await
            .map_err(|e| self.err("list", path, e))?
        {
            if !is_self(&entry, &dkey) {
                return Ok(Some(entry));
            }
        }
        Ok(None)
    }

    /// Copy-then-delete one object (object stores have no rename).
    async fn move_object(&self, from_key: &str, to_key: &str, path: &str) -> VfsResult<()> {
        self.recent.forget(from_key);
        self.recent.forget(to_key);
        self.op
            .copy(from_key, to_key)
            .await
            .map_err(|e| self.err("copy", path, e))?;
        self.op
            .delete(from_key)
            .await
            .map_err(|e| self.err("delete", path, e))
    }

    /// Every key under directory `path` (recursively), markers included, the directory's
    /// own marker excluded.
    async fn keys_below(&self, path: &str) -> VfsResult<Vec<String>> {
        let dkey = dir_key(path);
        let lister = match self.op.lister_with(&dkey).recursive(true).await {
            Ok(l) => l,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.err("list", path, e)),
        };
        lister
            .map_err(|e| self.err("list", path, e))
            .try_filter(|entry| futures::future::ready(!is_self(entry, &dkey)))
            .map_ok(|entry| entry.path().trim_start_matches('/').to_string())
            .try_collect()
            .await
    }

    /// Rename a directory by copying: directories first (shallowest first), then every
    /// file, then the old tree is deleted. Not atomic; object stores have nothing better,
    /// and opendal does not MOVE WebDAV collections.
    async fn move_tree(&self, from: &str, to: &str) -> VfsResult<()> {
        let (from_dir, to_dir) = (dir_key(from), dir_key(to));
        self.recent.forget_below(&to_dir);
        let below = self.keys_below(from).await?;
        let (mut dirs, files): (Vec<String>, Vec<String>) =
            below.into_iter().partition(|k| k.ends_with('/'));
        dirs.sort_by_key(|d| d.matches('/').count());
        let target = |key: &str| format!("{to_dir}{}", &key[from_dir.len()..]);
        if self.op.info().capability().create_dir {
            self.op
                .create_dir(&to_dir)
                .await
                .map_err(|e| self.err("create directory", to, e))?;
            for d in &dirs {
                self.op
                    .create_dir(&target(d))
                    .await
                    .map_err(|e| self.err("create directory", to, e))?;
            }
        }
        stream::iter(files.into_iter().map(Ok::<_, VfsError>))
            .map_ok(|key| {
                let to_key = target(&key);
                async move {
                    self.op
                        .copy(&key, &to_key)
                        .await
                        .map(|_| ())
                        .map_err(|e| self.err("copy", from, e))
                }
            })
            .try_buffer_unordered(RENAME_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        self.delete_tree(from).await
    }

    /// Delete directory `path` and everything below it. Uses the server's batch delete where
    /// opendal has one, and falls back to one request per object where the server refuses
    /// it (fake-gcs-server has no batch endpoint).
    async fn delete_tree(&self, path: &str) -> VfsResult<()> {
        let dkey = dir_key(path);
        self.recent
            .forget_below(if dkey == "/" { "" } else { &dkey });
        match self.op.delete_with(&dkey).recursive(true).await {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.kind() != ErrorKind::Unexpected => {
                return Err(self.err("delete tree", path, e));
            }
            Err(e) => tracing::debug!(
                "{}: batch delete refused ({e}); deleting one by one",
                self.label
            ),
        }
        let mut keys = self.keys_below(path).await?;
        // Deepest first, so WebDAV collections are empty when their turn comes.
        keys.sort_by_key(|k| std::cmp::Reverse(k.matches('/').count()));
        stream::iter(keys.into_iter().map(Ok::<_, VfsError>))
            .map_ok(|key| async move {
                match self.op.delete(&key).await {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(self.err("delete", path, e)),
                }
            })
            .try_buffer_unordered(RENAME_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        match self.op.delete(&dkey).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.err("delete directory", path, e)),
        }
    }
}

/// The opendal key of a file path: no leading slash.
fn file_key(path: &str) -> String {
    normalize(path).trim_start_matches('/').to_string()
}

/// The opendal key of a directory path: no leading slash, one trailing slash (`/` for root).
fn dir_key(path: &str) -> String {
    let key = file_key(path);
    if key.is_empty() {
        "/".to_string()
    } else {
        format!("{key}/")
    }
}

/// Whether a listed entry is the listed directory itself (its marker).
fn is_self(entry: &opendal::Entry, dir_key: &str) -> bool {
    let p = entry.path();
    p == dir_key || p.trim_start_matches('/') == dir_key.trim_start_matches('/')
}

fn to_utc(meta: &Metadata) -> Option<DateTime<Utc>> {
    meta.last_modified()
        .map(|t| DateTime::<Utc>::from(SystemTime::from(t)))
}

fn clean_etag(meta: &Metadata) -> Option<String> {
    meta.etag().map(|e| e.trim_matches('"').to_string())
}

fn entry_from(path: &str, meta: &Metadata) -> Entry {
    let path = normalize(path);
    let is_dir = meta.is_dir();
    Entry {
        name: file_name(&path),
        path,
        size: if is_dir { 0 } else { meta.content_length() },
        mtime: to_utc(meta),
        is_dir,
        etag: clean_etag(meta),
    }
}

fn dir_entry(path: &str) -> Entry {
    let path = normalize(path);
    Entry {
        name: file_name(&path),
        path,
        size: 0,
        mtime: None,
        is_dir: true,
        etag: None,
    }
}

/// The MD5 of an object, hex, where the server reports one: `Content-MD5` / GCS `md5Hash`
/// (base64), or an S3 ETag that is a plain MD5 (not a multipart `…-N` one).
fn md5_of(meta: &Metadata) -> Option<String> {
    if let Some(md5) = meta.content_md5() {
        if is_md5_hex(md5) {
            return Some(md5.to_ascii_lowercase());
        }
        if let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(md5)
            && raw.len() == 16
        {
            return Some(hex::encode(raw));
        }
    }
    let etag = clean_etag(meta)?;
    is_md5_hex(&etag).then(|| etag.to_ascii_lowercase())
}

/// Turn an opendal error into a [`VfsError`] naming the store, the operation and the path.
pub(crate) fn map_error(label: &str, op: &str, path: &str, e: opendal::Error) -> VfsError {
    let at = format!("{label}{}", normalize(path));
    if e.kind() == ErrorKind::Unexpected && e.to_string().contains("status: 401") {
        return VfsError::Auth(format!(
            "{label}: the server refused the credentials (HTTP 401) for {op} {at}; check the user and password or key"
        ));
    }
    match e.kind() {
        ErrorKind::NotFound => VfsError::NotFound(at),
        ErrorKind::AlreadyExists => VfsError::AlreadyExists(at),
        ErrorKind::PermissionDenied => VfsError::PermissionDenied(format!(
            "{at}: {op} refused ({e}); check the credentials and the bucket/container policy"
        )),
        ErrorKind::ConfigInvalid => {
            VfsError::Other(format!("{label}: the connection settings are invalid: {e}"))
        }
        ErrorKind::RateLimited => VfsError::Connection {
            target: label.to_string(),
            message: format!("{op} {at}: rate limited by the server: {e}"),
        },
        _ if e.is_temporary() => VfsError::Connection {
            target: label.to_string(),
            message: format!(
                "{op} {at}: {}",
                network_cause(&e).unwrap_or_else(|| e.to_string())
            ),
        },
        _ => VfsError::Other(format!("{op} {at} failed: {e}")),
    }
}

/// The network failure under an HTTP client error, in words ("connection refused"), when
/// there is one: opendal's own text only says "error sending request".
pub(crate) fn network_cause(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = e.source();
    let mut deepest = None;
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            return Some(
                match io.kind() {
                    K::ConnectionRefused => "connection refused",
                    K::ConnectionReset => "connection reset by the server",
                    K::ConnectionAborted => "connection aborted",
                    K::TimedOut => "timed out",
                    K::UnexpectedEof | K::BrokenPipe => "the server closed the connection",
                    K::NotConnected => "not connected",
                    _ => return Some(io.to_string()),
                }
                .to_string(),
            );
        }
        deepest = Some(c.to_string());
        cause = c.source();
    }
    deepest
}

/// opendal hands a failed body read over as `Other`; a temporary one (a reset, a stall)
/// gets a kind that [`VfsError::is_transient`] retries.
fn retryable_read_error(e: std::io::Error) -> std::io::Error {
    let temporary = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<opendal::Error>())
        .is_some_and(opendal::Error::is_temporary);
    if e.kind() == std::io::ErrorKind::Other && temporary {
        let kind = if e.to_string().contains("(Timeout)") {
            std::io::ErrorKind::TimedOut
        } else {
            std::io::ErrorKind::ConnectionReset
        };
        std::io::Error::new(kind, e.to_string())
    } else {
        e
    }
}

fn io_error_to_vfs(label: &str, path: &str, e: std::io::Error) -> VfsError {
    let at = format!("{label}{}", normalize(path));
    match e.kind() {
        std::io::ErrorKind::NotFound => VfsError::NotFound(at),
        std::io::ErrorKind::PermissionDenied => VfsError::PermissionDenied(format!("{at}: {e}")),
        _ => VfsError::Io {
            path: at,
            source: e,
        },
    }
}

#[async_trait]
impl Vfs for ObjectStoreVfs {
    fn take_notes(&self) -> Vec<String> {
        self.notes.take()
    }

    fn describe(&self) -> String {
        self.label.clone()
    }

    fn capabilities(&self) -> Capabilities {
        let real_dirs = self.kind.has_real_directories();
        Capabilities {
            // An object PUT (or a completed multipart upload) lands whole; a WebDAV PUT
            // is written by the server as it arrives.
            atomic_write: !real_dirs,
            resume_upload: false,
            ranged_read: self.op.info().capability().read,
            set_mtime: false,
            rename: self.native_rename() || self.can_copy(),
            real_directories: real_dirs,
            server_hash: match self.kind {
                StoreKind::WebDav => None,
                _ => Some(HashAlgo::Md5),
            },
        }
    }

    async fn stat(&self, path: &str) -> VfsResult<Entry> {
        let path = normalize(path);
        if path == "/" {
            return Ok(dir_entry("/"));
        }
        if let Some(meta) = self.stat_object(&path, &file_key(&path)).await? {
            return Ok(entry_from(&path, &meta));
        }
        if self.dir_exists(&path).await? {
            // A WebDAV collection has a modification time worth reporting.
            if let Ok(meta) = self.op.stat(&dir_key(&path)).await {
                let mut e = entry_from(&path, &meta);
                e.is_dir = true;
                e.size = 0;
                return Ok(e);
            }
            return Ok(dir_entry(&path));
        }
        Err(VfsError::NotFound(format!("{}{path}", self.label)))
    }

    async fn list(&self, dir: &str) -> VfsResult<EntryStream<'_>> {
        let dir = normalize(dir);
        let dkey = dir_key(&dir);
        if self.kind.has_real_directories() && dir != "/" {
            // A WebDAV server lists a missing collection as empty: tell the two apart.
            match self.op.stat(&dkey).await {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    return Err(VfsError::Other(format!(
                        "{}{dir} is a file, not a directory",
                        self.label
                    )));
                }
                Err(e) => return Err(self.err("list", &dir, e)),
            }
        }
        let lister = match self.op.lister(&dkey).await {
            Ok(l) => l,
            Err(e) => return Err(self.err("list", &dir, e)),
        };
        let label = self.label.clone();
        let stat_files = self.stat_when_listing;
        let entries = lister
            .map_err(move |e| map_error(&label, "list", &dir, e))
            .try_filter(move |entry| futures::future::ready(!is_self(entry, &dkey)))
            .and_then(move |entry| async move {
                let path = format!("/{}", entry.path().trim_start_matches('/'));
                let (_, meta) = entry.into_parts();
                if stat_files && meta.is_file() {
                    let full = self
                        .stat_object(&path, &file_key(&path))
                        .await?
                        .ok_or_else(|| VfsError::NotFound(format!("{}{path}", self.label)))?;
                    return Ok(entry_from(&path, &full));
                }
                if meta.is_file() {
                    // Azure and GCS list each object's MD5: a copy of the file checks
                    // against it instead of asking again (`recent`).
                    self.recent.listed(&file_key(&path), &meta);
                }
                Ok(entry_from(&path, &meta))
            });
        Ok(entries.boxed())
    }

    async fn read(&self, path: &str, offset: u64, len: Option<u64>) -> VfsResult<VfsReader> {
        let path = normalize(path);
        let key = file_key(&path);
        if len == Some(0) {
            // Nothing to fetch, but the file must exist.
            self.stat_object(&path, &key)
                .await?
                .ok_or_else(|| VfsError::NotFound(format!("{}{path}", self.label)))?;
            return Ok(Box::pin(tokio::io::empty()));
        }
        // opendal insists on getting every byte of a bounded range: clamp it to the object's
        // size so that a range past the end returns what there is, like a file would.
        let len = match len {
            Some(n) => {
                let meta = self
                    .stat_object(&path, &key)
                    .await?
                    .ok_or_else(|| VfsError::NotFound(format!("{}{path}", self.label)))?;
                let size = meta.content_length();
                if offset >= size {
                    return Ok(Box::pin(tokio::io::empty()));
                }
                Some(n.min(size - offset))
            }
            None => None,
        };
        let reader = self
            .op
            .reader(&key)
            .await
            .map_err(|e| self.err("read", &path, e))?;
        let bytes = match (offset, len) {
            (0, None) => reader.into_bytes_stream(..).await,
            (o, None) => reader.into_bytes_stream(o..).await,
            (o, Some(n)) => reader.into_bytes_stream(o..o.saturating_add(n)).await,
        };
        let mut bytes = match bytes {
            Ok(b) => b,
            // A range starting at or after the end of the object: nothing to return.
            Err(e) if e.kind() == ErrorKind::RangeNotSatisfied => {
                return Ok(Box::pin(tokio::io::empty()));
            }
            Err(e) => return Err(self.err("read", &path, e)),
        };
        if offset == 0 && len.is_none() && self.kind != StoreKind::WebDav {
            // The answer's headers name the MD5 of the very bytes that follow: the check
            // after the download takes it, rather than a HEAD of its own (`recent`).
            match bytes.metadata().await {
                Ok(meta) => self.recent.answered(&key, meta),
                Err(e) if e.kind() == ErrorKind::Unsupported => {}
                Err(e) if e.kind() == ErrorKind::RangeNotSatisfied => {
                    return Ok(Box::pin(tokio::io::empty()));
                }
                Err(e) => return Err(self.err("read", &path, e)),
            }
        }
        // A big object: the rest comes as parallel ranges (`parallel`).
        let mut bytes =
            match parallel::split(&self.op, &key, bytes, offset, len, self.streams).await {
                Ok(b) => b,
                Err(e) if e.kind() == ErrorKind::RangeNotSatisfied => {
                    return Ok(Box::pin(tokio::io::empty()));
                }
                Err(e) => return Err(self.err("read", &path, e)),
            };
        // Pull the first chunk now so a missing file fails here, with its name, rather than
        // at the caller's first read.
        let first: Option<Bytes> = match bytes.next().await {
            None => None,
            Some(Ok(b)) => Some(b),
            Some(Err(e)) => {
                return Err(io_error_to_vfs(&self.label, &path, retryable_read_error(e)));
            }
        };
        let rest = stream::iter(first.map(Ok))
            .chain(bytes)
            .map_err(retryable_read_error);
        Ok(Box::pin(StreamReader::new(rest)))
    }

    fn read_streams(&self) -> usize {
        // WebDAV servers are often a single process behind one folder: one stream there.
        if self.kind == StoreKind::WebDav {
            1
        } else {
            self.streams
        }
    }

    async fn read_range(
        &self,
        path: &str,
        range: std::ops::Range<u64>,
        etag: Option<&str>,
    ) -> VfsResult<VfsReader> {
        let path = normalize(path);
        let bytes = parallel::range(&self.op, &file_key(&path), range, etag)
            .await
            .map_err(|e| self.err("read", &path, e))?;
        Ok(Box::pin(StreamReader::new(
            bytes.map_err(|e| retryable_read_error(parallel::replaced(e))),
        )))
    }

    async fn write(&self, path: &str, mode: WriteMode) -> VfsResult<VfsWriter> {
        let path = normalize(path);
        if let WriteMode::ResumeAt(_) = mode {
            return Err(VfsError::Unsupported(
                "resuming an upload on an object store or WebDAV",
            ));
        }
        let key = file_key(&path);
        self.recent.forget(&key);
        let target = format!("{}{path}", self.label);
        if let Some(streamed) = &self.streamed {
            if self.kind.has_real_directories() {
                // A PUT into a missing collection fails (409): make the parents first, as
                // opendal's own WebDAV writer does. The look at the parent also surfaces a
                // refused login before the body streams: a server that answers 401 early
                // and closes would otherwise show up as a broken pipe mid-upload.
                let parent = crate::parent(&path);
                match self.op.stat(&dir_key(&parent)).await {
                    Ok(m) if m.is_dir() => {}
                    Err(e) if e.kind() != opendal::ErrorKind::NotFound => {
                        return Err(self.err("write", &path, e));
                    }
                    _ => self.mkdir_all(&parent).await?,
                }
            }
            // The body goes through a channel of our own, not opendal: watch it here.
            let upload = streamed.start(&key, target)?;
            return Ok(Box::pin(crate::stall::Stalled::new(
                upload,
                self.stall,
                self.peer(),
            )));
        }
        self.abort_stale_uploads(&key, &target).await;
        let writer = self
            .op
            .writer_with(&key)
            .chunk(UPLOAD_CHUNK)
            .concurrent(self.streams)
            .await
            .map_err(|e| self.err("write", &path, e))?;
        // A single-part PUT answers the MD5 of what landed as its ETag: the check that
        // follows compares it instead of sending a HEAD (`recent`). Only a single part: the
        // answer to a completed multipart upload names no MD5 of the content, whatever its
        // form (S3 adds `-N`; GCS's XML API and other servers need not).
        let recent = self.recent.clone();
        let committed: upload::OnCommit = Box::new(move |meta, written| {
            if written < UPLOAD_CHUNK as u64 {
                recent.answered(&key, meta);
            }
        });
        Ok(Box::pin(
            AbortingWriter::new(writer, target).on_commit(committed),
        ))
    }

    async fn mkdir_all(&self, path: &str) -> VfsResult<()> {
        let path = normalize(path);
        if path == "/" {
            return Ok(());
        }
        if let Some(meta) = self.stat_object(&path, &file_key(&path)).await?
            && !meta.is_dir()
        {
            return Err(VfsError::AlreadyExists(format!(
                "{}{path} (a file, so it cannot become a directory)",
                self.label
            )));
        }
        if !self.op.info().capability().create_dir {
            // Prefixes need no creation; the directory appears with its first file.
            return Ok(());
        }
        if self.kind.has_real_directories() {
            // Create each level: not every WebDAV server makes missing parents (MKCOL).
            let mut current = String::new();
            for part in path.trim_start_matches('/').split('/') {
                current = format!("{current}/{part}");
                if matches!(self.op.stat(&dir_key(&current)).await, Ok(m) if m.is_dir()) {
                    continue;
                }
                self.op
                    .create_dir(&dir_key(&current))
                    .await
                    .map_err(|e| self.err("create directory", &current, e))?;
            }
            return Ok(());
        }
        self.op
            .create_dir(&dir_key(&path))
            .await
            .map_err(|e| self.err("create directory", &path, e))
    }

    async fn rename(&self, from: &str, to: &str) -> VfsResult<()> {
        let (from, to) = (normalize(from), normalize(to));
        let from_meta = self.stat_object(&from, &file_key(&from)).await?;
        let from_is_file = matches!(&from_meta, Some(m) if !m.is_dir());
        if !from_is_file && !self.dir_exists(&from).await? {
            return Err(VfsError::NotFound(format!("{}{from}", self.label)));
        }
        // A WebDAV MOVE with `Overwrite: T` deletes a collection in its way: a file never
        // replaces a folder (the conformance suite's `rename_onto_a_folder_fails_and_keeps_it`).
        if from_is_file
            && self.kind.has_real_directories()
            && self
                .stat_object(&to, &file_key(&to))
                .await?
                .is_some_and(|m| m.is_dir())
        {
            return Err(VfsError::file_onto_folder(&format!("{}{to}", self.label)));
        }
        self.recent.forget(&file_key(&to));
        if self.native_rename() && from_is_file {
            self.recent.forget(&file_key(&from));
            return self
                .op
                .rename(&file_key(&from), &file_key(&to))
                .await
                .map_err(|e| self.err("rename", &from, e));
        }
        if !self.can_copy() {
            return Err(VfsError::Unsupported("renaming on this object store"));
        }
        if from_is_file {
            self.move_object(&file_key(&from), &file_key(&to), &from)
                .await
        } else {
            self.move_tree(&from, &to).await
        }
    }

    async fn remove_file(&self, path: &str) -> VfsResult<()> {
        let path = normalize(path);
        let key = file_key(&path);
        match self.stat_object(&path, &key).await? {
            None => Err(VfsError::NotFound(format!("{}{path}", self.label))),
            Some(meta) if meta.is_dir() => Err(VfsError::Other(format!(
                "{}{path} is a directory; remove it as a directory",
                self.label
            ))),
            Some(_) => {
                self.recent.forget(&key);
                self.op
                    .delete(&key)
                    .await
                    .map_err(|e| self.err("delete", &path, e))
            }
        }
    }

    async fn remove_dir(&self, path: &str) -> VfsResult<()> {
        let path = normalize(path);
        if path == "/" {
            return Err(VfsError::PermissionDenied(format!(
                "{}/: the root cannot be removed",
                self.label
            )));
        }
        if let Some(child) = self.first_child(&path).await? {
            return Err(VfsError::Other(format!(
                "{}{path} is not empty (it holds {}); remove its content first",
                self.label,
                child.name()
            )));
        }
        let dkey = dir_key(&path);
        match self.op.stat(&dkey).await {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) | Err(_) => {
                return Err(VfsError::NotFound(format!("{}{path}", self.label)));
            }
        }
        self.op
            .delete(&dkey)
            .await
            .map_err(|e| self.err("delete directory", &path, e))
    }

    async fn remove_all(&self, path: &str) -> VfsResult<()> {
        let path = normalize(path);
        if path != "/"
            && let Some(meta) = self.stat_object(&path, &file_key(&path)).await?
            && !meta.is_dir()
        {
            self.recent.forget(&file_key(&path));
            return self
                .op
                .delete(&file_key(&path))
                .await
                .map_err(|e| self.err("delete", &path, e));
        }
        self.delete_tree(&path).await
    }

    async fn checksum(&self, path: &str, algo: HashAlgo) -> VfsResult<Option<String>> {
        if algo != HashAlgo::Md5 || self.kind == StoreKind::WebDav {
            return Ok(None);
        }
        let path = normalize(path);
        let key = file_key(&path);
        // Mostly asked right after a stat of the key: its answer, when fresh.
        let meta = match self.recent.take_checksum(&key) {
            Some(meta) => meta,
            None => self
                .stat_object(&path, &key)
                .await?
                .ok_or_else(|| VfsError::NotFound(format!("{}{path}", self.label)))?,
        };
        Ok(md5_of(&meta))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opendal::MetadataBuilder;

    #[test]
    fn keys_drop_the_leading_slash_and_mark_directories() {
        assert_eq!(file_key("/a/b.txt"), "a/b.txt");
        assert_eq!(dir_key("/a/b"), "a/b/");
        assert_eq!(dir_key("/"), "/");
        assert_eq!(dir_key("a//b/"), "a/b/");
    }

    #[test]
    fn md5_comes_from_content_md5_or_a_plain_etag_only() {
        let mut single = MetadataBuilder::file(3);
        single.etag("\"9e107d9d372bb6826bd81d3542a419d6\"");
        assert_eq!(
            md5_of(&single.build()).as_deref(),
            Some("9e107d9d372bb6826bd81d3542a419d6")
        );
        let mut multipart = MetadataBuilder::file(3);
        multipart.etag("\"9e107d9d372bb6826bd81d3542a419d6-2\"");
        assert_eq!(md5_of(&multipart.build()), None);
        let mut azure = MetadataBuilder::file(3);
        azure.content_md5("nhB9nTcrtoJr2B01QqQZ1g==");
        assert_eq!(
            md5_of(&azure.build()).as_deref(),
            Some("9e107d9d372bb6826bd81d3542a419d6")
        );
    }
}
