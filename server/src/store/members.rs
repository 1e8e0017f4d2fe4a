//! `users` and `pm_project_members`: who exists, who belongs to which project, and in what role.
use super::Conn;
use crate::on;

/// Every known user with a display name (the email's local part when no name was given).
pub async fn users(conn: &mut Conn<'_>) -> sqlx::Result<Vec<pm_shared::proto::User>> {
    let rows: Vec<(String, Option<String>, Option<String>)> = on!(conn, |c| sqlx::query_as(
        "SELECT id, name, email FROM users ORDER BY created_at, id"
    )
    .fetch_all(c)
    .await)?;
    Ok(rows
        .into_iter()
        .map(|(id, name, email)| {
            let name = name
                .filter(|n| !n.trim().is_empty())
                .or_else(|| email.and_then(|e| e.split('@').next().map(str::to_string)))
                .unwrap_or_else(|| id.chars().take(8).collect());
            pm_shared::proto::User { id, name }
        })
        .collect())
}

/// Records a user and, when given, their display name.
pub async fn upsert_user(conn: &mut Conn<'_>, id: &str, name: Option<&str>) -> sqlx::Result<()> {
    on!(conn, |c| {
        sqlx::query(
        "INSERT INTO users (id, email, name) VALUES ($1, 'user-' || substr($1, 1, 8) || '@localhost', $2) \
         ON CONFLICT (id) DO UPDATE SET name = COALESCE($2, users.name)",
    )
    .bind(id)
    .bind(name)
    .execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// (project_id, user_id, role, created_at, name, email)
type MemberRow = (String, String, String, i64, Option<String>, Option<String>);

/// A project's members with their display names, admins first.
pub async fn members(
    conn: &mut Conn<'_>,
    project_id: &str,
) -> sqlx::Result<Vec<pm_shared::proto::ProjectMember>> {
    let rows: Vec<MemberRow> = on!(conn, |c| {
        sqlx::query_as(
        "SELECT m.project_id, m.user_id, m.role, m.created_at, u.name, u.email FROM pm_project_members m \
         LEFT JOIN users u ON u.id = m.user_id WHERE m.project_id = $1 \
         ORDER BY CASE m.role WHEN 'admin' THEN 0 WHEN 'editor' THEN 1 ELSE 2 END, m.created_at, m.user_id",
    )
    .bind(project_id)
    .fetch_all(c).await
    })?;
    Ok(rows
        .into_iter()
        .map(|(project_id, user_id, role, created_at, name, email)| {
            let name = name
                .filter(|n| !n.trim().is_empty())
                .or_else(|| email.and_then(|e| e.split('@').next().map(str::to_string)))
                .unwrap_or_else(|| user_id.chars().take(8).collect());
            pm_shared::proto::ProjectMember {
                project_id,
                user_id,
                role,
                created_at,
                name,
            }
        })
        .collect())
}

/// Makes `user_id` the admin of a project that has just been created (by a command or an
/// import), which has no members yet.
pub async fn add_first_admin(
    conn: &mut Conn<'_>,
    project_id: &str,
    user_id: &str,
    now: i64,
) -> sqlx::Result<()> {
    on!(conn, |c| sqlx::query(
        "INSERT INTO pm_project_members (id, project_id, user_id, role, created_at) \
         VALUES ($1, $2, $3, 'admin', $4) ON CONFLICT DO NOTHING",
    )
    .bind(crate::ids::random_id())
    .bind(project_id)
    .bind(user_id)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Adds a member, or changes the role of one.
pub async fn set_role(
    conn: &mut Conn<'_>,
    project_id: &str,
    user_id: &str,
    role: &str,
    now: i64,
) -> sqlx::Result<()> {
    on!(conn, |c| {
        sqlx::query(
        "INSERT INTO pm_project_members (id, project_id, user_id, role, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (project_id, user_id) DO UPDATE SET role = excluded.role",
    )
    .bind(crate::ids::random_id())
    .bind(project_id)
    .bind(user_id)
    .bind(role)
    .bind(now)
    .execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

pub async fn remove(conn: &mut Conn<'_>, project_id: &str, user_id: &str) -> sqlx::Result<()> {
    on!(conn, |c| sqlx::query(
        "DELETE FROM pm_project_members WHERE project_id = $1 AND user_id = $2"
    )
    .bind(project_id)
    .bind(user_id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn admin_count(conn: &mut Conn<'_>, project_id: &str) -> sqlx::Result<i64> {
    on!(conn, |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM pm_project_members WHERE project_id = $1 AND role = 'admin'",
    )
    .bind(project_id)
    .fetch_one(c)
    .await)
}

/// The tables whose rows a permission check resolves to their project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Projects,
    WorkItems,
    Sprints,
    Comments,
    Dependencies,
    TimeEntries,
}

/// The projects of `rows` (deleted or not) and of the running timers of `timer_users`, in one
/// round trip (PostgreSQL: a write group names what it will lock, see `writer::Scope`).
/// Rows that do not exist name nothing.
pub async fn projects_of_rows(
    conn: &mut sqlx::PgConnection,
    rows: &[(Table, String)],
    timer_users: &[String],
) -> sqlx::Result<Vec<String>> {
    let ids = |wanted: Table| -> Vec<&str> {
        rows.iter()
            .filter(|(t, _)| *t == wanted)
            .map(|(_, id)| id.as_str())
            .collect()
    };
    sqlx::query_scalar(
        "SELECT id FROM pm_projects WHERE id = ANY($1) \
         UNION SELECT project_id FROM pm_work_items WHERE id = ANY($2) \
         UNION SELECT project_id FROM pm_sprints WHERE id = ANY($3) \
         UNION SELECT w.project_id FROM pm_comments c JOIN pm_work_items w ON w.id = c.work_item_id \
               WHERE c.id = ANY($4) \
         UNION SELECT w.project_id FROM pm_dependencies d \
               JOIN pm_work_items w ON w.id = d.blocking_item_id WHERE d.id = ANY($5) \
         UNION SELECT w.project_id FROM pm_time_entries t JOIN pm_work_items w ON w.id = t.work_item_id \
               WHERE t.id = ANY($6) \
         UNION SELECT w.project_id FROM pm_time_entries t JOIN pm_work_items w ON w.id = t.work_item_id \
               WHERE t.user_id = ANY($7) AND t.ended_at IS NULL AND t.deleted_at IS NULL",
    )
    .bind(ids(Table::Projects))
    .bind(ids(Table::WorkItems))
    .bind(ids(Table::Sprints))
    .bind(ids(Table::Comments))
    .bind(ids(Table::Dependencies))
    .bind(ids(Table::TimeEntries))
    .bind(timer_users)
    .fetch_all(&mut *conn)
    .await
}

/// The project of row `id` of `table` (deleted or not) and `user_id`'s role there (None when
/// not a member); None when there is no such row.
pub async fn project_and_role(
    conn: &mut Conn<'_>,
    table: Table,
    id: &str,
    user_id: &str,
) -> sqlx::Result<Option<(String, Option<String>)>> {
    let sql = match table {
        Table::Projects => {
            "SELECT p.id, m.role FROM pm_projects p \
             LEFT JOIN pm_project_members m ON m.project_id = p.id AND m.user_id = $2 WHERE p.id = $1"
        }
        Table::WorkItems => {
            "SELECT w.project_id, m.role FROM pm_work_items w \
             LEFT JOIN pm_project_members m ON m.project_id = w.project_id AND m.user_id = $2 WHERE w.id = $1"
        }
        Table::Sprints => {
            "SELECT s.project_id, m.role FROM pm_sprints s \
             LEFT JOIN pm_project_members m ON m.project_id = s.project_id AND m.user_id = $2 WHERE s.id = $1"
        }
        Table::Comments => {
            "SELECT w.project_id, m.role FROM pm_comments c \
             JOIN pm_work_items w ON w.id = c.work_item_id \
             LEFT JOIN pm_project_members m ON m.project_id = w.project_id AND m.user_id = $2 WHERE c.id = $1"
        }
        Table::Dependencies => {
            "SELECT w.project_id, m.role FROM pm_dependencies d \
             JOIN pm_work_items w ON w.id = d.blocking_item_id \
             LEFT JOIN pm_project_members m ON m.project_id = w.project_id AND m.user_id = $2 WHERE d.id = $1"
        }
        Table::TimeEntries => {
            "SELECT w.project_id, m.role FROM pm_time_entries t \
             JOIN pm_work_items w ON w.id = t.work_item_id \
             LEFT JOIN pm_project_members m ON m.project_id = w.project_id AND m.user_id = $2 WHERE t.id = $1"
        }
    };
    on!(conn, |c| sqlx::query_as(sql)
        .bind(id)
        .bind(user_id)
        .fetch_optional(c)
        .await)
}

/// The role name `user_id` holds in a project, if a member.
pub async fn role_name(
    conn: &mut Conn<'_>,
    project_id: &str,
    user_id: &str,
) -> sqlx::Result<Option<String>> {
    on!(conn, |c| sqlx::query_scalar(
        "SELECT role FROM pm_project_members WHERE project_id = $1 AND user_id = $2"
    )
    .bind(project_id)
    .bind(user_id)
    .fetch_optional(c)
    .await)
}

/// The projects `user_id` belongs to.
pub async fn projects_of(conn: &mut Conn<'_>, user_id: &str) -> sqlx::Result<Vec<String>> {
    on!(conn, |c| sqlx::query_scalar(
        "SELECT project_id FROM pm_project_members WHERE user_id = $1"
    )
    .bind(user_id)
    .fetch_all(c)
    .await)
}

/// Every (project, user) membership.
pub async fn all_memberships(conn: &mut Conn<'_>) -> sqlx::Result<Vec<(String, String)>> {
    on!(conn, |c| sqlx::query_as(
        "SELECT project_id, user_id FROM pm_project_members"
    )
    .fetch_all(c)
    .await)
}

/// The users who belong to a project.
pub async fn user_ids(conn: &mut Conn<'_>, project_id: &str) -> sqlx::Result<Vec<String>> {
    on!(conn, |c| sqlx::query_scalar(
        "SELECT user_id FROM pm_project_members WHERE project_id = $1"
    )
    .bind(project_id)
    .fetch_all(c)
    .await)
}
