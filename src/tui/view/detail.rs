//! Endpoint detail (Enter on an endpoint or offender): its latency, queries-per-request and DB
//! time summaries, the latency and queries-per-request histograms, N+1 offenders with their whole
//! query and fix hint, duplicated queries, its slowest requests and its top query shapes (by total
//! time). Long SQL is shown whole here (wrapped), unlike in the tables.
//!
//! The example traces of offenders and duplicates and the slowest requests are the rows a cursor
//! moves through ([`detail_targets`]); Enter opens the selected one's waterfall. The list scrolls
//! to keep the cursor in view.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget, Wrap};

use super::charts;
use super::clean;
use crate::snapshot::{EndpointSnapshot, QuerySnapshot, Snapshot, Summary};
use crate::tui::app::{DetailTarget, EndpointId, TargetKind, UiState, detail_targets, endpoint_label};
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
    let inner = block.inner(area);
    block.render(area, buf);
    let summary = summary_lines(endpoint, theme);
    let chart_height = match inner.height {
        22.. => 9,
        16..22 => 6,
        _ => 0,
    };
    let [summary_area, charts_area, list_area] = Layout::vertical([
        Constraint::Length(summary.len() as u16),
        Constraint::Length(chart_height),
        Constraint::Fill(1),
    ])
    .areas(inner);
    Paragraph::new(summary).render(summary_area, buf);
    if chart_height > 0 {
        charts::render_histograms(charts_area, buf, endpoint, theme);
    }

    let targets = detail_targets(endpoint);
    let cursor = ui.detail_cursor.min(targets.len().saturating_sub(1));
    let selected = targets.get(cursor);
    let (mut lines, selected_line) = list_lines(endpoint, theme, selected);
    lines.extend(top_shapes(snapshot, endpoint, theme));
    // Keep the selected row in view: a third of the way down once the list has to scroll.
    let rows = list_area.height;
    let width = usize::from(list_area.width.max(1));
    let heights: Vec<usize> = lines.iter().map(|l| l.width().div_ceil(width).max(1)).collect();
    let before: usize = heights.iter().take(selected_line.unwrap_or(0)).sum();
    let scroll = if before + 2 > usize::from(rows) { before.saturating_sub(usize::from(rows) / 3) } else { 0 };
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .scroll((u16::try_from(scroll).unwrap_or(u16::MAX), 0))
        .render(list_area, buf);
}

fn summary_lines(e: &EndpointSnapshot, theme: &Theme) -> Vec<Line<'static>> {
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
    out
}

/// The N+1, duplicate and slowest-request sections, with `selected` highlighted; returns the
/// lines and the index of the selected one's first line.
fn list_lines(
    e: &EndpointSnapshot,
    theme: &Theme,
    selected: Option<&DetailTarget>,
) -> (Vec<Line<'static>>, Option<usize>) {
    let mut out = Vec::new();
    let mut selected_line = None;
    let is = |kind: TargetKind, index: usize| selected.is_some_and(|t| t.kind == kind && t.index == index);
    let mark = |on: bool| if on { Span::styled("▶ ", theme.key) } else { Span::raw("  ") };
    out.push(section(format!("N+1 offenders ({})", e.n_plus_one.len()), theme.n_plus_one));
    if e.n_plus_one.is_empty() {
        out.push(Line::from(Span::styled("  none", theme.dim)));
    }
    for (i, n) in e.n_plus_one.iter().enumerate() {
        let on = is(TargetKind::NPlusOne, i);
        if on {
            selected_line = Some(out.len());
        }
        out.push(Line::from(vec![mark(on), Span::styled(clean(&n.fingerprint), theme.sql)]));
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
        out.push(example_line(&n.example_trace_id, on, theme));
    }

    out.push(Line::raw(""));
    out.push(section(format!("Duplicated queries ({})", e.duplicates.len()), theme.title));
    if e.duplicates.is_empty() {
        out.push(Line::from(Span::styled("  none", theme.dim)));
    }
    for (i, d) in e.duplicates.iter().enumerate() {
        let on = is(TargetKind::Duplicate, i);
        if on {
            selected_line = Some(out.len());
        }
        out.push(Line::from(vec![mark(on), Span::styled(clean(&d.statement), theme.sql)]));
        out.push(Line::raw(format!(
            "    × {} at most · {} requests · {} wasted",
            d.repeats_max,
            format::count(d.requests_affected),
            format::duration_ms(d.time_ms_wasted)
        )));
        out.push(Line::from(vec![Span::styled("    fix: ", theme.label), Span::raw(clean(&d.hint))]));
        out.push(example_line(&d.example_trace_id, on, theme));
    }

    out.push(Line::raw(""));
    out.push(section(format!("Slowest requests ({})", e.slowest.len()), theme.title));
    if !e.slowest.is_empty() {
        out.push(Line::from(Span::styled(
            format!("  {:<34}{:>9}{:>9}", "trace", "duration", "queries"),
            theme.table_header,
        )));
    }
    for (i, r) in e.slowest.iter().enumerate() {
        let on = is(TargetKind::Slowest, i);
        if on {
            selected_line = Some(out.len());
        }
        let line = Line::from(vec![
            mark(on),
            Span::raw(format!(
                "{:<34}{:>9}{:>9}",
                format::truncate(&clean(&r.trace_id), 33),
                format::duration_ms(r.duration_ms),
                format::count(r.queries)
            )),
        ]);
        out.push(if on { line.patch_style(theme.selected) } else { line });
    }
    out.push(Line::raw(""));
    out.push(Line::from(Span::styled("↑↓ choose a trace · Enter opens its waterfall", theme.dim)));
    (out, selected_line)
}

/// Query shapes shown per endpoint.
const TOP_SHAPES: usize = 5;

/// The endpoint's query shapes that cost the most time (across all endpoints they run in).
fn top_shapes(snapshot: &Snapshot, e: &EndpointSnapshot, theme: &Theme) -> Vec<Line<'static>> {
    let runs_here = |q: &&QuerySnapshot| {
        q.endpoint_refs.iter().any(|r| r.service == e.service && r.method == e.method && r.route == e.route)
    };
    let shapes: Vec<&QuerySnapshot> = snapshot.queries.iter().filter(runs_here).take(TOP_SHAPES).collect();
    if shapes.is_empty() {
        return Vec::new();
    }
    let mut out = vec![Line::raw(""), section("Top query shapes (all endpoints' time)".to_string(), theme.title)];
    for q in shapes {
        out.push(Line::from(vec![Span::raw("  "), Span::styled(clean(&q.fingerprint), theme.sql)]));
        out.push(Line::raw(format!(
            "    {} calls · p95 {} · {} total",
            format::count(q.calls),
            format::duration_ms(q.latency_ms.p95),
            format::duration_ms(q.time_ms_total)
        )));
    }
    out
}

fn example_line(trace_id: &str, on: bool, theme: &Theme) -> Line<'static> {
    let line = Line::from(vec![
        Span::styled("    example trace ", theme.label),
        Span::styled(clean(trace_id), if on { theme.value } else { theme.dim }),
    ]);
    if on { line.patch_style(theme.selected) } else { line }
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
