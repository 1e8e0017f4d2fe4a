//! `pm_dependencies`: reads, the commands' writes and the import's. Links are never updated:
//! they are created and (softly) deleted.
use std::sync::LazyLock;

use super::Conn;
use crate::on;

use super::queries::qualified;
use super::rows::DependencyRow;

/// Every column of `pm_dependencies`, in [`DependencyRow`]'s order: each select, insert and the
/// export names them through this list.
pub const DEPENDENCY_COLUMNS: &str =
    "id, blocking_item_id, blocked_item_id, dependency_type, created_at, created_by, deleted_at";

pub async fn dependency(conn: &mut Conn<'_>, id: &str) -> sqlx::Result<Option<DependencyRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {DEPENDENCY_COLUMNS} FROM pm_dependencies WHERE id = $1 AND deleted_at IS NULL"
        )
    });
    on!(conn, |c| sqlx::query_as(&SQL)
        .bind(id)
        .fetch_optional(c)
        .await)
}

/// The live links of a work item, both directions, ordered by creation.
pub async fn dependencies_of(
    conn: &mut Conn<'_>,
    work_item_id: &str,
) -> sqlx::Result<Vec<DependencyRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {DEPENDENCY_COLUMNS} FROM pm_dependencies \
             WHERE (blocking_item_id = $1 OR blocked_item_id = $1) AND deleted_at IS NULL \
             ORDER BY created_at, id"
        )
    });
    on!(conn, |c| sqlx::query_as(&SQL)
        .bind(work_item_id)
        .fetch_all(c)
        .await)
}

/// Live links between live items of a project (for a board snapshot).
pub async fn project_dependencies(
    conn: &mut Conn<'_>,
    project_id: &str,
) -> sqlx::Result<Vec<DependencyRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {} FROM pm_dependencies d \
             JOIN pm_work_items a ON a.id = d.blocked_item_id \
             JOIN pm_work_items b ON b.id = d.blocking_item_id \
             WHERE a.project_id = $1 AND d.deleted_at IS NULL AND a.deleted_at IS NULL \
             AND b.deleted_at IS NULL ORDER BY d.created_at, d.id",
            qualified("d", DEPENDENCY_COLUMNS)
        )
    });
    on!(conn, |c| sqlx::query_as(&SQL)
        .bind(project_id)
        .fetch_all(c)
        .await)
}

/// The live link from `blocking` to `blocked`, if there is one.
pub async fn live_link(
    conn: &mut Conn<'_>,
    blocking: &str,
    blocked: &str,
) -> sqlx::Result<Option<String>> {
    on!(conn, |c| {
        sqlx::query_scalar(
        "SELECT id FROM pm_dependencies WHERE blocking_item_id = $1 AND blocked_item_id = $2 AND deleted_at IS NULL",
    )
    .bind(blocking)
    .bind(blocked)
    .fetch_optional(c).await
    })
}

/// A link known by `id` (deleted or not), or else the live link from `blocking` to `blocked`.
pub async fn known_link(
    conn: &mut Conn<'_>,
    id: &str,
    blocking: &str,
    blocked: &str,
) -> sqlx::Result<Option<String>> {
    on!(conn, |c| sqlx::query_scalar(
        "SELECT id FROM pm_dependencies WHERE id = $1 \
         OR (blocking_item_id = $2 AND blocked_item_id = $3 AND deleted_at IS NULL)",
    )
    .bind(id)
    .bind(blocking)
    .bind(blocked)
    .fetch_optional(c)
    .await)
}

/// (live links that block `blocked`, live links by which `blocking` blocks others).
pub async fn link_counts(
    conn: &mut Conn<'_>,
    blocked: &str,
    blocking: &str,
) -> sqlx::Result<(i64, i64)> {
    on!(conn, |c| {
        sqlx::query_as(
        "SELECT \
           (SELECT COUNT(*) FROM pm_dependencies WHERE blocked_item_id = $1 AND deleted_at IS NULL), \
           (SELECT COUNT(*) FROM pm_dependencies WHERE blocking_item_id = $2 AND deleted_at IS NULL)",
    )
    .bind(blocked)
    .bind(blocking)
    .fetch_one(c).await
    })
}

/// Every live `blocks` link reachable from `from`, as (node, via) for a link via → node. One
/// recursive query: UNION visits each link once, so it ends on any graph, cycles included.
pub async fn blocks_reach(conn: &mut Conn<'_>, from: &str) -> sqlx::Result<Vec<(String, String)>> {
    on!(conn, |c| sqlx::query_as(
        "WITH RECURSIVE reach(node, via) AS ( \
             SELECT $1, NULL \
             UNION \
             SELECT d.blocked_item_id, d.blocking_item_id FROM pm_dependencies d JOIN reach r \
             ON d.blocking_item_id = r.node \
             WHERE d.dependency_type = 'blocks' AND d.deleted_at IS NULL \
         ) \
         SELECT node, via FROM reach WHERE via IS NOT NULL",
    )
    .bind(from)
    .fetch_all(c)
    .await)
}

/// Writes a new link row, every column as `row` has it.
pub async fn insert(conn: &mut Conn<'_>, row: &DependencyRow) -> sqlx::Result<()> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!("INSERT INTO pm_dependencies ({DEPENDENCY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)")
    });
    on!(conn, |c| sqlx::query(&SQL)
        .bind(&row.id)
        .bind(&row.blocking_item_id)
        .bind(&row.blocked_item_id)
        .bind(&row.dependency_type)
        .bind(row.created_at)
        .bind(&row.created_by)
        .bind(row.deleted_at)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn soft_delete(conn: &mut Conn<'_>, id: &str, now: i64) -> sqlx::Result<()> {
    on!(conn, |c| sqlx::query(
        "UPDATE pm_dependencies SET deleted_at = $1 WHERE id = $2"
    )
    .bind(now)
    .bind(id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}
