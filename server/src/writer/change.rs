//! The writer's vocabulary: what a command tells it to write ([`Effect`], [`Change`]) and what
//! it answers ([`Committed`]). Commands build these; only the writer turns them into rows,
//! events and frames.
use pm_shared::domain::EntityType;
use pm_shared::proto::{FieldChange, Payload};
use sqlx::{QueryBuilder, Sqlite};

use super::write_behind::KnownItem;
use crate::store::Conn;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Created,
    Updated,
    Deleted,
}

impl Action {
    pub fn as_str(self) -> &'static str {
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
    pub entity_type: EntityType,
    pub entity_id: String,
    pub action: Action,
    pub changes: Vec<FieldChange>,
    /// The domain event, also the caller's response.
    pub event: Payload,
}

impl Change {
    /// Whether this change alters who may receive the project's events (token mode): a member
    /// added, changed or removed, or a project created with its creator as admin.
    pub(super) fn membership(&self) -> Option<MembershipChange> {
        let touches = self.entity_type == EntityType::ProjectMember
            || (self.entity_type == EntityType::Project && self.action == Action::Created);
        touches.then(|| MembershipChange {
            project_id: self.project_id.clone(),
            removed: self.action == Action::Deleted,
        })
    }
}

/// A change to who belongs to a project. A new member (or a project's creator) is admitted
/// before the event goes out; a removed member's connections leave the project's stream right
/// after it.
pub(super) struct MembershipChange {
    pub project_id: String,
    pub removed: bool,
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
    /// A change whose own write the command leaves to the writer, which runs it in the same
    /// round trip as the activity row and the event (see [`DeferredWrite`]).
    Deferred(Change, DeferredWrite),
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

/// One statement a command has validated but not run: the writer runs it first in its last
/// round trip. Only for a write that nothing else in the command reads back, and that can fail
/// only as any write can (then the whole command fails, as always).
pub struct DeferredWrite {
    pub sql: std::borrow::Cow<'static, str>,
    pub binds: Vec<Bind>,
    /// The work item as this write leaves it, when the command knows it whole: a group keeps
    /// it for later updates of the same item (see `write_behind`).
    pub leaves: Option<Box<KnownItem>>,
}

/// A parameter of a [`DeferredWrite`].
pub enum Bind {
    Text(Option<String>),
    Int(Option<i64>),
}

impl DeferredWrite {
    /// Appends this write to `query`, its parameters bound in order: each `?` of its text
    /// takes the next of [`Self::binds`] (the text has no `?` inside a literal).
    pub(crate) fn push_to<'q>(&'q self, query: &mut QueryBuilder<'q, Sqlite>) -> sqlx::Result<()> {
        let mut pieces = self.sql.split('?');
        if let Some(first) = pieces.next() {
            query.push(first);
        }
        let mut binds = self.binds.iter();
        for piece in pieces {
            match binds.next() {
                Some(Bind::Text(v)) => query.push_bind(v.as_deref()),
                Some(Bind::Int(v)) => query.push_bind(*v),
                None => return Err(parameters_mismatch()),
            };
            query.push(piece);
        }
        match binds.next() {
            Some(_) => Err(parameters_mismatch()),
            None => Ok(()),
        }
    }

    /// The write's statements as data-modifying CTEs of a PostgreSQL statement, each named
    /// `w<n>` with `n` counted across the statement (`ctes` is how many it has so far), with
    /// its parameters bound in order and a comma after each.
    pub(crate) fn push_ctes_to<'q>(
        &'q self,
        query: &mut QueryBuilder<'q, sqlx::Postgres>,
        ctes: &mut usize,
    ) -> sqlx::Result<()> {
        let mut binds = self.binds.iter();
        for statement in self.statements() {
            query.push(format!("w{} AS (", *ctes));
            *ctes += 1;
            let mut pieces = statement.split('?');
            if let Some(first) = pieces.next() {
                query.push(first);
            }
            for piece in pieces {
                match binds.next() {
                    Some(Bind::Text(v)) => query.push_bind(v.as_deref()),
                    Some(Bind::Int(v)) => query.push_bind(*v),
                    None => return Err(parameters_mismatch()),
                };
                query.push(piece);
            }
            query.push("), ");
        }
        match binds.next() {
            Some(_) => Err(parameters_mismatch()),
            None => Ok(()),
        }
    }

    /// The statements of [`Self::sql`], without the separators.
    pub(crate) fn statements(&self) -> impl Iterator<Item = &str> {
        self.sql.split(';').map(str::trim).filter(|s| !s.is_empty())
    }

    /// Runs the write on PostgreSQL together with taking `stream`'s next seq, in one
    /// statement: each of its statements becomes a data-modifying CTE of the seq's upsert.
    pub async fn take_seq_after(
        &self,
        conn: &mut sqlx::PgConnection,
        stream: &str,
    ) -> sqlx::Result<u64> {
        let statements: Vec<&str> = self
            .sql
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let mut sql = String::from("WITH ");
        for (i, statement) in statements.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("w{i} AS ({statement})"));
        }
        sql.push(' ');
        sql.push_str(crate::store::events::TAKE_NEXT_SEQ);
        let sql = crate::store::numbered(&sql);
        let mut query = sqlx::query_scalar::<_, i64>(&sql);
        let mut wanted = statements
            .iter()
            .map(|s| s.matches('?').count())
            .sum::<usize>();
        for bind in &self.binds {
            if wanted == 0 {
                return Err(parameters_mismatch());
            }
            wanted -= 1;
            query = match bind {
                Bind::Text(v) => query.bind(v.as_deref()),
                Bind::Int(v) => query.bind(*v),
            };
        }
        if wanted != 0 {
            return Err(parameters_mismatch());
        }
        let seq = query.bind(stream).fetch_one(&mut *conn).await?;
        Ok(seq as u64)
    }

    /// Runs the write now, for a command that must read its result back.
    pub async fn execute(&self, conn: &mut Conn<'_>) -> sqlx::Result<()> {
        match conn {
            Conn::Sqlite(c) => {
                let mut query = QueryBuilder::new("");
                self.push_to(&mut query)?;
                query.build().execute(&mut **c).await.map(|_| ())
            }
            Conn::Postgres(c) => {
                // One statement at a time (a prepared statement is one), each taking the
                // parameters its `?`s ask for, numbered as PostgreSQL wants them.
                let mut binds = self.binds.iter();
                for statement in self.sql.split(';').filter(|s| !s.trim().is_empty()) {
                    let wanted = statement.matches('?').count();
                    let sql = crate::store::numbered(statement);
                    let mut query = sqlx::query(&sql);
                    for _ in 0..wanted {
                        query = match binds.next() {
                            Some(Bind::Text(v)) => query.bind(v.as_deref()),
                            Some(Bind::Int(v)) => query.bind(*v),
                            None => return Err(parameters_mismatch()),
                        };
                    }
                    query.execute(&mut **c).await?;
                }
                match binds.next() {
                    Some(_) => Err(parameters_mismatch()),
                    None => Ok(()),
                }
            }
        }
    }
}

fn parameters_mismatch() -> sqlx::Error {
    sqlx::Error::Protocol("a deferred write's parameters do not match its placeholders".into())
}

/// The committed result: the event payload and where it sits in its stream.
#[derive(Debug, Clone)]
pub struct Committed {
    pub event: Payload,
    pub stream: String,
    pub seq: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(sql: &'static str, binds: Vec<Bind>) -> DeferredWrite {
        DeferredWrite {
            sql: sql.into(),
            binds,
            leaves: None,
        }
    }

    #[test]
    fn a_deferred_write_binds_its_parameters_in_order() {
        let w = write(
            "UPDATE t SET a = ?, b = ? WHERE id = ?",
            vec![
                Bind::Text(Some("x".into())),
                Bind::Int(None),
                Bind::Text(Some("id".into())),
            ],
        );
        let mut query = QueryBuilder::new("");
        w.push_to(&mut query).unwrap();
        assert_eq!(query.sql(), "UPDATE t SET a = ?, b = ? WHERE id = ?");

        let short = write("UPDATE t SET a = ? WHERE id = ?", vec![Bind::Int(Some(1))]);
        assert!(short.push_to(&mut QueryBuilder::new("")).is_err());
        let long = write("UPDATE t SET a = 1", vec![Bind::Int(Some(1))]);
        assert!(long.push_to(&mut QueryBuilder::new("")).is_err());
    }
}
