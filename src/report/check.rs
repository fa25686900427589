//! Budgets held against a report (`apmtop check`): every applicable budget of every endpoint
//! becomes one [`Check`], passed or with its violations, so the text output can list what broke
//! and the JUnit output can show one test case per budget per endpoint.
//!
//! Budgets: no N+1 (unless allowed or allow-listed), most queries in any one request, most
//! duplicated statements, highest p95 latency, and findings of chosen categories or severities.
//! Per-endpoint values come from the first matching `[[routes]]` entry, else `[budgets]`.

use std::fmt::Write;

use crate::config::{Config, NPlusOnePolicy};
use crate::report::text::{self, ms};
use crate::snapshot::{EndpointSnapshot, FindingSnapshot, Snapshot};

/// Longest statement quoted in a violation line.
const MAX_STATEMENT_CHARS: usize = 80;

/// Where findings not tied to an endpoint row are checked: those about a query shape as a whole,
/// and those naming an endpoint the report has no row for.
pub const ACROSS_ENDPOINTS: &str = "(across endpoints)";

/// One kind of budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BudgetKind {
    /// No N+1 offender outside the allow-list.
    NPlusOne,
    /// Most queries in any one request.
    MaxQueriesPerRequest,
    /// Most duplicated statements.
    MaxDuplicates,
    /// Highest p95 latency.
    MaxP95Ms,
    /// No finding of the listed categories or severities.
    Findings,
}

impl BudgetKind {
    /// The config key that sets it.
    pub fn key(self) -> &'static str {
        match self {
            BudgetKind::NPlusOne => "n_plus_one",
            BudgetKind::MaxQueriesPerRequest => "max_queries_per_request",
            BudgetKind::MaxDuplicates => "max_duplicates",
            BudgetKind::MaxP95Ms => "max_p95_ms",
            BudgetKind::Findings => "fail_on_findings",
        }
    }
}

/// One budget applied to one endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// `METHOD route [service]`, or [`ACROSS_ENDPOINTS`]; cleaned of control characters.
    pub subject: String,
    /// Which budget.
    pub budget: BudgetKind,
    /// The budget as the user reads it (`30`, `no N+1`, `300ms (routes "GET /api/*")`).
    pub limit: String,
    /// What broke it, one figure each; empty when the budget holds.
    pub violations: Vec<String>,
}

impl Check {
    /// Whether the budget holds.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Every check of a report.
#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    /// Checks in endpoint order, budgets in [`BudgetKind`] order within an endpoint.
    pub checks: Vec<Check>,
    /// Endpoints checked.
    pub endpoints: usize,
}

impl Evaluation {
    /// Checks with at least one violation.
    pub fn failed(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|check| !check.passed())
    }

    /// Whether every budget holds.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(Check::passed)
    }

    /// Violations across all checks.
    pub fn violation_count(&self) -> usize {
        self.checks.iter().map(|check| check.violations.len()).sum()
    }
}

/// Holds `snapshot` to the budgets of `config`.
pub fn evaluate(snapshot: &Snapshot, config: &Config) -> Evaluation {
    let budgets = &config.budgets;
    let mut checks = Vec::new();
    let mut matched = vec![false; snapshot.findings.len()];
    for endpoint in &snapshot.endpoints {
        let label = text::endpoint_label(&endpoint.method, &endpoint.route);
        let rule = config.rule_for(&endpoint.service, &label);
        let limits = rule.map(|r| &r.limits);
        let subject =
            text::clean_line(&text::endpoint_with_service(&endpoint.service, &endpoint.method, &endpoint.route));
        // The budget as shown, saying which `[[routes]]` entry set it when one did.
        let limit = |value: String, set_by_rule: bool| match rule {
            Some(rule) if set_by_rule => format!("{value} (routes {:?})", text::clean_line(&rule.pattern)),
            _ => value,
        };
        let mut check = |budget, limit, violations| {
            checks.push(Check { subject: subject.clone(), budget, limit, violations });
        };

        let route_policy = limits.and_then(|l| l.n_plus_one);
        if route_policy.unwrap_or(budgets.n_plus_one) == NPlusOnePolicy::Forbid {
            check(
                BudgetKind::NPlusOne,
                limit("no N+1".to_string(), route_policy.is_some()),
                n_plus_one_violations(endpoint, &budgets.allow_n_plus_one),
            );
        }
        let route_max = limits.and_then(|l| l.max_queries_per_request);
        if let Some(max) = route_max.or(budgets.max_queries_per_request) {
            let figure = endpoint.queries_per_request;
            let violations = if figure.max > max as f64 {
                vec![format!(
                    "{} queries in one request (median {})",
                    text::amount(figure.max),
                    text::amount(figure.p50)
                )]
            } else {
                Vec::new()
            };
            check(BudgetKind::MaxQueriesPerRequest, limit(max.to_string(), route_max.is_some()), violations);
        }
        let route_max = limits.and_then(|l| l.max_duplicates);
        if let Some(max) = route_max.or(budgets.max_duplicates) {
            check(
                BudgetKind::MaxDuplicates,
                limit(max.to_string(), route_max.is_some()),
                duplicate_violations(endpoint, max),
            );
        }
        let route_max = limits.and_then(|l| l.max_p95_ms);
        if let Some(max) = route_max.or(budgets.max_p95_ms) {
            let p95 = endpoint.latency_ms.p95;
            let violations = if p95 > max {
                let requests = text::plural(endpoint.requests as usize, "request", "requests");
                vec![format!("p95 latency {} over {requests}", ms(p95))]
            } else {
                Vec::new()
            };
            check(BudgetKind::MaxP95Ms, limit(ms(max), route_max.is_some()), violations);
        }
        if !budgets.fail_on_findings.is_empty() {
            let mut mine = Vec::new();
            for (finding, matched) in snapshot.findings.iter().zip(&mut matched) {
                if finding.endpoint.as_ref().is_some_and(|e| {
                    e.service == endpoint.service && e.method == endpoint.method && e.route == endpoint.route
                }) {
                    *matched = true;
                    mine.push(finding);
                }
            }
            let (limit, violations) = findings_budget(mine.into_iter(), config);
            check(BudgetKind::Findings, limit, violations);
        }
    }
    if !budgets.fail_on_findings.is_empty() {
        // Findings about a query shape as a whole, or about an endpoint without a row.
        let rest = snapshot.findings.iter().zip(&matched).filter(|(_, matched)| !**matched).map(|(f, _)| f);
        let (limit, violations) = findings_budget(rest, config);
        checks.push(Check { subject: ACROSS_ENDPOINTS.to_string(), budget: BudgetKind::Findings, limit, violations });
    }
    Evaluation { checks, endpoints: snapshot.endpoints.len() }
}

fn n_plus_one_violations(endpoint: &EndpointSnapshot, allowed: &[String]) -> Vec<String> {
    endpoint
        .n_plus_one
        .iter()
        .filter(|offender| !allow_listed(allowed, &offender.fingerprint_id, &offender.fingerprint))
        .map(|offender| {
            format!(
                "N+1 query {} runs up to {} times in one request ({} affected): {}",
                text::clean_line(&offender.fingerprint_id),
                offender.repeats.max,
                text::plural(offender.requests_affected as usize, "request", "requests"),
                text::clip(&text::clean_line(&offender.fingerprint), MAX_STATEMENT_CHARS)
            )
        })
        .collect()
}

fn duplicate_violations(endpoint: &EndpointSnapshot, max: u64) -> Vec<String> {
    let count = endpoint.duplicates.len();
    if count as u64 <= max {
        return Vec::new();
    }
    let ids: Vec<String> = endpoint.duplicates.iter().take(5).map(|d| text::clean_line(&d.fingerprint_id)).collect();
    vec![format!(
        "{} ({}{})",
        text::plural(count, "duplicated statement", "duplicated statements"),
        ids.join(", "),
        if count > ids.len() { ", ..." } else { "" }
    )]
}

/// The findings budget's limit text and the findings among `findings` that break it.
fn findings_budget<'a>(findings: impl Iterator<Item = &'a FindingSnapshot>, config: &Config) -> (String, Vec<String>) {
    let budgets = &config.budgets;
    let violations = findings
        .filter(|finding| {
            budgets.fail_on_findings.iter().any(|kind| *kind == finding.category || *kind == finding.severity)
        })
        .filter(|finding| !finding_allowed(finding, config))
        .map(|finding| {
            let mut line = format!(
                "{} finding {}: {}",
                text::clean_line(&finding.severity),
                text::clean_line(&finding.category),
                text::clip(&text::clean_line(&finding.title), MAX_STATEMENT_CHARS)
            );
            let _ = write!(line, ", {} in total", ms(finding.cost_ms_total));
            if !finding.id.is_empty() {
                let _ = write!(line, " (id {})", text::clean_line(&finding.id));
            }
            line
        })
        .collect();
    (format!("no {} findings", budgets.fail_on_findings.join("/")), violations)
}

fn finding_allowed(finding: &FindingSnapshot, config: &Config) -> bool {
    let budgets = &config.budgets;
    let id = finding.fingerprint_id.as_deref().unwrap_or("");
    let fingerprint = finding.fingerprint.as_deref().unwrap_or("");
    if !finding.id.is_empty() && budgets.allow_findings.iter().any(|allowed| allowed.eq_ignore_ascii_case(&finding.id))
    {
        return true;
    }
    if allow_listed(&budgets.allow_findings, id, fingerprint) {
        return true;
    }
    matches!(finding.category.as_str(), "n_plus_one" | "mn_plus_one")
        && allow_listed(&budgets.allow_n_plus_one, id, fingerprint)
}

/// Whether `list` names this query shape: by fingerprint id (any case) or by the normalized
/// statement (whitespace differences ignored).
fn allow_listed(list: &[String], fingerprint_id: &str, fingerprint: &str) -> bool {
    list.iter().any(|allowed| {
        let allowed = allowed.trim();
        (!fingerprint_id.is_empty() && allowed.eq_ignore_ascii_case(fingerprint_id))
            || (!fingerprint.is_empty() && text::one_line(allowed) == text::one_line(fingerprint))
    })
}

/// The text output: one `FAIL` line per violation, then a summary line. `source` says where the
/// budgets came from.
pub fn render_text(evaluation: &Evaluation, source: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "apmtop check: {source}");
    for check in evaluation.failed() {
        for violation in &check.violations {
            let _ =
                writeln!(out, "FAIL {}  {}: {}; budget: {}", check.subject, check.budget.key(), violation, check.limit);
        }
    }
    let checks = text::plural(evaluation.checks.len(), "check", "checks");
    let endpoints = text::plural(evaluation.endpoints, "endpoint", "endpoints");
    if evaluation.passed() {
        let _ = writeln!(out, "apmtop check: ok: {checks} on {endpoints}, all budgets hold");
    } else {
        let failed: Vec<_> = evaluation.failed().collect();
        let mut subjects: Vec<&str> = failed.iter().map(|c| c.subject.as_str()).collect();
        subjects.dedup();
        let _ = writeln!(
            out,
            "apmtop check: failed: {} in {} ({} on {endpoints})",
            text::plural(evaluation.violation_count(), "violation", "violations"),
            text::plural(subjects.len(), "endpoint", "endpoints"),
            checks
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::snapshot::EndpointRef;
    use crate::tui::testing::sample_snapshot;

    fn config(text: &str) -> Config {
        Config::parse(text, Path::new("apmtop.toml")).expect("valid config")
    }

    fn failures(evaluation: &Evaluation) -> Vec<(String, &'static str)> {
        evaluation.failed().map(|c| (c.subject.clone(), c.budget.key())).collect()
    }

    #[test]
    fn without_a_config_only_n_plus_one_is_checked() {
        let evaluation = evaluate(&sample_snapshot(), &Config::default());
        assert_eq!(evaluation.checks.len(), 5, "one N+1 check per endpoint");
        assert!(evaluation.checks.iter().all(|c| c.budget == BudgetKind::NPlusOne));
        assert_eq!(
            failures(&evaluation),
            [
                ("GET /api/books [library]".to_string(), "n_plus_one"),
                ("POST /api/orders [library]".to_string(), "n_plus_one")
            ]
        );
        let books = evaluation.failed().next().expect("books");
        assert!(
            books.violations[0].contains("a1b2c3d4e5f60718 runs up to 59 times in one request (118 requests affected)"),
            "{books:?}"
        );
    }

    #[test]
    fn allow_lists_take_fingerprint_ids_or_normalized_statements() {
        let text = r#"[budgets]
allow_n_plus_one = ["A1B2C3D4E5F60718", """SELECT order_item.id, order_item.sku,   order_item.quantity
   FROM order_item WHERE order_item.order_id = ?"""]"#;
        assert!(evaluate(&sample_snapshot(), &config(text)).passed());
        assert!(evaluate(&sample_snapshot(), &config("[budgets]\nn_plus_one = \"allow\"")).passed());
    }

    #[test]
    fn route_globs_override_the_global_budgets() {
        let evaluation = evaluate(
            &sample_snapshot(),
            &config(
                r#"
[budgets]
n_plus_one = "allow"
max_queries_per_request = 30
max_p95_ms = 1000

[[routes]]
match = "GET /api/*"
max_queries_per_request = 100
max_p95_ms = 400

[[routes]]
match = "* /health"
max_queries_per_request = 0
"#,
            ),
        );
        // books: 61 queries under its route budget of 100, but p95 480 ms over 400 ms;
        // orders: 24 queries within the global 30; payments: p95 1.2 s over the global 1 s.
        assert_eq!(
            failures(&evaluation),
            [
                ("process_payment [worker]".to_string(), "max_p95_ms"),
                ("GET /api/books [library]".to_string(), "max_p95_ms"),
            ]
        );
        let books = evaluation.failed().nth(1).expect("books");
        assert_eq!(books.limit, "400ms (routes \"GET /api/*\")");
        assert_eq!(books.violations, ["p95 latency 480ms over 120 requests"]);
        let health = evaluation
            .checks
            .iter()
            .find(|c| c.subject.starts_with("GET /health") && c.budget == BudgetKind::MaxQueriesPerRequest);
        assert!(health.is_some_and(Check::passed), "0 queries is within a budget of 0");
    }

    #[test]
    fn query_and_duplicate_budgets_name_the_figure() {
        let evaluation = evaluate(
            &sample_snapshot(),
            &config("[budgets]\nn_plus_one = \"allow\"\nmax_queries_per_request = 30\nmax_duplicates = 0"),
        );
        let broken: Vec<_> = evaluation.failed().collect();
        assert_eq!(broken.len(), 2, "{broken:?}");
        assert_eq!(broken[0].violations, ["61 queries in one request (median 42)"]);
        assert_eq!(broken[0].limit, "30");
        assert_eq!(broken[1].budget, BudgetKind::MaxDuplicates);
        assert_eq!(broken[1].violations, ["1 duplicated statement (a1b2c3d4e5f60718)"]);
    }

    #[test]
    fn findings_fail_by_category_or_severity_unless_allowed() {
        let mut snapshot = sample_snapshot();
        let books = EndpointRef { service: "library".into(), method: "GET".into(), route: "/api/books".into() };
        snapshot.findings = vec![
            FindingSnapshot {
                id: "00000000000000aa".into(),
                severity: "medium".into(),
                category: "missing_index".into(),
                endpoint: Some(books.clone()),
                title: "Sequential scan on book".into(),
                fingerprint_id: Some("1122334455667788".into()),
                cost_ms_total: 900.0,
                ..Default::default()
            },
            FindingSnapshot {
                id: "00000000000000bb".into(),
                severity: "high".into(),
                category: "slow_query_shape".into(),
                title: "Slow shape".into(),
                ..Default::default()
            },
            FindingSnapshot {
                severity: "low".into(),
                category: "cache_calls".into(),
                endpoint: Some(books),
                ..Default::default()
            },
            FindingSnapshot {
                id: "00000000000000cc".into(),
                severity: "high".into(),
                category: "huge_response".into(),
                endpoint: Some(EndpointRef { service: "library".into(), method: "GET".into(), route: "/gone".into() }),
                title: "Huge response".into(),
                ..Default::default()
            },
        ];
        let base = "[budgets]\nn_plus_one = \"allow\"\n";
        let evaluation =
            evaluate(&snapshot, &config(&format!("{base}fail_on_findings = [\"missing_index\", \"high\"]")));
        assert_eq!(
            failures(&evaluation),
            [
                ("GET /api/books [library]".to_string(), "fail_on_findings"),
                (ACROSS_ENDPOINTS.to_string(), "fail_on_findings")
            ]
        );
        let first = evaluation.failed().next().expect("books");
        assert_eq!(
            first.violations,
            ["medium finding missing_index: Sequential scan on book, 900ms in total (id 00000000000000aa)"]
        );
        assert_eq!(
            evaluation.checks.iter().filter(|c| c.budget == BudgetKind::Findings).count(),
            6,
            "each endpoint and the rest"
        );
        let across = evaluation.failed().nth(1).expect("across endpoints");
        assert_eq!(across.violations.len(), 2, "the shape finding and the one of an endpoint without a row");

        let allowed = format!(
            "{base}fail_on_findings = [\"missing_index\", \"high\"]\nallow_findings = [\"1122334455667788\", \"00000000000000BB\", \"00000000000000cc\"]"
        );
        assert!(evaluate(&snapshot, &config(&allowed)).passed());
    }

    #[test]
    fn the_text_lists_each_violation_then_a_summary() {
        let text = render_text(&evaluate(&sample_snapshot(), &Config::default()), "no apmtop.toml found");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "apmtop check: no apmtop.toml found");
        assert!(
            lines[1].starts_with(
                "FAIL GET /api/books [library]  n_plus_one: N+1 query a1b2c3d4e5f60718 runs up to 59 times"
            ),
            "{}",
            lines[1]
        );
        assert!(lines[1].ends_with("; budget: no N+1"), "{}", lines[1]);
        assert!(lines[2].starts_with("FAIL POST /api/orders [library]  n_plus_one:"), "{}", lines[2]);
        assert_eq!(lines[3], "apmtop check: failed: 2 violations in 2 endpoints (5 checks on 5 endpoints)");
        let ok = render_text(&evaluate(&Snapshot::default(), &Config::default()), "x");
        assert!(ok.ends_with("apmtop check: ok: 0 checks on 0 endpoints, all budgets hold\n"), "{ok}");
    }

    #[test]
    fn span_text_cannot_reach_the_terminal_raw() {
        let mut snapshot = sample_snapshot();
        snapshot.endpoints[1].route = "/api/\u{1b}[2Jbooks\nFAIL fake".to_string();
        let text = render_text(&evaluate(&snapshot, &Config::default()), "x");
        assert!(!text.contains('\u{1b}'));
        assert_eq!(text.lines().filter(|l| l.starts_with("FAIL")).count(), 2, "{text}");
    }
}
