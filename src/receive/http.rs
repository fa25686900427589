//! OTLP/HTTP: `POST /v1/traces` (protobuf or JSON, identity, gzip or deflate), and `/v1/metrics`
//! and `/v1/logs`, which are counted and answered with success.
//!
//! Answers follow the OTLP/HTTP spec: 200 with an `ExportTraceServiceResponse` in the request's
//! encoding; 400 with a `google.rpc.Status` body for undecodable data; 413 over the size limit
//! (checked again after decompression, against zip bombs); 415 for an unknown content type or
//! encoding; 503 with `Retry-After` when the pipeline is full.

use std::io::Read;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use http_body_util::BodyExt;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;

use super::{Accepted, Ingest, MAX_REQUEST_BYTES, RETRY_AFTER, Refusal, decode};
use crate::model::{Compression, Protocol, Transport};
use crate::stats::Stats;

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

/// google.rpc.Status codes used in error bodies.
const RPC_INVALID_ARGUMENT: i32 = 3;
const RPC_RESOURCE_EXHAUSTED: i32 = 8;
const RPC_UNAVAILABLE: i32 = 14;

/// The OTLP/HTTP routes.
pub fn routes() -> Router<Ingest> {
    Router::new()
        .route("/v1/traces", post(export_traces))
        .route("/v1/metrics", post(export_metrics))
        .route("/v1/logs", post(export_logs))
}

/// The other protobuf media type some senders use; answered in kind.
const PROTOBUF_ALT: &str = "application/protobuf";

/// An over-limit body is still read (and thrown away) up to this size, so that the client gets
/// the 413 rather than a broken pipe, which exporters would retry.
const DRAIN_LIMIT: usize = 4 * MAX_REQUEST_BYTES;

/// Requests no route matched: OTLP/HTTP under a path prefix, unknown gRPC methods, or 404.
pub async fn fallback(
    State(ingest): State<Ingest>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let is_grpc = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if is_grpc {
        let status = tonic::Status::unimplemented(format!(
            "apmtop serves the OTLP trace, metrics and logs services, not {}",
            uri.path()
        ));
        return status.into_http::<Body>().into_response();
    }
    let path = uri.path().trim_end_matches('/');
    let signal = ["/v1/traces", "/v1/metrics", "/v1/logs"].into_iter().find(|suffix| path.ends_with(suffix));
    match (signal, method) {
        (Some(suffix), Method::POST) => match suffix {
            "/v1/traces" => export_traces(State(ingest), headers, body).await,
            "/v1/metrics" => export_metrics(State(ingest), headers, body).await,
            _ => export_logs(State(ingest), headers, body).await,
        },
        (Some(_), _) => StatusCode::METHOD_NOT_ALLOWED.into_response(),
        (None, _) => {
            (StatusCode::NOT_FOUND, "apmtop receives OTLP: POST /v1/traces, /v1/metrics or /v1/logs, or OTLP/gRPC\n")
                .into_response()
        }
    }
}

/// The encoding of a request body, which is also the encoding of its answer (the spec asks for
/// the same `Content-Type` back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Protobuf { media_type: &'static str },
    Json,
}

impl Format {
    const PROTOBUF: Format = Format::Protobuf { media_type: PROTOBUF };

    fn transport(self) -> Transport {
        match self {
            Format::Protobuf { .. } => Transport::HttpProtobuf,
            Format::Json => Transport::HttpJson,
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Protobuf { media_type } => media_type,
            Format::Json => JSON,
        }
    }
}

/// `google.rpc.Status`, the body of every OTLP/HTTP error answer.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// A failed export, ready to become an HTTP answer.
#[derive(Debug)]
struct Failure {
    status: StatusCode,
    rpc_code: i32,
    message: String,
    retry_after: bool,
}

impl Failure {
    fn bad_request(message: String) -> Failure {
        Failure { status: StatusCode::BAD_REQUEST, rpc_code: RPC_INVALID_ARGUMENT, message, retry_after: false }
    }

    fn too_large() -> Failure {
        Failure {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            rpc_code: RPC_RESOURCE_EXHAUSTED,
            message: format!("export larger than the {} MiB limit", MAX_REQUEST_BYTES >> 20),
            retry_after: false,
        }
    }

    fn unsupported(message: String) -> Failure {
        Failure {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            rpc_code: RPC_INVALID_ARGUMENT,
            message,
            retry_after: false,
        }
    }

    fn refused(refusal: Refusal) -> Failure {
        let message = match refusal {
            Refusal::Full => "apmtop is busy: its pipeline is full; retry later",
            Refusal::ShuttingDown => "apmtop is shutting down",
        };
        Failure {
            status: StatusCode::SERVICE_UNAVAILABLE,
            rpc_code: RPC_UNAVAILABLE,
            message: message.to_string(),
            retry_after: true,
        }
    }

    fn into_response(self, format: Format) -> Response {
        let body = match format {
            Format::Protobuf { .. } => RpcStatus { code: self.rpc_code, message: self.message }.encode_to_vec(),
            Format::Json => {
                serde_json::json!({ "code": self.rpc_code, "message": self.message }).to_string().into_bytes()
            }
        };
        let mut response = (self.status, [(header::CONTENT_TYPE, format.content_type())], body).into_response();
        if self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER.as_secs()));
        }
        response
    }
}

async fn export_traces(State(ingest): State<Ingest>, headers: HeaderMap, body: Body) -> Response {
    let format = match request_format(&headers) {
        Ok(format) => format,
        Err(failure) => return malformed(&ingest, failure, Format::PROTOBUF),
    };
    match receive_traces(&ingest, &headers, body, format).await {
        Ok(accepted) => success(format, accepted),
        Err(failure) => {
            if failure.retry_after {
                failure.into_response(format)
            } else {
                malformed(&ingest, failure, format)
            }
        }
    }
}

/// Bodies larger than this are decompressed and decoded on the blocking pool, so that one big
/// export does not stall the receivers' async workers.
const INLINE_DECODE_MAX: usize = 256 * 1024;

async fn receive_traces(ingest: &Ingest, headers: &HeaderMap, body: Body, format: Format) -> Result<Accepted, Failure> {
    let raw = read_limited(headers, body).await?;
    let arrival = super::unix_now_ns();
    let encoding = content_encoding(headers)?;
    let protocol = Protocol { transport: format.transport(), compression: encoding.compression() };
    let kept = raw.clone();
    let decoded = if raw.len() <= INLINE_DECODE_MAX {
        decode_traces(raw, encoding, format)
    } else {
        tokio::task::spawn_blocking(move || decode_traces(raw, encoding, format))
            .await
            .map_err(|e| Failure::bad_request(format!("the export could not be decoded: {e}")))
            .and_then(|decoded| decoded)
    };
    let mut export = decoded.inspect_err(|_| ingest.record(arrival, protocol, kept.clone()))?;
    export.batch.origin.protocol = Some(protocol);
    let accepted = ingest.submit(export).await.map_err(Failure::refused)?;
    ingest.record(arrival, protocol, kept);
    Ok(accepted)
}

/// Decompresses, decodes and converts one trace export.
fn decode_traces(raw: Bytes, encoding: Encoding, format: Format) -> Result<decode::DecodedExport, Failure> {
    Ok(decode::convert_export(parse_traces(raw, encoding, format)?))
}

/// Decompresses and decodes one trace export.
fn parse_traces(raw: Bytes, encoding: Encoding, format: Format) -> Result<ExportTraceServiceRequest, Failure> {
    let data = decompress(raw, encoding)?;
    match format {
        Format::Protobuf { .. } => ExportTraceServiceRequest::decode(data)
            .map_err(|e| Failure::bad_request(format!("not a valid OTLP ExportTraceServiceRequest: {e}"))),
        Format::Json => serde_json::from_slice::<ExportTraceServiceRequest>(&data)
            .map_err(|e| Failure::bad_request(format!("not a valid OTLP/JSON ExportTraceServiceRequest: {e}"))),
    }
}

/// A recorded HTTP body decoded as the receiver would: decompressed, then protobuf or JSON.
pub fn parse_body(
    raw: Bytes,
    compression: Compression,
    transport: Transport,
) -> Result<ExportTraceServiceRequest, String> {
    let encoding = match compression {
        Compression::None => Encoding::Identity,
        Compression::Gzip => Encoding::Gzip,
        Compression::Deflate => Encoding::Deflate,
    };
    let format = if transport == Transport::HttpJson { Format::Json } else { Format::PROTOBUF };
    parse_traces(raw, encoding, format).map_err(|failure| failure.message)
}

fn malformed(ingest: &Ingest, failure: Failure, format: Format) -> Response {
    Stats::add(&ingest.stats().exports_malformed, 1);
    tracing::debug!(status = %failure.status, message = %failure.message, "export refused");
    failure.into_response(format)
}

fn success(format: Format, accepted: Accepted) -> Response {
    let body = match (format, accepted.message) {
        (Format::Protobuf { .. }, message) => {
            let partial_success = message.map(|error_message| ExportTracePartialSuccess {
                rejected_spans: accepted.rejected as i64,
                error_message,
            });
            ExportTraceServiceResponse { partial_success }.encode_to_vec()
        }
        // Hand-written: proto3 JSON puts int64 in strings, and full success is `{}`.
        (Format::Json, None) => b"{}".to_vec(),
        (Format::Json, Some(message)) => serde_json::json!({
            "partialSuccess": { "rejectedSpans": accepted.rejected.to_string(), "errorMessage": message }
        })
        .to_string()
        .into_bytes(),
    };
    (StatusCode::OK, [(header::CONTENT_TYPE, format.content_type())], body).into_response()
}

async fn export_metrics(State(ingest): State<Ingest>, headers: HeaderMap, body: Body) -> Response {
    discard(&ingest, &ingest.stats().metric_exports, &headers, body).await
}

async fn export_logs(State(ingest): State<Ingest>, headers: HeaderMap, body: Body) -> Response {
    discard(&ingest, &ingest.stats().log_exports, &headers, body).await
}

/// Metrics and logs: read (to honour the size limit), count, answer full success.
async fn discard(ingest: &Ingest, counter: &std::sync::atomic::AtomicU64, headers: &HeaderMap, body: Body) -> Response {
    let format = match request_format(headers) {
        Ok(format) => format,
        Err(failure) => return malformed(ingest, failure, Format::PROTOBUF),
    };
    if let Err(failure) = read_limited(headers, body).await {
        return malformed(ingest, failure, format);
    }
    Stats::add(counter, 1);
    let body: &'static [u8] = match format {
        Format::Protobuf { .. } => b"",
        Format::Json => b"{}",
    };
    (StatusCode::OK, [(header::CONTENT_TYPE, format.content_type())], body).into_response()
}

/// Media type from `Content-Type`, ignoring parameters such as `charset`. No header: protobuf.
fn request_format(headers: &HeaderMap) -> Result<Format, Failure> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(Format::PROTOBUF);
    };
    let media = value.to_str().unwrap_or_default().split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match media.as_str() {
        PROTOBUF => Ok(Format::PROTOBUF),
        PROTOBUF_ALT => Ok(Format::Protobuf { media_type: PROTOBUF_ALT }),
        JSON => Ok(Format::Json),
        other => Err(Failure::unsupported(format!(
            "unsupported Content-Type {other:?}: send application/x-protobuf or application/json"
        ))),
    }
}

/// The body as sent, at most [`MAX_REQUEST_BYTES`]. An over-limit body is drained (up to
/// [`DRAIN_LIMIT`]) without being kept, then refused with 413.
async fn read_limited(headers: &HeaderMap, mut body: Body) -> Result<Bytes, Failure> {
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    let mut too_large = declared.is_some_and(|len| len > MAX_REQUEST_BYTES);
    let mut data = Vec::with_capacity(if too_large { 0 } else { declared.unwrap_or(0) });
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Failure::bad_request(format!("could not read the request body: {e}")))?;
        let Ok(chunk) = frame.into_data() else { continue };
        seen = seen.saturating_add(chunk.len());
        if seen > MAX_REQUEST_BYTES && !too_large {
            too_large = true;
            data = Vec::new();
        }
        if too_large {
            if seen > DRAIN_LIMIT {
                break;
            }
            continue;
        }
        data.extend_from_slice(&chunk);
    }
    if too_large {
        return Err(Failure::too_large());
    }
    Ok(Bytes::from(data))
}

/// A request body's compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Identity,
    Gzip,
    Deflate,
}

impl Encoding {
    fn compression(self) -> Compression {
        match self {
            Encoding::Identity => Compression::None,
            Encoding::Gzip => Compression::Gzip,
            Encoding::Deflate => Compression::Deflate,
        }
    }
}

/// The `Content-Encoding` of a request.
fn content_encoding(headers: &HeaderMap) -> Result<Encoding, Failure> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
        .unwrap_or_default();
    match encoding.as_str() {
        "" | "identity" => Ok(Encoding::Identity),
        "gzip" | "x-gzip" => Ok(Encoding::Gzip),
        "deflate" => Ok(Encoding::Deflate),
        other => Err(Failure::unsupported(format!(
            "unsupported Content-Encoding {other:?}: send gzip, deflate or no encoding"
        ))),
    }
}

/// The body decompressed, at most [`MAX_REQUEST_BYTES`].
#[allow(clippy::disallowed_methods)] // the decoders go straight into `inflate`, which caps them
fn decompress(raw: Bytes, encoding: Encoding) -> Result<Bytes, Failure> {
    match encoding {
        Encoding::Identity => Ok(raw),
        Encoding::Gzip => inflate(flate2::read::GzDecoder::new(&raw[..]), "gzip"),
        Encoding::Deflate => inflate(flate2::read::ZlibDecoder::new(&raw[..]), "deflate"),
    }
}

/// Decompresses up to the limit; one byte more means the export is too large.
#[allow(clippy::disallowed_methods)] // read_to_end behind take(limit + 1): bounded
fn inflate(decoder: impl Read, name: &str) -> Result<Bytes, Failure> {
    let mut out = Vec::new();
    decoder
        .take(MAX_REQUEST_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| Failure::bad_request(format!("body is not valid {name}: {e}")))?;
    if out.len() > MAX_REQUEST_BYTES {
        return Err(Failure::too_large());
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_body_decodes_or_fails_cleanly(
            bytes in proptest::collection::vec(any::<u8>(), 0..2048),
            encoding in prop_oneof![Just(Encoding::Identity), Just(Encoding::Gzip), Just(Encoding::Deflate)],
            json in any::<bool>(),
        ) {
            let format = if json { Format::Json } else { Format::PROTOBUF };
            let _ = decode_traces(Bytes::from(bytes), encoding, format);
        }
    }

    #[test]
    fn protobuf_media_type_is_echoed() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/protobuf"));
        let format = request_format(&headers).expect("known type");
        assert_eq!(format.content_type(), "application/protobuf");
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
        assert_eq!(request_format(&headers).expect("known type"), Format::Json);
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert_eq!(request_format(&headers).expect_err("unknown").status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
}
