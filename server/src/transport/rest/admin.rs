//! /admin: server operations. Token mode: a token with the `admin` role. Desktop mode: only
//! from the machine itself (a loopback peer).
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{RestError, RestResult};
use crate::auth;
use crate::transport::guard;
use crate::transport::state::SharedState;

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/admin/checkpoint", post(checkpoint))
        .route("/admin/shutdown", post(shutdown))
}

/// Content types a cross-site form (or a "simple" fetch) can send without a CORS preflight.
const FORM_TYPES: [&str; 3] = [
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "text/plain",
];

/// A caller allowed to administer the server: no form body, no foreign `Origin`, and an admin
/// token (token mode) or a loopback peer (desktop mode).
pub struct Administrator;

impl FromRequestParts<SharedState> for Administrator {
    type Rejection = RestError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        // A browser can be made to POST a form (or `text/plain`) anywhere without asking the
        // server first; these endpoints take no body, so no such content type is accepted.
        if let Some(content_type) = parts.headers.get(header::CONTENT_TYPE) {
            let essence = String::from_utf8_lossy(content_type.as_bytes())
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            if FORM_TYPES.contains(&essence.as_str()) {
                return Err(RestError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "UNSUPPORTED_MEDIA_TYPE",
                    format!("/admin takes no {essence} body"),
                ));
            }
        }
        // Checked by `guard` for every /admin request already; here too, so that no extractor
        // use can skip it.
        if let Some(origin) = parts.headers.get(header::ORIGIN) {
            let host = parts
                .headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok());
            if !origin
                .to_str()
                .is_ok_and(|o| guard::origin_allowed(&state.config, o, host))
            {
                return Err(RestError::new(
                    StatusCode::FORBIDDEN,
                    "FORBIDDEN_ORIGIN",
                    "server administration is not open to web pages of other origins",
                ));
            }
        }
        let loopback = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .is_some_and(|c| guard::is_loopback(c.0.ip()));
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
#[utoipa::path(
    post,
    path = "/admin/checkpoint",
    tag = "admin",
    operation_id = "checkpoint",
    responses((status = 200, description = "The write-ahead log was folded into the database file (or readers kept it busy)", body = super::schema::Checkpoint))
)]
async fn checkpoint(State(state): State<SharedState>, _: Administrator) -> RestResult<Json<Value>> {
    let finished = state
        .writer
        .checkpoint_truncate()
        .await
        .map_err(crate::error::AppError::Internal)?;
    Ok(Json(if finished {
        json!({ "status": "ok", "message": "Database checkpoint completed" })
    } else {
        json!({ "status": "busy", "message": "Readers kept the checkpoint from finishing; try again" })
    }))
}

/// Starts a graceful shutdown.
#[utoipa::path(
    post,
    path = "/admin/shutdown",
    tag = "admin",
    operation_id = "shutdown",
    responses((status = 202, description = "The server is stopping gracefully", body = super::schema::ShutdownAccepted))
)]
async fn shutdown(State(state): State<SharedState>, _: Administrator) -> (StatusCode, Json<Value>) {
    tracing::info!("shutdown requested through /admin/shutdown");
    state.request_shutdown();
    (
        StatusCode::ACCEPTED,
        Json(json!({ "status": "shutting down" })),
    )
}
