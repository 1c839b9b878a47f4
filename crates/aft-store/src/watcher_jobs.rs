//! Watcher jobs: stored scripts that run as long as the service runs.
//!
//! Each run is an ordinary job (with `watcher_id` set, `retry_safe`, so a dead node's lease
//! runs out and another node claims it again). Which job is a watcher's current run is the
//! `current_job_id` column, changed only inside a transaction that first locks the watcher
//! row: two nodes supervising the same watcher start one run, never two.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::jobs::script_version_of;
use crate::util::{
    conflict_or_db, int_bool, name_key, new_id, parse_opt_time, parse_time, time_text,
    validate_name,
};
use crate::{JobParams, Store, StoreError, StoreResult, now_text};

/// A run that lasted at least this long resets the failure count (backoff starts over).
pub const WATCHER_STABLE_AFTER: Duration = Duration::from_secs(60);
/// The longest wait between two runs of a failing watcher.
pub const WATCHER_MAX_BACKOFF: Duration = Duration::from_secs(60);

/// What to create.
#[derive(Debug, Clone)]
pub struct NewWatcherJob {
    /// Unique name (case-insensitive).
    pub name: String,
    /// The stored script to run (by name, resolved at each start).
    pub script_name: String,
    /// Parameters: a flat JSON object.
    pub params: JobParams,
}

/// A watcher job as stored.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WatcherJob {
    /// UUIDv7 id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The stored script it runs.
    pub script_name: String,
    /// Parameters of each run.
    pub params: JobParams,
    /// Whether it should run.
    pub enabled: bool,
    /// The job of its current (or last) run.
    pub current_job_id: Option<String>,
    /// Failed runs in a row (drives the backoff).
    pub failures: i64,
    /// Not started again before this time (backoff after a failure).
    pub next_start_at: DateTime<Utc>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

const WATCHER_COLUMNS: &str = "id, name, script_name, params, enabled, current_job_id, failures, \
    next_start_at, created_at, updated_at";

fn watcher_from_row(row: &AnyRow) -> StoreResult<WatcherJob> {
    let params: String = row.try_get("params")?;
    Ok(WatcherJob {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        script_name: row.try_get("script_name")?,
        params: JobParams::parse(&params)
            .map_err(|e| StoreError::Invalid(format!("stored watcher params: {e}")))?,
        enabled: int_bool(row.try_get("enabled")?),
        current_job_id: row.try_get("current_job_id")?,
        failures: row.try_get("failures")?,
        next_start_at: parse_time("next_start_at", &row.try_get::<String, _>("next_start_at")?)?,
        created_at: parse_time("created_at", &row.try_get::<String, _>("created_at")?)?,
        updated_at: parse_time("updated_at", &row.try_get::<String, _>("updated_at")?)?,
    })
}

/// The wait before the next run after `failures` failed runs in a row: 1 s, 2 s, 4 s, ...
/// up to [`WATCHER_MAX_BACKOFF`].
pub fn watcher_backoff(failures: i64) -> Duration {
    if failures <= 0 {
        return Duration::ZERO;
    }
    let secs = 1u64 << (failures - 1).clamp(0, 16);
    Duration::from_secs(secs).min(WATCHER_MAX_BACKOFF)
}

impl Store {
    /// Register a watcher job; it starts at the next supervisor pass of any node.
    pub async fn create_watcher_job(&self, new: NewWatcherJob) -> StoreResult<WatcherJob> {
        validate_name("watcher", &new.name)?;
        let script = self
            .script_by_name(&new.script_name)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: "script",
                name: new.script_name.clone(),
            })?;
        let now = now_text();
        let sql = format!(
            "INSERT INTO watcher_jobs (id, name, name_key, script_name, params, enabled, failures, \
             next_start_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 1, 0, $6, $7, $8) \
             RETURNING {WATCHER_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(new_id())
            .bind(&new.name)
            .bind(name_key(&new.name))
            .bind(&script.name)
            .bind(new.params.to_json().to_string())
            .bind(&now)
            .bind(&now)
            .bind(&now)
            .fetch_one(self.pool())
            .await
            .map_err(conflict_or_db("watcher", &new.name))?;
        watcher_from_row(&row)
    }

    /// Every watcher job, by name.
    pub async fn list_watcher_jobs(&self) -> StoreResult<Vec<WatcherJob>> {
        let sql = format!("SELECT {WATCHER_COLUMNS} FROM watcher_jobs ORDER BY name_key");
        let rows = sqlx::query(&sql).fetch_all(self.pool()).await?;
        rows.iter().map(watcher_from_row).collect()
    }

    /// One watcher job by id or name (case-insensitive).
    pub async fn find_watcher_job(&self, id_or_name: &str) -> StoreResult<WatcherJob> {
        let row = self
            .row_by_id_or_name("watcher_jobs", WATCHER_COLUMNS, "watcher", id_or_name)
            .await?;
        watcher_from_row(&row)
    }

    /// Delete a watcher job and ask its current run to halt (its `WaitForHaltSignal()`
    /// returns). Returns the halted run's job id, if one was active.
    pub async fn delete_watcher_job(&self, id_or_name: &str) -> StoreResult<Option<String>> {
        let watcher = self.find_watcher_job(id_or_name).await?;
        sqlx::query("DELETE FROM watcher_jobs WHERE id = $1")
            .bind(&watcher.id)
            .execute(self.pool())
            .await?;
        match &watcher.current_job_id {
            Some(job_id) => {
                let job = self.request_halt(job_id).await?;
                Ok((!job.status.is_final() || job.halt_requested).then(|| job_id.clone()))
            }
            None => Ok(None),
        }
    }

    /// Enable or disable a watcher job. Disabling asks its current run to halt (its node
    /// sees the request within a second, wherever it runs) and no node starts another;
    /// enabling lets the next supervisor pass of any node start a fresh run at once, with
    /// the failure count and backoff reset. Returns the watcher and, when disabling, the
    /// run asked to halt (to raise its halt flag at once if it runs on this node).
    pub async fn set_watcher_enabled(
        &self,
        id_or_name: &str,
        enabled: bool,
    ) -> StoreResult<(WatcherJob, Option<String>)> {
        let watcher = self.find_watcher_job(id_or_name).await?;
        let now = now_text();
        if enabled {
            // A run that already ended (the halted one) is history, not a failure: forget
            // it, so the next run starts without backoff. One still stopping is kept, so
            // no second run starts beside it.
            let ended = match &watcher.current_job_id {
                Some(job_id) => match self.get_job(job_id).await {
                    Ok(job) => job.status.is_final(),
                    Err(StoreError::NotFound { .. }) => true,
                    Err(e) => return Err(e),
                },
                None => false,
            };
            sqlx::query(
                "UPDATE watcher_jobs SET enabled = 1, failures = 0, next_start_at = $1, \
                 updated_at = $2, current_job_id = CASE WHEN $3 = 1 AND current_job_id = $4 \
                 THEN NULL ELSE current_job_id END WHERE id = $5",
            )
            .bind(&now)
            .bind(&now)
            .bind(i64::from(ended))
            .bind(watcher.current_job_id.clone().unwrap_or_default())
            .bind(&watcher.id)
            .execute(self.pool())
            .await?;
            return Ok((self.find_watcher_job(&watcher.id).await?, None));
        }
        sqlx::query("UPDATE watcher_jobs SET enabled = 0, updated_at = $1 WHERE id = $2")
            .bind(&now)
            .bind(&watcher.id)
            .execute(self.pool())
            .await?;
        // Read the current run after the flag is down: a run started just before is seen.
        let watcher = self.find_watcher_job(&watcher.id).await?;
        let halted = match &watcher.current_job_id {
            Some(job_id) => {
                let job = self.request_halt(job_id).await?;
                (!job.status.is_final()).then(|| job_id.clone())
            }
            None => None,
        };
        Ok((watcher, halted))
    }

    /// Start watcher `id`'s next run, if it should run and none
    /// is active: accounts for how the previous run ended (a failure adds backoff, a run cut
    /// short by a stopping or dying node restarts at once) and queues a new job. Returns the
    /// new job's id; `None` when a run is active, the backoff has not passed, or another node
    /// started it.
    pub async fn start_watcher_run(&self, id: &str) -> StoreResult<Option<String>> {
        // Read the script before the transaction: on SQLite the transaction holds the one
        // write lock, and waiting inside it for another pooled connection could deadlock.
        let script_name = match self.find_watcher_job(id).await {
            Ok(w) => w.script_name,
            Err(StoreError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let script = self.script_by_name(&script_name).await?;
        let mut tx = self.pool().begin().await?;
        let now = Utc::now();
        // Lock the watcher row first (the SQLite write lock / a PostgreSQL row lock).
        let locked = sqlx::query("UPDATE watcher_jobs SET failures = failures WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if locked.rows_affected() == 0 {
            return Ok(None);
        }
        let sql = format!("SELECT {WATCHER_COLUMNS} FROM watcher_jobs WHERE id = $1");
        let watcher = watcher_from_row(&sqlx::query(&sql).bind(id).fetch_one(&mut *tx).await?)?;
        if !watcher.enabled {
            tx.commit().await?;
            return Ok(None);
        }
        let mut failures = watcher.failures;
        let mut next_start = watcher.next_start_at;
        if let Some(job_id) = &watcher.current_job_id {
            let row = sqlx::query("SELECT status, started_at, finished_at FROM jobs WHERE id = $1")
                .bind(job_id)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(row) = row {
                let status: String = row.try_get("status")?;
                if status == "queued" || status == "running" {
                    tx.commit().await?;
                    return Ok(None);
                }
                let started = parse_opt_time("started_at", row.try_get("started_at")?)?;
                let finished = parse_opt_time("finished_at", row.try_get("finished_at")?)?;
                let ran = match (started, finished) {
                    (Some(s), Some(f)) => (f - s).to_std().unwrap_or_default(),
                    _ => Duration::ZERO,
                };
                if ran >= WATCHER_STABLE_AFTER {
                    failures = 0;
                }
                if status == "interrupted" {
                    // The service stopped or its node died: not the script's fault.
                    next_start = now;
                } else {
                    failures += 1;
                    let finished = finished.unwrap_or(now);
                    next_start = finished
                        + chrono::Duration::from_std(watcher_backoff(failures)).unwrap_or_default();
                }
            }
            sqlx::query(
                "UPDATE watcher_jobs SET current_job_id = NULL, failures = $1, next_start_at = $2, \
                 updated_at = $3 WHERE id = $4",
            )
            .bind(failures)
            .bind(time_text(next_start))
            .bind(now_text())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        if next_start > now {
            tx.commit().await?;
            return Ok(None);
        }
        let Some(script) = script else {
            tx.commit().await?;
            return Err(StoreError::NotFound {
                kind: "script",
                name: watcher.script_name,
            });
        };
        let job_id = new_id();
        let insert_job = format!(
            "INSERT INTO jobs (id, status, script_id, script_name, source, params, origin, retry_safe, \
             created_at, watcher_id, started_by, script_version) \
             VALUES ($1, 'queued', $2, $3, $4, $5, 'watcher', 1, $6, $7, $8, {})",
            script_version_of("$2", "$4")
        );
        sqlx::query(&insert_job)
            .bind(&job_id)
            .bind(&script.id)
            .bind(&script.name)
            .bind(&script.body)
            .bind(watcher.params.to_json().to_string())
            .bind(now_text())
            .bind(id)
            .bind(format!("watcher {}", watcher.name))
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE watcher_jobs SET current_job_id = $1, updated_at = $2 WHERE id = $3")
            .bind(&job_id)
            .bind(now_text())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(job_id))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{NewWatcherJob, WatcherJob, watcher_backoff};
    use crate::{JobStatus, NewScript, Store};

    /// A script `w` that waits to be halted, and a watcher job `name` that runs it.
    async fn waiting_watcher(store: &Store, name: &str) -> WatcherJob {
        store
            .create_script(NewScript {
                name: "w".into(),
                description: String::new(),
                body: "WaitForHaltSignal();".into(),
                retry_safe: false,
            })
            .await
            .unwrap();
        store
            .create_watcher_job(NewWatcherJob {
                name: name.into(),
                script_name: "w".into(),
                params: crate::JobParams::default(),
            })
            .await
            .unwrap()
    }

    crate::both_dialects!(
        disabled_watcher_halts_its_run_starts_none_and_restarts_at_once_when_enabled,
        |store| async move {
            let w = waiting_watcher(&store, "Inbox").await;
            assert!(w.enabled);
            let first = store.start_watcher_run(&w.id).await.unwrap().unwrap();
            store
                .claim_job("n1", Duration::from_secs(30))
                .await
                .unwrap()
                .unwrap();

            let (off, halted) = store.set_watcher_enabled("INBOX", false).await.unwrap();
            assert!(!off.enabled);
            assert_eq!(halted.as_deref(), Some(first.as_str()));
            assert_eq!(
                store.halt_requests("n1").await.unwrap(),
                vec![first.clone()],
                "the node running it sees the halt request"
            );
            store
                .finish_job(&first, "n1", JobStatus::Halted, None, Some("halted"))
                .await
                .unwrap();
            assert!(
                store.start_watcher_run(&w.id).await.unwrap().is_none(),
                "no run while disabled"
            );
            let (again, none) = store.set_watcher_enabled("inbox", false).await.unwrap();
            assert!(
                !again.enabled && none.is_none(),
                "disabling twice is harmless"
            );

            let (on, nothing) = store.set_watcher_enabled(&w.id, true).await.unwrap();
            assert!(on.enabled && nothing.is_none());
            assert_eq!(on.failures, 0);
            assert_eq!(on.current_job_id, None, "the halted run is not a failure");
            let second = store
                .start_watcher_run(&w.id)
                .await
                .unwrap()
                .expect("a fresh run at once, no backoff");
            assert_ne!(second, first);
            assert_eq!(store.find_watcher_job(&w.id).await.unwrap().failures, 0);

            // Disabling while the run is still queued halts it before it starts.
            let (_, queued) = store.set_watcher_enabled("inbox", false).await.unwrap();
            assert_eq!(queued.as_deref(), None, "a queued run is halted at once");
            assert_eq!(
                store.get_job(&second).await.unwrap().status,
                JobStatus::Halted
            );
            assert!(matches!(
                store.set_watcher_enabled("nope", true).await.unwrap_err(),
                crate::StoreError::NotFound { .. }
            ));
        }
    );

    #[test]
    fn backoff_doubles_up_to_a_minute() {
        let secs: Vec<u64> = (0..9).map(|f| watcher_backoff(f).as_secs()).collect();
        assert_eq!(secs, vec![0, 1, 2, 4, 8, 16, 32, 60, 60]);
    }

    crate::both_dialects!(
        watcher_runs_once_backs_off_after_failure_and_restarts_after_interruption,
        |store| async move {
            let w = waiting_watcher(&store, "Mon").await;
            let mut started = Vec::new();
            for _ in 0..4 {
                let store = store.clone();
                let id = w.id.clone();
                started.push(tokio::spawn(async move {
                    store.start_watcher_run(&id).await.unwrap()
                }));
            }
            let mut runs = Vec::new();
            for t in started {
                runs.extend(t.await.unwrap());
            }
            assert_eq!(runs.len(), 1, "one run across racing supervisors");
            let job = store
                .claim_job("n1", Duration::from_secs(30))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(job.id, runs[0]);
            assert!(
                job.retry_safe,
                "a dead node's run is claimed again elsewhere"
            );
            assert!(
                store.start_watcher_run(&w.id).await.unwrap().is_none(),
                "still running"
            );

            store
                .finish_job(&job.id, "n1", JobStatus::Failed, Some(1), Some("boom"))
                .await
                .unwrap();
            assert!(
                store.start_watcher_run(&w.id).await.unwrap().is_none(),
                "backing off"
            );
            let after = store.find_watcher_job("mon").await.unwrap();
            assert_eq!(after.failures, 1);
            assert!(after.next_start_at > chrono::Utc::now());
            tokio::time::sleep(Duration::from_millis(1100)).await;
            let second = store
                .start_watcher_run(&w.id)
                .await
                .unwrap()
                .expect("restarted after backoff");

            store
                .claim_job("n1", Duration::from_secs(30))
                .await
                .unwrap()
                .unwrap();
            store
                .interrupt_node_jobs("n1", "service stopped")
                .await
                .unwrap();
            let third = store
                .start_watcher_run(&w.id)
                .await
                .unwrap()
                .expect("restarted at once after an interruption");
            assert_ne!(second, third);
            assert_eq!(store.find_watcher_job(&w.id).await.unwrap().failures, 1);

            store
                .claim_job("n2", Duration::from_secs(30))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                store.delete_watcher_job("MON").await.unwrap(),
                Some(third.clone())
            );
            assert!(store.get_job(&third).await.unwrap().halt_requested);
            assert!(store.list_watcher_jobs().await.unwrap().is_empty());
        }
    );
}
