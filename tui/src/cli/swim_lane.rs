//! `pm swim-lane list`: GET /api/v1/projects/{id|key}/swim-lanes.
use clap::Subcommand;
use pm_client::rest_client::{ClientError, RestClient};
use serde_json::Value;

#[derive(Debug, Subcommand)]
pub enum SwimLaneCommand {
    /// List a project's board columns, in board order
    #[command(
        after_help = "Examples:\n  pm swim-lane list PM\n  pm swim-lane list PM --format table"
    )]
    List {
        /// Project UUID or key
        #[arg(value_name = "PROJECT_ID|KEY")]
        project: String,
    },
}

pub async fn run(client: RestClient, cmd: SwimLaneCommand) -> Result<Value, ClientError> {
    match cmd {
        SwimLaneCommand::List { project } => client.list_swim_lanes(&project).await,
    }
}
