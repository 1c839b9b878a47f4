//! Secrets: named values encrypted at rest with XChaCha20-Poly1305, under a key kept
//! outside the database (`secrets.key` in the data directory, or `AFT_SECRET_KEY`).

use std::fmt;
use std::io::Write;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::util::{parse_time, validate_name};
use crate::{Store, StoreError, StoreResult, now_text};

pub use aft_secret::Secret;

/// The 32-byte key that encrypts secrets. Every node sharing one database needs the same key.
#[derive(Clone)]
pub struct SecretsKey {
    bytes: [u8; 32],
}

impl fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretsKey(id {})", self.id())
    }
}

impl SecretsKey {
    /// Environment variable that supplies the key (base64 of 32 bytes) instead of the file.
    pub const ENV: &'static str = "AFT_SECRET_KEY";
    /// File name of the key inside the data directory.
    pub const FILE: &'static str = "secrets.key";

    /// The key from `AFT_SECRET_KEY` if set, else from `secrets.key` in `data_dir`, which is
    /// created (mode 0600, random bytes) on first use.
    pub fn load_or_create(data_dir: &Path) -> StoreResult<SecretsKey> {
        if let Ok(text) = std::env::var(Self::ENV)
            && !text.trim().is_empty()
        {
            return Self::from_base64(&text)
                .map_err(|e| StoreError::Crypto(format!("{}: {e}", Self::ENV)));
        }
        let path = data_dir.join(Self::FILE);
        let io_err = |source| StoreError::Io {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                warn_if_readable_by_others(&path);
                Self::from_base64(&text)
                    .map_err(|e| StoreError::Crypto(format!("{}: {e}", path.display())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                crate::create_data_dir(data_dir)?;
                let key = Self::generate();
                // Write a private temp file, then hard-link it into place: the link fails if
                // another process created the key first, and then its key wins.
                let tmp = data_dir.join(format!(".{}.{}", Self::FILE, std::process::id()));
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create(true).truncate(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(&tmp).map_err(io_err)?;
                file.write_all(format!("{}\n", key.to_base64().expose()).as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(io_err)?;
                let linked = std::fs::hard_link(&tmp, &path);
                let _ = std::fs::remove_file(&tmp);
                match linked {
                    Ok(()) => {
                        tracing::info!(path = %path.display(), "created a new secrets key");
                        Ok(key)
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Self::load_or_create(data_dir)
                    }
                    Err(e) => Err(io_err(e)),
                }
            }
            Err(e) => Err(io_err(e)),
        }
    }

    /// A key from its base64 text (standard alphabet, 32 bytes).
    pub fn from_base64(text: &str) -> StoreResult<SecretsKey> {
        let bytes = BASE64
            .decode(text.trim())
            .map_err(|_| StoreError::Crypto("the secrets key is not valid base64".to_string()))?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            StoreError::Crypto(format!(
                "the secrets key must be 32 bytes (44 base64 characters), found {} bytes",
                b.len()
            ))
        })?;
        Ok(SecretsKey { bytes })
    }

    /// A new random key.
    pub fn generate() -> SecretsKey {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        SecretsKey { bytes }
    }

    /// The key as base64 text (what `secrets.key` and `AFT_SECRET_KEY` hold).
    pub fn to_base64(&self) -> Secret {
        Secret::new(BASE64.encode(self.bytes))
    }

    /// A short public fingerprint of the key, stored beside each value it seals.
    pub fn id(&self) -> String {
        let digest = Sha256::new()
            .chain_update(b"aft secrets key id\0")
            .chain_update(self.bytes)
            .finalize();
        hex::encode(&digest[..8])
    }

    /// Encrypt `value`, binding it to `name` (so a sealed value cannot be moved to another row).
    pub(crate) fn seal(&self, name: &str, value: &Secret) -> StoreResult<String> {
        let cipher = XChaCha20Poly1305::new((&self.bytes).into());
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: value.expose().as_bytes(),
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| StoreError::Crypto(format!("cannot encrypt secret {name}")))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(BASE64.encode(out))
    }

    /// Decrypt a value sealed by [`SecretsKey::seal`] under `name`.
    pub(crate) fn open(&self, name: &str, sealed: &str) -> StoreResult<Secret> {
        let corrupt =
            || StoreError::Crypto(format!("secret {name} is corrupt or was tampered with"));
        let bytes = BASE64.decode(sealed).map_err(|_| corrupt())?;
        if bytes.len() < 24 {
            return Err(corrupt());
        }
        let (nonce, ciphertext) = bytes.split_at(24);
        let cipher = XChaCha20Poly1305::new((&self.bytes).into());
        let plain = cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| corrupt())?;
        String::from_utf8(plain)
            .map(Secret::new)
            .map_err(|_| corrupt())
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "the secrets key is readable by other users: chmod 600 it");
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// The error for a value sealed under another key.
fn wrong_key() -> StoreError {
    StoreError::Crypto(
        "secrets were encrypted with another key: check AFT_SECRET_KEY / secrets.key".to_string(),
    )
}

/// A stored secret's name and timestamps; never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretInfo {
    /// The secret's name (case-sensitive).
    pub name: String,
    /// When it was first set.
    pub created_at: DateTime<Utc>,
    /// When its value last changed.
    pub updated_at: DateTime<Utc>,
}

impl Store {
    /// Create or replace the secret `name`, encrypted under `key`. Refused if the stored
    /// secrets were sealed with another key (mixing keys would lose one set of values).
    pub async fn set_secret(
        &self,
        key: &SecretsKey,
        name: &str,
        value: &Secret,
    ) -> StoreResult<()> {
        validate_name("secret", name)?;
        let key_id = key.id();
        let other: Option<String> =
            sqlx::query_scalar("SELECT key_id FROM secrets WHERE key_id <> $1 LIMIT 1")
                .bind(&key_id)
                .fetch_optional(self.pool())
                .await?;
        if other.is_some() {
            return Err(wrong_key());
        }
        let sealed = key.seal(name, value)?;
        sqlx::query(
            "INSERT INTO secrets (name, sealed, key_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (name) DO UPDATE SET sealed = excluded.sealed, \
             key_id = excluded.key_id, updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(sealed)
        .bind(key_id)
        .bind(now_text())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The decrypted value of secret `name`, `None` if there is no such secret.
    pub async fn get_secret(&self, key: &SecretsKey, name: &str) -> StoreResult<Option<Secret>> {
        let row = sqlx::query("SELECT sealed, key_id FROM secrets WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let sealed: String = row.try_get("sealed")?;
        let key_id: String = row.try_get("key_id")?;
        if key_id != key.id() {
            return Err(wrong_key());
        }
        key.open(name, &sealed).map(Some)
    }

    /// Names and timestamps of all secrets, by name; never their values.
    pub async fn list_secrets(&self) -> StoreResult<Vec<SecretInfo>> {
        let rows = sqlx::query("SELECT name, created_at, updated_at FROM secrets ORDER BY name")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| {
                Ok(SecretInfo {
                    name: row.try_get("name")?,
                    created_at: parse_time("created_at", &row.try_get::<String, _>("created_at")?)?,
                    updated_at: parse_time("updated_at", &row.try_get::<String, _>("updated_at")?)?,
                })
            })
            .collect()
    }

    /// Delete secret `name`; `NotFound` if there is none.
    pub async fn delete_secret(&self, name: &str) -> StoreResult<()> {
        let done = sqlx::query("DELETE FROM secrets WHERE name = $1")
            .bind(name)
            .execute(self.pool())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                kind: "secret",
                name: name.to_string(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints_its_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"***\"");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn sealed_value_is_bound_to_its_name_and_key() {
        let key = SecretsKey::generate();
        let sealed = key.seal("a", &Secret::new("v")).unwrap();
        assert_eq!(key.open("a", &sealed).unwrap().expose(), "v");
        assert!(matches!(key.open("b", &sealed), Err(StoreError::Crypto(_))));
        assert!(matches!(
            SecretsKey::generate().open("a", &sealed),
            Err(StoreError::Crypto(_))
        ));
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = SecretsKey::load_or_create(dir.path()).unwrap();
        let again = SecretsKey::load_or_create(dir.path()).unwrap();
        assert_eq!(first.id(), again.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(SecretsKey::FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn key_of_wrong_length_is_refused_with_its_size() {
        let err = SecretsKey::from_base64("AAAA").unwrap_err().to_string();
        assert!(err.contains("32 bytes"), "{err}");
    }
}
