//! `aft watcher add|list|enable|disable|delete`: watcher jobs, scripts that run as long as
//! the service.

use std::process::ExitCode;

use aft_store::NewWatcherJob;
use clap::Subcommand;

use super::{print_json, print_table, show_time, with_store};
use crate::global::GlobalArgs;

// Manage watcher jobs: stored scripts kept running by the service.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: WatcherCommand,
}

#[derive(Subcommand, Debug)]
enum WatcherCommand {
    /// Register watcher NAME running script S (started by the service within a second)
    Add {
        /// Watcher name (unique, case-insensitive)
        name: String,
        /// The stored script to keep running
        #[arg(long, short = 's')]
        script: String,
        /// Parameters as a JSON object
        #[arg(long, default_value = "{}")]
        params: String,
    },
    /// List watcher jobs
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Let watcher NAME run again: a fresh run starts within a second
    Enable {
        /// Watcher name or id
        name: String,
    },
    /// Stop watcher NAME: its current run is asked to halt and no other starts
    Disable {
        /// Watcher name or id
        name: String,
    },
    /// Delete watcher NAME and halt its current run
    Delete {
        /// Watcher name or id
        name: String,
    },
}

/// Run `aft watcher ...`.
pub fn execute(global: &GlobalArgs, args: Args) -> ExitCode {
    with_store(global, |store| async move {
        match args.command {
            WatcherCommand::Add {
                name,
                script,
                params,
            } => {
                let params = super::params_arg(&params)?;
                let w = store
                    .create_watcher_job(NewWatcherJob {
                        name,
                        script_name: script,
                        params,
                    })
                    .await?;
                outln!("watcher {} created ({})", w.name, w.id);
            }
            WatcherCommand::List { json } => {
                let watchers = store.list_watcher_jobs().await?;
                if json {
                    return print_json(&watchers);
                }
                let mut rows = Vec::new();
                for w in &watchers {
                    let status = match &w.current_job_id {
                        Some(id) => store
                            .get_job(id)
                            .await
                            .map(|j| j.status.to_string())
                            .unwrap_or_else(|_| "-".into()),
                        None => "-".into(),
                    };
                    rows.push(vec![
                        w.name.clone(),
                        if w.enabled { "yes" } else { "no" }.to_string(),
                        w.script_name.clone(),
                        w.current_job_id.clone().unwrap_or_default(),
                        status,
                        w.failures.to_string(),
                        show_time(&w.next_start_at),
                    ]);
                }
                print_table(
                    &[
                        "NAME",
                        "ENABLED",
                        "SCRIPT",
                        "JOB",
                        "STATUS",
                        "FAILURES",
                        "NOT BEFORE (UTC)",
                    ],
                    &rows,
                );
            }
            WatcherCommand::Enable { name } => {
                let (w, _) = store.set_watcher_enabled(&name, true).await?;
                outln!("watcher {} enabled", w.name);
            }
            WatcherCommand::Disable { name } => {
                match store.set_watcher_enabled(&name, false).await? {
                    (w, Some(job)) => {
                        outln!(
                            "watcher {} disabled; its run {job} was asked to halt",
                            w.name
                        )
                    }
                    (w, None) => outln!("watcher {} disabled", w.name),
                }
            }
            WatcherCommand::Delete { name } => match store.delete_watcher_job(&name).await? {
                Some(job) => outln!("watcher {name} deleted; its run {job} was asked to halt"),
                None => outln!("watcher {name} deleted"),
            },
        }
        Ok(())
    })
}
