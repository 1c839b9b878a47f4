//! The conformance suite every backend runs against its real server, rclone `fstests`-style.
//!
//! A backend's test file is one line plus a factory:
//!
//! ```ignore
//! aft_vfs::conformance_suite!(async || -> std::sync::Arc<dyn aft_vfs::Vfs> {
//!     // `as` because an async closure body does not coerce to the declared return type.
//!     std::sync::Arc::new(MyBackend::connect(...).await.unwrap()) as std::sync::Arc<dyn aft_vfs::Vfs>
//! });
//! ```
//!
//! The macro generates one `#[tokio::test]` per behaviour below. Each case works in its own
//! random folder `/aft-conformance-<hex>` under the backend's root, so backends (and cases)
//! can share one server, and removes it when it passes. Capability-dependent cases check
//! what [`Vfs::capabilities`] declares: where a capability is missing, the operation must
//! fail with [`VfsError::Unsupported`] — a case never passes silently.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use futures::{StreamExt, TryStreamExt};
use rand::{Rng, RngCore, SeedableRng};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{Entry, HashAlgo, Vfs, VfsError, WriteMode, join, read_all, write_all};

/// Generate one `#[tokio::test]` per conformance case, each calling `$factory().await` for a
/// fresh `Arc<dyn Vfs>`.
#[macro_export]
macro_rules! conformance_suite {
    ($factory:expr) => {
        $crate::conformance_suite!(@cases $factory;
            stat_missing_is_not_found,
            read_missing_is_not_found,
            write_then_read_back,
            stat_file_reports_name_size_and_kind,
            stat_dir_reports_is_dir,
            ranged_read_returns_requested_bytes,
            list_streams_many_entries,
            list_reports_files_and_dirs_with_sizes,
            list_missing_dir_is_not_found_or_empty,
            mkdir_all_nested_and_idempotent,
            rename_file_moves_content,
            rename_replaces_existing_file,
            rename_onto_a_folder_fails_and_keeps_it,
            rename_dir_moves_children,
            remove_file_deletes_and_missing_is_not_found,
            remove_dir_deletes_empty_dir,
            remove_dir_on_non_empty_fails,
            remove_all_deletes_tree,
            overwrite_replaces_content_and_size,
            set_mtime_changes_modification_time,
            resume_write_appends_at_offset,
            zero_byte_file_round_trip,
            names_with_spaces_and_unicode,
            ten_mib_file_round_trip,
            server_checksum_matches_content,
            concurrent_writes_and_reads_from_shared_handle,
        );
    };
    (@cases $factory:expr; $($case:ident),* $(,)?) => {
        async fn __aft_conformance_vfs() -> ::std::sync::Arc<dyn $crate::Vfs> {
            ($factory)().await
        }
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $crate::conformance::$case(__aft_conformance_vfs().await).await;
            }
        )*
    };
}

/// A fresh, empty folder for one case.
async fn scratch(vfs: &dyn Vfs) -> String {
    let dir = format!(
        "/aft-conformance-{:016x}",
        rand::thread_rng().r#gen::<u64>()
    );
    vfs.mkdir_all(&dir)
        .await
        .unwrap_or_else(|e| panic!("{}: mkdir_all({dir}) failed: {e}", vfs.describe()));
    dir
}

/// Remove a case's folder once it passed.
async fn cleanup(vfs: &dyn Vfs, dir: &str) {
    vfs.remove_all(dir)
        .await
        .unwrap_or_else(|e| panic!("{}: remove_all({dir}) failed: {e}", vfs.describe()));
}

async fn put(vfs: &dyn Vfs, path: &str, data: &[u8]) {
    write_all(vfs, path, data)
        .await
        .unwrap_or_else(|e| panic!("{}: write {path} failed: {e}", vfs.describe()));
}

async fn get(vfs: &dyn Vfs, path: &str) -> Vec<u8> {
    read_all(vfs, path)
        .await
        .unwrap_or_else(|e| panic!("{}: read {path} failed: {e}", vfs.describe()))
}

async fn stat_ok(vfs: &dyn Vfs, path: &str) -> Entry {
    vfs.stat(path)
        .await
        .unwrap_or_else(|e| panic!("{}: stat {path} failed: {e}", vfs.describe()))
}

async fn list_all(vfs: &dyn Vfs, dir: &str) -> Vec<Entry> {
    let mut entries: Vec<Entry> = vfs
        .list(dir)
        .await
        .unwrap_or_else(|e| panic!("{}: list {dir} failed: {e}", vfs.describe()))
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("{}: listing {dir} broke: {e}", vfs.describe()));
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    entries
}

fn assert_not_found<T: std::fmt::Debug>(what: &str, result: Result<T, VfsError>) {
    match result {
        Err(VfsError::NotFound(_)) => {}
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}

fn assert_unsupported<T: std::fmt::Debug>(what: &str, result: Result<T, VfsError>) {
    match result {
        Err(VfsError::Unsupported(_)) => {}
        other => {
            panic!("{what}: the capability is not declared, so expected Unsupported, got {other:?}")
        }
    }
}

/// Deterministic pseudo-random bytes, so a failure reproduces.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut data = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut data);
    data
}

/// `stat` of an absent path is `NotFound`.
pub async fn stat_missing_is_not_found(vfs: Arc<dyn Vfs>) {
    let dir = scratch(&*vfs).await;
    assert_not_found("stat missing", vfs.stat(&join(&dir, "nope.txt")).await);
    assert_not_found(
        "stat missing nested",
        vfs.stat(&join(&dir, "no/such/file")).await,
    );
    cleanup(&*vfs, &dir).await;
}

/// `read` of an absent file is `NotFound` (at open or at the first read).
pub async fn read_missing_is_not_found(vfs: Arc<dyn Vfs>) {
    let dir = scratch(&*vfs).await;
    let path = join(&dir, "nope.bin");
    match vfs.read(&path, 0, None).await {
        Err(VfsError::NotFound(_)) => {}
        Err(e) => panic!("read missing: expected NotFound, got {e:?}"),
        Ok(mut r) => {
            let mut buf = Vec::new();
            match r.read_to_end(&mut buf).await {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                other => panic!("read missing: expected NotFound, got {other:?}"),
            }
        }
    }
    cleanup(&*vfs, &dir).await;
}

/// What is written reads back byte for byte.
pub async fn write_then_read_back(vfs: Arc<dyn Vfs>) {
    let dir = scratch(&*vfs).await;
    let path = join(&dir, "hello.txt");
    put(&*vfs, &path, b"hello, aft\n").await;
    assert_eq!(get(&*vfs, &path).await, b"hello, aft\n");
    cleanup(&*vfs, &dir).await;
}

/// `stat` of a file gives its path, name, size, kind and a modification time.
pub async fn stat_file_reports_name_size_and_kind(vfs: Arc<dyn Vfs>) {
    let dir = scratch(&*vfs).await;
    let path = join(&dir, "data.bin");
    put(&*vfs, &path, &pattern(1234, 1)).await;
    let e = stat_ok(&*vfs, &path).await;
    assert_eq!(e.path, path);
    assert_eq!(e.name, "data.bin");
    assert_eq!(e.size, 1234);
    assert!(!e.is_dir, "a file reported as directory: {e:?}");
    let mtime = e
        .mtime
        .unwrap_or_else(|| panic!("no mtime for a fresh file: {e:?}"));
    let age = (Utc::now() - mtime).num_seconds().abs();
    assert!(
        age < 3600,
        "mtime of a fresh file is {age}s away from now: {e:?}"
    );
    cleanup(&*vfs, &dir).await;
}

/// `stat` of a directory says it is one.
pub async fn stat_dir_reports_is_dir(vfs: Arc<dyn Vfs>) {
    let dir = scratch(&*vfs).await;
    let sub = join(&dir, "sub");
    vfs.mkdir_all(&sub).await.expect("mkdir_all");
    put(&*vfs, &join(&sub, "f"), b"x").await;
    let e = stat_ok(&*vfs, &sub).await;
    assert!(e.is_dir, "a directory reported as file: {e:?}");
    assert_eq!(e.name, "sub");
    cleanup(&*vfs, &dir).await;
}

/// A ranged read returns exactly the bytes asked for; without the capability it is
/// `Unsupported`.
pub async fn ranged_read_returns_requested_bytes(vfs: Arc<dyn Vfs>) {
    let dir = scratch(&*vfs).await;
    let path = join(&dir, "range.bin");
    let data = pattern(100_000, 2);
    put(&*vfs, &path, &data).await;
    let read_range = |offset: u64, len: Option<u64>| {
        let vfs = vfs.clone();
        let path = path.clone();
        async move {
            let mut r = vfs.read(&path, offset, len).await?;
            let mut buf = Vec::new();
            r.read_to_end(&mut buf)
                .await
                .map_err(|e| VfsError::io(&path, e))?;
            Ok::<_, VfsError>(buf)
        }
    };
    // Length only, from the start: every backend.
    assert_eq!(
        read_range(0, Some(10)).await.expect("read 0..10"),
        &data[..10]
    );
    if vfs.capabilities().ranged_read {
        assert_eq!(
            read_range(777, Some(5000)).await.expect("read 777+5000"),
            &data[777..5777]
        );
        assert_eq!(
            read_range(99_990, None).await.expect("read tail"),
            &data[99_990..]
        );
        assert_eq!(
            read_range(99_990, Some(1000)).await.expect("read past end"),
            &data[99_990..],
            "a range past the end returns what there is"
        );
    } else {
        assert_unsupported(
            "read at offset",
            vfs.read(&path, 10, None).await.map(|_| ()),
        );
    }
    cleanup(&*vfs, &dir).await;
}

/// A listing of a directory with more entries than any server page is complete.
pub async fn list_streams_many_entries(vfs: Arc<dyn Vfs>) {
    let dir = scratch(&*vfs).await;
    const COUNT: usize = 1030;
    futures::stream::iter(0..COUNT)
        .map(|i| {
            let vfs = vfs.clone();
            let path = join(&dir, &format!("f{i:05}.txt"));
            async move { write_all(&*vfs, &path, i.to_string().as_bytes()).await }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await
        .expect("writing many files");
    let mut stream = vfs.list(&dir).await.expect("list");
    let mut seen = vec![false; COUNT];
    let mut n = 0;
    while let Some(e) = stream.try_next().await.expect("listing broke") {
        let i: usize = e.name[1..6]
            .parse()
            .unwrap_or_else(|_| panic!("unexpected entry {e:?}"));
        assert!(!seen[i], "{} listed twice", e.name);
        seen[i] = true;
        assert_eq!(e.size, i.to_string().len() as u64, "size of {}", e.name);
        n += 1;
    }
    drop(stream);
    assert_eq!(n, COUNT, "listing returned {n} of {COUNT} entries");
    cleanup(&*vfs, &dir).await;
}

/// A listing gives each entry's full path, name, size and kind, and nothing for `.`/`..`.
pub async fn list_reports_files_and_dirs_with_sizes(vfs: Arc<dyn Vfs>) {
    let dir = scratch(&*vfs).await;
    put(&*vfs, &join(&dir, "a.txt"), b"aaa").await;
    put(&*vfs, &join(&dir, "b.bin"), &pattern(5000, 3)).await;
    vfs.mkdir_all(&join(&dir, "sub")).await.expect("mkdir");
    put(&*vfs, &join(&dir, "sub/inner.txt"), b"inner").await;
    let entries = list_all(&*vfs, &dir).await;
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["a.txt", "b.bin", "sub"], "entries: {entries:?}");
    assert_eq!((entries[0].size, entries[0].is_dir), (3, false));
    assert_eq!((entries[1].size, entries[1].is_dir), (5000, false));
    assert!(entries[2].is_dir, "sub is a directory: {:?}", entries[2]);
    assert_eq!(entries[0].path, join(&dir, "a.txt"));
    assert_eq!(entries[2].path, join(&dir, "sub"));
    cleanup(&*vfs, &dir).await;
}

/// Listing a directory that does not exist is `NotFound` where directories are real; object
/// stores may instead return nothing (a prefix with no objects).
pub async fn list_missing_dir_is_not_found_or_empty(vfs: Arc<dyn Vfs>) {
    let dir = scratch(&*vfs).await;
    let missing = join(&dir, "missing");
    let result = match vfs.list(&missing).await {
        Ok(stream) => stream.try_collect::<Vec<_>>().await,
        Err(e) => Err(e),
    };
    match result {
        Err(VfsError::NotFound(_)) => {}
        Ok(v) if v.is_empty() && !vfs.capabilities().real_directories => {}
        other => panic!("list missing dir: expected NotFound, got {other:?}"),
    }
    cleanup(&*vfs, &dir).await;
}

/// `mkdir_all` creates every missing level and is Ok when the directory already exists.
pub async fn mkdir_all_nested_and_idempotent(vfs: Arc<dyn Vfs>) {
    let dir = scratch(&*vfs).await;
    let deep = join(&dir, "a/b/c");
    vfs.mkdir_all(&deep).await.expect("mkdir_all nested");
    vfs.mkdir_all(&deep).await.expect("mkdir_all again is Ok");
    vfs.mkdir_all(&join(&dir, "a/b"))
        .await
        .expect("mkdir_all of an existing parent is Ok");
    put(&*vfs, &join(&deep, "f.txt"), b"deep").await;
    assert!(stat_ok(&*vfs, &join(&dir, "a/b")).await.is_dir);
    let level: Vec<Entry> = list_all(&*vfs, &join(&dir, "a")).await;
    assert_eq!(level.len(), 1, "{level:?}");
    assert!(level[0].is_dir && level[0].name == "b", "{level:?}");
    assert_eq!(get(&*vfs, &join(&deep, "f.txt")).await, b"deep");
    cleanup(&*vfs, &dir).await;
}

/// Renaming a file moves its content; the old name is gone. Without the capability,
/// `Unsupported`.
pub async fn rename_file_moves_content(vfs: Arc<dyn Vfs>) {
    let dir = scratch(&*vfs).await;
    let (from, to) = (join(&dir, "old.txt"), join(&dir, "new.txt"));
    put(&*vfs, &from, b"moving").await;
    if !vfs.capabilities().rename {
        assert_unsupported("rename", vfs.rename(&from, &to).await);
        return cleanup(&*vfs, &dir).await;
    }
    vfs.rename(&from, &to).await.expect("rename");
    assert_not_found("old name after rename", vfs.stat(&from).await);
    assert_eq!(get(&*vfs, &to).await, b"moving");
    cleanup(&*vfs, &dir).await;
}

/// Renaming onto an existing file replaces it (the transfer code's temp names rely on it).
pub async fn rename_replaces_existing_file(vfs: Arc<dyn Vfs>) {
    let dir = scratch(&*vfs).await;
    let (from, to) = (join(&dir, "new.tmp"), join(&dir, "target.txt"));
    put(&*vfs, &from, b"new content").await;
    put(&*vfs, &to, b"old").await;
    if !vfs.capabilities().rename {
        assert_unsupported("rename", vfs.rename(&from, &to).await);
        return cleanup(&*vfs, &dir).await;
    }
    vfs.rename(&from, &to)
        .await
        .expect("rename over an existing file");
    assert_not_found("temp name after rename", vfs.stat(&from).await);
    assert_eq!(get(&*vfs, &to).await, b"new content");
    cleanup(&*vfs, &dir).await;
}

/// Renaming a file onto a folder fails and leaves the folder and what is in it (where
/// directories are real): an upload under `AlwaysOverwrite` renames its temp name onto the
/// target without asking first, and learns of a folder in the way from this failure.
pub async fn rename_onto_a_folder_fails_and_keeps_it(vfs: Arc<dyn Vfs>) {
    let caps = vfs.capabilities();
    if !caps.rename || !caps.real_directories {
        return;
    }
    let dir = scratch(&*vfs).await;
    let (from, folder) = (join(&dir, "new.tmp"), join(&dir, "taken"));
    put(&*vfs, &from, b"new content").await;
    vfs.mkdir_all(&folder).await.expect("mkdir");
    put(&*vfs, &join(&folder, "inside.txt"), b"kept").await;
    let renamed = vfs.rename(&from, &folder).await;
    assert!(
        renamed.is_err(),
        "a file renamed onto a folder: {renamed:?}"
    );
    assert!(
        stat_ok(&*vfs, &folder).await.is_dir,
        "the folder is still one"
    );
    assert_eq!(get(&*vfs, &join(&folder, "inside.txt")).await, b"kept");
    assert_eq!(get(&*vfs, &from).await, b"new content");
    cleanup(&*vfs, &dir).await;
}

/// Renaming a directory moves what is inside it (where directories are real).
pub async fn rename_dir_moves_children(vfs: Arc<dyn Vfs>) {
    let dir = scratch(&*vfs).await;
    let (from, to) = (join(&dir, "d1"), join(&dir, "d2"));
    vfs.mkdir_all(&from).await.expect("mkdir");
    put(&*vfs, &join(&from, "child.txt"), b"child").await;
    let caps = vfs.capabilities();
    if !caps.rename {
        assert_unsupported("rename dir", vfs.rename(&from, &to).await);
        return cleanup(&*vfs, &dir).await;
    }
    if caps.real_directories {
        vfs.rename(&from, &to).await.expect("rename dir");
        assert_not_found("old dir after rename", vfs.stat(&from).await);
        assert_eq!(get(&*vfs, &join(&to, "child.txt")).await, b"child");
    }
    cleanup(&*vfs, &dir).await;
}

/// `remove_file` deletes a file; removing it again is `NotFound`.
pub async fn remove_file_deletes_and_missing_is_not_found(vfs: Arc<dyn Vfs>) {
    let dir = scratch(&*vfs).await;
    let path = join(&dir, "gone.txt");
    put(&*vfs, &path, b"bye").await;
    vfs.remove_file(&path).await.expect("remove_file");
    assert_not_found("stat after remove", vfs.stat(&path).await);
    assert_not_found("remove missing", vfs.remove_file(&path).await);
    cleanup(&*vfs, &dir).await;
}

/// `remove_dir` deletes an empty directory.
pub async fn remove_dir_deletes_empty_dir(vfs: Arc<dyn Vfs>) {
    let dir = scratch(&*vfs).await;
    let sub = join(&dir, "empty");
    vfs.mkdir_all(&sub).await.expect("mkdir");
    vfs.remove_dir(&sub).await.expect("remove_dir");
    assert_not_found("stat removed dir", vfs.stat(&sub).await);
    cleanup(&*vfs, &dir).await;
}

/// `remove_dir` refuses a directory that still has a file in it, and the file survives.
pub async fn remove_dir_on_non_empty_fails(vfs: Arc<dyn Vfs>) {
    let dir = scratch(&*vfs).await;
    let sub = join(&dir, "full");
    vfs.mkdir_all(&sub).await.expect("mkdir");
    put(&*vfs, &join(&sub, "keep.txt"), b"keep").await;
    let result = vfs.remove_dir(&sub).await;
    assert!(
        result.is_err(),
        "remove_dir of a non-empty directory succeeded"
    );
    assert_eq!(get(&*vfs, &join(&sub, "keep.txt")).await, b"keep");
    cleanup(&*vfs, &dir).await;
}

/// `remove_all` deletes a whole tree and is Ok on a missing path.
pub async fn remove_all_deletes_tree(vfs: Arc<dyn Vfs>) {
    let dir = scratch(&*vfs).await;
    let tree = join(&dir, "tree");
    vfs.mkdir_all(&join(&tree, "x/y")).await.expect("mkdir");
    put(&*vfs, &join(&tree, "top.txt"), b"1").await;
    put(&*vfs, &join(&tree, "x/mid.txt"), b"2").await;
    put(&*vfs, &join(&tree, "x/y/low.txt"), b"3").await;
    vfs.remove_all(&tree).await.expect("remove_all");
    assert_not_found("stat removed tree", vfs.stat(&tree).await);
    assert_not_found(
        "stat removed leaf",
        vfs.stat(&join(&tree, "x/y/low.txt")).await,
    );
    vfs.remove_all(&tree)
        .await
        .expect("remove_all of a missing path is Ok");
    cleanup(&*vfs, &dir).await;
}

/// Writing over a file replaces it whole: a shorter write leaves no tail of the old one.
pub async fn overwrite_replaces_content_and_size(vfs: Arc<dyn Vfs>) {
    let dir = scratch(&*vfs).await;
    let path = join(&dir, "over.txt");
    put(&*vfs, &path, b"a long first version").await;
    put(&*vfs, &path, b"short").await;
    assert_eq!(get(&*vfs, &path).await, b"short");
    assert_eq!(stat_ok(&*vfs, &path).await.size, 5);
    cleanup(&*vfs, &dir).await;
}

/// `set_mtime` changes what `stat` and `list` report (to the second); without the
/// capability it is `Unsupported`.
pub async fn set_mtime_changes_modification_time(vfs: Arc<dyn Vfs>) {
    let dir = scratch(&*vfs).await;
    let path = join(&dir, "old.txt");
    put(&*vfs, &path, b"from 2001").await;
    let when = Utc.with_ymd_and_hms(2001, 2, 3, 4, 5, 6).unwrap();
    if !vfs.capabilities().set_mtime {
        assert_unsupported("set_mtime", vfs.set_mtime(&path, when).await);
        return cleanup(&*vfs, &dir).await;
    }
    vfs.set_mtime(&path, when).await.expect("set_mtime");
    assert_eq!(stat_ok(&*vfs, &path).await.mtime, Some(when));
    let listed = list_all(&*vfs, &dir).await;
    assert_eq!(listed[0].mtime, Some(when), "{listed:?}");
    cleanup(&*vfs, &dir).await;
}

/// `WriteMode::ResumeAt(n)` keeps the first `n` bytes and continues from there; without
/// the capability it is `Unsupported`.
pub async fn resume_write_appends_at_offset(vfs: Arc<dyn Vfs>) {
    let dir = scratch(&*vfs).await;
    let path = join(&dir, "partial.bin");
    let data = pattern(300_000, 4);
    put(&*vfs, &path, &data[..123_456]).await;
    if !vfs.capabilities().resume_upload {
        assert_unsupported(
            "resume",
            vfs.write(&path, WriteMode::ResumeAt(123_456))
                .await
                .map(|_| ()),
        );
        return cleanup(&*vfs, &dir).await;
    }
    let mut w = vfs
        .write(&path, WriteMode::ResumeAt(123_456))
        .await
        .expect("resume write");
    w.write_all(&data[123_456..]).await.expect("write rest");
    w.shutdown().await.expect("finish resumed write");
    assert_eq!(get(&*vfs, &path).await, data, "resumed file differs");
    cleanup(&*vfs, &dir).await;
}

/// An empty file can be written, stated, listed and read.
pub async fn zero_byte_file_round_trip(vfs: Arc<dyn Vfs>) {
    let dir = scratch(&*vfs).await;
    let path = join(&dir, "empty.dat");
    put(&*vfs, &path, b"").await;
    let e = stat_ok(&*vfs, &path).await;
    assert_eq!((e.size, e.is_dir), (0, false));
    assert!(get(&*vfs, &path).await.is_empty());
    assert_eq!(list_all(&*vfs, &dir).await.len(), 1);
    cleanup(&*vfs, &dir).await;
}

/// Names with spaces, accents and CJK survive write, list, stat, rename and read.
pub async fn names_with_spaces_and_unicode(vfs: Arc<dyn Vfs>) {
    let dir = scratch(&*vfs).await;
    let sub = join(&dir, "dir with space é");
    vfs.mkdir_all(&sub).await.expect("mkdir unicode");
    let name = "résumé 日本語 (1) #&+.txt";
    let path = join(&sub, name);
    put(&*vfs, &path, "ünïcødé".as_bytes()).await;
    let listed = list_all(&*vfs, &sub).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, name);
    assert_eq!(listed[0].path, path);
    assert_eq!(stat_ok(&*vfs, &path).await.name, name);
    assert_eq!(get(&*vfs, &path).await, "ünïcødé".as_bytes());
    if vfs.capabilities().rename {
        let to = join(&sub, "ñ 2.txt");
        vfs.rename(&path, &to).await.expect("rename unicode");
        assert_eq!(get(&*vfs, &to).await, "ünïcødé".as_bytes());
    }
    cleanup(&*vfs, &dir).await;
}

/// A 10 MiB file makes the round trip intact.
pub async fn ten_mib_file_round_trip(vfs: Arc<dyn Vfs>) {
    let dir = scratch(&*vfs).await;
    let path = join(&dir, "big.bin");
    let data = pattern(10 * 1024 * 1024 + 17, 5);
    put(&*vfs, &path, &data).await;
    assert_eq!(stat_ok(&*vfs, &path).await.size, data.len() as u64);
    let back = get(&*vfs, &path).await;
    assert_eq!(back.len(), data.len());
    assert!(
        Sha256::digest(&back) == Sha256::digest(&data),
        "10 MiB file changed on the round trip"
    );
    cleanup(&*vfs, &dir).await;
}

/// Where the backend declares a server-side hash, it matches the content.
pub async fn server_checksum_matches_content(vfs: Arc<dyn Vfs>) {
    let dir = scratch(&*vfs).await;
    let path = join(&dir, "sum.bin");
    let data = pattern(70_000, 6);
    put(&*vfs, &path, &data).await;
    match vfs.capabilities().server_hash {
        Some(algo) => {
            let expected = match algo {
                HashAlgo::Sha256 => hex::encode(Sha256::digest(&data)),
                HashAlgo::Md5 => {
                    use md5::Digest as _;
                    hex::encode(md5::Md5::digest(&data))
                }
            };
            let got = vfs.checksum(&path, algo).await.expect("checksum");
            assert_eq!(got.map(|s| s.to_lowercase()), Some(expected));
        }
        None => {
            let got = vfs
                .checksum(&path, HashAlgo::Sha256)
                .await
                .expect("checksum");
            assert_eq!(got, None, "checksum without a declared server_hash");
        }
    }
    cleanup(&*vfs, &dir).await;
}

/// One shared handle serves several tasks at once (the engine shares `Arc<dyn Vfs>`).
pub async fn concurrent_writes_and_reads_from_shared_handle(vfs: Arc<dyn Vfs>) {
    let dir = scratch(&*vfs).await;
    let tasks: Vec<_> = (0..8u64)
        .map(|i| {
            let vfs = vfs.clone();
            let path = join(&dir, &format!("c{i}.bin"));
            tokio::spawn(async move {
                let data = pattern(200_000 + i as usize, 100 + i);
                write_all(&*vfs, &path, &data)
                    .await
                    .expect("concurrent write");
                let back = read_all(&*vfs, &path).await.expect("concurrent read");
                assert!(back == data, "{path} differs after concurrent round trip");
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task panicked");
    }
    assert_eq!(list_all(&*vfs, &dir).await.len(), 8);
    cleanup(&*vfs, &dir).await;
}
