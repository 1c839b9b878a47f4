//! `/v1/watchers`: watcher jobs, stored scripts that run as long as the service runs.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use aft_store::{NewWatcherJob, WatcherJob};

use crate::auth::AdminCaller;
use crate::error::{ApiJson, ApiResult, ErrorBody};
use crate::state::AppState;

/// A watcher job as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WatcherJobView {
    /// Id (UUIDv7).
    pub id: String,
    /// Name (unique, case-insensitive).
    pub name: String,
    /// The stored script it keeps running.
    pub script_name: String,
    /// Parameters of each run (a flat object of strings).
    pub params: BTreeMap<String, String>,
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

impl From<WatcherJob> for WatcherJobView {
    fn from(w: WatcherJob) -> WatcherJobView {
        WatcherJobView {
            id: w.id,
            name: w.name,
            script_name: w.script_name,
            params: w.params.into_map(),
            enabled: w.enabled,
            current_job_id: w.current_job_id,
            failures: w.failures,
            next_start_at: w.next_start_at,
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }
}

/// A watcher job to register.
#[derive(Debug, Deserialize, ToSchema)]
pub struct WatcherBody {
    /// Name (unique, case-insensitive).
    pub name: String,
    /// The stored script to keep running.
    pub script: String,
    /// Parameters (a flat JSON object; default `{}`).
    pub params: Option<serde_json::Value>,
}

/// All watcher jobs.
#[utoipa::path(get, path = "/v1/watchers", tag = "watchers", responses((status = 200, body = Vec<WatcherJobView>)))]
pub async fn list_watchers(
    State(state): State<AppState>,
    _a: AdminCaller,
) -> ApiResult<Json<Vec<WatcherJobView>>> {
    let watchers = state.store.list_watcher_jobs().await?;
    Ok(Json(
        watchers.into_iter().map(WatcherJobView::from).collect(),
    ))
}

/// Register a watcher job; a node starts it within a second.
#[utoipa::path(post, path = "/v1/watchers", tag = "watchers", request_body = WatcherBody,
    responses((status = 201, body = WatcherJobView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_watcher(
    State(state): State<AppState>,
    _a: AdminCaller,
    ApiJson(b): ApiJson<WatcherBody>,
) -> ApiResult<Response> {
    let watcher = state
        .store
        .create_watcher_job(NewWatcherJob {
            name: b.name,
            script_name: b.script,
            params: super::job_params(b.params)?,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(WatcherJobView::from(watcher))).into_response())
}

/// One watcher job by id or name.
#[utoipa::path(get, path = "/v1/watchers/{name}", tag = "watchers", params(("name" = String, Path, description = "watcher name or id")),
    responses((status = 200, body = WatcherJobView), (status = 404, body = ErrorBody)))]
pub async fn get_watcher(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(name): Path<String>,
) -> ApiResult<Json<WatcherJobView>> {
    Ok(Json(state.store.find_watcher_job(&name).await?.into()))
}

/// `enabled` to set.
#[derive(Debug, Deserialize, ToSchema)]
pub struct WatcherEnabledBody {
    /// Whether the watcher job runs.
    pub enabled: bool,
}

/// Enable or disable a watcher job. Disabling halts its current run (on whichever node it
/// runs) and starts no other; enabling starts a fresh run within a second.
#[utoipa::path(put, path = "/v1/watchers/{name}/enabled", tag = "watchers", request_body = WatcherEnabledBody,
    params(("name" = String, Path, description = "watcher name or id")),
    responses((status = 200, body = WatcherJobView), (status = 404, body = ErrorBody)))]
pub async fn set_watcher_enabled(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(name): Path<String>,
    ApiJson(b): ApiJson<WatcherEnabledBody>,
) -> ApiResult<Json<WatcherJobView>> {
    let (watcher, halted) = state.store.set_watcher_enabled(&name, b.enabled).await?;
    if let Some(job_id) = halted {
        // At once if it runs here; another node sees the stored request within a second.
        state.runner.halt_local(&job_id);
    }
    Ok(Json(watcher.into()))
}

/// Delete a watcher job; its current run is asked to halt.
#[utoipa::path(delete, path = "/v1/watchers/{name}", tag = "watchers", params(("name" = String, Path, description = "watcher name or id")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_watcher(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    if let Some(job_id) = state.store.delete_watcher_job(&name).await? {
        state.runner.halt_local(&job_id);
    }
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watcher_job_view_serializes_as_the_store_watcher_job_did() {
        let mut params = aft_store::JobParams::default();
        params.insert("folder", "/in");
        let watcher = WatcherJob {
            id: "0190-watcher".into(),
            name: "inbox".into(),
            script_name: "Inbox".into(),
            params,
            enabled: true,
            current_job_id: Some("0190-job".into()),
            failures: 2,
            next_start_at: Utc::now(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        let idle = WatcherJob {
            current_job_id: None,
            params: Default::default(),
            ..watcher.clone()
        };
        for w in [watcher, idle] {
            assert_eq!(
                serde_json::to_value(WatcherJobView::from(w.clone())).unwrap(),
                serde_json::to_value(w).unwrap()
            );
        }
    }
}
