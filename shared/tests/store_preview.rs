//! A project preview (the first cards of each lane, shown while a big snapshot loads) in the
//! client store: it shows cards but is no snapshot: the stream keeps waiting (its events are
//! held), the snapshot replaces whatever the preview showed, and a preview that comes late
//! changes nothing.
use pm_shared::proto::{self, Payload, WebSocketMessage};
use pm_shared::store::{ClientStore, Outcome};

const EPOCH: &str = "e1";
const PID: &str = "p1";

fn project() -> proto::Project {
    proto::Project {
        id: PID.into(),
        key: "PM".into(),
        version: 1,
        ..Default::default()
    }
}

fn item(id: &str, status: &str, version: i32) -> proto::WorkItem {
    proto::WorkItem {
        id: id.into(),
        project_id: PID.into(),
        status: status.into(),
        title: format!("{id} v{version}"),
        version,
        ..Default::default()
    }
}

fn preview(items: Vec<proto::WorkItem>) -> proto::ProjectSnapshot {
    proto::ProjectSnapshot {
        project: Some(project()),
        work_items: items,
        partial: true,
        lane_totals: vec![3, 0, 0, 0, 0],
        ..Default::default()
    }
}

fn snapshot(items: Vec<proto::WorkItem>) -> proto::ProjectSnapshot {
    proto::ProjectSnapshot {
        project: Some(project()),
        work_items: items,
        ..Default::default()
    }
}

fn updated(seq: u64, w: proto::WorkItem) -> WebSocketMessage {
    WebSocketMessage {
        message_id: format!("m{seq}"),
        payload: Some(Payload::WorkItemUpdated(proto::WorkItemUpdated {
            work_item: Some(w),
            user_id: "u".into(),
            ..Default::default()
        })),
        seq,
        epoch: EPOCH.into(),
        stream: PID.into(),
        ..Default::default()
    }
}

#[test]
fn a_preview_shows_cards_until_the_snapshot_replaces_them_and_events_wait_for_the_snapshot() {
    let mut s = ClientStore::new();
    assert!(s.preview_project(preview(vec![
        item("a", "backlog", 1),
        item("b", "backlog", 1)
    ])));
    assert_eq!(s.items_of(PID).count(), 2, "the preview's cards show");
    assert_eq!(s.cursor(PID), None, "a preview is no point to resume from");

    // Changes made meanwhile (after the snapshot's seq 5) wait for the snapshot.
    assert_eq!(s.apply(&updated(6, item("a", "done", 3))), Outcome::Held);

    // The snapshot (at seq 5): "b" was deleted before it, "c" is new, "a" is at version 2.
    let outcomes = s.load_project(
        snapshot(vec![item("a", "todo", 2), item("c", "backlog", 1)]),
        5,
        EPOCH,
    );
    assert!(
        matches!(outcomes.as_slice(), [Outcome::Applied(_)]),
        "{outcomes:?}"
    );
    let ids: Vec<&str> = s.items_of(PID).map(|w| w.id.as_str()).collect();
    assert_eq!(ids, ["a", "c"], "what the preview showed is replaced");
    let a = &s.work_items["a"];
    assert_eq!(
        (a.version, a.status.as_str()),
        (3, "done"),
        "the change made during the load is shown at its latest version"
    );
    assert_eq!(s.cursor(PID).map(|c| c.0), Some(6));

    // A preview answered after the snapshot is older than the store: nothing changes.
    let before = s.clone();
    assert!(!s.preview_project(preview(vec![
        item("a", "backlog", 1),
        item("b", "review", 1)
    ])));
    assert_eq!(s, before);
}

#[test]
fn a_preview_never_rolls_back_a_newer_card_and_one_without_a_project_is_ignored() {
    let mut s = ClientStore::new();
    assert!(s.preview_project(preview(vec![item("a", "review", 4)])));
    assert!(s.preview_project(preview(vec![item("a", "backlog", 1)])));
    assert_eq!(s.work_items["a"].version, 4);
    let revision = s.revision();
    assert!(!s.preview_project(proto::ProjectSnapshot {
        work_items: vec![item("x", "todo", 1)],
        partial: true,
        ..Default::default()
    }));
    assert!(!s.work_items.contains_key("x"));
    assert_eq!(s.revision(), revision);
}
