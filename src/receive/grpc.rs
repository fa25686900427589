//! OTLP/gRPC: `TraceService/Export`, plus `MetricsService/Export` and `LogsService/Export`, which
//! are counted and answered with success so that apps exporting every signal log no errors.
//!
//! tonic handles framing, gzip/deflate and the size limit; a pass-through codec hands us the raw
//! message so that a malformed one is answered `INVALID_ARGUMENT` (tonic's own codec would say
//! `INTERNAL`). A message declared larger than the limit makes tonic answer `OUT_OF_RANGE`, which
//! OTLP clients retry forever; we turn it into the spec's non-retryable `RESOURCE_EXHAUSTED`.

use std::future::Future;
use std::pin::Pin;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::{Buf, BufMut, Bytes};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::server::{Grpc, UnaryService};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::{Ingest, MAX_REQUEST_BYTES, RETRY_AFTER, Refusal, decode};
use crate::model::{Compression, Protocol, Transport};
use crate::stats::Stats;

/// gRPC path of the trace export.
pub const TRACE_EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
/// gRPC path of the metrics export.
pub const METRICS_EXPORT_PATH: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
/// gRPC path of the logs export.
pub const LOGS_EXPORT_PATH: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

const GRPC_STATUS: &str = "grpc-status";
const GRPC_MESSAGE: &str = "grpc-message";

/// The gRPC routes.
pub fn routes() -> Router<Ingest> {
    Router::new()
        .route(TRACE_EXPORT_PATH, post(export_traces))
        .route(METRICS_EXPORT_PATH, post(export_metrics))
        .route(LOGS_EXPORT_PATH, post(export_logs))
}

/// A tonic server for one unary call: compression and the size limit configured.
fn server() -> Grpc<RawCodec> {
    Grpc::new(RawCodec)
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Deflate)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(MAX_REQUEST_BYTES)
}

async fn export_traces(State(ingest): State<Ingest>, request: Request) -> Response {
    let response = server().unary(TraceExport(ingest.clone()), request).await;
    otlp_status(response, &ingest)
}

async fn export_metrics(State(ingest): State<Ingest>, request: Request) -> Response {
    let response = server().unary(Discard(ingest.clone(), Signal::Metrics), request).await;
    otlp_status(response, &ingest)
}

async fn export_logs(State(ingest): State<Ingest>, request: Request) -> Response {
    let response = server().unary(Discard(ingest.clone(), Signal::Logs), request).await;
    otlp_status(response, &ingest)
}

/// Maps tonic's own answers to the OTLP ones: `OUT_OF_RANGE` (message longer than the limit)
/// becomes `RESOURCE_EXHAUSTED`, and `INTERNAL` (tonic's answer to a frame that does not
/// decompress; our handlers never return it) becomes `INVALID_ARGUMENT`: bad data from the client.
fn otlp_status(mut response: axum::http::Response<tonic::body::Body>, ingest: &Ingest) -> Response {
    let headers = response.headers_mut();
    let status = headers.get(GRPC_STATUS).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<i32>().ok());
    match status.map(Code::from_i32) {
        Some(Code::OutOfRange) => {
            Stats::add(&ingest.stats().exports_malformed, 1);
            headers.insert(GRPC_STATUS, HeaderValue::from(Code::ResourceExhausted as i32));
            let message = format!("export larger than the {} MiB limit", MAX_REQUEST_BYTES >> 20);
            if let Ok(value) = HeaderValue::from_str(&message) {
                headers.insert(GRPC_MESSAGE, value);
            }
        }
        Some(Code::Internal) => {
            Stats::add(&ingest.stats().exports_malformed, 1);
            headers.insert(GRPC_STATUS, HeaderValue::from(Code::InvalidArgument as i32));
        }
        Some(Code::ResourceExhausted) => Stats::add(&ingest.stats().exports_malformed, 1),
        _ => {}
    }
    response.into_response()
}

type CallFuture = Pin<Box<dyn Future<Output = Result<tonic::Response<Bytes>, Status>> + Send>>;

/// The trace export call: decode, convert, hand to the pipeline, answer.
struct TraceExport(Ingest);

impl UnaryService<Bytes> for TraceExport {
    type Response = Bytes;
    type Future = CallFuture;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let ingest = self.0.clone();
        Box::pin(async move {
            let arrival = super::unix_now_ns();
            let protocol = Protocol { transport: Transport::Grpc, compression: compression_of(request.metadata()) };
            let payload = request.into_inner();
            let message = match parse_message(payload.clone()) {
                Ok(message) => message,
                Err(error) => {
                    Stats::add(&ingest.stats().exports_malformed, 1);
                    ingest.record(arrival, protocol, payload);
                    return Err(Status::invalid_argument(error));
                }
            };
            let mut export = decode::convert_export(message);
            export.batch.origin.protocol = Some(protocol);
            match ingest.submit(export).await {
                Ok(accepted) => {
                    ingest.record(arrival, protocol, payload);
                    let partial_success = accepted.message.map(|error_message| ExportTracePartialSuccess {
                        rejected_spans: accepted.rejected as i64,
                        error_message,
                    });
                    let response = ExportTraceServiceResponse { partial_success };
                    Ok(tonic::Response::new(Bytes::from(response.encode_to_vec())))
                }
                Err(refusal) => Err(retryable(refusal)),
            }
        })
    }
}

/// Decodes a trace export message.
pub fn parse_message(payload: Bytes) -> Result<ExportTraceServiceRequest, String> {
    ExportTraceServiceRequest::decode(payload)
        .map_err(|error| format!("not a valid OTLP ExportTraceServiceRequest: {error}"))
}

/// The message compression the sender used (`grpc-encoding`).
fn compression_of(metadata: &tonic::metadata::MetadataMap) -> Compression {
    match metadata.get("grpc-encoding").and_then(|v| v.to_str().ok()) {
        Some("gzip") => Compression::Gzip,
        Some("deflate") => Compression::Deflate,
        _ => Compression::None,
    }
}

/// `UNAVAILABLE` with a `RetryInfo` detail: the OTLP throttling answer.
fn retryable(refusal: Refusal) -> Status {
    let message = match refusal {
        Refusal::Full => "apmtop is busy: its pipeline is full; retry later",
        Refusal::ShuttingDown => "apmtop is shutting down",
    };
    Status::with_error_details(Code::Unavailable, message, ErrorDetails::with_retry_info(Some(RETRY_AFTER)))
}

#[derive(Clone, Copy)]
enum Signal {
    Metrics,
    Logs,
}

/// Metrics and logs: counted and answered with an empty (full success) response.
struct Discard(Ingest, Signal);

impl UnaryService<Bytes> for Discard {
    type Response = Bytes;
    type Future = CallFuture;

    fn call(&mut self, _request: tonic::Request<Bytes>) -> Self::Future {
        let counter = match self.1 {
            Signal::Metrics => &self.0.stats().metric_exports,
            Signal::Logs => &self.0.stats().log_exports,
        };
        Stats::add(counter, 1);
        Box::pin(async { Ok(tonic::Response::new(Bytes::new())) })
    }
}

/// A codec that passes message bytes through untouched.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}
