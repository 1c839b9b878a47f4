//! `/v1/watchers`: watcher jobs, stored scripts that run as long as the service runs.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;

use aft_store::NewWatcherJob;

use crate::auth::AdminCaller;
use crate::error::{ApiJson, ApiResult, ErrorBody};
use crate::state::AppState;

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
#[utoipa::path(get, path = "/v1/watchers", tag = "watchers", responses((status = 200, body = serde_json::Value)))]
pub async fn list_watchers(
    State(state): State<AppState>,
    _a: AdminCaller,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(
        serde_json::to_value(state.store.list_watcher_jobs().await?).unwrap_or_default(),
    ))
}

/// Register a watcher job; a node starts it within a second.
#[utoipa::path(post, path = "/v1/watchers", tag = "watchers", request_body = WatcherBody,
    responses((status = 201, body = serde_json::Value), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
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
            params: super::schedules::job_params(b.params)?,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(watcher)).into_response())
}

/// One watcher job by id or name.
#[utoipa::path(get, path = "/v1/watchers/{name}", tag = "watchers", params(("name" = String, Path, description = "watcher name or id")),
    responses((status = 200, body = serde_json::Value), (status = 404, body = ErrorBody)))]
pub async fn get_watcher(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(
        serde_json::to_value(state.store.find_watcher_job(&name).await?).unwrap_or_default(),
    ))
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
    responses((status = 200, body = serde_json::Value), (status = 404, body = ErrorBody)))]
pub async fn set_watcher_enabled(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(name): Path<String>,
    ApiJson(b): ApiJson<WatcherEnabledBody>,
) -> ApiResult<Json<serde_json::Value>> {
    let (watcher, halted) = state.store.set_watcher_enabled(&name, b.enabled).await?;
    if let Some(job_id) = halted {
        // At once if it runs here; another node sees the stored request within a second.
        state.runner.halt_local(&job_id);
    }
    Ok(Json(serde_json::to_value(watcher).unwrap_or_default()))
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
