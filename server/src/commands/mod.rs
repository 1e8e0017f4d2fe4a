//! The mutation pipeline: the only way anything is written.
//!
//! Every command, whether it arrived over WebSocket or REST, runs through [`execute`]: in ONE
//! transaction on the single writer it validates, writes the entity, appends the activity row
//! (with the real per-field changes) and appends the domain event with the stream's next seq.
//! (Under load several commands share that transaction, each inside its own savepoint, so each
//! still succeeds or fails alone: see [`group`].) After commit the frames go to the hub. Command modules only describe what changed (a
//! [`Change`]); they cannot broadcast, and they cannot forget to.
mod authorize;
pub mod comment;
pub mod dependency;
pub mod group;
pub mod import;
pub mod import_plan;
pub mod member;
pub mod project;
pub mod sprint;
pub mod time_entry;
pub mod work_item;
pub(crate) mod write_behind;

use bytes::Bytes;
use pm_shared::proto::{self, ActivityLogCreated, FieldChange, Payload, WebSocketMessage};
use prost::Message;
use sqlx::SqliteConnection;

use crate::access::{self, Role};
use crate::app::{AppState, SharedState};
use crate::error::{AppError, AppResult};
use crate::store::events::{self, WORKSPACE};
use crate::store::rows::{activity_entry, StoredChange};

/// Who is acting.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: String,
}

/// Every mutation the server knows.
#[derive(Debug, Clone)]
pub enum Command {
    CreateProject(proto::CreateProjectRequest),
    UpdateProject(proto::UpdateProjectRequest),
    /// `expected_version` is None over REST, whose DELETE carries no version.
    DeleteProject {
        project_id: String,
        expected_version: Option<i32>,
    },
    CreateWorkItem(proto::CreateWorkItemRequest),
    UpdateWorkItem(proto::UpdateWorkItemRequest),
    DeleteWorkItem(proto::DeleteWorkItemRequest),
    CreateSprint(proto::CreateSprintRequest),
    UpdateSprint(proto::UpdateSprintRequest),
    DeleteSprint(proto::DeleteSprintRequest),
    CreateComment(proto::CreateCommentRequest),
    UpdateComment(proto::UpdateCommentRequest),
    DeleteComment(proto::DeleteCommentRequest),
    AddMember(proto::AddProjectMemberRequest),
    RemoveMember(proto::RemoveProjectMemberRequest),
    CreateDependency(proto::CreateDependencyRequest),
    DeleteDependency(proto::DeleteDependencyRequest),
    StartTimer(proto::StartTimerRequest),
    StopTimer(proto::StopTimerRequest),
    CreateTimeEntry(proto::CreateTimeEntryRequest),
    UpdateTimeEntry(proto::UpdateTimeEntryRequest),
    DeleteTimeEntry(proto::DeleteTimeEntryRequest),
    /// Sync import: a whole ExportData merged in one transaction (one event per change).
    Import(Box<crate::sync::ExportData>),
}

impl Command {
    /// Creates are idempotent by (user, message_id): a retried create returns the first result.
    fn idempotency_name(&self) -> Option<&'static str> {
        match self {
            Command::CreateProject(_) => Some("create_project"),
            Command::CreateWorkItem(_) => Some("create_work_item"),
            Command::CreateSprint(_) => Some("create_sprint"),
            Command::CreateComment(_) => Some("create_comment"),
            Command::CreateDependency(_) => Some("create_dependency"),
            Command::StartTimer(_) => Some("start_timer"),
            Command::StopTimer(_) => Some("stop_timer"),
            Command::CreateTimeEntry(_) => Some("create_time_entry"),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Created,
    Updated,
    Deleted,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Updated => "updated",
            Action::Deleted => "deleted",
        }
    }
}

/// What a command did inside the transaction.
pub struct Change {
    /// The project whose stream carries the event; project lifecycle events go to the workspace
    /// stream and are also delivered to the project's own subscribers.
    pub project_id: String,
    pub lifecycle: bool,
    pub entity_type: &'static str,
    pub entity_id: String,
    pub action: Action,
    pub changes: Vec<FieldChange>,
    /// The domain event, also the caller's response.
    pub event: Payload,
}

/// A command's outcome: a change to commit, or nothing to do (an update that changes nothing
/// is answered with the current entity and writes, logs and broadcasts nothing).
pub enum Effect {
    Changed(Change),
    /// Nothing to write; `current` is the entity as it is (reading it needs view access).
    Unchanged {
        project_id: String,
        current: Payload,
    },
    /// Several changes committed together (see [`Batch`]).
    Batch(Batch),
    /// A change whose own write the command leaves to the pipeline, which runs it in the same
    /// round trip as the activity row and the event (see [`DeferredWrite`]).
    Deferred(Change, DeferredWrite),
}

/// One statement a command has validated but not run: the pipeline runs it first in its last
/// round trip. Only for a write that nothing else in the command reads back, and that can fail
/// only as any write can (then the whole command fails, as always).
pub struct DeferredWrite {
    pub sql: std::borrow::Cow<'static, str>,
    pub binds: Vec<Bind>,
    /// The work item as this write leaves it, when the command knows it whole: a group keeps
    /// it for later updates of the same item (see [`write_behind`]).
    pub leaves: Option<Box<write_behind::KnownItem>>,
}

/// A parameter of a [`DeferredWrite`].
pub enum Bind {
    Text(Option<String>),
    Int(Option<i64>),
}

pub(crate) type SqliteQuery<'q> =
    sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

impl DeferredWrite {
    /// Binds this write's parameters, in order, to `query` (whose SQL starts with [`Self::sql`]).
    pub(crate) fn bind_to<'q>(&'q self, mut query: SqliteQuery<'q>) -> SqliteQuery<'q> {
        for bind in &self.binds {
            query = match bind {
                Bind::Text(v) => query.bind(v.as_deref()),
                Bind::Int(v) => query.bind(*v),
            };
        }
        query
    }

    /// Runs the write now, for a command that must read its result back.
    pub async fn execute(&self, conn: &mut SqliteConnection) -> sqlx::Result<()> {
        self.bind_to(sqlx::query(&self.sql))
            .execute(&mut *conn)
            .await
            .map(|_| ())
    }
}

/// Changes of one command that belong to more than one event: a sync import, or a timer start
/// that stops a timer of another project. In the same transaction every change gets its
/// activity row and its event, with the next seqs of its stream in order; after commit the
/// frames are published in that order. Single-event commands never take this path.
pub struct Batch {
    pub changes: Vec<Change>,
    /// The caller's answer; None answers with the first change's event and its position.
    pub response: Option<Payload>,
}

/// The committed result: the event payload and where it sits in its stream.
#[derive(Debug, Clone)]
pub struct Committed {
    pub event: Payload,
    pub stream: String,
    pub seq: u64,
}

/// Runs one command through the pipeline. `request_id` is the WS message_id (or REST
/// Idempotency-Key), used to make creates idempotent per user. The command waits its turn for
/// the single writer and may be committed together with others (see [`group`]); it succeeds or
/// fails on its own either way.
pub async fn execute(
    state: &SharedState,
    actor: &Actor,
    request_id: Option<&str>,
    command: Command,
) -> AppResult<Committed> {
    group::enqueue(state, actor, request_id, command)
        .outcome()
        .await
}

/// What one command did inside its group's transaction, waiting for the commit.
pub(crate) struct Applied {
    /// The answer.
    pub committed: Committed,
    /// Its writes are to be committed (false: nothing to commit, e.g. an update that changed
    /// nothing, or the replay of an idempotent create).
    pub keep: bool,
    /// Frames to publish after the commit, in order.
    pub outgoing: Vec<Outgoing>,
    /// The actor's user row was first written by this command.
    pub new_user: Option<String>,
    /// Who belongs to a project changed: the hub's delivery filter must follow.
    pub membership: Option<MembershipChange>,
    /// The `then` statement given to [`apply`] ran, after this command's writes.
    pub advanced_savepoint: bool,
}

impl Applied {
    fn answer(committed: Committed) -> Applied {
        Applied {
            committed,
            keep: false,
            outgoing: Vec::new(),
            new_user: None,
            membership: None,
            advanced_savepoint: false,
        }
    }
}

/// Frames for the hub: one or more consecutive events of `stream` (published to `also` too: a
/// project's lifecycle events on the workspace stream), the highest seq among them `last_seq`
/// (the stream's last published seq once `EventHub::publish` has them).
pub(crate) struct Outgoing {
    pub stream: String,
    pub also: Option<String>,
    pub last_seq: u64,
    pub frames: Vec<Bytes>,
}

/// One command inside the writer's open transaction: validate, write, append the activity row
/// and the event. Committing and publishing are the group's (see [`group`]). `then` is a
/// statement the group wants run right after the command's writes when they succeed (its
/// savepoint step), in the same round trip as the command's last statement; whether it ran is
/// in [`Applied::advanced_savepoint`].
///
/// With `behind`, the command is a work-item update the group lets wait (see
/// [`write_behind`]): its item is read through the group's waiting writes, and its own writes
/// join them instead of running now.
pub(crate) async fn apply(
    state: &AppState,
    tx: &mut SqliteConnection,
    actor: &Actor,
    request_id: Option<&str>,
    command: Command,
    then: Option<&'static str>,
    behind: Option<&mut write_behind::WriteBehind>,
) -> AppResult<Applied> {
    let idempotency = command
        .idempotency_name()
        .zip(request_id.filter(|id| !id.is_empty()));

    if let Some((operation, message_id)) = idempotency {
        if let Some(previous) = idempotent_replay(tx, &actor.user_id, message_id, operation).await?
        {
            return Ok(Applied::answer(previous));
        }
    }
    // Permission first, on the database as it is before this command writes anything.
    authorize::authorize(tx, state.config.auth, actor, &command).await?;
    // Every statement is a round trip to sqlx's SQLite thread, which is most of what a write
    // costs: skip the user row when it is known to exist already.
    let known_user = state.store.is_known_user(&actor.user_id);
    if !known_user {
        ensure_user(tx, &actor.user_id).await?;
    }

    let import = matches!(command, Command::Import(_));
    let effect = match command {
        Command::CreateProject(r) => project::create(tx, actor, r).await?,
        Command::UpdateProject(r) => project::update(tx, actor, r).await?,
        Command::DeleteProject {
            project_id,
            expected_version,
        } => project::delete(tx, actor, &project_id, expected_version).await?,
        Command::CreateWorkItem(r) => work_item::create(tx, actor, r).await?,
        Command::UpdateWorkItem(r) => {
            let known = behind.as_deref().map(|b| &b.items);
            work_item::update(tx, actor, r, known).await?
        }
        Command::DeleteWorkItem(r) => work_item::delete(tx, actor, r).await?,
        Command::CreateSprint(r) => sprint::create(tx, actor, r).await?,
        Command::UpdateSprint(r) => sprint::update(tx, actor, r).await?,
        Command::DeleteSprint(r) => sprint::delete(tx, actor, r).await?,
        Command::CreateComment(r) => comment::create(tx, actor, r).await?,
        Command::UpdateComment(r) => comment::update(tx, actor, r).await?,
        Command::DeleteComment(r) => comment::delete(tx, actor, r).await?,
        Command::AddMember(r) => member::add(tx, actor, r).await?,
        Command::RemoveMember(r) => member::remove(tx, actor, r).await?,
        Command::CreateDependency(r) => dependency::create(tx, actor, r).await?,
        Command::DeleteDependency(r) => dependency::delete(tx, actor, r).await?,
        Command::StartTimer(r) => time_entry::start(tx, actor, r).await?,
        Command::StopTimer(r) => time_entry::stop(tx, actor, r).await?,
        Command::CreateTimeEntry(r) => time_entry::create(tx, actor, r).await?,
        Command::UpdateTimeEntry(r) => time_entry::update(tx, actor, r).await?,
        Command::DeleteTimeEntry(r) => time_entry::delete(tx, actor, r).await?,
        Command::Import(data) => import::run(tx, actor, *data).await?,
    };
    // An import may also reach rows of projects its document does not name (a comment on a
    // stored item, say): it needs admin on every project it changed. Imports add no members to
    // projects that existed before them, so this reads what was there before.
    if let Effect::Batch(batch) = &effect {
        if import {
            let mut touched: Vec<&str> = batch
                .changes
                .iter()
                .map(|c| c.project_id.as_str())
                .collect();
            touched.sort_unstable();
            touched.dedup();
            for project in touched {
                let named = access::Named::new("Project", project);
                access::require(
                    tx,
                    state.config.auth,
                    project,
                    &actor.user_id,
                    Role::Admin,
                    named,
                )
                .await?;
            }
        }
    }
    let new_user = (!known_user).then(|| actor.user_id.clone());
    let (change, deferred) = match effect {
        Effect::Changed(change) => (change, None),
        Effect::Deferred(change, write) => (change, Some(write)),
        Effect::Batch(batch) => {
            let mut applied = apply_batch(state, tx, actor, idempotency, batch).await?;
            applied.new_user = new_user;
            return Ok(applied);
        }
        Effect::Unchanged { current, .. } => {
            return Ok(Applied::answer(Committed {
                event: current,
                stream: String::new(),
                seq: 0,
            }));
        }
    };

    let now = pm_shared::now_secs();
    let appended = match (behind, deferred) {
        (Some(behind), Some(write)) => {
            let numbered = Numbered::of(state, tx, actor, &change, now).await?;
            state.store.seqs.taken(&numbered.stream, numbered.seq);
            let appended = numbered.appended(state, &change, false);
            behind.push(write, numbered);
            appended
        }
        (Some(_), None) => {
            // Only an update that keeps its parent may wait, and it never writes before its
            // turn; were that broken, failing (which fails the whole group) is the safe answer.
            return Err(AppError::Internal(anyhow::anyhow!(
                "a waiting update wrote before its turn"
            )));
        }
        (None, deferred) => {
            let tail = Tail {
                first: deferred.as_ref(),
                idempotency,
                then,
            };
            append_change(state, tx, actor, &change, now, tail).await?
        }
    };
    let Appended {
        stream,
        seq,
        frames,
        advanced_savepoint,
    } = appended;
    let committed = Committed {
        event: change.event,
        stream,
        seq,
    };
    let also = change.lifecycle.then(|| change.project_id.clone());
    // Membership decides who may receive a project's events (token mode): the group refreshes
    // the hub's member list around publishing this change (see `group::publish`).
    let membership = (change.entity_type == "project_member"
        || (change.entity_type == "project" && change.action == Action::Created))
        .then(|| MembershipChange {
            project_id: change.project_id.clone(),
            removed: change.action == Action::Deleted,
        });
    Ok(Applied {
        outgoing: vec![Outgoing {
            stream: committed.stream.clone(),
            also,
            last_seq: committed.seq,
            frames: frames.to_vec(),
        }],
        committed,
        keep: true,
        new_user,
        membership,
        advanced_savepoint,
    })
}

/// A change to who belongs to a project. A new member (or a project's creator) is admitted
/// before the event goes out; a removed member's connections leave the project's stream right
/// after it.
pub(crate) struct MembershipChange {
    pub project_id: String,
    pub removed: bool,
}

/// The multi-event path of [`apply`] (see [`Batch`]). The group publishes the frames after
/// the commit, in order.
async fn apply_batch(
    state: &AppState,
    tx: &mut SqliteConnection,
    actor: &Actor,
    idempotency: Option<(&str, &str)>,
    batch: Batch,
) -> AppResult<Applied> {
    let now = pm_shared::now_secs();
    // Consecutive frames for the same (stream, also) travel as one hub item.
    let mut outgoing: Vec<Outgoing> = Vec::new();
    let mut first: Option<Committed> = None;
    for change in batch.changes {
        let Appended {
            stream,
            seq,
            frames,
            ..
        } = append_change(state, tx, actor, &change, now, Tail::default()).await?;
        let also = change.lifecycle.then(|| change.project_id.clone());
        match outgoing.last_mut() {
            Some(o) if o.stream == stream && o.also == also => {
                o.frames.extend(frames);
                o.last_seq = o.last_seq.max(seq);
            }
            _ => outgoing.push(Outgoing {
                stream: stream.clone(),
                also,
                last_seq: seq,
                frames: frames.to_vec(),
            }),
        }
        if first.is_none() {
            first = Some(Committed {
                event: change.event,
                stream,
                seq,
            });
        }
    }
    let committed = match (batch.response, first) {
        (Some(response), _) => Committed {
            event: response,
            stream: String::new(),
            seq: 0,
        },
        (None, Some(first)) => first,
        (None, None) => {
            return Err(AppError::Internal(anyhow::anyhow!(
                "a batch without changes must name its response"
            )))
        }
    };
    if let Some((operation, message_id)) = idempotency {
        remember(tx, &actor.user_id, message_id, operation, &committed, now).await?;
    }
    Ok(Applied {
        committed,
        keep: true,
        outgoing,
        new_user: None,
        membership: None,
        advanced_savepoint: false,
    })
}

/// Writes the activity row of a change that travels inside another change's event (the timer a
/// StartTimer stops in the same project). It is logged like any change; only the command's own
/// change is announced with ActivityLogCreated.
pub(crate) async fn log_activity(
    conn: &mut SqliteConnection,
    actor: &Actor,
    change: &Change,
) -> AppResult<()> {
    append_activity(conn, actor, change, pm_shared::now_secs()).await?;
    Ok(())
}

/// The row a user id needs before anything refers to it, for a user who has not connected yet:
/// a placeholder email made from the id. Two parameters, both the id: plain `?`, because sqlx
/// numbers `?NNN` across a whole multi-statement query and this one runs inside others.
pub(crate) const ENSURE_USER_SQL: &str = "INSERT OR IGNORE INTO users (id, email) \
     VALUES (?, 'user-' || substr(?, 1, 8) || '@localhost')";

pub(crate) async fn ensure_user(conn: &mut SqliteConnection, user_id: &str) -> sqlx::Result<()> {
    sqlx::query(ENSURE_USER_SQL)
        .bind(user_id)
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

const ACTIVITY_SQL: &str = "INSERT INTO pm_activity_log (id, project_id, entity_type, entity_id, action, changes, user_id, timestamp, comment) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
const REMEMBER_SQL: &str = "INSERT OR IGNORE INTO pm_idempotency_keys (user_id, message_id, operation, response, created_at) VALUES (?, ?, ?, ?, ?)";

/// The tail of every write, one round trip: a deferred write, if any; the activity row; the
/// stream's new last seq; the event (sqlx binds the parameters of a multi-statement query in
/// order). Optionally followed by the idempotency record and by the group's savepoint step.
pub(crate) fn tail_sql(tail: &Tail<'_>) -> String {
    let mut sql = String::new();
    if let Some(first) = tail.first {
        sql.push_str(&first.sql);
        sql.push_str(";\n");
    }
    sql.push_str(ACTIVITY_SQL);
    sql.push_str(";\n");
    sql.push_str(events::TAKE_SEQ_SQL);
    sql.push_str(";\n");
    sql.push_str(events::APPEND_SQL);
    if tail.idempotency.is_some() {
        sql.push_str(";\n");
        sql.push_str(REMEMBER_SQL);
    }
    if let Some(then) = tail.then {
        sql.push_str(";\n");
        sql.push_str(then);
    }
    sql
}

/// What goes into a write's last round trip besides its activity row and event.
#[derive(Default)]
pub(crate) struct Tail<'a> {
    /// The command's own deferred write, run first.
    pub first: Option<&'a DeferredWrite>,
    /// (operation, message_id) of an idempotent command: its answer is remembered.
    pub idempotency: Option<(&'a str, &'a str)>,
    /// The group's savepoint step, run last (only [`group::NEXT`] is ever given).
    pub then: Option<&'static str>,
}

/// A change as written: where its event sits, and its two frames for subscribers
/// (ActivityLogCreated, then the event).
struct Appended {
    stream: String,
    seq: u64,
    frames: [Bytes; 2],
    advanced_savepoint: bool,
}

/// A change made ready to append: numbered with its stream's next seq (taken from the
/// counter), its activity row and its encoded event.
pub(crate) struct Numbered {
    pub stream: String,
    pub seq: u64,
    pub activity: NewActivity,
    pub event_frame: Bytes,
}

impl Numbered {
    async fn of(
        state: &AppState,
        tx: &mut SqliteConnection,
        actor: &Actor,
        change: &Change,
        now: i64,
    ) -> AppResult<Numbered> {
        let stream = if change.lifecycle {
            WORKSPACE.to_string()
        } else {
            change.project_id.clone()
        };
        let seq = state.store.seqs.next(tx, &stream).await?;
        let event_frame = WebSocketMessage {
            message_id: uuid::Uuid::new_v4().to_string(),
            timestamp: now,
            payload: Some(change.event.clone()),
            seq,
            epoch: state.store.epoch(),
            stream: stream.clone(),
        }
        .encode_to_vec()
        .into();
        Ok(Numbered {
            activity: NewActivity::of(change, actor, now)?,
            stream,
            seq,
            event_frame,
        })
    }

    /// The change as appended, with its ActivityLogCreated frame.
    fn appended(&self, state: &AppState, change: &Change, advanced_savepoint: bool) -> Appended {
        let activity_frame = WebSocketMessage {
            message_id: uuid::Uuid::new_v4().to_string(),
            timestamp: self.activity.timestamp,
            payload: Some(Payload::ActivityLogCreated(ActivityLogCreated {
                entry: Some(self.activity.entry(change.changes.clone())),
            })),
            epoch: state.store.epoch(),
            stream: self.stream.clone(),
            ..Default::default()
        }
        .encode_to_vec();
        Appended {
            stream: self.stream.clone(),
            seq: self.seq,
            frames: [activity_frame.into(), self.event_frame.clone()],
            advanced_savepoint,
        }
    }

    /// Binds, in [`tail_sql`]'s order, the activity row, the stream's new last seq and the event.
    pub(crate) fn bind<'q>(&'q self, query: SqliteQuery<'q>) -> SqliteQuery<'q> {
        let query = self
            .activity
            .bind(query)
            .bind(&self.stream)
            .bind(self.seq as i64);
        self.bind_event(query)
    }

    /// Binds the event's row (see [`events::APPEND_SQL`]).
    pub(crate) fn bind_event<'q>(&'q self, query: SqliteQuery<'q>) -> SqliteQuery<'q> {
        query
            .bind(&self.stream)
            .bind(self.seq as i64)
            .bind(self.event_frame.as_ref())
            .bind(self.activity.timestamp)
    }
}

/// Writes a change's activity row and its event, numbered with the stream's next seq (and, for
/// an idempotent command, what a retry is answered with) in ONE round trip, with the rest of
/// `tail` (see [`Tail`]).
async fn append_change(
    state: &AppState,
    tx: &mut SqliteConnection,
    actor: &Actor,
    change: &Change,
    now: i64,
    tail: Tail<'_>,
) -> AppResult<Appended> {
    let numbered = Numbered::of(state, tx, actor, change, now).await?;
    let sql = tail_sql(&tail);
    let mut query = sqlx::query(&sql);
    if let Some(first) = tail.first {
        query = first.bind_to(query);
    }
    let mut query = numbered.bind(query);
    let remembered = tail.idempotency.map(|(operation, message_id)| {
        let answer = remembered(&Committed {
            event: change.event.clone(),
            stream: numbered.stream.clone(),
            seq: numbered.seq,
        });
        (operation, message_id, answer)
    });
    if let Some((operation, message_id, answer)) = &remembered {
        query = query
            .bind(&actor.user_id)
            .bind(*message_id)
            .bind(*operation)
            .bind(answer)
            .bind(now);
    }
    query.execute(&mut *tx).await?;
    state.store.seqs.taken(&numbered.stream, numbered.seq);
    Ok(numbered.appended(state, change, tail.then.is_some()))
}

/// An activity row as it will be stored.
pub(crate) struct NewActivity {
    id: String,
    project_id: String,
    entity_type: &'static str,
    entity_id: String,
    action: Action,
    changes_json: String,
    user_id: String,
    timestamp: i64,
    comment: Option<String>,
}

impl NewActivity {
    fn of(change: &Change, actor: &Actor, now: i64) -> AppResult<NewActivity> {
        let stored: Vec<StoredChange> = change
            .changes
            .iter()
            .map(|c| StoredChange {
                field_name: c.field_name.clone(),
                old_value: c.old_value.clone(),
                new_value: c.new_value.clone(),
            })
            .collect();
        Ok(NewActivity {
            // Time-ordered, so the row lands at the end of the id index instead of on a random
            // page of it: a group's rows dirty a few pages, not one each.
            id: uuid::Uuid::now_v7().to_string(),
            project_id: change.project_id.clone(),
            entity_type: change.entity_type,
            entity_id: change.entity_id.clone(),
            action: change.action,
            changes_json: serde_json::to_string(&stored)
                .map_err(|e| AppError::Internal(e.into()))?,
            user_id: actor.user_id.clone(),
            timestamp: now,
            comment: (change.action == Action::Updated && !change.changes.is_empty())
                .then(|| format!("{} fields changed", change.changes.len())),
        })
    }

    /// Binds the row's nine parameters (see [`ACTIVITY_SQL`]).
    fn bind<'q>(&'q self, query: SqliteQuery<'q>) -> SqliteQuery<'q> {
        query
            .bind(&self.id)
            .bind(&self.project_id)
            .bind(self.entity_type)
            .bind(&self.entity_id)
            .bind(self.action.as_str())
            .bind(&self.changes_json)
            .bind(&self.user_id)
            .bind(self.timestamp)
            .bind(&self.comment)
    }

    /// The entry clients are told about (`changes` are the change's own).
    fn entry(&self, changes: Vec<FieldChange>) -> proto::ActivityLogEntry {
        activity_entry(
            self.id.clone(),
            self.entity_type.to_string(),
            self.entity_id.clone(),
            self.action.as_str().to_string(),
            self.user_id.clone(),
            self.timestamp,
            self.comment.clone(),
            changes,
        )
    }
}

async fn append_activity(
    conn: &mut SqliteConnection,
    actor: &Actor,
    change: &Change,
    now: i64,
) -> AppResult<proto::ActivityLogEntry> {
    let row = NewActivity::of(change, actor, now)?;
    row.bind(sqlx::query(ACTIVITY_SQL))
        .execute(&mut *conn)
        .await?;
    Ok(row.entry(change.changes.clone()))
}

async fn idempotent_replay(
    conn: &mut SqliteConnection,
    user_id: &str,
    message_id: &str,
    operation: &str,
) -> AppResult<Option<Committed>> {
    let row: Option<(Vec<u8>, String)> = sqlx::query_as(
        "SELECT response, operation FROM pm_idempotency_keys WHERE user_id = ? AND message_id = ?",
    )
    .bind(user_id)
    .bind(message_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((bytes, stored_operation)) = row else {
        return Ok(None);
    };
    // The id of an earlier create of another kind: its stored response does not answer this
    // request, and running the request would leave it without idempotency.
    if stored_operation != operation {
        return Err(AppError::validation(
            "message_id",
            format!("message_id {message_id} was already used for a {stored_operation} request"),
        ));
    }
    let msg = WebSocketMessage::decode(bytes.as_slice())?;
    let event = msg
        .payload
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("stored response has no payload")))?;
    Ok(Some(Committed {
        event,
        stream: msg.stream,
        seq: msg.seq,
    }))
}

async fn remember(
    conn: &mut SqliteConnection,
    user_id: &str,
    message_id: &str,
    operation: &str,
    committed: &Committed,
    now: i64,
) -> AppResult<()> {
    sqlx::query(REMEMBER_SQL)
        .bind(user_id)
        .bind(message_id)
        .bind(operation)
        .bind(remembered(committed))
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// What an idempotent create stores to answer a retry with.
fn remembered(committed: &Committed) -> Vec<u8> {
    WebSocketMessage {
        payload: Some(committed.event.clone()),
        seq: committed.seq,
        stream: committed.stream.clone(),
        ..Default::default()
    }
    .encode_to_vec()
}

/// Records `field` as changed when `old != new`.
pub fn track(
    changes: &mut Vec<FieldChange>,
    field: &str,
    old: Option<String>,
    new: Option<String>,
) {
    if old != new {
        changes.push(FieldChange {
            field_name: field.to_string(),
            old_value: old,
            new_value: new,
        });
    }
}

pub use crate::ids::parse_id;

/// Compares the caller's expected version with the stored one.
pub fn check_version(expected: i32, current: i64) -> AppResult<()> {
    if i64::from(expected) == current {
        Ok(())
    } else {
        Err(AppError::VersionConflict {
            current_version: current,
        })
    }
}
