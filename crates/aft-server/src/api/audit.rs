//! `/v1/audit`: read the audit trail and check its chain (the admin role only; records are
//! appended by [`crate::audit`], never through this API).

use axum::Json;
use axum::extract::{Query, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use aft_store::{AuditFilter, AuditRecord, AuditVerification};

use crate::auth::AdminCaller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

/// The most records one answer holds.
pub const MAX_AUDIT_PAGE: i64 = 1000;

/// Which records to list; every condition given must hold.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct AuditQuery {
    /// Only this actor: an admin, an API key's name, `local` (any case).
    pub actor: Option<String>,
    /// Only this kind of thing: `script`, `secret`, `vfs`, `apikey`, `schedule`, `watcher`,
    /// `setting`, `admin`, `session`, `job`, `audit`.
    pub kind: Option<String>,
    /// Only actions starting with this (`script.` or `session.failed`).
    pub action: Option<String>,
    /// Only this thing (a name or an id).
    pub target: Option<String>,
    /// Only records at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Only records before this time (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    /// Only records after this sequence number (paging in chain order).
    pub after_seq: Option<i64>,
    /// At most this many (default 200, at most 1000).
    pub limit: Option<i64>,
    /// `desc` (newest first, the default) or `asc` (chain order).
    pub order: Option<String>,
}

/// One audit record.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecordView {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// When it was recorded.
    pub at: DateTime<Utc>,
    /// Who: an admin, an API key's name, `local` for the CLI.
    pub actor: String,
    /// `admin`, `apikey`, `local`, `setup`, or `anonymous` (a failed sign-in).
    pub actor_kind: String,
    /// The caller's IP address; `local` for a CLI command that wrote the store.
    pub address: String,
    /// What happened: `<kind>.<verb>`.
    pub action: String,
    /// The kind of thing.
    pub kind: String,
    /// Its name or id.
    pub target: String,
    /// Its state before (never secret material).
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    /// Its state after (never secret material).
    #[schema(value_type = Option<Object>)]
    pub after: Option<serde_json::Value>,
    /// The request or command, and more.
    #[schema(value_type = Option<Object>)]
    pub detail: Option<serde_json::Value>,
    /// The hash of the record before.
    pub prev_hash: String,
    /// This record's hash.
    pub hash: String,
}

impl From<AuditRecord> for AuditRecordView {
    fn from(r: AuditRecord) -> AuditRecordView {
        AuditRecordView {
            seq: r.seq,
            at: r.at,
            actor: r.actor,
            actor_kind: r.actor_kind,
            address: r.address,
            action: r.action,
            kind: r.kind,
            target: r.target,
            before: r.before,
            after: r.after,
            detail: r.detail,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

/// A broken link of the chain.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditProblemView {
    /// The record concerned.
    pub seq: i64,
    /// What is wrong.
    pub problem: String,
}

/// The outcome of checking the chain.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditVerificationView {
    /// True when no problem was found.
    pub valid: bool,
    /// Records checked.
    pub records: u64,
    /// The newest record's number.
    pub head_seq: i64,
    /// The newest record's hash: keep it elsewhere to detect a rewrite of the whole chain.
    pub head_hash: String,
    /// Records up to this one were pruned by retention.
    pub pruned_through: i64,
    /// Every problem, naming its record.
    pub problems: Vec<AuditProblemView>,
}

impl From<AuditVerification> for AuditVerificationView {
    fn from(v: AuditVerification) -> AuditVerificationView {
        AuditVerificationView {
            valid: v.problems.is_empty(),
            records: v.records,
            head_seq: v.head_seq,
            head_hash: v.head_hash,
            pruned_through: v.pruned_through,
            problems: v
                .problems
                .into_iter()
                .map(|p| AuditProblemView {
                    seq: p.seq,
                    problem: p.problem,
                })
                .collect(),
        }
    }
}

/// Audit records, newest first unless `order=asc`.
#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Vec<AuditRecordView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list_audit(
    State(state): State<AppState>,
    _a: AdminCaller,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Vec<AuditRecordView>>> {
    let newest_first = match q.order.as_deref() {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "order must be asc or desc, not {other:?}"
            )));
        }
    };
    let limit = q.limit.unwrap_or(200);
    if !(1..=MAX_AUDIT_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_AUDIT_PAGE}"
        )));
    }
    let filter = AuditFilter {
        actor: q.actor,
        kind: q.kind,
        action: q.action,
        target: q.target,
        since: q.since,
        until: q.until,
        after_seq: q.after_seq,
        limit: Some(limit),
        newest_first,
    };
    let records = state.store.list_audit(&filter).await?;
    Ok(Json(records.into_iter().map(Into::into).collect()))
}

/// Check the whole chain: every record's hash and link, no gap, the head.
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit",
    responses((status = 200, body = AuditVerificationView), (status = 401, body = ErrorBody)))]
pub async fn verify_audit(
    State(state): State<AppState>,
    _a: AdminCaller,
) -> ApiResult<Json<AuditVerificationView>> {
    Ok(Json(state.store.verify_audit().await?.into()))
}
