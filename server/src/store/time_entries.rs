//! `pm_time_entries`: reads, the commands' writes and the import's.
use std::sync::LazyLock;

use sqlx::SqliteConnection;

use super::queries::qualified;
use super::rows::TimeEntryRow;

/// Every column of `pm_time_entries`, in [`TimeEntryRow`]'s order: each select, insert and the
/// export names them through this list.
pub const TIME_ENTRY_COLUMNS: &str = "id, work_item_id, user_id, started_at, ended_at, \
     duration_seconds, description, created_at, updated_at, deleted_at";

pub async fn time_entry(
    conn: &mut SqliteConnection,
    id: &str,
) -> sqlx::Result<Option<TimeEntryRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {TIME_ENTRY_COLUMNS} FROM pm_time_entries WHERE id = ? AND deleted_at IS NULL"
        )
    });
    sqlx::query_as(&SQL)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
}

/// An entry whether deleted or not (an import revives a deleted one).
pub async fn time_entry_any(
    conn: &mut SqliteConnection,
    id: &str,
) -> sqlx::Result<Option<TimeEntryRow>> {
    static SQL: LazyLock<String> =
        LazyLock::new(|| format!("SELECT {TIME_ENTRY_COLUMNS} FROM pm_time_entries WHERE id = ?"));
    sqlx::query_as(&SQL)
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
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {TIME_ENTRY_COLUMNS} FROM pm_time_entries WHERE work_item_id = ? AND deleted_at IS NULL \
             ORDER BY started_at DESC, id LIMIT ? OFFSET ?"
        )
    });
    let rows = sqlx::query_as(&SQL)
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
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {TIME_ENTRY_COLUMNS} FROM pm_time_entries \
             WHERE user_id = ? AND ended_at IS NULL AND deleted_at IS NULL ORDER BY started_at DESC, id LIMIT 1"
        )
    });
    sqlx::query_as(&SQL)
        .bind(user_id)
        .fetch_optional(&mut *conn)
        .await
}

/// Time entries on the live items of a project (for a board snapshot).
pub async fn project_time_entries(
    conn: &mut SqliteConnection,
    project_id: &str,
) -> sqlx::Result<Vec<TimeEntryRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {} FROM pm_time_entries t JOIN pm_work_items w ON w.id = t.work_item_id \
             WHERE w.project_id = ? AND t.deleted_at IS NULL AND w.deleted_at IS NULL \
             ORDER BY t.started_at, t.id",
            qualified("t", TIME_ENTRY_COLUMNS)
        )
    });
    sqlx::query_as(&SQL)
        .bind(project_id)
        .fetch_all(&mut *conn)
        .await
}

/// Writes a new entry row, every column as `row` has it.
pub async fn insert(conn: &mut SqliteConnection, row: &TimeEntryRow) -> sqlx::Result<()> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "INSERT INTO pm_time_entries ({TIME_ENTRY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
    });
    sqlx::query(&SQL)
        .bind(&row.id)
        .bind(&row.work_item_id)
        .bind(&row.user_id)
        .bind(row.started_at)
        .bind(row.ended_at)
        .bind(row.duration_seconds)
        .bind(&row.description)
        .bind(row.created_at)
        .bind(row.updated_at)
        .bind(row.deleted_at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A command's edit: times, duration and text as `row` has them, at `row.updated_at`.
pub async fn update(conn: &mut SqliteConnection, row: &TimeEntryRow) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE pm_time_entries SET started_at = ?, ended_at = ?, duration_seconds = ?, description = ?, \
         updated_at = ? WHERE id = ?",
    )
    .bind(row.started_at)
    .bind(row.ended_at)
    .bind(row.duration_seconds)
    .bind(&row.description)
    .bind(row.updated_at)
    .bind(&row.id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Stops a running entry.
pub async fn finish(
    conn: &mut SqliteConnection,
    id: &str,
    ended_at: i64,
    duration_seconds: i64,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE pm_time_entries SET ended_at = ?, duration_seconds = ?, updated_at = ? WHERE id = ?",
    )
    .bind(ended_at)
    .bind(duration_seconds)
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// An imported row over a stored one, revived if it was deleted (its item and user stay).
pub async fn replace(conn: &mut SqliteConnection, row: &TimeEntryRow) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE pm_time_entries SET started_at = ?, ended_at = ?, duration_seconds = ?, description = ?, \
         created_at = ?, updated_at = ?, deleted_at = NULL WHERE id = ?",
    )
    .bind(row.started_at)
    .bind(row.ended_at)
    .bind(row.duration_seconds)
    .bind(&row.description)
    .bind(row.created_at)
    .bind(row.updated_at)
    .bind(&row.id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn soft_delete(conn: &mut SqliteConnection, id: &str, now: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE pm_time_entries SET deleted_at = ?, updated_at = ? WHERE id = ?")
        .bind(now)
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
