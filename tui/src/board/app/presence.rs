//! What this board tells the server of where its user is: the open project, the card open (or
//! selected), the field being edited, or invisible. Worked out after every event and handed
//! to the SDK when it changed; the SDK coalesces quick changes and repeats it as a heartbeat.
use pm_shared::proto;

use super::{App, EditorTarget, Popup, View};
use crate::board::pick::PickKind;
use crate::board::presence::{field_label, initial};

impl App {
    /// Where the user is now; None when no project is open.
    pub fn whereabouts(&self) -> Option<proto::SetPresenceRequest> {
        let project = self.replica.project().filter(|_| !self.picking)?;
        let (item, field) = self.looking_at();
        Some(proto::SetPresenceRequest {
            project_id: project.to_string(),
            work_item_id: item,
            field: field.map(str::to_string),
            invisible: self.invisible,
        })
    }

    /// The card the user has open or selected, and the field they edit on it.
    fn looking_at(&self) -> (Option<String>, Option<&'static str>) {
        if let Some(request) = &self.editor {
            let field = match request.target {
                EditorTarget::Description { .. } => "description",
                EditorTarget::NewComment | EditorTarget::Comment { .. } => "comment",
            };
            return (Some(request.item_id.clone()), Some(field));
        }
        match &self.popup {
            Popup::EditTitle { item_id, .. } => (Some(item_id.clone()), Some("title")),
            Popup::Points { item_id, .. } => (Some(item_id.clone()), Some("story_points")),
            Popup::Detail {
                item_id,
                comment: Some(_),
            } => (Some(item_id.clone()), Some("comment")),
            Popup::Pick { item_id, kind, .. } => {
                let field = match kind {
                    PickKind::Assignee => Some("assignee"),
                    PickKind::Sprint => Some("sprint"),
                    PickKind::Parent => Some("parent"),
                    PickKind::Type => Some("type"),
                    _ => None,
                };
                (Some(item_id.clone()), field)
            }
            Popup::Detail { item_id, .. }
            | Popup::ConfirmDelete { item_id }
            | Popup::Conflict { item_id, .. } => (Some(item_id.clone()), None),
            _ if self.view == View::Board || self.popup == Popup::None => {
                (self.selected().map(|c| c.id.clone()), None)
            }
            _ => (None, None),
        }
    }

    /// Tells the SDK where the user is, when that changed.
    pub(super) fn publish_presence(&mut self) {
        let now = self.whereabouts();
        if now == self.presence_told {
            return;
        }
        self.presence_told = now.clone();
        self.handle.set_presence(now);
    }

    /// Names of the users presence shows that the board does not know yet are asked for.
    pub(super) fn learn_present_names(&mut self) {
        let Some(project) = self.replica.project() else {
            return;
        };
        let unknown: Vec<String> = self
            .presence
            .others(project, &self.me)
            .iter()
            .map(|p| p.user_id.clone())
            .filter(|u| !self.replica.store.users.contains_key(u))
            .collect();
        let mut ask = false;
        for user in unknown {
            ask |= self.asked_for_users.insert(user);
        }
        if ask {
            self.replica.refresh_users(&self.handle);
        }
    }
}

/// What the board draws of the others' presence.
impl App {
    /// The names of the others on this board, earliest arrival first.
    pub fn here(&self) -> Vec<String> {
        let Some(project) = self.replica.project() else {
            return Vec::new();
        };
        self.presence
            .others(project, &self.me)
            .iter()
            .map(|p| self.user_name(&p.user_id))
            .collect()
    }

    /// The names of the others who have card `item` open.
    pub fn presence_on(&self, item: &str) -> Vec<String> {
        let Some(project) = self.replica.project() else {
            return Vec::new();
        };
        self.presence
            .on_card(project, &self.me, item)
            .iter()
            .map(|p| self.user_name(&p.user_id))
            .collect()
    }

    /// The initials of the others who have card `item` open.
    pub fn initials_on(&self, item: &str) -> String {
        let Some(project) = self.replica.project() else {
            return String::new();
        };
        self.presence
            .on_card(project, &self.me, item)
            .iter()
            .map(|p| initial(&self.user_name(&p.user_id)))
            .collect()
    }

    /// The initials of the others whose open card is one of `items` (a lane's).
    pub fn initials_among<'a>(&self, items: impl IntoIterator<Item = &'a str>) -> String {
        let Some(project) = self.replica.project() else {
            return String::new();
        };
        let others = self.presence.others(project, &self.me);
        if others.iter().all(|p| p.work_item_id.is_none()) {
            return String::new(); // nobody has a card open: no need to look at the lane's cards
        }
        let items: std::collections::HashSet<&str> = items.into_iter().collect();
        others
            .iter()
            .filter(|p| p.work_item_id.as_deref().is_some_and(|i| items.contains(i)))
            .map(|p| initial(&self.user_name(&p.user_id)))
            .collect()
    }

    /// "bob is editing this title", one line per other user editing a field of card `item`;
    /// only `field` when given.
    pub fn editing_notes(&self, item: &str, field: Option<&str>) -> Vec<String> {
        let Some(project) = self.replica.project() else {
            return Vec::new();
        };
        self.presence
            .editing(project, &self.me, item)
            .into_iter()
            .filter(|(_, f)| field.is_none_or(|want| want == f))
            .map(|(user, f)| {
                let whose = if field.is_some() { "this" } else { "the" };
                format!(
                    "{} is editing {whose} {}",
                    self.user_name(&user),
                    field_label(&f)
                )
            })
            .collect()
    }
}
