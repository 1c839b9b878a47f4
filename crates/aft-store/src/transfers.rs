//! Transfer records: one row per file a job's transfer handled.

use serde::Serialize;
use sqlx::Row;

use crate::{Store, StoreResult, now_text};

/// One file a job moved (or failed to).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Transfer {
    /// When it was recorded.
    pub at: String,
    /// Where the file came from (`backend:path`).
    pub source: String,
    /// Where it went.
    pub target: String,
    /// Bytes moved.
    pub bytes: i64,
    /// The content's digest in hex, if computed.
    pub hash: Option<String>,
    /// Which digest `hash` is: `blake3` or `sha256` (records from before the column are
    /// SHA-256).
    pub hash_algo: Option<String>,
    /// Wall time in milliseconds.
    pub millis: i64,
    /// Attempts it took.
    pub attempts: i64,
    /// `ok`, `skipped` or the error.
    pub outcome: String,
}

/// What to record for one file (the engine's `TransferRecord`, in store types).
#[derive(Debug, Clone)]
pub struct NewTransfer {
    /// Where the file came from.
    pub source: String,
    /// Where it went.
    pub target: String,
    /// Bytes moved.
    pub bytes: i64,
    /// The digest in hex, if computed.
    pub hash: Option<String>,
    /// Which digest `hash` is.
    pub hash_algo: Option<String>,
    /// Wall time in milliseconds.
    pub millis: i64,
    /// Attempts it took.
    pub attempts: i64,
    /// `ok`, `skipped` or the error.
    pub outcome: String,
}

impl Store {
    /// Record files a job's transfer handled, in order, in one transaction: a folder of
    /// 5,000 small files is one commit, not 5,000.
    pub async fn record_transfers(&self, job_id: &str, ts: &[NewTransfer]) -> StoreResult<()> {
        let mut tx = self.pool().begin().await?;
        let at = now_text();
        for t in ts {
            sqlx::query(
                "INSERT INTO job_transfers (job_id, at, source, target, bytes, hash, hash_algo, millis, attempts, outcome) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(job_id)
            .bind(&at)
            .bind(&t.source)
            .bind(&t.target)
            .bind(t.bytes)
            .bind(t.hash.clone())
            .bind(t.hash_algo.clone())
            .bind(t.millis)
            .bind(t.attempts)
            .bind(&t.outcome)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every transfer record of a job, in order.
    pub async fn list_transfers(&self, job_id: &str) -> StoreResult<Vec<Transfer>> {
        let rows = sqlx::query(
            "SELECT at, source, target, bytes, hash, hash_algo, millis, attempts, outcome FROM job_transfers \
             WHERE job_id = $1 ORDER BY id",
        )
        .bind(job_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Transfer {
                    at: r.try_get("at")?,
                    source: r.try_get("source")?,
                    target: r.try_get("target")?,
                    bytes: r.try_get("bytes")?,
                    hash: r.try_get("hash")?,
                    hash_algo: r.try_get("hash_algo")?,
                    millis: r.try_get("millis")?,
                    attempts: r.try_get("attempts")?,
                    outcome: r.try_get("outcome")?,
                })
            })
            .collect()
    }
}
