//! The import's comments: on a live work item, never moved to another one.
use pm_shared::domain;
use pm_shared::domain::EntityType;
use pm_shared::proto::{self, Payload};

use super::{decide, replaced, Counts, Importer, Outcome, Row, Seen, Write};
use crate::commands::{track, Action};
use crate::error::{AppError, AppResult};
use crate::store::rows::CommentRow;
use crate::store::{comments, work_items};
use crate::sync::CommentDto;

impl Importer<'_> {
    pub(super) async fn comments(&mut self, rows: &[CommentDto]) -> AppResult<Counts> {
        let mut counts = Counts::default();
        let mut seen = Seen::default();
        for (index, c) in rows.iter().enumerate() {
            let row = Row {
                list: "comments",
                index,
                id: &c.id,
            };
            let mark = self.begin_row().await?;
            let result = match seen.id(&row) {
                Ok(id) => self.upsert_comment(&row, id, c).await,
                Err(e) => Err(e),
            };
            let outcome = self.end_row(mark, &row, result).await?;
            counts.add(outcome.unwrap_or(Outcome::Skipped));
        }
        Ok(counts)
    }

    async fn upsert_comment(
        &mut self,
        row: &Row<'_>,
        id: String,
        c: &CommentDto,
    ) -> AppResult<Outcome> {
        let work_item_id = row.uuid("work_item_id", &c.work_item_id)?;
        let content = domain::required_text("content", &c.content, self.limits.comment)
            .map_err(|e| row.rule(e))?;
        let new = CommentRow {
            id,
            work_item_id,
            content,
            created_at: c.created_at,
            updated_at: c.updated_at,
            created_by: row.uuid("created_by", &c.created_by)?,
            updated_by: row.uuid("updated_by", &c.updated_by)?,
            deleted_at: None,
        };
        let Some(project_id) =
            work_items::live_project_of(&mut self.conn, &new.work_item_id).await?
        else {
            return Err(row.err(
                "work_item_id",
                format!("work item {} not found", new.work_item_id),
            ));
        };
        let old = comments::comment_any(&mut self.conn, &new.id).await?;
        if let Some(old) = &old {
            row.keep_owner(
                "work_item_id",
                "comment",
                "work item",
                &old.work_item_id,
                &new.work_item_id,
            )?;
        }
        let Some(write) = decide(
            old,
            new.updated_at,
            |o| o.updated_at,
            |o| o.deleted_at.is_some(),
        ) else {
            return Ok(Outcome::Skipped);
        };
        let mut changes = Vec::new();
        let action = match &write {
            Write::Insert => {
                comments::insert(&mut self.conn, &new).await?;
                track(&mut changes, "content", None, Some(new.content.clone()));
                Action::Created
            }
            Write::Replace { old, revive } => {
                comments::replace(&mut self.conn, &new).await?;
                track(
                    &mut changes,
                    "content",
                    Some(old.content.clone()),
                    Some(new.content.clone()),
                );
                replaced(*revive)
            }
        };
        let comment = comments::comment(&mut self.conn, &new.id)
            .await?
            .ok_or_else(|| AppError::not_found("Comment", &new.id))?
            .into_proto();
        let user_id = self.actor.user_id.clone();
        let event = match action {
            Action::Created => Payload::CommentCreated(proto::CommentCreated {
                comment: Some(comment),
                user_id,
            }),
            _ => Payload::CommentUpdated(proto::CommentUpdated {
                comment: Some(comment),
                user_id,
            }),
        };
        self.push(
            project_id,
            EntityType::Comment,
            &new.id,
            action,
            changes,
            event,
        );
        Ok(write.outcome())
    }
}
