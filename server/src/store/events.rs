//! The event log: per-stream sequence numbers and the stored frames that replay sends verbatim.
//!
//! A stream is a project id, or "" for the workspace stream (project lifecycle events). Seqs
//! start at 1 and have no gaps because they are taken inside the mutation's transaction: a
//! rolled-back mutation rolls back its seq too.
use sqlx::SqliteConnection;

/// The workspace stream: project created/updated/deleted events.
pub const WORKSPACE: &str = "";

/// Reads this database's epoch, creating it on first start. A new database, or one whose event
/// history was replaced, has a new epoch, which tells clients their cursors mean nothing here.
pub async fn ensure_epoch(conn: &mut SqliteConnection) -> anyhow::Result<String> {
    let fresh = uuid::Uuid::new_v4().to_string();
    sqlx::query("INSERT OR IGNORE INTO pm_meta (key, value) VALUES ('epoch', ?)")
        .bind(&fresh)
        .execute(&mut *conn)
        .await?;
    let epoch: String = sqlx::query_scalar("SELECT value FROM pm_meta WHERE key = 'epoch'")
        .fetch_one(&mut *conn)
        .await?;
    Ok(epoch)
}

pub async fn next_seq(conn: &mut SqliteConnection, stream: &str) -> sqlx::Result<u64> {
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO pm_streams (stream, last_seq) VALUES (?, 1)
         ON CONFLICT (stream) DO UPDATE SET last_seq = last_seq + 1
         RETURNING last_seq",
    )
    .bind(stream)
    .fetch_one(&mut *conn)
    .await?;
    Ok(seq as u64)
}

pub async fn append(
    conn: &mut SqliteConnection,
    stream: &str,
    seq: u64,
    frame: &[u8],
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO pm_events (stream, seq, frame, created_at) VALUES (?, ?, ?, ?)")
        .bind(stream)
        .bind(seq as i64)
        .bind(frame)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The stream's last seq (0 when nothing happened yet).
pub async fn current_seq(conn: &mut SqliteConnection, stream: &str) -> sqlx::Result<u64> {
    let seq: Option<i64> = sqlx::query_scalar("SELECT last_seq FROM pm_streams WHERE stream = ?")
        .bind(stream)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(seq.unwrap_or(0) as u64)
}

/// The oldest retained seq of the stream, if any event is retained.
pub async fn oldest_seq(conn: &mut SqliteConnection, stream: &str) -> sqlx::Result<Option<u64>> {
    let seq: Option<i64> = sqlx::query_scalar("SELECT MIN(seq) FROM pm_events WHERE stream = ?")
        .bind(stream)
        .fetch_one(&mut *conn)
        .await?;
    Ok(seq.map(|s| s as u64))
}

/// Every retained frame after `after`, in seq order.
pub async fn after(
    conn: &mut SqliteConnection,
    stream: &str,
    after: u64,
) -> sqlx::Result<Vec<Vec<u8>>> {
    sqlx::query_scalar("SELECT frame FROM pm_events WHERE stream = ? AND seq > ? ORDER BY seq")
        .bind(stream)
        .bind(after as i64)
        .fetch_all(&mut *conn)
        .await
}
