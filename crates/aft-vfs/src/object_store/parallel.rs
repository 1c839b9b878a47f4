//! Several parts of one big object at once (rclone's `--s3-upload-concurrency` and
//! `--multi-thread-streams`), with a bounded memory budget.
//!
//! - Uploads: opendal's multipart writer sends up to `Streams` parts at once; it holds
//!   those parts, the part it keeps back for the commit and the part being filled, so an
//!   upload holds at most `(Streams + 2) × 8 MiB`.
//! - Downloads to a local file do not come through here: the transfer code asks for
//!   ranges itself ([`range`], via `Vfs::read_range`) and writes each at its offset as it
//!   streams in (`transfer/file/parts.rs`).
//! - Other reads of a big object (to a remote target, say) must be handed on in order: the
//!   first answer's headers give the object's size and ETag; a small object streams on
//!   from that answer; a bigger one takes its first 4 MiB from it, and the rest as 4 MiB
//!   ranges, `Streams` in flight, each a task streaming into a queue of at most 4 MiB
//!   ([`ranges`]). The first range in line flows straight through while the others fill
//!   their queues, so at most `Streams × 4 MiB` is held (opendal's chunked reader, used
//!   before, held each range whole until it was handed on: `(Streams + 2) × 4 MiB`).
//!
//! Ranges ask for the same ETag (`If-Match`), so an object replaced meanwhile fails the
//! read instead of mixing two versions.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt, stream};
use opendal::Operator;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::task::AbortOnDropHandle;

use crate::VfsResult;
use crate::config::Fields;
use crate::registry::STREAMS_FIELD;

/// Parts of one file in flight by default: rclone's defaults for both directions, and
/// enough to fill a connection that one request alone leaves half idle.
pub(crate) const DEFAULT_STREAMS: usize = 4;

/// The most a client may ask for: each stream holds a part in memory.
pub(crate) const MAX_STREAMS: usize = 64;

/// Size of each ranged read of an in-order parallel read (the first one's head, then each
/// range): 4 streams of 4 MiB keep a 20 ms link busy at hundreds of MiB/s.
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
    let rest = ranges(op, key, offset + READ_CHUNK, end, meta.etag(), streams).map_err(replaced);
    Ok(head(first, READ_CHUNK).chain(rest).boxed())
}

/// A range refused because the object's ETag changed: the object was replaced mid-read,
/// which a new attempt reads whole (so the error is one the transfer retries).
pub(crate) fn replaced(e: std::io::Error) -> std::io::Error {
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

/// Bytes `start..end` of `key`, read as [`READ_CHUNK`] ranges, `streams` of them in
/// flight, and yielded in order; each range asks for `etag` when there is one.
///
/// Each range is a task of its own that streams its answer into a queue of at most
/// [`READ_AHEAD`] bytes, so the range being handed on flows straight through, the ones
/// behind it fill their queues meanwhile (their requests' round trips overlap it), and
/// memory stays bounded by `streams × READ_AHEAD` whatever the range size. When the first
/// range in line ends, the next one is asked for. Dropping the stream stops every task.
pub(crate) fn ranges(
    op: &Operator,
    key: &str,
    start: u64,
    end: u64,
    etag: Option<&str>,
    streams: usize,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let fetch = RangeFetch {
        op: op.clone(),
        key: key.to_string(),
        etag: etag.map(str::to_string),
    };
    let mut line = Line {
        fetch,
        in_flight: VecDeque::new(),
        next: start,
        end,
    };
    for _ in 0..streams.max(1) {
        line.ask_next();
    }
    stream::unfold(line, |mut line| async move {
        loop {
            let first = line.in_flight.front_mut()?;
            match first.chunks.recv().await {
                // The permit goes as the bytes are handed on: the queue has room again.
                Some(Ok((bytes, _permit))) => return Some((Ok(bytes), line)),
                Some(Err(e)) => {
                    line.in_flight.clear();
                    line.next = line.end;
                    return Some((Err(e), line));
                }
                None => {
                    line.in_flight.pop_front();
                    line.ask_next();
                }
            }
        }
    })
}

/// Bytes one range in flight may hold before it waits for the writer: 4 of them (the
/// default `Streams`) hold at most 16 MiB.
const READ_AHEAD: usize = 4 * 1024 * 1024;

/// The ranges of one download in flight, first in line first.
struct Line {
    fetch: RangeFetch,
    in_flight: VecDeque<InFlight>,
    next: u64,
    end: u64,
}

impl Line {
    /// Start the range after the last one asked for, if any is left.
    fn ask_next(&mut self) {
        if self.next < self.end {
            let stop = self.next.saturating_add(READ_CHUNK).min(self.end);
            self.in_flight.push_back(self.fetch.spawn(self.next..stop));
            self.next = stop;
        }
    }
}

/// One range's queue of received bytes, each with its share of the range's budget.
struct InFlight {
    chunks: mpsc::UnboundedReceiver<std::io::Result<(Bytes, OwnedSemaphorePermit)>>,
    _task: AbortOnDropHandle<()>,
}

/// What every range of one download asks for.
#[derive(Clone)]
struct RangeFetch {
    op: Operator,
    key: String,
    etag: Option<String>,
}

impl RangeFetch {
    fn spawn(&self, range: Range<u64>) -> InFlight {
        let (tx, chunks) = mpsc::unbounded_channel();
        let fetch = self.clone();
        let task = tokio::spawn(async move {
            let want = range.end - range.start;
            let mut body = match fetch.open(range).await {
                Ok(body) => body,
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::other(e)));
                    return;
                }
            };
            let budget = Arc::new(Semaphore::new(READ_AHEAD));
            let mut got = 0u64;
            while let Some(item) = body.next().await {
                let bytes = match item {
                    Ok(bytes) => bytes,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                got += bytes.len() as u64;
                let share = bytes.len().min(READ_AHEAD) as u32;
                let Ok(permit) = budget.clone().acquire_many_owned(share).await else {
                    return;
                };
                if tx.send(Ok((bytes, permit))).is_err() {
                    return;
                }
            }
            if got < want {
                let _ = tx.send(Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the object ended before its announced size",
                )));
            }
        });
        InFlight {
            chunks,
            _task: AbortOnDropHandle::new(task),
        }
    }

    async fn open(&self, range: Range<u64>) -> opendal::Result<opendal::FuturesBytesStream> {
        self::range(&self.op, &self.key, range, self.etag.as_deref()).await
    }
}

/// Bytes `range` of `key` as one request, of the version `etag` (quoted or not) if given.
pub(crate) async fn range(
    op: &Operator,
    key: &str,
    range: Range<u64>,
    etag: Option<&str>,
) -> opendal::Result<opendal::FuturesBytesStream> {
    let mut reader = op.reader_with(key);
    if let Some(etag) = etag {
        // `If-Match` takes the quoted form; an entry's ETag is kept without the quotes.
        reader = reader.if_match(&format!("\"{}\"", etag.trim_matches('"')));
    }
    reader.await?.into_bytes_stream(range).await
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
