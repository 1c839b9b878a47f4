//! `aft reinit`: lock-out recovery. Resets settings to their defaults and deletes every
//! admin user and session; keeps scripts, the VFS Library, secrets, API keys and schedules.
//! Refuses while a service runs on this data directory.

use std::process::ExitCode;

use aft_server::discovery::ServiceInfo;

use super::with_store;
use crate::global::GlobalArgs;

/// Reset settings and delete all admin users (keeps scripts, VFS Library, secrets, keys).
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Run `aft reinit`.
pub fn execute(global: &GlobalArgs, _args: Args) -> ExitCode {
    let data_dir = global.data_dir();
    if let Some(service) = ServiceInfo::find_live(&data_dir) {
        return super::fail(format!(
            "the aft service is running on this data directory (pid {}, {}): stop it, then run aft reinit again",
            service.pid, service.url
        ));
    }
    with_store(global, |store| async move {
        store.reset_settings().await?;
        let admins = store.delete_all_admins().await?;
        println!(
            "settings reset to defaults; {admins} admin user(s) and all sessions deleted; \
             scripts, VFS Library, secrets, API keys and schedules kept"
        );
        Ok(())
    })
}
