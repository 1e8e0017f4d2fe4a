//! My writes to a card: one in flight at a time, the next sent on the version the answer left,
//! consecutive changes folded, the card shown as they will leave it; a conflict on other fields
//! goes again on the current version, a conflict on an edited text is shown with both texts.
use super::describe::first_line;
use super::editing::description_request;
use super::*;
pub(super) use pm_client::offline::{apply_fields, same_fields};

/// One write of mine to a card.
#[derive(Debug, Clone)]
pub(super) struct Write {
    /// For messages: "Priority", "Move", "Edit"…
    pub(super) what: String,
    /// The fields to change (`work_item_id` and `expected_version` are filled in when sent).
    pub(super) req: proto::UpdateWorkItemRequest,
    /// The version the change was based on, when it must not silently override what happened
    /// since (a title edit carries the version the edit started from); otherwise the version of
    /// my previous answered write, or the card's current one.
    pub(super) base: Option<i32>,
    /// For an edit of a text: which, and the text it started from (then a conflict on other
    /// fields is none).
    pub(super) started: Option<(TextField, String)>,
    /// The card as the board knew it when the write was sent: on a conflict, when none of the
    /// fields it writes changed since, the write goes again on the current version.
    pub(super) sent_from: Option<proto::WorkItem>,
    /// Conflicts already met and got over that way.
    pub(super) retries: u8,
    /// What its acceptance adds to the undo / redo stacks.
    pub(super) origin: Origin,
}

/// How often a write goes again on the current version after conflicts that did not touch its
/// fields (someone else keeps changing the card), before the user is told.
pub(super) const RETRIES: u8 = 3;

impl Write {
    /// An ordinary change: applied on whatever the card is when its turn comes.
    pub(super) fn change(what: &str, req: proto::UpdateWorkItemRequest) -> Self {
        Write {
            what: what.to_string(),
            req,
            base: None,
            started: None,
            sent_from: None,
            retries: 0,
            origin: Origin::User,
        }
    }

    /// A change that must be applied on version `base` (it was decided on that version).
    pub(super) fn on_version(what: &str, req: proto::UpdateWorkItemRequest, base: i32) -> Self {
        Write {
            base: Some(base),
            ..Write::change(what, req)
        }
    }

    /// An edit of a text that started from version `base`, where the text was `started`.
    pub(super) fn edit(field: TextField, text: String, base: i32, started: String) -> Self {
        let mut req = proto::UpdateWorkItemRequest::default();
        field.set(&mut req, text);
        Write {
            what: "Edit".into(),
            req,
            base: Some(base),
            started: Some((field, started)),
            sent_from: None,
            retries: 0,
            origin: Origin::User,
        }
    }
}

/// My writes to one card: at most one in flight, the others wait for its answer.
#[derive(Debug, Default)]
pub(super) struct CardWrites {
    pub(super) in_flight: Option<Write>,
    pub(super) queued: VecDeque<Write>,
}

/// Folds `later` into `earlier`: the later value of each field wins.
pub(super) fn fold_fields(
    earlier: &mut proto::UpdateWorkItemRequest,
    later: proto::UpdateWorkItemRequest,
) {
    macro_rules! take {
        ($($f:ident),*) => {$( if later.$f.is_some() { earlier.$f = later.$f; } )*};
    }
    take!(
        title,
        description,
        status,
        assignee_id,
        sprint_id,
        position,
        priority,
        story_points,
        item_type
    );
    // Points set and points cleared: the later one wins.
    if later.story_points.is_some() {
        earlier.clear_story_points = false;
    }
    if later.clear_story_points {
        earlier.story_points = None;
        earlier.clear_story_points = true;
    }
    if later.update_parent {
        earlier.update_parent = true;
        earlier.parent_id = later.parent_id;
    }
}

impl App {
    /// Changes a card: sent at once when no write of mine to it is in flight, else queued
    /// behind it (folded into the last queued change when that one is an ordinary change too)
    /// and sent with the version the previous answer gave. The card shows the result at once.
    pub(super) fn write(&mut self, item_id: &str, write: Write) {
        if write.started.is_some() {
            self.resolve_by_edit(item_id);
        }
        // Offline, or behind offline writes of mine to the card that are not sent yet: queued
        // (on disk) to be sent in order once reconnected.
        if self.link != Link::Connected || self.offline.is_pending(item_id) {
            self.queue_offline(item_id, write);
            self.refresh_intended();
            return;
        }
        let entry = self.writes.entry(item_id.to_string()).or_default();
        if entry.in_flight.is_none() {
            entry.queued.push_back(write);
            self.send_next(item_id, None);
        } else {
            match entry.queued.back_mut() {
                Some(last) if last.base.is_none() && write.base.is_none() => {
                    last.what = write.what.clone();
                    fold_fields(&mut last.req, write.req);
                }
                _ => entry.queued.push_back(write),
            }
        }
        self.refresh_intended();
    }

    /// Sends the next queued write of a card; `answered` is the version my previous write left.
    pub(super) fn send_next(&mut self, item_id: &str, answered: Option<i32>) {
        let Some(entry) = self.writes.get_mut(item_id) else {
            return;
        };
        let Some(mut next) = entry.queued.pop_front() else {
            if entry.in_flight.is_none() {
                self.writes.remove(item_id);
            }
            return;
        };
        // The card as my previous write left it, when its answer is newer than the store (the
        // event may come after the answer): what this write changes from, for undo.
        let stored = self.replica.store.work_items.get(item_id).cloned();
        let current = match (self.answered.remove(item_id), stored) {
            (Some(a), Some(s)) if a.version > s.version => Some(a),
            (_, s) => s,
        };
        next.sent_from = current.clone();
        let Some(version) = next.base.or(answered).or(current.map(|w| w.version)) else {
            // The card is gone.
            self.writes.remove(item_id);
            return;
        };
        next.req.work_item_id = item_id.to_string();
        next.req.expected_version = version;
        let what = next.what.clone();
        match self.transmit(&what, Payload::UpdateWorkItemRequest(next.req.clone())) {
            Some(id) => {
                self.write_ids.insert(id, item_id.to_string());
                if let Some(entry) = self.writes.get_mut(item_id) {
                    entry.in_flight = Some(next);
                }
            }
            // The link went down just now: this write and those behind it are kept for when it
            // is back.
            None => {
                let behind = self.writes.remove(item_id).map(|e| e.queued);
                self.say(format!("Not connected: {what} kept, sent once reconnected"));
                self.queue_offline(item_id, next);
                for write in behind.into_iter().flatten() {
                    self.queue_offline(item_id, write);
                }
            }
        }
    }

    /// The answer to one of my writes: send the next one on the version it left, or explain why
    /// it failed (and drop what was queued behind it, which was meant to follow it).
    pub(super) fn on_write_answer(&mut self, item_id: &str, msg: &WebSocketMessage) {
        let done = self
            .writes
            .get_mut(item_id)
            .and_then(|e| e.in_flight.take());
        let Some(done) = done else { return };
        match &msg.payload {
            Some(Payload::Error(e)) => {
                if e.code == "CONFLICT" && done.started.is_some() {
                    self.on_edit_conflict(item_id, done);
                    return;
                }
                // Someone else changed other fields of the card in between: my change still
                // means what it meant, so it goes again on the current version.
                let current = self.replica.store.work_items.get(item_id).cloned();
                if let (true, Some(before), Some(now)) = (
                    e.code == "CONFLICT" && done.base.is_none() && done.retries < RETRIES,
                    done.sent_from.as_ref(),
                    current,
                ) {
                    if same_fields(before, &now, &done.req) {
                        let again = Write {
                            retries: done.retries + 1,
                            ..done
                        };
                        if let Some(entry) = self.writes.get_mut(item_id) {
                            entry.queued.push_front(again);
                        }
                        self.send_next(item_id, Some(now.version));
                        return;
                    }
                }
                self.writes.remove(item_id);
                self.say(format!("{} failed: {}", done.what, e.message));
                // A refused edit of a text opens again with the text, never lost.
                let field = done.started.as_ref().map(|(f, _)| *f);
                let mine = field.and_then(|f| f.get(&done.req)).cloned();
                let card = self.replica.store.work_items.get(item_id);
                match (field, mine, card) {
                    (Some(TextField::Title), Some(mine), Some(card)) => {
                        let popup = Popup::EditTitle {
                            item_id: item_id.to_string(),
                            title: TextInput::with_max(&mine, TITLE_MAX),
                            base: card.version,
                            started: card.title.clone(),
                        };
                        self.show(popup);
                    }
                    (Some(TextField::Description), Some(mine), Some(card)) => {
                        let request = description_request(card, mine);
                        self.show(Popup::Unsaved {
                            request,
                            reason: e.message.clone(),
                        })
                    }
                    _ => {}
                }
            }
            Some(Payload::WorkItemUpdated(e)) => {
                self.remember(item_id, &done);
                if let Some(w) = &e.work_item {
                    self.answered.insert(item_id.to_string(), w.clone());
                }
                let version = e.work_item.as_ref().map(|w| w.version);
                self.send_next(item_id, version);
            }
            _ => self.send_next(item_id, None),
        }
    }

    /// My edit of a text was refused because the card changed since the edit started. When
    /// that text did not change, the edit goes again on the current version; otherwise both
    /// texts are shown and the user decides. Writes queued behind the edit go on either way.
    pub(super) fn on_edit_conflict(&mut self, item_id: &str, done: Write) {
        let Some((field, started)) = done.started.clone() else {
            return;
        };
        let mine = field.get(&done.req).cloned().unwrap_or_default();
        let Some(current) = self.replica.store.work_items.get(item_id).cloned() else {
            self.writes.remove(item_id);
            self.say(format!(
                "Edit failed: the card was deleted (your text: {})",
                first_line(&mine, 60)
            ));
            return;
        };
        let theirs = field.value(&current);
        if started == theirs {
            let again = Write::edit(field, mine, current.version, theirs);
            if let Some(entry) = self.writes.get_mut(item_id) {
                entry.queued.push_front(again);
            }
            self.send_next(item_id, None);
            return;
        }
        self.send_next(item_id, None);
        self.show(Popup::Conflict {
            item_id: item_id.to_string(),
            field,
            mine,
            theirs,
        });
    }

    /// Recomputes how each card with writes of mine pending will look.
    pub(super) fn refresh_intended(&mut self) {
        // Nothing pending before or now (my writes in flight, or queued offline): the lanes
        // need not be computed again.
        if self.intended.is_empty() && self.writes.is_empty() && self.offline.pending_len() == 0 {
            return;
        }
        self.intended_revision += 1;
        self.intended.clear();
        for w in self.offline.pending() {
            if let Some(stored) = self.replica.store.work_items.get(&w.item_id) {
                let item = self
                    .intended
                    .entry(w.item_id.clone())
                    .or_insert(stored.clone());
                apply_fields(item, &w.req);
            }
        }
        for (id, writes) in &self.writes {
            let Some(item) = self.replica.store.work_items.get(id) else {
                continue;
            };
            let mut item = self.intended.get(id).unwrap_or(item).clone();
            for w in writes.in_flight.iter().chain(writes.queued.iter()) {
                apply_fields(&mut item, &w.req);
            }
            self.intended.insert(id.clone(), item);
        }
    }
}
