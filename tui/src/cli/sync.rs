//! `pm sync …`: GET /api/v1/sync/export and POST /api/v1/sync/import, the reference's
//! ExportData format (schema_version 1).
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use pm_client::rest_client::RestClient;
use serde_json::Value;

use super::{reindent, Output};

#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Export everything (or one work item and its descendants) as JSON
    #[command(after_help = "Examples:\n  \
        pm sync export -o backup.json\n  \
        pm sync export work-item PM-1 --descendant-levels 2 --comments --dependencies\n\n\
        The JSON always goes to stdout; -o also writes it, indented, to the file.")]
    Export(ExportArgs),
    /// Import an export (created, newer rows updated, the rest skipped; all or nothing)
    #[command(after_help = "Examples:\n  pm sync import -f backup.json\n\n\
        Importing the same file twice changes nothing the second time. Open boards see every\n\
        imported change at once.")]
    Import {
        /// The ExportData JSON file
        #[arg(short, long, value_name = "PATH")]
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Also write the export, indented, to this file
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    #[command(subcommand)]
    pub scope: Option<ExportScope>,
}

#[derive(Debug, Subcommand)]
pub enum ExportScope {
    /// Only this work item, its descendants and the rows you ask for
    WorkItem {
        /// Work item UUID or key (PM-12)
        #[arg(value_name = "ID|KEY-N")]
        id: String,
        /// Levels of descendants to include
        #[arg(long, value_name = "0..2", default_value_t = 0,
              value_parser = clap::value_parser!(u32).range(0..=2))]
        descendant_levels: u32,
        /// Include their comments
        #[arg(long)]
        comments: bool,
        /// Include their sprints
        #[arg(long)]
        sprints: bool,
        /// Include the links between them
        #[arg(long)]
        dependencies: bool,
        /// Include their time entries
        #[arg(long)]
        time_entries: bool,
    },
}

pub async fn run(client: RestClient, cmd: SyncCommand) -> anyhow::Result<Output> {
    match cmd {
        SyncCommand::Export(a) => {
            let mut query: Vec<(&str, String)> = Vec::new();
            if let Some(ExportScope::WorkItem {
                id,
                descendant_levels,
                comments,
                sprints,
                dependencies,
                time_entries,
            }) = a.scope
            {
                query.push(("work_item", id));
                query.push(("descendant_levels", descendant_levels.to_string()));
                for (name, on) in [
                    ("comments", comments),
                    ("sprints", sprints),
                    ("dependencies", dependencies),
                    ("time_entries", time_entries),
                ] {
                    if on {
                        query.push((name, "true".to_string()));
                    }
                }
            }
            let text = client.sync_export(&query).await?;
            if let Some(path) = a.output {
                std::fs::write(&path, format!("{}\n", reindent(&text)))
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            Ok(Output::Text(text))
        }
        SyncCommand::Import { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let document: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            Ok(Output::Json(client.sync_import(&document).await?))
        }
    }
}
