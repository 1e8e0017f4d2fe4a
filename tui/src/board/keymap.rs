//! The board's keys: one table says which keys run which command and what the command does.
//! The board dispatches through it and the help screen and the palette are generated from it,
//! so the help can never list a key the board does not have (or miss one it has). The user's
//! config file may give any command other keys ([`Keymap::with_remaps`]).
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
    PickType,
    Points,
    Priority,
    Undo,
    Redo,
    ToggleView,
    TreeView,
    Palette,
    Activity,
    /// The conflict inbox: offline edits the server refused.
    Inbox,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    bind(&[ch('T')], Command::PickType, "type: epic, story or task"),
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
    bind(
        &[ch('I')],
        Command::Inbox,
        "inbox: offline edits that met a conflict",
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

/// The keys in use: the defaults ([`BOARD`]), with the commands the user remapped.
#[derive(Debug, Clone, PartialEq)]
pub struct Keymap {
    bindings: Vec<(Vec<Key>, Command, &'static str)>,
}

impl Default for Keymap {
    fn default() -> Self {
        Keymap {
            bindings: BOARD
                .iter()
                .map(|b| (b.keys.to_vec(), b.command, b.help))
                .collect(),
        }
    }
}

impl Keymap {
    /// The defaults with each named command's keys replaced: `("undo", ["u", "ctrl-z"])`.
    /// An unknown command or key, or a key left on two commands, is an error that says which.
    pub fn with_remaps(remaps: &[(String, Vec<String>)]) -> Result<Keymap, String> {
        let mut map = Keymap::default();
        for (name, specs) in remaps {
            let Some(slot) = map.bindings.iter_mut().find(|b| command_name(b.1) == *name) else {
                let known: Vec<String> = BOARD.iter().map(|b| command_name(b.command)).collect();
                return Err(format!(
                    "unknown command \"{name}\" (commands: {})",
                    known.join(", ")
                ));
            };
            if specs.is_empty() {
                return Err(format!("\"{name}\" needs at least one key"));
            }
            slot.0 = specs
                .iter()
                .map(|k| parse_key(k))
                .collect::<Result<_, _>>()?;
        }
        for (i, (keys, command, _)) in map.bindings.iter().enumerate() {
            for k in keys {
                if let Some((_, other, _)) = map.bindings[i + 1..].iter().find(|b| b.0.contains(k))
                {
                    return Err(format!(
                        "the key {} is bound to both {} and {}",
                        k.label(),
                        command_name(*command),
                        command_name(*other)
                    ));
                }
            }
        }
        Ok(map)
    }

    /// The command a key runs on the board, if any.
    pub fn command(&self, event: &KeyEvent) -> Option<Command> {
        self.bindings
            .iter()
            .find(|b| b.0.iter().any(|k| k.matches(event)))
            .map(|b| b.1)
    }

    /// The help's key lines: bindings with an empty help text are listed with the next one, so
    /// `← h, → l` shares the line "select lane".
    pub fn help_lines(&self) -> Vec<(String, &'static str)> {
        let mut lines = Vec::new();
        let mut pending: Vec<String> = Vec::new();
        for (keys, _, help) in &self.bindings {
            let keys: Vec<String> = keys.iter().map(Key::label).collect();
            pending.push(keys.join(" "));
            if !help.is_empty() {
                lines.push((pending.join(", "), *help));
                pending.clear();
            }
        }
        lines
    }

    /// Every command with help text, its keys as the help spells them.
    pub fn described(&self) -> impl Iterator<Item = (Command, String, &'static str)> + '_ {
        self.bindings
            .iter()
            .filter(|b| !b.2.is_empty())
            .map(|(keys, command, help)| {
                let keys: Vec<String> = keys.iter().map(Key::label).collect();
                (*command, keys.join(" "), *help)
            })
    }
}

/// A command's name in the config file: `Undo` → `undo`, `MoveCardPrev` → `move_card_prev`.
pub fn command_name(command: Command) -> String {
    let mut name = String::new();
    for (i, c) in format!("{command:?}").chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_lowercase());
    }
    name
}

/// A key as the config file writes it: `u`, `G`, `?`, `ctrl-z`, `left`, `shift-left`, `enter`,
/// `esc`, `home`, `end`, `pgup`, `pgdn`, `up`, `down`, `right`.
pub fn parse_key(spec: &str) -> Result<Key, String> {
    let named = |name: &str| match name {
        "left" => Some(KeyCode::Left),
        "right" => Some(KeyCode::Right),
        "up" => Some(KeyCode::Up),
        "down" => Some(KeyCode::Down),
        "home" => Some(KeyCode::Home),
        "end" => Some(KeyCode::End),
        "pgup" | "pageup" => Some(KeyCode::PageUp),
        "pgdn" | "pagedown" => Some(KeyCode::PageDown),
        "enter" => Some(KeyCode::Enter),
        "esc" | "escape" => Some(KeyCode::Esc),
        _ => None,
    };
    let mut chars = spec.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if !c.is_control() && c != ' ' => return Ok(ch(c)),
        _ => {}
    }
    let lower = spec.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("ctrl-") {
        let mut chars = rest.chars();
        if let (Some(c), None) = (chars.next(), chars.next()) {
            if c.is_ascii_alphanumeric() && c != 'c' {
                return Ok(ctrl(c));
            }
        }
    }
    if let Some(code) = lower.strip_prefix("shift-").and_then(named) {
        if matches!(
            code,
            KeyCode::Left | KeyCode::Right | KeyCode::Up | KeyCode::Down
        ) {
            return Ok(shifted(code));
        }
    }
    named(&lower).map(key).ok_or_else(|| {
        format!(
            "unknown key \"{spec}\" (a character, ctrl-<letter> but ctrl-c, left, right, up, \
             down, shift-<arrow>, home, end, pgup, pgdn, enter, esc)"
        )
    })
}

/// What the marks on a card mean.
pub const LEGEND: &[(&str, &str)] = &[
    ("!! ↑ = ↓", "priority: critical, high, medium, low"),
    ("12p", "story points"),
    ("@name", "assignee (— nobody)"),
    ("✎ name", "just changed by someone else"),
    ("⛔", "blocked by a card that is not done"),
    ("⏱ 12m", "a timer running on the card (green: yours)"),
    ("⇡ pending", "your change, made offline, not sent yet"),
    ("⚠ inbox", "your offline change met a conflict: I"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode, modifiers: KeyModifiers) -> Option<Command> {
        Keymap::default().command(&KeyEvent::new(code, modifiers))
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
        let help = Keymap::default().help_lines();
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

    #[test]
    fn remaps_replace_a_commands_keys_and_refuse_clashes() {
        let remaps = |pairs: &[(&str, &[&str])]| -> Vec<(String, Vec<String>)> {
            pairs
                .iter()
                .map(|(n, ks)| (n.to_string(), ks.iter().map(|k| k.to_string()).collect()))
                .collect()
        };
        let map = Keymap::with_remaps(&remaps(&[("undo", &["ctrl-z", "U"]), ("quit", &["x"])]))
            .expect("remapped");
        let run = |code, modifiers| map.command(&KeyEvent::new(code, modifiers));
        assert_eq!(
            run(KeyCode::Char('z'), KeyModifiers::CONTROL),
            Some(Command::Undo)
        );
        assert_eq!(
            run(KeyCode::Char('U'), KeyModifiers::SHIFT),
            Some(Command::Undo)
        );
        assert_eq!(
            run(KeyCode::Char('u'), KeyModifiers::NONE),
            None,
            "replaced"
        );
        assert_eq!(
            run(KeyCode::Char('x'), KeyModifiers::NONE),
            Some(Command::Quit)
        );
        assert_eq!(run(KeyCode::Char('q'), KeyModifiers::NONE), None);
        assert!(map.help_lines().iter().any(|(k, _)| k.contains("Ctrl-Z U")));
        for (bad, says) in [
            (remaps(&[("undo", &["p"])]), "bound to both"),
            (remaps(&[("fly", &["f"])]), "unknown command \"fly\""),
            (remaps(&[("undo", &["ctrl-c"])]), "unknown key"),
            (remaps(&[("undo", &["meta-x"])]), "unknown key"),
            (remaps(&[("undo", &[])]), "at least one key"),
        ] {
            let err = Keymap::with_remaps(&bad).expect_err("refused");
            assert!(err.contains(says), "{err}");
        }
        assert_eq!(command_name(Command::MoveCardPrev), "move_card_prev");
        assert_eq!(parse_key("shift-left"), Ok(shifted(KeyCode::Left)));
        assert_eq!(parse_key("PgDn"), Ok(key(KeyCode::PageDown)));
    }
}
