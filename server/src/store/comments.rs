//! `pm_comments`: reads, the commands' writes and the import's.
use std::sync::LazyLock;

use sqlx::SqliteConnection;

use super::queries::qualified;
use super::rows::CommentRow;

/// Every column of `pm_comments`, in [`CommentRow`]'s order: each select, insert and the export
/// names them through this list.
pub const COMMENT_COLUMNS: &str =
    "id, work_item_id, content, created_at, updated_at, created_by, updated_by, deleted_at";

pub async fn comment(conn: &mut SqliteConnection, id: &str) -> sqlx::Result<Option<CommentRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!("SELECT {COMMENT_COLUMNS} FROM pm_comments WHERE id = ? AND deleted_at IS NULL")
    });
    sqlx::query_as(&SQL)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
}

/// A comment whether deleted or not (an import revives a deleted one).
pub async fn comment_any(
    conn: &mut SqliteConnection,
    id: &str,
) -> sqlx::Result<Option<CommentRow>> {
    static SQL: LazyLock<String> =
        LazyLock::new(|| format!("SELECT {COMMENT_COLUMNS} FROM pm_comments WHERE id = ?"));
    sqlx::query_as(&SQL)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
}

pub async fn comments(
    conn: &mut SqliteConnection,
    work_item_id: &str,
) -> sqlx::Result<Vec<CommentRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {COMMENT_COLUMNS} FROM pm_comments WHERE work_item_id = ? AND deleted_at IS NULL \
             ORDER BY created_at, rowid"
        )
    });
    sqlx::query_as(&SQL)
        .bind(work_item_id)
        .fetch_all(&mut *conn)
        .await
}

/// Comments of a whole project (for a board snapshot).
pub async fn project_comments(
    conn: &mut SqliteConnection,
    project_id: &str,
) -> sqlx::Result<Vec<CommentRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {} FROM pm_comments c JOIN pm_work_items w ON w.id = c.work_item_id \
             WHERE w.project_id = ? AND c.deleted_at IS NULL AND w.deleted_at IS NULL \
             ORDER BY c.created_at, c.rowid",
            qualified("c", COMMENT_COLUMNS)
        )
    });
    sqlx::query_as(&SQL)
        .bind(project_id)
        .fetch_all(&mut *conn)
        .await
}

/// Writes a new comment row, every column as `row` has it.
pub async fn insert(conn: &mut SqliteConnection, row: &CommentRow) -> sqlx::Result<()> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!("INSERT INTO pm_comments ({COMMENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
    });
    sqlx::query(&SQL)
        .bind(&row.id)
        .bind(&row.work_item_id)
        .bind(&row.content)
        .bind(row.created_at)
        .bind(row.updated_at)
        .bind(&row.created_by)
        .bind(&row.updated_by)
        .bind(row.deleted_at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A command's edit of the text.
pub async fn update_content(
    conn: &mut SqliteConnection,
    id: &str,
    content: &str,
    now: i64,
    user_id: &str,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE pm_comments SET content = ?, updated_at = ?, updated_by = ? WHERE id = ?")
        .bind(content)
        .bind(now)
        .bind(user_id)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// An imported row over a stored one, revived if it was deleted (its work item stays).
pub async fn replace(conn: &mut SqliteConnection, row: &CommentRow) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE pm_comments SET content = ?, created_at = ?, updated_at = ?, created_by = ?, updated_by = ?, \
         deleted_at = NULL WHERE id = ?",
    )
    .bind(&row.content)
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
        "UPDATE pm_comments SET deleted_at = ?, updated_at = ?, updated_by = ? WHERE id = ?",
    )
    .bind(now)
    .bind(now)
    .bind(user_id)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
