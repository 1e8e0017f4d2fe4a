//! The event log: per-stream sequence numbers and the stored frames that replay sends verbatim.
//!
//! A stream is a project id, or "" for the workspace stream (project lifecycle events). Seqs
//! start at 1 and have no gaps because they are taken inside the mutation's transaction: a
//! rolled-back mutation rolls back its seq too.
use super::Conn;
use crate::on;

/// The workspace stream: project created/updated/deleted events.
pub const WORKSPACE: &str = "";

/// Reads this database's epoch, creating it on first start. A new database, or one whose event
/// history was replaced, has a new epoch, which tells clients their cursors mean nothing here.
pub async fn ensure_epoch(conn: &mut Conn<'_>) -> anyhow::Result<String> {
    let fresh = crate::ids::random_id();
    on!(conn, |c| sqlx::query(
        "INSERT INTO pm_meta (key, value) VALUES ('epoch', $1) ON CONFLICT DO NOTHING"
    )
    .bind(&fresh)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    let epoch: String = on!(conn, |c| sqlx::query_scalar(
        "SELECT value FROM pm_meta WHERE key = 'epoch'"
    )
    .fetch_one(c)
    .await)?;
    Ok(epoch)
}

/// Records the seqs the writer numbered, before and after their VALUES (stream, last seq): see
/// `writer::seqs`.
pub const TAKE_SEQ_INSERT: &str = "INSERT INTO pm_streams (stream, last_seq) ";
pub const TAKE_SEQ_ON_CONFLICT: &str =
    " ON CONFLICT (stream) DO UPDATE SET last_seq = excluded.last_seq";

/// Appends events, before their VALUES (stream, seq, frame, created_at).
pub const APPEND_INSERT: &str = "INSERT INTO pm_events (stream, seq, frame, created_at) ";

/// [`take_seq`]'s statement, its one parameter (the stream) a plain `?`, so that it can follow
/// a write's own statements as their CTEs (`writer::change`).
pub const TAKE_NEXT_SEQ: &str = "INSERT INTO pm_streams (stream, last_seq) VALUES (?, 1) \
     ON CONFLICT (stream) DO UPDATE SET last_seq = pm_streams.last_seq + 1 RETURNING last_seq";

/// Takes the stream's next seq on PostgreSQL: the counter row is created or advanced, and stays
/// locked until the transaction ends, so a stream's seqs commit in the order they are taken,
/// whichever server takes them, and a rolled-back write gives its seq back.
pub async fn take_seq(conn: &mut Conn<'_>, stream: &str) -> sqlx::Result<u64> {
    static SQL: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| crate::store::numbered(TAKE_NEXT_SEQ));
    let seq: i64 = on!(conn, |c| sqlx::query_scalar(SQL.as_str())
        .bind(stream)
        .fetch_one(c)
        .await)?;
    Ok(seq as u64)
}

/// Sends `payload` to the listeners of `channel` when the open transaction commits
/// (PostgreSQL: the servers sharing the database, see `follow`).
pub async fn notify(
    conn: &mut sqlx::PgConnection,
    channel: &str,
    payload: &str,
) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(channel)
        .bind(payload)
        .execute(&mut *conn)
        .await
        .map(|_| ())
}

/// The stream's last seq (0 when nothing happened yet).
pub async fn current_seq(conn: &mut Conn<'_>, stream: &str) -> sqlx::Result<u64> {
    let seq: Option<i64> = on!(conn, |c| sqlx::query_scalar(
        "SELECT last_seq FROM pm_streams WHERE stream = $1"
    )
    .bind(stream)
    .fetch_optional(c)
    .await)?;
    Ok(seq.unwrap_or(0) as u64)
}

/// Every stream's last seq (`pm_streams`): the hub's last published seqs at start-up.
pub async fn all_streams(conn: &mut Conn<'_>) -> sqlx::Result<Vec<(String, u64)>> {
    let rows: Vec<(String, i64)> = on!(conn, |c| sqlx::query_as(
        "SELECT stream, last_seq FROM pm_streams"
    )
    .fetch_all(c)
    .await)?;
    Ok(rows.into_iter().map(|(s, q)| (s, q as u64)).collect())
}

/// The oldest retained seq of the stream, if any event is retained.
pub async fn oldest_seq(conn: &mut Conn<'_>, stream: &str) -> sqlx::Result<Option<u64>> {
    let seq: Option<i64> = on!(conn, |c| sqlx::query_scalar(
        "SELECT MIN(seq) FROM pm_events WHERE stream = $1"
    )
    .bind(stream)
    .fetch_one(c)
    .await)?;
    Ok(seq.map(|s| s as u64))
}

/// The retained events after `after` and up to `upto`, in seq order, at most `limit` of them:
/// (seq, frame). A replay reads a long history a chunk at a time, as the client reads it, and
/// never beyond the stream's last published seq (`upto`).
pub async fn after(
    conn: &mut Conn<'_>,
    stream: &str,
    after: u64,
    upto: u64,
    limit: usize,
) -> sqlx::Result<Vec<(u64, Vec<u8>)>> {
    let rows: Vec<(i64, Vec<u8>)> = on!(conn, |c| sqlx::query_as(
        "SELECT seq, frame FROM pm_events WHERE stream = $1 AND seq > $2 AND seq <= $3 \
         ORDER BY seq LIMIT $4",
    )
    .bind(stream)
    .bind(after as i64)
    .bind(upto.min(i64::MAX as u64) as i64)
    .bind(limit.min(i64::MAX as usize) as i64)
    .fetch_all(c)
    .await)?;
    Ok(rows.into_iter().map(|(s, f)| (s as u64, f)).collect())
}

/// Drops replay history: all but the newest `keep_per_stream` events of each stream, and every
/// event created before `older_than`. A client whose cursor falls before what is left reloads a
/// snapshot (ResyncRequired "cursor_too_old").
pub async fn prune(
    conn: &mut Conn<'_>,
    keep_per_stream: u64,
    older_than: i64,
) -> sqlx::Result<u64> {
    let by_count = on!(conn, |c| sqlx::query(
        "DELETE FROM pm_events WHERE seq <= \
         (SELECT s.last_seq FROM pm_streams s WHERE s.stream = pm_events.stream) - $1",
    )
    .bind(keep_per_stream as i64)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    let by_age = on!(conn, |c| sqlx::query(
        "DELETE FROM pm_events WHERE created_at < $1"
    )
    .bind(older_than)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(by_count + by_age)
}

/// Sum of every stream's last seq: it only grows while the history is intact.
pub async fn total_seq(conn: &mut Conn<'_>) -> sqlx::Result<u64> {
    let total: i64 = on!(conn, |c| sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(last_seq), 0) AS BIGINT) FROM pm_streams"
    )
    .fetch_one(c)
    .await)?;
    Ok(total as u64)
}

/// What the server last saw of the history, kept beside the database file. If the database's
/// history is behind it (a backup was restored, or the file was replaced), the seqs clients hold
/// may now name different events, so the epoch is renewed.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Watermark {
    pub epoch: String,
    pub total_seq: u64,
}

pub fn watermark_path(db: &std::path::Path) -> std::path::PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".epoch");
    p.into()
}

pub fn write_watermark(db: &std::path::Path, mark: &Watermark) -> std::io::Result<()> {
    let path = watermark_path(db);
    let tmp = path.with_extension("epoch.tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec(mark).map_err(std::io::Error::other)?,
    )?;
    std::fs::rename(tmp, path)
}

/// Checks the database against its watermark and renews the epoch when history went backwards.
pub async fn verify_history(
    conn: &mut Conn<'_>,
    db: &std::path::Path,
    epoch: String,
) -> anyhow::Result<String> {
    let total = total_seq(conn).await?;
    let mark: Option<Watermark> = std::fs::read(watermark_path(db))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let epoch = match mark {
        Some(m) if m.epoch == epoch && total < m.total_seq => {
            let renewed = crate::ids::random_id();
            tracing::warn!(
                seen = m.total_seq,
                now = total,
                old_epoch = %epoch,
                new_epoch = %renewed,
                "event history is behind what this server saw before (restored database?): renewing the epoch"
            );
            on!(conn, |c| sqlx::query(
                "UPDATE pm_meta SET value = $1 WHERE key = 'epoch'"
            )
            .bind(&renewed)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
            renewed
        }
        _ => epoch,
    };
    write_watermark(
        db,
        &Watermark {
            epoch: epoch.clone(),
            total_seq: total,
        },
    )?;
    Ok(epoch)
}
