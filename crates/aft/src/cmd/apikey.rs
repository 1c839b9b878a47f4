//! `aft apikey create|list|revoke|delete`: keys for the REST API (`X-API-Key`).

use std::process::ExitCode;

use aft_store::{ApiKey, ApiKeyAllowList, NewApiKey};
use chrono::{DateTime, Utc};
use clap::Subcommand;

use super::{UsageError, print_json, print_table, show_time, with_store};
use crate::global::GlobalArgs;

// Manage API keys (a key is shown once, at creation).
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: ApiKeyCommand,
}

#[derive(Subcommand, Debug)]
enum ApiKeyCommand {
    /// Create a key and print it (once: it is stored hashed and cannot be shown again)
    Create {
        /// Key name (unique, case-insensitive)
        #[arg(long)]
        name: String,
        /// Caller addresses allowed to use the key: IPs and CIDR ranges, comma-separated
        /// or repeated (127.0.0.1,10.0.0.0/8,::1)
        #[arg(long, required = true, value_name = "CIDR[,CIDR...]")]
        allow: Vec<String>,
        /// When the key stops working: an RFC 3339 time (2027-01-31T00:00:00Z) or a
        /// duration from now (90d, 12h, 30m, 2w)
        #[arg(long, value_name = "TIME|DURATION")]
        expires: Option<String>,
        /// Only these scripts may be started with the key (comma-separated) [default: any]
        #[arg(long, value_name = "NAME[,NAME...]")]
        scripts: Option<String>,
        /// Let the key run .syncjs files of the script folders (POST /v1/jobs filePath;
        /// the setting script-folders)
        #[arg(long, conflicts_with = "scripts")]
        allow_file_runs: bool,
        /// Print JSON (the key in field "key")
        #[arg(long)]
        json: bool,
    },
    /// List keys (never the keys themselves)
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by name or id (it stays listed as revoked)
    Revoke {
        /// Key name or id
        name: String,
    },
    /// Delete a key by name or id
    Delete {
        /// Key name or id
        name: String,
    },
}

/// Parse `--expires`: an RFC 3339 time or a duration from `now` like `90d`.
fn parse_expiry(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, UsageError> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    let bad = || {
        UsageError(format!(
            "--expires {text:?} is neither an RFC 3339 time (2027-01-31T00:00:00Z) nor a \
             duration like 90d, 12h, 30m, 45s or 2w"
        ))
    };
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let n: i64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(bad()),
    };
    let delta = n
        .checked_mul(seconds)
        .and_then(chrono::TimeDelta::try_seconds)
        .ok_or_else(bad)?;
    now.checked_add_signed(delta).ok_or_else(bad)
}

/// The state shown in the STATUS column.
fn status(key: &ApiKey, now: DateTime<Utc>) -> &'static str {
    if key.revoked_at.is_some() {
        "revoked"
    } else if key.is_expired_at(now) {
        "expired"
    } else {
        "active"
    }
}

/// Run `aft apikey ...`.
pub fn execute(global: &GlobalArgs, args: Args) -> ExitCode {
    with_store(global, |store| async move {
        let now = Utc::now();
        match args.command {
            ApiKeyCommand::Create {
                name,
                allow,
                expires,
                scripts,
                allow_file_runs,
                json,
            } => {
                let allow_list: ApiKeyAllowList = allow
                    .join(",")
                    .parse()
                    .map_err(|e| UsageError(format!("--allow: {e}")))?;
                if allow_list.is_empty() {
                    return Err(UsageError(
                        "--allow needs at least one address or CIDR range".into(),
                    )
                    .into());
                }
                let expires_at = expires
                    .as_deref()
                    .map(|e| parse_expiry(e, now))
                    .transpose()?;
                if expires_at.is_some_and(|at| at <= now) {
                    return Err(UsageError("--expires is in the past".into()).into());
                }
                let scripts = scripts.map(|s| {
                    s.split(',')
                        .map(str::trim)
                        .filter(|n| !n.is_empty())
                        .map(str::to_string)
                        .collect()
                });
                let (record, key) = store
                    .create_api_key(NewApiKey {
                        name,
                        allow_list,
                        expires_at,
                        scripts,
                        file_runs: allow_file_runs,
                    })
                    .await?;
                if json {
                    let mut value = serde_json::to_value(&record)?;
                    value["key"] = serde_json::Value::String(key.expose().to_string());
                    print_json(&value)?;
                } else {
                    outln!("{}", key.expose());
                }
                eprintln!(
                    "API key {} created (id {}). Copy the key now: it cannot be shown again.",
                    record.name, record.id
                );
            }
            ApiKeyCommand::List { json } => {
                let keys = store.list_api_keys().await?;
                if json {
                    print_json(&keys)?;
                } else {
                    let rows: Vec<Vec<String>> = keys
                        .iter()
                        .map(|k| {
                            vec![
                                k.name.clone(),
                                k.id.clone(),
                                format!("{}...", k.prefix),
                                status(k, now).to_string(),
                                k.expires_at.as_ref().map_or("never".into(), show_time),
                                k.last_used_at.as_ref().map_or("never".into(), show_time),
                                k.scripts.as_ref().map_or("*".into(), |s| s.join(",")),
                                k.allow_list.to_string(),
                            ]
                        })
                        .collect();
                    print_table(
                        &[
                            "NAME",
                            "ID",
                            "PREFIX",
                            "STATUS",
                            "EXPIRES",
                            "LAST-USED",
                            "SCRIPTS",
                            "ALLOW",
                        ],
                        &rows,
                    );
                }
            }
            ApiKeyCommand::Revoke { name } => {
                let key = store.revoke_api_key(&name).await?;
                outln!("API key {} revoked", key.name);
            }
            ApiKeyCommand::Delete { name } => {
                let key = store.find_api_key(&name).await?;
                store.delete_api_key(&key.id).await?;
                outln!("API key {} deleted", key.name);
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_accepts_rfc3339_and_durations() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            parse_expiry("30d", now).unwrap().to_rfc3339(),
            "2026-01-31T00:00:00+00:00"
        );
        assert_eq!(
            parse_expiry("2h", now).unwrap().to_rfc3339(),
            "2026-01-01T02:00:00+00:00"
        );
        assert_eq!(
            parse_expiry("2027-05-01T10:00:00+02:00", now)
                .unwrap()
                .to_rfc3339(),
            "2027-05-01T08:00:00+00:00"
        );
        for bad in ["", "d", "30", "30y", "tomorrow"] {
            assert!(parse_expiry(bad, now).is_err(), "{bad:?} should be refused");
        }
    }
}
