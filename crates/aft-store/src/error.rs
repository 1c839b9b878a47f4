use thiserror::Error;

/// Why a store operation failed.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database could not be opened or migrated.
    #[error("cannot open database {url}: {source}")]
    Open {
        /// The database URL with any password removed.
        url: String,
        /// The underlying error.
        #[source]
        source: sqlx::Error,
    },
    /// Migrating the schema failed.
    #[error("cannot migrate database schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// The named thing does not exist.
    #[error("{kind} not found: {name}")]
    NotFound {
        /// What kind of thing (script, secret, ...).
        kind: &'static str,
        /// Its name or id.
        name: String,
    },
    /// A thing with this name already exists.
    #[error("{kind} already exists: {name}")]
    Conflict {
        /// What kind of thing.
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// The change conflicts with the current state (deleting the last admin, a second
    /// first-admin setup); the text says why.
    #[error("{0}")]
    Refused(String),
    /// The input is not acceptable (bad name, bad value).
    #[error("{0}")]
    Invalid(String),
    /// A delete refused because other things use what it would delete.
    #[error("{message}")]
    InUse {
        /// What is in use, by what, and how to go on.
        message: String,
        /// Everything that uses it.
        used_by: Vec<crate::UsedBy>,
    },
    /// Encrypting or decrypting a secret failed (wrong key, corrupt value).
    #[error("secret store: {0}")]
    Crypto(String),
    /// A failure shared by several callers whose changes were committed together: the words
    /// of the first caller's error, and whether it was the store being unavailable.
    #[error("{message}")]
    Shared {
        /// What failed.
        message: String,
        /// Whether the same request may well work in a moment ([`StoreError::is_unavailable`]).
        unavailable: bool,
    },
    /// A local file (the secrets key, the data directory) could not be used.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// Whether the database could not be reached (down, restarting, unreachable, the pool
    /// waited in vain for a connection), as opposed to refusing what was asked: the same
    /// request may well work in a moment.
    pub fn is_unavailable(&self) -> bool {
        let e = match self {
            StoreError::Db(e) | StoreError::Open { source: e, .. } => e,
            StoreError::Shared { unavailable, .. } => return *unavailable,
            _ => return false,
        };
        match e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            // A connection cut half way through an exchange reads as a protocol error.
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => true,
            // PostgreSQL: class 08 (connection exception), 57P01-57P03 (the server is
            // shutting down or starting up).
            sqlx::Error::Database(db) => db
                .code()
                .is_some_and(|c| c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03")),
            _ => false,
        }
    }
}
