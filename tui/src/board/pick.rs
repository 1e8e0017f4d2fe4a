//! The board's pickers: who gets a card (`a`), which sprint it is in (`S`), which card is its
//! parent (`P`), which type it is (`T`), which card it blocks, is blocked by or relates to (`b` `B` `R` in the detail
//! pane) and which link goes (`x`). A field's picker lists "none" first; all are filtered by
//! what is typed.
use pm_shared::domain::{ItemType, SprintStatus};
use pm_shared::proto;

use super::app::App;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickKind {
    Assignee,
    Sprint,
    Parent,
    /// Epic, story or task (the server holds the change to the hierarchy rules).
    Type,
    /// A new link: this card blocks the chosen one.
    Blocks,
    /// A new link: the chosen card blocks this one.
    BlockedBy,
    RelatesTo,
    /// One of the card's links, to remove.
    Unlink,
    /// One of my comments on the card, to edit in `$EDITOR`.
    EditComment,
    /// One of my comments on the card, to delete.
    DeleteComment,
}

/// One line of a picker: the value it sets (None clears the field) and what it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub value: Option<String>,
    pub label: String,
}

impl PickKind {
    /// The popup's title and the word between the card and the filter (`PM-3 to › `).
    pub fn title(self) -> (&'static str, &'static str) {
        match self {
            PickKind::Assignee => ("Assign", "to"),
            PickKind::Sprint => ("Sprint", "in"),
            PickKind::Parent => ("Parent", "under"),
            PickKind::Type => ("Type", "to"),
            PickKind::Blocks => ("Link", "blocks"),
            PickKind::BlockedBy => ("Link", "is blocked by"),
            PickKind::RelatesTo => ("Link", "relates to"),
            PickKind::Unlink => ("Remove link", "loses"),
            PickKind::EditComment => ("Edit comment", "·"),
            PickKind::DeleteComment => ("Delete comment", "·"),
        }
    }

    /// The card's current value of the field.
    pub fn current(self, item: &proto::WorkItem) -> Option<String> {
        match self {
            PickKind::Assignee => item.assignee_id.clone(),
            PickKind::Sprint => item.sprint_id.clone(),
            PickKind::Parent => item.parent_id.clone(),
            PickKind::Type => ItemType::from_proto(item.item_type).map(|t| t.as_str().to_string()),
            _ => None,
        }
    }

    /// What choosing `value` for the card `item_id` does.
    pub fn action(self, item_id: &str, value: Option<String>) -> Action {
        let value = value.unwrap_or_default();
        let mut req = proto::UpdateWorkItemRequest::default();
        let link = |blocking: &str, blocked: &str, kind: proto::DependencyType| {
            Action::Send(proto::Payload::CreateDependencyRequest(
                proto::CreateDependencyRequest {
                    blocking_item_id: blocking.to_string(),
                    blocked_item_id: blocked.to_string(),
                    dependency_type: kind as i32,
                },
            ))
        };
        match self {
            PickKind::Assignee => req.assignee_id = Some(value),
            PickKind::Sprint => req.sprint_id = Some(value),
            PickKind::Parent => {
                req.parent_id = Some(value);
                req.update_parent = true;
            }
            PickKind::Type => req.item_type = Some(value),
            PickKind::Blocks => return link(item_id, &value, proto::DependencyType::Blocks),
            PickKind::BlockedBy => return link(&value, item_id, proto::DependencyType::Blocks),
            PickKind::RelatesTo => return link(item_id, &value, proto::DependencyType::RelatesTo),
            PickKind::Unlink => {
                return Action::Send(proto::Payload::DeleteDependencyRequest(
                    proto::DeleteDependencyRequest {
                        dependency_id: value,
                    },
                ))
            }
            PickKind::EditComment => return Action::EditComment(value),
            PickKind::DeleteComment => {
                return Action::Send(proto::Payload::DeleteCommentRequest(
                    proto::DeleteCommentRequest { comment_id: value },
                ))
            }
        }
        Action::Update(req)
    }

    /// True for a field of the card (it has a current value; all but the type a "none").
    pub fn is_field(self) -> bool {
        matches!(
            self,
            PickKind::Assignee | PickKind::Sprint | PickKind::Parent | PickKind::Type
        )
    }

    /// For messages: "Assign", "Sprint", "Parent", "Link", "Remove link"…
    pub fn what(self) -> &'static str {
        self.title().0
    }
}

/// What a choice does: change the card, send a request of its own (a link, a deletion), or
/// open a comment in `$EDITOR`.
pub enum Action {
    Update(proto::UpdateWorkItemRequest),
    Send(proto::Payload),
    EditComment(String),
}

/// What `kind` offers for the card `item`, filtered by `filter` (any case).
pub fn choices(app: &App, kind: PickKind, item: &proto::WorkItem, filter: &str) -> Vec<Choice> {
    let choice = |value: Option<String>, label: String| Choice { value, label };
    let mut list = match kind {
        PickKind::Assignee => {
            let mut others: Vec<Choice> = app
                .replica
                .store
                .users
                .iter()
                .filter(|(id, _)| **id != app.me)
                .map(|(id, name)| choice(Some(id.clone()), name.clone()))
                .collect();
            others.sort_by_key(|c| (c.label.to_lowercase(), c.value.clone()));
            let mut list = vec![
                choice(None, "— nobody".into()),
                choice(Some(app.me.clone()), format!("{} (me)", app.my_name)),
            ];
            list.extend(others);
            list
        }
        PickKind::Sprint => {
            let mut sprints: Vec<&proto::Sprint> = app
                .replica
                .store
                .sprints
                .values()
                .filter(|s| s.project_id == item.project_id)
                .collect();
            sprints.sort_by_key(|s| (s.start_date, s.name.to_lowercase()));
            std::iter::once(choice(None, "— no sprint".into()))
                .chain(sprints.into_iter().map(|s| {
                    let status = SprintStatus::from_proto(s.status).map_or("?", |x| x.label());
                    choice(Some(s.id.clone()), format!("{} ({status})", s.name))
                }))
                .collect()
        }
        PickKind::Parent => {
            // The hierarchy: a story goes under an epic, a task under a story, an epic nowhere.
            let wanted = ItemType::from_proto(item.item_type).and_then(ItemType::allowed_parent);
            let mut parents: Vec<&proto::WorkItem> = app
                .replica
                .store
                .items_of(&item.project_id)
                .filter(|w| w.id != item.id && wanted.is_some())
                .filter(|w| ItemType::from_proto(w.item_type) == wanted)
                .collect();
            parents.sort_by_key(|w| w.item_number);
            std::iter::once(choice(None, "— no parent".into()))
                .chain(
                    parents.into_iter().map(|w| {
                        choice(Some(w.id.clone()), format!("{} {}", app.key_of(w), w.title))
                    }),
                )
                .collect()
        }
        PickKind::Type => {
            // Each type with why it would break the hierarchy, if it would (the server refuses
            // it then): the card's parent, or one of its children, would not fit.
            let store = &app.replica.store;
            let parent = item
                .parent_id
                .as_ref()
                .and_then(|p| store.work_items.get(p));
            let children: Vec<&proto::WorkItem> = store
                .items_of(&item.project_id)
                .filter(|w| w.parent_id.as_ref() == Some(&item.id))
                .collect();
            let type_of = |w: &proto::WorkItem| ItemType::from_proto(w.item_type);
            ItemType::ALL
                .iter()
                .map(|&t| {
                    let misfit_parent = parent.filter(|p| type_of(p) != t.allowed_parent());
                    let misfit_child = children
                        .iter()
                        .find(|c| type_of(c).and_then(ItemType::allowed_parent) != Some(t));
                    let why = match (misfit_parent, misfit_child) {
                        (Some(p), _) => format!("  (not under its parent {})", app.key_of(p)),
                        (None, Some(c)) => format!("  ({} could not be under it)", app.key_of(c)),
                        (None, None) => String::new(),
                    };
                    choice(Some(t.as_str().to_string()), format!("{}{why}", t.label()))
                })
                .collect()
        }
        PickKind::Blocks | PickKind::BlockedBy | PickKind::RelatesTo => {
            let store = &app.replica.store;
            let (incoming, outgoing) = store.dependencies_of(&item.id);
            // Cards already linked to this one that way are not offered again.
            let blocks = proto::DependencyType::Blocks as i32;
            let linked: Vec<&str> = match kind {
                PickKind::Blocks => outgoing
                    .iter()
                    .filter(|d| d.dependency_type == blocks)
                    .map(|d| d.blocked_item_id.as_str())
                    .collect(),
                PickKind::BlockedBy => incoming
                    .iter()
                    .filter(|d| d.dependency_type == blocks)
                    .map(|d| d.blocking_item_id.as_str())
                    .collect(),
                _ => incoming
                    .iter()
                    .map(|d| d.blocking_item_id.as_str())
                    .chain(outgoing.iter().map(|d| d.blocked_item_id.as_str()))
                    .collect(),
            };
            let mut cards: Vec<&proto::WorkItem> = store
                .items_of(&item.project_id)
                .filter(|w| w.id != item.id && !linked.contains(&w.id.as_str()))
                .collect();
            cards.sort_by_key(|w| w.item_number);
            cards
                .into_iter()
                .map(|w| choice(Some(w.id.clone()), format!("{} {}", app.key_of(w), w.title)))
                .collect()
        }
        PickKind::Unlink => {
            let store = &app.replica.store;
            let (incoming, outgoing) = store.dependencies_of(&item.id);
            let blocks = proto::DependencyType::Blocks as i32;
            let name = |id: &str| {
                store.work_items.get(id).map_or_else(
                    || "a deleted card".to_string(),
                    |w| format!("{} {}", app.key_of(w), w.title),
                )
            };
            let verb = |d: &proto::Dependency, outgoing: bool| match (
                d.dependency_type == blocks,
                outgoing,
            ) {
                (true, true) => "blocks",
                (true, false) => "is blocked by",
                (false, _) => "relates to",
            };
            incoming
                .iter()
                .map(|d| (d, false, d.blocking_item_id.as_str()))
                .chain(
                    outgoing
                        .iter()
                        .map(|d| (d, true, d.blocked_item_id.as_str())),
                )
                .map(|(d, out, other)| {
                    choice(
                        Some(d.id.clone()),
                        format!("{} {}", verb(d, out), name(other)),
                    )
                })
                .collect()
        }
        PickKind::EditComment | PickKind::DeleteComment => app
            .replica
            .store
            .comments_of(&item.id)
            .into_iter()
            .filter(|c| c.created_by == app.me)
            .map(|c| {
                let first = c.content.lines().next().unwrap_or("");
                choice(Some(c.id.clone()), first.to_string())
            })
            .collect(),
    };
    let needle = filter.trim().to_lowercase();
    list.retain(|c| c.label.to_lowercase().contains(&needle));
    list
}
