//! `/v1/scripts`: stored SyncJS scripts — list, create, read, change, delete, check syntax.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use aft_store::{NewScript, Script, ScriptUpdate};

use crate::auth::AdminCaller;
use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::state::AppState;

/// A stored script as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScriptView {
    /// Id (UUIDv7).
    pub id: String,
    /// Name as the user wrote it (unique, case-insensitive).
    pub name: String,
    /// Free text.
    pub description: String,
    /// The SyncJS source.
    pub body: String,
    /// Whether a job of this script interrupted by a node failure may be queued again.
    pub retry_safe: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<Script> for ScriptView {
    fn from(s: Script) -> ScriptView {
        ScriptView {
            id: s.id,
            name: s.name,
            description: s.description,
            body: s.body,
            retry_safe: s.retry_safe,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// A script to create or replace.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScriptBody {
    /// Name (unique, case-insensitive).
    pub name: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// The SyncJS source.
    pub body: Option<String>,
    /// Whether a job interrupted by a node failure may run again.
    pub retry_safe: Option<bool>,
}

/// All scripts.
#[utoipa::path(get, path = "/v1/scripts", tag = "scripts", responses((status = 200, body = Vec<ScriptView>)))]
pub async fn list_scripts(
    State(state): State<AppState>,
    _a: AdminCaller,
) -> ApiResult<Json<Vec<ScriptView>>> {
    let scripts = state.store.list_scripts().await?;
    Ok(Json(scripts.into_iter().map(ScriptView::from).collect()))
}

/// Create a script.
#[utoipa::path(post, path = "/v1/scripts", tag = "scripts", request_body = ScriptBody,
    responses((status = 201, body = ScriptView), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_script(
    State(state): State<AppState>,
    _a: AdminCaller,
    ApiJson(b): ApiJson<ScriptBody>,
) -> ApiResult<Response> {
    let script = state
        .store
        .create_script(NewScript {
            name: b
                .name
                .ok_or_else(|| ApiError::bad_request("name is required"))?,
            description: b.description.unwrap_or_default(),
            body: b
                .body
                .ok_or_else(|| ApiError::bad_request("body is required"))?,
            retry_safe: b.retry_safe.unwrap_or(false),
        })
        .await?;
    Ok((StatusCode::CREATED, Json(ScriptView::from(script))).into_response())
}

/// One script by id or name.
#[utoipa::path(get, path = "/v1/scripts/{id}", tag = "scripts", params(("id" = String, Path, description = "script id or name")),
    responses((status = 200, body = ScriptView), (status = 404, body = ErrorBody)))]
pub async fn get_script(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<ScriptView>> {
    Ok(Json(state.store.find_script(&id).await?.into()))
}

/// Change a script (fields left out stay as they are).
#[utoipa::path(put, path = "/v1/scripts/{id}", tag = "scripts", params(("id" = String, Path, description = "script id or name")), request_body = ScriptBody,
    responses((status = 200, body = ScriptView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update_script(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ScriptBody>,
) -> ApiResult<Json<ScriptView>> {
    let update = ScriptUpdate {
        name: b.name,
        description: b.description,
        body: b.body,
        retry_safe: b.retry_safe,
    };
    Ok(Json(state.store.update_script(&id, update).await?.into()))
}

/// Delete a script.
#[utoipa::path(delete, path = "/v1/scripts/{id}", tag = "scripts", params(("id" = String, Path, description = "script id or name")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_script(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.store.delete_script(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A source to check.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CheckBody {
    /// The SyncJS source.
    pub source: String,
    /// File name for messages (default `script.syncjs`).
    pub name: Option<String>,
}

/// The result of a syntax check.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckResult {
    /// True when the source compiles.
    pub ok: bool,
    /// The error message, if any.
    pub message: Option<String>,
    /// 1-based line of the error (0 when unknown).
    pub line: Option<u32>,
    /// 1-based column of the error (0 when unknown).
    pub column: Option<u32>,
}

/// Check a script's syntax without running it.
#[utoipa::path(post, path = "/v1/scripts/check", tag = "scripts", request_body = CheckBody, responses((status = 200, body = CheckResult)))]
pub async fn check_script(
    _a: AdminCaller,
    ApiJson(b): ApiJson<CheckBody>,
) -> ApiResult<Json<CheckResult>> {
    let name = b.name.unwrap_or_else(|| "script.syncjs".into());
    let result = tokio::task::spawn_blocking(move || aft_engine::check_syntax(&name, &b.source))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("syntax check failed: {e}"),
            )
        })?;
    Ok(Json(match result {
        Ok(()) => CheckResult {
            ok: true,
            message: None,
            line: None,
            column: None,
        },
        Err(e) => CheckResult {
            ok: false,
            message: Some(e.message),
            line: Some(e.line),
            column: Some(e.column),
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_view_serializes_as_the_store_script_did() {
        let script = Script {
            id: "0190-script".into(),
            name: "Nightly".into(),
            description: "".into(),
            body: "Log('hi');".into(),
            retry_safe: true,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        assert_eq!(
            serde_json::to_value(ScriptView::from(script.clone())).unwrap(),
            serde_json::to_value(script).unwrap()
        );
    }
}
