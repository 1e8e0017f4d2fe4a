//! The conflict inbox: my offline edits the server refused, each with my value and theirs,
//! who made theirs and when, and what I can do about it.
use pm_client::offline::Conflict;

use super::*;

pub(super) fn draw_inbox(frame: &mut Frame, area: Rect, app: &App, row: usize) {
    let inbox = app.offline.inbox();
    let row = row.min(inbox.len().saturating_sub(1));
    let width = area.width.saturating_sub(4).min(76);
    let inner = usize::from(width.saturating_sub(2));
    let mut lines: Vec<Line> = Vec::new();
    // The list: one line each, the selected one marked.
    for (i, c) in inbox.iter().enumerate() {
        let marker = if i == row { "› " } else { "  " };
        let head = format!("{marker}{} {}: ", app.key_of(&c.write.before), c.write.what);
        let title = truncate(
            &safe(&c.write.before.title),
            inner.saturating_sub(width_of(&head)),
        );
        let line = Line::from(vec![Span::from(head).bold(), Span::raw(title)]);
        lines.push(if i == row { line.reversed() } else { line });
    }
    lines.push(Line::from(""));
    if let Some(c) = inbox.get(row) {
        lines.extend(details(app, c, inner));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(" m: keep mine · t: keep theirs · e: edit · j/k · Esc").dim());
    let height = (lines.len() as u16 + 2).min(area.height);
    let rect = centered(area, width, height);
    let title = match inbox.len() {
        1 => "Inbox · 1 conflict".to_string(),
        n => format!("Inbox · {n} conflicts"),
    };
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines).block(popup_block(&title).border_style(Color::Magenta)),
        rect,
    );
}

/// Why it was refused, then each field: theirs (who, when) and mine.
fn details(app: &App, c: &Conflict, inner: usize) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let why = match (&c.theirs, c.code.as_str()) {
        (None, "CONFLICT") => "Changed by someone else (the card is not loaded here).".to_string(),
        (None, _) => "The card was deleted (or you can no longer see it).".to_string(),
        (_, "CONFLICT") => "Changed by someone else while you were offline.".to_string(),
        (_, _) => format!("Refused: {}", c.message),
    };
    lines.push(Line::from(truncate(&safe(&why), inner)));
    if let Some((by, at)) = c.theirs_by() {
        let who = format!("theirs by {} at {} UTC", app.user_name(by), when(at));
        lines.push(Line::from(truncate(&safe(&who), inner)).dim());
    }
    for f in c.fields() {
        let label = format!("{:<8}", field_label(f.field));
        let room = inner.saturating_sub(width_of(&label) + 8);
        let blank = " ".repeat(width_of(&label));
        for (i, (who, value, color)) in [
            ("theirs ", &f.theirs, Color::Cyan),
            ("mine   ", &f.mine, Color::Yellow),
        ]
        .into_iter()
        .enumerate()
        {
            let shown = shown_value(app, f.field, value);
            let head = if i == 0 { label.clone() } else { blank.clone() };
            lines.push(Line::from(vec![
                Span::raw(head),
                Span::from(who).fg(color).bold(),
                Span::raw(truncate(&safe(&shown), room)),
            ]));
        }
    }
    lines
}

fn field_label(field: &str) -> &'static str {
    match field {
        "title" => "Title",
        "description" => "Text",
        "status" => "Lane",
        "assignee_id" => "Assignee",
        "sprint_id" => "Sprint",
        "position" => "Order",
        "priority" => "Priority",
        "story_points" => "Points",
        "item_type" => "Type",
        "parent_id" => "Parent",
        _ => "Field",
    }
}

/// A field's value as people read it: names instead of ids, labels instead of codes.
fn shown_value(app: &App, field: &str, value: &str) -> String {
    if value.is_empty() {
        return "(none)".into();
    }
    let store = &app.replica.store;
    match field {
        "status" => Status::parse(value).map_or(value.to_string(), |s| s.label().to_string()),
        "priority" => priority_label(value).to_string(),
        "assignee_id" => app.user_name(value),
        "sprint_id" => store
            .sprints
            .get(value)
            .map_or(value.to_string(), |s| s.name.clone()),
        "parent_id" => store
            .work_items
            .get(value)
            .map_or(value.to_string(), |w| app.key_of(w)),
        "description" => value.lines().next().unwrap_or_default().to_string(),
        _ => value.to_string(),
    }
}
