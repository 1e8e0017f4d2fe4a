//! The popups in front of the board: help, dialogs, pickers, palette, sprints, activity feed.
use super::*;

/// "Delete PM-7 "title"?" on one line (the title cut to fit) and the choices on the next, so
/// a long title never pushes the instructions out of the box.
pub(super) fn draw_confirm_delete(frame: &mut Frame, area: Rect, app: &App, item_id: &str) {
    let rect = centered(area, 60, 4);
    let inner = rect.width.saturating_sub(2) as usize;
    let question = match app.replica.store.work_items.get(item_id) {
        Some(w) => {
            let key = app.key_of(w);
            // `Delete ` + key + ` "` + title + `"?`
            let room = inner.saturating_sub(width_of(&key) + 12);
            format!("Delete {key} \"{}\"?", truncate(&safe(&w.title), room))
        }
        None => "Delete this card?".to_string(),
    };
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(vec![
            Line::from(question),
            Line::from(" y: delete · any other key: keep").dim(),
        ])
        .block(popup_block("Delete").border_style(Color::Red)),
        rect,
    );
}

/// The activity feed: every change the board has seen since it opened, newest first, names
/// resolved as they are known.
pub(super) fn draw_activity_feed(frame: &mut Frame, area: Rect, app: &App, scroll: u16) {
    let rect = centered(
        area,
        area.width.saturating_sub(4).min(100),
        area.height.saturating_sub(2),
    );
    frame.render_widget(Clear, rect);
    let lines: Vec<Line> = if app.activity.is_empty() {
        vec![Line::from("Nothing yet: changes by anyone show up here as they happen.").dim()]
    } else {
        app.activity
            .iter()
            .map(|(who, what)| {
                Line::from(vec![
                    Span::from(format!("{} ", safe(&app.user_name(who)))).fg(Color::Cyan),
                    Span::raw(safe(what)),
                ])
            })
            .collect()
    };
    let visible = rect.height.saturating_sub(2);
    let scroll = scroll.min((lines.len() as u16).saturating_sub(visible));
    let title = format!(
        "Activity · {} changes, newest first  (↑↓ PgUp PgDn · Esc)",
        app.activity.len()
    );
    frame.render_widget(
        Paragraph::new(lines)
            .scroll((scroll, 0))
            .block(popup_block(&title)),
        rect,
    );
}

/// The command palette: a filter line, then the matching commands and cards.
pub(super) fn draw_palette(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    filter: &TextInput,
    row: usize,
) {
    let entries = app.palette(filter.text());
    let rect = centered(
        area,
        area.width.saturating_sub(4).min(72),
        area.height.saturating_sub(4).min(20),
    );
    frame.render_widget(Clear, rect);
    let block = popup_block("Palette").title_bottom(
        Line::from(" type: find · ↑↓ · Enter: run / go to · Esc ")
            .dim()
            .right_aligned(),
    );
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let [head, list] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(inner);
    let mut spans = vec![Span::from(": ").fg(Color::Yellow)];
    spans.extend(input_spans(filter, (head.width as usize).saturating_sub(2)));
    frame.render_widget(Line::from(spans), head);
    let room = (list.width as usize).saturating_sub(2);
    let items: Vec<ListItem> = entries
        .iter()
        .map(|e| {
            let (mark, color) = match e {
                PaletteEntry::Command(..) => ("› ", Color::Cyan),
                PaletteEntry::Card(..) => ("# ", Color::Green),
            };
            ListItem::new(Line::from(vec![
                Span::from(mark).fg(color),
                Span::raw(truncate(&safe(e.label()), room)),
            ]))
        })
        .collect();
    if items.is_empty() {
        frame.render_widget(Line::from("  no command or card matches").dim(), list);
        return;
    }
    let mut state = ListState::default().with_selected(Some(row.min(items.len() - 1)));
    frame.render_stateful_widget(
        List::new(items).highlight_style(Style::new().reversed()),
        list,
        &mut state,
    );
}

/// A new project: its title and key, the focused one with the cursor.
pub(super) fn draw_new_project(
    frame: &mut Frame,
    area: Rect,
    title: &TextInput,
    key: &TextInput,
    on_key: bool,
) {
    let rect = centered(area, area.width.saturating_sub(4).min(72), 4);
    frame.render_widget(Clear, rect);
    let block = popup_block("New project  (Tab: title / key · Enter: create · Esc)");
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let [first, second] =
        Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(inner);
    let field = |label: &'static str, input: &TextInput, focused: bool, area: Rect| {
        let mut spans = vec![Span::from(label).fg(if focused {
            Color::Yellow
        } else {
            Color::DarkGray
        })];
        let cols = (area.width as usize).saturating_sub(width_of(label));
        if focused {
            spans.extend(input_spans(input, cols));
        } else {
            spans.push(Span::raw(truncate(&safe(input.text()), cols)));
        }
        Line::from(spans)
    };
    frame.render_widget(field("Title › ", title, !on_key, first), first);
    frame.render_widget(field("Key   › ", key, on_key, second), second);
}

/// The sprints: each with its status, dates and progress (cards and points done of all).
pub(super) fn draw_sprints(frame: &mut Frame, area: Rect, app: &App, row: usize) {
    let sprints = app.sprints();
    let mut items = vec![ListItem::new(Line::from(if app.sprint.is_none() {
        "✓ all cards (no sprint filter)"
    } else {
        "  all cards (no sprint filter)"
    }))];
    for s in &sprints {
        let status = SprintStatus::from_proto(s.status).map_or("?", |x| x.label());
        let mark = if app.sprint.as_deref() == Some(s.id.as_str()) {
            "✓ "
        } else {
            "  "
        };
        items.push(ListItem::new(Line::from(vec![
            Span::from(mark).fg(Color::Green),
            Span::from(pad(&truncate(&safe(&s.name), 24), 25)).bold(),
            Span::from(pad(status, 10)).fg(Color::Cyan),
            Span::raw(format!("{} → {}  ", day(s.start_date), day(s.end_date))),
            Span::raw(app.sprint_progress(&s.id).to_string()),
        ])));
    }
    let rect = centered(
        area,
        area.width.saturating_sub(4).min(90),
        (items.len() as u16 + 3).clamp(6, area.height.saturating_sub(2).max(6)),
    );
    frame.render_widget(Clear, rect);
    let block = popup_block("Sprints").title_bottom(
        Line::from(" Enter: filter · n: new · s: start · c: complete · Esc ")
            .dim()
            .right_aligned(),
    );
    let mut state = ListState::default().with_selected(Some(row.min(items.len() - 1)));
    frame.render_stateful_widget(
        List::new(items)
            .block(block)
            .highlight_style(Style::new().reversed()),
        rect,
        &mut state,
    );
}

/// `MM-DD` (UTC).
pub(super) fn day(secs: i64) -> String {
    let (_, m, d, _, _, _) = pm_shared::date::civil_from_secs(secs);
    format!("{m:02}-{d:02}")
}

/// A picker: a filter line, then "none" and the choices, the card's current value marked ✓.
pub(super) fn draw_pick(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    item_id: &str,
    kind: PickKind,
    filter: &TextInput,
    row: usize,
) {
    let card = app.card(item_id);
    let current = card.and_then(|w| kind.current(w));
    let key = card.map(|w| app.key_of(w)).unwrap_or_default();
    let choices = app.choices(kind, item_id, filter.text());
    let (title, word) = kind.title();
    let height = (choices.len() as u16 + 4).clamp(6, area.height.saturating_sub(2).max(6));
    let rect = centered(area, 56, height);
    frame.render_widget(Clear, rect);
    let block = popup_block(title).title_bottom(
        Line::from(" type: filter · ↑↓ · Enter · Esc ")
            .dim()
            .right_aligned(),
    );
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let [head, list] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(inner);
    let prompt = format!("{key} {word} › ");
    let mut spans = vec![Span::from(prompt.clone()).fg(Color::Yellow)];
    spans.extend(input_spans(
        filter,
        (head.width as usize).saturating_sub(width_of(&prompt)),
    ));
    frame.render_widget(Line::from(spans), head);
    let room = (list.width as usize).saturating_sub(2);
    let items: Vec<ListItem> = choices
        .iter()
        .map(|c| {
            let mark = if c.value == current { "✓ " } else { "  " };
            ListItem::new(Line::from(vec![
                Span::from(mark).fg(Color::Green),
                Span::raw(truncate(&safe(&c.label), room)),
            ]))
        })
        .collect();
    if items.is_empty() {
        frame.render_widget(Line::from("  nothing by that name").dim(), list);
        return;
    }
    let mut state = ListState::default().with_selected(Some(row.min(items.len() - 1)));
    frame.render_stateful_widget(
        List::new(items).highlight_style(Style::new().reversed()),
        list,
        &mut state,
    );
}

/// The help: every key of the board's keymap (the same table the board dispatches through) and
/// what the marks on a card mean.
pub(super) fn draw_help(frame: &mut Frame, area: Rect, app: &App, scroll: u16) {
    const KEY_COLUMN: usize = 18;
    let key_line = |k: &str, v: &str, color: Color| {
        Line::from(vec![
            Span::from(format!(" {}", pad(k, KEY_COLUMN)))
                .bold()
                .fg(color),
            Span::raw(v.to_string()),
        ])
    };
    let mut lines: Vec<Line> = app
        .keymap
        .help_lines()
        .iter()
        .map(|(k, v)| key_line(k, v, Color::Cyan))
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::from(" On a card").bold());
    lines.extend(
        keymap::LEGEND
            .iter()
            .map(|(k, v)| key_line(k, v, Color::Yellow)),
    );
    let rect = centered(
        area,
        area.width.saturating_sub(4).min(72),
        (lines.len() as u16 + 2).min(area.height.saturating_sub(2)),
    );
    let visible = rect.height.saturating_sub(2);
    let scroll = scroll.min((lines.len() as u16).saturating_sub(visible));
    let title = if (lines.len() as u16) > visible {
        "Keys  (↑↓ scroll · Esc close)"
    } else {
        "Keys  (Esc close)"
    };
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .scroll((scroll, 0))
            .block(popup_block(title)),
        rect,
    );
}

/// Someone else changed the title or description while I was editing it: both texts (a
/// description's first lines), and the choices.
pub(super) fn draw_conflict(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    item_id: &str,
    field: TextField,
    mine: &str,
    theirs: &str,
) {
    let key = app
        .replica
        .store
        .work_items
        .get(item_id)
        .map(|w| app.key_of(w))
        .unwrap_or_default();
    let (headline, shown) = match field {
        TextField::Title => (format!("{key} was renamed while you edited it."), 1),
        TextField::Description => (
            format!("{key}'s description was changed while you edited it."),
            4,
        ),
    };
    let text_lines = |label: &'static str, color: Color, text: &str| -> Vec<Line<'static>> {
        let mut lines: Vec<Line<'static>> = Vec::new();
        let all: Vec<&str> = if text.is_empty() {
            vec!["(empty)"]
        } else {
            text.lines().collect()
        };
        for (i, line) in all.iter().take(shown).enumerate() {
            let head = if i == 0 { label } else { "       " };
            lines.push(Line::from(vec![
                Span::from(head).fg(color).bold(),
                Span::raw(safe(line)),
            ]));
        }
        if all.len() > shown {
            lines.push(Line::from(format!("       … {} more lines", all.len() - shown)).dim());
        }
        lines
    };
    let mut lines = vec![Line::from(headline), Line::from("")];
    lines.extend(text_lines("theirs ", Color::Cyan, theirs));
    lines.extend(text_lines("mine   ", Color::Yellow, mine));
    lines.push(Line::from(""));
    lines.push(Line::from(" m: keep mine · t: keep theirs · e: edit again").dim());
    let rect = centered(
        area,
        area.width.saturating_sub(4).min(72),
        lines.len() as u16 + 2,
    );
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(popup_block("Edit conflict").border_style(Color::Red)),
        rect,
    );
}

/// A text from `$EDITOR` that was not saved: why, and the way back to it.
pub(super) fn draw_unsaved(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    request: &EditorRequest,
    reason: &str,
) {
    let key = app
        .replica
        .store
        .work_items
        .get(&request.item_id)
        .map(|w| app.key_of(w))
        .unwrap_or_default();
    let lines = vec![
        Line::from(format!(
            "Your {} on {key} was not saved: {}.",
            request.target.what(),
            safe(reason)
        )),
        Line::from(format!(
            "It is kept here ({} characters) until you let it go.",
            request.text.chars().count()
        ))
        .dim(),
        Line::from(""),
        Line::from(" e: edit it again in $EDITOR · Esc: discard it").dim(),
    ];
    let rect = centered(area, area.width.saturating_sub(4).min(72), 7);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .block(popup_block("Not saved").border_style(Color::Red)),
        rect,
    );
}

pub(super) fn draw_input(frame: &mut Frame, area: Rect, label: &str, input: &TextInput) {
    let rect = centered(area, area.width.saturating_sub(4).min(72), 3);
    frame.render_widget(Clear, rect);
    let cols = rect.width.saturating_sub(2) as usize;
    let mut block = popup_block(label);
    if let Some(count) = count_span(input, 0) {
        block = block.title_bottom(Line::from(count).right_aligned());
        if input.too_long() {
            block = block.border_style(Color::Red);
        }
    }
    frame.render_widget(
        Paragraph::new(Line::from(input_spans(input, cols))).block(block),
        rect,
    );
}

/// Notes under [`draw_input`]'s box ("bob is editing this title").
pub(super) fn draw_input_notes(frame: &mut Frame, area: Rect, notes: &[String]) {
    if notes.is_empty() {
        return;
    }
    let input = centered(area, area.width.saturating_sub(4).min(72), 3);
    let below = Rect {
        y: input.y + input.height,
        height: (notes.len() as u16).min(area.bottom().saturating_sub(input.bottom())),
        ..input
    };
    frame.render_widget(Clear, below);
    let lines: Vec<Line> = notes
        .iter()
        .map(|n| {
            Line::from(safe(&format!(" ✎ {n}")))
                .fg(Color::Magenta)
                .bold()
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), below);
}

/// ` 187/200 ` for a field with a limit once it holds `from` characters or more: red, with
/// what to do, when over it.
pub(super) fn count_span(input: &TextInput, from: usize) -> Option<Span<'static>> {
    let max = input.max()?;
    let count = input.count();
    if count < from {
        return None;
    }
    Some(if count > max {
        Span::from(format!(" {count}/{max}: {} too many ", count - max))
            .fg(Color::Red)
            .bold()
    } else {
        Span::from(format!(" {count}/{max} ")).dim()
    })
}

/// A text field in `cols` columns, scrolled so the cursor shows: `▏` at the end, else the
/// character under it reversed.
pub(super) fn input_spans(input: &TextInput, cols: usize) -> Vec<Span<'static>> {
    let view = input.view(cols);
    let mut spans = vec![Span::raw(safe(&view.before))];
    match view.at {
        Some(c) => spans.push(Span::from(safe(&c.to_string())).reversed()),
        None => spans.push(Span::raw("▏")),
    }
    spans.push(Span::raw(safe(&view.after)));
    spans
}
