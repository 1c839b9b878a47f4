//! Health, first-admin setup and sign-in sessions: `/v1/health`, `/v1/setup`, `/v1/session`.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use aft_store::Secret;

use crate::auth::{
    AdminCaller, AuthBucket, Caller, SESSION_COOKIE, csrf_token, peer_ip, session_cookie,
};
use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::state::AppState;

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
