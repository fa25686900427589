//! Endpoint detail (Enter on an endpoint or offender): its latency, queries-per-request and DB
//! time summaries, N+1 offenders with their whole query and fix hint, duplicated queries, and
//! its slowest requests. Long SQL is shown whole here (wrapped), unlike in the tables.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget, Wrap};

use super::clean;
use crate::snapshot::{EndpointSnapshot, Snapshot, Summary};
use crate::tui::app::{EndpointId, UiState, endpoint_label};
use crate::tui::format;
use crate::tui::theme::Theme;

/// Draws the detail of endpoint `id`, scrolled by `ui.detail_scroll` lines.
pub fn render_detail(area: Rect, buf: &mut Buffer, snapshot: &Snapshot, ui: &UiState, id: &EndpointId) {
    let theme = &ui.theme;
    let Some(endpoint) = snapshot.endpoints.iter().find(|e| id.is(e)) else {
        Paragraph::new("This endpoint is no longer tracked (folded into the overflow row). Esc goes back.")
            .wrap(Wrap { trim: false })
            .render(area, buf);
        return;
    };
    let title = format!(" {} · {} ", clean(&endpoint_label(endpoint)), clean(&endpoint.service));
    let block = Block::new().borders(Borders::TOP).title(Span::styled(title, theme.title));
    let lines = lines(endpoint, theme);
    // Never scroll the content entirely out of sight.
    let last = u16::try_from(lines.len().saturating_sub(1)).unwrap_or(u16::MAX);
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .scroll((ui.detail_scroll.min(last), 0))
        .block(block)
        .render(area, buf);
}

fn lines(e: &EndpointSnapshot, theme: &Theme) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    let mut facts = vec![
        Span::styled("requests ", theme.label),
        Span::styled(format::count(e.requests), theme.value),
        Span::styled("  errors ", theme.label),
        Span::styled(
            format!("{} ({})", format::count(e.errors), format::ratio(e.errors, e.requests)),
            if e.errors > 0 { theme.error } else { theme.value },
        ),
        Span::styled("  DB share ", theme.label),
        Span::styled(format::percent(e.db_time_share), theme.value),
    ];
    if e.connection_spans > 0 {
        facts.push(Span::styled("  connection spans ", theme.label));
        facts.push(Span::styled(format::count(e.connection_spans), theme.value));
    }
    if let Some(folded) = e.folded_endpoints {
        facts.push(Span::styled(format!("  folds {folded} endpoints"), theme.warning));
    }
    out.push(Line::from(facts));
    out.push(Line::raw(""));
    out.push(Line::from(Span::styled(
        format!("{:<12}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}", "", "mean", "p50", "p90", "p95", "p99", "max"),
        theme.table_header,
    )));
    out.push(summary_line("latency", &e.latency_ms, format::duration_ms, theme));
    out.push(summary_line("queries/req", &e.queries_per_request, format::amount, theme));
    out.push(summary_line("DB time/req", &e.db_time_ms, format::duration_ms, theme));

    out.push(Line::raw(""));
    out.push(section(format!("N+1 offenders ({})", e.n_plus_one.len()), theme.n_plus_one));
    if e.n_plus_one.is_empty() {
        out.push(Line::from(Span::styled("  none", theme.dim)));
    }
    for n in &e.n_plus_one {
        out.push(Line::from(vec![Span::raw("  "), Span::styled(clean(&n.fingerprint), theme.sql)]));
        out.push(Line::from(vec![
            Span::raw("    "),
            Span::styled(format!("× {} per request", n.repeats.p50), theme.n_plus_one),
            Span::raw(format!(
                " (max {}) · {} requests · {} total",
                n.repeats.max,
                format::count(n.requests_affected),
                format::duration_ms(n.time_ms_total)
            )),
        ]));
        out.push(Line::from(vec![Span::styled("    fix: ", theme.label), Span::raw(clean(&n.hint))]));
        out.push(Line::from(vec![
            Span::styled("    example trace ", theme.label),
            Span::styled(clean(&n.example_trace_id), theme.dim),
        ]));
    }

    out.push(Line::raw(""));
    out.push(section(format!("Duplicated queries ({})", e.duplicates.len()), theme.title));
    if e.duplicates.is_empty() {
        out.push(Line::from(Span::styled("  none", theme.dim)));
    }
    for d in &e.duplicates {
        out.push(Line::from(vec![Span::raw("  "), Span::styled(clean(&d.statement), theme.sql)]));
        out.push(Line::raw(format!(
            "    × {} at most · {} requests · {} wasted",
            d.repeats_max,
            format::count(d.requests_affected),
            format::duration_ms(d.time_ms_wasted)
        )));
        out.push(Line::from(vec![Span::styled("    fix: ", theme.label), Span::raw(clean(&d.hint))]));
    }

    out.push(Line::raw(""));
    out.push(section(format!("Slowest requests ({})", e.slowest.len()), theme.title));
    if !e.slowest.is_empty() {
        out.push(Line::from(Span::styled(
            format!("  {:<34}{:>9}{:>9}", "trace", "duration", "queries"),
            theme.table_header,
        )));
    }
    for r in &e.slowest {
        out.push(Line::raw(format!(
            "  {:<34}{:>9}{:>9}",
            format::truncate(&clean(&r.trace_id), 33),
            format::duration_ms(r.duration_ms),
            format::count(r.queries)
        )));
    }
    out
}

fn section(title: String, style: Style) -> Line<'static> {
    Line::from(Span::styled(title, style))
}

fn summary_line(label: &str, s: &Summary, show: fn(f64) -> String, theme: &Theme) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("{label:<12}"), theme.label),
        Span::raw(format!(
            "{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}",
            show(s.mean),
            show(s.p50),
            show(s.p90),
            show(s.p95),
            show(s.p99),
            show(s.max)
        )),
    ])
}
