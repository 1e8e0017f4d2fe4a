//! Database rows and their protobuf form. The protobuf entity is the one representation the
//! rest of the server passes around; REST DTOs are derived from it.
use pm_shared::domain::{ItemType, ProjectStatus, SprintStatus};
use pm_shared::proto;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProjectRow {
    pub id: String,
    pub title: String,
    pub description: Option<String>,
    pub key: String,
    pub status: String,
    pub version: i64,
    pub next_work_item_number: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub created_by: String,
    pub updated_by: String,
    pub deleted_at: Option<i64>,
}

impl ProjectRow {
    pub fn into_proto(self) -> proto::Project {
        let status = ProjectStatus::parse(&self.status).unwrap_or(ProjectStatus::Active);
        proto::Project {
            id: self.id,
            title: self.title,
            description: self.description,
            key: self.key,
            status: status.to_proto() as i32,
            version: self.version as i32,
            created_at: self.created_at,
            updated_at: self.updated_at,
            created_by: self.created_by,
            updated_by: self.updated_by,
            deleted_at: self.deleted_at,
            next_work_item_number: self.next_work_item_number as i32,
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WorkItemRow {
    pub id: String,
    pub item_type: String,
    pub parent_id: Option<String>,
    pub project_id: String,
    pub position: i64,
    pub title: String,
    pub description: Option<String>,
    pub status: String,
    pub priority: String,
    pub story_points: Option<i64>,
    pub assignee_id: Option<String>,
    pub sprint_id: Option<String>,
    pub item_number: i64,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub created_by: String,
    pub updated_by: String,
    pub deleted_at: Option<i64>,
}

impl WorkItemRow {
    /// The protobuf item without hierarchy lists (see `store::hierarchy`).
    pub fn into_proto(self) -> proto::WorkItem {
        let item_type = ItemType::parse(&self.item_type)
            .map(|t| t.to_proto())
            .unwrap_or_default();
        proto::WorkItem {
            id: self.id,
            item_type: item_type as i32,
            parent_id: self.parent_id,
            project_id: self.project_id,
            position: self.position as i32,
            title: self.title,
            description: self.description,
            status: self.status,
            assignee_id: self.assignee_id,
            sprint_id: self.sprint_id,
            created_at: self.created_at,
            updated_at: self.updated_at,
            created_by: self.created_by,
            updated_by: self.updated_by,
            deleted_at: self.deleted_at,
            priority: self.priority,
            story_points: self.story_points.map(|p| p as i32),
            version: self.version as i32,
            item_number: self.item_number as i32,
            ancestor_ids: Vec::new(),
            descendant_ids: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SprintRow {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub goal: Option<String>,
    pub start_date: i64,
    pub end_date: i64,
    pub status: String,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub created_by: String,
    pub updated_by: String,
    pub deleted_at: Option<i64>,
}

impl SprintRow {
    pub fn into_proto(self) -> proto::Sprint {
        let status = SprintStatus::parse(&self.status).unwrap_or(SprintStatus::Planned);
        proto::Sprint {
            id: self.id,
            project_id: self.project_id,
            name: self.name,
            goal: self.goal,
            start_date: self.start_date,
            end_date: self.end_date,
            status: status.to_proto() as i32,
            created_at: self.created_at,
            updated_at: self.updated_at,
            created_by: self.created_by,
            updated_by: self.updated_by,
            deleted_at: self.deleted_at,
            version: self.version as i32,
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CommentRow {
    pub id: String,
    pub work_item_id: String,
    pub content: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub created_by: String,
    pub updated_by: String,
    pub deleted_at: Option<i64>,
}

impl CommentRow {
    pub fn into_proto(self) -> proto::Comment {
        proto::Comment {
            id: self.id,
            work_item_id: self.work_item_id,
            content: self.content,
            created_at: self.created_at,
            updated_at: self.updated_at,
            created_by: self.created_by,
            updated_by: self.updated_by,
            deleted_at: self.deleted_at,
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ActivityRow {
    pub id: String,
    pub entity_type: String,
    pub entity_id: String,
    pub action: String,
    pub changes: String,
    pub user_id: String,
    pub timestamp: i64,
    pub comment: Option<String>,
}

#[derive(serde::Serialize, serde::Deserialize)]
pub struct StoredChange {
    pub field_name: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
}

impl ActivityRow {
    pub fn into_proto(self) -> proto::ActivityLogEntry {
        let changes: Vec<proto::FieldChange> =
            serde_json::from_str::<Vec<StoredChange>>(&self.changes)
                .unwrap_or_default()
                .into_iter()
                .map(|c| proto::FieldChange {
                    field_name: c.field_name,
                    old_value: c.old_value,
                    new_value: c.new_value,
                })
                .collect();
        activity_entry(
            self.id,
            self.entity_type,
            self.entity_id,
            self.action,
            self.user_id,
            self.timestamp,
            self.comment,
            changes,
        )
    }
}

/// Builds an activity entry. With exactly one changed field the reference's single
/// field_name/old_value/new_value are filled in too, so older clients show something useful.
#[allow(clippy::too_many_arguments)]
pub fn activity_entry(
    id: String,
    entity_type: String,
    entity_id: String,
    action: String,
    user_id: String,
    timestamp: i64,
    comment: Option<String>,
    changes: Vec<proto::FieldChange>,
) -> proto::ActivityLogEntry {
    let single = (changes.len() == 1).then(|| changes[0].clone());
    proto::ActivityLogEntry {
        id,
        entity_type,
        entity_id,
        action,
        field_name: single.as_ref().map(|c| c.field_name.clone()),
        old_value: single.as_ref().and_then(|c| c.old_value.clone()),
        new_value: single.and_then(|c| c.new_value),
        user_id,
        timestamp,
        comment,
        changes,
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TimeEntryRow {
    pub id: String,
    pub work_item_id: String,
    pub user_id: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub duration_seconds: Option<i64>,
    pub description: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
}

impl TimeEntryRow {
    pub fn into_proto(self) -> proto::TimeEntry {
        proto::TimeEntry {
            id: self.id,
            work_item_id: self.work_item_id,
            user_id: self.user_id,
            started_at: self.started_at,
            ended_at: self.ended_at,
            duration_seconds: self
                .duration_seconds
                .map(|d| d.clamp(0, i64::from(i32::MAX)) as i32),
            description: self.description,
            created_at: self.created_at,
            updated_at: self.updated_at,
            deleted_at: self.deleted_at,
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DependencyRow {
    pub id: String,
    pub blocking_item_id: String,
    pub blocked_item_id: String,
    pub dependency_type: String,
    pub created_at: i64,
    pub created_by: String,
    pub deleted_at: Option<i64>,
}

impl DependencyRow {
    pub fn into_proto(self) -> proto::Dependency {
        let kind = pm_shared::domain::DependencyType::parse(&self.dependency_type)
            .map(|t| t.to_proto())
            .unwrap_or_default();
        proto::Dependency {
            id: self.id,
            blocking_item_id: self.blocking_item_id,
            blocked_item_id: self.blocked_item_id,
            dependency_type: kind as i32,
            created_at: self.created_at,
            created_by: self.created_by,
            deleted_at: self.deleted_at,
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LlmContextRow {
    pub id: String,
    pub context_type: String,
    pub category: String,
    pub title: String,
    pub content: String,
    pub example_sql: Option<String>,
    pub example_description: Option<String>,
    pub priority: i64,
}

impl LlmContextRow {
    pub fn into_proto(self) -> proto::LlmContextEntry {
        proto::LlmContextEntry {
            id: self.id,
            context_type: self.context_type,
            category: self.category,
            title: self.title,
            content: self.content,
            example_sql: self.example_sql,
            example_description: self.example_description,
            priority: self
                .priority
                .clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32,
        }
    }
}
