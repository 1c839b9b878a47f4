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

/// How many argon2 hashes run at once. Each takes ~19 MiB and tens of milliseconds of CPU;
/// they run on this many threads of their own, so a burst of sign-ins waits its turn, and
/// the allocator keeps at most this many 19 MiB blocks (on the blocking pool every thread
/// that ever hashed kept one: 200 bad sign-ins grew the service by hundreds of MiB).
const ARGON2_THREADS: usize = 2;

type HashJob = Box<dyn FnOnce() + Send>;

/// The queue of the argon2 threads, started at the first hash.
fn argon2_queue() -> &'static std::sync::mpsc::Sender<HashJob> {
    static QUEUE: std::sync::OnceLock<std::sync::mpsc::Sender<HashJob>> =
        std::sync::OnceLock::new();
    QUEUE.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<HashJob>();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        for i in 0..ARGON2_THREADS {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("aft-argon2-{i}"))
                .spawn(move || {
                    loop {
                        let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!("cannot start a password hashing thread: {e}");
            }
        }
        tx
    })
}

/// Run argon2 work `f` on the argon2 threads and wait for it without blocking async code.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> StoreResult<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    argon2_queue()
        .send(Box::new(move || {
            let _ = tx.send(f());
        }))
        .map_err(|_| StoreError::Crypto("the password hashing threads are gone".into()))?;
    rx.await
        .map_err(|_| StoreError::Crypto("password hashing failed".into()))
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

    /// Create the first admin of a new install, atomically: `Conflict` once any admin
    /// exists, however many setups race (only one of them creates an admin).
    pub async fn create_first_admin(
        &self,
        username: &str,
        password: &Secret,
    ) -> StoreResult<Admin> {
        validate_name("user", username)?;
        check_password(password)?;
        let plain = password.expose().to_string();
        let phc = blocking(move || hash_password(&plain)).await??;
        let now = now_text();
        let mut tx = self.pool().begin().await?;
        if self.dialect() == crate::Dialect::Postgres {
            // Under READ COMMITTED two `INSERT ... WHERE NOT EXISTS` can both see no admin;
            // the lock makes the second wait for the first. SQLite runs one writer at a time.
            sqlx::query("LOCK TABLE admins IN SHARE ROW EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
        }
        let inserted = sqlx::query(
            "INSERT INTO admins (username, username_key, password_hash, created_at, updated_at) \
             SELECT $1, $2, $3, $4, $4 WHERE NOT EXISTS (SELECT 1 FROM admins)",
        )
        .bind(username)
        .bind(name_key(username))
        .bind(phc)
        .bind(&now)
        .execute(&mut *tx)
        .await
        .map_err(conflict_or_db("admin user", username))?
        .rows_affected();
        tx.commit().await?;
        if inserted == 0 {
            return Err(StoreError::Refused(
                "an admin already exists; sign in instead".into(),
            ));
        }
        Ok(Admin {
            username: username.to_string(),
            created_at: parse_time("created_at", &now)?,
        })
    }

    /// Replace the password of `username` and end their sessions (a password is changed
    /// because it may be known to someone else); `NotFound` if there is no such admin.
    pub async fn set_admin_password(&self, username: &str, password: &Secret) -> StoreResult<()> {
        check_password(password)?;
        let plain = password.expose().to_string();
        let phc = blocking(move || hash_password(&plain)).await??;
        let key = name_key(username);
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE admins SET password_hash = $1, updated_at = $2 WHERE username_key = $3",
        )
        .bind(phc)
        .bind(now_text())
        .bind(&key)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                kind: "admin user",
                name: username.to_string(),
            });
        }
        sqlx::query("DELETE FROM admin_sessions WHERE username_key = $1")
            .bind(&key)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
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

    /// Delete one admin and their sessions; `NotFound` if none, `Conflict` for the last
    /// admin (that would lock everyone out of the web UI; `aft reinit` is for a reset).
    pub async fn delete_admin(&self, username: &str) -> StoreResult<()> {
        let key = name_key(username);
        let mut tx = self.pool().begin().await?;
        if self.dialect() == crate::Dialect::Postgres {
            // Two admins deleting each other at once must not leave none.
            sqlx::query("LOCK TABLE admins IN SHARE ROW EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
        }
        let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM admins WHERE username_key = $1")
            .bind(&key)
            .fetch_one(&mut *tx)
            .await?;
        if exists == 0 {
            return Err(StoreError::NotFound {
                kind: "admin user",
                name: username.to_string(),
            });
        }
        // At least one admin with the admin role must stay (crate::roles).
        let done = sqlx::query(
            "DELETE FROM admins WHERE username_key = $1 AND (SELECT COUNT(*) FROM admins \
             WHERE role = 'admin' AND username_key <> $1) > 0",
        )
        .bind(&key)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Refused(format!(
                "{username} is the last admin with the admin role and cannot be deleted; give \
                 another admin that role first (or reset with 'aft reinit')"
            )));
        }
        sqlx::query("DELETE FROM admin_sessions WHERE username_key = $1")
            .bind(&key)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
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
