//! Hashes for scripts: `HashFile(path, algo)` and `HashString(text, algo)` with SHA-256,
//! SHA-1, MD5 and CRC32, as lowercase hex.

use std::io::Read;

use md5::Md5;
use rquickjs::{Ctx, Function, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::libutil::{bytes_arg, report_nullable, set_global, throw};
use crate::JobScope;

/// A hash algorithm a script can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKind {
    /// SHA-256 (64 hex digits).
    Sha256,
    /// SHA-1 (40 hex digits).
    Sha1,
    /// MD5 (32 hex digits).
    Md5,
    /// CRC-32 (IEEE, as zip and gzip use it; 8 hex digits).
    Crc32,
}

impl HashKind {
    /// Parse a script's algorithm name: `sha256`, `sha-256`, `sha1`, `md5`, `crc32` in any case.
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "sha256" => Some(Self::Sha256),
            "sha1" => Some(Self::Sha1),
            "md5" => Some(Self::Md5),
            "crc32" => Some(Self::Crc32),
            _ => None,
        }
    }
}

enum Hasher {
    Sha256(Sha256),
    Sha1(Sha1),
    Md5(Md5),
    Crc32(crc32fast::Hasher),
}

impl Hasher {
    fn new(kind: HashKind) -> Self {
        match kind {
            HashKind::Sha256 => Self::Sha256(Sha256::new()),
            HashKind::Sha1 => Self::Sha1(Sha1::new()),
            HashKind::Md5 => Self::Md5(Md5::new()),
            HashKind::Crc32 => Self::Crc32(crc32fast::Hasher::new()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Self::Sha256(h) => h.update(data),
            Self::Sha1(h) => h.update(data),
            Self::Md5(h) => h.update(data),
            Self::Crc32(h) => h.update(data),
        }
    }

    fn hex(self) -> String {
        match self {
            Self::Sha256(h) => hex::encode(h.finalize()),
            Self::Sha1(h) => hex::encode(h.finalize()),
            Self::Md5(h) => hex::encode(h.finalize()),
            Self::Crc32(h) => format!("{:08x}", h.finalize()),
        }
    }
}

/// The hex digest of `data`.
pub fn hash_bytes(kind: HashKind, data: &[u8]) -> String {
    let mut h = Hasher::new(kind);
    h.update(data);
    h.hex()
}

/// The hex digest of a file's content, read in 64 KiB pieces.
pub fn hash_file(kind: HashKind, path: &str) -> Result<String, String> {
    let mut file = std::fs::File::open(path).map_err(|e| format!("cannot open {path}: {e}"))?;
    let mut h = Hasher::new(kind);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| format!("cannot read {path}: {e}"))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.hex())
}

fn kind_arg(ctx: &Ctx<'_>, func: &str, algo: Option<String>) -> rquickjs::Result<HashKind> {
    let algo = algo.unwrap_or_else(|| "sha256".to_string());
    HashKind::parse(&algo).ok_or_else(|| {
        throw(
            ctx,
            func,
            format!(
                "unknown hash algorithm \"{algo}\"; use \"sha256\", \"sha1\", \"md5\" or \"crc32\""
            ),
        )
    })
}

/// Register `HashFile` and `HashString`.
pub fn register<'js>(ctx: &Ctx<'js>, scope: &JobScope) -> rquickjs::Result<()> {
    let s = scope.clone();
    set_global(
        ctx,
        "HashFile",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, path: String, algo: rquickjs::function::Opt<String>| {
                let kind = kind_arg(&ctx, "HashFile", algo.0)?;
                report_nullable(&ctx, &s, "HashFile", hash_file(kind, &path))
            },
        )?,
    )?;
    set_global(
        ctx,
        "HashString",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, data: Value<'js>, algo: rquickjs::function::Opt<String>| {
                let kind = kind_arg(&ctx, "HashString", algo.0)?;
                let bytes = bytes_arg(&ctx, "HashString", data)?;
                rquickjs::Result::Ok(hash_bytes(kind, &bytes))
            },
        )?,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests_of_abc() {
        assert_eq!(
            hash_bytes(HashKind::Sha256, b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hash_bytes(HashKind::Sha1, b"abc"),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hash_bytes(HashKind::Md5, b"abc"),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(hash_bytes(HashKind::Crc32, b"abc"), "352441c2");
    }

    #[test]
    fn file_hash_equals_string_hash_and_missing_file_says_which() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.bin");
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
        std::fs::write(&p, &data).unwrap();
        let p = p.to_str().unwrap();
        assert_eq!(
            hash_file(HashKind::Sha256, p).unwrap(),
            hash_bytes(HashKind::Sha256, &data)
        );
        let err = hash_file(HashKind::Md5, "/nonexistent/x").unwrap_err();
        assert!(err.contains("/nonexistent/x"), "{err}");
    }

    #[test]
    fn algorithm_names_are_forgiving() {
        assert_eq!(HashKind::parse("SHA-256"), Some(HashKind::Sha256));
        assert_eq!(HashKind::parse("crc32"), Some(HashKind::Crc32));
        assert_eq!(HashKind::parse("sha512"), None);
    }
}
