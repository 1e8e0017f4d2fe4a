//! The chaos test: several SDK clients with stores; random mutations from all of them over WS
//! and REST; random socket drops; one client that never reads; a server restart on the same
//! database in the middle. At the end every client's store must equal a fresh snapshot read from
//! the database, field by field.
//!
//! On PostgreSQL (`PM_TEST_DATABASE_URL`) a second run has three servers on one database:
//! each client is given all three (its own first), writes go through any of them, and one
//! server is stopped in the middle and started again later on the same address; the clients on
//! it move to another and resume there.
//!
//! Seeded and bounded: 3 seeds on one server, 100 on three. `PM_CHAOS_SEEDS=7` runs seed 7
//! only; `PM_CHAOS_LONG=1` runs ten times as many, at least 200 (the nightly size).
//! A failure names its seed.
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::SinkExt;
use pm_client::replica::Replica;
use pm_client::sdk::{self, SessionConfig, SessionHandle};
use pm_server::SharedState;
use pm_shared::proto::{self, Payload};
use prost::Message as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::mpsc;

const CLIENTS: usize = 4;
const TIMEOUT: Duration = Duration::from_secs(5);

type Node = pm_server::testing::TestServer<std::path::PathBuf>;

async fn start(dir: &std::path::Path) -> Node {
    Node::start(dir.to_path_buf(), |config| {
        // Tiny queues: bursts overflow them, so cut-offs and resyncs happen during the run.
        config.send_buffer = 8;
    })
    .await
    .expect("start the server")
}

/// A server on `addr` (a stopped server's, so its clients find it there again).
async fn start_at(dir: &std::path::Path, addr: std::net::SocketAddr) -> Node {
    let mut tries = 0;
    let listener = loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => break l,
            Err(e) if tries < 50 => {
                tries += 1;
                eprintln!("binding {addr} again: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("cannot bind {addr} again: {e}"),
        }
    };
    Node::start_on(listener, dir.to_path_buf(), |config| config.send_buffer = 8)
        .await
        .expect("start the server")
}

/// Stops `node`; how it went does not matter to the run (its clients' stores are compared with
/// the database afterwards).
async fn shutdown(node: Node) {
    let _ = node.stop().await;
}

struct Client {
    user: String,
    handle: SessionHandle,
    replica: Arc<Mutex<Replica>>,
}

/// Where a client finds its server: the one server's current URL (it moves when the server is
/// restarted), or a list of servers sharing the database, its own first.
enum Finding {
    Located(Arc<Mutex<String>>),
    Servers(Vec<String>),
}

fn client(finding: Finding, user: String, project: String) -> Client {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut config = match finding {
        Finding::Located(url) => {
            let current = url.lock().expect("url").clone();
            let mut config = SessionConfig::new(current, user.clone());
            config.locate = Some(Arc::new(move || Some(url.lock().expect("url").clone())));
            config
        }
        Finding::Servers(mut urls) => {
            let mut config = SessionConfig::new(urls.remove(0), user.clone());
            config.fallbacks = urls;
            config
        }
    };
    config.max_backoff = Duration::from_millis(300);
    let handle = sdk::spawn(config, move |e| {
        let _ = tx.send(e);
    });
    let replica = Arc::new(Mutex::new(Replica::new(Some(project))));
    let (h, r) = (handle.clone(), replica.clone());
    tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            r.lock().expect("replica").on_net(&h, &event);
        }
    });
    Client {
        user,
        handle,
        replica,
    }
}

/// The truth: what a fresh snapshot of the database says.
async fn truth(state: &SharedState, project: &str) -> String {
    let snap = pm_server::reads::project_snapshot(
        &state.store,
        &pm_server::access::Viewer::system(),
        project,
    )
    .await
    .expect("snapshot")
    .items;
    let items: BTreeMap<_, _> = snap
        .work_items
        .into_iter()
        .map(|w| (w.id.clone(), w))
        .collect();
    let sprints: BTreeMap<_, _> = snap
        .sprints
        .into_iter()
        .map(|s| (s.id.clone(), s))
        .collect();
    let comments: BTreeMap<_, _> = snap
        .comments
        .into_iter()
        .map(|c| (c.id.clone(), c))
        .collect();
    render(snap.project, &items, &sprints, &comments)
}

fn seen(c: &Client, project: &str) -> String {
    let r = c.replica.lock().expect("replica");
    let s = &r.store;
    render(
        s.projects.get(project).cloned(),
        &s.work_items,
        &s.sprints,
        &s.comments,
    )
}

/// Field by field, except `next_work_item_number`, which changes with every created item but
/// is not itself announced by an event (see the README's notes on project counters).
fn render(
    project: Option<proto::Project>,
    items: &BTreeMap<String, proto::WorkItem>,
    sprints: &BTreeMap<String, proto::Sprint>,
    comments: &BTreeMap<String, proto::Comment>,
) -> String {
    let project = project.map(|p| proto::Project {
        next_work_item_number: 0,
        ..p
    });
    format!("{project:#?}\n{items:#?}\n{sprints:#?}\n{comments:#?}")
}

async fn run(seed: u64, servers: usize) -> Result<(), String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut node = start(dir.path()).await;
    let url = Arc::new(Mutex::new(node.url()));
    let http = reqwest::Client::new();
    // The other servers on the same database (PostgreSQL), each with a directory of its own.
    let mut others: Vec<(tempfile::TempDir, Option<Node>)> = Vec::new();
    if servers > 1 {
        let shared = std::fs::read_to_string(dir.path().join("postgres-database"))
            .map_err(|e| format!("the first server's database: {e}"))?;
        for _ in 1..servers {
            let d = tempfile::tempdir().map_err(|e| e.to_string())?;
            std::fs::write(d.path().join("postgres-database"), &shared)
                .map_err(|e| e.to_string())?;
            let n = start(d.path()).await;
            others.push((d, Some(n)));
        }
    }
    let mut all_urls = vec![node.url()];
    all_urls.extend(
        others
            .iter()
            .filter_map(|(_, n)| n.as_ref().map(|n| n.url())),
    );

    let res: serde_json::Value = http
        .post(format!("{}/api/v1/projects", node.url()))
        .json(&serde_json::json!({"title": "Chaos", "key": "CH"}))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let project = res["project"]["id"]
        .as_str()
        .ok_or("no project id")?
        .to_string();

    let clients: Vec<Client> = (0..CLIENTS)
        .map(|i| {
            let finding = if servers > 1 {
                let mut urls = all_urls.clone();
                urls.rotate_left(i % servers);
                Finding::Servers(urls)
            } else {
                Finding::Located(url.clone())
            };
            client(
                finding,
                format!("00000000-0000-4000-8000-{:012}", i + 10),
                project.clone(),
            )
        })
        .collect();
    for c in &clients {
        if !c.handle.connected(TIMEOUT).await {
            return Err("client did not connect".into());
        }
    }

    // One client that subscribes and then never reads a byte.
    let ws_url = format!("{}/ws", node.url().replacen("http", "ws", 1));
    let (mut slow, _) = tokio_tungstenite::connect_async(ws_url)
        .await
        .map_err(|e| e.to_string())?;
    let sub = proto::WebSocketMessage::with_payload(
        "slow",
        Payload::Subscribe(proto::Subscribe {
            project_ids: vec![project.clone()],
            ..Default::default()
        }),
    );
    slow.send(tokio_tungstenite::tungstenite::Message::Binary(
        sub.encode_to_vec().into(),
    ))
    .await
    .map_err(|e| e.to_string())?;

    let ops = rng.random_range(60..140);
    let mut committed = 0usize;
    let restart_at = rng.random_range(ops / 3..2 * ops / 3);
    // Several servers: one of the others is down from `restart_at` to `back_at`.
    let back_at = rng.random_range(restart_at + 1..ops);
    let victim = if others.is_empty() {
        0
    } else {
        rng.random_range(0..others.len())
    };
    let mut victim_addr = None;
    for op in 0..ops {
        if op == restart_at && others.is_empty() {
            shutdown(node).await;
            node = start(dir.path()).await;
            *url.lock().expect("url") = node.url();
        } else if op == restart_at {
            if let Some(n) = others[victim].1.take() {
                victim_addr = Some(n.addr);
                shutdown(n).await;
            }
        } else if op == back_at && !others.is_empty() {
            if let Some(addr) = victim_addr.take() {
                let back = start_at(others[victim].0.path(), addr).await;
                others[victim].1 = Some(back);
            }
        }
        let who = &clients[rng.random_range(0..CLIENTS)];
        let roll = rng.random_range(0..100);
        if roll < 5 {
            who.handle.reconnect();
            continue;
        }
        let (items, comments, sprints) = {
            let r = who.replica.lock().expect("replica");
            let items: Vec<proto::WorkItem> = r.store.work_items.values().cloned().collect();
            let comments: Vec<proto::Comment> = r
                .store
                .comments
                .values()
                .filter(|c| c.created_by == who.user)
                .cloned()
                .collect();
            let sprints: Vec<proto::Sprint> = r.store.sprints.values().cloned().collect();
            (items, comments, sprints)
        };
        let pick_item = |rng: &mut StdRng| {
            (!items.is_empty()).then(|| items[rng.random_range(0..items.len())].clone())
        };
        let reparent = rng.random_bool(0.2);
        let kind = [
            proto::WorkItemType::Epic,
            proto::WorkItemType::Story,
            proto::WorkItemType::Task,
        ][rng.random_range(0..3)];
        let payload = match roll {
            5..=29 => Payload::CreateWorkItemRequest(proto::CreateWorkItemRequest {
                item_type: kind as i32,
                parent_id: parent_for(&mut rng, kind, &items),
                title: format!("item {seed}-{op}"),
                project_id: project.clone(),
                status: Some(
                    ["backlog", "todo", "in_progress", "review", "done"][rng.random_range(0..5)]
                        .into(),
                ),
                ..Default::default()
            }),
            30..=59 => match pick_item(&mut rng) {
                Some(w) => {
                    Payload::UpdateWorkItemRequest(proto::UpdateWorkItemRequest {
                        work_item_id: w.id,
                        expected_version: w.version,
                        status: Some(
                            ["backlog", "todo", "in_progress", "review", "done"]
                                [rng.random_range(0..5)]
                            .into(),
                        ),
                        priority: rng.random_bool(0.5).then(|| {
                            ["low", "medium", "high", "critical"][rng.random_range(0..4)].into()
                        }),
                        story_points: rng.random_bool(0.3).then(|| rng.random_range(0..13)),
                        title: rng.random_bool(0.2).then(|| format!("renamed {op}")),
                        // Sometimes re-parent (or orphan) the item: relatives' lists change too.
                        update_parent: reparent,
                        parent_id: if reparent {
                            parent_for(
                                &mut rng,
                                proto::WorkItemType::try_from(w.item_type).unwrap_or_default(),
                                &items,
                            )
                        } else {
                            None
                        },
                        ..Default::default()
                    })
                }
                None => continue,
            },
            60..=67 => match pick_item(&mut rng) {
                Some(w) => Payload::DeleteWorkItemRequest(proto::DeleteWorkItemRequest {
                    work_item_id: w.id,
                }),
                None => continue,
            },
            68..=79 => match pick_item(&mut rng) {
                Some(w) => Payload::CreateCommentRequest(proto::CreateCommentRequest {
                    work_item_id: w.id,
                    content: format!("note {op}"),
                }),
                None => continue,
            },
            80..=85 if !comments.is_empty() => {
                let c = &comments[rng.random_range(0..comments.len())];
                if rng.random_bool(0.5) {
                    Payload::UpdateCommentRequest(proto::UpdateCommentRequest {
                        comment_id: c.id.clone(),
                        content: format!("edited {op}"),
                    })
                } else {
                    Payload::DeleteCommentRequest(proto::DeleteCommentRequest {
                        comment_id: c.id.clone(),
                    })
                }
            }
            86..=91 => {
                let now = pm_shared::now_secs();
                Payload::CreateSprintRequest(proto::CreateSprintRequest {
                    project_id: project.clone(),
                    name: format!("sprint {op}"),
                    goal: None,
                    start_date: now,
                    end_date: now + 14 * 86_400,
                })
            }
            92..=95 if !sprints.is_empty() => {
                let s = &sprints[rng.random_range(0..sprints.len())];
                Payload::UpdateSprintRequest(proto::UpdateSprintRequest {
                    sprint_id: s.id.clone(),
                    expected_version: s.version,
                    name: Some(format!("sprint renamed {op}")),
                    ..Default::default()
                })
            }
            _ => {
                let version = who
                    .replica
                    .lock()
                    .expect("replica")
                    .store
                    .projects
                    .get(&project)
                    .map_or(1, |p| p.version);
                Payload::UpdateProjectRequest(proto::UpdateProjectRequest {
                    project_id: project.clone(),
                    expected_version: version,
                    title: Some(format!("Chaos {op}")),
                    ..Default::default()
                })
            }
        };
        // Half over WebSocket, half over REST (for the kinds REST has), through any server
        // that is up.
        let mut up: Vec<String> = vec![url.lock().expect("url").clone()];
        up.extend(
            others
                .iter()
                .filter_map(|(_, n)| n.as_ref().map(|n| n.url())),
        );
        let base = up[rng.random_range(0..up.len())].clone();
        let ok = if rng.random_bool(0.5) {
            rest(&http, &base, &who.user, payload)
                .await
                .unwrap_or(false)
        } else {
            who.handle.request(payload, TIMEOUT).await.is_ok()
        };
        committed += usize::from(ok);
    }
    if committed < ops / 4 {
        return Err(format!(
            "only {committed} of {ops} operations succeeded: the run tested too little"
        ));
    }

    // Everyone must converge on the database's truth, read afresh each time: a request whose
    // answer the client never got (its socket dropped, or its wait timed out, after the frame
    // went out) may still be committed after the last operation, and its event must then reach
    // every client too. An event the database never commits keeps the two apart until the
    // deadline.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let want = truth(&node.state, &project).await;
        let diverged: Vec<usize> = (0..CLIENTS)
            .filter(|i| seen(&clients[*i], &project) != want)
            .collect();
        if diverged.is_empty() {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            let i = diverged[0];
            return Err(format!(
                "clients {diverged:?} did not converge.\n--- truth ---\n{want}\n--- client {i} ---\n{}",
                seen(&clients[i], &project)
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let events = pm_server::reads::project_snapshot(
        &node.state.store,
        &pm_server::access::Viewer::system(),
        &project,
    )
    .await
    .map_err(|e| e.to_string())?
    .seq;
    eprintln!("chaos seed {seed}: {committed}/{ops} operations committed, {events} events, all {CLIENTS} clients converged");
    for c in &clients {
        c.handle.close();
    }
    drop(slow);
    shutdown(node).await;
    for (_, n) in others {
        if let Some(n) = n {
            shutdown(n).await;
        }
    }
    Ok(())
}

/// Sends a command over REST where REST has that command, else over WS.
async fn rest(
    http: &reqwest::Client,
    base: &str,
    user: &str,
    payload: Payload,
) -> Result<bool, reqwest::Error> {
    use serde_json::json;
    let (method, path, body) = match payload {
        Payload::CreateWorkItemRequest(r) => (
            reqwest::Method::POST,
            "/api/v1/work-items".to_string(),
            json!({"project_id": r.project_id, "title": r.title, "status": r.status, "parent_id": r.parent_id,
            "item_type": match proto::WorkItemType::try_from(r.item_type) {
                Ok(proto::WorkItemType::Epic) => "epic",
                Ok(proto::WorkItemType::Story) => "story",
                _ => "task",
            }}),
        ),
        Payload::UpdateWorkItemRequest(r) => (
            reqwest::Method::PUT,
            format!("/api/v1/work-items/{}", r.work_item_id),
            json!({"expected_version": r.expected_version, "status": r.status, "priority": r.priority,
                   "story_points": r.story_points, "title": r.title,
                   "update_parent": r.update_parent, "parent_id": r.parent_id}),
        ),
        Payload::DeleteWorkItemRequest(r) => (
            reqwest::Method::DELETE,
            format!("/api/v1/work-items/{}", r.work_item_id),
            json!({}),
        ),
        Payload::CreateCommentRequest(r) => (
            reqwest::Method::POST,
            format!("/api/v1/work-items/{}/comments", r.work_item_id),
            json!({"content": r.content}),
        ),
        Payload::UpdateCommentRequest(r) => (
            reqwest::Method::PUT,
            format!("/api/v1/comments/{}", r.comment_id),
            json!({"content": r.content}),
        ),
        Payload::DeleteCommentRequest(r) => (
            reqwest::Method::DELETE,
            format!("/api/v1/comments/{}", r.comment_id),
            json!({}),
        ),
        Payload::CreateSprintRequest(r) => (
            reqwest::Method::POST,
            "/api/v1/sprints".to_string(),
            json!({"project_id": r.project_id, "name": r.name, "start_date": r.start_date, "end_date": r.end_date}),
        ),
        Payload::UpdateSprintRequest(r) => (
            reqwest::Method::PUT,
            format!("/api/v1/sprints/{}", r.sprint_id),
            json!({"expected_version": r.expected_version, "name": r.name}),
        ),
        Payload::UpdateProjectRequest(r) => (
            reqwest::Method::PUT,
            format!("/api/v1/projects/{}", r.project_id),
            json!({"expected_version": r.expected_version, "title": r.title}),
        ),
        _ => return Ok(false),
    };
    let mut req = http
        .request(method.clone(), format!("{base}{path}"))
        .header("x-user-id", user);
    if method != reqwest::Method::DELETE {
        req = req.json(&body);
    }
    req.timeout(TIMEOUT)
        .send()
        .await
        .map(|r| r.status().is_success())
}

/// A parent of the right type for `kind` (epic for a story, story for a task), sometimes none.
fn parent_for(
    rng: &mut StdRng,
    kind: proto::WorkItemType,
    items: &[proto::WorkItem],
) -> Option<String> {
    let wanted = match kind {
        proto::WorkItemType::Story => proto::WorkItemType::Epic,
        proto::WorkItemType::Task => proto::WorkItemType::Story,
        _ => return None,
    };
    let candidates: Vec<&proto::WorkItem> = items
        .iter()
        .filter(|w| w.item_type == wanted as i32)
        .collect();
    if candidates.is_empty() || rng.random_bool(0.3) {
        return None;
    }
    Some(candidates[rng.random_range(0..candidates.len())].id.clone())
}

/// The seeds to run: `PM_CHAOS_SEEDS`, else `count` random ones (`PM_CHAOS_LONG=1`: ten times
/// as many, at least 200: the nightly size).
fn seeds(count: u64) -> Vec<u64> {
    if let Ok(list) = std::env::var("PM_CHAOS_SEEDS") {
        return list
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect();
    }
    let count = if std::env::var("PM_CHAOS_LONG").is_ok_and(|v| v == "1") {
        (count * 10).max(200)
    } else {
        count
    };
    let base: u64 = rand::random_range(0..1_000_000);
    (base..base + count).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_converges_on_the_database() {
    for seed in seeds(3) {
        eprintln!("chaos seed {seed}");
        if let Err(e) = run(seed, 1).await {
            panic!("chaos seed {seed} failed (reproduce with PM_CHAOS_SEEDS={seed}): {e}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_of_three_servers_converges_on_the_database() {
    if !pm_server::testing::on_postgres() {
        eprintln!("PostgreSQL only: set PM_TEST_DATABASE_URL to run");
        return;
    }
    // A run takes about half a second: 100 seeds in CI, 1,000 nightly (PM_CHAOS_LONG=1).
    for seed in seeds(100) {
        eprintln!("chaos seed {seed}, three servers");
        if let Err(e) = run(seed, 3).await {
            panic!("chaos seed {seed} (three servers) failed (reproduce with PM_CHAOS_SEEDS={seed}): {e}");
        }
    }
}
