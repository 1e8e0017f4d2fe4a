//! The event hub: who is subscribed to which stream, and non-blocking fan-out.
//!
//! Each event is encoded once by the pipeline; the hub hands the same `Bytes` to every
//! subscriber with `try_send` into that connection's bounded queue. It never awaits a client: a
//! connection whose queue is full is cut off from live delivery (unsubscribed from everything)
//! and told to resync, which it does by reloading a snapshot or resuming from its cursor.
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use pm_shared::proto::{self, Payload, WebSocketMessage};
use tokio::sync::{mpsc, Notify};

use crate::frames;

pub mod socket;
use socket::{ClientSocket, WrittenNow};

pub type ConnId = u64;

/// One item of a connection's outgoing queue: complete WebSocket frames, ready for the socket
/// (`crate::frames`). The frames of one mutation (ActivityLogCreated, then the domain
/// event), or of a whole group of them, travel as one item, so nothing can come between them
/// and the subscriber gets them in one socket write. The hub frames events once; every
/// subscriber's item shares those bytes.
///
/// One word: every connection's queue allocates its first block of 32 slots up front, so the
/// item size is paid by every idle connection.
#[derive(Debug, Clone)]
pub struct Outbound(Box<Bytes>);

impl Outbound {
    pub fn new(framed: Bytes) -> Outbound {
        Outbound(Box::new(framed))
    }

    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    /// Size, counted against the connection's byte budget.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The hub's handle on one connection.
#[derive(Clone)]
pub struct Subscriber {
    /// Whose connection this is (membership filters deliveries in token mode).
    pub user_id: String,
    pub queue: mpsc::Sender<Outbound>,
    /// Bytes queued and not yet written; the writer subtracts what it sends.
    pub queued_bytes: Arc<std::sync::atomic::AtomicUsize>,
    pub max_bytes: usize,
    /// Shared with the connection's writer task, which reports the cut-off to the client.
    pub cut_off: Arc<CutOff>,
    /// The connection's socket, which the hub writes to itself while nothing waits for it
    /// (None for a connection that is not a socket, in tests: everything is queued).
    pub socket: Option<Arc<ClientSocket>>,
}

/// Streams a connection lost to a queue overflow, and the signal that tells its writer (also
/// when the hub left it the rest of a frame: `socket::WrittenNow::Begun`).
#[derive(Default)]
pub struct CutOff {
    pub streams: Mutex<Vec<String>>,
    pub notify: Notify,
    /// Signalled by the connection's writer after each write: whoever waits for room in the
    /// connection's byte budget (the request worker, a replay) looks again.
    pub drained: Notify,
}

impl CutOff {
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.streams))
    }
}

/// Up to this many subscribers, the hub writes every copy of an event itself; beyond it, its
/// thread writes its share (one core's) and the connections' writer tasks the rest, on the
/// other cores (bench/NOTES.md, "Fan-out: the hub writes to idle sockets itself").
const WRITE_ALL_IN_PLACE: usize = 128;

/// The cores the runtime's threads run on (tokio starts a worker per core).
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// What became of one connection's copy of a delivery.
enum Delivery {
    /// The hub wrote it to the socket (or began to: the writer task finishes it).
    Written,
    Queued,
    CutOff,
    Gone,
}

/// What a delivery to all its subscribers did, for the metrics.
#[derive(Default)]
struct Delivered {
    written: u64,
    written_bytes: u64,
    cut_off: u64,
}

impl Delivered {
    fn add(&mut self, delivery: Delivery, len: usize) {
        match delivery {
            Delivery::Written => {
                self.written += 1;
                self.written_bytes += len as u64;
            }
            Delivery::CutOff => self.cut_off += 1,
            Delivery::Queued | Delivery::Gone => {}
        }
    }
}

enum Offer {
    Queued,
    Full,
    Closed,
}

impl Offer {
    fn queued(&self) -> bool {
        matches!(self, Offer::Queued)
    }
}

impl Subscriber {
    /// Queues without waiting, within both the message and the byte budget.
    fn offer(&self, item: Outbound) -> Offer {
        let len = item.len();
        let queued = self.queued_bytes.fetch_add(len, Ordering::AcqRel);
        if queued + len > self.max_bytes && queued > 0 {
            self.queued_bytes.fetch_sub(len, Ordering::AcqRel);
            return Offer::Full;
        }
        match self.queue.try_send(item) {
            Ok(()) => Offer::Queued,
            Err(e) => {
                self.queued_bytes.fetch_sub(len, Ordering::AcqRel);
                match e {
                    mpsc::error::TrySendError::Full(_) => Offer::Full,
                    mpsc::error::TrySendError::Closed(_) => Offer::Closed,
                }
            }
        }
    }
}

#[derive(Default)]
pub struct EventHub {
    next_id: AtomicU64,
    inner: Mutex<Inner>,
    /// The server's counters (`GET /metrics`); the writer records its groups here too.
    pub metrics: crate::metrics::Metrics,
}

#[derive(Default)]
struct Inner {
    conns: HashMap<ConnId, (Subscriber, HashSet<String>)>,
    by_stream: HashMap<String, HashSet<ConnId>>,
    /// Token mode: project → its members. A project's events reach members only. None in
    /// desktop mode, where everyone may see everything.
    members: Option<HashMap<String, HashSet<String>>>,
    /// Each stream's last published seq, recorded under this lock by `publish` as it delivers
    /// (filled from `pm_streams` at start-up, see [`EventHub::reset_published`]). A resume
    /// replays up to it and goes live only if it has not moved ([`EventHub::subscribe_if_at`]).
    published: HashMap<String, u64>,
}

/// What [`EventHub::offer_to`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    Queued,
    /// The connection's queue is full: nothing was queued.
    Full,
    /// The connection is gone.
    Gone,
}

/// What [`EventHub::publish_next`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Sequenced {
    Delivered,
    /// Every one of the events was published already (by the follower, from the database).
    AlreadyPublished,
    /// The stream's last published seq is `published`, not the one before the first event:
    /// publish what lies between (from the database) first, or what is left of these.
    NotNext {
        published: u64,
    },
}

/// The stream's last published seq moved past the replay's end (or the connection is gone):
/// see [`EventHub::subscribe_if_at`].
#[derive(Debug, PartialEq, Eq)]
pub enum NotLive {
    /// Events after the replay's end were published meanwhile: read them and try again.
    Moved,
    /// The connection is no longer registered.
    Gone,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding this lock cannot leave the maps half-updated in a way that matters
    // more than losing the hub, so recover the guard instead of poisoning every connection.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Inner {
    /// Delivers framed payloads to the subscribers of `stream` and of `also` (see
    /// [`EventHub::publish`]), those in `first` (sorted) first, then runs `between`, then
    /// delivers to the rest; what became of the copies.
    fn deliver_all(
        &mut self,
        stream: &str,
        also: Option<&str>,
        payloads: &[Bytes],
        framed: Bytes,
        first: &[ConnId],
        between: impl FnOnce(),
    ) -> Delivered {
        let mut targets: Vec<ConnId> = self
            .by_stream
            .get(stream)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        if let Some(extra) = also.and_then(|a| self.by_stream.get(a)) {
            targets.extend(extra.iter().copied());
            targets.sort_unstable();
            targets.dedup();
        }
        // Token mode: a project's lifecycle events on the workspace stream reach its members
        // only; the stream's other subscribers get place-holders (`withheld`) in their place.
        let mut withheld_from = Vec::new();
        if let (Some(members), Some(project)) = (self.members.as_ref(), also) {
            targets.retain(|id| {
                let Some((s, _)) = self.conns.get(id) else {
                    return false;
                };
                let may = allowed(Some(members), &s.user_id, project);
                if !may {
                    withheld_from.push(*id);
                }
                may
            });
        }
        let mut delivered = Delivered::default();
        if !first.is_empty() {
            let mut rest = Vec::with_capacity(targets.len());
            for id in targets {
                if first.binary_search(&id).is_ok() {
                    delivered.add(self.deliver(id, &framed, true), framed.len());
                } else {
                    rest.push(id);
                }
            }
            targets = rest;
        }
        between();
        // Many subscribers: the other cores' share goes through the connections' writer tasks,
        // queued first so those cores start at once, while this thread writes its own share.
        let in_place = if targets.len() <= WRITE_ALL_IN_PLACE {
            targets.len()
        } else {
            targets.len() / cores()
        };
        for &id in &targets[in_place..] {
            delivered.add(self.deliver(id, &framed, false), framed.len());
        }
        for &id in &targets[..in_place] {
            delivered.add(self.deliver(id, &framed, true), framed.len());
        }
        if !withheld_from.is_empty() {
            let markers: Vec<Vec<u8>> = payloads.iter().filter_map(|p| withheld(p)).collect();
            let markers = frames::binary_all(&markers);
            for id in withheld_from {
                delivered.add(self.deliver(id, &markers, true), markers.len());
            }
        }
        delivered
    }

    /// Adds the registered connection `id` to `stream`'s subscribers.
    fn join(&mut self, id: ConnId, stream: &str) {
        if let Some((_, streams)) = self.conns.get_mut(&id) {
            streams.insert(stream.to_string());
        }
        self.by_stream
            .entry(stream.to_string())
            .or_default()
            .insert(id);
    }

    /// Writes `framed` to connection `id`'s socket, or queues it for the connection's writer,
    /// without waiting; an overflow cuts it off from live delivery (its writer tells the
    /// client to resync), a closed queue unregisters it.
    fn deliver(&mut self, id: ConnId, framed: &Bytes, in_place: bool) -> Delivery {
        let Some((sub, _)) = self.conns.get(&id) else {
            return Delivery::Gone;
        };
        if let Some(socket) = sub.socket.as_ref().filter(|_| in_place) {
            match socket.write_now(framed, &sub.queued_bytes) {
                WrittenNow::Whole => return Delivery::Written,
                WrittenNow::Begun => {
                    sub.cut_off.notify.notify_one();
                    return Delivery::Written;
                }
                WrittenNow::No => {}
            }
        }
        match sub.offer(Outbound::new(framed.clone())) {
            Offer::Queued => Delivery::Queued,
            Offer::Full => {
                let cut_off = sub.cut_off.clone();
                let lost = self.remove_from_streams(id);
                tracing::warn!(conn = id, streams = ?lost, "slow consumer cut off from live delivery");
                lock(&cut_off.streams).extend(lost);
                cut_off.notify.notify_one();
                Delivery::CutOff
            }
            Offer::Closed => {
                self.remove_from_streams(id);
                self.conns.remove(&id);
                Delivery::Gone
            }
        }
    }

    fn remove_from_streams(&mut self, id: ConnId) -> Vec<String> {
        let Some((_, streams)) = self.conns.get_mut(&id) else {
            return Vec::new();
        };
        let lost: Vec<String> = streams.drain().collect();
        for s in &lost {
            if let Some(set) = self.by_stream.get_mut(s) {
                set.remove(&id);
                if set.is_empty() {
                    self.by_stream.remove(s);
                }
            }
        }
        lost
    }
}

/// The place-holder of a stored or published event a subscriber may not see
/// (`EventWithheld`): the event's stream, seq and epoch, nothing else. None for an unnumbered
/// message (an ActivityLogCreated: it is simply not sent).
pub fn withheld(message: &[u8]) -> Option<Vec<u8>> {
    use prost::Message as _;
    let event = WebSocketMessage::decode(message).ok()?;
    (event.seq > 0).then(|| {
        WebSocketMessage {
            message_id: crate::ids::random_id(),
            timestamp: event.timestamp,
            payload: Some(Payload::EventWithheld(proto::EventWithheld {})),
            seq: event.seq,
            epoch: event.epoch,
            stream: event.stream,
        }
        .encode_to_vec()
    })
}

/// Whether `user` may see the workspace-stream (lifecycle) events of `project`: in token mode
/// (`members` is Some) only a member may; in desktop mode everyone may.
fn allowed(members: Option<&HashMap<String, HashSet<String>>>, user: &str, project: &str) -> bool {
    members.is_none_or(|m| m.get(project).is_some_and(|users| users.contains(user)))
}

impl EventHub {
    /// Whether `user` may see the workspace-stream events (project created, updated, deleted)
    /// of `project`. The one rule for live delivery (`publish`) and replay
    /// (`transport::ws::resume`).
    pub fn may_see(&self, user: &str, project: &str) -> bool {
        allowed(lock(&self.inner).members.as_ref(), user, project)
    }

    /// Whether workspace events are filtered per user (token mode): a replay must then check
    /// each one with [`EventHub::may_see`].
    pub fn filters_workspace(&self) -> bool {
        lock(&self.inner).members.is_some()
    }

    /// The hub's handle on connection `id` (a replay queues its chunks through it).
    pub fn subscriber(&self, id: ConnId) -> Option<Subscriber> {
        lock(&self.inner).conns.get(&id).map(|(s, _)| s.clone())
    }

    /// Bytes queued for connection `id` and not yet written to its socket.
    pub fn queued_bytes(&self, id: ConnId) -> Option<usize> {
        lock(&self.inner)
            .conns
            .get(&id)
            .map(|(s, _)| s.queued_bytes.load(Ordering::Acquire))
    }

    /// The most bytes any connection has queued right now (tests watch it stay bounded).
    pub fn max_queued_bytes(&self) -> usize {
        lock(&self.inner)
            .conns
            .values()
            .map(|(s, _)| s.queued_bytes.load(Ordering::Acquire))
            .max()
            .unwrap_or(0)
    }

    /// A hub that delivers project events to members only (token mode), starting from the
    /// given (project, user) memberships.
    pub fn members_only(memberships: Vec<(String, String)>) -> EventHub {
        let mut members: HashMap<String, HashSet<String>> = HashMap::new();
        for (project, user) in memberships {
            members.entry(project).or_default().insert(user);
        }
        let hub = EventHub::default();
        lock(&hub.inner).members = Some(members);
        hub
    }

    /// Replaces a project's members (token mode); connections of users who are no longer
    /// members leave the project's stream at once.
    pub fn set_members(&self, project: &str, users: Vec<String>) {
        let mut inner = lock(&self.inner);
        let Some(members) = inner.members.as_mut() else {
            return;
        };
        let users: HashSet<String> = users.into_iter().collect();
        members.insert(project.to_string(), users.clone());
        let revoked: Vec<ConnId> = inner
            .by_stream
            .get(project)
            .map(|ids| {
                ids.iter()
                    .copied()
                    .filter(|id| {
                        inner
                            .conns
                            .get(id)
                            .is_some_and(|(s, _)| !users.contains(&s.user_id))
                    })
                    .collect()
            })
            .unwrap_or_default();
        for id in revoked {
            if let Some((_, streams)) = inner.conns.get_mut(&id) {
                streams.remove(project);
            }
            if let Some(set) = inner.by_stream.get_mut(project) {
                set.remove(&id);
            }
        }
    }

    pub fn register(&self, subscriber: Subscriber) -> ConnId {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        lock(&self.inner)
            .conns
            .insert(id, (subscriber, HashSet::new()));
        id
    }

    pub fn unregister(&self, id: ConnId) {
        let mut inner = lock(&self.inner);
        inner.remove_from_streams(id);
        inner.conns.remove(&id);
    }

    pub fn is_subscribed(&self, id: ConnId, stream: &str) -> bool {
        lock(&self.inner)
            .conns
            .get(&id)
            .is_some_and(|(_, s)| s.contains(stream))
    }

    /// Subscribes `id` to `stream` live from now on, first queueing `replay` (frames to go
    /// before the first live event). Returns false when the replay did not fit in the queue
    /// (the client must resync) or the connection is gone. A resume, which must not miss or
    /// repeat an event between its replay and live delivery, uses
    /// [`EventHub::subscribe_if_at`] instead.
    pub fn subscribe(&self, id: ConnId, stream: &str, replay: Vec<Bytes>) -> bool {
        // Framed before taking the lock every publish needs.
        let replay = (!replay.is_empty()).then(|| Outbound::new(frames::binary_all(&replay)));
        let mut inner = lock(&self.inner);
        let Some((sub, _)) = inner.conns.get(&id) else {
            return false;
        };
        if let Some(replay) = replay {
            if !sub.offer(replay).queued() {
                return false;
            }
        }
        inner.join(id, stream);
        true
    }

    /// The last seq of `stream` published so far (0 when none). Every event up to it is
    /// committed (events are published after their commit); an event above it may be
    /// committed but not yet published, and is then still to come through `publish`.
    pub fn last_published(&self, stream: &str) -> u64 {
        lock(&self.inner)
            .published
            .get(stream)
            .copied()
            .unwrap_or(0)
    }

    /// Every stream's last published seq: what clients were told of (a writer reset checks
    /// the database still holds it).
    pub fn published(&self) -> Vec<(String, u64)> {
        lock(&self.inner)
            .published
            .iter()
            .map(|(s, &q)| (s.clone(), q))
            .collect()
    }

    /// Replaces every stream's last published seq with the database's (`pm_streams`): at
    /// start-up, and after the writer was reset (`writer::task`), when whatever the
    /// database holds beyond the hub's numbers was committed by a group that will never
    /// publish it, or the epoch was renewed and the hub's numbers describe the old one.
    pub fn reset_published(&self, streams: Vec<(String, u64)>) {
        lock(&self.inner).published = streams.into_iter().collect();
    }

    /// The hand-over of a resume from replay to live delivery, in one step under the lock
    /// `publish` delivers under: queues `replay` (the last frames read, up to seq `at`) into
    /// the slot `permit` reserved, then subscribes `id` to `stream` only if the stream's last
    /// published seq is still `at`. The client then gets every event up to `at` from the
    /// replay and every later one live, none twice. `Err(Moved)`: events after `at` were
    /// published meanwhile; the replay is queued all the same (it is in order), not the
    /// subscription: the caller reads what came after `at` and tries again. No lock of the
    /// store is needed.
    pub fn subscribe_if_at(
        &self,
        id: ConnId,
        stream: &str,
        replay: Option<(mpsc::Permit<'_, Outbound>, Bytes)>,
        at: u64,
    ) -> Result<(), NotLive> {
        let mut inner = lock(&self.inner);
        let moved = inner.published.get(stream).copied().unwrap_or(0) != at;
        let Some((sub, _)) = inner.conns.get(&id) else {
            return Err(NotLive::Gone);
        };
        if let Some((permit, framed)) = replay {
            let item = Outbound::new(framed);
            sub.queued_bytes.fetch_add(item.len(), Ordering::AcqRel);
            permit.send(item);
        }
        if moved {
            return Err(NotLive::Moved);
        }
        inner.join(id, stream);
        Ok(())
    }

    pub fn unsubscribe(&self, id: ConnId, stream: &str) {
        let mut inner = lock(&self.inner);
        if let Some((_, streams)) = inner.conns.get_mut(&id) {
            streams.remove(stream);
        }
        if let Some(set) = inner.by_stream.get_mut(stream) {
            set.remove(&id);
            if set.is_empty() {
                inner.by_stream.remove(stream);
            }
        }
    }

    /// Delivers the encoded messages of one mutation (or of a group's run of mutations on one
    /// stream), framed once, to every subscriber of `stream` and of `also` (a
    /// project event goes to the workspace stream and to that project's subscribers), each
    /// connection once. `last_seq` is the highest seq among them (of `stream`: a lifecycle
    /// event on the workspace stream advances the workspace stream's number only); it becomes
    /// the stream's last published seq under the same lock as the delivery, so a resume's
    /// hand-over ([`EventHub::subscribe_if_at`]) sees either both or neither. Publishes of one
    /// stream come in seq order (the group's task publishes in commit order).
    pub fn publish(&self, stream: &str, also: Option<&str>, payloads: &[Bytes], last_seq: u64) {
        self.publish_answering(stream, also, payloads, last_seq, &[], || {});
    }

    /// [`EventHub::publish`] that delivers to the connections in `first` (sorted) before the
    /// others, and runs `between` in between, while no other publish or subscribe can come
    /// between them: the writer answers its callers there, each after its own connection has
    /// the events, without waiting for every other subscriber's copy.
    pub fn publish_answering(
        &self,
        stream: &str,
        also: Option<&str>,
        payloads: &[Bytes],
        last_seq: u64,
        first: &[ConnId],
        between: impl FnOnce(),
    ) {
        let framed = frames::binary_all(payloads);
        let mut inner = lock(&self.inner);
        if last_seq > 0 {
            inner.published.insert(stream.to_string(), last_seq);
        }
        let delivered = inner.deliver_all(stream, also, payloads, framed, first, between);
        drop(inner);
        self.count_published(payloads.len(), delivered);
    }

    fn count_published(&self, frames: usize, delivered: Delivered) {
        self.metrics.events_published.increment(frames as u64);
        if delivered.written > 0 {
            self.metrics.frames_sent.increment(delivered.written);
            self.metrics.bytes_sent.increment(delivered.written_bytes);
        }
        if delivered.cut_off > 0 {
            self.metrics
                .slow_consumers_cut_off
                .increment(delivered.cut_off);
        }
    }

    /// [`EventHub::publish`] for servers that share a database (PostgreSQL), where this
    /// server's writer and its follower (`follow`) both publish a stream: the events with
    /// seqs `first..=last` go out only if they are next, so every subscriber sees each stream
    /// in seq order with no gap and no repeat, whoever publishes.
    pub fn publish_next(
        &self,
        stream: &str,
        also: Option<&str>,
        payloads: &[Bytes],
        first: u64,
        last: u64,
    ) -> Sequenced {
        let framed = frames::binary_all(payloads);
        let mut inner = lock(&self.inner);
        let published = inner.published.get(stream).copied().unwrap_or(0);
        if last <= published {
            return Sequenced::AlreadyPublished;
        }
        if first != published + 1 {
            return Sequenced::NotNext { published };
        }
        inner.published.insert(stream.to_string(), last);
        let delivered = inner.deliver_all(stream, also, payloads, framed, &[], || {});
        drop(inner);
        self.count_published(payloads.len(), delivered);
        Sequenced::Delivered
    }

    /// Moves the stream's last published seq to `seq` without delivering anything, when nobody
    /// here subscribes to it (a follower need not read what no subscriber would get): false
    /// when someone does, or `seq` is not ahead.
    pub fn advance_unwatched(&self, stream: &str, seq: u64) -> bool {
        let mut inner = lock(&self.inner);
        let watched = inner.by_stream.get(stream).is_some_and(|s| !s.is_empty());
        let published = inner.published.get(stream).copied().unwrap_or(0);
        if watched || seq <= published {
            return false;
        }
        inner.published.insert(stream.to_string(), seq);
        true
    }

    /// Queues `framed` for connection `id` without waiting and, unlike an event, without
    /// cutting the connection off when its queue is full: what is lost is a presence frame,
    /// which the caller makes good later with a whole snapshot (`crate::presence`).
    pub fn offer_to(&self, id: ConnId, framed: Bytes) -> Offered {
        let inner = lock(&self.inner);
        let Some((sub, _)) = inner.conns.get(&id) else {
            return Offered::Gone;
        };
        match sub.offer(Outbound::new(framed)) {
            Offer::Queued => Offered::Queued,
            Offer::Full => Offered::Full,
            Offer::Closed => Offered::Gone,
        }
    }

    pub fn connection_count(&self) -> usize {
        lock(&self.inner).conns.len()
    }

    /// The `top` streams with the most live subscribers, most first (`GET /metrics`).
    pub fn busiest_streams(&self, top: usize) -> Vec<(String, usize)> {
        let inner = lock(&self.inner);
        let mut streams: Vec<(String, usize)> = inner
            .by_stream
            .iter()
            .map(|(stream, subscribers)| (stream.clone(), subscribers.len()))
            .collect();
        drop(inner);
        streams.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        streams.truncate(top);
        streams
    }

    /// This hub, counting into `metrics` (the server's) rather than a registry of its own.
    pub fn with_metrics(mut self, metrics: crate::metrics::Metrics) -> EventHub {
        self.metrics = metrics;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(hub: &EventHub) -> (ConnId, mpsc::Receiver<Outbound>, mpsc::Sender<Outbound>) {
        let (tx, rx) = mpsc::channel(8);
        let id = hub.register(Subscriber {
            user_id: "u".into(),
            queue: tx.clone(),
            queued_bytes: Default::default(),
            max_bytes: 1 << 20,
            cut_off: Default::default(),
            socket: None,
        });
        (id, rx, tx)
    }

    /// The writer's answers run between the copies for the writing connections and the
    /// others': when they run, each writing subscriber has the event and no one else has it
    /// yet; afterwards every subscriber has it exactly once.
    #[tokio::test]
    async fn answers_go_between_the_writers_copies_and_the_others() {
        let hub = EventHub::default();
        let mut conns: Vec<_> = (0..4).map(|_| connection(&hub)).collect();
        for (id, _, _) in &conns {
            assert!(hub.subscribe(*id, "s", Vec::new()));
        }
        let writers = [conns[1].0, conns[3].0];
        let mut seen = Vec::new();
        hub.publish_answering("s", None, &[Bytes::from_static(b"e1")], 1, &writers, || {
            for (id, rx, _) in conns.iter_mut() {
                seen.push((*id, rx.try_recv().is_ok()));
            }
        });
        let expected: Vec<(ConnId, bool)> = conns
            .iter()
            .map(|(id, _, _)| (*id, writers.contains(id)))
            .collect();
        assert_eq!(seen, expected);
        for (id, rx, _) in conns.iter_mut() {
            let now = rx.try_recv().is_ok();
            assert_eq!(now, !writers.contains(id), "connection {id}");
            assert!(rx.try_recv().is_err(), "one copy each");
        }
        assert_eq!(hub.last_published("s"), 1);
    }

    /// A resume's hand-over: the replay up to the last published seq is queued, and the
    /// subscription registered only if nothing was published after it; otherwise the replay
    /// is queued alone, and the events published meanwhile are not delivered to it live (the
    /// resume reads them and tries again).
    #[tokio::test]
    async fn a_hand_over_goes_live_only_at_the_last_published_seq() {
        let hub = EventHub::default();
        hub.reset_published(vec![("s".into(), 4)]);
        let (id, mut rx, tx) = connection(&hub);
        assert_eq!(hub.last_published("s"), 4);
        assert_eq!(hub.last_published("other"), 0);

        // Seq 5 is published after the replay read up to 4.
        hub.publish("s", None, &[Bytes::from_static(b"5")], 5);
        assert_eq!(hub.last_published("s"), 5);
        let permit = tx.reserve().await.unwrap();
        let moved = hub.subscribe_if_at(id, "s", Some((permit, Bytes::from_static(b"r4"))), 4);
        assert_eq!(moved, Err(NotLive::Moved));
        assert!(!hub.is_subscribed(id, "s"));
        assert_eq!(rx.try_recv().unwrap().bytes().as_ref(), b"r4");
        assert!(rx.try_recv().is_err(), "nothing live before the hand-over");

        // The replay goes on to 5, and the head is still 5: live.
        let permit = tx.reserve().await.unwrap();
        let live = hub.subscribe_if_at(id, "s", Some((permit, Bytes::from_static(b"r5"))), 5);
        assert_eq!(live, Ok(()));
        assert!(hub.is_subscribed(id, "s"));
        hub.publish("s", None, &[Bytes::from_static(b"6")], 6);
        assert_eq!(rx.try_recv().unwrap().bytes().as_ref(), b"r5");
        assert!(!rx.try_recv().unwrap().is_empty(), "seq 6 live");

        // A lifecycle event on the workspace stream advances the workspace stream only.
        hub.publish(
            WORKSPACE_FOR_TEST,
            Some("s"),
            &[Bytes::from_static(b"w")],
            9,
        );
        assert_eq!(hub.last_published(WORKSPACE_FOR_TEST), 9);
        assert_eq!(hub.last_published("s"), 6);

        hub.unregister(id);
        assert_eq!(hub.subscribe_if_at(id, "s", None, 6), Err(NotLive::Gone));
    }

    const WORKSPACE_FOR_TEST: &str = "";

    #[test]
    fn queue_items_stay_one_word() {
        assert_eq!(std::mem::size_of::<Outbound>(), 8);
    }
}
