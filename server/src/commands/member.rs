//! Project membership commands: add (or change the role of) a member, remove a member. The
//! membership decides, in token mode, who may read, write and receive a project's events.
use crate::store::Conn;
use pm_shared::domain::EntityType;
use pm_shared::proto::{self, Payload};

use super::{parse_id, track, Action, Actor, Change, Effect};
use crate::access::{self, Role};
use crate::error::{AppError, AppResult};
use crate::store::{members, queries};

pub async fn add(
    conn: &mut Conn<'_>,
    actor: &Actor,
    req: proto::AddProjectMemberRequest,
) -> AppResult<Effect> {
    let project_id = parse_id("project_id", &req.project_id)?;
    let user_id = parse_id("user_id", &req.user_id)?;
    let role = Role::parse(req.role.trim()).ok_or_else(|| {
        AppError::validation(
            "role",
            format!("Invalid role: {}. Valid: viewer, editor, admin", req.role),
        )
    })?;
    if queries::project(conn, &project_id).await?.is_none() {
        return Err(AppError::not_found("Project", &project_id));
    }
    let old = access::role_of(conn, &project_id, &user_id).await?;
    if old == Some(role) {
        let member = load(conn, &project_id, &user_id).await?;
        return Ok(Effect::Unchanged {
            project_id,
            current: Payload::ProjectMemberAdded(proto::ProjectMemberAdded {
                member: Some(member),
                user_id: actor.user_id.clone(),
            }),
        });
    }
    if old == Some(Role::Admin) && members::admin_count(conn, &project_id).await? == 1 {
        return Err(AppError::validation(
            "role",
            "A project needs at least one admin",
        ));
    }
    super::ensure_user(conn, &user_id).await?;
    members::set_role(
        conn,
        &project_id,
        &user_id,
        role.as_str(),
        pm_shared::now_secs(),
    )
    .await?;
    let member = load(conn, &project_id, &user_id).await?;
    let mut changes = Vec::new();
    track(
        &mut changes,
        "role",
        old.map(|r| r.as_str().to_string()),
        Some(role.as_str().to_string()),
    );
    Ok(Effect::Changed(Change {
        project_id,
        lifecycle: false,
        entity_type: EntityType::ProjectMember,
        entity_id: user_id,
        action: if old.is_some() {
            Action::Updated
        } else {
            Action::Created
        },
        changes,
        event: Payload::ProjectMemberAdded(proto::ProjectMemberAdded {
            member: Some(member),
            user_id: actor.user_id.clone(),
        }),
    }))
}

pub async fn remove(
    conn: &mut Conn<'_>,
    actor: &Actor,
    req: proto::RemoveProjectMemberRequest,
) -> AppResult<Effect> {
    let project_id = parse_id("project_id", &req.project_id)?;
    let user_id = parse_id("user_id", &req.user_id)?;
    let Some(old) = access::role_of(conn, &project_id, &user_id).await? else {
        return Err(AppError::NotFound(format!(
            "User {user_id} is not a member of project {project_id}"
        )));
    };
    if old == Role::Admin && members::admin_count(conn, &project_id).await? == 1 {
        return Err(AppError::validation(
            "user_id",
            "Cannot remove the last admin of a project",
        ));
    }
    members::remove(conn, &project_id, &user_id).await?;
    let mut changes = Vec::new();
    track(&mut changes, "role", Some(old.as_str().to_string()), None);
    Ok(Effect::Changed(Change {
        project_id: project_id.clone(),
        lifecycle: false,
        entity_type: EntityType::ProjectMember,
        entity_id: user_id.clone(),
        action: Action::Deleted,
        changes,
        event: Payload::ProjectMemberRemoved(proto::ProjectMemberRemoved {
            project_id,
            member_user_id: user_id,
            user_id: actor.user_id.clone(),
        }),
    }))
}

async fn load(
    conn: &mut Conn<'_>,
    project_id: &str,
    user_id: &str,
) -> AppResult<proto::ProjectMember> {
    queries::members(conn, project_id)
        .await?
        .into_iter()
        .find(|m| m.user_id == user_id)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("member row vanished")))
}
