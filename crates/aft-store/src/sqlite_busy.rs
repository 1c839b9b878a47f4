//! How a SQLite connection waits for a lock another connection holds.
//!
//! SQLite's own busy timeout (`PRAGMA busy_timeout`) sleeps 1, 2, 5, 10, 15, 20, 25 ... ms
//! between tries. The service's connections write the same file all the time (a `POST`'s
//! job and audit record, the runner's claims, log batches and ends): under load a write
//! usually waits for one that takes well under a millisecond, yet slept 3 ms on average
//! (1,186 sleeps in 4 s of the service bench, with a third of the CPU idle). The wait
//! here tries again after 20 µs, doubling up to 1 ms, and after the first 100 ms every
//! 10 ms, until the time-out.
//!
//! SQL cannot install a busy handler and sqlx's `Any` connection does not hand out the
//! SQLite handle, so an auto-extension gives every connection this process opens the SQL
//! function `aft_busy_wait(ms)`, which installs the wait on the connection that calls it
//! (see `prepare_connection`).

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void};
use std::time::{Duration, Instant};

use libsqlite3_sys as ffi;

/// The SQL function that installs the wait with its time-out in milliseconds.
pub(crate) const SQL_FUNCTION: &str = "aft_busy_wait";

/// Make `aft_busy_wait(ms)` available on every SQLite connection opened from now on.
pub(crate) fn register() {
    crate::db::register_auto_extension(add_function, "the busy-wait function");
}

/// Run by SQLite for each connection it opens: adds `aft_busy_wait` to it.
unsafe extern "C" fn add_function(
    db: *mut ffi::sqlite3,
    _error: *mut *mut c_char,
    _api: *const ffi::sqlite3_api_routines,
) -> c_int {
    // SAFETY: `db` is the connection being opened; the name is a NUL-terminated constant
    // and the function pointer has the signature SQLite calls scalar functions with.
    unsafe {
        ffi::sqlite3_create_function_v2(
            db,
            c"aft_busy_wait".as_ptr(),
            1,
            ffi::SQLITE_UTF8,
            std::ptr::null_mut(),
            Some(install),
            None,
            None,
            None,
        )
    }
}

/// `aft_busy_wait(ms)`: install [`wait`] on the calling connection with that time-out.
unsafe extern "C" fn install(
    ctx: *mut ffi::sqlite3_context,
    argc: c_int,
    argv: *mut *mut ffi::sqlite3_value,
) {
    // SAFETY: SQLite passes `argc` (1, as registered) valid values and a live context whose
    // connection outlives this call; the time-out travels as the handler's pointer-sized
    // argument, not as a pointer to memory.
    unsafe {
        let ms = if argc == 1 {
            ffi::sqlite3_value_int64(*argv).clamp(0, i64::from(c_int::MAX))
        } else {
            0
        };
        let db = ffi::sqlite3_context_db_handle(ctx);
        let rc = ffi::sqlite3_busy_handler(db, Some(wait), ms as usize as *mut c_void);
        if rc == ffi::SQLITE_OK {
            ffi::sqlite3_result_int64(ctx, ms);
        } else {
            ffi::sqlite3_result_error_code(ctx, rc);
        }
    }
}

thread_local! {
    /// When the current wait of this thread's statement began.
    static WAIT_BEGAN: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// SQLite's busy handler: `tries` is 0 at the first call of a new wait. Sleep and return
/// non-zero to try again; 0 gives the statement `SQLITE_BUSY`.
unsafe extern "C" fn wait(timeout_ms: *mut c_void, tries: c_int) -> c_int {
    let timeout = Duration::from_millis(timeout_ms as usize as u64);
    let now = Instant::now();
    let began = WAIT_BEGAN.with(|began| {
        if tries == 0 || began.get().is_none() {
            began.set(Some(now));
        }
        began.get().unwrap_or(now)
    });
    let waited = now - began;
    if waited >= timeout {
        return 0;
    }
    std::thread::sleep(pause(tries, waited).min(timeout - waited));
    1
}

/// The pause before try `tries + 1` of a wait that has lasted `waited`.
fn pause(tries: c_int, waited: Duration) -> Duration {
    if waited >= Duration::from_millis(100) {
        // A long transaction holds the lock (a purge, a backup): no need to poll fast.
        return Duration::from_millis(10);
    }
    let micros = 20u64 << tries.clamp(0, 6);
    Duration::from_micros(micros.min(1_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_start_short_double_and_slow_down_for_long_waits() {
        let short = Duration::ZERO;
        assert_eq!(pause(0, short), Duration::from_micros(20));
        assert_eq!(pause(1, short), Duration::from_micros(40));
        assert_eq!(pause(5, short), Duration::from_micros(640));
        assert_eq!(pause(6, short), Duration::from_millis(1));
        assert_eq!(pause(1_000, short), Duration::from_millis(1));
        assert_eq!(
            pause(3, Duration::from_millis(150)),
            Duration::from_millis(10)
        );
    }

    use sqlx::{Connection, Executor, SqliteConnection};

    async fn connect(path: &std::path::Path) -> SqliteConnection {
        super::register();
        let mut conn = SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .unwrap();
        conn.execute("PRAGMA journal_mode=WAL").await.unwrap();
        conn
    }

    /// A writer waits for the lock another connection holds, and gives up at its time-out
    /// with SQLite's "database is locked", not before.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_waits_for_the_lock_up_to_its_time_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("busy.db");
        let mut holder = connect(&path).await;
        holder.execute("CREATE TABLE t (x INTEGER)").await.unwrap();
        let mut waiter = connect(&path).await;
        let (ms,): (i64,) = sqlx::query_as("SELECT aft_busy_wait(150)")
            .fetch_one(&mut waiter)
            .await
            .unwrap();
        assert_eq!(ms, 150);

        // Held past the time-out: the write fails once it has waited 150 ms.
        holder.execute("BEGIN IMMEDIATE").await.unwrap();
        let began = Instant::now();
        let err = waiter
            .execute("INSERT INTO t VALUES (1)")
            .await
            .unwrap_err();
        let waited = began.elapsed();
        assert!(err.to_string().contains("locked"), "{err}");
        assert!(
            waited >= Duration::from_millis(150) && waited < Duration::from_secs(2),
            "{waited:?}"
        );
        holder.execute("COMMIT").await.unwrap();

        // Held for less than the time-out: the write waits and lands.
        holder.execute("BEGIN IMMEDIATE").await.unwrap();
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            holder.execute("COMMIT").await.unwrap();
            holder
        });
        waiter.execute("INSERT INTO t VALUES (2)").await.unwrap();
        let mut holder = release.await.unwrap();
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM t")
            .fetch_one(&mut holder)
            .await
            .unwrap();
        assert_eq!(n, 1);
    }
}
