//! Wire compatibility and envelope behaviour: the proto keeps every message name, field number
//! and oneof number of the reference (checked against a table written from the reference fact
//! sheet); Ping/Pong; payload-less subscription replies; identity from `?user_id=`; snapshot
//! replies carry seq/epoch/stream; project-list subscriptions; idempotent creates.

use std::collections::BTreeMap;

use crate::common::*;
use pm_shared::proto::{self, Payload, WebSocketMessage, WorkItemType};
use prost::Message as _;
use protox::prost_reflect::{DescriptorPool, DynamicMessage, FieldDescriptor, Kind, Value};
use serde_json::json;

// ---------------------------------------------------------------------------------------------
// The reference protocol, as a table: every message with every field as
// "[repeated |optional ]<type> <name> = <number>", oneof members as "payload: ...".
// Written from the reference's messages.proto at HEAD 1684154 (including the HEAD additions
// Project.next_work_item_number, WorkItem.item_number/ancestor_ids/descendant_ids and
// UpdateWorkItemRequest.parent_id/update_parent).
// ---------------------------------------------------------------------------------------------

const REFERENCE_MESSAGES: &[(&str, &[&str])] = &[
    (
        "Project",
        &[
            "string id = 1",
            "string title = 2",
            "optional string description = 3",
            "string key = 4",
            "ProjectStatus status = 5",
            "int32 version = 6",
            "int64 created_at = 7",
            "int64 updated_at = 8",
            "string created_by = 9",
            "string updated_by = 10",
            "optional int64 deleted_at = 11",
            "int32 next_work_item_number = 12",
        ],
    ),
    (
        "WorkItem",
        &[
            "string id = 1",
            "WorkItemType item_type = 2",
            "optional string parent_id = 3",
            "string project_id = 4",
            "int32 position = 5",
            "string title = 6",
            "optional string description = 7",
            "string status = 8",
            "optional string assignee_id = 9",
            "optional string sprint_id = 10",
            "int64 created_at = 11",
            "int64 updated_at = 12",
            "string created_by = 13",
            "string updated_by = 14",
            "optional int64 deleted_at = 15",
            "string priority = 16",
            "optional int32 story_points = 17",
            "int32 version = 18",
            "int32 item_number = 19",
            "repeated string ancestor_ids = 20",
            "repeated string descendant_ids = 21",
        ],
    ),
    (
        "Sprint",
        &[
            "string id = 1",
            "string project_id = 2",
            "string name = 3",
            "optional string goal = 4",
            "int64 start_date = 5",
            "int64 end_date = 6",
            "SprintStatus status = 7",
            "int64 created_at = 8",
            "int64 updated_at = 9",
            "string created_by = 10",
            "string updated_by = 11",
            "optional int64 deleted_at = 12",
            "int32 version = 13",
        ],
    ),
    (
        "Comment",
        &[
            "string id = 1",
            "string work_item_id = 2",
            "string content = 3",
            "int64 created_at = 4",
            "int64 updated_at = 5",
            "string created_by = 6",
            "string updated_by = 7",
            "optional int64 deleted_at = 8",
        ],
    ),
    (
        "TimeEntry",
        &[
            "string id = 1",
            "string work_item_id = 2",
            "string user_id = 3",
            "int64 started_at = 4",
            "optional int64 ended_at = 5",
            "optional int32 duration_seconds = 6",
            "optional string description = 7",
            "int64 created_at = 8",
            "int64 updated_at = 9",
            "optional int64 deleted_at = 10",
        ],
    ),
    (
        "Dependency",
        &[
            "string id = 1",
            "string blocking_item_id = 2",
            "string blocked_item_id = 3",
            "DependencyType dependency_type = 4",
            "int64 created_at = 5",
            "string created_by = 6",
            "optional int64 deleted_at = 7",
        ],
    ),
    (
        "SwimLane",
        &[
            "string id = 1",
            "string project_id = 2",
            "string name = 3",
            "string status_value = 4",
            "int32 position = 5",
            "bool is_default = 6",
            "int64 created_at = 7",
            "int64 updated_at = 8",
            "optional int64 deleted_at = 9",
        ],
    ),
    (
        "FieldChange",
        &[
            "string field_name = 1",
            "optional string old_value = 2",
            "optional string new_value = 3",
        ],
    ),
    ("Ping", &["int64 timestamp = 1"]),
    ("Pong", &["int64 timestamp = 1"]),
    (
        "Subscribe",
        &[
            "repeated string project_ids = 1",
            "repeated string sprint_ids = 2",
        ],
    ),
    (
        "Unsubscribe",
        &[
            "repeated string project_ids = 1",
            "repeated string sprint_ids = 2",
        ],
    ),
    (
        "CreateProjectRequest",
        &[
            "string title = 1",
            "optional string description = 2",
            "string key = 3",
        ],
    ),
    (
        "UpdateProjectRequest",
        &[
            "string project_id = 1",
            "int32 expected_version = 2",
            "optional string title = 3",
            "optional string description = 4",
            "optional ProjectStatus status = 5",
        ],
    ),
    (
        "DeleteProjectRequest",
        &["string project_id = 1", "int32 expected_version = 2"],
    ),
    ("ListProjectsRequest", &[]),
    (
        "ProjectCreated",
        &["Project project = 1", "string user_id = 2"],
    ),
    (
        "ProjectUpdated",
        &[
            "Project project = 1",
            "repeated FieldChange changes = 2",
            "string user_id = 3",
        ],
    ),
    (
        "ProjectDeleted",
        &["string project_id = 1", "string user_id = 2"],
    ),
    ("ProjectList", &["repeated Project projects = 1"]),
    (
        "CreateWorkItemRequest",
        &[
            "WorkItemType item_type = 1",
            "string title = 2",
            "optional string description = 3",
            "optional string parent_id = 4",
            "string project_id = 5",
            "optional string status = 6",
            "optional string priority = 7",
        ],
    ),
    (
        "UpdateWorkItemRequest",
        &[
            "string work_item_id = 1",
            "int32 expected_version = 2",
            "optional string title = 3",
            "optional string description = 4",
            "optional string status = 5",
            "optional string assignee_id = 6",
            "optional string sprint_id = 7",
            "optional int32 position = 8",
            "optional string priority = 9",
            "optional int32 story_points = 10",
            "optional string parent_id = 11",
            "bool update_parent = 12",
        ],
    ),
    ("DeleteWorkItemRequest", &["string work_item_id = 1"]),
    (
        "GetWorkItemsRequest",
        &[
            "string project_id = 1",
            "optional int64 since_timestamp = 2",
        ],
    ),
    (
        "WorkItemCreated",
        &["WorkItem work_item = 1", "string user_id = 2"],
    ),
    (
        "WorkItemUpdated",
        &[
            "WorkItem work_item = 1",
            "repeated FieldChange changes = 2",
            "string user_id = 3",
        ],
    ),
    (
        "WorkItemDeleted",
        &["string work_item_id = 1", "string user_id = 2"],
    ),
    (
        "WorkItemsList",
        &[
            "repeated WorkItem work_items = 1",
            "int64 as_of_timestamp = 2",
        ],
    ),
    (
        "CreateSprintRequest",
        &[
            "string project_id = 1",
            "string name = 2",
            "optional string goal = 3",
            "int64 start_date = 4",
            "int64 end_date = 5",
        ],
    ),
    (
        "UpdateSprintRequest",
        &[
            "string sprint_id = 1",
            "int32 expected_version = 2",
            "optional string name = 3",
            "optional string goal = 4",
            "optional int64 start_date = 5",
            "optional int64 end_date = 6",
            "optional SprintStatus status = 7",
        ],
    ),
    ("DeleteSprintRequest", &["string sprint_id = 1"]),
    ("GetSprintsRequest", &["string project_id = 1"]),
    (
        "SprintCreated",
        &["Sprint sprint = 1", "string user_id = 2"],
    ),
    (
        "SprintUpdated",
        &[
            "Sprint sprint = 1",
            "repeated FieldChange changes = 2",
            "string user_id = 3",
        ],
    ),
    (
        "SprintDeleted",
        &["string sprint_id = 1", "string user_id = 2"],
    ),
    ("SprintsList", &["repeated Sprint sprints = 1"]),
    (
        "CreateCommentRequest",
        &["string work_item_id = 1", "string content = 2"],
    ),
    (
        "UpdateCommentRequest",
        &["string comment_id = 1", "string content = 2"],
    ),
    ("DeleteCommentRequest", &["string comment_id = 1"]),
    ("GetCommentsRequest", &["string work_item_id = 1"]),
    (
        "CommentCreated",
        &["Comment comment = 1", "string user_id = 2"],
    ),
    (
        "CommentUpdated",
        &["Comment comment = 1", "string user_id = 2"],
    ),
    (
        "CommentDeleted",
        &["string comment_id = 1", "string user_id = 2"],
    ),
    ("CommentsList", &["repeated Comment comments = 1"]),
    (
        "StartTimerRequest",
        &["string work_item_id = 1", "optional string description = 2"],
    ),
    ("StopTimerRequest", &["string time_entry_id = 1"]),
    (
        "CreateTimeEntryRequest",
        &[
            "string work_item_id = 1",
            "int64 started_at = 2",
            "int64 ended_at = 3",
            "optional string description = 4",
        ],
    ),
    (
        "UpdateTimeEntryRequest",
        &[
            "string time_entry_id = 1",
            "optional int64 started_at = 2",
            "optional int64 ended_at = 3",
            "optional string description = 4",
        ],
    ),
    ("DeleteTimeEntryRequest", &["string time_entry_id = 1"]),
    (
        "GetTimeEntriesRequest",
        &[
            "string work_item_id = 1",
            "optional int32 limit = 2",
            "optional int32 offset = 3",
        ],
    ),
    ("GetRunningTimerRequest", &[]),
    (
        "TimerStarted",
        &[
            "TimeEntry time_entry = 1",
            "string user_id = 2",
            "optional TimeEntry stopped_entry = 3",
        ],
    ),
    (
        "TimerStopped",
        &["TimeEntry time_entry = 1", "string user_id = 2"],
    ),
    (
        "TimeEntryCreated",
        &["TimeEntry time_entry = 1", "string user_id = 2"],
    ),
    (
        "TimeEntryUpdated",
        &["TimeEntry time_entry = 1", "string user_id = 2"],
    ),
    (
        "TimeEntryDeleted",
        &[
            "string time_entry_id = 1",
            "string work_item_id = 2",
            "string user_id = 3",
        ],
    ),
    (
        "TimeEntriesList",
        &[
            "repeated TimeEntry time_entries = 1",
            "int32 total_count = 2",
        ],
    ),
    (
        "RunningTimerResponse",
        &["optional TimeEntry time_entry = 1"],
    ),
    (
        "CreateDependencyRequest",
        &[
            "string blocking_item_id = 1",
            "string blocked_item_id = 2",
            "DependencyType dependency_type = 3",
        ],
    ),
    ("DeleteDependencyRequest", &["string dependency_id = 1"]),
    ("GetDependenciesRequest", &["string work_item_id = 1"]),
    (
        "DependencyCreated",
        &["Dependency dependency = 1", "string user_id = 2"],
    ),
    (
        "DependencyDeleted",
        &[
            "string dependency_id = 1",
            "string blocking_item_id = 2",
            "string blocked_item_id = 3",
            "string user_id = 4",
        ],
    ),
    (
        "DependenciesList",
        &[
            "repeated Dependency blocking = 1",
            "repeated Dependency blocked = 2",
        ],
    ),
    (
        "GetActivityLogRequest",
        &[
            "string entity_type = 1",
            "string entity_id = 2",
            "int32 limit = 3",
            "int32 offset = 4",
        ],
    ),
    (
        "ActivityLogEntry",
        &[
            "string id = 1",
            "string entity_type = 2",
            "string entity_id = 3",
            "string action = 4",
            "optional string field_name = 5",
            "optional string old_value = 6",
            "optional string new_value = 7",
            "string user_id = 8",
            "int64 timestamp = 9",
            "optional string comment = 10",
        ],
    ),
    (
        "ActivityLogList",
        &[
            "repeated ActivityLogEntry entries = 1",
            "int32 total_count = 2",
            "bool has_more = 3",
        ],
    ),
    ("ActivityLogCreated", &["ActivityLogEntry entry = 1"]),
    (
        "GetLlmContextRequest",
        &[
            "optional string category = 1",
            "optional string context_type = 2",
            "optional int32 min_priority = 3",
        ],
    ),
    (
        "LlmContextEntry",
        &[
            "string id = 1",
            "string context_type = 2",
            "string category = 3",
            "string title = 4",
            "string content = 5",
            "optional string example_sql = 6",
            "optional string example_description = 7",
            "int32 priority = 8",
        ],
    ),
    ("LlmContextList", &["repeated LlmContextEntry entries = 1"]),
    (
        "Error",
        &[
            "string code = 1",
            "string message = 2",
            "optional string field = 3",
        ],
    ),
    (
        "WebSocketMessage",
        &["string message_id = 1", "int64 timestamp = 2"],
    ),
];

/// The members of WebSocketMessage's `payload` oneof: (field name, number). The member's type
/// is the field name in PascalCase (ping → Ping, llm_context_list → LlmContextList).
const REFERENCE_PAYLOAD: &[(&str, u32)] = &[
    ("ping", 10),
    ("pong", 11),
    ("subscribe", 20),
    ("unsubscribe", 21),
    ("create_work_item_request", 30),
    ("update_work_item_request", 31),
    ("delete_work_item_request", 32),
    ("get_work_items_request", 33),
    ("work_item_created", 40),
    ("work_item_updated", 41),
    ("work_item_deleted", 42),
    ("work_items_list", 43),
    ("create_sprint_request", 50),
    ("update_sprint_request", 51),
    ("delete_sprint_request", 52),
    ("get_sprints_request", 53),
    ("sprint_created", 60),
    ("sprint_updated", 61),
    ("sprint_deleted", 62),
    ("sprints_list", 63),
    ("create_comment_request", 70),
    ("update_comment_request", 71),
    ("delete_comment_request", 72),
    ("get_comments_request", 73),
    ("comment_created", 80),
    ("comment_updated", 81),
    ("comment_deleted", 82),
    ("comments_list", 83),
    ("create_project_request", 90),
    ("update_project_request", 91),
    ("delete_project_request", 92),
    ("list_projects_request", 93),
    ("project_created", 94),
    ("project_updated", 95),
    ("project_deleted", 96),
    ("project_list", 97),
    ("error", 100),
    ("start_timer_request", 110),
    ("stop_timer_request", 111),
    ("create_time_entry_request", 112),
    ("update_time_entry_request", 113),
    ("delete_time_entry_request", 114),
    ("get_time_entries_request", 115),
    ("get_running_timer_request", 116),
    ("timer_started", 120),
    ("timer_stopped", 121),
    ("time_entry_created", 122),
    ("time_entry_updated", 123),
    ("time_entry_deleted", 124),
    ("time_entries_list", 125),
    ("running_timer_response", 126),
    ("create_dependency_request", 130),
    ("delete_dependency_request", 131),
    ("get_dependencies_request", 132),
    ("dependency_created", 135),
    ("dependency_deleted", 136),
    ("dependencies_list", 137),
    ("get_activity_log_request", 140),
    ("activity_log_list", 141),
    ("activity_log_created", 142),
    ("get_llm_context_request", 143),
    ("llm_context_list", 144),
];

const REFERENCE_ENUMS: &[(&str, &[(&str, i32)])] = &[
    (
        "ProjectStatus",
        &[
            ("PROJECT_STATUS_UNSPECIFIED", 0),
            ("PROJECT_STATUS_ACTIVE", 1),
            ("PROJECT_STATUS_ARCHIVED", 2),
        ],
    ),
    (
        "WorkItemType",
        &[
            ("WORK_ITEM_TYPE_UNSPECIFIED", 0),
            ("EPIC", 2),
            ("STORY", 3),
            ("TASK", 4),
        ],
    ),
    (
        "SprintStatus",
        &[
            ("SPRINT_STATUS_UNSPECIFIED", 0),
            ("PLANNED", 1),
            ("ACTIVE", 2),
            ("COMPLETED", 3),
            ("CANCELLED", 4),
        ],
    ),
    (
        "DependencyType",
        &[
            ("DEPENDENCY_TYPE_UNSPECIFIED", 0),
            ("BLOCKS", 1),
            ("RELATES_TO", 2),
        ],
    ),
];

fn compile_our_proto() -> DescriptorPool {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto");
    protox::Compiler::new([&dir])
        .expect("protox compiler")
        .open_file(dir.join("messages.proto"))
        .expect("proto/messages.proto compiles")
        .descriptor_pool()
}

fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// A field in the table's notation.
fn render(f: &FieldDescriptor) -> String {
    let label = if f.is_list() {
        "repeated "
    } else if f.field_descriptor_proto().proto3_optional() {
        "optional "
    } else {
        ""
    };
    let ty = match f.kind() {
        Kind::Message(m) => m.name().to_string(),
        Kind::Enum(e) => e.name().to_string(),
        scalar => format!("{scalar:?}").to_ascii_lowercase(),
    };
    let oneof = match f.containing_oneof() {
        Some(o) if !o.is_synthetic() => format!("{}: ", o.name()),
        _ => String::new(),
    };
    format!("{oneof}{label}{ty} {} = {}", f.name(), f.number())
}

#[test]
fn the_proto_keeps_every_reference_name_and_number() {
    let pool = compile_our_proto();
    let mut problems = Vec::new();

    let mut expected: BTreeMap<&str, Vec<String>> = REFERENCE_MESSAGES
        .iter()
        .map(|(m, fields)| (*m, fields.iter().map(|f| f.to_string()).collect()))
        .collect();
    if let Some(ws) = expected.get_mut("WebSocketMessage") {
        for (name, number) in REFERENCE_PAYLOAD {
            ws.push(format!("payload: {} {name} = {number}", pascal(name)));
        }
    }

    for (message, fields) in &expected {
        let Some(desc) = pool.get_message_by_name(&format!("pm.{message}")) else {
            problems.push(format!("message pm.{message} is missing"));
            continue;
        };
        let ours: Vec<String> = desc.fields().map(|f| render(&f)).collect();
        for want in fields {
            if !ours.contains(want) {
                problems.push(format!("pm.{message}: expected `{want}`; ours: {ours:?}"));
            }
        }
        // Additions to a reference message use numbers far from the reference's own.
        for f in desc.fields() {
            let rendered = render(&f);
            if !fields.contains(&rendered) && f.number() < 100 {
                problems.push(format!(
                    "pm.{message}: addition `{rendered}` uses a number below 100"
                ));
            }
        }
    }

    for (name, values) in REFERENCE_ENUMS {
        let Some(desc) = pool.get_enum_by_name(&format!("pm.{name}")) else {
            problems.push(format!("enum pm.{name} is missing"));
            continue;
        };
        let ours: Vec<(String, i32)> = desc
            .values()
            .map(|v| (v.name().to_string(), v.number()))
            .collect();
        for (value, number) in values.iter() {
            if !ours.contains(&(value.to_string(), *number)) {
                problems.push(format!("enum pm.{name}: expected {value} = {number}"));
            }
        }
    }

    // Our additions, as documented.
    for (message, field) in [
        ("WebSocketMessage", "uint64 seq = 300"),
        ("WebSocketMessage", "string epoch = 301"),
        ("WebSocketMessage", "string stream = 302"),
        (
            "WebSocketMessage",
            "payload: ResyncRequired resync_required = 310",
        ),
        ("Subscribe", "repeated ResumeCursor cursors = 100"),
        ("Subscribe", "bool project_list = 101"),
        ("ResumeCursor", "string stream = 1"),
        ("ResumeCursor", "uint64 last_seq = 2"),
        ("ResumeCursor", "string epoch = 3"),
        ("ResyncRequired", "string stream = 1"),
        ("ResyncRequired", "string reason = 2"),
        ("ResyncRequired", "uint64 current_seq = 3"),
        ("ResyncRequired", "string epoch = 4"),
    ] {
        let ours: Vec<String> = pool
            .get_message_by_name(&format!("pm.{message}"))
            .map(|d| d.fields().map(|f| render(&f)).collect())
            .unwrap_or_default();
        if !ours.contains(&field.to_string()) {
            problems.push(format!("pm.{message}: our addition `{field}` is missing"));
        }
    }

    assert!(
        problems.is_empty(),
        "{} incompatibilities:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn the_table_covers_the_whole_oneof_and_the_generated_code_agrees() {
    // The table itself: 62 payload members, none repeated.
    let mut numbers: Vec<u32> = REFERENCE_PAYLOAD.iter().map(|(_, n)| *n).collect();
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(numbers.len(), REFERENCE_PAYLOAD.len());
    assert_eq!((numbers[0], numbers[numbers.len() - 1]), (10, 144));

    // What pm_shared encodes is what the proto file describes.
    let pool = compile_our_proto();
    let desc = pool
        .get_message_by_name("pm.WebSocketMessage")
        .expect("WebSocketMessage");
    let msg = WebSocketMessage {
        message_id: "m".into(),
        timestamp: 7,
        seq: 42,
        epoch: "e".into(),
        stream: "s".into(),
        payload: Some(Payload::WorkItemCreated(proto::WorkItemCreated {
            work_item: Some(proto::WorkItem {
                id: "w".into(),
                item_number: 19,
                ancestor_ids: vec!["a".into()],
                descendant_ids: vec!["d1".into(), "d2".into()],
                ..Default::default()
            }),
            user_id: "u".into(),
            ..Default::default()
        })),
    };
    let dynamic = DynamicMessage::decode(desc.clone(), msg.encode_to_vec().as_slice())
        .expect("decodes with the proto's descriptor");
    assert_eq!(
        dynamic.get_field_by_number(300).as_deref(),
        Some(&Value::U64(42))
    );
    let created = dynamic.get_field_by_number(40).expect("field 40");
    let created = created.as_message().expect("message");
    let item = created.get_field_by_number(1).expect("work_item");
    let item = item.as_message().expect("message");
    assert_eq!(
        item.get_field_by_number(19).as_deref(),
        Some(&Value::I32(19))
    );
    let descendants = item.get_field_by_number(21).expect("descendant_ids");
    assert_eq!(descendants.as_list().map(|l| l.len()), Some(2));

    let update = proto::UpdateWorkItemRequest {
        parent_id: Some("p".into()),
        update_parent: true,
        ..Default::default()
    };
    let udesc = pool
        .get_message_by_name("pm.UpdateWorkItemRequest")
        .expect("UpdateWorkItemRequest");
    let dynamic = DynamicMessage::decode(udesc, update.encode_to_vec().as_slice()).expect("decode");
    assert_eq!(
        dynamic.get_field_by_number(11).as_deref(),
        Some(&Value::String("p".into()))
    );
    assert_eq!(
        dynamic.get_field_by_number(12).as_deref(),
        Some(&Value::Bool(true))
    );
}

// ---------------------------------------------------------------------------------------------
// Envelope behaviour
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_is_answered_with_pong() {
    let server = TestServer::start().await;
    let mut c = server.connect(USER_A).await;
    let before = pm_shared::now_secs();
    let reply = c
        .request_with_id("ping-1", Payload::Ping(proto::Ping { timestamp: 987_654 }))
        .await;
    assert_eq!(reply.message_id, "ping-1");
    assert_eq!(expect_payload!(reply, Pong).timestamp, 987_654);
    assert!(reply.timestamp >= before, "server time on the envelope");
    assert_eq!((reply.seq, reply.stream.as_str()), (0, ""));
    c.expect_no_event().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_replies_have_no_payload_and_echo_the_id() {
    let server = TestServer::start().await;
    let mut c = server.connect(USER_A).await;
    let p = c.create_project("Subs", "SUBS").await;
    for payload in [
        Payload::Subscribe(proto::Subscribe {
            project_ids: vec![p.id.clone()],
            ..Default::default()
        }),
        Payload::Subscribe(proto::Subscribe {
            project_list: true,
            ..Default::default()
        }),
        Payload::Unsubscribe(proto::Unsubscribe {
            project_ids: vec![p.id.clone()],
            sprint_ids: vec![],
        }),
    ] {
        let reply = c.request_with_id("sub-7", payload).await;
        assert_eq!(reply.message_id, "sub-7");
        assert!(reply.payload.is_none(), "{reply:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_comes_from_the_user_id_query_parameter() {
    let server = TestServer::start().await;
    let cases = [
        ("", pm_shared::DEFAULT_USER_ID.to_string(), "NOID"),
        (
            "user_id=not-a-uuid",
            pm_shared::DEFAULT_USER_ID.to_string(),
            "BADID",
        ),
        (
            "user_id=",
            pm_shared::DEFAULT_USER_ID.to_string(),
            "EMPTYID",
        ),
        (
            "user_id=DDDDDDDD-0000-4000-8000-000000000004",
            "dddddddd-0000-4000-8000-000000000004".to_string(),
            "UPPER",
        ),
        (
            &format!("user_id={USER_B}&other=1"),
            USER_B.to_string(),
            "GOODID",
        ),
    ];
    for (query, expected, key) in cases {
        let mut c = server.connect_query(query).await;
        let project = c.create_project("Who", key).await;
        assert_eq!(project.created_by, expected, "query {query:?}");
        c.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_replies_carry_seq_epoch_and_stream() {
    let server = TestServer::start().await;
    let epoch = server.epoch();
    let mut c = server.connect(USER_A).await;

    let (projects, reply) = c.list_projects().await;
    assert!(projects.is_empty());
    assert_eq!(
        (reply.seq, reply.stream.as_str(), reply.epoch.as_str()),
        (0, "", epoch.as_str())
    );

    let p = c.create_project("Snap", "SNAP").await;
    // The lister was subscribed to the workspace stream: drain that event.
    let _ = c.take_events();
    let epic = c.create_item(&p.id, WorkItemType::Epic, "e", None).await;
    c.create_sprint(&p.id, "s").await;
    c.create_comment(&epic.id, "c").await;

    let (_, reply) = c.list_projects().await;
    assert_eq!(
        (reply.seq, reply.stream.as_str(), reply.epoch.as_str()),
        (1, "", epoch.as_str())
    );
    for reply in [
        c.work_items(&p.id).await.1,
        c.sprints(&p.id).await.1,
        c.comments(&epic.id).await.1,
    ] {
        assert_eq!(
            (reply.seq, reply.stream.as_str(), reply.epoch.as_str()),
            (3, p.id.as_str(), epoch.as_str()),
            "{reply:?}"
        );
    }
    // Reads that are not snapshots carry no position.
    let reply = c
        .request(Payload::GetActivityLogRequest(
            proto::GetActivityLogRequest {
                entity_type: "work_item".into(),
                entity_id: epic.id.clone(),
                limit: 0,
                offset: 0,
            },
        ))
        .await;
    let log = expect_payload!(reply, ActivityLogList);
    assert_eq!(log.total_count, 1);
    assert_eq!(reply.seq, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_projects_or_subscribing_to_the_list_delivers_project_events() {
    let server = TestServer::start().await;
    let epoch = server.epoch();
    let mut lister = server.connect(USER_B).await;
    lister.list_projects().await;
    let mut watcher = server.connect(USER_B).await;
    let reply = watcher
        .subscribe_with(proto::Subscribe {
            project_list: true,
            ..Default::default()
        })
        .await;
    assert!(reply.payload.is_none());
    let mut bystander = server.connect(USER_C).await;

    let http = server.http(Some(USER_A));
    let created = http
        .post(
            "/api/v1/projects",
            json!({"title": "Listed", "key": "LIST"}),
        )
        .await;
    let id = s(&created.ok()["project"], "id");
    for c in [&mut lister, &mut watcher] {
        let mut seqs = SeqTracker::default();
        let (_, ev) = recv_mutation(c, &mut seqs, &epoch).await;
        assert_eq!((ev.stream.as_str(), ev.seq), ("", 1));
        let project = expect_payload!(ev, ProjectCreated)
            .project
            .expect("project");
        assert_eq!(project.id, id);
    }
    bystander.expect_no_event().await;
}

// ---------------------------------------------------------------------------------------------
// Idempotent creates
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_create_returns_the_first_result_per_user() {
    let server = TestServer::start().await;
    let epoch = server.epoch();
    let mut a = server.connect(USER_A).await;
    let mut a2 = server.connect(USER_A).await;
    let mut b = server.connect(USER_B).await;
    let p = a.create_project("Idem", "IDEM").await;
    let mut obs = server.connect(USER_C).await;
    obs.subscribe(&[&p.id]).await;
    let mut seqs = SeqTracker::default();

    let epic = a.create_item(&p.id, WorkItemType::Epic, "e", None).await;
    recv_mutation(&mut obs, &mut seqs, &epoch).await;

    let creates: Vec<(&str, Payload)> = vec![
        (
            "work item",
            create_item_req(&p.id, WorkItemType::Story, "once", Some(&epic.id)),
        ),
        ("sprint", create_sprint_req(&p.id, "once")),
        (
            "comment",
            Payload::CreateCommentRequest(proto::CreateCommentRequest {
                work_item_id: epic.id.clone(),
                content: "once".into(),
            }),
        ),
    ];
    for (what, payload) in creates {
        let id = uuid::Uuid::new_v4().to_string();
        let first = a.request_with_id(&id, payload.clone()).await;
        assert!(
            !matches!(first.payload, Some(Payload::Error(_))),
            "{what}: {first:?}"
        );
        recv_mutation(&mut obs, &mut seqs, &epoch).await;

        // The same message_id from the same user (on another connection): the same response,
        // no second entity, no second event.
        let again = a2.request_with_id(&id, payload.clone()).await;
        assert_eq!(again.payload, first.payload, "{what}: same response");
        assert_eq!(
            (again.seq, &again.stream, &again.epoch),
            (first.seq, &first.stream, &first.epoch),
            "{what}"
        );
        obs.expect_no_event().await;

        // From another user it is a new request.
        let other = b.request_with_id(&id, payload).await;
        assert_ne!(
            other.payload, first.payload,
            "{what}: another user's create"
        );
        assert!(other.seq > first.seq, "{what}");
        recv_mutation(&mut obs, &mut seqs, &epoch).await;
    }

    let (items, _) = obs.work_items(&p.id).await;
    assert_eq!(items.iter().filter(|i| i.title == "once").count(), 2);
    let (sprints, _) = obs.sprints(&p.id).await;
    assert_eq!(sprints.len(), 2);
    let (comments, _) = obs.comments(&epic.id).await;
    assert_eq!(comments.len(), 2);

    // Projects too (the workspace stream).
    let id = uuid::Uuid::new_v4().to_string();
    let first = a
        .request_with_id(&id, create_project_req("Twice", "TWICE"))
        .await;
    let again = a
        .request_with_id(&id, create_project_req("Twice", "TWICE"))
        .await;
    assert_eq!(first.payload, again.payload);
    expect_payload!(again, ProjectCreated);
    let (projects, _) = obs.list_projects().await;
    assert_eq!(projects.iter().filter(|p| p.key == "TWICE").count(), 1);
    // Another user with the same id and key: a real second create, refused as a duplicate key.
    let other = b
        .request_with_id(&id, create_project_req("Twice", "TWICE"))
        .await;
    expect_error(&other, "VALIDATION_ERROR");
}

/// An update sent with `idempotent` (how offline queues replay): the same message_id again is
/// answered with the first answer and changes nothing, even though its expected_version is now
/// stale; without the flag a retry is an ordinary (conflicting) update.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_idempotent_update_is_applied_once() {
    let server = TestServer::start().await;
    let epoch = server.epoch();
    let mut a = server.connect(USER_A).await;
    let mut a2 = server.connect(USER_A).await;
    let p = a.create_project("Idem upd", "IDU").await;
    let mut obs = server.connect(USER_C).await;
    obs.subscribe(&[&p.id]).await;
    let mut seqs = SeqTracker::default();
    let item = a.create_item(&p.id, WorkItemType::Task, "t", None).await;
    recv_mutation(&mut obs, &mut seqs, &epoch).await;
    let update = |title: &str, idempotent: bool| {
        Payload::UpdateWorkItemRequest(proto::UpdateWorkItemRequest {
            work_item_id: item.id.clone(),
            expected_version: item.version,
            title: Some(title.into()),
            idempotent,
            ..Default::default()
        })
    };
    let id = uuid::Uuid::new_v4().to_string();
    let first = a.request_with_id(&id, update("once", true)).await;
    expect_payload!(first.clone(), WorkItemUpdated);
    recv_mutation(&mut obs, &mut seqs, &epoch).await;
    let again = a2.request_with_id(&id, update("once", true)).await;
    assert_eq!(again.payload, first.payload, "the first answer");
    obs.expect_no_event().await;
    let (items, _) = obs.work_items(&p.id).await;
    assert_eq!(items[0].version, item.version + 1, "applied once");

    // The same id for a create is refused, not answered with the update.
    let create = a
        .request_with_id(&id, create_project_req("Other", "OTH"))
        .await;
    expect_error(&create, "VALIDATION_ERROR");

    // Without the flag, a retry runs again and meets its own change.
    let plain = uuid::Uuid::new_v4().to_string();
    let refused = a.request_with_id(&plain, update("twice", false)).await;
    expect_error(&refused, "CONFLICT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_rest_create_with_an_idempotency_key_returns_the_first_result() {
    let server = TestServer::start().await;
    let http = server.http(Some(USER_A));
    let send = |key: &'static str, user: &'static str| {
        let http = http.as_user(user);
        async move {
            http.run(
                http.request(reqwest::Method::POST, "/api/v1/projects")
                    .header("Idempotency-Key", key)
                    .json(&json!({"title": "Keyed", "key": "KEYED"})),
            )
            .await
        }
    };
    let first = send("k-1", USER_A).await;
    let again = send("k-1", USER_A).await;
    assert_eq!(first.ok(), again.ok());
    let list = http.get("/api/v1/projects").await;
    assert_eq!(list.ok()["projects"].as_array().map(Vec::len), Some(1));
    // Another user, same key: a second create (refused here only because the key is taken).
    send("k-1", USER_B).await.expect_error(409, "CONFLICT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_id_reused_for_another_kind_of_create_is_rejected_cleanly() {
    let server = TestServer::start().await;
    let mut a = server.connect(USER_A).await;
    let id = uuid::Uuid::new_v4().to_string();
    let first = a
        .request_with_id(&id, create_project_req("Reuse", "REUSEID"))
        .await;
    let p = expect_payload!(first, ProjectCreated)
        .project
        .expect("project");
    // The same id on a different create must not answer with the stored ProjectCreated.
    let reply = a
        .request_with_id(&id, create_item_req(&p.id, WorkItemType::Task, "t", None))
        .await;
    let err = expect_error(&reply, "VALIDATION_ERROR");
    assert_eq!(err.field.as_deref(), Some("message_id"));
    assert!(a.work_items(&p.id).await.0.is_empty());

    // Over REST the same key on another route is a 400, not an internal error.
    let http = server.http(Some(USER_A));
    let created = http
        .run(
            http.request(reqwest::Method::POST, "/api/v1/projects")
                .header("Idempotency-Key", "same-key")
                .json(&json!({"title": "Keyed", "key": "KEYED2"})),
        )
        .await;
    let project_id = s(&created.ok()["project"], "id");
    let item = http
        .run(
            http.request(reqwest::Method::POST, "/api/v1/work-items")
                .header("Idempotency-Key", "same-key")
                .json(&json!({"project_id": project_id, "item_type": "task", "title": "t"})),
        )
        .await;
    item.expect_error(400, "VALIDATION_ERROR");
    let list = http
        .get(&format!("/api/v1/projects/{project_id}/work-items"))
        .await;
    assert_eq!(list.ok()["work_items"].as_array().map(Vec::len), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_message_id_is_echoed_and_never_deduplicated() {
    let server = TestServer::start().await;
    let mut a = server.connect(USER_A).await;
    let p = a.create_project("Empty ids", "EMPTYIDS").await;
    for _ in 0..2 {
        let reply = a
            .request_with_id("", create_item_req(&p.id, WorkItemType::Task, "t", None))
            .await;
        assert_eq!(reply.message_id, "");
        expect_payload!(reply, WorkItemCreated);
    }
    assert_eq!(a.work_items(&p.id).await.0.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_websockets_with_1001() {
    let server = TestServer::start().await;
    let mut a = server.connect(USER_A).await;
    let mut b = server.connect(USER_B).await;
    a.ping().await;
    b.subscribe(&[&uuid::Uuid::new_v4().to_string()]).await;
    let (closed_a, closed_b, _dir) = tokio::join!(
        a.expect_close(TIMEOUT),
        b.expect_close(TIMEOUT),
        server.stop()
    );
    assert_eq!(closed_a.0, Some(1001), "{closed_a:?}");
    assert_eq!(closed_b.0, Some(1001), "{closed_b:?}");
}

/// The WebSocket layer itself (the server does its own handshake and writes its own frames):
/// a request that is not an upgrade (or not a GET) is refused with the error JSON, a version
/// other than 13 gets 426 naming the supported one, a WebSocket ping gets its pong with the
/// same data, and a client's close is echoed with its status code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_websocket_handshake_and_control_frames() {
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
    use tokio_tungstenite::tungstenite::Message;

    let server = TestServer::start().await;

    let plain = reqwest::get(format!("http://{}/ws", server.addr))
        .await
        .unwrap();
    assert_eq!(plain.status(), 400);
    let body: serde_json::Value = plain.json().await.unwrap();
    assert_eq!(body["error"]["code"], "INVALID_MESSAGE", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("WebSocket"),
        "{body}"
    );

    let upgrade = |method: reqwest::Method, key: &str| {
        reqwest::Client::new()
            .request(method, format!("http://{}/ws", server.addr))
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", key)
            .send()
    };
    let head = upgrade(reqwest::Method::HEAD, "dGhlIHNhbXBsZSBub25jZQ==")
        .await
        .unwrap();
    assert_eq!(head.status(), 405, "an upgrade is a GET");

    let raw_request = |version: &str| {
        format!(
            "GET /ws HTTP/1.1\r\nHost: {}\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: {version}\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            server.addr
        )
    };
    let answer_to = |request: String| async move {
        let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut head = vec![0u8; 4096];
        let n = tokio::time::timeout(TIMEOUT, tcp.read(&mut head))
            .await
            .unwrap()
            .unwrap();
        String::from_utf8_lossy(&head[..n]).to_ascii_lowercase()
    };
    let bad_key = upgrade(reqwest::Method::GET, "not a nonce").await.unwrap();
    assert_eq!(bad_key.status(), 400);
    let body: serde_json::Value = bad_key.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Sec-WebSocket-Key"),
        "{body}"
    );
    let old = answer_to(raw_request("8")).await;
    assert!(old.starts_with("http/1.1 426"), "{old}");
    assert!(old.contains("sec-websocket-version: 13"), "{old}");
    // The RFC's sample key and its accept value; "Connection" may list other tokens.
    let ok = answer_to(raw_request("13")).await;
    assert!(ok.starts_with("http/1.1 101"), "{ok}");
    assert!(
        ok.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{ok}"
    );

    let (mut ws, _) = tokio_tungstenite::connect_async(server.ws_url(&format!("user_id={USER_A}")))
        .await
        .unwrap();
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    let pong = tokio::time::timeout(TIMEOUT, ws.next()).await.unwrap();
    assert!(
        matches!(&pong, Some(Ok(Message::Pong(d))) if &d[..] == b"are you there"),
        "{pong:?}"
    );
    ws.send(Message::Close(Some(CloseFrame {
        code: CloseCode::Library(4000),
        reason: "done".into(),
    })))
    .await
    .unwrap();
    let echo = tokio::time::timeout(TIMEOUT, ws.next()).await.unwrap();
    assert!(
        matches!(&echo, Some(Ok(Message::Close(Some(f)))) if u16::from(f.code) == 4000),
        "{echo:?}"
    );
    let end = tokio::time::timeout(TIMEOUT, ws.next()).await.unwrap();
    assert!(end.is_none() || matches!(end, Some(Err(_))), "{end:?}");
    server.stop().await;
}
