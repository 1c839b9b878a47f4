//! `aft admin create USER` (password from standard input) and `aft admin list`.

use std::process::ExitCode;

use aft_store::Secret;
use clap::Subcommand;

use super::{print_json, print_table, read_stdin_value, show_time, with_store};
use crate::global::GlobalArgs;

/// Manage web UI admin users.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand, Debug)]
enum AdminCommand {
    /// Create admin USER with the password read from standard input
    /// (one trailing newline is dropped)
    Create {
        /// User name (case-insensitive at sign-in)
        user: String,
    },
    /// List admin users
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

/// Run `aft admin ...`.
pub fn execute(global: &GlobalArgs, args: Args) -> ExitCode {
    with_store(global, |store| async move {
        match args.command {
            AdminCommand::Create { user } => {
                let password = read_stdin_value(&format!("Password for {user}"))?;
                let admin = store.create_admin(&user, &Secret::new(password)).await?;
                println!("admin {} created", admin.username);
            }
            AdminCommand::List { json } => {
                let admins = store.list_admins().await?;
                if json {
                    print_json(&admins)?;
                } else {
                    let rows: Vec<Vec<String>> = admins
                        .iter()
                        .map(|a| vec![a.username.clone(), show_time(&a.created_at)])
                        .collect();
                    print_table(&["USER", "CREATED"], &rows);
                }
            }
        }
        Ok(())
    })
}
