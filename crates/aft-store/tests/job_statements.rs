//! The runner's batch calls keep SQLite's memory bounded (issue 15's soak, issue 21's idle
//! RSS): whatever the number of jobs in a claim, a lease renewal, a lost-claim lookup or a
//! batch of ends, the store runs statements of a few shapes only, so the prepared
//! statements each pooled connection keeps (sqlx caches up to 100 a connection) stop
//! growing once those few are in. An `IN` list written for its length left one statement
//! per length seen in each connection's cache. And each connection's page cache is kept
//! small: at SQLite's default of 2,000 KiB, the pool's 4 connections held 8.5 MB of an
//! idle service's RSS after 10,000 jobs.

mod sqlite_memory;

use std::time::Duration;

use aft_store::{JobEnd, JobStatus, LogLine, NewJob, Store};
use sqlite_memory::{page_cache, statement_memory};

const LEASE: Duration = Duration::from_secs(30);

/// Queue `n` one-line jobs pinned to `node` and claim them all (in claims of `n`); their
/// ids.
async fn claimed(store: &Store, node: &str, n: usize) -> Vec<String> {
    for i in 0..n {
        store
            .enqueue_job(&NewJob {
                script_name: Some("one".into()),
                source: format!("Log({i});"),
                origin: "api".into(),
                pinned_node: Some(node.into()),
                ..NewJob::default()
            })
            .await
            .unwrap();
    }
    let jobs = store.claim_jobs(node, LEASE, n).await.unwrap();
    assert_eq!(jobs.len(), n, "claimed every job queued for {node}");
    jobs.into_iter().map(|job| job.id).collect()
}

/// One round of every batch call with `n` jobs, as the runner of `node` makes them: claim
/// `n`, renew their leases, look for lost claims while knowing them, then store a line and
/// the end of each in one batch.
async fn round(store: Store, node: String, n: usize) {
    let node = node.as_str();
    let ids = claimed(&store, node, n).await;
    assert_eq!(
        store.renew_job_leases(node, &ids, LEASE).await.unwrap(),
        n as u64
    );
    assert!(
        store
            .adopt_lost_claims(node, &ids, LEASE)
            .await
            .unwrap()
            .is_empty(),
        "every running job is known"
    );
    let lines: Vec<(String, Vec<LogLine>)> = ids
        .iter()
        .map(|id| {
            let line = LogLine {
                line: 1,
                at: "2026-12-06T01:00:00.000Z".into(),
                level: "info".into(),
                message: format!("job {id}"),
            };
            (id.clone(), vec![line])
        })
        .collect();
    let ends: Vec<JobEnd> = ids
        .iter()
        .map(|id| JobEnd {
            job_id: id.clone(),
            status: JobStatus::Succeeded,
            exit_code: Some(0),
            error: None,
        })
        .collect();
    let recorded = store
        .store_logs_and_ends(node, &lines, &ends)
        .await
        .unwrap();
    assert!(recorded.iter().all(|r| *r), "every end recorded");
}

/// Four nodes' rounds of `n` jobs at once, so that every connection of the pool (4) takes
/// part.
async fn rounds_at_once(store: &Store, n: usize) {
    let mut nodes = tokio::task::JoinSet::new();
    for node in 0..4 {
        nodes.spawn(round(store.clone(), format!("node-{node}"), n));
    }
    while let Some(done) = nodes.join_next().await {
        done.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batch_calls_of_every_size_leave_sqlite_memory_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in_dir(dir.path()).await.unwrap();
    // Warm up with the sizes a fixed-shape store needs (powers of two up to 128 and the
    // sums of them the log inserts use), several times over, so that every connection has
    // prepared every statement it will use.
    for _ in 0..4 {
        for n in [1, 2, 3, 4, 8, 16, 32, 64, 65, 128] {
            rounds_at_once(&store, n).await;
        }
    }
    let warm = statement_memory();
    // Every size from 1 to 100: with a statement per length, 100 shapes of each call.
    for n in 1..=100 {
        rounds_at_once(&store, n).await;
    }
    let after = statement_memory();
    let grew = after - warm;
    println!("SQLite memory (page cache aside): {warm} B warm, {after} B after 400 rounds");
    assert!(
        grew < 256 * 1024,
        "SQLite's memory grew by {grew} B over batches of 1 to 100 jobs ({warm} -> {after} B): \
         statements of new shapes are being prepared and cached"
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reading_a_large_store_on_every_connection_keeps_page_caches_small() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in_dir(dir.path()).await.unwrap();
    // 40 jobs of 1,000 lines of about 100 bytes: a store of some 6 MB.
    let jobs: Vec<String> = (0..40).map(|j| format!("job-{j}")).collect();
    for job in &jobs {
        let lines: Vec<LogLine> = (1..=1000)
            .map(|line| LogLine {
                line,
                at: "2026-12-06T01:00:00.000Z".into(),
                level: "info".into(),
                message: format!("{job} line {line:05} {}", "x".repeat(80)),
            })
            .collect();
        store.append_job_logs(job, &lines).await.unwrap();
    }
    // Four readers at once, so that every connection of the pool reads the whole store.
    let mut readers = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let store = store.clone();
        let jobs = jobs.clone();
        readers.spawn(async move {
            let mut read = 0;
            for job in &jobs {
                read += store.read_job_logs(job, 0, 10_000).await.unwrap().len();
            }
            read
        });
    }
    while let Some(read) = readers.join_next().await {
        assert_eq!(read.unwrap(), 40_000, "every line read");
    }
    let cache = page_cache();
    let limit = 4 * 1024 * i64::from(aft_store::SQLITE_CACHE_KIB) * 5 / 4;
    println!("SQLite page caches after reading the store on 4 connections: {cache} B");
    assert!(
        cache <= limit,
        "SQLite's page caches hold {cache} B, more than 4 connections x {} KiB (+25%)",
        aft_store::SQLITE_CACHE_KIB
    );
    // The background checkpoint empties the cache of the connection it takes, each in
    // turn, four times a second: within a second or so of the reads, little is cached.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_pause = page_cache();
    println!("SQLite page caches 2 s later: {after_pause} B");
    assert!(
        after_pause <= 4 * 128 * 1024,
        "after a pause SQLite's page caches still hold {after_pause} B (more than 4 x 128 KiB)"
    );
    store.close().await;
}
