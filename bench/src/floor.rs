//! `pm-bench floor-server`: the least a server can do for the live scenarios, to measure what
//! this machine allows before any server logic runs.
//!
//! It answers exactly the requests `fanout`, `throughput` and `slow-consumer` send (REST
//! `/health` and `POST /api/v1/projects`; WebSocket `Subscribe`, `CreateWorkItemRequest`,
//! `UpdateWorkItemRequest`, `GetWorkItemsRequest`), keeps its items in memory, numbers events
//! per project, and broadcasts what the protocol broadcasts for each mutation, encoded once:
//! an `ActivityLogCreated` frame, then the domain event (see the reference's send order). Its
//! transport is shaped like any sensible WebSocket server's (one task per connection writing
//! from a bounded queue, queued frames written together before a flush), so the figures pm-bench
//! measures against it are the cost of the sockets, the runtime and pm-bench itself: a floor no
//! server with a database behind it can go under on the same machine. It validates nothing, stores
//! nothing on disk and does not resume or resync: it is an instrument, not a server.
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use pm_shared::proto::{self, Payload, WebSocketMessage};
use prost::Message as _;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Frames queued per connection before the floor server gives up on it (as pm-server's hub
/// does, it never waits for a client).
const QUEUE: usize = 16 * 1024;

#[derive(Default)]
struct Floor {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Last event seq per project.
    seqs: HashMap<String, u64>,
    items: HashMap<String, proto::WorkItem>,
    /// (project id, the connection's queue).
    subscribers: Vec<(String, mpsc::Sender<Message>)>,
}

/// Serves until the process ends.
pub async fn serve(listener: TcpListener) -> Result<()> {
    let app = Router::new()
        .route(
            "/health",
            get(|| async { Json(serde_json::json!({"status": "ok", "server": "pm-bench floor"})) }),
        )
        .route("/api/v1/projects", post(create_project))
        .route("/ws", get(upgrade))
        .with_state(Arc::new(Floor::default()));
    axum::serve(listener, app).await?;
    Ok(())
}

/// Binds `addr`, prints `listening on <addr>` (scripts read the port from it) and serves.
pub async fn run(addr: SocketAddr) -> Result<()> {
    let listener = TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);
    serve(listener).await
}

async fn create_project(Json(body): Json<serde_json::Value>) -> Json<serde_json::Value> {
    let id = uuid::Uuid::new_v4().to_string();
    Json(serde_json::json!({ "project": { "id": id, "title": body["title"], "key": body["key"] } }))
}

async fn upgrade(
    ws: WebSocketUpgrade,
    State(floor): State<Arc<Floor>>,
) -> axum::response::Response {
    ws.read_buffer_size(512)
        .write_buffer_size(64 * 1024)
        .on_upgrade(move |socket| connection(socket, floor))
}

async fn connection(socket: WebSocket, floor: Arc<Floor>) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Message>(QUEUE);
    let writer = tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            if sink.feed(first).await.is_err() {
                return;
            }
            while let Ok(next) = rx.try_recv() {
                if sink.feed(next).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });
    while let Some(Ok(msg)) = stream.next().await {
        let Message::Binary(bytes) = msg else {
            continue;
        };
        let reply = match WebSocketMessage::decode(bytes) {
            Ok(request) => floor.handle(request, &tx),
            Err(e) => error_frame(String::new(), format!("not a WebSocketMessage: {e}")),
        };
        if tx.send(Message::Binary(reply)).await.is_err() {
            break;
        }
    }
    writer.abort();
}

impl Floor {
    /// Answers one request, broadcasting its event (if any) before the answer is queued.
    fn handle(&self, request: WebSocketMessage, tx: &mpsc::Sender<Message>) -> Bytes {
        let id = request.message_id;
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (project, payload) = match request.payload {
            Some(Payload::Subscribe(s)) => {
                for project in s.project_ids {
                    inner.subscribers.push((project, tx.clone()));
                }
                return encode(WebSocketMessage {
                    message_id: id,
                    ..Default::default()
                });
            }
            Some(Payload::GetWorkItemsRequest(r)) => {
                let seq = inner.seqs.get(&r.project_id).copied().unwrap_or(0);
                return encode(WebSocketMessage {
                    message_id: id,
                    payload: Some(Payload::WorkItemsList(proto::WorkItemsList::default())),
                    seq,
                    stream: r.project_id,
                    ..Default::default()
                });
            }
            Some(Payload::CreateWorkItemRequest(r)) => {
                let item = proto::WorkItem {
                    id: uuid::Uuid::new_v4().to_string(),
                    item_type: r.item_type,
                    project_id: r.project_id.clone(),
                    title: r.title,
                    status: "backlog".into(),
                    priority: "medium".into(),
                    version: 1,
                    ..Default::default()
                };
                inner.items.insert(item.id.clone(), item.clone());
                let event = Payload::WorkItemCreated(proto::WorkItemCreated {
                    work_item: Some(item),
                    user_id: String::new(),
                    ..Default::default()
                });
                (r.project_id, event)
            }
            Some(Payload::UpdateWorkItemRequest(r)) => {
                let Some(item) = inner.items.get_mut(&r.work_item_id) else {
                    return error_frame(id, format!("no work item {}", r.work_item_id));
                };
                let old = std::mem::replace(&mut item.title, r.title.unwrap_or_default());
                item.version += 1;
                let event = Payload::WorkItemUpdated(proto::WorkItemUpdated {
                    changes: vec![proto::FieldChange {
                        field_name: "title".into(),
                        old_value: Some(old),
                        new_value: Some(item.title.clone()),
                    }],
                    work_item: Some(item.clone()),
                    user_id: String::new(),
                });
                (item.project_id.clone(), event)
            }
            _ => {
                return error_frame(
                    id,
                    "the floor server answers only what pm-bench sends".into(),
                )
            }
        };
        let seq = {
            let seq = inner.seqs.entry(project.clone()).or_insert(0);
            *seq += 1;
            *seq
        };
        let activity = encode(WebSocketMessage {
            message_id: uuid::Uuid::new_v4().to_string(),
            payload: Some(Payload::ActivityLogCreated(proto::ActivityLogCreated {
                entry: Some(activity_entry(&payload)),
            })),
            stream: project.clone(),
            ..Default::default()
        });
        let event = encode(WebSocketMessage {
            message_id: uuid::Uuid::new_v4().to_string(),
            payload: Some(payload.clone()),
            seq,
            stream: project.clone(),
            ..Default::default()
        });
        // A subscriber whose queue is full or gone is dropped, as a hub that never waits would.
        inner.subscribers.retain(|(p, sub)| {
            *p != project
                || (sub.try_send(Message::Binary(activity.clone())).is_ok()
                    && sub.try_send(Message::Binary(event.clone())).is_ok())
        });
        encode(WebSocketMessage {
            message_id: id,
            payload: Some(payload),
            seq,
            stream: project,
            ..Default::default()
        })
    }
}

/// The activity entry of a work-item event, as the protocol announces every change.
fn activity_entry(event: &Payload) -> proto::ActivityLogEntry {
    let (item, action, changes) = match event {
        Payload::WorkItemCreated(c) => (c.work_item.as_ref(), "created", Vec::new()),
        Payload::WorkItemUpdated(u) => (u.work_item.as_ref(), "updated", u.changes.clone()),
        _ => (None, "updated", Vec::new()),
    };
    proto::ActivityLogEntry {
        id: uuid::Uuid::now_v7().to_string(),
        entity_type: "work_item".into(),
        entity_id: item.map(|i| i.id.clone()).unwrap_or_default(),
        action: action.into(),
        changes,
        ..Default::default()
    }
}

fn encode(msg: WebSocketMessage) -> Bytes {
    msg.encode_to_vec().into()
}

fn error_frame(message_id: String, message: String) -> Bytes {
    encode(WebSocketMessage {
        message_id,
        payload: Some(Payload::Error(proto::Error {
            code: "UNSUPPORTED".into(),
            message,
            ..Default::default()
        })),
        ..Default::default()
    })
}
