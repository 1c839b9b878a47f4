//! `aft settings get [KEY]` and `aft settings set KEY VALUE`.

use std::process::ExitCode;

use clap::Subcommand;

use super::{print_json, print_table, with_store};
use crate::global::GlobalArgs;

// Show or change server settings.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: SettingsCommand,
}

#[derive(Subcommand, Debug)]
enum SettingsCommand {
    /// Show every setting, or the value of KEY
    Get {
        /// A setting key, e.g. allow-cli-run
        key: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Change a setting (a running service sees it at once)
    Set {
        /// A setting key, e.g. allow-cli-run
        key: String,
        /// The new value, e.g. true
        value: String,
    },
}

/// Run `aft settings ...`.
pub fn execute(global: &GlobalArgs, args: Args) -> ExitCode {
    with_store(global, |store| async move {
        match args.command {
            SettingsCommand::Get {
                key: Some(key),
                json,
            } => {
                let setting = store.get_setting(&key).await?;
                if json {
                    print_json(&setting)?;
                } else {
                    outln!("{}", setting.value);
                }
            }
            SettingsCommand::Get { key: None, json } => {
                let settings = store.list_settings().await?;
                if json {
                    let object: serde_json::Map<String, serde_json::Value> = settings
                        .iter()
                        .map(|s| {
                            (
                                s.key.to_string(),
                                serde_json::Value::String(s.value.clone()),
                            )
                        })
                        .collect();
                    print_json(&object)?;
                } else {
                    let rows: Vec<Vec<String>> = settings
                        .iter()
                        .map(|s| {
                            let origin = if s.is_default { "default" } else { "set" };
                            vec![s.key.to_string(), s.value.clone(), origin.to_string()]
                        })
                        .collect();
                    print_table(&["KEY", "VALUE", "SOURCE"], &rows);
                }
            }
            SettingsCommand::Set { key, value } => {
                let stored = store.set_setting(&key, &value).await?;
                outln!("{key} = {stored}");
            }
        }
        Ok(())
    })
}
