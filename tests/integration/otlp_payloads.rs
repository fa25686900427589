//! Shared OTLP payload builders: what an instrumented web service would export.
//!
//! A [`RequestTrace`] describes one HTTP request the way real SDKs report it: a SERVER span
//! (service, method, route, status code, duration), INTERNAL `request handler` spans nested to
//! some depth below it, DB CLIENT spans with statement text under the innermost handler, and DB
//! connection spans (`pg-pool.connect`) that carry no statement. Attributes follow either the old
//! or the stable semantic conventions ([`Conventions`]). Trace and span ids derive from a seed, so
//! every test names its traces and can look them up again in the report.
//!
//! The same protobuf messages are also rendered by hand as OTLP/JSON ([`trace_request_json`])
//! following the spec's JSON mapping (hex ids, lowerCamelCase keys, int64 as decimal strings,
//! enums as integers), with knobs for the quirks a receiver must tolerate: upper-case hex,
//! int64 as plain numbers, and unknown fields. Metrics and logs requests, compression helpers and
//! invalid or oversized payloads round the module off.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span, status};
use serde_json::{Value, json};

/// Service name used when a test does not care which service sent a trace.
pub const SERVICE: &str = "shop-api";

/// Name of the instrumentation scope on every exported batch.
const SCOPE_NAME: &str = "apmtop-integration-tests";

/// Name of the DB connection spans node-postgres' pool emits; they carry no statement.
pub const POOL_CONNECT_SPAN: &str = "pg-pool.connect";

/// Name of the INTERNAL spans between the SERVER span and the DB spans.
pub const HANDLER_SPAN: &str = "request handler";

/// Gap between consecutive child spans, so they never overlap.
const GAP_NS: u64 = 100_000;

/// Duration of each `pg-pool.connect` span.
const CONNECT_NS: u64 = 1_000_000;

/// Nanoseconds per millisecond.
const NS_PER_MS: u64 = 1_000_000;

/// `Span.flags` for a local span whose parent is known not to be remote, trace sampled.
const FLAGS_SAMPLED_LOCAL: u32 = 0x101;

/// Which generation of semantic-convention attribute names a trace uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conventions {
    /// `http.method`, `http.status_code`, `http.target`, `db.system`, `db.statement`,
    /// `db.operation`, `db.name`.
    Old,
    /// `http.request.method`, `http.response.status_code`, `url.path`, `db.system.name`,
    /// `db.query.text`, `db.operation.name`, `db.namespace`.
    New,
}

/// SplitMix64: a tiny, well-mixed deterministic generator for ids.
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The 16-byte trace id for `seed`: deterministic, never all zero.
pub fn trace_id(seed: u64) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&splitmix64(seed).to_be_bytes());
    id[8..].copy_from_slice(&(splitmix64(seed ^ 0x5DEE_CE66_D0D0_CAFE) | 1).to_be_bytes());
    id
}

/// The 8-byte id of span number `index` in the trace of `seed`: deterministic, never zero.
pub fn span_id(seed: u64, index: u64) -> [u8; 8] {
    (splitmix64(seed.wrapping_mul(0x1_0000).wrapping_add(index) ^ 0xA5A5_5A5A_0F0F_F0F0) | 1).to_be_bytes()
}

/// Lower-case hex, the form the report uses for trace ids.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A string attribute.
pub fn string_attr(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.to_string())) }),
        ..Default::default()
    }
}

/// An int64 attribute.
pub fn int_attr(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(any_value::Value::IntValue(value)) }),
        ..Default::default()
    }
}

/// A resource carrying `service.name` (plus what SDKs add anyway).
pub fn resource(service: &str) -> Resource {
    Resource {
        attributes: vec![
            string_attr("service.name", service),
            string_attr("telemetry.sdk.name", "opentelemetry"),
            string_attr("telemetry.sdk.language", "rust"),
        ],
        ..Default::default()
    }
}

/// The instrumentation scope of every batch.
fn scope() -> InstrumentationScope {
    InstrumentationScope { name: SCOPE_NAME.to_string(), version: "1.0.0".to_string(), ..Default::default() }
}

/// Nanoseconds since the Unix epoch, now.
fn now_unix_nano() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970");
    u64::try_from(since.as_nanos()).expect("time fits u64 nanoseconds")
}

/// One HTTP request as an instrumented service would export it.
///
/// Build with [`RequestTrace::new`] and the chained setters, then take [`RequestTrace::spans`]
/// or a whole [`RequestTrace::request`].
#[derive(Clone, Debug)]
pub struct RequestTrace {
    /// Derives the trace id and all span ids.
    pub seed: u64,
    /// `service.name` of the resource.
    pub service: String,
    /// HTTP method of the SERVER span.
    pub method: String,
    /// `http.route`; `None` leaves the route out (only the path is sent).
    pub route: Option<String>,
    /// Request path (`url.path` or `http.target`).
    pub path: String,
    /// HTTP response status code.
    pub status_code: i64,
    /// Whether the SERVER span's status is ERROR (otherwise UNSET).
    pub status_error: bool,
    /// Duration of the SERVER span in milliseconds.
    pub duration_ms: u64,
    /// Statement text of each DB query span, in execution order.
    pub statements: Vec<String>,
    /// Duration of each DB query span in milliseconds.
    pub query_ms: u64,
    /// Number of `pg-pool.connect` spans (DB spans without statement text).
    pub connections: usize,
    /// Number of INTERNAL `request handler` spans between the SERVER span and the DB spans.
    pub depth: usize,
    /// Attribute naming generation.
    pub conventions: Conventions,
    /// `db.system` / `db.system.name` of the DB spans.
    pub db_system: String,
    /// Start of the SERVER span, Unix nanoseconds.
    pub start_unix_nano: u64,
}

impl RequestTrace {
    /// A `200` request of 50 ms to `route` with no queries, handled one level deep, stable
    /// conventions, service [`SERVICE`], starting a second ago.
    pub fn new(seed: u64, method: &str, route: &str) -> RequestTrace {
        RequestTrace {
            seed,
            service: SERVICE.to_string(),
            method: method.to_string(),
            route: Some(route.to_string()),
            path: route.replace("{id}", &(seed % 1000).to_string()),
            status_code: 200,
            status_error: false,
            duration_ms: 50,
            statements: Vec::new(),
            query_ms: 2,
            connections: 0,
            depth: 1,
            conventions: Conventions::New,
            db_system: "postgresql".to_string(),
            start_unix_nano: now_unix_nano() - 1_000 * NS_PER_MS,
        }
    }

    /// Sends no `http.route`, only the concrete request `path`.
    pub fn without_route(mut self, path: &str) -> Self {
        self.route = None;
        self.path = path.to_string();
        self
    }

    /// Sets the resource's `service.name`.
    pub fn service(mut self, service: &str) -> Self {
        self.service = service.to_string();
        self
    }

    /// Sets the HTTP response status code.
    pub fn status_code(mut self, code: i64) -> Self {
        self.status_code = code;
        self
    }

    /// Marks the SERVER span's status as ERROR.
    pub fn error_status(mut self) -> Self {
        self.status_error = true;
        self
    }

    /// Sets the SERVER span duration.
    pub fn duration_ms(mut self, ms: u64) -> Self {
        self.duration_ms = ms;
        self
    }

    /// Appends one DB query span with this statement text.
    pub fn query(mut self, statement: &str) -> Self {
        self.statements.push(statement.to_string());
        self
    }

    /// Appends `times` DB query spans with the same statement text.
    pub fn repeat(mut self, statement: &str, times: usize) -> Self {
        for _ in 0..times {
            self.statements.push(statement.to_string());
        }
        self
    }

    /// Sets the duration of every DB query span.
    pub fn query_ms(mut self, ms: u64) -> Self {
        self.query_ms = ms;
        self
    }

    /// Adds `count` `pg-pool.connect` spans before the queries.
    pub fn connections(mut self, count: usize) -> Self {
        self.connections = count;
        self
    }

    /// Nests the DB spans under `depth` INTERNAL handler spans (0: directly under SERVER).
    pub fn depth(mut self, depth: usize) -> Self {
        self.depth = depth;
        self
    }

    /// Chooses old or stable attribute names.
    pub fn conventions(mut self, conventions: Conventions) -> Self {
        self.conventions = conventions;
        self
    }

    /// The trace id as lower-case hex.
    pub fn trace_id_hex(&self) -> String {
        hex(&trace_id(self.seed))
    }

    /// Number of spans [`RequestTrace::spans`] returns.
    pub fn span_count(&self) -> usize {
        1 + self.depth + self.connections + self.statements.len()
    }

    /// All spans, SERVER span first, then the handler chain, connections and queries.
    pub fn spans(&self) -> Vec<Span> {
        let trace = trace_id(self.seed);
        let start = self.start_unix_nano;
        let end = start + self.duration_ms * NS_PER_MS;
        let needed = 2 * NS_PER_MS
            + self.connections as u64 * (CONNECT_NS + GAP_NS)
            + self.statements.len() as u64 * (self.query_ms * NS_PER_MS + GAP_NS);
        assert!(
            needed <= self.duration_ms * NS_PER_MS && self.depth < 10,
            "test setup: {} queries of {} ms do not fit in a {} ms request",
            self.statements.len(),
            self.query_ms,
            self.duration_ms
        );

        let mut next_index = 0u64;
        let mut new_span_id = || {
            next_index += 1;
            span_id(self.seed, next_index).to_vec()
        };

        let mut spans = Vec::with_capacity(self.span_count());
        let root_id = new_span_id();
        spans.push(self.server_span(trace.to_vec(), root_id.clone(), start, end));

        let mut parent = root_id;
        for level in 1..=self.depth as u64 {
            let id = new_span_id();
            spans.push(Span {
                trace_id: trace.to_vec(),
                span_id: id.clone(),
                parent_span_id: parent,
                flags: FLAGS_SAMPLED_LOCAL,
                name: HANDLER_SPAN.to_string(),
                kind: span::SpanKind::Internal as i32,
                start_time_unix_nano: start + level * GAP_NS,
                end_time_unix_nano: end - level * GAP_NS,
                ..Default::default()
            });
            parent = id;
        }

        let mut cursor = start + NS_PER_MS;
        for _ in 0..self.connections {
            spans.push(Span {
                trace_id: trace.to_vec(),
                span_id: new_span_id(),
                parent_span_id: parent.clone(),
                flags: FLAGS_SAMPLED_LOCAL,
                name: POOL_CONNECT_SPAN.to_string(),
                kind: span::SpanKind::Client as i32,
                start_time_unix_nano: cursor,
                end_time_unix_nano: cursor + CONNECT_NS,
                attributes: self.db_connection_attributes(),
                ..Default::default()
            });
            cursor += CONNECT_NS + GAP_NS;
        }

        for statement in &self.statements {
            let query_ns = self.query_ms * NS_PER_MS;
            spans.push(Span {
                trace_id: trace.to_vec(),
                span_id: new_span_id(),
                parent_span_id: parent.clone(),
                flags: FLAGS_SAMPLED_LOCAL,
                name: format!("{} app", operation(statement)),
                kind: span::SpanKind::Client as i32,
                start_time_unix_nano: cursor,
                end_time_unix_nano: cursor + query_ns,
                attributes: self.db_query_attributes(statement),
                ..Default::default()
            });
            cursor += query_ns + GAP_NS;
        }
        spans
    }

    /// The SERVER span alone.
    pub fn server_span_only(&self) -> Span {
        self.spans().swap_remove(0)
    }

    /// One export request carrying the whole trace under its service's resource.
    pub fn request(&self) -> ExportTraceServiceRequest {
        export_request(&self.service, self.spans())
    }

    fn server_span(&self, trace: Vec<u8>, id: Vec<u8>, start: u64, end: u64) -> Span {
        let (method_key, status_key, path_key, scheme_key) = match self.conventions {
            Conventions::Old => ("http.method", "http.status_code", "http.target", "http.scheme"),
            Conventions::New => ("http.request.method", "http.response.status_code", "url.path", "url.scheme"),
        };
        let mut attributes = vec![
            string_attr(method_key, &self.method),
            string_attr(path_key, &self.path),
            string_attr(scheme_key, "http"),
            int_attr(status_key, self.status_code),
        ];
        let name = match &self.route {
            Some(route) => {
                attributes.push(string_attr("http.route", route));
                format!("{} {route}", self.method)
            }
            None => self.method.clone(),
        };
        Span {
            trace_id: trace,
            span_id: id,
            flags: FLAGS_SAMPLED_LOCAL,
            name,
            kind: span::SpanKind::Server as i32,
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            attributes,
            status: Some(Status {
                code: if self.status_error {
                    status::StatusCode::Error as i32
                } else {
                    status::StatusCode::Unset as i32
                },
                message: if self.status_error { "handler failed".to_string() } else { String::new() },
            }),
            ..Default::default()
        }
    }

    fn db_connection_attributes(&self) -> Vec<KeyValue> {
        let (system_key, namespace_key) = match self.conventions {
            Conventions::Old => ("db.system", "db.name"),
            Conventions::New => ("db.system.name", "db.namespace"),
        };
        vec![
            string_attr(system_key, &self.db_system),
            string_attr(namespace_key, "app"),
            string_attr("server.address", "127.0.0.1"),
            int_attr("server.port", 5432),
        ]
    }

    fn db_query_attributes(&self, statement: &str) -> Vec<KeyValue> {
        let (text_key, operation_key) = match self.conventions {
            Conventions::Old => ("db.statement", "db.operation"),
            Conventions::New => ("db.query.text", "db.operation.name"),
        };
        let mut attributes = self.db_connection_attributes();
        attributes.push(string_attr(text_key, statement));
        attributes.push(string_attr(operation_key, &operation(statement)));
        attributes
    }
}

/// The SQL verb of a statement, as instrumentations put in `db.operation(.name)`.
fn operation(statement: &str) -> String {
    statement.split_whitespace().next().unwrap_or("QUERY").to_ascii_uppercase()
}

/// An export request with `spans` under one resource for `service`.
pub fn export_request(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource(service)),
            scope_spans: vec![ScopeSpans { scope: Some(scope()), spans, ..Default::default() }],
            ..Default::default()
        }],
    }
}

/// One export request carrying several whole traces, one resource per trace, as a Collector
/// batching several services would send them.
pub fn batch(traces: &[RequestTrace]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: traces.iter().flat_map(|trace| trace.request().resource_spans).collect(),
    }
}

/// Ways a span can be invalid per the OTLP data model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvalidSpan {
    /// `trace_id` of 15 bytes.
    TraceIdTooShort,
    /// `trace_id` of 16 zero bytes.
    TraceIdAllZero,
    /// No `trace_id` at all.
    TraceIdMissing,
    /// `span_id` of 7 bytes.
    SpanIdTooShort,
    /// `span_id` of 8 zero bytes.
    SpanIdAllZero,
}

impl InvalidSpan {
    /// Every kind of invalid span.
    pub const ALL: [InvalidSpan; 5] = [
        InvalidSpan::TraceIdTooShort,
        InvalidSpan::TraceIdAllZero,
        InvalidSpan::TraceIdMissing,
        InvalidSpan::SpanIdTooShort,
        InvalidSpan::SpanIdAllZero,
    ];

    /// A DB span that would be fine except for this defect.
    pub fn span(self, seed: u64) -> Span {
        let mut trace = trace_id(seed).to_vec();
        let mut id = span_id(seed, 1).to_vec();
        match self {
            InvalidSpan::TraceIdTooShort => trace.truncate(15),
            InvalidSpan::TraceIdAllZero => trace = vec![0; 16],
            InvalidSpan::TraceIdMissing => trace.clear(),
            InvalidSpan::SpanIdTooShort => id.truncate(7),
            InvalidSpan::SpanIdAllZero => id = vec![0; 8],
        }
        let start = now_unix_nano() - 500 * NS_PER_MS;
        Span {
            trace_id: trace,
            span_id: id,
            parent_span_id: span_id(seed, 2).to_vec(),
            flags: FLAGS_SAMPLED_LOCAL,
            name: "SELECT app".to_string(),
            kind: span::SpanKind::Client as i32,
            start_time_unix_nano: start,
            end_time_unix_nano: start + 3 * NS_PER_MS,
            attributes: vec![
                string_attr("db.system.name", "postgresql"),
                string_attr("db.query.text", "SELECT * FROM invalid_spans WHERE id = $1"),
            ],
            ..Default::default()
        }
    }
}

/// A request of one valid SERVER span whose encoded size exceeds `payload_bytes`: the span
/// carries that many zero bytes in a bytes attribute, so it compresses to almost nothing.
pub fn huge_request(seed: u64, payload_bytes: usize) -> ExportTraceServiceRequest {
    let trace = RequestTrace::new(seed, "POST", "/uploads").duration_ms(20);
    let mut server = trace.server_span_only();
    server.attributes.push(KeyValue {
        key: "app.upload.body".to_string(),
        value: Some(AnyValue { value: Some(any_value::Value::BytesValue(vec![0; payload_bytes])) }),
        ..Default::default()
    });
    export_request(&trace.service, vec![server])
}

/// A metrics export with one gauge data point.
pub fn metrics_request(service: &str) -> ExportMetricsServiceRequest {
    let now = now_unix_nano();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource(service)),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(scope()),
                metrics: vec![Metric {
                    name: "process.cpu.utilization".to_string(),
                    unit: "1".to_string(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: vec![NumberDataPoint {
                            time_unix_nano: now,
                            value: Some(number_data_point::Value::AsDouble(0.25)),
                            ..Default::default()
                        }],
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// A logs export with one log record.
pub fn logs_request(service: &str) -> ExportLogsServiceRequest {
    let now = now_unix_nano();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource(service)),
            scope_logs: vec![ScopeLogs {
                scope: Some(scope()),
                log_records: vec![LogRecord {
                    time_unix_nano: now,
                    observed_time_unix_nano: now,
                    severity_number: 9,
                    severity_text: "INFO".to_string(),
                    body: Some(AnyValue { value: Some(any_value::Value::StringValue("order placed".to_string())) }),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// The OTLP/JSON form of [`metrics_request`].
pub fn metrics_json(service: &str) -> Value {
    json!({
        "resourceMetrics": [{
            "resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": service}}
            ]},
            "scopeMetrics": [{
                "scope": {"name": SCOPE_NAME},
                "metrics": [{
                    "name": "process.cpu.utilization",
                    "unit": "1",
                    "gauge": {"dataPoints": [
                        {"timeUnixNano": now_unix_nano().to_string(), "asDouble": 0.25}
                    ]}
                }]
            }]
        }]
    })
}

/// The OTLP/JSON form of [`logs_request`].
pub fn logs_json(service: &str) -> Value {
    let now = now_unix_nano().to_string();
    json!({
        "resourceLogs": [{
            "resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": service}}
            ]},
            "scopeLogs": [{
                "scope": {"name": SCOPE_NAME},
                "logRecords": [{
                    "timeUnixNano": now,
                    "observedTimeUnixNano": now,
                    "severityNumber": 9,
                    "severityText": "INFO",
                    "body": {"stringValue": "order placed"}
                }]
            }]
        }]
    })
}

/// How [`trace_request_json`] renders the quirks of the OTLP/JSON mapping.
#[derive(Clone, Copy, Debug)]
pub struct JsonStyle {
    /// Writes trace and span ids in upper-case hex (ids are case-insensitive).
    pub upper_case_ids: bool,
    /// Writes 64-bit integers as decimal strings (the spec) instead of JSON numbers (which
    /// receivers must also accept).
    pub int64_as_strings: bool,
    /// Adds fields no OTLP version defines, at several levels; receivers must ignore them.
    pub unknown_fields: bool,
}

impl JsonStyle {
    /// What a spec-following exporter writes: lower-case hex, int64 as strings, no extras.
    pub const SPEC: JsonStyle = JsonStyle { upper_case_ids: false, int64_as_strings: true, unknown_fields: false };
}

/// An unknown field's value: anything a future OTLP version might add.
fn unknown_value() -> Value {
    json!({"addedInAFutureVersion": [1, "two", {"three": true}]})
}

/// Hand-written OTLP/JSON encoding of an `ExportTraceServiceRequest`, per the spec's JSON
/// mapping: hex ids, lowerCamelCase keys, int64 as decimal strings, `kind` and status `code` as
/// integers, `bytesValue` in base64.
pub fn trace_request_json(request: &ExportTraceServiceRequest, style: JsonStyle) -> Value {
    let ids = |bytes: &[u8]| {
        let text = hex(bytes);
        if style.upper_case_ids { text.to_ascii_uppercase() } else { text }
    };
    let int64 = |n: u64| if style.int64_as_strings { json!(n.to_string()) } else { json!(n) };
    let with_unknown = |mut object: Value, key: &str| {
        if style.unknown_fields {
            object[key] = unknown_value();
        }
        object
    };

    let resource_spans: Vec<Value> = request
        .resource_spans
        .iter()
        .map(|rs| {
            let resource = rs.resource.as_ref().map(|r| {
                json!({
                    "attributes": attributes_json(&r.attributes, style),
                    "droppedAttributesCount": r.dropped_attributes_count,
                })
            });
            let scope_spans: Vec<Value> = rs
                .scope_spans
                .iter()
                .map(|ss| {
                    let spans: Vec<Value> = ss
                        .spans
                        .iter()
                        .map(|s| {
                            let status = s.status.as_ref().map(|st| {
                                with_unknown(
                                    json!({"code": st.code, "message": st.message}),
                                    "statusDetailFromTheFuture",
                                )
                            });
                            let mut span = json!({
                                "traceId": ids(&s.trace_id),
                                "spanId": ids(&s.span_id),
                                "parentSpanId": ids(&s.parent_span_id),
                                "traceState": s.trace_state,
                                "flags": s.flags,
                                "name": s.name,
                                "kind": s.kind,
                                "startTimeUnixNano": int64(s.start_time_unix_nano),
                                "endTimeUnixNano": int64(s.end_time_unix_nano),
                                "attributes": attributes_json(&s.attributes, style),
                                "droppedAttributesCount": s.dropped_attributes_count,
                                "events": [],
                                "droppedEventsCount": s.dropped_events_count,
                                "links": [],
                                "droppedLinksCount": s.dropped_links_count,
                            });
                            if let Some(status) = status {
                                span["status"] = status;
                            }
                            with_unknown(span, "spanFieldFromTheFuture")
                        })
                        .collect();
                    let scope = ss.scope.as_ref().map(|sc| json!({"name": sc.name, "version": sc.version}));
                    with_unknown(
                        json!({"scope": scope, "spans": spans, "schemaUrl": ss.schema_url}),
                        "scopeSpansFieldFromTheFuture",
                    )
                })
                .collect();
            with_unknown(
                json!({"resource": resource, "scopeSpans": scope_spans, "schemaUrl": rs.schema_url}),
                "resourceSpansFieldFromTheFuture",
            )
        })
        .collect();
    with_unknown(json!({"resourceSpans": resource_spans}), "requestFieldFromTheFuture")
}

fn attributes_json(attributes: &[KeyValue], style: JsonStyle) -> Value {
    Value::Array(
        attributes
            .iter()
            .map(|kv| {
                let mut object = json!({
                    "key": kv.key,
                    "value": kv.value.as_ref().map_or(json!({}), |v| any_value_json(v, style)),
                });
                if style.unknown_fields {
                    object["keyValueFieldFromTheFuture"] = unknown_value();
                }
                object
            })
            .collect(),
    )
}

fn any_value_json(value: &AnyValue, style: JsonStyle) -> Value {
    use any_value::Value as V;
    match &value.value {
        None => json!({}),
        Some(V::StringValue(s)) => json!({"stringValue": s}),
        Some(V::BoolValue(b)) => json!({"boolValue": b}),
        Some(V::IntValue(n)) if style.int64_as_strings => json!({"intValue": n.to_string()}),
        Some(V::IntValue(n)) => json!({"intValue": n}),
        Some(V::DoubleValue(d)) => json!({"doubleValue": d}),
        Some(V::BytesValue(bytes)) => json!({"bytesValue": base64(bytes)}),
        Some(V::StringValueStrindex(i)) => json!({"stringValueStrindex": i}),
        Some(V::ArrayValue(array)) => json!({"arrayValue": {
            "values": array.values.iter().map(|v| any_value_json(v, style)).collect::<Vec<_>>()
        }}),
        Some(V::KvlistValue(list)) => {
            json!({"kvlistValue": {"values": attributes_json(&list.values, style)}})
        }
    }
}

/// Standard base64 with padding, as proto3 JSON writes `bytes`.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `bytes` compressed with gzip (`Content-Encoding: gzip`).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip into memory");
    encoder.finish().expect("gzip into memory")
}

/// `bytes` compressed as HTTP `deflate` (the zlib format, RFC 1950).
pub fn deflate(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("deflate into memory");
    encoder.finish().expect("deflate into memory")
}

/// A gzip stream of `len` zero bytes, built without holding them in memory: a few tens of KiB
/// that inflate to `len`.
pub fn gzip_of_zeros(len: usize) -> Vec<u8> {
    let chunk = vec![0u8; 1 << 20];
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk.len());
        encoder.write_all(&chunk[..n]).expect("gzip into memory");
        left -= n;
    }
    encoder.finish().expect("gzip into memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected, "base64 of {input:?}");
        }
    }

    /// The hand-written JSON must mean the same request as the protobuf it was rendered from;
    /// `opentelemetry-proto`'s serde support serves as an independent decoder.
    #[test]
    fn trace_json_decodes_to_the_same_request_in_every_style() {
        let trace = RequestTrace::new(3, "GET", "/users/{id}")
            .depth(2)
            .connections(1)
            .repeat("SELECT * FROM users WHERE id = $1", 3)
            .status_code(503)
            .error_status();
        let mut request = trace.request();
        request.resource_spans[0].scope_spans[0].spans.push(InvalidSpan::SpanIdTooShort.span(9));
        for upper_case_ids in [false, true] {
            for int64_as_strings in [false, true] {
                for unknown_fields in [false, true] {
                    let style = JsonStyle { upper_case_ids, int64_as_strings, unknown_fields };
                    let json = trace_request_json(&request, style);
                    let decoded: ExportTraceServiceRequest =
                        serde_json::from_value(json).unwrap_or_else(|e| panic!("{style:?} does not decode: {e}"));
                    assert_eq!(decoded, request, "{style:?} changes the request");
                }
            }
        }
    }

    #[test]
    fn request_trace_ids_are_deterministic_and_distinct() {
        let a = RequestTrace::new(1, "GET", "/a").repeat("SELECT 1", 3);
        let again = RequestTrace::new(1, "GET", "/a").repeat("SELECT 1", 3);
        let b = RequestTrace::new(2, "GET", "/a");
        assert_eq!(a.trace_id_hex(), again.trace_id_hex());
        assert_ne!(a.trace_id_hex(), b.trace_id_hex());
        let ids: std::collections::HashSet<Vec<u8>> = a.spans().into_iter().map(|s| s.span_id).collect();
        assert_eq!(ids.len(), a.span_count(), "span ids within a trace are unique");
    }
}
