//! `pm dependency …`: GET /api/v1/work-items/{id|KEY-N}/dependencies, POST /api/v1/dependencies,
//! DELETE /api/v1/dependencies/{id}.
use clap::Subcommand;
use pm_client::rest_client::{ClientError, RestClient};
use pm_shared::domain::DependencyType;
use serde_json::{json, Value};

use super::one_of;

#[derive(Debug, Subcommand)]
pub enum DependencyCommand {
    /// List a work item's links (both directions), by link id
    #[command(
        after_help = "Examples:\n  pm dependency list PM-12\n  pm dependency list PM-12 --format table"
    )]
    List {
        /// Work item UUID or key (PM-12)
        #[arg(value_name = "WORK_ITEM_ID|KEY-N")]
        work_item: String,
    },
    /// Link two work items of one project: BLOCKING blocks (or relates to) BLOCKED
    #[command(after_help = "Examples:\n  \
        pm dependency create --blocking PM-3 --blocked PM-7 --type blocks\n  \
        pm dependency create --blocking PM-3 --blocked PM-9 --type relates_to\n\n\
        A link cannot point at its own item, a pair is linked once, an item has at most 50 links\n\
        on each side, and blocks links never form a cycle.")]
    Create {
        /// The item that blocks (UUID or key)
        #[arg(long, value_name = "ID|KEY-N")]
        blocking: String,
        /// The item that is blocked (UUID or key)
        #[arg(long, value_name = "ID|KEY-N")]
        blocked: String,
        /// blocks: BLOCKED waits for BLOCKING; relates_to: informational
        #[arg(long = "type", value_name = "TYPE",
              value_parser = one_of(DependencyType::ALL.iter().map(|t| t.as_str())))]
        kind: String,
    },
    /// Delete a link (the same pair may be linked again later)
    #[command(
        after_help = "Examples:\n  pm dependency delete 0b6c1f9e-5d8a-4c1e-9f3a-2f1d7e6a9b10"
    )]
    Delete {
        /// Dependency UUID
        #[arg(value_name = "UUID")]
        id: String,
    },
}

pub async fn run(client: RestClient, cmd: DependencyCommand) -> Result<Value, ClientError> {
    match cmd {
        DependencyCommand::List { work_item } => client.list_dependencies(&work_item).await,
        DependencyCommand::Create {
            blocking,
            blocked,
            kind,
        } => {
            let body = json!({
                "blocking_item_id": blocking,
                "blocked_item_id": blocked,
                "dependency_type": kind,
            });
            client.create_dependency(&body).await
        }
        DependencyCommand::Delete { id } => client.delete_dependency(&id).await,
    }
}
