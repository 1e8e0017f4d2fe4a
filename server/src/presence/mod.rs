//! Live presence: who is on a project's board right now, the card each has open and the field
//! each edits.
//!
//! Presence is ephemeral: it lives in this module's memory only, never in the event log, never
//! numbered, never replayed. A connection says where it is with `SetPresenceRequest`
//! (`request`), which is also its heartbeat; its presence ends when it closes, says it left, or
//! sends nothing for the timeout (`--presence-timeout-secs`, 30 s: clients beat every 15 s).
//! Only a connection that sent one gets presence frames (the Blazor client never does): first a
//! snapshot of its project, then the changes.
//!
//! Changes are not sent as they happen: the ticking task (`spawn`) gathers them and every
//! `--presence-flush-ms` sends each watcher one `PresenceChanged` per project with everything
//! that changed, so a burst of cursor moves is one frame and an idle board costs nothing but
//! its heartbeats. Frames go through the hub's non-blocking [`EventHub::offer_to`]: a watcher
//! whose queue is full misses the frame and is owed a whole snapshot instead; nobody waits.
//!
//! When several servers share a PostgreSQL database, each forwards its own connections'
//! presence to the others over `NOTIFY pm_presence` (`relay`), and drops a server's sessions
//! when it has not been heard from for the timeout (it beats a third of it).
mod registry;
pub mod relay;
pub mod request;

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{mpsc, watch};
use tokio::time::{Duration, Instant};

use crate::error::{AppError, AppResult};
use crate::hub::{ConnId, EventHub};
use crate::store::Store;

pub use registry::Forward;
pub use request::Wanted;

/// How presence is timed.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// A session without a heartbeat for this long is gone.
    pub timeout: Duration,
    /// Changes are gathered for this long and sent as one frame per project.
    pub flush: Duration,
}

impl Timing {
    pub fn of(config: &crate::Config) -> Timing {
        Timing {
            timeout: Duration::from_secs(config.presence_timeout_secs.max(1)),
            flush: Duration::from_millis(config.presence_flush_ms.clamp(10, 10_000)),
        }
    }

    /// How often a server tells the others it is alive: three beats per timeout.
    fn beat(&self) -> Duration {
        self.timeout / 3
    }
}

pub struct Presence {
    registry: Mutex<registry::Registry>,
    /// This server's id (the store's node), which prefixes its session ids.
    node: String,
    timing: Timing,
    /// To the other servers (PostgreSQL), once the relay runs.
    relay: Mutex<Option<mpsc::Sender<relay::Note>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Presence is ephemeral: a panic while holding the lock loses at worst a few changes.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Presence {
    pub fn new(node: &str, timing: Timing) -> Presence {
        Presence {
            registry: Mutex::default(),
            node: node.to_string(),
            timing,
            relay: Mutex::new(None),
        }
    }

    pub fn timing(&self) -> Timing {
        self.timing
    }

    /// The id of connection `conn`'s session, unique across servers: the first part of this
    /// server's node id and the connection's number.
    fn session_id(&self, conn: ConnId) -> String {
        let node: String = self.node.chars().take(8).collect();
        format!("{node}-{conn}")
    }

    /// Whether connection `conn` is on `project` already (its access was checked then).
    pub fn is_on(&self, conn: ConnId, project: &str) -> bool {
        lock(&self.registry).project_of(conn) == Some(project)
    }

    /// Records where connection `conn` of `user_id` is, and its heartbeat. One that arrives on
    /// a project gets the project's snapshot with the next flush, as the others hear of it: a
    /// client that hops between projects costs at most one snapshot a flush, and arrivals in
    /// one flush share one.
    pub fn set(&self, conn: ConnId, user_id: &str, wanted: Wanted) {
        let id = self.session_id(conn);
        lock(&self.registry).set(conn, &id, user_id, wanted, Instant::now());
    }

    /// Connection `conn` is on no board any more.
    pub fn leave(&self, conn: ConnId) {
        lock(&self.registry).leave(conn);
    }

    /// Sessions known, from every server.
    pub fn len(&self) -> usize {
        lock(&self.registry).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One round of the ticking task: expire, revoke, send the gathered changes, forward this
    /// server's to the others.
    fn tick(&self, hub: &EventHub, now: Instant) {
        let mut registry = lock(&self.registry);
        registry.expire(now, self.timing.timeout);
        if hub.filters_workspace() {
            registry.revoke(|user, project| hub.may_see(user, project));
        }
        registry.flush(hub);
        let relay = lock(&self.relay).clone();
        if let Some(relay) = relay {
            for forward in registry.take_forwards() {
                for note in relay::Note::forwards(&self.node, forward) {
                    if relay.try_send(note).is_err() {
                        // Lost: everything is forwarded again next time.
                        registry.forward_all();
                        break;
                    }
                }
            }
        }
    }

    /// Applies a note from another server.
    fn heard(&self, note: relay::Note) {
        if note.node == self.node {
            return;
        }
        let now = Instant::now();
        let mut registry = lock(&self.registry);
        if note.hello {
            registry.forward_all();
        }
        let node = note.node.clone();
        match note.into_forward() {
            Some(forward) => registry.apply_remote(&node, forward, now),
            None => registry.heard(&node, now),
        }
    }

    /// Starts the ticking task, until `shutdown`.
    pub fn spawn(self: &Arc<Presence>, hub: Arc<EventHub>, mut shutdown: watch::Receiver<bool>) {
        let presence = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(presence.timing.flush);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.changed() => return,
                    _ = tick.tick() => presence.tick(&hub, Instant::now()),
                }
            }
        });
    }

    /// Starts forwarding presence to the servers sharing the PostgreSQL database at `url`.
    pub fn relay(
        self: &Arc<Presence>,
        url: String,
        store: Arc<Store>,
        shutdown: watch::Receiver<bool>,
    ) {
        let (tx, rx) = mpsc::channel(relay::PENDING);
        *lock(&self.relay) = Some(tx.clone());
        relay::spawn(url, self.clone(), store, tx, rx, shutdown);
    }
}

/// The answer for a project a connection may not publish presence on (or that does not exist):
/// the same NOT_FOUND as any read of it.
pub fn not_found(project: &str) -> AppError {
    AppError::not_found("Project", project)
}

/// Checks that `user_id` may be present on `project`: in token mode a member (the hub's
/// membership table, which the tick re-checks), else a project that exists.
pub async fn check_access(
    store: &Store,
    hub: &EventHub,
    user_id: &str,
    project: &str,
) -> AppResult<()> {
    if hub.filters_workspace() {
        return if hub.may_see(user_id, project) {
            Ok(())
        } else {
            Err(not_found(project))
        };
    }
    let mut reader = store.read.acquire().await?;
    match crate::store::projects::project(&mut reader.conn(), project).await? {
        Some(_) => Ok(()),
        None => Err(not_found(project)),
    }
}
