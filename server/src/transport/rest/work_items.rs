//! /api/v1/work-items and /api/v1/projects/{id}/work-items
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use pm_shared::domain::{self, ItemType};
use pm_shared::proto::{self, Payload};
use serde::Deserialize;
use serde_json::{json, Value};

use super::projects::unexpected;
use super::{dto, Body, Caller, IdempotencyKey, QueryParams, RestResult};
use crate::access::Viewer;
use crate::commands::{execute, Command};
use crate::error::AppError;
use crate::reads;
use crate::transport::state::SharedState;

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/api/v1/projects/{id}/work-items", get(list))
        .route("/api/v1/work-items", axum::routing::post(create))
        .route(
            "/api/v1/work-items/{id}",
            get(show).put(update).delete(remove),
        )
        .route(
            "/api/v1/work-items/{id}/restore",
            axum::routing::post(restore),
        )
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    #[serde(rename = "type")]
    item_type: Option<String>,
    status: Option<String>,
    sprint_id: Option<String>,
    parent_id: Option<String>,
    #[serde(default)]
    orphaned: bool,
    descendants_of: Option<String>,
    ancestors_of: Option<String>,
    #[serde(default)]
    include_done: bool,
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{id}/work-items",
    tag = "work items",
    operation_id = "list_work_items",
    params(("id" = String, Path, description = "Project id (UUID) or key"), ListQuery),
    responses((status = 200, description = "The project's live work items that pass the filters", body = super::schema::WorkItemList))
)]
async fn list(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    Path(project): Path<String>,
    QueryParams(q): QueryParams<ListQuery>,
) -> RestResult<Json<Value>> {
    let project = reads::project(&state.store, &state.viewer(&actor), &project).await?;
    let snap = reads::work_items(&state.store, &state.viewer(&actor), &project.id).await?;
    let item_type = match q.item_type.as_deref() {
        Some(t) => Some(ItemType::parse(t).ok_or_else(|| {
            AppError::validation(
                "type",
                format!("Invalid type: {t}. Valid: {}", ItemType::choices()),
            )
        })?),
        None => None,
    };
    if let Some(s) = q.status.as_deref() {
        domain::status(s).map_err(AppError::from)?;
    }
    let resolve = |key: &str| -> Result<proto::WorkItem, AppError> {
        snap.items
            .iter()
            .find(|w| {
                w.id == key.to_ascii_lowercase()
                    || domain::display_key(&project.key, w.item_number) == key.to_ascii_uppercase()
            })
            .cloned()
            .ok_or_else(|| AppError::not_found("Work item", key))
    };
    let parent = q.parent_id.as_deref().map(resolve).transpose()?;
    let descendants_of = q.descendants_of.as_deref().map(resolve).transpose()?;
    let ancestors_of = q.ancestors_of.as_deref().map(resolve).transpose()?;
    let items: Vec<Value> = snap
        .items
        .iter()
        .filter(|w| q.include_done || q.status.as_deref() == Some("done") || w.status != "done")
        .filter(|w| item_type.is_none_or(|t| t.to_proto() as i32 == w.item_type))
        .filter(|w| q.status.as_deref().is_none_or(|s| w.status == s))
        .filter(|w| {
            q.sprint_id
                .as_deref()
                .is_none_or(|s| w.sprint_id.as_deref() == Some(s))
        })
        .filter(|w| {
            if q.orphaned {
                w.parent_id.is_none()
            } else {
                parent
                    .as_ref()
                    .is_none_or(|p| w.parent_id.as_deref() == Some(p.id.as_str()))
            }
        })
        .filter(|w| {
            descendants_of
                .as_ref()
                .is_none_or(|d| d.descendant_ids.contains(&w.id))
        })
        .filter(|w| {
            ancestors_of
                .as_ref()
                .is_none_or(|a| a.ancestor_ids.contains(&w.id))
        })
        .map(|w| dto::work_item(w, &project.key))
        .collect();
    Ok(Json(json!({ "work_items": items })))
}

#[utoipa::path(
    get,
    path = "/api/v1/work-items/{id}",
    tag = "work items",
    operation_id = "get_work_item",
    params(("id" = String, Path, description = "Work item id (UUID) or display key (PM-12)")),
    responses((status = 200, description = "The work item", body = super::schema::WorkItemReply))
)]
async fn show(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> RestResult<Json<Value>> {
    let item = reads::work_item(&state.store, &state.viewer(&actor), &id).await?;
    respond(&state, &item).await
}

/// The item as REST shows it; the caller was allowed to see the item already.
async fn respond(state: &SharedState, item: &proto::WorkItem) -> RestResult<Json<Value>> {
    let project = reads::project(&state.store, &Viewer::system(), &item.project_id).await?;
    Ok(Json(
        json!({ "work_item": dto::work_item(item, &project.key) }),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = CreateWorkItem)]
struct CreateBody {
    project_id: String,
    #[schema(value_type = super::schema::ItemTypeName)]
    item_type: String,
    #[schema(min_length = 1, pattern = "\\S")]
    title: String,
    description: Option<String>,
    parent_id: Option<String>,
    #[schema(value_type = Option<super::schema::StatusName>)]
    status: Option<String>,
    #[schema(value_type = Option<super::schema::PriorityName>)]
    priority: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/work-items",
    tag = "work items",
    operation_id = "create_work_item",
    params(("Idempotency-Key" = Option<String>, Header, description = "A retried POST with the same key (and user) answers the first result again")),
    request_body = CreateBody,
    responses((status = 200, description = "The new work item", body = super::schema::WorkItemReply))
)]
async fn create(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    IdempotencyKey(key): IdempotencyKey,
    Body(body): Body<CreateBody>,
) -> RestResult<Json<Value>> {
    let item_type = ItemType::parse(&body.item_type).ok_or_else(|| {
        AppError::validation(
            "item_type",
            format!(
                "Invalid item_type: {}. Valid: {}",
                body.item_type,
                ItemType::choices()
            ),
        )
    })?;
    let project = reads::project(&state.store, &state.viewer(&actor), &body.project_id).await?;
    let parent_id = match body.parent_id.as_deref().filter(|p| !p.trim().is_empty()) {
        Some(p) => Some(
            reads::work_item(&state.store, &state.viewer(&actor), p)
                .await
                .map_err(|_| AppError::validation("parent_id", "Parent work item not found"))?
                .id,
        ),
        None => None,
    };
    let req = proto::CreateWorkItemRequest {
        item_type: item_type.to_proto() as i32,
        title: body.title,
        description: body.description,
        parent_id,
        project_id: project.id,
        status: body.status,
        priority: body.priority,
    };
    let done = execute(
        &state.writer,
        &actor,
        key.as_deref(),
        Command::CreateWorkItem(req),
    )
    .await?;
    let Payload::WorkItemCreated(e) = done.event else {
        return Err(unexpected().into());
    };
    let item = e.work_item.ok_or_else(unexpected)?;
    Ok(Json(
        json!({ "work_item": dto::work_item(&item, &project.key) }),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = UpdateWorkItem)]
struct UpdateBody {
    title: Option<String>,
    description: Option<String>,
    #[schema(value_type = Option<super::schema::StatusName>)]
    status: Option<String>,
    #[schema(value_type = Option<super::schema::PriorityName>)]
    priority: Option<String>,
    assignee_id: Option<String>,
    sprint_id: Option<String>,
    /// Absent: unchanged; a number sets the points; `null` (pm) removes them.
    #[serde(default, deserialize_with = "present")]
    story_points: Option<Option<i32>>,
    parent_id: Option<String>,
    #[serde(default)]
    update_parent: bool,
    position: Option<i32>,
    /// pm: "epic", "story" or "task" changes the item's type (the hierarchy rules must hold).
    item_type: Option<String>,
    expected_version: i32,
}

/// A field that is present in the JSON, `null` included (absent fields take the default,
/// `None`): tells "set to null" apart from "not sent".
fn present<'de, D, T>(de: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(de).map(Some)
}

#[utoipa::path(
    put,
    path = "/api/v1/work-items/{id}",
    tag = "work items",
    operation_id = "update_work_item",
    params(("id" = String, Path, description = "Work item id (UUID) or display key (PM-12)")),
    request_body = UpdateBody,
    responses((status = 200, description = "The work item as changed", body = super::schema::WorkItemReply))
)]
async fn update(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Body(body): Body<UpdateBody>,
) -> RestResult<Json<Value>> {
    let item = reads::work_item(&state.store, &state.viewer(&actor), &id).await?;
    let parent_id = match body.parent_id.as_deref().filter(|p| !p.trim().is_empty()) {
        Some(p) if body.update_parent => Some(
            reads::work_item(&state.store, &state.viewer(&actor), p)
                .await
                .map_err(|_| AppError::validation("parent_id", "Parent work item not found"))?
                .id,
        ),
        other => other.map(str::to_string),
    };
    let req = proto::UpdateWorkItemRequest {
        work_item_id: item.id,
        expected_version: body.expected_version,
        title: body.title,
        description: body.description,
        status: body.status,
        assignee_id: body.assignee_id,
        sprint_id: body.sprint_id,
        position: body.position,
        priority: body.priority,
        story_points: body.story_points.flatten(),
        parent_id,
        update_parent: body.update_parent,
        item_type: body.item_type,
        clear_story_points: body.story_points == Some(None),
        idempotent: false,
    };
    let done = execute(&state.writer, &actor, None, Command::UpdateWorkItem(req)).await?;
    let Payload::WorkItemUpdated(e) = done.event else {
        return Err(unexpected().into());
    };
    let item = e.work_item.ok_or_else(unexpected)?;
    respond(&state, &item).await
}

/// pm: brings a deleted item back (see RestoreWorkItemRequest); `{id}` may be its key.
#[utoipa::path(
    post,
    path = "/api/v1/work-items/{id}/restore",
    tag = "work items",
    operation_id = "restore_work_item",
    params(("id" = String, Path, description = "Work item id (UUID) or display key (PM-12)")),
    responses((status = 200, description = "The work item as restored", body = super::schema::WorkItemReply))
)]
async fn restore(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> RestResult<Json<Value>> {
    let id = reads::any_work_item_id(&state.store, &id).await?;
    let req = proto::RestoreWorkItemRequest { work_item_id: id };
    let done = execute(&state.writer, &actor, None, Command::RestoreWorkItem(req)).await?;
    let Payload::WorkItemCreated(e) = done.event else {
        return Err(unexpected().into());
    };
    let item = e.work_item.ok_or_else(unexpected)?;
    respond(&state, &item).await
}

#[utoipa::path(
    delete,
    path = "/api/v1/work-items/{id}",
    tag = "work items",
    operation_id = "delete_work_item",
    params(("id" = String, Path, description = "Work item id (UUID) or display key (PM-12)")),
    responses((status = 200, description = "The work item is deleted", body = super::schema::Deleted))
)]
async fn remove(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> RestResult<Json<Value>> {
    let item = reads::work_item(&state.store, &state.viewer(&actor), &id).await?;
    let done = execute(
        &state.writer,
        &actor,
        None,
        Command::DeleteWorkItem(proto::DeleteWorkItemRequest {
            work_item_id: item.id,
        }),
    )
    .await?;
    let Payload::WorkItemDeleted(e) = done.event else {
        return Err(unexpected().into());
    };
    Ok(Json(json!({ "deleted_id": e.work_item_id })))
}
