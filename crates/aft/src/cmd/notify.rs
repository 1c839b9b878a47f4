//! `aft notify list|retry`: the notification outbox and its dead-letter list, read and
//! changed in the store directly (a running service delivers what is queued again).

use std::process::ExitCode;

use aft_store::NotificationState;
use clap::Subcommand;

use super::{UsageError, print_json, print_table, with_store};
use crate::global::GlobalArgs;

// Inspect notifications and deliver dead ones again.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: NotifyCommand,
}

#[derive(Subcommand, Debug)]
enum NotifyCommand {
    /// List notifications, newest first
    List {
        /// Only those in this state: pending, sending, delivered, dead (the dead-letter list)
        #[arg(long)]
        state: Option<String>,
        /// At most this many
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Print JSON (with each payload)
        #[arg(long)]
        json: bool,
    },
    /// Deliver dead notifications again, with fresh attempts: the one with ID, or all
    Retry {
        /// Notification id
        #[arg(required_unless_present = "all")]
        id: Option<String>,
        /// Every dead notification
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
}

/// Run `aft notify ...`.
pub fn execute(global: &GlobalArgs, args: Args) -> ExitCode {
    with_store(global, |store| async move {
        match args.command {
            NotifyCommand::List { state, limit, json } => {
                let state = state
                    .as_deref()
                    .map(NotificationState::parse)
                    .transpose()
                    .map_err(|e| UsageError(e.to_string()))?;
                let list = store.list_notifications(state, limit).await?;
                if json {
                    return print_json(&list);
                }
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|n| {
                        vec![
                            n.id.clone(),
                            n.state.as_str().to_string(),
                            n.event.clone(),
                            n.script_name.clone().unwrap_or_else(|| "-".into()),
                            n.job_id.clone(),
                            format!("{} {}", n.channel, n.target),
                            n.attempts.to_string(),
                            n.last_error.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                print_table(
                    &[
                        "ID",
                        "STATE",
                        "EVENT",
                        "SCRIPT",
                        "JOB",
                        "TO",
                        "ATTEMPTS",
                        "LAST ERROR",
                    ],
                    &rows,
                );
                Ok(())
            }
            NotifyCommand::Retry { id, all: _ } => {
                let retried = store.retry_dead_notifications(id.as_deref()).await?;
                for id in &retried {
                    outln!("notification {id} queued for delivery again");
                }
                if retried.is_empty() {
                    outln!("no dead notification");
                }
                Ok(())
            }
        }
    })
}
