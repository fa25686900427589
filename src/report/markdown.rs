//! The Markdown report (`apmtop report --format markdown`): sized for a pull-request comment.
//!
//! A summary line, then the ranked findings (when the report has any), the slowest endpoints, the
//! N+1 offenders with their fingerprints in code blocks and fix hints, duplicated queries, the
//! slowest query shapes and the instrumentation audit. Long lists are cut with "and N more" so the
//! comment stays readable and under the size forges accept.
//!
//! Every string from spans is untrusted: prose is backslash-escaped (no links, mentions, HTML or
//! emphasis can be injected), code goes in spans and fences longer than any backtick run in it,
//! and table cells have their pipes escaped and their line breaks removed.

use std::fmt::Write;

use crate::report::text::{self, HintPart, amount, ms, plural};
use crate::snapshot::{EndpointSnapshot, FindingSnapshot, Snapshot};

/// Endpoints in the slowest-endpoints table.
const MAX_ENDPOINT_ROWS: usize = 15;
/// N+1 offenders shown.
const MAX_N_PLUS_ONE: usize = 10;
/// Duplicated queries shown.
const MAX_DUPLICATES: usize = 8;
/// Query shapes in the slowest-shapes table.
const MAX_QUERY_ROWS: usize = 10;
/// Findings in the findings table.
const MAX_FINDING_ROWS: usize = 20;
/// Findings shown in detail below the table.
const MAX_FINDING_DETAILS: usize = 8;
/// Audit entries shown.
const MAX_AUDIT: usize = 10;
/// Longest statement in a code block.
const MAX_BLOCK_CHARS: usize = 800;
/// Longest statement in a table cell.
const MAX_CELL_CHARS: usize = 100;

/// The Markdown report of `snapshot`.
pub fn render(snapshot: &Snapshot) -> String {
    let mut out = String::new();
    out.push_str("## apmtop report\n\n");
    out.push_str(&summary_line(snapshot));
    out.push_str("\n\n");
    if snapshot.totals.requests == 0 && snapshot.endpoints.is_empty() {
        out.push_str("No requests were analyzed: check that the exporter points at apmtop and that the audit below is empty.\n\n");
    }
    render_findings(&mut out, &snapshot.findings);
    render_endpoints(&mut out, &snapshot.endpoints);
    render_n_plus_one(&mut out, &snapshot.endpoints);
    render_duplicates(&mut out, &snapshot.endpoints);
    render_queries(&mut out, snapshot);
    render_audit(&mut out, snapshot);
    let _ = writeln!(out, "<sub>apmtop {}</sub>", env!("CARGO_PKG_VERSION"));
    out
}

fn summary_line(snapshot: &Snapshot) -> String {
    let offenders: usize = snapshot.endpoints.iter().map(|e| e.n_plus_one.len()).sum();
    let with_n_plus_one = snapshot.endpoints.iter().filter(|e| !e.n_plus_one.is_empty()).count();
    let duplicates: usize = snapshot.endpoints.iter().map(|e| e.duplicates.len()).sum();
    let mut parts = vec![
        format!(
            "{} on {}",
            plural(snapshot.totals.requests as usize, "request", "requests"),
            plural(snapshot.endpoints.len(), "endpoint", "endpoints")
        ),
        plural(snapshot.totals.queries as usize, "query", "queries"),
    ];
    if offenders > 0 {
        parts.push(format!(
            "**{}** on {}",
            plural(offenders, "N+1 offender", "N+1 offenders"),
            plural(with_n_plus_one, "endpoint", "endpoints")
        ));
    } else {
        parts.push("no N+1".to_string());
    }
    parts.push(plural(duplicates, "duplicated query", "duplicated queries"));
    if !snapshot.findings.is_empty() {
        parts.push(plural(snapshot.findings.len(), "finding", "findings"));
    }
    if !snapshot.generated_at.is_empty() {
        parts.push(format!("report of {}", escape(&snapshot.generated_at)));
    }
    parts.join(" · ")
}

fn render_findings(out: &mut String, findings: &[FindingSnapshot]) {
    if findings.is_empty() {
        return;
    }
    out.push_str("### Findings\n\nMost costly first.\n\n");
    out.push_str("| # | Severity | Finding | Endpoint | Cost |\n|---:|---|---|---|---:|\n");
    for (rank, finding) in findings.iter().take(MAX_FINDING_ROWS).enumerate() {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            rank + 1,
            escape(&finding.severity),
            escape(&finding.title),
            finding_endpoint(finding),
            ms(finding.cost_ms_total)
        );
    }
    more(out, findings.len(), MAX_FINDING_ROWS, "finding", "findings");
    out.push('\n');
    for (rank, finding) in findings.iter().take(MAX_FINDING_DETAILS).enumerate() {
        let _ = writeln!(
            out,
            "**{}. {}** ({}, {})\n",
            rank + 1,
            escape(&finding.title),
            escape(&finding.severity),
            escape(&text::finding_kind(finding))
        );
        let _ = write!(out, "{}: {}.", finding_endpoint(finding), text::finding_cost(finding));
        if !finding.evidence.is_empty() {
            let _ = write!(out, " {}", escape(&finding.evidence));
        }
        if let Some(location) = &finding.code_location {
            let _ = write!(out, " Code: {}.", code_span(location));
        }
        out.push_str("\n\n");
        if let Some(fingerprint) = &finding.fingerprint {
            if let Some(id) = &finding.fingerprint_id {
                let _ = writeln!(out, "Fingerprint {}:\n", code_span(id));
            }
            out.push_str(&code_block(fingerprint, "sql"));
        }
        if let Some(plan) = &finding.plan {
            out.push_str("Plan:\n\n");
            out.push_str(&code_block(plan, "text"));
        }
        if let Some(index) = &finding.proposed_index {
            out.push_str("Proposed index:\n\n");
            out.push_str(&code_block(index, "sql"));
        }
        if !finding.hint.is_empty() {
            let _ = writeln!(out, "Fix: {}\n", hint(&finding.hint));
        }
    }
}

fn finding_endpoint(finding: &FindingSnapshot) -> String {
    match &finding.endpoint {
        Some(endpoint) => table_code(&text::endpoint_label(&endpoint.method, &endpoint.route)),
        None => "all endpoints".to_string(),
    }
}

fn render_endpoints(out: &mut String, endpoints: &[EndpointSnapshot]) {
    if endpoints.is_empty() {
        return;
    }
    out.push_str("### Slowest endpoints\n\n");
    out.push_str(
        "| Endpoint | Service | Requests | Errors | p50 | p95 | p99 | Queries/request (p50 · max) | DB time | N+1 |\n",
    );
    out.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for endpoint in endpoints.iter().take(MAX_ENDPOINT_ROWS) {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} · {} | {} | {} |",
            table_code(&text::endpoint_label(&endpoint.method, &endpoint.route)),
            escape(&endpoint.service),
            endpoint.requests,
            endpoint.errors,
            ms(endpoint.latency_ms.p50),
            ms(endpoint.latency_ms.p95),
            ms(endpoint.latency_ms.p99),
            amount(endpoint.queries_per_request.p50),
            amount(endpoint.queries_per_request.max),
            crate::tui::format::percent(endpoint.db_time_share),
            if endpoint.n_plus_one.is_empty() {
                "–".to_string()
            } else {
                format!("**{}**", endpoint.n_plus_one.len())
            },
        );
    }
    more(out, endpoints.len(), MAX_ENDPOINT_ROWS, "endpoint", "endpoints");
    out.push('\n');
}

fn render_n_plus_one(out: &mut String, endpoints: &[EndpointSnapshot]) {
    let mut offenders: Vec<_> =
        endpoints.iter().flat_map(|e| e.n_plus_one.iter().map(move |offender| (e, offender))).collect();
    if offenders.is_empty() {
        return;
    }
    offenders.sort_by(|a, b| b.1.time_ms_total.total_cmp(&a.1.time_ms_total));
    out.push_str("### N+1 queries\n\n");
    for (endpoint, offender) in offenders.iter().take(MAX_N_PLUS_ONE) {
        let _ = writeln!(
            out,
            "**{}** ({}): runs up to **{}** times in one request (median {}) in {}, {} in total. Fingerprint {}.\n",
            code_span(&text::endpoint_label(&endpoint.method, &endpoint.route)),
            escape(&endpoint.service),
            offender.repeats.max,
            offender.repeats.p50,
            plural(offender.requests_affected as usize, "request", "requests"),
            ms(offender.time_ms_total),
            code_span(&offender.fingerprint_id),
        );
        out.push_str(&code_block(&offender.fingerprint, "sql"));
        if !offender.hint.is_empty() {
            let _ = writeln!(out, "Fix: {}\n", hint(&offender.hint));
        }
    }
    more(out, offenders.len(), MAX_N_PLUS_ONE, "N+1 offender", "N+1 offenders");
    out.push('\n');
}

fn render_duplicates(out: &mut String, endpoints: &[EndpointSnapshot]) {
    let mut duplicates: Vec<_> =
        endpoints.iter().flat_map(|e| e.duplicates.iter().map(move |duplicate| (e, duplicate))).collect();
    if duplicates.is_empty() {
        return;
    }
    duplicates.sort_by(|a, b| b.1.time_ms_wasted.total_cmp(&a.1.time_ms_wasted));
    out.push_str(
        "### Duplicated queries\n\nThe same statement with the same values, run more than once in one request.\n\n",
    );
    for (endpoint, duplicate) in duplicates.iter().take(MAX_DUPLICATES) {
        let _ = writeln!(
            out,
            "**{}** ({}): up to {} times in one request, in {}; {} spent on the repeats. Fingerprint {}.\n",
            code_span(&text::endpoint_label(&endpoint.method, &endpoint.route)),
            escape(&endpoint.service),
            duplicate.repeats_max,
            plural(duplicate.requests_affected as usize, "request", "requests"),
            ms(duplicate.time_ms_wasted),
            code_span(&duplicate.fingerprint_id),
        );
        let statement = if duplicate.statement.is_empty() { &duplicate.fingerprint } else { &duplicate.statement };
        out.push_str(&code_block(statement, "sql"));
        if !duplicate.hint.is_empty() {
            let _ = writeln!(out, "Fix: {}\n", hint(&duplicate.hint));
        }
    }
    more(out, duplicates.len(), MAX_DUPLICATES, "duplicated query", "duplicated queries");
    out.push('\n');
}

fn render_queries(out: &mut String, snapshot: &Snapshot) {
    if snapshot.queries.is_empty() {
        return;
    }
    out.push_str("### Slowest query shapes\n\nBy total time.\n\n");
    out.push_str("| Query shape | Calls | p95 | Total | Endpoints |\n|---|---:|---:|---:|---|\n");
    for query in snapshot.queries.iter().take(MAX_QUERY_ROWS) {
        let endpoints = query.endpoints.iter().map(|e| table_code(e)).collect::<Vec<_>>().join(", ");
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            table_code(&text::clip(&text::clean_line(&query.fingerprint), MAX_CELL_CHARS)),
            query.calls,
            ms(query.latency_ms.p95),
            ms(query.time_ms_total),
            endpoints
        );
    }
    more(out, snapshot.queries.len(), MAX_QUERY_ROWS, "query shape", "query shapes");
    out.push('\n');
}

fn render_audit(out: &mut String, snapshot: &Snapshot) {
    if snapshot.audit.is_empty() {
        return;
    }
    out.push_str("### Instrumentation audit\n\n");
    for entry in snapshot.audit.iter().take(MAX_AUDIT) {
        let _ =
            writeln!(out, "- **{}**: {} Fix: {}", escape(&entry.service), escape(&entry.problem), escape(&entry.fix));
    }
    if snapshot.audit.len() > MAX_AUDIT {
        let _ = writeln!(out, "- … and {} more", snapshot.audit.len() - MAX_AUDIT);
    }
    out.push('\n');
}

/// "… and N more" under a list cut at `shown`.
fn more(out: &mut String, total: usize, shown: usize, singular: &str, plural_word: &str) {
    if total > shown {
        let _ = writeln!(
            out,
            "\n… and {} (see the full report).",
            plural(total - shown, &format!("more {singular}"), &format!("more {plural_word}"))
        );
    }
}

/// A fix hint: its backticked parts as code spans, the rest escaped.
fn hint(text: &str) -> String {
    text::hint_parts(&text::clean_line(text))
        .into_iter()
        .map(|part| match part {
            HintPart::Text(prose) => escape(prose),
            HintPart::Code(code) => code_span(code),
        })
        .collect()
}

/// Untrusted text as inert Markdown prose on one line: every character that can start markup
/// inside a line is backslash-escaped (emphasis, links, images, HTML, tables, mentions, issue
/// references, math). Block markers (`-`, `1.`, `===`) are left alone: escaped prose is never
/// written at the start of a line.
pub fn escape(text: &str) -> String {
    let line = crate::tui::sanitize::sanitize(text);
    let mut out = String::with_capacity(line.len() + 8);
    for c in line.chars() {
        if matches!(c, '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '!' | '~' | '&' | '@' | '$') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Untrusted text as an inline code span on one line, delimited by a backtick run longer than
/// any inside it.
pub fn code_span(text: &str) -> String {
    let line = text::clean_line(text);
    if line.is_empty() {
        return "(empty)".to_string();
    }
    let fence = "`".repeat(longest_backtick_run(&line) + 1);
    let pad = if line.starts_with(['`', ' ']) || line.ends_with(['`', ' ']) { " " } else { "" };
    format!("{fence}{pad}{line}{pad}{fence}")
}

/// Untrusted text as code inside a table cell. The table splits cells at unescaped pipes before
/// code spans are parsed, so pipes are escaped; where a backslash would pair with that escape,
/// the text is escaped prose instead.
pub fn table_code(text: &str) -> String {
    let line = text::clean_line(text);
    if line.contains('\\') { escape(&line) } else { code_span(&line).replace('|', "\\|") }
}

/// Untrusted text as a fenced code block: the fence is longer than any backtick run inside, so
/// nothing in the text can close it.
pub fn code_block(text: &str, language: &str) -> String {
    let block = text::clip(&text::clean_block(text), MAX_BLOCK_CHARS).into_owned();
    let fence = "`".repeat((longest_backtick_run(&block) + 1).max(3));
    format!("{fence}{language}\n{block}\n{fence}\n\n")
}

fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{EndpointRef, FindingSnapshot};
    use crate::tui::testing::sample_snapshot;

    /// Cells of a GFM table row: split at pipes not escaped by a backslash (a backslash escapes
    /// the next character, whatever it is), as the table extension does.
    fn cells(row: &str) -> Vec<String> {
        let mut cells = vec![String::new()];
        let mut chars = row.trim().trim_start_matches('|').chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    let last = cells.last_mut().expect("a cell");
                    last.push('\\');
                    if let Some(next) = chars.next() {
                        last.push(next);
                    }
                }
                '|' => cells.push(String::new()),
                c => cells.last_mut().expect("a cell").push(c),
            }
        }
        if cells.last().is_some_and(|c| c.trim().is_empty()) {
            cells.pop();
        }
        cells
    }

    fn table_rows<'a>(markdown: &'a str, header: &str) -> Vec<&'a str> {
        let start = markdown.find(header).unwrap_or_else(|| panic!("no {header:?} in\n{markdown}"));
        let is_separator = |line: &str| line.chars().all(|c| matches!(c, '|' | '-' | ':' | ' '));
        markdown[start..].lines().skip(1).take_while(|l| l.starts_with('|')).filter(|l| !is_separator(l)).collect()
    }

    #[test]
    fn the_summary_and_every_section_are_there() {
        let markdown = render(&sample_snapshot());
        let summary = markdown.lines().nth(2).expect("summary line");
        assert!(summary.contains("1540 requests on 5 endpoints"), "{summary}");
        assert!(summary.contains("**2 N+1 offenders** on 2 endpoints"), "{summary}");
        assert!(summary.contains("1 duplicated query"), "{summary}");
        for heading in [
            "### Slowest endpoints",
            "### N+1 queries",
            "### Duplicated queries",
            "### Slowest query shapes",
            "### Instrumentation audit",
        ] {
            assert!(markdown.contains(heading), "missing {heading}\n{markdown}");
        }
        assert!(!markdown.contains("### Findings"), "no findings section without findings");
    }

    #[test]
    fn n_plus_one_offenders_show_fingerprint_in_a_code_block_and_the_hint() {
        let markdown = render(&sample_snapshot());
        let section = &markdown[markdown.find("### N+1 queries").expect("section")..];
        let books = section.find("`GET /api/books`").expect("books offender");
        let orders = section.find("`POST /api/orders`").expect("orders offender");
        assert!(books < orders, "most total time first");
        assert!(section.contains("up to **59** times in one request (median 40) in 118 requests"), "{section}");
        assert!(section.contains("Fingerprint `a1b2c3d4e5f60718`"), "{section}");
        assert!(
            section.contains(
                "```sql\nSELECT author.id, author.name, author.bio, author.born_at FROM author WHERE author.id = ?\n```"
            ),
            "{section}"
        );
        assert!(section.contains("Fix: Load the authors with the books"), "{section}");
    }

    #[test]
    fn table_rows_keep_their_column_count_whatever_the_route() {
        let mut snapshot = sample_snapshot();
        snapshot.endpoints[0].route = "/a|b\n| x | y |\\|`tick`".to_string();
        snapshot.endpoints[1].service = "svc|with|pipes\nand lines".to_string();
        snapshot.queries[0].fingerprint = "SELECT a || b FROM t\nWHERE c = '|'".to_string();
        let markdown = render(&snapshot);
        let header = "| Endpoint | Service |";
        let columns = cells(markdown.lines().find(|l| l.starts_with(header)).expect("header")).len();
        for row in table_rows(&markdown, header) {
            assert_eq!(cells(row).len(), columns, "row: {row}");
        }
        for row in table_rows(&markdown, "| Query shape |") {
            assert_eq!(cells(row).len(), 5, "row: {row}");
        }
    }

    #[test]
    fn fences_are_longer_than_any_backtick_run_in_the_statement() {
        let block = code_block("SELECT '```' AS a, '````' AS b\n```\nnot the end", "sql");
        let fence = block.lines().next().expect("first line").trim_end_matches("sql");
        assert_eq!(fence, "`````");
        let closing = block.lines().filter(|l| l.trim_start().starts_with(fence)).count();
        assert_eq!(closing, 2, "only the opening and closing lines start with the fence:\n{block}");
        assert_eq!(code_block("SELECT 1", ""), "```\nSELECT 1\n```\n\n");
    }

    #[test]
    fn code_spans_contain_any_backticks() {
        assert_eq!(code_span("a`b"), "``a`b``");
        assert_eq!(code_span("`edge`"), "`` `edge` ``");
        assert_eq!(code_span("line\nbreak"), "`line break`");
    }

    #[test]
    fn prose_cannot_inject_markup() {
        let escaped = escape("<script>alert(1)</script> [x](http://e) **b** @team #12 $x$");
        assert!(!escaped.contains("<script>"), "{escaped}");
        for (raw, safe) in [("<", "\\<"), ("[", "\\["), ("*", "\\*"), ("@", "\\@"), ("#", "\\#"), ("$", "\\$")] {
            assert!(escaped.contains(safe), "{raw} not escaped: {escaped}");
        }
        assert_eq!(escape("line\nbreak"), "line break");
    }

    #[test]
    fn findings_are_listed_with_their_plan_index_and_hint() {
        let mut snapshot = sample_snapshot();
        snapshot.findings = vec![
            FindingSnapshot {
                id: "f00dfeedf00dfeed".into(),
                severity: "high".into(),
                category: "missing_index".into(),
                rule: "seq_scan".into(),
                endpoint: Some(EndpointRef {
                    service: "library".into(),
                    method: "GET".into(),
                    route: "/api/books".into(),
                }),
                title: "Sequential scan on book for WHERE isbn = ?".into(),
                evidence: "reads 120000 rows to return 1".into(),
                fingerprint_id: Some("1122334455667788".into()),
                fingerprint: Some("SELECT * FROM book WHERE isbn = ?".into()),
                requests_affected: 30,
                cost_ms_per_request: 40.0,
                cost_ms_total: 1200.0,
                code_location: Some("library/views.py:42 in book_list".into()),
                plan: Some("Seq Scan on book  (cost=0.00..2041.00 rows=1)\n  Filter: (isbn = $1)".into()),
                proposed_index: Some("CREATE INDEX ON book (isbn);".into()),
                hint: "Add the index `CREATE INDEX ON book (isbn)`.".into(),
                ..Default::default()
            },
            FindingSnapshot {
                severity: "low".into(),
                category: "slow_query_shape".into(),
                title: "Slow shape".into(),
                cost_ms_total: 10.0,
                ..Default::default()
            },
        ];
        let markdown = render(&snapshot);
        let section = &markdown[markdown.find("### Findings").expect("findings section")..];
        let rows = table_rows(section, "| # | Severity |");
        assert_eq!(rows.len(), 2);
        assert!(
            rows[0].contains("| 1 | high |") && rows[0].contains("`GET /api/books`") && rows[0].contains("1.20s"),
            "{}",
            rows[0]
        );
        assert!(rows[1].contains("all endpoints"), "{}", rows[1]);
        assert!(
            section.contains("**1. Sequential scan on book for WHERE isbn = ?** (high, missing\\_index / seq\\_scan)"),
            "{section}"
        );
        assert!(section.contains("about 40.0ms in each of 30 requests"), "{section}");
        assert!(
            section.contains("reads 120000 rows to return 1 Code: `library/views.py:42 in book_list`."),
            "{section}"
        );
        assert!(
            section.contains("```text\nSeq Scan on book  (cost=0.00..2041.00 rows=1)\n  Filter: (isbn = $1)\n```"),
            "{section}"
        );
        assert!(section.contains("Proposed index:\n\n```sql\nCREATE INDEX ON book (isbn);\n```"), "{section}");
        assert!(section.contains("Fix: Add the index `CREATE INDEX ON book (isbn)`."), "{section}");
        assert!(markdown.find("### Findings") < markdown.find("### Slowest endpoints"), "findings come first");
    }

    #[test]
    fn long_lists_are_cut_with_a_count() {
        let mut snapshot = sample_snapshot();
        let template = snapshot.endpoints[0].clone();
        snapshot.endpoints = (0..40)
            .map(|i| {
                let mut endpoint = template.clone();
                endpoint.route = format!("/r{i}");
                endpoint
            })
            .collect();
        let markdown = render(&snapshot);
        assert_eq!(table_rows(&markdown, "| Endpoint | Service |").len(), MAX_ENDPOINT_ROWS);
        assert!(markdown.contains("… and 25 more endpoints"), "{markdown}");
    }

    #[test]
    fn a_huge_report_still_fits_a_pull_request_comment() {
        // Forges cap comments at 65,536 characters.
        let mut snapshot = sample_snapshot();
        let long = format!("SELECT {} FROM t WHERE id = ?", "column_name, ".repeat(2000));
        let template = snapshot.endpoints[1].clone();
        snapshot.endpoints = (0..500)
            .map(|i| {
                let mut endpoint = template.clone();
                endpoint.route = format!("/api/{i}/{}", "segment/".repeat(20));
                for offender in &mut endpoint.n_plus_one {
                    offender.fingerprint = long.clone();
                    offender.hint = "h ".repeat(500);
                }
                endpoint.n_plus_one = vec![endpoint.n_plus_one[0].clone(); 20];
                endpoint
            })
            .collect();
        let finding = FindingSnapshot {
            title: "t".repeat(300),
            fingerprint: Some(long.clone()),
            plan: Some(long.clone()),
            proposed_index: Some(long.clone()),
            hint: "h ".repeat(300),
            ..Default::default()
        };
        snapshot.findings = vec![finding; 1000];
        for query in &mut snapshot.queries {
            query.fingerprint = long.clone();
        }
        let markdown = render(&snapshot);
        assert!(markdown.chars().count() < 65_536, "{} characters", markdown.chars().count());
        assert!(markdown.contains("… and 980 more findings") && markdown.contains("… and 9990 more N+1 offenders"));
    }

    #[test]
    fn an_empty_report_says_nothing_was_analyzed() {
        let markdown = render(&Snapshot::default());
        assert!(markdown.contains("No requests were analyzed"), "{markdown}");
        assert!(!markdown.contains("### Slowest endpoints"));
    }
}
