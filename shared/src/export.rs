//! The sync document (`ExportData`, schema_version 1): what `GET /api/v1/sync/export` writes
//! and `POST /api/v1/sync/import` reads, in the reference's format.
//!
//! The DTOs are typed structs so that JSON keys come out in the reference's order (section 6.2
//! of the fact sheet). Unknown keys are ignored on input, and `display_key` / `is_running` are
//! derived, never read. Pure data: reading and writing the rows is the server's.
use serde::{Deserialize, Serialize};

use crate::domain::{self, DependencyType, ItemType, ProjectStatus, SprintStatus};
use crate::proto;

/// The only schema pm reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportData {
    pub schema_version: u32,
    #[serde(default)]
    pub exported_at: String,
    #[serde(default)]
    pub exported_by: String,
    #[serde(default)]
    pub projects: Vec<ProjectDto>,
    #[serde(default)]
    pub work_items: Vec<WorkItemDto>,
    #[serde(default)]
    pub sprints: Vec<SprintDto>,
    #[serde(default)]
    pub comments: Vec<CommentDto>,
    /// pm's lanes are fixed; lanes in an import are counted as skipped.
    #[serde(default)]
    pub swim_lanes: Vec<serde_json::Value>,
    #[serde(default)]
    pub dependencies: Vec<DependencyDto>,
    #[serde(default)]
    pub time_entries: Vec<TimeEntryDto>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectDto {
    pub id: String,
    pub key: String,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    pub status: String,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub created_by: String,
    pub updated_by: String,
    /// Older exports lack it; the server derives it from the items then.
    #[serde(default)]
    pub next_work_item_number: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkItemDto {
    pub id: String,
    #[serde(default)]
    pub display_key: String,
    pub item_type: String,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    pub status: String,
    pub priority: String,
    #[serde(default)]
    pub parent_id: Option<String>,
    pub project_id: String,
    #[serde(default)]
    pub assignee_id: Option<String>,
    #[serde(default)]
    pub sprint_id: Option<String>,
    #[serde(default)]
    pub story_points: Option<i64>,
    pub item_number: i64,
    pub position: i64,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub created_by: String,
    pub updated_by: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SprintDto {
    pub id: String,
    pub project_id: String,
    pub name: String,
    #[serde(default)]
    pub goal: Option<String>,
    pub start_date: i64,
    pub end_date: i64,
    pub status: String,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub created_by: String,
    pub updated_by: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommentDto {
    pub id: String,
    pub work_item_id: String,
    pub content: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub created_by: String,
    pub updated_by: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeEntryDto {
    pub id: String,
    pub work_item_id: String,
    pub user_id: String,
    pub started_at: i64,
    #[serde(default)]
    pub ended_at: Option<i64>,
    #[serde(default)]
    pub duration_seconds: Option<i64>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub is_running: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DependencyDto {
    pub id: String,
    pub blocking_item_id: String,
    pub blocked_item_id: String,
    pub dependency_type: String,
    pub created_at: i64,
    pub created_by: String,
}

impl From<&proto::Project> for ProjectDto {
    fn from(p: &proto::Project) -> Self {
        ProjectDto {
            id: p.id.clone(),
            key: p.key.clone(),
            title: p.title.clone(),
            description: p.description.clone(),
            status: ProjectStatus::from_proto(p.status)
                .unwrap_or(ProjectStatus::Active)
                .to_string(),
            version: i64::from(p.version),
            created_at: p.created_at,
            updated_at: p.updated_at,
            created_by: p.created_by.clone(),
            updated_by: p.updated_by.clone(),
            next_work_item_number: i64::from(p.next_work_item_number),
        }
    }
}

impl WorkItemDto {
    pub fn new(w: &proto::WorkItem, project_key: &str) -> Self {
        WorkItemDto {
            id: w.id.clone(),
            display_key: domain::display_key(project_key, w.item_number),
            item_type: ItemType::from_proto(w.item_type)
                .unwrap_or(ItemType::Task)
                .to_string(),
            title: w.title.clone(),
            description: w.description.clone(),
            status: w.status.clone(),
            priority: w.priority.clone(),
            parent_id: w.parent_id.clone(),
            project_id: w.project_id.clone(),
            assignee_id: w.assignee_id.clone(),
            sprint_id: w.sprint_id.clone(),
            story_points: w.story_points.map(i64::from),
            item_number: i64::from(w.item_number),
            position: i64::from(w.position),
            version: i64::from(w.version),
            created_at: w.created_at,
            updated_at: w.updated_at,
            created_by: w.created_by.clone(),
            updated_by: w.updated_by.clone(),
        }
    }
}

impl From<&proto::Sprint> for SprintDto {
    fn from(s: &proto::Sprint) -> Self {
        SprintDto {
            id: s.id.clone(),
            project_id: s.project_id.clone(),
            name: s.name.clone(),
            goal: s.goal.clone(),
            start_date: s.start_date,
            end_date: s.end_date,
            status: SprintStatus::from_proto(s.status)
                .unwrap_or(SprintStatus::Planned)
                .to_string(),
            version: i64::from(s.version),
            created_at: s.created_at,
            updated_at: s.updated_at,
            created_by: s.created_by.clone(),
            updated_by: s.updated_by.clone(),
        }
    }
}

impl From<&proto::Comment> for CommentDto {
    fn from(c: &proto::Comment) -> Self {
        CommentDto {
            id: c.id.clone(),
            work_item_id: c.work_item_id.clone(),
            content: c.content.clone(),
            created_at: c.created_at,
            updated_at: c.updated_at,
            created_by: c.created_by.clone(),
            updated_by: c.updated_by.clone(),
        }
    }
}

impl From<&proto::TimeEntry> for TimeEntryDto {
    fn from(t: &proto::TimeEntry) -> Self {
        TimeEntryDto {
            id: t.id.clone(),
            work_item_id: t.work_item_id.clone(),
            user_id: t.user_id.clone(),
            started_at: t.started_at,
            ended_at: t.ended_at,
            duration_seconds: t.duration_seconds.map(i64::from),
            description: t.description.clone(),
            is_running: t.ended_at.is_none(),
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

impl From<&proto::Dependency> for DependencyDto {
    fn from(d: &proto::Dependency) -> Self {
        DependencyDto {
            id: d.id.clone(),
            blocking_item_id: d.blocking_item_id.clone(),
            blocked_item_id: d.blocked_item_id.clone(),
            dependency_type: DependencyType::from_proto(d.dependency_type)
                .unwrap_or(DependencyType::Blocks)
                .to_string(),
            created_at: d.created_at,
            created_by: d.created_by.clone(),
        }
    }
}

impl ExportData {
    /// A document of this schema with no rows.
    pub fn empty(exported_at: String, exported_by: String) -> ExportData {
        ExportData {
            schema_version: SCHEMA_VERSION,
            exported_at,
            exported_by,
            projects: Vec::new(),
            work_items: Vec::new(),
            sprints: Vec::new(),
            comments: Vec::new(),
            swim_lanes: Vec::new(),
            dependencies: Vec::new(),
            time_entries: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_document_reads_with_defaults_and_unknown_keys_ignored() {
        let data: ExportData = serde_json::from_str(
            r#"{"schema_version": 1, "swim_lanes": [{"id": "x"}], "somewhere_else": true,
                "projects": [{"id": "p", "key": "PM", "title": "T", "status": "active",
                  "version": 1, "created_at": 0, "updated_at": 0, "created_by": "u",
                  "updated_by": "u", "extra": 1}]}"#,
        )
        .expect("a minimal document");
        assert_eq!(data.schema_version, SCHEMA_VERSION);
        assert_eq!(data.swim_lanes.len(), 1);
        assert_eq!(data.projects[0].description, None);
        assert_eq!(data.projects[0].next_work_item_number, 0);
        assert!(data.work_items.is_empty() && data.time_entries.is_empty());
    }

    #[test]
    fn an_empty_document_writes_every_list_in_the_reference_order() {
        let json = serde_json::to_string(&ExportData::empty("at".into(), "by".into()))
            .expect("serializes");
        assert_eq!(
            json,
            r#"{"schema_version":1,"exported_at":"at","exported_by":"by","projects":[],"work_items":[],"sprints":[],"comments":[],"swim_lanes":[],"dependencies":[],"time_entries":[]}"#
        );
    }

    #[test]
    fn a_running_timer_exports_as_running_without_an_end() {
        let entry = proto::TimeEntry {
            id: "t".into(),
            started_at: 5,
            ..Default::default()
        };
        let dto = TimeEntryDto::from(&entry);
        assert!(dto.is_running);
        assert_eq!((dto.ended_at, dto.duration_seconds), (None, None));
    }
}
