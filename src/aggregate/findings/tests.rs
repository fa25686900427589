//! Tests of the findings aggregate: ranking, rules that need every request, folding of N+1
//! groups into loops and writes, exact and order-free merging, bounds.

use super::*;
use crate::analyze::Analyzer;
use crate::analyze::test_support::{query, root};
use crate::model::{Request, Span};

const AUTHOR: &str = r#"SELECT "library_author"."id", "library_author"."name" FROM "library_author" WHERE "library_author"."id" = %s LIMIT 21"#;
const COUNT: &str = r#"SELECT COUNT(*) AS "__count" FROM "library_book""#;
const INSERT: &str = r#"INSERT INTO "library_note" ("book_id", "text") VALUES (%s, %s) RETURNING "library_note"."id""#;

/// A request to `route` lasting `ms`, with trace id byte `trace`.
fn request(route: &str, trace: u8, ms: u64, spans: Vec<Span>) -> RequestAnalysis {
    let mut root = root();
    root.trace_id = TraceId([trace; 16]);
    root.end_ns = ms * 1_000_000;
    root.http.as_mut().expect("http").route = Some(route.into());
    Analyzer::new(5, 100).analyze(Request { root, spans })
}

fn n_plus_one(n: u8) -> Vec<Span> {
    (0..n).map(|i| query(10 + i, 1, AUTHOR, u64::from(i))).collect()
}

fn categories(findings: &[FindingSnapshot]) -> Vec<(&str, &str, &str)> {
    findings
        .iter()
        .map(|f| (f.category.as_str(), f.rule.as_str(), f.endpoint.as_ref().map_or("", |e| e.route.as_str())))
        .collect()
}

#[test]
fn findings_are_ranked_by_total_cost_with_figures() {
    let mut stats = FindingStats::new(100);
    stats.record(&request("books/", 1, 40, n_plus_one(13)));
    stats.record(&request("books/", 2, 40, n_plus_one(13)));
    stats.record(&request("few/", 3, 40, n_plus_one(6)));
    let findings = stats.snapshot();
    assert_eq!(categories(&findings), [("n_plus_one", "", "/books/"), ("n_plus_one", "", "/few/")]);
    let top = &findings[0];
    assert_eq!(top.requests_affected, 2);
    assert_eq!(top.cost_ms_total, 26.0);
    assert_eq!(top.cost_ms_per_request, 13.0);
    assert_eq!(top.severity, "high", "13 of 40 ms is 32 % of the endpoint's time");
    assert_eq!(top.id.len(), 16);
    assert_eq!(top.example_trace_id, TraceId([1; 16]).to_string(), "tie on cost: the smaller trace id");
    assert!(top.title.contains("library_author"), "{}", top.title);
    assert!(top.evidence.contains("13 times") || top.evidence.contains("up to 13"), "{}", top.evidence);
    assert!(top.hint.contains("select_related"), "{}", top.hint);
    assert_eq!(findings[1].severity, "medium", "6 of 40 ms is 15 %");
}

#[test]
fn ids_are_stable_and_differ_by_endpoint() {
    let mut a = FindingStats::new(100);
    a.record(&request("books/", 1, 40, n_plus_one(6)));
    let mut b = FindingStats::new(100);
    b.record(&request("books/", 9, 80, n_plus_one(7)));
    b.record(&request("other/", 9, 80, n_plus_one(7)));
    let (a, b) = (a.snapshot(), b.snapshot());
    assert_eq!(a[0].id, b.iter().find(|f| f.endpoint.as_ref().is_some_and(|e| e.route == "/books/")).expect("f").id);
    assert_ne!(b[0].id, b[1].id);
}

#[test]
fn count_on_every_request_only() {
    let mut every = FindingStats::new(100);
    for trace in 1..=3 {
        every.record(&request("list/", trace, 10, vec![query(2, 1, COUNT, 0)]));
    }
    assert_eq!(categories(&every.snapshot()), [("slow_query_shape", "count_per_request", "/list/")]);
    let mut some = FindingStats::new(100);
    some.record(&request("list/", 1, 10, vec![query(2, 1, COUNT, 0)]));
    some.record(&request("list/", 2, 10, vec![]));
    assert!(some.snapshot().is_empty(), "a count on some requests is no per-request count");
}

#[test]
fn writes_in_a_loop_are_row_by_row_writes_not_n_plus_one() {
    let mut stats = FindingStats::new(100);
    let spans = (0..6u8).map(|i| query(2 + i, 1, INSERT, u64::from(i) * 2)).collect();
    let analysis = request("notes/", 1, 30, spans);
    assert_eq!(analysis.n_plus_one.len(), 1, "the endpoint's N+1 list keeps the group");
    stats.record(&analysis);
    let findings = stats.snapshot();
    assert_eq!(categories(&findings), [("row_by_row_write", "insert", "/notes/")]);
    assert!(findings[0].hint.contains("bulk_create"), "{}", findings[0].hint);
}

#[test]
fn a_loop_of_two_queries_is_one_mn_plus_one_finding() {
    let book = r#"SELECT "library_book"."id" FROM "library_book" WHERE "library_book"."author_id" = %s"#;
    let spans = (0..12u8).map(|i| query(2 + i, 1, if i % 2 == 0 { AUTHOR } else { book }, u64::from(i) * 2)).collect();
    let mut stats = FindingStats::new(100);
    stats.record(&request("loop/", 1, 50, spans));
    let findings = stats.snapshot();
    assert_eq!(categories(&findings), [("mn_plus_one", "", "/loop/")], "{findings:#?}");
    assert_eq!(findings[0].cost_ms_total, 12.0);
    assert!(findings[0].title.contains("library_author, library_book"), "{}", findings[0].title);
}

fn huge(route: &str, trace: u8, bytes: u64) -> RequestAnalysis {
    let mut analysis = request(route, trace, 50, vec![query(2, 1, "SELECT 1", 0)]);
    analysis.response_bytes = Some(bytes);
    analysis
}

#[test]
fn huge_responses_when_p95_is_above_the_threshold() {
    let mut stats = FindingStats::new(100);
    for trace in 1..=3 {
        stats.record(&huge("export/", trace, 1_200_000 + u64::from(trace)));
        stats.record(&huge("page/", trace, 20_000));
    }
    let findings = stats.snapshot();
    assert_eq!(categories(&findings), [("huge_response", "", "/export/")]);
    let finding = &findings[0];
    assert_eq!(finding.requests_affected, 3);
    assert_eq!(finding.cost_ms_per_request, 49.0, "the request's time outside its 1 ms query");
    assert_eq!(finding.example_trace_id, TraceId([3; 16]).to_string(), "the largest response");
    assert!(finding.title.contains("1200.0 kB"), "{}", finding.title);
    // One big response in forty is below p95.
    let mut rare = FindingStats::new(100);
    for trace in 1..=40u8 {
        rare.record(&huge("mixed/", trace, if trace == 1 { 900_000 } else { 1_000 }));
    }
    assert!(rare.snapshot().is_empty());
}

/// Requests of several endpoints and causes, for the merge tests.
fn sample() -> Vec<RequestAnalysis> {
    let mut out = Vec::new();
    for trace in 1..=6u8 {
        out.push(request("books/", trace, 20 + u64::from(trace), n_plus_one(5 + trace % 3)));
        out.push(request("list/", trace, 10, vec![query(2, 1, COUNT, 0)]));
        out.push(huge("export/", trace, 400_000 * u64::from(trace % 2 + 1)));
    }
    out
}

#[test]
fn merge_is_exact_and_independent_of_order() {
    let requests = sample();
    let mut whole = FindingStats::new(100);
    requests.iter().for_each(|r| whole.record(r));

    let (mut left, mut right) = (FindingStats::new(100), FindingStats::new(100));
    for (i, r) in requests.iter().enumerate() {
        if i % 3 == 0 { left.record(r) } else { right.record(r) }
    }
    let mut left_then_right = left.clone();
    left_then_right.merge(&right);
    let mut right_then_left = right.clone();
    right_then_left.merge(&left);
    assert_eq!(left_then_right, whole);
    assert_eq!(right_then_left, whole);
    assert_eq!(right_then_left.snapshot(), whole.snapshot());
}

#[test]
fn stats_survive_a_round_trip_through_json() {
    let mut stats = FindingStats::new(100);
    sample().iter().for_each(|r| stats.record(r));
    let json = serde_json::to_string(&stats).expect("serialize");
    let back: FindingStats = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(back, stats);
}

#[test]
fn endpoints_beyond_the_bound_are_not_kept() {
    let mut stats = FindingStats::new(2);
    for (i, route) in ["a/", "b/", "c/"].iter().enumerate() {
        stats.record(&request(route, i as u8 + 1, 40, n_plus_one(6)));
    }
    assert_eq!(stats.endpoints.len(), 2);
    assert_eq!(stats.snapshot().len(), 2);
    let mut other = FindingStats::new(2);
    other.record(&request("d/", 9, 40, n_plus_one(6)));
    stats.merge(&other);
    assert_eq!(stats.endpoints.len(), 2);
}

#[test]
fn findings_show_where_in_the_code() {
    use crate::model::{CodeAttrs, SpanExtra};
    let spans = n_plus_one(6)
        .into_iter()
        .map(|mut span| {
            span.extra = Some(Box::new(SpanExtra {
                code: Some(CodeAttrs {
                    function: Some("library.views.books".into()),
                    file_path: Some("library/views.py".into()),
                    line: Some(31),
                    stacktrace: None,
                }),
                call: None,
            }));
            span
        })
        .collect();
    let mut stats = FindingStats::new(100);
    stats.record(&request("books/", 1, 40, spans));
    let findings = stats.snapshot();
    assert_eq!(findings[0].code_location.as_deref(), Some("library/views.py:31 in library.views.books"));
}

#[test]
fn duplicates_are_one_finding_per_query_shape_and_none_inside_an_n_plus_one() {
    const BY_ID: &str = "SELECT name FROM library_genre WHERE id = 7";
    const BY_OTHER_ID: &str = "SELECT name FROM library_genre WHERE id = 8";
    let mut stats = FindingStats::new(100);
    // Two values of one shape, each run twice: one duplicate finding for the shape.
    let spans = vec![
        query(10, 1, BY_ID, 0),
        query(11, 1, BY_ID, 1),
        query(12, 1, BY_OTHER_ID, 2),
        query(13, 1, BY_OTHER_ID, 3),
    ];
    stats.record(&request("genres/", 1, 40, spans));
    // An N+1 over authors that looks up some author twice: the N+1 covers it.
    let mut loop_spans = n_plus_one(6);
    loop_spans.push(query(30, 1, &AUTHOR.replace("%s", "1"), 20));
    loop_spans.push(query(31, 1, &AUTHOR.replace("%s", "1"), 21));
    stats.record(&request("books/", 2, 40, loop_spans));
    let findings = stats.snapshot();
    let duplicates: Vec<&FindingSnapshot> = findings.iter().filter(|f| f.category == "duplicate_query").collect();
    assert_eq!(duplicates.len(), 1, "{findings:#?}");
    assert_eq!(duplicates[0].endpoint.as_ref().map(|e| e.route.as_str()), Some("/genres/"));
    assert_eq!(duplicates[0].count_max, 4, "both values' executions count");
}
