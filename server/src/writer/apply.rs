//! One command inside the group's open transaction: the idempotency check, the user row, the
//! command's own description of its change ([`WriteCommand::describe`]), then its activity row
//! and event. Committing and publishing are the group's (`group`).
use crate::store::Conn;
use bytes::Bytes;

use super::append::{
    append_change, idempotent_replay, remember, Appended, Numbered, Numbering, Tail,
};
use super::change::{Batch, Committed, Effect, MembershipChange};
use super::command::{Context, WriteCommand};
use super::known_users::KnownUsers;
use super::write_behind::WriteBehind;
use crate::access::Actor;
use crate::config::AuthMode;
use crate::error::{AppError, AppResult};
use crate::store::pipeline::ensure_user;
use pm_shared::domain::limits::ValidationLimits;

/// What [`apply`] reads and updates of the writer's memory during a group.
pub(super) struct Pipeline<'a> {
    pub numbering: Numbering<'a>,
    pub auth: AuthMode,
    pub limits: &'a ValidationLimits,
    /// Users whose row is committed (a command by one of them skips its `INSERT OR IGNORE`).
    pub known_users: &'a KnownUsers,
}

/// What one command did inside its group's transaction, waiting for the commit.
pub(super) struct Applied {
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
    /// The connection the command came from (set by the group).
    pub origin: Option<crate::hub::ConnId>,
}

impl Applied {
    /// The command came from connection `origin` (the group knows it, `apply` does not).
    pub fn with_origin(self, origin: Option<crate::hub::ConnId>) -> Applied {
        Applied { origin, ..self }
    }

    fn answer(committed: Committed) -> Applied {
        Applied {
            committed,
            keep: false,
            outgoing: Vec::new(),
            new_user: None,
            membership: None,
            advanced_savepoint: false,
            origin: None,
        }
    }
}

/// Frames for the hub: one or more consecutive events of `stream` (published to `also` too: a
/// project's lifecycle events on the workspace stream), the highest seq among them `last_seq`
/// (the stream's last published seq once `EventHub::publish` has them).
pub(super) struct Outgoing {
    pub stream: String,
    pub also: Option<String>,
    /// The lowest seq among them.
    pub first_seq: u64,
    pub last_seq: u64,
    pub frames: Vec<Bytes>,
}

/// One command: validate, write, append the activity row and the event. `then` is a statement
/// the group wants run right after the command's writes when they succeed (its savepoint
/// step), in the same round trip as the command's last statement; whether it ran is in
/// [`Applied::advanced_savepoint`].
///
/// With `behind`, the command is one whose writes the group lets wait (see `write_behind`):
/// its item is read through the group's waiting writes, and its own writes join them instead
/// of running now.
pub(super) async fn apply<C: WriteCommand>(
    pipeline: &mut Pipeline<'_>,
    tx: &mut Conn<'_>,
    actor: &Actor,
    request_id: Option<&str>,
    command: C,
    then: Option<&'static str>,
    mut behind: Option<&mut WriteBehind>,
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
    // Every statement is a round trip to sqlx's SQLite thread, which is most of what a write
    // costs: skip the user row when it is known to exist already. (A command that then fails
    // takes the row back with its savepoint.)
    let known_user = pipeline.known_users.contains(&actor.user_id);
    if !known_user {
        ensure_user(tx, &actor.user_id).await?;
    }
    let context = Context {
        auth: pipeline.auth,
        actor,
        limits: pipeline.limits,
        items: behind.as_deref().map(|b| &b.items),
    };
    let effect = command.describe(tx, context).await?;
    let new_user = (!known_user).then(|| actor.user_id.clone());
    let (change, deferred) = match effect {
        Effect::Changed(change) => (change, None),
        Effect::Deferred(change, write) => (change, Some(write)),
        Effect::Batch(batch) => {
            let mut applied = apply_batch(pipeline, tx, actor, idempotency, batch).await?;
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
    let numbering = &mut pipeline.numbering;
    let appended = match (behind.take(), deferred) {
        (Some(behind), Some(write)) => {
            let numbered = Numbered::counted(numbering, tx, actor, &change, now).await?;
            numbering.seqs.taken(&numbered.stream, numbered.seq);
            let appended = numbered.appended(numbering.epoch, &change, false);
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
            append_change(numbering, tx, actor, &change, now, tail).await?
        }
    };
    let Appended {
        stream,
        seq,
        frames,
        advanced_savepoint,
    } = appended;
    let membership = change.membership();
    let also = change.lifecycle.then(|| change.project_id.clone());
    let committed = Committed {
        event: change.event,
        stream,
        seq,
    };
    Ok(Applied {
        outgoing: vec![Outgoing {
            stream: committed.stream.clone(),
            also,
            first_seq: committed.seq,
            last_seq: committed.seq,
            frames: frames.to_vec(),
        }],
        committed,
        keep: true,
        new_user,
        membership,
        advanced_savepoint,
        origin: None,
    })
}

/// The multi-event path of [`apply`] (see [`Batch`]). The group publishes the frames after
/// the commit, in order.
async fn apply_batch(
    pipeline: &mut Pipeline<'_>,
    tx: &mut Conn<'_>,
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
        } = append_change(
            &mut pipeline.numbering,
            tx,
            actor,
            &change,
            now,
            Tail::default(),
        )
        .await?;
        let also = change.lifecycle.then(|| change.project_id.clone());
        match outgoing.last_mut() {
            Some(o) if o.stream == stream && o.also == also => {
                o.frames.extend(frames);
                o.last_seq = o.last_seq.max(seq);
            }
            _ => outgoing.push(Outgoing {
                stream: stream.clone(),
                also,
                first_seq: seq,
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
        origin: None,
    })
}
