//! RestoreWorkItemRequest (pm): a deleted item comes back with its id, key, comments, links and
//! time entries, to every subscriber, or is refused with a reason.

use crate::common::fixture::*;
use crate::common::*;
use pm_shared::proto::{self, DependencyType, Payload, WorkItemType};

fn restore(id: &str) -> Payload {
    Payload::RestoreWorkItemRequest(proto::RestoreWorkItemRequest {
        work_item_id: id.to_string(),
    })
}

fn delete(id: &str) -> Payload {
    Payload::DeleteWorkItemRequest(proto::DeleteWorkItemRequest {
        work_item_id: id.to_string(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_item_comes_back_whole_to_every_subscriber() {
    let mut f = Fixture::new(2).await;
    let (item, other) = (f.id(0), f.id(1));
    f.alice.create_comment(&item, "Keep me").await;
    f.received().await;
    expect_payload!(
        f.act(dep_req(&other, &item, DependencyType::Blocks)).await,
        DependencyCreated
    );
    f.received().await;
    expect_payload!(f.act(start_req(&item, Some("pairing"))).await, TimerStarted);
    f.received().await;
    expect_payload!(f.act(delete(&item)).await, WorkItemDeleted);
    f.received().await;

    let reply = f.act(restore(&item)).await;
    let back = expect_payload!(reply, WorkItemCreated).clone();
    let w = back.work_item.clone().expect("work_item");
    let with = back.restored.clone().expect("restored");
    assert_eq!(
        (w.id.as_str(), w.item_number, w.title.as_str()),
        (item.as_str(), 1, "T1")
    );
    assert_eq!(
        w.version,
        f.items[0].version + 1,
        "the delete kept the version"
    );
    assert_eq!(with.comments.len(), 1);
    assert_eq!(with.comments[0].content, "Keep me");
    assert_eq!(with.dependencies.len(), 1);
    assert_eq!(with.time_entries.len(), 1);

    let (entry, event) = f.received().await;
    assert_eq!(entry.action, "created");
    let seen = expect_payload!(event, WorkItemCreated);
    assert_eq!(seen, back, "subscribers get what the caller got");

    // It is an item like any other again: listed, and its comments are read back.
    let (items, _) = f.bob.work_items(&f.project.id).await;
    assert!(items.iter().any(|i| i.id == item));
    let (comments, _) = f.bob.comments(&item).await;
    assert_eq!(comments.len(), 1);
    // A second restore: it is not deleted.
    let reply = f.act(restore(&item)).await;
    let err = expect_error(&reply, "VALIDATION_ERROR");
    assert_eq!(err.field.as_deref(), Some("work_item_id"));
    expect_error(
        &f.act(restore(&uuid::Uuid::new_v4().to_string())).await,
        "NOT_FOUND",
    );
    expect_error(&f.act(restore("not-an-id")).await, "VALIDATION_ERROR");
    f.nothing_received().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_under_a_deleted_parent_or_project_is_refused() {
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
    expect_payload!(f.act(delete(&story.id)).await, WorkItemDeleted);
    expect_payload!(f.act(delete(&epic.id)).await, WorkItemDeleted);
    let reply = f.act(restore(&story.id)).await;
    let err = expect_error(&reply, "VALIDATION_ERROR");
    assert_eq!(err.field.as_deref(), Some("parent_id"), "{err:?}");
    // Parent first, then the child.
    expect_payload!(f.act(restore(&epic.id)).await, WorkItemCreated);
    let back = expect_payload!(f.act(restore(&story.id)).await, WorkItemCreated).clone();
    assert_eq!(
        back.work_item.and_then(|w| w.parent_id).as_deref(),
        Some(epic.id.as_str())
    );

    // An item of a deleted project stays deleted.
    let gone = f.alice.create_project("Gone", "GON").await;
    let orphan = f
        .alice
        .create_item(&gone.id, WorkItemType::Task, "Orphan", None)
        .await;
    expect_payload!(f.act(delete(&orphan.id)).await, WorkItemDeleted);
    expect_payload!(
        f.act(Payload::DeleteProjectRequest(proto::DeleteProjectRequest {
            project_id: gone.id.clone(),
            expected_version: gone.version,
        }))
        .await,
        ProjectDeleted
    );
    let reply = f.act(restore(&orphan.id)).await;
    let err = expect_error(&reply, "VALIDATION_ERROR");
    assert!(err.message.contains("project"), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_who_may_delete_may_restore() {
    const OWNER: &str = USER_A;
    const EDITOR: &str = USER_B;
    let server = TestServer::start_team().await;
    let mut owner = server.connect_team(OWNER).await;
    let project = owner.create_project("Team", "TEA").await;
    let item = owner
        .create_item(&project.id, WorkItemType::Task, "x", None)
        .await;
    expect_payload!(
        &owner
            .request(Payload::AddProjectMemberRequest(
                proto::AddProjectMemberRequest {
                    project_id: project.id.clone(),
                    user_id: EDITOR.into(),
                    role: "editor".into(),
                }
            ))
            .await,
        ProjectMemberAdded
    );
    expect_payload!(owner.request(delete(&item.id)).await, WorkItemDeleted);
    let mut editor = server.connect_team(EDITOR).await;
    expect_error(&editor.request(restore(&item.id)).await, "UNAUTHORIZED");
    let mut outsider = server.connect_team(USER_C).await;
    expect_error(&outsider.request(restore(&item.id)).await, "NOT_FOUND");
    expect_payload!(owner.request(restore(&item.id)).await, WorkItemCreated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_restores_by_key_or_id() {
    let mut f = Fixture::new(2).await;
    let http = f.server.http(None);
    http.delete("/api/v1/work-items/LNK-1").await.ok();
    http.get("/api/v1/work-items/LNK-1")
        .await
        .expect_error(404, "NOT_FOUND");
    let back = http
        .post("/api/v1/work-items/LNK-1/restore", serde_json::json!({}))
        .await
        .ok()["work_item"]
        .clone();
    assert_eq!(back["id"], f.id(0).as_str());
    assert_eq!(back["display_key"], "LNK-1");
    assert_eq!(back["version"], 2);
    f.received().await;
    let (_, event) = f.received().await;
    assert!(expect_payload!(event, WorkItemCreated).restored.is_some());

    http.post("/api/v1/work-items/LNK-1/restore", serde_json::json!({}))
        .await
        .expect_error(400, "VALIDATION_ERROR");
    http.post("/api/v1/work-items/LNK-9/restore", serde_json::json!({}))
        .await
        .expect_error(404, "NOT_FOUND");
    http.post("/api/v1/work-items/nonsense/restore", serde_json::json!({}))
        .await
        .expect_error(400, "VALIDATION_ERROR");
    let id = f.id(1);
    http.delete(&format!("/api/v1/work-items/{id}")).await.ok();
    f.received().await;
    let back = http
        .post(
            &format!("/api/v1/work-items/{id}/restore"),
            serde_json::json!({}),
        )
        .await
        .ok()["work_item"]
        .clone();
    assert_eq!(back["display_key"], "LNK-2");
}
