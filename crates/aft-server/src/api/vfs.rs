//! `/v1/vfs`: the VFS Library — named connection settings scripts open with `Vfs("name")`.
//! Entries are checked against aft-vfs's backend registry; credentials are secret names.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use aft_store::VfsEntry;

use super::scripts::{DeletedBody, ForceQuery, InUseBody, UsedByView, delete_answer};
use crate::auth::AdminCaller;
use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::vfs_library::{SaveMode, save_vfs_entry};

/// A VFS Library entry as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VfsEntryView {
    /// Id (UUIDv7).
    pub id: String,
    /// Name, unique case-insensitively.
    pub name: String,
    /// What it connects to: a type of `GET /v1/vfs/types` (`sftp`, `s3`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// The type's SyncJS client fields (`Host`, `User`, `PassFromSecret`, `Bucket`, ...);
    /// credentials only as secret names.
    #[schema(value_type = Object)]
    pub settings: serde_json::Map<String, serde_json::Value>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<VfsEntry> for VfsEntryView {
    fn from(e: VfsEntry) -> VfsEntryView {
        VfsEntryView {
            id: e.id,
            name: e.name,
            kind: e.kind,
            settings: e.settings,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// A VFS Library entry to create or replace.
#[derive(Debug, Deserialize, ToSchema)]
pub struct VfsBody {
    /// Name (for create; unique, case-insensitive).
    pub name: Option<String>,
    /// A type of `GET /v1/vfs/types`: disk, sftp, ftp, ftps, s3, azure, gcs, webdav or smb.
    #[serde(rename = "type")]
    pub kind: String,
    /// The type's fields (`Host`, `User`, `PassFromSecret`, ...) as `GET /v1/vfs/types`
    /// lists them; unknown fields and clear-text credentials are refused.
    #[schema(value_type = Object)]
    pub settings: serde_json::Map<String, serde_json::Value>,
}

/// All VFS Library entries.
#[utoipa::path(get, path = "/v1/vfs", tag = "vfs", responses((status = 200, body = Vec<VfsEntryView>)))]
pub async fn list_vfs(
    State(state): State<AppState>,
    _a: AdminCaller,
) -> ApiResult<Json<Vec<VfsEntryView>>> {
    let entries = state.store.list_vfs_entries().await?;
    Ok(Json(entries.into_iter().map(VfsEntryView::from).collect()))
}

/// Add a VFS Library entry (checked against the backend registry: 400 names the refused
/// field and what to use instead).
#[utoipa::path(post, path = "/v1/vfs", tag = "vfs", request_body = VfsBody,
    responses((status = 201, body = VfsEntryView), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_vfs(
    State(state): State<AppState>,
    _a: AdminCaller,
    ApiJson(b): ApiJson<VfsBody>,
) -> ApiResult<Response> {
    let name = b
        .name
        .ok_or_else(|| ApiError::bad_request("name is required"))?;
    let entry = save_vfs_entry(&state.store, &name, &b.kind, b.settings, SaveMode::Create).await?;
    Ok((StatusCode::CREATED, Json(VfsEntryView::from(entry))).into_response())
}

/// One VFS Library entry.
#[utoipa::path(get, path = "/v1/vfs/{name}", tag = "vfs", params(("name" = String, Path, description = "entry id or name")),
    responses((status = 200, body = VfsEntryView), (status = 404, body = ErrorBody)))]
pub async fn get_vfs(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(name): Path<String>,
) -> ApiResult<Json<VfsEntryView>> {
    Ok(Json(state.store.find_vfs_entry(&name).await?.into()))
}

/// Replace a VFS Library entry's type and settings (checked as for `POST /v1/vfs`).
#[utoipa::path(put, path = "/v1/vfs/{name}", tag = "vfs", params(("name" = String, Path, description = "entry id or name")), request_body = VfsBody,
    responses((status = 200, body = VfsEntryView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_vfs(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(name): Path<String>,
    ApiJson(b): ApiJson<VfsBody>,
) -> ApiResult<Json<VfsEntryView>> {
    let entry = save_vfs_entry(&state.store, &name, &b.kind, b.settings, SaveMode::Replace).await?;
    Ok(Json(entry.into()))
}

/// Delete a VFS Library entry. Refused (409, with `usedBy`) while scripts open it with
/// `GetVFS("name")` or watchers name it, unless `?force=true`, which deletes it and
/// disables those watchers.
#[utoipa::path(delete, path = "/v1/vfs/{name}", tag = "vfs", params(("name" = String, Path, description = "entry id or name"), ForceQuery),
    responses((status = 204, description = "deleted; nothing used it"), (status = 200, body = DeletedBody, description = "deleted with force"),
        (status = 404, body = ErrorBody), (status = 409, body = InUseBody)))]
pub async fn delete_vfs(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(name): Path<String>,
    Query(q): Query<ForceQuery>,
) -> ApiResult<Response> {
    let result = state
        .store
        .delete_vfs_entry_checked(&name, q.force.unwrap_or(false))
        .await;
    delete_answer(&state, result)
}

/// The scripts that open an entry with `GetVFS("name")` (a literal name), and the watchers
/// running them or naming the entry in a param.
#[utoipa::path(get, path = "/v1/vfs/{name}/used-by", tag = "vfs", params(("name" = String, Path, description = "entry id or name")),
    responses((status = 200, body = Vec<UsedByView>), (status = 404, body = ErrorBody)))]
pub async fn vfs_used_by(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<UsedByView>>> {
    let users = state.store.vfs_used_by(&name).await?;
    Ok(Json(users.into_iter().map(Into::into).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vfs_entry_view_serializes_as_the_store_entry_did() {
        let entry = VfsEntry {
            id: "0190-vfs".into(),
            name: "partner".into(),
            kind: "sftp".into(),
            settings: serde_json::json!({"Host": "sftp.example.com:22", "User": "u",
                "PassFromSecret": "partnerPass", "Port": 22, "AcceptAnyHostKey": false})
            .as_object()
            .unwrap()
            .clone(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        assert_eq!(
            serde_json::to_value(VfsEntryView::from(entry.clone())).unwrap(),
            serde_json::to_value(entry).unwrap()
        );
    }
}
