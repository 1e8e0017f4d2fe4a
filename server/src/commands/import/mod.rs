//! Sync import: merges an `ExportData` document in ONE transaction.
//!
//! Each entity kind has one upsert (`projects`, `sprints`, `work_items`, `comments`,
//! `dependencies`, `time_entries`): it checks the row, decides once whether to insert it,
//! replace the stored row or leave it ([`decide`]), writes through `store`, and produces the
//! row's change. This module holds what they share and the order they run in.
//!
//! Rows are upserted by id with last-writer-wins on `updated_at`: an unknown id is created, a
//! newer row replaces the stored one (a row deleted here comes back when the import is newer than
//! the deletion), an older or equal one is skipped. Dependencies have no `updated_at`: a known id
//! or an already linked pair is skipped. Importing the same document twice therefore changes
//! nothing the second time.
//!
//! Every row is checked before it is written. What happens to a row that cannot be stored (a
//! bad value, text over a limit, a link to an item that is nowhere) depends on the [`Mode`]:
//! - tolerant (the default): the row is left out and everything else is imported. Each row is
//!   written inside its own savepoint, so a refused row leaves nothing behind; the answer lists
//!   it in `skipped` (its list, its place in the file, its id, the field and the reason) and
//!   counts it among its list's skipped rows. Rows that need it (a comment on a refused work
//!   item, a child of one) are refused in turn, saying what they miss. What the whole request
//!   may not do (another schema, a project the caller may not administer) still refuses it all.
//! - strict: the first bad row rejects the whole import with a VALIDATION_ERROR whose field names
//!   the row and the field (`work_items[3].status`), as the import always did.
//!
//! What the import changes is logged and broadcast like any other write: one activity row and
//! one event per created or updated entity, in the order projects, sprints, work items (parents
//! first), comments, dependencies, time entries.
//!
//! Differences from the reference's import, all deliberate: one transaction, activity rows and
//! events, precise errors, and a replaced row's `version` becomes at least the stored version + 1
//! so every client applies the change. Not checked on import (the reference could store such data
//! over REST): the epic > story > task type rule; checked instead are existence, same project
//! and the absence of parent cycles.
//!
//! An import never refuses what this server exported, including rows an older server stored
//! before the time range rule (`domain::timestamp`: 1970 to the end of year 9999) existed, such
//! as a time entry started at i64::MIN. Such rows are repaired rather than refused: every
//! timestamp of the document (`created_at`, `updated_at`, sprint dates, time entry times) is
//! clamped into the range before anything is checked (a sprint whose two dates both fall on the
//! same side of the range keeps one second between them), and a time entry's `duration_seconds`
//! is recomputed from its (clamped) times without overflow and clamped to the protocol's int32
//! (68 years); the document's own `duration_seconds` is never read. An `ended_at` before
//! `started_at` is still refused (no server ever stored one).
//!
//! Who the rows name is kept as written where it only informs (`created_by`/`updated_by` of
//! every row, comments' authors, dependencies' creators, time entries' `user_id`), but it never
//! grants anything: a project the import creates gets one member, the importer, as its admin —
//! not the `created_by` the document names, which any file can set to anyone (that let one user
//! make another the admin of a project they had never seen).
use std::collections::{BTreeSet, HashSet};
use std::fmt::Display;

use crate::store::Conn;
use pm_shared::domain::limits::ValidationLimits;
use pm_shared::domain::EntityType;
use pm_shared::domain::{self, limits};
use pm_shared::proto::{self, Payload};

use super::{Action, Actor, Batch, Change, Effect};
use crate::error::{AppError, AppResult};
use crate::store;
use crate::store::pipeline::{raw, IMPORT_ROW, IMPORT_ROW_KEEP, IMPORT_ROW_UNDO};
use crate::sync::{ExportData, SCHEMA_VERSION};

mod comments;
mod dependencies;
mod projects;
mod sprints;
mod time_entries;
mod work_items;

/// What an import does with a row it cannot store (see the module comment).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// The row is left out, with its reason; the rest is imported.
    #[default]
    Tolerant,
    /// The first such row refuses the whole import.
    Strict,
}

/// One import request: the document and how to treat rows it cannot store.
#[derive(Debug, Clone)]
pub struct Import {
    pub data: ExportData,
    pub mode: Mode,
}

/// The lists of the document in the order they are imported: a skip list is sorted so.
pub(crate) const LISTS: [&str; 6] = [
    "projects",
    "sprints",
    "work_items",
    "comments",
    "dependencies",
    "time_entries",
];

/// Sorts skipped rows by list (in import order), then by their place in the file.
pub(crate) fn sort_skipped(skipped: &mut [proto::ImportSkip]) {
    skipped.sort_by_key(|s| {
        (
            LISTS
                .iter()
                .position(|l| *l == s.entity)
                .unwrap_or(LISTS.len()),
            s.index,
        )
    });
}

/// Whether a tolerant import leaves the row out for this error: the row's own fault. Anything
/// else (the database, the disk, the caller's rights) fails the whole import.
fn refuses_only_the_row(e: &AppError) -> bool {
    matches!(
        e,
        AppError::Validation { .. }
            | AppError::InvalidMessage(_)
            | AppError::Duplicate { .. }
            | AppError::NotFound(_)
            | AppError::Conflict(_)
            | AppError::VersionConflict { .. }
            | AppError::DeleteBlocked(_)
    )
}

/// The skip entry for row `index` of `list` refused with `e`: the row's prefix of the message
/// (`work_items[3] (id …): `) and of the field (`work_items[3].`) left out, as the entry says
/// them itself.
pub(crate) fn skip_entry(list: &str, index: usize, id: &str, e: &AppError) -> proto::ImportSkip {
    let message = match e {
        AppError::Validation { message, .. } | AppError::Duplicate { message, .. } => {
            message.clone()
        }
        AppError::NotFound(m)
        | AppError::Conflict(m)
        | AppError::InvalidMessage(m)
        | AppError::DeleteBlocked(m) => m.clone(),
        other => other.to_string(),
    };
    let prefix = format!("{list}[{index}] (id {id}): ");
    let reason = message
        .strip_prefix(&prefix)
        .unwrap_or(&message)
        .to_string();
    let field_prefix = format!("{list}[{index}].");
    let field = e.field().map(|f| {
        f.strip_prefix(&field_prefix)
            .map_or(f.clone(), str::to_string)
    });
    proto::ImportSkip {
        entity: list.to_string(),
        index: u32::try_from(index).unwrap_or(u32::MAX),
        id: id.to_string(),
        field,
        reason,
    }
}

/// Refuses a document of a schema this server does not read.
pub(crate) fn check_schema(version: u32) -> AppResult<()> {
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    Err(AppError::validation(
        "schema_version",
        format!("Unsupported schema_version {version}: this server reads version {SCHEMA_VERSION}"),
    ))
}

/// The import's error for row `index` of `list`: `work_items[3] (id …): status: …`, on the
/// field `work_items[3].status`. A large import's plan names rows the same way.
pub(crate) fn row_error(
    list: &str,
    index: usize,
    id: &str,
    field: &str,
    message: impl Display,
) -> AppError {
    AppError::validation(
        &format!("{list}[{index}].{field}"),
        format!("{list}[{index}] (id {id}): {field}: {message}"),
    )
}

pub async fn run(
    conn: &mut Conn<'_>,
    actor: &Actor,
    import: Import,
    limits: &ValidationLimits,
) -> AppResult<Effect> {
    let Import { mut data, mode } = import;
    check_schema(data.schema_version)?;
    clamp_times(&mut data);
    let mut im = Importer {
        conn: conn.reborrow(),
        actor,
        mode,
        limits,
        project_events: Vec::new(),
        changes: Vec::new(),
        touched: BTreeSet::new(),
        skipped: Vec::new(),
    };
    im.users(&data).await?;
    let projects = im.projects(&data.projects).await?;
    let sprints = im.sprints(&data.sprints).await?;
    let work_items = im.work_items(&data.work_items).await?;
    let comments = im.comments(&data.comments).await?;
    let dependencies = im.dependencies(&data.dependencies).await?;
    let time_entries = im.time_entries(&data.time_entries).await?;
    im.renumber().await?;
    let mut changes = im.project_changes().await?;
    changes.append(&mut im.changes);

    let swim_lanes = Counts {
        skipped: data.swim_lanes.len() as u32,
        ..Default::default()
    };
    let result = proto::ImportResult {
        projects: projects.proto(),
        sprints: sprints.proto(),
        swim_lanes: swim_lanes.proto(),
        work_items: work_items.proto(),
        comments: comments.proto(),
        dependencies: dependencies.proto(),
        time_entries: time_entries.proto(),
        skipped: {
            let mut skipped = std::mem::take(&mut im.skipped);
            sort_skipped(&mut skipped);
            skipped
        },
    };
    Ok(Effect::Batch(Batch {
        changes,
        response: Some(Payload::ImportResult(result)),
    }))
}

/// One row of the document, for error messages: `work_items[3] (id …): status: …`.
struct Row<'a> {
    list: &'static str,
    index: usize,
    id: &'a str,
}

impl Row<'_> {
    /// An import may update a row but never move it to another owner (project, work item).
    fn keep_owner(
        &self,
        field: &str,
        what: &str,
        owner: &str,
        stored: &str,
        imported: &str,
    ) -> AppResult<()> {
        if stored == imported {
            return Ok(());
        }
        Err(self.err(
            field,
            format!("the {what} belongs to {owner} {stored}; an import cannot move it"),
        ))
    }

    fn err(&self, field: &str, message: impl Display) -> AppError {
        row_error(self.list, self.index, self.id, field, message)
    }

    fn rule(&self, e: domain::RuleError) -> AppError {
        self.err(e.field, e.message)
    }

    fn uuid(&self, field: &str, value: &str) -> AppResult<String> {
        uuid::Uuid::parse_str(value.trim())
            .map(|u| u.to_string())
            .map_err(|_| self.err(field, format!("'{value}' is not a UUID")))
    }

    fn opt_uuid(&self, field: &str, value: Option<&str>) -> AppResult<Option<String>> {
        match value.map(str::trim).filter(|v| !v.is_empty()) {
            Some(v) => self.uuid(field, v).map(Some),
            None => Ok(None),
        }
    }

    /// An integer stored as the protocol's int32, within `min..=i32::MAX`.
    fn int32(&self, field: &str, value: i64, min: i64) -> AppResult<i64> {
        if (min..=i64::from(i32::MAX)).contains(&value) {
            Ok(value)
        } else {
            Err(self.err(
                field,
                format!("{value} is out of range ({min}..={})", i32::MAX),
            ))
        }
    }
}

/// The ids of one list seen so far: each may appear once.
#[derive(Default)]
struct Seen(HashSet<String>);

impl Seen {
    /// The row's id, canonical, unless it is not a UUID or an earlier row had it.
    fn id(&mut self, row: &Row<'_>) -> AppResult<String> {
        let id = row.uuid("id", row.id)?;
        if !self.0.insert(id.clone()) {
            return Err(row.err("id", "appears more than once in this import"));
        }
        Ok(id)
    }
}

/// How a row is written.
enum Write<T> {
    Insert,
    /// Replaces `old`; `revive` when `old` was deleted (clients see it created again).
    Replace {
        old: T,
        revive: bool,
    },
}

/// Last writer wins: an unknown row is inserted, a newer one replaces the stored row (deleted
/// or not), an older or equal one is left as it is (None).
fn decide<T>(
    old: Option<T>,
    updated_at: i64,
    old_updated: impl Fn(&T) -> i64,
    deleted: impl Fn(&T) -> bool,
) -> Option<Write<T>> {
    match old {
        None => Some(Write::Insert),
        Some(old) if updated_at > old_updated(&old) => {
            let revive = deleted(&old);
            Some(Write::Replace { old, revive })
        }
        Some(_) => None,
    }
}

/// What clients are told of a replaced row: a revived one is created again.
fn replaced(revive: bool) -> Action {
    if revive {
        Action::Created
    } else {
        Action::Updated
    }
}

/// What an upsert did with one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Created,
    Updated,
    Skipped,
}

impl<T> Write<T> {
    fn outcome(&self) -> Outcome {
        match self {
            Write::Insert => Outcome::Created,
            Write::Replace { .. } => Outcome::Updated,
        }
    }
}

#[derive(Default)]
struct Counts {
    created: u32,
    updated: u32,
    skipped: u32,
}

impl Counts {
    fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Created => self.created += 1,
            Outcome::Updated => self.updated += 1,
            Outcome::Skipped => self.skipped += 1,
        }
    }

    fn proto(&self) -> Option<proto::ImportCounts> {
        Some(proto::ImportCounts {
            created: self.created,
            updated: self.updated,
            skipped: self.skipped,
        })
    }
}

struct Importer<'c> {
    conn: Conn<'c>,
    actor: &'c Actor,
    mode: Mode,
    /// The server's configured text maxima: an import accepts what a client could have written.
    limits: &'c ValidationLimits,
    /// Project lifecycle events, emitted first (workspace stream).
    project_events: Vec<(String, Action, Vec<proto::FieldChange>)>,
    changes: Vec<Change>,
    /// Projects whose items changed (their item counter is re-derived).
    touched: BTreeSet<String>,
    /// The rows a tolerant import left out.
    skipped: Vec<proto::ImportSkip>,
}

/// What a row's savepoint undoes besides its writes: the changes it announced.
struct Mark {
    changes: usize,
    project_events: usize,
}

impl Importer<'_> {
    fn tolerant(&self) -> bool {
        self.mode == Mode::Tolerant
    }

    /// Before a row is written: in tolerant mode, the savepoint its refusal rolls back to.
    async fn begin_row(&mut self) -> AppResult<Mark> {
        if self.tolerant() {
            raw(&mut self.conn, IMPORT_ROW).await?;
        }
        Ok(Mark {
            changes: self.changes.len(),
            project_events: self.project_events.len(),
        })
    }

    /// After a row: what it did (Some), or (tolerant mode, a row's own fault) None when it was
    /// left out, its writes and changes undone and its reason recorded. Any other error, and
    /// every error in strict mode, fails the import.
    async fn end_row<T>(
        &mut self,
        mark: Mark,
        row: &Row<'_>,
        result: AppResult<T>,
    ) -> AppResult<Option<T>> {
        if !self.tolerant() {
            return result.map(Some);
        }
        match result {
            Ok(done) => {
                raw(&mut self.conn, IMPORT_ROW_KEEP).await?;
                Ok(Some(done))
            }
            Err(e) if refuses_only_the_row(&e) => {
                raw(&mut self.conn, IMPORT_ROW_UNDO).await?;
                self.changes.truncate(mark.changes);
                self.project_events.truncate(mark.project_events);
                self.refuse(row, e)?;
                Ok(None)
            }
            // The whole command is rolled back (its savepoint or transaction, this row's
            // savepoint with it); the error stays the one that happened (a full disk, say).
            Err(e) => Err(e),
        }
    }

    /// A row that cannot be stored: in tolerant mode it is recorded as skipped (Ok), otherwise
    /// its error is the import's.
    fn refuse(&mut self, row: &Row<'_>, e: AppError) -> AppResult<()> {
        if !self.tolerant() || !refuses_only_the_row(&e) {
            return Err(e);
        }
        self.skipped
            .push(skip_entry(row.list, row.index, row.id, &e));
        Ok(())
    }

    /// Every person the document names gets a users row (assignees need one, and boards show
    /// their names). Values that are not UUIDs are reported by the row's own check.
    async fn users(&mut self, data: &ExportData) -> AppResult<()> {
        let mut ids: BTreeSet<String> = BTreeSet::new();
        let mut add = |v: &str| {
            if let Ok(u) = uuid::Uuid::parse_str(v.trim()) {
                ids.insert(u.to_string());
            }
        };
        for p in &data.projects {
            add(&p.created_by);
            add(&p.updated_by);
        }
        for s in &data.sprints {
            add(&s.created_by);
            add(&s.updated_by);
        }
        for w in &data.work_items {
            add(&w.created_by);
            add(&w.updated_by);
            if let Some(a) = &w.assignee_id {
                add(a);
            }
        }
        for c in &data.comments {
            add(&c.created_by);
            add(&c.updated_by);
        }
        for d in &data.dependencies {
            add(&d.created_by);
        }
        for t in &data.time_entries {
            add(&t.user_id);
        }
        for id in ids {
            super::ensure_user(&mut self.conn, &id).await?;
        }
        Ok(())
    }

    /// Each touched project's next item number lies above every number it has used.
    async fn renumber(&mut self) -> AppResult<()> {
        for project in &self.touched {
            store::projects::renumber(&mut self.conn, project).await?;
        }
        Ok(())
    }

    /// A change to one of a project's rows, announced in the project's stream.
    fn push(
        &mut self,
        project_id: String,
        entity_type: EntityType,
        id: &str,
        action: Action,
        changes: Vec<proto::FieldChange>,
        event: Payload,
    ) {
        self.changes.push(Change {
            project_id,
            lifecycle: false,
            entity_type,
            entity_id: id.to_string(),
            action,
            changes,
            event,
        });
    }
}

/// Moves every timestamp of the document into the time range rule's window (see the module
/// comment): rows an older server stored out of range import, repaired, instead of making the
/// whole backup unrestorable.
fn clamp_times(data: &mut ExportData) {
    let c = domain::clamp_timestamp;
    for p in &mut data.projects {
        (p.created_at, p.updated_at) = (c(p.created_at), c(p.updated_at));
    }
    for w in &mut data.work_items {
        (w.created_at, w.updated_at) = (c(w.created_at), c(w.updated_at));
    }
    for s in &mut data.sprints {
        (s.created_at, s.updated_at) = (c(s.created_at), c(s.updated_at));
        let (start, end) = (c(s.start_date), c(s.end_date));
        // Both beyond the same edge: keep them in order, one second apart.
        (s.start_date, s.end_date) = if s.start_date < s.end_date && start == end {
            if start == limits::TIMESTAMP_MIN {
                (start, start + 1)
            } else {
                (end - 1, end)
            }
        } else {
            (start, end)
        };
    }
    for m in &mut data.comments {
        (m.created_at, m.updated_at) = (c(m.created_at), c(m.updated_at));
    }
    for d in &mut data.dependencies {
        d.created_at = c(d.created_at);
    }
    for t in &mut data.time_entries {
        (t.created_at, t.updated_at) = (c(t.created_at), c(t.updated_at));
        t.started_at = c(t.started_at);
        t.ended_at = t.ended_at.map(c);
    }
}

#[cfg(test)]
mod tests {
    use crate::sync::{SprintDto, TimeEntryDto};

    use super::*;

    #[test]
    fn out_of_range_times_are_clamped_and_sprints_stay_in_order() {
        let max = limits::TIMESTAMP_MAX;
        let sprint = |start, end| SprintDto {
            id: String::new(),
            project_id: String::new(),
            name: String::new(),
            goal: None,
            start_date: start,
            end_date: end,
            status: String::new(),
            version: 1,
            created_at: i64::MIN,
            updated_at: i64::MAX,
            created_by: String::new(),
            updated_by: String::new(),
        };
        let mut data = ExportData {
            schema_version: SCHEMA_VERSION,
            exported_at: String::new(),
            exported_by: String::new(),
            projects: vec![],
            work_items: vec![],
            sprints: vec![
                sprint(i64::MIN, -5),
                sprint(max + 1, i64::MAX),
                sprint(-1, 10),
                sprint(5, 10),
                sprint(10, 5),
            ],
            comments: vec![],
            swim_lanes: vec![],
            dependencies: vec![],
            time_entries: vec![TimeEntryDto {
                id: String::new(),
                work_item_id: String::new(),
                user_id: String::new(),
                started_at: i64::MIN,
                ended_at: Some(i64::MAX),
                duration_seconds: Some(-7),
                description: None,
                is_running: false,
                created_at: -1,
                updated_at: max + 1,
            }],
        };
        clamp_times(&mut data);
        let dates: Vec<(i64, i64)> = data
            .sprints
            .iter()
            .map(|s| (s.start_date, s.end_date))
            .collect();
        assert_eq!(dates, [(0, 1), (max - 1, max), (0, 10), (5, 10), (10, 5)]);
        assert_eq!(
            (data.sprints[0].created_at, data.sprints[0].updated_at),
            (0, max)
        );
        let t = &data.time_entries[0];
        assert_eq!(
            (t.started_at, t.ended_at, t.created_at, t.updated_at),
            (0, Some(max), 0, max)
        );
    }
}
