//! Stall detection: a server that stops answering without closing the connection fails
//! the read, write or request after `Timeout` seconds without progress, with a named,
//! retryable error ("no data from 127.0.0.1:21 for 30 s"), instead of holding the job for
//! good.
//!
//! - [`Stalled`] wraps a reader or writer: the clock runs only while a read, write, flush
//!   or shutdown is pending, and restarts at each one that completes. A slow link that
//!   moves a little at a time never trips it; only silence does.
//! - [`StallTransport`] is the HTTP transport of the opendal backends (S3, Azure, GCS,
//!   WebDAV): a request fails when its body stops being taken (the upload stalled) or no
//!   answer comes for `Timeout` seconds after the last byte sent, and a response body fails
//!   when no chunk comes for `Timeout` seconds. The body is handed to the connection in
//!   64 KiB pieces so that an 8 MiB part shows progress as it goes, not only at its end.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// Seconds without progress before a connection is given up when `Timeout` is not set.
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;

/// The error of a stall: `TimedOut`, which [`crate::VfsError::is_transient`] retries.
pub fn stall_error(peer: &str, limit: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("no data from {peer} for {} s (Timeout)", limit.as_secs()),
    )
}

/// A reader or writer that fails with [`stall_error`] when an operation stays pending for
/// `limit` without any progress.
pub struct Stalled<T> {
    inner: T,
    limit: Duration,
    /// `host:port`, named in the error.
    peer: Arc<str>,
    /// Runs while an operation is pending; cleared when one completes.
    timer: Option<Pin<Box<Sleep>>>,
}

impl<T> Stalled<T> {
    /// Wrap `inner`; `peer` (`host:port`) is named in the error.
    pub fn new(inner: T, limit: Duration, peer: impl Into<Arc<str>>) -> Self {
        Stalled {
            inner,
            limit,
            peer: peer.into(),
            timer: None,
        }
    }

    /// Pass a completed poll through (restarting the clock), or check the clock on a
    /// pending one.
    fn watch<R>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        match polled {
            Poll::Ready(r) => {
                self.timer = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let limit = self.limit;
                let timer = self
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        self.timer = None;
                        Poll::Ready(Err(stall_error(&self.peer, self.limit)))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Stalled<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        this.watch(cx, polled)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Stalled<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, data);
        this.watch(cx, polled)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        this.watch(cx, polled)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.watch(cx, polled)
    }
}

/// Run `fut` (a few commands on a control connection) for at most `limit`; past it, the
/// [`stall_error`] of `peer`. Dropping the future closes what it held.
pub async fn within<T>(
    limit: Duration,
    peer: &str,
    fut: impl Future<Output = T>,
) -> Result<T, io::Error> {
    tokio::time::timeout(limit, fut)
        .await
        .map_err(|_| stall_error(peer, limit))
}

/// `host:port` of a URL (the default port of its scheme when it names none).
pub fn peer_of_uri(uri: &http::Uri) -> String {
    let host = uri.host().unwrap_or("?");
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("http") {
            80
        } else {
            443
        });
    format!("{host}:{port}")
}

/// When something last moved, in milliseconds since `start`; shared by a request's body
/// and the watch on its answer.
#[derive(Clone)]
struct Progress {
    start: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Progress {
    fn new() -> Self {
        Progress {
            start: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    fn mark(&self) {
        let now = self.start.elapsed().as_millis() as u64;
        self.last_ms.fetch_max(now, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// Pieces a request body is handed to the connection in.
const BODY_PIECE: usize = 64 * 1024;

/// A request body that marks progress each time the connection takes a piece.
struct ProgressBody {
    pieces: std::collections::VecDeque<Bytes>,
    left: u64,
    progress: Progress,
}

impl ProgressBody {
    fn new(body: opendal::Buffer, progress: Progress) -> Self {
        let left = body.len() as u64;
        let mut pieces = std::collections::VecDeque::new();
        for chunk in body {
            let mut at = 0;
            while at < chunk.len() {
                let end = (at + BODY_PIECE).min(chunk.len());
                pieces.push_back(chunk.slice(at..end));
                at = end;
            }
        }
        ProgressBody {
            pieces,
            left,
            progress,
        }
    }
}

impl http_body::Body for ProgressBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        self.progress.mark();
        match self.pieces.pop_front() {
            Some(piece) => {
                self.left -= piece.len() as u64;
                Poll::Ready(Some(Ok(http_body::Frame::data(piece))))
            }
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pieces.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.left)
    }
}

/// What sets one HTTP client apart from another. Building a client loads the root
/// certificates (the system's and webpki's) and starts an empty connection pool, which
/// costs milliseconds and about a megabyte: so the process keeps one client per distinct
/// configuration, shared by every connection and file. The object-store backends have no
/// TLS options of their own today; one that gets some adds them here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ClientConfig {
    /// How long a TCP + TLS connect may take (the `Timeout` field).
    pub connect_timeout: Duration,
    /// Keep idle connections for the next request; off for streamed uploads, whose body
    /// cannot be sent again on a kept connection the server closed meanwhile.
    pub keep_alive: bool,
}

/// The process's HTTP clients, one per [`ClientConfig`] (a `reqwest::Client` is a handle:
/// clones share its pool).
static CLIENTS: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<ClientConfig, reqwest::Client>>,
> = std::sync::LazyLock::new(Default::default);

/// The shared client of `config`, built on first use.
pub(crate) fn shared_client(config: ClientConfig) -> Result<reqwest::Client, String> {
    let mut clients = CLIENTS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(client) = clients.get(&config) {
        return Ok(client.clone());
    }
    let mut builder = reqwest::Client::builder().connect_timeout(config.connect_timeout);
    if !config.keep_alive {
        builder = builder.pool_max_idle_per_host(0);
    }
    let client = builder
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    clients.insert(config, client.clone());
    Ok(client)
}

/// opendal's HTTP transport with stall detection (see the module doc).
#[derive(Clone)]
pub struct StallTransport {
    client: reqwest::Client,
    limit: Duration,
}

impl StallTransport {
    /// A transport whose requests fail after `limit` without progress; it uses the
    /// process's shared client for that limit ([`shared_client`]).
    pub fn new(limit: Duration) -> Result<Self, String> {
        let client = shared_client(ClientConfig {
            connect_timeout: limit,
            keep_alive: true,
        })?;
        Ok(StallTransport { client, limit })
    }

    fn stalled(&self, op: &'static str, peer: &str) -> opendal::Error {
        opendal::Error::new(
            opendal::ErrorKind::Unexpected,
            stall_error(peer, self.limit).to_string(),
        )
        .with_operation(op)
        .set_temporary()
    }
}

/// A reqwest failure as opendal's: sending or reading a body may pass on a new try.
fn transport_error(op: &'static str, uri: &http::Uri, e: reqwest::Error) -> opendal::Error {
    let temporary = e.is_request() || e.is_body() || e.is_decode() || e.is_connect();
    opendal::Error::new(opendal::ErrorKind::Unexpected, "send http request")
        .with_operation(op)
        .with_context("url", uri.to_string())
        .with_temporary(temporary)
        .set_source(e.without_url())
}

impl opendal::HttpTransport for StallTransport {
    async fn fetch(
        &self,
        req: http::Request<opendal::Buffer>,
    ) -> opendal::Result<http::Response<opendal::HttpBody>> {
        let uri = req.uri().clone();
        let peer = peer_of_uri(&uri);
        let is_head = req.method() == http::Method::HEAD;
        let (parts, body) = req.into_parts();
        let url = reqwest::Url::parse(&uri.to_string()).map_err(|e| {
            opendal::Error::new(opendal::ErrorKind::Unexpected, "request url is invalid")
                .with_context("url", uri.to_string())
                .set_source(e)
        })?;
        let progress = Progress::new();
        let mut request = self
            .client
            .request(parts.method, url)
            .headers(parts.headers)
            .version(parts.version);
        if !body.is_empty() {
            request = request.body(reqwest::Body::wrap(ProgressBody::new(
                body,
                progress.clone(),
            )));
        }
        // Until the answer's head: fail once nothing moved for `limit`.
        let mut send = std::pin::pin!(request.send());
        let mut resp = loop {
            let deadline = tokio::time::Instant::from_std(progress.last() + self.limit);
            tokio::select! {
                r = &mut send => break r.map_err(|e| transport_error("http send", &uri, e))?,
                _ = tokio::time::sleep_until(deadline) => {
                    if progress.last() + self.limit <= Instant::now() {
                        return Err(self.stalled("http send", &peer));
                    }
                }
            }
        };
        let content_length =
            if is_head || resp.headers().contains_key(http::header::CONTENT_ENCODING) {
                None
            } else {
                opendal::raw::parse_content_length(resp.headers())?
            };
        let mut answer = http::Response::builder()
            .status(resp.status())
            .version(resp.version())
            .extension(uri.clone());
        std::mem::swap(
            answer.headers_mut().expect("a valid builder"),
            resp.headers_mut(),
        );
        let limit = self.limit;
        let body_uri = uri.clone();
        let body_peer: Arc<str> = peer.into();
        let chunks = resp
            .bytes_stream()
            .map_err(move |e| transport_error("http read", &body_uri, e));
        let chunks = ChunkTimeout::new(chunks, limit, body_peer)
            .try_filter(|b| futures::future::ready(!b.is_empty()))
            .map_ok(opendal::Buffer::from);
        let body = opendal::HttpBody::new(chunks, content_length);
        Ok(answer.body(body).expect("a valid response"))
    }
}

/// A stream of body chunks that fails when the next one takes longer than `limit`.
struct ChunkTimeout<S> {
    inner: S,
    limit: Duration,
    peer: Arc<str>,
    timer: Option<Pin<Box<Sleep>>>,
}

impl<S> ChunkTimeout<S> {
    fn new(inner: S, limit: Duration, peer: Arc<str>) -> Self {
        ChunkTimeout {
            inner,
            limit,
            peer,
            timer: None,
        }
    }
}

impl<S> Stream for ChunkTimeout<S>
where
    S: Stream<Item = opendal::Result<Bytes>> + Unpin,
{
    type Item = opendal::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match this.inner.poll_next_unpin(cx) {
            Poll::Ready(item) => {
                this.timer = None;
                Poll::Ready(item)
            }
            Poll::Pending => {
                let limit = this.limit;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.timer = None;
                        let e = stall_error(&this.peer, this.limit);
                        Poll::Ready(Some(Err(opendal::Error::new(
                            opendal::ErrorKind::Unexpected,
                            e.to_string(),
                        )
                        .with_operation("http read")
                        .set_temporary())))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_silent_reader_fails_after_the_limit_and_a_slow_one_does_not() {
        // A peer that sends one byte every 300 ms never trips a 1 s limit.
        let (mut server, client) = tokio::io::duplex(64);
        let mut reader = Stalled::new(client, Duration::from_secs(1), "127.0.0.1:21");
        let feeder = tokio::spawn(async move {
            for _ in 0..5 {
                tokio::time::sleep(Duration::from_millis(300)).await;
                server.write_all(b"x").await.unwrap();
            }
            // Then silence, with the connection still open.
            tokio::time::sleep(Duration::from_secs(3600)).await;
            drop(server);
        });
        let mut got = Vec::new();
        let mut buf = [0u8; 8];
        let err = loop {
            match reader.read(&mut buf).await {
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => break e,
            }
        };
        assert_eq!(got, b"xxxxx");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(
            err.to_string(),
            "no data from 127.0.0.1:21 for 1 s (Timeout)"
        );
        feeder.abort();
    }

    #[tokio::test]
    async fn a_writer_nobody_drains_fails_after_the_limit() {
        let (_server, client) = tokio::io::duplex(16);
        let mut writer = Stalled::new(client, Duration::from_secs(1), "dav.example.com:443");
        let started = tokio::time::Instant::now();
        let err = writer.write_all(&[0u8; 1024]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(err.to_string().contains("dav.example.com:443"), "{err}");
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(1) && waited < Duration::from_secs(3),
            "{waited:?}"
        );
        let vfs = crate::VfsError::io("/a.bin", err);
        assert!(vfs.is_transient(), "a stall must be retried like a reset");
    }

    #[test]
    fn a_body_is_handed_over_in_pieces_and_keeps_its_length() {
        let big = Bytes::from(vec![7u8; 200 * 1024]);
        let body = ProgressBody::new(opendal::Buffer::from(big), Progress::new());
        assert_eq!(http_body::Body::size_hint(&body).exact(), Some(200 * 1024));
        let sizes: Vec<usize> = body.pieces.iter().map(Bytes::len).collect();
        assert_eq!(sizes, [65536, 65536, 65536, 8192]);
    }

    #[test]
    fn one_client_per_configuration_is_built_for_the_process() {
        crate::object_store::ensure_crypto_provider();
        // A limit no other test uses, so the count below is this test's own.
        let limit = Duration::from_millis(30_017);
        let count = || {
            CLIENTS
                .lock()
                .unwrap()
                .keys()
                .filter(|k| k.connect_timeout == limit)
                .count()
        };
        assert_eq!(count(), 0);
        for _ in 0..20 {
            StallTransport::new(limit).unwrap();
        }
        assert_eq!(count(), 1, "twenty transports, one client");
        shared_client(ClientConfig {
            connect_timeout: limit,
            keep_alive: false,
        })
        .unwrap();
        assert_eq!(count(), 2, "another configuration gets a client of its own");
    }

    #[test]
    fn peers_name_the_default_port_of_their_scheme() {
        let uri: http::Uri = "https://s3.amazonaws.com/b/k".parse().unwrap();
        assert_eq!(peer_of_uri(&uri), "s3.amazonaws.com:443");
        let uri: http::Uri = "http://127.0.0.1:10000/devstoreaccount1".parse().unwrap();
        assert_eq!(peer_of_uri(&uri), "127.0.0.1:10000");
    }
}
