//! Resume: a client that was away gets exactly the events it missed, in order, then live ones;
//! a cursor the server cannot honour is answered with ResyncRequired; a restart on the same
//! database keeps the epoch and continues the seqs.

use std::time::Duration;

use crate::common::*;
use pm_shared::proto::{self, Payload, WebSocketMessage, WorkItemType};
use tokio::time::Instant;

fn cursor(stream: &str, last_seq: u64, epoch: &str) -> proto::ResumeCursor {
    proto::ResumeCursor {
        stream: stream.to_string(),
        last_seq,
        epoch: epoch.to_string(),
    }
}

fn resume(cursors: Vec<proto::ResumeCursor>) -> Payload {
    Payload::Subscribe(proto::Subscribe {
        cursors,
        ..Default::default()
    })
}

/// Renames `item` `n` times, returning its latest version.
async fn rename(a: &mut WsClient, item: &proto::WorkItem, version: i32, n: usize) -> i32 {
    let mut version = version;
    for i in 0..n {
        version = a
            .update_item(proto::UpdateWorkItemRequest {
                title: Some(format!("{} #{i}-{version}", item.title)),
                ..upd(&item.id, version)
            })
            .await
            .version;
    }
    version
}

/// The domain events (seq > 0) among `events`.
fn domain(events: Vec<WebSocketMessage>) -> Vec<WebSocketMessage> {
    events.into_iter().filter(|e| e.seq > 0).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnecting_client_gets_exactly_what_it_missed_then_live_events() {
    let server = TestServer::start().await;
    let epoch = server.epoch();
    let mut a = server.connect(USER_A).await;
    let p = a.create_project("Resume", "RES").await;
    let item = a
        .create_item(&p.id, WorkItemType::Story, "story", None)
        .await;

    // A witness that stays connected the whole time.
    let mut witness = server.connect(USER_C).await;
    witness.subscribe(&[&p.id]).await;

    // B loads a snapshot, subscribes, follows three changes, then goes away.
    let mut b = server.connect(USER_B).await;
    let (_, snap) = b.work_items(&p.id).await;
    assert_eq!((snap.seq, snap.epoch.as_str()), (1, epoch.as_str()));
    b.subscribe(&[&p.id]).await;
    let version = rename(&mut a, &item, item.version, 3).await;
    let mut seqs = SeqTracker::starting_at(&p.id, 1);
    for _ in 0..3 {
        recv_mutation(&mut b, &mut seqs, &epoch).await;
    }
    b.close().await;

    // Four changes of different kinds while B is away.
    rename(&mut a, &item, version, 1).await;
    a.create_comment(&item.id, "while you were out").await;
    a.create_sprint(&p.id, "sprint").await;
    a.create_item(&p.id, WorkItemType::Task, "task", Some(&item.id))
        .await;
    let mut missed = Vec::new();
    let mut wseqs = SeqTracker::starting_at(&p.id, 1);
    for _ in 0..7 {
        let (_, ev) = recv_mutation(&mut witness, &mut wseqs, &epoch).await;
        if ev.seq > 4 {
            missed.push(ev);
        }
    }

    // B comes back with its cursor: the replay precedes the (payload-less) reply.
    let mut b = server.connect(USER_B).await;
    let (events, reply) = b
        .request_collect(resume(vec![cursor(&p.id, 4, &epoch)]))
        .await;
    assert!(reply.payload.is_none(), "Subscribe reply: {reply:?}");
    assert_eq!(
        events, missed,
        "the replay is exactly the missed events, byte for byte as first delivered"
    );
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![5, 6, 7, 8]
    );

    // Then live, continuing the same numbering, with no duplicate.
    a.create_comment(&item.id, "welcome back").await;
    let mut seqs = SeqTracker::starting_at(&p.id, 8);
    let (_, ev) = recv_mutation(&mut b, &mut seqs, &epoch).await;
    expect_payload!(ev, CommentCreated);
    b.expect_no_event().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_streams_resume_in_one_subscribe() {
    let server = TestServer::start().await;
    let epoch = server.epoch();
    let mut a = server.connect(USER_A).await;
    let p = a.create_project("One", "ONE").await;
    let q = a.create_project("Two", "TWO").await;
    a.create_item(&p.id, WorkItemType::Epic, "p1", None).await;
    a.create_item(&q.id, WorkItemType::Epic, "q1", None).await;
    // Cursors: workspace at 1 (knows project One), P at 1, Q at 0.
    let mut b = server.connect(USER_B).await;
    let (events, reply) = b
        .request_collect(resume(vec![
            cursor("", 1, &epoch),
            cursor(&p.id, 1, &epoch),
            cursor(&q.id, 0, &epoch),
        ]))
        .await;
    assert!(reply.payload.is_none());
    let got: Vec<(String, u64)> = events.iter().map(|e| (e.stream.clone(), e.seq)).collect();
    assert_eq!(got, vec![(String::new(), 2), (q.id.clone(), 1)]);
    let created = expect_payload!(events[0], ProjectCreated);
    assert_eq!(created.project.expect("project").id, q.id);

    // All three streams are live now.
    let mut seqs = SeqTracker::default();
    seqs.last.insert(String::new(), 2);
    seqs.last.insert(p.id.clone(), 1);
    seqs.last.insert(q.id.clone(), 1);
    a.create_item(&p.id, WorkItemType::Epic, "p2", None).await;
    a.create_item(&q.id, WorkItemType::Epic, "q2", None).await;
    a.create_project("Three", "THREE").await;
    for stream in [p.id.as_str(), q.id.as_str(), ""] {
        let (_, ev) = recv_mutation(&mut b, &mut seqs, &epoch).await;
        assert_eq!(ev.stream, stream);
    }
    b.expect_no_event().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_at_the_head_replays_nothing_and_goes_live() {
    let server = TestServer::start().await;
    let epoch = server.epoch();
    let mut a = server.connect(USER_A).await;
    let p = a.create_project("Head", "HEAD").await;
    let item = a.create_item(&p.id, WorkItemType::Task, "t", None).await;
    let mut b = server.connect(USER_B).await;
    let (events, reply) = b
        .request_collect(resume(vec![cursor(&p.id, 1, &epoch)]))
        .await;
    assert!(events.is_empty(), "{events:?}");
    assert!(reply.payload.is_none());
    rename(&mut a, &item, item.version, 1).await;
    let mut seqs = SeqTracker::starting_at(&p.id, 1);
    recv_mutation(&mut b, &mut seqs, &epoch).await;
    b.expect_no_event().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_epoch_or_a_seq_from_the_future_requires_resync() {
    let server = TestServer::start().await;
    let epoch = server.epoch();
    let mut a = server.connect(USER_A).await;
    let p = a.create_project("Epochs", "EPO").await;
    let item = a.create_item(&p.id, WorkItemType::Task, "t", None).await;
    let version = rename(&mut a, &item, item.version, 2).await;

    let other_epoch = uuid::Uuid::new_v4().to_string();
    let cases = [
        ("another epoch", cursor(&p.id, 2, &other_epoch)),
        ("no epoch", cursor(&p.id, 0, "")),
        ("a seq ahead of the server", cursor(&p.id, 9, &epoch)),
        (
            "the workspace stream, another epoch",
            cursor("", 1, &other_epoch),
        ),
    ];
    let mut version = version;
    // The project stream's head: the create and two renames so far.
    let mut head = 3;
    for (what, c) in cases {
        let stream = c.stream.clone();
        let mut b = server.connect(USER_B).await;
        let (events, reply) = b.request_collect(resume(vec![c])).await;
        assert!(reply.payload.is_none(), "{what}: {reply:?}");
        assert_eq!(events.len(), 1, "{what}: {events:?}");
        let resync = expect_payload!(events[0], ResyncRequired);
        assert_eq!(resync.reason, "epoch_changed", "{what}");
        assert_eq!(resync.stream, stream, "{what}");
        assert_eq!(resync.epoch, epoch, "{what}");
        let current = if stream.is_empty() { 1 } else { head };
        assert_eq!(resync.current_seq, current, "{what}");
        assert!(events[0].message_id != reply.message_id);

        // It was not subscribed: nothing live arrives.
        version = rename(&mut a, &item, version, 1).await;
        head += 1;
        b.expect_no_event().await;

        // After reloading, a correct cursor works.
        let (_, snap) = if stream.is_empty() {
            b.list_projects().await
        } else {
            let (items, snap) = b.work_items(&p.id).await;
            (Vec::new(), {
                assert_eq!(items.len(), 1);
                snap
            })
        };
        let (events, _) = b
            .request_collect(resume(vec![cursor(&stream, snap.seq, &snap.epoch)]))
            .await;
        assert!(events.is_empty(), "{what}: {events:?}");
        if !stream.is_empty() {
            version = rename(&mut a, &item, version, 1).await;
            head += 1;
            let mut seqs = SeqTracker::starting_at(&p.id, snap.seq);
            recv_mutation(&mut b, &mut seqs, &epoch).await;
        }
        b.expect_no_event().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_during_a_stream_of_writes_has_no_gap_and_no_duplicate() {
    let server = TestServer::start().await;
    let epoch = server.epoch();
    let mut a = server.connect(USER_A).await;
    let p = a.create_project("Busy", "BUSY").await;
    let item = a.create_item(&p.id, WorkItemType::Task, "t", None).await;

    let writes = 300usize;
    let writer = tokio::spawn(async move {
        rename(&mut a, &item, item.version, writes).await;
    });
    let last = 1 + writes as u64;

    // Several clients join mid-stream, each from a snapshot and a cursor.
    let mut joined = Vec::new();
    for i in 0..4 {
        tokio::time::sleep(Duration::from_millis(40 * i)).await;
        let mut b = server.connect(USER_B).await;
        let (_, snap) = b.work_items(&p.id).await;
        let (events, reply) = b
            .request_collect(resume(vec![cursor(&p.id, snap.seq, &snap.epoch)]))
            .await;
        assert!(reply.payload.is_none());
        joined.push((b, snap.seq, events));
    }
    tokio::time::timeout(TIMEOUT * 3, writer)
        .await
        .expect("writer finished")
        .expect("writer ok");

    for (mut b, from, early) in joined {
        let mut seqs = SeqTracker::starting_at(&p.id, from);
        for ev in domain(early) {
            assert_event_envelope(&ev, &epoch);
            seqs.check(&ev);
        }
        let deadline = Instant::now() + TIMEOUT * 3;
        while seqs.last.get(&p.id).copied().unwrap_or(0) < last {
            assert!(Instant::now() < deadline, "stuck at {:?}", seqs.last);
            let ev = b.next_event(TIMEOUT).await;
            if ev.seq > 0 {
                assert_event_envelope(&ev, &epoch);
                seqs.check(&ev);
            }
        }
        // Drain trailing frames: only the last mutation's activity entry may remain.
        for ev in b.drain_events().await {
            assert_eq!(ev.seq, 0, "duplicate or extra event {ev:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_on_the_same_database_keeps_the_epoch_and_continues_the_seqs() {
    let server = TestServer::start().await;
    let epoch = server.epoch();
    let mut a = server.connect(USER_A).await;
    let p = a.create_project("Durable", "DUR").await;
    let epic = a.create_item(&p.id, WorkItemType::Epic, "e", None).await;
    a.create_item(&p.id, WorkItemType::Story, "s", Some(&epic.id))
        .await;
    a.create_sprint(&p.id, "sp").await;
    let (items_before, snap_before) = a.work_items(&p.id).await;
    assert_eq!(snap_before.seq, 3);
    a.close().await;
    let dir = server.stop().await;

    let server = TestServer::start_in(dir, |_| {}).await;
    assert_eq!(server.epoch(), epoch, "same database, same epoch");
    let mut b = server.connect(USER_B).await;
    let (items, snap) = b.work_items(&p.id).await;
    assert_eq!(items, items_before);
    assert_eq!((snap.seq, snap.epoch.as_str()), (3, epoch.as_str()));
    let (projects, list) = b.list_projects().await;
    assert_eq!(projects.len(), 1);
    assert_eq!((list.seq, list.epoch.as_str()), (1, epoch.as_str()));

    // An old cursor still resumes from the stored events, then live events continue the seqs.
    let (events, _) = b
        .request_collect(resume(vec![cursor(&p.id, 1, &epoch)]))
        .await;
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2, 3]);
    let mut a = server.connect(USER_A).await;
    let item = a
        .create_item(&p.id, WorkItemType::Task, "after restart", None)
        .await;
    assert_eq!(item.item_number, 3, "item numbers continue too");
    let mut seqs = SeqTracker::starting_at(&p.id, 3);
    seqs.last.insert(String::new(), 1);
    recv_mutation(&mut b, &mut seqs, &epoch).await;
    a.create_project("Second", "SECOND").await;
    let (_, ev) = recv_mutation(&mut b, &mut seqs, &epoch).await;
    assert_eq!((ev.stream.as_str(), ev.seq), ("", 2));
    b.expect_no_event().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_and_resuming_one_stream_in_one_request_has_no_duplicates() {
    let server = TestServer::start().await;
    let epoch = server.epoch();
    let mut a = server.connect(USER_A).await;
    let p = a.create_project("Both", "BOTH").await;
    let item = a.create_item(&p.id, WorkItemType::Task, "t", None).await;
    let writes = 200usize;
    let writer = tokio::spawn(async move {
        rename(&mut a, &item, item.version, writes).await;
    });
    let last = 1 + writes as u64;

    // Clients that name the project both in project_ids (and project_list) and in a cursor,
    // while writes go on: the stream continues from the cursor, once, in order.
    let mut joined = Vec::new();
    for i in 0..6 {
        tokio::time::sleep(Duration::from_millis(25 * i)).await;
        let mut b = server.connect(USER_B).await;
        let (_, snap) = b.work_items(&p.id).await;
        let (events, reply) = b
            .request_collect(Payload::Subscribe(proto::Subscribe {
                project_ids: vec![p.id.to_uppercase()],
                project_list: true,
                cursors: vec![cursor(&p.id, snap.seq, &snap.epoch), cursor("", 1, &epoch)],
                ..Default::default()
            }))
            .await;
        assert!(reply.payload.is_none());
        joined.push((b, snap.seq, events));
    }
    tokio::time::timeout(TIMEOUT * 3, writer)
        .await
        .expect("writer finished")
        .expect("writer ok");
    for (mut b, from, early) in joined {
        let mut seqs = SeqTracker::starting_at(&p.id, from);
        seqs.last.insert(String::new(), 1);
        for ev in domain(early) {
            seqs.check(&ev);
        }
        while seqs.last.get(&p.id).copied().unwrap_or(0) < last {
            let ev = b.next_event(TIMEOUT).await;
            if ev.seq > 0 {
                seqs.check(&ev);
            }
        }
        for ev in b.drain_events().await {
            assert_eq!(ev.seq, 0, "duplicate or extra event {ev:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribe_with_a_bad_cursor_subscribes_nothing() {
    let server = TestServer::start().await;
    let epoch = server.epoch();
    let mut a = server.connect(USER_A).await;
    let p = a.create_project("Bad", "BADCUR").await;
    let mut b = server.connect(USER_B).await;
    let reply = b
        .request(Payload::Subscribe(proto::Subscribe {
            project_ids: vec![p.id.clone()],
            project_list: true,
            cursors: vec![cursor("not-a-uuid", 0, &epoch)],
            ..Default::default()
        }))
        .await;
    let err = expect_error(&reply, "VALIDATION_ERROR");
    assert_eq!(err.field.as_deref(), Some("cursors.stream"));
    a.create_item(&p.id, WorkItemType::Task, "t", None).await;
    a.create_project("Another", "ANOTHER").await;
    b.expect_no_event().await;
}

/// A resume's hand-over to live delivery needs no lock of the store: while the store's writer
/// is held (as by a long group of writes), a client resumes a history of several chunks from
/// an old cursor and gets its whole replay and its Subscribe answer. Once the writer is let
/// go, the next write reaches it live, exactly once. (When every hand-over took the writer,
/// this resume waited for it: a reconnect storm queued in front of every write.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_goes_live_while_the_store_writer_is_held() {
    let server = TestServer::start().await;
    let epoch = server.epoch();
    let mut a = server.connect(USER_A).await;
    let p = a.create_project("Handover", "HND").await;
    let item = a.create_item(&p.id, WorkItemType::Task, "task", None).await;
    // More than one replay chunk (256 events) after the cursor.
    let version = rename(&mut a, &item, item.version, 300).await;
    let head = 1 + 300;
    let mut b = server.connect(USER_B).await;

    let writer = server.state.writer.pause().await;
    let msg = WebSocketMessage {
        message_id: "resume".into(),
        payload: Some(resume(vec![cursor(&p.id, 1, &epoch)])),
        ..Default::default()
    };
    b.send(&msg).await;
    let reply = b.await_response("resume").await;
    assert!(reply.payload.is_none(), "{reply:?}");
    let replayed = domain(b.take_events());
    let mut seqs = SeqTracker::starting_at(&p.id, 1);
    for e in &replayed {
        seqs.check(e);
    }
    assert_eq!(
        seqs.last[&p.id], head,
        "the whole replay, with the writer held"
    );
    drop(writer);

    // Live from here: the next write arrives once, right after the replay's last event.
    rename(&mut a, &item, version, 1).await;
    let (_, event) = recv_mutation(&mut b, &mut seqs, &epoch).await;
    assert_eq!(event.seq, head + 1);
    b.expect_no_event().await;
}
