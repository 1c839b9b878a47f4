//! An aft service in-process for router tests: the real router and a started runner over a
//! fresh store (SQLite in a temporary directory, or a new PostgreSQL database), called with
//! tower's `oneshot` — no TLS, no socket.

#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aft_server::auth::{API_KEY_HEADER, CSRF_HEADER, FailedAuthLimiter, SESSION_COOKIE};
use aft_server::discovery::LOCAL_TOKEN_HEADER;
use aft_server::host::StoreJobHost;
use aft_server::metrics::Metrics;
use aft_server::runner::Runner;
use aft_server::state::{AppInner, AppState};
use aft_store::testing::TempPostgres;
use aft_store::{ApiKeyAllowList, NewApiKey, NewScript, Secret, SecretsKey, Store};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use tower::ServiceExt;

/// The address requests come from unless a test says otherwise.
pub const PEER: &str = "127.0.0.1:50000";

/// Which database the service runs on.
#[derive(Debug, Clone, Copy)]
pub enum Dialect {
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// A new database on the server of `AFT_TEST_POSTGRES_URL`.
    Postgres,
}

/// A running in-process service (cheap to clone).
#[derive(Clone)]
pub struct Service {
    /// The handlers' state: store, runner, local token...
    pub state: AppState,
    router: Router,
}

/// Run `test` against a fresh service on `dialect`; stop the runner, close the store and
/// drop the database afterwards, even when the test panics.
pub async fn run<F, Fut>(dialect: Dialect, test: F)
where
    F: FnOnce(Service) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let (store, postgres) = match dialect {
        Dialect::Sqlite => (
            Store::open_in_dir(dir.path())
                .await
                .expect("open a SQLite store"),
            None,
        ),
        Dialect::Postgres => {
            let db = TempPostgres::create().await;
            match Store::open(&db.url).await {
                Ok(store) => (store, Some(db)),
                Err(e) => {
                    db.drop_database().await;
                    panic!("cannot open a PostgreSQL store: {e}");
                }
            }
        }
    };
    let service = Service::start(store.clone(), dir.path()).await;
    let runner = service.state.runner.clone();
    let outcome = tokio::spawn(test(service)).await;
    runner.shutdown(Duration::from_secs(2)).await;
    store.close().await;
    if let Some(db) = postgres {
        db.drop_database().await;
    }
    drop(dir);
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Generate a module `$name` with two tests, `sqlite` and `postgres`, each running the
/// async function `$test(Service)` on a fresh service of that dialect.
#[macro_export]
macro_rules! both_dialects {
    ($name:ident, $test:path) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::support::run($crate::support::Dialect::Sqlite, $test).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::support::run($crate::support::Dialect::Postgres, $test).await
            }
        }
    };
}

impl Service {
    /// Assemble the service as `aft serve` does, minus TLS, the listener, the scheduler
    /// and the watchers: node registration, job host, started runner, state, router.
    async fn start(store: Store, data_dir: &std::path::Path) -> Service {
        let secrets_key =
            Arc::new(SecretsKey::load_or_create(data_dir).expect("create the secrets key"));
        let node_id = format!("router-test-{}", uuid::Uuid::new_v4().simple());
        store
            .register_node(
                &node_id,
                "localhost",
                std::process::id(),
                "https://127.0.0.1:1",
            )
            .await
            .expect("register the node");
        let metrics = Arc::new(Metrics::default());
        let host = StoreJobHost::new(
            store.clone(),
            secrets_key.clone(),
            tokio::runtime::Handle::current(),
        );
        let runner = Runner::new(store.clone(), node_id, host, metrics.clone());
        runner.start().await.expect("start the runner");
        let state = AppState(Arc::new(AppInner {
            store,
            runner,
            local_token: format!("local-{}", uuid::Uuid::new_v4().simple()),
            limiter: FailedAuthLimiter::default(),
            metrics,
            secrets_key,
            data_dir: data_dir.to_path_buf(),
        }));
        let router = aft_server::api::router(state.clone());
        Service { state, router }
    }

    /// The store under the service.
    pub fn store(&self) -> &Store {
        &self.state.store
    }

    /// Send `request` through the router (from [`PEER`] unless it carries a
    /// `ConnectInfo` already) and read the whole answer.
    pub async fn send(&self, mut request: Request<Body>) -> Answer {
        if request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .is_none()
        {
            request
                .extensions_mut()
                .insert(ConnectInfo(PEER.parse::<SocketAddr>().unwrap()));
        }
        let what = format!("{} {}", request.method(), request.uri());
        let response = tokio::time::timeout(
            Duration::from_secs(10),
            self.router.clone().oneshot(request),
        )
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within 10 s"))
        .expect("the router is infallible");
        let (parts, body) = response.into_parts();
        let body = tokio::time::timeout(
            Duration::from_secs(10),
            axum::body::to_bytes(body, 16 * 1024 * 1024),
        )
        .await
        .unwrap_or_else(|_| panic!("{what}: the body did not end within 10 s"))
        .expect("read the answer body");
        Answer {
            what,
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// `method path` as `who`, with `body` as JSON when given.
    pub async fn call(
        &self,
        who: &Who,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Answer {
        let mut builder = who.apply(Request::builder().method(method).uri(path));
        let body = match body {
            Some(json) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        self.send(builder.body(body).unwrap()).await
    }

    /// A new API key allowed from loopback, with no scope.
    pub async fn api_key(&self, name: &str) -> Who {
        let (_, secret) = self
            .store()
            .create_api_key(NewApiKey {
                name: name.into(),
                allow_list: ApiKeyAllowList::new(vec![
                    "127.0.0.0/8".parse().unwrap(),
                    "::1/128".parse().unwrap(),
                ]),
                expires_at: None,
                scripts: None,
                file_runs: false,
            })
            .await
            .expect("create an API key");
        Who::ApiKey(secret.expose().to_string())
    }

    /// The local CLI token of this service.
    pub fn local(&self) -> Who {
        Who::Local(self.state.local_token.clone())
    }

    /// A new admin `name`, signed in: its session cookie and CSRF token.
    pub async fn admin_session(&self, name: &str) -> Who {
        let password = "correct horse battery staple";
        self.store()
            .create_admin(name, &Secret::new(password))
            .await
            .expect("create an admin");
        let answer = self
            .call(
                &Who::Nobody,
                Method::POST,
                "/v1/session",
                Some(serde_json::json!({"username": name, "password": password})),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "sign in: {answer}");
        let cookie = answer
            .headers
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .and_then(|pair| pair.strip_prefix(&format!("{SESSION_COOKIE}=")))
            .expect("sign-in sets the session cookie")
            .to_string();
        let csrf = answer.json()["csrfToken"]
            .as_str()
            .expect("sign-in returns csrfToken")
            .to_string();
        Who::Session {
            cookie,
            csrf: Some(csrf),
        }
    }

    /// A stored script.
    pub async fn script(&self, name: &str, body: &str) -> aft_store::Script {
        self.store()
            .create_script(NewScript {
                name: name.into(),
                description: String::new(),
                body: body.into(),
                retry_safe: false,
            })
            .await
            .expect("store a script")
    }
}

/// Who calls.
#[derive(Debug, Clone)]
pub enum Who {
    /// No credentials.
    Nobody,
    /// An `X-API-Key` header.
    ApiKey(String),
    /// The `X-Aft-Local-Token` header.
    Local(String),
    /// An admin session cookie, with or without the CSRF header.
    Session {
        /// The `aft_session` cookie value.
        cookie: String,
        /// The `X-CSRF-Token` header, if sent.
        csrf: Option<String>,
    },
}

impl Who {
    /// `builder` with this caller's credentials.
    pub fn apply(&self, builder: axum::http::request::Builder) -> axum::http::request::Builder {
        match self {
            Who::Nobody => builder,
            Who::ApiKey(key) => builder.header(API_KEY_HEADER, key),
            Who::Local(token) => builder.header(LOCAL_TOKEN_HEADER, token),
            Who::Session { cookie, csrf } => {
                let builder = builder.header(header::COOKIE, format!("{SESSION_COOKIE}={cookie}"));
                match csrf {
                    Some(csrf) => builder.header(CSRF_HEADER, csrf),
                    None => builder,
                }
            }
        }
    }

    /// The same session without its CSRF header.
    pub fn without_csrf(&self) -> Who {
        match self {
            Who::Session { cookie, .. } => Who::Session {
                cookie: cookie.clone(),
                csrf: None,
            },
            other => other.clone(),
        }
    }
}

/// A whole answer.
#[derive(Debug)]
pub struct Answer {
    /// The request, for messages.
    pub what: String,
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl Answer {
    /// The body as JSON; panics (saying what came instead) when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{self}: body not JSON: {e}"))
    }

    /// Panics unless this is `status` with `Content-Type: application/json` and a body
    /// `{"error": "<non-empty text>"}`.
    pub fn assert_json_error(&self, status: StatusCode) {
        assert_eq!(self.status, status, "{self}");
        self.assert_error_shape();
    }

    /// Panics unless the body is a JSON `{"error": "<non-empty text>"}` with a JSON
    /// content type (whatever the status).
    pub fn assert_error_shape(&self) {
        if let Err(why) = self.error_shape() {
            panic!("{why}");
        }
    }

    /// Whether the body is a JSON `{"error": "<non-empty text>"}` with a JSON content
    /// type; if not, why not.
    pub fn error_shape(&self) -> Result<(), String> {
        let content_type = self
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !content_type.starts_with("application/json") {
            return Err(format!("{self}: content type {content_type:?}"));
        }
        let json: serde_json::Value = serde_json::from_slice(&self.body)
            .map_err(|e| format!("{self}: body not JSON: {e}"))?;
        match json.get("error").and_then(|e| e.as_str()) {
            Some(error) if !error.trim().is_empty() => Ok(()),
            _ => Err(format!("{self}: no non-empty \"error\" text")),
        }
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} -> {} {}",
            self.what,
            self.status,
            String::from_utf8_lossy(&self.body[..self.body.len().min(500)])
        )
    }
}
