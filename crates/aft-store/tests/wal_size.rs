//! The SQLite WAL file does not keep the size of the largest write it ever took (issue 15's
//! soak: a log flood left 24 MiB of WAL on disk for good). Once a checkpoint has emptied it,
//! the next write cuts it back to `SQLITE_WAL_KEEP_BYTES`.

use aft_store::{LogLine, SQLITE_WAL_KEEP_BYTES, Store};

fn lines(first: i64, n: usize, text: &str) -> Vec<LogLine> {
    (0..n as i64)
        .map(|i| LogLine {
            line: first + i,
            at: "2026-12-06T07:00:00.000Z".into(),
            level: "info".into(),
            message: format!("{text} {}", first + i),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_shrinks_back_after_a_large_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in_dir(dir.path()).await.unwrap();
    let wal = dir.path().join("aft.db-wal");
    let wal_size = || std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);

    // One transaction larger than the cap: the WAL must hold it whole.
    let padding = "x".repeat(400);
    store
        .append_job_logs("flood", &lines(1, 40_000, &padding))
        .await
        .unwrap();
    let after_flood = wal_size();
    assert!(
        after_flood > 2 * SQLITE_WAL_KEEP_BYTES,
        "the flood should have grown the WAL past the cap: {after_flood} B"
    );

    // Small writes go on.
    let mut next = 1;
    for _ in 0..300 {
        store
            .append_job_logs("steady", &lines(next, 20, &padding))
            .await
            .unwrap();
        next += 20;
    }
    // A service folds the WAL from a task of its own every quarter second (a CLI command's
    // commits do it every 1,000 pages): after a pause, the next write starts it over.
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    store
        .append_job_logs("steady", &lines(next, 1, &padding))
        .await
        .unwrap();
    next += 1;
    let after_steady = wal_size();
    assert!(
        after_steady <= SQLITE_WAL_KEEP_BYTES,
        "the WAL kept {after_steady} B after the flood ({after_flood} B) was checkpointed; \
         the cap is {SQLITE_WAL_KEEP_BYTES} B"
    );
    assert_eq!(store.last_job_log_line("steady").await.unwrap(), next - 1);
    assert_eq!(store.last_job_log_line("flood").await.unwrap(), 40_000);
}
