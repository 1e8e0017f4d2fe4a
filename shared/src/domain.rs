//! Domain vocabulary and validation rules, shared so that the server enforces them and clients
//! can check input before sending it. Every rule lives here once.
use crate::proto;

/// Field limits (Unicode characters, counted after trimming).
pub mod limits {
    pub const TITLE_MAX: usize = 200;
    pub const DESCRIPTION_MAX: usize = 10_000;
    pub const COMMENT_MAX: usize = 5_000;
    pub const SPRINT_NAME_MAX: usize = 100;
    pub const SPRINT_GOAL_MAX: usize = 1_000;
    pub const KEY_MIN: usize = 2;
    pub const KEY_MAX: usize = 20;
    pub const STORY_POINTS_MAX: i32 = 100;
    /// Sprint dates must lie within one year back and five years ahead of now.
    pub const SPRINT_PAST_SECS: i64 = 365 * 86_400;
    pub const SPRINT_FUTURE_SECS: i64 = 5 * 365 * 86_400;
    /// A time entry's description.
    pub const TIME_ENTRY_DESCRIPTION_MAX: usize = 1_000;
    /// The longest manual time entry.
    pub const TIME_ENTRY_MAX_SECS: i64 = 86_400;
    /// How far in the future a client clock may put a timestamp.
    pub const CLOCK_SKEW_SECS: i64 = 60;
    /// Live `blocks`/`relates_to` links one item may have on each side.
    pub const DEPENDENCIES_PER_ITEM: i64 = 50;
    /// The earliest timestamp a client may send: 1970-01-01T00:00:00Z.
    pub const TIMESTAMP_MIN: i64 = 0;
    /// The latest timestamp a client may send: 9999-12-31T23:59:59Z. Within
    /// `TIMESTAMP_MIN..=TIMESTAMP_MAX` the difference of two timestamps cannot overflow.
    pub const TIMESTAMP_MAX: i64 = 253_402_300_799;
    /// The longest duration the protocol carries (`TimeEntry.duration_seconds` is an int32).
    pub const DURATION_MAX: i64 = i32::MAX as i64;

    /// The values a server may be configured with for each of [`ValidationLimits`]' maxima
    /// (`[validation]` in the config file): the reference's own ranges, so a config file it
    /// accepts is accepted here too.
    pub const TITLE_MAX_RANGE: std::ops::RangeInclusive<usize> = 1..=500;
    pub const DESCRIPTION_MAX_RANGE: std::ops::RangeInclusive<usize> = 0..=500_000;
    pub const COMMENT_MAX_RANGE: std::ops::RangeInclusive<usize> = 1..=500_000;
    pub const SPRINT_NAME_MAX_RANGE: std::ops::RangeInclusive<usize> = 1..=500;
    pub const STORY_POINTS_MAX_RANGE: std::ops::RangeInclusive<i32> = 0..=1_000;

    /// The text and story-point maxima a server enforces. They are configuration (the
    /// reference's `[validation]` section), so one server may accept what another refuses; the
    /// default is the constants above, which is also what clients check before sending.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct ValidationLimits {
        pub title: usize,
        pub description: usize,
        pub comment: usize,
        pub sprint_name: usize,
        pub story_points: i32,
    }

    impl Default for ValidationLimits {
        fn default() -> Self {
            ValidationLimits {
                title: TITLE_MAX,
                description: DESCRIPTION_MAX,
                comment: COMMENT_MAX,
                sprint_name: SPRINT_NAME_MAX,
                story_points: STORY_POINTS_MAX,
            }
        }
    }
}

/// A rule violation: which field, what is wrong, and whether the reference reports it as
/// INVALID_MESSAGE (length/format checks) or VALIDATION_ERROR (values and business rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub field: &'static str,
    pub message: String,
    pub kind: RuleKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    /// Reported as INVALID_MESSAGE (reference: MessageValidator length and format checks).
    Format,
    /// Reported as VALIDATION_ERROR.
    Value,
}

impl RuleError {
    pub fn format(field: &'static str, message: impl Into<String>) -> Self {
        RuleError {
            field,
            message: message.into(),
            kind: RuleKind::Format,
        }
    }
    pub fn value(field: &'static str, message: impl Into<String>) -> Self {
        RuleError {
            field,
            message: message.into(),
            kind: RuleKind::Value,
        }
    }
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.message)
    }
}

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $text:literal / $label:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The wire and database spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
            /// The human label.
            pub fn label(self) -> &'static str {
                match self { $($name::$variant => $label),+ }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
            /// "a, b, c": for error messages.
            pub fn choices() -> String {
                [$($text),+].join(", ")
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum!(
    /// Work item types, in hierarchy order.
    ItemType { Epic => "epic" / "Epic", Story => "story" / "Story", Task => "task" / "Task" }
);
string_enum!(
    /// Workflow status of a work item: the five lanes of the board, in order.
    Status {
        Backlog => "backlog" / "Backlog",
        Todo => "todo" / "To Do",
        InProgress => "in_progress" / "In Progress",
        Review => "review" / "Review",
        Done => "done" / "Done",
    }
);
string_enum!(
    /// Work item priority, lowest first.
    Priority { Low => "low" / "Low", Medium => "medium" / "Medium", High => "high" / "High", Critical => "critical" / "Critical" }
);
string_enum!(
    SprintStatus {
        Planned => "planned" / "Planned",
        Active => "active" / "Active",
        Completed => "completed" / "Completed",
        Cancelled => "cancelled" / "Cancelled",
    }
);
string_enum!(
    /// The fields of a work item that an edit changes, in the order a change lists them. The
    /// wire spelling is a `FieldChange.field_name`.
    WorkItemField {
        Title => "title" / "Title",
        Description => "description" / "Description",
        Status => "status" / "Status",
        Priority => "priority" / "Priority",
        StoryPoints => "story_points" / "Story points",
        Position => "position" / "Position",
        AssigneeId => "assignee_id" / "Assignee",
        SprintId => "sprint_id" / "Sprint",
        ParentId => "parent_id" / "Parent",
        ItemType => "item_type" / "Type",
    }
);
string_enum!(ProjectStatus { Active => "active" / "Active", Archived => "archived" / "Archived" });
string_enum!(
    /// The kinds of entity whose changes are logged and broadcast: the `entity_type` of an
    /// activity entry.
    EntityType {
        Project => "project" / "Project",
        ProjectMember => "project_member" / "Member",
        WorkItem => "work_item" / "Work item",
        Sprint => "sprint" / "Sprint",
        Comment => "comment" / "Comment",
        Dependency => "dependency" / "Dependency",
        TimeEntry => "time_entry" / "Time entry",
    }
);
string_enum!(
    /// How two work items are linked: `blocks` orders work (and may not form a cycle),
    /// `relates_to` is informational.
    DependencyType { Blocks => "blocks" / "blocks", RelatesTo => "relates_to" / "relates to" }
);

impl DependencyType {
    pub fn from_proto(v: i32) -> Option<Self> {
        match proto::DependencyType::try_from(v).ok()? {
            proto::DependencyType::Blocks => Some(DependencyType::Blocks),
            proto::DependencyType::RelatesTo => Some(DependencyType::RelatesTo),
            proto::DependencyType::Unspecified => None,
        }
    }
    pub fn to_proto(self) -> proto::DependencyType {
        match self {
            DependencyType::Blocks => proto::DependencyType::Blocks,
            DependencyType::RelatesTo => proto::DependencyType::RelatesTo,
        }
    }
}

impl ItemType {
    pub fn from_proto(v: i32) -> Option<Self> {
        match proto::WorkItemType::try_from(v).ok()? {
            proto::WorkItemType::Epic => Some(ItemType::Epic),
            proto::WorkItemType::Story => Some(ItemType::Story),
            proto::WorkItemType::Task => Some(ItemType::Task),
            proto::WorkItemType::Unspecified => None,
        }
    }
    pub fn to_proto(self) -> proto::WorkItemType {
        match self {
            ItemType::Epic => proto::WorkItemType::Epic,
            ItemType::Story => proto::WorkItemType::Story,
            ItemType::Task => proto::WorkItemType::Task,
        }
    }
    /// The only parent type this type may have (epics have none).
    pub fn allowed_parent(self) -> Option<ItemType> {
        match self {
            ItemType::Epic => None,
            ItemType::Story => Some(ItemType::Epic),
            ItemType::Task => Some(ItemType::Story),
        }
    }
}

impl Status {
    pub fn next(self) -> Option<Status> {
        let i = Status::ALL.iter().position(|s| *s == self)?;
        Status::ALL.get(i + 1).copied()
    }
    pub fn prev(self) -> Option<Status> {
        let i = Status::ALL.iter().position(|s| *s == self)?;
        i.checked_sub(1).and_then(|j| Status::ALL.get(j).copied())
    }
}

impl Priority {
    /// The next priority up, wrapping from critical to low.
    pub fn cycle(self) -> Priority {
        match self {
            Priority::Low => Priority::Medium,
            Priority::Medium => Priority::High,
            Priority::High => Priority::Critical,
            Priority::Critical => Priority::Low,
        }
    }
}

impl SprintStatus {
    pub fn from_proto(v: i32) -> Option<Self> {
        match proto::SprintStatus::try_from(v).ok()? {
            proto::SprintStatus::Planned => Some(SprintStatus::Planned),
            proto::SprintStatus::Active => Some(SprintStatus::Active),
            proto::SprintStatus::Completed => Some(SprintStatus::Completed),
            proto::SprintStatus::Cancelled => Some(SprintStatus::Cancelled),
            proto::SprintStatus::Unspecified => None,
        }
    }
    pub fn to_proto(self) -> proto::SprintStatus {
        match self {
            SprintStatus::Planned => proto::SprintStatus::Planned,
            SprintStatus::Active => proto::SprintStatus::Active,
            SprintStatus::Completed => proto::SprintStatus::Completed,
            SprintStatus::Cancelled => proto::SprintStatus::Cancelled,
        }
    }
    /// planned → active | cancelled; active → completed | cancelled; staying put is allowed.
    pub fn can_become(self, to: SprintStatus) -> bool {
        use SprintStatus::*;
        self == to
            || matches!(
                (self, to),
                (Planned, Active)
                    | (Planned, Cancelled)
                    | (Active, Completed)
                    | (Active, Cancelled)
            )
    }
}

impl ProjectStatus {
    pub fn from_proto(v: i32) -> Option<Self> {
        match proto::ProjectStatus::try_from(v).ok()? {
            proto::ProjectStatus::Active => Some(ProjectStatus::Active),
            proto::ProjectStatus::Archived => Some(ProjectStatus::Archived),
            proto::ProjectStatus::Unspecified => None,
        }
    }
    pub fn to_proto(self) -> proto::ProjectStatus {
        match self {
            ProjectStatus::Active => proto::ProjectStatus::Active,
            ProjectStatus::Archived => proto::ProjectStatus::Archived,
        }
    }
}

/// Trims `value` and checks it holds 1..=max characters. Trimming comes first, so a title of
/// spaces is rejected rather than stored empty.
pub fn required_text(field: &'static str, value: &str, max: usize) -> Result<String, RuleError> {
    let trimmed = value.trim();
    let len = trimmed.chars().count();
    if len == 0 {
        return Err(RuleError::format(
            field,
            format!("{field} must be at least 1 characters"),
        ));
    }
    if len > max {
        return Err(RuleError::format(
            field,
            format!("{field} must not exceed {max} characters"),
        ));
    }
    Ok(trimmed.to_string())
}

/// Trims an optional text; blank becomes None; longer than `max` is an error.
pub fn optional_text(
    field: &'static str,
    value: Option<&str>,
    max: usize,
) -> Result<Option<String>, RuleError> {
    let Some(v) = value else { return Ok(None) };
    let trimmed = v.trim();
    if trimmed.chars().count() > max {
        return Err(RuleError::format(
            field,
            format!("{field} exceeds maximum length ({max} characters)"),
        ));
    }
    Ok((!trimmed.is_empty()).then(|| trimmed.to_string()))
}

/// A project key: 2-20 of [A-Za-z0-9_], returned uppercased.
pub fn project_key(value: &str) -> Result<String, RuleError> {
    let key = value.trim();
    let len = key.chars().count();
    if !(limits::KEY_MIN..=limits::KEY_MAX).contains(&len) {
        return Err(RuleError::format("key", "key must be 2-20 characters"));
    }
    if !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(RuleError::format(
            "key",
            "key must contain only letters, numbers, and underscores",
        ));
    }
    Ok(key.to_ascii_uppercase())
}

/// A lowercase hyphenated UUID, or a VALIDATION_ERROR naming the field.
pub fn uuid(field: &'static str, value: &str) -> Result<String, RuleError> {
    uuid::Uuid::parse_str(value.trim())
        .map(|u| u.to_string())
        .map_err(|_| RuleError::value(field, format!("Invalid UUID format for {field}")))
}

pub fn status(value: &str) -> Result<Status, RuleError> {
    Status::parse(value).ok_or_else(|| {
        RuleError::value(
            "status",
            format!("Invalid status: {value}. Valid: {}", Status::choices()),
        )
    })
}

pub fn priority(value: &str) -> Result<Priority, RuleError> {
    Priority::parse(value).ok_or_else(|| {
        RuleError::value(
            "priority",
            format!("Invalid priority: {value}. Valid: {}", Priority::choices()),
        )
    })
}

/// Story points: 0 to `max` (the server's configured maximum, [`limits::STORY_POINTS_MAX`] by
/// default).
pub fn story_points(value: i32, max: i32) -> Result<i32, RuleError> {
    if (0..=max).contains(&value) {
        Ok(value)
    } else {
        Err(RuleError::value(
            "story_points",
            format!("Story points must be 0-{max}"),
        ))
    }
}

/// Checks that `child` may sit under `parent`.
pub fn hierarchy(child: ItemType, parent: ItemType) -> Result<(), RuleError> {
    if child.allowed_parent() == Some(parent) {
        Ok(())
    } else {
        Err(RuleError::value(
            "parent_id",
            format!(
                "Invalid hierarchy: {} cannot be a child of {}",
                child.label(),
                parent.label()
            ),
        ))
    }
}

/// The time range rule, for every timestamp a client sends (time entries' `started_at` and
/// `ended_at`, sprints' `start_date` and `end_date`): Unix seconds within
/// [`limits::TIMESTAMP_MIN`]..=[`limits::TIMESTAMP_MAX`] (1970 to the end of year 9999), or a
/// VALIDATION_ERROR naming the field. Rules with a tighter window check this one first.
pub fn timestamp(field: &'static str, value: i64) -> Result<i64, RuleError> {
    if (limits::TIMESTAMP_MIN..=limits::TIMESTAMP_MAX).contains(&value) {
        Ok(value)
    } else {
        Err(RuleError::value(
            field,
            format!(
                "{field} must be Unix seconds between {} and {} (1970-01-01 to 9999-12-31), got {value}",
                limits::TIMESTAMP_MIN,
                limits::TIMESTAMP_MAX
            ),
        ))
    }
}

/// `value` moved into the time range rule's window: how an import repairs a timestamp that an
/// older server stored without the rule.
pub fn clamp_timestamp(value: i64) -> i64 {
    value.clamp(limits::TIMESTAMP_MIN, limits::TIMESTAMP_MAX)
}

/// The seconds from `started_at` to `ended_at` as stored for a finished time entry: never
/// negative, at most [`limits::DURATION_MAX`], and computed without overflow whatever the inputs
/// (a row an older server stored may hold any i64).
pub fn duration_clamped(started_at: i64, ended_at: i64) -> i64 {
    ended_at
        .saturating_sub(started_at)
        .clamp(0, limits::DURATION_MAX)
}

/// Sprint dates: start before end, both within a sensible window around `now`.
pub fn sprint_dates(start: i64, end: i64, now: i64) -> Result<(), RuleError> {
    timestamp("start_date", start)?;
    timestamp("end_date", end)?;
    if start >= end {
        return Err(RuleError::value(
            "end_date",
            "start_date must be before end_date",
        ));
    }
    let range = now.saturating_sub(limits::SPRINT_PAST_SECS)
        ..=now.saturating_add(limits::SPRINT_FUTURE_SECS);
    if !range.contains(&start) {
        return Err(RuleError::value(
            "start_date",
            "start_date is outside reasonable range",
        ));
    }
    if !range.contains(&end) {
        return Err(RuleError::value(
            "end_date",
            "end_date is outside reasonable range",
        ));
    }
    Ok(())
}

/// The reference's rules for a finished time entry; returns its duration in seconds.
/// Both ends obey the time range rule ([`timestamp`]), neither may lie more than a minute in the
/// future, the start comes first, and one entry covers at most 24 hours.
pub fn time_entry_span(started_at: i64, ended_at: i64, now: i64) -> Result<i64, RuleError> {
    timestamp("started_at", started_at)?;
    timestamp("ended_at", ended_at)?;
    let latest = now.saturating_add(limits::CLOCK_SKEW_SECS);
    if started_at > latest {
        return Err(RuleError::value(
            "started_at",
            "started_at cannot be in the future",
        ));
    }
    if ended_at > latest {
        return Err(RuleError::value(
            "ended_at",
            "ended_at cannot be in the future",
        ));
    }
    if started_at >= ended_at {
        return Err(RuleError::value(
            "started_at",
            "started_at must be before ended_at",
        ));
    }
    // Cannot fail within the time range; checked all the same.
    let duration = ended_at
        .checked_sub(started_at)
        .ok_or_else(|| RuleError::value("started_at", "started_at is too far from ended_at"))?;
    if duration > limits::TIME_ENTRY_MAX_SECS {
        return Err(RuleError::value(
            "ended_at",
            "Duration cannot exceed 24 hours",
        ));
    }
    Ok(duration)
}

/// "PM-12": how people name a work item.
pub fn display_key(project_key: &str, item_number: i32) -> String {
    format!("{project_key}-{item_number}")
}

/// Splits "PM-12" into ("PM", 12). The key part is the project key's charset, uppercased.
pub fn parse_display_key(s: &str) -> Option<(String, i32)> {
    let (key, n) = s.trim().rsplit_once('-')?;
    let n: i32 = n.parse().ok().filter(|n| *n > 0)?;
    project_key(key).ok().map(|k| (k, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_trimmed_before_their_length_is_checked() {
        assert!(required_text("title", "   ", 200).is_err());
        assert_eq!(required_text("title", "  a  ", 200).unwrap(), "a");
        assert!(required_text("title", &"x".repeat(201), 200).is_err());
        assert!(required_text("title", &format!(" {} ", "é".repeat(200)), 200).is_ok());
    }

    #[test]
    fn keys_and_display_keys() {
        assert_eq!(project_key("pm_1").unwrap(), "PM_1");
        assert!(project_key("a").is_err());
        assert!(project_key("a-b").is_err());
        assert_eq!(parse_display_key("pm-12"), Some(("PM".into(), 12)));
        assert_eq!(parse_display_key("PRB1-3"), Some(("PRB1".into(), 3)));
        assert_eq!(parse_display_key("PM-0"), None);
        assert_eq!(parse_display_key("PM"), None);
    }

    #[test]
    fn hierarchy_rules() {
        assert!(hierarchy(ItemType::Story, ItemType::Epic).is_ok());
        assert!(hierarchy(ItemType::Task, ItemType::Story).is_ok());
        assert!(hierarchy(ItemType::Task, ItemType::Epic).is_err());
        assert!(hierarchy(ItemType::Epic, ItemType::Epic).is_err());
    }

    #[test]
    fn sprint_transitions() {
        use SprintStatus::*;
        assert!(Planned.can_become(Active));
        assert!(!Planned.can_become(Completed));
        assert!(!Completed.can_become(Active));
        assert!(Active.can_become(Active));
    }

    #[test]
    fn time_entry_rules() {
        let now = 1_800_000_000;
        assert_eq!(time_entry_span(now - 3600, now, now), Ok(3600));
        assert_eq!(time_entry_span(now - 10, now + 60, now), Ok(70));
        let field = |r: Result<i64, RuleError>| r.map_err(|e| (e.field, e.message));
        assert_eq!(
            field(time_entry_span(now + 61, now + 120, now)),
            Err(("started_at", "started_at cannot be in the future".into()))
        );
        assert_eq!(
            field(time_entry_span(now, now + 61, now)),
            Err(("ended_at", "ended_at cannot be in the future".into()))
        );
        assert_eq!(
            field(time_entry_span(now, now, now)),
            Err(("started_at", "started_at must be before ended_at".into()))
        );
        assert_eq!(
            field(time_entry_span(now - 86_401, now, now)),
            Err(("ended_at", "Duration cannot exceed 24 hours".into()))
        );
        assert_eq!(time_entry_span(now - 86_400, now, now), Ok(86_400));
    }

    #[test]
    fn timestamps_lie_between_1970_and_the_end_of_year_9999() {
        assert_eq!(timestamp("started_at", 0), Ok(0));
        assert_eq!(
            timestamp("started_at", limits::TIMESTAMP_MAX),
            Ok(limits::TIMESTAMP_MAX)
        );
        assert_eq!(
            crate::date::rfc3339(limits::TIMESTAMP_MAX),
            "9999-12-31T23:59:59+00:00"
        );
        for bad in [-1, limits::TIMESTAMP_MAX + 1, i64::MIN, i64::MAX] {
            let e = timestamp("ended_at", bad).unwrap_err();
            assert_eq!((e.field, e.kind), ("ended_at", RuleKind::Value));
        }
        assert_eq!(clamp_timestamp(i64::MIN), 0);
        assert_eq!(clamp_timestamp(i64::MAX), limits::TIMESTAMP_MAX);
        assert_eq!(clamp_timestamp(1_800_000_000), 1_800_000_000);
        assert_eq!(
            duration_clamped(i64::MIN, 1_800_000_000),
            limits::DURATION_MAX
        );
        assert_eq!(duration_clamped(i64::MIN, i64::MAX), limits::DURATION_MAX);
        assert_eq!(duration_clamped(i64::MAX, i64::MIN), 0);
        assert_eq!(duration_clamped(10, 70), 60);
    }

    #[test]
    fn time_entries_far_in_the_past_are_refused_not_wrapped() {
        let now = 1_800_000_000;
        let field = |r: Result<i64, RuleError>| r.map_err(|e| e.field);
        // i64::MIN used to overflow `ended_at - started_at` into a negative duration that passed
        // the 24-hour check.
        assert_eq!(
            field(time_entry_span(i64::MIN, now, now)),
            Err("started_at")
        );
        assert_eq!(field(time_entry_span(-1, now, now)), Err("started_at"));
        assert_eq!(
            field(time_entry_span(now - 10, i64::MAX, now)),
            Err("ended_at")
        );
        assert_eq!(field(time_entry_span(0, 0, now)), Err("started_at"));
        assert_eq!(time_entry_span(0, 1, now), Ok(1));
        assert_eq!(
            field(time_entry_span(0, now, now)),
            Err("ended_at"),
            "longer than a day"
        );
    }

    #[test]
    fn sprint_dates_obey_the_time_range_too() {
        let now = 1_800_000_000;
        let field = |r: Result<(), RuleError>| r.map_err(|e| e.field);
        assert_eq!(field(sprint_dates(i64::MIN, now, now)), Err("start_date"));
        assert_eq!(field(sprint_dates(now, i64::MAX, now)), Err("end_date"));
        assert_eq!(field(sprint_dates(now, now + 86_400, now)), Ok(()));
        // A server clock at the edge of i64 does not overflow the window either.
        assert!(sprint_dates(now, now + 1, i64::MAX).is_err());
    }

    #[test]
    fn dependency_types() {
        assert_eq!(
            DependencyType::parse("relates_to"),
            Some(DependencyType::RelatesTo)
        );
        assert_eq!(DependencyType::from_proto(1), Some(DependencyType::Blocks));
        assert_eq!(DependencyType::from_proto(0), None);
        assert_eq!(DependencyType::from_proto(7), None);
    }

    #[test]
    fn lanes_in_order() {
        assert_eq!(Status::Backlog.next(), Some(Status::Todo));
        assert_eq!(Status::Done.next(), None);
        assert_eq!(Status::Backlog.prev(), None);
        assert!(status("blocked").is_err());
    }
}
