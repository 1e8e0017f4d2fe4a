//! Liveness and readiness.
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::transport::state::SharedState;

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/health", get(health))
        .route("/live", get(live))
        .route("/ready", get(ready))
}

#[utoipa::path(
    get,
    path = "/health",
    tag = "health",
    operation_id = "health",
    responses((status = 200, description = "The server answers", body = super::schema::Health))
)]
async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

#[utoipa::path(get, path = "/live", tag = "health", operation_id = "live",
    responses((status = 200, description = "The process is up (no body)")))]
async fn live() -> StatusCode {
    StatusCode::OK
}

/// How long a database integrity check result is reused by `/ready`.
const INTEGRITY_MAX_AGE: Duration = Duration::from_secs(10);

/// Healthy when the database answers and passes SQLite's `quick_check` (run at most every
/// INTEGRITY_MAX_AGE). A database that fails it answers 503 with the error JSON (code
/// `DATABASE_CORRUPT`) plus the usual fields.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "health",
    operation_id = "ready",
    responses((status = 200, description = "The database answers and passes its integrity check", body = super::schema::Readiness),
        (status = 503, description = "Not ready: the database is unreachable, damaged or its writes fail", body = super::schema::Readiness))
)]
async fn ready(State(state): State<SharedState>) -> impl IntoResponse {
    let started = Instant::now();
    let db = state.store.ping().await;
    let latency_ms = started.elapsed().as_millis() as u64;
    let integrity = match db {
        Ok(()) => state.store.integrity(INTEGRITY_MAX_AGE).await,
        Err(_) => Ok(()),
    };
    // A write that failed (a full disk, say) and has not been followed by a good one yet.
    let write_failure = state.store.write_failure();
    // Servers sharing PostgreSQL: one whose listener is down learns of the others' writes
    // only by its safety poll (see `follow`).
    let listening = state.follower.as_ref().is_none_or(|f| f.listening());
    let healthy = db.is_ok() && integrity.is_ok() && write_failure.is_none() && listening;
    let mut body = json!({
        "status": if healthy { "healthy" } else { "unhealthy" },
        "version": env!("CARGO_PKG_VERSION"),
        "database": {
            "status": if healthy { "healthy" } else { "unhealthy" },
            "latency_ms": latency_ms,
            "writes": if write_failure.is_none() { "ok" } else { "failing" },
        },
        "connections": state.hub.connection_count(),
    });
    if let Some(follower) = &state.follower {
        body["database"]["listener"] = json!(if follower.listening() { "ok" } else { "down" });
    }
    if let Err(problem) = integrity {
        body["error"] = json!({
            "code": "DATABASE_CORRUPT",
            "message": format!("The database failed its integrity check: {problem}"),
        });
    } else if let Err(e) = &db {
        body["error"] = json!({
            "code": "INTERNAL_ERROR",
            "message": format!("The database does not answer: {e}"),
        });
    } else if write_failure.is_some() {
        body["error"] = json!({
            "code": "WRITES_FAILING",
            "message": "Writes are failing (a full disk, say); reads still work. See the server log.",
        });
    } else if !listening {
        body["error"] = json!({
            "code": "LISTENER_DOWN",
            "message": "This server cannot listen for the other servers' writes on PostgreSQL.",
        });
    }
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}
