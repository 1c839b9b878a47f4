//! The `aft` command: parses the command line and hands each subcommand to its module.

// First: its `out!` and `outln!` macros are used by the modules after it.
#[macro_use]
mod global;
mod client;
mod cmd;
mod delegate;
mod local_job;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use global::GlobalArgs;

/// aft: automated file transfers with SyncJS scripts.
#[derive(Parser)]
#[command(name = "aft", version, about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Each subcommand's arguments are defined when it runs (or for help, completions and man
/// pages): building them all took a seventh of a one-line `aft run`. A subcommand's one-line
/// description is its variant's doc comment below; the arguments structs carry plain
/// comments, as a doc comment there would replace it once the arguments are defined.
#[derive(Subcommand)]
#[command(defer = true)]
enum Command {
    /// Run a .syncjs script to completion (exit 0 on success, 1 on failure)
    Run(cmd::run::Args),
    /// Check a script's syntax without running it
    Check(cmd::check::Args),
    /// List a folder: `aft ls ENTRY:/path` (VFS Library) or a local path
    Ls(cmd::files::LsArgs),
    /// Copy files without a script: `aft cp SRC DST`, each `ENTRY:/path` or a local path
    Cp(cmd::files::CpArgs),
    /// Show or change server settings
    Settings(cmd::settings::Args),
    /// Manage encrypted secrets (values are write-only)
    Secret(cmd::secret::Args),
    /// Manage stored scripts
    Script(cmd::script::Args),
    /// Manage API keys for the REST API
    Apikey(cmd::apikey::Args),
    /// Manage web UI admin users
    Admin(cmd::admin::Args),
    /// Read, export and check the audit trail of every change
    Audit(cmd::audit::Args),
    /// Manage the VFS Library: named connections for GetVFS("name") and watchers
    Vfs(cmd::vfs::Args),
    /// Reset settings and delete all admin users (lock-out recovery); keeps scripts,
    /// VFS Library, secrets, API keys and schedules
    Reinit(cmd::reinit::Args),
    /// Run the service: REST API and web UI over HTTPS, job runner (foreground)
    Serve(cmd::serve::Args),
    /// Queue a stored script on a running service and print the job id
    Start(cmd::start::Args),
    /// List, show, follow and halt jobs
    Jobs(cmd::jobs::Args),
    /// List the service nodes sharing this store
    Nodes(cmd::nodes::Args),
    /// List notifications of job outcomes and deliver dead ones again
    Notify(cmd::notify::Args),
    /// Manage schedules: cron expressions (with time zones) that queue stored scripts
    Schedule(cmd::schedule::Args),
    /// Manage watcher jobs: stored scripts the service keeps running
    Watcher(cmd::watcher::Args),
    /// Run aft as a system service: install, uninstall, start, stop, restart, status
    Svc(cmd::svc::Args),
    /// Copy the store to FILE while the service may run (SQLite; see docs for PostgreSQL)
    Backup(cmd::backup::BackupArgs),
    /// Replace the store with a backup (the service must be stopped)
    Restore(cmd::backup::RestoreArgs),
    /// Print the shell completion script (bash, zsh, fish, powershell, elvish)
    Completions(cmd::completions::CompletionsArgs),
    /// Write man pages for aft and every subcommand
    Man(cmd::completions::ManArgs),
}

fn main() -> ExitCode {
    global::install_crypto_provider();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return global::usage_error(e),
    };
    if !matches!(cli.command, Command::Serve(_)) {
        global::share_malloc_arenas();
    }
    let code = match cli.command {
        Command::Run(args) => cmd::run::execute(&cli.global, args),
        Command::Check(args) => cmd::check::execute(&cli.global, args),
        Command::Ls(args) => cmd::files::ls(&cli.global, args),
        Command::Cp(args) => cmd::files::cp(&cli.global, args),
        Command::Settings(args) => cmd::settings::execute(&cli.global, args),
        Command::Secret(args) => cmd::secret::execute(&cli.global, args),
        Command::Script(args) => cmd::script::execute(&cli.global, args),
        Command::Apikey(args) => cmd::apikey::execute(&cli.global, args),
        Command::Admin(args) => cmd::admin::execute(&cli.global, args),
        Command::Audit(args) => cmd::audit::execute(&cli.global, args),
        Command::Vfs(args) => cmd::vfs::execute(&cli.global, args),
        Command::Reinit(args) => cmd::reinit::execute(&cli.global, args),
        Command::Serve(args) => cmd::serve::execute(&cli.global, args),
        Command::Start(args) => cmd::start::execute(&cli.global, args),
        Command::Jobs(args) => cmd::jobs::execute(&cli.global, args),
        Command::Nodes(args) => cmd::nodes::execute(&cli.global, args),
        Command::Notify(args) => cmd::notify::execute(&cli.global, args),
        Command::Schedule(args) => cmd::schedule::execute(&cli.global, args),
        Command::Watcher(args) => cmd::watcher::execute(&cli.global, args),
        Command::Svc(args) => cmd::svc::execute(&cli.global, args),
        Command::Backup(args) => cmd::backup::backup(&cli.global, args),
        Command::Restore(args) => cmd::backup::restore(&cli.global, args),
        Command::Completions(args) => cmd::completions::completions::<Cli>(args),
        Command::Man(args) => cmd::completions::man::<Cli>(args),
    };
    global::finish_output(code)
}
