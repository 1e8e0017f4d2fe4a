//! `--format table`: the API's JSON as aligned text for people. A list (`{"work_items":[…]}`)
//! becomes one row per entity with the columns that matter for its kind; a single entity
//! (`{"work_item":{…}}`) becomes one `field  value` line per field.
use pm_shared::terminal::sanitize_lines_for_terminal;
use serde_json::{Map, Value};

#[derive(Clone, Copy)]
enum Kind {
    Text,
    /// Cut to this many columns, with an ellipsis.
    Trunc(usize),
    /// Unix seconds shown as a UTC date.
    Date,
    /// Unix seconds shown as a UTC date and time (minutes).
    DateTime,
    /// The first 8 characters of a UUID (a name, put there for the table, as it is).
    ShortId,
    /// A list of `{field_name, old_value, new_value}`: `field old → new; …`.
    Changes,
}

struct Col {
    header: &'static str,
    field: &'static str,
    kind: Kind,
}

const fn col(header: &'static str, field: &'static str, kind: Kind) -> Col {
    Col {
        header,
        field,
        kind,
    }
}

/// The columns of each list the API returns, by its JSON key.
fn columns(list: &str) -> Option<&'static [Col]> {
    use Kind::*;
    const PROJECTS: &[Col] = &[
        col("KEY", "key", Text),
        col("TITLE", "title", Trunc(40)),
        col("STATUS", "status", Text),
        col("VER", "version", Text),
        col("ID", "id", Text),
    ];
    const WORK_ITEMS: &[Col] = &[
        col("KEY", "display_key", Text),
        col("TYPE", "item_type", Text),
        col("STATUS", "status", Text),
        col("PRIORITY", "priority", Text),
        col("PTS", "story_points", Text),
        col("VER", "version", Text),
        col("TITLE", "title", Trunc(50)),
    ];
    const SPRINTS: &[Col] = &[
        col("NAME", "name", Trunc(30)),
        col("STATUS", "status", Text),
        col("START", "start_date", Date),
        col("END", "end_date", Date),
        col("VER", "version", Text),
        col("ID", "id", Text),
    ];
    const COMMENTS: &[Col] = &[
        col("ID", "id", Text),
        col("BY", "created_by", ShortId),
        col("CREATED", "created_at", DateTime),
        col("CONTENT", "content", Trunc(50)),
    ];
    const DEPENDENCIES: &[Col] = &[
        col("ID", "id", Text),
        col("TYPE", "dependency_type", Text),
        col("BLOCKING", "blocking_item_id", Text),
        col("BLOCKED", "blocked_item_id", Text),
        col("CREATED", "created_at", DateTime),
    ];
    const TIME_ENTRIES: &[Col] = &[
        col("ID", "id", Text),
        col("USER", "user_id", ShortId),
        col("STARTED", "started_at", DateTime),
        col("ENDED", "ended_at", DateTime),
        col("SECS", "duration_seconds", Text),
        col("DESCRIPTION", "description", Trunc(30)),
    ];
    const ACTIVITY: &[Col] = &[
        col("WHEN", "timestamp", DateTime),
        col("BY", "user_id", ShortId),
        col("ACTION", "action", Text),
        col("CHANGES", "changes", Changes),
    ];
    const SWIM_LANES: &[Col] = &[
        col("POS", "position", Text),
        col("NAME", "name", Text),
        col("STATUS", "status_value", Text),
    ];
    const MEMBERS: &[Col] = &[
        col("USER", "user_id", Text),
        col("NAME", "name", Trunc(30)),
        col("ROLE", "role", Text),
        col("SINCE", "created_at", Date),
    ];
    match list {
        "projects" => Some(PROJECTS),
        "members" => Some(MEMBERS),
        "work_items" => Some(WORK_ITEMS),
        "sprints" => Some(SPRINTS),
        "comments" => Some(COMMENTS),
        "swim_lanes" => Some(SWIM_LANES),
        "dependencies" => Some(DEPENDENCIES),
        "time_entries" => Some(TIME_ENTRIES),
        "activity" => Some(ACTIVITY),
        _ => None,
    }
}

/// Renders a response body as text for a terminal: every control and bidi character of the
/// server's text is replaced by a visible placeholder (`pm_shared::terminal`), one for one, so the
/// alignment holds and a title cannot write escape sequences to the terminal.
pub fn render(body: &Value) -> String {
    let text = layout(body);
    sanitize_lines_for_terminal(&text).into_owned()
}

fn layout(body: &Value) -> String {
    match body {
        Value::Object(map) if map.len() == 1 => {
            let Some((key, value)) = map.iter().next() else {
                return String::new();
            };
            match value {
                Value::Array(rows) => list(key, rows),
                Value::Object(entity) => fields(&format!("{key}s"), entity),
                _ => fields("", map),
            }
        }
        // A list with its paging facts (`{"activity": […], "total_count": 3, …}`).
        Value::Object(map) if map.values().filter(|v| v.is_array()).count() == 1 => {
            let Some((key, Value::Array(rows))) = map.iter().find(|(_, v)| v.is_array()) else {
                return fields("", map);
            };
            let rest: Map<String, Value> = map
                .iter()
                .filter(|(k, _)| *k != key)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if rest.is_empty() {
                list(key, rows)
            } else {
                format!("{}\n{}", list(key, rows), fields("", &rest))
            }
        }
        Value::Object(map) => fields("", map),
        Value::Array(rows) => list("", rows),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}

fn list(name: &str, rows: &[Value]) -> String {
    // (header, field, kind). An unknown list shows the scalar fields of its first row.
    let spec: Vec<(String, &str, Kind)> = match columns(name) {
        Some(cols) => cols
            .iter()
            .map(|c| (c.header.to_string(), c.field, c.kind))
            .collect(),
        None => rows
            .first()
            .and_then(Value::as_object)
            .map(|o| {
                o.iter()
                    .filter(|(_, v)| !v.is_object() && !v.is_array())
                    .map(|(k, _)| (k.to_uppercase(), k.as_str(), Kind::Trunc(40)))
                    .collect()
            })
            .unwrap_or_default(),
    };
    let mut table: Vec<Vec<String>> = vec![spec.iter().map(|(h, _, _)| h.clone()).collect()];
    for row in rows {
        table.push(
            spec.iter()
                .map(|(_, field, kind)| cell(row.get(*field).unwrap_or(&Value::Null), *kind))
                .collect(),
        );
    }
    let mut out = align(&table);
    if rows.is_empty() {
        let what = if name.is_empty() {
            "rows".to_string()
        } else {
            name.replace('_', " ")
        };
        out.push_str(&format!("\n(no {what})"));
    }
    out
}

/// One `field  value` line per field: the list columns' fields first, then the rest.
fn fields(list_name: &str, entity: &Map<String, Value>) -> String {
    let mut order: Vec<&str> = columns(list_name)
        .map(|cols| cols.iter().map(|c| c.field).collect())
        .unwrap_or_default();
    order.retain(|f| entity.contains_key(*f));
    let mut rest: Vec<&String> = entity.keys().collect();
    rest.sort();
    for k in rest {
        if !order.contains(&k.as_str()) {
            order.push(k);
        }
    }
    let width = order
        .iter()
        .map(|f| crate::width::width(f))
        .max()
        .unwrap_or(0);
    let mut lines = Vec::new();
    for f in order {
        let v = entity.get(f).unwrap_or(&Value::Null);
        let kind = if f.ends_with("_at") || f.ends_with("_date") {
            Kind::DateTime
        } else {
            Kind::Text
        };
        let text = match v {
            Value::String(s) => s.clone(),
            _ => cell(v, kind),
        };
        let pad = " ".repeat(width + 2);
        let text = text.lines().collect::<Vec<_>>().join(&format!("\n{pad}"));
        let field = crate::width::pad(f, width);
        lines.push(format!("{field}  {text}").trim_end().to_string());
    }
    lines.join("\n")
}

fn cell(v: &Value, kind: Kind) -> String {
    if let (Kind::Changes, Value::Array(changes)) = (kind, v) {
        let shown = |v: &Value| match v {
            Value::String(s) => s.chars().take(20).collect::<String>(),
            Value::Null => "-".to_string(),
            other => other.to_string(),
        };
        return changes
            .iter()
            .map(|c| {
                format!(
                    "{} {} → {}",
                    c["field_name"].as_str().unwrap_or("?"),
                    shown(&c["old_value"]),
                    shown(&c["new_value"])
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
    }
    let text = match v {
        Value::Null => return "-".to_string(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match (kind, n.as_i64()) {
            (Kind::Date, Some(secs)) => date(secs, false),
            (Kind::DateTime, Some(secs)) => date(secs, true),
            _ => n.to_string(),
        },
        other => other.to_string(),
    };
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match kind {
        Kind::Trunc(max) => crate::width::truncate(&one_line, max),
        // A user's name when the table was given one, else the id's first 8 characters.
        Kind::ShortId if uuid::Uuid::parse_str(&one_line).is_ok() => {
            one_line.chars().take(8).collect()
        }
        Kind::ShortId => crate::width::truncate(&one_line, 16),
        _ => one_line,
    }
}

/// Unix seconds as `YYYY-MM-DD` or `YYYY-MM-DD HH:MM` (UTC).
fn date(secs: i64, with_time: bool) -> String {
    if with_time {
        pm_shared::date::ymd_hm(secs)
    } else {
        pm_shared::date::ymd(secs)
    }
}

fn align(rows: &[Vec<String>]) -> String {
    let ncols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..ncols)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| crate::width::width(c))
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|r| {
            r.iter()
                .zip(&widths)
                .map(|(c, w)| crate::width::pad(c, *w))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_are_aligned_with_their_kind_of_columns() {
        let body = json!({"work_items": [
            {"display_key": "PM-1", "item_type": "epic", "status": "backlog", "priority": "high",
             "story_points": null, "version": 1, "title": "Checkout"},
            {"display_key": "PM-10", "item_type": "task", "status": "in_progress",
             "priority": "medium", "story_points": 3, "version": 12, "title": "A\nB"},
        ]});
        assert_eq!(
            render(&body),
            "KEY    TYPE  STATUS       PRIORITY  PTS  VER  TITLE\n\
             PM-1   epic  backlog      high      -    1    Checkout\n\
             PM-10  task  in_progress  medium    3    12   A B"
        );
    }

    #[test]
    fn empty_lists_say_so() {
        assert_eq!(
            render(&json!({"swim_lanes": []})),
            "POS  NAME  STATUS\n(no swim lanes)"
        );
    }

    #[test]
    fn single_entities_are_field_value_lines() {
        let body = json!({"sprint": {"id": "s1", "name": "S", "status": "planned",
            "start_date": 0, "end_date": 86_400, "version": 1, "goal": null,
            "created_at": 1_795_327_200}});
        assert_eq!(
            render(&body),
            "name        S\nstatus      planned\nstart_date  1970-01-01 00:00\n\
             end_date    1970-01-02 00:00\nversion     1\nid          s1\n\
             created_at  2026-11-22 06:00\ngoal        -"
        );
        assert_eq!(render(&json!({"deleted_id": "x"})), "deleted_id  x");
    }

    #[test]
    fn history_lists_show_their_changes_and_paging() {
        let body = json!({"activity": [
            {"timestamp": 0, "user_id": "aaaaaaaa-1111-4111-8111-111111111111", "action": "updated",
             "changes": [{"field_name": "status", "old_value": "todo", "new_value": "done"},
                         {"field_name": "assignee_id", "old_value": null, "new_value": "bob"}]}
        ], "total_count": 1, "has_more": false});
        assert_eq!(
            render(&body),
            "WHEN              BY        ACTION   CHANGES\n\
             1970-01-01 00:00  aaaaaaaa  updated  status todo → done; assignee_id - → bob\n\
             has_more     false\ntotal_count  1"
        );
    }

    #[test]
    fn controls_and_bidi_marks_never_reach_the_terminal() {
        let evil = "\x1b[31mred\0\u{202E}txt.exe\x1b]0;pwned\x07";
        let out = render(&json!({"work_items": [
            {"display_key": "PM-1", "item_type": "task", "status": "todo", "priority": "low",
             "story_points": null, "version": 1, "title": evil},
        ]}));
        assert!(!out.contains(['\x1b', '\0', '\u{202E}', '\x07']), "{out:?}");
        assert!(out.contains("�[31mred��txt.exe�]0;pwned�"), "{out:?}");
        let out = render(&json!({"comment": {"id": "c", "content": "a\r\nb\u{2066}\n\tc"}}));
        assert_eq!(out, "id       c\ncontent  a\n         b�\n         �c");
        let out = render(&json!({"things": [{"k\x1b": "v\u{200F}"}]}));
        assert!(!out.contains(['\x1b', '\u{200F}']), "{out:?}");
    }

    #[test]
    fn wide_characters_are_aligned_and_cut_by_display_width() {
        let body = json!({"projects": [
            {"key": "JP", "title": "日本語のプロジェクト", "status": "active", "version": 1,
             "id": "a"},
            {"key": "EN", "title": "English", "status": "active", "version": 1, "id": "b"},
            {"key": "EM", "title": "🚀 launch", "status": "active", "version": 1, "id": "c"},
        ]});
        let out = render(&body);
        // The STATUS column starts at the same display column on every row.
        let starts: Vec<usize> = out
            .lines()
            .map(|l| {
                let at = l.find("STATUS").or_else(|| l.find("active")).unwrap_or(0);
                crate::width::width(&l[..at])
            })
            .collect();
        assert!(starts.windows(2).all(|w| w[0] == w[1]), "{out}\n{starts:?}");
        let title = "漢".repeat(30);
        let out = render(&json!({"projects": [{"key": "PM", "title": title}]}));
        let cut = format!("{}…", "漢".repeat(19));
        assert!(
            out.contains(&cut),
            "40 columns, the ellipsis included:\n{out}"
        );
    }

    #[test]
    fn long_cells_are_cut() {
        let title = "x".repeat(60);
        let out = render(&json!({"projects": [{"key": "PM", "title": title}]}));
        assert!(out.contains(&format!("{}…", "x".repeat(39))), "{out}");
    }
}
