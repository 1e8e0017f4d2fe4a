//! The commands: every mutation the server knows, and what each one changes.
//!
//! A command is a plain description of a change: its module checks permission, validates
//! against the database as the writer's transaction sees it, writes the entity, and says what
//! changed (a [`Change`]). It never appends events, never commits and never publishes: the
//! writer (`crate::writer`) does that for every command the same way, so none can forget to.
//! Whether it arrived over WebSocket or REST, every write runs through [`execute`].
mod authorize;
pub mod comment;
pub mod dependency;
pub mod import;
pub mod import_plan;
pub mod member;
pub mod project;
pub mod sprint;
pub mod time_entry;
pub mod work_item;

use crate::store::Conn;
use pm_shared::proto::{self, FieldChange};

pub use crate::access::Actor;
use crate::access::{self, Role};
use crate::error::{AppError, AppResult};
pub(crate) use crate::store::pipeline::{ensure_user, ENSURE_USER_SQL};
use crate::writer::Writer;
pub use crate::writer::{
    log_activity, Action, Batch, Bind, Change, Committed, Context, DeferredWrite, Effect,
    WriteCommand,
};

/// Every mutation the server knows.
#[derive(Debug, Clone)]
pub enum Command {
    CreateProject(proto::CreateProjectRequest),
    UpdateProject(proto::UpdateProjectRequest),
    /// `expected_version` is None over REST, whose DELETE carries no version.
    DeleteProject {
        project_id: String,
        expected_version: Option<i32>,
    },
    CreateWorkItem(proto::CreateWorkItemRequest),
    UpdateWorkItem(proto::UpdateWorkItemRequest),
    DeleteWorkItem(proto::DeleteWorkItemRequest),
    /// pm: undelete.
    RestoreWorkItem(proto::RestoreWorkItemRequest),
    CreateSprint(proto::CreateSprintRequest),
    UpdateSprint(proto::UpdateSprintRequest),
    DeleteSprint(proto::DeleteSprintRequest),
    CreateComment(proto::CreateCommentRequest),
    UpdateComment(proto::UpdateCommentRequest),
    DeleteComment(proto::DeleteCommentRequest),
    AddMember(proto::AddProjectMemberRequest),
    RemoveMember(proto::RemoveProjectMemberRequest),
    CreateDependency(proto::CreateDependencyRequest),
    DeleteDependency(proto::DeleteDependencyRequest),
    StartTimer(proto::StartTimerRequest),
    StopTimer(proto::StopTimerRequest),
    CreateTimeEntry(proto::CreateTimeEntryRequest),
    UpdateTimeEntry(proto::UpdateTimeEntryRequest),
    DeleteTimeEntry(proto::DeleteTimeEntryRequest),
    /// Sync import: a whole ExportData merged in one transaction (one event per change),
    /// tolerant or strict about rows it cannot store.
    Import(Box<import::Import>),
}

impl Command {
    /// Creates, and updates that ask for it, are idempotent by (user, message_id): a retry
    /// returns the first result.
    fn operation(&self) -> Option<&'static str> {
        match self {
            Command::CreateProject(_) => Some("create_project"),
            Command::CreateWorkItem(_) => Some("create_work_item"),
            Command::CreateSprint(_) => Some("create_sprint"),
            Command::CreateComment(_) => Some("create_comment"),
            Command::CreateDependency(_) => Some("create_dependency"),
            Command::StartTimer(_) => Some("start_timer"),
            Command::StopTimer(_) => Some("stop_timer"),
            Command::CreateTimeEntry(_) => Some("create_time_entry"),
            // An update asked to be (a replayed offline edit must never apply twice).
            Command::UpdateWorkItem(r) if r.idempotent => Some("update_work_item"),
            _ => None,
        }
    }
}

impl WriteCommand for Command {
    fn idempotency_name(&self) -> Option<&'static str> {
        self.operation()
    }

    fn waits_behind(&self) -> Option<&str> {
        match self {
            // An idempotent update records its answer in its own tail, which a waiting write
            // does not have.
            Command::UpdateWorkItem(r) if !r.update_parent && !r.idempotent => {
                Some(r.work_item_id.as_str())
            }
            _ => None,
        }
    }

    fn scope(&self, actor: &Actor) -> crate::writer::Scope {
        authorize::scope(actor, self)
    }

    fn describe<'a, 'c: 'a>(
        self,
        conn: &'a mut Conn<'c>,
        context: Context<'a>,
    ) -> impl std::future::Future<Output = AppResult<Effect>> + Send + 'a {
        describe(conn, context, self)
    }
}

/// Runs one command through the writer and waits for its answer. `request_id` is the WS
/// message_id (or REST Idempotency-Key), used to make creates idempotent per user. The command
/// waits its turn and may be committed together with others (see `crate::writer`); it
/// succeeds or fails on its own either way.
pub async fn execute(
    writer: &Writer<Command>,
    actor: &Actor,
    request_id: Option<&str>,
    command: Command,
) -> AppResult<Committed> {
    writer.execute(actor, request_id, command).await
}

/// Permission first, on the database as it is before this command writes anything; then the
/// command's own module.
async fn describe(tx: &mut Conn<'_>, context: Context<'_>, command: Command) -> AppResult<Effect> {
    let Context {
        auth,
        actor,
        items,
        limits,
    } = context;
    authorize::authorize(tx, auth, actor, &command).await?;
    let import = matches!(command, Command::Import(_));
    let effect = match command {
        Command::CreateProject(r) => project::create(tx, actor, r, limits).await?,
        Command::UpdateProject(r) => project::update(tx, actor, r, limits).await?,
        Command::DeleteProject {
            project_id,
            expected_version,
        } => project::delete(tx, actor, &project_id, expected_version).await?,
        Command::CreateWorkItem(r) => work_item::create(tx, actor, r, limits).await?,
        Command::UpdateWorkItem(r) => work_item::update(tx, actor, r, items, limits).await?,
        Command::DeleteWorkItem(r) => work_item::delete(tx, actor, r).await?,
        Command::RestoreWorkItem(r) => work_item::restore(tx, actor, r).await?,
        Command::CreateSprint(r) => sprint::create(tx, actor, r, limits).await?,
        Command::UpdateSprint(r) => sprint::update(tx, actor, r, limits).await?,
        Command::DeleteSprint(r) => sprint::delete(tx, actor, r).await?,
        Command::CreateComment(r) => comment::create(tx, actor, r, limits).await?,
        Command::UpdateComment(r) => comment::update(tx, actor, r, limits).await?,
        Command::DeleteComment(r) => comment::delete(tx, actor, r).await?,
        Command::AddMember(r) => member::add(tx, actor, r).await?,
        Command::RemoveMember(r) => member::remove(tx, actor, r).await?,
        Command::CreateDependency(r) => dependency::create(tx, actor, r).await?,
        Command::DeleteDependency(r) => dependency::delete(tx, actor, r).await?,
        Command::StartTimer(r) => time_entry::start(tx, actor, r).await?,
        Command::StopTimer(r) => time_entry::stop(tx, actor, r).await?,
        Command::CreateTimeEntry(r) => time_entry::create(tx, actor, r).await?,
        Command::UpdateTimeEntry(r) => time_entry::update(tx, actor, r).await?,
        Command::DeleteTimeEntry(r) => time_entry::delete(tx, actor, r).await?,
        Command::Import(request) => import::run(tx, actor, *request, limits).await?,
    };
    // An import may also reach rows of projects its document does not name (a comment on a
    // stored item, say): it needs admin on every project it changed. Imports add no members to
    // projects that existed before them, so this reads what was there before.
    if let (true, Effect::Batch(batch)) = (import, &effect) {
        let mut touched: Vec<&str> = batch
            .changes
            .iter()
            .map(|c| c.project_id.as_str())
            .collect();
        touched.sort_unstable();
        touched.dedup();
        for project in touched {
            let named = access::Named::new("Project", project);
            access::require(tx, auth, project, &actor.user_id, Role::Admin, named).await?;
        }
    }
    Ok(effect)
}

/// Records `field` as changed when `old != new`.
pub fn track(
    changes: &mut Vec<FieldChange>,
    field: &str,
    old: Option<String>,
    new: Option<String>,
) {
    if old != new {
        changes.push(FieldChange {
            field_name: field.to_string(),
            old_value: old,
            new_value: new,
        });
    }
}

pub use crate::ids::parse_id;

/// Compares the caller's expected version with the stored one.
pub fn check_version(expected: i32, current: i64) -> AppResult<()> {
    if i64::from(expected) == current {
        Ok(())
    } else {
        Err(AppError::VersionConflict {
            current_version: current,
        })
    }
}
