//! `aft secret set NAME` (value from standard input), `aft secret list`,
//! `aft secret delete NAME`, `aft secret used-by NAME`. Values are never printed.

use std::process::ExitCode;

use aft_store::{Secret, SecretsKey};
use clap::Subcommand;

use super::in_use::{DeleteArgs, UsedByArgs, print_used_by, report_delete, secret_name};
use super::{UsageError, print_json, print_table, read_stdin_value, show_time, with_store};
use crate::global::GlobalArgs;

// Manage encrypted secrets (values are write-only).
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: SecretCommand,
}

#[derive(Subcommand, Debug)]
enum SecretCommand {
    /// Create or replace secret NAME with the value read from standard input
    /// (one trailing newline is dropped): `printf %s "$PASS" | aft secret set NAME`
    Set {
        /// Secret name (case-sensitive), as used by GetSecret("NAME") and ...FromSecret fields
        name: String,
    },
    /// List secret names and when they changed (never values)
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Delete secret NAME (refused while VFS entries, settings or scripts name it, unless
    /// --force)
    #[command(visible_alias = "rm", mut_arg("name", secret_name))]
    Delete(DeleteArgs),
    /// List the VFS entries, settings, scripts and watchers that use secret NAME
    #[command(mut_arg("name", secret_name))]
    UsedBy(UsedByArgs),
}

/// Run `aft secret ...`.
pub fn execute(global: &GlobalArgs, args: Args) -> ExitCode {
    let data_dir = global.data_dir();
    with_store(global, |store| async move {
        match args.command {
            SecretCommand::Set { name } => {
                let value = read_stdin_value(&format!("Value of secret {name}"))?;
                if value.is_empty() {
                    return Err(UsageError(format!(
                        "no value for secret {name} on standard input: pipe it in, e.g. \
                         printf %s \"$VALUE\" | aft secret set {name}"
                    ))
                    .into());
                }
                let key = SecretsKey::load_or_create(&data_dir)?;
                store.set_secret(&key, &name, &Secret::new(value)).await?;
                outln!("secret {name} set");
            }
            SecretCommand::List { json } => {
                let secrets = store.list_secrets().await?;
                if json {
                    print_json(&secrets)?;
                } else {
                    let rows: Vec<Vec<String>> = secrets
                        .iter()
                        .map(|s| {
                            vec![
                                s.name.clone(),
                                show_time(&s.created_at),
                                show_time(&s.updated_at),
                            ]
                        })
                        .collect();
                    print_table(&["NAME", "CREATED", "UPDATED"], &rows);
                }
            }
            SecretCommand::Delete(DeleteArgs { name, force }) => {
                let outcome = store.delete_secret_checked(&name, force).await;
                report_delete("secret", outcome)?;
            }
            SecretCommand::UsedBy(UsedByArgs { name, json }) => {
                print_used_by(&store.secret_used_by(&name).await?, json)?;
            }
        }
        Ok(())
    })
}
