//! The presence of every session this server knows, its own and other servers', and what
//! changed since the last flush. Pure state: the caller holds it under a lock and hands the
//! frames it builds to the hub.
use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;
use pm_shared::proto::{self, Payload, WebSocketMessage};
use tokio::time::{Duration, Instant};

use crate::frames;
use crate::hub::{ConnId, EventHub, Offered};

use super::request::Wanted;

/// Where a session lives.
enum Origin {
    /// A connection of this server, with its last heartbeat, and whether it is owed a whole
    /// snapshot (it just arrived, or a frame for it was lost to a full queue).
    Local {
        conn: ConnId,
        last_seen: Instant,
        owed_snapshot: bool,
    },
    /// A connection of another server (PostgreSQL): it lives as long as that server keeps
    /// telling about it.
    Remote { node: String },
}

struct Session {
    user_id: String,
    project: String,
    item: Option<String>,
    field: Option<String>,
    invisible: bool,
    since: i64,
    origin: Origin,
}

impl Session {
    fn to_proto(&self, id: &str) -> proto::Presence {
        proto::Presence {
            session_id: id.to_string(),
            user_id: self.user_id.clone(),
            work_item_id: self.item.clone(),
            field: self.field.clone(),
            since: self.since,
        }
    }

    fn is_local(&self) -> bool {
        matches!(self.origin, Origin::Local { .. })
    }
}

/// A batch of one server's sessions of one project, as servers tell each other (`relay`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Forward {
    pub project: String,
    /// Sessions new or changed (visible ones only: an invisible session is gone for others).
    pub sessions: Vec<proto::Presence>,
    pub gone: Vec<String>,
}

#[derive(Default)]
pub struct Registry {
    sessions: HashMap<String, Session>,
    by_conn: HashMap<ConnId, String>,
    /// Sessions changed since the last flush, under each project they were or are on.
    touched: HashMap<String, BTreeSet<String>>,
    /// This server's sessions changed since they were last forwarded, the same way.
    unforwarded: HashMap<String, BTreeSet<String>>,
    /// Other servers, and when each was last heard from.
    nodes: HashMap<String, Instant>,
}

impl Registry {
    fn touch(&mut self, project: &str, id: &str, local: bool) {
        self.touched
            .entry(project.to_string())
            .or_default()
            .insert(id.to_string());
        if local {
            self.unforwarded
                .entry(project.to_string())
                .or_default()
                .insert(id.to_string());
        }
    }

    /// The project connection `conn` is on, if any.
    pub fn project_of(&self, conn: ConnId) -> Option<&str> {
        let id = self.by_conn.get(&conn)?;
        self.sessions.get(id).map(|s| s.project.as_str())
    }

    /// Records where `conn` is (its heartbeat too). True when it arrived on the project now,
    /// and so is owed a snapshot (sent by the next flush).
    pub fn set(
        &mut self,
        conn: ConnId,
        session_id: &str,
        user_id: &str,
        wanted: Wanted,
        now: Instant,
    ) -> bool {
        if let Some(s) = self.sessions.get_mut(session_id) {
            if s.project == wanted.project {
                if let Origin::Local { last_seen, .. } = &mut s.origin {
                    *last_seen = now;
                }
                let changed = s.item != wanted.item
                    || s.field != wanted.field
                    || s.invisible != wanted.invisible;
                if changed {
                    s.item = wanted.item;
                    s.field = wanted.field;
                    s.invisible = wanted.invisible;
                    let project = s.project.clone();
                    self.touch(&project, session_id, true);
                }
                return false;
            }
            self.leave(conn);
        }
        self.touch(&wanted.project, session_id, true);
        self.by_conn.insert(conn, session_id.to_string());
        self.sessions.insert(
            session_id.to_string(),
            Session {
                user_id: user_id.to_string(),
                project: wanted.project,
                item: wanted.item,
                field: wanted.field,
                invisible: wanted.invisible,
                since: pm_shared::now_secs(),
                origin: Origin::Local {
                    conn,
                    last_seen: now,
                    owed_snapshot: true,
                },
            },
        );
        true
    }

    /// Connection `conn` is on no board any more (it said so, or it closed).
    pub fn leave(&mut self, conn: ConnId) {
        let Some(id) = self.by_conn.remove(&conn) else {
            return;
        };
        if let Some(s) = self.sessions.remove(&id) {
            self.touch(&s.project, &id, true);
        }
    }

    /// Ends what outlived its heartbeat: this server's sessions `timeout` after their last
    /// one, another server's all at once `timeout` after that server was last heard from.
    pub fn expire(&mut self, now: Instant, timeout: Duration) {
        let stale_conns: Vec<ConnId> = self
            .sessions
            .values()
            .filter_map(|s| match s.origin {
                Origin::Local {
                    conn, last_seen, ..
                } if now.duration_since(last_seen) > timeout => Some(conn),
                _ => None,
            })
            .collect();
        for conn in stale_conns {
            self.leave(conn);
        }
        let silent: Vec<String> = self
            .nodes
            .iter()
            .filter(|(_, heard)| now.duration_since(**heard) > timeout)
            .map(|(node, _)| node.clone())
            .collect();
        for node in silent {
            self.nodes.remove(&node);
            self.drop_node(&node);
        }
    }

    fn drop_node(&mut self, node: &str) {
        let ids: Vec<String> = self
            .sessions
            .iter()
            .filter(|(_, s)| matches!(&s.origin, Origin::Remote { node: n } if n == node))
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            if let Some(s) = self.sessions.remove(&id) {
                self.touch(&s.project, &id, false);
            }
        }
    }

    /// Ends this server's sessions whose user may no longer see their project (token mode: a
    /// membership was removed).
    pub fn revoke(&mut self, may_see: impl Fn(&str, &str) -> bool) {
        let revoked: Vec<ConnId> = self
            .sessions
            .values()
            .filter_map(|s| match s.origin {
                Origin::Local { conn, .. } if !may_see(&s.user_id, &s.project) => Some(conn),
                _ => None,
            })
            .collect();
        for conn in revoked {
            self.leave(conn);
        }
    }

    /// Another server was heard from.
    pub fn heard(&mut self, node: &str, now: Instant) {
        self.nodes.insert(node.to_string(), now);
    }

    /// Applies what another server says of its sessions.
    pub fn apply_remote(&mut self, node: &str, forward: Forward, now: Instant) {
        self.heard(node, now);
        for id in forward.gone {
            let theirs = self
                .sessions
                .get(&id)
                .is_some_and(|s| matches!(&s.origin, Origin::Remote { node: n } if n == node));
            if theirs {
                if let Some(s) = self.sessions.remove(&id) {
                    self.touch(&s.project, &id, false);
                }
            }
        }
        for p in forward.sessions {
            if self
                .sessions
                .get(&p.session_id)
                .is_some_and(Session::is_local)
            {
                continue; // not theirs to say
            }
            let id = p.session_id;
            if let Some(old) = self.sessions.get(&id) {
                if old.project != forward.project {
                    let old_project = old.project.clone();
                    self.touch(&old_project, &id, false);
                }
            }
            self.touch(&forward.project, &id, false);
            self.sessions.insert(
                id,
                Session {
                    user_id: p.user_id,
                    project: forward.project.clone(),
                    item: p.work_item_id,
                    field: p.field,
                    invisible: false,
                    since: p.since,
                    origin: Origin::Remote {
                        node: node.to_string(),
                    },
                },
            );
        }
    }

    /// Every visible session of `project`.
    fn visible(&self, project: &str) -> Vec<proto::Presence> {
        let mut all: Vec<proto::Presence> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.project == project && !s.invisible)
            .map(|(id, s)| s.to_proto(id))
            .collect();
        all.sort_by(|a, b| a.session_id.cmp(&b.session_id));
        all
    }

    /// What changed of `ids` (sessions touched under `project`): each is still there and
    /// visible (updated), or gone from the project.
    fn changes(
        &self,
        project: &str,
        ids: &BTreeSet<String>,
    ) -> (Vec<proto::Presence>, Vec<String>) {
        let mut updated = Vec::new();
        let mut gone = Vec::new();
        for id in ids {
            match self.sessions.get(id) {
                Some(s) if s.project == project && !s.invisible => updated.push(s.to_proto(id)),
                _ => gone.push(id.clone()),
            }
        }
        (updated, gone)
    }

    /// Sends every local watcher what changed on its project since the last flush (one frame
    /// per project), or a whole snapshot if it is owed one. Never waits: a watcher whose queue
    /// is full is owed a snapshot instead. Returns how many frames were queued.
    pub fn flush(&mut self, hub: &EventHub) -> usize {
        let touched = std::mem::take(&mut self.touched);
        let mut changed: HashMap<String, Bytes> = HashMap::new();
        for (project, ids) in &touched {
            let (updated, gone) = self.changes(project, ids);
            let payload = Payload::PresenceChanged(proto::PresenceChanged {
                project_id: project.clone(),
                updated,
                gone,
            });
            changed.insert(project.clone(), framed(payload));
        }
        let mut snapshots: HashMap<String, Bytes> = HashMap::new();
        let mut sent = 0;
        let mut watchers: Vec<(ConnId, String, bool)> = Vec::new();
        for (id, s) in &self.sessions {
            if let Origin::Local {
                conn,
                owed_snapshot,
                ..
            } = s.origin
            {
                if owed_snapshot || changed.contains_key(&s.project) {
                    watchers.push((conn, id.clone(), owed_snapshot));
                }
            }
        }
        for (conn, id, owed) in watchers {
            let Some(project) = self.sessions.get(&id).map(|s| s.project.clone()) else {
                continue;
            };
            let frame = if owed {
                if !snapshots.contains_key(&project) {
                    let snapshot = self.snapshot_frame(&project);
                    snapshots.insert(project.clone(), snapshot);
                }
                snapshots.get(&project).cloned()
            } else {
                changed.get(&project).cloned()
            };
            let Some(frame) = frame else { continue };
            let queued = hub.offer_to(conn, frame) == Offered::Queued;
            sent += usize::from(queued);
            if let Some(Session {
                origin: Origin::Local { owed_snapshot, .. },
                ..
            }) = self.sessions.get_mut(&id)
            {
                *owed_snapshot = !queued;
            }
        }
        sent
    }

    fn snapshot_frame(&self, project: &str) -> Bytes {
        framed(Payload::PresenceSnapshot(proto::PresenceSnapshot {
            project_id: project.to_string(),
            sessions: self.visible(project),
        }))
    }

    /// This server's sessions changed since they were last forwarded, per project.
    pub fn take_forwards(&mut self) -> Vec<Forward> {
        let unforwarded = std::mem::take(&mut self.unforwarded);
        unforwarded
            .into_iter()
            .map(|(project, ids)| {
                let (sessions, gone) = self.changes(&project, &ids);
                Forward {
                    project,
                    sessions,
                    gone,
                }
            })
            .collect()
    }

    /// Marks every session of this server to be forwarded again (another server asked for
    /// everything, or a forward was lost).
    pub fn forward_all(&mut self) {
        let local: Vec<(String, String)> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.is_local())
            .map(|(id, s)| (s.project.clone(), id.clone()))
            .collect();
        for (project, id) in local {
            self.unforwarded.entry(project).or_default().insert(id);
        }
    }

    /// How many sessions are known (all servers), for tests and metrics.
    pub(super) fn len(&self) -> usize {
        self.sessions.len()
    }
}

fn framed(payload: Payload) -> Bytes {
    frames::message(&WebSocketMessage::with_payload(
        crate::ids::random_id(),
        payload,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    fn watcher(hub: &EventHub, slots: usize) -> (ConnId, mpsc::Receiver<crate::hub::Outbound>) {
        let (tx, rx) = mpsc::channel(slots);
        let conn = hub.register(crate::hub::Subscriber {
            user_id: "w".into(),
            queue: tx,
            queued_bytes: Default::default(),
            max_bytes: 1 << 20,
            cut_off: Default::default(),
            socket: None,
        });
        (conn, rx)
    }

    fn on(project: &str, field: &str) -> Wanted {
        Wanted {
            project: project.into(),
            item: None,
            field: Some(field.into()),
            invisible: false,
        }
    }

    fn payload(item: crate::hub::Outbound) -> Payload {
        use prost::Message as _;
        let frames = frames::payloads(item.bytes());
        WebSocketMessage::decode(frames[0].clone())
            .unwrap()
            .payload
            .unwrap()
    }

    /// A watcher whose queue is full loses the frame, is not waited for, and gets a whole
    /// snapshot at the next flush that finds room.
    #[tokio::test]
    async fn a_full_queue_costs_a_frame_and_earns_a_snapshot() {
        let hub = EventHub::default();
        let now = Instant::now();
        let mut registry = Registry::default();
        let (slow, mut slow_rx) = watcher(&hub, 1);
        let (other, _other_rx) = watcher(&hub, 64);
        registry.set(slow, "n-1", "w", on("p", "a"), now);
        registry.set(other, "n-2", "o", on("p", "a"), now);
        assert_eq!(registry.flush(&hub), 2, "both snapshots");
        // The slow one's single slot is taken: the change is lost for it, not for the other.
        registry.set(other, "n-2", "o", on("p", "b"), now);
        assert_eq!(registry.flush(&hub), 1);
        assert!(matches!(
            payload(slow_rx.recv().await.unwrap()),
            Payload::PresenceSnapshot(_)
        ));
        // Nothing changed since, but the slow one is owed a snapshot: it gets the truth.
        assert_eq!(registry.flush(&hub), 1);
        let Payload::PresenceSnapshot(snapshot) = payload(slow_rx.recv().await.unwrap()) else {
            panic!("a snapshot");
        };
        let other_now = snapshot
            .sessions
            .iter()
            .find(|p| p.session_id == "n-2")
            .unwrap();
        assert_eq!(other_now.field.as_deref(), Some("b"));
        assert_eq!(registry.flush(&hub), 0, "and then nothing more");
    }

    /// A session without a heartbeat expires after the timeout; a server not heard from takes
    /// its sessions with it.
    #[tokio::test]
    async fn silence_expires_sessions_and_servers() {
        let hub = EventHub::default();
        let t0 = Instant::now();
        let timeout = Duration::from_secs(30);
        let mut registry = Registry::default();
        let (conn, _rx) = watcher(&hub, 64);
        registry.set(conn, "n-1", "w", on("p", "a"), t0);
        registry.apply_remote(
            "other",
            Forward {
                project: "p".into(),
                sessions: vec![proto::Presence {
                    session_id: "m-1".into(),
                    user_id: "r".into(),
                    ..Default::default()
                }],
                gone: vec!["n-1".into()],
            },
            t0,
        );
        assert_eq!(registry.len(), 2, "another server cannot end my session");
        registry.expire(t0 + Duration::from_secs(29), timeout);
        assert_eq!(registry.len(), 2);
        registry.set(conn, "n-1", "w", on("p", "a"), t0 + Duration::from_secs(20));
        registry.expire(t0 + Duration::from_secs(31), timeout);
        assert_eq!(
            registry.len(),
            1,
            "the silent server's session is gone, mine beat"
        );
        registry.expire(t0 + Duration::from_secs(51), timeout);
        assert!(registry.project_of(conn).is_none(), "mine too, once silent");
    }
}
