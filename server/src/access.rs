//! Project membership and roles. In token mode every read, write and subscription of a project
//! needs a membership row with a sufficient role; in desktop mode everyone may do everything
//! (one trusted local user space), as in the reference's desktop mode.
use crate::store::Conn;

use crate::config::AuthMode;
use crate::error::{AppError, AppResult};
use crate::store::members;

/// Who is acting: the user a command or a read is for.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: String,
}

/// Roles, weakest first: a stronger role includes the weaker ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Viewer,
    Editor,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "editor" => Some(Role::Editor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    fn needed_for(self) -> &'static str {
        match self {
            Role::Viewer => "View",
            Role::Editor => "Edit",
            Role::Admin => "Admin",
        }
    }
}

/// Who reads, and under which rules.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub user_id: String,
    pub mode: AuthMode,
}

impl Viewer {
    /// The server itself (tests, maintenance): sees everything.
    pub fn system() -> Viewer {
        Viewer {
            user_id: String::new(),
            mode: AuthMode::Desktop,
        }
    }
}

pub async fn role_of(
    conn: &mut Conn<'_>,
    project_id: &str,
    user_id: &str,
) -> sqlx::Result<Option<Role>> {
    let role = members::role_name(conn, project_id, user_id).await?;
    Ok(role.as_deref().and_then(Role::parse))
}

/// What a caller asked for, as it named it: the kind of thing and the id it used. Someone who
/// may not see the project it belongs to is answered exactly as if it did not exist (the same
/// code, status and message), so an answer never tells an outsider that an id or key is taken.
#[derive(Debug, Clone, Copy)]
pub struct Named<'a> {
    pub kind: &'a str,
    pub id: &'a str,
}

impl<'a> Named<'a> {
    pub fn new(kind: &'a str, id: &'a str) -> Named<'a> {
        Named { kind, id }
    }

    /// The answer for "absent", and for "not yours".
    pub fn not_found(&self) -> AppError {
        AppError::not_found(self.kind, self.id)
    }
}

/// Checks that `user_id` holds at least `needed` on `project_id` (always true in desktop mode).
/// A non-member gets `named`'s NOT_FOUND; a member whose role is too weak gets UNAUTHORIZED
/// (they can see the project, so there is nothing to hide).
pub async fn require(
    conn: &mut Conn<'_>,
    mode: AuthMode,
    project_id: &str,
    user_id: &str,
    needed: Role,
    named: Named<'_>,
) -> AppResult<()> {
    if mode == AuthMode::Desktop {
        return Ok(());
    }
    judge(role_of(conn, project_id, user_id).await?, needed, named)
}

/// The verdict on a caller who holds `have` (None: not a member) and needs `needed`.
pub fn judge(have: Option<Role>, needed: Role, named: Named<'_>) -> AppResult<()> {
    match have {
        None => Err(named.not_found()),
        Some(have) if have < needed => Err(insufficient(needed, have)),
        Some(_) => Ok(()),
    }
}

pub fn insufficient(needed: Role, have: Role) -> AppError {
    AppError::Unauthorized(format!(
        "Insufficient permission. Required: {}, have: {}",
        needed.needed_for(),
        have.as_str()
    ))
}

/// The projects `user_id` may see (None: all of them, desktop mode).
pub async fn visible_projects(
    conn: &mut Conn<'_>,
    viewer: &Viewer,
) -> sqlx::Result<Option<Vec<String>>> {
    if viewer.mode == AuthMode::Desktop {
        return Ok(None);
    }
    Ok(Some(members::projects_of(conn, &viewer.user_id).await?))
}

/// Every (project, user) membership, for the hub's delivery filter.
pub async fn all_members(conn: &mut Conn<'_>) -> sqlx::Result<Vec<(String, String)>> {
    members::all_memberships(conn).await
}

/// The users who belong to a project.
pub async fn members_of(conn: &mut Conn<'_>, project_id: &str) -> sqlx::Result<Vec<String>> {
    members::user_ids(conn, project_id).await
}
