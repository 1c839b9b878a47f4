//! The scheduler loop of one node: finds the slots of every enabled schedule that came due
//! since the schedule's cursor and decides each through the store, which makes every slot
//! one unique row. Several nodes run this loop at once; whichever inserts a slot's row
//! queues its job, the others see the row and move on. Nothing is decided from memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;

use aft_store::{OverlapPolicy, Schedule, SlotStatus, SlotTiming, Store, StoreResult};

use crate::runner::Runner;

/// How often the schedules are looked at (the precision of a 6-field cron).
pub const TICK: Duration = Duration::from_millis(200);
/// A slot older than this when a node first sees it, and due before that node's scheduler
/// started, came due while no service ran: the misfire policy decides it.
pub const MISFIRE_GRACE: Duration = aft_store::SCHEDULE_MISFIRE_GRACE;

/// A running scheduler loop; [`SchedulerHandle::stop`] ends it.
pub struct SchedulerHandle {
    stop: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl SchedulerHandle {
    /// Stop deciding slots and wait for the pass in progress to end.
    pub async fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.task.await;
    }
}

/// Start the scheduler loop of this node.
pub fn start(store: Store, runner: Arc<Runner>) -> SchedulerHandle {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Utc::now();
    let flag = stop.clone();
    let task = tokio::spawn(async move {
        while !flag.load(Ordering::SeqCst) {
            if let Err(e) = pass(&store, &runner, started).await {
                tracing::warn!("scheduler pass failed, retrying: {e}");
            }
            tokio::time::sleep(TICK).await;
        }
    });
    SchedulerHandle { stop, task }
}

/// One look at every enabled schedule.
async fn pass(store: &Store, runner: &Runner, started: DateTime<Utc>) -> StoreResult<()> {
    for schedule in store.list_schedules().await? {
        if !schedule.enabled {
            continue;
        }
        if let Err(e) = decide_due_slots(store, runner, &schedule, started).await {
            tracing::warn!(schedule = %schedule.name, "cannot decide the schedule's slots: {e}");
        }
    }
    Ok(())
}

async fn decide_due_slots(
    store: &Store,
    runner: &Runner,
    schedule: &Schedule,
    started: DateTime<Utc>,
) -> StoreResult<()> {
    if schedule.overlap == OverlapPolicy::Queue
        && let Some(slot) = store.fire_waiting_slot(schedule).await?
    {
        tracing::info!(schedule = %schedule.name, slot = %slot.slot_time, job = ?slot.job_id, "waiting slot fired");
        runner.wake();
    }
    let now = Utc::now();
    let grace = chrono::Duration::from_std(MISFIRE_GRACE).unwrap_or_default();
    let due = schedule.due_slots(now)?;
    let missed: Vec<bool> = due
        .iter()
        .map(|slot| *slot < started && now - *slot > grace)
        .collect();
    let newest_missed = missed.iter().rposition(|m| *m);
    for (i, slot) in due.into_iter().enumerate() {
        let timing = if missed[i] {
            SlotTiming::Missed {
                newest: Some(i) == newest_missed,
            }
        } else {
            SlotTiming::OnTime
        };
        let Some(decided) = store
            .decide_slot(schedule, slot, timing, runner.node_id())
            .await?
        else {
            continue;
        };
        match decided.status {
            SlotStatus::Fired => {
                tracing::info!(schedule = %schedule.name, slot = %slot, job = ?decided.job_id, "slot fired");
                runner.wake();
            }
            SlotStatus::Failed => {
                tracing::warn!(schedule = %schedule.name, slot = %slot, detail = ?decided.detail, "slot failed")
            }
            status => {
                tracing::info!(schedule = %schedule.name, slot = %slot, status = status.as_str(), "slot decided")
            }
        }
    }
    Ok(())
}
