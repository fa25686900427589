//! An immutable view of the aggregates at one moment: what the report writers and the dashboard
//! read. It is plain data (`Serialize`), built by [`crate::aggregate::Aggregates::snapshot`] and
//! shared as `Arc<Snapshot>`.
//!
//! Field names are the JSON report schema (version 1, see the README): later versions may add
//! fields, never rename or remove one.

use serde::{Deserialize, Serialize};

/// Everything known at one moment.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Snapshot {
    /// When the snapshot was taken, RFC 3339.
    pub generated_at: String,
    /// Pipeline counters.
    pub totals: Totals,
    /// Endpoints, slowest (p95) first.
    pub endpoints: Vec<EndpointSnapshot>,
    /// Query shapes across endpoints, most total time first.
    pub queries: Vec<QuerySnapshot>,
    /// What is missing from the instrumentation, per service, with the fix.
    pub audit: Vec<AuditEntry>,
    /// Every diagnosed cause of slowness (N+1, duplicates, slow query shapes, missing indexes,
    /// blocking calls, ...), most costly first.
    pub findings: Vec<FindingSnapshot>,
    /// Settings that shaped the analysis.
    pub settings: SettingsSnapshot,
    /// The aggregates themselves, lossless (serialized hdrhistograms, exact sums): what
    /// `apmtop merge` combines. Present in reports written with `--report`; absent from live
    /// dashboard snapshots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregates: Option<std::sync::Arc<serde_json::Value>>,
    /// The time window the figures cover, seconds; absent for all time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_seconds: Option<f64>,
    /// Every service seen: language, SDK, the OTLP protocols its exports came in, spans and
    /// requests. Sorted by name.
    pub services: Vec<ServiceSnapshot>,
}

/// One service that sent spans.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
#[serde(default)]
pub struct ServiceSnapshot {
    /// `service.name`.
    pub name: String,
    /// `telemetry.sdk.language`, empty when not set.
    pub language: String,
    /// `telemetry.sdk.name`, empty when not set.
    pub sdk_name: String,
    /// `telemetry.sdk.version`, empty when not set.
    pub sdk_version: String,
    /// The OTLP protocols its exports arrived with, most used first.
    pub protocols: Vec<ProtocolSnapshot>,
    /// Spans received from it.
    pub spans: u64,
    /// Requests assembled for it.
    pub requests: u64,
}

/// How many of a service's exports arrived with one protocol.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
#[serde(default)]
pub struct ProtocolSnapshot {
    /// `grpc`, `http/protobuf` or `http/json` (the values of `OTEL_EXPORTER_OTLP_PROTOCOL`).
    pub protocol: String,
    /// `none`, `gzip` or `deflate`.
    pub compression: String,
    /// Trace exports.
    pub exports: u64,
}

/// Pipeline counters.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
#[serde(default)]
pub struct Totals {
    /// Valid spans accepted.
    pub spans_received: u64,
    /// Requests analyzed.
    pub requests: u64,
    /// Spans accepted but not analyzed: over the per-trace cap, or arrived after their request closed.
    pub spans_dropped: u64,
    /// Traces closed with spans that belong to no request (their parent never arrived).
    pub traces_incomplete: u64,
    /// Spans received a second time (a re-sent export), counted once.
    pub spans_duplicate: u64,
    /// Spans with invalid ids, answered with `partial_success`.
    pub spans_rejected: u64,
    /// Spans refused with a retryable answer because the pipeline was full.
    pub spans_refused: u64,
    /// Trace export calls accepted.
    pub trace_exports: u64,
    /// Metrics export calls received and discarded.
    pub metric_exports: u64,
    /// Logs export calls received and discarded.
    pub log_exports: u64,
    /// Export calls answered with a non-retryable error.
    pub exports_malformed: u64,
    /// Queries analyzed (DB spans with statement text, inside requests).
    pub queries: u64,
    /// Traces closed early because a memory bound was reached.
    pub traces_evicted: u64,
    /// Traces still waiting for their grace period when the snapshot was taken.
    pub traces_pending: u64,
    /// Endpoints folded into the overflow row because of `--max-endpoints`.
    pub endpoints_folded: u64,
    /// Exports left out of the `--record` capture because its writer was behind.
    pub capture_records_dropped: u64,
}

/// Distribution summary of one quantity.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Default, PartialEq)]
pub struct Summary {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Maximum.
    pub max: f64,
}

/// One endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndpointSnapshot {
    /// Service name.
    pub service: String,
    /// HTTP method (empty for non-HTTP requests).
    pub method: String,
    /// Route.
    pub route: String,
    /// Requests seen.
    pub requests: u64,
    /// Requests that failed (root status ERROR or HTTP status >= 500).
    pub errors: u64,
    /// Request latency, milliseconds.
    pub latency_ms: Summary,
    /// Queries per request.
    pub queries_per_request: Summary,
    /// DB time per request (overlapping queries counted once), milliseconds.
    pub db_time_ms: Summary,
    /// Share of request time spent in the database, 0..=1 (summed DB time / summed latency).
    pub db_time_share: f64,
    /// DB spans without statement text (connect, pool checkout): not queries.
    pub connection_spans: u64,
    /// N+1 offenders, most total time first.
    pub n_plus_one: Vec<NPlusOneSnapshot>,
    /// Queries repeated with identical values, most repeats first.
    pub duplicates: Vec<DuplicateSnapshot>,
    /// The slowest requests, slowest first.
    pub slowest: Vec<SlowRequest>,
    /// Request latency as chart buckets, milliseconds.
    #[serde(default)]
    pub latency_histogram: Vec<Bucket>,
    /// Queries per request as chart buckets.
    #[serde(default)]
    pub queries_histogram: Vec<Bucket>,
    /// For the overflow row only: how many endpoints it folds together.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folded_endpoints: Option<u64>,
}

/// One bar of a histogram: how many values fell in `(previous le, le]`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Default, PartialEq)]
pub struct Bucket {
    /// Inclusive upper bound of the bucket.
    pub le: f64,
    /// Values in the bucket.
    pub count: u64,
}

/// Repeat counts of an N+1 group.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct Repeats {
    /// Median repeats per affected request.
    pub p50: u64,
    /// Most repeats in one request.
    pub max: u64,
}

/// One N+1 offender of an endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NPlusOneSnapshot {
    /// Normalized statement (the query shape).
    pub fingerprint: String,
    /// Stable id of the shape, 16 hex digits (same as in `queries`).
    pub fingerprint_id: String,
    /// An example statement as the app sent it.
    pub statement: String,
    /// DB system.
    pub db_system: String,
    /// Tables the statement touches.
    pub tables: Vec<String>,
    /// Requests in which the shape repeated.
    pub requests_affected: u64,
    /// Repeats per affected request.
    pub repeats: Repeats,
    /// Total time of all executions in affected requests, milliseconds.
    pub time_ms_total: f64,
    /// Trace of the request with the most repeats.
    pub example_trace_id: String,
    /// How to fix it.
    pub hint: String,
}

/// One duplicated query of an endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DuplicateSnapshot {
    /// Normalized statement.
    pub fingerprint: String,
    /// Stable id of the shape, 16 hex digits (same as in `queries`).
    pub fingerprint_id: String,
    /// The statement as sent.
    pub statement: String,
    /// Most executions in one request.
    pub repeats_max: u64,
    /// Requests in which it was duplicated.
    pub requests_affected: u64,
    /// Time of the executions after the first, summed over requests, milliseconds.
    pub time_ms_wasted: f64,
    /// Trace of the request with the most repeats.
    pub example_trace_id: String,
    /// How to fix it.
    pub hint: String,
}

/// One of the slowest requests of an endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SlowRequest {
    /// Its trace.
    pub trace_id: String,
    /// Its duration, milliseconds.
    pub duration_ms: f64,
    /// Queries it ran.
    pub queries: u64,
}

/// One query shape across endpoints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuerySnapshot {
    /// Normalized statement.
    pub fingerprint: String,
    /// Stable id of the shape, 16 hex digits.
    pub fingerprint_id: String,
    /// DB system.
    pub db_system: String,
    /// Tables it touches.
    pub tables: Vec<String>,
    /// An example statement as the app sent it (from the slowest execution).
    #[serde(default)]
    pub statement: String,
    /// Executions.
    pub calls: u64,
    /// Execution latency, milliseconds.
    pub latency_ms: Summary,
    /// Total execution time, milliseconds.
    pub time_ms_total: f64,
    /// Endpoints it runs in, as `METHOD route`.
    pub endpoints: Vec<String>,
    /// The same endpoints with their service, in the same order.
    pub endpoint_refs: Vec<EndpointRef>,
    /// The statement did not parse; the fingerprint came from the token fallback.
    pub parsed: bool,
}

/// One diagnosed cause of slowness, ranked with all the others by the time it costs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct FindingSnapshot {
    /// Stable id (16 hex digits, from category, rule, endpoint and subject): for allow-lists and
    /// diffs between reports.
    pub id: String,
    /// `high`, `medium` or `low`.
    pub severity: String,
    /// Stable category code: `n_plus_one`, `mn_plus_one`, `duplicate_query`, `slow_query_shape`,
    /// `missing_index`, `blocking_outgoing_calls`, `huge_response`, `row_by_row_write`,
    /// `cache_calls`, `repeated_cache_get`, `connection_churn`.
    pub category: String,
    /// The rule within the category (`leading_wildcard_like`, `unbounded_select`, ...); empty when
    /// the category has one rule.
    pub rule: String,
    /// The endpoint it was found in; `None` for findings about a query shape as a whole.
    pub endpoint: Option<EndpointRef>,
    /// One line: what is wrong.
    pub title: String,
    /// The figures behind it.
    pub evidence: String,
    /// The query shape it concerns, when it concerns one.
    pub fingerprint_id: Option<String>,
    /// The normalized statement, when it concerns a query shape.
    pub fingerprint: Option<String>,
    /// An example statement as the app sent it.
    pub statement: Option<String>,
    /// Requests in which it happened.
    pub requests_affected: u64,
    /// Estimated time it costs per affected request, milliseconds.
    pub cost_ms_per_request: f64,
    /// Estimated time it cost in total, milliseconds (the ranking key).
    pub cost_ms_total: f64,
    /// A trace that shows it (empty when none).
    pub example_trace_id: String,
    /// Where in the code (`path/to/file.py:42 in view_name`), when spans carry code attributes.
    pub code_location: Option<String>,
    /// The database's plan, for `missing_index` findings.
    pub plan: Option<String>,
    /// The proposed `CREATE INDEX`, for `missing_index` findings.
    pub proposed_index: Option<String>,
    /// How to fix it.
    pub hint: String,
    /// Occurrences over all affected requests (executions, calls, repeats, new connections).
    pub count_total: u64,
    /// Most occurrences in one request.
    pub count_max: u64,
    /// The rule's largest figure, when it has one: response bytes (`huge_response`), returned
    /// rows (`unbounded_select`), the `OFFSET` (`large_offset`), calls made one after another
    /// (`blocking_outgoing_calls`), queries per loop item (`mn_plus_one`).
    pub value_max: Option<u64>,
}

/// Names one endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct EndpointRef {
    /// Service name.
    pub service: String,
    /// HTTP method (empty for non-HTTP requests).
    pub method: String,
    /// Route.
    pub route: String,
}

/// One finding about missing or incomplete instrumentation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditEntry {
    /// The service it concerns.
    pub service: String,
    /// A stable code for scripts (`no_server_spans`, `server_spans_without_route`, ...).
    pub code: String,
    /// What is wrong, with figures.
    pub problem: String,
    /// What to change.
    pub fix: String,
}

/// Settings that shaped the analysis.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct SettingsSnapshot {
    /// Repeats that make an N+1.
    pub n_plus_one_min: u32,
    /// Request assembly grace period, seconds.
    pub grace_seconds: f64,
    /// Most endpoints tracked before the rest fold into the overflow row (0 in reports written
    /// before this field existed).
    pub max_endpoints: u64,
}
