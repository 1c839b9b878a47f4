//! Dry-run jobs on the service: a job marked as a dry run runs with the engine's
//! [`DryRunHost`], its log ends with the plan, and the plan is stored with the job.

use std::sync::Arc;

use aft_engine::api::dry_run::DryRunHost;
use aft_engine::{JobScope, LogLevel};
use aft_store::Store;
use aft_vfs::dry_run::DryRun;

/// If job `id` is a dry run, put `scope` behind a recorder and say so in the log. `known`
/// is the answer when the caller already read it (or why it could not), else it is read here.
pub async fn prepare(
    store: &Store,
    id: &str,
    scope: &mut JobScope,
    known: Option<Result<bool, String>>,
) -> Option<Arc<DryRun>> {
    let marked = match known {
        Some(known) => known,
        None => store.is_dry_run(id).await.map_err(|e| e.to_string()),
    };
    match marked {
        Ok(true) => {}
        Ok(false) => return None,
        Err(e) => {
            // Running it for real is never the safe guess: the job fails below instead.
            tracing::error!(job = %id, "cannot tell whether the job is a dry run: {e}");
            return Some(refuse(scope));
        }
    }
    let run = DryRun::new();
    scope.host = Arc::new(DryRunHost::new(scope.host.clone(), run.clone()));
    scope.log(
        LogLevel::Info,
        "dry run: reads happen, but nothing is written, renamed, deleted or sent; the plan follows at the end",
    );
    Some(run)
}

/// A scope whose script cannot run: the halt is raised before it starts.
fn refuse(scope: &mut JobScope) -> Arc<DryRun> {
    let run = DryRun::new();
    scope.host = Arc::new(DryRunHost::new(scope.host.clone(), run.clone()));
    scope.log(
        LogLevel::Error,
        "the store could not say whether this job is a dry run, so it is not run",
    );
    scope.halt.raise();
    run
}

/// Log the plan and store it with the job.
pub async fn finish(store: &Store, id: &str, run: &DryRun, log: &aft_engine::LogSink) {
    let plan = run.plan();
    for line in plan.lines() {
        log(LogLevel::Info, &line);
    }
    let json = serde_json::to_string(&plan).unwrap_or_default();
    if let Err(e) = store.save_dry_run_plan(id, &json).await {
        tracing::error!(job = %id, "cannot store the dry run's plan: {e}");
    }
}
