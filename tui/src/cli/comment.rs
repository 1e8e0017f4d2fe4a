//! `pm comment …`: GET/POST /api/v1/work-items/{id|KEY-N}/comments,
//! GET/PUT/DELETE /api/v1/comments/{id}.
use clap::Subcommand;
use pm_client::rest_client::{ClientError, RestClient};
use serde_json::Value;

#[derive(Debug, Subcommand)]
pub enum CommentCommand {
    /// List a work item's comments, oldest first
    #[command(
        after_help = "Examples:\n  pm comment list PM-12\n  pm comment list PM-12 --format table"
    )]
    List {
        /// Work item UUID or key (PM-12)
        #[arg(value_name = "WORK_ITEM_ID|KEY-N")]
        work_item: String,
    },
    /// Show one comment
    #[command(after_help = "Examples:\n  pm comment get 0b6c1f9e-5d8a-4c1e-9f3a-2f1d7e6a9b10")]
    Get {
        /// Comment UUID
        #[arg(value_name = "UUID")]
        id: String,
    },
    /// Comment on a work item
    #[command(
        after_help = "Examples:\n  pm comment create --work-item-id PM-12 --content \"Looks good\""
    )]
    Create {
        /// Work item UUID or key (PM-12)
        #[arg(long, value_name = "ID|KEY-N")]
        work_item_id: String,
        /// Comment text
        #[arg(long)]
        content: String,
    },
    /// Change a comment's text
    #[command(after_help = "Examples:\n  \
        pm comment update 0b6c1f9e-5d8a-4c1e-9f3a-2f1d7e6a9b10 --content \"Looks great\"")]
    Update {
        /// Comment UUID
        #[arg(value_name = "UUID")]
        id: String,
        /// New comment text
        #[arg(long)]
        content: String,
    },
    /// Delete a comment
    #[command(after_help = "Examples:\n  pm comment delete 0b6c1f9e-5d8a-4c1e-9f3a-2f1d7e6a9b10")]
    Delete {
        /// Comment UUID
        #[arg(value_name = "UUID")]
        id: String,
    },
}

pub async fn run(client: RestClient, cmd: CommentCommand) -> Result<Value, ClientError> {
    match cmd {
        CommentCommand::List { work_item } => client.list_comments(&work_item).await,
        CommentCommand::Get { id } => client.get_comment(&id).await,
        CommentCommand::Create {
            work_item_id,
            content,
        } => client.create_comment(&work_item_id, &content).await,
        CommentCommand::Update { id, content } => client.update_comment(&id, &content).await,
        CommentCommand::Delete { id } => client.delete_comment(&id).await,
    }
}
