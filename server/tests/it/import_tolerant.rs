//! A sync import keeps what it can: a row that cannot be stored (over-long text, a link to an
//! item that is nowhere, a bad value) is left out with its reason and everything else is
//! committed; `?strict=true` keeps the all-or-nothing import. Re-importing changes nothing.

use std::collections::BTreeSet;

use crate::common::*;
use pm_shared::domain::limits;
use pm_shared::proto::{self, Payload, WorkItemType};
use serde_json::{json, Value};

const PROJECT: &str = "5e1f0000-0000-4000-8000-000000000001";
const AUTHOR: &str = "00000000-0000-0000-0000-000000000001";
/// How many comments of [`reference_sized`] are over the default comment limit.
const LONG_COMMENTS: usize = 7;
/// The place of the dangling link in [`reference_sized`]'s dependencies.
const DANGLING: usize = 37;

fn id(kind: u32, n: usize) -> String {
    format!("5e1f{kind:04x}-0000-4000-8000-{n:012x}")
}

/// Shaped like the reference repository's own export: 1 project (its description empty),
/// 200 work items (20 epics, 60 stories, 120 tasks), 60 comments of which
/// [`LONG_COMMENTS`] are one character over the default limit, 60 links of which one (at
/// [`DANGLING`]) points at an item that is neither in the file nor in the database.
fn reference_sized() -> Value {
    let t0 = 1_770_000_000_i64;
    let mut items = Vec::new();
    for n in 0..200 {
        let (ty, parent) = match n {
            0..20 => ("epic", None),
            20..80 => ("story", Some(id(2, n % 20))),
            _ => ("task", Some(id(2, 20 + n % 60))),
        };
        let status = ["backlog", "todo", "in_progress", "review", "done"][n % 5];
        let description = if n % 3 == 0 {
            json!("Plan &amp; build")
        } else {
            Value::Null
        };
        items.push(json!({
            "id": id(2, n), "display_key": format!("PONE-{}", n + 1), "item_type": ty,
            "title": format!("Item {n}"), "description": description, "status": status,
            "priority": "medium", "parent_id": parent, "project_id": PROJECT,
            "assignee_id": null, "sprint_id": null, "story_points": null,
            "item_number": n + 1, "position": n, "version": 1,
            "created_at": t0 + n as i64, "updated_at": t0 + n as i64,
            "created_by": AUTHOR, "updated_by": AUTHOR,
        }));
    }
    let comments: Vec<Value> = (0..60)
        .map(|n| {
            let content = if n % 9 == 4 {
                "x".repeat(limits::COMMENT_MAX + 1)
            } else {
                format!("Comment {n}: let&#x27;s ship it")
            };
            json!({
                "id": id(3, n), "work_item_id": id(2, (n * 3) % 200), "content": content,
                "created_at": t0 + 500, "updated_at": t0 + 500,
                "created_by": AUTHOR, "updated_by": AUTHOR,
            })
        })
        .collect();
    assert_eq!(
        comments
            .iter()
            .filter(|c| c["content"].as_str().map_or(0, str::len) > limits::COMMENT_MAX)
            .count(),
        LONG_COMMENTS
    );
    let links: Vec<Value> = (0..60)
        .map(|n| {
            // Blocking always the lower item: no `blocks` cycle.
            let blocking = id(2, n);
            let blocked = if n == DANGLING {
                id(9, 1)
            } else {
                id(2, 100 + n)
            };
            json!({
                "id": id(4, n), "blocking_item_id": blocking, "blocked_item_id": blocked,
                "dependency_type": if n % 2 == 0 { "blocks" } else { "relates_to" },
                "created_at": t0 + 600, "created_by": AUTHOR,
            })
        })
        .collect();
    json!({
        "schema_version": 1,
        "exported_at": "2026-02-09T20:00:00.000000+00:00",
        "exported_by": "pm-server",
        "projects": [{
            "id": PROJECT, "key": "PONE", "title": "P1", "description": "",
            "status": "active", "version": 1, "created_at": t0, "updated_at": t0,
            "created_by": AUTHOR, "updated_by": AUTHOR, "next_work_item_number": 221,
        }],
        "work_items": items,
        "sprints": [],
        "comments": comments,
        "swim_lanes": [],
        "dependencies": links,
        "time_entries": [],
    })
}

/// The skipped rows of an ImportResult as (entity, index, field).
fn skipped(result: &Value) -> Vec<(String, i64, String)> {
    // Left out of the answer when nothing was skipped (the reference's shape exactly).
    result["skipped"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|s| {
            (
                s["entity"].as_str().unwrap_or_default().to_string(),
                n(s, "index"),
                s["field"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn reason_of(result: &Value, entity: &str, index: i64) -> String {
    result["skipped"]
        .as_array()
        .and_then(|list| {
            list.iter()
                .find(|s| s["entity"] == entity && s["index"] == index)
        })
        .map(|s| s["reason"].as_str().unwrap_or_default().to_string())
        .unwrap_or_else(|| panic!("{entity}[{index}] was not skipped: {result}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reference_sized_export_imports_all_it_can_and_names_every_skipped_row() {
    let doc = reference_sized();
    let server = TestServer::start().await;
    let mut watcher = server.connect(USER_B).await;
    watcher.subscribe(&[PROJECT]).await;

    // Strict: refused whole, naming the first row that cannot be stored; nothing written.
    let reply = sync_import_strict(&server, USER_C, &doc).await;
    let err = reply.expect_error(400, "VALIDATION_ERROR");
    assert_eq!(err["field"], "comments[4].content", "{err}");
    assert!(
        err["message"]
            .as_str()
            .is_some_and(|m| m.contains("must not exceed")),
        "{err}"
    );
    assert_eq!(sync_export(&server, "").await["work_items"], json!([]));

    // Tolerant (the default): everything else is in.
    let result = sync_import(&server, USER_C, &doc).await.ok().clone();
    assert_eq!(import_counts(&result, "projects"), (1, 0, 0), "{result}");
    assert_eq!(
        import_counts(&result, "work_items"),
        (200, 0, 0),
        "{result}"
    );
    assert_eq!(
        import_counts(&result, "comments"),
        (60 - LONG_COMMENTS as i64, 0, LONG_COMMENTS as i64),
        "{result}"
    );
    assert_eq!(
        import_counts(&result, "dependencies"),
        (59, 0, 1),
        "{result}"
    );
    let mut expected: Vec<(String, i64, String)> = (0..60)
        .filter(|n| n % 9 == 4)
        .map(|n| ("comments".to_string(), n, "content".to_string()))
        .collect();
    expected.push((
        "dependencies".into(),
        DANGLING as i64,
        "blocked_item_id".into(),
    ));
    assert_eq!(skipped(&result), expected);
    let long = reason_of(&result, "comments", 4);
    assert!(
        long.starts_with("content: ") && long.contains("must not exceed"),
        "{long}"
    );
    let dangling = reason_of(&result, "dependencies", DANGLING as i64);
    assert!(
        dangling.contains(&id(9, 1)) && dangling.contains("not found"),
        "{dangling}"
    );
    assert_eq!(
        result["skipped"][0]["id"],
        id(3, 4),
        "the row's id as the file wrote it"
    );

    // What was stored was announced, and only that.
    let events = watcher.drain_events().await;
    let comment_events = events
        .iter()
        .filter(|m| matches!(m.payload, Some(Payload::CommentCreated(_))))
        .count();
    assert_eq!(comment_events, 60 - LONG_COMMENTS);
    let link_events = events
        .iter()
        .filter(|m| matches!(m.payload, Some(Payload::DependencyCreated(_))))
        .count();
    assert_eq!(link_events, 59);
    let stored = sync_export(&server, "").await;
    assert_eq!(stored["work_items"].as_array().map(Vec::len), Some(200));
    assert_eq!(
        stored["comments"].as_array().map(Vec::len),
        Some(60 - LONG_COMMENTS)
    );
    assert_eq!(stored["projects"][0]["description"], "");
    assert_eq!(stored["projects"][0]["next_work_item_number"], 221);

    // Twice: nothing changes, nothing is announced; the same rows are skipped for the same
    // reasons.
    let again = sync_import(&server, USER_C, &doc).await.ok().clone();
    for kind in ["projects", "work_items", "comments", "dependencies"] {
        let (created, updated, _) = import_counts(&again, kind);
        assert_eq!((created, updated), (0, 0), "{kind}: {again}");
    }
    assert_eq!(import_counts(&again, "work_items"), (0, 0, 200));
    assert_eq!(import_counts(&again, "dependencies"), (0, 0, 60));
    assert_eq!(skipped(&again), expected);
    watcher.expect_no_event().await;
    assert_eq!(
        without_time(sync_export(&server, "").await),
        without_time(stored)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rows_are_skipped_with_their_reasons_and_what_needs_them_too() {
    let mut doc = reference_sized();
    // A bad value, a row that refers to a refused one, a parent cycle, a repeated number and a
    // repeated id, a comment on an item that is nowhere.
    doc["work_items"][150]["status"] = json!("blocked");
    let under_150 = (0..60)
        .find(|n| (n * 3) % 200 == 150)
        .expect("a comment on item 150");
    doc["work_items"][12]["parent_id"] = json!(id(2, 13));
    doc["work_items"][13]["parent_id"] = json!(id(2, 12));
    doc["work_items"][199]["item_number"] = json!(198);
    doc["work_items"][198]["id"] = doc["work_items"][197]["id"].clone();
    doc["comments"][1]["work_item_id"] = json!(id(9, 2));
    let server = TestServer::start().await;
    let result = sync_import(&server, USER_C, &doc).await.ok().clone();
    let got = skipped(&result);
    let has = |entity: &str, index: i64, field: &str| {
        assert!(
            got.contains(&(entity.to_string(), index, field.to_string())),
            "{entity}[{index}].{field} not among {got:?}"
        );
    };
    has("work_items", 150, "status");
    assert!(reason_of(&result, "work_items", 150).contains("Invalid status: blocked"));
    has("comments", under_150 as i64, "work_item_id");
    has("work_items", 198, "id");
    has("work_items", 199, "item_number");
    has("comments", 1, "work_item_id");
    // One row of the cycle is refused for the cycle, the other because its parent is missing.
    assert!(
        got.iter()
            .any(|(e, i, f)| e == "work_items" && (*i == 12 || *i == 13) && f == "parent_id"),
        "{got:?}"
    );
    let items = import_counts(&result, "work_items");
    assert_eq!(items.0 + items.2, 200, "{result}");
    assert!(items.2 >= 5, "{result}");
    // The skip list is in import order: by list, then by place in the file.
    let order: Vec<(usize, i64)> = got
        .iter()
        .map(|(e, i, _)| {
            let list = ["projects", "work_items", "comments", "dependencies"]
                .iter()
                .position(|l| l == e)
                .unwrap_or(9);
            (list, *i)
        })
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);
    let stored = sync_export(&server, "").await;
    let titles: BTreeSet<&str> = stored["work_items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|w| w["title"].as_str())
        .collect();
    assert!(!titles.contains("Item 150"));
    assert!(titles.contains("Item 149"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_that_cannot_be_stored_takes_its_rows_with_it_and_strict_refuses_all() {
    let doc = reference_sized();
    let server = TestServer::start().await;
    let mut owner = server.connect(USER_A).await;
    owner.create_project("Mine", "PONE").await;
    let result = sync_import(&server, USER_C, &doc).await.ok().clone();
    assert_eq!(import_counts(&result, "projects"), (0, 0, 1), "{result}");
    assert_eq!(import_counts(&result, "work_items"), (0, 0, 200));
    assert!(reason_of(&result, "projects", 0).contains("already used"));
    assert!(reason_of(&result, "work_items", 0).contains(&format!("project {PROJECT} not found")));
    // The schema is the whole file's: refused whole in either mode.
    let mut other = doc.clone();
    other["schema_version"] = json!(2);
    sync_import(&server, USER_C, &other)
        .await
        .expect_error(400, "VALIDATION_ERROR");
    sync_import_strict(&server, USER_C, &doc)
        .await
        .expect_error(400, "VALIDATION_ERROR");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_tolerant_import_skips_rows_by_their_place_in_the_file() {
    let mut doc = reference_sized();
    let server = TestServer::start_with(|c| {
        c.import_chunk_rows = 50;
        c.max_import_rows = 1_000;
    })
    .await;
    // A cycle (the whole file refuses its first row, 100) and a repeated id (131) the whole
    // file shows; a bad value (171) only its part shows.
    doc["work_items"][100]["parent_id"] = json!(id(2, 110));
    doc["work_items"][110]["parent_id"] = json!(id(2, 100));
    doc["work_items"][130]["id"] = doc["work_items"][131]["id"].clone();
    doc["work_items"][171]["priority"] = json!("urgent");
    let result = sync_import(&server, USER_C, &doc).await.ok().clone();
    let got = skipped(&result);
    for (index, field) in [(100, "parent_id"), (131, "id"), (171, "priority")] {
        assert!(
            got.contains(&("work_items".into(), index, field.into())),
            "work_items[{index}].{field} not among {got:?}"
        );
    }
    // The other row of the cycle has no parent any more: refused in its part, named by its
    // place in the file.
    assert!(
        got.contains(&("work_items".into(), 110, "parent_id".into())),
        "{got:?}"
    );
    assert_eq!(
        import_counts(&result, "work_items"),
        (196, 0, 4),
        "{result}"
    );
    assert_eq!(
        import_counts(&result, "comments").2,
        LONG_COMMENTS as i64 + 1,
        "the comment on item 171 goes with it: {result}"
    );
    assert!(
        reason_of(&result, "comments", 4).contains("must not exceed"),
        "{result}"
    );
    let again = sync_import(&server, USER_C, &doc).await.ok().clone();
    assert_eq!(import_counts(&again, "work_items"), (0, 0, 200), "{again}");
    assert_eq!(skipped(&again), got);
}

/// Rows that break a rule only the stored rows can tell (a parent loop through an item that
/// is already here, a second active sprint) are refused after their write: the write is
/// undone, nothing is announced for them, and the rest of the document goes in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_refused_after_its_write_leaves_nothing_behind() {
    let server = TestServer::start().await;
    let mut a = server.connect(USER_A).await;
    let p = a.create_project("Loops", "LP").await;
    let epic = a.create_item(&p.id, WorkItemType::Epic, "Epic", None).await;
    let story = a
        .create_item(&p.id, WorkItemType::Story, "Story", Some(&epic.id))
        .await;
    let sprint = a.create_sprint(&p.id, "Now").await;
    a.update_sprint(proto::UpdateSprintRequest {
        sprint_id: sprint.id.clone(),
        expected_version: 1,
        status: Some(proto::SprintStatus::Active as i32),
        ..Default::default()
    })
    .await;
    let mut doc = sync_export(&server, "").await;
    let mut watcher = server.connect(USER_B).await;
    watcher.subscribe(&[&p.id]).await;

    // The epic under its own story, newer than the stored epic; the story is only in the
    // database (in the file, the loop would be the file's own).
    doc["work_items"] = json!(doc["work_items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|w| w["id"] != story.id.as_str())
        .cloned()
        .collect::<Vec<_>>());
    let at = doc["work_items"]
        .as_array()
        .expect("items")
        .iter()
        .position(|w| w["id"] == epic.id.as_str())
        .expect("the epic");
    doc["work_items"][at]["parent_id"] = json!(story.id);
    doc["work_items"][at]["title"] = json!("Epic, looped");
    doc["work_items"][at]["updated_at"] = json!(n(&doc["work_items"][at], "updated_at") + 10);
    // A second active sprint, and one harmless new task.
    let mut second = doc["sprints"][0].clone();
    second["id"] = json!(uuid::Uuid::new_v4().to_string());
    second["name"] = json!("Also now");
    doc["sprints"] = json!([doc["sprints"][0].clone(), second]);
    let mut task = doc["work_items"][at].clone();
    task["id"] = json!(uuid::Uuid::new_v4().to_string());
    task["item_type"] = json!("task");
    task["parent_id"] = json!(story.id);
    task["title"] = json!("New task");
    task["item_number"] = json!(3);
    doc["work_items"].as_array_mut().expect("items").push(task);

    let result = sync_import(&server, USER_C, &doc).await.ok().clone();
    assert!(
        reason_of(&result, "work_items", at as i64).contains("its own ancestor"),
        "{result}"
    );
    assert!(
        reason_of(&result, "sprints", 1).contains("active sprints"),
        "{result}"
    );
    assert_eq!(import_counts(&result, "work_items"), (1, 0, 1), "{result}");
    assert_eq!(import_counts(&result, "sprints"), (0, 0, 2), "{result}");

    // Only the new task was announced.
    let events = watcher.drain_events().await;
    let announced: Vec<&Payload> = events
        .iter()
        .filter_map(|m| m.payload.as_ref())
        .filter(|p| !matches!(p, Payload::ActivityLogCreated(_)))
        .collect();
    assert_eq!(announced.len(), 1, "{announced:?}");
    assert!(matches!(announced[0], Payload::WorkItemCreated(_)));
    let http = server.http(None);
    let stored = http.get("/api/v1/work-items/LP-1").await.ok()["work_item"].clone();
    assert_eq!(stored["title"], "Epic");
    assert_eq!(stored["parent_id"], Value::Null);
    let sprints = http
        .get(&format!("/api/v1/projects/{}/sprints", p.id))
        .await
        .ok()["sprints"]
        .clone();
    assert_eq!(sprints.as_array().map(Vec::len), Some(1), "{sprints}");
}
