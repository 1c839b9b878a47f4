//! aft's virtual file systems.
//!
//! Every storage protocol aft speaks implements one small trait, [`Vfs`]. Everything a
//! transfer needs beyond raw storage — overwrite policies, temp names, resume, verification,
//! retries — is written once in the transfer module and adapts to what a backend declares
//! in its [`Capabilities`], the way SFTPGo's `vfs.Fs` does. A backend is added by
//! implementing [`Vfs`] and running the shared conformance suite against its real server.

pub mod config;
pub mod conformance;
pub mod dry_run;
mod error;
pub mod local;
mod ops;
pub mod otfe;
mod path;
pub mod registry;
pub mod sftp;
// SMB/Windows shares (libsmbclient, behind the cargo feature `smb`).
pub mod smb;
// Stall detection (`Timeout`) for the FTP and HTTP backends.
pub mod stall;
pub mod transfer;
mod types;

// Remote backends (VFS-BACKENDS helper): FTP/FTPS on suppaftp, the rest on opendal.
pub mod azure;
pub mod ftp;
pub mod gcs;
pub mod object_store;
pub mod s3;
pub mod tls;
pub mod webdav;

pub use config::{ConnectionReport, ConnectionTestError, open_backend, test_connection};
pub use error::VfsError;
pub use ops::{exists, read_all, remove_tree, walk, write_all};
pub use path::{file_name, join, normalize, parent};
pub use types::{Capabilities, Entry, EntryStream, HashAlgo, VfsReader, VfsWriter, WriteMode};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Result type of every VFS operation.
pub type VfsResult<T> = Result<T, VfsError>;

/// One storage backend: local disk, an SFTP server, an S3 bucket, ...
///
/// Paths are absolute, `/`-separated and relative to the backend's root (a bucket, a
/// container, the login directory, a base folder). Implementations must be cheap to share
/// between tasks (`Arc<dyn Vfs>`); connection pooling, if any, is theirs.
#[async_trait]
pub trait Vfs: Send + Sync {
    /// A short label for logs and errors, such as `sftp://user@host:22`.
    fn describe(&self) -> String;

    /// What this backend can do; the shared transfer code adapts to it.
    fn capabilities(&self) -> Capabilities;

    /// Open the connection and log in now, so bad settings show up here (SyncJS
    /// `Connect()`); backends otherwise connect lazily on first use. Default: nothing to do.
    async fn connect(&self) -> VfsResult<()> {
        Ok(())
    }

    /// Metadata of one file or directory. `VfsError::NotFound` when absent.
    async fn stat(&self, path: &str) -> VfsResult<Entry>;

    /// The entries directly inside `dir`, streamed: never collect a whole directory.
    async fn list(&self, dir: &str) -> VfsResult<EntryStream<'_>>;

    /// Read `path` from byte `offset`, up to `len` bytes (to the end when `None`).
    async fn read(&self, path: &str, offset: u64, len: Option<u64>) -> VfsResult<VfsReader>;

    /// How many ranged reads of one big file this backend serves best at once (an object
    /// store's `Streams`). Above 1, a copy of a big file to a target that takes writes at
    /// offsets ([`Vfs::create_positional`]) reads that many ranges at once with
    /// [`Vfs::read_range`]. Default 1: one stream, read in order.
    fn read_streams(&self) -> usize {
        1
    }

    /// Bytes `range` of `path`, read as one request, of the version whose ETag is `etag`
    /// when given (a replaced file then fails the read instead of mixing two versions).
    /// Default: [`Vfs::read`] of the range, without the version check.
    async fn read_range(
        &self,
        path: &str,
        range: std::ops::Range<u64>,
        etag: Option<&str>,
    ) -> VfsResult<VfsReader> {
        let _ = etag;
        self.read(path, range.start, Some(range.end - range.start))
            .await
    }

    /// Create `path` (empty) as a local file, open to read and write, that several tasks
    /// write at their offsets at once, as [`Vfs::write`] with [`WriteMode::Create`] would
    /// have made it; `None` where
    /// the backend has no such file (every remote one). Default `None`.
    async fn create_positional(&self, path: &str) -> VfsResult<Option<std::fs::File>> {
        let _ = path;
        Ok(None)
    }

    /// Open `path` for writing. The data is complete only once the writer's
    /// `shutdown()` returns Ok; a writer dropped before that leaves no file the backend can
    /// promise is whole (that is why the transfer code writes to a temp name first where
    /// `capabilities().atomic_write` is false).
    async fn write(&self, path: &str, mode: WriteMode) -> VfsResult<VfsWriter>;

    /// Create `path` and any missing parents; Ok if it already exists as a directory.
    async fn mkdir_all(&self, path: &str) -> VfsResult<()>;

    /// Rename a file or directory, replacing a file at `to` where the backend allows.
    async fn rename(&self, from: &str, to: &str) -> VfsResult<()>;

    /// Delete one file.
    async fn remove_file(&self, path: &str) -> VfsResult<()>;

    /// Delete one empty directory.
    async fn remove_dir(&self, path: &str) -> VfsResult<()>;

    /// Delete `path` and everything below it; Ok if it does not exist. The default walks
    /// the tree with `list`; object stores override it with a prefix delete.
    async fn remove_all(&self, path: &str) -> VfsResult<()> {
        ops::remove_tree(self, path).await
    }

    /// Set a file's modification time. `VfsError::Unsupported` where the protocol cannot.
    async fn set_mtime(&self, path: &str, mtime: DateTime<Utc>) -> VfsResult<()> {
        let _ = (path, mtime);
        Err(VfsError::Unsupported("setting modification times"))
    }

    /// A checksum the server computes itself (no download), if it can; `Ok(None)` if not.
    async fn checksum(&self, path: &str, algo: HashAlgo) -> VfsResult<Option<String>> {
        let _ = (path, algo);
        Ok(None)
    }

    /// Release connections. Further calls may reconnect or fail.
    async fn close(&self) -> VfsResult<()> {
        Ok(())
    }

    /// What the backend did of its own accord that the job's log should say (an abandoned
    /// multipart upload it aborted), each line handed out once. Default: nothing.
    fn take_notes(&self) -> Vec<String> {
        Vec::new()
    }
}
