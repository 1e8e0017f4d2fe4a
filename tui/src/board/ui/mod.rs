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

use super::app::Theme;
use super::app::{
    duration, short_reason, App, Card, EditorRequest, Link, PaletteEntry, Popup, TextField, View,
};
use super::input::TextInput;
use super::keymap;
use super::markdown;
use super::pick::PickKind;
use crate::width::{pad, truncate, width as width_of, wrap_two};

use super::layout;

mod board;
mod detail;
mod inbox;
mod popups;

use board::*;
use detail::*;
use inbox::*;
use popups::*;

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
        Popup::EditTitle { title, item_id, .. } => {
            draw_input(
                frame,
                area,
                "Edit title  (Enter: save · Esc: cancel)",
                title,
            );
            draw_input_notes(frame, area, &app.editing_notes(item_id, Some("title")));
        }
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
        Popup::Inbox { row } => draw_inbox(frame, area, app, *row),
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
            &format!(
                "Story points  (0–{STORY_POINTS_MAX}, empty: none · Enter: save · Esc: cancel)"
            ),
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
    } else if app.theme == Theme::Light {
        lighten(frame.buffer_mut());
    }
}

/// The board is drawn for a dark background; `theme = "light"` swaps the colours that would
/// not read on a light one (pale text, the dark highlight, yellow and cyan on white).
fn lighten(buf: &mut Buffer) {
    let swap = |c: Color| match c {
        Color::Gray | Color::White => Color::Black,
        Color::Yellow => Color::Rgb(150, 100, 0),
        Color::Cyan => Color::Blue,
        Color::LightRed => Color::Red,
        Color::Rgb(60, 60, 0) => Color::Rgb(255, 240, 170),
        other => other,
    };
    for cell in buf.content.iter_mut() {
        cell.fg = swap(cell.fg);
        cell.bg = swap(cell.bg);
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

/// A priority as people read it (`Critical`), or the value itself when it is not one.
fn priority_label(value: &str) -> &str {
    Priority::parse(value).map_or(value, |p| p.label())
}

/// `MM-DD HH:MM` (UTC).
fn when(secs: i64) -> String {
    let (_, m, d, h, min, _) = pm_shared::date::civil_from_secs(secs);
    format!("{m:02}-{d:02} {h:02}:{min:02}")
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
