//! Work item commands: the cards of the board.
use crate::store::Conn;
use pm_shared::domain::limits::ValidationLimits;
use pm_shared::domain::{self, EntityType, ItemType, WorkItemField};
use pm_shared::proto::{self, Payload};

use super::{check_version, parse_id, track, Action, Actor, Bind, Change, DeferredWrite, Effect};
use crate::error::{AppError, AppResult};
use crate::store::rows::WorkItemRow;
use crate::store::{hierarchy, queries, work_items};
use crate::writer::write_behind::WrittenItems;

fn change(
    item: &proto::WorkItem,
    action: Action,
    changes: Vec<proto::FieldChange>,
    event: Payload,
) -> Effect {
    Effect::Changed(item_change(item, action, changes, event))
}

fn item_change(
    item: &proto::WorkItem,
    action: Action,
    changes: Vec<proto::FieldChange>,
    event: Payload,
) -> Change {
    Change {
        project_id: item.project_id.clone(),
        lifecycle: false,
        entity_type: EntityType::WorkItem,
        entity_id: item.id.clone(),
        action,
        changes,
        event,
    }
}

pub async fn create(
    conn: &mut Conn<'_>,
    actor: &Actor,
    req: proto::CreateWorkItemRequest,
    limits: &ValidationLimits,
) -> AppResult<Effect> {
    let item_type = ItemType::from_proto(req.item_type).ok_or_else(|| {
        AppError::validation("item_type", format!("Invalid item_type: {}", req.item_type))
    })?;
    let title = domain::required_text("title", &req.title, limits.title)?;
    let description = domain::optional_text(
        "description",
        req.description.as_deref(),
        limits.description,
    )?;
    let status = domain::status(
        req.status
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or("backlog"),
    )?;
    let priority = domain::priority(
        req.priority
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or("medium"),
    )?;
    let project_id = parse_id("project_id", &req.project_id)?;
    let parent_id = match req.parent_id.as_deref().filter(|p| !p.trim().is_empty()) {
        Some(p) => Some(parse_id("parent_id", p)?),
        None => None,
    };
    // The project, and the new item's place at the end of its siblings, in one round trip.
    let (project, position) =
        queries::project_and_next_position(conn, &project_id, parent_id.as_deref())
            .await?
            .ok_or_else(|| AppError::not_found("Project", &project_id))?;
    if let Some(parent) = &parent_id {
        check_parent(conn, item_type, &project_id, parent, None).await?;
    }
    let now = pm_shared::now_secs();
    let row = WorkItemRow {
        id: crate::ids::random_id(),
        item_type: item_type.as_str().to_string(),
        parent_id,
        project_id,
        position,
        title,
        description,
        status: status.as_str().to_string(),
        priority: priority.as_str().to_string(),
        story_points: None,
        assignee_id: None,
        sprint_id: None,
        item_number: project.next_work_item_number,
        version: 1,
        created_at: now,
        updated_at: now,
        created_by: actor.user_id.clone(),
        updated_by: actor.user_id.clone(),
        deleted_at: None,
    };
    let binds = vec![
        Bind::Text(Some(row.project_id.clone())),
        Bind::Text(Some(row.id.clone())),
        Bind::Text(Some(row.item_type.clone())),
        Bind::Text(row.parent_id.clone()),
        Bind::Text(Some(row.project_id.clone())),
        Bind::Int(Some(row.position)),
        Bind::Text(Some(row.title.clone())),
        Bind::Text(row.description.clone()),
        Bind::Text(Some(row.status.clone())),
        Bind::Text(Some(row.priority.clone())),
        Bind::Int(Some(row.item_number)),
        Bind::Int(Some(now)),
        Bind::Int(Some(now)),
        Bind::Text(Some(actor.user_id.clone())),
        Bind::Text(Some(actor.user_id.clone())),
    ];
    let created = |item: &proto::WorkItem| {
        let mut changes = Vec::new();
        track(&mut changes, "title", None, Some(item.title.clone()));
        track(&mut changes, "item_type", None, Some(item_type.to_string()));
        track(&mut changes, "status", None, Some(item.status.clone()));
        track(&mut changes, "priority", None, Some(item.priority.clone()));
        track(&mut changes, "parent_id", None, item.parent_id.clone());
        let event = Payload::WorkItemCreated(proto::WorkItemCreated {
            work_item: Some(item.clone()),
            user_id: actor.user_id.clone(),
            ..Default::default()
        });
        item_change(item, Action::Created, changes, event)
    };
    if row.parent_id.is_some() {
        // Under a parent the new item's ancestor list is the parent's chain: write now and
        // read the item back with its lists.
        DeferredWrite {
            sql: work_items::CREATE_SQL.as_str().into(),
            binds,
            leaves: None,
        }
        .execute(conn)
        .await?;
        let item = load(conn, &row.id).await?;
        return Ok(Effect::Changed(created(&item)));
    }
    // A top-level item has no ancestors and no descendants yet: it is exactly the row above,
    // so its write waits for the pipeline's last round trip (nothing reads it in between).
    let item = row.into_proto();
    Ok(Effect::Deferred(
        created(&item),
        DeferredWrite {
            sql: work_items::CREATE_SQL.as_str().into(),
            binds,
            leaves: None,
        },
    ))
}

/// Updates an item. `known` holds the items of the group this update runs in (see
/// [`super::write_behind`]): the item is read from there when the group knows it, and the
/// deferred write says what it leaves the item as.
pub async fn update(
    conn: &mut Conn<'_>,
    actor: &Actor,
    req: proto::UpdateWorkItemRequest,
    known: Option<&WrittenItems>,
    limits: &ValidationLimits,
) -> AppResult<Effect> {
    let id = parse_id("work_item_id", &req.work_item_id)?;
    let (row, lists) = match known.and_then(|k| k.get(&id)) {
        Some(known) => known,
        // The item and its hierarchy lists in one round trip.
        None => queries::work_item_with_lists(conn, &id)
            .await?
            .ok_or_else(|| AppError::not_found("Work item", &id))?,
    };
    check_version(req.expected_version, row.version)?;
    let old_type = ItemType::parse(&row.item_type).unwrap_or(ItemType::Task);
    let mut next = row.clone();
    // The type the item has after this update: the parent check below and the type check at
    // the end hold it to the hierarchy rules.
    let item_type = match req.item_type.as_deref() {
        Some(t) => ItemType::parse(t.trim()).ok_or_else(|| {
            AppError::validation(
                "item_type",
                format!("Invalid item_type: {t} (epic, story or task)"),
            )
        })?,
        None => old_type,
    };
    next.item_type = item_type.as_str().to_string();

    if let Some(t) = req.title.as_deref() {
        next.title = domain::required_text("title", t, limits.title)?;
    }
    if let Some(d) = req.description.as_deref() {
        next.description = domain::optional_text("description", Some(d), limits.description)?;
    }
    if let Some(s) = req.status.as_deref() {
        next.status = domain::status(s)?.to_string();
    }
    if let Some(p) = req.priority.as_deref() {
        next.priority = domain::priority(p)?.to_string();
    }
    if let Some(points) = req.story_points {
        if req.clear_story_points {
            return Err(AppError::validation(
                "story_points",
                "story_points and clear_story_points cannot go together",
            ));
        }
        next.story_points = Some(i64::from(domain::story_points(
            points,
            limits.story_points,
        )?));
    }
    if req.clear_story_points {
        next.story_points = None;
    }
    if let Some(pos) = req.position {
        if pos < 0 {
            return Err(AppError::validation(
                "position",
                "Position must be non-negative",
            ));
        }
        next.position = i64::from(pos);
    }
    // An assignee is a person reference: the row the FK needs is written with the update.
    let mut new_assignee = None;
    if let Some(a) = req.assignee_id.as_deref() {
        next.assignee_id = match a.trim() {
            "" => None,
            a => {
                let user = parse_id("assignee_id", a)?;
                new_assignee = Some(user.clone());
                Some(user)
            }
        };
    }
    if let Some(s) = req.sprint_id.as_deref() {
        next.sprint_id = match s.trim() {
            "" => None,
            s => {
                let sprint_id = parse_id("sprint_id", s)?;
                match queries::sprint(conn, &sprint_id).await? {
                    Some(sp) if sp.project_id == row.project_id => Some(sprint_id),
                    Some(_) => {
                        return Err(AppError::validation(
                            "sprint_id",
                            "Sprint belongs to another project",
                        ))
                    }
                    None => {
                        return Err(AppError::validation(
                            "sprint_id",
                            format!("Sprint {sprint_id} not found"),
                        ))
                    }
                }
            }
        };
    }
    if req.update_parent {
        next.parent_id = match req
            .parent_id
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            None => None,
            Some(p) => {
                let parent = parse_id("parent_id", p)?;
                if parent == id {
                    return Err(AppError::validation(
                        "parent_id",
                        format!("Work item {id} cannot be its own parent"),
                    ));
                }
                Some(check_parent(conn, item_type, &row.project_id, &parent, Some(&id)).await?)
            }
        };
    }

    if item_type != old_type {
        check_type_change(conn, &next, old_type, item_type).await?;
    }

    let fields = changed_fields(&row, &next);
    let changes = changes_of(&row, &next, &fields);
    if changes.is_empty() {
        let mut current = row.into_proto();
        hierarchy::set_lists(&mut current, lists);
        return Ok(Effect::Unchanged {
            project_id: current.project_id.clone(),
            current: Payload::WorkItemUpdated(proto::WorkItemUpdated {
                work_item: Some(current),
                changes,
                user_id: actor.user_id.clone(),
            }),
        });
    }
    let now = pm_shared::now_secs();
    let mut write = update_write(&fields, &next, new_assignee.as_deref(), now, &actor.user_id);
    let reparented = next.parent_id != row.parent_id;
    next.version += 1;
    next.updated_at = now;
    next.updated_by = actor.user_id.clone();
    let after = known.is_some().then(|| next.clone());
    let mut item = next.into_proto();
    let updated = |item: &proto::WorkItem, changes: Vec<proto::FieldChange>| {
        let event = Payload::WorkItemUpdated(proto::WorkItemUpdated {
            work_item: Some(item.clone()),
            changes: changes.clone(),
            user_id: actor.user_id.clone(),
        });
        item_change(item, Action::Updated, changes, event)
    };
    if reparented {
        // The lists change with the parent: write now, and read them as they are after it.
        write.execute(conn).await?;
        hierarchy::fill(conn, &mut item).await?;
        return Ok(Effect::Changed(updated(&item, changes)));
    }
    // Same parent, same lists: the item is exactly what the update writes, so the write can
    // wait for the pipeline's last round trip (nothing reads it back in between).
    write.leaves = after.map(|row| Box::new((row, lists.clone())));
    hierarchy::set_lists(&mut item, lists);
    Ok(Effect::Deferred(updated(&item, changes), write))
}

pub async fn delete(
    conn: &mut Conn<'_>,
    actor: &Actor,
    req: proto::DeleteWorkItemRequest,
) -> AppResult<Effect> {
    let id = parse_id("work_item_id", &req.work_item_id)?;
    let item = load(conn, &id).await?;
    let children = queries::live_children(conn, &id).await?;
    if children > 0 {
        return Err(AppError::DeleteBlocked(format!(
            "has {children} child item(s). Delete children first."
        )));
    }
    work_items::soft_delete(conn, &id, pm_shared::now_secs(), &actor.user_id).await?;
    let event = Payload::WorkItemDeleted(proto::WorkItemDeleted {
        work_item_id: id,
        user_id: actor.user_id.clone(),
    });
    Ok(change(&item, Action::Deleted, Vec::new(), event))
}

/// Brings a deleted item back as it was (same id and key; its comments, links and time entries
/// were never deleted with it, only hidden), at version + 1. The event is a WorkItemCreated
/// marked `restored` that carries them, so every client shows them again.
pub async fn restore(
    conn: &mut Conn<'_>,
    actor: &Actor,
    req: proto::RestoreWorkItemRequest,
) -> AppResult<Effect> {
    let id = parse_id("work_item_id", &req.work_item_id)?;
    let mut row = work_items::work_item_any(conn, &id)
        .await?
        .ok_or_else(|| AppError::not_found("Work item", &id))?;
    let Some(deleted_at) = row.deleted_at else {
        return Err(AppError::validation(
            "work_item_id",
            format!("Work item {id} is not deleted"),
        ));
    };
    if queries::project(conn, &row.project_id).await?.is_none() {
        return Err(AppError::validation(
            "work_item_id",
            "Its project was deleted: the item cannot come back",
        ));
    }
    if let Some(parent) = &row.parent_id {
        if queries::work_item(conn, parent).await?.is_none() {
            return Err(AppError::validation(
                "parent_id",
                format!("Its parent {parent} was deleted: restore the parent first"),
            ));
        }
    }
    let mut changes = Vec::new();
    track(
        &mut changes,
        "deleted_at",
        Some(deleted_at.to_string()),
        None,
    );
    // A sprint deleted meanwhile took its live items out of it; this one goes back without.
    if let Some(sprint) = row.sprint_id.clone() {
        if queries::sprint(conn, &sprint).await?.is_none() {
            track(&mut changes, "sprint_id", Some(sprint), None);
            row.sprint_id = None;
        }
    }
    let now = pm_shared::now_secs();
    row.version += 1;
    row.updated_at = now;
    row.updated_by = actor.user_id.clone();
    row.deleted_at = None;
    work_items::replace(conn, &row).await?;
    let item = load(conn, &id).await?;

    let comments = queries::comments(conn, &id)
        .await?
        .into_iter()
        .map(|c| c.into_proto())
        .collect();
    let mut dependencies = Vec::new();
    for link in queries::dependencies_of(conn, &id).await? {
        // A link to an item that is still deleted stays hidden with that item.
        let other = if link.blocking_item_id == id {
            &link.blocked_item_id
        } else {
            &link.blocking_item_id
        };
        if queries::work_item(conn, other).await?.is_some() {
            dependencies.push(link.into_proto());
        }
    }
    let (entries, _) = queries::time_entries(conn, &id, i64::MAX, 0).await?;
    let event = Payload::WorkItemCreated(proto::WorkItemCreated {
        work_item: Some(item.clone()),
        user_id: actor.user_id.clone(),
        restored: Some(Box::new(proto::Restored {
            comments,
            dependencies,
            time_entries: entries.into_iter().map(|t| t.into_proto()).collect(),
        })),
    });
    Ok(change(&item, Action::Created, changes, event))
}

/// The editable fields that differ between the stored row and the updated one, in change order.
fn changed_fields(old: &WorkItemRow, new: &WorkItemRow) -> Vec<WorkItemField> {
    WorkItemField::ALL
        .iter()
        .copied()
        .filter(|f| text_of(old, *f) != text_of(new, *f))
        .collect()
}

/// `fields` of the stored row and the updated one, as changes.
fn changes_of(
    old: &WorkItemRow,
    new: &WorkItemRow,
    fields: &[WorkItemField],
) -> Vec<proto::FieldChange> {
    let mut changes = Vec::with_capacity(fields.len());
    for field in fields {
        track(
            &mut changes,
            field.as_str(),
            text_of(old, *field),
            text_of(new, *field),
        );
    }
    changes
}

/// Every field that differs between the stored row and the updated one.
pub(super) fn diff(old: &WorkItemRow, new: &WorkItemRow) -> Vec<proto::FieldChange> {
    changes_of(old, new, &changed_fields(old, new))
}

/// A field's value as a change shows it.
fn text_of(row: &WorkItemRow, field: WorkItemField) -> Option<String> {
    match field {
        WorkItemField::Title => Some(row.title.clone()),
        WorkItemField::Description => row.description.clone(),
        WorkItemField::Status => Some(row.status.clone()),
        WorkItemField::Priority => Some(row.priority.clone()),
        WorkItemField::StoryPoints => row.story_points.map(|p| p.to_string()),
        WorkItemField::Position => Some(row.position.to_string()),
        WorkItemField::AssigneeId => row.assignee_id.clone(),
        WorkItemField::SprintId => row.sprint_id.clone(),
        WorkItemField::ParentId => row.parent_id.clone(),
        WorkItemField::ItemType => Some(row.item_type.clone()),
    }
}

/// A field's value as its column stores it.
fn bind_of(row: &WorkItemRow, field: WorkItemField) -> Bind {
    match field {
        WorkItemField::Title => Bind::Text(Some(row.title.clone())),
        WorkItemField::Description => Bind::Text(row.description.clone()),
        WorkItemField::Status => Bind::Text(Some(row.status.clone())),
        WorkItemField::Priority => Bind::Text(Some(row.priority.clone())),
        WorkItemField::StoryPoints => Bind::Int(row.story_points),
        WorkItemField::Position => Bind::Int(Some(row.position)),
        WorkItemField::AssigneeId => Bind::Text(row.assignee_id.clone()),
        WorkItemField::SprintId => Bind::Text(row.sprint_id.clone()),
        WorkItemField::ParentId => Bind::Text(row.parent_id.clone()),
        WorkItemField::ItemType => Bind::Text(Some(row.item_type.clone())),
    }
}

/// Checks that an item changed from `old` to `new` type (`next` as the update leaves it) still
/// fits the hierarchy: under its parent, and over each of its live children.
async fn check_type_change(
    conn: &mut Conn<'_>,
    next: &WorkItemRow,
    old: ItemType,
    new: ItemType,
) -> AppResult<()> {
    let refused = |why: String| {
        AppError::validation(
            "item_type",
            format!(
                "Invalid hierarchy: cannot change {} to {}: {why}",
                old.label(),
                new.label()
            ),
        )
    };
    if let Some(parent_id) = &next.parent_id {
        let parent_type = queries::work_item(conn, parent_id)
            .await?
            .and_then(|p| ItemType::parse(&p.item_type));
        if let Some(parent_type) = parent_type {
            if domain::hierarchy(new, parent_type).is_err() {
                return Err(refused(format!(
                    "{} cannot be a child of {} (its parent)",
                    new.label(),
                    parent_type.label()
                )));
            }
        }
    }
    for child in work_items::live_child_types(conn, &next.id).await? {
        let child = ItemType::parse(&child).unwrap_or(ItemType::Task);
        if domain::hierarchy(child, new).is_err() {
            return Err(refused(format!(
                "{} (one of its children) cannot be a child of {}",
                child.label(),
                new.label()
            )));
        }
    }
    Ok(())
}

/// Checks a prospective parent: it exists, lives in the same project, has the right type, and
/// (when re-parenting `child`) is not the child itself or one of its descendants.
async fn check_parent(
    conn: &mut Conn<'_>,
    child_type: ItemType,
    project_id: &str,
    parent_id: &str,
    child: Option<&str>,
) -> AppResult<String> {
    let parent = queries::work_item(conn, parent_id)
        .await?
        .ok_or_else(|| AppError::validation("parent_id", "Parent work item not found"))?;
    if parent.project_id != project_id {
        return Err(AppError::validation(
            "parent_id",
            "Parent work item belongs to another project",
        ));
    }
    let parent_type = ItemType::parse(&parent.item_type).unwrap_or(ItemType::Task);
    domain::hierarchy(child_type, parent_type)?;
    if let Some(child) = child {
        if hierarchy::ancestors(conn, parent_id)
            .await?
            .iter()
            .any(|a| a == child)
        {
            return Err(AppError::validation(
                "parent_id",
                format!("Setting parent {parent_id} would create circular reference"),
            ));
        }
    }
    Ok(parent.id)
}

/// The UPDATE of exactly the columns that change, with the assignee's user row first when one
/// is set (an assignee need not have connected). SQLite rewrites the entries of every index
/// whose columns an UPDATE sets, changed or not, so setting every editable column costs
/// measurably more than setting the one that changed (bench/NOTES.md, "What was changed in the
/// server"). Few distinct texts come out of this (a title, a move, a status), so sqlx's
/// statement cache keeps them prepared.
fn update_write(
    fields: &[WorkItemField],
    next: &WorkItemRow,
    new_assignee: Option<&str>,
    now: i64,
    user_id: &str,
) -> DeferredWrite {
    let mut sql = String::new();
    let mut binds = Vec::with_capacity(fields.len() + 5);
    if let Some(user) = new_assignee {
        sql.push_str(super::ENSURE_USER_SQL);
        sql.push_str(";\n");
        binds.push(Bind::Text(Some(user.to_string())));
        binds.push(Bind::Text(Some(user.to_string())));
    }
    sql.push_str(&work_items::update_sql(fields));
    binds.extend(fields.iter().map(|f| bind_of(next, *f)));
    binds.push(Bind::Int(Some(now)));
    binds.push(Bind::Text(Some(user_id.to_string())));
    binds.push(Bind::Text(Some(next.id.clone())));
    DeferredWrite {
        sql: sql.into(),
        binds,
        leaves: None,
    }
}

/// Takes every live item of a sprint that is being deleted back to the backlog (no sprint):
/// one update per item, so every client's store and the history follow. Part of the sprint's
/// delete, in its transaction.
pub async fn leave_sprint(
    conn: &mut Conn<'_>,
    actor: &Actor,
    sprint_id: &str,
) -> AppResult<Vec<Change>> {
    // One statement frees them all; each is then read back for its event.
    let mut ids =
        work_items::leave_sprint(conn, sprint_id, pm_shared::now_secs(), &actor.user_id).await?;
    ids.sort_unstable();
    let mut changes = Vec::with_capacity(ids.len());
    for (_, id) in ids {
        let item = load(conn, &id).await?;
        let mut fields = Vec::new();
        track(
            &mut fields,
            WorkItemField::SprintId.as_str(),
            Some(sprint_id.to_string()),
            None,
        );
        let event = Payload::WorkItemUpdated(proto::WorkItemUpdated {
            work_item: Some(item.clone()),
            changes: fields.clone(),
            user_id: actor.user_id.clone(),
        });
        changes.push(item_change(&item, Action::Updated, fields, event));
    }
    Ok(changes)
}

async fn load(conn: &mut Conn<'_>, id: &str) -> AppResult<proto::WorkItem> {
    let mut item = queries::work_item(conn, id)
        .await?
        .map(|r| r.into_proto())
        .ok_or_else(|| AppError::not_found("Work item", id))?;
    hierarchy::fill(conn, &mut item).await?;
    Ok(item)
}
