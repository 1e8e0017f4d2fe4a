//! SQLite storage: one writer connection behind a lock (the single writer of the spec) and a
//! pool of readers. WAL lets readers run while the writer commits.
pub mod comments;
pub mod dependencies;
pub mod events;
pub mod export;
pub mod hierarchy;
pub mod members;
pub mod projects;
pub mod queries;
pub mod rows;
pub mod sprints;
pub mod time_entries;
pub mod work_items;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, SqliteConnection, SqlitePool};
use tokio::sync::{oneshot, Mutex, MutexGuard};

pub struct Store {
    path: std::path::PathBuf,
    /// Readers. Snapshot reads run in one read transaction so they are consistent with a seq.
    pub read: SqlitePool,
    writer: Mutex<SqliteConnection>,
    /// How the writer connection is opened, again after a failure (see [`Store::reset_writer`]).
    writer_options: SqliteConnectOptions,
    /// The identity of this database's event history (see `events`); renewed when clients were
    /// told of events the database does not hold (see [`Store::reset_writer`]).
    epoch: std::sync::RwLock<String>,
    /// Set when a write failed in a way its connection cannot prove it recovered from; the
    /// next group resets the writer first. `/ready` reports it.
    write_health: std::sync::Mutex<WriteHealth>,
    /// Users known to have a row in `users` (rows are never deleted), so a write does not
    /// spend a statement on `INSERT OR IGNORE` for someone it has seen before.
    known_users: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Each stream's last seq, for the holder of the writer (see [`events::SeqCounter`]).
    pub seqs: events::SeqCounter,
    /// Dropping the store stops its checkpoints (see [`spawn_checkpoints`]).
    _checkpoints: oneshot::Sender<()>,
    /// The last [`Store::quick_check`] result and when it was taken (see [`Store::integrity`]).
    integrity: Mutex<Option<(std::time::Instant, Result<(), String>)>>,
}

/// The writer's state after failures (see [`Store::note_write_failure`]).
#[derive(Default)]
struct WriteHealth {
    /// The connection must be replaced before the next write.
    reset_due: bool,
    /// The last failure, until a commit succeeds.
    failing: Option<String>,
}

/// Bound on [`Store`]'s memory of known users; past it the set starts over.
const KNOWN_USERS_MAX: usize = 100_000;

/// How soon the next checkpoint runs after one that found new WAL frames, and after one that
/// found none (an idle server wakes once a second for it).
const CHECKPOINT_BUSY: Duration = Duration::from_millis(100);
const CHECKPOINT_IDLE: Duration = Duration::from_secs(1);

/// The writer connection, held for a whole mutation: validate, write, append the event, commit,
/// publish. Holding it through publish is what keeps live delivery in seq order.
pub type Writer<'a> = MutexGuard<'a, SqliteConnection>;

impl Store {
    pub async fn open(path: &Path) -> anyhow::Result<Store> {
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
        // write time, measured); grouped updates make statement texts by the columns they set
        // (see `commands::write_behind`), so the cache has room for them; and checkpoints run
        // on a connection of their own (see `spawn_checkpoints`): the writer checkpoints only
        // after 8,192 WAL pages (32 MiB), which bounds the WAL under a sustained write load.
        let writer_options = options
            .clone()
            .pragma("temp_store", "memory")
            .pragma("wal_autocheckpoint", "8192")
            .statement_cache_capacity(256);
        let mut writer = SqliteConnection::connect_with(&writer_options)
            .await
            .with_context(|| format!("opening database {}", path.display()))?;
        sqlx::migrate!("../migrations")
            .run(&mut writer)
            .await
            .context("applying migrations")?;
        let epoch = events::ensure_epoch(&mut writer).await?;
        let epoch = events::verify_history(&mut writer, path, epoch).await?;
        sqlx::query("INSERT OR IGNORE INTO users (id, email, name) VALUES (?, ?, ?)")
            .bind(pm_shared::DEFAULT_USER_ID)
            .bind(format!("{}@system.local", pm_shared::DEFAULT_USER_ID))
            .bind("Local User")
            .execute(&mut writer)
            .await?;
        let read = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.clone().read_only(true))
            .await
            .context("opening read pool")?;
        let checkpoints = spawn_checkpoints(&options).await?;
        Ok(Store {
            path: path.to_path_buf(),
            read,
            writer: Mutex::new(writer),
            writer_options,
            epoch: std::sync::RwLock::new(epoch),
            write_health: Default::default(),
            known_users: Default::default(),
            seqs: Default::default(),
            _checkpoints: checkpoints,
            integrity: Mutex::new(None),
        })
    }

    pub async fn writer(&self) -> Writer<'_> {
        self.writer.lock().await
    }

    /// The identity of the event history clients' cursors refer to.
    pub fn epoch(&self) -> String {
        self.epoch.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn health(&self) -> std::sync::MutexGuard<'_, WriteHealth> {
        self.write_health.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that a write failed and the writer's connection is in a state nobody can vouch
    /// for (a failed COMMIT or ROLLBACK, a statement that failed after SQLite may have rolled
    /// the transaction back): the next group resets it before it writes.
    pub fn note_write_failure(&self, cause: &dyn std::fmt::Display) {
        tracing::error!(error = %cause, "a write failed; the writer is reset before the next one");
        let mut health = self.health();
        health.reset_due = true;
        health.failing = Some(cause.to_string());
    }

    /// A transaction that wrote something committed.
    pub fn note_write_success(&self) {
        let mut health = self.health();
        if health.failing.take().is_some() {
            tracing::info!("writes succeed again");
        }
    }

    /// Why writes are failing, from a failure until the next good commit (for `/ready`).
    pub fn write_failure(&self) -> Option<String> {
        self.health().failing.clone()
    }

    /// Whether the writer must be reset before it writes again.
    pub fn writer_suspect(&self) -> bool {
        self.health().reset_due
    }

    /// Starts the writer over after a failure: a new connection (the old one may still be
    /// inside a transaction SQLite or sqlx lost track of: a failed COMMIT leaves sqlx counting
    /// an open transaction, and its next BEGIN becomes a SAVEPOINT whose RELEASE writes
    /// nothing), seqs and known users read again from the database, and a new epoch if any
    /// client was told of an event the database does not hold: their cursors would otherwise
    /// name events that will be numbered again. `published` is each stream's last seq clients
    /// were told of (the hub's, `EventHub::published`). Stays marked failed if any step fails.
    /// The hub's numbers then describe the old epoch, or lag events a cut-short group
    /// committed: the caller (`commands::group`) resets them from the database after this.
    pub async fn reset_writer(
        &self,
        writer: &mut SqliteConnection,
        published: Vec<(String, u64)>,
    ) -> anyhow::Result<()> {
        let fresh = SqliteConnection::connect_with(&self.writer_options)
            .await
            .context("reopening the writer")?;
        let old = std::mem::replace(writer, fresh);
        // Closing rolls back whatever the old connection still had open.
        if let Err(e) = old.close().await {
            tracing::warn!(error = %e, "closing the failed writer connection");
        }
        self.seqs.forget();
        self.known_users
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        let mut lost = Vec::new();
        for (stream, published) in published {
            let held = events::current_seq(writer, &stream).await?;
            if held < published {
                lost.push((stream, held, published));
            }
        }
        if !lost.is_empty() {
            let renewed = uuid::Uuid::new_v4().to_string();
            tracing::error!(?lost, new_epoch = %renewed,
                "events were published that the database does not hold: renewing the epoch so every client resyncs");
            // Clients resync from the new epoch at once, even if it cannot be stored yet.
            *self.epoch.write().unwrap_or_else(|p| p.into_inner()) = renewed;
        }
        // A renewal that could not be stored before is stored now.
        let epoch = self.epoch();
        let stored: Option<String> =
            sqlx::query_scalar("SELECT value FROM pm_meta WHERE key = 'epoch'")
                .fetch_optional(&mut *writer)
                .await?;
        if stored.as_deref() != Some(epoch.as_str()) {
            sqlx::query("INSERT OR REPLACE INTO pm_meta (key, value) VALUES ('epoch', ?)")
                .bind(&epoch)
                .execute(&mut *writer)
                .await
                .context("storing the renewed epoch")?;
        }
        self.health().reset_due = false;
        tracing::info!("the writer was reset");
        Ok(())
    }

    /// Whether `user_id` is known to have a committed row in `users`.
    pub fn is_known_user(&self, user_id: &str) -> bool {
        self.known_users
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(user_id)
    }

    /// Records that `user_id`'s row is committed.
    pub fn note_known_user(&self, user_id: &str) {
        let mut known = self.known_users.lock().unwrap_or_else(|p| p.into_inner());
        if known.len() >= KNOWN_USERS_MAX {
            known.clear();
        }
        known.insert(user_id.to_string());
    }

    /// Prunes the replay log and records the history watermark (see `events::verify_history`).
    pub async fn maintain(&self, keep_per_stream: u64, max_age_secs: u64) -> anyhow::Result<u64> {
        let older_than = cutoff(pm_shared::now_secs(), max_age_secs);
        let mut writer = self.writer().await;
        let pruned = events::prune(&mut writer, keep_per_stream, older_than).await?;
        let total_seq = events::total_seq(&mut writer).await?;
        drop(writer);
        events::write_watermark(
            &self.path,
            &events::Watermark {
                epoch: self.epoch(),
                total_seq,
            },
        )?;
        Ok(pruned)
    }

    pub async fn ping(&self) -> anyhow::Result<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    /// Folds the whole write-ahead log into the database file and empties the log, so that a
    /// copy of the database file alone is a complete backup. Holds the writer while it runs.
    /// A checkpoint already running on the store's own connection makes it busy for a moment,
    /// so it tries a few times; `Ok(false)`: readers kept it from finishing.
    pub async fn checkpoint_truncate(&self) -> anyhow::Result<bool> {
        for _ in 0..50 {
            let mut writer = self.writer().await;
            // (busy, frames in the WAL, frames copied back)
            let (busy, _, _) =
                sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(TRUNCATE)")
                    .fetch_one(&mut *writer)
                    .await?;
            drop(writer);
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
        let rows: Vec<(String,)> = sqlx::query_as("PRAGMA quick_check(1)")
            .fetch_all(&self.read)
            .await?;
        match rows.first() {
            Some((ok,)) if ok == "ok" => Ok(()),
            Some((problem,)) => anyhow::bail!("{problem}"),
            None => anyhow::bail!("quick_check returned nothing"),
        }
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
/// a checkpoint that did finish: under a sustained load the WAL grew by 47 MB a second. So the
/// writer still checkpoints at 32 MiB of WAL (set where it is opened), which then has little
/// left to copy. Measured with 100 subscribers at 100 updates/s, three alternating pairs:
/// fan-out p99 2.7, 2.9, 2.7 ms with SQLite's checkpoints, 2.0, 1.9, 2.1 ms with these; max
/// 6.1, 7.5, 7.2 ms against 5.0, 2.9, 3.9 ms; the WAL stays at 34 MB at 15,000 updates/s.
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
    fn a_huge_retention_keeps_everything() {
        assert_eq!(cutoff(1_000, 400), 600);
        assert_eq!(cutoff(1_000, u64::MAX), 1_000 - i64::MAX);
        assert!(cutoff(1_000, u64::MAX) < 0);
    }

    /// Were clients ever told of an event the database does not hold (a commit reported good
    /// that did not last), a reset gives the history a new epoch, stored, so every client
    /// resyncs instead of trusting a seq that will be given again.
    #[tokio::test]
    async fn a_reset_renews_the_epoch_when_published_events_are_missing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        let before = store.epoch();
        let mut writer = store.writer().await;

        // Nothing published beyond the database: a reset keeps the epoch.
        store.note_write_failure(&"test");
        assert!(store.writer_suspect());
        store.reset_writer(&mut writer, Vec::new()).await.unwrap();
        assert!(!store.writer_suspect());
        assert_eq!(store.epoch(), before);
        assert!(
            store.write_failure().is_some(),
            "failing until a commit succeeds"
        );
        store.note_write_success();
        assert!(store.write_failure().is_none());

        // Seq 5 of stream "s" was published, but the database holds none of it.
        store.note_write_failure(&"test");
        store
            .reset_writer(&mut writer, vec![("s".into(), 5)])
            .await
            .unwrap();
        let renewed = store.epoch();
        assert_ne!(renewed, before);
        let stored: String = sqlx::query_scalar("SELECT value FROM pm_meta WHERE key = 'epoch'")
            .fetch_one(&mut *writer)
            .await
            .unwrap();
        assert_eq!(stored, renewed, "the new epoch outlives a restart");
    }

    /// 100 rows of about 2 KB each, one commit per row.
    async fn write_rows(store: &Store, round: usize) {
        let mut writer = store.writer().await;
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
        let store = Store::open(&path).await.unwrap();
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let wal = path.with_extension("db-wal");
        // Wait for the first checkpoint to fold in the migrations.
        tokio::time::sleep(CHECKPOINT_BUSY * 3).await;
        let before = size(&path);
        for round in 0..5 {
            write_rows(&store, round).await;
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
            write_rows(&store, round).await;
            tokio::time::sleep(CHECKPOINT_BUSY * 3).await;
        }
        assert!(
            size(&wal) <= wal_after_first + 200_000,
            "WAL grew from {wal_after_first} to {} bytes",
            size(&wal)
        );
    }
}
