//! What happens after a job ends (migration 0050): a stored script's retry policy,
//! notifications and chains, the durable notification outbox, and `settle_job`, which
//! records a finished job's follow-ups in one transaction.
//!
//! The policies are kept as JSON text: `aft-server` owns their shape and checks them; the
//! store only keeps them and answers the queries the follow-ups need. Settling is safe with
//! several nodes: the transaction first flips the job's `settled` flag from 0 to 1 and
//! rolls back if another node did it first, so a retry, a chained job or a notification is
//! made exactly once, and a node dying half-way leaves the job unsettled for the next pass.

use std::collections::HashSet;
use std::time::Duration;

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::jobs::{
    InList, JOB_COLUMNS, bind_queued_job, insert_queued_job_sql, job_from_row, time_after,
};
use crate::util::new_id;
use crate::{Dialect, Job, JobStatus, NewJob, Store, StoreError, StoreResult, now_text};

/// A script's retry policy, notifications and chains as stored (JSON, `None` = not set).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredPolicy {
    /// The retry policy.
    pub retry: Option<serde_json::Value>,
    /// The notifications.
    pub notify: Option<serde_json::Value>,
    /// The chains.
    pub chain: Option<serde_json::Value>,
}

/// A finished job's follow-ups, recorded together by [`Store::settle_job`].
#[derive(Debug, Clone, Default)]
pub struct Settlement {
    /// Jobs to queue: a retry (with its `not_before`) and chained scripts.
    pub jobs: Vec<NewJob>,
    /// Notifications to put in the outbox.
    pub notifications: Vec<NewNotification>,
    /// The script's last final outcome to remember (for "recovery"), when it has one now.
    pub outcome: Option<(String, JobStatus)>,
}

/// A notification to deliver.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    /// The job it is about.
    pub job_id: String,
    /// The job's script name, if any.
    pub script_name: Option<String>,
    /// `failure`, `success` or `recovery`.
    pub event: String,
    /// `webhook` or `email`.
    pub channel: String,
    /// The URL or the mail address.
    pub target: String,
    /// What to send: the webhook's JSON body, or `{"subject": ..., "body": ...}` for mail.
    pub payload: serde_json::Value,
}

/// Where a notification is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationState {
    /// Waiting for its (next) delivery attempt.
    Pending,
    /// A node is delivering it now.
    Sending,
    /// The peer accepted it.
    Delivered,
    /// Every attempt failed: the dead-letter list.
    Dead,
}

impl NotificationState {
    /// The state as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationState::Pending => "pending",
            NotificationState::Sending => "sending",
            NotificationState::Delivered => "delivered",
            NotificationState::Dead => "dead",
        }
    }

    /// Parse a stored or user-given state name.
    pub fn parse(text: &str) -> StoreResult<NotificationState> {
        [
            NotificationState::Pending,
            NotificationState::Sending,
            NotificationState::Delivered,
            NotificationState::Dead,
        ]
        .into_iter()
        .find(|s| s.as_str().eq_ignore_ascii_case(text.trim()))
        .ok_or_else(|| {
            StoreError::Invalid(format!(
                "unknown notification state {text:?}: use pending, sending, delivered or dead"
            ))
        })
    }
}

/// A notification as stored.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// Id (UUIDv7).
    pub id: String,
    /// The job it is about.
    pub job_id: String,
    /// The job's script name, if any.
    pub script_name: Option<String>,
    /// `failure`, `success` or `recovery`.
    pub event: String,
    /// `webhook` or `email`.
    pub channel: String,
    /// The URL or the mail address.
    pub target: String,
    /// What is sent.
    pub payload: serde_json::Value,
    /// Where it is in its life.
    pub state: NotificationState,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// When the next attempt is due (pending ones).
    pub next_at: String,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was made.
    pub created_at: String,
    /// When it last changed.
    pub updated_at: String,
    /// When the peer accepted it.
    pub delivered_at: Option<String>,
}

const NOTIFICATION_COLUMNS: &str = "id, job_id, script_name, event, channel, target, payload, \
    state, attempts, next_at, last_error, created_at, updated_at, delivered_at";

fn notification_from_row(row: &AnyRow) -> StoreResult<Notification> {
    let payload: String = row.try_get("payload")?;
    Ok(Notification {
        id: row.try_get("id")?,
        job_id: row.try_get("job_id")?,
        script_name: row.try_get("script_name")?,
        event: row.try_get("event")?,
        channel: row.try_get("channel")?,
        target: row.try_get("target")?,
        payload: serde_json::from_str(&payload)
            .map_err(|e| StoreError::Invalid(format!("stored notification payload: {e}")))?,
        state: NotificationState::parse(&row.try_get::<String, _>("state")?)?,
        attempts: row.try_get("attempts")?,
        next_at: row.try_get("next_at")?,
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        delivered_at: row.try_get("delivered_at")?,
    })
}

fn json_column(row: &AnyRow, column: &str) -> StoreResult<Option<serde_json::Value>> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|t| {
        serde_json::from_str(&t)
            .map_err(|e| StoreError::Invalid(format!("stored script policy {column}: {e}")))
    })
    .transpose()
}

fn policy_from_row(row: &AnyRow) -> StoreResult<StoredPolicy> {
    Ok(StoredPolicy {
        retry: json_column(row, "retry")?,
        notify: json_column(row, "notify")?,
        chain: json_column(row, "chain")?,
    })
}

impl Store {
    /// The retry policy, notifications and chains of script `script_id` (empty if none set).
    pub async fn script_policy(&self, script_id: &str) -> StoreResult<StoredPolicy> {
        let row =
            sqlx::query("SELECT retry, notify, chain FROM script_policies WHERE script_id = $1")
                .bind(script_id)
                .fetch_optional(self.pool())
                .await?;
        Ok(row
            .as_ref()
            .map(policy_from_row)
            .transpose()?
            .unwrap_or_default())
    }

    /// Every script's policy, by script id (scripts without one are left out).
    pub async fn script_policies(&self) -> StoreResult<Vec<(String, StoredPolicy)>> {
        let rows = sqlx::query("SELECT script_id, retry, notify, chain FROM script_policies")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("script_id")?, policy_from_row(row)?)))
            .collect()
    }

    /// Replace the policy of script `script_id`.
    pub async fn put_script_policy(
        &self,
        script_id: &str,
        policy: &StoredPolicy,
    ) -> StoreResult<()> {
        let text = |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string());
        sqlx::query(
            "INSERT INTO script_policies (script_id, retry, notify, chain, updated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (script_id) DO UPDATE SET \
             retry = excluded.retry, notify = excluded.notify, chain = excluded.chain, \
             updated_at = excluded.updated_at",
        )
        .bind(script_id)
        .bind(text(&policy.retry))
        .bind(text(&policy.notify))
        .bind(text(&policy.chain))
        .bind(now_text())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Record what a job's script set with `SetResult`.
    pub async fn set_job_result(&self, job_id: &str, result: &str) -> StoreResult<()> {
        sqlx::query("UPDATE jobs SET result = $1 WHERE id = $2")
            .bind(result)
            .bind(job_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Ended jobs whose follow-ups are not recorded yet, oldest first, with their watcher
    /// id (a watcher's runs are restarted by the watcher, never retried or chained).
    pub async fn unsettled_jobs(&self, limit: i64) -> StoreResult<Vec<(Job, Option<String>)>> {
        // One query for the whole page (not one more per job).
        let sql = format!(
            "SELECT {JOB_COLUMNS}, watcher_id FROM jobs WHERE settled = 0 \
             AND status IN ('succeeded', 'failed', 'halted', 'interrupted') ORDER BY seq LIMIT $1"
        );
        let rows = sqlx::query(&sql).bind(limit).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|row| Ok((job_from_row(row)?, row.try_get("watcher_id")?)))
            .collect()
    }

    /// The last final outcome recorded for script `script_id`, if any.
    pub async fn script_last_outcome(&self, script_id: &str) -> StoreResult<Option<JobStatus>> {
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM script_outcomes WHERE script_id = $1")
                .bind(script_id)
                .fetch_optional(self.pool())
                .await?;
        status.as_deref().map(JobStatus::parse).transpose()
    }

    /// Record job `job_id`'s follow-ups, unless another node already did: returns false
    /// (and changes nothing) then.
    pub async fn settle_job(&self, job_id: &str, settlement: &Settlement) -> StoreResult<bool> {
        let settled = self.settle(&[(job_id, settlement)]).await?;
        Ok(settled.first().copied().unwrap_or(false))
    }

    /// [`Store::settle_job`] for several jobs in one transaction (a settler's page of short
    /// jobs is one write); the answer says, job by job, whether this call recorded it.
    pub async fn settle_jobs(&self, jobs: &[(String, Settlement)]) -> StoreResult<Vec<bool>> {
        let jobs: Vec<(&str, &Settlement)> = jobs.iter().map(|(id, s)| (id.as_str(), s)).collect();
        self.settle(&jobs).await
    }

    /// Settle `jobs` in one transaction: the page is claimed in one statement (jobs another
    /// node settled are left out), and each script's last outcome written once.
    async fn settle(&self, jobs: &[(&str, &Settlement)]) -> StoreResult<Vec<bool>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.pool().begin().await?;
        let list = InList::new(jobs.iter().map(|(id, _)| *id), 1);
        let sql = format!(
            "UPDATE jobs SET settled = 1 WHERE id IN ({}) AND settled = 0 RETURNING id",
            list.placeholders
        );
        let claimed = list.bind(sqlx::query(&sql)).fetch_all(&mut *tx).await?;
        let claimed = claimed
            .iter()
            .map(|row| row.try_get::<String, _>(0))
            .collect::<Result<HashSet<_>, _>>()?;
        // Script id -> its outcome and job, the page's last one winning as it would have
        // had each job written its own.
        let mut outcomes: Vec<(&str, JobStatus, &str)> = Vec::new();
        let mut settled = Vec::with_capacity(jobs.len());
        for (job_id, settlement) in jobs {
            let ours = claimed.contains(*job_id);
            if ours {
                Store::queue_followups(&mut tx, settlement).await?;
                if let Some((script_id, status)) = &settlement.outcome {
                    outcomes.retain(|(id, _, _)| id != script_id);
                    outcomes.push((script_id, *status, job_id));
                }
            }
            settled.push(ours);
        }
        for (script_id, status, job_id) in outcomes {
            Store::remember_outcome(&mut tx, script_id, status, job_id).await?;
        }
        tx.commit().await?;
        Ok(settled)
    }

    /// Queue a settlement's jobs and notifications in `tx`.
    async fn queue_followups(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        settlement: &Settlement,
    ) -> StoreResult<()> {
        let now = now_text();
        let insert_job = insert_queued_job_sql();
        for job in &settlement.jobs {
            let id = new_id();
            bind_queued_job(sqlx::query(&insert_job), &id, job, &now)
                .execute(&mut **tx)
                .await?;
        }
        for n in &settlement.notifications {
            sqlx::query(
                "INSERT INTO notifications (id, job_id, script_name, event, channel, target, \
                 payload, state, attempts, next_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $8, $8)",
            )
            .bind(new_id())
            .bind(&n.job_id)
            .bind(n.script_name.clone())
            .bind(&n.event)
            .bind(&n.channel)
            .bind(&n.target)
            .bind(n.payload.to_string())
            .bind(&now)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// Remember `status` as script `script_id`'s last final outcome (for "recovery"), set by
    /// job `job_id`.
    async fn remember_outcome(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        script_id: &str,
        status: JobStatus,
        job_id: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO script_outcomes (script_id, status, job_id, at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (script_id) DO UPDATE SET status = excluded.status, \
             job_id = excluded.job_id, at = excluded.at",
        )
        .bind(script_id)
        .bind(status.as_str())
        .bind(job_id)
        .bind(now_text())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Take the next due notification for delivery by `node_id`: a pending one whose time
    /// has come, or one whose sender's `lease` ran out (its node died mid-delivery). Counts
    /// the attempt. `None` when nothing is due.
    pub async fn claim_notification(&self, lease: Duration) -> StoreResult<Option<Notification>> {
        let lock = match self.dialect() {
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        };
        let sql = format!(
            "UPDATE notifications SET state = 'sending', lease_until = $1, updated_at = $2, \
             attempts = attempts + 1 \
             WHERE seq = (SELECT seq FROM notifications WHERE (state = 'pending' AND next_at <= $3) \
                 OR (state = 'sending' AND lease_until < $4) ORDER BY next_at LIMIT 1{lock}) \
             AND state IN ('pending', 'sending') RETURNING {NOTIFICATION_COLUMNS}"
        );
        let now = now_text();
        let row = sqlx::query(&sql)
            .bind(time_after(lease))
            .bind(&now)
            .bind(&now)
            .bind(&now)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(notification_from_row).transpose()
    }

    /// Record that notification `id` was delivered.
    pub async fn notification_delivered(&self, id: &str) -> StoreResult<()> {
        let now = now_text();
        sqlx::query(
            "UPDATE notifications SET state = 'delivered', lease_until = NULL, last_error = NULL, \
             updated_at = $1, delivered_at = $1 WHERE id = $2",
        )
        .bind(&now)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Record a failed attempt of notification `id`: pending again after `retry_in`, or
    /// dead (`None`) when its attempts are used up.
    pub async fn notification_failed(
        &self,
        id: &str,
        error: &str,
        retry_in: Option<Duration>,
    ) -> StoreResult<()> {
        let (state, next_at) = match retry_in {
            Some(delay) => ("pending", time_after(delay)),
            None => ("dead", now_text()),
        };
        sqlx::query(
            "UPDATE notifications SET state = $1, next_at = $2, last_error = $3, lease_until = NULL, \
             updated_at = $4 WHERE id = $5",
        )
        .bind(state)
        .bind(next_at)
        .bind(error)
        .bind(now_text())
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Notifications, newest first, optionally only those in `state`.
    pub async fn list_notifications(
        &self,
        state: Option<NotificationState>,
        limit: i64,
    ) -> StoreResult<Vec<Notification>> {
        let limit = limit.clamp(1, 1000);
        let rows =
            match state {
                Some(state) => {
                    sqlx::query(&format!(
                        "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE state = $1 \
                     ORDER BY seq DESC LIMIT $2"
                    ))
                    .bind(state.as_str())
                    .bind(limit)
                    .fetch_all(self.pool())
                    .await?
                }
                None => sqlx::query(&format!(
                    "SELECT {NOTIFICATION_COLUMNS} FROM notifications ORDER BY seq DESC LIMIT $1"
                ))
                .bind(limit)
                .fetch_all(self.pool())
                .await?,
            };
        rows.iter().map(notification_from_row).collect()
    }

    /// One notification by id.
    pub async fn get_notification(&self, id: &str) -> StoreResult<Notification> {
        let row = sqlx::query(&format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| StoreError::NotFound {
            kind: "notification",
            name: id.to_string(),
        })?;
        notification_from_row(&row)
    }

    /// Delete delivered and dead notifications made before `cutoff` (RFC 3339), as job
    /// history is; returns how many.
    pub async fn purge_notifications_before(&self, cutoff: &str) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM notifications WHERE state IN ('delivered', 'dead') AND created_at < $1",
        )
        .bind(cutoff)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Queue dead notifications for delivery again with fresh attempts: the one with `id`,
    /// or every dead one. Returns the ids queued again.
    pub async fn retry_dead_notifications(&self, id: Option<&str>) -> StoreResult<Vec<String>> {
        if let Some(id) = id {
            let n = self.get_notification(id).await?;
            if n.state != NotificationState::Dead {
                return Err(StoreError::Refused(format!(
                    "notification {id} is {}, not dead: only dead ones are retried",
                    n.state.as_str()
                )));
            }
        }
        let now = now_text();
        let rows = match id {
            Some(id) => {
                sqlx::query(
                    "UPDATE notifications SET state = 'pending', attempts = 0, next_at = $1, \
                     updated_at = $2 WHERE state = 'dead' AND id = $3 RETURNING id",
                )
                .bind(&now)
                .bind(&now)
                .bind(id)
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query(
                    "UPDATE notifications SET state = 'pending', attempts = 0, next_at = $1, \
                     updated_at = $2 WHERE state = 'dead' RETURNING id",
                )
                .bind(&now)
                .bind(&now)
                .fetch_all(self.pool())
                .await?
            }
        };
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{NewNotification, NotificationState, Settlement};
    use crate::{JobStatus, NewJob};

    fn job(name: &str) -> NewJob {
        NewJob {
            script_name: Some(name.into()),
            source: "Log(1);".into(),
            origin: "api".into(),
            ..Default::default()
        }
    }

    crate::both_dialects!(
        a_page_of_jobs_settles_in_one_call_each_job_once,
        |store| async move {
            let mut ids = Vec::new();
            for name in ["a", "b", "c"] {
                let queued = store.enqueue_job(&job(name)).await.unwrap();
                store
                    .claim_job("n1", Duration::from_secs(30))
                    .await
                    .unwrap()
                    .unwrap();
                store
                    .finish_job(&queued.id, "n1", JobStatus::Succeeded, Some(0), None)
                    .await
                    .unwrap();
                ids.push(queued.id);
            }
            let unsettled = store.unsettled_jobs(10).await.unwrap();
            assert_eq!(
                unsettled.iter().map(|(j, _)| &j.id).collect::<Vec<_>>(),
                ids.iter().collect::<Vec<_>>(),
                "whole jobs, oldest first, from one page query"
            );
            assert_eq!(unsettled[0].0.status, JobStatus::Succeeded);
            // Another node settled the middle one first.
            assert!(
                store
                    .settle_job(&ids[1], &Settlement::default())
                    .await
                    .unwrap()
            );
            let chained = Settlement {
                jobs: vec![NewJob {
                    chained_from: Some(ids[0].clone()),
                    ..job("next")
                }],
                ..Default::default()
            };
            // Outcomes of one script: the page's last one written wins, and the job
            // settled elsewhere writes none.
            let outcome = |status| Some(("script-s".to_string(), status));
            let page = vec![
                (
                    ids[0].clone(),
                    Settlement {
                        outcome: outcome(JobStatus::Succeeded),
                        ..chained.clone()
                    },
                ),
                (
                    ids[1].clone(),
                    Settlement {
                        outcome: outcome(JobStatus::Halted),
                        ..chained
                    },
                ),
                (
                    ids[2].clone(),
                    Settlement {
                        outcome: outcome(JobStatus::Failed),
                        ..Default::default()
                    },
                ),
            ];
            assert_eq!(
                store.settle_jobs(&page).await.unwrap(),
                vec![true, false, true]
            );
            assert_eq!(
                store.script_last_outcome("script-s").await.unwrap(),
                Some(JobStatus::Failed)
            );
            let page = vec![(
                ids[2].clone(),
                Settlement {
                    outcome: outcome(JobStatus::Succeeded),
                    ..Default::default()
                },
            )];
            assert_eq!(store.settle_jobs(&page).await.unwrap(), vec![false]);
            assert_eq!(
                store.script_last_outcome("script-s").await.unwrap(),
                Some(JobStatus::Failed),
                "a page settled before changes no outcome"
            );
            assert!(store.unsettled_jobs(10).await.unwrap().is_empty());
            let next = store
                .claim_jobs("n1", Duration::from_secs(30), 10)
                .await
                .unwrap();
            assert_eq!(next.len(), 1, "the settled job's chain is queued once");
            assert_eq!(next[0].chained_from.as_deref(), Some(ids[0].as_str()));
        }
    );

    crate::both_dialects!(
        a_job_settles_once_and_a_retry_waits_for_its_time,
        |store| async move {
            let first = store.enqueue_job(&job("a")).await.unwrap();
            let claimed = store
                .claim_job("n1", Duration::from_secs(30))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(claimed.id, first.id);
            store
                .finish_job(&first.id, "n1", JobStatus::Failed, Some(1), Some("boom"))
                .await
                .unwrap();
            let unsettled = store.unsettled_jobs(10).await.unwrap();
            assert_eq!(unsettled.len(), 1);
            let settlement = Settlement {
                jobs: vec![NewJob {
                    retry_of: Some(first.id.clone()),
                    retry_attempt: 2,
                    not_before: Some(crate::time_after(Duration::from_secs(3600))),
                    ..job("a")
                }],
                notifications: vec![NewNotification {
                    job_id: first.id.clone(),
                    script_name: Some("a".into()),
                    event: "failure".into(),
                    channel: "webhook".into(),
                    target: "http://127.0.0.1:1/".into(),
                    payload: serde_json::json!({"text": "a failed"}),
                }],
                outcome: None,
            };
            assert!(store.settle_job(&first.id, &settlement).await.unwrap());
            assert!(
                !store.settle_job(&first.id, &settlement).await.unwrap(),
                "a second node settling the same job changes nothing"
            );
            assert!(store.unsettled_jobs(10).await.unwrap().is_empty());
            assert!(
                store
                    .claim_job("n1", Duration::from_secs(30))
                    .await
                    .unwrap()
                    .is_none(),
                "a retry is not claimed before its time"
            );
            let notes = store.list_notifications(None, 10).await.unwrap();
            assert_eq!(notes.len(), 1);

            let n = store
                .claim_notification(Duration::from_secs(30))
                .await
                .unwrap()
                .unwrap();
            assert!(
                store
                    .claim_notification(Duration::from_secs(30))
                    .await
                    .unwrap()
                    .is_none()
            );
            store
                .notification_failed(&n.id, "refused", None)
                .await
                .unwrap();
            let dead = store
                .list_notifications(Some(NotificationState::Dead), 10)
                .await
                .unwrap();
            assert_eq!(dead.len(), 1);
            assert_eq!(dead[0].last_error.as_deref(), Some("refused"));
            assert_eq!(
                store.retry_dead_notifications(None).await.unwrap(),
                vec![n.id.clone()]
            );
            let again = store
                .claim_notification(Duration::from_secs(30))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                again.attempts, 1,
                "a retried notification starts its attempts over"
            );
            store.notification_delivered(&again.id).await.unwrap();
            assert!(store.retry_dead_notifications(Some(&n.id)).await.is_err());
            assert_eq!(
                store
                    .purge_notifications_before(&crate::time_before(Duration::from_secs(60)))
                    .await
                    .unwrap(),
                0
            );
            assert_eq!(
                store
                    .purge_notifications_before(&crate::time_after(Duration::from_secs(60)))
                    .await
                    .unwrap(),
                1
            );
        }
    );
}
