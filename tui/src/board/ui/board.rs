//! The board itself: header, lanes of cards, the list and hierarchy views, the project picker,
//! the activity strip and the status bar.
use super::*;

pub(super) fn draw_header(frame: &mut Frame, area: Rect, app: &App, project: &proto::Project) {
    let mut spans = vec![
        Span::from(format!(" {} ", project.key)).bold().reversed(),
        Span::from(format!(" {}", safe(&project.title))).bold(),
    ];
    if let Some(sprint) = app
        .sprint
        .as_ref()
        .and_then(|s| app.replica.store.sprints.get(s))
    {
        // The sprint view: its name, state, end and progress.
        let status = SprintStatus::from_proto(sprint.status).map_or("?", |x| x.label());
        spans.push(
            Span::from(format!(
                "  sprint: {} ({status}, ends {}) · {}",
                safe(&sprint.name),
                day(sprint.end_date),
                app.sprint_progress(&sprint.id)
            ))
            .fg(Color::Cyan),
        );
    }
    if !app.filter.is_empty() {
        spans.push(Span::from(format!("  find: {}", safe(&app.filter))).fg(Color::Yellow));
    }
    // Who else is on this board, on the right, as much as fits after the rest.
    let here = app.here();
    if !here.is_empty() {
        let used: usize = spans.iter().map(Span::width).sum();
        let room = (area.width as usize).saturating_sub(used + 2);
        let text = safe(&format!("here: {} ", here.join(", ")));
        let text = truncate(&text, room);
        if room >= 8 {
            let gap = (area.width as usize).saturating_sub(used + width_of(&text));
            spans.push(Span::raw(" ".repeat(gap)));
            spans.push(Span::from(text).fg(Color::Magenta).bold());
        }
    }
    frame.render_widget(Line::from(spans), area);
}

pub(super) fn draw_lanes(frame: &mut Frame, area: Rect, app: &App) {
    let lanes = app.lane_ids();
    let columns = layout::lanes(area);
    // While a big project loads, its preview's first cards show with each lane's real count.
    let totals = app
        .replica
        .preview_totals()
        .filter(|_| app.filter.is_empty() && app.sprint.is_none());
    for (i, (status, cards)) in Status::ALL.iter().zip(lanes.iter()).enumerate() {
        let total = totals
            .and_then(|t| t.get(i))
            .map_or(cards.len(), |t| (*t as usize).max(cards.len()));
        let focused = i == app.lane && app.popup == Popup::None;
        let block = Block::default()
            .borders(Borders::ALL)
            .border_type(if focused {
                BorderType::Thick
            } else {
                BorderType::Rounded
            })
            .border_style(if focused {
                Style::new().fg(Color::Cyan)
            } else {
                Style::new().fg(Color::DarkGray)
            })
            .title(lane_title(app, status.label(), total, cards));
        let inner = block.inner(columns[i]);
        frame.render_widget(block, columns[i]);
        let selected = (i == app.lane).then_some(app.row);
        draw_cards(frame, inner, app, (cards, total), selected);
    }
}

/// A lane's title: its name, its count, and the initials of the others whose open card is in
/// it.
fn lane_title<'a>(app: &App, label: &str, total: usize, cards: &[String]) -> Line<'a> {
    let mut spans = vec![Span::from(format!(" {label} {total} ")).bold()];
    let here = app.initials_among(cards.iter().map(String::as_str));
    if !here.is_empty() {
        spans.push(Span::from(safe(&here)).fg(Color::Magenta).bold());
        spans.push(Span::raw(" "));
    }
    Line::from(spans)
}

/// The list view: every card (found and filtered as on the board) on one line with its title
/// as wide as the terminal allows, in the chosen order. Narrow terminals leave out the sprint
/// and the time of the last change.
pub(super) fn draw_list(frame: &mut Frame, area: Rect, app: &App, view: View) {
    let cards = app.list_cards();
    let store = &app.replica.store;
    let wide = area.width >= 110;
    let tree = view == View::Tree;
    // (header, width); the title takes the rest. The mouse reads the same layout.
    let columns = layout::list_columns(area.width, tree);
    let used: u16 = columns.iter().map(|(_, w)| w + 1).sum();
    let title_cols = usize::from(area.width.saturating_sub(2 + used));
    let header = Row::new(
        columns
            .iter()
            .map(|(h, _)| *h)
            .chain([layout::LIST_TITLE])
            .map(|h| Cell::from(h).bold()),
    );
    let rows: Vec<Row> = cards
        .iter()
        .map(|c| {
            let w = c.item;
            let item_type = ItemType::from_proto(w.item_type).map_or("?", |t| t.label());
            let status = Status::parse(&w.status).map_or(w.status.as_str(), |s| s.label());
            let assignee = w
                .assignee_id
                .as_ref()
                .map_or_else(|| "—".to_string(), |a| safe(&app.user_name(a)));
            let marks = if store.blockers_of(&w.id).is_empty() {
                ""
            } else {
                "⛔ "
            };
            let mut cells = vec![
                Cell::from(c.key.clone()).bold(),
                Cell::from(item_type),
                Cell::from(status),
                Cell::from(priority_label(&w.priority).to_string()),
                Cell::from(w.story_points.map(|p| p.to_string()).unwrap_or_default()),
                Cell::from(truncate(&assignee, 10)),
            ];
            if tree {
                let (done, total) = app.progress(w);
                cells.push(Cell::from(if total > 0 {
                    format!("{done}/{total}")
                } else {
                    String::new()
                }));
            }
            if wide {
                let sprint = w
                    .sprint_id
                    .as_ref()
                    .and_then(|s| store.sprints.get(s))
                    .map_or_else(|| "—".to_string(), |s| safe(&s.name));
                cells.push(Cell::from(truncate(&sprint, 10)));
                cells.push(Cell::from(when(w.updated_at)).dim());
            }
            // In the tree, a child is indented under its parent.
            let indent = if tree {
                match app.depth(w) {
                    0 => String::new(),
                    d => format!("{}└ ", "  ".repeat(d - 1)),
                }
            } else {
                String::new()
            };
            let title = format!("{indent}{marks}{}", safe(&w.title));
            cells.push(Cell::from(truncate(&title, title_cols)));
            Row::new(cells)
        })
        .collect();
    let widths: Vec<Constraint> = columns
        .iter()
        .map(|(_, w)| Constraint::Length(*w))
        .chain([Constraint::Fill(1)])
        .collect();
    let title = match view {
        View::List(sort) => format!(
            "{} cards · sorted by {}  (O: sort · V: tree · v: board)",
            cards.len(),
            sort.label()
        ),
        _ => format!(
            "{} cards · epic → story → task  (v: list · V: board)",
            cards.len()
        ),
    };
    let table = Table::new(rows, widths)
        .header(header)
        .block(popup_block(&title).border_style(Style::new().fg(Color::Cyan)))
        .row_highlight_style(Style::new().reversed());
    let mut state = TableState::default().with_selected(Some(app.list_row));
    frame.render_stateful_widget(table, area, &mut state);
}

/// The cards of one lane (`ids`, in board order, of `total` the lane has: more while only a
/// preview is loaded) that fit in `area`; only those are looked up and measured.
pub(super) fn draw_cards(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    (ids, total): (&[String], usize),
    selected: Option<usize>,
) {
    if area.height == 0 || area.width == 0 {
        return;
    }
    let card = |i: usize| {
        app.card(&ids[i]).map(|item| Card {
            item,
            key: app.key_of(item),
        })
    };
    let height = |i: usize| {
        card(i).map_or(layout::CARD_HEIGHT, |c| {
            layout::card_height(&c.shown_title(), area.width)
        })
    };
    let shown = layout::slots_of(area.height, ids.len(), height, selected);
    for slot in &shown {
        let rect = Rect {
            y: area.y + slot.y,
            height: slot.height,
            ..area
        };
        if let Some(card) = card(slot.index) {
            draw_card(frame, rect, app, &card, selected == Some(slot.index));
        }
    }
    let after = shown.last().map_or(0, |s| s.index + 1);
    if total > after {
        let more = Rect {
            y: area.y + area.height - 1,
            height: 1,
            ..area
        };
        frame.render_widget(
            Line::from(format!("↓ {} more", total - after))
                .dim()
                .alignment(Alignment::Right),
            more,
        );
    }
}

pub(super) fn draw_card(frame: &mut Frame, area: Rect, app: &App, card: &Card<'_>, selected: bool) {
    let item = card.item;
    let item_type = ItemType::from_proto(item.item_type).unwrap_or(ItemType::Task);
    let (badge, badge_color) = match item_type {
        ItemType::Epic => ("EPIC", Color::Magenta),
        ItemType::Story => ("STORY", Color::Green),
        ItemType::Task => ("TASK", Color::Blue),
    };
    let priority = Priority::parse(&item.priority).unwrap_or(Priority::Medium);
    let (glyph, pcolor) = match priority {
        Priority::Critical => ("!!", Color::Red),
        Priority::High => ("↑", Color::LightRed),
        Priority::Medium => ("=", Color::Yellow),
        Priority::Low => ("↓", Color::DarkGray),
    };
    let width = area.width as usize;
    let store = &app.replica.store;
    let blocked = !store.blockers_of(&item.id).is_empty();
    // Line 1: key, priority and ⛔ when an open card blocks it on the left, points on the right.
    let mut top = vec![
        Span::from(card.key.clone()).bold(),
        Span::raw(" "),
        Span::from(glyph).fg(pcolor).bold(),
    ];
    if blocked {
        top.push(Span::raw(" "));
        top.push(Span::from("⛔").fg(Color::Red));
    }
    // My change to it waits to be sent (offline), or met a conflict (in the inbox).
    let pending = app.offline.is_pending(&item.id);
    let refused = app
        .offline
        .inbox()
        .iter()
        .any(|c| c.write.item_id == item.id);
    if pending {
        top.push(Span::raw(" "));
        top.push(Span::from("⇡").fg(Color::Yellow).bold());
    }
    // Who else has this card open: their initials.
    let here = app.initials_on(&item.id);
    if !here.is_empty() {
        top.push(Span::raw(" "));
        top.push(
            Span::from(safe(&here))
                .fg(Color::White)
                .bg(Color::Magenta)
                .bold(),
        );
    }
    let used: usize = top.iter().map(Span::width).sum();
    let points = item
        .story_points
        .map(|p| format!("{p}p"))
        .filter(|p| used + 1 + p.len() <= width)
        .unwrap_or_default();
    let gap = width.saturating_sub(used + points.len()).max(1);
    top.push(Span::raw(" ".repeat(gap)));
    top.push(Span::from(points).fg(Color::Cyan));
    let top = Line::from(top);
    // Line 2 (and 3 when it does not fit on one): the title. Last line: the type, then who
    // changed it just now, else the assignee, and a timer running on the card (anyone's; mine
    // first) on the right.
    let (title, title_more) = wrap_two(&card.shown_title(), width);
    let room = width.saturating_sub(badge.len() + 1);
    let mut bottom = vec![Span::from(badge).fg(badge_color).bold(), Span::raw(" ")];
    let who = match app.highlights.get(&item.id) {
        _ if refused => Span::from("⚠ inbox").fg(Color::Black).bg(Color::Magenta),
        _ if pending => Span::from("⇡ pending").fg(Color::Yellow).bold(),
        Some((_, user)) => Span::from(safe(&format!("✎ {}", app.user_name(user))))
            .fg(Color::Black)
            .bg(Color::Yellow)
            .bold(),
        None => match &item.assignee_id {
            Some(a) => Span::from(safe(&format!("@{}", app.user_name(a)))).fg(Color::Gray),
            None => Span::from("—").dim(),
        },
    };
    match card_timer(app, &item.id) {
        Some((secs, mine)) => {
            let color = if mine { Color::Green } else { Color::Cyan };
            // The time when there is room for it and a few columns of the name, else the mark.
            let full = format!("⏱ {}", duration(secs));
            let timer = if room >= width_of(&full) + 1 + who.width().min(5) {
                full
            } else {
                "⏱".to_string()
            };
            let who_room = room.saturating_sub(width_of(&timer) + 1);
            let who_text = truncate(&who.content, who_room);
            let gap = room.saturating_sub(width_of(&who_text) + width_of(&timer));
            bottom.push(Span::styled(who_text, who.style));
            bottom.push(Span::raw(" ".repeat(gap)));
            bottom.push(Span::from(timer).fg(color).bold());
        }
        None => bottom.push(Span::styled(truncate(&who.content, room), who.style)),
    }
    let bottom = Line::from(bottom);
    let mut style = Style::new();
    if app.highlights.contains_key(&item.id) {
        style = style.bg(Color::Rgb(60, 60, 0));
    }
    if selected {
        style = style.add_modifier(Modifier::REVERSED);
    }
    let mut lines = vec![top, Line::from(title)];
    lines.extend(title_more.map(Line::from));
    lines.push(bottom);
    frame.render_widget(Paragraph::new(lines).style(style), area);
}

pub(super) fn draw_picker(frame: &mut Frame, area: Rect, app: &App) {
    let projects = app.projects();
    let block = popup_block(if app.replica.project().is_some() {
        "Projects  (↑↓ select · Enter open · n new · Esc back to the board)"
    } else {
        "Projects  (↑↓ select · Enter open · n new · q quit)"
    });
    if projects.is_empty() {
        let text = if let Link::Reconnecting { attempt, reason } = &app.link {
            format!(
                "Cannot reach the server at {}: {}. Trying again (try {attempt}); r: retry now.",
                safe(app.server_url.trim_end_matches('/')),
                safe(&short_reason(reason))
            )
        } else if app.replica.store.cursor("").is_none() {
            "Loading projects…".to_string()
        } else {
            "No projects yet. n creates one (or: pm project create --title \"My project\" --key MP)"
                .to_string()
        };
        frame.render_widget(
            Paragraph::new(text).wrap(Wrap { trim: true }).block(block),
            area,
        );
        return;
    }
    let items: Vec<ListItem> = projects
        .iter()
        .map(|p| {
            let count = app.replica.store.items_of(&p.id).count();
            let extra = if count > 0 {
                format!("  ({count} items)")
            } else {
                String::new()
            };
            ListItem::new(Line::from(vec![
                Span::from(format!("{:<8}", p.key)).bold(),
                Span::raw(safe(&p.title)),
                Span::from(extra).dim(),
            ]))
        })
        .collect();
    let mut state = ListState::default().with_selected(Some(app.picker_row));
    let list = List::new(items)
        .block(block)
        .highlight_style(Style::new().reversed())
        .highlight_symbol("› ");
    frame.render_stateful_widget(list, area, &mut state);
}

pub(super) fn draw_activity(frame: &mut Frame, area: Rect, app: &App) {
    let lines: Vec<Line> = if app.activity.is_empty() {
        vec![Line::from(" No activity yet: changes by anyone show up here as they happen.").dim()]
    } else {
        app.activity
            .iter()
            .take(area.height as usize)
            .map(|(who, what)| {
                Line::from(safe(&format!(" • {} {what}", app.user_name(who)))).fg(Color::Gray)
            })
            .collect()
    };
    frame.render_widget(Paragraph::new(lines), area);
}

pub(super) fn draw_status(frame: &mut Frame, area: Rect, app: &App) {
    let (link, color) = match &app.link {
        Link::Connecting if !app.server_url.is_empty() => (
            format!("◌ connecting to {}", safe(&server(app))),
            Color::Yellow,
        ),
        Link::Connecting => ("◌ connecting".to_string(), Color::Yellow),
        Link::Connected if app.replica.is_resyncing() => ("⟳ resyncing".to_string(), Color::Yellow),
        Link::Connected => ("● connected".to_string(), Color::Green),
        Link::Reconnecting { attempt, .. } => {
            (format!("◌ reconnecting (try {attempt})"), Color::Red)
        }
    };
    let last = match app.last_event {
        Some(at) => format!(
            "last event {} ago",
            ago(app.now.saturating_duration_since(at).as_secs())
        ),
        None => "no events yet".into(),
    };
    let mut spans = vec![
        Span::from(format!(" {} ", app.my_name)).bold().reversed(),
        Span::raw(" "),
        Span::from(link).fg(color),
    ];
    // Offline work first: it matters more than anything after it.
    let pending = app.offline.pending_len();
    if pending > 0 {
        spans.push(Span::from(format!(" · ⇡ {pending} pending")).fg(Color::Yellow));
    }
    let conflicts = app.offline.inbox().len();
    if conflicts > 0 {
        let text = match conflicts {
            1 => " · ⚠ 1 conflict (I)".to_string(),
            n => format!(" · ⚠ {n} conflicts (I)"),
        };
        spans.push(Span::from(text).fg(Color::Magenta).bold());
    }
    if let Link::Reconnecting { reason, .. } = &app.link {
        // What to do about it first (a narrow terminal cuts the end), then where to and why not.
        spans.push(Span::from(" · r: retry now").fg(Color::Cyan));
        let why = safe(&short_reason(reason));
        spans.push(Span::from(match server(app) {
            url if url.is_empty() => format!(" · {why}"),
            url => format!(" · {}: {why}", safe(&url)),
        }));
    } else {
        spans.push(Span::from(format!(" · {last}")).dim());
    }
    match &app.notice {
        Some((text, _)) => {
            let notice = Span::from(format!(" · {text}")).fg(Color::Red);
            let used: usize = spans.iter().map(Span::width).sum();
            // A notice matters more than how long ago the last event was.
            if used + notice.width() > area.width as usize
                && !matches!(app.link, Link::Reconnecting { .. })
            {
                spans.pop();
            }
            spans.push(notice);
        }
        None if matches!(app.link, Link::Reconnecting { .. }) => {}
        None => spans.push(Span::from(" · ? help · q quit").dim()),
    }
    frame.render_widget(Line::from(spans), area);
}

/// The server's address without the scheme, e.g. `127.0.0.1:1`.
pub(super) fn server(app: &App) -> String {
    let url = app.server_url.as_str();
    let url = url.split_once("://").map_or(url, |(_, rest)| rest);
    url.trim_end_matches('/').to_string()
}

pub(super) fn ago(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s => format!("{}h", s / 3600),
    }
}

/// A timer running on the card: how long, and whether it is mine (shown first), else the
/// longest-running one of someone else.
pub(super) fn card_timer(app: &App, item_id: &str) -> Option<(i64, bool)> {
    app.replica
        .store
        .time_entries_of(item_id)
        .into_iter()
        .filter(|t| t.ended_at.is_none())
        .map(|t| (app.clock.saturating_sub(t.started_at), t.user_id == app.me))
        .max_by_key(|(secs, mine)| (*mine, *secs))
}
