//! `aft completions SHELL` and `aft man --dir DIR`: shell completions and man pages, made
//! from the same clap definitions as the commands themselves, so they cannot drift.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::CommandFactory;

use super::fail;

// Print the completion script for a shell.
#[derive(clap::Args, Debug)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, powershell or elvish
    shell: clap_complete::Shell,
}

// Write man pages: aft.1 and one per subcommand (aft-run.1, aft-schedule-add.1, ...).
#[derive(clap::Args, Debug)]
pub struct ManArgs {
    /// The folder to write the pages to (created if missing)
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
}

/// Run `aft completions SHELL`.
pub fn completions<C: CommandFactory>(args: CompletionsArgs) -> ExitCode {
    let mut command = C::command();
    command.build();
    let mut command = with_full_help_tree(command);
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "aft", &mut script);
    // A reader that stops early (| head) closes the pipe: not a failure of ours.
    use std::io::Write;
    match std::io::stdout().write_all(&script) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => fail(format!("cannot write the completion script: {e}")),
    }
}

/// `command` (built) with its `help` subcommand's tree as deep as the commands': clap copies
/// the subcommands under `help` before it defines the deferred ones (`defer = true` in
/// main.rs), so `aft help admin <TAB>` would complete nothing. The copy is made as clap makes
/// it: names, one-line descriptions and hidden marks, no arguments.
fn with_full_help_tree(command: clap::Command) -> clap::Command {
    /// The subcommands of `command` but clap's own `help`.
    fn subcommands(command: &clap::Command) -> impl Iterator<Item = &clap::Command> {
        command
            .get_subcommands()
            .filter(|sub| sub.get_name() != "help")
    }
    /// `command`'s copy under `help`, named below `parent` as a built command would be.
    fn copy(command: &clap::Command, parent: &str) -> clap::Command {
        let bin_name = format!("{parent} {}", command.get_name());
        let mut copy = clap::Command::new(command.get_name().to_string())
            .bin_name(bin_name.clone())
            .display_name(bin_name.replace(' ', "-"))
            .hide(command.is_hide_set())
            .disable_help_flag(true)
            .disable_version_flag(true)
            .disable_help_subcommand(true)
            .subcommands(subcommands(command).map(|sub| copy(sub, &bin_name)));
        if let Some(about) = command.get_about() {
            copy = copy.about(about.clone());
        }
        copy
    }
    let help_bin_name = format!(
        "{} help",
        command.get_bin_name().unwrap_or(command.get_name())
    );
    let mut copies: std::collections::HashMap<String, clap::Command> = subcommands(&command)
        .map(|sub| (sub.get_name().to_string(), copy(sub, &help_bin_name)))
        .collect();
    // `help` is the last subcommand, and its own are replaced where they stand.
    command.mut_subcommand("help", |help| {
        help.mut_subcommands(|sub| copies.remove(sub.get_name()).unwrap_or(sub))
    })
}

/// Run `aft man --dir DIR`.
pub fn man<C: CommandFactory>(args: ManArgs) -> ExitCode {
    if let Err(e) = std::fs::create_dir_all(&args.dir) {
        return fail(format!("cannot create {}: {e}", args.dir.display()));
    }
    let mut command = C::command();
    command.build();
    match write_pages(&command, &args.dir) {
        Ok(count) => {
            outln!("{count} man pages written to {}", args.dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// Write the page of `command` and of each subcommand below it; after `build()`, clap
/// names subcommands for their pages (`aft-schedule-add`).
fn write_pages(command: &clap::Command, dir: &std::path::Path) -> Result<usize, String> {
    let name = command
        .get_display_name()
        .unwrap_or(command.get_name())
        .to_string();
    let path = dir.join(format!("{name}.1"));
    let mut out = Vec::new();
    clap_mangen::Man::new(command.clone())
        .render(&mut out)
        .map_err(|e| format!("cannot render {name}.1: {e}"))?;
    std::fs::write(&path, out).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let mut count = 1;
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        count += write_pages(sub, dir)?;
    }
    Ok(count)
}
