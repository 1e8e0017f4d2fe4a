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

async fn list(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    Path(item): Path<String>,
) -> RestResult<Json<Value>> {
    let snap = reads::comments(&state.store, &state.viewer(&actor), &item).await?;
    let comments: Vec<Value> = snap.items.iter().map(dto::comment).collect();
    Ok(Json(json!({ "comments": comments })))
}

async fn show(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> RestResult<Json<Value>> {
    let comment = reads::comment(&state.store, &state.viewer(&actor), &id).await?;
    Ok(Json(json!({ "comment": dto::comment(&comment) })))
}

#[derive(Deserialize)]
struct ContentBody {
    content: String,
}

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
