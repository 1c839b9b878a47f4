//! A consistent copy of a SQLite store while it is in use (`aft backup`), and the checks a
//! restore needs.

use std::path::Path;

use crate::{Dialect, SecretsKey, Store, StoreError, StoreResult};

impl Store {
    /// Write a consistent copy of this SQLite store to `target` (which must not exist),
    /// while other connections keep reading and writing. The copy appears under its name
    /// only once complete, readable by this user only. PostgreSQL stores are backed up with
    /// `pg_dump` instead.
    pub async fn backup_into(&self, target: &Path) -> StoreResult<()> {
        if self.dialect() != Dialect::Sqlite {
            return Err(StoreError::Invalid(
                "aft backup copies the embedded SQLite store; back up PostgreSQL with pg_dump (see docs/cluster.md)".into(),
            ));
        }
        if target.exists() {
            return Err(StoreError::Invalid(format!(
                "{} exists already; aft backup never overwrites a file",
                target.display()
            )));
        }
        let io_err = |path: &Path| {
            let path = path.display().to_string();
            move |source| StoreError::Io { path, source }
        };
        let name = target.file_name().ok_or_else(|| {
            StoreError::Invalid(format!("{} is not a file name", target.display()))
        })?;
        let partial = target.with_file_name(format!(".{}.partial", name.to_string_lossy()));
        let _ = std::fs::remove_file(&partial);
        // VACUUM INTO writes a fresh, compact database from one read transaction.
        sqlx::query("VACUUM INTO $1")
            .bind(partial.to_string_lossy().to_string())
            .execute(self.pool())
            .await?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o600))
                .map_err(io_err(&partial))?;
        }
        std::fs::rename(&partial, target).map_err(io_err(target))
    }

    /// Whether `key` opens the secrets of this store: `Ok` when it does or there are none,
    /// else the error naming the mismatch.
    pub async fn check_secrets_key(&self, key: &SecretsKey) -> StoreResult<()> {
        let other: Option<String> =
            sqlx::query_scalar("SELECT key_id FROM secrets WHERE key_id <> $1 LIMIT 1")
                .bind(key.id())
                .fetch_optional(self.pool())
                .await?;
        match other {
            None => Ok(()),
            Some(id) => Err(StoreError::Crypto(format!(
                "the secrets were sealed with another key (key id {id}, this one is {})",
                key.id()
            ))),
        }
    }
}
