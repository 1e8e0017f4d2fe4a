//! Working offline: my writes made while disconnected are queued (see `pm_client::offline`),
//! shown at once and marked pending, and replayed once the board has caught up; those the
//! server refuses wait in the conflict inbox (`I`) until I keep mine, keep theirs or edit.
use pm_client::offline::Replayed;

use super::writes::Write;
use super::*;

impl App {
    /// Takes over a queue (opened from its file): its pending writes show on the cards.
    pub fn set_offline(&mut self, queue: pm_client::offline::OfflineQueue) {
        self.offline = queue;
        self.refresh_intended();
    }

    /// The card as my queued writes leave it: what a new queued write is made on.
    fn offline_base(&self, item_id: &str) -> Option<proto::WorkItem> {
        let stored = self.replica.store.work_items.get(item_id)?;
        Some(
            self.offline
                .intended(stored)
                .unwrap_or_else(|| stored.clone()),
        )
    }

    /// Queues a write of mine to be sent once reconnected. A write decided on an earlier
    /// version (an edit of a text) keeps that version and the text it started from, so a
    /// change of the same text meanwhile is a conflict, never overwritten.
    pub(super) fn queue_offline(&mut self, item_id: &str, write: Write) {
        let Some(mut before) = self.offline_base(item_id) else {
            self.say(format!("{} not kept: the card is gone", write.what));
            return;
        };
        if let Some(base) = write.base {
            before.version = base;
        }
        match &write.started {
            Some((TextField::Title, started)) => before.title = started.clone(),
            Some((TextField::Description, started)) => {
                before.description = Some(started.clone()).filter(|d| !d.is_empty())
            }
            None => {}
        }
        if let Err(e) = self.offline.push(&before, &write.what, write.req) {
            self.say(format!(
                "{} kept in memory only: the offline queue cannot be saved ({e})",
                write.what
            ));
        }
    }

    /// The connection dropped: my writes in flight or waiting go to the offline queue, in
    /// order. Returns how many.
    pub(super) fn keep_writes_offline(&mut self) -> usize {
        let mut ids: Vec<String> = self.writes.keys().cloned().collect();
        ids.sort();
        let mut kept = 0;
        for id in ids {
            let Some(writes) = self.writes.remove(&id) else {
                continue;
            };
            for write in writes.in_flight.into_iter().chain(writes.queued) {
                self.queue_offline(&id, write);
                kept += 1;
            }
        }
        kept
    }

    /// Sends the next queued write once the board has caught up with everyone's changes.
    pub(super) fn replay(&mut self) {
        match &mut self.outbox {
            // Tests: into the outbox as soon as the link is up.
            Some(outbox) => {
                if self.link == Link::Connected {
                    if let Some((key, req)) = self.offline.next(&self.replica.store) {
                        outbox.push((key, Payload::UpdateWorkItemRequest(req)));
                    }
                }
            }
            None => {
                self.offline.pump(&self.handle, &self.replica);
            }
        }
    }

    /// The answer to a replayed write, if `msg` is one.
    pub(super) fn on_replayed(&mut self, msg: &WebSocketMessage) {
        match self.offline.on_message(msg, &self.replica.store) {
            Some(Replayed::Applied(_)) if self.offline.pending_len() == 0 => {
                self.say("Offline changes sent".into());
            }
            Some(Replayed::Refused) => {
                let Some(conflict) = self.offline.inbox().last() else {
                    return;
                };
                let key = self.key_of(&conflict.write.before);
                let text = format!(
                    "{} of {key} refused: {} · I: inbox",
                    conflict.write.what, conflict.message
                );
                self.say(text);
            }
            Some(Replayed::Deferred { message, .. }) => {
                self.say(format!(
                    "Offline changes wait (tried again in a few seconds): {message}"
                ));
            }
            _ => {}
        }
    }

    /// Opens the conflict inbox (or says it is empty).
    pub(super) fn open_inbox(&mut self) {
        if self.offline.inbox().is_empty() {
            self.say("The inbox is empty: no offline change met a conflict".into());
        } else {
            self.popup = Popup::Inbox { row: 0 };
        }
    }

    /// An edit of mine saved on the card of the inbox entry being edited resolves it.
    pub(super) fn resolve_by_edit(&mut self, item_id: &str) {
        let Some(key) = self.resolving.take() else {
            return;
        };
        let at = self
            .offline
            .inbox()
            .iter()
            .position(|c| c.write.key == key && c.write.item_id == item_id);
        if let Some(i) = at {
            self.offline.dismiss(i);
        }
    }

    pub(super) fn on_inbox_key(&mut self, key: KeyEvent, row: usize) -> Popup {
        let count = self.offline.inbox().len();
        let row = row.min(count.saturating_sub(1));
        let stay = |row: usize| Popup::Inbox { row };
        let after = |app: &App, row: usize| {
            let left = app.offline.inbox().len();
            if left == 0 {
                Popup::None
            } else {
                Popup::Inbox {
                    row: row.min(left - 1),
                }
            }
        };
        match key.code {
            KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('I') => Popup::None,
            KeyCode::Down | KeyCode::Char('j') => stay((row + 1).min(count.saturating_sub(1))),
            KeyCode::Up | KeyCode::Char('k') => stay(row.saturating_sub(1)),
            KeyCode::Char('m') => {
                match self.offline.keep_mine(row, &self.replica.store) {
                    Ok(_) => {
                        self.say("Keeping yours: sent again on the current version".into());
                        self.refresh_intended();
                    }
                    Err(why) => self.say(format!("Cannot keep yours: {why}")),
                }
                after(self, row)
            }
            KeyCode::Char('t') => {
                self.offline.dismiss(row);
                self.say("Kept theirs: your change is dropped".into());
                after(self, row)
            }
            KeyCode::Char('e') => self.edit_conflict(row).unwrap_or(stay(row)),
            _ => stay(row),
        }
    }

    /// Opens my value of an inbox entry in the title dialog or `$EDITOR`, on the card as it is
    /// now; the entry leaves the inbox once the edit is saved.
    fn edit_conflict(&mut self, row: usize) -> Option<Popup> {
        let conflict = self.offline.inbox().get(row)?.clone();
        let Some(card) = self
            .replica
            .store
            .work_items
            .get(&conflict.write.item_id)
            .cloned()
        else {
            self.say("The card is gone: t drops your change".into());
            return None;
        };
        let req = &conflict.write.req;
        if let Some(mine) = &req.title {
            self.resolving = Some(conflict.write.key.clone());
            return Some(Popup::EditTitle {
                item_id: card.id.clone(),
                title: TextInput::with_max(mine, TITLE_MAX),
                base: card.version,
                started: card.title.clone(),
            });
        }
        if let Some(mine) = &req.description {
            self.resolving = Some(conflict.write.key.clone());
            self.open_editor(&card, mine.clone());
            return Some(Popup::None);
        }
        self.say("Only a title or a description is edited: m keeps yours, t theirs".into());
        None
    }
}
