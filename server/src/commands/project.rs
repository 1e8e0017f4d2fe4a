//! Project commands. Project events live in the workspace stream, so every client that shows
//! the project list sees a project appear, change and disappear.
use crate::store::Conn;
use pm_shared::domain::limits::ValidationLimits;
use pm_shared::domain::EntityType;
use pm_shared::domain::{self, ProjectStatus};
use pm_shared::proto::{self, Payload};

use super::{check_version, parse_id, track, Action, Actor, Change, Effect};
use crate::error::{AppError, AppResult};
use crate::store::rows::ProjectRow;
use crate::store::{members, projects, queries};

fn change(
    project: &proto::Project,
    action: Action,
    changes: Vec<proto::FieldChange>,
    event: Payload,
) -> Effect {
    Effect::Changed(Change {
        project_id: project.id.clone(),
        lifecycle: true,
        entity_type: EntityType::Project,
        entity_id: project.id.clone(),
        action,
        changes,
        event,
    })
}

pub async fn create(
    conn: &mut Conn<'_>,
    actor: &Actor,
    req: proto::CreateProjectRequest,
    limits: &ValidationLimits,
) -> AppResult<Effect> {
    let title = domain::required_text("title", &req.title, limits.title)?;
    let description = domain::optional_text(
        "description",
        req.description.as_deref(),
        limits.description,
    )?;
    let key = domain::project_key(&req.key)?;
    if queries::project_by_key(conn, &key).await?.is_some() {
        return Err(AppError::Duplicate {
            field: "key".into(),
            message: format!("Project key '{key}' already exists"),
        });
    }
    let id = crate::ids::random_id();
    let now = pm_shared::now_secs();
    let row = ProjectRow {
        id: id.clone(),
        title,
        description,
        key,
        status: ProjectStatus::Active.as_str().to_string(),
        version: 1,
        next_work_item_number: 1,
        created_at: now,
        updated_at: now,
        created_by: actor.user_id.clone(),
        updated_by: actor.user_id.clone(),
        deleted_at: None,
    };
    projects::insert(conn, &row).await?;
    // Whoever creates a project administers it, whichever transport they used.
    members::add_first_admin(conn, &id, &actor.user_id, now).await?;
    let project = load(conn, &id).await?;
    let mut changes = Vec::new();
    track(&mut changes, "title", None, Some(project.title.clone()));
    track(&mut changes, "key", None, Some(project.key.clone()));
    track(
        &mut changes,
        "description",
        None,
        project.description.clone(),
    );
    let event = Payload::ProjectCreated(proto::ProjectCreated {
        project: Some(project.clone()),
        user_id: actor.user_id.clone(),
    });
    Ok(change(&project, Action::Created, changes, event))
}

pub async fn update(
    conn: &mut Conn<'_>,
    actor: &Actor,
    req: proto::UpdateProjectRequest,
    limits: &ValidationLimits,
) -> AppResult<Effect> {
    let id = parse_id("project_id", &req.project_id)?;
    let current = load(conn, &id).await?;
    check_version(req.expected_version, i64::from(current.version))?;
    let title = match req.title.as_deref() {
        Some(t) => domain::required_text("title", t, limits.title)?,
        None => current.title.clone(),
    };
    let description = match req.description.as_deref() {
        Some(d) => domain::optional_text("description", Some(d), limits.description)?,
        None => current.description.clone(),
    };
    let old_status = ProjectStatus::from_proto(current.status).unwrap_or(ProjectStatus::Active);
    let status = match req.status {
        Some(s) => ProjectStatus::from_proto(s)
            .ok_or_else(|| AppError::validation("status", format!("Invalid status value: {s}")))?,
        None => old_status,
    };
    let mut changes = Vec::new();
    track(
        &mut changes,
        "title",
        Some(current.title.clone()),
        Some(title.clone()),
    );
    track(
        &mut changes,
        "description",
        current.description.clone(),
        description.clone(),
    );
    track(
        &mut changes,
        "status",
        Some(old_status.to_string()),
        Some(status.to_string()),
    );
    if changes.is_empty() {
        return Ok(Effect::Unchanged {
            project_id: id.clone(),
            current: Payload::ProjectUpdated(proto::ProjectUpdated {
                project: Some(current),
                changes,
                user_id: actor.user_id.clone(),
            }),
        });
    }
    projects::update(
        conn,
        &id,
        &title,
        description.as_deref(),
        status.as_str(),
        pm_shared::now_secs(),
        &actor.user_id,
    )
    .await?;
    let project = load(conn, &id).await?;
    let event = Payload::ProjectUpdated(proto::ProjectUpdated {
        project: Some(project.clone()),
        changes: changes.clone(),
        user_id: actor.user_id.clone(),
    });
    Ok(change(&project, Action::Updated, changes, event))
}

pub async fn delete(
    conn: &mut Conn<'_>,
    actor: &Actor,
    project_id: &str,
    expected_version: Option<i32>,
) -> AppResult<Effect> {
    let id = parse_id("project_id", project_id)?;
    let current = load(conn, &id).await?;
    if let Some(expected) = expected_version {
        check_version(expected, i64::from(current.version))?;
    }
    let items = queries::live_items_in_project(conn, &id).await?;
    if items > 0 {
        return Err(AppError::DeleteBlocked(format!(
            "Cannot delete project: has {items} work item(s). Delete or move them first."
        )));
    }
    projects::soft_delete(conn, &id, pm_shared::now_secs(), &actor.user_id).await?;
    let event = Payload::ProjectDeleted(proto::ProjectDeleted {
        project_id: id.clone(),
        user_id: actor.user_id.clone(),
    });
    Ok(change(&current, Action::Deleted, Vec::new(), event))
}

async fn load(conn: &mut Conn<'_>, id: &str) -> AppResult<proto::Project> {
    queries::project(conn, id)
        .await?
        .map(|r| r.into_proto())
        .ok_or_else(|| AppError::not_found("Project", id))
}
