//! The WebSocket opening handshake (RFC 6455 §4.2), done here rather than by axum's
//! `WebSocketUpgrade` so the connection's socket is ours: the writer sends frames the hub built
//! once straight to the socket (see `frames`), which axum's `WebSocket` has no way to do.
use std::future::Future;

use axum::extract::FromRequestParts;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// The upgraded connection's byte stream.
pub type Io = TokioIo<hyper::upgrade::Upgraded>;

/// A valid upgrade request, not yet answered.
pub struct Handshake {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
}

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// Whether a Sec-WebSocket-Key is 16 bytes in base64 (RFC 6455 4.1): 24 characters, the last
/// two "=".
fn is_nonce(key: &[u8]) -> bool {
    key.len() == 24
        && key.ends_with(b"==")
        && key[..22]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// A refused handshake: the REST error JSON.
fn refuse(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "error": { "code": "INVALID_MESSAGE", "message": message } });
    let mut response = (status, axum::Json(body)).into_response();
    if status == StatusCode::UPGRADE_REQUIRED {
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
    }
    response
}

impl<S: Send + Sync> FromRequestParts<S> for Handshake {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        if parts.version != Version::HTTP_11 {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "WebSocket connections are opened with HTTP/1.1",
            ));
        }
        if parts.method != Method::GET {
            // axum routes HEAD to GET handlers; an upgrade is a GET.
            return Err(refuse(
                StatusCode::METHOD_NOT_ALLOWED,
                "WebSocket connections are opened with GET",
            ));
        }
        if !has_token(&parts.headers, header::CONNECTION, "upgrade")
            || !has_token(&parts.headers, header::UPGRADE, "websocket")
        {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "/ws takes WebSocket connections only (Connection: Upgrade, Upgrade: websocket)",
            ));
        }
        if parts.headers.get(header::SEC_WEBSOCKET_VERSION) != Some(&HeaderValue::from_static("13"))
        {
            return Err(refuse(
                StatusCode::UPGRADE_REQUIRED,
                "only WebSocket version 13 is supported",
            ));
        }
        let key = parts
            .headers
            .get(header::SEC_WEBSOCKET_KEY)
            .filter(|k| is_nonce(k.as_bytes()))
            .cloned()
            .ok_or_else(|| {
                refuse(
                    StatusCode::BAD_REQUEST,
                    "Sec-WebSocket-Key must be 16 random bytes in base64",
                )
            })?;
        let on_upgrade = parts.extensions.remove::<OnUpgrade>().ok_or_else(|| {
            refuse(
                StatusCode::BAD_REQUEST,
                "this connection cannot be upgraded",
            )
        })?;
        Ok(Handshake { key, on_upgrade })
    }
}

impl Handshake {
    /// Answers 101 Switching Protocols and runs `serve` on the connection once hyper hands it
    /// over.
    pub fn accept<F, Fut>(self, serve: F) -> Response
    where
        F: FnOnce(Io) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => serve(TokioIo::new(upgraded)).await,
                Err(e) => tracing::debug!(error = %e, "websocket upgrade failed"),
            }
        });
        let accept = derive_accept_key(self.key.as_bytes());
        let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(value) = HeaderValue::from_str(&accept) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, value);
        }
        response
    }
}
