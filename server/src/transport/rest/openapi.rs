//! The REST API described as OpenAPI 3.1, generated from the handlers' `#[utoipa::path]`
//! attributes and the types they read and answer (`schema`), served at `/api/v1/openapi.json`.
//!
//! Every operation also answers the error JSON (`ErrorReply`) for whatever goes wrong, with a
//! fitting status (400, 401, 403, 404, 409, 413, 415, 429, 503, 507, …): that is written once,
//! as each operation's `default` response ([`Conventions`]), rather than on every handler.
//! The links from each create to what reads, changes and deletes what it made ([`LINKS`]) let
//! a client (or a fuzzer's stateful phase) follow the ids the API hands out.
use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::{activity, admin, comments, dependencies, health, metrics, projects, schema};
use super::{sprints, sync, time_entries, work_items};
use crate::transport::state::SharedState;

pub fn routes() -> Router<SharedState> {
    Router::new().route("/api/v1/openapi.json", get(|| async { Json(document()) }))
}

/// The description as served: built once.
pub fn document() -> serde_json::Value {
    static DOCUMENT: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    DOCUMENT
        .get_or_init(|| {
            let mut document = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
            camel_case_links(&mut document);
            document
        })
        .clone()
}

/// utoipa 5 writes a link's `operationId` as `operation_id` (its `Link` lacks serde's
/// camelCase renaming), which OpenAPI tools reject: renamed here, in the served JSON.
fn camel_case_links(document: &mut serde_json::Value) {
    let Some(paths) = document.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    let responses = paths
        .values_mut()
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut())
        .filter_map(|operation| operation.get_mut("responses")?.as_object_mut())
        .flat_map(|responses| responses.values_mut());
    for response in responses {
        let Some(links) = response.get_mut("links").and_then(|l| l.as_object_mut()) else {
            continue;
        };
        for link in links.values_mut().filter_map(|l| l.as_object_mut()) {
            for (snake, camel) in [
                ("operation_id", "operationId"),
                ("operation_ref", "operationRef"),
                ("request_body", "requestBody"),
            ] {
                if let Some(value) = link.remove(snake) {
                    link.insert(camel.to_string(), value);
                }
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "pm",
        description = "The REST API of pm-server, the real-time collaborative agile board: the \
            Blazor Agile Board's routes and JSON shapes. Every write is also published to the \
            WebSocket subscribers of its project (`/ws`, protobuf; not described here). \
            Desktop mode: name yourself with `X-User-Id`. Token mode: `Authorization: Bearer <jwt>`."
    ),
    paths(
        health::health, health::live, health::ready,
        projects::list, projects::create, projects::show, projects::update, projects::remove,
        projects::swim_lanes, projects::members, projects::add_member, projects::remove_member,
        work_items::list, work_items::create, work_items::show, work_items::update,
        work_items::remove, work_items::restore,
        sprints::list, sprints::create, sprints::show, sprints::update, sprints::remove,
        comments::list, comments::create, comments::show, comments::update, comments::remove,
        dependencies::list, dependencies::create, dependencies::remove,
        time_entries::list, time_entries::create, time_entries::show, time_entries::update,
        time_entries::remove,
        activity::activity, activity::llm_context,
        sync::export, sync::import,
        admin::checkpoint, admin::shutdown,
        metrics::metrics,
    ),
    components(schemas(schema::ErrorReply)),
    modifiers(&Conventions),
)]
pub struct ApiDoc;

/// What holds for every operation: the error JSON as the `default` response, and the two ways
/// to say who you are.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("Token mode: a token from `pm-server issue-token`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "user_id",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-User-Id",
                "Desktop mode: the user (a UUID) the request acts as; without it, the \
                 server's local user",
            ))),
        );
        // Either scheme, or neither (desktop mode's local user).
        api.security = Some(vec![
            SecurityRequirement::default(),
            SecurityRequirement::new("bearer", Vec::<String>::new()),
            SecurityRequirement::new("user_id", Vec::<String>::new()),
        ]);
        let error = ResponseBuilder::new()
            .description("The error JSON, with the status that fits the failure")
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                        "ErrorReply",
                    ))))
                    .build(),
            )
            .build();
        for (source, pointer, targets) in LINKS {
            let Some(created) =
                operation(api, source).and_then(|o| o.responses.responses.get_mut("200"))
            else {
                continue;
            };
            let RefOr::T(created) = created else { continue };
            for (target, parameters) in *targets {
                let link = parameters
                    .iter()
                    .fold(
                        LinkBuilder::new().operation_id(*target),
                        |link, (name, field)| {
                            link.parameter(*name, format!("$response.body#/{pointer}{field}"))
                        },
                    )
                    .build();
                created.links.insert((*target).to_string(), RefOr::T(link));
            }
        }
        for (source, target, body) in BODY_LINKS {
            let Some(RefOr::T(created)) =
                operation(api, source).and_then(|o| o.responses.responses.get_mut("200"))
            else {
                continue;
            };
            let body = serde_json::from_str::<serde_json::Value>(body).ok();
            let link = LinkBuilder::new()
                .operation_id(*target)
                .request_body(body)
                .build();
            created.links.insert((*target).to_string(), RefOr::T(link));
        }
        for item in api.paths.paths.values_mut() {
            let operations: [&mut Option<Operation>; 4] = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                operation
                    .responses
                    .responses
                    .entry("default".into())
                    .or_insert_with(|| RefOr::T(error.clone()));
            }
        }
    }
}

/// The operation whose id is `id`.
fn operation<'a>(api: &'a mut utoipa::openapi::OpenApi, id: &str) -> Option<&'a mut Operation> {
    api.paths.paths.values_mut().find_map(|item| {
        [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        .find(|o| o.operation_id.as_deref() == Some(id))
    })
}

/// A create's answer names what it made: (the create, the JSON pointer of the made object in
/// its answer, [(an operation on it, [(its parameter, the field of the object)])]).
type Links = &'static [(&'static str, &'static [(&'static str, &'static str)])];
const ID: &[(&str, &str)] = &[("id", "id")];
const LINKS: &[(&str, &str, Links)] = &[
    (
        "create_project",
        "project/",
        &[
            ("get_project", ID),
            ("update_project", ID),
            ("delete_project", ID),
            ("list_swim_lanes", ID),
            ("list_members", ID),
            ("add_member", ID),
            ("list_work_items", ID),
            ("list_sprints", ID),
        ],
    ),
    (
        "create_work_item",
        "work_item/",
        &[
            ("get_work_item", ID),
            ("update_work_item", ID),
            ("delete_work_item", ID),
            ("list_comments", ID),
            ("create_comment", ID),
            ("list_dependencies", ID),
            ("list_time_entries", ID),
        ],
    ),
    (
        "create_sprint",
        "sprint/",
        &[
            ("get_sprint", ID),
            ("update_sprint", ID),
            ("delete_sprint", ID),
        ],
    ),
    (
        "create_comment",
        "comment/",
        &[
            ("get_comment", ID),
            ("update_comment", ID),
            ("delete_comment", ID),
        ],
    ),
    (
        "create_time_entry",
        "time_entry/",
        &[
            ("get_time_entry", ID),
            ("update_time_entry", ID),
            ("delete_time_entry", ID),
        ],
    ),
    ("create_dependency", "", &[("delete_dependency", ID)]),
    (
        "add_member",
        "member/",
        &[(
            "remove_member",
            &[("id", "project_id"), ("user_id", "user_id")],
        )],
    ),
];

/// Creates that need what another create made, in their body: (the create that made it, the
/// create that needs it, a body naming it by runtime expression).
const BODY_LINKS: &[(&str, &str, &str)] = &[
    (
        "create_project",
        "create_work_item",
        r#"{"project_id": "$response.body#/project/id", "item_type": "task", "title": "Linked"}"#,
    ),
    (
        "create_project",
        "create_sprint",
        r#"{"project_id": "$response.body#/project/id", "name": "Linked", "start_date": 1795000000, "end_date": 1796200000}"#,
    ),
    (
        "create_work_item",
        "create_time_entry",
        r#"{"work_item_id": "$response.body#/work_item/id"}"#,
    ),
    (
        "create_work_item",
        "create_dependency",
        r#"{"blocking_item_id": "$response.body#/work_item/id", "blocked_item_id": "$response.body#/work_item/parent_id", "dependency_type": "blocks"}"#,
    ),
];
