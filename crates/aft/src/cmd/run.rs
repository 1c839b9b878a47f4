//! `aft run -f FILE [-p JSON]`: run a SyncJS script to completion from the command line.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use aft_engine::{HaltFlag, JobScope, JobSpec, Limits, LogLevel, LogSink, Outcome, run_job};
use aft_store::{JobParams, JobStatus, NewJob, Store};
use tokio::signal::unix::{Signal, SignalKind, signal};

use super::fail;
use crate::global::{self, GlobalArgs};
use crate::local_job::{JobSettings, LocalJob};
use aft_server::host::StoreJobHost;

/// The message `aft run` gives when the administrator has not allowed it.
pub const REFUSED: &str = "aft run is disabled: an administrator can enable it with 'aft settings set allow-cli-run true' (or in the web UI under Settings)";

/// How long a halted job may take to stop before `aft run` exits anyway (a host call that
/// ignores the halt must not keep Ctrl-C from working).
pub const HALT_EXIT_WAIT: Duration = Duration::from_millis(900);

// Run a .syncjs script to completion; exit 0 on success, 1 if it fails, throws or is halted.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The .syncjs script to run
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: PathBuf,
    /// Parameters for Param(name): a flat JSON object such as '{"dest":"/archive"}'
    /// (AFT! v3's '[{"name":"dest","value":"/archive"}]' works too)
    #[arg(short = 'p', long = "params", value_name = "JSON")]
    params: Option<String>,
    /// Run up to the file systems only: reads happen, but nothing is written, renamed,
    /// deleted or sent; print the plan of what the script would have done
    #[arg(long)]
    dry_run: bool,
    /// With --dry-run: print the outcome and plan as one JSON document on standard output
    /// (the job's log goes to standard error)
    #[arg(long, requires = "dry_run")]
    json: bool,
}

/// How `aft run` runs a script: for real or as a dry run, and how it prints the plan.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunMode {
    /// A dry run.
    pub dry_run: bool,
    /// Print the outcome and plan as JSON on standard output; log lines on standard error.
    pub json: bool,
}

/// Run `aft run ...`.
pub fn execute(global: &GlobalArgs, args: Args) -> ExitCode {
    let source = match std::fs::read_to_string(&args.file) {
        Ok(source) => source,
        Err(e) => {
            return global::usage_failure(format!(
                "cannot read script {}: {e}",
                args.file.display()
            ));
        }
    };
    let params = match args.params.as_deref().map(parse_params).transpose() {
        Ok(params) => params.unwrap_or_default(),
        Err(e) => return global::usage_failure(e),
    };
    let spec = JobSpec {
        name: args.file.display().to_string(),
        source,
        params,
    };
    let mode = RunMode {
        dry_run: args.dry_run,
        json: args.json,
    };

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    runtime.block_on(async {
        // Listen before anything starts, so an early signal halts instead of killing.
        let mut signals = match HaltSignals::listen() {
            Ok(signals) => signals,
            Err(e) => return fail(format!("cannot listen for signals: {e}")),
        };
        // Delegation to a service running on this machine (spec §2), before the local
        // store is opened: the service runs the job with its VFS Library and secrets, and
        // this command streams the log and returns the job's exit code.
        if let Some(code) = crate::delegate::delegate(global, &spec, &mut signals, mode).await {
            return code;
        }
        run_locally(global, spec, signals, mode).await
    })
}

/// The signals that halt the job of `aft run`: SIGINT (Ctrl-C), SIGTERM and SIGHUP (the
/// terminal went away). Once listened for, they no longer end the process by themselves.
pub struct HaltSignals {
    int: Signal,
    term: Signal,
    hup: Signal,
}

impl HaltSignals {
    /// Start listening (inside a tokio runtime).
    pub fn listen() -> std::io::Result<HaltSignals> {
        Ok(HaltSignals {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Wait for the next of them; its name (`SIGINT`, ...).
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
            _ = self.hup.recv() => "SIGHUP",
        }
    }
}

/// Run the job in this process against the store named by the global options.
async fn run_locally(
    global: &GlobalArgs,
    spec: JobSpec,
    signals: HaltSignals,
    mode: RunMode,
) -> ExitCode {
    if global.database.is_none()
        && let Err(e) = aft_store::create_data_dir(&global.data_dir())
    {
        return fail(e);
    }
    // A run's close would otherwise fold the WAL into the database file: 4 fsyncs per run.
    aft_store::leave_wal_on_close();
    let store = match Store::open(&global.database_url()).await {
        Ok(store) => store,
        Err(e) => return fail(e),
    };
    let code = run_with_store(global, &store, spec, signals, mode).await;
    store.close().await;
    code
}

async fn run_with_store(
    global: &GlobalArgs,
    store: &Store,
    spec: JobSpec,
    mut signals: HaltSignals,
    mode: RunMode,
) -> ExitCode {
    let settings: HashMap<String, String> = match store.list_settings().await {
        Ok(list) => list
            .into_iter()
            .map(|s| (s.key.to_string(), s.value))
            .collect(),
        Err(e) => return fail(format!("cannot read settings: {e}")),
    };
    if settings.get("allow-cli-run").map(String::as_str) != Some("true") {
        return fail(REFUSED);
    }
    aft_vfs::local::set_fsync(settings.get("local-fsync").map(String::as_str) != Some("false"));
    let limits = match Limits::from_settings(|key| settings.get(key).cloned()) {
        Ok(limits) => limits,
        Err(e) => return fail(e),
    };

    // The job's record, as a delegated run gets one. A store that cannot take it stops the
    // run before the script starts: a job that ran without a trace is worse than a clear
    // failure the caller (cron, CI) sees.
    let new_job = NewJob {
        file_path: Some(spec.name.clone()),
        source: spec.source.clone(),
        params: JobParams::from(spec.params.clone()),
        origin: "cli".into(),
        started_by: Some("aft run".into()),
        ..NewJob::default()
    };
    let job_settings = match aft_store::Settings::from_values(&settings) {
        Ok(typed) => JobSettings::of(&typed),
        Err(e) => return fail(format!("cannot read settings: {e}")),
    };
    let job = match LocalJob::start(store, &new_job, mode.dry_run, job_settings).await {
        Ok(job) => job,
        Err(e) => return fail(format!("cannot record the job in the store: {e}")),
    };

    let terminal = if mode.json {
        terminal_log_to(Stream::Stderr)
    } else {
        terminal_log()
    };
    let log = job.tee(terminal.clone());
    let halt = HaltFlag::new();
    let base = StoreJobHost::loading_key_from(
        store.clone(),
        global.data_dir(),
        tokio::runtime::Handle::current(),
    );
    let mut host: Arc<dyn aft_engine::JobHost> = Arc::new(RecordedHost {
        recorded: base.for_job(job.id(), log.clone()),
        echo: base.logging_to(terminal),
    });
    let dry_run = mode.dry_run.then(aft_vfs::dry_run::DryRun::new);
    if let Some(run) = &dry_run {
        host = Arc::new(aft_engine::api::dry_run::DryRunHost::new(host, run.clone()));
        log(
            LogLevel::Info,
            "dry run: reads happen, but nothing is written, renamed, deleted or sent; the plan follows at the end",
        );
    }
    let scope = JobScope {
        host,
        log: log.clone(),
        halt: halt.clone(),
        tokio: tokio::runtime::Handle::current(),
    };

    let (done_tx, mut done_rx) = tokio::sync::oneshot::channel::<Outcome>();
    let started = std::thread::Builder::new()
        .name("aft-run".into())
        .spawn(move || {
            let _ = done_tx.send(run_job(spec, scope, limits));
        });
    if let Err(e) = started {
        let message = format!("cannot start the job thread: {e}");
        job.finish(JobStatus::Failed, Some(1), Some(&message)).await;
        return fail(message);
    }

    let halt_asked = tokio::sync::Notify::new();
    let stop = tokio::select! {
        outcome = &mut done_rx => Err(outcome.ok()),
        name = signals.recv() => Ok(format!("{name} received: halting the job")),
        () = halt_asked.notified() => {
            Ok("halt requested (aft jobs halt, the API or the web UI): halting the job".to_string())
        }
        never = job.keep_lease(|| halt_asked.notify_one()) => match never {},
    };
    let stop = match stop {
        Ok(stop) => stop,
        Err(outcome) => return end(job, outcome, dry_run.as_deref(), mode, &log).await,
    };
    log(LogLevel::Warn, &stop);
    halt.raise();
    match tokio::time::timeout(HALT_EXIT_WAIT, done_rx).await {
        Ok(outcome) => end(job, outcome.ok(), dry_run.as_deref(), mode, &log).await,
        Err(_) => {
            let message = "halted: the job did not stop in time; exiting anyway";
            log(LogLevel::Error, message);
            job.finish(JobStatus::Halted, Some(1), Some(message)).await;
            ExitCode::from(global::EXIT_FAILURE)
        }
    }
}

/// Report the job's end: the plan of a dry run (printed and stored), the job's record, and
/// the exit code.
async fn end(
    job: LocalJob,
    outcome: Option<Outcome>,
    dry_run: Option<&aft_vfs::dry_run::DryRun>,
    mode: RunMode,
    log: &LogSink,
) -> ExitCode {
    if let Some(run) = dry_run {
        let plan = run.plan();
        print_plan(&plan, outcome.as_ref(), mode, log, job.id());
        if mode.json {
            // Not printed as lines, but the stored log ends with them as a service's does.
            for line in plan.lines() {
                job.log(LogLevel::Info, &line);
            }
        }
        let json = serde_json::to_string(&plan).unwrap_or_default();
        if let Err(e) = job.store().save_dry_run_plan(job.id(), &json).await {
            eprintln!("warning: cannot store the plan of job {}: {e}", job.id());
        }
    }
    let (status, exit_code, error) = match &outcome {
        Some(outcome) => (
            JobStatus::parse(outcome.status()).unwrap_or(JobStatus::Failed),
            i64::from(outcome.exit_code()),
            (!outcome.is_success()).then(|| outcome.to_string()),
        ),
        None => (
            JobStatus::Failed,
            1,
            Some("the job thread ended without an outcome".to_string()),
        ),
    };
    job.finish(status, Some(exit_code), error.as_deref()).await;
    exit_for(outcome)
}

/// The host of a recorded `aft run`: transfers are recorded under the job (as a service's
/// job's are) and still printed on the terminal, as `aft run` always did.
struct RecordedHost {
    recorded: StoreJobHost,
    echo: StoreJobHost,
}

impl aft_engine::JobHost for RecordedHost {
    fn secret(&self, name: &str) -> Option<String> {
        self.recorded.secret(name)
    }

    fn vfs_entry(&self, name: &str) -> Result<serde_json::Value, String> {
        self.recorded.vfs_entry(name)
    }

    fn setting(&self, key: &str) -> Option<String> {
        self.recorded.setting(key)
    }

    fn record_transfers(&self, records: Vec<aft_engine::TransferRecord>) {
        self.echo.record_transfers(records.clone());
        self.recorded.record_transfers(records);
    }

    fn watch_state_load(&self, key: &str) -> Result<Vec<aft_engine::SeenEntry>, String> {
        self.recorded.watch_state_load(key)
    }

    fn watch_state_save(
        &self,
        key: &str,
        changed: &[aft_engine::SeenEntry],
        removed: &[String],
    ) -> Result<(), String> {
        self.recorded.watch_state_save(key, changed, removed)
    }

    fn set_result(&self, value: &str) -> Result<(), String> {
        self.recorded.set_result(value)
    }

    fn dry_run(&self) -> Option<Arc<aft_vfs::dry_run::DryRun>> {
        self.recorded.dry_run()
    }
}

/// 0 when the job succeeded, 1 otherwise (the engine has already logged why).
fn exit_for(outcome: Option<Outcome>) -> ExitCode {
    match outcome {
        Some(outcome) if outcome.is_success() => ExitCode::SUCCESS,
        Some(_) => ExitCode::from(global::EXIT_FAILURE),
        None => fail("the job thread ended without an outcome"),
    }
}

/// A dry run's plan: its lines in the log, or with `--json` one document on standard output
/// (`jobId`, `status`, `exitCode`, `dryRun`, `plan`, as a delegated run prints it).
fn print_plan(
    plan: &aft_vfs::dry_run::Plan,
    outcome: Option<&Outcome>,
    mode: RunMode,
    log: &LogSink,
    job_id: &str,
) {
    if mode.json {
        let doc = serde_json::json!({
            "jobId": job_id,
            "status": outcome.map_or("failed", |o| o.status()),
            "exitCode": outcome.map_or(1, |o| o.exit_code()),
            "dryRun": true,
            "plan": plan,
        });
        outln!("{doc}");
    } else {
        for line in plan.lines() {
            log(LogLevel::Info, &line);
        }
    }
}

/// Where a terminal log writes.
#[derive(Debug, Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

/// A log sink printing `TIMESTAMP LEVEL message` lines on standard output.
fn terminal_log() -> LogSink {
    terminal_log_to(Stream::Stdout)
}

/// A log sink printing `TIMESTAMP LEVEL message` lines on `stream`.
fn terminal_log_to(stream: Stream) -> LogSink {
    Arc::new(move |level: LogLevel, message: &str| {
        let at = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
        let tag = match level {
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO ",
            LogLevel::Warn => "WARN ",
            LogLevel::Error => "ERROR",
        };
        let mut out: Box<dyn Write> = match stream {
            Stream::Stdout => Box::new(crate::global::Output),
            Stream::Stderr => Box::new(std::io::stderr().lock()),
        };
        // One write per message, so that its lines stay together.
        use std::fmt::Write as _;
        let mut text = String::new();
        for line in message.lines() {
            let _ = writeln!(text, "{at} {tag} {line}");
        }
        if message.is_empty() {
            let _ = writeln!(text, "{at} {tag} ");
        }
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    })
}

/// Parse `-p` with the parser every entry point shares; the error names the option.
pub fn parse_params(text: &str) -> Result<BTreeMap<String, String>, String> {
    super::params_arg(text)
        .map(aft_store::JobParams::into_map)
        .map_err(|e| e.to_string())
}
