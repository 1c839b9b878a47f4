//! On-the-fly encryption (OTFE): streaming reader wrappers that encrypt a file on its way
//! to a remote and decrypt it on its way back, so a remote only ever stores ciphertext.
//!
//! # Format (version 1)
//!
//! ```text
//! header  = "AFTE" (4 bytes) | version 0x01 (1 byte) | nonce prefix (19 random bytes)
//! chunk_i = XChaCha20-Poly1305(key, nonce_i, aad = header, plaintext_i)   (len(plaintext_i) + 16 bytes)
//! nonce_i = nonce prefix (19) | i as u32 big-endian (4) | last flag (1: 0x01 on the final chunk, else 0x00)
//! ```
//!
//! Plaintext is cut into chunks of [`CHUNK_SIZE`] (64 KiB) bytes; only the final chunk may
//! be shorter, and it may be empty (an empty file is one empty final chunk). This is the
//! STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár): the chunk counter in the nonce
//! means chunks cannot be reordered or replayed, and the last-chunk flag means a stream cut
//! at a chunk boundary does not decrypt. Ciphertext size is
//! `24 + n + 16 * max(1, ceil(n / 65536))` for `n` plaintext bytes.
//!
//! # Keys
//!
//! The key is 32 bytes. [`key_from_string`] turns what a user types into one: a string
//! starting with `base64:` is decoded and must give exactly 32 bytes; any other string is a
//! passphrase, and the key is the SHA-256 of its UTF-8 bytes (so use a long random
//! passphrase: there is no slow key stretching).

use std::io;

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use futures::stream;
use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio_util::io::StreamReader;

use crate::VfsReader;

/// Plaintext bytes per chunk.
pub const CHUNK_SIZE: usize = 64 * 1024;
/// The four bytes every OTFE stream starts with.
pub const MAGIC: &[u8; 4] = b"AFTE";
/// The format version this module writes and reads.
pub const VERSION: u8 = 1;
/// Length of the random nonce prefix in the header.
const PREFIX_LEN: usize = 19;
/// Length of the whole header: magic, version, nonce prefix.
pub const HEADER_LEN: usize = 4 + 1 + PREFIX_LEN;
/// Length of the Poly1305 tag each chunk carries.
const TAG_LEN: usize = 16;

/// Why an OTFE key string was refused.
#[derive(Debug, thiserror::Error)]
pub enum OtfeKeyError {
    /// A `base64:` key that is not valid base64 or not 32 bytes long.
    #[error(
        "OTFE key given as base64 must decode to exactly 32 bytes ({0}); write `base64:` and 44 characters, or use a passphrase without the prefix"
    )]
    BadBase64(String),
    /// An empty key.
    #[error("OTFE key is empty; set OTFEKey or OTFEKeyFromSecret")]
    Empty,
}

/// Turn a user's key string into a 32-byte key (see the module docs for the rule).
pub fn key_from_string(text: &str) -> Result<[u8; 32], OtfeKeyError> {
    if text.is_empty() {
        return Err(OtfeKeyError::Empty);
    }
    if let Some(b64) = text.strip_prefix("base64:") {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| OtfeKeyError::BadBase64(e.to_string()))?;
        return <[u8; 32]>::try_from(raw.as_slice())
            .map_err(|_| OtfeKeyError::BadBase64(format!("got {} bytes", raw.len())));
    }
    Ok(Sha256::digest(text.as_bytes()).into())
}

/// The exact size of the ciphertext for `plain_len` bytes of plaintext.
pub fn encrypted_len(plain_len: u64) -> u64 {
    let chunks = plain_len.div_ceil(CHUNK_SIZE as u64).max(1);
    HEADER_LEN as u64 + plain_len + TAG_LEN as u64 * chunks
}

fn nonce(prefix: &[u8], counter: u32, last: bool) -> XNonce {
    let mut n = [0u8; 24];
    n[..PREFIX_LEN].copy_from_slice(prefix);
    n[PREFIX_LEN..PREFIX_LEN + 4].copy_from_slice(&counter.to_be_bytes());
    n[23] = u8::from(last);
    XNonce::from(n)
}

/// Read until `buf` holds `want` bytes or the input ends; returns whether it ended.
async fn fill(inner: &mut VfsReader, buf: &mut BytesMut, want: usize) -> io::Result<bool> {
    while buf.len() < want {
        let before = buf.len();
        buf.reserve(want - before);
        let n = inner.read_buf(buf).await?;
        if n == 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

fn bad_data(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

struct Encryptor {
    inner: VfsReader,
    cipher: XChaCha20Poly1305,
    header: [u8; HEADER_LEN],
    counter: u32,
    buf: BytesMut,
    header_sent: bool,
    done: bool,
}

impl Encryptor {
    async fn next(mut self) -> Option<(io::Result<Bytes>, Self)> {
        if self.done {
            return None;
        }
        if !self.header_sent {
            self.header_sent = true;
            let header = Bytes::copy_from_slice(&self.header);
            return Some((Ok(header), self));
        }
        // One byte beyond the chunk tells whether this chunk is the last.
        let ended = match fill(&mut self.inner, &mut self.buf, CHUNK_SIZE + 1).await {
            Ok(ended) => ended,
            Err(e) => {
                self.done = true;
                return Some((Err(e), self));
            }
        };
        let take = self.buf.len().min(CHUNK_SIZE);
        let plain = self.buf.split_to(take);
        let last = ended && self.buf.is_empty();
        let nonce = nonce(&self.header[5..], self.counter, last);
        let sealed = self.cipher.encrypt(
            &nonce,
            Payload {
                msg: &plain,
                aad: &self.header,
            },
        );
        self.done = last;
        let item = match sealed {
            Ok(ct) => match self.counter.checked_add(1) {
                Some(c) => {
                    self.counter = c;
                    Ok(Bytes::from(ct))
                }
                None => {
                    self.done = true;
                    Err(bad_data("OTFE: file too large (more than 2^32 chunks)"))
                }
            },
            Err(_) => {
                self.done = true;
                Err(bad_data("OTFE: encryption failed"))
            }
        };
        Some((item, self))
    }
}

/// Wrap a plaintext reader so that reading it yields the OTFE ciphertext (format above).
pub fn encrypt_reader(inner: VfsReader, key: &[u8; 32]) -> VfsReader {
    let mut header = [0u8; HEADER_LEN];
    header[..4].copy_from_slice(MAGIC);
    header[4] = VERSION;
    rand::thread_rng().fill_bytes(&mut header[5..]);
    let state = Encryptor {
        inner,
        cipher: XChaCha20Poly1305::new(key.into()),
        header,
        counter: 0,
        buf: BytesMut::with_capacity(CHUNK_SIZE + 1),
        header_sent: false,
        done: false,
    };
    Box::pin(StreamReader::new(stream::unfold(state, Encryptor::next)))
}

struct Decryptor {
    inner: VfsReader,
    cipher: XChaCha20Poly1305,
    header: Option<[u8; HEADER_LEN]>,
    counter: u32,
    buf: BytesMut,
    done: bool,
}

impl Decryptor {
    async fn read_header(&mut self) -> io::Result<[u8; HEADER_LEN]> {
        let ended = fill(&mut self.inner, &mut self.buf, HEADER_LEN).await?;
        if ended && self.buf.len() < HEADER_LEN || &self.buf[..4.min(self.buf.len())] != MAGIC {
            return Err(bad_data(
                "OTFE: not an aft-encrypted file (the AFTE header is missing); was it uploaded with Options.OTFE?",
            ));
        }
        if self.buf[4] != VERSION {
            return Err(bad_data(format!(
                "OTFE: format version {} is not supported (this aft reads version {VERSION})",
                self.buf[4]
            )));
        }
        let mut header = [0u8; HEADER_LEN];
        header.copy_from_slice(&self.buf.split_to(HEADER_LEN));
        Ok(header)
    }

    async fn step(&mut self) -> io::Result<Option<Bytes>> {
        let header = match self.header {
            Some(h) => h,
            None => {
                let h = self.read_header().await?;
                self.header = Some(h);
                h
            }
        };
        let sealed_len = CHUNK_SIZE + TAG_LEN;
        let ended = fill(&mut self.inner, &mut self.buf, sealed_len + 1).await?;
        if ended && self.buf.len() < TAG_LEN {
            return Err(bad_data(
                "OTFE: the encrypted file is truncated (its final chunk is missing)",
            ));
        }
        let take = self.buf.len().min(sealed_len);
        let sealed = self.buf.split_to(take);
        let last = ended && self.buf.is_empty();
        let nonce = nonce(&header[5..], self.counter, last);
        let plain = self
            .cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: &sealed,
                    aad: &header,
                },
            )
            .map_err(|_| {
                bad_data(format!(
                    "OTFE: chunk {} does not decrypt: wrong key, or the file was altered or truncated",
                    self.counter
                ))
            })?;
        self.counter = self
            .counter
            .checked_add(1)
            .ok_or_else(|| bad_data("OTFE: too many chunks"))?;
        self.done = last;
        Ok(Some(Bytes::from(plain)))
    }

    async fn next(mut self) -> Option<(io::Result<Bytes>, Self)> {
        if self.done {
            return None;
        }
        let item = match self.step().await {
            Ok(Some(b)) => Ok(b),
            Ok(None) => return None,
            Err(e) => {
                self.done = true;
                Err(e)
            }
        };
        Some((item, self))
    }
}

/// Wrap an OTFE ciphertext reader so that reading it yields the plaintext; a wrong key, an
/// altered, reordered or truncated stream gives an `InvalidData` error, never bad plaintext
/// past the last authenticated chunk.
pub fn decrypt_reader(inner: VfsReader, key: &[u8; 32]) -> VfsReader {
    let state = Decryptor {
        inner,
        cipher: XChaCha20Poly1305::new(key.into()),
        header: None,
        counter: 0,
        buf: BytesMut::with_capacity(CHUNK_SIZE + TAG_LEN + 1),
        done: false,
    };
    Box::pin(StreamReader::new(stream::unfold(state, Decryptor::next)))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(reader: VfsReader) -> io::Result<Vec<u8>> {
        let mut reader = reader;
        let mut out = Vec::new();
        reader.read_to_end(&mut out).await?;
        Ok(out)
    }

    fn reader_of(data: Vec<u8>) -> VfsReader {
        Box::pin(std::io::Cursor::new(data))
    }

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[tokio::test]
    async fn round_trip_keeps_content_at_every_chunk_boundary() {
        let key = key_from_string("correct horse battery staple").unwrap();
        for len in [
            0,
            1,
            CHUNK_SIZE - 1,
            CHUNK_SIZE,
            CHUNK_SIZE + 1,
            3 * CHUNK_SIZE + 7,
        ] {
            let plain = sample(len);
            let ct = run(encrypt_reader(reader_of(plain.clone()), &key))
                .await
                .unwrap();
            assert_eq!(
                ct.len() as u64,
                encrypted_len(len as u64),
                "length for {len}"
            );
            assert_eq!(&ct[..4], MAGIC);
            let back = run(decrypt_reader(reader_of(ct), &key)).await.unwrap();
            assert_eq!(back, plain, "round trip for {len}");
        }
    }

    #[tokio::test]
    async fn same_plaintext_encrypts_differently_each_time() {
        let key = [7u8; 32];
        let a = run(encrypt_reader(reader_of(sample(100)), &key))
            .await
            .unwrap();
        let b = run(encrypt_reader(reader_of(sample(100)), &key))
            .await
            .unwrap();
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn wrong_key_fails_with_a_clear_error() {
        let ct = run(encrypt_reader(reader_of(sample(1000)), &[1u8; 32]))
            .await
            .unwrap();
        let err = run(decrypt_reader(reader_of(ct), &[2u8; 32]))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("wrong key"), "{err}");
    }

    #[tokio::test]
    async fn truncation_at_a_chunk_boundary_is_detected() {
        let key = [3u8; 32];
        let ct = run(encrypt_reader(reader_of(sample(2 * CHUNK_SIZE + 10)), &key))
            .await
            .unwrap();
        let cut = HEADER_LEN + 2 * (CHUNK_SIZE + TAG_LEN);
        let err = run(decrypt_reader(reader_of(ct[..cut].to_vec()), &key))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn reordered_chunks_are_detected() {
        let key = [4u8; 32];
        let ct = run(encrypt_reader(reader_of(sample(3 * CHUNK_SIZE)), &key))
            .await
            .unwrap();
        let c = CHUNK_SIZE + TAG_LEN;
        let mut swapped = ct[..HEADER_LEN].to_vec();
        swapped.extend_from_slice(&ct[HEADER_LEN + c..HEADER_LEN + 2 * c]);
        swapped.extend_from_slice(&ct[HEADER_LEN..HEADER_LEN + c]);
        swapped.extend_from_slice(&ct[HEADER_LEN + 2 * c..]);
        assert!(run(decrypt_reader(reader_of(swapped), &key)).await.is_err());
    }

    #[tokio::test]
    async fn plaintext_that_was_never_encrypted_is_refused() {
        let err = run(decrypt_reader(
            reader_of(b"hello world, plain text".to_vec()),
            &[0u8; 32],
        ))
        .await
        .unwrap_err();
        assert!(err.to_string().contains("AFTE header"), "{err}");
    }

    #[test]
    fn key_strings_follow_the_documented_derivation() {
        let raw = [9u8; 32];
        let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
        assert_eq!(key_from_string(&format!("base64:{b64}")).unwrap(), raw);
        let expected: [u8; 32] = Sha256::digest(b"secret").into();
        assert_eq!(key_from_string("secret").unwrap(), expected);
        assert!(matches!(
            key_from_string("base64:AAAA"),
            Err(OtfeKeyError::BadBase64(_))
        ));
        assert!(matches!(key_from_string(""), Err(OtfeKeyError::Empty)));
    }
}
