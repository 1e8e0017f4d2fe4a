//! `pm_sprints`: reads, the commands' writes and the import's.
use std::sync::LazyLock;

use sqlx::SqliteConnection;

use super::rows::SprintRow;

/// Every column of `pm_sprints`, in [`SprintRow`]'s order: each select, insert and the export
/// names them through this list.
pub const SPRINT_COLUMNS: &str = "id, project_id, name, goal, start_date, end_date, status, \
     version, created_at, updated_at, created_by, updated_by, deleted_at";

pub async fn sprint(conn: &mut SqliteConnection, id: &str) -> sqlx::Result<Option<SprintRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!("SELECT {SPRINT_COLUMNS} FROM pm_sprints WHERE id = ? AND deleted_at IS NULL")
    });
    sqlx::query_as(&SQL)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
}

/// A sprint whether deleted or not (an import revives a deleted one).
pub async fn sprint_any(conn: &mut SqliteConnection, id: &str) -> sqlx::Result<Option<SprintRow>> {
    static SQL: LazyLock<String> =
        LazyLock::new(|| format!("SELECT {SPRINT_COLUMNS} FROM pm_sprints WHERE id = ?"));
    sqlx::query_as(&SQL)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
}

pub async fn sprints(
    conn: &mut SqliteConnection,
    project_id: &str,
) -> sqlx::Result<Vec<SprintRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {SPRINT_COLUMNS} FROM pm_sprints WHERE project_id = ? AND deleted_at IS NULL \
             ORDER BY start_date DESC, id"
        )
    });
    sqlx::query_as(&SQL)
        .bind(project_id)
        .fetch_all(&mut *conn)
        .await
}

/// How many live sprints of the project are active, `except` one of them if given.
pub async fn active_count(
    conn: &mut SqliteConnection,
    project_id: &str,
    except: Option<&str>,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM pm_sprints WHERE project_id = ? AND status = 'active' AND deleted_at IS NULL \
         AND id IS NOT ?",
    )
    .bind(project_id)
    .bind(except)
    .fetch_one(&mut *conn)
    .await
}

/// Writes a new sprint row, every column as `row` has it.
pub async fn insert(conn: &mut SqliteConnection, row: &SprintRow) -> sqlx::Result<()> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "INSERT INTO pm_sprints ({SPRINT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
    });
    sqlx::query(&SQL)
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
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A command's edit of `row`'s editable fields, as a new version by `row.updated_by` at
/// `row.updated_at`.
pub async fn update(conn: &mut SqliteConnection, row: &SprintRow) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE pm_sprints SET name = ?, goal = ?, start_date = ?, end_date = ?, status = ?, version = version + 1, \
         updated_at = ?, updated_by = ? WHERE id = ?",
    )
    .bind(&row.name)
    .bind(&row.goal)
    .bind(row.start_date)
    .bind(row.end_date)
    .bind(&row.status)
    .bind(row.updated_at)
    .bind(&row.updated_by)
    .bind(&row.id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// An imported row over a stored one, revived if it was deleted (its project stays).
pub async fn replace(conn: &mut SqliteConnection, row: &SprintRow) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE pm_sprints SET name = ?, goal = ?, start_date = ?, end_date = ?, status = ?, version = ?, \
         created_at = ?, updated_at = ?, created_by = ?, updated_by = ?, deleted_at = NULL WHERE id = ?",
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
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn soft_delete(
    conn: &mut SqliteConnection,
    id: &str,
    now: i64,
    user_id: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE pm_sprints SET deleted_at = ?, updated_at = ?, updated_by = ? WHERE id = ?",
    )
    .bind(now)
    .bind(now)
    .bind(user_id)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
