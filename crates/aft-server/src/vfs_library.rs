//! Saving VFS Library entries: the one place that checks an entry against aft-vfs's backend
//! registry before the store keeps it. `POST/PUT /v1/vfs` (and so the web UI) and
//! `aft vfs add` all save through [`save_vfs_entry`], so none can skip the check.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use aft_store::{SecretsKey, Store, StoreError, VfsEntry};
use aft_vfs::registry::{self, EntryError};
use serde_json::{Map, Value};

use crate::error::ApiError;

/// Whether a save adds a new entry or replaces an existing one's type and fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveMode {
    /// Add a new entry; `Conflict` if the name is taken.
    Create,
    /// Replace the type and fields of the entry with this id or name; `NotFound` if none.
    Replace,
}

/// Why an entry was not saved.
#[derive(Debug, thiserror::Error)]
pub enum VfsSaveError {
    /// The registry refused the type or a field (the message names it and what to do).
    #[error(transparent)]
    Refused(#[from] EntryError),
    /// The store refused it or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<VfsSaveError> for ApiError {
    fn from(e: VfsSaveError) -> ApiError {
        match e {
            VfsSaveError::Refused(e) => ApiError::bad_request(e.to_string()),
            VfsSaveError::Store(e) => e.into(),
        }
    }
}

/// Check `settings` against the registry's declaration of `kind`, then store the entry
/// under the type's canonical name (`local` is saved as `disk`).
pub async fn save_vfs_entry(
    store: &Store,
    name: &str,
    kind: &str,
    settings: Map<String, Value>,
    mode: SaveMode,
) -> Result<VfsEntry, VfsSaveError> {
    let ty = registry::check_entry(kind, &settings)?;
    let entry = match mode {
        SaveMode::Create => store.create_vfs_entry(name, ty.name(), settings).await?,
        SaveMode::Replace => store.update_vfs_entry(name, ty.name(), settings).await?,
    };
    Ok(entry)
}

/// The names of the secrets an entry's `...FromSecret` fields refer to (per the registry).
pub fn secret_names(entry: &VfsEntry) -> Vec<String> {
    let Some(ty) = registry::lookup(&entry.kind) else {
        return Vec::new();
    };
    entry
        .settings
        .iter()
        .filter(|(field, _)| ty.names_secret(field))
        .filter_map(|(_, value)| value.as_str().map(str::to_string))
        .filter(|name| !name.is_empty())
        .collect()
}

/// The values of the secrets an entry refers to, by name (unknown ones are left out: the
/// backend then reports the missing secret by its field).
pub async fn entry_secrets(
    store: &Store,
    key: &SecretsKey,
    entry: &VfsEntry,
) -> Result<BTreeMap<String, String>, StoreError> {
    let mut secrets = BTreeMap::new();
    for name in secret_names(entry) {
        if let Some(secret) = store.get_secret(key, &name).await? {
            secrets.insert(name, secret.expose().to_string());
        }
    }
    Ok(secrets)
}

/// Why a VFS Library entry could not be opened as a backend.
#[derive(Debug, thiserror::Error)]
pub enum OpenEntryError {
    /// No such entry, or the store (or its secrets key) failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The backend refused the entry's settings.
    #[error("VFS Library entry {name}: {source}")]
    Backend {
        /// The entry's name.
        name: String,
        /// Why.
        source: aft_vfs::VfsError,
    },
}

/// The secrets an entry names, read with the key of `data_dir` (or `AFT_SECRET_KEY`) only
/// when it names some, so an anonymous entry does not give a data dir a key file.
pub async fn entry_secrets_from_dir(
    store: &Store,
    data_dir: &Path,
    entry: &VfsEntry,
) -> Result<BTreeMap<String, String>, StoreError> {
    if secret_names(entry).is_empty() {
        return Ok(BTreeMap::new());
    }
    let key = SecretsKey::load_or_create(data_dir)?;
    entry_secrets(store, &key, entry).await
}

/// Open the VFS Library entry `name` (or id) as a backend, its `...FromSecret` fields
/// resolved; nothing is contacted until the first operation.
pub async fn open_entry(
    store: &Store,
    data_dir: &Path,
    name: &str,
) -> Result<(VfsEntry, Arc<dyn aft_vfs::Vfs>), OpenEntryError> {
    let entry = store.find_vfs_entry(name).await?;
    let secrets = entry_secrets_from_dir(store, data_dir, &entry).await?;
    let lookup = move |name: &str| secrets.get(name).cloned();
    let fields = Value::Object(entry.settings.clone());
    let vfs = aft_vfs::open_backend(&entry.kind, &fields, &lookup).map_err(|source| {
        OpenEntryError::Backend {
            name: entry.name.clone(),
            source,
        }
    })?;
    Ok((entry, vfs))
}
