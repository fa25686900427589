//! The Queries view: query shapes across endpoints by total time, with calls, p95 and the
//! endpoints they run in; the selected shape is shown whole in a panel below.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, StatefulWidget, Table, TableState, Widget, Wrap};

use super::clean;
use crate::snapshot::Snapshot;
use crate::tui::app::{UiState, query_rows};
use crate::tui::format;

/// Draws the query shapes table and the selected shape.
pub fn render_queries(area: Rect, buf: &mut Buffer, snapshot: &Snapshot, ui: &UiState) {
    let theme = &ui.theme;
    let rows = query_rows(snapshot, ui);
    if rows.is_empty() {
        let text = if ui.filter.is_empty() {
            "No query yet: DB spans with statement text (db.statement or db.query.text) appear here.".to_string()
        } else {
            format!("No query matches \"{}\". Esc clears the filter.", clean(&ui.filter))
        };
        Paragraph::new(text).wrap(Wrap { trim: false }).render(area, buf);
        return;
    }
    let keys: Vec<String> = rows.iter().map(|q| q.fingerprint_id.clone()).collect();
    let selected = ui.queries.resolve(&keys);
    let panel_height = panel_height(area.height);
    let [table_area, panel_area] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(panel_height)]).areas(area);

    const FIXED: [(&str, u16); 3] = [("Calls", 6), ("p95", 7), ("Total", 7)];
    let rest = table_area.width.saturating_sub(FIXED.iter().map(|c| c.1 + 1).sum::<u16>() + 1);
    let endpoints_width = (rest / 4).clamp(6, 40);
    let query_width = rest.saturating_sub(endpoints_width);
    let mut header = vec![Cell::from("Query")];
    header.extend(FIXED.iter().map(|(title, _)| Cell::from(Line::from(*title).right_aligned())));
    header.push(Cell::from("Endpoints"));
    let right = |text: String| Cell::from(Line::from(text).right_aligned());
    let table_rows = rows.iter().map(|q| {
        Row::new(vec![
            Cell::from(Span::styled(format::truncate(&clean(&q.fingerprint), usize::from(query_width)), theme.sql)),
            right(format::count(q.calls)),
            right(format::duration_ms(q.latency_ms.p95)),
            right(format::duration_ms(q.time_ms_total)),
            Cell::from(format::truncate(&clean(&q.endpoints.join(", ")), usize::from(endpoints_width))),
        ])
    });
    let mut widths = vec![Constraint::Fill(1)];
    widths.extend(FIXED.iter().map(|c| Constraint::Length(c.1)));
    widths.push(Constraint::Length(endpoints_width));
    let table = Table::new(table_rows, widths)
        .header(Row::new(header).style(theme.table_header))
        .row_highlight_style(theme.selected)
        .column_spacing(1);
    let mut state = TableState::default().with_selected(selected);
    StatefulWidget::render(table, table_area, buf, &mut state);

    if panel_height == 0 {
        return;
    }
    let Some(query) = selected.map(|i| rows[i]) else { return };
    let mut lines = vec![
        Line::from(Span::styled(clean(&query.fingerprint), theme.sql)),
        Line::from(vec![
            Span::styled("p50 ", theme.label),
            Span::raw(format::duration_ms(query.latency_ms.p50)),
            Span::styled("  p99 ", theme.label),
            Span::raw(format::duration_ms(query.latency_ms.p99)),
            Span::styled("  max ", theme.label),
            Span::raw(format::duration_ms(query.latency_ms.max)),
            Span::styled("  tables ", theme.label),
            Span::raw(clean(&query.tables.join(", "))),
        ]),
        Line::from(vec![Span::styled("in ", theme.label), Span::raw(clean(&query.endpoints.join(", ")))]),
    ];
    if !query.parsed {
        lines.push(Line::from(Span::styled("(did not parse: fingerprint from the token fallback)", theme.dim)));
    }
    let title = format!(" {} · {} ", clean(&query.db_system), clean(&query.fingerprint_id));
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(Block::new().borders(Borders::TOP).title(title))
        .render(panel_area, buf);
}

/// Rows of the panel below the table in an area `height` rows high (none when short).
pub(super) fn panel_height(height: u16) -> u16 {
    if height >= 16 { 6 } else { 0 }
}
