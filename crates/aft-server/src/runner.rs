//! The job runner of one node: claims queued jobs from the store (at most
//! `max-concurrent-jobs` at a time, oldest first), runs each on its own thread through the
//! engine, streams log lines to the store in batches and to live followers on this node,
//! renews its leases, obeys halt requests from any node, and reaps dead nodes' jobs.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, broadcast, mpsc, oneshot};

use aft_engine::{HaltFlag, JobHost, JobScope, LogLevel, LogSink};
use aft_store::{AuditCut, LogLine};
use aft_store::{Job, JobEnd, JobStatus};
use aft_store::{Store, StoreError, StoreResult};

use crate::host::StoreJobHost;
use crate::metrics::Metrics;

/// How long a claim holds without renewal when the `job-lease-seconds` setting is not set.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
/// Longest gap between two lease renewals, heart-beats and looks for dead nodes; shorter
/// leases are renewed every third of their length.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(5);
/// How often the store is asked for jobs queued by other nodes and for halt requests.
const POLL_EVERY: Duration = Duration::from_millis(500);
/// How often ended jobs past their retention are purged.
const PURGE_EVERY: Duration = Duration::from_secs(60);
/// Longest wait between two tries of a record the store did not take.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(2);
/// How long the last try of a pending record may take once a stopping node's grace is over.
const FINAL_ATTEMPT: Duration = Duration::from_secs(2);
/// Tries of a record the store refuses (rather than cannot be reached for) before it is
/// given up.
const REFUSED_TRIES: u32 = 10;

/// How often a node renews leases of `lease`: every third of it, at most every 5 s.
fn housekeeping_every(lease: Duration) -> Duration {
    (lease / 3).min(HOUSEKEEPING_EVERY)
}

/// A node silent this long is dead (its pinned jobs are dropped): two leases, at least 10 s.
fn dead_node_after(lease: Duration) -> Duration {
    (lease * 2).max(Duration::from_secs(10))
}

/// How long a node must have reached the store without a failure before it judges other
/// nodes' leases and heartbeats: after an outage every node's leases look expired, and the
/// nodes that ran those jobs need a renewal round to renew them.
/// A housekeeping call slower than this restarts the clock of [`judge_after`].
const SLOW_CONTACT: Duration = Duration::from_secs(1);

fn judge_after(lease: Duration) -> Duration {
    lease.max(housekeeping_every(lease) * 2)
}

/// A log line on its way to the store, or the end of a job (written after its lines).
enum WriterMsg {
    Line(String, LogLine),
    Finish {
        job_id: String,
        status: JobStatus,
        exit_code: Option<i64>,
        error: Option<String>,
        /// A retry-safe job halted because this node stops: queue it again instead.
        requeue: bool,
        done: oneshot::Sender<()>,
    },
}

/// Bytes of log lines on their way to the store, across this node's jobs. A job thread
/// whose line would take them past [`LOG_QUEUE_BYTES`] waits for the writer to store what
/// is queued: a log flood, however long its lines, holds at most that much memory, and the
/// script slows to the store's pace instead.
#[derive(Default)]
struct LogQueue {
    bytes: Mutex<usize>,
    room: std::sync::Condvar,
}

/// How many bytes of log lines may wait for the store at once.
const LOG_QUEUE_BYTES: usize = 8 << 20;

impl LogQueue {
    /// Count `bytes` as queued, first waiting for room on a job's own thread; never waits
    /// on a thread of the async runtime (whose tasks include the writer), nor for a line
    /// that alone is larger than the queue once the queue is empty.
    fn enter(&self, bytes: usize) {
        let mut queued = self.bytes.lock().unwrap_or_else(|e| e.into_inner());
        if tokio::runtime::Handle::try_current().is_err() {
            while *queued > 0 && *queued + bytes > LOG_QUEUE_BYTES {
                queued = self.room.wait(queued).unwrap_or_else(|e| e.into_inner());
            }
        }
        *queued += bytes;
    }

    /// `bytes` were stored (or given up on): make room.
    fn leave(&self, bytes: usize) {
        let mut queued = self.bytes.lock().unwrap_or_else(|e| e.into_inner());
        *queued = queued.saturating_sub(bytes);
        self.room.notify_all();
    }
}

/// What a queued line counts for in the [`LogQueue`]: its text and its job's id, plus
/// what the channel slot and the four allocations of strings take besides (about 190
/// bytes by their sizes and the allocator's headers).
fn queued_bytes(job_id: &str, line: &LogLine) -> usize {
    job_id.len() + line.message.len() + line.at.len() + line.level.len() + 192
}

/// Log lines of a job running on this node that are not yet in the store, and the
/// broadcast live followers subscribe to.
struct LiveJob {
    pending: Vec<LogLine>,
    tx: broadcast::Sender<LogLine>,
}

/// What a live follower gets: the lines so far and a receiver for the next ones.
pub struct LiveTail {
    /// Lines written but perhaps not yet stored (merge with the store by line number).
    pub pending: Vec<LogLine>,
    /// The lines still to come; closed once the job has ended and all lines are stored.
    pub rx: broadcast::Receiver<LogLine>,
}

/// Makes the [`JobHost`] of one job.
type HostFactory = Box<dyn Fn(&Job, LogSink) -> Arc<dyn JobHost> + Send + Sync>;

/// What the claim loop read for a batch of claimed jobs, for one of them.
struct Claimed {
    /// Whether the job is a dry run (or why that could not be read).
    dry_run: Result<bool, String>,
    /// Every setting's text value, for the job's limits.
    settings: Option<Arc<HashMap<String, String>>>,
}

/// One running job on this node.
struct RunningJob {
    halt: HaltFlag,
    halt_by_user: Arc<AtomicBool>,
}

/// The runner of this node. Shared by the REST handlers (wake on enqueue, halt, live logs).
pub struct Runner {
    store: Store,
    node_id: String,
    host_factory: HostFactory,
    wake: Notify,
    running: Mutex<HashMap<String, RunningJob>>,
    running_count: AtomicUsize,
    live: Mutex<HashMap<String, LiveJob>>,
    writer: mpsc::UnboundedSender<WriterMsg>,
    /// Bounds what `writer` holds (log lines; a job's end is never held back).
    log_queue: LogQueue,
    stopping: AtomicBool,
    max_concurrent: AtomicUsize,
    /// The `job-lease-seconds` setting, re-read with the other settings.
    lease_secs: AtomicU64,
    /// The `job-log-max-lines` setting.
    log_max_lines: AtomicU64,
    metrics: Arc<Metrics>,
    /// Since when every store call of this node worked (`None` while it fails).
    contact_since: Mutex<Option<Instant>>,
    /// A claim failed: its statement may have reached the store, so this node may hold a
    /// job it does not know of.
    claim_unsure: AtomicBool,
    /// Jobs whose end could not be recorded and was given up: never adopted again.
    given_up: Mutex<HashSet<String>>,
    /// Job ends handed to the writer and not yet recorded (or given up).
    finishing: AtomicUsize,
    /// Once set (a stopping node's grace is over), pending records get one last try.
    give_up_at: Mutex<Option<Instant>>,
}

impl Runner {
    /// A runner for node `node_id`; call [`Runner::start`] to begin claiming jobs.
    pub fn new(
        store: Store,
        node_id: String,
        host: StoreJobHost,
        metrics: Arc<Metrics>,
    ) -> Arc<Runner> {
        let (writer, writer_rx) = mpsc::unbounded_channel();
        let host = Arc::new(host);
        let runner = Arc::new(Runner {
            store,
            node_id,
            host_factory: Box::new(move |job: &Job, log: LogSink| {
                Arc::new(host.for_job(&job.id, log)) as Arc<dyn JobHost>
            }),
            wake: Notify::new(),
            running: Mutex::new(HashMap::new()),
            running_count: AtomicUsize::new(0),
            live: Mutex::new(HashMap::new()),
            writer,
            log_queue: LogQueue::default(),
            stopping: AtomicBool::new(false),
            max_concurrent: AtomicUsize::new(4),
            lease_secs: AtomicU64::new(DEFAULT_LEASE.as_secs()),
            log_max_lines: AtomicU64::new(100_000),
            metrics,
            contact_since: Mutex::new(Some(Instant::now())),
            claim_unsure: AtomicBool::new(false),
            given_up: Mutex::new(HashSet::new()),
            finishing: AtomicUsize::new(0),
            give_up_at: Mutex::new(None),
        });
        tokio::spawn(log_writer(runner.clone(), writer_rx));
        runner
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Start the claim loop and the housekeeping loop.
    pub async fn start(self: &Arc<Self>) -> Result<(), aft_store::StoreError> {
        let (requeued, interrupted) = self
            .store
            .recover_node_jobs(
                &self.node_id,
                "the service stopped while it ran (crash or kill)",
            )
            .await?;
        if !requeued.is_empty() || !interrupted.is_empty() {
            tracing::warn!(
                ?requeued,
                ?interrupted,
                "jobs left running by a previous run: retry-safe ones queued again, the rest interrupted"
            );
        }
        self.refresh_settings().await;
        tokio::spawn(self.clone().claim_loop());
        tokio::spawn(self.clone().housekeeping_loop());
        tokio::spawn(self.clone().purge_loop());
        Ok(())
    }

    /// Wake the claim loop at once (a job was queued on this node).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Number of jobs running on this node now.
    pub fn running_count(&self) -> usize {
        self.running_count.load(Ordering::SeqCst)
    }

    /// Raise the halt flag of a job if it runs on this node; true if it does.
    pub fn halt_local(&self, job_id: &str) -> bool {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        match running.get(job_id) {
            Some(job) => {
                job.halt_by_user.store(true, Ordering::SeqCst);
                job.halt.raise();
                true
            }
            None => false,
        }
    }

    /// Follow a job running on this node: its unstored lines and a receiver for new ones.
    /// `None` when the job does not run here (then poll the store).
    pub fn live_tail(&self, job_id: &str) -> Option<LiveTail> {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.get(job_id).map(|job| LiveTail {
            pending: job.pending.clone(),
            rx: job.tx.subscribe(),
        })
    }

    async fn refresh_settings(&self) {
        match self.store.settings().await {
            Ok(settings) => {
                self.max_concurrent.store(
                    settings.max_concurrent_jobs.max(1) as usize,
                    Ordering::SeqCst,
                );
                self.lease_secs.store(
                    u64::from(settings.job_lease_seconds.max(1)),
                    Ordering::SeqCst,
                );
                self.log_max_lines
                    .store(settings.job_log_max_lines, Ordering::SeqCst);
                aft_vfs::local::set_fsync(settings.local_fsync);
            }
            Err(e) => tracing::warn!("cannot read settings, keeping the previous ones: {e}"),
        }
    }

    /// The lease a claim gets now (the `job-lease-seconds` setting).
    fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_secs.load(Ordering::SeqCst))
    }

    async fn claim_loop(self: Arc<Self>) {
        let mut settings_read = Instant::now();
        while !self.stopping.load(Ordering::SeqCst) {
            // A changed max-concurrent-jobs (or log cap) applies to the next claims, not
            // only after the next housekeeping pass.
            if settings_read.elapsed() >= Duration::from_secs(1) {
                self.refresh_settings().await;
                settings_read = Instant::now();
            }
            if self.claim_unsure.load(Ordering::SeqCst) && !self.stopping.load(Ordering::SeqCst) {
                self.adopt_lost_claims().await;
            }
            while self.running_count() < self.max_concurrent.load(Ordering::SeqCst)
                && !self.stopping.load(Ordering::SeqCst)
                && !self.claim_unsure.load(Ordering::SeqCst)
            {
                // Every free slot in one claim, which also says which of them are dry runs:
                // a burst of queued jobs costs one write, and one read for the limits
                // settings.
                let free = self.max_concurrent.load(Ordering::SeqCst) - self.running_count();
                match self
                    .store
                    .claim_jobs_marked(&self.node_id, self.lease(), free)
                    .await
                {
                    Ok(jobs) if jobs.is_empty() => {
                        self.store_reached();
                        break;
                    }
                    Ok(jobs) => {
                        self.store_reached();
                        let settings = self.job_settings().await;
                        for (job, dry_run) in jobs {
                            let claimed = Claimed {
                                dry_run: Ok(dry_run),
                                settings: settings.clone(),
                            };
                            self.clone().start_claimed(job, Some(claimed)).await
                        }
                    }
                    Err(e) => {
                        self.store_failed(&e);
                        // The claim may have been stored with its answer lost.
                        self.claim_unsure.store(true, Ordering::SeqCst);
                        tracing::error!("cannot claim a job: {e}");
                        break;
                    }
                }
            }
            let _ = tokio::time::timeout(POLL_EVERY, self.wake.notified()).await;
        }
    }

    /// The settings a job reads as it starts (its limits), read once for a batch of claims;
    /// `None` if they cannot be read now (each job then reads them itself).
    async fn job_settings(&self) -> Option<Arc<HashMap<String, String>>> {
        match self.store.list_settings().await {
            Ok(all) => Some(Arc::new(
                all.into_iter()
                    .map(|s| (s.key.to_string(), s.value))
                    .collect(),
            )),
            Err(e) => {
                tracing::warn!("cannot read the settings for claimed jobs: {e}");
                None
            }
        }
    }

    /// Launch a job this node claimed; `claimed` holds what was read for its batch of
    /// claims (`None`: the job reads it itself).
    async fn start_claimed(self: Arc<Self>, job: Job, claimed: Option<Claimed>) {
        // A job queued again after its node stopped keeps its first attempt's log; this
        // attempt's lines follow it.
        let first_line = if job.attempts > 1 {
            self.store
                .last_job_log_line(&job.id)
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!("cannot read the log of job {}: {e}", job.id);
                    0
                })
        } else {
            0
        };
        self.launch(job, first_line, claimed)
    }

    /// Ids of the jobs this node runs or has ended (their end perhaps not yet recorded).
    fn known_jobs(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        ids.extend(
            self.given_up
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .cloned(),
        );
        ids
    }

    /// After a failed claim: run the jobs the store says this node claimed that it does not
    /// know of (a claim stored just before the connection broke), instead of leaving them
    /// to run out their lease and be reported interrupted.
    async fn adopt_lost_claims(self: &Arc<Self>) {
        let known = self.known_jobs();
        match self
            .store
            .adopt_lost_claims(&self.node_id, &known, self.lease())
            .await
        {
            Ok(jobs) => {
                self.store_reached();
                self.claim_unsure.store(false, Ordering::SeqCst);
                for job in jobs {
                    tracing::warn!(
                        "job {} was claimed by this node just before the store became unreachable; running it now",
                        job.id
                    );
                    self.clone().start_claimed(job, None).await;
                }
            }
            Err(e) => {
                self.store_failed(&e);
                tracing::warn!("cannot look for jobs claimed during a store outage: {e}");
            }
        }
    }

    /// A store call of this node worked.
    fn store_reached(&self) {
        let mut since = self.contact_since.lock().unwrap_or_else(|e| e.into_inner());
        if since.is_none() {
            *since = Some(Instant::now());
        }
    }

    /// A store call of this node failed; if the store could not be reached, other nodes'
    /// leases are not judged until it has been reachable for a while again.
    fn store_failed(&self, e: &StoreError) {
        if e.is_unavailable() {
            *self.contact_since.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }

    /// Whether this node has reached the store long enough to judge other nodes' leases.
    fn may_judge_others(&self) -> bool {
        self.contact_since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|since| since.elapsed() >= judge_after(self.lease()))
    }

    /// Run `op` until the store takes it: the store being away is waited out with a
    /// growing pause (at most [`MAX_RETRY_WAIT`]); a refusal is tried [`REFUSED_TRIES`]
    /// times. Once a stopping node's grace is over, one last try of at most
    /// [`FINAL_ATTEMPT`]. `None` when given up.
    async fn keep_trying<T, Fut>(&self, what: &str, mut op: impl FnMut() -> Fut) -> Option<T>
    where
        Fut: Future<Output = StoreResult<T>>,
    {
        let mut wait = Duration::from_millis(100);
        let mut refused = 0;
        let mut failures = 0u32;
        loop {
            let give_up_at = *self.give_up_at.lock().unwrap_or_else(|e| e.into_inner());
            let result = match give_up_at {
                Some(at) => {
                    let time = at
                        .saturating_duration_since(Instant::now())
                        .max(FINAL_ATTEMPT);
                    match tokio::time::timeout(time, op()).await {
                        Ok(result) => result,
                        Err(_) => {
                            tracing::error!(
                                "gave up {what}: the service is stopping and the store did not answer"
                            );
                            return None;
                        }
                    }
                }
                None => op().await,
            };
            let e = match result {
                Ok(value) => {
                    self.store_reached();
                    if failures > 0 {
                        tracing::info!("{what}: done after {failures} failed tries");
                    }
                    return Some(value);
                }
                Err(e) => e,
            };
            self.store_failed(&e);
            failures += 1;
            if !e.is_unavailable() {
                refused += 1;
                if refused >= REFUSED_TRIES {
                    tracing::error!("gave up {what} after {refused} tries: {e}");
                    return None;
                }
            }
            if give_up_at.is_some_and(|at| Instant::now() >= at) {
                tracing::error!("gave up {what}: the service is stopping: {e}");
                return None;
            }
            // The first failure and then one in ten, so an outage does not flood the log.
            if failures % 10 == 1 {
                tracing::warn!("cannot {what} yet, trying again: {e}");
            }
            let mut pause = wait;
            if let Some(at) = give_up_at {
                pause = pause.min(at.saturating_duration_since(Instant::now()));
            }
            tokio::time::sleep(pause).await;
            wait = (wait * 2).min(MAX_RETRY_WAIT);
        }
    }

    async fn housekeeping_loop(self: Arc<Self>) {
        let mut last_housekeeping = Instant::now() - HOUSEKEEPING_EVERY * 2;
        while !self.stopping.load(Ordering::SeqCst) {
            tokio::time::sleep(POLL_EVERY).await;
            if self.running_count() > 0 {
                match self.store.halt_requests(&self.node_id).await {
                    Ok(ids) => {
                        for id in ids {
                            self.halt_local(&id);
                        }
                    }
                    Err(e) => {
                        self.store_failed(&e);
                        tracing::warn!("cannot poll halt requests: {e}")
                    }
                }
            }
            let every = housekeeping_every(self.lease());
            if last_housekeeping.elapsed() >= every {
                last_housekeeping = Instant::now();
                self.refresh_settings().await;
                if let Err(e) = self.housekeeping().await {
                    self.store_failed(&e);
                    tracing::warn!("housekeeping failed, retrying in {every:?}: {e}");
                }
            }
        }
    }

    /// Retention, in a task of its own: a purge of a large backlog takes minutes and must
    /// not hold up lease renewals. Job history and the audit trail's cap every minute (so
    /// `job-retention-max-jobs` and `audit-retention-max-records` hold closely); sessions
    /// and the audit trail's age hourly.
    async fn purge_loop(self: Arc<Self>) {
        let mut last_hourly: Option<Instant> = None;
        while !self.stopping.load(Ordering::SeqCst) {
            let hourly = last_hourly.is_none_or(|at| at.elapsed() >= Duration::from_secs(3600));
            if hourly {
                last_hourly = Some(Instant::now());
                if let Err(e) = self.store.purge_expired_sessions().await {
                    tracing::warn!("cannot purge expired admin sessions: {e}");
                }
            }
            match self.store.settings().await {
                Ok(settings) => {
                    if let Err(e) = self.purge_old_jobs(&settings).await {
                        tracing::warn!("cannot purge old jobs: {e}");
                    }
                    self.prune_audit_trail(&settings, hourly).await;
                }
                Err(e) => tracing::warn!("cannot read the retention settings: {e}"),
            }
            tokio::time::sleep(PURGE_EVERY).await;
        }
    }

    /// Prune the audit trail to `audit-retention-max-records` (0: no cap) and, when
    /// `by_age`, by `audit-retention-days` (0: kept whole).
    async fn prune_audit_trail(&self, settings: &aft_store::Settings, by_age: bool) {
        let mut cuts = Vec::new();
        if settings.audit_retention_max_records > 0 {
            cuts.push(AuditCut::BeyondNewest(settings.audit_retention_max_records));
        }
        if by_age && settings.audit_retention_days > 0 {
            let age = chrono::Duration::days(i64::from(settings.audit_retention_days));
            cuts.push(AuditCut::OlderThan(chrono::Utc::now() - age));
        }
        let by = crate::audit::service_entry(&self.node_id);
        for cut in cuts {
            if let Err(e) = self.store.prune_audit(cut, &by).await {
                tracing::warn!("cannot prune the audit trail ({cut:?}): {e}");
            }
        }
    }

    async fn housekeeping(&self) -> Result<(), aft_store::StoreError> {
        let began = Instant::now();
        self.store.heartbeat_node(&self.node_id).await?;
        if began.elapsed() > SLOW_CONTACT {
            // A call the store kept waiting (a pool blocked through an outage) proves no
            // contact while it waited: judge other nodes' leases only a lease from now, or
            // a node whose renewals waited in the same outage would be reaped at once.
            *self.contact_since.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        }
        let lease = self.lease();
        // Only the jobs in memory: one whose end was given up must run out its lease.
        let running: Vec<String> = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        self.store
            .renew_job_leases(&self.node_id, &running, lease)
            .await?;
        self.store_reached();
        if !self.may_judge_others() {
            return Ok(());
        }
        let (requeued, interrupted) = self.store.reap_expired_leases().await?;
        if !requeued.is_empty() || !interrupted.is_empty() {
            tracing::warn!(
                ?requeued,
                ?interrupted,
                "jobs of a silent node were re-queued or interrupted"
            );
            self.wake();
        }
        for node in self.store.dead_nodes(dead_node_after(lease)).await? {
            if node != self.node_id {
                self.store.interrupt_pinned_jobs(&node).await?;
            }
        }
        Ok(())
    }

    /// Delete job history older than the `job-retention-days` setting, and beyond the
    /// `job-retention-max-jobs` newest ended jobs when that is set.
    pub async fn purge_old_jobs(
        &self,
        settings: &aft_store::Settings,
    ) -> Result<u64, aft_store::StoreError> {
        let cutoff = aft_store::time_before(Duration::from_secs(
            u64::from(settings.job_retention_days) * 86_400,
        ));
        let mut purged = self.store.purge_jobs_before(&cutoff).await?;
        if settings.job_retention_max_jobs > 0 {
            purged += self
                .store
                .purge_jobs_beyond(settings.job_retention_max_jobs)
                .await?;
        }
        if purged > 0 {
            tracing::info!(purged, "old jobs purged");
        }
        Ok(purged)
    }

    /// Run one claimed job on its own thread; its end goes through the log writer so the
    /// status changes only after every line is stored.
    fn launch(self: Arc<Self>, job: Job, first_line: i64, claimed: Option<Claimed>) {
        let halt = HaltFlag::new();
        let halt_by_user = Arc::new(AtomicBool::new(false));
        self.running_count.fetch_add(1, Ordering::SeqCst);
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                job.id.clone(),
                RunningJob {
                    halt: halt.clone(),
                    halt_by_user: halt_by_user.clone(),
                },
            );
        let (tx, _) = broadcast::channel(1024);
        self.live.lock().unwrap_or_else(|e| e.into_inner()).insert(
            job.id.clone(),
            LiveJob {
                pending: Vec::new(),
                tx,
            },
        );
        if job.halt_requested {
            halt_by_user.store(true, Ordering::SeqCst);
            halt.raise();
        }
        let sink = self.clone().log_sink(job.id.clone(), first_line);
        if job.attempts > 1 {
            sink(
                LogLevel::Info,
                &format!(
                    "attempt {}: the job was queued again after the node running it stopped",
                    job.attempts
                ),
            );
        }
        let mut scope = JobScope {
            host: (self.host_factory)(&job, sink.clone()),
            log: sink,
            halt: halt.clone(),
            tokio: tokio::runtime::Handle::current(),
        };
        let runner = self.clone();
        // A watcher's run is not queued again by a clean shutdown: the watcher supervisor
        // starts a fresh run with the service (docs/syncjs-watchers.md).
        let retry_safe = job.retry_safe && job.pinned_node.is_none() && job.origin != "watcher";
        tokio::spawn(async move {
            let started = Instant::now();
            let job_id = job.id.clone();
            let (known_dry_run, settings) = match claimed {
                Some(claimed) => (Some(claimed.dry_run), claimed.settings),
                None => (None, None),
            };
            let dry_run =
                crate::dry_run::prepare(&runner.store, &job_id, &mut scope, known_dry_run).await;
            let log = scope.log.clone();
            let ended = tokio::task::spawn_blocking(move || {
                crate::execute::run(&job, scope, settings.as_deref())
            })
            .await
            .unwrap_or_else(|e| {
                crate::execute::Ended::failed(format!("the job's thread panicked: {e}"))
            });
            if let Some(run) = &dry_run {
                crate::dry_run::finish(&runner.store, &job_id, run, &log).await;
            }
            let halted_by_user = halt_by_user.load(Ordering::SeqCst);
            let stopped_by_shutdown =
                !halted_by_user && halt.is_raised() && runner.stopping.load(Ordering::SeqCst);
            let (status, error) = if halted_by_user && halt.is_raised() {
                (
                    JobStatus::Halted,
                    ended.error.or(Some("halted on request".into())),
                )
            } else if halt.is_raised() && runner.stopping.load(Ordering::SeqCst) {
                (
                    JobStatus::Interrupted,
                    Some("the service stopped while it ran".into()),
                )
            } else {
                (ended.status, ended.error)
            };
            runner.metrics.job_finished(status, started.elapsed());
            runner.finishing.fetch_add(1, Ordering::SeqCst);
            let (done_tx, done_rx) = oneshot::channel();
            let _ = runner.writer.send(WriterMsg::Finish {
                job_id: job_id.clone(),
                status,
                exit_code: ended.exit_code,
                error,
                requeue: retry_safe && stopped_by_shutdown,
                done: done_tx,
            });
            let _ = done_rx.await;
            runner
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&job_id);
            runner.running_count.fetch_sub(1, Ordering::SeqCst);
            runner.wake();
        });
    }

    /// The log sink of one job: numbers lines, keeps them for live followers until stored,
    /// and hands them to the batch writer.
    fn log_sink(self: Arc<Self>, job_id: String, after_line: i64) -> LogSink {
        let numbers =
            crate::job_log::LineNumbers::new(after_line, self.log_max_lines.load(Ordering::SeqCst));
        Arc::new(move |level: LogLevel, message: &str| {
            let Some(line) = numbers.next(level, message) else {
                return;
            };
            self.log_queue.enter(queued_bytes(&job_id, &line));
            if let Some(live) = self
                .live
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_mut(&job_id)
            {
                live.pending.push(line.clone());
                let _ = live.tx.send(line.clone());
            }
            let _ = self.writer.send(WriterMsg::Line(job_id.clone(), line));
        })
    }

    /// Stop claiming, halt every running job, wait up to `grace` for them to end, then mark
    /// what is left `interrupted` and record that this node stopped.
    pub async fn shutdown(&self, grace: Duration) {
        self.stopping.store(true, Ordering::SeqCst);
        self.wake();
        for job in self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            job.halt.raise();
        }
        let deadline = Instant::now() + grace;
        while self.running_count() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Ends and log lines the store has not taken yet get one last bounded try.
        let last_try = Instant::now().max(deadline);
        *self.give_up_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(last_try);
        while self.finishing.load(Ordering::SeqCst) > 0
            && Instant::now() < last_try + FINAL_ATTEMPT * 2
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let recover = self.store.recover_node_jobs(
            &self.node_id,
            "the service stopped before the job ended its halt",
        );
        match tokio::time::timeout(FINAL_ATTEMPT, recover).await {
            Ok(Ok((requeued, interrupted))) if !requeued.is_empty() || !interrupted.is_empty() => {
                tracing::warn!(?requeued, ?interrupted, "jobs still running at shutdown")
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::error!("cannot record the jobs still running at shutdown: {e}")
            }
            Err(_) => tracing::error!(
                "cannot record the jobs still running at shutdown: the store did not answer"
            ),
        }
        match tokio::time::timeout(FINAL_ATTEMPT, self.store.stop_node(&self.node_id)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("cannot record the node's stop: {e}"),
            Err(_) => tracing::warn!("cannot record the node's stop: the store did not answer"),
        }
    }

    /// Store lines, trying again until the store takes them: a database that is away for
    /// a while must not lose a job's log (the per-job line cap bounds what waits).
    /// Store the lines of several jobs in one write (one per batch, not one per job).
    async fn store_lines(&self, jobs: &[(String, Vec<LogLine>)]) {
        if jobs.is_empty() {
            return;
        }
        let what = match jobs {
            [(job_id, lines)] => format!("store {} log lines of job {job_id}", lines.len()),
            _ => format!("store the log lines of {} jobs", jobs.len()),
        };
        self.keep_trying(&what, || self.store.append_logs_of_jobs(jobs))
            .await;
        self.forget_stored_lines(jobs);
    }

    /// Lines now in the store: live followers read them there, so they leave `pending`.
    fn forget_stored_lines(&self, jobs: &[(String, Vec<LogLine>)]) {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        for (job_id, lines) in jobs {
            if let Some(live) = live.get_mut(job_id) {
                let stored = lines.last().map(|l| l.line).unwrap_or(0);
                live.pending.retain(|l| l.line > stored);
            }
        }
    }
}

impl Runner {
    /// Store a writer batch: the lines and the ends of the jobs that ended in it, in one
    /// transaction (one write for a burst of short jobs, not two per job). If that fails,
    /// each part is written on its own and tried until the store takes it, as
    /// [`Runner::store_lines`] and [`Runner::record_end`] do.
    async fn write_batch(
        &self,
        lines: &mut Vec<(String, Vec<LogLine>)>,
        ends: &mut Vec<(JobEnd, oneshot::Sender<()>)>,
    ) {
        if ends.is_empty() {
            self.store_lines(lines).await;
            lines.clear();
            return;
        }
        let job_ends: Vec<JobEnd> = ends.iter().map(|(end, _)| end.clone()).collect();
        // A stopping node's last tries are bounded by keep_trying: go there directly.
        let stopping = self
            .give_up_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some();
        let together = if stopping {
            None
        } else {
            Some(
                self.store
                    .store_logs_and_ends(&self.node_id, lines, &job_ends)
                    .await,
            )
        };
        match together {
            Some(Ok(recorded)) => {
                self.store_reached();
                self.forget_stored_lines(lines);
                for (end, recorded) in job_ends.iter().zip(recorded) {
                    if !recorded {
                        tracing::warn!(
                            "job {} ended ({}) after another node took it over",
                            end.job_id,
                            end.status
                        );
                    }
                }
            }
            failed => {
                if let Some(Err(e)) = &failed {
                    self.store_failed(e);
                }
                self.store_lines(lines).await;
                for end in &job_ends {
                    // The failed write may have been stored with its answer lost.
                    self.record_end(
                        &end.job_id,
                        end.status,
                        end.exit_code,
                        end.error.as_deref(),
                        failed.is_some(),
                    )
                    .await;
                }
            }
        }
        lines.clear();
        for (end, done) in ends.drain(..) {
            self.end_written(&end.job_id, done);
        }
    }

    /// A job's end is recorded (or given up): free its live log and its slot.
    fn end_written(&self, job_id: &str, done: oneshot::Sender<()>) {
        self.finishing.fetch_sub(1, Ordering::SeqCst);
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(job_id);
        let _ = done.send(());
    }

    /// Record how a job ended, trying until the store takes it; the job keeps its slot (and
    /// its lease is renewed) meanwhile. Given up only by a stopping node or a store that
    /// refuses it: the job is then left to the lease reaper. `maybe_recorded`: an earlier
    /// write of this end failed, and may have been stored with its answer lost.
    async fn record_end(
        &self,
        job_id: &str,
        status: JobStatus,
        exit_code: Option<i64>,
        error: Option<&str>,
        maybe_recorded: bool,
    ) {
        let what = format!("record the end of job {job_id} ({status})");
        let mut tries = 0u32;
        let recorded = self
            .keep_trying(&what, || {
                tries += 1;
                self.store
                    .finish_job(job_id, &self.node_id, status, exit_code, error)
            })
            .await;
        // A try whose answer was lost may have recorded it already.
        let answer_lost = tries > 1 || maybe_recorded;
        match recorded {
            Some(true) => {}
            Some(false) if answer_lost && self.ended_as(job_id, status).await => {}
            Some(false) => {
                tracing::warn!("job {job_id} ended ({status}) after another node took it over")
            }
            None => {
                tracing::error!(
                    "the end of job {job_id} ({status}) is not recorded; its lease will run out and it will be reported interrupted"
                );
                self.given_up
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(job_id.to_string());
            }
        }
    }

    /// Queue a retry-safe job this stopping node halted again; false if it cannot be (a
    /// halt was asked for meanwhile), then its end is recorded as usual.
    async fn requeue(&self, job_id: &str) -> bool {
        let what = format!("queue job {job_id} again");
        let requeued = self
            .keep_trying(&what, || self.store.requeue_job(job_id, &self.node_id))
            .await
            .unwrap_or(false);
        if requeued {
            tracing::warn!(
                "job {job_id} was halted by the shutdown and is queued again (retry-safe)"
            );
        }
        requeued
    }

    /// Whether the store has `job_id` ended as `status`.
    async fn ended_as(&self, job_id: &str, status: JobStatus) -> bool {
        matches!(self.store.get_job(job_id).await, Ok(job) if job.status == status)
    }
}

/// Writes log lines to the store as they come, batching whatever queued up while the
/// previous write ran; a job's end is written after all its lines.
async fn log_writer(runner: Arc<Runner>, mut rx: mpsc::UnboundedReceiver<WriterMsg>) {
    let mut batch: Vec<WriterMsg> = Vec::new();
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < 10_000 {
            match rx.try_recv() {
                Ok(msg) => batch.push(msg),
                Err(_) => break,
            }
        }
        let mut lines: Vec<(String, Vec<LogLine>)> = Vec::new();
        let mut ends: Vec<(JobEnd, oneshot::Sender<()>)> = Vec::new();
        let taken = batch.len();
        let mut taken_bytes = 0;
        for msg in batch.drain(..) {
            match msg {
                WriterMsg::Line(job_id, line) => {
                    taken_bytes += queued_bytes(&job_id, &line);
                    match lines.iter_mut().find(|(id, _)| *id == job_id) {
                        Some((_, v)) => v.push(line),
                        None => lines.push((job_id, vec![line])),
                    }
                }
                WriterMsg::Finish {
                    job_id,
                    status,
                    exit_code,
                    error,
                    requeue: true,
                    done,
                } => {
                    // What came before it first, then the requeue on its own.
                    runner.write_batch(&mut lines, &mut ends).await;
                    if !runner.requeue(&job_id).await {
                        runner
                            .record_end(&job_id, status, exit_code, error.as_deref(), false)
                            .await;
                    }
                    runner.end_written(&job_id, done);
                }
                WriterMsg::Finish {
                    job_id,
                    status,
                    exit_code,
                    error,
                    requeue: false,
                    done,
                } => ends.push((
                    JobEnd {
                        job_id,
                        status,
                        exit_code,
                        error,
                    },
                    done,
                )),
            }
        }
        runner.write_batch(&mut lines, &mut ends).await;
        runner.log_queue.leave(taken_bytes);
        // A log flood grows the buffer to 10,000 messages (1.7 MB); once the flood is
        // over, give that back instead of keeping it for the service's lifetime.
        if taken < WRITER_KEEP && batch.capacity() > WRITER_KEEP {
            batch.shrink_to(WRITER_KEEP);
        }
    }
}

/// Messages the log writer keeps room for between bursts.
const WRITER_KEEP: usize = 256;
