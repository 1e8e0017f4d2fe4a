//! `pm_work_items`: reads, the commands' writes and the import's.
use std::sync::LazyLock;

use super::Conn;
use crate::on;
use pm_shared::domain::{Status, WorkItemField};

use super::hierarchy;
use super::rows::WorkItemRow;

/// Every column of `pm_work_items`, in [`WorkItemRow`]'s order: each select, insert and the
/// export names them through this list.
pub const WORK_ITEM_COLUMNS: &str = "id, item_type, parent_id, project_id, position, title, \
     description, status, priority, story_points, assignee_id, sprint_id, item_number, version, \
     created_at, updated_at, created_by, updated_by, deleted_at";

pub async fn work_item(conn: &mut Conn<'_>, id: &str) -> sqlx::Result<Option<WorkItemRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {WORK_ITEM_COLUMNS} FROM pm_work_items WHERE id = $1 AND deleted_at IS NULL"
        )
    });
    on!(conn, |c| sqlx::query_as(&SQL)
        .bind(id)
        .fetch_optional(c)
        .await)
}

/// An item whether deleted or not (an import revives a deleted one).
pub async fn work_item_any(conn: &mut Conn<'_>, id: &str) -> sqlx::Result<Option<WorkItemRow>> {
    static SQL: LazyLock<String> =
        LazyLock::new(|| format!("SELECT {WORK_ITEM_COLUMNS} FROM pm_work_items WHERE id = $1"));
    on!(conn, |c| sqlx::query_as(&SQL)
        .bind(id)
        .fetch_optional(c)
        .await)
}

/// A live item and its hierarchy lists (as [`hierarchy::FILL_SQL`] rows), in one round trip.
pub async fn work_item_with_lists(
    conn: &mut Conn<'_>,
    id: &str,
) -> sqlx::Result<Option<(WorkItemRow, Vec<hierarchy::FillRow>)>> {
    Ok(work_items_with_lists(conn, &[id]).await?.pop())
}

/// Live items and their hierarchy lists, all in one round trip: per id, a one-column marker
/// row, the item's row and its walks, told apart by their width (an item that is gone has no
/// row, and its walks may still find ancestors, so the marker says whose rows follow).
pub async fn work_items_with_lists(
    conn: &mut Conn<'_>,
    ids: &[&str],
) -> sqlx::Result<Vec<(WorkItemRow, Vec<hierarchy::FillRow>)>> {
    work_items_with_lists_after(conn, None, ids).await
}

/// [`work_items_with_lists`], on SQLite after the statements `first` in the same round trip
/// (the writer's BEGIN). PostgreSQL runs `first` on its own.
pub async fn work_items_with_lists_after(
    conn: &mut Conn<'_>,
    first: Option<&'static str>,
    ids: &[&str],
) -> sqlx::Result<Vec<(WorkItemRow, Vec<hierarchy::FillRow>)>> {
    use sqlx::{FromRow, Row};
    static ONE: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT ?;\nSELECT {WORK_ITEM_COLUMNS} FROM pm_work_items WHERE id = ? AND deleted_at IS NULL;\n{}",
            hierarchy::FILL_SQL
        )
    });
    if ids.is_empty() {
        if let Some(first) = first {
            crate::store::pipeline::raw(conn, first).await?;
        }
        return Ok(Vec::new());
    }
    let conn = match conn {
        Conn::Sqlite(c) => c,
        Conn::Postgres(c) => {
            if let Some(first) = first {
                sqlx::Executor::execute(&mut **c, first).await?;
            }
            // A prepared statement is one statement: every item with its walks (as arrays) in
            // one, the items in the order asked for.
            let rows = sqlx::query(&WITH_LISTS_PG)
                .bind(ids)
                .bind(hierarchy::MAX_DEPTH)
                .fetch_all(&mut **c)
                .await?;
            let mut found = Vec::with_capacity(rows.len());
            for row in &rows {
                let ancestors: Vec<String> = row.try_get("pm_ancestors")?;
                let descendants: Vec<String> = row.try_get("pm_descendants")?;
                let lists = ancestors
                    .into_iter()
                    .map(|id| (0, id, 0))
                    .chain(descendants.into_iter().map(|id| (1, id, 0)))
                    .collect();
                found.push((WorkItemRow::from_row(row)?, lists));
            }
            return Ok(found);
        }
    };
    let mut sql = first.map(|f| format!("{f};\n")).unwrap_or_default();
    sql.push_str(&vec![ONE.as_str(); ids.len()].join(";\n"));
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
    let rows = query.fetch_all(&mut **conn).await?;
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

/// A live item with its ancestors (nearest first) and descendants (breadth first) as arrays,
/// in PostgreSQL's words: the walks of [`hierarchy::FILL_SQL`].
static WITH_LISTS_PG: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {WORK_ITEM_COLUMNS}, \
         ARRAY(WITH RECURSIVE up(id, parent_id, depth) AS ( \
             SELECT id, parent_id, CAST(0 AS BIGINT) FROM pm_work_items WHERE id = asked.id \
             UNION ALL SELECT w.id, w.parent_id, up.depth + 1 FROM pm_work_items w \
             JOIN up ON w.id = up.parent_id WHERE w.deleted_at IS NULL AND up.depth < $2) \
           SELECT id FROM up WHERE depth > 0 ORDER BY depth) AS pm_ancestors, \
         ARRAY(WITH RECURSIVE down(id, depth) AS ( \
             SELECT id, CAST(0 AS BIGINT) FROM pm_work_items WHERE id = asked.id \
             UNION ALL SELECT w.id, down.depth + 1 FROM pm_work_items w \
             JOIN down ON w.parent_id = down.id WHERE w.deleted_at IS NULL AND down.depth < $2) \
           SELECT id FROM down WHERE depth > 0 ORDER BY depth, id) AS pm_descendants \
         FROM pm_work_items AS asked WHERE asked.id = ANY($1) AND asked.deleted_at IS NULL \
         ORDER BY array_position($1, asked.id)"
    )
});

pub async fn work_item_by_number(
    conn: &mut Conn<'_>,
    project_id: &str,
    number: i32,
) -> sqlx::Result<Option<WorkItemRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {WORK_ITEM_COLUMNS} FROM pm_work_items \
             WHERE project_id = $1 AND item_number = $2 AND deleted_at IS NULL"
        )
    });
    on!(conn, |c| sqlx::query_as(&SQL)
        .bind(project_id)
        .bind(number)
        .fetch_optional(c)
        .await)
}

/// Another item of the project (live or not) that has `number`, if any.
pub async fn number_holder(
    conn: &mut Conn<'_>,
    project_id: &str,
    number: i64,
    id: &str,
) -> sqlx::Result<Option<String>> {
    on!(conn, |c| sqlx::query_scalar(
        "SELECT id FROM pm_work_items WHERE project_id = $1 AND item_number = $2 AND id <> $3",
    )
    .bind(project_id)
    .bind(number)
    .bind(id)
    .fetch_optional(c)
    .await)
}

pub async fn work_items(conn: &mut Conn<'_>, project_id: &str) -> sqlx::Result<Vec<WorkItemRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {WORK_ITEM_COLUMNS} FROM pm_work_items WHERE project_id = $1 AND deleted_at IS NULL \
             ORDER BY position, item_number"
        )
    });
    on!(conn, |c| sqlx::query_as(&SQL)
        .bind(project_id)
        .fetch_all(c)
        .await)
}

/// The first `per_lane` live items of each lane (status) of a project, in board order: a
/// preview of its board. One query a lane, each walking the (project, position) index until it
/// has its cards: a screenful read, whatever the project's size.
pub async fn first_per_lane(
    conn: &mut Conn<'_>,
    project_id: &str,
    per_lane: i64,
) -> sqlx::Result<Vec<WorkItemRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {WORK_ITEM_COLUMNS} FROM pm_work_items WHERE project_id = $1 AND status = $2 \
             AND deleted_at IS NULL ORDER BY position, item_number LIMIT $3"
        )
    });
    let mut rows = Vec::new();
    for status in Status::ALL {
        let lane: Vec<WorkItemRow> = on!(conn, |c| sqlx::query_as(&SQL)
            .bind(project_id)
            .bind(status.as_str())
            .bind(per_lane)
            .fetch_all(c)
            .await)?;
        rows.extend(lane);
    }
    Ok(rows)
}

/// How many live items each status of a project has.
pub async fn lane_counts(
    conn: &mut Conn<'_>,
    project_id: &str,
) -> sqlx::Result<Vec<(String, i64)>> {
    on!(conn, |c| sqlx::query_as(
        "SELECT status, COUNT(*) FROM pm_work_items WHERE project_id = $1 AND deleted_at IS NULL \
         GROUP BY status"
    )
    .bind(project_id)
    .fetch_all(c)
    .await)
}

/// The project of a live item.
pub async fn live_project_of(conn: &mut Conn<'_>, id: &str) -> sqlx::Result<Option<String>> {
    on!(conn, |c| sqlx::query_scalar(
        "SELECT project_id FROM pm_work_items WHERE id = $1 AND deleted_at IS NULL"
    )
    .bind(id)
    .fetch_optional(c)
    .await)
}

/// The project of an item, deleted or not.
pub async fn project_of(conn: &mut Conn<'_>, id: &str) -> sqlx::Result<Option<String>> {
    on!(conn, |c| sqlx::query_scalar(
        "SELECT project_id FROM pm_work_items WHERE id = $1"
    )
    .bind(id)
    .fetch_optional(c)
    .await)
}

pub async fn live_children(conn: &mut Conn<'_>, id: &str) -> sqlx::Result<i64> {
    on!(conn, |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM pm_work_items WHERE parent_id = $1 AND deleted_at IS NULL",
    )
    .bind(id)
    .fetch_one(c)
    .await)
}

/// The types of an item's live children (each once).
pub async fn live_child_types(conn: &mut Conn<'_>, id: &str) -> sqlx::Result<Vec<String>> {
    on!(conn, |c| sqlx::query_scalar(
        "SELECT DISTINCT item_type FROM pm_work_items WHERE parent_id = $1 AND deleted_at IS NULL",
    )
    .bind(id)
    .fetch_all(c)
    .await)
}

pub async fn live_items_in_project(conn: &mut Conn<'_>, project_id: &str) -> sqlx::Result<i64> {
    on!(conn, |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM pm_work_items WHERE project_id = $1 AND deleted_at IS NULL",
    )
    .bind(project_id)
    .fetch_one(c)
    .await)
}

/// A new item from a command: its project's next item number is taken (1 parameter: the
/// project), then the row is written (14 parameters, in [`WORK_ITEM_COLUMNS`] order: a new
/// item has no story points, assignee or sprint, and is at version 1).
pub static CREATE_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE pm_projects SET next_work_item_number = next_work_item_number + 1 WHERE id = ?; \
         INSERT INTO pm_work_items ({WORK_ITEM_COLUMNS}) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, ?, 1, ?, ?, ?, ?, NULL)"
    )
});

/// The column that holds an editable field.
pub fn column(field: WorkItemField) -> &'static str {
    match field {
        WorkItemField::Title => "title",
        WorkItemField::Description => "description",
        WorkItemField::Status => "status",
        WorkItemField::Priority => "priority",
        WorkItemField::StoryPoints => "story_points",
        WorkItemField::Position => "position",
        WorkItemField::AssigneeId => "assignee_id",
        WorkItemField::SprintId => "sprint_id",
        WorkItemField::ParentId => "parent_id",
        WorkItemField::ItemType => "item_type",
    }
}

/// The UPDATE of a command that sets exactly `fields` (one parameter each, in order), then
/// the updated_at and updated_by parameters and the id; the version goes up by one.
pub fn update_sql(fields: &[WorkItemField]) -> String {
    let mut sql = String::from("UPDATE pm_work_items SET ");
    for field in fields {
        sql.push_str(column(*field));
        sql.push_str(" = ?, ");
    }
    sql.push_str("version = version + 1, updated_at = ?, updated_by = ? WHERE id = ?");
    sql
}

/// Writes a new item row, every column as `row` has it (the import's insert).
pub async fn insert(conn: &mut Conn<'_>, row: &WorkItemRow) -> sqlx::Result<()> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "INSERT INTO pm_work_items ({WORK_ITEM_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
        )
    });
    on!(conn, |c| sqlx::query(&SQL)
        .bind(&row.id)
        .bind(&row.item_type)
        .bind(&row.parent_id)
        .bind(&row.project_id)
        .bind(row.position)
        .bind(&row.title)
        .bind(&row.description)
        .bind(&row.status)
        .bind(&row.priority)
        .bind(row.story_points)
        .bind(&row.assignee_id)
        .bind(&row.sprint_id)
        .bind(row.item_number)
        .bind(row.version)
        .bind(row.created_at)
        .bind(row.updated_at)
        .bind(&row.created_by)
        .bind(&row.updated_by)
        .bind(row.deleted_at)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// An imported row over a stored one, revived if it was deleted (its type and project stay).
pub async fn replace(conn: &mut Conn<'_>, row: &WorkItemRow) -> sqlx::Result<()> {
    on!(conn, |c| {
        sqlx::query(
        "UPDATE pm_work_items SET parent_id = $1, position = $2, title = $3, description = $4, status = $5, \
         priority = $6, story_points = $7, assignee_id = $8, sprint_id = $9, item_number = $10, version = $11, \
         created_at = $12, updated_at = $13, created_by = $14, updated_by = $15, deleted_at = NULL WHERE id = $16",
    )
    .bind(&row.parent_id)
    .bind(row.position)
    .bind(&row.title)
    .bind(&row.description)
    .bind(&row.status)
    .bind(&row.priority)
    .bind(row.story_points)
    .bind(&row.assignee_id)
    .bind(&row.sprint_id)
    .bind(row.item_number)
    .bind(row.version)
    .bind(row.created_at)
    .bind(row.updated_at)
    .bind(&row.created_by)
    .bind(&row.updated_by)
    .bind(&row.id)
    .execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

pub async fn soft_delete(
    conn: &mut Conn<'_>,
    id: &str,
    now: i64,
    user_id: &str,
) -> sqlx::Result<()> {
    on!(conn, |c| sqlx::query(
        "UPDATE pm_work_items SET deleted_at = $1, updated_at = $2, updated_by = $3 WHERE id = $4",
    )
    .bind(now)
    .bind(now)
    .bind(user_id)
    .bind(id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Takes every live item of a sprint out of it in one statement, as a new version of each;
/// answers their (item number, id).
pub async fn leave_sprint(
    conn: &mut Conn<'_>,
    sprint_id: &str,
    now: i64,
    user_id: &str,
) -> sqlx::Result<Vec<(i64, String)>> {
    on!(conn, |c| sqlx::query_as(
        "UPDATE pm_work_items SET sprint_id = NULL, version = version + 1, updated_at = $1, \
         updated_by = $2 WHERE sprint_id = $3 AND deleted_at IS NULL RETURNING item_number, id",
    )
    .bind(now)
    .bind(user_id)
    .bind(sprint_id)
    .fetch_all(c)
    .await)
}
