//! The sync export read. The document's format (`ExportData`, schema_version 1) is pure data
//! and lives in `pm_shared::export`; it is re-exported here for the server's users of it (the
//! REST routes, the import).
use crate::store::Conn;
use std::collections::HashMap;

use serde::Deserialize;

pub use pm_shared::export::{
    CommentDto, DependencyDto, ExportData, ProjectDto, SprintDto, TimeEntryDto, WorkItemDto,
    SCHEMA_VERSION,
};

use crate::error::{AppError, AppResult};
use crate::reads;
use crate::store::export as rows;
use crate::store::rows::WorkItemRow;
use crate::store::Store;

/// `GET /api/v1/sync/export` query: everything, or one work item and what hangs off it.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
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

/// Reads an export in one read transaction. Only live rows whose parents are live too, so
/// that every reference inside the export resolves (and the export imports anywhere).
pub async fn export(store: &Store, scope: &ExportScope) -> AppResult<ExportData> {
    let mut conn = store.read.acquire().await?;
    let mut tx = conn.begin().await?;
    let data = match scope.work_item.as_deref() {
        None => export_all(&mut tx.conn()).await?,
        Some(root) => export_scoped(&mut tx.conn(), root, scope).await?,
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

/// Export rows as their document form.
fn dtos<R, D>(rows: Vec<R>, dto: impl Fn(R) -> D) -> Vec<D> {
    rows.into_iter().map(dto).collect()
}

/// Items with their display keys; an item whose project is unknown says `UNKNOWN-N`, as in
/// the reference.
fn item_dtos(rows: Vec<WorkItemRow>, keys: &HashMap<String, String>) -> Vec<WorkItemDto> {
    dtos(rows, |r| {
        let w = r.into_proto();
        let key = keys.get(&w.project_id).map_or("UNKNOWN", String::as_str);
        WorkItemDto::new(&w, key)
    })
}

async fn export_all(conn: &mut Conn<'_>) -> AppResult<ExportData> {
    let projects = rows::projects(conn).await?;
    let items = rows::work_items(conn).await?;
    let sprints = rows::sprints(conn).await?;
    let comments = rows::comments(conn).await?;
    let dependencies = rows::dependencies(conn).await?;
    let time_entries = rows::time_entries(conn).await?;
    let keys = rows::keys(conn).await?;
    Ok(ExportData {
        projects: dtos(projects, |r| ProjectDto::from(&r.into_proto())),
        work_items: item_dtos(items, &keys),
        sprints: dtos(sprints, |r| SprintDto::from(&r.into_proto())),
        comments: dtos(comments, |r| CommentDto::from(&r.into_proto())),
        dependencies: dtos(dependencies, |r| DependencyDto::from(&r.into_proto())),
        time_entries: dtos(time_entries, |r| TimeEntryDto::from(&r.into_proto())),
        ..envelope()
    })
}

/// One item, `descendant_levels` levels of its descendants, and the related rows asked for.
/// As in the reference, `projects` and `swim_lanes` stay empty, and the links are those with
/// at least one end among the items (the other end may lie outside the export).
async fn export_scoped(
    conn: &mut Conn<'_>,
    root: &str,
    scope: &ExportScope,
) -> AppResult<ExportData> {
    let root = reads::resolve_work_item(conn, root).await?;
    let levels = i64::from(scope.descendant_levels).min(pm_shared::hierarchy::MAX_DEPTH as i64);
    let items = rows::subtree(conn, &root.id, levels).await?;
    let ids: Vec<&str> = items.iter().map(|w| w.id.as_str()).collect();
    let ids_json = serde_json::to_string(&ids).map_err(|e| AppError::Internal(e.into()))?;
    let mut data = envelope();
    if scope.sprints {
        let sprints = rows::sprints_of(conn, &ids_json).await?;
        data.sprints = dtos(sprints, |r| SprintDto::from(&r.into_proto()));
    }
    if scope.comments {
        let comments = rows::comments_of(conn, &ids_json).await?;
        data.comments = dtos(comments, |r| CommentDto::from(&r.into_proto()));
    }
    if scope.dependencies {
        let dependencies = rows::dependencies_touching(conn, &ids_json).await?;
        data.dependencies = dtos(dependencies, |r| DependencyDto::from(&r.into_proto()));
    }
    if scope.time_entries {
        let entries = rows::time_entries_of(conn, &ids_json).await?;
        data.time_entries = dtos(entries, |r| TimeEntryDto::from(&r.into_proto()));
    }
    let keys = rows::keys(conn).await?;
    data.work_items = item_dtos(items, &keys);
    Ok(data)
}
