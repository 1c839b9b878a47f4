//! `POST /v1/vfs/{name}/test`: connect with a VFS Library entry and list its root folder,
//! as `aft vfs test` does, for the web UI's "Test connection" button.

use std::time::Instant;

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use aft_vfs::{ConnectionTestError, test_connection};

use crate::auth::AdminCaller;
use crate::error::{ApiResult, ErrorBody};
use crate::state::AppState;
use crate::vfs_library::entry_secrets;

/// The outcome of a connection test: `{ok: true, target, entries, more, sample, message,
/// millis}` or `{ok: false, error, fingerprint?, millis}`; fields that do not apply are
/// absent.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct VfsTestView {
    /// Whether the connection worked and the root folder could be listed.
    pub ok: bool,
    /// The backend's own label of what it reached (`sftp://user@host:22`), when ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub target: Option<String>,
    /// How many entries the root folder holds (counted up to 1000), when ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub entries: Option<usize>,
    /// Whether the root folder holds more entries than were counted, when ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub more: Option<bool>,
    /// A few names of the root folder (folders end in `/`), when ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub sample: Option<Vec<String>>,
    /// A one-line summary for people, when ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub message: Option<String>,
    /// Why it failed, when not ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub error: Option<String>,
    /// The SFTP server's host key fingerprint, when it failed because the key is not pinned
    /// (or not the pinned one): pin it in `HostKeySHA256` once checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub fingerprint: Option<String>,
    /// How long the test took, in milliseconds.
    pub millis: u64,
}

/// Test a VFS Library entry: connect and list its root folder. A failed connection is
/// still a 200 answer with `ok: false` (the request itself worked); an unknown SFTP host
/// key comes with its `fingerprint` so it can be pinned.
#[utoipa::path(post, path = "/v1/vfs/{name}/test", tag = "vfs", params(("name" = String, Path, description = "entry id or name")),
    responses(
        (status = 200, body = VfsTestView, description = "`{ok: true, target, entries, more, sample, message, millis}` or `{ok: false, error, fingerprint?, millis}`"),
        (status = 404, body = ErrorBody)))]
pub async fn test_vfs(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(name): Path<String>,
) -> ApiResult<Json<VfsTestView>> {
    let entry = state.store.find_vfs_entry(&name).await?;
    // Read only the secrets the entry names, before connecting: the lookup is synchronous.
    let secrets = entry_secrets(&state.store, &state.secrets_key, &entry).await?;
    let lookup = move |name: &str| secrets.get(name).cloned();
    let fields = Value::Object(entry.settings.clone());
    let started = Instant::now();
    let outcome = test_connection(&entry.kind, &fields, &lookup).await;
    let millis = started.elapsed().as_millis() as u64;
    let answer = match outcome {
        Ok(report) => VfsTestView {
            ok: true,
            message: Some(format!("Connected to {}.", report.target)),
            target: Some(report.target),
            entries: Some(report.root_entries),
            more: Some(report.more),
            sample: Some(report.sample),
            millis,
            ..VfsTestView::default()
        },
        Err(ConnectionTestError::UnknownHostKey {
            host,
            fingerprint,
            mismatch,
        }) => VfsTestView {
            ok: false,
            error: Some(if let Some(mismatch) = mismatch {
                format!(
                    "The host key of {host} ({fingerprint}) does not match the pins: {mismatch}. \
                     The server's key changed or a pin is wrong. Check with the server's owner before pinning the new one."
                )
            } else {
                format!(
                    "The host key of {host} is not pinned (fingerprint {fingerprint}). \
                     Check it with the server's owner, then pin it in the entry's HostKeySHA256 field."
                )
            }),
            fingerprint: Some(fingerprint),
            millis,
            ..VfsTestView::default()
        },
        Err(ConnectionTestError::Failed(e)) => VfsTestView {
            ok: false,
            error: Some(format!("vfs {} ({}): {e}", entry.name, entry.kind)),
            millis,
            ..VfsTestView::default()
        },
    };
    Ok(Json(answer))
}
