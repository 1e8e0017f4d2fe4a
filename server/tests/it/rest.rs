//! REST under /api/v1: every error, including malformed JSON, wrong types, a missing content
//! type and unknown routes, is `{"error":{"code","message","field"?}}` with a fitting status,
//! and leaves the data untouched; X-User-Id selects the user.

use crate::common::*;
use pm_shared::proto::{self, WorkItemType};
use reqwest::Method;
use serde_json::{json, Value};

/// Everything readable about the fixture's project, with the stream positions.
#[derive(Debug, PartialEq)]
struct World {
    projects: Vec<proto::Project>,
    workspace_seq: u64,
    items: Vec<proto::WorkItem>,
    seq: u64,
    sprints: Vec<proto::Sprint>,
    comments: Vec<proto::Comment>,
}

struct Fixture {
    http: Http,
    ws: WsClient,
    p: proto::Project,
    epic: proto::WorkItem,
    story: proto::WorkItem,
    sprint: proto::Sprint,
    done: proto::Sprint,
    comment: proto::Comment,
    baseline: Option<World>,
}

impl Fixture {
    async fn new(server: &TestServer) -> Fixture {
        let mut ws = server.connect(USER_A).await;
        let p = ws.create_project("Rest", "RST").await;
        let epic = ws
            .create_item(&p.id, WorkItemType::Epic, "Epic", None)
            .await;
        let story = ws
            .create_item(&p.id, WorkItemType::Story, "Story", Some(&epic.id))
            .await;
        let sprint = ws.create_sprint(&p.id, "Open").await;
        let done = ws.create_sprint(&p.id, "Done").await;
        let done = ws
            .update_sprint(proto::UpdateSprintRequest {
                status: Some(proto::SprintStatus::Active as i32),
                ..sprint_upd(&done.id, done.version)
            })
            .await;
        let done = ws
            .update_sprint(proto::UpdateSprintRequest {
                status: Some(proto::SprintStatus::Completed as i32),
                ..sprint_upd(&done.id, done.version)
            })
            .await;
        let comment = ws.create_comment(&story.id, "by A").await;
        let mut f = Fixture {
            http: server.http(Some(USER_A)),
            ws,
            p,
            epic,
            story,
            sprint,
            done,
            comment,
            baseline: None,
        };
        f.baseline = Some(f.world().await);
        f
    }

    async fn world(&mut self) -> World {
        let (projects, list) = self.ws.list_projects().await;
        let (items, snap) = self.ws.work_items(&self.p.id).await;
        World {
            projects,
            workspace_seq: list.seq,
            items,
            seq: snap.seq,
            sprints: self.ws.sprints(&self.p.id).await.0,
            comments: self.ws.comments(&self.story.id).await.0,
        }
    }

    async fn assert_untouched(&mut self, what: &str) {
        let now = self.world().await;
        assert!(
            Some(&now) == self.baseline.as_ref(),
            "{what}: data changed\nbefore: {:?}\nafter:  {now:?}",
            self.baseline
        );
        assert!(self.ws.take_events().is_empty(), "{what}: events were sent");
    }

    /// Checks a REST error reply and that nothing changed.
    async fn rejected(
        &mut self,
        what: &str,
        reply: HttpReply,
        status: u16,
        code: &str,
        field: Option<&str>,
    ) {
        let err = reply.expect_error(status, code).clone();
        if let Some(field) = field {
            assert_eq!(err["field"], field, "{what}: {err}");
        }
        let keys: Vec<&String> = err.as_object().expect("object").keys().collect();
        assert!(
            keys.iter()
                .all(|k| ["code", "message", "field"].contains(&k.as_str())),
            "{what}: unexpected keys in {err}"
        );
        if err.get("field").is_some() {
            assert!(
                err["field"].is_string(),
                "{what}: field is a string when present"
            );
        }
        self.assert_untouched(what).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framework_rejections_are_error_json() {
    let server = TestServer::start().await;
    let mut f = Fixture::new(&server).await;
    let h = f.http.clone();
    let json_ct = Some("application/json");

    let r = h
        .raw(
            Method::POST,
            "/api/v1/projects",
            json_ct,
            r#"{"title": "x", "key": "#,
        )
        .await;
    f.rejected("malformed JSON", r, 400, "VALIDATION_ERROR", None)
        .await;
    let r = h.raw(Method::POST, "/api/v1/projects", json_ct, "").await;
    f.rejected("empty body", r, 400, "VALIDATION_ERROR", None)
        .await;
    let r = h
        .post("/api/v1/projects", json!({"title": 5, "key": "NUM"}))
        .await;
    f.rejected("title of the wrong type", r, 400, "VALIDATION_ERROR", None)
        .await;
    let r = h.post("/api/v1/projects", json!({"title": "no key"})).await;
    f.rejected("missing field", r, 400, "VALIDATION_ERROR", None)
        .await;
    let r = h.post("/api/v1/projects", json!(["an", "array"])).await;
    f.rejected("array body", r, 400, "VALIDATION_ERROR", None)
        .await;
    let r = h
        .put(
            &format!("/api/v1/work-items/{}", f.story.id),
            json!({"title": "x", "expected_version": "one"}),
        )
        .await;
    f.rejected(
        "version of the wrong type",
        r,
        400,
        "VALIDATION_ERROR",
        None,
    )
    .await;
    let r = h
        .put(
            &format!("/api/v1/work-items/{}", f.story.id),
            json!({"story_points": 3.5, "expected_version": 1}),
        )
        .await;
    f.rejected("fractional story points", r, 400, "VALIDATION_ERROR", None)
        .await;

    let r = h
        .raw(
            Method::POST,
            "/api/v1/projects",
            None,
            r#"{"title": "x", "key": "NOCT"}"#,
        )
        .await;
    f.rejected("no content type", r, 415, "UNSUPPORTED_MEDIA_TYPE", None)
        .await;
    let r = h
        .raw(
            Method::POST,
            "/api/v1/projects",
            Some("text/plain"),
            r#"{"title": "x", "key": "TEXT"}"#,
        )
        .await;
    f.rejected("text/plain", r, 415, "UNSUPPORTED_MEDIA_TYPE", None)
        .await;

    for path in [
        "/api/v1/nothing",
        "/api/v2/projects",
        "/",
        "/api/v1/projects/x/y/z",
    ] {
        let r = h.get(path).await;
        f.rejected(path, r, 404, "NOT_FOUND", None).await;
    }
    let r = h.post("/api/v1/unknown", json!({})).await;
    f.rejected("POST to an unknown route", r, 404, "NOT_FOUND", None)
        .await;
    let r = h
        .run(
            h.request(Method::PATCH, "/api/v1/projects")
                .json(&json!({})),
        )
        .await;
    f.rejected("PATCH", r, 405, "METHOD_NOT_ALLOWED", None)
        .await;

    let r = h
        .get(&format!(
            "/api/v1/projects/{}/work-items?orphaned=maybe",
            f.p.id
        ))
        .await;
    f.rejected("bad query string", r, 400, "VALIDATION_ERROR", None)
        .await;
    let r = h
        .get(&format!("/api/v1/projects/{}/work-items?type=bug", f.p.id))
        .await;
    f.rejected("bad type filter", r, 400, "VALIDATION_ERROR", Some("type"))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domain_errors_have_fitting_status_codes() {
    let server = TestServer::start().await;
    let mut f = Fixture::new(&server).await;
    let h = f.http.clone();
    let (p, epic, story) = (f.p.clone(), f.epic.clone(), f.story.clone());
    let ghost = uuid::Uuid::new_v4().to_string();

    // Not found, by id and by key.
    for path in [
        format!("/api/v1/projects/{ghost}"),
        "/api/v1/projects/NOPE".to_string(),
        format!("/api/v1/work-items/{ghost}"),
        "/api/v1/work-items/RST-99".to_string(),
        format!("/api/v1/sprints/{ghost}"),
        format!("/api/v1/comments/{ghost}"),
        format!("/api/v1/projects/{ghost}/work-items"),
        format!("/api/v1/work-items/{ghost}/comments"),
    ] {
        let r = h.get(&path).await;
        f.rejected(&path, r, 404, "NOT_FOUND", None).await;
    }
    let r = h.delete(&format!("/api/v1/work-items/{ghost}")).await;
    f.rejected("delete unknown item", r, 404, "NOT_FOUND", None)
        .await;
    let r = h
        .post(
            "/api/v1/work-items",
            json!({"project_id": ghost, "item_type": "task", "title": "t"}),
        )
        .await;
    f.rejected("item in unknown project", r, 404, "NOT_FOUND", None)
        .await;

    // Invalid ids and values: 400 VALIDATION_ERROR, naming the field where there is one.
    let r = h.get("/api/v1/sprints/not-a-uuid").await;
    f.rejected(
        "sprint id not a UUID",
        r,
        400,
        "VALIDATION_ERROR",
        Some("sprint_id"),
    )
    .await;
    let r = h.get("/api/v1/work-items/not a key").await;
    f.rejected(
        "work item id not a key",
        r,
        400,
        "VALIDATION_ERROR",
        Some("id"),
    )
    .await;
    let item = |body: Value| h.post("/api/v1/work-items", body);
    let r = item(json!({"project_id": p.id, "item_type": "bug", "title": "t"})).await;
    f.rejected(
        "item_type bug",
        r,
        400,
        "VALIDATION_ERROR",
        Some("item_type"),
    )
    .await;
    let r = item(json!({"project_id": p.id, "item_type": "task", "title": "t".repeat(201)})).await;
    f.rejected("title of 201", r, 400, "VALIDATION_ERROR", None)
        .await;
    let r = item(json!({"project_id": p.id, "item_type": "task", "title": "   "})).await;
    f.rejected("blank title", r, 400, "VALIDATION_ERROR", None)
        .await;
    let r =
        item(json!({"project_id": p.id, "item_type": "task", "title": "t", "status": "blocked"}))
            .await;
    f.rejected("status blocked", r, 400, "VALIDATION_ERROR", Some("status"))
        .await;
    let r =
        item(json!({"project_id": p.id, "item_type": "task", "title": "t", "priority": "asap"}))
            .await;
    f.rejected(
        "priority asap",
        r,
        400,
        "VALIDATION_ERROR",
        Some("priority"),
    )
    .await;
    let r =
        item(json!({"project_id": p.id, "item_type": "task", "title": "t", "parent_id": epic.id}))
            .await;
    f.rejected(
        "task under epic",
        r,
        400,
        "VALIDATION_ERROR",
        Some("parent_id"),
    )
    .await;
    let r =
        item(json!({"project_id": p.id, "item_type": "task", "title": "t", "parent_id": ghost}))
            .await;
    f.rejected(
        "unknown parent",
        r,
        400,
        "VALIDATION_ERROR",
        Some("parent_id"),
    )
    .await;
    let story_path = format!("/api/v1/work-items/{}", story.id);
    let r = h
        .put(
            &story_path,
            json!({"parent_id": story.id, "update_parent": true, "expected_version": story.version}),
        )
        .await;
    f.rejected(
        "reparent under itself",
        r,
        400,
        "VALIDATION_ERROR",
        Some("parent_id"),
    )
    .await;
    let r = h
        .put(
            &story_path,
            json!({"story_points": 500, "expected_version": story.version}),
        )
        .await;
    f.rejected(
        "500 story points",
        r,
        400,
        "VALIDATION_ERROR",
        Some("story_points"),
    )
    .await;
    let r = h
        .put(
            &format!("/api/v1/sprints/{}", f.sprint.id),
            json!({"status": "finished", "expected_version": 1}),
        )
        .await;
    f.rejected(
        "sprint status finished",
        r,
        400,
        "VALIDATION_ERROR",
        Some("status"),
    )
    .await;
    let r = h
        .put(
            &format!("/api/v1/sprints/{}", f.sprint.id),
            json!({"status": "completed", "expected_version": 1}),
        )
        .await;
    f.rejected(
        "planned -> completed",
        r,
        400,
        "VALIDATION_ERROR",
        Some("status"),
    )
    .await;
    let r = h
        .post(
            &format!("/api/v1/work-items/{}/comments", story.id),
            json!({"content": "c".repeat(5_001)}),
        )
        .await;
    f.rejected("comment of 5001", r, 400, "VALIDATION_ERROR", None)
        .await;

    // Conflicts: stale versions, a taken key, frozen sprints, deletes that are blocked.
    let r = h
        .put(
            &story_path,
            json!({"title": "late", "expected_version": story.version + 1}),
        )
        .await;
    f.rejected("stale item version", r, 409, "CONFLICT", None)
        .await;
    let r = h
        .put(
            &format!("/api/v1/projects/{}", p.id),
            json!({"title": "late", "expected_version": 7}),
        )
        .await;
    f.rejected("stale project version", r, 409, "CONFLICT", None)
        .await;
    let r = h
        .put(
            &format!("/api/v1/sprints/{}", f.sprint.id),
            json!({"name": "late", "expected_version": 7}),
        )
        .await;
    f.rejected("stale sprint version", r, 409, "CONFLICT", None)
        .await;
    let r = h
        .post("/api/v1/projects", json!({"title": "Dup", "key": "rst"}))
        .await;
    f.rejected("duplicate key", r, 409, "CONFLICT", Some("key"))
        .await;
    let r = h
        .put(
            &format!("/api/v1/sprints/{}", f.done.id),
            json!({"name": "again", "expected_version": f.done.version}),
        )
        .await;
    f.rejected("completed sprint", r, 409, "CONFLICT", None)
        .await;
    let r = h.delete(&format!("/api/v1/sprints/{}", f.done.id)).await;
    f.rejected("delete completed sprint", r, 409, "DELETE_BLOCKED", None)
        .await;
    let r = h.delete(&format!("/api/v1/work-items/{}", epic.id)).await;
    f.rejected("delete item with children", r, 409, "DELETE_BLOCKED", None)
        .await;
    let r = h.delete(&format!("/api/v1/projects/{}", p.id)).await;
    f.rejected("delete project with items", r, 409, "DELETE_BLOCKED", None)
        .await;

    // Someone else's comment.
    let other = h.as_user(USER_B);
    let path = format!("/api/v1/comments/{}", f.comment.id);
    let r = other.put(&path, json!({"content": "hijack"})).await;
    f.rejected("edit another user's comment", r, 403, "UNAUTHORIZED", None)
        .await;
    let r = other.delete(&path).await;
    f.rejected(
        "delete another user's comment",
        r,
        403,
        "UNAUTHORIZED",
        None,
    )
    .await;
    // No header means the default user, who is not the author either.
    let anonymous = server.http(None);
    let r = anonymous.delete(&path).await;
    f.rejected("delete as the default user", r, 403, "UNAUTHORIZED", None)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_user_id_selects_the_user() {
    let server = TestServer::start().await;
    let cases = [
        (Some(USER_B), USER_B, "HB"),
        (Some("not-a-uuid"), pm_shared::DEFAULT_USER_ID, "HBAD"),
        (None, pm_shared::DEFAULT_USER_ID, "HNONE"),
        (
            Some(" CCCCCCCC-0000-4000-8000-000000000003 "),
            USER_C,
            "HUPPER",
        ),
    ];
    for (header, expected, key) in cases {
        let http = server.http(header);
        let reply = http
            .post("/api/v1/projects", json!({"title": "Who", "key": key}))
            .await;
        let project = reply.ok()["project"].clone();
        assert_eq!(project["created_by"], expected, "header {header:?}");
        let id = s(&project, "id");
        let item = http
            .post(
                "/api/v1/work-items",
                json!({"project_id": id, "item_type": "task", "title": "t"}),
            )
            .await;
        assert_eq!(item.ok()["work_item"]["created_by"], expected);
        assert_eq!(item.ok()["work_item"]["display_key"], format!("{key}-1"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_resolve_keys_and_use_the_reference_shapes() {
    let server = TestServer::start().await;
    let f = Fixture::new(&server).await;
    let h = f.http.clone();

    let by_key = h.get("/api/v1/projects/rst").await;
    assert_eq!(by_key.ok()["project"]["id"], f.p.id);
    for field in [
        "id",
        "key",
        "title",
        "status",
        "version",
        "next_work_item_number",
    ] {
        assert!(
            by_key.body["project"].get(field).is_some(),
            "project.{field}"
        );
    }
    let item = h.get("/api/v1/work-items/rst-2").await;
    assert_eq!(item.ok()["work_item"]["id"], f.story.id);
    assert_eq!(item.body["work_item"]["display_key"], "RST-2");
    assert_eq!(item.body["work_item"]["item_type"], "story");
    assert_eq!(item.body["work_item"]["parent_id"], f.epic.id);

    let list = h
        .get(&format!("/api/v1/projects/{}/work-items", f.p.id))
        .await;
    assert_eq!(list.ok()["work_items"].as_array().map(Vec::len), Some(2));
    let lanes = h
        .get(&format!("/api/v1/projects/{}/swim-lanes", f.p.id))
        .await;
    let names: Vec<&str> = lanes.ok()["swim_lanes"]
        .as_array()
        .expect("lanes")
        .iter()
        .filter_map(|l| l["status_value"].as_str())
        .collect();
    assert_eq!(names, ["backlog", "todo", "in_progress", "review", "done"]);
    let sprints = h.get(&format!("/api/v1/projects/{}/sprints", f.p.id)).await;
    assert_eq!(sprints.ok()["sprints"].as_array().map(Vec::len), Some(2));
    let comments = h
        .get(&format!("/api/v1/work-items/{}/comments", f.story.id))
        .await;
    assert_eq!(comments.ok()["comments"][0]["content"], "by A");

    let health = h.get("/health").await;
    assert_eq!(health.ok()["status"], "ok");
    let ready = h.get("/ready").await;
    assert_eq!(ready.ok()["status"], "healthy");
    assert_eq!(h.get("/live").await.status, 200);
}

/// Comments posted within the same second come back in the order they were posted, every time
/// (ids are random: ordering by them shuffled a same-second conversation).
#[tokio::test]
async fn comments_of_the_same_second_keep_their_order() {
    let server = TestServer::start().await;
    let mut ws = server.connect(USER_A).await;
    let project = ws.create_project("Talk", "TALK").await;
    let item = ws
        .create_item(&project.id, proto::WorkItemType::Task, "thread", None)
        .await;
    let posted: Vec<String> = (0..12).map(|i| format!("message {i:02}")).collect();
    for text in &posted {
        ws.create_comment(&item.id, text).await;
    }
    let h = server.http(Some(USER_A));
    let list = h
        .get(&format!("/api/v1/work-items/{}/comments", item.id))
        .await;
    let got: Vec<String> = list.ok()["comments"]
        .as_array()
        .expect("comments")
        .iter()
        .filter_map(|c| c["content"].as_str().map(str::to_string))
        .collect();
    assert_eq!(got, posted);
    let (snapshot, _) = ws.comments(&item.id).await;
    let got: Vec<String> = snapshot.iter().map(|c| c.content.clone()).collect();
    assert_eq!(got, posted);
    // Boards order by (created_at, id): the ids must follow the posting order too.
    let mut by_key = snapshot.clone();
    by_key.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let got: Vec<String> = by_key.into_iter().map(|c| c.content).collect();
    assert_eq!(got, posted, "the order a board shows");
}
