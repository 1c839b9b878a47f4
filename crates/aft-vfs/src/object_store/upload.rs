//! The two upload writers behind [`super::ObjectStoreVfs::write`]; both keep memory flat
//! whatever the file size.
//!
//! - [`AbortingWriter`]: opendal's chunked writer (S3/Azure/GCS multipart), which aborts its
//!   multipart upload when dropped before `shutdown()`, so no incomplete upload is left on
//!   the bucket (real S3 bills those until they are aborted).
//! - [`StreamedUploadWriter`]: one HTTP request whose body is streamed as it is written
//!   (chunked transfer encoding), for servers that take a file in one request only: WebDAV
//!   `PUT`, and fake-gcs-server's JSON-API media upload. opendal would buffer the whole file
//!   in memory for those, because its one-shot writers need the body at once.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use futures::{FutureExt, Stream};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use tokio::io::AsyncWrite;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::PollSender;

use crate::{VfsError, VfsResult};

/// Bytes gathered before they are handed to the HTTP body as one chunk.
const STREAM_CHUNK: usize = 256 * 1024;

/// Chunks queued between the writer and the HTTP body: bounds memory to about
/// `(STREAM_QUEUE + 1) * STREAM_CHUNK` per upload.
const STREAM_QUEUE: usize = 4;

/// Turn an opendal error into an I/O error the transfer code classifies: a temporary
/// failure gets a kind that `VfsError::is_transient` retries.
fn opendal_io_error(target: &str, what: &str, e: opendal::Error) -> io::Error {
    let kind = match e.kind() {
        opendal::ErrorKind::NotFound => io::ErrorKind::NotFound,
        opendal::ErrorKind::PermissionDenied => io::ErrorKind::PermissionDenied,
        _ if e.is_temporary() => io::ErrorKind::ConnectionReset,
        _ => io::ErrorKind::Other,
    };
    let cause = match kind {
        io::ErrorKind::ConnectionReset => super::network_cause(&e).unwrap_or_else(|| e.to_string()),
        _ => e.to_string(),
    };
    io::Error::new(kind, format!("{what} {target} failed: {cause}"))
}

/// Run `cleanup` on the current tokio runtime; without one, say what may be left behind.
fn spawn_cleanup(target: &str, cleanup: BoxFuture<'static, ()>) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(cleanup);
        }
        Err(_) => tracing::warn!(
            "{target}: upload dropped outside a tokio runtime; an incomplete multipart upload may remain on the server (abort it there, or set a lifecycle rule)"
        ),
    }
}

/// Abort `writer`'s multipart upload (a no-op when none started), logging a failure.
async fn abort_upload(mut writer: opendal::Writer, target: String) {
    match writer.abort().await {
        Ok(()) => tracing::debug!("{target}: unfinished upload aborted"),
        Err(e) => tracing::warn!(
            "{target}: could not abort the unfinished multipart upload ({e}); it may remain on the server until a lifecycle rule removes it"
        ),
    }
}

type WriterOutcome = (opendal::Writer, opendal::Result<()>);

/// What the commit answered (the object's ETag, ...) and the bytes written, for whoever
/// asked to hear it.
pub(crate) type OnCommit = Box<dyn FnOnce(opendal::Metadata, u64) + Send>;

enum WriterState {
    /// Ready for the next write.
    Idle(opendal::Writer),
    /// A write in flight (a part may be uploading); the writer comes back with its result.
    Writing(BoxFuture<'static, WriterOutcome>),
    /// `close()` in flight (the multipart upload being completed).
    Closing(BoxFuture<'static, (opendal::Writer, opendal::Result<opendal::Metadata>)>),
    /// Committed: the object is whole.
    Committed,
    /// A write or the commit failed; the upload was aborted.
    Failed,
}

/// An opendal writer as an [`AsyncWrite`]: `shutdown()` commits, and a drop before that
/// aborts the multipart upload from a task on the current tokio runtime.
///
/// Each `poll_write` hands a copy of the buffer to opendal and returns at once; the write
/// finishes (or fails) before the next one starts, so at most one buffer is in flight
/// beside opendal's parts: the one being filled, the one kept back for the commit and up
/// to `Streams` uploading at once (see `parallel.rs`).
pub(crate) struct AbortingWriter {
    state: WriterState,
    /// `s3 bucket/path`, for messages.
    target: String,
    /// Told the commit's answer once the object is whole.
    on_commit: Option<OnCommit>,
    /// Bytes handed to the writer so far.
    written: u64,
}

impl AbortingWriter {
    /// Wrap an opendal writer; `target` names the store and path in messages.
    pub(crate) fn new(writer: opendal::Writer, target: String) -> Self {
        AbortingWriter {
            state: WriterState::Idle(writer),
            target,
            on_commit: None,
            written: 0,
        }
    }

    /// Hand the commit's answer (the server's metadata of the object written) and the
    /// bytes written to `f`.
    pub(crate) fn on_commit(mut self, f: OnCommit) -> Self {
        self.on_commit = Some(f);
        self
    }

    /// Drive an in-flight write to its end; Ready(Ok) once the writer is idle (or done).
    fn poll_pending_write(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let WriterState::Writing(fut) = &mut self.state {
            let (writer, result) = ready!(fut.poll_unpin(cx));
            match result {
                Ok(()) => self.state = WriterState::Idle(writer),
                Err(e) => {
                    self.state = WriterState::Failed;
                    spawn_cleanup(
                        &self.target,
                        abort_upload(writer, self.target.clone()).boxed(),
                    );
                    return Poll::Ready(Err(opendal_io_error(&self.target, "upload to", e)));
                }
            }
        }
        Poll::Ready(Ok(()))
    }

    fn finished_error(&self) -> io::Error {
        io::Error::other(format!(
            "{}: the upload is already finished or failed; start a new one",
            self.target
        ))
    }
}

impl AsyncWrite for AbortingWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending_write(cx))?;
        match std::mem::replace(&mut this.state, WriterState::Failed) {
            WriterState::Idle(mut writer) => {
                let data = Bytes::copy_from_slice(buf);
                this.written += buf.len() as u64;
                this.state = WriterState::Writing(
                    async move {
                        let result = writer.write(data).await;
                        (writer, result)
                    }
                    .boxed(),
                );
                Poll::Ready(Ok(buf.len()))
            }
            other => {
                this.state = other;
                Poll::Ready(Err(this.finished_error()))
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_pending_write(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending_write(cx))?;
        loop {
            match std::mem::replace(&mut this.state, WriterState::Failed) {
                WriterState::Idle(mut writer) => {
                    this.state = WriterState::Closing(
                        async move {
                            let result = writer.close().await;
                            (writer, result)
                        }
                        .boxed(),
                    );
                }
                WriterState::Closing(mut fut) => {
                    let Poll::Ready((writer, result)) = fut.poll_unpin(cx) else {
                        this.state = WriterState::Closing(fut);
                        return Poll::Pending;
                    };
                    return match result {
                        Ok(meta) => {
                            this.state = WriterState::Committed;
                            if let Some(f) = this.on_commit.take() {
                                f(meta, this.written);
                            }
                            Poll::Ready(Ok(()))
                        }
                        Err(e) => {
                            spawn_cleanup(
                                &this.target,
                                abort_upload(writer, this.target.clone()).boxed(),
                            );
                            Poll::Ready(Err(opendal_io_error(
                                &this.target,
                                "completing the upload of",
                                e,
                            )))
                        }
                    };
                }
                WriterState::Committed => {
                    this.state = WriterState::Committed;
                    return Poll::Ready(Ok(()));
                }
                WriterState::Writing(_) | WriterState::Failed => {
                    return Poll::Ready(Err(this.finished_error()));
                }
            }
        }
    }
}

impl Drop for AbortingWriter {
    fn drop(&mut self) {
        let target = self.target.clone();
        let cleanup = match std::mem::replace(&mut self.state, WriterState::Failed) {
            WriterState::Idle(writer) => abort_upload(writer, target).boxed(),
            // The writer is inside the in-flight write: let that end, then abort.
            WriterState::Writing(fut) => async move {
                let (writer, _) = fut.await;
                abort_upload(writer, target).await;
            }
            .boxed(),
            // All data was written and the commit was under way: let it end, and abort
            // only if it failed (an upload completed by then cannot be aborted).
            WriterState::Closing(fut) => async move {
                let (writer, result) = fut.await;
                if result.is_err() {
                    abort_upload(writer, target).await;
                }
            }
            .boxed(),
            WriterState::Committed | WriterState::Failed => return,
        };
        tracing::debug!(
            "{}: upload dropped before shutdown; aborting it",
            self.target
        );
        spawn_cleanup(&self.target, cleanup);
    }
}

/// Which request a streamed upload sends, built once per backend.
#[derive(Clone)]
pub(crate) enum StreamedTarget {
    /// WebDAV: `PUT {endpoint}/{key}`, with an optional `Authorization` header.
    WebDavPut {
        /// Server URL without a trailing slash (it may carry a path: `/remote.php/dav`).
        endpoint: String,
        /// `Basic …` for HTTP basic auth.
        authorization: Option<HeaderValue>,
    },
    /// GCS JSON API media upload (what fake-gcs-server takes):
    /// `POST {endpoint}/upload/storage/v1/b/{bucket}/o?uploadType=media&name={key}`.
    GcsMedia {
        /// Emulator URL without a trailing slash.
        endpoint: String,
        /// The bucket.
        bucket: String,
    },
}

/// Sends each upload as one HTTP request with a streamed body.
#[derive(Clone)]
pub(crate) struct StreamedUploads {
    client: reqwest::Client,
    target: StreamedTarget,
}

impl StreamedUploads {
    /// An uploader for `target` whose connects may take `connect_timeout`; `label` names
    /// the server in errors.
    pub(crate) fn new(
        target: StreamedTarget,
        label: &str,
        connect_timeout: Duration,
    ) -> VfsResult<Self> {
        super::ensure_crypto_provider();
        // A fresh connection for each upload: a streamed body cannot be sent again, and a
        // kept-alive connection the server closes as the next request goes out (cheroot,
        // behind wsgidav, closes idle ones beyond ten) would fail that upload with a reset.
        let client = crate::stall::shared_client(crate::stall::ClientConfig {
            connect_timeout,
            keep_alive: false,
        })
        .map_err(|e| VfsError::Other(format!("{label}: {e}")))?;
        Ok(StreamedUploads { client, target })
    }

    /// The method, URL and headers of the upload of `key` (no leading slash).
    fn request_parts(&self, key: &str) -> Result<(Method, Url, HeaderMap), String> {
        let mut headers = HeaderMap::new();
        match &self.target {
            StreamedTarget::WebDavPut {
                endpoint,
                authorization,
            } => {
                let url = format!(
                    "{endpoint}{}",
                    opendal::raw::percent_encode_path(&format!("/{key}"))
                );
                let url = Url::parse(&url).map_err(|e| format!("invalid URL {url}: {e}"))?;
                if let Some(auth) = authorization {
                    headers.insert(AUTHORIZATION, auth.clone());
                }
                Ok((Method::PUT, url, headers))
            }
            StreamedTarget::GcsMedia { endpoint, bucket } => {
                let base = format!("{endpoint}/upload/storage/v1/b/{bucket}/o");
                let mut url = Url::parse(&base).map_err(|e| format!("invalid URL {base}: {e}"))?;
                url.query_pairs_mut()
                    .append_pair("uploadType", "media")
                    .append_pair("name", key);
                Ok((Method::POST, url, headers))
            }
        }
    }

    /// Start the upload of `key`; `target` names the store and path in messages. The
    /// request runs in a task on the current tokio runtime.
    pub(crate) fn start(&self, key: &str, target: String) -> VfsResult<StreamedUploadWriter> {
        let (method, url, headers) = self
            .request_parts(key)
            .map_err(|e| VfsError::Other(format!("{target}: {e}")))?;
        let (tx, rx) = mpsc::channel::<Bytes>(STREAM_QUEUE);
        let finished = Arc::new(AtomicBool::new(false));
        let body = BodyStream {
            rx,
            finished: finished.clone(),
            ended: false,
        };
        // A server may answer a refused login (401) as soon as the headers arrive and close
        // the connection while the body is still streaming; the client then sees only a
        // broken pipe. A bodiless PROPFIND with the same credentials tells the two apart.
        let probe = matches!(self.target, StreamedTarget::WebDavPut { .. }).then(|| {
            self.client
                .request(
                    Method::from_bytes(b"PROPFIND").expect("a valid method"),
                    url.clone(),
                )
                .headers(headers.clone())
                .header("Depth", "0")
        });
        let request = self
            .client
            .request(method, url)
            .headers(headers)
            .body(reqwest::Body::wrap_stream(body));
        let task_target = target.clone();
        let response = tokio::spawn(async move {
            let resp = match request.send().await {
                Ok(resp) => resp,
                Err(e) => {
                    if let Some(probe) = probe
                        && let Ok(answer) = probe.send().await
                        && matches!(
                            answer.status(),
                            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
                        )
                    {
                        return Err(status_error(&task_target, answer.status(), ""));
                    }
                    return Err(transport_error(&task_target, e));
                }
            };
            let status = resp.status();
            if status.is_success() {
                return Ok(());
            }
            let body = resp.text().await.unwrap_or_default();
            Err(status_error(&task_target, status, &body))
        });
        Ok(StreamedUploadWriter {
            buf: BytesMut::new(),
            tx: PollSender::new(tx),
            finished,
            response: Some(response),
            committed: false,
            target,
        })
    }
}

/// A failure to reach the server or an upload cut short: worth retrying.
fn transport_error(target: &str, e: reqwest::Error) -> io::Error {
    let kind = if e.is_timeout() {
        io::ErrorKind::TimedOut
    } else {
        io::ErrorKind::ConnectionReset
    };
    // The chain holds the useful part ("connection refused", "broken pipe").
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message = format!("{message}: {s}");
        source = s.source();
    }
    io::Error::new(kind, format!("upload to {target} failed: {message}"))
}

/// The server refused the upload: say what it answered and what to check.
fn status_error(target: &str, status: StatusCode, body: &str) -> io::Error {
    let body: String = body.trim().chars().take(300).collect();
    let hint = match status {
        StatusCode::UNAUTHORIZED => "; check the user and password",
        StatusCode::FORBIDDEN => "; check the account's write permission on this path",
        StatusCode::CONFLICT | StatusCode::NOT_FOUND => "; check that the parent folder exists",
        StatusCode::INSUFFICIENT_STORAGE | StatusCode::PAYLOAD_TOO_LARGE => {
            "; the server has no room for this file"
        }
        _ => "",
    };
    // A server error may pass; a refusal will not.
    let kind = if status.is_server_error() && status != StatusCode::INSUFFICIENT_STORAGE {
        io::ErrorKind::ConnectionAborted
    } else {
        io::ErrorKind::Other
    };
    io::Error::new(
        kind,
        format!("upload to {target} refused: HTTP {status} {body}{hint}"),
    )
}

/// The request body: chunks from the writer; an error (so the request is cut, not
/// completed with a truncated body) when the writer went away without `shutdown()`.
struct BodyStream {
    rx: mpsc::Receiver<Bytes>,
    /// Set by `shutdown()` before the channel closes.
    finished: Arc<AtomicBool>,
    ended: bool,
}

impl Stream for BodyStream {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match ready!(self.rx.poll_recv(cx)) {
            Some(chunk) => Poll::Ready(Some(Ok(chunk))),
            None => {
                self.ended = true;
                if self.finished.load(Ordering::SeqCst) {
                    Poll::Ready(None)
                } else {
                    Poll::Ready(Some(Err(io::Error::other(
                        "upload abandoned before it was finished",
                    ))))
                }
            }
        }
    }
}

/// The writer side of a streamed upload: complete once `shutdown()` has returned Ok; a
/// drop before that cuts the request, so the server never takes a truncated body as whole.
pub(crate) struct StreamedUploadWriter {
    /// Bytes not yet handed to the body (up to [`STREAM_CHUNK`]).
    buf: BytesMut,
    tx: PollSender<Bytes>,
    finished: Arc<AtomicBool>,
    /// The request task; `None` once its result was taken.
    response: Option<JoinHandle<io::Result<()>>>,
    /// The server accepted the whole upload.
    committed: bool,
    target: String,
}

impl StreamedUploadWriter {
    /// Hand the buffered bytes to the body, waiting for room in the queue.
    fn poll_send_buffered(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.buf.is_empty() {
            return Poll::Ready(Ok(()));
        }
        if ready!(self.tx.poll_reserve(cx)).is_err() {
            // The request ended early (refused, or the connection broke): report why.
            return self.poll_response(cx).map(|r| {
                r.and(Err(io::Error::other(format!(
                    "{}: the server answered before the upload was finished",
                    self.target
                ))))
            });
        }
        let chunk = self.buf.split().freeze();
        if self.tx.send_item(chunk).is_err() {
            return self.poll_response(cx).map(|r| {
                r.and(Err(io::Error::other(format!(
                    "{}: the upload request ended early",
                    self.target
                ))))
            });
        }
        Poll::Ready(Ok(()))
    }

    /// Wait for the request's outcome (once; later calls say it is over).
    fn poll_response(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(handle) = self.response.as_mut() else {
            return Poll::Ready(Err(io::Error::other(format!(
                "{}: the upload is already finished or failed; start a new one",
                self.target
            ))));
        };
        let joined = ready!(handle.poll_unpin(cx));
        self.response = None;
        Poll::Ready(match joined {
            Ok(result) => result,
            Err(e) => Err(io::Error::other(format!(
                "{}: the upload task failed: {e}",
                self.target
            ))),
        })
    }
}

impl AsyncWrite for StreamedUploadWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.response.is_none() || this.finished.load(Ordering::SeqCst) {
            return Poll::Ready(Err(io::Error::other(format!(
                "{}: the upload is already finished or failed; start a new one",
                this.target
            ))));
        }
        if this.buf.len() >= STREAM_CHUNK {
            ready!(this.poll_send_buffered(cx))?;
        }
        if this.buf.capacity() == 0 {
            this.buf.reserve(STREAM_CHUNK);
        }
        let n = (STREAM_CHUNK - this.buf.len()).min(data.len());
        this.buf.extend_from_slice(&data[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_send_buffered(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.committed {
            return Poll::Ready(Ok(()));
        }
        if !this.finished.load(Ordering::SeqCst) {
            ready!(this.poll_send_buffered(cx))?;
            // Mark the end as wanted before closing, so the body ends cleanly.
            this.finished.store(true, Ordering::SeqCst);
            this.tx.close();
        }
        ready!(this.poll_response(cx))?;
        this.committed = true;
        Poll::Ready(Ok(()))
    }
}

impl Drop for StreamedUploadWriter {
    fn drop(&mut self) {
        if self.response.is_some() && !self.finished.load(Ordering::SeqCst) {
            // Dropping the sender makes the body fail, which cuts the request.
            tracing::debug!(
                "{}: upload dropped before shutdown; request cut",
                self.target
            );
        }
        // A request whose server stopped answering would otherwise wait for good.
        if let Some(response) = self.response.take() {
            response.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn body() -> (mpsc::Sender<Bytes>, Arc<AtomicBool>, BodyStream) {
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        let finished = Arc::new(AtomicBool::new(false));
        let stream = BodyStream {
            rx,
            finished: finished.clone(),
            ended: false,
        };
        (tx, finished, stream)
    }

    #[tokio::test]
    async fn body_of_an_abandoned_upload_ends_in_an_error_not_a_clean_end() {
        let (tx, _finished, mut stream) = body();
        tx.send(Bytes::from_static(b"part")).await.unwrap();
        drop(tx);
        assert_eq!(stream.next().await.unwrap().unwrap(), "part");
        assert!(stream.next().await.unwrap().is_err());
        assert!(stream.next().await.is_none());
    }

    #[tokio::test]
    async fn body_of_a_finished_upload_ends_cleanly() {
        let (tx, finished, mut stream) = body();
        tx.send(Bytes::from_static(b"all")).await.unwrap();
        finished.store(true, Ordering::SeqCst);
        drop(tx);
        assert_eq!(stream.next().await.unwrap().unwrap(), "all");
        assert!(stream.next().await.is_none());
    }

    #[test]
    fn refusals_name_the_target_and_only_server_errors_are_retryable() {
        let e = status_error("http://dav/x.bin", StatusCode::UNAUTHORIZED, "");
        assert!(e.to_string().contains("http://dav/x.bin"), "{e}");
        assert!(e.to_string().contains("user and password"), "{e}");
        assert_eq!(e.kind(), io::ErrorKind::Other);
        let e = status_error("t", StatusCode::SERVICE_UNAVAILABLE, "busy");
        assert!(crate::VfsError::io("t", e).is_transient());
        let e = status_error("t", StatusCode::INSUFFICIENT_STORAGE, "");
        assert!(!crate::VfsError::io("t", e).is_transient());
    }
}
