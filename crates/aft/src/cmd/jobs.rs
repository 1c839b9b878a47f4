//! `aft jobs list|show|log|halt`: the job history, read from the store directly (so they
//! work with or without a running service, and on any node of a cluster).

use std::process::ExitCode;
use std::time::Duration;

use aft_store::{JobFilter, JobStatus, Store};
use anyhow::Context;
use clap::Subcommand;

use super::{UsageError, print_json, print_table, with_store};
use crate::global::GlobalArgs;

// Inspect and halt jobs.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: JobsCommand,
}

#[derive(Subcommand, Debug)]
enum JobsCommand {
    /// List jobs, newest first
    List {
        /// Only jobs in this status (queued, running, succeeded, failed, halted, interrupted)
        #[arg(long)]
        status: Option<String>,
        /// Only jobs of this script
        #[arg(long)]
        script: Option<String>,
        /// At most this many
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Show one job
    Show {
        /// Job id
        id: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Print a job's log
    Log {
        /// Job id
        id: String,
        /// Keep printing new lines until the job ends; exit 0 if it succeeded, 1 if not
        #[arg(long, short = 'f')]
        follow: bool,
        /// Print each line as a JSON object (line, at, level, message), one a line
        #[arg(long)]
        json: bool,
    },
    /// Send the halt signal to a job (the node running it halts it)
    Halt {
        /// Job id
        id: String,
    },
}

/// Run `aft jobs ...`.
pub fn execute(global: &GlobalArgs, args: Args) -> ExitCode {
    with_store(global, |store| async move {
        match args.command {
            JobsCommand::List {
                status,
                script,
                limit,
                json,
            } => {
                let status = status
                    .as_deref()
                    .map(JobStatus::parse)
                    .transpose()
                    .map_err(|e| UsageError(e.to_string()))?;
                let jobs = store
                    .list_jobs(&JobFilter {
                        status,
                        script,
                        limit: Some(limit),
                        ..Default::default()
                    })
                    .await?;
                if json {
                    return print_json(&jobs);
                }
                let rows: Vec<Vec<String>> = jobs
                    .iter()
                    .map(|j| {
                        vec![
                            j.id.clone(),
                            j.status.to_string(),
                            j.script_name
                                .clone()
                                .or(j.file_path.clone())
                                .unwrap_or_else(|| "-".into()),
                            j.created_at.clone(),
                            j.finished_at.clone().unwrap_or_default(),
                            j.retry_attempt.to_string(),
                        ]
                    })
                    .collect();
                print_table(
                    &["ID", "STATUS", "SCRIPT", "QUEUED", "ENDED", "ATTEMPT"],
                    &rows,
                );
                Ok(())
            }
            JobsCommand::Show { id, json } => {
                let job = store.get_job(&id).await?;
                let transfers = store.list_transfers(&job.id).await?;
                // A dry run's plan, once it ended (`None` for a real job).
                let plan: Option<Option<aft_vfs::dry_run::Plan>> = store
                    .dry_run_plan(&job.id)
                    .await?
                    .map(|text| text.map(|text| serde_json::from_str(&text)).transpose())
                    .transpose()
                    .context("the stored dry-run plan is not valid JSON")?;
                if json {
                    // The job's fields and, as GET /v1/jobs/{id}/transfers gives them, the
                    // files it moved; for a dry run, `dryRun` and its `plan` as
                    // GET /v1/jobs/{id} names them.
                    let mut shown = serde_json::to_value(&job)?;
                    shown["transfers"] = serde_json::to_value(&transfers)?;
                    if let Some(plan) = &plan {
                        shown["dryRun"] = true.into();
                        shown["plan"] = serde_json::to_value(plan)?;
                    }
                    return print_json(&shown);
                }
                outln!("id:        {}", job.id);
                outln!("status:    {}", job.status);
                outln!(
                    "script:    {}",
                    job.script_name
                        .clone()
                        .or(job.file_path.clone())
                        .unwrap_or_default()
                );
                outln!("params:    {}", job.params.to_json());
                outln!("origin:    {}", job.origin);
                outln!("node:      {}", job.node_id.clone().unwrap_or_default());
                outln!("queued:    {}", job.created_at);
                outln!("started:   {}", job.started_at.clone().unwrap_or_default());
                outln!("ended:     {}", job.finished_at.clone().unwrap_or_default());
                if let Some(code) = job.exit_code {
                    outln!("exit code: {code}");
                }
                if let Some(error) = &job.error {
                    outln!("error:     {error}");
                }
                if let Some(first) = &job.retry_of {
                    outln!("attempt:   {} (retry of job {first})", job.retry_attempt);
                }
                if let (Some(at), JobStatus::Queued) = (&job.not_before, job.status) {
                    outln!("not before: {at}");
                }
                if let Some(parent) = &job.chained_from {
                    outln!("chained from: job {parent}");
                }
                if let Some(result) = &job.result {
                    outln!("result:    {result}");
                }
                match &plan {
                    Some(Some(plan)) => {
                        outln!("dry run:   yes; the plan:");
                        for line in plan.lines() {
                            outln!("  {line}");
                        }
                    }
                    Some(None) => outln!("dry run:   yes; no plan yet (the job has not ended)"),
                    None => {}
                }
                if !transfers.is_empty() {
                    outln!();
                    let rows: Vec<Vec<String>> = transfers
                        .iter()
                        .map(|t| {
                            vec![
                                t.outcome.clone(),
                                t.bytes.to_string(),
                                t.source.clone(),
                                t.target.clone(),
                            ]
                        })
                        .collect();
                    print_table(&["OUTCOME", "BYTES", "SOURCE", "TARGET"], &rows);
                }
                Ok(())
            }
            JobsCommand::Log { id, follow, json } => print_log(&store, &id, follow, json).await,
            JobsCommand::Halt { id } => {
                let job = store.request_halt(&id).await?;
                // Not a stored thing's state: recorded here, as the API's halt is.
                let entry = aft_server::audit::local_entry(
                    "job.halted".into(),
                    "job",
                    &job.id,
                    "jobs halt",
                );
                store.append_audit(&[entry]).await?;
                match job.status {
                    JobStatus::Running => outln!("halt signal sent to job {id}"),
                    status => outln!("job {id} is {status}"),
                }
                Ok(())
            }
        }
    })
}

/// Print the log; with `follow`, poll for new lines until the job ends.
async fn print_log(store: &Store, id: &str, follow: bool, json: bool) -> anyhow::Result<()> {
    let mut last = 0;
    loop {
        let job = store.get_job(id).await?;
        let lines = store.read_job_logs(id, last, 10_000).await?;
        for line in &lines {
            if json {
                outln!("{}", serde_json::to_string(line)?);
            } else {
                match line.level.as_str() {
                    "error" | "warn" => eprintln!("{}", line.message),
                    _ => outln!("{}", line.message),
                }
            }
            last = line.line;
        }
        if !follow {
            return Ok(());
        }
        if job.status.is_final() && lines.is_empty() {
            if job.status == JobStatus::Succeeded {
                return Ok(());
            }
            anyhow::bail!(
                "job {id} {}{}",
                job.status,
                job.error.map(|e| format!(": {e}")).unwrap_or_default()
            );
        }
        if lines.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
