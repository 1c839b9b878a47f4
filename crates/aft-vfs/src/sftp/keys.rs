//! Reading a private key's text: OpenSSH/PEM/PKCS#8 or PuTTY `.ppk`, through russh.
//!
//! A `.ppk` v3 key names its own Argon2 cost (`Argon2-Memory` in KiB, `Argon2-Passes`), and
//! the KDF runs before the file's MAC is checked: a key file asking for terabytes or billions
//! of passes would take the process's memory or hang the connection. Keys over
//! [`PPK_MAX_ARGON2_MEMORY_KIB`] or [`PPK_MAX_ARGON2_WORK_KIB`] are refused up front.
//! PuTTY's own keys use 8 MiB and a pass count calibrated to a fraction of a second.
//!
//! An encrypted OpenSSH key names its own bcrypt-pbkdf rounds (`ssh-keygen -a`, default 16)
//! the same way, before anything checks the passphrase: 4 billion rounds would hold the
//! login for weeks. Keys over [`OPENSSH_MAX_BCRYPT_ROUNDS`] are refused up front.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use russh::keys::PrivateKey;

/// Base64 read leniently (any padding, stray trailing bits): the rounds must be found in
/// every text the real parser might accept.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The most memory a `.ppk` key's Argon2 may ask for: 1 GiB.
pub const PPK_MAX_ARGON2_MEMORY_KIB: u64 = 1 << 20;
/// The most Argon2 work (memory in KiB × passes) a `.ppk` key may ask for: 16 GiB of
/// passes, some seconds of CPU.
pub const PPK_MAX_ARGON2_WORK_KIB: u64 = 1 << 24;

/// The most bcrypt-pbkdf rounds an encrypted OpenSSH key may ask for. `ssh-keygen` uses
/// 16 and guides advise up to a few hundred; each round costs some milliseconds, so this
/// bounds the work at seconds.
pub const OPENSSH_MAX_BCRYPT_ROUNDS: u32 = 1024;

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
    check_openssh_rounds(text)?;
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

/// Refuse an OpenSSH key (`openssh-key-v1`) whose bcrypt KDF asks for more than
/// [`OPENSSH_MAX_BCRYPT_ROUNDS`] rounds. Anything that does not read as such a key is left
/// for the real parser to judge.
fn check_openssh_rounds(text: &str) -> Result<(), KeyError> {
    const BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
    let Some(start) = text.find(BEGIN) else {
        return Ok(());
    };
    let body = &text[start + BEGIN.len()..];
    let body = body.split("-----END").next().unwrap_or(body);
    let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let Ok(blob) = LENIENT_BASE64.decode(b64) else {
        return Ok(());
    };
    let Some(rounds) = bcrypt_rounds(&blob) else {
        return Ok(());
    };
    if rounds > OPENSSH_MAX_BCRYPT_ROUNDS {
        return Err(KeyError::OverLimit(format!(
            "the OpenSSH key asks for {rounds} bcrypt rounds to decrypt it, over aft's limit \
             of {OPENSSH_MAX_BCRYPT_ROUNDS}; re-encrypt it with `ssh-keygen -p -a 16 -f FILE`"
        )));
    }
    Ok(())
}

/// The bcrypt rounds of an `openssh-key-v1` blob: magic, cipher name, KDF name, then the
/// KDF options (salt, rounds) as one string. `None` when it is not bcrypt or too short.
fn bcrypt_rounds(blob: &[u8]) -> Option<u32> {
    let mut rest = blob.strip_prefix(b"openssh-key-v1\0")?;
    let _cipher = ssh_string(&mut rest)?;
    if ssh_string(&mut rest)? != b"bcrypt" {
        return None;
    }
    let mut options = ssh_string(&mut rest)?;
    let _salt = ssh_string(&mut options)?;
    Some(u32::from_be_bytes(options.get(..4)?.try_into().ok()?))
}

/// The next SSH `string` (a big-endian u32 length, then the bytes) of `rest`, which moves
/// past it.
fn ssh_string<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let all: &'a [u8] = rest;
    let len = u32::from_be_bytes(all.get(..4)?.try_into().ok()?) as usize;
    let end = 4usize.checked_add(len)?;
    let s = all.get(4..end)?;
    *rest = &all[end..];
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `ssh-keygen -t ed25519 -a 16 -N fuzz-pass` key.
    const KEY_16_ROUNDS: &str =
        include_str!("../../tests/corpus/openssh/ed25519-encrypted-16-rounds.key");

    fn with_rounds(text: &str, rounds: u32) -> String {
        let b64 = base64::engine::general_purpose::STANDARD;
        let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
        let mut blob = b64.decode(body).unwrap();
        // magic (15) + "aes256-ctr" (4 + 10) + "bcrypt" (4 + 6) + options length (4) + salt (4 + 16)
        let at = 15 + 14 + 10 + 4 + 20;
        blob[at..at + 4].copy_from_slice(&rounds.to_be_bytes());
        format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
            b64.encode(blob)
        )
    }

    #[test]
    fn openssh_rounds_are_read_and_bounded() {
        let blob_rounds = |t: &str| {
            let body: String = t.lines().filter(|l| !l.starts_with("-----")).collect();
            bcrypt_rounds(
                &base64::engine::general_purpose::STANDARD
                    .decode(body)
                    .unwrap(),
            )
        };
        assert_eq!(blob_rounds(KEY_16_ROUNDS), Some(16));
        assert!(decode_private_key(KEY_16_ROUNDS, Some("fuzz-pass")).is_ok());
        let at_limit = with_rounds(KEY_16_ROUNDS, OPENSSH_MAX_BCRYPT_ROUNDS);
        assert_eq!(blob_rounds(&at_limit), Some(OPENSSH_MAX_BCRYPT_ROUNDS));
        assert!(check_openssh_rounds(&at_limit).is_ok());
        for rounds in [OPENSSH_MAX_BCRYPT_ROUNDS + 1, u32::MAX] {
            let huge = with_rounds(KEY_16_ROUNDS, rounds);
            let started = std::time::Instant::now();
            let e = decode_private_key(&huge, Some("fuzz-pass")).unwrap_err();
            assert!(started.elapsed() < std::time::Duration::from_secs(1));
            assert!(matches!(e, KeyError::OverLimit(_)), "{e}");
            assert!(
                e.to_string().contains(&format!("{rounds} bcrypt rounds")),
                "{e}"
            );
            // Refused without a passphrase too: nothing about the key is trusted first.
            assert!(decode_private_key(&huge, None).is_err());
        }
    }

    #[test]
    fn truncated_openssh_blobs_are_left_to_the_parser() {
        let body: String = KEY_16_ROUNDS
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let blob = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        for n in 0..80.min(blob.len()) {
            // No panic, and no rounds read past the end.
            let _ = bcrypt_rounds(&blob[..n]);
        }
        assert_eq!(
            bcrypt_rounds(b"openssh-key-v1\0\0\0\0\x04none\0\0\0\x04none"),
            None
        );
    }
}
