//! Build any backend from the connection fields of a SyncJS client or a VFS Library entry.
//!
//! Field names are those of spec §4 (`Host`, `User`, `Pass`, `PassFromSecret`, `KeyFile`,
//! ...), matched case-insensitively. A `...FromSecret` field names a secret and wins over
//! the clear-text field beside it. Backends are built without touching the network:
//! connections are opened lazily by the first operation (and re-opened after a drop), so
//! `open_backend` only fails on settings that can never work.

use std::sync::Arc;

use futures::TryStreamExt;
use serde_json::Value;

use aft_secret::Secret;

use crate::{Vfs, VfsError, VfsResult, registry};

/// Build a backend of `kind` (`disk`/`local`, `sftp`, ... as the [`registry`] declares them)
/// from its fields; `secrets` resolves `...FromSecret` names.
pub fn open_backend(
    kind: &str,
    fields: &Value,
    secrets: &dyn Fn(&str) -> Option<String>,
) -> VfsResult<Arc<dyn Vfs>> {
    let ty = registry::lookup(kind).ok_or_else(|| {
        VfsError::Other(format!(
            "unknown VFS type {kind:?}; use one of: {}",
            registry::type_names().join(", ")
        ))
    })?;
    let fields = with_type_defaults(ty, fields);
    let f = Fields::new(ty.name(), &fields, secrets);
    (ty.backend.open)(&f)
}

/// `fields` with the type's own defaults (`ftps`: `TLSMode` 1) filled in where unset.
fn with_type_defaults(ty: registry::VfsType, fields: &Value) -> Value {
    let mut fields = fields.clone();
    if let Some(map) = fields.as_object_mut() {
        for (name, value) in ty.info.defaults {
            let unset = !map.iter().any(|(k, v)| {
                k.eq_ignore_ascii_case(name) && !v.is_null() && v.as_str() != Some("")
            });
            if unset {
                map.retain(|k, _| !k.eq_ignore_ascii_case(name));
                map.insert((*name).to_string(), value.to_json());
            }
        }
    }
    fields
}

/// What a connection test found (`aft vfs test`, `POST /v1/vfs/{name}/test`).
#[derive(Debug, Clone)]
pub struct ConnectionReport {
    /// The backend's own label (`sftp://user@host:22`, an endpoint and bucket).
    pub target: String,
    /// How many entries the root folder holds (counted up to 1000).
    pub root_entries: usize,
    /// Whether it holds more than were counted.
    pub more: bool,
    /// The first few of their names (folders end with `/`).
    pub sample: Vec<String>,
}

/// Why a connection test failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionTestError {
    /// The SFTP server's host key is not pinned, or does not match a pin.
    #[error("host key of {host} is not trusted; its fingerprint is {fingerprint}")]
    UnknownHostKey {
        /// The server, as `host:port`.
        host: String,
        /// Its fingerprint as OpenSSH prints it.
        fingerprint: String,
        /// Which pins it failed (see [`VfsError::HostKey`]); `None` when none is set.
        mismatch: Option<String>,
    },
    /// Anything else.
    #[error(transparent)]
    Failed(VfsError),
}

/// Connect with `kind` and `fields`, list the root folder and close: what `aft vfs test`
/// and the web UI's Test button do. `secrets` resolves `...FromSecret` names.
pub async fn test_connection(
    kind: &str,
    fields: &Value,
    secrets: &(dyn Fn(&str) -> Option<String> + Send + Sync),
) -> Result<ConnectionReport, ConnectionTestError> {
    let failed = |e: VfsError| match e {
        VfsError::HostKey {
            host,
            fingerprint,
            mismatch,
        } => ConnectionTestError::UnknownHostKey {
            host,
            fingerprint,
            mismatch,
        },
        other => ConnectionTestError::Failed(other),
    };
    let vfs = open_backend(kind, fields, secrets).map_err(failed)?;
    // Count at most this many: a bucket's root may hold millions of objects.
    const COUNT_LIMIT: usize = 1000;
    let mut listing = vfs.list("/").await.map_err(failed)?;
    let (mut count, mut sample) = (0usize, Vec::new());
    while let Some(e) = listing.try_next().await.map_err(failed)? {
        count += 1;
        sample.push(if e.is_dir {
            format!("{}/", e.name)
        } else {
            e.name
        });
        if count == COUNT_LIMIT {
            break;
        }
    }
    let more = count == COUNT_LIMIT && listing.try_next().await.map_err(failed)?.is_some();
    drop(listing);
    sample.sort();
    sample.truncate(20);
    let report = ConnectionReport {
        target: vfs.describe(),
        root_entries: count,
        more,
        sample,
    };
    let _ = vfs.close().await;
    Ok(report)
}

/// Typed access to a backend's fields, with secrets resolved and errors naming the field.
pub struct Fields<'a> {
    kind: &'a str,
    value: &'a Value,
    secrets: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Fields<'a> {
    /// Wrap the JSON object `value` of a backend of `kind`.
    pub fn new(
        kind: &'a str,
        value: &'a Value,
        secrets: &'a dyn Fn(&str) -> Option<String>,
    ) -> Self {
        Self {
            kind,
            value,
            secrets,
        }
    }

    /// The backend kind these fields are for.
    pub fn kind(&self) -> &str {
        self.kind
    }

    fn raw(&self, name: &str) -> Option<&'a Value> {
        let obj = self.value.as_object()?;
        obj.get(name)
            .or_else(|| {
                obj.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v)
            })
            .filter(|v| !v.is_null())
    }

    /// A text field; numbers and booleans are given as text; empty text counts as absent.
    pub fn str(&self, name: &str) -> Option<String> {
        let s = match self.raw(name)? {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return None,
        };
        (!s.is_empty()).then_some(s)
    }

    /// A text field that must be there.
    pub fn required(&self, name: &str) -> VfsResult<String> {
        self.str(name).ok_or_else(|| {
            VfsError::Other(format!(
                "{} client: the {name} field is required",
                self.kind
            ))
        })
    }

    /// A yes/no field: JSON booleans, numbers (non-zero) or `true`/`yes`/`1`; absent = false.
    pub fn bool(&self, name: &str) -> bool {
        match self.raw(name) {
            Some(Value::Bool(b)) => *b,
            Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
            Some(Value::String(s)) => {
                matches!(s.to_ascii_lowercase().as_str(), "true" | "yes" | "1" | "on")
            }
            _ => false,
        }
    }

    /// A whole-number field; an unparsable value is an error naming the field.
    pub fn u64(&self, name: &str) -> VfsResult<Option<u64>> {
        match self.raw(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| self.bad(name, "a whole number")),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => s
                .parse()
                .map(Some)
                .map_err(|_| self.bad(name, "a whole number")),
            Some(_) => Err(self.bad(name, "a whole number")),
        }
    }

    /// `Timeout` ([`crate::registry::TIMEOUT_FIELD`]) in seconds, at least 1;
    /// [`crate::stall::DEFAULT_TIMEOUT_SECS`] when unset.
    pub fn timeout(&self) -> VfsResult<std::time::Duration> {
        let secs = self
            .u64("Timeout")?
            .unwrap_or(crate::stall::DEFAULT_TIMEOUT_SECS)
            .max(1);
        Ok(std::time::Duration::from_secs(secs))
    }

    fn bad(&self, name: &str, want: &str) -> VfsError {
        VfsError::Other(format!(
            "{} client: the {name} field must be {want}",
            self.kind
        ))
    }

    /// A credential: the secret named by `from_secret_field` if set (an unknown secret is
    /// an error naming it), else the clear-text `field`.
    pub fn secret(&self, field: &str, from_secret_field: &str) -> VfsResult<Option<Secret>> {
        if let Some(name) = self.str(from_secret_field) {
            return (self.secrets)(&name).map(|v| Some(Secret::new(v))).ok_or_else(|| {
                VfsError::Other(format!(
                    "{} client: {from_secret_field} names the secret {name:?}, which does not exist; create it or fix the name",
                    self.kind
                ))
            });
        }
        Ok(self.str(field).map(Secret::new))
    }
}
