//! [`StoreJobHost`]: what a job running in the service sees of the store — secrets,
//! VFS Library entries, settings — and where its transfer records go.

use std::sync::Arc;

use aft_engine::{JobHost, SeenEntry, TransferRecord};
use aft_store::NewTransfer;
use aft_store::SecretsKey;
use aft_store::Store;

/// A [`JobHost`] backed by the store. Its calls come from a job's own thread, so they block
/// on the shared tokio runtime.
#[derive(Clone)]
pub struct StoreJobHost {
    store: Store,
    secrets_key: Arc<SecretsKey>,
    tokio: tokio::runtime::Handle,
    job_id: Option<String>,
}

impl StoreJobHost {
    /// A host over `store`, decrypting secrets with `secrets_key`, blocking on `tokio`.
    pub fn new(
        store: Store,
        secrets_key: Arc<SecretsKey>,
        tokio: tokio::runtime::Handle,
    ) -> StoreJobHost {
        StoreJobHost {
            store,
            secrets_key,
            tokio,
            job_id: None,
        }
    }

    /// The same host, recording transfers under job `job_id`.
    pub fn for_job(&self, job_id: &str) -> StoreJobHost {
        StoreJobHost {
            job_id: Some(job_id.to_string()),
            ..self.clone()
        }
    }
}

impl JobHost for StoreJobHost {
    fn secret(&self, name: &str) -> Option<String> {
        match self
            .tokio
            .block_on(self.store.get_secret(&self.secrets_key, name))
        {
            Ok(value) => value.map(|s| s.expose().to_string()),
            Err(e) => {
                tracing::error!("cannot read secret {name:?}: {e}");
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
        self.tokio
            .block_on(self.store.get_setting(key))
            .ok()
            .map(|s| s.value)
    }

    fn record_transfer(&self, record: TransferRecord) {
        let Some(job_id) = &self.job_id else { return };
        let transfer = NewTransfer {
            source: record.source,
            target: record.target,
            bytes: i64::try_from(record.bytes).unwrap_or(i64::MAX),
            hash: record.hash,
            millis: i64::try_from(record.millis).unwrap_or(i64::MAX),
            attempts: i64::from(record.attempts),
            outcome: record.outcome,
        };
        if let Err(e) = self
            .tokio
            .block_on(self.store.record_transfer(job_id, &transfer))
        {
            tracing::error!("cannot record a transfer of job {job_id}: {e}");
        }
    }

    fn watch_state_load(&self, key: &str) -> Result<Vec<SeenEntry>, String> {
        load_remote_watch_state(&self.store, &self.tokio, key)
    }

    fn watch_state_save(
        &self,
        key: &str,
        changed: &[SeenEntry],
        removed: &[String],
    ) -> Result<(), String> {
        save_remote_watch_state(&self.store, &self.tokio, key, changed, removed)
    }
}

/// A `RemoteWatcher`'s remembered entries from the store, for any store-backed `JobHost`
/// (the service's and `aft run`'s); blocks on `tokio`.
pub fn load_remote_watch_state(
    store: &aft_store::Store,
    tokio: &tokio::runtime::Handle,
    key: &str,
) -> Result<Vec<SeenEntry>, String> {
    tokio
        .block_on(store.remote_watch_load(key))
        .map(seen_from_store)
        .map_err(|e| format!("cannot read remote watcher state {key:?}: {e}"))
}

/// Save what a `RemoteWatcher` has seen (and forget what was removed); blocks on `tokio`.
pub fn save_remote_watch_state(
    store: &aft_store::Store,
    tokio: &tokio::runtime::Handle,
    key: &str,
    changed: &[SeenEntry],
    removed: &[String],
) -> Result<(), String> {
    tokio
        .block_on(store.remote_watch_save(key, &seen_to_store(changed), removed))
        .map_err(|e| format!("cannot save remote watcher state {key:?}: {e}"))
}

fn seen_to_store(entries: &[SeenEntry]) -> Vec<aft_store::RemoteSeen> {
    entries
        .iter()
        .map(|e| aft_store::RemoteSeen {
            path: e.path.clone(),
            size: e.size,
            mtime: e.mtime.clone(),
            etag: e.etag.clone(),
        })
        .collect()
}

fn seen_from_store(entries: Vec<aft_store::RemoteSeen>) -> Vec<SeenEntry> {
    entries
        .into_iter()
        .map(|e| SeenEntry {
            path: e.path,
            size: e.size,
            mtime: e.mtime,
            etag: e.etag,
        })
        .collect()
}
