//! Backups stay restorable: every timestamp a client sends obeys the time range rule (1970 to
//! the end of year 9999, `domain::timestamp`) over REST and WebSocket, time arithmetic never
//! overflows, an export of edge-case data imports into a fresh server and round-trips, rows an
//! older server stored out of range still export and import (repaired), and an import never makes
//! anyone but the importer the admin of the projects it creates.

use crate::common::fixture::{dep_req, start_req};
use crate::common::*;
use pm_server::config::AuthMode;
use pm_shared::domain::limits;
use pm_shared::proto::{self, DependencyType, Payload, WorkItemType};
use serde_json::{json, Value};
use sqlx::Connection;

/// `text` repeated to exactly `chars` characters.
fn exactly(text: &str, chars: usize) -> String {
    text.chars().cycle().take(chars).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn times_outside_the_range_are_refused_naming_the_field_over_rest_and_ws() {
    let server = TestServer::start().await;
    let mut ws = server.connect(USER_A).await;
    let project = ws.create_project("Times", "TM").await;
    let item = ws
        .create_item(&project.id, WorkItemType::Task, "Clocked", None)
        .await;
    let rest = server.http(Some(USER_A));
    let now = pm_shared::now_secs();

    // The attack: a start at i64::MIN made `ended_at - started_at` wrap into a negative duration
    // that passed the 24-hour check, and the export could no longer be imported.
    for (started_at, ended_at, field) in [
        (i64::MIN, now, "started_at"),
        (-1, now, "started_at"),
        (now - 60, i64::MAX, "ended_at"),
        (i64::MIN, i64::MAX, "started_at"),
    ] {
        let reply = rest
            .post(
                "/api/v1/time-entries",
                json!({"work_item_id": item.id, "started_at": started_at, "ended_at": ended_at}),
            )
            .await;
        let err = reply.expect_error(400, "VALIDATION_ERROR");
        assert_eq!(err["field"], field, "{started_at}..{ended_at}: {err}");
        let err = expect_error(
            &ws.request(Payload::CreateTimeEntryRequest(
                proto::CreateTimeEntryRequest {
                    work_item_id: item.id.clone(),
                    started_at,
                    ended_at,
                    description: None,
                },
            ))
            .await,
            "VALIDATION_ERROR",
        );
        assert_eq!(err.field.as_deref(), Some(field), "{err:?}");
    }

    // A running timer's start may be edited, but not out of the range (stopping it then
    // overflowed).
    let started = expect_payload!(ws.request(start_req(&item.id, None)).await, TimerStarted);
    let timer = started.time_entry.expect("entry");
    let reply = rest
        .put(
            &format!("/api/v1/time-entries/{}", timer.id),
            json!({"started_at": i64::MIN}),
        )
        .await;
    assert_eq!(
        reply.expect_error(400, "VALIDATION_ERROR")["field"],
        "started_at"
    );
    let err = expect_error(
        &ws.request(Payload::UpdateTimeEntryRequest(
            proto::UpdateTimeEntryRequest {
                time_entry_id: timer.id.clone(),
                started_at: Some(limits::TIMESTAMP_MAX + 1),
                ..Default::default()
            },
        ))
        .await,
        "VALIDATION_ERROR",
    );
    assert_eq!(err.field.as_deref(), Some("started_at"));
    let err = expect_error(
        &ws.request(Payload::UpdateTimeEntryRequest(
            proto::UpdateTimeEntryRequest {
                time_entry_id: timer.id.clone(),
                ended_at: Some(i64::MIN),
                ..Default::default()
            },
        ))
        .await,
        "VALIDATION_ERROR",
    );
    assert_eq!(err.field.as_deref(), Some("ended_at"));

    // Sprint dates, over both transports.
    let reply = rest
        .post(
            "/api/v1/sprints",
            json!({"project_id": project.id, "name": "S", "start_date": i64::MIN, "end_date": now}),
        )
        .await;
    assert_eq!(
        reply.expect_error(400, "VALIDATION_ERROR")["field"],
        "start_date"
    );
    let sprint = ws.create_sprint(&project.id, "Sprint").await;
    let err = expect_error(
        &ws.request(Payload::UpdateSprintRequest(proto::UpdateSprintRequest {
            end_date: Some(i64::MAX),
            ..sprint_upd(&sprint.id, sprint.version)
        }))
        .await,
        "VALIDATION_ERROR",
    );
    assert_eq!(err.field.as_deref(), Some("end_date"));

    // Nothing of it was stored, the timer still stops, and the backup restores.
    let stopped = rest
        .put(
            &format!("/api/v1/time-entries/{}", timer.id),
            json!({"stop": true}),
        )
        .await;
    assert!(stopped.ok()["time_entry"]["duration_seconds"].as_i64() >= Some(0));
    let doc = sync_export(&server, "").await;
    assert_eq!(doc["time_entries"].as_array().map(Vec::len), Some(1));
    let fresh = TestServer::start().await;
    // Strict: every row of it, or the test fails.
    sync_import_strict(&fresh, USER_C, &doc).await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_of_edge_case_data_imports_into_a_fresh_server_and_round_trips() {
    let a = TestServer::start().await;
    let mut alice = a.connect(USER_A).await;
    let mut bob = a.connect(USER_B).await;
    let now = pm_shared::now_secs();

    // Longest allowed texts, in several scripts, with controls and bidi marks inside.
    let title = exactly(
        "Ünïcödé 🚀 עברית \u{202E}gnp.exe\u{202C} \x1b[31mred\x1b[0m ",
        200,
    );
    // PostgreSQL refuses NUL in any text (a VALIDATION error, see `error`); SQLite keeps it.
    let nul = if pm_server::testing::on_postgres() {
        ""
    } else {
        "\0 "
    };
    let description = exactly(
        &format!("ligne 1\nzeile\t2 \u{0301}e\u{200F} 漢字 {nul}"),
        10_000,
    );
    let project = expect_payload!(
        alice
            .request(Payload::CreateProjectRequest(proto::CreateProjectRequest {
                title: title.clone(),
                description: Some(description.clone()),
                key: "K".repeat(limits::KEY_MAX),
            }))
            .await,
        ProjectCreated
    )
    .project
    .expect("project");
    let pid = project.id.clone();
    let epic = alice
        .create_item(&pid, WorkItemType::Epic, &title, None)
        .await;
    let story = alice
        .create_item(&pid, WorkItemType::Story, "Story ☃", Some(&epic.id))
        .await;
    let task = alice
        .create_item(&pid, WorkItemType::Task, "x", Some(&story.id))
        .await;
    let gone = alice
        .create_item(&pid, WorkItemType::Task, "Deleted", None)
        .await;

    // A sprint at the edges of the allowed window, with the longest name and goal.
    let (start, end) = (
        now - limits::SPRINT_PAST_SECS + 3600,
        now + limits::SPRINT_FUTURE_SECS - 3600,
    );
    let sprint = expect_payload!(
        alice
            .request(Payload::CreateSprintRequest(proto::CreateSprintRequest {
                project_id: pid.clone(),
                name: exactly("Sprint ✓ ", limits::SPRINT_NAME_MAX),
                goal: Some(exactly("Goal 🎯\n", limits::SPRINT_GOAL_MAX)),
                start_date: start,
                end_date: end,
            }))
            .await,
        SprintCreated
    )
    .sprint
    .expect("sprint");
    alice
        .update_item(proto::UpdateWorkItemRequest {
            sprint_id: Some(sprint.id.clone()),
            assignee_id: Some(USER_B.into()),
            story_points: Some(limits::STORY_POINTS_MAX),
            status: Some("done".into()),
            priority: Some("critical".into()),
            description: Some(description.clone()),
            ..upd(&task.id, task.version)
        })
        .await;

    // Comments: the longest, one edited, one deleted (not exported).
    alice
        .create_comment(
            &task.id,
            &exactly("Kommentar 💬 \u{2066}x\u{2069} ", limits::COMMENT_MAX),
        )
        .await;
    let edited = bob.create_comment(&story.id, "first").await;
    expect_payload!(
        bob.request(Payload::UpdateCommentRequest(proto::UpdateCommentRequest {
            comment_id: edited.id.clone(),
            content: "second ✎".into(),
        }))
        .await,
        CommentUpdated
    );
    let scrapped = alice.create_comment(&epic.id, "scrapped").await;
    expect_payload!(
        alice
            .request(Payload::DeleteCommentRequest(proto::DeleteCommentRequest {
                comment_id: scrapped.id,
            }))
            .await,
        CommentDeleted
    );

    // Both kinds of links, and one to an item that is then deleted (neither is exported).
    for (blocking, blocked, kind) in [
        (&story.id, &task.id, DependencyType::Blocks),
        (&epic.id, &task.id, DependencyType::RelatesTo),
        (&gone.id, &task.id, DependencyType::Blocks),
    ] {
        expect_payload!(
            alice.request(dep_req(blocking, blocked, kind)).await,
            DependencyCreated
        );
    }
    expect_payload!(
        alice
            .request(Payload::DeleteWorkItemRequest(
                proto::DeleteWorkItemRequest {
                    work_item_id: gone.id.clone(),
                }
            ))
            .await,
        WorkItemDeleted
    );

    // Time entries: the longest allowed (24 h, ending at the latest allowed moment, with the
    // longest description), a zero-length one (a timer whose start was moved to the latest
    // allowed moment, then stopped), a deleted one, and bob's running timer.
    let longest = expect_payload!(
        alice
            .request(Payload::CreateTimeEntryRequest(
                proto::CreateTimeEntryRequest {
                    work_item_id: task.id.clone(),
                    started_at: now + 50 - limits::TIME_ENTRY_MAX_SECS,
                    ended_at: now + 50,
                    description: Some(exactly("Zeit ⏱ ", limits::TIME_ENTRY_DESCRIPTION_MAX)),
                }
            ))
            .await,
        TimeEntryCreated
    );
    assert_eq!(
        longest.time_entry.expect("entry").duration_seconds,
        Some(86_400)
    );
    let timer = expect_payload!(
        alice.request(start_req(&story.id, None)).await,
        TimerStarted
    )
    .time_entry
    .expect("timer");
    expect_payload!(
        alice
            .request(Payload::UpdateTimeEntryRequest(
                proto::UpdateTimeEntryRequest {
                    time_entry_id: timer.id.clone(),
                    started_at: Some(pm_shared::now_secs() + 50),
                    ..Default::default()
                }
            ))
            .await,
        TimeEntryUpdated
    );
    let zero = expect_payload!(
        alice
            .request(Payload::StopTimerRequest(proto::StopTimerRequest {
                time_entry_id: timer.id.clone(),
            }))
            .await,
        TimerStopped
    )
    .time_entry
    .expect("entry");
    assert_eq!(zero.duration_seconds, Some(0));
    let dropped = expect_payload!(
        alice
            .request(Payload::CreateTimeEntryRequest(
                proto::CreateTimeEntryRequest {
                    work_item_id: task.id.clone(),
                    started_at: now - 100,
                    ended_at: now - 50,
                    description: None,
                }
            ))
            .await,
        TimeEntryCreated
    )
    .time_entry
    .expect("entry");
    expect_payload!(
        alice
            .request(Payload::DeleteTimeEntryRequest(
                proto::DeleteTimeEntryRequest {
                    time_entry_id: dropped.id,
                }
            ))
            .await,
        TimeEntryDeleted
    );
    expect_payload!(
        bob.request(start_req(&epic.id, Some("läuft"))).await,
        TimerStarted
    );

    let doc = sync_export(&a, "").await;
    assert_eq!(doc["projects"][0]["title"], title.as_str());
    assert_eq!(doc["work_items"].as_array().map(Vec::len), Some(3));
    assert_eq!(doc["comments"].as_array().map(Vec::len), Some(2));
    assert_eq!(doc["dependencies"].as_array().map(Vec::len), Some(2));
    assert_eq!(doc["time_entries"].as_array().map(Vec::len), Some(3));
    assert!(doc["time_entries"]
        .as_array()
        .expect("entries")
        .iter()
        .any(|t| t["is_running"] == true));

    // A fresh server takes all of it, and gives back exactly the same document.
    let b = TestServer::start().await;
    let result = sync_import(&b, USER_C, &doc).await.ok().clone();
    assert_eq!(import_counts(&result, "projects"), (1, 0, 0));
    assert_eq!(import_counts(&result, "sprints"), (1, 0, 0));
    assert_eq!(import_counts(&result, "work_items"), (3, 0, 0));
    assert_eq!(import_counts(&result, "comments"), (2, 0, 0));
    assert_eq!(import_counts(&result, "dependencies"), (2, 0, 0));
    assert_eq!(import_counts(&result, "time_entries"), (3, 0, 0));
    let again = sync_export(&b, "").await;
    assert_eq!(without_time(again.clone()), without_time(doc.clone()));
    // And that export imports again (into the same server: nothing changes).
    let result = sync_import(&b, USER_C, &again).await.ok().clone();
    assert_eq!(import_counts(&result, "time_entries"), (0, 0, 3));
    assert_eq!(import_counts(&result, "work_items"), (0, 0, 3));
}

/// Rewrites rows of a stopped server's database the way an older server (without the time range
/// rule) could have left them.
async fn tamper(dir: &tempfile::TempDir, statements: &[&str]) {
    let path = dir.path().join("data.db");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("open the database");
    for sql in statements {
        let done = sqlx::query(sql).execute(&mut conn).await.expect(sql);
        assert!(done.rows_affected() > 0, "{sql}");
    }
    conn.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_an_older_server_stored_out_of_range_still_export_and_import_repaired() {
    sqlite_only!();
    let server = TestServer::start().await;
    let mut alice = server.connect(USER_A).await;
    let project = alice.create_project("Old", "OLD").await;
    let item = alice
        .create_item(&project.id, WorkItemType::Task, "Legacy", None)
        .await;
    let sprint = alice.create_sprint(&project.id, "Ancient").await;
    let now = pm_shared::now_secs();
    let finished = expect_payload!(
        alice
            .request(Payload::CreateTimeEntryRequest(
                proto::CreateTimeEntryRequest {
                    work_item_id: item.id.clone(),
                    started_at: now - 20,
                    ended_at: now - 10,
                    description: None,
                }
            ))
            .await,
        TimeEntryCreated
    )
    .time_entry
    .expect("entry");
    let running = expect_payload!(alice.request(start_req(&item.id, None)).await, TimerStarted)
        .time_entry
        .expect("entry");
    alice.close().await;
    let dir = server.stop().await;

    // What the i64::MIN attack left behind on an older server: the wrapped duration included.
    let wrapped = (now - 10).wrapping_sub(i64::MIN);
    tamper(
        &dir,
        &[
            &format!(
                "UPDATE pm_time_entries SET started_at = {}, duration_seconds = {wrapped} WHERE id = '{}'",
                i64::MIN,
                finished.id
            ),
            &format!(
                "UPDATE pm_time_entries SET started_at = {} WHERE id = '{}'",
                i64::MIN,
                running.id
            ),
            &format!(
                "UPDATE pm_sprints SET start_date = {}, end_date = -5, created_at = -1 WHERE id = '{}'",
                i64::MIN,
                sprint.id
            ),
            &format!(
                "UPDATE pm_work_items SET created_at = {}, updated_at = {} WHERE id = '{}'",
                i64::MIN,
                i64::MAX,
                item.id
            ),
        ],
    )
    .await;
    let server = TestServer::start_in(dir, |_| {}).await;

    // It still exports, as stored.
    let doc = sync_export(&server, "").await;
    let entry = |doc: &Value, id: &str| {
        doc["time_entries"]
            .as_array()
            .expect("entries")
            .iter()
            .find(|t| t["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no entry {id} in {doc}"))
    };
    assert_eq!(n(&entry(&doc, &finished.id), "started_at"), i64::MIN);
    assert_eq!(n(&doc["sprints"][0], "start_date"), i64::MIN);
    assert_eq!(n(&doc["work_items"][0], "updated_at"), i64::MAX);

    // A fresh server imports it, repaired: times clamped into 1970..=9999, durations
    // recomputed from them.
    let fresh = TestServer::start().await;
    let result = sync_import(&fresh, USER_C, &doc).await.ok().clone();
    assert_eq!(import_counts(&result, "time_entries"), (2, 0, 0));
    assert_eq!(import_counts(&result, "sprints"), (1, 0, 0));
    let restored = sync_export(&fresh, "").await;
    let e = entry(&restored, &finished.id);
    assert_eq!(
        (
            n(&e, "started_at"),
            n(&e, "ended_at"),
            n(&e, "duration_seconds")
        ),
        (0, now - 10, now - 10)
    );
    assert_eq!(n(&entry(&restored, &running.id), "started_at"), 0);
    let s = &restored["sprints"][0];
    assert_eq!(
        (n(s, "start_date"), n(s, "end_date"), n(s, "created_at")),
        (0, 1, 0)
    );
    let w = &restored["work_items"][0];
    assert_eq!(
        (n(w, "created_at"), n(w, "updated_at")),
        (0, limits::TIMESTAMP_MAX)
    );
    // The repaired document imports again unchanged.
    let result = sync_import(&fresh, USER_C, &restored).await.ok().clone();
    assert_eq!(import_counts(&result, "time_entries"), (0, 0, 2));
    assert_eq!(
        without_time(sync_export(&fresh, "").await),
        without_time(restored)
    );

    // On the old database the timer started at i64::MIN still stops, without overflow.
    let stopped = server
        .http(Some(USER_A))
        .put(
            &format!("/api/v1/time-entries/{}", running.id),
            json!({"stop": true}),
        )
        .await;
    assert_eq!(
        stopped.ok()["time_entry"]["duration_seconds"],
        limits::DURATION_MAX
    );
}

// ---- who an import makes admin ------------------------------------------------------------

const SECRET: &str = "backups-test-secret-of-at-least-32-chars";
const ALICE: &str = "00000000-0000-4000-8000-00000000a11c";
const BOB: &str = "00000000-0000-4000-8000-000000000b0b";

fn bearer(user: &str) -> String {
    let token = pm_server::auth::issue(SECRET, user, vec![], 3600).expect("token");
    format!("Bearer {token}")
}

async fn call(
    server: &TestServer,
    user: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> HttpReply {
    let http = server.http(None);
    let mut request = http
        .request(method, path)
        .header("Authorization", bearer(user));
    if let Some(body) = body {
        request = request.json(&body);
    }
    http.run(request).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_makes_the_importer_admin_not_whoever_the_file_names() {
    let server = TestServer::start_with(|c| {
        c.auth = AuthMode::Token;
        c.jwt_secret = Some(SECRET.into());
    })
    .await;
    let pid = "0f0f0f0f-0000-4000-8000-000000000001";
    let doc = json!({
        "schema_version": 1,
        "projects": [{
            "id": pid, "key": "TRAP", "title": "Not yours", "status": "active", "version": 1,
            "created_at": 1_700_000_000, "updated_at": 1_700_000_000,
            "created_by": BOB, "updated_by": BOB,
        }],
    });
    let get = reqwest::Method::GET;
    let result = call(
        &server,
        ALICE,
        reqwest::Method::POST,
        "/api/v1/sync/import",
        Some(doc),
    )
    .await;
    assert_eq!(import_counts(result.ok(), "projects"), (1, 0, 0));

    // Bob, whom the file names as the creator, got nothing: not a member, let alone admin.
    let members = call(
        &server,
        ALICE,
        get.clone(),
        &format!("/api/v1/projects/{pid}/members"),
        None,
    )
    .await;
    let members = members.ok().to_string();
    assert!(
        !members.contains(BOB),
        "bob must not be a member: {members}"
    );
    assert!(members.contains(ALICE), "alice administers it: {members}");
    let bob_reads = call(
        &server,
        BOB,
        get.clone(),
        &format!("/api/v1/projects/{pid}"),
        None,
    )
    .await;
    // A non-member is answered as if the project did not exist.
    assert_eq!(bob_reads.status, 404, "{:?}", bob_reads.body);
    let bob_adds = call(
        &server,
        BOB,
        reqwest::Method::POST,
        &format!("/api/v1/projects/{pid}/members"),
        Some(json!({"user_id": BOB, "role": "admin"})),
    )
    .await;
    assert_eq!(bob_adds.status, 404, "{:?}", bob_adds.body);
    let listed = call(&server, BOB, get.clone(), "/api/v1/projects", None).await;
    assert!(!listed.ok().to_string().contains(pid));

    // Alice, the importer, is its admin: she manages its members.
    let added = call(
        &server,
        ALICE,
        reqwest::Method::POST,
        &format!("/api/v1/projects/{pid}/members"),
        Some(json!({"user_id": BOB, "role": "viewer"})),
    )
    .await;
    added.ok();
    let bob_reads = call(&server, BOB, get, &format!("/api/v1/projects/{pid}"), None).await;
    bob_reads.ok();
    // The file's authorship is kept as information.
    assert_eq!(bob_reads.body["project"]["created_by"], BOB);
}
