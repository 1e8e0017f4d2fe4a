//! Read queries, shared by the commands (inside their write transaction) and the snapshot reads.
//! Every lookup skips soft-deleted rows unless its name ends in `_any`. Each table's queries and
//! writes live in its own module (`projects`, `work_items`, …); this one answers the reads that
//! span tables and names every read in one place.
use std::sync::LazyLock;

use super::{Backend, Conn};
use crate::on;

use super::rows::{ActivityRow, LlmContextRow};

pub use super::comments::{comment, comments, project_comments};
pub use super::dependencies::{dependencies_of, dependency, project_dependencies};
pub use super::members::{members, upsert_user, users};
pub use super::projects::{project, project_and_next_position, project_by_key, projects};
pub use super::sprints::{sprint, sprints};
pub use super::time_entries::{project_time_entries, running_timer, time_entries, time_entry};
pub use super::work_items::{
    first_per_lane, lane_counts, live_children, live_items_in_project, work_item,
    work_item_by_number, work_item_with_lists, work_items, work_items_with_lists,
};

/// `columns` (a table's column list) each prefixed with `alias.`, for a query that joins.
pub(crate) fn qualified(alias: &str, columns: &str) -> String {
    columns
        .split(',')
        .map(|c| format!("{alias}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The project an entity belongs to, deleted entities included, so history stays reachable.
pub async fn project_of_entity(
    conn: &mut Conn<'_>,
    entity_type: &str,
    entity_id: &str,
) -> sqlx::Result<Option<String>> {
    let sql = match entity_type {
        "project" => "SELECT id FROM pm_projects WHERE id = $1",
        "work_item" => "SELECT project_id FROM pm_work_items WHERE id = $1",
        "sprint" => "SELECT project_id FROM pm_sprints WHERE id = $1",
        "comment" => {
            "SELECT w.project_id FROM pm_comments c JOIN pm_work_items w ON w.id = c.work_item_id WHERE c.id = $1"
        }
        "time_entry" => {
            "SELECT w.project_id FROM pm_time_entries t JOIN pm_work_items w ON w.id = t.work_item_id WHERE t.id = $1"
        }
        "dependency" => {
            "SELECT w.project_id FROM pm_dependencies d JOIN pm_work_items w ON w.id = d.blocked_item_id WHERE d.id = $1"
        }
        _ => return Ok(None),
    };
    on!(conn, |c| sqlx::query_scalar(sql)
        .bind(entity_id)
        .fetch_optional(c)
        .await)
}

pub async fn activity(
    conn: &mut Conn<'_>,
    entity_type: &str,
    entity_id: &str,
    limit: i64,
    offset: i64,
) -> sqlx::Result<(Vec<ActivityRow>, i64)> {
    // Newest first; within a second, as written: SQLite's rowid, or on PostgreSQL the id (pm
    // writes activity ids time-ordered, UUIDv7).
    const SQL: &str =
        "SELECT id, entity_type, entity_id, action, changes, user_id, timestamp, comment \
         FROM pm_activity_log WHERE entity_type = $1 AND entity_id = $2 \
         ORDER BY timestamp DESC, rowid DESC LIMIT $3 OFFSET $4";
    static PG: LazyLock<String> = LazyLock::new(|| SQL.replace("rowid", "id"));
    let sql = match conn.backend() {
        Backend::Sqlite => SQL,
        Backend::Postgres => PG.as_str(),
    };
    let rows = on!(conn, |c| sqlx::query_as(sql)
        .bind(entity_type)
        .bind(entity_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(c)
        .await)?;
    let total: i64 = on!(conn, |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM pm_activity_log WHERE entity_type = $1 AND entity_id = $2",
    )
    .bind(entity_type)
    .bind(entity_id)
    .fetch_one(c)
    .await)?;
    Ok((rows, total))
}

/// LLM context entries, most important first; every filter is optional.
pub async fn llm_context(
    conn: &mut Conn<'_>,
    category: Option<&str>,
    context_type: Option<&str>,
    min_priority: Option<i32>,
) -> sqlx::Result<Vec<LlmContextRow>> {
    on!(conn, |c| {
        sqlx::query_as(
        "SELECT id, context_type, category, title, content, example_sql, example_description, priority \
         FROM pm_llm_context WHERE deleted_at IS NULL \
         AND ($1 IS NULL OR category = $1) AND ($2 IS NULL OR context_type = $2) AND ($3 IS NULL OR priority >= $3) \
         ORDER BY priority DESC, title ASC",
    )
    .bind(category)
    .bind(context_type)
    .bind(min_priority)
    .fetch_all(c).await
    })
}
