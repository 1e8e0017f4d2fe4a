//! /api/v1/work-items/{id}/dependencies and /api/v1/dependencies
use axum::extract::{Path, State};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use pm_shared::domain::DependencyType;
use pm_shared::proto::{self, Payload};
use serde::Deserialize;
use serde_json::{json, Value};

use super::projects::unexpected;
use super::{dto, Body, Caller, IdempotencyKey, RestResult};
use crate::commands::{execute, Actor, Command};
use crate::error::AppError;
use crate::reads;
use crate::transport::state::SharedState;

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/api/v1/work-items/{id}/dependencies", get(list))
        .route("/api/v1/dependencies", post(create))
        .route("/api/v1/dependencies/{id}", delete(remove))
}

/// Both directions merged, each link once, sorted by its id (as the reference does).
#[utoipa::path(
    get,
    path = "/api/v1/work-items/{id}/dependencies",
    tag = "dependencies",
    operation_id = "list_dependencies",
    params(("id" = String, Path, description = "Work item id (UUID) or display key (PM-12)")),
    responses((status = 200, description = "The links of the work item, both directions, by id", body = super::schema::DependencyList))
)]
async fn list(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    Path(item): Path<String>,
) -> RestResult<Json<Value>> {
    let snap = reads::dependencies(&state.store, &state.viewer(&actor), &item).await?;
    let mut all: Vec<proto::Dependency> = snap.items.blocking;
    all.extend(snap.items.blocked);
    all.sort_by(|a, b| a.id.cmp(&b.id));
    all.dedup_by(|a, b| a.id == b.id);
    let dependencies: Vec<Value> = all.iter().map(dto::dependency).collect();
    Ok(Json(json!({ "dependencies": dependencies })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = CreateDependency)]
struct CreateBody {
    blocking_item_id: String,
    blocked_item_id: String,
    #[schema(value_type = super::schema::DependencyTypeName)]
    dependency_type: String,
}

/// A work item given by UUID or display key; a UUID is passed on as is, so the command reports
/// a missing item with the reference's "(blocking)" / "(blocked)" wording.
async fn item_id(state: &SharedState, actor: &Actor, value: &str) -> Result<String, AppError> {
    if uuid::Uuid::parse_str(value.trim()).is_ok() {
        return Ok(value.trim().to_string());
    }
    Ok(reads::work_item(&state.store, &state.viewer(actor), value)
        .await?
        .id)
}

#[utoipa::path(
    post,
    path = "/api/v1/dependencies",
    tag = "dependencies",
    operation_id = "create_dependency",
    params(("Idempotency-Key" = Option<String>, Header, description = "A retried POST with the same key (and user) answers the first result again")),
    request_body = CreateBody,
    responses((status = 200, description = "The new link (a bare object, as in the reference)", body = super::schema::Dependency))
)]
async fn create(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    IdempotencyKey(key): IdempotencyKey,
    Body(body): Body<CreateBody>,
) -> RestResult<Json<Value>> {
    let kind = DependencyType::parse(body.dependency_type.trim()).ok_or_else(|| {
        AppError::validation(
            "dependency_type",
            format!(
                "Invalid dependency_type: {}. Valid: {}",
                body.dependency_type,
                DependencyType::choices()
            ),
        )
    })?;
    let blocking = item_id(&state, &actor, &body.blocking_item_id).await?;
    let blocked = item_id(&state, &actor, &body.blocked_item_id).await?;
    let req = proto::CreateDependencyRequest {
        blocking_item_id: blocking,
        blocked_item_id: blocked,
        dependency_type: kind.to_proto() as i32,
    };
    let done = execute(
        &state.writer,
        &actor,
        key.as_deref(),
        Command::CreateDependency(req),
    )
    .await
    .map_err(rest_wording)?;
    let Payload::DependencyCreated(e) = done.event else {
        return Err(unexpected().into());
    };
    let dependency = e.dependency.ok_or_else(unexpected)?;
    // The one bare DTO of the API, as in the reference.
    Ok(Json(dto::dependency(&dependency)))
}

/// The reference's REST words for two of the rules.
fn rest_wording(e: AppError) -> AppError {
    match e {
        AppError::Validation { field, message } => {
            let message = match message.as_str() {
                "Work item cannot block itself" => {
                    "A work item cannot depend on itself".to_string()
                }
                "Dependency already exists between these items" => {
                    "This dependency already exists".to_string()
                }
                _ => message,
            };
            AppError::Validation { field, message }
        }
        other => other,
    }
}

#[utoipa::path(
    delete,
    path = "/api/v1/dependencies/{id}",
    tag = "dependencies",
    operation_id = "delete_dependency",
    params(("id" = String, Path, description = "Dependency id")),
    responses((status = 200, description = "The link is deleted", body = super::schema::Deleted))
)]
async fn remove(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> RestResult<Json<Value>> {
    let req = proto::DeleteDependencyRequest {
        dependency_id: id.clone(),
    };
    let done = execute(&state.writer, &actor, None, Command::DeleteDependency(req)).await?;
    let Payload::DependencyDeleted(_) = done.event else {
        return Err(unexpected().into());
    };
    Ok(Json(json!({ "deleted_id": id })))
}
