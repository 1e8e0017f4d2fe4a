//! Talking to a server over its public protocol only: WebSocket protobuf frames at `/ws` and
//! REST under `/api/v1`. Plus the process-level bits a load generator needs: the file-descriptor
//! limit and the server's resident memory from /proc.
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use pm_shared::proto::{self, Payload, WebSocketMessage};
use prost::Message as _;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// How long any single setup request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

pub type Ws = WebSocketStream<TcpStream>;

/// Where the server is: `--url http://host:port`.
#[derive(Debug, Clone)]
pub struct Target {
    pub http: String,
    pub addr: SocketAddr,
    pub host: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("--url must look like http://host:port, got {url}"))?;
        let hostport = rest.trim_end_matches('/');
        if hostport.contains('/') {
            bail!("--url must not have a path: {url}");
        }
        use std::net::ToSocketAddrs;
        let addr = hostport
            .to_socket_addrs()
            .with_context(|| format!("resolving {hostport}"))?
            .next()
            .ok_or_else(|| anyhow!("{hostport} resolves to nothing"))?;
        let host = hostport.to_string();
        Ok(Target {
            http: format!("http://{hostport}"),
            addr,
            host,
        })
    }

    pub fn ws_url(&self, user_id: &str) -> String {
        format!("ws://{}/ws?user_id={user_id}&name=pm-bench", self.host)
    }
}

/// Options of one WebSocket connection.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnOptions {
    /// SO_RCVBUF of the client socket (a small one makes a non-reading client back up fast).
    pub recv_buffer: Option<u32>,
    /// A small tungstenite read buffer, for subscribers and thousands of idle connections.
    /// (tungstenite zero-fills its whole read buffer before every read, so the 128 KiB
    /// default costs a 128 KiB memset per frame batch.)
    pub small_buffers: bool,
}

/// Read buffer of subscriber connections.
const SMALL_READ_BUFFER: usize = 8 * 1024;
/// Read buffer of request/response connections (snapshot replies can be megabytes).
const LARGE_READ_BUFFER: usize = 64 * 1024;

/// Opens a WebSocket connection acting as `user_id`.
pub async fn connect(target: &Target, user_id: &str, opts: ConnOptions) -> Result<Ws> {
    let socket = if target.addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(bytes) = opts.recv_buffer {
        socket.set_recv_buffer_size(bytes)?;
    }
    let stream = tokio::time::timeout(REQUEST_TIMEOUT, socket.connect(target.addr))
        .await
        .context("TCP connect timed out")?
        .with_context(|| format!("connecting to {}", target.addr))?;
    stream.set_nodelay(true)?;
    let mut config = WebSocketConfig::default()
        .max_message_size(Some(256 << 20))
        .max_frame_size(Some(256 << 20));
    config = config
        .write_buffer_size(0)
        .read_buffer_size(if opts.small_buffers {
            SMALL_READ_BUFFER
        } else {
            LARGE_READ_BUFFER
        });
    let (ws, _) = tokio::time::timeout(
        REQUEST_TIMEOUT,
        tokio_tungstenite::client_async_with_config(target.ws_url(user_id), stream, Some(config)),
    )
    .await
    .context("WebSocket handshake timed out")?
    .context("WebSocket handshake")?;
    Ok(ws)
}

pub fn frame(message_id: String, payload: Payload) -> Message {
    Message::Binary(
        WebSocketMessage {
            message_id,
            timestamp: 0,
            payload: Some(payload),
            ..Default::default()
        }
        .encode_to_vec()
        .into(),
    )
}

/// Sends one request and waits for the response echoing its message_id; anything else that
/// arrives meanwhile (events) is dropped. An `Error` response becomes an error.
pub async fn rpc(ws: &mut Ws, payload: Payload) -> Result<WebSocketMessage> {
    let id = uuid::Uuid::new_v4().to_string();
    tokio::time::timeout(REQUEST_TIMEOUT, ws.send(frame(id.clone(), payload)))
        .await
        .context("send timed out")??;
    let deadline = tokio::time::Instant::now() + REQUEST_TIMEOUT;
    loop {
        let next = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| anyhow!("no response to request {id} within {REQUEST_TIMEOUT:?}"))?;
        match next {
            Some(Ok(Message::Binary(bytes))) => {
                if let Some(reply) = reply_to(&id, &bytes) {
                    return reply;
                }
            }
            Some(Ok(Message::Close(f))) => bail!("connection closed: {f:?}"),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => bail!("connection ended"),
        }
    }
}

/// The response to request `id`, if `frame` is it; an `Error` response becomes an error.
pub fn reply_to(id: &str, frame: &[u8]) -> Option<Result<WebSocketMessage>> {
    if crate::scan::peek(frame).is_none_or(|p| p.message_id != id.as_bytes()) {
        return None;
    }
    Some(match WebSocketMessage::decode(frame) {
        Ok(WebSocketMessage {
            payload: Some(Payload::Error(e)),
            ..
        }) => Err(anyhow!("server error {}: {}", e.code, e.message)),
        Ok(msg) => Ok(msg),
        Err(e) => Err(e.into()),
    })
}

/// Subscribes live to `project_id`.
pub async fn subscribe(ws: &mut Ws, project_id: &str) -> Result<()> {
    subscribed(rpc(ws, subscribe_request(project_id)).await?)
}

pub fn subscribe_request(project_id: &str) -> Payload {
    Payload::Subscribe(proto::Subscribe {
        project_ids: vec![project_id.to_string()],
        ..Default::default()
    })
}

/// Checks a Subscribe reply: it has no payload.
pub fn subscribed(reply: WebSocketMessage) -> Result<()> {
    match reply.payload {
        None => Ok(()),
        Some(other) => bail!("unexpected Subscribe reply: {other:?}"),
    }
}

pub fn create_item_request(project_id: &str, title: String) -> Payload {
    Payload::CreateWorkItemRequest(proto::CreateWorkItemRequest {
        item_type: proto::WorkItemType::Task as i32,
        title,
        project_id: project_id.to_string(),
        ..Default::default()
    })
}

pub fn update_title_request(item_id: &str, expected_version: i32, title: String) -> Payload {
    Payload::UpdateWorkItemRequest(proto::UpdateWorkItemRequest {
        work_item_id: item_id.to_string(),
        expected_version,
        title: Some(title),
        ..Default::default()
    })
}

/// Creates one task and returns it.
pub async fn create_item(ws: &mut Ws, project_id: &str, title: &str) -> Result<proto::WorkItem> {
    let reply = rpc(ws, create_item_request(project_id, title.to_string())).await?;
    match reply.payload {
        Some(Payload::WorkItemCreated(c)) => c.work_item.ok_or_else(|| anyhow!("no work_item")),
        other => bail!("expected WorkItemCreated, got {other:?}"),
    }
}

/// The project's current seq, from a GetWorkItems snapshot reply.
pub async fn project_seq(ws: &mut Ws, project_id: &str) -> Result<u64> {
    Ok(project_position(ws, project_id).await?.0)
}

/// The project's current seq and the server's epoch, from a GetWorkItems snapshot reply: what a
/// client that loaded that snapshot resumes from.
pub async fn project_position(ws: &mut Ws, project_id: &str) -> Result<(u64, String)> {
    let reply = rpc(
        ws,
        Payload::GetWorkItemsRequest(proto::GetWorkItemsRequest {
            project_id: project_id.to_string(),
            since_timestamp: None,
        }),
    )
    .await?;
    Ok((reply.seq, reply.epoch))
}

/// Whether the server at `target` is the reference (the Blazor Agile Board's pm-server): its
/// `/ready` reports a `circuit_breaker`, which pm's and the floor server's do not. Anything
/// that is not such an answer (no `/ready`, not JSON) counts as "not the reference".
pub async fn is_reference(target: &Target) -> Result<bool> {
    let http = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()?;
    let resp = http
        .get(format!("{}/ready", target.http))
        .send()
        .await
        .with_context(|| format!("GET {}/ready (is the server running?)", target.http))?;
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    Ok(body.get("circuit_breaker").is_some())
}

/// A project key the reference and pm both accept (2–20 of `[A-Z0-9_]`), fresh each call.
fn fresh_key() -> String {
    format!(
        "B{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8].to_ascii_uppercase()
    )
}

/// How long the reference may take to store the user row of a new connection: it inserts it
/// from a task it does not wait for, and a write by that user fails its foreign key until then.
const USER_ROW_GRACE: Duration = Duration::from_millis(200);

/// Makes `user_id` known to the reference: opens a WebSocket as that user (the only way it
/// learns of a user) and waits until the user row it inserts in the background is surely there.
/// Returns the connection, ready for writes.
pub async fn introduce_user(target: &Target, user_id: &str) -> Result<Ws> {
    let mut ws = connect(target, user_id, ConnOptions::default()).await?;
    rpc(&mut ws, Payload::Ping(proto::Ping { timestamp: 0 })).await?;
    tokio::time::sleep(USER_ROW_GRACE).await;
    Ok(ws)
}

/// WebSocket `CreateProjectRequest` on `ws`: the project's creator becomes its admin, which the
/// reference requires of anyone who writes to it (a project made over REST has no members
/// there). Returns the project's id.
pub async fn create_project_ws(ws: &mut Ws, label: &str) -> Result<String> {
    let request = Payload::CreateProjectRequest(proto::CreateProjectRequest {
        title: format!("pm-bench {label}"),
        description: None,
        key: fresh_key(),
    });
    match rpc(ws, request).await?.payload {
        Some(Payload::ProjectCreated(proto::ProjectCreated {
            project: Some(p), ..
        })) => Ok(p.id),
        other => bail!("expected ProjectCreated, got {other:?}"),
    }
}

/// REST: checks `/health` and creates a project with a fresh key; returns its id.
pub async fn create_project(target: &Target, label: &str) -> Result<String> {
    let http = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()?;
    let health = http
        .get(format!("{}/health", target.http))
        .send()
        .await
        .with_context(|| format!("GET {}/health (is the server running?)", target.http))?;
    if !health.status().is_success() {
        bail!("GET /health: {}", health.status());
    }
    let key = fresh_key();
    let resp = http
        .post(format!("{}/api/v1/projects", target.http))
        .json(&serde_json::json!({ "title": format!("pm-bench {label}"), "key": key }))
        .send()
        .await?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.context("project create response")?;
    if !status.is_success() {
        bail!("POST /api/v1/projects: {status}: {body}");
    }
    body["project"]["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("no project.id in {body}"))
}

/// Raises this process's soft RLIMIT_NOFILE to the hard limit; returns the limit now in force.
pub fn raise_fd_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed in.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
        #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 on every target
        let limit = lim.rlim_cur as u64;
        limit
    }
}

/// VmRSS of a process in KiB (Linux /proc).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Finds the local process listening on `port` (/proc/net/tcp{,6} → socket inode → /proc/*/fd).
pub fn discover_pid(port: u16) -> Option<u32> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 10 || cols[3] != "0A" {
                continue; // not LISTEN
            }
            let local_port = cols[1]
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) {
                inodes.push(format!("socket:[{}]", cols[9]));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(link) = std::fs::read_link(fd.path()) {
                if inodes.iter().any(|i| link.as_os_str() == i.as_str()) {
                    return Some(pid);
                }
            }
        }
    }
    None
}
