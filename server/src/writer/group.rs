//! Group commit: the writer runs waiting commands together.
//!
//! The writer takes up to [`GROUP_MAX`] queued commands and runs them in ONE transaction, each
//! inside its own SAVEPOINT: a command that fails (or changes nothing) is rolled back to its
//! savepoint and answered with its own error, the others commit. After the commit the writer
//! puts every committed command's frames in an outbox in commit (= seq) order, grouping
//! consecutive frames for the same stream into one hub item (one socket write per subscriber
//! instead of one per command), with the callers' answers, and hands it to the publish task
//! (`publish`).
//!
//! Under load this amortises the transaction's BEGIN/COMMIT and, more importantly, the fan-out:
//! a subscriber receives a group's events in one write. A lone command runs exactly as before
//! (no savepoint, one transaction).
//!
//! [`GROUP_MAX`]: super::task::GROUP_MAX
use std::collections::VecDeque;

use tokio::sync::oneshot;

use super::append::Numbering;
use super::apply::{apply, Applied, Pipeline};
use super::change::Committed;
use super::command::WriteCommand;
use super::publish::Outbox;
use super::queue::Job;
use super::task::{Books, WriterTask};
use super::write_behind::WriteBehind;
use crate::config::AuthMode;
use crate::error::{AppError, AppResult};
use crate::follow;
use crate::store::pipeline::{lock_streams, raw, stream_key, NEXT, UNDO_LAST, UNDO_NEXT};
use crate::store::{events, members, queries, Backend, Store, Tx};
use pm_shared::domain::limits::ValidationLimits;

impl Books {
    /// What one command's [`apply`] may read and update, for the length of that call.
    fn pipeline<'a>(
        &'a mut self,
        epoch: &'a str,
        auth: AuthMode,
        limits: &'a ValidationLimits,
    ) -> Pipeline<'a> {
        Pipeline {
            numbering: Numbering {
                seqs: &mut self.seqs,
                epoch,
            },
            auth,
            limits,
            known_users: &self.known_users,
        }
    }
}

/// One transaction for `jobs`, then publish, then answer.
impl WriterTask {
    pub(super) async fn run_group<C: WriteCommand>(
        &mut self,
        jobs: Vec<Job<C>>,
        outbox: &mut Outbox,
    ) {
        let WriterTask {
            conn,
            books,
            store,
            auth,
            limits,
            ..
        } = self;
        let epoch = store.epoch();
        let many = jobs.len() > 1;
        // Several servers may write to the database (see `follow`).
        let shared_database = conn.backend() == Backend::Postgres;
        let total = jobs.len();
        let mut behind = WriteBehind::default();
        // Decided once per job: which may wait, and so whose items the group reads up front.
        let jobs: Vec<(Job<C>, bool)> = jobs
            .into_iter()
            .map(|job| {
                // Nothing is written before its writes, so its user row must exist already.
                let waits = job.command.waits_behind().is_some()
                    && books.known_users.contains(&job.actor.user_id);
                (job, waits)
            })
            .collect();
        // The items the group's updates will read, in one round trip instead of one each.
        let ids: Vec<&str> = jobs
            .iter()
            .filter(|(_, waits)| *waits)
            .filter_map(|(job, _)| job.command.waits_behind())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        // A group opens its first command's savepoint in the round trip of its BEGIN, and on
        // SQLite reads its items in that round trip too.
        let mut tx = if !shared_database {
            match conn.begin_reading(many, &ids).await {
                Ok((tx, items)) => {
                    behind.items.read(items);
                    tx
                }
                Err(e) => {
                    books.fail(store, &e);
                    let jobs = jobs.into_iter().map(|(j, _)| j.done);
                    return fail(outbox, jobs, Failure::of_sqlx(&e), &e);
                }
            }
        } else {
            let mut tx = match conn.begin(many).await {
                Ok(tx) => tx,
                Err(e) => {
                    books.fail(store, &e);
                    let jobs = jobs.into_iter().map(|(j, _)| j.done);
                    return fail(outbox, jobs, Failure::of_sqlx(&e), &e);
                }
            };
            // Servers sharing the database: lock what the group may write to before any of
            // its commands reads anything (see `Scope`). Another server may have written since
            // this group's last one, so the seqs the writer remembers are void: while the group
            // holds its streams' locks nobody else numbers in them, so what it reads now stays
            // true until its commit.
            books.seqs.forget();
            let only_jobs = jobs.iter().map(|(j, _)| j);
            if let Err(e) = lock_scopes(&mut tx, only_jobs).await {
                let failure = Failure::of_app(&e);
                books.fail(store, &e);
                drop(tx);
                let jobs = jobs.into_iter().map(|(j, _)| j.done);
                return fail(outbox, jobs, failure, &e);
            }
            match queries::work_items_with_lists(&mut tx.conn(), &ids).await {
                Ok(items) => behind.items.read(items),
                Err(e) => {
                    return abandon(
                        outbox,
                        books,
                        store,
                        tx,
                        Vec::new(),
                        None,
                        jobs.into(),
                        Failure::of_sqlx(&e),
                        &e,
                    )
                }
            }
            tx
        };
        let mut pending: VecDeque<(Job<C>, bool)> = jobs.into();
        let mut results: Vec<(oneshot::Sender<AppResult<Committed>>, AppResult<Applied>)> =
            Vec::with_capacity(total);
        while let Some((job, waits)) = pending.pop_front() {
            let last = results.len() + 1 == total;
            if waits {
                // Writes nothing now, so it needs no savepoint step (see `write_behind`).
                let result = apply(
                    &mut books.pipeline(&epoch, *auth, limits),
                    &mut tx.conn(),
                    &job.actor,
                    job.request_id.as_deref(),
                    job.command,
                    None,
                    Some(&mut behind),
                )
                .await
                .map(|applied| applied.with_origin(job.origin));
                if let Err(e) = result.as_ref().map(|_| ()) {
                    if e.is_database_failure() {
                        // Its own refusal leaves nothing to undo, but the database failing may
                        // have rolled the whole transaction back.
                        let failure = Failure::of_app(e);
                        return abandon(
                            outbox,
                            books,
                            store,
                            tx,
                            results,
                            Some(job.done),
                            pending,
                            failure,
                            e,
                        );
                    }
                }
                results.push((job.done, result));
                continue;
            }
            // Any other command sees the database as if every earlier command had run alone.
            if !behind.is_empty() {
                if shared_database {
                    // It takes its seq from the stream's counter row (see `append`), past the
                    // ones the waiting writes counted in memory.
                    books.seqs.forget();
                }
                if let Err(e) = behind.flush(&mut tx.conn(), many.then_some(NEXT)).await {
                    let failure = Failure::of_sqlx(&e);
                    return abandon(
                        outbox,
                        books,
                        store,
                        tx,
                        results,
                        Some(job.done),
                        pending,
                        failure,
                        &e,
                    );
                }
            }
            behind.items.clear();
            // A command that succeeds takes the step to the next savepoint in the round trip of
            // its own last statement.
            let then = (many && !last).then_some(NEXT);
            let result = apply(
                &mut books.pipeline(&epoch, *auth, limits),
                &mut tx.conn(),
                &job.actor,
                job.request_id.as_deref(),
                job.command,
                then,
                None,
            )
            .await
            .map(|applied| applied.with_origin(job.origin));
            let keep = matches!(&result, Ok(applied) if applied.keep);
            let stepped = matches!(&result, Ok(applied) if applied.advanced_savepoint);
            if let Err(e) = &result {
                // A command that failed after numbering an event (a batch's later change, say)
                // leaves the counter ahead of what its rollback returns to.
                books.seqs.forget();
                if e.is_database_failure() {
                    // SQLite may have rolled the whole transaction back (it does on a full disk):
                    // the commands before this one would be lost while their group commits.
                    let failure = Failure::of_app(e);
                    return abandon(
                        outbox,
                        books,
                        store,
                        tx,
                        results,
                        Some(job.done),
                        pending,
                        failure,
                        e,
                    );
                }
            }
            if many {
                // Keep or undo this command's writes, and open the next command's savepoint; the
                // last kept command's savepoint is released by COMMIT.
                let step = match (keep, last) {
                    (true, _) if stepped => None,
                    (true, false) => Some(NEXT),
                    (true, true) => None,
                    (false, false) => Some(UNDO_NEXT),
                    (false, true) => Some(UNDO_LAST),
                };
                if let Some(sql) = step {
                    if let Err(e) = raw(&mut tx.conn(), sql).await {
                        let failure = Failure::of_sqlx(&e);
                        return abandon(
                            outbox,
                            books,
                            store,
                            tx,
                            results,
                            Some(job.done),
                            pending,
                            failure,
                            &e,
                        );
                    }
                }
            }
            results.push((job.done, result));
        }
        // The group's COMMIT goes with its last writes when they wait here (SQLite's writer):
        // only kept updates wait, so the group commits.
        let commit_now = tx.may_commit_in_a_statement() && !behind.is_empty();
        if let Err(e) = behind
            .flush(&mut tx.conn(), commit_now.then_some("COMMIT"))
            .await
        {
            let failure = Failure::of_sqlx(&e);
            return abandon::<C>(
                outbox,
                books,
                store,
                tx,
                results,
                None,
                VecDeque::new(),
                failure,
                &e,
            );
        }

        let kept = results
            .iter()
            .any(|(_, r)| matches!(r, Ok(applied) if applied.keep));
        // Servers sharing the database hear of the group at its commit (see `follow`).
        if kept && shared_database {
            let mut streams: Vec<(&str, u64)> = Vec::new();
            for (_, result) in &results {
                let Ok(applied) = result else { continue };
                for o in applied.outgoing.iter().filter(|_| applied.keep) {
                    match streams.iter_mut().find(|(s, _)| *s == o.stream) {
                        Some((_, seq)) => *seq = (*seq).max(o.last_seq),
                        None => streams.push((&o.stream, o.last_seq)),
                    }
                }
            }
            let hint = follow::hint(store.node(), &streams);
            let notified = match tx.conn().postgres() {
                Some(pg) => events::notify(pg, follow::CHANNEL, &hint).await,
                None => Ok(()),
            };
            if let Err(e) = notified {
                let failure = Failure::of_sqlx(&e);
                return abandon::<C>(
                    outbox,
                    books,
                    store,
                    tx,
                    results,
                    None,
                    VecDeque::new(),
                    failure,
                    &e,
                );
            }
        }
        let ended = if commit_now {
            debug_assert!(kept, "a waiting update is kept");
            tx.committed_by_last_statement();
            Ok(())
        } else if kept {
            tx.commit().await
        } else {
            tx.rollback().await
        };
        if let Err(e) = ended {
            // Nothing was committed: every kept command fails; the others' answers stand. A
            // failed COMMIT or ROLLBACK leaves the connection in a state nobody can vouch for.
            books.fail(store, &e);
            let failure = Failure::of_sqlx(&e);
            for (done, result) in results {
                outbox.answer(
                    done,
                    match result {
                        Ok(applied) if applied.keep => Err(failure.error()),
                        other => other.map(|a| a.committed),
                    },
                );
            }
            return;
        }
        if kept {
            // Only now may anyone hear of these events: the database holds them.
            store.note_write_success();
        }

        // Still holding the writer: events reach the outbox, and so the hub, in commit (= seq)
        // order.
        for (done, result) in results {
            let mut applied = match result {
                Ok(applied) if applied.keep => applied,
                other => {
                    outbox.answer(done, other.map(|a| a.committed));
                    continue;
                }
            };
            if let Some(user) = applied.new_user.take() {
                books.known_users.note(&user);
            }
            let membership = applied.membership.take();
            if let Some(change) = membership.as_ref().filter(|m| !m.removed) {
                // A new member must be on the list before the event that admits them goes out.
                outbox
                    .refresh_members(&mut conn.get(), &change.project_id)
                    .await;
            }
            outbox.extend(applied.outgoing.drain(..));
            if let Some(change) = membership.as_ref().filter(|m| m.removed) {
                // A removed member still gets the event that removes them, and nothing after it.
                outbox
                    .refresh_members(&mut conn.get(), &change.project_id)
                    .await;
            }
            outbox.answer_after_events(done, applied.committed, applied.origin);
        }
    }
}

/// Takes the locks of every stream the group's commands may write to, in key order.
async fn lock_scopes<'j, C: WriteCommand + 'j>(
    tx: &mut Tx<'_>,
    jobs: impl Iterator<Item = &'j Job<C>>,
) -> AppResult<()> {
    let mut conn = tx.conn();
    let Some(pg) = conn.postgres() else {
        return Ok(()); // SQLite's one writer runs one group at a time: nothing to lock
    };
    let mut everything = false;
    let mut streams = Vec::new();
    let mut rows = Vec::new();
    let mut timers = Vec::new();
    for job in jobs {
        let scope = job.command.scope(&job.actor);
        everything |= scope.everything;
        streams.extend(scope.streams);
        rows.extend(scope.rows);
        timers.extend(scope.timer_of);
    }
    // The rows' projects, for the whole group in one round trip.
    if !rows.is_empty() || !timers.is_empty() {
        streams.extend(members::projects_of_rows(pg, &rows, &timers).await?);
    }
    let mut keys: Vec<i64> = streams.iter().map(|s| stream_key(s)).collect();
    keys.sort_unstable();
    keys.dedup();
    lock_streams(pg, everything, &keys).await?;
    Ok(())
}

/// Why a group failed, told to every caller it fails (the cause itself goes to the log).
#[derive(Debug, Clone, Copy)]
pub(super) enum Failure {
    /// The disk or the database's size limit is full: STORAGE_FULL.
    StorageFull,
    /// The database cannot be reached: DATABASE_UNAVAILABLE.
    Unavailable,
    Database,
}

impl Failure {
    pub(super) fn of_sqlx(e: &sqlx::Error) -> Failure {
        if crate::error::is_storage_full(e) {
            Failure::StorageFull
        } else if crate::error::is_unreachable(e) {
            Failure::Unavailable
        } else {
            Failure::Database
        }
    }

    pub(super) fn of_app(e: &AppError) -> Failure {
        match e {
            AppError::StorageFull => Failure::StorageFull,
            AppError::Unavailable => Failure::Unavailable,
            _ => Failure::Database,
        }
    }

    fn error(self) -> AppError {
        match self {
            Failure::StorageFull => AppError::StorageFull,
            Failure::Unavailable => AppError::Unavailable,
            Failure::Database => {
                AppError::Internal(anyhow::anyhow!("a group of writes failed in the database"))
            }
        }
    }
}

/// A step of the group failed and its transaction is in an unknown state: it is rolled back
/// (dropped), the seqs it took are forgotten, and every caller not answered yet (those already
/// applied, the one being applied, those still queued) gets the error.
#[allow(clippy::too_many_arguments)]
fn abandon<C>(
    outbox: &mut Outbox,
    books: &mut Books,
    store: &Store,
    tx: Tx<'_>,
    applied: Vec<(oneshot::Sender<AppResult<Committed>>, AppResult<Applied>)>,
    current: Option<oneshot::Sender<AppResult<Committed>>>,
    queued: VecDeque<(Job<C>, bool)>,
    failure: Failure,
    cause: &dyn std::fmt::Display,
) {
    drop(tx);
    books.fail(store, cause);
    let applied = applied.into_iter().map(|(done, _)| done);
    let queued = queued.into_iter().map(|(j, _)| j.done);
    fail(outbox, applied.chain(current).chain(queued), failure, cause);
}

/// Every one of `waiting` is answered with `failure` (after whatever the outbox holds).
pub(super) fn fail(
    outbox: &mut Outbox,
    waiting: impl Iterator<Item = oneshot::Sender<AppResult<Committed>>>,
    failure: Failure,
    cause: &dyn std::fmt::Display,
) {
    tracing::error!(error = %cause, "a group of writes failed");
    for done in waiting {
        outbox.answer(done, Err(failure.error()));
    }
}
