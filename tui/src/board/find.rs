//! What `/` finds: plain words match a card's key, title, description and assignee (every word
//! somewhere, any case); a few words are filters instead:
//!
//! | word | keeps |
//! |---|---|
//! | `@me`, `@bob` | cards assigned to me / to a user whose name starts with `bob` |
//! | `@none` | unassigned cards |
//! | `type:story` (`epic`, `task`) | that type |
//! | `prio:high` (`critical`, `medium`, `low`) | that priority |
//! | `sprint:none` | cards in no sprint |
//! | `-done` | every card that is not done |
use pm_shared::domain::{ItemType, Priority, Status};
use pm_shared::proto;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// Lowercase words that must each appear in the key, title, description or assignee.
    words: Vec<String>,
    assignee: Option<Assignee>,
    item_type: Option<ItemType>,
    priority: Option<Priority>,
    no_sprint: bool,
    hide_done: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Assignee {
    Me,
    Nobody,
    /// Lowercase start of a name.
    Named(String),
}

/// A card as the query sees it.
pub struct Candidate<'a> {
    pub item: &'a proto::WorkItem,
    pub key: &'a str,
    /// The assignee's name, if any.
    pub assignee: Option<&'a str>,
    /// True when the card is assigned to me.
    pub mine: bool,
}

impl Query {
    pub fn parse(text: &str) -> Query {
        let mut q = Query::default();
        for word in text.split_whitespace() {
            let lower = word.to_lowercase();
            let (name, value) = lower.split_once(':').unwrap_or(("", ""));
            match (lower.as_str(), name, value) {
                ("-done", ..) => q.hide_done = true,
                ("@me", ..) => q.assignee = Some(Assignee::Me),
                ("@none", ..) => q.assignee = Some(Assignee::Nobody),
                (w, ..) if w.len() > 1 && w.starts_with('@') => {
                    q.assignee = Some(Assignee::Named(w[1..].to_string()))
                }
                (_, "type", v) if ItemType::parse(v).is_some() => q.item_type = ItemType::parse(v),
                (_, "prio", v) if Priority::parse(v).is_some() => q.priority = Priority::parse(v),
                (_, "sprint", "none") => q.no_sprint = true,
                _ => q.words.push(lower),
            }
        }
        q
    }

    pub fn is_empty(&self) -> bool {
        *self == Query::default()
    }

    pub fn matches(&self, c: &Candidate<'_>) -> bool {
        let item = c.item;
        if self.hide_done && Status::parse(&item.status) == Some(Status::Done) {
            return false;
        }
        if self.no_sprint && item.sprint_id.is_some() {
            return false;
        }
        if self
            .item_type
            .is_some_and(|t| ItemType::from_proto(item.item_type) != Some(t))
        {
            return false;
        }
        if self
            .priority
            .is_some_and(|p| Priority::parse(&item.priority) != Some(p))
        {
            return false;
        }
        let assignee = c.assignee.map(str::to_lowercase);
        match &self.assignee {
            Some(Assignee::Me) if !c.mine => return false,
            Some(Assignee::Nobody) if item.assignee_id.is_some() => return false,
            Some(Assignee::Named(start))
                if !assignee
                    .as_deref()
                    .is_some_and(|a| a.starts_with(start.as_str())) =>
            {
                return false
            }
            _ => {}
        }
        let haystack = [
            Some(c.key.to_lowercase()),
            Some(item.title.to_lowercase()),
            item.description.as_deref().map(str::to_lowercase),
            assignee,
        ];
        self.words
            .iter()
            .all(|w| haystack.iter().flatten().any(|h| h.contains(w.as_str())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(title: &str, description: Option<&str>) -> proto::WorkItem {
        proto::WorkItem {
            title: title.into(),
            description: description.map(str::to_string),
            item_type: proto::WorkItemType::Story as i32,
            priority: "high".into(),
            status: "in_progress".into(),
            assignee_id: Some("u-bob".into()),
            ..Default::default()
        }
    }

    fn finds(query: &str, item: &proto::WorkItem, assignee: Option<&str>, mine: bool) -> bool {
        Query::parse(query).matches(&Candidate {
            item,
            key: "PM-12",
            assignee,
            mine,
        })
    }

    #[test]
    fn words_match_key_title_description_and_assignee_in_any_case() {
        let c = card("Card vault API", Some("Keys rotate WEEKLY"));
        for q in ["vault", "pm-12", "weekly", "bob", "VAULT weekly", ""] {
            assert!(finds(q, &c, Some("Bob"), false), "{q}");
        }
        for q in ["vault monthly", "alice", "PM-13"] {
            assert!(!finds(q, &c, Some("Bob"), false), "{q}");
        }
    }

    #[test]
    fn filters_narrow_by_assignee_type_priority_sprint_and_done() {
        let mut c = card("Card vault API", None);
        assert!(finds("@me", &c, Some("alice"), true));
        assert!(!finds("@me", &c, Some("bob"), false));
        assert!(finds("@bo", &c, Some("Bob"), false));
        assert!(!finds("@al", &c, Some("Bob"), false));
        assert!(!finds("@none", &c, Some("Bob"), false));
        assert!(finds("type:story prio:high", &c, None, false));
        assert!(!finds("type:epic", &c, None, false));
        assert!(!finds("prio:low vault", &c, None, false));
        assert!(finds("sprint:none -done", &c, None, false));
        c.sprint_id = Some("s1".into());
        assert!(!finds("sprint:none", &c, None, false));
        c.status = "done".into();
        assert!(!finds("-done", &c, None, false));
        c.assignee_id = None;
        assert!(finds("@none", &c, None, false));
        // An unknown filter value is searched for as a word.
        assert!(!finds("type:bug", &c, None, false));
        assert!(Query::parse("  ").is_empty());
    }
}
