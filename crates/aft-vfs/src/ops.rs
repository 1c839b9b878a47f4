//! Small operations built on the [`Vfs`] trait that every backend gets for free.

use futures::future::BoxFuture;
use futures::stream::{self, StreamExt, TryStreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{Entry, EntryStream, Vfs, VfsError, VfsResult, WriteMode, join};

/// Read a whole file into memory (small files only: configs, tests, `ReadTextFile`).
pub async fn read_all<V: Vfs + ?Sized>(vfs: &V, path: &str) -> VfsResult<Vec<u8>> {
    let mut reader = vfs.read(path, 0, None).await?;
    let mut buf = Vec::new();
    reader
        .read_to_end(&mut buf)
        .await
        .map_err(|e| VfsError::io(format!("{}{path}", vfs.describe()), e))?;
    Ok(buf)
}

/// Create or replace `path` with `data`.
pub async fn write_all<V: Vfs + ?Sized>(vfs: &V, path: &str, data: &[u8]) -> VfsResult<()> {
    let mut writer = vfs.write(path, WriteMode::Create).await?;
    let ctx = |e| VfsError::io(format!("{}{path}", vfs.describe()), e);
    writer.write_all(data).await.map_err(ctx)?;
    writer.shutdown().await.map_err(ctx)?;
    Ok(())
}

/// Whether `path` exists (file or directory).
pub async fn exists<V: Vfs + ?Sized>(vfs: &V, path: &str) -> VfsResult<bool> {
    match vfs.stat(path).await {
        Ok(_) => Ok(true),
        Err(VfsError::NotFound(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Every entry below `dir`, depth first, streamed: only the names of directories still to
/// visit are kept in memory, never a whole listing.
pub fn walk<'a, V: Vfs + ?Sized>(vfs: &'a V, dir: &str) -> EntryStream<'a> {
    struct State<'a> {
        pending: Vec<String>,
        current: Option<EntryStream<'a>>,
    }
    let state = State {
        pending: vec![crate::normalize(dir)],
        current: None,
    };
    stream::try_unfold(state, move |mut st| async move {
        loop {
            if let Some(cur) = st.current.as_mut() {
                match cur.try_next().await? {
                    Some(entry) => {
                        if entry.is_dir {
                            st.pending.push(entry.path.clone());
                        }
                        return Ok(Some((entry, st)));
                    }
                    None => st.current = None,
                }
            }
            match st.pending.pop() {
                Some(next) => st.current = Some(vfs.list(&next).await?),
                None => return Ok(None),
            }
        }
    })
    .boxed()
}

/// Delete `path` and everything below it; Ok when it does not exist. The default
/// behind [`Vfs::remove_all`].
pub async fn remove_tree<V: Vfs + ?Sized>(vfs: &V, path: &str) -> VfsResult<()> {
    let entry = match vfs.stat(path).await {
        Ok(e) => e,
        Err(VfsError::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    if !entry.is_dir {
        return vfs.remove_file(path).await;
    }
    remove_dir_contents(vfs, crate::normalize(path)).await?;
    match vfs.remove_dir(path).await {
        Err(VfsError::NotFound(_)) => Ok(()),
        other => other,
    }
}

fn remove_dir_contents<V: Vfs + ?Sized>(vfs: &V, dir: String) -> BoxFuture<'_, VfsResult<()>> {
    Box::pin(async move {
        // Deleting while a listing is open confuses some servers' paging, so take the
        // names of one directory first (names only, one level).
        let entries: Vec<Entry> = vfs.list(&dir).await?.try_collect().await?;
        for entry in entries {
            let path = join(&dir, &entry.name);
            if entry.is_dir {
                remove_dir_contents(vfs, path.clone()).await?;
                match vfs.remove_dir(&path).await {
                    Ok(()) | Err(VfsError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            } else {
                match vfs.remove_file(&path).await {
                    Ok(()) | Err(VfsError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    })
}
