//! A connection's socket, split between its reader and its writer task.
//!
//! tungstenite reads and decodes the client's frames; nothing is written through it. Every
//! byte to the client goes through the writer task, as complete frames written straight to the
//! socket: the hub frames a group's events once and each subscriber gets those bytes in one
//! write. (Through axum's `WebSocket`, each subscriber's copy of each event was framed again and
//! copied into tungstenite's buffer. Measured: bench/NOTES.md, "What was changed in the server,
//! and why", item 8.)
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use std::sync::Arc;

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::tcp::OwnedReadHalf;
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

use super::handshake::Io;
use crate::hub::socket::ClientSocket;
use crate::transport::limits::PartialBudget;

/// The decoded frames from the client.
pub type Source = WebSocketStream<ReadSide>;
/// Where the writer task (and the hub) write frames.
pub type Sink = Arc<ClientSocket>;

/// The read half, as tungstenite sees it. What tungstenite writes on its own (the pong to a
/// WebSocket ping, the echo of a close) is dropped here: the reader asks the writer for those
/// frames instead (`inbound`), so one task owns everything sent to the client.
///
/// It also follows the frame boundaries in the bytes it passes on, to bound what an
/// incomplete message may hold: tungstenite reserves a frame's announced length when its header
/// arrives and keeps a fragmented message until its last frame, so without this a client could
/// pin up to --max-message-bytes per connection for as long as it liked. A message must now
/// complete within the frame timeout (else [`ReadLimit::TooSlow`]), and the bytes announced by
/// incomplete messages are charged to the user's and the server's budget (else
/// [`ReadLimit::OverBudget`]).
pub struct ReadSide {
    /// What the client sent right after its upgrade request, read before the socket.
    read_ahead: Option<Box<Bytes>>,
    inner: OwnedReadHalf,
    frames: FrameTracker,
    budget: PartialBudget,
    timeout: Duration,
    /// Armed while a message is incomplete and the socket has nothing more for now.
    timer: Option<Pin<Box<Sleep>>>,
}

/// Why the reader stopped reading: carried as the `io::Error` tungstenite reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReadLimit {
    #[error("a message was not completed within the frame timeout")]
    TooSlow,
    #[error("incomplete messages over the user's or the server's byte budget")]
    OverBudget,
}

impl ReadLimit {
    /// The limit behind a read error, if it was one.
    pub fn of(e: &io::Error) -> Option<ReadLimit> {
        e.get_ref()?.downcast_ref::<ReadLimit>().copied()
    }
}

impl ReadSide {
    fn refuse(&mut self, limit: ReadLimit) -> Poll<io::Result<()>> {
        self.budget.release();
        self.timer = None;
        Poll::Ready(Err(io::Error::other(limit)))
    }
}

impl AsyncRead for ReadSide {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        let read = match this.read_ahead.as_mut() {
            Some(ahead) => {
                let n = ahead.len().min(buf.remaining());
                buf.put_slice(&ahead[..n]);
                ahead.advance(n);
                if !ahead.has_remaining() {
                    this.read_ahead = None;
                }
                Poll::Ready(Ok(()))
            }
            None => Pin::new(&mut this.inner).poll_read(cx, buf),
        };
        match read {
            Poll::Ready(Ok(())) => {
                let read = &buf.filled()[before..];
                if this.frames.observe(read, &mut this.budget).is_err() {
                    return this.refuse(ReadLimit::OverBudget);
                }
                if this.frames.started.is_none() {
                    this.timer = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                let Some(started) = this.frames.started else {
                    return Poll::Pending;
                };
                let deadline = started + this.timeout;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.deadline() != deadline {
                    timer.as_mut().reset(deadline);
                }
                if timer.as_mut().poll(cx).is_ready() {
                    return this.refuse(ReadLimit::TooSlow);
                }
                Poll::Pending
            }
            other => other,
        }
    }
}

/// Follows WebSocket frame headers (RFC 6455 5.2) through the bytes read, without keeping any
/// payload: where each frame ends, and whether a message is incomplete.
#[derive(Default)]
struct FrameTracker {
    /// The current frame's header, as far as it has arrived.
    head: [u8; 14],
    have: usize,
    /// Payload bytes of the current frame still to come, once its header is complete.
    remaining: u64,
    in_payload: bool,
    /// The current frame is a data frame with FIN set / a control frame.
    fin: bool,
    control: bool,
    /// Inside a fragmented message whose final frame has not arrived.
    fragmented: bool,
    /// When the incomplete message (or frame) began; None between messages.
    started: Option<Instant>,
    /// The most one frame is charged: tungstenite refuses a longer one (and the connection)
    /// before it holds more than this.
    max_charge: u64,
}

/// A frame header's size once its first two bytes are known.
fn header_size(second: u8) -> usize {
    let extended = match second & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    2 + extended + mask
}

impl FrameTracker {
    fn observe(&mut self, mut bytes: &[u8], budget: &mut PartialBudget) -> Result<(), ()> {
        while !bytes.is_empty() {
            if self.started.is_none() {
                self.started = Some(Instant::now());
            }
            if self.in_payload {
                let take = self.remaining.min(bytes.len() as u64);
                bytes = &bytes[take as usize..];
                self.remaining -= take;
                if self.remaining == 0 {
                    self.end_frame(budget);
                }
                continue;
            }
            let need = if self.have < 2 {
                2
            } else {
                header_size(self.head[1])
            };
            let take = (need - self.have).min(bytes.len());
            self.head[self.have..self.have + take].copy_from_slice(&bytes[..take]);
            self.have += take;
            bytes = &bytes[take..];
            if self.have < 2 || self.have < header_size(self.head[1]) {
                continue;
            }
            let len = match self.head[1] & 0x7f {
                126 => u64::from(u16::from_be_bytes([self.head[2], self.head[3]])),
                127 => u64::from_be_bytes(self.head[2..10].try_into().unwrap_or_default()),
                n => u64::from(n),
            };
            self.fin = self.head[0] & 0x80 != 0;
            self.control = self.head[0] & 0x08 != 0;
            self.have = 0;
            budget.charge(len.min(self.max_charge)).map_err(|_| ())?;
            self.remaining = len;
            self.in_payload = true;
            if len == 0 {
                self.end_frame(budget);
            }
        }
        Ok(())
    }

    fn end_frame(&mut self, budget: &mut PartialBudget) {
        self.in_payload = false;
        if !self.control {
            self.fragmented = !self.fin;
        }
        if !self.fragmented {
            budget.release();
            self.started = None;
        }
    }
}

impl AsyncWrite for ReadSide {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Splits an upgraded connection. `read_buffer`: tungstenite's initial read buffer (it is
/// allocated up front and zero-filled before every read; larger frames grow it).
/// `frame_timeout` and `budget`: the bounds on incomplete messages (see [`ReadSide`]).
pub async fn open(
    io: Io,
    max_message: usize,
    read_buffer: usize,
    frame_timeout: Duration,
    budget: PartialBudget,
) -> (Source, Sink) {
    let (read, write) = io.tcp.into_split();
    let read = ReadSide {
        read_ahead: io.read_ahead,
        inner: read,
        frames: FrameTracker {
            max_charge: max_message as u64,
            ..FrameTracker::default()
        },
        budget,
        timeout: frame_timeout,
        timer: None,
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
        .read_buffer_size(read_buffer)
        .write_buffer_size(0);
    let source = WebSocketStream::from_raw_socket(read, Role::Server, Some(config)).await;
    (source, Arc::new(ClientSocket::new(write)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::limits::ConnectionLimits;
    use std::sync::Arc;

    /// A masked frame header: `first` is FIN/opcode, `len` the payload length.
    fn header(first: u8, len: u64) -> Vec<u8> {
        let mut h = vec![first];
        match len {
            0..=125 => h.push(0x80 | len as u8),
            126..=0xffff => {
                h.push(0x80 | 126);
                h.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                h.push(0x80 | 127);
                h.extend_from_slice(&len.to_be_bytes());
            }
        }
        h.extend_from_slice(&[1, 2, 3, 4]);
        h
    }

    #[tokio::test]
    async fn the_tracker_follows_frames_split_anywhere_and_fragmented_messages() {
        let limits = Arc::new(ConnectionLimits::default());
        let permit = limits.try_acquire("u", 10, 10).expect("permit");
        let mut budget = permit.partial_budget(1_000_000, 1_000_000);
        let mut t = FrameTracker {
            max_charge: 100_000,
            ..FrameTracker::default()
        };
        // Two whole frames in one read, then one split byte by byte.
        let mut bytes = header(0x82, 3);
        bytes.extend_from_slice(b"abc");
        bytes.extend(header(0x82, 300));
        bytes.extend(vec![0; 300]);
        t.observe(&bytes, &mut budget).expect("fits");
        assert!(t.started.is_none());
        assert_eq!(limits.partial_bytes(), 0);
        let mut split = header(0x82, 70_000);
        split.extend(vec![0; 70_000]);
        for (i, b) in split.iter().enumerate() {
            t.observe(std::slice::from_ref(b), &mut budget)
                .expect("fits");
            if i + 1 < split.len() {
                assert!(t.started.is_some());
            }
        }
        assert!(t.started.is_none());
        assert_eq!(limits.partial_bytes(), 0);
        // A fragmented message with a ping between its fragments stays charged to its end.
        t.observe(&header(0x02, 10), &mut budget)
            .expect("first fragment");
        t.observe(&[0; 10], &mut budget).expect("payload");
        assert_eq!(limits.partial_bytes(), 10);
        let mut ping = header(0x89, 2);
        ping.extend_from_slice(b"hi");
        t.observe(&ping, &mut budget).expect("ping");
        assert!(t.started.is_some(), "still inside the message");
        let mut last = header(0x80, 5);
        last.extend_from_slice(&[0; 5]);
        t.observe(&last, &mut budget).expect("last fragment");
        assert!(t.started.is_none());
        assert_eq!(limits.partial_bytes(), 0);
        // A header announcing more than a message may hold is charged the most it can hold.
        t.observe(&header(0x82, 1 << 40), &mut budget)
            .expect("clamped");
        assert_eq!(limits.partial_bytes(), 100_000);
        drop(budget);
        assert_eq!(limits.partial_bytes(), 0);
    }
}
