//! `aft nodes list`: the service nodes sharing this store, their heartbeats and jobs.

use std::process::ExitCode;

use clap::Subcommand;

use super::{print_json, print_table, with_store};
use crate::global::GlobalArgs;

// Inspect the cluster's nodes.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: NodesCommand,
}

#[derive(Subcommand, Debug)]
enum NodesCommand {
    /// List nodes with their last heartbeat and how many jobs each runs
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

/// Run `aft nodes ...`.
pub fn execute(global: &GlobalArgs, args: Args) -> ExitCode {
    with_store(global, |store| async move {
        match args.command {
            NodesCommand::List { json } => {
                let nodes = store.list_nodes().await?;
                if json {
                    return print_json(&nodes);
                }
                let rows: Vec<Vec<String>> = nodes
                    .iter()
                    .map(|n| {
                        vec![
                            n.id.clone(),
                            n.hostname.clone(),
                            n.url.clone(),
                            n.heartbeat_at.clone(),
                            if n.stopped_at.is_some() {
                                "stopped".into()
                            } else {
                                "up".into()
                            },
                            n.running_jobs.to_string(),
                        ]
                    })
                    .collect();
                print_table(
                    &["ID", "HOST", "URL", "HEARTBEAT", "STATE", "RUNNING"],
                    &rows,
                );
                Ok(())
            }
        }
    })
}
