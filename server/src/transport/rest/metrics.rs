//! `GET /metrics`: the server's numbers in the Prometheus text format (see `crate::metrics`).
//! Anyone in desktop mode (this machine only); a server admin in token mode.
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::admin::AdminInTokenMode;
use crate::config::AuthMode;
use crate::metrics::{Snapshot, TOP_STREAMS};
use crate::transport::state::SharedState;

pub fn routes() -> Router<SharedState> {
    Router::new().route("/metrics", get(metrics))
}

/// The content type of Prometheus' text exposition format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

#[utoipa::path(get, path = "/metrics", tag = "operations", operation_id = "metrics",
    responses((status = 200, description = "The server's numbers in the Prometheus text format (a server admin only in token mode)", content_type = "text/plain", body = String)))]
async fn metrics(State(state): State<SharedState>, _: AdminInTokenMode) -> impl IntoResponse {
    let mut wal = state.config.database_path().into_os_string();
    wal.push("-wal");
    let now = Snapshot {
        mode: match state.config.auth {
            AuthMode::Desktop => "desktop",
            AuthMode::Token => "token",
        },
        ws_connections: state.hub.connection_count(),
        stream_subscribers: state.hub.busiest_streams(TOP_STREAMS),
        // No file (yet, or after a truncating checkpoint) is an empty log.
        wal_bytes: tokio::fs::metadata(&wal).await.map_or(0, |m| m.len()),
        presence_sessions: state.presence.len(),
    };
    (
        [(header::CONTENT_TYPE, PROMETHEUS_TEXT)],
        state.metrics.render(&now),
    )
}
