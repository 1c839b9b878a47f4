use thiserror::Error;

/// Why a VFS operation failed, in terms a user can act on.
#[derive(Debug, Error)]
pub enum VfsError {
    /// The path does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The target exists and the operation will not replace it.
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// The server refused the operation on this path.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The backend cannot do this at all.
    #[error("not supported by this backend: {0}")]
    Unsupported(&'static str),
    /// Login failed: wrong user, password or key.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// The server's host key is not the pinned one (or none is pinned).
    #[error("{}", host_key_message(host, fingerprint, mismatch.as_deref()))]
    HostKey {
        /// The server, as `host:port`.
        host: String,
        /// The key's fingerprint as OpenSSH prints it: `SHA256:` and unpadded base64.
        fingerprint: String,
        /// Which pins the key did not match, with the key's own value for each
        /// (`HostKeyMD5 = "MD5:.." (the key's is MD5:..)`); `None` when no pin is set.
        mismatch: Option<String>,
    },
    /// The connection failed or broke; worth retrying.
    #[error("connection to {target} failed: {message}")]
    Connection {
        /// The server or endpoint.
        target: String,
        /// What went wrong.
        message: String,
    },
    /// A transfer did not verify (size or hash mismatch).
    #[error("verification failed for {path}: {message}")]
    Verify {
        /// The file that did not verify.
        path: String,
        /// Which check failed.
        message: String,
    },
    /// A local I/O error, with the path it happened on.
    #[error("{path}: {source}")]
    Io {
        /// The path being read or written.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Anything else the backend reports.
    #[error("{0}")]
    Other(String),
}

/// An unpinned key only needs pinning; a key that fails a pin may be an attack, so the
/// advice differs.
fn host_key_message(host: &str, fingerprint: &str, mismatch: Option<&str>) -> String {
    match mismatch {
        None => format!(
            "host key of {host} not trusted: its fingerprint is {fingerprint}; pin it with HostKeySHA256 = \"{fingerprint}\" if you trust it"
        ),
        Some(m) => format!(
            "host key of {host} not trusted: it does not match {m}; its fingerprint is {fingerprint}; if the server's key really changed (ask its owner), pin the new one with HostKeySHA256 = \"{fingerprint}\""
        ),
    }
}

/// What follows the target's name when a file would replace a folder.
const FILE_ONTO_FOLDER: &str = "is a directory; a file cannot replace it";

impl VfsError {
    /// A file refused because `target` (`backend` + path) is a folder: a file never
    /// replaces one, nor what is in it.
    pub(crate) fn file_onto_folder(target: &str) -> Self {
        VfsError::AlreadyExists(format!("{target} {FILE_ONTO_FOLDER}"))
    }

    /// Whether this is [`VfsError::file_onto_folder`]'s refusal.
    pub(crate) fn is_file_onto_folder(&self) -> bool {
        matches!(self, VfsError::AlreadyExists(m) if m.ends_with(FILE_ONTO_FOLDER))
    }

    /// Whether retrying the same operation may succeed (a dropped connection, a timeout).
    pub fn is_transient(&self) -> bool {
        match self {
            VfsError::Connection { .. } => true,
            VfsError::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::Interrupted
            ),
            _ => false,
        }
    }

    /// Wrap an I/O error with the path it concerns, mapping "not found" and friends.
    pub fn io(path: impl Into<String>, source: std::io::Error) -> Self {
        let path = path.into();
        match source.kind() {
            std::io::ErrorKind::NotFound => VfsError::NotFound(path),
            std::io::ErrorKind::AlreadyExists => VfsError::AlreadyExists(path),
            std::io::ErrorKind::PermissionDenied => VfsError::PermissionDenied(path),
            _ => VfsError::Io { path, source },
        }
    }
}
