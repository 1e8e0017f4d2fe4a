//! A replica: a [`ClientStore`] kept in sync with the server over a [`SessionHandle`].
//!
//! It drives the resume protocol and nothing else (no UI, no timers): on connect it resumes every
//! stream it has a cursor for and loads a snapshot of every stream it has none for; a snapshot
//! reply is loaded and followed by a Subscribe with the snapshot's seq as cursor, so the server
//! replays whatever committed in between; a gap, an epoch change or the server's ResyncRequired
//! unsubscribes the stream and starts the same snapshot-then-resume cycle for it alone.
use std::collections::HashMap;

use crate::sdk::{NetEvent, SessionHandle};
use pm_shared::proto::{self, Payload, WebSocketMessage};
use pm_shared::store::{ClientStore, Outcome, WORKSPACE};

#[derive(Debug, Default)]
pub struct Replica {
    pub store: ClientStore,
    /// The project whose stream is followed (the workspace stream always is).
    project: Option<String>,
    /// Snapshot requests in flight: message_id → stream.
    awaiting: HashMap<String, String>,
    /// Streams being re-synchronised (for the status bar).
    resyncing: Vec<String>,
    /// Subscribes (resumes) whose reply has not come: the server replays a stream's missed
    /// events before it answers its Subscribe.
    subscribing: Vec<String>,
    /// The session is connected.
    connected: bool,
    /// Preview requests in flight: message_id → stream.
    previews: HashMap<String, String>,
    /// The lane counts of the preview shown while a stream's snapshot loads: (stream, counts).
    lane_totals: Option<(String, Vec<u32>)>,
}

/// Cards of each lane a preview asks for: more than a screen shows.
pub const PREVIEW_PER_LANE: u32 = 100;

impl Replica {
    pub fn new(project: Option<String>) -> Self {
        Replica {
            project,
            ..Default::default()
        }
    }

    pub fn project(&self) -> Option<&str> {
        self.project.as_deref()
    }

    /// True while any stream waits for a snapshot.
    pub fn is_resyncing(&self) -> bool {
        !self.resyncing.is_empty()
    }

    /// True once connected and caught up with everyone's changes: every stream loaded, every
    /// resume's replay received (what an offline queue waits for before it replays).
    pub fn is_caught_up(&self) -> bool {
        self.connected
            && self.is_synced()
            && self.awaiting.is_empty()
            && self.subscribing.is_empty()
    }

    /// True once the workspace and the followed project are loaded.
    pub fn is_synced(&self) -> bool {
        self.store.cursor(WORKSPACE).is_some()
            && self
                .project
                .as_deref()
                .is_none_or(|p| self.store.cursor(p).is_some())
    }

    /// While the followed project shows a preview (its snapshot still loading): how many cards
    /// each lane really has, in `Status::ALL` order.
    pub fn preview_totals(&self) -> Option<&[u32]> {
        let (stream, totals) = self.lane_totals.as_ref()?;
        (self.project.as_deref() == Some(stream.as_str()) && self.store.cursor(stream).is_none())
            .then_some(totals.as_slice())
    }

    /// Follows another project (or none): stops the old stream, loads the new one.
    pub fn follow(&mut self, handle: &SessionHandle, project: Option<String>) {
        if self.project == project {
            return;
        }
        if let Some(old) = self.project.take() {
            let _ = handle.send(Payload::Unsubscribe(proto::Unsubscribe {
                project_ids: vec![old.clone()],
                sprint_ids: vec![],
            }));
            self.store.invalidate(&old);
        }
        self.project = project.clone();
        if let Some(p) = project {
            self.resync(handle, &p);
        }
    }

    /// Handles one event of the session; returns what changed in the store. A snapshot reply
    /// is copied into the store; [`Replica::take_net`] moves it instead.
    pub fn on_net(&mut self, handle: &SessionHandle, event: &NetEvent) -> Vec<Outcome> {
        let snapshot = match event {
            NetEvent::Message(msg) if self.is_awaited(&msg.message_id) => msg.payload.clone(),
            _ => None,
        };
        self.handle_net(handle, event, snapshot)
    }

    /// Like [`Replica::on_net`], but a snapshot reply's payload (tens of megabytes for a big
    /// project) is moved into the store, not copied: the event is left without it.
    pub fn take_net(&mut self, handle: &SessionHandle, event: &mut NetEvent) -> Vec<Outcome> {
        let snapshot = match event {
            NetEvent::Message(msg) if self.is_awaited(&msg.message_id) => msg.payload.take(),
            _ => None,
        };
        self.handle_net(handle, event, snapshot)
    }

    /// A reply to a snapshot or preview request of mine.
    fn is_awaited(&self, message_id: &str) -> bool {
        self.awaiting.contains_key(message_id) || self.previews.contains_key(message_id)
    }

    /// `snapshot`: the payload of a reply to a snapshot request, taken out of `event`.
    fn handle_net(
        &mut self,
        handle: &SessionHandle,
        event: &NetEvent,
        snapshot: Option<Payload>,
    ) -> Vec<Outcome> {
        match event {
            NetEvent::Connected => {
                self.connected = true;
                self.awaiting.clear();
                self.previews.clear();
                self.resyncing.clear();
                self.subscribing.clear();
                let mut cursors = Vec::new();
                let streams: Vec<String> = std::iter::once(WORKSPACE.to_string())
                    .chain(self.project.clone())
                    .collect();
                for stream in streams {
                    match self.store.cursor(&stream) {
                        Some((last_seq, epoch)) => cursors.push(proto::ResumeCursor {
                            stream,
                            last_seq,
                            epoch,
                        }),
                        None => self.request_snapshot(handle, &stream),
                    }
                }
                if !cursors.is_empty() {
                    self.subscribe(handle, cursors);
                }
                Vec::new()
            }
            NetEvent::Message(msg) => self.on_message(handle, msg, snapshot),
            NetEvent::Disconnected { .. } => {
                self.connected = false;
                Vec::new()
            }
            NetEvent::Connecting { .. } => Vec::new(),
        }
    }

    /// Resumes streams from their cursors; the reply says their replay is complete.
    fn subscribe(&mut self, handle: &SessionHandle, cursors: Vec<proto::ResumeCursor>) {
        if let Ok(id) = handle.send(Payload::Subscribe(proto::Subscribe {
            cursors,
            ..Default::default()
        })) {
            self.subscribing.push(id);
        }
    }

    fn on_message(
        &mut self,
        handle: &SessionHandle,
        msg: &WebSocketMessage,
        snapshot: Option<Payload>,
    ) -> Vec<Outcome> {
        if let Some(i) = self.subscribing.iter().position(|id| *id == msg.message_id) {
            self.subscribing.swap_remove(i);
        }
        if let Some(stream) = self.previews.remove(&msg.message_id) {
            let loading = self.awaiting.values().any(|s| *s == stream);
            if let (true, Some(Payload::ProjectSnapshot(preview))) = (loading, snapshot) {
                let totals = preview.lane_totals.clone();
                if preview.partial && self.store.preview_project(preview) {
                    self.lane_totals = Some((stream, totals));
                }
            }
            return Vec::new();
        }
        if let Some(stream) = self.awaiting.remove(&msg.message_id) {
            self.resyncing.retain(|s| *s != stream);
            if self.lane_totals.as_ref().is_some_and(|(s, _)| *s == stream) {
                self.lane_totals = None;
            }
            let outcomes = match snapshot {
                Some(Payload::ProjectList(list)) => {
                    self.store.load_projects(list.projects, msg.seq, &msg.epoch)
                }
                Some(Payload::ProjectSnapshot(snap)) => {
                    self.store.load_project(snap, msg.seq, &msg.epoch)
                }
                // The project is gone (or the request failed): stop following it.
                _ => {
                    if self.project.as_deref() == Some(stream.as_str()) {
                        self.project = None;
                    }
                    return Vec::new();
                }
            };
            let cursor = proto::ResumeCursor {
                stream,
                last_seq: msg.seq,
                epoch: msg.epoch.clone(),
            };
            self.subscribe(handle, vec![cursor]);
            return self.follow_up(handle, outcomes);
        }
        if let Some(Payload::UserList(list)) = &msg.payload {
            self.store.load_users(list.users.clone());
            return Vec::new();
        }
        let outcome = self.store.apply(msg);
        self.follow_up(handle, vec![outcome])
    }

    /// Starts a resync for every outcome that asks for one.
    fn follow_up(&mut self, handle: &SessionHandle, outcomes: Vec<Outcome>) -> Vec<Outcome> {
        for o in &outcomes {
            if let Outcome::Resync { stream, .. } = o {
                let wanted = stream.is_empty() || self.project.as_deref() == Some(stream.as_str());
                if wanted && !self.resyncing.contains(stream) {
                    self.resync(handle, &stream.clone());
                }
            }
        }
        outcomes
    }

    /// Stops live delivery of `stream`, then reloads it from a snapshot.
    fn resync(&mut self, handle: &SessionHandle, stream: &str) {
        self.store.invalidate(stream);
        let _ = handle.send(Payload::Unsubscribe(proto::Unsubscribe {
            project_ids: vec![stream.to_string()],
            sprint_ids: vec![],
        }));
        self.request_snapshot(handle, stream);
    }

    fn request_snapshot(&mut self, handle: &SessionHandle, stream: &str) {
        // A project the store knows nothing of yet: its first screen comes from a preview
        // (asked first, so it is answered first), the whole snapshot follows.
        if stream != WORKSPACE && self.store.items_of(stream).next().is_none() {
            let preview = Payload::GetProjectSnapshotRequest(proto::GetProjectSnapshotRequest {
                project_id: stream.to_string(),
                first_per_lane: PREVIEW_PER_LANE,
            });
            if let Ok(id) = handle.send(preview) {
                self.previews.insert(id, stream.to_string());
            }
        }
        let payload = if stream == WORKSPACE {
            Payload::ListProjectsRequest(proto::ListProjectsRequest {})
        } else {
            Payload::GetProjectSnapshotRequest(proto::GetProjectSnapshotRequest {
                project_id: stream.to_string(),
                ..Default::default()
            })
        };
        if let Ok(id) = handle.send(payload) {
            self.awaiting.insert(id, stream.to_string());
            if !self.resyncing.iter().any(|s| s == stream) {
                self.resyncing.push(stream.to_string());
            }
        }
    }

    /// Asks for the user list (e.g. when an event names a user the store does not know).
    pub fn refresh_users(&self, handle: &SessionHandle) {
        let _ = handle.send(Payload::ListUsersRequest(proto::ListUsersRequest {}));
    }
}
