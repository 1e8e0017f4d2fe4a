//! Several servers on one PostgreSQL database (`PM_TEST_DATABASE_URL`, see
//! `pm_server::testing`): writers on every server, subscribers on every server, and every
//! subscriber gets every change of every server, in seq order, once; a client's cursor from
//! one server is honoured by another.
use std::collections::BTreeSet;
use std::time::Duration;

use crate::common::*;
use pm_server::store::events;
use pm_shared::proto::{self, Payload, WebSocketMessage, WorkItemType};

/// Ends a test that needs several servers on one database, when the suite runs on SQLite.
macro_rules! postgres_only {
    () => {
        if !pm_server::testing::on_postgres() {
            eprintln!("PostgreSQL only: set PM_TEST_DATABASE_URL to run");
            return;
        }
    };
}

/// `n` servers sharing the first one's PostgreSQL database, each with a data directory (and a
/// port file) of its own.
async fn nodes(n: usize) -> Vec<TestServer> {
    nodes_with(n, |_| {}).await
}

/// [`nodes`] with `configure` applied to every server's configuration.
pub(crate) async fn nodes_with(n: usize, configure: fn(&mut pm_server::Config)) -> Vec<TestServer> {
    let first = TestServer::start_with(configure).await;
    let named = first.data_dir().join("postgres-database");
    let url = std::fs::read_to_string(&named).expect("the first server's database");
    let mut all = vec![first];
    for _ in 1..n {
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::write(dir.path().join("postgres-database"), &url).expect("name the database");
        all.push(TestServer::start_in(dir, configure).await);
    }
    all
}

/// Waits until `server` has published every stored event of `stream`.
async fn caught_up(server: &TestServer, stream: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let stored = stored_seq(server, stream).await;
    while server.state.hub.last_published(stream) < stored {
        assert!(tokio::time::Instant::now() < deadline, "never caught up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The stream's last seq as the database holds it.
async fn stored_seq(server: &TestServer, stream: &str) -> u64 {
    let mut reader = server.state.store.read.acquire().await.expect("a reader");
    events::current_seq(&mut reader.conn(), stream)
        .await
        .expect("the stream's seq")
}

/// Reads `client`'s events until it has the events of `stream` up to `last`; they must be
/// exactly the seqs after `after`, in order. Returns them.
async fn events_until(
    client: &mut WsClient,
    stream: &str,
    after: u64,
    last: u64,
) -> Vec<WebSocketMessage> {
    let mut got = Vec::new();
    let mut expected = after + 1;
    while expected <= last {
        let Some(m) = client.try_next_event(Duration::from_secs(10)).await else {
            panic!(
                "stream {stream}: waited for seq {expected} of {last}; got {} events",
                got.len()
            );
        };
        if m.stream != stream || m.seq == 0 {
            continue; // activity frames, other streams
        }
        assert_eq!(
            m.seq, expected,
            "stream {stream}: a gap, a repeat or a reorder"
        );
        expected += 1;
        got.push(m);
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subscriber_on_every_server_gets_every_write_in_order() {
    postgres_only!();
    let servers = nodes(3).await;
    let mut setup = servers[0].connect(USER_A).await;
    let project = setup.create_project("Shared", "SHR").await;
    let after = stored_seq(&servers[0], &project.id).await;

    let mut watchers = Vec::new();
    for server in &servers {
        let mut w = server.connect(USER_C).await;
        w.subscribe(&[&project.id]).await;
        watchers.push(w);
    }
    // A writer on every server, all at once.
    let per_writer = 25;
    let mut writers = Vec::new();
    for (n, server) in servers.iter().enumerate() {
        let mut client = server.connect(USER_B).await;
        let project = project.id.clone();
        writers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..per_writer {
                let item = client
                    .create_item(&project, WorkItemType::Task, &format!("n{n} #{i}"), None)
                    .await;
                ids.push(item.id);
            }
            ids
        }));
    }
    let mut written = BTreeSet::new();
    for w in writers {
        written.extend(w.await.expect("a writer"));
    }
    let last = stored_seq(&servers[0], &project.id).await;
    assert!(last >= after + 3 * per_writer as u64);

    for (n, watcher) in watchers.iter_mut().enumerate() {
        let events = events_until(watcher, &project.id, after, last).await;
        let created: BTreeSet<String> = events
            .iter()
            .filter_map(|e| match &e.payload {
                Some(Payload::WorkItemCreated(c)) => c.work_item.as_ref().map(|w| w.id.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(created, written, "server {n}'s subscriber");
        watcher.barrier().await;
        watcher.expect_no_event().await;
    }
    // And the database agrees with what everyone saw.
    let (items, _) = setup.work_items(&project.id).await;
    let stored: BTreeSet<String> = items.into_iter().map(|i| i.id).collect();
    assert_eq!(stored, written);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_from_one_server_resumes_on_another() {
    postgres_only!();
    let servers = nodes(2).await;
    assert_eq!(
        servers[0].epoch(),
        servers[1].epoch(),
        "one history, one epoch"
    );
    let mut a = servers[0].connect(USER_A).await;
    let project = a.create_project("Moving", "MOV").await;
    let item = a
        .create_item(&project.id, WorkItemType::Task, "first", None)
        .await;
    let cursor = stored_seq(&servers[0], &project.id).await;

    // Written on server A while the client is away.
    let mut version = item.version;
    for n in 0..5 {
        let updated = a
            .update_item(proto::UpdateWorkItemRequest {
                title: Some(format!("renamed {n}")),
                ..upd(&item.id, version)
            })
            .await;
        version = updated.version;
    }
    // The client comes back on server B with its cursor from A.
    let mut b = servers[1].connect(USER_C).await;
    let (replayed, reply) = b
        .request_collect(Payload::Subscribe(proto::Subscribe {
            cursors: vec![proto::ResumeCursor {
                stream: project.id.clone(),
                last_seq: cursor,
                epoch: servers[0].epoch(),
            }],
            ..Default::default()
        }))
        .await;
    assert!(
        !matches!(reply.payload, Some(Payload::Error(_))),
        "the resume was refused: {reply:?}"
    );
    let mut seqs: Vec<u64> = replayed
        .iter()
        .filter(|m| m.stream == project.id && m.seq > 0)
        .map(|m| m.seq)
        .collect();
    // B replays what it has published; what A committed that B's follower has not read yet
    // follows live, without a gap or a repeat.
    let replayed_to = seqs.last().copied().unwrap_or(cursor);
    let rest = events_until(&mut b, &project.id, replayed_to, cursor + 5).await;
    seqs.extend(rest.iter().map(|m| m.seq));
    assert_eq!(seqs, (cursor + 1..=cursor + 5).collect::<Vec<_>>());
    // And it is live on B for what A writes next.
    a.update_item(proto::UpdateWorkItemRequest {
        title: Some("live".into()),
        ..upd(&item.id, version)
    })
    .await;
    let live = events_until(&mut b, &project.id, cursor + 5, cursor + 6).await;
    assert!(matches!(live[0].payload, Some(Payload::WorkItemUpdated(_))));
}

/// `url` with its host and port replaced by `addr`.
fn through(url: &str, addr: std::net::SocketAddr) -> String {
    let start = url.find("://").expect("a URL") + 3;
    let end = start + url[start..].find('/').unwrap_or(url.len() - start);
    let authority = &url[start..end];
    let user = authority.rfind('@').map_or("", |at| &authority[..=at]);
    format!("{}{user}{addr}{}", &url[..start], &url[end..])
}

/// The host and port of a PostgreSQL URL.
async fn address_of(url: &str) -> std::net::SocketAddr {
    let start = url.find("://").expect("a URL") + 3;
    let end = start + url[start..].find('/').unwrap_or(url.len() - start);
    let authority = &url[start..end];
    let host = authority.rsplit('@').next().expect("a host");
    let host = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:5432")
    };
    tokio::net::lookup_host(host)
        .await
        .expect("resolve the database's host")
        .next()
        .expect("an address")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_loses_its_database_refuses_writes_clearly_and_recovers_by_itself() {
    postgres_only!();
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = pm_server::testing::postgres_for(dir.path())
        .await
        .expect("a database")
        .expect("PostgreSQL");
    let proxy = CutProxy::start(address_of(&url).await).await;
    let proxied = through(&url, proxy.addr);
    let server = TestServer::start_in(dir, move |c| c.database_url = Some(proxied)).await;

    let mut alice = server.connect(USER_A).await;
    let project = alice.create_project("Outage", "OUT").await;
    let mut watcher = server.connect(USER_C).await;
    watcher.subscribe(&[&project.id]).await;
    let before = stored_seq(&server, &project.id).await;

    proxy.cut();
    let refused = alice
        .request(create_item_req(
            &project.id,
            WorkItemType::Task,
            "during",
            None,
        ))
        .await;
    let error = expect_error(&refused, "DATABASE_UNAVAILABLE");
    assert!(error.message.contains("nothing was written"), "{error:?}");
    let http = server.http(Some(USER_A));
    let reply = http
        .post(
            "/api/v1/work-items",
            serde_json::json!({"project_id": project.id, "title": "during", "item_type": "task"}),
        )
        .await;
    reply.expect_error(503, "DATABASE_UNAVAILABLE");
    let ready = http.get("/ready").await;
    assert_eq!(ready.status, 503, "{:?}", ready.body);

    proxy.restore();
    // No restart: the next writes go through once the database is back.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let item = loop {
        let reply = alice
            .request(create_item_req(
                &project.id,
                WorkItemType::Task,
                "after",
                None,
            ))
            .await;
        match &reply.payload {
            Some(Payload::WorkItemCreated(c)) => break c.work_item.clone().expect("the item"),
            other if tokio::time::Instant::now() > deadline => {
                panic!("writes did not come back: {other:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    // The watcher kept its place: the next event is the next seq.
    let events = events_until(&mut watcher, &project.id, before, before + 1).await;
    match &events[0].payload {
        Some(Payload::WorkItemCreated(c)) => {
            assert_eq!(
                c.work_item.as_ref().map(|w| w.id.as_str()),
                Some(item.id.as_str())
            )
        }
        other => panic!("expected the created item, got {other:?}"),
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while http.get("/ready").await.status != 200 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "/ready stayed unhealthy"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_removed_on_one_server_is_cut_off_on_another() {
    postgres_only!();
    const ALICE: &str = "00000000-0000-4000-8000-00000000a11c";
    const BOB: &str = "00000000-0000-4000-8000-000000000b0b";
    let servers = nodes_with(2, |c| {
        c.auth = pm_server::config::AuthMode::Token;
        c.jwt_secret = Some(TEAM_SECRET.into());
    })
    .await;
    let mut alice = servers[0].connect_team(ALICE).await;
    let project = alice.create_project("Team", "TM").await;
    let added = alice
        .request(Payload::AddProjectMemberRequest(
            proto::AddProjectMemberRequest {
                project_id: project.id.clone(),
                user_id: BOB.into(),
                role: "editor".into(),
            },
        ))
        .await;
    assert!(
        matches!(added.payload, Some(Payload::ProjectMemberAdded(_))),
        "{added:?}"
    );
    caught_up(&servers[1], &project.id).await;
    let mut bob = servers[1].connect_team(BOB).await;
    bob.subscribe(&[&project.id]).await;
    let after = stored_seq(&servers[0], &project.id).await;
    alice
        .create_item(&project.id, WorkItemType::Task, "seen", None)
        .await;
    events_until(&mut bob, &project.id, after, after + 1).await;

    let removed = alice
        .request(Payload::RemoveProjectMemberRequest(
            proto::RemoveProjectMemberRequest {
                project_id: project.id.clone(),
                user_id: BOB.into(),
            },
        ))
        .await;
    assert!(
        matches!(removed.payload, Some(Payload::ProjectMemberRemoved(_))),
        "{removed:?}"
    );
    // Bob, on the other server, hears of his removal, then nothing more.
    let told = events_until(&mut bob, &project.id, after + 1, after + 2).await;
    assert!(matches!(
        told[0].payload,
        Some(Payload::ProjectMemberRemoved(_))
    ));
    alice
        .create_item(&project.id, WorkItemType::Task, "unseen", None)
        .await;
    caught_up(&servers[1], &project.id).await;
    bob.barrier().await;
    bob.expect_no_event().await;
}

/// `migrate --from` writes pm's SQLite file: with a PostgreSQL URL it refuses, naming the way
/// that works (runs on either suite: nothing is connected to).
#[test]
fn migrate_from_with_a_postgres_url_is_refused_with_the_way_that_works() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pm-server"))
        .env("RUST_BACKTRACE", "0")
        .env_remove("PM_DATABASE_URL")
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--database-url", "postgres://pm:secret@127.0.0.1:1/pm"])
        .args(["migrate", "--from", "/nonexistent/reference.db"])
        .output()
        .expect("run pm-server");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("pm sync export"), "{stderr}");
    assert!(
        !stderr.contains("secret"),
        "the password must not be printed: {stderr}"
    );
    assert!(!dir.path().join("data.db").exists(), "nothing written");
}

/// A PostgreSQL URL that is not one, or names a server that is not there: the server exits
/// with status 1 and a message that says which, without a panic and without the password.
#[test]
fn a_bad_or_unreachable_database_url_stops_the_server_with_a_clear_message() {
    for (url, says) in [
        ("not a url", "reading the PostgreSQL URL"),
        (
            "postgres://pm:secret@127.0.0.1:1/pm",
            "connecting to PostgreSQL at postgres://pm:***@127.0.0.1:1/pm",
        ),
    ] {
        let dir = tempfile::tempdir().expect("temporary directory");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_pm-server"))
            .env("RUST_BACKTRACE", "0")
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--port", "0", "--database-url", url])
            .output()
            .expect("run pm-server");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{url}: {stderr}");
        assert!(stderr.contains(says), "{url}: {stderr}");
        assert!(
            !stderr.contains("secret"),
            "{url}: the password was printed: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{url}: {stderr}");
    }
}
