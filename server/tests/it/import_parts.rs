//! A large sync import runs in parts, one transaction each, so other users' writes get their
//! turn in between; what the file says about itself is checked whole first; in a strict import
//! a row refused in a later part names its place in the file, and importing the file again
//! resumes; a tolerant one leaves such rows out, naming their places in the file.

use crate::common::*;
use pm_server::commands::{execute, Actor, Command};
use pm_shared::proto::{self, Payload};
use serde_json::{json, Value};

/// A server whose export holds one project with `items` tasks.
async fn export_of(items: usize) -> (Value, String) {
    let source = TestServer::start().await;
    let actor = Actor {
        user_id: USER_A.into(),
    };
    let created = execute(
        &source.state.writer,
        &actor,
        None,
        Command::CreateProject(proto::CreateProjectRequest {
            title: "Big".into(),
            key: "BIG".into(),
            description: None,
        }),
    )
    .await
    .expect("project");
    let Payload::ProjectCreated(p) = created.event else {
        panic!("{created:?}")
    };
    let project = p.project.expect("project").id;
    for i in 0..items {
        let request = proto::CreateWorkItemRequest {
            item_type: proto::WorkItemType::Task as i32,
            title: format!("imported {i}"),
            project_id: project.clone(),
            ..Default::default()
        };
        execute(
            &source.state.writer,
            &actor,
            None,
            Command::CreateWorkItem(request),
        )
        .await
        .expect("item");
    }
    let doc = source
        .http(None)
        .get("/api/v1/sync/export")
        .await
        .ok()
        .clone();
    (doc, project)
}

async fn parts_server(rows: usize) -> TestServer {
    TestServer::start_with(|c| {
        c.import_chunk_rows = rows;
        c.max_import_rows = 1_000;
    })
    .await
}

async fn item_count(server: &TestServer, project: &str) -> i64 {
    let mut reader = server.state.store.read.acquire().await.expect("a reader");
    pm_server::on!(&mut reader.conn(), |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM pm_work_items WHERE project_id = $1"
    )
    .bind(project)
    .fetch_one(c)
    .await)
    .expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_writes_get_their_turn_between_the_parts_of_a_large_import() {
    let (doc, imported) = export_of(600).await;
    let server = parts_server(50).await;
    let mut other = server.connect(USER_A).await;
    let mine = other.create_project("Mine", "MINE").await;
    // One connection sees both projects' events in the order they were committed.
    let mut watcher = server.connect(USER_C).await;
    watcher.subscribe(&[&imported, &mine.id]).await;

    let importer = {
        let (addr, doc) = (server.addr, doc.clone());
        tokio::spawn(async move {
            Http::new(addr, Some(USER_B))
                .post("/api/v1/sync/import", doc)
                .await
        })
    };
    // As soon as the import has committed its first part, another user writes.
    loop {
        let msg = watcher.next_event(TIMEOUT).await;
        if msg.stream == imported && msg.seq > 0 {
            break;
        }
    }
    other
        .create_item(&mine.id, proto::WorkItemType::Task, "between", None)
        .await;
    let reply = importer.await.expect("import task");
    let result = reply.ok();
    assert_eq!(result["work_items"]["created"], 600, "{result}");

    let mut after_mine = 0;
    let mut seen_mine = false;
    for msg in watcher.drain_events().await {
        if msg.stream == mine.id && matches!(msg.payload, Some(Payload::WorkItemCreated(_))) {
            seen_mine = true;
        } else if seen_mine && msg.stream == imported && msg.seq > 0 {
            after_mine += 1;
        }
    }
    assert!(seen_mine, "the other user's write was delivered");
    assert!(
        after_mine > 0,
        "the other user's write waited for the whole import instead of going in between"
    );
    assert_eq!(item_count(&server, &imported).await, 600);
}

#[tokio::test]
async fn a_row_refused_in_a_later_part_of_a_strict_import_names_its_place_and_a_second_import_resumes(
) {
    let (mut doc, imported) = export_of(150).await;
    let server = parts_server(50).await;
    // Row 120 names a sprint that exists nowhere: only the database can tell.
    let bad = &mut doc["work_items"][120];
    let title = bad["title"].clone();
    bad["sprint_id"] = json!(uuid::Uuid::new_v4().to_string());
    let reply = sync_import_strict(&server, USER_B, &doc).await;
    let error = reply.expect_error(400, "VALIDATION_ERROR");
    assert_eq!(error["field"], "work_items[120].sprint_id", "{error}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains("work_items[120]"), "{message}");
    assert!(
        message.contains("importing the same file again resumes"),
        "{message}"
    );
    let before = item_count(&server, &imported).await;
    assert!(
        (50..150).contains(&before),
        "the parts before the bad row are in ({before})"
    );

    // Fixed, the same file goes in; what was in already is skipped.
    doc["work_items"][120]["sprint_id"] = Value::Null;
    assert_eq!(doc["work_items"][120]["title"], title);
    let reply = sync_import(&server, USER_B, &doc).await;
    let result = reply.ok();
    assert_eq!(item_count(&server, &imported).await, 150);
    assert_eq!(
        result["work_items"]["created"].as_i64().unwrap_or(-1) + before,
        150,
        "{result}"
    );
    assert_eq!(
        result["work_items"]["skipped"].as_i64(),
        Some(before),
        "{result}"
    );
}

#[tokio::test]
async fn what_the_file_says_of_itself_is_checked_before_any_part_is_written() {
    let (mut doc, imported) = export_of(120).await;
    let server = parts_server(50).await;
    // A parent cycle between rows 100 and 110: both are past the first part.
    let a = doc["work_items"][100]["id"].clone();
    let b = doc["work_items"][110]["id"].clone();
    doc["work_items"][100]["parent_id"] = b;
    doc["work_items"][110]["parent_id"] = a;
    sync_import_strict(&server, USER_B, &doc)
        .await
        .expect_error(400, "VALIDATION_ERROR");
    assert_eq!(
        item_count(&server, &imported).await,
        0,
        "nothing was written"
    );

    // Too many rows for this server: refused whole, and said why.
    let small = TestServer::start_with(|c| c.max_import_rows = 100).await;
    let reply = sync_import(&small, USER_B, &doc).await;
    let error = reply.expect_error(400, "VALIDATION_ERROR");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("--max-import-rows")),
        "{error}"
    );
    assert_eq!(item_count(&small, &imported).await, 0);
}
