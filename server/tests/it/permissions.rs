//! Token mode: every permission is judged on the database as it was before the command, and an
//! outsider learns nothing: whatever a non-member asks of a project is answered exactly as if
//! it did not exist. Every role (none, viewer, editor, admin) against every member operation,
//! over WebSocket and REST.

use crate::common::*;
use pm_shared::proto::{self, Payload};
use serde_json::json;

const OWNER: &str = "00000000-0000-4000-8000-00000000a11c";
const ME: &str = "00000000-0000-4000-8000-000000000b0b";
const THIRD: &str = "00000000-0000-4000-8000-00000000c0c0";
const NOBODY_USES: &str = "00000000-0000-4000-8000-0000000dead0";

async fn rest(server: &TestServer, user: &str, method: reqwest::Method, path: &str) -> HttpReply {
    rest_with(server, user, method, path, None).await
}

async fn rest_with(
    server: &TestServer,
    user: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> HttpReply {
    let http = server.http(None);
    let mut request = http
        .request(method, &format!("/api/v1{path}"))
        .bearer_auth(team_token(user));
    if let Some(body) = body {
        request = request.json(&body);
    }
    http.run(request).await
}

/// The role `ME` holds before the operation.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Start {
    Outsider,
    Viewer,
    Editor,
    Admin,
}

impl Start {
    const ALL: [Start; 4] = [Start::Outsider, Start::Viewer, Start::Editor, Start::Admin];

    fn role(self) -> Option<&'static str> {
        match self {
            Start::Outsider => None,
            Start::Viewer => Some("viewer"),
            Start::Editor => Some("editor"),
            Start::Admin => Some("admin"),
        }
    }
}

fn add(project: &str, user: &str, role: &str) -> Payload {
    Payload::AddProjectMemberRequest(proto::AddProjectMemberRequest {
        project_id: project.into(),
        user_id: user.into(),
        role: role.into(),
    })
}

fn remove(project: &str, user: &str) -> Payload {
    Payload::RemoveProjectMemberRequest(proto::RemoveProjectMemberRequest {
        project_id: project.into(),
        user_id: user.into(),
    })
}

/// Every (user, role) of the project, sorted, as stored.
async fn members(server: &TestServer, project: &str) -> Vec<(String, String)> {
    let mut reader = server.state.store.read.acquire().await.expect("a reader");
    pm_server::on!(&mut reader.conn(), |c| sqlx::query_as(
        "SELECT user_id, role FROM pm_project_members WHERE project_id = $1 ORDER BY user_id",
    )
    .bind(project)
    .fetch_all(c)
    .await)
    .expect("members")
}

fn sorted(mut v: Vec<(&str, &str)>) -> Vec<(String, String)> {
    v.sort();
    v.into_iter()
        .map(|(u, r)| (u.to_string(), r.to_string()))
        .collect()
}

/// A project of OWNER's with THIRD as an editor and ME holding `start`.
async fn project_with(owner: &mut WsClient, key: &str, start: Start) -> String {
    let project = owner.create_project(&format!("Project {key}"), key).await;
    let reply = owner.request(add(&project.id, THIRD, "editor")).await;
    expect_payload!(&reply, ProjectMemberAdded);
    if let Some(role) = start.role() {
        let reply = owner.request(add(&project.id, ME, role)).await;
        expect_payload!(&reply, ProjectMemberAdded);
    }
    project.id
}

/// What a member operation must answer for each starting role: Ok, or the error code.
fn expected(op: &str, start: Start) -> Result<(), &'static str> {
    match (op, start) {
        (_, Start::Outsider) => Err("NOT_FOUND"),
        // Anyone may leave.
        ("leave", _) => Ok(()),
        (_, Start::Admin) => Ok(()),
        (_, Start::Viewer | Start::Editor) => Err("UNAUTHORIZED"),
    }
}

/// A member operation: its name, its request, and (user, role afterwards) when it succeeds.
type Operation = (&'static str, Payload, (&'static str, Option<&'static str>));

fn operations(project: &str) -> Vec<Operation> {
    vec![
        (
            "promote self",
            add(project, ME, "admin"),
            (ME, Some("admin")),
        ),
        (
            "add another",
            add(project, NOBODY_USES, "viewer"),
            (NOBODY_USES, Some("viewer")),
        ),
        (
            "change another's role",
            add(project, THIRD, "viewer"),
            (THIRD, Some("viewer")),
        ),
        ("remove another", remove(project, THIRD), (THIRD, None)),
        ("remove the owner", remove(project, OWNER), (OWNER, None)),
        ("leave", remove(project, ME), (ME, None)),
    ]
}

#[tokio::test]
async fn every_role_against_every_member_operation() {
    let server = TestServer::start_team().await;
    let mut owner = server.connect_team(OWNER).await;
    let mut me = server.connect_team(ME).await;
    let mut n = 0;
    for start in Start::ALL {
        for index in 0..operations("x").len() {
            n += 1;
            let key = format!("P{n}");
            let project = project_with(&mut owner, &key, start).await;
            let (name, request, after) = operations(&project).swap_remove(index);
            let before = members(&server, &project).await;
            let reply = me.request(request).await;
            let now = members(&server, &project).await;
            match (expected(name, start), &reply.payload) {
                (Ok(()), Some(Payload::Error(e))) => panic!("{start:?} {name}: refused with {e:?}"),
                (Ok(()), _) => {
                    let (user, role) = after;
                    let held = now.iter().find(|(u, _)| u == user).map(|(_, r)| r.as_str());
                    assert_eq!(held, role, "{start:?} {name}: membership now {now:?}");
                }
                (Err(code), Some(Payload::Error(e))) => {
                    assert_eq!(e.code, code, "{start:?} {name}: {e:?}");
                    assert_eq!(now, before, "{start:?} {name}: a refusal changes nothing");
                }
                (Err(code), other) => {
                    panic!("{start:?} {name}: expected {code}, got {other:?}; members {now:?}")
                }
            }
        }
    }
}

#[tokio::test]
async fn an_outsider_cannot_make_itself_admin_over_rest_or_websocket() {
    let server = TestServer::start_team().await;
    let mut owner = server.connect_team(OWNER).await;
    let project = owner.create_project("Crown jewels", "CJ").await;
    let mut me = server.connect_team(ME).await;

    // WebSocket: a complete non-member adds itself as admin.
    let reply = me.request(add(&project.id, ME, "admin")).await;
    expect_error(&reply, "NOT_FOUND");
    // REST (what `pm project member add CJ <own-id> --role admin` sends).
    let r = rest_with(
        &server,
        ME,
        reqwest::Method::POST,
        &format!("/projects/{}/members", project.id),
        Some(json!({ "user_id": ME, "role": "admin" })),
    )
    .await;
    r.expect_error(404, "NOT_FOUND");
    assert_eq!(
        members(&server, &project.id).await,
        vec![(OWNER.to_string(), "admin".to_string())]
    );

    // A viewer and an editor cannot either, nor remove the owner afterwards.
    for role in ["viewer", "editor"] {
        let reply = owner.request(add(&project.id, ME, role)).await;
        expect_payload!(&reply, ProjectMemberAdded);
        let r = rest_with(
            &server,
            ME,
            reqwest::Method::POST,
            &format!("/projects/{}/members", project.id),
            Some(json!({ "user_id": ME, "role": "admin" })),
        )
        .await;
        r.expect_error(403, "UNAUTHORIZED");
        let r = rest(
            &server,
            ME,
            reqwest::Method::DELETE,
            &format!("/projects/{}/members/{OWNER}", project.id),
        )
        .await;
        r.expect_error(403, "UNAUTHORIZED");
    }
    assert_eq!(
        members(&server, &project.id).await,
        sorted(vec![(OWNER, "admin"), (ME, "editor")])
    );
}

#[tokio::test]
async fn an_admin_may_step_down_while_another_admin_remains() {
    let server = TestServer::start_team().await;
    let mut owner = server.connect_team(OWNER).await;
    let project = owner.create_project("Handover", "HO").await;

    // The last admin can neither leave nor step down.
    expect_error(
        &owner.request(remove(&project.id, OWNER)).await,
        "VALIDATION_ERROR",
    );
    expect_error(
        &owner.request(add(&project.id, OWNER, "editor")).await,
        "VALIDATION_ERROR",
    );

    // With a second admin, the owner steps down to editor, then leaves.
    expect_payload!(
        &owner.request(add(&project.id, ME, "admin")).await,
        ProjectMemberAdded
    );
    expect_payload!(
        &owner.request(add(&project.id, OWNER, "editor")).await,
        ProjectMemberAdded
    );
    let reply = owner.request(remove(&project.id, OWNER)).await;
    expect_payload!(&reply, ProjectMemberRemoved);
    assert_eq!(
        members(&server, &project.id).await,
        vec![(ME.to_string(), "admin".to_string())]
    );
}

/// The answer's code and message, with `id` written as `<id>`.
fn shape(reply: &proto::WebSocketMessage, id: &str) -> (String, String) {
    let e = expect_payload!(reply, Error);
    (e.code.clone(), e.message.replace(id, "<id>"))
}

fn http_shape(reply: &HttpReply, id: &str) -> (u16, String, String) {
    let e = &reply.body["error"];
    (
        reply.status,
        e["code"].as_str().unwrap_or_default().to_string(),
        e["message"]
            .as_str()
            .unwrap_or_default()
            .replace(id, "<id>"),
    )
}

#[tokio::test]
async fn an_outsider_gets_the_same_answer_as_for_an_absent_id() {
    let server = TestServer::start_team().await;
    let mut owner = server.connect_team(OWNER).await;
    let project = owner.create_project("Secret", "SEC").await;
    let parent = owner
        .create_item(&project.id, proto::WorkItemType::Story, "parent", None)
        .await;
    owner
        .create_item(
            &project.id,
            proto::WorkItemType::Task,
            "child",
            Some(&parent.id),
        )
        .await;
    let sprint = owner.create_sprint(&project.id, "S1").await;
    let comment = owner.create_comment(&parent.id, "hello").await;
    let mut me = server.connect_team(ME).await;

    // (request on the real row, the same request on an id nobody uses, the id in both)
    let stale = |id: &str| {
        Payload::UpdateWorkItemRequest(proto::UpdateWorkItemRequest {
            work_item_id: id.into(),
            expected_version: 999, // the wrong version: its conflict would give the real one
            title: Some("x".into()),
            ..Default::default()
        })
    };
    let delete = |id: &str| {
        Payload::DeleteWorkItemRequest(proto::DeleteWorkItemRequest {
            work_item_id: id.into(),
        })
    };
    let sprint_update = |id: &str| {
        Payload::UpdateSprintRequest(proto::UpdateSprintRequest {
            sprint_id: id.into(),
            expected_version: 999,
            name: Some("x".into()),
            ..Default::default()
        })
    };
    let comment_update = |id: &str| {
        Payload::UpdateCommentRequest(proto::UpdateCommentRequest {
            comment_id: id.into(),
            content: "x".into(),
        })
    };
    let new_item = |id: &str| create_item_req(id, proto::WorkItemType::Task, "x", None);
    type Request = Box<dyn Fn(&str) -> Payload>;
    let cases: Vec<(&str, Request, &str)> = vec![
        ("stale update", Box::new(stale), parent.id.as_str()),
        ("delete a parent", Box::new(delete), parent.id.as_str()),
        ("sprint update", Box::new(sprint_update), sprint.id.as_str()),
        (
            "comment update",
            Box::new(comment_update),
            comment.id.as_str(),
        ),
        ("create in project", Box::new(new_item), project.id.as_str()),
    ];
    for (name, request, real) in cases {
        let theirs = shape(&me.request(request(real)).await, real);
        let absent = shape(&me.request(request(NOBODY_USES)).await, NOBODY_USES);
        assert_eq!(theirs.0, "NOT_FOUND", "{name}: {theirs:?}");
        assert_eq!(theirs, absent, "{name}: an outsider tells them apart");
    }

    // REST: by key and by id, for reads and writes.
    let get = |path: String| {
        let server = &server;
        async move { rest(server, ME, reqwest::Method::GET, &path).await }
    };
    let known = get("/projects/SEC".into()).await;
    let unknown = get("/projects/NOPE".into()).await;
    assert_eq!(http_shape(&known, "SEC").0, 404, "{known:?}");
    assert_eq!(http_shape(&known, "SEC"), http_shape(&unknown, "NOPE"));
    let key = format!("SEC-{}", parent.item_number);
    let known = get(format!("/work-items/{key}")).await;
    let unknown = get("/work-items/SEC-999".into()).await;
    assert_eq!(http_shape(&known, &key), http_shape(&unknown, "SEC-999"));
    assert_eq!(known.status, 404, "{known:?}");
    let known = get(format!("/projects/{}/work-items", project.id)).await;
    let unknown = get(format!("/projects/{NOBODY_USES}/work-items")).await;
    assert_eq!(
        http_shape(&known, &project.id),
        http_shape(&unknown, NOBODY_USES)
    );
    let known = rest(
        &server,
        ME,
        reqwest::Method::DELETE,
        &format!("/work-items/{}", parent.id),
    )
    .await;
    let unknown = rest(
        &server,
        ME,
        reqwest::Method::DELETE,
        &format!("/work-items/{NOBODY_USES}"),
    )
    .await;
    assert_eq!(
        http_shape(&known, &parent.id),
        http_shape(&unknown, NOBODY_USES)
    );
    assert_eq!(known.status, 404);
}

#[tokio::test]
async fn permission_comes_before_validation() {
    let server = TestServer::start_team().await;
    let mut owner = server.connect_team(OWNER).await;
    let project = owner.create_project("Order", "ORD").await;
    let item = owner
        .create_item(&project.id, proto::WorkItemType::Task, "x", None)
        .await;
    expect_payload!(
        &owner.request(add(&project.id, ME, "viewer")).await,
        ProjectMemberAdded
    );
    let mut me = server.connect_team(ME).await;
    // A viewer's update is refused for what it is, not for its stale version or bad value.
    let reply = me
        .request(Payload::UpdateWorkItemRequest(
            proto::UpdateWorkItemRequest {
                work_item_id: item.id.clone(),
                expected_version: 999,
                status: Some("no-such-lane".into()),
                ..Default::default()
            },
        ))
        .await;
    let e = expect_error(&reply, "UNAUTHORIZED");
    assert!(!e.message.contains("version"), "{e:?}");
    // And a no-op update by a viewer is refused too: it is a write.
    let reply = me
        .request(Payload::UpdateWorkItemRequest(
            proto::UpdateWorkItemRequest {
                work_item_id: item.id.clone(),
                expected_version: item.version,
                title: Some(item.title.clone()),
                ..Default::default()
            },
        ))
        .await;
    expect_error(&reply, "UNAUTHORIZED");
}
