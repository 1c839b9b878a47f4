//! The SyncJS transfer clients: `SftpClient`, `FtpsClient`, `FtpClient`, `S3Client`,
//! `AzureClient`, `GCSClient`, `WebDAVClient`, `LocalClient`, and `GetVFS(name)` for a
//! client built from a VFS Library entry.
//!
//! Every client is the same JavaScript object over one Rust implementation on
//! `Arc<dyn Vfs>`; they differ only in their `kind` and the fields they start with. Fields
//! are plain writable properties read at `Connect()`, as in AFT!; `Options` is a plain
//! object read at each call. Methods block the script (the work runs on the shared tokio
//! runtime) and give up when the job is halted. A failure returns `false` (or `null` for
//! methods that return a value), writes the reason to the job log as a warning, and is what
//! `LastError()` returns afterwards. Every file a transfer handles is recorded with
//! [`crate::JobHost::record_transfer`].

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aft_vfs::{Entry, Vfs, VfsError, file_name, join, normalize, parent};
use futures::TryStreamExt;
use globset::{GlobBuilder, GlobMatcher};
use rquickjs::function::Opt;
use rquickjs::object::Property;
use rquickjs::{Ctx, Exception, Function, Object, Value};
use serde_json::{Map, Value as Json, json};

use aft_vfs::transfer::{
    self, OtfeDirection, Outcome, RecordHash, TransferOptions, TransferOutcome, TransferPolicy,
    TransferSummary,
};

use super::libutil::to_js;
use super::prelude::LazyGlobals;
use crate::{JobScope, LogLevel, TransferRecord};

/// `ListDir` mode: files and folders.
pub const LIST_ALL: i64 = 0;
/// `ListDir` mode: files only.
pub const LIST_FILES: i64 = 1;
/// `ListDir` mode: folders only.
pub const LIST_DIRS: i64 = 2;

/// Looks a secret up by name for the `...FromSecret` fields.
pub type SecretLookup<'a> = &'a (dyn Fn(&str) -> Option<String> + Send + Sync);

/// Build a backend from a client's kind and fields; `secrets` resolves `...FromSecret`.
/// Nothing is contacted yet: the first operation connects.
pub fn open_vfs(
    kind: &str,
    fields: &Json,
    secrets: SecretLookup<'_>,
) -> Result<Arc<dyn Vfs>, VfsError> {
    aft_vfs::open_backend(kind, fields, secrets)
}

/// Each client class's starting fields, from the backend registry: `{"sftp": {"Host": "",
/// ...}, "ftps": {"TLSMode": 1, ...}}` (no default means "", which is "not set").
fn client_fields() -> Json {
    let mut all = Map::new();
    for ty in aft_vfs::registry::types() {
        let fields: Map<String, Json> = ty
            .fields()
            .iter()
            .map(|f| {
                let value = ty
                    .default_of(f)
                    .map_or(Json::String(String::new()), |d| d.to_json());
                (f.name.to_string(), value)
            })
            .collect();
        all.insert(ty.name().to_string(), Json::Object(fields));
    }
    Json::Object(all)
}

/// Each client class's name and type (`[["SftpClient", "sftp"], ...]`), from the registry.
fn client_classes() -> Json {
    aft_vfs::registry::types()
        .map(|ty| json!([ty.info.client, ty.name()]))
        .collect()
}

/// One client object's state on the Rust side.
struct Slot {
    /// `sftp`, `ftps`, `s3`, ...
    kind: String,
    /// The backend once connected.
    vfs: Option<Arc<dyn Vfs>>,
    /// The reason the last call failed ("" after a success).
    last_error: String,
}

type Slots = Rc<RefCell<Vec<Slot>>>;

/// Which way files go: it picks the options that apply (`UploadPolicy` or `DownloadPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Upload,
    Download,
    /// `CopyTo`: a relay between two remotes, under the upload options, without OTFE.
    Relay,
}

fn opt_bool(map: &Map<String, Json>, key: &str) -> bool {
    match map.get(key) {
        Some(Json::Bool(b)) => *b,
        Some(Json::Number(n)) => n.as_f64().is_some_and(|n| n != 0.0),
        _ => false,
    }
}

/// `Options.RecordHash` [ours]: the transfer record's digest, `"blake3"` (default) or
/// `"sha256"`.
fn record_hash(map: &Map<String, Json>) -> Result<RecordHash, String> {
    match map.get("RecordHash") {
        None | Some(Json::Null) => Ok(RecordHash::default()),
        Some(Json::String(s)) if s.is_empty() => Ok(RecordHash::default()),
        Some(Json::String(s)) => s.parse().map_err(|e| format!("Options.{e}")),
        Some(other) => Err(format!(
            "Options.RecordHash must be \"blake3\" or \"sha256\", not {other}"
        )),
    }
}

fn policy(map: &Map<String, Json>, key: &str) -> Result<TransferPolicy, String> {
    let bad = || {
        format!(
            "Options.{key} must be NeverOverwrite (0), AlwaysOverwrite (1), OverwriteIfDiffSize (2) or OverwriteIfNewer (3)"
        )
    };
    match map.get(key) {
        None | Some(Json::Null) => Ok(TransferPolicy::NeverOverwrite),
        Some(Json::Number(n)) => n
            .as_i64()
            .and_then(TransferPolicy::from_code)
            .ok_or_else(bad),
        Some(Json::String(s)) => match s.as_str() {
            "NeverOverwrite" => Ok(TransferPolicy::NeverOverwrite),
            "AlwaysOverwrite" => Ok(TransferPolicy::AlwaysOverwrite),
            "OverwriteIfDiffSize" => Ok(TransferPolicy::OverwriteIfDiffSize),
            "OverwriteIfNewer" => Ok(TransferPolicy::OverwriteIfNewer),
            _ => Err(bad()),
        },
        Some(_) => Err(bad()),
    }
}

fn versions_to_keep(map: &Map<String, Json>, key: &str) -> Result<u32, String> {
    match map.get(key) {
        None | Some(Json::Null) => Ok(3),
        Some(v) => v
            .as_f64()
            .filter(|n| n.fract() == 0.0 && *n >= 1.0 && *n <= 100_000.0)
            .map(|n| n as u32)
            .ok_or_else(|| format!("Options.{key} must be a whole number, at least 1")),
    }
}

fn otfe_key(scope: &JobScope, map: &Map<String, Json>) -> Result<[u8; 32], String> {
    let text = match map.get("OTFEKeyFromSecret").and_then(Json::as_str).filter(|s| !s.is_empty()) {
        Some(name) => super::libutil::secret_value(scope, name).map_err(|e| format!("Options.OTFEKeyFromSecret: {e}"))?,
        None => map
            .get("OTFEKey")
            .and_then(Json::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or("Options.OTFE is on but neither Options.OTFEKey nor Options.OTFEKeyFromSecret is set")?,
    };
    aft_vfs::otfe::key_from_string(&text).map_err(|e| e.to_string())
}

/// The transfer options a client's `Options` give for one direction.
fn transfer_options(
    scope: &JobScope,
    map: &Map<String, Json>,
    direction: Direction,
) -> Result<TransferOptions, String> {
    let (side, keep_key) = match direction {
        Direction::Upload | Direction::Relay => ("Upload", "VersionsToKeepRemote"),
        Direction::Download => ("Download", "VersionsToKeepLocal"),
    };
    let (otfe_key, otfe_direction) = if opt_bool(map, "OTFE") && direction != Direction::Relay {
        let key = otfe_key(scope, map)?;
        let way = if direction == Direction::Download {
            OtfeDirection::Decrypt
        } else {
            OtfeDirection::Encrypt
        };
        (Some(key), way)
    } else {
        (None, OtfeDirection::Encrypt)
    };
    let stop_on_error = opt_bool(map, "StopOnTransferError");
    Ok(TransferOptions {
        policy: policy(map, &format!("{side}Policy"))?,
        // Off means "where needed": a backend whose writes are not atomic still gets one,
        // so no reader ever sees half a file.
        temp_name: opt_bool(map, &format!("{side}WithTempName")).then_some(true),
        delete_source: opt_bool(map, &format!("DeleteSourceAfter{side}")),
        adjust_time: opt_bool(map, &format!("AdjustTimeOn{side}")),
        versioned: opt_bool(map, &format!("Versioned{side}")),
        versions_to_keep: versions_to_keep(map, keep_key)?,
        stop_on_error,
        // AFT! stops at the first failed file; with files in flight in parallel, some after
        // it would already have started.
        parallel: if stop_on_error {
            1
        } else {
            TransferOptions::default().parallel
        },
        small_parallel: if stop_on_error {
            1
        } else {
            TransferOptions::default().small_parallel
        },
        otfe_key,
        otfe_direction,
        record_hash: record_hash(map)?,
        ..TransferOptions::default()
    })
}

/// `Sync`'s `MaxDelete` and `BackupDir`, from its options or else the client's `Options`.
fn delete_rails(
    sync_opts: &Map<String, Json>,
    options: &Map<String, Json>,
) -> Result<transfer::DeleteRails, String> {
    let get = |key: &str| {
        sync_opts
            .get(key)
            .or_else(|| options.get(key))
            .filter(|v| !v.is_null())
    };
    let max_delete = match get("MaxDelete") {
        None => None,
        Some(Json::Number(n)) => Some(
            n.as_u64()
                .map(transfer::MaxDelete::Count)
                .ok_or_else(|| format!("MaxDelete must be a whole number of files or a percentage like \"10%\", not {n}"))?,
        ),
        Some(Json::String(s)) => Some(s.parse::<transfer::MaxDelete>()?),
        Some(other) => {
            return Err(format!(
                "MaxDelete must be a whole number of files or a percentage like \"10%\", not {other}"
            ));
        }
    };
    let backup_dir = match get("BackupDir") {
        None => None,
        Some(Json::String(s)) if s.is_empty() => None,
        Some(Json::String(s)) => Some(s.clone()),
        Some(other) => return Err(format!("BackupDir must be a folder path, not {other}")),
    };
    Ok(transfer::DeleteRails {
        max_delete,
        backup_dir,
    })
}

/// Run `fut` on the job's tokio runtime, giving up when the job is halted.
fn block<T>(scope: &JobScope, fut: impl Future<Output = Result<T, VfsError>>) -> Result<T, String> {
    if scope.halt.is_raised() {
        return Err("the job was asked to halt".into());
    }
    let halt = scope.halt.clone();
    scope.tokio.block_on(async move {
        tokio::select! {
            r = fut => r.map_err(|e| e.to_string()),
            () = async {
                while !halt.is_raised() {
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
            } => Err("the job was asked to halt".into()),
        }
    })
}

/// A client's file mask (`*.csv`, `report-??.txt`) as a matcher on names.
fn name_glob(mask: &str) -> Result<GlobMatcher, String> {
    let mask = if mask.is_empty() || mask == "*.*" {
        "*"
    } else {
        mask
    };
    GlobBuilder::new(mask)
        .literal_separator(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| format!("bad file mask {mask:?}: {e}"))
}

/// A glob whose last part is `*.*` selects every file of its folder, names without a dot
/// included, as on Windows, in AFT!'s examples and in `ListFiles`.
fn all_files_mask(pattern: &str) -> String {
    match pattern.strip_suffix("*.*") {
        Some(head) if head.is_empty() || head.ends_with('/') => format!("{head}*"),
        _ => pattern.to_string(),
    }
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '[', '{'])
}

/// A local path made absolute (relative paths are taken from the current folder).
fn absolute_local(path: &str) -> String {
    let p = std::path::Path::new(path);
    if p.is_absolute() {
        path.to_string()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p).to_string_lossy().into_owned())
            .unwrap_or_else(|_| path.to_string())
    }
}

/// An entry as the JSON a script sees (`ModTime` in ms, turned into a `Date` by the prelude).
fn item(e: &Entry) -> Json {
    json!({
        "Name": e.name,
        "Path": e.path,
        "Size": e.size,
        "ModTime": e.mtime.map(|t| t.timestamp_millis()),
        "IsDir": e.is_dir,
    })
}

/// Arguments of one call, as the prelude passes them (a JSON array).
struct CallArgs(Vec<Json>);

impl CallArgs {
    fn str(&self, i: usize, what: &str) -> Result<String, String> {
        match self.0.get(i) {
            Some(Json::String(s)) if !s.is_empty() => Ok(s.clone()),
            _ => Err(format!(
                "{what} (argument {}) must be a non-empty string",
                i + 1
            )),
        }
    }

    fn opt_str(&self, i: usize) -> Option<String> {
        self.0.get(i).and_then(Json::as_str).map(str::to_string)
    }

    fn number(&self, i: usize) -> Option<i64> {
        self.0.get(i).and_then(Json::as_f64).map(|n| n as i64)
    }

    fn object(&self, i: usize) -> Map<String, Json> {
        match self.0.get(i) {
            Some(Json::Object(m)) => m.clone(),
            _ => Map::new(),
        }
    }
}

/// What a method hands back: `false`/`null` on failure, with the reason.
type Reply = Result<Json, String>;

/// One client call, with everything it needs from the job.
struct Call<'a> {
    scope: &'a JobScope,
    vfs: Arc<dyn Vfs>,
    method: &'a str,
    options: Map<String, Json>,
    /// Transfer records made inside `run`'s async block, handed to the host once the job
    /// thread is back outside the runtime: `JobHost` calls may block, and blocking inside
    /// the runtime panics.
    pending_records: Arc<Mutex<Vec<TransferRecord>>>,
}

impl Call<'_> {
    fn run<T>(&self, fut: impl Future<Output = Result<T, VfsError>>) -> Result<T, String> {
        let result = block(self.scope, fut);
        let records = std::mem::take(
            &mut *self
                .pending_records
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        if !records.is_empty() {
            self.scope.host.record_transfers(records);
        }
        result
    }

    /// Run a call that is safe to repeat (a read, or a change that repeating leaves as
    /// it is), made anew by `make` each time: a dropped connection or a time-out is tried
    /// again, as `Connect()` and transfers are (the backend reconnects on the next call).
    fn run_retrying<T, Fut>(&self, make: impl Fn() -> Fut) -> Result<T, String>
    where
        Fut: Future<Output = Result<T, VfsError>>,
    {
        let (log, method) = (self.scope.log.clone(), self.method.to_string());
        self.run(async move {
            let mut wait = CONNECT_RETRY_WAIT;
            let mut attempt = 0;
            loop {
                attempt += 1;
                match make().await {
                    Err(e) if e.is_transient() && attempt <= CONNECT_RETRIES => {
                        log(
                            LogLevel::Warn,
                            &format!("{method}: {e}; trying again in {} ms", wait.as_millis()),
                        );
                        tokio::time::sleep(wait).await;
                        wait *= 2;
                    }
                    other => return other,
                }
            }
        })
    }

    fn list(&self, dir: &str, recursive: bool, keep: impl Fn(&Entry) -> bool) -> Reply {
        let vfs = self.vfs.clone();
        let dir = normalize(dir);
        let entries: Vec<Entry> = self.run_retrying(|| {
            let (vfs, dir) = (vfs.clone(), dir.clone());
            async move {
                if recursive {
                    aft_vfs::walk(vfs.as_ref(), &dir).try_collect().await
                } else {
                    vfs.list(&dir).await?.try_collect().await
                }
            }
        })?;
        let mut items: Vec<&Entry> = entries.iter().filter(|e| keep(e)).collect();
        items.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Json::Array(items.into_iter().map(item).collect()))
    }

    fn mode_filter(mode: Option<i64>) -> Result<impl Fn(&Entry) -> bool, String> {
        let mode = mode.unwrap_or(LIST_ALL);
        if !(LIST_ALL..=LIST_DIRS).contains(&mode) {
            return Err(format!(
                "the mode must be LIST_ALL, LIST_FILES or LIST_DIRS, not {mode}"
            ));
        }
        Ok(move |e: &Entry| match mode {
            LIST_FILES => !e.is_dir,
            LIST_DIRS => e.is_dir,
            _ => true,
        })
    }

    /// Where each file's outcome goes: the job log and the job's transfer records.
    fn sink(&self) -> impl Fn(&TransferOutcome) + Send + Sync + use<> {
        let (pending, log, method) = (
            self.pending_records.clone(),
            self.scope.log.clone(),
            self.method.to_string(),
        );
        let dry_run = self.scope.host.dry_run();
        move |o: &TransferOutcome| {
            if let Some(run) = &dry_run {
                run.note_transfer(o);
            }
            // Resumes, restarts from byte 0 and clean-ups, before the outcome line.
            for note in &o.notes {
                log(LogLevel::Info, &format!("{method}: {note}"));
            }
            let (level, line) = match &o.outcome {
                Outcome::Ok => (
                    LogLevel::Info,
                    format!("{} -> {} ({} bytes)", o.source, o.target, o.bytes),
                ),
                Outcome::Skipped(why) => (LogLevel::Info, format!("skipped {}: {why}", o.target)),
                Outcome::Failed(e) => {
                    (LogLevel::Warn, format!("{} -> {}: {e}", o.source, o.target))
                }
            };
            log(level, &format!("{method}: {line}"));
            let record = TransferRecord::from(o);
            pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(record);
        }
    }

    /// A multi-file transfer's totals as a reply: true unless a file failed.
    fn summary(&self, summary: TransferSummary) -> Reply {
        if summary.all_ok() {
            return Ok(Json::Bool(true));
        }
        let first = summary.first_error.unwrap_or_default();
        Err(match summary.failed {
            1 => first,
            n => format!("{n} files failed; the first: {first}"),
        })
    }

    /// `Upload(localGlob, remoteDir)`, `Download(remoteGlob, localDir)`, `CopyTo` of a glob
    /// or folder: what the pattern selects goes into the folder; a folder brings its tree.
    fn tree(
        &self,
        src: Arc<dyn Vfs>,
        pattern: &str,
        dst: Arc<dyn Vfs>,
        dir: &str,
        direction: Direction,
    ) -> Reply {
        let pattern = &all_files_mask(pattern);
        let opts = TransferOptions {
            recursive: !has_wildcard(pattern),
            ..transfer_options(self.scope, &self.options, direction)?
        };
        let sink = self.sink();
        let (pattern, dir) = (pattern.to_string(), dir.to_string());
        let summary = self.run(async move {
            transfer::copy_tree(src.as_ref(), &pattern, dst.as_ref(), &dir, &opts, &sink).await
        })?;
        self.summary(summary)
    }

    /// One file to one path; a target that is an existing folder (or ends in `/`) gets the
    /// file's name inside it.
    fn file(
        &self,
        src: Arc<dyn Vfs>,
        from: &str,
        dst: Arc<dyn Vfs>,
        to: &str,
        direction: Direction,
    ) -> Reply {
        let opts = transfer_options(self.scope, &self.options, direction)?;
        let sink = self.sink();
        let (from, to) = (normalize(from), to.to_string());
        let outcome = self.run(async move {
            let into_dir = to.ends_with('/')
                || match dst.stat(&to).await {
                    Ok(e) => e.is_dir,
                    Err(VfsError::NotFound(_)) => false,
                    Err(e) => return Err(e),
                };
            let target = if into_dir {
                join(&to, &file_name(&from))
            } else {
                normalize(&to)
            };
            dst.mkdir_all(&parent(&target)).await?;
            Ok(transfer::copy_file(src.as_ref(), &from, dst.as_ref(), &target, &opts, &sink).await)
        })?;
        match outcome.outcome {
            Outcome::Failed(e) => Err(format!("{} -> {}: {e}", outcome.source, outcome.target)),
            _ => Ok(Json::Bool(true)),
        }
    }

    /// `Sync(localDir, remoteDir, {Direction, Delete})`.
    fn sync(
        &self,
        local: Arc<dyn Vfs>,
        local_dir: &str,
        remote_dir: &str,
        sync_opts: &Map<String, Json>,
    ) -> Reply {
        let download = match sync_opts
            .get("Direction")
            .and_then(Json::as_str)
            .unwrap_or("upload")
        {
            d if d.eq_ignore_ascii_case("upload") => false,
            d if d.eq_ignore_ascii_case("download") => true,
            other => {
                return Err(format!(
                    "Direction must be \"upload\" or \"download\", not {other:?}"
                ));
            }
        };
        let delete = opt_bool(sync_opts, "Delete");
        let rails = delete_rails(sync_opts, &self.options)?;
        let (src, src_dir, dst, dst_dir, direction) = if download {
            (
                self.vfs.clone(),
                remote_dir.to_string(),
                local,
                local_dir.to_string(),
                Direction::Download,
            )
        } else {
            (
                local,
                local_dir.to_string(),
                self.vfs.clone(),
                remote_dir.to_string(),
                Direction::Upload,
            )
        };
        let opts = transfer_options(self.scope, &self.options, direction)?;
        let sink = self.sink();
        let summary = self.run(async move {
            transfer::sync_with(
                src.as_ref(),
                &src_dir,
                dst.as_ref(),
                &dst_dir,
                &opts,
                delete.then_some(&rails),
                &sink,
            )
            .await
        })?;
        self.scope.log(
            LogLevel::Info,
            &format!(
                "Sync: {} copied, {} unchanged, {} deleted, {} failed",
                summary.transferred, summary.skipped, summary.deleted, summary.failed
            ),
        );
        self.summary(summary)
    }
}

/// Resolve a client call; `other` is the target client's backend for `CopyTo`.
fn dispatch(call: &Call<'_>, args: &CallArgs, other: Option<Arc<dyn Vfs>>) -> Reply {
    let vfs = call.vfs.clone();
    let mut local: Arc<dyn Vfs> = Arc::new(aft_vfs::local::LocalFs::new("/"));
    if let Some(run) = call.scope.host.dry_run() {
        local = run.wrap(local);
    }
    let done = |r: Result<(), String>| r.map(|()| Json::Bool(true));
    match call.method {
        "ListDir" | "ListDirR" => {
            let keep = Call::mode_filter(args.number(1))?;
            call.list(
                &args.opt_str(0).unwrap_or_else(|| "/".into()),
                call.method == "ListDirR",
                keep,
            )
        }
        "ListFiles" | "ListFilesR" => {
            let glob = name_glob(&args.opt_str(1).unwrap_or_default())?;
            call.list(
                &args.opt_str(0).unwrap_or_else(|| "/".into()),
                call.method == "ListFilesR",
                move |e| !e.is_dir && glob.is_match(&e.name),
            )
        }
        "MakeDir" => {
            let dir = args.str(0, "the folder")?;
            done(call.run_retrying(|| {
                let (vfs, dir) = (vfs.clone(), dir.clone());
                async move { vfs.mkdir_all(&dir).await }
            }))
        }
        "RenDir" | "RenFile" => {
            let (from, to) = (args.str(0, "the old path")?, args.str(1, "the new path")?);
            let want_dir = call.method == "RenDir";
            done(call.run(async move {
                let e = vfs.stat(&from).await?;
                if e.is_dir != want_dir {
                    let what = if e.is_dir {
                        "a folder: use RenDir"
                    } else {
                        "a file: use RenFile"
                    };
                    return Err(VfsError::Other(format!("{from} is {what}")));
                }
                vfs.rename(&from, &to).await
            }))
        }
        "DelDir" => {
            let dir = args.str(0, "the folder")?;
            done(call.run(async move {
                match vfs.remove_dir(&dir).await {
                    Err(e)
                        if !matches!(e, VfsError::NotFound(_))
                            && !e.to_string().contains("not empty") =>
                    {
                        // Some servers refuse a folder with content vaguely (SFTP says only
                        // "Failure"): name the reason when that is it.
                        let first = match vfs.list(&dir).await {
                            Ok(mut entries) => entries.try_next().await.ok().flatten(),
                            Err(_) => None,
                        };
                        match first {
                            Some(child) => Err(VfsError::Other(format!(
                                "{dir} is not empty (it holds {}): DelDir deletes only empty folders; use DelTree",
                                child.name
                            ))),
                            None => Err(e),
                        }
                    }
                    r => r,
                }
            }))
        }
        "DelTree" => {
            let dir = args.str(0, "the folder")?;
            done(call.run_retrying(|| {
                let (vfs, dir) = (vfs.clone(), dir.clone());
                async move { vfs.remove_all(&dir).await }
            }))
        }
        "DelFile" => {
            let path = args.str(0, "the file")?;
            done(call.run(async move {
                if vfs.stat(&path).await?.is_dir {
                    return Err(VfsError::Other(format!(
                        "{path} is a folder: use DelDir or DelTree"
                    )));
                }
                vfs.remove_file(&path).await
            }))
        }
        "Stat" => {
            let path = args.str(0, "the path")?;
            call.run_retrying(|| {
                let (vfs, path) = (vfs.clone(), path.clone());
                async move { vfs.stat(&path).await }
            })
            .map(|e| item(&e))
        }
        "Exists" => {
            let path = args.str(0, "the path")?;
            call.run_retrying(|| {
                let (vfs, path) = (vfs.clone(), path.clone());
                async move { aft_vfs::exists(vfs.as_ref(), &path).await }
            })
            .map(Json::Bool)
        }
        "Upload" => {
            let (glob, dir) = (
                args.str(0, "the local files")?,
                args.str(1, "the remote folder")?,
            );
            call.tree(local, &absolute_local(&glob), vfs, &dir, Direction::Upload)
        }
        "Download" => {
            let (glob, dir) = (
                args.str(0, "the remote files")?,
                args.str(1, "the local folder")?,
            );
            call.tree(
                vfs,
                &glob,
                local,
                &absolute_local(&dir),
                Direction::Download,
            )
        }
        "UploadFile" => {
            let (from, to) = (
                args.str(0, "the local file")?,
                args.str(1, "the remote path")?,
            );
            call.file(local, &absolute_local(&from), vfs, &to, Direction::Upload)
        }
        "DownloadFile" => {
            let (from, to) = (
                args.str(0, "the remote file")?,
                args.str(1, "the local path")?,
            );
            call.file(vfs, &from, local, &absolute_local(&to), Direction::Download)
        }
        "CopyTo" => {
            let other = other.ok_or("the first argument must be another client")?;
            let (from, to) = (
                args.str(1, "the source path")?,
                args.str(2, "the target path")?,
            );
            let (v, f) = (vfs.clone(), from.clone());
            let is_file =
                !has_wildcard(&from) && call.run(async move { Ok(!v.stat(&f).await?.is_dir) })?;
            if is_file {
                call.file(vfs, &from, other, &to, Direction::Relay)
            } else {
                call.tree(vfs, &from, other, &to, Direction::Relay)
            }
        }
        "Sync" => {
            let (local_dir, remote_dir) = (
                args.str(0, "the local folder")?,
                args.str(1, "the remote folder")?,
            );
            call.sync(
                local,
                &absolute_local(&local_dir),
                &remote_dir,
                &args.object(2),
            )
        }
        other => Err(format!("{other} is not a client method")),
    }
}

/// Retries of `Connect()` after a transient failure (as a transfer's default retries).
const CONNECT_RETRIES: u32 = 3;
/// Wait before the first retry of `Connect()`; doubles on each further one.
const CONNECT_RETRY_WAIT: Duration = Duration::from_millis(500);

/// Connect `slot` with `fields` (a JSON object of the client's properties).
fn connect(scope: &JobScope, slots: &Slots, id: usize, fields_json: &str) -> Result<(), String> {
    let kind = slots
        .borrow()
        .get(id)
        .map(|s| s.kind.clone())
        .ok_or("not a client")?;
    let fields: Json =
        serde_json::from_str(fields_json).map_err(|e| format!("bad client fields: {e}"))?;
    let host = scope.host.clone();
    let lookup = move |name: &str| host.secret(name);
    // Built on the job's thread, outside the runtime: resolving `...FromSecret` fields is a
    // host call, and host calls block.
    let vfs = open_vfs(&kind, &fields, &lookup).map_err(|e| e.to_string())?;
    let vfs = match scope.host.dry_run() {
        Some(run) => run.wrap(vfs),
        None => vfs,
    };
    let log = scope.log.clone();
    let vfs = block(scope, async {
        // Object stores connect lazily: list the root once so a wrong endpoint, bucket or
        // key fails here rather than at the first transfer. A dropped connection or a
        // timeout is tried again, as transfers are; a refusal is not.
        let mut wait = CONNECT_RETRY_WAIT;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let probe = async {
                let mut listing = vfs.list("/").await?;
                listing.try_next().await?;
                Ok::<(), VfsError>(())
            };
            match probe.await {
                Ok(()) => return Ok(Ok(vfs)),
                Err(e) if e.is_transient() && attempt <= CONNECT_RETRIES => {
                    log(
                        LogLevel::Warn,
                        &format!("Connect: {e}; trying again in {} ms", wait.as_millis()),
                    );
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                Err(e) if attempt > 1 => {
                    return Ok(Err(format!("{e}; gave up after {attempt} attempts")));
                }
                Err(e) => return Err(e),
            }
        }
    })??;
    let old = slots.borrow_mut()[id].vfs.replace(vfs.clone());
    if let Some(old) = old {
        let _ = block(scope, async move { old.close().await });
    }
    scope.log(LogLevel::Info, &format!("connected to {}", vfs.describe()));
    Ok(())
}

/// Note the outcome of a call on its client: log a failure and keep it for `LastError()`.
fn settle(
    scope: &JobScope,
    slots: &Slots,
    id: usize,
    method: &str,
    reply: Reply,
    fallback: Json,
) -> Json {
    let mut slots = slots.borrow_mut();
    let Some(slot) = slots.get_mut(id) else {
        return fallback;
    };
    match reply {
        Ok(v) => {
            slot.last_error.clear();
            v
        }
        Err(e) => {
            scope.log(LogLevel::Warn, &format!("{method}: {e}"));
            slot.last_error = e;
            fallback
        }
    }
}

/// The constants of the clients' calls and options, read-only globals.
const CONSTANTS: [(&str, i32); 10] = [
    ("LIST_ALL", 0),
    ("LIST_FILES", 1),
    ("LIST_DIRS", 2),
    ("TLS_MODE_NONE", 0),
    ("TLS_MODE_EXPLICIT", 1),
    ("TLS_MODE_IMPLICIT", 2),
    ("NeverOverwrite", 0),
    ("AlwaysOverwrite", 1),
    ("OverwriteIfDiffSize", 2),
    ("OverwriteIfNewer", 3),
];

/// Define the clients' constants now, and the client classes and `GetVFS` on first use.
pub(crate) fn register<'js>(
    ctx: &Ctx<'js>,
    scope: &JobScope,
    lazy: &mut LazyGlobals<'js>,
) -> rquickjs::Result<()> {
    let globals = ctx.globals();
    for (name, value) in CONSTANTS {
        globals.prop(name, Property::from(value))?;
    }
    let classes = aft_vfs::registry::types().map(|ty| ty.info.client.to_string());
    let scope = scope.clone();
    lazy.add(
        classes.chain(["GetVFS".to_string()]),
        move |ctx: &Ctx<'js>| define(ctx, &scope),
    );
    Ok(())
}

/// Define the client classes and `GetVFS`: the natives and the prelude over them.
fn define<'js>(ctx: &Ctx<'js>, scope: &JobScope) -> rquickjs::Result<()> {
    let slots: Slots = Rc::default();
    let native = Object::new(ctx.clone())?;

    let s = slots.clone();
    native.set(
        "create",
        Function::new(ctx.clone(), move |kind: String| {
            let mut slots = s.borrow_mut();
            slots.push(Slot {
                kind,
                vfs: None,
                last_error: String::new(),
            });
            (slots.len() - 1) as u32
        })?,
    )?;

    let (s, sc) = (slots.clone(), scope.clone());
    native.set(
        "connect",
        Function::new(ctx.clone(), move |id: u32, fields: String| {
            let reply = connect(&sc, &s, id as usize, &fields).map(|()| Json::Bool(true));
            settle(&sc, &s, id as usize, "Connect", reply, Json::Bool(false)) == Json::Bool(true)
        })?,
    )?;

    let s = slots.clone();
    native.set(
        "connected",
        Function::new(ctx.clone(), move |id: u32| {
            s.borrow().get(id as usize).is_some_and(|s| s.vfs.is_some())
        })?,
    )?;

    let (s, sc) = (slots.clone(), scope.clone());
    native.set(
        "close",
        Function::new(ctx.clone(), move |id: u32| {
            let vfs = s
                .borrow_mut()
                .get_mut(id as usize)
                .and_then(|s| s.vfs.take());
            let reply = match vfs {
                None => Ok(Json::Bool(true)),
                Some(vfs) => {
                    block(&sc, async move { vfs.close().await }).map(|()| Json::Bool(true))
                }
            };
            settle(&sc, &s, id as usize, "Close", reply, Json::Bool(false)) == Json::Bool(true)
        })?,
    )?;

    let s = slots.clone();
    native.set(
        "lastError",
        Function::new(ctx.clone(), move |id: u32| {
            s.borrow()
                .get(id as usize)
                .map(|s| s.last_error.clone())
                .unwrap_or_default()
        })?,
    )?;

    let (s, sc) = (slots.clone(), scope.clone());
    native.set(
        "call",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>,
                  id: u32,
                  method: String,
                  args: String,
                  options: String,
                  auto: Opt<Value<'js>>| {
                let id = id as usize;
                let value_method = matches!(
                    method.as_str(),
                    "ListDir" | "ListDirR" | "ListFiles" | "ListFilesR" | "Stat"
                );
                let fallback = if value_method {
                    Json::Null
                } else {
                    Json::Bool(false)
                };
                let reply = (|| {
                    let args = match serde_json::from_str::<Json>(&args) {
                        Ok(Json::Array(a)) => CallArgs(a),
                        _ => return Err("bad arguments".to_string()),
                    };
                    let options = match serde_json::from_str::<Json>(&options) {
                        Ok(Json::Object(m)) => m,
                        _ => return Err("Options must be a plain object".to_string()),
                    };
                    let auto_fields =
                        |v: Option<&Json>| v.and_then(Json::as_str).map(str::to_string);
                    let autos = auto
                        .0
                        .and_then(|v| v.as_string().and_then(|s| s.to_string().ok()));
                    let vfs = ensure_connected(&sc, &s, id, autos.as_deref())?;
                    let other = if method == "CopyTo" {
                        let other_id = args
                            .number(0)
                            .ok_or("the first argument must be another client")?
                            as usize;
                        Some(ensure_connected(
                            &sc,
                            &s,
                            other_id,
                            auto_fields(args.0.get(3)).as_deref(),
                        )?)
                    } else {
                        None
                    };
                    let call = Call {
                        scope: &sc,
                        vfs,
                        method: &method,
                        options,
                        pending_records: Arc::default(),
                    };
                    dispatch(&call, &args, other)
                })();
                to_js(&ctx, &settle(&sc, &s, id, &method, reply, fallback))
            },
        )?,
    )?;

    let sc = scope.clone();
    native.set(
        "entry",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, name: String| {
            match sc.host.vfs_entry(&name) {
                Ok(Json::Object(map)) => to_js(&ctx, &Json::Object(map)),
                Ok(_) => Err(Exception::throw_message(
                    &ctx,
                    &format!("GetVFS: VFS Library entry {name:?} is not an object"),
                )),
                Err(e) => Err(Exception::throw_message(&ctx, &format!("GetVFS: {e}"))),
            }
        })?,
    )?;

    static REGISTRY: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    let (fields, classes) =
        REGISTRY.get_or_init(|| (client_fields().to_string(), client_classes().to_string()));
    native.set("fields", fields.as_str())?;
    native.set("classes", classes.as_str())?;

    ctx.globals().set("__aft_clients", native)?;
    super::prelude::CLIENTS.eval::<()>(ctx)
}

/// The client's backend, connecting it first if it is not connected yet (`auto` holds the
/// client's fields: every client connects on first use).
fn ensure_connected(
    scope: &JobScope,
    slots: &Slots,
    id: usize,
    auto: Option<&str>,
) -> Result<Arc<dyn Vfs>, String> {
    if let Some(vfs) = slots.borrow().get(id).and_then(|s| s.vfs.clone()) {
        return Ok(vfs);
    }
    match auto {
        Some(fields) => {
            connect(scope, slots, id, fields)?;
            slots
                .borrow()
                .get(id)
                .and_then(|s| s.vfs.clone())
                .ok_or_else(|| "not connected".into())
        }
        None => Err("not connected: call Connect() first (and check that it returned true)".into()),
    }
}
