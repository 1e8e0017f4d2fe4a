//! Undo and redo of my accepted changes, and a deleted card brought back (see `board::undo`).
use super::*;

impl App {
    /// An accepted write of mine goes on the undo (or, for an undo, the redo) stack.
    pub(super) fn remember(&mut self, item_id: &str, done: &Write) {
        let Some(before) = done.sent_from.as_ref() else {
            return;
        };
        let change = Change {
            item_id: item_id.to_string(),
            before: undo::values_of(before, &done.req),
            after: undo::fields_of(&done.req),
        };
        match done.origin {
            Origin::Auto => {}
            Origin::Undo => self.redo.push(change),
            Origin::User | Origin::Redo => {
                if done.origin == Origin::User {
                    self.redo.clear();
                }
                self.undo.push(Entry::Change(Box::new(change)));
                if self.undo.len() > undo::DEPTH {
                    self.undo.remove(0);
                }
            }
        }
    }

    /// `u`: my last change undone (or my last deleted card back); Ctrl-R: the last undo redone.
    pub(super) fn undo_or_redo(&mut self, origin: Origin) {
        let entry = match origin {
            Origin::Redo => self.redo.pop().map(|c| Entry::Change(Box::new(c))),
            _ => self.undo.pop(),
        };
        let verb = if origin == Origin::Redo {
            "redo"
        } else {
            "undo"
        };
        let change = match entry {
            None => {
                self.say(format!("Nothing to {verb}"));
                return;
            }
            Some(Entry::Deleted(item)) => {
                self.restore(*item);
                return;
            }
            Some(Entry::Change(change)) => *change,
        };
        let Some(card) = self.card(&change.item_id).cloned() else {
            self.say(format!("Cannot {verb}: the card was deleted"));
            return;
        };
        let key = self.key_of(&card);
        // Refused when someone else changed those fields since.
        if !undo::holds(&card, &change.after) {
            self.say(format!(
                "Cannot {verb}: {key} was changed by someone else since"
            ));
            return;
        }
        if undo::is_empty(&change.before) {
            self.say(format!("Cannot {verb} that change of {key}"));
            return;
        }
        self.focus = Some(card.id.clone());
        let what = if origin == Origin::Redo {
            "Redo"
        } else {
            "Undo"
        };
        let write = Write {
            origin,
            ..Write::change(what, change.before)
        };
        self.write(&change.item_id, write);
        self.say(format!("{what}: {key}"));
    }

    /// A card I deleted, brought back by the server as it was: the same id and key, with its
    /// comments, links, time entries and history.
    pub(super) fn restore(&mut self, item: proto::WorkItem) {
        let req = proto::RestoreWorkItemRequest {
            work_item_id: item.id.clone(),
        };
        if let Some(id) = self.transmit("Undo delete", Payload::RestoreWorkItemRequest(req)) {
            self.pending.insert(id.clone(), "Undo delete".into());
            self.restores.insert(id, item);
        }
    }

    /// The answer to a restore: the card is back (the store took it, and what came with it,
    /// from the same answer).
    pub(super) fn on_restored(&mut self, old: proto::WorkItem, restored: &proto::WorkItem) {
        self.focus = Some(restored.id.clone());
        self.say(format!("Undo: {} is back", self.key_of(&old)));
    }
}
