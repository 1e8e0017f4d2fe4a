//! Lines for the activity strip: an event in words, written before it is applied (so a deleted
//! card still has its key).
use super::*;

/// The first line of `s`, cut to `max` columns.
pub(super) fn first_line(s: &str, max: usize) -> String {
    crate::width::truncate(s.lines().next().unwrap_or(""), max)
}

/// One change in words, e.g. "moved PM-4 to Review".
pub(super) fn describe_change(c: &proto::FieldChange, key: &str, app: &App) -> String {
    let new = c.new_value.clone().unwrap_or_default();
    match c.field_name.as_str() {
        "status" => format!(
            "moved {key} to {}",
            Status::parse(&new).map(|s| s.label()).unwrap_or(&new)
        ),
        "assignee_id" if new.is_empty() => format!("unassigned {key}"),
        "assignee_id" => format!("assigned {key} to {}", app.user_name(&new)),
        "title" => format!("renamed {key} to \"{}\"", first_line(&new, 30)),
        "position" => format!("reordered {key}"),
        "sprint_id" if new.is_empty() => format!("took {key} out of its sprint"),
        "sprint_id" => format!("put {key} in a sprint"),
        "parent_id" => format!("changed the parent of {key}"),
        "description" => format!("edited the description of {key}"),
        "priority" => format!("set {key} to {new} priority"),
        "item_type" => format!(
            "made {key} a{} {}",
            if new == "epic" { "n" } else { "" },
            ItemType::parse(&new).map_or(new.as_str(), |t| t.label())
        ),
        "story_points" if new.is_empty() => format!("cleared the points of {key}"),
        "story_points" => format!("estimated {key} at {new} points"),
        other => format!("set {} of {key} to {new}", other.replace('_', " ")),
    }
}

impl App {
    /// A line for the activity strip, written before the event is applied (so a deleted card
    /// still has its key).
    pub(super) fn describe(&self, msg: &WebSocketMessage) -> Option<String> {
        let project = self.replica.project()?;
        let item_key = |id: &str| {
            self.replica
                .store
                .work_items
                .get(id)
                .map(|w| self.key_of(w))
        };
        match msg.payload.as_ref()? {
            Payload::WorkItemCreated(e) => {
                let w = e.work_item.as_ref().filter(|w| w.project_id == project)?;
                let verb = if e.restored.is_some() {
                    "restored"
                } else {
                    "created"
                };
                Some(format!("{verb} {} \"{}\"", self.key_of(w), w.title))
            }
            Payload::WorkItemUpdated(e) => {
                let w = e.work_item.as_ref().filter(|w| w.project_id == project)?;
                let key = self.key_of(w);
                let parts: Vec<String> = e
                    .changes
                    .iter()
                    .map(|c| describe_change(c, &key, self))
                    .collect();
                Some(if parts.is_empty() {
                    format!("updated {key}")
                } else {
                    parts.join(", ")
                })
            }
            Payload::WorkItemDeleted(e) => Some(format!("deleted {}", item_key(&e.work_item_id)?)),
            Payload::CommentCreated(e) => {
                let c = e.comment.as_ref()?;
                Some(format!(
                    "commented on {}: \"{}\"",
                    item_key(&c.work_item_id)?,
                    first_line(&c.content, 40)
                ))
            }
            Payload::CommentUpdated(e) => Some(format!(
                "edited a comment on {}",
                item_key(&e.comment.as_ref()?.work_item_id)?
            )),
            Payload::CommentDeleted(e) => Some(format!(
                "deleted a comment on {}",
                item_key(&e.work_item_id)?
            )),
            Payload::SprintCreated(e) => {
                Some(format!("created sprint \"{}\"", e.sprint.as_ref()?.name))
            }
            Payload::SprintUpdated(e) => {
                Some(format!("updated sprint \"{}\"", e.sprint.as_ref()?.name))
            }
            Payload::SprintDeleted(_) => Some("deleted a sprint".into()),
            Payload::ProjectUpdated(e) => {
                Some(format!("updated project {}", e.project.as_ref()?.key))
            }
            Payload::DependencyCreated(e) => {
                let d = e.dependency.as_ref()?;
                let verb = if d.dependency_type == proto::DependencyType::Blocks as i32 {
                    "blocks"
                } else {
                    "relates to"
                };
                Some(format!(
                    "linked {} {verb} {}",
                    item_key(&d.blocking_item_id)?,
                    item_key(&d.blocked_item_id)?
                ))
            }
            Payload::DependencyDeleted(e) => Some(format!(
                "unlinked {} and {}",
                item_key(&e.blocking_item_id)?,
                item_key(&e.blocked_item_id)?
            )),
            Payload::TimerStarted(e) => Some(format!(
                "started a timer on {}",
                item_key(&e.time_entry.as_ref()?.work_item_id)?
            )),
            Payload::TimerStopped(e) => {
                let t = e.time_entry.as_ref()?;
                Some(format!(
                    "stopped the timer on {} after {}",
                    item_key(&t.work_item_id)?,
                    duration(i64::from(t.duration_seconds.unwrap_or(0)))
                ))
            }
            Payload::TimeEntryCreated(e) => {
                let t = e.time_entry.as_ref()?;
                Some(format!(
                    "logged {} on {}",
                    duration(i64::from(t.duration_seconds.unwrap_or(0))),
                    item_key(&t.work_item_id)?
                ))
            }
            Payload::TimeEntryUpdated(e) => Some(format!(
                "edited time on {}",
                item_key(&e.time_entry.as_ref()?.work_item_id)?
            )),
            Payload::TimeEntryDeleted(e) => {
                Some(format!("deleted time on {}", item_key(&e.work_item_id)?))
            }
            _ => None,
        }
    }
}
