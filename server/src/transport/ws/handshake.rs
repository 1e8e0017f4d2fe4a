//! The WebSocket opening handshake (RFC 6455 §4.2), done here rather than by axum's
//! `WebSocketUpgrade` so the connection's socket is ours: the writer sends frames the hub built
//! once straight to the socket (see `frames`), which axum's `WebSocket` has no way to do.
use std::future::Future;

use axum::extract::FromRequestParts;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// The upgraded connection: its TCP stream, taken back from hyper so that the hub can write to
/// it (`crate::hub::socket`), and what the client sent after its request that hyper had read
/// already.
pub struct Io {
    pub tcp: TcpStream,
    /// None when there is nothing (the usual case): a connection's reader carries this for as
    /// long as it lives.
    pub read_ahead: Option<Box<Bytes>>,
}

impl Io {
    /// The bytes hyper read ahead are copied (usually there are none) and its `Parts` dropped
    /// here: a slice of them would keep hyper's whole read buffer (8 KiB) alive for as long as
    /// the connection lives, which a massif profile of 1,000 idle connections showed (8 MB).
    fn of(parts: hyper::upgrade::Parts<TokioIo<TcpStream>>) -> Io {
        Io {
            tcp: parts.io.into_inner(),
            read_ahead: (!parts.read_buf.is_empty())
                .then(|| Box::new(Bytes::copy_from_slice(&parts.read_buf))),
        }
    }
}

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
            // Taken apart before `serve` is awaited, so the task, which lives as long as the
            // connection, does not keep room for what the upgrade handed over.
            let io = match on_upgrade.await {
                // What `app::serve` gave hyper: every connection is a TCP stream.
                Ok(upgraded) => match upgraded.downcast::<TokioIo<TcpStream>>() {
                    Ok(parts) => Io::of(parts),
                    Err(_) => {
                        tracing::error!("an upgraded connection that is not a TCP stream");
                        return;
                    }
                },
                Err(e) => {
                    tracing::debug!(error = %e, "websocket upgrade failed");
                    return;
                }
            };
            serve(io).await
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
