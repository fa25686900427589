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

/// A trace id as 32 lower-case hex digits, on the stack: what reports and kept examples store,
/// without a `String` per request.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TraceHex([u8; 32]);

impl TraceHex {
    /// The digits.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl TraceId {
    /// Its 32 lower-case hex digits (as `Display` writes them), without allocating.
    pub fn hex(&self) -> TraceHex {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 32];
        for (i, byte) in self.0.iter().enumerate() {
            out[2 * i] = DIGITS[usize::from(byte >> 4)];
            out[2 * i + 1] = DIGITS[usize::from(byte & 0xf)];
        }
        TraceHex(out)
    }

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
        f.write_str(self.hex().as_str())
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
    /// `http.request.body.size` / `http.request_content_length`.
    pub request_size: Option<u64>,
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
    /// `db.response.returned_rows`: rows the query returned, when the instrumentation says.
    pub returned_rows: Option<u64>,
}

impl DbAttrs {
    /// A cache client span (Redis, Memcached): its "statement" is a command, not SQL.
    pub fn is_cache(&self) -> bool {
        matches!(&*self.system, "redis" | "memcached" | "valkey")
    }
}

/// Where in the application's code a span was made (`code.*` attributes), when the
/// instrumentation records it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodeAttrs {
    /// `code.function.name` / `code.function` (with `code.namespace` in front when given).
    pub function: Option<Box<str>>,
    /// `code.file.path` / `code.filepath`.
    pub file_path: Option<Box<str>>,
    /// `code.line.number` / `code.lineno`.
    pub line: Option<u32>,
    /// `code.stacktrace`, when no function or file is given.
    pub stacktrace: Option<Box<str>>,
}

impl CodeAttrs {
    /// `path/to/file.py:42 in view_name`, or what part of it is known; `None` when nothing is.
    pub fn location(&self) -> Option<String> {
        let place = match (&self.file_path, self.line) {
            (Some(path), Some(line)) => Some(format!("{path}:{line}")),
            (Some(path), None) => Some(path.to_string()),
            _ => None,
        };
        match (place, &self.function) {
            (Some(place), Some(function)) => Some(format!("{place} in {function}")),
            (Some(place), None) => Some(place),
            (None, Some(function)) => Some(function.to_string()),
            (None, None) => self.stacktrace.as_deref().and_then(top_frame).map(str::to_string),
        }
    }
}

/// The first line of a stack trace that names a source file (Java `at ...(File.java:12)`, Python
/// `File "x.py", line 3`, Node `at f (/app/x.js:1:2)`), trimmed.
fn top_frame(stacktrace: &str) -> Option<&str> {
    stacktrace
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("at ") || line.starts_with("File "))
        .or_else(|| stacktrace.lines().map(str::trim).find(|line| !line.is_empty()))
}

/// The kind of remote system an outgoing (CLIENT or PRODUCER) span talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CallProtocol {
    /// Not said (plain HTTP is recognized from the HTTP attributes).
    #[default]
    Unknown,
    /// `rpc.system` is set (gRPC, Connect, Thrift, ...).
    Rpc,
    /// `messaging.system` is set (Kafka, RabbitMQ, SQS, ...).
    Messaging,
}

/// What an outgoing call says about its peer, old and new convention names merged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallAttrs {
    /// RPC or messaging, when said.
    pub protocol: CallProtocol,
    /// `rpc.system(.name)` or `messaging.system`, lower case.
    pub system: Option<Box<str>>,
    /// `server.address` / `net.peer.name`.
    pub server_address: Option<Box<str>>,
    /// `server.port` / `net.peer.port`.
    pub server_port: Option<u16>,
    /// `rpc.service`, or `messaging.destination.name` / `messaging.destination`.
    pub target: Option<Box<str>>,
}

/// The rarer span facts, boxed together so that spans without them stay small.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpanExtra {
    /// Code location.
    pub code: Option<CodeAttrs>,
    /// Peer of an outgoing call.
    pub call: Option<CallAttrs>,
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
    /// Code location and outgoing-call peer, when any is present.
    pub extra: Option<Box<SpanExtra>>,
}

impl Span {
    /// Duration in nanoseconds.
    pub fn duration_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }

    /// A database span that carries statement text: a query (cache commands are not queries).
    pub fn is_query(&self) -> bool {
        self.db.as_ref().is_some_and(|db| db.statement.is_some() && !db.is_cache())
    }

    /// A Redis or Memcached client span.
    pub fn is_cache_call(&self) -> bool {
        self.db.as_ref().is_some_and(|db| db.is_cache())
    }

    /// Code attributes, when the span has them.
    pub fn code(&self) -> Option<&CodeAttrs> {
        self.extra.as_ref().and_then(|e| e.code.as_ref())
    }

    /// Outgoing-call peer attributes, when the span has them.
    pub fn call(&self) -> Option<&CallAttrs> {
        self.extra.as_ref().and_then(|e| e.call.as_ref())
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
        let extra = self.extra.as_ref().map_or(0, |e| {
            let code = e.code.as_ref().map_or(0, |c| len(&c.function) + len(&c.file_path) + len(&c.stacktrace));
            let call = e.call.as_ref().map_or(0, |c| len(&c.system) + len(&c.server_address) + len(&c.target));
            std::mem::size_of::<SpanExtra>() + code + call
        });
        std::mem::size_of::<Span>() + self.name.len() + http + db + extra
    }

    /// A database span without statement text (connect, pool checkout, ...): not a query.
    pub fn is_db_without_statement(&self) -> bool {
        self.db.as_ref().is_some_and(|db| db.statement.is_none() && !db.is_cache())
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
