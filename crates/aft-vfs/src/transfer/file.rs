//! One file from one backend to another: policy, temp name, resume, verify, versions,
//! retries with exponential backoff.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod parts;

use super::versions::keep_version;
use super::{
    Notes, OtfeDirection, Outcome, OutcomeSink, RecordDigest, RecordHash, TransferOptions,
    TransferOutcome, TransferPolicy,
};
use crate::types::is_md5_hex;
use crate::{
    Entry, HashAlgo, Vfs, VfsError, VfsResult, WriteMode, file_name, join, normalize, parent,
};

/// Marker in temp names: `report.csv.aft-tmp-3f9a0c12d4e5`. Listings by the transfer code
/// skip names containing it.
pub(crate) const TEMP_MARKER: &str = ".aft-tmp-";

/// Bytes moved per read/write call; backends pipeline below this.
const CHUNK: usize = 256 * 1024;

/// Longest wait between two retries.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How to decide whether an existing target is replaced.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Decide {
    /// One of AFT!'s policies.
    Policy(TransferPolicy),
    /// `sync`: replace when the size differs or the source is newer.
    Sync,
}

/// Copy `src_path` on `src` to `dst_path` on `dst` with every option of `opts`, report the
/// outcome to `sink` and return it. Never panics on I/O: failures are in the outcome.
pub async fn copy_file(
    src: &dyn Vfs,
    src_path: &str,
    dst: &dyn Vfs,
    dst_path: &str,
    opts: &TransferOptions,
    sink: OutcomeSink<'_>,
) -> TransferOutcome {
    let outcome = copy_file_with(
        src,
        src_path,
        dst,
        dst_path,
        opts,
        Decide::Policy(opts.policy),
    )
    .await;
    sink(&outcome);
    outcome
}

pub(crate) async fn copy_file_with(
    src: &dyn Vfs,
    src_path: &str,
    dst: &dyn Vfs,
    dst_path: &str,
    opts: &TransferOptions,
    decide: Decide,
) -> TransferOutcome {
    copy_listed_file(src, src_path, None, dst, dst_path, opts, decide).await
}

/// [`copy_file_with`] for a source file whose entry a listing gave moments ago: the first
/// attempt takes it for the source's `stat` (a retry asks the source again).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn copy_listed_file(
    src: &dyn Vfs,
    src_path: &str,
    listed: Option<Entry>,
    dst: &dyn Vfs,
    dst_path: &str,
    opts: &TransferOptions,
    decide: Decide,
) -> TransferOutcome {
    let start = Instant::now();
    let mut attempts = 0u32;
    let mut delay = opts.retry_backoff;
    let job = FileJob {
        src,
        src_path,
        dst,
        dst_path,
        opts,
        decide,
        listed: Mutex::new(listed),
        written: AtomicU64::new(0),
        temp: Mutex::new(None),
        notes: Notes::default(),
    };
    let result = loop {
        attempts += 1;
        match job.attempt().await {
            Err(e) if attempts <= opts.retries && retryable(&e) && !opts.cancelled() => {
                tracing::info!(source = %job.source_label(), attempt = attempts, error = %e, "transfer failed, retrying in {delay:?}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_BACKOFF);
            }
            other => break other,
        }
    };
    for line in dst.take_notes() {
        job.note(line);
    }
    let (bytes, hash, outcome) = match result {
        Ok(Done::Copied { bytes, hash }) => (bytes, hash, Outcome::Ok),
        Ok(Done::Skipped(why)) => (0, None, Outcome::Skipped(why)),
        Err(e) => {
            job.settle_temp(&e).await;
            let msg = if attempts > 1 {
                format!("{e} (after {attempts} attempts)")
            } else {
                e.to_string()
            };
            (
                job.written.load(Ordering::Relaxed),
                None,
                Outcome::Failed(msg),
            )
        }
    };
    TransferOutcome {
        source: job.source_label(),
        target: job.target_label(),
        bytes,
        hash,
        millis: start.elapsed().as_millis() as u64,
        attempts,
        outcome,
        notes: job.notes.take(),
    }
}

/// Errors worth another attempt: broken connections, and a verification that failed
/// (the bytes may have been damaged on the way).
fn retryable(e: &VfsError) -> bool {
    e.is_transient() || matches!(e, VfsError::Verify { .. })
}

enum Done {
    Copied {
        bytes: u64,
        hash: Option<RecordDigest>,
    },
    Skipped(String),
}

struct FileJob<'a> {
    src: &'a dyn Vfs,
    src_path: &'a str,
    dst: &'a dyn Vfs,
    dst_path: &'a str,
    opts: &'a TransferOptions,
    decide: Decide,
    /// The source's entry from the listing that selected it, for the first attempt.
    listed: Mutex<Option<Entry>>,
    /// Bytes written to the target by every attempt, for the record of a failed file.
    written: AtomicU64,
    /// The temp file an attempt wrote to, and whether a later run can resume it.
    temp: Mutex<Option<(String, bool)>>,
    /// Lines for the job log (resumes, restarts from zero, clean-ups).
    notes: Notes,
}

/// The temp name beside `dst_path` for one version of the source: the same source file
/// (path, size, time) always gets the same name, so a later run can resume it. The
/// server's address is left out: a run that reaches the same server by another name or
/// IP finds the temp file the last one left. (A different server's file with the same
/// path, size and time would share the name; resume compares the kept part with the
/// source byte for byte and starts again from zero on a mismatch.)
pub(crate) fn temp_path(dst_path: &str, src_path: &str, src: &Entry) -> String {
    let identity = format!(
        "{}\n{}\n{:?}",
        normalize(src_path),
        src.size,
        src.mtime.map(|t| t.timestamp_millis())
    );
    let tag = hex::encode(&Sha256::digest(identity.as_bytes())[..6]);
    join(
        &parent(dst_path),
        &format!("{}{TEMP_MARKER}{tag}", file_name(dst_path)),
    )
}

impl FileJob<'_> {
    fn source_label(&self) -> String {
        format!("{}{}", self.src.describe(), self.src_path)
    }

    /// The error for a target that is a folder.
    fn folder_in_the_way(&self) -> VfsError {
        VfsError::file_onto_folder(&self.target_label())
    }

    fn target_label(&self) -> String {
        format!("{}{}", self.dst.describe(), self.dst_path)
    }

    fn note(&self, line: String) {
        self.notes.push(line);
    }

    /// The temp file of a file that failed for good: kept for the next run when the
    /// connection was lost and the temp can be resumed (resuming is what it is for), removed
    /// otherwise — a full disk, a refusal, a halt — so that it holds no space. A crashed run
    /// never gets here; its temp file is resumed by the next run, or swept when stale.
    async fn settle_temp(&self, error: &VfsError) {
        let temp = self.temp.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some((temp, resumable)) = temp else {
            return;
        };
        if resumable && error.is_transient() && !self.opts.cancelled() {
            if let Ok(kept) = self.dst.stat(&temp).await {
                let swept = self.opts.temp_max_age.map_or(String::new(), |a| {
                    format!("; unused, it is swept after {} h", a.as_secs() / 3600)
                });
                self.note(format!(
                    "kept the temp file {}{temp} ({} bytes) for the next run to resume{swept}",
                    self.dst.describe(),
                    kept.size,
                ));
            }
            return;
        }
        match self.dst.remove_file(&temp).await {
            Ok(()) | Err(VfsError::NotFound(_)) => {}
            Err(e) => self.note(format!(
                "the temp file {}{temp} could not be removed ({e}); the next run resumes or sweeps it",
                self.dst.describe()
            )),
        }
    }

    /// Delete temp files in `dir` (other than `ours`) untouched for longer than `max_age`:
    /// left by a run that crashed and never came back, or by a source that changed since.
    /// Once per folder per transfer; failures only cost the disk space they would free.
    async fn sweep_stale_temps(&self, dir: &str, ours: &str, max_age: Duration) {
        let Ok(entries) = self.dst.list(dir).await else {
            return;
        };
        let Ok(entries) = futures::TryStreamExt::try_collect::<Vec<Entry>>(entries).await else {
            return;
        };
        let now = chrono::Utc::now();
        for e in entries {
            let stale = e
                .mtime
                .is_some_and(|t| (now - t).to_std().is_ok_and(|age| age > max_age));
            if e.is_dir || !e.name.contains(TEMP_MARKER) || e.path == ours || !stale {
                continue;
            }
            if self.dst.remove_file(&e.path).await.is_ok() {
                self.note(format!(
                    "removed the stale temp file {}{} (untouched for more than {} h)",
                    self.dst.describe(),
                    e.path,
                    max_age.as_secs() / 3600
                ));
            }
        }
    }

    /// Whether an existing target is kept; the reason when it is.
    fn skip_reason(
        &self,
        src: &Entry,
        existing: &Entry,
        expected_len: Option<u64>,
    ) -> Option<String> {
        let src_len = expected_len.unwrap_or(src.size);
        let newer = match (src.mtime, existing.mtime) {
            // Whole seconds: many servers keep no more.
            (Some(s), Some(d)) => s.timestamp() > d.timestamp(),
            _ => true,
        };
        match self.decide {
            Decide::Policy(TransferPolicy::AlwaysOverwrite) => None,
            Decide::Policy(TransferPolicy::NeverOverwrite) => {
                Some("target exists (policy NeverOverwrite)".into())
            }
            Decide::Policy(TransferPolicy::OverwriteIfDiffSize) => (src_len == existing.size)
                .then(|| "target has the same size (policy OverwriteIfDiffSize)".into()),
            Decide::Policy(TransferPolicy::OverwriteIfNewer) => {
                (!newer).then(|| "target is not older (policy OverwriteIfNewer)".into())
            }
            Decide::Sync => (src_len == existing.size && !newer)
                .then(|| "unchanged (same size, not newer)".into()),
        }
    }

    async fn attempt(&self) -> VfsResult<Done> {
        let (src, dst, opts) = (self.src, self.dst, self.opts);
        let listed = self.listed.lock().unwrap_or_else(|e| e.into_inner()).take();
        let src_entry = match listed {
            Some(entry) => entry,
            None => src.stat(self.src_path).await?,
        };
        if src_entry.is_dir {
            return Err(VfsError::Other(format!(
                "{} is a directory, not a file",
                self.source_label()
            )));
        }
        let expected_len = match (opts.otfe_key, opts.otfe_direction) {
            (None, _) => Some(src_entry.size),
            (Some(_), OtfeDirection::Encrypt) => Some(crate::otfe::encrypted_len(src_entry.size)),
            (Some(_), OtfeDirection::Decrypt) => None,
        };
        let caps = dst.capabilities();
        let use_temp = opts.uses_temp_name(dst);
        // AlwaysOverwrite needs nothing from the target: no policy to weigh, no old version
        // to keep. On an object store (S3, Azure, GCS) an object cannot clash with a
        // "directory" (a prefix); where folders are real, the temp name's rename replaces a
        // file and fails on a folder (the conformance suite's
        // `rename_onto_a_folder_fails_and_keeps_it`), which is named then. Not asking saves
        // a request per file (a HEAD and a listing on an object store, a stat on SFTP), much
        // of the cost of many small uploads.
        let blind = matches!(self.decide, Decide::Policy(TransferPolicy::AlwaysOverwrite))
            && !opts.versioned
            && if caps.real_directories {
                use_temp && caps.rename
            } else {
                caps.atomic_write
            };
        let existing = if blind {
            None
        } else {
            match dst.stat(self.dst_path).await {
                Ok(e) => Some(e),
                Err(VfsError::NotFound(_)) => None,
                Err(e) => return Err(e),
            }
        };
        if let Some(existing) = &existing {
            if existing.is_dir {
                return Err(self.folder_in_the_way());
            }
            if let Some(why) = self.skip_reason(&src_entry, existing, expected_len) {
                return Ok(Done::Skipped(why));
            }
        }

        if existing.is_none() && caps.real_directories {
            // A single-file copy (`UploadFile`) may target a folder not made yet.
            dst.mkdir_all(&parent(self.dst_path)).await?;
        }
        let write_path = if use_temp {
            temp_path(self.dst_path, self.src_path, &src_entry)
        } else {
            self.dst_path.to_string()
        };
        let resumable = use_temp
            && opts.resume
            && opts.otfe_key.is_none()
            && dst.capabilities().resume_upload
            && dst.capabilities().ranged_read
            && src.capabilities().ranged_read;
        if use_temp && let Some(max_age) = opts.temp_max_age {
            let dir = parent(self.dst_path);
            if opts.swept.first_visit(&format!("{}{dir}", dst.describe())) {
                self.sweep_stale_temps(&dir, &write_path, max_age).await;
            }
        }
        let md5 = self.wants_md5(&src_entry);
        let mut offset = 0;
        let mut kept_hashes = None;
        if resumable
            && let Ok(partial) = dst.stat(&write_path).await
            && !partial.is_dir
            && partial.size > 0
            && partial.size <= src_entry.size
        {
            let temp = format!("{}{write_path}", dst.describe());
            match self.check_kept(&write_path, partial.size, md5).await {
                Ok(hashes) => {
                    offset = partial.size;
                    kept_hashes = Some(hashes);
                    self.note(format!(
                        "resuming {temp} at byte {offset} of {}: the kept bytes match the source",
                        src_entry.size
                    ));
                }
                Err(why) => self.note(format!(
                    "the kept temp file {temp} ({} bytes) {why}; starting again from byte 0",
                    partial.size
                )),
            }
        }
        if use_temp {
            *self.temp.lock().unwrap_or_else(|e| e.into_inner()) =
                Some((write_path.clone(), resumable));
        }
        if !use_temp && existing.is_some() && opts.versioned {
            keep_version(dst, self.dst_path, opts.versions_to_keep).await?;
        }

        let copied = self
            .copy_bytes(&write_path, offset, kept_hashes, &src_entry, md5)
            .await;
        let (total, hashes) = match copied {
            Ok(v) => v,
            Err(e) => {
                // Keep a temp only when the next attempt can resume it; never leave a
                // partial final file.
                if !resumable {
                    let _ = dst.remove_file(&write_path).await;
                }
                return Err(e);
            }
        };
        if let Err(e) = self.verify(&write_path, total, expected_len, &hashes).await {
            let _ = dst.remove_file(&write_path).await;
            return Err(e);
        }
        if use_temp {
            if existing.is_some() && opts.versioned {
                keep_version(dst, self.dst_path, opts.versions_to_keep).await?;
            }
            if let Err(e) = dst.rename(&write_path, self.dst_path).await {
                let _ = dst.remove_file(&write_path).await;
                // Not asked before, a folder in the way shows only now (a backend that
                // checked for one itself, WebDAV, has said so already).
                if blind
                    && !e.is_file_onto_folder()
                    && dst.stat(self.dst_path).await.is_ok_and(|t| t.is_dir)
                {
                    return Err(self.folder_in_the_way());
                }
                return Err(e);
            }
            self.temp.lock().unwrap_or_else(|e| e.into_inner()).take();
        }
        if opts.adjust_time
            && let Some(mtime) = src_entry.mtime
        {
            match dst.set_mtime(self.dst_path, mtime).await {
                Ok(()) => {}
                Err(VfsError::Unsupported(_)) => {
                    tracing::debug!(target = %self.target_label(), "backend cannot set times; AdjustTime ignored")
                }
                Err(e) => return Err(e),
            }
        }
        if opts.delete_source {
            src.remove_file(self.src_path).await?;
        }
        Ok(Done::Copied {
            bytes: total,
            hash: hashes.record,
        })
    }

    /// Compare the kept first `kept` bytes of the temp file `write_path` with the source's,
    /// byte for byte, and hash them: what is resumed must continue the very bytes of the
    /// source, and the record's SHA-256 must cover the whole file. Costs reading the kept
    /// part at both ends (not writing it again). `md5`: whether the MD5 is computed too
    /// ([`FileJob::wants_md5`]). `Err` says why it cannot be kept.
    async fn check_kept(&self, write_path: &str, kept: u64, md5: bool) -> Result<Hashes, String> {
        let (theirs, ours) = tokio::join!(
            self.src.read(self.src_path, 0, Some(kept)),
            self.dst.read(write_path, 0, Some(kept))
        );
        let mut theirs = theirs.map_err(|e| format!("could not be compared: {e}"))?;
        let mut ours = ours.map_err(|e| format!("could not be read back: {e}"))?;
        let mut hashes = Hashes::new(self.opts.verify_hash, self.opts.record_hash, md5);
        let (mut a, mut b) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
        let mut pos = 0u64;
        while pos < kept {
            let n = (kept - pos).min(CHUNK as u64) as usize;
            let (ra, rb) =
                tokio::join!(theirs.read_exact(&mut a[..n]), ours.read_exact(&mut b[..n]));
            ra.map_err(|e| format!("could not be compared: reading the source: {e}"))?;
            rb.map_err(|e| format!("could not be read back: {e}"))?;
            if a[..n] != b[..n] {
                let at = a[..n].iter().zip(&b[..n]).position(|(x, y)| x != y);
                return Err(format!(
                    "differs from the source at byte {}",
                    pos + at.unwrap_or(0) as u64
                ));
            }
            hashes.update(&a[..n]);
            pos += n as u64;
        }
        Ok(hashes)
    }

    /// Stream the source `src_entry` into `write_path` from `offset` (resuming a kept part
    /// whose bytes `kept` hashed, or from byte 0 when `kept` is `None`); returns the
    /// target's total size and the hashes of the whole file (the MD5 too when `md5`).
    async fn copy_bytes(
        &self,
        write_path: &str,
        offset: u64,
        kept: Option<Hashes>,
        src_entry: &Entry,
        md5: bool,
    ) -> VfsResult<(u64, Hashes)> {
        let (src, dst, opts) = (self.src, self.dst, self.opts);
        let src_len = src_entry.size;
        let (mode, offset, hashes) = match kept {
            Some(hashes) if offset > 0 => (WriteMode::ResumeAt(offset), offset, hashes),
            _ => (
                WriteMode::Create,
                0,
                Hashes::new(opts.verify_hash, opts.record_hash, md5),
            ),
        };
        // A big file from a source that serves several ranges at once, to a local file:
        // the ranges are written at their offsets as they come (`parts`).
        let streams = src.read_streams();
        if offset == 0
            && streams > 1
            && src_len >= parts::PARTS_FROM
            && opts.otfe_key.is_none()
            && src.capabilities().ranged_read
            && let Some(file) = dst.create_positional(write_path).await?
        {
            return self
                .copy_parts(
                    file,
                    write_path,
                    src_len,
                    streams,
                    src_entry.etag.as_deref(),
                    hashes,
                )
                .await;
        }
        let mut reader = src.read(self.src_path, offset, None).await?;
        if let Some(key) = &opts.otfe_key {
            reader = match opts.otfe_direction {
                OtfeDirection::Encrypt => crate::otfe::encrypt_reader(reader, key),
                OtfeDirection::Decrypt => crate::otfe::decrypt_reader(reader, key),
            };
        }
        let mut writer = dst.write(write_path, mode).await?;
        let mut hashes = StreamHasher::new(hashes, src_len);
        let mut written = 0u64;
        let target = || format!("{}{write_path}", dst.describe());
        loop {
            self.stop_if_halted()?;
            let mut buf = hashes.buffer().await;
            let n = reader
                .read(&mut buf)
                .await
                .map_err(|e| VfsError::io(self.source_label(), e))?;
            if n == 0 {
                break;
            }
            writer
                .write_all(&buf[..n])
                .await
                .map_err(|e| VfsError::io(target(), e))?;
            // After the write: the hash thread works on this chunk while the next one is
            // read, and takes the buffer itself rather than a copy.
            hashes.update(buf, n).await;
            written += n as u64;
            self.landed(n as u64);
        }
        writer
            .shutdown()
            .await
            .map_err(|e| VfsError::io(target(), e))?;
        Ok((offset + written, hashes.finish().await))
    }

    /// An error once the job is halted, so that a copy stops between two chunks.
    fn stop_if_halted(&self) -> VfsResult<()> {
        if self.opts.cancelled() {
            return Err(VfsError::Other(format!(
                "{}: halted before the end",
                self.source_label()
            )));
        }
        Ok(())
    }

    /// Count `n` bytes written to the target: for the record and the progress hook.
    fn landed(&self, n: u64) {
        self.written.fetch_add(n, Ordering::Relaxed);
        if let Some(progress) = &self.opts.progress {
            progress(n);
        }
    }

    /// Whether the copy of the source `src` computes an MD5: only where an end's server
    /// has one to compare it with. An object whose ETag is an S3 multipart one
    /// (`<hex>-<parts>`, the MD5 of its parts' MD5s) names no MD5 of its content, so none is
    /// computed for it as a source (about 2.3 s of CPU per GiB, never compared): its copy
    /// is checked by size, and the record's SHA-256 is computed as always.
    fn wants_md5(&self, src: &Entry) -> bool {
        self.opts.verify_hash
            && (self.dst.capabilities().server_hash == Some(HashAlgo::Md5)
                || (self.opts.otfe_key.is_none()
                    && self.src.capabilities().server_hash == Some(HashAlgo::Md5)
                    && !src.etag.as_deref().is_some_and(is_multipart_etag)))
    }

    /// Size always; a server-side hash where an end offers one and we hashed the stream.
    async fn verify(
        &self,
        write_path: &str,
        total: u64,
        expected: Option<u64>,
        hashes: &Hashes,
    ) -> VfsResult<()> {
        let target = format!("{}{write_path}", self.dst.describe());
        if let Some(expected) = expected
            && expected != total
        {
            return Err(VfsError::Verify {
                path: target,
                message: format!(
                    "wrote {total} bytes but the source is {expected} bytes (did it change during the transfer?)"
                ),
            });
        }
        // The target's hash of the whole file, where it has one: equal to ours, it proves
        // the size as well, and the `stat` below (a request of its own) is not needed.
        let mut hash_matched = false;
        if let Some(algo) = self.dst.capabilities().server_hash
            && let Some(ours) = hashes.get(algo)
            && let Some(theirs) = self.dst.checksum(write_path, algo).await?
        {
            if !theirs.eq_ignore_ascii_case(ours) {
                return Err(VfsError::Verify {
                    path: target,
                    message: format!("{algo:?} is {theirs} on the server but {ours} was sent"),
                });
            }
            hash_matched = true;
        }
        if !hash_matched {
            let landed = self.dst.stat(write_path).await?;
            if landed.size != total {
                return Err(VfsError::Verify {
                    path: target,
                    message: format!(
                        "the server reports {} bytes after {total} were written",
                        landed.size
                    ),
                });
            }
        }
        if self.opts.otfe_key.is_none()
            && let Some(algo) = self.src.capabilities().server_hash
            && let Some(ours) = hashes.get(algo)
            && let Some(theirs) = self.src.checksum(self.src_path, algo).await?
            && !theirs.eq_ignore_ascii_case(ours)
        {
            return Err(VfsError::Verify {
                path: self.source_label(),
                message: format!("{algo:?} is {theirs} at the source but {ours} was read"),
            });
        }
        Ok(())
    }
}

/// Whether `etag` (quotes trimmed) is an S3 multipart one: 32 hex digits, `-`, the number
/// of parts.
fn is_multipart_etag(etag: &str) -> bool {
    let etag = etag.trim_matches('"');
    etag.split_once('-').is_some_and(|(md5, parts)| {
        is_md5_hex(md5) && !parts.is_empty() && parts.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Files from this size on are hashed on a thread of their own, beside the copy: hashing
/// on the copy loop cost big downloads about a third of their speed.
const BACKGROUND_HASH_FROM: u64 = 4 * 1024 * 1024;

/// Copy buffers of a file hashed on its own thread: one being filled by the copy loop, the
/// others queued for or being hashed. They go to the thread and come back, so the data is
/// neither copied for the hash nor allocated again (768 KiB, where a queue of copies held
/// up to 2.5 MiB). Three, not four: the hash keeps ahead of a copy (even SHA-256, with the
/// CPU's SHA instructions), and a fourth only added 256 KiB to a download's peak.
const HASH_BUFFERS: usize = 3;

/// [`Hashes`] fed inline, or by a channel to a blocking thread so that hashing overlaps
/// reading and writing. Either way it lends the copy loop the buffer it reads into.
enum StreamHasher {
    Inline {
        hashes: Box<Hashes>,
        buf: Option<Vec<u8>>,
        len: usize,
    },
    Background {
        /// Filled buffers and how many of their bytes count, to the hash thread.
        chunks: tokio::sync::mpsc::Sender<(Vec<u8>, usize)>,
        /// Hashed buffers back from it.
        free: tokio::sync::mpsc::Receiver<Vec<u8>>,
        /// Buffers not made yet.
        unmade: usize,
        done: tokio::task::JoinHandle<Hashes>,
    },
}

impl StreamHasher {
    /// A hasher for a source of `src_len` bytes (the stream may turn out longer or
    /// shorter: the buffer size only sets how many reads it takes).
    fn new(hashes: Hashes, src_len: u64) -> Self {
        if src_len < BACKGROUND_HASH_FROM || !hashes.active() {
            // A small file's buffer is its size: a whole chunk, zeroed, for every 8 KiB
            // file costs more than copying the file.
            let len = usize::try_from(src_len).unwrap_or(CHUNK).clamp(8192, CHUNK);
            return StreamHasher::Inline {
                hashes: Box::new(hashes),
                buf: None,
                len,
            };
        }
        let (chunks, mut rx) = tokio::sync::mpsc::channel::<(Vec<u8>, usize)>(HASH_BUFFERS);
        let (free_tx, free) = tokio::sync::mpsc::channel::<Vec<u8>>(HASH_BUFFERS);
        let done = tokio::task::spawn_blocking(move || {
            let mut hashes = hashes;
            while let Some((chunk, n)) = rx.blocking_recv() {
                hashes.update(&chunk[..n]);
                // At most HASH_BUFFERS exist, so this never waits; the copy loop may have
                // stopped taking them back (an error), which only frees the buffer.
                let _ = free_tx.try_send(chunk);
            }
            hashes.finish()
        });
        StreamHasher::Background {
            chunks,
            free,
            unmade: HASH_BUFFERS,
            done,
        }
    }

    /// A buffer to read the next chunk into (waits for the hash thread when every buffer
    /// is queued for it).
    async fn buffer(&mut self) -> Vec<u8> {
        match self {
            StreamHasher::Inline { buf, len, .. } => buf.take().unwrap_or_else(|| vec![0; *len]),
            StreamHasher::Background { free, unmade, .. } => {
                if let Ok(buf) = free.try_recv() {
                    return buf;
                }
                if *unmade > 0 {
                    *unmade -= 1;
                    return vec![0; CHUNK];
                }
                // All are lent to the thread, which hands each back once hashed; if the
                // thread is gone (the runtime shuts down) a new buffer keeps the copy going
                // and `finish` reports no hash.
                free.recv().await.unwrap_or_else(|| vec![0; CHUNK])
            }
        }
    }

    /// Hash the first `n` bytes of `buf` (a buffer from [`StreamHasher::buffer`]).
    async fn update(&mut self, buf: Vec<u8>, n: usize) {
        match self {
            StreamHasher::Inline {
                hashes, buf: slot, ..
            } => {
                hashes.update(&buf[..n]);
                *slot = Some(buf);
            }
            StreamHasher::Background { chunks, .. } => {
                // The thread only ends when the sender is dropped, so a send cannot fail.
                let _ = chunks.send((buf, n)).await;
            }
        }
    }

    async fn finish(self) -> Hashes {
        match self {
            StreamHasher::Inline { hashes, .. } => hashes.finish(),
            StreamHasher::Background { chunks, done, .. } => {
                drop(chunks);
                // A runtime shutting down may cancel the thread: then no hash, size only.
                done.await.unwrap_or_else(|_| Hashes::none().finish())
            }
        }
    }
}

/// Hashes computed on the stream.
struct Hashes {
    /// The record's digest, once finished.
    record: Option<RecordDigest>,
    md5: Option<String>,
    record_state: Option<RecordHasher>,
    md5_state: Option<md5::Md5>,
}

/// The running state of the record's digest.
enum RecordHasher {
    /// Boxed: 1.9 KB of state.
    Blake3(Box<blake3::Hasher>),
    Sha256(Sha256),
}

impl Hashes {
    /// Hashes for the record in `algo` when `record` (and MD5 beside it when `md5`).
    fn new(record: bool, algo: RecordHash, md5: bool) -> Self {
        Self {
            record: None,
            md5: None,
            record_state: record.then(|| match algo {
                RecordHash::Blake3 => RecordHasher::Blake3(Box::default()),
                RecordHash::Sha256 => RecordHasher::Sha256(Sha256::new()),
            }),
            md5_state: (record && md5).then(<md5::Md5 as md5::Digest>::new),
        }
    }

    /// Nothing hashed at all.
    fn none() -> Self {
        Self::new(false, RecordHash::default(), false)
    }

    /// Whether anything is being hashed at all.
    fn active(&self) -> bool {
        self.record_state.is_some() || self.md5_state.is_some()
    }

    fn update(&mut self, data: &[u8]) {
        match &mut self.record_state {
            Some(RecordHasher::Blake3(h)) => {
                h.update(data);
            }
            Some(RecordHasher::Sha256(h)) => h.update(data),
            None => {}
        }
        if let Some(h) = &mut self.md5_state {
            md5::Digest::update(h, data);
        }
    }

    fn finish(mut self) -> Self {
        self.record = self.record_state.take().map(|h| match h {
            RecordHasher::Blake3(h) => RecordDigest {
                algo: RecordHash::Blake3,
                hex: h.finalize().to_hex().to_string(),
            },
            RecordHasher::Sha256(h) => RecordDigest {
                algo: RecordHash::Sha256,
                hex: hex::encode(h.finalize()),
            },
        });
        self.md5 = self
            .md5_state
            .take()
            .map(|h| hex::encode(md5::Digest::finalize(h)));
        self
    }

    /// Our digest in `algo`, to compare with a server's, if we computed that one.
    fn get(&self, algo: HashAlgo) -> Option<&str> {
        match algo {
            HashAlgo::Sha256 => self
                .record
                .as_ref()
                .filter(|d| d.algo == RecordHash::Sha256)
                .map(|d| d.hex.as_str()),
            HashAlgo::Md5 => self.md5.as_deref(),
        }
    }
}
