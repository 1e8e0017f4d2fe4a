//! Following the event log that other servers write, when several servers share one
//! PostgreSQL database.
//!
//! Every write's events are numbered inside its transaction from the stream's counter row,
//! which stays locked until the commit (`store::events::take_seq`): a stream's seqs commit in
//! order, and once seq N is committed, every seq below it is too. So a server learns all it
//! must publish from two facts: the stream's events in `pm_events`, and how far each stream's
//! log reaches. It publishes each stream strictly in seq order through
//! [`EventHub::publish_next`], which its own writer uses as well: whichever of the two gets
//! there first publishes an event, the other skips it.
//!
//! How far the log reaches comes from a hint and a poll. Each write group sends one
//! `NOTIFY pm_events` with its streams' last seqs, delivered at its commit; a hint from this
//! server itself is ignored (its writer publishes its own events, with their activity frames).
//! Notifications sent while the listener was disconnected are lost, so every
//! [`SAFETY_POLL`] the follower also reads every stream's last seq, and it does so at once
//! after its listener reconnects.
//!
//! Events written by other servers reach subscribers here as they are stored: the event
//! frames, without the ActivityLogCreated frame their own server sends beside each (as a
//! resume's replay does).
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use pm_shared::proto::{Payload, WebSocketMessage};
use prost::Message;
use sqlx::postgres::PgListener;
use tokio::sync::watch;

use crate::hub::{EventHub, Sequenced};
use crate::store::events::{self, WORKSPACE};
use crate::store::Store;

/// The channel write groups notify on.
pub const CHANNEL: &str = "pm_events";

/// How often every stream's log end is read, whatever the hints say: the longest a lost hint
/// can delay an event.
pub const SAFETY_POLL: Duration = Duration::from_millis(500);

/// Events read from the database per round trip while catching up.
const CHUNK: usize = 500;

/// The follower's state that others look at: whether its listener is connected (`/ready`).
#[derive(Default)]
pub struct FollowerHealth {
    listening: AtomicBool,
}

impl FollowerHealth {
    pub fn listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }
}

/// The text of a write group's hint: this server's id, then one `seq stream` line per stream
/// it wrote to (the workspace stream is the empty name).
pub fn hint(node: &str, streams: &[(&str, u64)]) -> String {
    let mut text = node.to_string();
    for (stream, seq) in streams {
        text.push('\n');
        text.push_str(&seq.to_string());
        text.push(' ');
        text.push_str(stream);
    }
    text
}

/// The server and (stream, seq) pairs of a hint; None when it is not one.
fn parse_hint(text: &str) -> Option<(&str, Vec<(&str, u64)>)> {
    let mut lines = text.split('\n');
    let node = lines.next()?;
    let streams = lines
        .map(|line| {
            let (seq, stream) = line.split_once(' ')?;
            Some((stream, seq.parse().ok()?))
        })
        .collect::<Option<Vec<_>>>()?;
    Some((node, streams))
}

/// Starts following the log of the PostgreSQL database at `url` until `shutdown` turns true.
pub fn spawn(
    url: String,
    node: String,
    store: Arc<Store>,
    hub: Arc<EventHub>,
    mut shutdown: watch::Receiver<bool>,
) -> Arc<FollowerHealth> {
    let health = Arc::new(FollowerHealth::default());
    let status = health.clone();
    tokio::spawn(async move {
        let mut listener: Option<PgListener> = None;
        let mut poll = tokio::time::interval(SAFETY_POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if listener.is_none() {
                listener = listen(&url).await;
                status
                    .listening
                    .store(listener.is_some(), Ordering::Release);
                // Whatever was hinted while nobody listened is read now.
                catch_up_all(&store, &hub).await;
            }
            let Some(l) = listener.as_mut() else {
                tokio::select! {
                    _ = shutdown.changed() => return,
                    _ = tokio::time::sleep(SAFETY_POLL) => continue,
                }
            };
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = poll.tick() => catch_up_all(&store, &hub).await,
                received = l.try_recv() => match received {
                    Ok(Some(notification)) => {
                        if let Some((from, streams)) = parse_hint(notification.payload()) {
                            if from != node {
                                for (stream, seq) in streams {
                                    catch_up(&store, &hub, stream, seq).await;
                                }
                            }
                        }
                    }
                    // The connection was lost and made again: hints may be lost.
                    Ok(None) => catch_up_all(&store, &hub).await,
                    Err(e) => {
                        tracing::warn!(error = %e, "the event listener lost PostgreSQL");
                        status.listening.store(false, Ordering::Release);
                        listener = None;
                    }
                },
            }
        }
    });
    health
}

async fn listen(url: &str) -> Option<PgListener> {
    let connected = async {
        let mut l = PgListener::connect(url).await?;
        l.listen(CHANNEL).await?;
        Ok::<_, sqlx::Error>(l)
    };
    match connected.await {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::warn!(error = %e, "the event listener cannot reach PostgreSQL");
            None
        }
    }
}

/// Every stream's log end, and the events this server has not published yet.
async fn catch_up_all(store: &Store, hub: &EventHub) {
    let streams = async {
        let mut reader = store.read.acquire().await?;
        events::all_streams(&mut reader.conn()).await
    };
    match streams.await {
        Ok(streams) => {
            for (stream, seq) in streams {
                catch_up(store, hub, &stream, seq).await;
            }
        }
        Err(e) => tracing::warn!(error = %e, "reading the event log's ends failed"),
    }
}

/// Publishes the events of `stream` up to `upto` that this server has not published.
pub async fn catch_up(store: &Store, hub: &EventHub, stream: &str, upto: u64) {
    if let Err(e) = publish_stored(store, hub, stream, upto).await {
        tracing::warn!(error = %e, stream, "catching up with the event log failed");
    }
}

/// Publishes the stored events of `stream` after the last published one, up to `upto`, in
/// order. Every one of them is committed (see the module documentation). A stream nobody here
/// subscribes to only has its number moved.
pub async fn publish_stored(
    store: &Store,
    hub: &EventHub,
    stream: &str,
    upto: u64,
) -> anyhow::Result<()> {
    loop {
        let published = hub.last_published(stream);
        if upto <= published {
            return Ok(());
        }
        // The workspace stream's events also reach the subscribers of their projects.
        if stream != WORKSPACE && hub.advance_unwatched(stream, upto) {
            return Ok(());
        }
        let rows = {
            let mut reader = store.read.acquire().await?;
            events::after(&mut reader.conn(), stream, published, upto, CHUNK).await?
        };
        let first = rows.first().map(|(seq, _)| *seq);
        if first != Some(published + 1) {
            if hub.last_published(stream) != published {
                continue; // published meanwhile: read again from where it stands
            }
            // Pruned before this server read them (a server far behind): not published here.
            anyhow::bail!(
                "events after {published} up to {upto} are no longer stored (first found: {first:?})"
            );
        }
        for (seq, frame) in rows {
            let stored = StoredEvent::of(&frame);
            if let Some(project) = stored.admits.as_deref() {
                refresh_members(store, hub, project).await;
            }
            let frame = Bytes::from(frame);
            match hub.publish_next(stream, stored.also.as_deref(), &[frame], seq, seq) {
                Sequenced::Delivered | Sequenced::AlreadyPublished => {}
                // Someone else published meanwhile: read again from where it stands.
                Sequenced::NotNext { .. } => break,
            }
            if let Some(project) = stored.removes.as_deref() {
                refresh_members(store, hub, project).await;
            }
        }
    }
}

/// What publishing a stored event needs to know of it.
#[derive(Default)]
struct StoredEvent {
    /// The project a lifecycle event (workspace stream) also goes to.
    also: Option<String>,
    /// A project whose members change so that someone may now see it: read them first.
    admits: Option<String>,
    /// A project someone leaves: they get this event, and nothing after it.
    removes: Option<String>,
}

impl StoredEvent {
    fn of(frame: &[u8]) -> StoredEvent {
        let Ok(message) = WebSocketMessage::decode(frame) else {
            return StoredEvent::default();
        };
        match message.payload {
            Some(Payload::ProjectCreated(e)) => {
                let project = e.project.map(|p| p.id);
                StoredEvent {
                    also: project.clone(),
                    admits: project,
                    removes: None,
                }
            }
            Some(Payload::ProjectUpdated(e)) => StoredEvent {
                also: e.project.map(|p| p.id),
                ..Default::default()
            },
            Some(Payload::ProjectDeleted(e)) => StoredEvent {
                also: Some(e.project_id),
                ..Default::default()
            },
            Some(Payload::ProjectMemberAdded(e)) => StoredEvent {
                admits: e.member.map(|m| m.project_id),
                ..Default::default()
            },
            Some(Payload::ProjectMemberRemoved(e)) => StoredEvent {
                removes: Some(e.project_id),
                ..Default::default()
            },
            _ => StoredEvent::default(),
        }
    }
}

/// Reads a project's members (committed) and gives them to the hub's delivery filter (token
/// mode; the hub ignores it otherwise).
async fn refresh_members(store: &Store, hub: &EventHub, project: &str) {
    let members = async {
        let mut reader = store.read.acquire().await?;
        crate::access::members_of(&mut reader.conn(), project).await
    };
    match members.await {
        Ok(members) => hub.set_members(project, members),
        Err(e) => tracing::error!(error = %e, "could not refresh project members"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hint_names_its_server_and_streams() {
        let text = hint("node-a", &[("", 7), ("p-1", 42)]);
        assert_eq!(text, "node-a\n7 \n42 p-1");
        let (node, streams) = parse_hint(&text).unwrap();
        assert_eq!(node, "node-a");
        assert_eq!(streams, vec![("", 7), ("p-1", 42)]);
        assert!(parse_hint("node\nnot a seq").is_none());
        assert_eq!(parse_hint("node").unwrap().1, vec![]);
    }
}
