//! SQLite storage: the pool of readers, the writer's connection (handed to the writer task,
//! which alone holds it) and every statement the server runs, one module per table. WAL lets
//! readers run while the writer commits.
pub mod comments;
mod conn;
pub mod dependencies;
pub mod events;
pub mod export;
pub mod hierarchy;
pub mod members;
pub mod pipeline;
pub mod projects;
pub mod queries;
pub mod reference;
pub mod rows;
pub mod sprints;
pub mod time_entries;
pub mod work_items;

pub use conn::{numbered, Backend, Conn};

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, PgConnection, PgPool, Postgres, Sqlite, SqliteConnection, SqlitePool};
use tokio::sync::{oneshot, Mutex};

use crate::on;

/// pm's schema (`migrations/`), also applied by `reference` to the databases it converts.
pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");
/// The same schema in PostgreSQL's words (`migrations/postgres/`).
static PG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// The readers' pool of either backend.
pub enum ReadPool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A reader's connection from the pool, returned to it when dropped.
pub enum Reader {
    Sqlite(sqlx::pool::PoolConnection<Sqlite>),
    Postgres(sqlx::pool::PoolConnection<Postgres>),
}

/// A transaction: a snapshot read (on a [`Reader`]) or the writer's group.
pub enum Tx<'c> {
    Sqlite(sqlx::Transaction<'c, Sqlite>),
    Postgres(sqlx::Transaction<'c, Postgres>),
    /// The SQLite writer's group. Its BEGIN and COMMIT are statements the writer sends itself,
    /// so that the COMMIT can travel in the round trip of the group's last writes
    /// ([`Tx::committed_by_last_statement`]): every round trip to sqlx's SQLite thread is a
    /// hand-over between threads, the largest cost of a group (bench/NOTES.md).
    SqliteWriter(WriterTx<'c>),
}

/// See [`Tx::SqliteWriter`]. Dropped without COMMIT or ROLLBACK, it leaves the transaction
/// open: the writer then replaces the connection before its next write (`Books::fail`), and
/// [`WriterConnection::begin`] rolls back whatever is still open first.
pub struct WriterTx<'c> {
    conn: &'c mut SqliteConnection,
    open: &'c mut bool,
}

impl ReadPool {
    pub async fn acquire(&self) -> sqlx::Result<Reader> {
        Ok(match self {
            ReadPool::Sqlite(p) => Reader::Sqlite(p.acquire().await?),
            ReadPool::Postgres(p) => Reader::Postgres(p.acquire().await?),
        })
    }

    /// The SQLite pool, for tests that look at the database directly (None on PostgreSQL).
    pub fn sqlite(&self) -> Option<&SqlitePool> {
        match self {
            ReadPool::Sqlite(p) => Some(p),
            ReadPool::Postgres(_) => None,
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            ReadPool::Sqlite(_) => Backend::Sqlite,
            ReadPool::Postgres(_) => Backend::Postgres,
        }
    }
}

impl Reader {
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            Reader::Sqlite(c) => Conn::Sqlite(c),
            Reader::Postgres(c) => Conn::Postgres(c),
        }
    }

    /// A read transaction: every statement in it sees the database as of one moment (SQLite's
    /// read transactions always do; PostgreSQL's do at REPEATABLE READ).
    pub async fn begin(&mut self) -> sqlx::Result<Tx<'_>> {
        Ok(match self {
            Reader::Sqlite(c) => Tx::Sqlite(c.begin().await?),
            Reader::Postgres(c) => Tx::Postgres(
                c.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?,
            ),
        })
    }
}

impl Tx<'_> {
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            Tx::Sqlite(t) => Conn::Sqlite(t),
            Tx::Postgres(t) => Conn::Postgres(t),
            Tx::SqliteWriter(t) => Conn::Sqlite(t.conn),
        }
    }

    /// Whether a statement ending in COMMIT may end this transaction
    /// ([`Tx::committed_by_last_statement`]).
    pub fn may_commit_in_a_statement(&self) -> bool {
        matches!(self, Tx::SqliteWriter(_))
    }

    /// The last statement sent ended with COMMIT, and it succeeded.
    pub fn committed_by_last_statement(self) {
        if let Tx::SqliteWriter(t) = self {
            *t.open = false;
        }
    }

    pub async fn commit(self) -> sqlx::Result<()> {
        match self {
            Tx::Sqlite(t) => t.commit().await,
            Tx::Postgres(t) => t.commit().await,
            Tx::SqliteWriter(t) => {
                sqlx::query("COMMIT").execute(&mut *t.conn).await?;
                *t.open = false;
                Ok(())
            }
        }
    }

    pub async fn rollback(self) -> sqlx::Result<()> {
        match self {
            Tx::Sqlite(t) => t.rollback().await,
            Tx::Postgres(t) => t.rollback().await,
            Tx::SqliteWriter(t) => {
                sqlx::query("ROLLBACK").execute(&mut *t.conn).await?;
                *t.open = false;
                Ok(())
            }
        }
    }
}

pub struct Store {
    /// The SQLite file (None on PostgreSQL): its history watermark and checkpoints belong to it.
    path: Option<std::path::PathBuf>,
    /// Readers. Snapshot reads run in one read transaction so they are consistent with a seq.
    pub read: ReadPool,
    /// The identity of this database's event history (see `events`); renewed by the writer
    /// when clients were told of events the database does not hold (`writer::task`).
    epoch: std::sync::RwLock<String>,
    /// Why writes are failing, from a failure until the next good commit. `/ready` reports it.
    write_failure: std::sync::Mutex<Option<String>>,
    /// Dropping the store stops its checkpoints (see [`spawn_checkpoints`]; SQLite only).
    _checkpoints: Option<oneshot::Sender<()>>,
    /// The last [`Store::quick_check`] result and when it was taken (see [`Store::integrity`]).
    integrity: Mutex<Option<(std::time::Instant, Result<(), String>)>>,
    /// This server among those sharing the database (a write group's hint names it).
    node: String,
}

/// The one connection that writes, as [`Store::open`] opens it. Only the writer task
/// (the `writer` module) holds it; nothing else in the server can reach it.
pub enum WriterConnection {
    /// `options`: how it is opened again after a failure (see [`WriterConnection::reopen`]).
    Sqlite {
        conn: SqliteConnection,
        options: SqliteConnectOptions,
        /// A group's transaction was begun and not ended (see [`Tx::SqliteWriter`]).
        in_transaction: bool,
    },
    Postgres {
        conn: PgConnection,
        options: PgConnectOptions,
    },
}

impl WriterConnection {
    pub fn get(&mut self) -> Conn<'_> {
        match self {
            WriterConnection::Sqlite { conn, .. } => Conn::Sqlite(conn),
            WriterConnection::Postgres { conn, .. } => Conn::Postgres(conn),
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            WriterConnection::Sqlite { .. } => Backend::Sqlite,
            WriterConnection::Postgres { .. } => Backend::Postgres,
        }
    }

    /// A group's transaction; with `savepoint`, its first command's savepoint is opened in the
    /// same round trip.
    pub async fn begin(&mut self, savepoint: bool) -> sqlx::Result<Tx<'_>> {
        let begin = begin_sql(savepoint);
        Ok(match self {
            WriterConnection::Sqlite {
                conn,
                in_transaction,
                ..
            } => {
                end_left_open(conn, in_transaction).await;
                sqlx::query(begin).execute(&mut *conn).await?;
                *in_transaction = true;
                Tx::SqliteWriter(WriterTx {
                    conn,
                    open: in_transaction,
                })
            }
            WriterConnection::Postgres { conn, .. } => Tx::Postgres(conn.begin_with(begin).await?),
        })
    }

    /// [`WriterConnection::begin`] and the group's read of `ids` (`work_items_with_lists`),
    /// on SQLite in one round trip.
    pub async fn begin_reading(
        &mut self,
        savepoint: bool,
        ids: &[&str],
    ) -> sqlx::Result<(Tx<'_>, Vec<(rows::WorkItemRow, Vec<hierarchy::FillRow>)>)> {
        let WriterConnection::Sqlite {
            conn,
            in_transaction,
            ..
        } = self
        else {
            let mut tx = self.begin(savepoint).await?;
            let items = work_items::work_items_with_lists(&mut tx.conn(), ids).await?;
            return Ok((tx, items));
        };
        end_left_open(conn, in_transaction).await;
        // Counted as open from here: if the read fails after the BEGIN, the next begin (or
        // the reopen the failure leads to) ends it.
        *in_transaction = true;
        let items = work_items::work_items_with_lists_after(
            &mut Conn::Sqlite(conn),
            Some(begin_sql(savepoint)),
            ids,
        )
        .await?;
        let tx = Tx::SqliteWriter(WriterTx {
            conn,
            open: in_transaction,
        });
        Ok((tx, items))
    }

    /// Replaces the connection with a new one. The old one may still be inside a transaction
    /// SQLite or sqlx lost track of (a failed COMMIT leaves sqlx counting an open transaction,
    /// and its next BEGIN becomes a SAVEPOINT whose RELEASE writes nothing); closing it rolls
    /// back whatever it still had open.
    pub async fn reopen(&mut self) -> anyhow::Result<()> {
        let closed = match self {
            WriterConnection::Sqlite {
                conn,
                options,
                in_transaction,
            } => {
                let fresh = SqliteConnection::connect_with(options)
                    .await
                    .context("reopening the writer")?;
                *in_transaction = false;
                std::mem::replace(conn, fresh).close().await
            }
            WriterConnection::Postgres { conn, options } => {
                // A database behind a cut network may not even refuse: give up in time.
                let fresh =
                    tokio::time::timeout(RECONNECT_TIMEOUT, PgConnection::connect_with(options))
                        .await
                        .map_err(|_| sqlx::Error::PoolTimedOut)
                        .and_then(|c| c)
                        .context("reopening the writer")?;
                std::mem::replace(conn, fresh).close().await
            }
        };
        if let Err(e) = closed {
            tracing::warn!(error = %e, "closing the failed writer connection");
        }
        Ok(())
    }

    /// Whether a group's transaction is counted as open (tests).
    #[cfg(test)]
    pub fn in_transaction(&self) -> bool {
        matches!(
            self,
            WriterConnection::Sqlite {
                in_transaction: true,
                ..
            }
        )
    }

    /// The bare connection, for tests of the statements the writer composes.
    #[cfg(test)]
    pub fn into_connection(self) -> SqliteConnection {
        match self {
            WriterConnection::Sqlite { conn, .. } => conn,
            WriterConnection::Postgres { .. } => panic!("a SQLite test opened PostgreSQL"),
        }
    }
}

/// A transaction left open by a group that failed (the connection is normally replaced before
/// the next group): whatever it holds goes.
async fn end_left_open(conn: &mut SqliteConnection, in_transaction: &mut bool) {
    if *in_transaction {
        if let Err(e) = sqlx::query("ROLLBACK").execute(&mut *conn).await {
            tracing::warn!(error = %e, "rolling back a transaction left open");
        }
        *in_transaction = false;
    }
}

/// A group's BEGIN; with `savepoint`, its first command's savepoint is opened with it.
fn begin_sql(savepoint: bool) -> &'static str {
    if savepoint {
        pipeline::BEGIN_WITH_SAVEPOINT
    } else {
        "BEGIN"
    }
}

/// How long the writer waits for PostgreSQL when it connects again after a failure.
const RECONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How soon the next checkpoint runs after one that found new WAL frames, and after one that
/// found none (an idle server wakes once a second for it).
const CHECKPOINT_BUSY: Duration = Duration::from_millis(100);
const CHECKPOINT_IDLE: Duration = Duration::from_secs(1);

impl Store {
    /// Opens (creating if needed) the database, applies migrations, and hands back the store
    /// (readers, epoch, health) and the writer's connection, which the caller gives to the
    /// writer task.
    pub async fn open(path: &Path) -> anyhow::Result<(Store, WriterConnection)> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        // The writer only: a group runs each command inside a savepoint, whose pages SQLite
        // keeps in a temporary file unless told to keep them in memory (a quarter of a group's
        // write time: bench/NOTES.md); grouped updates make statement texts by the columns they set
        // (see `writer::write_behind`), so the cache has room for them; and checkpoints run
        // on a connection of their own (see `spawn_checkpoints`): the writer checkpoints only
        // after 8,192 WAL pages (32 MiB), which bounds the WAL under a sustained write load.
        let writer_options = options
            .clone()
            .pragma("temp_store", "memory")
            .pragma("wal_autocheckpoint", "8192")
            .statement_cache_capacity(256);
        // A Blazor Agile Board database is converted before pm's migrations could fail on its
        // history; a file that is neither pm's nor the reference's is refused untouched.
        reference::prepare(path).await?;
        let mut writer = SqliteConnection::connect_with(&writer_options)
            .await
            .with_context(|| format!("opening database {}", path.display()))?;
        MIGRATOR
            .run(&mut writer)
            .await
            .context("applying migrations")?;
        let mut conn = Conn::Sqlite(&mut writer);
        let epoch = events::ensure_epoch(&mut conn).await?;
        let epoch = events::verify_history(&mut conn, path, epoch).await?;
        ensure_default_user(&mut conn).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.clone().read_only(true))
            .await
            .context("opening read pool")?;
        let checkpoints = spawn_checkpoints(&options).await?;
        let store = Store {
            path: Some(path.to_path_buf()),
            read: ReadPool::Sqlite(read),
            epoch: std::sync::RwLock::new(epoch),
            write_failure: Default::default(),
            _checkpoints: Some(checkpoints),
            integrity: Mutex::new(None),
            node: crate::ids::random_id(),
        };
        let writer = WriterConnection::Sqlite {
            conn: writer,
            options: writer_options,
            in_transaction: false,
        };
        Ok((store, writer))
    }

    /// Connects to the PostgreSQL database at `url` (`postgres://…`), applies pm's PostgreSQL
    /// migrations and hands back the store and the writer's connection, as [`Store::open`]
    /// does for SQLite. The epoch lives in the database, so every server on it shares it.
    pub async fn open_postgres(url: &str) -> anyhow::Result<(Store, WriterConnection)> {
        let options = PgConnectOptions::from_str(url).context("reading the PostgreSQL URL")?;
        let mut writer = PgConnection::connect_with(&options)
            .await
            .with_context(|| format!("connecting to PostgreSQL at {}", redact(url)))?;
        PG_MIGRATOR
            .run(&mut writer)
            .await
            .context("applying migrations")?;
        let mut conn = Conn::Postgres(&mut writer);
        let epoch = events::ensure_epoch(&mut conn).await?;
        ensure_default_user(&mut conn).await?;
        let read = PgPoolOptions::new()
            .max_connections(8)
            // A database that went away fails a read in seconds, not the default half minute.
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(options.clone())
            .await
            .context("opening read pool")?;
        let store = Store {
            path: None,
            read: ReadPool::Postgres(read),
            epoch: std::sync::RwLock::new(epoch),
            write_failure: Default::default(),
            _checkpoints: None,
            integrity: Mutex::new(None),
            node: crate::ids::random_id(),
        };
        Ok((
            store,
            WriterConnection::Postgres {
                conn: writer,
                options,
            },
        ))
    }

    pub fn backend(&self) -> Backend {
        self.read.backend()
    }

    /// This server's id among the servers sharing the database (new at every start).
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The identity of the event history clients' cursors refer to.
    pub fn epoch(&self) -> String {
        self.epoch.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Gives the history a new identity at once (the writer stores it when the disk allows):
    /// every client's cursor stops meaning anything, so every client resyncs.
    pub(crate) fn renew_epoch(&self) -> String {
        let renewed = crate::ids::random_id();
        *self.epoch.write().unwrap_or_else(|p| p.into_inner()) = renewed.clone();
        renewed
    }

    /// Stores the epoch in `pm_meta` if what is stored differs (a renewal that could not be
    /// stored when it happened).
    pub(crate) async fn store_epoch(&self, writer: &mut Conn<'_>) -> anyhow::Result<()> {
        let epoch = self.epoch();
        let stored: Option<String> = on!(writer, |c| sqlx::query_scalar(
            "SELECT value FROM pm_meta WHERE key = 'epoch'"
        )
        .fetch_optional(c)
        .await)?;
        if stored.as_deref() != Some(epoch.as_str()) {
            on!(writer, |c| sqlx::query(
                "INSERT INTO pm_meta (key, value) VALUES ('epoch', $1) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            )
            .bind(&epoch)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
            .context("storing the renewed epoch")?;
        }
        Ok(())
    }

    fn failure(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.write_failure.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that a write failed (the writer resets its connection before the next one).
    pub(crate) fn note_write_failure(&self, cause: &dyn std::fmt::Display) {
        tracing::error!(error = %cause, "a write failed; the writer is reset before the next one");
        *self.failure() = Some(cause.to_string());
    }

    /// A transaction that wrote something committed.
    pub(crate) fn note_write_success(&self) {
        if self.failure().take().is_some() {
            tracing::info!("writes succeed again");
        }
    }

    /// Why writes are failing, from a failure until the next good commit (for `/ready`).
    pub fn write_failure(&self) -> Option<String> {
        self.failure().clone()
    }

    /// Prunes the replay log on the writer's connection and records the history watermark
    /// (see `events::verify_history`). Run by the writer, between groups.
    pub(crate) async fn maintain(
        &self,
        writer: &mut Conn<'_>,
        keep_per_stream: u64,
        max_age_secs: u64,
    ) -> anyhow::Result<u64> {
        let older_than = cutoff(pm_shared::now_secs(), max_age_secs);
        let pruned = events::prune(writer, keep_per_stream, older_than).await?;
        if let Some(path) = &self.path {
            let total_seq = events::total_seq(writer).await?;
            events::write_watermark(
                path,
                &events::Watermark {
                    epoch: self.epoch(),
                    total_seq,
                },
            )?;
        }
        Ok(pruned)
    }

    pub async fn ping(&self) -> anyhow::Result<()> {
        let mut reader = tokio::time::timeout(Duration::from_secs(3), self.read.acquire())
            .await
            .context("the database did not answer within 3 s")??;
        on!(&mut reader.conn(), |c| sqlx::query("SELECT 1")
            .execute(c)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Folds the whole write-ahead log into the database file and empties the log, so that a
    /// copy of the database file alone is a complete backup. Run by the writer, between
    /// groups. A checkpoint already running on the store's own connection makes it busy for a
    /// moment, so it tries a few times; `Ok(false)`: readers kept it from finishing.
    pub(crate) async fn checkpoint_truncate(writer: &mut Conn<'_>) -> anyhow::Result<bool> {
        let Some(writer) = writer.sqlite() else {
            anyhow::bail!("checkpoints are SQLite's; PostgreSQL keeps its own write-ahead log");
        };
        for _ in 0..50 {
            // (busy, frames in the WAL, frames copied back)
            let (busy, _, _) =
                sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(TRUNCATE)")
                    .fetch_one(&mut *writer)
                    .await?;
            if busy == 0 {
                return Ok(true);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(false)
    }

    /// [`Store::quick_check`], run at most once per `max_age`: callers meanwhile share the
    /// last result (and wait for a check in progress rather than start another).
    pub async fn integrity(&self, max_age: Duration) -> Result<(), String> {
        let mut cached = self.integrity.lock().await;
        if let Some((at, result)) = cached.as_ref() {
            if at.elapsed() < max_age {
                return result.clone();
            }
        }
        let result = self.quick_check().await.map_err(|e| format!("{e:#}"));
        if let Err(problem) = &result {
            tracing::error!(%problem, "the database failed its integrity check");
        }
        *cached = Some((std::time::Instant::now(), result.clone()));
        result
    }

    /// SQLite's structural check of the database, stopping at the first problem: `Err` with
    /// SQLite's description of it. It reads every page, so callers cache it (see `/ready`).
    pub async fn quick_check(&self) -> anyhow::Result<()> {
        let ReadPool::Sqlite(read) = &self.read else {
            // PostgreSQL checks its own pages (and is reached at all: see `ping`).
            return Ok(());
        };
        let rows: Vec<(String,)> = sqlx::query_as("PRAGMA quick_check(1)")
            .fetch_all(read)
            .await?;
        match rows.first() {
            Some((ok,)) if ok == "ok" => Ok(()),
            Some((problem,)) => anyhow::bail!("{problem}"),
            None => anyhow::bail!("quick_check returned nothing"),
        }
    }
}

/// The built-in desktop user every database has.
async fn ensure_default_user(conn: &mut Conn<'_>) -> sqlx::Result<()> {
    on!(conn, |c| sqlx::query(
        "INSERT INTO users (id, email, name) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
    )
    .bind(pm_shared::DEFAULT_USER_ID)
    .bind(format!("{}@system.local", pm_shared::DEFAULT_USER_ID))
    .bind("Local User")
    .execute(c)
    .await
    .map(|_| ()))
}

/// `url` without its password, for messages and logs: `postgres://pm:***@host/db`.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let authority_end = url[scheme_end..]
        .find(['/', '?'])
        .map_or(url.len(), |i| scheme_end + i);
    let authority = &url[scheme_end..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &url[..scheme_end],
            &authority[..colon],
            &url[scheme_end + at..]
        ),
        _ => url.to_string(),
    }
}

/// The creation time before which events are pruned: `max_age_secs` before `now`, saturating
/// (a retention of "forever" must not wrap into the future and prune everything).
fn cutoff(now: i64, max_age_secs: u64) -> i64 {
    now.saturating_sub(i64::try_from(max_age_secs).unwrap_or(i64::MAX))
}

/// Copies the write-ahead log back into the database on a connection of its own, until the
/// returned sender is dropped. SQLite's automatic checkpoint runs inside the commit that takes
/// the WAL past 1,000 pages, on the writer: a stall of several milliseconds for whichever write
/// is in flight, and for every event behind it. A PASSIVE checkpoint waits for neither the
/// writer nor readers.
///
/// It cannot finish while writes keep coming, though, and SQLite starts the WAL over only after
/// a checkpoint that did finish, so under a sustained load the WAL would grow without bound.
/// So the writer still checkpoints at 32 MiB of WAL (set where it is opened), which then has
/// little left to copy. Measured: bench/NOTES.md, "What was changed in the server", item 9.
async fn spawn_checkpoints(options: &SqliteConnectOptions) -> anyhow::Result<oneshot::Sender<()>> {
    let mut conn = SqliteConnection::connect_with(options)
        .await
        .context("opening the checkpoint connection")?;
    let (stop, mut stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let mut last = None;
        loop {
            // (busy, frames in the WAL, frames copied back)
            let done = sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&mut conn)
                .await;
            let pause = match done {
                Ok(frames) if last == Some(frames) => CHECKPOINT_IDLE,
                Ok(frames) => {
                    last = Some(frames);
                    CHECKPOINT_BUSY
                }
                Err(e) => {
                    tracing::warn!(error = %e, "WAL checkpoint failed");
                    CHECKPOINT_IDLE
                }
            };
            tokio::select! {
                _ = &mut stopped => break,
                _ = tokio::time::sleep(pause) => {}
            }
        }
        let _ = conn.close().await;
    });
    Ok(stop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_never_reaches_a_message() {
        assert_eq!(
            redact("postgres://pm:secret@db:5432/pm?sslmode=require"),
            "postgres://pm:***@db:5432/pm?sslmode=require"
        );
        assert_eq!(redact("postgres://pm@db/pm"), "postgres://pm@db/pm");
        assert_eq!(redact("postgres://db/p:x@y"), "postgres://db/p:x@y");
    }

    #[test]
    fn a_huge_retention_keeps_everything() {
        assert_eq!(cutoff(1_000, 400), 600);
        assert_eq!(cutoff(1_000, u64::MAX), 1_000 - i64::MAX);
        assert!(cutoff(1_000, u64::MAX) < 0);
    }

    /// The SQLite writer's own transactions: a COMMIT sent as the last statement of a query
    /// ends it (the next group begins cleanly and readers see the write); one dropped without
    /// COMMIT is rolled back before the next begins, so its writes never land.
    #[tokio::test]
    async fn the_writers_transaction_commits_in_a_statement_and_never_stays_open() {
        let dir = tempfile::tempdir().unwrap();
        let (store, mut writer) = Store::open(&dir.path().join("t.db")).await.unwrap();
        let read = |key: &'static str| {
            let pool = store.read.sqlite().unwrap().clone();
            async move {
                sqlx::query_scalar::<_, String>("SELECT value FROM pm_meta WHERE key = ?")
                    .bind(key)
                    .fetch_optional(&pool)
                    .await
                    .unwrap()
            }
        };

        let mut tx = writer.begin(true).await.unwrap();
        assert!(tx.may_commit_in_a_statement());
        sqlx::query("INSERT INTO pm_meta (key, value) VALUES ('a', '1');\nCOMMIT")
            .execute(&mut *sqlite(&mut tx))
            .await
            .unwrap();
        tx.committed_by_last_statement();
        assert!(!writer.in_transaction(), "ended by its COMMIT");
        assert_eq!(read("a").await.as_deref(), Some("1"));

        // Left open by a group that failed: the next begin rolls it back first.
        let mut tx = writer.begin(false).await.unwrap();
        sqlx::query("INSERT INTO pm_meta (key, value) VALUES ('b', '2')")
            .execute(&mut *sqlite(&mut tx))
            .await
            .unwrap();
        drop(tx);
        assert!(
            writer.in_transaction(),
            "a dropped transaction stays counted"
        );
        let mut tx = writer.begin(true).await.unwrap();
        sqlx::query("INSERT INTO pm_meta (key, value) VALUES ('c', '3')")
            .execute(&mut *sqlite(&mut tx))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert!(!writer.in_transaction());
        assert_eq!(read("b").await, None, "the dropped transaction's write");
        assert_eq!(read("c").await.as_deref(), Some("3"));

        // BEGIN travels with the group's read: what follows is inside the transaction.
        let (mut tx, items) = writer.begin_reading(true, &["no-such-item"]).await.unwrap();
        assert!(items.is_empty());
        sqlx::query("INSERT INTO pm_meta (key, value) VALUES ('d', '4')")
            .execute(&mut *sqlite(&mut tx))
            .await
            .unwrap();
        drop(tx);
        writer.begin(false).await.unwrap().rollback().await.unwrap();
        assert_eq!(
            read("d").await,
            None,
            "written inside the read's transaction"
        );

        // And a reopened connection starts with nothing open.
        drop(writer.begin(false).await.unwrap());
        writer.reopen().await.unwrap();
        assert!(
            !writer.in_transaction(),
            "a fresh connection has nothing open"
        );
        writer.begin(false).await.unwrap().rollback().await.unwrap();
    }

    fn sqlite<'a>(tx: &'a mut Tx<'_>) -> &'a mut SqliteConnection {
        match tx {
            Tx::SqliteWriter(t) => t.conn,
            _ => panic!("the SQLite writer's transaction"),
        }
    }

    /// 100 rows of about 2 KB each, one commit per row.
    async fn write_rows(writer: &mut SqliteConnection, round: usize) {
        let note = "x".repeat(2_000);
        for i in 0..100 {
            sqlx::query("INSERT INTO users (id, email, name) VALUES (?, ?, ?)")
                .bind(format!("u-{round}-{i}"))
                .bind(format!("u-{round}-{i}@example.com"))
                .bind(&note)
                .execute(&mut *writer)
                .await
                .unwrap();
        }
    }

    /// Below the writer's own threshold, the store's checkpoints copy its commits into the
    /// database file soon after, and the WAL is reused rather than growing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commits_reach_the_database_file_without_the_writer_checkpointing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let (_store, writer) = Store::open(&path).await.unwrap();
        let mut writer = writer.into_connection();
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let wal = path.with_extension("db-wal");
        // Wait for the first checkpoint to fold in the migrations.
        tokio::time::sleep(CHECKPOINT_BUSY * 3).await;
        let before = size(&path);
        for round in 0..5 {
            write_rows(&mut writer, round).await;
        }
        // 500 rows of 2 KB: about 1 MB of pages, now only in the WAL.
        let mut grown = false;
        for _ in 0..50 {
            tokio::time::sleep(CHECKPOINT_BUSY).await;
            if size(&path) >= before + 1_000_000 {
                grown = true;
                break;
            }
        }
        assert!(grown, "database file {} bytes, was {before}", size(&path));
        let wal_after_first = size(&wal);
        // More writes of the same size reuse the checkpointed WAL instead of extending it.
        for round in 5..10 {
            write_rows(&mut writer, round).await;
            tokio::time::sleep(CHECKPOINT_BUSY * 3).await;
        }
        assert!(
            size(&wal) <= wal_after_first + 200_000,
            "WAL grew from {wal_after_first} to {} bytes",
            size(&wal)
        );
    }
}
