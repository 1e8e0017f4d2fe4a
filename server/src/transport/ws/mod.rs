//! The WebSocket transport at `/ws`: binary protobuf `WebSocketMessage` frames.
//!
//! Each connection runs three tasks:
//! - the reader decodes frames, answers Ping at once and hands every other request to
//! - the request worker, which answers requests in order (so one client's writes apply in the
//!   order it sent them) and queues each response after the events it caused; writes are
//!   pipelined into the writer's queue, so several of one client's writes commit together;
//! - the writer, which drains the connection's bounded queue (filled by the hub and the worker)
//!   and a small lane for direct replies (Pong, errors for bad frames, close).
//!
//! The queue is bounded by bytes (`--send-buffer-bytes`), counted until written: the hub cuts
//! off a subscriber past the budget, the worker waits for room (`Outbox`) and so stops taking
//! requests, and a replay is queued a chunk at a time as the client reads (`resume`).
//!
//! A slow request therefore never delays Pongs, and a slow client never delays anyone else.
//!
//! The handshake (`handshake`) and the socket (`socket`) are handled here rather than by axum's
//! `WebSocket`, so the writer can send frames built once (`frames`) to every subscriber as they
//! are.
pub mod frames;
mod handshake;
mod socket;

use std::collections::HashMap;
use std::io::IoSlice;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesOrdered;
use futures_util::StreamExt;
use pm_shared::proto::{self, Payload, WebSocketMessage};
use prost::Message as _;
use std::net::SocketAddr;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::access::{self, Role, Viewer};
use crate::app::{AppState, SharedState};
use crate::auth;
use crate::commands::{self, Actor, Command, Committed};
use crate::error::{AppError, AppResult};
use crate::hub::{ConnId, CutOff, Outbound, Subscriber};
use crate::reads;
use crate::store::events::{self, WORKSPACE};
use crate::transport::limits::{PartialBudget, RateLimiter, Refusal};
use handshake::{Handshake, Io};
use socket::{Sink, Source};

/// How many decoded requests may wait for the worker before the reader stops reading.
const PENDING_REQUESTS: usize = 64;
/// Most writes of one connection queued for the writer and not yet answered.
const PIPELINE: usize = 64;
/// Direct replies (Pong, frame errors) waiting to be written; beyond this the reader waits, so a
/// client that floods without reading cannot grow server memory.
const DIRECT_LANE: usize = 64;
/// tungstenite's read buffer per connection. It is allocated up front and zero-filled before
/// every read, so the 128 KiB default cost 128 KiB of resident memory per idle connection and a
/// 128 KiB memset per read. Requests are small; a larger frame grows the buffer as it arrives.
const READ_BUFFER: usize = 512;
/// Most queued items (mutations) the writer sends with one write when a client fell behind.
const WRITE_BATCH: usize = 64;
/// A replay is read and queued a chunk at a time, as the client reads: at most this many
/// events per chunk,
const REPLAY_EVENTS: usize = 256;
/// and about this many bytes (a chunk ends at the first event that would pass it), or the
/// worker's share of the connection's budget when that is smaller.
const REPLAY_BYTES: usize = 256 * 1024;
/// Most bytes of a replay queued ahead of what the client has read (or the worker's share of
/// the budget when smaller): enough to keep its socket busy, and all that a client that stops
/// reading makes the server hold of its history.
const REPLAY_AHEAD: usize = 4 * REPLAY_BYTES;
/// A resume cursor may name a committed event whose publication is a moment away (see
/// `resume`): it waits for it this many times 1 ms at most.
const RESUME_AHEAD_WAITS: u32 = 5_000;

/// A socket write that takes longer than this means the client stopped reading: drop it.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing connection may take to drain.
const LINGER: Duration = Duration::from_secs(3);

/// Longest display name kept from `?name=`.
const MAX_NAME: usize = 64;

/// Close codes used by the server.
pub mod close {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL_ERROR: u16 = 1002;
    pub const POLICY_VIOLATION: u16 = 1008;
    pub const MESSAGE_TOO_BIG: u16 = 1009;
}

pub async fn upgrade(
    handshake: Handshake,
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let params = query.map(|q| q.0).unwrap_or_default();
    let name = params
        .get("name")
        .map(|n| n.trim().chars().take(MAX_NAME).collect::<String>())
        .filter(|n| !n.is_empty());
    let identity = match auth::identify(
        &state.config,
        &headers,
        params.get("token").map(String::as_str),
        params.get("user_id").map(String::as_str),
        crate::transport::guard::is_loopback(peer.ip()),
    ) {
        Ok(identity) => identity,
        Err(e) => return unauthorized(&e.to_string()),
    };
    let user_id = identity.user_id;
    let permit = match state.connections.try_acquire(
        &user_id,
        state.config.max_connections,
        state.config.max_connections_per_user,
    ) {
        Ok(permit) => permit,
        Err(refusal) => return refuse(refusal),
    };
    if let Some(name) = name.as_deref() {
        // A display name is not an entity of the board: it is recorded, not broadcast.
        let mut writer = state.store.writer().await;
        if let Err(e) = crate::store::queries::upsert_user(&mut writer, &user_id, Some(name)).await
        {
            tracing::warn!(error = %e, "could not record display name");
        }
    }
    let budget = permit.partial_budget(
        state.config.ws_partial_bytes_per_user,
        state.config.ws_partial_bytes_total,
    );
    handshake.accept(move |io| async move {
        connection(io, state, Actor { user_id }, budget).await;
        drop(permit);
    })
}

/// The answer to an upgrade without valid credentials: 401 with the REST error JSON.
fn unauthorized(message: &str) -> Response {
    use axum::response::IntoResponse;
    let body = serde_json::json!({ "error": { "code": "UNAUTHORIZED", "message": format!("Unauthorized: {message}") } });
    (axum::http::StatusCode::UNAUTHORIZED, axum::Json(body)).into_response()
}

/// The answer to an upgrade over a connection limit: the REST error JSON, 503 or 429.
fn refuse(refusal: Refusal) -> Response {
    use axum::response::IntoResponse;
    let (status, message) = match refusal {
        Refusal::ServerFull(max) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            format!("The server has reached its limit of {max} connections"),
        ),
        Refusal::UserFull(max) => (
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            format!("This user already has {max} open connections"),
        ),
    };
    let body = serde_json::json!({ "error": { "code": "CONNECTION_LIMIT", "message": message } });
    (status, axum::Json(body)).into_response()
}

enum Direct {
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

async fn connection(io: Io, state: SharedState, actor: Actor, budget: PartialBudget) {
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
    };
    let outbox = Outbox::of(subscriber.clone());
    let conn = state.hub.register(subscriber);
    tracing::debug!(conn, user = %actor.user_id, "websocket connected");

    let writer = tokio::spawn(write_loop(
        sink,
        queue_rx,
        direct_rx,
        cut_off,
        queued_bytes.clone(),
        state.store.epoch(),
    ));
    let (request_tx, request_rx) = mpsc::channel(PENDING_REQUESTS);
    let worker = tokio::spawn(request_worker(
        state.clone(),
        conn,
        actor,
        request_rx,
        outbox,
    ));

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
    tracing::debug!(conn, "websocket closed");
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

/// Writes `first`, or, when more is queued (the client fell behind), up to WRITE_BATCH items
/// with one vectored write: the items are the hub's shared bytes, so nothing is copied. Their
/// bytes leave the connection's budget once written, not before: what waits in a write that
/// the client does not take is still the server's memory.
async fn write_batch<W: tokio::io::AsyncWrite + Unpin>(
    sink: &mut W,
    first: Outbound,
    queue: &mut mpsc::Receiver<Outbound>,
    queued_bytes: &AtomicUsize,
) -> std::io::Result<()> {
    let Ok(second) = queue.try_recv() else {
        let written = sink.write_all(first.bytes()).await;
        queued_bytes.fetch_sub(first.len(), Ordering::AcqRel);
        return written;
    };
    let mut items = vec![first, second];
    while items.len() < WRITE_BATCH {
        let Ok(next) = queue.try_recv() else { break };
        items.push(next);
    }
    let written = write_vectored_all(sink, &items).await;
    let total: usize = items.iter().map(Outbound::len).sum();
    queued_bytes.fetch_sub(total, Ordering::AcqRel);
    written
}

async fn write_vectored_all<W: tokio::io::AsyncWrite + Unpin>(
    sink: &mut W,
    items: &[Outbound],
) -> std::io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = items.iter().map(|i| IoSlice::new(i.bytes())).collect();
    let mut unwritten = &mut slices[..];
    while !unwritten.is_empty() {
        match sink.write_vectored(unwritten).await? {
            0 => return Err(std::io::ErrorKind::WriteZero.into()),
            n => IoSlice::advance_slices(&mut unwritten, n),
        }
    }
    Ok(())
}

/// A socket write with a deadline. Boxed: a timer makes a future large, and an idle
/// connection's writer should not carry one around between writes.
fn bounded<'a>(
    write: impl std::future::Future<Output = std::io::Result<()>> + Send + 'a,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<()>> + Send + 'a>> {
    Box::pin(bounded_write(write))
}

async fn bounded_write(
    write: impl std::future::Future<Output = std::io::Result<()>>,
) -> std::io::Result<()> {
    match tokio::time::timeout(WRITE_TIMEOUT, write).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "client stopped reading",
        )),
    }
}

/// Tells the client it was cut off from `stream` and must resync.
fn resync_frame(stream: &str, epoch: &str) -> Bytes {
    let resync = proto::ResyncRequired {
        stream: stream.to_string(),
        reason: "slow_consumer".into(),
        current_seq: 0,
        epoch: epoch.to_string(),
    };
    frames::message(&event_envelope(
        Payload::ResyncRequired(resync),
        stream,
        epoch,
    ))
}

async fn until_shutdown(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|down| *down).await;
}

async fn write_loop(
    mut sink: Sink,
    mut queue: mpsc::Receiver<Outbound>,
    mut direct: mpsc::Receiver<Box<Direct>>,
    cut_off: Arc<CutOff>,
    queued_bytes: Arc<AtomicUsize>,
    epoch: String,
) {
    let mut direct_open = true;
    // One registration with the cut-off signal for as long as it does not fire, instead of a
    // new one (two lock round trips) for every item written.
    let cut = cut_off.notify.notified();
    tokio::pin!(cut);
    loop {
        let result = tokio::select! {
            biased;
            _ = &mut cut => {
                cut.set(cut_off.notify.notified());
                // Encoded before the write, so no message is held across it.
                let resyncs: Vec<Bytes> = cut_off
                    .take()
                    .iter()
                    .map(|stream| resync_frame(stream, &epoch))
                    .collect();
                bounded(sink.write_all(&resyncs.concat())).await
            }
            d = direct.recv(), if direct_open => match d.map(|d| *d) {
                Some(Direct::Frame(bytes)) => bounded(sink.write_all(&bytes)).await,
                Some(Direct::Close(code, reason)) => {
                    let _ = bounded(sink.write_all(&frames::close(code, reason))).await;
                    break;
                }
                None => { direct_open = false; Ok(()) }
            },
            q = queue.recv() => match q {
                Some(item) => {
                    let written = bounded(write_batch(&mut sink, item, &mut queue, &queued_bytes)).await;
                    // Room in the byte budget: the worker may be waiting for it (`Outbox`).
                    cut_off.drained.notify_one();
                    written
                }
                None => break,
            },
        };
        if result.is_err() {
            break;
        }
    }
    // A worker waiting for room finds the queue closed.
    drop(queue);
    cut_off.drained.notify_one();
    let _ = Box::pin(tokio::time::timeout(WRITE_TIMEOUT, sink.shutdown())).await;
}

/// The worker's side of the connection queue. Unlike the hub it may wait: a client that does
/// not read only delays its own responses.
///
/// It waits for bytes, not only for slots: an answer (or a replay chunk) is queued only while
/// the connection's queued bytes stay within half its budget (`--send-buffer-bytes`), or when
/// nothing is queued (so one answer larger than that, a big snapshot, still goes, alone). The
/// other half is headroom for live events, which the hub never holds back (past the whole
/// budget it cuts the connection off). A client that does not read thus stalls its own worker,
/// which stops taking requests; the reader stops reading once PENDING_REQUESTS wait, and the
/// client's further requests stay in its socket.
struct Outbox {
    queue: mpsc::Sender<Outbound>,
    queued_bytes: Arc<AtomicUsize>,
    /// Queued bytes beyond which the worker waits.
    limit: usize,
    /// Its `drained` is signalled by the writer after every write.
    signal: Arc<CutOff>,
}

/// A boxed future: see `bounded`.
type BoxedSend<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), ()>> + Send + 'a>>;

impl Outbox {
    fn of(subscriber: Subscriber) -> Outbox {
        Outbox {
            queue: subscriber.queue,
            queued_bytes: subscriber.queued_bytes,
            limit: (subscriber.max_bytes / 2).max(1),
            signal: subscriber.cut_off,
        }
    }

    /// The outbox of connection `conn`, or, for a connection the hub does not know, one that
    /// refuses everything.
    fn of_conn(state: &AppState, conn: ConnId) -> Outbox {
        match state.hub.subscriber(conn) {
            Some(s) => Outbox::of(s),
            None => Outbox {
                queue: mpsc::channel(1).0,
                queued_bytes: Default::default(),
                limit: usize::MAX,
                signal: Default::default(),
            },
        }
    }

    /// Waits until `len` more bytes fit within `limit` (at most the outbox's own, see above).
    /// Err when the writer is gone.
    fn room(&self, len: usize, limit: usize) -> BoxedSend<'_> {
        Box::pin(self.wait_for_room(len, limit.min(self.limit)))
    }

    async fn wait_for_room(&self, len: usize, limit: usize) -> Result<(), ()> {
        loop {
            let queued = self.queued_bytes.load(Ordering::Acquire);
            if queued == 0 || queued.saturating_add(len) <= limit {
                return Ok(());
            }
            if self.queue.is_closed() {
                return Err(());
            }
            // The writer signals after every write; a signal given since the load above is
            // kept (notify_one stores it), so none is missed.
            self.signal.drained.notified().await;
        }
    }

    /// Queues complete frames (see `frames::message`) once they fit.
    fn send(&self, framed: Bytes) -> BoxedSend<'_> {
        Box::pin(async move {
            self.wait_for_room(framed.len(), self.limit).await?;
            let item = Outbound::new(framed);
            self.queued_bytes.fetch_add(item.len(), Ordering::AcqRel);
            self.queue.send(item).await.map_err(|_| ())
        })
    }
}

/// Answers a connection's requests in the order they arrived. Writes are pipelined: each is
/// queued for the writer as soon as it arrives (the queue keeps this connection's order) and
/// answered when committed, so a client with several writes in flight gets them committed
/// together instead of one transaction per round trip. Anything else (a read, a subscription)
/// waits until the writes before it are answered, so it sees them.
async fn request_worker(
    state: SharedState,
    conn: ConnId,
    actor: Actor,
    mut requests: mpsc::Receiver<Box<WebSocketMessage>>,
    queue: Outbox,
) {
    // This connection's queued writes, answered in the order they were sent.
    let mut in_flight = InFlight::new();
    loop {
        // Only small futures are held across this wait (see the reader's loop for why).
        let next = tokio::select! {
            // Answers first: a client that keeps sending still gets its answers.
            biased;
            Some(answer) = in_flight.next(), if !in_flight.is_empty() => {
                Next::Answer(frames::message(&answer))
            }
            msg = requests.recv(), if in_flight.len() < PIPELINE => match msg {
                Some(msg) => Next::Request(msg),
                None => break,
            },
        };
        let msg = match next {
            Next::Answer(bytes) => {
                if queue.send(bytes).await.is_err() {
                    return;
                }
                continue;
            }
            Next::Request(msg) => msg,
        };
        // The request is taken apart and its answer set up in a statement that ends before
        // the await: what a match holds lives until the match ends, and whatever lives across
        // an await is stored in this task for the connection's whole life.
        let answering = match take_request(*msg) {
            (id, Request::Write(command)) => {
                // Queued now, so it takes its place in the writer's order before the next
                // request is read.
                in_flight.push_back(queue_write(&state, &actor, id, command));
                continue;
            }
            // Boxed: the request's future (several KiB) exists only while a request runs.
            (id, Request::Other(payload)) => Box::pin(answer_in_order(
                &state,
                conn,
                &actor,
                &queue,
                &mut in_flight,
                id,
                payload,
            )),
        };
        if !answering.await {
            return;
        }
    }
    // The reader is gone: the writes already queued still run; answer them while the socket
    // lasts.
    while let Some(answer) = next_answer(&mut in_flight).await {
        if queue.send(answer).await.is_err() {
            return;
        }
    }
}

type InFlight = FuturesOrdered<BoxFuture<'static, WebSocketMessage>>;

/// The next answer, framed (so that no message is held while it is sent).
async fn next_answer(in_flight: &mut InFlight) -> Option<Bytes> {
    in_flight.next().await.map(|a| frames::message(&a))
}

enum Next {
    Answer(Bytes),
    Request(Box<WebSocketMessage>),
}

fn take_request(msg: WebSocketMessage) -> (String, Request) {
    let request = match msg.payload {
        Some(payload) => classify(payload),
        None => Request::Other(None),
    };
    (msg.message_id, request)
}

/// Queues a write for the writer; the returned future is its answer.
fn queue_write(
    state: &SharedState,
    actor: &Actor,
    id: String,
    command: Command,
) -> BoxFuture<'static, WebSocketMessage> {
    let pending = commands::group::enqueue(state, actor, Some(&id), command);
    let epoch = state.store.epoch();
    Box::pin(async move {
        match pending.outcome().await {
            Ok(committed) => committed_reply(&id, committed, &epoch),
            Err(e) => error_reply(&id, &e),
        }
    })
}

/// Answers a request that is not a write, after the writes sent before it (it must see them).
/// False when the connection's writer is gone.
async fn answer_in_order(
    state: &SharedState,
    conn: ConnId,
    actor: &Actor,
    queue: &Outbox,
    in_flight: &mut InFlight,
    id: String,
    payload: Option<Payload>,
) -> bool {
    while let Some(answer) = next_answer(in_flight).await {
        if queue.send(answer).await.is_err() {
            return false;
        }
    }
    let handled = match answer_other(state, conn, actor, queue, &id, payload).await {
        Ok(handled) => handled,
        Err(e) => error_reply(&id, &e).into(),
    };
    send_handled(queue, handled).await
}

async fn send_handled(queue: &Outbox, handled: Handled) -> bool {
    for frame in handled.before {
        if queue.send(frame).await.is_err() {
            return false;
        }
    }
    queue.send(frames::message(&handled.response)).await.is_ok()
}

/// A handled request: frames to send first (e.g. ResyncRequired), then the response.
struct Handled {
    /// Framed.
    before: Vec<Bytes>,
    response: WebSocketMessage,
}

impl From<WebSocketMessage> for Handled {
    fn from(response: WebSocketMessage) -> Self {
        Handled {
            before: Vec::new(),
            response,
        }
    }
}

/// What a request asks for: a write goes through the pipeline's queue, anything else is
/// answered by the connection's worker.
enum Request {
    Write(Command),
    /// None: a frame without a payload, answered with an error.
    Other(Option<Payload>),
}

fn classify(payload: Payload) -> Request {
    let command = match payload {
        Payload::CreateProjectRequest(r) => Command::CreateProject(r),
        Payload::UpdateProjectRequest(r) => Command::UpdateProject(r),
        Payload::DeleteProjectRequest(r) => Command::DeleteProject {
            project_id: r.project_id,
            expected_version: Some(r.expected_version),
        },
        Payload::CreateWorkItemRequest(r) => Command::CreateWorkItem(r),
        Payload::UpdateWorkItemRequest(r) => Command::UpdateWorkItem(r),
        Payload::DeleteWorkItemRequest(r) => Command::DeleteWorkItem(r),
        Payload::CreateSprintRequest(r) => Command::CreateSprint(r),
        Payload::UpdateSprintRequest(r) => Command::UpdateSprint(r),
        Payload::DeleteSprintRequest(r) => Command::DeleteSprint(r),
        Payload::CreateCommentRequest(r) => Command::CreateComment(r),
        Payload::UpdateCommentRequest(r) => Command::UpdateComment(r),
        Payload::DeleteCommentRequest(r) => Command::DeleteComment(r),
        Payload::AddProjectMemberRequest(r) => Command::AddMember(r),
        Payload::RemoveProjectMemberRequest(r) => Command::RemoveMember(r),
        Payload::CreateDependencyRequest(r) => Command::CreateDependency(r),
        Payload::DeleteDependencyRequest(r) => Command::DeleteDependency(r),
        Payload::StartTimerRequest(r) => Command::StartTimer(r),
        Payload::StopTimerRequest(r) => Command::StopTimer(r),
        Payload::CreateTimeEntryRequest(r) => Command::CreateTimeEntry(r),
        Payload::UpdateTimeEntryRequest(r) => Command::UpdateTimeEntry(r),
        Payload::DeleteTimeEntryRequest(r) => Command::DeleteTimeEntry(r),
        other => return Request::Other(Some(other)),
    };
    Request::Write(command)
}

/// The answer to a committed write.
fn committed_reply(id: &str, committed: Committed, epoch: &str) -> WebSocketMessage {
    let mut response = reply(id, committed.event);
    if committed.seq > 0 {
        response.seq = committed.seq;
        response.stream = committed.stream;
        response.epoch = epoch.to_string();
    }
    response
}

/// Answers a request that is not a write: reads, subscriptions (whose replays go to `out` as
/// the client reads them).
async fn answer_other(
    state: &SharedState,
    conn: ConnId,
    actor: &Actor,
    out: &Outbox,
    id: &str,
    payload: Option<Payload>,
) -> AppResult<Handled> {
    let Some(payload) = payload else {
        return Err(unsupported());
    };
    let viewer = Viewer {
        user_id: actor.user_id.clone(),
        mode: state.config.auth,
    };
    match payload {
        Payload::Subscribe(s) => subscribe(state, &viewer, conn, out, s, id).await,
        Payload::Unsubscribe(u) => {
            for p in &u.project_ids {
                state.hub.unsubscribe(conn, p);
            }
            Ok(empty_reply(id).into())
        }
        Payload::ListProjectsRequest(_) => {
            // Whoever shows the project list gets project events from now on (the Blazor client
            // never subscribes to the workspace stream explicitly).
            if !state.hub.is_subscribed(conn, WORKSPACE) {
                state.hub.subscribe(conn, WORKSPACE, Vec::new());
            }
            let snap = reads::projects(&state.store, &viewer).await?;
            let payload = Payload::ProjectList(proto::ProjectList {
                projects: snap.items,
            });
            Ok(snapshot_reply(id, payload, &snap.stream, snap.seq, &state.store.epoch()).into())
        }
        Payload::GetWorkItemsRequest(r) => {
            let project = commands::parse_id("project_id", &r.project_id)?;
            let snap = reads::work_items(&state.store, &viewer, &project).await?;
            let payload = Payload::WorkItemsList(proto::WorkItemsList {
                work_items: snap.items,
                as_of_timestamp: pm_shared::now_secs(),
            });
            Ok(snapshot_reply(id, payload, &snap.stream, snap.seq, &state.store.epoch()).into())
        }
        Payload::GetSprintsRequest(r) => {
            let project = commands::parse_id("project_id", &r.project_id)?;
            let snap = reads::sprints(&state.store, &viewer, &project).await?;
            let payload = Payload::SprintsList(proto::SprintsList {
                sprints: snap.items,
            });
            Ok(snapshot_reply(id, payload, &snap.stream, snap.seq, &state.store.epoch()).into())
        }
        Payload::GetCommentsRequest(r) => {
            let item = commands::parse_id("work_item_id", &r.work_item_id)?;
            let snap = reads::comments(&state.store, &viewer, &item).await?;
            let payload = Payload::CommentsList(proto::CommentsList {
                comments: snap.items,
            });
            Ok(snapshot_reply(id, payload, &snap.stream, snap.seq, &state.store.epoch()).into())
        }
        Payload::GetProjectSnapshotRequest(r) => {
            let project = commands::parse_id("project_id", &r.project_id)?;
            let snap = reads::project_snapshot(&state.store, &viewer, &project).await?;
            let payload = Payload::ProjectSnapshot(snap.items);
            Ok(snapshot_reply(id, payload, &snap.stream, snap.seq, &state.store.epoch()).into())
        }
        Payload::ListUsersRequest(_) => {
            let users = reads::users(&state.store).await?;
            Ok(reply(id, Payload::UserList(proto::UserList { users })).into())
        }
        Payload::GetActivityLogRequest(r) => {
            let list = reads::activity(&state.store, &viewer, &r).await?;
            Ok(reply(id, Payload::ActivityLogList(list)).into())
        }
        Payload::GetDependenciesRequest(r) => {
            let item = commands::parse_id("work_item_id", &r.work_item_id)?;
            let snap = reads::dependencies(&state.store, &viewer, &item).await?;
            let payload = Payload::DependenciesList(snap.items);
            Ok(snapshot_reply(id, payload, &snap.stream, snap.seq, &state.store.epoch()).into())
        }
        Payload::GetTimeEntriesRequest(r) => {
            let item = commands::parse_id("work_item_id", &r.work_item_id)?;
            let snap = reads::time_entries(&state.store, &viewer, &item, r.limit, r.offset).await?;
            let payload = Payload::TimeEntriesList(snap.items);
            Ok(snapshot_reply(id, payload, &snap.stream, snap.seq, &state.store.epoch()).into())
        }
        Payload::GetRunningTimerRequest(_) => {
            let time_entry = reads::running_timer(&state.store, &actor.user_id).await?;
            let payload = Payload::RunningTimerResponse(proto::RunningTimerResponse { time_entry });
            Ok(reply(id, payload).into())
        }
        Payload::GetLlmContextRequest(r) => {
            let list = reads::llm_context(&state.store, &r).await?;
            Ok(reply(id, Payload::LlmContextList(list)).into())
        }
        Payload::ListProjectMembersRequest(r) => {
            let project = commands::parse_id("project_id", &r.project_id)?;
            let members = reads::members(&state.store, &viewer, &project).await?;
            Ok(reply(
                id,
                Payload::ProjectMembersList(proto::ProjectMembersList { members }),
            )
            .into())
        }
        _ => Err(unsupported()),
    }
}

/// Answers one request and waits for it (the fuzz entry point; connections pipeline writes
/// instead, see `request_worker`).
async fn dispatch(
    state: &SharedState,
    conn: ConnId,
    actor: &Actor,
    msg: WebSocketMessage,
) -> AppResult<Handled> {
    let id = msg.message_id.as_str();
    let Some(payload) = msg.payload else {
        return Err(unsupported());
    };
    match classify(payload) {
        Request::Write(command) => {
            let committed = commands::execute(state, actor, Some(id), command).await?;
            Ok(committed_reply(id, committed, &state.store.epoch()).into())
        }
        Request::Other(payload) => {
            let out = Outbox::of_conn(state, conn);
            answer_other(state, conn, actor, &out, id, payload).await
        }
    }
}

/// Answers one binary frame exactly as a connection's worker does (decode, dispatch, reply),
/// without a socket: the entry point of the frame fuzz target (`fuzz/`). Subscriptions made by
/// the frame go to `conn`.
pub async fn answer_frame(
    state: &SharedState,
    conn: ConnId,
    actor: &Actor,
    frame: Bytes,
) -> WebSocketMessage {
    match WebSocketMessage::decode(frame) {
        Ok(msg) => {
            let id = msg.message_id.clone();
            match dispatch(state, conn, actor, msg).await {
                Ok(handled) => handled.response,
                Err(e) => error_reply(&id, &e),
            }
        }
        Err(_) => error_reply(
            "",
            &AppError::InvalidMessage("frame is not a valid pm.WebSocketMessage".into()),
        ),
    }
}

fn unsupported() -> AppError {
    AppError::InvalidMessage("Unsupported or missing message payload".into())
}

/// Subscribe: live project subscriptions (the reference's form), the project list, and resume
/// cursors (ours). Each cursor is honoured exactly or answered with ResyncRequired.
async fn subscribe(
    state: &SharedState,
    viewer: &Viewer,
    conn: ConnId,
    out: &Outbox,
    s: proto::Subscribe,
    id: &str,
) -> AppResult<Handled> {
    let projects: Vec<String> = s
        .project_ids
        .iter()
        .map(|p| commands::parse_id("project_ids", p))
        .collect::<AppResult<_>>()?;
    // Every id is checked before anything is subscribed, so a bad request changes nothing.
    let cursors: Vec<(String, proto::ResumeCursor)> = s
        .cursors
        .into_iter()
        .map(|c| {
            let stream = if c.stream.is_empty() {
                WORKSPACE.to_string()
            } else {
                commands::parse_id("cursors.stream", &c.stream)?
            };
            Ok((stream, c))
        })
        .collect::<AppResult<_>>()?;
    // Only members may watch a project (token mode); the workspace stream is filtered per event.
    {
        let mut read = state.store.read.acquire().await?;
        let streams = projects
            .iter()
            .chain(cursors.iter().map(|(s, _)| s))
            .filter(|s| !s.is_empty());
        for project in streams {
            access::require(
                &mut read,
                viewer.mode,
                project,
                &viewer.user_id,
                Role::Viewer,
                access::Named::new("Project", project),
            )
            .await?;
        }
    }
    // A stream that also has a cursor is subscribed by its resume, atomically with the replay;
    // subscribing it live here first would deliver events ahead of (and again in) the replay.
    let has_cursor = |stream: &str| cursors.iter().any(|(s, _)| s == stream);
    for p in projects.iter().filter(|p| !has_cursor(p)) {
        state.hub.subscribe(conn, p, Vec::new());
    }
    if s.project_list && !has_cursor(WORKSPACE) && !state.hub.is_subscribed(conn, WORKSPACE) {
        state.hub.subscribe(conn, WORKSPACE, Vec::new());
    }
    let mut before = Vec::new();
    for (stream, cursor) in &cursors {
        let resumed = resume(state, viewer, conn, out, stream, cursor).await?;
        if let Some(resync) = resumed {
            let msg = event_envelope(
                Payload::ResyncRequired(resync),
                stream,
                &state.store.epoch(),
            );
            before.push(frames::message(&msg));
        }
    }
    Ok(Handled {
        before,
        response: empty_reply(id),
    })
}

/// Replays `stream` after the cursor and subscribes live, or says why it cannot.
///
/// The replay is read and queued a chunk at a time (REPLAY_EVENTS, REPLAY_BYTES), each once the
/// connection's queued bytes leave room for it within REPLAY_AHEAD (`Outbox::room`): a client
/// that does not read makes the server hold that much of its replay, not its whole history.
/// No lock of the store is taken: events keep committing and being published meanwhile.
///
/// The hand-over to live delivery goes by the hub's number of the stream's last published seq
/// (`EventHub::last_published`, N). Every event up to N is committed, so the replay reads up to
/// N and never beyond (an event above N may be committed but not yet published: it will come
/// live). The last chunk, up to N, is queued and the live subscription registered in one step
/// under the hub's lock (`EventHub::subscribe_if_at`), and only if the stream's last published
/// seq is still N; when it moved, the chunk is queued all the same and the replay goes on from
/// N to the new number. `publish` delivers and advances the number under that same lock, so
/// each event after the cursor reaches the client exactly once: replayed (up to N) or live
/// (after N); the hand-over has no gap and no duplicate. Reads take turns server-wide
/// (`AppState::replay_reads`), and N is read after the turn and the chunk's queue slot are had,
/// so it can move only during the read and the hand-over. Each chunk must start right after the
/// previous one; when pruning overtook the replay, the client is told to resync
/// ("cursor_too_old") after the events it was sent.
///
/// The workspace stream is filtered by [`EventHub::may_see`](crate::hub::EventHub::may_see)
/// exactly as live delivery is: in token mode a user is replayed the lifecycle events of the
/// projects they are a member of, and of the others only place-holders (`EventWithheld`, the
/// seq alone), so the stream has no gap for them.
async fn resume(
    state: &SharedState,
    viewer: &Viewer,
    conn: ConnId,
    out: &Outbox,
    stream: &str,
    cursor: &proto::ResumeCursor,
) -> AppResult<Option<proto::ResyncRequired>> {
    let current = {
        let mut read = state.store.read.acquire().await?;
        events::current_seq(&mut read, stream).await?
    };
    let resync = |reason: &str| {
        Some(proto::ResyncRequired {
            stream: stream.to_string(),
            reason: reason.to_string(),
            current_seq: current,
            epoch: state.store.epoch(),
        })
    };
    if cursor.epoch != state.store.epoch() || cursor.last_seq > current {
        return Ok(resync("epoch_changed"));
    }
    let filtered = stream == WORKSPACE && state.hub.filters_workspace();
    let chunk_bytes = REPLAY_BYTES.min(out.limit);
    let mut last = cursor.last_seq;
    // A cursor may name a committed event not yet published (a snapshot's seq is read from
    // the database): its group publishes it right after the commit. Wait for that, bounded.
    let mut ahead_waits = 0u32;
    loop {
        if out.room(chunk_bytes, REPLAY_AHEAD).await.is_err() {
            return Ok(None); // the connection is gone
        }
        // The chunk's queue slot, reserved before the head is read: whatever waits (a slot,
        // a turn to read) comes before it, so the head can move only during the read itself
        // and the hand-over below, and a hand-over does not lose its race to every publish
        // while it waits. (Were the head read before a wait of, say, a storm's queue for
        // turns, a stream written more often than that would never let a resume go live.)
        let Ok(permit) = out.queue.reserve().await else {
            return Ok(None);
        };
        // One replay read at a time, server-wide (see `AppState::replay_reads`).
        let turn = if state.hub.last_published(stream) > last {
            Some(state.replay_reads.acquire().await)
        } else {
            None
        };
        let head = state.hub.last_published(stream);
        if last > head {
            drop((turn, permit));
            if cursor.epoch != state.store.epoch() || ahead_waits >= RESUME_AHEAD_WAITS {
                return Ok(resync("epoch_changed"));
            }
            ahead_waits += 1;
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            continue;
        }
        let rows = if last < head {
            let mut read = state.store.read.acquire().await?;
            events::after(&mut read, stream, last, head, REPLAY_EVENTS).await?
        } else {
            Vec::new()
        };
        drop(turn);
        match rows.first() {
            Some(&(first, _)) if first != last + 1 => return Ok(resync("cursor_too_old")),
            None if last < head => return Ok(resync("cursor_too_old")),
            _ => {}
        }
        let (mut taken, mut bytes) = (0usize, 0usize);
        let mut chunk: Vec<Vec<u8>> = Vec::new();
        for (seq, frame) in rows {
            if taken > 0 && bytes + frame.len() > chunk_bytes {
                break;
            }
            taken += 1;
            bytes += frame.len();
            last = seq;
            if !filtered
                || workspace_project(&frame).is_some_and(|p| state.hub.may_see(&viewer.user_id, &p))
            {
                chunk.push(frame);
            } else if let Some(marker) = crate::hub::withheld(&frame) {
                chunk.push(marker);
            }
        }
        let item = (!chunk.is_empty()).then(|| frames::binary_all(&chunk));
        if last < head {
            // More to read before the head: the chunk goes into its slot (`out.room` above
            // made room for its bytes).
            if let Some(item) = item {
                let item = Outbound::new(item);
                out.queued_bytes.fetch_add(item.len(), Ordering::AcqRel);
                permit.send(item);
            }
            continue;
        }
        // Everything up to the head (as of the hub's number) is in this chunk: queue it in its
        // slot, and go live if the head did not move.
        let replay = item.map(|item| (permit, item));
        match state.hub.subscribe_if_at(conn, stream, replay, last) {
            Ok(()) => return Ok(None),
            Err(crate::hub::NotLive::Moved) => continue,
            Err(crate::hub::NotLive::Gone) => return Ok(resync("slow_consumer")),
        }
    }
}

/// The project a stored workspace-stream frame is about (None: not a project lifecycle event).
fn workspace_project(frame: &[u8]) -> Option<String> {
    match WebSocketMessage::decode(frame).ok()?.payload? {
        Payload::ProjectCreated(c) => c.project.map(|p| p.id),
        Payload::ProjectUpdated(u) => u.project.map(|p| p.id),
        Payload::ProjectDeleted(d) => Some(d.project_id),
        _ => None,
    }
}

fn reply(message_id: &str, payload: Payload) -> WebSocketMessage {
    WebSocketMessage::with_payload(message_id, payload)
}

fn empty_reply(message_id: &str) -> WebSocketMessage {
    WebSocketMessage {
        message_id: message_id.to_string(),
        timestamp: pm_shared::now_secs(),
        ..Default::default()
    }
}

fn snapshot_reply(
    message_id: &str,
    payload: Payload,
    stream: &str,
    seq: u64,
    epoch: &str,
) -> WebSocketMessage {
    WebSocketMessage {
        seq,
        stream: stream.to_string(),
        epoch: epoch.to_string(),
        ..reply(message_id, payload)
    }
}

fn event_envelope(payload: Payload, stream: &str, epoch: &str) -> WebSocketMessage {
    WebSocketMessage {
        stream: stream.to_string(),
        epoch: epoch.to_string(),
        ..reply(&uuid::Uuid::new_v4().to_string(), payload)
    }
}

fn error_reply(message_id: &str, err: &AppError) -> WebSocketMessage {
    reply(message_id, Payload::Error(err.to_proto()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// A writer that fell behind sends what is queued with vectored writes; through a pipe that
    /// takes 7 bytes at a time, every item still arrives whole and in order, and the byte
    /// budget comes back to zero.
    #[tokio::test]
    async fn a_batch_arrives_whole_and_in_order_through_short_writes() {
        let (tx, mut rx) = mpsc::channel(16);
        let items: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 10 + 13 * i as usize]).collect();
        let queued = AtomicUsize::new(0);
        for item in &items {
            let framed = Outbound::new(frames::binary_all(&[item]));
            queued.fetch_add(framed.len(), Ordering::AcqRel);
            tx.send(framed).await.unwrap();
        }
        let (mut sink, mut peer) = tokio::io::duplex(7);
        let reader = tokio::spawn(async move {
            let mut all = Vec::new();
            peer.read_to_end(&mut all).await.unwrap();
            all
        });
        let first = rx.recv().await.unwrap();
        write_batch(&mut sink, first, &mut rx, &queued)
            .await
            .unwrap();
        drop(sink);
        let got = frames::payloads(&reader.await.unwrap());
        assert_eq!(got, items);
        assert_eq!(queued.load(Ordering::Acquire), 0);
    }
}
