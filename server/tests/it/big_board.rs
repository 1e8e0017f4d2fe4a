//! Opening a big board: the project preview (`GetProjectSnapshotRequest.first_per_lane`) and a
//! replica that draws from it while the whole snapshot loads, then converges with whatever
//! changed meanwhile.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use pm_client::replica::Replica;
use pm_client::sdk::{self, SessionConfig};
use pm_shared::domain::Status;
use pm_shared::proto::{self, Payload};
use tokio::sync::mpsc;

const WRITER: &str = "00000000-0000-4000-8000-00000000b1b0";

/// What a replica had when it first showed a preview: its cards, and the lanes' real counts.
type Previewed = Option<(usize, Vec<u32>)>;

fn create_in(project: &str, title: &str, status: Status) -> Payload {
    Payload::CreateWorkItemRequest(proto::CreateWorkItemRequest {
        item_type: proto::WorkItemType::Task as i32,
        title: title.to_string(),
        project_id: project.to_string(),
        status: Some(status.to_string()),
        ..Default::default()
    })
}

fn snapshot_req(project: &str, first_per_lane: u32) -> Payload {
    Payload::GetProjectSnapshotRequest(proto::GetProjectSnapshotRequest {
        project_id: project.to_string(),
        first_per_lane,
    })
}

fn lane_of(w: &proto::WorkItem) -> usize {
    Status::ALL
        .iter()
        .position(|s| s.as_str() == w.status)
        .expect("a known status")
}

#[tokio::test]
async fn a_preview_holds_the_first_cards_of_each_lane_and_every_lanes_count() {
    let server = TestServer::start().await;
    let mut ws = server.connect(WRITER).await;
    let project = ws.create_project("Big", "BIG").await;
    let mut items = Vec::new();
    for i in 0..13 {
        let status = Status::ALL[i % 3];
        let reply = ws
            .request(create_in(&project.id, &format!("card {i}"), status))
            .await;
        items.push(
            expect_payload!(reply, WorkItemCreated)
                .work_item
                .expect("item"),
        );
    }
    // The last backlog card goes to the top of its lane: board order is not creation order.
    let last = items
        .iter()
        .rev()
        .find(|w| w.status == "backlog")
        .expect("a backlog card")
        .clone();
    ws.update_item(proto::UpdateWorkItemRequest {
        position: Some(0),
        ..upd(&last.id, last.version)
    })
    .await;

    let full = ws.request(snapshot_req(&project.id, 0)).await;
    assert!(full.seq > 0, "a whole snapshot has its seq");
    let full = expect_payload!(full, ProjectSnapshot);
    assert!(
        !full.partial && full.lane_totals.is_empty(),
        "a whole snapshot"
    );
    let mut lanes: Vec<Vec<&proto::WorkItem>> = vec![Vec::new(); Status::ALL.len()];
    for w in &full.work_items {
        lanes[lane_of(w)].push(w);
    }
    for lane in &mut lanes {
        lane.sort_by_key(|w| (w.position, w.item_number));
    }
    assert_eq!(lanes[0][0].id, last.id, "the moved card leads its lane");

    let reply = ws.request(snapshot_req(&project.id, 2)).await;
    assert_eq!(reply.seq, 0, "a preview is no point to resume from");
    let preview = expect_payload!(reply, ProjectSnapshot);
    assert!(preview.partial);
    let counts: Vec<u32> = lanes.iter().map(|l| l.len() as u32).collect();
    assert_eq!(preview.lane_totals, counts);
    assert_eq!(counts, vec![5, 4, 4, 0, 0]);
    for (i, lane) in lanes.iter().enumerate() {
        let mut expected: Vec<&str> = lane.iter().take(2).map(|w| w.id.as_str()).collect();
        let mut got: Vec<&str> = preview
            .work_items
            .iter()
            .filter(|w| lane_of(w) == i)
            .map(|w| w.id.as_str())
            .collect();
        expected.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, expected, "lane {i}: its first two cards");
    }
    assert_eq!(preview.project.as_ref().map(|p| &p.id), Some(&project.id));
    assert!(preview.users.iter().any(|u| u.id == WRITER));
    assert!(preview.comments.is_empty() && preview.dependencies.is_empty());

    // More than there is: everything (the cap is far above 13).
    let reply = ws.request(snapshot_req(&project.id, u32::MAX)).await;
    assert_eq!(expect_payload!(reply, ProjectSnapshot).work_items.len(), 13);

    // Wrong ids are answered like a snapshot's.
    let unknown = uuid::Uuid::new_v4().to_string();
    expect_error(&ws.request(snapshot_req(&unknown, 5)).await, "NOT_FOUND");
    let reply = ws.request(snapshot_req("not-an-id", 5)).await;
    assert!(
        matches!(reply.payload, Some(Payload::Error(_))),
        "{reply:?}"
    );
}

#[tokio::test]
async fn a_replica_draws_a_preview_then_converges_with_changes_made_during_the_load() {
    let server = TestServer::start().await;
    let mut ws = server.connect(WRITER).await;
    let project = ws.create_project("Big", "BIG").await;
    // 600 cards: 120 a lane, more than a preview's 100.
    let mut first = None;
    for i in 0..600 {
        let status = Status::ALL[i % Status::ALL.len()];
        let reply = ws
            .request(create_in(&project.id, &format!("card {i}"), status))
            .await;
        let w = expect_payload!(reply, WorkItemCreated)
            .work_item
            .expect("item");
        first.get_or_insert(w);
    }
    let mut changed = first.expect("an item");

    // The board's replica, as the board drives it (snapshots moved, not copied); what it had
    // when it first showed a preview is kept.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let config = SessionConfig::new(format!("http://{}", server.addr), WRITER);
    let handle = sdk::spawn(config, move |e| {
        let _ = tx.send(e);
    });
    let replica = Arc::new(Mutex::new(Replica::new(Some(project.id.clone()))));
    let previewed: Arc<Mutex<Previewed>> = Arc::default();
    let (h, r, seen, pid) = (
        handle.clone(),
        replica.clone(),
        previewed.clone(),
        project.id.clone(),
    );
    tokio::spawn(async move {
        while let Some(mut e) = rx.recv().await {
            let mut r = r.lock().expect("replica");
            r.take_net(&h, &mut e);
            if let Some(totals) = r.preview_totals() {
                let shown = r.store.items_of(&pid).count();
                seen.lock()
                    .expect("seen")
                    .get_or_insert((shown, totals.to_vec()));
            }
        }
    });

    // Meanwhile: one card changes again and again, and new cards come.
    for status in [Status::Todo, Status::Review, Status::Done] {
        changed = ws
            .update_item(proto::UpdateWorkItemRequest {
                status: Some(status.to_string()),
                ..upd(&changed.id, changed.version)
            })
            .await;
    }
    for i in 0..3 {
        ws.request(create_in(
            &project.id,
            &format!("late {i}"),
            Status::Backlog,
        ))
        .await;
    }

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        {
            let r = replica.lock().expect("replica");
            let done = r.is_synced()
                && r.store.items_of(&project.id).count() == 603
                && r.store.work_items.get(&changed.id).map(|w| w.version) == Some(changed.version);
            if done {
                assert!(r.preview_totals().is_none(), "the preview is over");
                assert_eq!(r.store.work_items[&changed.id].status, "done");
                break;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the replica did not converge"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (shown, totals) = previewed
        .lock()
        .expect("seen")
        .clone()
        .expect("a preview was shown before the snapshot loaded");
    assert!(
        shown <= 500,
        "a preview of at most 100 cards a lane: {shown}"
    );
    assert!(totals.iter().sum::<u32>() >= 600, "{totals:?}");
    handle.close();
}
