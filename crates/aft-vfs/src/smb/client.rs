//! The SMB backend proper (feature `smb`): every libsmbclient call runs on one dedicated
//! thread.
//!
//! pavao is synchronous and serializes all native calls process-wide anyway (libsmbclient
//! shares global state), so one thread loses no parallelism. It also keeps the runtime's
//! workers free, lets open files (`SmbFile`, which borrows its client and is not `Send`)
//! live between calls, and makes the one call pavao lacks — `utimes`, for `set_mtime` —
//! safe to make on the raw context: nothing else touches libsmbclient meanwhile.
//!
//! Listings: libsmbclient's `opendir` fetches the whole directory before the first entry is
//! returned, so a listing is held in memory once on the SMB thread; it is handed to the
//! caller as a stream.

use std::collections::HashMap;
use std::ffi::CString;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::pin::Pin;
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use pavao::{
    SmbClient, SmbCredentials, SmbDirentType, SmbError, SmbFile, SmbMode, SmbOpenOptions,
    SmbOptions,
};
use tokio::io::AsyncWrite;
use tokio::sync::{Mutex, oneshot};

use super::SmbConfig;
use crate::{
    Capabilities, Entry, EntryStream, Vfs, VfsError, VfsReader, VfsResult, VfsWriter, WriteMode,
    file_name, join, normalize,
};

/// Bytes per read or write call; libsmbclient pipelines the SMB requests inside one call.
const CHUNK: usize = 4 * 1024 * 1024;

type Files<'a> = HashMap<u64, SmbFile<'a>>;

self_cell::self_cell!(
    /// One logged-in client and the files open on it.
    struct Conn {
        owner: SmbClient,
        #[not_covariant]
        dependent: Files,
    }
);

/// The SMB thread's state: every connection of every SMB backend in the process.
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

/// An SMB share as a [`Vfs`].
pub struct SmbFs {
    config: SmbConfig,
    label: String,
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

    /// The connection's id, opening it on the SMB thread first if needed.
    async fn conn_id(&self) -> VfsResult<u64> {
        let mut slot = self.conn.lock().await;
        if let Some(id) = *slot {
            return Ok(id);
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
            // Signing and encryption follow what the server requires (see the `smb` module
            // docs for why there is no client-side requirement).
            let options = SmbOptions::default()
                // A wrong password must fail, not fall back to a guest session.
                .no_auto_anonymous_login(true)
                .case_sensitive(true);
            let client =
                SmbClient::new(credentials, options).map_err(|e| map_error(&label, "/", e))?;
            client
                .set_timeout(Duration::from_secs(c.timeout_secs))
                .map_err(|e| map_error(&label, "/", e))?;
            let id = w.next_id;
            w.next_id += 1;
            w.conns.insert(id, Conn::new(client, |_| HashMap::new()));
            Ok(id)
        })
        .await?;
        *slot = Some(id);
        Ok(id)
    }

    /// Run `op` with this backend's client (and its open files) on the SMB thread.
    async fn with_client<T: Send + 'static>(
        &self,
        op: impl for<'a> FnOnce(&'a SmbClient, &mut Files<'a>) -> VfsResult<T> + Send + 'static,
    ) -> VfsResult<T> {
        let id = self.conn_id().await?;
        on_smb_thread(move |w| {
            let conn = w
                .conns
                .get_mut(&id)
                .ok_or_else(|| VfsError::Other("SMB connection already closed".into()))?;
            conn.with_dependent_mut(|client, files| op(client, files))
        })
        .await
    }

    /// Open `path` with `options` (seeking to `offset`), keeping it on the SMB thread.
    async fn open_file(
        &self,
        path: &str,
        options: SmbOpenOptions,
        offset: u64,
    ) -> VfsResult<FileRef> {
        let id = self.conn_id().await?;
        let target = self.share_path(path);
        let (label, shown) = (self.label.clone(), path.to_string());
        let fd = on_smb_thread(move |w| {
            let Worker { conns, next_id } = w;
            let conn = conns
                .get_mut(&id)
                .ok_or_else(|| VfsError::Other("SMB connection already closed".into()))?;
            let fd = *next_id;
            *next_id += 1;
            conn.with_dependent_mut(|client, files| {
                let mut file = client
                    .open_with(&target, options)
                    .map_err(|e| map_error(&label, &shown, e))?;
                if offset > 0 {
                    file.seek(SeekFrom::Start(offset))
                        .map_err(|e| map_error(&label, &shown, SmbError::Io(e)))?;
                }
                files.insert(fd, file);
                Ok(fd)
            })
        })
        .await?;
        Ok(FileRef {
            conn: id,
            fd,
            label: self.label.clone(),
            path: path.to_string(),
        })
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
        op: impl FnOnce(&mut SmbFile<'_>) -> io::Result<T> + Send + 'static,
    ) -> BoxFuture<'static, VfsResult<T>> {
        let (conn, fd) = (self.conn, self.fd);
        let (label, path) = (self.label.clone(), self.path.clone());
        on_smb_thread(move |w| {
            let conn = w
                .conns
                .get_mut(&conn)
                .ok_or_else(|| VfsError::Other("SMB connection already closed".into()))?;
            conn.with_dependent_mut(|_, files| {
                let file = files
                    .get_mut(&fd)
                    .ok_or_else(|| VfsError::Other(format!("{label}: {path}: file closed")))?;
                op(file).map_err(|e| map_error(&label, &path, SmbError::Io(e)))
            })
        })
        .boxed()
    }
}

/// Close file `fd` of connection `conn` (a no-op if it is closed already).
fn close_file(w: &mut Worker, conn: u64, fd: u64) {
    if let Some(conn) = w.conns.get_mut(&conn) {
        // Dropping pavao's file closes it.
        conn.with_dependent_mut(|_, files| files.remove(&fd));
    }
}

impl FileRef {
    /// Close the file now, so the server lets others delete or rename it.
    fn close(&self) -> BoxFuture<'static, VfsResult<()>> {
        let (conn, fd) = (self.conn, self.fd);
        on_smb_thread(move |w| {
            close_file(w, conn, fd);
            Ok(())
        })
        .boxed()
    }
}

impl Drop for FileRef {
    fn drop(&mut self) {
        let (conn, fd) = (self.conn, self.fd);
        fire_and_forget(move |w| close_file(w, conn, fd));
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
    file: Arc<FileRef>,
    buf: Vec<u8>,
    pending: Option<BoxFuture<'static, VfsResult<()>>>,
    closing: Option<BoxFuture<'static, VfsResult<()>>>,
}

impl SmbWriter {
    fn start(&mut self) {
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.pending = Some(self.file.run(move |f| f.write_all(&data)));
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
            self.with_client(move |c, _| c.stat(&target).map_err(|e| map_error(&label, &shown, e)))
                .await?
        };
        Ok(Self::entry(&shown, st.size, st.mode.is_dir(), st.modified))
    }

    async fn list(&self, dir: &str) -> VfsResult<EntryStream<'_>> {
        let dir = normalize(dir);
        let target = self.share_path(&dir);
        let (label, shown) = (self.label.clone(), dir.clone());
        let listed = self
            .with_client(move |c, _| match c.list_dirplus(&target) {
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
        let opts = SmbOpenOptions::default().read(true);
        let file = Arc::new(self.open_file(&path, opts, offset).await?);
        // Refuse a folder here, as other backends do, rather than at the first read.
        let stat = self.stat(&path).await?;
        if stat.is_dir {
            return Err(VfsError::Other(format!(
                "{}: {path} is a folder, not a file",
                self.label
            )));
        }
        let remaining = len.unwrap_or(u64::MAX);
        let chunks =
            futures::stream::try_unfold((file, remaining), |(file, remaining)| async move {
                if remaining == 0 {
                    return Ok(None);
                }
                let want = remaining.min(CHUNK as u64) as usize;
                let chunk = file
                    .run(move |f| {
                        let mut buf = vec![0u8; want];
                        let mut got = 0;
                        while got < want {
                            match f.read(&mut buf[got..])? {
                                0 => break,
                                n => got += n,
                            }
                        }
                        buf.truncate(got);
                        Ok(buf)
                    })
                    .await
                    .map_err(to_io)?;
                if chunk.is_empty() {
                    return Ok(None);
                }
                let left = remaining - chunk.len() as u64;
                Ok::<_, io::Error>(Some((Bytes::from(chunk), (file, left))))
            });
        Ok(Box::pin(tokio_util::io::StreamReader::new(chunks)))
    }

    async fn write(&self, path: &str, mode: WriteMode) -> VfsResult<VfsWriter> {
        let path = normalize(path);
        let file = match mode {
            WriteMode::Create => {
                let opts = SmbOpenOptions::default()
                    .write(true)
                    .create(true)
                    .truncate(true);
                self.open_file(&path, opts, 0).await?
            }
            WriteMode::ResumeAt(offset) => {
                let size = self.stat(&path).await?.size;
                if size != offset {
                    // libsmbclient's ftruncate is not reachable through pavao's files.
                    return Err(VfsError::Other(format!(
                        "{}: cannot resume {path} at byte {offset}: it holds {size} bytes",
                        self.label
                    )));
                }
                let opts = SmbOpenOptions::default().write(true);
                self.open_file(&path, opts, offset).await?
            }
        };
        Ok(Box::pin(SmbWriter {
            file: Arc::new(file),
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
        self.with_client(move |c, _| {
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
        self.with_client(move |c, _| {
            c.rename(&src, &dst)
                .map_err(|e| map_error(&label, &format!("{from} -> {to}"), e))
        })
        .await
    }

    async fn remove_file(&self, path: &str) -> VfsResult<()> {
        let shown = normalize(path);
        let target = self.share_path(path);
        let label = self.label.clone();
        self.with_client(move |c, _| c.unlink(&target).map_err(|e| map_error(&label, &shown, e)))
            .await
    }

    async fn remove_dir(&self, path: &str) -> VfsResult<()> {
        let shown = normalize(path);
        let target = self.share_path(path);
        let label = self.label.clone();
        self.with_client(move |c, _| c.rmdir(&target).map_err(|e| map_error(&label, &shown, e)))
            .await
    }

    async fn set_mtime(&self, path: &str, mtime: DateTime<Utc>) -> VfsResult<()> {
        let shown = normalize(path);
        let c = &self.config;
        let url = format!(
            "smb://{}:{}/{}{}",
            bracket(&c.host),
            c.port,
            c.share,
            self.share_path(path)
        );
        let label = self.label.clone();
        self.with_client(move |c, _| {
            set_mtime_raw(c, &url, mtime).map_err(|e| map_error(&label, &shown, e))
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

/// `utimes` on the raw context: pavao has no call for it. Sound because this runs on the SMB
/// thread, the only thread that calls libsmbclient, so it cannot race a pavao call.
fn set_mtime_raw(client: &SmbClient, url: &str, mtime: DateTime<Utc>) -> Result<(), SmbError> {
    let url = CString::new(url)?;
    let ctx = client.ctx()?;
    let time = libc::timeval {
        tv_sec: mtime.timestamp() as libc::time_t,
        tv_usec: mtime.timestamp_subsec_micros() as libc::suseconds_t,
    };
    // Access and modification time, in that order.
    let mut times = [time, time];
    // SAFETY: `ctx` is the live, initialized context `client` owns for this whole call.
    let utimes = unsafe { pavao_sys::smbc_getFunctionUtimes(ctx) }
        .ok_or_else(|| SmbError::Io(io::Error::from_raw_os_error(libc::ENOSYS)))?;
    if utimes(ctx, url.as_ptr(), times.as_mut_ptr()) < 0 {
        return Err(SmbError::Io(io::Error::last_os_error()));
    }
    Ok(())
}
