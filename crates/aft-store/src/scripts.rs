//! Stored SyncJS scripts. Names are unique case-insensitively (`aft start -n NAME` matches
//! them that way); ids are UUIDv7 text.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::util::{conflict_or_db, int_bool, name_key, new_id, parse_time, validate_name};
use crate::{Store, StoreError, StoreResult, now_text};

/// A stored script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Script {
    /// Id (UUIDv7).
    pub id: String,
    /// Name as the user wrote it.
    pub name: String,
    /// Free text.
    pub description: String,
    /// The SyncJS source.
    pub body: String,
    /// Whether a job of this script interrupted by a node failure may be queued again.
    pub retry_safe: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// What a new script is made of.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewScript {
    /// Name: non-empty, no control characters, at most 200 characters.
    pub name: String,
    /// Free text.
    pub description: String,
    /// The SyncJS source.
    pub body: String,
    /// Whether interrupted jobs may be re-queued.
    pub retry_safe: bool,
}

/// Changes to a script; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScriptUpdate {
    /// New name (rename).
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New source.
    pub body: Option<String>,
    /// New retry flag.
    pub retry_safe: Option<bool>,
}

const COLUMNS: &str = "id, name, description, body, retry_safe, created_at, updated_at";

fn script_from_row(row: &AnyRow) -> StoreResult<Script> {
    Ok(Script {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        body: row.try_get("body")?,
        retry_safe: int_bool(row.try_get("retry_safe")?),
        created_at: parse_time("created_at", &row.try_get::<String, _>("created_at")?)?,
        updated_at: parse_time("updated_at", &row.try_get::<String, _>("updated_at")?)?,
    })
}

impl Store {
    /// Create a script; `Conflict` if the name is taken (ignoring case).
    pub async fn create_script(&self, new: NewScript) -> StoreResult<Script> {
        validate_name("script", &new.name)?;
        let id = new_id();
        let now = now_text();
        sqlx::query(
            "INSERT INTO scripts (id, name, name_key, description, body, retry_safe, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        )
        .bind(&id)
        .bind(&new.name)
        .bind(name_key(&new.name))
        .bind(&new.description)
        .bind(&new.body)
        .bind(i64::from(new.retry_safe))
        .bind(&now)
        .execute(self.pool())
        .await
        .map_err(conflict_or_db("script", &new.name))?;
        self.add_script_version(&id, &new.body, &new.description)
            .await?;
        self.get_script(&id).await?.ok_or(StoreError::NotFound {
            kind: "script",
            name: id,
        })
    }

    /// Change the script with this id or name (case-insensitive); `NotFound` if none.
    pub async fn update_script(
        &self,
        id_or_name: &str,
        update: ScriptUpdate,
    ) -> StoreResult<Script> {
        let current = self.find_script(id_or_name).await?;
        if let Some(name) = &update.name {
            validate_name("script", name)?;
        }
        let name = update.name.unwrap_or(current.name);
        let body = update.body.unwrap_or(current.body.clone());
        let description = update.description.unwrap_or(current.description);
        sqlx::query(
            "UPDATE scripts SET name = $1, name_key = $2, description = $3, body = $4, \
             retry_safe = $5, updated_at = $6 WHERE id = $7",
        )
        .bind(&name)
        .bind(name_key(&name))
        .bind(&description)
        .bind(&body)
        .bind(i64::from(update.retry_safe.unwrap_or(current.retry_safe)))
        .bind(now_text())
        .bind(&current.id)
        .execute(self.pool())
        .await
        .map_err(conflict_or_db("script", &name))?;
        // A save that changes the source keeps it as a new version; renames, descriptions
        // and flags alone do not.
        if body != current.body {
            self.add_script_version(&current.id, &body, &description)
                .await?;
        }
        self.find_script(&current.id).await
    }

    /// Create the script `new.name` or replace the body, description and retry flag of the
    /// one with that name (for `aft script push`). Returns the script and whether it was new.
    pub async fn put_script(&self, new: NewScript) -> StoreResult<(Script, bool)> {
        match self.script_by_name(&new.name).await? {
            Some(existing) => {
                let update = ScriptUpdate {
                    name: None,
                    description: Some(new.description),
                    body: Some(new.body),
                    retry_safe: Some(new.retry_safe),
                };
                Ok((self.update_script(&existing.id, update).await?, false))
            }
            None => match self.create_script(new.clone()).await {
                Ok(script) => Ok((script, true)),
                // Another writer created it between our read and insert: update theirs.
                Err(StoreError::Conflict { .. }) => Box::pin(self.put_script(new)).await,
                Err(e) => Err(e),
            },
        }
    }

    /// The script with this id, if any.
    pub async fn get_script(&self, id: &str) -> StoreResult<Option<Script>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM scripts WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(script_from_row).transpose()
    }

    /// The script with this name, matched case-insensitively, if any.
    pub async fn script_by_name(&self, name: &str) -> StoreResult<Option<Script>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM scripts WHERE name_key = $1"
        ))
        .bind(name_key(name))
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(script_from_row).transpose()
    }

    /// The script with this id or (case-insensitive) name; `NotFound` if neither matches.
    pub async fn find_script(&self, id_or_name: &str) -> StoreResult<Script> {
        if let Some(script) = self.get_script(id_or_name).await? {
            return Ok(script);
        }
        self.script_by_name(id_or_name)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: "script",
                name: id_or_name.to_string(),
            })
    }

    /// All scripts, ordered by name (case-insensitive).
    pub async fn list_scripts(&self) -> StoreResult<Vec<Script>> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM scripts ORDER BY name_key"))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(script_from_row).collect()
    }

    /// Delete the script with this id or name; `NotFound` if none.
    pub async fn delete_script(&self, id_or_name: &str) -> StoreResult<()> {
        let script = self.find_script(id_or_name).await?;
        sqlx::query("DELETE FROM scripts WHERE id = $1")
            .bind(&script.id)
            .execute(self.pool())
            .await?;
        sqlx::query("DELETE FROM script_versions WHERE script_id = $1")
            .bind(&script.id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Keep `body` as the next version of script `script_id`; returns its number.
    async fn add_script_version(
        &self,
        script_id: &str,
        body: &str,
        description: &str,
    ) -> StoreResult<i64> {
        let latest: Option<i64> =
            sqlx::query("SELECT MAX(version) AS v FROM script_versions WHERE script_id = $1")
                .bind(script_id)
                .fetch_one(self.pool())
                .await?
                .try_get("v")?;
        let version = latest.unwrap_or(0) + 1;
        sqlx::query(
            "INSERT INTO script_versions (script_id, version, body, description, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(script_id)
        .bind(version)
        .bind(body)
        .bind(description)
        .bind(now_text())
        .execute(self.pool())
        .await?;
        Ok(version)
    }

    /// Every version of a script, newest first.
    pub async fn list_script_versions(&self, id_or_name: &str) -> StoreResult<Vec<ScriptVersion>> {
        let script = self.find_script(id_or_name).await?;
        let rows = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM script_versions WHERE script_id = $1 ORDER BY version DESC"
        ))
        .bind(&script.id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(version_from_row).collect()
    }

    /// Version `version` of a script; `NotFound` if it has no such version.
    pub async fn script_version(
        &self,
        id_or_name: &str,
        version: i64,
    ) -> StoreResult<ScriptVersion> {
        let script = self.find_script(id_or_name).await?;
        let row = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM script_versions WHERE script_id = $1 AND version = $2"
        ))
        .bind(&script.id)
        .bind(version)
        .fetch_optional(self.pool())
        .await?;
        match row {
            Some(row) => version_from_row(&row),
            None => Err(StoreError::NotFound {
                kind: "script version",
                name: format!("{} version {version}", script.name),
            }),
        }
    }

    /// The newest version number of a script (0 if it has none, which only a script whose
    /// versions were removed by hand can have).
    pub async fn current_script_version(&self, script_id: &str) -> StoreResult<i64> {
        let latest: Option<i64> =
            sqlx::query("SELECT MAX(version) AS v FROM script_versions WHERE script_id = $1")
                .bind(script_id)
                .fetch_one(self.pool())
                .await?
                .try_get("v")?;
        Ok(latest.unwrap_or(0))
    }

    /// Make version `version`'s source the script's source again, as a new version (or
    /// nothing new when it is already the current source). Returns the script.
    pub async fn restore_script_version(
        &self,
        id_or_name: &str,
        version: i64,
    ) -> StoreResult<Script> {
        let old = self.script_version(id_or_name, version).await?;
        let script = self.find_script(id_or_name).await?;
        let update = ScriptUpdate {
            body: Some(old.body),
            ..ScriptUpdate::default()
        };
        self.update_script(&script.id, update).await
    }
}

/// One kept version of a script's source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScriptVersion {
    /// Its number, from 1 up per script.
    pub version: i64,
    /// The source as saved.
    pub body: String,
    /// The description when it was saved.
    pub description: String,
    /// When it was saved.
    pub created_at: DateTime<Utc>,
}

const VERSION_COLUMNS: &str = "version, body, description, created_at";

fn version_from_row(row: &AnyRow) -> StoreResult<ScriptVersion> {
    Ok(ScriptVersion {
        version: row.try_get("version")?,
        body: row.try_get("body")?,
        description: row.try_get("description")?,
        created_at: parse_time("created_at", &row.try_get::<String, _>("created_at")?)?,
    })
}
