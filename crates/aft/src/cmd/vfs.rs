//! `aft vfs add|list|show|delete|test|types`: the VFS Library, named connection definitions
//! that scripts open with `GetVFS("name")`. Types and fields come from aft-vfs's backend
//! registry; credentials are only ever references to secrets (`PassFromSecret`, ...), so
//! nothing shown here can leak one.

use std::process::ExitCode;

use aft_server::vfs_library::{SaveMode, VfsSaveError, entry_secrets_from_dir, save_vfs_entry};
use aft_vfs::registry::{self, FieldKind};
use clap::Subcommand;
use serde_json::{Map, Value};

use super::in_use::{DeleteArgs, UsedByArgs, print_used_by, report_delete};
use super::{UsageError, print_json, print_table, show_time, with_store};
use crate::global::GlobalArgs;

// Manage the VFS Library (named connections for scripts and watchers).
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: VfsCommand,
}

#[derive(Subcommand, Debug)]
enum VfsCommand {
    /// Add entry NAME: `aft vfs add backup --type sftp --set Host=host:22 --set User=u
    /// --set PassFromSecret=backup-pass` (store the password with `aft secret set`)
    #[command(after_long_help = types_help())]
    Add {
        /// Entry name (unique, case-insensitive), as used by GetVFS("NAME")
        name: String,
        /// What it connects to (see the types below, or `aft vfs types`)
        #[arg(long = "type", short = 't', value_name = "TYPE")]
        kind: String,
        /// A field of the type, `Field=Value` (repeatable): Host, User, PassFromSecret,
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
    /// Delete entry NAME (refused while scripts or watchers use it, unless --force)
    #[command(visible_alias = "rm")]
    Delete(DeleteArgs),
    /// List the scripts (GetVFS("NAME")) and watchers that use entry NAME
    UsedBy(UsedByArgs),
    /// Connect to entry NAME and list its root folder; for SFTP, an unknown host key's
    /// fingerprint is printed so it can be pinned with --set HostKeySHA256=...
    Test {
        /// Entry name or id
        name: String,
    },
    /// List the VFS types and their fields (or one type's)
    Types {
        /// Only this type
        kind: Option<String>,
        /// Print JSON (what GET /v1/vfs/types answers)
        #[arg(long)]
        json: bool,
    },
}

/// One type's fields as text: `  Host (required) — Host, e.g. sftp.example.com:22`.
fn type_help(ty: registry::VfsType) -> String {
    let mut out = format!(
        "{} — {} (SyncJS: new {}())\n",
        ty.name(),
        ty.info.label,
        ty.info.client
    );
    for f in ty.fields() {
        if f.is_clear_text_credential() {
            continue;
        }
        let mut line = format!("  {:<24}{}", f.name, f.label);
        let kind = match f.kind {
            FieldKind::Choice(options) => format!("one of {}", options.join(", ")),
            FieldKind::Secret => "a secret's name".into(),
            other => other.name().into(),
        };
        line.push_str(&format!(" [{kind}]"));
        if f.required {
            line.push_str(" (required)");
        }
        if !f.placeholder.is_empty() {
            line.push_str(&format!(", e.g. {}", f.placeholder));
        }
        if !f.help.is_empty() {
            line.push_str(&format!(". {}", f.help));
        }
        out.push_str(&line);
        out.push('\n');
    }
    if !ty.backend.one_of.is_empty() {
        out.push_str(&format!(
            "  (set one of {})\n",
            ty.backend.one_of.join(" or ")
        ));
    }
    out
}

/// The `aft vfs add --help` epilogue: every type and its fields, from the registry.
fn types_help() -> String {
    let mut out = String::from(
        "Types and their fields (credentials only as secret names: `aft secret set NAME` first):\n\n",
    );
    for ty in registry::types() {
        out.push_str(&type_help(ty));
        out.push('\n');
    }
    out
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
    // The types are the registry's: no store needed.
    if let VfsCommand::Types { kind, json } = &args.command {
        if *json {
            let views: Vec<aft_server::api::vfs_types::VfsTypeView> = registry::types()
                .filter(|t| {
                    kind.as_deref()
                        .is_none_or(|k| t.name().eq_ignore_ascii_case(k))
                })
                .map(Into::into)
                .collect();
            if views.is_empty() {
                return crate::global::usage_failure(UsageError(format!(
                    "unknown VFS type {:?}; use one of: {}",
                    kind.as_deref().unwrap_or_default(),
                    registry::type_names().join(", ")
                )));
            }
            return match serde_json::to_string_pretty(&views) {
                Ok(text) => {
                    outln!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => super::fail(e),
            };
        }
        match kind {
            None => out!("{}", types_help()),
            Some(kind) => match registry::lookup(kind) {
                Some(ty) => out!("{}", type_help(ty)),
                None => {
                    return crate::global::usage_failure(UsageError(format!(
                        "unknown VFS type {kind:?}; use one of: {}",
                        registry::type_names().join(", ")
                    )));
                }
            },
        }
        return ExitCode::SUCCESS;
    }
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
                let fields = collect_fields(&set, json.as_deref())?;
                let exists = store.vfs_entry_by_name(&name).await?;
                let (target, mode) = match exists {
                    Some(old) if replace => (old.id, SaveMode::Replace),
                    Some(old) => {
                        return Err(UsageError(format!(
                            "VFS entry {} already exists; add --replace to overwrite it",
                            old.name
                        ))
                        .into());
                    }
                    None => (name, SaveMode::Create),
                };
                let entry = match save_vfs_entry(&store, &target, &kind, fields, mode).await {
                    Ok(entry) => entry,
                    // A refused type or field is a usage error (exit 2), like a bad option.
                    Err(VfsSaveError::Refused(e)) => return Err(UsageError(e.to_string()).into()),
                    Err(VfsSaveError::Store(e)) => return Err(e.into()),
                };
                outln!("vfs {} ({}) saved ({})", entry.name, entry.kind, entry.id);
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
                    outln!("name:    {}", entry.name);
                    outln!("type:    {}", entry.kind);
                    outln!("id:      {}", entry.id);
                    outln!("updated: {}", show_time(&entry.updated_at));
                    let rows: Vec<Vec<String>> = entry
                        .settings
                        .iter()
                        .map(|(k, v)| vec![k.clone(), show_value(v)])
                        .collect();
                    if !rows.is_empty() {
                        outln!();
                        print_table(&["FIELD", "VALUE"], &rows);
                    }
                }
            }
            VfsCommand::Delete(DeleteArgs { name, force }) => {
                let outcome = store.delete_vfs_entry_checked(&name, force).await;
                report_delete("vfs", outcome)?;
            }
            VfsCommand::UsedBy(UsedByArgs { name, json }) => {
                print_used_by(&store.vfs_used_by(&name).await?, json)?;
            }
            VfsCommand::Test { name } => {
                let entry = store.find_vfs_entry(&name).await?;
                let secrets = entry_secrets_from_dir(&store, &data_dir, &entry).await?;
                let lookup = move |name: &str| secrets.get(name).cloned();
                let fields = Value::Object(entry.settings.clone());
                let outcome = aft_vfs::test_connection(&entry.kind, &fields, &lookup).await;
                match outcome {
                    Ok(report) => {
                        outln!(
                            "vfs {} ({}): connected to {}",
                            entry.name,
                            entry.kind,
                            report.target
                        );
                        let plus = if report.more { "+" } else { "" };
                        outln!("root folder: {}{plus} entries", report.root_entries);
                        for name in report.sample.iter() {
                            outln!("  {name}");
                        }
                    }
                    Err(aft_vfs::ConnectionTestError::UnknownHostKey {
                        host,
                        fingerprint,
                        mismatch,
                    }) => {
                        outln!("host key fingerprint of {host}: {fingerprint}");
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
            VfsCommand::Types { .. } => unreachable!("answered before opening the store"),
        }
        Ok(())
    })
}
