//! `pm_sprints`: reads, the commands' writes and the import's.
use std::sync::LazyLock;

use super::Conn;
use crate::on;

use super::rows::SprintRow;

/// Every column of `pm_sprints`, in [`SprintRow`]'s order: each select, insert and the export
/// names them through this list.
pub const SPRINT_COLUMNS: &str = "id, project_id, name, goal, start_date, end_date, status, \
     version, created_at, updated_at, created_by, updated_by, deleted_at";

pub async fn sprint(conn: &mut Conn<'_>, id: &str) -> sqlx::Result<Option<SprintRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!("SELECT {SPRINT_COLUMNS} FROM pm_sprints WHERE id = $1 AND deleted_at IS NULL")
    });
    on!(conn, |c| sqlx::query_as(&SQL)
        .bind(id)
        .fetch_optional(c)
        .await)
}

/// A sprint whether deleted or not (an import revives a deleted one).
pub async fn sprint_any(conn: &mut Conn<'_>, id: &str) -> sqlx::Result<Option<SprintRow>> {
    static SQL: LazyLock<String> =
        LazyLock::new(|| format!("SELECT {SPRINT_COLUMNS} FROM pm_sprints WHERE id = $1"));
    on!(conn, |c| sqlx::query_as(&SQL)
        .bind(id)
        .fetch_optional(c)
        .await)
}

pub async fn sprints(conn: &mut Conn<'_>, project_id: &str) -> sqlx::Result<Vec<SprintRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {SPRINT_COLUMNS} FROM pm_sprints WHERE project_id = $1 AND deleted_at IS NULL \
             ORDER BY start_date DESC, id"
        )
    });
    on!(conn, |c| sqlx::query_as(&SQL)
        .bind(project_id)
        .fetch_all(c)
        .await)
}

/// How many live sprints of the project are active, `except` one of them if given.
pub async fn active_count(
    conn: &mut Conn<'_>,
    project_id: &str,
    except: Option<&str>,
) -> sqlx::Result<i64> {
    on!(conn, |c| {
        sqlx::query_scalar(
        "SELECT COUNT(*) FROM pm_sprints WHERE project_id = $1 AND status = 'active' AND deleted_at IS NULL \
         AND id IS DISTINCT FROM $2",
    )
    .bind(project_id)
    .bind(except)
    .fetch_one(c).await
    })
}

/// Writes a new sprint row, every column as `row` has it.
pub async fn insert(conn: &mut Conn<'_>, row: &SprintRow) -> sqlx::Result<()> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "INSERT INTO pm_sprints ({SPRINT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        )
    });
    on!(conn, |c| sqlx::query(&SQL)
        .bind(&row.id)
        .bind(&row.project_id)
        .bind(&row.name)
        .bind(&row.goal)
        .bind(row.start_date)
        .bind(row.end_date)
        .bind(&row.status)
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

/// A command's edit of `row`'s editable fields, as a new version by `row.updated_by` at
/// `row.updated_at`.
pub async fn update(conn: &mut Conn<'_>, row: &SprintRow) -> sqlx::Result<()> {
    on!(conn, |c| {
        sqlx::query(
        "UPDATE pm_sprints SET name = $1, goal = $2, start_date = $3, end_date = $4, status = $5, version = version + 1, \
         updated_at = $6, updated_by = $7 WHERE id = $8",
    )
    .bind(&row.name)
    .bind(&row.goal)
    .bind(row.start_date)
    .bind(row.end_date)
    .bind(&row.status)
    .bind(row.updated_at)
    .bind(&row.updated_by)
    .bind(&row.id)
    .execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// An imported row over a stored one, revived if it was deleted (its project stays).
pub async fn replace(conn: &mut Conn<'_>, row: &SprintRow) -> sqlx::Result<()> {
    on!(conn, |c| {
        sqlx::query(
        "UPDATE pm_sprints SET name = $1, goal = $2, start_date = $3, end_date = $4, status = $5, version = $6, \
         created_at = $7, updated_at = $8, created_by = $9, updated_by = $10, deleted_at = NULL WHERE id = $11",
    )
    .bind(&row.name)
    .bind(&row.goal)
    .bind(row.start_date)
    .bind(row.end_date)
    .bind(&row.status)
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
        "UPDATE pm_sprints SET deleted_at = $1, updated_at = $2, updated_by = $3 WHERE id = $4",
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
