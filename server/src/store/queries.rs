//! Read queries, shared by the commands (inside their write transaction) and the snapshot reads.
//! Every lookup skips soft-deleted rows.
use sqlx::SqliteConnection;

use super::hierarchy;
use super::rows::{
    ActivityRow, CommentRow, DependencyRow, LlmContextRow, ProjectRow, SprintRow, TimeEntryRow,
    WorkItemRow,
};

const PROJECT_COLS: &str = "id, title, description, key, status, version, next_work_item_number, \
     created_at, updated_at, created_by, updated_by, deleted_at";
const WORK_ITEM_COLS: &str = "id, item_type, parent_id, project_id, position, title, description, \
     status, priority, story_points, assignee_id, sprint_id, item_number, version, created_at, \
     updated_at, created_by, updated_by, deleted_at";
const SPRINT_COLS: &str = "id, project_id, name, goal, start_date, end_date, status, version, \
     created_at, updated_at, created_by, updated_by, deleted_at";
const COMMENT_COLS: &str =
    "id, work_item_id, content, created_at, updated_at, created_by, updated_by, deleted_at";

pub async fn project(conn: &mut SqliteConnection, id: &str) -> sqlx::Result<Option<ProjectRow>> {
    sqlx::query_as(&format!(
        "SELECT {PROJECT_COLS} FROM pm_projects WHERE id = ? AND deleted_at IS NULL"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
}

pub async fn project_by_key(
    conn: &mut SqliteConnection,
    key: &str,
) -> sqlx::Result<Option<ProjectRow>> {
    sqlx::query_as(&format!(
        "SELECT {PROJECT_COLS} FROM pm_projects WHERE key = ? AND deleted_at IS NULL"
    ))
    .bind(key)
    .fetch_optional(&mut *conn)
    .await
}

pub async fn projects(conn: &mut SqliteConnection) -> sqlx::Result<Vec<ProjectRow>> {
    sqlx::query_as(&format!(
        "SELECT {PROJECT_COLS} FROM pm_projects WHERE deleted_at IS NULL ORDER BY title COLLATE NOCASE, id"
    ))
    .fetch_all(&mut *conn)
    .await
}

pub async fn work_item(conn: &mut SqliteConnection, id: &str) -> sqlx::Result<Option<WorkItemRow>> {
    sqlx::query_as(&format!(
        "SELECT {WORK_ITEM_COLS} FROM pm_work_items WHERE id = ? AND deleted_at IS NULL"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
}

/// A live item and its hierarchy lists (as [`hierarchy::FILL_SQL`] rows), in one round trip.
pub async fn work_item_with_lists(
    conn: &mut SqliteConnection,
    id: &str,
) -> sqlx::Result<Option<(WorkItemRow, Vec<hierarchy::FillRow>)>> {
    Ok(work_items_with_lists(conn, &[id]).await?.pop())
}

/// Live items and their hierarchy lists, all in one round trip: per id, a one-column marker
/// row, the item's row and its walks, told apart by their width (an item that is gone has no
/// row, and its walks may still find ancestors, so the marker says whose rows follow).
pub async fn work_items_with_lists(
    conn: &mut SqliteConnection,
    ids: &[&str],
) -> sqlx::Result<Vec<(WorkItemRow, Vec<hierarchy::FillRow>)>> {
    use sqlx::{FromRow, Row};
    static ONE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT ?;\nSELECT {WORK_ITEM_COLS} FROM pm_work_items WHERE id = ? AND deleted_at IS NULL;\n{}",
            hierarchy::FILL_SQL
        )
    });
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = vec![ONE.as_str(); ids.len()].join(";\n");
    let mut query = sqlx::query(&sql);
    for id in ids {
        query = query
            .bind(*id)
            .bind(*id)
            .bind(*id)
            .bind(hierarchy::MAX_DEPTH)
            .bind(*id)
            .bind(hierarchy::MAX_DEPTH);
    }
    let rows = query.fetch_all(&mut *conn).await?;
    let mut found = Vec::with_capacity(ids.len());
    let mut current: Option<(WorkItemRow, Vec<hierarchy::FillRow>)> = None;
    for row in &rows {
        match row.len() {
            1 => found.extend(current.take()),
            FILL_WIDTH => {
                if let Some((_, lists)) = current.as_mut() {
                    lists.push(hierarchy::FillRow::from_row(row)?);
                }
            }
            _ => current = Some((WorkItemRow::from_row(row)?, Vec::new())),
        }
    }
    found.extend(current);
    Ok(found)
}

const FILL_WIDTH: usize = 3;

/// A live project and the position a new item gets under `parent_id` (at the end of its
/// siblings), in one round trip.
pub async fn project_and_next_position(
    conn: &mut SqliteConnection,
    project_id: &str,
    parent_id: Option<&str>,
) -> sqlx::Result<Option<(ProjectRow, i64)>> {
    use sqlx::{FromRow, Row};
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT {PROJECT_COLS}, \
             (SELECT COALESCE(MAX(position), 0) + 1 FROM pm_work_items \
              WHERE project_id = ?1 AND parent_id IS ?2 AND deleted_at IS NULL) AS next_position \
             FROM pm_projects WHERE id = ?1 AND deleted_at IS NULL"
        )
    });
    let Some(row) = sqlx::query(&SQL)
        .bind(project_id)
        .bind(parent_id)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    Ok(Some((
        ProjectRow::from_row(&row)?,
        row.try_get("next_position")?,
    )))
}

pub async fn work_item_by_number(
    conn: &mut SqliteConnection,
    project_id: &str,
    number: i32,
) -> sqlx::Result<Option<WorkItemRow>> {
    sqlx::query_as(&format!(
        "SELECT {WORK_ITEM_COLS} FROM pm_work_items WHERE project_id = ? AND item_number = ? AND deleted_at IS NULL"
    ))
    .bind(project_id)
    .bind(number)
    .fetch_optional(&mut *conn)
    .await
}

pub async fn work_items(
    conn: &mut SqliteConnection,
    project_id: &str,
) -> sqlx::Result<Vec<WorkItemRow>> {
    sqlx::query_as(&format!(
        "SELECT {WORK_ITEM_COLS} FROM pm_work_items WHERE project_id = ? AND deleted_at IS NULL \
         ORDER BY position, item_number"
    ))
    .bind(project_id)
    .fetch_all(&mut *conn)
    .await
}

pub async fn live_children(conn: &mut SqliteConnection, id: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM pm_work_items WHERE parent_id = ? AND deleted_at IS NULL",
    )
    .bind(id)
    .fetch_one(&mut *conn)
    .await
}

pub async fn live_items_in_project(
    conn: &mut SqliteConnection,
    project_id: &str,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM pm_work_items WHERE project_id = ? AND deleted_at IS NULL",
    )
    .bind(project_id)
    .fetch_one(&mut *conn)
    .await
}

pub async fn sprint(conn: &mut SqliteConnection, id: &str) -> sqlx::Result<Option<SprintRow>> {
    sqlx::query_as(&format!(
        "SELECT {SPRINT_COLS} FROM pm_sprints WHERE id = ? AND deleted_at IS NULL"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
}

pub async fn sprints(
    conn: &mut SqliteConnection,
    project_id: &str,
) -> sqlx::Result<Vec<SprintRow>> {
    sqlx::query_as(&format!(
        "SELECT {SPRINT_COLS} FROM pm_sprints WHERE project_id = ? AND deleted_at IS NULL ORDER BY start_date DESC, id"
    ))
    .bind(project_id)
    .fetch_all(&mut *conn)
    .await
}

pub async fn comment(conn: &mut SqliteConnection, id: &str) -> sqlx::Result<Option<CommentRow>> {
    sqlx::query_as(&format!(
        "SELECT {COMMENT_COLS} FROM pm_comments WHERE id = ? AND deleted_at IS NULL"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
}

pub async fn comments(
    conn: &mut SqliteConnection,
    work_item_id: &str,
) -> sqlx::Result<Vec<CommentRow>> {
    sqlx::query_as(&format!(
        "SELECT {COMMENT_COLS} FROM pm_comments WHERE work_item_id = ? AND deleted_at IS NULL ORDER BY created_at, rowid"
    ))
    .bind(work_item_id)
    .fetch_all(&mut *conn)
    .await
}

/// Comments of a whole project (for a board snapshot).
pub async fn project_comments(
    conn: &mut SqliteConnection,
    project_id: &str,
) -> sqlx::Result<Vec<CommentRow>> {
    sqlx::query_as(
        "SELECT c.id, c.work_item_id, c.content, c.created_at, c.updated_at, c.created_by, c.updated_by, c.deleted_at \
         FROM pm_comments c JOIN pm_work_items w ON w.id = c.work_item_id \
         WHERE w.project_id = ? AND c.deleted_at IS NULL AND w.deleted_at IS NULL ORDER BY c.created_at, c.rowid",
    )
    .bind(project_id)
    .fetch_all(&mut *conn)
    .await
}

/// The project an entity belongs to, deleted entities included, so history stays reachable.
pub async fn project_of_entity(
    conn: &mut SqliteConnection,
    entity_type: &str,
    entity_id: &str,
) -> sqlx::Result<Option<String>> {
    let sql = match entity_type {
        "project" => "SELECT id FROM pm_projects WHERE id = ?",
        "work_item" => "SELECT project_id FROM pm_work_items WHERE id = ?",
        "sprint" => "SELECT project_id FROM pm_sprints WHERE id = ?",
        "comment" => {
            "SELECT w.project_id FROM pm_comments c JOIN pm_work_items w ON w.id = c.work_item_id WHERE c.id = ?"
        }
        "time_entry" => {
            "SELECT w.project_id FROM pm_time_entries t JOIN pm_work_items w ON w.id = t.work_item_id WHERE t.id = ?"
        }
        "dependency" => {
            "SELECT w.project_id FROM pm_dependencies d JOIN pm_work_items w ON w.id = d.blocked_item_id WHERE d.id = ?"
        }
        _ => return Ok(None),
    };
    sqlx::query_scalar(sql)
        .bind(entity_id)
        .fetch_optional(&mut *conn)
        .await
}

pub async fn activity(
    conn: &mut SqliteConnection,
    entity_type: &str,
    entity_id: &str,
    limit: i64,
    offset: i64,
) -> sqlx::Result<(Vec<ActivityRow>, i64)> {
    let rows = sqlx::query_as(
        "SELECT id, entity_type, entity_id, action, changes, user_id, timestamp, comment FROM pm_activity_log \
         WHERE entity_type = ? AND entity_id = ? ORDER BY timestamp DESC, rowid DESC LIMIT ? OFFSET ?",
    )
    .bind(entity_type)
    .bind(entity_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(&mut *conn)
    .await?;
    let total: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pm_activity_log WHERE entity_type = ? AND entity_id = ?",
    )
    .bind(entity_type)
    .bind(entity_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok((rows, total))
}

/// Every known user with a display name (the email's local part when no name was given).
pub async fn users(conn: &mut SqliteConnection) -> sqlx::Result<Vec<pm_shared::proto::User>> {
    let rows: Vec<(String, Option<String>, Option<String>)> =
        sqlx::query_as("SELECT id, name, email FROM users ORDER BY created_at, id")
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(id, name, email)| {
            let name = name
                .filter(|n| !n.trim().is_empty())
                .or_else(|| email.and_then(|e| e.split('@').next().map(str::to_string)))
                .unwrap_or_else(|| id.chars().take(8).collect());
            pm_shared::proto::User { id, name }
        })
        .collect())
}

/// Records a user and, when given, their display name.
pub async fn upsert_user(
    conn: &mut SqliteConnection,
    id: &str,
    name: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO users (id, email, name) VALUES (?1, 'user-' || substr(?1, 1, 8) || '@localhost', ?2) \
         ON CONFLICT (id) DO UPDATE SET name = COALESCE(?2, users.name)",
    )
    .bind(id)
    .bind(name)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// (project_id, user_id, role, created_at, name, email)
type MemberRow = (String, String, String, i64, Option<String>, Option<String>);

/// A project's members with their display names, admins first.
pub async fn members(
    conn: &mut SqliteConnection,
    project_id: &str,
) -> sqlx::Result<Vec<pm_shared::proto::ProjectMember>> {
    let rows: Vec<MemberRow> = sqlx::query_as(
        "SELECT m.project_id, m.user_id, m.role, m.created_at, u.name, u.email FROM pm_project_members m \
         LEFT JOIN users u ON u.id = m.user_id WHERE m.project_id = ? \
         ORDER BY CASE m.role WHEN 'admin' THEN 0 WHEN 'editor' THEN 1 ELSE 2 END, m.created_at, m.user_id",
    )
    .bind(project_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(project_id, user_id, role, created_at, name, email)| {
            let name = name
                .filter(|n| !n.trim().is_empty())
                .or_else(|| email.and_then(|e| e.split('@').next().map(str::to_string)))
                .unwrap_or_else(|| user_id.chars().take(8).collect());
            pm_shared::proto::ProjectMember {
                project_id,
                user_id,
                role,
                created_at,
                name,
            }
        })
        .collect())
}

const TIME_ENTRY_COLS: &str = "id, work_item_id, user_id, started_at, ended_at, duration_seconds, \
     description, created_at, updated_at, deleted_at";
const DEPENDENCY_COLS: &str =
    "id, blocking_item_id, blocked_item_id, dependency_type, created_at, created_by, deleted_at";

pub async fn time_entry(
    conn: &mut SqliteConnection,
    id: &str,
) -> sqlx::Result<Option<TimeEntryRow>> {
    sqlx::query_as(&format!(
        "SELECT {TIME_ENTRY_COLS} FROM pm_time_entries WHERE id = ? AND deleted_at IS NULL"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
}

/// A work item's time entries, latest start first, and how many it has in all.
pub async fn time_entries(
    conn: &mut SqliteConnection,
    work_item_id: &str,
    limit: i64,
    offset: i64,
) -> sqlx::Result<(Vec<TimeEntryRow>, i64)> {
    let rows = sqlx::query_as(&format!(
        "SELECT {TIME_ENTRY_COLS} FROM pm_time_entries WHERE work_item_id = ? AND deleted_at IS NULL \
         ORDER BY started_at DESC, id LIMIT ? OFFSET ?"
    ))
    .bind(work_item_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(&mut *conn)
    .await?;
    let total: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pm_time_entries WHERE work_item_id = ? AND deleted_at IS NULL",
    )
    .bind(work_item_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok((rows, total))
}

/// The user's running timer (the latest started, should there be several).
pub async fn running_timer(
    conn: &mut SqliteConnection,
    user_id: &str,
) -> sqlx::Result<Option<TimeEntryRow>> {
    sqlx::query_as(&format!(
        "SELECT {TIME_ENTRY_COLS} FROM pm_time_entries \
         WHERE user_id = ? AND ended_at IS NULL AND deleted_at IS NULL ORDER BY started_at DESC, id LIMIT 1"
    ))
    .bind(user_id)
    .fetch_optional(&mut *conn)
    .await
}

/// Time entries on the live items of a project (for a board snapshot).
pub async fn project_time_entries(
    conn: &mut SqliteConnection,
    project_id: &str,
) -> sqlx::Result<Vec<TimeEntryRow>> {
    sqlx::query_as(
        "SELECT t.id, t.work_item_id, t.user_id, t.started_at, t.ended_at, t.duration_seconds, t.description, \
         t.created_at, t.updated_at, t.deleted_at \
         FROM pm_time_entries t JOIN pm_work_items w ON w.id = t.work_item_id \
         WHERE w.project_id = ? AND t.deleted_at IS NULL AND w.deleted_at IS NULL ORDER BY t.started_at, t.id",
    )
    .bind(project_id)
    .fetch_all(&mut *conn)
    .await
}

pub async fn dependency(
    conn: &mut SqliteConnection,
    id: &str,
) -> sqlx::Result<Option<DependencyRow>> {
    sqlx::query_as(&format!(
        "SELECT {DEPENDENCY_COLS} FROM pm_dependencies WHERE id = ? AND deleted_at IS NULL"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
}

/// The live links of a work item, both directions, ordered by creation.
pub async fn dependencies_of(
    conn: &mut SqliteConnection,
    work_item_id: &str,
) -> sqlx::Result<Vec<DependencyRow>> {
    sqlx::query_as(&format!(
        "SELECT {DEPENDENCY_COLS} FROM pm_dependencies \
         WHERE (blocking_item_id = ?1 OR blocked_item_id = ?1) AND deleted_at IS NULL ORDER BY created_at, id"
    ))
    .bind(work_item_id)
    .fetch_all(&mut *conn)
    .await
}

/// Live links between live items of a project (for a board snapshot).
pub async fn project_dependencies(
    conn: &mut SqliteConnection,
    project_id: &str,
) -> sqlx::Result<Vec<DependencyRow>> {
    sqlx::query_as(
        "SELECT d.id, d.blocking_item_id, d.blocked_item_id, d.dependency_type, d.created_at, d.created_by, d.deleted_at \
         FROM pm_dependencies d \
         JOIN pm_work_items a ON a.id = d.blocked_item_id \
         JOIN pm_work_items b ON b.id = d.blocking_item_id \
         WHERE a.project_id = ? AND d.deleted_at IS NULL AND a.deleted_at IS NULL AND b.deleted_at IS NULL \
         ORDER BY d.created_at, d.id",
    )
    .bind(project_id)
    .fetch_all(&mut *conn)
    .await
}

/// LLM context entries, most important first; every filter is optional.
pub async fn llm_context(
    conn: &mut SqliteConnection,
    category: Option<&str>,
    context_type: Option<&str>,
    min_priority: Option<i32>,
) -> sqlx::Result<Vec<LlmContextRow>> {
    sqlx::query_as(
        "SELECT id, context_type, category, title, content, example_sql, example_description, priority \
         FROM pm_llm_context WHERE deleted_at IS NULL \
         AND (?1 IS NULL OR category = ?1) AND (?2 IS NULL OR context_type = ?2) AND (?3 IS NULL OR priority >= ?3) \
         ORDER BY priority DESC, title ASC",
    )
    .bind(category)
    .bind(context_type)
    .bind(min_priority)
    .fetch_all(&mut *conn)
    .await
}
