//! API keys for automation (`X-API-Key`): 256 random bits shown once at creation and stored
//! as SHA-256 only, each with an IP allow-list, an optional expiry and an optional list of
//! scripts it may start.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ipnet::IpNet;
use rand::RngCore;
use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;
use subtle::ConstantTimeEq;

use crate::util::{
    conflict_or_db, name_key, new_id, parse_opt_time, parse_time, time_text, validate_name,
};
use crate::{Secret, Store, StoreError, StoreResult, now_text};

/// Which caller addresses may use a key: addresses and CIDR ranges, IPv4 and IPv6.
/// An empty list allows nobody.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiKeyAllowList {
    nets: Vec<IpNet>,
}

impl ApiKeyAllowList {
    /// A list of these networks.
    pub fn new(nets: Vec<IpNet>) -> ApiKeyAllowList {
        ApiKeyAllowList { nets }
    }

    /// The networks in the list.
    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }

    /// Whether the list is empty (and so allows nobody).
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// Whether a caller at `ip` is allowed. An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`)
    /// also matches IPv4 entries, as dual-stack listeners report IPv4 callers that way.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let mapped = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        self.nets
            .iter()
            .any(|net| net.contains(&ip) || mapped.is_some_and(|v4| net.contains(&v4)))
    }
}

impl FromStr for ApiKeyAllowList {
    type Err = StoreError;

    /// Parse `"127.0.0.1, 10.0.0.0/8, ::1, fd00::/8"`; a bare address means just that address.
    fn from_str(text: &str) -> StoreResult<ApiKeyAllowList> {
        let mut nets = Vec::new();
        for entry in text
            .split([',', ' ', '\t', '\n'])
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let net = if entry.contains('/') {
                entry.parse::<IpNet>().ok()
            } else {
                entry.parse::<IpAddr>().ok().map(IpNet::from)
            };
            match net {
                Some(net) if !nets.contains(&net) => nets.push(net),
                Some(_) => {}
                None => {
                    return Err(StoreError::Invalid(format!(
                        "allow-list entry {entry:?} is not an IP address or CIDR range \
                         (examples: 127.0.0.1, 10.0.0.0/8, ::1, fd00::/8)"
                    )));
                }
            }
        }
        Ok(ApiKeyAllowList { nets })
    }
}

impl fmt::Display for ApiKeyAllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, net) in self.nets.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            if net.prefix_len() == net.max_prefix_len() {
                write!(f, "{}", net.addr())?;
            } else {
                write!(f, "{net}")?;
            }
        }
        Ok(())
    }
}

impl Serialize for ApiKeyAllowList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A stored API key (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    /// Id (UUIDv7).
    pub id: String,
    /// Name, unique case-insensitively.
    pub name: String,
    /// The first characters of the key, to tell keys apart.
    pub prefix: String,
    /// Caller addresses allowed to use it.
    pub allow_list: ApiKeyAllowList,
    /// Script names it may start (case-insensitive); `None` = any script.
    pub scripts: Option<Vec<String>>,
    /// Whether it may run `.syncjs` files of the script folders (`filePath`).
    pub file_runs: bool,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When it last authenticated a request (to the minute: a key in steady use is
    /// recorded once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl ApiKey {
    /// Whether this key may start the script named `script_name` (case-insensitive).
    pub fn may_start(&self, script_name: &str) -> bool {
        match &self.scripts {
            None => true,
            Some(names) => names
                .iter()
                .any(|n| n.to_lowercase() == script_name.to_lowercase()),
        }
    }

    /// Whether the key has expired at `now`.
    pub fn is_expired_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// What a new API key is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    /// Name, unique case-insensitively.
    pub name: String,
    /// Caller addresses allowed to use it (an empty list allows nobody).
    pub allow_list: ApiKeyAllowList,
    /// When it stops working; `None` = never.
    pub expires_at: Option<DateTime<Utc>>,
    /// Script names it may start; `None` = any.
    pub scripts: Option<Vec<String>>,
    /// Whether it may run `.syncjs` files of the script folders (`filePath`).
    pub file_runs: bool,
}

/// The outcome of checking a presented key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiKeyCheck {
    /// A live key: the caller still has to pass its allow-list.
    Valid(ApiKey),
    /// No key matches.
    Unknown,
    /// The key was revoked.
    Revoked(ApiKey),
    /// The key has expired.
    Expired(ApiKey),
}

/// The text prefix of every key, so secret scanners and people recognise one.
pub const API_KEY_PREFIX: &str = "aft_";

fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// How stale an API key's `last_used_at` may get while the key is in use.
const LAST_USED_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

const COLUMNS: &str = "id, name, prefix, allow_list, scripts, file_runs, expires_at, revoked_at, last_used_at, created_at, key_hash";

fn api_key_from_row(row: &AnyRow) -> StoreResult<ApiKey> {
    let allow_list: String = row.try_get("allow_list")?;
    let scripts: Option<String> = row.try_get("scripts")?;
    let scripts = scripts
        .map(|s| serde_json::from_str::<Vec<String>>(&s))
        .transpose()
        .map_err(|e| {
            StoreError::Invalid(format!("stored script list of an API key is not JSON: {e}"))
        })?;
    Ok(ApiKey {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        allow_list: allow_list.parse()?,
        scripts,
        file_runs: row.try_get::<i64, _>("file_runs")? != 0,
        expires_at: parse_opt_time("expires_at", row.try_get("expires_at")?)?,
        revoked_at: parse_opt_time("revoked_at", row.try_get("revoked_at")?)?,
        last_used_at: parse_opt_time("last_used_at", row.try_get("last_used_at")?)?,
        created_at: parse_time("created_at", &row.try_get::<String, _>("created_at")?)?,
    })
}

impl Store {
    /// Create a key; returns its record and the key itself, which is never available again.
    pub async fn create_api_key(&self, new: NewApiKey) -> StoreResult<(ApiKey, Secret)> {
        validate_name("API key", &new.name)?;
        if let Some(scripts) = &new.scripts {
            for script in scripts {
                validate_name("script", script)?;
            }
        }
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let key = format!("{API_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
        let id = new_id();
        let scripts = new
            .scripts
            .as_ref()
            .map(|s| serde_json::to_string(s).expect("strings serialize"));
        sqlx::query(
            "INSERT INTO api_keys (id, name, name_key, key_hash, prefix, allow_list, scripts, file_runs, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&id)
        .bind(&new.name)
        .bind(name_key(&new.name))
        .bind(hash_key(&key))
        .bind(&key[..API_KEY_PREFIX.len() + 6])
        .bind(new.allow_list.to_string())
        .bind(scripts)
        .bind(i64::from(new.file_runs))
        .bind(new.expires_at.map(time_text))
        .bind(now_text())
        .execute(self.pool())
        .await
        .map_err(conflict_or_db("API key", &new.name))?;
        Ok((self.find_api_key(&id).await?, Secret::new(key)))
    }

    /// Check a presented key: which key it is and whether it is live. A live key's
    /// `last_used_at` is updated. The caller's address is checked by the caller, against
    /// [`ApiKey::allow_list`].
    pub async fn authenticate_api_key(&self, presented: &str) -> StoreResult<ApiKeyCheck> {
        let hash = hash_key(presented.trim());
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM api_keys WHERE key_hash = $1"
        ))
        .bind(&hash)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(ApiKeyCheck::Unknown);
        };
        let stored: String = row.try_get("key_hash")?;
        if !bool::from(stored.as_bytes().ct_eq(hash.as_bytes())) {
            return Ok(ApiKeyCheck::Unknown);
        }
        let key = api_key_from_row(&row)?;
        if key.revoked_at.is_some() {
            return Ok(ApiKeyCheck::Revoked(key));
        }
        if key.is_expired_at(Utc::now()) {
            return Ok(ApiKeyCheck::Expired(key));
        }
        // Recorded at most once a minute: a write per request would be one more SQLite
        // write transaction (and its lock) for every job a busy client submits.
        let now = Utc::now();
        if key
            .last_used_at
            .is_some_and(|at| at <= now && now - at < LAST_USED_EVERY)
        {
            return Ok(ApiKeyCheck::Valid(key));
        }
        let now = now_text();
        sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
            .bind(&now)
            .bind(&key.id)
            .execute(self.pool())
            .await?;
        Ok(ApiKeyCheck::Valid(ApiKey {
            last_used_at: Some(parse_time("last_used_at", &now)?),
            ..key
        }))
    }

    /// All keys, by name.
    pub async fn list_api_keys(&self) -> StoreResult<Vec<ApiKey>> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM api_keys ORDER BY name_key"))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(api_key_from_row).collect()
    }

    /// The key with this id or (case-insensitive) name; `NotFound` if none.
    pub async fn find_api_key(&self, id_or_name: &str) -> StoreResult<ApiKey> {
        let row = self
            .row_by_id_or_name("api_keys", COLUMNS, "API key", id_or_name)
            .await?;
        api_key_from_row(&row)
    }

    /// Revoke the key with this id or name (it stays listed, marked revoked); revoking twice
    /// keeps the first time.
    pub async fn revoke_api_key(&self, id_or_name: &str) -> StoreResult<ApiKey> {
        let key = self.find_api_key(id_or_name).await?;
        sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now_text())
            .bind(&key.id)
            .execute(self.pool())
            .await?;
        self.find_api_key(&key.id).await
    }

    /// Delete the key with this id or name; `NotFound` if none.
    pub async fn delete_api_key(&self, id_or_name: &str) -> StoreResult<()> {
        let key = self.find_api_key(id_or_name).await?;
        sqlx::query("DELETE FROM api_keys WHERE id = $1")
            .bind(&key.id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_accepts_ipv4_ipv6_and_cidr() {
        let list: ApiKeyAllowList = "127.0.0.1, 10.0.0.0/8, ::1, fd00::/8".parse().unwrap();
        assert_eq!(list.to_string(), "127.0.0.1, 10.0.0.0/8, ::1, fd00::/8");
        for ok in [
            "127.0.0.1",
            "10.200.3.4",
            "::1",
            "fd12::5",
            "::ffff:10.1.2.3",
            "::ffff:127.0.0.1",
        ] {
            assert!(list.allows(ok.parse().unwrap()), "{ok} should be allowed");
        }
        for no in ["127.0.0.2", "11.0.0.1", "::2", "fe80::1", "::ffff:11.0.0.1"] {
            assert!(!list.allows(no.parse().unwrap()), "{no} should be refused");
        }
    }

    #[test]
    fn allow_list_rejects_junk_naming_the_entry() {
        let err = "10.0.0.0/8, 300.1.1.1"
            .parse::<ApiKeyAllowList>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"300.1.1.1\""), "{err}");
        let err = "example.com"
            .parse::<ApiKeyAllowList>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("example.com"), "{err}");
        let err = "10.0.0.0/33"
            .parse::<ApiKeyAllowList>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("10.0.0.0/33"), "{err}");
    }

    #[test]
    fn empty_allow_list_allows_nobody() {
        let list: ApiKeyAllowList = "".parse().unwrap();
        assert!(list.is_empty());
        assert!(!list.allows("127.0.0.1".parse().unwrap()));
    }
}
