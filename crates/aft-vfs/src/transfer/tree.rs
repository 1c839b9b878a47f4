//! Many files: globs, recursion, parallel copies, upload/download, and sync.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::TryStreamExt;
use globset::{Glob, GlobMatcher};

use super::file::{Decide, TEMP_MARKER, copy_file_with, copy_listed_file};
use super::rails::DeleteRails;
use super::versions::VERSIONS_DIR;
use super::{OtfeDirection, OutcomeSink, TransferOptions, TransferOutcome, TransferSummary};
use crate::local::LocalFs;
use crate::{Entry, Vfs, VfsError, VfsResult, join, normalize, parent, walk};

/// A source pattern cut into the folder to read and the glob below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobSplit {
    /// The longest leading path without glob characters.
    pub base: String,
    /// The rest (`*.csv`, `**/*.xml`, `sub/*.txt`), `None` for a plain path.
    pub pattern: Option<String>,
}

/// Cut `/data/in/**/*.xml` into base `/data/in` and pattern `**/*.xml`.
pub fn split_glob(pattern: &str) -> GlobSplit {
    let clean = normalize(pattern);
    let parts: Vec<&str> = clean.split('/').filter(|p| !p.is_empty()).collect();
    let is_glob = |p: &str| p.contains(['*', '?', '[', '{']);
    match parts.iter().position(|p| is_glob(p)) {
        None => GlobSplit {
            base: clean,
            pattern: None,
        },
        Some(i) => GlobSplit {
            base: normalize(&parts[..i].join("/")),
            pattern: Some(parts[i..].join("/")),
        },
    }
}

/// Whether the transfer code must leave this entry alone: temp files and `.ver/` folders.
pub(super) fn is_internal(rel: &str) -> bool {
    rel.split('/')
        .any(|part| part == VERSIONS_DIR || part.contains(TEMP_MARKER))
}

/// The path of `path` below `base` (no leading slash).
pub(super) fn relative<'p>(base: &str, path: &'p str) -> &'p str {
    let rest = if base == "/" {
        path
    } else {
        path.strip_prefix(base).unwrap_or(path)
    };
    rest.trim_start_matches('/')
}

/// Which source files a pattern selects.
struct Selection {
    base: String,
    matcher: Option<GlobMatcher>,
    /// Match the path below `base` (pattern has `/` or `**`) rather than the file name.
    match_relative: bool,
    descend: bool,
}

impl Selection {
    fn new(split: GlobSplit, recursive: bool) -> VfsResult<Self> {
        let Some(pattern) = split.pattern else {
            return Ok(Self {
                base: split.base,
                matcher: None,
                match_relative: false,
                descend: recursive,
            });
        };
        let matcher = Glob::new(&pattern)
            .map_err(|e| VfsError::Other(format!("bad file pattern {pattern:?}: {e}")))?
            .compile_matcher();
        let match_relative = pattern.contains('/') || pattern.contains("**");
        Ok(Self {
            base: split.base,
            matcher: Some(matcher),
            match_relative,
            descend: recursive || match_relative,
        })
    }

    fn selects(&self, entry: &Entry) -> Option<String> {
        let rel = relative(&self.base, &entry.path);
        if entry.is_dir || rel.is_empty() || is_internal(rel) {
            return None;
        }
        let ok = match &self.matcher {
            None => true,
            Some(m) if self.match_relative => m.is_match(rel),
            Some(m) => m.is_match(&entry.name),
        };
        ok.then(|| rel.to_string())
    }

    fn entries<'a>(
        &self,
        src: &'a dyn Vfs,
    ) -> futures::future::BoxFuture<'a, VfsResult<crate::EntryStream<'a>>> {
        let base = self.base.clone();
        let descend = self.descend;
        Box::pin(async move {
            if descend {
                Ok(walk(src, &base))
            } else {
                src.list(&base).await
            }
        })
    }
}

/// Creates each target folder once.
struct DirCache<'a> {
    dst: &'a dyn Vfs,
    made: Mutex<HashSet<String>>,
}

impl<'a> DirCache<'a> {
    fn new(dst: &'a dyn Vfs) -> Self {
        Self {
            dst,
            made: Mutex::new(HashSet::new()),
        }
    }

    async fn ensure(&self, dir: &str) -> VfsResult<()> {
        if self.made.lock().expect("dir cache").contains(dir) {
            return Ok(());
        }
        self.dst.mkdir_all(dir).await?;
        self.made.lock().expect("dir cache").insert(dir.to_string());
        Ok(())
    }
}

/// Copy the files `src_glob` selects on `src` into `dst_dir` on `dst`, keeping their paths
/// below the pattern's base folder. A plain file path copies that file; a plain folder
/// copies its files (and subfolders when `opts.recursive`). Each file's outcome goes to
/// `sink`. `Err` only when the transfer could not start or was halted; failed files are
/// counted in the summary (`all_ok()`), and with `stop_on_error` no new file starts after
/// the first failure.
pub async fn copy_tree(
    src: &dyn Vfs,
    src_glob: &str,
    dst: &dyn Vfs,
    dst_dir: &str,
    opts: &TransferOptions,
    sink: OutcomeSink<'_>,
) -> VfsResult<TransferSummary> {
    let split = split_glob(src_glob);
    let dirs = DirCache::new(dst);
    let mut summary = TransferSummary::default();
    if split.pattern.is_none() {
        let entry = src.stat(&split.base).await?;
        if !entry.is_dir {
            dirs.ensure(&normalize(dst_dir)).await?;
            let target = join(dst_dir, &entry.name);
            let o = copy_file_with(
                src,
                &entry.path,
                dst,
                &target,
                opts,
                Decide::Policy(opts.policy),
            )
            .await;
            sink(&o);
            summary.add(&o);
            return Ok(summary);
        }
    }
    let selection = Selection::new(split, opts.recursive)?;
    dirs.ensure(&normalize(dst_dir)).await?;
    let stream = selection.entries(src).await?;
    run_copies(
        src,
        stream,
        &selection,
        dst,
        dst_dir,
        &dirs,
        opts,
        Decide::Policy(opts.policy),
        sink,
        &mut summary,
    )
    .await?;
    Ok(summary)
}

#[allow(clippy::too_many_arguments)]
async fn run_copies(
    src: &dyn Vfs,
    stream: crate::EntryStream<'_>,
    selection: &Selection,
    dst: &dyn Vfs,
    dst_dir: &str,
    dirs: &DirCache<'_>,
    opts: &TransferOptions,
    decide: Decide,
    sink: OutcomeSink<'_>,
    summary: &mut TransferSummary,
) -> VfsResult<()> {
    let stop = AtomicBool::new(false);
    let stop = &stop;
    let trust_listing = listing_says_all(src);
    let (in_flight, big_files) = files_in_flight(src, dst, opts);
    let big_files = &big_files;
    let copies = stream
        .try_filter_map(
            |entry| async move { Ok(selection.selects(&entry).map(|rel| (entry, rel))) },
        )
        .map_ok(|(entry, rel)| async move {
            // A file from `SMALL_FILE` up waits for one of `parallel` places.
            let _place = match big_files {
                Some(places) if entry.size >= SMALL_FILE => Some(
                    places
                        .acquire()
                        .await
                        .expect("the semaphore is never closed"),
                ),
                _ => None,
            };
            if stop.load(Ordering::Relaxed) || opts.cancelled() {
                return Ok::<Option<TransferOutcome>, VfsError>(None);
            }
            let target = join(dst_dir, &rel);
            dirs.ensure(&parent(&target)).await?;
            let src_path = entry.path.clone();
            let listed = trust_listing.then_some(entry);
            Ok(Some(
                copy_listed_file(src, &src_path, listed, dst, &target, opts, decide).await,
            ))
        })
        .try_buffer_unordered(in_flight);
    let mut copies = std::pin::pin!(copies);
    while let Some(done) = copies.try_next().await? {
        let Some(o) = done else { continue };
        sink(&o);
        summary.add(&o);
        if summary.failed > 0 && opts.stop_on_error {
            stop.store(true, Ordering::Relaxed);
        }
    }
    if opts.cancelled() {
        return Err(VfsError::Other("transfer halted by the halt signal".into()));
    }
    Ok(())
}

/// Files from this size up count against `parallel` where an object store is one end
/// (`TransferOptions::small_parallel`); smaller ones are a single request each there.
pub const SMALL_FILE: u64 = 1024 * 1024;

/// How many files `run_copies` keeps in flight, and the places for files from
/// [`SMALL_FILE`] up when those are fewer. An object store answers each small file in one
/// HTTP request whose time is mostly the server's and the network's, so more of them at
/// once pay (rclone and the AWS CLI keep 4 and 10); a big file holds up to `Streams` + 2
/// parts in memory, so those stay at `parallel`. Other backends keep `parallel` for all:
/// an SFTP or FTP server serialises much of it, and each file may hold a connection.
fn files_in_flight(
    src: &dyn Vfs,
    dst: &dyn Vfs,
    opts: &TransferOptions,
) -> (usize, Option<tokio::sync::Semaphore>) {
    let parallel = opts.parallel.max(1);
    if opts.small_parallel > parallel && (is_object_store(src) || is_object_store(dst)) {
        (
            opts.small_parallel,
            Some(tokio::sync::Semaphore::new(parallel)),
        )
    } else {
        (parallel, None)
    }
}

/// S3, Azure Blob or GCS: objects that land whole, under prefixes rather than folders.
fn is_object_store(vfs: &dyn Vfs) -> bool {
    let caps = vfs.capabilities();
    caps.atomic_write && !caps.real_directories
}

/// Whether a listing of `src` tells each file's copy all that a `stat` of it would: an
/// object store (S3, Azure, GCS) lists each object's size, time and ETag, so a `stat` per
/// file only repeated the listing (a request each: half the requests of a small
/// download). Elsewhere a listing may show a link that a `stat` follows, so it is asked.
fn listing_says_all(src: &dyn Vfs) -> bool {
    let caps = src.capabilities();
    caps.atomic_write && !caps.real_directories && caps.server_hash.is_some()
}

/// The local file system as a backend rooted at `/`, and `path` made absolute.
fn local_side(path: &str) -> VfsResult<(LocalFs, String)> {
    let p = std::path::Path::new(path);
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| VfsError::io(".", e))?
            .join(p)
    };
    Ok((LocalFs::new("/"), abs.to_string_lossy().into_owned()))
}

/// Upload local files matching `local_glob` into `remote_dir`; with an OTFE key they are
/// encrypted on the way.
pub async fn upload(
    local_glob: &str,
    remote: &dyn Vfs,
    remote_dir: &str,
    opts: &TransferOptions,
    sink: OutcomeSink<'_>,
) -> VfsResult<TransferSummary> {
    let (local, glob) = local_side(local_glob)?;
    let opts = TransferOptions {
        otfe_direction: OtfeDirection::Encrypt,
        ..opts.clone()
    };
    copy_tree(&local, &glob, remote, remote_dir, &opts, sink).await
}

/// Download remote files matching `remote_glob` into `local_dir`; with an OTFE key they
/// are decrypted on the way.
pub async fn download(
    remote: &dyn Vfs,
    remote_glob: &str,
    local_dir: &str,
    opts: &TransferOptions,
    sink: OutcomeSink<'_>,
) -> VfsResult<TransferSummary> {
    let (local, dir) = local_side(local_dir)?;
    let opts = TransferOptions {
        otfe_direction: OtfeDirection::Decrypt,
        ..opts.clone()
    };
    copy_tree(remote, remote_glob, &local, &dir, &opts, sink).await
}

/// Make `dst_dir` hold what `src_dir` holds: copy files that are new, of another size or
/// newer (keeping their times, so the next sync sees them unchanged), create folders, and
/// with `delete_extraneous` delete target files and folders the source does not have
/// (`.ver/` folders and temp files are left alone).
pub async fn sync(
    src: &dyn Vfs,
    src_dir: &str,
    dst: &dyn Vfs,
    dst_dir: &str,
    opts: &TransferOptions,
    delete_extraneous: bool,
    sink: OutcomeSink<'_>,
) -> VfsResult<TransferSummary> {
    let rails = delete_extraneous.then(DeleteRails::default);
    sync_with(src, src_dir, dst, dst_dir, opts, rails.as_ref(), sink).await
}

/// [`sync`], deleting extraneous target files only when `delete` is given, within its
/// rails (`MaxDelete`, `BackupDir`).
pub async fn sync_with(
    src: &dyn Vfs,
    src_dir: &str,
    dst: &dyn Vfs,
    dst_dir: &str,
    opts: &TransferOptions,
    delete: Option<&DeleteRails>,
    sink: OutcomeSink<'_>,
) -> VfsResult<TransferSummary> {
    let opts = TransferOptions {
        adjust_time: true,
        ..opts.clone()
    };
    let src_dir = normalize(src_dir);
    let dst_dir = normalize(dst_dir);
    let root = src.stat(&src_dir).await?;
    if !root.is_dir {
        return Err(VfsError::Other(format!(
            "sync source {}{src_dir} is not a folder",
            src.describe()
        )));
    }
    let dirs = DirCache::new(dst);
    dirs.ensure(&dst_dir).await?;
    let mut summary = TransferSummary::default();
    // Folders first (cheap, and empty ones must exist too), then files in parallel.
    let mut folders = walk(src, &src_dir);
    while let Some(e) = folders.try_next().await? {
        let rel = relative(&src_dir, &e.path);
        if e.is_dir && !is_internal(rel) {
            dirs.ensure(&join(&dst_dir, rel)).await?;
        }
    }
    drop(folders);
    let selection = Selection {
        base: src_dir.clone(),
        matcher: None,
        match_relative: false,
        descend: true,
    };
    let stream = walk(src, &src_dir);
    run_copies(
        src,
        stream,
        &selection,
        dst,
        &dst_dir,
        &dirs,
        &opts,
        Decide::Sync,
        sink,
        &mut summary,
    )
    .await?;
    if summary.failed > 0 && opts.stop_on_error {
        return Ok(summary);
    }
    if let Some(rails) = delete {
        super::rails::delete_extraneous(src, &src_dir, dst, &dst_dir, rails, &mut summary).await?;
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_glob_finds_base_and_pattern() {
        assert_eq!(
            split_glob("/data/in/**/*.xml"),
            GlobSplit {
                base: "/data/in".into(),
                pattern: Some("**/*.xml".into())
            }
        );
        assert_eq!(
            split_glob("/a/*.csv"),
            GlobSplit {
                base: "/a".into(),
                pattern: Some("*.csv".into())
            }
        );
        assert_eq!(
            split_glob("*.csv"),
            GlobSplit {
                base: "/".into(),
                pattern: Some("*.csv".into())
            }
        );
        assert_eq!(
            split_glob("/a/b.txt"),
            GlobSplit {
                base: "/a/b.txt".into(),
                pattern: None
            }
        );
    }

    #[test]
    fn internal_names_are_temp_files_and_version_folders() {
        assert!(is_internal("x/.ver/a.txt.20260101T000000.000Z"));
        assert!(is_internal("a.txt.aft-tmp-0123456789ab"));
        assert!(!is_internal("a.txt"));
        assert_eq!(relative("/", "/a/b"), "a/b");
        assert_eq!(relative("/a", "/a/b/c"), "b/c");
    }
}
