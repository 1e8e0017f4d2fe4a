//! pm's extensions of UpdateWorkItemRequest: `item_type` (a card's type changes, within the
//! hierarchy rules) and `clear_story_points`, over WebSocket and REST (`item_type`,
//! `story_points: null`).

use crate::common::fixture::*;
use crate::common::*;
use pm_shared::proto::{self, Payload, WorkItemType};
use serde_json::json;

fn retype(id: &str, version: i32, item_type: &str) -> Payload {
    Payload::UpdateWorkItemRequest(proto::UpdateWorkItemRequest {
        item_type: Some(item_type.into()),
        ..upd(id, version)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_type_change_and_cleared_points_reach_subscribers_and_the_history() {
    let mut f = Fixture::new(1).await;
    let task = f.id(0);
    f.alice
        .update_item(proto::UpdateWorkItemRequest {
            story_points: Some(5),
            ..upd(&task, 1)
        })
        .await;
    f.received().await;

    let item = f
        .alice
        .update_item(proto::UpdateWorkItemRequest {
            item_type: Some("epic".into()),
            clear_story_points: true,
            ..upd(&task, 2)
        })
        .await;
    assert_eq!(item.item_type, WorkItemType::Epic as i32);
    assert_eq!((item.story_points, item.version), (None, 3));

    let (entry, event) = f.received().await;
    let updated = expect_payload!(event, WorkItemUpdated);
    let seen = updated.work_item.as_ref().expect("work_item");
    assert_eq!(seen.item_type, WorkItemType::Epic as i32);
    assert_eq!(seen.story_points, None);
    let mut changes = updated.changes.clone();
    changes.sort_by(|a, b| a.field_name.cmp(&b.field_name));
    assert_eq!(
        changes,
        vec![
            field_change("item_type", Some("task"), Some("epic")),
            field_change("story_points", Some("5"), None),
        ]
    );
    assert_eq!(entry.action, "updated");

    // The history keeps the type change like any other field.
    let page = f
        .server
        .http(None)
        .get(&format!(
            "/api/v1/activity?entity_type=work-item&entity_id={task}"
        ))
        .await
        .ok()
        .clone();
    let newest = &page["activity"][0];
    let fields: Vec<&str> = newest["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter_map(|c| c["field_name"].as_str())
        .collect();
    assert!(fields.contains(&"item_type"), "{newest}");

    // Clearing points that are not there is no change: nothing is written or sent.
    let same = f
        .alice
        .update_item(proto::UpdateWorkItemRequest {
            clear_story_points: true,
            ..upd(&task, 3)
        })
        .await;
    assert_eq!(same.version, 3);
    f.nothing_received().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_type_change_that_breaks_the_hierarchy_is_refused_naming_item_type() {
    let mut f = Fixture::new(0).await;
    let project = f.project.id.clone();
    let epic = f
        .alice
        .create_item(&project, WorkItemType::Epic, "Epic", None)
        .await;
    let story = f
        .alice
        .create_item(&project, WorkItemType::Story, "Story", Some(&epic.id))
        .await;
    let task = f
        .alice
        .create_item(&project, WorkItemType::Task, "Task", Some(&story.id))
        .await;
    for _ in 0..3 {
        f.received().await;
    }
    let refused = [
        // A story under an epic, over a task: as a task it fits neither.
        (
            &story,
            "task",
            "Task cannot be a child of Epic (its parent)",
        ),
        // A task under a story cannot become a story (a story sits under an epic).
        (
            &task,
            "story",
            "Story cannot be a child of Story (its parent)",
        ),
        // An epic with a story under it cannot become a story.
        (
            &epic,
            "story",
            "Story (one of its children) cannot be a child of Story",
        ),
    ];
    for (item, to, why) in refused {
        let reply = f.act(retype(&item.id, item.version, to)).await;
        let err = expect_error(&reply, "VALIDATION_ERROR");
        assert_eq!(err.field.as_deref(), Some("item_type"), "{err:?}");
        assert!(err.message.contains(why), "{to}: {err:?}");
    }
    let reply = f.act(retype(&task.id, 1, "bug")).await;
    let err = expect_error(&reply, "VALIDATION_ERROR");
    assert_eq!(err.field.as_deref(), Some("item_type"), "{err:?}");
    assert!(err.message.contains("bug"), "{err:?}");
    f.nothing_received().await;

    // A change that keeps the rules: the task moves out from under the story and becomes a
    // story under the epic in one request.
    let moved = f
        .alice
        .update_item(proto::UpdateWorkItemRequest {
            item_type: Some("story".into()),
            parent_id: Some(epic.id.clone()),
            update_parent: true,
            ..upd(&task.id, 1)
        })
        .await;
    assert_eq!(moved.item_type, WorkItemType::Story as i32);
    assert_eq!(moved.parent_id.as_deref(), Some(epic.id.as_str()));
    f.received().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_type_change_on_a_deleted_or_changed_item_is_refused() {
    let mut f = Fixture::new(2).await;
    let (gone, stale) = (f.id(0), f.id(1));
    expect_payload!(
        f.act(Payload::DeleteWorkItemRequest(
            proto::DeleteWorkItemRequest {
                work_item_id: gone.clone(),
            }
        ))
        .await,
        WorkItemDeleted
    );
    f.received().await;
    expect_error(&f.act(retype(&gone, 1, "story")).await, "NOT_FOUND");

    f.alice
        .update_item(proto::UpdateWorkItemRequest {
            title: Some("Renamed".into()),
            ..upd(&stale, 1)
        })
        .await;
    f.received().await;
    let reply = f.act(retype(&stale, 1, "story")).await;
    expect_error(&reply, "CONFLICT");

    // Points set and cleared in one request: which one is meant?
    let reply = f
        .act(Payload::UpdateWorkItemRequest(
            proto::UpdateWorkItemRequest {
                story_points: Some(3),
                clear_story_points: true,
                ..upd(&stale, 2)
            },
        ))
        .await;
    let err = expect_error(&reply, "VALIDATION_ERROR");
    assert_eq!(err.field.as_deref(), Some("story_points"));
    f.nothing_received().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_changes_the_type_and_null_story_points_clear_them() {
    let mut f = Fixture::new(1).await;
    let task = f.id(0);
    let http = f.server.http(None);
    let path = format!("/api/v1/work-items/{task}");
    let item = http
        .put(&path, json!({"story_points": 8, "expected_version": 1}))
        .await
        .ok()["work_item"]
        .clone();
    assert_eq!(item["story_points"], 8);
    // Absent points stay as they are.
    let item = http
        .put(&path, json!({"item_type": "story", "expected_version": 2}))
        .await
        .ok()["work_item"]
        .clone();
    assert_eq!(
        (item["item_type"].clone(), item["story_points"].clone()),
        (json!("story"), json!(8))
    );
    let item = http
        .put(&path, json!({"story_points": null, "expected_version": 3}))
        .await
        .ok()["work_item"]
        .clone();
    assert_eq!(item["story_points"], serde_json::Value::Null);
    assert_eq!(item["version"], 4);
    for _ in 0..3 {
        f.received().await;
    }

    let err = http
        .put(&path, json!({"item_type": "bug", "expected_version": 4}))
        .await
        .expect_error(400, "VALIDATION_ERROR")
        .clone();
    assert_eq!(err["field"], "item_type");
    http.put(&path, json!({"item_type": "epic", "expected_version": 1}))
        .await
        .expect_error(409, "CONFLICT");
    http.put(
        &path,
        json!({"story_points": "none", "expected_version": 4}),
    )
    .await
    .expect_error(400, "VALIDATION_ERROR");
    f.nothing_received().await;
}
