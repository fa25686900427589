//! Domain types shared by the stages: ids, the compact [`Span`] the receivers produce, and the
//! assembled [`Request`].
//!
//! A `Span` keeps only what the analysis needs (ids, timing, kind, status and a handful of HTTP and
//! DB attributes); everything else in the OTLP message is dropped at decode time so that the hot
//! path moves small values.

use std::fmt;
use std::sync::Arc;

/// A 16-byte trace id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TraceId(pub [u8; 16]);

/// An 8-byte span id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SpanId(pub [u8; 8]);

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

impl TraceId {
    /// Parses 32 hex digits (as [`TraceId`]'s `Display` writes them).
    pub fn from_hex(hex: &str) -> Option<TraceId> {
        let bytes = hex.as_bytes();
        if bytes.len() != 32 || !bytes.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        let mut id = [0u8; 16];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let text = std::str::from_utf8(pair).ok()?;
            id[i] = u8::from_str_radix(text, 16).ok()?;
        }
        Some(TraceId(id))
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({self})")
    }
}

/// The OTLP span kind (`UNSPECIFIED` is read as `INTERNAL`, as the spec allows).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpanKind {
    /// In-process work.
    Internal,
    /// The handling of an incoming request.
    Server,
    /// An outgoing call (HTTP, database, ...).
    Client,
    /// A message sent to a queue.
    Producer,
    /// A message taken from a queue.
    Consumer,
}

impl SpanKind {
    /// Maps the OTLP enum value; unknown values count as `Internal`.
    pub fn from_otlp(value: i32) -> SpanKind {
        match value {
            2 => SpanKind::Server,
            3 => SpanKind::Client,
            4 => SpanKind::Producer,
            5 => SpanKind::Consumer,
            _ => SpanKind::Internal,
        }
    }
}

/// What the resource says about the process that sent a span; shared by all its spans.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Service {
    /// `service.name`, or `unknown_service` when the resource has none.
    pub name: Arc<str>,
    /// `telemetry.sdk.language` (`python`, `nodejs`, `java`, ...), used to word fix hints.
    pub language: Option<Arc<str>>,
}

/// HTTP attributes of a span, old and new convention names already merged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpAttrs {
    /// `http.request.method` / `http.method` (`_OTHER` replaced by the original method).
    pub method: Option<Box<str>>,
    /// `http.route`, the low-cardinality route template.
    pub route: Option<Box<str>>,
    /// `url.path` / `http.target` (the query string is cut off later).
    pub target: Option<Box<str>>,
    /// `url.full` / `http.url`, mostly on CLIENT spans.
    pub url: Option<Box<str>>,
    /// `http.response.status_code` / `http.status_code`.
    pub status_code: Option<u16>,
    /// `http.response.body.size` / `http.response_content_length`.
    pub response_size: Option<u64>,
}

/// Database attributes of a span, old and new convention names already merged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DbAttrs {
    /// `db.system.name` / `db.system`, lower case; empty when unknown.
    pub system: Arc<str>,
    /// `db.query.text` / `db.statement`; a DB span without it is not a query.
    pub statement: Option<Box<str>>,
    /// `db.operation.name` / `db.operation`.
    pub operation: Option<Box<str>>,
    /// Bound parameter values when the instrumentation captured them (`db.statement.parameters`,
    /// `db.query.parameter.*`), joined into one string; used to tell duplicates from N+1.
    pub parameters: Option<Box<str>>,
}

/// A span as the pipeline keeps it.
#[derive(Debug, Clone)]
pub struct Span {
    /// Trace this span belongs to.
    pub trace_id: TraceId,
    /// This span's id.
    pub span_id: SpanId,
    /// Parent span id; `None` for a root.
    pub parent_span_id: Option<SpanId>,
    /// The SDK marked the parent as remote (flags bits 8 and 9): the local entry point of a process.
    pub parent_is_remote: bool,
    /// The sending process.
    pub service: Arc<Service>,
    /// Span name.
    pub name: Box<str>,
    /// Span kind.
    pub kind: SpanKind,
    /// Start, unix nanoseconds.
    pub start_ns: u64,
    /// End, unix nanoseconds (never before `start_ns`).
    pub end_ns: u64,
    /// Status code `ERROR`.
    pub is_error: bool,
    /// HTTP attributes, when any are present.
    pub http: Option<Box<HttpAttrs>>,
    /// DB attributes, when the span is a database span.
    pub db: Option<Box<DbAttrs>>,
}

impl Span {
    /// Duration in nanoseconds.
    pub fn duration_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }

    /// A database span that carries statement text: a query.
    pub fn is_query(&self) -> bool {
        self.db.as_ref().is_some_and(|db| db.statement.is_some())
    }

    /// Approximate memory held by this span, for the pipeline's memory bounds.
    pub fn approx_bytes(&self) -> usize {
        fn len(text: &Option<Box<str>>) -> usize {
            text.as_ref().map_or(0, |t| t.len())
        }
        let http = self.http.as_ref().map_or(0, |h| {
            std::mem::size_of::<HttpAttrs>() + len(&h.method) + len(&h.route) + len(&h.target) + len(&h.url)
        });
        let db = self
            .db
            .as_ref()
            .map_or(0, |d| std::mem::size_of::<DbAttrs>() + len(&d.statement) + len(&d.operation) + len(&d.parameters));
        std::mem::size_of::<Span>() + self.name.len() + http + db
    }

    /// A database span without statement text (connect, pool checkout, ...): not a query.
    pub fn is_db_without_statement(&self) -> bool {
        self.db.as_ref().is_some_and(|db| db.statement.is_none())
    }
}

/// A batch of spans decoded from one export call, handed from a receiver to the aggregator.
#[derive(Debug, Default)]
pub struct SpanBatch {
    /// The valid spans of the export call.
    pub spans: Vec<Span>,
    /// How the export arrived and which SDKs sent it.
    pub origin: ExportOrigin,
}

/// The OTLP transport and encoding an export arrived with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub enum Transport {
    /// OTLP/gRPC.
    #[default]
    Grpc,
    /// OTLP/HTTP with a protobuf body.
    HttpProtobuf,
    /// OTLP/HTTP with a JSON body.
    HttpJson,
}

impl Transport {
    /// The name the SDKs use for it (`OTEL_EXPORTER_OTLP_PROTOCOL`).
    pub fn name(self) -> &'static str {
        match self {
            Transport::Grpc => "grpc",
            Transport::HttpProtobuf => "http/protobuf",
            Transport::HttpJson => "http/json",
        }
    }
}

/// The compression an export arrived with (gRPC message encoding or HTTP `Content-Encoding`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub enum Compression {
    /// Not compressed.
    #[default]
    None,
    /// gzip.
    Gzip,
    /// deflate (zlib).
    Deflate,
}

impl Compression {
    /// The name the SDKs use for it (`OTEL_EXPORTER_OTLP_COMPRESSION`).
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Deflate => "deflate",
        }
    }
}

/// How one export arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub struct Protocol {
    /// Transport and body encoding.
    pub transport: Transport,
    /// Compression on the wire.
    pub compression: Compression,
}

/// The SDK a service's resource names (`telemetry.sdk.name`, `telemetry.sdk.version`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SdkInfo {
    /// The service, the same `Arc` as its spans' `service.name`.
    pub service: Arc<str>,
    /// `telemetry.sdk.name` (`opentelemetry`), empty when absent.
    pub name: Arc<str>,
    /// `telemetry.sdk.version`, empty when absent.
    pub version: Arc<str>,
}

/// What an export says about itself as a whole: set by the receiver that took it.
#[derive(Clone, Debug, Default)]
pub struct ExportOrigin {
    /// Transport and compression; `None` when the batch did not come from a receiver.
    pub protocol: Option<Protocol>,
    /// One entry per resource of the export.
    pub sdks: Vec<SdkInfo>,
}

/// One request: a request root span and every span below it in its trace, at any depth, up to
/// (not including) the next request root.
#[derive(Debug, Clone)]
pub struct Request {
    /// The SERVER span (or local root) that defines the request.
    pub root: Span,
    /// All other spans of the request, in no particular order.
    pub spans: Vec<Span>,
}
