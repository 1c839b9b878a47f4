//! `aft admin create|passwd USER` (password from standard input), `aft admin role USER
//! ROLE`, `aft admin reset-2fa USER`, `aft admin list` and `aft admin delete USER`.

use std::process::ExitCode;

use aft_store::{Role, Secret};
use clap::Subcommand;

use super::{print_json, print_table, read_stdin_value, show_time, with_store};
use crate::global::GlobalArgs;

// Manage web UI admin users.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand, Debug)]
enum AdminCommand {
    /// Create admin USER with the password read from standard input
    /// (one trailing newline is dropped)
    #[command(visible_alias = "add")]
    Create {
        /// User name (case-insensitive at sign-in)
        user: String,
        /// What the admin may do: admin (everything), operator (run and halt jobs, edit
        /// scripts, schedules and watchers) or viewer (read only)
        #[arg(long, default_value = "admin")]
        role: Role,
    },
    /// Turn off two-factor sign-in of admin USER (a lost phone); they may set it up again
    #[command(name = "reset-2fa")]
    Reset2fa {
        /// User name (case-insensitive)
        user: String,
    },
    /// Set the role of admin USER: admin, operator or viewer
    Role {
        /// User name (case-insensitive)
        user: String,
        /// admin, operator or viewer
        role: Role,
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
            AdminCommand::Create { user, role } => {
                let password = read_stdin_value(&format!("Password for {user}"))?;
                let admin = store
                    .create_admin_with_role(&user, &Secret::new(password), role)
                    .await?;
                outln!(
                    "admin {} created with the role {}",
                    admin.username,
                    admin.role
                );
            }
            AdminCommand::Reset2fa { user } => {
                store.reset_two_factor(&user).await?;
                outln!("two-factor sign-in of {user} is off; they may set it up again");
            }
            AdminCommand::Role { user, role } => {
                let admin = store.set_admin_role(&user, role).await?;
                outln!("admin {} now has the role {}", admin.username, admin.role);
            }
            AdminCommand::Passwd { user } => {
                let password = read_stdin_value(&format!("New password for {user}"))?;
                store
                    .set_admin_password(&user, &Secret::new(password))
                    .await?;
                outln!("password of {user} changed; their sessions have ended");
            }
            AdminCommand::Delete { user } => {
                store.delete_admin(&user).await?;
                outln!("admin {user} deleted");
            }
            AdminCommand::List { json } => {
                let admins = store.admin_accounts().await?;
                if json {
                    print_json(&admins)?;
                } else {
                    let rows: Vec<Vec<String>> = admins
                        .iter()
                        .map(|a| {
                            vec![
                                a.username.clone(),
                                a.role.to_string(),
                                show_time(&a.created_at),
                            ]
                        })
                        .collect();
                    print_table(&["USER", "ROLE", "CREATED"], &rows);
                }
            }
        }
        Ok(())
    })
}
