//! Property test of the client store: any interleaving, duplication and replay of a valid event
//! stream, with the resyncs the store asks for, converges to the state of applying it once in
//! order. Seeded; the seed is printed on failure. `PM_STORE_CASES` sets the number of cases.
use std::collections::BTreeMap;

use pm_shared::proto::{self, Payload, WebSocketMessage};
use pm_shared::store::{ClientStore, Outcome, WORKSPACE};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const EPOCH: &str = "epoch-1";
const PID: &str = "p1";

/// The server side of the simulation: entity state plus every event and snapshot per seq.
#[derive(Clone, Default)]
struct Model {
    project: proto::Project,
    items: BTreeMap<String, proto::WorkItem>,
    sprints: BTreeMap<String, proto::Sprint>,
    comments: BTreeMap<String, proto::Comment>,
    dependencies: BTreeMap<String, proto::Dependency>,
    time_entries: BTreeMap<String, proto::TimeEntry>,
    next_id: u32,
    clock: i64,
}

struct History {
    events: Vec<WebSocketMessage>,
    /// Snapshot after each event: (stream, seq) -> model
    snapshots: BTreeMap<(String, u64), Model>,
    seqs: BTreeMap<String, u64>,
}

impl History {
    fn push(&mut self, stream: &str, payload: Payload, model: &Model) {
        let seq = self.seqs.entry(stream.to_string()).or_default();
        *seq += 1;
        self.events.push(WebSocketMessage {
            message_id: format!("m{}", self.events.len()),
            payload: Some(payload),
            seq: *seq,
            epoch: EPOCH.into(),
            stream: stream.into(),
            ..Default::default()
        });
        self.snapshots
            .insert((stream.to_string(), *seq), model.clone());
    }
}

fn generate(rng: &mut StdRng, ops: usize) -> (Model, History) {
    let mut m = Model {
        project: proto::Project {
            id: PID.into(),
            title: "P".into(),
            key: "P".into(),
            version: 1,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut h = History {
        events: vec![],
        snapshots: BTreeMap::new(),
        seqs: BTreeMap::new(),
    };
    h.snapshots.insert((WORKSPACE.into(), 0), m.clone());
    h.snapshots.insert((PID.into(), 0), m.clone());
    let user = "u".to_string();
    for _ in 0..ops {
        m.clock += 1;
        m.next_id += 1;
        let roll = rng.random_range(0..120);
        if roll < 25 || m.items.is_empty() {
            let id = format!("w{}", m.next_id);
            let w = proto::WorkItem {
                id: id.clone(),
                project_id: PID.into(),
                title: format!("t{}", m.next_id),
                version: 1,
                status: "backlog".into(),
                ..Default::default()
            };
            m.items.insert(id, w.clone());
            h.push(
                PID,
                Payload::WorkItemCreated(proto::WorkItemCreated {
                    work_item: Some(w),
                    user_id: user.clone(),
                    ..Default::default()
                }),
                &m,
            );
        } else if roll < 55 {
            let id = pick(rng, &m.items);
            let w = m.items.get_mut(&id).expect("picked");
            w.version += 1;
            w.title = format!("t{}", m.next_id);
            w.status = ["backlog", "todo", "done"][rng.random_range(0..3)].into();
            let w = w.clone();
            h.push(
                PID,
                Payload::WorkItemUpdated(proto::WorkItemUpdated {
                    work_item: Some(w),
                    changes: vec![],
                    user_id: user.clone(),
                }),
                &m,
            );
        } else if roll < 65 {
            let id = pick(rng, &m.items);
            m.items.remove(&id);
            m.comments.retain(|_, c| c.work_item_id != id);
            m.dependencies
                .retain(|_, d| d.blocked_item_id != id && d.blocking_item_id != id);
            m.time_entries.retain(|_, t| t.work_item_id != id);
            h.push(
                PID,
                Payload::WorkItemDeleted(proto::WorkItemDeleted {
                    work_item_id: id,
                    user_id: user.clone(),
                }),
                &m,
            );
        } else if roll < 75 {
            let item = pick(rng, &m.items);
            let id = format!("c{}", m.next_id);
            let c = proto::Comment {
                id: id.clone(),
                work_item_id: item,
                content: "x".into(),
                created_at: m.clock,
                updated_at: m.clock,
                ..Default::default()
            };
            m.comments.insert(id, c.clone());
            h.push(
                PID,
                Payload::CommentCreated(proto::CommentCreated {
                    comment: Some(c),
                    user_id: user.clone(),
                }),
                &m,
            );
        } else if roll < 80 && !m.comments.is_empty() {
            let id = pick(rng, &m.comments);
            let c = m.comments.get_mut(&id).expect("picked");
            c.content = format!("y{}", m.clock);
            c.updated_at = m.clock;
            let c = c.clone();
            h.push(
                PID,
                Payload::CommentUpdated(proto::CommentUpdated {
                    comment: Some(c),
                    user_id: user.clone(),
                }),
                &m,
            );
        } else if roll < 84 && !m.comments.is_empty() {
            let id = pick(rng, &m.comments);
            let c = m.comments.remove(&id).expect("picked");
            h.push(
                PID,
                Payload::CommentDeleted(proto::CommentDeleted {
                    comment_id: id,
                    user_id: user.clone(),
                    work_item_id: c.work_item_id,
                }),
                &m,
            );
        } else if roll < 90 {
            let id = format!("s{}", m.next_id);
            let s = proto::Sprint {
                id: id.clone(),
                project_id: PID.into(),
                name: "s".into(),
                version: 1,
                ..Default::default()
            };
            m.sprints.insert(id, s.clone());
            h.push(
                PID,
                Payload::SprintCreated(proto::SprintCreated {
                    sprint: Some(s),
                    user_id: user.clone(),
                }),
                &m,
            );
        } else if roll < 94 && !m.sprints.is_empty() {
            let id = pick(rng, &m.sprints);
            let s = m.sprints.get_mut(&id).expect("picked");
            s.version += 1;
            s.name = format!("s{}", m.clock);
            let s = s.clone();
            h.push(
                PID,
                Payload::SprintUpdated(proto::SprintUpdated {
                    sprint: Some(s),
                    changes: vec![],
                    user_id: user.clone(),
                }),
                &m,
            );
        } else if roll < 96 && !m.sprints.is_empty() {
            let id = pick(rng, &m.sprints);
            m.sprints.remove(&id);
            h.push(
                PID,
                Payload::SprintDeleted(proto::SprintDeleted {
                    sprint_id: id,
                    user_id: user.clone(),
                }),
                &m,
            );
        } else if roll < 104 && m.items.len() >= 2 {
            let (a, b) = (pick(rng, &m.items), pick(rng, &m.items));
            if a == b {
                continue;
            }
            let id = format!("d{}", m.next_id);
            let d = proto::Dependency {
                id: id.clone(),
                blocking_item_id: a,
                blocked_item_id: b,
                dependency_type: 1 + rng.random_range(0..2),
                created_at: m.clock,
                ..Default::default()
            };
            m.dependencies.insert(id, d.clone());
            h.push(
                PID,
                Payload::DependencyCreated(proto::DependencyCreated {
                    dependency: Some(d),
                    user_id: user.clone(),
                }),
                &m,
            );
        } else if roll < 107 && !m.dependencies.is_empty() {
            let id = pick(rng, &m.dependencies);
            let d = m.dependencies.remove(&id).expect("picked");
            h.push(
                PID,
                Payload::DependencyDeleted(proto::DependencyDeleted {
                    dependency_id: id,
                    blocking_item_id: d.blocking_item_id,
                    blocked_item_id: d.blocked_item_id,
                    user_id: user.clone(),
                }),
                &m,
            );
        } else if roll < 111 {
            // StartTimer: stops the running timer in the same event.
            let item = pick(rng, &m.items);
            let stopped = m
                .time_entries
                .values_mut()
                .find(|t| t.ended_at.is_none())
                .map(|t| {
                    t.ended_at = Some(m.clock);
                    t.duration_seconds = Some((m.clock - t.started_at) as i32);
                    t.updated_at = m.clock;
                    t.clone()
                });
            let id = format!("t{}", m.next_id);
            let t = proto::TimeEntry {
                id: id.clone(),
                work_item_id: item,
                user_id: user.clone(),
                started_at: m.clock,
                created_at: m.clock,
                updated_at: m.clock,
                ..Default::default()
            };
            m.time_entries.insert(id, t.clone());
            h.push(
                PID,
                Payload::TimerStarted(proto::TimerStarted {
                    time_entry: Some(t),
                    user_id: user.clone(),
                    stopped_entry: stopped,
                }),
                &m,
            );
        } else if roll < 113 && m.time_entries.values().any(|t| t.ended_at.is_none()) {
            let t = m
                .time_entries
                .values_mut()
                .find(|t| t.ended_at.is_none())
                .expect("running");
            t.ended_at = Some(m.clock);
            t.duration_seconds = Some((m.clock - t.started_at) as i32);
            t.updated_at = m.clock;
            let t = t.clone();
            h.push(
                PID,
                Payload::TimerStopped(proto::TimerStopped {
                    time_entry: Some(t),
                    user_id: user.clone(),
                }),
                &m,
            );
        } else if roll < 116 && !m.time_entries.is_empty() {
            let id = pick(rng, &m.time_entries);
            let t = m.time_entries.get_mut(&id).expect("picked");
            t.description = Some(format!("d{}", m.clock));
            t.updated_at = m.clock;
            let t = t.clone();
            h.push(
                PID,
                Payload::TimeEntryUpdated(proto::TimeEntryUpdated {
                    time_entry: Some(t),
                    user_id: user.clone(),
                }),
                &m,
            );
        } else if roll < 118 && !m.time_entries.is_empty() {
            let id = pick(rng, &m.time_entries);
            let t = m.time_entries.remove(&id).expect("picked");
            h.push(
                PID,
                Payload::TimeEntryDeleted(proto::TimeEntryDeleted {
                    time_entry_id: id,
                    work_item_id: t.work_item_id,
                    user_id: user.clone(),
                }),
                &m,
            );
        } else {
            m.project.version += 1;
            m.project.title = format!("P{}", m.clock);
            let p = m.project.clone();
            h.push(
                WORKSPACE,
                Payload::ProjectUpdated(proto::ProjectUpdated {
                    project: Some(p),
                    changes: vec![],
                    user_id: user.clone(),
                }),
                &m,
            );
        }
    }
    (m, h)
}

fn pick<T>(rng: &mut StdRng, map: &BTreeMap<String, T>) -> String {
    let i = rng.random_range(0..map.len());
    map.keys().nth(i).cloned().expect("non-empty")
}

/// What the server would answer to "give me a snapshot" when it has committed up to `upto`.
fn load(store: &mut ClientStore, h: &History, stream: &str, upto: u64) -> Vec<Outcome> {
    let model = &h.snapshots[&(stream.to_string(), upto)];
    if stream == WORKSPACE {
        store.load_projects(vec![model.project.clone()], upto, EPOCH)
    } else {
        let snap = proto::ProjectSnapshot {
            project: Some(model.project.clone()),
            work_items: model.items.values().cloned().collect(),
            sprints: model.sprints.values().cloned().collect(),
            comments: model.comments.values().cloned().collect(),
            users: vec![],
            dependencies: model.dependencies.values().cloned().collect(),
            time_entries: model.time_entries.values().cloned().collect(),
            ..Default::default()
        };
        store.load_project(snap, upto, EPOCH)
    }
}

/// Delivers `msg`, satisfying every resync with a snapshot at the highest seq seen so far.
fn deliver(
    store: &mut ClientStore,
    h: &History,
    seen: &mut BTreeMap<String, u64>,
    msg: &WebSocketMessage,
) {
    let hw = seen.entry(msg.stream.clone()).or_default();
    *hw = (*hw).max(msg.seq);
    let mut pending = vec![store.apply(msg)];
    while let Some(o) = pending.pop() {
        if let Outcome::Resync { stream, .. } = o {
            let upto = seen.get(&stream).copied().unwrap_or(0);
            pending.extend(load(store, h, &stream, upto));
        }
    }
}

fn entities(s: &ClientStore) -> String {
    // The project snapshot carries the project too; compare the fields the events change.
    let (p, w, sp, c) = (&s.projects, &s.work_items, &s.sprints, &s.comments);
    format!(
        "{:?}",
        (
            p.values()
                .map(|p| (&p.id, p.version, &p.title))
                .collect::<Vec<_>>(),
            w,
            sp,
            c,
            &s.dependencies,
            &s.time_entries
        )
    )
}

fn run_case(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let ops = rng.random_range(1..120);
    let (model, h) = generate(&mut rng, ops);

    // Reference: a store that gets everything once, in order.
    let mut reference = ClientStore::new();
    load(&mut reference, &h, WORKSPACE, 0);
    load(&mut reference, &h, PID, 0);
    for e in &h.events {
        assert!(
            matches!(reference.apply(e), Outcome::Applied(_)),
            "seed {seed}: in-order event not applied"
        );
    }

    // Chaos: local reordering, duplicates, replays of old ranges.
    let mut stream: Vec<WebSocketMessage> = h.events.clone();
    for _ in 0..rng.random_range(0..stream.len() + 1) {
        let i = rng.random_range(0..stream.len());
        let j = (i + rng.random_range(0..4)).min(stream.len() - 1);
        stream.swap(i, j);
    }
    for _ in 0..rng.random_range(0..10) {
        let i = rng.random_range(0..stream.len());
        let dup = stream[rng.random_range(0..stream.len())].clone();
        stream.insert(i, dup);
    }
    if rng.random_bool(0.5) {
        let from = rng.random_range(0..h.events.len());
        stream.extend(h.events[from..].iter().cloned());
    }

    let mut store = ClientStore::new();
    let mut seen = BTreeMap::new();
    // Start from a snapshot taken somewhere in the middle, as a late joiner would.
    let start = rng.random_range(0..=h.events.len());
    for s in [WORKSPACE, PID] {
        let at = h.events[..start]
            .iter()
            .filter(|e| e.stream == s)
            .map(|e| e.seq)
            .max()
            .unwrap_or(0);
        seen.insert(s.to_string(), at);
        load(&mut store, &h, s, at);
    }
    for msg in &stream {
        deliver(&mut store, &h, &mut seen, msg);
    }
    // Reconnect and resume from the store's cursors, as the SDK does.
    for s in [WORKSPACE, PID] {
        let from = store.cursor(s).map(|c| c.0);
        match from {
            Some(from) => {
                for e in h.events.iter().filter(|e| e.stream == s && e.seq > from) {
                    deliver(&mut store, &h, &mut seen, e);
                }
            }
            None => {
                let last = h.seqs.get(s).copied().unwrap_or(0);
                load(&mut store, &h, s, last);
            }
        }
    }
    assert_eq!(
        entities(&store),
        entities(&reference),
        "seed {seed}: store diverged"
    );
    assert_eq!(
        model.items.len(),
        reference.work_items.len(),
        "seed {seed}: reference diverged from model"
    );
}

#[test]
fn any_delivery_order_converges() {
    let cases: u64 = std::env::var("PM_STORE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let base: u64 = std::env::var("PM_STORE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed);
    for i in 0..cases {
        let seed = base.wrapping_add(i);
        let result = std::panic::catch_unwind(|| run_case(seed));
        if result.is_err() {
            panic!(
                "store convergence failed; reproduce with PM_STORE_SEED={seed} PM_STORE_CASES=1"
            );
        }
    }
}

#[test]
fn idempotent_entity_rules() {
    let mut s = ClientStore::new();
    s.load_project(
        proto::ProjectSnapshot {
            project: Some(proto::Project {
                id: PID.into(),
                ..Default::default()
            }),
            ..Default::default()
        },
        0,
        EPOCH,
    );
    let item = proto::WorkItem {
        id: "w".into(),
        project_id: PID.into(),
        version: 2,
        title: "new".into(),
        ..Default::default()
    };
    let ev = |seq, payload| WebSocketMessage {
        seq,
        epoch: EPOCH.into(),
        stream: PID.into(),
        payload: Some(payload),
        ..Default::default()
    };
    assert!(matches!(
        s.apply(&ev(
            1,
            Payload::WorkItemCreated(proto::WorkItemCreated {
                work_item: Some(item.clone()),
                user_id: "u".into(),
                ..Default::default()
            })
        )),
        Outcome::Applied(_)
    ));
    // Same seq again: duplicate.
    assert_eq!(
        s.apply(&ev(
            1,
            Payload::WorkItemCreated(proto::WorkItemCreated {
                work_item: Some(item.clone()),
                user_id: "u".into(),
                ..Default::default()
            })
        )),
        Outcome::Ignored
    );
    // A stale version under a new seq changes nothing.
    let stale = proto::WorkItem {
        version: 1,
        title: "old".into(),
        ..item.clone()
    };
    assert_eq!(
        s.apply(&ev(
            2,
            Payload::WorkItemUpdated(proto::WorkItemUpdated {
                work_item: Some(stale),
                changes: vec![],
                user_id: "u".into()
            })
        )),
        Outcome::Ignored
    );
    assert_eq!(s.work_items["w"].title, "new");
    // Deleting an unknown id is a no-op.
    assert_eq!(
        s.apply(&ev(
            3,
            Payload::WorkItemDeleted(proto::WorkItemDeleted {
                work_item_id: "nope".into(),
                user_id: "u".into()
            })
        )),
        Outcome::Ignored
    );
    // A gap asks for a resync; so does another epoch.
    assert!(matches!(
        s.apply(&ev(
            9,
            Payload::WorkItemDeleted(proto::WorkItemDeleted {
                work_item_id: "w".into(),
                user_id: "u".into()
            })
        )),
        Outcome::Resync { .. }
    ));
    s.load_project(
        proto::ProjectSnapshot {
            project: Some(proto::Project {
                id: PID.into(),
                ..Default::default()
            }),
            ..Default::default()
        },
        9,
        EPOCH,
    );
    let other = WebSocketMessage {
        epoch: "epoch-2".into(),
        ..ev(
            10,
            Payload::WorkItemDeleted(proto::WorkItemDeleted {
                work_item_id: "w".into(),
                user_id: "u".into(),
            }),
        )
    };
    assert!(matches!(s.apply(&other), Outcome::Resync { .. }));
    // Events for a stream without a snapshot are held, then applied after it.
    let mut t = ClientStore::new();
    assert_eq!(
        t.apply(&ev(
            1,
            Payload::WorkItemCreated(proto::WorkItemCreated {
                work_item: Some(item.clone()),
                user_id: "u".into(),
                ..Default::default()
            })
        )),
        Outcome::Held
    );
    assert_eq!(
        t.apply(&ev(
            2,
            Payload::WorkItemDeleted(proto::WorkItemDeleted {
                work_item_id: "w".into(),
                user_id: "u".into()
            })
        )),
        Outcome::Held
    );
    let snapshot_at_1 = proto::ProjectSnapshot {
        project: Some(proto::Project {
            id: PID.into(),
            ..Default::default()
        }),
        work_items: vec![item.clone()],
        ..Default::default()
    };
    let released = t.load_project(snapshot_at_1, 1, EPOCH);
    assert_eq!(
        released.len(),
        1,
        "only the event after the snapshot applies"
    );
    assert!(t.work_items.is_empty());
}
