//! The board's keys: one table says which keys run which command and what the command does.
//! The board dispatches through it and the help screen is generated from it, so the help can
//! never list a key the board does not have (or miss one it has).
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Everything a key can do on the board (with no popup open).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    LanePrev,
    LaneNext,
    CardPrev,
    CardNext,
    FirstCard,
    LastCard,
    PageUp,
    PageDown,
    MoveCardPrev,
    MoveCardNext,
    MoveCardUp,
    MoveCardDown,
    NewCard,
    EditTitle,
    EditDescription,
    Delete,
    Details,
    Timer,
    Assign,
    PickSprint,
    PickParent,
    Points,
    Priority,
    Undo,
    Redo,
    ToggleView,
    TreeView,
    Palette,
    Activity,
    Sort,
    SprintFilter,
    Sprints,
    Filter,
    ClearFilters,
    OtherProject,
    Reconnect,
    Help,
    Quit,
}

/// One key: its code, whether Shift is part of it (arrows only; a letter's case says it), and
/// how the help spells it.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    code: KeyCode,
    shift: bool,
    ctrl: bool,
}

const fn key(code: KeyCode) -> Key {
    Key {
        code,
        shift: false,
        ctrl: false,
    }
}

const fn ch(c: char) -> Key {
    key(KeyCode::Char(c))
}

const fn shifted(code: KeyCode) -> Key {
    Key {
        code,
        shift: true,
        ctrl: false,
    }
}

const fn ctrl(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        shift: false,
        ctrl: true,
    }
}

impl Key {
    fn matches(&self, event: &KeyEvent) -> bool {
        match (self.code, event.code) {
            // A letter's case already says whether Shift was down (terminals differ in also
            // reporting the modifier).
            (KeyCode::Char(a), KeyCode::Char(b)) => {
                a == b
                    && self.ctrl == event.modifiers.contains(KeyModifiers::CONTROL)
                    && !event.modifiers.contains(KeyModifiers::ALT)
            }
            (a, b) => a == b && self.shift == event.modifiers.contains(KeyModifiers::SHIFT),
        }
    }

    /// How the help writes the key.
    pub fn label(&self) -> String {
        let base = match self.code {
            KeyCode::Left => "←".into(),
            KeyCode::Right => "→".into(),
            KeyCode::Up => "↑".into(),
            KeyCode::Down => "↓".into(),
            KeyCode::Home => "Home".into(),
            KeyCode::End => "End".into(),
            KeyCode::PageUp => "PgUp".into(),
            KeyCode::PageDown => "PgDn".into(),
            KeyCode::Enter => "Enter".into(),
            KeyCode::Esc => "Esc".into(),
            KeyCode::Char(c) => c.to_string(),
            other => format!("{other:?}"),
        };
        match (self.shift, self.ctrl) {
            (true, _) => format!("⇧{base}"),
            (_, true) => format!("Ctrl-{}", base.to_uppercase()),
            _ => base,
        }
    }
}

/// Keys, the command they run, and what the help says about it.
pub struct Binding {
    pub keys: &'static [Key],
    pub command: Command,
    pub help: &'static str,
}

const fn bind(keys: &'static [Key], command: Command, help: &'static str) -> Binding {
    Binding {
        keys,
        command,
        help,
    }
}

use KeyCode::{Down, End, Enter, Esc, Home, Left, PageDown, PageUp, Right, Up};

/// The board's keys, in the order the help lists them.
pub const BOARD: &[Binding] = &[
    bind(&[key(Left), ch('h')], Command::LanePrev, ""),
    bind(&[key(Right), ch('l')], Command::LaneNext, "select lane"),
    bind(&[key(Up), ch('k')], Command::CardPrev, ""),
    bind(&[key(Down), ch('j')], Command::CardNext, "select card"),
    bind(&[ch('g'), key(Home)], Command::FirstCard, ""),
    bind(
        &[ch('G'), key(End)],
        Command::LastCard,
        "first / last card in the lane",
    ),
    bind(&[key(PageUp)], Command::PageUp, ""),
    bind(
        &[key(PageDown)],
        Command::PageDown,
        "a lane's screenful up / down",
    ),
    bind(&[ch('H'), shifted(Left)], Command::MoveCardPrev, ""),
    bind(
        &[ch('L'), shifted(Right)],
        Command::MoveCardNext,
        "move the card to the previous / next lane",
    ),
    bind(&[ch('K'), shifted(Up)], Command::MoveCardUp, ""),
    bind(
        &[ch('J'), shifted(Down)],
        Command::MoveCardDown,
        "move the card up / down in its lane",
    ),
    bind(
        &[ch('n')],
        Command::NewCard,
        "new card in this lane (Tab: type)",
    ),
    bind(&[ch('e')], Command::EditTitle, "edit the title"),
    bind(
        &[ch('E')],
        Command::EditDescription,
        "edit the description in $EDITOR",
    ),
    bind(&[ch('d')], Command::Delete, "delete (asks first)"),
    bind(
        &[key(Enter)],
        Command::Details,
        "details, links, time, history (c: comment)",
    ),
    bind(&[ch('t')], Command::Timer, "start / stop your timer ⏱"),
    bind(&[ch('a')], Command::Assign, "assign: pick who (or nobody)"),
    bind(
        &[ch('S')],
        Command::PickSprint,
        "sprint: put the card in one (or none)",
    ),
    bind(
        &[ch('P')],
        Command::PickParent,
        "parent: an epic for a story, a story for a task",
    ),
    bind(&[ch('p')], Command::Priority, "cycle priority"),
    bind(&[ch('#')], Command::Points, "story points"),
    bind(&[ch('u')], Command::Undo, ""),
    bind(
        &[ctrl('r')],
        Command::Redo,
        "undo my last change (or delete) / redo",
    ),
    bind(&[ch('s')], Command::SprintFilter, "cycle the sprint filter"),
    bind(
        &[ch('i')],
        Command::Sprints,
        "sprints: progress, new, start, complete, filter",
    ),
    bind(
        &[ch('/')],
        Command::Filter,
        "find in key, title, text; @me type: prio: -done",
    ),
    bind(&[key(Esc)], Command::ClearFilters, "clear the filters"),
    bind(
        &[ch('v')],
        Command::ToggleView,
        "list view (full titles) / board",
    ),
    bind(
        &[ch('V')],
        Command::TreeView,
        "hierarchy: epic → story → task, with progress",
    ),
    bind(
        &[ch('O')],
        Command::Sort,
        "list: sort by key, priority, last change",
    ),
    bind(
        &[ch('A')],
        Command::Activity,
        "activity: every change seen, newest first",
    ),
    bind(&[ch('o')], Command::OtherProject, "other project"),
    bind(
        &[ch('r')],
        Command::Reconnect,
        "reconnect now (while disconnected)",
    ),
    bind(
        &[ch(':'), ctrl('p')],
        Command::Palette,
        "palette: every command, and any card by key",
    ),
    bind(&[ch('?')], Command::Help, "this help"),
    bind(&[ch('q')], Command::Quit, "quit"),
];

/// The command a key runs on the board, if any.
pub fn command(event: &KeyEvent) -> Option<Command> {
    BOARD
        .iter()
        .find(|b| b.keys.iter().any(|k| k.matches(event)))
        .map(|b| b.command)
}

/// The help's key lines: bindings with an empty help text are listed with the next one, so
/// `← h, → l` shares the line "select lane".
pub fn help_lines() -> Vec<(String, &'static str)> {
    let mut lines = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    for b in BOARD {
        let keys: Vec<String> = b.keys.iter().map(Key::label).collect();
        pending.push(keys.join(" "));
        if !b.help.is_empty() {
            lines.push((pending.join(", "), b.help));
            pending.clear();
        }
    }
    lines
}

/// What the marks on a card mean.
pub const LEGEND: &[(&str, &str)] = &[
    ("!! ↑ = ↓", "priority: critical, high, medium, low"),
    ("12p", "story points"),
    ("@name", "assignee (— nobody)"),
    ("✎ name", "just changed by someone else"),
    ("⛔", "blocked by a card that is not done"),
    ("⏱ 12m", "a timer running on the card (green: yours)"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode, modifiers: KeyModifiers) -> Option<Command> {
        command(&KeyEvent::new(code, modifiers))
    }

    #[test]
    fn letters_arrows_and_shifted_arrows() {
        assert_eq!(
            press(KeyCode::Char('h'), KeyModifiers::NONE),
            Some(Command::LanePrev)
        );
        assert_eq!(
            press(KeyCode::Char('H'), KeyModifiers::SHIFT),
            Some(Command::MoveCardPrev)
        );
        assert_eq!(
            press(KeyCode::Char('H'), KeyModifiers::NONE),
            Some(Command::MoveCardPrev)
        );
        assert_eq!(
            press(KeyCode::Left, KeyModifiers::SHIFT),
            Some(Command::MoveCardPrev)
        );
        assert_eq!(
            press(KeyCode::Left, KeyModifiers::NONE),
            Some(Command::LanePrev)
        );
        assert_eq!(
            press(KeyCode::End, KeyModifiers::NONE),
            Some(Command::LastCard)
        );
        assert_eq!(press(KeyCode::Char('x'), KeyModifiers::NONE), None);
        assert_eq!(
            press(KeyCode::Char('q'), KeyModifiers::CONTROL),
            None,
            "Ctrl is not part of any board key"
        );
    }

    #[test]
    fn every_command_has_a_key_and_the_help_lists_every_key() {
        let help = help_lines();
        let listed: String = help
            .iter()
            .map(|(k, _)| k.clone())
            .collect::<Vec<_>>()
            .join(" ");
        for b in BOARD {
            for k in b.keys {
                assert!(
                    listed.split([' ', ',']).any(|x| x == k.label()),
                    "{} is not in the help: {listed}",
                    k.label()
                );
            }
        }
        assert!(BOARD.last().is_some_and(|b| !b.help.is_empty()));
        assert!(help
            .iter()
            .any(|(k, h)| k == "g Home, G End" && h.contains("first")));
    }
}
