//! Options every command shares, and the process-wide setup they need.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

/// Exit code for a usage error (unknown flag, bad parameters, missing file).
pub const EXIT_USAGE: u8 = 2;
/// Exit code for a failed, halted or refused run.
pub const EXIT_FAILURE: u8 = 1;

/// Options shared by every subcommand.
#[derive(Args, Debug, Clone)]
pub struct GlobalArgs {
    /// Data directory: the SQLite database, the secrets key, the TLS certificate
    /// [default: $XDG_DATA_HOME/aft, or ~/.local/share/aft]
    #[arg(long, global = true, env = "AFT_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Database URL [default: the SQLite file aft.db in the data directory];
    /// postgres://user:pass@host/db to share state between several nodes
    #[arg(long, global = true, env = "AFT_DATABASE", value_name = "URL")]
    pub database: Option<String>,
}

impl GlobalArgs {
    /// The data directory in effect.
    pub fn data_dir(&self) -> PathBuf {
        if let Some(dir) = &self.data {
            return dir.clone();
        }
        dirs::data_dir()
            .unwrap_or_else(|| PathBuf::from("."))
            .join("aft")
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        match &self.database {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir().join("aft.db").display()),
        }
    }
}

/// rustls finds two crypto providers compiled in (ring, and aws-lc through a dependency)
/// and panics unless one is chosen before the first TLS connection.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Print a clap error; usage errors exit 2 with one line saying what is wrong,
/// `--help` and `--version` exit 0.
pub fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        _ => {
            let rendered = e.render().to_string();
            let first = rendered
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid usage");
            eprintln!("{first}");
            eprintln!("Run 'aft --help' for usage.");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Print an error for a usage problem found after parsing (params not a flat object, a
/// missing file) and return exit code 2.
pub fn usage_failure(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(EXIT_USAGE)
}
