//! The test harness: a real pm-server on a loopback port (started in-process exactly as
//! production does, by `pm_server::testing`), real SQLite files in a temporary directory, real
//! WebSocket clients (tokio-tungstenite) and a real HTTP client (reqwest).
//!
//! Every wait has a deadline, so a broken server fails a test instead of hanging it.
#![allow(dead_code)]

pub mod fixture;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use pm_server::{Config, SharedState};
use pm_shared::proto::{self, Payload, WebSocketMessage};
use prost::Message as _;
use serde_json::Value;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// How long a request or an expected event may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(10);

pub const USER_A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
pub const USER_B: &str = "bbbbbbbb-0000-4000-8000-000000000002";
pub const USER_C: &str = "cccccccc-0000-4000-8000-000000000003";

/// The JWT secret of [`TestServer::start_team`].
pub const TEAM_SECRET: &str = "team-mode-test-secret-of-at-least-32-chars";

/// A token for `user` on a [`TestServer::start_team`] server, valid for an hour.
pub fn team_token(user: &str) -> String {
    pm_server::auth::issue(TEAM_SECRET, user, vec![], 3600).expect("token")
}

/// Extracts one variant of the payload oneof, or fails the test naming what came instead.
#[macro_export]
macro_rules! expect_payload {
    ($msg:expr, $variant:ident) => {{
        // Evaluated once: `$msg` may be a request.
        let msg = &$msg;
        match msg.payload.clone() {
            Some(pm_shared::proto::Payload::$variant(inner)) => inner,
            other => panic!(
                "expected {}, got {:?} (message_id {:?})",
                stringify!($variant),
                other,
                msg.message_id
            ),
        }
    }};
}

/// Ends a test that is about SQLite itself (its file, checkpoints, a full disk, reference
/// databases) or looks into the SQLite file directly, when the suite runs on PostgreSQL
/// (`PM_TEST_DATABASE_URL`, see `pm_server::testing`).
macro_rules! sqlite_only {
    () => {
        if pm_server::testing::on_postgres() {
            eprintln!("SQLite only: not run on PostgreSQL");
            return;
        }
    };
}

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

/// A server of [`pm_server::testing`] on a temporary data directory.
pub struct TestServer {
    pub addr: SocketAddr,
    pub state: SharedState,
    server: pm_server::testing::TestServer<tempfile::TempDir>,
}

impl TestServer {
    /// A server with the default configuration on a fresh data directory.
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// A server on a fresh data directory, with `configure` applied to the configuration.
    pub async fn start_with(configure: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("temporary directory");
        Self::start_in(dir, configure).await
    }

    /// A server on an existing data directory (a restart).
    pub async fn start_in(
        dir: tempfile::TempDir,
        configure: impl FnOnce(&mut Config),
    ) -> TestServer {
        let server = pm_server::testing::TestServer::start(dir, configure)
            .await
            .expect("start the server");
        TestServer::of(server)
    }

    /// A server on a fresh data directory listening on `bind` (e.g. `[::]:0`), with
    /// `configure` applied; None when that address cannot be bound on this machine.
    pub async fn start_bound(
        bind: &str,
        configure: impl FnOnce(&mut Config),
    ) -> Option<TestServer> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let listener = tokio::net::TcpListener::bind(bind).await.ok()?;
        let server = pm_server::testing::TestServer::start_on(listener, dir, configure)
            .await
            .expect("start the server");
        Some(TestServer::of(server))
    }

    fn of(server: pm_server::testing::TestServer<tempfile::TempDir>) -> TestServer {
        TestServer {
            addr: server.addr,
            state: server.state.clone(),
            server,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.server.data_dir().to_path_buf()
    }

    /// This database's event epoch.
    pub fn epoch(&self) -> String {
        self.state.store.epoch()
    }

    /// Shuts the server down gracefully and hands back its data directory.
    pub async fn stop(self) -> tempfile::TempDir {
        self.server.stop().await.expect("a graceful stop")
    }

    pub fn ws_url(&self, query: &str) -> String {
        if query.is_empty() {
            format!("ws://{}/ws", self.addr)
        } else {
            format!("ws://{}/ws?{}", self.addr, query)
        }
    }

    /// A WebSocket client acting as `user_id`.
    pub async fn connect(&self, user_id: &str) -> WsClient {
        WsClient::connect(self.addr, &format!("user_id={user_id}"), None).await
    }

    /// A WebSocket client with an arbitrary query string (identity tests).
    pub async fn connect_query(&self, query: &str) -> WsClient {
        WsClient::connect(self.addr, query, None).await
    }

    /// A WebSocket client whose socket has a small receive buffer, so that a client that stops
    /// reading makes the server's side back up quickly.
    pub async fn connect_small_buffer(&self, user_id: &str, bytes: u32) -> WsClient {
        WsClient::connect(self.addr, &format!("user_id={user_id}"), Some(bytes)).await
    }

    /// A server in token mode (`--auth token`) signed with [`TEAM_SECRET`].
    pub async fn start_team() -> TestServer {
        Self::start_with(|c| {
            c.auth = pm_server::config::AuthMode::Token;
            c.jwt_secret = Some(TEAM_SECRET.into());
        })
        .await
    }

    /// A WebSocket client of a token-mode server, carrying `user`'s token.
    pub async fn connect_team(&self, user: &str) -> WsClient {
        self.connect_query(&format!("token={}", team_token(user)))
            .await
    }

    /// An HTTP client acting as `user_id` (None: no X-User-Id header).
    pub fn http(&self, user_id: Option<&str>) -> Http {
        Http::new(self.addr, user_id)
    }
}

// ---------------------------------------------------------------------------------------------
// The WebSocket client
// ---------------------------------------------------------------------------------------------

/// What the socket produced.
#[derive(Debug)]
pub enum Incoming {
    Msg(Box<WebSocketMessage>),
    /// A close frame (with its code), the end of the stream, or a transport error.
    Closed {
        code: Option<u16>,
        error: Option<String>,
    },
}

pub struct WsClient {
    ws: WebSocketStream<TcpStream>,
    pub user_id: String,
    /// Messages that were not the awaited response, in arrival order.
    events: VecDeque<WebSocketMessage>,
    closed: bool,
}

impl WsClient {
    pub async fn connect(addr: SocketAddr, query: &str, recv_buffer: Option<u32>) -> WsClient {
        let socket = TcpSocket::new_v4().expect("socket");
        if let Some(bytes) = recv_buffer {
            socket.set_recv_buffer_size(bytes).expect("SO_RCVBUF");
        }
        let stream = tokio::time::timeout(TIMEOUT, socket.connect(addr))
            .await
            .expect("TCP connect timed out")
            .expect("TCP connect");
        stream.set_nodelay(true).expect("nodelay");
        let url = if query.is_empty() {
            format!("ws://{addr}/ws")
        } else {
            format!("ws://{addr}/ws?{query}")
        };
        let (ws, _) = tokio::time::timeout(TIMEOUT, tokio_tungstenite::client_async(url, stream))
            .await
            .expect("WebSocket handshake timed out")
            .expect("WebSocket handshake");
        let user_id = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("user_id="))
            .unwrap_or_default()
            .to_string();
        WsClient {
            ws,
            user_id,
            events: VecDeque::new(),
            closed: false,
        }
    }

    pub async fn send(&mut self, msg: &WebSocketMessage) {
        self.send_raw(Message::Binary(msg.encode_to_vec().into()))
            .await;
    }

    pub async fn send_raw(&mut self, message: Message) {
        tokio::time::timeout(TIMEOUT, self.ws.send(message))
            .await
            .expect("send timed out")
            .expect("send failed");
    }

    /// Sends without failing the test when the transport breaks (oversized frames).
    pub async fn try_send_raw(&mut self, message: Message) -> Result<(), String> {
        match tokio::time::timeout(TIMEOUT, self.ws.send(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("send timed out".into()),
        }
    }

    /// The next message, response or event, before `deadline`; None on timeout. Fails the test
    /// if the connection closes.
    pub async fn read_any(&mut self, deadline: Instant) -> Option<WebSocketMessage> {
        match self.read(deadline).await? {
            Incoming::Msg(m) => Some(*m),
            Incoming::Closed { code, error } => {
                panic!("connection closed: code {code:?}, error {error:?}")
            }
        }
    }

    /// The next thing the socket produces before `deadline`; None on timeout.
    async fn read(&mut self, deadline: Instant) -> Option<Incoming> {
        if self.closed {
            return Some(Incoming::Closed {
                code: None,
                error: Some("already closed".into()),
            });
        }
        loop {
            let next = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return None,
                Ok(next) => next,
            };
            match next {
                Some(Ok(Message::Binary(bytes))) => {
                    let msg = WebSocketMessage::decode(bytes.as_ref())
                        .expect("server sent a frame that is not a WebSocketMessage");
                    return Some(Incoming::Msg(Box::new(msg)));
                }
                Some(Ok(Message::Text(text))) => {
                    panic!("server sent a text frame: {text}")
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Close(frame))) => {
                    self.closed = true;
                    return Some(Incoming::Closed {
                        code: frame.map(|f| u16::from(f.code)),
                        error: None,
                    });
                }
                Some(Err(e)) => {
                    self.closed = true;
                    return Some(Incoming::Closed {
                        code: None,
                        error: Some(e.to_string()),
                    });
                }
                None => {
                    self.closed = true;
                    return Some(Incoming::Closed {
                        code: None,
                        error: None,
                    });
                }
            }
        }
    }

    /// Sends `payload` with a fresh message_id and returns the response; everything else that
    /// arrives meanwhile is kept, in order, as events.
    pub async fn request(&mut self, payload: Payload) -> WebSocketMessage {
        let id = uuid::Uuid::new_v4().to_string();
        self.request_with_id(&id, payload).await
    }

    pub async fn request_with_id(
        &mut self,
        message_id: &str,
        payload: Payload,
    ) -> WebSocketMessage {
        let msg = WebSocketMessage {
            message_id: message_id.to_string(),
            timestamp: 0,
            payload: Some(payload),
            ..Default::default()
        };
        self.send_and_await(&msg).await
    }

    /// Sends a prepared envelope and waits for the response echoing its message_id.
    pub async fn send_and_await(&mut self, msg: &WebSocketMessage) -> WebSocketMessage {
        self.send(msg).await;
        self.await_response(&msg.message_id).await
    }

    /// Waits for the message whose message_id is `message_id`, keeping the others as events.
    pub async fn await_response(&mut self, message_id: &str) -> WebSocketMessage {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match self.read(deadline).await {
                None => panic!(
                    "no response to {message_id:?} within {TIMEOUT:?}; received meanwhile: {:?}",
                    self.events
                ),
                Some(Incoming::Msg(m)) if m.message_id == message_id => return *m,
                Some(Incoming::Msg(m)) => self.events.push_back(*m),
                Some(Incoming::Closed { code, error }) => panic!(
                    "connection closed while waiting for {message_id:?}: code {code:?}, error {error:?}"
                ),
            }
        }
    }

    /// Sends `payload` and returns (the events received while waiting, the response). Fails if
    /// events were already waiting before the request was sent.
    pub async fn request_collect(
        &mut self,
        payload: Payload,
    ) -> (Vec<WebSocketMessage>, WebSocketMessage) {
        assert!(
            self.events.is_empty(),
            "unread events before the request: {:?}",
            self.events
        );
        let response = self.request(payload).await;
        (self.take_events(), response)
    }

    /// Takes the message answering `message_id` out of the events collected so far, if one
    /// came.
    pub fn take_reply(&mut self, message_id: &str) -> Option<WebSocketMessage> {
        let at = self
            .events
            .iter()
            .position(|m| m.message_id == message_id)?;
        self.events.remove(at)
    }

    /// The events collected so far.
    pub fn take_events(&mut self) -> Vec<WebSocketMessage> {
        self.events.drain(..).collect()
    }

    /// The next event (a message that is not a response), failing the test after `timeout`.
    pub async fn next_event(&mut self, timeout: Duration) -> WebSocketMessage {
        match self.try_next_event(timeout).await {
            Some(m) => m,
            None => panic!("no event within {timeout:?}"),
        }
    }

    pub async fn try_next_event(&mut self, timeout: Duration) -> Option<WebSocketMessage> {
        if let Some(m) = self.events.pop_front() {
            return Some(m);
        }
        match self.read(Instant::now() + timeout).await {
            None => None,
            Some(Incoming::Msg(m)) => Some(*m),
            Some(Incoming::Closed { code, error }) => {
                panic!(
                    "connection closed while waiting for an event: code {code:?}, error {error:?}"
                )
            }
        }
    }

    /// A barrier: once it returns, every event the server queued to this connection before it
    /// took the barrier's request has arrived (kept, in order, in the events).
    ///
    /// The request is a read (GetRunningTimerRequest: no side effect on any connection). The
    /// server answers a connection's requests in order, queueing each answer on the same queue
    /// the hub puts the connection's events on, and `EventHub::publish` writes them to the socket
    /// or queues them before it returns (server/src/transport/ws/mod.rs: `request_worker`,
    /// `Outbox`; hub/). A write is
    /// published before it is acknowledged to anyone (server/src/writer/group.rs), so after a write's
    /// acknowledgement, on any connection or over REST, its events come before this answer. A
    /// Ping would not do: the reader answers it at once, on a lane of its own.
    pub async fn barrier(&mut self) {
        let reply = self
            .request(Payload::GetRunningTimerRequest(
                proto::GetRunningTimerRequest {},
            ))
            .await;
        if let Some(Payload::Error(e)) = &reply.payload {
            panic!("the barrier's read was refused: {e:?}");
        }
    }

    /// Fails if any event came before a [`barrier`](Self::barrier), or was already waiting.
    pub async fn expect_no_event(&mut self) {
        self.barrier().await;
        let events = self.take_events();
        assert!(events.is_empty(), "expected no event, got {events:?}");
    }

    /// Every event up to a [`barrier`](Self::barrier), those already waiting first.
    pub async fn drain_events(&mut self) -> Vec<WebSocketMessage> {
        self.barrier().await;
        self.take_events()
    }

    /// Reads until the connection closes and returns the close code (None when the transport
    /// ended without a close frame). Messages before the close are ignored.
    pub async fn expect_close(&mut self, timeout: Duration) -> (Option<u16>, Option<String>) {
        let deadline = Instant::now() + timeout;
        loop {
            match self.read(deadline).await {
                None => panic!("connection not closed within {timeout:?}"),
                Some(Incoming::Msg(_)) => continue,
                Some(Incoming::Closed { code, error }) => return (code, error),
            }
        }
    }

    /// A protobuf Ping round trip: proves the connection is alive and in order.
    pub async fn ping(&mut self) {
        let ts = 1_234_567;
        let reply = self
            .request(Payload::Ping(proto::Ping { timestamp: ts }))
            .await;
        let pong = expect_payload!(reply, Pong);
        assert_eq!(pong.timestamp, ts);
    }

    pub async fn close(mut self) {
        let _ = tokio::time::timeout(TIMEOUT, self.ws.close(None)).await;
    }

    // --- typed helpers -----------------------------------------------------------------------

    /// Subscribes to projects; the reply has no payload.
    pub async fn subscribe(&mut self, project_ids: &[&str]) {
        let reply = self
            .request(Payload::Subscribe(proto::Subscribe {
                project_ids: project_ids.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            }))
            .await;
        assert!(
            reply.payload.is_none(),
            "Subscribe reply must have no payload: {reply:?}"
        );
    }

    pub async fn subscribe_with(&mut self, sub: proto::Subscribe) -> WebSocketMessage {
        self.request(Payload::Subscribe(sub)).await
    }

    /// ListProjectsRequest: the project list (and, as a side effect, the workspace stream).
    pub async fn list_projects(&mut self) -> (Vec<proto::Project>, WebSocketMessage) {
        let reply = self
            .request(Payload::ListProjectsRequest(proto::ListProjectsRequest {}))
            .await;
        let list = expect_payload!(reply, ProjectList);
        (list.projects, reply)
    }

    pub async fn work_items(
        &mut self,
        project_id: &str,
    ) -> (Vec<proto::WorkItem>, WebSocketMessage) {
        let reply = self
            .request(Payload::GetWorkItemsRequest(proto::GetWorkItemsRequest {
                project_id: project_id.to_string(),
                since_timestamp: None,
            }))
            .await;
        let list = expect_payload!(reply, WorkItemsList);
        (list.work_items, reply)
    }

    pub async fn sprints(&mut self, project_id: &str) -> (Vec<proto::Sprint>, WebSocketMessage) {
        let reply = self
            .request(Payload::GetSprintsRequest(proto::GetSprintsRequest {
                project_id: project_id.to_string(),
            }))
            .await;
        let list = expect_payload!(reply, SprintsList);
        (list.sprints, reply)
    }

    pub async fn comments(
        &mut self,
        work_item_id: &str,
    ) -> (Vec<proto::Comment>, WebSocketMessage) {
        let reply = self
            .request(Payload::GetCommentsRequest(proto::GetCommentsRequest {
                work_item_id: work_item_id.to_string(),
            }))
            .await;
        let list = expect_payload!(reply, CommentsList);
        (list.comments, reply)
    }

    pub async fn create_project(&mut self, title: &str, key: &str) -> proto::Project {
        let reply = self.request(create_project_req(title, key)).await;
        expect_payload!(reply, ProjectCreated)
            .project
            .expect("ProjectCreated.project")
    }

    pub async fn create_item(
        &mut self,
        project_id: &str,
        item_type: proto::WorkItemType,
        title: &str,
        parent_id: Option<&str>,
    ) -> proto::WorkItem {
        let reply = self
            .request(create_item_req(project_id, item_type, title, parent_id))
            .await;
        expect_payload!(reply, WorkItemCreated)
            .work_item
            .expect("WorkItemCreated.work_item")
    }

    /// Applies `update` and returns the updated item.
    pub async fn update_item(&mut self, update: proto::UpdateWorkItemRequest) -> proto::WorkItem {
        let reply = self.request(Payload::UpdateWorkItemRequest(update)).await;
        expect_payload!(reply, WorkItemUpdated)
            .work_item
            .expect("WorkItemUpdated.work_item")
    }

    pub async fn create_sprint(&mut self, project_id: &str, name: &str) -> proto::Sprint {
        let reply = self.request(create_sprint_req(project_id, name)).await;
        expect_payload!(reply, SprintCreated)
            .sprint
            .expect("SprintCreated.sprint")
    }

    pub async fn update_sprint(&mut self, update: proto::UpdateSprintRequest) -> proto::Sprint {
        let reply = self.request(Payload::UpdateSprintRequest(update)).await;
        expect_payload!(reply, SprintUpdated)
            .sprint
            .expect("SprintUpdated.sprint")
    }

    pub async fn create_comment(&mut self, work_item_id: &str, content: &str) -> proto::Comment {
        let reply = self
            .request(Payload::CreateCommentRequest(proto::CreateCommentRequest {
                work_item_id: work_item_id.to_string(),
                content: content.to_string(),
            }))
            .await;
        expect_payload!(reply, CommentCreated)
            .comment
            .expect("CommentCreated.comment")
    }
}

// ---------------------------------------------------------------------------------------------
// Request builders
// ---------------------------------------------------------------------------------------------

pub fn create_project_req(title: &str, key: &str) -> Payload {
    Payload::CreateProjectRequest(proto::CreateProjectRequest {
        title: title.to_string(),
        description: None,
        key: key.to_string(),
    })
}

pub fn create_item_req(
    project_id: &str,
    item_type: proto::WorkItemType,
    title: &str,
    parent_id: Option<&str>,
) -> Payload {
    Payload::CreateWorkItemRequest(proto::CreateWorkItemRequest {
        item_type: item_type as i32,
        title: title.to_string(),
        description: None,
        parent_id: parent_id.map(str::to_string),
        project_id: project_id.to_string(),
        status: None,
        priority: None,
    })
}

/// An update of `id` at `version` that changes nothing yet; set fields with `..upd(..)`.
pub fn upd(id: &str, version: i32) -> proto::UpdateWorkItemRequest {
    proto::UpdateWorkItemRequest {
        work_item_id: id.to_string(),
        expected_version: version,
        ..Default::default()
    }
}

pub fn sprint_upd(id: &str, version: i32) -> proto::UpdateSprintRequest {
    proto::UpdateSprintRequest {
        sprint_id: id.to_string(),
        expected_version: version,
        ..Default::default()
    }
}

/// Sprint dates the server accepts: from now for two weeks.
pub fn sprint_dates() -> (i64, i64) {
    let now = pm_shared::now_secs();
    (now, now + 14 * 86_400)
}

pub fn create_sprint_req(project_id: &str, name: &str) -> Payload {
    let (start_date, end_date) = sprint_dates();
    Payload::CreateSprintRequest(proto::CreateSprintRequest {
        project_id: project_id.to_string(),
        name: name.to_string(),
        goal: None,
        start_date,
        end_date,
    })
}

pub fn field_change(field: &str, old: Option<&str>, new: Option<&str>) -> proto::FieldChange {
    proto::FieldChange {
        field_name: field.to_string(),
        old_value: old.map(str::to_string),
        new_value: new.map(str::to_string),
    }
}

/// The Error payload of `msg`, checked to carry `code`.
pub fn expect_error(msg: &WebSocketMessage, code: &str) -> proto::Error {
    let err = expect_payload!(msg, Error);
    assert_eq!(err.code, code, "unexpected error: {err:?}");
    assert!(!err.message.is_empty(), "error without a message: {err:?}");
    err
}

/// Checks that `msg` is a broadcast domain event: fresh message_id, a stream position, the
/// server's epoch.
pub fn assert_event_envelope(msg: &WebSocketMessage, epoch: &str) {
    assert!(
        uuid::Uuid::parse_str(&msg.message_id).is_ok(),
        "event message_id must be a fresh UUID: {msg:?}"
    );
    assert!(msg.seq > 0, "domain event without seq: {msg:?}");
    assert_eq!(msg.epoch, epoch, "event epoch: {msg:?}");
}

/// Tracks the last seq seen per stream and checks each new event is exactly the next one.
#[derive(Default, Debug)]
pub struct SeqTracker {
    pub last: HashMap<String, u64>,
}

impl SeqTracker {
    pub fn starting_at(stream: &str, seq: u64) -> SeqTracker {
        let mut t = SeqTracker::default();
        t.last.insert(stream.to_string(), seq);
        t
    }

    pub fn check(&mut self, msg: &WebSocketMessage) {
        let last = self.last.entry(msg.stream.clone()).or_insert(0);
        assert_eq!(
            msg.seq,
            *last + 1,
            "stream {:?}: expected seq {} next, got {:?}",
            msg.stream,
            *last + 1,
            msg
        );
        *last = msg.seq;
    }
}

/// Reads one mutation's frames on a subscriber: ActivityLogCreated, then the domain event, which
/// is returned after its envelope and seq are checked.
pub async fn recv_mutation(
    client: &mut WsClient,
    seqs: &mut SeqTracker,
    epoch: &str,
) -> (proto::ActivityLogEntry, WebSocketMessage) {
    let activity = client.next_event(TIMEOUT).await;
    let entry = expect_payload!(activity, ActivityLogCreated)
        .entry
        .expect("ActivityLogCreated.entry");
    let event = client.next_event(TIMEOUT).await;
    assert_event_envelope(&event, epoch);
    assert_ne!(activity.message_id, event.message_id);
    seqs.check(&event);
    (entry, event)
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    base: String,
    user: Option<String>,
}

/// Status and body of an HTTP response; a body that is not JSON is kept as a JSON string.
#[derive(Debug, Clone)]
pub struct HttpReply {
    pub status: u16,
    pub body: Value,
}

impl HttpReply {
    /// Checks the reference's error shape `{"error":{"code","message","field"?}}`.
    pub fn expect_error(&self, status: u16, code: &str) -> &Value {
        assert_eq!(self.status, status, "status of {:?}", self.body);
        let err = self
            .body
            .get("error")
            .unwrap_or_else(|| panic!("no error object in {:?}", self.body));
        assert_eq!(err["code"], code, "error code in {:?}", self.body);
        assert!(
            err["message"].as_str().is_some_and(|m| !m.is_empty()),
            "error message in {:?}",
            self.body
        );
        err
    }

    pub fn ok(&self) -> &Value {
        assert_eq!(self.status, 200, "expected 200, got {:?}", self);
        &self.body
    }
}

impl Http {
    pub fn new(addr: SocketAddr, user: Option<&str>) -> Http {
        Http {
            client: reqwest::Client::builder()
                .timeout(TIMEOUT)
                .build()
                .expect("reqwest client"),
            base: format!("http://{addr}"),
            user: user.map(str::to_string),
        }
    }

    pub fn as_user(&self, user: &str) -> Http {
        Http {
            user: Some(user.to_string()),
            ..self.clone()
        }
    }

    fn builder(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut b = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(user) = &self.user {
            b = b.header("X-User-Id", user);
        }
        b
    }

    pub async fn run(&self, request: reqwest::RequestBuilder) -> HttpReply {
        let resp = request.send().await.expect("HTTP request");
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.expect("HTTP body");
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        HttpReply { status, body }
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.builder(method, path)
    }

    pub async fn get(&self, path: &str) -> HttpReply {
        self.run(self.builder(reqwest::Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: Value) -> HttpReply {
        self.run(self.builder(reqwest::Method::POST, path).json(&body))
            .await
    }

    pub async fn put(&self, path: &str, body: Value) -> HttpReply {
        self.run(self.builder(reqwest::Method::PUT, path).json(&body))
            .await
    }

    pub async fn delete(&self, path: &str) -> HttpReply {
        self.run(self.builder(reqwest::Method::DELETE, path)).await
    }

    /// A request with a raw body and an optional content type.
    pub async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: Option<&str>,
        body: &'static str,
    ) -> HttpReply {
        let mut b = self.builder(method, path).body(body);
        if let Some(ct) = content_type {
            b = b.header("Content-Type", ct);
        }
        self.run(b).await
    }
}

/// The server's sync export (`query` is "" or `?work_item=…`).
pub async fn sync_export(server: &TestServer, query: &str) -> Value {
    server
        .http(None)
        .get(&format!("/api/v1/sync/export{query}"))
        .await
        .ok()
        .clone()
}

/// A sync import of `doc` as `user`.
pub async fn sync_import(server: &TestServer, user: &str, doc: &Value) -> HttpReply {
    server
        .http(Some(user))
        .post("/api/v1/sync/import", doc.clone())
        .await
}

/// A strict sync import of `doc` as `user`: one row that cannot be stored refuses it all.
pub async fn sync_import_strict(server: &TestServer, user: &str, doc: &Value) -> HttpReply {
    server
        .http(Some(user))
        .post("/api/v1/sync/import?strict=true", doc.clone())
        .await
}

/// An export without its `exported_at`, to compare two exports.
pub fn without_time(mut doc: Value) -> Value {
    doc.as_object_mut()
        .expect("export object")
        .remove("exported_at");
    doc
}

/// (created, updated, skipped) of one entity in an ImportResult.
pub fn import_counts(result: &Value, kind: &str) -> (i64, i64, i64) {
    let c = &result[kind];
    (n(c, "created"), n(c, "updated"), n(c, "skipped"))
}

/// Reads a string field of a JSON object.
pub fn s(v: &Value, field: &str) -> String {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no string {field} in {v}"))
        .to_string()
}

/// Reads an integer field of a JSON object.
pub fn n(v: &Value, field: &str) -> i64 {
    v[field]
        .as_i64()
        .unwrap_or_else(|| panic!("no integer {field} in {v}"))
}

/// A TCP proxy that a test can cut (every connection through it drops, new ones are refused)
/// and restore: a server's network to its database, or a client's to its server, failing and
/// coming back.
pub struct CutProxy {
    pub addr: std::net::SocketAddr,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pipes: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl CutProxy {
    pub async fn start(target: std::net::SocketAddr) -> CutProxy {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let pipes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (accepting, owned) = (up.clone(), pipes.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !accepting.load(Ordering::Acquire) {
                    continue; // dropped: refused
                }
                let pipe = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                owned.lock().expect("pipes").push(pipe);
            }
        });
        CutProxy { addr, up, pipes }
    }

    pub fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::Release);
        for pipe in self.pipes.lock().expect("pipes").drain(..) {
            pipe.abort();
        }
    }

    pub fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::Release);
    }
}
