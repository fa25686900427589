//! Receiving OTLP and analysing it, end to end: real clients, real sockets, the real binary.
//!
//! Each test starts `apmtop --headless` on free ports, exports traces the way SDKs and
//! Collectors do (tonic for OTLP/gRPC, reqwest for OTLP/HTTP with protobuf or JSON bodies,
//! compressed or not), checks what the exporter gets back, then stops the binary and checks the
//! JSON report. The first half covers the wire contract (success, partial success, malformed,
//! oversized and misrouted requests, the other signals); the second half covers what the report
//! says about the requests: assembly across exports, queries per request, N+1 and duplicate
//! queries, route folding, errors, latency and the semantic-convention generations.

use std::collections::HashSet;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE};
use rstest::rstest;
use serde_json::{Value, json};
use tonic::codec::CompressionEncoding;
use tonic::transport::{Channel, Endpoint};
use tonic_types::StatusExt;

use crate::otlp_payloads::{
    Conventions, InvalidSpan, JsonStyle, POOL_CONNECT_SPAN, RequestTrace, SERVICE, batch, deflate, export_request,
    gzip, gzip_of_zeros, huge_request, logs_json, logs_request, metrics_json, metrics_request, trace_request_json,
};
use crate::support::{self, Apmtop};

/// OTLP/HTTP path for traces.
const TRACES_PATH: &str = "/v1/traces";
/// OTLP/HTTP path for metrics.
const METRICS_PATH: &str = "/v1/metrics";
/// OTLP/HTTP path for logs.
const LOGS_PATH: &str = "/v1/logs";
/// Full gRPC method path of the trace export call.
const GRPC_TRACE_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
/// The binary protobuf media type OTLP/HTTP specifies.
const PROTOBUF: &str = "application/x-protobuf";
/// The JSON media type.
const JSON: &str = "application/json";

const MIB: usize = 1 << 20;
/// The request size limit after decompression: the OTLP spec's recommended 64 MiB.
const SIZE_LIMIT: usize = 64 * MIB;
/// Upper bound for any single client call.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);
/// Short assembly grace period that keeps tests fast.
const FAST_GRACE: [&str; 2] = ["--grace", "0.2"];

// ---------------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------------

/// A gRPC channel to `url` with bounded connect and call times.
async fn channel(url: String) -> Channel {
    Endpoint::from_shared(url.clone())
        .expect("valid endpoint url")
        .connect_timeout(Duration::from_secs(10))
        .timeout(CLIENT_TIMEOUT)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("gRPC connect to {url}: {e}"))
}

/// A trace-service client to `url`, compressing requests with `compression` if given.
pub async fn trace_client(url: String, compression: Option<CompressionEncoding>) -> TraceServiceClient<Channel> {
    let client = TraceServiceClient::new(channel(url).await);
    match compression {
        Some(encoding) => client.send_compressed(encoding),
        None => client,
    }
}

/// A plain-HTTP client that never goes through a proxy.
fn http_client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(CLIENT_TIMEOUT).build().expect("http client")
}

/// How an OTLP/HTTP request body is compressed.
#[derive(Clone, Copy, Debug)]
enum BodyEncoding {
    Identity,
    Gzip,
    Deflate,
}

impl BodyEncoding {
    fn apply(self, body: &[u8]) -> Vec<u8> {
        match self {
            BodyEncoding::Identity => body.to_vec(),
            BodyEncoding::Gzip => gzip(body),
            BodyEncoding::Deflate => deflate(body),
        }
    }

    fn header(self) -> Option<&'static str> {
        match self {
            BodyEncoding::Identity => None,
            BodyEncoding::Gzip => Some("gzip"),
            BodyEncoding::Deflate => Some("deflate"),
        }
    }
}

/// POSTs `body` to `base` + `path` with the given headers.
pub async fn post(
    base: &str,
    path: &str,
    content_type: &str,
    content_encoding: Option<&str>,
    body: Vec<u8>,
) -> reqwest::Response {
    let url = format!("{base}{path}");
    let mut request = http_client().post(&url).header(CONTENT_TYPE, content_type).body(body);
    if let Some(encoding) = content_encoding {
        request = request.header(CONTENT_ENCODING, encoding);
    }
    request.send().await.unwrap_or_else(|e| panic!("POST {url}: {}", error_chain(&e)))
}

/// An error and all its sources, for failure messages.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The media type of a `Content-Type` value: lower case, parameters dropped.
fn media_type(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

/// The media type of a response's `Content-Type`, or "" if it has none.
fn response_media_type(response: &reqwest::Response) -> String {
    response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(media_type).unwrap_or_default()
}

/// Reads a response body, failing the test if the connection breaks.
async fn body_bytes(response: reqwest::Response) -> Vec<u8> {
    response.bytes().await.expect("response body").to_vec()
}

/// What an export call answered, whatever the transport.
#[derive(Debug, PartialEq)]
enum Answer {
    /// OK / 200 with `partial_success` unset.
    Success,
    /// OK / 200 with `partial_success` set.
    Partial { rejected: i64, message: String },
}

impl Answer {
    fn from_response(response: ExportTraceServiceResponse) -> Answer {
        match response.partial_success {
            None => Answer::Success,
            Some(partial) => Answer::Partial { rejected: partial.rejected_spans, message: partial.error_message },
        }
    }

    /// Reads an OTLP/JSON answer; `rejectedSpans` may be a number or a decimal string.
    fn from_json(body: &Value) -> Answer {
        if body == &json!({}) {
            return Answer::Success;
        }
        let partial = &body["partialSuccess"];
        assert!(partial.is_object(), "neither `{{}}` nor a partialSuccess: {body}");
        let rejected = match &partial["rejectedSpans"] {
            Value::Number(n) => n.as_i64().expect("rejectedSpans is an integer"),
            Value::String(s) => s.parse().expect("rejectedSpans string is an integer"),
            Value::Null => 0,
            other => panic!("rejectedSpans is neither number nor string: {other}"),
        };
        let message = partial["errorMessage"].as_str().unwrap_or_default().to_string();
        Answer::Partial { rejected, message }
    }
}

/// The ways an exporter can send traces.
#[derive(Clone, Copy, Debug)]
enum Transport {
    Grpc,
    GrpcGzip,
    HttpProtobuf,
    HttpProtobufGzip,
    HttpJson,
}

impl Transport {
    /// Exports `request` and returns the answer; any failure fails the test.
    async fn export(self, app: &Apmtop, request: &ExportTraceServiceRequest) -> Answer {
        match self {
            Transport::Grpc | Transport::GrpcGzip => {
                let compression = matches!(self, Transport::GrpcGzip).then_some(CompressionEncoding::Gzip);
                let response = trace_client(app.grpc_url(), compression)
                    .await
                    .export(request.clone())
                    .await
                    .unwrap_or_else(|status| panic!("{self:?} export refused: {status:?}"));
                Answer::from_response(response.into_inner())
            }
            Transport::HttpProtobuf | Transport::HttpProtobufGzip => {
                let encoding =
                    if matches!(self, Transport::HttpProtobuf) { BodyEncoding::Identity } else { BodyEncoding::Gzip };
                let body = encoding.apply(&request.encode_to_vec());
                let response = post(&app.http_url(), TRACES_PATH, PROTOBUF, encoding.header(), body).await;
                let status = response.status();
                let media = response_media_type(&response);
                let bytes = body_bytes(response).await;
                assert_eq!(status, 200, "{self:?} export: {}", String::from_utf8_lossy(&bytes));
                assert_eq!(media, PROTOBUF, "{self:?} answer content type");
                Answer::from_response(
                    ExportTraceServiceResponse::decode(bytes.as_slice())
                        .expect("answer is an ExportTraceServiceResponse"),
                )
            }
            Transport::HttpJson => {
                let body = serde_json::to_vec(&trace_request_json(request, JsonStyle::SPEC)).expect("serialize JSON");
                let response = post(&app.http_url(), TRACES_PATH, JSON, None, body).await;
                let status = response.status();
                let media = response_media_type(&response);
                let bytes = body_bytes(response).await;
                assert_eq!(status, 200, "{self:?} export: {}", String::from_utf8_lossy(&bytes));
                assert_eq!(media, JSON, "{self:?} answer content type");
                let body: Value = serde_json::from_slice(&bytes).expect("answer is JSON");
                Answer::from_json(&body)
            }
        }
    }
}

/// Exports `request` over `transport` and requires full success.
async fn export_ok(app: &Apmtop, transport: Transport, request: &ExportTraceServiceRequest) {
    let answer = transport.export(app, request).await;
    assert_eq!(answer, Answer::Success, "{transport:?} export of a valid request");
}

/// Raw gRPC: sends arbitrary bytes as the request message of the trace export call, so a
/// test can send what no generated client would. Answers decode as the real response type.
mod raw_grpc {
    use bytes::BufMut;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
    use prost::Message;
    use tonic::Status;
    use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

    /// Encodes `Vec<u8>` verbatim; decodes `ExportTraceServiceResponse`.
    #[derive(Clone, Copy, Default)]
    pub struct RawCodec;

    /// The verbatim encoder.
    pub struct RawEncoder;

    /// The response decoder.
    pub struct ResponseDecoder;

    impl Codec for RawCodec {
        type Encode = Vec<u8>;
        type Decode = ExportTraceServiceResponse;
        type Encoder = RawEncoder;
        type Decoder = ResponseDecoder;

        fn encoder(&mut self) -> RawEncoder {
            RawEncoder
        }

        fn decoder(&mut self) -> ResponseDecoder {
            ResponseDecoder
        }
    }

    impl Encoder for RawEncoder {
        type Item = Vec<u8>;
        type Error = Status;

        fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
            dst.put_slice(&item);
            Ok(())
        }
    }

    impl Decoder for ResponseDecoder {
        type Item = ExportTraceServiceResponse;
        type Error = Status;

        fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<ExportTraceServiceResponse>, Status> {
            ExportTraceServiceResponse::decode(src)
                .map(Some)
                .map_err(|e| Status::internal(format!("bad response: {e}")))
        }
    }
}

/// Sends `message` verbatim as a trace export call.
async fn export_raw_grpc(
    url: String,
    message: Vec<u8>,
    compression: Option<CompressionEncoding>,
) -> Result<ExportTraceServiceResponse, tonic::Status> {
    raw_grpc_call(url, GRPC_TRACE_EXPORT, message, compression).await
}

/// Sends `message` verbatim to the gRPC method at `path`.
async fn raw_grpc_call(
    url: String,
    path: &'static str,
    message: Vec<u8>,
    compression: Option<CompressionEncoding>,
) -> Result<ExportTraceServiceResponse, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel(url).await);
    if let Some(encoding) = compression {
        grpc = grpc.send_compressed(encoding);
    }
    grpc.ready().await.expect("gRPC channel ready");
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(path);
    grpc.unary(tonic::Request::new(message), path, raw_grpc::RawCodec).await.map(tonic::Response::into_inner)
}

// ---------------------------------------------------------------------------------------------
// Report access
// ---------------------------------------------------------------------------------------------

/// The report, pretty-printed and cut to a readable length, for failure messages.
fn brief(report: &Value) -> String {
    let text = serde_json::to_string_pretty(report).unwrap_or_default();
    if text.len() > 6000 {
        let cut = (0..=6000).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        format!("{}\n... ({} more bytes)", &text[..cut], text.len() - cut)
    } else {
        text
    }
}

/// `totals.<key>` as an unsigned integer.
fn total(report: &Value, key: &str) -> u64 {
    report["totals"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("totals.{key} is not an unsigned integer:\n{}", brief(report)))
}

/// The endpoint `method route`, whatever its service.
fn endpoint<'a>(report: &'a Value, method: &str, route: &str) -> &'a Value {
    support::endpoint(report, method, route)
        .unwrap_or_else(|| panic!("no endpoint {method} {route} in the report:\n{}", brief(report)))
}

/// The endpoint `method route` of `service`.
fn service_endpoint<'a>(report: &'a Value, service: &str, method: &str, route: &str) -> &'a Value {
    report["endpoints"]
        .as_array()
        .and_then(|all| all.iter().find(|e| e["service"] == service && e["method"] == method && e["route"] == route))
        .unwrap_or_else(|| panic!("no endpoint {service} {method} {route} in the report:\n{}", brief(report)))
}

/// `"METHOD route"` of every endpoint, in report order.
fn endpoint_names(report: &Value) -> Vec<String> {
    report["endpoints"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|e| format!("{} {}", e["method"].as_str().unwrap_or("?"), e["route"].as_str().unwrap_or("?")))
                .collect()
        })
        .unwrap_or_default()
}

/// An unsigned integer field of a report object.
fn uint(object: &Value, key: &str) -> u64 {
    object[key].as_u64().unwrap_or_else(|| panic!("`{key}` is not an unsigned integer in {object}"))
}

/// One statistic (`mean`, `p50`, ...) of a stats object such as `latency_ms`.
fn stat(object: &Value, field: &str, which: &str) -> f64 {
    object[field][which].as_f64().unwrap_or_else(|| panic!("`{field}.{which}` is not a number in {object}"))
}

/// Histogram-backed values: within 1% (and 0.01 absolute) of `expected`.
fn assert_close(actual: f64, expected: f64, what: &str) {
    let tolerance = (expected.abs() * 0.01).max(0.01);
    assert!((actual - expected).abs() <= tolerance, "{what}: got {actual}, expected {expected} within 1%");
}

/// Query counts: small integers, exact.
fn assert_count(actual: f64, expected: u64, what: &str) {
    assert!((actual - expected as f64).abs() < 1e-9, "{what}: got {actual}, expected exactly {expected}");
}

/// Every statistic of `field` equals `expected` (one request, or all requests alike).
fn assert_all_stats_count(object: &Value, field: &str, expected: u64) {
    for which in ["mean", "p50", "p90", "p95", "p99", "max"] {
        assert_count(stat(object, field, which), expected, &format!("{field}.{which}"));
    }
}

/// The endpoint's N+1 findings.
fn n_plus_one(endpoint: &Value) -> &Vec<Value> {
    endpoint["n_plus_one"].as_array().unwrap_or_else(|| panic!("n_plus_one is not an array in {endpoint}"))
}

/// The endpoint's duplicate-query findings.
fn duplicates(endpoint: &Value) -> &Vec<Value> {
    endpoint["duplicates"].as_array().unwrap_or_else(|| panic!("duplicates is not an array in {endpoint}"))
}

/// The `queries` entry with this fingerprint.
fn query_entry<'a>(report: &'a Value, fingerprint: &str) -> &'a Value {
    report["queries"]
        .as_array()
        .and_then(|all| all.iter().find(|q| q["fingerprint"] == fingerprint))
        .unwrap_or_else(|| panic!("no query with fingerprint {fingerprint:?}:\n{}", brief(report)))
}

/// Whether `text` is 32 lower-case hex digits.
fn is_trace_id_hex(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether `text` is an RFC 3339 date-time (`2026-11-25T14:36:00Z`, fractions and offsets
/// allowed).
fn is_rfc3339(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |from: usize, to: usize| b.get(from..to).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let date_time = digits(0, 4)
        && b.get(4) == Some(&b'-')
        && digits(5, 7)
        && b.get(7) == Some(&b'-')
        && digits(8, 10)
        && matches!(b.get(10), Some(b'T' | b't'))
        && digits(11, 13)
        && b.get(13) == Some(&b':')
        && digits(14, 16)
        && b.get(16) == Some(&b':')
        && digits(17, 19);
    if !date_time {
        return false;
    }
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let n = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &fraction[n..];
    }
    let offset = rest.as_bytes();
    matches!(rest, "Z" | "z")
        || (offset.len() == 6
            && matches!(offset[0], b'+' | b'-')
            && offset[1..3].iter().all(u8::is_ascii_digit)
            && offset[3] == b':'
            && offset[4..6].iter().all(u8::is_ascii_digit))
}

/// A fresh, valid one-request trace for "the server still works" checks.
fn good_trace(seed: u64) -> RequestTrace {
    RequestTrace::new(seed, "GET", "/health/{id}").query("SELECT 1")
}

// ---------------------------------------------------------------------------------------------
// Wire contract: success
// ---------------------------------------------------------------------------------------------

#[rstest]
#[case::uncompressed(None)]
#[case::gzip(Some(CompressionEncoding::Gzip))]
#[case::deflate(Some(CompressionEncoding::Deflate))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_export_succeeds_without_partial_success_and_counts_the_spans(
    #[case] compression: Option<CompressionEncoding>,
) {
    let app = Apmtop::start(&FAST_GRACE);
    let trace = RequestTrace::new(1, "GET", "/orders/{id}").repeat("SELECT * FROM order_lines WHERE order_id = $1", 2);

    let response = trace_client(app.grpc_url(), compression)
        .await
        .export(trace.request())
        .await
        .unwrap_or_else(|status| panic!("export refused: {status:?}"))
        .into_inner();
    assert_eq!(response.partial_success, None, "a fully accepted export leaves partial_success unset");

    let report = app.stop();
    assert_eq!(total(&report, "spans_received"), trace.span_count() as u64);
    assert_eq!(uint(endpoint(&report, "GET", "/orders/{id}"), "requests"), 1);
}

#[rstest]
#[case::x_protobuf(PROTOBUF, BodyEncoding::Identity)]
#[case::x_protobuf_gzip(PROTOBUF, BodyEncoding::Gzip)]
#[case::x_protobuf_deflate(PROTOBUF, BodyEncoding::Deflate)]
#[case::protobuf("application/protobuf", BodyEncoding::Identity)]
#[case::protobuf_gzip("application/protobuf", BodyEncoding::Gzip)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_export_gets_200_and_a_protobuf_answer_in_the_request_content_type(
    #[case] content_type: &str,
    #[case] encoding: BodyEncoding,
) {
    let app = Apmtop::start(&FAST_GRACE);
    let trace = RequestTrace::new(2, "POST", "/orders").query("INSERT INTO orders (id) VALUES ($1)");

    let body = encoding.apply(&trace.request().encode_to_vec());
    let response = post(&app.http_url(), TRACES_PATH, content_type, encoding.header(), body).await;
    let status = response.status();
    let media = response_media_type(&response);
    let bytes = body_bytes(response).await;
    assert_eq!(status, 200, "answer: {}", String::from_utf8_lossy(&bytes));
    assert_eq!(media, content_type, "the answer uses the request's Content-Type");
    let answer =
        ExportTraceServiceResponse::decode(bytes.as_slice()).expect("the answer body is an ExportTraceServiceResponse");
    assert_eq!(answer.partial_success, None, "a fully accepted export leaves partial_success unset");

    let report = app.stop();
    assert_eq!(total(&report, "spans_received"), trace.span_count() as u64);
    assert_eq!(uint(endpoint(&report, "POST", "/orders"), "requests"), 1);
}

#[rstest]
#[case::plain(JSON, BodyEncoding::Identity)]
#[case::with_charset("application/json; charset=utf-8", BodyEncoding::Identity)]
#[case::gzip(JSON, BodyEncoding::Gzip)]
#[case::deflate(JSON, BodyEncoding::Deflate)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_json_export_gets_200_and_an_empty_json_object(
    #[case] content_type: &str,
    #[case] encoding: BodyEncoding,
) {
    let app = Apmtop::start(&FAST_GRACE);
    let trace = RequestTrace::new(3, "DELETE", "/orders/{id}").query("DELETE FROM orders WHERE id = $1");

    let json = serde_json::to_vec(&trace_request_json(&trace.request(), JsonStyle::SPEC)).expect("serialize JSON");
    let response = post(&app.http_url(), TRACES_PATH, content_type, encoding.header(), encoding.apply(&json)).await;
    let status = response.status();
    let media = response_media_type(&response);
    let bytes = body_bytes(response).await;
    assert_eq!(status, 200, "answer: {}", String::from_utf8_lossy(&bytes));
    assert_eq!(media, JSON, "the answer uses the request's media type");
    let answer: Value = serde_json::from_slice(&bytes).expect("the answer body is JSON");
    assert_eq!(answer, json!({}), "full success is answered with an empty object");

    let report = app.stop();
    assert_eq!(total(&report, "spans_received"), trace.span_count() as u64);
    assert_eq!(uint(endpoint(&report, "DELETE", "/orders/{id}"), "requests"), 1);
}

#[rstest]
#[case::upper_case_ids_and_unknown_fields(JsonStyle {
    upper_case_ids: true,
    int64_as_strings: true,
    unknown_fields: true,
})]
#[case::int64_as_json_numbers(JsonStyle {
    upper_case_ids: false,
    int64_as_strings: false,
    unknown_fields: false,
})]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_json_quirks_decode_to_the_same_request(#[case] style: JsonStyle) {
    let app = Apmtop::start(&FAST_GRACE);
    let trace = RequestTrace::new(4, "GET", "/carts/{id}")
        .duration_ms(120)
        .status_code(201)
        .repeat("SELECT * FROM cart_items WHERE cart_id = $1", 6);
    let json = trace_request_json(&trace.request(), style);
    if style.upper_case_ids {
        let sent = json["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"].as_str().expect("traceId string");
        assert_ne!(sent, trace.trace_id_hex(), "test setup: the id must contain hex letters");
    }

    let response =
        post(&app.http_url(), TRACES_PATH, JSON, None, serde_json::to_vec(&json).expect("serialize JSON")).await;
    let status = response.status();
    let bytes = body_bytes(response).await;
    assert_eq!(status, 200, "answer: {}", String::from_utf8_lossy(&bytes));

    let report = app.stop();
    assert_eq!(total(&report, "spans_received"), trace.span_count() as u64);
    assert_eq!(total(&report, "spans_rejected"), 0);
    let carts = endpoint(&report, "GET", "/carts/{id}");
    assert_eq!(uint(carts, "requests"), 1);
    assert_close(stat(carts, "latency_ms", "p50"), 120.0, "latency p50");
    assert_all_stats_count(carts, "queries_per_request", 6);
    let found = n_plus_one(carts);
    assert_eq!(found.len(), 1, "one N+1 finding: {carts}");
    assert_eq!(
        found[0]["example_trace_id"],
        trace.trace_id_hex(),
        "the report names the trace in lower-case hex whatever case it arrived in"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_export_requests_succeed_on_every_transport() {
    let app = Apmtop::start(&FAST_GRACE);
    let empty = ExportTraceServiceRequest::default();
    for transport in [Transport::Grpc, Transport::HttpProtobuf, Transport::HttpJson] {
        export_ok(&app, transport, &empty).await;
    }
    let report = app.stop();
    assert_eq!(total(&report, "spans_received"), 0);
    assert_eq!(total(&report, "requests"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_port_also_accepts_otlp_http() {
    let app = Apmtop::start(&FAST_GRACE);
    let proto = good_trace(5);
    let json = good_trace(6);

    let response = post(&app.grpc_url(), TRACES_PATH, PROTOBUF, None, proto.request().encode_to_vec()).await;
    let status = response.status();
    let bytes = body_bytes(response).await;
    assert_eq!(status, 200, "protobuf on the gRPC port: {}", String::from_utf8_lossy(&bytes));
    let answer = ExportTraceServiceResponse::decode(bytes.as_slice()).expect("protobuf answer");
    assert_eq!(answer.partial_success, None);

    let body = serde_json::to_vec(&trace_request_json(&json.request(), JsonStyle::SPEC)).expect("serialize JSON");
    let response = post(&app.grpc_url(), TRACES_PATH, JSON, None, body).await;
    let status = response.status();
    let bytes = body_bytes(response).await;
    assert_eq!(status, 200, "JSON on the gRPC port: {}", String::from_utf8_lossy(&bytes));

    let report = app.stop();
    assert_eq!(total(&report, "spans_received"), (proto.span_count() + json.span_count()) as u64);
    assert_eq!(uint(endpoint(&report, "GET", "/health/{id}"), "requests"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_port_also_accepts_otlp_grpc() {
    let app = Apmtop::start(&FAST_GRACE);
    let trace = good_trace(7);
    let response = trace_client(app.http_url(), None)
        .await
        .export(trace.request())
        .await
        .unwrap_or_else(|status| panic!("gRPC on the HTTP port refused: {status:?}"))
        .into_inner();
    assert_eq!(response.partial_success, None);
    let report = app.stop();
    assert_eq!(total(&report, "spans_received"), trace.span_count() as u64);
}

// ---------------------------------------------------------------------------------------------
// Wire contract: bad requests
// ---------------------------------------------------------------------------------------------

/// Checks a 400 answer: a `google.rpc.Status` encoded like the request, with a message.
async fn assert_bad_request(response: reqwest::Response, content_type: &str, case: &str) {
    let status = response.status();
    let media = response_media_type(&response);
    let bytes = body_bytes(response).await;
    assert_eq!(status, 400, "{case}: answer {}", String::from_utf8_lossy(&bytes));
    assert_eq!(media, media_type(content_type), "{case}: the error body matches the request's encoding");
    let message = if media == JSON {
        let body: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{case}: error body is not JSON ({e}): {bytes:?}"));
        body["message"].as_str().unwrap_or_default().to_string()
    } else {
        tonic_types::Status::decode(bytes.as_slice())
            .unwrap_or_else(|e| panic!("{case}: error body is not a google.rpc.Status: {e}"))
            .message
    };
    assert!(!message.trim().is_empty(), "{case}: the Status says what is wrong");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_http_bodies_get_400_with_a_status_and_the_server_keeps_serving() {
    let mut app = Apmtop::start(&FAST_GRACE);
    let truncated_gzip = {
        let mut full = gzip(&good_trace(100).request().encode_to_vec());
        full.truncate(full.len() / 2);
        full
    };
    let bad: Vec<(&str, &str, Option<&str>, Vec<u8>)> = vec![
        // Field 1, length 5, but only one byte follows.
        ("truncated protobuf", PROTOBUF, None, vec![0x0a, 0x05, 0x01]),
        ("protobuf with an invalid wire type", PROTOBUF, None, vec![0x0f, 0xff, 0xff]),
        ("truncated JSON", JSON, None, br#"{"resourceSpans": ["#.to_vec()),
        ("JSON of the wrong shape", JSON, None, br#"{"resourceSpans": "none"}"#.to_vec()),
        ("not gzip (protobuf)", PROTOBUF, Some("gzip"), b"this is not gzip".to_vec()),
        ("not gzip (JSON)", JSON, Some("gzip"), b"this is not gzip".to_vec()),
        ("truncated gzip", PROTOBUF, Some("gzip"), truncated_gzip),
        ("not deflate", PROTOBUF, Some("deflate"), b"this is not deflate".to_vec()),
    ];
    let rounds = bad.len();

    for (index, (case, content_type, encoding, body)) in bad.into_iter().enumerate() {
        let response = post(&app.http_url(), TRACES_PATH, content_type, encoding, body).await;
        assert_bad_request(response, content_type, case).await;
        assert!(app.is_running(), "{case}: apmtop exited; stderr:\n{}", app.stderr());

        let good = good_trace(200 + index as u64);
        let transport = if content_type == JSON { Transport::HttpJson } else { Transport::HttpProtobuf };
        export_ok(&app, transport, &good.request()).await;
    }

    let report = app.stop();
    assert_eq!(
        total(&report, "spans_received"),
        rounds as u64 * good_trace(0).span_count() as u64,
        "only the good requests are counted"
    );
    assert_eq!(uint(endpoint(&report, "GET", "/health/{id}"), "requests"), rounds as u64);
}

/// Sends one hand-made gRPC frame over HTTP/2 and returns the `grpc-status` of the answer.
async fn raw_grpc_frame_status(url: &str, headers: &[(&str, &str)], frame: Vec<u8>) -> String {
    let client = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .timeout(CLIENT_TIMEOUT)
        .build()
        .expect("h2 client");
    let mut request = client
        .post(format!("{url}{GRPC_TRACE_EXPORT}"))
        .header(CONTENT_TYPE, "application/grpc")
        .header("te", "trailers")
        .body(frame);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("HTTP/2 gRPC call");
    let headers = response.headers().clone();
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no grpc-status in a trailers-only answer; headers: {headers:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_grpc_messages_get_invalid_argument_and_the_server_keeps_serving() {
    let mut app = Apmtop::start(&FAST_GRACE);
    let garbage = vec![0x0a, 0x05, 0x01];
    let mut rounds = 0u64;

    for compression in [None, Some(CompressionEncoding::Gzip)] {
        let status = export_raw_grpc(app.grpc_url(), garbage.clone(), compression)
            .await
            .expect_err("undecodable protobuf is refused");
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "undecodable protobuf ({compression:?}): {status:?}");
        assert!(app.is_running(), "apmtop exited; stderr:\n{}", app.stderr());
        export_ok(&app, Transport::Grpc, &good_trace(300 + rounds).request()).await;
        rounds += 1;
    }

    // A frame flagged as compressed whose bytes are not gzip.
    let mut frame = vec![1u8];
    let junk = b"this is not gzip";
    frame.extend_from_slice(&(junk.len() as u32).to_be_bytes());
    frame.extend_from_slice(junk);
    let status = raw_grpc_frame_status(&app.grpc_url(), &[("grpc-encoding", "gzip")], frame).await;
    assert_eq!(status, (tonic::Code::InvalidArgument as i32).to_string(), "bad gzip in a gRPC frame");
    assert!(app.is_running(), "apmtop exited; stderr:\n{}", app.stderr());
    export_ok(&app, Transport::GrpcGzip, &good_trace(300 + rounds).request()).await;
    rounds += 1;

    let report = app.stop();
    assert_eq!(total(&report, "spans_received"), rounds * good_trace(0).span_count() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_content_type_gets_415() {
    let app = Apmtop::start(&FAST_GRACE);
    let response = post(&app.http_url(), TRACES_PATH, "text/plain", None, b"hello".to_vec()).await;
    assert_eq!(response.status(), 415);
    app.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_path_gets_404() {
    let app = Apmtop::start(&FAST_GRACE);
    let body = good_trace(8).request().encode_to_vec();
    let response = post(&app.http_url(), "/v1/nothing-here", PROTOBUF, None, body).await;
    assert_eq!(response.status(), 404);
    let report = app.stop();
    assert_eq!(total(&report, "spans_received"), 0, "nothing sent to an unknown path is counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_under_a_user_path_prefix_are_accepted() {
    // OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://host:4318/collector/v1/traces is used as is.
    let app = Apmtop::start(&FAST_GRACE);
    let body = good_trace(8).request().encode_to_vec();
    let response = post(&app.http_url(), "/collector/v1/traces", PROTOBUF, None, body).await;
    assert_eq!(response.status(), 200);
    let report = app.stop();
    assert!(total(&report, "spans_received") > 0, "spans under a prefixed path are counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_grpc_method_gets_unimplemented_and_the_server_keeps_serving() {
    let app = Apmtop::start(&FAST_GRACE);
    let path = "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export";
    let status = raw_grpc_call(app.grpc_url(), path, Vec::new(), None).await.expect_err("no such service");
    assert_eq!(status.code(), tonic::Code::Unimplemented, "{status:?}");
    export_ok(&app, Transport::Grpc, &good_trace(9).request()).await;
    let report = app.stop();
    assert!(total(&report, "spans_received") > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_on_the_traces_path_gets_405() {
    let app = Apmtop::start(&FAST_GRACE);
    let url = format!("{}{TRACES_PATH}", app.http_url());
    let response = http_client().get(&url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(response.status(), 405);
    app.stop();
}

// ---------------------------------------------------------------------------------------------
// Wire contract: size limits
// ---------------------------------------------------------------------------------------------

/// How an oversized OTLP/HTTP body is built.
#[derive(Clone, Copy, Debug)]
enum Oversized {
    /// A valid protobuf request just over the limit, sent as is.
    Uncompressed,
    /// The same request gzipped: a few dozen KiB that inflate past the limit.
    GzipBombOfValidRequest,
    /// 70 MiB of zeros gzipped.
    GzipOfZeros,
}

#[rstest]
#[case::uncompressed(Oversized::Uncompressed)]
#[case::gzip_bomb_of_a_valid_request(Oversized::GzipBombOfValidRequest)]
#[case::gzip_of_70_mib_of_zeros(Oversized::GzipOfZeros)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_bodies_over_64_mib_after_decompression_get_413_and_the_server_keeps_serving(#[case] kind: Oversized) {
    let mut app = Apmtop::start(&FAST_GRACE);
    // Built once per test; the compressed forms never hold the inflated bytes twice.
    let (encoding, body) = match kind {
        Oversized::Uncompressed => {
            let body = huge_request(9, SIZE_LIMIT + MIB).encode_to_vec();
            assert!(body.len() > SIZE_LIMIT);
            (None, body)
        }
        Oversized::GzipBombOfValidRequest => (Some("gzip"), gzip(&huge_request(9, SIZE_LIMIT + MIB).encode_to_vec())),
        Oversized::GzipOfZeros => (Some("gzip"), gzip_of_zeros(70 * MIB)),
    };

    let response = post(&app.http_url(), TRACES_PATH, PROTOBUF, encoding, body).await;
    let status = response.status();
    let bytes = body_bytes(response).await;
    assert_eq!(status, 413, "answer {}", String::from_utf8_lossy(&bytes));
    assert!(app.is_running(), "apmtop exited; stderr:\n{}", app.stderr());
    let good = good_trace(400);
    export_ok(&app, Transport::HttpProtobuf, &good.request()).await;

    let report = app.stop();
    assert_eq!(total(&report, "spans_received"), good.span_count() as u64, "only the good request is counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_messages_over_64_mib_get_non_retryable_resource_exhausted() {
    let mut app = Apmtop::start(&FAST_GRACE);
    let oversized = huge_request(10, SIZE_LIMIT + MIB);
    let cases = [
        ("uncompressed", None),
        ("gzip bomb", Some(CompressionEncoding::Gzip)),
        ("deflate bomb", Some(CompressionEncoding::Deflate)),
    ];
    for (index, (case, compression)) in cases.into_iter().enumerate() {
        let status = trace_client(app.grpc_url(), compression)
            .await
            .export(oversized.clone())
            .await
            .expect_err("an oversized message is refused");
        assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{case}: {status:?}");
        assert!(
            status.get_details_retry_info().is_none(),
            "{case}: RetryInfo would make exporters retry the same oversized batch: {status:?}"
        );
        assert!(app.is_running(), "{case}: apmtop exited; stderr:\n{}", app.stderr());
        export_ok(&app, Transport::Grpc, &good_trace(500 + index as u64).request()).await;
    }
    drop(oversized);

    let report = app.stop();
    assert_eq!(total(&report, "spans_received"), cases.len() as u64 * good_trace(0).span_count() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_above_common_framework_defaults_but_under_64_mib_are_accepted() {
    // 8 MiB is over tonic's 4 MiB and axum's 2 MB default body limits.
    let app = Apmtop::start(&FAST_GRACE);
    let transports = [Transport::Grpc, Transport::GrpcGzip, Transport::HttpProtobuf, Transport::HttpProtobufGzip];
    for (index, transport) in transports.into_iter().enumerate() {
        export_ok(&app, transport, &huge_request(600 + index as u64, 8 * MIB)).await;
    }
    let report = app.stop();
    assert_eq!(total(&report, "spans_received"), transports.len() as u64);
    assert_eq!(uint(endpoint(&report, "POST", "/uploads"), "requests"), transports.len() as u64);
}

// ---------------------------------------------------------------------------------------------
// Wire contract: partial success, other signals
// ---------------------------------------------------------------------------------------------

#[rstest]
#[case::grpc(Transport::Grpc)]
#[case::http_protobuf(Transport::HttpProtobuf)]
#[case::http_json(Transport::HttpJson)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_spans_are_rejected_with_partial_success_and_the_valid_ones_kept(#[case] transport: Transport) {
    let app = Apmtop::start(&FAST_GRACE);
    let valid = RequestTrace::new(11, "GET", "/products/{id}").repeat("SELECT * FROM prices WHERE product_id = $1", 2);
    let mut request = valid.request();
    let invalid: Vec<Span> = InvalidSpan::ALL.iter().zip(1000u64..).map(|(kind, seed)| kind.span(seed)).collect();
    request.resource_spans[0].scope_spans[0].spans.extend(invalid);

    match transport.export(&app, &request).await {
        Answer::Partial { rejected, message } => {
            assert_eq!(rejected, InvalidSpan::ALL.len() as i64, "rejected_spans counts the invalid spans");
            assert!(!message.trim().is_empty(), "error_message explains the rejection");
        }
        Answer::Success => panic!("invalid spans were accepted silently"),
    }

    let report = app.stop();
    assert_eq!(total(&report, "spans_rejected"), InvalidSpan::ALL.len() as u64);
    assert_eq!(total(&report, "spans_received"), valid.span_count() as u64);
    let products = endpoint(&report, "GET", "/products/{id}");
    assert_eq!(uint(products, "requests"), 1);
    assert_all_stats_count(products, "queries_per_request", 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_and_log_exports_are_answered_with_success_and_counted() {
    let app = Apmtop::start(&FAST_GRACE);

    let mut metrics = MetricsServiceClient::new(channel(app.grpc_url()).await);
    let answer = metrics.export(metrics_request(SERVICE)).await.expect("gRPC metrics export");
    assert_eq!(answer.into_inner().partial_success, None);
    let mut metrics = metrics.send_compressed(CompressionEncoding::Gzip);
    let answer = metrics.export(metrics_request(SERVICE)).await.expect("gzip gRPC metrics export");
    assert_eq!(answer.into_inner().partial_success, None);

    let mut logs = LogsServiceClient::new(channel(app.grpc_url()).await);
    let answer = logs.export(logs_request(SERVICE)).await.expect("gRPC logs export");
    assert_eq!(answer.into_inner().partial_success, None);

    for (path, protobuf, json) in [
        (METRICS_PATH, metrics_request(SERVICE).encode_to_vec(), metrics_json(SERVICE)),
        (LOGS_PATH, logs_request(SERVICE).encode_to_vec(), logs_json(SERVICE)),
    ] {
        let response = post(&app.http_url(), path, PROTOBUF, None, protobuf).await;
        let status = response.status();
        let media = response_media_type(&response);
        let bytes = body_bytes(response).await;
        assert_eq!(status, 200, "protobuf {path}: {}", String::from_utf8_lossy(&bytes));
        assert_eq!(media, PROTOBUF, "protobuf {path} answer type");
        if path == METRICS_PATH {
            let answer = ExportMetricsServiceResponse::decode(bytes.as_slice()).expect("metrics answer");
            assert_eq!(answer.partial_success, None);
        } else {
            let answer = ExportLogsServiceResponse::decode(bytes.as_slice()).expect("logs answer");
            assert_eq!(answer.partial_success, None);
        }

        let body = serde_json::to_vec(&json).expect("serialize JSON");
        let response = post(&app.http_url(), path, JSON, None, body).await;
        let status = response.status();
        let bytes = body_bytes(response).await;
        assert_eq!(status, 200, "JSON {path}: {}", String::from_utf8_lossy(&bytes));
        let answer: Value = serde_json::from_slice(&bytes).expect("JSON answer");
        assert_eq!(answer, json!({}), "JSON {path} answer");
    }

    let report = app.stop();
    assert_eq!(total(&report, "metric_exports"), 4, "2 gRPC + 2 HTTP metric exports");
    assert_eq!(total(&report, "log_exports"), 3, "1 gRPC + 2 HTTP log exports");
    assert_eq!(total(&report, "spans_received"), 0, "metrics and logs are not spans");
}

// ---------------------------------------------------------------------------------------------
// Analysis: assembling requests
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_of_one_trace_split_across_exports_and_transports_make_one_request() {
    let app = Apmtop::start(&FAST_GRACE);
    let trace = RequestTrace::new(12, "GET", "/users/{id}/orders")
        .depth(2)
        .connections(1)
        .repeat("SELECT * FROM orders WHERE user_id = $1", 3)
        .query("SELECT * FROM users WHERE id = $1");
    let spans = trace.spans(); // server, 2 handlers, 1 connection, 4 queries
    assert_eq!(spans.len(), 8);
    let part = |range: std::ops::Range<usize>| export_request(&trace.service, spans[range].to_vec());

    // Children first, as SDKs export spans when they end; the SERVER span comes last.
    export_ok(&app, Transport::Grpc, &part(5..8)).await;
    export_ok(&app, Transport::HttpProtobufGzip, &part(3..5)).await;
    export_ok(&app, Transport::GrpcGzip, &part(1..3)).await;
    export_ok(&app, Transport::HttpJson, &part(0..1)).await;

    let report = app.stop();
    assert_eq!(total(&report, "spans_received"), 8);
    assert_eq!(total(&report, "requests"), 1, "the pieces make one request");
    assert_eq!(total(&report, "traces_incomplete"), 0);
    let orders = endpoint(&report, "GET", "/users/{id}/orders");
    assert_eq!(uint(orders, "requests"), 1);
    assert_all_stats_count(orders, "queries_per_request", 4);
    assert_eq!(uint(orders, "connection_spans"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_exported_a_batch_before_their_server_span_still_make_one_request() {
    // SDK batch processors export every few seconds, so a request's DB spans often leave in one
    // batch and its SERVER span in the next, more than a grace period later.
    let app = Apmtop::start(&FAST_GRACE);
    let trace = RequestTrace::new(16, "GET", "/slow-batches/{id}").repeat("SELECT * FROM batches WHERE id = $1", 3);
    let spans = trace.spans(); // server, handler, 3 queries
    export_ok(&app, Transport::Grpc, &export_request(&trace.service, spans[1..].to_vec())).await;
    tokio::time::sleep(Duration::from_secs(1)).await; // five grace periods
    export_ok(&app, Transport::HttpProtobuf, &export_request(&trace.service, spans[..1].to_vec())).await;

    let report = app.stop();
    assert_eq!(total(&report, "requests"), 1);
    assert_eq!(total(&report, "traces_incomplete"), 0);
    assert_all_stats_count(endpoint(&report, "GET", "/slow-batches/{id}"), "queries_per_request", 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_arriving_after_their_server_span_within_the_grace_period_join_it() {
    let app = Apmtop::start(&["--grace", "30"]);
    let trace =
        RequestTrace::new(13, "PUT", "/users/{id}").depth(1).repeat("UPDATE users SET name = $1 WHERE id = $2", 2);
    let spans = trace.spans(); // server, handler, 2 queries
    let part = |range: std::ops::Range<usize>| export_request(&trace.service, spans[range].to_vec());

    export_ok(&app, Transport::HttpJson, &part(0..1)).await;
    export_ok(&app, Transport::Grpc, &part(2..4)).await;
    export_ok(&app, Transport::HttpProtobuf, &part(1..2)).await;

    let report = app.stop();
    assert_eq!(total(&report, "requests"), 1);
    let users = endpoint(&report, "PUT", "/users/{id}");
    assert_all_stats_count(users, "queries_per_request", 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_whose_server_span_never_arrives_is_incomplete_not_a_request() {
    let app = Apmtop::start(&FAST_GRACE);
    let orphan = RequestTrace::new(14, "GET", "/orphans/{id}").repeat("SELECT * FROM orphans WHERE id = $1", 2);
    let complete = good_trace(15);
    export_ok(&app, Transport::Grpc, &export_request(&orphan.service, orphan.spans()[1..].to_vec())).await;
    export_ok(&app, Transport::Grpc, &complete.request()).await;

    let report = app.stop();
    assert_eq!(total(&report, "requests"), 1, "only the complete trace is a request");
    assert_eq!(total(&report, "traces_incomplete"), 1);
    assert!(support::endpoint(&report, "GET", "/orphans/{id}").is_none(), "no endpoint without a server span");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_spans_at_any_depth_below_the_server_span_count_as_queries() {
    let app = Apmtop::start(&FAST_GRACE);
    let depths = [0usize, 1, 4, 9];
    let traces: Vec<RequestTrace> = depths
        .iter()
        .map(|&depth| {
            RequestTrace::new(20 + depth as u64, "GET", &format!("/depth/{depth}"))
                .depth(depth)
                .query("SELECT * FROM a WHERE id = $1")
                .query("SELECT * FROM b WHERE id = $1")
                .query("SELECT * FROM c WHERE id = $1")
        })
        .collect();
    export_ok(&app, Transport::Grpc, &batch(&traces)).await;

    let report = app.stop();
    for depth in depths {
        let found = endpoint(&report, "GET", &format!("/depth/{depth}"));
        assert_all_stats_count(found, "queries_per_request", 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_spans_without_statements_are_counted_apart_and_are_not_queries() {
    let app = Apmtop::start(&FAST_GRACE);
    let trace = RequestTrace::new(30, "GET", "/invoices/{id}")
        .depth(2)
        .connections(2)
        .query("SELECT * FROM invoices WHERE id = $1")
        .query("SELECT * FROM invoice_lines WHERE invoice_id = $1")
        .query("SELECT * FROM customers WHERE id = $1");
    export_ok(&app, Transport::Grpc, &trace.request()).await;

    let report = app.stop();
    let invoices = endpoint(&report, "GET", "/invoices/{id}");
    assert_all_stats_count(invoices, "queries_per_request", 3);
    assert_eq!(uint(invoices, "connection_spans"), 2);
    let queries = report["queries"].as_array().expect("queries array");
    let calls: u64 = queries.iter().map(|q| uint(q, "calls")).sum();
    assert_eq!(calls, 3, "connection spans are not query calls: {queries:?}");
    assert!(
        queries.iter().all(|q| !q["fingerprint"].as_str().unwrap_or_default().contains(POOL_CONNECT_SPAN)),
        "no query is made of a connection span: {queries:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Analysis: N+1 and duplicates
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_parameterized_query_is_reported_as_n_plus_one() {
    let app = Apmtop::start(&FAST_GRACE);
    let users_sql = "SELECT * FROM users WHERE id = $1";
    let traces: Vec<RequestTrace> = [(40u64, 6usize), (41, 6), (42, 8)]
        .into_iter()
        .map(|(seed, repeats)| {
            RequestTrace::new(seed, "GET", "/teams/{id}/members")
                .query("SELECT * FROM teams WHERE id = $1")
                .repeat(users_sql, repeats)
                .query_ms(2)
        })
        .collect();
    export_ok(&app, Transport::HttpProtobuf, &batch(&traces)).await;

    let report = app.stop();
    let members = endpoint(&report, "GET", "/teams/{id}/members");
    let found = n_plus_one(members);
    assert_eq!(found.len(), 1, "only the users query repeats: {found:?}");
    let finding = &found[0];
    let fingerprint = finding["fingerprint"].as_str().expect("fingerprint string");
    assert!(fingerprint.to_ascii_lowercase().contains("users"), "fingerprint {fingerprint:?}");
    assert_eq!(finding["statement"], users_sql, "an example of the raw statement");
    assert_eq!(finding["db_system"], "postgresql");
    assert_eq!(finding["tables"], json!(["users"]));
    assert_eq!(uint(finding, "requests_affected"), 3);
    assert_count(stat(finding, "repeats", "p50"), 6, "repeats.p50");
    assert_count(stat(finding, "repeats", "max"), 8, "repeats.max");
    assert_close(finding["time_ms_total"].as_f64().expect("time_ms_total"), 40.0, "time_ms_total");
    let example = finding["example_trace_id"].as_str().expect("example_trace_id");
    assert!(is_trace_id_hex(example), "example_trace_id {example:?}");
    assert!(
        traces.iter().any(|t| t.trace_id_hex() == example),
        "example_trace_id {example} is one of the affected traces"
    );
    assert!(!finding["hint"].as_str().unwrap_or_default().trim().is_empty(), "a hint on the fix");

    let query = query_entry(&report, fingerprint);
    assert_eq!(uint(query, "calls"), 20);
    assert_eq!(query["db_system"], "postgresql");
    assert_eq!(query["tables"], json!(["users"]));
    assert_close(stat(query, "latency_ms", "p50"), 2.0, "query latency p50");
    assert_close(query["time_ms_total"].as_f64().expect("time_ms_total"), 40.0, "query time_ms_total");
    assert_eq!(query["endpoints"], json!(["GET /teams/{id}/members"]));
}

#[rstest]
#[case::four_repeats_stay_under_the_default_threshold(&[], 4, false)]
#[case::five_repeats_reach_the_default_threshold(&[], 5, true)]
#[case::n_plus_one_min_3_flags_four_repeats(&["--n-plus-one-min", "3"], 4, true)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n_plus_one_needs_the_minimum_number_of_repeats(
    #[case] extra: &[&str],
    #[case] repeats: usize,
    #[case] expected: bool,
) {
    let args: Vec<&str> = FAST_GRACE.iter().chain(extra).copied().collect();
    let app = Apmtop::start(&args);
    let trace = RequestTrace::new(50, "GET", "/authors/{id}/books")
        .query("SELECT * FROM authors WHERE id = $1")
        .repeat("SELECT * FROM books WHERE author_id = $1", repeats);
    export_ok(&app, Transport::Grpc, &trace.request()).await;

    let report = app.stop();
    let found = n_plus_one(endpoint(&report, "GET", "/authors/{id}/books"));
    if expected {
        assert_eq!(found.len(), 1, "{repeats} repeats with {extra:?}: {found:?}");
        assert_count(stat(&found[0], "repeats", "max"), repeats as u64, "repeats.max");
        assert_eq!(found[0]["tables"], json!(["books"]));
    } else {
        assert!(found.is_empty(), "{repeats} repeats with {extra:?} is not N+1: {found:?}");
    }
}

#[rstest]
#[case::default_threshold(&[])]
#[case::threshold_as_low_as_the_repeats(&["--n-plus-one-min", "2"])]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_literal_queries_are_duplicates_not_n_plus_one(#[case] extra: &[&str]) {
    let args: Vec<&str> = FAST_GRACE.iter().chain(extra).copied().collect();
    let app = Apmtop::start(&args);
    let sql = "SELECT * FROM t WHERE id = 7";
    let trace = RequestTrace::new(60, "GET", "/things/{id}").repeat(sql, 2);
    export_ok(&app, Transport::Grpc, &trace.request()).await;

    let report = app.stop();
    let things = endpoint(&report, "GET", "/things/{id}");
    assert!(n_plus_one(things).is_empty(), "the same literal twice is not N+1: {things}");
    let found = duplicates(things);
    assert_eq!(found.len(), 1, "one duplicate finding: {things}");
    assert_eq!(found[0]["statement"], sql);
    assert!(!found[0]["fingerprint"].as_str().unwrap_or_default().is_empty());
    assert_eq!(uint(&found[0], "repeats_max"), 2);
    assert_eq!(uint(&found[0], "requests_affected"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_query_shape_with_different_literals_is_one_n_plus_one() {
    let app = Apmtop::start(&FAST_GRACE);
    let ids = [7, 8, 9, 10, 11];
    let mut trace = RequestTrace::new(70, "GET", "/feed");
    for id in ids {
        trace = trace.query(&format!("SELECT * FROM users WHERE id = {id}"));
    }
    export_ok(&app, Transport::Grpc, &trace.request()).await;

    let report = app.stop();
    let feed = endpoint(&report, "GET", "/feed");
    let found = n_plus_one(feed);
    assert_eq!(found.len(), 1, "five literals, one shape: {feed}");
    assert_count(stat(&found[0], "repeats", "max"), 5, "repeats.max");
    assert_eq!(found[0]["tables"], json!(["users"]));
    let fingerprint = found[0]["fingerprint"].as_str().expect("fingerprint");
    for id in ids {
        assert!(!fingerprint.contains(&format!("= {id}")), "literal {id} left in {fingerprint:?}");
    }
    assert!(duplicates(feed).is_empty(), "different literals are not duplicates: {feed}");
    assert_eq!(uint(query_entry(&report, fingerprint), "calls"), 5, "one fingerprint for all five");
}

// ---------------------------------------------------------------------------------------------
// Analysis: endpoints
// ---------------------------------------------------------------------------------------------

#[rstest]
#[case::stable_url_path(Conventions::New)]
#[case::old_http_target(Conventions::Old)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_without_http_route_fold_into_a_templated_route(#[case] conventions: Conventions) {
    let app = Apmtop::start(&FAST_GRACE);
    let paths = ["/users/123", "/users/456", "/users/9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f"];
    let traces: Vec<RequestTrace> = paths
        .iter()
        .zip(80u64..)
        .map(|(path, seed)| RequestTrace::new(seed, "GET", "/unused").without_route(path).conventions(conventions))
        .collect();
    export_ok(&app, Transport::Grpc, &batch(&traces)).await;

    let report = app.stop();
    assert_eq!(uint(endpoint(&report, "GET", "/users/{id}"), "requests"), 3);
    assert_eq!(endpoint_names(&report), vec!["GET /users/{id}".to_string()], "one endpoint only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_are_sorted_by_p95_latency_descending() {
    let app = Apmtop::start(&FAST_GRACE);
    let mut traces = Vec::new();
    for (route, ms, seed) in [("/fast", 20, 90), ("/slow", 400, 92), ("/medium", 120, 94)] {
        traces.push(RequestTrace::new(seed, "GET", route).duration_ms(ms));
        traces.push(RequestTrace::new(seed + 1, "GET", route).duration_ms(ms + 5));
    }
    export_ok(&app, Transport::Grpc, &batch(&traces)).await;

    let report = app.stop();
    assert_eq!(endpoint_names(&report), vec!["GET /slow", "GET /medium", "GET /fast"]);
    let p95s: Vec<f64> =
        report["endpoints"].as_array().expect("endpoints array").iter().map(|e| stat(e, "latency_ms", "p95")).collect();
    assert!(p95s.windows(2).all(|w| w[0] >= w[1]), "p95 descending: {p95s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_count_server_status_error_and_http_5xx() {
    let app = Apmtop::start(&FAST_GRACE);
    let outcomes = [(200, false), (500, false), (503, false), (200, true), (404, false), (499, false)];
    let traces: Vec<RequestTrace> = outcomes
        .iter()
        .zip(100u64..)
        .map(|(&(code, error), seed)| {
            let trace = RequestTrace::new(seed, "POST", "/checkout").status_code(code);
            if error { trace.error_status() } else { trace }
        })
        .collect();
    export_ok(&app, Transport::HttpProtobuf, &batch(&traces)).await;

    let report = app.stop();
    let checkout = endpoint(&report, "POST", "/checkout");
    assert_eq!(uint(checkout, "requests"), 6);
    assert_eq!(uint(checkout, "errors"), 3, "500, 503 and the ERROR status: {checkout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_db_time_and_slowest_requests_follow_the_span_durations() {
    let app = Apmtop::start(&FAST_GRACE);
    let durations = [100u64, 200, 300, 400, 1000];
    let traces: Vec<RequestTrace> = durations
        .iter()
        .zip(110u64..)
        .map(|(&ms, seed)| {
            RequestTrace::new(seed, "GET", "/reports/{id}")
                .duration_ms(ms)
                .depth(2)
                .query_ms(10)
                .query("SELECT * FROM reports WHERE id = $1")
                .query("SELECT * FROM report_rows WHERE report_id = $1")
                .query("SELECT * FROM owners WHERE id = $1")
        })
        .collect();
    export_ok(&app, Transport::Grpc, &batch(&traces)).await;

    let report = app.stop();
    let reports = endpoint(&report, "GET", "/reports/{id}");
    assert_eq!(uint(reports, "requests"), 5);
    assert_close(stat(reports, "latency_ms", "mean"), 400.0, "latency mean");
    assert_close(stat(reports, "latency_ms", "p50"), 300.0, "latency p50");
    assert_close(stat(reports, "latency_ms", "max"), 1000.0, "latency max");
    let percentiles: Vec<f64> =
        ["p50", "p90", "p95", "p99", "max"].iter().map(|p| stat(reports, "latency_ms", p)).collect();
    assert!(percentiles.windows(2).all(|w| w[0] <= w[1]), "percentiles ascend: {percentiles:?}");
    for which in ["mean", "p50", "max"] {
        assert_close(stat(reports, "db_time_ms", which), 30.0, &format!("db_time_ms.{which}"));
    }
    assert_all_stats_count(reports, "queries_per_request", 3);

    let slowest = reports["slowest"].as_array().expect("slowest array");
    assert!(!slowest.is_empty(), "slowest requests listed");
    assert_eq!(slowest[0]["trace_id"], traces[4].trace_id_hex(), "the 1000 ms request first");
    assert_close(slowest[0]["duration_ms"].as_f64().expect("duration_ms"), 1000.0, "slowest duration");
    assert_eq!(uint(&slowest[0], "queries"), 3);
    let listed: Vec<f64> = slowest.iter().map(|s| s["duration_ms"].as_f64().unwrap_or(f64::NAN)).collect();
    assert!(listed.windows(2).all(|w| w[0] >= w[1]), "slowest first: {listed:?}");
    assert!(
        slowest.iter().all(|s| is_trace_id_hex(s["trace_id"].as_str().unwrap_or_default())),
        "trace ids are 32 lower-case hex digits: {slowest:?}"
    );
}

/// The endpoint stats a convention generation must not change: everything but the service
/// and the trace ids (which differ by construction).
fn convention_neutral(endpoint: &Value) -> Value {
    fn strip(value: &mut Value) {
        match value {
            Value::Object(map) => {
                map.remove("example_trace_id");
                map.remove("trace_id");
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut copy = endpoint.clone();
    if let Value::Object(map) = &mut copy {
        map.remove("service");
    }
    strip(&mut copy);
    copy
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_and_new_semantic_conventions_give_identical_endpoint_stats() {
    let app = Apmtop::start(&FAST_GRACE);
    let mut traces = Vec::new();
    for (service, conventions, seed) in
        [("legacy-svc", Conventions::Old, 120u64), ("modern-svc", Conventions::New, 130)]
    {
        let base = |offset: u64| {
            RequestTrace::new(seed + offset, "GET", "/accounts/{id}").service(service).conventions(conventions)
        };
        traces.push(
            base(0)
                .duration_ms(80)
                .depth(2)
                .connections(1)
                .query("SELECT * FROM accounts WHERE id = $1")
                .repeat("SELECT * FROM transactions WHERE id = $1", 6),
        );
        traces.push(base(1).duration_ms(150).status_code(500).repeat("SELECT * FROM audit WHERE id = $1", 2));
        traces.push(base(2).duration_ms(40).repeat("SELECT * FROM settings WHERE id = 1", 2));
    }
    export_ok(&app, Transport::Grpc, &batch(&traces)).await;

    let report = app.stop();
    let legacy = service_endpoint(&report, "legacy-svc", "GET", "/accounts/{id}");
    let modern = service_endpoint(&report, "modern-svc", "GET", "/accounts/{id}");
    assert_eq!(uint(modern, "requests"), 3);
    assert_eq!(uint(modern, "errors"), 1, "status 500 read from http.response.status_code");
    assert_eq!(uint(modern, "connection_spans"), 1);
    assert_eq!(n_plus_one(modern).len(), 1, "N+1 read from db.query.text: {modern}");
    assert_eq!(duplicates(modern).len(), 1, "duplicate read from db.query.text: {modern}");
    assert_eq!(n_plus_one(modern)[0]["db_system"], "postgresql");
    assert_eq!(
        convention_neutral(legacy),
        convention_neutral(modern),
        "old-convention stats:\n{legacy:#}\nstable-convention stats:\n{modern:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_and_new_convention_requests_to_one_endpoint_are_merged() {
    let app = Apmtop::start(&FAST_GRACE);
    let traces: Vec<RequestTrace> = [(140u64, Conventions::Old), (141, Conventions::New)]
        .into_iter()
        .map(|(seed, conventions)| {
            RequestTrace::new(seed, "GET", "/baskets/{id}")
                .conventions(conventions)
                .repeat("SELECT * FROM basket_items WHERE id = $1", 5)
        })
        .collect();
    export_ok(&app, Transport::Grpc, &batch(&traces)).await;

    let report = app.stop();
    assert_eq!(endpoint_names(&report), vec!["GET /baskets/{id}".to_string()]);
    let baskets = endpoint(&report, "GET", "/baskets/{id}");
    assert_eq!(uint(baskets, "requests"), 2);
    assert_all_stats_count(baskets, "queries_per_request", 5);
    let found = n_plus_one(baskets);
    assert_eq!(found.len(), 1, "{baskets}");
    assert_eq!(uint(&found[0], "requests_affected"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_are_keyed_by_the_resource_service_name() {
    let app = Apmtop::start(&FAST_GRACE);
    let traces = [
        RequestTrace::new(150, "GET", "/healthz").service("billing"),
        RequestTrace::new(151, "GET", "/healthz").service("catalog"),
        RequestTrace::new(152, "GET", "/healthz").service("catalog"),
    ];
    export_ok(&app, Transport::HttpProtobuf, &batch(&traces)).await;

    let report = app.stop();
    assert_eq!(uint(service_endpoint(&report, "billing", "GET", "/healthz"), "requests"), 1);
    assert_eq!(uint(service_endpoint(&report, "catalog", "GET", "/healthz"), "requests"), 2);
}

// ---------------------------------------------------------------------------------------------
// Report schema
// ---------------------------------------------------------------------------------------------

/// Checks a `{mean, p50, p90, p95, p99, max}` object.
fn assert_stats_object(object: &Value, field: &str) {
    for which in ["mean", "p50", "p90", "p95", "p99", "max"] {
        let value = stat(object, field, which);
        assert!(value.is_finite() && value >= 0.0, "{field}.{which} = {value}");
    }
}

/// Checks a field is a non-empty string.
fn assert_text(object: &Value, key: &str) {
    assert!(
        object[key].as_str().is_some_and(|s| !s.trim().is_empty()),
        "`{key}` is not a non-empty string in {object}"
    );
}

/// Checks `tables` is an array of strings.
fn assert_tables(object: &Value) {
    let tables = object["tables"].as_array().unwrap_or_else(|| panic!("tables is not an array in {object}"));
    assert!(tables.iter().all(Value::is_string), "tables are strings in {object}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_follows_schema_v1() {
    let app = Apmtop::start(&FAST_GRACE);
    let traces = [
        RequestTrace::new(160, "GET", "/schema/{id}")
            .connections(1)
            .repeat("SELECT * FROM users WHERE id = $1", 6)
            .repeat("SELECT * FROM t WHERE id = 7", 2),
        RequestTrace::new(161, "POST", "/schema").status_code(500).query("INSERT INTO t (id) VALUES ($1)"),
    ];
    export_ok(&app, Transport::Grpc, &batch(&traces)).await;

    let report = app.stop();
    assert_eq!(report["apmtop_report"], 1, "schema version");
    let generated = report["generated_at"].as_str().expect("generated_at string");
    assert!(is_rfc3339(generated), "generated_at {generated:?} is RFC 3339");
    for key in [
        "spans_received",
        "requests",
        "spans_dropped",
        "traces_incomplete",
        "spans_rejected",
        "spans_refused",
        "metric_exports",
        "log_exports",
    ] {
        total(&report, key);
    }
    assert_eq!(total(&report, "requests"), 2);
    assert_eq!(total(&report, "spans_dropped"), 0);
    assert_eq!(total(&report, "spans_refused"), 0);

    let endpoints = report["endpoints"].as_array().expect("endpoints array");
    assert_eq!(endpoints.len(), 2);
    for endpoint in endpoints {
        for key in ["service", "method", "route"] {
            assert_text(endpoint, key);
        }
        uint(endpoint, "requests");
        uint(endpoint, "errors");
        uint(endpoint, "connection_spans");
        for field in ["latency_ms", "queries_per_request", "db_time_ms"] {
            assert_stats_object(endpoint, field);
        }
        for finding in n_plus_one(endpoint) {
            for key in ["fingerprint", "statement", "db_system", "example_trace_id", "hint"] {
                assert_text(finding, key);
            }
            assert_tables(finding);
            uint(finding, "requests_affected");
            for which in ["p50", "max"] {
                assert!(finding["repeats"][which].is_number(), "repeats.{which} in {finding}");
            }
            assert!(finding["time_ms_total"].is_number(), "time_ms_total in {finding}");
        }
        for finding in duplicates(endpoint) {
            assert_text(finding, "fingerprint");
            assert_text(finding, "statement");
            uint(finding, "repeats_max");
            uint(finding, "requests_affected");
        }
        for slow in endpoint["slowest"].as_array().expect("slowest array") {
            assert!(is_trace_id_hex(slow["trace_id"].as_str().unwrap_or_default()), "{slow}");
            assert!(slow["duration_ms"].is_number(), "{slow}");
            uint(slow, "queries");
        }
    }
    let schema = endpoint(&report, "GET", "/schema/{id}");
    assert_eq!(n_plus_one(schema).len(), 1, "{schema}");
    assert_eq!(duplicates(schema).len(), 1, "{schema}");

    let queries = report["queries"].as_array().expect("queries array");
    assert!(queries.len() >= 3, "three query shapes: {queries:?}");
    for query in queries {
        assert_text(query, "fingerprint");
        assert_text(query, "db_system");
        assert_tables(query);
        uint(query, "calls");
        assert_stats_object(query, "latency_ms");
        assert!(query["time_ms_total"].is_number(), "{query}");
        let names = query["endpoints"].as_array().expect("query endpoints array");
        assert!(!names.is_empty(), "{query}");
        for name in names {
            let name = name.as_str().unwrap_or_default();
            let known: HashSet<String> = endpoint_names(&report).into_iter().collect();
            assert!(known.contains(name), "query endpoint {name:?} is `METHOD route` of an endpoint");
        }
    }

    for entry in report["audit"].as_array().expect("audit array") {
        for key in ["service", "problem", "fix"] {
            assert_text(entry, key);
        }
    }
}
