//! Offline queues (`pm_client::offline`) against a real server: SDK clients whose links are cut
//! by TCP proxies edit while offline and replay when back, while others edit online. Every
//! offline write ends applied or in its client's inbox, never lost and never applied twice, and
//! every store converges with the database.
//!
//! The property test runs `PM_OFFLINE_CASES` random cases (6 by default; the seed of each is
//! printed, and `PM_OFFLINE_SEED` replays one).
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use pm_client::offline::{OfflineQueue, Replayed};
use pm_client::replica::Replica;
use pm_client::sdk::{self, NetEvent, SessionConfig, SessionHandle};
use pm_shared::proto::{self, Payload, WorkItemType};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What a client learnt from its replays.
#[derive(Default)]
struct Ledger {
    /// Every write queued: its key.
    pushed: Vec<String>,
    /// How many of them were made while the client was not caught up (offline).
    made_offline: usize,
    /// Conflicts met on fields nobody else changed (the replica had not caught up).
    rebases: usize,
    /// Writes the server applied (or found already there): key → the seq of the change
    /// (0: it changed nothing).
    applied: Vec<(String, u64)>,
}

struct ClientState {
    replica: Replica,
    queue: OfflineQueue,
    ledger: Ledger,
}

/// An SDK client (session, replica, offline queue) whose link runs through a proxy.
struct Client {
    user: String,
    handle: SessionHandle,
    proxy: CutProxy,
    state: Arc<Mutex<ClientState>>,
}

impl Client {
    async fn start(server: &TestServer, user: &str, project: &str, queue: OfflineQueue) -> Client {
        let proxy = CutProxy::start(server.addr).await;
        let mut config = SessionConfig::new(format!("http://{}", proxy.addr), user);
        config.max_backoff = Duration::from_millis(200);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let handle = sdk::spawn(config, move |e| {
            let _ = tx.send(e);
        });
        let state = Arc::new(Mutex::new(ClientState {
            replica: Replica::new(Some(project.to_string())),
            queue,
            ledger: Ledger::default(),
        }));
        let (h, s) = (handle.clone(), state.clone());
        tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                let mut guard = s.lock().expect("client state");
                let state = &mut *guard;
                state.replica.on_net(&h, &event);
                match &event {
                    NetEvent::Disconnected { .. } => state.queue.on_disconnect(),
                    NetEvent::Message(msg) => {
                        let replayed = state.queue.on_message(msg, &state.replica.store);
                        match replayed {
                            Some(Replayed::Applied(w)) => {
                                state.ledger.applied.push((w.key.clone(), msg.seq))
                            }
                            Some(Replayed::Rebasing) => state.ledger.rebases += 1,
                            _ => {}
                        }
                    }
                    _ => {}
                }
                state.queue.pump(&h, &state.replica);
            }
        });
        Client {
            user: user.to_string(),
            handle,
            proxy,
            state,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ClientState> {
        self.state.lock().expect("client state")
    }

    /// Queues a change of one field of the card as this client sees it (and sends it at once
    /// when it can). False when the card is gone from its store.
    fn edit(
        &self,
        item_id: &str,
        change: impl FnOnce(&proto::WorkItem) -> (String, proto::UpdateWorkItemRequest),
    ) -> bool {
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some(stored) = state.replica.store.work_items.get(item_id) else {
            return false;
        };
        let shown = state
            .queue
            .intended(stored)
            .unwrap_or_else(|| stored.clone());
        let (what, req) = change(&shown);
        if !state.replica.is_caught_up() {
            state.ledger.made_offline += 1;
        }
        let key = state.queue.push(&shown, &what, req).expect("queued");
        state.ledger.pushed.push(key);
        state.queue.pump(&self.handle, &state.replica);
        true
    }

    /// True once nothing waits to be sent and the store has caught up.
    fn settled(&self) -> bool {
        let state = self.lock();
        state.queue.pending_len() == 0 && state.replica.is_caught_up()
    }
}

/// A change to one field of a card, to a value it does not have now.
fn random_change(
    rng: &mut StdRng,
    who: usize,
    n: usize,
    shown: &proto::WorkItem,
) -> (String, proto::UpdateWorkItemRequest) {
    let mut req = proto::UpdateWorkItemRequest::default();
    let what = match rng.random_range(0..4) {
        0 => {
            req.title = Some(format!("c{who} edit {n}"));
            "Title"
        }
        1 => {
            let lanes = ["backlog", "todo", "in_progress", "review", "done"];
            let others: Vec<&str> = lanes.into_iter().filter(|l| *l != shown.status).collect();
            req.status = Some(others[rng.random_range(0..others.len())].to_string());
            "Move"
        }
        2 => {
            let levels = ["low", "medium", "high", "critical"];
            let others: Vec<&str> = levels
                .into_iter()
                .filter(|l| *l != shown.priority)
                .collect();
            req.priority = Some(others[rng.random_range(0..others.len())].to_string());
            "Priority"
        }
        _ => {
            let now = shown.story_points.unwrap_or(0);
            req.story_points = Some((now + rng.random_range(1..8)) % 20 + 1);
            "Points"
        }
    };
    (what.to_string(), req)
}

/// The fields that must converge.
fn view(item: &proto::WorkItem) -> (i32, String, String, String, Option<i32>) {
    (
        item.version,
        item.title.clone(),
        item.status.clone(),
        item.priority.clone(),
        item.story_points,
    )
}

type View = BTreeMap<String, (i32, String, String, String, Option<i32>)>;

async fn database_view(obs: &mut WsClient, project: &str) -> View {
    let (items, _) = obs.work_items(project).await;
    items.iter().map(|w| (w.id.clone(), view(w))).collect()
}

fn store_view(client: &Client, project: &str) -> View {
    let state = client.lock();
    state
        .replica
        .store
        .items_of(project)
        .map(|w| (w.id.clone(), view(w)))
        .collect()
}

/// The seqs of every change the database holds for `project`, by user (a resume from 0).
async fn changes_by_user(server: &TestServer, project: &str) -> HashMap<String, BTreeSet<u64>> {
    let mut reader = server.connect(USER_C).await;
    let reply = reader
        .subscribe_with(proto::Subscribe {
            cursors: vec![proto::ResumeCursor {
                stream: project.to_string(),
                last_seq: 0,
                epoch: server.epoch(),
            }],
            ..Default::default()
        })
        .await;
    assert!(reply.payload.is_none(), "{reply:?}");
    let mut by_user: HashMap<String, BTreeSet<u64>> = HashMap::new();
    for event in reader.take_events() {
        if let Some(Payload::WorkItemUpdated(e)) = &event.payload {
            by_user
                .entry(e.user_id.clone())
                .or_default()
                .insert(event.seq);
        }
    }
    by_user
}

async fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const USERS: [&str; 3] = [
    "0ff11e00-0000-4000-8000-000000000001",
    "0ff11e00-0000-4000-8000-000000000002",
    "0ff11e00-0000-4000-8000-000000000003",
];

/// One random case: 3 offline-capable clients and an online writer on 4 cards.
async fn run_case(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let server = TestServer::start().await;
    let mut online = server.connect(USER_A).await;
    let project = online.create_project("Offline", "OFF").await;
    let mut cards = Vec::new();
    for i in 0..4 {
        let item = online
            .create_item(&project.id, WorkItemType::Task, &format!("card {i}"), None)
            .await;
        cards.push(item.id);
    }
    let mut clients = Vec::new();
    for user in USERS {
        clients.push(Client::start(&server, user, &project.id, OfflineQueue::in_memory()).await);
    }
    for c in &clients {
        wait_until("the first sync", Duration::from_secs(10), || {
            c.lock().replica.is_caught_up()
        })
        .await;
    }
    let mut offline = [false; 3];
    let mut deleted = false;
    for n in 0..30 {
        match rng.random_range(0..10) {
            // Cut or restore a client's link.
            0 | 1 => {
                let i = rng.random_range(0..clients.len());
                if offline[i] {
                    clients[i].proxy.restore();
                } else {
                    clients[i].proxy.cut();
                }
                offline[i] = !offline[i];
            }
            // An online edit by someone else, on the card's current version.
            2 | 3 => {
                let (items, _) = online.work_items(&project.id).await;
                if items.is_empty() {
                    continue;
                }
                let item = &items[rng.random_range(0..items.len())];
                let (_, mut req) = random_change(&mut rng, 9, n, item);
                req.work_item_id = item.id.clone();
                req.expected_version = item.version;
                // A conflict with a replay that got there first is fine.
                let _ = online.request(Payload::UpdateWorkItemRequest(req)).await;
            }
            // Rarely, a card is deleted under the clients' queued writes.
            4 if !deleted && rng.random_bool(0.3) => {
                let victim = cards[rng.random_range(0..cards.len())].clone();
                let reply = online
                    .request(Payload::DeleteWorkItemRequest(
                        proto::DeleteWorkItemRequest {
                            work_item_id: victim,
                        },
                    ))
                    .await;
                assert!(
                    !matches!(reply.payload, Some(Payload::Error(_))),
                    "{reply:?}"
                );
                deleted = true;
            }
            // A client's edit: queued while offline, sent at once when online.
            _ => {
                let i = rng.random_range(0..clients.len());
                let card = cards[rng.random_range(0..cards.len())].clone();
                let mut change_rng = StdRng::seed_from_u64(rng.random());
                clients[i].edit(&card, |shown| random_change(&mut change_rng, i, n, shown));
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..25))).await;
    }
    for c in &clients {
        c.proxy.restore();
    }
    for c in &clients {
        wait_until(
            &format!("seed {seed}: {}'s queue drains", c.user),
            Duration::from_secs(30),
            || c.settled(),
        )
        .await;
    }

    // Every write applied or in the inbox, once.
    let changes = changes_by_user(&server, &project.id).await;
    let (mut pushed, mut made_offline, mut applied, mut unchanged, mut refused) = (0, 0, 0, 0, 0);
    for c in &clients {
        let state = c.lock();
        pushed += state.ledger.pushed.len();
        made_offline += state.ledger.made_offline;
        applied += state.ledger.applied.len();
        unchanged += state.ledger.applied.iter().filter(|(_, s)| *s == 0).count();
        refused += state.queue.inbox().len();
    }
    eprintln!(
        "  {pushed} writes ({made_offline} offline): {applied} applied ({unchanged} found already there), \
         {refused} in an inbox"
    );
    for c in &clients {
        let state = c.lock();
        let inbox: Vec<&str> = state
            .queue
            .inbox()
            .iter()
            .map(|x| x.write.key.as_str())
            .collect();
        let applied: Vec<&str> = state
            .ledger
            .applied
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        let mut ended: Vec<&str> = inbox.iter().chain(applied.iter()).copied().collect();
        ended.sort();
        let mut pushed: Vec<&str> = state.ledger.pushed.iter().map(String::as_str).collect();
        pushed.sort();
        assert_eq!(
            ended, pushed,
            "seed {seed}: {}: each write ends once",
            c.user
        );
        // Each change the database holds of this user is the answer of one applied write.
        let answered: BTreeSet<u64> = state
            .ledger
            .applied
            .iter()
            .map(|(_, seq)| *seq)
            .filter(|s| *s > 0)
            .collect();
        let answers = state.ledger.applied.iter().filter(|(_, s)| *s > 0).count();
        assert_eq!(
            answered.len(),
            answers,
            "seed {seed}: two writes answered with one change"
        );
        let stored = changes.get(&c.user).cloned().unwrap_or_default();
        assert_eq!(
            stored, answered,
            "seed {seed}: {}: changes in the database",
            c.user
        );
        // Refusals are real: the card changed in a field the write sets, or is gone.
        for conflict in state.queue.inbox() {
            match &conflict.theirs {
                None => assert_eq!(conflict.code, "NOT_FOUND", "seed {seed}: {conflict:?}"),
                Some(now) => assert!(
                    !pm_client::offline::same_fields(
                        &conflict.write.before,
                        now,
                        &conflict.write.req
                    ),
                    "seed {seed}: a commuting write in the inbox: {conflict:?}"
                ),
            }
        }
    }

    // Every store converges with the database.
    let truth = database_view(&mut online, &project.id).await;
    for c in &clients {
        wait_until(
            &format!("seed {seed}: {}'s store converges", c.user),
            Duration::from_secs(10),
            || store_view(c, &project.id) == truth,
        )
        .await;
        c.handle.close();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_writes_end_applied_or_in_the_inbox_once_and_stores_converge() {
    let seeds: Vec<u64> = match std::env::var("PM_OFFLINE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(seed) => vec![seed],
        None => {
            let cases = std::env::var("PM_OFFLINE_CASES")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(6);
            (0..cases).map(|_| rand::random()).collect()
        }
    };
    for seed in seeds {
        eprintln!("offline case: PM_OFFLINE_SEED={seed}");
        run_case(seed).await;
    }
}

/// A write whose answer was lost (sent, applied, then the link and the client died) is
/// replayed from the saved queue after a restart: answered with the first answer, applied
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_answer_was_lost_is_applied_once_after_a_restart() {
    let server = TestServer::start().await;
    let mut online = server.connect(USER_A).await;
    let project = online.create_project("Lost", "LOST").await;
    let item = online
        .create_item(&project.id, WorkItemType::Task, "before", None)
        .await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("queue.json");

    // The first run queues a title and sends it; the answer never reaches it.
    let (mut queue, _) = OfflineQueue::open(&path);
    let req = proto::UpdateWorkItemRequest {
        title: Some("after".into()),
        ..Default::default()
    };
    let key = queue.push(&item, "Title", req).expect("queued");
    let mut store = pm_shared::store::ClientStore::default();
    store.work_items.insert(item.id.clone(), item.clone());
    let (sent_key, sent) = queue.next(&store).expect("a write to send");
    assert_eq!(sent_key, key);
    let mut first_run = server.connect(USERS[0]).await;
    let first = first_run
        .request_with_id(&key, Payload::UpdateWorkItemRequest(sent))
        .await;
    let first_seq = first.seq;
    assert!(first_seq > 0, "{first:?}");
    drop(first_run);
    drop(queue);

    // The next run finds it in the file and replays it through a real session.
    let (queue, problem) = OfflineQueue::open(&path);
    assert_eq!(problem, None);
    assert_eq!(queue.pending_len(), 1);
    let client = Client::start(&server, USERS[0], &project.id, queue).await;
    wait_until("the replay", Duration::from_secs(10), || client.settled()).await;
    {
        let state = client.lock();
        assert_eq!(state.ledger.applied, vec![(key.clone(), first_seq)]);
        assert!(state.queue.inbox().is_empty());
    }
    let changes = changes_by_user(&server, &project.id).await;
    assert_eq!(
        changes[USERS[0]],
        BTreeSet::from([first_seq]),
        "applied once"
    );
    assert!(!path.exists(), "an empty queue leaves no file");
    client.handle.close();
}

/// The replay waits for the resume: a write made offline on a card others changed meanwhile
/// (in other fields) goes once, on the version the resume brought, and lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replay_waits_for_the_resume_and_goes_on_the_current_version() {
    let server = TestServer::start().await;
    let mut online = server.connect(USER_A).await;
    let project = online.create_project("Resume first", "RF").await;
    let mut item = online
        .create_item(&project.id, WorkItemType::Task, "card", None)
        .await;
    let client = Client::start(&server, USERS[0], &project.id, OfflineQueue::in_memory()).await;
    wait_until("the first sync", Duration::from_secs(10), || {
        client.lock().replica.is_caught_up()
    })
    .await;
    client.proxy.cut();
    wait_until("the cut is seen", Duration::from_secs(10), || {
        !client.lock().replica.is_caught_up()
    })
    .await;
    assert!(client.edit(&item.id, |_| {
        let req = proto::UpdateWorkItemRequest {
            title: Some("renamed offline".into()),
            ..Default::default()
        };
        ("Title".into(), req)
    }));
    for priority in ["high", "low", "critical"] {
        let mut req = upd(&item.id, item.version);
        req.priority = Some(priority.into());
        item = online.update_item(req).await;
    }
    client.proxy.restore();
    wait_until("the replay", Duration::from_secs(10), || client.settled()).await;
    let state = client.lock();
    assert_eq!(
        state.ledger.rebases, 0,
        "sent before the resume had brought version {}",
        item.version
    );
    assert_eq!(state.ledger.applied.len(), 1);
    let card = &state.replica.store.work_items[&item.id];
    assert_eq!(
        (card.title.as_str(), card.priority.as_str()),
        ("renamed offline", "critical")
    );
    assert_eq!(card.version, item.version + 1);
    client.handle.close();
}
