//! The shapes of the REST answers, for the API description (`openapi`). The handlers build
//! their JSON from the protobuf entities (`dto`); these types say what that JSON is, field for
//! field, and are never built. What keeps the two in step is schemathesis
//! (`scripts/schemathesis.sh`, run by CI), which checks every answer of a live server against
//! this description.
//!
//! Request bodies and query strings need no such copy: their own types derive the schema where
//! they are parsed (`projects::CreateBody`, …).
#![allow(dead_code)]

use utoipa::ToSchema;

// The closed sets of names, as `pm_shared::domain` spells them (a test keeps them in step).

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ItemTypeName {
    Epic,
    Story,
    Task,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum StatusName {
    Backlog,
    Todo,
    InProgress,
    Review,
    Done,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum PriorityName {
    Low,
    Medium,
    High,
    Critical,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ProjectStatusName {
    Active,
    Archived,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum SprintStatusName {
    Planned,
    Active,
    Completed,
    Cancelled,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum DependencyTypeName {
    Blocks,
    RelatesTo,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum RoleName {
    Viewer,
    Editor,
    Admin,
}

/// The error of every failed request: `{"error": {"code", "message", "field"?}}`.
#[derive(ToSchema)]
pub struct ErrorReply {
    error: ErrorDetail,
}

#[derive(ToSchema)]
pub struct ErrorDetail {
    /// VALIDATION_ERROR, NOT_FOUND, UNAUTHORIZED, CONFLICT, RATE_LIMITED, …
    code: String,
    message: String,
    /// The request field at fault, when one is.
    field: Option<String>,
}

#[derive(ToSchema)]
pub struct Project {
    id: String,
    key: String,
    title: String,
    description: Option<String>,
    /// `active` or `archived`.
    #[schema(value_type = ProjectStatusName)]
    status: String,
    version: i32,
    created_at: i64,
    updated_at: i64,
    created_by: String,
    updated_by: String,
    next_work_item_number: i32,
}

#[derive(ToSchema)]
pub struct WorkItem {
    id: String,
    /// `<project key>-<item number>`, e.g. `PM-12`.
    display_key: String,
    /// `epic`, `story` or `task`.
    #[schema(value_type = ItemTypeName)]
    item_type: String,
    title: String,
    description: Option<String>,
    /// `backlog`, `todo`, `in_progress`, `review` or `done`.
    #[schema(value_type = StatusName)]
    status: String,
    /// `low`, `medium`, `high` or `critical`.
    #[schema(value_type = PriorityName)]
    priority: String,
    parent_id: Option<String>,
    project_id: String,
    assignee_id: Option<String>,
    sprint_id: Option<String>,
    story_points: Option<i32>,
    item_number: i32,
    position: i32,
    version: i32,
    created_at: i64,
    updated_at: i64,
    created_by: String,
    updated_by: String,
}

#[derive(ToSchema)]
pub struct Sprint {
    id: String,
    project_id: String,
    name: String,
    goal: Option<String>,
    start_date: i64,
    end_date: i64,
    /// `planned`, `active`, `completed` or `cancelled`.
    #[schema(value_type = SprintStatusName)]
    status: String,
    version: i32,
    created_at: i64,
    updated_at: i64,
    created_by: String,
    updated_by: String,
}

#[derive(ToSchema)]
pub struct Comment {
    id: String,
    work_item_id: String,
    content: String,
    created_at: i64,
    updated_at: i64,
    created_by: String,
    updated_by: String,
}

#[derive(ToSchema)]
pub struct Dependency {
    id: String,
    blocking_item_id: String,
    blocked_item_id: String,
    /// `blocks` or `relates_to`.
    #[schema(value_type = DependencyTypeName)]
    dependency_type: String,
    created_at: i64,
    created_by: String,
}

#[derive(ToSchema)]
pub struct TimeEntry {
    id: String,
    work_item_id: String,
    user_id: String,
    started_at: i64,
    ended_at: Option<i64>,
    duration_seconds: Option<i64>,
    description: Option<String>,
    is_running: bool,
    created_at: i64,
    updated_at: i64,
}

/// One of a project's five fixed lanes.
#[derive(ToSchema)]
pub struct SwimLane {
    id: String,
    project_id: String,
    name: String,
    status_value: String,
    position: u32,
    is_default: bool,
    created_at: i64,
    updated_at: i64,
}

#[derive(ToSchema)]
pub struct Member {
    project_id: String,
    user_id: String,
    /// `viewer`, `editor` or `admin`.
    #[schema(value_type = RoleName)]
    role: String,
    name: String,
    created_at: i64,
}

#[derive(ToSchema)]
pub struct FieldChange {
    field_name: String,
    old_value: Option<String>,
    new_value: Option<String>,
}

#[derive(ToSchema)]
pub struct ActivityEntry {
    id: String,
    entity_type: String,
    entity_id: String,
    /// `created`, `updated` or `deleted`.
    action: String,
    field_name: Option<String>,
    old_value: Option<String>,
    new_value: Option<String>,
    user_id: String,
    timestamp: i64,
    comment: Option<String>,
    changes: Vec<FieldChange>,
}

#[derive(ToSchema)]
pub struct LlmContextEntry {
    id: String,
    context_type: String,
    category: String,
    title: String,
    content: String,
    example_sql: Option<String>,
    example_description: Option<String>,
    priority: i32,
}

#[derive(ToSchema)]
pub struct ProjectList {
    projects: Vec<Project>,
}

#[derive(ToSchema)]
pub struct ProjectReply {
    project: Project,
}

#[derive(ToSchema)]
pub struct WorkItemList {
    work_items: Vec<WorkItem>,
}

#[derive(ToSchema)]
pub struct WorkItemReply {
    work_item: WorkItem,
}

#[derive(ToSchema)]
pub struct SprintList {
    sprints: Vec<Sprint>,
}

#[derive(ToSchema)]
pub struct SprintReply {
    sprint: Sprint,
}

#[derive(ToSchema)]
pub struct CommentList {
    comments: Vec<Comment>,
}

#[derive(ToSchema)]
pub struct CommentReply {
    comment: Comment,
}

#[derive(ToSchema)]
pub struct DependencyList {
    dependencies: Vec<Dependency>,
}

#[derive(ToSchema)]
pub struct TimeEntryList {
    time_entries: Vec<TimeEntry>,
}

#[derive(ToSchema)]
pub struct TimeEntryReply {
    time_entry: TimeEntry,
}

#[derive(ToSchema)]
pub struct SwimLaneList {
    swim_lanes: Vec<SwimLane>,
}

#[derive(ToSchema)]
pub struct MemberList {
    members: Vec<Member>,
}

#[derive(ToSchema)]
pub struct MemberReply {
    member: Member,
}

/// What a delete answers: the id of what is gone.
#[derive(ToSchema)]
pub struct Deleted {
    deleted_id: String,
}

/// A page of an entity's history, newest first.
#[derive(ToSchema)]
pub struct ActivityPage {
    activity: Vec<ActivityEntry>,
    total_count: i64,
    has_more: bool,
}

#[derive(ToSchema)]
pub struct LlmContextList {
    entries: Vec<LlmContextEntry>,
}

/// The reference's ExportData: what `GET /api/v1/sync/export` answers and
/// `POST /api/v1/sync/import` takes (`schema_version` 1).
#[derive(ToSchema)]
pub struct ExportDocument {
    schema_version: u32,
    exported_at: Option<String>,
    exported_by: Option<String>,
    projects: Option<Vec<ExportProject>>,
    work_items: Option<Vec<ExportWorkItem>>,
    sprints: Option<Vec<Sprint>>,
    comments: Option<Vec<Comment>>,
    /// pm's lanes are fixed: lanes in an import are counted as skipped.
    swim_lanes: Option<Vec<serde_json::Value>>,
    dependencies: Option<Vec<Dependency>>,
    time_entries: Option<Vec<TimeEntry>>,
}

/// A project in an export (`next_work_item_number` may be missing from older files).
#[derive(ToSchema)]
pub struct ExportProject {
    id: String,
    key: String,
    title: String,
    description: Option<String>,
    status: String,
    version: i64,
    created_at: i64,
    updated_at: i64,
    created_by: String,
    updated_by: String,
    next_work_item_number: Option<i64>,
}

/// A work item in an export (`display_key` may be missing from older files).
#[derive(ToSchema)]
pub struct ExportWorkItem {
    id: String,
    display_key: Option<String>,
    item_type: String,
    title: String,
    description: Option<String>,
    status: String,
    priority: String,
    parent_id: Option<String>,
    project_id: String,
    assignee_id: Option<String>,
    sprint_id: Option<String>,
    story_points: Option<i64>,
    item_number: i64,
    position: i64,
    version: i64,
    created_at: i64,
    updated_at: i64,
    created_by: String,
    updated_by: String,
}

#[derive(ToSchema)]
pub struct Health {
    /// `ok`.
    status: String,
    version: String,
}

/// `/ready`: 200 when healthy, 503 (with `error`) when not.
#[derive(ToSchema)]
pub struct Readiness {
    /// `healthy` or `unhealthy`.
    status: String,
    version: String,
    database: DatabaseHealth,
    /// Open WebSocket connections.
    connections: u64,
    error: Option<ErrorDetail>,
}

#[derive(ToSchema)]
pub struct DatabaseHealth {
    status: String,
    latency_ms: u64,
    /// `ok` or `failing`.
    writes: String,
}

#[derive(ToSchema)]
pub struct Checkpoint {
    /// `ok`, or `busy` when readers kept it from finishing.
    status: String,
    message: String,
}

#[derive(ToSchema)]
pub struct ShutdownAccepted {
    /// `shutting down`.
    status: String,
}

#[cfg(test)]
mod tests {
    use pm_shared::domain::{
        DependencyType, ItemType, Priority, ProjectStatus, SprintStatus, Status,
    };

    /// The names the description lists are the ones the server takes and gives.
    #[test]
    fn the_described_names_are_the_domains() {
        let document = super::super::openapi::document();
        let names = |schema: &str| -> Vec<String> {
            document["components"]["schemas"][schema]["enum"]
                .as_array()
                .unwrap_or_else(|| panic!("{schema} has no enum"))
                .iter()
                .map(|v| v.as_str().unwrap_or_default().to_string())
                .collect()
        };
        fn all<T: Copy>(values: &[T], name: fn(T) -> &'static str) -> Vec<String> {
            values.iter().map(|v| name(*v).to_string()).collect()
        }
        assert_eq!(names("ItemTypeName"), all(ItemType::ALL, ItemType::as_str));
        assert_eq!(names("StatusName"), all(Status::ALL, Status::as_str));
        assert_eq!(names("PriorityName"), all(Priority::ALL, Priority::as_str));
        assert_eq!(
            names("ProjectStatusName"),
            all(ProjectStatus::ALL, ProjectStatus::as_str)
        );
        assert_eq!(
            names("SprintStatusName"),
            all(SprintStatus::ALL, SprintStatus::as_str)
        );
        assert_eq!(
            names("DependencyTypeName"),
            all(DependencyType::ALL, DependencyType::as_str)
        );
        assert_eq!(names("RoleName"), ["viewer", "editor", "admin"]);
    }
}
