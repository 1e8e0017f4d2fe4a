//! A `SetPresenceRequest` as a client sent it, checked: ids are UUIDs, the free-form parts are
//! short and printable.
use pm_shared::proto::SetPresenceRequest;

use crate::error::{AppError, AppResult};
use crate::ids::parse_id;

/// Longest work item id or field name accepted, in characters.
pub const MAX_PART: usize = 64;

/// Where a connection says it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub project: String,
    pub item: Option<String>,
    pub field: Option<String>,
    pub invisible: bool,
}

/// The checked request: None when it says "I am on no board any more" (an empty project_id).
pub fn check(request: SetPresenceRequest) -> AppResult<Option<Wanted>> {
    if request.project_id.is_empty() {
        return Ok(None);
    }
    let project = parse_id("project_id", &request.project_id)?;
    let item = match request.work_item_id.filter(|i| !i.is_empty()) {
        Some(item) => Some(parse_id("work_item_id", &item)?),
        None => None,
    };
    let field = match request.field.filter(|f| !f.is_empty()) {
        Some(field) => Some(field_name(field)?),
        None => None,
    };
    Ok(Some(Wanted {
        project,
        item,
        field,
        invisible: request.invisible,
    }))
}

fn field_name(field: String) -> AppResult<String> {
    let refuse = |message: String| AppError::Validation {
        field: Some("field".into()),
        message,
    };
    if field.chars().count() > MAX_PART {
        return Err(refuse(format!(
            "field must be at most {MAX_PART} characters"
        )));
    }
    if field.chars().any(char::is_control) {
        return Err(refuse("field must not contain control characters".into()));
    }
    Ok(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "7d0c6f3e-5a0e-4c1b-9a43-2f7c1f0d6a11";

    fn request(project: &str, item: Option<&str>, field: Option<&str>) -> SetPresenceRequest {
        SetPresenceRequest {
            project_id: project.into(),
            work_item_id: item.map(Into::into),
            field: field.map(Into::into),
            invisible: false,
        }
    }

    #[test]
    fn an_empty_project_leaves_and_empty_parts_are_none() {
        assert_eq!(check(request("", Some("x"), None)).unwrap(), None);
        let wanted = check(request(P, Some(""), Some(""))).unwrap().unwrap();
        assert_eq!((wanted.item, wanted.field), (None, None));
    }

    #[test]
    fn bad_ids_long_and_unprintable_fields_are_refused() {
        assert!(check(request("nope", None, None)).is_err());
        assert!(check(request(P, Some("nope"), None)).is_err());
        let long = "f".repeat(MAX_PART + 1);
        let err = check(request(P, None, Some(&long))).unwrap_err();
        assert_eq!(err.code(), "VALIDATION_ERROR");
        assert!(check(request(P, None, Some("ti\ntle"))).is_err());
        assert!(check(request(P, None, Some(&"é".repeat(MAX_PART)))).is_ok());
    }
}
