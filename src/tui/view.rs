//! Drawing: pure functions of `(&Snapshot, &UiState)` into a ratatui [`Buffer`]. No I/O, no
//! locks, no sends: the same inputs always draw the same screen, which is what the rendering
//! tests rely on.
//!
//! The screen is a two-line header, a tab bar, the active view (or the endpoint detail, a
//! finding's evidence, a trace's waterfall, or the empty state before any span), and a status
//! line; the help and audit overlays draw on top.
//! Every string that came from a span passes through `clean` ([`super::sanitize`]) first.

mod audit;
mod charts;
mod detail;
mod empty;
mod endpoints;
mod findings;
mod header;
mod help;
mod n_plus_one;
mod queries;
mod trace;

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::app::{Action, Tab, UiState};
use super::event::BINDINGS;
use super::sanitize::sanitize;
use crate::snapshot::Snapshot;

/// Key hints on the status line, in order; labels come from the key table.
const HINTS: &[(Action, &str)] = &[
    (Action::ToggleHelp, "help"),
    (Action::Quit, "quit"),
    (Action::Enter, "details"),
    (Action::CycleSort, "sort"),
    (Action::StartFilter, "filter"),
    (Action::TogglePause, "pause"),
    (Action::Export, "export"),
    (Action::ToggleAudit, "audit"),
];

/// Rows around the main area: header, tab bar (1), status line (1).
pub const CHROME_ROWS: u16 = header::HEADER_ROWS + 2;
/// First row of the main area.
const MAIN_TOP: u16 = header::HEADER_ROWS + 1;

/// Where the rows of `tab`'s table are, in a main area `main_height` rows high: the terminal row
/// of the first data row, and how many rows show (mouse clicks map through this).
pub fn table_rows_at(tab: Tab, main_height: u16) -> (u16, u16) {
    let panel = match tab {
        Tab::Endpoints => 0,
        Tab::NPlusOne => n_plus_one::panel_height(main_height),
        Tab::Queries => queries::panel_height(main_height),
        Tab::Findings => findings::panel_height(main_height),
    };
    (MAIN_TOP + 1, main_height.saturating_sub(panel + 1))
}

/// Where the waterfall's rows are, in a main area `main_height` rows high (see [`table_rows_at`]).
pub fn trace_rows_at(main_height: u16) -> (u16, u16) {
    let (top, visible) = trace::rows_at(main_height);
    (MAIN_TOP + top, visible)
}

/// Key hints in the trace view.
const TRACE_HINTS: &[(Action, &str)] = &[
    (Action::ToggleHelp, "help"),
    (Action::Quit, "quit"),
    (Action::Down, "move"),
    (Action::Enter, "unfold/fold N+1"),
    (Action::Back, "back"),
];

/// Key hints in the endpoint detail and a finding's evidence.
const DETAIL_HINTS: &[(Action, &str)] = &[
    (Action::ToggleHelp, "help"),
    (Action::Quit, "quit"),
    (Action::Down, "choose"),
    (Action::Enter, "open the trace"),
    (Action::Back, "back"),
    (Action::Export, "export"),
];

/// Draws the whole dashboard into `frame`.
pub fn render(frame: &mut Frame, snapshot: &Snapshot, ui: &UiState) {
    let area = frame.area();
    render_screen(area, frame.buffer_mut(), snapshot, ui);
}

/// Draws the whole dashboard into `buf` within `area`.
pub fn render_screen(area: Rect, buf: &mut Buffer, snapshot: &Snapshot, ui: &UiState) {
    let [header_area, tabs_area, main_area, status_area] = Layout::vertical([
        Constraint::Length(header::HEADER_ROWS),
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);
    header::render_header(header_area, buf, snapshot, ui);
    render_tabs(tabs_area, buf, snapshot, ui);
    if let Some(trace) = &ui.trace {
        trace::render_trace(main_area, buf, ui, trace);
    } else if let Some(id) = &ui.finding {
        findings::render_evidence(main_area, buf, snapshot, ui, id);
    } else if let Some(id) = &ui.detail {
        detail::render_detail(main_area, buf, snapshot, ui, id);
    } else if snapshot.totals.spans_received == 0 && snapshot.endpoints.is_empty() {
        empty::render_empty(main_area, buf, ui);
    } else {
        match ui.tab {
            Tab::Endpoints => endpoints::render_endpoints(main_area, buf, snapshot, ui),
            Tab::NPlusOne => n_plus_one::render_n_plus_one(main_area, buf, snapshot, ui),
            Tab::Queries => queries::render_queries(main_area, buf, snapshot, ui),
            Tab::Findings => findings::render_findings(main_area, buf, snapshot, ui),
        }
    }
    render_status(status_area, buf, snapshot, ui);
    if ui.help {
        help::render_help(area, buf, ui);
    } else if ui.audit {
        audit::render_audit(main_area, buf, snapshot, ui);
    }
}

/// Untrusted text made safe for the terminal.
pub(crate) fn clean(text: &str) -> String {
    sanitize(text).into_owned()
}

fn render_tabs(area: Rect, buf: &mut Buffer, snapshot: &Snapshot, ui: &UiState) {
    let theme = &ui.theme;
    let offenders: usize = snapshot.endpoints.iter().map(|e| e.n_plus_one.len()).sum();
    let mut spans = vec![Span::raw(" ")];
    for (i, tab) in Tab::ALL.iter().enumerate() {
        let title = match tab {
            Tab::NPlusOne if offenders > 0 => format!(" {} {} ({offenders}) ", i + 1, tab.title()),
            Tab::Findings if !snapshot.findings.is_empty() => {
                format!(" {} {} ({}) ", i + 1, tab.title(), snapshot.findings.len())
            }
            _ => format!(" {} {} ", i + 1, tab.title()),
        };
        let over = ui.detail.is_some() || ui.trace.is_some() || ui.finding.is_some();
        let style = if *tab == ui.tab && !over { theme.tab_active } else { theme.tab };
        spans.push(Span::styled(title, style));
        spans.push(Span::raw(" "));
    }
    if ui.tab == Tab::Endpoints && ui.detail.is_none() {
        spans.push(Span::styled(" sort ", theme.label));
        spans.push(Span::styled(format!("{} ", ui.sort.label()), theme.value));
    }
    if !ui.filter.is_empty() || ui.filtering {
        spans.push(Span::styled(" filter ", theme.label));
        spans.push(Span::styled(clean(&ui.filter), theme.value));
    }
    Paragraph::new(Line::from(spans)).render(area, buf);
}

fn render_status(area: Rect, buf: &mut Buffer, snapshot: &Snapshot, ui: &UiState) {
    let theme = &ui.theme;
    let line = if ui.filtering {
        Line::from(vec![
            Span::styled(" /", theme.key),
            Span::raw(clean(&ui.filter)),
            Span::styled("▏", theme.key),
            Span::styled("  Enter keep  Esc clear", theme.dim),
        ])
    } else if let Some(status) = &ui.status {
        Line::from(Span::styled(format!(" {}", clean(status)), theme.status))
    } else {
        let mut spans = Vec::new();
        let hints = if ui.help || ui.audit {
            HINTS
        } else if ui.trace.is_some() {
            TRACE_HINTS
        } else if ui.finding.is_some() || ui.detail.is_some() {
            DETAIL_HINTS
        } else {
            HINTS
        };
        for (action, name) in hints {
            let Some(binding) = BINDINGS.iter().find(|b| &b.action == action) else { continue };
            let key = binding.label.split(", ").next().unwrap_or(binding.label);
            spans.push(Span::styled(format!(" {key}"), theme.key));
            spans.push(Span::raw(format!(" {name} ")));
            if *action == Action::ToggleAudit && !snapshot.audit.is_empty() {
                spans.push(Span::styled(format!("({}) ", snapshot.audit.len()), theme.warning));
            }
        }
        Line::from(spans)
    };
    Paragraph::new(line).render(area, buf);
}

/// A rectangle of at most `width` x `height` centred in `area`.
fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect { x: area.x + (area.width - width) / 2, y: area.y + (area.height - height) / 2, width, height }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use insta::assert_snapshot;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::snapshot::Snapshot;
    use crate::tui::app::{Action, App, Effect, SortColumn};
    use crate::tui::testing::{sample_snapshot, sample_snapshot_with_findings, sample_trace, sample_ui};

    fn draw(app: &App, width: u16, height: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
        terminal.draw(|frame| render(frame, app.snapshot(), &app.ui)).expect("draw");
        terminal.backend().to_string()
    }

    fn app_with(snapshot: Snapshot, actions: &[Action]) -> App {
        let mut app = App::new(sample_ui(), Arc::new(snapshot));
        for action in actions {
            app.update(action.clone());
        }
        app
    }

    fn app(actions: &[Action]) -> App {
        app_with(sample_snapshot(), actions)
    }

    #[test]
    fn endpoints_80x24() {
        assert_snapshot!(draw(&app(&[Action::Down]), 80, 24));
    }

    #[test]
    fn endpoints_140x40() {
        assert_snapshot!(draw(&app(&[Action::Down]), 140, 40));
    }

    #[test]
    fn endpoints_sorted_by_requests_and_filtered_80x24() {
        let mut actions = vec![Action::StartFilter];
        actions.extend("books".chars().map(Action::FilterInput));
        actions.push(Action::FilterDone);
        let mut app = app(&actions);
        while app.ui.sort != SortColumn::Requests {
            app.update(Action::CycleSort);
        }
        assert_snapshot!(draw(&app, 80, 24));
    }

    #[test]
    fn filter_being_typed_80x24() {
        assert_snapshot!(draw(&app(&[Action::StartFilter, Action::FilterInput('a')]), 80, 24));
    }

    #[test]
    fn n_plus_one_80x24() {
        assert_snapshot!(draw(&app(&[Action::ShowTab(Tab::NPlusOne)]), 80, 24));
    }

    #[test]
    fn n_plus_one_140x40() {
        assert_snapshot!(draw(&app(&[Action::ShowTab(Tab::NPlusOne)]), 140, 40));
    }

    #[test]
    fn queries_80x24() {
        assert_snapshot!(draw(&app(&[Action::ShowTab(Tab::Queries)]), 80, 24));
    }

    #[test]
    fn queries_140x40() {
        assert_snapshot!(draw(&app(&[Action::ShowTab(Tab::Queries)]), 140, 40));
    }

    #[test]
    fn detail_80x24() {
        assert_snapshot!(draw(&app(&[Action::Down, Action::Enter]), 80, 24));
    }

    #[test]
    fn detail_last_slowest_request_selected_80x24() {
        assert_snapshot!(draw(&app(&[Action::Down, Action::Enter, Action::End]), 80, 24));
    }

    /// The `/api/books` detail, then Enter on its first trace (the N+1 example), answered with
    /// the sample trace; then `moves` Down presses and, if `unfold`, Enter.
    fn trace_app(moves: usize, unfold: bool) -> App {
        let mut app = app(&[Action::Down, Action::Enter]);
        let Some(Effect::FetchTrace(asked)) = app.update(Action::Enter) else { panic!("no trace request") };
        app.update(Action::TraceLoaded(asked.to_string(), Some(Arc::new(sample_trace()))));
        for _ in 0..moves {
            app.update(Action::Down);
        }
        if unfold {
            app.update(Action::Enter);
        }
        app
    }

    #[test]
    fn trace_waterfall_80x24() {
        assert_snapshot!(draw(&trace_app(3, false), 80, 24));
    }

    #[test]
    fn trace_waterfall_140x40() {
        assert_snapshot!(draw(&trace_app(4, false), 140, 40));
    }

    #[test]
    fn trace_waterfall_unfolded_140x40() {
        assert_snapshot!(draw(&trace_app(3, true), 140, 40));
    }

    #[test]
    fn trace_pending_and_missing_80x24() {
        let mut app = app(&[Action::Down, Action::Enter]);
        let Some(Effect::FetchTrace(asked)) = app.update(Action::Enter) else { panic!("no trace request") };
        let pending = draw(&app, 80, 24);
        assert!(pending.contains("Asking for the spans"), "{pending}");
        app.update(Action::TraceLoaded(asked.to_string(), None));
        assert_snapshot!(draw(&app, 80, 24));
    }

    #[test]
    fn findings_80x24() {
        assert_snapshot!(draw(&app_with(sample_snapshot_with_findings(), &[Action::ShowTab(Tab::Findings)]), 80, 24));
    }

    #[test]
    fn findings_140x40() {
        let app = app_with(sample_snapshot_with_findings(), &[Action::ShowTab(Tab::Findings), Action::Down]);
        assert_snapshot!(draw(&app, 140, 40));
    }

    #[test]
    fn finding_evidence_80x24() {
        let actions = [Action::ShowTab(Tab::Findings), Action::Down, Action::Enter];
        assert_snapshot!(draw(&app_with(sample_snapshot_with_findings(), &actions), 80, 24));
    }

    #[test]
    fn finding_evidence_140x40() {
        let actions = [Action::ShowTab(Tab::Findings), Action::Down, Action::Enter];
        assert_snapshot!(draw(&app_with(sample_snapshot_with_findings(), &actions), 140, 40));
    }

    #[test]
    fn findings_empty_80x24() {
        let screen = draw(&app(&[Action::ShowTab(Tab::Findings)]), 80, 24);
        assert!(screen.contains("No finding yet"), "{screen}");
    }

    /// A minute of snapshots four times a second, requests rising and falling, window cycled.
    fn busy_app() -> App {
        let mut app = app(&[Action::CycleWindow]);
        let mut snapshot = sample_snapshot();
        for second in 0..60u64 {
            for quarter in 0..4 {
                let at = std::time::UNIX_EPOCH
                    + std::time::Duration::from_millis(1_767_323_045_000 + second * 1000 + quarter * 250);
                snapshot.generated_at = humantime::format_rfc3339_millis(at).to_string();
                snapshot.totals.requests += 2 + (second % 20);
                snapshot.totals.spans_received += 30 * (2 + (second % 20));
                app.update(Action::Snapshot(Arc::new(snapshot.clone())));
            }
        }
        app.update(Action::Back);
        app
    }

    #[test]
    fn header_with_window_and_sparkline_80x24() {
        assert_snapshot!(draw(&busy_app(), 80, 24));
    }

    #[test]
    fn header_with_window_and_sparkline_140x40() {
        assert_snapshot!(draw(&busy_app(), 140, 40));
    }

    #[test]
    fn detail_140x40() {
        assert_snapshot!(draw(&app(&[Action::Down, Action::Enter]), 140, 40));
    }

    #[test]
    fn detail_lists_the_endpoints_top_query_shapes_below_its_slowest_requests() {
        let screen = draw(&app(&[Action::Down, Action::Enter]), 140, 70);
        let at = |text: &str| screen.find(text).unwrap_or_else(|| panic!("{text:?} missing:\n{screen}"));
        assert!(at("Slowest requests") < at("Top query shapes"));
        // `/api/books` runs the author lookup and the count, not the order items query.
        assert!(screen.contains("4800 calls · p95 600µs"), "{screen}");
        assert!(!screen.contains("order_item.sku"), "{screen}");
    }

    #[test]
    fn help_80x24() {
        assert_snapshot!(draw(&app(&[Action::ToggleHelp]), 80, 24));
    }

    #[test]
    fn help_140x40() {
        assert_snapshot!(draw(&app(&[Action::ToggleHelp]), 140, 40));
    }

    #[test]
    fn audit_80x24() {
        assert_snapshot!(draw(&app(&[Action::ToggleAudit]), 80, 24));
    }

    #[test]
    fn paused_with_export_status_80x24() {
        let app = app(&[Action::TogglePause, Action::Exported(Ok("/tmp/apmtop-snapshot-x.json".into()))]);
        assert_snapshot!(draw(&app, 80, 24));
    }

    #[test]
    fn header_with_rates_80x24() {
        let mut later = sample_snapshot();
        later.generated_at = "2026-01-02T03:04:09Z".to_string();
        later.totals.spans_received += 4_000;
        later.totals.requests += 100;
        assert_snapshot!(draw(&app(&[Action::Snapshot(Arc::new(later))]), 80, 24));
    }

    #[test]
    fn empty_state_80x24() {
        assert_snapshot!(draw(&app_with(Snapshot::default(), &[]), 80, 24));
    }

    #[test]
    fn an_empty_saved_report_does_not_teach_exporter_setup() {
        let mut app = app_with(Snapshot::default(), &[]);
        app.ui.live = false;
        let screen = draw(&app, 80, 24);
        assert!(screen.contains("saved report holds no spans"), "{screen}");
        assert!(!screen.contains("OTEL_EXPORTER_OTLP_ENDPOINT"), "{screen}");
        assert!(screen.contains("read-only"), "{screen}");
    }

    #[test]
    fn empty_state_140x40() {
        assert_snapshot!(draw(&app_with(Snapshot::default(), &[]), 140, 40));
    }

    #[test]
    fn spans_but_no_requests_point_to_the_audit_80x24() {
        let mut snapshot = sample_snapshot();
        snapshot.endpoints.clear();
        snapshot.queries.clear();
        assert_snapshot!(draw(&app_with(snapshot, &[]), 80, 24));
    }

    #[test]
    fn tiny_terminal_does_not_panic() {
        for (w, h) in [(1, 1), (10, 3), (20, 5), (40, 10)] {
            for actions in [
                vec![],
                vec![Action::Enter],
                vec![Action::ToggleHelp],
                vec![Action::ToggleAudit],
                vec![Action::ShowTab(Tab::NPlusOne)],
                vec![Action::ShowTab(Tab::Queries)],
                vec![Action::ShowTab(Tab::Findings), Action::Enter],
                vec![Action::Enter, Action::Enter],
            ] {
                draw(&app(&actions), w, h);
            }
            draw(&app_with(Snapshot::default(), &[]), w, h);
            draw(&trace_app(3, true), w, h);
            draw(&app_with(sample_snapshot_with_findings(), &[Action::ShowTab(Tab::Findings)]), w, h);
            draw(&app_with(sample_snapshot_with_findings(), &[Action::ShowTab(Tab::Findings), Action::Enter]), w, h);
        }
    }

    #[test]
    fn escape_sequences_in_span_text_are_rendered_inert() {
        let mut snapshot = sample_snapshot();
        snapshot.endpoints[0].route = "/evil\u{1b}]0;pwned\u{7}\u{1b}[2J\r/x".to_string();
        snapshot.queries[0].fingerprint = "SELECT \u{1b}[31m1\u{9b}2J".to_string();
        for tab in Tab::ALL {
            let app = app_with(snapshot.clone(), &[Action::ShowTab(tab), Action::Enter]);
            let mut terminal = Terminal::new(TestBackend::new(140, 40)).expect("test terminal");
            terminal.draw(|frame| render(frame, app.snapshot(), &app.ui)).expect("draw");
            for cell in terminal.backend().buffer().content() {
                assert!(!cell.symbol().chars().any(char::is_control), "control char in {:?}", cell.symbol());
            }
        }
    }
}
