//! The offline write queue and the conflict inbox: edits made while the link is down are kept
//! (on disk, so quitting or a crash keeps them) and replayed, in order, once the replica has
//! caught up with everyone else's changes.
//!
//! Each queued write remembers the card as the user saw it when making it (`before`) and the
//! version that was (`base_version`). On replay a write whose fields nobody else changed since
//! is re-based on the current version (it commutes with what happened meanwhile); otherwise it
//! goes on its base version, so the server refuses it when another change of the same field
//! got there first. A write the server refuses (version conflict, item deleted, permission
//! lost, no longer valid) goes to the inbox, where it stays until the user decides.
//!
//! Every write is sent with its own stable key as `message_id` and `idempotent` set: the server
//! remembers the answer under (user, key), so a write whose answer was lost with the connection
//! (or with the client, before a restart) is answered again, never applied twice.
//!
//! The queue is plain state plus its file: the owner feeds it the session's messages
//! ([`OfflineQueue::on_message`]) and calls [`OfflineQueue::pump`] after each event.
use std::collections::{HashSet, VecDeque};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::replica::Replica;
use crate::sdk::SessionHandle;
use pm_shared::domain::ItemType;
use pm_shared::proto::{self, Payload, WebSocketMessage};
use pm_shared::store::ClientStore;

/// The file format's version (the `format` field).
const FORMAT: u32 = 1;
/// A write whose fields nobody else touched but that still met a version conflict (someone
/// keeps changing other fields of the card) is re-based this often before it is put in the
/// inbox.
const REBASES: u8 = 5;
/// How long the queue waits after the server could not take a write now.
pub const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(5);

/// One write made while offline, waiting to be sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuedWrite {
    /// The idempotency key: the request's `message_id` on every attempt.
    pub key: String,
    pub item_id: String,
    /// For people: "Move", "Title", "Priority"…
    pub what: String,
    /// The fields it sets.
    #[serde(with = "b64")]
    pub req: proto::UpdateWorkItemRequest,
    /// The card as the user saw it when making the write (with their earlier queued writes).
    #[serde(with = "b64")]
    pub before: proto::WorkItem,
    /// When it was made (Unix seconds).
    pub made_at: i64,
    /// Re-based attempts that met a conflict anyway.
    #[serde(default)]
    pub rebases: u8,
}

impl QueuedWrite {
    /// The version the write was made on.
    pub fn base_version(&self) -> i32 {
        self.before.version
    }
}

/// A write the server refused: the user's value and the card as it is now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conflict {
    pub write: QueuedWrite,
    /// The card now; None when it is gone (deleted, or no longer visible).
    #[serde(with = "b64_opt")]
    pub theirs: Option<proto::WorkItem>,
    /// The server's error code and message.
    pub code: String,
    pub message: String,
    /// When it was refused (Unix seconds).
    pub at: i64,
}

/// One field of a conflict: its name, my value, theirs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldConflict {
    pub field: &'static str,
    pub mine: String,
    pub theirs: String,
}

impl Conflict {
    /// Who made their version, and when (Unix seconds); None when the card is gone.
    pub fn theirs_by(&self) -> Option<(&str, i64)> {
        self.theirs
            .as_ref()
            .map(|w| (w.updated_by.as_str(), w.updated_at))
    }

    /// Every field my write sets, with my value and theirs (the card's value now), those that
    /// differ first.
    pub fn fields(&self) -> Vec<FieldConflict> {
        let mut mine = self.write.before.clone();
        apply_fields(&mut mine, &self.write.req);
        let theirs = self.theirs.as_ref();
        let mut out: Vec<FieldConflict> = field_names(&self.write.req)
            .into_iter()
            .map(|field| FieldConflict {
                field,
                mine: field_value(&mine, field),
                theirs: theirs.map_or_else(|| "(deleted)".into(), |t| field_value(t, field)),
            })
            .collect();
        out.sort_by_key(|f| f.mine == f.theirs);
        out
    }
}

/// What an answer did to the queue.
#[derive(Debug, Clone, PartialEq)]
pub enum Replayed {
    /// The write is in the database (now, or already before: its answer had been lost).
    Applied(Box<QueuedWrite>),
    /// Refused: moved to the inbox (the last entry).
    Refused,
    /// A version conflict on fields nobody else changed: sent again once the replica has the
    /// card's newer version.
    Rebasing,
    /// The server could not do it now (overloaded, disk full…): it stays queued and is sent
    /// again after [`RETRY_AFTER`] (or the next reconnect).
    Deferred { code: String, message: String },
}

/// Why the saved queue could not be read: the file was put aside and the queue starts empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAside {
    pub path: PathBuf,
    pub kept_as: Option<PathBuf>,
    pub why: String,
}

impl std::fmt::Display for SetAside {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the offline queue {} could not be read ({})",
            self.path.display(),
            self.why
        )?;
        match &self.kept_as {
            Some(aside) => write!(f, "; kept as {}", aside.display()),
            None => f.write_str("; it could not be moved aside"),
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    format: u32,
    pending: VecDeque<QueuedWrite>,
    inbox: Vec<Conflict>,
}

/// The write in flight: its key and the version it was sent on.
#[derive(Debug, Clone)]
struct InFlight {
    key: String,
    expected_version: i32,
}

/// The queue of one user on one server, and its inbox.
#[derive(Debug, Default)]
pub struct OfflineQueue {
    /// Where it is kept; None: in memory only (tests).
    path: Option<PathBuf>,
    pending: VecDeque<QueuedWrite>,
    inbox: Vec<Conflict>,
    in_flight: Option<InFlight>,
    /// The head waits until the replica's card is newer than this version (a re-base).
    waits_for: Option<i32>,
    /// Keys this queue is done with (applied, or let go from the inbox): the file's copies of
    /// them are not kept when it is saved. Entries in the file that are neither these nor mine
    /// belong to another client of the same user on the same server, and are kept.
    forgotten: HashSet<String>,
    /// A transient refusal (server busy, disk full…): nothing is sent for [`RETRY_AFTER`] or
    /// until the next connection.
    paused: Option<std::time::Instant>,
}

/// The file of `user_id`'s queue for `server` under `dir`: one per server and user.
pub fn queue_file(dir: &Path, server: &str, user_id: &str) -> PathBuf {
    const PM_QUEUES: uuid::Uuid = uuid::Uuid::from_u128(0x3d5e_81a2_c4f0_4b7a_9e21_6a0c_55d7_e913);
    let id = uuid::Uuid::new_v5(&PM_QUEUES, format!("{server}\n{user_id}").as_bytes());
    dir.join(format!("offline-{id}.json"))
}

/// Where pm keeps its client data: `$XDG_DATA_HOME/pm`, else `~/.local/share/pm`.
pub fn data_dir(xdg_data_home: Option<&str>, home: Option<&str>) -> Option<PathBuf> {
    match (xdg_data_home.filter(|d| !d.is_empty()), home) {
        (Some(xdg), _) => Some(PathBuf::from(xdg).join("pm")),
        (None, Some(home)) if !home.is_empty() => Some(PathBuf::from(home).join(".local/share/pm")),
        _ => None,
    }
}

impl OfflineQueue {
    /// A queue kept in memory only.
    pub fn in_memory() -> Self {
        OfflineQueue::default()
    }

    /// Opens the queue kept at `path` (none yet: empty). A file that cannot be read is moved
    /// aside (`<name>.corrupt-<unix time>`) and reported; the queue then starts empty, so a
    /// damaged file never stops the client.
    pub fn open(path: &Path) -> (Self, Option<SetAside>) {
        let mut queue = OfflineQueue {
            path: Some(path.to_path_buf()),
            ..Default::default()
        };
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (queue, None),
            Err(e) => return (queue, Some(set_aside(path, e.to_string()))),
        };
        let saved = serde_json::from_slice::<Saved>(&bytes)
            .map_err(|e| e.to_string())
            .and_then(|s| match s.format {
                FORMAT => Ok(s),
                other => Err(format!("unknown format {other}")),
            });
        match saved {
            Ok(saved) => {
                queue.pending = saved.pending;
                queue.inbox = saved.inbox;
                (queue, None)
            }
            Err(why) => (queue, Some(set_aside(path, why))),
        }
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The writes waiting to be sent, oldest first.
    pub fn pending(&self) -> impl Iterator<Item = &QueuedWrite> {
        self.pending.iter()
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// True when a write of mine to the card waits to be sent.
    pub fn is_pending(&self, item_id: &str) -> bool {
        self.pending.iter().any(|w| w.item_id == item_id)
    }

    pub fn inbox(&self) -> &[Conflict] {
        &self.inbox
    }

    /// True while a replayed write waits for its answer.
    pub fn is_sending(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Queues a write to the card `shown` (as the user sees it: with earlier queued writes
    /// applied), and saves the queue. Returns its key.
    pub fn push(
        &mut self,
        shown: &proto::WorkItem,
        what: &str,
        mut req: proto::UpdateWorkItemRequest,
    ) -> std::io::Result<String> {
        let key = uuid::Uuid::new_v4().to_string();
        req.work_item_id = shown.id.clone();
        self.pending.push_back(QueuedWrite {
            key: key.clone(),
            item_id: shown.id.clone(),
            what: what.to_string(),
            req,
            before: shown.clone(),
            made_at: pm_shared::now_secs(),
            rebases: 0,
        });
        self.save()?;
        Ok(key)
    }

    /// The card as it will be once my queued writes to it land (None: none are queued).
    pub fn intended(&self, stored: &proto::WorkItem) -> Option<proto::WorkItem> {
        let mut item = stored.clone();
        let mut any = false;
        for w in self.pending.iter().filter(|w| w.item_id == stored.id) {
            apply_fields(&mut item, &w.req);
            any = true;
        }
        any.then_some(item)
    }

    /// The connection is gone: what was in flight is sent again (with the same key) later.
    pub fn on_disconnect(&mut self) {
        self.in_flight = None;
        self.waits_for = None;
        self.paused = None;
    }

    /// Sends the next queued write when the replica has caught up and nothing is in flight.
    /// Returns the key sent, if any.
    pub fn pump(&mut self, handle: &SessionHandle, replica: &Replica) -> Option<String> {
        if !replica.is_caught_up() {
            return None;
        }
        let (key, req) = self.next(&replica.store)?;
        match handle.send_with_id(&key, Payload::UpdateWorkItemRequest(req)) {
            Ok(()) => Some(key),
            Err(_) => {
                self.in_flight = None;
                None
            }
        }
    }

    /// The next request to send, on the store as it is now, marked in flight; for owners that
    /// send it themselves (tests). Call only once the replica has caught up.
    pub fn next(&mut self, store: &ClientStore) -> Option<(String, proto::UpdateWorkItemRequest)> {
        let resting = self.paused.is_some_and(|at| at.elapsed() < RETRY_AFTER);
        if self.in_flight.is_some() || resting {
            return None;
        }
        self.paused = None;
        let head = self.pending.front()?;
        let current = store.work_items.get(&head.item_id);
        if let (Some(wait), Some(now)) = (self.waits_for, current) {
            if now.version <= wait {
                return None;
            }
        }
        self.waits_for = None;
        // Nobody changed the fields it sets since it was made: it goes on the current version.
        let expected_version = match current {
            Some(now) if same_fields(&head.before, now, &head.req) => now.version,
            _ => head.base_version(),
        };
        let mut req = head.req.clone();
        req.work_item_id = head.item_id.clone();
        req.expected_version = expected_version;
        req.idempotent = true;
        self.in_flight = Some(InFlight {
            key: head.key.clone(),
            expected_version,
        });
        Some((head.key.clone(), req))
    }

    /// A message of the session: when it answers the write in flight, what that did (the queue
    /// is saved). Other messages: None.
    pub fn on_message(&mut self, msg: &WebSocketMessage, store: &ClientStore) -> Option<Replayed> {
        let sent = self.in_flight.take_if(|f| f.key == msg.message_id)?;
        let head = self.pending.front()?;
        if head.key != sent.key {
            return None;
        }
        let error = match &msg.payload {
            Some(Payload::Error(e)) => e,
            // WorkItemUpdated, or whatever else the server answers a success with.
            _ => {
                let done = self.pending.pop_front()?;
                self.forgotten.insert(done.key.clone());
                let _ = self.save();
                return Some(Replayed::Applied(Box::new(done)));
            }
        };
        let current = store.work_items.get(&head.item_id);
        let refused = match error.code.as_str() {
            // The card already says what my write says (someone made the same change, or an
            // earlier attempt of mine landed): nothing left to do.
            "CONFLICT" if current.is_some_and(|now| already_there(now, &head.req)) => {
                let done = self.pending.pop_front()?;
                self.forgotten.insert(done.key.clone());
                let _ = self.save();
                return Some(Replayed::Applied(Box::new(done)));
            }
            "CONFLICT" => {
                let commutes = current.is_some_and(|now| same_fields(&head.before, now, &head.req));
                if commutes && head.rebases < REBASES {
                    // The card changed after the replica last heard of it: wait for that
                    // change, then look again.
                    if let Some(head) = self.pending.front_mut() {
                        head.rebases += 1;
                    }
                    self.waits_for = Some(sent.expected_version);
                    let _ = self.save();
                    return Some(Replayed::Rebasing);
                }
                true
            }
            "NOT_FOUND" | "UNAUTHORIZED" | "VALIDATION_ERROR" | "INVALID_MESSAGE"
            | "DELETE_BLOCKED" => true,
            _ => false,
        };
        if !refused {
            self.paused = Some(std::time::Instant::now());
            return Some(Replayed::Deferred {
                code: error.code.clone(),
                message: error.message.clone(),
            });
        }
        let theirs = current.cloned();
        let write = self.pending.pop_front()?;
        self.inbox.push(Conflict {
            write,
            theirs,
            code: error.code.clone(),
            message: error.message.clone(),
            at: pm_shared::now_secs(),
        });
        let _ = self.save();
        Some(Replayed::Refused)
    }

    /// Keep mine: the conflict's write is queued again on the card as it is now (with a new
    /// key), so it overrides theirs. Refused (Err, the conflict stays) when the card is gone.
    pub fn keep_mine(&mut self, index: usize, store: &ClientStore) -> Result<String, String> {
        let conflict = self.inbox.get(index).ok_or("no such conflict")?;
        let Some(now) = store.work_items.get(&conflict.write.item_id) else {
            return Err("the card is gone: keep theirs, or create it again".into());
        };
        let what = conflict.write.what.clone();
        let req = conflict.write.req.clone();
        let shown = self.intended(now).unwrap_or_else(|| now.clone());
        let old = self.inbox.remove(index);
        self.forgotten.insert(old.write.key);
        self.push(&shown, &what, req).map_err(|e| e.to_string())
    }

    /// Keep theirs (or the user's edit replaces it): the conflict leaves the inbox.
    pub fn dismiss(&mut self, index: usize) -> Option<Conflict> {
        (index < self.inbox.len()).then(|| {
            let gone = self.inbox.remove(index);
            self.forgotten.insert(gone.write.key.clone());
            let _ = self.save();
            gone
        })
    }

    /// Writes the queue to its file atomically (a temporary file, synced, renamed over it),
    /// keeping the entries another client of the same user put there meanwhile (two boards
    /// of one user on one server share the file; replaying an entry twice is harmless, as
    /// the server answers a key's retry with its first answer).
    pub fn save(&self) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut saved = Saved {
            format: FORMAT,
            pending: self.pending.clone(),
            inbox: self.inbox.clone(),
        };
        let mine: HashSet<&str> = self
            .pending
            .iter()
            .map(|w| w.key.as_str())
            .chain(self.inbox.iter().map(|c| c.write.key.as_str()))
            .collect();
        let theirs = |key: &str| !mine.contains(key) && !self.forgotten.contains(key);
        if let Some(on_disk) = std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Saved>(&b).ok())
            .filter(|s| s.format == FORMAT)
        {
            saved
                .pending
                .extend(on_disk.pending.into_iter().filter(|w| theirs(&w.key)));
            saved
                .inbox
                .extend(on_disk.inbox.into_iter().filter(|c| theirs(&c.write.key)));
        }
        if saved.pending.is_empty() && saved.inbox.is_empty() {
            return match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let bytes = serde_json::to_vec_pretty(&saved).map_err(std::io::Error::other)?;
        let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)
    }
}

/// Moves an unreadable queue file aside.
fn set_aside(path: &Path, why: String) -> SetAside {
    let stamp = pm_shared::now_secs();
    // Never over an earlier one set aside in the same second.
    let aside = (0..)
        .map(|n| {
            let mut name = path.file_name().unwrap_or_default().to_os_string();
            match n {
                0 => name.push(format!(".corrupt-{stamp}")),
                n => name.push(format!(".corrupt-{stamp}-{n}")),
            }
            path.with_file_name(name)
        })
        .find(|p| !p.exists())
        .unwrap_or_else(|| path.with_extension("corrupt"));
    let kept_as = std::fs::rename(path, &aside).ok().map(|()| aside);
    SetAside {
        path: path.to_path_buf(),
        kept_as,
        why,
    }
}

/// True when `a` and `b` agree on every field `req` sets.
pub fn same_fields(
    a: &proto::WorkItem,
    b: &proto::WorkItem,
    req: &proto::UpdateWorkItemRequest,
) -> bool {
    field_names(req)
        .into_iter()
        .all(|f| field_value(a, f) == field_value(b, f))
}

/// True when `item` already has every value `req` sets.
pub fn already_there(item: &proto::WorkItem, req: &proto::UpdateWorkItemRequest) -> bool {
    let mut after = item.clone();
    apply_fields(&mut after, req);
    same_fields(item, &after, req)
}

/// The fields a request sets, by their wire names.
pub fn field_names(req: &proto::UpdateWorkItemRequest) -> Vec<&'static str> {
    let sets = [
        ("title", req.title.is_some()),
        ("description", req.description.is_some()),
        ("status", req.status.is_some()),
        ("assignee_id", req.assignee_id.is_some()),
        ("sprint_id", req.sprint_id.is_some()),
        ("position", req.position.is_some()),
        ("priority", req.priority.is_some()),
        (
            "story_points",
            req.story_points.is_some() || req.clear_story_points,
        ),
        ("item_type", req.item_type.is_some()),
        ("parent_id", req.update_parent),
    ];
    sets.into_iter()
        .filter(|(_, set)| *set)
        .map(|(f, _)| f)
        .collect()
}

/// A field of a card as text ("" when unset).
pub fn field_value(item: &proto::WorkItem, field: &str) -> String {
    match field {
        "title" => item.title.clone(),
        "description" => item.description.clone().unwrap_or_default(),
        "status" => item.status.clone(),
        "assignee_id" => item.assignee_id.clone().unwrap_or_default(),
        "sprint_id" => item.sprint_id.clone().unwrap_or_default(),
        "position" => item.position.to_string(),
        "priority" => item.priority.clone(),
        "story_points" => item.story_points.map(|p| p.to_string()).unwrap_or_default(),
        "item_type" => ItemType::from_proto(item.item_type)
            .map(|t| t.to_string())
            .unwrap_or_default(),
        "parent_id" => item.parent_id.clone().unwrap_or_default(),
        _ => String::new(),
    }
}

/// Copies the fields a request sets onto `item`.
pub fn apply_fields(item: &mut proto::WorkItem, req: &proto::UpdateWorkItemRequest) {
    if let Some(v) = &req.title {
        item.title = v.clone();
    }
    if let Some(v) = &req.description {
        item.description = Some(v.clone());
    }
    if let Some(v) = &req.status {
        item.status = v.clone();
    }
    if let Some(v) = &req.assignee_id {
        item.assignee_id = (!v.is_empty()).then(|| v.clone());
    }
    if let Some(v) = &req.sprint_id {
        item.sprint_id = (!v.is_empty()).then(|| v.clone());
    }
    if let Some(v) = req.position {
        item.position = v;
    }
    if let Some(v) = &req.priority {
        item.priority = v.clone();
    }
    if let Some(v) = req.story_points {
        item.story_points = Some(v);
    }
    if req.clear_story_points {
        item.story_points = None;
    }
    if let Some(t) = req.item_type.as_deref().and_then(ItemType::parse) {
        item.item_type = t.to_proto() as i32;
    }
    if req.update_parent {
        item.parent_id = req.parent_id.clone().filter(|p| !p.is_empty());
    }
}

/// A protobuf message in the JSON file: its bytes, base64.
mod b64 {
    use super::*;

    pub fn serialize<M: prost::Message, S: serde::Serializer>(
        m: &M,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(m.encode_to_vec()))
    }

    pub fn deserialize<'de, M: prost::Message + Default, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<M, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)?;
        M::decode(bytes.as_slice()).map_err(serde::de::Error::custom)
    }
}

mod b64_opt {
    use super::*;

    pub fn serialize<M: prost::Message, S: serde::Serializer>(
        m: &Option<M>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match m {
            Some(m) => b64::serialize(m, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, M: prost::Message + Default, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<M>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|text| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(serde::de::Error::custom)?;
            M::decode(bytes.as_slice()).map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(version: i32) -> proto::WorkItem {
        proto::WorkItem {
            id: "w1".into(),
            title: "old".into(),
            status: "todo".into(),
            priority: "medium".into(),
            version,
            ..Default::default()
        }
    }

    fn title(t: &str) -> proto::UpdateWorkItemRequest {
        proto::UpdateWorkItemRequest {
            title: Some(t.into()),
            ..Default::default()
        }
    }

    fn answer(key: &str, payload: Payload) -> WebSocketMessage {
        WebSocketMessage::with_payload(key.to_string(), payload)
    }

    fn error(key: &str, code: &str) -> WebSocketMessage {
        answer(
            key,
            Payload::Error(proto::Error {
                code: code.into(),
                message: format!("{code} happened"),
                field: None,
            }),
        )
    }

    fn store_with(item: proto::WorkItem) -> ClientStore {
        let mut store = ClientStore::default();
        store.work_items.insert(item.id.clone(), item);
        store
    }

    /// A write whose field nobody else changed goes on the current version; one whose field
    /// changed goes on its own base version (so the server refuses it), and is kept with both
    /// values in the inbox.
    #[test]
    fn commuting_writes_are_rebased_and_conflicts_go_to_the_inbox() {
        let mut q = OfflineQueue::in_memory();
        let key = q.push(&card(3), "Title", title("mine")).unwrap();
        // Someone moved the card meanwhile.
        let mut moved = card(4);
        moved.status = "done".into();
        let (sent, req) = q.next(&store_with(moved.clone())).unwrap();
        assert_eq!(sent, key);
        assert_eq!((req.expected_version, req.idempotent), (4, true));
        assert!(
            q.next(&store_with(moved.clone())).is_none(),
            "one in flight"
        );
        q.on_disconnect();
        // Someone changed the title too: sent on version 3, refused.
        let mut retitled = moved.clone();
        retitled.title = "theirs".into();
        retitled.updated_by = "bob".into();
        retitled.version = 5;
        let store = store_with(retitled);
        let (again, req) = q.next(&store).unwrap();
        assert_eq!(again, key, "the same idempotency key on every attempt");
        assert_eq!(req.expected_version, 3);
        assert_eq!(
            q.on_message(&error(&key, "CONFLICT"), &store),
            Some(Replayed::Refused)
        );
        assert_eq!(q.pending_len(), 0);
        let conflict = &q.inbox()[0];
        assert_eq!(conflict.theirs_by(), Some(("bob", 0)));
        assert_eq!(
            conflict.fields(),
            vec![FieldConflict {
                field: "title",
                mine: "mine".into(),
                theirs: "theirs".into()
            }]
        );
        // Keep mine: queued again on version 5 with a new key.
        let renewed = q.keep_mine(0, &store).unwrap();
        assert_ne!(renewed, key);
        assert!(q.inbox().is_empty());
        let (_, req) = q.next(&store).unwrap();
        assert_eq!(req.expected_version, 5);
    }

    /// A conflict although the write's fields are unchanged in the replica (it has not heard of
    /// the newer version yet): the write waits for it, then goes on it.
    #[test]
    fn a_conflict_on_untouched_fields_waits_for_the_newer_version() {
        let mut q = OfflineQueue::in_memory();
        let key = q.push(&card(3), "Title", title("mine")).unwrap();
        let store = store_with(card(3));
        q.next(&store).unwrap();
        assert_eq!(
            q.on_message(&error(&key, "CONFLICT"), &store),
            Some(Replayed::Rebasing)
        );
        assert!(q.next(&store).is_none(), "waits for version 4");
        let (_, req) = q.next(&store_with(card(4))).unwrap();
        assert_eq!(req.expected_version, 4);
        let done = answer(&key, Payload::WorkItemUpdated(Default::default()));
        assert!(matches!(
            q.on_message(&done, &store),
            Some(Replayed::Applied(_))
        ));
        assert_eq!(q.pending_len(), 0);
    }

    /// A conflict with a card that already has my values (the same change made by someone
    /// else) is not a conflict: nothing is left to do.
    #[test]
    fn the_same_change_made_by_someone_else_is_no_conflict() {
        let mut q = OfflineQueue::in_memory();
        let key = q.push(&card(3), "Title", title("same")).unwrap();
        let mut theirs = card(4);
        theirs.title = "same".into();
        let store = store_with(theirs);
        assert_eq!(q.next(&store).unwrap().1.expected_version, 3);
        assert!(matches!(
            q.on_message(&error(&key, "CONFLICT"), &store),
            Some(Replayed::Applied(_))
        ));
        assert!(q.inbox().is_empty());
    }

    /// A deleted card and a lost permission go to the inbox; a transient error keeps the write
    /// queued (sent again after the next reconnect); answers to other requests are ignored.
    #[test]
    fn refusals_and_transient_errors() {
        let mut q = OfflineQueue::in_memory();
        let key = q.push(&card(3), "Title", title("mine")).unwrap();
        let empty = ClientStore::default();
        q.next(&empty).unwrap();
        assert_eq!(q.on_message(&error("other", "NOT_FOUND"), &empty), None);
        q.in_flight = Some(InFlight {
            key: key.clone(),
            expected_version: 3,
        });
        assert!(matches!(
            q.on_message(&error(&key, "DATABASE_UNAVAILABLE"), &empty),
            Some(Replayed::Deferred { .. })
        ));
        assert!(q.next(&empty).is_none(), "resting");
        q.paused = q.paused.map(|at| at - RETRY_AFTER);
        assert!(q.next(&empty).is_some(), "tried again after a while");
        q.in_flight = None;
        q.paused = Some(std::time::Instant::now());
        q.on_disconnect();
        q.next(&empty).unwrap();
        assert_eq!(
            q.on_message(&error(&key, "NOT_FOUND"), &empty),
            Some(Replayed::Refused)
        );
        assert_eq!(q.inbox()[0].theirs, None);
        assert_eq!(q.inbox()[0].fields()[0].theirs, "(deleted)");
        assert!(q.keep_mine(0, &empty).is_err(), "nothing to keep it on");
        assert_eq!(q.inbox().len(), 1, "still there");
        assert!(q.dismiss(0).is_some());
        assert!(q.inbox().is_empty());
    }

    /// Two clients of one user on one server share the file: neither drops the other's
    /// entries when it saves, and each forgets only what it is done with.
    #[test]
    fn two_clients_share_the_file_without_losing_entries() {
        let dir = std::env::temp_dir().join(format!("pm-offline-{}", uuid::Uuid::new_v4()));
        let path = queue_file(&dir, "http://127.0.0.1:1", "u1");
        let (mut a, _) = OfflineQueue::open(&path);
        let (mut b, _) = OfflineQueue::open(&path);
        let from_a = a.push(&card(3), "Title", title("a")).unwrap();
        let from_b = b.push(&card(3), "Title", title("b")).unwrap();
        let keys = |q: &OfflineQueue| q.pending().map(|w| w.key.clone()).collect::<Vec<_>>();
        assert_eq!(
            keys(&OfflineQueue::open(&path).0),
            vec![from_b.clone(), from_a.clone()]
        );
        // A's write lands: the file keeps B's.
        a.next(&ClientStore::default()).unwrap();
        let done = answer(&from_a, Payload::WorkItemUpdated(Default::default()));
        a.on_message(&done, &ClientStore::default());
        assert_eq!(keys(&OfflineQueue::open(&path).0), vec![from_b.clone()]);
        // B's lands too: nothing is left, and the file is gone.
        b.next(&ClientStore::default()).unwrap();
        let done = answer(&from_b, Payload::WorkItemUpdated(Default::default()));
        b.on_message(&done, &ClientStore::default());
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The queue and the inbox survive a restart; a damaged file is moved aside with a clear
    /// reason and the queue starts empty.
    #[test]
    fn the_queue_is_kept_on_disk_and_a_damaged_file_is_set_aside() {
        let dir = std::env::temp_dir().join(format!("pm-offline-{}", uuid::Uuid::new_v4()));
        let path = queue_file(&dir, "http://127.0.0.1:1", "u1");
        assert_ne!(path, queue_file(&dir, "http://127.0.0.1:1", "u2"));
        let (mut q, problem) = OfflineQueue::open(&path);
        assert_eq!(problem, None);
        let key = q.push(&card(3), "Title", title("mine")).unwrap();
        q.push(
            &card(3),
            "Priority",
            proto::UpdateWorkItemRequest {
                priority: Some("high".into()),
                ..Default::default()
            },
        )
        .unwrap();
        q.next(&ClientStore::default()).unwrap();
        q.on_message(&error(&key, "NOT_FOUND"), &ClientStore::default());
        let (again, problem) = OfflineQueue::open(&path);
        assert_eq!(problem, None);
        assert_eq!(again.pending_len(), 1);
        assert_eq!(again.inbox().len(), 1);
        assert_eq!(again.inbox()[0].write.key, key);
        assert_eq!(
            again.pending().next().unwrap().req.priority.as_deref(),
            Some("high")
        );

        std::fs::write(&path, b"{ not json").unwrap();
        let (empty, problem) = OfflineQueue::open(&path);
        let problem = problem.expect("reported");
        assert_eq!(empty.pending_len() + empty.inbox().len(), 0);
        let aside = problem.kept_as.clone().expect("moved aside");
        assert_eq!(std::fs::read(&aside).unwrap(), b"{ not json");
        assert!(!path.exists());
        assert!(
            problem.to_string().contains("could not be read"),
            "{problem}"
        );
        // Well-formed JSON whose write is not a protobuf message.
        let garbage = r#"{"format": 1, "inbox": [], "pending": [{"key": "k", "item_id": "w1",
            "what": "Title", "req": "////", "before": "", "made_at": 0}]}"#;
        std::fs::write(&path, garbage).unwrap();
        let (empty, problem) = OfflineQueue::open(&path);
        assert_eq!(empty.pending_len(), 0);
        assert!(problem.expect("reported").kept_as.is_some());
        std::fs::write(&path, br#"{"format": 9, "pending": [], "inbox": []}"#).unwrap();
        let (_, problem) = OfflineQueue::open(&path);
        assert!(problem.unwrap().why.contains("unknown format 9"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
