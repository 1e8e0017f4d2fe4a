//! ancestor_ids / descendant_ids of work items. One item's lists come from two recursive
//! queries over its own chain, never from loading the whole project.
use pm_shared::proto::WorkItem;
use sqlx::SqliteConnection;

/// The deepest chain followed; deeper data (only possible through corruption) is cut off.
const MAX_DEPTH: i64 = pm_shared::hierarchy::MAX_DEPTH as i64;

/// Nearest parent first.
pub async fn ancestors(conn: &mut SqliteConnection, id: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "WITH RECURSIVE up(id, parent_id, depth) AS (
             SELECT id, parent_id, 0 FROM pm_work_items WHERE id = ?1
             UNION ALL
             SELECT w.id, w.parent_id, up.depth + 1
             FROM pm_work_items w JOIN up ON w.id = up.parent_id
             WHERE w.deleted_at IS NULL AND up.depth < ?2
         )
         SELECT id FROM up WHERE depth > 0 ORDER BY depth",
    )
    .bind(id)
    .bind(MAX_DEPTH)
    .fetch_all(&mut *conn)
    .await
}

/// Children first, then grandchildren (breadth first).
pub async fn descendants(conn: &mut SqliteConnection, id: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "WITH RECURSIVE down(id, depth) AS (
             SELECT id, 0 FROM pm_work_items WHERE id = ?1
             UNION ALL
             SELECT w.id, down.depth + 1
             FROM pm_work_items w JOIN down ON w.parent_id = down.id
             WHERE w.deleted_at IS NULL AND down.depth < ?2
         )
         SELECT id FROM down WHERE depth > 0 ORDER BY depth, id",
    )
    .bind(id)
    .bind(MAX_DEPTH)
    .fetch_all(&mut *conn)
    .await
}

/// Fills both lists of one item.
pub async fn fill(conn: &mut SqliteConnection, item: &mut WorkItem) -> sqlx::Result<()> {
    item.ancestor_ids = ancestors(conn, &item.id).await?;
    item.descendant_ids = descendants(conn, &item.id).await?;
    Ok(())
}

/// Fills the lists of every item of a loaded set (a project's snapshot) in memory, exactly as
/// the client store does (see `pm_shared::hierarchy`).
pub fn fill_all(items: &mut [WorkItem]) {
    pm_shared::hierarchy::fill(items);
}
