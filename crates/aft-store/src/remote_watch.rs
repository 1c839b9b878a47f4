//! What each `RemoteWatcher` has seen of its remote folder (migration 0030), keyed by
//! "vfs name|watched folder|script name".

use sqlx::Row;

use crate::{Store, StoreResult};

/// One remote file as a watcher last reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSeen {
    /// The remote path.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its modification time as the server gave it, if any.
    pub mtime: Option<String>,
    /// Its entity tag, if the backend has one.
    pub etag: Option<String>,
}

impl Store {
    /// Every file the watcher `watch_key` has seen, sorted by path.
    pub async fn remote_watch_load(&self, watch_key: &str) -> StoreResult<Vec<RemoteSeen>> {
        let rows = sqlx::query(
            "SELECT path, size, mtime, etag FROM remote_watch_seen WHERE watch_key = $1 \
             ORDER BY path",
        )
        .bind(watch_key)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(RemoteSeen {
                    path: row.try_get("path")?,
                    size: row.try_get::<i64, _>("size")?.max(0) as u64,
                    mtime: row.try_get("mtime")?,
                    etag: row.try_get("etag")?,
                })
            })
            .collect()
    }

    /// Record `changed` files (insert or replace) and forget `removed` paths, in one
    /// transaction.
    pub async fn remote_watch_save(
        &self,
        watch_key: &str,
        changed: &[RemoteSeen],
        removed: &[String],
    ) -> StoreResult<()> {
        let mut tx = self.pool().begin().await?;
        for seen in changed {
            sqlx::query(
                "INSERT INTO remote_watch_seen (watch_key, path, size, mtime, etag) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (watch_key, path) DO UPDATE SET size = excluded.size, \
                 mtime = excluded.mtime, etag = excluded.etag",
            )
            .bind(watch_key)
            .bind(&seen.path)
            .bind(seen.size.min(i64::MAX as u64) as i64)
            .bind(seen.mtime.clone())
            .bind(seen.etag.clone())
            .execute(&mut *tx)
            .await?;
        }
        for path in removed {
            sqlx::query("DELETE FROM remote_watch_seen WHERE watch_key = $1 AND path = $2")
                .bind(watch_key)
                .bind(path)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(path: &str, size: u64, etag: Option<&str>) -> RemoteSeen {
        RemoteSeen {
            path: path.into(),
            size,
            mtime: Some("2026-11-28T21:00:00Z".into()),
            etag: etag.map(str::to_string),
        }
    }

    crate::both_dialects!(
        remote_watch_saves_replaces_and_forgets_per_key,
        |store| async move {
            store
                .remote_watch_save(
                    "sftp|/in|job",
                    &[seen("/in/a", 1, None), seen("/in/b", 2, Some("e1"))],
                    &[],
                )
                .await
                .unwrap();
            store
                .remote_watch_save("other|/in|job", &[seen("/in/a", 9, None)], &[])
                .await
                .unwrap();
            store
                .remote_watch_save(
                    "sftp|/in|job",
                    &[seen("/in/b", 3, Some("e2"))],
                    &["/in/a".into()],
                )
                .await
                .unwrap();
            assert_eq!(
                store.remote_watch_load("sftp|/in|job").await.unwrap(),
                vec![seen("/in/b", 3, Some("e2"))]
            );
            assert_eq!(
                store.remote_watch_load("other|/in|job").await.unwrap(),
                vec![seen("/in/a", 9, None)]
            );
            assert!(store.remote_watch_load("none").await.unwrap().is_empty());
        }
    );
}
