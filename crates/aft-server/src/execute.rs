//! Running one claimed job through the engine and turning its outcome into a job status.

use std::collections::HashMap;

use aft_engine::{JobScope, Limits, Outcome, run_job};
use aft_store::{Job, JobStatus};

/// How a job's run ended, in store terms.
#[derive(Debug, Clone)]
pub struct Ended {
    /// `succeeded`, `failed` or `halted`.
    pub status: JobStatus,
    /// The script's exit code, when it got that far.
    pub exit_code: Option<i64>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

impl Ended {
    /// A failure that happened before or around the script (not its own exit).
    pub fn failed(error: String) -> Ended {
        Ended {
            status: JobStatus::Failed,
            exit_code: Some(1),
            error: Some(error),
        }
    }
}

/// A display name for the job's script (used in error positions and stack traces).
fn script_file_name(job: &Job) -> String {
    if let Some(path) = &job.file_path {
        return path.clone();
    }
    match &job.script_name {
        Some(name) if name.ends_with(".syncjs") => name.clone(),
        Some(name) => format!("{name}.syncjs"),
        None => "script.syncjs".to_string(),
    }
}

/// Run `job` to its end on the calling (blocking) thread. `settings` are every setting's
/// text value when the caller has read them already; otherwise the limits are read through
/// the job's host.
pub fn run(job: &Job, scope: JobScope, settings: Option<&HashMap<String, String>>) -> Ended {
    let host = scope.host.clone();
    let limits = match settings {
        Some(settings) => Limits::from_settings(|key| settings.get(key).cloned()),
        None => Limits::from_settings(|key| host.setting(key)),
    };
    let limits = match limits {
        Ok(limits) => limits,
        Err(e) => {
            let message = format!("cannot start the job: {e}");
            scope.log(aft_engine::LogLevel::Error, &message);
            return Ended::failed(message);
        }
    };
    let spec = aft_engine::JobSpec {
        name: script_file_name(job),
        source: job.source.clone(),
        params: job.params.clone().into_map(),
    };
    let outcome = run_job(spec, scope, limits);
    let status = match outcome {
        Outcome::Succeeded => JobStatus::Succeeded,
        Outcome::Halted => JobStatus::Halted,
        _ => JobStatus::Failed,
    };
    let error = match &outcome {
        Outcome::Succeeded => None,
        other => Some(other.to_string()),
    };
    Ended {
        status,
        exit_code: Some(i64::from(outcome.exit_code())),
        error,
    }
}
