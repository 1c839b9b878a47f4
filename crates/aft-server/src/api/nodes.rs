//! `/v1/nodes`: the service nodes of the cluster, with their heartbeats and running jobs.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use aft_store::Node;

use crate::auth::AdminCaller;
use crate::error::ApiResult;
use crate::state::AppState;

/// A service node as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeView {
    /// Node id (stable across restarts of the same data directory).
    pub id: String,
    /// Host name of the machine.
    pub hostname: String,
    /// Process id of `aft serve`.
    pub pid: i64,
    /// URL it serves on.
    pub url: String,
    /// When it last started (RFC 3339).
    pub started_at: String,
    /// Its last heartbeat (RFC 3339).
    pub heartbeat_at: String,
    /// When it stopped cleanly; `null` while it runs (or if it died).
    pub stopped_at: Option<String>,
    /// How many jobs it runs now.
    pub running_jobs: i64,
}

impl From<Node> for NodeView {
    fn from(n: Node) -> NodeView {
        NodeView {
            id: n.id,
            hostname: n.hostname,
            pid: n.pid,
            url: n.url,
            started_at: n.started_at,
            heartbeat_at: n.heartbeat_at,
            stopped_at: n.stopped_at,
            running_jobs: n.running_jobs,
        }
    }
}

/// Every node of the cluster with its heartbeat and running jobs.
#[utoipa::path(get, path = "/v1/nodes", tag = "service", responses((status = 200, body = Vec<NodeView>)))]
pub async fn list_nodes(
    State(state): State<AppState>,
    _a: AdminCaller,
) -> ApiResult<Json<Vec<NodeView>>> {
    let nodes = state.store.list_nodes().await?;
    Ok(Json(nodes.into_iter().map(NodeView::from).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_view_serializes_as_the_store_node_did() {
        let running = Node {
            id: "node-1".into(),
            hostname: "host".into(),
            pid: 4242,
            url: "https://127.0.0.1:8443".into(),
            started_at: aft_store::now_text(),
            heartbeat_at: aft_store::now_text(),
            stopped_at: None,
            running_jobs: 2,
        };
        let stopped = Node {
            stopped_at: Some(aft_store::now_text()),
            ..running.clone()
        };
        for node in [running, stopped] {
            assert_eq!(
                serde_json::to_value(NodeView::from(node.clone())).unwrap(),
                serde_json::to_value(node).unwrap()
            );
        }
    }
}
