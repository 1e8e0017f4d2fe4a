//! Write-behind inside a group: work-item updates that wait for one shared round trip.
//!
//! Every statement is a round trip (to sqlx's SQLite thread, or over the network to
//! PostgreSQL), and those, not SQL, are what a write costs (see `bench/NOTES.md`). An update of
//! a work item that keeps its parent reads its item, validates, and then has nothing left but
//! writes: its UPDATE, its activity row, its stream's new last seq and its event. Inside a
//! group those writes wait here, and the writes of many updates go to the database together,
//! [`CHUNKS`] updates to a round trip; the items the group's updates read are read together
//! too, in one round trip when the group starts. SQLite takes a chunk as several statements in
//! one query; PostgreSQL, which prepares one statement at a time, as ONE statement whose
//! writes are data-modifying CTEs. Those all see the database as it was before the statement,
//! so a PostgreSQL chunk never holds two updates of one item (nor two writes that add a user
//! row: see [`pg_run`]).
//!
//! What keeps this correct:
//! - An update that waits here made no write yet, so it needs no savepoint of its own: if it
//!   fails it leaves nothing behind, and a later command's failure cannot undo it.
//! - Its item, as its waiting UPDATE will leave it, is kept in [`WrittenItems`]: a later update
//!   of the same item in the group reads it from there, never the stale row in the database.
//! - Any other command first sends everything waiting here to SQLite (and the overlay is
//!   dropped), so it reads the database as if every earlier command had run on its own.
//! - If a round trip of waiting writes fails, the transaction is in an unknown state: the whole
//!   group fails and nothing of it is committed, as when any step of a group fails. Every write
//!   waiting here was validated against the state it will apply to, so only the database itself
//!   failing (I/O, a full disk) gets there.
use crate::store::Conn;
use std::collections::HashMap;

use sqlx::{Postgres, QueryBuilder, Sqlite};

use super::append::{push_appends, Numbered};
use super::change::DeferredWrite;
use crate::store::events::{APPEND_INSERT, TAKE_SEQ_INSERT, TAKE_SEQ_ON_CONFLICT};
use crate::store::hierarchy::FillRow;
use crate::store::pipeline::{self, ACTIVITY_INSERT};
use crate::store::rows::WorkItemRow;

/// Most waiting updates sent in one round trip, largest first: a flush of n uses the fewest
/// chunks these sizes add up to. A chunk's text depends on which columns its updates set, so
/// mixed edits make new texts for sqlx to prepare; runs of the same edit (titles, moves)
/// repeat a few.
const CHUNKS: [usize; 7] = [64, 32, 16, 8, 4, 2, 1];

/// One update's writes, validated and numbered, not yet sent.
struct Waiting {
    write: DeferredWrite,
    numbered: Numbered,
    /// The item's row as the write leaves it, when the command said (see [`pg_run`]).
    leaves: Option<WorkItemRow>,
}

/// The group's waiting writes and the items they will leave behind.
#[derive(Default)]
pub(crate) struct WriteBehind {
    waiting: Vec<Waiting>,
    pub items: WrittenItems,
}

impl WriteBehind {
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Queues an update's writes; the item as they leave it is what later updates in the
    /// group read.
    pub fn push(&mut self, mut write: DeferredWrite, numbered: Numbered) {
        let leaves = write.leaves.take().map(|item| {
            let row = item.0.clone();
            self.items.read(vec![*item]);
            row
        });
        self.waiting.push(Waiting {
            write,
            numbered,
            leaves,
        });
    }

    /// Sends every waiting write to SQLite, in order, then runs `then` (the group's savepoint
    /// step, or its COMMIT) if given: on SQLite in the round trip of the last chunk. The items
    /// stay known only while nothing else writes: the caller drops them before any other
    /// command runs.
    pub async fn flush(
        &mut self,
        conn: &mut Conn<'_>,
        then: Option<&'static str>,
    ) -> sqlx::Result<()> {
        if self.waiting.is_empty() && then.is_none() {
            return Ok(());
        }
        let mut rest = &self.waiting[..];
        let mut then = then;
        while !rest.is_empty() {
            let fits = match conn {
                Conn::Sqlite(_) => rest.len(),
                Conn::Postgres(_) => pg_run(rest),
            };
            let n = CHUNKS.into_iter().find(|&c| c <= fits).unwrap_or(1);
            let (chunk, later) = rest.split_at(n);
            let streams = last_seqs(chunk);
            match conn {
                Conn::Sqlite(c) => {
                    let mut query = chunk_query(chunk, &streams)?;
                    if let Some(step) = then.filter(|_| later.is_empty()) {
                        query.push(";\n");
                        query.push(step);
                        then = None;
                    }
                    query.build().execute(&mut **c).await?;
                }
                Conn::Postgres(c) => {
                    pg_chunk_query(chunk, &streams)?
                        .build()
                        .execute(&mut **c)
                        .await?;
                }
            }
            rest = later;
        }
        self.waiting.clear();
        if let Some(step) = then {
            pipeline::raw(conn, step).await?;
        }
        Ok(())
    }
}

/// How many of `waiting`, from the first, one PostgreSQL statement may hold. Its CTEs all see
/// the database as it was before the statement, so two updates of one item cannot both be
/// CTEs (the second would not see the first): an item updated several times in a chunk is
/// written once, as its last update leaves it ([`Collapsed`]), which needs every one of those
/// updates to say what it leaves and to be a lone UPDATE. The run stops before an update that
/// breaks that, and before a second write that adds a user row first (an assignee's: two such
/// inserts of one user in one statement are not ordered).
fn pg_run(waiting: &[Waiting]) -> usize {
    // Each item of the run, and whether its updates so far may be written as one.
    let mut items: Vec<(&str, bool)> = Vec::new();
    let mut adds_user = false;
    for (i, w) in waiting.iter().enumerate() {
        let item = w.numbered.activity.entity_id();
        let several = w.write.statements().nth(1).is_some();
        let collapsible = w.leaves.is_some() && !several;
        match items.iter().find(|(id, _)| *id == item) {
            Some((_, true)) if collapsible => continue,
            Some(_) => return i,
            None if several && adds_user => return i,
            None => {
                items.push((item, collapsible));
                adds_user |= several;
            }
        }
    }
    waiting.len()
}

/// Every column an update that keeps its parent may change, set from the row it leaves: one
/// UPDATE for an item that several updates of a chunk change (see [`pg_run`]).
const COLLAPSED_UPDATE: &str = "UPDATE pm_work_items SET item_type = ?, position = ?, title = ?, \
     description = ?, status = ?, priority = ?, story_points = ?, assignee_id = ?, sprint_id = ?, \
     version = ?, updated_at = ?, updated_by = ?";

/// [`COLLAPSED_UPDATE`] as a CTE named `w<ctes>`, for `row`.
fn push_collapsed<'q>(
    query: &mut QueryBuilder<'q, Postgres>,
    ctes: &mut usize,
    row: &'q WorkItemRow,
) {
    query.push(format!("w{} AS (", *ctes));
    *ctes += 1;
    let values = [
        Column::Text(Some(&row.item_type)),
        Column::Int(Some(row.position)),
        Column::Text(Some(&row.title)),
        Column::Text(row.description.as_deref()),
        Column::Text(Some(&row.status)),
        Column::Text(Some(&row.priority)),
        Column::Int(row.story_points),
        Column::Text(row.assignee_id.as_deref()),
        Column::Text(row.sprint_id.as_deref()),
        Column::Int(Some(row.version)),
        Column::Int(Some(row.updated_at)),
        Column::Text(Some(&row.updated_by)),
    ];
    // One value per `?`, in order.
    for (piece, value) in COLLAPSED_UPDATE.split('?').zip(values) {
        query.push(piece);
        match value {
            Column::Text(v) => query.push_bind(v),
            Column::Int(v) => query.push_bind(v),
        };
    }
    query.push(" WHERE id = ");
    query.push_bind(row.id.as_str());
    query.push("), ");
}

/// A value of [`COLLAPSED_UPDATE`].
enum Column<'q> {
    Text(Option<&'q str>),
    Int(Option<i64>),
}

/// One round trip for a chunk of waiting updates: their own writes in order, then all their
/// activity rows in one INSERT, each stream's new last seq in one, and all their events in one.
/// sqlx's SQLite thread sends a message back for every statement, so rows share statements.
fn chunk_query<'q>(
    chunk: &'q [Waiting],
    streams: &'q [(&'q str, u64)],
) -> sqlx::Result<QueryBuilder<'q, Sqlite>> {
    let mut query = QueryBuilder::new("");
    for w in chunk {
        w.write.push_to(&mut query)?;
        query.push(";\n");
    }
    push_appends(&mut query, chunk.iter().map(|w| &w.numbered), streams);
    Ok(query)
}

/// [`chunk_query`] as one PostgreSQL statement: the updates' writes as data-modifying CTEs,
/// then the activity rows and the streams' new last seqs as CTEs of the events' INSERT.
fn pg_chunk_query<'q>(
    chunk: &'q [Waiting],
    streams: &'q [(&'q str, u64)],
) -> sqlx::Result<QueryBuilder<'q, Postgres>> {
    let mut query = QueryBuilder::new("WITH ");
    let mut ctes = 0;
    for (i, w) in chunk.iter().enumerate() {
        let item = w.numbered.activity.entity_id();
        let same = |v: &&Waiting| v.numbered.activity.entity_id() == item;
        if chunk[..i].iter().any(|v| same(&v)) {
            continue; // written with the item's first update, below
        }
        match chunk[i + 1..].iter().rfind(same) {
            // Updated again later in the chunk: written once, as the last update leaves it.
            Some(last) => match &last.leaves {
                Some(row) => push_collapsed(&mut query, &mut ctes, row),
                None => return Err(collapse_without_row()),
            },
            None => w.write.push_ctes_to(&mut query, &mut ctes)?,
        }
    }
    query.push("activity AS (");
    query.push(ACTIVITY_INSERT);
    query.push_values(chunk, |mut row, w| w.numbered.activity.push_row(&mut row));
    query.push("), seqs AS (");
    query.push(TAKE_SEQ_INSERT);
    query.push_values(streams, |mut row, (stream, seq)| {
        row.push_bind(*stream).push_bind(*seq as i64);
    });
    query.push(TAKE_SEQ_ON_CONFLICT);
    query.push(") ");
    query.push(APPEND_INSERT);
    query.push_values(chunk, |mut row, w| w.numbered.push_event_row(&mut row));
    Ok(query)
}

fn collapse_without_row() -> sqlx::Error {
    sqlx::Error::Protocol(
        "updates of one item were written together without the row they leave".into(),
    )
}

/// Each stream of the chunk with the last seq the chunk takes in it, in order of appearance.
fn last_seqs(chunk: &[Waiting]) -> Vec<(&str, u64)> {
    let mut streams: Vec<(&str, u64)> = Vec::new();
    for w in chunk {
        let (stream, seq) = (w.numbered.stream.as_str(), w.numbered.seq);
        match streams.iter_mut().find(|(s, _)| *s == stream) {
            Some(last) => last.1 = last.1.max(seq),
            None => streams.push((stream, seq)),
        }
    }
    streams
}

/// Work items as the database and the group's waiting writes leave them: (row, hierarchy
/// lists). Read at the start of a group for the updates in it, then kept current by each update
/// that waits; dropped before any other command runs.
#[derive(Default)]
pub struct WrittenItems {
    items: HashMap<String, KnownItem>,
}

/// A work item's row and its hierarchy lists (as [`crate::store::hierarchy::FILL_SQL`] rows).
pub type KnownItem = (WorkItemRow, Vec<FillRow>);

impl WrittenItems {
    /// Items as the database has them (read while nothing is waiting), or as a queued write
    /// leaves them.
    pub fn read(&mut self, items: Vec<KnownItem>) {
        for (row, lists) in items {
            self.items.insert(row.id.clone(), (row, lists));
        }
    }

    /// The item as the database and the waiting writes leave it, if it is known.
    pub fn get(&self, id: &str) -> Option<KnownItem> {
        self.items.get(id).cloned()
    }

    /// Forgets every item (another command may change them in the database).
    pub fn clear(&mut self) {
        self.items.clear();
    }
}
