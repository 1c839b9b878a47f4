//! One big file read as several ranges at once, each written at its offset in a local
//! target file: rclone's `--multi-thread-streams`, the AWS CLI's parallel parts. No range
//! waits for the one before it to be handed on, and nothing is held in memory beyond each
//! reader's buffer, so the source's streams all flow at once whatever their speed.
//!
//! The record's hashes are computed behind the writers, on the file: a hasher reads the
//! part of the file whose every byte is written (its whole prefix), as it grows. A copy that
//! fails cuts the file back to that prefix, so that what a later run resumes is whole.

use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::future::try_join_all;
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

use super::{CHUNK, FileJob, Hashes};
use crate::{VfsError, VfsResult};

/// Size of each range: the AWS CLI's part size. Each is one request, taken by the next
/// free stream, so the file's whole prefix (what the hasher may read) trails the fastest
/// stream by a few ranges at most.
const PART: u64 = 8 * 1024 * 1024;

/// Files from this size on are read in ranges when source and target allow it.
pub(super) const PARTS_FROM: u64 = 16 * 1024 * 1024;

/// Bytes the hasher reads from the file at a time.
const HASH_READ: usize = 1024 * 1024;

/// The target file and whether the copy stopped: once it has, no write lands any more
/// (a write handed to a blocking thread just before the stop still runs).
struct Target {
    file: std::fs::File,
    stopped: std::sync::RwLock<bool>,
}

impl Target {
    /// Write `buf` at `at`, unless the copy stopped.
    fn write_at(&self, buf: &[u8], at: u64) -> std::io::Result<()> {
        let stopped = self.stopped.read().unwrap_or_else(|e| e.into_inner());
        if *stopped {
            return Err(std::io::Error::other("the copy stopped"));
        }
        self.file.write_all_at(buf, at)
    }

    /// Stop every write, after those under way, and cut the file to `len` bytes.
    fn stop_at(&self, len: u64) -> std::io::Result<()> {
        let mut stopped = self.stopped.write().unwrap_or_else(|e| e.into_inner());
        *stopped = true;
        self.file.set_len(len)
    }
}

/// Which ranges are written, and how far from byte 0 every byte is.
struct Written {
    done: Vec<bool>,
    /// Ranges `0..whole` are all written.
    whole: usize,
}

impl FileJob<'_> {
    /// Copy the source's `size` bytes into `file` (the new, empty target at `write_path`),
    /// `streams` ranges at a time, each asking for the version `etag`; returns the size and
    /// the hashes of the file, which start from `hashes`.
    pub(super) async fn copy_parts(
        &self,
        file: std::fs::File,
        write_path: &str,
        size: u64,
        streams: usize,
        etag: Option<&str>,
        hashes: Hashes,
    ) -> VfsResult<(u64, Hashes)> {
        let file = Arc::new(Target {
            file,
            stopped: std::sync::RwLock::new(false),
        });
        let parts = size.div_ceil(PART) as usize;
        let next = AtomicU64::new(0);
        let written = std::sync::Mutex::new(Written {
            done: vec![false; parts],
            whole: 0,
        });
        // The length of the file's whole prefix, in bytes, for the hasher.
        let (whole_tx, whole_rx) = watch::channel(0u64);
        let target = || format!("{}{write_path}", self.dst.describe());
        tracing::debug!(
            "{}: {size} bytes in {parts} ranges, {streams} at a time, each written at its offset",
            self.source_label()
        );

        let stream = |_| async {
            loop {
                let part = next.fetch_add(1, Ordering::Relaxed) as usize;
                if part >= parts {
                    return Ok(());
                }
                let start = part as u64 * PART;
                let range = start..(start + PART).min(size);
                self.copy_range(&file, range, etag, &target).await?;
                let mut w = written.lock().unwrap_or_else(|e| e.into_inner());
                w.done[part] = true;
                while w.whole < parts && w.done[w.whole] {
                    w.whole += 1;
                }
                let whole = (w.whole as u64 * PART).min(size);
                drop(w);
                whole_tx.send_replace(whole);
            }
        };
        let copied = try_join_all((0..streams.min(parts)).map(stream));
        let hashed = hash_behind(&file, size, whole_rx, hashes, target);
        // The first error ends both: the writers' own, or the hasher's read of the file.
        match tokio::try_join!(copied, hashed) {
            Ok((_, hashes)) => Ok((size, hashes)),
            Err(e) => {
                // Keep only the whole prefix: a resumed file must hold no gap.
                let whole = *whole_tx.borrow();
                let cut = Arc::clone(&file);
                let _ = tokio::task::spawn_blocking(move || cut.stop_at(whole)).await;
                Err(e)
            }
        }
    }

    /// Read `range` of the source and write it at its offset in `file`.
    async fn copy_range(
        &self,
        file: &Arc<Target>,
        range: Range<u64>,
        etag: Option<&str>,
        target: &dyn Fn() -> String,
    ) -> VfsResult<()> {
        let mut reader = self
            .src
            .read_range(self.src_path, range.clone(), etag)
            .await?;
        let mut buf = vec![0u8; CHUNK];
        let mut at = range.start;
        while at < range.end {
            self.stop_if_halted()?;
            // Fill the buffer before writing it: one write (and one hand-off to a blocking
            // thread) per 256 KiB, not per network read.
            let want = ((range.end - at) as usize).min(CHUNK);
            let mut n = 0;
            while n < want {
                let got = reader
                    .read(&mut buf[n..want])
                    .await
                    .map_err(|e| VfsError::io(self.source_label(), e))?;
                if got == 0 {
                    break;
                }
                n += got;
            }
            if n == 0 {
                return Err(VfsError::io(
                    self.source_label(),
                    std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("the file ended at byte {at}, before its listed size"),
                    ),
                ));
            }
            let file = Arc::clone(file);
            let wrote = tokio::task::spawn_blocking(move || {
                let result = file.write_at(&buf[..n], at);
                (buf, result)
            })
            .await
            .map_err(|e| VfsError::Other(format!("{}: {e}", target())))?;
            buf = wrote.0;
            wrote.1.map_err(|e| VfsError::io(target(), e))?;
            at += n as u64;
            self.landed(n as u64);
        }
        Ok(())
    }
}

/// Hash `file`'s `size` bytes as its whole prefix (`whole`) grows.
async fn hash_behind(
    target_file: &Arc<Target>,
    size: u64,
    mut whole: watch::Receiver<u64>,
    mut hashes: Hashes,
    target: impl Fn() -> String,
) -> VfsResult<Hashes> {
    let mut hashed = 0u64;
    while hashed < size {
        let upto = *whole.borrow_and_update();
        if upto <= hashed {
            // The writers outlive this future (both end together), so the channel stays open.
            let _ = whole.changed().await;
            continue;
        }
        if !hashes.active() {
            hashed = upto;
            continue;
        }
        let file = Arc::clone(target_file);
        let (back, result) = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; HASH_READ];
            let mut at = hashed;
            while at < upto {
                let n = ((upto - at) as usize).min(HASH_READ);
                if let Err(e) = file.file.read_exact_at(&mut buf[..n], at) {
                    return (hashes, Err(e));
                }
                hashes.update(&buf[..n]);
                at += n as u64;
            }
            (hashes, Ok(()))
        })
        .await
        .map_err(|e| VfsError::Other(format!("{}: {e}", target())))?;
        hashes = back;
        result.map_err(|e| VfsError::io(target(), e))?;
        hashed = upto;
    }
    Ok(hashes.finish())
}
