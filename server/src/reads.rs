//! The read side: snapshots for WS and REST. Each snapshot runs in one read transaction and
//! reports the stream seq it is consistent with, so a client can resume exactly after it.
use pm_shared::domain::Status;
use pm_shared::proto;

use crate::access::{self, Named, Role, Viewer};
use crate::error::{AppError, AppResult};
use crate::ids::parse_id;
use crate::store::events::{self, WORKSPACE};
use crate::store::{hierarchy, queries, Conn, Reader, Store};

/// Entities plus the seq of their stream at the moment they were read.
pub struct Snapshot<T> {
    pub items: T,
    pub stream: String,
    pub seq: u64,
}

/// View access to `project_id` (always granted in desktop mode).
/// An outsider is answered as if `named` did not exist (see [`Named`]).
async fn allow(
    conn: &mut Conn<'_>,
    viewer: &Viewer,
    project_id: &str,
    named: Named<'_>,
) -> AppResult<()> {
    access::require(
        conn,
        viewer.mode,
        project_id,
        &viewer.user_id,
        Role::Viewer,
        named,
    )
    .await
}

async fn begin(store: &Store) -> AppResult<Reader> {
    Ok(store.read.acquire().await?)
}

pub async fn projects(store: &Store, viewer: &Viewer) -> AppResult<Snapshot<Vec<proto::Project>>> {
    let mut conn = begin(store).await?;
    let mut tx = conn.begin().await?;
    let seq = events::current_seq(&mut tx.conn(), WORKSPACE).await?;
    let visible = access::visible_projects(&mut tx.conn(), viewer).await?;
    let items = queries::projects(&mut tx.conn())
        .await?
        .into_iter()
        .filter(|r| visible.as_ref().is_none_or(|v| v.contains(&r.id)))
        .map(|r| r.into_proto())
        .collect();
    tx.commit().await?;
    Ok(Snapshot {
        items,
        stream: WORKSPACE.into(),
        seq,
    })
}

/// A project by UUID or by key (keys are matched case-insensitively).
pub async fn resolve_project(conn: &mut Conn<'_>, id_or_key: &str) -> AppResult<proto::Project> {
    let row = if uuid::Uuid::parse_str(id_or_key).is_ok() {
        queries::project(conn, &id_or_key.to_ascii_lowercase()).await?
    } else {
        queries::project_by_key(conn, &id_or_key.trim().to_ascii_uppercase()).await?
    };
    row.map(|r| r.into_proto())
        .ok_or_else(|| AppError::not_found("Project", id_or_key))
}

pub async fn project(store: &Store, viewer: &Viewer, id_or_key: &str) -> AppResult<proto::Project> {
    let mut conn = begin(store).await?;
    let named = Named::new("Project", id_or_key);
    let project = resolve_project(&mut conn.conn(), id_or_key).await?;
    allow(&mut conn.conn(), viewer, &project.id, named).await?;
    Ok(project)
}

pub async fn work_items(
    store: &Store,
    viewer: &Viewer,
    project: &str,
) -> AppResult<Snapshot<Vec<proto::WorkItem>>> {
    let mut conn = begin(store).await?;
    let mut tx = conn.begin().await?;
    let named = Named::new("Project", project);
    let project = resolve_project(&mut tx.conn(), project).await?;
    allow(&mut tx.conn(), viewer, &project.id, named).await?;
    let seq = events::current_seq(&mut tx.conn(), &project.id).await?;
    let mut items: Vec<proto::WorkItem> = queries::work_items(&mut tx.conn(), &project.id)
        .await?
        .into_iter()
        .map(|r| r.into_proto())
        .collect();
    tx.commit().await?;
    hierarchy::fill_all(&mut items);
    Ok(Snapshot {
        items,
        stream: project.id,
        seq,
    })
}

/// A work item by UUID or display key ("PM-12").
pub async fn resolve_work_item(conn: &mut Conn<'_>, id_or_key: &str) -> AppResult<proto::WorkItem> {
    let row = if uuid::Uuid::parse_str(id_or_key).is_ok() {
        queries::work_item(conn, &id_or_key.to_ascii_lowercase()).await?
    } else if let Some((key, number)) = pm_shared::domain::parse_display_key(id_or_key) {
        match queries::project_by_key(conn, &key).await? {
            Some(p) => queries::work_item_by_number(conn, &p.id, number).await?,
            None => None,
        }
    } else {
        return Err(AppError::validation(
            "id",
            format!("'{id_or_key}' is neither a UUID nor a key like PM-12"),
        ));
    };
    let mut item = row
        .map(|r| r.into_proto())
        .ok_or_else(|| AppError::not_found("Work item", id_or_key))?;
    hierarchy::fill(conn, &mut item).await?;
    Ok(item)
}

/// The id of a work item, deleted or not, from its id or key (for a restore, whose command
/// checks permission and existence itself: an unknown key is NOT_FOUND here already).
pub async fn any_work_item_id(store: &Store, id_or_key: &str) -> AppResult<String> {
    if uuid::Uuid::parse_str(id_or_key).is_ok() {
        return Ok(id_or_key.to_ascii_lowercase());
    }
    let Some((key, number)) = pm_shared::domain::parse_display_key(id_or_key) else {
        return Err(AppError::validation(
            "id",
            format!("'{id_or_key}' is neither a UUID nor a key like PM-12"),
        ));
    };
    let mut conn = begin(store).await?;
    let id = match queries::project_by_key(&mut conn.conn(), &key).await? {
        // Any item of the project with that number: ids are never "".
        Some(p) => {
            crate::store::work_items::number_holder(&mut conn.conn(), &p.id, number.into(), "")
                .await?
        }
        None => None,
    };
    id.ok_or_else(|| AppError::not_found("Work item", id_or_key))
}

pub async fn work_item(
    store: &Store,
    viewer: &Viewer,
    id_or_key: &str,
) -> AppResult<proto::WorkItem> {
    let mut conn = begin(store).await?;
    let named = Named::new("Work item", id_or_key);
    let item = resolve_work_item(&mut conn.conn(), id_or_key).await?;
    allow(&mut conn.conn(), viewer, &item.project_id, named).await?;
    Ok(item)
}

pub async fn sprints(
    store: &Store,
    viewer: &Viewer,
    project: &str,
) -> AppResult<Snapshot<Vec<proto::Sprint>>> {
    let mut conn = begin(store).await?;
    let mut tx = conn.begin().await?;
    let named = Named::new("Project", project);
    let project = resolve_project(&mut tx.conn(), project).await?;
    allow(&mut tx.conn(), viewer, &project.id, named).await?;
    let seq = events::current_seq(&mut tx.conn(), &project.id).await?;
    let items = queries::sprints(&mut tx.conn(), &project.id)
        .await?
        .into_iter()
        .map(|r| r.into_proto())
        .collect();
    tx.commit().await?;
    Ok(Snapshot {
        items,
        stream: project.id,
        seq,
    })
}

pub async fn sprint(store: &Store, viewer: &Viewer, id: &str) -> AppResult<proto::Sprint> {
    let id = parse_id("sprint_id", id)?;
    let mut conn = begin(store).await?;
    let sprint = queries::sprint(&mut conn.conn(), &id)
        .await?
        .map(|r| r.into_proto())
        .ok_or_else(|| AppError::not_found("Sprint", &id))?;
    allow(
        &mut conn.conn(),
        viewer,
        &sprint.project_id,
        Named::new("Sprint", &id),
    )
    .await?;
    Ok(sprint)
}

pub async fn comments(
    store: &Store,
    viewer: &Viewer,
    work_item: &str,
) -> AppResult<Snapshot<Vec<proto::Comment>>> {
    let mut conn = begin(store).await?;
    let mut tx = conn.begin().await?;
    let named = Named::new("Work item", work_item);
    let item = resolve_work_item(&mut tx.conn(), work_item).await?;
    allow(&mut tx.conn(), viewer, &item.project_id, named).await?;
    let seq = events::current_seq(&mut tx.conn(), &item.project_id).await?;
    let items = queries::comments(&mut tx.conn(), &item.id)
        .await?
        .into_iter()
        .map(|r| r.into_proto())
        .collect();
    tx.commit().await?;
    Ok(Snapshot {
        items,
        stream: item.project_id,
        seq,
    })
}

pub async fn comment(store: &Store, viewer: &Viewer, id: &str) -> AppResult<proto::Comment> {
    let id = parse_id("comment_id", id)?;
    let mut conn = begin(store).await?;
    let comment = queries::comment(&mut conn.conn(), &id)
        .await?
        .map(|r| r.into_proto())
        .ok_or_else(|| AppError::not_found("Comment", &id))?;
    let project = resolve_work_item(&mut conn.conn(), &comment.work_item_id)
        .await?
        .project_id;
    allow(
        &mut conn.conn(),
        viewer,
        &project,
        Named::new("Comment", &id),
    )
    .await?;
    Ok(comment)
}

pub const ACTIVITY_ENTITY_TYPES: &[&str] = &[
    "work_item",
    "sprint",
    "comment",
    "time_entry",
    "dependency",
    "project",
];
pub const ACTIVITY_DEFAULT_LIMIT: i32 = 50;
pub const ACTIVITY_MAX_LIMIT: i32 = 100;

/// History of one entity, newest first. Deleted entities keep their history.
pub async fn activity(
    store: &Store,
    viewer: &Viewer,
    req: &proto::GetActivityLogRequest,
) -> AppResult<proto::ActivityLogList> {
    if !ACTIVITY_ENTITY_TYPES.contains(&req.entity_type.as_str()) {
        return Err(AppError::validation(
            "entity_type",
            format!(
                "Invalid entity_type: {}. Valid: {}",
                req.entity_type,
                ACTIVITY_ENTITY_TYPES.join(", ")
            ),
        ));
    }
    let id = uuid::Uuid::parse_str(req.entity_id.trim())
        .map_err(|_| {
            AppError::validation("entity_id", format!("Invalid entity_id: {}", req.entity_id))
        })?
        .to_string();
    let limit = match req.limit {
        l if l <= 0 => ACTIVITY_DEFAULT_LIMIT,
        l => l.min(ACTIVITY_MAX_LIMIT),
    };
    let offset = req.offset.max(0);
    let mut conn = begin(store).await?;
    let Some(project) = queries::project_of_entity(&mut conn.conn(), &req.entity_type, &id).await?
    else {
        return Err(AppError::not_found(&req.entity_type, &id));
    };
    allow(
        &mut conn.conn(),
        viewer,
        &project,
        Named::new(&req.entity_type, &id),
    )
    .await?;
    let (rows, total) = queries::activity(
        &mut conn.conn(),
        &req.entity_type,
        &id,
        i64::from(limit),
        i64::from(offset),
    )
    .await?;
    Ok(proto::ActivityLogList {
        entries: rows.into_iter().map(|r| r.into_proto()).collect(),
        total_count: total as i32,
        has_more: i64::from(offset) + i64::from(limit) < total,
    })
}

/// Everything a board shows of one project, read in one transaction, with its seq.
pub async fn project_snapshot(
    store: &Store,
    viewer: &Viewer,
    project: &str,
) -> AppResult<Snapshot<proto::ProjectSnapshot>> {
    let mut conn = begin(store).await?;
    let mut tx = conn.begin().await?;
    let named = Named::new("Project", project);
    let project = resolve_project(&mut tx.conn(), project).await?;
    allow(&mut tx.conn(), viewer, &project.id, named).await?;
    let seq = events::current_seq(&mut tx.conn(), &project.id).await?;
    let mut work_items: Vec<proto::WorkItem> = queries::work_items(&mut tx.conn(), &project.id)
        .await?
        .into_iter()
        .map(|r| r.into_proto())
        .collect();
    let sprints = queries::sprints(&mut tx.conn(), &project.id)
        .await?
        .into_iter()
        .map(|r| r.into_proto())
        .collect();
    let comments = queries::project_comments(&mut tx.conn(), &project.id)
        .await?
        .into_iter()
        .map(|r| r.into_proto())
        .collect();
    let users = queries::users(&mut tx.conn()).await?;
    let dependencies = queries::project_dependencies(&mut tx.conn(), &project.id)
        .await?
        .into_iter()
        .map(|r| r.into_proto())
        .collect();
    let time_entries = queries::project_time_entries(&mut tx.conn(), &project.id)
        .await?
        .into_iter()
        .map(|r| r.into_proto())
        .collect();
    tx.commit().await?;
    hierarchy::fill_all(&mut work_items);
    let stream = project.id.clone();
    Ok(Snapshot {
        items: proto::ProjectSnapshot {
            project: Some(project),
            work_items,
            sprints,
            comments,
            users,
            dependencies,
            time_entries,
            ..Default::default()
        },
        stream,
        seq,
    })
}

/// Cards a preview shows at most per lane (more than any screen holds).
pub const PREVIEW_MAX_PER_LANE: u32 = 500;

/// A preview of a project's board: the project, its sprints and users, the first `per_lane`
/// items of each lane and every lane's count, read in one transaction (see
/// `GetProjectSnapshotRequest.first_per_lane`). Cheap on any project: it reads a screenful.
pub async fn project_preview(
    store: &Store,
    viewer: &Viewer,
    project: &str,
    per_lane: u32,
) -> AppResult<proto::ProjectSnapshot> {
    let mut conn = begin(store).await?;
    let mut tx = conn.begin().await?;
    let named = Named::new("Project", project);
    let project = resolve_project(&mut tx.conn(), project).await?;
    allow(&mut tx.conn(), viewer, &project.id, named).await?;
    let per_lane = i64::from(per_lane.min(PREVIEW_MAX_PER_LANE));
    let work_items = queries::first_per_lane(&mut tx.conn(), &project.id, per_lane)
        .await?
        .into_iter()
        .map(|r| r.into_proto())
        .collect();
    let counts = queries::lane_counts(&mut tx.conn(), &project.id).await?;
    let sprints = queries::sprints(&mut tx.conn(), &project.id)
        .await?
        .into_iter()
        .map(|r| r.into_proto())
        .collect();
    let users = queries::users(&mut tx.conn()).await?;
    tx.commit().await?;
    let lane_totals = Status::ALL
        .iter()
        .map(|status| {
            counts
                .iter()
                .find(|(s, _)| s == status.as_str())
                .map_or(0, |(_, n)| u32::try_from(*n).unwrap_or(u32::MAX))
        })
        .collect();
    Ok(proto::ProjectSnapshot {
        project: Some(project),
        work_items,
        sprints,
        users,
        partial: true,
        lane_totals,
        ..Default::default()
    })
}

pub async fn users(store: &Store) -> AppResult<Vec<proto::User>> {
    let mut conn = begin(store).await?;
    Ok(queries::users(&mut conn.conn()).await?)
}

/// A project's members (view access needed).
pub async fn members(
    store: &Store,
    viewer: &Viewer,
    project: &str,
) -> AppResult<Vec<proto::ProjectMember>> {
    let mut conn = begin(store).await?;
    let named = Named::new("Project", project);
    let project = resolve_project(&mut conn.conn(), project).await?;
    allow(&mut conn.conn(), viewer, &project.id, named).await?;
    Ok(queries::members(&mut conn.conn(), &project.id).await?)
}

/// A work item's links: `blocking` holds the links that block it (it is their blocked item),
/// `blocked` the links by which it blocks others (the reference's naming).
pub async fn dependencies(
    store: &Store,
    viewer: &Viewer,
    work_item: &str,
) -> AppResult<Snapshot<proto::DependenciesList>> {
    let mut conn = begin(store).await?;
    let mut tx = conn.begin().await?;
    let named = Named::new("Work item", work_item);
    let item = resolve_work_item(&mut tx.conn(), work_item).await?;
    allow(&mut tx.conn(), viewer, &item.project_id, named).await?;
    let seq = events::current_seq(&mut tx.conn(), &item.project_id).await?;
    let rows = queries::dependencies_of(&mut tx.conn(), &item.id).await?;
    tx.commit().await?;
    let (blocking, blocked): (Vec<_>, Vec<_>) = rows
        .into_iter()
        .map(|r| r.into_proto())
        .partition(|d| d.blocked_item_id == item.id);
    Ok(Snapshot {
        items: proto::DependenciesList { blocking, blocked },
        stream: item.project_id,
        seq,
    })
}

pub const TIME_ENTRIES_DEFAULT_LIMIT: i32 = 100;
pub const TIME_ENTRIES_MAX_LIMIT: i32 = 500;

/// A work item's time entries, latest start first: `limit` (default 100, 1..=500) from
/// `offset` (default 0), with the total count.
pub async fn time_entries(
    store: &Store,
    viewer: &Viewer,
    work_item: &str,
    limit: Option<i32>,
    offset: Option<i32>,
) -> AppResult<Snapshot<proto::TimeEntriesList>> {
    let limit = limit
        .unwrap_or(TIME_ENTRIES_DEFAULT_LIMIT)
        .clamp(1, TIME_ENTRIES_MAX_LIMIT);
    let offset = offset.unwrap_or(0).max(0);
    let mut conn = begin(store).await?;
    let mut tx = conn.begin().await?;
    let named = Named::new("Work item", work_item);
    let item = resolve_work_item(&mut tx.conn(), work_item).await?;
    allow(&mut tx.conn(), viewer, &item.project_id, named).await?;
    let seq = events::current_seq(&mut tx.conn(), &item.project_id).await?;
    let (rows, total) = queries::time_entries(
        &mut tx.conn(),
        &item.id,
        i64::from(limit),
        i64::from(offset),
    )
    .await?;
    tx.commit().await?;
    Ok(Snapshot {
        items: proto::TimeEntriesList {
            time_entries: rows.into_iter().map(|r| r.into_proto()).collect(),
            total_count: total.min(i64::from(i32::MAX)) as i32,
        },
        stream: item.project_id,
        seq,
    })
}

pub async fn time_entry(store: &Store, viewer: &Viewer, id: &str) -> AppResult<proto::TimeEntry> {
    let id = parse_id("time_entry_id", id)?;
    let mut conn = begin(store).await?;
    let entry = queries::time_entry(&mut conn.conn(), &id)
        .await?
        .map(|r| r.into_proto())
        .ok_or_else(|| AppError::not_found("Time entry", &id))?;
    let project = resolve_work_item(&mut conn.conn(), &entry.work_item_id)
        .await?
        .project_id;
    allow(
        &mut conn.conn(),
        viewer,
        &project,
        Named::new("Time entry", &id),
    )
    .await?;
    Ok(entry)
}

/// The caller's running timer, if any.
pub async fn running_timer(store: &Store, user_id: &str) -> AppResult<Option<proto::TimeEntry>> {
    let mut conn = begin(store).await?;
    Ok(queries::running_timer(&mut conn.conn(), user_id)
        .await?
        .map(|r| r.into_proto()))
}

/// LLM context entries, most important first.
pub async fn llm_context(
    store: &Store,
    req: &proto::GetLlmContextRequest,
) -> AppResult<proto::LlmContextList> {
    let mut conn = begin(store).await?;
    let entries = queries::llm_context(
        &mut conn.conn(),
        req.category.as_deref().filter(|c| !c.is_empty()),
        req.context_type.as_deref().filter(|c| !c.is_empty()),
        req.min_priority,
    )
    .await?
    .into_iter()
    .map(|r| r.into_proto())
    .collect();
    Ok(proto::LlmContextList { entries })
}
