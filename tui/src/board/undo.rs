//! Undo and redo of my own changes (`u`, Ctrl-R). A change is remembered once the server has
//! accepted it, as the values of its fields before and after; undoing it writes the values
//! before back, on the card's current version — but only while the card still holds the values
//! after, so an undo never overwrites what someone else changed since (it is refused, with a
//! word why). A card I deleted comes back as it was (pm's RestoreWorkItemRequest: the same id
//! and key, its comments, links and history).
use pm_shared::domain::ItemType;
use pm_shared::proto;

/// Where a write of mine comes from: what its acceptance adds to the undo / redo stacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A key of mine: undoable, and the redo stack is cleared.
    User,
    /// An undo: redoable.
    Undo,
    /// A redo: undoable again.
    Redo,
    /// Done by the board on my behalf (a card put into the filtered sprint): not remembered.
    Auto,
}

/// One accepted change of a card: its fields' values before and after.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub item_id: String,
    pub before: proto::UpdateWorkItemRequest,
    pub after: proto::UpdateWorkItemRequest,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    Change(Box<Change>),
    /// A card I deleted, as it was.
    Deleted(Box<proto::WorkItem>),
}

/// Most entries kept.
pub const DEPTH: usize = 100;

/// The values `item` has for the fields `req` sets (cleared ones as "", which clears them
/// again; no story points as `clear_story_points`).
pub fn values_of(
    item: &proto::WorkItem,
    req: &proto::UpdateWorkItemRequest,
) -> proto::UpdateWorkItemRequest {
    let mut v = proto::UpdateWorkItemRequest::default();
    if req.title.is_some() {
        v.title = Some(item.title.clone());
    }
    if req.description.is_some() {
        v.description = Some(item.description.clone().unwrap_or_default());
    }
    if req.status.is_some() {
        v.status = Some(item.status.clone());
    }
    if req.assignee_id.is_some() {
        v.assignee_id = Some(item.assignee_id.clone().unwrap_or_default());
    }
    if req.sprint_id.is_some() {
        v.sprint_id = Some(item.sprint_id.clone().unwrap_or_default());
    }
    if req.position.is_some() {
        v.position = Some(item.position);
    }
    if req.priority.is_some() {
        v.priority = Some(item.priority.clone());
    }
    if req.story_points.is_some() || req.clear_story_points {
        v.story_points = item.story_points;
        v.clear_story_points = item.story_points.is_none();
    }
    if req.item_type.is_some() {
        v.item_type = ItemType::from_proto(item.item_type).map(|t| t.as_str().to_string());
    }
    if req.update_parent {
        v.update_parent = true;
        v.parent_id = Some(item.parent_id.clone().unwrap_or_default());
    }
    v
}

/// The fields a request sets, without its target and version.
pub fn fields_of(req: &proto::UpdateWorkItemRequest) -> proto::UpdateWorkItemRequest {
    proto::UpdateWorkItemRequest {
        work_item_id: String::new(),
        expected_version: 0,
        ..req.clone()
    }
}

/// True when `item` holds every value `req` sets (nobody changed those fields since).
pub fn holds(item: &proto::WorkItem, req: &proto::UpdateWorkItemRequest) -> bool {
    values_of(item, req) == fields_of(req)
}

/// True when the request sets nothing.
pub fn is_empty(req: &proto::UpdateWorkItemRequest) -> bool {
    fields_of(req) == proto::UpdateWorkItemRequest::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card() -> proto::WorkItem {
        proto::WorkItem {
            title: "T".into(),
            priority: "high".into(),
            assignee_id: None,
            story_points: None,
            ..Default::default()
        }
    }

    #[test]
    fn values_before_a_change_undo_it() {
        let req = proto::UpdateWorkItemRequest {
            work_item_id: "w".into(),
            expected_version: 3,
            priority: Some("low".into()),
            assignee_id: Some("u1".into()),
            story_points: Some(5),
            ..Default::default()
        };
        let before = values_of(&card(), &req);
        assert_eq!(before.priority.as_deref(), Some("high"));
        assert_eq!(before.assignee_id.as_deref(), Some(""), "cleared again");
        assert_eq!(
            (before.story_points, before.clear_story_points),
            (None, true),
            "the points go again"
        );
        assert!(holds(&card(), &before));
        let mut after = card();
        after.priority = "low".into();
        after.assignee_id = Some("u1".into());
        after.story_points = Some(5);
        assert!(holds(&after, &req));
        after.priority = "critical".into();
        assert!(!holds(&after, &req), "someone changed the priority since");
        assert!(is_empty(&proto::UpdateWorkItemRequest {
            work_item_id: "w".into(),
            ..Default::default()
        }));
    }
}
