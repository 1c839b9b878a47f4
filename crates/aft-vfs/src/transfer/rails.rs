//! Safety rails on what `sync` deletes (rclone's `--max-delete` and `--backup-dir`):
//! [`MaxDelete`] refuses a sync that would delete too much, before anything is deleted;
//! a backup folder receives what would be deleted, at the same relative paths.

use std::fmt;
use std::str::FromStr;

use futures::TryStreamExt;

use super::file::{Decide, copy_file_with};
use super::tree::{is_internal, relative};
use super::{Outcome, TransferOptions, TransferPolicy, TransferSummary};
use crate::{Entry, Vfs, VfsError, VfsResult, join, normalize, parent, walk};

/// The most files one sync may delete: a count, or a percentage of the files at the target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaxDelete {
    /// At most this many files.
    Count(u64),
    /// At most this share (0 to 100) of the target's files, rounded down.
    Percent(f64),
}

impl MaxDelete {
    /// How many files of `total` may go.
    pub fn limit(self, total: u64) -> u64 {
        match self {
            Self::Count(n) => n,
            Self::Percent(p) => ((total as f64) * p / 100.0).floor() as u64,
        }
    }
}

impl fmt::Display for MaxDelete {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Count(n) => write!(f, "{n}"),
            Self::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl FromStr for MaxDelete {
    type Err = String;

    /// `"25"` or `"10%"` (a whole count, or a percentage from 0 to 100).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let bad = || {
            format!(
                "MaxDelete must be a whole number of files or a percentage like \"10%\", not {s:?}"
            )
        };
        match s.strip_suffix('%') {
            Some(p) => {
                let p: f64 = p.trim().parse().map_err(|_| bad())?;
                if !(0.0..=100.0).contains(&p) {
                    return Err(bad());
                }
                Ok(Self::Percent(p))
            }
            None => s.parse().map(Self::Count).map_err(|_| bad()),
        }
    }
}

/// How a sync deletes what the source no longer has.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeleteRails {
    /// Refuse the whole deletion when it would take more files than this.
    pub max_delete: Option<MaxDelete>,
    /// Move what would be deleted into this folder (on the target's backend) instead,
    /// keeping its path relative to the sync target.
    pub backup_dir: Option<String>,
}

fn overlaps(a: &str, b: &str) -> bool {
    let inside = |p: &str, dir: &str| dir == "/" || p == dir || p.starts_with(&format!("{dir}/"));
    inside(a, b) || inside(b, a)
}

/// Delete (or move to the backup folder) what is below `dst_dir` but not below `src_dir`,
/// within `rails`; `.ver/` folders and temp files are left alone. Counted in `summary.deleted`.
pub(super) async fn delete_extraneous(
    src: &dyn Vfs,
    src_dir: &str,
    dst: &dyn Vfs,
    dst_dir: &str,
    rails: &DeleteRails,
    summary: &mut TransferSummary,
) -> VfsResult<()> {
    let backup = rails.backup_dir.as_deref().map(normalize);
    if let Some(b) = &backup
        && overlaps(b, dst_dir)
    {
        return Err(VfsError::Other(format!(
            "BackupDir {b} and the sync target {dst_dir} overlap: the backup folder must be outside the folder being synced"
        )));
    }
    // Decide everything first: MaxDelete must refuse before the first deletion, and
    // deleting while a listing is open confuses some servers' paging.
    let mut doomed: Vec<Entry> = Vec::new();
    let mut gone_dirs: Vec<String> = Vec::new();
    let (mut total_files, mut doomed_files) = (0u64, 0u64);
    let mut targets = walk(dst, dst_dir);
    while let Some(e) = targets.try_next().await? {
        let rel = relative(dst_dir, &e.path).to_string();
        if rel.is_empty() || is_internal(&rel) {
            continue;
        }
        total_files += u64::from(!e.is_dir);
        if gone_dirs
            .iter()
            .any(|d| e.path.starts_with(&format!("{d}/")))
        {
            doomed_files += u64::from(!e.is_dir);
            continue;
        }
        match src.stat(&join(src_dir, &rel)).await {
            Ok(s) if s.is_dir == e.is_dir => {}
            Ok(_) | Err(VfsError::NotFound(_)) => {
                if e.is_dir {
                    gone_dirs.push(e.path.clone());
                } else {
                    doomed_files += 1;
                }
                doomed.push(e);
            }
            Err(err) => return Err(err),
        }
    }
    drop(targets);
    if let Some(max) = rails.max_delete {
        let limit = max.limit(total_files);
        if doomed_files > limit {
            return Err(VfsError::Other(format!(
                "MaxDelete: this sync would delete {doomed_files} of the {total_files} files in {}{dst_dir}, more than MaxDelete {max} allows ({limit}); nothing was deleted",
                dst.describe()
            )));
        }
    }
    // Files before folders, as the walk met them: a folder's delete takes its whole tree.
    doomed.sort_by_key(|e| e.is_dir);
    for e in doomed {
        match &backup {
            Some(b) => {
                let to = join(b, relative(dst_dir, &e.path));
                move_aside(dst, &e, &to).await?;
            }
            None if e.is_dir => dst.remove_all(&e.path).await?,
            None => dst.remove_file(&e.path).await?,
        }
        summary.deleted += 1;
    }
    Ok(())
}

/// Move `e` to `to` on the same backend: a rename where it can, else copy then delete.
async fn move_aside(dst: &dyn Vfs, e: &Entry, to: &str) -> VfsResult<()> {
    dst.mkdir_all(&parent(to)).await?;
    if let Ok(existing) = dst.stat(to).await {
        // An older backup of the same path makes way for the newer one.
        if existing.is_dir {
            dst.remove_all(to).await?;
        } else {
            dst.remove_file(to).await?;
        }
    }
    match dst.rename(&e.path, to).await {
        Err(VfsError::Unsupported(_)) => {}
        other => return other,
    }
    let files: Vec<Entry> = if e.is_dir {
        walk(dst, &e.path)
            .try_filter(|f| futures::future::ready(!f.is_dir))
            .try_collect()
            .await?
    } else {
        vec![e.clone()]
    };
    let opts = TransferOptions {
        policy: TransferPolicy::AlwaysOverwrite,
        ..TransferOptions::default()
    };
    for f in files {
        let target = join(to, relative(&e.path, &f.path));
        let target = if e.is_dir { target } else { to.to_string() };
        dst.mkdir_all(&parent(&target)).await?;
        let done = copy_file_with(
            dst,
            &f.path,
            dst,
            &target,
            &opts,
            Decide::Policy(TransferPolicy::AlwaysOverwrite),
        )
        .await;
        if let Outcome::Failed(msg) = done.outcome {
            return Err(VfsError::Other(format!(
                "BackupDir: cannot move {} to {target}: {msg}",
                f.path
            )));
        }
    }
    if e.is_dir {
        dst.remove_all(&e.path).await
    } else {
        dst.remove_file(&e.path).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_delete_reads_counts_and_percentages() {
        assert_eq!("3".parse::<MaxDelete>(), Ok(MaxDelete::Count(3)));
        assert_eq!(" 10% ".parse::<MaxDelete>(), Ok(MaxDelete::Percent(10.0)));
        assert!("-1".parse::<MaxDelete>().is_err());
        assert!("150%".parse::<MaxDelete>().is_err());
        assert!("lots".parse::<MaxDelete>().is_err());
        assert_eq!(MaxDelete::Percent(10.0).limit(25), 2);
        assert_eq!(MaxDelete::Count(4).limit(1), 4);
    }

    #[test]
    fn a_backup_folder_may_not_overlap_the_target() {
        assert!(overlaps("/mirror/.old", "/mirror"));
        assert!(overlaps("/", "/mirror"));
        assert!(!overlaps("/mirror-old", "/mirror"));
    }
}
