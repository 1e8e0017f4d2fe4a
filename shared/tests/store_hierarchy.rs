//! The client store's hierarchy lists (ancestor_ids / descendant_ids) after events: an update
//! that keeps the parent keeps the stored lists instead of recomputing every item's; whatever
//! the event, every item's lists equal a computation from scratch.
use pm_shared::hierarchy;
use pm_shared::proto::{self, Payload, WebSocketMessage};
use pm_shared::store::{ClientStore, Outcome};

const EPOCH: &str = "e1";
const PID: &str = "p1";

fn item(id: &str, parent: Option<&str>, version: i32) -> proto::WorkItem {
    proto::WorkItem {
        id: id.into(),
        project_id: PID.into(),
        parent_id: parent.map(str::to_string),
        status: "todo".into(),
        version,
        ..Default::default()
    }
}

fn event(seq: u64, payload: Payload) -> WebSocketMessage {
    WebSocketMessage {
        message_id: format!("m{seq}"),
        payload: Some(payload),
        seq,
        epoch: EPOCH.into(),
        stream: PID.into(),
        ..Default::default()
    }
}

fn updated(seq: u64, w: proto::WorkItem) -> WebSocketMessage {
    event(
        seq,
        Payload::WorkItemUpdated(proto::WorkItemUpdated {
            work_item: Some(w),
            user_id: "u".into(),
            ..Default::default()
        }),
    )
}

/// An item's id, ancestors and descendants.
type Lists = (String, Vec<String>, Vec<String>);

/// Every item's lists as the store has them, and the ids of those that differ from a
/// computation from its parent links now.
fn lists(s: &ClientStore) -> (Vec<Lists>, Vec<String>) {
    let stored: Vec<_> = s
        .work_items
        .values()
        .map(|w| {
            (
                w.id.clone(),
                w.ancestor_ids.clone(),
                w.descendant_ids.clone(),
            )
        })
        .collect();
    let fresh = hierarchy::compute(
        s.work_items
            .values()
            .map(|w| (w.id.as_str(), w.parent_id.as_deref())),
    );
    let mismatched = stored
        .iter()
        .filter(|(id, up, down)| fresh.get(id) != Some(&(up.clone(), down.clone())))
        .map(|(id, _, _)| id.clone())
        .collect();
    (stored, mismatched)
}

#[test]
fn hierarchy_lists_stay_exact_through_updates_that_keep_or_change_the_parent() {
    let mut s = ClientStore::new();
    s.load_project(
        proto::ProjectSnapshot {
            project: Some(proto::Project {
                id: PID.into(),
                ..Default::default()
            }),
            // As the server sends them: the lists are the server's, the store recomputes.
            work_items: vec![
                item("epic", None, 1),
                item("story", Some("epic"), 1),
                item("task", Some("story"), 1),
                item("other", None, 1),
            ],
            ..Default::default()
        },
        0,
        EPOCH,
    );
    let (before, wrong) = lists(&s);
    assert!(wrong.is_empty(), "after the load: {wrong:?}");
    let task = &before.iter().find(|l| l.0 == "task").expect("task").1;
    assert_eq!(task, &vec!["story".to_string(), "epic".to_string()]);

    // A status change (the parent kept), sent without lists as an old server would: the
    // item keeps its lists and nobody else's change.
    let revision = s.revision();
    let mut moved = item("task", Some("story"), 2);
    moved.status = "done".into();
    assert!(matches!(s.apply(&updated(1, moved)), Outcome::Applied(_)));
    assert!(
        s.revision() > revision,
        "an applied event changes the revision"
    );
    let (after, wrong) = lists(&s);
    assert!(wrong.is_empty(), "after a status change: {wrong:?}");
    assert_eq!(after, before, "no list changed");
    assert_eq!(s.work_items["task"].status, "done");

    // A new parent: the item's, its old and new ancestors' lists all change.
    assert!(matches!(
        s.apply(&updated(2, item("story", Some("other"), 2))),
        Outcome::Applied(_)
    ));
    let (after, wrong) = lists(&s);
    assert!(wrong.is_empty(), "after a new parent: {wrong:?}");
    let of = |id: &str| after.iter().find(|l| l.0 == id).expect("item").clone();
    assert_eq!(of("task").1, vec!["story".to_string(), "other".to_string()]);
    assert!(of("epic").2.is_empty(), "the epic lost its story and task");
    assert_eq!(of("other").2, vec!["story".to_string(), "task".to_string()]);

    // A parent removed, then an ignored (old) version: nothing stale either way.
    assert!(matches!(
        s.apply(&updated(3, item("story", None, 3))),
        Outcome::Applied(_)
    ));
    let revision = s.revision();
    assert_eq!(
        s.apply(&updated(4, item("story", Some("epic"), 1))),
        Outcome::Ignored
    );
    assert_eq!(s.revision(), revision, "an ignored event changes nothing");
    let (after, wrong) = lists(&s);
    assert!(wrong.is_empty(), "after the parent was removed: {wrong:?}");
    assert_eq!(
        after.iter().find(|l| l.0 == "task").expect("task").1,
        vec!["story".to_string()]
    );
}
