//! Group commit: the single writer runs waiting commands together.
//!
//! [`super::execute`] queues its command and waits. One task at a time (started when the queue
//! gets work, gone when it is empty) takes the writer, takes up to [`GROUP_MAX`] queued
//! commands and runs them in ONE transaction, each inside its own SAVEPOINT: a command that
//! fails (or changes nothing) is rolled back to its savepoint and answered with its own error,
//! the others commit. After the commit, still holding the writer, the task publishes every
//! committed command's frames in commit (= seq) order, grouping consecutive frames for the same
//! stream into one hub item (one socket write per subscriber instead of one per command), and
//! then answers the callers.
//!
//! Under load this amortises the transaction's BEGIN/COMMIT and, more importantly, the fan-out:
//! a subscriber receives a group's events in one write. A lone command runs exactly as before
//! (no savepoint, one transaction).
//!
//! A caller's deadline (`request_timeout_secs`) bounds how long it waits for its command to
//! START; a command the writer has taken always runs to the end, so a deadline never leaves a
//! write half-done or applied after its caller was told it timed out. The task is spawned, so a
//! caller that goes away (a closed socket) cannot interrupt a transaction others depend on.
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use sqlx::{Connection, SqliteConnection};
use tokio::sync::oneshot;

use super::write_behind::WriteBehind;
use super::{apply, Actor, Applied, Command, Committed, Outgoing};
use crate::app::SharedState;
use crate::error::{AppError, AppResult};
use crate::store::queries;

/// Most commands committed in one transaction.
pub const GROUP_MAX: usize = 64;

/// A group's transaction with the savepoint around its first command (the name is reused:
/// RELEASE pops it).
const BEGIN_WITH_SAVEPOINT: &str = "BEGIN; SAVEPOINT pm_cmd";
pub(crate) const NEXT: &str = "RELEASE pm_cmd; SAVEPOINT pm_cmd";
const UNDO_NEXT: &str = "ROLLBACK TO pm_cmd; RELEASE pm_cmd; SAVEPOINT pm_cmd";
const UNDO_LAST: &str = "ROLLBACK TO pm_cmd; RELEASE pm_cmd";

/// Commands waiting for the writer.
#[derive(Default)]
pub struct WriteQueue {
    inner: Mutex<Queue>,
    /// Transactions run and commands run in them, since start.
    groups: AtomicU64,
    commands: AtomicU64,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// A task is running the queue.
    running: bool,
    next_id: u64,
}

struct Job {
    id: u64,
    actor: Actor,
    request_id: Option<String>,
    command: Command,
    done: oneshot::Sender<AppResult<Committed>>,
}

impl WriteQueue {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a command; starts the task that runs the queue when none is running.
    fn push(
        &self,
        state: &SharedState,
        actor: &Actor,
        request_id: Option<&str>,
        command: Command,
    ) -> (u64, oneshot::Receiver<AppResult<Committed>>) {
        let (done, result) = oneshot::channel();
        let mut queue = self.lock();
        let id = queue.next_id;
        queue.next_id += 1;
        queue.jobs.push_back(Job {
            id,
            actor: actor.clone(),
            request_id: request_id.map(str::to_string),
            command,
            done,
        });
        if !queue.running {
            queue.running = true;
            tokio::spawn(run(state.clone()));
        }
        (id, result)
    }

    /// Takes a command back if the writer has not taken it yet.
    fn withdraw(&self, id: u64) -> bool {
        let mut queue = self.lock();
        match queue.jobs.iter().position(|j| j.id == id) {
            Some(at) => {
                queue.jobs.remove(at);
                true
            }
            None => false,
        }
    }

    /// The next group; when there is none, the running task is done (decided under the same
    /// lock a new command takes, so no command is ever left without a task).
    fn take(&self) -> Vec<Job> {
        let mut queue = self.lock();
        if queue.jobs.is_empty() {
            queue.running = false;
            return Vec::new();
        }
        let n = queue.jobs.len().min(GROUP_MAX);
        self.groups.fetch_add(1, Ordering::Relaxed);
        self.commands.fetch_add(n as u64, Ordering::Relaxed);
        queue.jobs.drain(..n).collect()
    }

    /// Commands waiting now.
    pub fn waiting(&self) -> usize {
        self.lock().jobs.len()
    }

    /// (transactions, commands) run since start: their ratio is the average group size.
    pub fn totals(&self) -> (u64, u64) {
        (
            self.groups.load(Ordering::Relaxed),
            self.commands.load(Ordering::Relaxed),
        )
    }
}

/// A command in the writer's queue. Commands run in the order they were queued, so a client
/// may queue several before the first is answered (pipelining) and still get them applied in
/// its order.
pub struct Pending {
    state: SharedState,
    id: u64,
    result: oneshot::Receiver<AppResult<Committed>>,
    deadline: tokio::time::Instant,
}

/// Queues `command` now (its place in the order is taken before this returns).
pub fn enqueue(
    state: &SharedState,
    actor: &Actor,
    request_id: Option<&str>,
    command: Command,
) -> Pending {
    let (id, result) = state.writes.push(state, actor, request_id, command);
    let wait = std::time::Duration::from_secs(state.config.request_timeout_secs.max(1));
    Pending {
        state: state.clone(),
        id,
        result,
        deadline: tokio::time::Instant::now() + wait,
    }
}

impl Pending {
    /// Waits for the outcome. The deadline bounds only the wait for the command to start: a
    /// command the writer has taken runs to the end (see the module documentation).
    pub async fn outcome(mut self) -> AppResult<Committed> {
        let outcome = match tokio::time::timeout_at(self.deadline, &mut self.result).await {
            Ok(outcome) => outcome,
            Err(_) if self.state.writes.withdraw(self.id) => return Err(AppError::Timeout),
            Err(_) => self.result.await,
        };
        outcome.unwrap_or_else(|_| {
            Err(AppError::Internal(anyhow::anyhow!(
                "the write was abandoned before it finished"
            )))
        })
    }
}

/// Runs the queue until it is empty.
async fn run(state: SharedState) {
    let mut guard = Running {
        state: state.clone(),
        finished: false,
    };
    loop {
        let mut writer = state.store.writer().await;
        let reset = if state.store.writer_suspect() {
            reset(&state, &mut writer).await
        } else {
            Ok(())
        };
        let jobs = state.writes.take();
        if jobs.is_empty() {
            guard.finished = true;
            return;
        }
        match reset {
            Ok(()) => run_group(&state, &mut writer, jobs).await,
            // Still failing (a disk that is still full, say): these writes fail now rather
            // than run on a connection nobody can vouch for; the next group tries again.
            Err(e) => {
                tracing::error!(error = %e, "the writer could not be reset");
                let failure = match e.downcast_ref::<sqlx::Error>() {
                    Some(e) => Failure::of_sqlx(e),
                    None => Failure::Database,
                };
                fail(jobs.into_iter().map(|j| j.done), failure, &e);
            }
        }
    }
}

/// Resets the store's writer (`Store::reset_writer`), then the hub's last published seqs
/// from the database. A renewed epoch starts the numbers over from what the database holds,
/// which the hub's (the old epoch's) may exceed; and without a renewal, whatever the database
/// holds beyond the hub's numbers was committed by a group that ended before publishing it
/// (nothing else publishes while the writer is held here), so it never will be: a resume must
/// replay it, not wait for it.
async fn reset(state: &SharedState, writer: &mut SqliteConnection) -> anyhow::Result<()> {
    state
        .store
        .reset_writer(writer, state.hub.published())
        .await?;
    let streams = crate::store::events::all_streams(writer).await?;
    state.hub.reset_published(streams);
    Ok(())
}

/// Hands the queue on if the running task ends early (a panic in a command, or shutdown).
struct Running {
    state: SharedState,
    finished: bool,
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // A group was cut short: its transaction rolled back, and the seqs it took with it;
        // the connection it left is not trusted with the next one.
        self.state.store.seqs.forget();
        self.state
            .store
            .note_write_failure(&"a group of writes was cut short");
        let mut queue = self.state.writes.lock();
        queue.running = false;
        if !queue.jobs.is_empty() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                queue.running = true;
                runtime.spawn(run(self.state.clone()));
            }
        }
    }
}

/// One transaction for `jobs`, then publish, then answer.
async fn run_group(state: &SharedState, writer: &mut SqliteConnection, jobs: Vec<Job>) {
    let many = jobs.len() > 1;
    // A group opens its first command's savepoint in the round trip of its BEGIN.
    let mut tx = match if many {
        writer.begin_with(BEGIN_WITH_SAVEPOINT).await
    } else {
        writer.begin().await
    } {
        Ok(tx) => tx,
        Err(e) => {
            state.store.note_write_failure(&e);
            return fail(jobs.into_iter().map(|j| j.done), Failure::of_sqlx(&e), &e);
        }
    };
    let total = jobs.len();
    let mut behind = WriteBehind::default();
    // Decided once per job: which may wait, and so whose items the group reads up front.
    let jobs: Vec<(Job, bool)> = jobs
        .into_iter()
        .map(|job| {
            let waits = may_write_behind(state, &job);
            (job, waits)
        })
        .collect();
    // The items the group's updates will read, in one round trip instead of one each.
    let ids: Vec<&str> = jobs
        .iter()
        .filter_map(|(job, waits)| match &job.command {
            Command::UpdateWorkItem(r) if *waits => Some(r.work_item_id.as_str()),
            _ => None,
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    match queries::work_items_with_lists(&mut tx, &ids).await {
        Ok(items) => behind.items.read(items),
        Err(e) => {
            return abandon(
                state,
                tx,
                Vec::new(),
                None,
                jobs.into(),
                Failure::of_sqlx(&e),
                &e,
            )
        }
    }
    let mut pending: VecDeque<(Job, bool)> = jobs.into();
    let mut results: Vec<(oneshot::Sender<AppResult<Committed>>, AppResult<Applied>)> =
        Vec::with_capacity(total);
    while let Some((job, waits)) = pending.pop_front() {
        let last = results.len() + 1 == total;
        if waits {
            // Writes nothing now, so it needs no savepoint step (see `write_behind`).
            let result = apply(
                state,
                &mut tx,
                &job.actor,
                job.request_id.as_deref(),
                job.command,
                None,
                Some(&mut behind),
            )
            .await;
            if let Err(e) = result.as_ref().map(|_| ()) {
                if e.is_database_failure() {
                    // Its own refusal leaves nothing to undo, but the database failing may
                    // have rolled the whole transaction back.
                    let failure = Failure::of_app(e);
                    return abandon(state, tx, results, Some(job.done), pending, failure, e);
                }
            }
            results.push((job.done, result));
            continue;
        }
        // Any other command sees the database as if every earlier command had run alone.
        if !behind.is_empty() {
            if let Err(e) = behind.flush(&mut tx, many.then_some(NEXT)).await {
                let failure = Failure::of_sqlx(&e);
                return abandon(state, tx, results, Some(job.done), pending, failure, &e);
            }
        }
        behind.items.clear();
        // A command that succeeds takes the step to the next savepoint in the round trip of
        // its own last statement.
        let then = (many && !last).then_some(NEXT);
        let result = apply(
            state,
            &mut tx,
            &job.actor,
            job.request_id.as_deref(),
            job.command,
            then,
            None,
        )
        .await;
        let keep = matches!(&result, Ok(applied) if applied.keep);
        let stepped = matches!(&result, Ok(applied) if applied.advanced_savepoint);
        if let Err(e) = &result {
            // A command that failed after numbering an event (a batch's later change, say)
            // leaves the counter ahead of what its rollback returns to.
            state.store.seqs.forget();
            if e.is_database_failure() {
                // SQLite may have rolled the whole transaction back (it does on a full disk):
                // the commands before this one would be lost while their group commits.
                let failure = Failure::of_app(e);
                return abandon(state, tx, results, Some(job.done), pending, failure, e);
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
                if let Err(e) = raw(&mut tx, sql).await {
                    let failure = Failure::of_sqlx(&e);
                    return abandon(state, tx, results, Some(job.done), pending, failure, &e);
                }
            }
        }
        results.push((job.done, result));
    }
    if let Err(e) = behind.flush(&mut tx, None).await {
        let failure = Failure::of_sqlx(&e);
        return abandon(state, tx, results, None, VecDeque::new(), failure, &e);
    }

    let kept = results
        .iter()
        .any(|(_, r)| matches!(r, Ok(applied) if applied.keep));
    let ended = if kept {
        tx.commit().await
    } else {
        tx.rollback().await
    };
    if let Err(e) = ended {
        // Nothing was committed: every kept command fails; the others' answers stand. A
        // failed COMMIT or ROLLBACK leaves the connection in a state nobody can vouch for.
        state.store.seqs.forget();
        state.store.note_write_failure(&e);
        let failure = Failure::of_sqlx(&e);
        for (done, result) in results {
            let _ = done.send(match result {
                Ok(applied) if applied.keep => Err(failure.error()),
                other => other.map(|a| a.committed),
            });
        }
        return;
    }
    if kept {
        // Only now may anyone hear of these events: the database holds them.
        state.store.note_write_success();
    }

    // Still holding the writer: events reach the hub in commit (= seq) order.
    let mut publisher = Publisher::default();
    for (_, result) in &mut results {
        let Ok(applied) = result else { continue };
        if !applied.keep {
            continue;
        }
        if let Some(user) = applied.new_user.take() {
            state.store.note_known_user(&user);
        }
        let membership = applied.membership.take();
        if let Some(change) = membership.as_ref().filter(|m| !m.removed) {
            // A new member must be on the list before the event that admits them goes out.
            publisher.flush(state);
            refresh_members(state, writer, &change.project_id).await;
        }
        publisher.extend(applied.outgoing.drain(..));
        if let Some(change) = membership.as_ref().filter(|m| m.removed) {
            // A removed member still gets the event that removes them, and nothing after it.
            publisher.flush(state);
            refresh_members(state, writer, &change.project_id).await;
        }
    }
    publisher.flush(state);
    for (done, result) in results {
        let _ = done.send(result.map(|a| a.committed));
    }
}

/// Whether a job's writes may wait in the group's [`WriteBehind`]: an update of a work item
/// that does not ask to change its parent, by a user whose row exists (nothing is written
/// before its writes).
fn may_write_behind(state: &SharedState, job: &Job) -> bool {
    matches!(&job.command, Command::UpdateWorkItem(r) if !r.update_parent)
        && state.store.is_known_user(&job.actor.user_id)
}

/// Frames waiting to go to the hub: consecutive frames for the same streams travel as one hub
/// item, so a subscriber gets a group's events in one socket write.
#[derive(Default)]
struct Publisher {
    pending: Vec<Outgoing>,
}

impl Publisher {
    fn extend(&mut self, outgoing: impl Iterator<Item = Outgoing>) {
        for o in outgoing {
            match self.pending.last_mut() {
                Some(p) if p.stream == o.stream && p.also == o.also => {
                    p.frames.extend(o.frames);
                    p.last_seq = p.last_seq.max(o.last_seq);
                }
                _ => self.pending.push(o),
            }
        }
    }

    fn flush(&mut self, state: &SharedState) {
        for o in self.pending.drain(..) {
            state
                .hub
                .publish(&o.stream, o.also.as_deref(), &o.frames, o.last_seq);
        }
    }
}

async fn refresh_members(state: &SharedState, conn: &mut SqliteConnection, project_id: &str) {
    match crate::access::members_of(conn, project_id).await {
        Ok(members) => state.hub.set_members(project_id, members),
        Err(e) => tracing::error!(error = %e, "could not refresh project members"),
    }
}

/// A constant statement (or several) without parameters, in one round trip. (Not
/// `sqlx::raw_sql`: rustc cannot prove its future `Send` for the spawned task.)
async fn raw(conn: &mut SqliteConnection, sql: &'static str) -> sqlx::Result<()> {
    sqlx::query(sql).execute(conn).await.map(|_| ())
}

/// Why a group failed, told to every caller it fails (the cause itself goes to the log).
#[derive(Debug, Clone, Copy)]
enum Failure {
    /// The disk or the database's size limit is full: STORAGE_FULL.
    StorageFull,
    Database,
}

impl Failure {
    fn of_sqlx(e: &sqlx::Error) -> Failure {
        if crate::error::is_storage_full(e) {
            Failure::StorageFull
        } else {
            Failure::Database
        }
    }

    fn of_app(e: &AppError) -> Failure {
        match e {
            AppError::StorageFull => Failure::StorageFull,
            _ => Failure::Database,
        }
    }

    fn error(self) -> AppError {
        match self {
            Failure::StorageFull => AppError::StorageFull,
            Failure::Database => {
                AppError::Internal(anyhow::anyhow!("a group of writes failed in the database"))
            }
        }
    }
}

/// A step of the group failed and its transaction is in an unknown state: it is rolled back
/// (dropped), the seqs it took are forgotten, and every caller not answered yet (those already
/// applied, the one being applied, those still queued) gets the error.
fn abandon(
    state: &SharedState,
    tx: sqlx::Transaction<'_, sqlx::Sqlite>,
    applied: Vec<(oneshot::Sender<AppResult<Committed>>, AppResult<Applied>)>,
    current: Option<oneshot::Sender<AppResult<Committed>>>,
    queued: VecDeque<(Job, bool)>,
    failure: Failure,
    cause: &dyn std::fmt::Display,
) {
    drop(tx);
    state.store.seqs.forget();
    state.store.note_write_failure(cause);
    let applied = applied.into_iter().map(|(done, _)| done);
    let queued = queued.into_iter().map(|(j, _)| j.done);
    fail(applied.chain(current).chain(queued), failure, cause);
}

fn fail(
    waiting: impl Iterator<Item = oneshot::Sender<AppResult<Committed>>>,
    failure: Failure,
    cause: &dyn std::fmt::Display,
) {
    tracing::error!(error = %cause, "a group of writes failed");
    for done in waiting {
        let _ = done.send(Err(failure.error()));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use pm_shared::proto::{self, Payload, WebSocketMessage};
    use prost::Message as _;
    use tokio::sync::mpsc;

    use super::*;
    use crate::commands::execute;
    use crate::hub::{CutOff, Outbound, Subscriber};
    use crate::{AppState, Config};

    const USER: &str = "aaaaaaaa-0000-4000-8000-00000000000a";

    async fn server(configure: impl FnOnce(&mut Config)) -> (tempfile::TempDir, SharedState) {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::for_data_dir(dir.path());
        configure(&mut config);
        let state = AppState::open(config).await.unwrap();
        (dir, state)
    }

    fn actor() -> Actor {
        Actor {
            user_id: USER.into(),
        }
    }

    fn create_item(project_id: &str, title: &str) -> Command {
        Command::CreateWorkItem(proto::CreateWorkItemRequest {
            item_type: proto::WorkItemType::Task as i32,
            title: title.into(),
            project_id: project_id.into(),
            ..Default::default()
        })
    }

    fn retitle(item: &proto::WorkItem, version: i32, title: &str) -> Command {
        Command::UpdateWorkItem(proto::UpdateWorkItemRequest {
            work_item_id: item.id.clone(),
            expected_version: version,
            title: Some(title.into()),
            ..Default::default()
        })
    }

    async fn setup(state: &SharedState) -> (String, proto::WorkItem) {
        let project = new_project(state, "Group", "GC").await;
        let item = new_item(state, &project, "base").await;
        (project, item)
    }

    async fn new_project(state: &SharedState, title: &str, key: &str) -> String {
        let request = proto::CreateProjectRequest {
            title: title.into(),
            key: key.into(),
            description: None,
        };
        let created = execute(state, &actor(), None, Command::CreateProject(request))
            .await
            .unwrap();
        let Payload::ProjectCreated(p) = created.event else {
            panic!("{created:?}")
        };
        p.project.unwrap().id
    }

    async fn new_item(state: &SharedState, project: &str, title: &str) -> proto::WorkItem {
        let done = execute(state, &actor(), None, create_item(project, title))
            .await
            .unwrap();
        let Payload::WorkItemCreated(c) = done.event else {
            panic!("{done:?}")
        };
        c.work_item.unwrap()
    }

    /// A hub subscriber that records what reaches it.
    fn listen(state: &SharedState, stream: &str) -> mpsc::Receiver<Outbound> {
        let (tx, rx) = mpsc::channel(1024);
        let id = state.hub.register(Subscriber {
            user_id: USER.into(),
            queue: tx,
            queued_bytes: Default::default(),
            max_bytes: usize::MAX / 2,
            cut_off: Arc::new(CutOff::default()),
        });
        assert!(state.hub.subscribe(id, stream, Vec::new()));
        rx
    }

    /// Submits `command` from a task of its own (callers wait for the queue to grow before
    /// submitting the next, which fixes the order).
    async fn enqueue(
        state: &SharedState,
        request_id: Option<&str>,
        command: Command,
    ) -> tokio::task::JoinHandle<AppResult<Committed>> {
        enqueue_as(state, USER, request_id, command).await
    }

    async fn enqueue_as(
        state: &SharedState,
        user: &str,
        request_id: Option<&str>,
        command: Command,
    ) -> tokio::task::JoinHandle<AppResult<Committed>> {
        let (state, id) = (state.clone(), request_id.map(str::to_string));
        let actor = Actor {
            user_id: user.into(),
        };
        tokio::spawn(async move { execute(&state, &actor, id.as_deref(), command).await })
    }

    async fn user_rows(state: &SharedState, user: &str) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE id = ?")
            .bind(user)
            .fetch_one(&state.store.read)
            .await
            .unwrap()
    }

    async fn wait_for_queue(state: &SharedState, n: usize) {
        for _ in 0..500 {
            if state.writes.waiting() == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        panic!("queue never reached {n} (at {})", state.writes.waiting());
    }

    /// Runs `commands` as one group (the writer is held while they queue up, in order) and
    /// returns their outcomes in that order.
    async fn run_as_one_group(
        state: &SharedState,
        commands: Vec<Command>,
    ) -> Vec<AppResult<Committed>> {
        let writer = state.store.writer().await;
        let mut tasks = Vec::new();
        for (n, command) in commands.into_iter().enumerate() {
            tasks.push(enqueue(state, None, command).await);
            wait_for_queue(state, n + 1).await;
        }
        drop(writer);
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        results
    }

    fn frames(item: Outbound) -> Vec<WebSocketMessage> {
        crate::transport::ws::frames::payloads(item.bytes())
            .iter()
            .map(|b| WebSocketMessage::decode(b.as_ref()).unwrap())
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_group_commits_together_and_each_command_fails_alone() {
        let (_dir, state) = server(|_| {}).await;
        let (project, item) = setup(&state).await;
        let mut live = listen(&state, &project);
        let (groups_before, _) = state.writes.totals();

        // Hold the writer so that everything below queues up and runs as one group.
        let writer = state.store.writer().await;
        let mut tasks = Vec::new();
        let commands = vec![
            create_item(&project, "one"),                        // ok
            retitle(&item, 7, "wrong version"),                  // CONFLICT
            create_item(&project, "two"),                        // ok
            retitle(&item, 1, "base"),                           // unchanged: no event
            create_item(&uuid::Uuid::new_v4().to_string(), "x"), // NOT_FOUND
            retitle(&item, 1, "renamed"),                        // ok
            create_item(&project, ""),                           // invalid title
        ];
        // Two users the database has not seen: one whose command fails (its user row goes
        // with the rest of its savepoint) and one whose command succeeds.
        let (failing_user, new_user) = (
            "bbbbbbbb-0000-4000-8000-00000000000b",
            "cccccccc-0000-4000-8000-00000000000c",
        );
        for (n, command) in commands.into_iter().enumerate() {
            let user = match n {
                4 => failing_user,
                2 => new_user,
                _ => USER,
            };
            tasks.push(enqueue_as(&state, user, None, command).await);
            wait_for_queue(&state, n + 1).await;
        }
        drop(writer);
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }

        // The project's stream: creating "base" was its first event.
        let base = 2;
        let seqs: Vec<Option<u64>> = results
            .iter()
            .map(|r| r.as_ref().ok().map(|c| c.seq))
            .collect();
        assert_eq!(
            seqs,
            [
                Some(base),
                None,
                Some(base + 1),
                Some(0),
                None,
                Some(base + 2),
                None
            ],
            "{results:?}"
        );
        assert!(matches!(results[1], Err(AppError::VersionConflict { .. })));
        assert!(matches!(results[4], Err(AppError::NotFound(_))));
        assert!(results[6].is_err());
        assert_eq!(
            state.writes.totals().0,
            groups_before + 1,
            "one transaction"
        );

        // The group's three events reached the subscriber as ONE item, in seq order, each
        // after its ActivityLogCreated.
        let item_frames = frames(live.try_recv().expect("the group's frames"));
        assert!(live.try_recv().is_err(), "one hub item for the whole group");
        let kinds: Vec<(u64, bool)> = item_frames
            .iter()
            .map(|m| {
                (
                    m.seq,
                    matches!(m.payload, Some(Payload::ActivityLogCreated(_))),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [
                (0, true),
                (base, false),
                (0, true),
                (base + 1, false),
                (0, true),
                (base + 2, false)
            ]
        );

        // The database holds exactly the kept writes.
        let snap =
            crate::reads::work_items(&state.store, &crate::access::Viewer::system(), &project)
                .await
                .unwrap();
        assert_eq!(snap.seq, base + 2);
        let mut titles: Vec<&str> = snap.items.iter().map(|i| i.title.as_str()).collect();
        titles.sort_unstable();
        assert_eq!(titles, ["one", "renamed", "two"]);
        let renamed = snap.items.iter().find(|i| i.id == item.id).unwrap();
        assert_eq!(renamed.version, 2, "the failed update left no trace");
        assert_eq!(user_rows(&state, failing_user).await, 0, "rolled back");
        assert_eq!(user_rows(&state, new_user).await, 1);
        assert!(state.store.is_known_user(new_user));
        assert!(!state.store.is_known_user(failing_user));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_retried_create_in_the_same_group_is_answered_once() {
        let (_dir, state) = server(|_| {}).await;
        let (project, _) = setup(&state).await;
        let writer = state.store.writer().await;
        let first = enqueue(&state, Some("m-1"), create_item(&project, "once")).await;
        wait_for_queue(&state, 1).await;
        let again = enqueue(&state, Some("m-1"), create_item(&project, "once")).await;
        wait_for_queue(&state, 2).await;
        drop(writer);
        let (a, b) = (first.await.unwrap().unwrap(), again.await.unwrap().unwrap());
        assert_eq!(a.seq, b.seq);
        let snap =
            crate::reads::work_items(&state.store, &crate::access::Viewer::system(), &project)
                .await
                .unwrap();
        assert_eq!(snap.items.iter().filter(|i| i.title == "once").count(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_command_that_times_out_waiting_never_runs() {
        let (_dir, state) = server(|c| c.request_timeout_secs = 1).await;
        let (project, _) = setup(&state).await;
        let writer = state.store.writer().await;
        let late = enqueue(&state, None, create_item(&project, "late")).await;
        let outcome = late.await.unwrap();
        assert!(matches!(outcome, Err(AppError::Timeout)), "{outcome:?}");
        assert_eq!(state.writes.waiting(), 0, "withdrawn");
        drop(writer);
        // The queue still works, and the late command was not applied.
        execute(&state, &actor(), None, create_item(&project, "after"))
            .await
            .unwrap();
        let snap =
            crate::reads::work_items(&state.store, &crate::access::Viewer::system(), &project)
                .await
                .unwrap();
        assert!(snap.items.iter().all(|i| i.title != "late"));
        assert!(snap.items.iter().any(|i| i.title == "after"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_get_gap_free_seqs() {
        let (_dir, state) = server(|_| {}).await;
        let (project, _) = setup(&state).await;
        let mut live = listen(&state, &project);
        let mut tasks = Vec::new();
        for w in 0..8 {
            let (state, project) = (state.clone(), project.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0..25 {
                    execute(
                        &state,
                        &actor(),
                        None,
                        create_item(&project, &format!("{w}-{i}")),
                    )
                    .await
                    .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let mut seqs = Vec::new();
        while let Ok(item) = live.try_recv() {
            seqs.extend(frames(item).iter().map(|m| m.seq).filter(|&s| s > 0));
        }
        let expected: Vec<u64> = (2..2 + 200).collect();
        assert_eq!(seqs, expected);
    }

    /// Updates whose writes wait for one shared round trip (see `write_behind`) read each
    /// other's results, a command of another kind sees them in the database, a later failure
    /// cannot undo them, and every one is logged and announced with its own changes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiting_updates_read_each_others_writes_and_survive_later_failures() {
        let (_dir, state) = server(|_| {}).await;
        let (project, item) = setup(&state).await;
        let mut live = listen(&state, &project);
        let (groups_before, _) = state.writes.totals();
        let assignee = "dddddddd-0000-4000-8000-00000000000d";
        let update = |version: i32, f: &dyn Fn(&mut proto::UpdateWorkItemRequest)| {
            let mut r = proto::UpdateWorkItemRequest {
                work_item_id: item.id.clone(),
                expected_version: version,
                ..Default::default()
            };
            f(&mut r);
            Command::UpdateWorkItem(r)
        };
        let commands = vec![
            retitle(&item, 1, "a"),     // waits; v2
            retitle(&item, 2, "b"),     // reads v2 from the waiting writes; v3
            retitle(&item, 2, "stale"), // CONFLICT: the item is at v3
            update(3, &|r| {
                r.status = Some("in_progress".into());
                r.assignee_id = Some(assignee.into()); // a user the database has not seen
            }), // v4
            create_item(&project, ""),  // another kind, fails: must not undo the waiting writes
            update(4, &|r| {
                r.title = Some("c".into());
                r.update_parent = true; // runs now, so the database must be at v4
            }), // v5
            retitle(&item, 5, "d"),     // reads the database again; v6
        ];
        let results = run_as_one_group(&state, commands).await;
        let versions: Vec<Option<i32>> = results
            .iter()
            .map(|r| match r {
                Ok(Committed {
                    event: Payload::WorkItemUpdated(u),
                    ..
                }) => u.work_item.as_ref().map(|i| i.version),
                _ => None,
            })
            .collect();
        assert_eq!(
            versions,
            [Some(2), Some(3), None, Some(4), None, Some(5), Some(6)],
            "{results:?}"
        );
        assert!(matches!(
            results[2],
            Err(AppError::VersionConflict { current_version: 3 })
        ));
        assert!(
            matches!(results[4], Err(AppError::InvalidMessage(_))),
            "{:?}",
            results[4]
        );
        let seqs: Vec<u64> = results.iter().flatten().map(|c| c.seq).collect();
        // "base" was the project stream's first event.
        assert_eq!(seqs, [2, 3, 4, 5, 6]);
        assert_eq!(
            state.writes.totals().0,
            groups_before + 1,
            "one transaction"
        );

        // What was committed: the last state, the assignee's row, one activity row per update
        // with its own changes.
        let stored: (String, String, Option<String>, i64) = sqlx::query_as(
            "SELECT title, status, assignee_id, version FROM pm_work_items WHERE id = ?",
        )
        .bind(&item.id)
        .fetch_one(&state.store.read)
        .await
        .unwrap();
        assert_eq!(
            stored,
            ("d".into(), "in_progress".into(), Some(assignee.into()), 6)
        );
        assert_eq!(user_rows(&state, assignee).await, 1);
        let logged: Vec<String> = sqlx::query_scalar(
            "SELECT changes FROM pm_activity_log WHERE entity_id = ? AND action = 'updated' \
             ORDER BY rowid",
        )
        .bind(&item.id)
        .fetch_all(&state.store.read)
        .await
        .unwrap();
        assert_eq!(logged.len(), 5, "{logged:?}");
        let expected = [
            r#""old_value":"base","new_value":"a""#,
            r#""old_value":"a","new_value":"b""#,
            r#""new_value":"in_progress""#,
            r#""old_value":"b","new_value":"c""#,
            r#""old_value":"c","new_value":"d""#,
        ];
        for (row, change) in logged.iter().zip(expected) {
            assert!(row.contains(change), "{logged:?}");
        }
        let events: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM pm_events WHERE stream = ? AND seq >= 2")
                .bind(&project)
                .fetch_one(&state.store.read)
                .await
                .unwrap();
        assert_eq!(events, 5);

        // The subscriber got the five events, in seq order, with the versions above.
        let mut seen = Vec::new();
        while let Ok(item) = live.try_recv() {
            for m in frames(item) {
                if let Some(Payload::WorkItemUpdated(u)) = m.payload {
                    seen.push((m.seq, u.work_item.map(|i| i.version)));
                }
            }
        }
        assert_eq!(
            seen,
            [
                (2, Some(2)),
                (3, Some(3)),
                (4, Some(4)),
                (5, Some(5)),
                (6, Some(6))
            ]
        );
    }

    /// More waiting updates than one round trip takes, on two projects' streams: every chunk
    /// lands, each stream's seqs stay consecutive, and its last seq is stored, so the next
    /// write after the group continues from it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_waiting_updates_on_two_streams_keep_each_streams_seqs() {
        let (_dir, state) = server(|_| {}).await;
        let (first, a) = setup(&state).await;
        let second = new_project(&state, "Other", "OT").await;
        let b = new_item(&state, &second, "b").await;
        let (groups_before, _) = state.writes.totals();

        let commands = (0..40)
            .map(|n| {
                let item = if n % 2 == 0 { &a } else { &b };
                retitle(item, 1 + n / 2, &format!("t{n}"))
            })
            .collect();
        let mut seqs = (Vec::new(), Vec::new());
        for result in run_as_one_group(&state, commands).await {
            let c = result.unwrap();
            if c.stream == first {
                seqs.0.push(c.seq);
            } else {
                assert_eq!(c.stream, second);
                seqs.1.push(c.seq);
            }
        }
        assert_eq!(
            state.writes.totals().0,
            groups_before + 1,
            "one transaction"
        );
        // Each project's stream had one event (its item's creation) before.
        let expected: Vec<u64> = (2..22).collect();
        assert_eq!(seqs.0, expected);
        assert_eq!(seqs.1, expected);
        for project in [&first, &second] {
            let (last, events): (i64, i64) = sqlx::query_as(
                "SELECT (SELECT last_seq FROM pm_streams WHERE stream = ?1), \
                        (SELECT COUNT(*) FROM pm_events WHERE stream = ?1)",
            )
            .bind(project)
            .fetch_one(&state.store.read)
            .await
            .unwrap();
            assert_eq!((last, events), (21, 21), "{project}");
        }
        // The counter is forgotten and re-read from the database: the next write continues.
        state.store.seqs.forget();
        let next = execute(&state, &actor(), None, retitle(&a, 21, "after"))
            .await
            .unwrap();
        assert_eq!((next.stream.as_str(), next.seq), (first.as_str(), 22));
        let stored: (String, i64) =
            sqlx::query_as("SELECT title, version FROM pm_work_items WHERE id = ?")
                .bind(&b.id)
                .fetch_one(&state.store.read)
                .await
                .unwrap();
        assert_eq!(stored, ("t39".into(), 21));
    }

    /// The group's one read of its updates' items: each live item with its lists, nothing for
    /// an item that is gone (whose walks would still find its ancestors) or never was.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_group_reads_its_items_in_one_query() {
        let (_dir, state) = server(|_| {}).await;
        let (project, gone) = setup(&state).await;
        let create = |item_type: proto::WorkItemType, title: &str, parent: Option<&str>| {
            Command::CreateWorkItem(proto::CreateWorkItemRequest {
                item_type: item_type as i32,
                title: title.into(),
                project_id: project.clone(),
                parent_id: parent.map(str::to_string),
                ..Default::default()
            })
        };
        let mut ids = Vec::new();
        let mut parent: Option<String> = None;
        for (kind, title) in [
            (proto::WorkItemType::Epic, "epic"),
            (proto::WorkItemType::Story, "story"),
            (proto::WorkItemType::Task, "task"),
        ] {
            let done = execute(
                &state,
                &actor(),
                None,
                create(kind, title, parent.as_deref()),
            )
            .await
            .unwrap();
            let Payload::WorkItemCreated(c) = done.event else {
                panic!("{done:?}")
            };
            let id = c.work_item.unwrap().id;
            parent = Some(id.clone());
            ids.push(id);
        }
        let (epic, story, task) = (&ids[0], &ids[1], &ids[2]);
        // `gone` is deleted under the story, so its walk up still finds story and epic.
        execute(
            &state,
            &actor(),
            None,
            Command::UpdateWorkItem(proto::UpdateWorkItemRequest {
                work_item_id: gone.id.clone(),
                expected_version: 1,
                update_parent: true,
                parent_id: Some(story.clone()),
                ..Default::default()
            }),
        )
        .await
        .unwrap();
        execute(
            &state,
            &actor(),
            None,
            Command::DeleteWorkItem(proto::DeleteWorkItemRequest {
                work_item_id: gone.id.clone(),
            }),
        )
        .await
        .unwrap();

        let mut writer = state.store.writer().await;
        let missing = uuid::Uuid::new_v4().to_string();
        let read = queries::work_items_with_lists(
            &mut writer,
            &[
                task.as_str(),
                gone.id.as_str(),
                missing.as_str(),
                epic.as_str(),
            ],
        )
        .await
        .unwrap();
        let summary: Vec<(String, Vec<(i64, String)>)> = read
            .into_iter()
            .map(|(row, lists)| {
                (
                    row.title,
                    lists.into_iter().map(|(side, id, _)| (side, id)).collect(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "task".to_string(),
                    vec![(0, story.clone()), (0, epic.clone())]
                ),
                (
                    "epic".to_string(),
                    vec![(1, story.clone()), (1, task.clone())]
                ),
            ]
        );
    }

    /// An assignee who never connected gets their user row inside the chunk of waiting writes,
    /// wherever in the chunk the assigning update sits (here last of four).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_assignee_row_is_written_from_anywhere_in_a_chunk() {
        let (_dir, state) = server(|_| {}).await;
        let (_project, item) = setup(&state).await;
        let assignee = "eeeeeeee-0000-4000-8000-00000000000e";
        let assign = Command::UpdateWorkItem(proto::UpdateWorkItemRequest {
            work_item_id: item.id.clone(),
            expected_version: 4,
            assignee_id: Some(assignee.into()),
            ..Default::default()
        });
        let commands = vec![
            retitle(&item, 1, "one"),
            retitle(&item, 2, "two"),
            retitle(&item, 3, "three"),
            assign,
        ];
        for result in run_as_one_group(&state, commands).await {
            result.unwrap();
        }
        let stored: (String, Option<String>, String) = sqlx::query_as(
            "SELECT w.title, w.assignee_id, u.email FROM pm_work_items w \
             JOIN users u ON u.id = w.assignee_id WHERE w.id = ?",
        )
        .bind(&item.id)
        .fetch_one(&state.store.read)
        .await
        .unwrap();
        assert_eq!(
            stored,
            (
                "three".into(),
                Some(assignee.into()),
                "user-eeeeeeee@localhost".into()
            )
        );
    }
}
