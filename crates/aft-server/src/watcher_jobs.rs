//! The watcher-job supervisor of one node: keeps every enabled watcher job running. Each
//! run is an ordinary job that holds a lease; the store decides (under a row lock) when a
//! new run starts, with backoff after failures, so two nodes never start the same watcher
//! twice, and when the node running it dies its lease runs out and another node takes it.
//! On shutdown the runner raises every job's halt flag, so a watcher's
//! `WaitForHaltSignal()` returns and the run ends as `interrupted`; the next service start
//! runs it again at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;

use aft_store::{Store, StoreResult};

use crate::runner::Runner;

/// How often the supervisor checks its watchers.
pub const SUPERVISE_EVERY: Duration = Duration::from_millis(500);

/// A running supervisor; [`WatcherSupervisor::stop`] ends it.
pub struct WatcherSupervisor {
    stop: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl WatcherSupervisor {
    /// Stop starting runs (call before the runner shuts down, which halts the runs).
    pub async fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.task.await;
    }
}

/// Start the supervisor of this node.
pub fn start(store: Store, runner: Arc<Runner>) -> WatcherSupervisor {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let task = tokio::spawn(async move {
        while !flag.load(Ordering::SeqCst) {
            if let Err(e) = pass(&store, &runner).await {
                tracing::warn!("watcher supervisor pass failed, retrying: {e}");
            }
            tokio::time::sleep(SUPERVISE_EVERY).await;
        }
    });
    WatcherSupervisor { stop, task }
}

async fn pass(store: &Store, runner: &Runner) -> StoreResult<()> {
    for watcher in store.list_watcher_jobs().await? {
        if !watcher.enabled {
            continue;
        }
        match store.start_watcher_run(&watcher.id).await {
            Ok(Some(job_id)) => {
                tracing::info!(watcher = %watcher.name, job = %job_id, failures = watcher.failures, "watcher job started");
                runner.wake();
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(watcher = %watcher.name, "cannot start the watcher job: {e}"),
        }
    }
    Ok(())
}
