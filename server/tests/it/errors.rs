//! Bad input over WebSocket: every malformed frame, unknown payload, invalid id, over-long or
//! blank field, bad enum value and broken business rule gets its Error, the connection stays
//! usable, and the data (and every stream's seq) is exactly as it was.

use crate::common::*;
use pm_shared::proto::{self, Payload, WebSocketMessage, WorkItemType};
use tokio_tungstenite::tungstenite::Message;

const NOPE: &str = "not-a-uuid";

fn random_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Everything a client can read, with the stream positions the snapshots report.
#[derive(Debug, PartialEq)]
struct World {
    projects: Vec<proto::Project>,
    workspace_seq: u64,
    items: Vec<(String, Vec<proto::WorkItem>, u64)>,
    sprints: Vec<proto::Sprint>,
    comments: Vec<proto::Comment>,
}

struct Fixture {
    a: WsClient,
    other: WsClient,
    obs: WsClient,
    p: String,
    q: String,
    epic: proto::WorkItem,
    story: proto::WorkItem,
    task: proto::WorkItem,
    planned: proto::Sprint,
    active: proto::Sprint,
    done: proto::Sprint,
    comment: proto::Comment,
    baseline: World,
}

impl Fixture {
    async fn new(server: &TestServer) -> Fixture {
        let mut a = server.connect(USER_A).await;
        let p = a.create_project("Errors", "ERR").await.id;
        let q = a.create_project("Elsewhere", "ELSE").await.id;
        let epic = a.create_item(&p, WorkItemType::Epic, "Epic", None).await;
        let story = a
            .create_item(&p, WorkItemType::Story, "Story", Some(&epic.id))
            .await;
        let task = a
            .create_item(&p, WorkItemType::Task, "Task", Some(&story.id))
            .await;
        let comment = a.create_comment(&story.id, "mine").await;

        // A completed sprint, an active one and a planned one.
        let done = a.create_sprint(&p, "Done").await;
        let done = a
            .update_sprint(proto::UpdateSprintRequest {
                status: Some(proto::SprintStatus::Active as i32),
                ..sprint_upd(&done.id, done.version)
            })
            .await;
        let done = a
            .update_sprint(proto::UpdateSprintRequest {
                status: Some(proto::SprintStatus::Completed as i32),
                ..sprint_upd(&done.id, done.version)
            })
            .await;
        let active = a.create_sprint(&p, "Active").await;
        let active = a
            .update_sprint(proto::UpdateSprintRequest {
                status: Some(proto::SprintStatus::Active as i32),
                ..sprint_upd(&active.id, active.version)
            })
            .await;
        let planned = a.create_sprint(&p, "Planned").await;

        let other = server.connect(USER_C).await;
        let mut obs = server.connect(USER_B).await;
        obs.list_projects().await;
        obs.subscribe(&[&p, &q]).await;

        let mut f = Fixture {
            a,
            other,
            obs,
            p,
            q,
            epic,
            story,
            task,
            planned,
            active,
            done,
            comment,
            baseline: World {
                projects: vec![],
                workspace_seq: 0,
                items: vec![],
                sprints: vec![],
                comments: vec![],
            },
        };
        f.baseline = f.world().await;
        assert_eq!(f.baseline.projects.len(), 2);
        assert_eq!(f.baseline.items[0].1.len(), 3);
        assert_eq!(f.baseline.sprints.len(), 3);
        f
    }

    async fn world(&mut self) -> World {
        let (projects, list) = self.a.list_projects().await;
        let mut items = Vec::new();
        for p in [self.p.clone(), self.q.clone()] {
            let (list, reply) = self.a.work_items(&p).await;
            items.push((p, list, reply.seq));
        }
        let sprints = self.a.sprints(&self.p).await.0;
        let comments = self.a.comments(&self.story.id).await.0;
        World {
            projects,
            workspace_seq: list.seq,
            items,
            sprints,
            comments,
        }
    }

    async fn assert_untouched(&mut self, what: &str) {
        let now = self.world().await;
        assert!(
            now == self.baseline,
            "{what}: data changed\nbefore: {:?}\nafter:  {now:?}",
            self.baseline
        );
        // The actor's own listing subscribed it to the workspace stream; nothing may arrive.
        assert!(
            self.a.take_events().is_empty(),
            "{what}: events reached the actor"
        );
    }

    /// Sends `payload` as `client` ("a" or "other") and checks the Error and the data.
    async fn rejects_as(
        &mut self,
        as_other: bool,
        what: &str,
        payload: Payload,
        code: &str,
        field: Option<&str>,
    ) {
        let id = random_id();
        let client = if as_other {
            &mut self.other
        } else {
            &mut self.a
        };
        let reply = client.request_with_id(&id, payload).await;
        check_error(what, &reply, &id, code, field);
        self.assert_untouched(what).await;
    }

    async fn rejects(&mut self, what: &str, payload: Payload, code: &str, field: Option<&str>) {
        self.rejects_as(false, what, payload, code, field).await;
    }
}

fn check_error(what: &str, reply: &WebSocketMessage, id: &str, code: &str, field: Option<&str>) {
    assert_eq!(
        reply.message_id, id,
        "{what}: the error must echo message_id"
    );
    let Some(Payload::Error(err)) = &reply.payload else {
        panic!("{what}: expected Error {code}, got {reply:?}");
    };
    assert_eq!(err.code, code, "{what}: {err:?}");
    assert!(!err.message.is_empty(), "{what}: {err:?}");
    if let Some(field) = field {
        assert_eq!(err.field.as_deref(), Some(field), "{what}: {err:?}");
    }
    assert_eq!(reply.seq, 0, "{what}: an error has no seq");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_get_errors_and_the_connection_stays_usable() {
    let server = TestServer::start().await;
    let mut f = Fixture::new(&server).await;

    // Not a protobuf message (field 1 with the invalid wire type 7).
    f.a.send_raw(Message::Binary(vec![0x0f, 0xff, 0xff].into()))
        .await;
    let reply = f.a.await_response("").await;
    check_error("malformed frame", &reply, "", "INVALID_MESSAGE", None);
    f.a.ping().await;
    f.assert_untouched("malformed frame").await;

    // A truncated message (a length prefix that runs past the end).
    f.a.send_raw(Message::Binary(vec![0x0a, 0x20, b'x'].into()))
        .await;
    let reply = f.a.await_response("").await;
    check_error("truncated frame", &reply, "", "INVALID_MESSAGE", None);
    f.assert_untouched("truncated frame").await;

    // Text frames are not the protocol.
    f.a.send_raw(Message::text(
        r#"{"create_project_request":{"title":"x","key":"XX"}}"#,
    ))
    .await;
    let reply = f.a.await_response("").await;
    check_error("text frame", &reply, "", "INVALID_MESSAGE", None);
    f.a.ping().await;
    f.assert_untouched("text frame").await;

    // An envelope without a payload.
    let id = random_id();
    let reply =
        f.a.send_and_await(&WebSocketMessage {
            message_id: id.clone(),
            ..Default::default()
        })
        .await;
    check_error("missing payload", &reply, &id, "INVALID_MESSAGE", None);
    f.assert_untouched("missing payload").await;

    // Payloads only the server sends.
    let server_only = [
        ("Pong", Payload::Pong(proto::Pong { timestamp: 1 })),
        (
            "WorkItemsList",
            Payload::WorkItemsList(proto::WorkItemsList::default()),
        ),
        (
            "ProjectList",
            Payload::ProjectList(proto::ProjectList::default()),
        ),
        (
            "WorkItemCreated",
            Payload::WorkItemCreated(proto::WorkItemCreated {
                work_item: Some(proto::WorkItem {
                    id: random_id(),
                    project_id: f.p.clone(),
                    title: "forged".into(),
                    ..Default::default()
                }),
                user_id: USER_A.into(),
                ..Default::default()
            }),
        ),
        (
            "ProjectDeleted",
            Payload::ProjectDeleted(proto::ProjectDeleted {
                project_id: f.p.clone(),
                user_id: USER_A.into(),
            }),
        ),
        (
            "ActivityLogCreated",
            Payload::ActivityLogCreated(proto::ActivityLogCreated::default()),
        ),
        (
            "Error",
            Payload::Error(proto::Error {
                code: "X".into(),
                message: "y".into(),
                field: None,
            }),
        ),
        (
            "ResyncRequired",
            Payload::ResyncRequired(proto::ResyncRequired::default()),
        ),
    ];
    for (name, payload) in server_only {
        f.rejects(name, payload, "INVALID_MESSAGE", None).await;
    }
    f.a.ping().await;
    f.obs.expect_no_event().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_and_unknown_ids_are_rejected() {
    let server = TestServer::start().await;
    let mut f = Fixture::new(&server).await;
    let p = f.p.clone();
    let story = f.story.clone();
    let v = "VALIDATION_ERROR";

    // Ids that are not UUIDs: VALIDATION_ERROR naming the field.
    let cases: Vec<(&str, Payload, &str)> = vec![
        (
            "create item in project 'nope'",
            create_item_req(NOPE, WorkItemType::Task, "t", None),
            "project_id",
        ),
        (
            "create item with parent 'nope'",
            create_item_req(&p, WorkItemType::Task, "t", Some(NOPE)),
            "parent_id",
        ),
        (
            "update item 'nope'",
            Payload::UpdateWorkItemRequest(proto::UpdateWorkItemRequest {
                title: Some("x".into()),
                ..upd(NOPE, 1)
            }),
            "work_item_id",
        ),
        (
            "assign to 'nope'",
            Payload::UpdateWorkItemRequest(proto::UpdateWorkItemRequest {
                assignee_id: Some(NOPE.into()),
                ..upd(&story.id, story.version)
            }),
            "assignee_id",
        ),
        (
            "sprint 'nope'",
            Payload::UpdateWorkItemRequest(proto::UpdateWorkItemRequest {
                sprint_id: Some(NOPE.into()),
                ..upd(&story.id, story.version)
            }),
            "sprint_id",
        ),
        (
            "reparent to 'nope'",
            Payload::UpdateWorkItemRequest(proto::UpdateWorkItemRequest {
                parent_id: Some(NOPE.into()),
                update_parent: true,
                ..upd(&story.id, story.version)
            }),
            "parent_id",
        ),
        (
            "delete item 'nope'",
            Payload::DeleteWorkItemRequest(proto::DeleteWorkItemRequest {
                work_item_id: NOPE.into(),
            }),
            "work_item_id",
        ),
        (
            "list items of 'nope'",
            Payload::GetWorkItemsRequest(proto::GetWorkItemsRequest {
                project_id: NOPE.into(),
                since_timestamp: None,
            }),
            "project_id",
        ),
        (
            "subscribe to 'nope'",
            Payload::Subscribe(proto::Subscribe {
                project_ids: vec![NOPE.into()],
                ..Default::default()
            }),
            "project_ids",
        ),
        (
            "update project 'nope'",
            Payload::UpdateProjectRequest(proto::UpdateProjectRequest {
                project_id: NOPE.into(),
                expected_version: 1,
                title: Some("x".into()),
                ..Default::default()
            }),
            "project_id",
        ),
        (
            "delete project 'nope'",
            Payload::DeleteProjectRequest(proto::DeleteProjectRequest {
                project_id: NOPE.into(),
                expected_version: 1,
            }),
            "project_id",
        ),
        (
            "create sprint in 'nope'",
            create_sprint_req(NOPE, "s"),
            "project_id",
        ),
        (
            "update sprint 'nope'",
            Payload::UpdateSprintRequest(proto::UpdateSprintRequest {
                name: Some("x".into()),
                ..sprint_upd(NOPE, 1)
            }),
            "sprint_id",
        ),
        (
            "delete sprint 'nope'",
            Payload::DeleteSprintRequest(proto::DeleteSprintRequest {
                sprint_id: NOPE.into(),
            }),
            "sprint_id",
        ),
        (
            "comment on 'nope'",
            Payload::CreateCommentRequest(proto::CreateCommentRequest {
                work_item_id: NOPE.into(),
                content: "c".into(),
            }),
            "work_item_id",
        ),
        (
            "edit comment 'nope'",
            Payload::UpdateCommentRequest(proto::UpdateCommentRequest {
                comment_id: NOPE.into(),
                content: "c".into(),
            }),
            "comment_id",
        ),
        (
            "delete comment 'nope'",
            Payload::DeleteCommentRequest(proto::DeleteCommentRequest {
                comment_id: NOPE.into(),
            }),
            "comment_id",
        ),
        (
            "activity of 'nope'",
            Payload::GetActivityLogRequest(proto::GetActivityLogRequest {
                entity_type: "work_item".into(),
                entity_id: NOPE.into(),
                limit: 0,
                offset: 0,
            }),
            "entity_id",
        ),
    ];
    for (what, payload, field) in cases {
        f.rejects(what, payload, v, Some(field)).await;
    }

    // Well-formed ids that name nothing.
    let ghost = random_id();
    let not_found: Vec<(&str, Payload)> = vec![
        (
            "create item in unknown project",
            create_item_req(&ghost, WorkItemType::Task, "t", None),
        ),
        (
            "update unknown item",
            Payload::UpdateWorkItemRequest(proto::UpdateWorkItemRequest {
                title: Some("x".into()),
                ..upd(&ghost, 1)
            }),
        ),
        (
            "delete unknown item",
            Payload::DeleteWorkItemRequest(proto::DeleteWorkItemRequest {
                work_item_id: ghost.clone(),
            }),
        ),
        (
            "list items of unknown project",
            Payload::GetWorkItemsRequest(proto::GetWorkItemsRequest {
                project_id: ghost.clone(),
                since_timestamp: None,
            }),
        ),
        (
            "list sprints of unknown project",
            Payload::GetSprintsRequest(proto::GetSprintsRequest {
                project_id: ghost.clone(),
            }),
        ),
        (
            "list comments of unknown item",
            Payload::GetCommentsRequest(proto::GetCommentsRequest {
                work_item_id: ghost.clone(),
            }),
        ),
        (
            "update unknown project",
            Payload::UpdateProjectRequest(proto::UpdateProjectRequest {
                project_id: ghost.clone(),
                expected_version: 1,
                title: Some("x".into()),
                ..Default::default()
            }),
        ),
        (
            "delete unknown project",
            Payload::DeleteProjectRequest(proto::DeleteProjectRequest {
                project_id: ghost.clone(),
                expected_version: 1,
            }),
        ),
        (
            "create sprint in unknown project",
            create_sprint_req(&ghost, "s"),
        ),
        (
            "update unknown sprint",
            Payload::UpdateSprintRequest(proto::UpdateSprintRequest {
                name: Some("x".into()),
                ..sprint_upd(&ghost, 1)
            }),
        ),
        (
            "delete unknown sprint",
            Payload::DeleteSprintRequest(proto::DeleteSprintRequest {
                sprint_id: ghost.clone(),
            }),
        ),
        (
            "comment on unknown item",
            Payload::CreateCommentRequest(proto::CreateCommentRequest {
                work_item_id: ghost.clone(),
                content: "c".into(),
            }),
        ),
        (
            "edit unknown comment",
            Payload::UpdateCommentRequest(proto::UpdateCommentRequest {
                comment_id: ghost.clone(),
                content: "c".into(),
            }),
        ),
        (
            "delete unknown comment",
            Payload::DeleteCommentRequest(proto::DeleteCommentRequest {
                comment_id: ghost.clone(),
            }),
        ),
        (
            "activity of unknown item",
            Payload::GetActivityLogRequest(proto::GetActivityLogRequest {
                entity_type: "work_item".into(),
                entity_id: ghost.clone(),
                limit: 0,
                offset: 0,
            }),
        ),
    ];
    for (what, payload) in not_found {
        f.rejects(what, payload, "NOT_FOUND", None).await;
    }

    // References to unknown entities inside a valid request name the field.
    f.rejects(
        "unknown parent",
        create_item_req(&p, WorkItemType::Story, "s", Some(&ghost)),
        v,
        Some("parent_id"),
    )
    .await;
    f.rejects(
        "unknown sprint",
        Payload::UpdateWorkItemRequest(proto::UpdateWorkItemRequest {
            sprint_id: Some(ghost.clone()),
            ..upd(&story.id, story.version)
        }),
        v,
        Some("sprint_id"),
    )
    .await;
    f.rejects(
        "unknown activity entity type",
        Payload::GetActivityLogRequest(proto::GetActivityLogRequest {
            entity_type: "planet".into(),
            entity_id: story.id.clone(),
            limit: 0,
            offset: 0,
        }),
        v,
        Some("entity_type"),
    )
    .await;
    f.obs.expect_no_event().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_long_blank_and_out_of_range_values_are_rejected() {
    let server = TestServer::start().await;
    let mut f = Fixture::new(&server).await;
    let p = f.p.clone();
    let story = f.story.clone();
    let long_title = "t".repeat(201);
    let inv = "INVALID_MESSAGE";
    let v = "VALIDATION_ERROR";

    let item = |title: &str,
                description: Option<String>,
                status: Option<&str>,
                priority: Option<&str>,
                ty: i32| {
        Payload::CreateWorkItemRequest(proto::CreateWorkItemRequest {
            item_type: ty,
            title: title.into(),
            description,
            parent_id: None,
            project_id: p.clone(),
            status: status.map(str::to_string),
            priority: priority.map(str::to_string),
        })
    };
    let task = WorkItemType::Task as i32;
    let cases: Vec<(&str, Payload, &str, Option<&str>)> = vec![
        (
            "title of 201 characters",
            item(&long_title, None, None, None, task),
            inv,
            None,
        ),
        (
            "blank title",
            item("   \t  ", None, None, None, task),
            inv,
            None,
        ),
        ("empty title", item("", None, None, None, task), inv, None),
        (
            "description of 10001 characters",
            item("ok", Some("d".repeat(10_001)), None, None, task),
            inv,
            None,
        ),
        (
            "status 'blocked'",
            item("ok", None, Some("blocked"), None, task),
            v,
            Some("status"),
        ),
        (
            "status 'Done'",
            item("ok", None, Some("Done"), None, task),
            v,
            Some("status"),
        ),
        (
            "priority 'urgent'",
            item("ok", None, None, Some("urgent"), task),
            v,
            Some("priority"),
        ),
        (
            "item_type 0",
            item("ok", None, None, None, 0),
            v,
            Some("item_type"),
        ),
        (
            "item_type 1",
            item("ok", None, None, None, 1),
            v,
            Some("item_type"),
        ),
        (
            "item_type 99",
            item("ok", None, None, None, 99),
            v,
            Some("item_type"),
        ),
        (
            "update: title of 201 characters",
            Payload::UpdateWorkItemRequest(proto::UpdateWorkItemRequest {
                title: Some(long_title.clone()),
                ..upd(&story.id, story.version)
            }),
            inv,
            None,
        ),
        (
            "update: blank title",
            Payload::UpdateWorkItemRequest(proto::UpdateWorkItemRequest {
                title: Some("  ".into()),
                ..upd(&story.id, story.version)
            }),
            inv,
            None,
        ),
        (
            "update: description of 10001 characters",
            Payload::UpdateWorkItemRequest(proto::UpdateWorkItemRequest {
                description: Some("d".repeat(10_001)),
                ..upd(&story.id, story.version)
            }),
            inv,
            None,
        ),
        (
            "update: status 'blocked'",
            Payload::UpdateWorkItemRequest(proto::UpdateWorkItemRequest {
                status: Some("blocked".into()),
                ..upd(&story.id, story.version)
            }),
            v,
            Some("status"),
        ),
        (
            "update: priority 'URGENT'",
            Payload::UpdateWorkItemRequest(proto::UpdateWorkItemRequest {
                priority: Some("URGENT".into()),
                ..upd(&story.id, story.version)
            }),
            v,
            Some("priority"),
        ),
        (
            "update: 101 story points",
            Payload::UpdateWorkItemRequest(proto::UpdateWorkItemRequest {
                story_points: Some(101),
                ..upd(&story.id, story.version)
            }),
            v,
            Some("story_points"),
        ),
        (
            "update: negative story points",
            Payload::UpdateWorkItemRequest(proto::UpdateWorkItemRequest {
                story_points: Some(-1),
                ..upd(&story.id, story.version)
            }),
            v,
            Some("story_points"),
        ),
        (
            "update: negative position",
            Payload::UpdateWorkItemRequest(proto::UpdateWorkItemRequest {
                position: Some(-1),
                ..upd(&story.id, story.version)
            }),
            v,
            Some("position"),
        ),
        (
            "update: a valid change with a stale version",
            Payload::UpdateWorkItemRequest(proto::UpdateWorkItemRequest {
                title: Some("fine".into()),
                ..upd(&story.id, story.version + 1)
            }),
            "CONFLICT",
            None,
        ),
        (
            "project title of 201 characters",
            create_project_req(&long_title, "LONG"),
            inv,
            None,
        ),
        (
            "blank project title",
            create_project_req("  ", "BLANK"),
            inv,
            None,
        ),
        (
            "key of one character",
            create_project_req("Key", "K"),
            inv,
            None,
        ),
        (
            "key of 21 characters",
            create_project_req("Key", &"K".repeat(21)),
            inv,
            None,
        ),
        (
            "key with a dash",
            create_project_req("Key", "A-B"),
            inv,
            None,
        ),
        (
            "project status 7",
            Payload::UpdateProjectRequest(proto::UpdateProjectRequest {
                project_id: p.clone(),
                expected_version: 1,
                status: Some(7),
                ..Default::default()
            }),
            v,
            Some("status"),
        ),
        (
            "project update with a stale version",
            Payload::UpdateProjectRequest(proto::UpdateProjectRequest {
                project_id: p.clone(),
                expected_version: 9,
                title: Some("x".into()),
                ..Default::default()
            }),
            "CONFLICT",
            None,
        ),
        (
            "project delete with a stale version",
            Payload::DeleteProjectRequest(proto::DeleteProjectRequest {
                project_id: f.q.clone(),
                expected_version: 9,
            }),
            "CONFLICT",
            None,
        ),
        (
            "comment of 5001 characters",
            Payload::CreateCommentRequest(proto::CreateCommentRequest {
                work_item_id: story.id.clone(),
                content: "c".repeat(5_001),
            }),
            inv,
            None,
        ),
        (
            "blank comment",
            Payload::CreateCommentRequest(proto::CreateCommentRequest {
                work_item_id: story.id.clone(),
                content: " \n ".into(),
            }),
            inv,
            None,
        ),
        (
            "comment edit of 5001 characters",
            Payload::UpdateCommentRequest(proto::UpdateCommentRequest {
                comment_id: f.comment.id.clone(),
                content: "c".repeat(5_001),
            }),
            inv,
            None,
        ),
        (
            "sprint name of 101 characters",
            create_sprint_req(&p, &"s".repeat(101)),
            inv,
            None,
        ),
        ("blank sprint name", create_sprint_req(&p, "  "), inv, None),
    ];
    for (what, payload, code, field) in cases {
        f.rejects(what, payload, code, field).await;
    }

    // Sprint dates: end before start, and far outside the accepted window.
    let (start, end) = sprint_dates();
    let sprint = |start_date: i64, end_date: i64| {
        Payload::CreateSprintRequest(proto::CreateSprintRequest {
            project_id: p.clone(),
            name: "dates".into(),
            goal: None,
            start_date,
            end_date,
        })
    };
    f.rejects("end before start", sprint(end, start), v, Some("end_date"))
        .await;
    f.rejects("start in 1970", sprint(0, end), v, Some("start_date"))
        .await;
    f.obs.expect_no_event().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn business_rules_are_enforced() {
    let server = TestServer::start().await;
    let mut f = Fixture::new(&server).await;
    let (p, q) = (f.p.clone(), f.q.clone());
    let (epic, story, task) = (f.epic.clone(), f.story.clone(), f.task.clone());
    let v = "VALIDATION_ERROR";

    // Hierarchy: epic > story > task only.
    f.rejects(
        "task under an epic",
        create_item_req(&p, WorkItemType::Task, "t", Some(&epic.id)),
        v,
        Some("parent_id"),
    )
    .await;
    f.rejects(
        "story under a story",
        create_item_req(&p, WorkItemType::Story, "s", Some(&story.id)),
        v,
        Some("parent_id"),
    )
    .await;
    f.rejects(
        "epic under an epic",
        create_item_req(&p, WorkItemType::Epic, "e", Some(&epic.id)),
        v,
        Some("parent_id"),
    )
    .await;
    f.rejects(
        "parent in another project",
        create_item_req(&q, WorkItemType::Story, "s", Some(&epic.id)),
        v,
        Some("parent_id"),
    )
    .await;
    f.rejects(
        "reparent a task under an epic",
        Payload::UpdateWorkItemRequest(proto::UpdateWorkItemRequest {
            parent_id: Some(epic.id.clone()),
            update_parent: true,
            ..upd(&task.id, task.version)
        }),
        v,
        Some("parent_id"),
    )
    .await;

    // Cycles on reparent: an item under itself, an ancestor under its descendant.
    f.rejects(
        "reparent a story under itself",
        Payload::UpdateWorkItemRequest(proto::UpdateWorkItemRequest {
            parent_id: Some(story.id.clone()),
            update_parent: true,
            ..upd(&story.id, story.version)
        }),
        v,
        Some("parent_id"),
    )
    .await;
    f.rejects(
        "reparent an epic under its grandchild",
        Payload::UpdateWorkItemRequest(proto::UpdateWorkItemRequest {
            parent_id: Some(task.id.clone()),
            update_parent: true,
            ..upd(&epic.id, epic.version)
        }),
        v,
        Some("parent_id"),
    )
    .await;

    // Deleting what still has children.
    f.rejects(
        "delete an epic with a story",
        Payload::DeleteWorkItemRequest(proto::DeleteWorkItemRequest {
            work_item_id: epic.id.clone(),
        }),
        "DELETE_BLOCKED",
        None,
    )
    .await;
    f.rejects(
        "delete a story with a task",
        Payload::DeleteWorkItemRequest(proto::DeleteWorkItemRequest {
            work_item_id: story.id.clone(),
        }),
        "DELETE_BLOCKED",
        None,
    )
    .await;
    f.rejects(
        "delete a project with items",
        Payload::DeleteProjectRequest(proto::DeleteProjectRequest {
            project_id: p.clone(),
            expected_version: 1,
        }),
        "DELETE_BLOCKED",
        None,
    )
    .await;

    // Sprints: completed ones are frozen, transitions follow the life cycle, one active sprint.
    let done = f.done.clone();
    f.rejects(
        "rename a completed sprint",
        Payload::UpdateSprintRequest(proto::UpdateSprintRequest {
            name: Some("again".into()),
            ..sprint_upd(&done.id, done.version)
        }),
        "CONFLICT",
        None,
    )
    .await;
    f.rejects(
        "reopen a completed sprint",
        Payload::UpdateSprintRequest(proto::UpdateSprintRequest {
            status: Some(proto::SprintStatus::Active as i32),
            ..sprint_upd(&done.id, done.version)
        }),
        "CONFLICT",
        None,
    )
    .await;
    f.rejects(
        "delete a completed sprint",
        Payload::DeleteSprintRequest(proto::DeleteSprintRequest {
            sprint_id: done.id.clone(),
        }),
        "DELETE_BLOCKED",
        None,
    )
    .await;
    let planned = f.planned.clone();
    f.rejects(
        "planned -> completed",
        Payload::UpdateSprintRequest(proto::UpdateSprintRequest {
            status: Some(proto::SprintStatus::Completed as i32),
            ..sprint_upd(&planned.id, planned.version)
        }),
        v,
        Some("status"),
    )
    .await;
    f.rejects(
        "sprint status 99",
        Payload::UpdateSprintRequest(proto::UpdateSprintRequest {
            status: Some(99),
            ..sprint_upd(&planned.id, planned.version)
        }),
        v,
        Some("status"),
    )
    .await;
    f.rejects(
        "a second active sprint",
        Payload::UpdateSprintRequest(proto::UpdateSprintRequest {
            status: Some(proto::SprintStatus::Active as i32),
            ..sprint_upd(&planned.id, planned.version)
        }),
        "CONFLICT",
        None,
    )
    .await;
    let active = f.active.clone();
    f.rejects(
        "active -> planned",
        Payload::UpdateSprintRequest(proto::UpdateSprintRequest {
            status: Some(proto::SprintStatus::Planned as i32),
            ..sprint_upd(&active.id, active.version)
        }),
        v,
        Some("status"),
    )
    .await;

    // Comments belong to their author.
    let comment = f.comment.clone();
    f.rejects_as(
        true,
        "edit another user's comment",
        Payload::UpdateCommentRequest(proto::UpdateCommentRequest {
            comment_id: comment.id.clone(),
            content: "hijacked".into(),
        }),
        "UNAUTHORIZED",
        None,
    )
    .await;
    f.rejects_as(
        true,
        "delete another user's comment",
        Payload::DeleteCommentRequest(proto::DeleteCommentRequest {
            comment_id: comment.id.clone(),
        }),
        "UNAUTHORIZED",
        None,
    )
    .await;

    // Project keys are unique among live projects, case-insensitively.
    f.rejects(
        "duplicate key",
        create_project_req("Again", "ERR"),
        v,
        Some("key"),
    )
    .await;
    f.rejects(
        "duplicate key in lower case",
        create_project_req("Again", "err"),
        v,
        Some("key"),
    )
    .await;
    f.obs.expect_no_event().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_projects_key_can_be_reused() {
    let server = TestServer::start().await;
    let mut a = server.connect(USER_A).await;
    let first = a.create_project("First", "REUSE").await;
    let reply = a
        .request(Payload::DeleteProjectRequest(proto::DeleteProjectRequest {
            project_id: first.id.clone(),
            expected_version: first.version,
        }))
        .await;
    expect_payload!(reply, ProjectDeleted);
    let second = a.create_project("Second", "reuse").await;
    assert_ne!(second.id, first.id);
    assert_eq!(second.key, "REUSE");
    let (projects, _) = a.list_projects().await;
    assert_eq!(projects, vec![second.clone()]);
    // And the key is taken again.
    let reply = a.request(create_project_req("Third", "REUSE")).await;
    let err = expect_error(&reply, "VALIDATION_ERROR");
    assert_eq!(err.field.as_deref(), Some("key"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_frame_closes_the_socket_with_1009() {
    let server = TestServer::start().await;
    let mut f = Fixture::new(&server).await;
    let limit = server.state.config.max_message_bytes;
    assert_eq!(limit, 1024 * 1024, "the default limit is 1 MiB");

    // A frame just under the limit is fine (and, being a valid request with an over-long
    // description, is answered with an error).
    let mut big = server.connect(USER_A).await;
    let mut near = WebSocketMessage {
        message_id: random_id(),
        payload: Some(create_item_req(&f.p, WorkItemType::Task, "x", None)),
        ..Default::default()
    };
    if let Some(Payload::CreateWorkItemRequest(r)) = &mut near.payload {
        r.description = Some("d".repeat(limit - 200));
    }
    let reply = big.send_and_await(&near).await;
    expect_error(&reply, "INVALID_MESSAGE");

    // One byte over the limit: the socket is closed with 1009.
    let msg = WebSocketMessage {
        message_id: random_id(),
        payload: Some(Payload::CreateCommentRequest(proto::CreateCommentRequest {
            work_item_id: f.story.id.clone(),
            content: "c".repeat(limit + 1),
        })),
        ..Default::default()
    };
    let bytes = prost::Message::encode_to_vec(&msg);
    assert!(bytes.len() > limit);
    let _ = big.try_send_raw(Message::Binary(bytes.into())).await;
    let (code, error) = big.expect_close(TIMEOUT).await;
    assert_eq!(code, Some(1009), "close code (transport error: {error:?})");

    // Nobody else noticed and nothing changed.
    f.assert_untouched("oversized frame").await;
    f.a.ping().await;
    f.obs.expect_no_event().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_smaller_configured_limit_is_enforced() {
    let server = TestServer::start_with(|c| c.max_message_bytes = 4096).await;
    let mut a = server.connect(USER_A).await;
    let p = a.create_project("Limits", "LIM").await;
    let mut big = server.connect(USER_A).await;
    big.send_raw(Message::Binary(vec![0u8; 5000].into())).await;
    let (code, _) = big.expect_close(TIMEOUT).await;
    assert_eq!(code, Some(1009));
    let (projects, _) = a.list_projects().await;
    assert_eq!(projects, vec![p]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lengths_count_characters_after_trimming() {
    let server = TestServer::start().await;
    let mut a = server.connect(USER_A).await;
    let p = a.create_project("Chars", "CHARS").await;
    // 200 two-byte characters (400 bytes) plus surrounding blanks: accepted, trimmed.
    let title = "é".repeat(200);
    let item = a
        .create_item(&p.id, WorkItemType::Task, &format!("  {title}\t"), None)
        .await;
    assert_eq!(item.title, title);
    let reply = a
        .request(create_item_req(
            &p.id,
            WorkItemType::Task,
            &"é".repeat(201),
            None,
        ))
        .await;
    expect_error(&reply, "INVALID_MESSAGE");
    let comment = a.create_comment(&item.id, &"ü".repeat(5_000)).await;
    assert_eq!(comment.content.chars().count(), 5_000);
    let (items, _) = a.work_items(&p.id).await;
    assert_eq!(items, vec![item]);
}
