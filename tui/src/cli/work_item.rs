//! `pm work-item …`: POST /api/v1/work-items, GET/PUT/DELETE /api/v1/work-items/{id|KEY-N},
//! GET /api/v1/projects/{id|key}/work-items.
use clap::{Args, Subcommand};
use pm_client::rest_client::{ClientError, RestClient, WorkItemFilter};
use pm_shared::domain::{ItemType, Priority, Status};
use serde_json::{json, Value};

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
        pm work-item create --project-id PM --type story --title \"Pay by card\" --parent-id PM-1")]
    Create(CreateArgs),
    /// Show one work item
    #[command(after_help = "Examples:\n  pm work-item get PM-12\n  \
                            pm work-item get 0b6c1f9e-5d8a-4c1e-9f3a-2f1d7e6a9b10 --pretty")]
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
        pm work-item update PM-12 --assignee-id \"\" --expected-version 4   (unassign)")]
    Update(UpdateArgs),
    /// Delete a work item (it must have no children)
    #[command(after_help = "Examples:\n  pm work-item delete PM-12")]
    Delete {
        /// Work item UUID or key (PM-12)
        #[arg(value_name = "ID|KEY-N")]
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Project UUID or key
    #[arg(long, value_name = "ID|KEY")]
    pub project_id: String,
    /// epic, story or task
    #[arg(long = "type", value_name = "TYPE", value_parser = item_types())]
    pub item_type: String,
    /// Title
    #[arg(long)]
    pub title: String,
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
    #[arg(long)]
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
}

pub async fn run(client: RestClient, cmd: WorkItemCommand) -> Result<Value, ClientError> {
    match cmd {
        WorkItemCommand::Create(a) => {
            let mut body = json!({
                "project_id": a.project_id,
                "item_type": a.item_type,
                "title": a.title,
            });
            put_opt(&mut body, "description", a.description);
            put_opt(&mut body, "parent_id", a.parent_id);
            put_opt(&mut body, "status", a.status);
            put_opt(&mut body, "priority", a.priority);
            client.create_work_item(&body).await
        }
        WorkItemCommand::Get { id } => client.get_work_item(&id).await,
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
            client.list_work_items(&a.project, &filter).await
        }
        WorkItemCommand::Update(a) => {
            let update_parent = a.update_parent || a.parent_id.is_some();
            let mut body = json!({
                "expected_version": a.expected_version,
                "update_parent": update_parent,
            });
            put_opt(&mut body, "title", a.title);
            put_opt(&mut body, "description", a.description);
            put_opt(&mut body, "status", a.status);
            put_opt(&mut body, "priority", a.priority);
            put_opt(&mut body, "assignee_id", a.assignee_id);
            put_opt(&mut body, "sprint_id", a.sprint_id);
            put_opt(&mut body, "story_points", a.story_points);
            put_opt(&mut body, "parent_id", a.parent_id);
            put_opt(&mut body, "position", a.position);
            client.update_work_item(&a.id, &body).await
        }
        WorkItemCommand::Delete { id } => client.delete_work_item(&id).await,
    }
}
