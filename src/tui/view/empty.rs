//! The empty state, before any span arrives: how to point an OpenTelemetry exporter here, with
//! the addresses apmtop actually listens on.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget, Wrap};

use crate::tui::app::UiState;

/// Draws the exporter set-up instructions.
pub fn render_empty(area: Rect, buf: &mut Buffer, ui: &UiState) {
    let theme = &ui.theme;
    if !ui.live {
        // A saved report taken before any span arrived: nothing listens here.
        let text = "This saved report holds no spans: it was taken before any arrived.";
        Paragraph::new(Span::styled(text, theme.title)).wrap(Wrap { trim: false }).render(area, buf);
        return;
    }
    let env = |name: &str, value: String| {
        Line::from(vec![Span::raw("    "), Span::styled(format!("{name}={value}"), theme.value)])
    };
    let lines = vec![
        Line::from(Span::styled("Waiting for spans. Point an OpenTelemetry SDK here:", theme.title)),
        Line::raw(""),
        Line::from(Span::styled("  OTLP/gRPC", theme.label)),
        env("OTEL_TRACES_EXPORTER", "otlp".to_string()),
        env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint(ui.grpc_addr)),
        Line::raw(""),
        Line::from(Span::styled("  OTLP/HTTP", theme.label)),
        env("OTEL_TRACES_EXPORTER", "otlp".to_string()),
        env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint(ui.http_addr)),
        env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_string()),
        Line::raw(""),
        Line::from(Span::styled(
            "Both ports accept both protocols. Requests show up a couple of seconds after they end.",
            theme.dim,
        )),
    ];
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(Block::new().borders(Borders::TOP).title(" Getting started "))
        .render(area, buf);
}

/// `http://HOST:PORT` an exporter on this machine can reach: a wildcard listen address becomes
/// loopback.
fn endpoint(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_addresses_become_loopback() {
        assert_eq!(endpoint("0.0.0.0:4317".parse().expect("addr")), "http://127.0.0.1:4317");
        assert_eq!(endpoint("[::]:4318".parse().expect("addr")), "http://[::1]:4318");
        assert_eq!(endpoint("10.0.0.5:4318".parse().expect("addr")), "http://10.0.0.5:4318");
    }
}
