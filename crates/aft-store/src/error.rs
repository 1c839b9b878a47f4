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
    /// Encrypting or decrypting a secret failed (wrong key, corrupt value).
    #[error("secret store: {0}")]
    Crypto(String),
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
