//! The import's work items: every row is checked first, then they are written parents first,
//! then no parent chain may loop (through rows already stored, too). Their events are built
//! last, with the hierarchy lists as the import leaves them.
use std::collections::{HashMap, HashSet};

use pm_shared::domain::limits::ValidationLimits;
use pm_shared::domain::EntityType;
use pm_shared::domain::{self, ItemType};
use pm_shared::proto::{self, Payload};

use super::{decide, replaced, Counts, Importer, Outcome, Row, Write};
use crate::commands::{track, work_item, Action};
use crate::error::{AppError, AppResult};
use crate::store::rows::WorkItemRow;
use crate::store::{hierarchy, projects, queries, sprints, work_items};
use crate::sync::WorkItemDto;

impl Importer<'_> {
    pub(super) async fn work_items(&mut self, rows: &[WorkItemDto]) -> AppResult<Counts> {
        // Check every row, then write parents before children. A refused row (tolerant mode)
        // stays a None: it is neither written nor anyone's parent in this import.
        let mut counts = Counts::default();
        let mut valid: Vec<Option<WorkItemRow>> = Vec::with_capacity(rows.len());
        let mut index_of: HashMap<String, usize> = HashMap::new();
        let mut numbers: HashMap<(String, i64), usize> = HashMap::new();
        for (index, w) in rows.iter().enumerate() {
            let row = Row {
                list: "work_items",
                index,
                id: &w.id,
            };
            let checked = check_item(&row, w, self.limits).and_then(|item| {
                if index_of.contains_key(&item.id) {
                    return Err(row.err("id", "appears more than once in this import"));
                }
                let number = (item.project_id.clone(), item.item_number);
                if let Some(first) = numbers.get(&number) {
                    return Err(row.err(
                        "item_number",
                        format!(
                            "{} is also the number of work_items[{first}] in the same project",
                            item.item_number
                        ),
                    ));
                }
                index_of.insert(item.id.clone(), index);
                numbers.insert(number, index);
                Ok(item)
            });
            match checked {
                Ok(item) => valid.push(Some(item)),
                Err(e) => {
                    self.refuse(&row, e)?;
                    counts.add(Outcome::Skipped);
                    valid.push(None);
                }
            }
        }
        // A parent cycle within the file: strict mode refuses the import; tolerant mode leaves
        // out one row of the cycle at a time until none is left.
        let order = loop {
            match parents_first(&valid, &index_of) {
                Ok(order) => break order,
                Err(index) => {
                    let row = Row {
                        list: "work_items",
                        index,
                        id: &rows[index].id,
                    };
                    let e = row.err("parent_id", "the parent links of this import form a cycle");
                    self.refuse(&row, e)?;
                    counts.add(Outcome::Skipped);
                    if let Some(item) = valid[index].take() {
                        index_of.remove(&item.id);
                    }
                }
            }
        };

        let mut written: Vec<(usize, Action, Vec<proto::FieldChange>)> = Vec::new();
        for index in order {
            let Some(item) = valid[index].as_ref() else {
                continue;
            };
            let row = Row {
                list: "work_items",
                index,
                id: &rows[index].id,
            };
            let mark = self.begin_row().await?;
            let result = self.upsert_work_item(&row, item).await;
            match self.end_row(mark, &row, result).await? {
                Some((outcome, change)) => {
                    counts.add(outcome);
                    if let Some((action, changes)) = change {
                        written.push((index, action, changes));
                    }
                }
                None => counts.add(Outcome::Skipped),
            }
        }

        // No parent cycle through rows that were already here, either.
        let mut items_by_project: HashMap<String, HashMap<String, proto::WorkItem>> =
            HashMap::new();
        for project in &self.touched {
            let mut items: Vec<proto::WorkItem> = queries::work_items(&mut self.conn, project)
                .await?
                .into_iter()
                .map(|r| r.into_proto())
                .collect();
            if let Some(id) = first_in_cycle(&items) {
                let index = index_of.get(&id).copied().unwrap_or(0);
                let row = Row {
                    list: "work_items",
                    index,
                    id: &id,
                };
                return Err(row.err(
                    "parent_id",
                    "this parent would make the work item its own ancestor",
                ));
            }
            hierarchy::fill_all(&mut items);
            items_by_project.insert(
                project.clone(),
                items.into_iter().map(|w| (w.id.clone(), w)).collect(),
            );
        }
        for (index, action, changes) in written {
            let Some(item) = &valid[index] else {
                continue;
            };
            let Some(w) = items_by_project
                .get(&item.project_id)
                .and_then(|m| m.get(&item.id))
                .cloned()
            else {
                return Err(AppError::not_found("Work item", &item.id));
            };
            let user_id = self.actor.user_id.clone();
            let event = match action {
                Action::Created => Payload::WorkItemCreated(proto::WorkItemCreated {
                    work_item: Some(w),
                    user_id,
                    ..Default::default()
                }),
                _ => Payload::WorkItemUpdated(proto::WorkItemUpdated {
                    work_item: Some(w),
                    changes: changes.clone(),
                    user_id,
                }),
            };
            self.push(
                item.project_id.clone(),
                EntityType::WorkItem,
                &item.id,
                action,
                changes,
                event,
            );
        }
        Ok(counts)
    }

    /// Writes a checked item (see [`check_item`]); answers what clients are told of it when it
    /// was written (its event waits for the hierarchy lists).
    async fn upsert_work_item(
        &mut self,
        row: &Row<'_>,
        item: &WorkItemRow,
    ) -> AppResult<(Outcome, Option<(Action, Vec<proto::FieldChange>)>)> {
        if projects::project(&mut self.conn, &item.project_id)
            .await?
            .is_none()
        {
            return Err(row.err(
                "project_id",
                format!("project {} not found", item.project_id),
            ));
        }
        if let Some(parent) = &item.parent_id {
            match work_items::live_project_of(&mut self.conn, parent).await? {
                None => {
                    return Err(row.err("parent_id", format!("parent work item {parent} not found")))
                }
                Some(p) if p != item.project_id => {
                    return Err(row.err(
                        "parent_id",
                        format!("parent work item {parent} belongs to another project"),
                    ))
                }
                Some(_) => {}
            }
        }
        if let Some(sprint) = &item.sprint_id {
            match sprints::sprint(&mut self.conn, sprint)
                .await?
                .map(|s| s.project_id)
            {
                None => return Err(row.err("sprint_id", format!("sprint {sprint} not found"))),
                Some(p) if p != item.project_id => {
                    return Err(row.err(
                        "sprint_id",
                        format!("sprint {sprint} belongs to another project"),
                    ))
                }
                Some(_) => {}
            }
        }
        let old = work_items::work_item_any(&mut self.conn, &item.id).await?;
        if let Some(old) = &old {
            row.keep_owner(
                "project_id",
                "work item",
                "project",
                &old.project_id,
                &item.project_id,
            )?;
            if old.item_type != item.item_type {
                return Err(row.err(
                    "item_type",
                    format!(
                        "the work item is a {}; an import cannot change its type",
                        old.item_type
                    ),
                ));
            }
        }
        let Some(write) = decide(
            old,
            item.updated_at,
            |o| o.updated_at,
            |o| o.deleted_at.is_some(),
        ) else {
            return Ok((Outcome::Skipped, None));
        };
        if let Some(other) =
            work_items::number_holder(&mut self.conn, &item.project_id, item.item_number, &item.id)
                .await?
        {
            return Err(row.err(
                "item_number",
                format!(
                    "{} is already the number of work item {other} in this project",
                    item.item_number
                ),
            ));
        }
        self.touched.insert(item.project_id.clone());
        let change = match &write {
            Write::Insert => {
                work_items::insert(&mut self.conn, item).await?;
                let mut changes = Vec::new();
                track(&mut changes, "title", None, Some(item.title.clone()));
                track(
                    &mut changes,
                    "item_type",
                    None,
                    Some(item.item_type.clone()),
                );
                track(&mut changes, "status", None, Some(item.status.clone()));
                track(&mut changes, "priority", None, Some(item.priority.clone()));
                track(&mut changes, "parent_id", None, item.parent_id.clone());
                (Action::Created, changes)
            }
            Write::Replace { old, revive } => {
                // Every client applies the change: its version is above theirs.
                let new = WorkItemRow {
                    version: item.version.max(old.version + 1),
                    ..item.clone()
                };
                work_items::replace(&mut self.conn, &new).await?;
                (replaced(*revive), work_item::diff(old, item))
            }
        };
        // Tolerant mode refuses this row alone when it closes a parent loop through rows that
        // were already stored (strict mode looks for loops once every row is in).
        if self.tolerant()
            && item.parent_id.is_some()
            && hierarchy::ancestors(&mut self.conn, &item.id)
                .await?
                .contains(&item.id)
        {
            return Err(row.err(
                "parent_id",
                "this parent would make the work item its own ancestor",
            ));
        }
        Ok((write.outcome(), Some(change)))
    }
}

/// A work item row as it will be stored, from its DTO, or the first rule it breaks.
fn check_item(row: &Row<'_>, w: &WorkItemDto, limits: &ValidationLimits) -> AppResult<WorkItemRow> {
    let id = row.uuid("id", &w.id)?;
    let project_id = row.uuid("project_id", &w.project_id)?;
    let item_type = ItemType::parse(&w.item_type).ok_or_else(|| {
        row.err(
            "item_type",
            format!(
                "Invalid item_type: {}. Valid: {}",
                w.item_type,
                ItemType::choices()
            ),
        )
    })?;
    let title = domain::required_text("title", &w.title, limits.title).map_err(|e| row.rule(e))?;
    let description =
        domain::optional_text("description", w.description.as_deref(), limits.description)
            .map_err(|e| row.rule(e))?;
    let status = domain::status(&w.status).map_err(|e| row.rule(e))?;
    let priority = domain::priority(&w.priority).map_err(|e| row.rule(e))?;
    let parent_id = row.opt_uuid("parent_id", w.parent_id.as_deref())?;
    if parent_id.as_deref() == Some(id.as_str()) {
        return Err(row.err("parent_id", "a work item cannot be its own parent"));
    }
    let story_points = match w.story_points {
        Some(p) => {
            let p = i32::try_from(p)
                .map_err(|_| row.err("story_points", format!("{p} is out of range")))?;
            Some(i64::from(
                domain::story_points(p, limits.story_points).map_err(|e| row.rule(e))?,
            ))
        }
        None => None,
    };
    Ok(WorkItemRow {
        id,
        item_type: item_type.to_string(),
        parent_id,
        project_id,
        position: row.int32("position", w.position, 0)?,
        title,
        description,
        status: status.to_string(),
        priority: priority.to_string(),
        story_points,
        assignee_id: row.opt_uuid("assignee_id", w.assignee_id.as_deref())?,
        sprint_id: row.opt_uuid("sprint_id", w.sprint_id.as_deref())?,
        item_number: row.int32("item_number", w.item_number, 1)?,
        version: row.int32("version", w.version, 1)?,
        created_at: w.created_at,
        updated_at: w.updated_at,
        created_by: row.uuid("created_by", &w.created_by)?,
        updated_by: row.uuid("updated_by", &w.updated_by)?,
        deleted_at: None,
    })
}

/// Indexes of `items` with every parent that is itself imported before its children, in
/// document order otherwise; Err(index) of an item on a parent cycle.
fn parents_first(
    items: &[Option<WorkItemRow>],
    index_of: &HashMap<String, usize>,
) -> Result<Vec<usize>, usize> {
    crate::commands::import_plan::walk_parents_first(items.len(), |i| {
        items[i]
            .as_ref()
            .and_then(|w| w.parent_id.as_ref())
            .and_then(|p| index_of.get(p))
            .copied()
    })
}

/// The id of an item whose parent chain loops, if any.
fn first_in_cycle(items: &[proto::WorkItem]) -> Option<String> {
    let parent: HashMap<&str, &str> = items
        .iter()
        .filter_map(|w| w.parent_id.as_deref().map(|p| (w.id.as_str(), p)))
        .collect();
    let mut sorted: Vec<&str> = items.iter().map(|w| w.id.as_str()).collect();
    sorted.sort_unstable();
    for start in sorted {
        let mut seen = HashSet::from([start]);
        let mut cur = parent.get(start).copied();
        while let Some(p) = cur {
            if p == start {
                return Some(start.to_string());
            }
            if !seen.insert(p) {
                break;
            }
            cur = parent.get(p).copied();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, parent: Option<&str>) -> WorkItemRow {
        WorkItemRow {
            id: id.into(),
            item_type: "task".into(),
            parent_id: parent.map(str::to_string),
            project_id: "p".into(),
            position: 0,
            title: id.into(),
            description: None,
            status: "backlog".into(),
            priority: "medium".into(),
            story_points: None,
            assignee_id: None,
            sprint_id: None,
            item_number: 1,
            version: 1,
            created_at: 0,
            updated_at: 0,
            created_by: String::new(),
            updated_by: String::new(),
            deleted_at: None,
        }
    }

    #[test]
    fn parents_come_first_and_cycles_are_found() {
        let items = vec![
            Some(item("t", Some("s"))),
            Some(item("s", Some("e"))),
            Some(item("e", None)),
            Some(item("x", Some("elsewhere"))),
        ];
        let index_of: HashMap<String, usize> = items
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, w)| (w.id.clone(), i))
            .collect();
        assert_eq!(parents_first(&items, &index_of), Ok(vec![2, 1, 0, 3]));
        let looped = vec![Some(item("a", Some("b"))), Some(item("b", Some("a")))];
        let index_of: HashMap<String, usize> = looped
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, w)| (w.id.clone(), i))
            .collect();
        assert!(parents_first(&looped, &index_of).is_err());
    }

    #[test]
    fn stored_cycles_are_found() {
        let w = |id: &str, parent: Option<&str>| proto::WorkItem {
            id: id.into(),
            parent_id: parent.map(str::to_string),
            ..Default::default()
        };
        assert_eq!(first_in_cycle(&[w("a", None), w("b", Some("a"))]), None);
        assert_eq!(
            first_in_cycle(&[w("a", Some("c")), w("b", Some("a")), w("c", Some("b"))]),
            Some("a".into())
        );
    }
}
