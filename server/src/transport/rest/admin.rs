//! /admin: server operations. Token mode: a token with the `admin` role. Desktop mode: only
//! from the machine itself (a loopback peer).
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{RestError, RestResult};
use crate::app::SharedState;
use crate::auth;

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/admin/checkpoint", post(checkpoint))
        .route("/admin/shutdown", post(shutdown))
}

/// A caller allowed to administer the server.
pub struct Administrator;

impl FromRequestParts<SharedState> for Administrator {
    type Rejection = RestError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        let loopback = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .is_some_and(|c| c.0.ip().is_loopback());
        match auth::identify(&state.config, &parts.headers, None, None, loopback) {
            Ok(identity) if identity.admin => Ok(Administrator),
            Ok(_) => Err(RestError::new(
                StatusCode::FORBIDDEN,
                "UNAUTHORIZED",
                "Unauthorized: server administration needs an admin token (or, in desktop mode, a local caller)",
            )),
            Err(e) => Err(RestError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", format!("Unauthorized: {e}"))),
        }
    }
}

/// Anyone in desktop mode; a server admin in token mode (for whole-server reads like export).
pub struct AdminInTokenMode;

impl FromRequestParts<SharedState> for AdminInTokenMode {
    type Rejection = RestError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        if state.config.auth == crate::config::AuthMode::Desktop {
            return Ok(AdminInTokenMode);
        }
        Administrator::from_request_parts(parts, state)
            .await
            .map(|_| AdminInTokenMode)
    }
}

/// Folds the write-ahead log into the database file.
async fn checkpoint(State(state): State<SharedState>, _: Administrator) -> RestResult<Json<Value>> {
    let mut writer = state.store.writer().await;
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut *writer)
        .await?;
    Ok(Json(
        json!({ "status": "ok", "message": "Database checkpoint completed" }),
    ))
}

/// Starts a graceful shutdown.
async fn shutdown(State(state): State<SharedState>, _: Administrator) -> (StatusCode, Json<Value>) {
    tracing::info!("shutdown requested through /admin/shutdown");
    state.request_shutdown();
    (
        StatusCode::ACCEPTED,
        Json(json!({ "status": "shutting down" })),
    )
}
