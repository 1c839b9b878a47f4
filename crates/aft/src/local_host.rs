//! The [`JobHost`] of `aft run` without a service: secrets, VFS Library entries and settings
//! come straight from the store; transfer records go to the job log.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use aft_engine::{JobHost, LogLevel, LogSink, SeenEntry, TransferRecord};
use aft_store::{SecretsKey, Store};
use tokio::runtime::Handle;

/// A host over the local store; calls come from the job's thread and block on `tokio`.
pub struct LocalHost {
    store: Store,
    tokio: Handle,
    data_dir: PathBuf,
    /// Settings as read when the run started.
    settings: HashMap<String, String>,
    /// Loaded on the first `GetSecret`, so a script that reads none never touches the key.
    secrets_key: OnceLock<Result<Arc<SecretsKey>, String>>,
    log: LogSink,
}

impl LocalHost {
    /// A host over `store` with the settings already read, the secrets key in `data_dir`
    /// (or `AFT_SECRET_KEY`), writing transfer records and host errors to `log`.
    pub fn new(
        store: Store,
        tokio: Handle,
        data_dir: PathBuf,
        settings: HashMap<String, String>,
        log: LogSink,
    ) -> LocalHost {
        LocalHost {
            store,
            tokio,
            data_dir,
            settings,
            secrets_key: OnceLock::new(),
            log,
        }
    }

    fn secrets_key(&self) -> Result<Arc<SecretsKey>, String> {
        self.secrets_key
            .get_or_init(|| {
                SecretsKey::load_or_create(&self.data_dir)
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
    }
}

impl JobHost for LocalHost {
    fn secret(&self, name: &str) -> Option<String> {
        let key = match self.secrets_key() {
            Ok(key) => key,
            Err(e) => {
                (self.log)(
                    LogLevel::Warn,
                    &format!("cannot read secret {name:?}: the secrets key is unusable: {e}"),
                );
                return None;
            }
        };
        match self.tokio.block_on(self.store.get_secret(&key, name)) {
            Ok(value) => value.map(|s| s.expose().to_string()),
            Err(e) => {
                (self.log)(LogLevel::Warn, &format!("cannot read secret {name:?}: {e}"));
                None
            }
        }
    }

    fn vfs_entry(&self, name: &str) -> Result<serde_json::Value, String> {
        match self.tokio.block_on(self.store.vfs_entry_by_name(name)) {
            Ok(Some(entry)) => {
                let mut json = entry.settings;
                json.insert(
                    "type".into(),
                    serde_json::Value::String(entry.kind.as_str().into()),
                );
                Ok(serde_json::Value::Object(json))
            }
            Ok(None) => Err(format!(
                "no VFS Library entry named {name:?}; add it with 'aft vfs add' or the web UI"
            )),
            Err(e) => Err(format!("cannot read VFS Library entry {name:?}: {e}")),
        }
    }

    fn setting(&self, key: &str) -> Option<String> {
        self.settings.get(key).cloned()
    }

    fn record_transfer(&self, record: TransferRecord) {
        let hash = record
            .hash
            .as_deref()
            .map(|h| format!(", sha256 {h}"))
            .unwrap_or_default();
        (self.log)(
            LogLevel::Info,
            &format!(
                "transfer {} -> {}: {} bytes in {} ms, {} attempt(s){hash}: {}",
                record.source,
                record.target,
                record.bytes,
                record.millis,
                record.attempts,
                record.outcome
            ),
        );
    }

    fn watch_state_load(&self, key: &str) -> Result<Vec<SeenEntry>, String> {
        aft_server::host::load_remote_watch_state(&self.store, &self.tokio, key)
    }

    fn watch_state_save(
        &self,
        key: &str,
        changed: &[SeenEntry],
        removed: &[String],
    ) -> Result<(), String> {
        aft_server::host::save_remote_watch_state(&self.store, &self.tokio, key, changed, removed)
    }
}
