//! `pm_time_entries`: reads, the commands' writes and the import's.
use std::sync::LazyLock;

use super::Conn;
use crate::on;

use super::queries::qualified;
use super::rows::TimeEntryRow;

/// Every column of `pm_time_entries`, in [`TimeEntryRow`]'s order: each select, insert and the
/// export names them through this list.
pub const TIME_ENTRY_COLUMNS: &str = "id, work_item_id, user_id, started_at, ended_at, \
     duration_seconds, description, created_at, updated_at, deleted_at";

pub async fn time_entry(conn: &mut Conn<'_>, id: &str) -> sqlx::Result<Option<TimeEntryRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {TIME_ENTRY_COLUMNS} FROM pm_time_entries WHERE id = $1 AND deleted_at IS NULL"
        )
    });
    on!(conn, |c| sqlx::query_as(&SQL)
        .bind(id)
        .fetch_optional(c)
        .await)
}

/// An entry whether deleted or not (an import revives a deleted one).
pub async fn time_entry_any(conn: &mut Conn<'_>, id: &str) -> sqlx::Result<Option<TimeEntryRow>> {
    static SQL: LazyLock<String> =
        LazyLock::new(|| format!("SELECT {TIME_ENTRY_COLUMNS} FROM pm_time_entries WHERE id = $1"));
    on!(conn, |c| sqlx::query_as(&SQL)
        .bind(id)
        .fetch_optional(c)
        .await)
}

/// A work item's time entries, latest start first, and how many it has in all.
pub async fn time_entries(
    conn: &mut Conn<'_>,
    work_item_id: &str,
    limit: i64,
    offset: i64,
) -> sqlx::Result<(Vec<TimeEntryRow>, i64)> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {TIME_ENTRY_COLUMNS} FROM pm_time_entries WHERE work_item_id = $1 AND deleted_at IS NULL \
             ORDER BY started_at DESC, id LIMIT $2 OFFSET $3"
        )
    });
    let rows = on!(conn, |c| sqlx::query_as(&SQL)
        .bind(work_item_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(c)
        .await)?;
    let total: i64 = on!(conn, |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM pm_time_entries WHERE work_item_id = $1 AND deleted_at IS NULL",
    )
    .bind(work_item_id)
    .fetch_one(c)
    .await)?;
    Ok((rows, total))
}

/// The user's running timer (the latest started, should there be several).
pub async fn running_timer(
    conn: &mut Conn<'_>,
    user_id: &str,
) -> sqlx::Result<Option<TimeEntryRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {TIME_ENTRY_COLUMNS} FROM pm_time_entries \
             WHERE user_id = $1 AND ended_at IS NULL AND deleted_at IS NULL ORDER BY started_at DESC, id LIMIT 1"
        )
    });
    on!(conn, |c| sqlx::query_as(&SQL)
        .bind(user_id)
        .fetch_optional(c)
        .await)
}

/// Time entries on the live items of a project (for a board snapshot).
pub async fn project_time_entries(
    conn: &mut Conn<'_>,
    project_id: &str,
) -> sqlx::Result<Vec<TimeEntryRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {} FROM pm_time_entries t JOIN pm_work_items w ON w.id = t.work_item_id \
             WHERE w.project_id = $1 AND t.deleted_at IS NULL AND w.deleted_at IS NULL \
             ORDER BY t.started_at, t.id",
            qualified("t", TIME_ENTRY_COLUMNS)
        )
    });
    on!(conn, |c| sqlx::query_as(&SQL)
        .bind(project_id)
        .fetch_all(c)
        .await)
}

/// Writes a new entry row, every column as `row` has it.
pub async fn insert(conn: &mut Conn<'_>, row: &TimeEntryRow) -> sqlx::Result<()> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "INSERT INTO pm_time_entries ({TIME_ENTRY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        )
    });
    on!(conn, |c| sqlx::query(&SQL)
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
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// A command's edit: times, duration and text as `row` has them, at `row.updated_at`.
pub async fn update(conn: &mut Conn<'_>, row: &TimeEntryRow) -> sqlx::Result<()> {
    on!(conn, |c| {
        sqlx::query(
        "UPDATE pm_time_entries SET started_at = $1, ended_at = $2, duration_seconds = $3, description = $4, \
         updated_at = $5 WHERE id = $6",
    )
    .bind(row.started_at)
    .bind(row.ended_at)
    .bind(row.duration_seconds)
    .bind(&row.description)
    .bind(row.updated_at)
    .bind(&row.id)
    .execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Stops a running entry.
pub async fn finish(
    conn: &mut Conn<'_>,
    id: &str,
    ended_at: i64,
    duration_seconds: i64,
    now: i64,
) -> sqlx::Result<()> {
    on!(conn, |c| {
        sqlx::query(
        "UPDATE pm_time_entries SET ended_at = $1, duration_seconds = $2, updated_at = $3 WHERE id = $4",
    )
    .bind(ended_at)
    .bind(duration_seconds)
    .bind(now)
    .bind(id)
    .execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// An imported row over a stored one, revived if it was deleted (its item and user stay).
pub async fn replace(conn: &mut Conn<'_>, row: &TimeEntryRow) -> sqlx::Result<()> {
    on!(conn, |c| {
        sqlx::query(
        "UPDATE pm_time_entries SET started_at = $1, ended_at = $2, duration_seconds = $3, description = $4, \
         created_at = $5, updated_at = $6, deleted_at = NULL WHERE id = $7",
    )
    .bind(row.started_at)
    .bind(row.ended_at)
    .bind(row.duration_seconds)
    .bind(&row.description)
    .bind(row.created_at)
    .bind(row.updated_at)
    .bind(&row.id)
    .execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

pub async fn soft_delete(conn: &mut Conn<'_>, id: &str, now: i64) -> sqlx::Result<()> {
    on!(conn, |c| sqlx::query(
        "UPDATE pm_time_entries SET deleted_at = $1, updated_at = $2 WHERE id = $3"
    )
    .bind(now)
    .bind(now)
    .bind(id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}
