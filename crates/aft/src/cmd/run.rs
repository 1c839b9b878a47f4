//! `aft run -f FILE [-p JSON]`: run a SyncJS script to completion from the command line.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use aft_engine::{HaltFlag, JobScope, JobSpec, Limits, LogLevel, LogSink, Outcome, run_job};
use aft_store::Store;

use super::fail;
use crate::global::{self, GlobalArgs};
use crate::local_host::LocalHost;

/// The message `aft run` gives when the administrator has not allowed it.
pub const REFUSED: &str = "aft run is disabled: an administrator can enable it with 'aft settings set allow-cli-run true' (or in the web UI under Settings)";

/// How long a halted job may take to stop before `aft run` exits anyway (a host call that
/// ignores the halt must not keep Ctrl-C from working).
const HALT_EXIT_WAIT: Duration = Duration::from_millis(900);

/// Run a .syncjs script to completion; exit 0 on success, 1 if it fails, throws or is halted.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The .syncjs script to run
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: PathBuf,
    /// Parameters for Param(name): a flat JSON object such as '{"dest":"/archive"}'
    /// (AFT! v3's '[{"name":"dest","value":"/archive"}]' works too)
    #[arg(short = 'p', long = "params", value_name = "JSON")]
    params: Option<String>,
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

    // Delegation to a service running on this machine (spec §2), before the local store is
    // opened: the service runs the job with its VFS Library and secrets, and this command
    // streams the log and returns the job's exit code.
    if let Some(code) = crate::delegate::delegate(global, &spec.name, &spec.source, &spec.params) {
        return code;
    }

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    runtime.block_on(run_locally(global, spec))
}

/// Run the job in this process against the store named by the global options.
async fn run_locally(global: &GlobalArgs, spec: JobSpec) -> ExitCode {
    if global.database.is_none() {
        let dir = global.data_dir();
        if let Err(e) = std::fs::create_dir_all(&dir) {
            return fail(format!(
                "cannot create data directory {}: {e}",
                dir.display()
            ));
        }
    }
    let store = match Store::open(&global.database_url()).await {
        Ok(store) => store,
        Err(e) => return fail(e),
    };
    let code = run_with_store(global, &store, spec).await;
    store.close().await;
    code
}

async fn run_with_store(global: &GlobalArgs, store: &Store, spec: JobSpec) -> ExitCode {
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
    let limits = match Limits::from_settings(|key| settings.get(key).cloned()) {
        Ok(limits) => limits,
        Err(e) => return fail(e),
    };

    let log = terminal_log();
    let halt = HaltFlag::new();
    let host = LocalHost::new(
        store.clone(),
        tokio::runtime::Handle::current(),
        global.data_dir(),
        settings,
        log.clone(),
    );
    let scope = JobScope {
        host: Arc::new(host),
        log: log.clone(),
        halt: halt.clone(),
        tokio: tokio::runtime::Handle::current(),
    };

    // Listen before the job starts, so an early Ctrl-C is not lost.
    use tokio::signal::unix::{SignalKind, signal};
    let (mut sigint, mut sigterm) = match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(i), Ok(t)) => (i, t),
        (Err(e), _) | (_, Err(e)) => return fail(format!("cannot listen for signals: {e}")),
    };

    let (done_tx, mut done_rx) = tokio::sync::oneshot::channel::<Outcome>();
    let started = std::thread::Builder::new()
        .name("aft-run".into())
        .spawn(move || {
            let _ = done_tx.send(run_job(spec, scope, limits));
        });
    if let Err(e) = started {
        return fail(format!("cannot start the job thread: {e}"));
    }

    let signal_name = tokio::select! {
        outcome = &mut done_rx => return exit_for(outcome.ok()),
        _ = sigint.recv() => "SIGINT",
        _ = sigterm.recv() => "SIGTERM",
    };
    log(
        LogLevel::Warn,
        &format!("{signal_name} received: halting the job"),
    );
    halt.raise();
    match tokio::time::timeout(HALT_EXIT_WAIT, done_rx).await {
        Ok(outcome) => exit_for(outcome.ok()),
        Err(_) => {
            log(
                LogLevel::Error,
                "halted: the job did not stop in time; exiting anyway",
            );
            ExitCode::from(global::EXIT_FAILURE)
        }
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

/// A log sink printing `TIMESTAMP LEVEL message` lines on standard output.
fn terminal_log() -> LogSink {
    Arc::new(|level: LogLevel, message: &str| {
        let at = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
        let tag = match level {
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO ",
            LogLevel::Warn => "WARN ",
            LogLevel::Error => "ERROR",
        };
        let mut out = std::io::stdout().lock();
        for line in message.lines() {
            let _ = writeln!(out, "{at} {tag} {line}");
        }
        if message.is_empty() {
            let _ = writeln!(out, "{at} {tag} ");
        }
        let _ = out.flush();
    })
}

/// Parse `-p`: a flat JSON object of strings, numbers and booleans, or AFT! v3's array of
/// `{"name": .., "value": ..}`; numbers and booleans become their JSON text.
pub fn parse_params(text: &str) -> Result<BTreeMap<String, String>, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        format!("--params is not valid JSON ({e}): expected '{{\"name\":\"value\"}}'")
    })?;
    let scalar = |name: &str, v: &serde_json::Value| match v {
        serde_json::Value::String(s) => Ok(s.clone()),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        serde_json::Value::Bool(b) => Ok(b.to_string()),
        _ => Err(format!(
            "--params: the value of {name:?} must be a string, number or true/false (parameters are a flat JSON object)"
        )),
    };
    let mut params = BTreeMap::new();
    match value {
        serde_json::Value::Object(map) => {
            for (name, v) in &map {
                params.insert(name.clone(), scalar(name, v)?);
            }
        }
        serde_json::Value::Array(items) => {
            for item in &items {
                let pair = item.as_object().filter(|o| o.len() == 2);
                let name = pair.and_then(|o| o.get("name")).and_then(|n| n.as_str());
                let value = pair.and_then(|o| o.get("value"));
                let (Some(name), Some(value)) = (name, value) else {
                    return Err(format!(
                        "--params: array items must be {{\"name\": \"...\", \"value\": ...}}, got {item}"
                    ));
                };
                params.insert(name.to_string(), scalar(name, value)?);
            }
        }
        _ => {
            return Err(
                "--params must be a flat JSON object such as '{\"dest\":\"/archive\"}'".to_string(),
            );
        }
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::parse_params;

    #[test]
    fn params_accept_flat_object_and_v3_array() {
        let p = parse_params(r#"{"dest":"/a","n":3,"on":true}"#).unwrap();
        assert_eq!(p["dest"], "/a");
        assert_eq!(p["n"], "3");
        assert_eq!(p["on"], "true");
        let p = parse_params(r#"[{"name":"dest","value":"/b"},{"name":"n","value":1.5}]"#).unwrap();
        assert_eq!(p["dest"], "/b");
        assert_eq!(p["n"], "1.5");
    }

    #[test]
    fn params_reject_nesting_null_and_non_objects() {
        for bad in [
            r#"{"a":{"b":1}}"#,
            r#"{"a":null}"#,
            r#"{"a":[1]}"#,
            "42",
            "\"x\"",
            "{",
            r#"[{"name":"a"}]"#,
        ] {
            let e = parse_params(bad).unwrap_err();
            assert!(e.starts_with("--params"), "{bad}: {e}");
        }
    }
}
