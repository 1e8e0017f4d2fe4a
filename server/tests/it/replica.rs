//! Two SDK clients, each with its own replica (store + resume protocol), against a real server:
//! what one changes appears in the other's store.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use pm_client::replica::Replica;
use pm_client::sdk::{self, SessionConfig, SessionHandle};
use pm_shared::proto::{self, Payload};
use tokio::sync::mpsc;

struct Peer {
    handle: SessionHandle,
    replica: Arc<Mutex<Replica>>,
}

fn peer(server: &TestServer, user: &str, project: &str) -> Peer {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut config = SessionConfig::new(format!("http://{}", server.addr), user);
    config.name = Some(user[..8].to_string());
    let handle = sdk::spawn(config, move |e| {
        let _ = tx.send(e);
    });
    let replica = Arc::new(Mutex::new(Replica::new(Some(project.to_string()))));
    let (h, r) = (handle.clone(), replica.clone());
    tokio::spawn(async move {
        while let Some(e) = rx.recv().await {
            r.lock().expect("replica").on_net(&h, &e);
        }
    });
    Peer { handle, replica }
}

/// Waits until `check` holds for the peer's store.
async fn eventually(p: &Peer, what: &str, check: impl Fn(&Replica) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check(&p.replica.lock().expect("replica")) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_change_by_one_client_appears_in_the_others_store() {
    let server = TestServer::start().await;
    let mut setup = server.connect("00000000-0000-4000-8000-0000000000aa").await;
    let project = setup.create_project("Shared", "SH").await;
    let alice = peer(&server, "00000000-0000-4000-8000-00000000a11c", &project.id);
    let bob = peer(&server, "00000000-0000-4000-8000-000000000b0b", &project.id);
    for p in [&alice, &bob] {
        assert!(p.handle.connected(Duration::from_secs(10)).await);
        eventually(p, "initial sync", |r| r.is_synced()).await;
    }

    // Alice creates a card; Bob's store gets it.
    let reply = alice
        .handle
        .request(
            create_item_req(&project.id, proto::WorkItemType::Story, "Shared card", None),
            Duration::from_secs(5),
        )
        .await
        .expect("create");
    let Some(Payload::WorkItemCreated(created)) = reply.payload else {
        panic!("{reply:?}")
    };
    let item = created.work_item.expect("item");
    eventually(&bob, "bob sees the new card", |r| {
        r.store.work_items.contains_key(&item.id)
    })
    .await;

    // Bob moves it; Alice's store follows, with Bob as the author of the change.
    bob.handle
        .request(
            Payload::UpdateWorkItemRequest(proto::UpdateWorkItemRequest {
                work_item_id: item.id.clone(),
                expected_version: item.version,
                status: Some("review".into()),
                ..Default::default()
            }),
            Duration::from_secs(5),
        )
        .await
        .expect("update");
    eventually(&alice, "alice sees the move", |r| {
        r.store
            .work_items
            .get(&item.id)
            .is_some_and(|w| w.status == "review" && w.version == 2)
    })
    .await;

    // A comment and a delete travel too.
    alice
        .handle
        .request(
            Payload::CreateCommentRequest(proto::CreateCommentRequest {
                work_item_id: item.id.clone(),
                content: "hi".into(),
            }),
            Duration::from_secs(5),
        )
        .await
        .expect("comment");
    eventually(&bob, "bob sees the comment", |r| {
        r.store.comments_of(&item.id).len() == 1
    })
    .await;
    bob.handle
        .request(
            Payload::DeleteWorkItemRequest(proto::DeleteWorkItemRequest {
                work_item_id: item.id.clone(),
            }),
            Duration::from_secs(5),
        )
        .await
        .expect("delete");
    eventually(&alice, "alice sees the delete", |r| {
        !r.store.work_items.contains_key(&item.id)
    })
    .await;

    // Both stores end equal to each other.
    let a = alice.replica.lock().expect("a").store.work_items.clone();
    let b = bob.replica.lock().expect("b").store.work_items.clone();
    assert_eq!(a, b);
}

#[tokio::test]
async fn a_client_that_was_offline_catches_up_on_reconnect() {
    let server = TestServer::start().await;
    let mut writer = server.connect("00000000-0000-4000-8000-0000000000aa").await;
    let project = writer.create_project("Offline", "OF").await;
    let carol = peer(&server, "00000000-0000-4000-8000-0000000ca201", &project.id);
    assert!(carol.handle.connected(Duration::from_secs(10)).await);
    eventually(&carol, "initial sync", |r| r.is_synced()).await;
    let before = carol
        .replica
        .lock()
        .expect("r")
        .store
        .cursor(&project.id)
        .expect("cursor")
        .0;

    // Cut the link and write while it reconnects: the replay must fill the gap.
    carol.handle.reconnect();
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(
            writer
                .create_item(
                    &project.id,
                    proto::WorkItemType::Task,
                    &format!("missed {i}"),
                    None,
                )
                .await
                .id,
        );
    }
    eventually(&carol, "carol has every missed card", |r| {
        ids.iter().all(|id| r.store.work_items.contains_key(id))
    })
    .await;
    let after = carol
        .replica
        .lock()
        .expect("r")
        .store
        .cursor(&project.id)
        .expect("cursor")
        .0;
    assert_eq!(
        after,
        before + 10,
        "resumed exactly, no resync from scratch needed"
    );
}
