//! The trace view: one kept request as a waterfall. Each row is a span, indented by depth, with
//! its duration and a bar placed on the request's timeline; database spans show their statement,
//! an N+1 group is one row ("× 40 SELECT … FROM author WHERE id = ?") until Enter unfolds it, and
//! failed spans are drawn in the error style. A panel below shows the selected row whole.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget, Wrap};

use super::clean;
use crate::tui::app::UiState;
use crate::tui::format;
use crate::tui::trace::{TraceLoad, TraceState, WaterfallRow};

/// Title and column header above the rows.
const TOP_ROWS: u16 = 2;
/// Width of the duration column.
const DURATION_WIDTH: usize = 9;

/// Rows of the panel below the waterfall in an area `height` rows high (none when short).
fn panel_height(height: u16) -> u16 {
    if height >= 14 { 4 } else { 0 }
}

/// Where the rows start within the main area, and how many show.
pub(super) fn rows_at(height: u16) -> (u16, u16) {
    (TOP_ROWS, height.saturating_sub(TOP_ROWS + panel_height(height)))
}

/// Draws the trace view.
pub fn render_trace(area: Rect, buf: &mut Buffer, ui: &UiState, trace: &TraceState) {
    let theme = &ui.theme;
    let title = format!(" trace {} · {} ", clean(&trace.trace_id), clean(&trace.origin));
    let block = Block::new().borders(Borders::TOP).title(Span::styled(title, theme.title));
    let record = match &trace.load {
        TraceLoad::Pending => {
            Paragraph::new("Asking for the spans of this trace…").block(block).render(area, buf);
            return;
        }
        TraceLoad::Missing => {
            let text = "Trace no longer kept. apmtop keeps the spans of each endpoint's slowest requests and of \
                        the N+1 and duplicate examples; newer requests have replaced this one. Esc goes back.";
            Paragraph::new(Span::styled(text, theme.warning)).wrap(Wrap { trim: false }).block(block).render(area, buf);
            return;
        }
        TraceLoad::Loaded(record) => record,
    };
    block.render(area, buf);
    let rows = trace.rows();
    let (_, visible) = rows_at(area.height);
    let [header_area, rows_area, panel_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(visible),
        Constraint::Length(panel_height(area.height)),
    ])
    .areas(Rect { y: area.y + 1, height: area.height.saturating_sub(1), ..area });

    let width = usize::from(area.width);
    let bar_width = (width * 2 / 5).clamp(10, 60);
    let label_width = width.saturating_sub(bar_width + DURATION_WIDTH + 2);
    let header = format!(
        "{:<label_width$} {:>DURATION_WIDTH$} {}",
        format!("{} spans", record.spans.len()),
        "duration",
        "timeline"
    );
    Paragraph::new(Span::styled(header, theme.table_header)).render(header_area, buf);

    let start = rows.iter().map(|r| r.start_ns).min().unwrap_or(0);
    let end = rows.iter().map(|r| r.end_ns).max().unwrap_or(start);
    let timeline = Timeline { start, total: end.saturating_sub(start).max(1), width: bar_width };
    let offset = trace.cursor.saturating_sub(usize::from(visible).saturating_sub(1));
    let lines: Vec<Line> = rows
        .iter()
        .enumerate()
        .skip(offset)
        .take(usize::from(visible))
        .map(|(i, row)| {
            let line = row_line(row, label_width, &timeline, ui);
            if i == trace.cursor { line.patch_style(theme.selected) } else { line }
        })
        .collect();
    Paragraph::new(lines).render(rows_area, buf);

    if let Some(row) = rows.get(trace.cursor)
        && panel_area.height > 0
    {
        render_panel(panel_area, buf, row, ui);
    }
}

/// Maps times onto the bar column.
struct Timeline {
    start: u64,
    total: u64,
    width: usize,
}

impl Timeline {
    fn column(&self, ns: u64) -> usize {
        let at = u128::from(ns.saturating_sub(self.start)) * self.width as u128 / u128::from(self.total);
        usize::try_from(at).unwrap_or(self.width).min(self.width)
    }

    /// The bar of `[from, to)`: leading spaces, then at least one block.
    fn bar(&self, from: u64, to: u64) -> String {
        let left = self.column(from).min(self.width.saturating_sub(1));
        let right = self.column(to).max(left + 1).min(self.width);
        format!("{}{}", " ".repeat(left), "█".repeat(right - left))
    }
}

fn row_line(row: &WaterfallRow, label_width: usize, timeline: &Timeline, ui: &UiState) -> Line<'static> {
    let theme = &ui.theme;
    let indent = "  ".repeat(row.depth.min(12));
    let mut label: Vec<Span> = vec![Span::raw(indent.clone())];
    let mut used = format::width(&indent);
    let mut push = |text: String, style: Style, label: &mut Vec<Span<'static>>| {
        let room = label_width.saturating_sub(used);
        let text = format::truncate(&text, room);
        used += format::width(&text);
        label.push(Span::styled(text, style));
    };
    let row_style = if row.is_error { theme.error } else { Style::new() };
    if let Some(group) = &row.group {
        let marker = if group.expanded { "▾ " } else { "▸ " };
        push(marker.to_string(), theme.key, &mut label);
        push(format!("× {} ", group.count), theme.n_plus_one, &mut label);
        push(clean(&group.fingerprint), theme.sql.patch(row_style), &mut label);
    } else {
        if let Some(service) = &row.service {
            push(format!("[{}] ", clean(service)), theme.label, &mut label);
        }
        match &row.statement {
            Some(statement) => push(clean(statement), theme.sql.patch(row_style), &mut label),
            None => push(clean(&row.name), row_style, &mut label),
        }
        if row.is_error {
            push(" ✗".to_string(), theme.error, &mut label);
        }
    }
    label.push(Span::raw(" ".repeat(label_width.saturating_sub(used) + 1)));
    let duration = format::duration_ms(row.busy_ns as f64 / 1_000_000.0);
    label.push(Span::styled(format!("{duration:>DURATION_WIDTH$} "), row_style));
    let bar_style = if row.is_error {
        theme.error
    } else if row.group.is_some() {
        theme.n_plus_one
    } else if row.is_db {
        theme.sql
    } else {
        theme.dim
    };
    label.push(Span::styled(timeline.bar(row.start_ns, row.end_ns), bar_style));
    Line::from(label)
}

fn render_panel(area: Rect, buf: &mut Buffer, row: &WaterfallRow, ui: &UiState) {
    let theme = &ui.theme;
    let mut lines = Vec::new();
    match (&row.group, &row.statement) {
        (Some(group), _) => {
            lines.push(Line::from(Span::styled(clean(&group.fingerprint), theme.sql)));
            lines.push(Line::from(vec![
                Span::styled(format!("N+1: × {} ", group.count), theme.n_plus_one),
                Span::raw(format!(
                    "under one parent, {} in all · Enter {}",
                    format::duration_ms(row.busy_ns as f64 / 1_000_000.0),
                    if group.expanded { "folds" } else { "unfolds" }
                )),
            ]));
        }
        (None, Some(statement)) => lines.push(Line::from(Span::styled(clean(statement), theme.sql))),
        (None, None) => lines.push(Line::from(clean(&row.name))),
    }
    if row.is_error {
        lines.push(Line::from(Span::styled("status ERROR", theme.error)));
    }
    Paragraph::new(lines).wrap(Wrap { trim: false }).block(Block::new().borders(Borders::TOP)).render(area, buf);
}
