//! `/v1/scripts`: stored SyncJS scripts — list, create, read, change, delete, check syntax.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use aft_store::{
    DeleteOutcome, JobFilter, NewScript, Script, ScriptUpdate, ScriptVersion, StoreError, UsedBy,
};

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
    /// Its current version (`GET /v1/scripts/{id}/versions`).
    pub version: i64,
    /// Its newest job, if it ever ran.
    pub last_job: Option<LastJob>,
}

/// The newest job of a script, for the "last result" beside it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastJob {
    /// The job's id.
    pub id: String,
    /// queued, running, succeeded, failed or interrupted.
    pub status: String,
    /// When it was queued (RFC 3339).
    pub created_at: String,
    /// When it ended (RFC 3339), if it did.
    pub finished_at: Option<String>,
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
            version: 0,
            last_job: None,
        }
    }
}

/// The view of `script` with its current version and newest job.
async fn script_view(state: &AppState, script: Script) -> ApiResult<ScriptView> {
    let version = state.store.current_script_version(&script.id).await?;
    let filter = JobFilter {
        script: Some(script.name.clone()),
        limit: Some(1),
        ..JobFilter::default()
    };
    let last_job = state
        .store
        .list_jobs(&filter)
        .await?
        .into_iter()
        .next()
        .map(|j| LastJob {
            id: j.id,
            status: j.status.as_str().to_string(),
            created_at: j.created_at,
            finished_at: j.finished_at,
        });
    Ok(ScriptView {
        version,
        last_job,
        ..ScriptView::from(script)
    })
}

/// One thing that uses a script, secret or VFS entry.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsedByView {
    /// `schedule`, `watcher`, `vfs`, `script` or `setting`.
    pub kind: String,
    /// Its name (a setting's key).
    pub name: String,
    /// For schedules and watchers: whether it is enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// How it uses it (`runs it`, `PassFromSecret`, `GetVFS("partner")`, ...).
    pub how: String,
}

impl From<UsedBy> for UsedByView {
    fn from(u: UsedBy) -> UsedByView {
        UsedByView {
            kind: u.kind,
            name: u.name,
            enabled: u.enabled,
            how: u.how,
        }
    }
}

/// 409 of a delete refused because something uses what it would delete.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InUseBody {
    /// What is in use, by what, and how to go on (`?force=true`).
    pub error: String,
    /// Everything that uses it.
    pub used_by: Vec<UsedByView>,
}

/// What a forced delete did.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeletedBody {
    /// The name of what was deleted.
    pub deleted: String,
    /// Everything that used it (left without it).
    pub used_by: Vec<UsedByView>,
    /// The schedules and watchers disabled because of it (`schedule/NAME`, `watcher/NAME`).
    pub disabled: Vec<String>,
}

/// `?force=true` deletes what is in use, disabling the schedules and watchers using it.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ForceQuery {
    /// Delete even when in use (default false).
    pub force: Option<bool>,
}

/// The answer of a checked delete: 204 when nothing used it, 200 with what it did when
/// forced past users, 409 with the users when refused.
pub(crate) fn delete_answer(
    state: &AppState,
    result: Result<DeleteOutcome, StoreError>,
) -> ApiResult<Response> {
    match result {
        Ok(outcome) => {
            for job_id in &outcome.halted_jobs {
                state.runner.halt_local(job_id);
            }
            if outcome.used_by.is_empty() {
                return Ok(StatusCode::NO_CONTENT.into_response());
            }
            Ok(Json(DeletedBody {
                deleted: outcome.deleted,
                used_by: outcome.used_by.into_iter().map(Into::into).collect(),
                disabled: outcome.disabled,
            })
            .into_response())
        }
        Err(StoreError::InUse { message, used_by }) => Ok((
            StatusCode::CONFLICT,
            Json(InUseBody {
                error: message,
                used_by: used_by.into_iter().map(Into::into).collect(),
            }),
        )
            .into_response()),
        Err(e) => Err(e.into()),
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
    let mut views = Vec::with_capacity(scripts.len());
    for script in scripts {
        views.push(script_view(&state, script).await?);
    }
    Ok(Json(views))
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
    Ok((
        StatusCode::CREATED,
        Json(script_view(&state, script).await?),
    )
        .into_response())
}

/// One script by id or name.
#[utoipa::path(get, path = "/v1/scripts/{id}", tag = "scripts", params(("id" = String, Path, description = "script id or name")),
    responses((status = 200, body = ScriptView), (status = 404, body = ErrorBody)))]
pub async fn get_script(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<ScriptView>> {
    let script = state.store.find_script(&id).await?;
    Ok(Json(script_view(&state, script).await?))
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
    let script = state.store.update_script(&id, update).await?;
    Ok(Json(script_view(&state, script).await?))
}

/// Delete a script. Refused (409, with `usedBy`) while schedules or watchers run it, unless
/// `?force=true`, which deletes it and disables them.
#[utoipa::path(delete, path = "/v1/scripts/{id}", tag = "scripts", params(("id" = String, Path, description = "script id or name"), ForceQuery),
    responses((status = 204, description = "deleted; nothing used it"), (status = 200, body = DeletedBody, description = "deleted with force; its users were disabled"),
        (status = 404, body = ErrorBody), (status = 409, body = InUseBody)))]
pub async fn delete_script(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(id): Path<String>,
    Query(q): Query<ForceQuery>,
) -> ApiResult<Response> {
    let result = state
        .store
        .delete_script_checked(&id, q.force.unwrap_or(false))
        .await;
    delete_answer(&state, result)
}

/// The schedules and watchers that run a script.
#[utoipa::path(get, path = "/v1/scripts/{id}/used-by", tag = "scripts", params(("id" = String, Path, description = "script id or name")),
    responses((status = 200, body = Vec<UsedByView>), (status = 404, body = ErrorBody)))]
pub async fn script_used_by(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<UsedByView>>> {
    let users = state.store.script_used_by(&id).await?;
    Ok(Json(users.into_iter().map(Into::into).collect()))
}

/// One kept version of a script's source.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScriptVersionView {
    /// Its number, from 1 up.
    pub version: i64,
    /// The source as saved.
    pub body: String,
    /// The description when it was saved.
    pub description: String,
    /// When it was saved.
    pub created_at: DateTime<Utc>,
}

impl From<ScriptVersion> for ScriptVersionView {
    fn from(v: ScriptVersion) -> ScriptVersionView {
        ScriptVersionView {
            version: v.version,
            body: v.body,
            description: v.description,
            created_at: v.created_at,
        }
    }
}

/// Every version of a script's source, newest first (each save that changed it).
#[utoipa::path(get, path = "/v1/scripts/{id}/versions", tag = "scripts", params(("id" = String, Path, description = "script id or name")),
    responses((status = 200, body = Vec<ScriptVersionView>), (status = 404, body = ErrorBody)))]
pub async fn list_script_versions(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<ScriptVersionView>>> {
    let versions = state.store.list_script_versions(&id).await?;
    Ok(Json(versions.into_iter().map(Into::into).collect()))
}

/// One version of a script's source.
#[utoipa::path(get, path = "/v1/scripts/{id}/versions/{version}", tag = "scripts",
    params(("id" = String, Path, description = "script id or name"), ("version" = i64, Path, description = "version number")),
    responses((status = 200, body = ScriptVersionView), (status = 404, body = ErrorBody)))]
pub async fn get_script_version(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path((id, version)): Path<(String, i64)>,
) -> ApiResult<Json<ScriptVersionView>> {
    Ok(Json(state.store.script_version(&id, version).await?.into()))
}

/// Make an old version's source current again; it is saved as a new version.
#[utoipa::path(post, path = "/v1/scripts/{id}/versions/{version}/restore", tag = "scripts",
    params(("id" = String, Path, description = "script id or name"), ("version" = i64, Path, description = "version number")),
    responses((status = 200, body = ScriptView), (status = 404, body = ErrorBody)))]
pub async fn restore_script_version(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path((id, version)): Path<(String, i64)>,
) -> ApiResult<Json<ScriptView>> {
    let script = state.store.restore_script_version(&id, version).await?;
    Ok(Json(script_view(&state, script).await?))
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
        // The store's fields as they were, plus the version and newest job.
        let mut view = serde_json::to_value(ScriptView::from(script.clone())).unwrap();
        let view = view.as_object_mut().unwrap();
        assert_eq!(view.remove("version"), Some(serde_json::json!(0)));
        assert_eq!(view.remove("lastJob"), Some(serde_json::Value::Null));
        assert_eq!(
            serde_json::Value::Object(view.clone()),
            serde_json::to_value(script).unwrap()
        );
    }
}
