//! ancestor_ids / descendant_ids of work items. One item's lists come from two recursive
//! queries over its own chain, never from loading the whole project.
use std::collections::HashMap;

use pm_shared::proto::WorkItem;
use sqlx::SqliteConnection;

/// The deepest chain followed; deeper data (only possible through corruption) is cut off.
const MAX_DEPTH: i64 = 100;

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

/// Fills the lists of every item of a loaded set (a project's snapshot) in memory.
pub fn fill_all(items: &mut [WorkItem]) {
    let parent: HashMap<String, Option<String>> = items
        .iter()
        .map(|i| (i.id.clone(), i.parent_id.clone()))
        .collect();
    let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
    for i in items.iter() {
        if let Some(p) = i.parent_id.as_deref() {
            children.entry(p).or_default().push(i.id.as_str());
        }
    }
    let mut lists = Vec::with_capacity(items.len());
    for item in items.iter() {
        let mut up = Vec::new();
        let mut cur = item.parent_id.clone();
        while let Some(p) = cur {
            if up.len() as i64 >= MAX_DEPTH || up.contains(&p) || !parent.contains_key(&p) {
                break;
            }
            cur = parent.get(&p).cloned().flatten();
            up.push(p);
        }
        let mut down: Vec<String> = Vec::new();
        let mut frontier = vec![item.id.as_str()];
        while !frontier.is_empty() && (down.len() as i64) < MAX_DEPTH * 1000 {
            let mut next: Vec<&str> = Vec::new();
            for id in frontier {
                let mut kids = children.get(id).cloned().unwrap_or_default();
                kids.sort_unstable();
                for k in kids {
                    if k != item.id && !down.iter().any(|d| d == k) {
                        down.push(k.to_string());
                        next.push(k);
                    }
                }
            }
            frontier = next;
        }
        lists.push((up, down));
    }
    for (item, (up, down)) in items.iter_mut().zip(lists) {
        item.ancestor_ids = up;
        item.descendant_ids = down;
    }
}
