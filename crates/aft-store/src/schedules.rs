//! Schedules: a cron expression in an IANA time zone that queues a stored script.
//!
//! Every slot a schedule reaches becomes one row of `schedule_slots`, keyed by
//! `(schedule_id, slot_time)`. The node whose INSERT wins the key decides the slot (fired,
//! waiting, skipped, missed or failed) and queues its job in the same transaction, so a slot
//! is decided exactly once across restarts and across the nodes of a cluster.

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::jobs::script_version_of;
use crate::tz::Tz;
use crate::util::{
    conflict_or_db, int_bool, is_unique_violation, name_key, new_id, parse_time, time_text,
    validate_name,
};
use crate::{JobParams, Store, StoreError, StoreResult, now_text};

/// What happens to a slot while a job of the same schedule is still queued or running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OverlapPolicy {
    /// The slot is recorded `skipped` and no job is queued.
    Skip,
    /// The slot waits (`waiting`) and fires once the previous job has ended.
    Queue,
    /// The slot fires at once; jobs of the schedule may run side by side.
    Allow,
}

impl OverlapPolicy {
    /// The policy as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            OverlapPolicy::Skip => "skip",
            OverlapPolicy::Queue => "queue",
            OverlapPolicy::Allow => "allow",
        }
    }

    /// Parse `skip`, `queue` or `allow`.
    pub fn parse(text: &str) -> StoreResult<OverlapPolicy> {
        match text.to_ascii_lowercase().as_str() {
            "skip" => Ok(OverlapPolicy::Skip),
            "queue" => Ok(OverlapPolicy::Queue),
            "allow" => Ok(OverlapPolicy::Allow),
            _ => Err(StoreError::Invalid(format!(
                "unknown overlap policy {text:?}: use skip, queue or allow"
            ))),
        }
    }
}

/// What happens to slots that came due while no service ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MisfirePolicy {
    /// Every missed slot is recorded `missed`; nothing runs.
    Skip,
    /// The newest missed slot fires once; older ones are recorded `missed`.
    RunOnce,
}

impl MisfirePolicy {
    /// The policy as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            MisfirePolicy::Skip => "skip",
            MisfirePolicy::RunOnce => "run-once",
        }
    }

    /// Parse `skip` or `run-once`.
    pub fn parse(text: &str) -> StoreResult<MisfirePolicy> {
        match text.to_ascii_lowercase().as_str() {
            "skip" => Ok(MisfirePolicy::Skip),
            "run-once" | "run_once" | "runonce" => Ok(MisfirePolicy::RunOnce),
            _ => Err(StoreError::Invalid(format!(
                "unknown misfire policy {text:?}: use skip or run-once"
            ))),
        }
    }
}

/// How a slot was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SlotStatus {
    /// A job was queued for it.
    Fired,
    /// It waits for the schedule's previous job to end (overlap policy `queue`).
    Waiting,
    /// A job of the schedule was still active (overlap policy `skip`).
    Skipped,
    /// It came due while no service ran, and the misfire policy did not run it.
    Missed,
    /// It could not fire (the script was deleted); `detail` says why.
    Failed,
}

impl SlotStatus {
    /// The status as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            SlotStatus::Fired => "fired",
            SlotStatus::Waiting => "waiting",
            SlotStatus::Skipped => "skipped",
            SlotStatus::Missed => "missed",
            SlotStatus::Failed => "failed",
        }
    }

    fn parse(text: &str) -> StoreResult<SlotStatus> {
        [
            SlotStatus::Fired,
            SlotStatus::Waiting,
            SlotStatus::Skipped,
            SlotStatus::Missed,
            SlotStatus::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
        .ok_or_else(|| StoreError::Invalid(format!("stored slot status {text:?} is unknown")))
    }
}

/// Whether a slot is decided on time or after the service was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotTiming {
    /// It came due while a service ran: the overlap policy decides.
    OnTime,
    /// It came due while no service ran. `newest` marks the newest of the missed slots,
    /// the one misfire policy `run-once` fires; older ones are always recorded `missed`.
    Missed {
        /// Whether this is the newest missed slot.
        newest: bool,
    },
}

/// A parsed cron expression in a time zone: computes fire times.
#[derive(Debug, Clone)]
pub struct CronTimes {
    cron: Cron,
    tz: Tz,
}

impl CronTimes {
    /// Parse `expr` (5 fields, 6 with seconds first, or `@yearly`, `@monthly`, `@weekly`,
    /// `@daily`, `@hourly`) in the IANA time zone `tz` (`Europe/Rome`, `UTC`, ...).
    pub fn parse(expr: &str, tz: &str) -> StoreResult<CronTimes> {
        let tz = Tz::from_name(tz).ok_or_else(|| {
            StoreError::Invalid(format!(
                "unknown time zone {tz:?}: use an IANA name such as UTC, Europe/Rome or America/New_York"
            ))
        })?;
        let parser = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build();
        let invalid = |e: &dyn std::fmt::Display| {
            StoreError::Invalid(format!(
                "invalid cron expression {expr:?}: {e} (use 5 fields `min hour day month weekday`, \
                 6 with seconds first, or @daily, @hourly, @weekly, @monthly, @yearly)"
            ))
        };
        // croner takes an empty list item (`,,` or `5,`) as no value: the expression then
        // never fires, and every search for its next time runs for seconds.
        if let Some(field) = expr
            .split_whitespace()
            .find(|f| f.split(',').any(str::is_empty))
        {
            return Err(invalid(&format!("empty item in the list {field:?}")));
        }
        let cron = parser.parse(expr).map_err(|e| invalid(&e))?;
        Ok(CronTimes { cron, tz })
    }

    /// The first fire time strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.tz);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The last fire time before `before` (or at it, when `inclusive`).
    pub fn previous(&self, before: DateTime<Utc>, inclusive: bool) -> Option<DateTime<Utc>> {
        let local = before.with_timezone(&self.tz);
        self.cron
            .find_previous_occurrence(&local, inclusive)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The next `count` fire times strictly after `after`.
    pub fn next_n(&self, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(count);
        let mut cursor = after;
        while out.len() < count {
            match self.next_after(cursor) {
                Some(next) if next > cursor => {
                    out.push(next);
                    cursor = next;
                }
                _ => break,
            }
        }
        out
    }

    /// The time zone.
    pub fn time_zone(&self) -> Tz {
        self.tz.clone()
    }
}

/// What to create.
#[derive(Debug, Clone)]
pub struct NewSchedule {
    /// Unique name (case-insensitive).
    pub name: String,
    /// The stored script to queue (by name, resolved at each fire).
    pub script_name: String,
    /// The cron expression.
    pub cron: String,
    /// The IANA time zone the expression is read in.
    pub time_zone: String,
    /// Parameters of each job: a flat JSON object.
    pub params: JobParams,
    /// The overlap policy.
    pub overlap: OverlapPolicy,
    /// The misfire policy.
    pub misfire: MisfirePolicy,
    /// Whether it fires.
    pub enabled: bool,
}

/// What to change in a schedule; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct ScheduleUpdate {
    /// The stored script to queue.
    pub script_name: Option<String>,
    /// The cron expression.
    pub cron: Option<String>,
    /// The IANA time zone the expression is read in.
    pub time_zone: Option<String>,
    /// Parameters of each job: a flat JSON object.
    pub params: Option<JobParams>,
    /// The overlap policy.
    pub overlap: Option<OverlapPolicy>,
    /// The misfire policy.
    pub misfire: Option<MisfirePolicy>,
    /// Whether it fires.
    pub enabled: Option<bool>,
}

/// A slot older than this when it is decided, and not decided by a running scheduler by
/// then, came due while no service ran: the misfire policy decides it. The scheduler's
/// grace, also used when an edit settles the old expression's due slots.
pub const SCHEDULE_MISFIRE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// At most this many slots of one schedule are decided at once; a longer backlog (an
/// every-second schedule after a day down) keeps only its newest slots.
pub const MAX_SLOTS_PER_PASS: usize = 1000;

/// How often an edit retries settling the old expression's slots before giving up (each
/// retry means a slot of the old expression came due while the edit ran).
const UPDATE_ATTEMPTS: usize = 20;

/// A schedule as stored.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    /// UUIDv7 id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The stored script it queues.
    pub script_name: String,
    /// The cron expression.
    pub cron: String,
    /// The IANA time zone.
    pub time_zone: String,
    /// Parameters of each job.
    pub params: JobParams,
    /// The overlap policy.
    pub overlap: OverlapPolicy,
    /// The misfire policy.
    pub misfire: MisfirePolicy,
    /// Whether it fires.
    pub enabled: bool,
    /// The newest slot decided (or when it was created or enabled): slots after it are due.
    pub last_slot: DateTime<Utc>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

impl Schedule {
    /// Its cron expression, parsed in its time zone.
    pub fn times(&self) -> StoreResult<CronTimes> {
        CronTimes::parse(&self.cron, &self.time_zone)
    }

    /// Its slots after its cursor and not after `now`, oldest first, at most
    /// [`MAX_SLOTS_PER_PASS`] (the newest ones).
    pub fn due_slots(&self, now: DateTime<Utc>) -> StoreResult<Vec<DateTime<Utc>>> {
        let times = self.times()?;
        let mut due = std::collections::VecDeque::new();
        let mut cursor = self.last_slot;
        // After a long outage, walking every slot since the cursor (an every-second schedule
        // away for a month: millions) stalls the scheduler; only the newest
        // MAX_SLOTS_PER_PASS are kept, so start just before the oldest of them, found
        // walking back from `now`. The slots are still the ones the forward walk gives.
        let (mut probe, mut inclusive, mut back) = (now, true, 0);
        while back < MAX_SLOTS_PER_PASS {
            match times.previous(probe, inclusive) {
                Some(t) if t > cursor && (t < probe || (inclusive && t == probe)) => {
                    (probe, inclusive, back) = (t, false, back + 1);
                }
                _ => break,
            }
        }
        if back == MAX_SLOTS_PER_PASS {
            cursor = cursor.max(probe - chrono::Duration::milliseconds(1));
        }
        while let Some(next) = times.next_after(cursor) {
            if next > now || next <= cursor {
                break;
            }
            if due.len() == MAX_SLOTS_PER_PASS {
                due.pop_front();
            }
            due.push_back(next);
            cursor = next;
        }
        Ok(due.into())
    }
}

/// One decided slot.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleSlot {
    /// The schedule.
    pub schedule_id: String,
    /// The fire time.
    pub slot_time: DateTime<Utc>,
    /// How it was decided.
    pub status: SlotStatus,
    /// The job it queued, if it fired.
    pub job_id: Option<String>,
    /// The node that decided it.
    pub node_id: String,
    /// Why it failed, or what else happened.
    pub detail: Option<String>,
    /// When it was decided.
    pub decided_at: DateTime<Utc>,
}

const SCHEDULE_COLUMNS: &str = "id, name, script_name, cron, time_zone, params, overlap, misfire, \
    enabled, last_slot, created_at, updated_at";

fn schedule_from_row(row: &AnyRow) -> StoreResult<Schedule> {
    let params: String = row.try_get("params")?;
    Ok(Schedule {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        script_name: row.try_get("script_name")?,
        cron: row.try_get("cron")?,
        time_zone: row.try_get("time_zone")?,
        params: JobParams::parse(&params)
            .map_err(|e| StoreError::Invalid(format!("stored schedule params: {e}")))?,
        overlap: OverlapPolicy::parse(&row.try_get::<String, _>("overlap")?)?,
        misfire: MisfirePolicy::parse(&row.try_get::<String, _>("misfire")?)?,
        enabled: int_bool(row.try_get("enabled")?),
        last_slot: parse_time("last_slot", &row.try_get::<String, _>("last_slot")?)?,
        created_at: parse_time("created_at", &row.try_get::<String, _>("created_at")?)?,
        updated_at: parse_time("updated_at", &row.try_get::<String, _>("updated_at")?)?,
    })
}

fn slot_from_row(row: &AnyRow) -> StoreResult<ScheduleSlot> {
    Ok(ScheduleSlot {
        schedule_id: row.try_get("schedule_id")?,
        slot_time: parse_time("slot_time", &row.try_get::<String, _>("slot_time")?)?,
        status: SlotStatus::parse(&row.try_get::<String, _>("status")?)?,
        job_id: row.try_get("job_id")?,
        node_id: row.try_get("node_id")?,
        detail: row.try_get("detail")?,
        decided_at: parse_time("decided_at", &row.try_get::<String, _>("decided_at")?)?,
    })
}

/// The job a slot queues, resolved before its transaction.
struct SlotJob {
    script_id: String,
    script_name: String,
    source: String,
    retry_safe: bool,
}

impl Store {
    /// Create a schedule; the cron expression, time zone, script and params are checked.
    pub async fn create_schedule(&self, new: NewSchedule) -> StoreResult<Schedule> {
        validate_name("schedule", &new.name)?;
        CronTimes::parse(&new.cron, &new.time_zone)?;
        let script = self
            .script_by_name(&new.script_name)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: "script",
                name: new.script_name.clone(),
            })?;
        let id = new_id();
        let now = now_text();
        let sql = format!(
            "INSERT INTO schedules (id, name, name_key, script_name, cron, time_zone, params, \
             overlap, misfire, enabled, last_slot, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING {SCHEDULE_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(&id)
            .bind(&new.name)
            .bind(name_key(&new.name))
            .bind(&script.name)
            .bind(new.cron.trim())
            .bind(&new.time_zone)
            .bind(new.params.to_json().to_string())
            .bind(new.overlap.as_str())
            .bind(new.misfire.as_str())
            .bind(i64::from(new.enabled))
            .bind(&now)
            .bind(&now)
            .bind(&now)
            .fetch_one(self.pool())
            .await
            .map_err(conflict_or_db("schedule", &new.name))?;
        schedule_from_row(&row)
    }

    /// Every schedule, by name.
    pub async fn list_schedules(&self) -> StoreResult<Vec<Schedule>> {
        let sql = format!("SELECT {SCHEDULE_COLUMNS} FROM schedules ORDER BY name_key");
        let rows = sqlx::query(&sql).fetch_all(self.pool()).await?;
        rows.iter().map(schedule_from_row).collect()
    }

    /// One schedule by id or name (case-insensitive).
    pub async fn find_schedule(&self, id_or_name: &str) -> StoreResult<Schedule> {
        let row = self
            .row_by_id_or_name("schedules", SCHEDULE_COLUMNS, "schedule", id_or_name)
            .await?;
        schedule_from_row(&row)
    }

    /// Delete a schedule and its slot history (its jobs stay in job history).
    pub async fn delete_schedule(&self, id_or_name: &str) -> StoreResult<()> {
        let schedule = self.find_schedule(id_or_name).await?;
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM schedules WHERE id = $1")
            .bind(&schedule.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM schedule_slots WHERE schedule_id = $1")
            .bind(&schedule.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Enable or disable a schedule. Enabling moves its cursor to now: slots that passed
    /// while it was disabled are not due, and not missed either.
    pub async fn set_schedule_enabled(
        &self,
        id_or_name: &str,
        enabled: bool,
    ) -> StoreResult<Schedule> {
        let schedule = self.find_schedule(id_or_name).await?;
        if schedule.enabled == enabled {
            return Ok(schedule);
        }
        let now = now_text();
        if enabled {
            sqlx::query(
                "UPDATE schedules SET enabled = 1, updated_at = $1, last_slot = $2 WHERE id = $3",
            )
            .bind(&now)
            .bind(&now)
            .bind(&schedule.id)
            .execute(self.pool())
            .await?;
        } else {
            sqlx::query("UPDATE schedules SET enabled = 0, updated_at = $1 WHERE id = $2")
                .bind(&now)
                .bind(&schedule.id)
                .execute(self.pool())
                .await?;
        }
        self.find_schedule(&schedule.id).await
    }

    /// Change a schedule (see [`ScheduleUpdate`]); input is checked as on create.
    ///
    /// Slots stay decided exactly once around the edit. When the cron expression or time
    /// zone of an enabled schedule changes, every slot of the OLD expression that came due
    /// up to the edit is decided first (on node `node_id`; a slot older than
    /// [`SCHEDULE_MISFIRE_GRACE`] as missed), then the cursor moves to the edit's time, so
    /// the new expression starts from its first slot after the edit. Enabling moves the
    /// cursor to now, as [`Store::set_schedule_enabled`] does. Scheduler passes still
    /// holding the old expression decide nothing more of it (see [`Store::decide_slot`]).
    pub async fn update_schedule(
        &self,
        id_or_name: &str,
        update: ScheduleUpdate,
        node_id: &str,
    ) -> StoreResult<Schedule> {
        let current = self.find_schedule(id_or_name).await?;
        let cron = update
            .cron
            .as_deref()
            .map(str::trim)
            .unwrap_or(&current.cron)
            .to_string();
        let time_zone = update
            .time_zone
            .clone()
            .unwrap_or_else(|| current.time_zone.clone());
        CronTimes::parse(&cron, &time_zone)?;
        let params = update.params.clone().unwrap_or(current.params.clone());
        let script_name = match &update.script_name {
            Some(name) => {
                self.script_by_name(name)
                    .await?
                    .ok_or_else(|| StoreError::NotFound {
                        kind: "script",
                        name: name.clone(),
                    })?
                    .name
            }
            None => current.script_name.clone(),
        };
        for _ in 0..UPDATE_ATTEMPTS {
            let before = self.find_schedule(&current.id).await?;
            let enabled = update.enabled.unwrap_or(before.enabled);
            let retimed = cron != before.cron || time_zone != before.time_zone;
            // Only a schedule that keeps firing under a new timing has old slots to settle.
            let settle = retimed && before.enabled && enabled;
            if settle {
                self.settle_due_slots(&before, node_id).await?;
            }
            let mut tx = self.pool().begin().await?;
            let locked = sqlx::query("UPDATE schedules SET last_slot = last_slot WHERE id = $1")
                .bind(&current.id)
                .execute(&mut *tx)
                .await?;
            if locked.rows_affected() == 0 {
                return Err(StoreError::NotFound {
                    kind: "schedule",
                    name: id_or_name.to_string(),
                });
            }
            let sql = format!("SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE id = $1");
            let locked = schedule_from_row(
                &sqlx::query(&sql)
                    .bind(&current.id)
                    .fetch_one(&mut *tx)
                    .await?,
            )?;
            // Truncated to the stored precision, so the cursor is exactly this instant.
            let now = parse_time("now", &now_text())?;
            if locked.cron != before.cron
                || locked.time_zone != before.time_zone
                || locked.enabled != before.enabled
            {
                continue; // edited meanwhile: decide again from the new state
            }
            if settle
                && locked
                    .times()?
                    .next_after(locked.last_slot)
                    .is_some_and(|next| next <= now)
            {
                continue; // an old slot came due while settling: settle it too
            }
            let last_slot = if enabled && !locked.enabled {
                now
            } else if settle {
                locked.last_slot.max(now)
            } else {
                locked.last_slot
            };
            let sql = format!(
                "UPDATE schedules SET script_name = $1, cron = $2, time_zone = $3, params = $4, \
                 overlap = $5, misfire = $6, enabled = $7, last_slot = $8, updated_at = $9 \
                 WHERE id = $10 RETURNING {SCHEDULE_COLUMNS}"
            );
            let row = sqlx::query(&sql)
                .bind(&script_name)
                .bind(&cron)
                .bind(&time_zone)
                .bind(params.to_json().to_string())
                .bind(update.overlap.unwrap_or(locked.overlap).as_str())
                .bind(update.misfire.unwrap_or(locked.misfire).as_str())
                .bind(i64::from(enabled))
                .bind(time_text(last_slot))
                .bind(time_text(now))
                .bind(&current.id)
                .fetch_one(&mut *tx)
                .await?;
            let updated = schedule_from_row(&row)?;
            if locked.overlap == OverlapPolicy::Queue && updated.overlap != OverlapPolicy::Queue {
                // Only policy `queue` fires waiting slots; left waiting, they would keep the
                // schedule busy (every later slot skipped) forever.
                sqlx::query(
                    "UPDATE schedule_slots SET status = 'skipped', detail = $1, decided_at = $2 \
                     WHERE schedule_id = $3 AND status = 'waiting'",
                )
                .bind(format!(
                    "still waiting when the overlap policy changed from queue to {}",
                    updated.overlap.as_str()
                ))
                .bind(time_text(now))
                .bind(&current.id)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            return Ok(updated);
        }
        Err(StoreError::Invalid(format!(
            "schedule {:?} kept changing while it was edited: try again",
            current.name
        )))
    }

    /// Decide every slot of `schedule` after its cursor and not after now, oldest first
    /// (those older than [`SCHEDULE_MISFIRE_GRACE`] as missed, the newest of them by the
    /// misfire policy).
    async fn settle_due_slots(&self, schedule: &Schedule, node_id: &str) -> StoreResult<()> {
        let now = Utc::now();
        let grace = chrono::Duration::from_std(SCHEDULE_MISFIRE_GRACE).unwrap_or_default();
        let due = schedule.due_slots(now)?;
        let newest_missed = due.iter().rposition(|slot| now - *slot > grace);
        for (i, slot) in due.iter().enumerate() {
            let timing = match newest_missed {
                Some(newest) if i <= newest => SlotTiming::Missed {
                    newest: i == newest,
                },
                _ => SlotTiming::OnTime,
            };
            self.decide_slot(schedule, *slot, timing, node_id).await?;
        }
        Ok(())
    }

    /// Jobs of the schedule still queued or running.
    pub async fn schedule_active_jobs(&self, schedule_id: &str) -> StoreResult<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM jobs WHERE schedule_id = $1 AND status IN ('queued', 'running')",
        )
        .bind(schedule_id)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get("n")?)
    }

    /// The script a slot of `schedule` would queue, or why it cannot.
    async fn slot_job(&self, schedule: &Schedule) -> StoreResult<Result<SlotJob, String>> {
        Ok(match self.script_by_name(&schedule.script_name).await? {
            Some(script) => Ok(SlotJob {
                script_id: script.id,
                script_name: script.name,
                source: script.body,
                retry_safe: script.retry_safe,
            }),
            None => Err(format!(
                "script {:?} no longer exists: push it again or change the schedule",
                schedule.script_name
            )),
        })
    }

    /// Decide one slot of `schedule` on node `node_id`: a missed slot by the misfire policy
    /// (see [`SlotTiming`]), then the overlap policy.
    /// Returns `None` when another node (or an earlier run) already decided the slot, or
    /// when the schedule was deleted or its cron expression or time zone changed since
    /// `schedule` was read.
    pub async fn decide_slot(
        &self,
        schedule: &Schedule,
        slot_time: DateTime<Utc>,
        timing: SlotTiming,
        node_id: &str,
    ) -> StoreResult<Option<ScheduleSlot>> {
        let job = self.slot_job(schedule).await?;
        let slot_text = time_text(slot_time);
        let now = now_text();
        let mut tx = self.pool().begin().await?;
        // Writing the schedule row first takes the write lock (SQLite) or the row lock
        // (PostgreSQL), so one node at a time decides this schedule's slots, and the
        // overlap check below cannot race another node's decision.
        // The expression must still be the one the slot was computed from: a pass that read
        // the schedule before an edit of its timing decides nothing more of the old one.
        let moved = sqlx::query(
            "UPDATE schedules SET last_slot = CASE WHEN last_slot < $1 THEN $2 ELSE last_slot END \
             WHERE id = $3 AND cron = $4 AND time_zone = $5",
        )
        .bind(&slot_text)
        .bind(&slot_text)
        .bind(&schedule.id)
        .bind(&schedule.cron)
        .bind(&schedule.time_zone)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() == 0 {
            return Ok(None); // deleted or retimed meanwhile
        }
        let taken = sqlx::query(
            "SELECT status FROM schedule_slots WHERE schedule_id = $1 AND slot_time = $2",
        )
        .bind(&schedule.id)
        .bind(&slot_text)
        .fetch_optional(&mut *tx)
        .await?;
        if taken.is_some() {
            tx.commit().await?;
            return Ok(None);
        }
        let active: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM jobs WHERE schedule_id = $1 AND status IN ('queued', 'running')",
        )
        .bind(&schedule.id)
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
        let waiting: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM schedule_slots WHERE schedule_id = $1 AND status = 'waiting'",
        )
        .bind(&schedule.id)
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
        let busy = active > 0 || waiting > 0;
        let run_missed = timing == SlotTiming::Missed { newest: true }
            && schedule.misfire == MisfirePolicy::RunOnce;
        let missed = timing != SlotTiming::OnTime;
        let (status, detail) = match (&job, missed) {
            (_, true) if !run_missed => (
                SlotStatus::Missed,
                Some(format!(
                    "came due while no service ran (misfire policy {})",
                    schedule.misfire.as_str()
                )),
            ),
            (Err(why), _) => (SlotStatus::Failed, Some(why.clone())),
            (Ok(_), _) if busy && schedule.overlap == OverlapPolicy::Skip => (
                SlotStatus::Skipped,
                Some(
                    "the previous job of this schedule was still active (overlap policy skip)"
                        .into(),
                ),
            ),
            (Ok(_), _) if busy && schedule.overlap == OverlapPolicy::Queue => {
                (SlotStatus::Waiting, None)
            }
            (Ok(_), true) => (
                SlotStatus::Fired,
                Some("came due while no service ran; run once (misfire policy run-once)".into()),
            ),
            (Ok(_), false) => (SlotStatus::Fired, None),
        };
        let job_id = match (status, &job) {
            (SlotStatus::Fired, Ok(job)) => Some(insert_slot_job(&mut tx, schedule, job).await?),
            _ => None,
        };
        let inserted = sqlx::query(
            "INSERT INTO schedule_slots (schedule_id, slot_time, status, job_id, node_id, detail, decided_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&schedule.id)
        .bind(&slot_text)
        .bind(status.as_str())
        .bind(job_id.clone())
        .bind(node_id)
        .bind(detail.clone())
        .bind(&now)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            // Another node won the slot: roll back (and with it our job).
            Err(e) if is_unique_violation(&e) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        Ok(Some(ScheduleSlot {
            schedule_id: schedule.id.clone(),
            slot_time,
            status,
            job_id,
            node_id: node_id.to_string(),
            detail,
            decided_at: parse_time("decided_at", &now)?,
        }))
    }

    /// Fire the oldest `waiting` slot of `schedule` if none of its jobs is active. Returns
    /// the slot fired, if any; two nodes racing fire it once.
    pub async fn fire_waiting_slot(
        &self,
        schedule: &Schedule,
    ) -> StoreResult<Option<ScheduleSlot>> {
        let job = self.slot_job(schedule).await?.ok();
        let mut tx = self.pool().begin().await?;
        let locked = sqlx::query("UPDATE schedules SET last_slot = last_slot WHERE id = $1")
            .bind(&schedule.id)
            .execute(&mut *tx)
            .await?;
        if locked.rows_affected() == 0 {
            return Ok(None);
        }
        let active: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM jobs WHERE schedule_id = $1 AND status IN ('queued', 'running')",
        )
        .bind(&schedule.id)
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
        if active > 0 {
            tx.commit().await?;
            return Ok(None);
        }
        let oldest = sqlx::query(
            "SELECT slot_time FROM schedule_slots WHERE schedule_id = $1 AND status = 'waiting' \
             ORDER BY slot_time LIMIT 1",
        )
        .bind(&schedule.id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(oldest) = oldest else {
            tx.commit().await?;
            return Ok(None);
        };
        let slot_text: String = oldest.try_get("slot_time")?;
        let (status, job_id, detail) = match &job {
            Some(job) => (
                "fired",
                Some(insert_slot_job(&mut tx, schedule, job).await?),
                None,
            ),
            None => (
                "failed",
                None,
                Some(format!(
                    "script {:?} no longer exists",
                    schedule.script_name
                )),
            ),
        };
        sqlx::query(
            "UPDATE schedule_slots SET status = $1, job_id = $2, detail = $3, decided_at = $4 \
             WHERE schedule_id = $5 AND slot_time = $6 AND status = 'waiting'",
        )
        .bind(status)
        .bind(job_id)
        .bind(detail)
        .bind(now_text())
        .bind(&schedule.id)
        .bind(&slot_text)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let row = sqlx::query(
            "SELECT schedule_id, slot_time, status, job_id, node_id, detail, decided_at \
             FROM schedule_slots WHERE schedule_id = $1 AND slot_time = $2",
        )
        .bind(&schedule.id)
        .bind(&slot_text)
        .fetch_one(self.pool())
        .await?;
        slot_from_row(&row).map(Some)
    }

    /// The newest `limit` slots of a schedule, newest first.
    pub async fn list_slots(
        &self,
        schedule_id: &str,
        limit: i64,
    ) -> StoreResult<Vec<ScheduleSlot>> {
        let rows = sqlx::query(
            "SELECT schedule_id, slot_time, status, job_id, node_id, detail, decided_at \
             FROM schedule_slots WHERE schedule_id = $1 ORDER BY slot_time DESC LIMIT $2",
        )
        .bind(schedule_id)
        .bind(limit.clamp(1, 10_000))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(slot_from_row).collect()
    }
}

/// Queue the job of a slot inside the slot's transaction; returns its id.
async fn insert_slot_job(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    schedule: &Schedule,
    job: &SlotJob,
) -> StoreResult<String> {
    let id = new_id();
    let insert_job = format!(
        "INSERT INTO jobs (id, status, script_id, script_name, source, params, origin, retry_safe, \
         created_at, schedule_id, started_by, script_version) \
         VALUES ($1, 'queued', $2, $3, $4, $5, 'schedule', $6, $7, $8, $9, {})",
        script_version_of("$2", "$4")
    );
    sqlx::query(&insert_job)
        .bind(&id)
        .bind(&job.script_id)
        .bind(&job.script_name)
        .bind(&job.source)
        .bind(schedule.params.to_json().to_string())
        .bind(i64::from(job.retry_safe))
        .bind(now_text())
        .bind(&schedule.id)
        .bind(format!("schedule {}", schedule.name))
        .execute(&mut **tx)
        .await?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use chrono::{DateTime, TimeZone, Utc};

    use super::{
        CronTimes, MisfirePolicy, NewSchedule, OverlapPolicy, ScheduleUpdate, SlotStatus,
        SlotTiming,
    };

    const ON_TIME: SlotTiming = SlotTiming::OnTime;
    const MISSED_NEWEST: SlotTiming = SlotTiming::Missed { newest: true };
    use crate::{JobStatus, NewScript, Store};

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn local(times: &CronTimes, after: &str, n: usize) -> Vec<String> {
        times
            .next_n(utc(after), n)
            .iter()
            .map(|t| t.with_timezone(&times.time_zone()).to_rfc3339())
            .collect()
    }

    #[test]
    fn cron_accepts_five_and_six_fields_and_nicknames_in_a_time_zone() {
        let every_second = CronTimes::parse("* * * * * *", "UTC").unwrap();
        assert_eq!(every_second.next_n(utc("2026-01-01T00:00:00Z"), 3).len(), 3);
        assert_eq!(
            every_second.next_after(utc("2026-01-01T00:00:00.500Z")),
            Some(utc("2026-01-01T00:00:01Z"))
        );
        let daily = CronTimes::parse("@daily", "Europe/Rome").unwrap();
        assert_eq!(
            local(&daily, "2026-01-01T12:00:00Z", 1),
            vec!["2026-01-02T00:00:00+01:00"]
        );
        let five = CronTimes::parse("30 9 * * MON-FRI", "America/New_York").unwrap();
        assert_eq!(
            five.next_after(utc("2026-01-02T15:00:00Z")),
            Some(utc("2026-01-05T14:30:00Z")),
            "Friday 10:00 EST -> Monday 09:30 EST"
        );
        assert!(
            CronTimes::parse("61 * * * *", "UTC")
                .unwrap_err()
                .to_string()
                .contains("invalid cron expression")
        );
        assert!(CronTimes::parse("* * * *", "UTC").is_err());
        assert!(
            CronTimes::parse("0 0 * * *", "Mars/Olympus")
                .unwrap_err()
                .to_string()
                .contains("unknown time zone")
        );
    }

    #[test]
    fn spring_forward_runs_a_slot_in_the_missing_hour_at_the_first_instant_after_the_gap() {
        // Europe/Rome, 2026-03-29: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist.
        let rome = CronTimes::parse("30 2 * * *", "Europe/Rome").unwrap();
        assert_eq!(
            local(&rome, "2026-03-27T12:00:00Z", 4),
            vec![
                "2026-03-28T02:30:00+01:00",
                "2026-03-29T03:00:00+02:00",
                "2026-03-30T02:30:00+02:00",
                "2026-03-31T02:30:00+02:00",
            ]
        );
        // America/New_York, 2026-03-08: 02:00 EST jumps to 03:00 EDT.
        let ny = CronTimes::parse("30 2 * * *", "America/New_York").unwrap();
        assert_eq!(
            local(&ny, "2026-03-07T12:00:00Z", 2),
            vec!["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"]
        );
        // An interval job simply has no slots in the missing hour.
        let half_hourly = CronTimes::parse("0,30 * * * *", "Europe/Rome").unwrap();
        assert_eq!(
            local(&half_hourly, "2026-03-29T00:15:00Z", 3),
            vec![
                "2026-03-29T01:30:00+01:00",
                "2026-03-29T03:00:00+02:00",
                "2026-03-29T03:30:00+02:00"
            ]
        );
    }

    #[test]
    fn fall_back_runs_a_fixed_slot_once_and_an_interval_in_both_repeated_hours() {
        // Europe/Rome, 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice.
        let rome = CronTimes::parse("30 2 * * *", "Europe/Rome").unwrap();
        assert_eq!(
            local(&rome, "2026-10-24T12:00:00Z", 3),
            vec![
                "2026-10-25T02:30:00+02:00",
                "2026-10-26T02:30:00+01:00",
                "2026-10-27T02:30:00+01:00"
            ]
        );
        // America/New_York, 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:30 twice.
        let ny = CronTimes::parse("30 1 * * *", "America/New_York").unwrap();
        assert_eq!(
            local(&ny, "2026-10-31T12:00:00Z", 2),
            vec!["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]
        );
        let half_hourly = CronTimes::parse("0,30 * * * *", "America/New_York").unwrap();
        assert_eq!(
            local(&half_hourly, "2026-11-01T04:45:00Z", 5),
            vec![
                "2026-11-01T01:00:00-04:00",
                "2026-11-01T01:30:00-04:00",
                "2026-11-01T01:00:00-05:00",
                "2026-11-01T01:30:00-05:00",
                "2026-11-01T02:00:00-05:00",
            ]
        );
        let utc_slots = half_hourly.next_n(utc("2026-11-01T04:45:00Z"), 5);
        assert_eq!(
            utc_slots.iter().collect::<HashSet<_>>().len(),
            5,
            "no instant twice"
        );
    }

    async fn schedule(
        store: &Store,
        name: &str,
        overlap: OverlapPolicy,
        misfire: MisfirePolicy,
    ) -> super::Schedule {
        if store.script_by_name("s").await.unwrap().is_none() {
            store
                .create_script(NewScript {
                    name: "s".into(),
                    description: String::new(),
                    body: "Log('x');".into(),
                    retry_safe: false,
                })
                .await
                .unwrap();
        }
        store
            .create_schedule(NewSchedule {
                name: name.into(),
                script_name: "S".into(),
                cron: "* * * * * *".into(),
                time_zone: "UTC".into(),
                params: crate::JobParams::from_json(serde_json::json!({"k": "v"})).unwrap(),
                overlap,
                misfire,
                enabled: true,
            })
            .await
            .unwrap()
    }

    crate::both_dialects!(
        schedules_crud_checks_input_and_names_are_unique,
        |store| async move {
            let s = schedule(&store, "Nightly", OverlapPolicy::Allow, MisfirePolicy::Skip).await;
            assert_eq!(s.script_name, "s");
            assert_eq!(store.find_schedule("nightly").await.unwrap().id, s.id);
            let dup = store
                .create_schedule(NewSchedule {
                    name: "NIGHTLY".into(),
                    ..new_like(&s)
                })
                .await
                .unwrap_err();
            assert!(dup.to_string().contains("already exists"), "{dup}");
            let bad_tz = store
                .create_schedule(NewSchedule {
                    name: "x".into(),
                    time_zone: "Nowhere/City".into(),
                    ..new_like(&s)
                })
                .await;
            assert!(bad_tz.is_err());
            let bad_script = store
                .create_schedule(NewSchedule {
                    name: "y".into(),
                    script_name: "missing".into(),
                    ..new_like(&s)
                })
                .await;
            assert!(
                bad_script
                    .unwrap_err()
                    .to_string()
                    .contains("script not found")
            );
            let off = store.set_schedule_enabled("nightly", false).await.unwrap();
            assert!(!off.enabled);
            let on = store.set_schedule_enabled("nightly", true).await.unwrap();
            assert!(on.enabled && on.last_slot >= s.last_slot);
            assert_eq!(store.list_schedules().await.unwrap().len(), 1);
            store.delete_schedule("NIGHTLY").await.unwrap();
            assert!(store.find_schedule("nightly").await.is_err());
        }
    );

    crate::both_dialects!(
        update_schedule_checks_input_like_create_and_changes_each_field,
        |store| async move {
            let s = schedule(&store, "Edit", OverlapPolicy::Skip, MisfirePolicy::Skip).await;
            store
                .create_script(NewScript {
                    name: "other".into(),
                    description: String::new(),
                    body: "Log('y');".into(),
                    retry_safe: false,
                })
                .await
                .unwrap();
            let bad_cron = store
                .update_schedule(
                    "edit",
                    ScheduleUpdate {
                        cron: Some("61 * * * *".into()),
                        ..Default::default()
                    },
                    "n",
                )
                .await
                .unwrap_err();
            assert!(
                bad_cron.to_string().contains("invalid cron expression"),
                "{bad_cron}"
            );
            let bad_tz = store
                .update_schedule(
                    "edit",
                    ScheduleUpdate {
                        time_zone: Some("Nowhere/City".into()),
                        ..Default::default()
                    },
                    "n",
                )
                .await
                .unwrap_err();
            assert!(bad_tz.to_string().contains("unknown time zone"), "{bad_tz}");
            let bad_script = store
                .update_schedule(
                    "edit",
                    ScheduleUpdate {
                        script_name: Some("missing".into()),
                        ..Default::default()
                    },
                    "n",
                )
                .await
                .unwrap_err();
            assert!(bad_script.to_string().contains("script not found"));
            assert!(matches!(
                store
                    .update_schedule("nope", ScheduleUpdate::default(), "n")
                    .await
                    .unwrap_err(),
                crate::StoreError::NotFound { .. }
            ));
            let unchanged = store.find_schedule("edit").await.unwrap();
            assert_eq!(
                (unchanged.cron.as_str(), unchanged.time_zone.as_str()),
                ("* * * * * *", "UTC"),
                "a rejected edit changes nothing"
            );

            let edited = store
                .update_schedule(
                    "EDIT",
                    ScheduleUpdate {
                        script_name: Some("OTHER".into()),
                        cron: Some(" 30 9 * * MON-FRI ".into()),
                        time_zone: Some("Europe/Rome".into()),
                        params: Some(
                            crate::JobParams::from_json(serde_json::json!({"day": "mon"})).unwrap(),
                        ),
                        overlap: Some(OverlapPolicy::Queue),
                        misfire: Some(MisfirePolicy::RunOnce),
                        enabled: Some(false),
                    },
                    "n",
                )
                .await
                .unwrap();
            assert_eq!(edited.id, s.id);
            assert_eq!(edited.name, "Edit");
            assert_eq!(edited.script_name, "other");
            assert_eq!(edited.cron, "30 9 * * MON-FRI");
            assert_eq!(edited.time_zone, "Europe/Rome");
            assert_eq!(edited.params.to_json(), serde_json::json!({"day": "mon"}));
            assert_eq!(edited.overlap, OverlapPolicy::Queue);
            assert_eq!(edited.misfire, MisfirePolicy::RunOnce);
            assert!(!edited.enabled);
            assert!(edited.updated_at >= s.updated_at);
            assert_eq!(
                store.find_schedule(&s.id).await.unwrap().cron,
                "30 9 * * MON-FRI",
                "stored"
            );
            let reenabled = store
                .update_schedule(
                    "edit",
                    ScheduleUpdate {
                        enabled: Some(true),
                        ..Default::default()
                    },
                    "n",
                )
                .await
                .unwrap();
            assert!(reenabled.enabled);
            assert!(
                reenabled.last_slot >= edited.updated_at,
                "enabling by an edit moves the cursor to now, like enable"
            );
            assert_eq!(reenabled.cron, "30 9 * * MON-FRI", "kept");
        }
    );

    crate::both_dialects!(
        retiming_an_edit_decides_the_old_slots_once_and_starts_after_the_edit,
        |store| async move {
            let s = schedule(&store, "retime", OverlapPolicy::Allow, MisfirePolicy::Skip).await;
            // Let a few every-second slots come due without a scheduler deciding them.
            tokio::time::sleep(Duration::from_millis(1600)).await;
            let due_before_edit = s.times().unwrap().next_n(s.last_slot, 1);
            let edited = store
                .update_schedule(
                    "retime",
                    ScheduleUpdate {
                        cron: Some("0 0 1 1 *".into()),
                        ..Default::default()
                    },
                    "editor",
                )
                .await
                .unwrap();
            let slots = store.list_slots(&s.id, 100).await.unwrap();
            let old: Vec<_> = slots
                .iter()
                .filter(|slot| slot.slot_time <= edited.updated_at)
                .collect();
            assert!(
                !old.is_empty() && old.len() == slots.len(),
                "the old expression's due slots were decided, none after the edit: {slots:?}"
            );
            assert!(
                old.iter().any(|slot| slot.slot_time == due_before_edit[0]),
                "the first due slot is not lost"
            );
            assert!(
                old.iter()
                    .all(|slot| slot.status == SlotStatus::Fired && slot.node_id == "editor")
            );
            assert_eq!(
                store.schedule_active_jobs(&s.id).await.unwrap(),
                slots.len() as i64,
                "one job per slot"
            );
            assert_eq!(
                edited.last_slot, edited.updated_at,
                "the new expression starts after the edit"
            );
            // A scheduler pass that read the schedule before the edit fires nothing more
            // of the old expression, neither a settled slot nor a later one.
            for slot in [
                old[0].slot_time,
                edited.last_slot + chrono::Duration::seconds(1),
            ] {
                assert!(
                    store
                        .decide_slot(&s, slot, ON_TIME, "stale")
                        .await
                        .unwrap()
                        .is_none(),
                    "stale decision of {slot}"
                );
            }
            assert_eq!(
                store.list_slots(&s.id, 100).await.unwrap().len(),
                slots.len()
            );
            let next = edited
                .times()
                .unwrap()
                .next_after(edited.last_slot)
                .unwrap();
            assert_eq!(
                next.to_rfc3339(),
                format!("{}-01-01T00:00:00+00:00", next.format("%Y"))
            );
            let decided = store
                .decide_slot(&edited, next, ON_TIME, "n")
                .await
                .unwrap()
                .expect("the new expression's slot");
            assert_eq!(decided.status, SlotStatus::Fired);

            // An edit that keeps the timing keeps the cursor.
            let cursor = store.find_schedule(&s.id).await.unwrap().last_slot;
            let kept = store
                .update_schedule(
                    &s.id,
                    ScheduleUpdate {
                        params: Some(
                            crate::JobParams::from_json(serde_json::json!({"k": "w"})).unwrap(),
                        ),
                        ..Default::default()
                    },
                    "n",
                )
                .await
                .unwrap();
            assert_eq!(kept.last_slot, cursor);
            assert_eq!(kept.params.to_json(), serde_json::json!({"k": "w"}));
        }
    );

    crate::both_dialects!(
        leaving_overlap_queue_records_waiting_slots_skipped_so_the_schedule_is_not_stuck,
        |store| async move {
            let t = |i: i64| Utc.timestamp_opt(1_900_000_000 + i, 0).unwrap();
            let q = schedule(&store, "q", OverlapPolicy::Queue, MisfirePolicy::Skip).await;
            store.decide_slot(&q, t(1), ON_TIME, "n").await.unwrap();
            let waiting = store
                .decide_slot(&q, t(2), ON_TIME, "n")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(waiting.status, SlotStatus::Waiting);
            let allow = store
                .update_schedule(
                    "q",
                    ScheduleUpdate {
                        overlap: Some(OverlapPolicy::Allow),
                        ..Default::default()
                    },
                    "n",
                )
                .await
                .unwrap();
            let slots = store.list_slots(&q.id, 10).await.unwrap();
            let second = slots.iter().find(|s| s.slot_time == t(2)).unwrap();
            assert_eq!(second.status, SlotStatus::Skipped);
            assert!(
                second
                    .detail
                    .as_deref()
                    .unwrap()
                    .contains("from queue to allow")
            );
            let third = store
                .decide_slot(&allow, t(3), ON_TIME, "n")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                third.status,
                SlotStatus::Fired,
                "not stuck behind a waiting slot"
            );
        }
    );

    crate::both_dialects!(
        retention_purges_decided_slots_with_the_job_history,
        |store| async move {
            let t = |i: i64| Utc.timestamp_opt(1_900_000_000 + i, 0).unwrap();
            let lease = Duration::from_secs(30);
            // A job still running and a slot waiting behind it, both decided first.
            let q = schedule(&store, "q", OverlapPolicy::Queue, MisfirePolicy::Skip).await;
            let running = store.decide_slot(&q, t(1), ON_TIME, "n").await.unwrap();
            store.claim_job("n", lease).await.unwrap();
            let waiting = store.decide_slot(&q, t(2), ON_TIME, "n").await.unwrap();
            assert_eq!(waiting.unwrap().status, SlotStatus::Waiting);
            // Then a fired slot and a skipped one before the oldest ended job's end, and a
            // fired slot after it.
            let s = schedule(&store, "s", OverlapPolicy::Skip, MisfirePolicy::Skip).await;
            let mut ended = Vec::new();
            for i in [1, 3] {
                let fired = store.decide_slot(&s, t(i), ON_TIME, "n").await.unwrap();
                let job = fired.unwrap().job_id.unwrap();
                store.claim_job("n", lease).await.unwrap();
                if i == 1 {
                    let skipped = store.decide_slot(&s, t(2), ON_TIME, "n").await.unwrap();
                    assert_eq!(skipped.unwrap().status, SlotStatus::Skipped);
                }
                tokio::time::sleep(Duration::from_millis(3)).await;
                store
                    .finish_job(&job, "n", JobStatus::Succeeded, Some(0), None)
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(3)).await;
                ended.push(job);
            }
            let slot_times = |id: String| {
                let store = store.clone();
                async move {
                    let mut times: Vec<_> = store
                        .list_slots(&id, 100)
                        .await
                        .unwrap()
                        .into_iter()
                        .map(|slot| slot.slot_time)
                        .collect();
                    times.sort();
                    times
                }
            };

            assert_eq!(store.purge_jobs_beyond(1).await.unwrap(), 1);
            assert!(store.get_job(&ended[0]).await.is_err());
            assert_eq!(
                slot_times(s.id.clone()).await,
                vec![t(3)],
                "the slots decided by the end of the purged job went with it"
            );
            assert_eq!(
                slot_times(q.id.clone()).await,
                vec![t(1), t(2)],
                "a slot whose job runs and a waiting slot stay"
            );

            let tomorrow = crate::util::time_text(Utc::now() + chrono::Duration::days(1));
            assert_eq!(store.purge_jobs_before(&tomorrow).await.unwrap(), 1);
            assert!(slot_times(s.id.clone()).await.is_empty());
            assert_eq!(slot_times(q.id.clone()).await, vec![t(1), t(2)]);
            assert!(running.unwrap().job_id.is_some());
        }
    );

    fn new_like(s: &super::Schedule) -> NewSchedule {
        NewSchedule {
            name: s.name.clone(),
            script_name: s.script_name.clone(),
            cron: s.cron.clone(),
            time_zone: s.time_zone.clone(),
            params: s.params.clone(),
            overlap: s.overlap,
            misfire: s.misfire,
            enabled: true,
        }
    }

    crate::both_dialects!(
        racing_nodes_decide_each_slot_once_and_queue_one_job,
        |store| async move {
            let s = schedule(&store, "race", OverlapPolicy::Allow, MisfirePolicy::Skip).await;
            let slots: Vec<_> = (1..=5)
                .map(|i| Utc.timestamp_opt(1_900_000_000 + i, 0).unwrap())
                .collect();
            let mut tasks = Vec::new();
            for node in 0..6 {
                let store = store.clone();
                let s = s.clone();
                let slots = slots.clone();
                tasks.push(tokio::spawn(async move {
                    let mut won = Vec::new();
                    for slot in slots {
                        if let Some(decided) = store
                            .decide_slot(&s, slot, ON_TIME, &format!("n{node}"))
                            .await
                            .unwrap()
                        {
                            won.push(decided);
                        }
                    }
                    won
                }));
            }
            let mut won = Vec::new();
            for t in tasks {
                won.extend(t.await.unwrap());
            }
            assert_eq!(won.len(), 5, "each slot won exactly once: {won:?}");
            assert!(
                won.iter()
                    .all(|w| w.status == SlotStatus::Fired && w.job_id.is_some())
            );
            assert_eq!(
                store.schedule_active_jobs(&s.id).await.unwrap(),
                5,
                "one job per slot"
            );
            let history = store.list_slots(&s.id, 100).await.unwrap();
            assert_eq!(history.len(), 5);
            assert_eq!(
                store.find_schedule(&s.id).await.unwrap().last_slot,
                slots[4]
            );
            let job = store
                .get_job(won[0].job_id.as_ref().unwrap())
                .await
                .unwrap();
            assert_eq!(job.origin, "schedule");
            assert_eq!(job.params.to_json(), serde_json::json!({"k": "v"}));
        }
    );

    crate::both_dialects!(
        overlap_skip_queue_allow_and_misfire_policies,
        |store| async move {
            let t = |i: i64| Utc.timestamp_opt(1_900_000_000 + i, 0).unwrap();
            let skip = schedule(&store, "skip", OverlapPolicy::Skip, MisfirePolicy::Skip).await;
            let first = store
                .decide_slot(&skip, t(1), ON_TIME, "n")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(first.status, SlotStatus::Fired);
            let second = store
                .decide_slot(&skip, t(2), ON_TIME, "n")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                second.status,
                SlotStatus::Skipped,
                "the first job is still queued"
            );
            assert!(second.job_id.is_none());
            let missed = store
                .decide_slot(&skip, t(3), MISSED_NEWEST, "n")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(missed.status, SlotStatus::Missed);

            let queue = schedule(
                &store,
                "queue",
                OverlapPolicy::Queue,
                MisfirePolicy::RunOnce,
            )
            .await;
            let q1 = store
                .decide_slot(&queue, t(1), ON_TIME, "n")
                .await
                .unwrap()
                .unwrap();
            let q2 = store
                .decide_slot(&queue, t(2), ON_TIME, "n")
                .await
                .unwrap()
                .unwrap();
            let q3 = store
                .decide_slot(&queue, t(3), MISSED_NEWEST, "n")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                (q1.status, q2.status, q3.status),
                (SlotStatus::Fired, SlotStatus::Waiting, SlotStatus::Waiting)
            );
            assert!(
                store.fire_waiting_slot(&queue).await.unwrap().is_none(),
                "q1's job is still active"
            );
            // Run q1's job to its end (the queue hands out skip's job first, so claim until found).
            loop {
                let job = store
                    .claim_job("n", Duration::from_secs(30))
                    .await
                    .unwrap()
                    .unwrap();
                store
                    .finish_job(&job.id, "n", JobStatus::Succeeded, Some(0), None)
                    .await
                    .unwrap();
                if Some(&job.id) == q1.job_id.as_ref() {
                    break;
                }
            }
            let fired = store.fire_waiting_slot(&queue).await.unwrap().unwrap();
            assert_eq!(fired.slot_time, t(2), "oldest waiting slot first");
            assert_eq!(fired.status, SlotStatus::Fired);
            assert!(
                store.fire_waiting_slot(&queue).await.unwrap().is_none(),
                "one at a time"
            );

            let allow = schedule(
                &store,
                "allow",
                OverlapPolicy::Allow,
                MisfirePolicy::RunOnce,
            )
            .await;
            let a1 = store
                .decide_slot(&allow, t(1), ON_TIME, "n")
                .await
                .unwrap()
                .unwrap();
            let a2 = store
                .decide_slot(&allow, t(2), MISSED_NEWEST, "n")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                (a1.status, a2.status),
                (SlotStatus::Fired, SlotStatus::Fired)
            );
            let older = store
                .decide_slot(&allow, t(0), SlotTiming::Missed { newest: false }, "n")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                older.status,
                SlotStatus::Missed,
                "run-once runs only the newest missed slot"
            );
            assert_eq!(store.schedule_active_jobs(&allow.id).await.unwrap(), 2);
            assert!(
                store
                    .decide_slot(&allow, t(2), ON_TIME, "other")
                    .await
                    .unwrap()
                    .is_none(),
                "decided once"
            );

            store.delete_script("s").await.unwrap();
            let failed = store
                .decide_slot(&allow, t(9), ON_TIME, "n")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(failed.status, SlotStatus::Failed);
            assert!(failed.detail.unwrap().contains("no longer exists"));
        }
    );
}
