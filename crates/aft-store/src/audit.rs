//! The audit trail (migration 0060): one append-only record per change, hash-chained so that
//! an edited or deleted record is found by [`Store::verify_audit`].
//!
//! A record's hash is the SHA-256 of its canonical form: a JSON array of its fields in a
//! fixed order, ending with the hash of the record before it. Appends first update the one
//! row of `audit_chain`, which serializes them across processes and nodes (a row lock on
//! PostgreSQL, the write lock on SQLite) so the chain never forks.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::util::parse_time;
use crate::{Store, StoreError, StoreResult, now_text};

/// The hash before the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The action of the record retention writes after pruning (its detail names the last
/// pruned record and its hash).
pub const PRUNED_ACTION: &str = "audit.pruned";

/// Which records [`Store::prune_audit`] removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditCut {
    /// Those appended before this time (`audit-retention-days`).
    OlderThan(DateTime<Utc>),
    /// All but the newest this many, the checkpoint record the prune appends included
    /// (`audit-retention-max-records`; at least 1).
    BeyondNewest(u64),
}

/// A change to record: who, from where, what, and the state before and after it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditEntry {
    /// Admin user name, API key name, `local` for the CLI.
    pub actor: String,
    /// `admin`, `apikey`, `local` or `anonymous` (a failed sign-in).
    pub actor_kind: String,
    /// The caller's IP address; `local` for a CLI command writing the store directly.
    pub address: String,
    /// What happened: `<kind>.<verb>` (`script.updated`, `session.failed`, ...).
    pub action: String,
    /// The kind of thing changed (`script`, `secret`, `vfs`, `apikey`, ...).
    pub kind: String,
    /// Its name or id.
    pub target: String,
    /// Its state before (absent for a creation); never secret material.
    pub before: Option<Value>,
    /// Its state after (absent for a deletion); never secret material.
    pub after: Option<Value>,
    /// More about the change (the request, the command).
    pub detail: Option<Value>,
}

/// A stored audit record.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// When it was appended.
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: String,
    /// What kind of caller.
    pub actor_kind: String,
    /// From which address.
    pub address: String,
    /// What happened.
    pub action: String,
    /// The kind of thing changed.
    pub kind: String,
    /// Its name or id.
    pub target: String,
    /// State before.
    pub before: Option<Value>,
    /// State after.
    pub after: Option<Value>,
    /// More about the change.
    pub detail: Option<Value>,
    /// Hash of the record before.
    pub prev_hash: String,
    /// This record's hash.
    pub hash: String,
}

/// Which records to list (all conditions must hold).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this actor (case-insensitive).
    pub actor: Option<String>,
    /// Only this kind of thing.
    pub kind: Option<String>,
    /// Only actions starting with this (`script.` or `script.updated`).
    pub action: Option<String>,
    /// Only this target.
    pub target: Option<String>,
    /// Only records at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only records before this time.
    pub until: Option<DateTime<Utc>>,
    /// Only records with a larger sequence number (paging).
    pub after_seq: Option<i64>,
    /// At most this many (newest first when `newest_first`).
    pub limit: Option<i64>,
    /// Newest first instead of chain order.
    pub newest_first: bool,
}

/// What [`Store::verify_audit`] found.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditVerification {
    /// Records checked.
    pub records: u64,
    /// The sequence number of the newest record.
    pub head_seq: i64,
    /// The hash of the newest record: keep it elsewhere to detect a rewrite of the whole
    /// chain.
    pub head_hash: String,
    /// Records up to this one were removed by retention.
    pub pruned_through: i64,
    /// Every problem found, naming the record; empty when the chain is intact.
    pub problems: Vec<AuditProblem>,
}

/// One broken link of the chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditProblem {
    /// The record concerned.
    pub seq: i64,
    /// What is wrong with it.
    pub problem: String,
}

/// Text of an optional JSON value as stored (and hashed).
fn json_text(value: &Option<Value>) -> Option<String> {
    value.as_ref().map(|v| v.to_string())
}

/// The SHA-256 (hex) of a record's canonical form.
#[allow(clippy::too_many_arguments)]
fn record_hash(
    seq: i64,
    at: &str,
    entry_fields: [&str; 6],
    before: Option<&str>,
    after: Option<&str>,
    detail: Option<&str>,
    prev_hash: &str,
) -> String {
    let [actor, actor_kind, address, action, kind, target] = entry_fields;
    let canonical = json!([
        seq, at, actor, actor_kind, address, action, kind, target, before, after, detail, prev_hash
    ]);
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

/// Append `entries` in `tx`, after taking the chain's head row; returns their numbers.
pub(crate) async fn append_in(tx: &mut Tx<'_>, entries: &[AuditEntry]) -> StoreResult<Vec<i64>> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let n = entries.len() as i64;
    // The UPDATE comes first so this transaction holds the write lock (SQLite) or the row
    // lock (PostgreSQL) before it reads the head: concurrent appends wait here in turn.
    let row = sqlx::query(
        "UPDATE audit_chain SET head_seq = head_seq + $1 WHERE id = 1 RETURNING head_seq, head_hash",
    )
    .bind(n)
    .fetch_one(&mut **tx)
    .await?;
    let last: i64 = row.try_get("head_seq")?;
    let mut prev: String = row.try_get("head_hash")?;
    let mut seqs = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let seq = last - n + 1 + i as i64;
        let at = now_text();
        let (before, after, detail) = (
            json_text(&e.before),
            json_text(&e.after),
            json_text(&e.detail),
        );
        let hash = record_hash(
            seq,
            &at,
            [
                &e.actor,
                &e.actor_kind,
                &e.address,
                &e.action,
                &e.kind,
                &e.target,
            ],
            before.as_deref(),
            after.as_deref(),
            detail.as_deref(),
            &prev,
        );
        sqlx::query(
            "INSERT INTO audit_log (seq, at, actor, actor_kind, address, action, kind, target, \
             before_state, after_state, detail, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(seq)
        .bind(&at)
        .bind(&e.actor)
        .bind(&e.actor_kind)
        .bind(&e.address)
        .bind(&e.action)
        .bind(&e.kind)
        .bind(&e.target)
        .bind(before)
        .bind(after)
        .bind(detail)
        .bind(&prev)
        .bind(&hash)
        .execute(&mut **tx)
        .await?;
        prev = hash;
        seqs.push(seq);
    }
    sqlx::query("UPDATE audit_chain SET head_hash = $1 WHERE id = 1")
        .bind(&prev)
        .execute(&mut **tx)
        .await?;
    Ok(seqs)
}

fn record_from_row(row: &sqlx::any::AnyRow) -> StoreResult<AuditRecord> {
    let json = |column: &str| -> StoreResult<Option<Value>> {
        row.try_get::<Option<String>, _>(column)?
            .map(|t| {
                serde_json::from_str(&t).map_err(|e| {
                    StoreError::Invalid(format!("stored audit {column} is not JSON: {e}"))
                })
            })
            .transpose()
    };
    Ok(AuditRecord {
        seq: row.try_get("seq")?,
        at: parse_time("at", &row.try_get::<String, _>("at")?)?,
        actor: row.try_get("actor")?,
        actor_kind: row.try_get("actor_kind")?,
        address: row.try_get("address")?,
        action: row.try_get("action")?,
        kind: row.try_get("kind")?,
        target: row.try_get("target")?,
        before: json("before_state")?,
        after: json("after_state")?,
        detail: json("detail")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

const RECORD_COLUMNS: &str = "seq, at, actor, actor_kind, address, action, kind, target, \
     before_state, after_state, detail, prev_hash, hash";

impl Store {
    /// Append `entries` to the audit trail in one transaction (in this order); returns their
    /// sequence numbers.
    pub async fn append_audit(&self, entries: &[AuditEntry]) -> StoreResult<Vec<i64>> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.pool().begin().await?;
        let seqs = append_in(&mut tx, entries).await?;
        tx.commit().await?;
        Ok(seqs)
    }

    /// Audit records matching `filter`, in chain order (or newest first).
    pub async fn list_audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditRecord>> {
        // Conditions are appended in the order their placeholders are numbered.
        let mut sql = format!("SELECT {RECORD_COLUMNS} FROM audit_log WHERE 1 = 1");
        let mut binds: Vec<Bind> = Vec::new();
        let mut add = |cond: &str, value: Bind| {
            binds.push(value);
            sql.push_str(&format!(" AND {cond} ${}", binds.len()));
        };
        if let Some(actor) = &filter.actor {
            add("LOWER(actor) =", Bind::Text(actor.to_lowercase()));
        }
        if let Some(kind) = &filter.kind {
            add("kind =", Bind::Text(kind.clone()));
        }
        if let Some(action) = &filter.action {
            add(
                "action LIKE",
                Bind::Text(format!(
                    "{}%",
                    action.replace('\\', "").replace(['%', '_'], "")
                )),
            );
        }
        if let Some(target) = &filter.target {
            add("target =", Bind::Text(target.clone()));
        }
        if let Some(since) = filter.since {
            add("at >=", Bind::Text(crate::util::time_text(since)));
        }
        if let Some(until) = filter.until {
            add("at <", Bind::Text(crate::util::time_text(until)));
        }
        if let Some(after) = filter.after_seq {
            add("seq >", Bind::Int(after));
        }
        sql.push_str(if filter.newest_first {
            " ORDER BY seq DESC"
        } else {
            " ORDER BY seq"
        });
        if let Some(limit) = filter.limit {
            sql.push_str(&format!(" LIMIT {}", limit.clamp(0, 100_000)));
        }
        let mut query = sqlx::query(&sql);
        for b in binds {
            query = match b {
                Bind::Text(t) => query.bind(t),
                Bind::Int(i) => query.bind(i),
            };
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter().map(record_from_row).collect()
    }

    /// Walk the whole chain: every record must hash to its stored hash, link to the one
    /// before it, follow it without a gap, and the newest must be the chain's head.
    pub async fn verify_audit(&self) -> StoreResult<AuditVerification> {
        let chain = sqlx::query(
            "SELECT head_seq, head_hash, pruned_seq, pruned_hash FROM audit_chain WHERE id = 1",
        )
        .fetch_one(self.pool())
        .await?;
        let head_seq: i64 = chain.try_get("head_seq")?;
        let head_hash: String = chain.try_get("head_hash")?;
        let pruned_seq: i64 = chain.try_get("pruned_seq")?;
        let pruned_hash: String = chain.try_get("pruned_hash")?;
        let mut problems = Vec::new();
        let mut expected_seq = pruned_seq + 1;
        let mut prev = pruned_hash.clone();
        let mut records = 0u64;
        let mut last_checkpoint: Option<(i64, Value)> = None;
        // Page through the chain so a long one is not read into memory at once.
        let mut after = pruned_seq.min(i64::MAX - 1);
        loop {
            let rows = sqlx::query(&format!(
                "SELECT {RECORD_COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT 1000"
            ))
            .bind(after)
            .fetch_all(self.pool())
            .await?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                let seq: i64 = row.try_get("seq")?;
                after = seq;
                records += 1;
                let text = |c: &str| -> StoreResult<String> { Ok(row.try_get(c)?) };
                let opt = |c: &str| -> StoreResult<Option<String>> { Ok(row.try_get(c)?) };
                let stored_hash = text("hash")?;
                let prev_hash = text("prev_hash")?;
                if seq != expected_seq {
                    let what = if expected_seq + 1 == seq {
                        format!("record {expected_seq} is missing (deleted)")
                    } else {
                        format!(
                            "records {expected_seq} to {} are missing (deleted)",
                            seq - 1
                        )
                    };
                    problems.push(AuditProblem {
                        seq: expected_seq,
                        problem: what,
                    });
                } else if prev_hash != prev {
                    problems.push(AuditProblem {
                        seq: seq - 1,
                        problem: format!(
                            "record {} was changed: record {seq} holds another hash for it",
                            seq - 1
                        ),
                    });
                }
                let computed = record_hash(
                    seq,
                    &text("at")?,
                    [
                        &text("actor")?,
                        &text("actor_kind")?,
                        &text("address")?,
                        &text("action")?,
                        &text("kind")?,
                        &text("target")?,
                    ],
                    opt("before_state")?.as_deref(),
                    opt("after_state")?.as_deref(),
                    opt("detail")?.as_deref(),
                    &prev_hash,
                );
                if computed != stored_hash {
                    problems.push(AuditProblem {
                        seq,
                        problem: format!(
                            "record {seq} was edited: its content does not match its hash"
                        ),
                    });
                }
                if text("action")? == PRUNED_ACTION {
                    let detail = opt("detail")?
                        .and_then(|d| serde_json::from_str(&d).ok())
                        .unwrap_or(Value::Null);
                    last_checkpoint = Some((seq, detail));
                }
                expected_seq = seq + 1;
                prev = stored_hash;
            }
        }
        if expected_seq - 1 != head_seq {
            if expected_seq - 1 < head_seq {
                problems.push(AuditProblem {
                    seq: expected_seq,
                    problem: format!(
                        "records {expected_seq} to {head_seq} are missing (deleted): the chain's head is record {head_seq}"
                    ),
                });
            } else {
                problems.push(AuditProblem {
                    seq: head_seq,
                    problem: format!(
                        "the chain's head says record {head_seq} is the newest, but there are records after it"
                    ),
                });
            }
        } else if prev != head_hash {
            problems.push(AuditProblem {
                seq: head_seq,
                problem: format!(
                    "record {head_seq} was changed: the chain's head holds another hash for it"
                ),
            });
        }
        // Retention moves the chain's start; the checkpoint record it appends vouches for
        // the new start, so the start cannot be moved to hide a deletion.
        if pruned_seq > 0 {
            let vouched = last_checkpoint.as_ref().is_some_and(|(_, d)| {
                d["prunedThrough"].as_i64() == Some(pruned_seq)
                    && d["lastPrunedHash"].as_str() == Some(pruned_hash.as_str())
            });
            if !vouched {
                problems.push(AuditProblem {
                    seq: pruned_seq,
                    problem: format!(
                        "the chain starts after record {pruned_seq}, but no retention record says those were pruned"
                    ),
                });
            }
        }
        Ok(AuditVerification {
            records,
            head_seq,
            head_hash,
            pruned_through: pruned_seq,
            problems,
        })
    }

    /// Remove the records `cut` names (retention) and append one `audit.pruned` record
    /// carrying the number and hash of the last one removed, so the chain still verifies.
    /// Returns how many were removed.
    pub async fn prune_audit(&self, cut: AuditCut, by: &AuditEntry) -> StoreResult<u64> {
        if let AuditCut::BeyondNewest(keep) = cut {
            // The service asks every minute and is mostly under the cap: tell without a
            // write (the head is checked again under the lock).
            let chain = sqlx::query("SELECT head_seq, pruned_seq FROM audit_chain WHERE id = 1")
                .fetch_one(self.pool())
                .await?;
            let left =
                chain.try_get::<i64, _>("head_seq")? - chain.try_get::<i64, _>("pruned_seq")?;
            if left <= to_i64(keep) {
                return Ok(0);
            }
        }
        let mut tx = self.pool().begin().await?;
        // Lock the head first, as appends do.
        let chain = sqlx::query(
            "UPDATE audit_chain SET head_seq = head_seq WHERE id = 1 \
             RETURNING head_seq, pruned_seq",
        )
        .fetch_one(&mut *tx)
        .await?;
        let head_seq: i64 = chain.try_get("head_seq")?;
        let pruned_before: i64 = chain.try_get("pruned_seq")?;
        let last = match cut {
            AuditCut::OlderThan(cutoff) => {
                sqlx::query(
                    "SELECT seq, hash FROM audit_log WHERE seq = \
                     (SELECT MAX(seq) FROM audit_log WHERE at < $1)",
                )
                .bind(crate::util::time_text(cutoff))
                .fetch_optional(&mut *tx)
                .await?
            }
            // Records are removed only from the start of the chain, so those left are
            // numbered pruned + 1 ..= head: keep the newest keep - 1, the checkpoint
            // record makes keep.
            AuditCut::BeyondNewest(keep) if head_seq - pruned_before > to_i64(keep) => {
                sqlx::query(
                    "SELECT seq, hash FROM audit_log WHERE seq <= $1 ORDER BY seq DESC LIMIT 1",
                )
                .bind(head_seq - to_i64(keep) + 1)
                .fetch_optional(&mut *tx)
                .await?
            }
            AuditCut::BeyondNewest(_) => None,
        };
        let Some(last) = last else {
            tx.rollback().await?;
            return Ok(0);
        };
        let last_seq: i64 = last.try_get("seq")?;
        let last_hash: String = last.try_get("hash")?;
        let removed = sqlx::query("DELETE FROM audit_log WHERE seq <= $1")
            .bind(last_seq)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("UPDATE audit_chain SET pruned_seq = $1, pruned_hash = $2 WHERE id = 1")
            .bind(last_seq)
            .bind(&last_hash)
            .execute(&mut *tx)
            .await?;
        let mut record = by.clone();
        record.action = PRUNED_ACTION.into();
        record.kind = "audit".into();
        record.target = format!("1-{last_seq}");
        let mut detail = json!({
            "prunedThrough": last_seq,
            "lastPrunedHash": last_hash,
            "previouslyPrunedThrough": pruned_before,
            "removed": removed,
        });
        match cut {
            AuditCut::OlderThan(cutoff) => {
                detail["cutoff"] = json!(crate::util::time_text(cutoff));
            }
            AuditCut::BeyondNewest(keep) => detail["kept"] = json!(keep),
        }
        record.detail = Some(detail);
        append_in(&mut tx, &[record]).await?;
        tx.commit().await?;
        Ok(removed)
    }

    /// The state of every auditable thing of `kind`, by id, without secret material and
    /// without the fields the service changes by itself (last use of a key, a schedule's
    /// last slot, a watcher's current job). Comparing two snapshots tells what changed.
    pub async fn audit_snapshot(&self, kind: AuditKind) -> StoreResult<BTreeMap<String, Value>> {
        fn by_id<T: Serialize>(
            items: Vec<T>,
            id: impl Fn(&T) -> String,
        ) -> StoreResult<BTreeMap<String, Value>> {
            items
                .into_iter()
                .map(|item| {
                    let key = id(&item);
                    let mut value = serde_json::to_value(&item)
                        .map_err(|e| StoreError::Invalid(e.to_string()))?;
                    if let Value::Object(map) = &mut value {
                        for volatile in [
                            "lastUsedAt",
                            "lastSlot",
                            "currentJobId",
                            "failures",
                            "nextStartAt",
                        ] {
                            map.remove(volatile);
                        }
                    }
                    Ok((key, value))
                })
                .collect()
        }
        match kind {
            AuditKind::Script => by_id(self.list_scripts().await?, |s| s.name.clone()),
            AuditKind::Secret => by_id(self.list_secrets().await?, |s| s.name.clone()),
            AuditKind::Vfs => by_id(self.list_vfs_entries().await?, |v| v.name.clone()),
            AuditKind::ApiKey => by_id(self.list_api_keys().await?, |k| k.name.clone()),
            AuditKind::Schedule => by_id(self.list_schedules().await?, |s| s.name.clone()),
            AuditKind::Watcher => {
                // The service stamps a watcher each time it starts its script.
                let mut all = by_id(self.list_watcher_jobs().await?, |w| w.name.clone())?;
                for value in all.values_mut() {
                    if let Value::Object(map) = value {
                        map.remove("updatedAt");
                    }
                }
                Ok(all)
            }
            AuditKind::Setting => {
                let values = self.list_settings().await?;
                Ok(values
                    .into_iter()
                    .map(|s| (s.key.to_string(), json!({"key": s.key, "value": s.value})))
                    .collect())
            }
            AuditKind::Admin => by_id(self.admin_accounts().await?, |a| a.username.clone()),
        }
    }
}

/// How long a pending change is taken into account (a service that died between a change
/// and its record leaves its row behind).
const PENDING_FOR: chrono::Duration = chrono::Duration::minutes(10);

/// A key of PostgreSQL's advisory locks, for [`Store::lock_local_audit`].
const LOCAL_AUDIT_LOCK: i64 = 0x0061_6674_6175_6474;

/// Held while a CLI command writes the store and records what changed; see
/// [`Store::lock_local_audit`].
pub struct LocalAuditLock {
    conn: Option<sqlx::pool::PoolConnection<sqlx::Any>>,
}

impl LocalAuditLock {
    /// Let the next command go.
    pub async fn release(mut self) {
        if let Some(mut conn) = self.conn.take() {
            let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(LOCAL_AUDIT_LOCK)
                .execute(&mut *conn)
                .await;
        }
    }
}

impl Drop for LocalAuditLock {
    fn drop(&mut self) {
        // Not released (an error on the way): close the connection, which ends the lock,
        // rather than give it back to the pool still holding it.
        if let Some(conn) = self.conn.take() {
            drop(conn.detach());
        }
    }
}

impl Store {
    /// On PostgreSQL, wait until no other CLI command is between its two snapshots, and
    /// keep them waiting until released (a session advisory lock: it ends with the process).
    /// On SQLite this does nothing: the caller locks a file next to the database.
    pub async fn lock_local_audit(&self) -> StoreResult<LocalAuditLock> {
        if self.dialect() != crate::Dialect::Postgres {
            return Ok(LocalAuditLock { conn: None });
        }
        let mut conn = self.pool().acquire().await?;
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(LOCAL_AUDIT_LOCK)
            .execute(&mut *conn)
            .await?;
        Ok(LocalAuditLock { conn: Some(conn) })
    }

    /// Note that a change of `kind` to `target` (empty: not known yet) is under way; returns
    /// the id for [`Store::end_audit_intent`].
    pub async fn begin_audit_intent(&self, kind: &str, target: &str) -> StoreResult<String> {
        let id = crate::util::new_id();
        sqlx::query(
            "INSERT INTO audit_pending (id, kind, target, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&id)
        .bind(kind)
        .bind(target)
        .bind(now_text())
        .execute(self.pool())
        .await?;
        Ok(id)
    }

    /// The change is recorded (or failed): forget the intent, and any stale ones.
    pub async fn end_audit_intent(&self, id: &str) -> StoreResult<()> {
        let stale = crate::util::time_text(Utc::now() - PENDING_FOR);
        sqlx::query("DELETE FROM audit_pending WHERE id = $1 OR created_at < $2")
            .bind(id)
            .bind(stale)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The newest record's number (0 for none).
    pub async fn audit_head(&self) -> StoreResult<i64> {
        Ok(
            sqlx::query_scalar("SELECT head_seq FROM audit_chain WHERE id = 1")
                .fetch_one(self.pool())
                .await?,
        )
    }

    /// `(kind, target)` of the changes other writers recorded after record `seq` or are
    /// making now (an empty target: any thing of that kind).
    pub async fn audit_claims_since(&self, seq: i64) -> StoreResult<Vec<(String, String)>> {
        let since = crate::util::time_text(Utc::now() - PENDING_FOR);
        let rows = sqlx::query(
            "SELECT kind, target FROM audit_log WHERE seq > $1 \
             UNION SELECT kind, target FROM audit_pending WHERE created_at >= $2",
        )
        .bind(seq)
        .bind(since)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("kind")?, r.try_get("target")?)))
            .collect()
    }
}

/// The kinds of things [`Store::audit_snapshot`] covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AuditKind {
    /// Stored scripts (with their source).
    Script,
    /// Secrets: names and times only.
    Secret,
    /// VFS Library entries (credentials are secret names).
    Vfs,
    /// API keys (never the key).
    ApiKey,
    /// Schedules.
    Schedule,
    /// Watcher jobs.
    Watcher,
    /// Settings.
    Setting,
    /// Admin users: name, role, two-factor state, when the password last changed.
    Admin,
}

impl AuditKind {
    /// Every kind.
    pub const ALL: [AuditKind; 8] = [
        AuditKind::Script,
        AuditKind::Secret,
        AuditKind::Vfs,
        AuditKind::ApiKey,
        AuditKind::Schedule,
        AuditKind::Watcher,
        AuditKind::Setting,
        AuditKind::Admin,
    ];

    /// The name records carry in `kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::Script => "script",
            AuditKind::Secret => "secret",
            AuditKind::Vfs => "vfs",
            AuditKind::ApiKey => "apikey",
            AuditKind::Schedule => "schedule",
            AuditKind::Watcher => "watcher",
            AuditKind::Setting => "setting",
            AuditKind::Admin => "admin",
        }
    }
}

enum Bind {
    Text(String),
    Int(i64),
}

/// What changed between two snapshots of one kind: `(id, before, after)` for each id whose
/// state differs (a creation has no before, a deletion no after).
pub fn snapshot_changes(
    before: &BTreeMap<String, Value>,
    after: &BTreeMap<String, Value>,
) -> Vec<(String, Option<Value>, Option<Value>)> {
    let mut changes = Vec::new();
    for (id, old) in before {
        match after.get(id) {
            Some(new) if new == old => {}
            new => changes.push((id.clone(), Some(old.clone()), new.cloned())),
        }
    }
    for (id, new) in after {
        if !before.contains_key(id) {
            changes.push((id.clone(), None, Some(new.clone())));
        }
    }
    changes
}

/// `created`, `updated` or `deleted`, from which of before and after exist.
pub fn change_verb(before: &Option<Value>, after: &Option<Value>) -> &'static str {
    match (before, after) {
        (None, Some(_)) => "created",
        (Some(_), None) => "deleted",
        _ => "updated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(target: &str) -> AuditEntry {
        AuditEntry {
            actor: "t".into(),
            actor_kind: "local".into(),
            address: "local".into(),
            action: "script.created".into(),
            kind: "script".into(),
            target: target.into(),
            ..AuditEntry::default()
        }
    }

    crate::both_dialects!(
        a_count_cap_keeps_the_newest_and_stays_verifiable,
        |store| async move {
            let by = entry("");
            for i in 0..10 {
                store.append_audit(&[entry(&i.to_string())]).await.unwrap();
            }
            let cap = AuditCut::BeyondNewest(4);
            assert_eq!(store.prune_audit(cap, &by).await.unwrap(), 7);
            let left = |store: Store| async move {
                let all = store.list_audit(&AuditFilter::default()).await.unwrap();
                all.iter().map(|r| r.seq).collect::<Vec<_>>()
            };
            assert_eq!(left(store.clone()).await, [8, 9, 10, 11]);
            // At the cap, with its checkpoint record counted: nothing more goes.
            assert_eq!(store.prune_audit(cap, &by).await.unwrap(), 0);
            for i in 10..12 {
                store.append_audit(&[entry(&i.to_string())]).await.unwrap();
            }
            assert_eq!(store.prune_audit(cap, &by).await.unwrap(), 3);
            assert_eq!(left(store.clone()).await, [11, 12, 13, 14]);
            let verified = store.verify_audit().await.unwrap();
            assert!(verified.problems.is_empty(), "{:?}", verified.problems);
            assert_eq!(verified.pruned_through, 10);
            // By age: everything appended before now goes but a checkpoint record.
            let now = Utc::now() + chrono::Duration::seconds(1);
            assert_eq!(
                store
                    .prune_audit(AuditCut::OlderThan(now), &by)
                    .await
                    .unwrap(),
                4
            );
            assert_eq!(left(store.clone()).await, [15]);
            assert!(store.verify_audit().await.unwrap().problems.is_empty());
        }
    );
}
