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
    let healthy = db.is_ok();
    let body = json!({
        "status": if healthy { "healthy" } else { "unhealthy" },
        "version": env!("CARGO_PKG_VERSION"),
        "database": { "status": if healthy { "healthy" } else { "unhealthy" }, "latency_ms": latency_ms },
        "connections": state.hub.connection_count(),
    });
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}
