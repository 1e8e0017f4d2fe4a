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
    fn padding_counts_columns() {
        assert_eq!(pad("日本", 6), "日本  ");
        assert_eq!(pad("abc", 2), "abc");
    }
}
