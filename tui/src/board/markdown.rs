//! The little markdown a description uses, drawn for a terminal: `#` headings bold, `-`/`*`/`+`
//! list items as `•`, `>` quotes dim, fenced code blocks and `` `code` `` in their own colour,
//! `**strong**` bold, `_em_`/`*em*` italic. Anything else is shown as written. The text is made
//! safe for the terminal first (see `ui::safe`).
use ratatui::style::{Color, Stylize};
use ratatui::text::{Line, Span};

/// The lines of `text`, each through `safe` (which keeps its length in characters).
pub fn lines(text: &str, safe: impl Fn(&str) -> String) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    let mut fenced = false;
    for raw in text.lines() {
        let line = safe(raw);
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            out.push(Line::from(Span::from(format!("  {line}")).fg(Color::Green)));
            continue;
        }
        if let Some(heading) = heading(trimmed) {
            out.push(Line::from(
                Span::from(heading.to_string()).bold().underlined(),
            ));
        } else if let Some(item) = ["- ", "* ", "+ "]
            .iter()
            .find_map(|m| trimmed.strip_prefix(m))
        {
            let indent = &line[..line.len() - trimmed.len()];
            let mut spans = vec![Span::raw(format!("{indent}• "))];
            spans.extend(inline(item));
            out.push(Line::from(spans));
        } else if let Some(quote) = trimmed.strip_prefix('>') {
            out.push(Line::from(
                Span::from(format!("│ {}", quote.trim_start())).dim(),
            ));
        } else {
            out.push(Line::from(inline(&line)));
        }
    }
    out
}

/// `# Title` → `Title` (one to six `#` and a space).
fn heading(line: &str) -> Option<&str> {
    let hashes = line.chars().take_while(|c| *c == '#').count();
    (1..=6)
        .contains(&hashes)
        .then(|| line[hashes..].strip_prefix(' '))
        .flatten()
}

/// Inline marks: `code`, **strong**, _em_ / *em*; an unclosed mark is text.
fn inline(text: &str) -> Vec<Span<'static>> {
    let mut spans = Vec::new();
    let mut plain = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        let marked = ["`", "**", "_", "*"].iter().find_map(|mark| {
            let body = rest.strip_prefix(mark)?;
            let end = body.find(mark).filter(|e| *e > 0)?;
            Some((*mark, &body[..end], &body[end + mark.len()..]))
        });
        match marked {
            Some((mark, inner, after)) => {
                if !plain.is_empty() {
                    spans.push(Span::raw(std::mem::take(&mut plain)));
                }
                spans.push(match mark {
                    "`" => Span::from(inner.to_string()).fg(Color::Green),
                    "**" => Span::from(inner.to_string()).bold(),
                    _ => Span::from(inner.to_string()).italic(),
                });
                rest = after;
            }
            None => {
                let mut chars = rest.chars();
                if let Some(c) = chars.next() {
                    plain.push(c);
                }
                rest = chars.as_str();
            }
        }
    }
    if !plain.is_empty() {
        spans.push(Span::raw(plain));
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::style::Modifier;

    fn text(line: &Line<'_>) -> String {
        line.spans.iter().map(|s| s.content.as_ref()).collect()
    }

    #[test]
    fn headings_lists_quotes_and_code_blocks() {
        let md = "# Plan\nSome **bold** and `code` and _em_.\n- one\n  * two\n> said\n```\nlet x = 1;\n```\n#nothing";
        let lines = lines(md, |s| s.to_string());
        let shown: Vec<String> = lines.iter().map(text).collect();
        assert_eq!(
            shown,
            [
                "Plan",
                "Some bold and code and em.",
                "• one",
                "  • two",
                "│ said",
                "  let x = 1;",
                "#nothing",
            ]
        );
        assert!(lines[0].spans[0]
            .style
            .add_modifier
            .contains(Modifier::BOLD));
        let bold = &lines[1].spans[1];
        assert_eq!(
            (
                bold.content.as_ref(),
                bold.style.add_modifier.contains(Modifier::BOLD)
            ),
            ("bold", true)
        );
        assert_eq!(lines[1].spans[3].style.fg, Some(Color::Green));
        assert!(lines[1].spans[5]
            .style
            .add_modifier
            .contains(Modifier::ITALIC));
    }

    #[test]
    fn unclosed_marks_and_wide_text_stay_as_written() {
        let lines = lines("2 * 3 = 6, a_b and `open 日本", |s| s.to_string());
        assert_eq!(text(&lines[0]), "2 * 3 = 6, a_b and `open 日本");
    }
}
