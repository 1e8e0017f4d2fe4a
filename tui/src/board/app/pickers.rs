//! The pickers (assignee, sprint, parent, links, my comments) and the sprints popup's actions.
use super::*;

/// How far a sprint is: its cards and their points, done and all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SprintProgress {
    pub cards_done: usize,
    pub cards: usize,
    pub points_done: i64,
    pub points: i64,
}

impl std::fmt::Display for SprintProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{} cards · {}/{} points",
            self.cards_done, self.cards, self.points_done, self.points
        )
    }
}

impl App {
    /// The progress of the sprint `id` (every card in it, whatever the board's find).
    pub fn sprint_progress(&self, id: &str) -> SprintProgress {
        let mut p = SprintProgress {
            cards_done: 0,
            cards: 0,
            points_done: 0,
            points: 0,
        };
        let Some(project) = self.replica.project() else {
            return p;
        };
        for w in self
            .replica
            .store
            .items_of(project)
            .filter(|w| w.sprint_id.as_deref() == Some(id))
        {
            let points = i64::from(w.story_points.unwrap_or(0));
            p.cards += 1;
            p.points += points;
            if Status::parse(&w.status) == Some(Status::Done) {
                p.cards_done += 1;
                p.points_done += points;
            }
        }
        p
    }

    /// The open project's sprints, by start date.
    pub fn sprints(&self) -> Vec<proto::Sprint> {
        let Some(project) = self.replica.project() else {
            return Vec::new();
        };
        let mut sprints: Vec<proto::Sprint> = self
            .replica
            .store
            .sprints
            .values()
            .filter(|s| s.project_id == project)
            .cloned()
            .collect();
        sprints.sort_by_key(|s| (s.start_date, s.id.clone()));
        sprints
    }

    /// A new sprint named `name`, from today (UTC) for two weeks.
    pub(super) fn create_sprint(&mut self, name: String) {
        let Some(project) = self.replica.project().map(str::to_string) else {
            return;
        };
        let today = self.clock - self.clock.rem_euclid(86_400);
        let req = proto::CreateSprintRequest {
            project_id: project,
            name,
            goal: None,
            start_date: today,
            end_date: today + SPRINT_DAYS * 86_400,
        };
        self.send("New sprint", Payload::CreateSprintRequest(req));
    }

    /// Starts (or completes) a sprint, on the version the board knows.
    pub(super) fn set_sprint_status(&mut self, sprint: &proto::Sprint, target: SprintStatus) {
        let current = SprintStatus::from_proto(sprint.status);
        if current.is_some_and(|c| !c.can_become(target)) {
            let from = current.map_or("?", |c| c.label());
            self.say(format!(
                "Sprint \"{}\" is {from}: it cannot become {}",
                sprint.name,
                target.label()
            ));
            return;
        }
        let what = if target == SprintStatus::Active {
            "Start sprint"
        } else {
            "Complete sprint"
        };
        let req = proto::UpdateSprintRequest {
            sprint_id: sprint.id.clone(),
            expected_version: sprint.version,
            status: Some(target.to_proto() as i32),
            ..Default::default()
        };
        self.send(what, Payload::UpdateSprintRequest(req));
    }

    pub(super) fn cycle_sprint(&mut self) {
        let Some(project) = self.replica.project() else {
            return;
        };
        let mut sprints: Vec<&proto::Sprint> = self
            .replica
            .store
            .sprints
            .values()
            .filter(|s| s.project_id == project)
            .collect();
        sprints.sort_by_key(|s| (s.start_date, s.id.clone()));
        let next = match &self.sprint {
            None => sprints.first().map(|s| s.id.clone()),
            Some(cur) => {
                let i = sprints.iter().position(|s| &s.id == cur);
                i.and_then(|i| sprints.get(i + 1)).map(|s| s.id.clone())
            }
        };
        self.sprint = next;
        self.row = 0;
    }

    /// What a picker offers for a card (see [`pick::choices`]).
    pub fn choices(&self, kind: PickKind, item_id: &str, filter: &str) -> Vec<Choice> {
        match self.card(item_id) {
            Some(item) => pick::choices(self, kind, item, filter),
            None => Vec::new(),
        }
    }

    /// `a` / `S` / `P`: the picker, on the card's current value.
    pub(super) fn open_pick(&mut self, kind: PickKind) {
        let Some(id) = self.selected().map(|w| w.id.clone()) else {
            return;
        };
        if let Some(popup) = self.pick_popup(kind, &id, false) {
            self.popup = popup;
        }
    }

    /// A picker for the card `item_id`, on its current value (None, with a word why, when the
    /// card has nothing to pick).
    pub(super) fn pick_popup(
        &mut self,
        kind: PickKind,
        item_id: &str,
        from_detail: bool,
    ) -> Option<Popup> {
        let item = self.card(item_id)?;
        let no_parent = ItemType::from_proto(item.item_type)
            .and_then(ItemType::allowed_parent)
            .is_none();
        if kind == PickKind::Parent && no_parent {
            self.say("An epic has no parent".into());
            return None;
        }
        let current = kind.current(item);
        let item_id = item.id.clone();
        let choices = self.choices(kind, &item_id, "");
        if choices.is_empty() && !kind.is_field() {
            self.say(match kind {
                PickKind::Unlink => "This card has no links".into(),
                PickKind::EditComment | PickKind::DeleteComment => {
                    "You have no comments on this card".into()
                }
                _ => "Nothing to pick".into(),
            });
            return None;
        }
        let row = choices
            .iter()
            .position(|c| kind.is_field() && c.value == current)
            .unwrap_or(0);
        Some(Popup::Pick {
            item_id,
            kind,
            filter: TextInput::new(""),
            row,
            from_detail,
        })
    }

    /// Sets the picked field of the card to `value` (None clears it) unless it already is, or
    /// adds / removes the picked link.
    pub(super) fn pick(&mut self, kind: PickKind, item_id: &str, value: Option<String>) {
        let Some(card) = self.card(item_id) else {
            return;
        };
        if kind.is_field() && kind.current(card) == value {
            return;
        }
        match kind.action(item_id, value) {
            pick::Action::Update(req) => self.write(item_id, Write::change(kind.what(), req)),
            pick::Action::Send(payload) => self.send(kind.what(), payload),
            pick::Action::EditComment(comment_id) => self.edit_comment(&comment_id),
        }
    }
}
