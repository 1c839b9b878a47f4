use std::pin::Pin;

use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::VfsResult;

/// One file or directory as a backend reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Full path from the backend's root, `/`-separated.
    pub path: String,
    /// Last path component.
    pub name: String,
    /// Size in bytes (0 for directories).
    pub size: u64,
    /// Last modification time, where the backend knows it.
    pub mtime: Option<DateTime<Utc>>,
    /// Whether this is a directory (or a common prefix on object stores).
    pub is_dir: bool,
    /// An opaque version tag (S3/Azure/GCS ETag), where there is one.
    pub etag: Option<String>,
}

/// A directory listing, streamed entry by entry.
pub type EntryStream<'a> = BoxStream<'a, VfsResult<Entry>>;

/// A byte stream read from a backend.
pub type VfsReader = Pin<Box<dyn AsyncRead + Send>>;

/// A byte sink into a backend; complete only once `shutdown()` has returned Ok.
pub type VfsWriter = Pin<Box<dyn AsyncWrite + Send>>;

/// How [`crate::Vfs::write`] opens its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Create the file, replacing any existing one.
    Create,
    /// Keep the first `offset` bytes of the existing file and write from there (resume).
    /// Only called where `capabilities().resume_upload` is true.
    ResumeAt(u64),
}

/// Hash algorithms a backend may compute server-side, or the transfer code locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum HashAlgo {
    /// MD5, hex (S3 single-part ETags, Azure Content-MD5, GCS md5Hash).
    Md5,
    /// SHA-256, hex.
    Sha256,
}

/// Whether `s` has the form of an MD5 in hex: 32 hex digits, either case.
pub(crate) fn is_md5_hex(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What a backend can do, declared once so the shared transfer code adapts to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// A reader can never see a partly written file (object stores: the PUT lands whole).
    pub atomic_write: bool,
    /// `write(.., WriteMode::ResumeAt(n))` works.
    pub resume_upload: bool,
    /// `read` with a non-zero offset works.
    pub ranged_read: bool,
    /// `set_mtime` works.
    pub set_mtime: bool,
    /// `rename` works (object stores emulate it with copy + delete, or cannot).
    pub rename: bool,
    /// Directories exist on their own (false on object stores: they are prefixes).
    pub real_directories: bool,
    /// The hash the server can report without a download, if any.
    pub server_hash: Option<HashAlgo>,
}
