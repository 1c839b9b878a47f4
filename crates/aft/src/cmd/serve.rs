//! `aft serve`: run the service in the foreground until SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use aft_server::tls::TlsFiles;
use aft_server::{ServeOptions, server};

use super::fail;
use crate::global::{self, GlobalArgs};

// Run the service: the REST API and web UI over HTTPS, the job runner.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address and port to listen on
    #[arg(long, default_value = server::DEFAULT_LISTEN, value_name = "ADDR:PORT")]
    listen: SocketAddr,
    /// PEM certificate (chain) to serve instead of the self-signed one [needs --key]
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// PEM private key of --cert
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// Seconds running jobs get to end after SIGTERM/SIGINT before they are marked interrupted
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    grace: u64,
    /// Connections kept open at once; more are closed at once (slow or idle clients
    /// cannot take the service's sockets)
    #[arg(long, default_value_t = aft_server::connections::DEFAULT_MAX_CONNECTIONS, value_name = "N")]
    max_connections: usize,
    /// Service log lines on standard error: text, or one JSON object a line for log shippers
    #[arg(long, default_value = "text", value_parser = ["text", "json"], env = "AFT_LOG_FORMAT")]
    log_format: String,
}

/// Run `aft serve ...`.
pub fn execute(global: &GlobalArgs, args: Args) -> ExitCode {
    init_logging(&args.log_format);
    let options = ServeOptions {
        data_dir: global.data_dir(),
        database_url: global.database_url(),
        listen: args.listen,
        tls: match (args.cert, args.key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            _ => None,
        },
        grace: Duration::from_secs(args.grace),
        max_connections: args.max_connections,
    };
    limit_malloc_arenas();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    // The signals are listened for inside the runtime, before the service starts.
    match runtime.block_on(async { aft_server::serve(options, server::shutdown_signal()).await }) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(global::EXIT_FAILURE)
        }
    }
}

/// glibc gives each thread that allocates its own malloc arena; every job runs on a thread
/// of its own, so a busy service would keep dozens of mostly empty arenas resident. Two
/// are plenty for a service whose hot path is I/O.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called before any other thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        // Keep glibc from raising its mmap threshold: by default, freeing one large block
        // (an argon2 password check takes 19 MiB) raises the threshold to that size, after
        // which such blocks came from the heap and stayed: every sign-in kept 19 MiB.
        // Pinned at 1 MiB, large blocks are mapped and unmapped as they come and go.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
    // glibc keeps freed memory of finished jobs mapped; give it back every few seconds so
    // an idle service stays small.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    std::thread::spawn(|| {
        loop {
            std::thread::sleep(std::time::Duration::from_secs(5));
            // SAFETY: malloc_trim only releases free heap pages to the kernel.
            unsafe {
                libc::malloc_trim(0);
            }
        }
    });
}

/// The service log on standard error: the level from `AFT_LOG` (else `RUST_LOG`, else
/// `info`); colours only on a terminal and never with `NO_COLOR`, so a log file or journal
/// gets plain text; `json` writes one object a line.
fn init_logging(format: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("AFT_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
        // pavao (SMB) logs every failed call at ERROR, "not found" included; aft reports the
        // failures that matter itself.
        .add_directive("pavao=off".parse().expect("a valid directive"));
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder
            .with_ansi(std::io::stderr().is_terminal() && !no_color)
            .try_init()
    };
}
