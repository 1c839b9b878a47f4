//! The backend registry: every backend declares once, in its own module, its type names,
//! label and fields (a [`BackendInfo`], as rclone's `fs.Register` does); everything else
//! derives from [`BACKENDS`]: [`crate::open_backend`], the VFS Library check
//! ([`check_entry`]), the SyncJS client defaults, `GET /v1/vfs/types`, the web form and
//! `aft vfs types`.
//!
//! Adding a backend = its module with `from_fields` and a `pub const BACKEND: BackendInfo`,
//! plus one line in [`BACKENDS`].

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::config::Fields;
use crate::{Vfs, VfsResult};

/// Every backend aft knows, in display order.
pub const BACKENDS: &[&BackendInfo] = &[
    &crate::local::BACKEND,
    &crate::sftp::BACKEND,
    &crate::ftp::BACKEND,
    &crate::s3::BACKEND,
    &crate::azure::BACKEND,
    &crate::gcs::BACKEND,
    &crate::webdav::BACKEND,
    &crate::smb::BACKEND,
];

/// One backend: the type names it answers to, its fields and how to build it.
#[derive(Debug)]
pub struct BackendInfo {
    /// The type names (`ftp`, `ftps`): one backend may offer several presets.
    pub types: &'static [TypeInfo],
    /// Its connection fields, by their SyncJS names.
    pub fields: &'static [FieldInfo],
    /// Groups of fields of which at least one must be set (WebDAV: `Endpoint` or `Host`).
    pub one_of: &'static [&'static str],
    /// Build the backend from its fields (nothing is contacted yet).
    pub open: fn(&Fields<'_>) -> VfsResult<Arc<dyn Vfs>>,
}

/// One type name of a backend, as stored in the VFS Library and used by SyncJS clients.
#[derive(Debug)]
pub struct TypeInfo {
    /// The name (`sftp`, `ftps`), lower case.
    pub name: &'static str,
    /// Other names accepted for it (`local` for `disk`), never shown.
    pub aliases: &'static [&'static str],
    /// A human label for menus (`Amazon S3 / compatible`).
    pub label: &'static str,
    /// The SyncJS class scripts create it with (`SftpClient`).
    pub client: &'static str,
    /// Field defaults that differ from the field's own for this type (`ftps`: `TLSMode` 1).
    pub defaults: &'static [(&'static str, DefaultValue)],
}

/// What values a field takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Free text.
    Text,
    /// `host[:port]`; `user:password@` in it is refused by the VFS Library.
    Address,
    /// A URL; `user:password@` in it is refused by the VFS Library.
    Url,
    /// A file on the aft machine; a private key's text in it is refused by the VFS Library.
    File,
    /// A whole number.
    Number,
    /// Yes or no.
    Bool,
    /// One of these names (or its position, 0 for the first).
    Choice(&'static [&'static str]),
    /// The name of a secret (`aft secret set NAME`) holding the value of another field.
    Secret,
    /// A clear-text credential: scripts may set it, the VFS Library refuses it in favour of
    /// the [`FieldKind::Secret`] field whose `secret_for` names it.
    Credential,
}

impl FieldKind {
    /// The kind's name as the API and the web form use it.
    pub fn name(self) -> &'static str {
        match self {
            FieldKind::Text => "text",
            FieldKind::Address => "address",
            FieldKind::Url => "url",
            FieldKind::File => "file",
            FieldKind::Number => "number",
            FieldKind::Bool => "bool",
            FieldKind::Choice(_) => "choice",
            FieldKind::Secret => "secret",
            FieldKind::Credential => "credential",
        }
    }
}

/// A field's default value, as a new SyncJS client starts with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultValue {
    /// Text.
    Text(&'static str),
    /// A number.
    Number(i64),
    /// A boolean.
    Bool(bool),
}

impl DefaultValue {
    /// The value as JSON.
    pub fn to_json(self) -> Value {
        match self {
            DefaultValue::Text(s) => Value::String(s.into()),
            DefaultValue::Number(n) => Value::from(n),
            DefaultValue::Bool(b) => Value::Bool(b),
        }
    }
}

/// One connection field of a backend.
#[derive(Debug, Clone, Copy)]
pub struct FieldInfo {
    /// The SyncJS name (`Host`, `PassFromSecret`).
    pub name: &'static str,
    /// A short human label (`Password secret`).
    pub label: &'static str,
    /// What values it takes.
    pub kind: FieldKind,
    /// Whether a VFS Library entry must set it.
    pub required: bool,
    /// Its default (what a new SyncJS client starts with), if it has one.
    pub default: Option<DefaultValue>,
    /// One line of help.
    pub help: &'static str,
    /// An example value for an empty input.
    pub placeholder: &'static str,
    /// For a [`FieldKind::Secret`] field: the field it holds the value of (`Pass`).
    pub secret_for: Option<&'static str>,
    /// Rarely needed: the web form shows it under "More fields".
    pub advanced: bool,
}

impl FieldInfo {
    const fn new(name: &'static str, label: &'static str, kind: FieldKind) -> Self {
        Self {
            name,
            label,
            kind,
            required: false,
            default: None,
            help: "",
            placeholder: "",
            secret_for: None,
            advanced: false,
        }
    }

    /// A free-text field.
    pub const fn text(name: &'static str, label: &'static str) -> Self {
        Self::new(name, label, FieldKind::Text)
    }

    /// A `host[:port]` field.
    pub const fn address(name: &'static str, label: &'static str) -> Self {
        Self::new(name, label, FieldKind::Address)
    }

    /// A URL field.
    pub const fn url(name: &'static str, label: &'static str) -> Self {
        Self::new(name, label, FieldKind::Url)
    }

    /// A field naming a file on the aft machine.
    pub const fn file(name: &'static str, label: &'static str) -> Self {
        Self::new(name, label, FieldKind::File)
    }

    /// A whole-number field.
    pub const fn number(name: &'static str, label: &'static str) -> Self {
        Self::new(name, label, FieldKind::Number)
    }

    /// A yes/no field (default no).
    pub const fn bool(name: &'static str, label: &'static str) -> Self {
        Self::new(name, label, FieldKind::Bool).with_default(DefaultValue::Bool(false))
    }

    /// A field taking one of `options`.
    pub const fn choice(
        name: &'static str,
        label: &'static str,
        options: &'static [&'static str],
    ) -> Self {
        Self::new(name, label, FieldKind::Choice(options))
    }

    /// A clear-text credential (scripts only).
    pub const fn credential(name: &'static str, label: &'static str) -> Self {
        Self::new(name, label, FieldKind::Credential).advanced()
    }

    /// A secret reference holding the value of the field `secret_for`.
    pub const fn secret(name: &'static str, label: &'static str, secret_for: &'static str) -> Self {
        let mut f = Self::new(name, label, FieldKind::Secret);
        f.secret_for = Some(secret_for);
        f.help = "The name of a secret (see Secrets); clear-text credentials are refused.";
        f
    }

    /// Mark it required.
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Set its default.
    pub const fn with_default(mut self, value: DefaultValue) -> Self {
        self.default = Some(value);
        self
    }

    /// Set its help line.
    pub const fn help(mut self, help: &'static str) -> Self {
        self.help = help;
        self
    }

    /// Set its example value.
    pub const fn placeholder(mut self, placeholder: &'static str) -> Self {
        self.placeholder = placeholder;
        self
    }

    /// Show it under "More fields" only.
    pub const fn advanced(mut self) -> Self {
        self.advanced = true;
        self
    }

    /// Whether this field holds a credential in clear text (refused by the VFS Library).
    pub fn is_clear_text_credential(&self) -> bool {
        self.kind == FieldKind::Credential
    }
}

/// `Timeout`, declared once for the backends that watch for stalls (FTP/FTPS, S3, Azure,
/// GCS, WebDAV; SFTP's has the same name, default and meaning): seconds without progress
/// before a read, write or request fails with a retryable error.
pub const TIMEOUT_FIELD: FieldInfo = FieldInfo::number("Timeout", "Timeout (seconds)")
    .placeholder("30")
    .help(
        "Seconds without any data moving before a read, write or request is given up and retried.",
    )
    .advanced();

/// `Streams`, declared once for S3, Azure Blob and GCS: parts of one big file uploaded or
/// downloaded at once (see `object_store/parallel.rs`); each holds 8 MiB in memory. SFTP
/// takes the same field with its own help (each stream is an SSH connection).
pub const STREAMS_FIELD: FieldInfo = FieldInfo::number("Streams", "Parts at once per file")
    .placeholder("4")
    .help("Parts of one big file moved at once, 1 to 64 (default 4); each holds 8 MiB in memory.")
    .advanced();

/// A type name resolved to its backend.
#[derive(Debug, Clone, Copy)]
pub struct VfsType {
    /// The backend.
    pub backend: &'static BackendInfo,
    /// The type (preset) of it.
    pub info: &'static TypeInfo,
}

impl VfsType {
    /// The canonical type name (`disk` for `local`).
    pub fn name(&self) -> &'static str {
        self.info.name
    }

    /// The fields of this type.
    pub fn fields(&self) -> &'static [FieldInfo] {
        self.backend.fields
    }

    /// The field named `name` (exact spelling).
    pub fn field(&self, name: &str) -> Option<&'static FieldInfo> {
        self.backend.fields.iter().find(|f| f.name == name)
    }

    /// The default of `field` for this type: the type's override, else the field's own.
    pub fn default_of(&self, field: &FieldInfo) -> Option<DefaultValue> {
        self.info
            .defaults
            .iter()
            .find(|(n, _)| *n == field.name)
            .map(|(_, v)| *v)
            .or(field.default)
    }

    /// The secret-reference field that holds `field`'s value, if there is one.
    pub fn secret_field_for(&self, field: &str) -> Option<&'static FieldInfo> {
        self.backend
            .fields
            .iter()
            .find(|f| f.kind == FieldKind::Secret && f.secret_for == Some(field))
    }

    /// Whether the field `name` names a secret (so its value must be looked up).
    pub fn names_secret(&self, name: &str) -> bool {
        self.fields()
            .iter()
            .any(|f| f.kind == FieldKind::Secret && f.name.eq_ignore_ascii_case(name))
    }
}

/// Every type, in display order.
pub fn types() -> impl Iterator<Item = VfsType> {
    BACKENDS.iter().flat_map(|backend| {
        backend
            .types
            .iter()
            .map(move |info| VfsType { backend, info })
    })
}

/// The canonical type names, for error messages and help (`disk, sftp, ftp, ...`).
pub fn type_names() -> Vec<&'static str> {
    types().map(|t| t.name()).collect()
}

/// The type named `name` (any case, aliases included), if aft has it.
pub fn lookup(name: &str) -> Option<VfsType> {
    let name = name.trim();
    types().find(|t| {
        t.info.name.eq_ignore_ascii_case(name)
            || t.info.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    })
}

/// Why a VFS Library entry was refused; each message names the field and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// The type is not one aft has.
    #[error("unknown VFS type {kind:?}; use one of: {known}")]
    UnknownType {
        /// The type given.
        kind: String,
        /// The types aft has, comma-separated.
        known: String,
    },
    /// A field the type does not have.
    #[error("{kind} has no field {field:?}{hint}; its fields are: {known}")]
    UnknownField {
        /// The type.
        kind: String,
        /// The field given.
        field: String,
        /// `; did you mean ...?` or a word on credentials, or nothing.
        hint: String,
        /// The type's fields, comma-separated.
        known: String,
    },
    /// A clear-text credential.
    #[error(
        "VFS field {field} would store a credential in clear text; store it with \
         `aft secret set NAME` and set {instead} to the secret's name instead"
    )]
    ClearTextCredential {
        /// The field given.
        field: String,
        /// The secret-reference field to use.
        instead: String,
    },
    /// A private key's text in a file field.
    #[error(
        "VFS field {field} holds a private key's text, which would be stored in clear text; \
         {instead}"
    )]
    InlineKey {
        /// The field given.
        field: String,
        /// What to do instead.
        instead: String,
    },
    /// `user:password@` in a URL or address.
    #[error(
        "VFS field {field} holds a user and password (user:password@), which would be stored \
         in clear text; remove them from {field} and use {instead}"
    )]
    CredentialsInUrl {
        /// The field given.
        field: String,
        /// The fields to use instead.
        instead: String,
    },
    /// A required field is missing or empty.
    #[error("{kind} needs the field {field} ({label})")]
    Missing {
        /// The type.
        kind: String,
        /// The field.
        field: String,
        /// Its label.
        label: String,
    },
    /// None of a group of fields of which one is needed is set.
    #[error("{kind} needs one of the fields {fields}")]
    MissingOneOf {
        /// The type.
        kind: String,
        /// The fields, separated by " or ".
        fields: String,
    },
    /// A value of the wrong kind.
    #[error("VFS field {field} must be {want}, not {got}")]
    WrongKind {
        /// The field.
        field: String,
        /// What it takes.
        want: String,
        /// What was given.
        got: String,
    },
}

/// Check a VFS Library entry of type `kind` with `fields` before it is stored: a known type,
/// only its fields (exact names), no clear-text credential (not as a credential field, not
/// as a key's text in a file field, not as `user:password@` in a URL), every required field
/// set, and each value of its field's kind.
pub fn check_entry(kind: &str, fields: &Map<String, Value>) -> Result<VfsType, EntryError> {
    let ty = lookup(kind).ok_or_else(|| EntryError::UnknownType {
        kind: kind.to_string(),
        known: type_names().join(", "),
    })?;
    let secret_fields = || {
        ty.fields()
            .iter()
            .filter(|f| f.kind == FieldKind::Secret)
            .map(|f| f.name)
            .collect::<Vec<_>>()
    };
    for (name, value) in fields {
        let Some(field) = ty.field(name) else {
            return Err(unknown_field(ty, name, &secret_fields()));
        };
        if value.is_null() {
            continue;
        }
        check_value(ty, field, value, &secret_fields())?;
    }
    let is_set = |name: &str| {
        fields.get(name).is_some_and(|v| match v {
            Value::Null => false,
            Value::String(s) => !s.trim().is_empty(),
            _ => true,
        })
    };
    for field in ty.fields().iter().filter(|f| f.required) {
        if !is_set(field.name) {
            return Err(EntryError::Missing {
                kind: ty.name().into(),
                field: field.name.into(),
                label: field.label.into(),
            });
        }
    }
    if !ty.backend.one_of.is_empty() && !ty.backend.one_of.iter().any(|f| is_set(f)) {
        return Err(EntryError::MissingOneOf {
            kind: ty.name().into(),
            fields: ty.backend.one_of.join(" or "),
        });
    }
    Ok(ty)
}

fn unknown_field(ty: VfsType, name: &str, secret_fields: &[&str]) -> EntryError {
    let known: Vec<&str> = ty
        .fields()
        .iter()
        .filter(|f| !f.is_clear_text_credential())
        .map(|f| f.name)
        .collect();
    // A credential declared by another backend under this name is still a credential.
    let elsewhere = BACKENDS
        .iter()
        .flat_map(|b| b.fields.iter())
        .find(|f| f.is_clear_text_credential() && f.name.eq_ignore_ascii_case(name));
    let hint = if let Some(same) = ty
        .fields()
        .iter()
        .find(|f| f.name.eq_ignore_ascii_case(name))
    {
        format!(
            "; did you mean {}? (field names are case-sensitive)",
            same.name
        )
    } else if name.eq_ignore_ascii_case("OTFEKey")
        || name.eq_ignore_ascii_case("OTFEKeyFromSecret")
        || name.eq_ignore_ascii_case("OTFE")
    {
        "; on-the-fly encryption is set per call in the script's Options \
         (Options.OTFE = true; Options.OTFEKeyFromSecret = \"secret name\"), never as a clear-text key"
            .to_string()
    } else if elsewhere.is_some() || looks_like_credential(name) {
        format!(
            "; a credential must not be stored in clear text: store it with `aft secret set NAME` \
             and set {} to the secret's name",
            if secret_fields.is_empty() {
                "the matching ...FromSecret field".to_string()
            } else {
                secret_fields.join(" or ")
            }
        )
    } else {
        String::new()
    };
    EntryError::UnknownField {
        kind: ty.name().into(),
        field: name.into(),
        hint,
        known: known.join(", "),
    }
}

/// Whether a field name suggests it carries a credential (`Password`, `Token`, ...).
fn looks_like_credential(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["pass", "secret", "token", "key", "credential", "pwd"]
        .iter()
        .any(|w| n.contains(w))
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "true/false",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn check_value(
    ty: VfsType,
    field: &FieldInfo,
    value: &Value,
    secret_fields: &[&str],
) -> Result<(), EntryError> {
    let wrong = |want: String| EntryError::WrongKind {
        field: field.name.into(),
        want,
        got: json_kind(value).into(),
    };
    let text = match value {
        Value::String(s) => Some(s.as_str()),
        _ => None,
    };
    match field.kind {
        FieldKind::Credential => {
            let instead = ty
                .secret_field_for(field.name)
                .map_or("the matching ...FromSecret field", |f| f.name);
            Err(EntryError::ClearTextCredential {
                field: field.name.into(),
                instead: instead.into(),
            })
        }
        FieldKind::Number => match value {
            Value::Number(n) if n.as_u64().is_some() => Ok(()),
            Value::String(s) if s.trim().is_empty() || s.trim().parse::<u64>().is_ok() => Ok(()),
            _ => Err(wrong("a whole number".into())),
        },
        FieldKind::Bool => match value {
            Value::Bool(_) => Ok(()),
            Value::Number(n) if matches!(n.as_u64(), Some(0 | 1)) => Ok(()),
            Value::String(s)
                if matches!(
                    s.trim().to_ascii_lowercase().as_str(),
                    "" | "true" | "false" | "yes" | "no" | "1" | "0" | "on" | "off"
                ) =>
            {
                Ok(())
            }
            _ => Err(wrong("true or false".into())),
        },
        FieldKind::Choice(options) => {
            let want = || {
                format!(
                    "one of {} (or 0 to {})",
                    options.join(", "),
                    options.len() - 1
                )
            };
            match value {
                Value::Number(n) if n.as_u64().is_some_and(|i| (i as usize) < options.len()) => {
                    Ok(())
                }
                Value::String(s) => {
                    let s = s.trim();
                    let ok = s.is_empty()
                        || options.iter().any(|o| o.eq_ignore_ascii_case(s))
                        || s.parse::<usize>().is_ok_and(|i| i < options.len());
                    if ok { Ok(()) } else { Err(wrong(want())) }
                }
                _ => Err(wrong(want())),
            }
        }
        FieldKind::Secret => match text {
            Some(_) => Ok(()),
            None => Err(wrong("the name of a secret (text)".into())),
        },
        FieldKind::Text | FieldKind::Address | FieldKind::Url | FieldKind::File => {
            let s = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Err(wrong("text".into())),
            };
            match field.kind {
                FieldKind::File if holds_private_key(&s) => Err(EntryError::InlineKey {
                    field: field.name.into(),
                    instead: match ty.secret_field_for(field.name) {
                        Some(secret) => format!(
                            "store the key's text as a secret (`aft secret set NAME < key-file`) \
                             and set {} to the secret's name, or give the path of a key file",
                            secret.name
                        ),
                        None => format!("put it in a file and set {} to its path", field.name),
                    },
                }),
                FieldKind::Address | FieldKind::Url if has_password_in_url(&s) => {
                    let mut instead: Vec<&str> = Vec::new();
                    if ty.field("User").is_some() {
                        instead.push("User");
                    }
                    instead.extend(secret_fields.iter().copied());
                    Err(EntryError::CredentialsInUrl {
                        field: field.name.into(),
                        instead: if instead.is_empty() {
                            "the backend's own credentials".into()
                        } else {
                            instead.join(" and ")
                        },
                    })
                }
                _ => Ok(()),
            }
        }
    }
}

/// Whether `text` is (or starts like) a private key: OpenSSH/PEM/PKCS#8 or PuTTY `.ppk`.
pub fn holds_private_key(text: &str) -> bool {
    let t = text.trim_start();
    t.starts_with("-----BEGIN") || t.starts_with("PuTTY-User-Key-File-")
}

/// Whether a URL or `host:port` carries `user:password@` before its host.
fn has_password_in_url(text: &str) -> bool {
    let rest = text
        .trim()
        .split_once("://")
        .map_or(text.trim(), |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn refusal(kind: &str, v: Value) -> String {
        check_entry(kind, &map(v)).unwrap_err().to_string()
    }

    #[test]
    fn registry_type_names_are_unique_and_every_secret_field_names_a_field_it_holds() {
        let names = type_names();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "{names:?}");
        for ty in types() {
            for f in ty.fields() {
                assert_eq!(ty.fields().iter().filter(|g| g.name == f.name).count(), 1);
                if f.kind == FieldKind::Secret {
                    let target = f.secret_for.expect("a secret field names its field");
                    assert!(
                        ty.field(target).is_some(),
                        "{}: {} -> {target}",
                        ty.name(),
                        f.name
                    );
                }
                if f.is_clear_text_credential() {
                    assert!(
                        ty.secret_field_for(f.name).is_some(),
                        "{}: {}",
                        ty.name(),
                        f.name
                    );
                }
            }
        }
        for name in [
            "disk", "local", "sftp", "ftp", "ftps", "s3", "azure", "gcs", "webdav", "smb",
        ] {
            assert!(lookup(name).is_some(), "{name}");
        }
        assert_eq!(lookup("LOCAL").unwrap().name(), "disk");
    }

    #[test]
    fn registry_check_accepts_a_complete_entry_of_each_type() {
        let ok = [
            ("disk", json!({"Root": "/srv/outbox"})),
            (
                "sftp",
                json!({"Host": "h:22", "User": "u", "PassFromSecret": "p", "KeyFile": "/k",
                       "KeyFileFromSecret": "k", "KeyFileSecret": "kp", "HostKeySHA256": "SHA256:x",
                       "AcceptAnyHostKey": "false", "ChunkSize": "65536", "Timeout": 5}),
            ),
            ("ftp", json!({"Host": "h", "TLSMode": 0, "Port": "2121"})),
            (
                "ftps",
                json!({"Host": "h", "TLSMode": "TLS_MODE_IMPLICIT", "TLSInsecure": true}),
            ),
            (
                "s3",
                json!({"Bucket": "b", "Endpoint": "http://127.0.0.1:5000", "APIKeyID": "id", "APIKeySecretFromSecret": "s"}),
            ),
            (
                "azure",
                json!({"Container": "c", "AccountName": "a", "AccountKeyFromSecret": "k"}),
            ),
            (
                "gcs",
                json!({"Bucket": "b", "CredentialsFile": "/etc/aft/gcs.json"}),
            ),
            ("webdav", json!({"Host": "dav.example.com"})),
            (
                "smb",
                json!({"Host": "fs:445", "Share": "data", "User": "u", "PassFromSecret": "p", "Domain": "CORP", "Port": 445}),
            ),
        ];
        for (kind, fields) in ok {
            check_entry(kind, &map(fields.clone()))
                .unwrap_or_else(|e| panic!("{kind} {fields}: {e}"));
        }
    }

    #[test]
    fn registry_check_refuses_an_unknown_type_naming_the_known_ones() {
        let e = refusal("floppy", json!({}));
        assert!(e.contains("floppy") && e.contains("sftp, ftp, ftps"), "{e}");
    }

    #[test]
    fn registry_check_refuses_an_unknown_field_and_calls_a_password_a_credential() {
        let e = refusal(
            "sftp",
            json!({"Host": "h", "User": "u", "Password": "hunter2"}),
        );
        assert!(
            e.contains("\"Password\"") && e.contains("PassFromSecret"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "the value must not be echoed: {e}");
        let e = refusal("sftp", json!({"Host": "h", "User": "u", "Colour": "blue"}));
        assert!(
            e.contains("\"Colour\"") && e.contains("HostKeySHA256"),
            "{e}"
        );
        let e = refusal("sftp", json!({"host": "h", "User": "u"}));
        assert!(e.contains("did you mean Host?"), "{e}");
        let e = refusal("s3", json!({"Bucket": "b", "OTFEKey": "k"}));
        assert!(e.contains("Options.OTFEKeyFromSecret"), "{e}");
    }

    #[test]
    fn registry_check_refuses_clear_text_credentials_naming_the_secret_field() {
        for (kind, field, instead, extra) in [
            (
                "sftp",
                "Pass",
                "PassFromSecret",
                json!({"Host": "h", "User": "u"}),
            ),
            (
                "sftp",
                "KeyFilePass",
                "KeyFileSecret",
                json!({"Host": "h", "User": "u"}),
            ),
            (
                "s3",
                "APIKeySecret",
                "APIKeySecretFromSecret",
                json!({"Bucket": "b"}),
            ),
            (
                "azure",
                "AccountKey",
                "AccountKeyFromSecret",
                json!({"Container": "c", "AccountName": "a"}),
            ),
            ("ftps", "Pass", "PassFromSecret", json!({"Host": "h"})),
            ("webdav", "Pass", "PassFromSecret", json!({"Host": "h"})),
            (
                "smb",
                "Pass",
                "PassFromSecret",
                json!({"Host": "h", "Share": "s"}),
            ),
        ] {
            let mut fields = map(extra);
            fields.insert(field.into(), json!("clear"));
            let e = check_entry(kind, &fields).unwrap_err();
            assert_eq!(
                e,
                EntryError::ClearTextCredential {
                    field: field.into(),
                    instead: instead.into()
                },
                "{kind} {field}"
            );
            assert!(e.to_string().contains("aft secret set"), "{e}");
        }
    }

    #[test]
    fn registry_check_refuses_an_inline_private_key_in_key_file() {
        for key in [
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
            "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\n",
        ] {
            let e = refusal("sftp", json!({"Host": "h", "User": "u", "KeyFile": key}));
            assert!(
                e.contains("KeyFile") && e.contains("KeyFileFromSecret"),
                "{e}"
            );
            assert!(!e.contains("b3BlbnNz"), "the key must not be echoed: {e}");
        }
    }

    #[test]
    fn registry_check_refuses_a_password_in_a_url_or_address() {
        let e = refusal(
            "webdav",
            json!({"Endpoint": "https://bob:hunter2@dav.example.com/dav"}),
        );
        assert!(
            e.contains("Endpoint") && e.contains("PassFromSecret") && !e.contains("hunter2"),
            "{e}"
        );
        let e = refusal(
            "s3",
            json!({"Bucket": "b", "Endpoint": "http://id:key@127.0.0.1:5000"}),
        );
        assert!(e.contains("APIKeySecretFromSecret"), "{e}");
        let e = refusal("ftp", json!({"Host": "ftp://u:p@ftp.example.com"}));
        assert!(e.contains("Host"), "{e}");
        // A user alone, or an @ in the path, is no credential.
        check_entry(
            "webdav",
            &map(json!({"Endpoint": "https://dav.example.com/u/a@b"})),
        )
        .unwrap();
    }

    #[test]
    fn registry_check_refuses_missing_required_fields_and_wrong_kinds() {
        assert_eq!(
            refusal("sftp", json!({"Host": "h"})),
            "sftp needs the field User (User)"
        );
        let e = refusal("webdav", json!({"User": "u"}));
        assert!(e.contains("Endpoint or Host"), "{e}");
        let e = refusal(
            "sftp",
            json!({"Host": "h", "User": "u", "ChunkSize": "big"}),
        );
        assert!(e.contains("ChunkSize must be a whole number"), "{e}");
        let e = refusal(
            "ftps",
            json!({"Host": "h", "TLSMode": "TLS_MODE_SOMETIMES"}),
        );
        assert!(e.contains("TLS_MODE_EXPLICIT"), "{e}");
        let e = refusal("ftps", json!({"Host": "h", "TLSInsecure": "perhaps"}));
        assert!(e.contains("true or false"), "{e}");
        let e = refusal("s3", json!({"Bucket": {"name": "b"}}));
        assert!(e.contains("Bucket must be text"), "{e}");
    }
}
