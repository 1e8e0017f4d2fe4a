//! The detail pane: a card's fields, parent chain, links, time, description, comments and history.
use super::*;

pub(super) fn draw_detail(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    item_id: &str,
    comment: Option<&TextInput>,
) {
    let rect = centered(
        area,
        area.width.saturating_sub(6).min(90),
        area.height.saturating_sub(2),
    );
    frame.render_widget(Clear, rect);
    let Some(item) = app.card(item_id) else {
        frame.render_widget(
            Paragraph::new("This card was deleted.").block(popup_block("Details")),
            rect,
        );
        return;
    };
    let label = |s: &str| Span::from(format!("{s:<10}")).dim();
    let item_type = ItemType::from_proto(item.item_type)
        .map(|t| t.label())
        .unwrap_or("?");
    let status = Status::parse(&item.status)
        .map(|s| s.label())
        .unwrap_or(&item.status);
    let sprint = item
        .sprint_id
        .as_ref()
        .and_then(|s| app.replica.store.sprints.get(s))
        .map(|s| {
            format!(
                "{} ({})",
                safe(&s.name),
                SprintStatus::from_proto(s.status)
                    .map(|x| x.label())
                    .unwrap_or("?")
            )
        })
        .unwrap_or_else(|| "—".into());
    let parent = parent_chain(app, item);
    let mut lines = vec![
        Line::from(vec![
            Span::from(app.key_of(item)).bold(),
            Span::raw(format!("  {}", safe(&item.title))).bold(),
        ]),
        Line::from(vec![
            label("Type"),
            // The second column starts at the same place on every line.
            Span::raw(pad(item_type, 14)),
            label("Status"),
            Span::raw(status),
        ]),
        Line::from(vec![
            label("Priority"),
            Span::raw(pad(priority_label(&item.priority), 14)),
            label("Points"),
            Span::raw(
                item.story_points
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "—".into()),
            ),
        ]),
        Line::from(vec![
            label("Assignee"),
            Span::raw(
                item.assignee_id
                    .as_ref()
                    .map(|a| safe(&app.user_name(a)))
                    .unwrap_or_else(|| "—".into()),
            ),
        ]),
        Line::from(vec![label("Sprint"), Span::raw(sprint)]),
        Line::from(vec![label("Parent"), Span::raw(parent)]),
        Line::from(vec![
            label("Changed"),
            Span::raw(format!(
                "{} · version {} · created {}",
                when_by(app, item.updated_at, &item.updated_by),
                item.version,
                when_by(app, item.created_at, &item.created_by),
            )),
        ]),
    ];
    // Who else has this card open, and what they edit on it, under its title.
    let here: Vec<String> = app
        .presence_on(item_id)
        .into_iter()
        .map(|n| safe(&n))
        .collect();
    for note in app.editing_notes(item_id, None) {
        lines.insert(
            1,
            Line::from(safe(&format!("✎ {note}")))
                .fg(Color::Magenta)
                .bold(),
        );
    }
    if !here.is_empty() {
        lines.insert(
            1,
            Line::from(format!("Also here: {}", here.join(", "))).fg(Color::Magenta),
        );
    }
    lines.extend(link_lines(app, item_id));
    lines.push(time_line(app, item_id));
    lines.push(Line::from(""));
    match item.description.as_deref() {
        Some(d) => lines.extend(markdown::lines(d, safe)),
        None => lines.push(Line::from("No description.").dim()),
    }
    lines.push(Line::from(""));
    let comments = app.replica.store.comments_of(item_id);
    lines.push(Line::from(format!("Comments ({})", comments.len())).bold());
    for c in comments {
        // A comment keeps its lines; later ones are indented under the name.
        let edited = if c.updated_at > c.created_at {
            " (edited)"
        } else {
            ""
        };
        let mut text = c.content.lines();
        lines.push(Line::from(vec![
            Span::from(format!("{}: ", safe(&app.user_name(&c.created_by)))).fg(Color::Cyan),
            Span::raw(safe(text.next().unwrap_or(""))),
            Span::from(edited).dim(),
        ]));
        lines.extend(text.map(|l| Line::from(format!("  {}", safe(l)))));
    }
    lines.push(Line::from(""));
    lines.extend(history_lines(app, item_id));
    let [body, input] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)])
        .areas(popup_block("Details").inner(rect));
    let hint = match comment {
        Some(text) => {
            let mut spans = vec![Span::from("comment › ").fg(Color::Yellow)];
            let count = count_span(text, text.max().unwrap_or(0) * 9 / 10);
            let room = (input.width as usize)
                .saturating_sub(10)
                .saturating_sub(count.as_ref().map_or(0, Span::width));
            spans.extend(input_spans(text, room));
            spans.extend(count);
            Line::from(spans)
        }
        None => {
            Line::from(" c C comment · M D mine · E description · t timer · b B R x links · Esc")
                .dim()
        }
    };
    frame.render_widget(popup_block("Details"), rect);
    let scroll = app.detail_scroll.min(lines.len().saturating_sub(1) as u16);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0)),
        body,
    );
    frame.render_widget(hint, input);
}

/// The card's ancestors, the top first: `PM-1 Checkout revamp › PM-2 Pay with saved card`;
/// the last one's title only when the chain is long.
pub(super) fn parent_chain(app: &App, item: &proto::WorkItem) -> String {
    let mut chain: Vec<&proto::WorkItem> = Vec::new();
    let mut next = item.parent_id.as_deref();
    // Epic › story › task is at most two levels; the bound also stops a cycle in bad data.
    while let Some(id) = next.filter(|_| chain.len() < 4) {
        let Some(parent) = app.replica.store.work_items.get(id) else {
            break;
        };
        chain.push(parent);
        next = parent.parent_id.as_deref();
    }
    if chain.is_empty() {
        return "—".into();
    }
    chain.reverse();
    let last = chain.len() - 1;
    chain
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if i == last {
                format!("{} {}", app.key_of(w), safe(&w.title))
            } else {
                format!("{} {}", app.key_of(w), truncate(&safe(&w.title), 20))
            }
        })
        .collect::<Vec<_>>()
        .join(" › ")
}

/// `Links` lines: what blocks the card (⛔ while not done), what it blocks, what it relates to.
pub(super) fn link_lines(app: &App, item_id: &str) -> Vec<Line<'static>> {
    let store = &app.replica.store;
    let (incoming, outgoing) = store.dependencies_of(item_id);
    let blocks = proto::DependencyType::Blocks as i32;
    let name = |id: &str| {
        store.work_items.get(id).map(|w| {
            (
                format!("{} {}", app.key_of(w), safe(&w.title)),
                w.status == "done",
            )
        })
    };
    let mut links: Vec<Vec<Span<'static>>> = Vec::new();
    for d in &incoming {
        let Some((other, done)) = name(&d.blocking_item_id) else {
            continue;
        };
        links.push(if d.dependency_type == blocks && !done {
            vec![
                Span::from("⛔ blocked by ").fg(Color::Red),
                Span::raw(other),
            ]
        } else if d.dependency_type == blocks {
            vec![Span::from("✓ was blocked by ").dim(), Span::raw(other)]
        } else {
            vec![Span::from("relates to ").dim(), Span::raw(other)]
        });
    }
    for d in &outgoing {
        let Some((other, _)) = name(&d.blocked_item_id) else {
            continue;
        };
        let verb = if d.dependency_type == blocks {
            "blocks "
        } else {
            "relates to "
        };
        links.push(vec![Span::from(verb).dim(), Span::raw(other)]);
    }
    if links.is_empty() {
        return vec![Line::from(vec![
            Span::from(format!("{:<10}", "Links")).dim(),
            Span::raw("—"),
        ])];
    }
    links
        .into_iter()
        .enumerate()
        .map(|(i, spans)| {
            let head = if i == 0 { "Links" } else { "" };
            let mut all = vec![Span::from(format!("{head:<10}")).dim()];
            all.extend(spans);
            Line::from(all)
        })
        .collect()
}

/// `Time` line: time logged on the card, and who is tracking it right now.
pub(super) fn time_line(app: &App, item_id: &str) -> Line<'static> {
    let entries = app.replica.store.time_entries_of(item_id);
    let logged: i64 = entries
        .iter()
        .map(|t| match t.ended_at {
            Some(_) => i64::from(t.duration_seconds.unwrap_or(0)),
            // A start an older server stored out of range must not overflow the board.
            None => app.clock.saturating_sub(t.started_at),
        })
        .fold(0, i64::saturating_add);
    let mut spans = vec![Span::from(format!("{:<10}", "Time")).dim()];
    if entries.is_empty() {
        spans.push(Span::raw("—"));
        return Line::from(spans);
    }
    spans.push(Span::raw(format!("{} logged", duration(logged))));
    for t in entries.iter().filter(|t| t.ended_at.is_none()) {
        spans.push(Span::raw(" · "));
        spans.push(
            Span::from(format!(
                "⏱ {} {}",
                app.user_name(&t.user_id),
                duration(app.clock.saturating_sub(t.started_at))
            ))
            .fg(Color::Green),
        );
    }
    Line::from(spans)
}

/// The `History` section: the card's activity log, newest first.
pub(super) fn history_lines(app: &App, item_id: &str) -> Vec<Line<'static>> {
    let Some(history) = app.history.as_ref().filter(|h| h.item_id == item_id) else {
        return Vec::new();
    };
    let mut lines = vec![Line::from("History").bold()];
    if !history.loaded {
        lines.push(Line::from("loading…").dim());
        return lines;
    }
    if history.entries.is_empty() {
        lines.push(Line::from("Nothing recorded.").dim());
    }
    for e in &history.entries {
        lines.push(Line::from(vec![
            Span::from(format!("{} ", when(e.timestamp))).dim(),
            Span::from(format!("{} ", safe(&app.user_name(&e.user_id)))).fg(Color::Cyan),
            Span::raw(safe(&history_text(app, e))),
        ]));
    }
    let more = (i64::from(history.total) - history.entries.len() as i64).max(0);
    if more > 0 {
        lines.push(Line::from(format!("… {more} older (pm activity work-item <key>)")).dim());
    }
    lines
}

/// `MM-DD HH:MM by name` (without the name when the server gave none).
pub(super) fn when_by(app: &App, secs: i64, user: &str) -> String {
    match user {
        "" => when(secs),
        user => format!("{} by {}", when(secs), safe(&app.user_name(user))),
    }
}

/// One history entry in words: `created`, `deleted`, or `status To Do → Done; …`.
pub(super) fn history_text(app: &App, e: &proto::ActivityLogEntry) -> String {
    if e.action != "updated" || e.changes.is_empty() {
        return e.action.clone();
    }
    let value = |field: &str, v: &Option<String>| -> String {
        let Some(v) = v.as_deref() else {
            return "—".into();
        };
        let store = &app.replica.store;
        match field {
            "status" => Status::parse(v).map_or(v.to_string(), |s| s.label().to_string()),
            "priority" => priority_label(v).to_string(),
            "assignee_id" => app.user_name(v),
            "parent_id" => store
                .work_items
                .get(v)
                .map_or_else(|| truncate(v, 8), |w| app.key_of(w)),
            "sprint_id" => store
                .sprints
                .get(v)
                .map_or_else(|| truncate(v, 8), |s| s.name.clone()),
            _ => truncate(v.lines().next().unwrap_or(""), 24),
        }
    };
    e.changes
        .iter()
        .map(|c| match c.field_name.as_str() {
            // Positions are the board's bookkeeping, not something people read.
            "position" => "reordered".to_string(),
            field => format!(
                "{} {} → {}",
                field.replace("_id", "").replace('_', " "),
                value(field, &c.old_value),
                value(field, &c.new_value)
            ),
        })
        .collect::<Vec<_>>()
        .join("; ")
}
