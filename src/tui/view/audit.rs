//! The instrumentation audit overlay (`a`): what is missing from the app's instrumentation, per
//! service, and how to fix it, from the snapshot's `audit` entries.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget, Wrap};

use super::{centered, clean};
use crate::snapshot::Snapshot;
use crate::tui::app::UiState;

/// Draws the audit findings over `area`.
pub fn render_audit(area: Rect, buf: &mut Buffer, snapshot: &Snapshot, ui: &UiState) {
    let theme = &ui.theme;
    let mut lines = Vec::new();
    if snapshot.audit.is_empty() {
        lines.push(Line::raw("Nothing to report: the instrumentation looks complete."));
    }
    for entry in &snapshot.audit {
        lines.push(Line::from(vec![
            Span::styled(clean(&entry.service), theme.title),
            Span::styled(format!("  {}", clean(&entry.code)), theme.dim),
        ]));
        lines.push(Line::from(vec![Span::raw("  "), Span::raw(clean(&entry.problem))]));
        lines.push(Line::from(vec![Span::styled("  fix: ", theme.label), Span::raw(clean(&entry.fix))]));
        lines.push(Line::raw(""));
    }
    lines.push(Line::from(Span::styled("Esc or a closes this", theme.dim)));
    let rect = centered(area, area.width.saturating_sub(4).min(100), area.height);
    Clear.render(rect, buf);
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(Block::new().borders(Borders::ALL).title(Span::styled(" Instrumentation audit ", theme.title)))
        .render(rect, buf);
}
