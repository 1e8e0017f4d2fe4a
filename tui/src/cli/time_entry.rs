//! `pm time-entry …`: GET /api/v1/work-items/{id|KEY-N}/time-entries, POST /api/v1/time-entries,
//! GET/PUT/DELETE /api/v1/time-entries/{id}.
use clap::{Args, Subcommand};
use pm_client::rest_client::{ClientError, RestClient};
use serde_json::{json, Value};

use super::{parse_date, put_opt};

#[derive(Debug, Subcommand)]
pub enum TimeEntryCommand {
    /// List a work item's time entries, latest start first
    #[command(
        after_help = "Examples:\n  pm time-entry list PM-12\n  pm time-entry list PM-12 --format table"
    )]
    List {
        /// Work item UUID or key (PM-12)
        #[arg(value_name = "WORK_ITEM_ID|KEY-N")]
        work_item: String,
    },
    /// Show one time entry
    #[command(after_help = "Examples:\n  pm time-entry get 0b6c1f9e-5d8a-4c1e-9f3a-2f1d7e6a9b10")]
    Get {
        /// Time entry UUID
        #[arg(value_name = "UUID")]
        id: String,
    },
    /// Start a timer on a work item (your running timer stops), or record finished work
    #[command(after_help = "Examples:\n  \
        pm time-entry create --work-item-id PM-12 --description \"Pairing\"\n  \
        pm time-entry create --work-item-id PM-12 --started-at 1795300000 --ended-at 1795303600\n\n\
        A finished entry lasts at most 24 hours and may not end in the future.")]
    Create(CreateArgs),
    /// Stop a running timer or change an entry (only your own)
    #[command(after_help = "Examples:\n  \
        pm time-entry update 0b6c1f9e-5d8a-4c1e-9f3a-2f1d7e6a9b10 --stop\n  \
        pm time-entry update 0b6c1f9e-5d8a-4c1e-9f3a-2f1d7e6a9b10 --description \"Review\"\n  \
        pm time-entry update 0b6c1f9e-5d8a-4c1e-9f3a-2f1d7e6a9b10 --started-at 1795300000")]
    Update(UpdateArgs),
    /// Delete a time entry (only your own)
    #[command(
        after_help = "Examples:\n  pm time-entry delete 0b6c1f9e-5d8a-4c1e-9f3a-2f1d7e6a9b10"
    )]
    Delete {
        /// Time entry UUID
        #[arg(value_name = "UUID")]
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Work item UUID or key (PM-12)
    #[arg(long, value_name = "ID|KEY-N")]
    pub work_item_id: String,
    /// What you are working on
    #[arg(long)]
    pub description: Option<String>,
    /// Record finished work from this time (Unix seconds or YYYY-MM-DD) instead of starting a
    /// timer; needs --ended-at
    #[arg(long, value_name = "TIME", value_parser = parse_date, requires = "ended_at")]
    pub started_at: Option<i64>,
    /// End of the finished work (Unix seconds or YYYY-MM-DD); needs --started-at
    #[arg(long, value_name = "TIME", value_parser = parse_date, requires = "started_at")]
    pub ended_at: Option<i64>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Time entry UUID
    #[arg(value_name = "UUID")]
    pub id: String,
    /// Stop the running timer now
    #[arg(long, conflicts_with = "ended_at")]
    pub stop: bool,
    /// New description ("" clears it)
    #[arg(long)]
    pub description: Option<String>,
    /// New start (Unix seconds or YYYY-MM-DD)
    #[arg(long, value_name = "TIME", value_parser = parse_date)]
    pub started_at: Option<i64>,
    /// New end (Unix seconds or YYYY-MM-DD); on a running timer this stops it
    #[arg(long, value_name = "TIME", value_parser = parse_date)]
    pub ended_at: Option<i64>,
}

pub async fn run(client: RestClient, cmd: TimeEntryCommand) -> Result<Value, ClientError> {
    match cmd {
        TimeEntryCommand::List { work_item } => client.list_time_entries(&work_item).await,
        TimeEntryCommand::Get { id } => client.get_time_entry(&id).await,
        TimeEntryCommand::Create(a) => {
            let mut body = json!({ "work_item_id": a.work_item_id });
            put_opt(&mut body, "description", a.description);
            put_opt(&mut body, "started_at", a.started_at);
            put_opt(&mut body, "ended_at", a.ended_at);
            client.create_time_entry(&body).await
        }
        TimeEntryCommand::Update(a) => {
            let mut body = json!({ "stop": a.stop });
            put_opt(&mut body, "description", a.description);
            put_opt(&mut body, "started_at", a.started_at);
            put_opt(&mut body, "ended_at", a.ended_at);
            client.update_time_entry(&a.id, &body).await
        }
        TimeEntryCommand::Delete { id } => client.delete_time_entry(&id).await,
    }
}
