//! OpenPGP for scripts, on rPGP: encrypt files to partners' public keys, decrypt with a
//! private key whose passphrase may come from a secret, and make/check detached signatures.
//! The output is what GnuPG reads and writes (SEIPD v1 with AES-256, zlib compression).
//!
//! A key argument is a path to a key file (binary or ASCII-armored), the armored key text
//! itself, or `secret:NAME` for a key kept in the secret store.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use pgp::composed::{
    ArmorOptions, Deserializable, DetachedSignature, Message, MessageBuilder, SignedPublicKey,
    SignedSecretKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::crypto::sym::SymmetricKeyAlgorithm;
use pgp::types::{CompressionAlgorithm, KeyDetails, Password};
use rquickjs::function::Opt;
use rquickjs::{Ctx, Function, Value};

use super::libutil::{
    opt_bool, opt_str, options, report, secret_value, set_global, string_list, throw,
};
use crate::JobScope;

/// Where a key's bytes come from, for messages that name it without showing it.
fn key_label(spec: &str) -> String {
    if spec.starts_with("-----BEGIN") {
        "the armored key given inline".to_string()
    } else {
        spec.to_string()
    }
}

/// The raw bytes of a key argument (path, armored text or `secret:NAME`).
fn key_bytes(scope: &JobScope, spec: &str) -> Result<Vec<u8>, String> {
    if let Some(name) = spec.strip_prefix("secret:") {
        return secret_value(scope, name).map(String::into_bytes);
    }
    if spec.trim_start().starts_with("-----BEGIN PGP") {
        return Ok(spec.as_bytes().to_vec());
    }
    std::fs::read(spec).map_err(|e| format!("cannot read key file {spec}: {e}"))
}

/// Parse a public key (certificate); a secret key gives its public part.
pub fn parse_public_key(bytes: &[u8], label: &str) -> Result<SignedPublicKey, String> {
    match SignedPublicKey::from_reader_single(bytes) {
        Ok((key, _)) => Ok(key),
        Err(pub_err) => match SignedSecretKey::from_reader_single(bytes) {
            Ok((key, _)) => Ok(key.to_public_key()),
            Err(_) => Err(format!("{label} is not an OpenPGP public key: {pub_err}")),
        },
    }
}

/// Parse a private (secret) key.
pub fn parse_secret_key(bytes: &[u8], label: &str) -> Result<SignedSecretKey, String> {
    SignedSecretKey::from_reader_single(bytes)
        .map(|(k, _)| k)
        .map_err(|e| format!("{label} is not an OpenPGP private key (export it with gpg --export-secret-keys): {e}"))
}

/// When a key made at `created` with a self-signature `sig` stops being valid; `None` when
/// the signature sets no expiry.
fn expiry_of(created: pgp::types::Timestamp, sig: &pgp::packet::Signature) -> Option<u64> {
    sig.key_expiration_time()
        .map(|d| u64::from(d.as_secs()))
        .filter(|&d| d > 0)
        .map(|d| u64::from(created.as_secs()) + d)
}

/// Seconds since the epoch, for comparing with key expiry times.
fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A date for messages: `2026-11-28`.
fn day(secs: u64) -> String {
    chrono::DateTime::from_timestamp(secs as i64, 0)
        .map_or_else(|| secs.to_string(), |t| t.format("%Y-%m-%d").to_string())
}

/// Why `key` (its primary key) may not be used now: revoked by its owner, or expired.
/// The newest self-signature decides the expiry, as in GnuPG.
fn primary_key_unusable(key: &SignedPublicKey) -> Option<String> {
    let id = hex::encode(key.primary_key.fingerprint().as_bytes());
    if key
        .details
        .revocation_signatures
        .iter()
        .any(|sig| sig.verify_key(&key.primary_key).is_ok())
    {
        return Some(format!(
            "key {id} has been revoked by its owner; ask them for their current key"
        ));
    }
    let newest = key
        .details
        .users
        .iter()
        .flat_map(|u| u.signatures.iter())
        .chain(key.details.direct_signatures.iter())
        .max_by_key(|sig| sig.created().map_or(0, |t| t.as_secs()))?;
    let expires = expiry_of(key.primary_key.created_at(), newest)?;
    (expires <= now_secs()).then(|| {
        format!(
            "key {id} expired on {}; ask its owner to extend it or for a new key",
            day(expires)
        )
    })
}

/// Whether a subkey is revoked, or expired by its newest binding signature.
fn subkey_unusable(sk: &pgp::composed::SignedPublicSubKey) -> bool {
    use pgp::packet::SignatureType;
    if sk
        .signatures
        .iter()
        .any(|sig| sig.typ() == Some(SignatureType::SubkeyRevocation))
    {
        return true;
    }
    sk.signatures
        .iter()
        .filter(|sig| sig.typ() == Some(SignatureType::SubkeyBinding))
        .max_by_key(|sig| sig.created().map_or(0, |t| t.as_secs()))
        .and_then(|sig| expiry_of(sk.key.created_at(), sig))
        .is_some_and(|expires| expires <= now_secs())
}

fn is_encryption_subkey(sk: &pgp::composed::SignedPublicSubKey) -> bool {
    sk.key.algorithm().can_encrypt()
        && sk.signatures.iter().any(|s| {
            let f = s.key_flags();
            f.encrypt_comms() || f.encrypt_storage()
        })
}

/// Encrypt `input` to every key in `keys`; `armor` writes ASCII armor instead of binary.
pub fn encrypt_file(
    input: &str,
    output: &str,
    keys: &[SignedPublicKey],
    armor: bool,
) -> Result<(), String> {
    if keys.is_empty() {
        return Err("no public key to encrypt to".into());
    }
    if !Path::new(input).is_file() {
        return Err(format!("{input} is not a file (or does not exist)"));
    }
    let mut rng = rand::thread_rng();
    let mut builder =
        MessageBuilder::from_file(input).seipd_v1(&mut rng, SymmetricKeyAlgorithm::AES256);
    builder.compression(CompressionAlgorithm::ZLIB);
    for key in keys {
        let id = hex::encode(key.primary_key.fingerprint().as_bytes());
        if let Some(why) = primary_key_unusable(key) {
            return Err(why);
        }
        let mut used = false;
        let mut stale_subkey = false;
        for sk in key
            .public_subkeys
            .iter()
            .filter(|sk| is_encryption_subkey(sk))
        {
            if subkey_unusable(sk) {
                stale_subkey = true;
                continue;
            }
            builder
                .encrypt_to_key(&mut rng, sk)
                .map_err(|e| format!("cannot encrypt to subkey of {id}: {e}"))?;
            used = true;
        }
        if !used {
            if stale_subkey {
                return Err(format!(
                    "every encryption subkey of key {id} is expired or revoked; ask its owner for their current key"
                ));
            }
            if key.primary_key.algorithm().can_encrypt() {
                builder
                    .encrypt_to_key(&mut rng, &key.primary_key)
                    .map_err(|e| format!("cannot encrypt to key {id}: {e}"))?;
            } else {
                return Err(format!(
                    "key {id} has no encryption subkey; ask its owner for a key that can encrypt"
                ));
            }
        }
    }
    let out = File::create(output).map_err(|e| format!("cannot create {output}: {e}"))?;
    let mut out = BufWriter::new(out);
    let written = if armor {
        builder.to_armored_writer(&mut rng, ArmorOptions::default(), &mut out)
    } else {
        builder.to_writer(&mut rng, &mut out)
    };
    let result = written
        .map_err(|e| format!("cannot encrypt {input}: {e}"))
        .and_then(|_| {
            out.flush()
                .map_err(|e| format!("cannot write {output}: {e}"))
        });
    if result.is_err() {
        drop(out);
        let _ = std::fs::remove_file(output);
    }
    result
}

/// Decrypt `input` (binary or armored) with `key` unlocked by `passphrase` into `output`.
pub fn decrypt_file(
    input: &str,
    output: &str,
    key: &SignedSecretKey,
    passphrase: &str,
) -> Result<(), String> {
    let file = File::open(input).map_err(|e| format!("cannot open {input}: {e}"))?;
    let (msg, _) = Message::from_reader(BufReader::new(file))
        .map_err(|e| format!("{input} is not an OpenPGP message: {e}"))?;
    if !msg.is_encrypted() {
        return Err(format!("{input} is not encrypted"));
    }
    let mut msg = msg
        .decrypt(&Password::from(passphrase), key)
        .map_err(|e| format!("cannot decrypt {input}: {e} (is it encrypted to this key, and is the passphrase right?)"))?;
    if msg.is_compressed() {
        msg = msg
            .decompress()
            .map_err(|e| format!("cannot decompress {input}: {e}"))?;
    }
    let out = File::create(output).map_err(|e| format!("cannot create {output}: {e}"))?;
    let mut out = BufWriter::new(out);
    let copied = std::io::copy(&mut msg, &mut out)
        .map_err(|e| format!("cannot decrypt {input}: {e} (the file may be damaged)"))
        .and_then(|_| {
            out.flush()
                .map_err(|e| format!("cannot write {output}: {e}"))
        });
    if copied.is_err() {
        drop(out);
        let _ = std::fs::remove_file(output);
    }
    copied
}

/// Write an ASCII-armored detached signature of `input` to `sig_out`.
pub fn sign_file(
    input: &str,
    sig_out: &str,
    key: &SignedSecretKey,
    passphrase: &str,
) -> Result<(), String> {
    let data = File::open(input).map_err(|e| format!("cannot open {input}: {e}"))?;
    let sig = DetachedSignature::sign_binary_data(
        rand::thread_rng(),
        &key.primary_key,
        &Password::from(passphrase),
        HashAlgorithm::Sha256,
        BufReader::new(data),
    )
    .map_err(|e| format!("cannot sign {input}: {e} (is the passphrase right?)"))?;
    let text = sig
        .to_armored_string(ArmorOptions::default())
        .map_err(|e| format!("cannot encode the signature: {e}"))?;
    std::fs::write(sig_out, text).map_err(|e| format!("cannot write {sig_out}: {e}"))
}

/// Check a detached signature (binary or armored) of `input` against any of `keys`.
pub fn verify_file(input: &str, sig_path: &str, keys: &[SignedPublicKey]) -> Result<(), String> {
    let sig_bytes =
        std::fs::read(sig_path).map_err(|e| format!("cannot read signature {sig_path}: {e}"))?;
    let (sig, _) = DetachedSignature::from_reader_single(sig_bytes.as_slice())
        .map_err(|e| format!("{sig_path} is not an OpenPGP signature: {e}"))?;
    for key in keys {
        let data = File::open(input).map_err(|e| format!("cannot open {input}: {e}"))?;
        if sig.signature.verify(key, BufReader::new(data)).is_ok() {
            return Ok(());
        }
        for sk in &key.public_subkeys {
            let data = File::open(input).map_err(|e| format!("cannot open {input}: {e}"))?;
            if sig.signature.verify(sk, BufReader::new(data)).is_ok() {
                return Ok(());
            }
        }
    }
    Err(format!(
        "the signature {sig_path} does not match {input} for the given key(s)"
    ))
}

/// A passphrase argument: a string, or `{Passphrase: ...}` / `{PassphraseFromSecret: ...}`.
fn passphrase_arg<'js>(
    ctx: &Ctx<'js>,
    scope: &JobScope,
    func: &str,
    value: Option<Value<'js>>,
) -> rquickjs::Result<Result<String, String>> {
    if let Some(v) = &value
        && let Some(s) = v.as_string()
    {
        return Ok(Ok(s.to_string()?));
    }
    let o = options(ctx, func, value)?;
    if let Some(p) = opt_str(&o, "Passphrase") {
        return Ok(Ok(p.to_string()));
    }
    if let Some(name) = opt_str(&o, "PassphraseFromSecret") {
        return Ok(secret_value(scope, name));
    }
    Ok(Ok(String::new()))
}

fn public_keys(scope: &JobScope, specs: &[String]) -> Result<Vec<SignedPublicKey>, String> {
    specs
        .iter()
        .map(|spec| parse_public_key(&key_bytes(scope, spec)?, &key_label(spec)))
        .collect()
}

fn secret_key(scope: &JobScope, spec: &str) -> Result<SignedSecretKey, String> {
    parse_secret_key(&key_bytes(scope, spec)?, &key_label(spec))
}

/// Register `PgpEncryptFile`, `PgpDecryptFile`, `PgpSignFile` and `PgpVerifyFile`.
pub fn register<'js>(ctx: &Ctx<'js>, scope: &JobScope) -> rquickjs::Result<()> {
    let s = scope.clone();
    set_global(
        ctx,
        "PgpEncryptFile",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>,
                  input: String,
                  output: String,
                  keys: Value<'js>,
                  opts: Opt<Value<'js>>| {
                const F: &str = "PgpEncryptFile";
                let keys = string_list(&ctx, F, "public key", Some(keys))?;
                if keys.is_empty() {
                    return Err(throw(
                        &ctx,
                        F,
                        "give at least one public key (a file path, armored text or secret:NAME)",
                    ));
                }
                let o = options(&ctx, F, opts.0)?;
                let result = public_keys(&s, &keys)
                    .and_then(|k| encrypt_file(&input, &output, &k, opt_bool(&o, "Armor")));
                Ok(report(&s, F, result.map(|_| true), false))
            },
        )?,
    )?;
    let s = scope.clone();
    set_global(
        ctx,
        "PgpDecryptFile",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>,
                  input: String,
                  output: String,
                  key: String,
                  pass: Opt<Value<'js>>| {
                const F: &str = "PgpDecryptFile";
                let result = passphrase_arg(&ctx, &s, F, pass.0)?
                    .and_then(|pass| decrypt_file(&input, &output, &secret_key(&s, &key)?, &pass));
                rquickjs::Result::Ok(report(&s, F, result.map(|_| true), false))
            },
        )?,
    )?;
    let s = scope.clone();
    set_global(
        ctx,
        "PgpSignFile",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>,
                  input: String,
                  sig_out: String,
                  key: String,
                  pass: Opt<Value<'js>>| {
                const F: &str = "PgpSignFile";
                let result = passphrase_arg(&ctx, &s, F, pass.0)?
                    .and_then(|pass| sign_file(&input, &sig_out, &secret_key(&s, &key)?, &pass));
                rquickjs::Result::Ok(report(&s, F, result.map(|_| true), false))
            },
        )?,
    )?;
    let s = scope.clone();
    set_global(
        ctx,
        "PgpVerifyFile",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, input: String, sig: String, keys: Value<'js>| {
                const F: &str = "PgpVerifyFile";
                let keys = string_list(&ctx, F, "public key", Some(keys))?;
                let result = public_keys(&s, &keys).and_then(|k| verify_file(&input, &sig, &k));
                rquickjs::Result::Ok(report(&s, F, result.map(|_| true), false))
            },
        )?,
    )?;
    Ok(())
}
