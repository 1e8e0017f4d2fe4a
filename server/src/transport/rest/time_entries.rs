//! /api/v1/work-items/{id}/time-entries and /api/v1/time-entries
//!
//! POST starts a timer (stopping the caller's running one, unlike the reference) or, with
//! `started_at` and `ended_at`, records a finished entry. PUT stops (`stop: true`) and edits.
//! Only an entry's owner may change or delete it.
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use pm_shared::proto::{self, Payload};
use serde::Deserialize;
use serde_json::{json, Value};

use super::projects::unexpected;
use super::{dto, Body, Caller, IdempotencyKey, QueryParams, RestResult};
use crate::commands::{execute, Command};
use crate::error::AppError;
use crate::reads;
use crate::transport::state::SharedState;

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/api/v1/work-items/{id}/time-entries", get(list))
        .route("/api/v1/time-entries", post(create))
        .route(
            "/api/v1/time-entries/{id}",
            get(show).put(update).delete(remove),
        )
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    limit: Option<i32>,
    offset: Option<i32>,
}

/// Latest start first. Without `limit`, up to the maximum page (500).
#[utoipa::path(
    get,
    path = "/api/v1/work-items/{id}/time-entries",
    tag = "time entries",
    operation_id = "list_time_entries",
    params(("id" = String, Path, description = "Work item id (UUID) or display key (PM-12)"), ListQuery),
    responses((status = 200, description = "The work item's time entries, latest start first", body = super::schema::TimeEntryList))
)]
async fn list(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    Path(item): Path<String>,
    QueryParams(q): QueryParams<ListQuery>,
) -> RestResult<Json<Value>> {
    let limit = q.limit.or(Some(reads::TIME_ENTRIES_MAX_LIMIT));
    let snap =
        reads::time_entries(&state.store, &state.viewer(&actor), &item, limit, q.offset).await?;
    let entries: Vec<Value> = snap
        .items
        .time_entries
        .iter()
        .map(dto::time_entry)
        .collect();
    Ok(Json(json!({ "time_entries": entries })))
}

#[utoipa::path(
    get,
    path = "/api/v1/time-entries/{id}",
    tag = "time entries",
    operation_id = "get_time_entry",
    params(("id" = String, Path, description = "Time entry id")),
    responses((status = 200, description = "The time entry", body = super::schema::TimeEntryReply))
)]
async fn show(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> RestResult<Json<Value>> {
    let entry = reads::time_entry(&state.store, &state.viewer(&actor), &id).await?;
    Ok(Json(json!({ "time_entry": dto::time_entry(&entry) })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = CreateTimeEntry)]
struct CreateBody {
    work_item_id: String,
    description: Option<String>,
    /// pm: with `ended_at`, a finished entry instead of a timer.
    started_at: Option<i64>,
    ended_at: Option<i64>,
}

fn entry_of(payload: Payload) -> Result<proto::TimeEntry, AppError> {
    match payload {
        Payload::TimerStarted(e) => e.time_entry,
        Payload::TimerStopped(e) => e.time_entry,
        Payload::TimeEntryCreated(e) => e.time_entry,
        Payload::TimeEntryUpdated(e) => e.time_entry,
        _ => None,
    }
    .ok_or_else(unexpected)
}

#[utoipa::path(
    post,
    path = "/api/v1/time-entries",
    tag = "time entries",
    operation_id = "create_time_entry",
    params(("Idempotency-Key" = Option<String>, Header, description = "A retried POST with the same key (and user) answers the first result again")),
    request_body = CreateBody,
    responses((status = 200, description = "A running timer (the caller's other one stops), or a finished entry", body = super::schema::TimeEntryReply))
)]
async fn create(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    IdempotencyKey(key): IdempotencyKey,
    Body(body): Body<CreateBody>,
) -> RestResult<Json<Value>> {
    let item = reads::work_item(&state.store, &state.viewer(&actor), &body.work_item_id).await?;
    let command = match (body.started_at, body.ended_at) {
        (None, None) => Command::StartTimer(proto::StartTimerRequest {
            work_item_id: item.id,
            description: body.description,
        }),
        (Some(started_at), Some(ended_at)) => {
            Command::CreateTimeEntry(proto::CreateTimeEntryRequest {
                work_item_id: item.id,
                started_at,
                ended_at,
                description: body.description,
            })
        }
        (None, Some(_)) => {
            return Err(
                AppError::validation("started_at", "started_at is required with ended_at").into(),
            )
        }
        (Some(_), None) => {
            return Err(AppError::validation(
                "ended_at",
                "ended_at is required with started_at (a timer starts now)",
            )
            .into())
        }
    };
    let done = execute(&state.writer, &actor, key.as_deref(), command).await?;
    let entry = entry_of(done.event)?;
    Ok(Json(json!({ "time_entry": dto::time_entry(&entry) })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = UpdateTimeEntry)]
struct UpdateBody {
    #[serde(default)]
    stop: bool,
    description: Option<String>,
    started_at: Option<i64>,
    ended_at: Option<i64>,
}

#[utoipa::path(
    put,
    path = "/api/v1/time-entries/{id}",
    tag = "time entries",
    operation_id = "update_time_entry",
    params(("id" = String, Path, description = "Time entry id")),
    request_body = UpdateBody,
    responses((status = 200, description = "The entry as changed or stopped (its owner only)", body = super::schema::TimeEntryReply))
)]
async fn update(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Body(body): Body<UpdateBody>,
) -> RestResult<Json<Value>> {
    let current = reads::time_entry(&state.store, &state.viewer(&actor), &id).await?;
    let running = current.ended_at.is_none();
    if body.stop && !running {
        return Err(AppError::validation("stop", "Timer is not running").into());
    }
    if body.stop && body.ended_at.is_some() {
        return Err(AppError::validation("ended_at", "give either stop or ended_at").into());
    }
    let command = if body.stop && body.description.is_none() && body.started_at.is_none() {
        Command::StopTimer(proto::StopTimerRequest {
            time_entry_id: current.id,
        })
    } else {
        Command::UpdateTimeEntry(proto::UpdateTimeEntryRequest {
            time_entry_id: current.id,
            started_at: body.started_at,
            ended_at: if body.stop {
                Some(pm_shared::now_secs())
            } else {
                body.ended_at
            },
            description: body.description,
        })
    };
    let done = execute(&state.writer, &actor, None, command).await?;
    let entry = entry_of(done.event)?;
    Ok(Json(json!({ "time_entry": dto::time_entry(&entry) })))
}

#[utoipa::path(
    delete,
    path = "/api/v1/time-entries/{id}",
    tag = "time entries",
    operation_id = "delete_time_entry",
    params(("id" = String, Path, description = "Time entry id")),
    responses((status = 200, description = "The entry is deleted (its owner only)", body = super::schema::Deleted))
)]
async fn remove(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> RestResult<Json<Value>> {
    let req = proto::DeleteTimeEntryRequest { time_entry_id: id };
    let done = execute(&state.writer, &actor, None, Command::DeleteTimeEntry(req)).await?;
    let Payload::TimeEntryDeleted(e) = done.event else {
        return Err(unexpected().into());
    };
    Ok(Json(json!({ "deleted_id": e.time_entry_id })))
}
