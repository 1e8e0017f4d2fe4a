//! Comment commands. Only a comment's author may edit or delete it, over WS and REST alike.
use crate::store::Conn;
use pm_shared::domain;
use pm_shared::domain::limits::ValidationLimits;
use pm_shared::domain::EntityType;
use pm_shared::proto::{self, Payload};

use super::{parse_id, track, Action, Actor, Change, Effect};
use crate::error::{AppError, AppResult};
use crate::store::rows::CommentRow;
use crate::store::{comments, queries, work_items};

fn change(
    project_id: String,
    comment_id: &str,
    action: Action,
    changes: Vec<proto::FieldChange>,
    event: Payload,
) -> Effect {
    Effect::Changed(Change {
        project_id,
        lifecycle: false,
        entity_type: EntityType::Comment,
        entity_id: comment_id.to_string(),
        action,
        changes,
        event,
    })
}

pub async fn create(
    conn: &mut Conn<'_>,
    actor: &Actor,
    req: proto::CreateCommentRequest,
    limits: &ValidationLimits,
) -> AppResult<Effect> {
    let content = domain::required_text("content", &req.content, limits.comment)?;
    let item_id = parse_id("work_item_id", &req.work_item_id)?;
    let item = queries::work_item(conn, &item_id)
        .await?
        .ok_or_else(|| AppError::not_found("Work item", &item_id))?;
    // Time-ordered: every client orders a work item's comments by (created_at, id), so those of
    // the same second keep the order they were posted in.
    let id = uuid::Uuid::now_v7().to_string();
    let now = pm_shared::now_secs();
    let row = CommentRow {
        id: id.clone(),
        work_item_id: item_id,
        content,
        created_at: now,
        updated_at: now,
        created_by: actor.user_id.clone(),
        updated_by: actor.user_id.clone(),
        deleted_at: None,
    };
    comments::insert(conn, &row).await?;
    let comment = load(conn, &id).await?;
    let mut changes = Vec::new();
    track(&mut changes, "content", None, Some(comment.content.clone()));
    let event = Payload::CommentCreated(proto::CommentCreated {
        comment: Some(comment),
        user_id: actor.user_id.clone(),
    });
    Ok(change(
        item.project_id,
        &id,
        Action::Created,
        changes,
        event,
    ))
}

pub async fn update(
    conn: &mut Conn<'_>,
    actor: &Actor,
    req: proto::UpdateCommentRequest,
    limits: &ValidationLimits,
) -> AppResult<Effect> {
    let content = domain::required_text("content", &req.content, limits.comment)?;
    let id = parse_id("comment_id", &req.comment_id)?;
    let current = load(conn, &id).await?;
    if current.created_by != actor.user_id {
        return Err(AppError::Unauthorized(
            "Cannot edit another user's comment".into(),
        ));
    }
    let item = queries::work_item(conn, &current.work_item_id)
        .await?
        .ok_or_else(|| AppError::not_found("Work item", &current.work_item_id))?;
    let mut changes = Vec::new();
    track(
        &mut changes,
        "content",
        Some(current.content.clone()),
        Some(content.clone()),
    );
    if changes.is_empty() {
        return Ok(Effect::Unchanged {
            project_id: item.project_id.clone(),
            current: Payload::CommentUpdated(proto::CommentUpdated {
                comment: Some(current),
                user_id: actor.user_id.clone(),
            }),
        });
    }
    comments::update_content(conn, &id, &content, pm_shared::now_secs(), &actor.user_id).await?;
    let comment = load(conn, &id).await?;
    let event = Payload::CommentUpdated(proto::CommentUpdated {
        comment: Some(comment),
        user_id: actor.user_id.clone(),
    });
    Ok(change(
        item.project_id,
        &id,
        Action::Updated,
        changes,
        event,
    ))
}

pub async fn delete(
    conn: &mut Conn<'_>,
    actor: &Actor,
    req: proto::DeleteCommentRequest,
) -> AppResult<Effect> {
    let id = parse_id("comment_id", &req.comment_id)?;
    let current = load(conn, &id).await?;
    if current.created_by != actor.user_id {
        return Err(AppError::Unauthorized(
            "Cannot delete another user's comment".into(),
        ));
    }
    // Its item's project, whether the item is still live or not.
    let project_id = work_items::project_of(conn, &current.work_item_id)
        .await?
        .ok_or_else(|| AppError::not_found("Work item", &current.work_item_id))?;
    comments::soft_delete(conn, &id, pm_shared::now_secs(), &actor.user_id).await?;
    let event = Payload::CommentDeleted(proto::CommentDeleted {
        comment_id: id.clone(),
        user_id: actor.user_id.clone(),
        work_item_id: current.work_item_id,
    });
    Ok(change(project_id, &id, Action::Deleted, Vec::new(), event))
}

async fn load(conn: &mut Conn<'_>, id: &str) -> AppResult<proto::Comment> {
    queries::comment(conn, id)
        .await?
        .map(|r| r.into_proto())
        .ok_or_else(|| AppError::not_found("Comment", id))
}
