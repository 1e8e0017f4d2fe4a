//! The writer task: the one owner of the write side. It holds the writer's connection, the
//! seq counter, the known users and the publish order, and serves [`Request`]s one at a time
//! from its channel: consecutive commands as one group (`group`), the rest between groups.
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures_util::FutureExt;
use tokio::sync::mpsc;

use super::command::WriteCommand;
use super::known_users::KnownUsers;
use super::publish::{Outbox, PublishTask};
use super::queue::{Control, Counters, Job, Request};
use super::seqs::SeqCounter;
use crate::config::AuthMode;
use crate::hub::EventHub;
use crate::store::{events, queries, Store, WriterConnection};
use pm_shared::domain::limits::ValidationLimits;

/// Most commands committed in one transaction.
pub const GROUP_MAX: usize = 128;

pub(super) struct WriterTask {
    pub conn: WriterConnection,
    pub books: Books,
    pub store: Arc<Store>,
    pub hub: Arc<EventHub>,
    pub auth: AuthMode,
    pub limits: ValidationLimits,
    pub counters: Arc<Counters>,
    /// Delivers each group's events and answers while the writer goes on.
    pub publisher: PublishTask,
}

/// What the writer remembers between writes, right only because nobody else writes.
#[derive(Default)]
pub(super) struct Books {
    pub seqs: SeqCounter,
    pub known_users: KnownUsers,
    /// A write failed in a way the connection cannot prove it recovered from (a failed COMMIT
    /// or ROLLBACK, a statement that failed after SQLite may have rolled the transaction
    /// back): the connection is replaced before the next write.
    pub reset_due: bool,
}

impl Books {
    /// A transaction did not commit, or ended in a state nobody can vouch for: what it
    /// numbered is void and the connection is replaced before the next write.
    pub fn fail(&mut self, store: &Store, cause: &dyn std::fmt::Display) {
        self.seqs.forget();
        self.reset_due = true;
        store.note_write_failure(cause);
    }
}

impl WriterTask {
    /// Serves requests until every handle is gone.
    pub async fn run<C: WriteCommand>(mut self, mut requests: mpsc::UnboundedReceiver<Request<C>>) {
        let mut received = Vec::with_capacity(GROUP_MAX);
        while requests.recv_many(&mut received, GROUP_MAX).await > 0 {
            let mut group = Vec::new();
            for request in received.drain(..) {
                match request {
                    Request::Write(job) => {
                        if job.take(&self.counters) {
                            group.push(job);
                        }
                    }
                    Request::Control(control) => {
                        self.guarded_group(std::mem::take(&mut group)).await;
                        self.serve(control).await;
                    }
                }
            }
            self.guarded_group(group).await;
        }
    }

    /// Runs a group; a panic inside it fails its callers (their answers are dropped) and the
    /// connection is replaced, but the writer goes on.
    async fn guarded_group<C: WriteCommand>(&mut self, jobs: Vec<Job<C>>) {
        if jobs.is_empty() {
            return;
        }
        self.counters.groups.fetch_add(1, Ordering::Relaxed);
        self.counters
            .commands
            .fetch_add(jobs.len() as u64, Ordering::Relaxed);
        if self.books.reset_due {
            if let Err(e) = self.reset().await {
                // Still failing (a disk that is still full, say): these writes fail now rather
                // than run on a connection nobody can vouch for; the next group tries again.
                tracing::error!(error = %e, "the writer could not be reset");
                let failure = match e.downcast_ref::<sqlx::Error>() {
                    Some(e) => super::group::Failure::of_sqlx(e),
                    None => super::group::Failure::Database,
                };
                let mut outbox = Outbox::default();
                super::group::fail(&mut outbox, jobs.into_iter().map(|j| j.done), failure, &e);
                self.publisher.hand_over(outbox).await;
                return;
            }
        }
        let (started, commands) = (std::time::Instant::now(), jobs.len());
        let mut outbox = Outbox::default();
        let ran = AssertUnwindSafe(self.run_group(jobs, &mut outbox))
            .catch_unwind()
            .await;
        self.hub.metrics.write_group(commands, started.elapsed());
        if ran.is_err() {
            // The group's transaction rolled back with its connection's state unknown, and the
            // seqs it took with it. What its outbox holds is dropped: its callers hear the
            // write was abandoned, and events it may have committed are replayed, never
            // published live (see `reset`).
            self.books
                .fail(&self.store, &"a group of writes was cut short");
            return;
        }
        self.publisher.hand_over(outbox).await;
    }

    /// A request other than a command.
    async fn serve(&mut self, request: Control) {
        if self.books.reset_due {
            if let Err(e) = self.reset().await {
                tracing::error!(error = %e, "the writer could not be reset");
            }
        }
        match request {
            Control::RecordUser {
                user_id,
                name,
                done,
            } => {
                let recorded =
                    queries::upsert_user(&mut self.conn.get(), &user_id, name.as_deref()).await;
                if recorded.is_ok() {
                    self.books.known_users.note(&user_id);
                }
                let _ = done.send(recorded.map_err(Into::into));
            }
            Control::Maintain {
                keep_per_stream,
                max_age_secs,
                done,
            } => {
                let pruned = self
                    .store
                    .maintain(&mut self.conn.get(), keep_per_stream, max_age_secs)
                    .await;
                let _ = done.send(pruned);
            }
            Control::Checkpoint { done } => {
                let _ = done.send(Store::checkpoint_truncate(&mut self.conn.get()).await);
            }
            #[cfg(test)]
            Control::Books(look) => look(&mut self.books),
            Control::Pause { paused, resume } => {
                let _ = paused.send(());
                let _ = resume.await;
            }
        }
    }

    /// Starts the writer over after a failure: a new connection, seqs and known users read
    /// again from the database, and a new epoch if any client was told of an event the
    /// database does not hold: their cursors would otherwise name events that will be
    /// numbered again. Then the hub's last published seqs are read from the database: a
    /// renewed epoch starts the numbers over, and without a renewal, whatever the database
    /// holds beyond the hub's numbers was committed by a group that ended before publishing it
    /// (nothing else publishes), so it never will be: a resume must replay it, not wait for
    /// it. Stays due if any step fails.
    pub async fn reset(&mut self) -> anyhow::Result<()> {
        // What the hub has published is read below: groups handed over must be in it.
        self.publisher.drained().await;
        self.conn.reopen().await?;
        self.books.seqs.forget();
        self.books.known_users.clear();
        let conn = &mut self.conn.get();
        let mut lost = Vec::new();
        for (stream, published) in self.hub.published() {
            let held = events::current_seq(conn, &stream).await?;
            if held < published {
                lost.push((stream, held, published));
            }
        }
        if !lost.is_empty() {
            // Clients resync from the new epoch at once, even if it cannot be stored yet.
            let renewed = self.store.renew_epoch();
            tracing::error!(?lost, new_epoch = %renewed,
                "events were published that the database does not hold: renewing the epoch so every client resyncs");
        }
        // A renewal that could not be stored before is stored now.
        self.store.store_epoch(conn).await?;
        self.books.reset_due = false;
        let streams = events::all_streams(conn).await?;
        self.hub.reset_published(streams);
        tracing::info!("the writer was reset");
        Ok(())
    }
}
