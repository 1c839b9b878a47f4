//! One module per subcommand; each exposes an `Args` struct and
//! `pub fn execute(global: &GlobalArgs, args: Args) -> ExitCode`.

pub mod admin;
pub mod apikey;
pub mod audit;
pub mod backup;
pub mod check;
pub mod completions;
pub mod files;
pub mod in_use;
pub mod jobs;
pub mod nodes;
pub mod notify;
pub mod reinit;
pub mod run;
pub mod schedule;
pub mod script;
pub mod script_policy;
pub mod secret;
pub mod serve;
pub mod settings;
pub mod start;
pub mod svc;
pub mod vfs;
pub mod watcher;

use std::fmt;
use std::future::Future;
use std::io::Read;
use std::process::ExitCode;

use aft_store::Store;

use crate::global::{self, GlobalArgs};

/// A problem with how a command was called (exit 2), as opposed to a failure (exit 1).
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// `--params` text as job parameters, with the parser every entry point shares (a flat
/// JSON object or AFT! v3's name/value list); a bad value is a usage error naming the option.
pub fn params_arg(text: &str) -> Result<aft_store::JobParams, UsageError> {
    aft_store::JobParams::parse(text).map_err(|e| UsageError(format!("--params: {e}")))
}

/// Run `work` on a small current-thread runtime and turn its outcome into an exit code:
/// a [`UsageError`] exits 2, any other error prints one line and exits 1.
pub fn run_async<Fut>(work: Fut) -> ExitCode
where
    Fut: Future<Output = anyhow::Result<()>>,
{
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    match runtime.block_on(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<UsageError>() {
            Some(usage) => global::usage_failure(usage),
            None => fail(error_line(&e)),
        },
    }
}

/// Open the store named by the global options (creating the data directory for the
/// default SQLite file), run `work` with it, and close it.
pub fn with_store<F, Fut>(global: &GlobalArgs, work: F) -> ExitCode
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let at = StoreAt::of(global);
    run_async(async move {
        let store = at.open().await?;
        // What the command changes in the store goes to the audit trail, as `local`.
        let audit = aft_server::audit::LocalAudit::begin(&store, &at.url).await?;
        let outcome = work(store.clone()).await;
        let recorded = audit.finish(&store, &audit::command_words()).await;
        store.close().await;
        outcome?;
        recorded?;
        Ok(())
    })
}

/// The store the global options name, to open inside the command's runtime.
pub struct StoreAt {
    /// The database URL in effect.
    pub url: String,
    /// The data directory to create first, for the embedded SQLite store.
    data_dir: Option<std::path::PathBuf>,
}

impl StoreAt {
    /// The store of `global`'s `--database` or `--data`.
    pub fn of(global: &GlobalArgs) -> Self {
        Self {
            url: global.database_url(),
            data_dir: global.database.is_none().then(|| global.data_dir()),
        }
    }

    /// Create the data directory if the store lives there, and open the store.
    pub async fn open(&self) -> anyhow::Result<Store> {
        if let Some(dir) = &self.data_dir {
            aft_store::create_data_dir(dir)?;
        }
        Ok(Store::open(&self.url).await?)
    }
}

/// An error and its causes on one line, leaving out a cause whose text the line already
/// holds (many errors repeat their source's message in their own).
pub fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Print `message` as one error line and return exit code 1.
pub fn fail(message: impl fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(global::EXIT_FAILURE)
}

/// Read a value from standard input, dropping one trailing newline (`\n` or `\r\n`).
/// On a terminal, `prompt` is shown first on standard error.
pub fn read_stdin_value(prompt: &str) -> anyhow::Result<String> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        eprintln!("{prompt} (then Enter and Ctrl-D):");
    }
    let mut value = String::new();
    std::io::stdin()
        .read_to_string(&mut value)
        .map_err(|e| anyhow::anyhow!("cannot read standard input: {e}"))?;
    if let Some(stripped) = value.strip_suffix('\n') {
        value = stripped.strip_suffix('\r').unwrap_or(stripped).to_string();
    }
    Ok(value)
}

/// Print rows as a plain table with aligned columns (the last column is not padded).
pub fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                let width = widths.get(i).copied().unwrap_or(0);
                out.push_str(&format!("{cell:<width$}  "));
            }
        }
        outln!("{}", out.trim_end());
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Print `value` as pretty JSON on standard output.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    outln!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A timestamp as shown in tables: UTC, to the second.
pub fn show_time(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// How recently a node must have heart-beaten to count as using its store: nodes beat every
/// few seconds, and one killed a minute ago no longer holds a reset or restore back.
const LIVE_NODE_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

/// Refuse while a service runs on `data_dir` or, from any machine, uses `store` (when
/// given); `then` ends the message ("run aft reinit again").
pub async fn refuse_while_in_use(
    data_dir: &std::path::Path,
    store: Option<&Store>,
    then: &str,
) -> anyhow::Result<()> {
    if let Some(service) = aft_server::discovery::ServiceInfo::find_live(data_dir) {
        anyhow::bail!(
            "the aft service is running on this data directory (pid {}, {}): stop it, then {then}",
            service.pid,
            service.url
        );
    }
    let Some(store) = store else { return Ok(()) };
    if let Some(node) = store.live_nodes(LIVE_NODE_WINDOW).await?.first() {
        anyhow::bail!(
            "the aft service is running on this database: node {} on {} (pid {}, {}, last seen {}); stop every node, then {then}",
            node.id,
            node.hostname,
            node.pid,
            node.url,
            node.heartbeat_at
        );
    }
    Ok(())
}

/// Ask `question` on the terminal and go on only on "yes". Without a terminal `--yes` is
/// required: a usage error saying `what` the command would do.
pub fn confirm(question: &str, what: &str) -> anyhow::Result<()> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return Err(UsageError(format!(
            "{what}: add --yes to confirm (there is no terminal to ask on)"
        ))
        .into());
    }
    eprint!("{question} Type yes to go on: ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if answer.trim() != "yes" {
        anyhow::bail!("nothing changed");
    }
    Ok(())
}
