//! `/v1/jobs`: queue a job, list and read jobs, follow a job's log, halt a job.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use aft_store::LogLine;
use aft_store::Transfer;
use aft_store::{Job, JobFilter, JobStatus, NewJob};

use crate::audit::JobStartRecord;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::state::AppState;

/// The answer to `POST /v1/jobs`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobQueued {
    /// The new job's id.
    pub job_id: String,
    /// Always `queued`.
    pub status: String,
}

/// The body of `POST /v1/jobs`: exactly one of `scriptName`, `scriptId`, `filePath`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StartJob {
    /// A stored script's name (case-insensitive).
    pub script_name: Option<String>,
    /// A stored script's id.
    pub script_id: Option<String>,
    /// A `.syncjs` file on the service's disk.
    pub file_path: Option<String>,
    /// Parameters: a flat object (values are strings, numbers or booleans).
    #[schema(value_type = Option<Object>)]
    pub params: Option<serde_json::Value>,
    /// Run it as a dry run: nothing is changed, and the job ends with its plan.
    pub dry_run: Option<bool>,
}

/// A job as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    /// Job id.
    pub id: String,
    /// Queue position (monotonic); use as `before` for the next page.
    pub seq: i64,
    /// queued, running, succeeded, failed, halted or interrupted.
    pub status: String,
    /// The stored script's id, if any.
    pub script_id: Option<String>,
    /// The stored script's name, if any.
    pub script_name: Option<String>,
    /// The file on the service's disk, for `filePath` jobs.
    pub file_path: Option<String>,
    /// The parameters given.
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
    /// Who queued it: api, cli, delegate, schedule.
    pub origin: String,
    /// The node running (or that ran) it.
    pub node_id: Option<String>,
    /// Whether a halt was asked for.
    pub halt_requested: bool,
    /// How many times a node started it.
    pub attempts: i64,
    /// The script's exit code once ended.
    pub exit_code: Option<i64>,
    /// Why it failed, halted or was interrupted.
    pub error: Option<String>,
    /// When it was queued.
    pub created_at: String,
    /// When it (last) started.
    pub started_at: Option<String>,
    /// When it ended.
    pub finished_at: Option<String>,
    /// The first attempt, when this job is a retry of it (the script's retry policy).
    pub retry_of: Option<String>,
    /// Which attempt this is, from 1.
    pub retry_attempt: i64,
    /// A queued retry is not started before this time.
    pub not_before: Option<String>,
    /// The job whose end started this one through a chain.
    pub chained_from: Option<String>,
    /// What the script set with `SetResult`, if anything.
    pub result: Option<String>,
    /// Whether it is a dry run (absent when not).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// A dry run's plan, once it ended (`GET /v1/jobs/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<super::dry_run_types::Plan>,
    /// The version of its stored script the job ran (`GET /v1/scripts/{id}/versions`).
    pub script_version: Option<i64>,
    /// Who started it, in words: `admin alice`, `API key ci`, `schedule nightly`,
    /// `watcher inbox`, `aft run`, `aft cp`, `chain from SCRIPT`, `local` (absent for jobs
    /// queued before aft recorded it; `origin` then says where it came from).
    pub started_by: Option<String>,
}

impl From<Job> for JobView {
    fn from(j: Job) -> JobView {
        JobView {
            id: j.id,
            seq: j.seq,
            status: j.status.as_str().to_string(),
            script_id: j.script_id,
            script_name: j.script_name,
            file_path: j.file_path,
            params: j.params.to_json(),
            origin: j.origin,
            node_id: j.node_id,
            halt_requested: j.halt_requested,
            attempts: j.attempts,
            exit_code: j.exit_code,
            error: j.error,
            created_at: j.created_at,
            started_at: j.started_at,
            finished_at: j.finished_at,
            retry_of: j.retry_of,
            retry_attempt: j.retry_attempt,
            not_before: j.not_before,
            chained_from: j.chained_from,
            result: j.result,
            dry_run: false,
            plan: None,
            script_version: j.script_version,
            started_by: j.started_by,
        }
    }
}

/// A page of jobs, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobPage {
    /// The jobs.
    pub jobs: Vec<JobView>,
    /// Pass as `before` to get the next (older) page; absent on the last page.
    pub next_before: Option<i64>,
}

/// Filters of `GET /v1/jobs`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobQuery {
    /// Only jobs in this status.
    pub status: Option<String>,
    /// Only jobs of this script name (case-insensitive).
    pub script: Option<String>,
    /// Only jobs queued at or after this RFC 3339 time.
    pub since: Option<String>,
    /// Only jobs queued before this RFC 3339 time.
    pub until: Option<String>,
    /// Paging: only jobs with `seq` below this (the previous page's `nextBefore`).
    pub before: Option<i64>,
    /// Page size, 1..1000 (default 100).
    pub limit: Option<i64>,
}

/// One log line as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogLineView {
    /// Line number within the job, from 1.
    pub line: i64,
    /// When it was written.
    pub at: String,
    /// debug, info, warn or error.
    pub level: String,
    /// The text.
    pub message: String,
}

impl From<LogLine> for LogLineView {
    fn from(l: LogLine) -> LogLineView {
        LogLineView {
            line: l.line,
            at: l.at,
            level: l.level,
            message: l.message,
        }
    }
}

/// A job's log.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobLog {
    /// The job id.
    pub job_id: String,
    /// The job's status when the log was read.
    pub status: String,
    /// The lines after `after`, in order.
    pub lines: Vec<LogLineView>,
}

/// Options of `GET /v1/jobs/{id}/log`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// Only lines after this line number.
    pub after: Option<i64>,
    /// `true` to follow the log as server-sent events (same as `Accept: text/event-stream`).
    pub follow: Option<bool>,
    /// `text` for the log as a plain-text file to download (`job-ID.log`, one line each:
    /// time, level, message, as `aft run` prints them); `json` (the default) otherwise.
    pub format: Option<String>,
}

/// A job's transfer records.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransferView {
    /// When it was recorded.
    pub at: String,
    /// Where the file came from.
    pub source: String,
    /// Where it went.
    pub target: String,
    /// Bytes moved.
    pub bytes: i64,
    /// The file's digest in hex, if computed.
    pub hash: Option<String>,
    /// Which digest `hash` is: `blake3` (the default) or `sha256` (`Options.RecordHash`).
    pub hash_algo: Option<String>,
    /// Wall time in milliseconds.
    pub millis: i64,
    /// Attempts it took.
    pub attempts: i64,
    /// ok, skipped, or the error.
    pub outcome: String,
}

impl From<Transfer> for TransferView {
    fn from(t: Transfer) -> TransferView {
        TransferView {
            at: t.at,
            source: t.source,
            target: t.target,
            bytes: t.bytes,
            hash: t.hash,
            hash_algo: t.hash_algo,
            millis: t.millis,
            attempts: t.attempts,
            outcome: t.outcome,
        }
    }
}

/// The one answer to a `filePath` that cannot run, whatever the reason (outside the script
/// folders, missing, not a `.syncjs` file, unreadable), so a caller learns nothing about
/// which files exist.
const NOT_RUNNABLE: &str = "filePath must name a readable .syncjs file inside one of the script folders (setting script-folders)";

/// The `.syncjs` file at absolute `path` and its text, if it lies inside one of `folders`
/// once symlinks and `..` are resolved on both sides; `None` for any other path.
async fn read_script_file(path: &str, folders: &[String]) -> Option<(std::path::PathBuf, String)> {
    let path = std::path::Path::new(path);
    if !path.is_absolute() {
        return None;
    }
    let real = tokio::fs::canonicalize(path).await.ok()?;
    if real.extension().and_then(|e| e.to_str()) != Some("syncjs") {
        return None;
    }
    let mut inside = false;
    for folder in folders {
        if let Ok(root) = tokio::fs::canonicalize(folder).await
            && real.starts_with(&root)
        {
            inside = true;
            break;
        }
    }
    if !inside {
        return None;
    }
    let source = tokio::fs::read_to_string(&real).await.ok()?;
    Some((real, source))
}

/// Queue a stored script (by name or id) or a `.syncjs` file on the service's disk.
#[utoipa::path(post, path = "/v1/jobs", tag = "jobs", request_body = StartJob,
    security(("apiKey" = []), ("session" = [])),
    responses(
        (status = 202, description = "queued", body = JobQueued),
        (status = 400, description = "bad body: none or several of scriptName/scriptId/filePath, or params not a flat object", body = ErrorBody),
        (status = 401, description = "missing, unknown, expired or revoked key", body = ErrorBody),
        (status = 403, description = "caller address not in the key's allow-list, or script outside the key's scope", body = ErrorBody),
        (status = 404, description = "no such script or file", body = ErrorBody),
        (status = 429, description = "too many failed attempts from this address", body = ErrorBody),
    ))]
pub async fn create_job(
    State(state): State<AppState>,
    caller: Caller,
    record: JobStartRecord,
    body: Bytes,
) -> ApiResult<Response> {
    let body: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?;
    let Some(obj) = body.as_object() else {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    };
    let text_field = |name: &str| -> ApiResult<Option<String>> {
        match obj.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
            Some(_) => Err(ApiError::bad_request(format!(
                "{name} must be a non-empty string"
            ))),
        }
    };
    let script_name = text_field("scriptName")?;
    let script_id = text_field("scriptId")?;
    let file_path = text_field("filePath")?;
    let given = [&script_name, &script_id, &file_path]
        .iter()
        .filter(|f| f.is_some())
        .count();
    if given != 1 {
        return Err(ApiError::bad_request(format!(
            "give exactly one of scriptName, scriptId, filePath (got {given})"
        )));
    }
    let params = super::job_params(obj.get("params").cloned())?;
    let dry_run = match obj.get("dryRun") {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::bad_request("dryRun must be true or false")),
    };

    let mut job = NewJob {
        params,
        origin: "api".into(),
        api_key_id: caller.api_key_id().map(str::to_string),
        started_by: Some(crate::audit::caller_words(&caller)),
        ..Default::default()
    };
    if let Some(path) = file_path {
        if let Caller::ApiKey(key) = &caller
            && !key.file_runs
        {
            return Err(ApiError::forbidden(format!(
                "API key {:?} may not run files; an administrator grants that with 'aft apikey create --allow-file-runs'",
                key.name
            )));
        }
        let folders = state.store.settings().await?.script_folders;
        if folders.is_empty() {
            return Err(ApiError::forbidden(
                "filePath is disabled: an administrator lists the folders it may run from in the setting script-folders",
            ));
        }
        let Some((real, source)) = read_script_file(&path, &folders).await else {
            return Err(ApiError::forbidden(NOT_RUNNABLE));
        };
        job.source = source;
        job.file_path = Some(real.display().to_string());
    } else {
        // A key limited to named scripts learns nothing about the others: every script
        // outside its list, existing or not, gets the same 403.
        let scoped = match &caller {
            Caller::ApiKey(key) if key.scripts.is_some() => Some(key),
            _ => None,
        };
        let out_of_scope = |key: &aft_store::ApiKey| {
            ApiError::forbidden(format!(
                "API key {:?} may only start the scripts it names",
                key.name
            ))
        };
        if let (Some(key), Some(name)) = (scoped, &script_name)
            && !key.may_start(name)
        {
            return Err(out_of_scope(key));
        }
        let script = match (&script_name, &script_id) {
            (Some(name), _) => state.store.script_by_name(name).await?,
            (_, Some(id)) => state.store.get_script(id).await?,
            _ => None,
        };
        if let Some(key) = scoped
            && script_id.is_some()
            && !script.as_ref().is_some_and(|s| key.may_start(&s.name))
        {
            return Err(out_of_scope(key));
        }
        let Some(script) = script else {
            let what = script_name
                .map(|n| format!("named {n:?}"))
                .or(script_id.map(|i| format!("with id {i:?}")));
            return Err(ApiError::not_found(format!(
                "no stored script {}",
                what.unwrap_or_default()
            )));
        };
        if let Caller::ApiKey(key) = &caller
            && !key.may_start(&script.name)
        {
            return Err(ApiError::forbidden(format!(
                "API key {:?} may not start script {:?}",
                key.name, script.name
            )));
        }
        job.script_id = Some(script.id);
        job.script_name = Some(script.name);
        job.source = script.body;
        job.retry_safe = script.retry_safe;
    }
    let queued = state
        .store
        .enqueue_job_recorded(&job, dry_run, move |queued| {
            record.of(queued, StatusCode::ACCEPTED)
        })
        .await?;
    state.runner.wake();
    Ok((
        StatusCode::ACCEPTED,
        Json(JobQueued {
            job_id: queued.id,
            status: "queued".into(),
        }),
    )
        .into_response())
}

/// List jobs, newest first (an API key sees only the jobs it queued).
#[utoipa::path(get, path = "/v1/jobs", tag = "jobs", params(JobQuery),
    responses((status = 200, body = JobPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list_jobs(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<JobQuery>,
) -> ApiResult<Json<JobPage>> {
    let filter = JobFilter {
        status: q.status.as_deref().map(JobStatus::parse).transpose()?,
        script: q.script,
        since: q.since,
        until: q.until,
        api_key_id: caller.api_key_id().map(str::to_string),
        before_seq: q.before,
        limit: q.limit,
    };
    let limit = filter.limit.unwrap_or(100).clamp(1, 1000) as usize;
    let jobs = state.store.list_jobs(&filter).await?;
    let next_before = if jobs.len() == limit {
        jobs.last().map(|j| j.seq)
    } else {
        None
    };
    let ids: Vec<String> = jobs.iter().map(|j| j.id.clone()).collect();
    let dry_runs = state.store.dry_runs_among(&ids).await?;
    let jobs = jobs
        .into_iter()
        .map(|j| JobView {
            dry_run: dry_runs.contains(&j.id),
            ..JobView::from(j)
        })
        .collect();
    Ok(Json(JobPage { jobs, next_before }))
}

/// The job, if this caller may see it (API keys: only their own; others get 404).
async fn visible_job(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Job> {
    let job = state.store.get_job(id).await?;
    if let Some(key) = caller.api_key_id()
        && job.api_key_id.as_deref() != Some(key)
    {
        return Err(ApiError::not_found(format!("job not found: {id}")));
    }
    Ok(job)
}

/// One job.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs", params(("id" = String, Path, description = "job id")),
    responses((status = 200, body = JobView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_job(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<JobView>> {
    let mut view: JobView = visible_job(&state, &caller, &id).await?.into();
    if let Some(plan) = state.store.dry_run_plan(&view.id).await? {
        view.dry_run = true;
        view.plan = plan.and_then(|p| serde_json::from_str(&p).ok());
    }
    Ok(Json(view))
}

/// Send the halt signal: a queued job is halted at once, a running one is asked to halt
/// (it sees `HaltSignalReceived`). Works from any node.
#[utoipa::path(delete, path = "/v1/jobs/{id}", tag = "jobs", params(("id" = String, Path, description = "job id")),
    responses((status = 202, description = "halt signal sent; the job as it is now", body = JobView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn halt_job(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    visible_job(&state, &caller, &id).await?;
    let job = state.store.request_halt(&id).await?;
    state.runner.halt_local(&id);
    Ok((StatusCode::ACCEPTED, Json(JobView::from(job))).into_response())
}

/// A job's transfer records.
#[utoipa::path(get, path = "/v1/jobs/{id}/transfers", tag = "jobs", params(("id" = String, Path, description = "job id")),
    responses((status = 200, body = [TransferView]), (status = 404, body = ErrorBody)))]
pub async fn job_transfers(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<TransferView>>> {
    visible_job(&state, &caller, &id).await?;
    let transfers = state.store.list_transfers(&id).await?;
    Ok(Json(
        transfers.into_iter().map(TransferView::from).collect(),
    ))
}

/// A job's log: the whole log as JSON, or a live tail as server-sent events (`line` events
/// with a [`LogLineView`], then one `end` event with the final job) when the request
/// accepts `text/event-stream` or says `follow=true`.
#[utoipa::path(get, path = "/v1/jobs/{id}/log", tag = "jobs", params(("id" = String, Path, description = "job id"), LogQuery),
    responses((status = 200, description = "JSON log; text/event-stream when following; a text/plain file with format=text", body = JobLog), (status = 404, body = ErrorBody)))]
pub async fn job_log(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let job = visible_job(&state, &caller, &id).await?;
    let as_text = match q.format.as_deref() {
        None | Some("json") => false,
        Some("text") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "format {other:?} is not known; use json or text"
            )));
        }
    };
    let wants_stream = q.follow.unwrap_or(false) || accepts_event_stream(&headers);
    let after = q.after.unwrap_or(0);
    if !wants_stream || as_text {
        let mut lines = Vec::new();
        let mut last = after;
        loop {
            let page = state.store.read_job_logs(&id, last, 10_000).await?;
            let Some(tail) = page.last() else { break };
            last = tail.line;
            lines.extend(page.into_iter().map(LogLineView::from));
        }
        if as_text {
            return Ok(log_text_file(&id, &lines));
        }
        return Ok(Json(JobLog {
            job_id: id,
            status: job.status.as_str().into(),
            lines,
        })
        .into_response());
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(256);
    tokio::spawn(follow_log(state.clone(), id, after, tx));
    Ok(event_stream(rx))
}

/// A job's log as a plain-text attachment, one line each as `aft run` prints it.
fn log_text_file(id: &str, lines: &[LogLineView]) -> Response {
    let mut text = String::new();
    for l in lines {
        text.push_str(&format!(
            "{} {:<5} {}\n",
            l.at,
            l.level.to_uppercase(),
            l.message
        ));
    }
    // Job ids are UUIDs; anything else is left out of the file name rather than quoted.
    let name: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    (
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/plain; charset=utf-8".to_string(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"job-{name}.log\""),
            ),
        ],
        text,
    )
        .into_response()
}

/// Whether the request asks for server-sent events.
fn accepts_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"))
}

/// The events `rx` receives, as a server-sent event answer. When the client goes away the
/// answer is dropped, and with it `rx`: the sender sees it in `closed()`.
fn event_stream(rx: tokio::sync::mpsc::Receiver<Event>) -> Response {
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|event| (Ok::<Event, Infallible>(event), rx))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn line_event(line: LogLine) -> Event {
    Event::default()
        .event("line")
        .id(line.line.to_string())
        .json_data(LogLineView::from(line))
        .unwrap_or_else(|_| Event::default().event("line"))
}

/// Send every line after `after` and then the job's end; true once the `end` event was
/// sent, false when the client went away first (or the store failed). The client leaving
/// is noticed at once, even while the job writes nothing.
async fn follow_log(
    state: AppState,
    id: String,
    after: i64,
    tx: tokio::sync::mpsc::Sender<Event>,
) -> bool {
    let gone = tx.clone();
    tokio::select! {
        ended = send_log(state, id, after, tx) => ended,
        () = gone.closed() => false,
    }
}

/// [`follow_log`]'s work. While the job runs on this node its lines come from memory as
/// they are written; otherwise (queued, or running on another node) the store is polled,
/// quickly at first.
async fn send_log(
    state: AppState,
    id: String,
    after: i64,
    tx: tokio::sync::mpsc::Sender<Event>,
) -> bool {
    let mut last = after;
    let mut pause = Duration::from_millis(2);
    loop {
        // Subscribe before reading the store so that no line falls between the two.
        let live = state.runner.live_tail(&id);
        let Ok(job) = state.store.get_job(&id).await else {
            return false;
        };
        let mut got = false;
        loop {
            let Ok(stored) = state.store.read_job_logs(&id, last, 10_000).await else {
                return false;
            };
            let full_page = stored.len() == 10_000;
            got |= !stored.is_empty();
            if !send_lines(&tx, stored, &mut last).await {
                return false;
            }
            if !full_page {
                break;
            }
        }
        if let Some(mut live) = live {
            live.pending.sort_by_key(|l| l.line);
            if !send_lines(&tx, live.pending, &mut last).await {
                return false;
            }
            loop {
                match live.rx.recv().await {
                    Ok(line) => {
                        if !send_lines(&tx, vec![line], &mut last).await {
                            return false;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        // Too slow a reader: catch up from the store.
                        let lines = state
                            .store
                            .read_job_logs(&id, last, 10_000)
                            .await
                            .unwrap_or_default();
                        if !send_lines(&tx, lines, &mut last).await {
                            return false;
                        }
                    }
                    // The job ended here and all its lines are stored: the next round
                    // reads the rest and the final status.
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
            continue;
        }
        if job.status.is_final() && !got {
            let end = Event::default()
                .event("end")
                .json_data(JobView::from(job))
                .unwrap_or_else(|_| Event::default().event("end"));
            return tx.send(end).await.is_ok();
        }
        if got {
            pause = Duration::from_millis(2);
        } else {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }
}

/// Send the lines after `last` as events; false when the client has gone.
async fn send_lines(
    tx: &tokio::sync::mpsc::Sender<Event>,
    lines: Vec<LogLine>,
    last: &mut i64,
) -> bool {
    for line in lines {
        if line.line > *last {
            *last = line.line;
            if tx.send(line_event(line)).await.is_err() {
                return false;
            }
        }
    }
    true
}

/// The body of `POST /v1/jobs/run` (`aft run` delegation).
#[derive(Debug, Deserialize, ToSchema)]
pub struct RunSource {
    /// The script's file name, for messages.
    pub name: String,
    /// The SyncJS source.
    pub source: String,
    /// Parameters: a flat object.
    #[schema(value_type = Option<Object>)]
    pub params: Option<serde_json::Value>,
    /// Run it as a dry run (`aft run --dry-run`).
    #[serde(default, rename = "dryRun")]
    pub dry_run: bool,
}

/// Run a script handed over by `aft run` on this machine (local token only). Refused
/// unless the setting `allow-cli-run` is on; the job runs on this node.
///
/// With `Accept: text/event-stream` the answer is the job's log as server-sent events: a
/// `queued` event with a [`JobQueued`], then `line` events and the `end` event as in
/// `GET /v1/jobs/{id}/log`. The job is then tied to that answer: if it closes before the
/// job ended (the `aft run` that delegated it died or was killed), the job is halted, so
/// it neither runs on unwatched nor keeps a `max-concurrent-jobs` slot.
#[utoipa::path(post, path = "/v1/jobs/run", tag = "jobs", request_body = RunSource,
    responses((status = 202, description = "queued (JSON answer)", body = JobQueued),
        (status = 200, description = "with Accept: text/event-stream: queued, then the log as server-sent events; closing it halts the job"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn run_source(
    State(state): State<AppState>,
    // Before the body: another caller is refused (403) whatever it sends.
    _local: crate::auth::LocalCaller,
    record: JobStartRecord,
    headers: HeaderMap,
    ApiJson(b): ApiJson<RunSource>,
) -> ApiResult<Response> {
    if !state.store.settings().await?.allow_cli_run {
        return Err(ApiError::forbidden(
            "aft run is disabled: an administrator can enable it with 'aft settings set allow-cli-run true' (or in the web UI under Settings)",
        ));
    }
    let params = super::job_params(b.params)?;
    let job = NewJob {
        file_path: Some(b.name),
        source: b.source,
        params,
        origin: "delegate".into(),
        pinned_node: Some(state.runner.node_id().to_string()),
        started_by: Some("aft run".into()),
        ..Default::default()
    };
    let streams = accepts_event_stream(&headers);
    let status = if streams {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    let queued = state
        .store
        .enqueue_job_recorded(&job, b.dry_run, move |queued| record.of(queued, status))
        .await?;
    state.runner.wake();
    let answer = JobQueued {
        job_id: queued.id,
        status: "queued".into(),
    };
    if !streams {
        return Ok((status, Json(answer)).into_response());
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(256);
    let first = Event::default()
        .event("queued")
        .data(serde_json::json!({"jobId": answer.job_id, "status": answer.status}).to_string());
    // The channel is new and empty: this cannot fail for want of room.
    let _ = tx.try_send(first);
    tokio::spawn(follow_attached(state, answer.job_id, tx));
    Ok(event_stream(rx))
}

/// Follow a delegated job's log for the client that delegated it, and halt the job when
/// that client leaves before the job ended.
async fn follow_attached(state: AppState, id: String, tx: tokio::sync::mpsc::Sender<Event>) {
    if follow_log(state.clone(), id.clone(), 0, tx).await {
        return;
    }
    tracing::warn!(job = %id, "the aft run that delegated this job is gone: halting the job");
    // A queued job is halted at once; a running one gets the halt signal (here, or through
    // the store should it be between claim and start).
    if let Err(e) = state.store.request_halt(&id).await {
        tracing::error!(job = %id, "cannot halt the job of a departed aft run: {e}");
    }
    state.runner.halt_local(&id);
}
