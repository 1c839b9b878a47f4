//! Keeps secret values out of job logs: every secret a job reads through its host is
//! remembered, and every log line of that job has those values replaced with `***`.

use std::sync::{Arc, RwLock};

use crate::host::{JobHost, LogLevel, LogSink, TransferRecord};

/// The secret values one job has read so far.
#[derive(Clone, Default)]
pub(crate) struct SecretMask {
    values: Arc<RwLock<Vec<String>>>,
}

impl SecretMask {
    /// Remember a value to hide from now on.
    pub(crate) fn add(&self, value: &str) {
        if value.is_empty() {
            return;
        }
        let mut values = self.values.write().unwrap_or_else(|e| e.into_inner());
        if !values.iter().any(|v| v == value) {
            values.push(value.to_string());
            // Longest first, so a secret that contains another is hidden whole.
            values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        }
    }

    /// `text` with every remembered value replaced by `***`.
    pub(crate) fn apply(&self, text: &str) -> String {
        let values = self.values.read().unwrap_or_else(|e| e.into_inner());
        let mut out = text.to_string();
        for value in values.iter() {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), "***");
            }
        }
        out
    }

    /// A log sink that masks before handing lines to `inner`.
    pub(crate) fn wrap_log(&self, inner: LogSink) -> LogSink {
        let mask = self.clone();
        Arc::new(move |level: LogLevel, line: &str| inner(level, &mask.apply(line)))
    }

    /// A host that remembers every secret it hands out.
    pub(crate) fn wrap_host(&self, inner: Arc<dyn JobHost>) -> Arc<dyn JobHost> {
        Arc::new(MaskingHost {
            inner,
            mask: self.clone(),
        })
    }
}

struct MaskingHost {
    inner: Arc<dyn JobHost>,
    mask: SecretMask,
}

impl JobHost for MaskingHost {
    fn secret(&self, name: &str) -> Option<String> {
        let value = self.inner.secret(name);
        if let Some(v) = &value {
            self.mask.add(v);
        }
        value
    }

    fn vfs_entry(&self, name: &str) -> Result<serde_json::Value, String> {
        self.inner.vfs_entry(name)
    }

    fn setting(&self, key: &str) -> Option<String> {
        self.inner.setting(key)
    }

    fn record_transfers(&self, records: Vec<TransferRecord>) {
        self.inner.record_transfers(records)
    }

    fn watch_state_load(&self, key: &str) -> Result<Vec<crate::SeenEntry>, String> {
        self.inner.watch_state_load(key)
    }

    fn watch_state_save(
        &self,
        key: &str,
        changed: &[crate::SeenEntry],
        removed: &[String],
    ) -> Result<(), String> {
        self.inner.watch_state_save(key, changed, removed)
    }

    fn set_result(&self, value: &str) -> Result<(), String> {
        // The result travels on as a parameter of chained jobs: no secret goes with it.
        self.inner.set_result(&self.mask.apply(value))
    }

    fn dry_run(&self) -> Option<Arc<aft_vfs::dry_run::DryRun>> {
        self.inner.dry_run()
    }
}

#[cfg(test)]
mod tests {
    use super::SecretMask;

    #[test]
    fn mask_hides_longest_secret_whole() {
        let mask = SecretMask::default();
        mask.add("abc");
        mask.add("abcdef");
        mask.add("");
        assert_eq!(mask.apply("x abcdef y abc z"), "x *** y *** z");
    }
}
