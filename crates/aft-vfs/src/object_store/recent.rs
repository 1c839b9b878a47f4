//! What the server just said about an object, kept for the question that follows it.
//!
//! A file copy asks about the same object twice within milliseconds: a download `stat`s
//! its source and, once the bytes are in, asks for the source's MD5; an upload's check asks
//! for the landed size and then the landed MD5. Each was a `HEAD` of its own: on 5,000
//! small files, 5,000 requests that told nothing new. So a `stat`'s answer also answers the
//! next `checksum` of that key, once, for [`FRESH`].
//!
//! The headers of a request that moved the whole object serve the same `checksum` better:
//! a `GET`'s ETag (or `Content-MD5`) is the MD5 of the very bytes it carried, a single-part
//! `PUT`'s that of the bytes that landed; and a listing of Azure or GCS names each object's
//! MD5. So a folder download sends one `GET` per file (its `stat` is the listing's entry,
//! see `transfer::tree`), and an upload one `PUT` (a matching MD5 proves the size too, so
//! the check needs no `stat` of what landed). Such an answer only stands in for a
//! `checksum`: a `PUT` does not name the object's time, which a `stat` must give.
//!
//! Anything this client writes, deletes or renames forgets the key first. Another client
//! changing the object inside that window is the same race as between two requests a few
//! milliseconds apart; a download whose source changed between its `stat` and its `GET`
//! then fails its MD5 check and is tried again, which is what a changed source should get.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use opendal::Metadata;

/// How long an answer is reused.
pub(crate) const FRESH: Duration = Duration::from_secs(2);

/// Keys kept at most: copies in flight are few; a listing-heavy script must not grow this.
const MAX_KEPT: usize = 256;

/// Recent `stat` answers per key (see the module doc).
#[derive(Default)]
pub(crate) struct Recent {
    keys: Mutex<HashMap<String, (Instant, Metadata)>>,
}

impl Recent {
    /// A `stat` of `key` answered `meta`.
    pub(crate) fn stated(&self, key: &str, meta: Metadata) {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if keys.len() >= MAX_KEPT {
            keys.retain(|_, (at, _)| at.elapsed() < FRESH);
            if keys.len() >= MAX_KEPT {
                keys.clear();
            }
        }
        keys.insert(key.to_string(), (Instant::now(), meta));
    }

    /// A request moving the whole of `key` was answered with `meta`: the headers of a `GET`
    /// of it, or of the `PUT` that wrote it. Kept when they name an MD5, which is then that
    /// of the very bytes moved; otherwise an earlier answer stays (an Azure `GET` may not
    /// repeat a blob's MD5; a multipart upload's ETag is none).
    pub(crate) fn answered(&self, key: &str, meta: Metadata) {
        if super::md5_of(&meta).is_some() {
            self.stated(key, meta);
        }
    }

    /// A listing showed `key` with `meta`: kept when it names an MD5 (Azure and GCS list
    /// one; S3 lists an ETag that is one for a single-part object).
    pub(crate) fn listed(&self, key: &str, meta: &Metadata) {
        if super::md5_of(meta).is_some() {
            self.stated(key, meta.clone());
        }
    }

    /// The last answer about `key` for a `checksum`, once, while fresh.
    pub(crate) fn take_checksum(&self, key: &str) -> Option<Metadata> {
        let (at, meta) = self
            .keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key)?;
        (at.elapsed() < FRESH).then_some(meta)
    }

    /// `key` is about to change (or did): no answer about it is reused.
    pub(crate) fn forget(&self, key: &str) {
        self.keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// Every key below `prefix` (a directory being renamed or deleted).
    pub(crate) fn forget_below(&self, prefix: &str) {
        self.keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|k, _| !k.starts_with(prefix));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opendal::MetadataBuilder;

    fn meta(size: u64) -> Metadata {
        MetadataBuilder::file(size).build()
    }

    #[test]
    fn a_stat_answers_the_next_checksum_once() {
        let r = Recent::default();
        r.stated("a/b", meta(5));
        assert_eq!(r.take_checksum("a/b").map(|m| m.content_length()), Some(5));
        assert!(
            r.take_checksum("a/b").is_none(),
            "a second one asks the server"
        );
    }

    #[test]
    fn forgotten_and_old_answers_are_not_reused() {
        let r = Recent::default();
        r.stated("d/x", meta(1));
        r.stated("d/y", meta(1));
        r.stated("e/z", meta(1));
        r.forget("d/x");
        assert!(r.take_checksum("d/x").is_none());
        r.forget_below("d/");
        assert!(r.take_checksum("d/y").is_none());
        r.keys.lock().unwrap().get_mut("e/z").unwrap().0 = Instant::now() - FRESH;
        assert!(r.take_checksum("e/z").is_none(), "too old");
    }

    #[test]
    fn only_answers_naming_an_md5_are_kept_from_gets_puts_and_listings() {
        let r = Recent::default();
        let mut plain = MetadataBuilder::file(3);
        plain.etag("\"9e107d9d372bb6826bd81d3542a419d6\"");
        r.answered("put", plain.build());
        assert!(
            r.take_checksum("put").is_some(),
            "a single-part ETag is an MD5"
        );
        let mut multipart = MetadataBuilder::file(3);
        multipart.etag("\"9e107d9d372bb6826bd81d3542a419d6-2\"");
        r.stated("big", meta(3));
        r.answered("big", multipart.build());
        assert!(
            r.take_checksum("big")
                .and_then(|m| m.etag().map(str::to_string))
                .is_none(),
            "a multipart ETag does not replace the stat's answer"
        );
        let mut azure = MetadataBuilder::file(3);
        azure.etag("\"0x8DC0FFEE\"");
        r.listed("blob", &azure.build());
        assert!(
            r.take_checksum("blob").is_none(),
            "an ETag that is no MD5 is not kept"
        );
        let mut with_md5 = MetadataBuilder::file(3);
        with_md5.etag("\"0x8DC0FFEE\"");
        with_md5.content_md5("nhB9nTcrtoJr2B01QqQZ1g==");
        r.listed("blob", &with_md5.build());
        assert!(
            r.take_checksum("blob").is_some(),
            "a listed Content-MD5 is kept"
        );
    }

    #[test]
    fn the_memory_stays_bounded() {
        let r = Recent::default();
        for i in 0..(MAX_KEPT * 3) {
            r.stated(&format!("k{i}"), meta(1));
        }
        assert!(r.keys.lock().unwrap().len() <= MAX_KEPT);
    }
}
