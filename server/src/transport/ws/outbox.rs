//! The request worker's side of the connection queue: it waits for room in the connection's
//! byte budget, which the hub never does.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::hub::{ConnId, CutOff, Outbound, Subscriber};
use crate::transport::state::AppState;

/// The worker's side of the connection queue. Unlike the hub it may wait: a client that does
/// not read only delays its own responses.
///
/// It waits for bytes, not only for slots: an answer (or a replay chunk) is queued only while
/// the connection's queued bytes stay within half its budget (`--send-buffer-bytes`), or when
/// nothing is queued (so one answer larger than that, a big snapshot, still goes, alone). The
/// other half is headroom for live events, which the hub never holds back (past the whole
/// budget it cuts the connection off). A client that does not read thus stalls its own worker,
/// which stops taking requests; the reader stops reading once PENDING_REQUESTS wait, and the
/// client's further requests stay in its socket.
pub(super) struct Outbox {
    pub(super) queue: mpsc::Sender<Outbound>,
    pub(super) queued_bytes: Arc<AtomicUsize>,
    /// Queued bytes beyond which the worker waits.
    pub(super) limit: usize,
    /// Its `drained` is signalled by the writer after every write.
    signal: Arc<CutOff>,
}

/// A boxed future: see `write_loop::bounded`.
pub(super) type BoxedSend<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), ()>> + Send + 'a>>;

impl Outbox {
    pub(super) fn of(subscriber: Subscriber) -> Outbox {
        Outbox {
            queue: subscriber.queue,
            queued_bytes: subscriber.queued_bytes,
            limit: (subscriber.max_bytes / 2).max(1),
            signal: subscriber.cut_off,
        }
    }

    /// The outbox of connection `conn`, or, for a connection the hub does not know, one that
    /// refuses everything.
    pub(super) fn of_conn(state: &AppState, conn: ConnId) -> Outbox {
        match state.hub.subscriber(conn) {
            Some(s) => Outbox::of(s),
            None => Outbox {
                queue: mpsc::channel(1).0,
                queued_bytes: Default::default(),
                limit: usize::MAX,
                signal: Default::default(),
            },
        }
    }

    /// Waits until `len` more bytes fit within `limit` (at most the outbox's own, see above).
    /// Err when the writer is gone.
    pub(super) fn room(&self, len: usize, limit: usize) -> BoxedSend<'_> {
        Box::pin(self.wait_for_room(len, limit.min(self.limit)))
    }

    async fn wait_for_room(&self, len: usize, limit: usize) -> Result<(), ()> {
        loop {
            let queued = self.queued_bytes.load(Ordering::Acquire);
            if queued == 0 || queued.saturating_add(len) <= limit {
                return Ok(());
            }
            if self.queue.is_closed() {
                return Err(());
            }
            // The writer signals after every write; a signal given since the load above is
            // kept (notify_one stores it), so none is missed.
            self.signal.drained.notified().await;
        }
    }

    /// Queues complete frames (see `frames::message`) once they fit.
    pub(super) fn send(&self, framed: Bytes) -> BoxedSend<'_> {
        Box::pin(async move {
            self.wait_for_room(framed.len(), self.limit).await?;
            let item = Outbound::new(framed);
            self.queued_bytes.fetch_add(item.len(), Ordering::AcqRel);
            self.queue.send(item).await.map_err(|_| ())
        })
    }
}
