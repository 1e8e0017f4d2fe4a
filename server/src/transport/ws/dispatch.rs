//! What a request is (`classify`) and the answers to everything but writes (`answer_other`);
//! also the one-request entry point the frame fuzz target uses (`answer_frame`).

use bytes::Bytes;
use pm_shared::proto::{self, Payload, WebSocketMessage};
use prost::Message as _;

use crate::access::Viewer;
use crate::commands::{self, Actor, Command, Committed};
use crate::error::{AppError, AppResult};
use crate::hub::ConnId;
use crate::reads;
use crate::store::events::WORKSPACE;
use crate::transport::state::SharedState;

use super::outbox::Outbox;
use super::replies::{empty_reply, error_reply, reply, snapshot_reply};
use super::resume::subscribe;

/// A handled request: frames to send first (e.g. ResyncRequired), then the response.
pub(super) struct Handled {
    /// Framed.
    pub(super) before: Vec<Bytes>,
    /// None for a request answered only when refused (SetPresenceRequest: a heartbeat costs its
    /// sender nothing back).
    pub(super) response: Option<WebSocketMessage>,
}

impl From<WebSocketMessage> for Handled {
    fn from(response: WebSocketMessage) -> Self {
        Handled {
            before: Vec::new(),
            response: Some(response),
        }
    }
}

impl Handled {
    /// Accepted, and not answered.
    fn unanswered() -> Handled {
        Handled {
            before: Vec::new(),
            response: None,
        }
    }
}

/// What a request asks for: a write goes through the pipeline's queue, anything else is
/// answered by the connection's worker.
pub(super) enum Request {
    Write(Command),
    /// None: a frame without a payload, answered with an error.
    Other(Option<Payload>),
}

pub(super) fn classify(payload: Payload) -> Request {
    let command = match payload {
        Payload::CreateProjectRequest(r) => Command::CreateProject(r),
        Payload::UpdateProjectRequest(r) => Command::UpdateProject(r),
        Payload::DeleteProjectRequest(r) => Command::DeleteProject {
            project_id: r.project_id,
            expected_version: Some(r.expected_version),
        },
        Payload::CreateWorkItemRequest(r) => Command::CreateWorkItem(r),
        Payload::UpdateWorkItemRequest(r) => Command::UpdateWorkItem(r),
        Payload::DeleteWorkItemRequest(r) => Command::DeleteWorkItem(r),
        Payload::RestoreWorkItemRequest(r) => Command::RestoreWorkItem(r),
        Payload::CreateSprintRequest(r) => Command::CreateSprint(r),
        Payload::UpdateSprintRequest(r) => Command::UpdateSprint(r),
        Payload::DeleteSprintRequest(r) => Command::DeleteSprint(r),
        Payload::CreateCommentRequest(r) => Command::CreateComment(r),
        Payload::UpdateCommentRequest(r) => Command::UpdateComment(r),
        Payload::DeleteCommentRequest(r) => Command::DeleteComment(r),
        Payload::AddProjectMemberRequest(r) => Command::AddMember(r),
        Payload::RemoveProjectMemberRequest(r) => Command::RemoveMember(r),
        Payload::CreateDependencyRequest(r) => Command::CreateDependency(r),
        Payload::DeleteDependencyRequest(r) => Command::DeleteDependency(r),
        Payload::StartTimerRequest(r) => Command::StartTimer(r),
        Payload::StopTimerRequest(r) => Command::StopTimer(r),
        Payload::CreateTimeEntryRequest(r) => Command::CreateTimeEntry(r),
        Payload::UpdateTimeEntryRequest(r) => Command::UpdateTimeEntry(r),
        Payload::DeleteTimeEntryRequest(r) => Command::DeleteTimeEntry(r),
        other => return Request::Other(Some(other)),
    };
    Request::Write(command)
}

/// The answer to a committed write.
pub(super) fn committed_reply(id: &str, committed: Committed, epoch: &str) -> WebSocketMessage {
    let mut response = reply(id, committed.event);
    if committed.seq > 0 {
        response.seq = committed.seq;
        response.stream = committed.stream;
        response.epoch = epoch.to_string();
    }
    response
}

/// Answers a request that is not a write: reads, subscriptions (whose replays go to `out` as
/// the client reads them).
pub(super) async fn answer_other(
    state: &SharedState,
    conn: ConnId,
    actor: &Actor,
    out: &Outbox,
    id: &str,
    payload: Option<Payload>,
) -> AppResult<Handled> {
    let Some(payload) = payload else {
        return Err(unsupported());
    };
    let viewer = Viewer {
        user_id: actor.user_id.clone(),
        mode: state.config.auth,
    };
    match payload {
        Payload::Subscribe(s) => subscribe(state, &viewer, conn, out, s, id).await,
        Payload::Unsubscribe(u) => {
            for p in &u.project_ids {
                state.hub.unsubscribe(conn, p);
            }
            Ok(empty_reply(id).into())
        }
        Payload::ListProjectsRequest(_) => {
            // Whoever shows the project list gets project events from now on (the Blazor client
            // never subscribes to the workspace stream explicitly).
            if !state.hub.is_subscribed(conn, WORKSPACE) {
                state.hub.subscribe(conn, WORKSPACE, Vec::new());
            }
            let snap = reads::projects(&state.store, &viewer).await?;
            let payload = Payload::ProjectList(proto::ProjectList {
                projects: snap.items,
            });
            Ok(snapshot_reply(id, payload, &snap.stream, snap.seq, &state.store.epoch()).into())
        }
        Payload::GetWorkItemsRequest(r) => {
            let project = commands::parse_id("project_id", &r.project_id)?;
            let snap = reads::work_items(&state.store, &viewer, &project).await?;
            let payload = Payload::WorkItemsList(proto::WorkItemsList {
                work_items: snap.items,
                as_of_timestamp: pm_shared::now_secs(),
            });
            Ok(snapshot_reply(id, payload, &snap.stream, snap.seq, &state.store.epoch()).into())
        }
        Payload::GetSprintsRequest(r) => {
            let project = commands::parse_id("project_id", &r.project_id)?;
            let snap = reads::sprints(&state.store, &viewer, &project).await?;
            let payload = Payload::SprintsList(proto::SprintsList {
                sprints: snap.items,
            });
            Ok(snapshot_reply(id, payload, &snap.stream, snap.seq, &state.store.epoch()).into())
        }
        Payload::GetCommentsRequest(r) => {
            let item = commands::parse_id("work_item_id", &r.work_item_id)?;
            let snap = reads::comments(&state.store, &viewer, &item).await?;
            let payload = Payload::CommentsList(proto::CommentsList {
                comments: snap.items,
            });
            Ok(snapshot_reply(id, payload, &snap.stream, snap.seq, &state.store.epoch()).into())
        }
        Payload::GetProjectSnapshotRequest(r) if r.first_per_lane > 0 => {
            let project = commands::parse_id("project_id", &r.project_id)?;
            let preview =
                reads::project_preview(&state.store, &viewer, &project, r.first_per_lane).await?;
            Ok(reply(id, Payload::ProjectSnapshot(preview)).into())
        }
        Payload::GetProjectSnapshotRequest(r) => {
            let project = commands::parse_id("project_id", &r.project_id)?;
            let snap = reads::project_snapshot(&state.store, &viewer, &project).await?;
            let payload = Payload::ProjectSnapshot(snap.items);
            Ok(snapshot_reply(id, payload, &snap.stream, snap.seq, &state.store.epoch()).into())
        }
        Payload::ListUsersRequest(_) => {
            let users = reads::users(&state.store).await?;
            Ok(reply(id, Payload::UserList(proto::UserList { users })).into())
        }
        Payload::GetActivityLogRequest(r) => {
            let list = reads::activity(&state.store, &viewer, &r).await?;
            Ok(reply(id, Payload::ActivityLogList(list)).into())
        }
        Payload::GetDependenciesRequest(r) => {
            let item = commands::parse_id("work_item_id", &r.work_item_id)?;
            let snap = reads::dependencies(&state.store, &viewer, &item).await?;
            let payload = Payload::DependenciesList(snap.items);
            Ok(snapshot_reply(id, payload, &snap.stream, snap.seq, &state.store.epoch()).into())
        }
        Payload::GetTimeEntriesRequest(r) => {
            let item = commands::parse_id("work_item_id", &r.work_item_id)?;
            let snap = reads::time_entries(&state.store, &viewer, &item, r.limit, r.offset).await?;
            let payload = Payload::TimeEntriesList(snap.items);
            Ok(snapshot_reply(id, payload, &snap.stream, snap.seq, &state.store.epoch()).into())
        }
        Payload::GetRunningTimerRequest(_) => {
            let time_entry = reads::running_timer(&state.store, &actor.user_id).await?;
            let payload = Payload::RunningTimerResponse(proto::RunningTimerResponse { time_entry });
            Ok(reply(id, payload).into())
        }
        Payload::GetLlmContextRequest(r) => {
            let list = reads::llm_context(&state.store, &r).await?;
            Ok(reply(id, Payload::LlmContextList(list)).into())
        }
        Payload::SetPresenceRequest(r) => {
            match crate::presence::request::check(r)? {
                None => state.presence.leave(conn),
                Some(wanted) => {
                    if !state.presence.is_on(conn, &wanted.project) {
                        crate::presence::check_access(
                            &state.store,
                            &state.hub,
                            &actor.user_id,
                            &wanted.project,
                        )
                        .await?;
                    }
                    state.presence.set(conn, &actor.user_id, wanted);
                }
            }
            Ok(Handled::unanswered())
        }
        Payload::ListProjectMembersRequest(r) => {
            let project = commands::parse_id("project_id", &r.project_id)?;
            let members = reads::members(&state.store, &viewer, &project).await?;
            Ok(reply(
                id,
                Payload::ProjectMembersList(proto::ProjectMembersList { members }),
            )
            .into())
        }
        _ => Err(unsupported()),
    }
}

/// Answers one request and waits for it (the fuzz entry point; connections pipeline writes
/// instead, see `request_worker`).
async fn dispatch(
    state: &SharedState,
    conn: ConnId,
    actor: &Actor,
    msg: WebSocketMessage,
) -> AppResult<Handled> {
    let id = msg.message_id.as_str();
    let Some(payload) = msg.payload else {
        return Err(unsupported());
    };
    match classify(payload) {
        Request::Write(command) => {
            let committed = commands::execute(&state.writer, actor, Some(id), command).await?;
            Ok(committed_reply(id, committed, &state.store.epoch()).into())
        }
        Request::Other(payload) => {
            let out = Outbox::of_conn(state, conn);
            answer_other(state, conn, actor, &out, id, payload).await
        }
    }
}

/// Answers one binary frame exactly as a connection's worker does (decode, dispatch, reply),
/// without a socket: the entry point of the frame fuzz target (`fuzz/`). Subscriptions made by
/// the frame go to `conn`.
pub async fn answer_frame(
    state: &SharedState,
    conn: ConnId,
    actor: &Actor,
    frame: Bytes,
) -> WebSocketMessage {
    match WebSocketMessage::decode(frame) {
        Ok(msg) => {
            let id = msg.message_id.clone();
            match dispatch(state, conn, actor, msg).await {
                // What the connection would not send: an accepted presence request.
                Ok(handled) => handled.response.unwrap_or_else(|| empty_reply(&id)),
                Err(e) => error_reply(&id, &e),
            }
        }
        Err(_) => error_reply(
            "",
            &AppError::InvalidMessage("frame is not a valid pm.WebSocketMessage".into()),
        ),
    }
}

fn unsupported() -> AppError {
    AppError::InvalidMessage("Unsupported or missing message payload".into())
}
