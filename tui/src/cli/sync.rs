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
    /// Import an export (created, newer rows updated, the rest skipped)
    #[command(after_help = "Examples:\n  pm sync import -f backup.json\n  \
        pm sync import -f backup.json --strict\n\n\
        A row that cannot be stored (a link to an item that is nowhere, a text over the\n\
        server's limit) is left out and the rest imported; stdout gets the server's JSON\n\
        answer (counts per entity and `skipped`: every row left out, with its reason) and,\n\
        when rows were left out, stderr a summary. --strict imports all or nothing instead. Importing the same file\n\
        twice changes nothing the second time. Open boards see every imported change at once.")]
    Import {
        /// The ExportData JSON file
        #[arg(short, long, value_name = "PATH")]
        file: PathBuf,
        /// All or nothing: one row that cannot be stored refuses the whole file
        #[arg(long)]
        strict: bool,
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
        /// Include their links (also those whose other end is outside the export)
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
        SyncCommand::Import { file, strict } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let document: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            let result = client.sync_import_with(&document, strict).await?;
            // stdout keeps the server's JSON for scripts; when rows were left out, people are
            // told on stderr which and why (an import that took every row stays quiet).
            if result["skipped"].as_array().is_some_and(|s| !s.is_empty()) {
                eprint!(
                    "{}",
                    pm_shared::terminal::sanitize_lines_for_terminal(&summary(&result))
                );
            }
            Ok(Output::Json(result))
        }
    }
}

/// The lists of an ImportResult, in the order the server imports them.
const LISTS: [&str; 7] = [
    "projects",
    "sprints",
    "swim_lanes",
    "work_items",
    "comments",
    "dependencies",
    "time_entries",
];

/// What an import did, for people: one line per list with rows, then every row left out.
///
/// ```text
/// Imported: projects 1 created; work_items 194 created; comments 43 created, 21 skipped
/// Skipped 21 rows:
///   comments[3] (id …): content: content exceeds maximum length (5000 characters)
/// ```
fn summary(result: &Value) -> String {
    let count = |list: &str, key: &str| result[list][key].as_u64().unwrap_or(0);
    let mut parts = Vec::new();
    for list in LISTS {
        let figures: Vec<String> = ["created", "updated", "skipped"]
            .into_iter()
            .map(|key| (count(list, key), key))
            .filter(|(n, _)| *n > 0)
            .map(|(n, key)| format!("{n} {key}"))
            .collect();
        if !figures.is_empty() {
            parts.push(format!("{list} {}", figures.join(", ")));
        }
    }
    let mut out = if parts.is_empty() {
        "Imported: nothing (the file has no rows)\n".to_string()
    } else {
        format!("Imported: {}\n", parts.join("; "))
    };
    let skipped = result["skipped"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if !skipped.is_empty() {
        let rows = if skipped.len() == 1 { "row" } else { "rows" };
        out.push_str(&format!(
            "Skipped {} {rows} that could not be stored (--strict refuses the whole file instead):\n",
            skipped.len()
        ));
        for s in skipped {
            let text = |k: &str| s[k].as_str().unwrap_or_default();
            // The reason starts with the field at fault, when one is.
            out.push_str(&format!(
                "  {}[{}] (id {}): {}\n",
                text("entity"),
                s["index"].as_u64().unwrap_or(0),
                text("id"),
                text("reason"),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::summary;

    #[test]
    fn the_summary_counts_each_list_and_names_every_skipped_row() {
        let result = json!({
            "projects": {"created": 1, "updated": 0, "skipped": 0},
            "swim_lanes": {"created": 0, "updated": 0, "skipped": 0},
            "work_items": {"created": 2, "updated": 1, "skipped": 0},
            "dependencies": {"created": 0, "updated": 0, "skipped": 1},
            "skipped": [{
                "entity": "dependencies", "index": 4, "id": "d1", "field": "blocked_item_id",
                "reason": "blocked_item_id: work item x not found"
            }]
        });
        assert_eq!(
            summary(&result),
            "Imported: projects 1 created; work_items 2 created, 1 updated; dependencies 1 skipped\n\
             Skipped 1 row that could not be stored (--strict refuses the whole file instead):\n\
             \x20 dependencies[4] (id d1): blocked_item_id: work item x not found\n"
        );
        assert_eq!(
            summary(&json!({})),
            "Imported: nothing (the file has no rows)\n"
        );
    }
}
