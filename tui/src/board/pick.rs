//! The board's pickers: who gets a card (`a`), which sprint it is in (`S`), which card is its
//! parent (`P`). Each lists "none" first, then the choices by name, filtered by what is typed.
use pm_shared::domain::{ItemType, SprintStatus};
use pm_shared::proto;

use super::app::App;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickKind {
    Assignee,
    Sprint,
    Parent,
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
        }
    }

    /// The card's current value of the field.
    pub fn current(self, item: &proto::WorkItem) -> Option<String> {
        match self {
            PickKind::Assignee => item.assignee_id.clone(),
            PickKind::Sprint => item.sprint_id.clone(),
            PickKind::Parent => item.parent_id.clone(),
        }
    }

    /// The request that sets the field to `value`.
    pub fn request(self, value: Option<String>) -> proto::UpdateWorkItemRequest {
        let value = value.unwrap_or_default();
        let mut req = proto::UpdateWorkItemRequest::default();
        match self {
            PickKind::Assignee => req.assignee_id = Some(value),
            PickKind::Sprint => req.sprint_id = Some(value),
            PickKind::Parent => {
                req.parent_id = Some(value);
                req.update_parent = true;
            }
        }
        req
    }

    /// For messages: "Assign", "Sprint", "Parent".
    pub fn what(self) -> &'static str {
        self.title().0
    }
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
    };
    let needle = filter.trim().to_lowercase();
    list.retain(|c| c.label.to_lowercase().contains(&needle));
    list
}
