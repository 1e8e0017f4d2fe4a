//! `pm activity <entity-type> <id>`: GET /api/v1/activity, the history of one entity with every
//! changed field, newest first. Deleted entities keep their history (name them by UUID).
use clap::{Args, ValueEnum};
use pm_client::rest_client::{ClientError, RestClient};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EntityType {
    Project,
    #[value(alias = "work_item")]
    WorkItem,
    Sprint,
    Comment,
    #[value(alias = "time_entry")]
    TimeEntry,
    Dependency,
}

impl EntityType {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EntityType::Project => "project",
            EntityType::WorkItem => "work_item",
            EntityType::Sprint => "sprint",
            EntityType::Comment => "comment",
            EntityType::TimeEntry => "time_entry",
            EntityType::Dependency => "dependency",
        }
    }
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    pm activity work-item PM-12\n  \
    pm activity work-item PM-12 --format table\n  \
    pm activity dependency 0b6c1f9e-5d8a-4c1e-9f3a-2f1d7e6a9b10 --limit 5")]
pub struct ActivityArgs {
    /// What kind of entity
    #[arg(value_enum, value_name = "ENTITY_TYPE")]
    pub entity_type: EntityType,
    /// Its UUID (a work item may also be named by its key, PM-12, while it exists)
    #[arg(value_name = "ID")]
    pub id: String,
    /// Entries per page (default 50, at most 100)
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
    /// Entries to skip
    #[arg(long, value_name = "N")]
    pub offset: Option<u32>,
}

pub async fn run(client: RestClient, a: ActivityArgs) -> Result<Value, ClientError> {
    client
        .activity(a.entity_type.as_str(), &a.id, a.limit, a.offset)
        .await
}
