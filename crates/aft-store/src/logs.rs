//! Job log lines: appended in batches by the node running the job, read from a line number
//! by anyone (a live tail from any node polls with the last line it has seen).

use serde::Serialize;
use sqlx::Row;

use crate::{Store, StoreResult};

/// One stored log line of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    /// Line number within the job, from 1, in the order written.
    pub line: i64,
    /// When it was written (RFC 3339).
    pub at: String,
    /// `debug`, `info`, `warn` or `error`.
    pub level: String,
    /// The text.
    pub message: String,
}

/// Rows of the multi-row `INSERT`s that store log lines: a batch is cut into statements of
/// these sizes only, largest first (300 lines: 128 + 128 + 32 + 8 + 4). Each pooled
/// connection keeps the statements it ran prepared (sqlx caches 100 a connection), and a
/// prepared insert holds about 1 KiB a row. With one statement per batch size (1 to 200
/// rows, as before) every new size added one to the caches: the service grew by 11 MiB
/// of them through the 20-minute soak (heaptrack), up to ~37 MiB for the pool
/// (tests/log_statements.rs). Powers of two keep it to 8 statements; 128 rows x 5 binds
/// stays far below either dialect's bind limit.
const LOG_CHUNK_SIZES: [usize; 8] = [128, 64, 32, 16, 8, 4, 2, 1];

/// The statement sizes (from [`LOG_CHUNK_SIZES`]) a batch of `rows` lines is stored with.
fn log_chunk_sizes(mut rows: usize) -> Vec<usize> {
    let mut sizes = Vec::new();
    for size in LOG_CHUNK_SIZES {
        while rows >= size {
            sizes.push(size);
            rows -= size;
        }
    }
    sizes
}

impl Store {
    /// The number of the last stored log line of a job (0 when none): a job run again after
    /// its node stopped continues its log after it.
    pub async fn last_job_log_line(&self, job_id: &str) -> StoreResult<i64> {
        let last: Option<i64> =
            sqlx::query_scalar("SELECT MAX(line) FROM job_logs WHERE job_id = $1")
                .bind(job_id)
                .fetch_one(self.pool())
                .await?;
        Ok(last.unwrap_or(0))
    }

    /// Append lines of one job in one transaction (the batch a log writer collected).
    pub async fn append_job_logs(&self, job_id: &str, lines: &[LogLine]) -> StoreResult<()> {
        let rows: Vec<(&str, &LogLine)> = lines.iter().map(|l| (job_id, l)).collect();
        self.append_log_rows(&rows).await
    }

    /// Append the lines of several jobs in one transaction: a log writer's batch of many
    /// short jobs is one write, not one per job.
    pub async fn append_logs_of_jobs(&self, jobs: &[(String, Vec<LogLine>)]) -> StoreResult<()> {
        let rows: Vec<(&str, &LogLine)> = jobs
            .iter()
            .flat_map(|(id, lines)| lines.iter().map(move |l| (id.as_str(), l)))
            .collect();
        self.append_log_rows(&rows).await
    }

    async fn append_log_rows(&self, rows: &[(&str, &LogLine)]) -> StoreResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool().begin().await?;
        insert_log_rows(&mut tx, rows).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Lines of a job after line number `after` (0 for all), oldest first, at most `limit`.
    pub async fn read_job_logs(
        &self,
        job_id: &str,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<LogLine>> {
        let rows = sqlx::query(
            "SELECT line, at, level, message FROM job_logs WHERE job_id = $1 AND line > $2 \
             ORDER BY line LIMIT $3",
        )
        .bind(job_id)
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LogLine {
                    line: r.try_get("line")?,
                    at: r.try_get("at")?,
                    level: r.try_get("level")?,
                    message: r.try_get("message")?,
                })
            })
            .collect()
    }
}

/// Insert log rows (job id, line) within `tx`, in statements of [`LOG_CHUNK_SIZES`] rows.
pub(crate) async fn insert_log_rows(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    rows: &[(&str, &LogLine)],
) -> StoreResult<()> {
    let mut rest = rows;
    for size in log_chunk_sizes(rows.len()) {
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        let mut sql =
            String::from("INSERT INTO job_logs (job_id, line, at, level, message) VALUES ");
        for i in 0..chunk.len() {
            let b = i * 5;
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5
            ));
        }
        // A batch stored just before the connection broke is sent again by the runner's
        // retry: lines already there are kept as they are.
        sql.push_str(" ON CONFLICT (job_id, line) DO NOTHING");
        let mut query = sqlx::query(&sql);
        for (job_id, line) in chunk {
            query = query
                .bind(*job_id)
                .bind(line.line)
                .bind(&line.at)
                .bind(&line.level)
                .bind(&line.message);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}
