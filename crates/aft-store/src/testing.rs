//! A harness that runs a store test against both dialects: SQLite in a temporary directory
//! and PostgreSQL (`AFT_TEST_POSTGRES_URL`, started by `ci/peers/postgres.sh`), each test in
//! its own fresh database that is dropped afterwards. Enabled by the `testing` feature.
//!
//! ```ignore
//! aft_store::both_dialects!(scripts_round_trip, |store| async move {
//!     store.list_scripts().await.unwrap();
//! });
//! ```
//! generates `scripts_round_trip::sqlite` and `scripts_round_trip::postgres`.

use std::future::Future;

use sqlx::Connection;

use crate::Store;

/// Environment variable with the PostgreSQL server URL for tests.
pub const POSTGRES_URL_ENV: &str = "AFT_TEST_POSTGRES_URL";

/// The PostgreSQL server URL for tests; panics with a message saying how to start one.
pub fn postgres_url() -> String {
    match std::env::var(POSTGRES_URL_ENV) {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "{POSTGRES_URL_ENV} is not set: run the tests through ci/test.sh, or start \
             PostgreSQL with `mkdir -p /tmp/st && bash ci/peers/postgres.sh /tmp/st` and \
             source its output"
        ),
    }
}

/// `url` with its database name replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{database}?{q}"),
        None => format!("{base}/{database}"),
    }
}

/// A fresh PostgreSQL database on the test server, dropped by [`TempPostgres::drop_database`].
pub struct TempPostgres {
    /// URL of the new database.
    pub url: String,
    name: String,
    server_url: String,
}

impl TempPostgres {
    /// Create a database `t_<random>` on the server named by `AFT_TEST_POSTGRES_URL`.
    pub async fn create() -> TempPostgres {
        let server_url = postgres_url();
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&server_url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {POSTGRES_URL_ENV}: {e}"));
        sqlx::Executor::execute(&mut admin, format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let _ = admin.close().await;
        TempPostgres {
            url: with_database(&server_url, &name),
            name,
            server_url,
        }
    }

    /// Drop the database (closing other connections to it).
    pub async fn drop_database(self) {
        if let Ok(mut admin) = sqlx::PgConnection::connect(&self.server_url).await {
            let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
            if let Err(e) = sqlx::Executor::execute(&mut admin, sql.as_str()).await {
                eprintln!("warning: cannot drop test database {}: {e}", self.name);
            }
            let _ = admin.close().await;
        }
    }
}

/// Run `test` with a fresh [`Store`] on a temporary SQLite file.
pub async fn run_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let store = Store::open_in_dir(dir.path())
        .await
        .expect("open a SQLite store");
    let outcome = tokio::spawn(test(store.clone())).await;
    store.close().await;
    drop(dir);
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Run `test` with a fresh [`Store`] on a new PostgreSQL database, dropped afterwards even
/// if the test panics.
pub async fn run_postgres<F, Fut>(test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let db = TempPostgres::create().await;
    let store = match Store::open(&db.url).await {
        Ok(store) => store,
        Err(e) => {
            db.drop_database().await;
            panic!("cannot open a PostgreSQL store: {e}");
        }
    };
    let outcome = tokio::spawn(test(store.clone())).await;
    store.close().await;
    db.drop_database().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Generate a module `$name` with two tests, `sqlite` and `postgres`, each running the
/// closure `|store| async move { ... }` on a fresh store of that dialect. Needs `tokio`
/// (with `macros` and `rt`) in the calling crate.
#[macro_export]
macro_rules! both_dialects {
    ($name:ident, |$store:ident| $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[::tokio::test]
            async fn sqlite() {
                $crate::testing::run_sqlite(|$store: $crate::Store| $body).await
            }

            #[::tokio::test]
            async fn postgres() {
                $crate::testing::run_postgres(|$store: $crate::Store| $body).await
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn with_database_replaces_only_the_path() {
        assert_eq!(
            with_database("postgres://u@h:5/postgres", "t_1"),
            "postgres://u@h:5/t_1"
        );
        assert_eq!(
            with_database("postgres://u@h:5", "t_1"),
            "postgres://u@h:5/t_1"
        );
        assert_eq!(
            with_database("postgres://u@h/db?sslmode=disable", "t"),
            "postgres://u@h/t?sslmode=disable"
        );
    }
}
