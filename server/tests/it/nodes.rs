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
    let first = TestServer::start().await;
    let named = first.data_dir().join("postgres-database");
    let url = std::fs::read_to_string(&named).expect("the first server's database");
    let mut all = vec![first];
    for _ in 1..n {
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::write(dir.path().join("postgres-database"), &url).expect("name the database");
        all.push(TestServer::start_in(dir, |_| {}).await);
    }
    all
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
    let seqs: Vec<u64> = replayed
        .iter()
        .filter(|m| m.stream == project.id && m.seq > 0)
        .map(|m| m.seq)
        .collect();
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
