//! The sync export's reads: live rows whose parents are live too, so that every reference
//! inside a full export resolves (and the export imports anywhere). A scoped export passes its
//! work item ids as one JSON array parameter; its links may lead out of it.
use std::sync::LazyLock;

use super::{Backend, Conn};
use crate::on;

use super::comments::COMMENT_COLUMNS;
use super::dependencies::DEPENDENCY_COLUMNS;
use super::queries::qualified;
use super::rows::{CommentRow, DependencyRow, SprintRow, TimeEntryRow, WorkItemRow};
use super::sprints::SPRINT_COLUMNS;
use super::time_entries::TIME_ENTRY_COLUMNS;
use super::work_items::WORK_ITEM_COLUMNS;

pub use super::projects::{keys, projects_by_creation as projects};

/// The ids of the JSON array parameter `$1`, as a subquery, in the backend's words.
fn in_scope(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "(SELECT value FROM json_each($1))",
        Backend::Postgres => "(SELECT jsonb_array_elements_text(CAST($1 AS jsonb)))",
    }
}

static WORK_ITEMS: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {WORK_ITEM_COLUMNS} FROM pm_work_items w WHERE deleted_at IS NULL")
});
static SPRINTS: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {SPRINT_COLUMNS} FROM pm_sprints s WHERE deleted_at IS NULL"));
static COMMENTS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM pm_comments c JOIN pm_work_items w ON w.id = c.work_item_id \
         WHERE c.deleted_at IS NULL AND w.deleted_at IS NULL",
        qualified("c", COMMENT_COLUMNS)
    )
});
static DEPENDENCIES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM pm_dependencies d \
         JOIN pm_work_items a ON a.id = d.blocking_item_id JOIN pm_work_items b ON b.id = d.blocked_item_id \
         WHERE d.deleted_at IS NULL AND a.deleted_at IS NULL AND b.deleted_at IS NULL",
        qualified("d", DEPENDENCY_COLUMNS)
    )
});
static TIME_ENTRIES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM pm_time_entries t JOIN pm_work_items w ON w.id = t.work_item_id \
         WHERE t.deleted_at IS NULL AND w.deleted_at IS NULL",
        qualified("t", TIME_ENTRY_COLUMNS)
    )
});

pub async fn work_items(conn: &mut Conn<'_>) -> sqlx::Result<Vec<WorkItemRow>> {
    static SQL: LazyLock<String> =
        LazyLock::new(|| format!("{} ORDER BY project_id, item_number, id", *WORK_ITEMS));
    on!(conn, |c| sqlx::query_as(&SQL).fetch_all(c).await)
}

pub async fn sprints(conn: &mut Conn<'_>) -> sqlx::Result<Vec<SprintRow>> {
    static SQL: LazyLock<String> =
        LazyLock::new(|| format!("{} ORDER BY project_id, start_date, id", *SPRINTS));
    on!(conn, |c| sqlx::query_as(&SQL).fetch_all(c).await)
}

pub async fn comments(conn: &mut Conn<'_>) -> sqlx::Result<Vec<CommentRow>> {
    static SQL: LazyLock<String> =
        LazyLock::new(|| format!("{} ORDER BY c.created_at, c.id", *COMMENTS));
    on!(conn, |c| sqlx::query_as(&SQL).fetch_all(c).await)
}

pub async fn dependencies(conn: &mut Conn<'_>) -> sqlx::Result<Vec<DependencyRow>> {
    static SQL: LazyLock<String> =
        LazyLock::new(|| format!("{} ORDER BY d.created_at, d.id", *DEPENDENCIES));
    on!(conn, |c| sqlx::query_as(&SQL).fetch_all(c).await)
}

pub async fn time_entries(conn: &mut Conn<'_>) -> sqlx::Result<Vec<TimeEntryRow>> {
    static SQL: LazyLock<String> =
        LazyLock::new(|| format!("{} ORDER BY t.started_at, t.id", *TIME_ENTRIES));
    on!(conn, |c| sqlx::query_as(&SQL).fetch_all(c).await)
}

/// The item `root` and `levels` levels of its live descendants.
pub async fn subtree(
    conn: &mut Conn<'_>,
    root: &str,
    levels: i64,
) -> sqlx::Result<Vec<WorkItemRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "WITH RECURSIVE down(id, depth) AS ( \
                 SELECT id, 0 FROM pm_work_items WHERE id = $1 \
                 UNION \
                 SELECT c.id, down.depth + 1 FROM pm_work_items c JOIN down ON c.parent_id = down.id \
                 WHERE c.deleted_at IS NULL AND down.depth < $2 \
             ) \
             {} AND w.id IN (SELECT id FROM down) ORDER BY w.item_number, w.id",
            *WORK_ITEMS
        )
    });
    on!(conn, |c| sqlx::query_as(&SQL)
        .bind(root)
        .bind(levels)
        .fetch_all(c)
        .await)
}

/// The sprints the items of `ids_json` are in.
pub async fn sprints_of(conn: &mut Conn<'_>, ids_json: &str) -> sqlx::Result<Vec<SprintRow>> {
    // Export only: built per call, in the backend's words.
    let scope = in_scope(conn.backend());
    let sql = format!(
        "{} AND s.id IN (SELECT sprint_id FROM pm_work_items WHERE id IN {scope}) \
             ORDER BY s.start_date, s.id",
        *SPRINTS
    );
    on!(conn, |c| sqlx::query_as(&sql)
        .bind(ids_json)
        .fetch_all(c)
        .await)
}

/// The comments on the items of `ids_json`.
pub async fn comments_of(conn: &mut Conn<'_>, ids_json: &str) -> sqlx::Result<Vec<CommentRow>> {
    // Export only: built per call, in the backend's words.
    let scope = in_scope(conn.backend());
    let sql = format!(
        "{} AND c.work_item_id IN {scope} ORDER BY c.created_at, c.id",
        *COMMENTS
    );
    on!(conn, |c| sqlx::query_as(&sql)
        .bind(ids_json)
        .fetch_all(c)
        .await)
}

/// The links with at least one end among the items of `ids_json`, as the reference exports
/// them: a link leaving the scope is kept (its other end is live, and an import that does not
/// know that item skips the link with its reason).
pub async fn dependencies_touching(
    conn: &mut Conn<'_>,
    ids_json: &str,
) -> sqlx::Result<Vec<DependencyRow>> {
    // Export only: built per call, in the backend's words.
    let scope = in_scope(conn.backend());
    let sql = format!(
        "{} AND (d.blocking_item_id IN {scope} OR d.blocked_item_id IN {scope}) \
             ORDER BY d.created_at, d.id",
        *DEPENDENCIES
    );
    on!(conn, |c| sqlx::query_as(&sql)
        .bind(ids_json)
        .fetch_all(c)
        .await)
}

/// The time entries on the items of `ids_json`.
pub async fn time_entries_of(
    conn: &mut Conn<'_>,
    ids_json: &str,
) -> sqlx::Result<Vec<TimeEntryRow>> {
    // Export only: built per call, in the backend's words.
    let scope = in_scope(conn.backend());
    let sql = format!(
        "{} AND t.work_item_id IN {scope} ORDER BY t.started_at, t.id",
        *TIME_ENTRIES
    );
    on!(conn, |c| sqlx::query_as(&sql)
        .bind(ids_json)
        .fetch_all(c)
        .await)
}
