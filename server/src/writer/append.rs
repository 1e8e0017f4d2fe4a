//! The tail of every write: a change numbered with its stream's next seq, its activity row, its
//! event, and (for an idempotent create) what a retry is answered with, sent in one round trip.
//! Every statement is a hand-off to sqlx's SQLite thread, the largest cost of a write.
use bytes::Bytes;
use pm_shared::proto::{self, ActivityLogCreated, FieldChange, Payload, WebSocketMessage};
use prost::Message;
use sqlx::query_builder::Separated;
use sqlx::{
    Database, Encode, PgConnection, Postgres, QueryBuilder, Sqlite, SqliteConnection, Type,
};

use super::change::{Action, Change, Committed, DeferredWrite};
use super::seqs::SeqCounter;
use crate::access::Actor;
use crate::error::{AppError, AppResult};
use crate::store::events::{self, WORKSPACE};
use crate::store::pipeline::{self, ACTIVITY_INSERT, REMEMBER_INSERT, REMEMBER_ON_CONFLICT};
use crate::store::rows::{activity_entry, StoredChange};
use crate::store::Conn;

/// What numbering needs: the writer's seq counter and the epoch every frame carries.
pub(super) struct Numbering<'a> {
    pub seqs: &'a mut SeqCounter,
    pub epoch: &'a str,
}

/// Writes the activity row of a change that travels inside another change's event (the timer a
/// StartTimer stops in the same project). It is logged like any change; only the command's own
/// change is announced with ActivityLogCreated.
pub async fn log_activity(conn: &mut Conn<'_>, actor: &Actor, change: &Change) -> AppResult<()> {
    append_activity(conn, actor, change, pm_shared::now_secs()).await?;
    Ok(())
}

/// Appends to `query` the rows of `numbered` changes: their activity rows in one INSERT, each
/// stream's new last seq (`streams`) in one, and their events in one. sqlx's SQLite thread
/// sends a message back for every statement, so rows share statements. A lone write and a
/// chunk of waiting writes (`write_behind`) are written by this one function.
pub(super) fn push_appends<'q, I>(
    query: &mut QueryBuilder<'q, Sqlite>,
    numbered: I,
    streams: &'q [(&'q str, u64)],
) where
    I: IntoIterator<Item = &'q Numbered> + Clone,
{
    query.push(ACTIVITY_INSERT);
    query.push_values(numbered.clone(), |mut row, n| n.activity.push_row(&mut row));
    query.push(";\n");
    query.push(events::TAKE_SEQ_INSERT);
    query.push_values(streams, |mut row, (stream, seq)| {
        row.push_bind(*stream).push_bind(*seq as i64);
    });
    query.push(events::TAKE_SEQ_ON_CONFLICT);
    query.push(";\n");
    query.push(events::APPEND_INSERT);
    query.push_values(numbered, |mut row, n| n.push_event_row(&mut row));
}

/// What goes into a write's last round trip besides its activity row and event.
#[derive(Default)]
pub(crate) struct Tail<'a> {
    /// The command's own deferred write, run first.
    pub first: Option<&'a DeferredWrite>,
    /// (operation, message_id) of an idempotent command: its answer is remembered.
    pub idempotency: Option<(&'a str, &'a str)>,
    /// The group's savepoint step, run last (only [`pipeline::NEXT`] is ever given).
    pub then: Option<&'static str>,
}

/// A change as written: where its event sits, and its two frames for subscribers
/// (ActivityLogCreated, then the event).
pub(super) struct Appended {
    pub stream: String,
    pub seq: u64,
    pub frames: [Bytes; 2],
    pub advanced_savepoint: bool,
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
    pub(super) async fn of(
        numbering: &mut Numbering<'_>,
        tx: &mut Conn<'_>,
        actor: &Actor,
        change: &Change,
        now: i64,
    ) -> AppResult<Numbered> {
        // SQLite's one writer counts in memory (see `seqs`); PostgreSQL's writers take the
        // stream's counter row, which stays locked until the write commits, so seqs of a
        // stream commit in order whichever server takes them.
        if let Conn::Sqlite(_) = tx {
            return Numbered::counted(numbering, tx, actor, change, now).await;
        }
        let stream = stream_of(change);
        let seq = events::take_seq(tx, &stream).await?;
        Numbered::with_seq(numbering, stream, seq, actor, change, now)
    }

    /// Numbered from the writer's memory of the stream's last seq (see `seqs`): every write on
    /// SQLite, and on PostgreSQL a write that waits to be sent with others (see
    /// `write_behind`), whose stream's new last seq goes with them. On PostgreSQL the group holds the stream's lock, so
    /// no other server numbers in it meanwhile, and the group forgets the memory whenever a
    /// write that takes its seq from the counter row may run (and when it starts).
    pub(super) async fn counted(
        numbering: &mut Numbering<'_>,
        tx: &mut Conn<'_>,
        actor: &Actor,
        change: &Change,
        now: i64,
    ) -> AppResult<Numbered> {
        let stream = stream_of(change);
        let seq = numbering.seqs.next(tx, &stream).await?;
        Numbered::with_seq(numbering, stream, seq, actor, change, now)
    }

    /// A change numbered `seq` of `stream`, taken already.
    fn with_seq(
        numbering: &Numbering<'_>,
        stream: String,
        seq: u64,
        actor: &Actor,
        change: &Change,
        now: i64,
    ) -> AppResult<Numbered> {
        let event_frame = WebSocketMessage {
            message_id: crate::ids::random_id(),
            timestamp: now,
            payload: Some(change.event.clone()),
            seq,
            epoch: numbering.epoch.to_string(),
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
    pub(super) fn appended(
        &self,
        epoch: &str,
        change: &Change,
        advanced_savepoint: bool,
    ) -> Appended {
        let activity_frame = WebSocketMessage {
            message_id: crate::ids::random_id(),
            timestamp: self.activity.timestamp,
            payload: Some(Payload::ActivityLogCreated(ActivityLogCreated {
                entry: Some(self.activity.entry(change.changes.clone())),
            })),
            epoch: epoch.to_string(),
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

    /// What an idempotent create stores to answer a retry with: the change's event, where it
    /// sits.
    fn answer(&self, change: &Change) -> Vec<u8> {
        remembered(&Committed {
            event: change.event.clone(),
            stream: self.stream.clone(),
            seq: self.seq,
        })
    }

    /// The event's row of a several-row [`events::APPEND_INSERT`].
    pub(super) fn push_event_row<'q, DB, Sep: std::fmt::Display>(
        &'q self,
        row: &mut Separated<'_, 'q, DB, Sep>,
    ) where
        DB: Database,
        &'q str: Encode<'q, DB> + Type<DB>,
        Option<&'q str>: Encode<'q, DB> + Type<DB>,
        i64: Encode<'q, DB> + Type<DB>,
        &'q [u8]: Encode<'q, DB> + Type<DB>,
    {
        row.push_bind(self.stream.as_str())
            .push_bind(self.seq as i64)
            .push_bind(self.event_frame.as_ref())
            .push_bind(self.activity.timestamp);
    }
}

/// Writes a change's activity row and its event, numbered with the stream's next seq (and, for
/// an idempotent command, what a retry is answered with), with the rest of `tail` (see
/// [`Tail`]): in ONE round trip on SQLite, in two on PostgreSQL.
pub(super) async fn append_change(
    numbering: &mut Numbering<'_>,
    tx: &mut Conn<'_>,
    actor: &Actor,
    change: &Change,
    now: i64,
    tail: Tail<'_>,
) -> AppResult<Appended> {
    match tx {
        Conn::Sqlite(c) => append_in_one_round_trip(numbering, c, actor, change, now, tail).await,
        Conn::Postgres(c) => append_in_two_statements(numbering, c, actor, change, now, tail).await,
    }
}

/// [`append_change`] on SQLite: every statement of the tail in one multi-statement query.
async fn append_in_one_round_trip(
    numbering: &mut Numbering<'_>,
    conn: &mut SqliteConnection,
    actor: &Actor,
    change: &Change,
    now: i64,
    tail: Tail<'_>,
) -> AppResult<Appended> {
    let numbered = Numbered::of(numbering, &mut Conn::Sqlite(conn), actor, change, now).await?;
    let answer = tail.idempotency.map(|_| numbered.answer(change));
    let streams = [(numbered.stream.as_str(), numbered.seq)];
    let mut query = QueryBuilder::new("");
    if let Some(first) = tail.first {
        first.push_to(&mut query)?;
        query.push(";\n");
    }
    push_appends(&mut query, [&numbered], &streams);
    if let (Some((operation, message_id)), Some(answer)) = (tail.idempotency, &answer) {
        query.push(";\n");
        push_remember(
            &mut query,
            &actor.user_id,
            message_id,
            operation,
            answer,
            now,
        );
    }
    if let Some(then) = tail.then {
        query.push(";\n");
        query.push(then);
    }
    query.build().execute(&mut *conn).await?;
    numbering.seqs.taken(&numbered.stream, numbered.seq);
    Ok(numbered.appended(numbering.epoch, change, tail.then.is_some()))
}

/// [`append_change`] on PostgreSQL, where a prepared statement is one statement, in two round
/// trips besides the savepoint step: the command's waiting write (as data-modifying CTEs) with
/// the stream's next seq (which locks the stream's counter until the commit), then the
/// activity row, the idempotency record and the event, the first two as CTEs of the third.
async fn append_in_two_statements(
    numbering: &mut Numbering<'_>,
    conn: &mut PgConnection,
    actor: &Actor,
    change: &Change,
    now: i64,
    tail: Tail<'_>,
) -> AppResult<Appended> {
    let stream = stream_of(change);
    let seq = match tail.first {
        Some(first) => first.take_seq_after(conn, &stream).await?,
        None => events::take_seq(&mut Conn::Postgres(conn), &stream).await?,
    };
    let numbered = Numbered::with_seq(numbering, stream, seq, actor, change, now)?;
    let answer = tail.idempotency.map(|_| numbered.answer(change));
    let mut query = QueryBuilder::<Postgres>::new("WITH activity AS (");
    query.push(ACTIVITY_INSERT);
    query.push_values([&numbered], |mut row, n| n.activity.push_row(&mut row));
    query.push(")");
    if let (Some((operation, message_id)), Some(answer)) = (tail.idempotency, &answer) {
        query.push(", remembered AS (");
        push_remember(
            &mut query,
            &actor.user_id,
            message_id,
            operation,
            answer,
            now,
        );
        query.push(")");
    }
    query.push(" ");
    query.push(events::APPEND_INSERT);
    query.push_values([&numbered], |mut row, n| n.push_event_row(&mut row));
    query.build().execute(&mut *conn).await?;
    if let Some(then) = tail.then {
        pipeline::raw(&mut Conn::Postgres(conn), then).await?;
    }
    Ok(numbered.appended(numbering.epoch, change, tail.then.is_some()))
}

/// The stream a change's event goes to: its project's, or the workspace stream for a
/// project's lifecycle.
fn stream_of(change: &Change) -> String {
    if change.lifecycle {
        WORKSPACE.to_string()
    } else {
        change.project_id.clone()
    }
}

/// An activity row as it will be stored.
pub(crate) struct NewActivity {
    id: String,
    project_id: String,
    entity_type: pm_shared::domain::EntityType,
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

    /// The id of the entity the change is to.
    pub(super) fn entity_id(&self) -> &str {
        &self.entity_id
    }

    /// The row of a several-row [`pipeline::ACTIVITY_INSERT`].
    pub(super) fn push_row<'q, DB, Sep: std::fmt::Display>(
        &'q self,
        row: &mut Separated<'_, 'q, DB, Sep>,
    ) where
        DB: Database,
        &'q str: Encode<'q, DB> + Type<DB>,
        Option<&'q str>: Encode<'q, DB> + Type<DB>,
        i64: Encode<'q, DB> + Type<DB>,
        &'q [u8]: Encode<'q, DB> + Type<DB>,
    {
        row.push_bind(self.id.as_str())
            .push_bind(self.project_id.as_str())
            .push_bind(self.entity_type.as_str())
            .push_bind(self.entity_id.as_str())
            .push_bind(self.action.as_str())
            .push_bind(self.changes_json.as_str())
            .push_bind(self.user_id.as_str())
            .push_bind(self.timestamp)
            .push_bind(self.comment.as_deref());
    }

    /// The entry clients are told about (`changes` are the change's own).
    fn entry(&self, changes: Vec<FieldChange>) -> proto::ActivityLogEntry {
        activity_entry(
            self.id.clone(),
            self.entity_type.as_str().to_string(),
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
    conn: &mut Conn<'_>,
    actor: &Actor,
    change: &Change,
    now: i64,
) -> AppResult<proto::ActivityLogEntry> {
    let row = NewActivity::of(change, actor, now)?;
    match conn {
        Conn::Sqlite(c) => {
            let mut query = QueryBuilder::<Sqlite>::new(ACTIVITY_INSERT);
            query.push_values([&row], |mut r, row| row.push_row(&mut r));
            query.build().execute(&mut **c).await?;
        }
        Conn::Postgres(c) => {
            let mut query = QueryBuilder::<Postgres>::new(ACTIVITY_INSERT);
            query.push_values([&row], |mut r, row| row.push_row(&mut r));
            query.build().execute(&mut **c).await?;
        }
    }
    Ok(row.entry(change.changes.clone()))
}

pub(super) async fn idempotent_replay(
    conn: &mut Conn<'_>,
    user_id: &str,
    message_id: &str,
    operation: &str,
) -> AppResult<Option<Committed>> {
    let row = pipeline::remembered(conn, user_id, message_id).await?;
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

pub(super) async fn remember(
    conn: &mut Conn<'_>,
    user_id: &str,
    message_id: &str,
    operation: &str,
    committed: &Committed,
    now: i64,
) -> AppResult<()> {
    let answer = remembered(committed);
    match conn {
        Conn::Sqlite(c) => {
            let mut query = QueryBuilder::<Sqlite>::new("");
            push_remember(&mut query, user_id, message_id, operation, &answer, now);
            query.build().execute(&mut **c).await?;
        }
        Conn::Postgres(c) => {
            let mut query = QueryBuilder::<Postgres>::new("");
            push_remember(&mut query, user_id, message_id, operation, &answer, now);
            query.build().execute(&mut **c).await?;
        }
    }
    Ok(())
}

/// Appends the record a retried idempotent create is answered with.
fn push_remember<'q, DB>(
    query: &mut QueryBuilder<'q, DB>,
    user_id: &'q str,
    message_id: &'q str,
    operation: &'q str,
    answer: &'q [u8],
    now: i64,
) where
    DB: Database,
    &'q str: Encode<'q, DB> + Type<DB>,
    Option<&'q str>: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
    &'q [u8]: Encode<'q, DB> + Type<DB>,
{
    query.push(REMEMBER_INSERT);
    query.push_values([()], |mut row, ()| {
        row.push_bind(user_id)
            .push_bind(message_id)
            .push_bind(operation)
            .push_bind(answer)
            .push_bind(now);
    });
    query.push(REMEMBER_ON_CONFLICT);
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

#[cfg(test)]
mod tests {
    use pm_shared::domain::EntityType;

    use super::*;

    fn numbered(stream: &str, seq: u64) -> Numbered {
        let change = Change {
            project_id: stream.into(),
            lifecycle: false,
            entity_type: EntityType::WorkItem,
            entity_id: "item".into(),
            action: Action::Updated,
            changes: Vec::new(),
            event: Payload::ProjectCreated(Default::default()),
        };
        let actor = Actor {
            user_id: "user".into(),
        };
        Numbered {
            stream: stream.into(),
            seq,
            activity: NewActivity::of(&change, &actor, 0).unwrap(),
            event_frame: Bytes::new(),
        }
    }

    /// A lone write and a chunk get the same statements, one row per change (one per stream
    /// for the seqs), with one placeholder per bound value.
    #[test]
    fn appends_take_one_row_per_change() {
        let (a, b) = (numbered("s", 1), numbered("s", 2));
        let streams = [("s", 2)];
        let mut query = QueryBuilder::new("");
        push_appends(&mut query, [&a, &b], &streams);
        let nine = "(?, ?, ?, ?, ?, ?, ?, ?, ?)";
        assert_eq!(
            query.sql(),
            format!(
                "{ACTIVITY_INSERT}VALUES {nine}, {nine};\n\
                 INSERT INTO pm_streams (stream, last_seq) VALUES (?, ?) \
                 ON CONFLICT (stream) DO UPDATE SET last_seq = excluded.last_seq;\n\
                 INSERT INTO pm_events (stream, seq, frame, created_at) VALUES (?, ?, ?, ?), (?, ?, ?, ?)"
            )
        );
    }
}
