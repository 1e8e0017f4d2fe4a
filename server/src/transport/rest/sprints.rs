//! /api/v1/sprints and /api/v1/projects/{id}/sprints
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use pm_shared::domain::SprintStatus;
use pm_shared::proto::{self, Payload};
use serde::Deserialize;
use serde_json::{json, Value};

use super::projects::unexpected;
use super::{dto, Body, Caller, IdempotencyKey, RestResult};
use crate::commands::{execute, Command};
use crate::error::AppError;
use crate::reads;
use crate::transport::state::SharedState;

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/api/v1/projects/{id}/sprints", get(list))
        .route("/api/v1/sprints", axum::routing::post(create))
        .route("/api/v1/sprints/{id}", get(show).put(update).delete(remove))
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{id}/sprints",
    tag = "sprints",
    operation_id = "list_sprints",
    params(("id" = String, Path, description = "Project id (UUID) or key")),
    responses((status = 200, description = "The project's sprints", body = super::schema::SprintList))
)]
async fn list(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    Path(project): Path<String>,
) -> RestResult<Json<Value>> {
    let snap = reads::sprints(&state.store, &state.viewer(&actor), &project).await?;
    let sprints: Vec<Value> = snap.items.iter().map(dto::sprint).collect();
    Ok(Json(json!({ "sprints": sprints })))
}

#[utoipa::path(
    get,
    path = "/api/v1/sprints/{id}",
    tag = "sprints",
    operation_id = "get_sprint",
    params(("id" = String, Path, description = "Sprint id")),
    responses((status = 200, description = "The sprint", body = super::schema::SprintReply))
)]
async fn show(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> RestResult<Json<Value>> {
    let sprint = reads::sprint(&state.store, &state.viewer(&actor), &id).await?;
    Ok(Json(json!({ "sprint": dto::sprint(&sprint) })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = CreateSprint)]
struct CreateBody {
    project_id: String,
    #[schema(min_length = 1, pattern = "\\S")]
    name: String,
    goal: Option<String>,
    start_date: i64,
    end_date: i64,
}

#[utoipa::path(
    post,
    path = "/api/v1/sprints",
    tag = "sprints",
    operation_id = "create_sprint",
    params(("Idempotency-Key" = Option<String>, Header, description = "A retried POST with the same key (and user) answers the first result again")),
    request_body = CreateBody,
    responses((status = 200, description = "The new sprint", body = super::schema::SprintReply))
)]
async fn create(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    IdempotencyKey(key): IdempotencyKey,
    Body(body): Body<CreateBody>,
) -> RestResult<Json<Value>> {
    let project = reads::project(&state.store, &state.viewer(&actor), &body.project_id).await?;
    let req = proto::CreateSprintRequest {
        project_id: project.id,
        name: body.name,
        goal: body.goal,
        start_date: body.start_date,
        end_date: body.end_date,
    };
    let done = execute(
        &state.writer,
        &actor,
        key.as_deref(),
        Command::CreateSprint(req),
    )
    .await?;
    let Payload::SprintCreated(e) = done.event else {
        return Err(unexpected().into());
    };
    Ok(Json(
        json!({ "sprint": e.sprint.as_ref().map(dto::sprint) }),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = UpdateSprint)]
struct UpdateBody {
    name: Option<String>,
    goal: Option<String>,
    start_date: Option<i64>,
    end_date: Option<i64>,
    #[schema(value_type = Option<super::schema::SprintStatusName>)]
    status: Option<String>,
    expected_version: i32,
}

#[utoipa::path(
    put,
    path = "/api/v1/sprints/{id}",
    tag = "sprints",
    operation_id = "update_sprint",
    params(("id" = String, Path, description = "Sprint id")),
    request_body = UpdateBody,
    responses((status = 200, description = "The sprint as changed", body = super::schema::SprintReply))
)]
async fn update(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Body(body): Body<UpdateBody>,
) -> RestResult<Json<Value>> {
    let status = match body.status.as_deref() {
        Some(s) => Some(
            SprintStatus::parse(s)
                .ok_or_else(|| {
                    AppError::validation(
                        "status",
                        format!("Invalid status: {s}. Valid: {}", SprintStatus::choices()),
                    )
                })?
                .to_proto() as i32,
        ),
        None => None,
    };
    let req = proto::UpdateSprintRequest {
        sprint_id: id,
        expected_version: body.expected_version,
        name: body.name,
        goal: body.goal,
        start_date: body.start_date,
        end_date: body.end_date,
        status,
    };
    let done = execute(&state.writer, &actor, None, Command::UpdateSprint(req)).await?;
    let Payload::SprintUpdated(e) = done.event else {
        return Err(unexpected().into());
    };
    Ok(Json(
        json!({ "sprint": e.sprint.as_ref().map(dto::sprint) }),
    ))
}

#[utoipa::path(
    delete,
    path = "/api/v1/sprints/{id}",
    tag = "sprints",
    operation_id = "delete_sprint",
    params(("id" = String, Path, description = "Sprint id")),
    responses((status = 200, description = "The sprint is deleted", body = super::schema::Deleted))
)]
async fn remove(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> RestResult<Json<Value>> {
    let done = execute(
        &state.writer,
        &actor,
        None,
        Command::DeleteSprint(proto::DeleteSprintRequest { sprint_id: id }),
    )
    .await?;
    let Payload::SprintDeleted(e) = done.event else {
        return Err(unexpected().into());
    };
    Ok(Json(json!({ "deleted_id": e.sprint_id })))
}
