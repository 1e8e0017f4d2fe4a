//! Databases written by the Blazor Agile Board (the reference system, v0.1.4): recognising one
//! at pm's database path, and converting it to pm's schema without losing a row.
//!
//! Both servers default to `<git root>/.pm/data.db`, so a repository where the reference was in
//! use hands pm-server the reference's file. [`prepare`] runs before pm's migrations: it lets a
//! pm database (or none) through, converts a reference database in place, and refuses anything
//! else with a message that names the file, never a migration error.
//!
//! The conversion builds a new pm database beside the original (`<db>.converting`), runs pm's
//! migrations on it, ATTACHes the reference file and copies every table with INSERT … SELECT in
//! one transaction, then renames the new file over the old one. A failure at any point leaves the
//! original's rows as they were. A byte copy of the original is kept first
//! (`<db>.reference-backup`) and never overwritten. A file that another process still has open
//! (a reference server that still runs) is refused, as SQLite refuses to take it out of WAL mode.
//!
//! What changes on the way (the schemas agree on ids, Unix-second timestamps, enum spellings,
//! soft deletes, versions, positions and item numbers):
//! - `pm_activity_log`: the reference's `field_name/old_value/new_value` become pm's `changes`
//!   JSON array, and each row gets the `project_id` of the entity it describes.
//! - `pm_sprints.velocity`, a column the reference never wrote, is left out.
//! - `pm_llm_context`: the reference's seeded documents describe the reference's schema, which
//!   this database no longer has; pm's own documents stand in their place. Rows a user added come
//!   over.
//! - `pm_swim_lanes` (never written by the reference: pm derives lanes from statuses) and
//!   `pm_idempotency_keys` (retries of requests the old server answered) are counted, not copied.
//! - The event log starts empty under a fresh epoch, so any client that knew the old server
//!   reloads.
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{Connection, SqliteConnection};

use super::MIGRATOR;

/// The reference's migrations at v0.1.4 (HEAD 1684154), in order. A database with exactly
/// these applied has the schema the conversion reads.
pub const REFERENCE_VERSIONS: [i64; 18] = [
    20260110000000,
    20260110000001,
    20260110000002,
    20260110000003,
    20260110000004,
    20260110000005,
    20260110000006,
    20260110000007,
    20260110000008,
    20260110000009,
    20260110000010,
    20260110000011,
    20260116000001,
    20260119194912,
    20260121000001,
    20260127000001,
    20260202000001,
    20260203000001,
];

/// A LIKE pattern for the ids of the documents the reference seeds into `pm_llm_context`
/// (migration 20260127000001). A macro so that the copy's SQL can spell it in with `concat!`.
macro_rules! reference_seeded_documents {
    () => {
        "11111111-1111-1111-1111-%"
    };
}

/// What is at a database path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// No file, an empty file, or a SQLite file without tables: pm creates its schema there.
    Nothing,
    /// pm's schema, at this version of pm or an earlier one (pm's migrations bring it up).
    Pm,
    /// The reference's schema at v0.1.4.
    Reference,
}

/// Rows carried over by a conversion, and what was deliberately left behind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Carried {
    /// (kind, rows copied), in the order the conversion copies them.
    pub rows: Vec<(&'static str, u64)>,
    /// Time entries still running after the conversion.
    pub running_timers: u64,
    /// The reference's seeded LLM documents, replaced by pm's own.
    pub seeded_documents_replaced: u64,
    /// Rows of `pm_swim_lanes` (pm derives lanes from statuses).
    pub swim_lanes_dropped: u64,
    /// Rows of `pm_idempotency_keys`.
    pub idempotency_keys_dropped: u64,
}

impl Carried {
    /// The rows copied of one kind (0 for a kind it does not know).
    pub fn count(&self, kind: &str) -> u64 {
        self.rows
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, n)| *n)
    }

    fn log(&self, from: &Path, to: &Path) {
        tracing::info!(
            from = %from.display(),
            to = %to.display(),
            carried = %self,
            "converted a Blazor Agile Board database to pm's schema"
        );
        if self.swim_lanes_dropped > 0 {
            tracing::warn!(
                rows = self.swim_lanes_dropped,
                "pm_swim_lanes rows were not carried over: pm derives its lanes from the five statuses"
            );
        }
    }
}

impl fmt::Display for Carried {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows: Vec<String> = self
            .rows
            .iter()
            .map(|(kind, n)| format!("{n} {kind}"))
            .collect();
        write!(
            f,
            "{}, running timers: {}; not copied: {} seeded reference LLM documents (pm's own \
             stand in), {} swim lanes, {} idempotency keys",
            rows.join(", "),
            self.running_timers,
            self.seeded_documents_replaced,
            self.swim_lanes_dropped,
            self.idempotency_keys_dropped
        )
    }
}

/// One table's copy: the kind logged, the reference table and the columns the statement reads
/// from it, and the statement (run with the reference attached as `ref`).
struct Copy {
    kind: &'static str,
    table: &'static str,
    columns: &'static [&'static str],
    sql: &'static str,
}

/// Parents before children, though foreign keys are checked once, at the end.
const COPIES: &[Copy] = &[
    Copy {
        kind: "users",
        table: "users",
        columns: &["id", "email", "name", "created_at"],
        sql: "INSERT INTO users (id, email, name, created_at) \
              SELECT id, email, name, created_at FROM ref.users",
    },
    Copy {
        kind: "projects",
        table: "pm_projects",
        columns: &[
            "id",
            "title",
            "description",
            "key",
            "status",
            "version",
            "next_work_item_number",
            "created_at",
            "updated_at",
            "created_by",
            "updated_by",
            "deleted_at",
        ],
        sql: "INSERT INTO pm_projects (id, title, description, key, status, version, \
              next_work_item_number, created_at, updated_at, created_by, updated_by, deleted_at) \
              SELECT id, title, description, key, status, version, next_work_item_number, \
              created_at, updated_at, created_by, updated_by, deleted_at FROM ref.pm_projects",
    },
    Copy {
        kind: "project members",
        table: "pm_project_members",
        columns: &["id", "project_id", "user_id", "role", "created_at"],
        sql: "INSERT INTO pm_project_members (id, project_id, user_id, role, created_at) \
              SELECT id, project_id, user_id, role, created_at FROM ref.pm_project_members",
    },
    Copy {
        kind: "sprints",
        table: "pm_sprints",
        columns: &[
            "id",
            "project_id",
            "name",
            "goal",
            "start_date",
            "end_date",
            "status",
            "version",
            "created_at",
            "updated_at",
            "created_by",
            "updated_by",
            "deleted_at",
        ],
        sql: "INSERT INTO pm_sprints (id, project_id, name, goal, start_date, end_date, status, \
              version, created_at, updated_at, created_by, updated_by, deleted_at) \
              SELECT id, project_id, name, goal, start_date, end_date, status, version, \
              created_at, updated_at, created_by, updated_by, deleted_at FROM ref.pm_sprints",
    },
    Copy {
        kind: "work items",
        table: "pm_work_items",
        columns: &[
            "id",
            "item_type",
            "parent_id",
            "project_id",
            "position",
            "title",
            "description",
            "status",
            "priority",
            "story_points",
            "assignee_id",
            "sprint_id",
            "item_number",
            "version",
            "created_at",
            "updated_at",
            "created_by",
            "updated_by",
            "deleted_at",
        ],
        sql: "INSERT INTO pm_work_items (id, item_type, parent_id, project_id, position, title, \
              description, status, priority, story_points, assignee_id, sprint_id, item_number, \
              version, created_at, updated_at, created_by, updated_by, deleted_at) \
              SELECT id, item_type, parent_id, project_id, position, title, description, status, \
              priority, story_points, assignee_id, sprint_id, item_number, version, created_at, \
              updated_at, created_by, updated_by, deleted_at FROM ref.pm_work_items",
    },
    Copy {
        kind: "comments",
        table: "pm_comments",
        columns: &[
            "id",
            "work_item_id",
            "content",
            "created_at",
            "updated_at",
            "created_by",
            "updated_by",
            "deleted_at",
        ],
        sql: "INSERT INTO pm_comments (id, work_item_id, content, created_at, updated_at, \
              created_by, updated_by, deleted_at) \
              SELECT id, work_item_id, content, created_at, updated_at, created_by, updated_by, \
              deleted_at FROM ref.pm_comments",
    },
    Copy {
        kind: "dependencies",
        table: "pm_dependencies",
        columns: &[
            "id",
            "blocking_item_id",
            "blocked_item_id",
            "dependency_type",
            "created_at",
            "created_by",
            "deleted_at",
        ],
        sql: "INSERT INTO pm_dependencies (id, blocking_item_id, blocked_item_id, \
              dependency_type, created_at, created_by, deleted_at) \
              SELECT id, blocking_item_id, blocked_item_id, dependency_type, created_at, \
              created_by, deleted_at FROM ref.pm_dependencies",
    },
    Copy {
        kind: "time entries",
        table: "pm_time_entries",
        columns: &[
            "id",
            "work_item_id",
            "user_id",
            "started_at",
            "ended_at",
            "duration_seconds",
            "description",
            "created_at",
            "updated_at",
            "deleted_at",
        ],
        sql: "INSERT INTO pm_time_entries (id, work_item_id, user_id, started_at, ended_at, \
              duration_seconds, description, created_at, updated_at, deleted_at) \
              SELECT id, work_item_id, user_id, started_at, ended_at, duration_seconds, \
              description, created_at, updated_at, deleted_at FROM ref.pm_time_entries",
    },
    // pm's rows name their project (the reference finds it through the entity on every read),
    // and hold the per-field values as a JSON array; the reference never fills those three
    // columns, so in practice `changes` is `[]`. An action outside pm's three (none is known)
    // becomes `updated`, its name kept in the comment.
    Copy {
        kind: "activity rows",
        table: "pm_activity_log",
        columns: &[
            "id",
            "entity_type",
            "entity_id",
            "action",
            "field_name",
            "old_value",
            "new_value",
            "user_id",
            "timestamp",
            "comment",
        ],
        sql: "INSERT INTO pm_activity_log (id, project_id, entity_type, entity_id, action, \
              changes, user_id, timestamp, comment) \
              SELECT a.id, \
                CASE a.entity_type \
                  WHEN 'project' THEN a.entity_id \
                  WHEN 'work_item' THEN (SELECT w.project_id FROM ref.pm_work_items w \
                    WHERE w.id = a.entity_id) \
                  WHEN 'sprint' THEN (SELECT s.project_id FROM ref.pm_sprints s \
                    WHERE s.id = a.entity_id) \
                  WHEN 'comment' THEN (SELECT w.project_id FROM ref.pm_comments c \
                    JOIN ref.pm_work_items w ON w.id = c.work_item_id WHERE c.id = a.entity_id) \
                  WHEN 'time_entry' THEN (SELECT w.project_id FROM ref.pm_time_entries t \
                    JOIN ref.pm_work_items w ON w.id = t.work_item_id WHERE t.id = a.entity_id) \
                  WHEN 'dependency' THEN (SELECT w.project_id FROM ref.pm_dependencies d \
                    JOIN ref.pm_work_items w ON w.id = d.blocked_item_id WHERE d.id = a.entity_id) \
                END, \
                a.entity_type, a.entity_id, \
                CASE WHEN a.action IN ('created', 'updated', 'deleted') THEN a.action \
                  ELSE 'updated' END, \
                CASE WHEN a.field_name IS NULL AND a.old_value IS NULL AND a.new_value IS NULL \
                  THEN '[]' \
                  ELSE json_array(json_object('field_name', a.field_name, \
                    'old_value', a.old_value, 'new_value', a.new_value)) END, \
                a.user_id, a.timestamp, \
                CASE WHEN a.action IN ('created', 'updated', 'deleted') THEN a.comment \
                  ELSE trim(COALESCE(a.comment, '') || ' (reference action: ' || a.action || ')') \
                END \
              FROM ref.pm_activity_log a",
    },
    Copy {
        kind: "LLM context rows",
        table: "pm_llm_context",
        columns: &[
            "id",
            "context_type",
            "category",
            "title",
            "content",
            "example_sql",
            "example_description",
            "priority",
            "created_at",
            "updated_at",
            "deleted_at",
        ],
        sql: concat!(
            "INSERT INTO pm_llm_context (id, context_type, category, title, content, \
             example_sql, example_description, priority, created_at, updated_at, deleted_at) \
             SELECT id, context_type, category, title, content, example_sql, \
             example_description, priority, created_at, updated_at, deleted_at \
             FROM ref.pm_llm_context WHERE id NOT LIKE '",
            reference_seeded_documents!(),
            "'"
        ),
    },
];

/// `<db>.reference-backup`: the copy of a reference database kept by an in-place conversion.
pub fn backup_path(db: &Path) -> PathBuf {
    with_suffix(db, ".reference-backup")
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    p.into()
}

/// What to do when pm-server refuses a file, appended to every refusal.
const WHAT_TO_DO: &str = "pm-server has not changed it. Start pm-server with another data \
    directory or database (--data-dir / PM_DATA_DIR, --database / PM_DATABASE_PATH), or move \
    the file aside to start an empty board there";

/// Looks at the database at `path` and, for a reference database, converts it in place (see
/// the module documentation). Called by `Store::open` before pm's migrations run. `Ok` means
/// pm's migrations can take it from here; `Err` explains, naming the file, why not.
pub async fn prepare(path: &Path) -> anyhow::Result<Option<Carried>> {
    match inspect(path).await? {
        Found::Nothing | Found::Pm => Ok(None),
        Found::Reference => convert_in_place(path).await.map(Some),
    }
}

/// `pm-server migrate --from <source>`: converts the reference database `source` into `dest`,
/// which must not hold a board yet (no file, an empty file, or a pm database with no projects).
/// `source` keeps its rows and its schema (SQLite may fold its write-ahead log into it on the
/// way). With `dest` the same file as `source`, converts it in place.
pub async fn migrate_from(source: &Path, dest: &Path) -> anyhow::Result<Carried> {
    match inspect(source).await? {
        Found::Reference => {}
        Found::Nothing => anyhow::bail!("{} holds no database to migrate from", source.display()),
        Found::Pm => anyhow::bail!(
            "{} is a pm database already: start pm-server on it (--data-dir / --database), or \
             move its data with `pm sync export` and `pm sync import`",
            source.display()
        ),
    }
    if same_file(source, dest) {
        return convert_in_place(dest).await;
    }
    match inspect(dest).await? {
        Found::Nothing => {}
        Found::Pm => {
            if has_projects(dest).await? {
                anyhow::bail!(
                    "{} already holds a pm board; migrate into an empty data directory \
                     (--data-dir), or move that database aside first",
                    dest.display()
                );
            }
            settle(dest).await?;
        }
        Found::Reference => anyhow::bail!(
            "{} is a Blazor Agile Board database itself: start pm-server on it to convert it in \
             place, or migrate into another data directory",
            dest.display()
        ),
    }
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let carried = convert(source, dest).await?;
    carried.log(source, dest);
    Ok(carried)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Classifies the file at `path` without changing it; refuses (with what to do) a file that is
/// neither pm's nor the reference's.
pub async fn inspect(path: &Path) -> anyhow::Result<Found> {
    let len = match std::fs::metadata(path) {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Nothing),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    if len == 0 {
        return Ok(Found::Nothing);
    }
    if !has_sqlite_header(path)? {
        anyhow::bail!(
            "{} is not a SQLite database, so neither pm's nor the Blazor Agile Board's. {WHAT_TO_DO}",
            path.display()
        );
    }
    let mut conn = open_existing(path).await?;
    let found = classify(&mut conn, path).await;
    let _ = conn.close().await;
    found
}

fn has_sqlite_header(path: &Path) -> anyhow::Result<bool> {
    let mut header = [0u8; 16];
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    match file.read_exact(&mut header) {
        Ok(()) => Ok(&header == b"SQLite format 3\0"),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// A connection to an existing file that sets no pragma which would write to it.
async fn open_existing(path: &Path) -> anyhow::Result<SqliteConnection> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .foreign_keys(false);
    SqliteConnection::connect_with(&options)
        .await
        .with_context(|| format!("opening database {}", path.display()))
}

async fn classify(conn: &mut SqliteConnection, path: &Path) -> anyhow::Result<Found> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await
    .with_context(|| format!("reading the tables of {}", path.display()))?;
    if tables.is_empty() {
        return Ok(Found::Nothing);
    }
    if !tables.iter().any(|t| t == "_sqlx_migrations") {
        anyhow::bail!(
            "{} is a SQLite database pm-server does not recognise: it has tables ({}) but no \
             migration history, so it is neither a pm database nor a Blazor Agile Board one. \
             {WHAT_TO_DO}",
            path.display(),
            tables.join(", ")
        );
    }
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut *conn)
            .await
            .with_context(|| format!("reading the migration history of {}", path.display()))?;
    let pm: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
    let first_pm = pm.first().copied().unwrap_or(i64::MAX);
    if applied.iter().all(|v| pm.contains(v)) {
        return Ok(Found::Pm);
    }
    if applied == REFERENCE_VERSIONS {
        check_reference_columns(conn, path).await?;
        return Ok(Found::Reference);
    }
    if applied.iter().all(|v| REFERENCE_VERSIONS.contains(v)) {
        anyhow::bail!(
            "{} is a Blazor Agile Board database from before v0.1.4 ({} of its 18 migrations \
             applied), which pm-server cannot convert. Start the Blazor Agile Board server v0.1.4 \
             on it once to bring it up to date, then start pm-server again. pm-server has not \
             changed it",
            path.display(),
            applied.len()
        );
    }
    if applied.iter().all(|v| *v >= first_pm) {
        anyhow::bail!(
            "{} was written by a newer pm-server (its migrations {} are unknown to this one). \
             Run that pm-server, or a newer one, on it. pm-server has not changed it",
            path.display(),
            list(applied.iter().filter(|v| !pm.contains(v)))
        );
    }
    anyhow::bail!(
        "{} has a schema pm-server does not recognise (migrations {}), neither pm's nor the Blazor \
         Agile Board's v0.1.4. {WHAT_TO_DO}",
        path.display(),
        list(applied.iter())
    )
}

fn list<'a>(versions: impl Iterator<Item = &'a i64>) -> String {
    versions.map(i64::to_string).collect::<Vec<_>>().join(", ")
}

/// The reference's 18 migrations recorded are not proof of its tables: every column the
/// conversion reads must be there.
async fn check_reference_columns(conn: &mut SqliteConnection, path: &Path) -> anyhow::Result<()> {
    let mut tables: Vec<(&str, &[&str])> = COPIES.iter().map(|c| (c.table, c.columns)).collect();
    tables.push(("pm_swim_lanes", &["id"]));
    tables.push(("pm_idempotency_keys", &["message_id"]));
    for (table, columns) in tables {
        let present: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info(?)")
            .bind(table)
            .fetch_all(&mut *conn)
            .await?;
        let missing: Vec<&str> = columns
            .iter()
            .copied()
            .filter(|c| !present.iter().any(|p| p == c))
            .collect();
        if !missing.is_empty() {
            anyhow::bail!(
                "{} records the Blazor Agile Board's migrations, but its table {table} lacks \
                 {} (changed by hand?), so pm-server cannot convert it. {WHAT_TO_DO}",
                path.display(),
                missing.join(", ")
            );
        }
    }
    Ok(())
}

async fn has_projects(path: &Path) -> anyhow::Result<bool> {
    let mut conn = open_existing(path).await?;
    let exists: Option<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'pm_projects'",
    )
    .fetch_optional(&mut conn)
    .await?;
    let any = match exists {
        Some(_) => {
            sqlx::query_scalar::<_, i64>("SELECT EXISTS (SELECT 1 FROM pm_projects)")
                .fetch_one(&mut conn)
                .await?
                != 0
        }
        None => false,
    };
    let _ = conn.close().await;
    Ok(any)
}

/// Folds the file's write-ahead log into it and makes sure nothing else has it open, so that
/// the file alone is the whole database: a byte copy of it is a complete backup, and renaming
/// another file over it leaves no log behind that SQLite would apply to the new one.
///
/// Leaving WAL mode does both: SQLite checkpoints the log and deletes it, and it refuses while
/// any other connection has the database open (a Blazor Agile Board server that still runs
/// keeps its connections open even when idle). The file's contents stay as they were; only its
/// header's journal mode changes, which the reference sets back to WAL whenever it opens it.
async fn settle(path: &Path) -> anyhow::Result<()> {
    let in_use = || {
        anyhow::anyhow!(
            "{} is in use by another process (a Blazor Agile Board server, or a pm-server, still              running on it?). Stop it, then try again. pm-server has not changed the file",
            path.display()
        )
    };
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .foreign_keys(false)
        .busy_timeout(std::time::Duration::from_secs(1));
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .with_context(|| format!("opening database {}", path.display()))?;
    // The journal mode in force afterwards: the old one when SQLite could not change it.
    let mode: Result<String, _> = sqlx::query_scalar("PRAGMA journal_mode = DELETE")
        .fetch_one(&mut conn)
        .await;
    conn.close().await?;
    match mode {
        Ok(mode) if mode.eq_ignore_ascii_case("delete") => {}
        Ok(_) => return Err(in_use()),
        Err(sqlx::Error::Database(e)) if e.message().contains("locked") => return Err(in_use()),
        Err(e) => {
            return Err(e).with_context(|| format!("checkpointing {}", path.display()));
        }
    }
    if std::fs::metadata(with_suffix(path, "-wal")).is_ok_and(|m| m.len() > 0) {
        return Err(in_use());
    }
    for side in ["-wal", "-shm"] {
        let file = with_suffix(path, side);
        if let Err(e) = std::fs::remove_file(&file) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(e).with_context(|| format!("removing {}", file.display()));
            }
        }
    }
    Ok(())
}

async fn convert_in_place(path: &Path) -> anyhow::Result<Carried> {
    let backup = backup_path(path);
    // A backup with the same bytes as the file, and no write-ahead log beside the file whose
    // rows the backup would lack, is what a conversion interrupted before its rename leaves:
    // kept as it is. Any other file there is refused before `settle` touches the file's header.
    let keep_backup = backup.exists();
    if keep_backup {
        let pending_log = std::fs::metadata(with_suffix(path, "-wal")).is_ok_and(|m| m.len() > 0);
        if pending_log || !same_bytes(path, &backup)? {
            return Err(backup_in_the_way(path, &backup));
        }
    }
    settle(path).await?;
    if keep_backup {
        tracing::info!(backup = %backup.display(), "an identical backup exists already: kept");
    } else {
        make_backup(path, &backup)?;
    }
    match convert(path, path).await {
        Ok(carried) => {
            carried.log(path, path);
            tracing::info!(backup = %backup.display(), "the reference database is kept as a backup");
            Ok(carried)
        }
        Err(e) => {
            if !keep_backup {
                // The original is unchanged; the next attempt makes its backup afresh.
                let _ = std::fs::remove_file(&backup);
            }
            Err(e.context(format!(
                "converting the Blazor Agile Board database {} to pm's schema (its rows are as they were)",
                path.display()
            )))
        }
    }
}

/// Copies `db` to `backup`, never over an existing file.
fn make_backup(db: &Path, backup: &Path) -> anyhow::Result<()> {
    let mut from = std::fs::File::open(db).with_context(|| format!("opening {}", db.display()))?;
    let mut to = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(backup)
        .with_context(|| format!("creating the backup {}", backup.display()))?;
    let copied = std::io::copy(&mut from, &mut to)
        .and_then(|_| to.sync_all())
        .with_context(|| format!("copying {} to {}", db.display(), backup.display()));
    if let Err(e) = copied {
        let _ = std::fs::remove_file(backup);
        return Err(e);
    }
    Ok(())
}

fn backup_in_the_way(db: &Path, backup: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "{} is a Blazor Agile Board database, which pm-server converts in place after copying it \
         to {}; that file exists already and pm-server never overwrites a backup. Move it away, \
         then start pm-server again. pm-server has not changed either file",
        db.display(),
        backup.display()
    )
}

fn same_bytes(a: &Path, b: &Path) -> anyhow::Result<bool> {
    let (ma, mb) = (std::fs::metadata(a)?, std::fs::metadata(b)?);
    if ma.len() != mb.len() {
        return Ok(false);
    }
    let mut fa = std::io::BufReader::new(std::fs::File::open(a)?);
    let mut fb = std::io::BufReader::new(std::fs::File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = read_full(&mut fa, &mut ba)?;
        let m = read_full(&mut fb, &mut bb)?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Builds a pm database from the reference database `source` at `<dest>.converting`, then
/// renames it over `dest` (which, if it exists, was settled: no log beside it).
async fn convert(source: &Path, dest: &Path) -> anyhow::Result<Carried> {
    let building = with_suffix(dest, ".converting");
    remove_building(&building)?;
    let built = build(source, &building).await;
    let carried = match built {
        Ok(carried) => carried,
        Err(e) => {
            let _ = remove_building(&building);
            return Err(e);
        }
    };
    std::fs::rename(&building, dest).with_context(|| {
        format!(
            "renaming the converted {} to {}",
            building.display(),
            dest.display()
        )
    })?;
    Ok(carried)
}

/// Removes a partly built database (from this attempt, or one that was interrupted).
fn remove_building(building: &Path) -> anyhow::Result<()> {
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let file = with_suffix(building, suffix);
        if let Err(e) = std::fs::remove_file(&file) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(e).with_context(|| format!("removing {}", file.display()));
            }
        }
    }
    Ok(())
}

async fn build(source: &Path, building: &Path) -> anyhow::Result<Carried> {
    let source_name = source
        .to_str()
        .with_context(|| format!("{} is not a UTF-8 path", source.display()))?;
    // A rollback journal rather than WAL: the finished file is complete on its own, with no log
    // beside it to carry along through the rename. Foreign keys are checked once, after the
    // copy (`foreign_key_check`), so the tables' order and the work items' parent order do not
    // matter.
    let options = SqliteConnectOptions::new()
        .filename(building)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Delete)
        .foreign_keys(false);
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .with_context(|| format!("creating {}", building.display()))?;
    MIGRATOR
        .run(&mut conn)
        .await
        .context("applying pm's migrations to the new database")?;
    sqlx::query("ATTACH DATABASE ? AS ref")
        .bind(source_name)
        .execute(&mut conn)
        .await
        .with_context(|| format!("attaching {}", source.display()))?;
    let mut carried = Carried::default();
    let mut tx = conn.begin().await?;
    for copy in COPIES {
        let done = sqlx::query(copy.sql)
            .execute(&mut *tx)
            .await
            .with_context(|| format!("copying {}", copy.table))?;
        carried.rows.push((copy.kind, done.rows_affected()));
    }
    let count = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql);
    carried.running_timers =
        count("SELECT COUNT(*) FROM pm_time_entries WHERE ended_at IS NULL AND deleted_at IS NULL")
            .fetch_one(&mut *tx)
            .await? as u64;
    carried.seeded_documents_replaced =
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM ref.pm_llm_context WHERE id LIKE ?")
            .bind(reference_seeded_documents!())
            .fetch_one(&mut *tx)
            .await? as u64;
    carried.swim_lanes_dropped = count("SELECT COUNT(*) FROM ref.pm_swim_lanes")
        .fetch_one(&mut *tx)
        .await? as u64;
    carried.idempotency_keys_dropped = count("SELECT COUNT(*) FROM ref.pm_idempotency_keys")
        .fetch_one(&mut *tx)
        .await? as u64;
    // (table, rowid, parent table, foreign key index) of each row whose parent is missing.
    let broken: Vec<(String, Option<i64>, String, i64)> =
        sqlx::query_as("PRAGMA main.foreign_key_check")
            .fetch_all(&mut *tx)
            .await?;
    if let Some((table, rowid, parent, _)) = broken.first() {
        anyhow::bail!(
            "{} rows point at rows that do not exist (the first: {table} row {} names a missing \
             {parent})",
            broken.len(),
            rowid.map_or_else(|| "?".to_string(), |r| r.to_string())
        );
    }
    sqlx::query("INSERT INTO pm_meta (key, value) VALUES ('converted_from_reference', ?)")
        .bind(format!("{source_name} at {}", pm_shared::now_secs()))
        .execute(&mut *tx)
        .await?;
    tx.commit().await.context("committing the conversion")?;
    sqlx::query("DETACH DATABASE ref")
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(carried)
}
