//! The SFTP channel under russh-sftp, with a side door for big reads and writes.
//!
//! russh-sftp serializes a write request by copying its data into a new packet, and its
//! channel stream copies that packet again into 32 KiB messages for the SSH session: two
//! copies of every uploaded byte before the session's own copy into its encryption buffer.
//! Here the writer builds the request in the buffer it fills anyway ([`WritePacket`]) and
//! hands that buffer, as it is, to the channel ([`Wire::write`]); russh-sftp keeps every
//! other request. Both go out through one queue, so packets never interleave and keep
//! their order (an fstat or close sent after a write reaches the server after it). The
//! answers to our requests are taken out of the incoming stream by their ids (top bit set,
//! which russh-sftp's counter never reaches); everything else is passed on to russh-sftp
//! unchanged. Reads go the same way ([`Wire::read`]): a read's answer is gathered from the
//! session's messages straight into one buffer of its size and handed to the reader as it
//! is, where russh-sftp would copy it into its own read buffer, decode it into a new one,
//! and wake its own task for each answer.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use russh::ChannelMsg;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{Status, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, oneshot};

const SSH_FXP_READ: u8 = 5;
const SSH_FXP_WRITE: u8 = 6;
const SSH_FXP_STATUS: u8 = 101;
const SSH_FXP_DATA: u8 = 103;

/// The most bytes one read or write request carries (`ChunkSize` is held to it).
pub(super) const MAX_CHUNK: u32 = 1 << 20;

/// Ids of our own requests have this bit set; russh-sftp counts up from 1.
const OUR_IDS: u32 = 0x8000_0000;

/// A status answer longer than this is not one of ours (they carry a short message).
const MAX_OUR_STATUS: usize = 64 * 1024;

/// A data answer longer than this is not one of ours (type, id, length, the data).
const MAX_OUR_DATA: usize = 1 + 4 + 4 + MAX_CHUNK as usize;

/// What goes out on the channel, in order.
enum Out {
    Packet(Bytes),
    Eof,
}

/// What the server answered to one of our requests.
#[derive(Debug, PartialEq)]
enum Answer {
    /// A status: its code and message.
    Status(u32, String),
    /// A read's data.
    Data(Bytes),
}

type Waiters = Arc<Mutex<HashMap<u32, oneshot::Sender<Answer>>>>;

/// Our side of one SFTP channel: sends read and write requests past russh-sftp.
pub(super) struct Wire {
    outbox: mpsc::UnboundedSender<Out>,
    waiters: Waiters,
    next_id: AtomicU32,
    timeout: Duration,
}

/// The byte stream russh-sftp runs on: its packets go out through the shared queue, and
/// it reads every incoming packet that is not an answer to one of ours.
pub(super) struct SftpPipe {
    outbox: mpsc::UnboundedSender<Out>,
    inbox: mpsc::UnboundedReceiver<Bytes>,
    pending: Bytes,
}

/// Start the tasks that own `channel` (an SFTP subsystem channel): the ordered sender and
/// the reader that sorts the answers. `timeout` bounds the wait for each write's answer.
pub(super) fn open(
    channel: russh::Channel<russh::client::Msg>,
    timeout: Duration,
) -> (Wire, SftpPipe) {
    let (mut read_half, write_half) = channel.split();
    let (outbox, mut outgoing) = mpsc::unbounded_channel::<Out>();
    tokio::spawn(async move {
        while let Some(out) = outgoing.recv().await {
            match out {
                Out::Packet(bytes) => {
                    if write_half.data_bytes(bytes).await.is_err() {
                        break;
                    }
                }
                Out::Eof => {
                    let _ = write_half.eof().await;
                    break;
                }
            }
        }
        // As russh's own channel stream does when dropped.
        let _ = write_half.close().await;
    });
    let waiters: Waiters = Arc::default();
    let (to_sftp, inbox) = mpsc::unbounded_channel::<Bytes>();
    let sorting = waiters.clone();
    tokio::spawn(async move {
        let mut sorter = Sorter {
            waiters: sorting,
            to_sftp,
            head: BytesMut::with_capacity(9),
            left: 0,
            ours: None,
        };
        while let Some(msg) = read_half.wait().await {
            if let ChannelMsg::Data { data } = msg
                && !sorter.feed(data)
            {
                break;
            }
        }
        // The channel is gone: russh-sftp reads its end, our writes fail.
        sorter.waiters.lock().expect("waiters").clear();
    });
    let wire = Wire {
        outbox: outbox.clone(),
        waiters,
        next_id: AtomicU32::new(0),
        timeout,
    };
    let pipe = SftpPipe {
        outbox,
        inbox,
        pending: Bytes::new(),
    };
    (wire, pipe)
}

/// Splits the incoming byte stream into packets: answers to our requests to their waiters,
/// the rest on to russh-sftp as it came.
struct Sorter {
    waiters: Waiters,
    to_sftp: mpsc::UnboundedSender<Bytes>,
    /// The start of the packet being read (length, type, id), until it is routed.
    head: BytesMut,
    /// Bytes of the current packet still to come after `head`.
    left: usize,
    /// The packet being collected for one of our waiters (`None`: passing on).
    ours: Option<BytesMut>,
}

impl Sorter {
    /// Take in one piece of the stream; false once russh-sftp's end is gone.
    fn feed(&mut self, mut data: Bytes) -> bool {
        while !data.is_empty() {
            if self.left == 0 && self.ours.is_none() {
                // A packet starts: its length, type and id decide where it goes.
                if self.head.len() < 4 {
                    let take = (4 - self.head.len()).min(data.len());
                    self.head.extend_from_slice(&data[..take]);
                    data.advance(take);
                    continue;
                }
                let len = u32::from_be_bytes(self.head[..4].try_into().expect("4 bytes")) as usize;
                let total = 4 + len;
                let want = total.min(9);
                if self.head.len() < want {
                    let take = (want - self.head.len()).min(data.len());
                    self.head.extend_from_slice(&data[..take]);
                    data.advance(take);
                    if self.head.len() < want {
                        continue;
                    }
                }
                let head = self.head.split().freeze();
                let id = (head.len() >= 9)
                    .then(|| u32::from_be_bytes(head[5..9].try_into().expect("4 bytes")));
                let ours = head.len() >= 9
                    && match head[4] {
                        SSH_FXP_STATUS => len <= MAX_OUR_STATUS,
                        SSH_FXP_DATA => len <= MAX_OUR_DATA,
                        _ => false,
                    }
                    && id.is_some_and(|id| {
                        id & OUR_IDS != 0 && self.waiters.lock().expect("waiters").contains_key(&id)
                    });
                self.left = total - head.len();
                if ours {
                    let mut packet = BytesMut::with_capacity(total);
                    packet.extend_from_slice(&head);
                    self.ours = Some(packet);
                } else if self.to_sftp.send(head).is_err() {
                    return false;
                }
            } else {
                let take = self.left.min(data.len());
                let piece = data.split_to(take);
                self.left -= take;
                match &mut self.ours {
                    Some(packet) => packet.extend_from_slice(&piece),
                    None => {
                        if self.to_sftp.send(piece).is_err() {
                            return false;
                        }
                    }
                }
            }
            if self.left == 0
                && let Some(packet) = self.ours.take()
            {
                self.answer(packet);
            }
        }
        true
    }

    /// Hand a status packet (length, type, id, code, message, language) or a data packet
    /// (length, type, id, data as a string) to its waiter. A data packet's bytes are handed
    /// on in the buffer they were gathered in.
    fn answer(&self, packet: BytesMut) {
        let id = u32::from_be_bytes(packet[5..9].try_into().expect("4 bytes"));
        let answer = if packet[4] == SSH_FXP_DATA {
            let mut data = packet.freeze().slice(9..);
            let n = if data.len() >= 4 { data.get_u32() } else { 0 } as usize;
            data.truncate(n);
            Answer::Data(data)
        } else {
            let mut body = &packet[9..];
            let code = if body.len() >= 4 { body.get_u32() } else { 4 };
            let message = if body.len() >= 4 {
                let n = (body.get_u32() as usize).min(body.len());
                String::from_utf8_lossy(&body[..n]).into_owned()
            } else {
                String::new()
            };
            Answer::Status(code, message)
        };
        if let Some(waiter) = self.waiters.lock().expect("waiters").remove(&id) {
            let _ = waiter.send(answer);
        }
    }
}

/// A write request built in place: the header is reserved at the front of the buffer the
/// data is copied into, and filled in when it is sent.
pub(super) struct WritePacket {
    buf: Vec<u8>,
    header: usize,
}

impl WritePacket {
    /// An empty request on `handle` with room for `capacity` bytes of data.
    pub(super) fn new(handle: &str, capacity: usize) -> Self {
        // length, type, id, handle (string), offset, data length
        let header = 4 + 1 + 4 + 4 + handle.len() + 8 + 4;
        let mut buf = Vec::with_capacity(header + capacity);
        buf.resize(header, 0);
        buf[9..13].copy_from_slice(&(handle.len() as u32).to_be_bytes());
        buf[13..13 + handle.len()].copy_from_slice(handle.as_bytes());
        WritePacket { buf, header }
    }

    /// Bytes of data in it.
    pub(super) fn len(&self) -> usize {
        self.buf.len() - self.header
    }

    /// Whether it holds no data.
    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Append data.
    pub(super) fn extend(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The finished packet for request `id` at `offset`.
    fn finish(mut self, id: u32, offset: u64) -> Bytes {
        let header = self.header;
        let data_len = (self.buf.len() - header) as u32;
        let len = (self.buf.len() - 4) as u32;
        self.buf[..4].copy_from_slice(&len.to_be_bytes());
        self.buf[4] = SSH_FXP_WRITE;
        self.buf[5..9].copy_from_slice(&id.to_be_bytes());
        self.buf[header - 12..header - 4].copy_from_slice(&offset.to_be_bytes());
        self.buf[header - 4..header].copy_from_slice(&data_len.to_be_bytes());
        Bytes::from(self.buf)
    }
}

impl Wire {
    /// Send `packet` as a write at `offset` now (in order with every request sent before
    /// it on this channel); the future waits for the server's answer.
    pub(super) fn write(
        &self,
        packet: WritePacket,
        offset: u64,
    ) -> impl Future<Output = Result<(), SftpError>> + Send + 'static {
        let id = self.next_id();
        let answer = self.send(id, packet.finish(id, offset));
        async move {
            match answer.await? {
                Answer::Status(0, _) => Ok(()),
                other => Err(refused(id, other)),
            }
        }
    }

    /// Send a read of up to `len` bytes at `offset` of `handle` now; the future waits for
    /// the data (shorter than `len` where the server answers short), or the status, end of
    /// file included, as an error.
    pub(super) fn read(
        &self,
        handle: &str,
        offset: u64,
        len: u32,
    ) -> impl Future<Output = Result<Bytes, SftpError>> + Send + 'static {
        let id = self.next_id();
        let mut packet = BytesMut::with_capacity(4 + 1 + 4 + 4 + handle.len() + 8 + 4);
        packet.put_u32((1 + 4 + 4 + handle.len() + 8 + 4) as u32);
        packet.put_u8(SSH_FXP_READ);
        packet.put_u32(id);
        packet.put_u32(handle.len() as u32);
        packet.put_slice(handle.as_bytes());
        packet.put_u64(offset);
        packet.put_u32(len);
        let answer = self.send(id, packet.freeze());
        async move {
            match answer.await? {
                Answer::Data(data) => Ok(data),
                other => Err(refused(id, other)),
            }
        }
    }

    fn next_id(&self) -> u32 {
        OUR_IDS | (self.next_id.fetch_add(1, Ordering::Relaxed) & !OUR_IDS)
    }

    /// Send request `id` now; the future waits (up to the timeout) for its answer.
    fn send(
        &self,
        id: u32,
        packet: Bytes,
    ) -> impl Future<Output = Result<Answer, SftpError>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        // Waiting before sending: the answer may come before this returns.
        self.waiters.lock().expect("waiters").insert(id, tx);
        let sent = self.outbox.send(Out::Packet(packet));
        let (waiters, timeout) = (self.waiters.clone(), self.timeout);
        async move {
            if sent.is_err() {
                waiters.lock().expect("waiters").remove(&id);
                return Err(SftpError::UnexpectedBehavior("sender dropped".into()));
            }
            match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(answer)) => Ok(answer),
                Ok(Err(_)) => Err(SftpError::UnexpectedBehavior("sender dropped".into())),
                Err(_) => {
                    waiters.lock().expect("waiters").remove(&id);
                    Err(SftpError::Timeout)
                }
            }
        }
    }
}

/// The error for an answer that is not the one the request succeeds with.
fn refused(id: u32, answer: Answer) -> SftpError {
    match answer {
        Answer::Status(code, message) => SftpError::Status(Status {
            id,
            status_code: status_code(code),
            error_message: message,
            language_tag: String::new(),
        }),
        Answer::Data(_) => SftpError::UnexpectedBehavior("data in answer to a write".into()),
    }
}

fn status_code(code: u32) -> StatusCode {
    match code {
        0 => StatusCode::Ok,
        1 => StatusCode::Eof,
        2 => StatusCode::NoSuchFile,
        3 => StatusCode::PermissionDenied,
        5 => StatusCode::BadMessage,
        6 => StatusCode::NoConnection,
        7 => StatusCode::ConnectionLost,
        8 => StatusCode::OpUnsupported,
        _ => StatusCode::Failure,
    }
}

impl AsyncRead for SftpPipe {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        while self.pending.is_empty() {
            match self.inbox.poll_recv(cx) {
                Poll::Ready(Some(bytes)) => self.pending = bytes,
                // The channel ended: end of stream.
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
        let n = self.pending.len().min(buf.remaining());
        buf.put_slice(&self.pending[..n]);
        self.pending.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for SftpPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        // russh-sftp writes one whole packet per call: taken whole, it stays in one piece
        // in the queue.
        match self.outbox.send(Out::Packet(Bytes::copy_from_slice(buf))) {
            Ok(()) => Poll::Ready(Ok(buf.len())),
            Err(_) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the SFTP channel is closed",
            ))),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let _ = self.outbox.send(Out::Eof);
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_packet(id: u32, code: u32, message: &str) -> Vec<u8> {
        let mut p = Vec::new();
        let len = 1 + 4 + 4 + 4 + message.len() + 4;
        p.extend_from_slice(&(len as u32).to_be_bytes());
        p.push(SSH_FXP_STATUS);
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&code.to_be_bytes());
        p.extend_from_slice(&(message.len() as u32).to_be_bytes());
        p.extend_from_slice(message.as_bytes());
        p.extend_from_slice(&0u32.to_be_bytes());
        p
    }

    fn data_packet(id: u32, data: &[u8]) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&((1 + 4 + 4 + data.len()) as u32).to_be_bytes());
        p.push(SSH_FXP_DATA);
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&(data.len() as u32).to_be_bytes());
        p.extend_from_slice(data);
        p
    }

    /// The read request as the protocol has it, sent at once, and its data answer handed
    /// to the caller; an end-of-file status comes back as that status.
    #[tokio::test]
    async fn read_sends_the_sftp_read_request_and_returns_the_data() {
        let (outbox, mut outgoing) = mpsc::unbounded_channel();
        let wire = Wire {
            outbox,
            waiters: Arc::default(),
            next_id: AtomicU32::new(0),
            timeout: Duration::from_secs(5),
        };
        let first = wire.read("h1", 0x0102_0304_0506_0708, 4096);
        let Some(Out::Packet(sent)) = outgoing.try_recv().ok() else {
            panic!("the read was not sent when asked for");
        };
        let mut want = Vec::new();
        want.extend_from_slice(&(1 + 4 + 4 + 2 + 8 + 4u32).to_be_bytes());
        want.push(SSH_FXP_READ);
        want.extend_from_slice(&OUR_IDS.to_be_bytes());
        want.extend_from_slice(&2u32.to_be_bytes());
        want.extend_from_slice(b"h1");
        want.extend_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
        want.extend_from_slice(&4096u32.to_be_bytes());
        assert_eq!(&sent[..], &want[..]);
        let second = wire.read("h1", 4096, 4096);
        let (to_sftp, _inbox) = mpsc::unbounded_channel();
        let mut sorter = Sorter {
            waiters: wire.waiters.clone(),
            to_sftp,
            head: BytesMut::new(),
            left: 0,
            ours: None,
        };
        assert!(sorter.feed(Bytes::from(data_packet(OUR_IDS, b"first"))));
        assert!(sorter.feed(Bytes::from(status_packet(OUR_IDS | 1, 1, "EOF"))));
        assert_eq!(first.await.unwrap(), Bytes::from_static(b"first"));
        match second.await {
            Err(SftpError::Status(s)) => assert_eq!(s.status_code, StatusCode::Eof),
            other => panic!("end of file came back as {other:?}"),
        }
    }

    #[test]
    fn write_packet_is_the_sftp_write_request() {
        let mut packet = WritePacket::new("h1", 8);
        packet.extend(b"abc");
        packet.extend(b"de");
        assert_eq!(packet.len(), 5);
        let bytes = packet.finish(0x8000_0007, 0x0102_0304_0506_0708);
        let mut want = Vec::new();
        want.extend_from_slice(&(1 + 4 + 4 + 2 + 8 + 4 + 5u32).to_be_bytes());
        want.push(SSH_FXP_WRITE);
        want.extend_from_slice(&0x8000_0007u32.to_be_bytes());
        want.extend_from_slice(&2u32.to_be_bytes());
        want.extend_from_slice(b"h1");
        want.extend_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
        want.extend_from_slice(&5u32.to_be_bytes());
        want.extend_from_slice(b"abcde");
        assert_eq!(&bytes[..], &want[..]);
    }

    /// Every split of a stream holding other packets around answers to ours, fed byte
    /// by byte or in pieces: ours go to their waiters, the rest arrives unchanged.
    #[test]
    fn sorter_takes_out_our_answers_and_passes_on_the_rest() {
        let mut stream = Vec::new();
        let theirs_a = status_packet(5, 0, "");
        let data = data_packet(6, b"xyz");
        // A version packet: no id, shorter than some headers.
        let version = vec![0, 0, 0, 5, 2, 0, 0, 0, 3];
        stream.extend_from_slice(&version);
        stream.extend_from_slice(&theirs_a);
        stream.extend_from_slice(&status_packet(OUR_IDS | 1, 0, ""));
        stream.extend_from_slice(&data);
        stream.extend_from_slice(&status_packet(OUR_IDS | 2, 4, "disk full"));
        stream.extend_from_slice(&data_packet(OUR_IDS | 3, b"our data"));
        // Ours by its bit but with nobody waiting: passed on.
        let stray = status_packet(OUR_IDS | 9, 0, "");
        stream.extend_from_slice(&stray);
        let mut passed = version.clone();
        passed.extend_from_slice(&theirs_a);
        passed.extend_from_slice(&data);
        passed.extend_from_slice(&stray);
        for piece in [1, 2, 3, 7, 13, stream.len()] {
            let waiters: Waiters = Arc::default();
            let (tx1, mut rx1) = oneshot::channel();
            let (tx2, mut rx2) = oneshot::channel();
            waiters.lock().unwrap().insert(OUR_IDS | 1, tx1);
            waiters.lock().unwrap().insert(OUR_IDS | 2, tx2);
            let (tx3, mut rx3) = oneshot::channel();
            waiters.lock().unwrap().insert(OUR_IDS | 3, tx3);
            let (to_sftp, mut inbox) = mpsc::unbounded_channel();
            let mut sorter = Sorter {
                waiters: waiters.clone(),
                to_sftp,
                head: BytesMut::new(),
                left: 0,
                ours: None,
            };
            for chunk in stream.chunks(piece) {
                assert!(sorter.feed(Bytes::copy_from_slice(chunk)));
            }
            let mut got = Vec::new();
            while let Ok(b) = inbox.try_recv() {
                got.extend_from_slice(&b);
            }
            assert_eq!(got, passed, "pieces of {piece}");
            assert_eq!(rx1.try_recv().unwrap(), Answer::Status(0, String::new()));
            assert_eq!(
                rx2.try_recv().unwrap(),
                Answer::Status(4, "disk full".to_string())
            );
            assert_eq!(
                rx3.try_recv().unwrap(),
                Answer::Data(Bytes::from_static(b"our data"))
            );
            assert!(waiters.lock().unwrap().is_empty());
        }
    }
}
