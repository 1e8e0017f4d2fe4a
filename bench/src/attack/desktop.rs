//! Attacks on a desktop-mode server: a web page the user happens to open, a slow or silent
//! client that holds the server's resources, and a large import.
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::SinkExt;
use pm_shared::proto::{self, Payload};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::http::{ask, raw, request, upgrade_headers, ws, Identity, Rest};
use super::{attack, refused, succeeded, Attack, Verdict};
use crate::net::{self, frame, ConnOptions, Target};

/// What the attacks need to know of the server they run against.
pub struct Setup {
    /// How long the server waits for a request's headers, and for a started frame to finish.
    pub header_timeout: Duration,
    pub frame_timeout: Duration,
    /// Its `--send-buffer-bytes`: the most it may hold for one connection.
    pub send_buffer_bytes: u64,
    /// Its pid, for its memory.
    pub pid: Option<u32>,
}

const USER: &str = "0000000a-0000-4000-8000-00000000a77a";

pub fn attacks<'a>(target: &'a Target, setup: &'a Setup) -> Vec<Attack<'a>> {
    vec![
        attack(
            "4. a web page opens the board's WebSocket from another origin",
            cross_origin_ws(target),
        ),
        attack(
            "4. DNS rebinding: the server answers a request for another Host",
            rebinding(target),
        ),
        attack(
            "6. 300 sockets that never finish their headers hold the server",
            slowloris(target, setup),
        ),
        attack(
            "6. connections holding a started 1 MiB frame pin memory forever",
            partial_frames(target, setup),
        ),
        attack(
            "8. 30 clients resume a long history and never read",
            non_readers(target, setup),
        ),
        attack(
            "7. a large import holds the writer while others' writes time out",
            large_import(target),
        ),
        // Last: where it succeeds, the server is gone.
        attack(
            "4. a web page shuts the server down with a cross-origin form POST",
            form_shutdown(target),
        ),
    ]
}

async fn cross_origin_ws(target: &Target) -> Result<Verdict> {
    match ws(
        target,
        &Identity::Named(USER.into()),
        &[("Origin", "http://evil.example")],
    )
    .await
    {
        Ok(_) => succeeded("the upgrade was accepted"),
        Err(e) => refused(format!("{e:#}")),
    }
}

async fn rebinding(target: &Target) -> Result<Verdict> {
    let port = target.addr.port();
    let host = format!("Host: evil.example:{port}");
    let r = raw(
        target,
        request(target, "GET", "/api/v1/projects", &[&host], ""),
    )
    .await?;
    let mut upgrade = upgrade_headers().to_vec();
    upgrade.push(&host);
    let w = raw(target, request(target, "GET", "/ws", &upgrade, "")).await?;
    if (200..300).contains(&r.status) || w.status == 101 {
        return succeeded(format!("REST {}, WebSocket {}", r.status, w.status));
    }
    refused(format!("REST {}, WebSocket {}", r.status, w.status))
}

async fn form_shutdown(target: &Target) -> Result<Verdict> {
    let r = raw(
        target,
        request(
            target,
            "POST",
            "/admin/shutdown",
            &[
                "Content-Type: application/x-www-form-urlencoded",
                "Origin: http://evil.example",
            ],
            "a=b",
        ),
    )
    .await?;
    // A page may leave the Origin out (a `no-referrer` form): the content type alone must do.
    let bare = raw(
        target,
        request(
            target,
            "POST",
            "/admin/shutdown",
            &["Content-Type: text/plain"],
            "a=b",
        ),
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let alive = raw(target, request(target, "GET", "/health", &[], "")).await;
    match alive {
        Ok(h)
            if h.status == 200
                && !(200..300).contains(&r.status)
                && !(200..300).contains(&bare.status) =>
        {
            refused(format!("{} and {}; still serving", r.status, bare.status))
        }
        other => succeeded(format!(
            "answered {} / {}; /health afterwards: {other:?}",
            r.status, bare.status
        )),
    }
}

/// Whether the server closed `stream` (a read gives 0 bytes, or an error) within `wait`.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue, // a response (e.g. 408); the close follows
        }
    }
}

async fn slowloris(target: &Target, setup: &Setup) -> Result<Verdict> {
    let mut held = Vec::new();
    let mut turned_away = 0;
    for _ in 0..300 {
        let started = async {
            let mut s = TcpStream::connect(target.addr).await?;
            s.write_all(b"GET /api/v1/projects HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                .await?;
            anyhow::Ok(s)
        };
        match started.await {
            Ok(s) => held.push(s),
            Err(_) => turned_away += 1,
        }
    }
    // Others (another address) are served meanwhile.
    let served = from_other_address(target).await;
    let wait = setup.header_timeout + Duration::from_secs(3);
    let mut open = 0;
    for s in &mut held {
        if !closed_within(s, wait).await {
            open += 1;
        }
    }
    match served {
        Ok(200) if open == 0 => refused(format!(
            "all 300 closed within {:?} ({turned_away} at once); others served meanwhile",
            setup.header_timeout
        )),
        other => succeeded(format!(
            "{open} of 300 still open; /health from 127.0.0.2: {other:?}"
        )),
    }
}

/// GET /health from 127.0.0.2: a user other than the one holding connections.
async fn from_other_address(target: &Target) -> Result<u16> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind("127.0.0.2:0".parse()?)?;
    let mut s = socket.connect(target.addr).await?;
    s.write_all(request(target, "GET", "/health", &[], "").as_bytes())
        .await?;
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut bytes))
        .await
        .context("no answer")??;
    let text = String::from_utf8_lossy(&bytes);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("not an HTTP response")
}

/// A WebSocket handshake done by hand, so that the socket stays ours.
async fn raw_upgrade(target: &Target) -> Result<TcpStream> {
    let mut s = TcpStream::connect(target.addr).await?;
    let mut headers = upgrade_headers().to_vec();
    headers.push("Host: 127.0.0.1");
    let text = format!(
        "GET /ws?user_id={USER} HTTP/1.1\r\n{}\r\n\r\n",
        headers.join("\r\n")
    );
    s.write_all(text.as_bytes()).await?;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .context("handshake")??;
        anyhow::ensure!(n > 0, "closed during the handshake");
        got.extend_from_slice(&buf[..n]);
    }
    anyhow::ensure!(
        got.starts_with(b"HTTP/1.1 101"),
        "not upgraded: {}",
        String::from_utf8_lossy(&got)
    );
    Ok(s)
}

async fn partial_frames(target: &Target, setup: &Setup) -> Result<Verdict> {
    let mut held = Vec::new();
    for _ in 0..20 {
        let mut s = raw_upgrade(target).await?;
        // FIN + binary, masked, 64-bit length: 1 MiB - 20 bytes announced, 1 KiB sent.
        let mut header = vec![0x82u8, 0x80 | 127];
        header.extend_from_slice(&((1u64 << 20) - 20).to_be_bytes());
        header.extend_from_slice(&[1, 2, 3, 4]);
        header.extend_from_slice(&[0u8; 1024]);
        s.write_all(&header).await?;
        held.push(s);
    }
    let wait = setup.frame_timeout + Duration::from_secs(3);
    let mut open = 0;
    for s in &mut held {
        if !closed_within(s, wait).await {
            open += 1;
        }
    }
    if open > 0 {
        return succeeded(format!(
            "{open} of 20 connections still open after {wait:?}"
        ));
    }
    refused(format!("all 20 closed within {:?}", setup.frame_timeout))
}

/// A project with `n` updates of one item in its history.
async fn history(target: &Target, n: i32) -> Result<(String, String)> {
    let project = net::create_project(target, "attack history").await?;
    let mut w = net::connect(target, USER, ConnOptions::default()).await?;
    let item = net::create_item(&mut w, &project, "churn").await?;
    // Pipelined: sent without waiting, applied in order.
    for v in 0..n {
        let request = net::update_title_request(&item.id, item.version + v, format!("v{v}"));
        w.send(frame(uuid::Uuid::new_v4().to_string(), request))
            .await?;
    }
    // A read answered after all of them means they are all applied.
    let seq = net::project_seq(&mut w, &project).await?;
    anyhow::ensure!(seq >= n as u64, "only {seq} events were written");
    let epoch = ask(
        &mut w,
        Payload::GetWorkItemsRequest(proto::GetWorkItemsRequest {
            project_id: project.clone(),
            since_timestamp: None,
        }),
    )
    .await?
    .epoch;
    Ok((project, epoch))
}

async fn non_readers(target: &Target, setup: &Setup) -> Result<Verdict> {
    let pid = setup
        .pid
        .context("the server's pid is needed for its memory")?;
    let (project, epoch) = history(target, 20_000).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = net::rss_kib(pid).context("reading the server's memory")?;
    let mut silent = Vec::new();
    for _ in 0..30 {
        let mut c = net::connect(
            target,
            USER,
            ConnOptions {
                recv_buffer: Some(4096),
                small_buffers: true,
            },
        )
        .await?;
        let subscribe = Payload::Subscribe(proto::Subscribe {
            cursors: vec![proto::ResumeCursor {
                stream: project.clone(),
                last_seq: 0,
                epoch: epoch.clone(),
            }],
            ..Default::default()
        });
        c.send(frame(uuid::Uuid::new_v4().to_string(), subscribe))
            .await?;
        silent.push(c);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = net::rss_kib(pid).context("reading the server's memory")?;
    drop(silent);
    let grown = after.saturating_sub(before);
    // What the server may hold for them: each its budget, and some slack for the rest.
    let allowed = 30 * setup.send_buffer_bytes / 1024 + 32 * 1024;
    if grown > allowed {
        return succeeded(format!(
            "the server grew by {} MiB (allowed {} MiB)",
            grown / 1024,
            allowed / 1024
        ));
    }
    refused(format!(
        "the server grew by {} MiB for 30 silent resumers of 20,000 events (budget {} MiB)",
        grown / 1024,
        allowed / 1024
    ))
}

async fn large_import(target: &Target) -> Result<Verdict> {
    const ITEMS: usize = 20_000;
    let project = uuid::Uuid::new_v4().to_string();
    let key = format!(
        "IM{}",
        &uuid::Uuid::new_v4().simple().to_string()[..6].to_ascii_uppercase()
    );
    let now = pm_shared::now_secs();
    let user = USER;
    let items: Vec<serde_json::Value> = (0..ITEMS)
        .map(|i| {
            json!({
                "id": uuid::Uuid::new_v4().to_string(), "item_type": "task", "parent_id": null,
                "project_id": project, "position": i, "title": format!("imported {i}"),
                "description": null, "status": "backlog", "priority": "medium",
                "assignee_id": null, "sprint_id": null, "story_points": null,
                "item_number": i + 1, "version": 1, "created_at": now, "updated_at": now,
                "created_by": user, "updated_by": user
            })
        })
        .collect();
    let doc = json!({
        "schema_version": 1,
        "projects": [{
            "id": project, "key": key, "title": "Imported", "description": null,
            "status": "active", "version": 1, "created_at": now, "updated_at": now,
            "created_by": user, "updated_by": user, "next_work_item_number": ITEMS + 1
        }],
        "work_items": items,
    });
    let other_project = net::create_project(target, "attack other writer").await?;
    let importer = {
        let rest = Rest::new(target, Identity::Named(USER.into()))?;
        tokio::spawn(async move {
            let started = Instant::now();
            let (status, body) = rest.post("/api/v1/sync/import", doc).await?;
            anyhow::Ok((status, body, started.elapsed()))
        })
    };
    let started = Instant::now();
    let mut other = net::connect(target, USER, ConnOptions::default()).await?;
    let mut worst = Duration::ZERO;
    let mut failed = Vec::new();
    while !importer.is_finished() {
        let sent = Instant::now();
        let answer = ask(
            &mut other,
            net::create_item_request(&other_project, "meanwhile".into()),
        )
        .await?;
        worst = worst.max(sent.elapsed());
        if let Some(Payload::Error(e)) = answer.payload {
            failed.push(e.code);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body, took) = importer.await.context("import task")??;
    anyhow::ensure!(status == 200, "the import itself failed: {status} {body}");
    let _ = started;
    if !failed.is_empty() || (took > Duration::from_secs(2) && worst * 2 > took) {
        return succeeded(format!(
            "the import took {took:?}; another user's write waited up to {worst:?}, errors {failed:?}"
        ));
    }
    refused(format!(
        "the import of {ITEMS} items took {took:?}; another user's writes waited at most {worst:?}"
    ))
}
