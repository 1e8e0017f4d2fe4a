//! Dependency commands: links between two work items of one project, with the reference's rules
//! (no self-link, same project, one live link per ordered pair, at most 50 live links per item on
//! each side, no cycle among `blocks` links). Cycle detection is one recursive query.
use std::collections::HashMap;

use crate::store::Conn;
use pm_shared::domain::EntityType;
use pm_shared::domain::{limits, DependencyType};
use pm_shared::proto::{self, Payload};

use super::{parse_id, track, Action, Actor, Change, Effect};
use crate::error::{AppError, AppResult};
use crate::store::rows::DependencyRow;
use crate::store::{dependencies, queries};

fn change(
    project_id: String,
    dependency_id: &str,
    action: Action,
    changes: Vec<proto::FieldChange>,
    event: Payload,
) -> Effect {
    Effect::Changed(Change {
        project_id,
        lifecycle: false,
        entity_type: EntityType::Dependency,
        entity_id: dependency_id.to_string(),
        action,
        changes,
        event,
    })
}

pub async fn create(
    conn: &mut Conn<'_>,
    actor: &Actor,
    req: proto::CreateDependencyRequest,
) -> AppResult<Effect> {
    let blocking_id = parse_id("blocking_item_id", &req.blocking_item_id)?;
    let blocked_id = parse_id("blocked_item_id", &req.blocked_item_id)?;
    if blocking_id == blocked_id {
        return Err(AppError::validation(
            "blocked_item_id",
            "Work item cannot block itself",
        ));
    }
    let kind = DependencyType::from_proto(req.dependency_type).ok_or_else(|| {
        AppError::validation(
            "dependency_type",
            "Invalid dependency_type. Must be BLOCKS or RELATES_TO",
        )
    })?;
    let blocking = queries::work_item(conn, &blocking_id)
        .await?
        .ok_or_else(|| {
            AppError::NotFound(format!("Work item {blocking_id} not found (blocking)"))
        })?;
    let blocked = queries::work_item(conn, &blocked_id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("Work item {blocked_id} not found (blocked)")))?;
    if blocking.project_id != blocked.project_id {
        return Err(AppError::validation(
            "blocking_item_id",
            "Dependencies can only be created between items in the same project",
        ));
    }
    if dependencies::live_link(conn, &blocking_id, &blocked_id)
        .await?
        .is_some()
    {
        return Err(AppError::validation(
            "blocked_item_id",
            "Dependency already exists between these items",
        ));
    }
    if let Some((field, message)) = link_refusal(conn, &blocking_id, &blocked_id, kind).await? {
        return Err(AppError::validation(field, message));
    }

    let id = crate::ids::random_id();
    let row = DependencyRow {
        id: id.clone(),
        blocking_item_id: blocking_id.clone(),
        blocked_item_id: blocked_id.clone(),
        dependency_type: kind.as_str().to_string(),
        created_at: pm_shared::now_secs(),
        created_by: actor.user_id.clone(),
        deleted_at: None,
    };
    dependencies::insert(conn, &row).await?;
    let dependency = load(conn, &id).await?;
    let mut changes = Vec::new();
    track(&mut changes, "blocking_item_id", None, Some(blocking_id));
    track(&mut changes, "blocked_item_id", None, Some(blocked_id));
    track(
        &mut changes,
        "dependency_type",
        None,
        Some(kind.to_string()),
    );
    let event = Payload::DependencyCreated(proto::DependencyCreated {
        dependency: Some(dependency),
        user_id: actor.user_id.clone(),
    });
    Ok(change(
        blocked.project_id,
        &id,
        Action::Created,
        changes,
        event,
    ))
}

pub async fn delete(
    conn: &mut Conn<'_>,
    actor: &Actor,
    req: proto::DeleteDependencyRequest,
) -> AppResult<Effect> {
    let id = parse_id("dependency_id", &req.dependency_id)?;
    let dependency = load(conn, &id).await?;
    let blocking = queries::work_item(conn, &dependency.blocking_item_id)
        .await?
        .ok_or_else(|| AppError::not_found("Work item", &dependency.blocking_item_id))?;
    dependencies::soft_delete(conn, &id, pm_shared::now_secs()).await?;
    let kind = DependencyType::from_proto(dependency.dependency_type)
        .map(|t| t.to_string())
        .unwrap_or_default();
    let mut changes = Vec::new();
    track(
        &mut changes,
        "blocking_item_id",
        Some(dependency.blocking_item_id.clone()),
        None,
    );
    track(
        &mut changes,
        "blocked_item_id",
        Some(dependency.blocked_item_id.clone()),
        None,
    );
    track(&mut changes, "dependency_type", Some(kind), None);
    let event = Payload::DependencyDeleted(proto::DependencyDeleted {
        dependency_id: id.clone(),
        blocking_item_id: dependency.blocking_item_id,
        blocked_item_id: dependency.blocked_item_id,
        user_id: actor.user_id.clone(),
    });
    Ok(change(
        blocking.project_id,
        &id,
        Action::Deleted,
        changes,
        event,
    ))
}

/// The first rule a new link from `blocking` to `blocked` would break with the links already
/// there (at most [`limits::DEPENDENCIES_PER_ITEM`] on each side, no cycle among `blocks`
/// links), as (field, message). The command and the import both ask.
pub(super) async fn link_refusal(
    conn: &mut Conn<'_>,
    blocking: &str,
    blocked: &str,
    kind: DependencyType,
) -> AppResult<Option<(&'static str, String)>> {
    let (blockers, blocks) = dependencies::link_counts(conn, blocked, blocking).await?;
    let max = limits::DEPENDENCIES_PER_ITEM;
    if blockers >= max {
        return Ok(Some((
            "blocked_item_id",
            format!("Item already has {blockers} blocking dependencies (max {max})"),
        )));
    }
    if blocks >= max {
        return Ok(Some((
            "blocking_item_id",
            format!("Item already blocks {blocks} items (max {max})"),
        )));
    }
    if kind == DependencyType::Blocks {
        // Would `blocked` reach `blocking` along blocks links already?
        let edges = dependencies::blocks_reach(conn, blocked).await?;
        if let Some(path) = path_in(blocked, blocking, &edges) {
            let shown: Vec<String> = path.iter().map(|id| id.chars().take(8).collect()).collect();
            return Ok(Some((
                "blocking_item_id",
                format!(
                    "Circular dependency detected: {}. This would create a cycle.",
                    shown.join(" → ")
                ),
            )));
        }
    }
    Ok(None)
}

/// Breadth-first path from `from` to `to` over `(node, via)` edges (`via` → `node`).
fn path_in(from: &str, to: &str, edges: &[(String, String)]) -> Option<Vec<String>> {
    let mut next: HashMap<&str, Vec<&str>> = HashMap::new();
    for (node, via) in edges {
        next.entry(via.as_str()).or_default().push(node.as_str());
    }
    let mut parent: HashMap<&str, &str> = HashMap::new();
    let mut queue = std::collections::VecDeque::from([from]);
    while let Some(cur) = queue.pop_front() {
        if cur == to {
            let mut path = vec![to.to_string()];
            let mut at = to;
            while let Some(p) = parent.get(at) {
                path.push(p.to_string());
                at = p;
            }
            path.reverse();
            return Some(path);
        }
        for n in next.get(cur).into_iter().flatten() {
            if *n != from && !parent.contains_key(n) {
                parent.insert(n, cur);
                queue.push_back(n);
            }
        }
    }
    None
}

async fn load(conn: &mut Conn<'_>, id: &str) -> AppResult<proto::Dependency> {
    queries::dependency(conn, id)
        .await?
        .map(|r| r.into_proto())
        .ok_or_else(|| AppError::not_found("Dependency", id))
}

#[cfg(test)]
mod tests {
    use super::path_in;

    fn e(node: &str, via: &str) -> (String, String) {
        (node.to_string(), via.to_string())
    }

    #[test]
    fn paths_are_shortest_and_cycles_end() {
        let edges = vec![
            e("b", "a"),
            e("c", "b"),
            e("d", "c"),
            e("d", "a"),
            e("a", "d"),
        ];
        assert_eq!(
            path_in("a", "d", &edges),
            Some(vec!["a".into(), "d".into()])
        );
        assert_eq!(
            path_in("b", "d", &edges),
            Some(vec!["b".into(), "c".into(), "d".into()])
        );
        assert_eq!(path_in("a", "z", &edges), None);
        assert_eq!(path_in("a", "a", &edges), Some(vec!["a".into()]));
    }
}
