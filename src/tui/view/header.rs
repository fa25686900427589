//! The header: where apmtop listens (so the exporter endpoint can be copied), uptime, request
//! and span rates, pause state, and the pipeline totals. Dropped and refused spans are always
//! shown, highlighted when not zero: a dashboard that silently loses data would mislead.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use crate::snapshot::Snapshot;
use crate::tui::app::UiState;
use crate::tui::format;

/// Draws the two header lines.
pub fn render_header(area: Rect, buf: &mut Buffer, snapshot: &Snapshot, ui: &UiState) {
    let theme = &ui.theme;
    let t = &snapshot.totals;
    // The product name gives way to the figures on narrow terminals.
    let mut first = if area.width >= 90 { vec![Span::styled(" apmtop ", theme.title)] } else { Vec::new() };
    first.extend([
        Span::styled(" gRPC ", theme.label),
        Span::styled(ui.grpc_addr.to_string(), theme.value),
        Span::styled("  HTTP ", theme.label),
        Span::styled(ui.http_addr.to_string(), theme.value),
        Span::styled("  up ", theme.label),
        Span::styled(format::uptime(ui.uptime), theme.value),
    ]);
    if let Some(rates) = ui.rates {
        first.push(Span::styled("  req ", theme.label));
        first.push(Span::styled(format::rate(rates.requests_per_second), theme.value));
        first.push(Span::styled("  spans ", theme.label));
        first.push(Span::styled(format::rate(rates.spans_per_second), theme.value));
    }
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
    Paragraph::new(vec![Line::from(first), Line::from(second)]).render(area, buf);
}
