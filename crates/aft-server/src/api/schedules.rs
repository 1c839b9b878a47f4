//! `/v1/schedules`: cron schedules that queue stored scripts, their next fire times and
//! their slot history (fired, waiting, skipped, missed, failed).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use aft_store::{
    MisfirePolicy, NewSchedule, OverlapPolicy, Schedule, ScheduleSlot, ScheduleUpdate,
};

use crate::auth::AdminCaller;
use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::state::AppState;

/// A schedule as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleView {
    /// Id (UUIDv7).
    pub id: String,
    /// Name (unique, case-insensitive).
    pub name: String,
    /// The stored script it queues.
    pub script_name: String,
    /// The cron expression.
    pub cron: String,
    /// The IANA time zone the expression is read in.
    pub time_zone: String,
    /// Parameters of each job (a flat object of strings).
    pub params: BTreeMap<String, String>,
    /// The overlap policy: `skip`, `queue` or `allow`.
    pub overlap: String,
    /// The misfire policy: `skip` or `run-once`.
    pub misfire: String,
    /// Whether it fires.
    pub enabled: bool,
    /// The newest slot decided (or when it was created or enabled): slots after it are due.
    pub last_slot: DateTime<Utc>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<Schedule> for ScheduleView {
    fn from(s: Schedule) -> ScheduleView {
        ScheduleView {
            id: s.id,
            name: s.name,
            script_name: s.script_name,
            cron: s.cron,
            time_zone: s.time_zone,
            params: s.params.into_map(),
            overlap: s.overlap.as_str().to_string(),
            misfire: s.misfire.as_str().to_string(),
            enabled: s.enabled,
            last_slot: s.last_slot,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// One decided slot of a schedule.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleSlotView {
    /// The schedule's id.
    pub schedule_id: String,
    /// The fire time.
    pub slot_time: DateTime<Utc>,
    /// How it was decided: `fired`, `waiting`, `skipped`, `missed` or `failed`.
    pub status: String,
    /// The job it queued, if it fired.
    pub job_id: Option<String>,
    /// The node that decided it.
    pub node_id: String,
    /// Why it failed, or what else happened.
    pub detail: Option<String>,
    /// When it was decided.
    pub decided_at: DateTime<Utc>,
    /// The status of the job it queued (`succeeded`, `failed`, ...), listed by
    /// `GET /v1/schedules/{name}/slots`; absent when it queued none or the job was purged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_status: Option<String>,
}

impl From<ScheduleSlot> for ScheduleSlotView {
    fn from(s: ScheduleSlot) -> ScheduleSlotView {
        ScheduleSlotView {
            schedule_id: s.schedule_id,
            slot_time: s.slot_time,
            status: s.status.as_str().to_string(),
            job_id: s.job_id,
            node_id: s.node_id,
            detail: s.detail,
            decided_at: s.decided_at,
            job_status: None,
        }
    }
}

/// A schedule to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleBody {
    /// Name (unique, case-insensitive).
    pub name: String,
    /// The stored script to queue.
    pub script: String,
    /// Cron expression: 5 fields, 6 with seconds first, or `@daily`, `@hourly`, ...
    pub cron: String,
    /// IANA time zone the expression is read in (default `UTC`).
    pub time_zone: Option<String>,
    /// Parameters of each job (a flat JSON object; default `{}`).
    pub params: Option<serde_json::Value>,
    /// `skip` (default), `queue` or `allow`.
    pub overlap: Option<String>,
    /// `skip` (default) or `run-once`.
    pub misfire: Option<String>,
    /// Whether it fires (default true).
    pub enabled: Option<bool>,
}

/// What to change in a schedule; a field left out keeps its value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduleEditBody {
    /// The stored script to queue.
    pub script: Option<String>,
    /// Cron expression: 5 fields, 6 with seconds first, or `@daily`, `@hourly`, ...
    pub cron: Option<String>,
    /// IANA time zone the expression is read in.
    pub time_zone: Option<String>,
    /// Parameters of each job (a flat JSON object).
    pub params: Option<serde_json::Value>,
    /// `skip`, `queue` or `allow`.
    pub overlap: Option<String>,
    /// `skip` or `run-once`.
    pub misfire: Option<String>,
    /// Whether it fires.
    pub enabled: Option<bool>,
}

/// `enabled` to set.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EnabledBody {
    /// Whether the schedule fires.
    pub enabled: bool,
}

/// `?n=` for the preview.
#[derive(Debug, Deserialize, IntoParams)]
pub struct NextQuery {
    /// How many fire times (default 10, at most 1000).
    pub n: Option<usize>,
    /// Start after this RFC 3339 time instead of now.
    pub from: Option<String>,
}

/// `?limit=` for the slot history.
#[derive(Debug, Deserialize, IntoParams)]
pub struct SlotsQuery {
    /// How many slots, newest first (default 100).
    pub limit: Option<i64>,
}

/// The next fire times of a schedule.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NextFires {
    /// The schedule's time zone.
    pub time_zone: String,
    /// Fire times as RFC 3339 with the zone's offset.
    pub local: Vec<String>,
    /// The same instants in UTC.
    pub utc: Vec<String>,
}

/// All schedules.
#[utoipa::path(get, path = "/v1/schedules", tag = "schedules", responses((status = 200, body = Vec<ScheduleView>)))]
pub async fn list_schedules(
    State(state): State<AppState>,
    _a: AdminCaller,
) -> ApiResult<Json<Vec<ScheduleView>>> {
    let schedules = state.store.list_schedules().await?;
    Ok(Json(
        schedules.into_iter().map(ScheduleView::from).collect(),
    ))
}

/// Create a schedule.
#[utoipa::path(post, path = "/v1/schedules", tag = "schedules", request_body = ScheduleBody,
    responses((status = 201, body = ScheduleView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_schedule(
    State(state): State<AppState>,
    _a: AdminCaller,
    ApiJson(b): ApiJson<ScheduleBody>,
) -> ApiResult<Response> {
    let overlap = OverlapPolicy::parse(b.overlap.as_deref().unwrap_or("skip"))?;
    let misfire = MisfirePolicy::parse(b.misfire.as_deref().unwrap_or("skip"))?;
    let schedule = state
        .store
        .create_schedule(NewSchedule {
            name: b.name,
            script_name: b.script,
            cron: b.cron,
            time_zone: b.time_zone.unwrap_or_else(|| "UTC".into()),
            params: super::job_params(b.params)?,
            overlap,
            misfire,
            enabled: b.enabled.unwrap_or(true),
        })
        .await?;
    Ok((StatusCode::CREATED, Json(ScheduleView::from(schedule))).into_response())
}

/// One schedule by id or name.
#[utoipa::path(get, path = "/v1/schedules/{name}", tag = "schedules", params(("name" = String, Path, description = "schedule name or id")),
    responses((status = 200, body = ScheduleView), (status = 404, body = ErrorBody)))]
pub async fn get_schedule(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(name): Path<String>,
) -> ApiResult<Json<ScheduleView>> {
    Ok(Json(state.store.find_schedule(&name).await?.into()))
}

/// Change a schedule's script, cron expression, time zone, params, policies or `enabled`
/// (fields left out keep their value). A new cron expression or time zone starts from its
/// first slot after the edit; slots of the old one that came due before are decided once.
#[utoipa::path(put, path = "/v1/schedules/{name}", tag = "schedules", request_body = ScheduleEditBody,
    params(("name" = String, Path, description = "schedule name or id")),
    responses((status = 200, body = ScheduleView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_schedule(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(name): Path<String>,
    ApiJson(b): ApiJson<ScheduleEditBody>,
) -> ApiResult<Json<ScheduleView>> {
    let update = ScheduleUpdate {
        script_name: b.script,
        cron: b.cron,
        time_zone: b.time_zone,
        params: b.params.map(|p| super::job_params(Some(p))).transpose()?,
        overlap: b.overlap.as_deref().map(OverlapPolicy::parse).transpose()?,
        misfire: b.misfire.as_deref().map(MisfirePolicy::parse).transpose()?,
        enabled: b.enabled,
    };
    let schedule = state
        .store
        .update_schedule(&name, update, state.runner.node_id())
        .await?;
    // The edit may have fired the old expression's last due slots.
    state.runner.wake();
    Ok(Json(schedule.into()))
}

/// Delete a schedule and its slot history (its jobs stay).
#[utoipa::path(delete, path = "/v1/schedules/{name}", tag = "schedules", params(("name" = String, Path, description = "schedule name or id")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_schedule(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    state.store.delete_schedule(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Enable or disable a schedule (enabling does not run the slots passed while disabled).
#[utoipa::path(put, path = "/v1/schedules/{name}/enabled", tag = "schedules", request_body = EnabledBody,
    params(("name" = String, Path, description = "schedule name or id")),
    responses((status = 200, body = ScheduleView), (status = 404, body = ErrorBody)))]
pub async fn set_schedule_enabled(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(name): Path<String>,
    ApiJson(b): ApiJson<EnabledBody>,
) -> ApiResult<Json<ScheduleView>> {
    let schedule = state.store.set_schedule_enabled(&name, b.enabled).await?;
    Ok(Json(schedule.into()))
}

/// The next N fire times of a schedule, after now or `from`.
#[utoipa::path(get, path = "/v1/schedules/{name}/next", tag = "schedules", params(("name" = String, Path, description = "schedule name or id"), NextQuery),
    responses((status = 200, body = NextFires), (status = 404, body = ErrorBody)))]
pub async fn next_fires(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(name): Path<String>,
    Query(q): Query<NextQuery>,
) -> ApiResult<Json<NextFires>> {
    let n = q.n.unwrap_or(10);
    if n == 0 || n > 1000 {
        return Err(ApiError::bad_request("n must be between 1 and 1000"));
    }
    let schedule = state.store.find_schedule(&name).await?;
    let times = schedule.times()?;
    let from = match &q.from {
        Some(text) => chrono::DateTime::parse_from_rfc3339(text)
            .map_err(|e| {
                ApiError::bad_request(format!("from {text:?} is not an RFC 3339 time: {e}"))
            })?
            .with_timezone(&chrono::Utc),
        None => chrono::Utc::now(),
    };
    let fires = times.next_n(from, n);
    Ok(Json(NextFires {
        time_zone: schedule.time_zone.clone(),
        local: fires
            .iter()
            .map(|t| t.with_timezone(&times.time_zone()).to_rfc3339())
            .collect(),
        utc: fires
            .iter()
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .collect(),
    }))
}

/// A schedule's decided slots, newest first: fired (with the job id), waiting, skipped,
/// missed, failed.
#[utoipa::path(get, path = "/v1/schedules/{name}/slots", tag = "schedules", params(("name" = String, Path, description = "schedule name or id"), SlotsQuery),
    responses((status = 200, body = Vec<ScheduleSlotView>), (status = 404, body = ErrorBody)))]
pub async fn list_slots(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(name): Path<String>,
    Query(q): Query<SlotsQuery>,
) -> ApiResult<Json<Vec<ScheduleSlotView>>> {
    let schedule = state.store.find_schedule(&name).await?;
    let slots = state
        .store
        .list_slots(&schedule.id, q.limit.unwrap_or(100))
        .await?;
    let mut views = Vec::with_capacity(slots.len());
    for slot in slots {
        let mut view = ScheduleSlotView::from(slot);
        if let Some(job_id) = &view.job_id {
            // A purged job (retention) leaves the slot without a result, not an error.
            view.job_status = match state.store.get_job(job_id).await {
                Ok(job) => Some(job.status.as_str().to_string()),
                Err(aft_store::StoreError::NotFound { .. }) => None,
                Err(e) => return Err(e.into()),
            };
        }
        views.push(view);
    }
    Ok(Json(views))
}

#[cfg(test)]
mod tests {
    use super::*;

    use aft_store::SlotStatus;

    #[test]
    fn schedule_view_serializes_as_the_store_schedule_did() {
        let mut params = aft_store::JobParams::default();
        params.insert("region", "eu");
        let schedule = Schedule {
            id: "0190-schedule".into(),
            name: "nightly".into(),
            script_name: "Nightly".into(),
            cron: "0 2 * * *".into(),
            time_zone: "Europe/Berlin".into(),
            params,
            overlap: OverlapPolicy::Queue,
            misfire: MisfirePolicy::RunOnce,
            enabled: true,
            last_slot: Utc::now(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        let other = Schedule {
            params: aft_store::JobParams::default(),
            overlap: OverlapPolicy::Allow,
            misfire: MisfirePolicy::Skip,
            enabled: false,
            ..schedule.clone()
        };
        let third = Schedule {
            overlap: OverlapPolicy::Skip,
            ..schedule.clone()
        };
        for s in [schedule, other, third] {
            assert_eq!(
                serde_json::to_value(ScheduleView::from(s.clone())).unwrap(),
                serde_json::to_value(s).unwrap()
            );
        }
    }

    #[test]
    fn slot_view_serializes_as_the_store_slot_did() {
        for status in [
            SlotStatus::Fired,
            SlotStatus::Waiting,
            SlotStatus::Skipped,
            SlotStatus::Missed,
            SlotStatus::Failed,
        ] {
            let slot = ScheduleSlot {
                schedule_id: "0190-schedule".into(),
                slot_time: Utc::now(),
                status,
                job_id: (status == SlotStatus::Fired).then(|| "0190-job".into()),
                node_id: "node-1".into(),
                detail: (status == SlotStatus::Failed).then(|| "script deleted".into()),
                decided_at: Utc::now(),
            };
            assert_eq!(
                serde_json::to_value(ScheduleSlotView::from(slot.clone())).unwrap(),
                serde_json::to_value(slot).unwrap()
            );
        }
    }
}
