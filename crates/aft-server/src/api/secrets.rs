//! `/v1/secrets`: named secrets scripts and the VFS Library refer to. Values are
//! write-only: the API lists names and timestamps, never a value.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use aft_store::{Secret, SecretInfo};

use super::scripts::{DeletedBody, ForceQuery, InUseBody, UsedByView, delete_answer};
use super::settings::ValueBody;
use crate::auth::AdminCaller;
use crate::error::{ApiJson, ApiResult, ErrorBody};
use crate::state::AppState;

/// A stored secret as the API shows it: its name and timestamps, never its value.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretView {
    /// The secret's name (case-sensitive).
    pub name: String,
    /// When it was first set.
    pub created_at: DateTime<Utc>,
    /// When its value last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<SecretInfo> for SecretView {
    fn from(s: SecretInfo) -> SecretView {
        SecretView {
            name: s.name,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// Secret names and timestamps (never values).
#[utoipa::path(get, path = "/v1/secrets", tag = "secrets", responses((status = 200, body = Vec<SecretView>)))]
pub async fn list_secrets(
    State(state): State<AppState>,
    _a: AdminCaller,
) -> ApiResult<Json<Vec<SecretView>>> {
    let secrets = state.store.list_secrets().await?;
    Ok(Json(secrets.into_iter().map(SecretView::from).collect()))
}

/// Create or replace a secret; the value is never returned.
#[utoipa::path(put, path = "/v1/secrets/{name}", tag = "secrets", params(("name" = String, Path, description = "secret name (case-sensitive)")),
    request_body = ValueBody, responses((status = 204), (status = 400, body = ErrorBody)))]
pub async fn set_secret(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(name): Path<String>,
    ApiJson(b): ApiJson<ValueBody>,
) -> ApiResult<StatusCode> {
    state
        .store
        .set_secret(&state.secrets_key, &name, &Secret::new(b.value))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a secret. Refused (409, with `usedBy`) while VFS entries, settings or scripts name
/// it, unless `?force=true`, which deletes it and disables the watchers using it.
#[utoipa::path(delete, path = "/v1/secrets/{name}", tag = "secrets", params(("name" = String, Path, description = "secret name"), ForceQuery),
    responses((status = 204, description = "deleted; nothing used it"), (status = 200, body = DeletedBody, description = "deleted with force"),
        (status = 404, body = ErrorBody), (status = 409, body = InUseBody)))]
pub async fn delete_secret(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(name): Path<String>,
    Query(q): Query<ForceQuery>,
) -> ApiResult<Response> {
    let result = state
        .store
        .delete_secret_checked(&name, q.force.unwrap_or(false))
        .await;
    delete_answer(&state, result)
}

/// What names a secret: VFS entries (`...FromSecret` fields), settings (`...-secret`),
/// scripts (`GetSecret("name")`) and the watchers running those scripts.
#[utoipa::path(get, path = "/v1/secrets/{name}/used-by", tag = "secrets", params(("name" = String, Path, description = "secret name")),
    responses((status = 200, body = Vec<UsedByView>)))]
pub async fn secret_used_by(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<UsedByView>>> {
    let users = state.store.secret_used_by(&name).await?;
    Ok(Json(users.into_iter().map(Into::into).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_view_serializes_as_the_store_secret_info_did() {
        let info = SecretInfo {
            name: "sftpPass".into(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        assert_eq!(
            serde_json::to_value(SecretView::from(info.clone())).unwrap(),
            serde_json::to_value(info).unwrap()
        );
    }
}
