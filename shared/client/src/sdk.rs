//! The WebSocket client SDK: one long-lived session that connects, reconnects with jittered
//! backoff, keeps the link alive with protobuf pings, and correlates requests with responses by
//! `message_id`. It knows nothing of the board: every frame that is not the answer to a
//! [`SessionHandle::request`] is handed to the caller's sink as [`NetEvent::Message`], in the
//! order the server sent it. The caller (which owns the client store) decides what to resume.
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::Message;

use pm_shared::proto::{self, Payload, WebSocketMessage};

/// What the session reports to its owner.
#[derive(Debug, Clone)]
pub enum NetEvent {
    Connecting { attempt: u32 },
    Connected,
    Disconnected { reason: String, retry_in: Duration },
    Message(Box<WebSocketMessage>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Connecting,
    Connected,
    Disconnected,
}

#[derive(Debug, thiserror::Error)]
pub enum SdkError {
    #[error("not connected to the server")]
    NotConnected,
    #[error("the server did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the connection closed before the server answered")]
    Closed,
    #[error("{code}: {message}")]
    Server {
        code: String,
        message: String,
        field: Option<String>,
    },
}

/// Finds the server's current base URL before each connection attempt (e.g. by re-reading the
/// port file, so a server restarted on another port is found again).
pub type Locate = Arc<dyn Fn() -> Option<String> + Send + Sync>;

#[derive(Clone)]
pub struct SessionConfig {
    /// `ws://host:port/ws` (an `http://` base URL is accepted too).
    pub url: String,
    /// When set, consulted before every attempt; `url` is the fallback.
    pub locate: Option<Locate>,
    pub user_id: String,
    /// Display name other users see.
    pub name: Option<String>,
    /// Bearer token for a server in token mode (sent as `Authorization: Bearer`).
    pub token: Option<String>,
    pub ping_every: Duration,
    /// No frame for this long means the link is dead.
    pub dead_after: Duration,
    pub max_backoff: Duration,
}

impl SessionConfig {
    pub fn new(url: impl Into<String>, user_id: impl Into<String>) -> Self {
        SessionConfig {
            url: url.into(),
            locate: None,
            user_id: user_id.into(),
            name: None,
            token: None,
            ping_every: Duration::from_secs(10),
            dead_after: Duration::from_secs(30),
            max_backoff: Duration::from_secs(10),
        }
    }

    /// The WebSocket URL with identity parameters.
    pub fn ws_url(&self) -> String {
        let base = self.url.trim_end_matches('/');
        let base = if let Some(rest) = base.strip_prefix("http://") {
            format!("ws://{rest}")
        } else if let Some(rest) = base.strip_prefix("https://") {
            format!("wss://{rest}")
        } else {
            base.to_string()
        };
        let base = if base.ends_with("/ws") {
            base
        } else {
            format!("{base}/ws")
        };
        let mut url = format!("{base}?user_id={}", encode(&self.user_id));
        if let Some(name) = &self.name {
            url.push_str(&format!("&name={}", encode(name)));
        }
        url
    }
}

/// Percent-encodes a query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn boxed(id: String, payload: Payload) -> Box<WebSocketMessage> {
    Box::new(WebSocketMessage::with_payload(id, payload))
}

const RECONNECT_REQUESTED: &str = "reconnect requested";

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<WebSocketMessage>>>>;

enum Command {
    Send(Box<WebSocketMessage>),
    /// Drop the current connection and start over (resuming from the owner's cursors).
    Reconnect,
    Close,
}

/// A cheap, cloneable handle on a running session.
#[derive(Clone)]
pub struct SessionHandle {
    commands: mpsc::UnboundedSender<Command>,
    pending: Pending,
    state: watch::Receiver<LinkState>,
}

/// Starts a session in the background. Events go to `sink` in arrival order.
pub fn spawn(
    config: SessionConfig,
    sink: impl Fn(NetEvent) + Send + Sync + 'static,
) -> SessionHandle {
    let (commands, rx) = mpsc::unbounded_channel();
    let pending: Pending = Arc::default();
    let (state_tx, state) = watch::channel(LinkState::Connecting);
    tokio::spawn(run(config, rx, pending.clone(), state_tx, Arc::new(sink)));
    SessionHandle {
        commands,
        pending,
        state,
    }
}

impl SessionHandle {
    pub fn state(&self) -> LinkState {
        *self.state.borrow()
    }

    /// Sends a request without waiting; its response arrives as a `NetEvent::Message` carrying
    /// the returned message_id.
    pub fn send(&self, payload: Payload) -> Result<String, SdkError> {
        if self.state() != LinkState::Connected {
            return Err(SdkError::NotConnected);
        }
        let id = uuid::Uuid::new_v4().to_string();
        self.commands
            .send(Command::Send(boxed(id.clone(), payload)))
            .map_err(|_| SdkError::Closed)?;
        Ok(id)
    }

    /// Sends a request and waits for its response. A server `Error` becomes `SdkError::Server`.
    pub async fn request(
        &self,
        payload: Payload,
        timeout: Duration,
    ) -> Result<WebSocketMessage, SdkError> {
        if self.state() != LinkState::Connected {
            return Err(SdkError::NotConnected);
        }
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), tx);
        if self
            .commands
            .send(Command::Send(boxed(id.clone(), payload)))
            .is_err()
        {
            return Err(SdkError::Closed);
        }
        let answer = tokio::time::timeout(timeout, rx).await;
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        let msg = answer
            .map_err(|_| SdkError::Timeout(timeout))?
            .map_err(|_| SdkError::Closed)?;
        if let Some(Payload::Error(e)) = msg.payload {
            return Err(SdkError::Server {
                code: e.code,
                message: e.message,
                field: e.field,
            });
        }
        Ok(msg)
    }

    /// Waits until the session is connected (or `timeout` passes).
    pub async fn connected(&self, timeout: Duration) -> bool {
        let mut state = self.state.clone();
        tokio::time::timeout(timeout, state.wait_for(|s| *s == LinkState::Connected))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Drops the current connection; the session reconnects as it would after a network error.
    /// While disconnected, the next attempt starts at once instead of after the backoff.
    pub fn reconnect(&self) {
        let _ = self.commands.send(Command::Reconnect);
    }

    /// Ends the session.
    pub fn close(&self) {
        let _ = self.commands.send(Command::Close);
    }
}

async fn run(
    mut config: SessionConfig,
    mut commands: mpsc::UnboundedReceiver<Command>,
    pending: Pending,
    state: watch::Sender<LinkState>,
    sink: Arc<dyn Fn(NetEvent) + Send + Sync>,
) {
    let closed = AtomicBool::new(false);
    let mut attempt: u32 = 0;
    while !closed.load(Ordering::Relaxed) {
        attempt += 1;
        state.send_replace(LinkState::Connecting);
        sink(NetEvent::Connecting { attempt });
        if let Some(url) = config.locate.as_ref().and_then(|l| l()) {
            config.url = url;
        }
        let reason = match connect(&config).await {
            Ok((socket, _)) => {
                attempt = 0;
                state.send_replace(LinkState::Connected);
                sink(NetEvent::Connected);
                let reason = drive(&config, socket, &mut commands, &pending, &sink, &closed).await;
                // Requests in flight will never be answered on a new connection.
                pending.lock().unwrap_or_else(|p| p.into_inner()).clear();
                reason
            }
            Err(e) => format!("connect failed: {e}"),
        };
        state.send_replace(LinkState::Disconnected);
        if closed.load(Ordering::Relaxed) {
            break;
        }
        let retry_in = if reason == RECONNECT_REQUESTED {
            Duration::ZERO
        } else {
            backoff(attempt, config.max_backoff)
        };
        sink(NetEvent::Disconnected { reason, retry_in });
        let sleep = tokio::time::sleep(retry_in);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                cmd = commands.recv() => match cmd {
                    None | Some(Command::Close) => { closed.store(true, Ordering::Relaxed); break; }
                    // Not connected: the request is dropped; `request` callers time out or see
                    // NotConnected, and owners re-sync on the next Connected.
                    Some(Command::Send(_)) => {}
                    // "Retry now": the next attempt starts at once instead of after the backoff.
                    Some(Command::Reconnect) => break,
                },
            }
        }
    }
    state.send_replace(LinkState::Disconnected);
}

/// Opens the WebSocket, with the bearer token when there is one.
async fn connect(
    config: &SessionConfig,
) -> Result<
    (
        Socket,
        tokio_tungstenite::tungstenite::http::Response<Option<Vec<u8>>>,
    ),
    tokio_tungstenite::tungstenite::Error,
> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = config.ws_url().into_client_request()?;
    if let Some(token) = &config.token {
        if let Ok(value) = format!("Bearer {}", token.trim()).parse() {
            request.headers_mut().insert("authorization", value);
        }
    }
    tokio_tungstenite::connect_async(request).await
}

/// 250 ms doubling per attempt up to `max`, with ±25 % jitter so many clients that lost the same
/// server do not all come back in the same instant.
fn backoff(attempt: u32, max: Duration) -> Duration {
    let base = Duration::from_millis(250).saturating_mul(1 << attempt.min(8).saturating_sub(1));
    let base = base.min(max);
    let jitter: f64 = rand::random_range(0.75..1.25);
    base.mul_f64(jitter)
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Runs one connection until it ends; returns why.
async fn drive(
    config: &SessionConfig,
    socket: Socket,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    pending: &Pending,
    sink: &Arc<dyn Fn(NetEvent) + Send + Sync>,
    closed: &AtomicBool,
) -> String {
    let (mut tx, mut rx) = socket.split();
    let mut ping = tokio::time::interval(config.ping_every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_heard = tokio::time::Instant::now();
    loop {
        tokio::select! {
            frame = rx.next() => {
                last_heard = tokio::time::Instant::now();
                match frame {
                    None => return "server closed the connection".into(),
                    Some(Err(e)) => return format!("connection error: {e}"),
                    Some(Ok(Message::Binary(bytes))) => {
                        let Ok(msg) = WebSocketMessage::decode(bytes) else { continue };
                        if matches!(msg.payload, Some(Payload::Pong(_))) {
                            continue;
                        }
                        let waiter = pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&msg.message_id);
                        match waiter {
                            Some(w) => { let _ = w.send(msg); }
                            None => sink(NetEvent::Message(Box::new(msg))),
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        return match frame {
                            Some(f) => format!("server closed the connection ({}: {})", u16::from(f.code), f.reason),
                            None => "server closed the connection".into(),
                        };
                    }
                    Some(Ok(_)) => {}
                }
            }
            cmd = commands.recv() => match cmd {
                None | Some(Command::Close) => {
                    closed.store(true, Ordering::Relaxed);
                    let _ = tx.send(Message::Close(None)).await;
                    return "closed".into();
                }
                Some(Command::Reconnect) => {
                    let _ = tx.send(Message::Close(None)).await;
                    return RECONNECT_REQUESTED.into();
                }
                Some(Command::Send(msg)) => {
                    if let Err(e) = tx.send(Message::Binary(msg.encode_to_vec().into())).await {
                        return format!("send failed: {e}");
                    }
                }
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > config.dead_after {
                    return "no answer from the server".into();
                }
                let msg = WebSocketMessage::with_payload(
                    uuid::Uuid::new_v4().to_string(),
                    Payload::Ping(proto::Ping { timestamp: pm_shared::now_secs() }),
                );
                if let Err(e) = tx.send(Message::Binary(msg.encode_to_vec().into())).await {
                    return format!("send failed: {e}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let mut c = SessionConfig::new("http://127.0.0.1:9/", "u1");
        assert_eq!(c.ws_url(), "ws://127.0.0.1:9/ws?user_id=u1");
        c.name = Some("Ann Lee".into());
        assert_eq!(c.ws_url(), "ws://127.0.0.1:9/ws?user_id=u1&name=Ann%20Lee");
        assert_eq!(
            SessionConfig::new("ws://h:1/ws", "u").ws_url(),
            "ws://h:1/ws?user_id=u"
        );
    }

    /// While the session waits out a long backoff, `reconnect` starts the next attempt at once.
    #[tokio::test]
    async fn reconnect_while_disconnected_retries_at_once() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut config = SessionConfig::new("ws://127.0.0.1:1/ws", "u1");
        config.max_backoff = Duration::from_secs(60);
        let handle = spawn(config, move |e| {
            let _ = tx.send(e);
        });
        async fn next(rx: &mut mpsc::UnboundedReceiver<NetEvent>) -> NetEvent {
            tokio::time::timeout(Duration::from_secs(20), rx.recv())
                .await
                .expect("an event")
                .expect("the session runs")
        }
        // Wait for a backoff of 1.5 s or more (the fourth failed attempt).
        let attempt = loop {
            if let NetEvent::Disconnected { retry_in, .. } = next(&mut rx).await {
                if retry_in >= Duration::from_millis(1500) {
                    break retry_in;
                }
            }
        };
        let asked = tokio::time::Instant::now();
        handle.reconnect();
        let NetEvent::Connecting { .. } = next(&mut rx).await else {
            panic!("expected a new attempt")
        };
        assert!(
            asked.elapsed() < Duration::from_millis(500),
            "retried after {:?} (backoff was {attempt:?})",
            asked.elapsed()
        );
        handle.close();
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let max = Duration::from_secs(10);
        assert!(backoff(1, max) <= Duration::from_millis(313));
        assert!(backoff(20, max) <= Duration::from_millis(12_500));
        assert!(backoff(20, max) >= Duration::from_millis(7_500));
    }
}
