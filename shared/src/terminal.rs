//! Text from the server, made safe to print on a terminal. A title, name, comment or error
//! message is data that anyone with write access chose; written to a terminal as it is, an ESC
//! starts an escape sequence (colours, cursor moves, window titles, OSC 52 clipboard writes), NUL
//! and the other controls upset the display, and bidi overrides (U+202E…) make text read
//! differently from what it is. Every place the `pm` binary shows server text to a person — the
//! CLI's table output and error lines, the board's cells — goes through [`sanitize_for_terminal`].
//! JSON output is left exact: serde escapes the controls, and the bidi marks there are data.
use std::borrow::Cow;

/// What a dangerous character is shown as: visible, one column wide.
pub const PLACEHOLDER: char = '\u{FFFD}';

/// True for the characters a terminal must not receive from data: every C0 control (tab and
/// newline included: a caller that wants lines splits them first), DEL, every C1 control, the
/// bidi embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069), the directional marks
/// (U+200E, U+200F, U+061C) and the line and paragraph separators (U+2028, U+2029).
pub fn is_unsafe_for_terminal(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1F}'
        | '\u{7F}'..='\u{9F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2066}'..='\u{2069}'
        | '\u{200E}' | '\u{200F}' | '\u{061C}'
        | '\u{2028}' | '\u{2029}')
}

/// `text` with every character [`is_unsafe_for_terminal`] replaced by [`PLACEHOLDER`] (one
/// character for one, so character counts and alignment stay as they were). Borrows when there is
/// nothing to replace.
pub fn sanitize_for_terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe_for_terminal) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| {
                if is_unsafe_for_terminal(c) {
                    PLACEHOLDER
                } else {
                    c
                }
            })
            .collect(),
    )
}

/// Like [`sanitize_for_terminal`] for text of several lines: the line breaks (`\n`, `\r\n`) stay,
/// everything else unsafe is replaced.
pub fn sanitize_lines_for_terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c != '\n' && is_unsafe_for_terminal(c)) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.split('\n')
            .map(|line| {
                let line = line.strip_suffix('\r').unwrap_or(line);
                sanitize_for_terminal(line).into_owned()
            })
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_untouched() {
        for s in ["", "Checkout", "Ünïcödé 🚀 漢字 עברית", "a → b · c…"] {
            assert!(matches!(sanitize_for_terminal(s), Cow::Borrowed(t) if t == s));
        }
    }

    #[test]
    fn controls_and_bidi_marks_become_a_visible_placeholder() {
        assert_eq!(sanitize_for_terminal("\x1b[31mred\x1b[0m"), "�[31mred�[0m");
        assert_eq!(sanitize_for_terminal("a\0b\x07c\x7fd\u{9b}e"), "a�b�c�d�e");
        assert_eq!(sanitize_for_terminal("tab\there\r\nx"), "tab�here��x");
        assert_eq!(sanitize_for_terminal("\u{202E}gnp.exe"), "�gnp.exe");
        for c in [
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}',
            '\u{2068}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}', '\u{2028}', '\u{2029}',
            '\u{85}',
        ] {
            let s = format!("x{c}y");
            assert_eq!(sanitize_for_terminal(&s), "x�y", "{:?}", c);
        }
        // One character for one: widths computed before still hold.
        let s = "\x1b]52;c;aGk=\x07 title \u{202E}";
        assert_eq!(sanitize_for_terminal(s).chars().count(), s.chars().count());
        // Joiners and combining marks are text, not controls.
        assert_eq!(
            sanitize_for_terminal("e\u{301} 👩\u{200D}💻"),
            "e\u{301} 👩\u{200D}💻"
        );
    }

    #[test]
    fn several_lines_keep_their_breaks() {
        assert_eq!(sanitize_lines_for_terminal("a\nb"), "a\nb");
        assert_eq!(
            sanitize_lines_for_terminal("one\x1b[2J\r\ntwo\u{202E}\n\tthree"),
            "one�[2J\ntwo�\n�three"
        );
    }
}
