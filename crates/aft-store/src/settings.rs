//! Server settings: a typed [`Settings`] view with defaults, and get/set by kebab-case key
//! for the CLI and the REST API. Only values someone set are stored: a key
//! without a row has its default, and `reset_settings` deletes every row.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use sqlx::Row;

use crate::{Store, StoreError, StoreResult, now_text};

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption (a local relay only).
    None,
}

impl fmt::Display for SmtpTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SmtpTls::Starttls => "starttls",
            SmtpTls::Tls => "tls",
            SmtpTls::None => "none",
        })
    }
}

impl FromStr for SmtpTls {
    type Err = StoreError;
    fn from_str(s: &str) -> StoreResult<SmtpTls> {
        match s.trim().to_ascii_lowercase().as_str() {
            "starttls" => Ok(SmtpTls::Starttls),
            "tls" => Ok(SmtpTls::Tls),
            "none" => Ok(SmtpTls::None),
            _ => Err(invalid("smtp-tls", s, "starttls, tls or none")),
        }
    }
}

/// The kind of value a setting holds, which decides how its text is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SettingKind {
    /// `true` or `false`.
    Bool,
    /// A whole number in `min..=max`.
    Int {
        /// Smallest accepted value.
        min: i64,
        /// Largest accepted value.
        max: i64,
    },
    /// Free text (no control characters).
    Text,
    /// `starttls`, `tls` or `none`.
    SmtpTls,
    /// Comma-separated list of origins (`https://host[:port]`), empty for none.
    OriginList,
    /// `;`-separated list of absolute folders, empty for none.
    FolderList,
    /// An absolute `http://` or `https://` URL, empty for none.
    Url,
}

/// One known setting: its key, default text and what it is for.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SettingDef {
    /// Kebab-case key, as used by `aft settings set KEY VALUE`.
    pub key: &'static str,
    /// Default value as text.
    pub default: &'static str,
    /// What values are accepted.
    pub kind: SettingKind,
    /// One line for `aft settings get` and the web UI.
    pub description: &'static str,
}

const fn int(min: i64, max: i64) -> SettingKind {
    SettingKind::Int { min, max }
}

/// Every setting the service knows, in display order.
pub const SETTINGS: &[SettingDef] = &[
    SettingDef {
        key: "allow-cli-run",
        default: "false",
        kind: SettingKind::Bool,
        description: "let `aft run -f FILE` run scripts from the command line",
    },
    SettingDef {
        key: "max-concurrent-jobs",
        default: "4",
        kind: int(1, 1024),
        description: "jobs one node runs at the same time",
    },
    SettingDef {
        key: "job-memory-limit-mb",
        default: "256",
        kind: int(16, 65536),
        description: "memory limit of one job's script runtime, in MiB",
    },
    SettingDef {
        key: "job-timeout-seconds",
        default: "0",
        kind: int(0, 31_536_000),
        description: "halt a job after this many seconds; 0 = no limit",
    },
    SettingDef {
        key: "job-lease-seconds",
        default: "30",
        kind: int(3, 3600),
        description: "how long a node's claim on a running job lasts without renewal; a dead node's jobs are taken over after it",
    },
    SettingDef {
        key: "local-fsync",
        default: "true",
        kind: SettingKind::Bool,
        description: "flush a finished local file to disk before renaming it into place (and its folder after), so it survives a power cut; false trades that for speed",
    },
    SettingDef {
        key: "job-log-max-lines",
        default: "100000",
        kind: int(100, 100_000_000),
        description: "log lines kept per job; past them one line says the log was cut, and the rest is dropped",
    },
    SettingDef {
        key: "job-retention-days",
        default: "30",
        kind: int(1, 36_500),
        description: "days job records and logs are kept",
    },
    SettingDef {
        key: "job-retention-max-jobs",
        default: "0",
        kind: int(0, 1_000_000_000),
        description: "ended jobs kept at most, with their logs; older ones beyond it are purged every minute; 0 = no cap, only job-retention-days applies",
    },
    SettingDef {
        key: "audit-retention-days",
        default: "0",
        kind: int(0, 36_500),
        description: "days audit records are kept (older ones are pruned hourly, leaving a checkpoint record); 0 = keep all",
    },
    SettingDef {
        key: "audit-retention-max-records",
        default: "0",
        kind: int(0, 1_000_000_000),
        description: "audit records kept at most, the checkpoint record a prune leaves included; older ones beyond it are pruned every minute; 0 = no cap, only audit-retention-days applies",
    },
    SettingDef {
        key: "require-two-factor",
        default: "false",
        kind: SettingKind::Bool,
        description: "admins without two-factor sign-in may only set it up until they have",
    },
    SettingDef {
        key: "session-lifetime-minutes",
        default: "480",
        kind: int(1, 525_600),
        description: "how long a web UI sign-in lasts",
    },
    SettingDef {
        key: "smtp-host",
        default: "",
        kind: SettingKind::Text,
        description: "SMTP server for SendMail; empty = mail disabled",
    },
    SettingDef {
        key: "smtp-port",
        default: "587",
        kind: int(1, 65535),
        description: "SMTP server port",
    },
    SettingDef {
        key: "smtp-tls",
        default: "starttls",
        kind: SettingKind::SmtpTls,
        description: "SMTP security: starttls, tls or none",
    },
    SettingDef {
        key: "smtp-user",
        default: "",
        kind: SettingKind::Text,
        description: "SMTP user name; empty = no authentication",
    },
    SettingDef {
        key: "smtp-password-secret",
        default: "",
        kind: SettingKind::Text,
        description: "name of the secret holding the SMTP password",
    },
    SettingDef {
        key: "smtp-from",
        default: "",
        kind: SettingKind::Text,
        description: "sender address of mail from scripts",
    },
    SettingDef {
        key: "smtp-ca-file",
        default: "",
        kind: SettingKind::Text,
        description: "PEM file of extra CA certificates to trust for the SMTP server, besides the public roots",
    },
    SettingDef {
        key: "cors-origins",
        default: "",
        kind: SettingKind::OriginList,
        description: "comma-separated origins allowed to call the REST API from a browser; empty = none",
    },
    SettingDef {
        key: "script-folders",
        default: "",
        kind: SettingKind::FolderList,
        description: "absolute folders (separated by ;) whose .syncjs files POST /v1/jobs may run by filePath; empty = filePath is refused",
    },
    SettingDef {
        key: "public-url",
        default: "",
        kind: SettingKind::Url,
        description: "base URL of the web UI for links in notifications (https://aft.example.com); empty = the address of the node that settled the job",
    },
    SettingDef {
        key: "notify-on",
        default: "failure,recovery",
        kind: SettingKind::Text,
        description: "events of every job that the global notifications (notify-webhook, notify-email) are sent for: failure, success, recovery, comma-separated",
    },
    SettingDef {
        key: "notify-webhook",
        default: "",
        kind: SettingKind::Url,
        description: "URL every job's notifications are POSTed to as JSON; empty = none",
    },
    SettingDef {
        key: "notify-webhook-slack",
        default: "false",
        kind: SettingKind::Bool,
        description: "send notify-webhook's notifications as Slack-compatible {\"text\": ...}",
    },
    SettingDef {
        key: "notify-email",
        default: "",
        kind: SettingKind::Text,
        description: "addresses (comma-separated) every job's notifications are mailed to through the smtp-* settings; empty = none",
    },
    SettingDef {
        key: "notify-attempts",
        default: "5",
        kind: int(1, 100),
        description: "delivery attempts of one notification before it goes to the dead-letter list",
    },
    SettingDef {
        key: "notify-backoff-ms",
        default: "30000",
        kind: int(10, 3_600_000),
        description: "wait before a notification's second attempt, in milliseconds; it doubles for each next one (at most 1 hour)",
    },
    SettingDef {
        key: "notify-log-lines",
        default: "20",
        kind: int(0, 1000),
        description: "last log lines of the job a notification carries",
    },
];

/// The definition of setting `key`, or an `Invalid` error listing the known keys.
pub fn setting_def(key: &str) -> StoreResult<&'static SettingDef> {
    SETTINGS.iter().find(|d| d.key == key).ok_or_else(|| {
        let known: Vec<&str> = SETTINGS.iter().map(|d| d.key).collect();
        StoreError::Invalid(format!(
            "unknown setting {key:?}; known settings: {}",
            known.join(", ")
        ))
    })
}

fn invalid(key: &str, value: &str, accepted: &str) -> StoreError {
    StoreError::Invalid(format!(
        "setting {key}: {value:?} is not accepted; use {accepted}"
    ))
}

/// Check `value` for setting `key` and return its canonical text form.
pub fn normalize_setting(key: &str, value: &str) -> StoreResult<String> {
    let def = setting_def(key)?;
    let value = value.trim();
    match def.kind {
        SettingKind::Bool => match value.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Ok("true".into()),
            "false" | "no" | "off" | "0" => Ok("false".into()),
            _ => Err(invalid(key, value, "true or false")),
        },
        SettingKind::Int { min, max } => match value.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n.to_string()),
            _ => Err(invalid(
                key,
                value,
                &format!("a whole number from {min} to {max}"),
            )),
        },
        SettingKind::Text => {
            if value.chars().any(char::is_control) {
                Err(invalid(key, value, "text without control characters"))
            } else {
                Ok(value.to_string())
            }
        }
        SettingKind::SmtpTls => value.parse::<SmtpTls>().map(|t| t.to_string()),
        SettingKind::OriginList => {
            let mut origins = Vec::new();
            for origin in value.split(',').map(str::trim).filter(|o| !o.is_empty()) {
                let ok = (origin.starts_with("http://") || origin.starts_with("https://"))
                    && !origin
                        .trim_start_matches("http://")
                        .trim_start_matches("https://")
                        .is_empty()
                    && !origin.chars().any(|c| c.is_whitespace() || c.is_control())
                    && !origin.ends_with('/');
                if !ok && origin != "*" {
                    return Err(invalid(
                        key,
                        origin,
                        "origins like https://example.com or http://127.0.0.1:8080 (no path), or *",
                    ));
                }
                origins.push(origin.to_string());
            }
            Ok(origins.join(","))
        }
        SettingKind::FolderList => {
            let mut folders = Vec::new();
            for folder in value.split(';').map(str::trim).filter(|f| !f.is_empty()) {
                if !std::path::Path::new(folder).is_absolute()
                    || folder.chars().any(char::is_control)
                {
                    return Err(invalid(key, folder, "absolute folders separated by ;"));
                }
                folders.push(folder.to_string());
            }
            Ok(folders.join(";"))
        }
        SettingKind::Url => {
            if value.is_empty() {
                return Ok(String::new());
            }
            // Checked when set, so a typo is refused at once rather than found by a
            // notification that cannot be delivered.
            match url::Url::parse(value) {
                Ok(url)
                    if matches!(url.scheme(), "http" | "https")
                        && url.host_str().is_some_and(|h| !h.is_empty()) =>
                {
                    Ok(value.to_string())
                }
                _ => Err(invalid(
                    key,
                    value,
                    "an http:// or https:// URL such as https://hooks.example.com/aft, or empty for none",
                )),
            }
        }
    }
}

/// A setting's current value, and whether it is the default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettingValue {
    /// Kebab-case key.
    pub key: &'static str,
    /// Current value as text.
    pub value: String,
    /// True when no value was set and the default applies.
    pub is_default: bool,
}

/// All settings, typed, with defaults applied. Read them fresh when needed: the CLI writes
/// the database directly and a running service must see the change at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Settings {
    /// Whether `aft run -f FILE` may run scripts (off by default, as in AFT!).
    pub allow_cli_run: bool,
    /// Jobs one node runs at the same time.
    pub max_concurrent_jobs: u32,
    /// Memory limit of one job's runtime, in MiB.
    pub job_memory_limit_mb: u32,
    /// Job time limit in seconds; 0 = none.
    pub job_timeout_seconds: u64,
    /// Seconds a claim on a running job holds without renewal (renewed every third of it).
    pub job_lease_seconds: u32,
    /// Log lines kept per job.
    pub job_log_max_lines: u64,
    /// Flush local files before renaming them into place.
    pub local_fsync: bool,
    /// Days job records and logs are kept.
    pub job_retention_days: u32,
    /// Ended jobs kept at most; 0 = no cap.
    pub job_retention_max_jobs: u64,
    /// Days audit records are kept; 0 = all.
    pub audit_retention_days: u32,
    /// Audit records kept at most, a prune's checkpoint record included; 0 = no cap.
    pub audit_retention_max_records: u64,
    /// Web UI session lifetime in minutes.
    pub session_lifetime_minutes: u32,
    /// SMTP server host; empty = mail disabled.
    pub smtp_host: String,
    /// SMTP server port.
    pub smtp_port: u16,
    /// SMTP connection security.
    pub smtp_tls: SmtpTls,
    /// SMTP user; empty = no authentication.
    pub smtp_user: String,
    /// Name of the secret that holds the SMTP password; empty = none.
    pub smtp_password_secret: String,
    /// Sender address.
    pub smtp_from: String,
    /// Origins allowed by CORS; empty = none.
    pub cors_origins: Vec<String>,
    /// Folders whose `.syncjs` files `filePath` may name; empty = `filePath` is refused.
    pub script_folders: Vec<String>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings::from_values(&HashMap::new()).expect("the built-in defaults are valid")
    }
}

impl Settings {
    /// Build from stored key → value text, using defaults for missing keys.
    pub fn from_values(stored: &HashMap<String, String>) -> StoreResult<Settings> {
        let get = |key: &str| -> StoreResult<String> {
            let def = setting_def(key)?;
            match stored.get(key) {
                Some(v) => normalize_setting(key, v),
                None => Ok(def.default.to_string()),
            }
        };
        let num = |key: &str| -> StoreResult<i64> {
            get(key)?
                .parse::<i64>()
                .map_err(|e| StoreError::Invalid(format!("setting {key}: {e}")))
        };
        Ok(Settings {
            allow_cli_run: get("allow-cli-run")? == "true",
            max_concurrent_jobs: num("max-concurrent-jobs")? as u32,
            job_memory_limit_mb: num("job-memory-limit-mb")? as u32,
            job_timeout_seconds: num("job-timeout-seconds")? as u64,
            job_lease_seconds: num("job-lease-seconds")? as u32,
            job_log_max_lines: num("job-log-max-lines")? as u64,
            local_fsync: get("local-fsync")? == "true",
            job_retention_days: num("job-retention-days")? as u32,
            job_retention_max_jobs: num("job-retention-max-jobs")? as u64,
            audit_retention_days: num("audit-retention-days")? as u32,
            audit_retention_max_records: num("audit-retention-max-records")? as u64,
            session_lifetime_minutes: num("session-lifetime-minutes")? as u32,
            smtp_host: get("smtp-host")?,
            smtp_port: num("smtp-port")? as u16,
            smtp_tls: get("smtp-tls")?.parse()?,
            smtp_user: get("smtp-user")?,
            smtp_password_secret: get("smtp-password-secret")?,
            smtp_from: get("smtp-from")?,
            cors_origins: get("cors-origins")?
                .split(',')
                .filter(|o| !o.is_empty())
                .map(str::to_string)
                .collect(),
            script_folders: get("script-folders")?
                .split(';')
                .filter(|f| !f.is_empty())
                .map(str::to_string)
                .collect(),
        })
    }
}

impl Store {
    async fn stored_settings(&self) -> StoreResult<HashMap<String, String>> {
        let rows = sqlx::query("SELECT key, value FROM settings")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("key")?, row.try_get("value")?)))
            .collect()
    }

    /// All settings, typed, with defaults for those never set.
    pub async fn settings(&self) -> StoreResult<Settings> {
        Settings::from_values(&self.stored_settings().await?)
    }

    /// Every known setting with its current text value, in display order.
    pub async fn list_settings(&self) -> StoreResult<Vec<SettingValue>> {
        let stored = self.stored_settings().await?;
        SETTINGS
            .iter()
            .map(|def| {
                Ok(match stored.get(def.key) {
                    Some(v) => SettingValue {
                        key: def.key,
                        value: normalize_setting(def.key, v)?,
                        is_default: false,
                    },
                    None => SettingValue {
                        key: def.key,
                        value: def.default.to_string(),
                        is_default: true,
                    },
                })
            })
            .collect()
    }

    /// The current text value of setting `key` (its default if never set).
    pub async fn get_setting(&self, key: &str) -> StoreResult<SettingValue> {
        let def = setting_def(key)?;
        let value: Option<String> = sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(self.pool())
            .await?;
        Ok(match value {
            Some(v) => SettingValue {
                key: def.key,
                value: normalize_setting(key, &v)?,
                is_default: false,
            },
            None => SettingValue {
                key: def.key,
                value: def.default.to_string(),
                is_default: true,
            },
        })
    }

    /// Set `key` to `value` after checking it; returns the stored (canonical) text.
    pub async fn set_setting(&self, key: &str, value: &str) -> StoreResult<String> {
        let value = normalize_setting(key, value)?;
        sqlx::query(
            "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(key)
        .bind(&value)
        .bind(now_text())
        .execute(self.pool())
        .await?;
        Ok(value)
    }

    /// Reset every setting to its default (for `aft reinit`).
    pub async fn reset_settings(&self) -> StoreResult<()> {
        sqlx::query("DELETE FROM settings")
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_values() {
        let s = Settings::default();
        assert!(!s.allow_cli_run);
        assert_eq!(s.max_concurrent_jobs, 4);
        assert_eq!(s.job_memory_limit_mb, 256);
        assert_eq!(s.job_timeout_seconds, 0);
        assert_eq!(s.job_retention_days, 30);
        assert_eq!(s.job_retention_max_jobs, 0);
        assert_eq!(s.session_lifetime_minutes, 480);
        assert_eq!(s.smtp_port, 587);
        assert_eq!(s.smtp_tls, SmtpTls::Starttls);
        assert!(s.cors_origins.is_empty());
    }

    #[test]
    fn bad_values_name_the_key_and_what_is_accepted() {
        let err = normalize_setting("max-concurrent-jobs", "many")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("max-concurrent-jobs") && err.contains("whole number"),
            "{err}"
        );
        let err = normalize_setting("no-such-key", "1")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no-such-key") && err.contains("allow-cli-run"),
            "{err}"
        );
        let err = normalize_setting("cors-origins", "https://a.example, ftp x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("ftp x"), "{err}");
        assert_eq!(
            normalize_setting("allow-cli-run", " TRUE ").unwrap(),
            "true"
        );
        assert_eq!(
            normalize_setting("cors-origins", "https://a.example , http://b:8080").unwrap(),
            "https://a.example,http://b:8080"
        );
    }

    #[test]
    fn url_settings_take_only_http_urls_or_nothing() {
        for bad in [
            "hooks.example.com/aft",
            "ftp://h/x",
            "https://",
            "not a url",
        ] {
            let err = normalize_setting("notify-webhook", bad)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("notify-webhook") && err.contains("https://"),
                "{err}"
            );
        }
        assert_eq!(
            normalize_setting("notify-webhook", " https://hooks.example.com/aft ").unwrap(),
            "https://hooks.example.com/aft"
        );
        assert_eq!(normalize_setting("public-url", "").unwrap(), "");
    }
}
