//! A connection's socket, split between its reader and its writer task.
//!
//! tungstenite reads and decodes the client's frames; nothing is written through it. Every
//! byte to the client goes through the writer task, as complete frames written straight to the
//! socket: the hub frames a group's events once and each subscriber gets those bytes in one
//! write. (Through axum's `WebSocket`, each subscriber's copy of each event was framed again and
//! copied into tungstenite's buffer: about a fifth of the server's CPU in `perf` during the
//! throughput benchmark.)
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf, ReadHalf, WriteHalf};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

use super::handshake::Io;

/// The decoded frames from the client.
pub type Source = WebSocketStream<ReadSide>;
/// Where the writer task writes frames.
pub type Sink = WriteHalf<Io>;

/// The read half, as tungstenite sees it. What tungstenite writes on its own (the pong to a
/// WebSocket ping, the echo of a close) is dropped here: the reader asks the writer for those
/// frames instead (`inbound`), so one task owns everything sent to the client.
pub struct ReadSide(ReadHalf<Io>);

impl AsyncRead for ReadSide {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
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
pub async fn open(io: Io, max_message: usize, read_buffer: usize) -> (Source, Sink) {
    let (read, write) = tokio::io::split(io);
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
        .read_buffer_size(read_buffer)
        .write_buffer_size(0);
    let source = WebSocketStream::from_raw_socket(ReadSide(read), Role::Server, Some(config)).await;
    (source, write)
}
