//! Several parts of one big object at once (rclone's `--s3-upload-concurrency` and
//! `--multi-thread-streams`), with a bounded memory budget.
//!
//! - Uploads: opendal's multipart writer sends up to `Streams` parts at once; it holds
//!   those parts, the part it keeps back for the commit and the part being filled, so an
//!   upload holds at most `(Streams + 2) × 8 MiB`.
//! - Downloads: the first answer's headers give the object's size and ETag. A small object
//!   streams on from that answer. A bigger one takes its first 4 MiB from it, and the rest
//!   as 4 MiB ranges, `Streams` at a time, handed on in order. opendal holds each range
//!   whole until it is handed on: the `Streams` being fetched, one fetched and waiting, and
//!   the one being written out, so at most `(Streams + 2) × 4 MiB` (24 MiB with 4
//!   streams; 8 MiB ranges held 48 MiB and made the 1 GiB download's peak 98 MiB). The
//!   ranges ask for the same ETag (`If-Match`), so an object replaced meanwhile fails the
//!   read instead of mixing two versions.

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt, stream};
use opendal::Operator;

use crate::VfsResult;
use crate::config::Fields;
use crate::registry::STREAMS_FIELD;

/// Parts of one file in flight by default: rclone's defaults for both directions, and
/// enough to fill a connection that one request alone leaves half idle.
pub(crate) const DEFAULT_STREAMS: usize = 4;

/// The most a client may ask for: each stream holds a part in memory.
pub(crate) const MAX_STREAMS: usize = 64;

/// Size of each ranged read of a parallel download: 4 streams of 4 MiB keep a 20 ms link
/// busy at hundreds of MiB/s, and each range is held whole in memory (see the module doc).
pub(crate) const READ_CHUNK: u64 = 4 * 1024 * 1024;

/// Objects from this size on are downloaded in parallel ranges; below it, one request.
pub(crate) const PARALLEL_READ_MIN: u64 = 16 * 1024 * 1024;

/// The `Streams` field's value, 1 to 64 (a 0 is taken as 1), or the default.
pub(crate) fn streams(fields: &Fields<'_>) -> VfsResult<usize> {
    Ok(fields
        .u64(STREAMS_FIELD.name)?
        .map_or(DEFAULT_STREAMS, |n| n.clamp(1, MAX_STREAMS as u64) as usize))
}

/// Whether `remaining` bytes are worth reading as parallel ranges with `streams` streams.
pub(crate) fn worth_parallel(remaining: u64, streams: usize) -> bool {
    streams > 1 && remaining >= PARALLEL_READ_MIN
}

/// The read of `key` from `offset` (to `offset + len`, or the end) whose request `first`
/// is: as it is for a small object or one stream; for a big one, its first [`READ_CHUNK`]
/// and then the rest as parallel ranges. Opens `first`'s request to learn the size.
pub(crate) async fn split(
    op: &Operator,
    key: &str,
    mut first: opendal::FuturesBytesStream,
    offset: u64,
    len: Option<u64>,
    streams: usize,
) -> opendal::Result<BoxStream<'static, std::io::Result<Bytes>>> {
    if streams <= 1 {
        return Ok(first.boxed());
    }
    let meta = match first.metadata().await {
        Ok(meta) => meta,
        // No size in the answer's headers: read it as one stream.
        Err(e) if e.kind() == opendal::ErrorKind::Unsupported => return Ok(first.boxed()),
        Err(e) => return Err(e),
    };
    // The answer's size is the whole object's (`Content-Range` or `Content-Length`).
    let size = meta.content_length();
    let end = len.map_or(size, |n| offset.saturating_add(n).min(size));
    if !worth_parallel(end.saturating_sub(offset), streams) {
        return Ok(first.boxed());
    }
    tracing::debug!(
        "{key}: {} bytes to read: the first {READ_CHUNK} from one request, the rest as ranges, {streams} at a time",
        end - offset
    );
    let rest = ranges(op, key, offset + READ_CHUNK, end, meta.etag(), streams)
        .await?
        .map_err(replaced);
    Ok(head(first, READ_CHUNK).chain(rest).boxed())
}

/// A range refused because the object's ETag changed: the object was replaced mid-read,
/// which a new attempt reads whole (so the error is one the transfer retries).
fn replaced(e: std::io::Error) -> std::io::Error {
    let changed = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<opendal::Error>())
        .is_some_and(|oe| oe.kind() == opendal::ErrorKind::ConditionNotMatch);
    if changed {
        std::io::Error::new(
            std::io::ErrorKind::Interrupted,
            "the object was replaced while it was being downloaded",
        )
    } else {
        e
    }
}

/// Bytes `start..end` of `key`, read as [`READ_CHUNK`] ranges `streams` at a time and
/// yielded in order; each range asks for `etag` when there is one.
pub(crate) async fn ranges(
    op: &Operator,
    key: &str,
    start: u64,
    end: u64,
    etag: Option<&str>,
    streams: usize,
) -> opendal::Result<opendal::FuturesBytesStream> {
    let mut reader = op
        .reader_with(key)
        .concurrent(streams)
        .chunk(READ_CHUNK as usize);
    if let Some(etag) = etag {
        reader = reader.if_match(etag);
    }
    reader.await?.into_bytes_stream(start..end).await
}

/// The first `len` bytes of `inner`, then the end: `inner` is dropped there, which cuts
/// its request (the rest of the object comes from the parallel ranges).
pub(crate) fn head<S>(inner: S, len: u64) -> impl Stream<Item = std::io::Result<Bytes>> + Send
where
    S: Stream<Item = std::io::Result<Bytes>> + Send + Unpin,
{
    stream::unfold(Some((inner, len)), |state| async move {
        let (mut inner, left) = state?;
        if left == 0 {
            return None;
        }
        match inner.next().await {
            Some(Ok(mut b)) => {
                if b.len() as u64 >= left {
                    b.truncate(left as usize);
                    return Some((Ok(b), None));
                }
                let left = left - b.len() as u64;
                Some((Ok(b), Some((inner, left))))
            }
            Some(Err(e)) => Some((Err(e), None)),
            None => Some((
                Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the object ended before its announced size",
                )),
                None,
            )),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(sizes: &[usize]) -> impl Stream<Item = std::io::Result<Bytes>> + Send + Unpin {
        let mut n = 0u8;
        let items: Vec<std::io::Result<Bytes>> = sizes
            .iter()
            .map(|&s| {
                n += 1;
                Ok(Bytes::from(vec![n; s]))
            })
            .collect();
        stream::iter(items)
    }

    #[tokio::test]
    async fn head_stops_exactly_at_its_length_splitting_a_chunk() {
        let got: Vec<Bytes> = head(chunks(&[3, 4, 5]), 9).try_collect().await.unwrap();
        let flat: Vec<u8> = got.concat();
        assert_eq!(flat, [1, 1, 1, 2, 2, 2, 2, 3, 3]);
        let got: Vec<Bytes> = head(chunks(&[3, 4]), 7).try_collect().await.unwrap();
        assert_eq!(got.concat().len(), 7);
    }

    #[tokio::test]
    async fn head_of_a_stream_that_ends_early_is_an_error() {
        let got: Result<Vec<Bytes>, _> = head(chunks(&[3, 4]), 10).try_collect().await;
        assert_eq!(got.unwrap_err().kind(), std::io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn only_big_objects_with_several_streams_are_read_in_parallel() {
        assert!(!worth_parallel(PARALLEL_READ_MIN - 1, 4));
        assert!(worth_parallel(PARALLEL_READ_MIN, 4));
        assert!(!worth_parallel(1 << 30, 1));
    }
}
