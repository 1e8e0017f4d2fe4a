//! Pipelined writes: a client may send many writes without waiting for each answer. They are
//! applied in the order sent, committed together (one transaction for the lot, each command
//! succeeding or failing alone), answered in order, and a read sent after them sees them.

use crate::common::*;
use pm_shared::proto::{self, Payload, WebSocketMessage, WorkItemType};

fn envelope(id: &str, payload: Payload) -> WebSocketMessage {
    WebSocketMessage {
        message_id: id.to_string(),
        payload: Some(payload),
        ..Default::default()
    }
}

fn retitle(item: &proto::WorkItem, version: i32, title: &str) -> Payload {
    Payload::UpdateWorkItemRequest(proto::UpdateWorkItemRequest {
        work_item_id: item.id.clone(),
        expected_version: version,
        title: Some(title.into()),
        ..Default::default()
    })
}

/// Waits until `count` writes wait in the (paused) writer's queue: they can only all be there
/// at once if the connection did not wait for each answer.
async fn await_queued(server: &TestServer, count: usize) {
    let mut waited = 0;
    while server.state.writer.waiting() < count {
        waited += 1;
        assert!(
            waited < 500,
            "only {} of {count} writes queued: the connection is not pipelining",
            server.state.writer.waiting(),
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// The seqs of the next `count` numbered events `observer` receives (activity frames skipped).
async fn numbered_events(observer: &mut WsClient, count: usize) -> Vec<u64> {
    let mut seqs = Vec::with_capacity(count);
    while seqs.len() < count {
        let event = observer.next_event(TIMEOUT).await;
        if event.seq > 0 {
            seqs.push(event.seq);
        }
    }
    seqs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_writes_commit_together_in_order_and_a_later_read_sees_them() {
    let server = TestServer::start().await;
    let mut setup = server.connect(USER_A).await;
    let project = setup.create_project("Pipeline", "PIPE").await;
    let item = setup
        .create_item(&project.id, WorkItemType::Task, "base", None)
        .await;
    let mut observer = server.connect(USER_B).await;
    observer.subscribe(&[&project.id]).await;
    let (groups_before, commands_before) = server.state.writer.totals();

    // The requests, sent back to back. Some must fail, each on its own.
    let mut requests: Vec<(String, Payload, bool)> = Vec::new();
    for n in 0..30 {
        let payload = match n {
            // A conflict: the item is at version 1 until request 20 renames it.
            7 => retitle(&item, 5, "stale"),
            // An invalid create (empty title).
            13 => create_item_req(&project.id, WorkItemType::Task, "  ", None),
            // A create in a project that does not exist.
            17 => create_item_req(
                &uuid::Uuid::new_v4().to_string(),
                WorkItemType::Task,
                "nowhere",
                None,
            ),
            20 => retitle(&item, 1, "renamed"),
            // Depends on request 20 having been applied first.
            21 => retitle(&item, 2, "renamed twice"),
            n => create_item_req(&project.id, WorkItemType::Task, &format!("p{n}"), None),
        };
        let ok = !matches!(n, 7 | 13 | 17);
        requests.push((format!("pipe-{n}"), payload, ok));
    }

    // Hold the writer while sending, so the writes can only queue: all 30 must be waiting at
    // once, which they can only be if the connection did not wait for each answer.
    let writer = server.state.writer.pause().await;
    let mut client = server.connect(USER_A).await;
    for (id, payload, _) in &requests {
        client.send(&envelope(id, payload.clone())).await;
    }
    let read_id = "pipe-read";
    client
        .send(&envelope(
            read_id,
            Payload::GetWorkItemsRequest(proto::GetWorkItemsRequest {
                project_id: project.id.clone(),
                since_timestamp: None,
            }),
        ))
        .await;
    await_queued(&server, requests.len()).await;
    drop(writer);

    // Answers arrive in the order sent, each success with the next seq of the stream.
    let mut expected_seq = 2; // the project stream: creating "base" was seq 1
    let mut answers = Vec::new();
    for (id, _, ok) in &requests {
        let answer = client.await_response(id).await;
        if *ok {
            assert_eq!(answer.seq, expected_seq, "{id}: {:?}", answer.payload);
            expected_seq += 1;
        } else {
            expect_payload!(answer, Error);
        }
        answers.push(answer);
    }
    // Responses never overtake each other: every frame before the last answer was either an
    // earlier answer or an event.
    let order: Vec<usize> = answers
        .iter()
        .map(|a| {
            requests
                .iter()
                .position(|(id, _, _)| *id == a.message_id)
                .unwrap()
        })
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    let renamed = expect_payload!(answers[21], WorkItemUpdated)
        .work_item
        .expect("item");
    assert_eq!(
        (renamed.title.as_str(), renamed.version),
        ("renamed twice", 3)
    );

    // The read was sent after the writes: it sees all of them.
    let read = client.await_response(read_id).await;
    let list = expect_payload!(read, WorkItemsList);
    assert_eq!(read.seq, expected_seq - 1);
    let creates = requests
        .iter()
        .filter(|(_, p, ok)| *ok && matches!(p, Payload::CreateWorkItemRequest(_)))
        .count();
    assert_eq!(list.work_items.len(), creates + 1);

    // They were committed in a few transactions, not one each.
    let (groups, commands) = server.state.writer.totals();
    assert_eq!(commands - commands_before, requests.len() as u64);
    assert!(
        groups - groups_before <= 2,
        "{} transactions for {} pipelined writes",
        groups - groups_before,
        requests.len()
    );

    // The observer got every committed event once, in seq order.
    let seqs = numbered_events(&mut observer, (expected_seq - 2) as usize).await;
    assert_eq!(seqs, (2..expected_seq).collect::<Vec<_>>());
    observer.expect_no_event().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_mid_pipeline_leaves_no_half_applied_write() {
    let server = TestServer::start().await;
    let mut setup = server.connect(USER_A).await;
    let project = setup.create_project("Gone", "GONE").await;
    let writer = server.state.writer.pause().await;
    let mut client = server.connect(USER_A).await;
    for n in 0..20 {
        client
            .send(&envelope(
                &format!("gone-{n}"),
                create_item_req(&project.id, WorkItemType::Task, &format!("g{n}"), None),
            ))
            .await;
    }
    let mut waited = 0;
    while server.state.writer.waiting() < 20 {
        waited += 1;
        assert!(
            waited < 500,
            "writes never queued ({} waiting)",
            server.state.writer.waiting()
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    client.close().await;
    drop(writer);
    // Queued writes of a client that left still run to the end (others may depend on their
    // order): all 20 are there, each exactly once, and the server still answers. A write
    // queued after them is applied after them.
    setup
        .create_item(&project.id, WorkItemType::Task, "g20", None)
        .await;
    let (items, _) = setup.work_items(&project.id).await;
    let mut titles: Vec<String> = items.into_iter().map(|i| i.title).collect();
    titles.sort();
    let mut expected: Vec<String> = (0..=20).map(|n| format!("g{n}")).collect();
    expected.sort();
    assert_eq!(titles, expected);
}

/// Updates that wait for one shared round trip (`writer::write_behind`): several updates of one
/// item in a row (each must read what the one before leaves), updates of other items between
/// them, two that make the same new user an assignee, and a stale one, all in one group. On
/// PostgreSQL a chunk of them is one statement whose writes cannot see each other, so this is
/// where a chunk that held two updates of one item would lose one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_updates_of_the_same_items_in_one_group_all_land_in_order() {
    let server = TestServer::start().await;
    let mut setup = server.connect(USER_A).await;
    let project = setup.create_project("Behind", "BEH").await;
    let mut items = Vec::new();
    for n in 0..3 {
        items.push(
            setup
                .create_item(&project.id, WorkItemType::Task, &format!("item {n}"), None)
                .await,
        );
    }
    let mut observer = server.connect(USER_B).await;
    observer.subscribe(&[&project.id]).await;
    let newcomer = uuid::Uuid::new_v4().to_string();

    // (item, version expected, title, assignee, succeeds)
    let mut versions = [1, 1, 1];
    let mut requests: Vec<(String, Payload, bool)> = Vec::new();
    for n in 0..24 {
        let i = [0, 0, 1, 0, 2, 2, 1, 0][n % 8];
        let stale = n == 11;
        let assignee = matches!(n, 5 | 6).then(|| newcomer.clone());
        let payload = Payload::UpdateWorkItemRequest(proto::UpdateWorkItemRequest {
            work_item_id: items[i].id.clone(),
            expected_version: if stale { 1 } else { versions[i] },
            title: Some(format!("t{n}")),
            assignee_id: assignee,
            // Only some set the status: an update written together with a later one of the
            // same item keeps what the later one does not change.
            status: (n % 4 == 0).then(|| ["todo", "in_progress", "done"][n % 3].into()),
            ..Default::default()
        });
        if !stale {
            versions[i] += 1;
        }
        requests.push((format!("behind-{n}"), payload, !stale));
    }

    let writer = server.state.writer.pause().await;
    let mut client = server.connect(USER_A).await;
    for (id, payload, _) in &requests {
        client.send(&envelope(id, payload.clone())).await;
    }
    await_queued(&server, requests.len()).await;
    drop(writer);

    let mut expected_seq = 4; // the project stream: three creates were seqs 1..=3
    for (id, _, ok) in &requests {
        let answer = client.await_response(id).await;
        if *ok {
            assert_eq!(answer.seq, expected_seq, "{id}: {:?}", answer.payload);
            expected_seq += 1;
        } else {
            let error = expect_payload!(answer, Error);
            assert_eq!(error.code, "CONFLICT", "{id}: {error:?}");
        }
    }

    // The database holds each item as its last update left it, at the version counted here.
    let (list, _) = setup.work_items(&project.id).await;
    for (i, item) in items.iter().enumerate() {
        let stored = list
            .iter()
            .find(|w| w.id == item.id)
            .expect("the item is still there");
        assert_eq!(stored.version, versions[i], "item {i}: {stored:?}");
        let last = requests
            .iter()
            .rposition(|(_, p, ok)| {
                *ok && matches!(p, Payload::UpdateWorkItemRequest(u) if u.work_item_id == item.id)
            })
            .expect("updated");
        assert_eq!(stored.title, format!("t{last}"), "item {i}");
        let status = requests
            .iter()
            .rev()
            .filter(|(_, _, ok)| *ok)
            .find_map(|(_, p, _)| match p {
                Payload::UpdateWorkItemRequest(u) if u.work_item_id == item.id => u.status.clone(),
                _ => None,
            })
            .unwrap_or_else(|| "backlog".to_string());
        assert_eq!(stored.status, status, "item {i}");
    }
    let assigned: Vec<_> = list
        .iter()
        .filter(|w| w.assignee_id.as_deref() == Some(newcomer.as_str()))
        .collect();
    assert_eq!(assigned.len(), 2, "both assignments landed: {list:?}");

    // Every committed update reached the observer once, in seq order; the stream's counter is
    // where the last one left it, so the next write takes the next seq.
    let seqs = numbered_events(&mut observer, (expected_seq - 4) as usize).await;
    assert_eq!(seqs, (4..expected_seq).collect::<Vec<_>>());
    let next = setup
        .create_item(&project.id, WorkItemType::Task, "after", None)
        .await;
    let event = observer.next_event(TIMEOUT).await;
    let event = if event.seq == 0 {
        observer.next_event(TIMEOUT).await
    } else {
        event
    };
    assert_eq!(event.seq, expected_seq, "{next:?}");
}
