//! Admin users of the web UI (argon2id password hashes) and their sign-in sessions
//! (random tokens stored as SHA-256 only).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::util::{conflict_or_db, name_key, parse_time, time_text, validate_name};
use crate::{Secret, Store, StoreError, StoreResult, now_text};

/// Shortest password accepted for an admin.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// An admin user (never the password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Admin {
    /// User name as created; sign-in matches it case-insensitively.
    pub username: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A live admin session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminSession {
    /// The signed-in user.
    pub username: String,
    /// When the session ends.
    pub expires_at: DateTime<Utc>,
}

fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn hash_password(password: &str) -> StoreResult<String> {
    use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Crypto(format!("cannot hash the password: {e}")))
}

fn password_matches(password: &str, phc: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(phc).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Run argon2 off the async threads: one hash takes tens of milliseconds of CPU.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> StoreResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Crypto(format!("password hashing task failed: {e}")))
}

fn check_password(password: &Secret) -> StoreResult<()> {
    if password.expose().chars().count() < MIN_PASSWORD_CHARS {
        return Err(StoreError::Invalid(format!(
            "the password must have at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

impl Store {
    /// Create an admin; `Conflict` if the user name exists (ignoring case).
    pub async fn create_admin(&self, username: &str, password: &Secret) -> StoreResult<Admin> {
        validate_name("user", username)?;
        check_password(password)?;
        let plain = password.expose().to_string();
        let phc = blocking(move || hash_password(&plain)).await??;
        let now = now_text();
        sqlx::query(
            "INSERT INTO admins (username, username_key, password_hash, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(username)
        .bind(name_key(username))
        .bind(phc)
        .bind(&now)
        .execute(self.pool())
        .await
        .map_err(conflict_or_db("admin user", username))?;
        Ok(Admin {
            username: username.to_string(),
            created_at: parse_time("created_at", &now)?,
        })
    }

    /// Replace the password of `username`; `NotFound` if there is no such admin.
    pub async fn set_admin_password(&self, username: &str, password: &Secret) -> StoreResult<()> {
        check_password(password)?;
        let plain = password.expose().to_string();
        let phc = blocking(move || hash_password(&plain)).await??;
        let done = sqlx::query(
            "UPDATE admins SET password_hash = $1, updated_at = $2 WHERE username_key = $3",
        )
        .bind(phc)
        .bind(now_text())
        .bind(name_key(username))
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                kind: "admin user",
                name: username.to_string(),
            });
        }
        Ok(())
    }

    /// The admin if `username` (case-insensitive) and `password` match, else `None`. Takes
    /// as long for an unknown user as for a wrong password.
    pub async fn verify_admin(&self, username: &str, password: &str) -> StoreResult<Option<Admin>> {
        let row = sqlx::query(
            "SELECT username, password_hash, created_at FROM admins WHERE username_key = $1",
        )
        .bind(name_key(username))
        .fetch_optional(self.pool())
        .await?;
        let plain = password.to_string();
        let Some(row) = row else {
            // Spend the same work on a made-up hash so timing does not reveal user names.
            blocking(move || hash_password(&plain)).await??;
            return Ok(None);
        };
        let phc: String = row.try_get("password_hash")?;
        if !blocking(move || password_matches(&plain, &phc)).await? {
            return Ok(None);
        }
        Ok(Some(Admin {
            username: row.try_get("username")?,
            created_at: parse_time("created_at", &row.try_get::<String, _>("created_at")?)?,
        }))
    }

    /// All admins, by user name.
    pub async fn list_admins(&self) -> StoreResult<Vec<Admin>> {
        let rows = sqlx::query("SELECT username, created_at FROM admins ORDER BY username_key")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Admin {
                    username: row.try_get("username")?,
                    created_at: parse_time("created_at", &row.try_get::<String, _>("created_at")?)?,
                })
            })
            .collect()
    }

    /// How many admins exist (0 = the web UI offers to create the first one).
    pub async fn count_admins(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM admins")
            .fetch_one(self.pool())
            .await?)
    }

    /// Delete one admin and their sessions; `NotFound` if none.
    pub async fn delete_admin(&self, username: &str) -> StoreResult<()> {
        let key = name_key(username);
        sqlx::query("DELETE FROM admin_sessions WHERE username_key = $1")
            .bind(&key)
            .execute(self.pool())
            .await?;
        let done = sqlx::query("DELETE FROM admins WHERE username_key = $1")
            .bind(&key)
            .execute(self.pool())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                kind: "admin user",
                name: username.to_string(),
            });
        }
        Ok(())
    }

    /// Delete every admin and every session (for `aft reinit`); returns how many admins.
    pub async fn delete_all_admins(&self) -> StoreResult<u64> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM admin_sessions")
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM admins").execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// Start a session for `username` lasting `lifetime`; returns the token (shown to the
    /// browser only) and when it expires.
    pub async fn create_session(
        &self,
        username: &str,
        lifetime: std::time::Duration,
    ) -> StoreResult<(Secret, DateTime<Utc>)> {
        let lifetime = chrono::Duration::from_std(lifetime)
            .map_err(|_| StoreError::Invalid("session lifetime is too long".to_string()))?;
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let now = Utc::now();
        let expires_at = now + lifetime;
        let done = sqlx::query(
            "INSERT INTO admin_sessions (token_hash, username_key, created_at, expires_at) \
             SELECT $1, username_key, $2, $3 FROM admins WHERE username_key = $4",
        )
        .bind(hash_token(&token))
        .bind(time_text(now))
        .bind(time_text(expires_at))
        .bind(name_key(username))
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                kind: "admin user",
                name: username.to_string(),
            });
        }
        Ok((
            Secret::new(token),
            parse_time("expires_at", &time_text(expires_at))?,
        ))
    }

    /// The live session for `token`, `None` if unknown or expired.
    pub async fn session(&self, token: &str) -> StoreResult<Option<AdminSession>> {
        let row = sqlx::query(
            "SELECT a.username, s.expires_at FROM admin_sessions s \
             JOIN admins a ON a.username_key = s.username_key \
             WHERE s.token_hash = $1 AND s.expires_at > $2",
        )
        .bind(hash_token(token))
        .bind(now_text())
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            Ok(AdminSession {
                username: row.try_get("username")?,
                expires_at: parse_time("expires_at", &row.try_get::<String, _>("expires_at")?)?,
            })
        })
        .transpose()
    }

    /// End the session for `token` (sign out); unknown tokens are ignored.
    pub async fn delete_session(&self, token: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM admin_sessions WHERE token_hash = $1")
            .bind(hash_token(token))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Delete expired sessions; returns how many.
    pub async fn purge_expired_sessions(&self) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM admin_sessions WHERE expires_at <= $1")
            .bind(now_text())
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }
}
