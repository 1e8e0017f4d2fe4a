//! Sync import: merges an `ExportData` document in ONE transaction.
//!
//! Rows are upserted by id with last-writer-wins on `updated_at`: an unknown id is created, a
//! newer row replaces the stored one (a row deleted here comes back when the import is newer than
//! the deletion), an older or equal one is skipped. Dependencies have no `updated_at`: a known id
//! or an already linked pair is skipped. Importing the same document twice therefore changes
//! nothing the second time.
//!
//! Every row is checked before it is written, and the first bad one rejects the whole import with
//! a VALIDATION_ERROR whose field names the row and the field (`work_items[3].status`). What the
//! import changes is logged and broadcast like any other write: one activity row and one event
//! per created or updated entity, in the order projects, sprints, work items (parents first),
//! comments, dependencies, time entries.
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
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Display;

use pm_shared::domain::EntityType;
use pm_shared::domain::{self, limits, DependencyType, ItemType, ProjectStatus, SprintStatus};
use pm_shared::proto::{self, Payload};
use sqlx::SqliteConnection;

use super::{dependency, track, Action, Actor, Batch, Change, Effect};
use crate::error::{AppError, AppResult};
use crate::store::rows::{CommentRow, ProjectRow, SprintRow, TimeEntryRow, WorkItemRow};
use crate::store::{hierarchy, queries};
use crate::sync::{
    CommentDto, DependencyDto, ExportData, ProjectDto, SprintDto, TimeEntryDto, WorkItemDto,
    SCHEMA_VERSION,
};

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
        AppError::validation(
            &format!("{}[{}].{field}", self.list, self.index),
            format!(
                "{}[{}] (id {}): {field}: {message}",
                self.list, self.index, self.id
            ),
        )
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

/// Whether and how a row is written.
enum Write<T> {
    Insert,
    /// Replaces `old`; `revive` when `old` was deleted (clients see it created again).
    Replace {
        old: T,
        revive: bool,
    },
    Skip,
}

fn decide<T>(
    old: Option<T>,
    updated_at: i64,
    old_updated: impl Fn(&T) -> i64,
    deleted: impl Fn(&T) -> bool,
) -> Write<T> {
    match old {
        None => Write::Insert,
        Some(old) if updated_at > old_updated(&old) => {
            let revive = deleted(&old);
            Write::Replace { old, revive }
        }
        Some(_) => Write::Skip,
    }
}

#[derive(Default)]
struct Counts {
    created: u32,
    updated: u32,
    skipped: u32,
}

impl Counts {
    fn count<T>(&mut self, w: &Write<T>) {
        match w {
            Write::Insert => self.created += 1,
            Write::Replace { .. } => self.updated += 1,
            Write::Skip => self.skipped += 1,
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
    conn: &'c mut SqliteConnection,
    actor: &'c Actor,
    /// Project lifecycle events, emitted first (workspace stream).
    project_events: Vec<(String, Action, Vec<proto::FieldChange>)>,
    changes: Vec<Change>,
    /// Projects whose items changed (their item counter is re-derived).
    touched: BTreeSet<String>,
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

pub async fn run(
    conn: &mut SqliteConnection,
    actor: &Actor,
    data: ExportData,
) -> AppResult<Effect> {
    check_schema(data.schema_version)?;
    let mut data = data;
    clamp_times(&mut data);
    let mut im = Importer {
        conn,
        actor,
        project_events: Vec::new(),
        changes: Vec::new(),
        touched: BTreeSet::new(),
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
    };
    Ok(Effect::Batch(Batch {
        changes,
        response: Some(Payload::ImportResult(result)),
    }))
}

impl Importer<'_> {
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
            super::ensure_user(self.conn, &id).await?;
        }
        Ok(())
    }

    async fn live_project(&mut self, id: &str) -> AppResult<bool> {
        Ok(queries::project(self.conn, id).await?.is_some())
    }

    // ---- projects ----------------------------------------------------------------------

    async fn projects(&mut self, rows: &[ProjectDto]) -> AppResult<Counts> {
        let mut counts = Counts::default();
        let mut seen = HashSet::new();
        for (index, p) in rows.iter().enumerate() {
            let row = Row {
                list: "projects",
                index,
                id: &p.id,
            };
            let id = row.uuid("id", &p.id)?;
            if !seen.insert(id.clone()) {
                return Err(row.err("id", "appears more than once in this import"));
            }
            let key = domain::project_key(&p.key).map_err(|e| row.rule(e))?;
            let title = domain::required_text("title", &p.title, limits::TITLE_MAX)
                .map_err(|e| row.rule(e))?;
            let description = domain::optional_text(
                "description",
                p.description.as_deref(),
                limits::DESCRIPTION_MAX,
            )
            .map_err(|e| row.rule(e))?;
            let status = ProjectStatus::parse(&p.status).ok_or_else(|| {
                row.err(
                    "status",
                    format!(
                        "Invalid status: {}. Valid: {}",
                        p.status,
                        ProjectStatus::choices()
                    ),
                )
            })?;
            let version = row.int32("version", p.version, 1)?;
            let next_number = p.next_work_item_number.clamp(1, i64::from(i32::MAX));
            let created_by = row.uuid("created_by", &p.created_by)?;
            let updated_by = row.uuid("updated_by", &p.updated_by)?;

            let old: Option<ProjectRow> = sqlx::query_as(
                "SELECT id, title, description, key, status, version, next_work_item_number, created_at, \
                 updated_at, created_by, updated_by, deleted_at FROM pm_projects WHERE id = ?",
            )
            .bind(&id)
            .fetch_optional(&mut *self.conn)
            .await?;
            let write = decide(
                old,
                p.updated_at,
                |o| o.updated_at,
                |o| o.deleted_at.is_some(),
            );
            counts.count(&write);
            if matches!(write, Write::Skip) {
                continue;
            }
            let holder: Option<String> = sqlx::query_scalar(
                "SELECT id FROM pm_projects WHERE key = ? AND id <> ? AND deleted_at IS NULL",
            )
            .bind(&key)
            .bind(&id)
            .fetch_optional(&mut *self.conn)
            .await?;
            if holder.is_some() {
                // Not which project: the importer may not be allowed to know it exists.
                return Err(row.err(
                    "key",
                    format!("Project key '{key}' is already used by another project"),
                ));
            }
            match write {
                Write::Insert => {
                    sqlx::query(
                        "INSERT INTO pm_projects (id, title, description, key, status, version, next_work_item_number, \
                         created_at, updated_at, created_by, updated_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    )
                    .bind(&id)
                    .bind(&title)
                    .bind(&description)
                    .bind(&key)
                    .bind(status.as_str())
                    .bind(version)
                    .bind(next_number)
                    .bind(p.created_at)
                    .bind(p.updated_at)
                    .bind(&created_by)
                    .bind(&updated_by)
                    .execute(&mut *self.conn)
                    .await?;
                    // Whoever imports a project administers it, and nobody else: the document's
                    // `created_by` is only informational (see the module comment).
                    sqlx::query(
                        "INSERT OR IGNORE INTO pm_project_members (id, project_id, user_id, role, created_at) \
                         VALUES (?, ?, ?, 'admin', ?)",
                    )
                    .bind(uuid::Uuid::new_v4().to_string())
                    .bind(&id)
                    .bind(&self.actor.user_id)
                    .bind(pm_shared::now_secs())
                    .execute(&mut *self.conn)
                    .await?;
                    let mut changes = Vec::new();
                    track(&mut changes, "title", None, Some(title));
                    track(&mut changes, "key", None, Some(key));
                    track(&mut changes, "description", None, description);
                    self.project_events.push((id, Action::Created, changes));
                }
                Write::Replace { old, revive } => {
                    sqlx::query(
                        "UPDATE pm_projects SET title = ?, description = ?, key = ?, status = ?, version = ?, \
                         next_work_item_number = MAX(next_work_item_number, ?), created_at = ?, updated_at = ?, \
                         created_by = ?, updated_by = ?, deleted_at = NULL WHERE id = ?",
                    )
                    .bind(&title)
                    .bind(&description)
                    .bind(&key)
                    .bind(status.as_str())
                    .bind(version.max(old.version + 1))
                    .bind(next_number)
                    .bind(p.created_at)
                    .bind(p.updated_at)
                    .bind(&created_by)
                    .bind(&updated_by)
                    .bind(&id)
                    .execute(&mut *self.conn)
                    .await?;
                    let mut changes = Vec::new();
                    track(&mut changes, "title", Some(old.title), Some(title));
                    track(&mut changes, "key", Some(old.key), Some(key));
                    track(&mut changes, "description", old.description, description);
                    track(
                        &mut changes,
                        "status",
                        Some(old.status),
                        Some(status.to_string()),
                    );
                    let action = if revive {
                        Action::Created
                    } else {
                        Action::Updated
                    };
                    self.project_events.push((id, action, changes));
                }
                Write::Skip => {}
            }
        }
        Ok(counts)
    }

    /// Project events carry the final item counter, so they are built last.
    async fn project_changes(&mut self) -> AppResult<Vec<Change>> {
        let mut out = Vec::new();
        for (id, action, changes) in std::mem::take(&mut self.project_events) {
            let project = queries::project(self.conn, &id)
                .await?
                .ok_or_else(|| AppError::not_found("Project", &id))?
                .into_proto();
            let user_id = self.actor.user_id.clone();
            let event = match action {
                Action::Created => Payload::ProjectCreated(proto::ProjectCreated {
                    project: Some(project),
                    user_id,
                }),
                _ => Payload::ProjectUpdated(proto::ProjectUpdated {
                    project: Some(project),
                    changes: changes.clone(),
                    user_id,
                }),
            };
            out.push(Change {
                project_id: id.clone(),
                lifecycle: true,
                entity_type: EntityType::Project,
                entity_id: id,
                action,
                changes,
                event,
            });
        }
        Ok(out)
    }

    /// Each touched project's next item number lies above every number it has used.
    async fn renumber(&mut self) -> AppResult<()> {
        for project in &self.touched {
            sqlx::query(
                "UPDATE pm_projects SET next_work_item_number = MAX(next_work_item_number, \
                 (SELECT COALESCE(MAX(item_number), 0) + 1 FROM pm_work_items WHERE project_id = ?1)) WHERE id = ?1",
            )
            .bind(project)
            .execute(&mut *self.conn)
            .await?;
        }
        Ok(())
    }

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

    // ---- sprints -----------------------------------------------------------------------

    async fn sprints(&mut self, rows: &[SprintDto]) -> AppResult<Counts> {
        let mut counts = Counts::default();
        let mut seen = HashSet::new();
        let mut projects = BTreeSet::new();
        for (index, s) in rows.iter().enumerate() {
            let row = Row {
                list: "sprints",
                index,
                id: &s.id,
            };
            let id = row.uuid("id", &s.id)?;
            if !seen.insert(id.clone()) {
                return Err(row.err("id", "appears more than once in this import"));
            }
            let project_id = row.uuid("project_id", &s.project_id)?;
            let name = domain::required_text("name", &s.name, limits::SPRINT_NAME_MAX)
                .map_err(|e| row.rule(e))?;
            let goal = domain::optional_text("goal", s.goal.as_deref(), limits::SPRINT_GOAL_MAX)
                .map_err(|e| row.rule(e))?;
            if s.start_date >= s.end_date {
                return Err(row.err("end_date", "start_date must be before end_date"));
            }
            let status = SprintStatus::parse(&s.status).ok_or_else(|| {
                row.err(
                    "status",
                    format!(
                        "Invalid status: {}. Valid: {}",
                        s.status,
                        SprintStatus::choices()
                    ),
                )
            })?;
            let version = row.int32("version", s.version, 1)?;
            let created_by = row.uuid("created_by", &s.created_by)?;
            let updated_by = row.uuid("updated_by", &s.updated_by)?;
            if !self.live_project(&project_id).await? {
                return Err(row.err("project_id", format!("project {project_id} not found")));
            }
            let old: Option<SprintRow> = sqlx::query_as(
                "SELECT id, project_id, name, goal, start_date, end_date, status, version, created_at, updated_at, \
                 created_by, updated_by, deleted_at FROM pm_sprints WHERE id = ?",
            )
            .bind(&id)
            .fetch_optional(&mut *self.conn)
            .await?;
            if let Some(old) = &old {
                row.keep_owner(
                    "project_id",
                    "sprint",
                    "project",
                    &old.project_id,
                    &project_id,
                )?;
            }
            let write = decide(
                old,
                s.updated_at,
                |o| o.updated_at,
                |o| o.deleted_at.is_some(),
            );
            counts.count(&write);
            let (action, changes) = match write {
                Write::Skip => continue,
                Write::Insert => {
                    sqlx::query(
                        "INSERT INTO pm_sprints (id, project_id, name, goal, start_date, end_date, status, version, \
                         created_at, updated_at, created_by, updated_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    )
                    .bind(&id)
                    .bind(&project_id)
                    .bind(&name)
                    .bind(&goal)
                    .bind(s.start_date)
                    .bind(s.end_date)
                    .bind(status.as_str())
                    .bind(version)
                    .bind(s.created_at)
                    .bind(s.updated_at)
                    .bind(&created_by)
                    .bind(&updated_by)
                    .execute(&mut *self.conn)
                    .await?;
                    let mut changes = Vec::new();
                    track(&mut changes, "name", None, Some(name));
                    (Action::Created, changes)
                }
                Write::Replace { old, revive } => {
                    sqlx::query(
                        "UPDATE pm_sprints SET name = ?, goal = ?, start_date = ?, end_date = ?, status = ?, version = ?, \
                         created_at = ?, updated_at = ?, created_by = ?, updated_by = ?, deleted_at = NULL WHERE id = ?",
                    )
                    .bind(&name)
                    .bind(&goal)
                    .bind(s.start_date)
                    .bind(s.end_date)
                    .bind(status.as_str())
                    .bind(version.max(old.version + 1))
                    .bind(s.created_at)
                    .bind(s.updated_at)
                    .bind(&created_by)
                    .bind(&updated_by)
                    .bind(&id)
                    .execute(&mut *self.conn)
                    .await?;
                    let mut changes = Vec::new();
                    track(&mut changes, "name", Some(old.name), Some(name));
                    track(&mut changes, "goal", old.goal, goal);
                    track(
                        &mut changes,
                        "start_date",
                        Some(old.start_date.to_string()),
                        Some(s.start_date.to_string()),
                    );
                    track(
                        &mut changes,
                        "end_date",
                        Some(old.end_date.to_string()),
                        Some(s.end_date.to_string()),
                    );
                    track(
                        &mut changes,
                        "status",
                        Some(old.status),
                        Some(status.to_string()),
                    );
                    (
                        if revive {
                            Action::Created
                        } else {
                            Action::Updated
                        },
                        changes,
                    )
                }
            };
            projects.insert(project_id.clone());
            let sprint = queries::sprint(self.conn, &id)
                .await?
                .ok_or_else(|| AppError::not_found("Sprint", &id))?
                .into_proto();
            let user_id = self.actor.user_id.clone();
            let event = match action {
                Action::Created => Payload::SprintCreated(proto::SprintCreated {
                    sprint: Some(sprint),
                    user_id,
                }),
                _ => Payload::SprintUpdated(proto::SprintUpdated {
                    sprint: Some(sprint),
                    changes: changes.clone(),
                    user_id,
                }),
            };
            self.push(project_id, EntityType::Sprint, &id, action, changes, event);
        }
        // One active sprint per project, imported or not.
        for project in projects {
            let active: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM pm_sprints WHERE project_id = ? AND status = 'active' AND deleted_at IS NULL",
            )
            .bind(&project)
            .fetch_one(&mut *self.conn)
            .await?;
            if active > 1 {
                let index = rows
                    .iter()
                    .position(|s| {
                        s.project_id.trim().eq_ignore_ascii_case(&project) && s.status == "active"
                    })
                    .unwrap_or(0);
                let row = Row {
                    list: "sprints",
                    index,
                    id: rows.get(index).map_or("", |s| s.id.as_str()),
                };
                return Err(row.err(
                    "status",
                    format!("project {project} would have {active} active sprints (at most one)"),
                ));
            }
        }
        Ok(counts)
    }

    // ---- work items --------------------------------------------------------------------

    async fn work_items(&mut self, rows: &[WorkItemDto]) -> AppResult<Counts> {
        // Check every row, then write parents before children.
        let mut valid: Vec<WorkItemRow> = Vec::with_capacity(rows.len());
        let mut index_of: HashMap<String, usize> = HashMap::new();
        let mut numbers: HashMap<(String, i64), usize> = HashMap::new();
        for (index, w) in rows.iter().enumerate() {
            let row = Row {
                list: "work_items",
                index,
                id: &w.id,
            };
            let item = check_item(&row, w)?;
            if index_of.insert(item.id.clone(), index).is_some() {
                return Err(row.err("id", "appears more than once in this import"));
            }
            if let Some(first) = numbers.insert((item.project_id.clone(), item.item_number), index)
            {
                return Err(row.err(
                    "item_number",
                    format!(
                        "{} is also the number of work_items[{first}] in the same project",
                        item.item_number
                    ),
                ));
            }
            valid.push(item);
        }
        let order = parents_first(&valid, &index_of).map_err(|index| {
            let row = Row {
                list: "work_items",
                index,
                id: &rows[index].id,
            };
            row.err("parent_id", "the parent links of this import form a cycle")
        })?;

        let mut counts = Counts::default();
        let mut written: Vec<(usize, Action, Vec<proto::FieldChange>)> = Vec::new();
        for index in order {
            let item = &valid[index];
            let row = Row {
                list: "work_items",
                index,
                id: &rows[index].id,
            };
            if !self.live_project(&item.project_id).await? {
                return Err(row.err(
                    "project_id",
                    format!("project {} not found", item.project_id),
                ));
            }
            if let Some(parent) = &item.parent_id {
                let parent_project: Option<String> = sqlx::query_scalar(
                    "SELECT project_id FROM pm_work_items WHERE id = ? AND deleted_at IS NULL",
                )
                .bind(parent)
                .fetch_optional(&mut *self.conn)
                .await?;
                match parent_project {
                    None => {
                        return Err(
                            row.err("parent_id", format!("parent work item {parent} not found"))
                        )
                    }
                    Some(p) if p != item.project_id => {
                        return Err(row.err(
                            "parent_id",
                            format!("parent work item {parent} belongs to another project"),
                        ))
                    }
                    Some(_) => {}
                }
            }
            if let Some(sprint) = &item.sprint_id {
                let sprint_project: Option<String> = sqlx::query_scalar(
                    "SELECT project_id FROM pm_sprints WHERE id = ? AND deleted_at IS NULL",
                )
                .bind(sprint)
                .fetch_optional(&mut *self.conn)
                .await?;
                match sprint_project {
                    None => return Err(row.err("sprint_id", format!("sprint {sprint} not found"))),
                    Some(p) if p != item.project_id => {
                        return Err(row.err(
                            "sprint_id",
                            format!("sprint {sprint} belongs to another project"),
                        ))
                    }
                    Some(_) => {}
                }
            }
            let old: Option<WorkItemRow> = sqlx::query_as(
                "SELECT id, item_type, parent_id, project_id, position, title, description, status, priority, \
                 story_points, assignee_id, sprint_id, item_number, version, created_at, updated_at, created_by, \
                 updated_by, deleted_at FROM pm_work_items WHERE id = ?",
            )
            .bind(&item.id)
            .fetch_optional(&mut *self.conn)
            .await?;
            if let Some(old) = &old {
                row.keep_owner(
                    "project_id",
                    "work item",
                    "project",
                    &old.project_id,
                    &item.project_id,
                )?;
                if old.item_type != item.item_type {
                    return Err(row.err(
                        "item_type",
                        format!(
                            "the work item is a {}; an import cannot change its type",
                            old.item_type
                        ),
                    ));
                }
            }
            let write = decide(
                old,
                item.updated_at,
                |o| o.updated_at,
                |o| o.deleted_at.is_some(),
            );
            counts.count(&write);
            if matches!(write, Write::Skip) {
                continue;
            }
            let holder: Option<String> = sqlx::query_scalar(
                "SELECT id FROM pm_work_items WHERE project_id = ? AND item_number = ? AND id <> ?",
            )
            .bind(&item.project_id)
            .bind(item.item_number)
            .bind(&item.id)
            .fetch_optional(&mut *self.conn)
            .await?;
            if let Some(other) = holder {
                return Err(row.err(
                    "item_number",
                    format!(
                        "{} is already the number of work item {other} in this project",
                        item.item_number
                    ),
                ));
            }
            self.touched.insert(item.project_id.clone());
            match write {
                Write::Insert => {
                    sqlx::query(
                        "INSERT INTO pm_work_items (id, item_type, parent_id, project_id, position, title, description, \
                         status, priority, story_points, assignee_id, sprint_id, item_number, version, created_at, \
                         updated_at, created_by, updated_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    )
                    .bind(&item.id)
                    .bind(&item.item_type)
                    .bind(&item.parent_id)
                    .bind(&item.project_id)
                    .bind(item.position)
                    .bind(&item.title)
                    .bind(&item.description)
                    .bind(&item.status)
                    .bind(&item.priority)
                    .bind(item.story_points)
                    .bind(&item.assignee_id)
                    .bind(&item.sprint_id)
                    .bind(item.item_number)
                    .bind(item.version)
                    .bind(item.created_at)
                    .bind(item.updated_at)
                    .bind(&item.created_by)
                    .bind(&item.updated_by)
                    .execute(&mut *self.conn)
                    .await?;
                    let mut changes = Vec::new();
                    track(&mut changes, "title", None, Some(item.title.clone()));
                    track(
                        &mut changes,
                        "item_type",
                        None,
                        Some(item.item_type.clone()),
                    );
                    track(&mut changes, "status", None, Some(item.status.clone()));
                    track(&mut changes, "priority", None, Some(item.priority.clone()));
                    track(&mut changes, "parent_id", None, item.parent_id.clone());
                    written.push((index, Action::Created, changes));
                }
                Write::Replace { old, revive } => {
                    sqlx::query(
                        "UPDATE pm_work_items SET parent_id = ?, position = ?, title = ?, description = ?, status = ?, \
                         priority = ?, story_points = ?, assignee_id = ?, sprint_id = ?, item_number = ?, version = ?, \
                         created_at = ?, updated_at = ?, created_by = ?, updated_by = ?, deleted_at = NULL WHERE id = ?",
                    )
                    .bind(&item.parent_id)
                    .bind(item.position)
                    .bind(&item.title)
                    .bind(&item.description)
                    .bind(&item.status)
                    .bind(&item.priority)
                    .bind(item.story_points)
                    .bind(&item.assignee_id)
                    .bind(&item.sprint_id)
                    .bind(item.item_number)
                    .bind(item.version.max(old.version + 1))
                    .bind(item.created_at)
                    .bind(item.updated_at)
                    .bind(&item.created_by)
                    .bind(&item.updated_by)
                    .bind(&item.id)
                    .execute(&mut *self.conn)
                    .await?;
                    let changes = super::work_item::diff(&old, item);
                    written.push((
                        index,
                        if revive {
                            Action::Created
                        } else {
                            Action::Updated
                        },
                        changes,
                    ));
                }
                Write::Skip => {}
            }
        }

        // No parent cycle through rows that were already here, either.
        let mut items_by_project: HashMap<String, HashMap<String, proto::WorkItem>> =
            HashMap::new();
        for project in &self.touched {
            let mut items: Vec<proto::WorkItem> = queries::work_items(self.conn, project)
                .await?
                .into_iter()
                .map(|r| r.into_proto())
                .collect();
            if let Some(id) = first_in_cycle(&items) {
                let index = index_of.get(&id).copied().unwrap_or(0);
                let row = Row {
                    list: "work_items",
                    index,
                    id: &id,
                };
                return Err(row.err(
                    "parent_id",
                    "this parent would make the work item its own ancestor",
                ));
            }
            hierarchy::fill_all(&mut items);
            items_by_project.insert(
                project.clone(),
                items.into_iter().map(|w| (w.id.clone(), w)).collect(),
            );
        }
        for (index, action, changes) in written {
            let item = &valid[index];
            let Some(w) = items_by_project
                .get(&item.project_id)
                .and_then(|m| m.get(&item.id))
                .cloned()
            else {
                return Err(AppError::not_found("Work item", &item.id));
            };
            let user_id = self.actor.user_id.clone();
            let event = match action {
                Action::Created => Payload::WorkItemCreated(proto::WorkItemCreated {
                    work_item: Some(w),
                    user_id,
                }),
                _ => Payload::WorkItemUpdated(proto::WorkItemUpdated {
                    work_item: Some(w),
                    changes: changes.clone(),
                    user_id,
                }),
            };
            self.push(
                item.project_id.clone(),
                EntityType::WorkItem,
                &item.id,
                action,
                changes,
                event,
            );
        }
        Ok(counts)
    }

    /// The project of a live work item.
    async fn item_project(&mut self, id: &str) -> AppResult<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT project_id FROM pm_work_items WHERE id = ? AND deleted_at IS NULL",
        )
        .bind(id)
        .fetch_optional(&mut *self.conn)
        .await?)
    }

    // ---- comments ----------------------------------------------------------------------

    async fn comments(&mut self, rows: &[CommentDto]) -> AppResult<Counts> {
        let mut counts = Counts::default();
        let mut seen = HashSet::new();
        for (index, c) in rows.iter().enumerate() {
            let row = Row {
                list: "comments",
                index,
                id: &c.id,
            };
            let id = row.uuid("id", &c.id)?;
            if !seen.insert(id.clone()) {
                return Err(row.err("id", "appears more than once in this import"));
            }
            let item_id = row.uuid("work_item_id", &c.work_item_id)?;
            let content = domain::required_text("content", &c.content, limits::COMMENT_MAX)
                .map_err(|e| row.rule(e))?;
            let created_by = row.uuid("created_by", &c.created_by)?;
            let updated_by = row.uuid("updated_by", &c.updated_by)?;
            let Some(project_id) = self.item_project(&item_id).await? else {
                return Err(row.err("work_item_id", format!("work item {item_id} not found")));
            };
            let old: Option<CommentRow> = sqlx::query_as(
                "SELECT id, work_item_id, content, created_at, updated_at, created_by, updated_by, deleted_at \
                 FROM pm_comments WHERE id = ?",
            )
            .bind(&id)
            .fetch_optional(&mut *self.conn)
            .await?;
            if let Some(old) = &old {
                row.keep_owner(
                    "work_item_id",
                    "comment",
                    "work item",
                    &old.work_item_id,
                    &item_id,
                )?;
            }
            let write = decide(
                old,
                c.updated_at,
                |o| o.updated_at,
                |o| o.deleted_at.is_some(),
            );
            counts.count(&write);
            let (action, changes) = match write {
                Write::Skip => continue,
                Write::Insert => {
                    sqlx::query(
                        "INSERT INTO pm_comments (id, work_item_id, content, created_at, updated_at, created_by, updated_by) \
                         VALUES (?, ?, ?, ?, ?, ?, ?)",
                    )
                    .bind(&id)
                    .bind(&item_id)
                    .bind(&content)
                    .bind(c.created_at)
                    .bind(c.updated_at)
                    .bind(&created_by)
                    .bind(&updated_by)
                    .execute(&mut *self.conn)
                    .await?;
                    let mut changes = Vec::new();
                    track(&mut changes, "content", None, Some(content));
                    (Action::Created, changes)
                }
                Write::Replace { old, revive } => {
                    sqlx::query(
                        "UPDATE pm_comments SET content = ?, created_at = ?, updated_at = ?, created_by = ?, updated_by = ?, \
                         deleted_at = NULL WHERE id = ?",
                    )
                    .bind(&content)
                    .bind(c.created_at)
                    .bind(c.updated_at)
                    .bind(&created_by)
                    .bind(&updated_by)
                    .bind(&id)
                    .execute(&mut *self.conn)
                    .await?;
                    let mut changes = Vec::new();
                    track(&mut changes, "content", Some(old.content), Some(content));
                    (
                        if revive {
                            Action::Created
                        } else {
                            Action::Updated
                        },
                        changes,
                    )
                }
            };
            let comment = queries::comment(self.conn, &id)
                .await?
                .ok_or_else(|| AppError::not_found("Comment", &id))?
                .into_proto();
            let user_id = self.actor.user_id.clone();
            let event = match action {
                Action::Created => Payload::CommentCreated(proto::CommentCreated {
                    comment: Some(comment),
                    user_id,
                }),
                _ => Payload::CommentUpdated(proto::CommentUpdated {
                    comment: Some(comment),
                    user_id,
                }),
            };
            self.push(project_id, EntityType::Comment, &id, action, changes, event);
        }
        Ok(counts)
    }

    // ---- dependencies ------------------------------------------------------------------

    async fn dependencies(&mut self, rows: &[DependencyDto]) -> AppResult<Counts> {
        let mut counts = Counts::default();
        let mut seen = HashSet::new();
        for (index, d) in rows.iter().enumerate() {
            let row = Row {
                list: "dependencies",
                index,
                id: &d.id,
            };
            let id = row.uuid("id", &d.id)?;
            if !seen.insert(id.clone()) {
                return Err(row.err("id", "appears more than once in this import"));
            }
            let blocking = row.uuid("blocking_item_id", &d.blocking_item_id)?;
            let blocked = row.uuid("blocked_item_id", &d.blocked_item_id)?;
            if blocking == blocked {
                return Err(row.err("blocked_item_id", "Work item cannot block itself"));
            }
            let kind = DependencyType::parse(&d.dependency_type).ok_or_else(|| {
                row.err(
                    "dependency_type",
                    format!(
                        "Invalid dependency_type: {}. Valid: {}",
                        d.dependency_type,
                        DependencyType::choices()
                    ),
                )
            })?;
            let created_by = row.uuid("created_by", &d.created_by)?;
            let Some(blocking_project) = self.item_project(&blocking).await? else {
                return Err(row.err(
                    "blocking_item_id",
                    format!("work item {blocking} not found"),
                ));
            };
            let Some(project_id) = self.item_project(&blocked).await? else {
                return Err(row.err("blocked_item_id", format!("work item {blocked} not found")));
            };
            if blocking_project != project_id {
                return Err(row.err(
                    "blocking_item_id",
                    "Dependencies can only be created between items in the same project",
                ));
            }
            // Links are never updated: a known id or an already linked pair is skipped.
            let known: Option<String> = sqlx::query_scalar(
                "SELECT id FROM pm_dependencies WHERE id = ?1 \
                 OR (blocking_item_id = ?2 AND blocked_item_id = ?3 AND deleted_at IS NULL)",
            )
            .bind(&id)
            .bind(&blocking)
            .bind(&blocked)
            .fetch_optional(&mut *self.conn)
            .await?;
            if known.is_some() {
                counts.skipped += 1;
                continue;
            }
            let (blockers, blocks): (i64, i64) = sqlx::query_as(
                "SELECT \
                   (SELECT COUNT(*) FROM pm_dependencies WHERE blocked_item_id = ?1 AND deleted_at IS NULL), \
                   (SELECT COUNT(*) FROM pm_dependencies WHERE blocking_item_id = ?2 AND deleted_at IS NULL)",
            )
            .bind(&blocked)
            .bind(&blocking)
            .fetch_one(&mut *self.conn)
            .await?;
            let max = limits::DEPENDENCIES_PER_ITEM;
            if blockers >= max {
                return Err(row.err(
                    "blocked_item_id",
                    format!("Item already has {blockers} blocking dependencies (max {max})"),
                ));
            }
            if blocks >= max {
                return Err(row.err(
                    "blocking_item_id",
                    format!("Item already blocks {blocks} items (max {max})"),
                ));
            }
            if kind == DependencyType::Blocks {
                if let Some(path) = dependency::blocks_path(self.conn, &blocked, &blocking).await? {
                    let shown: Vec<String> =
                        path.iter().map(|p| p.chars().take(8).collect()).collect();
                    return Err(row.err(
                        "blocking_item_id",
                        format!(
                            "Circular dependency detected: {}. This would create a cycle.",
                            shown.join(" → ")
                        ),
                    ));
                }
            }
            sqlx::query(
                "INSERT INTO pm_dependencies (id, blocking_item_id, blocked_item_id, dependency_type, created_at, created_by) \
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(&id)
            .bind(&blocking)
            .bind(&blocked)
            .bind(kind.as_str())
            .bind(d.created_at)
            .bind(&created_by)
            .execute(&mut *self.conn)
            .await?;
            counts.created += 1;
            let dependency = queries::dependency(self.conn, &id)
                .await?
                .ok_or_else(|| AppError::not_found("Dependency", &id))?
                .into_proto();
            let mut changes = Vec::new();
            track(&mut changes, "blocking_item_id", None, Some(blocking));
            track(&mut changes, "blocked_item_id", None, Some(blocked));
            track(
                &mut changes,
                "dependency_type",
                None,
                Some(kind.to_string()),
            );
            let event = Payload::DependencyCreated(proto::DependencyCreated {
                dependency: Some(dependency),
                user_id: self.actor.user_id.clone(),
            });
            self.push(
                project_id,
                EntityType::Dependency,
                &id,
                Action::Created,
                changes,
                event,
            );
        }
        Ok(counts)
    }

    // ---- time entries ------------------------------------------------------------------

    async fn time_entries(&mut self, rows: &[TimeEntryDto]) -> AppResult<Counts> {
        let mut counts = Counts::default();
        let mut seen = HashSet::new();
        for (index, t) in rows.iter().enumerate() {
            let row = Row {
                list: "time_entries",
                index,
                id: &t.id,
            };
            let id = row.uuid("id", &t.id)?;
            if !seen.insert(id.clone()) {
                return Err(row.err("id", "appears more than once in this import"));
            }
            let item_id = row.uuid("work_item_id", &t.work_item_id)?;
            let user_id = row.uuid("user_id", &t.user_id)?;
            let duration = match t.ended_at {
                Some(end) if end < t.started_at => {
                    return Err(row.err("ended_at", "ended_at must not be before started_at"))
                }
                Some(end) => Some(domain::duration_clamped(t.started_at, end)),
                None => None,
            };
            let description = domain::optional_text(
                "description",
                t.description.as_deref(),
                limits::TIME_ENTRY_DESCRIPTION_MAX,
            )
            .map_err(|e| row.rule(e))?;
            let Some(project_id) = self.item_project(&item_id).await? else {
                return Err(row.err("work_item_id", format!("work item {item_id} not found")));
            };
            let old: Option<TimeEntryRow> = sqlx::query_as(
                "SELECT id, work_item_id, user_id, started_at, ended_at, duration_seconds, description, created_at, \
                 updated_at, deleted_at FROM pm_time_entries WHERE id = ?",
            )
            .bind(&id)
            .fetch_optional(&mut *self.conn)
            .await?;
            if let Some(old) = &old {
                if old.work_item_id != item_id || old.user_id != user_id {
                    return Err(row.err(
                        "work_item_id",
                        "an import cannot move a time entry to another work item or user",
                    ));
                }
            }
            let write = decide(
                old,
                t.updated_at,
                |o| o.updated_at,
                |o| o.deleted_at.is_some(),
            );
            counts.count(&write);
            let num = |v: Option<i64>| v.map(|x| x.to_string());
            let (action, changes) = match write {
                Write::Skip => continue,
                Write::Insert => {
                    sqlx::query(
                        "INSERT INTO pm_time_entries (id, work_item_id, user_id, started_at, ended_at, duration_seconds, \
                         description, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    )
                    .bind(&id)
                    .bind(&item_id)
                    .bind(&user_id)
                    .bind(t.started_at)
                    .bind(t.ended_at)
                    .bind(duration)
                    .bind(&description)
                    .bind(t.created_at)
                    .bind(t.updated_at)
                    .execute(&mut *self.conn)
                    .await?;
                    let mut changes = Vec::new();
                    track(&mut changes, "work_item_id", None, Some(item_id.clone()));
                    track(&mut changes, "started_at", None, num(Some(t.started_at)));
                    track(&mut changes, "ended_at", None, num(t.ended_at));
                    track(&mut changes, "description", None, description);
                    (Action::Created, changes)
                }
                Write::Replace { old, revive } => {
                    sqlx::query(
                        "UPDATE pm_time_entries SET started_at = ?, ended_at = ?, duration_seconds = ?, description = ?, \
                         created_at = ?, updated_at = ?, deleted_at = NULL WHERE id = ?",
                    )
                    .bind(t.started_at)
                    .bind(t.ended_at)
                    .bind(duration)
                    .bind(&description)
                    .bind(t.created_at)
                    .bind(t.updated_at)
                    .bind(&id)
                    .execute(&mut *self.conn)
                    .await?;
                    let mut changes = Vec::new();
                    track(
                        &mut changes,
                        "started_at",
                        num(Some(old.started_at)),
                        num(Some(t.started_at)),
                    );
                    track(&mut changes, "ended_at", num(old.ended_at), num(t.ended_at));
                    track(
                        &mut changes,
                        "duration_seconds",
                        num(old.duration_seconds),
                        num(duration),
                    );
                    track(&mut changes, "description", old.description, description);
                    (
                        if revive {
                            Action::Created
                        } else {
                            Action::Updated
                        },
                        changes,
                    )
                }
            };
            let entry = queries::time_entry(self.conn, &id)
                .await?
                .ok_or_else(|| AppError::not_found("Time entry", &id))?
                .into_proto();
            let user = self.actor.user_id.clone();
            let event = match action {
                Action::Created => Payload::TimeEntryCreated(proto::TimeEntryCreated {
                    time_entry: Some(entry),
                    user_id: user,
                }),
                _ => Payload::TimeEntryUpdated(proto::TimeEntryUpdated {
                    time_entry: Some(entry),
                    user_id: user,
                }),
            };
            self.push(
                project_id,
                EntityType::TimeEntry,
                &id,
                action,
                changes,
                event,
            );
        }
        Ok(counts)
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

/// A work item row as it will be stored, from its DTO, or the first rule it breaks.
fn check_item(row: &Row<'_>, w: &WorkItemDto) -> AppResult<WorkItemRow> {
    let id = row.uuid("id", &w.id)?;
    let project_id = row.uuid("project_id", &w.project_id)?;
    let item_type = ItemType::parse(&w.item_type).ok_or_else(|| {
        row.err(
            "item_type",
            format!(
                "Invalid item_type: {}. Valid: {}",
                w.item_type,
                ItemType::choices()
            ),
        )
    })?;
    let title =
        domain::required_text("title", &w.title, limits::TITLE_MAX).map_err(|e| row.rule(e))?;
    let description = domain::optional_text(
        "description",
        w.description.as_deref(),
        limits::DESCRIPTION_MAX,
    )
    .map_err(|e| row.rule(e))?;
    let status = domain::status(&w.status).map_err(|e| row.rule(e))?;
    let priority = domain::priority(&w.priority).map_err(|e| row.rule(e))?;
    let parent_id = row.opt_uuid("parent_id", w.parent_id.as_deref())?;
    if parent_id.as_deref() == Some(id.as_str()) {
        return Err(row.err("parent_id", "a work item cannot be its own parent"));
    }
    let story_points = match w.story_points {
        Some(p) => {
            let p = i32::try_from(p)
                .map_err(|_| row.err("story_points", format!("{p} is out of range")))?;
            Some(i64::from(domain::story_points(p).map_err(|e| row.rule(e))?))
        }
        None => None,
    };
    Ok(WorkItemRow {
        id,
        item_type: item_type.to_string(),
        parent_id,
        project_id,
        position: row.int32("position", w.position, 0)?,
        title,
        description,
        status: status.to_string(),
        priority: priority.to_string(),
        story_points,
        assignee_id: row.opt_uuid("assignee_id", w.assignee_id.as_deref())?,
        sprint_id: row.opt_uuid("sprint_id", w.sprint_id.as_deref())?,
        item_number: row.int32("item_number", w.item_number, 1)?,
        version: row.int32("version", w.version, 1)?,
        created_at: w.created_at,
        updated_at: w.updated_at,
        created_by: row.uuid("created_by", &w.created_by)?,
        updated_by: row.uuid("updated_by", &w.updated_by)?,
        deleted_at: None,
    })
}

/// Indexes of `items` with every parent that is itself imported before its children, in
/// document order otherwise; Err(index) of an item on a parent cycle.
fn parents_first(
    items: &[WorkItemRow],
    index_of: &HashMap<String, usize>,
) -> Result<Vec<usize>, usize> {
    super::import_plan::walk_parents_first(items.len(), |i| {
        items[i]
            .parent_id
            .as_ref()
            .and_then(|p| index_of.get(p))
            .copied()
    })
}

/// The id of an item whose parent chain loops, if any.
fn first_in_cycle(items: &[proto::WorkItem]) -> Option<String> {
    let parent: HashMap<&str, &str> = items
        .iter()
        .filter_map(|w| w.parent_id.as_deref().map(|p| (w.id.as_str(), p)))
        .collect();
    let mut sorted: Vec<&str> = items.iter().map(|w| w.id.as_str()).collect();
    sorted.sort_unstable();
    for start in sorted {
        let mut seen = HashSet::from([start]);
        let mut cur = parent.get(start).copied();
        while let Some(p) = cur {
            if p == start {
                return Some(start.to_string());
            }
            if !seen.insert(p) {
                break;
            }
            cur = parent.get(p).copied();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, parent: Option<&str>) -> WorkItemRow {
        WorkItemRow {
            id: id.into(),
            item_type: "task".into(),
            parent_id: parent.map(str::to_string),
            project_id: "p".into(),
            position: 0,
            title: id.into(),
            description: None,
            status: "backlog".into(),
            priority: "medium".into(),
            story_points: None,
            assignee_id: None,
            sprint_id: None,
            item_number: 1,
            version: 1,
            created_at: 0,
            updated_at: 0,
            created_by: String::new(),
            updated_by: String::new(),
            deleted_at: None,
        }
    }

    #[test]
    fn parents_come_first_and_cycles_are_found() {
        let items = vec![
            item("t", Some("s")),
            item("s", Some("e")),
            item("e", None),
            item("x", Some("elsewhere")),
        ];
        let index_of: HashMap<String, usize> = items
            .iter()
            .enumerate()
            .map(|(i, w)| (w.id.clone(), i))
            .collect();
        assert_eq!(parents_first(&items, &index_of), Ok(vec![2, 1, 0, 3]));
        let looped = vec![item("a", Some("b")), item("b", Some("a"))];
        let index_of: HashMap<String, usize> = looped
            .iter()
            .enumerate()
            .map(|(i, w)| (w.id.clone(), i))
            .collect();
        assert!(parents_first(&looped, &index_of).is_err());
    }

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

    #[test]
    fn stored_cycles_are_found() {
        let w = |id: &str, parent: Option<&str>| proto::WorkItem {
            id: id.into(),
            parent_id: parent.map(str::to_string),
            ..Default::default()
        };
        assert_eq!(first_in_cycle(&[w("a", None), w("b", Some("a"))]), None);
        assert_eq!(
            first_in_cycle(&[w("a", Some("c")), w("b", Some("a")), w("c", Some("b"))]),
            Some("a".into())
        );
    }
}
