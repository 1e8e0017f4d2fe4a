//! The WebSocket transport at `/ws`: binary protobuf `WebSocketMessage` frames.
//!
//! Each connection runs three tasks:
//! - the reader (`connection`) decodes frames, answers Ping at once and hands every other
//!   request to
//! - the request worker (`worker`), which answers requests in order (so one client's writes
//!   apply in the order it sent them) and queues each response after the events it caused;
//!   writes are pipelined into the writer's queue, so several of one client's writes commit
//!   together; what is not a write is answered by `dispatch`, subscriptions and resumes by
//!   `resume`;
//! - the writer (`write_loop`), which drains the connection's bounded queue (filled by the hub
//!   and the worker) and a small lane for direct replies (Pong, errors for bad frames, close).
//!
//! The queue is bounded by bytes (`--send-buffer-bytes`), counted until written: the hub cuts
//! off a subscriber past the budget, the worker waits for room (`outbox`) and so stops taking
//! requests, and a replay is queued a chunk at a time as the client reads (`resume`).
//!
//! A slow request therefore never delays Pongs, and a slow client never delays anyone else.
//!
//! The handshake (`handshake`) and the socket (`socket`) are handled here rather than by axum's
//! `WebSocket`, so the writer can send frames built once (`crate::frames`) to every subscriber
//! as they are.
mod connection;
mod dispatch;
mod handshake;
mod outbox;
mod replies;
mod resume;
mod socket;
mod worker;
mod write_loop;

use std::collections::HashMap;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use std::net::SocketAddr;

use tracing::Instrument as _;

use crate::auth;
use crate::commands::Actor;
use crate::metrics::Refused;
use crate::transport::limits::Refusal;
use crate::transport::state::SharedState;
use connection::connection;
use handshake::Handshake;

pub use dispatch::answer_frame;

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
        Err(e) => {
            state.metrics.refused(Refused::Unauthenticated);
            return unauthorized(&e.to_string());
        }
    };
    let user_id = identity.user_id;
    let permit = match state.connections.try_acquire(
        &user_id,
        state.config.max_connections,
        state.config.max_connections_per_user,
    ) {
        Ok(permit) => permit,
        Err(refusal) => {
            state.metrics.refused(match refusal {
                Refusal::ServerFull(_) => Refused::ServerFull,
                Refusal::UserFull(_) => Refused::UserFull,
            });
            return refuse(refusal);
        }
    };
    if let Some(name) = name.as_deref() {
        // A display name is not an entity of the board: it is recorded, not broadcast.
        if let Err(e) = state.writer.record_user(&user_id, Some(name)).await {
            tracing::warn!(error = %e, "could not record display name");
        }
    }
    let budget = permit.partial_budget(
        state.config.ws_partial_bytes_per_user,
        state.config.ws_partial_bytes_total,
    );
    // Every line the connection's tasks log names it: `conn` is filled in once the hub has
    // numbered it. The user id is not a secret (a token never is logged). A root span: as a
    // child it would keep the upgrade request's span alive for as long as the connection,
    // which costs every idle connection half a kilobyte more (measured with pm-bench idle).
    let span =
        tracing::info_span!(parent: None, "ws", conn = tracing::field::Empty, user = %user_id);
    handshake.accept(move |io| {
        async move {
            connection(io, state, Actor { user_id }, budget).await;
            drop(permit);
        }
        .instrument(span)
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
