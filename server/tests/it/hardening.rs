//! The holes of the security issue stay closed: desktop mode answers to this machine only (Host)
//! and to no foreign web page (Origin); /admin refuses form posts and foreign origins; request
//! headers and WebSocket messages must arrive in time; incomplete messages are charged to a
//! per-user budget; `bearer` is case-insensitive; REST has a rate limit; IPv4 callers of an IPv6
//! socket are local; the database is checkpointed on the way out; and `/ready` notices a
//! corrupted database. Every timeout is configured short so nothing here waits long.

use std::net::SocketAddr;
use std::time::Duration;

use crate::common::*;
use futures_util::StreamExt;
use pm_server::config::AuthMode;
use pm_server::Config;
use pm_shared::proto::{self, Payload, WebSocketMessage};
use prost::Message as _;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const SECRET: &str = "hardening-secret-0123456789abcdef";
const ALICE: &str = "a11ce000-0000-4000-8000-000000000001";
const BOB: &str = "b0b00000-0000-4000-8000-000000000002";
/// A valid Sec-WebSocket-Key (RFC 6455's sample nonce).
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// A raw HTTP/1.1 exchange (the request should say `Connection: close`): status, head, body.
async fn raw_http(addr: SocketAddr, request: &str) -> (u16, String, Value) {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    tokio::time::timeout(TIMEOUT, tcp.read_to_end(&mut response))
        .await
        .expect("response in time")
        .expect("read");
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    let body = serde_json::from_str(body).unwrap_or(Value::String(body.to_string()));
    (status, head.to_string(), body)
}

/// A WebSocket handshake with extra headers: Ok on 101, else the status and the JSON body.
async fn handshake(
    server: &TestServer,
    query: &str,
    headers: &[(&str, &str)],
) -> Result<(), (u16, Value)> {
    let mut request = server.ws_url(query).into_client_request().expect("request");
    for (name, value) in headers {
        request.headers_mut().insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
            value.parse().expect("value"),
        );
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok(_) => Ok(()),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let body = serde_json::from_slice(response.body().as_deref().unwrap_or_default())
                .unwrap_or(Value::Null);
            Err((response.status().as_u16(), body))
        }
        Err(e) => panic!("handshake failed: {e}"),
    }
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn websocket_handshakes_from_foreign_origins_are_refused() {
    let server = TestServer::start_with(|c| {
        c.allowed_origins = vec!["http://board.example:5000".into()];
    })
    .await;
    let query = format!("user_id={ALICE}");
    let (status, body) = handshake(&server, &query, &[("Origin", "http://evil.example")])
        .await
        .expect_err("a foreign page must not open the board");
    assert_eq!(status, 403, "{body}");
    assert_eq!(error_code(&body), "FORBIDDEN_ORIGIN", "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));

    handshake(&server, &query, &[])
        .await
        .expect("no Origin: not a browser");
    let own = format!("http://127.0.0.1:{}", server.addr.port());
    handshake(&server, &query, &[("Origin", own.as_str())])
        .await
        .expect("same origin");
    handshake(&server, &query, &[("Origin", "http://localhost:3000")])
        .await
        .expect("a loopback origin");
    handshake(&server, &query, &[("Origin", "http://board.example:5000")])
        .await
        .expect("a configured origin");
    let (status, _) = handshake(&server, &query, &[("Origin", "null")])
        .await
        .expect_err("a sandboxed page");
    assert_eq!(status, 403);
}

#[tokio::test]
async fn desktop_mode_answers_only_to_this_machines_host_names() {
    let server = TestServer::start().await;
    let port = server.addr.port();
    for host in ["evil.example", "evil.example:80", "10.1.2.3"] {
        let (status, _, body) = raw_http(
            server.addr,
            &format!("GET /api/v1/projects HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert_eq!(status, 403, "REST with Host {host}: {body}");
        assert_eq!(error_code(&body), "FORBIDDEN_HOST", "{body}");
    }
    let (status, _, body) = raw_http(
        server.addr,
        &format!(
            "GET /ws?user_id={ALICE} HTTP/1.1\r\nHost: evil.example\r\nConnection: Upgrade, close\r\n\
             Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n\r\n"
        ),
    )
    .await;
    assert_eq!(status, 403, "/ws with a foreign Host: {body}");
    assert_eq!(error_code(&body), "FORBIDDEN_HOST", "{body}");
    let (status, _, body) = raw_http(
        server.addr,
        "POST /admin/shutdown HTTP/1.1\r\nHost: evil.example\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 403, "{body}");

    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        "LOCALHOST".into(),
    ] {
        let (status, _, body) = raw_http(
            server.addr,
            &format!("GET /api/v1/projects HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert_eq!(status, 200, "Host {host}: {body}");
    }
    server.http(None).get("/health").await.ok();
}

#[tokio::test]
async fn admin_refuses_form_posts_and_foreign_origins() {
    sqlite_only!();
    let server = TestServer::start().await;
    let http = server.http(None);
    for content_type in [
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/plain;charset=UTF-8",
        "Application/X-WWW-Form-Urlencoded",
    ] {
        let reply = http
            .raw(
                reqwest::Method::POST,
                "/admin/shutdown",
                Some(content_type),
                "a=b",
            )
            .await;
        reply.expect_error(415, "UNSUPPORTED_MEDIA_TYPE");
    }
    let foreign = http
        .run(
            http.request(reqwest::Method::POST, "/admin/shutdown")
                .header("Origin", "http://evil.example"),
        )
        .await;
    foreign.expect_error(403, "FORBIDDEN_ORIGIN");
    // Still serving, and the endpoint itself still works for a local program.
    http.get("/health").await.ok();
    let checkpoint = http
        .run(http.request(reqwest::Method::POST, "/admin/checkpoint"))
        .await;
    assert_eq!(checkpoint.ok()["status"], "ok");
}

#[tokio::test]
async fn token_mode_keeps_pages_of_other_origins_off_ws_and_admin() {
    let server = TestServer::start_with(|c| {
        c.auth = AuthMode::Token;
        c.jwt_secret = Some(SECRET.into());
    })
    .await;
    let token = pm_server::auth::issue(SECRET, ALICE, vec!["admin".into()], 3600).expect("token");
    let query = format!("token={token}");
    let (status, body) = handshake(&server, &query, &[("Origin", "http://evil.example")])
        .await
        .expect_err("a page riding ?token=");
    assert_eq!((status, error_code(&body)), (403, "FORBIDDEN_ORIGIN"));
    handshake(&server, &query, &[]).await.expect("no Origin");
    let http = server.http(None);
    let reply = http
        .run(
            http.request(reqwest::Method::POST, "/admin/checkpoint")
                .bearer_auth(&token)
                .header("Origin", "http://evil.example"),
        )
        .await;
    reply.expect_error(403, "FORBIDDEN_ORIGIN");
    // Any Host in token mode.
    let (status, _, body) = raw_http(
        server.addr,
        &format!(
            "GET /api/v1/projects HTTP/1.1\r\nHost: pm.example.com\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn sockets_that_never_finish_their_headers_are_closed() {
    let server = TestServer::start_with(|c| c.header_read_timeout_secs = 1).await;
    let started = Instant::now();
    let mut stalled = Vec::new();
    for i in 0..20 {
        let mut tcp = TcpStream::connect(server.addr).await.expect("connect");
        if i % 2 == 0 {
            tcp.write_all(b"GET /api/v1/projects HTT")
                .await
                .expect("write");
        } else {
            tcp.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                .await
                .expect("write");
        }
        stalled.push(tcp);
    }
    // Others are served meanwhile.
    server.http(None).get("/health").await.ok();
    for mut tcp in stalled {
        let mut buf = [0u8; 1024];
        let closed = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match tcp.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => continue, // a 408, if any
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "a stalled socket was kept open");
    }
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "closed by the timeout, not at once"
    );
    server.http(None).get("/health").await.ok();
}

#[tokio::test]
async fn one_address_may_hold_only_so_many_http_connections() {
    let server = TestServer::start_with(|c| {
        c.max_http_connections_per_ip = 4;
        c.header_read_timeout_secs = 60;
    })
    .await;
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let mut tcp = TcpStream::connect(server.addr).await.expect("connect");
        tcp.write_all(b"GET /health HTT").await.expect("write");
        stalled.push(tcp);
    }
    // Wait until the server has counted them (it accepts asynchronously).
    let started = Instant::now();
    let mut refused = false;
    while started.elapsed() < TIMEOUT {
        let mut fifth = TcpStream::connect(server.addr).await.expect("connect");
        let _ = fifth
            .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await;
        let mut buf = [0u8; 64];
        match tokio::time::timeout(Duration::from_secs(2), fifth.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                refused = true;
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    assert!(
        refused,
        "a fifth connection from the same address was served"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "closed at once, not by a timeout"
    );

    // Another address is served meanwhile.
    let other: std::net::IpAddr = "127.0.0.2".parse().expect("ip");
    if std::net::TcpListener::bind((other, 0)).is_ok() {
        let client = reqwest::Client::builder()
            .local_address(other)
            .build()
            .expect("client");
        let response = client
            .get(format!("http://{}/health", server.addr))
            .send()
            .await
            .expect("request from 127.0.0.2");
        assert_eq!(response.status(), 200);
    }

    // Closing them frees the address's slots.
    drop(stalled);
    let deadline = Instant::now() + TIMEOUT;
    let http = server.http(None);
    loop {
        let response = reqwest::Client::new()
            .get(format!("http://{}/health", server.addr))
            .send()
            .await;
        if response.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "the slots were never freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    http.get("/health").await.ok();
}

/// A WebSocket of `user` whose raw TCP stream the test can write to.
async fn raw_ws(addr: SocketAddr, user: &str) -> WebSocketStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/ws?user_id={user}"), tcp)
        .await
        .expect("handshake");
    ws
}

/// The header of a masked, final binary frame announcing `len` bytes (mask key 0, so the
/// payload goes as written).
fn frame_header(len: u64) -> Vec<u8> {
    let mut h = vec![0x82, 0x80 | 127];
    h.extend_from_slice(&len.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 0]);
    h
}

/// Waits for the server's close frame; its code.
async fn close_code(ws: &mut WebSocketStream<TcpStream>, within: Duration) -> Option<u16> {
    tokio::time::timeout(within, async {
        while let Some(m) = ws.next().await {
            match m {
                Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
        None
    })
    .await
    .expect("the connection was not closed in time")
}

/// Completes a frame of 0xFF bytes and expects the server's INVALID_MESSAGE answer: the
/// connection is alive and its frame was read.
async fn finish_and_expect_answer(ws: &mut WebSocketStream<TcpStream>, rest: usize) {
    ws.get_mut()
        .write_all(&vec![0xFF; rest])
        .await
        .expect("write");
    let answer = tokio::time::timeout(TIMEOUT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Binary(b))) => return WebSocketMessage::decode(b).expect("pb"),
                Some(Ok(_)) => continue,
                other => panic!("connection ended: {other:?}"),
            }
        }
    })
    .await
    .expect("an answer in time");
    let Some(Payload::Error(e)) = answer.payload else {
        panic!("expected an error, got {answer:?}")
    };
    assert_eq!(e.code, "INVALID_MESSAGE");
}

#[tokio::test]
async fn an_incomplete_websocket_message_is_closed_after_the_frame_timeout() {
    let server = TestServer::start_with(|c| c.ws_frame_timeout_secs = 1).await;
    let mut idle = server.connect(BOB).await;
    let mut ws = raw_ws(server.addr, ALICE).await;
    let started = Instant::now();
    let mut bytes = frame_header(1024 * 1024 - 20);
    bytes.extend_from_slice(&[0xFF; 100]);
    ws.get_mut().write_all(&bytes).await.expect("write");
    let code = close_code(&mut ws, Duration::from_secs(5)).await;
    assert_eq!(code, Some(1008), "policy violation");
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(server.state.connections.partial_bytes(), 0, "released");
    // A connection with nothing half-sent is not affected.
    idle.ping().await;

    // A message that completes in time, in pieces, is fine.
    let mut ws = raw_ws(server.addr, ALICE).await;
    ws.get_mut()
        .write_all(&frame_header(300))
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(300)).await;
    ws.get_mut().write_all(&[0xFF; 100]).await.expect("write");
    tokio::time::sleep(Duration::from_millis(300)).await;
    finish_and_expect_answer(&mut ws, 200).await;
}

#[tokio::test]
async fn incomplete_messages_are_charged_to_the_users_budget() {
    const ANNOUNCED: u64 = 60_000;
    let server = TestServer::start_with(|c| {
        c.ws_partial_bytes_per_user = 100_000;
        c.ws_frame_timeout_secs = 30;
    })
    .await;
    let mut first = raw_ws(server.addr, ALICE).await;
    let mut bytes = frame_header(ANNOUNCED);
    bytes.extend_from_slice(&[0xFF; 10]);
    first.get_mut().write_all(&bytes).await.expect("write");

    // Alice's second half-sent message goes over her budget: that connection is closed.
    let mut second = raw_ws(server.addr, ALICE).await;
    // Wait until the first one is charged (its bytes may still be in flight).
    let deadline = Instant::now() + TIMEOUT;
    while server.state.connections.partial_bytes() < ANNOUNCED as usize {
        assert!(
            Instant::now() < deadline,
            "the first message was never charged"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    second.get_mut().write_all(&bytes).await.expect("write");
    assert_eq!(
        close_code(&mut second, Duration::from_secs(5)).await,
        Some(1009)
    );

    // Bob has a budget of his own.
    let mut bob = raw_ws(server.addr, BOB).await;
    bob.get_mut().write_all(&bytes).await.expect("write");
    finish_and_expect_answer(&mut bob, ANNOUNCED as usize - 10).await;

    // Alice's first connection is untouched; once its message is complete her budget is free.
    finish_and_expect_answer(&mut first, ANNOUNCED as usize - 10).await;
    let mut third = raw_ws(server.addr, ALICE).await;
    third.get_mut().write_all(&bytes).await.expect("write");
    finish_and_expect_answer(&mut third, ANNOUNCED as usize - 10).await;
    assert_eq!(server.state.connections.partial_bytes(), 0);
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let server = TestServer::start_with(|c| {
        c.auth = AuthMode::Token;
        c.jwt_secret = Some(SECRET.into());
    })
    .await;
    let token = pm_server::auth::issue(SECRET, ALICE, vec![], 3600).expect("token");
    let http = server.http(None);
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let reply = http
            .run(
                http.request(reqwest::Method::GET, "/api/v1/projects")
                    .header("Authorization", format!("{scheme} {token}")),
            )
            .await;
        assert_eq!(reply.status, 200, "{scheme}: {:?}", reply.body);
    }
}

#[tokio::test]
async fn rest_requests_over_the_rate_get_429_with_retry_after() {
    let server = TestServer::start_with(|c| {
        c.auth = AuthMode::Token;
        c.jwt_secret = Some(SECRET.into());
        c.rest_rate_limit_per_sec = 5;
        c.rest_rate_limit_burst = 5;
    })
    .await;
    // The buckets' time moves only when the test says so.
    server.state.rest_limiter.clock.stop();
    let alice = pm_server::auth::issue(SECRET, ALICE, vec![], 3600).expect("token");
    let bob = pm_server::auth::issue(SECRET, BOB, vec![], 3600).expect("token");
    let client = reqwest::Client::new();
    let url = format!("http://{}/api/v1/projects", server.addr);
    let mut limited = None;
    let mut passed = 0;
    for _ in 0..20 {
        let response = client
            .get(&url)
            .bearer_auth(&alice)
            .send()
            .await
            .expect("request");
        if response.status() == 429 {
            limited = Some(response);
            break;
        }
        assert_eq!(response.status(), 200);
        passed += 1;
    }
    let response = limited.expect("20 requests at once never hit the limit of 5");
    assert_eq!(
        passed, 5,
        "the burst, and not a token more while the clock stands still"
    );
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    assert!((1..=60).contains(&retry_after));
    let body: Value = response.json().await.expect("json");
    assert_eq!(error_code(&body), "RATE_LIMITED", "{body}");

    // Bob is another client.
    let other = client
        .get(&url)
        .bearer_auth(&bob)
        .send()
        .await
        .expect("bob");
    assert_eq!(other.status(), 200);
    // Alice's bucket refills.
    server
        .state
        .rest_limiter
        .clock
        .advance(Duration::from_millis(450));
    let again = client
        .get(&url)
        .bearer_auth(&alice)
        .send()
        .await
        .expect("again");
    assert_eq!(again.status(), 200);
}

#[tokio::test]
async fn local_ipv4_callers_of_an_ipv6_wildcard_server_may_administer() {
    sqlite_only!();
    let Some(server) = TestServer::start_bound("[::]:0", |c| {
        c.host = "::".into();
        c.allow_remote_desktop = true;
    })
    .await
    else {
        eprintln!("no IPv6 on this machine; the address mapping is unit-tested in guard.rs");
        return;
    };
    let v4 = SocketAddr::from(([127, 0, 0, 1], server.addr.port()));
    let http = Http::new(v4, None);
    let reply = http
        .run(http.request(reqwest::Method::POST, "/admin/checkpoint"))
        .await;
    assert_eq!(
        reply.status, 200,
        "peer ::ffff:127.0.0.1 is local: {:?}",
        reply.body
    );
}

#[tokio::test]
async fn desktop_mode_on_a_wildcard_address_needs_saying_so() {
    let dir = tempfile::tempdir().expect("dir");
    for host in ["0.0.0.0", "::", "192.168.1.20"] {
        let mut config = Config::for_data_dir(dir.path());
        config.host = host.into();
        let err = config.validate().expect_err(host).to_string();
        assert!(err.contains("--allow-remote-desktop"), "{err}");
        assert!(pm_server::AppState::open(config.clone()).await.is_err());
        config.allow_remote_desktop = true;
        config.validate().expect("allowed explicitly");
    }
}

#[tokio::test]
async fn shutdown_checkpoints_and_ready_notices_a_corrupted_database() {
    sqlite_only!();
    let server = TestServer::start().await;
    let mut client = server.connect(ALICE).await;
    let project = client.create_project("Corruptible", "CR").await;
    for i in 0..150 {
        let mut req = create_item_req(
            &project.id,
            proto::WorkItemType::Task,
            &format!("item {i}"),
            None,
        );
        if let Payload::CreateWorkItemRequest(r) = &mut req {
            r.description = Some(format!("{i} {}", "lorem ipsum dolor sit amet ".repeat(40)));
        }
        expect_payload!(client.request(req).await, WorkItemCreated);
    }
    let http = server.http(None);
    assert_eq!(http.get("/ready").await.ok()["status"], "healthy");
    client.close().await;

    // Stopped with the store still open: the WAL was folded in and emptied on the way out.
    let state = server.state.clone();
    let dir = server.stop().await;
    let db = dir.path().join("data.db");
    let wal = std::fs::metadata(dir.path().join("data.db-wal")).map_or(0, |m| m.len());
    assert_eq!(wal, 0, "the WAL is empty after shutdown");
    let copy = dir.path().join("copy.db");
    std::fs::copy(&db, &copy).expect("copy");
    drop(state);

    // Garbage over pages in the middle of the file.
    let mut bytes = std::fs::read(&copy).expect("read");
    let pages = bytes.len() / 4096;
    assert!(pages > 20, "{pages} pages");
    for page in pages / 2..pages / 2 + 2 {
        for (i, b) in bytes[page * 4096..(page + 1) * 4096].iter_mut().enumerate() {
            *b = (i * 7 + 13) as u8;
        }
    }
    let corrupt = tempfile::tempdir().expect("dir");
    std::fs::write(corrupt.path().join("data.db"), &bytes).expect("write");
    let server = TestServer::start_in(corrupt, |_| {}).await;
    let reply = server.http(None).get("/ready").await;
    assert_eq!(reply.status, 503, "{:?}", reply.body);
    assert_eq!(reply.body["status"], "unhealthy");
    assert_eq!(
        error_code(&reply.body),
        "DATABASE_CORRUPT",
        "{:?}",
        reply.body
    );
    // Liveness is another matter.
    assert_eq!(server.http(None).get("/live").await.status, 200);

    // The uncorrupted copy is a complete backup on its own.
    let whole = tempfile::tempdir().expect("dir");
    std::fs::copy(&copy, whole.path().join("data.db")).expect("copy");
    let server = TestServer::start_in(whole, |_| {}).await;
    let reply = server.http(None).get("/ready").await;
    assert_eq!(reply.ok()["status"], "healthy");
    let items = server
        .http(None)
        .get(&format!("/api/v1/projects/{}/work-items", project.id))
        .await;
    assert_eq!(items.status, 200, "{:?}", items.body);
}
