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
    /// For an admin with two-factor sign-in: the code of the authenticator app, or one of
    /// the recovery codes.
    #[serde(default)]
    pub code: Option<String>,
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
    /// What this admin may do (`admin`, `operator`, `viewer`; `admin` for the CLI token):
    /// the web UI hides what the role cannot do, the server refuses it.
    pub role: String,
    /// Whether this admin signs in with a two-factor code.
    pub two_factor: bool,
}

/// Service health.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// `ok`, or `degraded` while the database does not answer (the service itself is up).
    pub status: String,
    /// `ok`, or why the database did not answer a ping within 2 s.
    pub store: String,
    /// This node's id.
    pub node_id: String,
    /// aft's version.
    pub version: String,
    /// Jobs running on this node.
    pub running_jobs: usize,
}

/// How long a health or readiness check waits for the database.
const STORE_PING_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Ping the store within [`STORE_PING_LIMIT`]; `Err` says why it did not answer.
async fn ping_store(state: &AppState) -> Result<(), String> {
    match tokio::time::timeout(STORE_PING_LIMIT, state.store.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "the database did not answer within {} s",
            STORE_PING_LIMIT.as_secs()
        )),
    }
}

/// Is the service up (no authentication): always 200 while it answers (liveness), with
/// the database's state in `store`.
#[utoipa::path(get, path = "/v1/health", tag = "service", responses((status = 200, body = Health)))]
pub async fn health(State(state): State<AppState>) -> Json<Health> {
    let store = ping_store(&state).await;
    Json(Health {
        status: if store.is_ok() { "ok" } else { "degraded" }.into(),
        store: store.err().unwrap_or_else(|| "ok".into()),
        node_id: state.runner.node_id().to_string(),
        version: env!("CARGO_PKG_VERSION").into(),
        running_jobs: state.runner.running_count(),
    })
}

/// Readiness.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ready {
    /// `ready`.
    pub status: String,
}

/// Can the service do its work (no authentication): 200 when the database answers, 503
/// with `Retry-After` while it does not, for load balancers and orchestrators.
#[utoipa::path(get, path = "/v1/ready", tag = "service",
    responses((status = 200, body = Ready), (status = 503, body = ErrorBody)))]
pub async fn ready(State(state): State<AppState>) -> ApiResult<Json<Ready>> {
    match ping_store(&state).await {
        Ok(()) => Ok(Json(Ready {
            status: "ready".into(),
        })),
        Err(why) => Err(ApiError::unavailable(format!(
            "not ready: the database is unavailable ({why})"
        ))),
    }
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
    let code = c.code.as_deref().unwrap_or("");
    if !crate::api::two_factor::second_factor_ok(&state, &admin.username, code).await? {
        return Err(ApiError::unauthorized(if code.is_empty() {
            "two-factor code required: send the code of the authenticator app (or a recovery code) as code"
        } else {
            "wrong two-factor code"
        }));
    }
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
    let account = state.store.admin_account(&admin.username).await?;
    let view = SessionView {
        username: admin.username,
        csrf_token: Some(csrf_token(token.expose())),
        expires_at: Some(expires_at.to_rfc3339()),
        role: account.role.to_string(),
        two_factor: account.two_factor,
    };
    Ok((headers, Json(view)).into_response())
}

/// Who is signed in (with the CSRF token, so a reloaded page can recover it).
#[utoipa::path(get, path = "/v1/session", tag = "session",
    responses((status = 200, body = SessionView), (status = 401, body = ErrorBody)))]
pub async fn current_session(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    parts: axum::http::request::Parts,
) -> ApiResult<Json<SessionView>> {
    Ok(Json(match caller {
        Caller::Admin { username } => {
            let account = state.store.admin_account(&username).await?;
            SessionView {
                role: account.role.to_string(),
                two_factor: account.two_factor,
                username,
                csrf_token: session_cookie(&parts).map(|t| csrf_token(&t)),
                expires_at: None,
            }
        }
        _ => SessionView {
            username: "local".into(),
            csrf_token: None,
            expires_at: None,
            role: "admin".into(),
            two_factor: false,
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
