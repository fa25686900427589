//! Text helpers shared by the human reports (Markdown, HTML) and the CI outputs (`check`,
//! `diff`): endpoint labels, fix hints split into prose and code, statements clipped and put on
//! one line. Nothing here escapes: each format escapes what these return for its own syntax.

use std::borrow::Cow;

/// `METHOD route`, or the route alone for requests without an HTTP method (jobs, consumers).
pub fn endpoint_label(method: &str, route: &str) -> String {
    if method.is_empty() { route.to_string() } else { format!("{method} {route}") }
}

/// `METHOD route [service]`: an endpoint named unambiguously when several services share routes.
pub fn endpoint_with_service(service: &str, method: &str, route: &str) -> String {
    format!("{} [{service}]", endpoint_label(method, route))
}

/// One piece of a fix hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HintPart<'a> {
    /// Prose.
    Text(&'a str),
    /// Code the hint quoted in backticks (a table name, an ORM call).
    Code(&'a str),
}

/// A hint split on its backtick pairs. With an odd number of backticks the pairing is unknown,
/// so the whole hint is prose.
pub fn hint_parts(hint: &str) -> Vec<HintPart<'_>> {
    if hint.matches('`').count() % 2 == 1 {
        return vec![HintPart::Text(hint)];
    }
    hint.split('`')
        .enumerate()
        .filter(|(_, piece)| !piece.is_empty())
        .map(|(i, piece)| if i % 2 == 1 { HintPart::Code(piece) } else { HintPart::Text(piece) })
        .collect()
}

/// `text` on one line: every run of whitespace (newlines included) becomes one space.
pub fn one_line(text: &str) -> Cow<'_, str> {
    let clean = !text.contains(|c: char| c.is_whitespace() && c != ' ') && !text.contains("  ");
    if clean && text.trim() == text {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// `text` cut to at most `max_chars` characters, ending with `…` when cut.
pub fn clip(text: &str, max_chars: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max_chars) {
        None => Cow::Borrowed(text),
        Some(_) => {
            let keep = max_chars.saturating_sub(1);
            let end = text.char_indices().nth(keep).map_or(text.len(), |(at, _)| at);
            Cow::Owned(format!("{}…", &text[..end]))
        }
    }
}

/// Span text for one line: terminal escape sequences and control characters removed (so a report
/// printed to a terminal cannot drive it), whitespace collapsed.
pub fn clean_line(text: &str) -> String {
    one_line(&crate::tui::sanitize::sanitize(text)).into_owned()
}

/// Span text for a block (a statement, a plan): each line cleaned as by [`crate::tui::sanitize`],
/// line breaks kept (`\r\n` becomes `\n`), trailing spaces dropped.
pub fn clean_block(text: &str) -> String {
    text.split('\n')
        .map(|line| crate::tui::sanitize::sanitize(line.strip_suffix('\r').unwrap_or(line)).trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A millisecond figure for reports: `850µs`, `4.20ms`, `420ms`, `4.20s`, ...
pub fn ms(value: f64) -> String {
    crate::tui::format::duration_ms(value)
}

/// A per-request count from a summary: whole numbers without decimals, else one decimal.
pub fn amount(value: f64) -> String {
    crate::tui::format::amount(value)
}

/// `n` followed by `singular`, or by `plural` when `n` is not 1.
pub fn plural(n: usize, singular: &str, plural: &str) -> String {
    format!("{n} {}", if n == 1 { singular } else { plural })
}

/// A finding's kind, `category` or `category / rule`.
pub fn finding_kind(finding: &crate::snapshot::FindingSnapshot) -> String {
    if finding.rule.is_empty() { finding.category.clone() } else { format!("{} / {}", finding.category, finding.rule) }
}

/// What a finding costs, in words: `120ms in total, about 40ms in each of 3 requests` (figures
/// only, so every format can use it as is).
pub fn finding_cost(finding: &crate::snapshot::FindingSnapshot) -> String {
    let mut text = format!("{} in total", ms(finding.cost_ms_total));
    if finding.requests_affected > 0 {
        text.push_str(&format!(
            ", about {} in each of {}",
            ms(finding.cost_ms_per_request),
            plural(finding.requests_affected as usize, "request", "requests")
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn labels_name_method_route_and_service() {
        assert_eq!(endpoint_label("GET", "/books"), "GET /books");
        assert_eq!(endpoint_label("", "process_payment"), "process_payment");
        assert_eq!(endpoint_with_service("shop", "GET", "/books"), "GET /books [shop]");
    }

    #[test]
    fn hints_split_into_prose_and_code() {
        assert_eq!(
            hint_parts("`author` is queried per row: use `select_related()`."),
            [
                HintPart::Code("author"),
                HintPart::Text(" is queried per row: use "),
                HintPart::Code("select_related()"),
                HintPart::Text(".")
            ]
        );
        assert_eq!(hint_parts("odd ` backtick"), [HintPart::Text("odd ` backtick")]);
        assert_eq!(hint_parts("plain"), [HintPart::Text("plain")]);
    }

    #[rstest]
    #[case::short("SELECT 1", 10, "SELECT 1")]
    #[case::exact("abcde", 5, "abcde")]
    #[case::cut("abcdef", 5, "abcd…")]
    #[case::multibyte("ééééé", 3, "éé…")]
    fn clip_cuts_at_characters(#[case] text: &str, #[case] max: usize, #[case] expected: &str) {
        assert_eq!(clip(text, max), expected);
    }

    #[test]
    fn cleaning_removes_escape_sequences_and_keeps_block_lines() {
        assert_eq!(clean_line("GET /a\u{1b}[2J\n/b"), "GET /a /b");
        assert_eq!(clean_block("SELECT *\r\nFROM t\u{1b}]0;title\u{7}\nWHERE x"), "SELECT *\nFROM t\nWHERE x");
    }

    #[test]
    fn one_line_collapses_whitespace() {
        assert_eq!(one_line("SELECT *\n  FROM t\tWHERE x"), "SELECT * FROM t WHERE x");
        assert!(matches!(one_line("already fine"), Cow::Borrowed(_)));
    }
}
