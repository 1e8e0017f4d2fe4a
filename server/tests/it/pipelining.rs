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
    let mut waited = 0;
    while server.state.writer.waiting() < requests.len() {
        waited += 1;
        assert!(
            waited < 500,
            "only {} of {} writes queued: the connection is not pipelining",
            server.state.writer.waiting(),
            requests.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
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
    let mut seqs = Vec::new();
    while seqs.len() < (expected_seq - 2) as usize {
        let event = observer.next_event(TIMEOUT).await;
        if event.seq > 0 {
            seqs.push(event.seq);
        }
    }
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
