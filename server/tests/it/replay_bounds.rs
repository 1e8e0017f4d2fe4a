//! What a connection may make the server hold for it is bounded by bytes (`send_buffer_bytes`):
//! a long replay is read and queued a chunk at a time as the client reads it, and a client that
//! sends requests without reading their answers stops being read, instead of having its
//! answers pile up. The server's own count of a connection's outgoing bytes (queued, or in a
//! socket write not finished yet) is watched.

use std::time::Duration;

use crate::common::*;
use futures_util::{SinkExt, StreamExt};
use pm_server::commands::{self, Actor, Command};
use pm_server::SharedState;
use pm_shared::proto::{self, Payload, WebSocketMessage, WorkItemType};
use prost::Message as _;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

fn text(len: usize, tag: usize) -> String {
    format!("{tag:06} {}", "x".repeat(len))
}

/// Creates `n` items in `project`, each with a description of about `len` bytes.
async fn items(client: &mut WsClient, project: &str, n: usize, len: usize) -> Vec<proto::WorkItem> {
    let mut out = Vec::new();
    for i in 0..n {
        let Payload::CreateWorkItemRequest(mut req) =
            create_item_req(project, WorkItemType::Task, &format!("item {i}"), None)
        else {
            unreachable!()
        };
        req.description = Some(text(len, i));
        let reply = client.request(Payload::CreateWorkItemRequest(req)).await;
        out.push(
            expect_payload!(reply, WorkItemCreated)
                .work_item
                .expect("work_item"),
        );
    }
    out
}

/// `rounds` updates of each item (a new description of about `len` bytes), straight through the
/// pipeline in-process, the items' chains running side by side so they commit in groups.
async fn history(
    state: &SharedState,
    items: &[proto::WorkItem],
    rounds: usize,
    len: usize,
    pause: Duration,
) {
    let chains = items.iter().map(|item| {
        let state = state.clone();
        let item = item.clone();
        async move {
            let actor = Actor {
                user_id: USER_A.into(),
            };
            let mut version = item.version;
            for r in 0..rounds {
                let req = proto::UpdateWorkItemRequest {
                    description: Some(text(len, r)),
                    ..upd(&item.id, version)
                };
                let done =
                    commands::execute(&state.writer, &actor, None, Command::UpdateWorkItem(req))
                        .await
                        .expect("update");
                let Payload::WorkItemUpdated(u) = done.event else {
                    panic!("{:?}", done.event)
                };
                version = u.work_item.expect("work_item").version;
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
            }
        }
    });
    futures_util::future::join_all(chains).await;
}

/// The largest count of outgoing bytes any connection reaches over `period`.
async fn peak_queued(state: &SharedState, period: Duration) -> usize {
    let end = Instant::now() + period;
    let mut peak = 0;
    while Instant::now() < end {
        peak = peak.max(state.hub.max_queued_bytes());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    peak
}

/// A client resumes a long history (several MB, the budget is 64 KiB) and reads nothing for a
/// while: the server holds no more than the budget for it. Then it reads, while writes go on:
/// every event arrives exactly once, in seq order, without a gap, replay then live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_replay_waits_for_the_client_and_arrives_whole() {
    const BUDGET: usize = 64 * 1024;
    let server = TestServer::start_with(|c| c.send_buffer_bytes = BUDGET).await;
    let epoch = server.epoch();
    let mut a = server.connect(USER_A).await;
    let project = a.create_project("Replay", "RPL").await;
    let work = items(&mut a, &project.id, 17, 600).await;
    history(&server.state, &work[..16], 200, 600, Duration::ZERO).await;
    let (_, snapshot) = a.work_items(&project.id).await;
    let stored = snapshot.seq;
    assert!(stored > 3_000, "{stored}");

    let mut b = server.connect_small_buffer(USER_B, 4096).await;
    b.send(&WebSocketMessage {
        message_id: "resume".into(),
        payload: Some(Payload::Subscribe(proto::Subscribe {
            cursors: vec![proto::ResumeCursor {
                stream: project.id.clone(),
                last_seq: 0,
                epoch: epoch.clone(),
            }],
            ..Default::default()
        })),
        ..Default::default()
    })
    .await;
    // Writes go on all along: some during the replay, some after it.
    let writer = {
        let state = server.state.clone();
        let last = work[16].clone();
        tokio::spawn(async move {
            history(&state, &[last], 250, 100, Duration::from_millis(10)).await;
        })
    };

    let peak = peak_queued(&server.state, Duration::from_millis(1500)).await;
    eprintln!("replay of {stored} events: peak outgoing bytes {peak} (budget {BUDGET})");
    assert!(peak > 0, "the replay never started");
    assert!(
        peak <= BUDGET + 4096,
        "a client that does not read made the server hold {peak} bytes (budget {BUDGET})"
    );

    // Now it reads: everything, once, in order.
    let mut seqs = SeqTracker::starting_at(&project.id, 0);
    // Live events come after their ActivityLogCreated; replayed ones alone.
    let mut live = 0;
    let mut check = |seqs: &mut SeqTracker, events: Vec<WebSocketMessage>| {
        for e in &events {
            live += usize::from(matches!(e.payload, Some(Payload::ActivityLogCreated(_))));
        }
        for e in events.iter().filter(|e| e.seq > 0) {
            assert_eq!(e.stream, project.id);
            seqs.check(e);
        }
    };
    let reply = b.await_response("resume").await;
    assert!(reply.payload.is_none(), "{reply:?}");
    check(&mut seqs, b.take_events());
    tokio::time::timeout(Duration::from_secs(60), writer)
        .await
        .expect("writer")
        .expect("writer");
    let (_, snapshot) = a.work_items(&project.id).await;
    let head = snapshot.seq;
    assert_eq!(head, stored + 250);
    while seqs.last[&project.id] < head {
        let e = b.next_event(TIMEOUT).await;
        check(&mut seqs, vec![e]);
    }
    b.expect_no_event().await;
    assert!(
        live > 0,
        "no event arrived live: the hand-over was not exercised"
    );
}

/// A client sends 10,000 requests and reads none of their answers (each larger than the
/// budget): the server holds at most one answer for it, stops reading it, and answers everyone
/// else at once, including an answer larger than the whole budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_whose_answers_are_not_read_stop_being_read() {
    const BUDGET: usize = 16 * 1024;
    let server = TestServer::start_with(|c| {
        c.send_buffer_bytes = BUDGET;
        c.rate_limit_per_sec = 1_000_000;
        c.rate_limit_burst = 1_000_000;
    })
    .await;
    let mut a = server.connect(USER_A).await;
    let project = a.create_project("Flood", "FLD").await;
    items(&mut a, &project.id, 40, 600).await;
    let (_, reply) = a.work_items(&project.id).await;
    let answer = reply.encoded_len();
    assert!(answer > BUDGET, "{answer}");

    // The flooding client: its socket reads nothing, its requests go from a task of their own
    // (which blocks once the server stops reading them).
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let stream = socket.connect(server.addr).await.expect("connect");
    let (ws, _) = tokio_tungstenite::client_async(
        format!("ws://{}/ws?user_id={USER_B}", server.addr),
        stream,
    )
    .await
    .expect("handshake");
    let (mut sink, unread) = ws.split();
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let flood = {
        let project = project.id.clone();
        let sent = sent.clone();
        tokio::spawn(async move {
            for i in 0..10_000 {
                let msg = WebSocketMessage {
                    // Long ids: 10,000 requests do not fit in the sockets' buffers.
                    message_id: format!("flood-{i}-{}", "p".repeat(1000)),
                    payload: Some(Payload::GetWorkItemsRequest(proto::GetWorkItemsRequest {
                        project_id: project.clone(),
                        since_timestamp: None,
                    })),
                    ..Default::default()
                };
                if sink
                    .send(Message::Binary(msg.encode_to_vec().into()))
                    .await
                    .is_err()
                {
                    break;
                }
                sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        })
    };

    let peak = peak_queued(&server.state, Duration::from_millis(2000)).await;
    eprintln!("unread answers of {answer} bytes: peak outgoing bytes {peak} (budget {BUDGET})");
    assert!(peak > 0, "nothing was answered");
    assert!(
        peak <= BUDGET + answer + 2048,
        "a client that does not read made the server hold {peak} bytes (budget {BUDGET}, one answer {answer})"
    );
    let sent = sent.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        sent < 10_000,
        "the server kept reading a client that does not read"
    );

    // Everyone else is answered at once, even with an answer larger than the budget.
    let mut c = server.connect(USER_C).await;
    let started = Instant::now();
    let (list, _) = c.work_items(&project.id).await;
    assert_eq!(list.len(), 40);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    c.ping().await;

    flood.abort();
    drop(unread);
}

/// A replay that waits for its client can be overtaken by pruning (the history is pruned
/// while the client does not read): the client gets the events up to where the history is
/// gone, without a gap, then ResyncRequired("cursor_too_old"), and is not subscribed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_that_overtakes_a_waiting_replay_asks_for_a_resync() {
    const BUDGET: usize = 64 * 1024;
    let server = TestServer::start_with(|c| c.send_buffer_bytes = BUDGET).await;
    let epoch = server.epoch();
    let mut a = server.connect(USER_A).await;
    let project = a.create_project("Pruned", "PRN").await;
    let work = items(&mut a, &project.id, 16, 600).await;
    history(&server.state, &work, 100, 600, Duration::ZERO).await;

    let mut b = server.connect_small_buffer(USER_B, 4096).await;
    b.send(&WebSocketMessage {
        message_id: "resume".into(),
        payload: Some(Payload::Subscribe(proto::Subscribe {
            cursors: vec![proto::ResumeCursor {
                stream: project.id.clone(),
                last_seq: 0,
                epoch,
            }],
            ..Default::default()
        })),
        ..Default::default()
    })
    .await;
    let deadline = Instant::now() + TIMEOUT;
    while server.state.hub.max_queued_bytes() == 0 {
        assert!(Instant::now() < deadline, "the replay never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pruned = server
        .state
        .writer
        .maintain(100, 30 * 86_400)
        .await
        .expect("prune");
    assert!(pruned > 1_000, "{pruned}");

    let reply = b.await_response("resume").await;
    assert!(reply.payload.is_none(), "{reply:?}");
    let events = b.take_events();
    let (resync, replayed) = events.split_last().expect("events");
    let resync = expect_payload!(resync, ResyncRequired);
    assert_eq!(
        (resync.stream.as_str(), resync.reason.as_str()),
        (project.id.as_str(), "cursor_too_old")
    );
    let mut seqs = SeqTracker::starting_at(&project.id, 0);
    for e in replayed {
        seqs.check(e);
    }
    assert!(!replayed.is_empty());
    // Not subscribed: a new event does not come.
    a.create_item(&project.id, WorkItemType::Task, "after the resync", None)
        .await;
    b.expect_no_event().await;
}

fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// A measurement, not a check (run with `--ignored --nocapture`): 30 clients resume a 20,000
/// event history with the default budget (8 MiB) and read nothing; prints what the server
/// holds for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn thirty_clients_resuming_without_reading() {
    let server = TestServer::start().await;
    let epoch = server.epoch();
    let mut a = server.connect(USER_A).await;
    let project = a.create_project("Measure", "MSR").await;
    let work = items(&mut a, &project.id, 40, 100).await;
    history(&server.state, &work, 500, 100, Duration::ZERO).await;
    let (_, snapshot) = a.work_items(&project.id).await;
    let before = rss_bytes();
    let mut clients = Vec::new();
    for _ in 0..30 {
        let mut c = server.connect_small_buffer(USER_B, 4096).await;
        c.send(&WebSocketMessage {
            message_id: "resume".into(),
            payload: Some(Payload::Subscribe(proto::Subscribe {
                cursors: vec![proto::ResumeCursor {
                    stream: project.id.clone(),
                    last_seq: 0,
                    epoch: epoch.clone(),
                }],
                ..Default::default()
            })),
            ..Default::default()
        })
        .await;
        clients.push(c);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let total: usize = (0..200)
        .filter_map(|id| server.state.hub.queued_bytes(id))
        .sum();
    eprintln!(
        "{} events; 30 clients not reading: queued {} bytes in all, max {} per connection; RSS {} -> {} MB",
        snapshot.seq,
        total,
        server.state.hub.max_queued_bytes(),
        before / 1_000_000,
        rss_bytes() / 1_000_000
    );
}
