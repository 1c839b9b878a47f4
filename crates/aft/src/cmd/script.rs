//! `aft script push|list|show|delete`: stored SyncJS scripts (and, in [`super::script_policy`],
//! `policy|retry|notify|chain`).

use std::path::PathBuf;
use std::process::ExitCode;

use aft_store::{NewScript, ScriptUpdate};
use clap::Subcommand;

use super::{UsageError, print_json, print_table, show_time, with_store};
use crate::global::GlobalArgs;

/// Manage stored scripts (names match case-insensitively).
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: ScriptCommand,
}

#[derive(Subcommand, Debug)]
enum ScriptCommand {
    /// Store FILE as script NAME, creating it or replacing its body
    Push {
        /// Script name (unique, case-insensitive)
        name: String,
        /// The .syncjs file to store
        file: PathBuf,
        /// Description [default: unchanged, or empty for a new script]
        #[arg(long, short = 'd')]
        description: Option<String>,
        /// Whether a job interrupted by a node failure may be queued again: `--retry-safe`
        /// or `--retry-safe=true` marks it, `--retry-safe=false` unmarks it
        /// [default: unchanged, or false for a new script]
        // `require_equals`: the optional value must be attached with `=`, so the flag never
        // swallows the NAME that follows it (`aft script push --retry-safe NAME FILE`).
        #[arg(
            long,
            value_name = "BOOL",
            num_args = 0..=1,
            require_equals = true,
            default_missing_value = "true"
        )]
        retry_safe: Option<bool>,
    },
    /// List stored scripts
    List {
        /// Print JSON (with each script's body)
        #[arg(long)]
        json: bool,
    },
    /// Print the body of script NAME
    Show {
        /// Script name or id
        name: String,
        /// Print the whole record as JSON
        #[arg(long)]
        json: bool,
    },
    /// Delete script NAME
    Delete {
        /// Script name or id
        name: String,
    },
    #[command(flatten)]
    Policy(super::script_policy::PolicyCommand),
}

/// Run `aft script ...`.
pub fn execute(global: &GlobalArgs, args: Args) -> ExitCode {
    with_store(global, |store| async move {
        match args.command {
            ScriptCommand::Push {
                name,
                file,
                description,
                retry_safe,
            } => {
                let body = std::fs::read_to_string(&file).map_err(|e| {
                    UsageError(format!("cannot read script file {}: {e}", file.display()))
                })?;
                match store.script_by_name(&name).await? {
                    Some(existing) => {
                        let update = ScriptUpdate {
                            name: None,
                            description,
                            body: Some(body),
                            retry_safe,
                        };
                        let script = store.update_script(&existing.id, update).await?;
                        println!("script {} updated ({})", script.name, script.id);
                    }
                    None => {
                        let new = NewScript {
                            name,
                            description: description.unwrap_or_default(),
                            body,
                            retry_safe: retry_safe.unwrap_or(false),
                        };
                        let (script, _) = store.put_script(new).await?;
                        println!("script {} stored ({})", script.name, script.id);
                    }
                }
            }
            ScriptCommand::List { json } => {
                let scripts = store.list_scripts().await?;
                if json {
                    print_json(&scripts)?;
                } else {
                    let rows: Vec<Vec<String>> = scripts
                        .iter()
                        .map(|s| {
                            vec![
                                s.name.clone(),
                                s.id.clone(),
                                if s.retry_safe { "yes" } else { "no" }.to_string(),
                                show_time(&s.updated_at),
                                s.description.clone(),
                            ]
                        })
                        .collect();
                    print_table(
                        &["NAME", "ID", "RETRY-SAFE", "UPDATED", "DESCRIPTION"],
                        &rows,
                    );
                }
            }
            ScriptCommand::Show { name, json } => {
                let script = store.find_script(&name).await?;
                if json {
                    print_json(&script)?;
                } else {
                    print!("{}", script.body);
                    if !script.body.ends_with('\n') && !script.body.is_empty() {
                        println!();
                    }
                }
            }
            ScriptCommand::Delete { name } => {
                let script = store.find_script(&name).await?;
                store.delete_script(&script.id).await?;
                println!("script {} deleted", script.name);
            }
            ScriptCommand::Policy(command) => super::script_policy::run(&store, command).await?,
        }
        Ok(())
    })
}
