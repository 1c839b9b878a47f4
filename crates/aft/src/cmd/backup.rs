//! `aft backup FILE` and `aft restore FILE`: a consistent copy of the embedded SQLite store,
//! taken while the service runs, and putting one back. The secrets key is not in the
//! database; it goes beside the backup only when asked (`--include-key`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use aft_store::{SecretsKey, Store};

use super::{UsageError, run_async, with_store};
use crate::global::GlobalArgs;

// Copy the store to FILE while the service may run.
#[derive(clap::Args, Debug)]
pub struct BackupArgs {
    /// The backup file to write (must not exist)
    file: PathBuf,
    /// Also write the secrets key to FILE.key (mode 0600); keep the two apart, or anyone
    /// with both can read every secret
    #[arg(long)]
    include_key: bool,
}

// Replace the store with the backup FILE (the service must be stopped).
#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    /// The backup file (made by aft backup)
    file: PathBuf,
    /// The secrets key the backup's secrets were sealed with (FILE.key of --include-key);
    /// it becomes this data directory's key [default: the key already here]
    #[arg(long, value_name = "KEYFILE")]
    key: Option<PathBuf>,
    /// Replace an existing store without asking
    #[arg(long, short = 'y')]
    yes: bool,
}

/// Run `aft backup FILE`.
pub fn backup(global: &GlobalArgs, args: BackupArgs) -> ExitCode {
    let data_dir = global.data_dir();
    with_store(global, |store| async move {
        store.backup_into(&args.file).await?;
        if args.include_key {
            let key = SecretsKey::load_or_create(&data_dir)?;
            let key_file = key_path(&args.file);
            write_private(&key_file, key.to_base64().expose().as_bytes())?;
            outln!(
                "backup written to {}, the secrets key to {}: store them apart",
                args.file.display(),
                key_file.display()
            );
        } else {
            outln!(
                "backup written to {}; the secrets key is not in it: keep {} (or AFT_SECRET_KEY) \
                 safe apart, the secrets cannot be read without it",
                args.file.display(),
                data_dir.join(SecretsKey::FILE).display()
            );
        }
        Ok(())
    })
}

/// Run `aft restore FILE`.
pub fn restore(global: &GlobalArgs, args: RestoreArgs) -> ExitCode {
    let data_dir = global.data_dir();
    run_async(async move {
        if global.database.is_some() {
            return Err(UsageError(
                "aft restore writes the embedded SQLite store; restore PostgreSQL with pg_restore"
                    .into(),
            )
            .into());
        }
        super::refuse_while_in_use(&data_dir, None, "restore").await?;
        aft_store::create_data_dir(&data_dir)?;
        let current = data_dir.join("aft.db");
        if current.exists() {
            let store = Store::open_in_dir(&data_dir).await?;
            let in_use = super::refuse_while_in_use(&data_dir, Some(&store), "restore").await;
            store.close().await;
            in_use?;
            if !args.yes {
                super::confirm(
                    &format!("Replace {} with the backup?", current.display()),
                    &format!("{} exists and would be replaced", current.display()),
                )?;
            }
        }

        // Check the backup on a copy: it must open as an aft store (older ones are
        // migrated forward) and its secrets must open with the key it will be used with.
        let staged = data_dir.join(".aft.db.restoring");
        remove_store_files(&staged);
        std::fs::copy(&args.file, &staged)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", args.file.display()))?;
        let key = match &args.key {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
                SecretsKey::from_base64(text.trim())?
            }
            None => SecretsKey::load_or_create(&data_dir)?,
        };
        // The checked, migrated copy is written out once more with VACUUM INTO: one
        // complete file with no WAL beside it, so only that file has to move into place
        // (the staged copy's WAL may still be closing when the pool has closed).
        let ready = data_dir.join(".aft.db.restored");
        remove_store_files(&ready);
        let checked = async {
            let store = Store::open(&format!("sqlite://{}", staged.display()))
                .await
                .map_err(|e| {
                    anyhow::anyhow!("{} is not an aft backup: {e}", args.file.display())
                })?;
            let result = async {
                store.check_secrets_key(&key).await.map_err(|e| {
                    anyhow::anyhow!(
                        "{e}: give the backup's key with --key FILE.key; nothing was changed"
                    )
                })?;
                // The nodes it recorded are not running on this copy.
                store.mark_all_nodes_stopped().await?;
                store.backup_into(&ready).await?;
                anyhow::Ok(())
            }
            .await;
            store.close().await;
            result
        }
        .await;
        remove_store_files(&staged);
        if let Err(e) = checked {
            remove_store_files(&ready);
            return Err(e);
        }
        if args.key.is_some() {
            write_private_replacing(
                &data_dir.join(SecretsKey::FILE),
                key.to_base64().expose().as_bytes(),
            )?;
        }
        remove_store_files(&current);
        std::fs::rename(&ready, &current).map_err(|e| {
            anyhow::anyhow!(
                "cannot move {} to {}: {e}",
                ready.display(),
                current.display()
            )
        })?;
        outln!(
            "restored {} into {}",
            args.file.display(),
            data_dir.display()
        );
        Ok(())
    })
}

/// Where `--include-key` puts the key of backup `file`.
fn key_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".key");
    PathBuf::from(name)
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}

fn write_private_replacing(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let staged = path.with_extension("key.restoring");
    let _ = std::fs::remove_file(&staged);
    write_private(&staged, bytes)?;
    std::fs::rename(&staged, path)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    Ok(())
}

/// `db` with `suffix` appended to its name (`aft.db-wal`).
fn with_suffix(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Remove a SQLite file and its WAL and shared-memory files, if present.
fn remove_store_files(db: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(with_suffix(db, suffix));
    }
}
