//! `aft check FILE`: compile a SyncJS script without running it.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::global::{self, GlobalArgs};

// Check a script's syntax without running it; exit 0 when it compiles, 1 when not.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The .syncjs script to check
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

/// Run `aft check FILE`.
pub fn execute(_global: &GlobalArgs, args: Args) -> ExitCode {
    let name = args.file.display().to_string();
    let source = match std::fs::read_to_string(&args.file) {
        Ok(source) => source,
        Err(e) => return global::usage_failure(format!("cannot read script {name}: {e}")),
    };
    match aft_engine::check_syntax(&name, &source) {
        Ok(()) => {
            outln!("{name}: syntax OK");
            ExitCode::SUCCESS
        }
        Err(e) => {
            // The compiler's `file:line:col: message` form, which editors can jump to.
            eprintln!("{}:{}:{}: {}", e.file, e.line, e.column, e.message);
            ExitCode::from(global::EXIT_FAILURE)
        }
    }
}
