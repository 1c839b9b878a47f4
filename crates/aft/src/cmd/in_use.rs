//! `delete NAME [--force]` and `used-by NAME [--json]`, shared by `aft script`, `aft secret`
//! and `aft vfs`: a delete is refused while something uses what it deletes, unless forced
//! (see aft-store's `integrity` module).

use aft_store::{DeleteOutcome, StoreError, UsedBy};

use super::{print_json, print_table};

/// The arguments of `aft script|secret|vfs delete`. `aft secret` says what its NAME is with
/// [`secret_name`].
#[derive(clap::Args, Debug)]
pub struct DeleteArgs {
    /// Name or id
    pub name: String,
    /// Delete even when in use, disabling the schedules and watchers among its users
    #[arg(long)]
    pub force: bool,
}

/// The arguments of `aft script|secret|vfs used-by`.
#[derive(clap::Args, Debug)]
pub struct UsedByArgs {
    /// Name or id
    pub name: String,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// The help of a secret's NAME (secrets have no id): `#[command(mut_arg("name", secret_name))]`.
pub(crate) fn secret_name(arg: clap::Arg) -> clap::Arg {
    arg.help("Secret name (case-sensitive)")
}

/// Print what uses something, as a table or JSON.
pub(crate) fn print_used_by(users: &[UsedBy], json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(&users);
    }
    if users.is_empty() {
        outln!("nothing uses it");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = users
        .iter()
        .map(|u| {
            vec![
                u.kind.clone(),
                u.name.clone(),
                match u.enabled {
                    Some(true) => "enabled",
                    Some(false) => "disabled",
                    None => "-",
                }
                .to_string(),
                u.how.clone(),
            ]
        })
        .collect();
    print_table(&["KIND", "NAME", "STATE", "HOW"], &rows);
    Ok(())
}

/// Print the outcome of a checked delete of a `kind`: what was deleted and disabled, or
/// why it was refused (with the users, one a line).
pub(crate) fn report_delete(
    kind: &str,
    outcome: Result<DeleteOutcome, StoreError>,
) -> anyhow::Result<()> {
    match outcome {
        Ok(outcome) => {
            outln!("{kind} {} deleted", outcome.deleted);
            for name in &outcome.disabled {
                outln!("disabled {name}");
            }
            for u in outcome
                .used_by
                .iter()
                .filter(|u| !outcome.disabled.contains(&format!("{}/{}", u.kind, u.name)))
            {
                outln!("{} {} still names it ({})", u.kind, u.name, u.how);
            }
            Ok(())
        }
        Err(StoreError::InUse { message, used_by }) => {
            for u in &used_by {
                eprintln!("used by {} {} ({})", u.kind, u.name, u.how);
            }
            Err(anyhow::anyhow!("{message} (--force)"))
        }
        Err(e) => Err(e.into()),
    }
}
