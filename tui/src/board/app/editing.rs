//! Texts edited in `$EDITOR`: a description (on the version it started from), a new comment,
//! one of my comments; what cannot be saved is kept in front of the user.
use super::*;

/// `$EDITOR` on a card's description, based on the card as it is.
pub(super) fn description_request(card: &proto::WorkItem, text: String) -> EditorRequest {
    EditorRequest {
        item_id: card.id.clone(),
        text,
        target: EditorTarget::Description {
            base: card.version,
            started: TextField::Description.value(card),
        },
    }
}

impl App {
    /// Asks the runtime for `$EDITOR` on the card's description, opening with `text`; the
    /// edit is based on the card as it is now.
    pub(super) fn open_editor(&mut self, card: &proto::WorkItem, text: String) {
        self.editor = Some(description_request(card, text));
    }

    /// `E`: the selected card's description in `$EDITOR`.
    pub(super) fn edit_description(&mut self, item_id: &str) {
        // Based on the card as the server last said (my pending writes do not touch it).
        let Some(card) = self.replica.store.work_items.get(item_id).cloned() else {
            return;
        };
        let text = self
            .card(item_id)
            .map(|c| TextField::Description.value(c))
            .unwrap_or_default();
        self.open_editor(&card, text);
    }

    /// The editor closed: save the text (a description on the version the edit started
    /// from), or keep it in front of the user when it cannot be saved.
    pub(super) fn on_edited(&mut self, request: EditorRequest, result: Result<String, String>) {
        let text = match result {
            Ok(text) => text,
            Err(e) => {
                self.say(format!("Editor failed: {e}"));
                return;
            }
        };
        // Editors end a file with a line break; the text does not need it.
        let text = text.trim_end_matches(['\n', '\r']).to_string();
        let what = request.target.what();
        let (unchanged, max) = match &request.target {
            EditorTarget::Description { started, .. } => (text == *started, DESCRIPTION_MAX),
            EditorTarget::NewComment => (text.trim().is_empty(), COMMENT_MAX),
            EditorTarget::Comment { started, .. } => (text.trim() == started.trim(), COMMENT_MAX),
        };
        if unchanged {
            self.say(format!("Nothing to save: the {what} is unchanged or empty"));
            return;
        }
        let count = text.chars().count();
        let reason = if count > max {
            Some(format!("it is too long ({count}/{max} characters)"))
        } else if self.outbox.is_none()
            && self.handle.state() != LinkState::Connected
            // A description is queued offline (see App::write); a comment needs the server.
            && !matches!(request.target, EditorTarget::Description { .. })
        {
            Some("the board is not connected".to_string())
        } else {
            None
        };
        if let Some(reason) = reason {
            let request = EditorRequest { text, ..request };
            self.show(Popup::Unsaved { request, reason });
            return;
        }
        match request.target {
            EditorTarget::Description { base, started } => {
                let write = Write::edit(TextField::Description, text, base, started);
                self.write(&request.item_id, write);
            }
            EditorTarget::NewComment => {
                let req = proto::CreateCommentRequest {
                    work_item_id: request.item_id,
                    content: text.trim().to_string(),
                };
                self.send("Comment", Payload::CreateCommentRequest(req));
            }
            EditorTarget::Comment { comment_id, .. } => {
                let req = proto::UpdateCommentRequest {
                    comment_id,
                    content: text.trim().to_string(),
                };
                self.send("Edit comment", Payload::UpdateCommentRequest(req));
            }
        }
    }

    /// `M` (through the picker): one of my comments in `$EDITOR`.
    pub(super) fn edit_comment(&mut self, comment_id: &str) {
        let Some(comment) = self.replica.store.comments.get(comment_id) else {
            return;
        };
        self.editor = Some(EditorRequest {
            item_id: comment.work_item_id.clone(),
            text: comment.content.clone(),
            target: EditorTarget::Comment {
                comment_id: comment.id.clone(),
                started: comment.content.clone(),
            },
        });
    }
}
