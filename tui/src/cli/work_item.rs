//! `pm work-item …`: POST /api/v1/work-items, GET/PUT/DELETE /api/v1/work-items/{id|KEY-N},
//! GET /api/v1/projects/{id|key}/work-items.
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use pm_client::rest_client::{RestClient, WorkItemFilter};
use pm_shared::domain::{ItemType, Priority, Status};
use serde_json::{json, Value};

use super::toml_file::WorkItemToml;
use super::{one_of, put_opt};

fn item_types() -> clap::builder::PossibleValuesParser {
    one_of(ItemType::ALL.iter().map(|t| t.as_str()))
}
fn statuses() -> clap::builder::PossibleValuesParser {
    one_of(Status::ALL.iter().map(|s| s.as_str()))
}
fn priorities() -> clap::builder::PossibleValuesParser {
    one_of(Priority::ALL.iter().map(|p| p.as_str()))
}

#[derive(Debug, Subcommand)]
pub enum WorkItemCommand {
    /// Create an epic, story or task
    #[command(after_help = "Examples:\n  \
        pm work-item create --project-id PM --type task --title \"Test\"\n  \
        pm work-item create --project-id PM --type epic --title \"Checkout\" --priority high\n  \
        pm work-item create --project-id PM --type story --title \"Pay by card\" --parent-id PM-1\n  \
        pm work-item create --from-toml item.toml --title \"Overrides the file's title\"")]
    Create(CreateArgs),
    /// Show one work item
    #[command(after_help = "Examples:\n  pm work-item get PM-12\n  \
                            pm work-item get 0b6c1f9e-5d8a-4c1e-9f3a-2f1d7e6a9b10 --pretty\n  \
                            pm work-item get PM-12 --output-toml pm-12.toml   (edit, then update --from-toml)")]
    Get {
        /// Work item UUID or key (PM-12)
        #[arg(value_name = "ID|KEY-N")]
        id: String,
    },
    /// List a project's work items (done items only with --include-done)
    #[command(after_help = "Examples:\n  \
        pm work-item list PM --format table\n  \
        pm work-item list PM --type story --status in_progress\n  \
        pm work-item list PM --parent-id PM-1\n  \
        pm work-item list PM --orphaned --include-done\n  \
        pm work-item list PM --descendants-of PM-1")]
    List(ListArgs),
    /// Change a work item; --expected-version is the version you last saw
    #[command(after_help = "Examples:\n  \
        pm work-item update PM-12 --status in_progress --expected-version 1\n  \
        pm work-item update PM-12 --title \"Renamed\" --priority high --story-points 5 --expected-version 2\n  \
        pm work-item update PM-12 --parent-id PM-3 --expected-version 3\n  \
        pm work-item update PM-12 --assignee-id \"\" --expected-version 4   (unassign)\n  \
        pm work-item update PM-12 --from-toml pm-12.toml --version 5")]
    Update(UpdateArgs),
    /// Delete a work item (it must have no children)
    #[command(after_help = "Examples:\n  pm work-item delete PM-12")]
    Delete {
        /// Work item UUID or key (PM-12)
        #[arg(value_name = "ID|KEY-N")]
        id: String,
    },
    /// Bring a deleted work item back: the same key, with its comments, links and time
    #[command(after_help = "Examples:\n  pm work-item restore PM-12")]
    Restore {
        /// Work item UUID or key (PM-12)
        #[arg(value_name = "ID|KEY-N")]
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Project UUID or key (required unless the --from-toml file has project_id)
    #[arg(long, value_name = "ID|KEY", required_unless_present = "from_toml")]
    pub project_id: Option<String>,
    /// epic, story or task (required unless the --from-toml file has type)
    #[arg(
        long = "type",
        value_name = "TYPE",
        value_parser = item_types(),
        required_unless_present = "from_toml"
    )]
    pub item_type: Option<String>,
    /// Title (required unless the --from-toml file has title)
    #[arg(long, required_unless_present = "from_toml", value_parser = one_line)]
    pub title: Option<String>,
    /// Description
    #[arg(long)]
    pub description: Option<String>,
    /// Parent: an epic for a story, a story for a task (UUID or key)
    #[arg(long, value_name = "ID|KEY-N")]
    pub parent_id: Option<String>,
    /// Initial status [default: backlog]
    #[arg(long, value_parser = statuses())]
    pub status: Option<String>,
    /// Initial priority [default: medium]
    #[arg(long, value_parser = priorities())]
    pub priority: Option<String>,
    /// Read the fields from a TOML file (the reference's shape: `type`, `title`,
    /// `description`, …, flat or under [work_item]); flags given as well win
    #[arg(long, value_name = "PATH")]
    pub from_toml: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Project UUID or key
    #[arg(value_name = "PROJECT_ID|KEY")]
    pub project: String,
    /// Only items of this type
    #[arg(long = "type", value_name = "TYPE", value_parser = item_types())]
    pub item_type: Option<String>,
    /// Only items with this status
    #[arg(long, value_parser = statuses())]
    pub status: Option<String>,
    /// Only items in this sprint (UUID)
    #[arg(long, value_name = "UUID")]
    pub sprint_id: Option<String>,
    /// Only children of this item
    #[arg(long, value_name = "ID|KEY-N", conflicts_with = "orphaned")]
    pub parent_id: Option<String>,
    /// Only items without a parent
    #[arg(long)]
    pub orphaned: bool,
    /// Only descendants of this item
    #[arg(long, value_name = "ID|KEY-N", conflicts_with_all = ["parent_id", "orphaned"])]
    pub descendants_of: Option<String>,
    /// Only ancestors of this item
    #[arg(
        long,
        value_name = "ID|KEY-N",
        conflicts_with_all = ["parent_id", "orphaned", "descendants_of"]
    )]
    pub ancestors_of: Option<String>,
    /// Include items whose status is done
    #[arg(long)]
    pub include_done: bool,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Work item UUID or key (PM-12)
    #[arg(value_name = "ID|KEY-N")]
    pub id: String,
    /// New title
    #[arg(long, value_parser = one_line)]
    pub title: Option<String>,
    /// New description ("" clears it)
    #[arg(long)]
    pub description: Option<String>,
    /// New status (board column)
    #[arg(long, value_parser = statuses())]
    pub status: Option<String>,
    /// New priority
    #[arg(long, value_parser = priorities())]
    pub priority: Option<String>,
    /// Assignee (a user UUID; "" unassigns)
    #[arg(long, value_name = "UUID")]
    pub assignee_id: Option<String>,
    /// Sprint (a sprint UUID; "" removes the item from its sprint)
    #[arg(long, value_name = "UUID")]
    pub sprint_id: Option<String>,
    /// Story points, 0 to 100
    #[arg(long, value_name = "0..100", value_parser = clap::value_parser!(i32).range(0..=100))]
    pub story_points: Option<i32>,
    /// Remove the story points
    #[arg(long, conflicts_with = "story_points")]
    pub clear_points: bool,
    /// New type; it must fit the hierarchy (a task under a story, a story under an epic)
    /// with the item's parent and children
    #[arg(long = "type", value_name = "TYPE", value_parser = item_types())]
    pub item_type: Option<String>,
    /// New parent (UUID or key; "" makes the item top-level). Implies --update-parent
    #[arg(long, value_name = "ID|KEY-N")]
    pub parent_id: Option<String>,
    /// Apply --parent-id; without --parent-id, removes the parent
    #[arg(long)]
    pub update_parent: bool,
    /// Position among its siblings
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(0..))]
    pub position: Option<i32>,
    /// The version you last saw; the update fails if someone changed the item since
    /// (alias: --version, the reference CLI's spelling)
    #[arg(long, value_name = "N", alias = "version")]
    pub expected_version: i32,
    /// Read the changes from a TOML file (e.g. one `work-item get --output-toml` wrote, then
    /// edited); flags given as well win. The version always comes from --expected-version
    #[arg(long, value_name = "PATH")]
    pub from_toml: Option<PathBuf>,
}

pub async fn run(client: RestClient, cmd: WorkItemCommand) -> anyhow::Result<Value> {
    Ok(match cmd {
        WorkItemCommand::Create(a) => client.create_work_item(&create_body(a)?).await?,
        WorkItemCommand::Get { id } => client.get_work_item(&id).await?,
        WorkItemCommand::List(a) => {
            let filter = WorkItemFilter {
                item_type: a.item_type,
                status: a.status,
                sprint_id: a.sprint_id,
                parent_id: a.parent_id,
                orphaned: a.orphaned,
                descendants_of: a.descendants_of,
                ancestors_of: a.ancestors_of,
                include_done: a.include_done,
            };
            client.list_work_items(&a.project, &filter).await?
        }
        WorkItemCommand::Update(a) => {
            let id = a.id.clone();
            client.update_work_item(&id, &update_body(a)?).await?
        }
        WorkItemCommand::Delete { id } => client.delete_work_item(&id).await?,
        WorkItemCommand::Restore { id } => client.restore_work_item(&id).await?,
    })
}

/// The `--from-toml` file's fields, or none.
fn from_file(path: Option<&Path>) -> anyhow::Result<WorkItemToml> {
    match path {
        Some(path) => WorkItemToml::read(path).map_err(anyhow::Error::msg),
        None => Ok(WorkItemToml::default()),
    }
}

/// The POST body: each field from its flag, else from the file. The file's update-only fields
/// (assignee, sprint, points, position) are ignored here, as the reference does.
fn create_body(a: CreateArgs) -> anyhow::Result<Value> {
    let file = from_file(a.from_toml.as_deref())?;
    let required = |flag: Option<String>, from_file: Option<String>, key: &str| {
        flag.or(from_file).ok_or_else(|| {
            let source = a.from_toml.as_deref().map_or_else(String::new, |p| {
                format!(" (or set `{key}` in {})", p.display())
            });
            anyhow::anyhow!("--{} is required{source}", key.replace('_', "-"))
        })
    };
    let project_id = required(a.project_id.clone(), file.project_id, "project_id")?;
    let item_type = required(a.item_type.clone(), file.item_type, "type")?;
    let title = required(a.title.clone(), file.title, "title")?;
    let mut body = json!({
        "project_id": project_id,
        "item_type": item_type,
        "title": title,
    });
    put_opt(&mut body, "description", a.description.or(file.description));
    put_opt(&mut body, "parent_id", a.parent_id.or(file.parent_id));
    put_opt(&mut body, "status", a.status.or(file.status));
    put_opt(&mut body, "priority", a.priority.or(file.priority));
    Ok(body)
}

/// The PUT body: each field from its flag, else from the file. A `parent_id` in the file
/// implies --update-parent (`parent_id = ""` makes the item top-level); a file without one
/// leaves the parent alone.
fn update_body(a: UpdateArgs) -> anyhow::Result<Value> {
    let file = from_file(a.from_toml.as_deref())?;
    let parent_id = a.parent_id.or(file.parent_id);
    let update_parent = a.update_parent || parent_id.is_some();
    let mut body = json!({
        "expected_version": a.expected_version,
        "update_parent": update_parent,
    });
    put_opt(&mut body, "title", a.title.or(file.title));
    put_opt(&mut body, "description", a.description.or(file.description));
    put_opt(&mut body, "status", a.status.or(file.status));
    put_opt(&mut body, "priority", a.priority.or(file.priority));
    put_opt(&mut body, "assignee_id", a.assignee_id.or(file.assignee_id));
    put_opt(&mut body, "sprint_id", a.sprint_id.or(file.sprint_id));
    put_opt(
        &mut body,
        "story_points",
        a.story_points.or(file.story_points),
    );
    if a.clear_points {
        // A null (rather than an absent) `story_points` removes them.
        body["story_points"] = Value::Null;
    }
    put_opt(&mut body, "item_type", a.item_type);
    put_opt(&mut body, "parent_id", parent_id);
    put_opt(&mut body, "position", a.position.or(file.position));
    Ok(body)
}

/// A title is one line: a line break in it would be lost on every board (where it shows as
/// `line1line2` or `�`), so it is refused as a usage error before anything is sent.
fn one_line(value: &str) -> Result<String, String> {
    if value.contains(['\n', '\r']) {
        return Err("a title is one line: remove the line break".into());
    }
    Ok(value.to_string())
}
