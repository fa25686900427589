//! The header: where apmtop listens (so the exporter endpoint can be copied), uptime, the time
//! window, pause state, the pipeline totals, and request and span rates with a throughput
//! sparkline (requests per second over the last minute). Dropped and refused spans are always
//! shown, highlighted when not zero: a dashboard that silently loses data would mislead.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Sparkline, Widget};

use crate::snapshot::Snapshot;
use crate::tui::app::UiState;
use crate::tui::format;

/// Lines the header takes.
pub const HEADER_ROWS: u16 = 3;

/// Draws the three header lines.
pub fn render_header(area: Rect, buf: &mut Buffer, snapshot: &Snapshot, ui: &UiState) {
    let theme = &ui.theme;
    let t = &snapshot.totals;
    // The product name gives way to the figures on narrow terminals.
    let mut first = if area.width >= 90 { vec![Span::styled(" apmtop ", theme.title)] } else { Vec::new() };
    if ui.live {
        first.extend([
            Span::styled(" gRPC ", theme.label),
            Span::styled(ui.grpc_addr.to_string(), theme.value),
            Span::styled("  HTTP ", theme.label),
            Span::styled(ui.http_addr.to_string(), theme.value),
            Span::styled("  up ", theme.label),
            Span::styled(format::uptime(ui.uptime), theme.value),
        ]);
    } else {
        // A saved report: no listener, no uptime; when it was taken instead.
        first.extend([
            Span::styled(" saved report ", theme.label),
            Span::styled(super::clean(&snapshot.generated_at), theme.value),
            Span::styled("  read-only", theme.dim),
        ]);
    }
    first.push(Span::styled("  window ", theme.label));
    first.push(Span::styled(ui.window.label(), theme.value));
    if ui.paused {
        first.push(Span::raw("  "));
        first.push(Span::styled(" PAUSED ", theme.tab_active));
    }
    let offenders: usize = snapshot.endpoints.iter().map(|e| e.n_plus_one.len()).sum();
    let mut second = Vec::new();
    let mut item = |label: &str, value: String, style| {
        let gap = if second.is_empty() { " " } else { "  " };
        second.push(Span::styled(format!("{gap}{label} "), theme.label));
        second.push(Span::styled(value, style));
    };
    item("spans", format::count(t.spans_received), theme.value);
    item("requests", format::count(t.requests), theme.value);
    item("endpoints", format::count(snapshot.endpoints.len() as u64), theme.value);
    item("N+1", offenders.to_string(), if offenders > 0 { theme.n_plus_one } else { theme.value });
    let alarm = |n: u64| if n > 0 { theme.warning } else { theme.value };
    item("dropped", format::count(t.spans_dropped), alarm(t.spans_dropped));
    item("refused", format::count(t.spans_refused), alarm(t.spans_refused));
    for (label, n) in [
        ("rejected", t.spans_rejected),
        ("incomplete", t.traces_incomplete),
        ("evicted", t.traces_evicted),
        ("malformed", t.exports_malformed),
    ] {
        if n > 0 {
            item(label, format::count(n), theme.warning);
        }
    }
    let [lines_area, rates_area] = Layout::vertical([Constraint::Length(2), Constraint::Length(1)]).areas(area);
    Paragraph::new(vec![Line::from(first), Line::from(second)]).render(lines_area, buf);
    render_rates(rates_area, buf, ui);
}

/// The third line: requests per second with its sparkline, then spans per second.
fn render_rates(area: Rect, buf: &mut Buffer, ui: &UiState) {
    let theme = &ui.theme;
    let show = |rate: Option<f64>| rate.map_or_else(|| "-".to_string(), format::rate);
    let requests = show(ui.rates.map(|r| r.requests_per_second));
    let spans = show(ui.rates.map(|r| r.spans_per_second));
    let left =
        Line::from(vec![Span::styled(" req ", theme.label), Span::styled(format!("{requests:>8} "), theme.value)]);
    let right = Line::from(vec![
        Span::styled("  spans ", theme.label),
        Span::styled(format!("{spans:>8}"), theme.value),
        Span::styled("  (last minute)", theme.dim),
    ]);
    let [left_area, spark_area, right_area] = Layout::horizontal([
        Constraint::Length(left.width() as u16),
        Constraint::Fill(1),
        Constraint::Length(right.width() as u16),
    ])
    .areas(area);
    Paragraph::new(left).render(left_area, buf);
    // The newest values at the right edge.
    let points: Vec<u64> = ui.throughput.iter().copied().collect();
    let shown = &points[points.len().saturating_sub(usize::from(spark_area.width))..];
    Sparkline::default().data(shown).style(theme.sql).render(spark_area, buf);
    Paragraph::new(right).render(right_area, buf);
}
