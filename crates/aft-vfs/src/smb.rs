//! SMB 2/3 (Windows shares, Samba) through Samba's own `libsmbclient`, bound by `pavao`.
//!
//! Fields: `Host` (`host[:port]`), `Port` (445), `Share` (`share` or `share/folder`: VFS
//! path `/` is that folder), `User`, `Pass`/`PassFromSecret`, `Domain`, `Timeout`,
//! `RequireEncryption`. A file is `//Host/Share/path`. Signing and SMB3 encryption happen
//! whenever the server (or the share) requires them. `RequireEncryption` makes the client
//! require encryption too: libsmbclient (4.17), asked for that, encrypts whenever the server
//! can but silently goes on unencrypted when it cannot, so aft first asks the server (one
//! SMB2 NEGOTIATE, [`negotiate`]) and refuses to connect unless it offers a cipher.
//!
//! Why libsmbclient rather than a pure-Rust client: `smb` (smb-rs) pins its `sspi` to a
//! `curve25519-dalek` release candidate that cannot share a lockfile with russh (see
//! docs/architecture.md). libsmbclient is a system library, so the backend is behind the
//! cargo feature `smb`; without it the `smb` type is still listed, and opening one says how
//! to get a build that has it.

use std::sync::Arc;

use crate::config::Fields;
use crate::registry::{BackendInfo, FieldInfo, TypeInfo};
use crate::{Vfs, VfsError, VfsResult};

#[cfg(feature = "smb")]
mod client;
#[cfg(feature = "smb")]
mod negotiate;
#[cfg(feature = "smb")]
pub use client::SmbFs;

/// Whether this build has the SMB backend (the cargo feature `smb`).
pub const AVAILABLE: bool = cfg!(feature = "smb");

/// What an `smb` entry says when this build has no SMB backend.
pub const NOT_BUILT: &str = "this aft was built without SMB support: build with --features smb \
     (it needs Samba's libsmbclient, Debian package libsmbclient-dev), see \
     docs/syncjs-transfers.md#smb-windows-shares";

/// The SMB backend in the registry.
pub const BACKEND: BackendInfo = BackendInfo {
    types: &[TypeInfo {
        name: "smb",
        aliases: &["cifs"],
        label: if AVAILABLE {
            "SMB / Windows share"
        } else {
            "SMB / Windows share (not in this build)"
        },
        client: "SmbClient",
        defaults: &[],
    }],
    fields: &[
        FieldInfo::address("Host", "Host")
            .required()
            .placeholder("fileserver.example.com")
            .help(if AVAILABLE {
                "host[:port] of the SMB server."
            } else {
                "host[:port] of the SMB server. This aft was built without SMB support (--features smb)."
            }),
        FieldInfo::text("Share", "Share")
            .required()
            .placeholder("data")
            .help("The share's name, optionally with a folder in it (data/outbox) that VFS path / maps to."),
        FieldInfo::text("User", "User"),
        FieldInfo::credential("Pass", "Password"),
        FieldInfo::secret("PassFromSecret", "Password secret", "Pass"),
        FieldInfo::text("Domain", "Domain")
            .placeholder("WORKGROUP")
            .help("Windows domain or workgroup of the user, if the server needs one."),
        FieldInfo::number("Port", "Port")
            .placeholder("445")
            .advanced(),
        FieldInfo::number("Timeout", "Timeout (seconds)")
            .placeholder("30")
            .advanced(),
        FieldInfo::bool("RequireEncryption", "Require encryption")
            .help("Refuse to connect unless the server encrypts the session (SMB3), even when it does not require that itself."),
    ],
    one_of: &[],
    open,
};

fn open(fields: &Fields<'_>) -> VfsResult<Arc<dyn Vfs>> {
    let config = SmbConfig::from_fields(fields)?;
    #[cfg(feature = "smb")]
    {
        Ok(Arc::new(SmbFs::new(config)))
    }
    #[cfg(not(feature = "smb"))]
    {
        let _ = config;
        Err(VfsError::Other(NOT_BUILT.into()))
    }
}

/// How to reach and log in to one SMB share.
#[derive(Clone)]
pub struct SmbConfig {
    /// Server name or address, without port.
    pub host: String,
    /// TCP port (445 when unset).
    pub port: u16,
    /// The share's name.
    pub share: String,
    /// Folder inside the share that VFS path `/` maps to (`""` for the share's root).
    pub base_dir: String,
    /// Login name (`""`: guest).
    pub user: String,
    /// Password.
    pub password: String,
    /// Domain or workgroup.
    pub domain: String,
    /// Seconds before one request is given up.
    pub timeout_secs: u64,
    /// Refuse a session the server does not encrypt.
    pub require_encryption: bool,
}

impl std::fmt::Debug for SmbConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Hand-written so the password never reaches a log.
        f.debug_struct("SmbConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("share", &self.share)
            .field("base_dir", &self.base_dir)
            .field("user", &self.user)
            .field("domain", &self.domain)
            .field("require_encryption", &self.require_encryption)
            .finish_non_exhaustive()
    }
}

impl SmbConfig {
    /// Build from client fields (see the module docs); bad values are refused naming the field.
    pub fn from_fields(fields: &Fields<'_>) -> VfsResult<Self> {
        let bad = |field: &str, why: &str| VfsError::Other(format!("smb client: {field} {why}"));
        let raw_host = fields.required("Host")?;
        // Accept what users paste: smb://host, //host, \\host.
        let host = raw_host
            .trim()
            .trim_start_matches("smb://")
            .trim_start_matches("//")
            .trim_start_matches("\\\\")
            .trim_end_matches(['/', '\\']);
        if host.is_empty() || host.contains(['/', '\\']) {
            return Err(bad(
                "Host",
                "must be host[:port]; put the share in Share and the folder in Share or the paths",
            ));
        }
        let (host, host_port) = match host.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') || h.starts_with('[') => (
                h.to_string(),
                Some(
                    p.parse::<u16>()
                        .map_err(|_| bad("Host", "has a port that is not a number"))?,
                ),
            ),
            _ => (host.to_string(), None),
        };
        let port = match fields.u64("Port")? {
            Some(p) => u16::try_from(p)
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad("Port", "must be 1 to 65535"))?,
            None => host_port.unwrap_or(445),
        };
        let share_field = fields.required("Share")?.replace('\\', "/");
        let mut parts = share_field.split('/').filter(|s| !s.is_empty());
        let share = parts
            .next()
            .ok_or_else(|| bad("Share", "must name a share"))?
            .to_string();
        let base_dir = parts.collect::<Vec<_>>().join("/");
        Ok(Self {
            host,
            port,
            share,
            base_dir,
            user: fields.str("User").unwrap_or_default(),
            password: fields
                .secret("Pass", "PassFromSecret")?
                .map(|p| p.expose().to_string())
                .unwrap_or_default(),
            domain: fields.str("Domain").unwrap_or_default(),
            timeout_secs: fields.u64("Timeout")?.unwrap_or(30).max(1),
            require_encryption: fields.bool("RequireEncryption"),
        })
    }

    /// `smb://user@host:port/share/base`, for logs and errors (no password).
    pub fn label(&self) -> String {
        let user = if self.user.is_empty() {
            String::new()
        } else if self.domain.is_empty() {
            format!("{}@", self.user)
        } else {
            format!("{};{}@", self.domain, self.user)
        };
        let base = if self.base_dir.is_empty() {
            String::new()
        } else {
            format!("/{}", self.base_dir)
        };
        format!(
            "smb://{user}{}:{}/{}{base}",
            self.host, self.port, self.share
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(v: serde_json::Value) -> VfsResult<SmbConfig> {
        let secrets = |name: &str| (name == "s").then(|| "from-secret".to_string());
        SmbConfig::from_fields(&Fields::new("smb", &v, &secrets))
    }

    #[test]
    fn smb_fields_give_host_port_share_folder_and_credentials() {
        let c = config(
            json!({"Host": "smb://fs.example.com:4445/", "Share": "data\\out/box",
                              "User": "bob", "PassFromSecret": "s", "Domain": "CORP"}),
        )
        .unwrap();
        assert_eq!(
            (
                c.host.as_str(),
                c.port,
                c.share.as_str(),
                c.base_dir.as_str()
            ),
            ("fs.example.com", 4445, "data", "out/box")
        );
        assert_eq!(c.password, "from-secret");
        assert_eq!(c.label(), "smb://CORP;bob@fs.example.com:4445/data/out/box");
        assert!(!format!("{c:?}").contains("from-secret"));
        let c = config(json!({"Host": "fs", "Port": "1445", "Share": "d"})).unwrap();
        assert_eq!((c.port, c.user.as_str()), (1445, ""));
    }

    #[test]
    fn smb_fields_refuse_a_path_in_host_and_bad_values() {
        let e = config(json!({"Host": "//fs/share", "Share": "d"})).unwrap_err();
        assert!(e.to_string().contains("Host"), "{e}");
        let e = config(json!({"Host": "fs", "Share": "d", "Port": "70000"})).unwrap_err();
        assert!(e.to_string().contains("Port"), "{e}");
        let e = config(json!({"Host": "fs", "Share": "/"})).unwrap_err();
        assert!(e.to_string().contains("Share"), "{e}");
        let e = config(json!({"Host": "fs"})).unwrap_err();
        assert!(e.to_string().contains("Share"), "{e}");
    }

    #[cfg(not(feature = "smb"))]
    #[test]
    fn smb_without_the_feature_says_how_to_get_it() {
        let e = crate::open_backend("smb", &json!({"Host": "fs", "Share": "d"}), &|_| None)
            .err()
            .expect("no SMB in this build");
        assert!(e.to_string().contains("--features smb"), "{e}");
    }
}
