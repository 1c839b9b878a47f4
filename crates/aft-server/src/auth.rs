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

/// The local CLI of this machine (the token of `service.json`); any other caller gets 403,
/// before the request's body is read.
#[derive(Debug, Clone)]
pub struct LocalCaller;

/// What a failed authentication is counted against, beside the caller's address: a flood
/// of one kind (bad API keys) must not lock out another (the local token, sign-in), and a
/// flood against one admin must not lock out the others.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AuthBucket {
    /// Sign-ins as this user (case-folded name).
    SignIn(String),
    /// Sign-ins as anyone: a cap on user-name spraying from one address.
    AnySignIn,
    /// API keys.
    ApiKey,
    /// The local CLI token.
    LocalToken,
    /// Session cookies.
    Session,
}

impl AuthBucket {
    /// Failures (or, for sign-ins, attempts) allowed per address in [`FAILURE_WINDOW`].
    fn limit(&self) -> u32 {
        match self {
            AuthBucket::AnySignIn => MAX_FAILURES * 5,
            _ => MAX_FAILURES,
        }
    }
}

/// Counts failed authentications per address and [`AuthBucket`]; refuses a bucket after
/// too many, for the rest of its window.
#[derive(Default)]
pub struct FailedAuthLimiter {
    failures: Mutex<HashMap<(IpAddr, AuthBucket), (u32, Instant)>>,
}

impl FailedAuthLimiter {
    /// Seconds until `bucket` of `ip` takes attempts again, if it is refusing now.
    pub fn blocked_for(&self, ip: IpAddr, bucket: &AuthBucket) -> Option<u64> {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        match failures.get(&(ip, bucket.clone())) {
            Some((n, since)) if *n >= bucket.limit() && since.elapsed() < FAILURE_WINDOW => {
                Some((FAILURE_WINDOW - since.elapsed()).as_secs() + 1)
            }
            _ => None,
        }
    }

    /// Count one failure of `bucket` from `ip`.
    pub fn record_failure(&self, ip: IpAddr, bucket: AuthBucket) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() > 100_000 {
            failures.retain(|_, (_, since)| since.elapsed() < FAILURE_WINDOW);
        }
        let entry = failures.entry((ip, bucket)).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= FAILURE_WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    /// Count an attempt *before* checking it (a password check costs argon2's CPU and
    /// memory, so concurrent guesses must not all get one): `Err(seconds)` when `bucket` is
    /// used up. Undo it with [`release`](Self::release) when the attempt succeeds.
    pub fn reserve(&self, ip: IpAddr, bucket: AuthBucket) -> Result<(), u64> {
        if let Some(wait) = self.blocked_for(ip, &bucket) {
            return Err(wait);
        }
        self.record_failure(ip, bucket);
        Ok(())
    }

    /// Take back one reserved attempt of `bucket` (it succeeded).
    pub fn release(&self, ip: IpAddr, bucket: AuthBucket) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = failures.get_mut(&(ip, bucket)) {
            entry.0 = entry.0.saturating_sub(1);
        }
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

/// 429 for a credential kind that failed too often from this address.
pub fn too_many(seconds: u64) -> ApiError {
    ApiError::too_many(
        format!("too many failed authentication attempts from this address; retry in {seconds} s"),
        seconds,
    )
}

/// Count a failure of `bucket`, or answer 429 when the bucket is already used up.
fn failed(state: &AppState, ip: IpAddr, bucket: AuthBucket, error: ApiError) -> ApiError {
    if let Some(wait) = state.limiter.blocked_for(ip, &bucket) {
        return too_many(wait);
    }
    state.limiter.record_failure(ip, bucket);
    error
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
        let caller = Caller::authenticate(parts, state).await?;
        // The route table decides what this caller's role may call; the audit trail notes
        // who is calling (crate::roles).
        crate::roles::admit(parts, state, &caller).await?;
        Ok(caller)
    }
}

impl Caller {
    /// Who is calling, from the request's credentials.
    async fn authenticate(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        // Valid credentials are checked first, so a flood of bad ones from this address
        // never locks them out; bad ones count per kind and are refused with 429 when
        // there were too many.
        let ip = peer_ip(parts)?;
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        if let Some(token) = header(LOCAL_TOKEN_HEADER) {
            if bool::from(token.as_bytes().ct_eq(state.local_token.as_bytes())) {
                return Ok(Caller::Local);
            }
            return Err(failed(
                state,
                ip,
                AuthBucket::LocalToken,
                ApiError::unauthorized("invalid local token"),
            ));
        }
        if let Some(key) = header(API_KEY_HEADER) {
            let check = state.store.authenticate_api_key(key).await?;
            let error = match check {
                ApiKeyCheck::Valid(key) if key.allow_list.allows(ip) => {
                    return Ok(Caller::ApiKey(key));
                }
                ApiKeyCheck::Valid(key) => ApiError::forbidden(format!(
                    "API key {:?} is not allowed from {ip}; add the address with 'aft apikey' or the web UI",
                    key.name
                )),
                ApiKeyCheck::Revoked(key) => {
                    ApiError::unauthorized(format!("API key {:?} was revoked", key.name))
                }
                ApiKeyCheck::Expired(key) => {
                    ApiError::unauthorized(format!("API key {:?} has expired", key.name))
                }
                ApiKeyCheck::Unknown => ApiError::unauthorized("invalid API key"),
            };
            return Err(failed(state, ip, AuthBucket::ApiKey, error));
        }
        if let Some(token) = session_cookie(parts) {
            let Some(session) = state.store.session(&token).await? else {
                return Err(failed(
                    state,
                    ip,
                    AuthBucket::Session,
                    ApiError::unauthorized("session expired or unknown; sign in again"),
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

impl FromRequestParts<AppState> for LocalCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<LocalCaller, ApiError> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::Local => Ok(LocalCaller),
            _ => Err(ApiError::forbidden(
                "only aft run on the service's own machine may hand over scripts",
            )),
        }
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
    fn limiter_refuses_one_address_and_kind_after_repeated_failures_only() {
        let limiter = FailedAuthLimiter::default();
        let bad: IpAddr = "127.0.0.9".parse().unwrap();
        let good: IpAddr = "127.0.0.8".parse().unwrap();
        for _ in 0..MAX_FAILURES - 1 {
            limiter.record_failure(bad, AuthBucket::ApiKey);
        }
        assert!(limiter.blocked_for(bad, &AuthBucket::ApiKey).is_none());
        limiter.record_failure(bad, AuthBucket::ApiKey);
        let wait = limiter.blocked_for(bad, &AuthBucket::ApiKey).unwrap();
        assert!((1..=60).contains(&wait), "{wait}");
        assert!(limiter.blocked_for(good, &AuthBucket::ApiKey).is_none());
        assert!(limiter.blocked_for(bad, &AuthBucket::LocalToken).is_none());
        let alice = AuthBucket::SignIn("alice".into());
        for _ in 0..MAX_FAILURES {
            assert!(limiter.reserve(bad, alice.clone()).is_ok());
        }
        assert!(limiter.reserve(bad, alice.clone()).is_err());
        limiter.release(bad, alice.clone());
        assert!(limiter.reserve(bad, alice).is_ok());
    }
}
