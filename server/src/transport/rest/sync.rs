//! /api/v1/sync/export and /api/v1/sync/import: the reference's ExportData format.
//!
//! Export: `GET /api/v1/sync/export` (everything live), or with
//! `?work_item=<id|KEY-N>&descendant_levels=N&comments=true&sprints=true&dependencies=true&time_entries=true`
//! one item, N levels of its descendants and the related rows asked for.
//! Import: `POST /api/v1/sync/import` with an ExportData body, through the pipeline (see
//! `commands::import`; a large one in parts, see `commands::import_plan`), answered with the
//! ImportResult counts and the rows it left out (`skipped`, only when any were). `?strict=true` refuses the whole
//! document for one row that cannot be stored instead.
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use pm_shared::proto;
use serde::{Deserialize, Serialize};

use super::admin::AdminInTokenMode;
use super::{Body, Caller, QueryParams, RestResult};
use crate::commands::import::Mode;
use crate::commands::import_plan;
use crate::sync::{self, ExportData, ExportScope};
use crate::transport::state::SharedState;

/// Imports are whole databases; allow far more than the default 2 MB body.
const IMPORT_MAX_BYTES: usize = 256 * 1024 * 1024;

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/api/v1/sync/export", get(export))
        .route(
            "/api/v1/sync/import",
            post(import).layer(DefaultBodyLimit::max(IMPORT_MAX_BYTES)),
        )
}

/// An export holds every project: in token mode only a server admin may take one.
#[utoipa::path(
    get,
    path = "/api/v1/sync/export",
    tag = "sync",
    operation_id = "export",
    params(ExportScope),
    responses((status = 200, description = "Everything live, or one item's subtree (a server admin only in token mode)", body = super::schema::ExportDocument))
)]
async fn export(
    State(state): State<SharedState>,
    _: AdminInTokenMode,
    QueryParams(scope): QueryParams<ExportScope>,
) -> RestResult<Json<ExportData>> {
    Ok(Json(sync::export(&state.store, &scope).await?))
}

#[derive(Serialize, Default, utoipa::ToSchema)]
#[schema(as = ImportCounts)]
struct Counts {
    created: u32,
    updated: u32,
    skipped: u32,
}

/// The reference's ImportResult, keys in its order, and then pm's list of the rows it left out.
#[derive(Serialize, utoipa::ToSchema)]
struct ImportResult {
    projects: Counts,
    sprints: Counts,
    swim_lanes: Counts,
    work_items: Counts,
    comments: Counts,
    dependencies: Counts,
    time_entries: Counts,
    /// Left out when empty: an import that stored every row answers the reference's shape.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    skipped: Vec<Skipped>,
}

/// One row the import left out: `{"entity": "comments", "index": 3, "id": "…",
/// "field": "content", "reason": "…"}` (`field` only when one field is at fault).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = SkippedRow)]
struct Skipped {
    entity: String,
    index: u32,
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    reason: String,
}

/// `POST /api/v1/sync/import` query.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ImportQuery {
    /// All or nothing: one row that cannot be stored refuses the whole document.
    #[serde(default)]
    strict: bool,
}

fn counts(c: Option<proto::ImportCounts>) -> Counts {
    c.map(|c| Counts {
        created: c.created,
        updated: c.updated,
        skipped: c.skipped,
    })
    .unwrap_or_default()
}

#[utoipa::path(
    post,
    path = "/api/v1/sync/import",
    tag = "sync",
    operation_id = "import",
    params(ImportQuery),
    request_body = super::schema::ExportDocument,
    responses((status = 200, description = "What was created, updated and left out", body = ImportResult))
)]
async fn import(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    QueryParams(query): QueryParams<ImportQuery>,
    Body(data): Body<ExportData>,
) -> RestResult<Json<ImportResult>> {
    let limits = import_plan::ImportLimits {
        max_import_rows: state.config.max_import_rows,
        import_chunk_rows: state.config.import_chunk_rows,
    };
    let mode = if query.strict {
        Mode::Strict
    } else {
        Mode::Tolerant
    };
    let r = import_plan::import(&state.writer, limits, &actor, data, mode).await?;
    Ok(Json(ImportResult {
        projects: counts(r.projects),
        sprints: counts(r.sprints),
        swim_lanes: counts(r.swim_lanes),
        work_items: counts(r.work_items),
        comments: counts(r.comments),
        dependencies: counts(r.dependencies),
        time_entries: counts(r.time_entries),
        skipped: r
            .skipped
            .into_iter()
            .map(|s| Skipped {
                entity: s.entity,
                index: s.index,
                id: s.id,
                field: s.field,
                reason: s.reason,
            })
            .collect(),
    }))
}
