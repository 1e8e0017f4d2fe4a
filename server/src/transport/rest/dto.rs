//! The reference's REST JSON shapes (snake_case), derived from the protobuf entities.
use pm_shared::domain::{self, ItemType, ProjectStatus, SprintStatus, Status};
use pm_shared::proto;
use serde_json::{json, Value};

pub fn project(p: &proto::Project) -> Value {
    json!({
        "id": p.id,
        "key": p.key,
        "title": p.title,
        "description": p.description,
        "status": ProjectStatus::from_proto(p.status).unwrap_or(ProjectStatus::Active).as_str(),
        "version": p.version,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
        "created_by": p.created_by,
        "updated_by": p.updated_by,
        "next_work_item_number": p.next_work_item_number,
    })
}

pub fn work_item(w: &proto::WorkItem, project_key: &str) -> Value {
    json!({
        "id": w.id,
        "display_key": domain::display_key(project_key, w.item_number),
        "item_type": ItemType::from_proto(w.item_type).map(|t| t.as_str()).unwrap_or("task"),
        "title": w.title,
        "description": w.description,
        "status": w.status,
        "priority": w.priority,
        "parent_id": w.parent_id,
        "project_id": w.project_id,
        "assignee_id": w.assignee_id,
        "sprint_id": w.sprint_id,
        "story_points": w.story_points,
        "item_number": w.item_number,
        "position": w.position,
        "version": w.version,
        "created_at": w.created_at,
        "updated_at": w.updated_at,
        "created_by": w.created_by,
        "updated_by": w.updated_by,
    })
}

pub fn sprint(s: &proto::Sprint) -> Value {
    json!({
        "id": s.id,
        "project_id": s.project_id,
        "name": s.name,
        "goal": s.goal,
        "start_date": s.start_date,
        "end_date": s.end_date,
        "status": SprintStatus::from_proto(s.status).unwrap_or(SprintStatus::Planned).as_str(),
        "version": s.version,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
        "created_by": s.created_by,
        "updated_by": s.updated_by,
    })
}

pub fn comment(c: &proto::Comment) -> Value {
    json!({
        "id": c.id,
        "work_item_id": c.work_item_id,
        "content": c.content,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
        "created_by": c.created_by,
        "updated_by": c.updated_by,
    })
}

/// The namespace of swim-lane ids (a fixed random UUID: it must never change).
const SWIM_LANE_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6f1c_2b7e_94d3_4a58_b0e6_1d2c_8a95_f347);

/// A project's lane for `status`: a UUID (the reference's clients parse lane ids as GUIDs),
/// the same for the same project and status on every call and every server (UUIDv5 of the
/// project id and the status).
pub fn swim_lane_id(project_id: &str, status: Status) -> String {
    uuid::Uuid::new_v5(
        &SWIM_LANE_NAMESPACE,
        format!("{project_id}:{}", status.as_str()).as_bytes(),
    )
    .to_string()
}

/// The five fixed lanes of every project, in board order.
pub fn swim_lanes(project: &proto::Project) -> Value {
    let lanes: Vec<Value> = Status::ALL
        .iter()
        .enumerate()
        .map(|(i, s)| {
            json!({
                "id": swim_lane_id(&project.id, *s),
                "project_id": project.id,
                "name": s.label(),
                "status_value": s.as_str(),
                "position": i,
                "is_default": true,
                "created_at": project.created_at,
                "updated_at": project.created_at,
            })
        })
        .collect();
    json!({ "swim_lanes": lanes })
}

pub fn dependency(d: &proto::Dependency) -> Value {
    serde_json::to_value(crate::sync::DependencyDto::from(d)).unwrap_or(Value::Null)
}

pub fn time_entry(t: &proto::TimeEntry) -> Value {
    serde_json::to_value(crate::sync::TimeEntryDto::from(t)).unwrap_or(Value::Null)
}

fn field_change(c: &proto::FieldChange) -> Value {
    json!({
        "field_name": c.field_name,
        "old_value": c.old_value,
        "new_value": c.new_value,
    })
}

/// One history entry: the reference's ActivityLogEntry fields plus every changed field.
pub fn activity(a: &proto::ActivityLogEntry) -> Value {
    json!({
        "id": a.id,
        "entity_type": a.entity_type,
        "entity_id": a.entity_id,
        "action": a.action,
        "field_name": a.field_name,
        "old_value": a.old_value,
        "new_value": a.new_value,
        "user_id": a.user_id,
        "timestamp": a.timestamp,
        "comment": a.comment,
        "changes": a.changes.iter().map(field_change).collect::<Vec<_>>(),
    })
}

pub fn llm_context(e: &proto::LlmContextEntry) -> Value {
    json!({
        "id": e.id,
        "context_type": e.context_type,
        "category": e.category,
        "title": e.title,
        "content": e.content,
        "example_sql": e.example_sql,
        "example_description": e.example_description,
        "priority": e.priority,
    })
}
