//! The service's TLS certificate: the user's own (`--cert`/`--key`), or a self-signed one
//! made on first start in `DATA/tls/` and reused afterwards.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::ServeError;

/// Where the certificate and key the service uses live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate (chain) file; clients on this machine trust it for `aft start`.
    pub cert: PathBuf,
    /// PEM private key file (mode 0600 when we made it).
    pub key: PathBuf,
}

/// The self-signed certificate file in a data directory (what local clients trust).
pub fn default_cert_path(data_dir: &Path) -> PathBuf {
    data_dir.join("tls").join("cert.pem")
}

/// The certificate files in `data_dir/tls`, made (self-signed for 127.0.0.1, ::1 and
/// localhost) if they do not exist yet.
pub fn ensure_self_signed(data_dir: &Path) -> Result<TlsFiles, ServeError> {
    let dir = data_dir.join("tls");
    let files = TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    if files.cert.exists() && files.key.exists() {
        return Ok(files);
    }
    let io_err = |path: &Path| {
        let path = path.display().to_string();
        move |source| ServeError::Io { path, source }
    };
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let names = vec![
        "127.0.0.1".to_string(),
        "::1".to_string(),
        "localhost".to_string(),
    ];
    let made = rcgen::generate_simple_self_signed(names)
        .map_err(|e| ServeError::Tls(format!("cannot make a self-signed certificate: {e}")))?;
    write_private(&files.key, made.signing_key.serialize_pem().as_bytes())
        .map_err(io_err(&files.key))?;
    std::fs::write(&files.cert, made.cert.pem()).map_err(io_err(&files.cert))?;
    Ok(files)
}

/// Write a file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_certificate_is_made_once_with_a_private_key() {
        let dir = tempfile::tempdir().unwrap();
        let first = ensure_self_signed(dir.path()).unwrap();
        let cert = std::fs::read_to_string(&first.cert).unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&first.key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let second = ensure_self_signed(dir.path()).unwrap();
        assert_eq!(first, second);
        assert_eq!(
            cert,
            std::fs::read_to_string(&second.cert).unwrap(),
            "reused, not remade"
        );
    }
}
