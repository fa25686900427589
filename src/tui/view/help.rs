//! The help overlay (`?`): every key, straight from the key table in [`crate::tui::event`].

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget};

use super::centered;
use crate::tui::app::UiState;
use crate::tui::event::BINDINGS;

/// How the mouse works, under the keys.
const MOUSE: &str = " mouse: the wheel moves, a click selects, a second click drills in";
/// How to close the overlay.
const CLOSE: &str = " Esc or ? closes this help";

/// Draws the key table over `area`: one column when it fits, else two.
pub fn render_help(area: Rect, buf: &mut Buffer, ui: &UiState) {
    let theme = &ui.theme;
    let label_width = BINDINGS.iter().map(|b| b.label.len()).max().unwrap_or(0) + 2;
    let entries: Vec<Line> = BINDINGS
        .iter()
        .map(|b| Line::from(vec![Span::styled(format!(" {:<label_width$}", b.label), theme.key), Span::raw(b.help)]))
        .collect();
    let entry_width = entries.iter().map(Line::width).max().unwrap_or(0) + 1;
    let footer = [Line::from(Span::styled(MOUSE, theme.dim)), Line::from(Span::styled(CLOSE, theme.dim))];
    let one_column = usize::from(area.height) >= entries.len() + footer.len() + 2;
    let mut lines: Vec<Line> = if one_column {
        entries
    } else {
        // Two columns side by side: the first half on the left, padded to one width.
        let half = entries.len().div_ceil(2);
        (0..half)
            .map(|i| {
                let mut left = entries[i].clone();
                let pad = entry_width.saturating_sub(left.width());
                left.spans.push(Span::raw(" ".repeat(pad)));
                if let Some(right) = entries.get(i + half) {
                    left.spans.extend(right.spans.iter().cloned());
                }
                left
            })
            .collect()
    };
    lines.extend(footer);
    let width = lines.iter().map(Line::width).max().unwrap_or(0) + 3;
    let height = lines.len() + 2;
    let rect = centered(area, u16::try_from(width).unwrap_or(u16::MAX), u16::try_from(height).unwrap_or(u16::MAX));
    Clear.render(rect, buf);
    Paragraph::new(lines)
        .block(Block::new().borders(Borders::ALL).title(Span::styled(" Keys ", theme.title)))
        .render(rect, buf);
}
