//! The reference's sync format (`ExportData`, schema_version 1) and the export read.
//!
//! The DTOs are typed structs so that JSON keys come out in the reference's order (section 6.2
//! of the fact sheet); they are also what sync import reads (see `commands::import`). Unknown
//! keys are ignored on input, and `display_key` / `is_running` are derived, never read.
use pm_shared::domain::{self, DependencyType, ItemType, ProjectStatus, SprintStatus};
use pm_shared::proto;
use serde::{Deserialize, Serialize};
use sqlx::{Connection, SqliteConnection};

use crate::error::{AppError, AppResult};
use crate::reads;
use crate::store::rows::{
    CommentRow, DependencyRow, ProjectRow, SprintRow, TimeEntryRow, WorkItemRow,
};
use crate::store::Store;

/// The only schema this server reads and writes.
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

/// `GET /api/v1/sync/export` query: everything, or one work item and what hangs off it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ExportScope {
    /// A work item (UUID or display key): the export holds it and its descendants only.
    pub work_item: Option<String>,
    /// How many levels of descendants a scoped export follows (0: the item alone).
    #[serde(default)]
    pub descendant_levels: u32,
    #[serde(default)]
    pub comments: bool,
    #[serde(default)]
    pub sprints: bool,
    #[serde(default)]
    pub dependencies: bool,
    #[serde(default)]
    pub time_entries: bool,
}

const PROJECT_SQL: &str = "SELECT id, title, description, key, status, version, next_work_item_number, \
     created_at, updated_at, created_by, updated_by, deleted_at FROM pm_projects WHERE deleted_at IS NULL \
     ORDER BY created_at, id";
const WORK_ITEM_SQL: &str = "SELECT id, item_type, parent_id, project_id, position, title, description, \
     status, priority, story_points, assignee_id, sprint_id, item_number, version, created_at, updated_at, \
     created_by, updated_by, deleted_at FROM pm_work_items w WHERE deleted_at IS NULL";
const SPRINT_SQL: &str = "SELECT id, project_id, name, goal, start_date, end_date, status, version, \
     created_at, updated_at, created_by, updated_by, deleted_at FROM pm_sprints s WHERE deleted_at IS NULL";
const COMMENT_SQL: &str = "SELECT c.id, c.work_item_id, c.content, c.created_at, c.updated_at, \
     c.created_by, c.updated_by, c.deleted_at FROM pm_comments c JOIN pm_work_items w ON w.id = c.work_item_id \
     WHERE c.deleted_at IS NULL AND w.deleted_at IS NULL";
const DEPENDENCY_SQL: &str = "SELECT d.id, d.blocking_item_id, d.blocked_item_id, d.dependency_type, \
     d.created_at, d.created_by, d.deleted_at FROM pm_dependencies d \
     JOIN pm_work_items a ON a.id = d.blocking_item_id JOIN pm_work_items b ON b.id = d.blocked_item_id \
     WHERE d.deleted_at IS NULL AND a.deleted_at IS NULL AND b.deleted_at IS NULL";
const TIME_ENTRY_SQL: &str = "SELECT t.id, t.work_item_id, t.user_id, t.started_at, t.ended_at, \
     t.duration_seconds, t.description, t.created_at, t.updated_at, t.deleted_at FROM pm_time_entries t \
     JOIN pm_work_items w ON w.id = t.work_item_id WHERE t.deleted_at IS NULL AND w.deleted_at IS NULL";

/// Reads an export in one read transaction. Only live rows whose parents are live too, so
/// that every reference inside the export resolves (and the export imports anywhere).
pub async fn export(store: &Store, scope: &ExportScope) -> AppResult<ExportData> {
    let mut conn = store.read.acquire().await?;
    let mut tx = conn.begin().await?;
    let data = match scope.work_item.as_deref() {
        None => export_all(&mut tx).await?,
        Some(root) => export_scoped(&mut tx, root, scope).await?,
    };
    tx.commit().await?;
    Ok(data)
}

fn envelope() -> ExportData {
    ExportData::empty(
        pm_shared::date::rfc3339(pm_shared::now_secs()),
        "pm-server".into(),
    )
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

/// Keys of the live projects by id; an item whose project is unknown says `UNKNOWN-N`, as in
/// the reference.
async fn keys(conn: &mut SqliteConnection) -> AppResult<std::collections::HashMap<String, String>> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT id, key FROM pm_projects WHERE deleted_at IS NULL")
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows.into_iter().collect())
}

fn item_dtos(
    rows: Vec<WorkItemRow>,
    keys: &std::collections::HashMap<String, String>,
) -> Vec<WorkItemDto> {
    rows.into_iter()
        .map(|r| {
            let w = r.into_proto();
            let key = keys.get(&w.project_id).map_or("UNKNOWN", String::as_str);
            WorkItemDto::new(&w, key)
        })
        .collect()
}

async fn export_all(conn: &mut SqliteConnection) -> AppResult<ExportData> {
    let projects: Vec<ProjectRow> = sqlx::query_as(PROJECT_SQL).fetch_all(&mut *conn).await?;
    let items: Vec<WorkItemRow> = sqlx::query_as(&format!(
        "{WORK_ITEM_SQL} ORDER BY project_id, item_number, id"
    ))
    .fetch_all(&mut *conn)
    .await?;
    let sprints: Vec<SprintRow> =
        sqlx::query_as(&format!("{SPRINT_SQL} ORDER BY project_id, start_date, id"))
            .fetch_all(&mut *conn)
            .await?;
    let comments: Vec<CommentRow> =
        sqlx::query_as(&format!("{COMMENT_SQL} ORDER BY c.created_at, c.id"))
            .fetch_all(&mut *conn)
            .await?;
    let dependencies: Vec<DependencyRow> =
        sqlx::query_as(&format!("{DEPENDENCY_SQL} ORDER BY d.created_at, d.id"))
            .fetch_all(&mut *conn)
            .await?;
    let time_entries: Vec<TimeEntryRow> =
        sqlx::query_as(&format!("{TIME_ENTRY_SQL} ORDER BY t.started_at, t.id"))
            .fetch_all(&mut *conn)
            .await?;
    let keys = keys(conn).await?;
    Ok(ExportData {
        projects: projects
            .into_iter()
            .map(|r| ProjectDto::from(&r.into_proto()))
            .collect(),
        work_items: item_dtos(items, &keys),
        sprints: sprints
            .into_iter()
            .map(|r| SprintDto::from(&r.into_proto()))
            .collect(),
        comments: comments
            .into_iter()
            .map(|r| CommentDto::from(&r.into_proto()))
            .collect(),
        dependencies: dependencies
            .into_iter()
            .map(|r| DependencyDto::from(&r.into_proto()))
            .collect(),
        time_entries: time_entries
            .into_iter()
            .map(|r| TimeEntryDto::from(&r.into_proto()))
            .collect(),
        ..envelope()
    })
}

/// One item, `descendant_levels` levels of its descendants, and the related rows asked for.
/// As in the reference, `projects` and `swim_lanes` stay empty.
async fn export_scoped(
    conn: &mut SqliteConnection,
    root: &str,
    scope: &ExportScope,
) -> AppResult<ExportData> {
    let root = reads::resolve_work_item(conn, root).await?;
    let levels = i64::from(scope.descendant_levels).min(pm_shared::hierarchy::MAX_DEPTH as i64);
    let items: Vec<WorkItemRow> = sqlx::query_as(&format!(
        "WITH RECURSIVE down(id, depth) AS ( \
             SELECT id, 0 FROM pm_work_items WHERE id = ?1 \
             UNION \
             SELECT c.id, down.depth + 1 FROM pm_work_items c JOIN down ON c.parent_id = down.id \
             WHERE c.deleted_at IS NULL AND down.depth < ?2 \
         ) \
         {WORK_ITEM_SQL} AND w.id IN (SELECT id FROM down) ORDER BY w.item_number, w.id"
    ))
    .bind(&root.id)
    .bind(levels)
    .fetch_all(&mut *conn)
    .await?;
    let ids: Vec<String> = items.iter().map(|w| w.id.clone()).collect();
    // The scope's ids travel as one JSON array parameter.
    let ids_json = serde_json::to_string(&ids).map_err(|e| AppError::Internal(e.into()))?;
    let in_scope = "(SELECT value FROM json_each(?1))";
    let mut data = envelope();
    if scope.sprints {
        let sprints: Vec<SprintRow> = sqlx::query_as(&format!(
            "{SPRINT_SQL} AND s.id IN (SELECT sprint_id FROM pm_work_items WHERE id IN {in_scope}) \
             ORDER BY s.start_date, s.id"
        ))
        .bind(&ids_json)
        .fetch_all(&mut *conn)
        .await?;
        data.sprints = sprints
            .into_iter()
            .map(|r| SprintDto::from(&r.into_proto()))
            .collect();
    }
    if scope.comments {
        let comments: Vec<CommentRow> = sqlx::query_as(&format!(
            "{COMMENT_SQL} AND c.work_item_id IN {in_scope} ORDER BY c.created_at, c.id"
        ))
        .bind(&ids_json)
        .fetch_all(&mut *conn)
        .await?;
        data.comments = comments
            .into_iter()
            .map(|r| CommentDto::from(&r.into_proto()))
            .collect();
    }
    if scope.dependencies {
        // Links inside the scope only, so that the export stands on its own.
        let dependencies: Vec<DependencyRow> = sqlx::query_as(&format!(
            "{DEPENDENCY_SQL} AND d.blocking_item_id IN {in_scope} AND d.blocked_item_id IN {in_scope} \
             ORDER BY d.created_at, d.id"
        ))
        .bind(&ids_json)
        .fetch_all(&mut *conn)
        .await?;
        data.dependencies = dependencies
            .into_iter()
            .map(|r| DependencyDto::from(&r.into_proto()))
            .collect();
    }
    if scope.time_entries {
        let entries: Vec<TimeEntryRow> = sqlx::query_as(&format!(
            "{TIME_ENTRY_SQL} AND t.work_item_id IN {in_scope} ORDER BY t.started_at, t.id"
        ))
        .bind(&ids_json)
        .fetch_all(&mut *conn)
        .await?;
        data.time_entries = entries
            .into_iter()
            .map(|r| TimeEntryDto::from(&r.into_proto()))
            .collect();
    }
    let keys = keys(conn).await?;
    data.work_items = item_dtos(items, &keys);
    Ok(data)
}
