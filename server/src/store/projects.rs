//! `pm_projects` and `pm_project_members`: reads, the commands' writes and the import's.
use std::collections::HashMap;
use std::sync::LazyLock;

use super::Conn;
use crate::on;

use super::rows::ProjectRow;

/// Every column of `pm_projects`, in [`ProjectRow`]'s order: each select, insert and the export
/// names them through this list.
pub const PROJECT_COLUMNS: &str = "id, title, description, key, status, version, \
     next_work_item_number, created_at, updated_at, created_by, updated_by, deleted_at";

pub async fn project(conn: &mut Conn<'_>, id: &str) -> sqlx::Result<Option<ProjectRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!("SELECT {PROJECT_COLUMNS} FROM pm_projects WHERE id = $1 AND deleted_at IS NULL")
    });
    on!(conn, |c| sqlx::query_as(&SQL)
        .bind(id)
        .fetch_optional(c)
        .await)
}

/// A project whether deleted or not (an import revives a deleted one).
pub async fn project_any(conn: &mut Conn<'_>, id: &str) -> sqlx::Result<Option<ProjectRow>> {
    static SQL: LazyLock<String> =
        LazyLock::new(|| format!("SELECT {PROJECT_COLUMNS} FROM pm_projects WHERE id = $1"));
    on!(conn, |c| sqlx::query_as(&SQL)
        .bind(id)
        .fetch_optional(c)
        .await)
}

pub async fn project_by_key(conn: &mut Conn<'_>, key: &str) -> sqlx::Result<Option<ProjectRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!("SELECT {PROJECT_COLUMNS} FROM pm_projects WHERE key = $1 AND deleted_at IS NULL")
    });
    on!(conn, |c| sqlx::query_as(&SQL)
        .bind(key)
        .fetch_optional(c)
        .await)
}

/// The live project other than `id` that holds `key`, if any.
pub async fn key_holder(conn: &mut Conn<'_>, key: &str, id: &str) -> sqlx::Result<Option<String>> {
    on!(conn, |c| sqlx::query_scalar(
        "SELECT id FROM pm_projects WHERE key = $1 AND id <> $2 AND deleted_at IS NULL",
    )
    .bind(key)
    .bind(id)
    .fetch_optional(c)
    .await)
}

/// Live projects by title (the project list).
pub async fn projects(conn: &mut Conn<'_>) -> sqlx::Result<Vec<ProjectRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {PROJECT_COLUMNS} FROM pm_projects WHERE deleted_at IS NULL \
             ORDER BY LOWER(title), id"
        )
    });
    on!(conn, |c| sqlx::query_as(&SQL).fetch_all(c).await)
}

/// Live projects by creation (the export's order).
pub async fn projects_by_creation(conn: &mut Conn<'_>) -> sqlx::Result<Vec<ProjectRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {PROJECT_COLUMNS} FROM pm_projects WHERE deleted_at IS NULL \
             ORDER BY created_at, id"
        )
    });
    on!(conn, |c| sqlx::query_as(&SQL).fetch_all(c).await)
}

/// The keys of the live projects by id.
pub async fn keys(conn: &mut Conn<'_>) -> sqlx::Result<HashMap<String, String>> {
    let rows: Vec<(String, String)> = on!(conn, |c| sqlx::query_as(
        "SELECT id, key FROM pm_projects WHERE deleted_at IS NULL"
    )
    .fetch_all(c)
    .await)?;
    Ok(rows.into_iter().collect())
}

/// A live project and the position a new item gets under `parent_id` (at the end of its
/// siblings), in one round trip.
pub async fn project_and_next_position(
    conn: &mut Conn<'_>,
    project_id: &str,
    parent_id: Option<&str>,
) -> sqlx::Result<Option<(ProjectRow, i64)>> {
    use sqlx::{FromRow, Row};
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {PROJECT_COLUMNS}, \
             (SELECT COALESCE(MAX(position), 0) + 1 FROM pm_work_items \
              WHERE project_id = $1 AND parent_id IS NOT DISTINCT FROM $2 AND deleted_at IS NULL) AS next_position \
             FROM pm_projects WHERE id = $1 AND deleted_at IS NULL"
        )
    });
    on!(conn, |c| {
        let Some(row) = sqlx::query(&SQL)
            .bind(project_id)
            .bind(parent_id)
            .fetch_optional(c)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some((
            ProjectRow::from_row(&row)?,
            row.try_get("next_position")?,
        )))
    })
}

/// Writes a new project row, every column as `row` has it.
pub async fn insert(conn: &mut Conn<'_>, row: &ProjectRow) -> sqlx::Result<()> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "INSERT INTO pm_projects ({PROJECT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        )
    });
    on!(conn, |c| sqlx::query(&SQL)
        .bind(&row.id)
        .bind(&row.title)
        .bind(&row.description)
        .bind(&row.key)
        .bind(&row.status)
        .bind(row.version)
        .bind(row.next_work_item_number)
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

/// An edit: the editable fields, a new version, who and when.
pub async fn update(
    conn: &mut Conn<'_>,
    id: &str,
    title: &str,
    description: Option<&str>,
    status: &str,
    now: i64,
    user_id: &str,
) -> sqlx::Result<()> {
    on!(conn, |c| {
        sqlx::query(
        "UPDATE pm_projects SET title = $1, description = $2, status = $3, version = version + 1, updated_at = $4, \
         updated_by = $5 WHERE id = $6",
    )
    .bind(title)
    .bind(description)
    .bind(status)
    .bind(now)
    .bind(user_id)
    .bind(id)
    .execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// An imported row over a stored one, revived if it was deleted. Its item counter never goes
/// down: numbers already used stay used.
pub async fn replace(conn: &mut Conn<'_>, row: &ProjectRow) -> sqlx::Result<()> {
    on!(conn, |c| {
        sqlx::query(
        "UPDATE pm_projects SET title = $1, description = $2, key = $3, status = $4, version = $5, \
         next_work_item_number = CASE WHEN next_work_item_number > $6 THEN next_work_item_number ELSE $6 END, created_at = $7, updated_at = $8, \
         created_by = $9, updated_by = $10, deleted_at = NULL WHERE id = $11",
    )
    .bind(&row.title)
    .bind(&row.description)
    .bind(&row.key)
    .bind(&row.status)
    .bind(row.version)
    .bind(row.next_work_item_number)
    .bind(row.created_at)
    .bind(row.updated_at)
    .bind(&row.created_by)
    .bind(&row.updated_by)
    .bind(&row.id)
    .execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Raises the project's next item number above every number its items use.
pub async fn renumber(conn: &mut Conn<'_>, id: &str) -> sqlx::Result<()> {
    on!(conn, |c| {
        sqlx::query(
        "UPDATE pm_projects SET next_work_item_number = (SELECT CASE WHEN MAX(item_number) + 1 > pm_projects.next_work_item_number \
         THEN MAX(item_number) + 1 ELSE pm_projects.next_work_item_number END FROM pm_work_items WHERE project_id = $1) WHERE id = $1",
    )
    .bind(id)
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
        "UPDATE pm_projects SET deleted_at = $1, updated_at = $2, updated_by = $3 WHERE id = $4",
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
