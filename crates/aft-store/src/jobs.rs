//! The durable job queue: `queued → running → succeeded | failed | halted | interrupted`.
//!
//! Every state change is one statement, so several nodes can share the queue: a node claims
//! the oldest queued jobs with a lease (`UPDATE … WHERE seq IN (SELECT … LIMIT n) RETURNING`;
//! on PostgreSQL `seq = ANY(ARRAY(SELECT … FOR UPDATE SKIP LOCKED))`), renews its leases while it
//! runs them, and a reaper on any node interrupts the jobs whose lease ran out.

use std::time::Duration;

use serde::Serialize;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, Row};

use crate::{Dialect, JobParams, Store, StoreError, StoreResult, now_text};

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Waiting for a worker.
    Queued,
    /// A node runs it now.
    Running,
    /// The script ended normally.
    Succeeded,
    /// The script threw, or exited with a non-zero code.
    Failed,
    /// Someone asked it to halt, and it did.
    Halted,
    /// The node running it died or was stopped before it ended.
    Interrupted,
}

impl JobStatus {
    /// Every status, in life order.
    pub const ALL: [JobStatus; 6] = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Succeeded,
        JobStatus::Failed,
        JobStatus::Halted,
        JobStatus::Interrupted,
    ];

    /// The status as stored and shown (`queued`, `running`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Halted => "halted",
            JobStatus::Interrupted => "interrupted",
        }
    }

    /// Parse a stored or user-given status name.
    pub fn parse(text: &str) -> StoreResult<JobStatus> {
        JobStatus::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| {
                StoreError::Invalid(format!(
                    "unknown job status {text:?}: use queued, running, succeeded, failed, halted or interrupted"
                ))
            })
    }

    /// Whether the job has ended (it will not change again).
    pub fn is_final(self) -> bool {
        !matches!(self, JobStatus::Queued | JobStatus::Running)
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to queue.
#[derive(Debug, Clone, Default)]
pub struct NewJob {
    /// The stored script's id, when the job runs a stored script.
    pub script_id: Option<String>,
    /// The stored script's name (for display and filtering).
    pub script_name: Option<String>,
    /// The `.syncjs` file on the service's disk, for `filePath` jobs.
    pub file_path: Option<String>,
    /// The script source to run, captured when the job is queued.
    pub source: String,
    /// Parameters: a flat JSON object.
    pub params: JobParams,
    /// Who queued it: `api`, `cli`, `delegate`, `schedule`, ...
    pub origin: String,
    /// The API key that queued it, so the key may read its own jobs.
    pub api_key_id: Option<String>,
    /// Whether the script is safe to run again after its node died mid-run.
    pub retry_safe: bool,
    /// Only this node may run it (node-local jobs: `filePath`, `aft run` delegation).
    pub pinned_node: Option<String>,
    /// The first attempt, when this job is a retry of it.
    pub retry_of: Option<String>,
    /// Which attempt this is, from 1 (0 is taken as 1).
    pub retry_attempt: i64,
    /// Not to be claimed before this RFC 3339 time (a retry's delay).
    pub not_before: Option<String>,
    /// The job whose end started this one through a chain.
    pub chained_from: Option<String>,
    /// Who started it, in words (`admin alice`, `API key ci`, `aft cp`).
    pub started_by: Option<String>,
}

/// One job as stored.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    /// UUIDv7 job id.
    pub id: String,
    /// Queue order (monotonic).
    pub seq: i64,
    /// Where the job is in its life.
    pub status: JobStatus,
    /// The stored script's id, if any.
    pub script_id: Option<String>,
    /// The stored script's name, if any.
    pub script_name: Option<String>,
    /// The file on the service's disk, for `filePath` jobs.
    pub file_path: Option<String>,
    /// The script source (not serialized: it can be large; ask for the script instead).
    #[serde(skip)]
    pub source: String,
    /// Parameters given.
    pub params: JobParams,
    /// Who queued it.
    pub origin: String,
    /// The API key that queued it, if any.
    pub api_key_id: Option<String>,
    /// Whether a dead node's run may be retried.
    pub retry_safe: bool,
    /// The node it must run on, if node-local.
    pub pinned_node: Option<String>,
    /// The node running (or that ran) it.
    pub node_id: Option<String>,
    /// Until when the running node's claim holds.
    pub lease_until: Option<String>,
    /// Whether a halt was asked for.
    pub halt_requested: bool,
    /// How many times a node started it.
    pub attempts: i64,
    /// The script's exit code, once ended.
    pub exit_code: Option<i64>,
    /// Why it failed or was interrupted.
    pub error: Option<String>,
    /// When it was queued.
    pub created_at: String,
    /// When a node last started it.
    pub started_at: Option<String>,
    /// When it ended.
    pub finished_at: Option<String>,
    /// The first attempt, when this job is a retry of it.
    pub retry_of: Option<String>,
    /// Which attempt of its script's retry policy this is, from 1.
    pub retry_attempt: i64,
    /// A queued job is not claimed before this time (a retry's delay).
    pub not_before: Option<String>,
    /// The job whose end started this one through a chain.
    pub chained_from: Option<String>,
    /// What the script set with `SetResult`, if anything.
    pub result: Option<String>,
    /// The version of its stored script it ran (None for file runs and ad-hoc sources).
    pub script_version: Option<i64>,
    /// Who started it, in words (`admin alice`, `API key ci`, `schedule nightly`).
    pub started_by: Option<String>,
}

/// Which jobs to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// Only jobs in this status.
    pub status: Option<JobStatus>,
    /// Only jobs of this script (name, case-insensitive).
    pub script: Option<String>,
    /// Only jobs queued at or after this RFC 3339 time.
    pub since: Option<String>,
    /// Only jobs queued before this RFC 3339 time.
    pub until: Option<String>,
    /// Only jobs queued by this API key.
    pub api_key_id: Option<String>,
    /// Only jobs with a queue position below this (paging: the last `seq` seen).
    pub before_seq: Option<i64>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<i64>,
}

/// How many jobs one transaction of the retention purge deletes.
const PURGE_BATCH: i64 = 1000;
/// The purge's pause between batches, so that waiting writers get the lock.
const PURGE_PAUSE: Duration = Duration::from_millis(10);

/// How much earlier than a job queued before it a job may be stamped (its `created_at`):
/// the time filters of [`Store::list_jobs`] rely on it (see `Store::seq_bound`).
const QUEUE_CLOCK_SLACK: chrono::TimeDelta = chrono::TimeDelta::minutes(2);

/// A time filter (RFC 3339, any offset) as the text `created_at` holds: UTC, milliseconds,
/// rounded up, so that comparing the texts compares the times. None if it is not RFC 3339.
fn stored_time(time: &str) -> Option<String> {
    let at = chrono::DateTime::parse_from_rfc3339(time).ok()?;
    let at = at.with_timezone(&chrono::Utc);
    let whole_ms = at.timestamp_subsec_nanos() % 1_000_000 == 0;
    let at = if whole_ms {
        at
    } else {
        at + chrono::TimeDelta::milliseconds(1)
    };
    Some(at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// The error of a job the lease reaper interrupted (its node may still report its end).
const REAPED_ERROR: &str = "the node running it stopped renewing its lease";

pub(crate) const JOB_COLUMNS: &str = "seq, id, status, script_id, script_name, file_path, source, params, \
    origin, api_key_id, retry_safe, pinned_node, node_id, lease_until, halt_requested, attempts, \
    exit_code, error, created_at, started_at, finished_at, retry_of, retry_attempt, not_before, \
    chained_from, result, script_version, started_by";

pub(crate) fn job_from_row(row: &AnyRow) -> StoreResult<Job> {
    let params: String = row.try_get("params")?;
    Ok(Job {
        seq: row.try_get("seq")?,
        id: row.try_get("id")?,
        status: JobStatus::parse(&row.try_get::<String, _>("status")?)?,
        script_id: row.try_get("script_id")?,
        script_name: row.try_get("script_name")?,
        file_path: row.try_get("file_path")?,
        source: row.try_get("source")?,
        params: JobParams::parse(&params)
            .map_err(|e| StoreError::Invalid(format!("stored job params: {e}")))?,
        origin: row.try_get("origin")?,
        api_key_id: row.try_get("api_key_id")?,
        retry_safe: row.try_get::<i64, _>("retry_safe")? != 0,
        pinned_node: row.try_get("pinned_node")?,
        node_id: row.try_get("node_id")?,
        lease_until: row.try_get("lease_until")?,
        halt_requested: row.try_get::<i64, _>("halt_requested")? != 0,
        attempts: row.try_get("attempts")?,
        exit_code: row.try_get("exit_code")?,
        error: row.try_get("error")?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        retry_of: row.try_get("retry_of")?,
        retry_attempt: row.try_get("retry_attempt")?,
        not_before: row.try_get("not_before")?,
        chained_from: row.try_get("chained_from")?,
        result: row.try_get("result")?,
        script_version: row.try_get("script_version")?,
        started_by: row.try_get("started_by")?,
    })
}

/// RFC 3339 text for `now + delta` (millisecond precision, like [`now_text`]).
pub fn time_after(delta: Duration) -> String {
    let at =
        chrono::Utc::now() + chrono::Duration::from_std(delta).unwrap_or(chrono::Duration::MAX);
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// RFC 3339 text for `now - delta`.
pub fn time_before(delta: Duration) -> String {
    let at =
        chrono::Utc::now() - chrono::Duration::from_std(delta).unwrap_or(chrono::Duration::MAX);
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The `script_version` of a job being inserted, as an SQL expression: the newest version
/// of its script whose body is the job's source; NULL for an ad-hoc job or a source no
/// version holds. `script_id` and `source` are the statement's placeholders for those two
/// values. Every INSERT into `jobs` sets it this way, in the same statement, so queuing a job
/// stays one write.
pub(crate) fn script_version_of(script_id: &str, source: &str) -> String {
    format!(
        "(SELECT MAX(version) FROM script_versions WHERE script_id = {script_id} AND body = {source})"
    )
}

/// The INSERT of a queued job from a [`NewJob`] (no `RETURNING`); bind it with
/// [`bind_queued_job`]. Shared by [`Store::enqueue_job`] and the follow-ups a settled job
/// queues (retries, chains).
pub(crate) fn insert_queued_job_sql() -> String {
    format!(
        "INSERT INTO jobs (id, status, script_id, script_name, file_path, source, params, \
         origin, api_key_id, retry_safe, pinned_node, created_at, retry_of, retry_attempt, \
         not_before, chained_from, started_by, script_version) \
         VALUES ($1, 'queued', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
         {})",
        script_version_of("$2", "$5")
    )
}

/// Bind job `id`, queued at `now`, to a statement built on [`insert_queued_job_sql`].
pub(crate) fn bind_queued_job<'q>(
    query: Query<'q, Any, AnyArguments<'q>>,
    id: &'q str,
    job: &'q NewJob,
    now: &'q str,
) -> Query<'q, Any, AnyArguments<'q>> {
    query
        .bind(id)
        .bind(job.script_id.as_deref())
        .bind(job.script_name.as_deref())
        .bind(job.file_path.as_deref())
        .bind(job.source.as_str())
        .bind(job.params.to_json().to_string())
        .bind(job.origin.as_str())
        .bind(job.api_key_id.as_deref())
        .bind(i64::from(job.retry_safe))
        .bind(job.pinned_node.as_deref())
        .bind(now)
        .bind(job.retry_of.as_deref())
        .bind(job.retry_attempt.max(1))
        .bind(job.not_before.as_deref())
        .bind(job.chained_from.as_deref())
        .bind(job.started_by.as_deref())
}

/// Insert `job` as queued on `conn`; returns it with its new id.
pub(crate) async fn insert_queued(
    conn: &mut sqlx::AnyConnection,
    job: &NewJob,
) -> StoreResult<Job> {
    let id = uuid::Uuid::now_v7().to_string();
    let now = now_text();
    let sql = format!("{} RETURNING {JOB_COLUMNS}", insert_queued_job_sql());
    let row = bind_queued_job(sqlx::query(&sql), &id, job, &now)
        .fetch_one(conn)
        .await?;
    job_from_row(&row)
}

/// `items` with its last one repeated up to a power of two, for an `IN` or `VALUES` list: a
/// statement written for every length would leave one prepared statement per length seen in
/// each pooled connection's cache (sqlx keeps 100 a connection), memory that grows with the
/// batch sizes a service meets; this keeps it to a handful (tests/job_statements.rs). A row
/// matched twice by the repeated entry is changed once, the same way.
pub(crate) fn padded<T: Clone>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut list: Vec<T> = items.into_iter().collect();
    if let Some(last) = list.last().cloned() {
        list.resize(list.len().next_power_of_two(), last);
    }
    list
}

/// The ids of an `IN (...)` list, [`padded`], as the placeholders `$first, $first+1, ...`.
pub(crate) struct InList<'a> {
    ids: Vec<&'a str>,
    /// What goes between the parentheses.
    pub(crate) placeholders: String,
}

impl<'a> InList<'a> {
    pub(crate) fn new(ids: impl IntoIterator<Item = &'a str>, first: usize) -> Self {
        let ids = padded(ids);
        let placeholders = (first..first + ids.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        InList { ids, placeholders }
    }

    /// Whether there is no id (an `IN ()` is not SQL).
    pub(crate) fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Bind the ids, after the statement's parameters before `$first`.
    pub(crate) fn bind<'q>(
        &self,
        mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>
    where
        'a: 'q,
    {
        for id in &self.ids {
            query = query.bind(*id);
        }
        query
    }
}

/// How a job ended, as its node reports it ([`Store::store_logs_and_ends`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobEnd {
    /// The job.
    pub job_id: String,
    /// A final status.
    pub status: JobStatus,
    /// The script's exit code, when it got that far.
    pub exit_code: Option<i64>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// Records a job's end ([`Store::finish_job`]): only while it runs on the reporting node, or
/// when the lease reaper marked it interrupted while that node could not reach the store.
const FINISH_JOB_SQL: &str = "UPDATE jobs SET status = $1, exit_code = $2, error = $3, \
     finished_at = $4, lease_until = NULL WHERE id = $5 AND node_id = $6 AND (status = 'running' \
     OR (status = 'interrupted' AND settled = 0 AND error = $7))";

/// Record `ends` (as [`FINISH_JOB_SQL`] records one) in one statement; the ids of the jobs
/// whose end was recorded. The list of ends is [`padded`].
async fn finish_jobs_in(
    conn: &mut sqlx::AnyConnection,
    node_id: &str,
    ends: &[JobEnd],
) -> StoreResult<std::collections::HashSet<String>> {
    if let [end] = ends {
        // One end (`aft run`'s, a quiet runner's): the plain statement, cheaper to prepare
        // for a process that runs it once.
        let finished = finish_one(
            conn,
            &end.job_id,
            node_id,
            end.status,
            end.exit_code,
            end.error.as_deref(),
        )
        .await?;
        return Ok(if finished {
            [end.job_id.clone()].into()
        } else {
            Default::default()
        });
    }
    let list = padded(ends);
    let rows = (0..list.len())
        .map(|i| {
            let p = 4 * i;
            format!(
                "(${}, ${}, CAST(${} AS BIGINT), ${})",
                p + 1,
                p + 2,
                p + 3,
                p + 4
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let n = 4 * list.len();
    let sql = format!(
        "WITH ends (id, status, exit_code, error) AS (VALUES {rows}) \
         UPDATE jobs SET status = ends.status, exit_code = ends.exit_code, error = ends.error, \
         finished_at = ${}, lease_until = NULL FROM ends \
         WHERE jobs.id = ends.id AND jobs.node_id = ${} AND (jobs.status = 'running' \
         OR (jobs.status = 'interrupted' AND jobs.settled = 0 AND jobs.error = ${})) \
         RETURNING jobs.id",
        n + 1,
        n + 2,
        n + 3
    );
    let mut query = sqlx::query_scalar::<_, String>(&sql);
    for end in &list {
        query = query
            .bind(&end.job_id)
            .bind(end.status.as_str())
            .bind(end.exit_code)
            .bind(end.error.as_deref());
    }
    let finished = query
        .bind(now_text())
        .bind(node_id)
        .bind(REAPED_ERROR)
        .fetch_all(conn)
        .await?;
    Ok(finished.into_iter().collect())
}

/// Record one job's end with [`FINISH_JOB_SQL`]; whether it was recorded.
async fn finish_one<'c>(
    executor: impl sqlx::Executor<'c, Database = Any>,
    id: &str,
    node_id: &str,
    status: JobStatus,
    exit_code: Option<i64>,
    error: Option<&str>,
) -> StoreResult<bool> {
    let done = sqlx::query(FINISH_JOB_SQL)
        .bind(status.as_str())
        .bind(exit_code)
        .bind(error)
        .bind(now_text())
        .bind(id)
        .bind(node_id)
        .bind(REAPED_ERROR)
        .execute(executor)
        .await?;
    Ok(done.rows_affected() == 1)
}

impl Store {
    /// Queue a job; returns it with its new id.
    pub async fn enqueue_job(&self, job: &NewJob) -> StoreResult<Job> {
        let mut conn = self.pool().acquire().await?;
        insert_queued(&mut conn, job).await
    }

    /// Record a job that this process runs itself (`aft cp`): it starts as running on
    /// `node_id` with a lease of `lease`, so no service claims it, and a reaper interrupts
    /// it if the process dies without finishing it.
    pub async fn start_job_here(
        &self,
        job: &NewJob,
        node_id: &str,
        lease: Duration,
    ) -> StoreResult<Job> {
        let id = uuid::Uuid::now_v7().to_string();
        let now = now_text();
        let sql = format!(
            "INSERT INTO jobs (id, status, script_id, script_name, file_path, source, params, \
             origin, api_key_id, retry_safe, pinned_node, node_id, lease_until, attempts, \
             created_at, started_at, started_by, script_version) \
             VALUES ($1, 'running', $2, $3, $4, $5, $6, $7, $8, 0, $9, $10, $11, 1, $12, $13, $14, \
             {}) \
             RETURNING {JOB_COLUMNS}",
            script_version_of("$2", "$5")
        );
        let row = sqlx::query(&sql)
            .bind(&id)
            .bind(job.script_id.clone())
            .bind(job.script_name.clone())
            .bind(job.file_path.clone())
            .bind(&job.source)
            .bind(job.params.to_json().to_string())
            .bind(&job.origin)
            .bind(job.api_key_id.clone())
            .bind(node_id)
            .bind(node_id)
            .bind(time_after(lease))
            .bind(&now)
            .bind(&now)
            .bind(job.started_by.clone())
            .fetch_one(self.pool())
            .await?;
        job_from_row(&row)
    }

    /// Claim the oldest queued job this node may run, in one statement, with a lease of
    /// `lease`; `None` when nothing is queued.
    pub async fn claim_job(&self, node_id: &str, lease: Duration) -> StoreResult<Option<Job>> {
        Ok(self.claim_jobs(node_id, lease, 1).await?.into_iter().next())
    }

    /// Claim up to `limit` of the oldest queued jobs this node may run, in one statement,
    /// each with a lease of `lease`; oldest first, empty when nothing is queued. One write
    /// for a burst of jobs instead of one each; on PostgreSQL the rows are taken with
    /// `FOR UPDATE SKIP LOCKED`, so nodes claiming at once never take the same job.
    pub async fn claim_jobs(
        &self,
        node_id: &str,
        lease: Duration,
        limit: usize,
    ) -> StoreResult<Vec<Job>> {
        Ok(self
            .claim_jobs_marked(node_id, lease, limit)
            .await?
            .into_iter()
            .map(|(job, _)| job)
            .collect())
    }

    /// [`Store::claim_jobs`], each job with whether it is a dry run, read in the claim's
    /// own statement (a runner needs both, and a second query per batch of claims was a
    /// round trip more between a job's queuing and its start). A dry run's mark is stored
    /// in the transaction that queues the job ([`Store::enqueue_job_recorded`]), so a claim
    /// never sees the job without it.
    pub async fn claim_jobs_marked(
        &self,
        node_id: &str,
        lease: Duration,
        limit: usize,
    ) -> StoreResult<Vec<(Job, bool)>> {
        // PostgreSQL may run an `IN (subquery)` more than once in a plan, and with SKIP
        // LOCKED each run can pick other rows (claiming more than `limit`): an ARRAY(...)
        // of it is computed once, before the update.
        let (open, close) = match self.dialect() {
            Dialect::Postgres => ("= ANY(ARRAY(", " FOR UPDATE SKIP LOCKED))"),
            Dialect::Sqlite => ("IN (", ")"),
        };
        let sql = format!(
            "UPDATE jobs SET status = 'running', node_id = $1, lease_until = $2, started_at = $3, \
             attempts = attempts + 1 \
             WHERE seq {open}SELECT seq FROM jobs WHERE status = 'queued' \
                 AND (pinned_node IS NULL OR pinned_node = $4) \
                 AND (not_before IS NULL OR not_before <= $5) ORDER BY seq LIMIT $6{close} \
             AND status = 'queued' RETURNING {JOB_COLUMNS}, \
             (SELECT COUNT(*) FROM job_dry_runs WHERE job_dry_runs.job_id = jobs.id) AS dry_run"
        );
        let now = now_text();
        let rows = sqlx::query(&sql)
            .bind(node_id)
            .bind(time_after(lease))
            .bind(&now)
            .bind(node_id)
            .bind(&now)
            .bind(i64::try_from(limit.max(1)).unwrap_or(i64::MAX))
            .fetch_all(self.pool())
            .await?;
        let mut jobs = rows
            .iter()
            .map(|row| Ok((job_from_row(row)?, row.try_get::<i64, _>("dry_run")? > 0)))
            .collect::<StoreResult<Vec<_>>>()?;
        // RETURNING gives no order: run them oldest first, as queued.
        jobs.sort_by_key(|(job, _)| job.seq);
        Ok(jobs)
    }

    /// Extend the lease of every job this node runs; returns how many were renewed.
    pub async fn renew_leases(&self, node_id: &str, lease: Duration) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE jobs SET lease_until = $1 WHERE node_id = $2 AND status = 'running'",
        )
        .bind(time_after(lease))
        .bind(node_id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Extend the leases of `ids`, the jobs this node runs now (not every job the store says
    /// it runs: one whose end could not be recorded and was given up must run out, so the
    /// reaper ends it). Returns how many were renewed.
    pub async fn renew_job_leases(
        &self,
        node_id: &str,
        ids: &[String],
        lease: Duration,
    ) -> StoreResult<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let ids = InList::new(ids.iter().map(String::as_str), 3);
        let sql = format!(
            "UPDATE jobs SET lease_until = $1 WHERE node_id = $2 AND status = 'running' \
             AND id IN ({})",
            ids.placeholders
        );
        let query = sqlx::query(&sql).bind(time_after(lease)).bind(node_id);
        Ok(ids.bind(query).execute(self.pool()).await?.rows_affected())
    }

    /// Jobs the store says `node_id` runs that are not in `known` (the ones it runs now):
    /// claims whose answer was lost when the connection broke after the claim was stored.
    /// Their lease is renewed in the same statement, so no reaper takes them meanwhile.
    pub async fn adopt_lost_claims(
        &self,
        node_id: &str,
        known: &[String],
        lease: Duration,
    ) -> StoreResult<Vec<Job>> {
        let known = InList::new(known.iter().map(String::as_str), 3);
        let not_in = if known.is_empty() {
            String::new()
        } else {
            format!(" AND id NOT IN ({})", known.placeholders)
        };
        let sql = format!(
            "UPDATE jobs SET lease_until = $1 WHERE node_id = $2 AND status = 'running'{not_in} \
             RETURNING {JOB_COLUMNS}"
        );
        let query = sqlx::query(&sql).bind(time_after(lease)).bind(node_id);
        let rows = known.bind(query).fetch_all(self.pool()).await?;
        rows.iter().map(job_from_row).collect()
    }

    /// Record how a running job ended. Returns false when the job was no longer running on
    /// this node, in which case nothing changes. One exception: a job the lease reaper
    /// marked `interrupted` while its node could not reach the store (and whose follow-ups
    /// are not yet settled) takes the true outcome its node reports afterwards.
    pub async fn finish_job(
        &self,
        id: &str,
        node_id: &str,
        status: JobStatus,
        exit_code: Option<i64>,
        error: Option<&str>,
    ) -> StoreResult<bool> {
        if !status.is_final() {
            return Err(StoreError::Invalid(format!(
                "cannot finish a job as {status}"
            )));
        }
        finish_one(self.pool(), id, node_id, status, exit_code, error).await
    }

    /// Store the log lines of several jobs and record how some of them ended, all in one
    /// transaction: the lines land before (or with) their job's end, and a burst of short
    /// jobs costs one write instead of two per job. Each end is recorded as
    /// [`Store::finish_job`] records it; the answer says, end by end, whether it was.
    pub async fn store_logs_and_ends(
        &self,
        node_id: &str,
        lines: &[(String, Vec<crate::LogLine>)],
        ends: &[JobEnd],
    ) -> StoreResult<Vec<bool>> {
        if let Some(end) = ends.iter().find(|end| !end.status.is_final()) {
            return Err(StoreError::Invalid(format!(
                "cannot finish a job as {}",
                end.status
            )));
        }
        let rows: Vec<(&str, &crate::LogLine)> = lines
            .iter()
            .flat_map(|(id, lines)| lines.iter().map(move |l| (id.as_str(), l)))
            .collect();
        let mut tx = self.pool().begin().await?;
        crate::logs::insert_log_rows(&mut tx, &rows).await?;
        let finished = finish_jobs_in(&mut tx, node_id, ends).await?;
        tx.commit().await?;
        Ok(ends
            .iter()
            .map(|end| finished.contains(&end.job_id))
            .collect())
    }

    /// Queue again a retry-safe job this node halted because it is stopping (its next claim
    /// counts the attempt). False, changing nothing, when the job is not running here, is
    /// not retry-safe, is pinned to this node, or somebody asked to halt it.
    pub async fn requeue_job(&self, id: &str, node_id: &str) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE jobs SET status = 'queued', node_id = NULL, lease_until = NULL \
             WHERE id = $1 AND node_id = $2 AND status = 'running' AND retry_safe = 1 \
             AND halt_requested = 0 AND pinned_node IS NULL",
        )
        .bind(id)
        .bind(node_id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Ask a job to halt, from any node: a queued job is halted at once; a running job gets
    /// `halt_requested`, which its node polls; a running job whose lease ran out (its node
    /// is gone or cut off) is halted at once, as nobody would act on the request. Returns
    /// the job afterwards.
    pub async fn request_halt(&self, id: &str) -> StoreResult<Job> {
        let now = now_text();
        sqlx::query(
            "UPDATE jobs SET status = 'halted', finished_at = $1, halt_requested = 1, \
             lease_until = NULL, \
             error = 'halted on request; the node running it had stopped renewing its lease' \
             WHERE id = $2 AND status = 'running' AND lease_until < $3",
        )
        .bind(&now)
        .bind(id)
        .bind(&now)
        .execute(self.pool())
        .await?;
        sqlx::query(
            "UPDATE jobs SET status = 'halted', finished_at = $1, error = 'halted before it started' \
             WHERE id = $2 AND status = 'queued'",
        )
        .bind(now_text())
        .bind(id)
        .execute(self.pool())
        .await?;
        sqlx::query("UPDATE jobs SET halt_requested = 1 WHERE id = $1 AND status = 'running'")
            .bind(id)
            .execute(self.pool())
            .await?;
        self.get_job(id).await
    }

    /// Ids of this node's running jobs whose halt was asked for.
    pub async fn halt_requests(&self, node_id: &str) -> StoreResult<Vec<String>> {
        let rows = sqlx::query(
            "SELECT id FROM jobs WHERE node_id = $1 AND status = 'running' AND halt_requested = 1",
        )
        .bind(node_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }

    /// One job by id.
    pub async fn get_job(&self, id: &str) -> StoreResult<Job> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: "job",
                name: id.to_string(),
            })?;
        job_from_row(&row)
    }

    /// Jobs matching `filter`, newest first.
    pub async fn list_jobs(&self, filter: &JobFilter) -> StoreResult<Vec<Job>> {
        let mut sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE 1 = 1");
        let mut binds: Vec<String> = Vec::new();
        let mut add = |clause: &str, value: String| {
            binds.push(value);
            sql.push_str(&clause.replace('?', &format!("${}", binds.len())));
        };
        if let Some(status) = filter.status {
            add(" AND status = ?", status.as_str().to_string());
        }
        if let Some(script) = &filter.script {
            add(" AND LOWER(script_name) = ?", script.to_lowercase());
        }
        // A time filter becomes a range of `seq` too (see `seq_bound`), and the time
        // itself is then compared as an expression (`|| ''`) so that no index on
        // `created_at` is used: the planner would read every job in the time range through
        // it and sort them, where walking `seq` down (or a `(status|script|key, seq)`
        // index) stops after one page.
        let mut seq_bounds: Vec<(&str, i64)> = Vec::new();
        for (time, op) in [(&filter.since, ">="), (&filter.until, "<")] {
            let Some(time) = time else { continue };
            match stored_time(time) {
                Some(time) => {
                    seq_bounds.extend(self.seq_bound(&time, op).await?);
                    add(&format!(" AND (created_at || '') {op} ?"), time);
                }
                None => add(&format!(" AND created_at {op} ?"), time.clone()),
            }
        }
        if let Some(key) = &filter.api_key_id {
            add(" AND api_key_id = ?", key.clone());
        }
        let limit = filter.limit.unwrap_or(100).clamp(1, 1000);
        let mut query_sql = sql;
        let mut n = binds.len();
        seq_bounds.extend(filter.before_seq.map(|b| ("<", b)));
        for (op, _) in &seq_bounds {
            n += 1;
            query_sql.push_str(&format!(" AND seq {op} ${n}"));
        }
        query_sql.push_str(&format!(" ORDER BY seq DESC LIMIT ${}", n + 1));
        let mut query = sqlx::query(&query_sql);
        for value in binds {
            query = query.bind(value);
        }
        for (_, seq) in seq_bounds {
            query = query.bind(seq);
        }
        let rows = query.bind(limit).fetch_all(self.pool()).await?;
        rows.iter().map(job_from_row).collect()
    }

    /// The `seq` bound that a time filter (`created_at OP time`, OP `>=` or `<`) implies:
    /// `(">", s)` or `("<", s)`, none when no job was queued that far outside the range.
    ///
    /// Jobs are numbered (`seq`) in the order they are queued and stamped (`created_at`)
    /// just before, so a job stamped [`QUEUE_CLOCK_SLACK`] before another was queued
    /// before it. The bound is the job found through the `created_at` index at that
    /// distance outside the range; the slack covers stamps taken before waiting for the
    /// database and the clocks of several nodes.
    async fn seq_bound(&self, time: &str, op: &str) -> StoreResult<Option<(&'static str, i64)>> {
        let Ok(at) = chrono::DateTime::parse_from_rfc3339(time) else {
            return Ok(None);
        };
        let (sql, at, bound) = if op == ">=" {
            (
                "SELECT seq FROM jobs WHERE created_at < $1 ORDER BY created_at DESC LIMIT 1",
                at - QUEUE_CLOCK_SLACK,
                ">",
            )
        } else {
            (
                "SELECT seq FROM jobs WHERE created_at >= $1 ORDER BY created_at LIMIT 1",
                at + QUEUE_CLOCK_SLACK,
                "<",
            )
        };
        let at = at
            .with_timezone(&chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let seq: Option<i64> = sqlx::query_scalar(sql)
            .bind(at)
            .fetch_optional(self.pool())
            .await?;
        Ok(seq.map(|s| (bound, s)))
    }

    /// How many jobs are in each status (every status present, zero if none).
    pub async fn count_jobs_by_status(&self) -> StoreResult<Vec<(JobStatus, i64)>> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status")
            .fetch_all(self.pool())
            .await?;
        let mut counts: Vec<(JobStatus, i64)> = JobStatus::ALL.iter().map(|s| (*s, 0)).collect();
        for row in rows {
            let status = JobStatus::parse(&row.try_get::<String, _>("status")?)?;
            let n: i64 = row.try_get("n")?;
            if let Some(entry) = counts.iter_mut().find(|(s, _)| *s == status) {
                entry.1 = n;
            }
        }
        Ok(counts)
    }

    /// Mark every job this node left `running` as `interrupted` (a node that restarts after
    /// a crash cannot still be running them). Returns their ids.
    pub async fn interrupt_node_jobs(
        &self,
        node_id: &str,
        reason: &str,
    ) -> StoreResult<Vec<String>> {
        let rows = sqlx::query(
            "UPDATE jobs SET status = 'interrupted', finished_at = $1, error = $2, lease_until = NULL \
             WHERE node_id = $3 AND status = 'running' RETURNING id",
        )
        .bind(now_text())
        .bind(reason)
        .bind(node_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }

    /// Deal with the jobs `node_id` left `running` (it starts again after a crash, or stops
    /// with jobs that did not end): those of retry-safe scripts are queued again (their
    /// next claim counts the attempt), unless somebody asked to halt them or they belong to
    /// an `aft run` on this node (pinned); the others are interrupted with `reason`.
    /// Returns (re-queued, interrupted) ids.
    pub async fn recover_node_jobs(
        &self,
        node_id: &str,
        reason: &str,
    ) -> StoreResult<(Vec<String>, Vec<String>)> {
        let requeued = sqlx::query(
            "UPDATE jobs SET status = 'queued', node_id = NULL, lease_until = NULL \
             WHERE node_id = $1 AND status = 'running' AND retry_safe = 1 \
             AND halt_requested = 0 AND pinned_node IS NULL RETURNING id",
        )
        .bind(node_id)
        .fetch_all(self.pool())
        .await?;
        let requeued = requeued
            .iter()
            .map(|r| Ok(r.try_get("id")?))
            .collect::<StoreResult<Vec<String>>>()?;
        let interrupted = self.interrupt_node_jobs(node_id, reason).await?;
        Ok((requeued, interrupted))
    }

    /// Deal with running jobs whose lease ran out (their node stopped renewing): re-queue
    /// those marked safe to retry, interrupt the rest. Returns (re-queued, interrupted) ids.
    pub async fn reap_expired_leases(&self) -> StoreResult<(Vec<String>, Vec<String>)> {
        let now = now_text();
        let requeued = sqlx::query(
            "UPDATE jobs SET status = 'queued', node_id = NULL, lease_until = NULL \
             WHERE status = 'running' AND lease_until < $1 AND retry_safe = 1 \
             AND halt_requested = 0 AND pinned_node IS NULL RETURNING id",
        )
        .bind(&now)
        .fetch_all(self.pool())
        .await?;
        let interrupted = sqlx::query(
            "UPDATE jobs SET status = 'interrupted', finished_at = $1, \
             error = $2, lease_until = NULL \
             WHERE status = 'running' AND lease_until < $3 RETURNING id",
        )
        .bind(&now)
        .bind(REAPED_ERROR)
        .bind(&now)
        .fetch_all(self.pool())
        .await?;
        let ids = |rows: Vec<AnyRow>| -> StoreResult<Vec<String>> {
            rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
        };
        Ok((ids(requeued)?, ids(interrupted)?))
    }

    /// Drop queued jobs pinned to a node that is gone for good (they can never run).
    pub async fn interrupt_pinned_jobs(&self, node_id: &str) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE jobs SET status = 'interrupted', finished_at = $1, \
             error = 'its node stopped before it could run' \
             WHERE status = 'queued' AND pinned_node = $2",
        )
        .bind(now_text())
        .bind(node_id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Delete ended jobs (with their logs and transfer records) that finished before
    /// `cutoff` (RFC 3339), and the schedule slots decided before it (their history goes
    /// with the jobs'). Returns how many jobs were deleted.
    ///
    /// In batches of [`PURGE_BATCH`] jobs, each its own short transaction with a pause
    /// after it, so a purge of millions of records never holds the write lock for long:
    /// the API and the runner's writes go on meanwhile.
    pub async fn purge_jobs_before(&self, cutoff: &str) -> StoreResult<u64> {
        let purged = self
            .purge_ended_jobs(
                "SELECT id FROM jobs WHERE finished_at IS NOT NULL AND finished_at < $1 \
                 ORDER BY finished_at LIMIT $2",
                cutoff,
            )
            .await?;
        self.purge_decided_slots("<", cutoff).await?;
        Ok(purged)
    }

    /// Delete the ended jobs (with their logs and transfer records) beyond the `keep` that
    /// finished last, in batches as [`Store::purge_jobs_before`]. Jobs that ended in the same
    /// millisecond as the newest one beyond `keep` go with it, so at most `keep` are left.
    /// Schedule slots decided by then go too: the slot history covers what the job history
    /// does.
    pub async fn purge_jobs_beyond(&self, keep: u64) -> StoreResult<u64> {
        let newest_to_purge: Option<String> = sqlx::query_scalar(
            "SELECT finished_at FROM jobs WHERE finished_at IS NOT NULL \
             ORDER BY finished_at DESC LIMIT 1 OFFSET $1",
        )
        .bind(i64::try_from(keep).unwrap_or(i64::MAX))
        .fetch_optional(self.pool())
        .await?;
        let Some(newest_to_purge) = newest_to_purge else {
            return Ok(0);
        };
        let purged = self
            .purge_ended_jobs(
                "SELECT id FROM jobs WHERE finished_at IS NOT NULL AND finished_at <= $1 \
                 ORDER BY finished_at LIMIT $2",
                &newest_to_purge,
            )
            .await?;
        self.purge_decided_slots("<=", &newest_to_purge).await?;
        Ok(purged)
    }

    /// Delete, batch by batch as the jobs, the decided schedule slots whose `decided_at`
    /// compares to `bound` by `op` (`<` or `<=`), but not those `waiting` to fire nor those
    /// whose job is still in the store (a slot's history goes with its job's).
    async fn purge_decided_slots(&self, op: &str, bound: &str) -> StoreResult<u64> {
        let sql = format!(
            "DELETE FROM schedule_slots WHERE (schedule_id, slot_time) IN \
             (SELECT s.schedule_id, s.slot_time FROM schedule_slots s \
              WHERE s.decided_at {op} $1 AND s.status <> 'waiting' \
              AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = s.job_id) \
              ORDER BY s.decided_at LIMIT $2)"
        );
        let mut purged = 0;
        loop {
            let done = sqlx::query(&sql)
                .bind(bound)
                .bind(PURGE_BATCH)
                .execute(self.pool())
                .await?
                .rows_affected();
            purged += done;
            if (done as i64) < PURGE_BATCH {
                return Ok(purged);
            }
            tokio::time::sleep(PURGE_PAUSE).await;
        }
    }

    /// Delete, batch by batch, the jobs `select` names (`$1` the bound, `$2` the batch size).
    async fn purge_ended_jobs(&self, select: &str, bound: &str) -> StoreResult<u64> {
        let mut purged = 0;
        loop {
            let ids: Vec<String> = sqlx::query_scalar(select)
                .bind(bound)
                .bind(PURGE_BATCH)
                .fetch_all(self.pool())
                .await?;
            if ids.is_empty() {
                return Ok(purged);
            }
            let list = (1..=ids.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let mut tx = self.pool().begin().await?;
            for sql in [
                format!("DELETE FROM job_logs WHERE job_id IN ({list})"),
                format!("DELETE FROM job_transfers WHERE job_id IN ({list})"),
                format!("DELETE FROM jobs WHERE id IN ({list})"),
            ] {
                // Not kept prepared: a purge runs once an hour, and its last batch's
                // `IN` list has any length.
                let mut query = sqlx::query(&sql).persistent(false);
                for id in &ids {
                    query = query.bind(id);
                }
                let done = query.execute(&mut *tx).await?;
                if sql.starts_with("DELETE FROM jobs ") {
                    purged += done.rows_affected();
                }
            }
            tx.commit().await?;
            if (ids.len() as i64) < PURGE_BATCH {
                return Ok(purged);
            }
            tokio::time::sleep(PURGE_PAUSE).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use super::{JobFilter, JobStatus, NewJob};
    use crate::{LogLine, NewTransfer, now_text};

    /// A `job.started` record of `job`, as an API key's request writes it.
    fn started_record(job: &crate::Job) -> Option<crate::AuditEntry> {
        Some(crate::AuditEntry {
            actor: "ci".into(),
            actor_kind: "apikey".into(),
            address: "127.0.0.1".into(),
            action: "job.started".into(),
            kind: "job".into(),
            target: job.id.clone(),
            ..Default::default()
        })
    }

    fn job(name: &str, retry_safe: bool) -> NewJob {
        NewJob {
            script_name: Some(name.into()),
            source: format!("Log({name:?});"),
            params: crate::JobParams::from_json(serde_json::json!({"n": name})).unwrap(),
            origin: "api".into(),
            retry_safe,
            ..Default::default()
        }
    }

    crate::both_dialects!(
        a_job_and_its_audit_record_are_committed_together_or_not_at_all,
        |store| async move {
            let entry = started_record;
            let queued = store
                .enqueue_job_recorded(&job("a", false), true, entry)
                .await
                .unwrap();
            let records = store.list_audit(&Default::default()).await.unwrap();
            let targets: Vec<&str> = records.iter().map(|r| r.target.as_str()).collect();
            assert_eq!(targets, [queued.id.as_str()]);
            assert!(store.is_dry_run(&queued.id).await.unwrap());
            // A trail that cannot take the record: the job is not queued either.
            sqlx::query("DELETE FROM audit_chain")
                .execute(store.pool())
                .await
                .unwrap();
            let refused = store
                .enqueue_job_recorded(&job("b", false), false, entry)
                .await;
            assert!(refused.is_err(), "{refused:?}");
            let jobs = store.list_jobs(&JobFilter::default()).await.unwrap();
            assert_eq!(jobs.len(), 1, "{jobs:?}");
        }
    );

    crate::both_dialects!(
        jobs_queued_at_once_share_a_commit_and_a_refusal_fails_only_its_caller,
        |store| async move {
            // The store refuses one job (as a full disk or a constraint would one write).
            let refuse = match store.dialect {
                crate::Dialect::Sqlite => vec![
                    "CREATE TRIGGER refuse_one BEFORE INSERT ON jobs \
                     WHEN NEW.file_path = 'refused' BEGIN SELECT RAISE(ABORT, 'refused'); END",
                ],
                crate::Dialect::Postgres => vec![
                    "CREATE FUNCTION refuse_one() RETURNS trigger AS $$ BEGIN \
                     IF NEW.file_path = 'refused' THEN RAISE EXCEPTION 'refused'; END IF; \
                     RETURN NEW; END $$ LANGUAGE plpgsql",
                    "CREATE TRIGGER refuse_one BEFORE INSERT ON jobs \
                     FOR EACH ROW EXECUTE FUNCTION refuse_one()",
                ],
            };
            for sql in refuse {
                sqlx::query(sql).execute(store.pool()).await.unwrap();
            }
            let record = started_record;
            // Callers at once: while the first one's transaction is written, the others
            // wait and are written together. The first round holds the refused job (its
            // batch is retried one by one), the second does not (its batch commits whole).
            let mut queued = Vec::new();
            for round in [0..40, 40..60] {
                let calls: Vec<_> = round
                    .map(|i| {
                        let store = store.clone();
                        let mut new = job(&format!("j{i}"), false);
                        if i == 17 {
                            new.file_path = Some("refused".into());
                        }
                        let call = async move {
                            store.enqueue_job_recorded(&new, i % 5 == 0, record).await
                        };
                        (i, tokio::spawn(call))
                    })
                    .collect();
                for (i, call) in calls {
                    match call.await.unwrap() {
                        Ok(job) => {
                            assert_ne!(i, 17, "the refused job was queued");
                            assert_eq!(job.script_name.as_deref(), Some(&*format!("j{i}")));
                            assert_eq!(store.is_dry_run(&job.id).await.unwrap(), i % 5 == 0);
                            queued.push(job.id);
                        }
                        Err(e) => assert_eq!(i, 17, "job {i} failed with the refused one: {e}"),
                    }
                }
            }
            assert_eq!(queued.len(), 59);
            let mut stored: Vec<String> = store
                .list_jobs(&JobFilter::default())
                .await
                .unwrap()
                .into_iter()
                .map(|j| j.id)
                .collect();
            let mut recorded: Vec<String> = store
                .list_audit(&Default::default())
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.target)
                .collect();
            queued.sort();
            stored.sort();
            recorded.sort();
            assert_eq!(
                stored, queued,
                "every job answered as queued is stored, once"
            );
            assert_eq!(recorded, queued, "every stored job has its one record");
            let chain = store.verify_audit().await.unwrap();
            assert!(chain.problems.is_empty(), "{:?}", chain.problems);
            assert_eq!(chain.records, 59);
        }
    );

    crate::both_dialects!(
        a_writer_that_stops_early_answers_its_callers_and_the_next_one_writes,
        |store| async move {
            // The record of this job panics inside the writing task, as a bug would.
            let record = |job: &crate::Job| {
                assert!(job.script_name.as_deref() != Some("panics"), "a bug");
                started_record(job)
            };
            let limit = Duration::from_secs(20);
            let stopped = tokio::time::timeout(
                limit,
                store.enqueue_job_recorded(&job("panics", false), false, record),
            )
            .await
            .expect("the caller of a stopped writer waits without end");
            let error = stopped.expect_err("a job whose writer panicked was answered as queued");
            assert!(error.to_string().contains("writer stopped"), "{error}");
            // The queue takes jobs again: the next caller starts a writer of its own.
            let queued = tokio::time::timeout(
                limit,
                store.enqueue_job_recorded(&job("after", false), false, record),
            )
            .await
            .expect("the queue stayed marked as being written")
            .unwrap();
            let jobs = store.list_jobs(&JobFilter::default()).await.unwrap();
            let ids: Vec<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
            assert_eq!(ids, [queued.id.as_str()]);
        }
    );

    crate::both_dialects!(
        queue_is_fifo_and_finish_needs_the_claiming_node,
        |store| async move {
            let a = store.enqueue_job(&job("a", false)).await.unwrap();
            let b = store.enqueue_job(&job("b", false)).await.unwrap();
            assert!(a.seq < b.seq);
            assert_eq!(a.status, JobStatus::Queued);
            let first = store
                .claim_job("n1", Duration::from_secs(30))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(first.id, a.id, "oldest first");
            assert_eq!(first.status, JobStatus::Running);
            assert_eq!(first.attempts, 1);
            assert_eq!(first.node_id.as_deref(), Some("n1"));
            assert!(
                !store
                    .finish_job(&a.id, "n2", JobStatus::Succeeded, Some(0), None)
                    .await
                    .unwrap(),
                "another node cannot finish it"
            );
            assert!(
                store
                    .finish_job(&a.id, "n1", JobStatus::Succeeded, Some(0), None)
                    .await
                    .unwrap()
            );
            let done = store.get_job(&a.id).await.unwrap();
            assert_eq!(done.status, JobStatus::Succeeded);
            assert!(done.finished_at.is_some());
            assert_eq!(
                store
                    .claim_job("n1", Duration::from_secs(30))
                    .await
                    .unwrap()
                    .unwrap()
                    .id,
                b.id
            );
            assert!(
                store
                    .claim_job("n1", Duration::from_secs(30))
                    .await
                    .unwrap()
                    .is_none()
            );
            let counts = store.count_jobs_by_status().await.unwrap();
            assert!(
                counts.contains(&(JobStatus::Succeeded, 1))
                    && counts.contains(&(JobStatus::Running, 1))
            );
        }
    );

    crate::both_dialects!(
        concurrent_claims_never_hand_out_a_job_twice,
        |store| async move {
            for i in 0..40 {
                store
                    .enqueue_job(&job(&format!("j{i}"), false))
                    .await
                    .unwrap();
            }
            let mut tasks = Vec::new();
            for worker in 0..8 {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    let node = format!("n{}", worker % 2);
                    let mut got = Vec::new();
                    while let Some(j) = store
                        .claim_job(&node, Duration::from_secs(30))
                        .await
                        .unwrap()
                    {
                        got.push(j.id);
                    }
                    got
                }));
            }
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.unwrap());
            }
            let unique: HashSet<_> = all.iter().collect();
            assert_eq!(all.len(), 40);
            assert_eq!(unique.len(), 40);
        }
    );

    crate::both_dialects!(
        batch_claims_take_at_most_their_limit_oldest_first_and_never_twice,
        |store| async move {
            let mut queued = Vec::new();
            for i in 0..60 {
                queued.push(
                    store
                        .enqueue_job(&job(&format!("j{i}"), false))
                        .await
                        .unwrap()
                        .id,
                );
            }
            let first = store
                .claim_jobs("n0", Duration::from_secs(30), 3)
                .await
                .unwrap();
            let ids: Vec<&String> = first.iter().map(|j| &j.id).collect();
            assert_eq!(ids, queued.iter().take(3).collect::<Vec<_>>());
            assert!(first.iter().all(|j| j.status == JobStatus::Running));
            let mut tasks = Vec::new();
            for worker in 0..6 {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    let node = format!("n{}", worker % 3);
                    let mut got = Vec::new();
                    loop {
                        let batch = store
                            .claim_jobs(&node, Duration::from_secs(30), 4)
                            .await
                            .unwrap();
                        assert!(
                            batch.len() <= 4,
                            "claimed {} with a limit of 4",
                            batch.len()
                        );
                        if batch.is_empty() {
                            break;
                        }
                        got.extend(batch.into_iter().map(|j| j.id));
                    }
                    got
                }));
            }
            let mut all: Vec<String> = first.into_iter().map(|j| j.id).collect();
            for t in tasks {
                all.extend(t.await.unwrap());
            }
            let unique: HashSet<_> = all.iter().collect();
            assert_eq!(all.len(), 60);
            assert_eq!(unique.len(), 60);
        }
    );

    crate::both_dialects!(
        lines_and_ends_stored_together_only_end_jobs_running_on_the_node,
        |store| async move {
            let a = store.enqueue_job(&job("a", false)).await.unwrap();
            let b = store.enqueue_job(&job("b", false)).await.unwrap();
            store
                .claim_jobs("n1", Duration::from_secs(30), 2)
                .await
                .unwrap();
            // A third job runs on another node: n1's batch (three ends, padded to four in
            // one statement) must leave it alone.
            let c = store.enqueue_job(&job("c", false)).await.unwrap();
            store
                .claim_jobs("n2", Duration::from_secs(30), 1)
                .await
                .unwrap();
            let line = |n: i64, text: &str| crate::LogLine {
                line: n,
                at: now_text(),
                level: "info".into(),
                message: text.into(),
            };
            let lines = vec![
                (a.id.clone(), vec![line(1, "a1"), line(2, "a2")]),
                (b.id.clone(), vec![line(1, "b1")]),
            ];
            let ends = vec![
                crate::JobEnd {
                    job_id: a.id.clone(),
                    status: JobStatus::Succeeded,
                    exit_code: Some(0),
                    error: None,
                },
                crate::JobEnd {
                    job_id: b.id.clone(),
                    status: JobStatus::Failed,
                    exit_code: Some(2),
                    error: Some("boom".into()),
                },
                crate::JobEnd {
                    job_id: c.id.clone(),
                    status: JobStatus::Failed,
                    exit_code: None,
                    error: Some("not n1's".into()),
                },
            ];
            // Another node cannot end them, and nothing of its batch is kept.
            assert_eq!(
                store
                    .store_logs_and_ends("n2", &[], &ends[..2])
                    .await
                    .unwrap(),
                vec![false, false]
            );
            assert_eq!(
                store
                    .store_logs_and_ends("n1", &lines, &ends)
                    .await
                    .unwrap(),
                vec![true, true, false]
            );
            let c_now = store.get_job(&c.id).await.unwrap();
            assert_eq!(c_now.status, JobStatus::Running);
            assert_eq!(c_now.error, None);
            let a_now = store.get_job(&a.id).await.unwrap();
            assert_eq!(a_now.status, JobStatus::Succeeded);
            assert_eq!(a_now.exit_code, Some(0));
            let b_now = store.get_job(&b.id).await.unwrap();
            assert_eq!(b_now.status, JobStatus::Failed);
            assert_eq!(b_now.error.as_deref(), Some("boom"));
            let a_log = store.read_job_logs(&a.id, 0, 10).await.unwrap();
            assert_eq!(
                a_log.iter().map(|l| l.message.as_str()).collect::<Vec<_>>(),
                ["a1", "a2"]
            );
            assert_eq!(store.read_job_logs(&b.id, 0, 10).await.unwrap().len(), 1);
            // Sent again (an answer lost): lines stay as they are, the ends change nothing.
            assert_eq!(
                store
                    .store_logs_and_ends("n1", &lines, &ends)
                    .await
                    .unwrap(),
                vec![false, false, false]
            );
            assert_eq!(store.read_job_logs(&a.id, 0, 10).await.unwrap().len(), 2);
            let not_final = [crate::JobEnd {
                job_id: a.id.clone(),
                status: JobStatus::Running,
                exit_code: None,
                error: None,
            }];
            assert!(
                store
                    .store_logs_and_ends("n1", &[], &not_final)
                    .await
                    .is_err()
            );
        }
    );

    crate::both_dialects!(
        expired_leases_requeue_retry_safe_jobs_and_interrupt_the_rest,
        |store| async move {
            let safe = store.enqueue_job(&job("safe", true)).await.unwrap();
            let unsafe_job = store.enqueue_job(&job("unsafe", false)).await.unwrap();
            let live = store.enqueue_job(&job("live", false)).await.unwrap();
            store
                .claim_job("dead", Duration::ZERO)
                .await
                .unwrap()
                .unwrap();
            store
                .claim_job("dead", Duration::ZERO)
                .await
                .unwrap()
                .unwrap();
            store
                .claim_job("alive", Duration::from_secs(60))
                .await
                .unwrap()
                .unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
            let (requeued, interrupted) = store.reap_expired_leases().await.unwrap();
            assert_eq!(requeued, vec![safe.id.clone()]);
            assert_eq!(interrupted, vec![unsafe_job.id.clone()]);
            assert_eq!(
                store.get_job(&safe.id).await.unwrap().status,
                JobStatus::Queued
            );
            assert_eq!(
                store.get_job(&unsafe_job.id).await.unwrap().status,
                JobStatus::Interrupted
            );
            assert_eq!(
                store.get_job(&live.id).await.unwrap().status,
                JobStatus::Running
            );
            assert_eq!(
                store
                    .renew_leases("alive", Duration::from_secs(60))
                    .await
                    .unwrap(),
                1
            );
            let again = store
                .claim_job("alive", Duration::from_secs(60))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(again.id, safe.id);
            assert_eq!(again.attempts, 2);
            assert_eq!(
                store
                    .interrupt_node_jobs("alive", "restarted")
                    .await
                    .unwrap()
                    .len(),
                2
            );
        }
    );

    crate::both_dialects!(
        leases_renew_only_known_jobs_and_lost_claims_are_adopted,
        |store| async move {
            let a = store.enqueue_job(&job("a", false)).await.unwrap();
            let b = store.enqueue_job(&job("b", false)).await.unwrap();
            for _ in 0..2 {
                store
                    .claim_job("n1", Duration::ZERO)
                    .await
                    .unwrap()
                    .unwrap();
            }
            let known = vec![a.id.clone()];
            assert_eq!(
                store
                    .renew_job_leases("n1", &known, Duration::from_secs(60))
                    .await
                    .unwrap(),
                1
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
            // b's claim reached the store but not its node: the node adopts it.
            let adopted = store
                .adopt_lost_claims("n1", &known, Duration::from_secs(60))
                .await
                .unwrap();
            assert_eq!(adopted.len(), 1);
            assert_eq!(adopted[0].id, b.id);
            assert_eq!(adopted[0].attempts, 1);
            let (requeued, interrupted) = store.reap_expired_leases().await.unwrap();
            assert!(requeued.is_empty() && interrupted.is_empty());
            let all = vec![a.id.clone(), b.id.clone()];
            assert!(
                store
                    .adopt_lost_claims("n1", &all, Duration::from_secs(60))
                    .await
                    .unwrap()
                    .is_empty()
            );
        }
    );

    crate::both_dialects!(
        a_reaped_job_takes_the_true_outcome_its_node_reports_later,
        |store| async move {
            // As one end (`finish_job`) and as a runner's batch (`store_logs_and_ends`).
            let finish = |id: String, node: &'static str, status, code| {
                let store = store.clone();
                async move {
                    store
                        .finish_job(&id, node, status, code, None)
                        .await
                        .unwrap()
                }
            };
            let batch = |id: String, node: &'static str, status, code| {
                let store = store.clone();
                async move {
                    let end = crate::JobEnd {
                        job_id: id,
                        status,
                        exit_code: code,
                        error: None,
                    };
                    store.store_logs_and_ends(node, &[], &[end]).await.unwrap()[0]
                }
            };
            for (name, batched) in [("one end", false), ("a batch", true)] {
                let end = |id: &str, node, status, code| {
                    let id = id.to_string();
                    async move {
                        if batched {
                            batch(id, node, status, code).await
                        } else {
                            finish(id, node, status, code).await
                        }
                    }
                };
                let a = store.enqueue_job(&job("a", false)).await.unwrap();
                store
                    .claim_job("n1", Duration::ZERO)
                    .await
                    .unwrap()
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(10)).await;
                let (_, interrupted) = store.reap_expired_leases().await.unwrap();
                assert_eq!(interrupted, vec![a.id.clone()], "{name}");
                assert!(
                    !end(&a.id, "n2", JobStatus::Succeeded, Some(0)).await,
                    "{name}: only its own node may"
                );
                assert!(
                    end(&a.id, "n1", JobStatus::Succeeded, Some(0)).await,
                    "{name}"
                );
                let done = store.get_job(&a.id).await.unwrap();
                assert_eq!(done.status, JobStatus::Succeeded, "{name}");
                assert_eq!(done.error, None, "{name}");
                assert!(
                    !end(&a.id, "n1", JobStatus::Failed, Some(1)).await,
                    "{name}: an ended job does not change again"
                );
            }
        }
    );

    crate::both_dialects!(
        a_stopping_node_requeues_only_retry_safe_unhalted_jobs,
        |store| async move {
            let safe = store.enqueue_job(&job("safe", true)).await.unwrap();
            let plain = store.enqueue_job(&job("plain", false)).await.unwrap();
            for _ in 0..2 {
                store
                    .claim_job("n1", Duration::from_secs(30))
                    .await
                    .unwrap()
                    .unwrap();
            }
            assert!(!store.requeue_job(&plain.id, "n1").await.unwrap());
            assert!(!store.requeue_job(&safe.id, "n2").await.unwrap());
            assert!(store.requeue_job(&safe.id, "n1").await.unwrap());
            let again = store
                .claim_job("n2", Duration::from_secs(30))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(again.id, safe.id);
            assert_eq!(again.attempts, 2);
            store.request_halt(&safe.id).await.unwrap();
            assert!(
                !store.requeue_job(&safe.id, "n2").await.unwrap(),
                "a job somebody asked to halt is not run again"
            );
        }
    );

    crate::both_dialects!(
        halting_a_job_whose_lease_ran_out_ends_it,
        |store| async move {
            let a = store.enqueue_job(&job("a", false)).await.unwrap();
            store
                .claim_job("gone", Duration::ZERO)
                .await
                .unwrap()
                .unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
            let halted = store.request_halt(&a.id).await.unwrap();
            assert_eq!(halted.status, JobStatus::Halted);
            assert!(halted.finished_at.is_some());
            assert!(halted.lease_until.is_none());
        }
    );

    crate::both_dialects!(
        halt_ends_queued_jobs_and_flags_running_ones,
        |store| async move {
            let queued = store.enqueue_job(&job("q", false)).await.unwrap();
            let running = store.enqueue_job(&job("r", false)).await.unwrap();
            let halted = store.request_halt(&queued.id).await.unwrap();
            assert_eq!(halted.status, JobStatus::Halted);
            let claimed = store
                .claim_job("n1", Duration::from_secs(30))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(claimed.id, running.id, "a halted job is never claimed");
            assert!(store.halt_requests("n1").await.unwrap().is_empty());
            let flagged = store.request_halt(&running.id).await.unwrap();
            assert_eq!(flagged.status, JobStatus::Running);
            assert!(flagged.halt_requested);
            assert_eq!(
                store.halt_requests("n1").await.unwrap(),
                vec![running.id.clone()]
            );
            assert!(store.request_halt("missing").await.is_err());
        }
    );

    crate::both_dialects!(pinned_jobs_run_only_on_their_node, |store| async move {
        let pinned = store
            .enqueue_job(&NewJob {
                pinned_node: Some("n1".into()),
                ..job("p", false)
            })
            .await
            .unwrap();
        assert!(
            store
                .claim_job("n2", Duration::from_secs(30))
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(store.interrupt_pinned_jobs("n3").await.unwrap(), 0);
        assert_eq!(
            store
                .claim_job("n1", Duration::from_secs(30))
                .await
                .unwrap()
                .unwrap()
                .id,
            pinned.id
        );
    });

    crate::both_dialects!(time_filters_match_the_queue_times, |store| async move {
        use chrono::{DateTime, TimeDelta, Utc};
        // 30 jobs an hour apart; job 10 stamped a minute before job 9 (another node's
        // clock, within the slack), job 20 half a millisecond into its hour.
        let base: DateTime<Utc> = "2026-01-10T00:00:00Z".parse().unwrap();
        let mut jobs = Vec::new();
        for i in 0..30 {
            let job = store
                .enqueue_job(&job(&format!("s{}", i % 3), false))
                .await
                .unwrap();
            let at = match i {
                10 => base + TimeDelta::hours(9) - TimeDelta::minutes(1),
                20 => base + TimeDelta::hours(20) + TimeDelta::milliseconds(1),
                _ => base + TimeDelta::hours(i),
            };
            let text = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            sqlx::query("UPDATE jobs SET created_at = $1 WHERE id = $2")
                .bind(&text)
                .bind(&job.id)
                .execute(store.pool())
                .await
                .unwrap();
            jobs.push((job.seq, job.id, job.script_name.unwrap(), at));
        }
        let times = [
            None,
            Some("2026-01-09T00:00:00Z"),
            Some("2026-01-10T00:00:00Z"),
            Some("2026-01-10T09:00:00Z"),
            Some("2026-01-10T10:00:00+01:00"),
            Some("2026-01-10T04:00:00-05:00"),
            Some("2026-01-10T08:59:30.000Z"),
            Some("2026-01-10T20:00:00.0005Z"),
            Some("2026-01-10T20:00:00.001Z"),
            Some("2026-01-11T05:00:00Z"),
            Some("2026-01-12T00:00:00Z"),
        ];
        let at = |t: Option<&str>| t.map(|t| DateTime::parse_from_rfc3339(t).unwrap());
        for since in times {
            for until in times {
                for script in [None, Some("S1")] {
                    let want: Vec<&String> = jobs
                        .iter()
                        .rev()
                        .filter(|(_, _, name, t)| {
                            at(since).is_none_or(|s| *t >= s)
                                && at(until).is_none_or(|u| *t < u)
                                && script.is_none_or(|s| name.eq_ignore_ascii_case(s))
                        })
                        .map(|(_, id, _, _)| id)
                        .collect();
                    // Paging through it 4 at a time gives the same jobs.
                    let mut got = Vec::new();
                    let mut before = None;
                    loop {
                        let filter = JobFilter {
                            script: script.map(str::to_string),
                            since: since.map(str::to_string),
                            until: until.map(str::to_string),
                            before_seq: before,
                            limit: Some(4),
                            ..Default::default()
                        };
                        let page = store.list_jobs(&filter).await.unwrap();
                        before = page.last().map(|j| j.seq);
                        let done = page.len() < 4;
                        got.extend(page.into_iter().map(|j| j.id));
                        if done {
                            break;
                        }
                    }
                    let got: Vec<&String> = got.iter().collect();
                    assert_eq!(
                        got, want,
                        "since {since:?} until {until:?} script {script:?}"
                    );
                }
            }
        }
        // A time that is not RFC 3339 is compared as text, as before.
        let day = JobFilter {
            until: Some("2026-01-10T05".into()),
            ..Default::default()
        };
        assert_eq!(store.list_jobs(&day).await.unwrap().len(), 5);
    });

    crate::both_dialects!(logs_transfers_listing_and_purge, |store| async move {
        let a = store.enqueue_job(&job("Alpha", false)).await.unwrap();
        let b = store.enqueue_job(&job("beta", false)).await.unwrap();
        let lines: Vec<LogLine> = (1..=450)
            .map(|i| LogLine {
                line: i,
                at: now_text(),
                level: "info".into(),
                message: format!("line {i}"),
            })
            .collect();
        store.append_job_logs(&a.id, &lines).await.unwrap();
        let tail = store.read_job_logs(&a.id, 440, 100).await.unwrap();
        assert_eq!(tail.len(), 10);
        assert_eq!(tail[0].message, "line 441");
        let transfer = NewTransfer {
            source: "local:/a".into(),
            target: "sftp:/b".into(),
            bytes: 5,
            hash: None,
            hash_algo: None,
            millis: 1,
            attempts: 1,
            outcome: "ok".into(),
        };
        store
            .record_transfers(&a.id, std::slice::from_ref(&transfer))
            .await
            .unwrap();
        assert_eq!(store.list_transfers(&a.id).await.unwrap().len(), 1);
        // A call's files, recorded at once, keep their order after the earlier ones.
        let batch: Vec<NewTransfer> = (0..3)
            .map(|i| NewTransfer {
                target: format!("sftp:/c{i}"),
                ..transfer.clone()
            })
            .collect();
        store.record_transfers(&a.id, &batch).await.unwrap();
        let targets: Vec<String> = store
            .list_transfers(&a.id)
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.target)
            .collect();
        assert_eq!(targets, ["sftp:/b", "sftp:/c0", "sftp:/c1", "sftp:/c2"]);

        let by_script = store
            .list_jobs(&JobFilter {
                script: Some("alpha".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(by_script.len(), 1);
        let page = store
            .list_jobs(&JobFilter {
                limit: Some(1),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(page[0].id, b.id, "newest first");
        let next = store
            .list_jobs(&JobFilter {
                limit: Some(1),
                before_seq: Some(page[0].seq),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(next[0].id, a.id);
        let queued = store
            .list_jobs(&JobFilter {
                status: Some(JobStatus::Queued),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(queued.len(), 2);

        store.claim_job("n", Duration::from_secs(30)).await.unwrap();
        store
            .finish_job(&a.id, "n", JobStatus::Failed, Some(1), Some("boom"))
            .await
            .unwrap();
        assert_eq!(
            store
                .purge_jobs_before(&crate::time_before(Duration::from_secs(60)))
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            store
                .purge_jobs_before(&crate::time_after(Duration::from_secs(60)))
                .await
                .unwrap(),
            1
        );
        assert!(store.get_job(&a.id).await.is_err());
        assert!(store.read_job_logs(&a.id, 0, 10).await.unwrap().is_empty());
        assert!(store.list_transfers(&a.id).await.unwrap().is_empty());
        assert_eq!(
            store.get_job(&b.id).await.unwrap().status,
            JobStatus::Queued,
            "unfinished jobs are kept"
        );
    });

    crate::both_dialects!(claim_reads_the_dry_run_marks, |store| async move {
        let real = store.enqueue_job(&job("real", false)).await.unwrap();
        let dry = store.enqueue_dry_run(&job("dry", false)).await.unwrap();
        let later = store.enqueue_job(&job("later", false)).await.unwrap();
        let claimed = store
            .claim_jobs_marked("n", Duration::from_secs(30), 2)
            .await
            .unwrap();
        let got: Vec<(String, bool)> = claimed
            .iter()
            .map(|(job, dry_run)| (job.id.clone(), *dry_run))
            .collect();
        assert_eq!(got, vec![(real.id, false), (dry.id.clone(), true)]);
        assert!(
            claimed
                .iter()
                .all(|(job, _)| job.status == JobStatus::Running)
        );
        assert!(store.is_dry_run(&dry.id).await.unwrap());
        let rest = store
            .claim_jobs_marked("n", Duration::from_secs(30), 2)
            .await
            .unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!((rest[0].0.id.clone(), rest[0].1), (later.id, false));
    });

    crate::both_dialects!(
        purge_beyond_keeps_the_newest_ended_jobs,
        |store| async move {
            let mut ended = Vec::new();
            for i in 0..5 {
                let queued = store
                    .enqueue_job(&job(&format!("j{i}"), false))
                    .await
                    .unwrap();
                store.claim_job("n", Duration::from_secs(30)).await.unwrap();
                store
                    .finish_job(&queued.id, "n", JobStatus::Succeeded, Some(0), None)
                    .await
                    .unwrap();
                ended.push(queued.id);
                // Distinct end times: the cap keeps whole milliseconds.
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            let waiting = store.enqueue_job(&job("waiting", false)).await.unwrap();
            assert_eq!(store.purge_jobs_beyond(10).await.unwrap(), 0);
            assert_eq!(store.purge_jobs_beyond(2).await.unwrap(), 3);
            for (i, id) in ended.iter().enumerate() {
                assert_eq!(store.get_job(id).await.is_ok(), i >= 3, "job {i}");
            }
            assert_eq!(
                store.get_job(&waiting.id).await.unwrap().status,
                JobStatus::Queued,
                "unended jobs are neither counted nor purged"
            );
            assert_eq!(store.purge_jobs_beyond(0).await.unwrap(), 2);
        }
    );

    crate::both_dialects!(
        nodes_register_heartbeat_and_are_found_dead,
        |store| async move {
            store
                .register_node("n1", "host", 42, "https://127.0.0.1:1")
                .await
                .unwrap();
            store
                .register_node("n1", "host", 43, "https://127.0.0.1:1")
                .await
                .unwrap();
            store
                .register_node("n2", "host", 44, "https://127.0.0.1:2")
                .await
                .unwrap();
            let nodes = store.list_nodes().await.unwrap();
            assert_eq!(nodes.len(), 2);
            assert_eq!(nodes.iter().find(|n| n.id == "n1").unwrap().pid, 43);
            // Wide margins: n1's heartbeat is 1 s old, n2's fresh one would have to take
            // over half a second to reach the query before it counted as dead too.
            tokio::time::sleep(Duration::from_millis(1000)).await;
            store.heartbeat_node("n2").await.unwrap();
            let dead = store.dead_nodes(Duration::from_millis(500)).await.unwrap();
            assert_eq!(dead, vec!["n1".to_string()]);
            store.stop_node("n1").await.unwrap();
            assert!(
                store
                    .dead_nodes(Duration::from_millis(500))
                    .await
                    .unwrap()
                    .is_empty(),
                "a node that stopped cleanly is not dead"
            );
        }
    );
}
