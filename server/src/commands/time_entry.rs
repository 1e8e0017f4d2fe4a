//! Time entry commands: timers and manual entries. Only an entry's owner may stop, change or
//! delete it, over WS and REST alike. A user has one running timer: starting one stops the
//! previous one in the same transaction.
use crate::store::Conn;
use pm_shared::domain::EntityType;
use pm_shared::domain::{self, limits};
use pm_shared::proto::{self, Payload};

use super::{parse_id, track, Action, Actor, Batch, Change, Effect};
use crate::error::{AppError, AppResult};
use crate::store::rows::TimeEntryRow;
use crate::store::{queries, time_entries, work_items};

fn change(
    project_id: String,
    entry_id: &str,
    action: Action,
    changes: Vec<proto::FieldChange>,
    event: Payload,
) -> Change {
    Change {
        project_id,
        lifecycle: false,
        entity_type: EntityType::TimeEntry,
        entity_id: entry_id.to_string(),
        action,
        changes,
        event,
    }
}

fn description(value: Option<&str>) -> AppResult<Option<String>> {
    Ok(domain::optional_text(
        "description",
        value,
        limits::TIME_ENTRY_DESCRIPTION_MAX,
    )?)
}

pub async fn start(
    conn: &mut Conn<'_>,
    actor: &Actor,
    req: proto::StartTimerRequest,
) -> AppResult<Effect> {
    let description = description(req.description.as_deref())?;
    let item_id = parse_id("work_item_id", &req.work_item_id)?;
    let item = queries::work_item(conn, &item_id)
        .await?
        .ok_or_else(|| AppError::not_found("Work item", &item_id))?;
    let now = pm_shared::now_secs();

    // Stop the running timer first, in this transaction.
    let stopped = match queries::running_timer(conn, &actor.user_id).await? {
        Some(running) => {
            let entry = finish(conn, &running.id, running.started_at, now).await?;
            let project = project_of(conn, &entry.work_item_id).await?;
            Some((entry, project))
        }
        None => None,
    };

    let id = crate::ids::random_id();
    let row = TimeEntryRow {
        id: id.clone(),
        work_item_id: item_id.clone(),
        user_id: actor.user_id.clone(),
        started_at: now,
        ended_at: None,
        duration_seconds: None,
        description: description.clone(),
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    time_entries::insert(conn, &row).await?;
    let entry = load(conn, &id).await?;
    let mut changes = Vec::new();
    track(&mut changes, "work_item_id", None, Some(item_id));
    track(&mut changes, "started_at", None, Some(now.to_string()));
    track(&mut changes, "description", None, description);
    let started = |stopped_entry| {
        Payload::TimerStarted(proto::TimerStarted {
            time_entry: Some(entry.clone()),
            user_id: actor.user_id.clone(),
            stopped_entry,
        })
    };
    let Some((stopped, stopped_project)) = stopped else {
        return Ok(Effect::Changed(change(
            item.project_id,
            &id,
            Action::Created,
            changes,
            started(None),
        )));
    };
    let stop_change = change(
        stopped_project.clone(),
        &stopped.id,
        Action::Updated,
        stop_changes(&stopped),
        Payload::TimerStopped(proto::TimerStopped {
            time_entry: Some(stopped.clone()),
            user_id: actor.user_id.clone(),
        }),
    );
    let start_change = change(
        item.project_id.clone(),
        &id,
        Action::Created,
        changes,
        started(Some(stopped)),
    );
    if stopped_project == item.project_id {
        // One event: TimerStarted carries the stopped entry. The stop is still logged.
        super::log_activity(conn, actor, &stop_change).await?;
        Ok(Effect::Changed(start_change))
    } else {
        // The stopped timer's project hears of it in its own stream.
        Ok(Effect::Batch(Batch {
            changes: vec![start_change, stop_change],
            response: None,
        }))
    }
}

pub async fn stop(
    conn: &mut Conn<'_>,
    actor: &Actor,
    req: proto::StopTimerRequest,
) -> AppResult<Effect> {
    let id = parse_id("time_entry_id", &req.time_entry_id)?;
    let current = load(conn, &id).await?;
    if current.user_id != actor.user_id {
        return Err(AppError::Unauthorized(
            "Cannot stop another user's timer".into(),
        ));
    }
    if current.ended_at.is_some() {
        return Err(AppError::validation(
            "time_entry_id",
            "Timer is not running",
        ));
    }
    let project = project_of(conn, &current.work_item_id).await?;
    let entry = finish(conn, &id, current.started_at, pm_shared::now_secs()).await?;
    let changes = stop_changes(&entry);
    let event = Payload::TimerStopped(proto::TimerStopped {
        time_entry: Some(entry),
        user_id: actor.user_id.clone(),
    });
    Ok(Effect::Changed(change(
        project,
        &id,
        Action::Updated,
        changes,
        event,
    )))
}

pub async fn create(
    conn: &mut Conn<'_>,
    actor: &Actor,
    req: proto::CreateTimeEntryRequest,
) -> AppResult<Effect> {
    let now = pm_shared::now_secs();
    let duration = domain::time_entry_span(req.started_at, req.ended_at, now)?;
    let description = description(req.description.as_deref())?;
    let item_id = parse_id("work_item_id", &req.work_item_id)?;
    let item = queries::work_item(conn, &item_id)
        .await?
        .ok_or_else(|| AppError::not_found("Work item", &item_id))?;
    let id = crate::ids::random_id();
    let row = TimeEntryRow {
        id: id.clone(),
        work_item_id: item_id.clone(),
        user_id: actor.user_id.clone(),
        started_at: req.started_at,
        ended_at: Some(req.ended_at),
        duration_seconds: Some(duration),
        description: description.clone(),
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    time_entries::insert(conn, &row).await?;
    let entry = load(conn, &id).await?;
    let mut changes = Vec::new();
    track(&mut changes, "work_item_id", None, Some(item_id));
    track(
        &mut changes,
        "started_at",
        None,
        Some(req.started_at.to_string()),
    );
    track(
        &mut changes,
        "ended_at",
        None,
        Some(req.ended_at.to_string()),
    );
    track(
        &mut changes,
        "duration_seconds",
        None,
        Some(duration.to_string()),
    );
    track(&mut changes, "description", None, description);
    let event = Payload::TimeEntryCreated(proto::TimeEntryCreated {
        time_entry: Some(entry),
        user_id: actor.user_id.clone(),
    });
    Ok(Effect::Changed(change(
        item.project_id,
        &id,
        Action::Created,
        changes,
        event,
    )))
}

pub async fn update(
    conn: &mut Conn<'_>,
    actor: &Actor,
    req: proto::UpdateTimeEntryRequest,
) -> AppResult<Effect> {
    let id = parse_id("time_entry_id", &req.time_entry_id)?;
    let current = load(conn, &id).await?;
    if current.user_id != actor.user_id {
        return Err(AppError::Unauthorized(
            "Cannot update another user's time entry".into(),
        ));
    }
    let description = match req.description.as_deref() {
        Some(d) => description(Some(d))?,
        None => current.description.clone(),
    };
    // The time range rule for whatever the client sends (a running timer's new start included).
    if let Some(t) = req.started_at {
        domain::timestamp("started_at", t)?;
    }
    if let Some(t) = req.ended_at {
        domain::timestamp("ended_at", t)?;
    }
    let started_at = req.started_at.unwrap_or(current.started_at);
    let ended_at = req.ended_at.or(current.ended_at);
    let now = pm_shared::now_secs();
    let times_changed = req.started_at.is_some() || req.ended_at.is_some();
    let duration = match ended_at {
        // Only the text changes: the stored times stand (a timer stopped within its first
        // second keeps its zero duration).
        Some(_) if !times_changed => current.duration_seconds.map(i64::from),
        // Setting an end on a running timer stops it; either way the full rules apply.
        Some(end) => Some(domain::time_entry_span(started_at, end, now)?),
        None => {
            if started_at > now.saturating_add(limits::CLOCK_SKEW_SECS) {
                return Err(AppError::validation(
                    "started_at",
                    "started_at cannot be in the future",
                ));
            }
            None
        }
    };
    let project = project_of(conn, &current.work_item_id).await?;
    let mut changes = Vec::new();
    let num = |v: Option<i64>| v.map(|x| x.to_string());
    track(
        &mut changes,
        "started_at",
        num(Some(current.started_at)),
        num(Some(started_at)),
    );
    track(
        &mut changes,
        "ended_at",
        num(current.ended_at),
        num(ended_at),
    );
    track(
        &mut changes,
        "duration_seconds",
        num(current.duration_seconds.map(i64::from)),
        num(duration),
    );
    track(
        &mut changes,
        "description",
        current.description.clone(),
        description.clone(),
    );
    if changes.is_empty() {
        return Ok(Effect::Unchanged {
            project_id: project.clone(),
            current: Payload::TimeEntryUpdated(proto::TimeEntryUpdated {
                time_entry: Some(current),
                user_id: actor.user_id.clone(),
            }),
        });
    }
    let next = TimeEntryRow {
        id: id.clone(),
        work_item_id: current.work_item_id.clone(),
        user_id: current.user_id.clone(),
        started_at,
        ended_at,
        duration_seconds: duration,
        description,
        created_at: current.created_at,
        updated_at: now,
        deleted_at: None,
    };
    time_entries::update(conn, &next).await?;
    let entry = load(conn, &id).await?;
    let event = Payload::TimeEntryUpdated(proto::TimeEntryUpdated {
        time_entry: Some(entry),
        user_id: actor.user_id.clone(),
    });
    Ok(Effect::Changed(change(
        project,
        &id,
        Action::Updated,
        changes,
        event,
    )))
}

pub async fn delete(
    conn: &mut Conn<'_>,
    actor: &Actor,
    req: proto::DeleteTimeEntryRequest,
) -> AppResult<Effect> {
    let id = parse_id("time_entry_id", &req.time_entry_id)?;
    let current = load(conn, &id).await?;
    if current.user_id != actor.user_id {
        return Err(AppError::Unauthorized(
            "Cannot delete another user's time entry".into(),
        ));
    }
    let project = project_of(conn, &current.work_item_id).await?;
    time_entries::soft_delete(conn, &id, pm_shared::now_secs()).await?;
    let event = Payload::TimeEntryDeleted(proto::TimeEntryDeleted {
        time_entry_id: id.clone(),
        work_item_id: current.work_item_id,
        user_id: actor.user_id.clone(),
    });
    Ok(Effect::Changed(change(
        project,
        &id,
        Action::Deleted,
        Vec::new(),
        event,
    )))
}

/// Stops a running entry at `now` and returns it. The duration is computed without overflow even
/// for a start an older server let through (see `domain::duration_clamped`).
async fn finish(
    conn: &mut Conn<'_>,
    id: &str,
    started_at: i64,
    now: i64,
) -> AppResult<proto::TimeEntry> {
    // A start edited into the (near) future must not make a negative duration.
    let ended_at = now.max(started_at);
    let duration = domain::duration_clamped(started_at, ended_at);
    time_entries::finish(conn, id, ended_at, duration, now).await?;
    load(conn, id).await
}

fn stop_changes(entry: &proto::TimeEntry) -> Vec<proto::FieldChange> {
    let mut changes = Vec::new();
    track(
        &mut changes,
        "ended_at",
        None,
        entry.ended_at.map(|t| t.to_string()),
    );
    track(
        &mut changes,
        "duration_seconds",
        None,
        entry.duration_seconds.map(|d| d.to_string()),
    );
    changes
}

/// The project of a work item, deleted items included: a timer on a card deleted since must
/// still be stoppable.
async fn project_of(conn: &mut Conn<'_>, work_item_id: &str) -> AppResult<String> {
    work_items::project_of(conn, work_item_id)
        .await?
        .ok_or_else(|| AppError::not_found("Work item", work_item_id))
}

async fn load(conn: &mut Conn<'_>, id: &str) -> AppResult<proto::TimeEntry> {
    queries::time_entry(conn, id)
        .await?
        .map(|r| r.into_proto())
        .ok_or_else(|| AppError::not_found("Time entry", id))
}
