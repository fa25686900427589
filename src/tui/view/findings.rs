//! The Findings view: every diagnosed cause of slowness, ranked by the time it costs, with the
//! selected one's hint below; and a finding's evidence (Enter): the figures, the query, the
//! database's plan and the proposed index when there are some, where in the code, the fix, and
//! the example trace that Enter opens.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, StatefulWidget, Table, TableState, Widget, Wrap};

use super::clean;
use crate::snapshot::{FindingSnapshot, Snapshot};
use crate::tui::app::{UiState, finding_rows};
use crate::tui::format;
use crate::tui::theme::Theme;

/// Rows of the panel below the table in an area `height` rows high (none when short).
pub(super) fn panel_height(height: u16) -> u16 {
    if height >= 16 { 5 } else { 0 }
}

fn endpoint_of(finding: &FindingSnapshot) -> String {
    match &finding.endpoint {
        Some(e) if e.method.is_empty() => e.route.clone(),
        Some(e) => format!("{} {}", e.method, e.route),
        None => "(all endpoints)".to_string(),
    }
}

fn severity_style(severity: &str, theme: &Theme) -> ratatui::style::Style {
    match severity {
        "high" => theme.error,
        "medium" => theme.warning,
        _ => theme.dim,
    }
}

/// Draws the findings table and the selected finding's hint.
pub fn render_findings(area: Rect, buf: &mut Buffer, snapshot: &Snapshot, ui: &UiState) {
    let theme = &ui.theme;
    let rows = finding_rows(snapshot, ui);
    if rows.is_empty() {
        let text = if !ui.filter.is_empty() {
            format!("No finding matches \"{}\". Esc clears the filter.", clean(&ui.filter))
        } else {
            "No finding yet: causes of slowness (N+1 queries, duplicates, slow query shapes, missing indexes, ...) \
             are listed here, most costly first, as requests arrive."
                .to_string()
        };
        Paragraph::new(text).wrap(Wrap { trim: false }).render(area, buf);
        return;
    }
    let keys: Vec<String> = rows.iter().map(|f| f.id.clone()).collect();
    let selected = ui.findings.resolve(&keys);
    let panel = panel_height(area.height);
    let [table_area, panel_area] = Layout::vertical([Constraint::Fill(1), Constraint::Length(panel)]).areas(area);

    const FIXED: [(&str, u16); 3] = [("Sev", 6), ("Cost", 8), ("Reqs", 6)];
    let rest = table_area.width.saturating_sub(FIXED.iter().map(|c| c.1 + 1).sum::<u16>() + 1);
    let endpoint_width = (rest / 3).clamp(8, 32);
    let title_width = rest.saturating_sub(endpoint_width + 1);
    let right = |text: String| Cell::from(Line::from(text).right_aligned());
    let table_rows = rows.iter().map(|f| {
        Row::new(vec![
            Cell::from(Span::styled(clean(&f.severity), severity_style(&f.severity, theme))),
            Cell::from(format::truncate(&clean(&f.title), usize::from(title_width))),
            Cell::from(format::truncate(&clean(&endpoint_of(f)), usize::from(endpoint_width))),
            right(format::duration_ms(f.cost_ms_total)),
            right(format::count(f.requests_affected)),
        ])
    });
    let header = Row::new(vec![
        Cell::from("Sev"),
        Cell::from("Finding"),
        Cell::from("Endpoint"),
        Cell::from(Line::from("Cost").right_aligned()),
        Cell::from(Line::from("Reqs").right_aligned()),
    ])
    .style(theme.table_header);
    let widths = [
        Constraint::Length(FIXED[0].1),
        Constraint::Fill(1),
        Constraint::Length(endpoint_width),
        Constraint::Length(FIXED[1].1),
        Constraint::Length(FIXED[2].1),
    ];
    let table = Table::new(table_rows, widths).header(header).row_highlight_style(theme.selected).column_spacing(1);
    let mut state = TableState::default().with_selected(selected);
    StatefulWidget::render(table, table_area, buf, &mut state);

    if panel == 0 {
        return;
    }
    let Some(finding) = selected.map(|i| rows[i]) else { return };
    let lines = vec![
        Line::from(vec![Span::styled("fix: ", theme.label), Span::raw(clean(&finding.hint))]),
        Line::from(Span::styled("Enter shows the evidence", theme.dim)),
    ];
    let title = format!(" {} · {} ", clean(&finding.category), clean(&endpoint_of(finding)));
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(Block::new().borders(Borders::TOP).title(title))
        .render(panel_area, buf);
}

/// Draws the evidence of finding `id`, scrolled by `ui.detail_scroll` lines.
pub fn render_evidence(area: Rect, buf: &mut Buffer, snapshot: &Snapshot, ui: &UiState, id: &str) {
    let theme = &ui.theme;
    let Some(f) = snapshot.findings.iter().find(|f| f.id == id) else {
        Paragraph::new("This finding is no longer reported. Esc goes back.").render(area, buf);
        return;
    };
    let title = format!(" {} ", clean(&f.title));
    let block = Block::new().borders(Borders::TOP).title(Span::styled(title, theme.title));
    let mut lines = vec![Line::from(vec![
        Span::styled(clean(&f.severity), severity_style(&f.severity, theme)),
        Span::styled("  ", theme.label),
        Span::raw(clean(&f.category)),
        Span::raw(if f.rule.is_empty() { String::new() } else { format!(" / {}", clean(&f.rule)) }),
        Span::styled("  in ", theme.label),
        Span::raw(clean(&endpoint_of(f))),
        Span::styled("  cost ", theme.label),
        Span::styled(format::duration_ms(f.cost_ms_total), theme.value),
        Span::raw(format!(
            " ({} per request, {} requests)",
            format::duration_ms(f.cost_ms_per_request),
            format::count(f.requests_affected)
        )),
    ])];
    let mut section = |name: &str, body: Vec<Line<'static>>| {
        lines.push(Line::raw(""));
        lines.push(Line::from(Span::styled(name.to_string(), theme.table_header)));
        lines.extend(body);
    };
    section("Evidence", vec![Line::raw(clean(&f.evidence))]);
    if let Some(query) = f.statement.as_ref().or(f.fingerprint.as_ref()) {
        section("Query", vec![Line::from(Span::styled(clean(query), theme.sql))]);
    }
    if let Some(plan) = &f.plan {
        // A plan is several lines; each is cleaned on its own so the layout stays.
        section("Plan", plan.lines().map(|l| Line::from(Span::styled(clean(l), theme.dim))).collect());
    }
    if let Some(index) = &f.proposed_index {
        section("Proposed index", vec![Line::from(Span::styled(clean(index), theme.sql))]);
    }
    if let Some(location) = &f.code_location {
        section("Where", vec![Line::raw(clean(location))]);
    }
    section("Fix", vec![Line::raw(clean(&f.hint))]);
    let trace = if f.example_trace_id.is_empty() {
        Line::from(Span::styled("no example trace", theme.dim))
    } else {
        Line::from(vec![Span::raw(clean(&f.example_trace_id)), Span::styled("  Enter opens its waterfall", theme.dim)])
    };
    section("Example trace", vec![trace]);
    let last = u16::try_from(lines.len().saturating_sub(1)).unwrap_or(u16::MAX);
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .scroll((ui.detail_scroll.min(last), 0))
        .block(block)
        .render(area, buf);
}
