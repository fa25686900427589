//! The HTML report (`apmtop report --format html`): one self-contained page that opens offline.
//!
//! Inline CSS readable in light and dark mode (`prefers-color-scheme`), inline SVG bar charts per
//! endpoint (latency and queries per request), tables sorted by clicking a header (a small inline
//! script), and sections for findings, N+1 offenders, duplicates, the slowest query shapes and the
//! audit. Nothing is loaded from anywhere: a Content-Security-Policy allows only this page's own
//! style and script (by hash), so even a string that escaped escaping could not run.
//!
//! Every string from spans goes through [`escape`] (text and quoted attribute values alike) after
//! control characters are removed; ids and anchors are generated, never taken from spans.

use std::fmt::Write;

use crate::report::text::{self, HintPart, amount, ms, plural};
use crate::snapshot::{Bucket, EndpointSnapshot, FindingSnapshot, Snapshot};

/// The page's style sheet.
const STYLE: &str = r#"
:root { color-scheme: light dark; --fg: #1f2328; --muted: #59636e; --bg: #ffffff; --panel: #f6f8fa;
  --line: #d1d9e0; --accent: #0969da; --bar: #3b82c4; --bad: #cf222e; --warn: #9a6700; --good: #1a7f37; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6edf3; --muted: #9198a1; --bg: #0d1117; --panel: #151b23; --line: #3d444d;
    --accent: #4493f8; --bar: #58a6ff; --bad: #f85149; --warn: #d29922; --good: #3fb950; }
}
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1200px; padding: 1.5rem; background: var(--bg); color: var(--fg);
  font: 14px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; } h2 { margin-top: 2rem; border-bottom: 1px solid var(--line); }
h3 { font-size: 1rem; margin: 1rem 0 .25rem; }
nav a { margin-right: 1rem; } a { color: var(--accent); }
.summary { color: var(--muted); } .summary strong { color: var(--fg); }
.cards { display: flex; flex-wrap: wrap; gap: .75rem; margin: 1rem 0; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: .5rem .9rem; }
.card b { display: block; font-size: 1.3rem; } .card.bad b { color: var(--bad); }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--panel); cursor: pointer; user-select: none; white-space: nowrap; }
th[aria-sort="ascending"]::after { content: " \25B2"; } th[aria-sort="descending"]::after { content: " \25BC"; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
code, pre { font: 12.5px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
code { background: var(--panel); padding: 0 .25em; border-radius: 4px; overflow-wrap: anywhere; }
pre { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: .6rem .8rem;
  overflow-x: auto; white-space: pre-wrap; overflow-wrap: anywhere; }
details { border: 1px solid var(--line); border-radius: 6px; padding: .4rem .8rem; margin: .5rem 0; }
summary { cursor: pointer; font-weight: 600; }
.charts { display: flex; flex-wrap: wrap; gap: 1.5rem; margin: .5rem 0; }
figure { margin: 0; } figcaption { color: var(--muted); font-size: .85rem; }
svg .bar { fill: var(--bar); } svg .axis { stroke: var(--line); } svg text { fill: var(--muted); font-size: 10px; }
.sev-high { color: var(--bad); font-weight: 600; } .sev-medium { color: var(--warn); font-weight: 600; }
.sev-low { color: var(--muted); }
.bad { color: var(--bad); } .muted { color: var(--muted); }
.offender { border-left: 3px solid var(--bad); padding-left: .8rem; margin: 1rem 0; }
.dup { border-left: 3px solid var(--warn); padding-left: .8rem; margin: 1rem 0; }
footer { margin-top: 2rem; color: var(--muted); font-size: .85rem; }
"#;

/// Sorts a table by the clicked (or Enter/Space-activated) header: numbers by their
/// `data-value`, text by its content; a second activation reverses the order.
const SCRIPT: &str = r#"
document.querySelectorAll("table.sortable").forEach(function (table) {
  var headers = table.querySelectorAll("th");
  headers.forEach(function (th, column) {
    th.tabIndex = 0;
    function sort() {
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      headers.forEach(function (other) { other.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var numeric = th.classList.contains("num");
      function key(row) {
        var cell = row.cells[column];
        var value = cell.getAttribute("data-value");
        return value === null ? cell.textContent : value;
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        var order = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    }
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sort(); }
    });
  });
});
"#;

/// `sha256-` + base64 of [`STYLE`], for the Content-Security-Policy (a unit test keeps it true).
const STYLE_HASH: &str = "sha256-7IN33xzWwMKRmkyU/RdV1b1PzFKHlsUJh5hvbPP3so4=";
/// `sha256-` + base64 of [`SCRIPT`], for the Content-Security-Policy (a unit test keeps it true).
const SCRIPT_HASH: &str = "sha256-bZBUOowjoSUdGnprAPpLOBJA9W83g5vBTuO42RdkO74=";

/// Endpoints shown in detail (with charts); the table lists them all.
const MAX_ENDPOINT_DETAILS: usize = 50;
/// N+1 offenders, duplicates and findings shown in detail (a report can hold many thousands).
const MAX_DETAILS: usize = 200;
/// Query shapes listed.
const MAX_QUERY_ROWS: usize = 50;
/// Longest statement shown in a block.
const MAX_BLOCK_CHARS: usize = 4000;

/// Chart geometry, in SVG user units.
const CHART_WIDTH: f64 = 360.0;
const CHART_HEIGHT: f64 = 150.0;
const CHART_LEFT: f64 = 34.0;
const CHART_BOTTOM: f64 = 22.0;
const CHART_TOP: f64 = 8.0;
/// Widest bar slot, so a chart of one or two buckets does not draw slabs.
const MAX_BAR_SLOT: f64 = 48.0;

/// The HTML report of `snapshot`.
pub fn render(snapshot: &Snapshot) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src '{STYLE_HASH}'; \
         script-src '{SCRIPT_HASH}'; img-src data:; base-uri 'none'; form-action 'none'\">\n\
         <title>apmtop report {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(&snapshot.generated_at)
    );
    render_header(&mut out, snapshot);
    out.push_str("<main>\n");
    render_findings(&mut out, &snapshot.findings);
    render_endpoints(&mut out, &snapshot.endpoints);
    render_n_plus_one(&mut out, &snapshot.endpoints);
    render_duplicates(&mut out, &snapshot.endpoints);
    render_queries(&mut out, snapshot);
    render_audit(&mut out, snapshot);
    let _ = write!(
        out,
        "</main>\n<footer>apmtop {} · report schema {} · N+1 threshold {} repeats</footer>\n<script>{SCRIPT}</script>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION"),
        crate::report::json::SCHEMA_VERSION,
        snapshot.settings.n_plus_one_min
    );
    out
}

fn render_header(out: &mut String, snapshot: &Snapshot) {
    let offenders: usize = snapshot.endpoints.iter().map(|e| e.n_plus_one.len()).sum();
    let duplicates: usize = snapshot.endpoints.iter().map(|e| e.duplicates.len()).sum();
    let _ = writeln!(out, "<header>\n<h1>apmtop report</h1>");
    let _ = writeln!(out, "<p class=\"summary\">Generated {}.</p>", escape(&snapshot.generated_at));
    out.push_str("<div class=\"cards\">\n");
    let card = |out: &mut String, value: u64, singular: &str, plural_word: &str, bad: bool| {
        let class = if bad && value > 0 { "card bad" } else { "card" };
        let label = if value == 1 { singular } else { plural_word };
        let _ = writeln!(out, "<div class=\"{class}\"><b>{value}</b>{label}</div>");
    };
    card(out, snapshot.totals.requests, "request", "requests", false);
    card(out, snapshot.endpoints.len() as u64, "endpoint", "endpoints", false);
    card(out, snapshot.totals.queries, "query", "queries", false);
    card(out, offenders as u64, "N+1 offender", "N+1 offenders", true);
    card(out, duplicates as u64, "duplicated query", "duplicated queries", true);
    if !snapshot.findings.is_empty() {
        card(out, snapshot.findings.len() as u64, "finding", "findings", true);
    }
    out.push_str("</div>\n<nav>");
    if !snapshot.findings.is_empty() {
        out.push_str("<a href=\"#findings\">Findings</a>");
    }
    out.push_str(
        "<a href=\"#endpoints\">Endpoints</a><a href=\"#n-plus-one\">N+1</a><a href=\"#duplicates\">Duplicates</a>\
         <a href=\"#queries\">Query shapes</a><a href=\"#audit\">Audit</a></nav>\n</header>\n",
    );
    if snapshot.totals.requests == 0 && snapshot.endpoints.is_empty() {
        out.push_str(
            "<p>No requests were analyzed: check that the exporter points at apmtop and read the audit below.</p>\n",
        );
    }
}

fn render_findings(out: &mut String, findings: &[FindingSnapshot]) {
    if findings.is_empty() {
        return;
    }
    out.push_str("<section id=\"findings\">\n<h2>Findings</h2>\n<p class=\"muted\">Every diagnosed cause, most costly first.</p>\n");
    out.push_str(
        "<table class=\"sortable\"><thead><tr><th class=\"num\">#</th><th>Severity</th><th>Category</th>\
         <th>Finding</th><th>Endpoint</th><th class=\"num\">Requests</th><th class=\"num\">Cost total</th></tr></thead><tbody>\n",
    );
    for (rank, finding) in findings.iter().take(MAX_DETAILS).enumerate() {
        let _ = writeln!(
            out,
            "<tr><td class=\"num\">{}</td><td class=\"sev-{}\">{}</td><td>{}</td><td><a href=\"#finding-{}\">{}</a></td>\
             <td>{}</td><td class=\"num\">{}</td><td class=\"num\" data-value=\"{}\">{}</td></tr>",
            rank + 1,
            severity_class(&finding.severity),
            escape(&finding.severity),
            escape(&finding.category),
            rank + 1,
            escape(&finding.title),
            finding_endpoint(finding),
            finding.requests_affected,
            number(finding.cost_ms_total),
            ms(finding.cost_ms_total)
        );
    }
    out.push_str("</tbody></table>\n");
    more(out, findings.len(), "finding", "findings");
    for (rank, finding) in findings.iter().take(MAX_DETAILS).enumerate() {
        let _ = writeln!(
            out,
            "<details id=\"finding-{}\"><summary><span class=\"sev-{}\">{}</span> {}</summary>",
            rank + 1,
            severity_class(&finding.severity),
            escape(&finding.severity),
            escape(&finding.title)
        );
        let _ = writeln!(
            out,
            "<p>{} · {}: {}.</p>",
            escape(&text::finding_kind(finding)),
            finding_endpoint(finding),
            text::finding_cost(finding)
        );
        if !finding.evidence.is_empty() {
            let _ = writeln!(out, "<p>{}</p>", escape(&finding.evidence));
        }
        if let Some(location) = &finding.code_location {
            let _ = writeln!(out, "<p>Code: <code>{}</code></p>", escape(location));
        }
        if let Some(fingerprint) = &finding.fingerprint {
            let id = finding.fingerprint_id.as_deref().unwrap_or("");
            let _ = writeln!(out, "<p>Query shape <code>{}</code>:</p>{}", escape(id), pre(fingerprint));
        }
        if let Some(plan) = &finding.plan {
            let _ = writeln!(out, "<p>Plan:</p>{}", pre(plan));
        }
        if let Some(index) = &finding.proposed_index {
            let _ = writeln!(out, "<p>Proposed index:</p>{}", pre(index));
        }
        if !finding.hint.is_empty() {
            let _ = writeln!(out, "<p>Fix: {}</p>", hint(&finding.hint));
        }
        if !finding.example_trace_id.is_empty() {
            let _ = writeln!(
                out,
                "<p class=\"muted\">Example trace <code>{}</code></p>",
                escape(&finding.example_trace_id)
            );
        }
        out.push_str("</details>\n");
    }
    out.push_str("</section>\n");
}

fn severity_class(severity: &str) -> &'static str {
    match severity {
        "high" => "high",
        "medium" => "medium",
        _ => "low",
    }
}

fn finding_endpoint(finding: &FindingSnapshot) -> String {
    match &finding.endpoint {
        Some(endpoint) => format!("<code>{}</code>", escape(&text::endpoint_label(&endpoint.method, &endpoint.route))),
        None => "all endpoints".to_string(),
    }
}

fn render_endpoints(out: &mut String, endpoints: &[EndpointSnapshot]) {
    out.push_str("<section id=\"endpoints\">\n<h2>Endpoints</h2>\n");
    if endpoints.is_empty() {
        out.push_str("<p class=\"muted\">No endpoints.</p>\n</section>\n");
        return;
    }
    out.push_str(
        "<p class=\"muted\">Slowest (p95) first; click a header to sort, an endpoint for its charts.</p>\n\
         <table class=\"sortable\"><thead><tr><th>Endpoint</th><th>Service</th><th class=\"num\">Requests</th>\
         <th class=\"num\">Errors</th><th class=\"num\">p50</th><th class=\"num\">p95</th><th class=\"num\">p99</th>\
         <th class=\"num\">Queries/req p50</th><th class=\"num\">Queries/req max</th><th class=\"num\">DB time</th>\
         <th class=\"num\">N+1</th><th class=\"num\">Duplicates</th></tr></thead><tbody>\n",
    );
    for (index, endpoint) in endpoints.iter().enumerate() {
        let label = text::endpoint_label(&endpoint.method, &endpoint.route);
        let name = if index < MAX_ENDPOINT_DETAILS {
            format!("<a href=\"#endpoint-{index}\" title=\"{}\"><code>{}</code></a>", escape(&label), escape(&label))
        } else {
            format!("<code>{}</code>", escape(&label))
        };
        let n_plus_one = endpoint.n_plus_one.len();
        let _ = writeln!(
            out,
            "<tr><td data-value=\"{}\">{name}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>{}{}{}{}{}\
             <td class=\"num\" data-value=\"{}\">{}</td><td class=\"num{}\">{}</td><td class=\"num\">{}</td></tr>",
            escape(&label),
            escape(&endpoint.service),
            endpoint.requests,
            endpoint.errors,
            duration_cell(endpoint.latency_ms.p50),
            duration_cell(endpoint.latency_ms.p95),
            duration_cell(endpoint.latency_ms.p99),
            amount_cell(endpoint.queries_per_request.p50),
            amount_cell(endpoint.queries_per_request.max),
            number(endpoint.db_time_share),
            crate::tui::format::percent(endpoint.db_time_share),
            if n_plus_one > 0 { " bad" } else { "" },
            n_plus_one,
            endpoint.duplicates.len()
        );
    }
    out.push_str("</tbody></table>\n");
    for (index, endpoint) in endpoints.iter().take(MAX_ENDPOINT_DETAILS).enumerate() {
        render_endpoint_detail(out, index, endpoint);
    }
    if endpoints.len() > MAX_ENDPOINT_DETAILS {
        let _ = writeln!(
            out,
            "<p class=\"muted\">Charts for the {MAX_ENDPOINT_DETAILS} slowest endpoints; the JSON report has them all.</p>"
        );
    }
    out.push_str("</section>\n");
}

fn render_endpoint_detail(out: &mut String, index: usize, endpoint: &EndpointSnapshot) {
    let label = text::endpoint_label(&endpoint.method, &endpoint.route);
    let _ = writeln!(
        out,
        "<details id=\"endpoint-{index}\"{}><summary><code>{}</code> <span class=\"muted\">{} · {} · p95 {}</span></summary>",
        if index == 0 { " open" } else { "" },
        escape(&label),
        escape(&endpoint.service),
        plural(endpoint.requests as usize, "request", "requests"),
        ms(endpoint.latency_ms.p95)
    );
    out.push_str("<div class=\"charts\">\n");
    let latency = chart(
        &endpoint.latency_histogram,
        &format!("Latency of {label}"),
        |le| format!("≤ {}", ms(le)),
        ms,
        "requests",
    );
    let _ = writeln!(out, "<figure>{latency}<figcaption>Latency (requests per bucket)</figcaption></figure>");
    let queries = chart(
        &endpoint.queries_histogram,
        &format!("Queries per request of {label}"),
        |le| format!("≤ {} queries", amount(le)),
        amount,
        "requests",
    );
    let _ =
        writeln!(out, "<figure>{queries}<figcaption>Queries per request (requests per bucket)</figcaption></figure>");
    out.push_str("</div>\n");
    if !endpoint.n_plus_one.is_empty() {
        let _ = writeln!(
            out,
            "<p class=\"bad\">{}: see <a href=\"#n-plus-one\">N+1 queries</a>.</p>",
            plural(endpoint.n_plus_one.len(), "N+1 offender", "N+1 offenders")
        );
    }
    if !endpoint.slowest.is_empty() {
        out.push_str(
            "<h3>Slowest requests</h3><table><thead><tr><th>Trace</th><th class=\"num\">Duration</th>\
             <th class=\"num\">Queries</th></tr></thead><tbody>\n",
        );
        for request in &endpoint.slowest {
            let _ = writeln!(
                out,
                "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                escape(&request.trace_id),
                ms(request.duration_ms),
                request.queries
            );
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("</details>\n");
}

fn render_n_plus_one(out: &mut String, endpoints: &[EndpointSnapshot]) {
    let mut offenders: Vec<_> =
        endpoints.iter().flat_map(|e| e.n_plus_one.iter().map(move |offender| (e, offender))).collect();
    offenders.sort_by(|a, b| b.1.time_ms_total.total_cmp(&a.1.time_ms_total));
    out.push_str("<section id=\"n-plus-one\">\n<h2>N+1 queries</h2>\n");
    if offenders.is_empty() {
        out.push_str("<p class=\"muted\">No N+1 queries.</p>\n</section>\n");
        return;
    }
    let total = offenders.len();
    for (endpoint, offender) in offenders.into_iter().take(MAX_DETAILS) {
        let _ = writeln!(
            out,
            "<div class=\"offender\"><h3><code>{}</code> <span class=\"muted\">{}</span></h3>\
             <p>Runs up to <b>{}</b> times in one request (median {}) in {}, {} in total. \
             Fingerprint <code>{}</code>{}.</p>\n{}",
            escape(&text::endpoint_label(&endpoint.method, &endpoint.route)),
            escape(&endpoint.service),
            offender.repeats.max,
            offender.repeats.p50,
            plural(offender.requests_affected as usize, "request", "requests"),
            ms(offender.time_ms_total),
            escape(&offender.fingerprint_id),
            trace_note(&offender.example_trace_id),
            pre(&offender.fingerprint)
        );
        if !offender.statement.is_empty() && offender.statement != offender.fingerprint {
            let _ =
                writeln!(out, "<details><summary>Example statement</summary>{}</details>", pre(&offender.statement));
        }
        if !offender.hint.is_empty() {
            let _ = writeln!(out, "<p>Fix: {}</p>", hint(&offender.hint));
        }
        out.push_str("</div>\n");
    }
    more(out, total, "N+1 offender", "N+1 offenders");
    out.push_str("</section>\n");
}

fn render_duplicates(out: &mut String, endpoints: &[EndpointSnapshot]) {
    let mut duplicates: Vec<_> =
        endpoints.iter().flat_map(|e| e.duplicates.iter().map(move |duplicate| (e, duplicate))).collect();
    duplicates.sort_by(|a, b| b.1.time_ms_wasted.total_cmp(&a.1.time_ms_wasted));
    out.push_str("<section id=\"duplicates\">\n<h2>Duplicated queries</h2>\n");
    if duplicates.is_empty() {
        out.push_str("<p class=\"muted\">No duplicated queries.</p>\n</section>\n");
        return;
    }
    out.push_str(
        "<p class=\"muted\">The same statement with the same values, run more than once in one request.</p>\n",
    );
    let total = duplicates.len();
    for (endpoint, duplicate) in duplicates.into_iter().take(MAX_DETAILS) {
        let statement = if duplicate.statement.is_empty() { &duplicate.fingerprint } else { &duplicate.statement };
        let _ = writeln!(
            out,
            "<div class=\"dup\"><h3><code>{}</code> <span class=\"muted\">{}</span></h3>\
             <p>Up to {} times in one request, in {}; {} spent on the repeats. Fingerprint <code>{}</code>{}.</p>\n{}",
            escape(&text::endpoint_label(&endpoint.method, &endpoint.route)),
            escape(&endpoint.service),
            duplicate.repeats_max,
            plural(duplicate.requests_affected as usize, "request", "requests"),
            ms(duplicate.time_ms_wasted),
            escape(&duplicate.fingerprint_id),
            trace_note(&duplicate.example_trace_id),
            pre(statement)
        );
        if !duplicate.hint.is_empty() {
            let _ = writeln!(out, "<p>Fix: {}</p>", hint(&duplicate.hint));
        }
        out.push_str("</div>\n");
    }
    more(out, total, "duplicated query", "duplicated queries");
    out.push_str("</section>\n");
}

fn render_queries(out: &mut String, snapshot: &Snapshot) {
    out.push_str("<section id=\"queries\">\n<h2>Slowest query shapes</h2>\n");
    if snapshot.queries.is_empty() {
        out.push_str("<p class=\"muted\">No queries.</p>\n</section>\n");
        return;
    }
    out.push_str(
        "<p class=\"muted\">By total time.</p>\n<table class=\"sortable\"><thead><tr><th>Query shape</th>\
         <th class=\"num\">Calls</th><th class=\"num\">p50</th><th class=\"num\">p95</th><th class=\"num\">Total</th>\
         <th>Endpoints</th></tr></thead><tbody>\n",
    );
    for query in snapshot.queries.iter().take(MAX_QUERY_ROWS) {
        let endpoints =
            query.endpoints.iter().map(|e| format!("<code>{}</code>", escape(e))).collect::<Vec<_>>().join(" ");
        let _ = writeln!(
            out,
            "<tr><td><code title=\"{}\">{}</code>{}</td><td class=\"num\">{}</td>{}{}{}<td>{}</td></tr>",
            escape(&query.fingerprint_id),
            escape(&text::clip(&query.fingerprint, 300)),
            if query.parsed { "" } else { " <span class=\"muted\">(not parsed)</span>" },
            query.calls,
            duration_cell(query.latency_ms.p50),
            duration_cell(query.latency_ms.p95),
            duration_cell(query.time_ms_total),
            endpoints
        );
    }
    out.push_str("</tbody></table>\n");
    if snapshot.queries.len() > MAX_QUERY_ROWS {
        let _ = writeln!(
            out,
            "<p class=\"muted\">… and {} more in the JSON report.</p>",
            plural(snapshot.queries.len() - MAX_QUERY_ROWS, "query shape", "query shapes")
        );
    }
    out.push_str("</section>\n");
}

fn render_audit(out: &mut String, snapshot: &Snapshot) {
    out.push_str("<section id=\"audit\">\n<h2>Instrumentation audit</h2>\n");
    if snapshot.audit.is_empty() {
        out.push_str("<p class=\"muted\">Nothing missing from the instrumentation.</p>\n</section>\n");
        return;
    }
    out.push_str(
        "<table class=\"sortable\"><thead><tr><th>Service</th><th>Code</th><th>Problem</th><th>Fix</th></tr></thead><tbody>\n",
    );
    for entry in &snapshot.audit {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            escape(&entry.service),
            escape(&entry.code),
            escape(&entry.problem),
            escape(&entry.fix)
        );
    }
    out.push_str("</tbody></table>\n</section>\n");
}

/// A bar chart of `buckets` as inline SVG: one bar per bucket, its height the count, a tooltip
/// (`<title>`) per bar, the tallest count on the y axis and bucket bounds under the bars.
fn chart(
    buckets: &[Bucket],
    title: &str,
    bucket_name: impl Fn(f64) -> String,
    axis_label: impl Fn(f64) -> String,
    unit: &str,
) -> String {
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{CHART_WIDTH}\" height=\"{CHART_HEIGHT}\" \
         viewBox=\"0 0 {CHART_WIDTH} {CHART_HEIGHT}\" role=\"img\" aria-label=\"{}\"><title>{}</title>",
        escape(title),
        escape(title)
    );
    let plot_width = CHART_WIDTH - CHART_LEFT - 4.0;
    let plot_height = CHART_HEIGHT - CHART_BOTTOM - CHART_TOP;
    let base = CHART_TOP + plot_height;
    let _ = write!(
        svg,
        "<line class=\"axis\" x1=\"{CHART_LEFT}\" y1=\"{base}\" x2=\"{}\" y2=\"{base}\"/>",
        CHART_LEFT + plot_width
    );
    if buckets.is_empty() {
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">no histogram in this report</text></svg>",
            CHART_LEFT + plot_width / 2.0,
            CHART_TOP + plot_height / 2.0
        );
        return svg;
    }
    let tallest = buckets.iter().map(|b| b.count).max().unwrap_or(0).max(1);
    let _ =
        write!(svg, "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{tallest}</text>", CHART_LEFT - 4.0, CHART_TOP + 8.0);
    let _ = write!(svg, "<text x=\"{}\" y=\"{base}\" text-anchor=\"end\">0</text>", CHART_LEFT - 4.0);
    let slot = (plot_width / buckets.len() as f64).min(MAX_BAR_SLOT);
    let gap = (slot * 0.15).min(4.0);
    let label_every = buckets.len().div_ceil(8);
    for (i, bucket) in buckets.iter().enumerate() {
        let height = plot_height * bucket.count as f64 / tallest as f64;
        let x = CHART_LEFT + i as f64 * slot + gap / 2.0;
        let _ = write!(
            svg,
            "<rect class=\"bar\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{height:.1}\"><title>{}: {} {unit}</title></rect>",
            base - height,
            (slot - gap).max(1.0),
            escape(&bucket_name(bucket.le)),
            bucket.count
        );
        if i % label_every == 0 || i + 1 == buckets.len() {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                x + (slot - gap) / 2.0,
                base + 14.0,
                escape(&axis_label(bucket.le))
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// "… and N more in the JSON report" under a list cut at [`MAX_DETAILS`].
fn more(out: &mut String, total: usize, singular: &str, plural_word: &str) {
    if total > MAX_DETAILS {
        let _ = writeln!(
            out,
            "<p class=\"muted\">… and {} in the JSON report.</p>",
            plural(total - MAX_DETAILS, &format!("more {singular}"), &format!("more {plural_word}"))
        );
    }
}

fn duration_cell(value_ms: f64) -> String {
    format!("<td class=\"num\" data-value=\"{}\">{}</td>", number(value_ms), ms(value_ms))
}

fn amount_cell(value: f64) -> String {
    format!("<td class=\"num\" data-value=\"{}\">{}</td>", number(value), amount(value))
}

/// A number for a `data-value` attribute: finite, plain digits.
fn number(value: f64) -> String {
    if value.is_finite() { format!("{value}") } else { "0".to_string() }
}

fn trace_note(trace_id: &str) -> String {
    if trace_id.is_empty() { String::new() } else { format!(", example trace <code>{}</code>", escape(trace_id)) }
}

/// A statement or plan in a `<pre>` block, lines kept.
fn pre(text: &str) -> String {
    format!("<pre><code>{}</code></pre>", escape_markup(&text::clip(&text::clean_block(text), MAX_BLOCK_CHARS)))
}

/// A fix hint: its backticked parts in `<code>`, all of it escaped.
fn hint(hint: &str) -> String {
    text::hint_parts(&text::clean_line(hint))
        .into_iter()
        .map(|part| match part {
            HintPart::Text(prose) => escape(prose).into_owned(),
            HintPart::Code(code) => format!("<code>{}</code>", escape(code)),
        })
        .collect()
}

/// Untrusted text on one line, safe in element content and in quoted attribute values: control
/// characters and escape sequences removed, `& < > " '` as character references.
pub fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    let clean = crate::tui::sanitize::sanitize(text);
    if !clean.contains(['&', '<', '>', '"', '\'']) {
        return clean;
    }
    std::borrow::Cow::Owned(escape_markup(&clean))
}

/// `& < > " '` as character references; everything else as is (for text already cleaned, such
/// as a block from [`text::clean_block`] whose line breaks must stay).
pub fn escape_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{EndpointRef, FindingSnapshot};
    use crate::tui::testing::sample_snapshot;

    const SCRIPT_ROUTE: &str = "/<script>alert(1)</script>";
    const ATTRIBUTE_ROUTE: &str = "/x\" onmouseover=\"alert(2)' data-x='";

    /// `sha256-` + base64 of `text`, as a Content-Security-Policy source.
    fn csp_hash(text: &str) -> String {
        use sha2::Digest;
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let digest = sha2::Sha256::digest(text.as_bytes());
        let mut encoded = String::new();
        for chunk in digest.chunks(3) {
            let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
            for i in 0..4 {
                if i <= chunk.len() {
                    encoded.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    encoded.push('=');
                }
            }
        }
        format!("sha256-{encoded}")
    }

    fn hostile_snapshot() -> Snapshot {
        let mut snapshot = sample_snapshot();
        snapshot.endpoints[0].route = SCRIPT_ROUTE.to_string();
        snapshot.endpoints[1].route = ATTRIBUTE_ROUTE.to_string();
        snapshot.endpoints[1].service = "<img src=x onerror=alert(3)>".to_string();
        snapshot.endpoints[1].n_plus_one[0].fingerprint =
            "SELECT '</code></pre><script>alert(4)</script>' FROM t".to_string();
        snapshot.queries[0].fingerprint =
            "SELECT \"<marquee>\" FROM t WHERE a = '<script>alert(5)</script>'".to_string();
        snapshot.queries[0].fingerprint_id = "\" onclick=\"alert(6)".to_string();
        snapshot.audit[0].problem = "<iframe src=javascript:alert(7)>".to_string();
        snapshot
    }

    #[test]
    fn the_content_security_policy_hashes_match_the_inline_style_and_script() {
        assert_eq!(STYLE_HASH, csp_hash(STYLE), "update STYLE_HASH");
        assert_eq!(SCRIPT_HASH, csp_hash(SCRIPT), "update SCRIPT_HASH");
        let html = render(&sample_snapshot());
        assert!(
            html.contains(&format!("<style>{STYLE}</style>")) && html.contains(&format!("<script>{SCRIPT}</script>"))
        );
    }

    #[test]
    fn span_strings_are_escaped_never_markup() {
        let html = render(&hostile_snapshot());
        assert_eq!(html.matches("<script>").count(), 1, "only the page's own script element");
        assert!(html.contains("/&lt;script&gt;alert(1)&lt;/script&gt;"), "the route shows as text");
        assert!(html.contains("&lt;/code&gt;&lt;/pre&gt;&lt;script&gt;alert(4)"), "statements show as text");
        assert!(!html.contains("<img"), "no injected element");
        assert!(!html.contains("<iframe"), "no injected element");
        assert!(!html.contains("<marquee>"), "no injected element");
        for needle in ["onmouseover=\"", "onclick=\"", "data-x='"] {
            assert!(!html.contains(needle), "an attribute escaped its quotes: {needle}");
        }
        assert!(
            html.contains("title=\"GET /x&quot; onmouseover=&quot;alert(2)&#39; data-x=&#39;\""),
            "attribute value stays one value"
        );
    }

    #[test]
    fn every_attribute_value_is_closed_by_its_own_quote() {
        // Outside element content, a quoted attribute value never contains its quote character:
        // after escaping, the only `"` in tags delimit values, so each tag has an even count.
        let html = render(&hostile_snapshot());
        let mut rest = html.as_str();
        while let Some(start) = rest.find('<') {
            let tail = &rest[start..];
            let end = tail.find('>').expect("every tag is closed");
            let tag = &tail[..end];
            if !tag.starts_with("<style") && !tag.starts_with("<script") && !tag.starts_with("<meta http-equiv") {
                assert_eq!(tag.matches('"').count() % 2, 0, "unbalanced quotes in {tag}");
                assert!(!tag.contains('\''), "no single quotes in tags: {tag}");
            }
            rest = &tail[end..];
        }
    }

    #[test]
    fn each_endpoint_has_its_latency_and_queries_charts() {
        let mut snapshot = sample_snapshot();
        for endpoint in &mut snapshot.endpoints {
            endpoint.latency_histogram =
                vec![Bucket { le: 5.0, count: 2 }, Bucket { le: 10.0, count: 0 }, Bucket { le: 50.0, count: 7 }];
            endpoint.queries_histogram = vec![Bucket { le: 0.0, count: 1 }, Bucket { le: 1.0, count: 3 }];
        }
        let html = render(&snapshot);
        for (index, endpoint) in snapshot.endpoints.iter().enumerate() {
            let start = html.find(&format!("<details id=\"endpoint-{index}\"")).expect("detail block");
            let block = &html[start..start + html[start..].find("</details>").expect("closed")];
            assert_eq!(block.matches("<svg").count(), 2, "two charts for {}", endpoint.route);
            assert!(block.contains("<title>≤ 50.0ms: 7 requests</title>"), "{block}");
            assert!(block.contains("<title>≤ 1 queries: 3 requests</title>"), "{block}");
            assert_eq!(block.matches("<rect class=\"bar\"").count(), 5);
        }
        // The tallest bar fills the plot; an empty bucket has no height.
        assert!(html.contains(&format!("height=\"{:.1}\"", CHART_HEIGHT - CHART_BOTTOM - CHART_TOP)));
        assert!(html.contains("height=\"0.0\""));
    }

    #[test]
    fn long_lists_are_cut_with_a_count() {
        let mut snapshot = sample_snapshot();
        let offender = snapshot.endpoints[1].n_plus_one[0].clone();
        snapshot.endpoints[1].n_plus_one = vec![offender; MAX_DETAILS + 7];
        let html = render(&snapshot);
        assert_eq!(html.matches("<div class=\"offender\">").count(), MAX_DETAILS);
        assert!(html.contains("… and 8 more N+1 offenders in the JSON report."), "the orders offender is cut too");
    }

    #[test]
    fn old_reports_without_histograms_say_so_in_the_chart() {
        let html = render(&sample_snapshot());
        assert!(html.contains("no histogram in this report"));
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        let html = render(&sample_snapshot());
        for needle in ["src=", "http://", "https://", "@import", "url("] {
            let allowed = html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count();
            let found = html.matches(needle).count();
            let expected = if needle == "http://" { allowed } else { 0 };
            assert_eq!(found, expected, "{needle}");
        }
        assert!(html.contains("default-src 'none'"));
    }

    #[test]
    fn tables_are_sortable_with_numeric_values_on_number_cells() {
        let html = render(&sample_snapshot());
        assert!(html.matches("<table class=\"sortable\">").count() >= 3);
        // p95 of GET /api/books is 480 ms: the cell carries the raw number for sorting.
        assert!(html.contains("<td class=\"num\" data-value=\"480\">480ms</td>"), "{html}");
    }

    #[test]
    fn sections_for_findings_n_plus_one_duplicates_queries_and_audit() {
        let mut snapshot = sample_snapshot();
        snapshot.findings.push(FindingSnapshot {
            severity: "high".into(),
            category: "missing_index".into(),
            endpoint: Some(EndpointRef { service: "library".into(), method: "GET".into(), route: "/api/books".into() }),
            title: "Sequential scan on <book>".into(),
            plan: Some("Seq Scan on book\n  Filter: (isbn = $1)".into()),
            proposed_index: Some("CREATE INDEX ON book (isbn);".into()),
            hint: "Add `CREATE INDEX ON book (isbn)`.".into(),
            cost_ms_total: 1200.0,
            ..Default::default()
        });
        let html = render(&snapshot);
        for id in ["findings", "endpoints", "n-plus-one", "duplicates", "queries", "audit"] {
            assert!(html.contains(&format!("<section id=\"{id}\">")), "section {id}");
        }
        assert!(html.contains("Sequential scan on &lt;book&gt;"));
        assert!(html.contains("<pre><code>Seq Scan on book\n  Filter: (isbn = $1)</code></pre>"));
        assert!(html.contains("Fix: Add <code>CREATE INDEX ON book (isbn)</code>."));
        let n_plus_one = &html[html.find("<section id=\"n-plus-one\">").expect("section")..];
        assert!(n_plus_one.contains("Fingerprint <code>a1b2c3d4e5f60718</code>"));
        assert!(n_plus_one.find("GET /api/books") < n_plus_one.find("POST /api/orders"), "most costly first");
    }
}
