//! `aft serve`: run the service in the foreground until SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use aft_server::tls::TlsFiles;
use aft_server::{ServeOptions, server};

use super::fail;
use crate::global::{self, GlobalArgs};

/// Run the service: the REST API and web UI over HTTPS, the job runner.
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
}

/// Run `aft serve ...`.
pub fn execute(global: &GlobalArgs, args: Args) -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AFT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let options = ServeOptions {
        data_dir: global.data_dir(),
        database_url: global.database_url(),
        listen: args.listen,
        tls: match (args.cert, args.key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            _ => None,
        },
        grace: Duration::from_secs(args.grace),
    };
    limit_malloc_arenas();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    match runtime.block_on(aft_server::serve(options, server::shutdown_signal())) {
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
