//! Recording changes in the audit trail, in one place for each way in:
//!
//! - the REST API (and so the web UI): [`layer`] wraps every route. The caller and the state
//!   before the change are noted when the caller is authenticated ([`authenticated`], from
//!   the role check), and after a successful answer one record is appended with the state
//!   after. What a route records comes from [`crate::roles::ROUTES`].
//! - CLI commands that write the store directly: [`snapshot_all`] before the command and
//!   [`record_local_changes`] after it record one record per thing that changed, as `local`.
//!
//! The state of a thing is [`Store::audit_snapshot`]'s: never a secret's value, an API key
//! or a password hash.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Value, json};

use aft_store::{
    AuditEntry, AuditKind, Role, Store, StoreError, StoreResult, change_verb, snapshot_changes,
};

use crate::auth::Caller;
use crate::roles::{Audited, audited};
use crate::state::AppState;

/// The largest request body read to learn who signs in, and the largest answer read to learn
/// what a creation made.
const PEEK_LIMIT: usize = 1 << 20;

/// What the audit layer learns during a request, shared with the authentication step.
#[derive(Clone, Default)]
struct AuditSlot(Arc<Mutex<SlotState>>);

#[derive(Default)]
struct SlotState {
    actor: Option<(String, &'static str)>,
    before: Option<BTreeMap<String, Value>>,
    /// The thing the request changes, when known before it runs.
    target: Option<String>,
    /// The id of the change announced to CLI commands (`Store::begin_audit_intent`).
    intent: Option<String>,
    /// For a record the handler writes itself.
    origin: Origin,
}

/// Where a watched request came from and what it asked: `203.0.113.9`, `POST /v1/jobs`.
#[derive(Clone, Default)]
struct Origin {
    /// The caller's IP address.
    address: String,
    request_line: String,
}

impl Origin {
    /// A record's `detail` for this request answered with `status`.
    fn detail(&self, status: axum::http::StatusCode) -> Value {
        json!({"request": self.request_line, "status": status.as_u16()})
    }
}

/// How a handler that queues a job writes its `job.started` record in the transaction that
/// queues the job ([`Store::enqueue_job_recorded`]), where the layer would append it after
/// the answer: so the job and its record are committed together, and the record names the
/// job even when the answer is an event stream.
pub struct JobStartRecord(Option<AuditSlot>);

impl<S: Send + Sync> FromRequestParts<S> for JobStartRecord {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(JobStartRecord(parts.extensions.get::<AuditSlot>().cloned()))
    }
}

impl JobStartRecord {
    /// The record of `job`, queued with an answer of `status`; `None` where the layer does
    /// not watch the request or knows no caller.
    pub fn of(&self, job: &aft_store::Job, status: axum::http::StatusCode) -> Option<AuditEntry> {
        let s = self.0.as_ref()?.0.lock().unwrap_or_else(|e| e.into_inner());
        let (actor, actor_kind) = s.actor.clone()?;
        Some(AuditEntry {
            actor,
            actor_kind: actor_kind.to_string(),
            address: s.origin.address.clone(),
            action: "job.started".into(),
            kind: "job".into(),
            target: job.id.clone(),
            before: None,
            after: Some(started_job(job)),
            detail: Some(s.origin.detail(status)),
        })
    }
}

/// Who a caller is in words, as a job's `startedBy` names it: `admin alice`,
/// `API key ci`, or `local` (the CLI on the service's machine).
pub fn caller_words(caller: &Caller) -> String {
    match caller {
        Caller::Local => "local".into(),
        Caller::Admin { username } => format!("admin {username}"),
        Caller::ApiKey(key) => format!("API key {}", key.name),
    }
}

/// Who a caller is in a record: its name and kind.
fn actor_of(caller: &Caller) -> (String, &'static str) {
    match caller {
        Caller::Local => ("local".into(), "local"),
        Caller::Admin { username } => (username.clone(), "admin"),
        Caller::ApiKey(key) => (key.name.clone(), "apikey"),
    }
}

/// Note the authenticated caller of a request the audit layer watches, and, for a change,
/// the state before it. `role` is the admin's role (already checked).
pub async fn authenticated(parts: &Parts, state: &AppState, caller: &Caller, role: Option<Role>) {
    let Some(slot) = parts.extensions.get::<AuditSlot>() else {
        return;
    };
    let Some(path) = parts.extensions.get::<MatchedPath>() else {
        return;
    };
    let kind = match audited(parts.method.as_str(), path.as_str()) {
        Audited::Change(kind) if caller.is_admin() => Some(kind),
        _ => None,
    };
    let target = {
        let mut s = slot.0.lock().unwrap_or_else(|e| e.into_inner());
        if s.actor.is_some() {
            return;
        }
        s.actor = Some(actor_of(caller));
        s.target.clone()
    };
    let _ = role;
    if let Some(kind) = kind {
        // Announce the change before making it, so a CLI command running meanwhile does not
        // record it as its own.
        match state
            .store
            .begin_audit_intent(kind.as_str(), target.as_deref().unwrap_or(""))
            .await
        {
            Ok(id) => slot.0.lock().unwrap_or_else(|e| e.into_inner()).intent = Some(id),
            Err(e) => tracing::warn!("audit: cannot announce a change: {e}"),
        }
        match state.store.audit_snapshot(kind).await {
            Ok(before) => slot.0.lock().unwrap_or_else(|e| e.into_inner()).before = Some(before),
            Err(e) => tracing::warn!("audit: cannot read the state before a change: {e}"),
        }
    }
}

/// Read a body of at most [`PEEK_LIMIT`] bytes, or give it back untouched when it may be
/// larger or is a stream.
async fn peek(body: Body, length: Option<u64>) -> (Body, Option<Value>) {
    if length.is_none_or(|n| n > PEEK_LIMIT as u64) {
        return (body, None);
    }
    match axum::body::to_bytes(body, PEEK_LIMIT).await {
        Ok(bytes) => {
            let value = serde_json::from_slice(&bytes).ok();
            (Body::from(bytes), value)
        }
        Err(_) => (Body::empty(), None),
    }
}

fn content_length(headers: &axum::http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// The audit layer (a route layer: the route and its path values are known).
pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_ascii_lowercase();
    let Some(path) = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
    else {
        return next.run(request).await;
    };
    let what = audited(&method, &path);
    if what == Audited::No {
        return next.run(request).await;
    }
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    let (mut parts, body) = request.into_parts();
    let target = match RawPathParams::from_request_parts(&mut parts, &state).await {
        Ok(params) => params.iter().next().map(|(_, v)| v.to_string()),
        Err(_) => None,
    };
    let origin = Origin {
        address,
        request_line: format!("{} {}", method.to_uppercase(), parts.uri.path()),
    };
    let slot = AuditSlot::default();
    slot.0.lock().unwrap_or_else(|e| e.into_inner()).origin = origin.clone();
    parts.extensions.insert(slot.clone());
    // Who signs in (or sets up), and what a creation names, is in the body: read it here,
    // the handler gets it intact.
    let names_in_body = target.is_none() && matches!(what, Audited::Change(_));
    let (body, claimed) = if matches!(what, Audited::SignIn | Audited::Setup) || names_in_body {
        let (body, value) = peek(body, content_length(&parts.headers)).await;
        let user = value
            .as_ref()
            .and_then(|v| v["username"].as_str().or(v["name"].as_str()))
            .map(|u| u.chars().take(200).collect::<String>());
        (body, user)
    } else {
        (body, None)
    };
    slot.0.lock().unwrap_or_else(|e| e.into_inner()).target = target
        .clone()
        .or_else(|| claimed.clone().filter(|_| names_in_body));
    let call = Call {
        what,
        origin,
        method,
        template: path,
        target,
        claimed,
    };
    let response = next.run(Request::from_parts(parts, body)).await;
    let (actor, before, intent) = {
        let mut s = slot.0.lock().unwrap_or_else(|e| e.into_inner());
        (s.actor.take(), s.before.take(), s.intent.take())
    };
    let response = record(&state, call, actor, before, response).await;
    if let Some(id) = intent
        && let Err(e) = state.store.end_audit_intent(&id).await
    {
        tracing::warn!("audit: cannot end an announced change: {e}");
    }
    response
}

/// What the audit layer knows of a request before it runs.
struct Call {
    what: Audited,
    origin: Origin,
    /// Lower case.
    method: String,
    /// The route's path template.
    template: String,
    /// The first path value.
    target: Option<String>,
    /// The user name (sign-in, setup) or name (creation) the body gives.
    claimed: Option<String>,
}

/// The job-start record's account of `job`: the script (not its source), the parameters.
fn started_job(job: &aft_store::Job) -> Value {
    json!({
        "jobId": job.id,
        "scriptName": job.script_name,
        "filePath": job.file_path,
        "params": job.params,
        "origin": job.origin,
    })
}

/// Append the record of a request that has been answered.
async fn record(
    state: &AppState,
    call: Call,
    actor: Option<(String, &'static str)>,
    before: Option<BTreeMap<String, Value>>,
    response: Response,
) -> Response {
    let Call {
        what,
        origin,
        method,
        template: path,
        target,
        claimed,
    } = call;
    let status = response.status();
    // Only successful changes are recorded, and sign-ins that failed on their credentials.
    let failed_sign_in = what == Audited::SignIn && status == axum::http::StatusCode::UNAUTHORIZED;
    if !status.is_success() && !failed_sign_in {
        return response;
    }
    // Creations are named in the answer: read it unless it is a stream.
    let wants_answer = target.is_none() && matches!(what, Audited::Change(_));
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let (response, answer) = if wants_answer && is_json {
        let (rparts, rbody) = response.into_parts();
        let (rbody, value) = peek(rbody, content_length(&rparts.headers)).await;
        let (rbody, value) = match value {
            Some(v) => (rbody, Some(v)),
            // No length given: buffered responses from handlers are small JSON values.
            None if content_length(&rparts.headers).is_none() => {
                match axum::body::to_bytes(rbody, PEEK_LIMIT).await {
                    Ok(bytes) => {
                        let v = serde_json::from_slice(&bytes).ok();
                        (Body::from(bytes), v)
                    }
                    Err(_) => (Body::empty(), None),
                }
            }
            None => (rbody, None),
        };
        (Response::from_parts(rparts, rbody), value)
    } else {
        (response, None)
    };
    let detail = origin.detail(status);
    let entry = |actor: (String, &str), action: String, kind: &str, target: String| AuditEntry {
        actor: actor.0,
        actor_kind: actor.1.to_string(),
        address: origin.address.clone(),
        action,
        kind: kind.to_string(),
        target,
        before: None,
        after: None,
        detail: Some(detail.clone()),
    };
    let record = match what {
        Audited::SignIn => {
            let user = claimed.unwrap_or_default();
            if failed_sign_in {
                Some(entry(
                    (user.clone(), "anonymous"),
                    "session.failed".into(),
                    "session",
                    user,
                ))
            } else {
                Some(entry(
                    (user.clone(), "admin"),
                    "session.created".into(),
                    "session",
                    user,
                ))
            }
        }
        Audited::Setup => {
            let user = claimed.unwrap_or_default();
            let after = state
                .store
                .admin_account(&user)
                .await
                .ok()
                .and_then(|a| serde_json::to_value(a).ok());
            let mut e = entry(
                (user.clone(), "setup"),
                "admin.created".into(),
                "admin",
                user,
            );
            e.after = after;
            Some(e)
        }
        Audited::SignOut => actor.map(|a| {
            let name = a.0.clone();
            entry(a, "session.ended".into(), "session", name)
        }),
        // Written by the handler with the job ([`JobStartRecord`]).
        Audited::JobStart => None,
        Audited::JobHalt => actor.map(|a| {
            entry(
                a,
                "job.halted".into(),
                "job",
                target.clone().unwrap_or_default(),
            )
        }),
        Audited::Other => actor.map(|a| {
            entry(
                a,
                format!("{method}.{}", path.trim_start_matches("/v1/")),
                path.trim_start_matches("/v1/")
                    .split('/')
                    .next()
                    .unwrap_or(""),
                target.clone().unwrap_or_default(),
            )
        }),
        Audited::Change(kind) => match actor {
            None => None,
            Some(a) => {
                let after = match state.store.audit_snapshot(kind).await {
                    Ok(after) => after,
                    Err(e) => {
                        tracing::error!("audit: cannot read the state after a change: {e}");
                        BTreeMap::new()
                    }
                };
                let named = target.clone().or(claimed.clone()).or_else(|| {
                    answer.as_ref().and_then(|v| {
                        ["name", "username", "key", "id"]
                            .iter()
                            .find_map(|f| v[*f].as_str().map(str::to_string))
                    })
                });
                let (id, old, new) =
                    pick_change(&before.unwrap_or_default(), &after, named.as_deref());
                let mut e = entry(
                    a,
                    format!("{}.{}", kind.as_str(), change_verb(&old, &new)),
                    kind.as_str(),
                    id,
                );
                e.before = old;
                e.after = new;
                Some(e)
            }
        },
        Audited::No => None,
    };
    if let Some(record) = record
        && let Err(e) = state.store.append_audit(&[record]).await
    {
        tracing::error!("audit: cannot append a record: {e}");
    }
    response
}

/// Whether snapshot entry `(key, value)` is the thing `name` (a name, any case, or an id).
fn is_named(key: &str, value: &Value, name: &str) -> bool {
    key.eq_ignore_ascii_case(name)
        || value["id"].as_str() == Some(name)
        || value["name"]
            .as_str()
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
}

/// The change a request made: of what changed between the snapshots, the thing it named;
/// if nothing changed (a value set to what it was), the thing as it stands.
fn pick_change(
    before: &BTreeMap<String, Value>,
    after: &BTreeMap<String, Value>,
    name: Option<&str>,
) -> (String, Option<Value>, Option<Value>) {
    let changes = snapshot_changes(before, after);
    let wanted = |id: &str, old: &Option<Value>, new: &Option<Value>| match name {
        None => true,
        Some(name) => {
            let v = new
                .as_ref()
                .or(old.as_ref())
                .cloned()
                .unwrap_or(Value::Null);
            is_named(id, &v, name)
        }
    };
    if let Some((id, old, new)) = changes.into_iter().find(|(id, o, n)| wanted(id, o, n)) {
        return (id, old, new);
    }
    let name = name.unwrap_or_default();
    match after.iter().find(|(k, v)| is_named(k, v, name)) {
        Some((k, v)) => (k.clone(), Some(v.clone()), Some(v.clone())),
        None => (name.to_string(), None, None),
    }
}

/// A CLI command's view of the store for the audit trail: what stood before it ran.
/// [`LocalAudit::begin`] before the command writes, [`LocalAudit::finish`] after: one record
/// per thing that changed, as `local`. Other CLI commands wait in between (an advisory
/// lock on PostgreSQL, a lock file next to a SQLite database), and changes the service
/// announced or recorded meanwhile are left to its own records.
pub struct LocalAudit {
    before: Vec<(AuditKind, BTreeMap<String, Value>)>,
    head: i64,
    lock: aft_store::LocalAuditLock,
    _file_lock: Option<std::fs::File>,
}

impl LocalAudit {
    /// Take the lock and the snapshot; `database_url` says where a SQLite file is.
    pub async fn begin(store: &Store, database_url: &str) -> StoreResult<LocalAudit> {
        let file_lock = match sqlite_file(database_url) {
            Some(db) => {
                let path = std::path::PathBuf::from(format!("{}.audit-lock", db.display()));
                let shown = path.display().to_string();
                let locked = tokio::task::spawn_blocking(move || {
                    let mut options = std::fs::OpenOptions::new();
                    options.create(true).truncate(false).write(true);
                    // Private like the database beside it (an empty file, but the data
                    // directory's files are all its user's).
                    #[cfg(unix)]
                    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                    let file = options.open(&path)?;
                    file.lock()?;
                    Ok(file)
                })
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e)));
                Some(locked.map_err(|source| StoreError::Io {
                    path: shown,
                    source,
                })?)
            }
            None => None,
        };
        let lock = store.lock_local_audit().await?;
        let head = store.audit_head().await?;
        let mut before = Vec::new();
        for kind in AuditKind::ALL {
            before.push((kind, store.audit_snapshot(kind).await?));
        }
        Ok(LocalAudit {
            before,
            head,
            lock,
            _file_lock: file_lock,
        })
    }

    /// Record what changed since [`LocalAudit::begin`]; `command` is what ran
    /// (`admin create`). Returns how many records.
    pub async fn finish(self, store: &Store, command: &str) -> StoreResult<usize> {
        let claims = store.audit_claims_since(self.head).await?;
        let claimed = |kind: AuditKind, id: &str, state: &Value| {
            claims.iter().any(|(k, target)| {
                k == kind.as_str() && (target.is_empty() || is_named(id, state, target))
            })
        };
        let mut entries = Vec::new();
        for (kind, old) in &self.before {
            let new = store.audit_snapshot(*kind).await?;
            for (id, b, a) in snapshot_changes(old, &new) {
                let state = a.as_ref().or(b.as_ref()).cloned().unwrap_or(Value::Null);
                if claimed(*kind, &id, &state) {
                    continue;
                }
                let mut e = local_entry(
                    format!("{}.{}", kind.as_str(), change_verb(&b, &a)),
                    kind.as_str(),
                    &id,
                    command,
                );
                e.before = b;
                e.after = a;
                entries.push(e);
            }
        }
        store.append_audit(&entries).await?;
        self.lock.release().await;
        Ok(entries.len())
    }
}

/// The file of a `sqlite:` database URL.
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then(|| std::path::PathBuf::from(path))
}

/// A record of the local CLI (`actor` and address `local`); the operating-system user is in
/// its detail.
pub fn local_entry(action: String, kind: &str, target: &str, command: &str) -> AuditEntry {
    let os_user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_default();
    AuditEntry {
        actor: "local".into(),
        actor_kind: "local".into(),
        address: "local".into(),
        action,
        kind: kind.into(),
        target: target.into(),
        before: None,
        after: None,
        detail: Some(json!({"command": command, "osUser": os_user})),
    }
}

/// The actor of what the service does by itself (retention): the node.
pub fn service_entry(node_id: &str) -> AuditEntry {
    AuditEntry {
        actor: format!("node {node_id}"),
        actor_kind: "service".into(),
        address: "local".into(),
        ..AuditEntry::default()
    }
}
