//! Starting and stopping the service: store, TLS, node registration, the runner, the
//! HTTPS listener, `service.json`, and an orderly shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;

use aft_store::SecretsKey;
use aft_store::Store;

use crate::ServeError;
use crate::auth::FailedAuthLimiter;
use crate::discovery::ServiceInfo;
use crate::host::StoreJobHost;
use crate::metrics::Metrics;
use crate::runner::Runner;
use crate::state::{AppInner, AppState};
use crate::tls::{TlsFiles, ensure_self_signed};

/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:44399";

/// How `aft serve` runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The data directory (database, secrets key, certificate, `service.json`).
    pub data_dir: PathBuf,
    /// The database URL.
    pub database_url: String,
    /// Where to listen.
    pub listen: SocketAddr,
    /// The user's own certificate and key; `None` for the self-signed one.
    pub tls: Option<TlsFiles>,
    /// How long running jobs get to end after a shutdown signal before they are marked
    /// `interrupted`.
    pub grace: Duration,
    /// Connections kept open at once; more are closed at once
    /// ([`crate::connections::DEFAULT_MAX_CONNECTIONS`] by default).
    pub max_connections: usize,
}

/// How long a client has to send a request's headers (HTTP/1), counted from the first byte
/// of a request or an idle kept-alive connection's next one.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// HTTP/2 connections are pinged this often and closed when a ping is not answered in
/// [`HTTP2_PING_TIMEOUT`].
const HTTP2_PING_EVERY: Duration = Duration::from_secs(30);
const HTTP2_PING_TIMEOUT: Duration = Duration::from_secs(10);

/// The node id of a data directory: made once, kept in `DATA/node-id`.
fn node_id(data_dir: &Path) -> Result<String, ServeError> {
    let path = data_dir.join("node-id");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let id = text.trim();
        if !id.is_empty() {
            return Ok(id.to_string());
        }
    }
    let id = uuid::Uuid::now_v7().to_string();
    std::fs::write(&path, &id).map_err(|source| ServeError::Io {
        path: path.display().to_string(),
        source,
    })?;
    Ok(id)
}

/// This machine's name, as node records and CLI job records show it.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// Run the service until `shutdown` completes, then stop in order: stop taking requests,
/// halt running jobs, wait up to the grace period, mark what is left `interrupted`.
pub async fn serve(
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let data_dir = &options.data_dir;
    aft_store::create_data_dir(data_dir)?;
    let store = Store::open(&options.database_url).await?;
    let secrets_key = Arc::new(SecretsKey::load_or_create(data_dir)?);
    let tls = match &options.tls {
        Some(files) => files.clone(),
        None => ensure_self_signed(data_dir)?,
    };
    let rustls_config = axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
        .await
        .map_err(|e| {
            ServeError::Tls(format!(
                "cannot use certificate {} with key {}: {e}",
                tls.cert.display(),
                tls.key.display()
            ))
        })?;
    let listener =
        std::net::TcpListener::bind(options.listen).map_err(|source| ServeError::Listen {
            addr: options.listen.to_string(),
            source,
        })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| ServeError::Listen {
            addr: options.listen.to_string(),
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| ServeError::Listen {
        addr: options.listen.to_string(),
        source,
    })?;
    let local_host = if bound.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        bound.ip().to_string()
    };
    let url = match bound {
        SocketAddr::V6(_) if !bound.ip().is_unspecified() => {
            format!("https://[{local_host}]:{}", bound.port())
        }
        _ => format!("https://{local_host}:{}", bound.port()),
    };

    let node_id = node_id(data_dir)?;
    store
        .register_node(&node_id, &host_name(), std::process::id(), &url)
        .await?;
    let metrics = Arc::new(Metrics::default());
    let host = StoreJobHost::new(
        store.clone(),
        secrets_key.clone(),
        tokio::runtime::Handle::current(),
    );
    crate::followups::start(store.clone(), host.clone(), url.clone());
    let runner = Runner::new(store.clone(), node_id.clone(), host, metrics.clone());
    runner.start().await?;
    let scheduler = crate::scheduler::start(store.clone(), runner.clone());
    let watchers = crate::watcher_jobs::start(store.clone(), runner.clone());

    let mut token_bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut token_bytes);
    let local_token = URL_SAFE_NO_PAD.encode(token_bytes);
    let state = AppState(Arc::new(AppInner {
        store: store.clone(),
        runner: runner.clone(),
        local_token: local_token.clone(),
        limiter: FailedAuthLimiter::default(),
        metrics,
        secrets_key,
        data_dir: data_dir.clone(),
    }));
    let app = crate::api::router(state);
    // Building the routes and their OpenAPI document freed about 2 MiB of heap that glibc
    // keeps resident among live blocks; give those pages back before the service idles.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only hands free pages of glibc's allocator back to the system.
    unsafe {
        libc::malloc_trim(0);
    }

    let info = ServiceInfo {
        pid: std::process::id(),
        url: url.clone(),
        cert_path: tls.cert.clone(),
        token: local_token,
        node_id: node_id.clone(),
    };
    info.write(data_dir).map_err(|source| ServeError::Io {
        path: data_dir
            .join(crate::discovery::SERVICE_FILE)
            .display()
            .to_string(),
        source,
    })?;
    println!(
        "aft serve: listening on {url} (node {node_id}, data {})",
        data_dir.display()
    );
    tracing::info!(%url, %node_id, "service started");

    let handle = axum_server::Handle::new();
    // Without TCP_NODELAY a response written in two parts (headers, body) waits for a
    // delayed ACK: 40 ms on every small answer.
    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(rustls_config)
        .acceptor(axum_server::accept::NoDelayAcceptor::new());
    let acceptor = crate::connections::CappedAcceptor::new(acceptor, options.max_connections);
    let mut server = axum_server::from_tcp(listener)
        .acceptor(acceptor)
        .handle(handle.clone());
    // Slow clients: a connection that never completes its headers (or goes silent over
    // HTTP/2) is closed instead of holding a slot. The TLS handshake has its own 10 s limit.
    let http = server.http_builder();
    http.http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    http.http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive_interval(HTTP2_PING_EVERY)
        .keep_alive_timeout(HTTP2_PING_TIMEOUT);
    let server = server.serve(app.into_make_service_with_connect_info::<SocketAddr>());
    let server_task = tokio::spawn(server);
    shutdown.await;
    tracing::info!("shutting down: no new requests, halting running jobs");
    // Open live-log streams would hold a graceful shutdown forever; give requests in
    // flight a moment, then close.
    handle.graceful_shutdown(Some(Duration::from_millis(500)));
    scheduler.stop().await;
    watchers.stop().await;
    runner.shutdown(options.grace).await;
    let _ = server_task.await;
    ServiceInfo::remove(data_dir);
    store.close().await;
    println!("aft serve: stopped");
    Ok(())
}

/// Listen for SIGTERM and SIGINT (Ctrl-C) from now on, and resolve when one arrives. Call it
/// before the service starts: until a signal is listened for, its default action kills the
/// process without a clean stop (`service.json` left behind, jobs not marked).
pub fn shutdown_signal() -> impl Future<Output = ()> + Send {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
