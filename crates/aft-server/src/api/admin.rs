//! Administration for the web UI and tools: first-admin setup, sign-in sessions, scripts,
//! settings, secrets (write-only values), API keys, the VFS Library, nodes.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use aft_store::{ApiKeyAllowList, NewApiKey, NewScript, ScriptUpdate, Secret};

use crate::auth::{
    AdminCaller, AuthBucket, Caller, SESSION_COOKIE, csrf_token, peer_ip, session_cookie,
};
use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::vfs_library::{SaveMode, save_vfs_entry};

/// `GET /v1/setup`: whether the first admin still has to be created.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetupState {
    /// True once at least one admin exists.
    pub admin_exists: bool,
}

/// A user name and password (setup and sign-in).
#[derive(Debug, Deserialize, ToSchema)]
pub struct Credentials {
    /// Admin user name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// A signed-in session.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    /// The admin's user name (`local` for the CLI token).
    pub username: String,
    /// Send as `X-CSRF-Token` on every state-changing request made with the cookie.
    pub csrf_token: Option<String>,
    /// When the session ends.
    pub expires_at: Option<String>,
}

/// Service health.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// Always `ok` when the service answers.
    pub status: String,
    /// This node's id.
    pub node_id: String,
    /// aft's version.
    pub version: String,
    /// Jobs running on this node.
    pub running_jobs: usize,
}

/// Is the service up (no authentication).
#[utoipa::path(get, path = "/v1/health", tag = "service", responses((status = 200, body = Health)))]
pub async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        node_id: state.runner.node_id().to_string(),
        version: env!("CARGO_PKG_VERSION").into(),
        running_jobs: state.runner.running_count(),
    })
}

/// Whether an admin exists (no authentication; the web UI asks on first start).
#[utoipa::path(get, path = "/v1/setup", tag = "session", responses((status = 200, body = SetupState)))]
pub async fn setup_state(State(state): State<AppState>) -> ApiResult<Json<SetupState>> {
    Ok(Json(SetupState {
        admin_exists: state.store.count_admins().await? > 0,
    }))
}

/// Create the first admin; refused (409) once any admin exists.
#[utoipa::path(post, path = "/v1/setup", tag = "session", request_body = Credentials,
    responses((status = 201, body = SetupState), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn setup(
    State(state): State<AppState>,
    ApiJson(c): ApiJson<Credentials>,
) -> ApiResult<Response> {
    // Cheap refusal first, so a flood of setups on a configured service costs no argon2.
    if state.store.count_admins().await? > 0 {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "an admin already exists; sign in instead",
        ));
    }
    state
        .store
        .create_first_admin(&c.username, &Secret::new(c.password))
        .await?;
    Ok((StatusCode::CREATED, Json(SetupState { admin_exists: true })).into_response())
}

/// Sign in: sets the `aft_session` cookie (HttpOnly, Secure, SameSite=Strict) and returns
/// the CSRF token.
#[utoipa::path(post, path = "/v1/session", tag = "session", request_body = Credentials,
    responses((status = 200, body = SessionView), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn sign_in(
    State(state): State<AppState>,
    parts: axum::http::request::Parts,
    ApiJson(c): ApiJson<Credentials>,
) -> ApiResult<Response> {
    // Each attempt is counted before argon2 runs, per address and user and per address:
    // concurrent guesses past the limit are refused without costing a password check.
    let ip = peer_ip(&parts)?;
    let user = AuthBucket::SignIn(c.username.to_lowercase());
    state
        .limiter
        .reserve(ip, AuthBucket::AnySignIn)
        .map_err(crate::auth::too_many)?;
    if let Err(wait) = state.limiter.reserve(ip, user.clone()) {
        state.limiter.release(ip, AuthBucket::AnySignIn);
        return Err(crate::auth::too_many(wait));
    }
    let Some(admin) = state.store.verify_admin(&c.username, &c.password).await? else {
        return Err(ApiError::unauthorized("wrong user name or password"));
    };
    state.limiter.release(ip, user);
    state.limiter.release(ip, AuthBucket::AnySignIn);
    let minutes = state.store.settings().await?.session_lifetime_minutes;
    let (token, expires_at) = state
        .store
        .create_session(
            &admin.username,
            Duration::from_secs(u64::from(minutes) * 60),
        )
        .await?;
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={}",
        token.expose(),
        u64::from(minutes) * 60
    );
    let mut headers = HeaderMap::new();
    headers.insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| ApiError::bad_request(e.to_string()))?,
    );
    let view = SessionView {
        username: admin.username,
        csrf_token: Some(csrf_token(token.expose())),
        expires_at: Some(expires_at.to_rfc3339()),
    };
    Ok((headers, Json(view)).into_response())
}

/// Who is signed in (with the CSRF token, so a reloaded page can recover it).
#[utoipa::path(get, path = "/v1/session", tag = "session",
    responses((status = 200, body = SessionView), (status = 401, body = ErrorBody)))]
pub async fn current_session(
    AdminCaller(caller): AdminCaller,
    parts: axum::http::request::Parts,
) -> ApiResult<Json<SessionView>> {
    Ok(Json(match caller {
        Caller::Admin { username } => SessionView {
            username,
            csrf_token: session_cookie(&parts).map(|t| csrf_token(&t)),
            expires_at: None,
        },
        _ => SessionView {
            username: "local".into(),
            csrf_token: None,
            expires_at: None,
        },
    }))
}

/// Sign out: ends the session and clears the cookie.
#[utoipa::path(delete, path = "/v1/session", tag = "session", responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn sign_out(
    State(state): State<AppState>,
    _caller: AdminCaller,
    parts: axum::http::request::Parts,
) -> ApiResult<Response> {
    if let Some(token) = session_cookie(&parts) {
        state.store.delete_session(&token).await?;
    }
    let clear = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0");
    let mut headers = HeaderMap::new();
    headers.insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&clear).map_err(|e| ApiError::bad_request(e.to_string()))?,
    );
    Ok((StatusCode::NO_CONTENT, headers).into_response())
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
#[utoipa::path(get, path = "/v1/scripts", tag = "scripts", responses((status = 200, body = serde_json::Value)))]
pub async fn list_scripts(
    State(state): State<AppState>,
    _a: AdminCaller,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(
        serde_json::to_value(state.store.list_scripts().await?).unwrap_or_default(),
    ))
}

/// Create a script.
#[utoipa::path(post, path = "/v1/scripts", tag = "scripts", request_body = ScriptBody,
    responses((status = 201, body = serde_json::Value), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
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
    Ok((StatusCode::CREATED, Json(script)).into_response())
}

/// One script by id or name.
#[utoipa::path(get, path = "/v1/scripts/{id}", tag = "scripts", params(("id" = String, Path, description = "script id or name")),
    responses((status = 200, body = serde_json::Value), (status = 404, body = ErrorBody)))]
pub async fn get_script(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(
        serde_json::to_value(state.store.find_script(&id).await?).unwrap_or_default(),
    ))
}

/// Change a script (fields left out stay as they are).
#[utoipa::path(put, path = "/v1/scripts/{id}", tag = "scripts", params(("id" = String, Path, description = "script id or name")), request_body = ScriptBody,
    responses((status = 200, body = serde_json::Value), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update_script(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ScriptBody>,
) -> ApiResult<Json<serde_json::Value>> {
    let update = ScriptUpdate {
        name: b.name,
        description: b.description,
        body: b.body,
        retry_safe: b.retry_safe,
    };
    Ok(Json(
        serde_json::to_value(state.store.update_script(&id, update).await?).unwrap_or_default(),
    ))
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

/// Every setting with its value.
#[utoipa::path(get, path = "/v1/settings", tag = "settings", responses((status = 200, body = serde_json::Value)))]
pub async fn list_settings(
    State(state): State<AppState>,
    _a: AdminCaller,
) -> ApiResult<Json<serde_json::Value>> {
    let settings = state.store.list_settings().await?;
    let items: Vec<serde_json::Value> = settings
        .into_iter()
        .map(|s| {
            let description = aft_store::setting_def(s.key).map(|d| d.description).unwrap_or("");
            serde_json::json!({"key": s.key, "value": s.value, "isDefault": s.is_default, "description": description})
        })
        .collect();
    Ok(Json(serde_json::Value::Array(items)))
}

/// A new value.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ValueBody {
    /// The value as text.
    pub value: String,
}

/// Set one setting (takes effect at once).
#[utoipa::path(put, path = "/v1/settings/{key}", tag = "settings", params(("key" = String, Path, description = "setting key, e.g. max-concurrent-jobs")),
    request_body = ValueBody, responses((status = 200, body = serde_json::Value), (status = 400, body = ErrorBody)))]
pub async fn set_setting(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(key): Path<String>,
    ApiJson(b): ApiJson<ValueBody>,
) -> ApiResult<Json<serde_json::Value>> {
    let value = state.store.set_setting(&key, &b.value).await?;
    Ok(Json(serde_json::json!({"key": key, "value": value})))
}

/// Secret names and timestamps (never values).
#[utoipa::path(get, path = "/v1/secrets", tag = "secrets", responses((status = 200, body = serde_json::Value)))]
pub async fn list_secrets(
    State(state): State<AppState>,
    _a: AdminCaller,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(
        serde_json::to_value(state.store.list_secrets().await?).unwrap_or_default(),
    ))
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

/// Delete a secret.
#[utoipa::path(delete, path = "/v1/secrets/{name}", tag = "secrets", params(("name" = String, Path, description = "secret name")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_secret(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    state.store.delete_secret(&name).await?;
    Ok(StatusCode::NO_CONTENT)
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
#[utoipa::path(get, path = "/v1/apikeys", tag = "apikeys", responses((status = 200, body = serde_json::Value)))]
pub async fn list_api_keys(
    State(state): State<AppState>,
    _a: AdminCaller,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(
        serde_json::to_value(state.store.list_api_keys().await?).unwrap_or_default(),
    ))
}

/// Create a key: the answer holds the key itself (`key`), shown this once only.
#[utoipa::path(post, path = "/v1/apikeys", tag = "apikeys", request_body = ApiKeyBody,
    responses((status = 201, body = serde_json::Value), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
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
    let mut body = serde_json::to_value(key).unwrap_or_default();
    body["key"] = serde_json::Value::String(secret.expose().to_string());
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Revoke a key (it stays listed, marked revoked).
#[utoipa::path(delete, path = "/v1/apikeys/{id}", tag = "apikeys", params(("id" = String, Path, description = "key id or name")),
    responses((status = 200, body = serde_json::Value), (status = 404, body = ErrorBody)))]
pub async fn revoke_api_key(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(
        serde_json::to_value(state.store.revoke_api_key(&id).await?).unwrap_or_default(),
    ))
}

/// A VFS Library entry to create or replace.
#[derive(Debug, Deserialize, ToSchema)]
pub struct VfsBody {
    /// Name (for create; unique, case-insensitive).
    pub name: Option<String>,
    /// A type of `GET /v1/vfs/types`: disk, sftp, ftp, ftps, s3, azure, gcs or webdav.
    #[serde(rename = "type")]
    pub kind: String,
    /// The type's fields (`Host`, `User`, `PassFromSecret`, ...) as `GET /v1/vfs/types`
    /// lists them; unknown fields and clear-text credentials are refused.
    #[schema(value_type = Object)]
    pub settings: serde_json::Map<String, serde_json::Value>,
}

/// All VFS Library entries.
#[utoipa::path(get, path = "/v1/vfs", tag = "vfs", responses((status = 200, body = serde_json::Value)))]
pub async fn list_vfs(
    State(state): State<AppState>,
    _a: AdminCaller,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(
        serde_json::to_value(state.store.list_vfs_entries().await?).unwrap_or_default(),
    ))
}

/// Add a VFS Library entry (checked against the backend registry: 400 names the refused
/// field and what to use instead).
#[utoipa::path(post, path = "/v1/vfs", tag = "vfs", request_body = VfsBody,
    responses((status = 201, body = serde_json::Value), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_vfs(
    State(state): State<AppState>,
    _a: AdminCaller,
    ApiJson(b): ApiJson<VfsBody>,
) -> ApiResult<Response> {
    let name = b
        .name
        .ok_or_else(|| ApiError::bad_request("name is required"))?;
    let entry = save_vfs_entry(&state.store, &name, &b.kind, b.settings, SaveMode::Create).await?;
    Ok((StatusCode::CREATED, Json(entry)).into_response())
}

/// One VFS Library entry.
#[utoipa::path(get, path = "/v1/vfs/{name}", tag = "vfs", params(("name" = String, Path, description = "entry id or name")),
    responses((status = 200, body = serde_json::Value), (status = 404, body = ErrorBody)))]
pub async fn get_vfs(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(
        serde_json::to_value(state.store.find_vfs_entry(&name).await?).unwrap_or_default(),
    ))
}

/// Replace a VFS Library entry's type and settings (checked as for `POST /v1/vfs`).
#[utoipa::path(put, path = "/v1/vfs/{name}", tag = "vfs", params(("name" = String, Path, description = "entry id or name")), request_body = VfsBody,
    responses((status = 200, body = serde_json::Value), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_vfs(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(name): Path<String>,
    ApiJson(b): ApiJson<VfsBody>,
) -> ApiResult<Json<serde_json::Value>> {
    let entry = save_vfs_entry(&state.store, &name, &b.kind, b.settings, SaveMode::Replace).await?;
    Ok(Json(serde_json::to_value(entry).unwrap_or_default()))
}

/// Delete a VFS Library entry.
#[utoipa::path(delete, path = "/v1/vfs/{name}", tag = "vfs", params(("name" = String, Path, description = "entry id or name")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_vfs(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    state.store.delete_vfs_entry(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every node of the cluster with its heartbeat and running jobs.
#[utoipa::path(get, path = "/v1/nodes", tag = "service", responses((status = 200, body = serde_json::Value)))]
pub async fn list_nodes(
    State(state): State<AppState>,
    _a: AdminCaller,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(
        serde_json::to_value(state.store.list_nodes().await?).unwrap_or_default(),
    ))
}
