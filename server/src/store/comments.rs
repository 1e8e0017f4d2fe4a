//! `pm_comments`: reads, the commands' writes and the import's.
use std::sync::LazyLock;

use super::{Backend, Conn};
use crate::on;

use super::queries::qualified;
use super::rows::CommentRow;

/// Every column of `pm_comments`, in [`CommentRow`]'s order: each select, insert and the export
/// names them through this list.
pub const COMMENT_COLUMNS: &str =
    "id, work_item_id, content, created_at, updated_at, created_by, updated_by, deleted_at";

pub async fn comment(conn: &mut Conn<'_>, id: &str) -> sqlx::Result<Option<CommentRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!("SELECT {COMMENT_COLUMNS} FROM pm_comments WHERE id = $1 AND deleted_at IS NULL")
    });
    on!(conn, |c| sqlx::query_as(&SQL)
        .bind(id)
        .fetch_optional(c)
        .await)
}

/// A comment whether deleted or not (an import revives a deleted one).
pub async fn comment_any(conn: &mut Conn<'_>, id: &str) -> sqlx::Result<Option<CommentRow>> {
    static SQL: LazyLock<String> =
        LazyLock::new(|| format!("SELECT {COMMENT_COLUMNS} FROM pm_comments WHERE id = $1"));
    on!(conn, |c| sqlx::query_as(&SQL)
        .bind(id)
        .fetch_optional(c)
        .await)
}

pub async fn comments(conn: &mut Conn<'_>, work_item_id: &str) -> sqlx::Result<Vec<CommentRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {COMMENT_COLUMNS} FROM pm_comments WHERE work_item_id = $1 AND deleted_at IS NULL \
             ORDER BY created_at, rowid"
        )
    });
    // SQLite's rowid orders comments as they were written; PostgreSQL has none, and orders by
    // id (time-ordered for comments pm writes) instead.
    static PG: LazyLock<String> = LazyLock::new(|| SQL.replace("rowid", "id"));
    let sql = match conn.backend() {
        Backend::Sqlite => &SQL,
        Backend::Postgres => &PG,
    };
    on!(conn, |c| sqlx::query_as(sql.as_str())
        .bind(work_item_id)
        .fetch_all(c)
        .await)
}

/// Comments of a whole project (for a board snapshot).
pub async fn project_comments(
    conn: &mut Conn<'_>,
    project_id: &str,
) -> sqlx::Result<Vec<CommentRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {} FROM pm_comments c JOIN pm_work_items w ON w.id = c.work_item_id \
             WHERE w.project_id = $1 AND c.deleted_at IS NULL AND w.deleted_at IS NULL \
             ORDER BY c.created_at, c.rowid",
            qualified("c", COMMENT_COLUMNS)
        )
    });
    static PG: LazyLock<String> = LazyLock::new(|| SQL.replace("c.rowid", "c.id"));
    let sql = match conn.backend() {
        Backend::Sqlite => &SQL,
        Backend::Postgres => &PG,
    };
    on!(conn, |c| sqlx::query_as(sql.as_str())
        .bind(project_id)
        .fetch_all(c)
        .await)
}

/// Writes a new comment row, every column as `row` has it.
pub async fn insert(conn: &mut Conn<'_>, row: &CommentRow) -> sqlx::Result<()> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "INSERT INTO pm_comments ({COMMENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        )
    });
    on!(conn, |c| sqlx::query(&SQL)
        .bind(&row.id)
        .bind(&row.work_item_id)
        .bind(&row.content)
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

/// A command's edit of the text.
pub async fn update_content(
    conn: &mut Conn<'_>,
    id: &str,
    content: &str,
    now: i64,
    user_id: &str,
) -> sqlx::Result<()> {
    on!(conn, |c| sqlx::query(
        "UPDATE pm_comments SET content = $1, updated_at = $2, updated_by = $3 WHERE id = $4"
    )
    .bind(content)
    .bind(now)
    .bind(user_id)
    .bind(id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// An imported row over a stored one, revived if it was deleted (its work item stays).
pub async fn replace(conn: &mut Conn<'_>, row: &CommentRow) -> sqlx::Result<()> {
    on!(conn, |c| {
        sqlx::query(
        "UPDATE pm_comments SET content = $1, created_at = $2, updated_at = $3, created_by = $4, updated_by = $5, \
         deleted_at = NULL WHERE id = $6",
    )
    .bind(&row.content)
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
        "UPDATE pm_comments SET deleted_at = $1, updated_at = $2, updated_by = $3 WHERE id = $4",
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
