//! The TLS stream the FTP backend gives suppaftp: tokio-rustls, plus one guarantee that
//! suppaftp needs and tokio-rustls does not give.
//!
//! tokio-rustls' `poll_write` takes the plaintext into rustls and returns `Ready(n)` even when
//! the socket could not take the encrypted record yet (the socket was busy, or the task's tokio
//! cooperative budget ran out), leaving the record buffered until the next write or flush.
//! suppaftp writes a command with `write_all` and then only reads the reply, so such a command
//! never left the machine and the session waited for its reply forever. Under many transfers
//! in one task (1,000 small uploads) that happened often: the budget runs out regularly.
//!
//! [`FlushingTlsStream`] therefore tries to flush after every write, and remembers when that
//! flush could not finish; its next read finishes it first. A reader that waits for a reply
//! is then also a writer of whatever is still buffered, and is woken for both.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_trait::async_trait;
use rustls::pki_types::ServerName;
use suppaftp::FtpError;
use suppaftp::tokio::{AsyncTlsConnector, TokioTlsStream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Opens [`FlushingTlsStream`]s: the control connection's TLS and every data connection's.
#[derive(Clone)]
pub(super) struct FlushingTlsConnector {
    connector: TlsConnector,
}

impl FlushingTlsConnector {
    pub(super) fn new(connector: TlsConnector) -> Self {
        FlushingTlsConnector { connector }
    }
}

impl fmt::Debug for FlushingTlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FlushingTlsConnector")
    }
}

#[async_trait]
impl AsyncTlsConnector for FlushingTlsConnector {
    type Stream = FlushingTlsStream;

    async fn connect(&self, domain: &str, stream: TcpStream) -> suppaftp::FtpResult<Self::Stream> {
        let server_name = ServerName::try_from(domain.to_owned()).map_err(|e| {
            FtpError::SecureError(format!("{domain} is not a TLS server name: {e}"))
        })?;
        let stream = self
            .connector
            .connect(server_name, stream)
            .await
            .map_err(|e| FtpError::SecureError(e.to_string()))?;
        Ok(FlushingTlsStream {
            inner: stream,
            unflushed: false,
        })
    }
}

/// A client TLS stream whose reads first send what earlier writes left buffered.
pub struct FlushingTlsStream {
    inner: TlsStream<TcpStream>,
    /// A write's record may still be in rustls' buffer, not on the socket.
    unflushed: bool,
}

impl fmt::Debug for FlushingTlsStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlushingTlsStream")
            .field("unflushed", &self.unflushed)
            .finish()
    }
}

impl FlushingTlsStream {
    /// Push buffered records towards the socket; `Pending` leaves the waker registered for
    /// writability and the flag set for the next attempt.
    fn poll_pending_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.unflushed {
            return Poll::Ready(Ok(()));
        }
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        if let Poll::Ready(Ok(())) = result {
            self.unflushed = false;
        }
        result
    }
}

impl AsyncRead for FlushingTlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // The peer may be waiting for exactly those bytes before it sends anything back.
        if let Poll::Ready(Err(e)) = this.poll_pending_flush(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for FlushingTlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_pending_flush(cx))?;
        let written = std::task::ready!(Pin::new(&mut this.inner).poll_write(cx, data))?;
        this.unflushed = true;
        // Accepted bytes are reported as written whatever the flush does; a flush that could
        // not finish is finished by the next read, write or flush.
        if let Poll::Ready(Err(e)) = this.poll_pending_flush(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(written))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.unflushed = true;
        this.poll_pending_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl TokioTlsStream for FlushingTlsStream {
    type InnerStream = TlsStream<TcpStream>;

    fn tcp_stream(self) -> suppaftp::FtpResult<TcpStream> {
        Ok(self.inner.into_inner().0)
    }

    fn get_ref(&self) -> &TcpStream {
        self.inner.get_ref().0
    }

    fn mut_ref(&mut self) -> &mut Self::InnerStream {
        &mut self.inner
    }
}
