//! Permission, decided before a command runs.
//!
//! Every check reads the database as it was before the command: nothing the command writes (a
//! membership it adds, a role it changes, a row it deletes) can vouch for it. And nothing the
//! command would say (a version conflict, a child count, a validation error naming a row) is
//! said to someone who may not act: an outsider gets exactly the NOT_FOUND an absent id gets.
//!
//! Desktop mode trusts everyone and reads nothing here.
use crate::store::Conn;

use super::{parse_id, Actor, Command};
use crate::access::{self, Named, Role};
use crate::config::AuthMode;
use crate::error::AppResult;
use crate::store::events::WORKSPACE;
use crate::store::members::{self, Table};
use crate::writer::Scope;

/// A row a command acts on, by the table that holds it: each resolves to its project.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Project(String),
    WorkItem(String),
    Sprint(String),
    Comment(String),
    Dependency(String),
    TimeEntry(String),
}

impl Target {
    /// What a caller calls it, its id, and its table.
    fn parts(&self) -> (&'static str, &str, Table) {
        match self {
            Target::Project(id) => ("Project", id, Table::Projects),
            Target::WorkItem(id) => ("Work item", id, Table::WorkItems),
            Target::Sprint(id) => ("Sprint", id, Table::Sprints),
            Target::Comment(id) => ("Comment", id, Table::Comments),
            Target::Dependency(id) => ("Dependency", id, Table::Dependencies),
            Target::TimeEntry(id) => ("Time entry", id, Table::TimeEntries),
        }
    }
}

/// One thing the actor must hold.
#[derive(Debug, PartialEq, Eq)]
struct Need {
    target: Target,
    role: Role,
    /// An absent target is not an error here (an import creates what it does not find).
    absent_ok: bool,
}

fn need(target: Target, role: Role) -> Need {
    Need {
        target,
        role,
        absent_ok: false,
    }
}

/// A non-empty optional id ("" clears a reference, and needs nothing).
fn named_id(field: &'static str, value: Option<&str>) -> AppResult<Option<String>> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) => Ok(Some(parse_id(field, v)?)),
        None => Ok(None),
    }
}

/// What `command` needs, on which rows.
fn needs(command: &Command, actor: &Actor) -> AppResult<Vec<Need>> {
    use Role::{Admin, Editor, Viewer};
    let project = |field, id: &str| parse_id(field, id).map(Target::Project);
    let item = |field, id: &str| parse_id(field, id).map(Target::WorkItem);
    Ok(match command {
        Command::CreateProject(_) => Vec::new(),
        Command::UpdateProject(r) => vec![need(project("project_id", &r.project_id)?, Admin)],
        Command::DeleteProject { project_id, .. } => {
            vec![need(project("project_id", project_id)?, Admin)]
        }
        Command::CreateWorkItem(r) => {
            let mut needs = vec![need(project("project_id", &r.project_id)?, Editor)];
            if let Some(parent) = named_id("parent_id", r.parent_id.as_deref())? {
                needs.push(need(Target::WorkItem(parent), Viewer));
            }
            needs
        }
        Command::UpdateWorkItem(r) => {
            let mut needs = vec![need(item("work_item_id", &r.work_item_id)?, Editor)];
            if let Some(sprint) = named_id("sprint_id", r.sprint_id.as_deref())? {
                needs.push(need(Target::Sprint(sprint), Viewer));
            }
            if r.update_parent {
                if let Some(parent) = named_id("parent_id", r.parent_id.as_deref())? {
                    needs.push(need(Target::WorkItem(parent), Viewer));
                }
            }
            needs
        }
        Command::DeleteWorkItem(r) => vec![need(item("work_item_id", &r.work_item_id)?, Admin)],
        // Who may delete may bring back.
        Command::RestoreWorkItem(r) => vec![need(item("work_item_id", &r.work_item_id)?, Admin)],
        Command::CreateSprint(r) => vec![need(project("project_id", &r.project_id)?, Editor)],
        Command::UpdateSprint(r) => vec![need(
            Target::Sprint(parse_id("sprint_id", &r.sprint_id)?),
            Editor,
        )],
        Command::DeleteSprint(r) => vec![need(
            Target::Sprint(parse_id("sprint_id", &r.sprint_id)?),
            Admin,
        )],
        Command::CreateComment(r) => vec![need(item("work_item_id", &r.work_item_id)?, Editor)],
        Command::UpdateComment(r) => vec![need(
            Target::Comment(parse_id("comment_id", &r.comment_id)?),
            Editor,
        )],
        Command::DeleteComment(r) => vec![need(
            Target::Comment(parse_id("comment_id", &r.comment_id)?),
            Editor,
        )],
        Command::AddMember(r) => vec![need(project("project_id", &r.project_id)?, Admin)],
        Command::RemoveMember(r) => {
            // Anyone may leave a project (the last admin is kept by the command itself);
            // removing someone else takes an admin.
            let leaving = parse_id("user_id", &r.user_id)? == actor.user_id;
            let role = if leaving { Viewer } else { Admin };
            vec![need(project("project_id", &r.project_id)?, role)]
        }
        Command::CreateDependency(r) => vec![
            need(item("blocking_item_id", &r.blocking_item_id)?, Editor),
            need(item("blocked_item_id", &r.blocked_item_id)?, Editor),
        ],
        Command::DeleteDependency(r) => vec![need(
            Target::Dependency(parse_id("dependency_id", &r.dependency_id)?),
            Editor,
        )],
        Command::StartTimer(r) => vec![need(item("work_item_id", &r.work_item_id)?, Editor)],
        Command::CreateTimeEntry(r) => vec![need(item("work_item_id", &r.work_item_id)?, Editor)],
        Command::StopTimer(r) => vec![need(
            Target::TimeEntry(parse_id("time_entry_id", &r.time_entry_id)?),
            Editor,
        )],
        Command::UpdateTimeEntry(r) => vec![need(
            Target::TimeEntry(parse_id("time_entry_id", &r.time_entry_id)?),
            Editor,
        )],
        Command::DeleteTimeEntry(r) => vec![need(
            Target::TimeEntry(parse_id("time_entry_id", &r.time_entry_id)?),
            Editor,
        )],
        Command::Import(request) => {
            let data = &request.data;
            // Every existing project the document names may be overwritten: admins only. A
            // project it does not find is created, with the importer as its admin. Ids that are
            // not UUIDs are left to the import's own row checks.
            let named = data
                .projects
                .iter()
                .map(|p| p.id.as_str())
                .chain(data.sprints.iter().map(|s| s.project_id.as_str()))
                .chain(data.work_items.iter().map(|w| w.project_id.as_str()));
            let mut ids: Vec<String> = named
                .filter_map(|id| uuid::Uuid::parse_str(id.trim()).ok())
                .map(|u| u.to_string())
                .collect();
            ids.sort_unstable();
            ids.dedup();
            ids.into_iter()
                .map(|id| Need {
                    target: Target::Project(id),
                    role: Admin,
                    absent_ok: true,
                })
                .collect()
        }
    })
}

/// Refuses `command` unless `actor` may run it (token mode), judged on the database as it is
/// before the command runs.
pub(crate) async fn authorize(
    conn: &mut Conn<'_>,
    mode: AuthMode,
    actor: &Actor,
    command: &Command,
) -> AppResult<()> {
    if mode == AuthMode::Desktop {
        return Ok(());
    }
    for need in needs(command, actor)? {
        let (kind, id, table) = need.target.parts();
        let row = members::project_and_role(conn, table, id, &actor.user_id).await?;
        let named = Named::new(kind, id);
        match row {
            None if need.absent_ok => {}
            None => return Err(named.not_found()),
            Some((_, role)) => {
                access::judge(role.as_deref().and_then(Role::parse), need.role, named)?
            }
        }
    }
    Ok(())
}

/// The streams `command` may write to, for servers that share a database: the writer locks
/// them before the command reads anything (see `crate::writer::Scope`). Named by the targets
/// permission is checked on, which name every row a command acts on; the writer reads their
/// projects (an id that names nothing locks nothing: the command itself then refuses it).
pub(crate) fn scope(actor: &Actor, command: &Command) -> Scope {
    let mut scope = Scope::default();
    match command {
        // Creates projects anywhere: runs alone.
        Command::Import(_) => {
            scope.everything = true;
            return scope;
        }
        // Project lifecycle events are on the workspace stream; a new project's key must be
        // unique among all.
        Command::CreateProject(_) | Command::UpdateProject(_) | Command::DeleteProject { .. } => {
            scope.streams.push(WORKSPACE.to_string());
        }
        // Starting a timer stops the user's running one, wherever it is.
        Command::StartTimer(_) => scope.timer_of = Some(actor.user_id.clone()),
        _ => {}
    }
    // Ids that fail to parse are the command's to refuse.
    for need in needs(command, actor).unwrap_or_default() {
        let (_, id, table) = need.target.parts();
        match table {
            Table::Projects => scope.streams.push(id.to_string()),
            _ => scope.rows.push((table, id.to_string())),
        }
    }
    scope
}

#[cfg(test)]
mod tests {
    use pm_shared::proto;

    use super::*;

    const ME: &str = "aaaaaaaa-0000-4000-8000-00000000000a";
    const OTHER: &str = "bbbbbbbb-0000-4000-8000-00000000000b";
    const PROJECT: &str = "cccccccc-0000-4000-8000-00000000000c";

    fn actor() -> Actor {
        Actor { user_id: ME.into() }
    }

    fn remove(user: &str) -> Command {
        Command::RemoveMember(proto::RemoveProjectMemberRequest {
            project_id: PROJECT.into(),
            user_id: user.into(),
        })
    }

    #[test]
    fn leaving_takes_any_role_and_removing_others_takes_admin() {
        let role = |c: &Command| needs(c, &actor()).unwrap()[0].role;
        assert_eq!(role(&remove(ME)), Role::Viewer);
        assert_eq!(role(&remove(OTHER)), Role::Admin);
        let add_self = Command::AddMember(proto::AddProjectMemberRequest {
            project_id: PROJECT.into(),
            user_id: ME.into(),
            role: "admin".into(),
        });
        assert_eq!(role(&add_self), Role::Admin);
    }

    #[test]
    fn references_to_other_rows_need_sight_of_them() {
        let update = Command::UpdateWorkItem(proto::UpdateWorkItemRequest {
            work_item_id: PROJECT.into(),
            sprint_id: Some(OTHER.into()),
            parent_id: Some(ME.into()),
            update_parent: true,
            ..Default::default()
        });
        let got = needs(&update, &actor()).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[1], need(Target::Sprint(OTHER.into()), Role::Viewer));
        assert_eq!(got[2], need(Target::WorkItem(ME.into()), Role::Viewer));
        // "" clears a reference and names nothing.
        let clear = Command::UpdateWorkItem(proto::UpdateWorkItemRequest {
            work_item_id: PROJECT.into(),
            sprint_id: Some(String::new()),
            parent_id: Some(String::new()),
            update_parent: true,
            ..Default::default()
        });
        assert_eq!(needs(&clear, &actor()).unwrap().len(), 1);
    }
}
