//! REST under `/api/v1`, one router per resource, the reference's JSON shapes, and the
//! reference's error JSON `{"error":{"code","message","field"}}` for every failure, including
//! malformed JSON, wrong types, a missing content type and unknown routes.
mod activity;
mod admin;
mod comments;
mod dependencies;
mod dto;
mod health;
mod metrics;
mod openapi;
mod projects;
mod schema;
mod sprints;
mod sync;
mod time_entries;
mod work_items;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::de::DeserializeOwned;
use serde_json::json;

pub use openapi::ApiDoc;

use crate::auth;
use crate::commands::Actor;
use crate::error::AppError;
use crate::transport::state::SharedState;

pub fn routes() -> Router<SharedState> {
    Router::new()
        .merge(health::routes())
        .merge(admin::routes())
        .merge(metrics::routes())
        .merge(openapi::routes())
        .merge(projects::routes())
        .merge(work_items::routes())
        .merge(sprints::routes())
        .merge(comments::routes())
        .merge(dependencies::routes())
        .merge(time_entries::routes())
        .merge(activity::routes())
        .merge(sync::routes())
        .fallback(|| async { RestError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "No such route") })
        .method_not_allowed_fallback(|| async {
            RestError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                "Method not allowed on this route",
            )
        })
}

/// An error as REST sends it.
pub struct RestError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
}

impl RestError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        RestError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(field) = self.field {
            error["field"] = json!(field);
        }
        (self.status, axum::Json(json!({ "error": error }))).into_response()
    }
}

impl From<AppError> for RestError {
    fn from(e: AppError) -> Self {
        let status = match &e {
            AppError::Validation { .. } | AppError::InvalidMessage(_) => StatusCode::BAD_REQUEST,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Unauthorized(_) => StatusCode::FORBIDDEN,
            AppError::Duplicate { .. }
            | AppError::VersionConflict { .. }
            | AppError::Conflict(_)
            | AppError::DeleteBlocked(_) => StatusCode::CONFLICT,
            AppError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            AppError::StorageFull => StatusCode::INSUFFICIENT_STORAGE,
            AppError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let code = match &e {
            // REST has always said VALIDATION_ERROR for bad input and CONFLICT for a taken key.
            AppError::InvalidMessage(_) => "VALIDATION_ERROR",
            AppError::Duplicate { .. } => "CONFLICT",
            other => other.code(),
        };
        let proto = e.to_proto();
        RestError {
            status,
            code,
            message: proto.message,
            field: proto.field,
        }
    }
}

impl From<sqlx::Error> for RestError {
    fn from(e: sqlx::Error) -> Self {
        AppError::from(e).into()
    }
}

pub type RestResult<T> = Result<T, RestError>;

/// A JSON body whose every rejection is the error JSON.
pub struct Body<T>(pub T);

impl<S, T> FromRequest<S> for Body<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = RestError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Body(v)),
            Err(rejection) => Err(match rejection {
                JsonRejection::MissingJsonContentType(_) => RestError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "UNSUPPORTED_MEDIA_TYPE",
                    "Expected a body with Content-Type: application/json",
                ),
                JsonRejection::JsonSyntaxError(e) => RestError::new(
                    StatusCode::BAD_REQUEST,
                    "VALIDATION_ERROR",
                    format!("Malformed JSON: {}", e.body_text()),
                ),
                JsonRejection::JsonDataError(e) => RestError::new(
                    StatusCode::BAD_REQUEST,
                    "VALIDATION_ERROR",
                    format!("Invalid body: {}", e.body_text()),
                ),
                other => RestError::new(
                    StatusCode::BAD_REQUEST,
                    "VALIDATION_ERROR",
                    other.body_text(),
                ),
            }),
        }
    }
}

/// The caller. Desktop mode: `X-User-Id` when it is a UUID, else the default local user.
/// Token mode: the user named by the bearer token; no valid token is a 401.
pub struct Caller(pub Actor);

impl FromRequestParts<SharedState> for Caller {
    type Rejection = RestError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        let named = parts.headers.get("x-user-id").and_then(|v| v.to_str().ok());
        let loopback = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .is_some_and(|c| crate::transport::guard::is_loopback(c.0.ip()));
        match auth::identify(&state.config, &parts.headers, None, named, loopback) {
            Ok(identity) => {
                parts.extensions.insert(identity.clone());
                Ok(Caller(Actor {
                    user_id: identity.user_id,
                }))
            }
            Err(e) => Err(RestError::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                format!("Unauthorized: {e}"),
            )),
        }
    }
}

/// `Idempotency-Key`: a retried POST with the same key and user returns the first result.
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = RestError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(IdempotencyKey(
            parts
                .headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .map(|s| format!("rest:{s}")),
        ))
    }
}

/// Query strings whose rejection is the error JSON.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = RestError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| QueryParams(q.0))
            .map_err(|e| RestError::new(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", e.body_text()))
    }
}
