//! `aft admin create|passwd USER` (password from standard input), `aft admin list` and
//! `aft admin delete USER`.

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
    /// Set the password of admin USER, read from standard input (one trailing newline is
    /// dropped); their web UI sessions end
    Passwd {
        /// User name (case-insensitive)
        user: String,
    },
    /// Delete admin USER and end their sessions (the last admin cannot be deleted)
    Delete {
        /// User name (case-insensitive)
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
            AdminCommand::Passwd { user } => {
                let password = read_stdin_value(&format!("New password for {user}"))?;
                store
                    .set_admin_password(&user, &Secret::new(password))
                    .await?;
                println!("password of {user} changed; their sessions have ended");
            }
            AdminCommand::Delete { user } => {
                store.delete_admin(&user).await?;
                println!("admin {user} deleted");
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
