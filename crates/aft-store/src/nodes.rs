//! Cluster nodes: each running service registers itself and heartbeats; a node whose
//! heartbeat is older than the dead-node timeout is considered gone.

use std::time::Duration;

use serde::Serialize;
use sqlx::Row;

use crate::jobs::time_before;
use crate::{Store, StoreResult, now_text};

/// One service node as stored.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    /// Node id (stable across restarts of the same data directory).
    pub id: String,
    /// Host name of the machine.
    pub hostname: String,
    /// Process id of `aft serve`.
    pub pid: i64,
    /// URL it serves on.
    pub url: String,
    /// When it last started.
    pub started_at: String,
    /// Its last heartbeat.
    pub heartbeat_at: String,
    /// When it stopped cleanly, if it did.
    pub stopped_at: Option<String>,
    /// How many jobs it runs now.
    pub running_jobs: i64,
}

impl Store {
    /// Register (or re-register after a restart) a node.
    pub async fn register_node(
        &self,
        id: &str,
        hostname: &str,
        pid: u32,
        url: &str,
    ) -> StoreResult<()> {
        let now = now_text();
        sqlx::query(
            "INSERT INTO nodes (id, hostname, pid, url, started_at, heartbeat_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (id) DO UPDATE SET hostname = excluded.hostname, pid = excluded.pid, \
             url = excluded.url, started_at = excluded.started_at, \
             heartbeat_at = excluded.heartbeat_at, stopped_at = NULL",
        )
        .bind(id)
        .bind(hostname)
        .bind(i64::from(pid))
        .bind(url)
        .bind(&now)
        .bind(&now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Record that a node is alive.
    pub async fn heartbeat_node(&self, id: &str) -> StoreResult<()> {
        sqlx::query("UPDATE nodes SET heartbeat_at = $1 WHERE id = $2")
            .bind(now_text())
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Record that a node stopped cleanly.
    pub async fn stop_node(&self, id: &str) -> StoreResult<()> {
        sqlx::query("UPDATE nodes SET stopped_at = $1 WHERE id = $2")
            .bind(now_text())
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Every known node with how many jobs each runs.
    pub async fn list_nodes(&self) -> StoreResult<Vec<Node>> {
        let rows = sqlx::query(
            "SELECT n.id, n.hostname, n.pid, n.url, n.started_at, n.heartbeat_at, n.stopped_at, \
             (SELECT COUNT(*) FROM jobs j WHERE j.node_id = n.id AND j.status = 'running') AS running_jobs \
             FROM nodes n ORDER BY n.started_at",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Node {
                    id: r.try_get("id")?,
                    hostname: r.try_get("hostname")?,
                    pid: r.try_get("pid")?,
                    url: r.try_get("url")?,
                    started_at: r.try_get("started_at")?,
                    heartbeat_at: r.try_get("heartbeat_at")?,
                    stopped_at: r.try_get("stopped_at")?,
                    running_jobs: r.try_get("running_jobs")?,
                })
            })
            .collect()
    }

    /// Nodes that have not stopped and heart-beat within `timeout`: services using this
    /// store now, on any machine.
    pub async fn live_nodes(&self, timeout: Duration) -> StoreResult<Vec<Node>> {
        let since = time_before(timeout);
        Ok(self
            .list_nodes()
            .await?
            .into_iter()
            .filter(|n| n.stopped_at.is_none() && n.heartbeat_at >= since)
            .collect())
    }

    /// Mark every node stopped (a restored store runs on none of the nodes it recorded);
    /// returns how many were still marked running.
    pub async fn mark_all_nodes_stopped(&self) -> StoreResult<u64> {
        let done = sqlx::query("UPDATE nodes SET stopped_at = $1 WHERE stopped_at IS NULL")
            .bind(crate::now_text())
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }

    /// Ids of nodes that have not heart-beaten for `timeout` and did not stop cleanly.
    pub async fn dead_nodes(&self, timeout: Duration) -> StoreResult<Vec<String>> {
        let rows =
            sqlx::query("SELECT id FROM nodes WHERE stopped_at IS NULL AND heartbeat_at < $1")
                .bind(time_before(timeout))
                .fetch_all(self.pool())
                .await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }
}
