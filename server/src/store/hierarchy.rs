//! ancestor_ids / descendant_ids of work items. One item's lists come from two recursive
//! queries over its own chain, never from loading the whole project.
use std::sync::LazyLock;

use super::{numbered, Conn};
use crate::on;
use pm_shared::proto::WorkItem;

/// The deepest chain followed; deeper data (only possible through corruption) is cut off.
pub const MAX_DEPTH: i64 = pm_shared::hierarchy::MAX_DEPTH as i64;

/// Nearest parent first.
pub async fn ancestors(conn: &mut Conn<'_>, id: &str) -> sqlx::Result<Vec<String>> {
    on!(conn, |c| sqlx::query_scalar(
        "WITH RECURSIVE up(id, parent_id, depth) AS (
             SELECT id, parent_id, CAST(0 AS BIGINT) FROM pm_work_items WHERE id = $1
             UNION ALL
             SELECT w.id, w.parent_id, up.depth + 1
             FROM pm_work_items w JOIN up ON w.id = up.parent_id
             WHERE w.deleted_at IS NULL AND up.depth < $2
         )
         SELECT id FROM up WHERE depth > 0 ORDER BY depth",
    )
    .bind(id)
    .bind(MAX_DEPTH)
    .fetch_all(c)
    .await)
}

/// Children first, then grandchildren (breadth first).
pub async fn descendants(conn: &mut Conn<'_>, id: &str) -> sqlx::Result<Vec<String>> {
    on!(conn, |c| sqlx::query_scalar(
        "WITH RECURSIVE down(id, depth) AS (
             SELECT id, CAST(0 AS BIGINT) FROM pm_work_items WHERE id = $1
             UNION ALL
             SELECT w.id, down.depth + 1
             FROM pm_work_items w JOIN down ON w.parent_id = down.id
             WHERE w.deleted_at IS NULL AND down.depth < $2
         )
         SELECT id FROM down WHERE depth > 0 ORDER BY depth, id",
    )
    .bind(id)
    .bind(MAX_DEPTH)
    .fetch_all(c)
    .await)
}

/// Both walks of [`ancestors`] and [`descendants`] in one query, as rows of (side: 0 up / 1
/// down, id, depth). Plain `?` parameters (id, depth, id, depth), so the query can follow
/// another statement in one round trip (a work item update does).
pub const FILL_SQL: &str = "WITH RECURSIVE
     up(id, parent_id, depth) AS (
         SELECT id, parent_id, CAST(0 AS BIGINT) FROM pm_work_items WHERE id = ?
         UNION ALL
         SELECT w.id, w.parent_id, up.depth + 1
         FROM pm_work_items w JOIN up ON w.id = up.parent_id
         WHERE w.deleted_at IS NULL AND up.depth < ?
     ),
     down(id, depth) AS (
         SELECT id, CAST(0 AS BIGINT) FROM pm_work_items WHERE id = ?
         UNION ALL
         SELECT w.id, down.depth + 1
         FROM pm_work_items w JOIN down ON w.parent_id = down.id
         WHERE w.deleted_at IS NULL AND down.depth < ?
     )
     SELECT CAST(0 AS BIGINT) AS side, id, depth FROM up WHERE depth > 0
     UNION ALL
     SELECT CAST(1 AS BIGINT) AS side, id, depth FROM down WHERE depth > 0
     ORDER BY side, depth, id";

pub type FillRow = (i64, String, i64);

/// Fills both lists of one item in one round trip to the database connection (instead of one
/// per walk) on every item a write returns.
pub async fn fill(conn: &mut Conn<'_>, item: &mut WorkItem) -> sqlx::Result<()> {
    let rows = fill_rows(conn, &item.id).await?;
    set_lists(item, rows);
    Ok(())
}

/// The rows of [`FILL_SQL`] for the item `id`.
pub async fn fill_rows(conn: &mut Conn<'_>, id: &str) -> sqlx::Result<Vec<FillRow>> {
    static NUMBERED: LazyLock<String> = LazyLock::new(|| numbered(FILL_SQL));
    on!(conn, |c| sqlx::query_as(&NUMBERED)
        .bind(id)
        .bind(MAX_DEPTH)
        .bind(id)
        .bind(MAX_DEPTH)
        .fetch_all(c)
        .await)
}

/// Sets `item`'s lists from the rows of [`FILL_SQL`].
pub fn set_lists(item: &mut WorkItem, rows: Vec<FillRow>) {
    item.ancestor_ids.clear();
    item.descendant_ids.clear();
    for (side, id, _depth) in rows {
        if side == 0 {
            item.ancestor_ids.push(id);
        } else {
            item.descendant_ids.push(id);
        }
    }
}

/// Fills the lists of every item of a loaded set (a project's snapshot) in memory, exactly as
/// the client store does (see `pm_shared::hierarchy`).
pub fn fill_all(items: &mut [WorkItem]) {
    pm_shared::hierarchy::fill(items);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `fill`'s one query gives exactly what the two separate walks give.
    #[tokio::test]
    async fn fill_matches_the_separate_walks() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("t.db"))
            .await
            .unwrap();
        let mut conn = store.1.into_connection();
        sqlx::query(
            "INSERT INTO pm_projects (id, title, key, created_at, updated_at, created_by, updated_by) \
             VALUES ('p', 'P', 'P', 0, 0, 'u', 'u')",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        // a ─┬─ b ─┬─ d ── f
        //    │     └─ e (deleted)
        //    └─ c
        // g (alone)
        let items = [
            ("a", None, None),
            ("b", Some("a"), None),
            ("c", Some("a"), None),
            ("d", Some("b"), None),
            ("e", Some("b"), Some(5)),
            ("f", Some("d"), None),
            ("g", None, None),
        ];
        for (n, (id, parent, deleted)) in items.iter().enumerate() {
            sqlx::query(
                "INSERT INTO pm_work_items (id, item_type, parent_id, project_id, title, item_number, \
                 created_at, updated_at, created_by, updated_by, deleted_at) \
                 VALUES ($1, 'task', $2, 'p', 't', $3, 0, 0, 'u', 'u', $4)",
            )
            .bind(id)
            .bind(parent)
            .bind(n as i64 + 1)
            .bind(deleted)
            .execute(&mut conn)
            .await
            .unwrap();
        }
        for (id, _, _) in items {
            let mut item = WorkItem {
                id: id.into(),
                ancestor_ids: vec!["stale".into()],
                ..Default::default()
            };
            fill(&mut Conn::Sqlite(&mut conn), &mut item).await.unwrap();
            assert_eq!(
                item.ancestor_ids,
                ancestors(&mut Conn::Sqlite(&mut conn), id).await.unwrap(),
                "{id}"
            );
            assert_eq!(
                item.descendant_ids,
                descendants(&mut Conn::Sqlite(&mut conn), id).await.unwrap(),
                "{id}"
            );
        }
        let mut a = WorkItem {
            id: "a".into(),
            ..Default::default()
        };
        fill(&mut Conn::Sqlite(&mut conn), &mut a).await.unwrap();
        assert_eq!(a.descendant_ids, ["b", "c", "d", "f"]);
        let mut f = WorkItem {
            id: "f".into(),
            ..Default::default()
        };
        fill(&mut Conn::Sqlite(&mut conn), &mut f).await.unwrap();
        assert_eq!(f.ancestor_ids, ["d", "b", "a"]);
    }
}
