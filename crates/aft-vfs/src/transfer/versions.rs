//! Versioned transfers: a file about to be replaced moves to `.ver/` beside it, named
//! `<name>.<UTC time>` (`report.csv.20261128T200501.123Z`), and only the newest
//! `versions_to_keep` of each file stay there.

use chrono::{DateTime, NaiveDateTime, Utc};
use futures::TryStreamExt;
use tokio::io::AsyncWriteExt;

use crate::{Vfs, VfsError, VfsResult, WriteMode, file_name, join, parent};

/// The folder beside a file where its old versions go.
pub const VERSIONS_DIR: &str = ".ver";

const STAMP: &str = "%Y%m%dT%H%M%S%.3fZ";

/// The name an old version of `name` gets in `.ver/` when it is replaced at `at`.
pub fn version_name(name: &str, at: DateTime<Utc>) -> String {
    format!("{name}.{}", at.format(STAMP))
}

/// When `candidate` is a version of `name`, the time it was replaced.
fn version_time(name: &str, candidate: &str) -> Option<NaiveDateTime> {
    let stamp = candidate.strip_prefix(name)?.strip_prefix('.')?;
    NaiveDateTime::parse_from_str(stamp, STAMP).ok()
}

/// Move the existing `path` into `.ver/` and prune old versions down to `keep`.
/// With `keep == 0` nothing is kept and the file is left to be replaced.
pub(crate) async fn keep_version(dst: &dyn Vfs, path: &str, keep: u32) -> VfsResult<()> {
    if keep == 0 {
        return Ok(());
    }
    let dir = join(&parent(path), VERSIONS_DIR);
    let name = file_name(path);
    dst.mkdir_all(&dir).await?;
    let target = join(&dir, &version_name(&name, Utc::now()));
    match dst.rename(path, &target).await {
        Err(VfsError::Unsupported(_)) => {
            copy_within(dst, path, &target).await?;
            dst.remove_file(path).await?;
        }
        other => other?,
    }
    prune(dst, &dir, &name, keep).await
}

/// Copy a file to another name on the same backend (for backends that cannot rename).
async fn copy_within(vfs: &dyn Vfs, from: &str, to: &str) -> VfsResult<()> {
    let mut reader = vfs.read(from, 0, None).await?;
    let mut writer = vfs.write(to, WriteMode::Create).await?;
    tokio::io::copy(&mut reader, &mut writer)
        .await
        .map_err(|e| VfsError::io(to, e))?;
    writer.shutdown().await.map_err(|e| VfsError::io(to, e))
}

/// Delete all but the newest `keep` versions of `name` in `ver_dir`.
async fn prune(dst: &dyn Vfs, ver_dir: &str, name: &str, keep: u32) -> VfsResult<()> {
    // Only this file's versions are held, not the whole listing.
    let mut versions: Vec<(NaiveDateTime, String)> = dst
        .list(ver_dir)
        .await?
        .try_filter_map(|e| async move {
            Ok((!e.is_dir)
                .then(|| version_time(name, &e.name).map(|t| (t, e.path)))
                .flatten())
        })
        .try_collect()
        .await?;
    versions.sort();
    let excess = versions.len().saturating_sub(keep as usize);
    for (_, path) in versions.into_iter().take(excess) {
        match dst.remove_file(&path).await {
            Ok(()) | Err(VfsError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn version_names_parse_back_and_ignore_other_files() {
        let at = Utc.with_ymd_and_hms(2026, 11, 28, 20, 5, 1).unwrap();
        let v = version_name("report.csv", at);
        assert_eq!(v, "report.csv.20261128T200501.000Z");
        assert!(version_time("report.csv", &v).is_some());
        assert!(
            version_time("report", &v).is_none(),
            "a shorter name must not claim it"
        );
        assert!(version_time("report.csv", "report.csv.bak").is_none());
    }
}
