//! Subscribe and resume: live subscriptions, and replays from a client's cursors handed over
//! to live delivery with no gap and no duplicate.
use std::sync::atomic::Ordering;

use pm_shared::proto::{self, Payload, WebSocketMessage};
use prost::Message as _;

use crate::access::{self, Role, Viewer};
use crate::commands::{self};
use crate::error::AppResult;
use crate::frames;
use crate::hub::{ConnId, Outbound};
use crate::store::events::{self, WORKSPACE};
use crate::transport::state::SharedState;

use super::dispatch::Handled;
use super::outbox::Outbox;
use super::replies::{empty_reply, event_envelope};

/// A replay is read and queued a chunk at a time, as the client reads: at most this many
/// events per chunk,
const REPLAY_EVENTS: usize = 256;
/// and about this many bytes (a chunk ends at the first event that would pass it), or the
/// worker's share of the connection's budget when that is smaller.
const REPLAY_BYTES: usize = 256 * 1024;
/// Most bytes of a replay queued ahead of what the client has read (or the worker's share of
/// the budget when smaller): enough to keep its socket busy, and all that a client that stops
/// reading makes the server hold of its history.
const REPLAY_AHEAD: usize = 4 * REPLAY_BYTES;
/// A resume cursor may name a committed event whose publication is a moment away (see
/// `resume`): it waits for it this many times 1 ms at most.
const RESUME_AHEAD_WAITS: u32 = 5_000;

/// Subscribe: live project subscriptions (the reference's form), the project list, and resume
/// cursors (ours). Each cursor is honoured exactly or answered with ResyncRequired.
pub(super) async fn subscribe(
    state: &SharedState,
    viewer: &Viewer,
    conn: ConnId,
    out: &Outbox,
    s: proto::Subscribe,
    id: &str,
) -> AppResult<Handled> {
    let projects: Vec<String> = s
        .project_ids
        .iter()
        .map(|p| commands::parse_id("project_ids", p))
        .collect::<AppResult<_>>()?;
    // Every id is checked before anything is subscribed, so a bad request changes nothing.
    let cursors: Vec<(String, proto::ResumeCursor)> = s
        .cursors
        .into_iter()
        .map(|c| {
            let stream = if c.stream.is_empty() {
                WORKSPACE.to_string()
            } else {
                commands::parse_id("cursors.stream", &c.stream)?
            };
            Ok((stream, c))
        })
        .collect::<AppResult<_>>()?;
    // Only members may watch a project (token mode); the workspace stream is filtered per event.
    {
        let mut read = state.store.read.acquire().await?;
        let streams = projects
            .iter()
            .chain(cursors.iter().map(|(s, _)| s))
            .filter(|s| !s.is_empty());
        for project in streams {
            access::require(
                &mut read.conn(),
                viewer.mode,
                project,
                &viewer.user_id,
                Role::Viewer,
                access::Named::new("Project", project),
            )
            .await?;
        }
    }
    // A stream that also has a cursor is subscribed by its resume, atomically with the replay;
    // subscribing it live here first would deliver events ahead of (and again in) the replay.
    let has_cursor = |stream: &str| cursors.iter().any(|(s, _)| s == stream);
    for p in projects.iter().filter(|p| !has_cursor(p)) {
        state.hub.subscribe(conn, p, Vec::new());
    }
    if s.project_list && !has_cursor(WORKSPACE) && !state.hub.is_subscribed(conn, WORKSPACE) {
        state.hub.subscribe(conn, WORKSPACE, Vec::new());
    }
    let mut before = Vec::new();
    for (stream, cursor) in &cursors {
        let resumed = resume(state, viewer, conn, out, stream, cursor).await?;
        if let Some(resync) = resumed {
            state.metrics.resyncs.increment(1);
            let msg = event_envelope(
                Payload::ResyncRequired(resync),
                stream,
                &state.store.epoch(),
            );
            before.push(frames::message(&msg));
        }
    }
    Ok(Handled {
        before,
        response: Some(empty_reply(id)),
    })
}

/// Replays `stream` after the cursor and subscribes live, or says why it cannot.
///
/// The replay is read and queued a chunk at a time (REPLAY_EVENTS, REPLAY_BYTES), each once the
/// connection's queued bytes leave room for it within REPLAY_AHEAD (`Outbox::room`): a client
/// that does not read makes the server hold that much of its replay, not its whole history.
/// No lock of the store is taken: events keep committing and being published meanwhile.
///
/// The hand-over to live delivery goes by the hub's number of the stream's last published seq
/// (`EventHub::last_published`, N). Every event up to N is committed, so the replay reads up to
/// N and never beyond (an event above N may be committed but not yet published: it will come
/// live). The last chunk, up to N, is queued and the live subscription registered in one step
/// under the hub's lock (`EventHub::subscribe_if_at`), and only if the stream's last published
/// seq is still N; when it moved, the chunk is queued all the same and the replay goes on from
/// N to the new number. `publish` delivers and advances the number under that same lock, so
/// each event after the cursor reaches the client exactly once: replayed (up to N) or live
/// (after N); the hand-over has no gap and no duplicate. Reads take turns server-wide
/// (`AppState::replay_reads`), and N is read after the turn and the chunk's queue slot are had,
/// so it can move only during the read and the hand-over. Each chunk must start right after the
/// previous one; when pruning overtook the replay, the client is told to resync
/// ("cursor_too_old") after the events it was sent.
///
/// The workspace stream is filtered by [`EventHub::may_see`](crate::hub::EventHub::may_see)
/// exactly as live delivery is: in token mode a user is replayed the lifecycle events of the
/// projects they are a member of, and of the others only place-holders (`EventWithheld`, the
/// seq alone), so the stream has no gap for them.
async fn resume(
    state: &SharedState,
    viewer: &Viewer,
    conn: ConnId,
    out: &Outbox,
    stream: &str,
    cursor: &proto::ResumeCursor,
) -> AppResult<Option<proto::ResyncRequired>> {
    let current = {
        let mut read = state.store.read.acquire().await?;
        events::current_seq(&mut read.conn(), stream).await?
    };
    let resync = |reason: &str| {
        Some(proto::ResyncRequired {
            stream: stream.to_string(),
            reason: reason.to_string(),
            current_seq: current,
            epoch: state.store.epoch(),
        })
    };
    if cursor.epoch != state.store.epoch() || cursor.last_seq > current {
        return Ok(resync("epoch_changed"));
    }
    let filtered = stream == WORKSPACE && state.hub.filters_workspace();
    let chunk_bytes = REPLAY_BYTES.min(out.limit);
    let mut last = cursor.last_seq;
    // A cursor may name a committed event not yet published (a snapshot's seq is read from
    // the database): its group publishes it right after the commit. Wait for that, bounded.
    let mut ahead_waits = 0u32;
    loop {
        if out.room(chunk_bytes, REPLAY_AHEAD).await.is_err() {
            return Ok(None); // the connection is gone
        }
        // The chunk's queue slot, reserved before the head is read: whatever waits (a slot,
        // a turn to read) comes before it, so the head can move only during the read itself
        // and the hand-over below, and a hand-over does not lose its race to every publish
        // while it waits. (Were the head read before a wait of, say, a storm's queue for
        // turns, a stream written more often than that would never let a resume go live.)
        let Ok(permit) = out.queue.reserve().await else {
            return Ok(None);
        };
        // One replay read at a time, server-wide (see `AppState::replay_reads`).
        let turn = if state.hub.last_published(stream) > last {
            Some(state.replay_reads.acquire().await)
        } else {
            None
        };
        let head = state.hub.last_published(stream);
        if last > head {
            drop((turn, permit));
            if cursor.epoch != state.store.epoch() || ahead_waits >= RESUME_AHEAD_WAITS {
                return Ok(resync("epoch_changed"));
            }
            ahead_waits += 1;
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            continue;
        }
        let rows = if last < head {
            let mut read = state.store.read.acquire().await?;
            events::after(&mut read.conn(), stream, last, head, REPLAY_EVENTS).await?
        } else {
            Vec::new()
        };
        drop(turn);
        match rows.first() {
            Some(&(first, _)) if first != last + 1 => return Ok(resync("cursor_too_old")),
            None if last < head => return Ok(resync("cursor_too_old")),
            _ => {}
        }
        let (mut taken, mut bytes) = (0usize, 0usize);
        let mut chunk: Vec<Vec<u8>> = Vec::new();
        for (seq, frame) in rows {
            if taken > 0 && bytes + frame.len() > chunk_bytes {
                break;
            }
            taken += 1;
            bytes += frame.len();
            last = seq;
            if !filtered
                || workspace_project(&frame).is_some_and(|p| state.hub.may_see(&viewer.user_id, &p))
            {
                chunk.push(frame);
            } else if let Some(marker) = crate::hub::withheld(&frame) {
                chunk.push(marker);
            }
        }
        let item = (!chunk.is_empty()).then(|| frames::binary_all(&chunk));
        if last < head {
            // More to read before the head: the chunk goes into its slot (`out.room` above
            // made room for its bytes).
            if let Some(item) = item {
                let item = Outbound::new(item);
                out.queued_bytes.fetch_add(item.len(), Ordering::AcqRel);
                permit.send(item);
            }
            continue;
        }
        // Everything up to the head (as of the hub's number) is in this chunk: queue it in its
        // slot, and go live if the head did not move.
        let replay = item.map(|item| (permit, item));
        match state.hub.subscribe_if_at(conn, stream, replay, last) {
            Ok(()) => {
                state.metrics.replays.increment(1);
                let replayed = last.saturating_sub(cursor.last_seq);
                state.metrics.replay_events.record(replayed as f64);
                return Ok(None);
            }
            Err(crate::hub::NotLive::Moved) => continue,
            Err(crate::hub::NotLive::Gone) => return Ok(resync("slow_consumer")),
        }
    }
}

/// The project a stored workspace-stream frame is about (None: not a project lifecycle event).
fn workspace_project(frame: &[u8]) -> Option<String> {
    match WebSocketMessage::decode(frame).ok()?.payload? {
        Payload::ProjectCreated(c) => c.project.map(|p| p.id),
        Payload::ProjectUpdated(u) => u.project.map(|p| p.id),
        Payload::ProjectDeleted(d) => Some(d.project_id),
        _ => None,
    }
}
