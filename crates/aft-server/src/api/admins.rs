//! `/v1/admins`: the admin users of the web UI — list them, change a password, delete one.
//! The first admin is made by `POST /v1/setup`, further ones by `aft admin create`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use aft_store::{AdminAccount, Role, Secret};

use crate::auth::AdminCaller;
use crate::error::{ApiJson, ApiResult, ErrorBody};
use crate::state::AppState;

/// An admin user as the API shows it (never a password hash).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminView {
    /// User name as created; sign-in matches it case-insensitively.
    pub username: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// What the admin may do: `admin`, `operator` or `viewer`.
    #[schema(value_type = String, example = "operator")]
    pub role: Role,
    /// Whether sign-in asks for a two-factor code.
    pub two_factor: bool,
}

impl From<AdminAccount> for AdminView {
    fn from(a: AdminAccount) -> AdminView {
        AdminView {
            username: a.username,
            created_at: a.created_at,
            role: a.role,
            two_factor: a.two_factor,
        }
    }
}

/// A new password.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PasswordBody {
    /// At least 8 characters.
    pub password: String,
}

/// Every admin, by user name.
#[utoipa::path(get, path = "/v1/admins", tag = "admins",
    responses((status = 200, body = Vec<AdminView>), (status = 401, body = ErrorBody)))]
pub async fn list_admins(
    State(state): State<AppState>,
    _a: AdminCaller,
) -> ApiResult<Json<Vec<AdminView>>> {
    let admins = state.store.admin_accounts().await?;
    Ok(Json(admins.into_iter().map(AdminView::from).collect()))
}

/// Set an admin's password; their sessions end, so every browser signed in as them has to
/// sign in again.
#[utoipa::path(put, path = "/v1/admins/{name}/password", tag = "admins", request_body = PasswordBody,
    params(("name" = String, Path, description = "user name (case-insensitive)")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn set_admin_password(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(name): Path<String>,
    ApiJson(b): ApiJson<PasswordBody>,
) -> ApiResult<StatusCode> {
    state
        .store
        .set_admin_password(&name, &Secret::new(b.password))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete an admin and end their sessions; the last admin cannot be deleted (409).
#[utoipa::path(delete, path = "/v1/admins/{name}", tag = "admins",
    params(("name" = String, Path, description = "user name (case-insensitive)")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_admin(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    state.store.delete_admin(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new admin user.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewAdminBody {
    /// User name (sign-in matches it ignoring case).
    pub username: String,
    /// At least 8 characters.
    pub password: String,
    /// `admin` (the default), `operator` or `viewer`.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "operator")]
    pub role: Option<Role>,
}

/// Create another admin (the first one comes from `POST /v1/setup`).
#[utoipa::path(post, path = "/v1/admins", tag = "admins", request_body = NewAdminBody,
    responses((status = 201, body = AdminView), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_admin(
    State(state): State<AppState>,
    _a: AdminCaller,
    ApiJson(b): ApiJson<NewAdminBody>,
) -> ApiResult<(StatusCode, Json<AdminView>)> {
    let admin = state
        .store
        .create_admin_with_role(
            &b.username,
            &Secret::new(b.password),
            b.role.unwrap_or_default(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(admin.into())))
}

/// A new role.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RoleBody {
    /// `admin`, `operator` or `viewer`.
    #[schema(value_type = String, example = "viewer")]
    pub role: Role,
}

/// Change an admin's role; the last admin with the `admin` role keeps it (409).
#[utoipa::path(put, path = "/v1/admins/{name}/role", tag = "admins", request_body = RoleBody,
    params(("name" = String, Path, description = "user name (case-insensitive)")),
    responses((status = 200, body = AdminView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn set_admin_role(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(name): Path<String>,
    ApiJson(b): ApiJson<RoleBody>,
) -> ApiResult<Json<AdminView>> {
    Ok(Json(
        state.store.set_admin_role(&name, b.role).await?.into(),
    ))
}
