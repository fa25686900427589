//! Every style the dashboard uses, in one place.
//!
//! Colours are limited to the 16 ANSI ones so the terminal's own palette keeps them readable on
//! dark and light backgrounds. With `NO_COLOR` set (to anything non-empty, see no-color.org) the
//! theme keeps only modifiers (bold, reversed, underlined), so selection and emphasis still show.

use ratatui::style::{Color, Modifier, Style};

/// The styles of the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    /// Product name and view titles.
    pub title: Style,
    /// Labels in the header ("spans", "requests").
    pub label: Style,
    /// Values that matter (addresses, totals).
    pub value: Style,
    /// A counter that should be zero and is not (dropped, refused spans).
    pub warning: Style,
    /// Errors, failing endpoints.
    pub error: Style,
    /// The N+1 marker and N+1 figures.
    pub n_plus_one: Style,
    /// The active tab.
    pub tab_active: Style,
    /// Inactive tabs.
    pub tab: Style,
    /// Table headers.
    pub table_header: Style,
    /// The selected row.
    pub selected: Style,
    /// Secondary text (hints, example traces).
    pub dim: Style,
    /// Keys in hints and in the help overlay.
    pub key: Style,
    /// The status line message.
    pub status: Style,
    /// SQL text.
    pub sql: Style,
}

impl Theme {
    /// The theme for this process: plain when `NO_COLOR` is set and not empty.
    pub fn from_env() -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        if no_color { Theme::plain() } else { Theme::colored() }
    }

    /// ANSI colours.
    pub fn colored() -> Self {
        let bold = Style::new().add_modifier(Modifier::BOLD);
        Theme {
            title: bold.fg(Color::Cyan),
            label: Style::new().fg(Color::Gray),
            value: bold,
            warning: bold.fg(Color::Yellow),
            error: Style::new().fg(Color::Red),
            n_plus_one: bold.fg(Color::Magenta),
            tab_active: bold.fg(Color::Black).bg(Color::Cyan),
            tab: Style::new(),
            table_header: bold.add_modifier(Modifier::UNDERLINED),
            selected: Style::new().add_modifier(Modifier::REVERSED),
            dim: Style::new().fg(Color::DarkGray),
            key: bold.fg(Color::Cyan),
            status: bold.fg(Color::Green),
            sql: Style::new().fg(Color::Blue),
        }
    }

    /// Modifiers only, for `NO_COLOR`.
    pub fn plain() -> Self {
        let bold = Style::new().add_modifier(Modifier::BOLD);
        Theme {
            title: bold,
            label: Style::new(),
            value: bold,
            warning: bold,
            error: bold,
            n_plus_one: bold,
            tab_active: Style::new().add_modifier(Modifier::REVERSED),
            tab: Style::new(),
            table_header: bold.add_modifier(Modifier::UNDERLINED),
            selected: Style::new().add_modifier(Modifier::REVERSED),
            dim: Style::new(),
            key: bold,
            status: bold,
            sql: Style::new(),
        }
    }
}

impl Default for Theme {
    fn default() -> Self {
        Theme::colored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_theme_has_no_colours() {
        let plain = Theme::plain();
        for style in [plain.title, plain.error, plain.warning, plain.selected, plain.sql, plain.dim, plain.tab_active] {
            assert_eq!(style.fg, None);
            assert_eq!(style.bg, None);
        }
        assert!(plain.selected.add_modifier.contains(Modifier::REVERSED));
    }
}
