//! A large sync import, in several transactions.
//!
//! One import is one transaction on the single writer (see [`super::import`]): 150,000 items
//! held it for 42 s, and every other user's write timed out behind it. So an import larger than
//! [`crate::config::Config::import_chunk_rows`] rows runs as consecutive chunks, each its own
//! transaction through the pipeline, and other writes get their turn between chunks.
//!
//! What the file says about itself is checked whole before anything is written (the schema
//! version, the size limit, ids that appear twice, item numbers used twice in a project, parent
//! cycles), so those refusals still leave the database untouched. A row that the database
//! refuses in chunk k leaves chunks before k imported; the error names the row by its place in
//! the file and says so, and importing the same file again resumes: rows already imported are
//! skipped (the import is last-writer-wins by `updated_at`, see [`super::import`]).
//!
//! Chunks follow the file's dependencies: projects, sprints, work items with every parent
//! before its children, comments, dependencies, time entries.
use std::collections::{HashMap, HashSet};

use pm_shared::proto::{self, Payload};

use super::import::{row_error, skip_entry, sort_skipped, Import, Mode};
use super::{execute, Actor, Command};
use crate::error::{AppError, AppResult};
use crate::sync::ExportData;
use crate::writer::Writer;

/// The rows of one chunk, and where each came from in the file (by list).
struct Chunk {
    data: ExportData,
    /// (list name, the file index of each of the chunk's rows of that list, in chunk order)
    origin: Vec<(&'static str, Vec<usize>)>,
}

/// How large an import may be, and how large a transaction one of its chunks (the server's
/// `--max-import-rows`, `--import-chunk-rows`).
#[derive(Debug, Clone, Copy)]
pub struct ImportLimits {
    pub max_import_rows: usize,
    pub import_chunk_rows: usize,
}

/// Imports `data`, in chunks of at most `chunk_rows` rows when it is larger. In tolerant mode
/// the rows the whole file refuses (a repeated id or number, a parent cycle) are left out
/// before the chunks are cut, and each chunk leaves out its own bad rows; every skipped row is
/// named by its place in the file.
pub async fn import(
    writer: &Writer<Command>,
    config: ImportLimits,
    actor: &Actor,
    data: ExportData,
    mode: Mode,
) -> AppResult<proto::ImportResult> {
    let rows = row_count(&data);
    if rows > config.max_import_rows {
        return Err(AppError::validation(
            "import",
            format!(
                "This import has {rows} rows; this server takes at most {} in one request \
                 (pm-server --max-import-rows). Split the file, or ask the administrator.",
                config.max_import_rows
            ),
        ));
    }
    if rows <= config.import_chunk_rows.max(1) {
        // One transaction, which decides about every row itself.
        return run(writer, actor, data, mode).await;
    }
    if mode == Mode::Strict {
        check_whole(&data)?;
        return import_parts(writer, config, actor, data, mode, Vec::new()).await;
    }
    super::import::check_schema(data.schema_version)?;
    let refused = whole_file_refusals(&data);
    import_parts(writer, config, actor, data, mode, refused).await
}

/// The chunks of a large import, without the rows the whole file refused.
async fn import_parts(
    writer: &Writer<Command>,
    config: ImportLimits,
    actor: &Actor,
    data: ExportData,
    mode: Mode,
    refused: Vec<Refusal>,
) -> AppResult<proto::ImportResult> {
    let lanes = data.swim_lanes.len() as u32;
    let dropped: HashSet<(&'static str, usize)> =
        refused.iter().map(|r| (r.list, r.index)).collect();
    let chunks = split(data, config.import_chunk_rows.max(1), &dropped);
    let total = chunks.len();
    let mut sum = proto::ImportResult::default();
    for r in &refused {
        if let Some(counts) = counts_of(&mut sum, r.list) {
            counts.skipped += 1;
        }
        sum.skipped
            .push(skip_entry(r.list, r.index, &r.id, &r.error()));
    }
    for (k, chunk) in chunks.into_iter().enumerate() {
        let done = run(writer, actor, chunk.data, mode)
            .await
            .map_err(|e| stopped_at(e, &chunk.origin, k, total))?;
        add(&mut sum, done, &chunk.origin);
    }
    sum.swim_lanes = Some(proto::ImportCounts {
        skipped: lanes,
        ..Default::default()
    });
    sort_skipped(&mut sum.skipped);
    Ok(sum)
}

async fn run(
    writer: &Writer<Command>,
    actor: &Actor,
    data: ExportData,
    mode: Mode,
) -> AppResult<proto::ImportResult> {
    let command = Command::Import(Box::new(Import { data, mode }));
    let done = execute(writer, actor, None, command).await?;
    match done.event {
        Payload::ImportResult(result) => Ok(result),
        other => Err(AppError::Internal(anyhow::anyhow!(
            "an import answered {other:?}"
        ))),
    }
}

fn row_count(data: &ExportData) -> usize {
    data.projects.len()
        + data.sprints.len()
        + data.work_items.len()
        + data.comments.len()
        + data.dependencies.len()
        + data.time_entries.len()
}

/// The counts of the document's list `list` in `result`.
fn counts_of<'a>(
    result: &'a mut proto::ImportResult,
    list: &str,
) -> Option<&'a mut proto::ImportCounts> {
    let counts = match list {
        "projects" => &mut result.projects,
        "sprints" => &mut result.sprints,
        "work_items" => &mut result.work_items,
        "comments" => &mut result.comments,
        "dependencies" => &mut result.dependencies,
        "time_entries" => &mut result.time_entries,
        _ => return None,
    };
    Some(counts.get_or_insert_with(Default::default))
}

/// Adds a chunk's result to the sum, its skipped rows renamed by their place in the file.
fn add(
    sum: &mut proto::ImportResult,
    chunk: proto::ImportResult,
    origin: &[(&'static str, Vec<usize>)],
) {
    let pairs = [
        (&mut sum.projects, &chunk.projects),
        (&mut sum.sprints, &chunk.sprints),
        (&mut sum.work_items, &chunk.work_items),
        (&mut sum.comments, &chunk.comments),
        (&mut sum.dependencies, &chunk.dependencies),
        (&mut sum.time_entries, &chunk.time_entries),
    ];
    for (total, part) in pairs {
        let total = total.get_or_insert_with(Default::default);
        if let Some(part) = part {
            total.created += part.created;
            total.updated += part.updated;
            total.skipped += part.skipped;
        }
    }
    let renumber = |text: &str| {
        origin.iter().fold(text.to_string(), |text, (list, at)| {
            in_file(&text, list, at)
        })
    };
    for mut skip in chunk.skipped {
        let at = origin
            .iter()
            .find(|(list, _)| *list == skip.entity)
            .and_then(|(_, at)| at.get(skip.index as usize));
        if let Some(&index) = at {
            skip.index = u32::try_from(index).unwrap_or(u32::MAX);
        }
        skip.reason = renumber(&skip.reason);
        sum.skipped.push(skip);
    }
}

/// An id as the import compares them (a UUID in its canonical form, else as written).
fn canonical(id: &str) -> String {
    uuid::Uuid::parse_str(id.trim())
        .map(|u| u.to_string())
        .unwrap_or_else(|_| id.trim().to_string())
}

/// A row the whole file refuses: its list, its place there, its id and why.
struct Refusal {
    list: &'static str,
    index: usize,
    id: String,
    field: &'static str,
    message: String,
}

impl Refusal {
    fn error(&self) -> AppError {
        row_error(self.list, self.index, &self.id, self.field, &self.message)
    }
}

/// The checks that need the whole file, so that no chunk is written for a file they refuse.
fn check_whole(data: &ExportData) -> AppResult<()> {
    super::import::check_schema(data.schema_version)?;
    match whole_file_refusals(data).into_iter().next() {
        Some(first) => Err(first.error()),
        None => Ok(()),
    }
}

/// Every row the whole file refuses, in the order strict mode reports them: a repeated id
/// (each list), then a repeated item number, then the rows left out to break parent cycles.
/// Each later check ignores the rows refused before it.
fn whole_file_refusals(data: &ExportData) -> Vec<Refusal> {
    let mut refused = Vec::new();
    fn unique<'a>(
        refused: &mut Vec<Refusal>,
        list: &'static str,
        ids: impl Iterator<Item = &'a str>,
    ) {
        let mut seen = HashSet::new();
        for (index, id) in ids.enumerate() {
            if !seen.insert(canonical(id)) {
                refused.push(Refusal {
                    list,
                    index,
                    id: id.to_string(),
                    field: "id",
                    message: "appears more than once in this import".into(),
                });
            }
        }
    }
    unique(
        &mut refused,
        "projects",
        data.projects.iter().map(|r| r.id.as_str()),
    );
    unique(
        &mut refused,
        "sprints",
        data.sprints.iter().map(|r| r.id.as_str()),
    );
    unique(
        &mut refused,
        "work_items",
        data.work_items.iter().map(|r| r.id.as_str()),
    );
    unique(
        &mut refused,
        "comments",
        data.comments.iter().map(|r| r.id.as_str()),
    );
    unique(
        &mut refused,
        "dependencies",
        data.dependencies.iter().map(|r| r.id.as_str()),
    );
    unique(
        &mut refused,
        "time_entries",
        data.time_entries.iter().map(|r| r.id.as_str()),
    );
    let mut dropped: HashSet<usize> = refused
        .iter()
        .filter(|r| r.list == "work_items")
        .map(|r| r.index)
        .collect();
    let mut numbers: HashMap<(String, i64), usize> = HashMap::new();
    for (index, w) in data.work_items.iter().enumerate() {
        if dropped.contains(&index) {
            continue;
        }
        let key = (canonical(&w.project_id), w.item_number);
        if let Some(first) = numbers.get(&key) {
            refused.push(Refusal {
                list: "work_items",
                index,
                id: w.id.clone(),
                field: "item_number",
                message: format!(
                    "{} is also the number of work_items[{first}] in the same project",
                    w.item_number
                ),
            });
            dropped.insert(index);
        } else {
            numbers.insert(key, index);
        }
    }
    // One row of each cycle, until none is left.
    while let Err(index) = parents_first(data, &dropped) {
        refused.push(Refusal {
            list: "work_items",
            index,
            id: data.work_items[index].id.clone(),
            field: "parent_id",
            message: "the parent links of this import form a cycle".into(),
        });
        dropped.insert(index);
    }
    refused
}

/// Work item indexes with every parent (that the file holds) before its children, in file
/// order otherwise, leaving out none (a `dropped` row is nobody's parent); Err(index) of one
/// row on a parent cycle.
fn parents_first(data: &ExportData, dropped: &HashSet<usize>) -> Result<Vec<usize>, usize> {
    let items = &data.work_items;
    let index_of: HashMap<String, usize> = items
        .iter()
        .enumerate()
        .filter(|(i, _)| !dropped.contains(i))
        .map(|(i, w)| (canonical(&w.id), i))
        .collect();
    let parent = |i: usize| {
        if dropped.contains(&i) {
            return None;
        }
        items[i]
            .parent_id
            .as_deref()
            .filter(|p| !p.trim().is_empty())
            .and_then(|p| index_of.get(&canonical(p)))
            .copied()
    };
    walk_parents_first(items.len(), parent)
}

/// Indexes `0..n` with every parent (`parent(i)`, when it is one of them) before its
/// children, in index order otherwise; Err(index) of one on a parent cycle.
pub(crate) fn walk_parents_first(
    n: usize,
    parent: impl Fn(usize) -> Option<usize>,
) -> Result<Vec<usize>, usize> {
    let mut order = Vec::with_capacity(n);
    // 0 = not visited, 1 = on the current path, 2 = placed.
    let mut state = vec![0u8; n];
    for start in 0..n {
        let mut path = Vec::new();
        let mut cur = Some(start);
        // Walk up to the first placed (or not listed) ancestor, then place the path top-down.
        while let Some(i) = cur {
            match state[i] {
                2 => break,
                1 => return Err(i),
                _ => {}
            }
            state[i] = 1;
            path.push(i);
            cur = parent(i);
        }
        for &i in path.iter().rev() {
            state[i] = 2;
            order.push(i);
        }
    }
    Ok(order)
}

/// Cuts the file into chunks of at most `size` rows, in dependency order, without the
/// `dropped` rows (list, index).
fn split(data: ExportData, size: usize, dropped: &HashSet<(&'static str, usize)>) -> Vec<Chunk> {
    let dropped_items: HashSet<usize> = dropped
        .iter()
        .filter(|(list, _)| *list == "work_items")
        .map(|(_, i)| *i)
        .collect();
    let item_order = parents_first(&data, &dropped_items)
        .unwrap_or_else(|_| (0..data.work_items.len()).collect());
    let empty = || ExportData {
        schema_version: data.schema_version,
        ..ExportData::empty(data.exported_at.clone(), data.exported_by.clone())
    };
    let mut chunks: Vec<Chunk> = Vec::new();
    let mut current = Chunk {
        data: empty(),
        origin: Vec::new(),
    };
    let mut filled = 0;
    // Each row goes into the current chunk, which is closed when full.
    macro_rules! place {
        ($list:ident, $name:literal, $order:expr) => {
            for index in $order {
                if dropped.contains(&($name, index)) {
                    continue;
                }
                if filled == size {
                    chunks.push(std::mem::replace(
                        &mut current,
                        Chunk {
                            data: empty(),
                            origin: Vec::new(),
                        },
                    ));
                    filled = 0;
                }
                current.data.$list.push(data.$list[index].clone());
                match current.origin.last_mut() {
                    Some((list, at)) if *list == $name => at.push(index),
                    _ => current.origin.push(($name, vec![index])),
                }
                filled += 1;
            }
        };
    }
    place!(projects, "projects", 0..data.projects.len());
    place!(sprints, "sprints", 0..data.sprints.len());
    place!(work_items, "work_items", item_order.iter().copied());
    place!(comments, "comments", 0..data.comments.len());
    place!(dependencies, "dependencies", 0..data.dependencies.len());
    place!(time_entries, "time_entries", 0..data.time_entries.len());
    if filled > 0 {
        chunks.push(current);
    }
    chunks
}

/// A chunk's error, with its rows named by their place in the file, and, past the first
/// chunk, what was imported before it.
fn stopped_at(
    e: AppError,
    origin: &[(&'static str, Vec<usize>)],
    k: usize,
    total: usize,
) -> AppError {
    let renumber = |text: &str| {
        origin.iter().fold(text.to_string(), |text, (list, at)| {
            in_file(&text, list, at)
        })
    };
    let resumable = |message: String| {
        if k == 0 {
            message
        } else {
            format!(
                "{message} (the import stopped at part {} of {total}: the rows before this part \
                 were imported, and importing the same file again resumes here)",
                k + 1
            )
        }
    };
    match e {
        AppError::Validation { field, message } => AppError::Validation {
            field: field.map(|f| renumber(&f)),
            message: resumable(renumber(&message)),
        },
        AppError::Duplicate { field, message } => AppError::Duplicate {
            field: renumber(&field),
            message: resumable(renumber(&message)),
        },
        AppError::NotFound(message) => AppError::NotFound(resumable(renumber(&message))),
        AppError::Conflict(message) => AppError::Conflict(resumable(renumber(&message))),
        other => other,
    }
}

/// `text` with every `list[i]` (a chunk's index) written as the row's index in the file.
fn in_file(text: &str, list: &str, at: &[usize]) -> String {
    let marker = format!("{list}[");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(&marker) {
        let (before, after) = rest.split_at(start + marker.len());
        out.push_str(before);
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let mapped = after[..digits]
            .parse::<usize>()
            .ok()
            .filter(|_| after[digits..].starts_with(']'))
            .and_then(|i| at.get(i));
        match mapped {
            Some(index) => out.push_str(&index.to_string()),
            None => out.push_str(&after[..digits]),
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::WorkItemDto;

    fn item(id: &str, parent: Option<&str>, number: i64) -> WorkItemDto {
        serde_json::from_value(serde_json::json!({
            "id": id, "item_type": "task", "parent_id": parent,
            "project_id": "p", "position": 0, "title": "t", "status": "todo",
            "priority": "medium", "item_number": number, "version": 1,
            "created_at": 0, "updated_at": 0, "created_by": "u", "updated_by": "u"
        }))
        .expect("a work item")
    }

    fn data(items: Vec<WorkItemDto>) -> ExportData {
        ExportData {
            work_items: items,
            ..ExportData::empty(String::new(), String::new())
        }
    }

    #[test]
    fn chunks_put_parents_first_and_remember_file_positions() {
        // The child comes first in the file; its parent (and grandparent) must be imported in
        // an earlier chunk, or the same one.
        let file = data(vec![
            item("c", Some("b"), 3),
            item("b", Some("a"), 2),
            item("a", None, 1),
            item("d", None, 4),
        ]);
        let chunks = split(file, 2, &HashSet::new());
        assert_eq!(chunks.len(), 2);
        let ids = |c: &Chunk| {
            c.data
                .work_items
                .iter()
                .map(|w| w.id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&chunks[0]), ["a", "b"]);
        assert_eq!(ids(&chunks[1]), ["c", "d"]);
        assert_eq!(chunks[1].origin, vec![("work_items", vec![0, 3])]);
        let e = stopped_at(
            row_error("work_items", 1, "d", "status", "bad"),
            &chunks[1].origin,
            1,
            2,
        );
        assert_eq!(e.field().as_deref(), Some("work_items[3].status"));
        assert!(e.to_string().contains("work_items[3] (id d)"), "{e}");
        assert!(e.to_string().contains("part 2 of 2"), "{e}");
    }

    #[test]
    fn whole_file_rules_are_checked_before_any_chunk() {
        let cycle = data(vec![item("a", Some("b"), 1), item("b", Some("a"), 2)]);
        assert!(check_whole(&cycle).is_err());
        let twice = data(vec![item("a", None, 1), item("a", None, 2)]);
        assert_eq!(
            check_whole(&twice).unwrap_err().field().as_deref(),
            Some("work_items[1].id")
        );
        let numbers = data(vec![item("a", None, 7), item("b", None, 7)]);
        assert_eq!(
            check_whole(&numbers).unwrap_err().field().as_deref(),
            Some("work_items[1].item_number")
        );
    }

    #[test]
    fn a_tolerant_plan_lists_every_whole_file_refusal_and_cuts_around_them() {
        let file = data(vec![
            item("a", None, 1),
            item("a", None, 2),
            item("b", None, 1),
            item("c", Some("d"), 3),
            item("d", Some("c"), 4),
            item("e", Some("c"), 5),
        ]);
        let refused: Vec<(usize, &str)> = whole_file_refusals(&file)
            .iter()
            .map(|r| (r.index, r.field))
            .collect();
        assert_eq!(refused, [(1, "id"), (2, "item_number"), (3, "parent_id")]);
        let dropped: HashSet<(&'static str, usize)> =
            [1, 2, 3].into_iter().map(|i| ("work_items", i)).collect();
        let chunks = split(file, 2, &dropped);
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].origin, vec![("work_items", vec![0, 4])]);
        assert_eq!(chunks[1].origin, vec![("work_items", vec![5])]);

        // A part's skipped rows are named by their place in the file.
        let mut sum = proto::ImportResult::default();
        let part = proto::ImportResult {
            work_items: Some(proto::ImportCounts {
                created: 0,
                updated: 0,
                skipped: 1,
            }),
            skipped: vec![proto::ImportSkip {
                entity: "work_items".into(),
                index: 1,
                id: "d".into(),
                field: Some("parent_id".into()),
                reason: "parent_id: like work_items[0]".into(),
            }],
            ..Default::default()
        };
        add(&mut sum, part, &chunks[0].origin);
        assert_eq!(sum.skipped[0].index, 4);
        assert_eq!(sum.skipped[0].reason, "parent_id: like work_items[0]");
        assert_eq!(sum.work_items.map(|c| c.skipped), Some(1));
    }

    #[test]
    fn indexes_are_rewritten_only_where_they_name_a_row() {
        let at = [10, 20];
        assert_eq!(
            in_file(
                "work_items[1] (id x): parent work_items[0]",
                "work_items",
                &at
            ),
            "work_items[20] (id x): parent work_items[10]"
        );
        assert_eq!(in_file("work_items[9]", "work_items", &at), "work_items[9]");
        assert_eq!(in_file("comments[1]", "work_items", &at), "comments[1]");
        assert_eq!(in_file("work_items[", "work_items", &at), "work_items[");
    }
}
