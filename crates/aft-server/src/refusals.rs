//! Refusals a client can read over HTTP/1.1 and HTTP/2: two layers around the whole router.
//!
//! - [`drain_request_body`]: a request body the handler left unread (an early 401, 403,
//!   404, 405, or the rest of a body above the limit) is read and thrown away, within
//!   bounds, before the answer goes out. Answering first makes hyper end the HTTP/2 stream
//!   with RST_STREAM(NO_ERROR) right after the response (RFC 9113 §8.1, the client is
//!   still sending). curl 7.88 then fails its pending upload on the reset stream ("Stream
//!   error in the HTTP/2 framing layer", exit 92) and drops the response it already had.
//!   With the body read, the stream closes normally from both ends.
//! - [`json_errors`]: every error answer of the REST API is `{"error": "..."}`, including
//!   the plain-text rejections of axum's extractors (`Path`, `Query`, `Bytes`: 400, 413)
//!   and of its router (405 with an empty body), so no handler needs its own copy.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use http_body::{Frame, SizeHint};

use crate::error::ApiError;

/// At most this much of an unread request body is drained (axum's default body limit, so
/// the rest of any body the limit refused is covered when it is up to twice the limit)...
pub const DRAIN_LIMIT: usize = 2 * 1024 * 1024;
/// ...for at most this long; past either bound the answer goes out without waiting.
pub const DRAIN_TIME: Duration = Duration::from_secs(5);
/// The largest plain-text error body turned into a JSON message.
const MAX_MESSAGE: usize = 16 * 1024;

/// What a handler left of the request body.
#[derive(Default)]
struct Leftover {
    body: Mutex<Option<Body>>,
    /// Whether anyone read from the body (for HTTP/1.1 this sends `100 Continue`).
    polled: AtomicBool,
}

/// The request body as handlers see it: dropped before its end, it parks the unread rest in
/// `leftover` for [`drain_request_body`].
struct Reclaimable {
    inner: Option<Body>,
    leftover: Arc<Leftover>,
}

impl HttpBody for Reclaimable {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        self.leftover.polled.store(true, Ordering::Relaxed);
        match self.inner.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), HttpBody::size_hint)
    }
}

impl Drop for Reclaimable {
    fn drop(&mut self) {
        if let Some(body) = self.inner.take()
            && !body.is_end_stream()
        {
            *self.leftover.body.lock().unwrap_or_else(|e| e.into_inner()) = Some(body);
        }
    }
}

/// Middleware: run the request, then read what the handler left of its body (see the
/// module documentation) before handing back the answer.
pub async fn drain_request_body(request: Request, next: Next) -> Response {
    // A client waiting for "100 Continue" sends no body unless someone reads it: reading it
    // here would only ask for bytes nobody wants.
    let awaits_continue = request
        .headers()
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let leftover = Arc::new(Leftover::default());
    let request = request.map(|body| {
        Body::new(Reclaimable {
            inner: Some(body),
            leftover: leftover.clone(),
        })
    });
    let response = next.run(request).await;
    let rest = leftover
        .body
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(rest) = rest
        && (!awaits_continue || leftover.polled.load(Ordering::Relaxed))
    {
        drain(rest).await;
    }
    response
}

/// Read and discard `body` up to [`DRAIN_LIMIT`] bytes and [`DRAIN_TIME`].
async fn drain(body: Body) {
    let mut chunks = body.into_data_stream();
    let read_rest = async {
        let mut read = 0usize;
        while let Some(Ok(chunk)) = chunks.next().await {
            read += chunk.len();
            if read > DRAIN_LIMIT {
                return false;
            }
        }
        true
    };
    match tokio::time::timeout(DRAIN_TIME, read_rest).await {
        Ok(true) => {}
        Ok(false) => tracing::debug!("unread request body above {DRAIN_LIMIT} bytes; answering"),
        Err(_) => {
            tracing::debug!("unread request body still coming after {DRAIN_TIME:?}; answering")
        }
    }
}

/// Whether `path` is the REST API's (the web UI's own answers are HTML and text).
pub(crate) fn is_api(path: &str) -> bool {
    path == "/v1" || path.starts_with("/v1/") || path == "/metrics"
}

/// Middleware: turn an API error answer that is not JSON yet into `{"error": "..."}` with
/// the same status and headers.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_api(&path) || !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_MESSAGE)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = if !text.is_empty() {
        text
    } else if status == StatusCode::METHOD_NOT_ALLOWED {
        // axum adds `Allow` outside this layer, so it is not readable here.
        format!("{method} is not allowed on {path}; the Allow header lists the methods that are")
    } else {
        format!(
            "{method} {path}: {}",
            status.canonical_reason().unwrap_or("refused")
        )
    };
    let (json_parts, json_body) = ApiError::new(status, message).into_response().into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    if let Some(content_type) = json_parts.headers.get(header::CONTENT_TYPE) {
        parts
            .headers
            .insert(header::CONTENT_TYPE, content_type.clone());
    }
    Response::from_parts(parts, json_body)
}
