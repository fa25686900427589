//! Database drivers and ORMs, one by one: traces shaped exactly like those the real
//! instrumentations export, sent over real OTLP to the real binary, with exact query counts,
//! connection spans, N+1 groups and duplicates checked in the report.
//!
//! The span names, kinds, parent links and attribute sets follow what these packages emit:
//! `@prisma/instrumentation` (Prisma's engine spans), `XSAM/otelsql` with `otelhttp`
//! (Go), `@opentelemetry/instrumentation-knex` over `@opentelemetry/instrumentation-pg`,
//! `@opentelemetry/instrumentation-mysql2`, `@opentelemetry/instrumentation-express` with
//! `@opentelemetry/instrumentation-http`, `opentelemetry-instrumentation-sqlalchemy` with
//! `opentelemetry-instrumentation-psycopg2` or `opentelemetry-instrumentation-asyncpg`, and
//! `opentelemetry-instrumentation-dbapi`'s captured parameters (Python),
//! `OpenTelemetry.Instrumentation.EntityFrameworkCore` and `OpenTelemetry.Instrumentation.SqlClient`
//! (.NET), `opentelemetry-instrumentation-pg` and `opentelemetry-instrumentation-action_pack`
//! (Ruby), and the OpenTelemetry Java agent's JDBC and Hibernate instrumentations. Old and stable
//! semantic-convention names are used as each package sends them by default, and both at once as
//! `OTEL_SEMCONV_STABILITY_OPT_IN=database/dup` does.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, status};
use prost::Message;
use rstest::rstest;
use serde_json::{Value, json};
use tonic::transport::Endpoint;

use crate::otlp_payloads::{hex, int_attr, span_id, string_attr, trace_id};
use crate::support::Apmtop;

/// Short assembly grace period that keeps tests fast.
const FAST_GRACE: [&str; 2] = ["--grace", "0.2"];
/// Upper bound for any single export call.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
/// `Span.flags`: sampled, parent known to be local.
const FLAGS_SAMPLED_LOCAL: u32 = 0x101;
/// Nanoseconds per microsecond: span offsets below are written in microseconds.
const NS_PER_US: u64 = 1_000;
/// The sentinel Ruby's SQL obfuscator sends instead of a long statement.
const RUBY_TOO_LONG: &str = "SQL not obfuscated, query exceeds 2000 characters";
/// The sentinel Ruby's SQL obfuscator sends when quotes remain after obfuscation.
const RUBY_MALFORMED: &str = "Failed to obfuscate SQL query - quote characters remained after obfuscation";

// ---------------------------------------------------------------------------------------------
// Building traces span by span
// ---------------------------------------------------------------------------------------------

/// A span id, as returned by [`TraceBuilder::span`] so children can name their parent.
type Id = Vec<u8>;

/// One trace, built span by span with explicit parents and times (microseconds from the trace
/// start), so each test states the exact shape an instrumentation produces.
struct TraceBuilder {
    seed: u64,
    start_unix_nano: u64,
    next_index: u64,
    spans: Vec<Span>,
}

impl TraceBuilder {
    /// An empty trace whose ids derive from `seed`, starting two seconds ago.
    fn new(seed: u64) -> TraceBuilder {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970");
        let now = u64::try_from(now.as_nanos()).expect("time fits u64 nanoseconds");
        TraceBuilder { seed, start_unix_nano: now - 2_000_000_000, next_index: 0, spans: Vec::new() }
    }

    /// Adds a span from `from_us` to `to_us`; `parent` `None` makes it the trace's root.
    fn span(
        &mut self,
        parent: Option<&Id>,
        name: &str,
        kind: SpanKind,
        from_us: u64,
        to_us: u64,
        attributes: Vec<KeyValue>,
    ) -> Id {
        assert!(from_us <= to_us, "test setup: {name} ends before it starts");
        self.next_index += 1;
        let id = span_id(self.seed, self.next_index).to_vec();
        self.spans.push(Span {
            trace_id: trace_id(self.seed).to_vec(),
            span_id: id.clone(),
            parent_span_id: parent.cloned().unwrap_or_default(),
            flags: FLAGS_SAMPLED_LOCAL,
            name: name.to_string(),
            kind: kind as i32,
            start_time_unix_nano: self.start_unix_nano + from_us * NS_PER_US,
            end_time_unix_nano: self.start_unix_nano + to_us * NS_PER_US,
            attributes,
            ..Default::default()
        });
        id
    }

    /// The trace id as lower-case hex.
    fn trace_id_hex(&self) -> String {
        hex(&trace_id(self.seed))
    }
}

/// A resource for `service` written by an SDK in `language` (`nodejs`, `go`, `python`, ...).
fn resource(service: &str, language: &str) -> Resource {
    Resource {
        attributes: vec![
            string_attr("service.name", service),
            string_attr("telemetry.sdk.name", "opentelemetry"),
            string_attr("telemetry.sdk.language", language),
        ],
        ..Default::default()
    }
}

/// One export request: each trace under the resource of `service` written in `language`, with the
/// spans of one instrumentation scope.
fn export_request(service: &str, language: &str, scope: &str, traces: Vec<TraceBuilder>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource(service, language)),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope { name: scope.to_string(), ..Default::default() }),
                spans: traces.into_iter().flat_map(|t| t.spans).collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// HTTP SERVER attributes in the stable conventions.
fn http_stable(method: &str, route: &str, path: &str) -> Vec<KeyValue> {
    vec![
        string_attr("http.request.method", method),
        string_attr("http.route", route),
        string_attr("url.path", path),
        string_attr("url.scheme", "http"),
        int_attr("http.response.status_code", 200),
        string_attr("server.address", "127.0.0.1"),
    ]
}

/// HTTP SERVER attributes in the old conventions.
fn http_old(method: &str, route: &str, target: &str) -> Vec<KeyValue> {
    vec![
        string_attr("http.method", method),
        string_attr("http.route", route),
        string_attr("http.target", target),
        string_attr("http.scheme", "http"),
        int_attr("http.status_code", 200),
        string_attr("net.host.name", "127.0.0.1"),
    ]
}

// ---------------------------------------------------------------------------------------------
// Sending
// ---------------------------------------------------------------------------------------------

/// How a test exports: the transports SDKs use by default.
#[derive(Clone, Copy, Debug)]
enum Transport {
    /// OTLP/gRPC (Python, Go, .NET defaults).
    Grpc,
    /// OTLP/HTTP protobuf (Node.js, Java agent, Ruby defaults).
    HttpProtobuf,
}

/// Exports `request` and requires a full success (no `partial_success`).
async fn export(app: &Apmtop, transport: Transport, request: ExportTraceServiceRequest) {
    let spans: usize = request.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum();
    let response = match transport {
        Transport::Grpc => {
            let channel = Endpoint::from_shared(app.grpc_url())
                .expect("endpoint url")
                .connect_timeout(Duration::from_secs(10))
                .timeout(CLIENT_TIMEOUT)
                .connect()
                .await
                .expect("gRPC connect");
            TraceServiceClient::new(channel).export(request).await.expect("gRPC export accepted").into_inner()
        }
        Transport::HttpProtobuf => {
            let client = reqwest::Client::builder().no_proxy().timeout(CLIENT_TIMEOUT).build().expect("http client");
            let response = client
                .post(format!("{}/v1/traces", app.http_url()))
                .header("content-type", "application/x-protobuf")
                .body(request.encode_to_vec())
                .send()
                .await
                .expect("POST /v1/traces");
            assert_eq!(response.status(), 200, "OTLP/HTTP export status");
            let body = response.bytes().await.expect("response body");
            ExportTraceServiceResponse::decode(body.as_ref()).expect("an ExportTraceServiceResponse")
        }
    };
    assert!(response.partial_success.is_none(), "{transport:?} export of {spans} spans: {response:?}");
}

// ---------------------------------------------------------------------------------------------
// Reading the report
// ---------------------------------------------------------------------------------------------

/// What one endpoint of the report must say.
struct Expect<'a> {
    /// Requests analyzed for the endpoint.
    requests: u64,
    /// Queries of each request (all requests of a test alike): every statistic equals it.
    queries: u64,
    /// Connection spans of all its requests together.
    connection_spans: u64,
    /// N+1 findings: tables and `repeats.max`, in any order.
    n_plus_one: &'a [(&'a [&'a str], u64)],
    /// Duplicate findings: example statement and `repeats_max`, in any order.
    duplicates: &'a [(&'a str, u64)],
}

/// The report, pretty-printed and cut to a readable length, for failure messages.
fn brief(report: &Value) -> String {
    let text = serde_json::to_string_pretty(report).unwrap_or_default();
    let cut = (0..=text.len().min(8000)).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
    text[..cut].to_string()
}

/// The endpoint `service` `method` `route`.
fn endpoint<'a>(report: &'a Value, service: &str, method: &str, route: &str) -> &'a Value {
    report["endpoints"]
        .as_array()
        .and_then(|all| all.iter().find(|e| e["service"] == service && e["method"] == method && e["route"] == route))
        .unwrap_or_else(|| panic!("no endpoint {service} {method} {route}:\n{}", brief(report)))
}

/// Checks every count `expect` names on the endpoint and returns it.
fn assert_endpoint<'a>(
    report: &'a Value,
    (service, method, route): (&str, &str, &str),
    expect: &Expect<'_>,
) -> &'a Value {
    let found = endpoint(report, service, method, route);
    let label = format!("{service} {method} {route}");
    assert_eq!(found["requests"].as_u64(), Some(expect.requests), "{label}: requests\n{found:#}");
    for which in ["mean", "p50", "p90", "p95", "p99", "max"] {
        let actual = found["queries_per_request"][which].as_f64().expect("queries_per_request stat");
        assert!(
            (actual - expect.queries as f64).abs() < 1e-9,
            "{label}: queries_per_request.{which} is {actual}, expected {}\n{found:#}",
            expect.queries
        );
    }
    assert_eq!(
        found["connection_spans"].as_u64(),
        Some(expect.connection_spans),
        "{label}: connection_spans\n{found:#}"
    );

    let mut n_plus_one: Vec<(Value, u64)> = found["n_plus_one"]
        .as_array()
        .expect("n_plus_one array")
        .iter()
        .map(|f| (f["tables"].clone(), f["repeats"]["max"].as_u64().expect("repeats.max")))
        .collect();
    let mut expected: Vec<(Value, u64)> = expect.n_plus_one.iter().map(|(t, r)| (json!(t), *r)).collect();
    n_plus_one.sort_by_key(|(t, r)| (t.to_string(), *r));
    expected.sort_by_key(|(t, r)| (t.to_string(), *r));
    assert_eq!(n_plus_one, expected, "{label}: N+1 findings (tables, repeats.max)\n{found:#}");

    let mut duplicates: Vec<(String, u64)> = found["duplicates"]
        .as_array()
        .expect("duplicates array")
        .iter()
        .map(|d| {
            (d["statement"].as_str().unwrap_or_default().to_string(), d["repeats_max"].as_u64().expect("repeats_max"))
        })
        .collect();
    let mut expected: Vec<(String, u64)> = expect.duplicates.iter().map(|(s, r)| (s.to_string(), *r)).collect();
    duplicates.sort();
    expected.sort();
    assert_eq!(duplicates, expected, "{label}: duplicate findings (statement, repeats_max)\n{found:#}");
    found
}

/// Sum of `calls` over the report's `queries`, which must equal the queries counted per request.
fn total_calls(report: &Value) -> u64 {
    report["queries"].as_array().expect("queries array").iter().map(|q| q["calls"].as_u64().expect("calls")).sum()
}

/// The audit codes reported for `service`.
fn audit_codes(report: &Value, service: &str) -> Vec<String> {
    report["audit"]
        .as_array()
        .expect("audit array")
        .iter()
        .filter(|a| a["service"] == service)
        .map(|a| a["code"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The fingerprint of every entry of the report's `queries`, lower-cased, for "this never became
/// a query" checks.
fn fingerprints(report: &Value) -> Vec<String> {
    report["queries"]
        .as_array()
        .expect("queries array")
        .iter()
        .map(|q| q["fingerprint"].as_str().unwrap_or_default().to_ascii_lowercase())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Prisma
// ---------------------------------------------------------------------------------------------

/// Attributes of a Prisma `db_query` span: SQL under `text_key` (`db.query.text`, or
/// `db.statement` in older versions), native `$n` placeholders.
fn prisma_db_query(text_key: &str, sql: &str) -> Vec<KeyValue> {
    vec![string_attr("db.system", "postgresql"), string_attr(text_key, sql)]
}

/// One Prisma client call: `prisma:client:operation` > (`prisma:client:serialize`,
/// `prisma:engine:query` > (`prisma:engine:connection`, `prisma:engine:db_query`,
/// `prisma:engine:serialize`)), spanning `at_us .. at_us + 1000`.
fn prisma_operation(
    trace: &mut TraceBuilder,
    parent: &Id,
    at_us: u64,
    model: &str,
    method: &str,
    sql: &str,
    (db_query_kind, text_key): (SpanKind, &str),
) {
    let op = trace.span(
        Some(parent),
        "prisma:client:operation",
        SpanKind::Internal,
        at_us,
        at_us + 1_000,
        vec![
            string_attr("method", method),
            string_attr("model", model),
            string_attr("name", &format!("{model}.{method}")),
        ],
    );
    trace.span(Some(&op), "prisma:client:serialize", SpanKind::Internal, at_us + 10, at_us + 40, vec![]);
    let query = trace.span(Some(&op), "prisma:engine:query", SpanKind::Internal, at_us + 50, at_us + 980, vec![]);
    trace.span(
        Some(&query),
        "prisma:engine:connection",
        SpanKind::Internal,
        at_us + 60,
        at_us + 200,
        vec![string_attr("db.system", "postgresql")],
    );
    trace.span(
        Some(&query),
        "prisma:engine:db_query",
        db_query_kind,
        at_us + 210,
        at_us + 900,
        prisma_db_query(text_key, sql),
    );
    trace.span(Some(&query), "prisma:engine:serialize", SpanKind::Internal, at_us + 910, at_us + 970, vec![]);
}

#[rstest]
#[case::client_db_query_text((SpanKind::Client, "db.query.text"))]
#[case::internal_db_query_text((SpanKind::Internal, "db.query.text"))]
#[case::client_db_statement_of_older_versions((SpanKind::Client, "db.statement"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prisma_engine_db_query_spans_are_the_queries_and_a_per_row_findmany_is_one_n_plus_one(
    #[case] db_query: (SpanKind, &str),
) {
    let app = Apmtop::start(&FAST_GRACE);
    let users = r#"SELECT "public"."User"."id", "public"."User"."name" FROM "public"."User" WHERE 1=1 OFFSET $1"#;
    let posts = concat!(
        r#"SELECT "public"."Post"."id", "public"."Post"."title", "public"."Post"."authorId" "#,
        r#"FROM "public"."Post" WHERE "public"."Post"."authorId" = $1 OFFSET $2"#
    );
    let mut trace = TraceBuilder::new(100);
    let server =
        trace.span(None, "GET /authors", SpanKind::Server, 0, 20_000, http_stable("GET", "/authors", "/authors"));
    let handler = trace.span(
        Some(&server),
        "request handler - /authors",
        SpanKind::Internal,
        100,
        19_900,
        vec![string_attr("express.type", "request_handler"), string_attr("http.route", "/authors")],
    );
    prisma_operation(&mut trace, &handler, 1_000, "User", "findMany", users, db_query);
    for i in 0..6 {
        prisma_operation(&mut trace, &handler, 3_000 + i * 2_000, "Post", "findMany", posts, db_query);
    }
    export(&app, Transport::HttpProtobuf, export_request("prisma-api", "nodejs", "prisma", vec![trace])).await;

    let report = app.stop();
    let found = assert_endpoint(
        &report,
        ("prisma-api", "GET", "/authors"),
        &Expect { requests: 1, queries: 7, connection_spans: 7, n_plus_one: &[(&["public.Post"], 6)], duplicates: &[] },
    );
    assert_eq!(found["n_plus_one"][0]["statement"], posts, "an example as sent");
    assert_eq!(found["n_plus_one"][0]["db_system"], "postgresql");
    assert_eq!(total_calls(&report), 7);
    assert!(fingerprints(&report).iter().all(|f| !f.contains("prisma")), "no span name became a query");
}

// ---------------------------------------------------------------------------------------------
// Go: otelsql
// ---------------------------------------------------------------------------------------------

/// What an otelsql-wrapped `database/sql` puts on its spans: `db.system` only when the app passes
/// it with `otelsql.WithAttributes`, and the statement under the key its version uses; plus which
/// otelhttp release made the SERVER span.
#[derive(Clone, Copy, Debug)]
struct Otelsql {
    /// `db.query.text` (v0.43+) or `db.statement` (up to v0.42).
    text_key: &'static str,
    /// The app passed `semconv.DBSystemPostgreSQL`: then every span carries it.
    db_system: bool,
    /// An older otelhttp: span named by the handler's operation string, old HTTP names, no
    /// `http.route`.
    legacy_otelhttp: bool,
}

impl Otelsql {
    /// The setup with these three choices.
    const fn new(text_key: &'static str, db_system: bool, legacy_otelhttp: bool) -> Otelsql {
        Otelsql { text_key, db_system, legacy_otelhttp }
    }

    /// Attributes of a span without statement text (`sql.rows`, `sql.conn.reset_session`, ...).
    fn plain(self) -> Vec<KeyValue> {
        if self.db_system { vec![string_attr("db.system", "postgresql")] } else { Vec::new() }
    }

    /// Attributes of a span that carries `sql`.
    fn with_text(self, sql: &str) -> Vec<KeyValue> {
        let mut attributes = self.plain();
        attributes.push(string_attr(self.text_key, sql));
        attributes
    }

    /// The otelhttp SERVER span for `GET /users/7`: with Go 1.22 `ServeMux` pattern
    /// `GET /users/{id}` it is named `GET /users/{id}` with `http.route`; older releases name it
    /// after the operation string passed to `otelhttp.NewHandler` and send old HTTP names only.
    fn server(self, trace: &mut TraceBuilder, to_us: u64) -> Id {
        if self.legacy_otelhttp {
            let attributes = vec![
                string_attr("http.method", "GET"),
                string_attr("http.scheme", "http"),
                string_attr("net.host.name", "127.0.0.1"),
                string_attr("http.target", "/users/7"),
                int_attr("http.status_code", 200),
            ];
            trace.span(None, "users", SpanKind::Server, 0, to_us, attributes)
        } else {
            trace.span(
                None,
                "GET /users/{id}",
                SpanKind::Server,
                0,
                to_us,
                http_stable("GET", "/users/{id}", "/users/7"),
            )
        }
    }
}

// The statement-less spans are connection spans: 1 connect, 7 rows, 6 reset_session, 1 begin_tx
// and 1 commit; without `db.system` they are known by their `sql.*` names.
#[rstest]
#[case::query_text_without_db_system(Otelsql::new("db.query.text", false, false), 16)]
#[case::statement_without_db_system(Otelsql::new("db.statement", false, false), 16)]
#[case::query_text_with_db_system(Otelsql::new("db.query.text", true, false), 16)]
#[case::statement_with_db_system(Otelsql::new("db.statement", true, false), 16)]
#[case::statement_under_legacy_otelhttp(Otelsql::new("db.statement", false, true), 16)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_otelsql_counts_each_conn_query_once_and_never_its_rows_session_or_tx_spans(
    #[case] otelsql: Otelsql,
    #[case] connection_spans: u64,
) {
    let app = Apmtop::start(&FAST_GRACE);
    let user = "SELECT id, name FROM users WHERE id = $1";
    let items = "SELECT sku, qty FROM order_items WHERE order_id = $1";
    let touch = "UPDATE users SET last_seen = now() WHERE id = $1";
    let mut trace = TraceBuilder::new(200);
    let server = otelsql.server(&mut trace, 30_000);
    // database/sql: a new connection, the user row, then one items query per order, each on a
    // connection taken back from the pool (reset_session) and read through sql.rows.
    trace.span(Some(&server), "sql.connector.connect", SpanKind::Client, 100, 900, otelsql.plain());
    trace.span(Some(&server), "sql.conn.query", SpanKind::Client, 1_000, 1_800, otelsql.with_text(user));
    trace.span(Some(&server), "sql.rows", SpanKind::Client, 1_800, 2_000, otelsql.plain());
    for i in 0..6 {
        let at = 3_000 + i * 3_000;
        trace.span(Some(&server), "sql.conn.reset_session", SpanKind::Client, at, at + 100, otelsql.plain());
        trace.span(Some(&server), "sql.conn.query", SpanKind::Client, at + 200, at + 1_500, otelsql.with_text(items));
        trace.span(Some(&server), "sql.rows", SpanKind::Client, at + 1_500, at + 1_800, otelsql.plain());
    }
    trace.span(Some(&server), "sql.conn.begin_tx", SpanKind::Client, 22_000, 22_300, otelsql.plain());
    trace.span(Some(&server), "sql.conn.exec", SpanKind::Client, 22_400, 23_000, otelsql.with_text(touch));
    trace.span(Some(&server), "sql.tx.commit", SpanKind::Client, 23_100, 23_500, otelsql.plain());
    export(&app, Transport::Grpc, export_request("users-go", "go", "github.com/XSAM/otelsql", vec![trace])).await;

    let report = app.stop();
    assert_endpoint(
        &report,
        ("users-go", "GET", "/users/{id}"),
        &Expect { requests: 1, queries: 8, connection_spans, n_plus_one: &[(&["order_items"], 6)], duplicates: &[] },
    );
    assert_eq!(total_calls(&report), 8);
    assert!(fingerprints(&report).iter().all(|f| !f.contains("sql.")), "no otelsql method name became a query");
    assert_eq!(
        audit_codes(&report, "users-go").contains(&"server_spans_without_route".to_string()),
        otelsql.legacy_otelhttp,
        "only the legacy otelhttp span lacks http.route: {:#}",
        report["audit"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_otelsql_without_db_system_or_text_is_audited_as_missing_statements() {
    // otelsql with `DisableQuery: true` and no `otelsql.WithAttributes(semconv.DBSystem...)`:
    // its spans carry no attribute at all; only their names say they are database spans.
    let app = Apmtop::start(&FAST_GRACE);
    let otelsql = Otelsql::new("db.query.text", false, false);
    let mut trace = TraceBuilder::new(205);
    let server = otelsql.server(&mut trace, 20_000);
    trace.span(Some(&server), "sql.conn.prepare", SpanKind::Client, 500, 900, otelsql.plain());
    for i in 0..6 {
        let at = 1_000 + i * 2_000;
        trace.span(Some(&server), "sql.stmt.query", SpanKind::Client, at, at + 1_200, otelsql.plain());
        trace.span(Some(&server), "sql.rows", SpanKind::Client, at + 1_200, at + 1_500, otelsql.plain());
    }
    export(&app, Transport::Grpc, export_request("users-go", "go", "github.com/XSAM/otelsql", vec![trace])).await;

    let report = app.stop();
    assert_endpoint(
        &report,
        ("users-go", "GET", "/users/{id}"),
        &Expect { requests: 1, queries: 0, connection_spans: 13, n_plus_one: &[], duplicates: &[] },
    );
    let codes = audit_codes(&report, "users-go");
    assert!(codes.contains(&"db_spans_without_statement".to_string()), "{:#}", report["audit"]);
    assert!(!codes.contains(&"no_db_spans".to_string()), "its DB spans were seen: {:#}", report["audit"]);
    let entry = report["audit"]
        .as_array()
        .expect("audit")
        .iter()
        .find(|e| e["code"] == "db_spans_without_statement")
        .expect("entry");
    assert!(entry["fix"].as_str().expect("fix").contains("DisableQuery"), "the Go fix: {entry}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_otelsql_prepared_statement_counts_executions_not_the_prepare() {
    // `db.PrepareContext` once, then `stmt.QueryContext` per order: otelsql records the query
    // text on `sql.conn.prepare` as well as on each `sql.stmt.query` (createSpan with
    // enableDBStatement = true for both). The prepare is a sibling that ends before the first
    // execution starts; it executes nothing.
    let app = Apmtop::start(&FAST_GRACE);
    let otelsql = Otelsql::new("db.query.text", true, false);
    let user = "SELECT id, name FROM users WHERE id = $1";
    let items = "SELECT sku, qty FROM order_items WHERE order_id = $1";
    let mut trace = TraceBuilder::new(210);
    let server = otelsql.server(&mut trace, 30_000);
    trace.span(Some(&server), "sql.conn.query", SpanKind::Client, 1_000, 1_800, otelsql.with_text(user));
    trace.span(Some(&server), "sql.rows", SpanKind::Client, 1_800, 2_000, otelsql.plain());
    trace.span(Some(&server), "sql.conn.prepare", SpanKind::Client, 2_500, 2_900, otelsql.with_text(items));
    for i in 0..6 {
        let at = 3_000 + i * 3_000;
        trace.span(Some(&server), "sql.stmt.query", SpanKind::Client, at, at + 1_500, otelsql.with_text(items));
        trace.span(Some(&server), "sql.rows", SpanKind::Client, at + 1_500, at + 1_800, otelsql.plain());
    }
    export(&app, Transport::Grpc, export_request("users-go", "go", "github.com/XSAM/otelsql", vec![trace])).await;

    let report = app.stop();
    let found = endpoint(&report, "users-go", "GET", "/users/{id}");
    let queries = found["queries_per_request"]["max"].as_f64().expect("queries_per_request.max");
    assert!((queries - 7.0).abs() < 1e-9, "1 user query + 6 executions, the prepare is not one: {found:#}");
    let n_plus_one = found["n_plus_one"].as_array().expect("n_plus_one");
    assert_eq!(n_plus_one.len(), 1, "{found:#}");
    assert_eq!(n_plus_one[0]["repeats"]["max"], 6, "six executions of the prepared statement: {found:#}");
    assert_eq!(n_plus_one[0]["tables"], json!(["order_items"]));
    assert!(found["duplicates"].as_array().expect("duplicates").is_empty(), "{found:#}");
    assert_eq!(total_calls(&report), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_otelsql_mysql_err_skip_fallback_counts_each_query_once() {
    // go-sql-driver/mysql without interpolateParams answers QueryContext with driver.ErrSkip when
    // there are arguments. otelsql has already opened `sql.conn.query` (with the text) and ends
    // it with the error recorded; database/sql then falls back to `sql.conn.prepare` and
    // `sql.stmt.query`, both with the same text. Three sibling spans, one execution.
    let app = Apmtop::start(&FAST_GRACE);
    let otelsql = Otelsql::new("db.query.text", true, false);
    let user = "SELECT id, name FROM users WHERE id = ?";
    let items = "SELECT sku, qty FROM order_items WHERE order_id = ?";
    let mut trace = TraceBuilder::new(220);
    let server = otelsql.server(&mut trace, 40_000);
    for (i, sql) in std::iter::once(user).chain(std::iter::repeat_n(items, 6)).enumerate() {
        let at = 1_000 + i as u64 * 4_000;
        trace.span(Some(&server), "sql.conn.query", SpanKind::Client, at, at + 20, otelsql.with_text(sql));
        let skipped = trace.spans.last_mut().expect("the span just added");
        skipped.status = Some(Status {
            code: status::StatusCode::Error as i32,
            message: "driver: skip fast-path; continue as if unimplemented".to_string(),
        });
        trace.span(Some(&server), "sql.conn.prepare", SpanKind::Client, at + 100, at + 600, otelsql.with_text(sql));
        trace.span(Some(&server), "sql.stmt.query", SpanKind::Client, at + 700, at + 2_000, otelsql.with_text(sql));
        trace.span(Some(&server), "sql.rows", SpanKind::Client, at + 2_000, at + 2_300, otelsql.plain());
    }
    export(&app, Transport::Grpc, export_request("users-go", "go", "github.com/XSAM/otelsql", vec![trace])).await;

    let report = app.stop();
    let found = endpoint(&report, "users-go", "GET", "/users/{id}");
    let queries = found["queries_per_request"]["max"].as_f64().expect("queries_per_request.max");
    assert!((queries - 7.0).abs() < 1e-9, "7 executions, one per stmt.query: {found:#}");
    let n_plus_one = found["n_plus_one"].as_array().expect("n_plus_one");
    assert_eq!(n_plus_one.len(), 1, "{found:#}");
    assert_eq!(n_plus_one[0]["repeats"]["max"], 6, "six item lookups: {found:#}");
    assert_eq!(n_plus_one[0]["tables"], json!(["order_items"]));
    assert!(found["duplicates"].as_array().expect("duplicates").is_empty(), "{found:#}");
    assert_eq!(total_calls(&report), 7);
}

// ---------------------------------------------------------------------------------------------
// Node.js: knex over pg, mysql2, Express
// ---------------------------------------------------------------------------------------------

/// Old-convention attributes of node-postgres' `pg.query:*` span.
fn pg_query_old(sql: &str) -> Vec<KeyValue> {
    vec![
        string_attr("db.system", "postgresql"),
        string_attr("db.name", "shop"),
        string_attr("db.connection_string", "postgresql://127.0.0.1:5432/shop"),
        string_attr("net.peer.name", "127.0.0.1"),
        int_attr("net.peer.port", 5432),
        string_attr("db.user", "shop"),
        string_attr("db.statement", sql),
    ]
}

/// Old-convention attributes of knex's span: `?` bindings, the knex method as operation.
fn knex_old(sql: &str, method: &str, table: &str) -> Vec<KeyValue> {
    vec![
        string_attr("knex.version", "3.1.0"),
        string_attr("db.system", "postgresql"),
        string_attr("db.sql.table", table),
        string_attr("db.operation", method),
        string_attr("db.user", "shop"),
        string_attr("db.name", "shop"),
        string_attr("net.peer.name", "127.0.0.1"),
        int_attr("net.peer.port", 5432),
        string_attr("net.transport", "IP.TCP"),
        string_attr("db.statement", sql),
    ]
}

/// A knex call and the pg query it runs, nested, spanning `at_us .. at_us + 1000`.
fn knex_over_pg(trace: &mut TraceBuilder, parent: &Id, at_us: u64, knex: (&str, &str, &str), pg_sql: &str) {
    let (knex_sql, method, table) = knex;
    let outer = trace.span(
        Some(parent),
        &format!("{method} shop.{table}"),
        SpanKind::Client,
        at_us,
        at_us + 1_000,
        knex_old(knex_sql, method, table),
    );
    let verb = pg_sql.split_whitespace().next().unwrap_or("QUERY").to_ascii_uppercase();
    trace.span(
        Some(&outer),
        &format!("pg.query:{verb} shop"),
        SpanKind::Client,
        at_us + 100,
        at_us + 900,
        pg_query_old(pg_sql),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knex_span_over_its_pg_span_is_one_query_and_never_a_duplicate() {
    let app = Apmtop::start(&FAST_GRACE);
    let mut trace = TraceBuilder::new(300);
    let server = trace.span(None, "GET /books", SpanKind::Server, 0, 20_000, http_stable("GET", "/books", "/books"));
    let handler = trace.span(Some(&server), "request handler - /books", SpanKind::Internal, 100, 19_900, vec![]);
    // The first knex call checks a connection out of the pool: pg's connect span sits under it.
    let first = trace.span(
        Some(&handler),
        "select shop.books",
        SpanKind::Client,
        500,
        2_500,
        knex_old(r#"select "id", "title", "author_id" from "shop"."books" where "published" = ?"#, "select", "books"),
    );
    trace.span(
        Some(&first),
        "pg.connect",
        SpanKind::Client,
        600,
        1_400,
        vec![string_attr("db.system", "postgresql"), string_attr("db.name", "shop")],
    );
    trace.span(
        Some(&first),
        "pg.query:SELECT shop",
        SpanKind::Client,
        1_500,
        2_400,
        pg_query_old(r#"select "id", "title", "author_id" from "shop"."books" where "published" = $1"#),
    );
    for i in 0..5 {
        knex_over_pg(
            &mut trace,
            &handler,
            3_000 + i * 1_500,
            (r#"select * from "shop"."authors" where "id" = ? limit ?"#, "first", "authors"),
            r#"select * from "shop"."authors" where "id" = $1 limit $2"#,
        );
    }
    export(&app, Transport::HttpProtobuf, export_request("books-knex", "nodejs", "knex", vec![trace])).await;

    let report = app.stop();
    assert_endpoint(
        &report,
        ("books-knex", "GET", "/books"),
        &Expect {
            requests: 1,
            queries: 6,
            connection_spans: 1,
            n_plus_one: &[(&["shop.authors"], 5)],
            duplicates: &[],
        },
    );
    assert_eq!(total_calls(&report), 6, "the knex twins are not calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knex_text_truncated_at_1022_chars_over_its_pg_span_is_one_query() {
    let app = Apmtop::start(&FAST_GRACE);
    let columns = (0..40).map(|i| format!("\"attribute_{i:02}\"")).collect::<Vec<_>>().join(", ");
    let rows = 20;
    let knex_values = vec![format!("({})", vec!["?"; 40].join(", ")); rows].join(", ");
    let knex_full = format!(r#"insert into "shop"."events" ({columns}) values {knex_values}"#);
    let knex_sql: String = knex_full.chars().take(1022).collect();
    assert!(knex_full.len() > 1022 && !knex_sql.ends_with(')'), "the knex text is cut mid-statement");
    let pg_values = (0..rows)
        .map(|r| format!("({})", (1..=40).map(|c| format!("${}", r * 40 + c)).collect::<Vec<_>>().join(", ")))
        .collect::<Vec<_>>()
        .join(", ");
    let pg_sql = format!(r#"insert into "shop"."events" ({columns}) values {pg_values}"#);

    let mut trace = TraceBuilder::new(310);
    let server =
        trace.span(None, "POST /events", SpanKind::Server, 0, 5_000, http_stable("POST", "/events", "/events"));
    knex_over_pg(&mut trace, &server, 1_000, (&knex_sql, "insert", "events"), &pg_sql);
    export(&app, Transport::HttpProtobuf, export_request("events-knex", "nodejs", "knex", vec![trace])).await;

    let report = app.stop();
    assert_endpoint(
        &report,
        ("events-knex", "POST", "/events"),
        &Expect { requests: 1, queries: 1, connection_spans: 0, n_plus_one: &[], duplicates: &[] },
    );
    assert_eq!(total_calls(&report), 1);
}

/// mysql2's query span: named by the first word, values interpolated into the text.
fn mysql2_query(conventions: Conventions, sql: &str) -> Vec<KeyValue> {
    let verb = sql.split_whitespace().next().unwrap_or_default();
    match conventions {
        Conventions::Old => vec![
            string_attr("db.system", "mysql"),
            string_attr("db.connection_string", "jdbc:mysql://127.0.0.1:3306/shop"),
            string_attr("db.name", "shop"),
            string_attr("db.user", "shop"),
            string_attr("net.peer.name", "127.0.0.1"),
            int_attr("net.peer.port", 3306),
            string_attr("db.statement", sql),
        ],
        Conventions::Stable => vec![
            string_attr("db.system.name", "mysql"),
            string_attr("db.namespace", "shop"),
            string_attr("server.address", "127.0.0.1"),
            int_attr("server.port", 3306),
            string_attr("db.operation.name", verb),
            string_attr("db.query.text", sql),
        ],
        Conventions::Both => {
            let mut both = mysql2_query(Conventions::Old, sql);
            both.extend(mysql2_query(Conventions::Stable, sql));
            both
        }
    }
}

/// Which generation of DB attribute names a span carries.
#[derive(Clone, Copy, Debug)]
enum Conventions {
    /// `db.system`, `db.statement`, `db.name`, ...
    Old,
    /// `db.system.name`, `db.query.text`, `db.namespace`, ...
    Stable,
    /// Both, as `OTEL_SEMCONV_STABILITY_OPT_IN=database/dup` sends them.
    Both,
}

#[rstest]
#[case::old_db_statement(Conventions::Old)]
#[case::stable_db_query_text(Conventions::Stable)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql2_inlined_ids_make_one_n_plus_one_and_the_same_id_twice_a_duplicate(#[case] conventions: Conventions) {
    let app = Apmtop::start(&FAST_GRACE);
    let customer = "SELECT * FROM customers WHERE id = 42";
    let mut trace = TraceBuilder::new(400);
    let server = trace.span(
        None,
        "GET /customers/:id/orders",
        SpanKind::Server,
        0,
        20_000,
        http_stable("GET", "/customers/:id/orders", "/customers/42/orders"),
    );
    trace.span(Some(&server), "SELECT", SpanKind::Client, 500, 1_500, mysql2_query(conventions, customer));
    // One orders query per id of a list the handler got elsewhere; id 42 comes up twice.
    for (i, id) in [41, 42, 43, 44, 45, 42].into_iter().enumerate() {
        let at = 2_000 + i as u64 * 1_500;
        let sql = format!("SELECT * FROM orders WHERE customer_id = {id}");
        trace.span(Some(&server), "SELECT", SpanKind::Client, at, at + 1_000, mysql2_query(conventions, &sql));
    }
    export(&app, Transport::HttpProtobuf, export_request("orders-mysql", "nodejs", "mysql2", vec![trace])).await;

    let report = app.stop();
    let found = assert_endpoint(
        &report,
        ("orders-mysql", "GET", "/customers/:id/orders"),
        &Expect {
            requests: 1,
            queries: 7,
            connection_spans: 0,
            n_plus_one: &[(&["orders"], 6)],
            duplicates: &[("SELECT * FROM orders WHERE customer_id = 42", 2)],
        },
    );
    assert_eq!(found["n_plus_one"][0]["db_system"], "mysql");
    let fingerprint = found["n_plus_one"][0]["fingerprint"].as_str().expect("fingerprint");
    assert!(!fingerprint.contains("41") && !fingerprint.contains("45"), "literals folded in {fingerprint:?}");
    assert_eq!(total_calls(&report), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knex_over_mysql2_duplicates_are_found_on_the_inner_literal_text_and_the_twin_is_not_one() {
    // knex sends `?` bindings; the mysql2 span below it has the values interpolated. The same
    // customer loaded twice is a duplicate (of the mysql2 text); the knex twins are neither
    // queries nor duplicates.
    let app = Apmtop::start(&FAST_GRACE);
    let knex_sql = "select * from `customers` where `id` = ? limit ?";
    let mysql_sql = "select * from `customers` where `id` = 42 limit 1";
    let mut trace = TraceBuilder::new(410);
    let server = trace.span(
        None,
        "GET /customers/:id",
        SpanKind::Server,
        0,
        10_000,
        http_stable("GET", "/customers/:id", "/customers/42"),
    );
    for at in [1_000, 4_000] {
        let mut knex = knex_old(knex_sql, "first", "customers");
        knex.retain(|kv| kv.key != "db.system");
        knex.push(string_attr("db.system", "mysql"));
        let outer = trace.span(Some(&server), "first shop.customers", SpanKind::Client, at, at + 2_000, knex);
        trace.span(
            Some(&outer),
            "select",
            SpanKind::Client,
            at + 200,
            at + 1_800,
            mysql2_query(Conventions::Old, mysql_sql),
        );
    }
    export(&app, Transport::HttpProtobuf, export_request("customers-knex", "nodejs", "knex", vec![trace])).await;

    let report = app.stop();
    assert_endpoint(
        &report,
        ("customers-knex", "GET", "/customers/:id"),
        &Expect { requests: 1, queries: 2, connection_spans: 0, n_plus_one: &[], duplicates: &[(mysql_sql, 2)] },
    );
    assert_eq!(total_calls(&report), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn express_db_spans_deep_under_middleware_chain_belong_to_the_request() {
    // instrumentation-express: each middleware span is the active context when it calls next(),
    // so the chain nests: middleware - query > middleware - expressInit > router - /api >
    // request handler - /books; pg spans sit at depth 5 below the SERVER span.
    let app = Apmtop::start(&FAST_GRACE);
    let books = "SELECT id, title, author_id FROM books ORDER BY id LIMIT $1";
    let author = "SELECT id, name FROM authors WHERE id = $1";
    let mut trace = TraceBuilder::new(500);
    let server =
        trace.span(None, "GET /api/books", SpanKind::Server, 0, 20_000, http_stable("GET", "/api/books", "/api/books"));
    let express = |name: &str, kind: &str| {
        vec![string_attr("express.name", name), string_attr("express.type", kind), string_attr("http.route", "/api")]
    };
    let query = trace.span(
        Some(&server),
        "middleware - query",
        SpanKind::Internal,
        100,
        19_900,
        express("query", "middleware"),
    );
    let init = trace.span(
        Some(&query),
        "middleware - expressInit",
        SpanKind::Internal,
        200,
        19_800,
        express("expressInit", "middleware"),
    );
    let router = trace.span(Some(&init), "router - /api", SpanKind::Internal, 300, 19_700, express("/api", "router"));
    let handler = trace.span(
        Some(&router),
        "request handler - /api/books",
        SpanKind::Internal,
        400,
        19_600,
        express("/api/books", "request_handler"),
    );
    trace.span(
        Some(&handler),
        "pg-pool.connect",
        SpanKind::Client,
        500,
        900,
        vec![string_attr("db.system", "postgresql"), string_attr("db.name", "shop")],
    );
    trace.span(Some(&handler), "pg.query:SELECT shop", SpanKind::Client, 1_000, 2_000, pg_query_old(books));
    for i in 0..5 {
        let at = 2_500 + i * 1_500;
        trace.span(Some(&handler), "pg.query:SELECT shop", SpanKind::Client, at, at + 1_000, pg_query_old(author));
    }
    // An outgoing HTTP call from the handler: a CLIENT span, but no DB span.
    trace.span(
        Some(&handler),
        "GET",
        SpanKind::Client,
        11_000,
        15_000,
        vec![
            string_attr("http.request.method", "GET"),
            string_attr("url.full", "http://127.0.0.1:9/prices?ids=1,2,3"),
            int_attr("http.response.status_code", 200),
        ],
    );
    export(&app, Transport::HttpProtobuf, export_request("books-express", "nodejs", "express", vec![trace])).await;

    let report = app.stop();
    assert_endpoint(
        &report,
        ("books-express", "GET", "/api/books"),
        &Expect { requests: 1, queries: 6, connection_spans: 1, n_plus_one: &[(&["authors"], 5)], duplicates: &[] },
    );
    assert_eq!(report["totals"]["requests"], 1, "the middleware spans start no request of their own");
    assert_eq!(total_calls(&report), 6);
}

/// node-postgres query attributes in one convention generation (or both).
fn pg_query(conventions: Conventions, sql: &str) -> Vec<KeyValue> {
    match conventions {
        Conventions::Old => pg_query_old(sql),
        Conventions::Stable => vec![
            string_attr("db.system.name", "postgresql"),
            string_attr("db.namespace", "shop"),
            string_attr("server.address", "127.0.0.1"),
            int_attr("server.port", 5432),
            string_attr("db.query.text", sql),
        ],
        Conventions::Both => {
            let mut both = pg_query(Conventions::Old, sql);
            both.extend(pg_query(Conventions::Stable, sql));
            both
        }
    }
}

/// HTTP SERVER attributes in one generation (or both, as `http/dup` sends them).
fn http_server(conventions: Conventions, method: &str, route: &str, path: &str) -> Vec<KeyValue> {
    match conventions {
        Conventions::Old => http_old(method, route, path),
        Conventions::Stable => http_stable(method, route, path),
        Conventions::Both => {
            let mut both = http_old(method, route, path);
            both.extend(http_stable(method, route, path).into_iter().filter(|kv| kv.key != "http.route"));
            both
        }
    }
}

#[rstest]
#[case::old_only(Conventions::Old)]
#[case::stable_only(Conventions::Stable)]
#[case::both_with_dup_opt_in(Conventions::Both)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_stable_and_dup_conventions_give_the_same_counts_and_findings(#[case] conventions: Conventions) {
    let app = Apmtop::start(&FAST_GRACE);
    let order = "SELECT id, customer_id FROM orders WHERE id = $1";
    let line = "SELECT id, sku FROM order_lines WHERE order_id = $1";
    let status = "SELECT * FROM order_status WHERE code = 'shipped'";
    let mut traces = Vec::new();
    for seed in [600, 601] {
        let mut trace = TraceBuilder::new(seed);
        let server = trace.span(
            None,
            "GET /orders/:id",
            SpanKind::Server,
            0,
            20_000,
            http_server(conventions, "GET", "/orders/:id", &format!("/orders/{seed}")),
        );
        let connect = match conventions {
            Conventions::Old => vec![string_attr("db.system", "postgresql")],
            Conventions::Stable => vec![string_attr("db.system.name", "postgresql")],
            Conventions::Both => {
                vec![string_attr("db.system", "postgresql"), string_attr("db.system.name", "postgresql")]
            }
        };
        trace.span(Some(&server), "pg-pool.connect", SpanKind::Client, 100, 400, connect);
        trace.span(Some(&server), "pg.query:SELECT shop", SpanKind::Client, 500, 1_400, pg_query(conventions, order));
        for i in 0..5 {
            let at = 1_500 + i * 1_000;
            trace.span(
                Some(&server),
                "pg.query:SELECT shop",
                SpanKind::Client,
                at,
                at + 900,
                pg_query(conventions, line),
            );
        }
        for at in [8_000, 9_000] {
            trace.span(
                Some(&server),
                "pg.query:SELECT shop",
                SpanKind::Client,
                at,
                at + 900,
                pg_query(conventions, status),
            );
        }
        traces.push(trace);
    }
    export(&app, Transport::HttpProtobuf, export_request("orders-pg", "nodejs", "pg", traces)).await;

    let report = app.stop();
    assert_endpoint(
        &report,
        ("orders-pg", "GET", "/orders/:id"),
        &Expect {
            requests: 2,
            queries: 8,
            connection_spans: 2,
            n_plus_one: &[(&["order_lines"], 5)],
            duplicates: &[(status, 2)],
        },
    );
    assert_eq!(total_calls(&report), 16, "dup attributes do not double the calls");
    let systems: Vec<&Value> = report["queries"].as_array().expect("queries").iter().map(|q| &q["db_system"]).collect();
    assert!(systems.iter().all(|s| *s == "postgresql"), "db_system of every query: {systems:?}");
}

// ---------------------------------------------------------------------------------------------
// Python: SQLAlchemy over psycopg2
// ---------------------------------------------------------------------------------------------

/// How the SQLAlchemy span and the psycopg2 span of one execution relate.
#[derive(Clone, Copy, Debug)]
enum Twin {
    /// The psycopg2 span is a child of the SQLAlchemy span.
    Nested,
    /// Both are children of the same span, the psycopg2 one inside the other in time.
    Siblings,
}

/// One SQLAlchemy execution with the driver (psycopg2, asyncpg) also instrumented: the engine
/// span from `from_us` to `to_us`, the driver's span (named by the verb) 100 µs inside it.
fn sqlalchemy_over_driver(trace: &mut TraceBuilder, parent: &Id, (from_us, to_us): (u64, u64), sql: &str, twin: Twin) {
    let engine = trace.span(
        Some(parent),
        "SELECT shop",
        SpanKind::Client,
        from_us,
        to_us,
        vec![
            string_attr("db.statement", sql),
            string_attr("db.system", "postgresql"),
            string_attr("db.name", "shop"),
            string_attr("db.operation", "SELECT shop"),
            string_attr("net.peer.name", "127.0.0.1"),
            int_attr("net.peer.port", 5432),
        ],
    );
    let driver_parent = match twin {
        Twin::Nested => engine,
        Twin::Siblings => parent.clone(),
    };
    trace.span(
        Some(&driver_parent),
        "SELECT",
        SpanKind::Client,
        from_us + 100,
        to_us - 100,
        vec![
            string_attr("db.system", "postgresql"),
            string_attr("db.name", "shop"),
            string_attr("db.statement", sql),
            string_attr("db.user", "shop"),
            string_attr("net.peer.name", "127.0.0.1"),
            int_attr("net.peer.port", 5432),
        ],
    );
}

#[rstest]
#[case::driver_span_nested_in_engine_span(Twin::Nested)]
#[case::driver_span_sibling_inside_engine_span(Twin::Siblings)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlalchemy_and_psycopg2_spans_of_one_execution_count_once_and_are_never_duplicates(#[case] twin: Twin) {
    let app = Apmtop::start(&FAST_GRACE);
    let book = "SELECT books.id, books.title, books.author_id FROM books WHERE books.id = %(id_1)s";
    let author =
        "SELECT authors.id AS authors_id, authors.name AS authors_name FROM authors WHERE authors.id = %(pk_1)s";
    let mut trace = TraceBuilder::new(700 + twin as u64);
    let server = trace.span(
        None,
        "GET /books/<int:book_id>",
        SpanKind::Server,
        0,
        20_000,
        http_old("GET", "/books/<int:book_id>", "/books/3"),
    );
    // SQLAlchemy's pool checkout of a new connection.
    trace.span(
        Some(&server),
        "connect",
        SpanKind::Client,
        100,
        600,
        vec![string_attr("db.system", "postgresql"), string_attr("db.name", "shop")],
    );
    sqlalchemy_over_driver(&mut trace, &server, (1_000, 2_000), book, twin);
    // Lazy loading one relationship per row: five authors.
    for i in 0..5 {
        let at = 2_500 + i * 1_500;
        sqlalchemy_over_driver(&mut trace, &server, (at, at + 1_000), author, twin);
    }
    export(&app, Transport::Grpc, export_request("books-flask", "python", "sqlalchemy", vec![trace])).await;

    let report = app.stop();
    assert_endpoint(
        &report,
        ("books-flask", "GET", "/books/<int:book_id>"),
        &Expect { requests: 1, queries: 6, connection_spans: 1, n_plus_one: &[(&["authors"], 5)], duplicates: &[] },
    );
    assert_eq!(total_calls(&report), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psycopg2_captured_parameters_tell_the_n_plus_one_from_the_duplicate() {
    // dbapi with capture_parameters=True: `db.statement.parameters` is str() of the argument
    // tuple. Five authors by id make an N+1; the same book loaded twice is a duplicate.
    let app = Apmtop::start(&FAST_GRACE);
    let book = "SELECT id, title FROM books WHERE id = %s";
    let author = "SELECT id, name FROM authors WHERE id = %s";
    let psycopg2 = |sql: &str, parameters: &str| {
        vec![
            string_attr("db.system", "postgresql"),
            string_attr("db.name", "shop"),
            string_attr("db.statement", sql),
            string_attr("db.statement.parameters", parameters),
            string_attr("db.user", "shop"),
            string_attr("net.peer.name", "127.0.0.1"),
            int_attr("net.peer.port", 5432),
        ]
    };
    let mut trace = TraceBuilder::new(730);
    let server =
        trace.span(None, "GET /books/<id>", SpanKind::Server, 0, 20_000, http_old("GET", "/books/<id>", "/books/3"));
    for (i, (sql, parameters)) in [
        (book, "(3,)"),
        (author, "(11,)"),
        (author, "(12,)"),
        (author, "(13,)"),
        (author, "(14,)"),
        (author, "(15,)"),
        (book, "(3,)"),
    ]
    .into_iter()
    .enumerate()
    {
        let at = 1_000 + i as u64 * 1_500;
        trace.span(Some(&server), "SELECT", SpanKind::Client, at, at + 1_000, psycopg2(sql, parameters));
    }
    export(&app, Transport::Grpc, export_request("books-flask", "python", "psycopg2", vec![trace])).await;

    let report = app.stop();
    assert_endpoint(
        &report,
        ("books-flask", "GET", "/books/<id>"),
        &Expect {
            requests: 1,
            queries: 7,
            connection_spans: 0,
            n_plus_one: &[(&["authors"], 5)],
            duplicates: &[(book, 2)],
        },
    );
    assert_eq!(total_calls(&report), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sqlalchemy_and_asyncpg_sibling_twins_each_starting_after_the_previous_twin_count_once() {
    concurrent_sqlalchemy_and_asyncpg_sibling_twins(150).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sqlalchemy_and_asyncpg_sibling_twins_interleaved_in_start_order_count_once() {
    concurrent_sqlalchemy_and_asyncpg_sibling_twins(30).await;
}

/// An async handler awaiting five author loads at once (asyncio.gather over separate sessions):
/// each engine span has its asyncpg twin 100 µs inside it in time, as siblings, and the five
/// pairs overlap one another; the engine spans start `step_us` apart.
async fn concurrent_sqlalchemy_and_asyncpg_sibling_twins(step_us: u64) {
    let app = Apmtop::start(&FAST_GRACE);
    let book = "SELECT books.id, books.title, books.author_id FROM books WHERE books.id = $1::INTEGER";
    let author = "SELECT authors.id, authors.name FROM authors WHERE authors.id = $1::INTEGER";
    let mut trace = TraceBuilder::new(720);
    let server = trace.span(
        None,
        "GET /books/{book_id}",
        SpanKind::Server,
        0,
        20_000,
        http_old("GET", "/books/{book_id}", "/books/3"),
    );
    sqlalchemy_over_driver(&mut trace, &server, (1_000, 2_000), book, Twin::Siblings);
    for i in 0..5 {
        let at = 3_000 + i * step_us;
        sqlalchemy_over_driver(&mut trace, &server, (at, at + 3_000), author, Twin::Siblings);
    }
    export(&app, Transport::Grpc, export_request("books-fastapi", "python", "sqlalchemy", vec![trace])).await;

    let report = app.stop();
    assert_endpoint(
        &report,
        ("books-fastapi", "GET", "/books/{book_id}"),
        &Expect { requests: 1, queries: 6, connection_spans: 0, n_plus_one: &[(&["authors"], 5)], duplicates: &[] },
    );
    assert_eq!(total_calls(&report), 6);
}

// ---------------------------------------------------------------------------------------------
// .NET: EF Core over SqlClient, and old SqlClient without statements
// ---------------------------------------------------------------------------------------------

/// Stable-convention attributes of a SQL Server query span.
fn sql_server_query(sql: &str) -> Vec<KeyValue> {
    vec![
        string_attr("db.system.name", "microsoft.sql_server"),
        string_attr("db.namespace", "Shop"),
        string_attr("server.address", "127.0.0.1"),
        int_attr("server.port", 1433),
        string_attr("db.query.text", sql),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dotnet_ef_core_bracketed_sql_counts_and_old_sqlclient_without_text_is_audited_not_counted() {
    let app = Apmtop::start(&FAST_GRACE);
    let order = "SELECT TOP(1) [o].[Id], [o].[CustomerId] FROM [Orders] AS [o] WHERE [o].[Id] = @__id_0";
    let product = "SELECT [p].[Id], [p].[Name], [p].[Price] FROM [Products] AS [p] WHERE [p].[Id] = @__p_0";

    // EF Core with SqlClient instrumentation too: the EF span (named after the database) wraps
    // SqlClient's span (named by its query summary) carrying the same text.
    let mut ef = TraceBuilder::new(800);
    let server = ef.span(
        None,
        "GET api/orders/{id}",
        SpanKind::Server,
        0,
        20_000,
        http_stable("GET", "api/orders/{id}", "/api/orders/5"),
    );
    let ef_query = |trace: &mut TraceBuilder, at: u64, sql: &str, summary: &str| {
        let outer = trace.span(Some(&server), "Shop", SpanKind::Client, at, at + 1_000, sql_server_query(sql));
        let mut attributes = sql_server_query(sql);
        attributes.push(string_attr("db.query.summary", summary));
        trace.span(Some(&outer), summary, SpanKind::Client, at + 100, at + 900, attributes);
    };
    ef_query(&mut ef, 500, order, "SELECT Orders");
    for i in 0..5 {
        ef_query(&mut ef, 2_000 + i * 1_500, product, "SELECT Products");
    }

    // An app on an older SqlClient instrumentation (SetDbStatementForText false by default).
    let mut legacy = TraceBuilder::new(810);
    let server = legacy.span(
        None,
        "GET Orders/Details/{id}",
        SpanKind::Server,
        0,
        10_000,
        http_old("GET", "Orders/Details/{id}", "/Orders/Details/5"),
    );
    for i in 0..4 {
        let at = 500 + i * 2_000;
        legacy.span(
            Some(&server),
            "Shop",
            SpanKind::Client,
            at,
            at + 1_500,
            vec![
                string_attr("db.system", "mssql"),
                string_attr("db.name", "Shop"),
                string_attr("peer.service", "127.0.0.1"),
                string_attr("net.peer.name", "127.0.0.1"),
            ],
        );
    }
    let mut request =
        export_request("orders-efcore", "dotnet", "OpenTelemetry.Instrumentation.EntityFrameworkCore", vec![ef]);
    request.resource_spans.extend(
        export_request("legacy-sqlclient", "dotnet", "OpenTelemetry.Instrumentation.SqlClient", vec![legacy])
            .resource_spans,
    );
    export(&app, Transport::Grpc, request).await;

    let report = app.stop();
    assert_endpoint(
        &report,
        ("orders-efcore", "GET", "/api/orders/{id}"),
        &Expect { requests: 1, queries: 6, connection_spans: 0, n_plus_one: &[(&["Products"], 5)], duplicates: &[] },
    );
    assert_endpoint(
        &report,
        ("legacy-sqlclient", "GET", "/Orders/Details/{id}"),
        &Expect { requests: 1, queries: 0, connection_spans: 4, n_plus_one: &[], duplicates: &[] },
    );
    assert_eq!(total_calls(&report), 6, "only EF Core's executions are queries");
    assert!(
        audit_codes(&report, "legacy-sqlclient").contains(&"db_spans_without_statement".to_string()),
        "the statement-less service is audited: {:#}",
        report["audit"]
    );
    assert!(
        !audit_codes(&report, "orders-efcore").contains(&"db_spans_without_statement".to_string()),
        "the EF Core service sends statements: {:#}",
        report["audit"]
    );
    let fix = report["audit"]
        .as_array()
        .expect("audit")
        .iter()
        .find(|a| a["service"] == "legacy-sqlclient" && a["code"] == "db_spans_without_statement")
        .and_then(|a| a["fix"].as_str())
        .unwrap_or_default();
    assert!(fix.contains("SetDbStatementForText"), "the .NET fix names the option: {fix:?}");
}

// ---------------------------------------------------------------------------------------------
// Ruby: pg with the obfuscator, Rails routes
// ---------------------------------------------------------------------------------------------

/// Attributes of the Ruby pg instrumentation's query span (old names, obfuscated text).
fn ruby_pg(sql: &str, table: &str) -> Vec<KeyValue> {
    vec![
        string_attr("db.system", "postgresql"),
        string_attr("db.name", "app_production"),
        string_attr("db.user", "app"),
        string_attr("db.operation", "SELECT"),
        string_attr("db.collection.name", table),
        string_attr("net.peer.name", "127.0.0.1"),
        int_attr("net.peer.port", 5432),
        string_attr("db.statement", sql),
    ]
}

/// A Rails request: the Rack SERVER span renamed by action_pack to the route, old HTTP names.
fn rails_server(trace: &mut TraceBuilder, route: &str, path: &str) -> Id {
    trace.span(None, &format!("GET {route}"), SpanKind::Server, 0, 30_000, http_old("GET", route, path))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ruby_obfuscated_dollar_question_statements_form_an_n_plus_one_but_obfuscator_sentinels_do_not() {
    let app = Apmtop::start(&FAST_GRACE);
    let user = r#"SELECT "users".* FROM "users" WHERE "users"."id" = $? LIMIT $?"#;
    let posts = r#"SELECT "posts".* FROM "posts" WHERE "posts"."user_id" = $?"#;
    let comments = r#"SELECT COUNT(*) FROM "comments" WHERE "comments"."post_id" = $?"#;

    let mut show = TraceBuilder::new(900);
    let server = rails_server(&mut show, "/users/:id", "/users/7");
    let controller = show.span(Some(&server), "UsersController#show", SpanKind::Internal, 100, 29_900, vec![]);
    show.span(
        Some(&controller),
        "connect",
        SpanKind::Client,
        200,
        700,
        vec![string_attr("db.system", "postgresql"), string_attr("db.name", "app_production")],
    );
    let active_record = |trace: &mut TraceBuilder, at: u64, model: &str, sql: &str, table: &str| {
        let outer =
            trace.span(Some(&controller), &format!("{model} query"), SpanKind::Internal, at, at + 1_000, vec![]);
        trace.span(Some(&outer), "SELECT app_production", SpanKind::Client, at + 100, at + 900, ruby_pg(sql, table));
    };
    active_record(&mut show, 1_000, "User", user, "users");
    active_record(&mut show, 2_500, "Post", posts, "posts");
    for i in 0..6 {
        active_record(&mut show, 4_000 + i * 1_500, "Comment", comments, "comments");
    }

    // Six unrelated long statements, each replaced by the same sentinel text, then five that
    // the obfuscator could not handle.
    let mut report_trace = TraceBuilder::new(901);
    let server = rails_server(&mut report_trace, "/reports/:id", "/reports/3");
    for i in 0..11 {
        let at = 1_000 + i * 2_000;
        let sentinel = if i < 6 { RUBY_TOO_LONG } else { RUBY_MALFORMED };
        report_trace.span(
            Some(&server),
            "SELECT app_production",
            SpanKind::Client,
            at,
            at + 1_500,
            ruby_pg(sentinel, "reports"),
        );
    }
    export(
        &app,
        Transport::HttpProtobuf,
        export_request("blog-rails", "ruby", "OpenTelemetry::Instrumentation::PG", vec![show, report_trace]),
    )
    .await;

    let report = app.stop();
    assert_endpoint(
        &report,
        ("blog-rails", "GET", "/users/:id"),
        &Expect { requests: 1, queries: 8, connection_spans: 1, n_plus_one: &[(&["comments"], 6)], duplicates: &[] },
    );
    assert_endpoint(
        &report,
        ("blog-rails", "GET", "/reports/:id"),
        &Expect { requests: 1, queries: 11, connection_spans: 0, n_plus_one: &[], duplicates: &[] },
    );
    assert_eq!(total_calls(&report), 19);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ruby_rails_prepared_statements_count_executions_not_the_prepare() {
    // Rails' PostgreSQL adapter prepares each statement once per connection and runs it with
    // exec_prepared. The pg instrumentation names those spans `PREPARE <db>` (statement text,
    // db.operation PREPARE) and `EXECUTE <db>` (the cached text, db.operation EXECUTE), both
    // under the ActiveRecord span, one after the other.
    let app = Apmtop::start(&FAST_GRACE);
    let user = r#"SELECT "users".* FROM "users" WHERE "users"."id" = $? LIMIT $?"#;
    let comments = r#"SELECT COUNT(*) FROM "comments" WHERE "comments"."post_id" = $?"#;
    let pg = |sql: &str, operation: &str, name: &str| {
        let mut attributes = ruby_pg(sql, "users");
        attributes.retain(|kv| kv.key != "db.operation" && kv.key != "db.collection.name");
        attributes.push(string_attr("db.operation", operation));
        attributes.push(string_attr("db.postgresql.prepared_statement_name", name));
        attributes
    };
    let mut trace = TraceBuilder::new(910);
    let server = rails_server(&mut trace, "/users/:id", "/users/7");
    let controller = trace.span(Some(&server), "UsersController#show", SpanKind::Internal, 100, 29_900, vec![]);
    let mut at = 1_000;
    for (model, sql, name, executions) in [("User", user, "a1", 1u64), ("Comment", comments, "a2", 6)] {
        for execution in 0..executions {
            let outer =
                trace.span(Some(&controller), &format!("{model} query"), SpanKind::Internal, at, at + 1_000, vec![]);
            if execution == 0 {
                trace.span(
                    Some(&outer),
                    "PREPARE app_production",
                    SpanKind::Client,
                    at + 50,
                    at + 300,
                    pg(sql, "PREPARE", name),
                );
            }
            trace.span(
                Some(&outer),
                "EXECUTE app_production",
                SpanKind::Client,
                at + 400,
                at + 900,
                pg(sql, "EXECUTE", name),
            );
            at += 1_500;
        }
    }
    export(
        &app,
        Transport::HttpProtobuf,
        export_request("blog-rails", "ruby", "OpenTelemetry::Instrumentation::PG", vec![trace]),
    )
    .await;

    let report = app.stop();
    let found = endpoint(&report, "blog-rails", "GET", "/users/:id");
    let queries = found["queries_per_request"]["max"].as_f64().expect("queries_per_request.max");
    assert!((queries - 7.0).abs() < 1e-9, "7 executions, the prepares are not queries: {found:#}");
    let n_plus_one = found["n_plus_one"].as_array().expect("n_plus_one");
    assert_eq!(n_plus_one.len(), 1, "{found:#}");
    assert_eq!(n_plus_one[0]["repeats"]["max"], 6, "six executions of the comments count: {found:#}");
    assert_eq!(n_plus_one[0]["tables"], json!(["comments"]));
    assert!(found["duplicates"].as_array().expect("duplicates").is_empty(), "{found:#}");
    assert_eq!(total_calls(&report), 7);
}

// ---------------------------------------------------------------------------------------------
// Java agent: JDBC under Hibernate
// ---------------------------------------------------------------------------------------------

/// The Java agent's JDBC span attributes (old DB conventions, sanitized text).
fn jdbc(sql: &str, table: &str) -> Vec<KeyValue> {
    vec![
        string_attr("db.system", "postgresql"),
        string_attr("db.connection_string", "postgresql://127.0.0.1:5432"),
        string_attr("db.name", "shop"),
        string_attr("db.user", "shop"),
        string_attr("db.statement", sql),
        string_attr("db.operation", "SELECT"),
        string_attr("db.sql.table", table),
        string_attr("server.address", "127.0.0.1"),
        int_attr("server.port", 5432),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_agent_jdbc_under_hibernate_session_spans_counts_and_finds_the_per_row_find() {
    let app = Apmtop::start(&FAST_GRACE);
    let book = "select b1_0.id,b1_0.author_id,b1_0.title from books b1_0 where b1_0.id=?";
    let reviews = "select r1_0.id,r1_0.reviewer_id,r1_0.body from reviews r1_0 where r1_0.book_id=?";
    let reviewer = "select u1_0.id,u1_0.name from users u1_0 where u1_0.id=?";
    let mut trace = TraceBuilder::new(1000);
    let server =
        trace.span(None, "GET /books/{id}", SpanKind::Server, 0, 30_000, http_stable("GET", "/books/{id}", "/books/3"));
    let controller = trace.span(Some(&server), "BookController.show", SpanKind::Internal, 100, 29_900, vec![]);
    let hibernate = |trace: &mut TraceBuilder, at: u64, operation: &str, sql: &str, table: &str| {
        let outer = trace.span(Some(&controller), operation, SpanKind::Internal, at, at + 1_000, vec![]);
        trace.span(
            Some(&outer),
            &format!("SELECT shop.{table}"),
            SpanKind::Client,
            at + 100,
            at + 900,
            jdbc(sql, table),
        );
    };
    hibernate(&mut trace, 1_000, "Session.find com.example.Book", book, "books");
    hibernate(&mut trace, 2_500, "Query.getResultList", reviews, "reviews");
    for i in 0..5 {
        hibernate(&mut trace, 4_000 + i * 1_500, "Session.find com.example.User", reviewer, "users");
    }
    trace.span(Some(&controller), "Transaction.commit", SpanKind::Internal, 12_000, 12_500, vec![]);
    export(&app, Transport::HttpProtobuf, export_request("books-spring", "java", "io.opentelemetry.jdbc", vec![trace]))
        .await;

    let report = app.stop();
    let found = assert_endpoint(
        &report,
        ("books-spring", "GET", "/books/{id}"),
        &Expect { requests: 1, queries: 7, connection_spans: 0, n_plus_one: &[(&["users"], 5)], duplicates: &[] },
    );
    assert_eq!(found["n_plus_one"][0]["statement"], reviewer);
    assert_eq!(total_calls(&report), 7);
    assert!(
        fingerprints(&report).iter().all(|f| !f.contains("session.find")),
        "Hibernate's INTERNAL spans are not queries"
    );
}

/// Trace ids are deterministic: the same seed gives the same trace.
#[test]
fn trace_builder_ids_are_deterministic() {
    let mut a = TraceBuilder::new(42);
    let mut b = TraceBuilder::new(42);
    let ra = a.span(None, "GET /", SpanKind::Server, 0, 10, vec![]);
    let rb = b.span(None, "GET /", SpanKind::Server, 0, 10, vec![]);
    assert_eq!(ra, rb);
    assert_eq!(a.trace_id_hex(), b.trace_id_hex());
    assert_ne!(a.trace_id_hex(), TraceBuilder::new(43).trace_id_hex());
}
