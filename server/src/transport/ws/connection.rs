//! One connection's reader: it runs the connection (starting the writer and the request
//! worker, reading frames until the client or the server ends it, then winding down) and
//! decides what each incoming frame is without awaiting.
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use pm_shared::proto::{self, Payload, WebSocketMessage};
use prost::Message as _;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tracing::Instrument as _;

use crate::commands::Actor;
use crate::error::AppError;
use crate::frames;
use crate::hub::{ConnId, CutOff, Subscriber};
use crate::transport::limits::{PartialBudget, RateLimiter};
use crate::transport::state::{AppState, SharedState};

use super::close;
use super::handshake::Io;
use super::outbox::{BoxedSend, Outbox};
use super::replies::{error_reply, reply};
use super::socket::{self, Sink, Source};
use super::worker::request_worker;
use super::write_loop::write_loop;

/// How many decoded requests may wait for the worker before the reader stops reading.
const PENDING_REQUESTS: usize = 64;
/// Direct replies (Pong, frame errors) waiting to be written; beyond this the reader waits, so a
/// client that floods without reading cannot grow server memory.
const DIRECT_LANE: usize = 64;
/// tungstenite's read buffer per connection. It is allocated up front and zero-filled before
/// every read, so its 128 KiB default was held by every idle connection and cleared on every
/// read (measured: bench/NOTES.md, "What was changed in the server, and why", item 1).
/// Requests are small; a larger frame grows the buffer as it arrives.
const READ_BUFFER: usize = 512;
/// How long a closing connection may take to drain.
const LINGER: Duration = Duration::from_secs(3);

pub(super) enum Direct {
    /// Complete frames (see `frames`).
    Frame(Bytes),
    Close(u16, &'static str),
}

/// The sending side of the direct lane. Items travel boxed: a channel allocates its first block
/// of 32 slots up front, and every idle connection has one of these.
struct DirectLane(mpsc::Sender<Box<Direct>>);

impl DirectLane {
    fn send(&self, d: Direct) -> BoxedSend<'_> {
        Box::pin(async move { self.0.send(Box::new(d)).await.map_err(|_| ()) })
    }
}

pub(super) async fn connection(io: Io, state: SharedState, actor: Actor, budget: PartialBudget) {
    let frame_timeout = Duration::from_secs(state.config.ws_frame_timeout_secs.max(1));
    let (mut source, sink): (Source, Sink) = socket::open(
        io,
        state.config.max_message_bytes,
        READ_BUFFER,
        frame_timeout,
        budget,
    )
    .await;
    let (queue_tx, queue_rx) = mpsc::channel(state.config.send_buffer.max(1));
    let (direct_tx, direct_rx) = mpsc::channel(DIRECT_LANE);
    let direct_tx = DirectLane(direct_tx);
    let cut_off = Arc::new(CutOff::default());
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    let subscriber = Subscriber {
        user_id: actor.user_id.clone(),
        queue: queue_tx,
        queued_bytes: queued_bytes.clone(),
        max_bytes: state.config.send_buffer_bytes.max(1),
        cut_off: cut_off.clone(),
        socket: Some(sink.clone()),
    };
    let outbox = Outbox::of(subscriber.clone());
    let conn = state.hub.register(subscriber);
    tracing::Span::current().record("conn", conn);
    state.metrics.ws_connections_opened.increment(1);
    tracing::debug!("websocket connected");

    let writer = tokio::spawn(
        write_loop(
            sink,
            queue_rx,
            direct_rx,
            cut_off,
            queued_bytes.clone(),
            state.store.epoch(),
            state.metrics.clone(),
        )
        .instrument(tracing::Span::current()),
    );
    let (request_tx, request_rx) = mpsc::channel(PENDING_REQUESTS);
    let worker = tokio::spawn(
        request_worker(state.clone(), conn, actor, request_rx, outbox)
            .instrument(tracing::Span::current()),
    );

    let mut shutdown = state.shutdown_signal();
    let mut limiter = RateLimiter::new(
        state.config.rate_limit_per_sec,
        state.config.rate_limit_burst,
        state.connections.clock.now(),
    );
    loop {
        let frame = tokio::select! {
            frame = source.next() => frame,
            _ = until_shutdown(&mut shutdown) => {
                let _ = direct_tx.send(Direct::Close(close::GOING_AWAY, "server shutting down")).await;
                break;
            }
        };
        // Decided without awaiting, then at most one (boxed) wait: the reader's task lives as
        // long as the connection, and everything it holds across an await is paid by every
        // idle connection.
        match inbound(&state, conn, &mut limiter, frame) {
            Inbound::Request(msg) => {
                if Box::pin(request_tx.send(msg)).await.is_err() {
                    break;
                }
            }
            Inbound::Answer(bytes) => {
                if direct_tx.send(Direct::Frame(bytes)).await.is_err() {
                    break;
                }
            }
            Inbound::Close(code, reason) => {
                // Waits for room behind the pongs a flooding client left unread, but not for
                // longer than the connection may linger.
                let close = direct_tx.send(Direct::Close(code, reason));
                let _ = Box::pin(tokio::time::timeout(LINGER, close)).await;
                break;
            }
            Inbound::End => break,
            Inbound::Nothing => {}
        }
    }

    // Wind down: the worker finishes the request it is on, the writer drains what is queued.
    // A client that stopped reading cannot hold this up for longer than LINGER.
    state.hub.unregister(conn);
    state.presence.leave(conn);
    drop(request_tx);
    drop(direct_tx);
    let (stop_worker, stop_writer) = (worker.abort_handle(), writer.abort_handle());
    // Boxed, like the writes below: a future holding a timer is large, and the connection's
    // task carries its largest future for as long as the connection lives.
    let drained = Box::pin(tokio::time::timeout(LINGER, async {
        let _ = worker.await;
        let _ = writer.await;
    }))
    .await;
    if drained.is_err() {
        stop_worker.abort();
        stop_writer.abort();
    }
    tracing::debug!("websocket closed");
}

/// What the reader does with one incoming frame.
enum Inbound {
    /// A request for the worker.
    Request(Box<WebSocketMessage>),
    /// An answer the reader gives itself, on the direct lane, framed: a Pong, or the error for
    /// a frame that is not a request (it is refused, but answered, so the client learns why).
    Answer(Bytes),
    /// Close the connection with this code.
    Close(u16, &'static str),
    /// The client closed, or the stream ended.
    End,
    /// A Pong from the client.
    Nothing,
}

/// An answer of the reader's own, framed for the direct lane.
fn answer(msg: WebSocketMessage) -> Inbound {
    Inbound::Answer(frames::message(&msg))
}

fn inbound(
    state: &AppState,
    conn: ConnId,
    limiter: &mut RateLimiter,
    frame: Option<Result<Message, WsError>>,
) -> Inbound {
    if matches!(&frame, Some(Ok(Message::Binary(_) | Message::Text(_))))
        && !limiter.allow(state.connections.clock.now())
    {
        let id = match &frame {
            Some(Ok(Message::Binary(bytes))) => WebSocketMessage::decode(bytes.clone())
                .map(|m| m.message_id)
                .unwrap_or_default(),
            _ => String::new(),
        };
        state.metrics.ws_rate_limited.increment(1);
        let err = AppError::RateLimited(format!(
            "at most {} requests per second (bursts of {}); slow down and retry",
            state.config.rate_limit_per_sec, state.config.rate_limit_burst
        ));
        return answer(error_reply(&id, &err));
    }
    match frame {
        None => Inbound::End,
        // The client closes: echo its status code (RFC 6455 5.5.1).
        Some(Ok(Message::Close(f))) => {
            Inbound::Close(f.map_or(close::NORMAL, |f| u16::from(f.code)), "")
        }
        Some(Err(WsError::Io(e))) => match socket::ReadLimit::of(&e) {
            Some(socket::ReadLimit::TooSlow) => {
                tracing::info!(
                    conn,
                    "closing a websocket whose message did not complete in time"
                );
                Inbound::Close(close::POLICY_VIOLATION, "message not completed in time")
            }
            Some(socket::ReadLimit::OverBudget) => {
                tracing::info!(
                    conn,
                    "closing a websocket over the budget for incomplete messages"
                );
                Inbound::Close(
                    close::MESSAGE_TOO_BIG,
                    "too many bytes of incomplete messages",
                )
            }
            None => Inbound::End,
        },
        Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => Inbound::End,
        Some(Err(e)) => {
            tracing::debug!(conn, error = %e, "websocket read failed");
            match e {
                WsError::Capacity(_) => Inbound::Close(close::MESSAGE_TOO_BIG, "message too big"),
                _ => Inbound::Close(close::PROTOCOL_ERROR, "protocol error"),
            }
        }
        Some(Ok(Message::Ping(data))) => Inbound::Answer(frames::pong(data)),
        Some(Ok(Message::Binary(bytes))) => match WebSocketMessage::decode(bytes) {
            Ok(msg) => match msg.payload {
                Some(Payload::Ping(ping)) => {
                    let pong = reply(
                        &msg.message_id,
                        Payload::Pong(proto::Pong {
                            timestamp: ping.timestamp,
                        }),
                    );
                    answer(pong)
                }
                _ => Inbound::Request(Box::new(msg)),
            },
            Err(_) => {
                let err =
                    AppError::InvalidMessage("frame is not a valid pm.WebSocketMessage".into());
                answer(error_reply("", &err))
            }
        },
        Some(Ok(Message::Text(_))) => {
            let err = AppError::InvalidMessage(
                "text frames are not supported; send binary protobuf".into(),
            );
            answer(error_reply("", &err))
        }
        Some(Ok(_)) => Inbound::Nothing,
    }
}

async fn until_shutdown(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|down| *down).await;
}
