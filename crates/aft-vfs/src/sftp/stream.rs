//! Pipelined file I/O: a reader keeping many read requests in flight and a writer keeping
//! many writes in flight, each closing its remote handle even when dropped half way. A big
//! file's requests take turns on the extra connections of `Streams` as they join: the
//! reader still hands its answers on in order, the writer's requests land at their offsets,
//! and either keeps at most `depth` requests in flight over all its connections.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use futures::stream::{FuturesOrdered, FuturesUnordered};
use futures::{FutureExt, StreamExt};
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{OpenFlags, StatusCode};
use tokio::io::AsyncWrite;
use tokio::sync::mpsc::UnboundedReceiver;

use super::wire::WritePacket;
use super::{Conn, STREAMS_FROM, SftpFs};

/// An SFTP failure as the `io::Error` a reader or writer returns, its kind kept so the
/// transfer code can tell a missing file from a dropped connection.
pub(super) fn to_io(target: &str, path: &str, e: SftpError) -> io::Error {
    let kind = match &e {
        SftpError::Status(s) if s.status_code == StatusCode::NoSuchFile => io::ErrorKind::NotFound,
        SftpError::Status(s) if s.status_code == StatusCode::PermissionDenied => {
            io::ErrorKind::PermissionDenied
        }
        SftpError::Status(_) | SftpError::Limited(_) | SftpError::UnexpectedPacket => {
            io::ErrorKind::Other
        }
        SftpError::Timeout => io::ErrorKind::TimedOut,
        SftpError::IO(_) | SftpError::UnexpectedBehavior(_) => io::ErrorKind::ConnectionAborted,
    };
    io::Error::new(kind, format!("{target}{path}: {}", plain_message(&e)))
}

/// An SFTP error in words: russh-sftp says "sender dropped" when the SSH session ends
/// under a request (a reset or closed connection).
pub(super) fn plain_message(e: &SftpError) -> String {
    match e {
        SftpError::UnexpectedBehavior(m) if m == "sender dropped" => {
            "the connection closed before the server answered (the SSH session ended)".into()
        }
        other => other.to_string(),
    }
}

/// Closes a remote handle when dropped, so an abandoned reader or listing does not leak it.
pub(super) struct HandleGuard {
    pub(super) conn: Arc<Conn>,
    pub(super) handle: Option<String>,
}

impl HandleGuard {
    /// Close the handle now, waiting for the server's answer.
    async fn close(mut self) -> Result<(), SftpError> {
        match self.handle.take() {
            Some(h) => self.conn.sftp.close(h).await.map(|_| ()),
            None => Ok(()),
        }
    }
}

/// The handles of one file on its connections: the first one's, then those that joined;
/// requests take turns on them.
fn pick<'a>(
    first: (&'a Arc<Conn>, &'a Option<String>),
    extra: &'a [HandleGuard],
    turn: &mut usize,
) -> (Arc<Conn>, String) {
    let k = *turn % (extra.len() + 1);
    *turn = turn.wrapping_add(1);
    let (conn, handle) = match k {
        0 => first,
        k => (&extra[k - 1].conn, &extra[k - 1].handle),
    };
    (conn.clone(), handle.clone().unwrap_or_default())
}

/// Take the streams that joined since the last look.
fn take_joined(joining: &mut Option<UnboundedReceiver<HandleGuard>>, extra: &mut Vec<HandleGuard>) {
    if let Some(rx) = joining {
        while let Ok(guard) = rx.try_recv() {
            extra.push(guard);
        }
    }
}

impl Drop for HandleGuard {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let conn = self.conn.clone();
            rt.spawn(async move {
                let _ = conn.sftp.close(h).await;
            });
        }
    }
}

pub(super) type ReadFut = BoxFuture<'static, (u64, u32, Result<Bytes, SftpError>)>;

/// A download's window: how many read requests are kept in flight, between `least` and
/// `most`. It grows by one each time the reader waited on the next answer with the window
/// full (the network holds the copy back), and shrinks by one each time a whole window's
/// answers were taken without a wait (the reader holds it back, and answers pile up in
/// memory). A far server's answers arrive in bursts, so some answers already there one
/// after another are no sign that the window is too big: shrinking on each of them kept a
/// far download's window at its least (205 against 250 MiB/s at 20 ms, one connection).
#[derive(Debug)]
pub(super) struct ReadWindow {
    pub(super) depth: usize,
    least: usize,
    most: usize,
    /// Answers taken since the reader last waited.
    ready_run: usize,
}

impl ReadWindow {
    pub(super) fn new(least: usize, most: usize) -> Self {
        let least = least.max(1);
        Self {
            depth: least,
            least,
            most: most.max(least),
            ready_run: 0,
        }
    }

    /// The next answer was there when the reader asked for it.
    pub(super) fn was_ready(&mut self) {
        self.ready_run += 1;
        if self.ready_run >= self.depth {
            self.depth = (self.depth - 1).max(self.least);
            self.ready_run = 0;
        }
    }

    /// The reader is about to wait for the next answer, with `in_flight` requests out.
    /// True when the window grew, so one more request may go out.
    pub(super) fn waited(&mut self, in_flight: usize) -> bool {
        self.ready_run = 0;
        let grow = in_flight >= self.depth && self.depth < self.most;
        if grow {
            self.depth += 1;
        }
        grow
    }
}

/// Pipelined reader state: requests at increasing offsets, answers consumed in order.
pub(super) struct ReadState {
    pub(super) guard: HandleGuard,
    /// The file's handles on the other connections of `Streams` (closed when dropped).
    pub(super) extra: Vec<HandleGuard>,
    /// Where those arrive as they open.
    pub(super) joining: Option<UnboundedReceiver<HandleGuard>>,
    /// Which connection the next request goes to.
    pub(super) turn: usize,
    pub(super) label: String,
    pub(super) path: String,
    pub(super) next: u64,
    pub(super) end: Option<u64>,
    pub(super) chunk: u32,
    /// How many requests are kept in flight.
    pub(super) window: ReadWindow,
    pub(super) inflight: FuturesOrdered<ReadFut>,
    pub(super) done: bool,
}

impl ReadState {
    pub(super) fn request(&mut self, offset: u64, len: u32) -> ReadFut {
        let (conn, handle) = pick(
            (&self.guard.conn, &self.guard.handle),
            &self.extra,
            &mut self.turn,
        );
        // Sent now, past russh-sftp (see [`super::wire`]); the future waits for the answer.
        let answer = conn.wire.read(&handle, offset, len);
        async move { (offset, len, answer.await) }.boxed()
    }

    pub(super) fn fill(&mut self) {
        take_joined(&mut self.joining, &mut self.extra);
        while !self.done && self.inflight.len() < self.window.depth {
            let len = match self.end {
                Some(end) if self.next >= end => return,
                Some(end) => (end - self.next).min(self.chunk as u64) as u32,
                None => self.chunk,
            };
            let fut = self.request(self.next, len);
            self.inflight.push_back(fut);
            self.next += len as u64;
        }
    }

    pub(super) async fn next_chunk(&mut self) -> Option<io::Result<Bytes>> {
        self.fill();
        let answer = match self.inflight.next().now_or_never() {
            Some(answer) => {
                self.window.was_ready();
                answer
            }
            None => {
                if self.window.waited(self.inflight.len()) {
                    self.fill();
                }
                self.inflight.next().await
            }
        };
        let (offset, len, result) = answer?;
        match result {
            // More than asked for is cut, never handed on as the next chunk's bytes.
            Ok(data) if data.len() as u32 >= len => Some(Ok(data.slice(..len as usize))),
            Ok(data) => {
                // A short answer before the end: fetch the gap before later chunks.
                let mut data = BytesMut::from(&data[..]);
                while (data.len() as u32) < len {
                    let at = offset + data.len() as u64;
                    let want = len - data.len() as u32;
                    let handle = self.guard.handle.clone().unwrap_or_default();
                    match self.guard.conn.wire.read(&handle, at, want).await {
                        Ok(more) if !more.is_empty() => data.extend_from_slice(&more),
                        Ok(_) => break,
                        Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => {
                            self.done = true;
                            self.inflight.clear();
                            break;
                        }
                        Err(e) => return Some(Err(to_io(&self.label, &self.path, e))),
                    }
                }
                Some(Ok(data.freeze()))
            }
            Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => {
                self.done = true;
                self.inflight.clear();
                None
            }
            Err(e) => {
                self.done = true;
                self.inflight.clear();
                Some(Err(to_io(&self.label, &self.path, e)))
            }
        }
    }
}

pub(super) type WriteFut = BoxFuture<'static, Result<(), SftpError>>;

/// Pipelined writer: full chunks go out at once, up to `depth` unacknowledged.
pub(super) struct SftpWriter {
    pub(super) conn: Arc<Conn>,
    pub(super) handle: Option<String>,
    /// The file's handles on the other connections of `Streams` (closed when dropped).
    pub(super) extra: Vec<HandleGuard>,
    /// Where those arrive as they open, once asked for.
    pub(super) joining: Option<UnboundedReceiver<HandleGuard>>,
    /// Opens the other streams once [`STREAMS_FROM`] bytes were sent (`None`: one stream,
    /// or already asked).
    pub(super) dialer: Option<SftpFs>,
    /// Which connection the next request goes to.
    pub(super) turn: usize,
    /// Bytes sent by this writer.
    pub(super) sent: u64,
    /// The server path, under which the attributes fetched at the close are kept.
    pub(super) remote: String,
    pub(super) label: String,
    pub(super) path: String,
    pub(super) offset: u64,
    /// The request being filled, and the connection it goes to (picked when it was
    /// started: the request carries that connection's handle).
    pub(super) buf: Option<(Arc<Conn>, WritePacket)>,
    pub(super) chunk: usize,
    pub(super) depth: usize,
    pub(super) inflight: FuturesUnordered<WriteFut>,
    pub(super) error: Option<io::Error>,
    pub(super) closing: Option<WriteFut>,
}

impl SftpWriter {
    /// Bytes in the request being filled.
    fn buffered(&self) -> usize {
        self.buf.as_ref().map_or(0, |(_, p)| p.len())
    }

    /// The request being filled, started on the next connection's turn when there is none.
    fn packet(&mut self) -> &mut WritePacket {
        if self.buf.is_none() {
            if self.sent >= STREAMS_FROM
                && let Some(dialer) = self.dialer.take()
            {
                // The primary handle created (or cut) the file: the others only write into it.
                let streams = self.conn.write_streams(&dialer.cfg);
                if streams > 1 {
                    self.joining =
                        Some(dialer.join_streams(&self.remote, OpenFlags::WRITE, streams));
                }
            }
            take_joined(&mut self.joining, &mut self.extra);
            let (conn, handle) = pick((&self.conn, &self.handle), &self.extra, &mut self.turn);
            self.buf = Some((conn, WritePacket::new(&handle, self.chunk)));
        }
        &mut self.buf.as_mut().expect("a request").1
    }

    /// Send the request being filled (its bytes go to the channel as they are, see
    /// [`super::wire`]).
    pub(super) fn send(&mut self) {
        let Some((conn, packet)) = self.buf.take() else {
            return;
        };
        if packet.is_empty() {
            return;
        }
        let offset = self.offset;
        self.offset += packet.len() as u64;
        self.sent += packet.len() as u64;
        self.inflight.push(conn.wire.write(packet, offset).boxed());
    }

    /// Drive in-flight writes; Ready(Err) on the first failure.
    pub(super) fn drive(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.error.take() {
            return Poll::Ready(Err(e));
        }
        loop {
            match self.inflight.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(()))) => continue,
                Poll::Ready(Some(Err(e))) => {
                    let err = to_io(&self.label, &self.path, e);
                    return Poll::Ready(Err(err));
                }
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl AsyncWrite for SftpWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if let Poll::Ready(Err(e)) = this.drive(cx) {
            return Poll::Ready(Err(e));
        }
        if this.buffered() >= this.chunk {
            if this.inflight.len() >= this.depth {
                return Poll::Pending; // woken by an acknowledgement (drive registered us)
            }
            this.send();
        }
        let chunk = this.chunk;
        let packet = this.packet();
        let n = data.len().min(chunk - packet.len());
        packet.extend(&data[..n]);
        if this.buffered() >= this.chunk && this.inflight.len() < this.depth {
            this.send();
        }
        // Start the new requests now; an error surfaces on the next call.
        if let Poll::Ready(Err(e)) = this.drive(cx) {
            this.error = Some(e);
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.buffered() > 0 && this.inflight.len() < this.depth {
                this.send();
            }
            match this.drive(cx) {
                Poll::Ready(Ok(())) if this.buffered() == 0 => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => continue,
                other => return other,
            }
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.closing.is_none() {
            let this = &mut *self;
            // Room for the last chunk; earlier writes are already sent (each goes out when
            // queued) and are awaited below, with the last one and the close.
            if this.buffered() > 0 && this.inflight.len() >= this.depth {
                match this.drive(cx) {
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending if this.inflight.len() >= this.depth => return Poll::Pending,
                    _ => {}
                }
            }
            if let Some(e) = this.error.take() {
                return Poll::Ready(Err(e));
            }
            if this.handle.is_none() {
                return Poll::Ready(Ok(()));
            }
            // The last write goes out now, before the fstat and close below.
            this.dialer = None;
            this.send();
            let Some(handle) = this.handle.take() else {
                return Poll::Ready(Ok(()));
            };
            let earlier = std::mem::take(&mut this.inflight);
            // Streams still opening are not waited for: dropped, they close their handles.
            this.joining = None;
            this.dialer = None;
            let extra = std::mem::take(&mut this.extra);
            let (conn, remote) = (this.conn.clone(), this.remote.clone());
            // The last write, an fstat and the close go out together, without waiting for
            // each other's answers: the server handles requests on one handle in order, so
            // the fstat sees every write. A small file then costs one round trip here, not
            // three (write, close, and the transfer's stat of what landed).
            this.closing = Some(
                async move {
                    let mut earlier = earlier;
                    if !extra.is_empty() {
                        // Writes on other connections are not ordered with this handle's
                        // requests: the fstat must follow their answers, and their handles
                        // close first.
                        while let Some(r) = earlier.next().await {
                            r?;
                        }
                        for r in
                            futures::future::join_all(extra.into_iter().map(HandleGuard::close))
                                .await
                        {
                            r?;
                        }
                    }
                    let earlier = async {
                        while let Some(r) = earlier.next().await {
                            r?;
                        }
                        Ok::<(), SftpError>(())
                    };
                    let (before, attrs, closed) = futures::join!(
                        earlier,
                        conn.sftp.fstat(handle.as_str()),
                        conn.sftp.close(handle.as_str())
                    );
                    before?;
                    closed?;
                    if let Ok(a) = attrs {
                        conn.file_landed(remote, a.attrs);
                    }
                    Ok(())
                }
                .boxed(),
            );
        }
        let this = &mut *self;
        let closing = this.closing.as_mut().expect("closing future");
        match closing.poll_unpin(cx) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(to_io(&this.label, &this.path, e))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for SftpWriter {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            drop(HandleGuard {
                conn: self.conn.clone(),
                handle: Some(h),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ReadWindow;

    /// A far server: each round trip a window's answers arrive together, the reader takes
    /// them one after another, then waits with the window full for the next burst.
    #[test]
    fn bursts_from_a_far_server_grow_the_window_to_its_most() {
        let mut w = ReadWindow::new(16, 64);
        for _ in 0..200 {
            let burst = w.depth;
            // The request sent on growing is part of the next burst.
            w.waited(burst);
            for _ in 1..burst {
                w.was_ready();
            }
        }
        assert_eq!(w.depth, 64);
    }

    /// A reader slower than the network: every answer is there when it asks.
    #[test]
    fn a_slow_reader_shrinks_the_window_to_its_least() {
        let mut w = ReadWindow::new(4, 16);
        while w.waited(w.depth) {}
        assert_eq!(w.depth, 16);
        for _ in 0..1000 {
            w.was_ready();
        }
        assert_eq!(w.depth, 4);
    }

    /// A wait with requests still to send (the window not full) is not the network's fault.
    #[test]
    fn a_wait_below_a_full_window_does_not_grow_it() {
        let mut w = ReadWindow::new(4, 16);
        assert!(!w.waited(3));
        assert_eq!(w.depth, 4);
    }

    /// `MaxInFlight` set: least and most are the same, and nothing moves the window.
    #[test]
    fn a_fixed_window_stays_fixed() {
        let mut w = ReadWindow::new(8, 8);
        assert!(!w.waited(8));
        for _ in 0..100 {
            w.was_ready();
        }
        assert_eq!(w.depth, 8);
    }
}
