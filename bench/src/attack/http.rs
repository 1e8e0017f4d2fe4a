//! The attacker's clients: raw HTTP/1.1 over TCP (any Host, Origin or half a request), REST
//! with a token or a named user, and WebSocket connections with chosen headers.
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use futures_util::{SinkExt, StreamExt};
use pm_shared::proto::{Payload, WebSocketMessage};
use prost::Message as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::net::{frame, Target, Ws};

pub const WAIT: Duration = Duration::from_secs(20);

/// Who the attacker (or its victim) is to the server.
#[derive(Debug, Clone)]
pub enum Identity {
    /// Desktop mode: the user a client names.
    Named(String),
    /// Token mode: a signed token.
    Token(String),
}

/// A response read off the socket: the status, and the body as text.
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub body: String,
}

/// Sends `request` (the whole HTTP/1.1 text, `Connection: close`) and reads the response: to
/// the close, or only its head when it is a 101 (an upgraded socket stays open).
pub async fn raw(target: &Target, request: String) -> Result<Raw> {
    let mut stream = TcpStream::connect(target.addr).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut bytes = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .context("no response")??;
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&buf[..n]);
        if bytes.starts_with(b"HTTP/1.1 101") && bytes.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("not an HTTP response: {text:.80}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok(Raw { status, body })
}

/// A request with the given method, path, extra header lines and body.
pub fn request(target: &Target, method: &str, path: &str, headers: &[&str], body: &str) -> String {
    let mut text = format!("{method} {path} HTTP/1.1\r\n");
    if !headers
        .iter()
        .any(|h| h.to_ascii_lowercase().starts_with("host:"))
    {
        text.push_str(&format!("Host: {}\r\n", target.host));
    }
    for h in headers {
        text.push_str(h);
        text.push_str("\r\n");
    }
    text.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    text
}

/// The headers of a WebSocket upgrade.
pub fn upgrade_headers() -> [&'static str; 4] {
    [
        "Connection: Upgrade",
        "Upgrade: websocket",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    ]
}

/// REST as `who`.
pub struct Rest {
    client: reqwest::Client,
    base: String,
    who: Identity,
}

impl Rest {
    pub fn new(target: &Target, who: Identity) -> Result<Rest> {
        Ok(Rest {
            client: reqwest::Client::builder().timeout(WAIT).build()?,
            base: target.http.clone(),
            who,
        })
    }

    pub fn builder(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let b = self.client.request(method, format!("{}{path}", self.base));
        match &self.who {
            Identity::Named(user) => b.header("X-User-Id", user),
            Identity::Token(token) => b.bearer_auth(token),
        }
    }

    /// Status and JSON body (Null when the body is not JSON).
    pub async fn send(&self, b: reqwest::RequestBuilder) -> Result<(u16, serde_json::Value)> {
        let resp = b.send().await?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await?;
        Ok((status, serde_json::from_slice(&bytes).unwrap_or_default()))
    }

    pub async fn get(&self, path: &str) -> Result<(u16, serde_json::Value)> {
        self.send(self.builder(reqwest::Method::GET, path)).await
    }

    pub async fn post(
        &self,
        path: &str,
        body: serde_json::Value,
    ) -> Result<(u16, serde_json::Value)> {
        self.send(self.builder(reqwest::Method::POST, path).json(&body))
            .await
    }

    pub async fn put(
        &self,
        path: &str,
        body: serde_json::Value,
    ) -> Result<(u16, serde_json::Value)> {
        self.send(self.builder(reqwest::Method::PUT, path).json(&body))
            .await
    }

    pub async fn delete(&self, path: &str) -> Result<(u16, serde_json::Value)> {
        self.send(self.builder(reqwest::Method::DELETE, path)).await
    }
}

/// A WebSocket connection as `who`, with extra request headers.
pub async fn ws(target: &Target, who: &Identity, headers: &[(&str, &str)]) -> Result<Ws> {
    let query = match who {
        Identity::Named(user) => format!("user_id={user}"),
        Identity::Token(token) => format!("token={token}"),
    };
    let mut request = format!("ws://{}/ws?{query}", target.host).into_client_request()?;
    for (name, value) in headers {
        let name = tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())?;
        request
            .headers_mut()
            .insert(name, value.parse().context("header value")?);
    }
    let stream = TcpStream::connect(target.addr).await?;
    let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::client_async(request, stream))
        .await
        .context("handshake timed out")??;
    Ok(ws)
}

/// Sends a request and returns its answer (the message echoing its id), whatever it is.
pub async fn ask(ws: &mut Ws, payload: Payload) -> Result<WebSocketMessage> {
    let id = uuid::Uuid::new_v4().to_string();
    ws.send(frame(id.clone(), payload)).await?;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .context("no answer")?
            .ok_or_else(|| anyhow!("connection closed"))??;
        if let Message::Binary(bytes) = msg {
            let msg = WebSocketMessage::decode(bytes.as_ref())?;
            if msg.message_id == id {
                return Ok(msg);
            }
        }
    }
}

/// Every binary message that arrives within `quiet` of the previous one.
pub async fn collect(ws: &mut Ws, quiet: Duration) -> Vec<WebSocketMessage> {
    let mut all = Vec::new();
    while let Ok(Some(Ok(msg))) = tokio::time::timeout(quiet, ws.next()).await {
        if let Message::Binary(bytes) = msg {
            if let Ok(msg) = WebSocketMessage::decode(bytes.as_ref()) {
                all.push(msg);
            }
        }
    }
    all
}

/// The error code of an answer, or None when it is not an error.
pub fn error_code(msg: &WebSocketMessage) -> Option<String> {
    match &msg.payload {
        Some(Payload::Error(e)) => Some(e.code.clone()),
        _ => None,
    }
}
