//! /api/v1/activity (the history of one entity) and /api/v1/llm-context.
//!
//! `GET /api/v1/activity?entity_type=work_item&entity_id=<id>&limit=&offset=` answers
//! `{"activity":[…], "total_count": N, "has_more": bool}`, newest first, with the per-field
//! `changes` of every entry; deleted entities keep their history. `entity_type` is one of
//! project, work_item, sprint, comment, time_entry, dependency (`work-item` works too); a work
//! item (PM-12) or a project (PM) may be named by its key while it is live. `limit` defaults to
//! 50 (at most 100).
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use pm_shared::proto;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{dto, Caller, QueryParams, RestResult};
use crate::error::AppError;
use crate::reads;
use crate::transport::state::SharedState;

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/api/v1/activity", get(activity))
        .route("/api/v1/llm-context", get(llm_context))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ActivityQuery {
    entity_type: Option<String>,
    entity_id: Option<String>,
    #[serde(default)]
    limit: i32,
    #[serde(default)]
    offset: i32,
}

#[utoipa::path(
    get,
    path = "/api/v1/activity",
    tag = "history",
    operation_id = "list_activity",
    params(ActivityQuery),
    responses((status = 200, description = "A page of the entity's history, newest first", body = super::schema::ActivityPage))
)]
async fn activity(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    QueryParams(q): QueryParams<ActivityQuery>,
) -> RestResult<Json<Value>> {
    let entity_type = q
        .entity_type
        .ok_or_else(|| AppError::validation("entity_type", "entity_type is required"))?
        .trim()
        .replace('-', "_");
    let mut entity_id = q
        .entity_id
        .ok_or_else(|| AppError::validation("entity_id", "entity_id is required"))?;
    // A work item may be named by its key (PM-12), a project by its key (PM).
    if uuid::Uuid::parse_str(entity_id.trim()).is_err() {
        let viewer = state.viewer(&actor);
        if entity_type == "work_item" {
            entity_id = reads::work_item(&state.store, &viewer, &entity_id)
                .await?
                .id;
        } else if entity_type == "project" {
            entity_id = reads::project(&state.store, &viewer, &entity_id).await?.id;
        }
    }
    let req = proto::GetActivityLogRequest {
        entity_type,
        entity_id,
        limit: q.limit,
        offset: q.offset,
    };
    let list = reads::activity(&state.store, &state.viewer(&actor), &req).await?;
    let entries: Vec<Value> = list.entries.iter().map(dto::activity).collect();
    Ok(Json(json!({
        "activity": entries,
        "total_count": list.total_count,
        "has_more": list.has_more,
    })))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ContextQuery {
    category: Option<String>,
    context_type: Option<String>,
    min_priority: Option<i32>,
}

#[utoipa::path(
    get,
    path = "/api/v1/llm-context",
    tag = "history",
    operation_id = "list_llm_context",
    params(ContextQuery),
    responses((status = 200, description = "Short documents about the schema and useful queries", body = super::schema::LlmContextList))
)]
async fn llm_context(
    State(state): State<SharedState>,
    QueryParams(q): QueryParams<ContextQuery>,
) -> RestResult<Json<Value>> {
    let req = proto::GetLlmContextRequest {
        category: q.category,
        context_type: q.context_type,
        min_priority: q.min_priority,
    };
    let list = reads::llm_context(&state.store, &req).await?;
    let entries: Vec<Value> = list.entries.iter().map(dto::llm_context).collect();
    Ok(Json(json!({ "entries": entries })))
}
