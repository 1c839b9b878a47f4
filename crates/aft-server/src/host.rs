//! [`StoreJobHost`]: the one [`JobHost`] over the store, for jobs of the service and for
//! `aft run` without one — secrets, VFS Library entries, settings, watcher state and
//! transfer records.
//!
//! Host calls come from a job's own thread, sometimes from inside async code the job is
//! already blocking on (a client's `Connect()` resolving `PassFromSecret`, a `CopyTo` relay
//! recording a transfer, a watcher's poller saving its state). Entering the runtime again
//! there panics ("Cannot start a runtime from within a runtime"), so every store call is
//! handed to the runtime as a task and awaited on the calling thread with a plain channel,
//! which is correct from any thread that does not itself drive the runtime.

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use aft_engine::{JobHost, LogLevel, LogSink, SeenEntry, TransferRecord};
use aft_store::{NewTransfer, RemoteSeen, SecretsKey, Store};
use tokio::runtime::Handle;

/// A [`JobHost`] backed by the store. Cheap to clone; [`for_job`](Self::for_job) and
/// [`logging_to`](Self::logging_to) make the host of one job.
#[derive(Clone)]
pub struct StoreJobHost {
    store: Store,
    secrets_key: Arc<KeySource>,
    tokio: Handle,
    /// The job whose transfers are recorded in the store; `None` writes them to `log`.
    job_id: Option<String>,
    /// The job's log, for what the script should hear about (a secret that cannot be read).
    log: Option<LogSink>,
}

/// The secrets key: given by the service, or read from the data directory (or
/// `AFT_SECRET_KEY`) at the first secret a job asks for, so `aft run` of a script that reads
/// none never touches it.
struct KeySource {
    data_dir: Option<PathBuf>,
    key: OnceLock<Result<Arc<SecretsKey>, String>>,
}

impl StoreJobHost {
    /// A host over `store` decrypting secrets with `secrets_key` (the service's).
    pub fn new(store: Store, secrets_key: Arc<SecretsKey>, tokio: Handle) -> StoreJobHost {
        let key = OnceLock::new();
        let _ = key.set(Ok(secrets_key));
        StoreJobHost::with_key(
            store,
            KeySource {
                data_dir: None,
                key,
            },
            tokio,
        )
    }

    /// A host over `store` that loads the secrets key from `data_dir` (or `AFT_SECRET_KEY`)
    /// when a job first reads a secret.
    pub fn loading_key_from(store: Store, data_dir: PathBuf, tokio: Handle) -> StoreJobHost {
        let source = KeySource {
            data_dir: Some(data_dir),
            key: OnceLock::new(),
        };
        StoreJobHost::with_key(store, source, tokio)
    }

    fn with_key(store: Store, key: KeySource, tokio: Handle) -> StoreJobHost {
        StoreJobHost {
            store,
            secrets_key: Arc::new(key),
            tokio,
            job_id: None,
            log: None,
        }
    }

    /// The host of stored job `job_id`: transfers are recorded under it, warnings go to `log`.
    pub fn for_job(&self, job_id: &str, log: LogSink) -> StoreJobHost {
        StoreJobHost {
            job_id: Some(job_id.to_string()),
            log: Some(log),
            ..self.clone()
        }
    }

    /// The host of a job that has no record in the store (what `aft run` without a service
    /// prints on the terminal beside its recorded job's host):
    /// transfers and warnings are lines of `log`.
    pub fn logging_to(&self, log: LogSink) -> StoreJobHost {
        StoreJobHost {
            job_id: None,
            log: Some(log),
            ..self.clone()
        }
    }

    /// Run a store call to completion from a job's thread, inside async code or not.
    fn wait<T: Send + 'static>(&self, fut: impl Future<Output = T> + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.tokio.spawn(async move {
            let _ = tx.send(fut.await);
        });
        // The task only ends without sending if the runtime is shutting down under the job.
        rx.recv()
            .unwrap_or_else(|_| panic!("the async runtime stopped during a store call"))
    }

    fn warn(&self, message: &str) {
        tracing::warn!("{message}");
        if let Some(log) = &self.log {
            log(LogLevel::Warn, message);
        }
    }

    fn secrets_key(&self) -> Result<Arc<SecretsKey>, String> {
        let source = &self.secrets_key;
        source
            .key
            .get_or_init(|| match &source.data_dir {
                Some(dir) => SecretsKey::load_or_create(dir)
                    .map(Arc::new)
                    .map_err(|e| e.to_string()),
                None => Err("no secrets key was given to this host".to_string()),
            })
            .clone()
    }
}

impl JobHost for StoreJobHost {
    fn secret(&self, name: &str) -> Option<String> {
        let key = match self.secrets_key() {
            Ok(key) => key,
            Err(e) => {
                self.warn(&format!(
                    "cannot read secret {name:?}: the secrets key is unusable: {e}"
                ));
                return None;
            }
        };
        let store = self.store.clone();
        let owned = name.to_string();
        match self.wait(async move { store.get_secret(&key, &owned).await }) {
            Ok(value) => value.map(|s| s.expose().to_string()),
            Err(e) => {
                self.warn(&format!("cannot read secret {name:?}: {e}"));
                None
            }
        }
    }

    fn vfs_entry(&self, name: &str) -> Result<serde_json::Value, String> {
        let store = self.store.clone();
        let owned = name.to_string();
        match self.wait(async move { store.vfs_entry_by_name(&owned).await }) {
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
        let store = self.store.clone();
        let owned = key.to_string();
        self.wait(async move { store.get_setting(&owned).await })
            .ok()
            .map(|s| s.value)
    }

    fn record_transfers(&self, records: Vec<TransferRecord>) {
        let Some(job_id) = self.job_id.clone() else {
            if let Some(log) = &self.log {
                for record in &records {
                    log(LogLevel::Info, &transfer_line(record));
                }
            }
            return;
        };
        let transfers: Vec<NewTransfer> = records.into_iter().map(stored_transfer).collect();
        let store = self.store.clone();
        let id = job_id.clone();
        if let Err(e) = self.wait(async move { store.record_transfers(&id, &transfers).await }) {
            self.warn(&format!("cannot record the transfers of job {job_id}: {e}"));
        }
    }

    fn watch_state_load(&self, key: &str) -> Result<Vec<SeenEntry>, String> {
        let store = self.store.clone();
        let owned = key.to_string();
        self.wait(async move { store.remote_watch_load(&owned).await })
            .map(|seen| seen.into_iter().map(seen_from_store).collect())
            .map_err(|e| format!("cannot read remote watcher state {key:?}: {e}"))
    }

    fn watch_state_save(
        &self,
        key: &str,
        changed: &[SeenEntry],
        removed: &[String],
    ) -> Result<(), String> {
        let store = self.store.clone();
        let owned = key.to_string();
        let changed: Vec<RemoteSeen> = changed.iter().map(seen_to_store).collect();
        let removed = removed.to_vec();
        self.wait(async move { store.remote_watch_save(&owned, &changed, &removed).await })
            .map_err(|e| format!("cannot save remote watcher state {key:?}: {e}"))
    }

    fn set_result(&self, value: &str) -> Result<(), String> {
        // A job without a record in the store: the result has nowhere to go.
        let Some(job_id) = self.job_id.clone() else {
            return Ok(());
        };
        let store = self.store.clone();
        let value = value.to_string();
        self.wait(async move { store.set_job_result(&job_id, &value).await })
            .map_err(|e| format!("cannot store the job's result: {e}"))
    }
}

/// A transfer record as the store keeps it (`GET /v1/jobs/{id}/transfers`).
pub fn stored_transfer(record: TransferRecord) -> NewTransfer {
    NewTransfer {
        source: record.source,
        target: record.target,
        bytes: i64::try_from(record.bytes).unwrap_or(i64::MAX),
        hash: record.hash,
        hash_algo: record.hash_algo.map(str::to_string),
        millis: i64::try_from(record.millis).unwrap_or(i64::MAX),
        attempts: i64::from(record.attempts),
        outcome: record.outcome,
    }
}

/// A transfer record as one log line (what the terminal of `aft run` shows).
fn transfer_line(record: &TransferRecord) -> String {
    let hash = match (record.hash_algo, record.hash.as_deref()) {
        (Some(algo), Some(hex)) => format!(", {algo} {hex}"),
        _ => String::new(),
    };
    format!(
        "transfer {} -> {}: {} bytes in {} ms, {} attempt(s){hash}: {}",
        record.source, record.target, record.bytes, record.millis, record.attempts, record.outcome
    )
}

fn seen_to_store(e: &SeenEntry) -> RemoteSeen {
    RemoteSeen {
        path: e.path.clone(),
        size: e.size,
        mtime: e.mtime.clone(),
        etag: e.etag.clone(),
    }
}

fn seen_from_store(e: RemoteSeen) -> SeenEntry {
    SeenEntry {
        path: e.path,
        size: e.size,
        mtime: e.mtime,
        etag: e.etag,
    }
}
