//! What travels to the writer task, and how a caller waits for its answer.
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::oneshot;

use super::change::Committed;
use crate::access::Actor;
use crate::error::{AppError, AppResult};
use crate::hub::ConnId;

/// A request to the writer. Requests are served in the order they were sent; consecutive
/// commands run as one group, anything else between groups.
pub(super) enum Request<C> {
    Write(Job<C>),
    Control(Control),
}

/// A request that is not a command.
pub(super) enum Control {
    /// Records a user's display name (the WebSocket upgrade's `name`): not an entity of the
    /// board, so it is recorded, not broadcast.
    RecordUser {
        user_id: String,
        name: Option<String>,
        done: oneshot::Sender<anyhow::Result<()>>,
    },
    /// Prunes the replay log and records the history watermark (`Store::maintain`).
    Maintain {
        keep_per_stream: u64,
        max_age_secs: u64,
        done: oneshot::Sender<anyhow::Result<u64>>,
    },
    /// Folds the WAL into the database file (`Store::checkpoint_truncate`).
    Checkpoint {
        done: oneshot::Sender<anyhow::Result<bool>>,
    },
    /// Runs a closure on the writer's memory (tests look into it).
    #[cfg(test)]
    Books(Box<dyn FnOnce(&mut super::task::Books) + Send>),
    /// Stops the writer until `resume` resolves (tests use it to line commands up).
    Pause {
        paused: oneshot::Sender<()>,
        resume: oneshot::Receiver<()>,
    },
}

/// A command waiting for the writer.
pub(super) struct Job<C> {
    pub claim: Arc<Claim>,
    pub actor: Actor,
    pub request_id: Option<String>,
    /// The WebSocket connection that sent it, if one did: its answer may go out as soon as
    /// that connection has the events (see `publish`).
    pub origin: Option<ConnId>,
    pub command: C,
    pub done: oneshot::Sender<AppResult<Committed>>,
}

/// Who has a job: still queued, taken by the writer, or withdrawn by its caller. Whichever of
/// the two moves it out of `QUEUED` first decides.
#[derive(Default)]
pub(super) struct Claim(AtomicU8);

const QUEUED: u8 = 0;
const TAKEN: u8 = 1;
const WITHDRAWN: u8 = 2;

impl Claim {
    fn move_to(&self, to: u8) -> bool {
        self.0
            .compare_exchange(QUEUED, to, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// Counts shared by the writer and its handles.
#[derive(Default)]
pub(super) struct Counters {
    /// Commands sent and neither taken nor withdrawn.
    pub waiting: AtomicUsize,
    /// Transactions run and commands run in them, since start.
    pub groups: AtomicU64,
    pub commands: AtomicU64,
}

impl<C> Job<C> {
    /// The writer takes the job, unless its caller withdrew it.
    pub fn take(&self, counters: &Counters) -> bool {
        let taken = self.claim.move_to(TAKEN);
        if taken {
            counters.waiting.fetch_sub(1, Ordering::AcqRel);
        }
        taken
    }
}

/// A command in the writer's queue. Commands run in the order they were queued, so a client
/// may queue several before the first is answered (pipelining) and still get them applied in
/// its order.
pub struct Pending {
    pub(super) claim: Arc<Claim>,
    pub(super) counters: Arc<Counters>,
    pub(super) result: oneshot::Receiver<AppResult<Committed>>,
    pub(super) deadline: tokio::time::Instant,
}

impl Pending {
    /// Waits for the outcome. The deadline bounds only the wait for the command to start: a
    /// command the writer has taken runs to the end, so a deadline never leaves a write
    /// half-done or applied after its caller was told it timed out.
    pub async fn outcome(mut self) -> AppResult<Committed> {
        let outcome = match tokio::time::timeout_at(self.deadline, &mut self.result).await {
            Ok(outcome) => outcome,
            Err(_) if self.claim.move_to(WITHDRAWN) => {
                self.counters.waiting.fetch_sub(1, Ordering::AcqRel);
                return Err(AppError::Timeout);
            }
            Err(_) => self.result.await,
        };
        outcome.unwrap_or_else(|_| {
            Err(AppError::Internal(anyhow::anyhow!(
                "the write was abandoned before it finished"
            )))
        })
    }
}
