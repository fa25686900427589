//! Two reports compared (`apmtop diff OLD NEW`): endpoints matched by service, method and route;
//! per endpoint the change in queries per request (median and most in one request), in p95
//! latency and in N+1 offenders (new, gone, worse: by fingerprint id, worse meaning more repeats
//! in one request), plus endpoints that appeared or went away.
//!
//! A change counts only beyond the relative tolerance and beyond an absolute noise floor (under
//! one query, under one millisecond), so run-to-run jitter is not a regression. A new N+1 always
//! is.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::report::text::{self, amount, ms};
use crate::snapshot::{EndpointSnapshot, Snapshot};
use crate::tui::format::{truncate, width};

/// Changes in latency under this many milliseconds are noise.
pub const LATENCY_NOISE_MS: f64 = 1.0;
/// Changes in queries per request under this many queries are noise.
pub const QUERIES_NOISE: f64 = 1.0;
/// Widest endpoint column in the table.
const MAX_ENDPOINT_COLUMN: usize = 60;
/// Longest statement quoted in the N+1 list.
const MAX_STATEMENT_CHARS: usize = 80;

/// How one figure moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trend {
    /// Higher, beyond the tolerance and the noise floor.
    Worse,
    /// Lower, beyond both.
    Better,
    /// Within them.
    Same,
}

/// One figure before and after.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figure {
    /// Before.
    pub old: f64,
    /// After.
    pub new: f64,
    /// How it moved.
    pub trend: Trend,
}

impl Figure {
    fn compare(old: f64, new: f64, tolerance_percent: f64, noise: f64) -> Figure {
        let delta = new - old;
        let beyond_tolerance = if old > 0.0 { (delta.abs() / old) * 100.0 > tolerance_percent } else { delta != 0.0 };
        let trend = if delta.abs() < noise || !beyond_tolerance {
            Trend::Same
        } else if delta > 0.0 {
            Trend::Worse
        } else {
            Trend::Better
        };
        Figure { old, new, trend }
    }

    /// The relative change in percent, when there was something before.
    pub fn percent(&self) -> Option<f64> {
        (self.old > 0.0).then(|| (self.new - self.old) / self.old * 100.0)
    }
}

/// What happened to one N+1 offender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NPlusOneStatus {
    /// Not an offender before.
    New,
    /// More repeats in one request than before.
    Worse,
    /// Fewer repeats in one request.
    Better,
    /// No longer an offender.
    Gone,
}

impl NPlusOneStatus {
    fn label(self) -> &'static str {
        match self {
            NPlusOneStatus::New => "new",
            NPlusOneStatus::Worse => "worse",
            NPlusOneStatus::Better => "better",
            NPlusOneStatus::Gone => "gone",
        }
    }
}

/// One N+1 offender that changed.
#[derive(Debug, Clone, PartialEq)]
pub struct NPlusOneChange {
    /// What happened.
    pub status: NPlusOneStatus,
    /// Its fingerprint id.
    pub fingerprint_id: String,
    /// Its normalized statement.
    pub fingerprint: String,
    /// Most repeats in one request before (0 when new).
    pub old_max: u64,
    /// Most repeats in one request after (0 when gone).
    pub new_max: u64,
}

/// Where an endpoint stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EndpointStatus {
    /// Something got worse.
    Worse,
    /// Only in the new report.
    New,
    /// Only in the old report.
    Gone,
    /// Something got better, nothing worse.
    Better,
    /// Nothing moved beyond the tolerance.
    Same,
}

impl EndpointStatus {
    fn label(self) -> &'static str {
        match self {
            EndpointStatus::Worse => "worse",
            EndpointStatus::New => "new",
            EndpointStatus::Gone => "gone",
            EndpointStatus::Better => "better",
            EndpointStatus::Same => "same",
        }
    }
}

/// One endpoint, before and after.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointDiff {
    /// `METHOD route [service]`, cleaned of control characters.
    pub endpoint: String,
    /// Where it stands.
    pub status: EndpointStatus,
    /// Median queries per request (`None` when the endpoint is in one report only).
    pub queries_p50: Option<Figure>,
    /// Most queries in one request.
    pub queries_max: Option<Figure>,
    /// p95 latency, milliseconds.
    pub p95_ms: Option<Figure>,
    /// The endpoint's figures where it exists in one report only: (queries p50, queries max, p95).
    pub only: Option<(f64, f64, f64)>,
    /// N+1 offenders that changed.
    pub n_plus_one: Vec<NPlusOneChange>,
}

impl EndpointDiff {
    /// Whether this counts as a regression: a figure worse beyond the tolerance, or an N+1 that
    /// is new or runs more often.
    pub fn regressed(&self) -> bool {
        let figures = [self.queries_p50, self.queries_max, self.p95_ms];
        figures.iter().flatten().any(|f| f.trend == Trend::Worse)
            || self.n_plus_one.iter().any(|c| matches!(c.status, NPlusOneStatus::New | NPlusOneStatus::Worse))
    }
}

/// Two reports compared.
#[derive(Debug, Clone, Default)]
pub struct Diff {
    /// Endpoints, worst first.
    pub endpoints: Vec<EndpointDiff>,
    /// The tolerance used, percent.
    pub tolerance_percent: f64,
}

impl Diff {
    /// Endpoints that regressed.
    pub fn regressions(&self) -> usize {
        self.endpoints.iter().filter(|e| e.regressed()).count()
    }
}

type Key<'a> = (&'a str, &'a str, &'a str);

fn key(endpoint: &EndpointSnapshot) -> Key<'_> {
    (&endpoint.service, &endpoint.method, &endpoint.route)
}

/// Compares `old` with `new`; changes within `tolerance_percent` (or the noise floors) are "same".
pub fn diff(old: &Snapshot, new: &Snapshot, tolerance_percent: f64) -> Diff {
    let old_by_key: BTreeMap<Key, &EndpointSnapshot> = old.endpoints.iter().map(|e| (key(e), e)).collect();
    let new_by_key: BTreeMap<Key, &EndpointSnapshot> = new.endpoints.iter().map(|e| (key(e), e)).collect();
    let mut endpoints = Vec::new();
    for endpoint in &new.endpoints {
        let row = match old_by_key.get(&key(endpoint)) {
            Some(before) => compare(before, endpoint, tolerance_percent),
            None => one_sided(endpoint, EndpointStatus::New),
        };
        endpoints.push(row);
    }
    for endpoint in &old.endpoints {
        if !new_by_key.contains_key(&key(endpoint)) {
            endpoints.push(one_sided(endpoint, EndpointStatus::Gone));
        }
    }
    // Stable: within a status, the new report's order (slowest first) is kept.
    endpoints.sort_by_key(|e| e.status);
    Diff { endpoints, tolerance_percent }
}

fn label(endpoint: &EndpointSnapshot) -> String {
    text::clean_line(&text::endpoint_with_service(&endpoint.service, &endpoint.method, &endpoint.route))
}

fn one_sided(endpoint: &EndpointSnapshot, status: EndpointStatus) -> EndpointDiff {
    let n_plus_one = endpoint
        .n_plus_one
        .iter()
        .map(|offender| {
            let (change, old_max, new_max) = match status {
                EndpointStatus::Gone => (NPlusOneStatus::Gone, offender.repeats.max, 0),
                _ => (NPlusOneStatus::New, 0, offender.repeats.max),
            };
            NPlusOneChange {
                status: change,
                fingerprint_id: offender.fingerprint_id.clone(),
                fingerprint: offender.fingerprint.clone(),
                old_max,
                new_max,
            }
        })
        .collect();
    EndpointDiff {
        endpoint: label(endpoint),
        status,
        queries_p50: None,
        queries_max: None,
        p95_ms: None,
        only: Some((endpoint.queries_per_request.p50, endpoint.queries_per_request.max, endpoint.latency_ms.p95)),
        n_plus_one,
    }
}

fn compare(old: &EndpointSnapshot, new: &EndpointSnapshot, tolerance: f64) -> EndpointDiff {
    let queries_p50 =
        Figure::compare(old.queries_per_request.p50, new.queries_per_request.p50, tolerance, QUERIES_NOISE);
    let queries_max =
        Figure::compare(old.queries_per_request.max, new.queries_per_request.max, tolerance, QUERIES_NOISE);
    let p95_ms = Figure::compare(old.latency_ms.p95, new.latency_ms.p95, tolerance, LATENCY_NOISE_MS);
    let mut n_plus_one = Vec::new();
    for offender in &new.n_plus_one {
        let before = old.n_plus_one.iter().find(|o| o.fingerprint_id == offender.fingerprint_id);
        let status = match before {
            None => Some(NPlusOneStatus::New),
            Some(before) => {
                let repeats =
                    Figure::compare(before.repeats.max as f64, offender.repeats.max as f64, tolerance, QUERIES_NOISE);
                match repeats.trend {
                    Trend::Worse => Some(NPlusOneStatus::Worse),
                    Trend::Better => Some(NPlusOneStatus::Better),
                    Trend::Same => None,
                }
            }
        };
        if let Some(status) = status {
            n_plus_one.push(NPlusOneChange {
                status,
                fingerprint_id: offender.fingerprint_id.clone(),
                fingerprint: offender.fingerprint.clone(),
                old_max: before.map_or(0, |b| b.repeats.max),
                new_max: offender.repeats.max,
            });
        }
    }
    for offender in &old.n_plus_one {
        if !new.n_plus_one.iter().any(|o| o.fingerprint_id == offender.fingerprint_id) {
            n_plus_one.push(NPlusOneChange {
                status: NPlusOneStatus::Gone,
                fingerprint_id: offender.fingerprint_id.clone(),
                fingerprint: offender.fingerprint.clone(),
                old_max: offender.repeats.max,
                new_max: 0,
            });
        }
    }
    n_plus_one.sort_by_key(|c| c.status);
    let mut row = EndpointDiff {
        endpoint: label(new),
        status: EndpointStatus::Same,
        queries_p50: Some(queries_p50),
        queries_max: Some(queries_max),
        p95_ms: Some(p95_ms),
        only: None,
        n_plus_one,
    };
    let figures = [queries_p50, queries_max, p95_ms];
    row.status = if row.regressed() {
        EndpointStatus::Worse
    } else if figures.iter().any(|f| f.trend == Trend::Better) || !row.n_plus_one.is_empty() {
        EndpointStatus::Better
    } else {
        EndpointStatus::Same
    };
    row
}

/// The diff as an aligned table of the endpoints that changed, the N+1 changes with their
/// fingerprints, and a summary line.
pub fn render_text(diff: &Diff) -> String {
    let header = ["STATUS", "ENDPOINT", "QUERIES/REQ p50", "QUERIES/REQ max", "p95 LATENCY", "N+1"];
    let mut rows: Vec<[String; 6]> = Vec::new();
    for endpoint in diff.endpoints.iter().filter(|e| e.status != EndpointStatus::Same) {
        let (p50, max, p95) = match (endpoint.queries_p50, endpoint.queries_max, endpoint.p95_ms, endpoint.only) {
            (Some(p50), Some(max), Some(p95), _) => (figure(p50, amount), figure(max, amount), figure(p95, ms)),
            (_, _, _, Some((p50, max, p95))) if endpoint.status == EndpointStatus::New => {
                (format!("- → {}", amount(p50)), format!("- → {}", amount(max)), format!("- → {}", ms(p95)))
            }
            (_, _, _, Some((p50, max, p95))) => {
                (format!("{} → -", amount(p50)), format!("{} → -", amount(max)), format!("{} → -", ms(p95)))
            }
            _ => Default::default(),
        };
        rows.push([
            endpoint.status.label().to_string(),
            truncate(&endpoint.endpoint, MAX_ENDPOINT_COLUMN),
            p50,
            max,
            p95,
            n_plus_one_summary(endpoint),
        ]);
    }
    let mut out = String::new();
    let same = diff.endpoints.iter().filter(|e| e.status == EndpointStatus::Same).count();
    if rows.is_empty() {
        let _ = writeln!(
            out,
            "No endpoint changed beyond {}% ({} compared).",
            diff.tolerance_percent,
            diff.endpoints.len()
        );
    } else {
        let mut widths = header.map(width);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(cell));
            }
        }
        let mut line = |cells: &[String]| {
            let mut text = String::new();
            for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
                let pad = w.saturating_sub(width(cell));
                // Text columns are left-aligned, figures right-aligned.
                if i < 2 || i == 5 {
                    text.push_str(cell);
                    if i < 5 {
                        text.push_str(&" ".repeat(pad + 2));
                    }
                } else {
                    text.push_str(&" ".repeat(pad));
                    text.push_str(cell);
                    text.push_str("  ");
                }
            }
            let _ = writeln!(out, "{}", text.trim_end());
        };
        line(&header.map(String::from));
        for row in &rows {
            line(row);
        }
        if same > 0 {
            let _ = writeln!(
                out,
                "({} unchanged within {}%)",
                text::plural(same, "endpoint", "endpoints"),
                diff.tolerance_percent
            );
        }
    }
    let changes: Vec<(&EndpointDiff, &NPlusOneChange)> =
        diff.endpoints.iter().flat_map(|e| e.n_plus_one.iter().map(move |c| (e, c))).collect();
    if !changes.is_empty() {
        out.push_str("\nN+1 changes:\n");
        for (endpoint, change) in changes {
            let repeats = match change.status {
                NPlusOneStatus::New => format!("up to {} per request", change.new_max),
                NPlusOneStatus::Gone => format!("was up to {} per request", change.old_max),
                _ => format!("up to {} → {} per request", change.old_max, change.new_max),
            };
            let _ = writeln!(
                out,
                "  {:<6} {}  {}  {}  {}",
                change.status.label(),
                endpoint.endpoint,
                text::clean_line(&change.fingerprint_id),
                repeats,
                text::clip(&text::clean_line(&change.fingerprint), MAX_STATEMENT_CHARS)
            );
        }
    }
    let count = |status| diff.endpoints.iter().filter(|e| e.status == status).count();
    let n_plus_one = |status| diff.endpoints.iter().flat_map(|e| &e.n_plus_one).filter(|c| c.status == status).count();
    let _ = writeln!(
        out,
        "\napmtop diff: {} worse, {} better, {} new, {} gone, {} unchanged; N+1: {} new, {} worse, {} gone",
        count(EndpointStatus::Worse),
        count(EndpointStatus::Better),
        count(EndpointStatus::New),
        count(EndpointStatus::Gone),
        count(EndpointStatus::Same),
        n_plus_one(NPlusOneStatus::New),
        n_plus_one(NPlusOneStatus::Worse),
        n_plus_one(NPlusOneStatus::Gone),
    );
    out
}

/// `42 → 61 (+45%)`, with `!` after a regression.
fn figure(figure: Figure, format: impl Fn(f64) -> String) -> String {
    let mut cell = format!("{} → {}", format(figure.old), format(figure.new));
    if let Some(percent) = figure.percent().filter(|p| p.abs() >= 0.5) {
        let _ = write!(cell, " ({percent:+.0}%)");
    } else if figure.old == 0.0 && figure.new > 0.0 {
        cell.push_str(" (new)");
    }
    if figure.trend == Trend::Worse {
        cell.push_str(" !");
    }
    cell
}

fn n_plus_one_summary(endpoint: &EndpointDiff) -> String {
    let mut parts = Vec::new();
    for status in [NPlusOneStatus::New, NPlusOneStatus::Worse, NPlusOneStatus::Better, NPlusOneStatus::Gone] {
        let n = endpoint.n_plus_one.iter().filter(|c| c.status == status).count();
        if n > 0 {
            parts.push(format!("{n} {}", status.label()));
        }
    }
    if parts.is_empty() { "-".to_string() } else { parts.join(", ") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::testing::sample_snapshot;
    use rstest::rstest;

    #[rstest]
    #[case::same(100.0, 105.0, 10.0, 1.0, Trend::Same)]
    #[case::worse(100.0, 120.0, 10.0, 1.0, Trend::Worse)]
    #[case::better(100.0, 80.0, 10.0, 1.0, Trend::Better)]
    #[case::tiny_absolute_change_is_noise(0.2, 0.9, 10.0, 1.0, Trend::Same)]
    #[case::from_zero(0.0, 3.0, 10.0, 1.0, Trend::Worse)]
    #[case::zero_tolerance(10.0, 11.0, 0.0, 1.0, Trend::Worse)]
    fn figures_move_beyond_tolerance_and_noise(
        #[case] old: f64,
        #[case] new: f64,
        #[case] tolerance: f64,
        #[case] noise: f64,
        #[case] expected: Trend,
    ) {
        assert_eq!(Figure::compare(old, new, tolerance, noise).trend, expected);
    }

    #[test]
    fn a_report_compared_with_itself_has_no_change() {
        let snapshot = sample_snapshot();
        let result = diff(&snapshot, &snapshot, 10.0);
        assert_eq!(result.regressions(), 0);
        assert!(result.endpoints.iter().all(|e| e.status == EndpointStatus::Same && e.n_plus_one.is_empty()));
        assert!(render_text(&result).starts_with("No endpoint changed beyond 10% (5 compared)."));
    }

    #[test]
    fn n_plus_one_offenders_are_new_gone_or_worse_by_fingerprint() {
        let old = sample_snapshot();
        let mut new = sample_snapshot();
        // books: the author N+1 repeats more; orders: its N+1 is fixed; author: a new N+1.
        new.endpoints[1].n_plus_one[0].repeats.max = 90;
        new.endpoints[2].n_plus_one.clear();
        let offender = old.endpoints[2].n_plus_one[0].clone();
        new.endpoints[3].n_plus_one.push(offender);
        let result = diff(&old, &new, 10.0);
        let find = |route: &str| result.endpoints.iter().find(|e| e.endpoint.contains(route)).expect(route);
        assert_eq!(find("/api/books").n_plus_one[0].status, NPlusOneStatus::Worse);
        assert_eq!((find("/api/books").n_plus_one[0].old_max, find("/api/books").n_plus_one[0].new_max), (59, 90));
        assert_eq!(find("/api/orders").n_plus_one[0].status, NPlusOneStatus::Gone);
        assert_eq!(find("/api/orders").status, EndpointStatus::Better);
        assert_eq!(find("/api/authors/{id}").n_plus_one[0].status, NPlusOneStatus::New);
        assert_eq!(find("/api/authors/{id}").status, EndpointStatus::Worse);
        assert_eq!(result.regressions(), 2);
    }

    #[test]
    fn endpoints_new_and_gone_and_figures_worse() {
        let old = sample_snapshot();
        let mut new = sample_snapshot();
        new.endpoints.retain(|e| e.route != "/health");
        let mut fresh = new.endpoints[1].clone();
        fresh.route = "/api/new".to_string();
        new.endpoints.push(fresh);
        new.endpoints[1].latency_ms.p95 = 960.0;
        new.endpoints[1].queries_per_request.p50 = 42.4;
        let result = diff(&old, &new, 10.0);
        let statuses: Vec<(EndpointStatus, &str)> =
            result.endpoints.iter().map(|e| (e.status, e.endpoint.as_str())).collect();
        assert_eq!(statuses[0], (EndpointStatus::Worse, "GET /api/books [library]"));
        assert!(statuses.contains(&(EndpointStatus::New, "GET /api/new [library]")), "{statuses:?}");
        assert!(statuses.contains(&(EndpointStatus::Gone, "GET /health [library]")), "{statuses:?}");
        let books = &result.endpoints[0];
        assert_eq!(books.p95_ms.map(|f| f.trend), Some(Trend::Worse));
        assert_eq!(books.queries_p50.map(|f| f.trend), Some(Trend::Same), "under one query is noise");

        let text = render_text(&result);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("STATUS  ENDPOINT"), "{text}");
        let books_line = lines.iter().find(|l| l.contains("GET /api/books")).expect("books row");
        assert!(books_line.contains("480ms → 960ms (+100%) !"), "{books_line}");
        let header_at = lines[0].find("p95 LATENCY").expect("column");
        let cell_end = books_line.find(" !").expect("cell") + 2;
        assert!(cell_end <= header_at + "p95 LATENCY".len() + 30, "aligned columns:\n{text}");
        assert!(text.contains("\n(3 endpoints unchanged within 10%)\n"), "{text}");
        assert!(
            text.contains("N+1 changes:\n  new    GET /api/new [library]  a1b2c3d4e5f60718  up to 59 per request"),
            "{text}"
        );
        assert!(text.trim_end().ends_with("N+1: 1 new, 0 worse, 0 gone"), "{text}");
    }

    #[test]
    fn rows_of_the_table_line_up() {
        let old = sample_snapshot();
        let mut new = sample_snapshot();
        for endpoint in &mut new.endpoints {
            endpoint.latency_ms.p95 *= 3.0;
        }
        let text = render_text(&diff(&old, &new, 10.0));
        let table: Vec<&str> = text.lines().take_while(|l| !l.is_empty() && !l.starts_with('(')).collect();
        assert!(table.len() >= 5, "{text}");
        // Figures are right-aligned: the first figure cell ends at the same column on every row.
        let column = |line: &str| {
            let arrow = line.find('→').expect("an arrow");
            width(&line[..arrow + line[arrow..].find("  ").expect("a gap after the cell")])
        };
        let rows = &table[1..];
        let first_arrow = column(rows[0]);
        assert!(rows.iter().all(|row| column(row) == first_arrow), "queries p50 column aligned:\n{text}");
    }
}
