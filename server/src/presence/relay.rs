//! Presence across servers that share one PostgreSQL database: each forwards its own
//! connections' presence on `NOTIFY pm_presence` (small JSON notes, well under PostgreSQL's
//! 8,000-byte payload limit) and listens to the others'.
//!
//! A server beats (an empty note) a third of the timeout apart, so the others can tell it is
//! alive; one that stops, killed or cut off, has its sessions dropped by every other server a
//! timeout after its last note. A server that starts listening (at start-up, or after losing
//! PostgreSQL, when notes may have been missed) says hello, and every other server forwards all
//! its sessions again.
use std::sync::Arc;

use pm_shared::proto;
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgListener;
use tokio::sync::{mpsc, watch};

use super::registry::Forward;
use super::Presence;
use crate::store::{events, Conn, Store};

/// The channel servers tell each other presence on.
pub const CHANNEL: &str = "pm_presence";

/// Notes waiting to be sent; when full, a tick forwards everything again later.
pub const PENDING: usize = 256;

/// Sessions per note: each is at most about 250 bytes of JSON (ids and field names are bounded,
/// see `request`), so a note stays under PostgreSQL's limit.
const SESSIONS_PER_NOTE: usize = 25;
/// Gone session ids per note (each under 30 bytes).
const GONE_PER_NOTE: usize = 150;

/// What one server tells the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    #[serde(rename = "n")]
    pub node: String,
    /// "Forward me everything you have": the sender just started listening.
    #[serde(rename = "h", default, skip_serializing_if = "std::ops::Not::not")]
    pub hello: bool,
    /// The project of `sessions` and `gone`; empty in a beat or hello.
    #[serde(rename = "p", default, skip_serializing_if = "String::is_empty")]
    pub project: String,
    #[serde(rename = "s", default, skip_serializing_if = "Vec::is_empty")]
    pub sessions: Vec<Wire>,
    #[serde(rename = "g", default, skip_serializing_if = "Vec::is_empty")]
    pub gone: Vec<String>,
}

/// One session in a note.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Wire {
    #[serde(rename = "s")]
    pub session: String,
    #[serde(rename = "u")]
    pub user: String,
    #[serde(rename = "i", default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(rename = "t", default)]
    pub since: i64,
}

impl Note {
    fn bare(node: &str, hello: bool) -> Note {
        Note {
            node: node.to_string(),
            hello,
            project: String::new(),
            sessions: Vec::new(),
            gone: Vec::new(),
        }
    }

    /// "I am alive."
    pub fn beat(node: &str) -> Note {
        Note::bare(node, false)
    }

    /// "I just started listening: tell me everything."
    pub fn hello(node: &str) -> Note {
        Note::bare(node, true)
    }

    /// A forward as notes small enough for NOTIFY.
    pub fn forwards(node: &str, forward: Forward) -> Vec<Note> {
        let mut notes = Vec::new();
        let mut sessions = forward.sessions.into_iter().map(Wire::of).peekable();
        let mut gone = forward.gone.into_iter().peekable();
        while sessions.peek().is_some() || gone.peek().is_some() {
            notes.push(Note {
                node: node.to_string(),
                hello: false,
                project: forward.project.clone(),
                sessions: sessions.by_ref().take(SESSIONS_PER_NOTE).collect(),
                gone: gone.by_ref().take(GONE_PER_NOTE).collect(),
            });
        }
        notes
    }

    /// The sessions this note tells of; None for a beat or hello.
    pub fn into_forward(self) -> Option<Forward> {
        if self.project.is_empty() {
            return None;
        }
        Some(Forward {
            project: self.project,
            sessions: self.sessions.into_iter().map(Wire::into_proto).collect(),
            gone: self.gone,
        })
    }
}

impl Wire {
    fn of(p: proto::Presence) -> Wire {
        Wire {
            session: p.session_id,
            user: p.user_id,
            item: p.work_item_id,
            field: p.field,
            since: p.since,
        }
    }

    fn into_proto(self) -> proto::Presence {
        proto::Presence {
            session_id: self.session,
            user_id: self.user,
            work_item_id: self.item,
            field: self.field,
            since: self.since,
        }
    }
}

/// Starts the sender (notes from the tick, beats, hellos) and the listener.
pub(super) fn spawn(
    url: String,
    presence: Arc<Presence>,
    store: Arc<Store>,
    tx: mpsc::Sender<Note>,
    rx: mpsc::Receiver<Note>,
    shutdown: watch::Receiver<bool>,
) {
    tokio::spawn(send(
        presence.node.clone(),
        presence.timing.beat(),
        store,
        rx,
        shutdown.clone(),
    ));
    tokio::spawn(listen(url, presence, tx, shutdown));
}

async fn send(
    node: String,
    beat: std::time::Duration,
    store: Arc<Store>,
    mut rx: mpsc::Receiver<Note>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut beats = tokio::time::interval(beat);
    beats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let note = tokio::select! {
            _ = shutdown.changed() => return,
            _ = beats.tick() => Note::beat(&node),
            note = rx.recv() => match note {
                Some(note) => note,
                None => return,
            },
        };
        if let Err(e) = notify(&store, &note).await {
            tracing::warn!(error = %e, "could not forward presence to the other servers");
        }
    }
}

async fn notify(store: &Store, note: &Note) -> anyhow::Result<()> {
    let text = serde_json::to_string(note)?;
    let mut reader = store.read.acquire().await?;
    match reader.conn() {
        Conn::Postgres(c) => events::notify(c, CHANNEL, &text).await?,
        Conn::Sqlite(_) => anyhow::bail!("presence crosses servers on PostgreSQL only"),
    }
    Ok(())
}

async fn listen(
    url: String,
    presence: Arc<Presence>,
    tx: mpsc::Sender<Note>,
    mut shutdown: watch::Receiver<bool>,
) {
    let retry = presence
        .timing
        .beat()
        .min(std::time::Duration::from_secs(1));
    loop {
        let mut listener = match connect(&url).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "the presence listener cannot reach PostgreSQL");
                tokio::select! {
                    _ = shutdown.changed() => return,
                    _ = tokio::time::sleep(retry) => continue,
                }
            }
        };
        // Whatever was said while nobody listened is said again.
        let _ = tx.try_send(Note::hello(&presence.node));
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                received = listener.try_recv() => match received {
                    Ok(Some(n)) => match serde_json::from_str::<Note>(n.payload()) {
                        Ok(note) => presence.heard(note),
                        Err(e) => tracing::debug!(error = %e, "not a presence note"),
                    },
                    // Reconnected by sqlx: notes may have been missed.
                    Ok(None) => {
                        let _ = tx.try_send(Note::hello(&presence.node));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the presence listener lost PostgreSQL");
                        break;
                    }
                },
            }
        }
    }
}

async fn connect(url: &str) -> sqlx::Result<PgListener> {
    let mut l = PgListener::connect(url).await?;
    l.listen(CHANNEL).await?;
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_forwards_split_into_notes_under_the_notify_limit() {
        let long = "x".repeat(64);
        let forward = Forward {
            project: crate::ids::random_id(),
            sessions: (0..60)
                .map(|i| proto::Presence {
                    session_id: format!("abcdef01-{i}"),
                    user_id: crate::ids::random_id(),
                    work_item_id: Some(long.clone()),
                    field: Some(long.clone()),
                    since: 1_700_000_000,
                })
                .collect(),
            gone: (0..400).map(|i| format!("abcdef01-{i}")).collect(),
        };
        let notes = Note::forwards("node", forward.clone());
        assert_eq!(notes.len(), 3);
        let mut back = Forward {
            project: forward.project.clone(),
            ..Default::default()
        };
        for note in notes {
            let text = serde_json::to_string(&note).unwrap();
            assert!(text.len() < 8000, "{} bytes", text.len());
            let note: Note = serde_json::from_str(&text).unwrap();
            let f = note.into_forward().unwrap();
            back.sessions.extend(f.sessions);
            back.gone.extend(f.gone);
        }
        assert_eq!(back, forward);
        let beat: Note =
            serde_json::from_str(&serde_json::to_string(&Note::beat("n")).unwrap()).unwrap();
        assert_eq!(beat.into_forward(), None);
    }
}
