//! The import's dependencies. Links have no `updated_at` and are never updated: a known id or
//! an already linked pair is skipped; a new link keeps the command's rules (same project, the
//! per-item limits, no `blocks` cycle).
use pm_shared::domain::DependencyType;
use pm_shared::domain::EntityType;
use pm_shared::proto::{self, Payload};

use super::{Counts, Importer, Outcome, Row, Seen};
use crate::commands::{dependency, track, Action};
use crate::error::{AppError, AppResult};
use crate::store::rows::DependencyRow;
use crate::store::{dependencies, work_items};
use crate::sync::DependencyDto;

impl Importer<'_> {
    pub(super) async fn dependencies(&mut self, rows: &[DependencyDto]) -> AppResult<Counts> {
        let mut counts = Counts::default();
        let mut seen = Seen::default();
        for (index, d) in rows.iter().enumerate() {
            let row = Row {
                list: "dependencies",
                index,
                id: &d.id,
            };
            let mark = self.begin_row().await?;
            let result = match seen.id(&row) {
                Ok(id) => self.upsert_dependency(&row, id, d).await,
                Err(e) => Err(e),
            };
            let outcome = self.end_row(mark, &row, result).await?;
            counts.add(outcome.unwrap_or(Outcome::Skipped));
        }
        Ok(counts)
    }

    async fn upsert_dependency(
        &mut self,
        row: &Row<'_>,
        id: String,
        d: &DependencyDto,
    ) -> AppResult<Outcome> {
        let blocking = row.uuid("blocking_item_id", &d.blocking_item_id)?;
        let blocked = row.uuid("blocked_item_id", &d.blocked_item_id)?;
        if blocking == blocked {
            return Err(row.err("blocked_item_id", "Work item cannot block itself"));
        }
        let kind = DependencyType::parse(&d.dependency_type).ok_or_else(|| {
            row.err(
                "dependency_type",
                format!(
                    "Invalid dependency_type: {}. Valid: {}",
                    d.dependency_type,
                    DependencyType::choices()
                ),
            )
        })?;
        let new = DependencyRow {
            id,
            blocking_item_id: blocking,
            blocked_item_id: blocked,
            dependency_type: kind.as_str().to_string(),
            created_at: d.created_at,
            created_by: row.uuid("created_by", &d.created_by)?,
            deleted_at: None,
        };
        let Some(blocking_project) =
            work_items::live_project_of(&mut self.conn, &new.blocking_item_id).await?
        else {
            return Err(row.err(
                "blocking_item_id",
                format!("work item {} not found", new.blocking_item_id),
            ));
        };
        let Some(project_id) =
            work_items::live_project_of(&mut self.conn, &new.blocked_item_id).await?
        else {
            return Err(row.err(
                "blocked_item_id",
                format!("work item {} not found", new.blocked_item_id),
            ));
        };
        if blocking_project != project_id {
            return Err(row.err(
                "blocking_item_id",
                "Dependencies can only be created between items in the same project",
            ));
        }
        let known = dependencies::known_link(
            &mut self.conn,
            &new.id,
            &new.blocking_item_id,
            &new.blocked_item_id,
        )
        .await?;
        if known.is_some() {
            return Ok(Outcome::Skipped);
        }
        if let Some((field, message)) = dependency::link_refusal(
            &mut self.conn,
            &new.blocking_item_id,
            &new.blocked_item_id,
            kind,
        )
        .await?
        {
            return Err(row.err(field, message));
        }
        dependencies::insert(&mut self.conn, &new).await?;
        let dependency = dependencies::dependency(&mut self.conn, &new.id)
            .await?
            .ok_or_else(|| AppError::not_found("Dependency", &new.id))?
            .into_proto();
        let mut changes = Vec::new();
        track(
            &mut changes,
            "blocking_item_id",
            None,
            Some(new.blocking_item_id),
        );
        track(
            &mut changes,
            "blocked_item_id",
            None,
            Some(new.blocked_item_id),
        );
        track(
            &mut changes,
            "dependency_type",
            None,
            Some(kind.to_string()),
        );
        let event = Payload::DependencyCreated(proto::DependencyCreated {
            dependency: Some(dependency),
            user_id: self.actor.user_id.clone(),
        });
        self.push(
            project_id,
            EntityType::Dependency,
            &new.id,
            Action::Created,
            changes,
            event,
        );
        Ok(Outcome::Created)
    }
}
