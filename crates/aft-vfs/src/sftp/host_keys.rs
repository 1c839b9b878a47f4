//! Host keys: the pins an SFTP entry sets and the russh handler that checks the server's
//! key against them while the connection is made.

use std::sync::{Arc, Mutex as StdMutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use md5::Md5;
use russh::keys::PublicKeyOrCertificate;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::SftpConfig;
use crate::{VfsError, VfsResult};

/// A fingerprint kind a host key can be pinned by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PinKind {
    Sha256,
    Md5,
    Sha1,
}

impl PinKind {
    /// The client field that sets this pin.
    pub(super) fn field(self) -> &'static str {
        match self {
            PinKind::Sha256 => "HostKeySHA256",
            PinKind::Md5 => "HostKeyMD5",
            PinKind::Sha1 => "HostKeySHA1",
        }
    }

    /// The prefix OpenSSH prints before this kind of fingerprint.
    pub(super) fn prefix(self) -> &'static str {
        match self {
            PinKind::Sha256 => "SHA256:",
            PinKind::Md5 => "MD5:",
            PinKind::Sha1 => "SHA1:",
        }
    }

    pub(super) fn digest_len(self) -> usize {
        match self {
            PinKind::Sha256 => 32,
            PinKind::Md5 => 16,
            PinKind::Sha1 => 20,
        }
    }

    /// What a user may paste, for error messages.
    pub(super) fn formats(self) -> &'static str {
        match self {
            PinKind::Sha256 => "SHA256: and base64 as `ssh-keygen -l` prints it (or hex)",
            PinKind::Md5 => "MD5: and hex pairs as `ssh-keygen -l -E md5` prints it",
            PinKind::Sha1 => "SHA1: and base64 as `ssh-keygen -l -E sha1` prints it, or hex",
        }
    }

    /// The digest of a public key's SSH wire encoding, as OpenSSH fingerprints it.
    pub(super) fn digest(self, wire: &[u8]) -> Vec<u8> {
        match self {
            PinKind::Sha256 => Sha256::digest(wire).to_vec(),
            PinKind::Md5 => Md5::digest(wire).to_vec(),
            PinKind::Sha1 => Sha1::digest(wire).to_vec(),
        }
    }

    /// A digest written as OpenSSH prints it: MD5 as colon-separated hex, others as
    /// unpadded base64.
    pub(super) fn display(self, digest: &[u8]) -> String {
        match self {
            PinKind::Md5 => {
                let pairs: Vec<String> = digest.iter().map(|b| format!("{b:02x}")).collect();
                format!("MD5:{}", pairs.join(":"))
            }
            _ => format!("{}{}", self.prefix(), STANDARD_NO_PAD.encode(digest)),
        }
    }

    /// Read a pasted fingerprint: prefix optional (any case), then hex (colons optional;
    /// the only form for MD5) or base64 (padded or not).
    pub(super) fn parse(self, pinned: &str) -> VfsResult<Vec<u8>> {
        let text = pinned.trim();
        let prefix = self.prefix();
        let body = match text.get(..prefix.len()) {
            Some(head) if head.eq_ignore_ascii_case(prefix) => &text[prefix.len()..],
            _ => text,
        };
        let hex_text: String = body.chars().filter(|c| *c != ':').collect();
        let decoded = if hex_text.len() == 2 * self.digest_len() {
            hex::decode(&hex_text).ok()
        } else if self == PinKind::Md5 {
            None
        } else {
            STANDARD_NO_PAD.decode(body.trim_end_matches('=')).ok()
        };
        match decoded {
            Some(d) if d.len() == self.digest_len() => Ok(d),
            _ => Err(VfsError::Other(format!(
                "sftp client: {} = \"{pinned}\" is not a {}-byte fingerprint; expected {}",
                self.field(),
                self.digest_len(),
                self.formats()
            ))),
        }
    }
}

/// The host key pins of a config, decoded; a key must match all of them.
#[derive(Debug, Clone, Default)]
pub(super) struct HostKeyPins {
    pub(super) pins: Vec<(PinKind, Vec<u8>)>,
}

impl HostKeyPins {
    pub(super) fn parse(cfg: &SftpConfig) -> VfsResult<Self> {
        let mut pins = Vec::new();
        for (kind, text) in [
            (PinKind::Sha256, &cfg.host_key_sha256),
            (PinKind::Md5, &cfg.host_key_md5),
            (PinKind::Sha1, &cfg.host_key_sha1),
        ] {
            if let Some(text) = text.as_deref().filter(|t| !t.trim().is_empty()) {
                pins.push((kind, kind.parse(text)?));
            }
        }
        Ok(Self { pins })
    }

    /// `None` when every pin matches the key (wire encoding `wire`); otherwise the failed
    /// pins, each with the key's own value, or `None` inside when no pin is set at all.
    pub(super) fn check(&self, wire: &[u8]) -> Option<Option<String>> {
        if self.pins.is_empty() {
            return Some(None);
        }
        let failed: Vec<String> = self
            .pins
            .iter()
            .filter_map(|(kind, pinned)| {
                let actual = kind.digest(wire);
                (actual != *pinned).then(|| {
                    format!(
                        "{} = \"{}\" (the key's is {})",
                        kind.field(),
                        kind.display(pinned),
                        kind.display(&actual)
                    )
                })
            })
            .collect();
        (!failed.is_empty()).then(|| Some(failed.join(" and ")))
    }
}

/// What the handler saw of the server's key, for the error after a refusal.
#[derive(Debug, Default)]
pub(super) struct SeenKey {
    pub(super) fingerprint: String,
    pub(super) mismatch: Option<String>,
}

pub(super) struct ClientHandler {
    pub(super) pins: HostKeyPins,
    pub(super) accept_any: bool,
    pub(super) seen: Arc<StdMutex<SeenKey>>,
}

impl russh::client::Handler for ClientHandler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        // A certificate is judged by the key it certifies, as OpenSSH fingerprints it.
        let key = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            PublicKeyOrCertificate::Certificate(cert) => {
                russh::keys::PublicKey::from(cert.public_key().clone())
            }
        };
        let wire = key.to_bytes().map_err(russh::keys::Error::from)?;
        let verdict = self.pins.check(&wire);
        *self.seen.lock().expect("host key slot") = SeenKey {
            fingerprint: PinKind::Sha256.display(&PinKind::Sha256.digest(&wire)),
            mismatch: verdict.clone().flatten(),
        };
        Ok(self.accept_any || verdict.is_none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VfsResult;
    use base64::engine::general_purpose::STANDARD_NO_PAD;

    /// An ed25519 public key blob and its fingerprints as `ssh-keygen -l -E ...` printed them.
    const KEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIM0M2/IfPpdRXEfeMI+6Gj7gW4yKnFjohoPUp/Oy8Zlv";
    const KEY_SHA256: &str = "SHA256:qCsOKtCK0fWaJBvXFiqNxWXYqwInBYK2IAYpIqsWvA0";
    const KEY_MD5: &str = "MD5:46:5e:cd:95:c2:c8:c5:3f:bc:99:47:32:2f:99:26:d8";
    const KEY_SHA1: &str = "SHA1:pGxAx+YK9IugYAa8FFpyqaCpnnA";

    fn wire() -> Vec<u8> {
        STANDARD_NO_PAD.decode(KEY.trim_end_matches('=')).unwrap()
    }

    fn pins(sha256: Option<&str>, md5: Option<&str>, sha1: Option<&str>) -> VfsResult<HostKeyPins> {
        let mut cfg = SftpConfig::new("h", "u");
        cfg.host_key_sha256 = sha256.map(str::to_string);
        cfg.host_key_md5 = md5.map(str::to_string);
        cfg.host_key_sha1 = sha1.map(str::to_string);
        HostKeyPins::parse(&cfg)
    }

    #[test]
    fn digests_print_as_ssh_keygen_does() {
        for (kind, expected) in [
            (PinKind::Sha256, KEY_SHA256),
            (PinKind::Md5, KEY_MD5),
            (PinKind::Sha1, KEY_SHA1),
        ] {
            assert_eq!(kind.display(&kind.digest(&wire())), expected);
        }
    }

    #[test]
    fn pins_accept_the_forms_users_paste() {
        let sha1_hex = hex::encode(PinKind::Sha1.digest(&wire()));
        let sha1_hex_colons = sha1_hex
            .as_bytes()
            .chunks(2)
            .map(|p| std::str::from_utf8(p).unwrap().to_uppercase())
            .collect::<Vec<_>>()
            .join(":");
        let md5_bare = KEY_MD5.trim_start_matches("MD5:").replace(':', "");
        let accepted = [
            pins(Some(KEY_SHA256), None, None),
            pins(
                Some("qCsOKtCK0fWaJBvXFiqNxWXYqwInBYK2IAYpIqsWvA0="),
                None,
                None,
            ),
            pins(
                Some("sha256:qCsOKtCK0fWaJBvXFiqNxWXYqwInBYK2IAYpIqsWvA0"),
                None,
                None,
            ),
            pins(None, Some(KEY_MD5), None),
            pins(None, Some(&KEY_MD5.to_uppercase()), None),
            pins(None, Some(&md5_bare), None),
            pins(
                None,
                Some(" md5:465e:cd95:c2c8:c53f:bc99:4732:2f99:26d8 "),
                None,
            ),
            pins(None, None, Some(KEY_SHA1)),
            pins(None, None, Some("pGxAx+YK9IugYAa8FFpyqaCpnnA=")),
            pins(None, None, Some(&sha1_hex)),
            pins(None, None, Some(&format!("SHA1:{sha1_hex_colons}"))),
            pins(Some(KEY_SHA256), Some(KEY_MD5), Some(KEY_SHA1)),
        ];
        for (i, p) in accepted.into_iter().enumerate() {
            let p = p.unwrap_or_else(|e| panic!("form {i}: {e}"));
            assert_eq!(p.check(&wire()), None, "form {i} matches the key");
        }
    }

    #[test]
    fn every_set_pin_must_match() {
        let wrong_md5 = "MD5:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff";
        let p = pins(Some(KEY_SHA256), Some(wrong_md5), Some(KEY_SHA1)).unwrap();
        let mismatch = p.check(&wire()).expect("refused").expect("names the pin");
        assert!(mismatch.contains("HostKeyMD5"), "{mismatch}");
        assert!(
            mismatch.contains(KEY_MD5),
            "names the key's MD5: {mismatch}"
        );
        assert!(!mismatch.contains("HostKeySHA1"), "{mismatch}");
        assert_eq!(pins(None, None, None).unwrap().check(&wire()), Some(None));
    }

    #[test]
    fn malformed_pins_are_refused_naming_the_field() {
        for (p, field) in [
            (pins(Some("SHA256:AAAA"), None, None), "HostKeySHA256"),
            (pins(None, Some("MD5:zz:11"), None), "HostKeyMD5"),
            (pins(None, Some(KEY_SHA1), None), "HostKeyMD5"),
            (pins(None, None, Some("SHA1:not base64!")), "HostKeySHA1"),
        ] {
            let err = p.unwrap_err().to_string();
            assert!(err.contains(field), "{err}");
        }
    }

    #[test]
    fn addr_adds_the_default_port() {
        assert_eq!(SftpConfig::new("h", "u").addr(), "h:22");
        assert_eq!(SftpConfig::new("h:2222", "u").addr(), "h:2222");
    }
}
