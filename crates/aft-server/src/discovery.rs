//! How CLI commands on this machine find a running service.
//!
//! While `aft serve` runs it keeps `service.json` in its data directory (mode 0600): its
//! pid, the URL it listens on, the certificate to trust, and a random local token. Anyone
//! who can read that file can already read the database and the secrets key beside it, so
//! the token grants the same power over HTTPS: `aft run` uses it to hand a script to the
//! service, and `aft reinit` refuses to run while the file names a live process. The file
//! is removed on clean shutdown; a stale one (its pid is gone) is ignored.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// File name of the discovery file inside the data directory.
pub const SERVICE_FILE: &str = "service.json";

/// Header that carries the local token (instead of an API key or a session cookie).
pub const LOCAL_TOKEN_HEADER: &str = "X-Aft-Local-Token";

/// What a running service tells local CLI commands about itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServiceInfo {
    /// Process id of `aft serve`.
    pub pid: u32,
    /// Base URL to reach it from this machine, e.g. `https://127.0.0.1:44399`.
    pub url: String,
    /// PEM certificate file the client should trust for `url`.
    pub cert_path: PathBuf,
    /// Random token granting local-admin access over HTTPS.
    pub token: String,
    /// The node id of this service in the store.
    pub node_id: String,
}

impl ServiceInfo {
    /// Write the discovery file atomically with mode 0600.
    pub fn write(&self, data_dir: &Path) -> std::io::Result<()> {
        let final_path = data_dir.join(SERVICE_FILE);
        let tmp_path = data_dir.join(format!(".{SERVICE_FILE}.tmp"));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp_path)?;
        file.write_all(&serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?)?;
        file.sync_all()?;
        std::fs::rename(&tmp_path, &final_path)
    }

    /// Remove the discovery file if it still names this process.
    pub fn remove(data_dir: &Path) {
        if let Some(info) = Self::read(data_dir)
            && info.pid == std::process::id()
        {
            let _ = std::fs::remove_file(data_dir.join(SERVICE_FILE));
        }
    }

    /// The discovery file's content, alive or not.
    pub fn read(data_dir: &Path) -> Option<ServiceInfo> {
        let bytes = std::fs::read(data_dir.join(SERVICE_FILE)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The running service for this data directory, if its process is alive.
    pub fn find_live(data_dir: &Path) -> Option<ServiceInfo> {
        Self::read(data_dir).filter(|info| process_alive(info.pid))
    }
}

/// Whether a process with this pid exists (Linux: its /proc entry).
fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_file_round_trips_and_ignores_dead_pids() {
        let dir = tempfile::tempdir().unwrap();
        let mut info = ServiceInfo {
            pid: std::process::id(),
            url: "https://127.0.0.1:1".into(),
            cert_path: dir.path().join("cert.pem"),
            token: "t".into(),
            node_id: "n".into(),
        };
        info.write(dir.path()).unwrap();
        assert_eq!(ServiceInfo::find_live(dir.path()), Some(info.clone()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(SERVICE_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        info.pid = u32::MAX - 1;
        info.write(dir.path()).unwrap();
        assert!(ServiceInfo::find_live(dir.path()).is_none());
        ServiceInfo::remove(dir.path());
        assert!(
            ServiceInfo::read(dir.path()).is_some(),
            "only the owner removes the file"
        );
    }
}
