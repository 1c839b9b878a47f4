//! Two-factor sign-in (TOTP, RFC 6238): an admin enrols with `POST` then `PUT
//! /v1/session/two-factor` (a QR code for the authenticator app, then a code from it, which
//! turns it on and gives one-time recovery codes); an admin resets another's with `DELETE
//! /v1/admins/{name}/two-factor`, the shell with `aft admin reset-2fa NAME`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use base64::Engine as _;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use totp_rs::{Algorithm, Builder, Totp};
use utoipa::ToSchema;

use aft_store::Secret;

use crate::auth::{AdminCaller, Caller};
use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::state::AppState;

/// How many recovery codes an enrolment gives.
const RECOVERY_CODES: usize = 10;

/// The TOTP of a base32 secret: SHA-1, 6 digits, 30 s, one step of clock skew either way
/// (what authenticator apps use).
fn totp(secret_b32: &str) -> Result<Totp, ApiError> {
    let internal = |e: String| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e);
    let secret =
        totp_rs::Secret::try_from_base32(secret_b32).map_err(|e| internal(format!("{e:?}")))?;
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(secret)
        .build()
        .map_err(|e| internal(format!("{e:?}")))
}

/// Whether `code` is the current code of `totp` (or of the step before or after).
fn current(totp: &Totp, code: &str) -> bool {
    totp.check_current(code.trim()).is_some()
}

/// Whether `code` is `username`'s current TOTP code or one of its unused recovery codes
/// (which is then used up). `Ok(true)` too when two-factor sign-in is off.
pub async fn second_factor_ok(state: &AppState, username: &str, code: &str) -> ApiResult<bool> {
    let Some((secret, true)) = state
        .store
        .two_factor_secret(&state.secrets_key, username)
        .await?
    else {
        return Ok(true);
    };
    let code = code.trim();
    if code.len() == 6 && code.chars().all(|c| c.is_ascii_digit()) {
        return Ok(current(&totp(secret.expose())?, code));
    }
    Ok(!code.is_empty() && state.store.use_recovery_code(username, code).await?)
}

/// The signed-in admin (the local CLI token has no second factor of its own).
fn admin_name(caller: &Caller) -> ApiResult<String> {
    match caller {
        Caller::Admin { username } => Ok(username.clone()),
        _ => Err(ApiError::bad_request(
            "two-factor sign-in is set up by a signed-in admin in the web UI",
        )),
    }
}

/// A new enrolment: what the authenticator app needs.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TwoFactorEnrolment {
    /// The shared secret, base32 (for typing into the app).
    pub secret: String,
    /// The `otpauth://` URL the QR code holds.
    pub otpauth_url: String,
    /// The QR code as an SVG `data:` URL, for an `<img>`.
    pub qr_code: String,
}

/// A code from the authenticator app.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TwoFactorCode {
    /// The 6 digits the app shows now.
    pub code: String,
}

/// Two-factor sign-in is on.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TwoFactorEnabled {
    /// One-time codes for signing in without the app; shown once, keep them safe.
    pub recovery_codes: Vec<String>,
}

/// Start setting up two-factor sign-in for the signed-in admin: a new secret and its QR
/// code. Sign-in asks for codes once a code is confirmed with `PUT`.
#[utoipa::path(post, path = "/v1/session/two-factor", tag = "session",
    responses((status = 200, body = TwoFactorEnrolment), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn begin_two_factor(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
) -> ApiResult<Json<TwoFactorEnrolment>> {
    let username = admin_name(&caller)?;
    let mut bytes = [0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = totp_rs::Secret::new_stack(bytes).to_base32();
    state
        .store
        .begin_two_factor(&state.secrets_key, &username, &Secret::new(secret.clone()))
        .await?;
    let label = format!("aft:{username}");
    let otpauth_url = format!(
        "otpauth://totp/{}?secret={secret}&issuer=aft&algorithm=SHA1&digits=6&period=30",
        label
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b':' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    );
    let svg = qrcode::QrCode::new(otpauth_url.as_bytes())
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .build();
    Ok(Json(TwoFactorEnrolment {
        secret,
        otpauth_url,
        qr_code: format!(
            "data:image/svg+xml;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(svg)
        ),
    }))
}

/// Confirm the enrolment with a code from the app: sign-in asks for codes from now on.
/// Answers the recovery codes (shown once).
#[utoipa::path(put, path = "/v1/session/two-factor", tag = "session", request_body = TwoFactorCode,
    responses((status = 200, body = TwoFactorEnabled), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn confirm_two_factor(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    ApiJson(body): ApiJson<TwoFactorCode>,
) -> ApiResult<Json<TwoFactorEnabled>> {
    let username = admin_name(&caller)?;
    let Some((secret, false)) = state
        .store
        .two_factor_secret(&state.secrets_key, &username)
        .await?
    else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no two-factor set-up to confirm (start one with POST, or it is already on)",
        ));
    };
    if !current(&totp(secret.expose())?, &body.code) {
        return Err(ApiError::bad_request(
            "that is not the current code of this secret; check the app's clock and try the next code",
        ));
    }
    let codes: Vec<String> = (0..RECOVERY_CODES)
        .map(|_| {
            let mut b = [0u8; 5];
            rand::rngs::OsRng.fill_bytes(&mut b);
            let hex = hex::encode(b);
            format!("{}-{}", &hex[..5], &hex[5..])
        })
        .collect();
    let secrets: Vec<Secret> = codes.iter().cloned().map(Secret::new).collect();
    state.store.confirm_two_factor(&username, &secrets).await?;
    Ok(Json(TwoFactorEnabled {
        recovery_codes: codes,
    }))
}

/// Turn off two-factor sign-in of an admin (a lost phone); they may set it up again.
#[utoipa::path(delete, path = "/v1/admins/{name}/two-factor", tag = "admins",
    params(("name" = String, Path, description = "user name (case-insensitive)")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn reset_two_factor(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    state.store.reset_two_factor(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
