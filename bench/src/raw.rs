//! A subscriber's connection, read straight off the socket.
//!
//! Subscribers receive every frame of every mutation: 10,000 mutations/s to 100 subscribers is
//! two million frames a second, on the same two CPUs as the server being measured. Through
//! tokio-tungstenite each frame cost a poll through its compat layer, a zero-filled read buffer
//! and a `Bytes` split (measured: bench/NOTES.md, "How pm-bench measures"). Here one read takes
//! whatever the kernel holds, and every complete message in it is handed over as a slice of the
//! buffer, with one clock reading per read. The handshake and the frame format are tungstenite's
//! (`client_async`, `FrameHeader::parse`, `Frame::format`); only the loop around them is ours.
use std::io::Cursor;

use anyhow::{bail, Context, Result};
use bytes::{Buf, BytesMut};
use pm_shared::proto::{Payload, WebSocketMessage};
use prost::Message as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};

use crate::net::{self, Ws, REQUEST_TIMEOUT};

/// Free space a read needs; below it the buffer grows by [`GROW`].
const MIN_SPACE: usize = 4 * 1024;
const GROW: usize = 16 * 1024;
/// Largest message accepted: far above the largest snapshot a scenario asks for (measured:
/// bench/NOTES.md, "Figures that used to live in comments").
const MAX_MESSAGE: usize = 256 << 20;

/// What [`RawWs::drain`] hands over.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// A complete binary message.
    Binary(&'a [u8]),
    /// The server closed the WebSocket.
    Close,
}

pub struct RawWs {
    stream: TcpStream,
    buf: BytesMut,
    /// A message that arrived in several frames, until its last one.
    fragments: Option<Vec<u8>>,
}

impl RawWs {
    /// Takes over a connection right after its handshake. The server sends nothing before it is
    /// asked, so tungstenite has buffered nothing that would be lost here.
    pub fn new(ws: Ws) -> RawWs {
        RawWs {
            stream: ws.into_inner(),
            buf: BytesMut::new(),
            fragments: None,
        }
    }

    /// Sends one request as a masked binary frame (clients must mask).
    pub async fn send(&mut self, message_id: &str, payload: Payload) -> Result<()> {
        let data = WebSocketMessage {
            message_id: message_id.to_string(),
            payload: Some(payload),
            ..Default::default()
        }
        .encode_to_vec();
        let mask = uuid::Uuid::new_v4().as_bytes()[..4]
            .try_into()
            .context("mask")?;
        let header = FrameHeader {
            opcode: OpCode::Data(Data::Binary),
            mask: Some(mask),
            ..FrameHeader::default()
        };
        let mut out = Vec::with_capacity(data.len() + 14);
        Frame::from_payload(header, data.into()).format(&mut out)?;
        self.stream.write_all(&out).await?;
        Ok(())
    }

    /// Waits until more bytes arrived; false when the server ended the connection.
    /// Cancel-safe: a cancelled wait loses nothing.
    pub async fn fill(&mut self) -> Result<bool> {
        if self.buf.capacity() - self.buf.len() < MIN_SPACE {
            self.buf.reserve(GROW);
        }
        Ok(self.stream.read_buf(&mut self.buf).await? > 0)
    }

    /// Hands every complete message in the buffer to `f`, in order, until `f` returns false;
    /// what was handed over is dropped from the buffer. Pings and pongs are skipped (a server
    /// that pings gets no pong from a subscriber, which only listens).
    pub fn drain(&mut self, mut f: impl FnMut(Incoming<'_>) -> bool) -> Result<()> {
        loop {
            let mut cursor = Cursor::new(&self.buf[..]);
            let Some((header, len)) = FrameHeader::parse(&mut cursor)? else {
                return Ok(());
            };
            let start = cursor.position() as usize;
            let len = usize::try_from(len)
                .ok()
                .filter(|&l| l <= MAX_MESSAGE)
                .context("frame too long")?;
            if self.buf.len() - start < len {
                self.buf.reserve(start + len - self.buf.len());
                return Ok(());
            }
            if header.mask.is_some() {
                bail!("the server sent a masked frame");
            }
            let payload = &self.buf[start..start + len];
            let more = match (header.opcode, header.is_final, &mut self.fragments) {
                (OpCode::Data(Data::Binary), true, None) => f(Incoming::Binary(payload)),
                (OpCode::Data(Data::Binary), false, fragments @ None) => {
                    *fragments = Some(payload.to_vec());
                    true
                }
                (OpCode::Data(Data::Continue), is_final, Some(message)) => {
                    if message.len() + len > MAX_MESSAGE {
                        bail!("message too long");
                    }
                    message.extend_from_slice(payload);
                    match is_final {
                        true => {
                            let message = self.fragments.take().unwrap_or_default();
                            f(Incoming::Binary(&message))
                        }
                        false => true,
                    }
                }
                (OpCode::Control(Control::Close), _, _) => f(Incoming::Close),
                (OpCode::Control(_), _, _) => true,
                (OpCode::Data(Data::Text), _, _) => {
                    bail!("the server sent a text frame; pm speaks binary protobuf")
                }
                (opcode, _, _) => bail!("unexpected {opcode} frame"),
            };
            self.buf.advance(start + len);
            if !more {
                return Ok(());
            }
        }
    }

    /// Sends a request and reads until its response; frames before it are dropped, frames after
    /// it stay buffered for the next [`drain`](Self::drain).
    pub async fn rpc(&mut self, payload: Payload) -> Result<WebSocketMessage> {
        let id = uuid::Uuid::new_v4().to_string();
        tokio::time::timeout(REQUEST_TIMEOUT, self.send(&id, payload))
            .await
            .context("send timed out")??;
        let deadline = tokio::time::Instant::now() + REQUEST_TIMEOUT;
        loop {
            let mut answer = None;
            let mut closed = false;
            self.drain(|incoming| match incoming {
                Incoming::Binary(bytes) => {
                    answer = net::reply_to(&id, bytes);
                    answer.is_none()
                }
                Incoming::Close => {
                    closed = true;
                    false
                }
            })?;
            if let Some(answer) = answer {
                return answer;
            }
            if closed {
                bail!("connection closed");
            }
            let more = tokio::time::timeout_at(deadline, self.fill())
                .await
                .map_err(|_| {
                    anyhow::anyhow!("no response to request {id} within {REQUEST_TIMEOUT:?}")
                })??;
            if !more {
                bail!("connection ended");
            }
        }
    }

    /// Subscribes live to `project_id`.
    pub async fn subscribe(&mut self, project_id: &str) -> Result<()> {
        net::subscribed(self.rpc(net::subscribe_request(project_id)).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan;
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    fn event(seq: u64) -> Vec<u8> {
        WebSocketMessage {
            seq,
            stream: "p".into(),
            ..Default::default()
        }
        .encode_to_vec()
    }

    /// Runs a tokio-tungstenite server that answers the first request by echoing its
    /// message_id, then sends what `script` holds, and returns what a RawWs client collected.
    async fn against(script: Vec<Message>) -> (Vec<u64>, bool, Result<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            let Some(Ok(Message::Binary(request))) = ws.next().await else {
                return;
            };
            let id = WebSocketMessage::decode(request).unwrap().message_id;
            let reply = WebSocketMessage {
                message_id: id,
                ..Default::default()
            };
            // The reply and the first events in one write: what follows the reply must stay
            // buffered for the subscriber.
            ws.feed(Message::Binary(reply.encode_to_vec().into()))
                .await
                .unwrap();
            for m in script {
                let _ = ws.feed(m).await;
            }
            let _ = ws.flush().await;
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        });
        let tcp = TcpStream::connect(addr).await.unwrap();
        let (ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/ws"), tcp)
            .await
            .unwrap();
        let mut raw = RawWs::new(ws);
        raw.subscribe("p").await.unwrap();
        let (mut seqs, mut closed) = (Vec::new(), false);
        let result = loop {
            let drained = raw.drain(|incoming| match incoming {
                Incoming::Binary(b) => {
                    seqs.push(scan::peek(b).map_or(0, |p| p.seq));
                    true
                }
                Incoming::Close => {
                    closed = true;
                    false
                }
            });
            if drained.is_err() || closed {
                break drained;
            }
            match raw.fill().await {
                Ok(true) => {}
                Ok(false) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        (seqs, closed, result)
    }

    #[tokio::test]
    async fn reads_messages_fragments_and_close_in_order() {
        let long = event(3);
        let (head, tail) = long.split_at(long.len() / 2);
        let script = vec![
            Message::Binary(event(1).into()),
            Message::Ping(b"hi".to_vec().into()),
            Message::Binary(event(2).into()),
            Message::Frame(Frame::message(
                head.to_vec(),
                OpCode::Data(Data::Binary),
                false,
            )),
            Message::Frame(Frame::message(
                tail.to_vec(),
                OpCode::Data(Data::Continue),
                true,
            )),
            Message::Binary(vec![0u8; 70_000].into()),
            Message::Binary(event(4).into()),
            Message::Close(None),
        ];
        let (seqs, closed, result) = against(script).await;
        result.unwrap();
        assert_eq!(seqs, vec![1, 2, 3, 0, 4]);
        assert!(closed);
    }

    #[tokio::test]
    async fn refuses_text_and_stray_continuations() {
        let (seqs, closed, result) = against(vec![
            Message::Binary(event(1).into()),
            Message::Text("no".into()),
        ])
        .await;
        assert_eq!(seqs, vec![1]);
        assert!(!closed);
        assert!(
            result.unwrap_err().to_string().contains("text"),
            "a text frame is refused"
        );

        let stray = Frame::message(event(2), OpCode::Data(Data::Continue), true);
        let (seqs, _, result) = against(vec![Message::Frame(stray)]).await;
        assert!(seqs.is_empty());
        assert!(result.is_err(), "a continuation without a start is refused");

        // Servers must not mask (RFC 6455 5.1).
        let header = FrameHeader {
            opcode: OpCode::Data(Data::Binary),
            mask: Some([1, 2, 3, 4]),
            ..FrameHeader::default()
        };
        let masked = Frame::from_payload(header, event(3).into());
        let (seqs, _, result) = against(vec![Message::Frame(masked)]).await;
        assert!(seqs.is_empty());
        let error = result.unwrap_err().to_string();
        assert!(error.contains("masked"), "{error}");
    }
}
