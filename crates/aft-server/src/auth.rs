//! Who is calling: an API key (checked against its IP allow-list), an admin's session
//! cookie (with a CSRF header on state-changing requests), or the local token of
//! `service.json` (CLI delegation). Repeated failed attempts from one address get 429.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use aft_store::{ApiKey, ApiKeyCheck};

use crate::discovery::LOCAL_TOKEN_HEADER;
use crate::error::ApiError;
use crate::state::AppState;

/// Header carrying an API key.
pub const API_KEY_HEADER: &str = "X-API-Key";
/// Cookie carrying an admin session token.
pub const SESSION_COOKIE: &str = "aft_session";
/// Header a cookie-authenticated, state-changing request must carry (the value
/// `POST /v1/session` returned).
pub const CSRF_HEADER: &str = "X-CSRF-Token";

/// Failed attempts from one address within [`FAILURE_WINDOW`] before it gets 429.
const MAX_FAILURES: u32 = 10;
/// How long failures are remembered, and how long an address stays blocked.
const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// An authenticated caller.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A local CLI command holding the token from `service.json`: full access.
    Local,
    /// A signed-in admin: full access.
    Admin {
        /// The admin's user name.
        username: String,
    },
    /// An automation client with an API key: may queue jobs within its scope and read its
    /// own jobs.
    ApiKey(ApiKey),
}

impl Caller {
    /// Whether the caller may administer everything.
    pub fn is_admin(&self) -> bool {
        !matches!(self, Caller::ApiKey(_))
    }

    /// The API key id, for key callers.
    pub fn api_key_id(&self) -> Option<&str> {
        match self {
            Caller::ApiKey(key) => Some(&key.id),
            _ => None,
        }
    }
}

/// A caller with full access (admin session or local token); API keys get 403.
#[derive(Debug, Clone)]
pub struct AdminCaller(pub Caller);

/// Counts failed authentications per address; blocks an address after too many.
#[derive(Default)]
pub struct FailedAuthLimiter {
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl FailedAuthLimiter {
    /// Whether `ip` is blocked now.
    pub fn is_blocked(&self, ip: IpAddr) -> bool {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        matches!(failures.get(&ip), Some((n, since)) if *n >= MAX_FAILURES && since.elapsed() < FAILURE_WINDOW)
    }

    /// Count one failure from `ip`.
    pub fn record_failure(&self, ip: IpAddr) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() > 100_000 {
            failures.retain(|_, (_, since)| since.elapsed() < FAILURE_WINDOW);
        }
        let entry = failures.entry(ip).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= FAILURE_WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }
}

/// The CSRF token that goes with a session token (derived, so nothing more is stored).
pub fn csrf_token(session_token: &str) -> String {
    hex::encode(Sha256::digest(
        format!("aft-csrf:{session_token}").as_bytes(),
    ))
}

/// The session token from the request's cookies, if any.
pub fn session_cookie(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_string())
}

fn too_many() -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too many failed authentication attempts from this address; wait a minute",
    )
}

/// The caller's address as the connection shows it.
pub fn peer_ip(parts: &Parts) -> Result<IpAddr, ApiError> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .ok_or_else(|| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "peer address unknown"))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let ip = peer_ip(parts)?;
        if state.limiter.is_blocked(ip) {
            return Err(too_many());
        }
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        if let Some(token) = header(LOCAL_TOKEN_HEADER) {
            if bool::from(token.as_bytes().ct_eq(state.local_token.as_bytes())) {
                return Ok(Caller::Local);
            }
            state.limiter.record_failure(ip);
            return Err(ApiError::unauthorized("invalid local token"));
        }
        if let Some(key) = header(API_KEY_HEADER) {
            let check = state.store.authenticate_api_key(key).await?;
            return match check {
                ApiKeyCheck::Valid(key) if key.allow_list.allows(ip) => Ok(Caller::ApiKey(key)),
                ApiKeyCheck::Valid(key) => {
                    state.limiter.record_failure(ip);
                    Err(ApiError::forbidden(format!(
                        "API key {:?} is not allowed from {ip}; add the address with 'aft apikey' or the web UI",
                        key.name
                    )))
                }
                ApiKeyCheck::Revoked(key) => {
                    state.limiter.record_failure(ip);
                    Err(ApiError::unauthorized(format!(
                        "API key {:?} was revoked",
                        key.name
                    )))
                }
                ApiKeyCheck::Expired(key) => {
                    state.limiter.record_failure(ip);
                    Err(ApiError::unauthorized(format!(
                        "API key {:?} has expired",
                        key.name
                    )))
                }
                ApiKeyCheck::Unknown => {
                    state.limiter.record_failure(ip);
                    Err(ApiError::unauthorized("invalid API key"))
                }
            };
        }
        if let Some(token) = session_cookie(parts) {
            let Some(session) = state.store.session(&token).await? else {
                state.limiter.record_failure(ip);
                return Err(ApiError::unauthorized(
                    "session expired or unknown; sign in again",
                ));
            };
            let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
            if !safe {
                let expected = csrf_token(&token);
                let given = header(CSRF_HEADER).unwrap_or("");
                if !bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
                    return Err(ApiError::forbidden(format!(
                        "missing or wrong {CSRF_HEADER} header (use the csrfToken from sign-in)"
                    )));
                }
            }
            return Ok(Caller::Admin {
                username: session.username,
            });
        }
        Err(ApiError::unauthorized(format!(
            "authentication required: send an {API_KEY_HEADER} header, or sign in"
        )))
    }
}

impl FromRequestParts<AppState> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<AdminCaller, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if !caller.is_admin() {
            return Err(ApiError::forbidden(
                "API keys may only queue jobs and read their own jobs",
            ));
        }
        Ok(AdminCaller(caller))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_blocks_an_address_after_repeated_failures_only() {
        let limiter = FailedAuthLimiter::default();
        let bad: IpAddr = "127.0.0.9".parse().unwrap();
        let good: IpAddr = "127.0.0.8".parse().unwrap();
        for _ in 0..MAX_FAILURES - 1 {
            limiter.record_failure(bad);
        }
        assert!(!limiter.is_blocked(bad));
        limiter.record_failure(bad);
        assert!(limiter.is_blocked(bad));
        assert!(!limiter.is_blocked(good));
    }
}
