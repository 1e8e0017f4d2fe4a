//! A project with a few tasks, one client that acts (alice, not subscribed) and one that
//! watches (bob, subscribed to the project), for the tests of links, time and sync.
use pm_shared::proto::{self, Payload, WebSocketMessage, WorkItemType};

use super::*;

pub struct Fixture {
    pub server: TestServer,
    /// Acts; not subscribed, so it only ever sees its own responses.
    pub alice: WsClient,
    /// Subscribed to the project: receives every event.
    pub bob: WsClient,
    pub project: proto::Project,
    pub items: Vec<proto::WorkItem>,
    pub seqs: SeqTracker,
    pub epoch: String,
}

impl Fixture {
    /// A project "LNK" with `tasks` tasks (T1, T2, …), bob subscribed after they exist.
    pub async fn new(tasks: usize) -> Fixture {
        let server = TestServer::start().await;
        Self::on(server, "LNK", tasks).await
    }

    pub async fn on(server: TestServer, key: &str, tasks: usize) -> Fixture {
        let mut alice = server.connect(USER_A).await;
        let mut bob = server.connect(USER_B).await;
        let project = alice.create_project("Links", key).await;
        let mut items = Vec::new();
        let mut last = 0;
        for i in 0..tasks {
            let reply = alice
                .request(create_item_req(
                    &project.id,
                    WorkItemType::Task,
                    &format!("T{}", i + 1),
                    None,
                ))
                .await;
            last = reply.seq;
            items.push(
                crate::expect_payload!(reply, WorkItemCreated)
                    .work_item
                    .expect("work_item"),
            );
        }
        bob.subscribe(&[&project.id]).await;
        let epoch = server.epoch();
        Fixture {
            seqs: SeqTracker::starting_at(&project.id, last),
            server,
            alice,
            bob,
            project,
            items,
            epoch,
        }
    }

    pub fn id(&self, n: usize) -> String {
        self.items[n].id.clone()
    }

    /// Alice sends `payload`; returns her response.
    pub async fn act(&mut self, payload: Payload) -> WebSocketMessage {
        self.alice.request(payload).await
    }

    /// The next mutation bob receives: its activity entry and its event (seq checked).
    pub async fn received(&mut self) -> (proto::ActivityLogEntry, WebSocketMessage) {
        recv_mutation(&mut self.bob, &mut self.seqs, &self.epoch).await
    }

    /// Bob received nothing (a rejected request broadcasts nothing).
    pub async fn nothing_received(&mut self) {
        self.bob.expect_no_event().await;
    }

    /// Another task, created by alice; bob's copy of the event is consumed.
    pub async fn task(&mut self, title: &str) -> proto::WorkItem {
        let item = self
            .alice
            .create_item(&self.project.id, WorkItemType::Task, title, None)
            .await;
        self.received().await;
        item
    }
}

pub fn dep_req(blocking: &str, blocked: &str, kind: proto::DependencyType) -> Payload {
    Payload::CreateDependencyRequest(proto::CreateDependencyRequest {
        blocking_item_id: blocking.to_string(),
        blocked_item_id: blocked.to_string(),
        dependency_type: kind as i32,
    })
}

pub fn start_req(item: &str, description: Option<&str>) -> Payload {
    Payload::StartTimerRequest(proto::StartTimerRequest {
        work_item_id: item.to_string(),
        description: description.map(str::to_string),
    })
}

pub fn history_req(entity_type: &str, id: &str) -> Payload {
    Payload::GetActivityLogRequest(proto::GetActivityLogRequest {
        entity_type: entity_type.to_string(),
        entity_id: id.to_string(),
        limit: 0,
        offset: 0,
    })
}
