//! Who else is on the board right now: the presence the server tells (a PresenceSnapshot, then
//! PresenceChanged frames), for the header, the cards, the lanes and the editors to show. What
//! this board tells the server is `App::publish_presence`'s (the SDK repeats and coalesces it).
use std::collections::BTreeMap;

use pm_shared::proto::{self, Payload, WebSocketMessage};

/// The sessions of the project the server last told about.
#[derive(Debug, Default)]
pub struct Presence {
    project: String,
    sessions: BTreeMap<String, proto::Presence>,
}

impl Presence {
    /// Applies a presence frame; false for any other message.
    pub fn apply(&mut self, msg: &WebSocketMessage) -> bool {
        match &msg.payload {
            Some(Payload::PresenceSnapshot(s)) => {
                self.project = s.project_id.clone();
                self.sessions = s
                    .sessions
                    .iter()
                    .map(|p| (p.session_id.clone(), p.clone()))
                    .collect();
                true
            }
            Some(Payload::PresenceChanged(c)) if c.project_id == self.project => {
                for p in &c.updated {
                    self.sessions.insert(p.session_id.clone(), p.clone());
                }
                for gone in &c.gone {
                    self.sessions.remove(gone);
                }
                true
            }
            _ => false,
        }
    }

    /// Forgets everything (the connection is gone: a new one starts with a snapshot).
    pub fn clear(&mut self) {
        self.project.clear();
        self.sessions.clear();
    }

    /// The users other than `me` on `project`, each once, the earliest arrival first, with the
    /// session that shows each (their latest, whose card and field count).
    pub fn others(&self, project: &str, me: &str) -> Vec<&proto::Presence> {
        if self.project != project {
            return Vec::new();
        }
        let mut latest: BTreeMap<&str, &proto::Presence> = BTreeMap::new();
        for p in self.sessions.values().filter(|p| p.user_id != me) {
            let keep = latest
                .get(p.user_id.as_str())
                .is_none_or(|q| (q.since, &q.session_id) < (p.since, &p.session_id));
            if keep {
                latest.insert(&p.user_id, p);
            }
        }
        let mut users: Vec<&proto::Presence> = latest.into_values().collect();
        users.sort_by(|a, b| (a.since, &a.user_id).cmp(&(b.since, &b.user_id)));
        users
    }

    /// The others who have card `item` open (or selected).
    pub fn on_card(&self, project: &str, me: &str, item: &str) -> Vec<&proto::Presence> {
        self.others(project, me)
            .into_iter()
            .filter(|p| p.work_item_id.as_deref() == Some(item))
            .collect()
    }

    /// Who edits a field of card `item`: (user id, field).
    pub fn editing(&self, project: &str, me: &str, item: &str) -> Vec<(String, String)> {
        self.on_card(project, me, item)
            .into_iter()
            .filter_map(|p| Some((p.user_id.clone(), p.field.clone()?)))
            .collect()
    }
}

/// The letter a user goes by on a card: the first letter or digit of their name, upper case.
pub fn initial(name: &str) -> char {
    name.chars()
        .find(|c| c.is_alphanumeric())
        .and_then(|c| c.to_uppercase().next())
        .unwrap_or('?')
}

/// A field as a note says it: "title", "description", "story points".
pub fn field_label(field: &str) -> String {
    field.replace('_', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: &str, user: &str, item: Option<&str>, since: i64) -> proto::Presence {
        proto::Presence {
            session_id: id.into(),
            user_id: user.into(),
            work_item_id: item.map(Into::into),
            field: None,
            since,
        }
    }

    fn frame(payload: Payload) -> WebSocketMessage {
        WebSocketMessage::with_payload("x", payload)
    }

    #[test]
    fn a_snapshot_then_changes_and_each_user_once() {
        let mut p = Presence::default();
        assert!(
            p.apply(&frame(Payload::PresenceSnapshot(proto::PresenceSnapshot {
                project_id: "p".into(),
                sessions: vec![
                    session("s1", "bob", Some("c1"), 5),
                    session("s2", "me", Some("c1"), 1),
                    session("s3", "bob", Some("c2"), 9),
                ],
            })))
        );
        let others = p.others("p", "me");
        assert_eq!(others.len(), 1, "bob once");
        assert_eq!(others[0].work_item_id.as_deref(), Some("c2"), "his latest");
        assert!(p.others("q", "me").is_empty(), "another project");
        assert!(
            p.apply(&frame(Payload::PresenceChanged(proto::PresenceChanged {
                project_id: "p".into(),
                updated: vec![session("s4", "carol", Some("c1"), 3)],
                gone: vec!["s3".into()],
            })))
        );
        let names: Vec<&str> = p
            .others("p", "me")
            .iter()
            .map(|s| s.user_id.as_str())
            .collect();
        assert_eq!(names, vec!["carol", "bob"], "earliest first");
        assert_eq!(p.on_card("p", "me", "c1").len(), 2);
        // A change for another project is not ours.
        assert!(
            !p.apply(&frame(Payload::PresenceChanged(proto::PresenceChanged {
                project_id: "q".into(),
                ..Default::default()
            })))
        );
        p.clear();
        assert!(p.others("p", "me").is_empty());
    }

    #[test]
    fn initials_and_labels() {
        assert_eq!(initial("bob"), 'B');
        assert_eq!(initial("  élise"), 'É');
        assert_eq!(initial("--"), '?');
        assert_eq!(field_label("story_points"), "story points");
    }
}
