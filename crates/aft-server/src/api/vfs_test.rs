//! `POST /v1/vfs/{name}/test`: connect with a VFS Library entry and list its root folder,
//! as `aft vfs test` does, for the web UI's "Test connection" button.

use std::time::Instant;

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use aft_vfs::{ConnectionTestError, test_connection};

use crate::auth::AdminCaller;
use crate::error::{ApiResult, ErrorBody};
use crate::state::AppState;
use crate::vfs_library::entry_secrets;

/// Test a VFS Library entry: connect and list its root folder. A failed connection is
/// still a 200 answer with `ok: false` (the request itself worked); an unknown SFTP host
/// key comes with its `fingerprint` so it can be pinned.
#[utoipa::path(post, path = "/v1/vfs/{name}/test", tag = "vfs", params(("name" = String, Path, description = "entry id or name")),
    responses(
        (status = 200, body = serde_json::Value, description = "`{ok: true, target, entries, more, sample, message, millis}` or `{ok: false, error, fingerprint?}`"),
        (status = 404, body = ErrorBody)))]
pub async fn test_vfs(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let entry = state.store.find_vfs_entry(&name).await?;
    // Read only the secrets the entry names, before connecting: the lookup is synchronous.
    let secrets = entry_secrets(&state.store, &state.secrets_key, &entry).await?;
    let lookup = move |name: &str| secrets.get(name).cloned();
    let fields = Value::Object(entry.settings.clone());
    let started = Instant::now();
    let outcome = test_connection(&entry.kind, &fields, &lookup).await;
    let millis = started.elapsed().as_millis() as u64;
    let answer = match outcome {
        Ok(report) => {
            json!({
                "ok": true,
                "target": report.target,
                "entries": report.root_entries,
                "more": report.more,
                "sample": report.sample,
                "message": format!("Connected to {}.", report.target),
                "millis": millis,
            })
        }
        Err(ConnectionTestError::UnknownHostKey {
            host,
            fingerprint,
            mismatch,
        }) => json!({
            "ok": false,
            "error": if let Some(mismatch) = mismatch {
                format!(
                    "The host key of {host} ({fingerprint}) does not match the pins: {mismatch}. \
                     The server's key changed or a pin is wrong. Check with the server's owner before pinning the new one."
                )
            } else {
                format!(
                    "The host key of {host} is not pinned (fingerprint {fingerprint}). \
                     Check it with the server's owner, then pin it in the entry's HostKeySHA256 field."
                )
            },
            "fingerprint": fingerprint,
            "millis": millis,
        }),
        Err(ConnectionTestError::Failed(e)) => json!({
            "ok": false,
            "error": format!("vfs {} ({}): {e}", entry.name, entry.kind),
            "millis": millis,
        }),
    };
    Ok(Json(answer))
}
