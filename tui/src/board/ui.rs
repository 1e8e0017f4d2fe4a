//! Drawing: a pure function of the app state onto a ratatui frame.
//!
//! Server text (titles, names, descriptions, comments, history) is data anyone with write access
//! chose: it passes through [`safe`] (`pm_shared::terminal::sanitize_for_terminal`: controls and
//! bidi marks become a visible `�`) before it is laid out, and [`scrub`] checks every cell of the
//! finished frame once more, so a draw site that forgets cannot send an escape sequence or a bidi
//! override to the terminal either.
use pm_shared::domain::limits::STORY_POINTS_MAX;
use pm_shared::domain::{ItemType, Priority, SprintStatus, Status};
use pm_shared::proto;
use pm_shared::terminal::{is_unsafe_for_terminal, sanitize_for_terminal, PLACEHOLDER};
use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, BorderType, Borders, Cell, Clear, List, ListItem, ListState, Paragraph, Row, Table,
    TableState, Wrap,
};
use ratatui::Frame;

use super::app::{
    duration, short_reason, App, Card, EditorRequest, Link, PaletteEntry, Popup, TextField, View,
};
use super::input::TextInput;
use super::keymap;
use super::markdown;
use super::pick::PickKind;
use crate::width::{pad, truncate, width as width_of};

use super::layout::{self, CARD_HEIGHT};

/// The smallest terminal the board is drawn in; below it, a message says so.
pub const MIN_WIDTH: u16 = 50;
pub const MIN_HEIGHT: u16 = 12;

pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let text = format!(
            "Terminal too small ({}×{}): pm board needs {MIN_WIDTH}×{MIN_HEIGHT}. Ctrl-C quits.",
            area.width, area.height
        );
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
        return;
    }
    let layout::Bands {
        header,
        body,
        activity,
        status,
    } = layout::bands(area);
    match app.project().filter(|_| !app.picking) {
        Some(project) => {
            draw_header(frame, header, app, project);
            match app.view {
                View::Board => draw_lanes(frame, body, app),
                view => draw_list(frame, body, app, view),
            }
        }
        None => {
            frame.render_widget(Line::from(" pm · pick a project").bold(), header);
            draw_picker(frame, body, app);
        }
    }
    draw_activity(frame, activity, app);
    draw_status(frame, status, app);
    match &app.popup {
        Popup::None => {}
        Popup::Help { scroll } => draw_help(frame, area, app, *scroll),
        Popup::Detail { item_id, comment } => {
            draw_detail(frame, area, app, item_id, comment.as_ref())
        }
        Popup::NewCard { title, item_type } => {
            let lane = Status::ALL[app.lane.min(Status::ALL.len() - 1)].label();
            let label = format!(
                "New {} in {lane}  (Tab: type · Enter: create · Esc: cancel)",
                item_type.label()
            );
            draw_input(frame, area, &label, title);
        }
        Popup::EditTitle { title, .. } => draw_input(
            frame,
            area,
            "Edit title  (Enter: save · Esc: cancel)",
            title,
        ),
        Popup::Filter { text } => draw_input(
            frame,
            area,
            "Find  (words · @me · type:task · prio:high · sprint:none · -done)",
            text,
        ),
        Popup::Conflict {
            item_id,
            field,
            mine,
            theirs,
        } => draw_conflict(frame, area, app, item_id, *field, mine, theirs),
        Popup::Unsaved { request, reason } => draw_unsaved(frame, area, app, request, reason),
        Popup::ConfirmDelete { item_id } => draw_confirm_delete(frame, area, app, item_id),
        Popup::NewProject {
            title, key, on_key, ..
        } => draw_new_project(frame, area, title, key, *on_key),
        Popup::Palette { filter, row } => draw_palette(frame, area, app, filter, *row),
        Popup::Activity { scroll } => draw_activity_feed(frame, area, app, *scroll),
        Popup::Sprints { row, naming } => {
            draw_sprints(frame, area, app, *row);
            if let Some(name) = naming {
                draw_input(
                    frame,
                    area,
                    "New sprint: its name  (from today for two weeks · Enter · Esc)",
                    name,
                );
            }
        }
        Popup::Points { input, .. } => draw_input(
            frame,
            area,
            &format!("Story points  (0–{STORY_POINTS_MAX} · Enter: save · Esc: cancel)"),
            input,
        ),
        Popup::Pick {
            item_id,
            kind,
            filter,
            row,
            ..
        } => draw_pick(frame, area, app, item_id, *kind, filter, *row),
    }
    scrub(frame.buffer_mut());
    if app.no_color {
        strip_colors(frame.buffer_mut());
    }
}

/// `NO_COLOR` (no-color.org): every cell in the terminal's own colours. Bold, reversed (the
/// selection) and dim stay, so nothing the board says depends on colour alone.
fn strip_colors(buf: &mut Buffer) {
    for cell in buf.content.iter_mut() {
        cell.fg = Color::Reset;
        cell.bg = Color::Reset;
    }
}

/// "Delete PM-7 "title"?" on one line (the title cut to fit) and the choices on the next, so
/// a long title never pushes the instructions out of the box.
fn draw_confirm_delete(frame: &mut Frame, area: Rect, app: &App, item_id: &str) {
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
fn draw_activity_feed(frame: &mut Frame, area: Rect, app: &App, scroll: u16) {
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
fn draw_palette(frame: &mut Frame, area: Rect, app: &App, filter: &TextInput, row: usize) {
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
fn draw_new_project(
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
fn draw_sprints(frame: &mut Frame, area: Rect, app: &App, row: usize) {
    let sprints = app.sprints();
    let project = app.replica.project().unwrap_or_default();
    let mut items = vec![ListItem::new(Line::from(if app.sprint.is_none() {
        "✓ all cards (no sprint filter)"
    } else {
        "  all cards (no sprint filter)"
    }))];
    for s in &sprints {
        let cards: Vec<&proto::WorkItem> = app
            .replica
            .store
            .items_of(project)
            .filter(|w| w.sprint_id.as_deref() == Some(s.id.as_str()))
            .collect();
        let points = |w: &&proto::WorkItem| i64::from(w.story_points.unwrap_or(0));
        let done: Vec<&proto::WorkItem> = cards
            .iter()
            .copied()
            .filter(|w| Status::parse(&w.status) == Some(Status::Done))
            .collect();
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
            Span::raw(format!(
                "{}/{} cards · {}/{} points",
                done.len(),
                cards.len(),
                done.iter().map(points).sum::<i64>(),
                cards.iter().map(points).sum::<i64>()
            )),
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
fn day(secs: i64) -> String {
    let (_, m, d, _, _, _) = pm_shared::date::civil_from_secs(secs);
    format!("{m:02}-{d:02}")
}

/// A picker: a filter line, then "none" and the choices, the card's current value marked ✓.
fn draw_pick(
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

/// Server text made safe for a terminal cell (see the module comment).
fn safe(text: &str) -> String {
    sanitize_for_terminal(text).into_owned()
}

/// The last line of defence: ratatui drops control characters but glues zero-width ones (bidi
/// overrides, marks, isolates) onto the previous cell, which the terminal then receives. Any
/// unsafe character left in a cell is removed; a cell that held nothing else shows `�`.
fn scrub(buf: &mut Buffer) {
    for cell in buf.content.iter_mut() {
        if !cell.symbol().chars().any(is_unsafe_for_terminal) {
            continue;
        }
        let kept: String = cell
            .symbol()
            .chars()
            .filter(|c| !is_unsafe_for_terminal(*c))
            .collect();
        if kept.is_empty() {
            cell.set_char(PLACEHOLDER);
        } else {
            cell.set_symbol(&kept);
        }
    }
}

fn draw_header(frame: &mut Frame, area: Rect, app: &App, project: &proto::Project) {
    let mut spans = vec![
        Span::from(format!(" {} ", project.key)).bold().reversed(),
        Span::from(format!(" {}", safe(&project.title))).bold(),
    ];
    if let Some(sprint) = app
        .sprint
        .as_ref()
        .and_then(|s| app.replica.store.sprints.get(s))
    {
        spans.push(Span::from(format!("  sprint: {}", safe(&sprint.name))).fg(Color::Cyan));
    }
    if !app.filter.is_empty() {
        spans.push(Span::from(format!("  find: {}", safe(&app.filter))).fg(Color::Yellow));
    }
    frame.render_widget(Line::from(spans), area);
}

fn draw_lanes(frame: &mut Frame, area: Rect, app: &App) {
    let lanes = app.lanes();
    let columns = layout::lanes(area);
    for (i, (status, cards)) in Status::ALL.iter().zip(lanes.iter()).enumerate() {
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
            .title(Line::from(format!(" {} {} ", status.label(), cards.len())).bold());
        let inner = block.inner(columns[i]);
        frame.render_widget(block, columns[i]);
        draw_cards(frame, inner, app, cards, (i == app.lane).then_some(app.row));
    }
}

/// The list view: every card (found and filtered as on the board) on one line with its title
/// as wide as the terminal allows, in the chosen order. Narrow terminals leave out the sprint
/// and the time of the last change.
fn draw_list(frame: &mut Frame, area: Rect, app: &App, view: View) {
    let cards = app.list_cards();
    let store = &app.replica.store;
    let wide = area.width >= 110;
    let tree = view == View::Tree;
    // (header, width); the title takes the rest.
    let mut columns: Vec<(&str, u16)> = vec![
        ("KEY", 8),
        ("TYPE", 5),
        ("STATUS", 11),
        ("PRIO", 8),
        ("PTS", 3),
        ("ASSIGNEE", 10),
    ];
    if tree {
        columns.push(("DONE", 7));
    }
    if wide {
        columns.extend([("SPRINT", 10), ("CHANGED", 11)]);
    }
    let used: u16 = columns.iter().map(|(_, w)| w + 1).sum();
    let title_cols = usize::from(area.width.saturating_sub(2 + used));
    let header = Row::new(
        columns
            .iter()
            .map(|(h, _)| *h)
            .chain(["TITLE"])
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

fn draw_cards(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    cards: &[Card<'_>],
    selected: Option<usize>,
) {
    if area.height == 0 || area.width == 0 {
        return;
    }
    let fit = (area.height / CARD_HEIGHT).max(1) as usize;
    let offset = layout::first_shown(area.height, selected);
    for (slot, (index, card)) in cards.iter().enumerate().skip(offset).take(fit).enumerate() {
        let rect = Rect {
            y: area.y + slot as u16 * CARD_HEIGHT,
            height: CARD_HEIGHT.min(area.height),
            ..area
        };
        draw_card(frame, rect, app, card, selected == Some(index));
    }
    if cards.len() > offset + fit && area.height > 0 {
        let more = Rect {
            y: area.y + area.height - 1,
            height: 1,
            ..area
        };
        frame.render_widget(
            Line::from(format!("↓ {} more", cards.len() - offset - fit))
                .dim()
                .alignment(Alignment::Right),
            more,
        );
    }
}

fn draw_card(frame: &mut Frame, area: Rect, app: &App, card: &Card<'_>, selected: bool) {
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
    // Line 2: the title. Line 3: the type, then who changed it just now, else the assignee,
    // and a timer running on the card (anyone's; mine first) on the right.
    let title = truncate(&safe(&item.title), width);
    let room = width.saturating_sub(badge.len() + 1);
    let mut bottom = vec![Span::from(badge).fg(badge_color).bold(), Span::raw(" ")];
    let who = match app.highlights.get(&item.id) {
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
    let lines = vec![top, Line::from(title), bottom];
    frame.render_widget(Paragraph::new(lines).style(style), area);
}

fn draw_picker(frame: &mut Frame, area: Rect, app: &App) {
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

fn draw_activity(frame: &mut Frame, area: Rect, app: &App) {
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

fn draw_status(frame: &mut Frame, area: Rect, app: &App) {
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
fn server(app: &App) -> String {
    let url = app.server_url.as_str();
    let url = url.split_once("://").map_or(url, |(_, rest)| rest);
    url.trim_end_matches('/').to_string()
}

fn ago(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s => format!("{}h", s / 3600),
    }
}

/// The help: every key of the board's keymap (the same table the board dispatches through) and
/// what the marks on a card mean.
fn draw_help(frame: &mut Frame, area: Rect, app: &App, scroll: u16) {
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

fn draw_detail(
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
fn parent_chain(app: &App, item: &proto::WorkItem) -> String {
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
fn link_lines(app: &App, item_id: &str) -> Vec<Line<'static>> {
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
fn time_line(app: &App, item_id: &str) -> Line<'static> {
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
fn history_lines(app: &App, item_id: &str) -> Vec<Line<'static>> {
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

/// A priority as people read it (`Critical`), or the value itself when it is not one.
fn priority_label(value: &str) -> &str {
    Priority::parse(value).map_or(value, |p| p.label())
}

/// `MM-DD HH:MM by name` (without the name when the server gave none).
fn when_by(app: &App, secs: i64, user: &str) -> String {
    match user {
        "" => when(secs),
        user => format!("{} by {}", when(secs), safe(&app.user_name(user))),
    }
}

/// `MM-DD HH:MM` (UTC).
fn when(secs: i64) -> String {
    let (_, m, d, h, min, _) = pm_shared::date::civil_from_secs(secs);
    format!("{m:02}-{d:02} {h:02}:{min:02}")
}

/// One history entry in words: `created`, `deleted`, or `status To Do → Done; …`.
fn history_text(app: &App, e: &proto::ActivityLogEntry) -> String {
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

/// Someone else changed the title or description while I was editing it: both texts (a
/// description's first lines), and the choices.
fn draw_conflict(
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
fn draw_unsaved(frame: &mut Frame, area: Rect, app: &App, request: &EditorRequest, reason: &str) {
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

fn draw_input(frame: &mut Frame, area: Rect, label: &str, input: &TextInput) {
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

/// ` 187/200 ` for a field with a limit once it holds `from` characters or more: red, with
/// what to do, when over it.
fn count_span(input: &TextInput, from: usize) -> Option<Span<'static>> {
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
fn input_spans(input: &TextInput, cols: usize) -> Vec<Span<'static>> {
    let view = input.view(cols);
    let mut spans = vec![Span::raw(safe(&view.before))];
    match view.at {
        Some(c) => spans.push(Span::from(safe(&c.to_string())).reversed()),
        None => spans.push(Span::raw("▏")),
    }
    spans.push(Span::raw(safe(&view.after)));
    spans
}

fn popup_block(title: &str) -> Block<'_> {
    Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .title(Line::from(format!(" {title} ")).bold())
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

/// A timer running on the card: how long, and whether it is mine (shown first), else the
/// longest-running one of someone else.
fn card_timer(app: &App, item_id: &str) -> Option<(i64, bool)> {
    app.replica
        .store
        .time_entries_of(item_id)
        .into_iter()
        .filter(|t| t.ended_at.is_none())
        .map(|t| (app.clock.saturating_sub(t.started_at), t.user_id == app.me))
        .max_by_key(|(secs, mine)| (*mine, *secs))
}
