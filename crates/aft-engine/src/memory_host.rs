//! A [`JobHost`] kept in memory, and a log sink that collects lines: for embedding the
//! engine without a store, and for tests of host API modules.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::host::{JobHost, LogLevel, LogSink, SeenEntry, TransferRecord};

/// A [`JobHost`] whose secrets, VFS entries and settings are plain maps filled by its owner;
/// transfer records are kept in a list.
#[derive(Default)]
pub struct MemoryHost {
    /// Secrets by name.
    pub secrets: Mutex<BTreeMap<String, String>>,
    /// VFS Library entries by name.
    pub vfs_entries: Mutex<BTreeMap<String, serde_json::Value>>,
    /// Settings by key.
    pub settings: Mutex<BTreeMap<String, String>>,
    /// Every transfer recorded so far.
    pub transfers: Mutex<Vec<TransferRecord>>,
    /// Remote watcher state: watcher key -> path -> what was seen.
    pub watch_state: Mutex<BTreeMap<String, BTreeMap<String, SeenEntry>>>,
}

impl MemoryHost {
    /// An empty host.
    pub fn new() -> Self {
        Self::default()
    }

    /// This host with one more secret.
    pub fn with_secret(self, name: &str, value: &str) -> Self {
        lock(&self.secrets).insert(name.into(), value.into());
        self
    }

    /// This host with one more VFS Library entry.
    pub fn with_vfs_entry(self, name: &str, entry: serde_json::Value) -> Self {
        lock(&self.vfs_entries).insert(name.into(), entry);
        self
    }

    /// This host with one more setting.
    pub fn with_setting(self, key: &str, value: &str) -> Self {
        lock(&self.settings).insert(key.into(), value.into());
        self
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl JobHost for MemoryHost {
    fn secret(&self, name: &str) -> Option<String> {
        lock(&self.secrets).get(name).cloned()
    }

    fn vfs_entry(&self, name: &str) -> Result<serde_json::Value, String> {
        lock(&self.vfs_entries)
            .get(name)
            .cloned()
            .ok_or_else(|| format!("no VFS Library entry named {name:?}"))
    }

    fn setting(&self, key: &str) -> Option<String> {
        lock(&self.settings).get(key).cloned()
    }

    fn record_transfers(&self, records: Vec<TransferRecord>) {
        lock(&self.transfers).extend(records);
    }

    fn watch_state_load(&self, key: &str) -> Result<Vec<SeenEntry>, String> {
        Ok(lock(&self.watch_state)
            .get(key)
            .map(|seen| seen.values().cloned().collect())
            .unwrap_or_default())
    }

    fn watch_state_save(
        &self,
        key: &str,
        changed: &[SeenEntry],
        removed: &[String],
    ) -> Result<(), String> {
        let mut state = lock(&self.watch_state);
        let seen = state.entry(key.to_string()).or_default();
        for entry in changed {
            seen.insert(entry.path.clone(), entry.clone());
        }
        for path in removed {
            seen.remove(path);
        }
        Ok(())
    }
}

/// Collects a job's log lines in memory.
#[derive(Clone, Default)]
pub struct LogCollector {
    lines: Arc<Mutex<Vec<(LogLevel, String)>>>,
}

impl LogCollector {
    /// An empty collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// A sink that appends to this collector.
    pub fn sink(&self) -> LogSink {
        let lines = self.lines.clone();
        Arc::new(move |level, line: &str| lock(&lines).push((level, line.to_string())))
    }

    /// Every line so far with its level.
    pub fn lines(&self) -> Vec<(LogLevel, String)> {
        lock(&self.lines).clone()
    }

    /// Every line so far, joined with newlines.
    pub fn text(&self) -> String {
        lock(&self.lines)
            .iter()
            .map(|(_, l)| l.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}
