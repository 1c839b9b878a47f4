//! `/v1/scripts/{id}/policy` (a stored script's retry policy, notifications and chains) and
//! `/v1/notifications` (the notification outbox and its dead-letter list).

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use aft_store::{Notification, NotificationState};

use crate::auth::AdminCaller;
use crate::error::{ApiJson, ApiResult, ErrorBody};
use crate::followups::{
    ChainPolicy, NotifyPolicy, RetryPolicy, ScriptPolicy, load_policy, save_policy,
};
use crate::state::AppState;

/// A script's policy as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyView {
    /// The script's name.
    pub script: String,
    /// Run the script again when a job of it fails; absent = never.
    pub retry: Option<RetryPolicy>,
    /// Tell someone how its jobs end; absent = only the global notifications.
    pub notify: Option<NotifyPolicy>,
    /// Scripts to start when its job ends; absent = none.
    pub chain: Option<ChainPolicy>,
}

impl PolicyView {
    fn of(script: String, policy: ScriptPolicy) -> PolicyView {
        PolicyView {
            script,
            retry: policy.retry,
            notify: policy.notify,
            chain: policy.chain,
        }
    }
}

/// The retry policy, notifications and chains of a stored script.
#[utoipa::path(get, path = "/v1/scripts/{id}/policy", tag = "scripts",
    params(("id" = String, Path, description = "script id or name")),
    responses((status = 200, body = PolicyView), (status = 404, body = ErrorBody)))]
pub async fn get_policy(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<PolicyView>> {
    let script = state.store.find_script(&id).await?;
    let policy = load_policy(&state.store, &script.id).await?;
    Ok(Json(PolicyView::of(script.name, policy)))
}

/// Replace the retry policy, notifications and chains of a stored script (a section left
/// out is removed). Chains must name stored scripts and may not lead back to this one.
#[utoipa::path(put, path = "/v1/scripts/{id}/policy", tag = "scripts",
    params(("id" = String, Path, description = "script id or name")), request_body = ScriptPolicy,
    responses(
        (status = 200, body = PolicyView),
        (status = 400, description = "a value out of range, or a chain naming a script that is not stored", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "the chains would make a cycle (the error names it)", body = ErrorBody),
    ))]
pub async fn put_policy(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(id): Path<String>,
    ApiJson(policy): ApiJson<ScriptPolicy>,
) -> ApiResult<Json<PolicyView>> {
    let (script, policy) = save_policy(&state.store, &id, policy).await?;
    Ok(Json(PolicyView::of(script.name, policy)))
}

/// A notification as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationView {
    /// Id.
    pub id: String,
    /// The job it is about.
    pub job_id: String,
    /// The job's script name, if any.
    pub script_name: Option<String>,
    /// failure, success or recovery.
    pub event: String,
    /// webhook or email.
    pub channel: String,
    /// The URL or the mail address.
    pub target: String,
    /// pending, sending, delivered or dead.
    pub state: String,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// When the next attempt is due (pending ones).
    pub next_at: String,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// What is sent: the webhook body, or the mail's subject and body.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// When it was made.
    pub created_at: String,
    /// When the peer accepted it.
    pub delivered_at: Option<String>,
}

impl From<Notification> for NotificationView {
    fn from(n: Notification) -> NotificationView {
        NotificationView {
            id: n.id,
            job_id: n.job_id,
            script_name: n.script_name,
            event: n.event,
            channel: n.channel,
            target: n.target,
            state: n.state.as_str().into(),
            attempts: n.attempts,
            next_at: n.next_at,
            last_error: n.last_error,
            payload: n.payload,
            created_at: n.created_at,
            delivered_at: n.delivered_at,
        }
    }
}

/// Filters of `GET /v1/notifications`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NotificationQuery {
    /// Only notifications in this state: pending, sending, delivered or dead (the
    /// dead-letter list).
    pub state: Option<String>,
    /// At most this many, newest first (1..1000, default 100).
    pub limit: Option<i64>,
}

/// Notifications, newest first.
#[utoipa::path(get, path = "/v1/notifications", tag = "notifications", params(NotificationQuery),
    responses((status = 200, body = Vec<NotificationView>)))]
pub async fn list_notifications(
    State(state): State<AppState>,
    _a: AdminCaller,
    Query(q): Query<NotificationQuery>,
) -> ApiResult<Json<Vec<NotificationView>>> {
    let filter = q
        .state
        .as_deref()
        .map(NotificationState::parse)
        .transpose()?;
    let list = state
        .store
        .list_notifications(filter, q.limit.unwrap_or(100))
        .await?;
    Ok(Json(list.into_iter().map(NotificationView::from).collect()))
}

/// What a retry queued again.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Retried {
    /// The ids of the notifications queued for delivery again.
    pub retried: Vec<String>,
}

/// Deliver every dead notification again, with fresh attempts.
#[utoipa::path(post, path = "/v1/notifications/retry", tag = "notifications",
    responses((status = 200, body = Retried)))]
pub async fn retry_dead(
    State(state): State<AppState>,
    _a: AdminCaller,
) -> ApiResult<Json<Retried>> {
    let retried = state.store.retry_dead_notifications(None).await?;
    Ok(Json(Retried { retried }))
}

/// Deliver one dead notification again, with fresh attempts.
#[utoipa::path(post, path = "/v1/notifications/{id}/retry", tag = "notifications",
    params(("id" = String, Path, description = "notification id")),
    responses(
        (status = 200, body = Retried),
        (status = 404, body = ErrorBody),
        (status = 409, description = "the notification is not dead", body = ErrorBody),
    ))]
pub async fn retry_one(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<Retried>> {
    let retried = state.store.retry_dead_notifications(Some(&id)).await?;
    Ok(Json(Retried { retried }))
}
