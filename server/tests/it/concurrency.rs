//! Concurrency: optimistic versions under races, many writers over both transports with every
//! event delivered to every subscriber exactly once and in order, and a client that never reads
//! its socket, which must not hold anyone else up.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use pm_shared::proto::{self, Payload, WebSocketMessage, WorkItemType};
use serde_json::json;
use tokio::time::Instant;

/// How long the writers run; PM_TEST_WRITERS_SECS makes a longer soak possible.
fn writers_duration() -> Duration {
    let secs = std::env::var("PM_TEST_WRITERS_SECS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .unwrap_or(3.0);
    Duration::from_secs_f64(secs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_with_the_same_version_one_wins() {
    let server = TestServer::start().await;
    let epoch = server.epoch();
    let mut setup = server.connect(USER_A).await;
    let p = setup.create_project("Race", "RACE").await;
    let item = setup
        .create_item(&p.id, WorkItemType::Task, "contested", None)
        .await;
    let mut obs = server.connect(USER_C).await;
    obs.subscribe(&[&p.id]).await;
    let mut seqs = SeqTracker::starting_at(&p.id, 1);

    let mut x = server.connect(USER_A).await;
    let mut y = server.connect(USER_B).await;
    let http = server.http(Some(USER_B));
    let rounds = 12;
    let mut version = item.version;
    for round in 0..rounds {
        let x_req = Payload::UpdateWorkItemRequest(proto::UpdateWorkItemRequest {
            title: Some(format!("x{round}")),
            ..upd(&item.id, version)
        });
        // Even rounds race two WebSocket clients, odd rounds a WebSocket client and REST.
        let (x_won, y_won) = if round % 2 == 0 {
            // A value no earlier round set: an update that changes nothing is answered as a
            // success without a new version, so a repeated value could let both "win".
            let y_req = Payload::UpdateWorkItemRequest(proto::UpdateWorkItemRequest {
                description: Some(format!("y{round}")),
                ..upd(&item.id, version)
            });
            let (rx, ry) = tokio::join!(x.request(x_req), y.request(y_req));
            (outcome(&rx), outcome(&ry))
        } else {
            let path = format!("/api/v1/work-items/{}", item.id);
            let body = json!({"story_points": round, "expected_version": version});
            let (rx, ry) = tokio::join!(x.request(x_req), http.put(&path, body));
            let y_won = match ry.status {
                200 => true,
                _ => {
                    ry.expect_error(409, "CONFLICT");
                    false
                }
            };
            (outcome(&rx), y_won)
        };
        assert!(
            x_won ^ y_won,
            "round {round}: exactly one of two updates at version {version} must win (x {x_won}, y {y_won})"
        );
        // The winner's event, and only it, reaches the subscriber.
        let (_, ev) = recv_mutation(&mut obs, &mut seqs, &epoch).await;
        let updated = expect_payload!(ev, WorkItemUpdated);
        let winner = if x_won { USER_A } else { USER_B };
        assert_eq!(updated.user_id, winner, "round {round}");
        version = updated.work_item.expect("work_item").version;
        assert_eq!(version, item.version + round + 1);
    }
    obs.expect_no_event().await;
    let (items, snap) = obs.work_items(&p.id).await;
    assert_eq!(items[0].version, item.version + rounds);
    assert_eq!(snap.seq, 1 + rounds as u64);
}

/// True for WorkItemUpdated, false for a CONFLICT error; anything else fails.
fn outcome(reply: &WebSocketMessage) -> bool {
    match &reply.payload {
        Some(Payload::WorkItemUpdated(_)) => true,
        Some(Payload::Error(e)) if e.code == "CONFLICT" => false,
        other => panic!("unexpected reply to a racing update: {other:?}"),
    }
}

/// What one writer did: how many writes succeeded, and on which items.
struct WriterReport {
    writes: u64,
    item_id: String,
}

/// A subscriber that reads continuously until it has seen seq `target` (once known).
fn spawn_subscriber(
    mut client: WsClient,
    target: Arc<AtomicU64>,
    give_up: Duration,
) -> tokio::task::JoinHandle<Vec<WebSocketMessage>> {
    tokio::spawn(async move {
        let deadline = Instant::now() + give_up;
        let mut events = Vec::new();
        let mut last = 0;
        loop {
            let t = target.load(Ordering::SeqCst);
            if t > 0 && last >= t {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "subscriber gave up at seq {last} (target {t})"
            );
            if let Some(m) = client.try_next_event(Duration::from_millis(100)).await {
                if m.seq > 0 {
                    last = m.seq;
                    events.push(m);
                }
            }
        }
        // Nothing after the last write.
        client.expect_no_event().await;
        events
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_writers_every_event_reaches_every_subscriber_once_in_order() {
    let server = TestServer::start().await;
    let epoch = server.epoch();
    let mut setup = server.connect(USER_A).await;
    let p = setup.create_project("Writers", "WR").await;
    let mut items = Vec::new();
    for i in 0..8 {
        items.push(
            setup
                .create_item(&p.id, WorkItemType::Task, &format!("item {i}"), None)
                .await,
        );
    }
    let (_, snap) = setup.work_items(&p.id).await;
    let base = snap.seq;
    assert_eq!(base, 8);

    let target = Arc::new(AtomicU64::new(0));
    let mut subscribers = Vec::new();
    for _ in 0..3 {
        let mut c = server.connect(USER_C).await;
        c.subscribe(&[&p.id]).await;
        subscribers.push(spawn_subscriber(
            c,
            target.clone(),
            Duration::from_secs(120),
        ));
    }

    let run_for = writers_duration();
    let stop_at = Instant::now() + run_for;
    let mut writers = Vec::new();
    for (i, item) in items.iter().cloned().enumerate() {
        let user = format!("00000000-0000-4000-8000-0000000000{:02}", i + 10);
        if i % 2 == 0 {
            let mut c = server.connect(&user).await;
            writers.push(tokio::spawn(async move {
                let mut version = item.version;
                let mut writes = 0u64;
                while Instant::now() < stop_at {
                    let reply = if writes % 3 == 2 {
                        c.request(Payload::CreateCommentRequest(proto::CreateCommentRequest {
                            work_item_id: item.id.clone(),
                            content: format!("comment {writes}"),
                        }))
                        .await
                    } else {
                        c.request(Payload::UpdateWorkItemRequest(
                            proto::UpdateWorkItemRequest {
                                title: Some(format!("ws {i} write {writes}")),
                                position: Some(writes as i32),
                                ..upd(&item.id, version)
                            },
                        ))
                        .await
                    };
                    match reply.payload {
                        Some(Payload::WorkItemUpdated(u)) => {
                            version = u.work_item.expect("work_item").version;
                        }
                        Some(Payload::CommentCreated(_)) => {}
                        other => panic!("writer {i}: refused write: {other:?}"),
                    }
                    assert!(reply.seq > 0);
                    writes += 1;
                }
                WriterReport {
                    writes,
                    item_id: item.id,
                }
            }));
        } else {
            let http = server.http(Some(&user));
            writers.push(tokio::spawn(async move {
                let mut version = item.version;
                let mut writes = 0u64;
                while Instant::now() < stop_at {
                    if writes % 3 == 2 {
                        let r = http
                            .post(
                                &format!("/api/v1/work-items/{}/comments", item.id),
                                json!({"content": format!("rest comment {writes}")}),
                            )
                            .await;
                        assert_eq!(r.status, 200, "writer {i}: refused write: {r:?}");
                    } else {
                        let r = http
                            .put(
                                &format!("/api/v1/work-items/{}", item.id),
                                json!({
                                    "title": format!("rest {i} write {writes}"),
                                    "story_points": (writes % 100) as i32,
                                    "expected_version": version,
                                }),
                            )
                            .await;
                        assert_eq!(r.status, 200, "writer {i}: refused write: {r:?}");
                        version = n(&r.body["work_item"], "version") as i32;
                    }
                    writes += 1;
                }
                WriterReport {
                    writes,
                    item_id: item.id,
                }
            }));
        }
    }

    let mut reports = Vec::new();
    for w in writers {
        reports.push(
            tokio::time::timeout(run_for + TIMEOUT * 3, w)
                .await
                .expect("writer did not finish")
                .expect("writer failed"),
        );
    }
    let total: u64 = reports.iter().map(|r| r.writes).sum();
    assert!(
        reports.iter().all(|r| r.writes > 0),
        "every writer got writes through"
    );
    let (_, snap) = setup.work_items(&p.id).await;
    assert_eq!(snap.seq, base + total, "one event per accepted write");
    target.store(base + total, Ordering::SeqCst);

    let by_item: HashMap<&str, u64> = reports
        .iter()
        .map(|r| (r.item_id.as_str(), r.writes))
        .collect();
    for s in subscribers {
        let events = s.await.expect("subscriber failed");
        assert_eq!(events.len() as u64, total, "each event exactly once");
        let mut seqs = SeqTracker::starting_at(&p.id, base);
        let mut seen: HashMap<String, u64> = HashMap::new();
        for ev in &events {
            assert_event_envelope(ev, &epoch);
            assert_eq!(ev.stream, p.id);
            seqs.check(ev);
            let item = match &ev.payload {
                Some(Payload::WorkItemUpdated(u)) => u.work_item.as_ref().expect("item").id.clone(),
                Some(Payload::CommentCreated(c)) => {
                    c.comment.as_ref().expect("comment").work_item_id.clone()
                }
                other => panic!("unexpected event {other:?}"),
            };
            *seen.entry(item).or_default() += 1;
        }
        for (item, writes) in &by_item {
            assert_eq!(
                seen.get(*item).copied().unwrap_or(0),
                *writes,
                "events about item {item}"
            );
        }
    }
    eprintln!(
        "8 writers for {:?}: {total} writes, each delivered to 3 subscribers",
        run_for
    );
}

/// Sets the item's description (a large event when the text is long); its new version.
async fn set_description(writer: &mut WsClient, item_id: &str, version: i32, text: &str) -> i32 {
    let reply = writer
        .request(Payload::UpdateWorkItemRequest(
            proto::UpdateWorkItemRequest {
                description: Some(text.to_string()),
                ..upd(item_id, version)
            },
        ))
        .await;
    expect_payload!(reply, WorkItemUpdated)
        .work_item
        .expect("work_item")
        .version
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_does_not_delay_the_others_and_is_cut_off() {
    // A small per-connection queue, so the stalled client overflows quickly.
    let server = TestServer::start_with(|c| c.send_buffer = 16).await;
    let epoch = server.epoch();
    let mut writer = server.connect(USER_A).await;
    let p = writer.create_project("Slow", "SLOW").await;
    let item = writer
        .create_item(&p.id, WorkItemType::Task, "big", None)
        .await;

    // The stalled client: subscribed, a tiny socket receive buffer, and it never reads.
    let mut stalled = server.connect_small_buffer(USER_B, 4096).await;
    stalled.subscribe(&[&p.id]).await;

    let target = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for _ in 0..2 {
        let mut c = server.connect(USER_C).await;
        c.subscribe(&[&p.id]).await;
        readers.push(spawn_subscriber(c, target.clone(), Duration::from_secs(60)));
    }

    // Large events (each update carries two 10 000-character descriptions, and so does its
    // activity entry) fill the stalled client's socket and queue after a few dozen updates.
    let texts = ["a".repeat(10_000), "b".repeat(10_000)];
    let updates = 150u64;
    let mut version = item.version;
    for i in 0..updates {
        version = set_description(&mut writer, &item.id, version, &texts[(i % 2) as usize]).await;
    }
    let last = 1 + updates;
    target.store(last, Ordering::SeqCst);

    // The readers got everything, in order, without gaps.
    for r in readers {
        let events = r.await.expect("reader failed");
        assert_eq!(events.len() as u64, updates);
        let mut seqs = SeqTracker::starting_at(&p.id, 1);
        for ev in &events {
            assert_event_envelope(ev, &epoch);
            seqs.check(ev);
        }
    }

    // The stalled client now reads what it was given: an unbroken prefix of the stream, and
    // the notice that it was cut off.
    let mut got = Vec::new();
    let mut resync = None;
    for m in stalled.drain_events().await {
        match &m.payload {
            Some(Payload::ResyncRequired(r)) => resync = Some(r.clone()),
            Some(Payload::ActivityLogCreated(_)) => {}
            _ => got.push(m.seq),
        }
    }
    eprintln!(
        "stalled client received {} of {updates} events before the cut-off",
        got.len()
    );
    let resync = resync.expect("the stalled client must be told to resync");
    assert_eq!(resync.reason, "slow_consumer");
    assert_eq!(resync.stream, p.id);
    assert_eq!(resync.epoch, epoch);
    // And /metrics counts it: one connection cut off, one ResyncRequired sent.
    let metrics = server.http(Some(USER_A)).get("/metrics").await;
    let text = metrics.body.as_str().expect("the metrics text");
    assert!(
        text.contains("\npm_slow_consumers_cut_off_total 1\n"),
        "{text}"
    );
    assert!(text.contains("\npm_resyncs_total 1\n"), "{text}");
    assert!(
        (got.len() as u64) < updates,
        "the stalled client cannot have received everything ({} events)",
        got.len()
    );
    let expected: Vec<u64> = (2..2 + got.len() as u64).collect();
    assert_eq!(got, expected, "what it received has no gaps");

    // It is no longer subscribed: the next change does not reach it, but reaches others.
    let mut fresh = server.connect(USER_C).await;
    fresh.subscribe(&[&p.id]).await;
    writer
        .update_item(proto::UpdateWorkItemRequest {
            title: Some("after".into()),
            ..upd(&item.id, version)
        })
        .await;
    let mut seqs = SeqTracker::starting_at(&p.id, last);
    recv_mutation(&mut fresh, &mut seqs, &epoch).await;
    stalled.expect_no_event().await;
    // Its connection itself still works, and it can resubscribe.
    stalled.ping().await;
}

/// The hub writes an event itself to a connection with nothing waiting, and leaves the rest of
/// a frame the socket did not take to the connection's writer task (server/src/hub/socket.rs).
/// A subscriber that falls behind (a tiny receive buffer, not reading) while large events and
/// the answers to its own requests pile up, within its byte budget, then reads again, must find
/// every frame whole and everything in order: the events without a gap, each answer once and
/// after the events published before it was asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_falls_behind_and_reads_again_gets_every_frame_whole_and_in_order() {
    let server = TestServer::start().await;
    let epoch = server.epoch();
    let mut writer = server.connect(USER_A).await;
    let p = writer.create_project("Behind", "BHND").await;
    let item = writer
        .create_item(&p.id, WorkItemType::Task, "big", None)
        .await;
    let mut behind = server.connect_small_buffer(USER_B, 4096).await;
    behind.subscribe(&[&p.id]).await;

    // Each update carries two 10,000-character descriptions, and so does its activity entry:
    // more than the kernel buffers for the socket (4 MiB at most), so the socket stops taking
    // bytes part-way through a frame, and the rest queues (within the 8 MiB budget).
    let texts = ["a".repeat(10_000), "b".repeat(10_000)];
    let updates = 120u64;
    let mut version = item.version;
    let mut asked = Vec::new();
    for i in 0..updates {
        version = set_description(&mut writer, &item.id, version, &texts[(i % 2) as usize]).await;
        if i % 30 == 14 {
            // A request of its own while it does not read: its answer queues behind the events.
            let id = format!("behind-{i}");
            behind
                .send(&WebSocketMessage {
                    message_id: id.clone(),
                    payload: Some(Payload::GetRunningTimerRequest(
                        proto::GetRunningTimerRequest::default(),
                    )),
                    ..Default::default()
                })
                .await;
            asked.push((id, 1 + i + 1));
        }
    }

    // Reading again: every message decodes (a torn frame would not), in order.
    let mut seqs = SeqTracker::starting_at(&p.id, 1);
    let mut answered = Vec::new();
    let mut events = 0u64;
    let deadline = Instant::now() + Duration::from_secs(20);
    while events < updates || answered.len() < asked.len() {
        let Some(m) = behind.read_any(deadline).await else {
            panic!(
                "only {events} events and {} answers arrived",
                answered.len()
            );
        };
        if let Some((id, after_seq)) = asked.iter().find(|(id, _)| *id == m.message_id) {
            assert!(
                seqs.last[&p.id] >= *after_seq,
                "the answer to {id} came before event {after_seq}"
            );
            answered.push(id.clone());
            continue;
        }
        if matches!(m.payload, Some(Payload::ActivityLogCreated(_))) {
            continue;
        }
        assert_event_envelope(&m, &epoch);
        seqs.check(&m);
        events += 1;
    }
    let expected: Vec<String> = asked.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(answered, expected, "each answer once, in the order asked");
    assert_eq!(seqs.last[&p.id], 1 + updates);
    // Still subscribed (never cut off), and the connection is in order.
    behind.expect_no_event().await;
    behind.ping().await;
}
