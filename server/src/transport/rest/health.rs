//! Liveness and readiness.
use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::app::SharedState;

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route(
            "/health",
            get(|| async { Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") })) }),
        )
        .route("/live", get(|| async { StatusCode::OK }))
        .route("/ready", get(ready))
}

async fn ready(State(state): State<SharedState>) -> impl IntoResponse {
    let started = Instant::now();
    let db = state.store.ping().await;
    let latency_ms = started.elapsed().as_millis() as u64;
    let readable = db.is_ok();
    // A write that failed (a full disk, say) and has not been followed by a good one yet.
    let write_failure = state.store.write_failure();
    let healthy = readable && write_failure.is_none();
    let body = json!({
        "status": if healthy { "healthy" } else { "unhealthy" },
        "version": env!("CARGO_PKG_VERSION"),
        "database": {
            "status": if healthy { "healthy" } else { "unhealthy" },
            "latency_ms": latency_ms,
            "writes": if write_failure.is_none() { "ok" } else { "failing" },
        },
        "connections": state.hub.connection_count(),
    });
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}
