//! The import's sprints: into a live project, never moved to another one, and at most one
//! active sprint per project once they are all in.
use std::collections::BTreeSet;

use pm_shared::domain::EntityType;
use pm_shared::domain::{self, limits, SprintStatus};
use pm_shared::proto::{self, Payload};

use super::{decide, replaced, Counts, Importer, Outcome, Row, Seen, Write};
use crate::commands::{track, Action};
use crate::error::{AppError, AppResult};
use crate::store::rows::SprintRow;
use crate::store::{projects, sprints};
use crate::sync::SprintDto;

impl Importer<'_> {
    pub(super) async fn sprints(&mut self, rows: &[SprintDto]) -> AppResult<Counts> {
        let mut counts = Counts::default();
        let mut seen = Seen::default();
        let mut projects = BTreeSet::new();
        for (index, s) in rows.iter().enumerate() {
            let row = Row {
                list: "sprints",
                index,
                id: &s.id,
            };
            let mark = self.begin_row().await?;
            let result = match seen.id(&row) {
                Ok(id) => self.upsert_sprint_alone(&row, id, s).await,
                Err(e) => Err(e),
            };
            match self.end_row(mark, &row, result).await? {
                Some((outcome, project)) => {
                    counts.add(outcome);
                    projects.extend(project);
                }
                None => counts.add(Outcome::Skipped),
            }
        }
        // One active sprint per project, imported or not.
        for project in projects {
            let active = sprints::active_count(&mut self.conn, &project, None).await?;
            if active > 1 {
                let index = rows
                    .iter()
                    .position(|s| {
                        s.project_id.trim().eq_ignore_ascii_case(&project) && s.status == "active"
                    })
                    .unwrap_or(0);
                let row = Row {
                    list: "sprints",
                    index,
                    id: rows.get(index).map_or("", |s| s.id.as_str()),
                };
                return Err(row.err(
                    "status",
                    format!("project {project} would have {active} active sprints (at most one)"),
                ));
            }
        }
        Ok(counts)
    }

    /// [`Self::upsert_sprint`]; in tolerant mode a sprint that would make its project's second
    /// active sprint is refused on its own (strict mode checks the projects once all are in).
    async fn upsert_sprint_alone(
        &mut self,
        row: &Row<'_>,
        id: String,
        s: &SprintDto,
    ) -> AppResult<(Outcome, Option<String>)> {
        let (outcome, project) = self.upsert_sprint(row, id, s).await?;
        if let (true, Some(project)) = (self.tolerant(), &project) {
            let active = sprints::active_count(&mut self.conn, project, None).await?;
            if active > 1 {
                return Err(row.err(
                    "status",
                    format!("project {project} would have {active} active sprints (at most one)"),
                ));
            }
        }
        Ok((outcome, project))
    }

    /// Also answers the sprint's project when the sprint was written.
    async fn upsert_sprint(
        &mut self,
        row: &Row<'_>,
        id: String,
        s: &SprintDto,
    ) -> AppResult<(Outcome, Option<String>)> {
        let project_id = row.uuid("project_id", &s.project_id)?;
        let name = domain::required_text("name", &s.name, self.limits.sprint_name)
            .map_err(|e| row.rule(e))?;
        let goal = domain::optional_text("goal", s.goal.as_deref(), limits::SPRINT_GOAL_MAX)
            .map_err(|e| row.rule(e))?;
        if s.start_date >= s.end_date {
            return Err(row.err("end_date", "start_date must be before end_date"));
        }
        let status = SprintStatus::parse(&s.status).ok_or_else(|| {
            row.err(
                "status",
                format!(
                    "Invalid status: {}. Valid: {}",
                    s.status,
                    SprintStatus::choices()
                ),
            )
        })?;
        let mut new = SprintRow {
            id,
            project_id,
            name,
            goal,
            start_date: s.start_date,
            end_date: s.end_date,
            status: status.as_str().to_string(),
            version: row.int32("version", s.version, 1)?,
            created_at: s.created_at,
            updated_at: s.updated_at,
            created_by: row.uuid("created_by", &s.created_by)?,
            updated_by: row.uuid("updated_by", &s.updated_by)?,
            deleted_at: None,
        };
        if projects::project(&mut self.conn, &new.project_id)
            .await?
            .is_none()
        {
            return Err(row.err(
                "project_id",
                format!("project {} not found", new.project_id),
            ));
        }
        let old = sprints::sprint_any(&mut self.conn, &new.id).await?;
        if let Some(old) = &old {
            row.keep_owner(
                "project_id",
                "sprint",
                "project",
                &old.project_id,
                &new.project_id,
            )?;
        }
        let Some(write) = decide(
            old,
            new.updated_at,
            |o| o.updated_at,
            |o| o.deleted_at.is_some(),
        ) else {
            return Ok((Outcome::Skipped, None));
        };
        let mut changes = Vec::new();
        let action = match &write {
            Write::Insert => {
                sprints::insert(&mut self.conn, &new).await?;
                track(&mut changes, "name", None, Some(new.name.clone()));
                Action::Created
            }
            Write::Replace { old, revive } => {
                // Every client applies the change: its version is above theirs.
                new.version = new.version.max(old.version + 1);
                sprints::replace(&mut self.conn, &new).await?;
                track(
                    &mut changes,
                    "name",
                    Some(old.name.clone()),
                    Some(new.name.clone()),
                );
                track(&mut changes, "goal", old.goal.clone(), new.goal.clone());
                track(
                    &mut changes,
                    "start_date",
                    Some(old.start_date.to_string()),
                    Some(new.start_date.to_string()),
                );
                track(
                    &mut changes,
                    "end_date",
                    Some(old.end_date.to_string()),
                    Some(new.end_date.to_string()),
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
        let sprint = sprints::sprint(&mut self.conn, &new.id)
            .await?
            .ok_or_else(|| AppError::not_found("Sprint", &new.id))?
            .into_proto();
        let user_id = self.actor.user_id.clone();
        let event = match action {
            Action::Created => Payload::SprintCreated(proto::SprintCreated {
                sprint: Some(sprint),
                user_id,
            }),
            _ => Payload::SprintUpdated(proto::SprintUpdated {
                sprint: Some(sprint),
                changes: changes.clone(),
                user_id,
            }),
        };
        self.push(
            new.project_id.clone(),
            EntityType::Sprint,
            &new.id,
            action,
            changes,
            event,
        );
        Ok((write.outcome(), Some(new.project_id)))
    }
}
