//! Reading a private key's text: OpenSSH/PEM/PKCS#8 or PuTTY `.ppk`, through russh.
//!
//! A `.ppk` v3 key names its own Argon2 cost (`Argon2-Memory` in KiB, `Argon2-Passes`), and
//! the KDF runs before the file's MAC is checked: a key file asking for terabytes or billions
//! of passes would take the process's memory or hang the connection. Keys over
//! [`PPK_MAX_ARGON2_MEMORY_KIB`] or [`PPK_MAX_ARGON2_WORK_KIB`] are refused up front.
//! PuTTY's own keys use 8 MiB and a pass count calibrated to a fraction of a second.

use russh::keys::PrivateKey;

/// The most memory a `.ppk` key's Argon2 may ask for: 1 GiB.
pub const PPK_MAX_ARGON2_MEMORY_KIB: u64 = 1 << 20;
/// The most Argon2 work (memory in KiB × passes) a `.ppk` key may ask for: 16 GiB of
/// passes, some seconds of CPU.
pub const PPK_MAX_ARGON2_WORK_KIB: u64 = 1 << 24;

/// Why a private key's text could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key asks for more than aft allows (see the module docs).
    #[error("{0}")]
    OverLimit(String),
    /// russh could not read it (bad format, wrong passphrase, bad MAC, ...).
    #[error(transparent)]
    Decode(#[from] russh::keys::Error),
}

/// The private key in `text` (OpenSSH, PEM, PKCS#8 or PuTTY `.ppk` v2/v3), decrypted with
/// `passphrase` when it is encrypted.
pub fn decode_private_key(text: &str, passphrase: Option<&str>) -> Result<PrivateKey, KeyError> {
    if text.trim_start().starts_with("PuTTY-User-Key-File-") {
        check_ppk_cost(text)?;
    }
    Ok(russh::keys::decode_secret_key(text, passphrase)?)
}

/// Refuse a `.ppk` whose Argon2 parameters are over the limits. Every occurrence of a
/// field counts (a parser may keep either one), and a value that is not a number is left
/// for the real parser to refuse.
fn check_ppk_cost(text: &str) -> Result<(), KeyError> {
    let mut memory: u64 = 0;
    let mut passes: u64 = 0;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(": ") else {
            continue;
        };
        let slot = match key {
            "Argon2-Memory" => &mut memory,
            "Argon2-Passes" => &mut passes,
            _ => continue,
        };
        if let Ok(n) = value.trim().parse::<u64>() {
            *slot = (*slot).max(n);
        }
    }
    if memory > PPK_MAX_ARGON2_MEMORY_KIB {
        return Err(KeyError::OverLimit(format!(
            "the .ppk key asks for {memory} KiB of Argon2 memory (Argon2-Memory), over aft's \
             limit of {PPK_MAX_ARGON2_MEMORY_KIB} KiB; re-save it with PuTTYgen's defaults"
        )));
    }
    if memory.saturating_mul(passes) > PPK_MAX_ARGON2_WORK_KIB {
        return Err(KeyError::OverLimit(format!(
            "the .ppk key asks for {passes} Argon2 passes over {memory} KiB \
             (Argon2-Passes × Argon2-Memory), over aft's limit of {PPK_MAX_ARGON2_WORK_KIB} KiB; \
             re-save it with PuTTYgen's defaults"
        )));
    }
    Ok(())
}
