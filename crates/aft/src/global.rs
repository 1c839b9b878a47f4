//! Options every command shares, and the process-wide setup they need.

use std::fmt;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Mutex, PoisonError};

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

/// Let the threads of a command other than `serve` share two malloc arenas. glibc gives
/// each new thread an arena of its own (up to eight per core), and in `aft run` the SQLite
/// connections', the job's and the runtime's threads each left one mostly empty but
/// resident: some 0.4 MiB of a one-line script's 17 MiB peak. Two, not one, so that a
/// transfer's copy and hash threads do not queue for the same lock. `serve` keeps glibc's
/// default: its worker threads allocate at the same time.
pub fn share_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tunable of glibc's allocator; it is called before any
    // other thread starts, and a refusal (return value 0) leaves the default in place.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Print command output, like `print!`, through [`Output`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::global::write_output(format_args!($($arg)*))
    };
}

/// Print a line of command output, like `println!`, through [`Output`].
macro_rules! outln {
    () => {
        $crate::global::write_output(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::global::write_output(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Why standard output could not be written, other than a reader that left early.
static OUTPUT_FAILURE: Mutex<Option<String>> = Mutex::new(None);

/// Standard output for command output. A reader that leaves early (`aft script list |
/// head -1`, `| grep -q`) is not a failure: the rest of the output is dropped, the command
/// still finishes its work (a change is still audited) and exits with its own code, so a
/// pipeline under `set -o pipefail` passes. Rust's `println!` would panic there, and
/// dying by SIGPIPE would exit 141. SIGPIPE stays ignored because a script's
/// `RunProgram` writes to its child's stdin: a child that exits early must fail that
/// write, not kill aft. Any other write error (a full disk under `> file`) is kept and
/// fails the command at the end ([`finish_output`]), so a cut-short file is never taken
/// for a whole one.
pub struct Output;

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        tolerate_closed_pipe(io::stdout().lock().write(buf), buf.len())
    }

    // One lock per call, so that lines from several threads do not interleave.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        tolerate_closed_pipe(io::stdout().lock().write_all(buf), ())
    }

    fn write_fmt(&mut self, args: fmt::Arguments<'_>) -> io::Result<()> {
        tolerate_closed_pipe(io::stdout().lock().write_fmt(args), ())
    }

    fn flush(&mut self) -> io::Result<()> {
        tolerate_closed_pipe(io::stdout().lock().flush(), ())
    }
}

/// A reader that left is success (`dropped` stands for what was written); any other
/// error is noted for [`finish_output`] and returned.
fn tolerate_closed_pipe<T>(result: io::Result<T>, dropped: T) -> io::Result<T> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(dropped),
        other => other.inspect_err(note_output_failure),
    }
}

fn note_output_failure(e: &io::Error) {
    let mut failure = OUTPUT_FAILURE
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    failure.get_or_insert_with(|| e.to_string());
}

/// Write formatted command output (the `out!` and `outln!` macros).
pub fn write_output(args: fmt::Arguments<'_>) {
    // An error is already noted by `Output`; the command goes on.
    let _ = Output.write_fmt(args);
}

/// The command's exit code, or a failure if its output could not be written.
pub fn finish_output(code: ExitCode) -> ExitCode {
    let _ = Output.flush();
    let failure = OUTPUT_FAILURE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    match failure {
        Some(why) => {
            eprintln!("error: cannot write the output: {why}");
            ExitCode::from(EXIT_FAILURE)
        }
        None => code,
    }
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
