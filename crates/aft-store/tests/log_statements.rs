//! Storing log lines keeps SQLite's memory bounded (issue 15's soak): a batch of any size is
//! written with statements of a few sizes, so the prepared statements each pooled connection
//! keeps (sqlx caches up to 100 a connection) stop growing once those few are in. With one
//! statement per batch size, the 20-minute soak's service grew by 11 MiB of them.

mod sqlite_memory;

use aft_store::{LogLine, Store};
use sqlite_memory::statement_memory;

fn lines(first: i64, n: usize) -> Vec<LogLine> {
    (0..n as i64)
        .map(|i| LogLine {
            line: first + i,
            at: "2026-12-05T19:00:00.000Z".into(),
            level: "info".into(),
            message: format!("line {} of a batch of {n}", first + i),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn log_batches_of_every_size_leave_sqlite_memory_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in_dir(dir.path()).await.unwrap();
    let mut next = 1i64;
    // Warm up: every connection of the pool (4) has stored small and large batches, so
    // that its cache holds what any batch needs.
    for round in 0..8 {
        let batch: Vec<_> = (0..4)
            .map(|j| {
                let n = [1, 255][round % 2] + j;
                let job = format!("warm-{round}-{j}");
                let l = lines(next, n);
                next += n as i64;
                (job, l)
            })
            .collect();
        store_at_once(&store, batch).await;
    }
    let warm = statement_memory();
    // Every batch size from 1 to 400, four batches at once so all connections take part.
    for size in 1..=400usize {
        let batch: Vec<_> = (0..4)
            .map(|j| {
                let l = lines(next, size);
                next += size as i64;
                (format!("job-{size}-{j}"), l)
            })
            .collect();
        store_at_once(&store, batch).await;
    }
    let after = statement_memory();
    let stored: i64 = store.last_job_log_line("job-400-3").await.unwrap();
    assert_eq!(stored, next - 1, "every line stored");
    let grew = after - warm;
    println!("SQLite memory (page cache aside): {warm} B warm, {after} B after 1,600 batches");
    assert!(
        grew < 512 * 1024,
        "SQLite's memory grew by {grew} B over batches of 1 to 400 lines ({warm} -> {after} B): \
         statements of new sizes are being prepared and cached"
    );
    store.close().await;
}

/// Store each job's lines in its own call, all at once (the pool spreads them over its
/// connections).
async fn store_at_once(store: &Store, batch: Vec<(String, Vec<LogLine>)>) {
    let mut calls = tokio::task::JoinSet::new();
    for (job, lines) in batch {
        let store = store.clone();
        calls.spawn(async move { store.append_job_logs(&job, &lines).await });
    }
    while let Some(result) = calls.join_next().await {
        result.unwrap().unwrap();
    }
}
