//! The instrumentation audit overlay (`a`): what is missing from the app's instrumentation, per
//! service, and how to fix it, from the snapshot's `audit` entries.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget, Wrap};

use super::{centered, clean};
use crate::snapshot::{ServiceSnapshot, Snapshot};
use crate::tui::app::UiState;

/// Draws the audit findings over `area`.
pub fn render_audit(area: Rect, buf: &mut Buffer, snapshot: &Snapshot, ui: &UiState) {
    let theme = &ui.theme;
    let mut lines = service_lines(snapshot, ui);
    if snapshot.audit.is_empty() {
        lines.push(Line::raw("Nothing to report: the instrumentation looks complete."));
    }
    for entry in &snapshot.audit {
        lines.push(Line::from(vec![
            Span::styled(clean(&entry.service), theme.title),
            Span::styled(format!("  {}", clean(&entry.code)), theme.dim),
        ]));
        lines.push(Line::from(vec![Span::raw("  "), Span::raw(clean(&entry.problem))]));
        lines.push(Line::from(vec![Span::styled("  fix: ", theme.label), Span::raw(clean(&entry.fix))]));
        lines.push(Line::raw(""));
    }
    lines.push(Line::from(Span::styled("Esc or a closes this", theme.dim)));
    let rect = centered(area, area.width.saturating_sub(4).min(100), area.height);
    Clear.render(rect, buf);
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(Block::new().borders(Borders::ALL).title(Span::styled(" Instrumentation audit ", theme.title)))
        .render(rect, buf);
}

/// One line per service: language, SDK and the OTLP protocols its exports arrived with.
fn service_lines<'a>(snapshot: &Snapshot, ui: &UiState) -> Vec<Line<'a>> {
    let theme = &ui.theme;
    let mut lines = Vec::new();
    for service in &snapshot.services {
        lines.push(Line::from(vec![
            Span::styled(clean(&service.name), theme.title),
            Span::styled(format!("  {}", clean(&describe(service))), theme.dim),
        ]));
    }
    if !lines.is_empty() {
        lines.push(Line::raw(""));
    }
    lines
}

/// `python, opentelemetry 1.45.1, grpc+gzip x380, 40000 spans, 1400 requests`.
fn describe(service: &ServiceSnapshot) -> String {
    let mut parts = Vec::new();
    if !service.language.is_empty() {
        parts.push(service.language.clone());
    }
    let sdk = format!("{} {}", service.sdk_name, service.sdk_version);
    if !sdk.trim().is_empty() {
        parts.push(sdk.trim().to_string());
    }
    for p in &service.protocols {
        let compression = if p.compression == "none" { String::new() } else { format!("+{}", p.compression) };
        parts.push(format!("{}{compression} x{}", p.protocol, p.exports));
    }
    parts.push(format!("{} spans, {} requests", service.spans, service.requests));
    parts.join(", ")
}
