//! How a download from an object store is checked, by the ETag of its source: an object
//! written in one `PUT` has its MD5 as ETag, so the download computes the MD5 of what it
//! read and compares it; a multipart object's ETag (`<hex>-<parts>`) is no MD5 of its
//! content, so none is computed (about 2.3 s of CPU per GiB for nothing) and the download is
//! checked by its size. The record's SHA-256 is computed either way.
//!
//! The source is an in-memory store that answers like S3 (`server_hash` MD5, an ETag per
//! object, a `checksum` that is the ETag when it is a plain MD5) and can serve other bytes
//! than it stated, as a corrupted transfer would.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aft_vfs::local::LocalFs;
use aft_vfs::transfer::{Outcome, TransferOptions, TransferPolicy, copy_file};
use aft_vfs::{
    Capabilities, Entry, EntryStream, HashAlgo, Vfs, VfsError, VfsReader, VfsResult, VfsWriter,
    WriteMode,
};
use async_trait::async_trait;

/// One object, `/obj.bin`, as an S3 server would describe and serve it.
struct OneObject {
    /// What `stat` and listings say: size and ETag.
    size: u64,
    etag: String,
    /// What a `GET` returns (the stated bytes, or tampered ones).
    served: Vec<u8>,
    /// `checksum` calls: how often the copy asked for the source's MD5.
    md5_asked: AtomicUsize,
}

impl OneObject {
    fn new(stated: &[u8], etag: String, served: Vec<u8>) -> Arc<Self> {
        Arc::new(Self {
            size: stated.len() as u64,
            etag,
            served,
            md5_asked: AtomicUsize::new(0),
        })
    }
}

#[async_trait]
impl Vfs for OneObject {
    fn describe(&self) -> String {
        "fake-s3://bucket".into()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            atomic_write: true,
            ranged_read: true,
            server_hash: Some(HashAlgo::Md5),
            ..Capabilities::default()
        }
    }

    async fn stat(&self, path: &str) -> VfsResult<Entry> {
        if path != "/obj.bin" {
            return Err(VfsError::NotFound(path.into()));
        }
        Ok(Entry {
            path: path.into(),
            name: "obj.bin".into(),
            size: self.size,
            mtime: None,
            is_dir: false,
            etag: Some(self.etag.clone()),
        })
    }

    async fn list(&self, _dir: &str) -> VfsResult<EntryStream<'_>> {
        Err(VfsError::Unsupported("listing"))
    }

    async fn read(&self, path: &str, offset: u64, len: Option<u64>) -> VfsResult<VfsReader> {
        self.stat(path).await?;
        let start = (offset as usize).min(self.served.len());
        let end = len.map_or(self.served.len(), |n| {
            (start + n as usize).min(self.served.len())
        });
        Ok(Box::pin(std::io::Cursor::new(
            self.served[start..end].to_vec(),
        )))
    }

    async fn write(&self, _path: &str, _mode: WriteMode) -> VfsResult<VfsWriter> {
        Err(VfsError::Unsupported("writing"))
    }

    async fn mkdir_all(&self, _path: &str) -> VfsResult<()> {
        Err(VfsError::Unsupported("folders"))
    }

    async fn rename(&self, _from: &str, _to: &str) -> VfsResult<()> {
        Err(VfsError::Unsupported("renaming"))
    }

    async fn remove_file(&self, _path: &str) -> VfsResult<()> {
        Err(VfsError::Unsupported("deleting"))
    }

    async fn remove_dir(&self, _path: &str) -> VfsResult<()> {
        Err(VfsError::Unsupported("deleting"))
    }

    /// As S3: the ETag when it is a plain MD5 (single-part), nothing for a multipart one.
    async fn checksum(&self, path: &str, algo: HashAlgo) -> VfsResult<Option<String>> {
        self.stat(path).await?;
        self.md5_asked.fetch_add(1, Ordering::SeqCst);
        let plain = self.etag.len() == 32 && self.etag.bytes().all(|b| b.is_ascii_hexdigit());
        Ok((algo == HashAlgo::Md5 && plain).then(|| self.etag.clone()))
    }
}

/// 5 MiB: above the size from which a copy hashes on a thread of its own, as a big
/// download does.
fn content() -> Vec<u8> {
    support::xorshift_bytes(5 * 1024 * 1024 + 17, 0x9e37_79b9_7f4a_7c15)
}

fn md5_hex(data: &[u8]) -> String {
    hex::encode(<md5::Md5 as md5::Digest>::digest(data))
}

fn flipped(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    out[3 * 1024 * 1024] ^= 0x20;
    out
}

/// Download `/obj.bin` of `src` into a fresh folder: the outcome and the file, if any.
async fn download(src: &Arc<OneObject>) -> (aft_vfs::transfer::TransferOutcome, Option<Vec<u8>>) {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("obj.bin");
    let opts = TransferOptions {
        policy: TransferPolicy::AlwaysOverwrite,
        retries: 1,
        retry_backoff: Duration::from_millis(10),
        ..TransferOptions::default()
    };
    let local = LocalFs::new("/");
    let outcome = copy_file(
        src.as_ref(),
        "/obj.bin",
        &local,
        &target.to_string_lossy(),
        &opts,
        &|_| {},
    )
    .await;
    (outcome, std::fs::read(&target).ok())
}

#[tokio::test]
async fn a_single_part_source_is_checked_by_its_md5() {
    let data = content();
    let good = OneObject::new(&data, md5_hex(&data), data.clone());
    let (outcome, file) = download(&good).await;
    assert_eq!(outcome.outcome, Outcome::Ok, "{outcome:?}");
    assert!(file.as_deref() == Some(&data[..]), "the file is the object");
    assert_eq!(
        outcome.hash.as_ref().map(|d| d.hex.as_str()),
        Some(blake3::hash(&data).to_hex().as_str())
    );
    assert_eq!(
        good.md5_asked.load(Ordering::SeqCst),
        1,
        "the source's MD5 was compared"
    );

    // Same size, one byte changed on the way: only the MD5 can tell.
    let tampered = OneObject::new(&data, md5_hex(&data), flipped(&data));
    let (outcome, file) = download(&tampered).await;
    match &outcome.outcome {
        Outcome::Failed(msg) => assert!(
            msg.contains("Md5") && msg.contains("at the source"),
            "the MD5 check names the mismatch: {msg}"
        ),
        other => panic!("a tampered single-part download must fail, got {other:?}"),
    }
    assert_eq!(outcome.attempts, 2, "a failed check is tried again");
    assert!(file.is_none(), "no file is left from a failed check");
}

#[tokio::test]
async fn a_multipart_source_is_checked_by_its_size_without_an_md5() {
    let data = content();
    let etag = format!("{}-2", md5_hex(b"the parts' MD5s"));
    let good = OneObject::new(&data, etag.clone(), data.clone());
    let (outcome, file) = download(&good).await;
    assert_eq!(outcome.outcome, Outcome::Ok, "{outcome:?}");
    assert!(file.as_deref() == Some(&data[..]), "the file is the object");
    assert_eq!(
        outcome.hash.as_ref().map(|d| d.hex.as_str()),
        Some(blake3::hash(&data).to_hex().as_str()),
        "the record's hash is still computed"
    );
    assert_eq!(
        good.md5_asked.load(Ordering::SeqCst),
        0,
        "no MD5 is computed for a multipart source, so none is asked for"
    );

    // One byte short of what the source stated: the size check fails the copy.
    let short = OneObject::new(&data, etag, data[..data.len() - 1].to_vec());
    let (outcome, file) = download(&short).await;
    match &outcome.outcome {
        Outcome::Failed(msg) => assert!(
            msg.contains(&format!(
                "wrote {} bytes but the source is {} bytes",
                data.len() - 1,
                data.len()
            )),
            "the size check names the mismatch: {msg}"
        ),
        other => panic!("a short multipart download must fail, got {other:?}"),
    }
    assert!(file.is_none(), "no file is left from a failed check");
}
