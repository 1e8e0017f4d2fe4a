//! The import's projects. A project's event is built after every other row (see
//! [`Importer::project_changes`]): it carries the item counter as the import leaves it.
use pm_shared::domain::EntityType;
use pm_shared::domain::{self, ProjectStatus};
use pm_shared::proto::{self, Payload};

use super::{decide, replaced, Counts, Importer, Outcome, Row, Seen, Write};
use crate::commands::{track, Action, Change};
use crate::error::{AppError, AppResult};
use crate::store::rows::ProjectRow;
use crate::store::{members, projects};
use crate::sync::ProjectDto;

impl Importer<'_> {
    pub(super) async fn projects(&mut self, rows: &[ProjectDto]) -> AppResult<Counts> {
        let mut counts = Counts::default();
        let mut seen = Seen::default();
        for (index, p) in rows.iter().enumerate() {
            let row = Row {
                list: "projects",
                index,
                id: &p.id,
            };
            let mark = self.begin_row().await?;
            let result = match seen.id(&row) {
                Ok(id) => self.upsert_project(&row, id, p).await,
                Err(e) => Err(e),
            };
            let outcome = self.end_row(mark, &row, result).await?;
            counts.add(outcome.unwrap_or(Outcome::Skipped));
        }
        Ok(counts)
    }

    async fn upsert_project(
        &mut self,
        row: &Row<'_>,
        id: String,
        p: &ProjectDto,
    ) -> AppResult<Outcome> {
        let key = domain::project_key(&p.key).map_err(|e| row.rule(e))?;
        let title =
            domain::required_text("title", &p.title, self.limits.title).map_err(|e| row.rule(e))?;
        let description = match p.description.as_deref() {
            // The reference stores an empty description as it is and exports it so: it comes
            // back as "", not as null (a blank one is stored empty).
            Some(d) if d.trim().is_empty() => Some(String::new()),
            d => domain::optional_text("description", d, self.limits.description)
                .map_err(|e| row.rule(e))?,
        };
        let status = ProjectStatus::parse(&p.status).ok_or_else(|| {
            row.err(
                "status",
                format!(
                    "Invalid status: {}. Valid: {}",
                    p.status,
                    ProjectStatus::choices()
                ),
            )
        })?;
        let mut new = ProjectRow {
            id,
            title,
            description,
            key,
            status: status.as_str().to_string(),
            version: row.int32("version", p.version, 1)?,
            next_work_item_number: p.next_work_item_number.clamp(1, i64::from(i32::MAX)),
            created_at: p.created_at,
            updated_at: p.updated_at,
            created_by: row.uuid("created_by", &p.created_by)?,
            updated_by: row.uuid("updated_by", &p.updated_by)?,
            deleted_at: None,
        };

        let old = projects::project_any(&mut self.conn, &new.id).await?;
        let Some(write) = decide(
            old,
            new.updated_at,
            |o| o.updated_at,
            |o| o.deleted_at.is_some(),
        ) else {
            return Ok(Outcome::Skipped);
        };
        if projects::key_holder(&mut self.conn, &new.key, &new.id)
            .await?
            .is_some()
        {
            // Not which project: the importer may not be allowed to know it exists.
            return Err(row.err(
                "key",
                format!(
                    "Project key '{}' is already used by another project",
                    new.key
                ),
            ));
        }
        let mut changes = Vec::new();
        let action = match &write {
            Write::Insert => {
                projects::insert(&mut self.conn, &new).await?;
                // Whoever imports a project administers it, and nobody else: the document's
                // `created_by` is only informational (see the module comment).
                members::add_first_admin(
                    &mut self.conn,
                    &new.id,
                    &self.actor.user_id,
                    pm_shared::now_secs(),
                )
                .await?;
                track(&mut changes, "title", None, Some(new.title.clone()));
                track(&mut changes, "key", None, Some(new.key.clone()));
                track(&mut changes, "description", None, new.description.clone());
                Action::Created
            }
            Write::Replace { old, revive } => {
                // Every client applies the change: its version is above theirs.
                new.version = new.version.max(old.version + 1);
                projects::replace(&mut self.conn, &new).await?;
                track(
                    &mut changes,
                    "title",
                    Some(old.title.clone()),
                    Some(new.title.clone()),
                );
                track(
                    &mut changes,
                    "key",
                    Some(old.key.clone()),
                    Some(new.key.clone()),
                );
                track(
                    &mut changes,
                    "description",
                    old.description.clone(),
                    new.description.clone(),
                );
                track(
                    &mut changes,
                    "status",
                    Some(old.status.clone()),
                    Some(new.status.clone()),
                );
                replaced(*revive)
            }
        };
        self.project_events.push((new.id, action, changes));
        Ok(write.outcome())
    }

    /// Project events carry the final item counter, so they are built last.
    pub(super) async fn project_changes(&mut self) -> AppResult<Vec<Change>> {
        let mut out = Vec::new();
        for (id, action, changes) in std::mem::take(&mut self.project_events) {
            let project = projects::project(&mut self.conn, &id)
                .await?
                .ok_or_else(|| AppError::not_found("Project", &id))?
                .into_proto();
            let user_id = self.actor.user_id.clone();
            let event = match action {
                Action::Created => Payload::ProjectCreated(proto::ProjectCreated {
                    project: Some(project),
                    user_id,
                }),
                _ => Payload::ProjectUpdated(proto::ProjectUpdated {
                    project: Some(project),
                    changes: changes.clone(),
                    user_id,
                }),
            };
            out.push(Change {
                project_id: id.clone(),
                lifecycle: true,
                entity_type: EntityType::Project,
                entity_id: id,
                action,
                changes,
                event,
            });
        }
        Ok(out)
    }
}
