//! `aft ls LOCATION` and `aft cp SRC DST`: one-off listings and transfers without writing a
//! script. A location is a local path or `ENTRY:/path` on a VFS Library entry (rclone's
//! habit). `aft cp` goes through the transfer code a script's `Upload`, `Download` and
//! `CopyTo` use (policy, temp names, resume, verification, retries) and is recorded as a job
//! (origin `cli`) with its log and a transfer record per file, so it shows in the job
//! history beside the scripts' jobs.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aft_engine::LogLevel;
use aft_server::vfs_library::open_entry;
use aft_store::{JobStatus, NewJob, NewTransfer, Store};
use aft_vfs::local::LocalFs;
use aft_vfs::transfer::{
    self, Outcome, TransferOptions, TransferOutcome, TransferPolicy, TransferSummary,
};
use aft_vfs::{Vfs, file_name, normalize, parent};
use futures::TryStreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::json;

use super::run::{HaltSignals, REFUSED};
use super::{print_json, run_async};
use crate::global::GlobalArgs;
use crate::local_job::{JobSettings, LocalJob};

// List a folder on a VFS Library entry or on local disk
#[derive(clap::Args, Debug)]
pub struct LsArgs {
    /// `ENTRY:/path` of the VFS Library, or a local path (write `./a:b` for a local name
    /// holding a colon)
    #[arg(value_name = "LOCATION")]
    location: String,
    /// List subfolders too, depth first
    #[arg(short = 'R', long)]
    recursive: bool,
    /// Print a JSON array of entries instead of lines
    #[arg(long)]
    json: bool,
}

/// What `--policy` may say: AFT!'s overwrite policies.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum PolicyArg {
    /// Replace an existing target
    Always,
    /// Keep an existing target (the file is skipped)
    Never,
    /// Replace it when the sizes differ
    DiffSize,
    /// Replace it when the source is newer
    Newer,
}

impl From<PolicyArg> for TransferPolicy {
    fn from(p: PolicyArg) -> TransferPolicy {
        match p {
            PolicyArg::Always => TransferPolicy::AlwaysOverwrite,
            PolicyArg::Never => TransferPolicy::NeverOverwrite,
            PolicyArg::DiffSize => TransferPolicy::OverwriteIfDiffSize,
            PolicyArg::Newer => TransferPolicy::OverwriteIfNewer,
        }
    }
}

// Copy files between local disk and VFS Library entries, recorded as a job
#[derive(clap::Args, Debug)]
pub struct CpArgs {
    /// What to copy: a file, a folder or a glob such as `in/*.csv`, as `ENTRY:/path` or a
    /// local path
    #[arg(value_name = "SRC")]
    src: String,
    /// Where to: a folder (the names are kept) or, for one file, the target file's path
    /// (end it with `/` to mean a folder that does not exist yet)
    #[arg(value_name = "DST")]
    dst: String,
    /// Copy subfolders too
    #[arg(short = 'r', long)]
    recursive: bool,
    /// What to do with a target that exists
    #[arg(long, value_enum, default_value = "always")]
    policy: PolicyArg,
    /// Files copied at once [default: 4; to or from an object store, up to 16 of those
    /// under 1 MiB]
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    parallel: Option<u16>,
    /// Print the outcome as JSON (no progress bar)
    #[arg(long)]
    json: bool,
    /// No progress bar, even on a terminal
    #[arg(long)]
    no_progress: bool,
}

/// One side of a listing or a copy.
struct Side {
    vfs: Arc<dyn Vfs>,
    path: String,
}

/// `ENTRY:/path` or a local path.
#[derive(Debug, PartialEq, Eq)]
enum Location {
    Entry { name: String, path: String },
    Local(String),
}

fn parse_location(text: &str) -> Location {
    match text.split_once(':') {
        Some((name, rest)) if !name.is_empty() && !name.contains('/') => {
            let mut path = normalize(if rest.is_empty() { "/" } else { rest });
            // A trailing `/` says "into this folder" to `aft cp`.
            if rest.ends_with('/') && path != "/" {
                path.push('/');
            }
            Location::Entry {
                name: name.to_string(),
                path,
            }
        }
        _ => Location::Local(text.to_string()),
    }
}

/// Open a location; a local path becomes absolute on a file system rooted at `/`.
async fn open_side(store: &Store, data_dir: &Path, text: &str) -> anyhow::Result<Side> {
    match parse_location(text) {
        Location::Entry { name, path } => {
            let (_, vfs) = open_entry(store, data_dir, &name).await?;
            Ok(Side { vfs, path })
        }
        Location::Local(path) => {
            let trailing = path.ends_with('/') && path.len() > 1;
            let abs = std::path::absolute(&path)
                .map_err(|e| anyhow::anyhow!("{path}: {e}"))?
                .to_string_lossy()
                .into_owned();
            let mut path = normalize(&abs);
            if trailing {
                path.push('/');
            }
            Ok(Side {
                vfs: Arc::new(LocalFs::new("/")),
                path,
            })
        }
    }
}

/// Open the store, check that the administrator allows the CLI to run transfers, and
/// run `work`. Unlike [`super::with_store`] this leaves no audit record: a copy is
/// recorded as a job of origin `cli`, and it must not hold the audit trail's CLI lock for
/// as long as it runs.
fn with_allowed_store<F, Fut>(global: &GlobalArgs, work: F) -> ExitCode
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    let at = super::StoreAt::of(global);
    let failed = Arc::new(AtomicBool::new(false));
    let failed_in = failed.clone();
    let code = run_async(async move {
        let store = at.open().await?;
        let allowed = store
            .get_setting("allow-cli-run")
            .await
            .map(|s| s.value == "true");
        if let Ok(fsync) = store.get_setting("local-fsync").await {
            aft_vfs::local::set_fsync(fsync.value != "false");
        }
        let outcome = match allowed {
            Ok(true) => work(store.clone()).await,
            Ok(false) => Err(anyhow::anyhow!(REFUSED)),
            Err(e) => Err(e.into()),
        };
        store.close().await;
        failed_in.store(!outcome?, Ordering::SeqCst);
        Ok(())
    });
    if code == ExitCode::SUCCESS && failed.load(Ordering::SeqCst) {
        return ExitCode::from(crate::global::EXIT_FAILURE);
    }
    code
}

/// One listed entry as `--json` prints it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Listed {
    name: String,
    path: String,
    is_dir: bool,
    size: u64,
    mtime: Option<String>,
}

/// Run `aft ls ...`.
pub fn ls(global: &GlobalArgs, args: LsArgs) -> ExitCode {
    let data_dir = global.data_dir();
    with_allowed_store(global, |store| async move {
        let mut side = open_side(&store, &data_dir, &args.location).await?;
        side.path = normalize(&side.path);
        let at = side.vfs.stat(&side.path).await?;
        let mut listed = Vec::new();
        let mut show = |e: aft_vfs::Entry| {
            let mtime = e.mtime.map(|t| t.to_rfc3339());
            let shown_time = e.mtime.as_ref().map(super::show_time);
            if args.json {
                listed.push(Listed {
                    name: e.name,
                    path: e.path,
                    is_dir: e.is_dir,
                    size: e.size,
                    mtime,
                });
            } else {
                let kind = if e.is_dir { "d" } else { "-" };
                let shown = if args.recursive { &e.path } else { &e.name };
                let slash = if e.is_dir { "/" } else { "" };
                outln!(
                    "{kind} {:>14} {:<20} {shown}{slash}",
                    e.size,
                    shown_time.as_deref().unwrap_or("-")
                );
            }
        };
        if !at.is_dir {
            show(at);
        } else if args.recursive {
            let mut entries = aft_vfs::walk(side.vfs.as_ref(), &side.path);
            while let Some(e) = entries.try_next().await? {
                show(e);
            }
        } else {
            // Printed as the listing streams in: a folder of a million files is not
            // collected first.
            let mut entries = side.vfs.list(&side.path).await?;
            while let Some(e) = entries.try_next().await? {
                show(e);
            }
        }
        if args.json {
            print_json(&listed)?;
        }
        let _ = side.vfs.close().await;
        Ok(true)
    })
}

/// Which copy `aft cp` makes.
enum Plan {
    /// Files of a folder or glob into a folder, names kept.
    Tree { dst_dir: String },
    /// One file to an exact target path.
    File { dst_path: String },
}

/// Run `aft cp ...`.
pub fn cp(global: &GlobalArgs, args: CpArgs) -> ExitCode {
    let data_dir = global.data_dir();
    with_allowed_store(global, |store| async move {
        let mut signals = HaltSignals::listen()?;
        let mut src = open_side(&store, &data_dir, &args.src).await?;
        src.path = normalize(&src.path);
        let dst = open_side(&store, &data_dir, &args.dst).await?;
        let plan = plan(&src, &dst).await?;
        let command = format!("aft cp {} {}", args.src, args.dst);
        let job = LocalJob::start(
            &store,
            &NewJob {
                script_name: Some("aft cp".into()),
                source: command.clone(),
                origin: "cli".into(),
                started_by: Some("aft cp".into()),
                ..NewJob::default()
            },
            false,
            JobSettings::read(&store).await?,
        )
        .await?;
        job.log(LogLevel::Info, &command);

        let bar = (!args.json
            && !args.no_progress
            && std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .then(|| progress_bar(&src, args.recursive));
        let bar = match bar {
            Some(bar) => Some(bar.await),
            None => None,
        };
        let cancel = Arc::new(AtomicBool::new(false));
        let cancelled = cancel.clone();
        let ticks = bar.clone();
        let defaults = TransferOptions::default();
        let opts = TransferOptions {
            policy: args.policy.into(),
            recursive: args.recursive,
            // Set, it is the number of files at once, small or not.
            parallel: args.parallel.map_or(defaults.parallel, usize::from),
            small_parallel: args.parallel.map_or(defaults.small_parallel, usize::from),
            cancel: Some(Arc::new(move || cancelled.load(Ordering::SeqCst))),
            progress: ticks.map(|bar| Arc::new(move |n: u64| bar.inc(n)) as transfer::ProgressHook),
            ..defaults
        };

        let started = Instant::now();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<TransferOutcome>();
        let copy = async {
            let sink = move |o: &TransferOutcome| {
                let _ = tx.send(o.clone());
            };
            copy(&src, &dst, &plan, &opts, &sink).await
        };
        let mut files = Vec::new();
        let record = async {
            // Every outcome waiting when the recorder wakes is recorded in one write.
            let mut ready = Vec::new();
            while rx.recv_many(&mut ready, usize::MAX).await > 0 {
                for o in &ready {
                    let (level, line) = outcome_line(o);
                    match &bar {
                        Some(bar) => bar.println(&line),
                        None if !args.json => outln!("{line}"),
                        None => {}
                    }
                    job.log(level, &line);
                }
                let records: Vec<NewTransfer> = ready.iter().map(record_of).collect();
                if let Err(e) = store.record_transfers(job.id(), &records).await {
                    eprintln!(
                        "warning: cannot record the transfers of job {}: {e}",
                        job.id()
                    );
                }
                files.append(&mut ready);
            }
        };
        // Keep the job's lease, and halt on a signal or a halt asked from the API or UI.
        let keeper = async {
            let lease = job.keep_lease(|| cancel.store(true, Ordering::SeqCst));
            tokio::pin!(lease);
            loop {
                tokio::select! {
                    never = &mut lease => match never {},
                    name = signals.recv() => {
                        eprintln!("{name} received: halting the copy");
                        cancel.store(true, Ordering::SeqCst);
                    }
                }
            }
        };
        let result = tokio::select! {
            (result, ()) = async { tokio::join!(copy, record) } => result,
            () = keeper => unreachable!("the keeper loops until the copy ends"),
        };
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
        let _ = src.vfs.close().await;
        let _ = dst.vfs.close().await;

        let halted = cancel.load(Ordering::SeqCst);
        let (status, error) = match &result {
            Err(_) if halted => (JobStatus::Halted, Some("halted".to_string())),
            Err(e) => (JobStatus::Failed, Some(e.to_string())),
            Ok(summary) if !summary.all_ok() => (JobStatus::Failed, summary.first_error.clone()),
            Ok(_) => (JobStatus::Succeeded, None),
        };
        let summary = result.unwrap_or_default();
        let took = started.elapsed();
        let line = format!(
            "{} copied, {} skipped, {} failed, {} bytes in {:.1} s",
            summary.transferred,
            summary.skipped,
            summary.failed,
            summary.bytes,
            took.as_secs_f64()
        );
        job.log(
            if status == JobStatus::Succeeded {
                LogLevel::Info
            } else {
                LogLevel::Error
            },
            &match &error {
                Some(e) => format!("{line}: {e}"),
                None => line.clone(),
            },
        );
        let exit_code = i64::from(status != JobStatus::Succeeded);
        let job_id = job.id().to_string();
        job.finish(status, Some(exit_code), error.as_deref()).await;
        if args.json {
            print_json(&json!({
                "job": job_id,
                "status": status,
                "transferred": summary.transferred,
                "skipped": summary.skipped,
                "failed": summary.failed,
                "bytes": summary.bytes,
                "millis": u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
                "error": error,
                "files": files,
            }))?;
        } else {
            outln!("{line} (job {job_id})");
            if let Some(e) = &error {
                eprintln!("error: {e}");
            }
        }
        Ok(status == JobStatus::Succeeded)
    })
}

/// Decide between a folder copy and a one-file copy, as `cp` does: a file copied onto a
/// path that is not a folder (and does not end in `/`) gets that path as its name.
async fn plan(src: &Side, dst: &Side) -> anyhow::Result<Plan> {
    let into_folder = dst.path.ends_with('/');
    let dst_path = normalize(&dst.path);
    let glob = src.path.contains(['*', '?', '[']);
    let src_is_file = !glob
        && !src
            .vfs
            .stat(&src.path)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .is_dir;
    if !src_is_file || into_folder {
        return Ok(Plan::Tree { dst_dir: dst_path });
    }
    match dst.vfs.stat(&dst_path).await {
        Ok(e) if e.is_dir => Ok(Plan::Tree { dst_dir: dst_path }),
        _ => Ok(Plan::File { dst_path }),
    }
}

async fn copy(
    src: &Side,
    dst: &Side,
    plan: &Plan,
    opts: &TransferOptions,
    sink: transfer::OutcomeSink<'_>,
) -> aft_vfs::VfsResult<TransferSummary> {
    match plan {
        Plan::Tree { dst_dir } => {
            transfer::copy_tree(
                src.vfs.as_ref(),
                &src.path,
                dst.vfs.as_ref(),
                dst_dir,
                opts,
                sink,
            )
            .await
        }
        Plan::File { dst_path } => {
            dst.vfs.mkdir_all(&parent(dst_path)).await?;
            let o = transfer::copy_file(
                src.vfs.as_ref(),
                &src.path,
                dst.vfs.as_ref(),
                dst_path,
                opts,
                sink,
            )
            .await;
            let mut summary = TransferSummary::default();
            summary.add(&o);
            Ok(summary)
        }
    }
}

/// A bar with bytes, rate and ETA when the total is known (a file, or a folder's files,
/// summed from a listing first), else a counter of bytes and rate (a glob).
async fn progress_bar(src: &Side, recursive: bool) -> ProgressBar {
    let total = match src.vfs.stat(&src.path).await {
        Ok(e) if !e.is_dir => Some(e.size),
        Ok(_) => folder_size(src, recursive).await,
        Err(_) => None,
    };
    let name = file_name(&src.path).to_string();
    let bar = match total {
        Some(total) => {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar
        }
        None => {
            let bar = ProgressBar::no_length();
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {msg} {bytes} {binary_bytes_per_sec} {elapsed}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar
        }
    };
    bar.set_message(name);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// The bytes of the files a folder copy takes; `None` if the listing fails.
async fn folder_size(src: &Side, recursive: bool) -> Option<u64> {
    let entries = if recursive {
        aft_vfs::walk(src.vfs.as_ref(), &src.path)
    } else {
        src.vfs.list(&src.path).await.ok()?
    };
    entries
        .try_fold(0u64, |sum, e| async move {
            Ok(if e.is_dir { sum } else { sum + e.size })
        })
        .await
        .ok()
}

fn outcome_line(o: &TransferOutcome) -> (LogLevel, String) {
    match &o.outcome {
        Outcome::Ok => (
            LogLevel::Info,
            format!("copied {} -> {} ({} bytes)", o.source, o.target, o.bytes),
        ),
        Outcome::Skipped(why) => (LogLevel::Info, format!("skipped {}: {why}", o.target)),
        Outcome::Failed(e) => (
            LogLevel::Warn,
            format!("failed {} -> {}: {e}", o.source, o.target),
        ),
    }
}

fn record_of(o: &TransferOutcome) -> NewTransfer {
    aft_server::host::stored_transfer(aft_engine::TransferRecord::from(o))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_locations_need_a_name_before_the_colon_and_no_slash() {
        assert_eq!(
            parse_location("partner:/in/a.csv"),
            Location::Entry {
                name: "partner".into(),
                path: "/in/a.csv".into()
            }
        );
        assert_eq!(
            parse_location("partner:"),
            Location::Entry {
                name: "partner".into(),
                path: "/".into()
            }
        );
        assert_eq!(
            parse_location("partner:in"),
            Location::Entry {
                name: "partner".into(),
                path: "/in".into()
            }
        );
        assert_eq!(
            parse_location("partner:/in/"),
            Location::Entry {
                name: "partner".into(),
                path: "/in/".into()
            }
        );
        assert_eq!(parse_location("./a:b"), Location::Local("./a:b".into()));
        assert_eq!(parse_location("/srv/in"), Location::Local("/srv/in".into()));
        assert_eq!(parse_location(":x"), Location::Local(":x".into()));
    }
}
