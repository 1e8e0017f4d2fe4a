//! `pm sprint …`: POST /api/v1/sprints, GET/PUT/DELETE /api/v1/sprints/{id},
//! GET /api/v1/projects/{id|key}/sprints.
use clap::{Args, Subcommand};
use pm_client::rest_client::{ClientError, RestClient};
use pm_shared::domain::SprintStatus;
use serde_json::{json, Value};

use super::{one_of, parse_date, put_opt};

#[derive(Debug, Subcommand)]
pub enum SprintCommand {
    /// List a project's sprints, newest start first
    #[command(after_help = "Examples:\n  pm sprint list PM\n  pm sprint list PM --format table")]
    List {
        /// Project UUID or key
        #[arg(value_name = "PROJECT_ID|KEY")]
        project: String,
    },
    /// Show one sprint
    #[command(after_help = "Examples:\n  pm sprint get 0b6c1f9e-5d8a-4c1e-9f3a-2f1d7e6a9b10")]
    Get {
        /// Sprint UUID
        #[arg(value_name = "UUID")]
        id: String,
    },
    /// Create a sprint; dates are Unix seconds or YYYY-MM-DD (UTC)
    #[command(after_help = "Examples:\n  \
        pm sprint create --project-id PM --name \"Sprint 1\" --start-date 2026-12-01 --end-date 2026-12-14\n  \
        pm sprint create --project-id PM --name \"Sprint 2\" --start-date 1796083200 --end-date 1797292800 --goal \"Ship it\"")]
    Create(CreateArgs),
    /// Change a sprint; --expected-version is the version you last saw
    #[command(after_help = "Examples:\n  \
        pm sprint update 0b6c1f9e-5d8a-4c1e-9f3a-2f1d7e6a9b10 --status active --expected-version 1\n  \
        pm sprint update 0b6c1f9e-5d8a-4c1e-9f3a-2f1d7e6a9b10 --end-date 2026-12-21 --expected-version 2")]
    Update(UpdateArgs),
    /// Delete a sprint
    #[command(after_help = "Examples:\n  pm sprint delete 0b6c1f9e-5d8a-4c1e-9f3a-2f1d7e6a9b10")]
    Delete {
        /// Sprint UUID
        #[arg(value_name = "UUID")]
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Project UUID or key
    #[arg(long, value_name = "ID|KEY")]
    pub project_id: String,
    /// Sprint name
    #[arg(long)]
    pub name: String,
    /// Start: Unix seconds or YYYY-MM-DD
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub start_date: i64,
    /// End: Unix seconds or YYYY-MM-DD; after the start
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub end_date: i64,
    /// What the sprint should achieve
    #[arg(long)]
    pub goal: Option<String>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Sprint UUID
    #[arg(value_name = "UUID")]
    pub id: String,
    /// New name
    #[arg(long)]
    pub name: Option<String>,
    /// New goal ("" clears it)
    #[arg(long)]
    pub goal: Option<String>,
    /// New start: Unix seconds or YYYY-MM-DD
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub start_date: Option<i64>,
    /// New end: Unix seconds or YYYY-MM-DD
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub end_date: Option<i64>,
    /// planned → active → completed; planned or active → cancelled
    #[arg(long, value_parser = one_of(SprintStatus::ALL.iter().map(|s| s.as_str())))]
    pub status: Option<String>,
    /// The version you last saw; the update fails if someone changed the sprint since
    #[arg(long, value_name = "N")]
    pub expected_version: i32,
}

pub async fn run(client: RestClient, cmd: SprintCommand) -> Result<Value, ClientError> {
    match cmd {
        SprintCommand::List { project } => client.list_sprints(&project).await,
        SprintCommand::Get { id } => client.get_sprint(&id).await,
        SprintCommand::Create(a) => {
            let mut body = json!({
                "project_id": a.project_id,
                "name": a.name,
                "start_date": a.start_date,
                "end_date": a.end_date,
            });
            put_opt(&mut body, "goal", a.goal);
            client.create_sprint(&body).await
        }
        SprintCommand::Update(a) => {
            let mut body = json!({ "expected_version": a.expected_version });
            put_opt(&mut body, "name", a.name);
            put_opt(&mut body, "goal", a.goal);
            put_opt(&mut body, "start_date", a.start_date);
            put_opt(&mut body, "end_date", a.end_date);
            put_opt(&mut body, "status", a.status);
            client.update_sprint(&a.id, &body).await
        }
        SprintCommand::Delete { id } => client.delete_sprint(&id).await,
    }
}
