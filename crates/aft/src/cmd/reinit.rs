//! `aft reinit`: lock-out recovery. Resets settings to their defaults and deletes every
//! admin user and session; keeps scripts, the VFS Library, secrets, API keys and schedules.
//! Refuses while a service uses this data directory or this database (from any machine), and
//! asks for confirmation unless `--yes`.

use std::process::ExitCode;

use aft_server::discovery::ServiceInfo;

use super::with_store;
use crate::global::GlobalArgs;

/// Reset settings and delete all admin users (keeps scripts, VFS Library, secrets, keys).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Do not ask for confirmation (needed when standard input is not a terminal)
    #[arg(long, short = 'y')]
    yes: bool,
}

/// How recently a node must have heart-beaten to count as running: nodes beat every few
/// seconds; one killed a minute ago no longer holds reinit back.
const LIVE_NODE_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

/// Run `aft reinit`.
pub fn execute(global: &GlobalArgs, args: Args) -> ExitCode {
    let data_dir = global.data_dir();
    if let Some(service) = ServiceInfo::find_live(&data_dir) {
        return super::fail(format!(
            "the aft service is running on this data directory (pid {}, {}): stop it, then run aft reinit again",
            service.pid, service.url
        ));
    }
    with_store(global, |store| async move {
        let live = store.live_nodes(LIVE_NODE_WINDOW).await?;
        if let Some(node) = live.first() {
            anyhow::bail!(
                "the aft service is running on this database: node {} on {} (pid {}, {}, last seen {}); stop every node, then run aft reinit again",
                node.id,
                node.hostname,
                node.pid,
                node.url,
                node.heartbeat_at
            );
        }
        if !args.yes {
            confirm(store.count_admins().await?)?;
        }
        store.reset_settings().await?;
        let admins = store.delete_all_admins().await?;
        println!(
            "settings reset to defaults; {admins} admin user(s) and all sessions deleted; \
             scripts, VFS Library, secrets, API keys and schedules kept"
        );
        Ok(())
    })
}

/// Ask on the terminal before resetting; without a terminal, `--yes` is required.
fn confirm(admins: i64) -> anyhow::Result<()> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return Err(super::UsageError(
            "aft reinit resets every setting and deletes every admin user: add --yes to confirm (there is no terminal to ask on)".into(),
        )
        .into());
    }
    eprint!(
        "This resets every setting and deletes {admins} admin user(s) and all sessions. Type yes to go on: "
    );
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if answer.trim() != "yes" {
        anyhow::bail!("nothing changed");
    }
    Ok(())
}
