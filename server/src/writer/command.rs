//! What the writer needs of a command, and nothing more: the writer knows no entity. The
//! commands module implements [`WriteCommand`] for its `Command`; the writer calls
//! [`WriteCommand::describe`] inside its transaction and turns the [`Effect`] into rows, events
//! and frames.
use std::future::Future;

use pm_shared::domain::limits::ValidationLimits;

use super::change::Effect;
use super::write_behind::WrittenItems;
use crate::access::Actor;
use crate::config::AuthMode;
use crate::error::AppResult;
use crate::store::members::Table;
use crate::store::Conn;

/// What a command may know of its surroundings while it describes its change.
pub struct Context<'a> {
    /// Desktop or token mode: whether permissions are checked.
    pub auth: AuthMode,
    pub actor: &'a Actor,
    /// The text and story-point maxima this server is configured with (`[validation]`).
    pub limits: &'a ValidationLimits,
    /// Work items as the group's waiting writes leave them, for a command that may wait
    /// (see [`WriteCommand::waits_behind`]); None for every other command.
    pub items: Option<&'a WrittenItems>,
}

/// The streams a command may write to, which the writer locks before the command reads
/// anything when several servers write to one database (PostgreSQL): two commands on one
/// project then run one after the other as on SQLite's one writer, whichever servers run them,
/// while commands on different projects do not wait for each other.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Streams (project ids, or "" for the workspace stream).
    pub streams: Vec<String>,
    /// Rows whose projects' streams it may write to (the writer reads them for a whole group
    /// at once).
    pub rows: Vec<(Table, String)>,
    /// A user whose running timer's project it may write to (starting a timer stops theirs).
    pub timer_of: Option<String>,
    /// The command may touch any stream (an import): it runs alone.
    pub everything: bool,
}

/// A mutation the writer can run.
pub trait WriteCommand: Send + Sync + 'static {
    /// The operation's name when the command is an idempotent create: a retry with the same
    /// (user, message_id) is answered with the first result instead of running again.
    fn idempotency_name(&self) -> Option<&'static str>;

    /// The work item this command reads and then only writes, when its writes may wait for the
    /// group's shared round trip (see `write_behind`): it must write nothing before it returns
    /// an [`Effect::Deferred`], and change no work item's parent.
    fn waits_behind(&self) -> Option<&str>;

    /// The streams it may write to (see [`Scope`]), named before anything is read or locked.
    fn scope(&self, actor: &Actor) -> Scope;

    /// Checks permission, validates against the database as the transaction sees it, and
    /// describes the change. It may write (most commands do) but never appends events.
    fn describe<'a, 'c: 'a>(
        self,
        conn: &'a mut Conn<'c>,
        context: Context<'a>,
    ) -> impl Future<Output = AppResult<Effect>> + Send + 'a;
}
