//! Admin roles (migration 0060): what a signed-in admin may do. The server decides which
//! routes each role may call; the store keeps one role per admin.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::util::{int_bool, name_key, parse_time};
use crate::{Secret, Store, StoreError, StoreResult, now_text};

/// What an admin may do, from least to most.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read only.
    Viewer,
    /// Run and halt jobs, read jobs and logs, edit scripts, schedules and watchers.
    Operator,
    /// Everything.
    #[default]
    Admin,
}

impl Role {
    /// Every role, least first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = StoreError;
    fn from_str(s: &str) -> StoreResult<Role> {
        match s.trim().to_ascii_lowercase().as_str() {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            _ => Err(StoreError::Invalid(format!(
                "unknown role {s:?}: use admin, operator or viewer"
            ))),
        }
    }
}

/// An admin user with role and sign-in state (never a password hash or TOTP secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminAccount {
    /// User name as created.
    pub username: String,
    /// What the admin may do.
    pub role: Role,
    /// Whether sign-in asks for a TOTP code.
    pub two_factor: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When the password, role or two-factor state last changed.
    pub updated_at: DateTime<Utc>,
}

fn account_from_row(row: &sqlx::any::AnyRow) -> StoreResult<AdminAccount> {
    Ok(AdminAccount {
        username: row.try_get("username")?,
        role: row.try_get::<String, _>("role")?.parse()?,
        two_factor: int_bool(row.try_get("totp_enabled")?),
        created_at: parse_time("created_at", &row.try_get::<String, _>("created_at")?)?,
        updated_at: parse_time("updated_at", &row.try_get::<String, _>("updated_at")?)?,
    })
}

const ACCOUNT_COLUMNS: &str = "username, role, totp_enabled, created_at, updated_at";

impl Store {
    /// Every admin with role and two-factor state, by user name.
    pub async fn admin_accounts(&self) -> StoreResult<Vec<AdminAccount>> {
        let rows = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM admins ORDER BY username_key"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(account_from_row).collect()
    }

    /// One admin with role and two-factor state; `NotFound` if none.
    pub async fn admin_account(&self, username: &str) -> StoreResult<AdminAccount> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM admins WHERE username_key = $1"
        ))
        .bind(name_key(username))
        .fetch_optional(self.pool())
        .await?;
        match row {
            Some(row) => account_from_row(&row),
            None => Err(StoreError::NotFound {
                kind: "admin user",
                name: username.to_string(),
            }),
        }
    }

    /// The role of `username`, `None` if there is no such admin.
    pub async fn admin_role(&self, username: &str) -> StoreResult<Option<Role>> {
        let role: Option<String> =
            sqlx::query_scalar("SELECT role FROM admins WHERE username_key = $1")
                .bind(name_key(username))
                .fetch_optional(self.pool())
                .await?;
        role.map(|r| r.parse()).transpose()
    }

    /// Create an admin with `role`. Until an admin with the `admin` role exists, only that
    /// role is accepted (someone must be able to manage admins).
    pub async fn create_admin_with_role(
        &self,
        username: &str,
        password: &Secret,
        role: Role,
    ) -> StoreResult<AdminAccount> {
        if role != Role::Admin {
            let admins: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM admins WHERE role = 'admin'")
                    .fetch_one(self.pool())
                    .await?;
            if admins == 0 {
                return Err(StoreError::Refused(format!(
                    "no admin has the admin role yet: create one with that role before a {role}"
                )));
            }
        }
        self.create_admin(username, password).await?;
        if role != Role::Admin {
            // The column defaults to admin; should this fail, take the new admin away again
            // rather than leave it with more rights than asked for.
            let set = sqlx::query("UPDATE admins SET role = $1 WHERE username_key = $2")
                .bind(role.as_str())
                .bind(name_key(username))
                .execute(self.pool())
                .await;
            if let Err(e) = set {
                let _ = self.delete_admin(username).await;
                return Err(e.into());
            }
        }
        self.admin_account(username).await
    }

    /// Change the role of `username`. The last admin with the `admin` role cannot be given
    /// less (nobody could manage admins any more).
    pub async fn set_admin_role(&self, username: &str, role: Role) -> StoreResult<AdminAccount> {
        let key = name_key(username);
        let mut tx = self.pool().begin().await?;
        if self.dialect() == crate::Dialect::Postgres {
            // Two admins demoting each other at once must not leave no admin.
            sqlx::query("LOCK TABLE admins IN SHARE ROW EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
        }
        // The UPDATE first: on SQLite it takes the write lock before the count is read.
        let done =
            sqlx::query("UPDATE admins SET role = $1, updated_at = $2 WHERE username_key = $3")
                .bind(role.as_str())
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
        let admins: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM admins WHERE role = 'admin'")
            .fetch_one(&mut *tx)
            .await?;
        if admins == 0 {
            tx.rollback().await?;
            return Err(StoreError::Refused(format!(
                "{username} is the last admin with the admin role; give another admin that role first"
            )));
        }
        tx.commit().await?;
        self.admin_account(username).await
    }
}

/// What seals an admin's TOTP secret (binding it to the admin, as secrets are to their name).
fn totp_seal_name(username: &str) -> String {
    format!("admin-totp:{}", name_key(username))
}

fn hash_code(code: &str) -> String {
    use sha2::{Digest, Sha256};
    let normal: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    hex::encode(Sha256::digest(normal.as_bytes()))
}

impl Store {
    /// Keep `secret` (the TOTP shared secret as base32 text) for `username`, sealed with
    /// `key`, until [`Store::confirm_two_factor`]; sign-in does not ask for codes yet.
    /// Refused while two-factor sign-in is on (reset it first).
    pub async fn begin_two_factor(
        &self,
        key: &crate::SecretsKey,
        username: &str,
        secret: &Secret,
    ) -> StoreResult<()> {
        let sealed = key.seal(&totp_seal_name(username), secret)?;
        let done = sqlx::query(
            "UPDATE admins SET totp_secret = $1 WHERE username_key = $2 AND totp_enabled = 0",
        )
        .bind(sealed)
        .bind(name_key(username))
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            self.admin_account(username).await?;
            return Err(StoreError::Refused(format!(
                "two-factor sign-in is already on for {username}; reset it first"
            )));
        }
        Ok(())
    }

    /// The TOTP secret of `username` (base32 text) and whether sign-in asks for it;
    /// `None` if none was ever begun.
    pub async fn two_factor_secret(
        &self,
        key: &crate::SecretsKey,
        username: &str,
    ) -> StoreResult<Option<(Secret, bool)>> {
        let row =
            sqlx::query("SELECT totp_secret, totp_enabled FROM admins WHERE username_key = $1")
                .bind(name_key(username))
                .fetch_optional(self.pool())
                .await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound {
                kind: "admin user",
                name: username.to_string(),
            });
        };
        let Some(sealed) = row.try_get::<Option<String>, _>("totp_secret")? else {
            return Ok(None);
        };
        let secret = key.open(&totp_seal_name(username), &sealed)?;
        Ok(Some((secret, int_bool(row.try_get("totp_enabled")?))))
    }

    /// Turn two-factor sign-in on for `username` with these recovery codes (kept as
    /// SHA-256 only; each works once).
    pub async fn confirm_two_factor(&self, username: &str, recovery: &[Secret]) -> StoreResult<()> {
        let hashes: Vec<String> = recovery.iter().map(|c| hash_code(c.expose())).collect();
        let done = sqlx::query(
            "UPDATE admins SET totp_enabled = 1, recovery_codes = $1, updated_at = $2 \
             WHERE username_key = $3 AND totp_secret IS NOT NULL",
        )
        .bind(serde_json::to_string(&hashes).unwrap_or_default())
        .bind(now_text())
        .bind(name_key(username))
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Refused(format!(
                "no two-factor enrolment of {username} to confirm: start one first"
            )));
        }
        Ok(())
    }

    /// Use up recovery code `code` of `username`: true if it was one of theirs.
    pub async fn use_recovery_code(&self, username: &str, code: &str) -> StoreResult<bool> {
        let key = name_key(username);
        let mut tx = self.pool().begin().await?;
        // Write first, so two sign-ins with one code cannot both read it (SQLite's write
        // lock, PostgreSQL's row lock).
        sqlx::query("UPDATE admins SET updated_at = updated_at WHERE username_key = $1")
            .bind(&key)
            .execute(&mut *tx)
            .await?;
        let stored: Option<Option<String>> =
            sqlx::query_scalar("SELECT recovery_codes FROM admins WHERE username_key = $1")
                .bind(&key)
                .fetch_optional(&mut *tx)
                .await?;
        let mut hashes: Vec<String> = stored
            .flatten()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        let wanted = hash_code(code);
        let Some(at) = hashes.iter().position(|h| *h == wanted) else {
            tx.rollback().await?;
            return Ok(false);
        };
        hashes.remove(at);
        sqlx::query("UPDATE admins SET recovery_codes = $1 WHERE username_key = $2")
            .bind(serde_json::to_string(&hashes).unwrap_or_default())
            .bind(&key)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Turn two-factor sign-in off for `username` and forget its secret and recovery codes
    /// (`aft admin reset-2fa`, an admin for a lost phone).
    pub async fn reset_two_factor(&self, username: &str) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE admins SET totp_secret = NULL, totp_enabled = 0, recovery_codes = NULL, \
             updated_at = $1 WHERE username_key = $2",
        )
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
}
