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

#[utoipa::path(
    get,
    path = "/api/v1/projects",
    tag = "projects",
    operation_id = "list_projects",
    responses((status = 200, description = "The projects the caller may see", body = super::schema::ProjectList))
)]
async fn list(State(state): State<SharedState>, Caller(actor): Caller) -> RestResult<Json<Value>> {
    let snap = reads::projects(&state.store, &state.viewer(&actor)).await?;
    let projects: Vec<Value> = snap.items.iter().map(dto::project).collect();
    Ok(Json(json!({ "projects": projects })))
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{id}",
    tag = "projects",
    operation_id = "get_project",
    params(("id" = String, Path, description = "Project id (UUID) or key")),
    responses((status = 200, description = "The project", body = super::schema::ProjectReply))
)]
async fn show(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> RestResult<Json<Value>> {
    let project = reads::project(&state.store, &state.viewer(&actor), &id).await?;
    Ok(Json(json!({ "project": dto::project(&project) })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = CreateProject)]
struct CreateBody {
    #[schema(min_length = 1, pattern = "\\S")]
    title: String,
    #[schema(pattern = "^[A-Za-z0-9_]{2,20}$")]
    key: String,
    description: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/projects",
    tag = "projects",
    operation_id = "create_project",
    params(("Idempotency-Key" = Option<String>, Header, description = "A retried POST with the same key (and user) answers the first result again")),
    request_body = CreateBody,
    responses((status = 200, description = "The new project (the caller is its admin)", body = super::schema::ProjectReply))
)]
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

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = UpdateProject)]
struct UpdateBody {
    title: Option<String>,
    description: Option<String>,
    #[schema(value_type = Option<super::schema::ProjectStatusName>)]
    status: Option<String>,
    expected_version: i32,
}

#[utoipa::path(
    put,
    path = "/api/v1/projects/{id}",
    tag = "projects",
    operation_id = "update_project",
    params(("id" = String, Path, description = "Project id (UUID) or key")),
    request_body = UpdateBody,
    responses((status = 200, description = "The project as changed", body = super::schema::ProjectReply))
)]
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

#[utoipa::path(
    delete,
    path = "/api/v1/projects/{id}",
    tag = "projects",
    operation_id = "delete_project",
    params(("id" = String, Path, description = "Project id (UUID) or key")),
    responses((status = 200, description = "The project is deleted", body = super::schema::Deleted))
)]
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

#[utoipa::path(
    get,
    path = "/api/v1/projects/{id}/swim-lanes",
    tag = "projects",
    operation_id = "list_swim_lanes",
    params(("id" = String, Path, description = "Project id (UUID) or key")),
    responses((status = 200, description = "The five lanes, in board order", body = super::schema::SwimLaneList))
)]
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

#[utoipa::path(
    get,
    path = "/api/v1/projects/{id}/members",
    tag = "members",
    operation_id = "list_members",
    params(("id" = String, Path, description = "Project id (UUID) or key")),
    responses((status = 200, description = "The project's members", body = super::schema::MemberList))
)]
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

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = AddMember)]
struct MemberBody {
    #[schema(
        pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    user_id: String,
    #[schema(value_type = super::schema::RoleName)]
    role: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/projects/{id}/members",
    tag = "members",
    operation_id = "add_member",
    params(("id" = String, Path, description = "Project id (UUID) or key")),
    request_body = MemberBody,
    responses((status = 200, description = "The member as added (or with the new role)", body = super::schema::MemberReply))
)]
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

#[utoipa::path(
    delete,
    path = "/api/v1/projects/{id}/members/{user_id}",
    tag = "members",
    operation_id = "remove_member",
    params(("id" = String, Path, description = "Project id (UUID) or key"), ("user_id" = String, Path, description = "The member's user id")),
    responses((status = 200, description = "The membership is gone (`deleted_id` is the user)", body = super::schema::Deleted))
)]
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
