//! SFTP on russh + russh-sftp, with many requests in flight.
//!
//! - Auth: password, OpenSSH/PEM/PKCS#8 private keys (encrypted ones with a passphrase) and
//!   PuTTY `.ppk` keys; a key is tried first, then the password.
//! - Host keys are pinned by SHA-256 (`SHA256:` + unpadded base64 as OpenSSH prints it, the
//!   prefix optional). An unpinned key is refused with [`VfsError::HostKey`] naming its
//!   fingerprint, unless `accept_any_host_key` is set explicitly.
//! - Big files move as pipelined reads/writes: up to [`SftpConfig::max_in_flight`] requests
//!   of [`SftpConfig::chunk_size`] bytes, capped by the server's `limits@openssh.com`.
//! - The connection is opened lazily by the first operation, shared by all tasks using this
//!   backend, and re-opened by the next operation after it broke.
//! - Paths: VFS path `/x` is the server path `<base_dir>/x`; without a base dir, the
//!   server's own absolute paths.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex as StdMutex};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::stream::{FuturesOrdered, FuturesUnordered};
use futures::{FutureExt, StreamExt};
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh_sftp::client::RawSftpSession;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{FileAttributes, OpenFlags, StatusCode};
use tokio::io::AsyncWrite;
use tokio::sync::Mutex;

use crate::config::Fields;
use crate::{
    Capabilities, Entry, EntryStream, Vfs, VfsError, VfsReader, VfsResult, VfsWriter, WriteMode,
    file_name, join, normalize,
};

/// How to reach and log in to one SFTP server.
#[derive(Clone)]
pub struct SftpConfig {
    /// `host:port` (port 22 when omitted).
    pub host: String,
    /// Login name.
    pub user: String,
    /// Password, if password auth is to be tried.
    pub password: Option<String>,
    /// A private key's text (OpenSSH, PEM, PKCS#8 or PuTTY `.ppk`).
    pub private_key: Option<String>,
    /// The passphrase of an encrypted private key.
    pub key_passphrase: Option<String>,
    /// The pinned host key fingerprint (`SHA256:...`, prefix optional).
    pub host_key_sha256: Option<String>,
    /// Accept any host key (only when explicitly asked: it allows man-in-the-middle).
    pub accept_any_host_key: bool,
    /// Server folder that VFS path `/` maps to; `None` uses the server's absolute paths.
    pub base_dir: Option<String>,
    /// Bytes per read/write request (capped by the server's limits); default 64 KiB.
    pub chunk_size: u32,
    /// Requests in flight per file; default 64.
    pub max_in_flight: usize,
    /// Seconds before connecting or one request is given up; default 30.
    pub timeout_secs: u64,
}

impl std::fmt::Debug for SftpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Hand-written so passwords and keys never reach a log.
        f.debug_struct("SftpConfig")
            .field("host", &self.host)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field(
                "private_key",
                &self.private_key.as_ref().map(|_| "<redacted>"),
            )
            .field("host_key_sha256", &self.host_key_sha256)
            .field("accept_any_host_key", &self.accept_any_host_key)
            .field("base_dir", &self.base_dir)
            .finish_non_exhaustive()
    }
}

impl SftpConfig {
    /// A config for `host` (`host:port`) and `user` with defaults and no credentials yet.
    pub fn new(host: impl Into<String>, user: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            user: user.into(),
            password: None,
            private_key: None,
            key_passphrase: None,
            host_key_sha256: None,
            accept_any_host_key: false,
            base_dir: None,
            chunk_size: 64 * 1024,
            max_in_flight: 64,
            timeout_secs: 30,
        }
    }

    /// Build from client fields: `Host`, `User`, `Pass`/`PassFromSecret`, `KeyFile` (a path
    /// or the key text), `KeyFilePass`/`KeyFileSecret`, `HostKeySHA256`,
    /// `AcceptAnyHostKey`, `BaseDir`, `ChunkSize`, `MaxInFlight`, `Timeout`.
    pub fn from_fields(fields: &Fields<'_>) -> VfsResult<Self> {
        let mut cfg = Self::new(fields.required("Host")?, fields.required("User")?);
        cfg.password = fields.secret("Pass", "PassFromSecret")?;
        if let Some(key) = fields.str("KeyFile") {
            cfg.private_key = Some(load_key_text(&key)?);
        }
        cfg.key_passphrase = fields.secret("KeyFilePass", "KeyFileSecret")?;
        cfg.host_key_sha256 = fields.str("HostKeySHA256");
        cfg.accept_any_host_key = fields.bool("AcceptAnyHostKey");
        cfg.base_dir = fields.str("BaseDir");
        if let Some(n) = fields.u64("ChunkSize")? {
            cfg.chunk_size = n.clamp(4096, 1 << 20) as u32;
        }
        if let Some(n) = fields.u64("MaxInFlight")? {
            cfg.max_in_flight = n.clamp(1, 1024) as usize;
        }
        if let Some(n) = fields.u64("Timeout")? {
            cfg.timeout_secs = n.max(1);
        }
        Ok(cfg)
    }

    fn addr(&self) -> String {
        if self
            .host
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            && !self.host.ends_with(']')
        {
            self.host.clone()
        } else {
            format!("{}:22", self.host)
        }
    }
}

/// `KeyFile` holds a path or, when it starts like a key, the key itself.
fn load_key_text(key: &str) -> VfsResult<String> {
    let t = key.trim_start();
    if t.starts_with("-----BEGIN") || t.starts_with("PuTTY-User-Key-File-") {
        return Ok(key.to_string());
    }
    std::fs::read_to_string(key)
        .map_err(|e| VfsError::Auth(format!("cannot read the KeyFile {key}: {e}")))
}

/// The `SHA256:...` fingerprint of a host key as OpenSSH prints it.
fn fingerprint(key: &PublicKeyOrCertificate) -> String {
    match key {
        PublicKeyOrCertificate::PublicKey { key, .. } => {
            key.fingerprint(HashAlg::Sha256).to_string()
        }
        PublicKeyOrCertificate::Certificate(cert) => {
            russh::keys::PublicKey::from(cert.public_key().clone())
                .fingerprint(HashAlg::Sha256)
                .to_string()
        }
    }
}

/// Compare fingerprints ignoring the `SHA256:` prefix and base64 padding.
fn same_fingerprint(pinned: &str, actual: &str) -> bool {
    let clean = |s: &str| {
        let s = s.trim();
        let s = s
            .strip_prefix("SHA256:")
            .or_else(|| s.strip_prefix("sha256:"))
            .unwrap_or(s);
        s.trim_end_matches('=').to_string()
    };
    clean(pinned) == clean(actual)
}

struct ClientHandler {
    pinned: Option<String>,
    accept_any: bool,
    seen: Arc<StdMutex<Option<String>>>,
}

impl russh::client::Handler for ClientHandler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let fp = fingerprint(key);
        *self.seen.lock().expect("fingerprint slot") = Some(fp.clone());
        Ok(self.accept_any
            || self
                .pinned
                .as_deref()
                .is_some_and(|p| same_fingerprint(p, &fp)))
    }
}

/// One live SSH connection with its SFTP session.
struct Conn {
    sftp: RawSftpSession,
    ssh: russh::client::Handle<ClientHandler>,
    posix_rename: bool,
    read_len: u32,
    write_len: u32,
}

impl Conn {
    fn is_closed(&self) -> bool {
        self.ssh.is_closed()
    }
}

/// An SFTP server seen as a [`Vfs`].
pub struct SftpFs {
    cfg: SftpConfig,
    conn: Mutex<Option<Arc<Conn>>>,
}

impl std::fmt::Debug for SftpFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SftpFs")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl SftpFs {
    /// A backend for `cfg`; nothing is opened until the first operation (or [`Vfs::connect`]).
    pub fn new(cfg: SftpConfig) -> Self {
        Self {
            cfg,
            conn: Mutex::new(None),
        }
    }

    /// Build from client/VFS Library fields (see [`SftpConfig::from_fields`]).
    pub fn from_fields(fields: &Fields<'_>) -> VfsResult<Self> {
        Ok(Self::new(SftpConfig::from_fields(fields)?))
    }

    fn target(&self) -> String {
        format!("sftp://{}@{}", self.cfg.user, self.cfg.addr())
    }

    fn conn_err(&self, message: impl std::fmt::Display) -> VfsError {
        VfsError::Connection {
            target: self.target(),
            message: message.to_string(),
        }
    }

    async fn conn(&self) -> VfsResult<Arc<Conn>> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref()
            && !c.is_closed()
        {
            return Ok(c.clone());
        }
        *slot = None;
        let c = Arc::new(self.open().await?);
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Forget a connection that failed, so the next call opens a new one.
    async fn drop_conn(&self, broken: &Arc<Conn>) {
        let mut slot = self.conn.lock().await;
        if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, broken)) {
            *slot = None;
        }
    }

    async fn open(&self) -> VfsResult<Conn> {
        let cfg = &self.cfg;
        let timeout = Duration::from_secs(cfg.timeout_secs);
        let ssh_cfg = Arc::new(russh::client::Config {
            window_size: 16 * 1024 * 1024,
            inactivity_timeout: None,
            keepalive_interval: Some(Duration::from_secs(15)),
            nodelay: true,
            ..Default::default()
        });
        let seen = Arc::new(StdMutex::new(None));
        let handler = ClientHandler {
            pinned: cfg.host_key_sha256.clone(),
            accept_any: cfg.accept_any_host_key,
            seen: seen.clone(),
        };
        let addr = cfg.addr();
        let connecting = russh::client::connect(ssh_cfg, addr.clone(), handler);
        let mut ssh = match tokio::time::timeout(timeout, connecting).await {
            Err(_) => return Err(self.conn_err(format!("no answer within {}s", cfg.timeout_secs))),
            Ok(Ok(h)) => h,
            Ok(Err(russh::Error::UnknownKey)) => {
                let fp = seen
                    .lock()
                    .expect("fingerprint slot")
                    .clone()
                    .unwrap_or_default();
                return Err(VfsError::HostKey {
                    host: addr,
                    fingerprint: fp,
                });
            }
            Ok(Err(e)) => return Err(self.conn_err(e)),
        };
        self.authenticate(&mut ssh).await?;
        let channel = ssh
            .channel_open_session()
            .await
            .map_err(|e| self.conn_err(format!("opening a channel: {e}")))?;
        channel
            .request_subsystem(true, "sftp")
            .await
            .map_err(|e| self.conn_err(format!("starting the sftp subsystem: {e}")))?;
        let sftp_cfg = russh_sftp::client::Config {
            request_timeout_secs: cfg.timeout_secs,
            max_packet_len: 1024 * 1024 + 1024,
            ..Default::default()
        };
        let mut sftp = RawSftpSession::new_with_config(channel.into_stream(), sftp_cfg);
        let version = sftp
            .init()
            .await
            .map_err(|e| self.conn_err(format!("SFTP init: {e}")))?;
        let posix_rename = version.extensions.contains_key("posix-rename@openssh.com");
        let (mut read_len, mut write_len) = (cfg.chunk_size, cfg.chunk_size);
        if version.extensions.contains_key("limits@openssh.com")
            && let Ok(limits) = sftp.limits().await
        {
            if limits.max_read_len > 0 {
                read_len = read_len.min(limits.max_read_len.min(u32::MAX as u64) as u32);
            }
            if limits.max_write_len > 0 {
                write_len = write_len.min(limits.max_write_len.min(u32::MAX as u64) as u32);
            }
            sftp.set_limits(limits.into());
        }
        Ok(Conn {
            sftp,
            ssh,
            posix_rename,
            read_len,
            write_len,
        })
    }

    async fn authenticate(&self, ssh: &mut russh::client::Handle<ClientHandler>) -> VfsResult<()> {
        let cfg = &self.cfg;
        let mut tried = Vec::new();
        if let Some(text) = &cfg.private_key {
            let key = russh::keys::decode_secret_key(text, cfg.key_passphrase.as_deref()).map_err(|e| {
                VfsError::Auth(format!(
                    "cannot load the private key for {}: {e} (encrypted? set KeyFilePass or KeyFileSecret)",
                    self.target()
                ))
            })?;
            let hash = ssh.best_supported_rsa_hash().await.ok().flatten().flatten();
            let key = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
            let result = ssh
                .authenticate_publickey(&cfg.user, key)
                .await
                .map_err(|e| self.conn_err(format!("key auth: {e}")))?;
            if result.success() {
                return Ok(());
            }
            tried.push("the private key");
        }
        if let Some(pass) = &cfg.password {
            let result = ssh
                .authenticate_password(&cfg.user, pass)
                .await
                .map_err(|e| self.conn_err(format!("password auth: {e}")))?;
            if result.success() {
                return Ok(());
            }
            tried.push("the password");
        }
        if tried.is_empty() {
            return Err(VfsError::Auth(format!(
                "{}: no password or key given (set Pass or KeyFile)",
                self.target()
            )));
        }
        Err(VfsError::Auth(format!(
            "{} refused {}; check User, Pass and KeyFile",
            self.target(),
            tried.join(" and ")
        )))
    }

    /// The server path of a VFS path.
    fn remote(&self, path: &str) -> String {
        let clean = normalize(path);
        match &self.cfg.base_dir {
            Some(base) => {
                let base = base.trim_end_matches('/');
                if clean == "/" {
                    if base.is_empty() {
                        "/".into()
                    } else {
                        base.to_string()
                    }
                } else {
                    format!("{base}{clean}")
                }
            }
            None => clean,
        }
    }

    /// Map a protocol error on `path`, dropping the connection when it is the link that broke.
    async fn fail(&self, conn: &Arc<Conn>, path: &str, e: SftpError) -> VfsError {
        let err = map_err(&self.target(), path, e);
        if matches!(err, VfsError::Connection { .. }) || conn.is_closed() {
            self.drop_conn(conn).await;
            return match err {
                VfsError::Connection { .. } => err,
                other => self.conn_err(format!("{path}: {other}")),
            };
        }
        err
    }
}

fn map_err(target: &str, path: &str, e: SftpError) -> VfsError {
    match e {
        SftpError::Status(s) => match s.status_code {
            StatusCode::NoSuchFile => VfsError::NotFound(path.to_string()),
            StatusCode::PermissionDenied => VfsError::PermissionDenied(path.to_string()),
            StatusCode::OpUnsupported => {
                VfsError::Unsupported("an SFTP operation this server does not offer")
            }
            _ => VfsError::Other(format!(
                "{target}{path}: {} ({})",
                s.error_message, s.status_code
            )),
        },
        SftpError::Timeout => VfsError::Connection {
            target: target.into(),
            message: format!("{path}: request timed out"),
        },
        SftpError::IO(m) | SftpError::UnexpectedBehavior(m) => VfsError::Connection {
            target: target.into(),
            message: format!("{path}: {m}"),
        },
        other => VfsError::Other(format!("{target}{path}: {other}")),
    }
}

fn to_io(target: &str, path: &str, e: SftpError) -> io::Error {
    let kind = match &e {
        SftpError::Status(s) if s.status_code == StatusCode::NoSuchFile => io::ErrorKind::NotFound,
        SftpError::Status(s) if s.status_code == StatusCode::PermissionDenied => {
            io::ErrorKind::PermissionDenied
        }
        SftpError::Status(_) | SftpError::Limited(_) | SftpError::UnexpectedPacket => {
            io::ErrorKind::Other
        }
        SftpError::Timeout => io::ErrorKind::TimedOut,
        SftpError::IO(_) | SftpError::UnexpectedBehavior(_) => io::ErrorKind::ConnectionAborted,
    };
    io::Error::new(kind, format!("{target}{path}: {e}"))
}

fn entry(vfs_path: &str, attrs: &FileAttributes) -> Entry {
    let is_dir = attrs.is_dir();
    Entry {
        path: normalize(vfs_path),
        name: file_name(vfs_path),
        size: if is_dir { 0 } else { attrs.size.unwrap_or(0) },
        mtime: attrs
            .mtime
            .and_then(|t| DateTime::from_timestamp(t as i64, 0)),
        is_dir,
        etag: None,
    }
}

/// Closes a remote handle when dropped, so an abandoned reader or listing does not leak it.
struct HandleGuard {
    conn: Arc<Conn>,
    handle: Option<String>,
}

impl Drop for HandleGuard {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let conn = self.conn.clone();
            rt.spawn(async move {
                let _ = conn.sftp.close(h).await;
            });
        }
    }
}

type ReadFut = BoxFuture<'static, (u64, u32, Result<Vec<u8>, SftpError>)>;

/// Pipelined reader state: requests at increasing offsets, answers consumed in order.
struct ReadState {
    guard: HandleGuard,
    label: String,
    path: String,
    next: u64,
    end: Option<u64>,
    chunk: u32,
    depth: usize,
    inflight: FuturesOrdered<ReadFut>,
    done: bool,
}

impl ReadState {
    fn request(&self, offset: u64, len: u32) -> ReadFut {
        let conn = self.guard.conn.clone();
        let handle = self.guard.handle.clone().unwrap_or_default();
        async move {
            (
                offset,
                len,
                conn.sftp.read(handle, offset, len).await.map(|d| d.data),
            )
        }
        .boxed()
    }

    fn fill(&mut self) {
        while !self.done && self.inflight.len() < self.depth {
            let len = match self.end {
                Some(end) if self.next >= end => return,
                Some(end) => (end - self.next).min(self.chunk as u64) as u32,
                None => self.chunk,
            };
            let fut = self.request(self.next, len);
            self.inflight.push_back(fut);
            self.next += len as u64;
        }
    }

    async fn next_chunk(&mut self) -> Option<io::Result<Bytes>> {
        self.fill();
        let (offset, len, result) = self.inflight.next().await?;
        match result {
            Ok(mut data) => {
                // A short answer before the end: fetch the gap before later chunks.
                while (data.len() as u32) < len {
                    let at = offset + data.len() as u64;
                    let want = len - data.len() as u32;
                    let handle = self.guard.handle.clone().unwrap_or_default();
                    match self.guard.conn.sftp.read(handle, at, want).await {
                        Ok(more) if !more.data.is_empty() => data.extend_from_slice(&more.data),
                        Ok(_) => break,
                        Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => {
                            self.done = true;
                            self.inflight.clear();
                            break;
                        }
                        Err(e) => return Some(Err(to_io(&self.label, &self.path, e))),
                    }
                }
                Some(Ok(Bytes::from(data)))
            }
            Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => {
                self.done = true;
                self.inflight.clear();
                None
            }
            Err(e) => {
                self.done = true;
                self.inflight.clear();
                Some(Err(to_io(&self.label, &self.path, e)))
            }
        }
    }
}

type WriteFut = BoxFuture<'static, Result<(), SftpError>>;

/// Pipelined writer: full chunks go out at once, up to `depth` unacknowledged.
struct SftpWriter {
    conn: Arc<Conn>,
    handle: Option<String>,
    label: String,
    path: String,
    offset: u64,
    buf: Vec<u8>,
    chunk: usize,
    depth: usize,
    inflight: FuturesUnordered<WriteFut>,
    error: Option<io::Error>,
    closing: Option<WriteFut>,
}

impl SftpWriter {
    fn send(&mut self) {
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(self.chunk));
        let conn = self.conn.clone();
        let handle = self.handle.clone().unwrap_or_default();
        let offset = self.offset;
        self.offset += data.len() as u64;
        self.inflight
            .push(async move { conn.sftp.write(handle, offset, data).await.map(|_| ()) }.boxed());
    }

    /// Drive in-flight writes; Ready(Err) on the first failure.
    fn drive(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.error.take() {
            return Poll::Ready(Err(e));
        }
        loop {
            match self.inflight.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(()))) => continue,
                Poll::Ready(Some(Err(e))) => {
                    let err = to_io(&self.label, &self.path, e);
                    return Poll::Ready(Err(err));
                }
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl AsyncWrite for SftpWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if let Poll::Ready(Err(e)) = this.drive(cx) {
            return Poll::Ready(Err(e));
        }
        if this.buf.len() >= this.chunk {
            if this.inflight.len() >= this.depth {
                return Poll::Pending; // woken by an acknowledgement (drive registered us)
            }
            this.send();
        }
        let n = data.len().min(this.chunk - this.buf.len());
        this.buf.extend_from_slice(&data[..n]);
        if this.buf.len() >= this.chunk && this.inflight.len() < this.depth {
            this.send();
        }
        // Start the new requests now; an error surfaces on the next call.
        if let Poll::Ready(Err(e)) = this.drive(cx) {
            this.error = Some(e);
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.buf.is_empty() && this.inflight.len() < this.depth {
                this.send();
            }
            match this.drive(cx) {
                Poll::Ready(Ok(())) if this.buf.is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => continue,
                other => return other,
            }
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.closing.is_none() {
            match self.as_mut().poll_flush(cx) {
                Poll::Ready(Ok(())) => {}
                other => return other,
            }
            let Some(handle) = self.handle.take() else {
                return Poll::Ready(Ok(()));
            };
            let conn = self.conn.clone();
            self.closing = Some(async move { conn.sftp.close(handle).await.map(|_| ()) }.boxed());
        }
        let this = &mut *self;
        let closing = this.closing.as_mut().expect("closing future");
        match closing.poll_unpin(cx) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(to_io(&this.label, &this.path, e))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for SftpWriter {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            drop(HandleGuard {
                conn: self.conn.clone(),
                handle: Some(h),
            });
        }
    }
}

/// SSH string encoding (u32 length + bytes) for extended requests.
fn ssh_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

#[async_trait]
impl Vfs for SftpFs {
    fn describe(&self) -> String {
        self.target()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            atomic_write: false,
            resume_upload: true,
            ranged_read: true,
            set_mtime: true,
            rename: true,
            real_directories: true,
            server_hash: None,
        }
    }

    async fn connect(&self) -> VfsResult<()> {
        self.conn().await.map(|_| ())
    }

    async fn stat(&self, path: &str) -> VfsResult<Entry> {
        let conn = self.conn().await?;
        match conn.sftp.stat(self.remote(path)).await {
            Ok(a) => Ok(entry(path, &a.attrs)),
            Err(e) => Err(self.fail(&conn, path, e).await),
        }
    }

    async fn list(&self, dir: &str) -> VfsResult<EntryStream<'_>> {
        let conn = self.conn().await?;
        let dir = normalize(dir);
        let handle = match conn.sftp.opendir(self.remote(&dir)).await {
            Ok(h) => h.handle,
            Err(e) => return Err(self.fail(&conn, &dir, e).await),
        };
        struct ListState {
            guard: HandleGuard,
            dir: String,
            label: String,
            batch: VecDeque<Entry>,
            done: bool,
        }
        let state = ListState {
            guard: HandleGuard {
                conn,
                handle: Some(handle),
            },
            dir,
            label: self.target(),
            batch: VecDeque::new(),
            done: false,
        };
        let stream = futures::stream::unfold(state, |mut st| async move {
            loop {
                if let Some(e) = st.batch.pop_front() {
                    return Some((Ok(e), st));
                }
                if st.done {
                    return None;
                }
                let handle = st.guard.handle.clone().unwrap_or_default();
                match st.guard.conn.sftp.readdir(handle).await {
                    Ok(name) => {
                        for f in name.files {
                            if f.filename == "." || f.filename == ".." {
                                continue;
                            }
                            st.batch
                                .push_back(entry(&join(&st.dir, &f.filename), &f.attrs));
                        }
                    }
                    Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => st.done = true,
                    Err(e) => {
                        st.done = true;
                        let err = map_err(&st.label, &st.dir, e);
                        return Some((Err(err), st));
                    }
                }
            }
        });
        Ok(stream.boxed())
    }

    async fn read(&self, path: &str, offset: u64, len: Option<u64>) -> VfsResult<VfsReader> {
        let conn = self.conn().await?;
        let remote = self.remote(path);
        let handle = match conn
            .sftp
            .open(&remote, OpenFlags::READ, FileAttributes::empty())
            .await
        {
            Ok(h) => h.handle,
            Err(e) => return Err(self.fail(&conn, path, e).await),
        };
        let guard = HandleGuard {
            conn: conn.clone(),
            handle: Some(handle.clone()),
        };
        let size = match conn.sftp.fstat(handle).await {
            Ok(a) if a.attrs.is_dir() => {
                return Err(VfsError::Other(format!(
                    "{}{path} is a directory",
                    self.target()
                )));
            }
            Ok(a) => a.attrs.size,
            Err(_) => None,
        };
        let end = match (size, len) {
            (Some(s), Some(l)) => Some(s.min(offset.saturating_add(l))),
            (Some(s), None) => Some(s),
            (None, Some(l)) => Some(offset.saturating_add(l)),
            (None, None) => None,
        };
        let state = ReadState {
            guard,
            label: self.target(),
            path: path.to_string(),
            next: offset,
            end,
            chunk: conn.read_len.max(1),
            depth: self.cfg.max_in_flight.max(1),
            inflight: FuturesOrdered::new(),
            done: false,
        };
        let stream = futures::stream::unfold(state, |mut st| async move {
            let item = st.next_chunk().await?;
            Some((item, st))
        });
        Ok(Box::pin(tokio_util::io::StreamReader::new(stream)))
    }

    async fn write(&self, path: &str, mode: WriteMode) -> VfsResult<VfsWriter> {
        let conn = self.conn().await?;
        let remote = self.remote(path);
        let (flags, offset) = match mode {
            WriteMode::Create => (
                OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE,
                0,
            ),
            WriteMode::ResumeAt(n) => (OpenFlags::WRITE, n),
        };
        let handle = match conn
            .sftp
            .open(&remote, flags, FileAttributes::empty())
            .await
        {
            Ok(h) => h.handle,
            Err(e) => return Err(self.fail(&conn, path, e).await),
        };
        if offset > 0 {
            // Drop whatever follows the resume point, so the file ends where we stop.
            let attrs = FileAttributes {
                size: Some(offset),
                ..FileAttributes::empty()
            };
            if let Err(e) = conn.sftp.fsetstat(handle.clone(), attrs).await {
                drop(HandleGuard {
                    conn: conn.clone(),
                    handle: Some(handle),
                });
                return Err(self.fail(&conn, path, e).await);
            }
        }
        let chunk = conn.write_len.max(1) as usize;
        Ok(Box::pin(SftpWriter {
            conn,
            handle: Some(handle),
            label: self.target(),
            path: path.to_string(),
            offset,
            buf: Vec::with_capacity(chunk),
            chunk,
            depth: self.cfg.max_in_flight.max(1),
            inflight: FuturesUnordered::new(),
            error: None,
            closing: None,
        }))
    }

    async fn mkdir_all(&self, path: &str) -> VfsResult<()> {
        let conn = self.conn().await?;
        let clean = normalize(path);
        if let Ok(a) = conn.sftp.stat(self.remote(&clean)).await {
            return if a.attrs.is_dir() {
                Ok(())
            } else {
                Err(VfsError::AlreadyExists(format!(
                    "{}{clean} is a file",
                    self.target()
                )))
            };
        }
        let mut current = String::new();
        for part in clean.split('/').filter(|p| !p.is_empty()) {
            current = format!("{current}/{part}");
            let remote = self.remote(&current);
            match conn.sftp.stat(&remote).await {
                Ok(a) if a.attrs.is_dir() => continue,
                Ok(_) => {
                    return Err(VfsError::AlreadyExists(format!(
                        "{}{current} is a file",
                        self.target()
                    )));
                }
                Err(SftpError::Status(s)) if s.status_code == StatusCode::NoSuchFile => {}
                Err(e) => return Err(self.fail(&conn, &current, e).await),
            }
            if let Err(e) = conn.sftp.mkdir(&remote, FileAttributes::empty()).await {
                // Another task may have made it meanwhile.
                match conn.sftp.stat(&remote).await {
                    Ok(a) if a.attrs.is_dir() => {}
                    _ => return Err(self.fail(&conn, &current, e).await),
                }
            }
        }
        Ok(())
    }

    async fn rename(&self, from: &str, to: &str) -> VfsResult<()> {
        let conn = self.conn().await?;
        let (rfrom, rto) = (self.remote(from), self.remote(to));
        if conn.posix_rename {
            let mut data = Vec::new();
            ssh_string(&mut data, &rfrom);
            ssh_string(&mut data, &rto);
            return match conn.sftp.extended("posix-rename@openssh.com", data).await {
                Ok(russh_sftp::protocol::Packet::Status(s)) if s.status_code == StatusCode::Ok => {
                    Ok(())
                }
                Ok(russh_sftp::protocol::Packet::Status(s)) => {
                    Err(self.fail(&conn, from, SftpError::Status(s)).await)
                }
                Ok(_) => Err(VfsError::Other(format!(
                    "{}: unexpected answer to posix-rename",
                    self.target()
                ))),
                Err(e) => Err(self.fail(&conn, from, e).await),
            };
        }
        match conn.sftp.rename(&rfrom, &rto).await {
            Ok(_) => Ok(()),
            Err(first) => {
                // SFTP v3 rename refuses an existing target: replace a file explicitly.
                match conn.sftp.stat(&rto).await {
                    Ok(a) if !a.attrs.is_dir() => {
                        if let Err(e) = conn.sftp.remove(&rto).await {
                            return Err(self.fail(&conn, to, e).await);
                        }
                        match conn.sftp.rename(&rfrom, &rto).await {
                            Ok(_) => Ok(()),
                            Err(e) => Err(self.fail(&conn, from, e).await),
                        }
                    }
                    _ => Err(self.fail(&conn, from, first).await),
                }
            }
        }
    }

    async fn remove_file(&self, path: &str) -> VfsResult<()> {
        let conn = self.conn().await?;
        match conn.sftp.remove(self.remote(path)).await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.fail(&conn, path, e).await),
        }
    }

    async fn remove_dir(&self, path: &str) -> VfsResult<()> {
        let conn = self.conn().await?;
        match conn.sftp.rmdir(self.remote(path)).await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.fail(&conn, path, e).await),
        }
    }

    async fn set_mtime(&self, path: &str, mtime: DateTime<Utc>) -> VfsResult<()> {
        let conn = self.conn().await?;
        let secs = mtime.timestamp().clamp(0, u32::MAX as i64) as u32;
        let attrs = FileAttributes {
            atime: Some(secs),
            mtime: Some(secs),
            ..FileAttributes::empty()
        };
        match conn.sftp.setstat(self.remote(path), attrs).await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.fail(&conn, path, e).await),
        }
    }

    async fn close(&self) -> VfsResult<()> {
        if let Some(c) = self.conn.lock().await.take() {
            let _ = c.sftp.close_session();
            let _ = c
                .ssh
                .disconnect(russh::Disconnect::ByApplication, "bye", "en")
                .await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_compare_without_prefix_or_padding() {
        let fp = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU";
        assert!(same_fingerprint(fp, fp));
        assert!(same_fingerprint(
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
            fp
        ));
        assert!(!same_fingerprint("SHA256:AAAA", fp));
    }

    #[test]
    fn addr_adds_the_default_port() {
        assert_eq!(SftpConfig::new("h", "u").addr(), "h:22");
        assert_eq!(SftpConfig::new("h:2222", "u").addr(), "h:2222");
    }
}
