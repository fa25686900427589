//! The Endpoints view: one row per endpoint with requests, errors, latency percentiles, queries
//! per request, DB time share and a marker on endpoints with N+1 offenders. Rows come from
//! [`endpoint_rows`], the same list navigation moves through.

use std::collections::BTreeSet;

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, StatefulWidget, Table, TableState, Widget, Wrap};

use super::clean;
use crate::snapshot::Snapshot;
use crate::tui::app::{EndpointId, SortColumn, UiState, endpoint_label, endpoint_rows};
use crate::tui::format;

/// Marks endpoints with at least one N+1 offender.
pub const N_PLUS_ONE_MARK: &str = "●";

/// Fixed columns after the endpoint: title, width, the sort column it shows.
const COLUMNS: [(&str, u16, Option<SortColumn>); 8] = [
    ("Reqs", 6, Some(SortColumn::Requests)),
    ("Errs", 5, Some(SortColumn::Errors)),
    ("p50", 7, Some(SortColumn::P50)),
    ("p95", 7, Some(SortColumn::P95)),
    ("p99", 7, Some(SortColumn::P99)),
    ("Q p50", 5, Some(SortColumn::QueriesP50)),
    ("Q max", 5, Some(SortColumn::QueriesMax)),
    ("DB", 4, Some(SortColumn::DbShare)),
];

/// Draws the endpoints table.
pub fn render_endpoints(area: Rect, buf: &mut Buffer, snapshot: &Snapshot, ui: &UiState) {
    let theme = &ui.theme;
    let rows = endpoint_rows(snapshot, ui);
    if rows.is_empty() {
        render_no_rows(area, buf, snapshot, ui);
        return;
    }
    let services: BTreeSet<&str> = snapshot.endpoints.iter().map(|e| e.service.as_str()).collect();
    let fixed: u16 = COLUMNS.iter().map(|c| c.1 + 1).sum::<u16>() + 2;
    let label_width = area.width.saturating_sub(fixed).max(8);

    let mut header = vec![Cell::from(""), Cell::from(sorted_title("Endpoint", ui.sort == SortColumn::Name))];
    header.extend(COLUMNS.iter().map(|(title, _, column)| {
        Cell::from(Line::from(sorted_title(title, *column == Some(ui.sort))).right_aligned())
    }));
    let table_rows = rows.iter().map(|e| {
        let mut label = endpoint_label(e);
        if services.len() > 1 {
            label = format!("{} · {label}", e.service);
        }
        let marker = if e.n_plus_one.is_empty() {
            Cell::from("")
        } else {
            Cell::from(Span::styled(N_PLUS_ONE_MARK, theme.n_plus_one))
        };
        let errors_style = if e.errors > 0 { theme.error } else { ratatui::style::Style::new() };
        let right = |text: String| Cell::from(Line::from(text).right_aligned());
        Row::new(vec![
            marker,
            Cell::from(format::truncate(&clean(&label), usize::from(label_width))),
            right(format::count(e.requests)),
            Cell::from(Line::from(Span::styled(format::count(e.errors), errors_style)).right_aligned()),
            right(format::duration_ms(e.latency_ms.p50)),
            right(format::duration_ms(e.latency_ms.p95)),
            right(format::duration_ms(e.latency_ms.p99)),
            right(format::amount(e.queries_per_request.p50)),
            right(format::amount(e.queries_per_request.max)),
            right(format::percent(e.db_time_share)),
        ])
    });
    let mut widths = vec![Constraint::Length(1), Constraint::Fill(1)];
    widths.extend(COLUMNS.iter().map(|c| Constraint::Length(c.1)));
    let table = Table::new(table_rows, widths)
        .header(Row::new(header).style(theme.table_header))
        .row_highlight_style(theme.selected)
        .column_spacing(1);
    let keys: Vec<EndpointId> = rows.iter().map(|e| EndpointId::of(e)).collect();
    let mut state = TableState::default().with_selected(ui.endpoints.resolve(&keys));
    StatefulWidget::render(table, area, buf, &mut state);
}

fn sorted_title(title: &str, sorted: bool) -> String {
    if sorted { format!("{title}▼") } else { title.to_string() }
}

fn render_no_rows(area: Rect, buf: &mut Buffer, snapshot: &Snapshot, ui: &UiState) {
    let theme = &ui.theme;
    let lines = if !ui.filter.is_empty() {
        vec![Line::raw(format!("No endpoint matches \"{}\". Esc clears the filter.", clean(&ui.filter)))]
    } else {
        let t = &snapshot.totals;
        let mut lines = vec![
            Line::from(Span::styled(
                format!("{} spans received, no request assembled yet.", format::count(t.spans_received)),
                theme.title,
            )),
            Line::raw(""),
            Line::raw(format!(
                "Requests appear {}s after their last span, once a server (or consumer) span is seen.",
                snapshot.settings.grace_seconds
            )),
        ];
        if !snapshot.audit.is_empty() {
            lines.push(Line::raw(""));
            lines.push(Line::from(vec![
                Span::raw("The instrumentation audit has "),
                Span::styled(format!("{} finding(s)", snapshot.audit.len()), theme.warning),
                Span::raw(": press "),
                Span::styled("a", theme.key),
                Span::raw(" to see what is missing and how to fix it."),
            ]));
        }
        lines
    };
    Paragraph::new(lines).wrap(Wrap { trim: false }).render(area, buf);
}
