//! A deterministic, hand-built [`Snapshot`] and [`UiState`] for the dashboard's tests: several
//! services and endpoints, two N+1 offenders, a duplicate, failing endpoints, long SQL and an
//! audit finding, with a fixed `generated_at`; a kept trace with an N+1 and a failing call; sample
//! findings.

use std::path::PathBuf;
use std::sync::Arc;

use crate::aggregate::traces::{RepeatedShape, TraceRecord, TraceSpan};
use crate::model::{SpanId, SpanKind, TraceId};
use crate::snapshot::{
    AuditEntry, Bucket, DuplicateSnapshot, EndpointRef, EndpointSnapshot, FindingSnapshot, NPlusOneSnapshot,
    QuerySnapshot, Repeats, SettingsSnapshot, SlowRequest, Snapshot, Summary, Totals,
};
use crate::tui::app::UiState;

fn summary(p50: f64, p95: f64, max: f64) -> Summary {
    Summary { mean: (p50 + p95) / 2.0, p50, p90: (p50 + p95) / 2.0, p95, p99: (p95 + max) / 2.0, max }
}

fn endpoint(
    service: &str,
    method: &str,
    route: &str,
    requests: u64,
    errors: u64,
    latency: Summary,
) -> EndpointSnapshot {
    EndpointSnapshot {
        service: service.to_string(),
        method: method.to_string(),
        route: route.to_string(),
        requests,
        errors,
        latency_ms: latency,
        queries_per_request: summary(1.0, 2.0, 3.0),
        db_time_ms: summary(0.5, 1.0, 2.0),
        db_time_share: 0.1,
        connection_spans: 0,
        n_plus_one: Vec::new(),
        duplicates: Vec::new(),
        slowest: vec![SlowRequest { trace_id: format!("{:0>32}", requests), duration_ms: latency.max, queries: 3 }],
        latency_histogram: Vec::new(),
        queries_histogram: Vec::new(),
        folded_endpoints: None,
    }
}

const AUTHOR_BY_ID: &str = "SELECT author.id, author.name, author.bio, author.born_at FROM author WHERE author.id = ?";
const ITEM_BY_ORDER: &str =
    "SELECT order_item.id, order_item.sku, order_item.quantity FROM order_item WHERE order_item.order_id = ?";

/// The sample snapshot.
pub fn sample_snapshot() -> Snapshot {
    let mut books = endpoint("library", "GET", "/api/books", 120, 0, summary(180.0, 480.0, 910.0));
    books.queries_per_request = summary(42.0, 58.0, 61.0);
    books.db_time_ms = summary(110.0, 300.0, 520.0);
    books.db_time_share = 0.62;
    books.connection_spans = 120;
    books.n_plus_one.push(NPlusOneSnapshot {
        fingerprint: AUTHOR_BY_ID.to_string(),
        fingerprint_id: "a1b2c3d4e5f60718".to_string(),
        statement: "SELECT author.id, author.name, author.bio, author.born_at FROM author WHERE author.id = 7"
            .to_string(),
        db_system: "postgresql".to_string(),
        tables: vec!["author".to_string()],
        requests_affected: 118,
        repeats: Repeats { p50: 40, max: 59 },
        time_ms_total: 9_440.0,
        example_trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".to_string(),
        hint: "Load the authors with the books: Book.objects.select_related(\"author\").".to_string(),
    });
    books.duplicates.push(DuplicateSnapshot {
        fingerprint: "SELECT COUNT(*) FROM book".to_string(),
        fingerprint_id: "a1b2c3d4e5f60718".to_string(),
        statement: "SELECT COUNT(*) FROM book".to_string(),
        repeats_max: 3,
        requests_affected: 120,
        time_ms_wasted: 96.0,
        example_trace_id: "00f067aa0ba902b7a3ce929d0e0e4736".to_string(),
        hint: "Compute it once per request and reuse the value.".to_string(),
    });
    books.latency_histogram = [(25.0, 4), (50.0, 10), (100.0, 18), (250.0, 52), (500.0, 30), (1000.0, 6)]
        .into_iter()
        .map(|(le, count)| Bucket { le, count })
        .collect();
    books.queries_histogram = [(1.0, 2), (5.0, 0), (10.0, 0), (25.0, 0), (50.0, 90), (100.0, 28)]
        .into_iter()
        .map(|(le, count)| Bucket { le, count })
        .collect();
    books.slowest = vec![
        SlowRequest { trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".to_string(), duration_ms: 910.0, queries: 61 },
        SlowRequest { trace_id: "5cf92f3577b34da6a3ce929d0e0e4737".to_string(), duration_ms: 850.5, queries: 58 },
    ];

    let mut orders = endpoint("library", "POST", "/api/orders", 80, 2, summary(95.0, 220.0, 400.0));
    orders.queries_per_request = summary(12.0, 20.0, 24.0);
    orders.db_time_share = 0.45;
    orders.n_plus_one.push(NPlusOneSnapshot {
        fingerprint: ITEM_BY_ORDER.to_string(),
        fingerprint_id: "0f1e2d3c4b5a6978".to_string(),
        statement: ITEM_BY_ORDER.replace('?', "12"),
        db_system: "postgresql".to_string(),
        tables: vec!["order_item".to_string()],
        requests_affected: 80,
        repeats: Repeats { p50: 10, max: 18 },
        time_ms_total: 1_200.0,
        example_trace_id: "6cf92f3577b34da6a3ce929d0e0e4738".to_string(),
        hint: "Fetch the items of all orders at once: prefetch_related(\"items\").".to_string(),
    });

    let author = endpoint("library", "GET", "/api/authors/{id}", 300, 0, summary(12.0, 35.0, 60.0));
    let mut health = endpoint("library", "GET", "/health", 1_000, 0, summary(0.4, 0.9, 2.0));
    health.queries_per_request = Summary::default();
    health.db_time_share = 0.0;
    let payments = endpoint("worker", "", "process_payment", 40, 5, summary(600.0, 1_200.0, 2_500.0));

    let query = |fingerprint: &str, id: &str, table: &str, calls: u64, p95: f64, total: f64, endpoints: &[&str]| {
        QuerySnapshot {
            fingerprint: fingerprint.to_string(),
            fingerprint_id: id.to_string(),
            db_system: "postgresql".to_string(),
            tables: vec![table.to_string()],
            statement: fingerprint.replace('?', "42"),
            calls,
            latency_ms: summary(p95 / 2.0, p95, p95 * 2.0),
            time_ms_total: total,
            endpoints: endpoints.iter().map(|e| e.to_string()).collect(),
            endpoint_refs: endpoints
                .iter()
                .map(|e| {
                    let (method, route) = e.split_once(' ').unwrap_or(("", e));
                    EndpointRef { service: "library".to_string(), method: method.to_string(), route: route.to_string() }
                })
                .collect(),
            parsed: true,
        }
    };
    let mut unparsed = query("CALL refresh_stats(?)", "9988776655443322", "", 40, 45.0, 1_500.0, &["process_payment"]);
    unparsed.parsed = false;
    unparsed.tables.clear();

    Snapshot {
        generated_at: "2026-01-02T03:04:05Z".to_string(),
        totals: Totals {
            spans_received: 48_210,
            requests: 1_540,
            spans_dropped: 3,
            queries: 9_800,
            trace_exports: 420,
            ..Totals::default()
        },
        endpoints: vec![payments, books, orders, author, health],
        queries: vec![
            query(
                AUTHOR_BY_ID,
                "a1b2c3d4e5f60718",
                "author",
                4_800,
                0.6,
                9_600.0,
                &["GET /api/books", "GET /api/authors/{id}"],
            ),
            query(ITEM_BY_ORDER, "0f1e2d3c4b5a6978", "order_item", 800, 2.5, 1_200.0, &["POST /api/orders"]),
            unparsed,
            query("SELECT COUNT(*) FROM book", "1122334455667788", "book", 360, 0.4, 96.0, &["GET /api/books"]),
        ],
        audit: vec![AuditEntry {
            service: "worker".to_string(),
            code: "db_spans_without_statement".to_string(),
            problem: "40 of 200 DB spans have no statement text, so their queries cannot be analyzed.".to_string(),
            fix: "Enable statement capture in the DB instrumentation (e.g. enable_commenter or db.statement)."
                .to_string(),
        }],
        findings: Vec::new(),
        settings: SettingsSnapshot { n_plus_one_min: 5, grace_seconds: 2.0, max_endpoints: 500 },
        aggregates: None,
        window_seconds: None,
        services: sample_services(),
    }
}

/// A fresh state on the default ports, with a fixed uptime.
pub fn sample_ui() -> UiState {
    let mut ui = UiState::new(
        "127.0.0.1:4317".parse().expect("addr"),
        "127.0.0.1:4318".parse().expect("addr"),
        PathBuf::from("."),
    );
    ui.uptime = std::time::Duration::from_secs(754);
    ui
}

/// The services of the sample snapshot: one on gRPC, one on two protocols.
fn sample_services() -> Vec<crate::snapshot::ServiceSnapshot> {
    use crate::snapshot::{ProtocolSnapshot, ServiceSnapshot};
    let protocol = |protocol: &str, compression: &str, exports| ProtocolSnapshot {
        protocol: protocol.to_string(),
        compression: compression.to_string(),
        exports,
    };
    vec![
        ServiceSnapshot {
            name: "shop".to_string(),
            language: "python".to_string(),
            sdk_name: "opentelemetry".to_string(),
            sdk_version: "1.45.1".to_string(),
            protocols: vec![protocol("grpc", "gzip", 380)],
            spans: 40_000,
            requests: 1_400,
        },
        ServiceSnapshot {
            name: "worker".to_string(),
            language: "nodejs".to_string(),
            sdk_name: "opentelemetry".to_string(),
            sdk_version: "2.2.0".to_string(),
            protocols: vec![protocol("http/protobuf", "none", 30), protocol("http/json", "none", 10)],
            spans: 8_210,
            requests: 140,
        },
    ]
}
/// The kept trace behind the sample's slowest `/api/books` request: a view span running 40
/// author lookups (an N+1), a count, and a failing call to another service.
pub fn sample_trace() -> TraceRecord {
    let ms = |n: f64| 1_700_000_000_000_000_000u64 + (n * 1_000_000.0) as u64;
    let id = |n: u8| SpanId([n, 0, 0, 0, 0, 0, 0, 1]);
    let span = |n: u8, parent: Option<u8>, name: &str, kind, service: &str, from: f64, to: f64| TraceSpan {
        span_id: id(n),
        parent: parent.map(id),
        name: name.into(),
        kind,
        service: Arc::from(service),
        start_ns: ms(from),
        end_ns: ms(to),
        is_error: false,
        statement: None,
        fingerprint_id: None,
    };
    let mut spans = vec![
        span(1, None, "GET /api/books", SpanKind::Server, "library", 0.0, 910.0),
        span(2, Some(1), "BookListView.get", SpanKind::Internal, "library", 2.0, 700.0),
    ];
    let mut count = span(3, Some(2), "SELECT", SpanKind::Client, "library", 3.0, 9.0);
    count.statement = Some("SELECT COUNT(*) FROM book".into());
    count.fingerprint_id = Some(0x1122334455667788);
    spans.push(count);
    for i in 0..40u8 {
        let from = 10.0 + f64::from(i) * 16.0;
        let mut query = span(10 + i, Some(2), "SELECT", SpanKind::Client, "library", from, from + 14.5);
        query.statement = Some(AUTHOR_BY_ID.replace('?', &(i + 1).to_string()).into());
        query.fingerprint_id = Some(0xa1b2c3d4e5f60718);
        spans.push(query);
    }
    let mut call = span(60, Some(1), "POST payments", SpanKind::Client, "library", 705.0, 905.0);
    call.is_error = true;
    spans.push(call);
    let mut remote = span(61, Some(60), "POST /charge", SpanKind::Server, "payments", 710.0, 900.0);
    remote.is_error = true;
    spans.push(remote);
    TraceRecord {
        trace_id: TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap_or_default(),
        endpoint: "GET /api/books".into(),
        spans,
        n_plus_one: vec![RepeatedShape { fingerprint_id: 0xa1b2c3d4e5f60718, fingerprint: AUTHOR_BY_ID.into() }],
    }
}

/// Findings as the diagnosis fills them: an N+1, a missing index with its plan, and a slow
/// query shape about no single endpoint.
pub fn sample_findings() -> Vec<FindingSnapshot> {
    let books = EndpointRef { service: "library".into(), method: "GET".into(), route: "/api/books".into() };
    vec![
        FindingSnapshot {
            id: "f00d000000000001".into(),
            severity: "high".into(),
            category: "n_plus_one".into(),
            endpoint: Some(books.clone()),
            title: "GET /api/books runs the author lookup 40 times per request".into(),
            evidence: "118 of 120 requests, 40 repeats at the median (59 at most), 9.44 s in total".into(),
            fingerprint_id: Some("a1b2c3d4e5f60718".into()),
            fingerprint: Some(AUTHOR_BY_ID.into()),
            statement: Some(AUTHOR_BY_ID.replace('?', "7")),
            requests_affected: 118,
            cost_ms_per_request: 78.0,
            cost_ms_total: 9_440.0,
            example_trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            code_location: Some("library/views.py:42 in BookListView.get".into()),
            hint: "Load the authors with the books: Book.objects.select_related(\"author\").".into(),
            ..FindingSnapshot::default()
        },
        FindingSnapshot {
            id: "f00d000000000002".into(),
            severity: "medium".into(),
            category: "missing_index".into(),
            rule: "sequential_scan".into(),
            endpoint: Some(EndpointRef {
                service: "library".into(),
                method: "POST".into(),
                route: "/api/orders".into(),
            }),
            title: "order_item is scanned whole to find an order's items".into(),
            evidence: "800 calls, p95 2.5 ms; the plan reads every row of order_item".into(),
            fingerprint_id: Some("0f1e2d3c4b5a6978".into()),
            fingerprint: Some(ITEM_BY_ORDER.into()),
            statement: Some(ITEM_BY_ORDER.replace('?', "12")),
            requests_affected: 80,
            cost_ms_per_request: 15.0,
            cost_ms_total: 1_200.0,
            example_trace_id: "6cf92f3577b34da6a3ce929d0e0e4738".into(),
            plan: Some(
                "Seq Scan on order_item  (cost=0.00..1693.00 rows=12 width=24)\n  Filter: (order_id = 12)".into(),
            ),
            proposed_index: Some("CREATE INDEX ON order_item (order_id);".into()),
            hint: "Add the index so each order's items are found without reading the table.".into(),
            ..FindingSnapshot::default()
        },
        FindingSnapshot {
            id: "f00d000000000003".into(),
            severity: "low".into(),
            category: "slow_query_shape".into(),
            rule: "leading_wildcard_like".into(),
            title: "A LIKE with a leading wildcard cannot use an index".into(),
            evidence: "360 calls, p95 0.4 ms".into(),
            fingerprint: Some("SELECT * FROM book WHERE title LIKE ?".into()),
            requests_affected: 360,
            cost_ms_per_request: 0.27,
            cost_ms_total: 96.0,
            hint: "Search with a full-text index, or anchor the pattern at the start.".into(),
            ..FindingSnapshot::default()
        },
    ]
}

/// The sample snapshot with [`sample_findings`].
pub fn sample_snapshot_with_findings() -> Snapshot {
    Snapshot { findings: sample_findings(), ..sample_snapshot() }
}
