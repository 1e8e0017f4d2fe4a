//! Team mode (`--auth token`): tokens, project membership and roles, enforced on every read,
//! write and subscription, over WebSocket and REST.

use std::time::Duration;

use crate::common::*;
use pm_shared::proto::{self, Payload};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const SECRET: &str = TEAM_SECRET;
const ALICE: &str = "00000000-0000-4000-8000-00000000a11c";
const BOB: &str = "00000000-0000-4000-8000-000000000b0b";
const ROOT: &str = "00000000-0000-4000-8000-0000000000ad";

async fn team_server() -> TestServer {
    TestServer::start_team().await
}

fn token(user: &str) -> String {
    team_token(user)
}

async fn connect(server: &TestServer, user: &str) -> WsClient {
    server.connect_team(user).await
}

fn http(user: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {}", token(user)).parse().expect("header"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("client")
}

fn error_code(reply: &proto::WebSocketMessage) -> String {
    match &reply.payload {
        Some(Payload::Error(e)) => e.code.clone(),
        other => panic!("expected an error, got {other:?}"),
    }
}

async fn status_of(url: String, auth: Option<String>) -> u16 {
    let mut request = url.into_client_request().expect("request");
    if let Some(a) = auth {
        request
            .headers_mut()
            .insert("authorization", a.parse().expect("header"));
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok(_) => 101,
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => r.status().as_u16(),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn missing_expired_and_forged_tokens_are_refused() {
    let server = team_server().await;
    let ws = format!("ws://{}/ws", server.addr);
    assert_eq!(status_of(ws.clone(), None).await, 401, "no token");
    assert_eq!(
        status_of(format!("{ws}?user_id={ALICE}"), None).await,
        401,
        "a named user is not a credential"
    );
    let expired = pm_server::auth::issue(SECRET, ALICE, vec![], -3600).expect("token");
    assert_eq!(
        status_of(ws.clone(), Some(format!("Bearer {expired}"))).await,
        401,
        "expired"
    );
    let forged = pm_server::auth::issue(
        "another-secret-that-is-long-enough-123",
        ALICE,
        vec![],
        3600,
    )
    .expect("token");
    assert_eq!(
        status_of(ws.clone(), Some(format!("Bearer {forged}"))).await,
        401,
        "forged"
    );
    assert_eq!(
        status_of(ws.clone(), Some(format!("Bearer {}", token(ALICE)))).await,
        101,
        "header"
    );
    assert_eq!(
        status_of(format!("{ws}?token={}", token(ALICE)), None).await,
        101,
        "?token= for browsers"
    );

    let anonymous = reqwest::get(format!("http://{}/api/v1/projects", server.addr))
        .await
        .expect("get");
    assert_eq!(anonymous.status(), 401);
    let body: serde_json::Value = anonymous.json().await.expect("json");
    assert_eq!(body["error"]["code"], "UNAUTHORIZED");
    let ok = http(ALICE)
        .get(format!("http://{}/api/v1/projects", server.addr))
        .send()
        .await
        .expect("get");
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn a_non_member_can_neither_see_nor_change_a_project() {
    let server = team_server().await;
    let mut alice = connect(&server, ALICE).await;
    let mut bob = connect(&server, BOB).await;
    bob.list_projects().await; // bob watches the project list
    let project = alice.create_project("Secret", "SEC").await;

    // Bob does not even learn that the project exists: the workspace stream gives him a
    // place-holder for its creation (the seq, nothing of the project), and whatever he asks of
    // it is answered as if it did not exist (NOT_FOUND, 404), exactly as for an id nobody uses.
    let (projects, _) = bob.list_projects().await;
    assert!(projects.is_empty(), "{projects:?}");
    let seen = bob.drain_events().await;
    assert_eq!(withheld(&seen), [1], "{seen:?}");
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(!mentions(&seen, &project, &["Secret"]), "{seen:?}");

    let reply = bob
        .request(Payload::Subscribe(proto::Subscribe {
            project_ids: vec![project.id.clone()],
            ..Default::default()
        }))
        .await;
    assert_eq!(error_code(&reply), "NOT_FOUND");
    let reply = bob
        .request(Payload::GetWorkItemsRequest(proto::GetWorkItemsRequest {
            project_id: project.id.clone(),
            since_timestamp: None,
        }))
        .await;
    assert_eq!(error_code(&reply), "NOT_FOUND");
    let reply = bob
        .request(create_item_req(
            &project.id,
            proto::WorkItemType::Task,
            "sneaky",
            None,
        ))
        .await;
    assert_eq!(error_code(&reply), "NOT_FOUND");

    // Alice's changes never reach Bob.
    alice
        .create_item(&project.id, proto::WorkItemType::Task, "private", None)
        .await;
    bob.expect_no_event().await;

    let rest = http(BOB);
    let r = rest
        .get(format!(
            "http://{}/api/v1/projects/{}",
            server.addr, project.id
        ))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 404);
    let r = rest
        .get(format!(
            "http://{}/api/v1/projects/{}/work-items",
            server.addr, project.id
        ))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 404);
    let (items, _) = alice.work_items(&project.id).await;
    assert_eq!(items.len(), 1, "nothing of Bob's got in");
}

#[tokio::test]
async fn viewers_read_editors_write_admins_delete() {
    let server = team_server().await;
    let mut alice = connect(&server, ALICE).await;
    let project = alice.create_project("Team", "TM").await;
    let item = alice
        .create_item(&project.id, proto::WorkItemType::Task, "shared", None)
        .await;
    let add = |role: &str| {
        Payload::AddProjectMemberRequest(proto::AddProjectMemberRequest {
            project_id: project.id.clone(),
            user_id: BOB.into(),
            role: role.into(),
        })
    };

    let reply = alice.request(add("viewer")).await;
    assert!(
        matches!(reply.payload, Some(Payload::ProjectMemberAdded(_))),
        "{reply:?}"
    );
    let mut bob = connect(&server, BOB).await;
    bob.subscribe(&[&project.id]).await;
    let (items, _) = bob.work_items(&project.id).await;
    assert_eq!(items.len(), 1, "a viewer reads");
    let reply = bob
        .request(create_item_req(
            &project.id,
            proto::WorkItemType::Task,
            "no",
            None,
        ))
        .await;
    assert_eq!(error_code(&reply), "UNAUTHORIZED", "a viewer cannot write");

    alice.request(add("editor")).await;
    let mine = bob
        .create_item(&project.id, proto::WorkItemType::Task, "bob's", None)
        .await;
    let reply = bob
        .request(Payload::DeleteWorkItemRequest(
            proto::DeleteWorkItemRequest {
                work_item_id: item.id.clone(),
            },
        ))
        .await;
    match &reply.payload {
        Some(Payload::Error(e)) => assert!(e.message.contains("Required: Admin"), "{e:?}"),
        other => panic!("an editor cannot delete: {other:?}"),
    }
    let reply = alice
        .request(Payload::DeleteWorkItemRequest(
            proto::DeleteWorkItemRequest {
                work_item_id: mine.id,
            },
        ))
        .await;
    assert!(
        matches!(reply.payload, Some(Payload::WorkItemDeleted(_))),
        "an admin deletes: {reply:?}"
    );

    // Members are listed over WS and REST, admins first.
    let reply = bob
        .request(Payload::ListProjectMembersRequest(
            proto::ListProjectMembersRequest {
                project_id: project.id.clone(),
            },
        ))
        .await;
    let Some(Payload::ProjectMembersList(list)) = reply.payload else {
        panic!("{reply:?}")
    };
    let roles: Vec<(&str, &str)> = list
        .members
        .iter()
        .map(|m| (m.user_id.as_str(), m.role.as_str()))
        .collect();
    assert_eq!(roles, vec![(ALICE, "admin"), (BOB, "editor")]);
    let r: serde_json::Value = http(BOB)
        .get(format!(
            "http://{}/api/v1/projects/{}/members",
            server.addr, project.id
        ))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(r["members"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn a_removed_member_is_cut_off_at_once() {
    let server = team_server().await;
    let mut alice = connect(&server, ALICE).await;
    let project = alice.create_project("Team", "TM").await;
    alice
        .request(Payload::AddProjectMemberRequest(
            proto::AddProjectMemberRequest {
                project_id: project.id.clone(),
                user_id: BOB.into(),
                role: "editor".into(),
            },
        ))
        .await;
    let mut bob = connect(&server, BOB).await;
    bob.subscribe(&[&project.id]).await;
    alice
        .create_item(&project.id, proto::WorkItemType::Task, "seen", None)
        .await;
    let seen = bob.next_event(Duration::from_secs(5)).await;
    assert!(matches!(seen.payload, Some(Payload::ActivityLogCreated(_))));
    bob.take_events();

    let reply = alice
        .request(Payload::RemoveProjectMemberRequest(
            proto::RemoveProjectMemberRequest {
                project_id: project.id.clone(),
                user_id: BOB.into(),
            },
        ))
        .await;
    assert!(
        matches!(reply.payload, Some(Payload::ProjectMemberRemoved(_))),
        "{reply:?}"
    );
    // Bob learns he was removed, then hears nothing more.
    let mut removed = false;
    for e in bob.drain_events().await {
        removed |= matches!(e.payload, Some(Payload::ProjectMemberRemoved(_)));
    }
    assert!(removed, "the removal itself reaches the removed member");
    alice
        .create_item(&project.id, proto::WorkItemType::Task, "unseen", None)
        .await;
    bob.expect_no_event().await;
    let reply = bob
        .request(create_item_req(
            &project.id,
            proto::WorkItemType::Task,
            "no",
            None,
        ))
        .await;
    assert_eq!(error_code(&reply), "NOT_FOUND");

    // The last admin cannot leave, nor be demoted.
    let reply = alice
        .request(Payload::RemoveProjectMemberRequest(
            proto::RemoveProjectMemberRequest {
                project_id: project.id.clone(),
                user_id: ALICE.into(),
            },
        ))
        .await;
    assert_eq!(error_code(&reply), "VALIDATION_ERROR");
}

#[tokio::test]
async fn rest_creators_administer_their_projects() {
    let server = team_server().await;
    let alice = http(ALICE);
    let r: serde_json::Value = alice
        .post(format!("http://{}/api/v1/projects", server.addr))
        .json(&serde_json::json!({"title": "Via REST", "key": "VR"}))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    let pid = r["project"]["id"].as_str().expect("id").to_string();
    let added = alice
        .post(format!(
            "http://{}/api/v1/projects/{pid}/members",
            server.addr
        ))
        .json(&serde_json::json!({"user_id": BOB, "role": "viewer"}))
        .send()
        .await
        .expect("post");
    assert_eq!(added.status(), 200);
    let bob = http(BOB);
    let denied = bob
        .post(format!(
            "http://{}/api/v1/projects/{pid}/members",
            server.addr
        ))
        .json(&serde_json::json!({"user_id": ROOT, "role": "admin"}))
        .send()
        .await
        .expect("post");
    assert_eq!(denied.status(), 403, "a viewer cannot add members");
    let gone = alice
        .delete(format!(
            "http://{}/api/v1/projects/{pid}/members/{BOB}",
            server.addr
        ))
        .send()
        .await
        .expect("delete");
    assert_eq!(gone.status(), 200);
    let r = bob
        .get(format!("http://{}/api/v1/projects/{pid}", server.addr))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn admin_endpoints_need_an_admin_token() {
    sqlite_only!();
    let server = team_server().await;
    let url = format!("http://{}/admin/checkpoint", server.addr);
    let client = reqwest::Client::new();
    assert_eq!(client.post(&url).send().await.expect("post").status(), 401);
    assert_eq!(
        http(ALICE).post(&url).send().await.expect("post").status(),
        403
    );
    let admin = pm_server::auth::issue(SECRET, ROOT, vec!["admin".into()], 3600).expect("token");
    let r = client
        .post(&url)
        .bearer_auth(admin)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200);

    // Desktop mode: from the machine itself.
    let desktop = TestServer::start().await;
    let r = client
        .post(format!("http://{}/admin/checkpoint", desktop.addr))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200);
}

/// Sends `payloads` back to back while the writer is held, so that they are committed as one
/// group, then waits for all the answers.
async fn one_group(server: &TestServer, client: &mut WsClient, payloads: Vec<Payload>) {
    let writer = server.state.writer.pause().await;
    let ids: Vec<String> = (0..payloads.len())
        .map(|n| format!("group-{n}-{}", uuid::Uuid::new_v4()))
        .collect();
    for (id, payload) in ids.iter().zip(payloads) {
        client
            .send(&proto::WebSocketMessage {
                message_id: id.clone(),
                payload: Some(payload),
                ..Default::default()
            })
            .await;
    }
    let mut waited = 0;
    while server.state.writer.waiting() < ids.len() {
        waited += 1;
        assert!(waited < 500, "the writes never queued together");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(writer);
    for id in &ids {
        let answer = client.await_response(id).await;
        assert!(
            !matches!(answer.payload, Some(Payload::Error(_))),
            "{answer:?}"
        );
    }
}

fn retitle_project(project: &proto::Project, version: i32, title: &str) -> Payload {
    Payload::UpdateProjectRequest(proto::UpdateProjectRequest {
        project_id: project.id.clone(),
        expected_version: version,
        title: Some(title.into()),
        ..Default::default()
    })
}

fn titles_seen(events: &[proto::WebSocketMessage]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.payload {
            Some(Payload::ProjectUpdated(u)) => u.project.as_ref().map(|p| p.title.clone()),
            Some(Payload::WorkItemCreated(c)) => c.work_item.as_ref().map(|w| w.title.clone()),
            _ => None,
        })
        .collect()
}

/// Membership changes committed in one group with other writes take effect exactly at their
/// place in it: a new member gets what comes after the admission and nothing before it, a
/// removed member gets what came before the removal and nothing after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_changes_take_effect_at_their_place_in_a_group() {
    let server = team_server().await;
    let mut alice = connect(&server, ALICE).await;
    let project = alice.create_project("Grouped", "GRP").await;
    let mut bob = connect(&server, BOB).await;
    // Listing projects subscribes to the workspace stream, where project updates go.
    let (visible, _) = bob.list_projects().await;
    assert!(visible.is_empty());

    one_group(
        &server,
        &mut alice,
        vec![
            retitle_project(&project, project.version, "before admission"),
            Payload::AddProjectMemberRequest(proto::AddProjectMemberRequest {
                project_id: project.id.clone(),
                user_id: BOB.into(),
                role: "editor".into(),
            }),
            retitle_project(&project, project.version + 1, "after admission"),
        ],
    )
    .await;
    let seen = bob.drain_events().await;
    assert_eq!(titles_seen(&seen), ["after admission"]);

    bob.subscribe(&[&project.id]).await;
    one_group(
        &server,
        &mut alice,
        vec![
            create_item_req(
                &project.id,
                proto::WorkItemType::Task,
                "before removal",
                None,
            ),
            Payload::RemoveProjectMemberRequest(proto::RemoveProjectMemberRequest {
                project_id: project.id.clone(),
                user_id: BOB.into(),
            }),
            create_item_req(
                &project.id,
                proto::WorkItemType::Task,
                "after removal",
                None,
            ),
            retitle_project(&project, project.version + 2, "after removal"),
        ],
    )
    .await;
    let seen = bob.drain_events().await;
    assert_eq!(titles_seen(&seen), ["before removal"]);
    assert!(seen
        .iter()
        .any(|e| matches!(e.payload, Some(Payload::ProjectMemberRemoved(_)))));
}

const CAROL: &str = "00000000-0000-4000-8000-0000000ca201";

/// Whether any of `events` names the project: its id, its key or one of its titles, looked
/// for in the bytes as they came over the wire.
fn mentions(events: &[proto::WebSocketMessage], project: &proto::Project, titles: &[&str]) -> bool {
    use prost::Message as _;
    let needles: Vec<&str> = [project.id.as_str(), project.key.as_str()]
        .into_iter()
        .chain(titles.iter().copied())
        .collect();
    events.iter().any(|e| {
        let bytes = e.encode_to_vec();
        needles
            .iter()
            .any(|n| bytes.windows(n.len()).any(|w| w == n.as_bytes()))
    })
}

fn resume_workspace(last_seq: u64, epoch: &str) -> Payload {
    Payload::Subscribe(proto::Subscribe {
        cursors: vec![proto::ResumeCursor {
            stream: String::new(),
            last_seq,
            epoch: epoch.to_string(),
        }],
        ..Default::default()
    })
}

/// Resumes the workspace stream and returns everything that arrived with the replay, and up to
/// a barrier after it.
async fn replayed(
    client: &mut WsClient,
    last_seq: u64,
    epoch: &str,
) -> Vec<proto::WebSocketMessage> {
    let reply = client.request(resume_workspace(last_seq, epoch)).await;
    assert!(reply.payload.is_none(), "{reply:?}");
    client.drain_events().await
}

fn workspace_seqs(events: &[proto::WebSocketMessage]) -> Vec<u64> {
    events
        .iter()
        .filter(|e| e.seq > 0 && e.stream.is_empty())
        .map(|e| e.seq)
        .collect()
}

/// The seqs of the place-holders (EventWithheld) among `events`.
fn withheld(events: &[proto::WebSocketMessage]) -> Vec<u64> {
    events
        .iter()
        .filter(|e| matches!(e.payload, Some(Payload::EventWithheld(_))))
        .map(|e| e.seq)
        .collect()
}

/// Replaying the workspace stream (project lifecycle events) filters exactly as live delivery
/// does: a user who belongs to no project learns nothing of a private one, from 0 or from a
/// cursor in the middle, replayed or live (only place-holders with its seqs, so the stream has
/// no gap and a client store follows it without resyncing); a member gets all of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workspace_stream_replays_only_the_projects_one_belongs_to() {
    let server = team_server().await;
    let epoch = server.epoch();
    let mut alice = connect(&server, ALICE).await;
    // Workspace seq 1: the private project; 2: a project Bob is added to; 3: the private one
    // retitled.
    let secret = alice.create_project("Secret Plans", "SEC").await;
    let shared = alice.create_project("Shared Board", "SHR").await;
    for (project, user) in [(&secret, CAROL), (&shared, BOB)] {
        let reply = alice
            .request(Payload::AddProjectMemberRequest(
                proto::AddProjectMemberRequest {
                    project_id: project.id.clone(),
                    user_id: user.into(),
                    role: "viewer".into(),
                },
            ))
            .await;
        assert!(
            !matches!(reply.payload, Some(Payload::Error(_))),
            "{reply:?}"
        );
    }
    let reply = alice
        .request(retitle_project(&secret, secret.version, "Secret Plans II"))
        .await;
    assert!(
        !matches!(reply.payload, Some(Payload::Error(_))),
        "{reply:?}"
    );
    let titles = ["Secret Plans", "Secret Plans II", "Secret Plans III"];

    // Bob, from the start and from the middle: the shared project, and place-holders.
    let mut bob = connect(&server, BOB).await;
    let from_start = replayed(&mut bob, 0, &epoch).await;
    assert!(!mentions(&from_start, &secret, &titles), "{from_start:?}");
    assert_eq!(workspace_seqs(&from_start), [1, 2, 3], "{from_start:?}");
    assert_eq!(withheld(&from_start), [1, 3], "{from_start:?}");
    let mut bob_mid = connect(&server, BOB).await;
    let seen = replayed(&mut bob_mid, 1, &epoch).await;
    assert!(!mentions(&seen, &secret, &titles), "{seen:?}");
    assert_eq!(workspace_seqs(&seen), [2, 3], "{seen:?}");
    assert_eq!(withheld(&seen), [3], "{seen:?}");

    // Carol, a member of the private project: its creation and its update, in both cases.
    let mut carol = connect(&server, CAROL).await;
    let seen = replayed(&mut carol, 0, &epoch).await;
    assert_eq!(workspace_seqs(&seen), [1, 2, 3], "{seen:?}");
    assert_eq!(withheld(&seen), [2], "{seen:?}");
    assert!(mentions(&seen, &secret, &titles));
    let mut carol_mid = connect(&server, CAROL).await;
    let seen = replayed(&mut carol_mid, 2, &epoch).await;
    assert_eq!(workspace_seqs(&seen), [3], "{seen:?}");
    assert!(mentions(&seen, &secret, &titles));

    // Live, on the same subscriptions: the private project's next update reaches Carol; Bob
    // gets its place-holder.
    let reply = alice
        .request(retitle_project(
            &secret,
            secret.version + 1,
            "Secret Plans III",
        ))
        .await;
    assert!(
        !matches!(reply.payload, Some(Payload::Error(_))),
        "{reply:?}"
    );
    for carol in [&mut carol, &mut carol_mid] {
        // Its ActivityLogCreated (unnumbered), then the event.
        let mut e = carol.next_event(TIMEOUT).await;
        while e.seq == 0 {
            e = carol.next_event(TIMEOUT).await;
        }
        assert_eq!((e.seq, e.stream.as_str()), (4, ""), "{e:?}");
        assert!(mentions(&[e], &secret, &titles));
    }
    let mut live = Vec::new();
    for bob in [&mut bob, &mut bob_mid] {
        let seen = bob.drain_events().await;
        assert!(!mentions(&seen, &secret, &titles), "{seen:?}");
        assert_eq!(withheld(&seen), [4], "{seen:?}");
        live = seen;
    }

    // Bob's board follows the workspace stream without a gap, knowing the shared project only.
    let mut store = pm_shared::store::ClientStore::new();
    store.load_projects(Vec::new(), 0, &epoch);
    for msg in from_start.iter().chain(&live) {
        let outcome = store.apply(msg);
        assert!(
            !matches!(outcome, pm_shared::store::Outcome::Resync { .. }),
            "{outcome:?} on {msg:?}"
        );
    }
    assert_eq!(store.cursor(""), Some((4, epoch.clone())));
    assert_eq!(store.projects.keys().collect::<Vec<_>>(), [&shared.id]);
}
