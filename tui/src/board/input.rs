//! The one single-line text field of the board (new card, edit title, filter, comment): a
//! cursor that moves (←/→, Home/End, Ctrl-A/Ctrl-E), deletes at the cursor (Backspace, Delete,
//! Ctrl-W a word back, Ctrl-U to the start), pastes as one edit, and a view that scrolls
//! horizontally so the cursor stays visible however long the text is.
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::width::char_width as width;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextInput {
    text: String,
    /// Byte offset of the cursor, always on a char boundary.
    cursor: usize,
    /// The longest text (in characters, after trimming) that may be submitted. Longer text is
    /// kept (and flagged) rather than cut, so nothing typed or pasted is lost.
    max: Option<usize>,
}

/// What of a field fits in its box: the text before the cursor, the character under the cursor
/// (None at the end) and the text after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub before: String,
    pub at: Option<char>,
    pub after: String,
}

impl TextInput {
    /// A field holding `text`, the cursor at its end.
    pub fn new(text: &str) -> Self {
        let mut input = TextInput::default();
        input.insert(text);
        input
    }

    /// The same, flagging text longer than `max` characters.
    pub fn with_max(text: &str, max: usize) -> Self {
        TextInput {
            max: Some(max),
            ..TextInput::new(text)
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The cursor as a character index.
    #[cfg(test)]
    pub fn cursor(&self) -> usize {
        self.text[..self.cursor].chars().count()
    }

    pub fn max(&self) -> Option<usize> {
        self.max
    }

    /// Characters that count against the limit (the text is trimmed when submitted).
    pub fn count(&self) -> usize {
        self.text.trim().chars().count()
    }

    /// True when the text is longer than the field allows.
    pub fn too_long(&self) -> bool {
        self.max.is_some_and(|m| self.count() > m)
    }

    /// Inserts text at the cursor as one edit: line breaks and tabs become spaces (the field is
    /// one line), other control characters are dropped.
    pub fn insert(&mut self, s: &str) {
        let clean: String = s
            .replace("\r\n", " ")
            .chars()
            .filter_map(|c| match c {
                '\n' | '\r' | '\t' => Some(' '),
                c if c.is_control() => None,
                c => Some(c),
            })
            .collect();
        self.text.insert_str(self.cursor, &clean);
        self.cursor += clean.len();
    }

    fn prev_boundary(&self, at: usize) -> usize {
        self.text[..at]
            .char_indices()
            .next_back()
            .map_or(0, |(i, _)| i)
    }

    fn next_boundary(&self, at: usize) -> usize {
        self.text[at..]
            .chars()
            .next()
            .map_or(at, |c| at + c.len_utf8())
    }

    /// Handles an editing key; false when the key is not one (the caller may use it).
    pub fn on_key(&mut self, key: KeyEvent) -> bool {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Left => self.cursor = self.prev_boundary(self.cursor),
            KeyCode::Right => self.cursor = self.next_boundary(self.cursor),
            KeyCode::Home => self.cursor = 0,
            KeyCode::End => self.cursor = self.text.len(),
            KeyCode::Char('a') if ctrl => self.cursor = 0,
            KeyCode::Char('e') if ctrl => self.cursor = self.text.len(),
            KeyCode::Backspace => {
                let start = self.prev_boundary(self.cursor);
                self.text.replace_range(start..self.cursor, "");
                self.cursor = start;
            }
            KeyCode::Delete => {
                let end = self.next_boundary(self.cursor);
                self.text.replace_range(self.cursor..end, "");
            }
            KeyCode::Char('w') if ctrl => {
                // Back over spaces, then over the word before them.
                let before = &self.text[..self.cursor];
                let trimmed = before.trim_end_matches(' ');
                let start = trimmed.rfind(' ').map_or(0, |i| i + 1);
                self.text.replace_range(start..self.cursor, "");
                self.cursor = start;
            }
            KeyCode::Char('u') if ctrl => {
                self.text.replace_range(..self.cursor, "");
                self.cursor = 0;
            }
            KeyCode::Char(c)
                if !ctrl && !key.modifiers.contains(KeyModifiers::ALT) && !c.is_control() =>
            {
                self.text.insert(self.cursor, c);
                self.cursor += c.len_utf8();
            }
            _ => return false,
        }
        true
    }

    /// The part of the text shown in a box `cols` columns wide: the cursor always inside it
    /// (one column is kept for the cursor at the end), the start scrolled off when needed.
    pub fn view(&self, cols: usize) -> View {
        let cols = cols.max(1);
        let before: Vec<char> = self.text[..self.cursor].chars().collect();
        let mut rest = self.text[self.cursor..].chars();
        let at = rest.next();
        let cursor_cols = at.map_or(1, width);
        // Drop characters from the start until what is before the cursor, and the cursor, fit.
        let mut used: usize = before.iter().copied().map(width).sum::<usize>() + cursor_cols;
        let mut start = 0;
        while used > cols && start < before.len() {
            used -= width(before[start]);
            start += 1;
        }
        let mut after = String::new();
        for c in rest {
            if used + width(c) > cols {
                break;
            }
            used += width(c);
            after.push(c);
        }
        View {
            before: before[start..].iter().collect(),
            at,
            after,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(input: &mut TextInput, code: KeyCode) {
        input.on_key(KeyEvent::new(code, KeyModifiers::NONE));
    }

    fn ctrl(input: &mut TextInput, c: char) {
        input.on_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL));
    }

    fn typed(s: &str) -> TextInput {
        let mut input = TextInput::default();
        for c in s.chars() {
            press(&mut input, KeyCode::Char(c));
        }
        input
    }

    #[test]
    fn typing_and_moving_the_cursor() {
        let mut input = typed("helo");
        press(&mut input, KeyCode::Left);
        press(&mut input, KeyCode::Char('l'));
        assert_eq!(input.text(), "hello");
        assert_eq!(input.cursor(), 4);
        press(&mut input, KeyCode::Home);
        press(&mut input, KeyCode::Char('>'));
        assert_eq!(input.text(), ">hello");
        press(&mut input, KeyCode::End);
        press(&mut input, KeyCode::Char('!'));
        assert_eq!(input.text(), ">hello!");
        ctrl(&mut input, 'a');
        assert_eq!(input.cursor(), 0);
        press(&mut input, KeyCode::Left);
        assert_eq!(input.cursor(), 0, "stays at the start");
        ctrl(&mut input, 'e');
        press(&mut input, KeyCode::Right);
        assert_eq!(input.cursor(), 7, "stays at the end");
    }

    #[test]
    fn backspace_and_delete_at_the_cursor() {
        let mut input = typed("abcd");
        press(&mut input, KeyCode::Left);
        press(&mut input, KeyCode::Left);
        press(&mut input, KeyCode::Backspace);
        assert_eq!((input.text(), input.cursor()), ("acd", 1));
        press(&mut input, KeyCode::Delete);
        assert_eq!((input.text(), input.cursor()), ("ad", 1));
        press(&mut input, KeyCode::Home);
        press(&mut input, KeyCode::Backspace);
        assert_eq!(input.text(), "ad", "nothing before the start");
        press(&mut input, KeyCode::End);
        press(&mut input, KeyCode::Delete);
        assert_eq!(input.text(), "ad", "nothing after the end");
    }

    #[test]
    fn ctrl_w_deletes_the_word_before_the_cursor_and_ctrl_u_to_the_start() {
        let mut input = typed("fix the  login test");
        ctrl(&mut input, 'w');
        assert_eq!(input.text(), "fix the  login ");
        ctrl(&mut input, 'w');
        assert_eq!(input.text(), "fix the  ");
        ctrl(&mut input, 'w');
        assert_eq!(input.text(), "fix ");
        press(&mut input, KeyCode::Char('a'));
        press(&mut input, KeyCode::Left);
        ctrl(&mut input, 'u');
        assert_eq!((input.text(), input.cursor()), ("a", 0));
        let mut input = typed("one");
        ctrl(&mut input, 'w');
        assert_eq!(input.text(), "");
    }

    #[test]
    fn multibyte_and_wide_characters() {
        let mut input = typed("héllo 日本");
        press(&mut input, KeyCode::Left);
        press(&mut input, KeyCode::Backspace);
        assert_eq!(input.text(), "héllo 本");
        press(&mut input, KeyCode::Home);
        press(&mut input, KeyCode::Right);
        press(&mut input, KeyCode::Delete);
        assert_eq!(input.text(), "hllo 本");
        // 本 takes two columns: in 4 columns with the cursor at the end, "o 本" does not fit.
        press(&mut input, KeyCode::End);
        let v = input.view(4);
        assert_eq!((v.before.as_str(), v.at), (" 本", None));
    }

    #[test]
    fn a_paste_is_one_line_and_goes_in_at_the_cursor() {
        let mut input = typed("ab");
        press(&mut input, KeyCode::Left);
        input.insert("1\r\n2\n3\t4\x1b5");
        assert_eq!(input.text(), "a1 2 3 45b");
        assert_eq!(input.cursor(), 9);
    }

    #[test]
    fn the_view_scrolls_so_the_cursor_stays_visible() {
        let text: String = ('a'..='z').cycle().take(100).collect();
        let mut input = TextInput::new(&text);
        // At the end: the last 9 characters and the cursor in 10 columns.
        let v = input.view(10);
        assert_eq!(v.before, text[91..]);
        assert_eq!(v.at, None);
        // At the start: the first 10 characters, the cursor on the first.
        press(&mut input, KeyCode::Home);
        let v = input.view(10);
        assert_eq!((v.before.as_str(), v.at), ("", Some('a')));
        assert_eq!(v.after, text[1..10]);
        // In the middle: the cursor is at the right edge.
        for _ in 0..50 {
            press(&mut input, KeyCode::Right);
        }
        let v = input.view(10);
        assert_eq!(v.before, text[41..50]);
        assert_eq!(v.at, text[50..].chars().next());
        assert_eq!(v.after, "");
    }

    #[test]
    fn the_limit_counts_trimmed_characters_and_keeps_the_excess() {
        let mut input = TextInput::with_max("", 5);
        input.insert("  abcde  ");
        assert_eq!(input.count(), 5);
        assert!(!input.too_long());
        input.insert("é");
        assert!(input.too_long());
        assert_eq!(input.text(), "  abcde  é", "nothing is cut");
        assert_eq!(input.max(), Some(5));
    }
}
