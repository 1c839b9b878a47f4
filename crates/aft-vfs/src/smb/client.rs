//! The SMB backend proper (feature `smb`): every libsmbclient call runs on one dedicated
//! thread.
//!
//! Why one thread and not a pool of contexts on several threads: libsmbclient is not
//! thread-safe, not even with one context per thread (it keeps process-wide state such as
//! its configuration and debug settings); pavao's maintainer relays Samba's word that it
//! will not be (pavao issues #2, #8), creating clients on several threads corrupts the heap
//! (pavao #17), and libsmbclient-go serializes for the same reason; pavao serializes every
//! native call process-wide. So parallel transfers share one thread (their SMB calls
//! queue), and speed comes from fewer, larger calls instead.
//!
//! Files are libsmbclient handles held on that thread (pavao's `SmbFile` hides the handle,
//! and `ftruncate`/`fstat`, which resume and `read` need, take it). The raw calls are sound
//! for the same reason `utimes` is: nothing else touches libsmbclient meanwhile.
//!
//! Listings: libsmbclient's `opendir` fetches the whole directory before the first entry is
//! returned (it keeps every entry until `closedir`: 14.8 MiB for 50,000 entries with
//! 21-character names, measured with Samba 4.17, about 300 bytes each), so a listing is
//! held in memory once on the SMB thread and handed to the caller as a stream.

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::pin::Pin;
use std::sync::OnceLock;
use std::sync::mpsc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use pavao::{
    SmbClient, SmbCredentials, SmbDirentType, SmbEncryptionLevel, SmbError, SmbMode, SmbOptions,
    SmbStat,
};
use pavao_sys::{SMBCCTX, SMBCFILE};
use tokio::io::AsyncWrite;
use tokio::sync::{Mutex, oneshot};

use super::SmbConfig;
use crate::{
    Capabilities, Entry, EntryStream, Vfs, VfsError, VfsReader, VfsResult, VfsWriter, WriteMode,
    file_name, join, normalize,
};

/// Bytes per write call: Samba's largest SMB3 write is 8 MiB, and libsmbclient sends one
/// write request at a time, so larger calls gain nothing.
const CHUNK: usize = 8 * 1024 * 1024;

/// Bytes per read call: libsmbclient keeps the requests of one read call in flight together
/// (8 MiB each at most), so a larger call pipelines.
const READ_CHUNK: usize = 16 * 1024 * 1024;

/// One logged-in client and the files open on it (libsmbclient handles).
struct Conn {
    client: SmbClient,
    files: HashMap<u64, *mut SMBCFILE>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Close the files before the context they belong to is freed.
        if let Ok(ctx) = self.client.ctx() {
            for (_, file) in self.files.drain() {
                let _ = raw::close(ctx, file);
            }
        }
    }
}

/// The SMB thread's state: every connection of every SMB backend in the process. It lives
/// on the SMB thread only (the handles in it are not `Send`).
#[derive(Default)]
struct Worker {
    conns: HashMap<u64, Conn>,
    next_id: u64,
}

type Job = Box<dyn FnOnce(&mut Worker) + Send>;

/// The SMB thread, started on first use.
fn worker() -> &'static mpsc::Sender<Job> {
    static WORKER: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    WORKER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("aft-smb".into())
            .spawn(move || {
                let mut state = Worker::default();
                while let Ok(job) = rx.recv() {
                    job(&mut state);
                }
            })
            .expect("start the SMB thread");
        tx
    })
}

/// Run `job` on the SMB thread and wait for its result without blocking the runtime.
async fn on_smb_thread<T: Send + 'static>(
    job: impl FnOnce(&mut Worker) -> VfsResult<T> + Send + 'static,
) -> VfsResult<T> {
    let (tx, rx) = oneshot::channel();
    worker()
        .send(Box::new(move |w| {
            let _ = tx.send(job(w));
        }))
        .map_err(|_| VfsError::Other("the SMB thread has stopped".into()))?;
    rx.await
        .map_err(|_| VfsError::Other("the SMB thread dropped a request".into()))?
}

/// Queue `job` on the SMB thread without waiting (closing files and connections on drop).
fn fire_and_forget(job: impl FnOnce(&mut Worker) + Send + 'static) {
    let _ = worker().send(Box::new(job));
}

/// libsmbclient's own calls on a context, for what pavao does not offer. Only ever called on
/// the SMB thread (see the module docs); every `file` is a live handle of `ctx`.
mod raw {
    use std::ffi::CStr;
    use std::io;

    use libc::c_void;
    use pavao_sys::*;

    fn func<F>(get: Option<F>) -> io::Result<F> {
        get.ok_or_else(|| io::Error::from_raw_os_error(libc::ENOSYS))
    }

    fn check(r: libc::c_int) -> io::Result<()> {
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    pub fn open(ctx: *mut SMBCCTX, url: &CStr, flags: i32) -> io::Result<*mut SMBCFILE> {
        // SAFETY: `ctx` is a live, initialized context (see the module docs).
        let open = func(unsafe { smbc_getFunctionOpen(ctx) })?;
        let file = open(ctx, url.as_ptr(), flags, 0o644);
        if file.is_null() {
            Err(io::Error::last_os_error())
        } else {
            Ok(file)
        }
    }

    pub fn close(ctx: *mut SMBCCTX, file: *mut SMBCFILE) -> io::Result<()> {
        // SAFETY: as in `open`.
        let close = func(unsafe { smbc_getFunctionClose(ctx) })?;
        check(close(ctx, file))
    }

    /// Up to `want` bytes; fewer only at the end of the file.
    pub fn read(ctx: *mut SMBCCTX, file: *mut SMBCFILE, want: usize) -> io::Result<Vec<u8>> {
        // SAFETY: as in `open`.
        let read = func(unsafe { smbc_getFunctionRead(ctx) })?;
        let mut buf = vec![0u8; want];
        let mut got = 0;
        while got < want {
            let rest = &mut buf[got..];
            let n = read(ctx, file, rest.as_mut_ptr() as *mut c_void, rest.len());
            match n {
                n if n < 0 => return Err(io::Error::last_os_error()),
                0 => break,
                n => got += n as usize,
            }
        }
        buf.truncate(got);
        Ok(buf)
    }

    pub fn write_all(ctx: *mut SMBCCTX, file: *mut SMBCFILE, mut data: &[u8]) -> io::Result<()> {
        // SAFETY: as in `open`.
        let write = func(unsafe { smbc_getFunctionWrite(ctx) })?;
        while !data.is_empty() {
            let n = write(ctx, file, data.as_ptr() as *const c_void, data.len());
            match n {
                n if n < 0 => return Err(io::Error::last_os_error()),
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => data = &data[n as usize..],
            }
        }
        Ok(())
    }

    pub fn seek(ctx: *mut SMBCCTX, file: *mut SMBCFILE, offset: u64) -> io::Result<()> {
        // SAFETY: as in `open`.
        let lseek = func(unsafe { smbc_getFunctionLseek(ctx) })?;
        if lseek(ctx, file, offset as libc::off_t, libc::SEEK_SET) < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    pub fn truncate(ctx: *mut SMBCCTX, file: *mut SMBCFILE, len: u64) -> io::Result<()> {
        // SAFETY: as in `open`.
        let ftruncate = func(unsafe { smbc_getFunctionFtruncate(ctx) })?;
        check(ftruncate(ctx, file, len as libc::off_t))
    }

    pub fn fstat(ctx: *mut SMBCCTX, file: *mut SMBCFILE) -> io::Result<libc::stat> {
        // SAFETY: as in `open`.
        let fstat = func(unsafe { smbc_getFunctionFstat(ctx) })?;
        // SAFETY: `stat` is plain data; libsmbclient fills it.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        check(fstat(ctx, file, &mut st))?;
        Ok(st)
    }

    /// Access and modification time of `url`.
    pub fn utimes(ctx: *mut SMBCCTX, url: &CStr, time: libc::timeval) -> io::Result<()> {
        // SAFETY: as in `open`.
        let utimes = func(unsafe { smbc_getFunctionUtimes(ctx) })?;
        let mut times = [time, time];
        check(utimes(ctx, url.as_ptr(), times.as_mut_ptr()))
    }
}

/// An SMB share as a [`Vfs`].
pub struct SmbFs {
    config: SmbConfig,
    label: String,
    /// `smb://host:port/share`, for libsmbclient's own calls.
    base_url: String,
    /// The connection on the SMB thread, opened by the first operation.
    conn: Mutex<Option<u64>>,
}

impl std::fmt::Debug for SmbFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmbFs")
            .field("config", &self.config)
            .finish()
    }
}

impl SmbFs {
    /// A backend for `config`; nothing is contacted until the first operation.
    pub fn new(config: SmbConfig) -> Self {
        Self {
            label: config.label(),
            base_url: format!(
                "smb://{}:{}/{}",
                bracket(&config.host),
                config.port,
                config.share
            ),
            config,
            conn: Mutex::new(None),
        }
    }

    /// The share path of VFS path `path`, percent-encoding what libsmbclient's URL parser
    /// would take for syntax.
    fn share_path(&self, path: &str) -> String {
        let path = normalize(path);
        let full = if self.config.base_dir.is_empty() {
            path
        } else {
            join(&format!("/{}", self.config.base_dir), &path)
        };
        let mut out = String::with_capacity(full.len());
        for c in full.chars() {
            match c {
                '%' | '?' | '#' | '+' | ';' | '@' | ':' => {
                    out.push_str(&format!("%{:02X}", c as u32));
                }
                c => out.push(c),
            }
        }
        out
    }

    /// The full URL of VFS path `path`, for libsmbclient's own calls.
    fn url(&self, path: &str) -> VfsResult<CString> {
        CString::new(format!("{}{}", self.base_url, self.share_path(path)))
            .map_err(|_| VfsError::Other(format!("{}: {path}: a NUL in the name", self.label)))
    }

    /// Refuse a server that cannot encrypt when `RequireEncryption` is set: libsmbclient,
    /// asked to require encryption, still connects without it (see [`super::negotiate`]).
    async fn check_encryption(&self) -> VfsResult<()> {
        let c = &self.config;
        let offer = super::negotiate::probe(&c.host, c.port, Duration::from_secs(c.timeout_secs))
            .await
            .map_err(|message| VfsError::Connection {
                target: self.label.clone(),
                message,
            })?;
        if offer.encrypts() {
            return Ok(());
        }
        Err(VfsError::Other(format!(
            "{}: RequireEncryption is set but the server does not offer SMB3 encryption \
             (it negotiated {} without a cipher); not connecting",
            self.label,
            offer.dialect_name()
        )))
    }

    /// The connection's id, opening it on the SMB thread first if needed.
    async fn conn_id(&self) -> VfsResult<u64> {
        let mut slot = self.conn.lock().await;
        if let Some(id) = *slot {
            return Ok(id);
        }
        if self.config.require_encryption {
            self.check_encryption().await?;
        }
        let c = self.config.clone();
        let label = self.label.clone();
        let id = on_smb_thread(move |w| {
            let credentials = SmbCredentials::default()
                .server(format!("smb://{}:{}", bracket(&c.host), c.port))
                .share(format!("/{}", c.share))
                .username(&c.user)
                .password(&c.password)
                .workgroup(&c.domain);
            // Signing and encryption follow what the server requires; `RequireEncryption`
            // also asks for encryption from servers that merely offer it.
            let options = SmbOptions::default()
                // A wrong password must fail, not fall back to a guest session.
                .no_auto_anonymous_login(true)
                .case_sensitive(true)
                .encryption_level(if c.require_encryption {
                    SmbEncryptionLevel::Require
                } else {
                    SmbEncryptionLevel::None
                });
            let client =
                SmbClient::new(credentials, options).map_err(|e| map_error(&label, "/", e))?;
            client
                .set_timeout(Duration::from_secs(c.timeout_secs))
                .map_err(|e| map_error(&label, "/", e))?;
            let id = w.next_id;
            w.next_id += 1;
            w.conns.insert(
                id,
                Conn {
                    client,
                    files: HashMap::new(),
                },
            );
            Ok(id)
        })
        .await?;
        *slot = Some(id);
        Ok(id)
    }

    /// Run `op` with this backend's client on the SMB thread.
    async fn with_client<T: Send + 'static>(
        &self,
        op: impl FnOnce(&SmbClient) -> VfsResult<T> + Send + 'static,
    ) -> VfsResult<T> {
        let id = self.conn_id().await?;
        on_smb_thread(move |w| {
            let conn = w
                .conns
                .get(&id)
                .ok_or_else(|| VfsError::Other("SMB connection already closed".into()))?;
            op(&conn.client)
        })
        .await
    }

    /// Open `path` with `flags` and run `setup` on the new handle (seek, truncate, checks),
    /// all in one trip to the SMB thread; the file stays open there.
    async fn open_file<T: Send + 'static>(
        &self,
        path: &str,
        flags: i32,
        setup: impl FnOnce(*mut SMBCCTX, *mut SMBCFILE) -> VfsResult<T> + Send + 'static,
    ) -> VfsResult<(FileRef, T)> {
        let id = self.conn_id().await?;
        let url = self.url(path)?;
        let (label, shown) = (self.label.clone(), path.to_string());
        let (fd, out) = on_smb_thread(move |w| {
            let Worker { conns, next_id } = w;
            let conn = conns
                .get_mut(&id)
                .ok_or_else(|| VfsError::Other("SMB connection already closed".into()))?;
            let ctx = conn
                .client
                .ctx()
                .map_err(|e| map_error(&label, &shown, e))?;
            let file = raw::open(ctx, &url, flags)
                .map_err(|e| map_error(&label, &shown, SmbError::Io(e)))?;
            match setup(ctx, file) {
                Ok(out) => {
                    let fd = *next_id;
                    *next_id += 1;
                    conn.files.insert(fd, file);
                    Ok((fd, out))
                }
                Err(e) => {
                    let _ = raw::close(ctx, file);
                    Err(e)
                }
            }
        })
        .await?;
        let file = FileRef {
            conn: id,
            fd,
            label: self.label.clone(),
            path: path.to_string(),
        };
        Ok((file, out))
    }

    fn entry(path: &str, size: u64, is_dir: bool, mtime: SystemTime) -> Entry {
        Entry {
            path: path.to_string(),
            name: file_name(path).to_string(),
            size: if is_dir { 0 } else { size },
            mtime: Some(DateTime::<Utc>::from(mtime)),
            is_dir,
            etag: None,
        }
    }
}

impl Drop for SmbFs {
    fn drop(&mut self) {
        if let Some(id) = self.conn.get_mut().take() {
            fire_and_forget(move |w| {
                w.conns.remove(&id);
            });
        }
    }
}

/// `[v6]` for an IPv6 address in a URL.
fn bracket(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

fn map_error(label: &str, path: &str, e: SmbError) -> VfsError {
    match e {
        SmbError::Io(io) => {
            let code = io.raw_os_error();
            let connection = matches!(
                io.kind(),
                io::ErrorKind::ConnectionRefused
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::TimedOut
                    | io::ErrorKind::HostUnreachable
                    | io::ErrorKind::NetworkUnreachable
                    | io::ErrorKind::BrokenPipe
            ) || code == Some(libc::EHOSTDOWN)
                || code == Some(libc::ETIMEDOUT);
            if connection {
                VfsError::Connection {
                    target: label.to_string(),
                    message: io.to_string(),
                }
            } else if matches!(
                io.kind(),
                io::ErrorKind::PermissionDenied | io::ErrorKind::NotFound
            ) || code == Some(libc::EEXIST)
            {
                // libsmbclient answers a refused login with EACCES/EPERM too; name the server.
                match io.kind() {
                    io::ErrorKind::NotFound => VfsError::NotFound(path.to_string()),
                    io::ErrorKind::PermissionDenied => {
                        VfsError::PermissionDenied(format!("{path} on {label}"))
                    }
                    _ => VfsError::AlreadyExists(path.to_string()),
                }
            } else {
                VfsError::Other(format!("{label}: {path}: {io}"))
            }
        }
        other => VfsError::Other(format!("{label}: {path}: {other}")),
    }
}

/// A file open on the SMB thread; closed (without waiting) when dropped.
struct FileRef {
    conn: u64,
    fd: u64,
    label: String,
    path: String,
}

impl FileRef {
    /// Run `op` on the open file.
    fn run<T: Send + 'static>(
        &self,
        op: impl FnOnce(*mut SMBCCTX, *mut SMBCFILE) -> io::Result<T> + Send + 'static,
    ) -> BoxFuture<'static, VfsResult<T>> {
        let (conn, fd) = (self.conn, self.fd);
        let (label, path) = (self.label.clone(), self.path.clone());
        on_smb_thread(move |w| {
            let conn = w
                .conns
                .get(&conn)
                .ok_or_else(|| VfsError::Other("SMB connection already closed".into()))?;
            let file = *conn
                .files
                .get(&fd)
                .ok_or_else(|| VfsError::Other(format!("{label}: {path}: file closed")))?;
            let ctx = conn.client.ctx().map_err(|e| map_error(&label, &path, e))?;
            op(ctx, file).map_err(|e| map_error(&label, &path, SmbError::Io(e)))
        })
        .boxed()
    }

    /// Close the file now, so the server lets others delete or rename it.
    fn close(&self) -> BoxFuture<'static, VfsResult<()>> {
        let (conn, fd) = (self.conn, self.fd);
        let (label, path) = (self.label.clone(), self.path.clone());
        on_smb_thread(move |w| {
            close_file(w, conn, fd).map_err(|e| map_error(&label, &path, SmbError::Io(e)))
        })
        .boxed()
    }
}

/// Close file `fd` of connection `conn` (a no-op if it is closed already).
fn close_file(w: &mut Worker, conn: u64, fd: u64) -> io::Result<()> {
    let Some(conn) = w.conns.get_mut(&conn) else {
        return Ok(());
    };
    let Some(file) = conn.files.remove(&fd) else {
        return Ok(());
    };
    let ctx = conn.client.ctx().map_err(io::Error::other)?;
    raw::close(ctx, file)
}

impl Drop for FileRef {
    fn drop(&mut self) {
        let (conn, fd) = (self.conn, self.fd);
        fire_and_forget(move |w| {
            let _ = close_file(w, conn, fd);
        });
    }
}

fn to_io(e: VfsError) -> io::Error {
    match e {
        VfsError::Io { source, .. } => source,
        other => io::Error::other(other.to_string()),
    }
}

/// Streams writes to an open file, one [`CHUNK`] at a time.
struct SmbWriter {
    file: std::sync::Arc<FileRef>,
    buf: Vec<u8>,
    pending: Option<BoxFuture<'static, VfsResult<()>>>,
    closing: Option<BoxFuture<'static, VfsResult<()>>>,
}

impl SmbWriter {
    fn start(&mut self) {
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.pending = Some(self.file.run(move |ctx, f| raw::write_all(ctx, f, &data)));
    }

    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(fut) = self.pending.as_mut() {
            match fut.poll_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(r) => {
                    self.pending = None;
                    r.map_err(to_io)?;
                }
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for SmbWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.buf.len() >= CHUNK {
            // One write in flight while the next chunk fills.
            std::task::ready!(this.poll_pending(cx))?;
            this.start();
        }
        let n = data.len().min(CHUNK - this.buf.len());
        this.buf.extend_from_slice(&data[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        std::task::ready!(this.poll_pending(cx))?;
        if !this.buf.is_empty() {
            this.start();
            std::task::ready!(this.poll_pending(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // libsmbclient writes synchronously: the data is on the server once the last write
        // returned. Close now: an open handle keeps others from deleting or renaming it.
        std::task::ready!(self.as_mut().poll_flush(cx))?;
        let this = &mut *self;
        let closing = this.closing.get_or_insert_with(|| this.file.close());
        closing.poll_unpin(cx).map_err(to_io)
    }
}

/// Chunks read ahead of the consumer: the SMB thread reads the next while one is consumed.
const READ_AHEAD: usize = 1;

#[async_trait]
impl Vfs for SmbFs {
    fn describe(&self) -> String {
        self.label.clone()
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
        self.stat("/").await.map(|_| ())
    }

    async fn stat(&self, path: &str) -> VfsResult<Entry> {
        let shown = normalize(path);
        let target = self.share_path(path);
        let label = self.label.clone();
        let st = {
            let shown = shown.clone();
            self.with_client(move |c| c.stat(&target).map_err(|e| map_error(&label, &shown, e)))
                .await?
        };
        Ok(Self::entry(&shown, st.size, st.mode.is_dir(), st.modified))
    }

    async fn list(&self, dir: &str) -> VfsResult<EntryStream<'_>> {
        let dir = normalize(dir);
        let target = self.share_path(&dir);
        let (label, shown) = (self.label.clone(), dir.clone());
        let listed = self
            .with_client(move |c| match c.list_dirplus(&target) {
                Ok(entries) => Ok(entries),
                // pavao drops opendir's errno; ask again with stat, which keeps it.
                Err(SmbError::BadFileDescriptor) => match c.stat(&target) {
                    Err(e) => Err(map_error(&label, &shown, e)),
                    Ok(st) if !st.mode.is_dir() => {
                        Err(VfsError::Other(format!("{label}: {shown} is not a folder")))
                    }
                    Ok(_) => Err(VfsError::Other(format!(
                        "{label}: {shown}: the folder could not be listed"
                    ))),
                },
                Err(e) => Err(map_error(&label, &shown, e)),
            })
            .await?;
        let entries = listed.into_iter().filter_map(move |e| {
            let is_dir = match e.get_type() {
                SmbDirentType::Dir => true,
                SmbDirentType::File => false,
                // Shares, printers, links and the like are not files of this share.
                _ => return None,
            };
            let path = join(&dir, e.name());
            Some(Ok(Self::entry(&path, e.size, is_dir, e.mtime)))
        });
        Ok(futures::stream::iter(entries).boxed())
    }

    async fn read(&self, path: &str, offset: u64, len: Option<u64>) -> VfsResult<VfsReader> {
        let path = normalize(path);
        let (label, shown) = (self.label.clone(), path.clone());
        // Open, refuse a folder (as other backends do, here rather than at the first read)
        // and seek, in one trip.
        let (file, size) = self
            .open_file(&path, libc::O_RDONLY, move |ctx, f| {
                let io = |e| map_error(&label, &shown, SmbError::Io(e));
                let st = SmbStat::from(raw::fstat(ctx, f).map_err(io)?);
                if st.mode.is_dir() {
                    return Err(VfsError::Other(format!(
                        "{label}: {shown} is a folder, not a file"
                    )));
                }
                if offset > 0 {
                    raw::seek(ctx, f, offset).map_err(io)?;
                }
                Ok(st.size)
            })
            .await?;
        // A task reads ahead into a small queue; dropping the reader stops it and closes
        // the file.
        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(READ_AHEAD);
        tokio::spawn(async move {
            let mut remaining = len.unwrap_or(u64::MAX);
            // Ask for what the file holds (a read past its end fails in libsmbclient when it
            // spans several requests), then once more, a little, for the end or growth.
            let mut left = size.saturating_sub(offset);
            while remaining > 0 {
                let want = remaining.min(READ_CHUNK as u64).min(left.max(64 * 1024)) as usize;
                let chunk = file.run(move |ctx, f| raw::read(ctx, f, want)).await;
                let chunk = match chunk {
                    Ok(c) if c.is_empty() => break,
                    Ok(c) => c,
                    Err(e) => {
                        let _ = tx.send(Err(to_io(e))).await;
                        break;
                    }
                };
                remaining -= chunk.len() as u64;
                left = left.saturating_sub(chunk.len() as u64);
                if tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                    break;
                }
            }
            // Queue the close before the reader sees the end, so the file is closed by
            // the time the caller's next SMB call (say, a delete) runs.
            drop(file);
            drop(tx);
        });
        let chunks =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
        Ok(Box::pin(tokio_util::io::StreamReader::new(chunks)))
    }

    async fn write(&self, path: &str, mode: WriteMode) -> VfsResult<VfsWriter> {
        let path = normalize(path);
        let (label, shown) = (self.label.clone(), path.clone());
        let (file, ()) = match mode {
            WriteMode::Create => {
                let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC;
                self.open_file(&path, flags, |_, _| Ok(())).await?
            }
            WriteMode::ResumeAt(offset) => {
                // Keep exactly the first `offset` bytes: a longer partial is cut there, so
                // nothing stale is left after what is written now.
                // Read access too: `fstat` needs it.
                self.open_file(&path, libc::O_RDWR, move |ctx, f| {
                    let io = |e| map_error(&label, &shown, SmbError::Io(e));
                    let size = raw::fstat(ctx, f).map_err(io)?.st_size as u64;
                    if size < offset {
                        return Err(VfsError::Other(format!(
                            "{label}: cannot resume {shown} at byte {offset}: it holds only {size} bytes"
                        )));
                    }
                    if size > offset {
                        raw::truncate(ctx, f, offset).map_err(io)?;
                    }
                    raw::seek(ctx, f, offset).map_err(io)
                })
                .await?
            }
        };
        Ok(Box::pin(SmbWriter {
            file: std::sync::Arc::new(file),
            buf: Vec::with_capacity(CHUNK),
            pending: None,
            closing: None,
        }))
    }

    async fn mkdir_all(&self, path: &str) -> VfsResult<()> {
        let path = normalize(path);
        let mut current = String::new();
        let mut targets = Vec::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            current = join(&current, part);
            targets.push((current.clone(), self.share_path(&current)));
        }
        let label = self.label.clone();
        self.with_client(move |c| {
            // Usually the folder is there already: one round trip says so.
            if let Some((_, deepest)) = targets.last()
                && c.stat(deepest).is_ok_and(|st| st.mode.is_dir())
            {
                return Ok(());
            }
            for (shown, target) in targets {
                match c.stat(&target) {
                    Ok(st) if st.mode.is_dir() => continue,
                    Ok(_) => {
                        return Err(VfsError::AlreadyExists(format!(
                            "{shown} (a file, not a folder)"
                        )));
                    }
                    Err(_) => {}
                }
                if let Err(e) = c.mkdir(&target, SmbMode::from(0o755)) {
                    // Another writer may have made it meanwhile.
                    if !c.stat(&target).is_ok_and(|st| st.mode.is_dir()) {
                        return Err(map_error(&label, &shown, e));
                    }
                }
            }
            Ok(())
        })
        .await
    }

    async fn rename(&self, from: &str, to: &str) -> VfsResult<()> {
        let (from, to) = (normalize(from), normalize(to));
        let (src, dst) = (self.share_path(&from), self.share_path(&to));
        let label = self.label.clone();
        self.with_client(move |c| {
            c.rename(&src, &dst)
                .map_err(|e| map_error(&label, &format!("{from} -> {to}"), e))
        })
        .await
    }

    async fn remove_file(&self, path: &str) -> VfsResult<()> {
        let shown = normalize(path);
        let target = self.share_path(path);
        let label = self.label.clone();
        self.with_client(move |c| c.unlink(&target).map_err(|e| map_error(&label, &shown, e)))
            .await
    }

    async fn remove_dir(&self, path: &str) -> VfsResult<()> {
        let shown = normalize(path);
        let target = self.share_path(path);
        let label = self.label.clone();
        self.with_client(move |c| c.rmdir(&target).map_err(|e| map_error(&label, &shown, e)))
            .await
    }

    async fn set_mtime(&self, path: &str, mtime: DateTime<Utc>) -> VfsResult<()> {
        let shown = normalize(path);
        let url = self.url(path)?;
        let label = self.label.clone();
        let time = libc::timeval {
            tv_sec: mtime.timestamp() as libc::time_t,
            tv_usec: mtime.timestamp_subsec_micros() as libc::suseconds_t,
        };
        self.with_client(move |c| {
            let ctx = c.ctx().map_err(|e| map_error(&label, &shown, e))?;
            raw::utimes(ctx, &url, time).map_err(|e| map_error(&label, &shown, SmbError::Io(e)))
        })
        .await
    }

    async fn close(&self) -> VfsResult<()> {
        if let Some(id) = self.conn.lock().await.take() {
            on_smb_thread(move |w| {
                w.conns.remove(&id);
                Ok(())
            })
            .await?;
        }
        Ok(())
    }
}
