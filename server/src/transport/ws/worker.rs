//! The request worker: answers one connection's requests in the order they arrived, writes
//! pipelined into the write queue.

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesOrdered;
use futures_util::StreamExt;
use pm_shared::proto::{Payload, WebSocketMessage};
use tokio::sync::mpsc;

use crate::commands::{Actor, Command};
use crate::frames;
use crate::hub::ConnId;
use crate::transport::state::SharedState;

use super::dispatch::{answer_other, classify, committed_reply, Handled, Request};
use super::outbox::Outbox;
use super::replies::error_reply;

/// Most writes of one connection queued for the writer and not yet answered.
const PIPELINE: usize = 64;

/// Answers a connection's requests in the order they arrived. Writes are pipelined: each is
/// queued for the writer as soon as it arrives (the queue keeps this connection's order) and
/// answered when committed, so a client with several writes in flight gets them committed
/// together instead of one transaction per round trip. Anything else (a read, a subscription)
/// waits until the writes before it are answered, so it sees them.
pub(super) async fn request_worker(
    state: SharedState,
    conn: ConnId,
    actor: Actor,
    mut requests: mpsc::Receiver<Box<WebSocketMessage>>,
    queue: Outbox,
) {
    // This connection's queued writes, answered in the order they were sent.
    let mut in_flight = InFlight::new();
    loop {
        // Only small futures are held across this wait (see the reader's loop in `connection`
        // for why).
        let next = tokio::select! {
            // Answers first: a client that keeps sending still gets its answers.
            biased;
            Some(answer) = in_flight.next(), if !in_flight.is_empty() => {
                Next::Answer(frames::message(&answer))
            }
            msg = requests.recv(), if in_flight.len() < PIPELINE => match msg {
                Some(msg) => Next::Request(msg),
                None => break,
            },
        };
        let msg = match next {
            Next::Answer(bytes) => {
                if queue.send(bytes).await.is_err() {
                    return;
                }
                continue;
            }
            Next::Request(msg) => msg,
        };
        // The request is taken apart and its answer set up in a statement that ends before
        // the await: what a match holds lives until the match ends, and whatever lives across
        // an await is stored in this task for the connection's whole life.
        let answering = match take_request(*msg) {
            (id, Request::Write(command)) => {
                // Queued now, so it takes its place in the writer's order before the next
                // request is read.
                in_flight.push_back(queue_write(&state, conn, &actor, id, command));
                continue;
            }
            // Boxed: the request's future (several KiB) exists only while a request runs.
            (id, Request::Other(payload)) => Box::pin(answer_in_order(
                &state,
                conn,
                &actor,
                &queue,
                &mut in_flight,
                id,
                payload,
            )),
        };
        if !answering.await {
            return;
        }
    }
    // The reader is gone: the writes already queued still run; answer them while the socket
    // lasts.
    while let Some(answer) = next_answer(&mut in_flight).await {
        if queue.send(answer).await.is_err() {
            return;
        }
    }
}

type InFlight = FuturesOrdered<BoxFuture<'static, WebSocketMessage>>;

/// The next answer, framed (so that no message is held while it is sent).
async fn next_answer(in_flight: &mut InFlight) -> Option<Bytes> {
    in_flight.next().await.map(|a| frames::message(&a))
}

enum Next {
    Answer(Bytes),
    Request(Box<WebSocketMessage>),
}

fn take_request(msg: WebSocketMessage) -> (String, Request) {
    let request = match msg.payload {
        Some(payload) => classify(payload),
        None => Request::Other(None),
    };
    (msg.message_id, request)
}

/// Queues a write for the writer; the returned future is its answer.
fn queue_write(
    state: &SharedState,
    conn: ConnId,
    actor: &Actor,
    id: String,
    command: Command,
) -> BoxFuture<'static, WebSocketMessage> {
    let pending = state.writer.submit(actor, Some(&id), Some(conn), command);
    let epoch = state.store.epoch();
    Box::pin(async move {
        match pending.outcome().await {
            Ok(committed) => committed_reply(&id, committed, &epoch),
            Err(e) => error_reply(&id, &e),
        }
    })
}

/// Answers a request that is not a write, after the writes sent before it (it must see them).
/// False when the connection's writer is gone.
async fn answer_in_order(
    state: &SharedState,
    conn: ConnId,
    actor: &Actor,
    queue: &Outbox,
    in_flight: &mut InFlight,
    id: String,
    payload: Option<Payload>,
) -> bool {
    while let Some(answer) = next_answer(in_flight).await {
        if queue.send(answer).await.is_err() {
            return false;
        }
    }
    let handled = match answer_other(state, conn, actor, queue, &id, payload).await {
        Ok(handled) => handled,
        Err(e) => error_reply(&id, &e).into(),
    };
    send_handled(queue, handled).await
}

async fn send_handled(queue: &Outbox, handled: Handled) -> bool {
    for frame in handled.before {
        if queue.send(frame).await.is_err() {
            return false;
        }
    }
    match handled.response {
        Some(response) => queue.send(frames::message(&response)).await.is_ok(),
        None => true,
    }
}
