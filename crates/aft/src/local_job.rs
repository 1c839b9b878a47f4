//! A job this process runs itself and records in the store as a service records its own
//! (`aft run` without a service, `aft cp`): it starts as running on a node of its own
//! (`cli-HOST-PID`) with a lease, so no service claims it and, should this process die, a
//! service's reaper marks it interrupted once the lease runs out; its log lines go to the
//! store in batches, numbered, cut and capped as the service's runner does
//! ([`aft_server::job_log`]); and its true end is recorded.
//!
//! Cost on a short run: one INSERT at the start, then one transaction with the log lines
//! and the end (the writer holds lines for [`LOG_FLUSH_DELAY`], so a run shorter than that
//! stores them with its end). The lease is renewed and halt requests are read only while
//! it runs.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use aft_engine::{LogLevel, LogSink};
use aft_server::job_log::LineNumbers;
use aft_store::{JobEnd, JobStatus, LogLine, NewJob, Settings, Store, StoreResult};
use tokio::sync::{mpsc, oneshot};

/// How often a running local job reads whether a halt was asked for (`aft jobs halt`, the
/// API, the web UI): a read only, no write.
const HALT_POLL: Duration = Duration::from_secs(1);

/// How long the log writer holds a line before storing it with whatever queued up after
/// it: a run that ends sooner stores its lines with its end, in one transaction; a longer
/// one's log (`aft jobs follow`, the web UI) lags by at most this.
pub const LOG_FLUSH_DELAY: Duration = Duration::from_millis(250);

/// Most lines stored in one write.
const MAX_BATCH: usize = 10_000;

/// The settings a local job is recorded by, read from the store's settings.
#[derive(Debug, Clone, Copy)]
pub struct JobSettings {
    /// `job-lease-seconds`: how long the record stays claimed without a renewal.
    pub lease: Duration,
    /// `job-log-max-lines`: log lines kept.
    pub log_max_lines: u64,
}

impl JobSettings {
    /// From the store's typed settings, whose defaults and bounds aft-store declares once.
    pub fn of(settings: &Settings) -> JobSettings {
        JobSettings {
            lease: Duration::from_secs(settings.job_lease_seconds.into()),
            log_max_lines: settings.job_log_max_lines,
        }
    }

    /// From the store's settings.
    pub async fn read(store: &Store) -> StoreResult<JobSettings> {
        Ok(JobSettings::of(&store.settings().await?))
    }
}

/// What the log writer task is sent.
enum ToWriter {
    Line(LogLine),
    /// Hand back the lines not stored yet, and stop: lines after it are dropped.
    End(oneshot::Sender<Vec<LogLine>>),
}

/// A job recorded as running here. Its log sink may be handed to the job's thread; call
/// [`LocalJob::finish`] at the end (a job left unfinished is reaped when its lease runs out).
pub struct LocalJob {
    store: Store,
    id: String,
    node_id: String,
    lease: Duration,
    numbers: Arc<LineNumbers>,
    tx: mpsc::UnboundedSender<ToWriter>,
}

impl LocalJob {
    /// Record `job` as running in this process (a dry run when `dry_run`), and start the
    /// task that stores its log. Needs a tokio runtime.
    pub async fn start(
        store: &Store,
        job: &NewJob,
        dry_run: bool,
        settings: JobSettings,
    ) -> StoreResult<LocalJob> {
        let node_id = format!(
            "cli-{}-{}",
            aft_server::server::host_name(),
            std::process::id()
        );
        let started = if dry_run {
            store
                .start_dry_run_here(job, &node_id, settings.lease)
                .await?
        } else {
            store.start_job_here(job, &node_id, settings.lease).await?
        };
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(write_log(store.clone(), started.id.clone(), rx));
        Ok(LocalJob {
            store: store.clone(),
            id: started.id,
            node_id,
            lease: settings.lease,
            numbers: Arc::new(LineNumbers::new(0, settings.log_max_lines)),
            tx,
        })
    }

    /// The job's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The store it is recorded in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Queue one line of the job's log for the store.
    pub fn log(&self, level: LogLevel, message: &str) {
        if let Some(line) = self.numbers.next(level, message) {
            let _ = self.tx.send(ToWriter::Line(line));
        }
    }

    /// A sink writing to the job's stored log (from any thread).
    pub fn sink(&self) -> LogSink {
        let numbers = self.numbers.clone();
        let tx = self.tx.clone();
        Arc::new(move |level: LogLevel, message: &str| {
            if let Some(line) = numbers.next(level, message) {
                let _ = tx.send(ToWriter::Line(line));
            }
        })
    }

    /// A sink writing each line to `terminal` and to the job's stored log.
    pub fn tee(&self, terminal: LogSink) -> LogSink {
        let stored = self.sink();
        Arc::new(move |level: LogLevel, message: &str| {
            terminal(level, message);
            stored(level, message);
        })
    }

    /// Keep the job's lease while it runs, and call `on_halt_asked` once when a halt is
    /// asked for it (`aft jobs halt`, the API, the web UI). Never ends: race it against
    /// the job.
    pub async fn keep_lease(&self, mut on_halt_asked: impl FnMut()) -> Infallible {
        let start = tokio::time::Instant::now();
        // Nothing at once: the record was just written with a fresh lease.
        let mut renew = tokio::time::interval_at(start + self.lease / 3, self.lease / 3);
        let mut poll = tokio::time::interval_at(start + HALT_POLL, HALT_POLL);
        for timer in [&mut renew, &mut poll] {
            timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
        let ids = [self.id.clone()];
        let mut asked = false;
        loop {
            tokio::select! {
                _ = renew.tick() => {
                    // A failed renewal is tried again at the next tick; the end recorded
                    // later wins over a reaper's `interrupted` (see `Store::finish_job`).
                    let _ = self.store.renew_job_leases(&self.node_id, &ids, self.lease).await;
                }
                _ = poll.tick(), if !asked => {
                    if self
                        .store
                        .halt_requests(&self.node_id)
                        .await
                        .is_ok_and(|ids| ids.contains(&self.id))
                    {
                        asked = true;
                        on_halt_asked();
                    }
                }
            }
        }
    }

    /// Record how the job ended, with the log lines not stored yet, in one transaction. If
    /// that fails, the end is recorded on its own. A store that refuses is reported on
    /// standard error (the job is then reaped as interrupted once its lease runs out); the
    /// caller's exit code does not change.
    pub async fn finish(self, status: JobStatus, exit_code: Option<i64>, error: Option<&str>) {
        let (done_tx, done_rx) = oneshot::channel();
        let lines = match self.tx.send(ToWriter::End(done_tx)) {
            Ok(()) => done_rx.await.unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        let end = JobEnd {
            job_id: self.id.clone(),
            status,
            exit_code,
            error: error.map(str::to_string),
        };
        let together = self
            .store
            .store_logs_and_ends(&self.node_id, &[(self.id.clone(), lines)], &[end])
            .await;
        let Err(e) = together else { return };
        eprintln!("warning: cannot store the log of job {}: {e}", self.id);
        if let Err(e) = self
            .store
            .finish_job(&self.id, &self.node_id, status, exit_code, error)
            .await
        {
            eprintln!(
                "warning: cannot record the end of job {} ({status}): {e}",
                self.id
            );
        }
    }
}

/// Store a job's log lines: from its first line, whatever queued up within
/// [`LOG_FLUSH_DELAY`] in one write, and so on, until [`ToWriter::End`] takes the lines
/// not stored yet.
async fn write_log(store: Store, job_id: String, mut rx: mpsc::UnboundedReceiver<ToWriter>) {
    let mut warned = false;
    let mut batch = Vec::new();
    let mut open = true;
    while open {
        let Some(first) = rx.recv().await else { return };
        let flush_at = tokio::time::Instant::now() + LOG_FLUSH_DELAY;
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                ToWriter::Line(line) => batch.push(line),
                ToWriter::End(done) => {
                    let _ = done.send(batch);
                    return;
                }
            }
            if batch.len() >= MAX_BATCH {
                break;
            }
            match tokio::time::timeout_at(flush_at, rx.recv()).await {
                Ok(Some(msg)) => next = Some(msg),
                // The job was dropped without `finish`: store what there is and stop.
                Ok(None) => open = false,
                Err(_) => {}
            }
        }
        if let Err(e) = store.append_job_logs(&job_id, &batch).await
            && !warned
        {
            warned = true;
            eprintln!("warning: cannot store the log of job {job_id}: {e}");
        }
        batch.clear();
    }
}
