//! `/v1/apikeys`: API keys for callers of the job API — list, create (the key is shown
//! once), revoke.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use aft_store::{ApiKey, ApiKeyAllowList, NewApiKey};

use crate::auth::AdminCaller;
use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::state::AppState;

/// An API key as the API shows it (never the key itself).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyView {
    /// Id (UUIDv7).
    pub id: String,
    /// Name, unique case-insensitively.
    pub name: String,
    /// The first characters of the key, to tell keys apart.
    pub prefix: String,
    /// Caller addresses and CIDR ranges allowed to use it, as text
    /// (`127.0.0.1, 10.0.0.0/8, ::1`).
    pub allow_list: String,
    /// Script names it may start (case-insensitive); `null` = any script.
    pub scripts: Option<Vec<String>>,
    /// Whether it may run `.syncjs` files of the script folders (`filePath`).
    pub file_runs: bool,
    /// When it stops working; `null` = never.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked; `null` if it was not.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When it last authenticated a request; `null` if never.
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl From<ApiKey> for ApiKeyView {
    fn from(k: ApiKey) -> ApiKeyView {
        ApiKeyView {
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            allow_list: k.allow_list.to_string(),
            scripts: k.scripts,
            file_runs: k.file_runs,
            expires_at: k.expires_at,
            revoked_at: k.revoked_at,
            last_used_at: k.last_used_at,
            created_at: k.created_at,
        }
    }
}

/// A key just created: the stored key's fields and the key itself, shown this once only.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewApiKeyView {
    /// The stored key.
    #[serde(flatten)]
    pub api_key: ApiKeyView,
    /// The key to send as `X-API-Key`; it is not stored and cannot be shown again.
    pub key: String,
}

/// A new API key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyBody {
    /// Name (unique, case-insensitive).
    pub name: String,
    /// Allowed caller addresses and CIDR ranges (IPv4 and IPv6); required, non-empty.
    pub allow: Vec<String>,
    /// When it stops working (RFC 3339); absent = never.
    pub expires_at: Option<String>,
    /// Script names it may start; absent = all.
    pub scripts: Option<Vec<String>>,
    /// Whether it may run `.syncjs` files of the script folders (`filePath`); default false.
    #[serde(default)]
    pub allow_file_runs: bool,
}

/// All API keys (never the keys themselves).
#[utoipa::path(get, path = "/v1/apikeys", tag = "apikeys", responses((status = 200, body = Vec<ApiKeyView>)))]
pub async fn list_api_keys(
    State(state): State<AppState>,
    _a: AdminCaller,
) -> ApiResult<Json<Vec<ApiKeyView>>> {
    let keys = state.store.list_api_keys().await?;
    Ok(Json(keys.into_iter().map(ApiKeyView::from).collect()))
}

/// Create a key: the answer holds the key itself (`key`), shown this once only.
#[utoipa::path(post, path = "/v1/apikeys", tag = "apikeys", request_body = ApiKeyBody,
    responses((status = 201, body = NewApiKeyView), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_api_key(
    State(state): State<AppState>,
    _a: AdminCaller,
    ApiJson(b): ApiJson<ApiKeyBody>,
) -> ApiResult<Response> {
    let allow_list: ApiKeyAllowList = b.allow.join(",").parse()?;
    if allow_list.is_empty() {
        return Err(ApiError::bad_request(
            "allow must list at least one address or CIDR range",
        ));
    }
    let expires_at = b
        .expires_at
        .map(|t| chrono::DateTime::parse_from_rfc3339(&t).map(|t| t.with_timezone(&chrono::Utc)))
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("expiresAt must be an RFC 3339 time: {e}")))?;
    if expires_at.is_some_and(|at| at <= chrono::Utc::now()) {
        return Err(ApiError::bad_request("expiresAt is in the past"));
    }
    let (key, secret) = state
        .store
        .create_api_key(NewApiKey {
            name: b.name,
            allow_list,
            expires_at,
            scripts: b.scripts,
            file_runs: b.allow_file_runs,
        })
        .await?;
    let view = NewApiKeyView {
        api_key: key.into(),
        key: secret.expose().to_string(),
    };
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// Revoke a key (it stays listed, marked revoked).
#[utoipa::path(delete, path = "/v1/apikeys/{id}", tag = "apikeys", params(("id" = String, Path, description = "key id or name")),
    responses((status = 200, body = ApiKeyView), (status = 404, body = ErrorBody)))]
pub async fn revoke_api_key(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<ApiKeyView>> {
    Ok(Json(state.store.revoke_api_key(&id).await?.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Vec<ApiKey> {
        let key = ApiKey {
            id: "0190-key".into(),
            name: "ci".into(),
            prefix: "aft_ab12".into(),
            allow_list: "127.0.0.1, 10.0.0.0/8, ::1".parse().unwrap(),
            scripts: Some(vec!["Nightly".into()]),
            file_runs: true,
            expires_at: Some(Utc::now()),
            revoked_at: Some(Utc::now()),
            last_used_at: Some(Utc::now()),
            created_at: Utc::now(),
        };
        let bare = ApiKey {
            scripts: None,
            file_runs: false,
            expires_at: None,
            revoked_at: None,
            last_used_at: None,
            ..key.clone()
        };
        vec![key, bare]
    }

    #[test]
    fn api_key_view_serializes_as_the_store_api_key_did() {
        for key in keys() {
            assert_eq!(
                serde_json::to_value(ApiKeyView::from(key.clone())).unwrap(),
                serde_json::to_value(key).unwrap()
            );
        }
    }

    #[test]
    fn new_api_key_view_is_the_stored_key_and_the_key() {
        for key in keys() {
            let mut before = serde_json::to_value(&key).unwrap();
            before["key"] = "aft_secret".into();
            let view = NewApiKeyView {
                api_key: key.into(),
                key: "aft_secret".into(),
            };
            assert_eq!(serde_json::to_value(view).unwrap(), before);
        }
    }
}
