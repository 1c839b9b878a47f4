//! Small helpers shared by the store's modules: ids, timestamps, names, error mapping.

use chrono::{DateTime, SecondsFormat, Utc};

use sqlx::any::AnyRow;

use crate::{Store, StoreError, StoreResult};

/// A new row id: a UUIDv7, so ids sort by creation time.
pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A timestamp as the RFC 3339 UTC text the timestamp columns hold.
pub(crate) fn time_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parse a timestamp column.
pub(crate) fn parse_time(column: &str, text: &str) -> StoreResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Invalid(format!("stored {column} {text:?} is not RFC 3339: {e}")))
}

/// Parse a nullable timestamp column.
pub(crate) fn parse_opt_time(
    column: &str,
    text: Option<String>,
) -> StoreResult<Option<DateTime<Utc>>> {
    text.map(|t| parse_time(column, &t)).transpose()
}

/// The lower-cased form under which a name is unique.
pub(crate) fn name_key(name: &str) -> String {
    name.to_lowercase()
}

/// Check a user-given name: non-empty, no control characters, at most 200 characters.
pub(crate) fn validate_name(kind: &str, name: &str) -> StoreResult<()> {
    if name.trim().is_empty() {
        return Err(StoreError::Invalid(format!(
            "{kind} name must not be empty"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(StoreError::Invalid(format!(
            "{kind} name {name:?} contains control characters"
        )));
    }
    if name.chars().count() > 200 {
        return Err(StoreError::Invalid(format!(
            "{kind} name is {} characters long; at most 200 are allowed",
            name.chars().count()
        )));
    }
    Ok(())
}

impl Store {
    /// The row (`columns`) of `table` whose id or case-insensitive name is `id_or_name`;
    /// `NotFound`, naming it a `kind`, if none. For the tables with a `name_key` column.
    pub(crate) async fn row_by_id_or_name(
        &self,
        table: &str,
        columns: &str,
        kind: &'static str,
        id_or_name: &str,
    ) -> StoreResult<AnyRow> {
        let sql = format!("SELECT {columns} FROM {table} WHERE id = $1 OR name_key = $2");
        sqlx::query(&sql)
            .bind(id_or_name)
            .bind(name_key(id_or_name))
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind,
                name: id_or_name.to_string(),
            })
    }
}

/// Whether a query failed because a unique constraint was violated (both dialects).
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Turn a unique violation into [`StoreError::Conflict`], other errors into `Db`.
pub(crate) fn conflict_or_db(
    kind: &'static str,
    name: &str,
) -> impl FnOnce(sqlx::Error) -> StoreError {
    let name = name.to_string();
    move |e| {
        if is_unique_violation(&e) {
            StoreError::Conflict { kind, name }
        } else {
            StoreError::Db(e)
        }
    }
}

/// Integer 0/1 column to bool.
pub(crate) fn int_bool(value: i64) -> bool {
    value != 0
}
