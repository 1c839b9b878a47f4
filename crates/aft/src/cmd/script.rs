//! `aft script push|list|show|delete|used-by|versions|restore`: stored SyncJS scripts (and,
//! in [`super::script_policy`], `policy|retry|notify|chain`).

use std::path::PathBuf;
use std::process::ExitCode;

use aft_store::{NewScript, ScriptUpdate};
use clap::Subcommand;

use super::in_use::{DeleteArgs, UsedByArgs, print_used_by, report_delete};
use super::{UsageError, print_json, print_table, show_time, with_store};
use crate::global::GlobalArgs;

// Manage stored scripts (names match case-insensitively).
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
    /// Delete script NAME (refused while schedules or watchers run it, unless --force)
    #[command(visible_alias = "rm")]
    Delete(DeleteArgs),
    /// List the schedules and watchers that run script NAME
    UsedBy(UsedByArgs),
    /// List the versions of script NAME (each save that changed its source), newest first
    Versions {
        /// Script name or id
        name: String,
        /// Print JSON (with each version's source)
        #[arg(long)]
        json: bool,
    },
    /// Make version VERSION of script NAME current again (saved as a new version)
    Restore {
        /// Script name or id
        name: String,
        /// The version number (see `aft script versions NAME`)
        #[arg(value_name = "VERSION")]
        number: i64,
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
                        outln!("script {} updated ({})", script.name, script.id);
                    }
                    None => {
                        let new = NewScript {
                            name,
                            description: description.unwrap_or_default(),
                            body,
                            retry_safe: retry_safe.unwrap_or(false),
                        };
                        let (script, _) = store.put_script(new).await?;
                        outln!("script {} stored ({})", script.name, script.id);
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
                    out!("{}", script.body);
                    if !script.body.ends_with('\n') && !script.body.is_empty() {
                        outln!();
                    }
                }
            }
            ScriptCommand::Delete(DeleteArgs { name, force }) => {
                let outcome = store.delete_script_checked(&name, force).await;
                report_delete("script", outcome)?;
            }
            ScriptCommand::UsedBy(UsedByArgs { name, json }) => {
                print_used_by(&store.script_used_by(&name).await?, json)?;
            }
            ScriptCommand::Versions { name, json } => {
                let versions = store.list_script_versions(&name).await?;
                if json {
                    print_json(&versions)?;
                } else {
                    let rows: Vec<Vec<String>> = versions
                        .iter()
                        .map(|v| {
                            vec![
                                v.version.to_string(),
                                show_time(&v.created_at),
                                v.body.lines().count().to_string(),
                                v.description.clone(),
                            ]
                        })
                        .collect();
                    print_table(&["VERSION", "SAVED", "LINES", "DESCRIPTION"], &rows);
                }
            }
            ScriptCommand::Restore { name, number } => {
                let version = number;
                let script = store.restore_script_version(&name, version).await?;
                let current = store.current_script_version(&script.id).await?;
                outln!(
                    "script {} restored from version {version} (now version {current})",
                    script.name
                );
            }
            ScriptCommand::Policy(command) => super::script_policy::run(&store, command).await?,
        }
        Ok(())
    })
}
