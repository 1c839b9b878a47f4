use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;

use crate::{StoreError, StoreResult};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Which SQL dialect the store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// The embedded default: one file in the data directory, WAL mode.
    Sqlite,
    /// A shared server, for several nodes.
    Postgres,
}

/// aft's state, behind one API for both dialects. Cheap to clone (a pool handle).
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) pool: AnyPool,
    pub(crate) dialect: Dialect,
}

impl Store {
    /// Open (creating and migrating if needed) the database at `url`:
    /// `sqlite:///path/aft.db` or `postgres://user:pass@host:port/db`.
    pub async fn open(url: &str) -> StoreResult<Store> {
        sqlx::any::install_default_drivers();
        let shown = redact_url(url);
        let open_err = |source| StoreError::Open {
            url: shown.clone(),
            source,
        };
        let (dialect, url) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Dialect::Postgres, url.to_string())
        } else if let Some(rest) = url.strip_prefix("sqlite://") {
            make_database_private(rest)?;
            // WAL lets the service and CLI commands read while another writes; a busy
            // timeout makes concurrent writers wait instead of failing at once.
            let sep = if rest.contains('?') { '&' } else { '?' };
            (Dialect::Sqlite, format!("sqlite://{rest}{sep}mode=rwc"))
        } else {
            return Err(StoreError::Invalid(format!(
                "unsupported database URL {shown}: use sqlite:///path/to/aft.db or postgres://..."
            )));
        };
        let options = AnyConnectOptions::from_str(&url).map_err(open_err)?;
        // One connection first, set up as the pool's will be: a file that is not a
        // database, a read-only directory or a refused login fails here at once with its
        // cause, where the pool would retry until its acquire timeout and then say only
        // "pool timed out".
        use sqlx::Connection;
        let mut probe = sqlx::AnyConnection::connect_with(&options)
            .await
            .map_err(open_err)?;
        prepare_connection(&mut probe, dialect)
            .await
            .map_err(open_err)?;
        let max = if dialect == Dialect::Sqlite { 4 } else { 16 };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .min_connections(0)
            // SQLite: long enough for a burst of writers on the one file. PostgreSQL: short,
            // so that while the server is away calls fail (a request meets 503, and a node
            // knows it lost contact before it judges other nodes' leases) instead of
            // waiting through the outage and looking as if they never lost it.
            .acquire_timeout(if dialect == Dialect::Sqlite {
                Duration::from_secs(10)
            } else {
                Duration::from_secs(3)
            })
            .after_connect(move |conn, _meta| Box::pin(prepare_connection(conn, dialect)))
            .connect_with(options)
            .await
            .map_err(open_err)?;
        // Closed only now that the pool holds a connection: SQLite deletes the WAL and
        // shared-memory files when the last connection to a database closes, and creating
        // them again is a large share of a short `aft run`.
        let _ = probe.close().await;
        let migrator = match dialect {
            Dialect::Sqlite => &SQLITE_MIGRATIONS,
            Dialect::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&pool).await?;
        Ok(Store { pool, dialect })
    }

    /// Open the embedded default: `aft.db` in `data_dir` (created if missing).
    pub async fn open_in_dir(data_dir: &Path) -> StoreResult<Store> {
        create_data_dir(data_dir)?;
        let file = data_dir.join("aft.db");
        Store::open(&format!("sqlite://{}", file.display())).await
    }

    /// One round trip to the database (`SELECT 1`): whether it answers now.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(self.pool()).await?;
        Ok(())
    }

    /// The dialect of the underlying database.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The connection pool, for modules of this crate.
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Close all connections (checkpointing SQLite's WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Now, as the RFC 3339 UTC text every timestamp column holds (millisecond precision, so
/// text order is time order).
pub fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A database URL with its password replaced, safe for logs and errors.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Set up a new connection: for SQLite, WAL (the service and CLI commands read while
/// another writes), a busy timeout (concurrent writers wait instead of failing) and
/// foreign keys.
async fn prepare_connection(
    conn: &mut sqlx::AnyConnection,
    dialect: Dialect,
) -> Result<(), sqlx::Error> {
    if dialect == Dialect::Sqlite {
        use sqlx::Executor;
        conn.execute(
            "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=10000; \
             PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
        )
        .await?;
    }
    Ok(())
}

/// Create aft's data directory (and its parents) if missing, and make it private to this
/// user (0700): it holds the database, the secrets key and the TLS key.
pub fn create_data_dir(dir: &Path) -> StoreResult<()> {
    let io_err = |source| StoreError::Io {
        path: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io_err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io_err)?;
    }
    Ok(())
}

/// Make the SQLite file of `url_rest` (the part of a `sqlite://` URL after the scheme) and
/// its WAL and shared-memory files readable by this user only (0600), creating the database
/// file so. SQLite gives the WAL and shared-memory files the database file's mode.
fn make_database_private(url_rest: &str) -> StoreResult<()> {
    let path = url_rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" || path.starts_with("file:") {
        return Ok(());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let io_err = |path: &str| {
            let path = path.to_string();
            move |source| StoreError::Io { path, source }
        };
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(io_err(path))?;
        for file in [
            path.to_string(),
            format!("{path}-wal"),
            format!("{path}-shm"),
        ] {
            match std::fs::metadata(&file) {
                Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                        .map_err(io_err(&file))?;
                }
                _ => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn redact_url_hides_the_password_only() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5/db"),
            "postgres://u:***@h:5/db"
        );
        assert_eq!(redact_url("sqlite:///tmp/a.db"), "sqlite:///tmp/a.db");
    }
}
