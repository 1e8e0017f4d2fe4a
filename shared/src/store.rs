//! The client store: what a client knows of the board, fed only by the server's snapshots and
//! events. A plain data structure with no I/O, so it can be tested exhaustively.
//!
//! Rules (see SPEC "ordered, numbered, replayable events"):
//! - numbered events of a stream apply only as `seq == last + 1`; `seq <= last` is a duplicate
//!   and ignored; a jump is a gap, and so is an event of another epoch: both ask for a resync;
//! - on top of that every entity change is idempotent: a Created of a known id, an Updated whose
//!   version is not newer than the stored one, a Deleted of an unknown id change nothing;
//! - events of a stream that has no snapshot yet are held and applied once one is loaded
//!   (those the snapshot already includes are dropped).
use std::collections::{BTreeMap, HashMap};

use crate::proto::{self, Payload, WebSocketMessage};

/// The workspace stream (project lifecycle events).
pub const WORKSPACE: &str = "";
/// Events held for a stream without a snapshot; beyond this the stream needs a resync.
const MAX_HELD: usize = 10_000;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct ClientStore {
    /// The epoch of the history the cursors refer to.
    pub epoch: Option<String>,
    /// Last applied seq of every synced stream.
    cursors: BTreeMap<String, u64>,
    held: BTreeMap<String, Vec<WebSocketMessage>>,
    pub projects: BTreeMap<String, proto::Project>,
    pub work_items: BTreeMap<String, proto::WorkItem>,
    pub sprints: BTreeMap<String, proto::Sprint>,
    pub comments: BTreeMap<String, proto::Comment>,
    /// Links between work items, by dependency id.
    pub dependencies: BTreeMap<String, proto::Dependency>,
    /// Time entries (running and stopped), by id.
    pub time_entries: BTreeMap<String, proto::TimeEntry>,
    /// Display names by user id.
    pub users: HashMap<String, String>,
    /// Counts the changes, so a view derived from the store (the board's lanes) is computed
    /// again only when something changed.
    revision: Revision,
}

/// A change counter that is no part of what the store knows: two stores with the same
/// contents are equal whatever their histories.
#[derive(Debug, Default, Clone, Copy)]
struct Revision(u64);

impl PartialEq for Revision {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// What applying a message did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The event changed the store.
    Applied(Applied),
    /// Nothing to do: a duplicate, an already-known version, an unnumbered or unknown message.
    Ignored,
    /// Held until the stream's snapshot is loaded.
    Held,
    /// The stream cannot continue: load a snapshot of it and resume from there.
    Resync {
        stream: String,
        reason: ResyncReason,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResyncReason {
    Gap {
        expected: u64,
        got: u64,
    },
    EpochChanged,
    /// The server said so (ResyncRequired).
    Server,
    TooManyHeld,
}

/// A change the store applied, for the UI (highlight the card, the activity strip).
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub kind: EntityKind,
    pub action: Action,
    pub id: String,
    /// The work item a comment or time entry belongs to, the item a link blocks, or the item
    /// itself.
    pub work_item_id: Option<String>,
    pub user_id: String,
    pub seq: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntityKind {
    Project,
    WorkItem,
    Sprint,
    Comment,
    Dependency,
    TimeEntry,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Created,
    Updated,
    Deleted,
}

impl ClientStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Changes whenever the store's contents may have: equal revisions, same contents.
    pub fn revision(&self) -> u64 {
        self.revision.0
    }

    /// Marks the contents as changed, for whoever changes the public maps directly.
    pub fn touch(&mut self) {
        self.revision.0 += 1;
    }

    /// The cursor of a synced stream: (last seq, epoch).
    pub fn cursor(&self, stream: &str) -> Option<(u64, String)> {
        let epoch = self.epoch.clone()?;
        self.cursors.get(stream).map(|s| (*s, epoch))
    }

    /// Every synced stream with its last seq.
    pub fn cursors(&self) -> Vec<proto::ResumeCursor> {
        let epoch = self.epoch.clone().unwrap_or_default();
        self.cursors
            .iter()
            .map(|(stream, seq)| proto::ResumeCursor {
                stream: stream.clone(),
                last_seq: *seq,
                epoch: epoch.clone(),
            })
            .collect()
    }

    /// Forgets the stream's position: its next events are held until a snapshot is loaded.
    pub fn invalidate(&mut self, stream: &str) {
        self.cursors.remove(stream);
        self.held.remove(stream);
    }

    /// A new epoch invalidates every cursor: everything must be reloaded.
    fn adopt_epoch(&mut self, epoch: &str) {
        if self.epoch.as_deref() != Some(epoch) {
            if self.epoch.is_some() {
                self.cursors.clear();
                self.held.clear();
            }
            self.epoch = Some(epoch.to_string());
        }
    }

    /// Loads the project list (workspace stream) at `seq`.
    pub fn load_projects(
        &mut self,
        projects: Vec<proto::Project>,
        seq: u64,
        epoch: &str,
    ) -> Vec<Outcome> {
        self.adopt_epoch(epoch);
        self.touch();
        self.projects = projects.into_iter().map(|p| (p.id.clone(), p)).collect();
        self.cursors.insert(WORKSPACE.to_string(), seq);
        self.release_held(WORKSPACE)
    }

    /// Loads one project's snapshot at `seq`, replacing everything known of that project.
    pub fn load_project(
        &mut self,
        snapshot: proto::ProjectSnapshot,
        seq: u64,
        epoch: &str,
    ) -> Vec<Outcome> {
        self.adopt_epoch(epoch);
        let Some(project) = snapshot.project else {
            return Vec::new();
        };
        self.touch();
        let pid = project.id.clone();
        let old_items: std::collections::HashSet<String> = self
            .work_items
            .values()
            .filter(|w| w.project_id == pid)
            .map(|w| w.id.clone())
            .collect();
        if !old_items.is_empty() {
            self.comments
                .retain(|_, c| !old_items.contains(&c.work_item_id));
            self.dependencies.retain(|_, d| {
                !old_items.contains(&d.blocked_item_id) && !old_items.contains(&d.blocking_item_id)
            });
            self.time_entries
                .retain(|_, t| !old_items.contains(&t.work_item_id));
            self.work_items.retain(|_, w| w.project_id != pid);
        }
        self.sprints.retain(|_, s| s.project_id != pid);
        // The server fills the hierarchy lists of a snapshot the way the store would; only a
        // snapshot without them (an item with a parent but no ancestors) needs them computed.
        let lists_filled = snapshot
            .work_items
            .iter()
            .all(|w| w.parent_id.is_none() || !w.ancestor_ids.is_empty());
        // Built in bulk (sorted once, then merged): tens of thousands of items inserted one by
        // one into the map cost several times as much.
        let mut fresh: BTreeMap<String, proto::WorkItem> = snapshot
            .work_items
            .into_iter()
            .map(|w| (w.id.clone(), w))
            .collect();
        self.work_items.append(&mut fresh);
        self.sprints
            .extend(snapshot.sprints.into_iter().map(|s| (s.id.clone(), s)));
        self.comments
            .extend(snapshot.comments.into_iter().map(|c| (c.id.clone(), c)));
        self.dependencies
            .extend(snapshot.dependencies.into_iter().map(|d| (d.id.clone(), d)));
        self.time_entries
            .extend(snapshot.time_entries.into_iter().map(|t| (t.id.clone(), t)));
        for u in snapshot.users {
            self.users.insert(u.id, u.name);
        }
        if !lists_filled {
            self.refresh_hierarchy(&pid);
        }
        // The workspace stream owns projects; a project snapshot never rolls one back.
        upsert_versioned(&mut self.projects, pid.clone(), project, |p| p.version);
        self.cursors.insert(pid.clone(), seq);
        self.release_held(&pid)
    }

    /// Shows a preview of a project (see `GetProjectSnapshotRequest.first_per_lane`) until its
    /// snapshot loads: the preview's items, sprints and users are added (never over a newer
    /// version) and nothing else changes; the stream still waits for its snapshot, which
    /// replaces them all. A preview of a stream that is already loaded is older than what the
    /// store has and changes nothing. Returns whether it was shown.
    pub fn preview_project(&mut self, snapshot: proto::ProjectSnapshot) -> bool {
        let Some(project) = snapshot.project else {
            return false;
        };
        if self.cursors.contains_key(&project.id) {
            return false;
        }
        self.touch();
        for w in snapshot.work_items {
            upsert_versioned(&mut self.work_items, w.id.clone(), w, |x| x.version);
        }
        for s in snapshot.sprints {
            upsert_versioned(&mut self.sprints, s.id.clone(), s, |x| x.version);
        }
        for u in snapshot.users {
            self.users.insert(u.id, u.name);
        }
        upsert_versioned(&mut self.projects, project.id.clone(), project, |p| {
            p.version
        });
        true
    }

    /// Recomputes ancestor_ids / descendant_ids of a project's items from their parent links.
    fn refresh_hierarchy(&mut self, project_id: &str) {
        let lists = crate::hierarchy::compute(
            self.work_items
                .values()
                .filter(|w| w.project_id == project_id)
                .map(|w| (w.id.as_str(), w.parent_id.as_deref())),
        );
        crate::hierarchy::apply(
            self.work_items
                .values_mut()
                .filter(|w| w.project_id == project_id),
            lists,
        );
    }

    pub fn load_users(&mut self, users: Vec<proto::User>) {
        self.touch();
        for u in users {
            self.users.insert(u.id, u.name);
        }
    }

    fn release_held(&mut self, stream: &str) -> Vec<Outcome> {
        let mut held = self.held.remove(stream).unwrap_or_default();
        held.sort_by_key(|m| m.seq);
        held.into_iter()
            .map(|m| self.apply(&m))
            .filter(|o| *o != Outcome::Ignored)
            .collect()
    }

    /// Applies one server message. Non-event messages (responses, pongs) are Ignored.
    pub fn apply(&mut self, msg: &WebSocketMessage) -> Outcome {
        if let Some(Payload::ResyncRequired(r)) = &msg.payload {
            self.invalidate(&r.stream);
            return Outcome::Resync {
                stream: r.stream.clone(),
                reason: ResyncReason::Server,
            };
        }
        if msg.seq == 0 || !is_event(msg.payload.as_ref()) {
            return Outcome::Ignored;
        }
        let stream = msg.stream.as_str();
        if self.epoch.as_deref().is_some_and(|e| e != msg.epoch) {
            self.invalidate(stream);
            return Outcome::Resync {
                stream: stream.to_string(),
                reason: ResyncReason::EpochChanged,
            };
        }
        let Some(&last) = self.cursors.get(stream) else {
            let held = self.held.entry(stream.to_string()).or_default();
            if held.len() >= MAX_HELD {
                self.held.remove(stream);
                return Outcome::Resync {
                    stream: stream.to_string(),
                    reason: ResyncReason::TooManyHeld,
                };
            }
            held.push(msg.clone());
            return Outcome::Held;
        };
        if msg.seq <= last {
            return Outcome::Ignored;
        }
        if msg.seq != last + 1 {
            self.invalidate(stream);
            return Outcome::Resync {
                stream: stream.to_string(),
                reason: ResyncReason::Gap {
                    expected: last + 1,
                    got: msg.seq,
                },
            };
        }
        self.cursors.insert(stream.to_string(), msg.seq);
        let same_parent = self.lists_kept_by(msg.payload.as_ref());
        match msg
            .payload
            .as_ref()
            .and_then(|p| self.apply_payload(p, msg.seq))
        {
            Some(applied) => {
                self.touch();
                if applied.kind == EntityKind::WorkItem {
                    match (same_parent, self.work_items.get_mut(&applied.id)) {
                        // An update that kept the parent changes no one's lists: the item
                        // keeps its own (recomputing them all costs O(items) per event).
                        (Some((up, down)), Some(item)) => {
                            item.ancestor_ids = up;
                            item.descendant_ids = down;
                        }
                        // A created, moved or deleted item changes its relatives' lists too.
                        _ => self.refresh_hierarchy(stream),
                    }
                }
                Outcome::Applied(applied)
            }
            None => Outcome::Ignored,
        }
    }

    /// The hierarchy lists a work item update leaves as they are: those of the stored item,
    /// when the update keeps its parent. None for anything else.
    fn lists_kept_by(&self, payload: Option<&Payload>) -> Option<(Vec<String>, Vec<String>)> {
        let Some(Payload::WorkItemUpdated(e)) = payload else {
            return None;
        };
        let new = e.work_item.as_ref()?;
        let old = self.work_items.get(&new.id)?;
        (old.parent_id == new.parent_id && old.project_id == new.project_id)
            .then(|| (old.ancestor_ids.clone(), old.descendant_ids.clone()))
    }

    /// Applies an entity change idempotently. Returns None when it changed nothing.
    fn apply_payload(&mut self, payload: &Payload, seq: u64) -> Option<Applied> {
        let applied = |kind, action, id: &str, work_item_id: Option<&str>, user: &str| Applied {
            kind,
            action,
            id: id.to_string(),
            work_item_id: work_item_id.map(str::to_string),
            user_id: user.to_string(),
            seq,
        };
        // Created and Updated events apply alike (an idempotent upsert); only the label differs.
        let action = match payload {
            Payload::ProjectCreated(_)
            | Payload::WorkItemCreated(_)
            | Payload::SprintCreated(_)
            | Payload::TimerStarted(_)
            | Payload::TimeEntryCreated(_) => Action::Created,
            _ => Action::Updated,
        };
        match payload {
            Payload::ProjectCreated(proto::ProjectCreated { project, user_id })
            | Payload::ProjectUpdated(proto::ProjectUpdated {
                project, user_id, ..
            }) => {
                let p = project.as_ref()?;
                upsert_versioned(&mut self.projects, p.id.clone(), p.clone(), |x| x.version)
                    .then(|| applied(EntityKind::Project, action, &p.id, None, user_id))
            }
            Payload::ProjectDeleted(e) => {
                self.projects.remove(&e.project_id)?;
                Some(applied(
                    EntityKind::Project,
                    Action::Deleted,
                    &e.project_id,
                    None,
                    &e.user_id,
                ))
            }
            Payload::WorkItemCreated(proto::WorkItemCreated {
                work_item,
                user_id,
                restored,
            }) => {
                let w = work_item.as_ref()?;
                let fresh =
                    upsert_versioned(&mut self.work_items, w.id.clone(), w.clone(), |x| x.version);
                if let Some(back) = restored.as_deref().filter(|_| fresh) {
                    // A deleted item is back: what its delete took away comes back with it.
                    for c in &back.comments {
                        self.comments.insert(c.id.clone(), c.clone());
                    }
                    for d in &back.dependencies {
                        self.dependencies.insert(d.id.clone(), d.clone());
                    }
                    for t in &back.time_entries {
                        self.time_entries.insert(t.id.clone(), t.clone());
                    }
                }
                fresh.then(|| applied(EntityKind::WorkItem, action, &w.id, Some(&w.id), user_id))
            }
            Payload::WorkItemUpdated(proto::WorkItemUpdated {
                work_item, user_id, ..
            }) => {
                let w = work_item.as_ref()?;
                upsert_versioned(&mut self.work_items, w.id.clone(), w.clone(), |x| x.version)
                    .then(|| applied(EntityKind::WorkItem, action, &w.id, Some(&w.id), user_id))
            }
            Payload::WorkItemDeleted(e) => {
                self.work_items.remove(&e.work_item_id)?;
                // The server hides the comments, links and time entries of a deleted item (its
                // snapshots leave them out); so does the store.
                let gone = e.work_item_id.as_str();
                self.comments.retain(|_, c| c.work_item_id != gone);
                self.dependencies
                    .retain(|_, d| d.blocked_item_id != gone && d.blocking_item_id != gone);
                self.time_entries.retain(|_, t| t.work_item_id != gone);
                Some(applied(
                    EntityKind::WorkItem,
                    Action::Deleted,
                    &e.work_item_id,
                    Some(&e.work_item_id),
                    &e.user_id,
                ))
            }
            Payload::SprintCreated(proto::SprintCreated { sprint, user_id })
            | Payload::SprintUpdated(proto::SprintUpdated {
                sprint, user_id, ..
            }) => {
                let s = sprint.as_ref()?;
                upsert_versioned(&mut self.sprints, s.id.clone(), s.clone(), |x| x.version)
                    .then(|| applied(EntityKind::Sprint, action, &s.id, None, user_id))
            }
            Payload::SprintDeleted(e) => {
                self.sprints.remove(&e.sprint_id)?;
                Some(applied(
                    EntityKind::Sprint,
                    Action::Deleted,
                    &e.sprint_id,
                    None,
                    &e.user_id,
                ))
            }
            Payload::CommentCreated(e) => {
                let c = e.comment.as_ref()?;
                if self.comments.contains_key(&c.id) {
                    return None;
                }
                self.comments.insert(c.id.clone(), c.clone());
                Some(applied(
                    EntityKind::Comment,
                    Action::Created,
                    &c.id,
                    Some(&c.work_item_id),
                    &e.user_id,
                ))
            }
            Payload::CommentUpdated(e) => {
                let c = e.comment.as_ref()?;
                // Comments carry no version; updated_at orders edits.
                if self
                    .comments
                    .get(&c.id)
                    .is_some_and(|old| old.updated_at > c.updated_at || old == c)
                {
                    return None;
                }
                self.comments.insert(c.id.clone(), c.clone());
                Some(applied(
                    EntityKind::Comment,
                    Action::Updated,
                    &c.id,
                    Some(&c.work_item_id),
                    &e.user_id,
                ))
            }
            Payload::CommentDeleted(e) => {
                let c = self.comments.remove(&e.comment_id)?;
                Some(applied(
                    EntityKind::Comment,
                    Action::Deleted,
                    &e.comment_id,
                    Some(&c.work_item_id),
                    &e.user_id,
                ))
            }
            Payload::DependencyCreated(e) => {
                let d = e.dependency.as_ref()?;
                if self.dependencies.contains_key(&d.id) {
                    return None;
                }
                self.dependencies.insert(d.id.clone(), d.clone());
                Some(applied(
                    EntityKind::Dependency,
                    Action::Created,
                    &d.id,
                    Some(&d.blocked_item_id),
                    &e.user_id,
                ))
            }
            Payload::DependencyDeleted(e) => {
                self.dependencies.remove(&e.dependency_id)?;
                Some(applied(
                    EntityKind::Dependency,
                    Action::Deleted,
                    &e.dependency_id,
                    Some(&e.blocked_item_id),
                    &e.user_id,
                ))
            }
            Payload::TimerStarted(e) => {
                // The timer it stopped first, so a running timer is never shown twice.
                let stopped = e
                    .stopped_entry
                    .as_ref()
                    .is_some_and(|t| upsert_time_entry(&mut self.time_entries, t));
                let t = e.time_entry.as_ref()?;
                let started = upsert_time_entry(&mut self.time_entries, t);
                (started || stopped).then(|| {
                    applied(
                        EntityKind::TimeEntry,
                        Action::Created,
                        &t.id,
                        Some(&t.work_item_id),
                        &e.user_id,
                    )
                })
            }
            Payload::TimerStopped(proto::TimerStopped {
                time_entry,
                user_id,
            })
            | Payload::TimeEntryCreated(proto::TimeEntryCreated {
                time_entry,
                user_id,
            })
            | Payload::TimeEntryUpdated(proto::TimeEntryUpdated {
                time_entry,
                user_id,
            }) => {
                let t = time_entry.as_ref()?;
                upsert_time_entry(&mut self.time_entries, t).then(|| {
                    applied(
                        EntityKind::TimeEntry,
                        action,
                        &t.id,
                        Some(&t.work_item_id),
                        user_id,
                    )
                })
            }
            Payload::TimeEntryDeleted(e) => {
                self.time_entries.remove(&e.time_entry_id)?;
                Some(applied(
                    EntityKind::TimeEntry,
                    Action::Deleted,
                    &e.time_entry_id,
                    Some(&e.work_item_id),
                    &e.user_id,
                ))
            }
            _ => None,
        }
    }

    /// Work items of a project.
    pub fn items_of<'a>(
        &'a self,
        project_id: &'a str,
    ) -> impl Iterator<Item = &'a proto::WorkItem> + 'a {
        self.work_items
            .values()
            .filter(move |w| w.project_id == project_id)
    }

    /// Comments of a work item, oldest first.
    pub fn comments_of(&self, work_item_id: &str) -> Vec<&proto::Comment> {
        let mut v: Vec<&proto::Comment> = self
            .comments
            .values()
            .filter(|c| c.work_item_id == work_item_id)
            .collect();
        v.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        v
    }

    /// The links of a work item: (the live links that block it, the links by which it blocks
    /// or relates to others), each ordered by creation.
    pub fn dependencies_of(
        &self,
        work_item_id: &str,
    ) -> (Vec<&proto::Dependency>, Vec<&proto::Dependency>) {
        let mut incoming: Vec<&proto::Dependency> = self
            .dependencies
            .values()
            .filter(|d| d.blocked_item_id == work_item_id)
            .collect();
        let mut outgoing: Vec<&proto::Dependency> = self
            .dependencies
            .values()
            .filter(|d| d.blocking_item_id == work_item_id)
            .collect();
        incoming.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        outgoing.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        (incoming, outgoing)
    }

    /// The items that keep `work_item_id` blocked: each active `blocks` link whose blocking
    /// item is known and not done.
    pub fn blockers_of(&self, work_item_id: &str) -> Vec<&proto::WorkItem> {
        let mut v: Vec<&proto::WorkItem> = self
            .dependencies
            .values()
            .filter(|d| {
                d.blocked_item_id == work_item_id
                    && d.dependency_type == proto::DependencyType::Blocks as i32
            })
            .filter_map(|d| self.work_items.get(&d.blocking_item_id))
            .filter(|w| w.status != "done")
            .collect();
        v.sort_by_key(|w| (w.item_number, w.id.clone()));
        v
    }

    /// The user's running timer, if any (the latest started, should there be several).
    pub fn running_timer(&self, user_id: &str) -> Option<&proto::TimeEntry> {
        self.time_entries
            .values()
            .filter(|t| t.user_id == user_id && t.ended_at.is_none())
            .max_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)))
    }

    /// Time entries of a work item, latest start first.
    pub fn time_entries_of(&self, work_item_id: &str) -> Vec<&proto::TimeEntry> {
        let mut v: Vec<&proto::TimeEntry> = self
            .time_entries
            .values()
            .filter(|t| t.work_item_id == work_item_id)
            .collect();
        v.sort_by(|a, b| (b.started_at, &b.id).cmp(&(a.started_at, &a.id)));
        v
    }

    pub fn user_name(&self, id: &str) -> String {
        self.users
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.chars().take(8).collect())
    }
}

/// Is this payload a numbered entity event?
pub fn is_event(payload: Option<&Payload>) -> bool {
    matches!(
        payload,
        Some(
            Payload::ProjectCreated(_)
                | Payload::ProjectUpdated(_)
                | Payload::ProjectDeleted(_)
                | Payload::WorkItemCreated(_)
                | Payload::WorkItemUpdated(_)
                | Payload::WorkItemDeleted(_)
                | Payload::SprintCreated(_)
                | Payload::SprintUpdated(_)
                | Payload::SprintDeleted(_)
                | Payload::CommentCreated(_)
                | Payload::CommentUpdated(_)
                | Payload::CommentDeleted(_)
                | Payload::DependencyCreated(_)
                | Payload::DependencyDeleted(_)
                | Payload::TimerStarted(_)
                | Payload::TimerStopped(_)
                | Payload::TimeEntryCreated(_)
                | Payload::TimeEntryUpdated(_)
                | Payload::TimeEntryDeleted(_)
                // Takes the place of an event this client may not see: it only moves the
                // cursor on (apply_payload changes nothing for it).
                | Payload::EventWithheld(_)
        )
    )
}

/// Time entries carry no version; `updated_at` orders their edits (as for comments). Returns
/// whether the store changed.
fn upsert_time_entry(
    map: &mut BTreeMap<String, proto::TimeEntry>,
    entry: &proto::TimeEntry,
) -> bool {
    if map
        .get(&entry.id)
        .is_some_and(|old| old.updated_at > entry.updated_at || old == entry)
    {
        return false;
    }
    map.insert(entry.id.clone(), entry.clone());
    true
}

/// Inserts `value` unless the stored one has the same or a newer version.
fn upsert_versioned<T: PartialEq>(
    map: &mut BTreeMap<String, T>,
    id: String,
    value: T,
    version: impl Fn(&T) -> i32,
) -> bool {
    match map.get(&id) {
        Some(old) if version(old) >= version(&value) => false,
        _ => {
            map.insert(id, value);
            true
        }
    }
}
