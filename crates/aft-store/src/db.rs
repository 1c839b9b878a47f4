use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
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
    /// Jobs waiting to be queued together (`enqueue.rs`).
    pub(crate) enqueues: std::sync::Arc<crate::enqueue::EnqueueQueue>,
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
            crate::sqlite_busy::register();
            // WAL lets the service and CLI commands read while another writes; the busy
            // wait (`sqlite_busy`) makes concurrent writers wait instead of failing at once.
            let sep = if rest.contains('?') { '&' } else { '?' };
            (Dialect::Sqlite, format!("sqlite://{rest}{sep}mode=rwc"))
        } else {
            return Err(StoreError::Invalid(format!(
                "unsupported database URL {shown}: use sqlite:///path/to/aft.db or postgres://..."
            )));
        };
        let options = AnyConnectOptions::from_str(&url).map_err(open_err)?;
        // PostgreSQL: one connection first, set up as the pool's will be, so that a refused
        // login or an unreachable server fails here at once with its cause, where the pool
        // would retry until its acquire timeout and then say only "pool timed out".
        // (SQLite gets the same from the race on the pool's first connection below, without
        // a second connection: each opens in a thread of its own and parses the schema.)
        if dialect == Dialect::Postgres {
            use sqlx::Connection;
            let mut probe = sqlx::AnyConnection::connect_with(&options)
                .await
                .map_err(open_err)?;
            prepare_connection(&mut probe, dialect, false)
                .await
                .map_err(open_err)?;
            let _ = probe.close().await;
        }
        let max = match dialect {
            // On a current-thread runtime (CLI commands) one connection: sqlx gives a
            // connection back in a task of its own, after a ping, which cannot run before
            // the caller's next query, so a larger pool only opened another connection for
            // nearly every query (three for a one-line `aft run`). Tasks take turns on the
            // one connection; no code in the store asks for a connection while holding one.
            Dialect::Sqlite if on_current_thread_runtime() => 1,
            Dialect::Sqlite => 4,
            Dialect::Postgres => 16,
        };
        // A service (a multi-thread runtime) folds the WAL from a task of its own
        // ([`checkpoint_in_background`]); a CLI command lets its commits do it, as usual.
        let background_checkpoints = max > 1 && dialect == Dialect::Sqlite;
        let setup_failed = Arc::new(SetupFailure::default());
        let noted = setup_failed.clone();
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .min_connections(0)
            // A SQLite connection is a file in this process: nothing can break it between
            // uses, and the test would be a round trip to the connection's thread per query.
            .test_before_acquire(dialect == Dialect::Postgres)
            // SQLite: long enough for a burst of writers on the one file. PostgreSQL: short,
            // so that while the server is away calls fail (a request meets 503, and a node
            // knows it lost contact before it judges other nodes' leases) instead of
            // waiting through the outage and looking as if they never lost it.
            .acquire_timeout(if dialect == Dialect::Sqlite {
                Duration::from_secs(10)
            } else {
                Duration::from_secs(3)
            })
            .after_connect(move |conn, _meta| {
                let noted = noted.clone();
                Box::pin(async move {
                    // The pool only logs the error it gets back (and retries); the first
                    // one itself is kept for the caller of `open`.
                    prepare_connection(conn, dialect, background_checkpoints)
                        .await
                        .map_err(|e| noted.note(e))
                })
            })
            .connect_lazy_with(options);
        // The pool's first connection. A connection that fails its set-up (a file that is
        // not a database, a read-only directory) is retried by sqlx until the acquire
        // timeout, which then says only "pool timed out": the first such failure ends the
        // wait with its cause.
        tokio::select! {
            first = pool.acquire() => drop(first.map_err(open_err)?),
            cause = setup_failed.first() => return Err(open_err(cause)),
        }
        let migrator = match dialect {
            Dialect::Sqlite => &SQLITE_MIGRATIONS,
            Dialect::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&pool).await?;
        if background_checkpoints {
            tokio::spawn(checkpoint_in_background(pool.clone()));
        }
        Ok(Store {
            pool,
            dialect,
            enqueues: Default::default(),
        })
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

    /// Close all connections: SQLite's last connection folds the WAL into the database
    /// file, unless [`leave_wal_on_close`] was called (then only a WAL over
    /// [`LEFT_WAL_FOLD_BYTES`] is folded).
    pub async fn close(&self) {
        if self.dialect == Dialect::Sqlite && LEAVE_WAL.load(Ordering::Relaxed) {
            self.fold_big_wal().await;
        }
        self.pool.close().await;
    }

    /// Where connections leave the WAL on close ([`leave_wal_on_close`]): fold it into the
    /// database file once it is over [`LEFT_WAL_FOLD_BYTES`]. Each process that opens the
    /// store first reads the whole WAL, and SQLite's own checkpoint cannot cut it back when
    /// each process writes only once after it (the WAL grew to 16 MB in 200 runs, each
    /// slower than the last). Best effort: a busy database is folded by a later close.
    async fn fold_big_wal(&self) {
        let main: Result<(i64, String, String), _> = sqlx::query_as("PRAGMA database_list")
            .fetch_one(&self.pool)
            .await;
        let Ok((_, _, file)) = main else { return };
        let wal = std::fs::metadata(format!("{file}-wal")).map_or(0, |m| m.len());
        if wal > LEFT_WAL_FOLD_BYTES
            && let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.pool)
                .await
        {
            tracing::debug!("the WAL was not folded into the database: {e}");
        }
    }
}

/// Whether the caller runs on a current-thread tokio runtime (a CLI command), where the
/// pool's tasks cannot run beside the caller's.
fn on_current_thread_runtime() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|rt| rt.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread)
}

/// Leave the WAL file as it is when this process's SQLite connections close, instead of
/// copying it into the database file, flushing both and deleting it. For `aft run` without
/// a service: that close was 4 of its `fsync`s and a file created and deleted per run,
/// about a sixth of its wall time here. What it leaves is what a running service leaves between
/// checkpoints: the transactions are in `aft.db-wal` (synchronous=NORMAL, as always: safe
/// from a crash of the process, not from a power cut in the seconds after), the next
/// connection reads them from there, and a later close ([`Store::close`], once the WAL is
/// over [`LEFT_WAL_FOLD_BYTES`]) or the next service to stop moves them into `aft.db`.
/// Call it before opening the store; it holds for every SQLite connection this process
/// opens after.
pub fn leave_wal_on_close() {
    if register_auto_extension(
        no_checkpoint_on_close,
        "the close option; closing as before",
    ) {
        LEAVE_WAL.store(true, Ordering::Relaxed);
    }
}

/// Set once [`leave_wal_on_close`] registered [`no_checkpoint_on_close`] in this process.
static LEAVE_WAL: AtomicBool = AtomicBool::new(false);

/// The signature SQLite calls an auto-extension with, on each connection it opens.
pub(crate) type AutoExtension = unsafe extern "C" fn(
    *mut libsqlite3_sys::sqlite3,
    *mut *mut std::ffi::c_char,
    *const libsqlite3_sys::sqlite3_api_routines,
) -> std::ffi::c_int;

/// Have SQLite run `entry` on every connection this process opens from now on. SQLite
/// keeps an entry once however often it is registered, so callers need no guard of their
/// own. `what` names it in the warning if SQLite refuses; returns whether it is registered.
pub(crate) fn register_auto_extension(entry: AutoExtension, what: &str) -> bool {
    // SAFETY: `entry` has the signature SQLite calls an auto-extension with, and a function
    // lives for the life of the process.
    let rc = unsafe { libsqlite3_sys::sqlite3_auto_extension(Some(entry)) };
    if rc != libsqlite3_sys::SQLITE_OK {
        tracing::warn!("SQLite refused {what} (code {rc})");
    }
    rc == libsqlite3_sys::SQLITE_OK
}

/// The size of a left WAL from which [`Store::close`] folds it into the database file:
/// about 13 one-line runs' worth. Every run reads all of it when it opens the store, and
/// folding it costs the `fsync`s that leaving it saved: a balance of the two.
pub const LEFT_WAL_FOLD_BYTES: u64 = 1 << 20;

/// Run by SQLite for each connection it opens once [`leave_wal_on_close`] was called.
unsafe extern "C" fn no_checkpoint_on_close(
    db: *mut libsqlite3_sys::sqlite3,
    _error: *mut *mut std::ffi::c_char,
    _api: *const libsqlite3_sys::sqlite3_api_routines,
) -> std::ffi::c_int {
    // SAFETY: `db` is the connection SQLite is opening; the option takes an int and an
    // optional pointer for the value it then holds.
    unsafe {
        libsqlite3_sys::sqlite3_db_config(
            db,
            libsqlite3_sys::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            1 as std::ffi::c_int,
            std::ptr::null_mut::<std::ffi::c_int>(),
        );
    }
    libsqlite3_sys::SQLITE_OK
}

/// The first error of a new connection's set-up (`after_connect`), for [`Store::open`].
#[derive(Default)]
struct SetupFailure {
    first: Mutex<Option<sqlx::Error>>,
    noticed: tokio::sync::Notify,
}

impl SetupFailure {
    /// Keep `e` if it is the first; what the pool gets back instead (its text).
    fn note(&self, e: sqlx::Error) -> sqlx::Error {
        let stand_in = sqlx::Error::Protocol(e.to_string());
        let mut first = self.first.lock().unwrap_or_else(PoisonError::into_inner);
        if first.is_none() {
            *first = Some(e);
            self.noticed.notify_one();
        }
        stand_in
    }

    /// Wait for the first failure and take it.
    async fn first(&self) -> sqlx::Error {
        loop {
            if let Some(e) = self
                .first
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
            {
                return e;
            }
            self.noticed.notified().await;
        }
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

/// SQLite's page cache per connection, in KiB (`PRAGMA cache_size` = -this). The default,
/// 2,000 KiB, filled each of the pool's 4 connections after a few thousand jobs: 8.5 MB of
/// an idle service's 40 MiB RSS. Under load it buys little, as in WAL mode a connection
/// drops its cache whenever another one has written; a page it misses is read from the
/// operating system's cache.
pub const SQLITE_CACHE_KIB: u32 = 512;

/// The size SQLite cuts its WAL file back to after a checkpoint has emptied it
/// (`PRAGMA journal_size_limit`), in bytes. Without it the file keeps the largest size it
/// ever reached (a log flood's, a purge's), on disk for good.
pub const SQLITE_WAL_KEEP_BYTES: u64 = 8 << 20;

/// Set up a new connection: for SQLite, WAL (the service and CLI commands read while
/// another writes), a wait of up to 10 s for a lock another connection holds, polled
/// finely ([`crate::sqlite_busy`]), foreign
/// keys, a small page cache ([`SQLITE_CACHE_KIB`]) and a cap on the WAL file's size at
/// rest ([`SQLITE_WAL_KEEP_BYTES`]).
async fn prepare_connection(
    conn: &mut sqlx::AnyConnection,
    dialect: Dialect,
    background_checkpoints: bool,
) -> Result<(), sqlx::Error> {
    if dialect == Dialect::Sqlite {
        use sqlx::Executor;
        // SQLite's default, 1,000 pages, where no task folds the WAL.
        let fold_at_pages = if background_checkpoints {
            SQLITE_WAL_FLOOD_PAGES
        } else {
            1000
        };
        conn.execute(
            format!(
                "SELECT {busy_wait}(10000); PRAGMA journal_mode=WAL; \
                 PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; \
                 PRAGMA cache_size=-{SQLITE_CACHE_KIB}; \
                 PRAGMA journal_size_limit={SQLITE_WAL_KEEP_BYTES}; \
                 PRAGMA wal_autocheckpoint={fold_at_pages};",
                busy_wait = crate::sqlite_busy::SQL_FUNCTION,
            )
            .as_str(),
        )
        .await?;
    }
    Ok(())
}

/// How often a service folds its WAL into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// The WAL size, in pages, at which a service's commit folds it itself, as SQLite does at
/// 1,000 by default: the bound in a write flood, which the background task would let grow
/// between its rounds.
const SQLITE_WAL_FLOOD_PAGES: u32 = 10_000;

/// Fold the WAL into the database file every [`CHECKPOINT_EVERY`] until the pool closes.
/// Left to SQLite, the commit that finds the WAL over 1,000 pages does it, `fsync`s
/// included, while the job or request that committed waits: a one-line job writes about 28
/// pages (its row, its indexes, its log, the audit trail), so under a stream of jobs that
/// was a dozen times a second, on the hot path.
///
/// Each round also empties the page cache of the connection it ran on (`PRAGMA
/// shrink_memory`); the pool hands its idle connections out in turn, so each is emptied
/// about once a second. Kept, the caches held [`SQLITE_CACHE_KIB`] each, 2.2 MB of an idle
/// service's memory after a burst of jobs. Little is lost: in WAL mode a connection drops
/// its cache anyway once another one has written, and a page it misses comes from the
/// operating system's cache.
async fn checkpoint_in_background(pool: AnyPool) {
    let mut every = tokio::time::interval(CHECKPOINT_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !pool.is_closed() {
        every.tick().await;
        let round = async {
            let mut conn = pool.acquire().await?;
            let folded: (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&mut *conn)
                .await?;
            sqlx::query("PRAGMA shrink_memory")
                .execute(&mut *conn)
                .await?;
            Ok::<_, sqlx::Error>(folded)
        };
        match round.await {
            Ok((_, frames, copied)) => tracing::debug!("WAL: {copied} of {frames} pages folded"),
            Err(e) if !pool.is_closed() => {
                tracing::debug!("the WAL was not folded into the database: {e}");
            }
            Err(_) => {}
        }
    }
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
