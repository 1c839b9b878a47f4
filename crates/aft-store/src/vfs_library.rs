//! The VFS Library: named connection definitions (type + SyncJS client fields) that scripts
//! open with `GetVFS(name)` and watchers use by name. The store keeps the type as text and
//! the fields as given; which types and fields exist, and the refusal of clear-text
//! credentials, belong to `aft_vfs::registry`, which every caller checks first (the server's
//! `save_vfs_entry`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::util::{conflict_or_db, name_key, new_id, parse_time, validate_name};
use crate::{Store, StoreError, StoreResult, now_text};

/// Check what the store itself guarantees of an entry: a type name (lower-case letters and
/// digits; which types exist is `aft_vfs::registry`'s business, checked by the callers) and
/// settings whose field names are non-empty and whose values are scalars.
pub fn validate_vfs_settings(kind: &str, settings: &Map<String, Value>) -> StoreResult<()> {
    if kind.is_empty()
        || kind.len() > 32
        || !kind
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    {
        return Err(StoreError::Invalid(format!(
            "VFS type {kind:?} is not a type name (lower-case letters and digits)"
        )));
    }
    for (field, value) in settings {
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
    /// What it connects to: a type name of `aft_vfs::registry` (`sftp`, `s3`, ...).
    #[serde(rename = "type")]
    pub kind: String,
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
        kind,
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
        kind: &str,
        settings: Map<String, Value>,
    ) -> StoreResult<VfsEntry> {
        validate_name("VFS", name)?;
        validate_vfs_settings(kind, &settings)?;
        let id = new_id();
        sqlx::query(
            "INSERT INTO vfs_entries (id, name, name_key, kind, settings, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(&id)
        .bind(name)
        .bind(name_key(name))
        .bind(kind)
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
        kind: &str,
        settings: Map<String, Value>,
    ) -> StoreResult<VfsEntry> {
        validate_vfs_settings(kind, &settings)?;
        let entry = self.find_vfs_entry(id_or_name).await?;
        sqlx::query(
            "UPDATE vfs_entries SET kind = $1, settings = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(kind)
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
        let row = self
            .row_by_id_or_name("vfs_entries", COLUMNS, "VFS", id_or_name)
            .await?;
        entry_from_row(&row)
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
