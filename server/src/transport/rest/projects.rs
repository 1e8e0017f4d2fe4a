//! /api/v1/projects
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use pm_shared::domain::ProjectStatus;
use pm_shared::proto::{self, Payload};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{dto, Body, Caller, IdempotencyKey, RestResult};
use crate::commands::{execute, Command};
use crate::error::AppError;
use crate::reads;
use crate::transport::state::SharedState;

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/api/v1/projects", get(list).post(create))
        .route(
            "/api/v1/projects/{id}",
            get(show).put(update).delete(remove),
        )
        .route("/api/v1/projects/{id}/swim-lanes", get(swim_lanes))
        .route(
            "/api/v1/projects/{id}/members",
            get(members).post(add_member),
        )
        .route(
            "/api/v1/projects/{id}/members/{user_id}",
            axum::routing::delete(remove_member),
        )
}

async fn list(State(state): State<SharedState>, Caller(actor): Caller) -> RestResult<Json<Value>> {
    let snap = reads::projects(&state.store, &state.viewer(&actor)).await?;
    let projects: Vec<Value> = snap.items.iter().map(dto::project).collect();
    Ok(Json(json!({ "projects": projects })))
}

async fn show(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> RestResult<Json<Value>> {
    let project = reads::project(&state.store, &state.viewer(&actor), &id).await?;
    Ok(Json(json!({ "project": dto::project(&project) })))
}

#[derive(Deserialize)]
struct CreateBody {
    title: String,
    key: String,
    description: Option<String>,
}

async fn create(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    IdempotencyKey(key): IdempotencyKey,
    Body(body): Body<CreateBody>,
) -> RestResult<Json<Value>> {
    let req = proto::CreateProjectRequest {
        title: body.title,
        description: body.description,
        key: body.key,
    };
    let done = execute(
        &state.writer,
        &actor,
        key.as_deref(),
        Command::CreateProject(req),
    )
    .await?;
    let Payload::ProjectCreated(e) = done.event else {
        return Err(unexpected().into());
    };
    Ok(Json(
        json!({ "project": e.project.as_ref().map(dto::project) }),
    ))
}

#[derive(Deserialize)]
struct UpdateBody {
    title: Option<String>,
    description: Option<String>,
    status: Option<String>,
    expected_version: i32,
}

async fn update(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Body(body): Body<UpdateBody>,
) -> RestResult<Json<Value>> {
    let project = reads::project(&state.store, &state.viewer(&actor), &id).await?;
    let status = match body.status.as_deref() {
        Some(s) => Some(
            ProjectStatus::parse(s)
                .ok_or_else(|| {
                    AppError::validation(
                        "status",
                        format!("Invalid status: {s}. Valid: active, archived"),
                    )
                })?
                .to_proto() as i32,
        ),
        None => None,
    };
    let req = proto::UpdateProjectRequest {
        project_id: project.id,
        expected_version: body.expected_version,
        title: body.title,
        description: body.description,
        status,
    };
    let done = execute(&state.writer, &actor, None, Command::UpdateProject(req)).await?;
    let Payload::ProjectUpdated(e) = done.event else {
        return Err(unexpected().into());
    };
    Ok(Json(
        json!({ "project": e.project.as_ref().map(dto::project) }),
    ))
}

async fn remove(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> RestResult<Json<Value>> {
    let project = reads::project(&state.store, &state.viewer(&actor), &id).await?;
    let command = Command::DeleteProject {
        project_id: project.id,
        expected_version: None,
    };
    let done = execute(&state.writer, &actor, None, command).await?;
    let Payload::ProjectDeleted(e) = done.event else {
        return Err(unexpected().into());
    };
    Ok(Json(json!({ "deleted_id": e.project_id })))
}

async fn swim_lanes(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> RestResult<Json<Value>> {
    let project = reads::project(&state.store, &state.viewer(&actor), &id).await?;
    Ok(Json(dto::swim_lanes(&project)))
}

pub(super) fn unexpected() -> AppError {
    AppError::Internal(anyhow::anyhow!("command returned an unexpected event type"))
}

fn member_dto(m: &proto::ProjectMember) -> Value {
    json!({"project_id": m.project_id, "user_id": m.user_id, "role": m.role, "name": m.name, "created_at": m.created_at})
}

async fn members(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> RestResult<Json<Value>> {
    let members = reads::members(&state.store, &state.viewer(&actor), &id).await?;
    Ok(Json(
        json!({ "members": members.iter().map(member_dto).collect::<Vec<_>>() }),
    ))
}

#[derive(Deserialize)]
struct MemberBody {
    user_id: String,
    role: String,
}

async fn add_member(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Body(body): Body<MemberBody>,
) -> RestResult<Json<Value>> {
    let project = reads::project(&state.store, &state.viewer(&actor), &id).await?;
    let req = proto::AddProjectMemberRequest {
        project_id: project.id,
        user_id: body.user_id,
        role: body.role,
    };
    let done = execute(&state.writer, &actor, None, Command::AddMember(req)).await?;
    let Payload::ProjectMemberAdded(e) = done.event else {
        return Err(unexpected().into());
    };
    Ok(Json(json!({ "member": e.member.as_ref().map(member_dto) })))
}

async fn remove_member(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    Path((id, user_id)): Path<(String, String)>,
) -> RestResult<Json<Value>> {
    let project = reads::project(&state.store, &state.viewer(&actor), &id).await?;
    let req = proto::RemoveProjectMemberRequest {
        project_id: project.id,
        user_id,
    };
    let done = execute(&state.writer, &actor, None, Command::RemoveMember(req)).await?;
    let Payload::ProjectMemberRemoved(e) = done.event else {
        return Err(unexpected().into());
    };
    Ok(Json(json!({ "deleted_id": e.member_user_id })))
}
