//! `aft vfs add|list|show|delete|test`: the VFS Library, named connection definitions that
//! scripts open with `GetVFS("name")`. Credentials are only ever references to secrets
//! (`PassFromSecret`, ...), so nothing shown here can leak one.

use std::process::ExitCode;

use aft_store::{SecretsKey, VfsKind};
use clap::Subcommand;
use serde_json::{Map, Value};

use super::{UsageError, print_json, print_table, show_time, with_store};
use crate::global::GlobalArgs;

/// Manage the VFS Library (named connections for scripts and watchers).
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: VfsCommand,
}

#[derive(Subcommand, Debug)]
enum VfsCommand {
    /// Add entry NAME: `aft vfs add backup --type sftp --set Host=host:22 --set User=u
    /// --set PassFromSecret=backup-pass` (store the password with `aft secret set`)
    Add {
        /// Entry name (unique, case-insensitive), as used by GetVFS("NAME")
        name: String,
        /// What it connects to: disk, sftp, ftp, ftps, s3, azure, gcs or webdav
        #[arg(long = "type", short = 't', value_name = "TYPE")]
        kind: String,
        /// A SyncJS client field, `Field=Value` (repeatable): Host, User, PassFromSecret,
        /// HostKeySHA256, Bucket, Region, Endpoint, APIKeyID, APIKeySecretFromSecret, ...
        #[arg(long = "set", short = 's', value_name = "FIELD=VALUE")]
        set: Vec<String>,
        /// Fields as one JSON object (`{"Host":"h:22","TLSMode":1}`); --set wins on conflict
        #[arg(long, value_name = "JSON")]
        json: Option<String>,
        /// Replace an existing entry of that name instead of failing
        #[arg(long)]
        replace: bool,
    },
    /// List entries
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Show entry NAME's type and fields (credentials are secret names, never values)
    Show {
        /// Entry name or id
        name: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Delete entry NAME
    Delete {
        /// Entry name or id
        name: String,
    },
    /// Connect to entry NAME and list its root folder; for SFTP, an unknown host key's
    /// fingerprint is printed so it can be pinned with --set HostKeySHA256=...
    Test {
        /// Entry name or id
        name: String,
    },
}

/// Parse `--set Field=Value` pairs over the `--json` object into one field map.
fn collect_fields(set: &[String], json: Option<&str>) -> Result<Map<String, Value>, UsageError> {
    let mut fields = match json {
        None => Map::new(),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err(UsageError(
                    "--json must be a JSON object like {\"Host\":\"h:22\"}".into(),
                ));
            }
            Err(e) => return Err(UsageError(format!("--json is not valid JSON: {e}"))),
        },
    };
    for pair in set {
        let Some((field, value)) = pair.split_once('=') else {
            return Err(UsageError(format!(
                "--set {pair:?} must look like Field=Value"
            )));
        };
        let field = field.trim();
        if field.is_empty() {
            return Err(UsageError(format!(
                "--set {pair:?} has no field name before '='"
            )));
        }
        fields.insert(field.to_string(), Value::String(value.to_string()));
    }
    Ok(fields)
}

/// A field value as shown in a table.
fn show_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Run `aft vfs ...`.
pub fn execute(global: &GlobalArgs, args: Args) -> ExitCode {
    let data_dir = global.data_dir();
    with_store(global, |store| async move {
        match args.command {
            VfsCommand::Add {
                name,
                kind,
                set,
                json,
                replace,
            } => {
                let kind: VfsKind = kind
                    .parse()
                    .map_err(|e| UsageError(format!("--type: {e}")))?;
                let fields = collect_fields(&set, json.as_deref())?;
                let exists = store.vfs_entry_by_name(&name).await?;
                let entry = match exists {
                    Some(old) if replace => store.update_vfs_entry(&old.id, kind, fields).await?,
                    Some(old) => {
                        return Err(UsageError(format!(
                            "VFS entry {} already exists; add --replace to overwrite it",
                            old.name
                        ))
                        .into());
                    }
                    None => store.create_vfs_entry(&name, kind, fields).await?,
                };
                println!("vfs {} ({}) saved ({})", entry.name, entry.kind, entry.id);
            }
            VfsCommand::List { json } => {
                let entries = store.list_vfs_entries().await?;
                if json {
                    print_json(&entries)?;
                } else {
                    let rows: Vec<Vec<String>> = entries
                        .iter()
                        .map(|e| {
                            let target = ["Host", "Endpoint", "Bucket", "Container", "Root"]
                                .iter()
                                .find_map(|f| e.settings.get(*f).map(show_value))
                                .unwrap_or_default();
                            vec![
                                e.name.clone(),
                                e.kind.to_string(),
                                target,
                                show_time(&e.updated_at),
                            ]
                        })
                        .collect();
                    print_table(&["NAME", "TYPE", "TARGET", "UPDATED"], &rows);
                }
            }
            VfsCommand::Show { name, json } => {
                let entry = store.find_vfs_entry(&name).await?;
                if json {
                    print_json(&entry)?;
                } else {
                    println!("name:    {}", entry.name);
                    println!("type:    {}", entry.kind);
                    println!("id:      {}", entry.id);
                    println!("updated: {}", show_time(&entry.updated_at));
                    let rows: Vec<Vec<String>> = entry
                        .settings
                        .iter()
                        .map(|(k, v)| vec![k.clone(), show_value(v)])
                        .collect();
                    if !rows.is_empty() {
                        println!();
                        print_table(&["FIELD", "VALUE"], &rows);
                    }
                }
            }
            VfsCommand::Delete { name } => {
                let entry = store.find_vfs_entry(&name).await?;
                store.delete_vfs_entry(&entry.id).await?;
                println!("vfs {} deleted", entry.name);
            }
            VfsCommand::Test { name } => {
                let entry = store.find_vfs_entry(&name).await?;
                // Secrets are read only when the entry names some, so a data dir without a
                // key file is not given one just to test an anonymous connection.
                let needs_secrets = entry
                    .settings
                    .keys()
                    .any(|k| k.ends_with("FromSecret") || k == "KeyFileSecret");
                let mut secrets = std::collections::BTreeMap::new();
                if needs_secrets {
                    let key = SecretsKey::load_or_create(&data_dir)?;
                    for (field, value) in &entry.settings {
                        if (field.ends_with("FromSecret") || field == "KeyFileSecret")
                            && let Some(secret_name) = value.as_str()
                            && let Some(secret) = store.get_secret(&key, secret_name).await?
                        {
                            secrets.insert(secret_name.to_string(), secret.expose().to_string());
                        }
                    }
                }
                let lookup = move |name: &str| secrets.get(name).cloned();
                let fields = Value::Object(entry.settings.clone());
                let outcome = aft_engine::api::clients::test_connection(
                    entry.kind.as_str(),
                    &fields,
                    &lookup,
                )
                .await;
                match outcome {
                    Ok(report) => {
                        println!(
                            "vfs {} ({}): connected to {}",
                            entry.name, entry.kind, report.target
                        );
                        let plus = if report.more { "+" } else { "" };
                        println!("root folder: {}{plus} entries", report.root_entries);
                        for name in report.sample.iter() {
                            println!("  {name}");
                        }
                    }
                    Err(aft_engine::api::clients::ConnectionTestError::UnknownHostKey {
                        host,
                        fingerprint,
                        mismatch,
                    }) => {
                        println!("host key fingerprint of {host}: {fingerprint}");
                        if let Some(mismatch) = mismatch {
                            anyhow::bail!(
                                "the host key of {host} does not match the pins: {mismatch}; \
                                 if the server's key really changed (ask its owner), pin the new one with: \
                                 aft vfs add {} --type {} --replace ... --set HostKeySHA256={fingerprint}",
                                entry.name,
                                entry.kind
                            );
                        }
                        anyhow::bail!(
                            "the host key of {host} is not pinned; if the fingerprint above is the server's, pin it with: \
                             aft vfs add {} --type {} --replace ... --set HostKeySHA256={fingerprint}",
                            entry.name,
                            entry.kind
                        );
                    }
                    Err(e) => anyhow::bail!("vfs {} ({}): {e}", entry.name, entry.kind),
                }
            }
        }
        Ok(())
    })
}
