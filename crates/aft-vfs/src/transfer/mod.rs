//! Transfer logic written once for every backend: overwrite policies, temp names, resume,
//! verification, versions, retries, delete-source and adjust-time (spec §4 `Options`).
//!
//! Everything here speaks [`Vfs`] on both ends, so an upload is a copy from [`LocalFs`] to a
//! remote, a download the other way round, and a relay between two remotes needs no local
//! staging. `docs/transfers.md` describes the semantics for users.
//!
//! [`LocalFs`]: crate::local::LocalFs

mod file;
mod rails;
mod tree;
mod versions;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

pub use file::copy_file;
pub use rails::{DeleteRails, MaxDelete};
pub use tree::{GlobSplit, SMALL_FILE, copy_tree, download, split_glob, sync, sync_with, upload};
pub use versions::{VERSIONS_DIR, version_name};

use crate::Vfs;

/// A check that says whether a running transfer must halt.
pub type CancelCheck = Arc<dyn Fn() -> bool + Send + Sync>;

/// Told the bytes of each chunk as it is written to a target (a progress bar); a retried
/// or restarted file is counted again.
pub type ProgressHook = Arc<dyn Fn(u64) + Send + Sync>;

/// Target folders a transfer already swept of stale temp files.
#[derive(Debug, Clone, Default)]
pub struct SweptDirs(Arc<std::sync::Mutex<std::collections::HashSet<String>>>);

impl SweptDirs {
    /// Whether `dir` is new here (and is marked as swept now).
    pub(crate) fn first_visit(&self, dir: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(dir.to_string())
    }
}

/// What to do when the target file already exists (`UploadPolicy`/`DownloadPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum TransferPolicy {
    /// Keep the existing file; the transfer is skipped (0, the default).
    #[default]
    NeverOverwrite,
    /// Always replace it (1).
    AlwaysOverwrite,
    /// Replace it when the sizes differ (2).
    OverwriteIfDiffSize,
    /// Replace it when the source is newer (3); also when either time is unknown.
    OverwriteIfNewer,
}

impl TransferPolicy {
    /// The policy for AFT!'s numeric code 0-3, `None` for anything else.
    pub fn from_code(code: i64) -> Option<Self> {
        Some(match code {
            0 => Self::NeverOverwrite,
            1 => Self::AlwaysOverwrite,
            2 => Self::OverwriteIfDiffSize,
            3 => Self::OverwriteIfNewer,
            _ => return None,
        })
    }

    /// AFT!'s numeric code of this policy.
    pub fn code(self) -> i64 {
        match self {
            Self::NeverOverwrite => 0,
            Self::AlwaysOverwrite => 1,
            Self::OverwriteIfDiffSize => 2,
            Self::OverwriteIfNewer => 3,
        }
    }
}

/// Which way on-the-fly encryption works on a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum OtfeDirection {
    /// Encrypt what is read from the source (uploads).
    #[default]
    Encrypt,
    /// Decrypt what is read from the source (downloads).
    Decrypt,
}

/// The digest a transfer record carries of each file (`Options.RecordHash` in a script).
///
/// BLAKE3 is the default: a 256-bit cryptographic hash, as collision-resistant as SHA-256,
/// that this machine computes at about 6.5 GB/s on one core against SHA-256's 1.8 GB/s
/// (even with the CPU's SHA instructions), so hashing a big file costs a quarter of the
/// CPU. `b3sum` checks it. SHA-256 stays one setting away for those who must show a
/// FIPS-approved digest or compare with `sha256sum`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordHash {
    /// BLAKE3 (256-bit, hex), as `b3sum` prints it.
    #[default]
    Blake3,
    /// SHA-256 (hex), as `sha256sum` prints it.
    Sha256,
}

impl RecordHash {
    /// The name a record and a log line give it: `blake3` or `sha256`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Blake3 => "blake3",
            Self::Sha256 => "sha256",
        }
    }
}

impl std::str::FromStr for RecordHash {
    type Err = String;

    /// `blake3` or `sha256` (`sha-256` too), in any case.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "blake3" => Ok(Self::Blake3),
            "sha256" | "sha-256" => Ok(Self::Sha256),
            _ => Err(format!(
                "RecordHash must be \"blake3\" or \"sha256\", not \"{s}\""
            )),
        }
    }
}

/// A file's digest in its transfer record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordDigest {
    /// Which hash.
    pub algo: RecordHash,
    /// The digest in lowercase hex.
    pub hex: String,
}

/// Every option of a transfer. `Default` gives AFT!'s defaults.
#[derive(Clone)]
pub struct TransferOptions {
    /// What to do when the target exists.
    pub policy: TransferPolicy,
    /// Write to `name.aft-tmp-<tag>` and rename when whole. `None`: on where the target
    /// backend has no atomic write (`Capabilities::atomic_write`), off where it has.
    pub temp_name: Option<bool>,
    /// Delete each source file once it verified at the target.
    pub delete_source: bool,
    /// Give the target the source's modification time.
    pub adjust_time: bool,
    /// Move a file about to be replaced into `.ver/` beside it instead of losing it.
    pub versioned: bool,
    /// How many old versions `.ver/` keeps per file (oldest deleted first); default 3.
    pub versions_to_keep: u32,
    /// Stop a multi-file transfer at the first file that fails (default: go on and report).
    pub stop_on_error: bool,
    /// Extra attempts after a transient failure (dropped connection, timeout); default 3.
    pub retries: u32,
    /// Wait before the first retry; doubles on each further one, capped at 30 s.
    pub retry_backoff: Duration,
    /// Continue a temp file left by an interrupted attempt, where the target can write at an
    /// offset and the source can read from one; default on.
    pub resume: bool,
    /// Hash the stream for the record (and MD5 beside it where an end offers one, to
    /// compare with the server's); size is always checked. Default on.
    pub verify_hash: bool,
    /// The record's digest; default BLAKE3.
    pub record_hash: RecordHash,
    /// Descend into subfolders for a plain pattern like `*.csv` (a pattern with `/` or `**`
    /// descends as it says).
    pub recursive: bool,
    /// Files transferred at once by `copy_tree`/`upload`/`download`/`sync`; default 4.
    /// Where either end is an object store, this bounds the files from
    /// [`SMALL_FILE`] up only (each may hold `Streams` + 2 parts in memory), and
    /// `small_parallel` the files in flight in all.
    pub parallel: usize,
    /// Where either end is an object store (S3, Azure Blob, GCS): files in flight at once
    /// in all, when more than `parallel`; the ones beyond `parallel` are files under
    /// [`SMALL_FILE`], each one request whose time is mostly waiting on the server.
    /// Default 16. Elsewhere (SFTP, FTP, SMB, WebDAV, local) only `parallel` counts.
    pub small_parallel: usize,
    /// On-the-fly encryption key: when set, the stream is encrypted or decrypted on its way.
    pub otfe_key: Option<[u8; 32]>,
    /// Whether `otfe_key` encrypts or decrypts.
    pub otfe_direction: OtfeDirection,
    /// Asked between files and between chunks; `true` halts the transfer (the job's halt
    /// signal, e.g. `Arc::new(move || halt.is_raised())`).
    pub cancel: Option<CancelCheck>,
    /// Told the bytes written as each chunk lands (`aft cp`'s progress bar).
    pub progress: Option<ProgressHook>,
    /// Temp files (`*.aft-tmp-*`) in a target folder untouched for longer than this are
    /// deleted when a transfer first writes to that folder: what a crashed run left and
    /// no run came back to resume. `None` never deletes them; default 24 hours.
    pub temp_max_age: Option<Duration>,
    /// Target folders already swept of stale temp files, shared by clones of these options
    /// so that each folder is listed once; leave it at its default.
    pub swept: SweptDirs,
}

/// Lines for a job's log gathered while a transfer runs (a resume, a clean-up, an
/// abandoned upload aborted), each taken once; every line also goes to the service log.
#[derive(Debug, Default)]
pub struct Notes(std::sync::Mutex<Vec<String>>);

impl Notes {
    /// Add `line`.
    pub fn push(&self, line: String) {
        tracing::info!("{line}");
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    }

    /// The lines so far, leaving none.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// How long what a crashed run left in a target folder (a temp file, an unfinished S3 or
/// GCS multipart upload) stays untouched before the next transfer into that folder takes it
/// for abandoned and deletes it.
pub const LEFT_BEHIND_AFTER: Duration = Duration::from_secs(24 * 3600);

impl Default for TransferOptions {
    fn default() -> Self {
        Self {
            policy: TransferPolicy::NeverOverwrite,
            temp_name: None,
            delete_source: false,
            adjust_time: false,
            versioned: false,
            versions_to_keep: 3,
            stop_on_error: false,
            retries: 3,
            retry_backoff: Duration::from_millis(500),
            resume: true,
            verify_hash: true,
            record_hash: RecordHash::default(),
            recursive: false,
            parallel: 4,
            small_parallel: 16,
            otfe_key: None,
            otfe_direction: OtfeDirection::Encrypt,
            cancel: None,
            progress: None,
            temp_max_age: Some(LEFT_BEHIND_AFTER),
            swept: SweptDirs::default(),
        }
    }
}

impl std::fmt::Debug for TransferOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Hand-written so the OTFE key never reaches a log.
        f.debug_struct("TransferOptions")
            .field("policy", &self.policy)
            .field("temp_name", &self.temp_name)
            .field("delete_source", &self.delete_source)
            .field("adjust_time", &self.adjust_time)
            .field("versioned", &self.versioned)
            .field("versions_to_keep", &self.versions_to_keep)
            .field("stop_on_error", &self.stop_on_error)
            .field("retries", &self.retries)
            .field("retry_backoff", &self.retry_backoff)
            .field("resume", &self.resume)
            .field("verify_hash", &self.verify_hash)
            .field("record_hash", &self.record_hash)
            .field("recursive", &self.recursive)
            .field("parallel", &self.parallel)
            .field("small_parallel", &self.small_parallel)
            .field("otfe", &self.otfe_key.map(|_| self.otfe_direction))
            .field("temp_max_age", &self.temp_max_age)
            .finish()
    }
}

impl TransferOptions {
    /// Whether a temp name is used when writing to `dst`.
    pub fn uses_temp_name(&self, dst: &dyn Vfs) -> bool {
        self.temp_name.unwrap_or(!dst.capabilities().atomic_write)
    }

    fn cancelled(&self) -> bool {
        self.cancel.as_ref().is_some_and(|c| c())
    }
}

/// How one file's transfer ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "reason", rename_all = "lowercase")]
pub enum Outcome {
    /// Transferred and verified.
    Ok,
    /// Not transferred, by policy (the reason says which).
    Skipped(String),
    /// Failed after all attempts; the error message.
    Failed(String),
}

/// One file a transfer handled: what the engine records as a transfer row.
#[derive(Debug, Clone, Serialize)]
pub struct TransferOutcome {
    /// The source, as `backend` + path (`file:///data/a.csv`, `sftp://u@h:22/in/a.csv`).
    pub source: String,
    /// The target, same form.
    pub target: String,
    /// Bytes written to the target by this transfer: the file's size when it worked
    /// (resumed bytes included), what the attempts wrote before they failed otherwise.
    pub bytes: u64,
    /// The digest of the whole target file as it was verified (a resumed file's kept part
    /// included), when hashing is on.
    pub hash: Option<RecordDigest>,
    /// Wall time in milliseconds.
    pub millis: u64,
    /// Attempts made (1 when it worked first time).
    pub attempts: u32,
    /// How it ended.
    pub outcome: Outcome,
    /// What the job log should say besides the outcome: a resume, a restart from byte 0,
    /// a temp file that could not be removed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl TransferOutcome {
    /// `ok`, `skipped: <reason>` or the error message, for a log line or a record.
    pub fn outcome_text(&self) -> String {
        match &self.outcome {
            Outcome::Ok => "ok".to_string(),
            Outcome::Skipped(why) => format!("skipped: {why}"),
            Outcome::Failed(msg) => msg.clone(),
        }
    }
}

/// Receives each file's outcome as soon as it is known (the engine records rows with it).
pub type OutcomeSink<'a> = &'a (dyn Fn(&TransferOutcome) + Send + Sync);

/// Totals of a multi-file transfer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TransferSummary {
    /// Files transferred and verified.
    pub transferred: u64,
    /// Files skipped by policy.
    pub skipped: u64,
    /// Files that failed after all attempts.
    pub failed: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Files deleted at the target by `sync` because the source no longer has them.
    pub deleted: u64,
    /// The first failure's message, if any.
    pub first_error: Option<String>,
}

impl TransferSummary {
    /// Count one file's outcome in.
    pub fn add(&mut self, o: &TransferOutcome) {
        match &o.outcome {
            Outcome::Ok => {
                self.transferred += 1;
                self.bytes += o.bytes;
            }
            Outcome::Skipped(_) => self.skipped += 1,
            Outcome::Failed(msg) => {
                self.failed += 1;
                self.first_error
                    .get_or_insert_with(|| format!("{}: {msg}", o.source));
            }
        }
    }

    /// Whether every file either transferred or was skipped by policy.
    pub fn all_ok(&self) -> bool {
        self.failed == 0
    }
}
