//! A bounded random-input test: thousands of malformed, truncated, mutated and mistyped frames
//! and bodies against a live server. Every frame gets exactly one proper reply (an `Error`, or
//! the normal answer to a harmless read), every REST call a 4xx with the error JSON, the server
//! keeps serving, and the data is unchanged. Seeded: `PM_FUZZ_SEED`, `PM_FUZZ_FRAMES`.

use std::time::Duration;

use crate::common::*;
use pm_shared::proto::{self, Payload, WebSocketMessage};
use prost::Message as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const USER: &str = "00000000-0000-4000-8000-0000000000f1";

/// Requests that must all fail: they name entities that do not exist or break a rule.
fn invalid_templates(rng: &mut StdRng, project: &str) -> Vec<Payload> {
    let ghost = || uuid::Uuid::new_v4().to_string();
    let long = "x".repeat(rng.random_range(201..400));
    vec![
        Payload::CreateWorkItemRequest(proto::CreateWorkItemRequest {
            item_type: 9,
            title: "t".into(),
            project_id: project.into(),
            ..Default::default()
        }),
        Payload::CreateWorkItemRequest(proto::CreateWorkItemRequest {
            item_type: 4,
            title: long.clone(),
            project_id: project.into(),
            ..Default::default()
        }),
        Payload::CreateWorkItemRequest(proto::CreateWorkItemRequest {
            item_type: 4,
            title: "t".into(),
            project_id: ghost(),
            ..Default::default()
        }),
        Payload::CreateWorkItemRequest(proto::CreateWorkItemRequest {
            item_type: 4,
            title: "  ".into(),
            project_id: project.into(),
            ..Default::default()
        }),
        Payload::UpdateWorkItemRequest(proto::UpdateWorkItemRequest {
            work_item_id: ghost(),
            expected_version: 1,
            title: Some("x".into()),
            ..Default::default()
        }),
        Payload::UpdateWorkItemRequest(proto::UpdateWorkItemRequest {
            work_item_id: "not-a-uuid".into(),
            ..Default::default()
        }),
        Payload::DeleteWorkItemRequest(proto::DeleteWorkItemRequest {
            work_item_id: ghost(),
        }),
        Payload::CreateCommentRequest(proto::CreateCommentRequest {
            work_item_id: ghost(),
            content: "c".into(),
        }),
        Payload::UpdateCommentRequest(proto::UpdateCommentRequest {
            comment_id: ghost(),
            content: "c".into(),
        }),
        Payload::DeleteCommentRequest(proto::DeleteCommentRequest {
            comment_id: ghost(),
        }),
        Payload::CreateSprintRequest(proto::CreateSprintRequest {
            project_id: ghost(),
            name: "s".into(),
            goal: None,
            start_date: 1,
            end_date: 0,
        }),
        Payload::UpdateSprintRequest(proto::UpdateSprintRequest {
            sprint_id: ghost(),
            expected_version: 1,
            ..Default::default()
        }),
        Payload::DeleteSprintRequest(proto::DeleteSprintRequest { sprint_id: ghost() }),
        Payload::UpdateProjectRequest(proto::UpdateProjectRequest {
            project_id: ghost(),
            expected_version: 1,
            ..Default::default()
        }),
        Payload::DeleteProjectRequest(proto::DeleteProjectRequest {
            project_id: project.into(),
            expected_version: 99,
        }),
        Payload::CreateProjectRequest(proto::CreateProjectRequest {
            title: "t".into(),
            description: None,
            key: "a-b!".into(),
        }),
        Payload::GetWorkItemsRequest(proto::GetWorkItemsRequest {
            project_id: ghost(),
            since_timestamp: None,
        }),
        Payload::GetCommentsRequest(proto::GetCommentsRequest {
            work_item_id: "%%%".into(),
        }),
        Payload::Pong(proto::Pong { timestamp: 1 }),
        Payload::WorkItemsList(proto::WorkItemsList::default()),
        Payload::Error(proto::Error::default()),
    ]
}

/// Could this decoded frame change data? (Mutations are skipped unless they name the real
/// project in a way that can succeed; everything generated from templates names ghosts.)
fn could_write(msg: &WebSocketMessage, project: &str) -> bool {
    match &msg.payload {
        Some(Payload::CreateProjectRequest(r)) => {
            pm_shared::domain::project_key(&r.key).is_ok() && !r.title.trim().is_empty()
        }
        Some(Payload::CreateWorkItemRequest(r)) => r.project_id == project,
        Some(Payload::CreateSprintRequest(r)) => r.project_id == project,
        Some(Payload::DeleteProjectRequest(r)) => r.project_id == project,
        Some(Payload::UpdateProjectRequest(r)) => r.project_id == project,
        _ => false,
    }
}

#[tokio::test]
async fn random_frames_and_bodies_get_proper_errors_and_change_nothing() {
    let seed: u64 = std::env::var("PM_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| rand::random_range(0..1_000_000));
    let frames: usize = std::env::var("PM_FUZZ_FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    eprintln!("random input seed {seed} ({frames} frames); reproduce with PM_FUZZ_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let server = TestServer::start_with(|c| {
        c.rate_limit_per_sec = 1_000_000;
        c.rate_limit_burst = 1_000_000;
    })
    .await;
    let mut client = server.connect(USER).await;
    let project = client.create_project("Fuzz", "FZ").await;
    let epic = client
        .create_item(&project.id, proto::WorkItemType::Epic, "Epic", None)
        .await;
    client
        .create_item(
            &project.id,
            proto::WorkItemType::Story,
            "Story",
            Some(&epic.id),
        )
        .await;
    client.create_comment(&epic.id, "hello").await;
    let baseline = snapshot(&mut client, &project.id).await;

    // --- WebSocket frames -----------------------------------------------------------------
    let mut fuzzer = server.connect(USER).await;
    let mut expected = 0usize;
    for i in 0..frames {
        let templates = invalid_templates(&mut rng, &project.id);
        let valid = WebSocketMessage::with_payload(
            format!("f{i}"),
            templates[rng.random_range(0..templates.len())].clone(),
        )
        .encode_to_vec();
        let bytes: Vec<u8> = match rng.random_range(0..4) {
            0 => (0..rng.random_range(0..64)).map(|_| rng.random()).collect(),
            1 => valid[..rng.random_range(0..valid.len())].to_vec(),
            2 => {
                let mut v = valid.clone();
                for _ in 0..rng.random_range(1..4) {
                    let at = rng.random_range(0..v.len());
                    v[at] = rng.random();
                }
                v
            }
            _ => valid,
        };
        if let Ok(decoded) = WebSocketMessage::decode(bytes.as_slice()) {
            if could_write(&decoded, &project.id) {
                continue;
            }
        }
        fuzzer
            .send_raw(tokio_tungstenite::tungstenite::Message::Binary(
                bytes.into(),
            ))
            .await;
        expected += 1;
        if i % 50 == 0 {
            fuzzer
                .send_raw(tokio_tungstenite::tungstenite::Message::Text(
                    "{\"not\": \"protobuf\"}".into(),
                ))
                .await;
            expected += 1;
        }
    }
    let mut replies = 0;
    while replies < expected {
        let msg = fuzzer.next_event(Duration::from_secs(10)).await;
        match &msg.payload {
            Some(Payload::Error(e)) => {
                assert!(
                    [
                        "VALIDATION_ERROR",
                        "INVALID_MESSAGE",
                        "NOT_FOUND",
                        "CONFLICT",
                        "UNAUTHORIZED",
                        "DELETE_BLOCKED"
                    ]
                    .contains(&e.code.as_str()),
                    "improper error {e:?} (seed {seed})"
                );
                assert!(
                    !e.message.contains("SQL") && !e.message.contains(".rs:"),
                    "leaked internals: {e:?}"
                );
            }
            // Harmless reads and pings that survived mutation are answered normally.
            Some(Payload::ResyncRequired(_)) => {}
            Some(
                Payload::Pong(_)
                | Payload::WorkItemsList(_)
                | Payload::CommentsList(_)
                | Payload::SprintsList(_)
                | Payload::ProjectList(_)
                | Payload::ActivityLogList(_)
                | Payload::ProjectSnapshot(_)
                | Payload::UserList(_),
            )
            | None => {}
            // An update that changes nothing answers with the current entity.
            Some(
                Payload::WorkItemUpdated(_)
                | Payload::SprintUpdated(_)
                | Payload::ProjectUpdated(_),
            ) if msg.seq == 0 => {}
            Some(
                Payload::ProjectMembersList(_)
                | Payload::DependenciesList(_)
                | Payload::TimeEntriesList(_)
                | Payload::RunningTimerResponse(_)
                | Payload::LlmContextList(_),
            ) => {}
            Some(Payload::TimeEntryUpdated(_)) if msg.seq == 0 => {}
            other => panic!("unexpected reply {other:?} to a fuzzed frame (seed {seed})"),
        }
        // Everything but a numbered event (and the ResyncRequired a fuzzed cursor may earn) is
        // the one reply to one frame.
        let event = msg.seq > 0 && pm_shared::store::is_event(msg.payload.as_ref());
        if !event && !matches!(msg.payload, Some(Payload::ResyncRequired(_))) {
            replies += 1;
        }
    }

    // --- REST bodies ----------------------------------------------------------------------
    let http = server.http(Some(USER));
    let ghost = uuid::Uuid::new_v4();
    let routes: Vec<(reqwest::Method, String)> = vec![
        (reqwest::Method::POST, "/api/v1/projects".into()),
        (reqwest::Method::PUT, format!("/api/v1/projects/{ghost}")),
        (reqwest::Method::POST, "/api/v1/work-items".into()),
        (reqwest::Method::PUT, format!("/api/v1/work-items/{ghost}")),
        (reqwest::Method::POST, "/api/v1/sprints".into()),
        (reqwest::Method::PUT, format!("/api/v1/sprints/{ghost}")),
        (
            reqwest::Method::POST,
            format!("/api/v1/work-items/{ghost}/comments"),
        ),
        (reqwest::Method::PUT, format!("/api/v1/comments/{ghost}")),
    ];
    for _ in 0..frames / 10 {
        let (method, path) = &routes[rng.random_range(0..routes.len())];
        let body = random_body(&mut rng);
        let mut req = http.request(method.clone(), path).body(body.clone());
        if rng.random_bool(0.9) {
            req = req.header("content-type", "application/json");
        }
        let reply = http.run(req).await;
        assert!(
            (400..500).contains(&reply.status),
            "{method} {path} {body:?} -> {reply:?} (seed {seed})"
        );
        assert!(
            reply.body["error"]["code"].is_string() && reply.body["error"]["message"].is_string(),
            "{reply:?}"
        );
    }

    // --- Still serving, nothing changed ---------------------------------------------------------
    assert_eq!(
        snapshot(&mut client, &project.id).await,
        baseline,
        "data changed (seed {seed})"
    );
    let ok = client
        .create_item(&project.id, proto::WorkItemType::Task, "still works", None)
        .await;
    assert_eq!(ok.title, "still works");
}

/// Project list, the project's snapshot and its seq, as one comparable value.
async fn snapshot(
    client: &mut WsClient,
    project: &str,
) -> (Vec<proto::Project>, proto::ProjectSnapshot, u64) {
    let (projects, _) = client.list_projects().await;
    let reply = client
        .request(Payload::GetProjectSnapshotRequest(
            proto::GetProjectSnapshotRequest {
                project_id: project.into(),
                ..Default::default()
            },
        ))
        .await;
    let seq = reply.seq;
    let Some(Payload::ProjectSnapshot(mut snap)) = reply.payload else {
        panic!("{reply:?}")
    };
    snap.users.clear();
    (projects, snap, seq)
}

/// JSON with the wrong shape for every route (so nothing can be created), or not JSON at all.
fn random_body(rng: &mut StdRng) -> String {
    let scalar = |rng: &mut StdRng| -> Value {
        match rng.random_range(0..5) {
            0 => json!(rng.random::<i64>()),
            1 => json!(rng.random_bool(0.5)),
            2 => Value::Null,
            3 => json!([1, "two", null]),
            _ => json!({"nested": {"deeper": rng.random::<u8>()}}),
        }
    };
    match rng.random_range(0..4) {
        0 => (0..rng.random_range(0..40))
            .map(|_| rng.random_range(b' '..=b'~') as char)
            .collect(),
        1 => {
            // Every known field with a wrong type.
            let mut o = serde_json::Map::new();
            for f in [
                "title",
                "key",
                "project_id",
                "item_type",
                "name",
                "content",
                "expected_version",
                "start_date",
                "status",
            ] {
                if rng.random_bool(0.7) {
                    o.insert(f.into(), scalar(rng));
                }
            }
            o.insert("title".into(), scalar(rng));
            o.insert("content".into(), scalar(rng));
            o.insert("name".into(), scalar(rng));
            o.insert("expected_version".into(), json!("not a number"));
            Value::Object(o).to_string()
        }
        2 => {
            let v = json!({"title": "t", "key": "K", "expected_version": 1, "content": "c"})
                .to_string();
            v[..rng.random_range(0..v.len())].to_string()
        }
        _ => scalar(rng).to_string(),
    }
}
