//! The import's time entries: on a live work item, never moved to another item or user. The
//! duration is recomputed from the (clamped) times; the document's own is never read.
use pm_shared::domain::EntityType;
use pm_shared::domain::{self, limits};
use pm_shared::proto::{self, Payload};

use super::{decide, replaced, Counts, Importer, Outcome, Row, Seen, Write};
use crate::commands::{track, Action};
use crate::error::{AppError, AppResult};
use crate::store::rows::TimeEntryRow;
use crate::store::{time_entries, work_items};
use crate::sync::TimeEntryDto;

impl Importer<'_> {
    pub(super) async fn time_entries(&mut self, rows: &[TimeEntryDto]) -> AppResult<Counts> {
        let mut counts = Counts::default();
        let mut seen = Seen::default();
        for (index, t) in rows.iter().enumerate() {
            let row = Row {
                list: "time_entries",
                index,
                id: &t.id,
            };
            let mark = self.begin_row().await?;
            let result = match seen.id(&row) {
                Ok(id) => self.upsert_time_entry(&row, id, t).await,
                Err(e) => Err(e),
            };
            let outcome = self.end_row(mark, &row, result).await?;
            counts.add(outcome.unwrap_or(Outcome::Skipped));
        }
        Ok(counts)
    }

    async fn upsert_time_entry(
        &mut self,
        row: &Row<'_>,
        id: String,
        t: &TimeEntryDto,
    ) -> AppResult<Outcome> {
        let work_item_id = row.uuid("work_item_id", &t.work_item_id)?;
        let user_id = row.uuid("user_id", &t.user_id)?;
        let duration_seconds = match t.ended_at {
            Some(end) if end < t.started_at => {
                return Err(row.err("ended_at", "ended_at must not be before started_at"))
            }
            Some(end) => Some(domain::duration_clamped(t.started_at, end)),
            None => None,
        };
        let description = domain::optional_text(
            "description",
            t.description.as_deref(),
            limits::TIME_ENTRY_DESCRIPTION_MAX,
        )
        .map_err(|e| row.rule(e))?;
        let new = TimeEntryRow {
            id,
            work_item_id,
            user_id,
            started_at: t.started_at,
            ended_at: t.ended_at,
            duration_seconds,
            description,
            created_at: t.created_at,
            updated_at: t.updated_at,
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
        let old = time_entries::time_entry_any(&mut self.conn, &new.id).await?;
        if let Some(old) = &old {
            if old.work_item_id != new.work_item_id || old.user_id != new.user_id {
                return Err(row.err(
                    "work_item_id",
                    "an import cannot move a time entry to another work item or user",
                ));
            }
        }
        let Some(write) = decide(
            old,
            new.updated_at,
            |o| o.updated_at,
            |o| o.deleted_at.is_some(),
        ) else {
            return Ok(Outcome::Skipped);
        };
        let num = |v: Option<i64>| v.map(|x| x.to_string());
        let mut changes = Vec::new();
        let action = match &write {
            Write::Insert => {
                time_entries::insert(&mut self.conn, &new).await?;
                track(
                    &mut changes,
                    "work_item_id",
                    None,
                    Some(new.work_item_id.clone()),
                );
                track(&mut changes, "started_at", None, num(Some(new.started_at)));
                track(&mut changes, "ended_at", None, num(new.ended_at));
                track(&mut changes, "description", None, new.description.clone());
                Action::Created
            }
            Write::Replace { old, revive } => {
                time_entries::replace(&mut self.conn, &new).await?;
                track(
                    &mut changes,
                    "started_at",
                    num(Some(old.started_at)),
                    num(Some(new.started_at)),
                );
                track(
                    &mut changes,
                    "ended_at",
                    num(old.ended_at),
                    num(new.ended_at),
                );
                track(
                    &mut changes,
                    "duration_seconds",
                    num(old.duration_seconds),
                    num(new.duration_seconds),
                );
                track(
                    &mut changes,
                    "description",
                    old.description.clone(),
                    new.description.clone(),
                );
                replaced(*revive)
            }
        };
        let entry = time_entries::time_entry(&mut self.conn, &new.id)
            .await?
            .ok_or_else(|| AppError::not_found("Time entry", &new.id))?
            .into_proto();
        let user = self.actor.user_id.clone();
        let event = match action {
            Action::Created => Payload::TimeEntryCreated(proto::TimeEntryCreated {
                time_entry: Some(entry),
                user_id: user,
            }),
            _ => Payload::TimeEntryUpdated(proto::TimeEntryUpdated {
                time_entry: Some(entry),
                user_id: user,
            }),
        };
        self.push(
            project_id,
            EntityType::TimeEntry,
            &new.id,
            action,
            changes,
            event,
        );
        Ok(write.outcome())
    }
}
