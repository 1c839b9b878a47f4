//! Local disk, under a root folder (`/` by default, so VFS paths are the machine's paths).
//!
//! Writes go to the final name (`atomic_write = false`): the transfer code puts a temp name
//! in front when asked. Resume, ranged reads and `set_mtime` work; there is no server-side
//! hash (a hash computed here would be a full read, which the transfer code does itself
//! on the stream).

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::config::Fields;
use crate::registry::{BackendInfo, FieldInfo, TypeInfo};
use crate::{
    Capabilities, Entry, EntryStream, Vfs, VfsError, VfsReader, VfsResult, VfsWriter, WriteMode,
    file_name, join, normalize,
};

/// The local-disk backend in the registry.
pub const BACKEND: BackendInfo = BackendInfo {
    types: &[TypeInfo {
        name: "disk",
        aliases: &["local"],
        label: "Local disk",
        client: "LocalClient",
        defaults: &[],
    }],
    fields: &[
        FieldInfo::text("Root", "Root folder")
            .placeholder("/srv/outbox")
            .help("VFS path / is this folder; / when empty."),
        FieldInfo::text("Path", "Path (older name of Root)")
            .help("Same as Root, which wins when both are set.")
            .advanced(),
    ],
    one_of: &[],
    open: |f| Ok(std::sync::Arc::new(LocalFs::from_fields(f)?)),
};

/// Whether a rename into place is made durable first (the `local-fsync` setting): the
/// file's data is flushed to disk before the rename, the folder's entry after it, so a
/// finished file survives a power cut. Process-wide, since every local backend of a job
/// (clients, `Upload` sources and targets, file host calls) writes the same disk.
static FSYNC: AtomicBool = AtomicBool::new(true);

/// Turn the flush around renames on or off (on by default).
pub fn set_fsync(on: bool) {
    FSYNC.store(on, Ordering::Relaxed);
}

/// Whether renames are flushed (see [`set_fsync`]).
pub fn fsync_enabled() -> bool {
    FSYNC.load(Ordering::Relaxed)
}

/// Bytes written to a local file between two early write-backs ([`EarlyWriteback`]).
const WRITEBACK_EVERY: u64 = 8 * 1024 * 1024;

/// A local file being written that, with `local-fsync` on, has the kernel start writing
/// each 8 MiB to disk as soon as it is written (`sync_file_range` with
/// `SYNC_FILE_RANGE_WRITE`, which does not wait for the disk). The kernel would otherwise
/// keep a big file's pages dirty until the flush before the rename, and that flush then
/// wrote the whole file while the job waited: 0.4 s of a 2.1 s 1 GiB download. Now the
/// disk writes beside the transfer and the flush waits for the tail. What is durable, and
/// when, is unchanged: only the flush before the rename promises anything.
struct EarlyWriteback {
    file: tokio::fs::File,
    /// Where the file's bytes reach (its offset), and where the last write-back ended.
    written: u64,
    started: u64,
}

impl EarlyWriteback {
    fn new(file: tokio::fs::File, offset: u64) -> Self {
        Self {
            file,
            written: offset,
            started: offset,
        }
    }

    /// Start writing `[started, upto)` to disk.
    #[cfg(target_os = "linux")]
    fn start_writeback(&mut self, upto: u64) {
        use std::os::fd::AsRawFd;
        let (offset, len) = (self.started, upto - self.started);
        // SAFETY: a plain system call on the file's own descriptor; no memory is passed.
        // A failure only means the flush before the rename does all the work, as before.
        unsafe {
            libc::sync_file_range(
                self.file.as_raw_fd(),
                offset as libc::off64_t,
                len as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            );
        }
        self.started = upto;
    }

    #[cfg(not(target_os = "linux"))]
    fn start_writeback(&mut self, upto: u64) {
        self.started = upto;
    }
}

impl tokio::io::AsyncWrite for EarlyWriteback {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let n = std::task::ready!(std::pin::Pin::new(&mut self.file).poll_write(cx, buf))?;
        // tokio's file takes a write and does it in the background, waiting for it before
        // the next: when a write is taken, every byte before it is in the page cache.
        let before = self.written;
        self.written += n as u64;
        if before - self.started >= WRITEBACK_EVERY && fsync_enabled() {
            self.start_writeback(before);
        }
        std::task::Poll::Ready(Ok(n))
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.file).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.file).poll_shutdown(cx)
    }
}

/// Flush `file`'s data, rename it to `to`, and flush `to`'s folder entry.
async fn durable_rename(from: PathBuf, to: PathBuf) -> std::io::Result<()> {
    tokio::task::spawn_blocking(move || {
        // A folder cannot be opened for writing: only files are flushed.
        if std::fs::metadata(&from)?.is_file() {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&from)?
                .sync_all()?;
        }
        std::fs::rename(&from, &to)?;
        if let Some(dir) = to.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })
    .await
    .map_err(std::io::Error::other)?
}

/// A folder of the local file system seen as a [`Vfs`].
#[derive(Debug, Clone)]
pub struct LocalFs {
    root: PathBuf,
}

impl LocalFs {
    /// A backend rooted at `root` (VFS path `/x` is `root/x`); the folder must exist.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Build from client/VFS Library fields: `Root` (or `Path`), default `/`.
    pub fn from_fields(fields: &Fields<'_>) -> VfsResult<Self> {
        let root = fields
            .str("Root")
            .or_else(|| fields.str("Path"))
            .unwrap_or_else(|| "/".into());
        Ok(Self::new(root))
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The local path of a VFS path (never escapes the root: `..` is resolved first).
    pub fn local_path(&self, path: &str) -> PathBuf {
        let clean = normalize(path);
        self.root.join(clean.trim_start_matches('/'))
    }

    fn err(&self, path: &str, e: std::io::Error) -> VfsError {
        VfsError::io(self.local_path(path).display().to_string(), e)
    }
}

/// Files up to this size (from the offset read) are read whole when opened.
const SMALL_READ: u64 = 64 * 1024;

fn entry_from(path: &str, meta: &std::fs::Metadata) -> Entry {
    let is_dir = meta.is_dir();
    Entry {
        path: normalize(path),
        name: file_name(path),
        size: if is_dir { 0 } else { meta.len() },
        mtime: meta.modified().ok().map(DateTime::<Utc>::from),
        is_dir,
        etag: None,
    }
}

#[async_trait]
impl Vfs for LocalFs {
    fn describe(&self) -> String {
        // Labels are describe() + an absolute path: a root of `/` must not give `file:////`.
        let root = self.root.to_string_lossy();
        format!("file://{}", root.trim_end_matches('/'))
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

    async fn stat(&self, path: &str) -> VfsResult<Entry> {
        let meta = tokio::fs::metadata(self.local_path(path))
            .await
            .map_err(|e| self.err(path, e))?;
        Ok(entry_from(path, &meta))
    }

    async fn list(&self, dir: &str) -> VfsResult<EntryStream<'_>> {
        let dir = normalize(dir);
        let local = self.local_path(&dir);
        let read_dir = tokio::fs::read_dir(&local)
            .await
            .map_err(|e| self.err(&dir, e))?;
        if !tokio::fs::metadata(&local)
            .await
            .map_err(|e| self.err(&dir, e))?
            .is_dir()
        {
            return Err(VfsError::Other(format!(
                "{}: not a directory",
                local.display()
            )));
        }
        let stream = futures::stream::unfold(read_dir, move |mut rd| {
            let dir = dir.clone();
            async move {
                loop {
                    let item = match rd.next_entry().await {
                        Ok(Some(de)) => de,
                        Ok(None) => return None,
                        Err(e) => return Some((Err(self.err(&dir, e)), rd)),
                    };
                    let name = item.file_name().to_string_lossy().into_owned();
                    let path = join(&dir, &name);
                    // Follow symlinks like `ls -L`; a dangling one is skipped, not fatal.
                    match tokio::fs::metadata(item.path()).await {
                        Ok(meta) => return Some((Ok(entry_from(&path, &meta)), rd)),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => return Some((Err(self.err(&path, e)), rd)),
                    }
                }
            }
        });
        Ok(stream.boxed())
    }

    async fn read(&self, path: &str, offset: u64, len: Option<u64>) -> VfsResult<VfsReader> {
        let local = self.local_path(path);
        // One trip to the blocking pool opens, checks and positions the file, and reads a
        // small one whole: a trip each cost small-file uploads most of their CPU in
        // thread switches.
        let opened = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
            use std::io::{Read, Seek};
            let mut file = std::fs::File::open(&local)?;
            let meta = file.metadata()?;
            if meta.is_dir() {
                return Ok(None);
            }
            if offset > 0 {
                file.seek(SeekFrom::Start(offset))?;
            }
            let mut head = Vec::new();
            let mut whole = false;
            if meta.len().saturating_sub(offset) <= SMALL_READ {
                // One byte past the limit shows a file that grew meanwhile: the rest is
                // then read from the file as a big one is.
                let wanted = len.unwrap_or(u64::MAX);
                let limit = wanted.min(SMALL_READ + 1);
                (&mut file).take(limit).read_to_end(&mut head)?;
                whole = (head.len() as u64) < limit || limit == wanted;
            }
            Ok(Some((file, head, whole)))
        })
        .await
        .map_err(|e| VfsError::Other(format!("reading {}: {e}", self.local_path(path).display())))?
        .map_err(|e| self.err(path, e))?;
        let Some((file, head, whole)) = opened else {
            return Err(VfsError::Other(format!(
                "{}: is a directory",
                self.local_path(path).display()
            )));
        };
        if whole {
            // Read to its end, or to `len`, already.
            return Ok(Box::pin(std::io::Cursor::new(head)));
        }
        let rest = tokio::io::BufReader::with_capacity(256 * 1024, tokio::fs::File::from_std(file));
        let reader = std::io::Cursor::new(head).chain(rest);
        Ok(match len {
            Some(n) => Box::pin(reader.take(n)),
            None => Box::pin(reader),
        })
    }

    async fn write(&self, path: &str, mode: WriteMode) -> VfsResult<VfsWriter> {
        let local = self.local_path(path);
        let file = match mode {
            WriteMode::Create => tokio::fs::File::create(&local).await,
            WriteMode::ResumeAt(offset) => {
                async {
                    let mut f = tokio::fs::OpenOptions::new()
                        .write(true)
                        .open(&local)
                        .await?;
                    f.set_len(offset).await?;
                    f.seek(SeekFrom::Start(offset)).await?;
                    Ok(f)
                }
                .await
            }
        }
        .map_err(|e| self.err(path, e))?;
        let start = match mode {
            WriteMode::Create => 0,
            WriteMode::ResumeAt(offset) => offset,
        };
        Ok(Box::pin(tokio::io::BufWriter::with_capacity(
            256 * 1024,
            EarlyWriteback::new(file, start),
        )))
    }

    async fn create_positional(&self, path: &str) -> VfsResult<Option<std::fs::File>> {
        // Readable too: the record's hash is computed on the file behind the writers.
        let file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(self.local_path(path))
            .await
            .map_err(|e| self.err(path, e))?;
        Ok(Some(file.into_std().await))
    }

    async fn mkdir_all(&self, path: &str) -> VfsResult<()> {
        tokio::fs::create_dir_all(self.local_path(path))
            .await
            .map_err(|e| self.err(path, e))
    }

    async fn rename(&self, from: &str, to: &str) -> VfsResult<()> {
        let (from_path, to_path) = (self.local_path(from), self.local_path(to));
        let renamed = if fsync_enabled() {
            durable_rename(from_path, to_path).await
        } else {
            tokio::fs::rename(from_path, to_path).await
        };
        renamed.map_err(|e| {
            VfsError::io(
                format!(
                    "{} -> {}",
                    self.local_path(from).display(),
                    self.local_path(to).display()
                ),
                e,
            )
        })
    }

    async fn remove_file(&self, path: &str) -> VfsResult<()> {
        tokio::fs::remove_file(self.local_path(path))
            .await
            .map_err(|e| self.err(path, e))
    }

    async fn remove_dir(&self, path: &str) -> VfsResult<()> {
        tokio::fs::remove_dir(self.local_path(path))
            .await
            .map_err(|e| self.err(path, e))
    }

    async fn remove_all(&self, path: &str) -> VfsResult<()> {
        let local = self.local_path(path);
        let result = match tokio::fs::symlink_metadata(&local).await {
            Ok(m) if m.is_dir() => tokio::fs::remove_dir_all(&local).await,
            Ok(_) => tokio::fs::remove_file(&local).await,
            Err(e) => Err(e),
        };
        match result {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other.map_err(|e| self.err(path, e)),
        }
    }

    async fn set_mtime(&self, path: &str, mtime: DateTime<Utc>) -> VfsResult<()> {
        let local = self.local_path(path);
        let when: std::time::SystemTime = mtime.into();
        let target = local.clone();
        tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&target)?;
            file.set_modified(when)
        })
        .await
        .map_err(|e| VfsError::Other(format!("{}: set_mtime task failed: {e}", local.display())))?
        .map_err(|e| self.err(path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read_all;
    use tokio::io::AsyncReadExt;

    /// Reads around [`SMALL_READ`], where a file is read whole when opened or streamed:
    /// every offset and length gives the file's very bytes.
    #[tokio::test]
    async fn reads_around_the_small_read_limit_give_the_files_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let fs = LocalFs::new(dir.path());
        let small = SMALL_READ as usize;
        for size in [0, 1, small - 1, small, small + 1, 3 * small] {
            let data: Vec<u8> = (0..size).map(|i| (i * 7 + size) as u8).collect();
            let name = format!("/f{size}.bin");
            std::fs::write(dir.path().join(&name[1..]), &data).unwrap();
            assert_eq!(read_all(&fs, &name).await.unwrap(), data, "size {size}");
            for offset in [0, 1, size / 2, size.saturating_sub(1), size].map(|o| o.min(size)) {
                for len in [
                    None,
                    Some(0),
                    Some(1),
                    Some(small),
                    Some(small + 1),
                    Some(size),
                ] {
                    let mut got = Vec::new();
                    fs.read(&name, offset as u64, len.map(|n| n as u64))
                        .await
                        .unwrap()
                        .read_to_end(&mut got)
                        .await
                        .unwrap();
                    let end = len.map_or(size, |n| (offset + n).min(size));
                    assert_eq!(
                        got,
                        data[offset..end],
                        "size {size} offset {offset} len {len:?}"
                    );
                }
            }
        }
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        assert!(
            fs.read("/sub", 0, None).await.is_err(),
            "a folder is refused"
        );
        assert!(matches!(
            fs.read("/missing", 0, None).await,
            Err(VfsError::NotFound(_))
        ));
    }
}
