//! The endpoint detail's two histograms as bar charts: request latency and queries per request,
//! from the snapshot's chart buckets (`{le, count}`).
//!
//! Bars get as wide as the area allows; a bucket's bound is written under its bar when it fits,
//! and the first and last bounds always show, so the scale reads at any width.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Bar, BarChart, Block, Borders, Paragraph, Widget};

use crate::snapshot::{Bucket, EndpointSnapshot};
use crate::tui::format;
use crate::tui::theme::Theme;

/// Draws the latency and queries-per-request histograms of `endpoint` side by side.
pub fn render_histograms(area: Rect, buf: &mut Buffer, endpoint: &EndpointSnapshot, theme: &Theme) {
    let [latency, queries] = Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).spacing(2).areas(area);
    render_histogram(latency, buf, "latency", &endpoint.latency_histogram, format::duration_ms, theme.sql, theme);
    render_histogram(queries, buf, "queries per request", &endpoint.queries_histogram, amount, theme.n_plus_one, theme);
}

fn amount(value: f64) -> String {
    format::amount(value)
}

fn render_histogram(
    area: Rect,
    buf: &mut Buffer,
    title: &str,
    buckets: &[Bucket],
    show: fn(f64) -> String,
    style: Style,
    theme: &Theme,
) {
    let block = Block::new().borders(Borders::TOP).title(Span::styled(format!(" {title} "), theme.label));
    let inner = block.inner(area);
    block.render(area, buf);
    if buckets.is_empty() || inner.height < 2 || inner.width < 4 {
        Paragraph::new(Span::styled("no data yet", theme.dim)).render(inner, buf);
        return;
    }
    let [chart_area, scale_area] = Layout::vertical([Constraint::Fill(1), Constraint::Length(1)]).areas(inner);
    let n = u16::try_from(buckets.len()).unwrap_or(u16::MAX);
    let gap = if inner.width >= n * 3 { 1 } else { 0 };
    let bar_width = (inner.width.saturating_sub(gap * n.saturating_sub(1)) / n.max(1)).clamp(1, 8);
    let bars: Vec<Bar> = buckets
        .iter()
        .map(|b| {
            let text = format::count(b.count);
            // The count shows on the bar only when it fits its width.
            let text = if format::width(&text) <= usize::from(bar_width) { text } else { String::new() };
            Bar::new(b.count).text_value(text)
        })
        .collect();
    BarChart::vertical(bars)
        .bar_width(bar_width)
        .bar_gap(gap)
        .bar_style(style)
        .value_style(theme.value.patch(Style::new().add_modifier(ratatui::style::Modifier::REVERSED)))
        .render(chart_area, buf);

    // The scale: "≤ first" at the left, "≤ last" at the right edge of the last bar.
    let drawn = usize::from(bar_width) * buckets.len() + usize::from(gap) * buckets.len().saturating_sub(1);
    let first = format!("≤{}", show(buckets[0].le));
    let last = format!("≤{}", show(buckets[buckets.len() - 1].le));
    let room = drawn.min(usize::from(scale_area.width));
    let pad = room.saturating_sub(format::width(&first) + format::width(&last));
    let scale = if buckets.len() == 1 || pad == 0 { first } else { format!("{first}{}{last}", " ".repeat(pad)) };
    Paragraph::new(Line::from(Span::styled(scale, theme.dim))).render(scale_area, buf);
}
