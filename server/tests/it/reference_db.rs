//! Databases written by the Blazor Agile Board itself (`scripts/reference-db.sh` drives the
//! reference's own server and CLI from ../shared/reference/bin), opened by pm-server in place and
//! through `pm-server migrate --from`: every row of every table comes over field by field, the
//! running timer still runs, the event log starts under a fresh epoch, the original is kept as a
//! backup that is never overwritten. And files that are neither pm's nor the reference's are
//! refused by name, untouched. The tests that need the reference's binaries say so and pass
//! where they are absent.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, SqliteConnection};

use crate::common::TestServer;

/// The reference's binaries, beside the repository (../shared/reference/bin), if they are there.
fn reference_bin() -> Option<PathBuf> {
    let bin = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/reference/bin"
    ));
    if bin.join("bab-pm-server").is_file() && bin.join("bab-pm").is_file() {
        Some(bin)
    } else {
        eprintln!(
            "skipped: the Blazor Agile Board's binaries are not at {} (../shared/reference/bin)",
            bin.display()
        );
        None
    }
}

/// Runs scripts/reference-db.sh in `home`; the reference database it wrote.
fn build_reference_db(bin: &Path, home: &Path) -> PathBuf {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/reference-db.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(home)
        .env("BAB_BIN", bin)
        .output()
        .expect("run scripts/reference-db.sh");
    assert!(
        out.status.success(),
        "scripts/reference-db.sh failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let db = home.join(".pm").join("data.db");
    assert!(db.is_file(), "no database at {}", db.display());
    db
}

/// Each table's rows as JSON arrays of the columns both schemas have, by id.
const TABLES: &[(&str, &str)] = &[
    ("users", "id, email, name, created_at"),
    (
        "pm_projects",
        "id, title, description, key, status, version, next_work_item_number, created_at, \
         updated_at, created_by, updated_by, deleted_at",
    ),
    (
        "pm_project_members",
        "id, project_id, user_id, role, created_at",
    ),
    (
        "pm_sprints",
        "id, project_id, name, goal, start_date, end_date, status, version, created_at, \
         updated_at, created_by, updated_by, deleted_at",
    ),
    (
        "pm_work_items",
        "id, item_type, parent_id, project_id, position, title, description, status, priority, \
         story_points, assignee_id, sprint_id, item_number, version, created_at, updated_at, \
         created_by, updated_by, deleted_at",
    ),
    (
        "pm_comments",
        "id, work_item_id, content, created_at, updated_at, created_by, updated_by, deleted_at",
    ),
    (
        "pm_dependencies",
        "id, blocking_item_id, blocked_item_id, dependency_type, created_at, created_by, \
         deleted_at",
    ),
    (
        "pm_time_entries",
        "id, work_item_id, user_id, started_at, ended_at, duration_seconds, description, \
         created_at, updated_at, deleted_at",
    ),
    (
        "pm_activity_log",
        "id, entity_type, entity_id, action, user_id, timestamp, comment",
    ),
];

async fn open(db: &Path) -> SqliteConnection {
    let options = SqliteConnectOptions::new()
        .filename(db)
        .create_if_missing(false);
    SqliteConnection::connect_with(&options)
        .await
        .unwrap_or_else(|e| panic!("open {}: {e}", db.display()))
}

async fn dump(db: &Path) -> BTreeMap<&'static str, Vec<String>> {
    let mut conn = open(db).await;
    let mut tables = BTreeMap::new();
    for (table, columns) in TABLES {
        let rows: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT json_array({columns}) FROM {table} ORDER BY id"
        ))
        .fetch_all(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("read {table} of {}: {e}", db.display()));
        tables.insert(*table, rows);
    }
    conn.close().await.expect("close");
    tables
}

async fn scalar(db: &Path, sql: &str) -> i64 {
    let mut conn = open(db).await;
    let n: i64 = sqlx::query_scalar(sql)
        .fetch_one(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    conn.close().await.expect("close");
    n
}

async fn text(db: &Path, sql: &str) -> String {
    let mut conn = open(db).await;
    let s: String = sqlx::query_scalar(sql)
        .fetch_one(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    conn.close().await.expect("close");
    s
}

/// A copy of a database and its write-ahead log, read without touching the original.
async fn dump_copy(db: &Path) -> BTreeMap<&'static str, Vec<String>> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let copy = dir.path().join("data.db");
    std::fs::copy(db, &copy).expect("copy the database");
    let wal = with_suffix(db, "-wal");
    if wal.exists() {
        std::fs::copy(&wal, with_suffix(&copy, "-wal")).expect("copy its WAL");
    }
    dump(&copy).await
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    p.into()
}

fn row_count(tables: &BTreeMap<&'static str, Vec<String>>, table: &str) -> usize {
    tables.get(table).map_or(0, Vec::len)
}

/// The reference database pm-server finds at its own path is converted in place: the original
/// is kept as data.db.reference-backup, every row of every table is in pm's schema with the same
/// fields, the running timer runs, the board works through pm's API, the event log starts
/// afresh, and the next start opens it as the pm database it now is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reference_database_opens_in_place_with_every_row() {
    sqlite_only!();
    let Some(bin) = reference_bin() else { return };
    let home = tempfile::tempdir().expect("temporary directory");
    let db = build_reference_db(&bin, home.path());
    // The reference was stopped as a killed server is: its last writes are only in the WAL.
    let wal = with_suffix(&db, "-wal");
    assert!(
        std::fs::metadata(&wal).map_or(0, |m| m.len()) > 0,
        "the reference left a write-ahead log"
    );
    let before = dump_copy(&db).await;
    let expected = [
        ("users", 1),
        ("pm_projects", 2),
        ("pm_sprints", 2),
        ("pm_work_items", 6),
        ("pm_comments", 5),
        ("pm_dependencies", 3),
        ("pm_time_entries", 2),
    ];
    for (table, rows) in expected {
        assert_eq!(row_count(&before, table), rows, "{table} in the reference");
    }
    assert!(row_count(&before, "pm_activity_log") >= 20);

    let data_dir = home.path().join(".pm");
    let configure = |c: &mut pm_server::Config| c.data_dir = Some(data_dir.clone());
    let server = TestServer::start_in(home, configure).await;

    // The backup is the reference database as it was, WAL included.
    let backup = data_dir.join("data.db.reference-backup");
    assert_eq!(dump(&backup).await, before, "the backup holds every row");
    assert_eq!(
        scalar(&backup, "SELECT COUNT(*) FROM _sqlx_migrations").await,
        18,
        "the backup is the reference's database"
    );
    let backup_bytes = std::fs::read(&backup).expect("read the backup");
    assert!(!with_suffix(&db, ".converting").exists());

    // Every row, every field.
    let after = dump(&db).await;
    assert_eq!(
        after, before,
        "every row of every table came over unchanged"
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT COUNT(*) FROM pm_activity_log WHERE project_id IS NULL OR changes <> '[]'"
        )
        .await,
        0,
        "each activity row names its project"
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT COUNT(*) FROM pm_llm_context WHERE id LIKE '11111111-%'"
        )
        .await,
        0,
        "the reference's documents about its own schema are not carried"
    );
    assert_eq!(
        scalar(&db, "SELECT COUNT(*) FROM pm_llm_context").await,
        23,
        "pm's own documents about its schema"
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT COUNT(*) FROM pm_sprints WHERE status = 'active'"
        )
        .await,
        1
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT COUNT(*) FROM pm_time_entries WHERE ended_at IS NULL AND deleted_at IS NULL"
        )
        .await,
        1,
        "the running timer still runs"
    );

    // A fresh event history: no events, an epoch of its own.
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM pm_events").await, 0);
    let epoch = server.epoch();
    assert!(!epoch.is_empty());
    assert_eq!(
        text(&db, "SELECT value FROM pm_meta WHERE key = 'epoch'").await,
        epoch
    );

    // The board through pm's API.
    let http = server.http(None);
    let projects = http.get("/api/v1/projects").await;
    let projects = projects.ok()["projects"]
        .as_array()
        .expect("projects")
        .clone();
    let rone = projects
        .iter()
        .find(|p| p["key"] == "RONE")
        .expect("RONE came over");
    assert_eq!(rone["title"], "Reference One");
    assert_eq!(rone["description"], "The first project");
    let rone_id = rone["id"].as_str().expect("id").to_string();
    let items = http
        .get(&format!(
            "/api/v1/projects/{rone_id}/work-items?include_done=true"
        ))
        .await;
    let items = items.ok()["work_items"].as_array().expect("items").clone();
    assert_eq!(items.len(), 4, "RONE's live items: {items:?}");
    let task = items
        .iter()
        .find(|w| w["title"] == "Task one")
        .expect("Task one");
    assert_eq!(task["display_key"], "RONE-3");
    assert_eq!(task["status"], "review");
    assert_eq!(task["priority"], "high");
    assert_eq!(task["story_points"], 5);
    assert_eq!(task["assignee_id"], pm_shared::DEFAULT_USER_ID);
    assert_eq!(task["version"], 2);
    let two = items
        .iter()
        .find(|w| w["title"] == "Task two")
        .expect("Task two");
    let two_id = two["id"].as_str().expect("id");
    let entries = http
        .get(&format!("/api/v1/work-items/{two_id}/time-entries"))
        .await;
    let entries = entries.ok()["time_entries"]
        .as_array()
        .expect("entries")
        .clone();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["is_running"], true, "{entries:?}");
    assert_eq!(entries[0]["description"], "Running timer");
    let comments = http
        .get(&format!("/api/v1/work-items/{two_id}/comments"))
        .await;
    let comments = comments.ok()["comments"]
        .as_array()
        .expect("comments")
        .clone();
    assert_eq!(comments.len(), 1, "the deleted comment stays deleted");
    assert!(
        comments[0]["content"]
            .as_str()
            .is_some_and(|c| c.len() > 5_000),
        "a comment longer than pm's own limit came over whole"
    );

    // New items continue the reference's numbering, and their events start the new history.
    let created = http
        .post(
            "/api/v1/work-items",
            json!({"project_id": rone_id, "item_type": "task", "title": "After the move"}),
        )
        .await;
    assert!(created.status < 300, "{created:?}");
    assert_eq!(created.body["work_item"]["display_key"], "RONE-6");
    let seq = scalar(
        &db,
        &format!("SELECT COALESCE(MAX(seq), 0) FROM pm_events WHERE stream = '{rone_id}'"),
    )
    .await;
    assert_eq!(seq, 1, "the project's stream starts at 1");

    // The next start finds pm's schema: no second conversion, the backup as it was.
    let home = server.stop().await;
    let server = TestServer::start_in(home, configure).await;
    assert_eq!(server.epoch(), epoch, "the same history");
    assert!(
        std::fs::read(&backup).expect("backup") == backup_bytes,
        "the backup is as it was"
    );
    let projects = server.http(None).get("/api/v1/projects").await;
    assert_eq!(projects.ok()["projects"].as_array().map(Vec::len), Some(2));
    server.stop().await;
}

fn migrate(data_dir: &Path, from: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pm-server"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(["migrate", "--from"])
        .arg(from)
        .env("PM_LOG", "error")
        .env_remove("PM_DATABASE_PATH")
        .output()
        .expect("run pm-server migrate")
}

/// `pm-server migrate --from` converts a reference database elsewhere into the data directory's
/// database: into an empty directory, or over a pm database with no board yet (which then
/// starts a new history), never over a board. And an in-place start refuses to overwrite a
/// backup that is not a copy of the file it would convert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_from_fills_an_empty_data_dir_and_never_overwrites() {
    sqlite_only!();
    let Some(bin) = reference_bin() else { return };
    let home = tempfile::tempdir().expect("temporary directory");
    let source = build_reference_db(&bin, home.path());
    // Rows the reference has no API for, as a user would add them by hand: a document of their
    // own for assistants, a swim lane, a remembered request.
    let mut conn = open(&source).await;
    sqlx::raw_sql(
        "INSERT INTO pm_llm_context (id, context_type, category, title, content, priority, \
         created_at, updated_at) VALUES ('22222222-0000-4000-8000-000000000001', 'instruction', \
         'team', 'Our conventions', 'Tasks name a component first.', 50, 1, 1); \
         INSERT INTO pm_swim_lanes (id, project_id, name, status_value, created_at, updated_at) \
         SELECT '33333333-0000-4000-8000-000000000001', id, 'Backlog', 'backlog', 1, 1 \
         FROM pm_projects WHERE key = 'RONE'; \
         INSERT INTO pm_idempotency_keys (message_id, operation, result_json, created_at) \
         VALUES ('m-1', 'create_work_item', 'AA==', 1);",
    )
    .execute(&mut conn)
    .await
    .expect("add rows by hand");
    conn.close().await.expect("close");
    let before = dump_copy(&source).await;

    // Into a new data directory.
    let target = tempfile::tempdir().expect("temporary directory");
    let out = migrate(target.path(), &source);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("6 work items"), "{stdout}");
    assert!(stdout.contains("running timers: 1"), "{stdout}");
    assert!(stdout.contains("1 LLM context rows"), "{stdout}");
    assert!(
        stdout.contains("1 swim lanes, 1 idempotency keys"),
        "{stdout}"
    );
    assert_eq!(
        text(
            &target.path().join("data.db"),
            "SELECT title FROM pm_llm_context WHERE id = '22222222-0000-4000-8000-000000000001'"
        )
        .await,
        "Our conventions"
    );
    assert_eq!(dump(&target.path().join("data.db")).await, before);
    assert_eq!(
        scalar(&source, "SELECT COUNT(*) FROM _sqlx_migrations").await,
        18,
        "the source stays the reference's database"
    );
    assert_eq!(dump(&source).await, before, "the source keeps its rows");

    // Not over a board.
    let again = migrate(target.path(), &source);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("already holds a pm board"), "{stderr}");
    let server = TestServer::start_in(target, |_| {}).await;
    let projects = server.http(None).get("/api/v1/projects").await;
    assert_eq!(projects.ok()["projects"].as_array().map(Vec::len), Some(2));
    server.stop().await;

    // Over a pm database that has no board yet: its old epoch goes with it.
    let fresh = TestServer::start().await;
    let old_epoch = fresh.epoch();
    let fresh_dir = fresh.stop().await;
    let out = migrate(fresh_dir.path(), &source);
    assert!(out.status.success(), "{out:?}");
    let server = TestServer::start_in(fresh_dir, |_| {}).await;
    assert_ne!(server.epoch(), old_epoch, "a new history");
    assert_eq!(dump(&server.data_dir().join("data.db")).await, before);
    server.stop().await;

    // In place while the reference server still runs on the file: refused, and the reference
    // keeps working.
    let mut running = start_reference(&bin, home.path());
    let refused = pm_server::testing::TestServer::start(home.path().join(".pm"), |_| {})
        .await
        .err()
        .map(|e| format!("{e:#}"))
        .expect("refused while the reference runs");
    assert!(refused.contains("in use by another process"), "{refused}");
    assert!(!backup_path(&source).exists(), "no backup made");
    let listed = Command::new(bin.join("bab-pm"))
        .args(["--server", &format!("http://127.0.0.1:{}", running.port)])
        .args(["project", "list"])
        .env("HOME", home.path())
        .output()
        .expect("run bab-pm");
    assert!(listed.status.success(), "{listed:?}");
    assert!(String::from_utf8_lossy(&listed.stdout).contains("RONE"));
    running.stop();
    assert_eq!(dump_copy(&source).await, before);

    // In place, with a backup in the way that is not a copy of the database: refused, and
    // neither file changes.
    let blocked = tempfile::tempdir().expect("temporary directory");
    let db = blocked.path().join("data.db");
    std::fs::copy(&source, &db).expect("copy the reference database");
    let backup = blocked.path().join("data.db.reference-backup");
    std::fs::write(&backup, b"an older backup").expect("write a backup");
    let db_bytes = std::fs::read(&db).expect("read");
    let refused = pm_server::testing::TestServer::start(blocked.path().to_path_buf(), |_| {})
        .await
        .err()
        .map(|e| format!("{e:#}"))
        .expect("refused");
    assert!(refused.contains("never overwrites a backup"), "{refused}");
    assert!(refused.contains(&backup.display().to_string()), "{refused}");
    assert!(
        std::fs::read(&db).expect("read") == db_bytes,
        "the database is untouched"
    );
    assert_eq!(std::fs::read(&backup).expect("read"), b"an older backup");

    // A backup with the same bytes as the database is what a conversion interrupted before its
    // rename leaves: kept as it is, and the conversion goes ahead.
    std::fs::copy(&db, &backup).expect("an identical backup");
    let server = TestServer::start_in(blocked, |_| {}).await;
    assert_eq!(dump(&server.data_dir().join("data.db")).await, before);
    assert!(
        std::fs::read(&backup).expect("read") == db_bytes,
        "the backup is the reference's database"
    );
    server.stop().await;
}

fn backup_path(db: &Path) -> PathBuf {
    with_suffix(db, ".reference-backup")
}

/// The reference's server, running on `home/.pm/data.db` until [`Reference::stop`].
struct Reference {
    child: std::process::Child,
    port: u16,
}

impl Reference {
    /// Killed, as scripts/reference-db.sh stops it (the reference handles no SIGTERM either).
    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn start_reference(bin: &Path, home: &Path) -> Reference {
    let port_file = home.join(".pm").join("server.json");
    let _ = std::fs::remove_file(&port_file);
    let child = Command::new(bin.join("bab-pm-server"))
        .current_dir(home)
        .env("HOME", home)
        .env("PM_SERVER_HOST", "127.0.0.1")
        .env("PM_SERVER_PORT", "0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start bab-pm-server");
    let mut reference = Reference { child, port: 0 };
    let deadline = std::time::Instant::now() + crate::common::TIMEOUT;
    while std::time::Instant::now() < deadline {
        let info: Option<serde_json::Value> = std::fs::read(&port_file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        if let Some(port) = info.and_then(|i| i["port"].as_u64()) {
            reference.port = u16::try_from(port).expect("a port");
            return reference;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("bab-pm-server wrote no port file");
}

/// Makes a SQLite file from `statements` (rollback journal, as most tools leave one).
async fn sqlite_file(path: &Path, statements: &str) {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .expect("create");
    sqlx::raw_sql(statements)
        .execute(&mut conn)
        .await
        .expect("statements");
    conn.close().await.expect("close");
}

const MIGRATIONS_TABLE: &str = "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, \
    description TEXT NOT NULL, installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, \
    success BOOLEAN NOT NULL, checksum BLOB NOT NULL, execution_time BIGINT NOT NULL);";

/// A file that is neither pm's nor the reference's v0.1.4 is refused with a message that names
/// it and says what to do, and is left exactly as it was: no backup, no half-built database.
#[tokio::test]
async fn an_unrecognised_database_is_refused_untouched() {
    sqlite_only!();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "other tables",
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); \
             INSERT INTO notes (body) VALUES ('keep me');"
                .to_string(),
            "does not recognise",
        ),
        (
            "an older reference",
            format!(
                "{MIGRATIONS_TABLE} CREATE TABLE users (id TEXT PRIMARY KEY); \
                 INSERT INTO _sqlx_migrations (version, description, success, checksum, \
                 execution_time) VALUES (20260110000000, 'create users', 1, x'00', 1), \
                 (20260110000001, 'create work items', 1, x'00', 1);"
            ),
            "before v0.1.4",
        ),
        (
            "unknown migrations",
            format!(
                "{MIGRATIONS_TABLE} CREATE TABLE things (id TEXT PRIMARY KEY); \
                 INSERT INTO _sqlx_migrations (version, description, success, checksum, \
                 execution_time) VALUES (20200101000000, 'things', 1, x'00', 1);"
            ),
            "does not recognise",
        ),
        (
            "a newer pm",
            format!(
                "{MIGRATIONS_TABLE} INSERT INTO _sqlx_migrations (version, description, success, \
                 checksum, execution_time) VALUES (20261122000001, 'init', 1, x'00', 1), \
                 (29991231000000, 'from the future', 1, x'00', 1);"
            ),
            "newer pm-server",
        ),
    ];
    for (case, statements, says) in cases {
        let dir = tempfile::tempdir().expect("temporary directory");
        let db = dir.path().join("data.db");
        sqlite_file(&db, &statements).await;
        refused_untouched(dir.path(), &db, case, says).await;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = dir.path().join("data.db");
    std::fs::write(&db, "name,title\nRONE,Reference One\n").expect("write");
    refused_untouched(dir.path(), &db, "not SQLite", "not a SQLite database").await;
}

async fn refused_untouched(dir: &Path, db: &Path, case: &str, says: &str) {
    let bytes = std::fs::read(db).expect("read");
    let error = pm_server::testing::TestServer::start(dir.to_path_buf(), |_| {})
        .await
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_else(|| panic!("{case}: pm-server started"));
    assert!(error.contains(says), "{case}: {error}");
    assert!(
        error.contains(&db.display().to_string()),
        "{case}: names the file: {error}"
    );
    assert!(
        !error.contains("applying migrations"),
        "{case}: not a migration error: {error}"
    );
    assert!(
        std::fs::read(db).expect("read") == bytes,
        "{case}: the file is untouched"
    );
    let mut left: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        // The data dir's lock (one server per data dir) is taken before the database is read.
        .filter(|name| name != "server.lock")
        .collect();
    left.sort();
    assert_eq!(left, ["data.db"], "{case}: nothing else written");
}
