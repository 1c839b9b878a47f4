//! Build any backend from the connection fields of a SyncJS client or a VFS Library entry.
//!
//! Field names are those of spec §4 (`Host`, `User`, `Pass`, `PassFromSecret`, `KeyFile`,
//! ...), matched case-insensitively. A `...FromSecret` field names a secret and wins over
//! the clear-text field beside it. Backends are built without touching the network:
//! connections are opened lazily by the first operation (and re-opened after a drop), so
//! `open_backend` only fails on settings that can never work.

use std::sync::Arc;

use serde_json::Value;

use crate::{Vfs, VfsError, VfsResult};

/// The backend kinds `open_backend` knows, for error messages.
pub const KNOWN_KINDS: &[&str] = &[
    "disk", "local", "sftp", "ftp", "ftps", "s3", "azure", "gcs", "webdav",
];

/// Build a backend of `kind` (`disk`/`local`, `sftp`, ...) from its fields; `secrets` resolves
/// `...FromSecret` names.
pub fn open_backend(
    kind: &str,
    fields: &Value,
    secrets: &dyn Fn(&str) -> Option<String>,
) -> VfsResult<Arc<dyn Vfs>> {
    let f = Fields::new(kind, fields, secrets);
    match kind.to_ascii_lowercase().as_str() {
        "disk" | "local" => Ok(Arc::new(crate::local::LocalFs::from_fields(&f)?)),
        "sftp" => Ok(Arc::new(crate::sftp::SftpFs::from_fields(&f)?)),
        "ftp" | "ftps" => Ok(Arc::new(crate::ftp::from_fields(&f)?)),
        "s3" => Ok(Arc::new(crate::s3::from_fields(&f)?)),
        "azure" => Ok(Arc::new(crate::azure::from_fields(&f)?)),
        "gcs" => Ok(Arc::new(crate::gcs::from_fields(&f)?)),
        "webdav" => Ok(Arc::new(crate::webdav::from_fields(&f)?)),
        other => Err(VfsError::Other(format!(
            "unknown VFS type {other:?}; use one of: {}",
            KNOWN_KINDS.join(", ")
        ))),
    }
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

    fn bad(&self, name: &str, want: &str) -> VfsError {
        VfsError::Other(format!(
            "{} client: the {name} field must be {want}",
            self.kind
        ))
    }

    /// A credential: the secret named by `from_secret_field` if set (an unknown secret is
    /// an error naming it), else the clear-text `field`.
    pub fn secret(&self, field: &str, from_secret_field: &str) -> VfsResult<Option<String>> {
        if let Some(name) = self.str(from_secret_field) {
            return (self.secrets)(&name).map(Some).ok_or_else(|| {
                VfsError::Other(format!(
                    "{} client: {from_secret_field} names the secret {name:?}, which does not exist; create it or fix the name",
                    self.kind
                ))
            });
        }
        Ok(self.str(field))
    }
}
