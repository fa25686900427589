//! Makes untrusted text (span names, routes, SQL, service names, paths) inert before it reaches
//! the terminal.
//!
//! An instrumented app controls every string in a span. Written raw, an escape sequence could move
//! the cursor, change colours, set the window title or worse. [`sanitize`] removes whole escape
//! sequences (CSI, OSC, DCS, SOS, PM, APC, and two-byte `ESC x`), their 8-bit C1 forms, every
//! other C0/C1 control and the bidirectional overrides that can reorder what is displayed. Tab,
//! newline and carriage return become a space, since every place we draw is a single line.

use std::borrow::Cow;

const ESC: char = '\u{1b}';
const BEL: char = '\u{07}';
/// 8-bit String Terminator.
const ST: char = '\u{9c}';

/// How a string-type sequence (OSC, DCS, ...) in progress ends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Text,
    /// After a lone ESC.
    Escape,
    /// Inside a control sequence: parameters and intermediates until a final byte.
    Csi,
    /// Inside a string sequence: until ST (ESC \ or 0x9C), or BEL for OSC.
    Str,
    /// Inside a string sequence, just after an ESC (which may start `ESC \`).
    StrEscape,
}

/// `text` with control characters and escape sequences removed; borrowed when already clean.
pub fn sanitize(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_work) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut state = State::Text;
    for c in text.chars() {
        state = match state {
            State::Text => match c {
                ESC => State::Escape,
                '\u{9b}' => State::Csi,
                '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => State::Str,
                '\t' | '\n' | '\r' => {
                    out.push(' ');
                    State::Text
                }
                c if is_dropped(c) => State::Text,
                c => {
                    out.push(c);
                    State::Text
                }
            },
            State::Escape => match c {
                '[' => State::Csi,
                ']' | 'P' | 'X' | '^' | '_' => State::Str,
                // Intermediate bytes (e.g. `ESC ( B`): the sequence goes on.
                '\u{20}'..='\u{2f}' => State::Escape,
                _ => State::Text,
            },
            State::Csi => match c {
                // Final byte ends it; parameters and intermediates continue; anything else
                // (a malformed sequence) ends it too, dropping that character.
                '\u{40}'..='\u{7e}' => State::Text,
                '\u{20}'..='\u{3f}' => State::Csi,
                _ => State::Text,
            },
            State::Str => match c {
                BEL | ST => State::Text,
                ESC => State::StrEscape,
                _ => State::Str,
            },
            State::StrEscape => match c {
                '\\' => State::Text,
                ESC => State::StrEscape,
                _ => State::Str,
            },
        };
    }
    Cow::Owned(out)
}

fn needs_work(c: char) -> bool {
    c == ESC || c.is_control() || is_bidi_control(c)
}

/// Characters removed outright when met as text.
fn is_dropped(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

/// Bidirectional embedding, override and isolate controls.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::plain("GET /api/books", "GET /api/books")]
    #[case::unicode("SELECT 'café', '日本'", "SELECT 'café', '日本'")]
    #[case::csi_colour("\u{1b}[31mred\u{1b}[0m text", "red text")]
    #[case::csi_cursor_move("a\u{1b}[2J\u{1b}[10;20Hb", "ab")]
    #[case::csi_private("x\u{1b}[?1049hy", "xy")]
    #[case::osc_title_bel("\u{1b}]0;pwned\u{07}GET /", "GET /")]
    #[case::osc_title_st("\u{1b}]2;pwned\u{1b}\\GET /", "GET /")]
    #[case::osc_hyperlink("\u{1b}]8;;http://evil\u{1b}\\link\u{1b}]8;;\u{1b}\\", "link")]
    #[case::dcs("a\u{1b}Pq#0;2;0;0;0\u{1b}\\b", "ab")]
    #[case::two_byte("a\u{1b}cb\u{1b}7c", "abc")]
    #[case::charset("a\u{1b}(Bb", "ab")]
    #[case::carriage_return("visible\roverwritten", "visible overwritten")]
    #[case::newline_and_tab("a\nb\tc", "a b c")]
    #[case::bell("ding\u{07}dong", "dingdong")]
    #[case::backspace("abc\u{08}\u{08}xy", "abcxy")]
    #[case::delete("a\u{7f}b", "ab")]
    #[case::c1_csi("a\u{9b}31mb", "ab")]
    #[case::c1_osc("a\u{9d}0;title\u{9c}b", "ab")]
    #[case::c1_osc_bel("a\u{9d}0;title\u{07}b", "ab")]
    #[case::c1_other("a\u{85}b\u{8d}c", "abc")]
    #[case::bidi_override("user\u{202e}gnp.exe", "usergnp.exe")]
    #[case::trailing_escape("abc\u{1b}", "abc")]
    #[case::unterminated_osc("abc\u{1b}]0;never ends", "abc")]
    fn sanitizes(#[case] input: &str, #[case] expected: &str) {
        assert_eq!(sanitize(input), expected);
    }

    #[test]
    fn clean_text_is_borrowed() {
        assert!(matches!(sanitize("SELECT * FROM t"), Cow::Borrowed(_)));
    }

    #[test]
    fn output_never_holds_controls() {
        let nasty: String = (0u32..0x250).filter_map(char::from_u32).collect();
        let clean = sanitize(&nasty);
        assert!(!clean.chars().any(|c| c.is_control() && c != ' '), "{clean:?}");
    }
}
