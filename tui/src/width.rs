//! Display width: how many terminal columns text takes. A CJK character or an emoji takes two,
//! a combining mark none; counting characters instead misaligns tables and lets a cut title
//! overflow its box (which then loses its `…`). Every width `pm` computes (the board's cards,
//! fields and popups, `--format table`) comes from here.
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Columns of one character; a control character counts as one (it is drawn as `�`).
pub fn char_width(c: char) -> usize {
    c.width().unwrap_or(1)
}

/// Columns of a string.
pub fn width(s: &str) -> usize {
    if s.chars().any(char::is_control) {
        s.chars().map(char_width).sum()
    } else {
        s.width()
    }
}

/// `s` cut to at most `cols` columns, ending in `…` when anything was cut.
pub fn truncate(s: &str, cols: usize) -> String {
    if width(s) <= cols {
        return s.to_string();
    }
    if cols == 0 {
        return String::new();
    }
    let room = cols - 1; // for the `…`
    let mut used = 0;
    let mut out = String::new();
    for c in s.chars() {
        let w = char_width(c);
        if used + w > room {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// `s` on at most two lines of `cols` columns: the first broken after the last word that fits
/// (inside a word only when one word is wider than a line), the second cut with `…` when
/// anything is left over. A text that fits is one line.
pub fn wrap_two(s: &str, cols: usize) -> (String, Option<String>) {
    if width(s) <= cols || cols == 0 {
        return (truncate(s, cols), None);
    }
    // The end of the longest prefix that fits.
    let mut used = 0;
    let mut fits = 0;
    for (at, c) in s.char_indices() {
        let w = char_width(c);
        if used + w > cols {
            break;
        }
        used += w;
        fits = at + c.len_utf8();
    }
    let cut = if s[fits..].starts_with(' ') {
        fits
    } else {
        match s[..fits].rfind(' ') {
            Some(space) if !s[..space].trim_end().is_empty() => space,
            _ => fits,
        }
    };
    let first = s[..cut].trim_end().to_string();
    let rest = s[cut..].trim_start();
    if rest.is_empty() {
        return (first, None);
    }
    (first, Some(truncate(rest, cols)))
}

/// `s` followed by spaces up to `cols` columns (nothing added when it is already that wide).
pub fn pad(s: &str, cols: usize) -> String {
    let mut out = s.to_string();
    out.push_str(&" ".repeat(cols.saturating_sub(width(s))));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_characters_take_two_columns() {
        assert_eq!(width("abc"), 3);
        assert_eq!(width("日本語"), 6);
        assert_eq!(width("ok 🚀"), 5);
        assert_eq!(width("e\u{301}"), 1, "a combining accent takes none");
    }

    #[test]
    fn truncation_keeps_its_ellipsis_with_wide_characters() {
        assert_eq!(truncate("日本語のタイトル", 7), "日本語…");
        assert_eq!(width(&truncate("日本語のタイトル", 7)), 7);
        // An odd column left over stays empty rather than splitting a wide character.
        assert_eq!(truncate("日本語のタイトル", 6), "日本…");
        assert_eq!(truncate("🚀🚀🚀", 4), "🚀…");
        assert_eq!(truncate("short", 5), "short");
        assert_eq!(truncate("longer", 5), "long…");
        assert_eq!(truncate("x", 0), "");
    }

    #[test]
    fn a_long_text_wraps_at_a_word_onto_a_second_line() {
        let two = |a: &str, b: &str| (a.to_string(), Some(b.to_string()));
        assert_eq!(wrap_two("short", 10), ("short".to_string(), None));
        assert_eq!(
            wrap_two("Fix the login page", 10),
            two("Fix the", "login page")
        );
        // The break falls exactly on a space.
        assert_eq!(wrap_two("abcde fghij", 5), two("abcde", "fghij"));
        // Too much for two lines: the second ends in `…`.
        assert_eq!(
            wrap_two("one two three four", 8),
            two("one two", "three f…")
        );
        // A word wider than a line is cut inside.
        assert_eq!(
            wrap_two("Supercalifragilistic", 8),
            two("Supercal", "ifragil…")
        );
        // Wide characters count two columns and are never split.
        assert_eq!(wrap_two("日本語のタイトル", 7), two("日本語", "のタイ…"));
        assert_eq!(
            wrap_two("only spaces after   ", 17),
            ("only spaces after".to_string(), None)
        );
        assert_eq!(wrap_two("x", 0), (String::new(), None));
    }

    #[test]
    fn padding_counts_columns() {
        assert_eq!(pad("日本", 6), "日本  ");
        assert_eq!(pad("abc", 2), "abc");
    }
}
