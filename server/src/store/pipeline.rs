//! The statements every write ends with, which the writer composes into its round trips
//! (`writer::append`, `writer::write_behind`): the activity row, the idempotency record, the
//! user row a write needs, and the group's savepoint steps. The event and its stream's seq are
//! in [`super::events`].
use super::Conn;
use crate::on;

/// Activity rows, before their VALUES (nine each: id, project, entity type, entity id, action,
/// changes JSON, user, timestamp, comment).
pub const ACTIVITY_INSERT: &str = "INSERT INTO pm_activity_log (id, project_id, entity_type, entity_id, action, changes, user_id, timestamp, comment) ";

/// What a retried idempotent create is answered with, before its VALUES (user, message_id,
/// operation, response, created_at).
pub const REMEMBER_INSERT: &str =
    "INSERT INTO pm_idempotency_keys (user_id, message_id, operation, response, created_at) ";
/// After [`REMEMBER_INSERT`]'s VALUES: a record already there stays.
pub const REMEMBER_ON_CONFLICT: &str = " ON CONFLICT DO NOTHING";

/// The row a user id needs before anything refers to it, for a user who has not connected yet:
/// a placeholder email made from the id. Two parameters, both the id: plain `?`, because sqlx
/// numbers `?NNN` across a whole multi-statement query and this one runs inside others.
pub const ENSURE_USER_SQL: &str = "INSERT INTO users (id, email) \
     VALUES (?, 'user-' || substr(?, 1, 8) || '@localhost') ON CONFLICT DO NOTHING";

/// [`ENSURE_USER_SQL`] as a statement of its own, in the words both databases speak.
const ENSURE_USER: &str = "INSERT INTO users (id, email) \
     VALUES ($1, 'user-' || substr($1, 1, 8) || '@localhost') ON CONFLICT DO NOTHING";

/// A group's transaction with the savepoint around its first command (the name is reused:
/// RELEASE pops it).
pub const BEGIN_WITH_SAVEPOINT: &str = "BEGIN; SAVEPOINT pm_cmd";
/// Keeps the command's writes and opens the next command's savepoint.
pub const NEXT: &str = "RELEASE pm_cmd; SAVEPOINT pm_cmd";
/// Undoes the command's writes and opens the next command's savepoint.
pub const UNDO_NEXT: &str = "ROLLBACK TO pm_cmd; RELEASE pm_cmd; SAVEPOINT pm_cmd";
/// Undoes the last command's writes.
pub const UNDO_LAST: &str = "ROLLBACK TO pm_cmd; RELEASE pm_cmd";

/// A tolerant import's savepoint around one row of its document, so that a row it refuses
/// leaves nothing behind (`commands::import`).
pub const IMPORT_ROW: &str = "SAVEPOINT pm_import_row";
/// Keeps the row's writes.
pub const IMPORT_ROW_KEEP: &str = "RELEASE pm_import_row";
/// Undoes the row's writes.
pub const IMPORT_ROW_UNDO: &str = "ROLLBACK TO pm_import_row; RELEASE pm_import_row";

/// Locks, until the transaction ends, what a PostgreSQL write group may write to (see
/// `writer::Scope`): every write holds the all-streams lock shared, or exclusive for a write
/// that may touch any stream; then each stream's own lock, in the order of `keys` (sorted by
/// the caller: two groups always take common locks in the same order, so they never wait for
/// each other in a circle). PostgreSQL only: SQLite's one writer runs one group at a time.
pub async fn lock_streams(
    conn: &mut sqlx::PgConnection,
    everything: bool,
    keys: &[i64],
) -> sqlx::Result<()> {
    /// The all-streams lock: the two-key form, which PostgreSQL keeps apart from the one-key
    /// locks of streams.
    const ALL_STREAMS: (i32, i32) = (0x706d, 1);
    let all = if everything {
        "SELECT pg_advisory_xact_lock($1, $2)"
    } else {
        "SELECT pg_advisory_xact_lock_shared($1, $2)"
    };
    sqlx::query(all)
        .bind(ALL_STREAMS.0)
        .bind(ALL_STREAMS.1)
        .execute(&mut *conn)
        .await?;
    for key in keys {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(key)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// A stream's lock key for [`lock_streams`]: the first eight bytes of its project id (the
/// workspace stream, "", is 0). Two streams that share a key only wait for each other.
pub fn stream_key(stream: &str) -> i64 {
    match uuid::Uuid::parse_str(stream) {
        Ok(id) => {
            let mut first = [0u8; 8];
            first.copy_from_slice(&id.as_bytes()[..8]);
            i64::from_be_bytes(first)
        }
        Err(_) => 0,
    }
}

pub async fn ensure_user(conn: &mut Conn<'_>, user_id: &str) -> sqlx::Result<()> {
    on!(conn, |c| sqlx::query(ENSURE_USER)
        .bind(user_id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The stored answer of an earlier idempotent request of `user_id` with `message_id`:
/// (response frame, operation).
pub async fn remembered(
    conn: &mut Conn<'_>,
    user_id: &str,
    message_id: &str,
) -> sqlx::Result<Option<(Vec<u8>, String)>> {
    on!(conn, |c| {
        sqlx::query_as(
        "SELECT response, operation FROM pm_idempotency_keys WHERE user_id = $1 AND message_id = $2",
    )
    .bind(user_id)
    .bind(message_id)
    .fetch_optional(c).await
    })
}

/// A constant statement (or several) without parameters, in one round trip on SQLite. (Not
/// `sqlx::raw_sql`: rustc cannot prove its future `Send` for the spawned task.)
pub async fn raw(conn: &mut Conn<'_>, sql: &'static str) -> sqlx::Result<()> {
    match conn {
        Conn::Sqlite(c) => sqlx::query(sql).execute(&mut **c).await.map(|_| ()),
        // Without parameters sqlx sends the text as a simple query, which may hold several.
        Conn::Postgres(c) => sqlx::Executor::execute(&mut **c, sql).await.map(|_| ()),
    }
}
