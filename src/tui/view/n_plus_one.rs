//! The N+1 view: offenders across endpoints, ranked by the total time they cost, with the
//! selected offender's whole query and fix hint in a panel below the table.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, StatefulWidget, Table, TableState, Widget, Wrap};

use super::clean;
use crate::snapshot::Snapshot;
use crate::tui::app::{EndpointId, UiState, endpoint_label, n_plus_one_rows};
use crate::tui::format;

/// Draws the offenders table and the selected offender's details.
pub fn render_n_plus_one(area: Rect, buf: &mut Buffer, snapshot: &Snapshot, ui: &UiState) {
    let theme = &ui.theme;
    let rows = n_plus_one_rows(snapshot, ui);
    if rows.is_empty() {
        let text = if ui.filter.is_empty() {
            format!(
                "No N+1 offender yet: no query shape ran {} or more times in one request.",
                snapshot.settings.n_plus_one_min
            )
        } else {
            format!("No N+1 offender matches \"{}\". Esc clears the filter.", clean(&ui.filter))
        };
        Paragraph::new(text).wrap(Wrap { trim: false }).render(area, buf);
        return;
    }
    let keys: Vec<(EndpointId, String)> =
        rows.iter().map(|(e, n)| (EndpointId::of(e), n.fingerprint_id.clone())).collect();
    let selected = ui.offenders.resolve(&keys);
    let panel_height = panel_height(area.height);
    let [table_area, panel_area] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(panel_height)]).areas(area);

    const FIXED: [(&str, u16); 4] = [("Rep p50", 7), ("max", 5), ("Reqs", 6), ("Time", 7)];
    let rest = table_area.width.saturating_sub(FIXED.iter().map(|c| c.1 + 1).sum::<u16>() + 1);
    let endpoint_width = (rest / 3).clamp(8, 40);
    let query_width = rest.saturating_sub(endpoint_width);
    let mut header = vec![Cell::from("Endpoint"), Cell::from("Query")];
    header.extend(FIXED.iter().map(|(title, _)| Cell::from(Line::from(*title).right_aligned())));
    let right = |text: String| Cell::from(Line::from(text).right_aligned());
    let table_rows = rows.iter().map(|(e, n)| {
        Row::new(vec![
            Cell::from(format::truncate(&clean(&endpoint_label(e)), usize::from(endpoint_width))),
            Cell::from(Span::styled(format::truncate(&clean(&n.fingerprint), usize::from(query_width)), theme.sql)),
            Cell::from(Line::from(Span::styled(n.repeats.p50.to_string(), theme.n_plus_one)).right_aligned()),
            right(n.repeats.max.to_string()),
            right(format::count(n.requests_affected)),
            right(format::duration_ms(n.time_ms_total)),
        ])
    });
    let mut widths = vec![Constraint::Length(endpoint_width), Constraint::Fill(1)];
    widths.extend(FIXED.iter().map(|c| Constraint::Length(c.1)));
    let table = Table::new(table_rows, widths)
        .header(Row::new(header).style(theme.table_header))
        .row_highlight_style(theme.selected)
        .column_spacing(1);
    let mut state = TableState::default().with_selected(selected);
    StatefulWidget::render(table, table_area, buf, &mut state);

    if panel_height == 0 {
        return;
    }
    let Some((endpoint, offender)) = selected.map(|i| rows[i]) else { return };
    let lines = vec![
        Line::from(Span::styled(clean(&offender.fingerprint), theme.sql)),
        Line::from(vec![Span::styled("fix: ", theme.label), Span::raw(clean(&offender.hint))]),
        Line::from(vec![
            Span::styled("tables ", theme.label),
            Span::raw(clean(&offender.tables.join(", "))),
            Span::styled("  example trace ", theme.label),
            Span::styled(clean(&offender.example_trace_id), theme.dim),
        ]),
    ];
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(Block::new().borders(Borders::TOP).title(format!(" {} ", clean(&endpoint_label(endpoint)))))
        .render(panel_area, buf);
}

/// Rows of the panel below the table in an area `height` rows high (none when short).
pub(super) fn panel_height(height: u16) -> u16 {
    if height >= 16 { 7 } else { 0 }
}
