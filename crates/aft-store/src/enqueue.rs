//! Jobs queued through the API at the same time are committed together (group commit).
//!
//! Each `POST /v1/jobs` queues its job with its `job.started` audit record in one
//! transaction. Alone, each such transaction rewrote the pages it touched (the jobs table,
//! its ten indexes, the audit log, the chain's head): about fifteen pages of WAL, twice the
//! chain's head row, a BEGIN and a COMMIT, and a turn at SQLite's write lock, per job. Here
//! a caller that finds no batch being written starts one on a task of its own; callers that
//! come while it runs wait, and the next batch takes them all in one transaction, their
//! audit records appended to the chain at once. A caller alone still commits at once: no
//! caller waits for company.
//!
//! The batch is written by a spawned task, not by the caller that started it, so a caller
//! whose request is dropped (the client went away) cannot cut short the others' commit.

use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::audit::AuditEntry;
use crate::error::StoreError;
use crate::jobs::{Job, NewJob, insert_queued};
use crate::{Store, StoreResult};

/// Most jobs committed in one transaction: bounds how long one holds the write lock.
const MAX_BATCH: usize = 64;

/// What a queued job's audit record is, given the job as stored; `None` records nothing.
/// Called again if the batch is retried one job at a time.
type RecordOf = Box<dyn Fn(&Job) -> Option<AuditEntry> + Send + Sync>;

/// One caller's job, waiting for the next batch.
struct Waiting {
    job: NewJob,
    dry_run: bool,
    record: RecordOf,
    answer: oneshot::Sender<StoreResult<Job>>,
}

/// The jobs waiting to be queued, and whether a batch is being written.
#[derive(Default)]
pub(crate) struct EnqueueQueue {
    state: Mutex<QueueState>,
}

#[derive(Default)]
struct QueueState {
    waiting: Vec<Waiting>,
    writing: bool,
}

impl std::fmt::Debug for EnqueueQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnqueueQueue").finish_non_exhaustive()
    }
}

impl EnqueueQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Should the writing task end early (a panic, or its runtime shutting down), the queue
/// takes new batches again, and the callers it held get an error, not a wait without end.
struct WritingGuard {
    queue: Arc<EnqueueQueue>,
    /// Cleared as the task ends normally, having handed the queue back itself.
    armed: bool,
}

impl Drop for WritingGuard {
    fn drop(&mut self) {
        if self.armed {
            let mut state = self.queue.lock();
            state.writing = false;
            state.waiting.clear();
        }
    }
}

impl Store {
    /// Queue `job`, a dry run when `dry_run` (marked before any node can claim it), and
    /// append the audit record `record` makes of it, all in one transaction: no job is
    /// queued without its record, nor recorded without being queued. Jobs queued at the same
    /// time by other callers may share that transaction (see the module's notes); a failure
    /// of one is retried alone, so it fails no other.
    pub async fn enqueue_job_recorded(
        &self,
        job: &NewJob,
        dry_run: bool,
        record: impl Fn(&Job) -> Option<AuditEntry> + Send + Sync + 'static,
    ) -> StoreResult<Job> {
        let (answer, answered) = oneshot::channel();
        let start_writing = {
            let mut state = self.enqueues.lock();
            state.waiting.push(Waiting {
                job: job.clone(),
                dry_run,
                record: Box::new(record),
                answer,
            });
            !std::mem::replace(&mut state.writing, true)
        };
        if start_writing {
            tokio::spawn(self.clone().write_batches());
        }
        answered.await.unwrap_or_else(|_| {
            Err(StoreError::Refused(
                "the job was not queued: the store's writer stopped".into(),
            ))
        })
    }

    /// Write batches until nobody waits.
    async fn write_batches(self) {
        let mut guard = WritingGuard {
            queue: self.enqueues.clone(),
            armed: true,
        };
        loop {
            let batch: Vec<Waiting> = {
                let mut state = self.enqueues.lock();
                if state.waiting.is_empty() {
                    state.writing = false;
                    guard.armed = false;
                    break;
                }
                let n = state.waiting.len().min(MAX_BATCH);
                state.waiting.drain(..n).collect()
            };
            self.write_batch(batch).await;
        }
    }

    /// Queue a batch in one transaction, or, if a statement fails before the commit, each
    /// job in a transaction of its own, so the failure is the failing caller's alone.
    async fn write_batch(&self, batch: Vec<Waiting>) {
        if batch.len() > 1 {
            let mut tx = match self.pool().begin().await {
                Ok(tx) => tx,
                Err(e) => return answer_all(batch, e.into()),
            };
            let mut jobs = Vec::with_capacity(batch.len());
            let mut entries = Vec::new();
            let mut written: StoreResult<()> = Ok(());
            for waiting in &batch {
                match queue_in(&mut tx, waiting).await {
                    Ok((job, entry)) => {
                        jobs.push(job);
                        entries.extend(entry);
                    }
                    Err(e) => {
                        written = Err(e);
                        break;
                    }
                }
            }
            if written.is_ok() {
                written = crate::audit::append_in(&mut tx, &entries).await.map(drop);
            }
            match written {
                Ok(()) => {
                    // A failed COMMIT is not retried job by job: it may have landed.
                    return match tx.commit().await {
                        Ok(()) => {
                            for (waiting, job) in batch.into_iter().zip(jobs) {
                                let _ = waiting.answer.send(Ok(job));
                            }
                        }
                        Err(e) => answer_all(batch, e.into()),
                    };
                }
                Err(e) => {
                    drop(tx);
                    tracing::debug!(
                        "queuing {} jobs together failed, one by one now: {e}",
                        batch.len()
                    );
                }
            }
        }
        for waiting in batch {
            let queued = self.queue_alone(&waiting).await;
            let _ = waiting.answer.send(queued);
        }
    }

    /// Queue one job with its record in a transaction of its own.
    async fn queue_alone(&self, waiting: &Waiting) -> StoreResult<Job> {
        let mut tx = self.pool().begin().await?;
        let (job, entry) = queue_in(&mut tx, waiting).await?;
        if let Some(entry) = entry {
            crate::audit::append_in(&mut tx, &[entry]).await?;
        }
        tx.commit().await?;
        Ok(job)
    }
}

/// Insert one waiting job (and its dry-run mark) in `tx`; the job and its audit record.
async fn queue_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    waiting: &Waiting,
) -> StoreResult<(Job, Option<AuditEntry>)> {
    let job = insert_queued(tx, &waiting.job).await?;
    if waiting.dry_run {
        crate::dry_runs::mark_dry_run(tx, &job.id).await?;
    }
    let entry = (waiting.record)(&job);
    Ok((job, entry))
}

/// Give every caller of `batch` the failure of its commit: the first the error itself, the
/// others its words (a `sqlx::Error` cannot be copied), classed the same.
fn answer_all(batch: Vec<Waiting>, error: StoreError) {
    let message = format!("the jobs queued together were not stored: {error}");
    let unavailable = error.is_unavailable();
    let mut first = Some(error);
    for waiting in batch {
        let error = first.take().unwrap_or_else(|| StoreError::Shared {
            message: message.clone(),
            unavailable,
        });
        let _ = waiting.answer.send(Err(error));
    }
}
