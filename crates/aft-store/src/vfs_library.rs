//! The VFS Library: named connection definitions (type + SyncJS client fields) that scripts
//! open with `GetVFS(name)` and watchers use by name. Credentials are only references to
//! secrets (`PassFromSecret`, ...): clear-text credential fields are refused.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::util::{conflict_or_db, name_key, new_id, parse_time, validate_name};
use crate::{Store, StoreError, StoreResult, now_text};

/// The kind of storage a VFS entry connects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VfsKind {
    /// A local directory.
    Disk,
    /// SFTP over SSH.
    Sftp,
    /// Plain FTP.
    Ftp,
    /// FTP over TLS.
    Ftps,
    /// Amazon S3 or an S3-compatible server.
    S3,
    /// Azure Blob Storage.
    Azure,
    /// Google Cloud Storage.
    Gcs,
    /// WebDAV.
    Webdav,
}

/// Every kind, in display order.
pub const VFS_KINDS: &[VfsKind] = &[
    VfsKind::Disk,
    VfsKind::Sftp,
    VfsKind::Ftp,
    VfsKind::Ftps,
    VfsKind::S3,
    VfsKind::Azure,
    VfsKind::Gcs,
    VfsKind::Webdav,
];

impl VfsKind {
    /// The lower-case name (`sftp`), as stored and as typed on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            VfsKind::Disk => "disk",
            VfsKind::Sftp => "sftp",
            VfsKind::Ftp => "ftp",
            VfsKind::Ftps => "ftps",
            VfsKind::S3 => "s3",
            VfsKind::Azure => "azure",
            VfsKind::Gcs => "gcs",
            VfsKind::Webdav => "webdav",
        }
    }
}

impl fmt::Display for VfsKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for VfsKind {
    type Err = StoreError;
    fn from_str(s: &str) -> StoreResult<VfsKind> {
        let lower = s.trim().to_ascii_lowercase();
        VFS_KINDS
            .iter()
            .copied()
            .find(|k| k.as_str() == lower)
            .ok_or_else(|| {
                let known: Vec<&str> = VFS_KINDS.iter().map(|k| k.as_str()).collect();
                StoreError::Invalid(format!(
                    "unknown VFS type {s:?}; use one of {}",
                    known.join(", ")
                ))
            })
    }
}

/// Clear-text credential fields and the secret-reference field to use instead.
pub const CLEAR_TEXT_FIELDS: &[(&str, &str)] = &[
    ("Pass", "PassFromSecret"),
    ("KeyFilePass", "KeyFileSecret"),
    ("APIKeySecret", "APIKeySecretFromSecret"),
    ("AccountKey", "AccountKeyFromSecret"),
    ("OTFEKey", "OTFEKeyFromSecret"),
];

/// Check VFS settings: field names non-empty, values scalars, no clear-text credentials.
pub fn validate_vfs_settings(settings: &Map<String, Value>) -> StoreResult<()> {
    for (field, value) in settings {
        if let Some((_, instead)) = CLEAR_TEXT_FIELDS
            .iter()
            .find(|(f, _)| f.eq_ignore_ascii_case(field))
        {
            return Err(StoreError::Invalid(format!(
                "VFS field {field} would store a credential in clear text; store it with \
                 `aft secret set NAME` and set {instead} to the secret's name instead"
            )));
        }
        if field.is_empty() || field.chars().any(char::is_control) {
            return Err(StoreError::Invalid(format!(
                "VFS field name {field:?} is not valid"
            )));
        }
        if value.is_object() || value.is_array() {
            return Err(StoreError::Invalid(format!(
                "VFS field {field} must be text, a number or true/false"
            )));
        }
    }
    Ok(())
}

/// A VFS Library entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VfsEntry {
    /// Id (UUIDv7).
    pub id: String,
    /// Name, unique case-insensitively.
    pub name: String,
    /// What it connects to.
    #[serde(rename = "type")]
    pub kind: VfsKind,
    /// SyncJS client fields (`Host`, `User`, `PassFromSecret`, `Bucket`, ...).
    pub settings: Map<String, Value>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, name, kind, settings, created_at, updated_at";

fn entry_from_row(row: &AnyRow) -> StoreResult<VfsEntry> {
    let kind: String = row.try_get("kind")?;
    let settings: String = row.try_get("settings")?;
    Ok(VfsEntry {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        kind: kind.parse()?,
        settings: serde_json::from_str(&settings).map_err(|e| {
            StoreError::Invalid(format!("stored VFS settings are not a JSON object: {e}"))
        })?,
        created_at: parse_time("created_at", &row.try_get::<String, _>("created_at")?)?,
        updated_at: parse_time("updated_at", &row.try_get::<String, _>("updated_at")?)?,
    })
}

impl Store {
    /// Add an entry; `Conflict` if the name is taken (ignoring case).
    pub async fn create_vfs_entry(
        &self,
        name: &str,
        kind: VfsKind,
        settings: Map<String, Value>,
    ) -> StoreResult<VfsEntry> {
        validate_name("VFS", name)?;
        validate_vfs_settings(&settings)?;
        let id = new_id();
        sqlx::query(
            "INSERT INTO vfs_entries (id, name, name_key, kind, settings, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(&id)
        .bind(name)
        .bind(name_key(name))
        .bind(kind.as_str())
        .bind(Value::Object(settings).to_string())
        .bind(now_text())
        .execute(self.pool())
        .await
        .map_err(conflict_or_db("VFS", name))?;
        self.find_vfs_entry(&id).await
    }

    /// Replace the type and settings of the entry with this id or name.
    pub async fn update_vfs_entry(
        &self,
        id_or_name: &str,
        kind: VfsKind,
        settings: Map<String, Value>,
    ) -> StoreResult<VfsEntry> {
        validate_vfs_settings(&settings)?;
        let entry = self.find_vfs_entry(id_or_name).await?;
        sqlx::query(
            "UPDATE vfs_entries SET kind = $1, settings = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(kind.as_str())
        .bind(Value::Object(settings).to_string())
        .bind(now_text())
        .bind(&entry.id)
        .execute(self.pool())
        .await?;
        self.find_vfs_entry(&entry.id).await
    }

    /// The entry with this name (case-insensitive), if any — what `GetVFS(name)` opens.
    pub async fn vfs_entry_by_name(&self, name: &str) -> StoreResult<Option<VfsEntry>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM vfs_entries WHERE name_key = $1"
        ))
        .bind(name_key(name))
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(entry_from_row).transpose()
    }

    /// The entry with this id or (case-insensitive) name; `NotFound` if none.
    pub async fn find_vfs_entry(&self, id_or_name: &str) -> StoreResult<VfsEntry> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM vfs_entries WHERE id = $1 OR name_key = $2"
        ))
        .bind(id_or_name)
        .bind(name_key(id_or_name))
        .fetch_optional(self.pool())
        .await?;
        match row {
            Some(row) => entry_from_row(&row),
            None => Err(StoreError::NotFound {
                kind: "VFS",
                name: id_or_name.to_string(),
            }),
        }
    }

    /// All entries, by name.
    pub async fn list_vfs_entries(&self) -> StoreResult<Vec<VfsEntry>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM vfs_entries ORDER BY name_key"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// Delete the entry with this id or name; `NotFound` if none.
    pub async fn delete_vfs_entry(&self, id_or_name: &str) -> StoreResult<()> {
        let entry = self.find_vfs_entry(id_or_name).await?;
        sqlx::query("DELETE FROM vfs_entries WHERE id = $1")
            .bind(&entry.id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
