//! Sprint commands, with the reference's life cycle: planned → active → completed, either of the
//! first two → cancelled; completed sprints are frozen; one active sprint per project.
use crate::store::Conn;
use pm_shared::domain::limits::{ValidationLimits, SPRINT_GOAL_MAX};
use pm_shared::domain::EntityType;
use pm_shared::domain::{self, SprintStatus};
use pm_shared::proto::{self, Payload};

use super::{check_version, parse_id, track, Action, Actor, Batch, Change, Effect};
use crate::error::{AppError, AppResult};
use crate::store::rows::SprintRow;
use crate::store::{queries, sprints};

fn change(
    sprint: &proto::Sprint,
    action: Action,
    changes: Vec<proto::FieldChange>,
    event: Payload,
) -> Effect {
    Effect::Changed(sprint_change(sprint, action, changes, event))
}

fn sprint_change(
    sprint: &proto::Sprint,
    action: Action,
    changes: Vec<proto::FieldChange>,
    event: Payload,
) -> Change {
    Change {
        project_id: sprint.project_id.clone(),
        lifecycle: false,
        entity_type: EntityType::Sprint,
        entity_id: sprint.id.clone(),
        action,
        changes,
        event,
    }
}

pub async fn create(
    conn: &mut Conn<'_>,
    actor: &Actor,
    req: proto::CreateSprintRequest,
    limits: &ValidationLimits,
) -> AppResult<Effect> {
    let name = domain::required_text("name", &req.name, limits.sprint_name)?;
    let goal = domain::optional_text("goal", req.goal.as_deref(), SPRINT_GOAL_MAX)?;
    let now = pm_shared::now_secs();
    domain::sprint_dates(req.start_date, req.end_date, now)?;
    let project_id = parse_id("project_id", &req.project_id)?;
    if queries::project(conn, &project_id).await?.is_none() {
        return Err(AppError::not_found("Project", &project_id));
    }
    let id = crate::ids::random_id();
    let row = SprintRow {
        id: id.clone(),
        project_id,
        name,
        goal,
        start_date: req.start_date,
        end_date: req.end_date,
        status: SprintStatus::Planned.as_str().to_string(),
        version: 1,
        created_at: now,
        updated_at: now,
        created_by: actor.user_id.clone(),
        updated_by: actor.user_id.clone(),
        deleted_at: None,
    };
    sprints::insert(conn, &row).await?;
    let sprint = load(conn, &id).await?;
    let mut changes = Vec::new();
    track(&mut changes, "name", None, Some(sprint.name.clone()));
    let event = Payload::SprintCreated(proto::SprintCreated {
        sprint: Some(sprint.clone()),
        user_id: actor.user_id.clone(),
    });
    Ok(change(&sprint, Action::Created, changes, event))
}

pub async fn update(
    conn: &mut Conn<'_>,
    actor: &Actor,
    req: proto::UpdateSprintRequest,
    limits: &ValidationLimits,
) -> AppResult<Effect> {
    let id = parse_id("sprint_id", &req.sprint_id)?;
    let row = queries::sprint(conn, &id)
        .await?
        .ok_or_else(|| AppError::not_found("Sprint", &id))?;
    check_version(req.expected_version, row.version)?;
    let old_status = SprintStatus::parse(&row.status).unwrap_or(SprintStatus::Planned);
    if old_status == SprintStatus::Completed {
        return Err(AppError::Conflict(
            "a completed sprint cannot be changed".into(),
        ));
    }
    let name = match req.name.as_deref() {
        Some(n) => domain::required_text("name", n, limits.sprint_name)?,
        None => row.name.clone(),
    };
    let goal = match req.goal.as_deref() {
        Some(g) => domain::optional_text("goal", Some(g), SPRINT_GOAL_MAX)?,
        None => row.goal.clone(),
    };
    let start = req.start_date.unwrap_or(row.start_date);
    let end = req.end_date.unwrap_or(row.end_date);
    if req.start_date.is_some() || req.end_date.is_some() {
        domain::sprint_dates(start, end, pm_shared::now_secs())?;
    }
    let status = match req.status {
        Some(s) => {
            let to = SprintStatus::from_proto(s).ok_or_else(|| {
                AppError::validation("status", format!("Invalid sprint status: {s}"))
            })?;
            if !old_status.can_become(to) {
                return Err(AppError::validation(
                    "status",
                    format!("Invalid status transition: {old_status} -> {to}"),
                ));
            }
            to
        }
        None => old_status,
    };
    if status == SprintStatus::Active
        && old_status != SprintStatus::Active
        && sprints::active_count(conn, &row.project_id, Some(&id)).await? > 0
    {
        return Err(AppError::Conflict(
            "another sprint of this project is already active".into(),
        ));
    }
    let mut changes = Vec::new();
    track(
        &mut changes,
        "name",
        Some(row.name.clone()),
        Some(name.clone()),
    );
    track(&mut changes, "goal", row.goal.clone(), goal.clone());
    track(
        &mut changes,
        "start_date",
        Some(row.start_date.to_string()),
        Some(start.to_string()),
    );
    track(
        &mut changes,
        "end_date",
        Some(row.end_date.to_string()),
        Some(end.to_string()),
    );
    track(
        &mut changes,
        "status",
        Some(old_status.to_string()),
        Some(status.to_string()),
    );
    if changes.is_empty() {
        return Ok(Effect::Unchanged {
            project_id: row.project_id.clone(),
            current: Payload::SprintUpdated(proto::SprintUpdated {
                sprint: Some(row.into_proto()),
                changes,
                user_id: actor.user_id.clone(),
            }),
        });
    }
    let next = SprintRow {
        name,
        goal,
        start_date: start,
        end_date: end,
        status: status.as_str().to_string(),
        updated_at: pm_shared::now_secs(),
        updated_by: actor.user_id.clone(),
        ..row
    };
    sprints::update(conn, &next).await?;
    let sprint = load(conn, &id).await?;
    let event = Payload::SprintUpdated(proto::SprintUpdated {
        sprint: Some(sprint.clone()),
        changes: changes.clone(),
        user_id: actor.user_id.clone(),
    });
    Ok(change(&sprint, Action::Updated, changes, event))
}

pub async fn delete(
    conn: &mut Conn<'_>,
    actor: &Actor,
    req: proto::DeleteSprintRequest,
) -> AppResult<Effect> {
    let id = parse_id("sprint_id", &req.sprint_id)?;
    let sprint = load(conn, &id).await?;
    if SprintStatus::from_proto(sprint.status) == Some(SprintStatus::Completed) {
        return Err(AppError::DeleteBlocked(
            "Cannot delete completed sprint".into(),
        ));
    }
    sprints::soft_delete(conn, &id, pm_shared::now_secs(), &actor.user_id).await?;
    // Its items go back to the backlog, as in Jira: an item must not point at a sprint that no
    // longer exists. The answer is the SprintDeleted event, the first of the batch.
    let freed = super::work_item::leave_sprint(conn, actor, &id).await?;
    let event = Payload::SprintDeleted(proto::SprintDeleted {
        sprint_id: id,
        user_id: actor.user_id.clone(),
    });
    let deleted = sprint_change(&sprint, Action::Deleted, Vec::new(), event);
    if freed.is_empty() {
        return Ok(Effect::Changed(deleted));
    }
    Ok(Effect::Batch(Batch {
        changes: std::iter::once(deleted).chain(freed).collect(),
        response: None,
    }))
}

async fn load(conn: &mut Conn<'_>, id: &str) -> AppResult<proto::Sprint> {
    queries::sprint(conn, id)
        .await?
        .map(|r| r.into_proto())
        .ok_or_else(|| AppError::not_found("Sprint", id))
}
