//! The help overlay (`?`): every key, straight from the key table in [`crate::tui::event`].

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget};

use super::centered;
use crate::tui::app::UiState;
use crate::tui::event::BINDINGS;

/// Draws the key table over `area`.
pub fn render_help(area: Rect, buf: &mut Buffer, ui: &UiState) {
    let theme = &ui.theme;
    let label_width = BINDINGS.iter().map(|b| b.label.len()).max().unwrap_or(0) + 2;
    let mut lines: Vec<Line> = BINDINGS
        .iter()
        .map(|b| Line::from(vec![Span::styled(format!(" {:<label_width$}", b.label), theme.key), Span::raw(b.help)]))
        .collect();
    lines.push(Line::from(Span::styled(" Esc or ? closes this help", theme.dim)));
    let width = lines.iter().map(Line::width).max().unwrap_or(0) + 3;
    let height = lines.len() + 2;
    let rect = centered(area, u16::try_from(width).unwrap_or(u16::MAX), u16::try_from(height).unwrap_or(u16::MAX));
    Clear.render(rect, buf);
    Paragraph::new(lines)
        .block(Block::new().borders(Borders::ALL).title(Span::styled(" Keys ", theme.title)))
        .render(rect, buf);
}
