//! Sync export/import over real sockets: an export imported into an empty server reproduces the
//! project exactly; the import is one transaction, idempotent, last-writer-wins, precise about
//! bad input, logged, and broadcast so that an open board (a client store fed only by events)
//! ends up equal to a fresh snapshot.

use crate::common::*;
use pm_shared::proto::{self, DependencyType, Payload, WebSocketMessage, WorkItemType};
use pm_shared::store::{ClientStore, Outcome};
use serde_json::{json, Value};

/// A project with everything the format carries: a hierarchy with a gap in the numbers, a
/// sprint, assignees, points, edited and deleted comments, both kinds of links, a finished and a
/// running time entry, and versions above 1. Returns the project id.
async fn rich_project(server: &TestServer) -> String {
    let mut a = server.connect(USER_A).await;
    let mut b = server.connect(USER_B).await;
    let project = a.create_project("Platform", "PM").await;
    let pid = project.id.clone();
    let epic = a
        .create_item(&pid, WorkItemType::Epic, "Checkout", None)
        .await;
    let story = a
        .create_item(&pid, WorkItemType::Story, "Pay by card", Some(&epic.id))
        .await;
    let task = a
        .create_item(&pid, WorkItemType::Task, "Vault API", Some(&story.id))
        .await;
    let scrapped = a
        .create_item(&pid, WorkItemType::Task, "Scrapped", None)
        .await;
    let notes = a
        .create_item(&pid, WorkItemType::Task, "Release notes &amp; FAQ", None)
        .await;
    let sprint = a.create_sprint(&pid, "Sprint 1").await;
    a.update_item(proto::UpdateWorkItemRequest {
        sprint_id: Some(sprint.id.clone()),
        assignee_id: Some(USER_B.into()),
        story_points: Some(3),
        status: Some("in_progress".into()),
        priority: Some("high".into()),
        description: Some("Tokenise cards.\nRotate keys weekly.".into()),
        ..upd(&task.id, 1)
    })
    .await;
    expect_payload!(
        a.request(Payload::DeleteWorkItemRequest(
            proto::DeleteWorkItemRequest {
                work_item_id: scrapped.id.clone(),
            }
        ))
        .await,
        WorkItemDeleted
    );
    let c1 = a.create_comment(&task.id, "First").await;
    expect_payload!(
        a.request(Payload::UpdateCommentRequest(proto::UpdateCommentRequest {
            comment_id: c1.id.clone(),
            content: "First, edited".into(),
        }))
        .await,
        CommentUpdated
    );
    b.create_comment(&story.id, "From bob").await;
    let c3 = a.create_comment(&story.id, "Oops").await;
    expect_payload!(
        a.request(Payload::DeleteCommentRequest(proto::DeleteCommentRequest {
            comment_id: c3.id,
        }))
        .await,
        CommentDeleted
    );
    for (blocking, blocked, kind) in [
        (&notes.id, &task.id, DependencyType::Blocks),
        (&epic.id, &notes.id, DependencyType::RelatesTo),
    ] {
        expect_payload!(
            a.request(crate::common::fixture::dep_req(blocking, blocked, kind))
                .await,
            DependencyCreated
        );
    }
    let now = pm_shared::now_secs();
    expect_payload!(
        a.request(Payload::CreateTimeEntryRequest(
            proto::CreateTimeEntryRequest {
                work_item_id: task.id.clone(),
                started_at: now - 7200,
                ended_at: now - 3600,
                description: Some("Spike".into()),
            }
        ))
        .await,
        TimeEntryCreated
    );
    expect_payload!(
        b.request(crate::common::fixture::start_req(&notes.id, None))
            .await,
        TimerStarted
    );
    expect_payload!(
        a.request(Payload::UpdateProjectRequest(proto::UpdateProjectRequest {
            project_id: pid.clone(),
            expected_version: 1,
            description: Some("Payments".into()),
            ..Default::default()
        }))
        .await,
        ProjectUpdated
    );
    pid
}

/// Positions of `keys` in a JSON text: they must appear in this order.
fn assert_key_order(text: &str, keys: &[&str]) {
    let at: Vec<usize> = keys
        .iter()
        .map(|k| {
            text.find(&format!("\"{k}\""))
                .unwrap_or_else(|| panic!("no {k} in {text}"))
        })
        .collect();
    assert!(
        at.windows(2).all(|w| w[0] < w[1]),
        "keys out of order {keys:?}: {at:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_import_into_an_empty_server_reproduces_the_project() {
    let a = TestServer::start().await;
    let pid = rich_project(&a).await;
    let raw = reqwest::get(format!("http://{}/api/v1/sync/export", a.addr))
        .await
        .expect("export")
        .text()
        .await
        .expect("body");
    // The reference's key order, at the top and inside each DTO.
    assert_key_order(
        &raw,
        &[
            "schema_version",
            "exported_at",
            "exported_by",
            "projects",
            "work_items",
            "sprints",
            "comments",
            "swim_lanes",
            "dependencies",
            "time_entries",
        ],
    );
    assert_key_order(
        &raw,
        &[
            "\"display_key\":\"PM-1\"",
            "\"item_type\":\"epic\"",
            "\"title\":\"Checkout\"",
        ]
        .map(|k| k.trim_matches('"')),
    );
    let doc: Value = serde_json::from_str(&raw).expect("export JSON");
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["exported_by"], "pm-server");
    assert!(s(&doc, "exported_at").ends_with("+00:00"));
    assert_eq!(doc["projects"][0]["next_work_item_number"], 6);
    let numbers: Vec<i64> = doc["work_items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|w| n(w, "item_number"))
        .collect();
    assert_eq!(numbers, [1, 2, 3, 5], "the deleted item is not exported");
    assert_eq!(doc["comments"].as_array().map(Vec::len), Some(2));
    assert_eq!(doc["dependencies"].as_array().map(Vec::len), Some(2));
    assert_eq!(doc["time_entries"].as_array().map(Vec::len), Some(2));
    assert_eq!(doc["swim_lanes"], json!([]));

    // An empty server, with a board already watching the project id and the project list.
    let b = TestServer::start().await;
    let mut watcher = b.connect(USER_B).await;
    let reply = watcher
        .subscribe_with(proto::Subscribe {
            project_ids: vec![pid.clone()],
            project_list: true,
            ..Default::default()
        })
        .await;
    assert!(reply.payload.is_none());

    let result = sync_import(&b, USER_C, &doc).await.ok().clone();
    let order: Vec<&str> = result
        .as_object()
        .expect("result")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(order.len(), 7);
    assert_eq!(import_counts(&result, "projects"), (1, 0, 0));
    assert_eq!(import_counts(&result, "sprints"), (1, 0, 0));
    assert_eq!(import_counts(&result, "work_items"), (4, 0, 0));
    assert_eq!(import_counts(&result, "comments"), (2, 0, 0));
    assert_eq!(import_counts(&result, "dependencies"), (2, 0, 0));
    assert_eq!(import_counts(&result, "time_entries"), (2, 0, 0));
    assert_eq!(import_counts(&result, "swim_lanes"), (0, 0, 0));

    // Exactly the same document comes back out: ids, numbers, hierarchy, comments, links,
    // time entries, versions and timestamps.
    let again = sync_export(&b, "").await;
    assert_eq!(without_time(again), without_time(doc.clone()));

    // The board saw all of it: one activity entry and one event per entity, numbered in order,
    // and a client store fed only by those events equals a fresh snapshot.
    let frames = watcher.drain_events().await;
    let events: Vec<&WebSocketMessage> = frames.iter().filter(|m| m.seq > 0).collect();
    let activities = frames
        .iter()
        .filter(|m| matches!(m.payload, Some(Payload::ActivityLogCreated(_))))
        .count();
    assert_eq!((events.len(), activities), (12, 12));
    let mut seqs = SeqTracker::default();
    for e in &events {
        seqs.check(e);
        assert_eq!(e.epoch, b.epoch());
    }
    assert_eq!(seqs.last.get(""), Some(&1));
    assert_eq!(seqs.last.get(&pid), Some(&11));
    let mut live = ClientStore::new();
    live.load_projects(vec![], 0, &b.epoch());
    live.load_project(
        proto::ProjectSnapshot {
            project: Some(proto::Project {
                id: pid.clone(),
                ..Default::default()
            }),
            ..Default::default()
        },
        0,
        &b.epoch(),
    );
    for e in &events {
        assert!(
            matches!(live.apply(e), Outcome::Applied(_)),
            "not applied: {e:?}"
        );
    }
    let snap = watcher
        .request(Payload::GetProjectSnapshotRequest(
            proto::GetProjectSnapshotRequest {
                project_id: pid.clone(),
                ..Default::default()
            },
        ))
        .await;
    let seq = snap.seq;
    let mut fresh = ClientStore::new();
    fresh.load_project(expect_payload!(snap, ProjectSnapshot), seq, &b.epoch());
    assert_eq!(live.work_items, fresh.work_items);
    assert_eq!(live.sprints, fresh.sprints);
    assert_eq!(live.comments, fresh.comments);
    assert_eq!(live.dependencies, fresh.dependencies);
    assert_eq!(live.time_entries, fresh.time_entries);
    assert_eq!(live.projects, fresh.projects);

    // The history names the importer, and the next item gets the next number.
    let mut c = b.connect(USER_C).await;
    let epic_id = s(&doc["work_items"][0], "id");
    let history = expect_payload!(
        c.request(crate::common::fixture::history_req("work_item", &epic_id))
            .await,
        ActivityLogList
    );
    assert_eq!(history.entries.len(), 1);
    assert_eq!(
        (
            history.entries[0].action.as_str(),
            history.entries[0].user_id.as_str()
        ),
        ("created", USER_C)
    );
    let next = c
        .create_item(&pid, WorkItemType::Task, "After import", None)
        .await;
    assert_eq!(next.item_number, 6);
    let key = b.http(None).get("/api/v1/work-items/PM-6").await;
    assert_eq!(key.ok()["work_item"]["title"], "After import");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn importing_twice_changes_nothing_the_second_time() {
    let a = TestServer::start().await;
    let pid = rich_project(&a).await;
    let doc = sync_export(&a, "").await;
    let b = TestServer::start().await;
    sync_import(&b, USER_C, &doc).await.ok();
    let mut watcher = b.connect(USER_B).await;
    watcher.subscribe(&[&pid]).await;
    let before = sync_export(&b, "").await;

    let result = sync_import(&b, USER_C, &doc).await.ok().clone();
    for kind in [
        "projects",
        "sprints",
        "work_items",
        "comments",
        "dependencies",
        "time_entries",
    ] {
        let (created, updated, skipped) = import_counts(&result, kind);
        assert_eq!((created, updated), (0, 0), "{kind}: {result}");
        assert!(skipped > 0, "{kind}: {result}");
    }
    watcher.expect_no_event().await;
    assert_eq!(
        without_time(sync_export(&b, "").await),
        without_time(before)
    );
    // Importing into the server it came from is a no-op too.
    let result = sync_import(&a, USER_C, &doc).await.ok().clone();
    assert_eq!(import_counts(&result, "work_items"), (0, 0, 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newer_rows_win_and_deleted_rows_come_back_only_when_newer() {
    let a = TestServer::start().await;
    let pid = rich_project(&a).await;
    let doc = sync_export(&a, "").await;
    let b = TestServer::start().await;
    sync_import(&b, USER_C, &doc).await.ok();
    let mut watcher = b.connect(USER_B).await;
    watcher.subscribe(&[&pid]).await;
    let mut seqs = SeqTracker::starting_at(&pid, 11);

    // A newer title wins; the version moves past the stored one so every client applies it.
    let mut newer = doc.clone();
    let epic = &mut newer["work_items"][0];
    let epic_id = s(epic, "id");
    epic["title"] = json!("Checkout v2");
    epic["updated_at"] = json!(n(epic, "updated_at") + 10);
    let older_story = &mut newer["work_items"][1];
    older_story["title"] = json!("Stale title");
    older_story["updated_at"] = json!(n(older_story, "updated_at") - 10);
    let result = sync_import(&b, USER_C, &newer).await.ok().clone();
    assert_eq!(import_counts(&result, "work_items"), (0, 1, 3));
    let (entry, event) = recv_mutation(&mut watcher, &mut seqs, &b.epoch()).await;
    assert_eq!(entry.user_id, USER_C);
    let updated = expect_payload!(event, WorkItemUpdated);
    assert_eq!(
        updated.changes,
        vec![field_change("title", Some("Checkout"), Some("Checkout v2"))]
    );
    let w = updated.work_item.expect("work_item");
    assert_eq!(
        (w.id.as_str(), w.title.as_str(), w.version),
        (epic_id.as_str(), "Checkout v2", 2)
    );
    watcher.expect_no_event().await;
    let story = b.http(None).get("/api/v1/work-items/PM-2").await;
    assert_eq!(story.ok()["work_item"]["title"], "Pay by card");

    // A comment deleted here stays deleted against an older import and comes back with a newer.
    let bobs = doc["comments"]
        .as_array()
        .expect("comments")
        .iter()
        .position(|c| c["created_by"] == USER_B)
        .expect("bob's comment");
    let comment_id = s(&doc["comments"][bobs], "id");
    let mut c = b.connect(USER_B).await;
    expect_payload!(
        c.request(Payload::DeleteCommentRequest(proto::DeleteCommentRequest {
            comment_id: comment_id.clone(),
        }))
        .await,
        CommentDeleted
    );
    recv_mutation(&mut watcher, &mut seqs, &b.epoch()).await;
    let result = sync_import(&b, USER_C, &doc).await.ok().clone();
    assert_eq!(import_counts(&result, "comments"), (0, 0, 2));
    watcher.expect_no_event().await;
    let mut revived = doc.clone();
    let later = pm_shared::now_secs() + 5;
    revived["comments"][bobs]["updated_at"] = json!(later);
    let result = sync_import(&b, USER_C, &revived).await.ok().clone();
    assert_eq!(import_counts(&result, "comments"), (0, 1, 1));
    let (entry, event) = recv_mutation(&mut watcher, &mut seqs, &b.epoch()).await;
    assert_eq!(entry.action, "created");
    let back = expect_payload!(event, CommentCreated)
        .comment
        .expect("comment");
    assert_eq!((back.id, back.updated_at), (comment_id, later));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_strict_imports_are_rejected_whole_naming_the_row_and_field() {
    let a = TestServer::start().await;
    let pid = rich_project(&a).await;
    let doc = sync_export(&a, "").await;
    let b = TestServer::start().await;
    let mut watcher = b.connect(USER_B).await;
    watcher
        .subscribe_with(proto::Subscribe {
            project_ids: vec![pid.clone()],
            project_list: true,
            ..Default::default()
        })
        .await;
    let item = |i: usize, field: &str| format!("/work_items/{i}/{field}");
    type Edit = Box<dyn Fn(&mut Value)>;
    let set = |pointer: String, value: Value| -> Edit {
        Box::new(move |d: &mut Value| {
            *d.pointer_mut(&pointer)
                .unwrap_or_else(|| panic!("no {pointer}")) = value.clone();
        })
    };
    let story_id = s(&doc["work_items"][1], "id");
    let task_id = s(&doc["work_items"][2], "id");
    let into_task = doc["dependencies"]
        .as_array()
        .expect("dependencies")
        .iter()
        .position(|d| d["blocked_item_id"] == task_id.as_str())
        .expect("the link into the task");
    let dep_field = format!("dependencies[{into_task}].blocked_item_id");
    let cases: Vec<(Edit, &str, &str)> = vec![
        (
            set("/schema_version".into(), json!(2)),
            "schema_version",
            "Unsupported schema_version 2",
        ),
        (
            set(item(1, "status"), json!("blocked")),
            "work_items[1].status",
            "Invalid status: blocked",
        ),
        (
            set(item(2, "item_type"), json!("bug")),
            "work_items[2].item_type",
            "Invalid item_type: bug",
        ),
        (
            set(item(0, "title"), json!("  ")),
            "work_items[0].title",
            "title must be at least 1 characters",
        ),
        (
            set(item(3, "story_points"), json!(101)),
            "work_items[3].story_points",
            "Story points must be 0-100",
        ),
        (
            set(
                item(1, "parent_id"),
                json!(uuid::Uuid::new_v4().to_string()),
            ),
            "work_items[1].parent_id",
            "not found",
        ),
        (
            set(item(0, "parent_id"), json!(task_id)),
            "work_items[",
            "cycle",
        ),
        (
            set(item(3, "item_number"), json!(2)),
            "work_items[3].item_number",
            "also the number of work_items[1]",
        ),
        (
            set(item(0, "id"), json!(story_id)),
            "work_items[1].id",
            "more than once",
        ),
        (
            set(item(2, "project_id"), json!("PM")),
            "work_items[2].project_id",
            "not a UUID",
        ),
        (
            set(
                "/comments/0/work_item_id".into(),
                json!(uuid::Uuid::new_v4().to_string()),
            ),
            "comments[0].work_item_id",
            "not found",
        ),
        (
            set(
                format!("/dependencies/{into_task}/blocking_item_id"),
                json!(task_id),
            ),
            &dep_field,
            "cannot block itself",
        ),
        (
            set(
                "/dependencies/1/dependency_type".into(),
                json!("depends_on"),
            ),
            "dependencies[1].dependency_type",
            "Invalid dependency_type",
        ),
        (
            set("/time_entries/0/ended_at".into(), json!(1)),
            "time_entries[0].ended_at",
            "before started_at",
        ),
        (
            set("/projects/0/key".into(), json!("P-M")),
            "projects[0].key",
            "letters, numbers",
        ),
        (
            set("/sprints/0/end_date".into(), json!(0)),
            "sprints[0].end_date",
            "before end_date",
        ),
    ];
    for (edit, field, message) in cases {
        let mut bad = doc.clone();
        edit(&mut bad);
        let reply = sync_import_strict(&b, USER_C, &bad).await;
        let err = reply.expect_error(400, "VALIDATION_ERROR");
        assert!(
            err["field"].as_str().is_some_and(|f| f.starts_with(field)),
            "field {field}: {err}"
        );
        assert!(
            err["message"].as_str().is_some_and(|m| m.contains(message)),
            "message {message}: {err}"
        );
    }
    // Not JSON, or JSON of the wrong shape: the error JSON, naming where.
    let reply = b
        .http(None)
        .raw(
            reqwest::Method::POST,
            "/api/v1/sync/import",
            Some("application/json"),
            "{\"schema_version\": 1, \"work_items\": [{\"id\": 5}]}",
        )
        .await;
    let err = reply.expect_error(400, "VALIDATION_ERROR");
    assert!(
        err["message"]
            .as_str()
            .is_some_and(|m| m.contains("work_items[0]")),
        "{err}"
    );
    b.http(None)
        .raw(
            reqwest::Method::POST,
            "/api/v1/sync/import",
            Some("application/json"),
            "{",
        )
        .await
        .expect_error(400, "VALIDATION_ERROR");

    // A key taken by another project.
    let mut other = b.connect(USER_A).await;
    other.create_project("Mine", "PM").await;
    let reply = sync_import_strict(&b, USER_C, &doc).await;
    let err = reply.expect_error(400, "VALIDATION_ERROR");
    assert_eq!(err["field"], "projects[0].key");

    // Nothing of any of it was written or announced.
    let nothing = sync_export(&b, "").await;
    assert_eq!(nothing["projects"].as_array().map(Vec::len), Some(1));
    assert_eq!(nothing["work_items"], json!([]));
    for m in watcher.drain_events().await {
        assert!(
            matches!(
                m.payload,
                Some(Payload::ProjectCreated(_)) | Some(Payload::ActivityLogCreated(_))
            ),
            "only the other project's creation: {m:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_export_holds_one_item_its_descendants_and_what_was_asked_for() {
    let a = TestServer::start().await;
    rich_project(&a).await;
    let only = sync_export(&a, "?work_item=PM-1").await;
    let keys = |d: &Value| -> Vec<String> {
        d["work_items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|w| s(w, "display_key"))
            .collect()
    };
    assert_eq!(keys(&only), ["PM-1"]);
    assert_eq!(only["projects"], json!([]));
    assert_eq!(only["swim_lanes"], json!([]));
    assert_eq!(only["comments"], json!([]));
    let one = sync_export(&a, "?work_item=PM-1&descendant_levels=1").await;
    assert_eq!(keys(&one), ["PM-1", "PM-2"]);
    let all = sync_export(
        &a,
        "?work_item=PM-1&descendant_levels=2&comments=true&sprints=true&dependencies=true&time_entries=true",
    )
    .await;
    assert_eq!(keys(&all), ["PM-1", "PM-2", "PM-3"]);
    assert_eq!(all["comments"].as_array().map(Vec::len), Some(2));
    assert_eq!(all["sprints"].as_array().map(Vec::len), Some(1));
    // Both links have one end in the scope (their other end, PM-5, is not in it): as the
    // reference does, they are exported.
    assert_eq!(all["dependencies"].as_array().map(Vec::len), Some(2));
    assert_eq!(all["time_entries"].as_array().map(Vec::len), Some(1));
    let notes = sync_export(&a, "?work_item=PM-5&time_entries=true").await;
    assert_eq!(notes["time_entries"][0]["is_running"], true);
    a.http(None)
        .get("/api/v1/sync/export?work_item=PM-99")
        .await
        .expect_error(404, "NOT_FOUND");
    a.http(None)
        .get("/api/v1/sync/export?descendant_levels=many")
        .await
        .expect_error(400, "VALIDATION_ERROR");
}

/// A document shaped like the reference's own exports: keys in alphabetical order, display keys
/// that say UNKNOWN, HTML entities in text, swim lanes, and no time entries at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reference_shaped_document_imports() {
    let pid = "8a3c1d52-7e0f-4b6a-9c21-5d4e3f2a1b00";
    let epic = "1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f1";
    let story = "2e3d4c5b-6a79-4886-9a5b-b4c3d2e1f0a2";
    let user = "00000000-0000-0000-0000-000000000001";
    let item = |id: &str, n: i64, ty: &str, parent: Option<&str>, title: &str| {
        json!({
            "assignee_id": null, "created_at": 1770654599, "created_by": user,
            "description": "Plan &amp; build", "display_key": format!("UNKNOWN-{n}"), "id": id,
            "item_number": n, "item_type": ty, "parent_id": parent, "position": 2,
            "priority": "high", "project_id": pid, "sprint_id": null, "status": "done",
            "story_points": null, "title": title, "updated_at": 1770654763,
            "updated_by": user, "version": 2
        })
    };
    let doc = json!({
        "comments": [{
            "content": "Let&#x27;s ship it", "created_at": 1770659555, "created_by": user,
            "id": "3d4c5b6a-7988-4a7b-8c6d-c4d3e2f1a0b3", "updated_at": 1770659555,
            "updated_by": user, "work_item_id": story
        }],
        "dependencies": [{
            "blocked_item_id": story, "blocking_item_id": epic, "created_at": 1770654800,
            "created_by": user, "dependency_type": "relates_to",
            "id": "4c5b6a79-8897-4b8c-9d7e-d4e3f2a1b0c4"
        }],
        "exported_at": "2026-02-09T20:00:00.000000+00:00",
        "exported_by": "pm-server",
        "projects": [{
            "created_at": 1770650000, "created_by": user, "description": null, "id": pid,
            "key": "PONE", "next_work_item_number": 221, "status": "active", "title": "P1",
            "updated_at": 1770650000, "updated_by": user, "version": 1
        }],
        "schema_version": 1,
        "sprints": [],
        "swim_lanes": [{"id": "x", "name": "Backlog", "status_value": "backlog"}],
        "work_items": [
            item(story, 58, "story", Some(epic), "Update breadcrumb rendering"),
            item(epic, 56, "epic", None, "Fix breadcrumbs"),
        ]
    });
    let server = TestServer::start().await;
    let result = sync_import(&server, USER_C, &doc).await.ok().clone();
    assert_eq!(import_counts(&result, "projects"), (1, 0, 0));
    assert_eq!(import_counts(&result, "work_items"), (2, 0, 0));
    assert_eq!(import_counts(&result, "swim_lanes"), (0, 0, 1));
    assert_eq!(import_counts(&result, "time_entries"), (0, 0, 0));
    let http = server.http(None);
    let got = http.get("/api/v1/work-items/PONE-58").await.ok()["work_item"].clone();
    assert_eq!(got["parent_id"], epic);
    assert_eq!(got["description"], "Plan &amp; build");
    let project = http.get("/api/v1/projects/PONE").await.ok()["project"].clone();
    assert_eq!(project["next_work_item_number"], 221);
    let mut alice = server.connect(USER_A).await;
    let next = alice
        .create_item(pid, WorkItemType::Task, "Next", None)
        .await;
    assert_eq!(next.item_number, 221);
}

/// An import updates rows in place but never moves one to another owner: a sprint or a work
/// item to another project, a comment to another work item. Each is refused naming the row and
/// field, and nothing of the document is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_cannot_move_a_row_to_another_owner() {
    let server = TestServer::start().await;
    rich_project(&server).await;
    let doc = sync_export(&server, "").await;
    let mut client = server.connect(USER_A).await;
    let elsewhere = client.create_project("Elsewhere", "ELS").await;
    let other_item = client
        .create_item(&elsewhere.id, proto::WorkItemType::Epic, "other", None)
        .await;
    assert!(
        doc["comments"].as_array().is_some_and(|c| !c.is_empty()),
        "the rich project has comments"
    );
    let cases = [
        (
            "/sprints/0/project_id",
            elsewhere.id.clone(),
            "sprints[0].project_id",
        ),
        (
            "/work_items/0/project_id",
            elsewhere.id.clone(),
            "work_items[0].project_id",
        ),
        (
            "/comments/0/work_item_id",
            other_item.id.clone(),
            "comments[0].work_item_id",
        ),
    ];
    for (pointer, owner, field) in cases {
        let mut moved = doc.clone();
        *moved.pointer_mut(pointer).expect(pointer) = json!(owner);
        let reply = sync_import_strict(&server, USER_C, &moved).await;
        let err = reply.expect_error(400, "VALIDATION_ERROR");
        assert!(
            err["field"].as_str().is_some_and(|f| f.starts_with(field)),
            "{field}: {err}"
        );
        assert!(
            err["message"]
                .as_str()
                .is_some_and(|m| m.contains("an import cannot move it")),
            "{field}: {err}"
        );
    }
    // Nothing was written: the unedited document still imports, changing nothing.
    let result = sync_import(&server, USER_C, &doc).await;
    for kind in ["projects", "sprints", "work_items", "comments"] {
        let (created, updated, _) = import_counts(result.ok(), kind);
        assert_eq!((created, updated), (0, 0), "{kind}: {}", result.ok());
    }
}
