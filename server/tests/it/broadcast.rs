//! Every change reaches every subscriber: all twelve domain events, made over WebSocket and over
//! REST, arrive at another client with the full entity, the real field changes and consecutive
//! seqs; clients that did not subscribe receive nothing; the actor sees ActivityLogCreated →
//! event → response.

use crate::common::*;
use pm_shared::proto::{self, Payload, WebSocketMessage, WorkItemType};
use serde_json::json;

/// Who makes the changes: a WebSocket client or a REST caller.
enum Via {
    Ws(Box<WsClient>),
    Rest(Http, String),
}

enum Patch {
    Title(&'static str),
    Priority(&'static str),
    Sprint(String),
    Points(i32),
}

impl Via {
    fn user(&self) -> String {
        match self {
            Via::Ws(c) => c.user_id.clone(),
            Via::Rest(_, u) => u.clone(),
        }
    }

    async fn create_project(&mut self, title: &str, key: &str) -> String {
        match self {
            Via::Ws(c) => c.create_project(title, key).await.id,
            Via::Rest(h, _) => s(
                &h.post("/api/v1/projects", json!({"title": title, "key": key}))
                    .await
                    .ok()["project"],
                "id",
            ),
        }
    }

    async fn update_project_title(&mut self, id: &str, version: i32, title: &str) {
        match self {
            Via::Ws(c) => {
                let reply = c
                    .request(Payload::UpdateProjectRequest(proto::UpdateProjectRequest {
                        project_id: id.into(),
                        expected_version: version,
                        title: Some(title.into()),
                        ..Default::default()
                    }))
                    .await;
                expect_payload!(reply, ProjectUpdated);
            }
            Via::Rest(h, _) => {
                h.put(
                    &format!("/api/v1/projects/{id}"),
                    json!({"title": title, "expected_version": version}),
                )
                .await
                .ok();
            }
        }
    }

    async fn delete_project(&mut self, id: &str, version: i32) {
        match self {
            Via::Ws(c) => {
                let reply = c
                    .request(Payload::DeleteProjectRequest(proto::DeleteProjectRequest {
                        project_id: id.into(),
                        expected_version: version,
                    }))
                    .await;
                expect_payload!(reply, ProjectDeleted);
            }
            Via::Rest(h, _) => {
                let body = h.delete(&format!("/api/v1/projects/{id}")).await;
                assert_eq!(body.ok()["deleted_id"], id);
            }
        }
    }

    async fn create_item(
        &mut self,
        project: &str,
        ty: WorkItemType,
        title: &str,
        parent: Option<&str>,
    ) -> String {
        match self {
            Via::Ws(c) => c.create_item(project, ty, title, parent).await.id,
            Via::Rest(h, _) => {
                let ty = match ty {
                    WorkItemType::Epic => "epic",
                    WorkItemType::Story => "story",
                    _ => "task",
                };
                let body = json!({"project_id": project, "item_type": ty, "title": title, "parent_id": parent});
                s(
                    &h.post("/api/v1/work-items", body).await.ok()["work_item"],
                    "id",
                )
            }
        }
    }

    async fn update_item(&mut self, id: &str, version: i32, patch: Patch) {
        match self {
            Via::Ws(c) => {
                let base = upd(id, version);
                let req = match patch {
                    Patch::Title(t) => proto::UpdateWorkItemRequest {
                        title: Some(t.into()),
                        ..base
                    },
                    Patch::Priority(p) => proto::UpdateWorkItemRequest {
                        priority: Some(p.into()),
                        ..base
                    },
                    Patch::Sprint(sp) => proto::UpdateWorkItemRequest {
                        sprint_id: Some(sp),
                        ..base
                    },
                    Patch::Points(n) => proto::UpdateWorkItemRequest {
                        story_points: Some(n),
                        ..base
                    },
                };
                c.update_item(req).await;
            }
            Via::Rest(h, _) => {
                let body = match patch {
                    Patch::Title(t) => json!({"title": t, "expected_version": version}),
                    Patch::Priority(p) => json!({"priority": p, "expected_version": version}),
                    Patch::Sprint(sp) => json!({"sprint_id": sp, "expected_version": version}),
                    Patch::Points(n) => json!({"story_points": n, "expected_version": version}),
                };
                h.put(&format!("/api/v1/work-items/{id}"), body).await.ok();
            }
        }
    }

    async fn delete_item(&mut self, id: &str) {
        match self {
            Via::Ws(c) => {
                let reply = c
                    .request(Payload::DeleteWorkItemRequest(
                        proto::DeleteWorkItemRequest {
                            work_item_id: id.into(),
                        },
                    ))
                    .await;
                expect_payload!(reply, WorkItemDeleted);
            }
            Via::Rest(h, _) => {
                let body = h.delete(&format!("/api/v1/work-items/{id}")).await;
                assert_eq!(body.ok()["deleted_id"], id);
            }
        }
    }

    async fn create_sprint(&mut self, project: &str, name: &str) -> String {
        match self {
            Via::Ws(c) => c.create_sprint(project, name).await.id,
            Via::Rest(h, _) => {
                let (start, end) = sprint_dates();
                let body = json!({"project_id": project, "name": name, "start_date": start, "end_date": end});
                s(&h.post("/api/v1/sprints", body).await.ok()["sprint"], "id")
            }
        }
    }

    async fn rename_sprint(&mut self, id: &str, version: i32, name: &str) {
        match self {
            Via::Ws(c) => {
                c.update_sprint(proto::UpdateSprintRequest {
                    name: Some(name.into()),
                    ..sprint_upd(id, version)
                })
                .await;
            }
            Via::Rest(h, _) => {
                h.put(
                    &format!("/api/v1/sprints/{id}"),
                    json!({"name": name, "expected_version": version}),
                )
                .await
                .ok();
            }
        }
    }

    async fn delete_sprint(&mut self, id: &str) {
        match self {
            Via::Ws(c) => {
                let reply = c
                    .request(Payload::DeleteSprintRequest(proto::DeleteSprintRequest {
                        sprint_id: id.into(),
                    }))
                    .await;
                expect_payload!(reply, SprintDeleted);
            }
            Via::Rest(h, _) => {
                h.delete(&format!("/api/v1/sprints/{id}")).await.ok();
            }
        }
    }

    async fn create_comment(&mut self, item: &str, content: &str) -> String {
        match self {
            Via::Ws(c) => c.create_comment(item, content).await.id,
            Via::Rest(h, _) => s(
                &h.post(
                    &format!("/api/v1/work-items/{item}/comments"),
                    json!({"content": content}),
                )
                .await
                .ok()["comment"],
                "id",
            ),
        }
    }

    async fn update_comment(&mut self, id: &str, content: &str) {
        match self {
            Via::Ws(c) => {
                let reply = c
                    .request(Payload::UpdateCommentRequest(proto::UpdateCommentRequest {
                        comment_id: id.into(),
                        content: content.into(),
                    }))
                    .await;
                expect_payload!(reply, CommentUpdated);
            }
            Via::Rest(h, _) => {
                h.put(
                    &format!("/api/v1/comments/{id}"),
                    json!({"content": content}),
                )
                .await
                .ok();
            }
        }
    }

    async fn delete_comment(&mut self, id: &str) {
        match self {
            Via::Ws(c) => {
                let reply = c
                    .request(Payload::DeleteCommentRequest(proto::DeleteCommentRequest {
                        comment_id: id.into(),
                    }))
                    .await;
                expect_payload!(reply, CommentDeleted);
            }
            Via::Rest(h, _) => {
                h.delete(&format!("/api/v1/comments/{id}")).await.ok();
            }
        }
    }
}

async fn item_in_snapshot(b: &mut WsClient, project: &str, id: &str) -> Option<proto::WorkItem> {
    b.work_items(project)
        .await
        .0
        .into_iter()
        .find(|w| w.id == id)
}

/// Checks an activity entry describes this mutation.
fn check_entry(entry: &proto::ActivityLogEntry, ty: &str, id: &str, action: &str, user: &str) {
    assert_eq!(entry.entity_type, ty, "{entry:?}");
    assert_eq!(entry.entity_id, id, "{entry:?}");
    assert_eq!(entry.action, action, "{entry:?}");
    assert_eq!(entry.user_id, user, "{entry:?}");
}

/// A work item update seen by the subscriber: checks it carries exactly `change`, that the
/// activity entry carries it too, and that the item equals the snapshot. Returns the new version.
async fn expect_item_update(
    b: &mut WsClient,
    seqs: &mut SeqTracker,
    epoch: &str,
    ctx: (&str, &str, &str),
    change: proto::FieldChange,
) -> i32 {
    let (project, id, actor) = ctx;
    let (entry, ev) = recv_mutation(b, seqs, epoch).await;
    assert_eq!(ev.stream, project);
    check_entry(&entry, "work_item", id, "updated", actor);
    let upd = expect_payload!(ev, WorkItemUpdated);
    assert_eq!(upd.user_id, actor);
    assert_eq!(
        upd.changes,
        vec![change.clone()],
        "field changes of {upd:?}"
    );
    assert_eq!(entry.changes, vec![change.clone()]);
    assert_eq!(
        entry.field_name.as_deref(),
        Some(change.field_name.as_str())
    );
    let item = upd.work_item.expect("work_item");
    assert_eq!(Some(&item), item_in_snapshot(b, project, id).await.as_ref());
    item.version
}

/// All twelve events, made through `via`, observed by a separate subscriber.
async fn twelve_events_reach_subscriber(mut via: Via, server: &TestServer) {
    let epoch = server.epoch();
    let actor = via.user();
    let mut b = server.connect(USER_B).await;
    let mut seqs = SeqTracker::default();
    let (before, _) = b.list_projects().await;
    assert!(before.is_empty());

    // 1. ProjectCreated, on the workspace stream.
    let p = via.create_project("Broadcast", "bc").await;
    let (entry, ev) = recv_mutation(&mut b, &mut seqs, &epoch).await;
    assert_eq!((ev.stream.as_str(), ev.seq), ("", 1));
    check_entry(&entry, "project", &p, "created", &actor);
    let created = expect_payload!(ev, ProjectCreated);
    assert_eq!(created.user_id, actor);
    let project = created.project.expect("project");
    assert_eq!(
        (project.id.as_str(), project.key.as_str()),
        (p.as_str(), "BC")
    );
    assert_eq!(project.created_by, actor);
    let (projects, _) = b.list_projects().await;
    assert_eq!(
        projects,
        vec![project.clone()],
        "event carries the full project"
    );

    b.subscribe(&[&p]).await;

    // 2. ProjectUpdated: workspace stream, delivered once although B watches both streams.
    via.update_project_title(&p, project.version, "Broadcast 2")
        .await;
    let (entry, ev) = recv_mutation(&mut b, &mut seqs, &epoch).await;
    assert_eq!((ev.stream.as_str(), ev.seq), ("", 2));
    check_entry(&entry, "project", &p, "updated", &actor);
    let updated = expect_payload!(ev, ProjectUpdated);
    assert_eq!(
        updated.changes,
        vec![field_change(
            "title",
            Some("Broadcast"),
            Some("Broadcast 2")
        )]
    );
    let project = updated.project.expect("project");
    assert_eq!(project.version, 2);
    assert_eq!(b.list_projects().await.0, vec![project.clone()]);

    // 3. WorkItemCreated (epic, then a story under it).
    let ctx = (p.as_str(), "", actor.as_str());
    let epic = via.create_item(&p, WorkItemType::Epic, "Epic", None).await;
    let (entry, ev) = recv_mutation(&mut b, &mut seqs, &epoch).await;
    assert_eq!((ev.stream.as_str(), ev.seq), (p.as_str(), 1));
    check_entry(&entry, "work_item", &epic, "created", &actor);
    let item = expect_payload!(ev, WorkItemCreated)
        .work_item
        .expect("work_item");
    assert_eq!(item.id, epic);
    assert_eq!(item.item_number, 1);
    assert_eq!(
        Some(&item),
        item_in_snapshot(&mut b, &p, &epic).await.as_ref()
    );

    let story = via
        .create_item(&p, WorkItemType::Story, "Story", Some(&epic))
        .await;
    let (_, ev) = recv_mutation(&mut b, &mut seqs, &epoch).await;
    let created = expect_payload!(ev, WorkItemCreated);
    assert_eq!(created.user_id, actor);
    let item = created.work_item.expect("work_item");
    assert_eq!(item.parent_id.as_deref(), Some(epic.as_str()));
    assert_eq!(item.ancestor_ids, vec![epic.clone()]);
    assert_eq!(item.item_number, 2);
    assert_eq!(
        (item.status.as_str(), item.priority.as_str()),
        ("backlog", "medium")
    );
    assert_eq!(
        Some(&item),
        item_in_snapshot(&mut b, &p, &story).await.as_ref()
    );
    let version = item.version;

    // 4. SprintCreated.
    let sprint = via.create_sprint(&p, "Sprint 1").await;
    let (entry, ev) = recv_mutation(&mut b, &mut seqs, &epoch).await;
    check_entry(&entry, "sprint", &sprint, "created", &actor);
    let sp = expect_payload!(ev, SprintCreated).sprint.expect("sprint");
    assert_eq!(sp.id, sprint);
    assert_eq!(b.sprints(&p).await.0, vec![sp.clone()]);

    // 5. WorkItemUpdated, one field at a time: each is broadcast with its FieldChange.
    let ctx = (ctx.0, story.as_str(), ctx.2);
    via.update_item(&story, version, Patch::Title("Story 2"))
        .await;
    let version = expect_item_update(
        &mut b,
        &mut seqs,
        &epoch,
        ctx,
        field_change("title", Some("Story"), Some("Story 2")),
    )
    .await;
    via.update_item(&story, version, Patch::Priority("high"))
        .await;
    let version = expect_item_update(
        &mut b,
        &mut seqs,
        &epoch,
        ctx,
        field_change("priority", Some("medium"), Some("high")),
    )
    .await;
    via.update_item(&story, version, Patch::Sprint(sprint.clone()))
        .await;
    let version = expect_item_update(
        &mut b,
        &mut seqs,
        &epoch,
        ctx,
        field_change("sprint_id", None, Some(&sprint)),
    )
    .await;
    via.update_item(&story, version, Patch::Points(5)).await;
    let version = expect_item_update(
        &mut b,
        &mut seqs,
        &epoch,
        ctx,
        field_change("story_points", None, Some("5")),
    )
    .await;
    assert_eq!(version, 5, "four real updates, four version bumps");

    // 6. SprintUpdated.
    via.rename_sprint(&sprint, sp.version, "Sprint One").await;
    let (entry, ev) = recv_mutation(&mut b, &mut seqs, &epoch).await;
    check_entry(&entry, "sprint", &sprint, "updated", &actor);
    let su = expect_payload!(ev, SprintUpdated);
    assert_eq!(
        su.changes,
        vec![field_change("name", Some("Sprint 1"), Some("Sprint One"))]
    );
    assert_eq!(b.sprints(&p).await.0, vec![su.sprint.expect("sprint")]);

    // 7. CommentCreated / Updated / Deleted.
    let comment = via.create_comment(&story, "first!").await;
    let (entry, ev) = recv_mutation(&mut b, &mut seqs, &epoch).await;
    assert_eq!(ev.stream, p);
    check_entry(&entry, "comment", &comment, "created", &actor);
    let c = expect_payload!(ev, CommentCreated)
        .comment
        .expect("comment");
    assert_eq!(
        (c.work_item_id.as_str(), c.content.as_str()),
        (story.as_str(), "first!")
    );
    assert_eq!(b.comments(&story).await.0, vec![c]);

    via.update_comment(&comment, "edited").await;
    let (entry, ev) = recv_mutation(&mut b, &mut seqs, &epoch).await;
    check_entry(&entry, "comment", &comment, "updated", &actor);
    assert_eq!(
        entry.changes,
        vec![field_change("content", Some("first!"), Some("edited"))]
    );
    let c = expect_payload!(ev, CommentUpdated)
        .comment
        .expect("comment");
    assert_eq!(c.content, "edited");
    assert_eq!(b.comments(&story).await.0, vec![c]);

    via.delete_comment(&comment).await;
    let (entry, ev) = recv_mutation(&mut b, &mut seqs, &epoch).await;
    check_entry(&entry, "comment", &comment, "deleted", &actor);
    let cd = expect_payload!(ev, CommentDeleted);
    assert_eq!(
        (
            cd.comment_id.as_str(),
            cd.work_item_id.as_str(),
            cd.user_id.as_str()
        ),
        (comment.as_str(), story.as_str(), actor.as_str())
    );
    assert!(b.comments(&story).await.0.is_empty());

    // 8. SprintDeleted.
    via.delete_sprint(&sprint).await;
    let (entry, ev) = recv_mutation(&mut b, &mut seqs, &epoch).await;
    check_entry(&entry, "sprint", &sprint, "deleted", &actor);
    assert_eq!(expect_payload!(ev, SprintDeleted).sprint_id, sprint);
    assert!(b.sprints(&p).await.0.is_empty());
    // The story was in it: back to the backlog, as an update of its own.
    let (entry, ev) = recv_mutation(&mut b, &mut seqs, &epoch).await;
    check_entry(&entry, "work_item", &story, "updated", &actor);
    let wu = expect_payload!(ev, WorkItemUpdated);
    assert_eq!(
        wu.changes,
        vec![field_change("sprint_id", Some(&sprint), None)]
    );
    assert_eq!(wu.work_item.expect("item").sprint_id, None);

    // 9. WorkItemDeleted (child first; the parent is blocked while it has children).
    for id in [&story, &epic] {
        via.delete_item(id).await;
        let (entry, ev) = recv_mutation(&mut b, &mut seqs, &epoch).await;
        check_entry(&entry, "work_item", id, "deleted", &actor);
        let wd = expect_payload!(ev, WorkItemDeleted);
        assert_eq!((&wd.work_item_id, &wd.user_id), (id, &actor));
    }
    let (items, snap) = b.work_items(&p).await;
    assert!(items.is_empty());
    assert_eq!(snap.seq, 15, "fifteen events in the project stream");

    // 10. ProjectDeleted, on the workspace stream, delivered once.
    via.delete_project(&p, project.version).await;
    let (entry, ev) = recv_mutation(&mut b, &mut seqs, &epoch).await;
    assert_eq!((ev.stream.as_str(), ev.seq), ("", 3));
    check_entry(&entry, "project", &p, "deleted", &actor);
    let pd = expect_payload!(ev, ProjectDeleted);
    assert_eq!(
        (pd.project_id.as_str(), pd.user_id.as_str()),
        (p.as_str(), actor.as_str())
    );
    assert!(b.list_projects().await.0.is_empty());

    b.expect_no_event().await;
    if let Via::Ws(mut a) = via {
        // The actor never subscribed: it got its responses and nothing else.
        a.expect_no_event().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_twelve_events_over_websocket_reach_subscribers() {
    let server = TestServer::start().await;
    let a = server.connect(USER_A).await;
    twelve_events_reach_subscriber(Via::Ws(Box::new(a)), &server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_twelve_events_over_rest_reach_subscribers() {
    let server = TestServer::start().await;
    let http = server.http(Some(USER_C));
    twelve_events_reach_subscriber(Via::Rest(http, USER_C.to_string()), &server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribed_clients_receive_nothing() {
    let server = TestServer::start().await;
    let epoch = server.epoch();
    let mut a = server.connect(USER_A).await;
    let http = server.http(Some(USER_A));

    let other = a.create_project("Other", "OTHER").await;
    // Watches the project list only.
    let mut lister = server.connect(USER_B).await;
    lister.list_projects().await;
    // Subscribed to another project.
    let mut elsewhere = server.connect(USER_B).await;
    elsewhere.subscribe(&[&other.id]).await;
    // Connected, never subscribed.
    let mut idle = server.connect(USER_C).await;

    let p = a.create_project("Quiet", "QUIET").await;
    let mut seqs = SeqTracker::starting_at("", 1);
    let (_, ev) = recv_mutation(&mut lister, &mut seqs, &epoch).await;
    assert_eq!(
        expect_payload!(ev, ProjectCreated)
            .project
            .expect("project")
            .id,
        p.id
    );

    // Subscribed, then unsubscribed: the reply has no payload and delivery stops.
    let mut left = server.connect(USER_C).await;
    left.subscribe(&[&p.id]).await;
    let reply = left
        .request(Payload::Unsubscribe(proto::Unsubscribe {
            project_ids: vec![p.id.clone()],
            sprint_ids: vec![],
        }))
        .await;
    assert!(reply.payload.is_none(), "Unsubscribe reply: {reply:?}");

    // Work in project P over both transports.
    let epic = a.create_item(&p.id, WorkItemType::Epic, "E", None).await;
    a.update_item(proto::UpdateWorkItemRequest {
        priority: Some("low".into()),
        ..upd(&epic.id, epic.version)
    })
    .await;
    let sprint = a.create_sprint(&p.id, "S").await;
    a.create_comment(&epic.id, "hello").await;
    let body = json!({"project_id": p.id, "item_type": "story", "title": "via REST", "parent_id": epic.id});
    let story = http.post("/api/v1/work-items", body).await.ok()["work_item"].clone();
    http.post(
        &format!("/api/v1/work-items/{}/comments", s(&story, "id")),
        json!({"content": "rest comment"}),
    )
    .await
    .ok();
    http.delete(&format!("/api/v1/sprints/{}", sprint.id))
        .await
        .ok();

    for client in [&mut lister, &mut elsewhere, &mut idle, &mut left] {
        client.expect_no_event().await;
    }

    // A project lifecycle event reaches the list watcher only.
    let reply = a
        .request(Payload::UpdateProjectRequest(proto::UpdateProjectRequest {
            project_id: p.id.clone(),
            expected_version: p.version,
            description: Some("now described".into()),
            ..Default::default()
        }))
        .await;
    expect_payload!(reply, ProjectUpdated);
    let (_, ev) = recv_mutation(&mut lister, &mut seqs, &epoch).await;
    assert_eq!(ev.stream, "");
    expect_payload!(ev, ProjectUpdated);
    for client in [&mut lister, &mut elsewhere, &mut idle, &mut left] {
        client.expect_no_event().await;
    }

    // Control: the other project's subscriber does receive its own project's events.
    a.create_item(&other.id, WorkItemType::Task, "T", None)
        .await;
    let mut seqs = SeqTracker::default();
    let (_, ev) = recv_mutation(&mut elsewhere, &mut seqs, &epoch).await;
    assert_eq!(ev.stream, other.id);
    expect_payload!(ev, WorkItemCreated);
    // The actor itself never subscribed to anything but the responses.
    a.expect_no_event().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn project_events_reach_project_subscribers_without_the_list() {
    let server = TestServer::start().await;
    let epoch = server.epoch();
    let mut a = server.connect(USER_A).await;
    let p = a.create_project("Watched", "WATCH").await;

    let mut b = server.connect(USER_B).await;
    b.subscribe(&[&p.id]).await;

    let reply = a
        .request(Payload::UpdateProjectRequest(proto::UpdateProjectRequest {
            project_id: p.id.clone(),
            expected_version: p.version,
            status: Some(proto::ProjectStatus::Archived as i32),
            ..Default::default()
        }))
        .await;
    let project = expect_payload!(reply, ProjectUpdated)
        .project
        .expect("project");
    let mut seqs = SeqTracker::starting_at("", 1);
    let (_, ev) = recv_mutation(&mut b, &mut seqs, &epoch).await;
    assert_eq!((ev.stream.as_str(), ev.seq), ("", 2));
    let updated = expect_payload!(ev, ProjectUpdated);
    assert_eq!(
        updated.changes,
        vec![field_change("status", Some("active"), Some("archived"))]
    );
    assert_eq!(updated.project.as_ref(), Some(&project));

    let reply = a
        .request(Payload::DeleteProjectRequest(proto::DeleteProjectRequest {
            project_id: p.id.clone(),
            expected_version: project.version,
        }))
        .await;
    expect_payload!(reply, ProjectDeleted);
    let (_, ev) = recv_mutation(&mut b, &mut seqs, &epoch).await;
    assert_eq!((ev.stream.as_str(), ev.seq), ("", 3));
    assert_eq!(expect_payload!(ev, ProjectDeleted).project_id, p.id);
    b.expect_no_event().await;
}

/// Checks one mutation as the subscribed actor sees it.
fn check_actor_order(events: &[WebSocketMessage], response: &WebSocketMessage, epoch: &str) {
    assert_eq!(
        events.len(),
        2,
        "expected ActivityLogCreated and the event before the response, got {events:?}"
    );
    let activity = &events[0];
    let event = &events[1];
    expect_payload!(activity, ActivityLogCreated);
    assert_event_envelope(event, epoch);
    assert_ne!(activity.message_id, response.message_id);
    assert_ne!(event.message_id, response.message_id);
    assert_ne!(activity.message_id, event.message_id);
    assert_eq!(event.payload, response.payload, "the response is the event");
    assert_eq!(
        (response.seq, &response.stream, &response.epoch),
        (event.seq, &event.stream, &event.epoch)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actor_gets_activity_then_event_then_response() {
    let server = TestServer::start().await;
    let epoch = server.epoch();
    let mut a = server.connect(USER_A).await;
    a.list_projects().await;

    let (events, response) = a.request_collect(create_project_req("Order", "ORD")).await;
    check_actor_order(&events, &response, &epoch);
    let p = expect_payload!(response, ProjectCreated)
        .project
        .expect("project");
    a.subscribe(&[&p.id]).await;

    let (events, response) = a
        .request_collect(create_item_req(&p.id, WorkItemType::Epic, "E", None))
        .await;
    check_actor_order(&events, &response, &epoch);
    assert_eq!(response.seq, 1);
    let item = expect_payload!(response, WorkItemCreated)
        .work_item
        .expect("work_item");

    let (events, response) = a
        .request_collect(Payload::UpdateWorkItemRequest(
            proto::UpdateWorkItemRequest {
                story_points: Some(3),
                ..upd(&item.id, item.version)
            },
        ))
        .await;
    check_actor_order(&events, &response, &epoch);
    assert_eq!(response.seq, 2);

    let (events, response) = a
        .request_collect(Payload::CreateCommentRequest(proto::CreateCommentRequest {
            work_item_id: item.id.clone(),
            content: "c".into(),
        }))
        .await;
    check_actor_order(&events, &response, &epoch);
    let comment = expect_payload!(response, CommentCreated)
        .comment
        .expect("comment");

    let (events, response) = a
        .request_collect(Payload::DeleteCommentRequest(proto::DeleteCommentRequest {
            comment_id: comment.id,
        }))
        .await;
    check_actor_order(&events, &response, &epoch);

    let (events, response) = a
        .request_collect(Payload::DeleteWorkItemRequest(
            proto::DeleteWorkItemRequest {
                work_item_id: item.id,
            },
        ))
        .await;
    check_actor_order(&events, &response, &epoch);
    assert_eq!(response.seq, 5);

    // A project event reaches the actor once although it watches both streams.
    let (events, response) = a
        .request_collect(Payload::UpdateProjectRequest(proto::UpdateProjectRequest {
            project_id: p.id.clone(),
            expected_version: p.version,
            title: Some("Order 2".into()),
            ..Default::default()
        }))
        .await;
    check_actor_order(&events, &response, &epoch);
    assert_eq!((response.stream.as_str(), response.seq), ("", 2));
    a.expect_no_event().await;

    // An actor that is not subscribed gets only the response, still numbered.
    let mut lone = server.connect(USER_B).await;
    let (events, response) = lone
        .request_collect(create_item_req(&p.id, WorkItemType::Task, "T", None))
        .await;
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(
        (
            response.stream.as_str(),
            response.seq,
            response.epoch.as_str()
        ),
        (p.id.as_str(), 6, epoch.as_str())
    );
    lone.expect_no_event().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_that_changes_nothing_writes_and_broadcasts_nothing() {
    let server = TestServer::start().await;
    let mut a = server.connect(USER_A).await;
    let http = server.http(Some(USER_A));
    let p = a.create_project("Noop", "NOOP").await;
    let item = a.create_item(&p.id, WorkItemType::Task, "same", None).await;
    let sprint = a.create_sprint(&p.id, "same").await;
    let comment = a.create_comment(&item.id, "same").await;
    let mut obs = server.connect(USER_B).await;
    obs.list_projects().await;
    obs.subscribe(&[&p.id]).await;
    let (before, snap) = obs.work_items(&p.id).await;

    // Values equal to the stored ones (after trimming), over WebSocket...
    let reply = a
        .request(Payload::UpdateWorkItemRequest(
            proto::UpdateWorkItemRequest {
                title: Some("  same ".into()),
                priority: Some("medium".into()),
                status: Some("backlog".into()),
                assignee_id: Some(String::new()),
                ..upd(&item.id, item.version)
            },
        ))
        .await;
    let updated = expect_payload!(reply, WorkItemUpdated);
    assert!(updated.changes.is_empty(), "{updated:?}");
    assert_eq!(updated.work_item.as_ref(), Some(&item));
    assert_eq!(reply.seq, 0, "nothing was appended to the stream");
    let reply = a
        .request(Payload::UpdateProjectRequest(proto::UpdateProjectRequest {
            project_id: p.id.clone(),
            expected_version: p.version,
            title: Some("Noop".into()),
            ..Default::default()
        }))
        .await;
    assert!(expect_payload!(reply, ProjectUpdated).changes.is_empty());
    a.update_sprint(proto::UpdateSprintRequest {
        name: Some("same".into()),
        ..sprint_upd(&sprint.id, sprint.version)
    })
    .await;
    let reply = a
        .request(Payload::UpdateCommentRequest(proto::UpdateCommentRequest {
            comment_id: comment.id.clone(),
            content: "same".into(),
        }))
        .await;
    expect_payload!(reply, CommentUpdated);

    // ... and over REST.
    let r = http
        .put(
            &format!("/api/v1/work-items/{}", item.id),
            json!({"title": "same", "priority": "medium", "expected_version": item.version}),
        )
        .await;
    assert_eq!(n(&r.ok()["work_item"], "version"), i64::from(item.version));
    let r = http
        .put(
            &format!("/api/v1/projects/{}", p.id),
            json!({"status": "active", "expected_version": p.version}),
        )
        .await;
    assert_eq!(n(&r.ok()["project"], "version"), i64::from(p.version));

    obs.expect_no_event().await;
    let (after, snap_after) = obs.work_items(&p.id).await;
    assert_eq!(after, before);
    assert_eq!(snap_after.seq, snap.seq);
    let log = obs
        .request(Payload::GetActivityLogRequest(
            proto::GetActivityLogRequest {
                entity_type: "work_item".into(),
                entity_id: item.id.clone(),
                limit: 0,
                offset: 0,
            },
        ))
        .await;
    assert_eq!(expect_payload!(log, ActivityLogList).total_count, 1);
}

/// Deleting a sprint takes its live items back to the backlog: the answer is SprintDeleted,
/// and every subscriber gets SprintDeleted, then one WorkItemUpdated per item (sprint cleared,
/// version bumped), with consecutive seqs. Items elsewhere, and deleted ones, are untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_sprint_returns_its_items_to_the_backlog() {
    let server = TestServer::start().await;
    let mut alice = server.connect(USER_A).await;
    let project = alice.create_project("Sprints", "SPR").await;
    let sprint = alice.create_sprint(&project.id, "Sprint 1").await;
    let mut in_sprint = Vec::new();
    for title in ["one", "two", "gone"] {
        let item = alice
            .create_item(&project.id, WorkItemType::Task, title, None)
            .await;
        let item = alice
            .update_item(proto::UpdateWorkItemRequest {
                sprint_id: Some(sprint.id.clone()),
                ..upd(&item.id, item.version)
            })
            .await;
        in_sprint.push(item);
    }
    let elsewhere = alice
        .create_item(&project.id, WorkItemType::Task, "backlog", None)
        .await;
    let gone = in_sprint.pop().expect("three items");
    alice
        .request(Payload::DeleteWorkItemRequest(
            proto::DeleteWorkItemRequest {
                work_item_id: gone.id.clone(),
            },
        ))
        .await;

    let mut bob = server.connect(USER_B).await;
    let (_, snapshot) = bob.work_items(&project.id).await;
    bob.subscribe(&[&project.id]).await;
    let reply = alice
        .request(Payload::DeleteSprintRequest(proto::DeleteSprintRequest {
            sprint_id: sprint.id.clone(),
        }))
        .await;
    assert_eq!(expect_payload!(reply, SprintDeleted).sprint_id, sprint.id);

    let mut events = Vec::new();
    while events.len() < 3 {
        let e = bob.next_event(TIMEOUT).await;
        if e.seq > 0 {
            events.push(e);
        }
    }
    bob.expect_no_event().await;
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [snapshot.seq + 1, snapshot.seq + 2, snapshot.seq + 3]);
    assert_eq!(
        expect_payload!(events[0], SprintDeleted).sprint_id,
        sprint.id
    );
    for (event, before) in events[1..].iter().zip(&in_sprint) {
        let updated = expect_payload!(event, WorkItemUpdated);
        let item = updated.work_item.clone().expect("item");
        assert_eq!(item.id, before.id);
        assert_eq!(item.sprint_id, None);
        assert_eq!(item.version, before.version + 1);
        assert_eq!(updated.changes.len(), 1);
        assert_eq!(updated.changes[0].field_name, "sprint_id");
        assert_eq!(
            updated.changes[0].old_value.as_deref(),
            Some(sprint.id.as_str())
        );
    }

    let (items, _) = bob.work_items(&project.id).await;
    assert!(items.iter().all(|i| i.sprint_id.is_none()), "{items:?}");
    let untouched = items
        .iter()
        .find(|i| i.id == elsewhere.id)
        .expect("backlog item");
    assert_eq!(untouched.version, elsewhere.version);
    assert!(
        items.iter().all(|i| i.id != gone.id),
        "deleted items stay deleted"
    );
}

/// What `WsClient::barrier` (and so every "received nothing" check) relies on: a connection's
/// answer to a read comes after every event published to it before the read was taken, whoever
/// caused the events (here another connection's writes, each acknowledged before the read was
/// sent, and REST's). The subscriber does not wait for events: it only reads until the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_is_answered_after_the_events_published_before_it() {
    let server = TestServer::start().await;
    let mut a = server.connect(USER_A).await;
    let mut b = server.connect(USER_B).await;
    let p = a.create_project("Barrier", "BARRIER").await;
    b.subscribe(&[&p.id]).await;
    let mut acked = Vec::new();
    for n in 0..20 {
        let reply = a
            .request(create_item_req(
                &p.id,
                WorkItemType::Task,
                &format!("t{n}"),
                None,
            ))
            .await;
        expect_payload!(reply, WorkItemCreated);
        acked.push(reply.seq);
    }
    let rest = server
        .http(Some(USER_A))
        .post(
            "/api/v1/work-items",
            json!({"project_id": p.id, "item_type": "task", "title": "over REST"}),
        )
        .await;
    rest.ok();
    acked.push(acked.last().copied().unwrap_or(0) + 1);

    let events = b.drain_events().await;
    let seqs: Vec<u64> = events.iter().filter(|e| e.seq > 0).map(|e| e.seq).collect();
    assert_eq!(seqs, acked, "{events:?}");
    b.expect_no_event().await;
}
