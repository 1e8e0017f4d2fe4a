//! The reference CLI's TOML round trip: `--output-toml PATH` writes a response as TOML, and
//! `work-item create|update --from-toml PATH` reads a work item's fields from such a file. TOML
//! because its multi-line strings keep Markdown descriptions readable and editable, which JSON's
//! escaped one-line strings do not.
use std::path::Path;

use serde_json::Value;

/// A response as a TOML document: `null`s are left out (TOML has no null), an array whose
/// elements are not all of one kind becomes an array of strings (each element's JSON text, a
/// string as itself), as the reference writes it. A body that is not a JSON object is written
/// under the key `value` (a TOML document is always a table).
pub fn to_toml(body: &Value) -> Result<String, String> {
    let table = match body {
        Value::Object(_) => convert(body),
        other => {
            let mut t = toml::Table::new();
            if let Some(v) = convert(other) {
                t.insert("value".to_string(), v);
            }
            Some(toml::Value::Table(t))
        }
    };
    let Some(toml::Value::Table(table)) = table else {
        return Err("the response is not a JSON object".to_string());
    };
    toml::to_string(&table).map_err(|e| e.to_string())
}

/// Writes `body` as TOML to `path`.
pub fn write(path: &Path, body: &Value) -> Result<(), String> {
    let text =
        to_toml(body).map_err(|e| format!("cannot write {} as TOML: {e}", path.display()))?;
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// A JSON value as TOML; `None` for `null`.
fn convert(value: &Value) -> Option<toml::Value> {
    Some(match value {
        Value::Null => return None,
        Value::Bool(b) => toml::Value::Boolean(*b),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => toml::Value::Integer(i),
            // Past i64 (TOML's integer range) the exact digits survive only as text.
            (None, _) if n.is_u64() => toml::Value::String(n.to_string()),
            (None, Some(f)) => toml::Value::Float(f),
            (None, None) => toml::Value::String(n.to_string()),
        },
        Value::String(s) => toml::Value::String(s.clone()),
        Value::Array(items) => {
            let items: Vec<&Value> = items.iter().filter(|v| !v.is_null()).collect();
            let first_kind = items.first().map(|v| kind(v));
            if items.iter().all(|v| Some(kind(v)) == first_kind) {
                toml::Value::Array(items.into_iter().filter_map(convert).collect())
            } else {
                toml::Value::Array(
                    items
                        .into_iter()
                        .map(|v| match v {
                            Value::String(s) => toml::Value::String(s.clone()),
                            other => toml::Value::String(other.to_string()),
                        })
                        .collect(),
                )
            }
        }
        Value::Object(map) => toml::Value::Table(
            map.iter()
                .filter_map(|(k, v)| convert(v).map(|v| (k.clone(), v)))
                .collect(),
        ),
    })
}

/// The TOML kind a JSON value becomes (integers and floats are different kinds in TOML).
fn kind(value: &Value) -> u8 {
    match value {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(n) if n.is_i64() => 2,
        Value::Number(_) => 3,
        Value::String(_) => 4,
        Value::Array(_) => 5,
        Value::Object(_) => 6,
    }
}

/// A work item's fields read from a TOML file, in the reference's shape: `type` (or, as
/// `--output-toml` writes it, `item_type`), `project_id, title, description, parent_id, status,
/// priority, assignee_id, sprint_id, story_points, position`, at the top level or in a
/// `[work_item]` table. Other keys (`id`, `version`, `created_at`, … of a file that
/// `--output-toml` wrote) are ignored, so a fetched item can be edited and sent back.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WorkItemToml {
    pub project_id: Option<String>,
    pub item_type: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub parent_id: Option<String>,
    pub status: Option<String>,
    pub priority: Option<String>,
    pub assignee_id: Option<String>,
    pub sprint_id: Option<String>,
    pub story_points: Option<i32>,
    pub position: Option<i32>,
}

impl WorkItemToml {
    /// Reads and checks `path`. Every error names the file, and the key when one is at fault.
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses a file's text; errors name the key at fault.
    pub fn parse(text: &str) -> Result<Self, String> {
        let doc: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            format!("not valid TOML: {}", e.to_string().trim_end())
        })?;
        let fields = match doc.get("work_item") {
            Some(toml::Value::Table(inner)) => inner,
            Some(_) => return Err("key `work_item` must be a table ([work_item])".to_string()),
            None => &doc,
        };
        let text_of = |key: &str| -> Result<Option<String>, String> {
            match fields.get(key) {
                None => Ok(None),
                Some(toml::Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(format!(
                    "key `{key}` must be a string, found {}",
                    other.type_str()
                )),
            }
        };
        let int_of =
            |key: &str, range: std::ops::RangeInclusive<i64>| -> Result<Option<i32>, String> {
                match fields.get(key) {
                    None => Ok(None),
                    Some(toml::Value::Integer(n)) if range.contains(n) => i32::try_from(*n)
                        .map(Some)
                        .map_err(|_| format!("key `{key}` is out of range")),
                    Some(toml::Value::Integer(n)) => Err(format!(
                        "key `{key}` must be between {} and {}, found {n}",
                        range.start(),
                        range.end()
                    )),
                    Some(other) => Err(format!(
                        "key `{key}` must be an integer, found {}",
                        other.type_str()
                    )),
                }
            };
        let one_of = |key: &str, allowed: &[&str]| -> Result<Option<String>, String> {
            let value = text_of(key)?;
            match value {
                Some(v) if !allowed.contains(&v.as_str()) => Err(format!(
                    "key `{key}` must be one of {}, found \"{v}\"",
                    allowed.join(", ")
                )),
                v => Ok(v),
            }
        };
        use pm_shared::domain::{ItemType, Priority, Status};
        let types: Vec<&str> = ItemType::ALL.iter().map(|t| t.as_str()).collect();
        let statuses: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
        let priorities: Vec<&str> = Priority::ALL.iter().map(|p| p.as_str()).collect();
        let item_type = match (one_of("type", &types)?, one_of("item_type", &types)?) {
            (Some(a), Some(b)) if a != b => {
                return Err(format!(
                    "keys `type` (\"{a}\") and `item_type` (\"{b}\") disagree"
                ))
            }
            (a, b) => a.or(b),
        };
        Ok(WorkItemToml {
            project_id: text_of("project_id")?,
            item_type,
            title: text_of("title")?,
            description: text_of("description")?,
            parent_id: text_of("parent_id")?,
            status: one_of("status", &statuses)?,
            priority: one_of("priority", &priorities)?,
            assignee_id: text_of("assignee_id")?,
            sprint_id: text_of("sprint_id")?,
            story_points: int_of("story_points", 0..=100)?,
            position: int_of("position", 0..=i64::from(i32::MAX))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nulls_are_dropped_and_mixed_arrays_become_strings() {
        let body = json!({"work_item": {
            "title": "T", "parent_id": null, "version": 3,
            "tags": ["a", "b"], "mixed": [1, "two", true, null], "empty": [],
            "description": "line 1\nline \"2\"\n```code```"
        }});
        let text = to_toml(&body).unwrap();
        assert!(text.starts_with("[work_item]\n"), "{text}");
        assert!(!text.contains("parent_id"), "{text}");
        let back: toml::Table = text.parse().unwrap();
        let item = back["work_item"].as_table().unwrap();
        assert_eq!(item["version"].as_integer(), Some(3));
        assert_eq!(
            item["mixed"],
            toml::Value::Array(vec!["1".into(), "two".into(), "true".into()])
        );
        assert_eq!(
            item["tags"],
            toml::Value::Array(vec!["a".into(), "b".into()])
        );
        assert_eq!(item["empty"], toml::Value::Array(vec![]));
        assert_eq!(
            item["description"].as_str(),
            Some("line 1\nline \"2\"\n```code```")
        );
    }

    #[test]
    fn lists_become_arrays_of_tables_and_non_objects_a_value_key() {
        let text = to_toml(&json!({"projects": [{"key": "A"}, {"key": "B"}]})).unwrap();
        assert!(text.contains("[[projects]]"), "{text}");
        // A table before a plain value (TOML wants plain values first) still reads back.
        let body = json!({"sub": {"x": 1}, "after": 2, "rows": [{"a": 1}], "last": "z"});
        let back: toml::Table = to_toml(&body).unwrap().parse().unwrap();
        assert_eq!(back["after"].as_integer(), Some(2));
        assert_eq!(back["last"].as_str(), Some("z"));
        assert_eq!(back["sub"]["x"].as_integer(), Some(1));
        let text = to_toml(&json!([1, 2])).unwrap();
        assert_eq!(text.trim(), "value = [1, 2]");
    }

    #[test]
    fn work_item_files_may_be_flat_or_wrapped() {
        let flat = WorkItemToml::parse("type = \"task\"\ntitle = \"T\"\nstory_points = 5").unwrap();
        let wrapped =
            WorkItemToml::parse("[work_item]\ntype = \"task\"\ntitle = \"T\"\nstory_points = 5")
                .unwrap();
        assert_eq!(flat, wrapped);
        assert_eq!(flat.item_type.as_deref(), Some("task"));
        assert_eq!(flat.story_points, Some(5));
        // What --output-toml wrote reads back, its extra keys ignored.
        let fetched =
            WorkItemToml::parse("[work_item]\nid = \"x\"\nversion = 2\nitem_type = \"epic\"")
                .unwrap();
        assert_eq!(fetched.item_type.as_deref(), Some("epic"));
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("story_points = \"five\"", "`story_points`"),
            ("story_points = 101", "`story_points`"),
            ("status = \"later\"", "`status`"),
            ("title = 3", "`title`"),
            ("type = \"task\"\nitem_type = \"epic\"", "`type`"),
            ("work_item = 1", "`work_item`"),
        ];
        for (text, key) in cases {
            let err = WorkItemToml::parse(text).unwrap_err();
            assert!(err.contains(key), "{text}: {err}");
        }
        let err = WorkItemToml::parse("title = \"unterminated").unwrap_err();
        assert!(err.contains("not valid TOML"), "{err}");
    }
}
