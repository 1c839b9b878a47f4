//! `aft reinit`: lock-out recovery. Resets settings to their defaults and deletes every
//! admin user and session; keeps scripts, the VFS Library, secrets, API keys and schedules.
//! Refuses while a service uses this data directory or this database (from any machine), and
//! asks for confirmation unless `--yes`.

use std::process::ExitCode;

use super::with_store;
use crate::global::GlobalArgs;

// Reset settings and delete all admin users (keeps scripts, VFS Library, secrets, keys).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Do not ask for confirmation (needed when standard input is not a terminal)
    #[arg(long, short = 'y')]
    yes: bool,
}

/// Run `aft reinit`.
pub fn execute(global: &GlobalArgs, args: Args) -> ExitCode {
    let data_dir = global.data_dir();
    with_store(global, |store| async move {
        super::refuse_while_in_use(&data_dir, Some(&store), "run aft reinit again").await?;
        if !args.yes {
            let admins = store.count_admins().await?;
            super::confirm(
                &format!(
                    "This resets every setting and deletes {admins} admin user(s) and all sessions."
                ),
                "aft reinit resets every setting and deletes every admin user",
            )?;
        }
        store.reset_settings().await?;
        let admins = store.delete_all_admins().await?;
        outln!(
            "settings reset to defaults; {admins} admin user(s) and all sessions deleted; \
             scripts, VFS Library, secrets, API keys and schedules kept"
        );
        Ok(())
    })
}
