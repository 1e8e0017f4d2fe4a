//! The write side: one long-lived task that owns the writer's connection, the seq counter, the
//! known users and the publish order, fed by a channel.
//!
//! ```text
//! transport ─▶ commands ─▶ Writer (channel) ─▶ writer task ─▶ store (one transaction)
//!                                                    └──────▶ publish task ─▶ hub
//!                                                        (after commit, in seq order)
//! ```
//!
//! A caller sends a command ([`Writer::submit`]) and waits for its answer. The task takes
//! whatever is queued (up to [`GROUP_MAX`]) and runs it as one group (`group`): in one
//! transaction, each command in its own savepoint, each asking the command to describe its
//! change ([`WriteCommand::describe`]) and then appending the activity row and the numbered
//! event (`apply`, `append`); after the commit it hands the group's frames and answers to the
//! publish task (`publish`), which delivers them to the hub in seq order and then answers the
//! callers while the writer runs the next group. Nothing else writes, so the seq counter and
//! the known users are plain fields of the task, and commit order is publish order by
//! construction.
//!
//! A caller's deadline (`request_timeout_secs`) bounds how long it waits for its command to
//! START; a command the writer has taken always runs to the end, so a deadline never leaves a
//! write half-done or applied after its caller was told it timed out. A caller that goes away
//! (a closed socket) cannot interrupt a transaction others depend on: the task runs on.
mod append;
mod apply;
pub mod change;
pub mod command;
mod group;
mod known_users;
mod publish;
mod queue;
mod seqs;
mod task;
pub(crate) mod write_behind;

#[cfg(test)]
mod tests;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use pm_shared::domain::limits::ValidationLimits;
use tokio::sync::{mpsc, oneshot};

pub use append::log_activity;
pub use change::{Action, Batch, Bind, Change, Committed, DeferredWrite, Effect};
pub use command::{Context, Scope, WriteCommand};
pub use queue::Pending;
pub use task::GROUP_MAX;

use crate::access::Actor;
use crate::config::AuthMode;
use crate::error::{AppError, AppResult};
use crate::hub::{ConnId, EventHub};
use crate::store::{Store, WriterConnection};
use queue::{Claim, Control, Counters, Job, Request};

/// The handle to the writer task. Dropping the last one ends the task once it has served
/// what was sent.
pub struct Writer<C> {
    requests: mpsc::UnboundedSender<Request<C>>,
    counters: Arc<Counters>,
    request_timeout: Duration,
}

/// What the writer needs to know of the server's configuration.
pub struct Settings {
    pub auth: AuthMode,
    /// How long a command may wait for the writer to start it.
    pub request_timeout: Duration,
    /// What the commands validate texts and story points against.
    pub limits: ValidationLimits,
}

/// The writer held still (see [`Writer::pause`]); dropping it lets the writer go on.
pub struct Paused {
    _resume: oneshot::Sender<()>,
}

impl<C: WriteCommand> Writer<C> {
    /// Starts the writer task on `conn`.
    pub fn spawn(
        conn: WriterConnection,
        store: Arc<Store>,
        hub: Arc<EventHub>,
        settings: Settings,
    ) -> Writer<C> {
        let (requests, received) = mpsc::unbounded_channel();
        let counters = Arc::new(Counters::default());
        let shared = (conn.backend() == crate::store::Backend::Postgres).then(|| store.clone());
        let publisher = publish::PublishTask::spawn(hub.clone(), shared);
        let task = task::WriterTask {
            conn,
            books: Default::default(),
            store,
            hub,
            auth: settings.auth,
            limits: settings.limits,
            counters: counters.clone(),
            publisher,
        };
        tokio::spawn(task.run(received));
        Writer {
            requests,
            counters,
            request_timeout: settings.request_timeout,
        }
    }

    /// Queues `command` now (its place in the order is taken before this returns). `origin`:
    /// the WebSocket connection it came from.
    pub fn submit(
        &self,
        actor: &Actor,
        request_id: Option<&str>,
        origin: Option<ConnId>,
        command: C,
    ) -> Pending {
        let (done, result) = oneshot::channel();
        let claim = Arc::new(Claim::default());
        self.counters.waiting.fetch_add(1, Ordering::AcqRel);
        let job = Job {
            claim: claim.clone(),
            actor: actor.clone(),
            request_id: request_id.map(str::to_string),
            origin,
            command,
            done,
        };
        if self.requests.send(Request::Write(job)).is_err() {
            // The task is gone (the server is stopping): the answer channel is closed with it,
            // so the caller hears that the write was abandoned.
            self.counters.waiting.fetch_sub(1, Ordering::AcqRel);
        }
        Pending {
            claim,
            counters: self.counters.clone(),
            result,
            deadline: tokio::time::Instant::now() + self.request_timeout,
        }
    }

    /// Runs one command and waits for its answer. `request_id` is the WS message_id (or REST
    /// Idempotency-Key), used to make creates idempotent per user.
    pub async fn execute(
        &self,
        actor: &Actor,
        request_id: Option<&str>,
        command: C,
    ) -> AppResult<Committed> {
        self.submit(actor, request_id, None, command)
            .outcome()
            .await
    }
}

impl<C> Writer<C> {
    /// Sends a request that is not a command and waits for its answer.
    async fn ask<T>(
        &self,
        request: impl FnOnce(oneshot::Sender<anyhow::Result<T>>) -> Control,
    ) -> anyhow::Result<T> {
        let (done, answer) = oneshot::channel();
        self.requests
            .send(Request::Control(request(done)))
            .map_err(|_| anyhow::anyhow!("the writer has stopped"))?;
        answer
            .await
            .map_err(|_| anyhow::anyhow!("the writer stopped before answering"))?
    }

    /// Records a user's display name.
    pub async fn record_user(&self, user_id: &str, name: Option<&str>) -> AppResult<()> {
        let (user_id, name) = (user_id.to_string(), name.map(str::to_string));
        self.ask(|done| Control::RecordUser {
            user_id,
            name,
            done,
        })
        .await
        .map_err(AppError::Internal)
    }

    /// Prunes the replay log and records the history watermark: events beyond the newest
    /// `keep_per_stream` of their stream and older than `max_age_secs` go.
    pub async fn maintain(&self, keep_per_stream: u64, max_age_secs: u64) -> anyhow::Result<u64> {
        self.ask(|done| Control::Maintain {
            keep_per_stream,
            max_age_secs,
            done,
        })
        .await
    }

    /// Folds the whole WAL into the database file (a copy of the file is then a full backup).
    /// `Ok(false)`: readers kept it from finishing.
    pub async fn checkpoint_truncate(&self) -> anyhow::Result<bool> {
        self.ask(|done| Control::Checkpoint { done }).await
    }

    /// Holds the writer still once it has served what was sent before, until the returned
    /// guard is dropped: commands sent meanwhile queue up, and then run as one group. For
    /// tests that line commands up.
    pub async fn pause(&self) -> Paused {
        let (paused, is_paused) = oneshot::channel();
        let (resume, resumed) = oneshot::channel();
        let _ = self.requests.send(Request::Control(Control::Pause {
            paused,
            resume: resumed,
        }));
        let _ = is_paused.await;
        Paused { _resume: resume }
    }

    /// Runs `look` on the writer's memory between groups and returns what it returns.
    #[cfg(test)]
    async fn with_books<T: Send + 'static>(
        &self,
        look: impl FnOnce(&mut task::Books) -> T + Send + 'static,
    ) -> T {
        let (done, answer) = oneshot::channel();
        let _ = self
            .requests
            .send(Request::Control(Control::Books(Box::new(move |books| {
                let _ = done.send(look(books));
            }))));
        answer.await.expect("the writer answers")
    }

    /// Commands waiting for the writer now.
    pub fn waiting(&self) -> usize {
        self.counters.waiting.load(Ordering::Acquire)
    }

    /// (transactions, commands) run since start: their ratio is the average group size.
    pub fn totals(&self) -> (u64, u64) {
        (
            self.counters.groups.load(Ordering::Relaxed),
            self.counters.commands.load(Ordering::Relaxed),
        )
    }
}
