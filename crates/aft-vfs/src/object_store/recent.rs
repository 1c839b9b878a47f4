//! What the server just said about an object, kept for the question that follows it.
//!
//! A file copy asks about the same object twice within milliseconds: a download `stat`s
//! its source and, once the bytes are in, asks for the source's MD5; an upload's check asks
//! for the landed size and then the landed MD5. Each was a `HEAD` of its own: on 5,000
//! small files, 5,000 requests that told nothing new. So a `stat`'s answer also answers the
//! next `checksum` of that key, once, for [`FRESH`].
//!
//! (The answer to our own `PUT` cannot stand in for the `stat`: it names the ETag but not
//! the object's time, which a `stat` must give.)
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
    fn the_memory_stays_bounded() {
        let r = Recent::default();
        for i in 0..(MAX_KEPT * 3) {
            r.stated(&format!("k{i}"), meta(1));
        }
        assert!(r.keys.lock().unwrap().len() <= MAX_KEPT);
    }
}
