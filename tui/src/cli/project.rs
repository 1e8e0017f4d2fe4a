//! `pm project …`: GET/POST /api/v1/projects, GET/PUT/DELETE /api/v1/projects/{id|key}.
use clap::{Args, Subcommand};
use pm_client::rest_client::{ClientError, RestClient};
use pm_shared::domain::ProjectStatus;
use serde_json::{json, Value};

use super::{one_of, put_opt};

#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// List all projects, by title
    #[command(after_help = "Examples:\n  pm project list\n  pm project list --format table")]
    List,
    /// Show one project
    #[command(
        after_help = "Examples:\n  pm project get PM\n  pm project get 0b6c1f9e-5d8a-4c1e-9f3a-2f1d7e6a9b10 --pretty"
    )]
    Get {
        /// Project UUID or key
        #[arg(value_name = "ID|KEY")]
        id: String,
    },
    /// Create a project
    #[command(
        after_help = "Examples:\n  pm project create --title \"Platform\" --key PM\n  \
                            pm project create --title \"Web\" --key WEB --description \"Site\""
    )]
    Create(CreateArgs),
    /// Change a project's title, description or status
    #[command(
        after_help = "Examples:\n  pm project update PM --title \"Platform v2\" --expected-version 1\n  \
                            pm project update PM --status archived --expected-version 2"
    )]
    Update(UpdateArgs),
    /// Project members and their roles (enforced when the server runs in token mode)
    #[command(subcommand)]
    Member(MemberCommand),
    /// Delete a project
    #[command(after_help = "Examples:\n  pm project delete PM")]
    Delete {
        /// Project UUID or key
        #[arg(value_name = "ID|KEY")]
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Project title
    #[arg(long)]
    pub title: String,
    /// Short key that prefixes work item keys (PM → PM-1, PM-2, …)
    #[arg(long)]
    pub key: String,
    /// Project description
    #[arg(long)]
    pub description: Option<String>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Project UUID or key
    #[arg(value_name = "ID|KEY")]
    pub id: String,
    /// New title
    #[arg(long)]
    pub title: Option<String>,
    /// New description ("" clears it)
    #[arg(long)]
    pub description: Option<String>,
    /// New status (archiving changes nothing else)
    #[arg(long, value_parser = one_of(ProjectStatus::ALL.iter().map(|s| s.as_str())))]
    pub status: Option<String>,
    /// The version you last saw; the update fails if someone changed the project since
    #[arg(long, value_name = "N")]
    pub expected_version: i32,
}

#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// List a project's members, admins first
    #[command(after_help = "Examples:\n  pm project member list PM --format table")]
    List {
        /// Project UUID or key
        #[arg(value_name = "PROJECT")]
        project: String,
    },
    /// Add a member, or change a member's role (needs the admin role)
    #[command(
        after_help = "Examples:\n  pm project member add PM 5b1f0c1e-8a3d-4c2b-9e7f-1a2b3c4d5e6f --role editor\n  \
                            pm project member add PM 5b1f0c1e-8a3d-4c2b-9e7f-1a2b3c4d5e6f --role admin"
    )]
    Add {
        /// Project UUID or key
        #[arg(value_name = "PROJECT")]
        project: String,
        /// The user's UUID
        #[arg(value_name = "USER_UUID")]
        user: String,
        /// viewer reads; editor also writes; admin also deletes and manages members
        #[arg(long, default_value = "editor", value_parser = ["viewer", "editor", "admin"])]
        role: String,
    },
    /// Remove a member (never the last admin)
    #[command(
        after_help = "Examples:\n  pm project member remove PM 5b1f0c1e-8a3d-4c2b-9e7f-1a2b3c4d5e6f"
    )]
    Remove {
        /// Project UUID or key
        #[arg(value_name = "PROJECT")]
        project: String,
        /// The user's UUID
        #[arg(value_name = "USER_UUID")]
        user: String,
    },
}

pub async fn run(client: RestClient, cmd: ProjectCommand) -> Result<Value, ClientError> {
    match cmd {
        ProjectCommand::Member(MemberCommand::List { project }) => {
            client.list_members(&project).await
        }
        ProjectCommand::Member(MemberCommand::Add {
            project,
            user,
            role,
        }) => {
            client
                .add_member(&project, &json!({ "user_id": user, "role": role }))
                .await
        }
        ProjectCommand::Member(MemberCommand::Remove { project, user }) => {
            client.remove_member(&project, &user).await
        }
        ProjectCommand::List => client.list_projects().await,
        ProjectCommand::Get { id } => client.get_project(&id).await,
        ProjectCommand::Create(a) => {
            let mut body = json!({ "title": a.title, "key": a.key });
            put_opt(&mut body, "description", a.description);
            client.create_project(&body).await
        }
        ProjectCommand::Update(a) => {
            let mut body = json!({ "expected_version": a.expected_version });
            put_opt(&mut body, "title", a.title);
            put_opt(&mut body, "description", a.description);
            put_opt(&mut body, "status", a.status);
            client.update_project(&a.id, &body).await
        }
        ProjectCommand::Delete { id } => client.delete_project(&id).await,
    }
}
