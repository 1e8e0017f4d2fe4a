//! The WebSocket client SDK: one long-lived session that connects, reconnects with jittered
//! backoff, keeps the link alive with protobuf pings, and correlates requests with responses by
//! `message_id`. It knows nothing of the board: every frame that is not the answer to a
//! [`SessionHandle::request`] is handed to the caller's sink as [`NetEvent::Message`], in the
//! order the server sent it. The caller (which owns the client store) decides what to resume.
//!
//! Presence (who is on a board, see `proto/messages.proto`) is the session's to keep up: the
//! owner says where it is with [`SessionHandle::set_presence`] whenever that changes, and the
//! session tells the server, at most every [`PRESENCE_COALESCE`] (the last word wins), repeats it
//! every [`PRESENCE_HEARTBEAT`] and after every reconnect, even while the owner is busy (a board
//! waiting for `$EDITOR`). The server's PresenceSnapshot / PresenceChanged frames reach the sink
//! like any other message; the answers to presence requests do not.
use std::collections::HashMap;
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
    /// Further servers of the same database (several pm-servers on one PostgreSQL): when the
    /// current one does not answer or drops the link, the next is tried, at once the first
    /// time round; the session resumes there from the owner's cursors as after any reconnect.
    pub fallbacks: Vec<String>,
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
            fallbacks: Vec::new(),
            user_id: user_id.into(),
            name: None,
            token: None,
            ping_every: Duration::from_secs(10),
            dead_after: Duration::from_secs(30),
            max_backoff: Duration::from_secs(10),
        }
    }

    /// The WebSocket URL with identity parameters: the base URL's scheme becomes `ws`/`wss`,
    /// `/ws` is appended to its path unless it already ends there, and any query or fragment it
    /// had is replaced by `user_id` (and `name`). The token is not part of it: it travels in the
    /// `Authorization` header, because query strings end up in access logs.
    pub fn ws_url(&self) -> Result<String, InvalidUrl> {
        let invalid = |why: String| InvalidUrl {
            url: self.url.clone(),
            why,
        };
        let mut url = url::Url::parse(self.url.trim()).map_err(|e| invalid(e.to_string()))?;
        let scheme = match url.scheme() {
            "http" | "ws" => "ws",
            "https" | "wss" => "wss",
            other => return Err(invalid(format!("'{other}' is not http(s) or ws(s)"))),
        };
        url.set_scheme(scheme)
            .map_err(|()| invalid(format!("cannot use the scheme {scheme}")))?;
        // Empty segments (trailing or doubled slashes) are dropped, as the base URL's last
        // slash is not part of the route.
        let mut path: Vec<String> = url
            .path_segments()
            .map(|s| s.filter(|s| !s.is_empty()).map(String::from).collect())
            .unwrap_or_default();
        if path.last().map(String::as_str) != Some("ws") {
            path.push("ws".into());
        }
        url.path_segments_mut()
            .map_err(|()| invalid("it has no path".into()))?
            .clear()
            .extend(&path);
        url.set_fragment(None);
        url.set_query(None);
        url.query_pairs_mut()
            .append_pair("user_id", &self.user_id)
            .extend_pairs(self.name.as_deref().map(|name| ("name", name)));
        Ok(url.into())
    }
}

/// A server URL the session cannot connect to.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid server URL '{url}': {why}")]
pub struct InvalidUrl {
    pub url: String,
    pub why: String,
}

fn boxed(id: String, payload: Payload) -> Box<WebSocketMessage> {
    Box::new(WebSocketMessage::with_payload(id, payload))
}

/// Why a connection ended, or never began, decided where that was seen. It decides what the
/// session does next (see [`Disconnect::retry_in`]); its text is what the owner is told.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Disconnect {
    /// The owner asked for a fresh connection ([`SessionHandle::reconnect`]).
    Requested,
    /// The owner closed the session.
    Closed,
    /// The connection could not be opened.
    ConnectFailed(String),
    /// The server ended the connection; with its close code and reason when it sent a Close.
    ServerClosed(Option<(u16, String)>),
    /// Reading from the connection failed.
    ReadFailed(String),
    /// Writing to the connection failed.
    SendFailed(String),
    /// Nothing came from the server for `SessionConfig::dead_after`.
    Silent,
}

impl Disconnect {
    /// How long to wait before the next attempt, `attempt` being the number of attempts in a
    /// row so far; None: no next attempt.
    fn retry_in(&self, attempt: u32, max: Duration) -> Option<Duration> {
        match self {
            Disconnect::Closed => None,
            // The owner wants the link back now (e.g. to resume); nothing failed.
            Disconnect::Requested => Some(Duration::ZERO),
            Disconnect::ConnectFailed(_)
            | Disconnect::ServerClosed(_)
            | Disconnect::ReadFailed(_)
            | Disconnect::SendFailed(_)
            | Disconnect::Silent => Some(backoff(attempt, max)),
        }
    }
}

impl std::fmt::Display for Disconnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Disconnect::Requested => f.write_str("reconnect requested"),
            Disconnect::Closed => f.write_str("closed"),
            Disconnect::ConnectFailed(e) => write!(f, "connect failed: {e}"),
            Disconnect::ServerClosed(None) => f.write_str("server closed the connection"),
            Disconnect::ServerClosed(Some((code, reason))) => {
                write!(f, "server closed the connection ({code}: {reason})")
            }
            Disconnect::ReadFailed(e) => write!(f, "connection error: {e}"),
            Disconnect::SendFailed(e) => write!(f, "send failed: {e}"),
            Disconnect::Silent => f.write_str("no answer from the server"),
        }
    }
}

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<WebSocketMessage>>>>;

/// How often the session repeats its presence: half the server's 30 s timeout.
pub const PRESENCE_HEARTBEAT: Duration = Duration::from_secs(15);
/// Presence changes closer together than this are sent as one (the latest).
pub const PRESENCE_COALESCE: Duration = Duration::from_millis(250);
/// The message ids of presence requests start with this, so their answers are not the sink's.
const PRESENCE_ID: &str = "presence:";

/// Where the owner is, and what the current connection was told of it.
#[derive(Default)]
struct PresenceState {
    wanted: Option<proto::SetPresenceRequest>,
    /// What the connection was last told (None: nothing, or that it left).
    told: Option<proto::SetPresenceRequest>,
    /// When it was last told anything.
    at: Option<tokio::time::Instant>,
}

impl PresenceState {
    /// The request to send now, if one is due at `now`: a change (once the last send is
    /// [`PRESENCE_COALESCE`] old), or the heartbeat. Leaving is a request with no project.
    fn due(&mut self, now: tokio::time::Instant) -> Option<proto::SetPresenceRequest> {
        let since = self.at.map(|at| now.saturating_duration_since(at));
        let changed = self.wanted != self.told;
        let send = if changed {
            since.is_none_or(|s| s >= PRESENCE_COALESCE)
        } else {
            self.wanted.is_some() && since.is_some_and(|s| s >= PRESENCE_HEARTBEAT)
        };
        if !send {
            return None;
        }
        self.told = self.wanted.clone();
        self.at = Some(now);
        Some(self.wanted.clone().unwrap_or_default())
    }

    /// When [`PresenceState::due`] may next have something.
    fn next_check(&self) -> tokio::time::Instant {
        let at = self.at.unwrap_or_else(tokio::time::Instant::now);
        if self.wanted != self.told {
            at + PRESENCE_COALESCE
        } else {
            at + PRESENCE_HEARTBEAT
        }
    }

    /// A new connection knows nothing of us.
    fn reset(&mut self) {
        self.told = None;
        self.at = None;
    }
}

enum Command {
    Send(Box<WebSocketMessage>),
    /// Where the owner is now (None: on no board).
    Presence(Option<proto::SetPresenceRequest>),
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

    /// Sends a request under a message_id of the caller's choosing (an idempotency key: the
    /// server answers a retry of an idempotent request with the same id by its first answer).
    pub fn send_with_id(&self, id: &str, payload: Payload) -> Result<(), SdkError> {
        if self.state() != LinkState::Connected {
            return Err(SdkError::NotConnected);
        }
        self.commands
            .send(Command::Send(boxed(id.to_string(), payload)))
            .map_err(|_| SdkError::Closed)
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

    /// Says where the owner is (a project, the card it has open, the field it edits, whether
    /// it is invisible), or None when it is on no board. Kept across reconnects, repeated as a
    /// heartbeat, coalesced (see the module documentation); works while disconnected too.
    pub fn set_presence(&self, presence: Option<proto::SetPresenceRequest>) {
        let _ = self.commands.send(Command::Presence(presence));
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
    let mut attempt: u32 = 0;
    let mut presence = PresenceState::default();
    // Every server the session may use, the one it tries now first.
    let mut servers: Vec<String> = std::iter::once(config.url.clone())
        .chain(config.fallbacks.iter().cloned())
        .collect();
    'session: loop {
        attempt += 1;
        state.send_replace(LinkState::Connecting);
        sink(NetEvent::Connecting { attempt });
        if let Some(url) = config.locate.as_ref().and_then(|l| l()) {
            config.url = url;
        }
        let reason = match connect(&config).await {
            Ok(socket) => {
                attempt = 0;
                state.send_replace(LinkState::Connected);
                sink(NetEvent::Connected);
                presence.reset();
                let reason = drive(
                    &config,
                    socket,
                    &mut commands,
                    &pending,
                    &sink,
                    &mut presence,
                )
                .await;
                // Requests in flight will never be answered on a new connection.
                pending.lock().unwrap_or_else(|p| p.into_inner()).clear();
                reason
            }
            Err(reason) => reason,
        };
        state.send_replace(LinkState::Disconnected);
        let Some(mut retry_in) = reason.retry_in(attempt, config.max_backoff) else {
            break;
        };
        if servers.len() > 1 && reason != Disconnect::Requested {
            // The next server, at once while the round has servers not tried yet.
            servers.rotate_left(1);
            config.url = servers[0].clone();
            if (attempt as usize) < servers.len() {
                retry_in = Duration::ZERO;
            }
        }
        sink(NetEvent::Disconnected {
            reason: reason.to_string(),
            retry_in,
        });
        let sleep = tokio::time::sleep(retry_in);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                cmd = commands.recv() => match cmd {
                    None | Some(Command::Close) => break 'session,
                    // Not connected: the request is dropped; `request` callers time out or see
                    // NotConnected, and owners re-sync on the next Connected.
                    Some(Command::Send(_)) => {}
                    Some(Command::Presence(p)) => presence.wanted = p,
                    // "Retry now": the next attempt starts at once instead of after the backoff.
                    Some(Command::Reconnect) => break,
                },
            }
        }
    }
    state.send_replace(LinkState::Disconnected);
}

/// Opens the WebSocket, with the bearer token when there is one.
async fn connect(config: &SessionConfig) -> Result<Socket, Disconnect> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let failed = |e: &dyn std::fmt::Display| Disconnect::ConnectFailed(e.to_string());
    let url = config.ws_url().map_err(|e| failed(&e))?;
    let mut request = url.into_client_request().map_err(|e| failed(&e))?;
    if let Some(token) = &config.token {
        if let Ok(value) = format!("Bearer {}", token.trim()).parse() {
            request.headers_mut().insert("authorization", value);
        }
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(e) => Err(failed(&e)),
    }
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
    presence: &mut PresenceState,
) -> Disconnect {
    let (mut tx, mut rx) = socket.split();
    let mut ping = tokio::time::interval(config.ping_every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_heard = tokio::time::Instant::now();
    loop {
        tokio::select! {
            frame = rx.next() => {
                last_heard = tokio::time::Instant::now();
                match frame {
                    None => return Disconnect::ServerClosed(None),
                    Some(Err(e)) => return Disconnect::ReadFailed(e.to_string()),
                    Some(Ok(Message::Binary(bytes))) => {
                        let Ok(msg) = WebSocketMessage::decode(bytes) else { continue };
                        if matches!(msg.payload, Some(Payload::Pong(_)))
                            || msg.message_id.starts_with(PRESENCE_ID)
                        {
                            continue;
                        }
                        let waiter = pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&msg.message_id);
                        match waiter {
                            Some(w) => { let _ = w.send(msg); }
                            None => sink(NetEvent::Message(Box::new(msg))),
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        return Disconnect::ServerClosed(
                            frame.map(|f| (u16::from(f.code), f.reason.to_string())),
                        );
                    }
                    Some(Ok(_)) => {}
                }
            }
            cmd = commands.recv() => match cmd {
                None | Some(Command::Close) => {
                    let _ = tx.send(Message::Close(None)).await;
                    return Disconnect::Closed;
                }
                Some(Command::Reconnect) => {
                    let _ = tx.send(Message::Close(None)).await;
                    return Disconnect::Requested;
                }
                Some(Command::Send(msg)) => {
                    if let Err(e) = tx.send(Message::Binary(msg.encode_to_vec().into())).await {
                        return Disconnect::SendFailed(e.to_string());
                    }
                }
                Some(Command::Presence(p)) => presence.wanted = p,
            },
            _ = tokio::time::sleep_until(presence.next_check()) => {}
            _ = ping.tick() => {
                if last_heard.elapsed() > config.dead_after {
                    return Disconnect::Silent;
                }
                let msg = WebSocketMessage::with_payload(
                    uuid::Uuid::new_v4().to_string(),
                    Payload::Ping(proto::Ping { timestamp: pm_shared::now_secs() }),
                );
                if let Err(e) = tx.send(Message::Binary(msg.encode_to_vec().into())).await {
                    return Disconnect::SendFailed(e.to_string());
                }
            }
        }
        if let Some(request) = presence.due(tokio::time::Instant::now()) {
            let msg = WebSocketMessage::with_payload(
                format!("{PRESENCE_ID}{}", uuid::Uuid::new_v4()),
                Payload::SetPresenceRequest(request),
            );
            if let Err(e) = tx.send(Message::Binary(msg.encode_to_vec().into())).await {
                return Disconnect::SendFailed(e.to_string());
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
        assert_eq!(c.ws_url().unwrap(), "ws://127.0.0.1:9/ws?user_id=u1");
        c.name = Some("Ann Lee".into());
        // Form encoding (what the server's query parser reads): a space is '+'.
        assert_eq!(
            c.ws_url().unwrap(),
            "ws://127.0.0.1:9/ws?user_id=u1&name=Ann+Lee"
        );
        assert_eq!(
            SessionConfig::new("ws://h:1/ws", "u").ws_url().unwrap(),
            "ws://h:1/ws?user_id=u"
        );
        assert_eq!(
            SessionConfig::new("https://h/ws/", "u").ws_url().unwrap(),
            "wss://h/ws?user_id=u"
        );
        assert!(SessionConfig::new("ftp://h/", "u").ws_url().is_err());
        assert!(SessionConfig::new("not a url", "u").ws_url().is_err());
    }

    /// A base URL under a path prefix keeps it, and values with reserved characters reach the
    /// server's query parser exactly as they were given.
    #[test]
    fn urls_keep_a_path_prefix_and_escape_values() {
        let awkward = "tok+en/=&?#% é";
        let mut c = SessionConfig::new("https://example.com/pm/api/?stale=1#frag", awkward);
        c.name = Some("Ann & Lee=1".into());
        let url = c.ws_url().unwrap();
        assert_eq!(
            url,
            "wss://example.com/pm/api/ws?user_id=tok%2Ben%2F%3D%26%3F%23%25+%C3%A9&name=Ann+%26+Lee%3D1"
        );
        let parsed = url::Url::parse(&url).unwrap();
        assert_eq!(parsed.path(), "/pm/api/ws");
        let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
        assert_eq!(
            pairs,
            [
                ("user_id".to_string(), awkward.to_string()),
                ("name".to_string(), "Ann & Lee=1".to_string()),
            ]
        );
        c.url = "http://h:8080/prefix".into();
        assert!(c.ws_url().unwrap().starts_with("ws://h:8080/prefix/ws?"));
    }

    #[test]
    fn only_a_requested_reconnect_skips_the_backoff() {
        let max = Duration::from_secs(10);
        assert_eq!(Disconnect::Requested.retry_in(5, max), Some(Duration::ZERO));
        assert_eq!(Disconnect::Closed.retry_in(5, max), None);
        for failed in [
            Disconnect::ConnectFailed("refused".into()),
            Disconnect::ServerClosed(None),
            Disconnect::ServerClosed(Some((1001, "server shutting down".into()))),
            Disconnect::ReadFailed("reset".into()),
            Disconnect::SendFailed("broken pipe".into()),
            Disconnect::Silent,
        ] {
            let wait = failed.retry_in(5, max).expect("retried");
            assert!(wait >= Duration::from_millis(3_000), "{failed}: {wait:?}");
        }
        // A server whose close reason reads like a request is still backed off from.
        let lookalike = Disconnect::ServerClosed(Some((1000, "reconnect requested".into())));
        assert!(lookalike.retry_in(1, max) > Some(Duration::ZERO));
        assert_eq!(
            lookalike.to_string(),
            "server closed the connection (1000: reconnect requested)"
        );
    }

    async fn next_event(rx: &mut mpsc::UnboundedReceiver<NetEvent>) -> NetEvent {
        tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("an event")
            .expect("the session runs")
    }

    /// Against a real socket: the owner's reconnect is retried at once, a server's Close is
    /// reported with its code and reason and backed off from.
    #[tokio::test]
    async fn a_requested_reconnect_is_immediate_and_a_server_close_backs_off() {
        use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
        use tokio_tungstenite::tungstenite::protocol::CloseFrame;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            // The first connection is dropped by the client; the server closes the second.
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            while let Some(Ok(m)) = ws.next().await {
                if m.is_close() {
                    break;
                }
            }
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            let bye = CloseFrame {
                code: CloseCode::Policy,
                reason: "go away".into(),
            };
            ws.close(Some(bye)).await.unwrap();
            while let Some(Ok(_)) = ws.next().await {}
        });
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut config = SessionConfig::new(format!("http://{addr}/"), "u1");
        config.max_backoff = Duration::from_secs(60);
        let handle = spawn(config, move |e| {
            let _ = tx.send(e);
        });
        assert!(matches!(
            next_event(&mut rx).await,
            NetEvent::Connecting { .. }
        ));
        assert!(matches!(next_event(&mut rx).await, NetEvent::Connected));
        handle.reconnect();
        let NetEvent::Disconnected { reason, retry_in } = next_event(&mut rx).await else {
            panic!("expected the link to drop")
        };
        assert_eq!(reason, "reconnect requested");
        assert_eq!(retry_in, Duration::ZERO);
        assert!(matches!(
            next_event(&mut rx).await,
            NetEvent::Connecting { .. }
        ));
        assert!(matches!(next_event(&mut rx).await, NetEvent::Connected));
        let NetEvent::Disconnected { reason, retry_in } = next_event(&mut rx).await else {
            panic!("expected the server to close")
        };
        assert_eq!(reason, "server closed the connection (1008: go away)");
        assert!(retry_in >= Duration::from_millis(187), "{retry_in:?}");
        handle.close();
        server.await.unwrap();
    }

    /// Given several servers, a session passes over one that refuses at once (no backoff the
    /// first time round), and moves to the next when its server closes the link.
    #[tokio::test]
    async fn a_session_moves_to_the_next_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            ws.close(None).await.unwrap();
            while let Some(Ok(_)) = ws.next().await {}
        });
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut config = SessionConfig::new("ws://127.0.0.1:1/ws", "u1");
        config.fallbacks = vec![format!("http://{addr}/")];
        config.max_backoff = Duration::from_secs(60);
        let handle = spawn(config, move |e| {
            let _ = tx.send(e);
        });
        assert!(matches!(
            next_event(&mut rx).await,
            NetEvent::Connecting { .. }
        ));
        let NetEvent::Disconnected { retry_in, .. } = next_event(&mut rx).await else {
            panic!("the dead server refuses")
        };
        assert_eq!(retry_in, Duration::ZERO, "the next server is tried at once");
        assert!(matches!(
            next_event(&mut rx).await,
            NetEvent::Connecting { .. }
        ));
        assert!(matches!(next_event(&mut rx).await, NetEvent::Connected));
        // The live one closes: back to the first (which refuses) at once.
        let NetEvent::Disconnected { retry_in, .. } = next_event(&mut rx).await else {
            panic!("the server closes")
        };
        assert_eq!(retry_in, Duration::ZERO);
        handle.close();
        server.await.unwrap();
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
        // Wait for a backoff of 1.5 s or more (the fourth failed attempt).
        let attempt = loop {
            if let NetEvent::Disconnected { retry_in, .. } = next_event(&mut rx).await {
                if retry_in >= Duration::from_millis(1500) {
                    break retry_in;
                }
            }
        };
        let asked = tokio::time::Instant::now();
        handle.reconnect();
        let NetEvent::Connecting { .. } = next_event(&mut rx).await else {
            panic!("expected a new attempt")
        };
        assert!(
            asked.elapsed() < Duration::from_millis(500),
            "retried after {:?} (backoff was {attempt:?})",
            asked.elapsed()
        );
        handle.close();
    }

    /// Changes go out at once, then no more often than every PRESENCE_COALESCE (the latest
    /// wins); an unchanged presence is repeated every PRESENCE_HEARTBEAT; leaving is said once.
    #[test]
    fn presence_is_coalesced_repeated_and_left_once() {
        let here = |item: &str| proto::SetPresenceRequest {
            project_id: "p".into(),
            work_item_id: Some(item.into()),
            ..Default::default()
        };
        let t0 = tokio::time::Instant::now();
        let mut p = PresenceState::default();
        assert_eq!(p.due(t0), None, "nothing to say");
        p.wanted = Some(here("a"));
        assert_eq!(p.due(t0), Some(here("a")), "the first change at once");
        p.wanted = Some(here("b"));
        p.wanted = Some(here("c"));
        let soon = t0 + PRESENCE_COALESCE / 2;
        assert_eq!(p.due(soon), None, "coalesced");
        assert_eq!(p.next_check(), t0 + PRESENCE_COALESCE);
        assert_eq!(p.due(t0 + PRESENCE_COALESCE), Some(here("c")), "the latest");
        let later = t0 + PRESENCE_COALESCE + Duration::from_secs(5);
        assert_eq!(p.due(later), None, "no news, no heartbeat yet");
        let beat = t0 + PRESENCE_COALESCE + PRESENCE_HEARTBEAT;
        assert_eq!(p.next_check(), beat);
        assert_eq!(p.due(beat), Some(here("c")), "the heartbeat");
        p.wanted = None;
        let left = p.due(beat + PRESENCE_COALESCE).expect("leaving is said");
        assert!(left.project_id.is_empty());
        assert_eq!(p.due(beat + PRESENCE_HEARTBEAT * 2), None, "and only once");
        p.wanted = Some(here("d"));
        p.reset();
        assert_eq!(
            p.due(beat),
            Some(here("d")),
            "a new connection is told at once"
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let max = Duration::from_secs(10);
        assert!(backoff(1, max) <= Duration::from_millis(313));
        assert!(backoff(20, max) <= Duration::from_millis(12_500));
        assert!(backoff(20, max) >= Duration::from_millis(7_500));
    }
}
