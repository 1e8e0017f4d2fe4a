//! /api/v1/work-items/{id}/comments and /api/v1/comments/{id}
use axum::extract::{Path, State};
use axum::routing::{get, put};
use axum::{Json, Router};
use pm_shared::proto::{self, Payload};
use serde::Deserialize;
use serde_json::{json, Value};

use super::projects::unexpected;
use super::{dto, Body, Caller, IdempotencyKey, RestResult};
use crate::commands::{execute, Command};
use crate::reads;
use crate::transport::state::SharedState;

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/api/v1/work-items/{id}/comments", get(list).post(create))
        .route(
            "/api/v1/comments/{id}",
            put(update).delete(remove).get(show),
        )
}

#[utoipa::path(
    get,
    path = "/api/v1/work-items/{id}/comments",
    tag = "comments",
    operation_id = "list_comments",
    params(("id" = String, Path, description = "Work item id (UUID) or display key (PM-12)")),
    responses((status = 200, description = "The work item's comments", body = super::schema::CommentList))
)]
async fn list(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    Path(item): Path<String>,
) -> RestResult<Json<Value>> {
    let snap = reads::comments(&state.store, &state.viewer(&actor), &item).await?;
    let comments: Vec<Value> = snap.items.iter().map(dto::comment).collect();
    Ok(Json(json!({ "comments": comments })))
}

#[utoipa::path(
    get,
    path = "/api/v1/comments/{id}",
    tag = "comments",
    operation_id = "get_comment",
    params(("id" = String, Path, description = "Comment id")),
    responses((status = 200, description = "The comment", body = super::schema::CommentReply))
)]
async fn show(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> RestResult<Json<Value>> {
    let comment = reads::comment(&state.store, &state.viewer(&actor), &id).await?;
    Ok(Json(json!({ "comment": dto::comment(&comment) })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = CommentContent)]
struct ContentBody {
    #[schema(min_length = 1, pattern = "\\S")]
    content: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/work-items/{id}/comments",
    tag = "comments",
    operation_id = "create_comment",
    params(("id" = String, Path, description = "Work item id (UUID) or display key (PM-12)"), ("Idempotency-Key" = Option<String>, Header, description = "A retried POST with the same key (and user) answers the first result again")),
    request_body = ContentBody,
    responses((status = 200, description = "The new comment", body = super::schema::CommentReply))
)]
async fn create(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    IdempotencyKey(key): IdempotencyKey,
    Path(item): Path<String>,
    Body(body): Body<ContentBody>,
) -> RestResult<Json<Value>> {
    let item = reads::work_item(&state.store, &state.viewer(&actor), &item).await?;
    let req = proto::CreateCommentRequest {
        work_item_id: item.id,
        content: body.content,
    };
    let done = execute(
        &state.writer,
        &actor,
        key.as_deref(),
        Command::CreateComment(req),
    )
    .await?;
    let Payload::CommentCreated(e) = done.event else {
        return Err(unexpected().into());
    };
    Ok(Json(
        json!({ "comment": e.comment.as_ref().map(dto::comment) }),
    ))
}

#[utoipa::path(
    put,
    path = "/api/v1/comments/{id}",
    tag = "comments",
    operation_id = "update_comment",
    params(("id" = String, Path, description = "Comment id")),
    request_body = ContentBody,
    responses((status = 200, description = "The comment as changed (its author only)", body = super::schema::CommentReply))
)]
async fn update(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Body(body): Body<ContentBody>,
) -> RestResult<Json<Value>> {
    let req = proto::UpdateCommentRequest {
        comment_id: id,
        content: body.content,
    };
    let done = execute(&state.writer, &actor, None, Command::UpdateComment(req)).await?;
    let Payload::CommentUpdated(e) = done.event else {
        return Err(unexpected().into());
    };
    Ok(Json(
        json!({ "comment": e.comment.as_ref().map(dto::comment) }),
    ))
}

#[utoipa::path(
    delete,
    path = "/api/v1/comments/{id}",
    tag = "comments",
    operation_id = "delete_comment",
    params(("id" = String, Path, description = "Comment id")),
    responses((status = 200, description = "The comment is deleted", body = super::schema::Deleted))
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
        Command::DeleteComment(proto::DeleteCommentRequest { comment_id: id }),
    )
    .await?;
    let Payload::CommentDeleted(e) = done.event else {
        return Err(unexpected().into());
    };
    Ok(Json(json!({ "deleted_id": e.comment_id })))
}
