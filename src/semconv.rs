//! OpenTelemetry attribute keys we read, in both the old and the stable semantic conventions, and
//! the one place that folds an attribute list into [`HttpAttrs`] and [`DbAttrs`].
//!
//! When an instrumentation emits both generations (`OTEL_SEMCONV_STABILITY_OPT_IN=.../dup`), the
//! stable name wins.

use std::sync::Arc;

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};

use crate::model::{CallAttrs, CallProtocol, CodeAttrs, DbAttrs, HttpAttrs, SpanExtra};

/// Resource attribute: the service name.
pub const SERVICE_NAME: &str = "service.name";
/// Resource attribute: the SDK language.
pub const SDK_LANGUAGE: &str = "telemetry.sdk.language";
/// Resource attribute: the SDK name.
pub const SDK_NAME: &str = "telemetry.sdk.name";
/// Resource attribute: the SDK version.
pub const SDK_VERSION: &str = "telemetry.sdk.version";
/// Service name when the resource has none (as the SDKs name it).
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// DB system, stable name.
pub const DB_SYSTEM_NAME: &str = "db.system.name";
/// DB system, old name.
pub const DB_SYSTEM: &str = "db.system";
/// Query text, stable name.
pub const DB_QUERY_TEXT: &str = "db.query.text";
/// Query text, old name.
pub const DB_STATEMENT: &str = "db.statement";
/// Operation, stable name.
pub const DB_OPERATION_NAME: &str = "db.operation.name";
/// Operation, old name.
pub const DB_OPERATION: &str = "db.operation";
/// Captured parameters (Python dbapi with `capture_parameters`).
pub const DB_STATEMENT_PARAMETERS: &str = "db.statement.parameters";
/// Captured parameters, node-postgres enhanced reporting.
pub const DB_POSTGRESQL_PARAMETERS: &str = "db.postgresql.parameters";
/// Prefix of stable per-parameter attributes (`db.query.parameter.<key>`).
pub const DB_QUERY_PARAMETER_PREFIX: &str = "db.query.parameter.";

/// HTTP method, stable name.
pub const HTTP_REQUEST_METHOD: &str = "http.request.method";
/// HTTP method before normalization to `_OTHER`.
pub const HTTP_REQUEST_METHOD_ORIGINAL: &str = "http.request.method_original";
/// HTTP method, old name.
pub const HTTP_METHOD: &str = "http.method";
/// Route template (both generations).
pub const HTTP_ROUTE: &str = "http.route";
/// Status code, stable name.
pub const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";
/// Status code, old name.
pub const HTTP_STATUS_CODE: &str = "http.status_code";
/// Path, stable name.
pub const URL_PATH: &str = "url.path";
/// Path and query, old name.
pub const HTTP_TARGET: &str = "http.target";
/// Full URL, stable name.
pub const URL_FULL: &str = "url.full";
/// Full URL, old name.
pub const HTTP_URL: &str = "http.url";
/// Response body size, stable name.
pub const HTTP_RESPONSE_BODY_SIZE: &str = "http.response.body.size";
/// Response body size, old name.
pub const HTTP_RESPONSE_CONTENT_LENGTH: &str = "http.response_content_length";

/// Request body size, stable name.
pub const HTTP_REQUEST_BODY_SIZE: &str = "http.request.body.size";
/// Request body size, old name.
pub const HTTP_REQUEST_CONTENT_LENGTH: &str = "http.request_content_length";
/// Captured `Content-Length` response header (`OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE`),
/// as the spec spells it; used when no body size attribute is given.
pub const HTTP_RESPONSE_HEADER_CONTENT_LENGTH: &str = "http.response.header.content-length";
/// The same, as the Python instrumentations spell it.
pub const HTTP_RESPONSE_HEADER_CONTENT_LENGTH_PY: &str = "http.response.header.content_length";
/// Captured `Content-Length` request header, as the spec spells it.
pub const HTTP_REQUEST_HEADER_CONTENT_LENGTH: &str = "http.request.header.content-length";
/// The same, as the Python instrumentations spell it.
pub const HTTP_REQUEST_HEADER_CONTENT_LENGTH_PY: &str = "http.request.header.content_length";
/// Rows a query returned (stable conventions only).
pub const DB_RESPONSE_RETURNED_ROWS: &str = "db.response.returned_rows";

/// Function name, stable name (fully qualified).
pub const CODE_FUNCTION_NAME: &str = "code.function.name";
/// Function name, old name (paired with `code.namespace`).
pub const CODE_FUNCTION: &str = "code.function";
/// Namespace of `code.function`, old conventions.
pub const CODE_NAMESPACE: &str = "code.namespace";
/// Source file, stable name.
pub const CODE_FILE_PATH: &str = "code.file.path";
/// Source file, old name.
pub const CODE_FILEPATH: &str = "code.filepath";
/// Line number, stable name.
pub const CODE_LINE_NUMBER: &str = "code.line.number";
/// Line number, old name.
pub const CODE_LINENO: &str = "code.lineno";
/// Stack trace of where the span was started.
pub const CODE_STACKTRACE: &str = "code.stacktrace";

/// RPC system, stable name.
pub const RPC_SYSTEM_NAME: &str = "rpc.system.name";
/// RPC system, old name.
pub const RPC_SYSTEM: &str = "rpc.system";
/// RPC service.
pub const RPC_SERVICE: &str = "rpc.service";
/// Messaging system.
pub const MESSAGING_SYSTEM: &str = "messaging.system";
/// Messaging destination, stable name.
pub const MESSAGING_DESTINATION_NAME: &str = "messaging.destination.name";
/// Messaging destination, old name.
pub const MESSAGING_DESTINATION: &str = "messaging.destination";
/// Peer host, stable name.
pub const SERVER_ADDRESS: &str = "server.address";
/// Peer host, old name.
pub const NET_PEER_NAME: &str = "net.peer.name";
/// Peer port, stable name.
pub const SERVER_PORT: &str = "server.port";
/// Peer port, old name.
pub const NET_PEER_PORT: &str = "net.peer.port";

/// Which generation a value came from; the stable one wins.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Generation {
    Old,
    Stable,
}

/// A slot that keeps the stable value over the old one.
struct Slot<T> {
    value: Option<(Generation, T)>,
}

impl<T> Slot<T> {
    fn new() -> Self {
        Slot { value: None }
    }

    fn offer(&mut self, generation: Generation, value: Option<T>) {
        let Some(value) = value else { return };
        match &self.value {
            Some((held, _)) if *held > generation => {}
            _ => self.value = Some((generation, value)),
        }
    }

    fn take_with_generation(self) -> Option<(Generation, T)> {
        self.value
    }

    fn take(self) -> Option<T> {
        self.value.map(|(_, v)| v)
    }
}

/// The text of an attribute value: strings as they are, numbers and booleans printed.
pub fn value_text(value: Option<&mut AnyValue>) -> Option<String> {
    match value?.value.as_mut()? {
        any_value::Value::StringValue(s) => Some(std::mem::take(s)),
        any_value::Value::IntValue(i) => Some(i.to_string()),
        any_value::Value::DoubleValue(d) => Some(d.to_string()),
        any_value::Value::BoolValue(b) => Some(b.to_string()),
        any_value::Value::ArrayValue(array) => {
            let parts: Vec<String> = array.values.iter_mut().filter_map(|v| value_text(Some(v))).collect();
            Some(format!("[{}]", parts.join(", ")))
        }
        _ => None,
    }
}

fn value_int(value: Option<&AnyValue>) -> Option<i64> {
    match value?.value.as_ref()? {
        any_value::Value::IntValue(i) => Some(*i),
        any_value::Value::DoubleValue(d) if d.is_finite() => Some(*d as i64),
        any_value::Value::StringValue(s) => s.trim().parse().ok(),
        any_value::Value::ArrayValue(array) => value_int(array.values.first()),
        _ => None,
    }
}

fn boxed(text: Option<String>) -> Option<Box<str>> {
    text.filter(|t| !t.is_empty()).map(String::into_boxed_str)
}

/// Prefixes of the keys read past the common HTTP and DB ones (sizes, code location, peers).
fn has_extra_prefix(key: &str) -> bool {
    let bytes = key.as_bytes();
    match bytes.first() {
        Some(b'c') => key.starts_with("code."),
        Some(b'h') => key.starts_with("http.re"),
        Some(b'd') => key.starts_with("db.response."),
        Some(b'r') => key.starts_with("rpc."),
        Some(b'm') => key.starts_with("messaging."),
        Some(b's') => key.starts_with("server."),
        Some(b'n') => key.starts_with("net.peer."),
        _ => false,
    }
}

/// The HTTP and DB attributes found in one span's attribute list.
#[derive(Debug, Default)]
pub struct SpanAttrs {
    /// HTTP attributes, if any HTTP key was present.
    pub http: Option<Box<HttpAttrs>>,
    /// DB attributes, if the span is a DB span.
    pub db: Option<Box<DbAttrs>>,
    /// Code location and outgoing-call peer, if any key was present.
    pub extra: Option<Box<SpanExtra>>,
}

/// Folds a span's attributes into [`SpanAttrs`], taking the strings out of `attributes`.
///
/// `intern_system` turns a DB system name into a shared string (the caller keeps a small table).
pub fn read_span_attributes(
    attributes: &mut [KeyValue],
    intern_system: &mut impl FnMut(&str) -> Arc<str>,
) -> SpanAttrs {
    let mut method = Slot::new();
    let mut method_original = None;
    let mut route = None;
    let mut target = Slot::new();
    let mut url = Slot::new();
    let mut status = Slot::new();
    let mut size = Slot::new();
    let mut system = Slot::new();
    let mut statement = Slot::new();
    let mut operation = Slot::new();
    let mut parameters = Slot::new();
    let mut indexed_parameters: Vec<(String, String)> = Vec::new();
    let mut any_http = false;
    let mut request_size = Slot::new();
    let mut response_header_size = None;
    let mut request_header_size = None;
    let mut returned_rows = None;
    let mut function = Slot::new();
    let mut namespace = None;
    let mut file_path = Slot::new();
    let mut line = Slot::new();
    let mut stacktrace = None;
    let mut rpc_system = Slot::new();
    let mut messaging_system = None;
    let mut rpc_service = None;
    let mut destination = Slot::new();
    let mut server_address = Slot::new();
    let mut server_port = Slot::new();

    for kv in attributes.iter_mut() {
        let value = kv.value.as_mut();
        match kv.key.as_str() {
            DB_SYSTEM_NAME => system.offer(Generation::Stable, value_text(value)),
            DB_SYSTEM => system.offer(Generation::Old, value_text(value)),
            DB_QUERY_TEXT => statement.offer(Generation::Stable, value_text(value)),
            DB_STATEMENT => statement.offer(Generation::Old, value_text(value)),
            DB_OPERATION_NAME => operation.offer(Generation::Stable, value_text(value)),
            DB_OPERATION => operation.offer(Generation::Old, value_text(value)),
            DB_STATEMENT_PARAMETERS | DB_POSTGRESQL_PARAMETERS => parameters.offer(Generation::Old, value_text(value)),
            HTTP_REQUEST_METHOD => {
                any_http = true;
                method.offer(Generation::Stable, value_text(value))
            }
            HTTP_REQUEST_METHOD_ORIGINAL => method_original = value_text(value),
            HTTP_METHOD => {
                any_http = true;
                method.offer(Generation::Old, value_text(value))
            }
            HTTP_ROUTE => {
                any_http = true;
                route = value_text(value)
            }
            HTTP_RESPONSE_STATUS_CODE => {
                any_http = true;
                status.offer(Generation::Stable, value_int(value.as_deref()))
            }
            HTTP_STATUS_CODE => {
                any_http = true;
                status.offer(Generation::Old, value_int(value.as_deref()))
            }
            URL_PATH => target.offer(Generation::Stable, value_text(value)),
            HTTP_TARGET => target.offer(Generation::Old, value_text(value)),
            URL_FULL => url.offer(Generation::Stable, value_text(value)),
            HTTP_URL => url.offer(Generation::Old, value_text(value)),
            HTTP_RESPONSE_BODY_SIZE => size.offer(Generation::Stable, value_int(value.as_deref())),
            HTTP_RESPONSE_CONTENT_LENGTH => size.offer(Generation::Old, value_int(value.as_deref())),
            key if !has_extra_prefix(key) => {
                if let Some(name) = key.strip_prefix(DB_QUERY_PARAMETER_PREFIX)
                    && let Some(text) = value_text(value)
                {
                    indexed_parameters.push((name.to_string(), text));
                }
            }
            // The rarer keys, matched only past a cheap prefix test so that the common ones
            // and the noise every SDK sends pay almost nothing for them.
            HTTP_REQUEST_BODY_SIZE => request_size.offer(Generation::Stable, value_int(value.as_deref())),
            HTTP_REQUEST_CONTENT_LENGTH => request_size.offer(Generation::Old, value_int(value.as_deref())),
            HTTP_RESPONSE_HEADER_CONTENT_LENGTH | HTTP_RESPONSE_HEADER_CONTENT_LENGTH_PY => {
                response_header_size = value_int(value.as_deref())
            }
            HTTP_REQUEST_HEADER_CONTENT_LENGTH | HTTP_REQUEST_HEADER_CONTENT_LENGTH_PY => {
                request_header_size = value_int(value.as_deref())
            }
            DB_RESPONSE_RETURNED_ROWS => returned_rows = value_int(value.as_deref()),
            CODE_FUNCTION_NAME => function.offer(Generation::Stable, value_text(value)),
            CODE_FUNCTION => function.offer(Generation::Old, value_text(value)),
            CODE_NAMESPACE => namespace = value_text(value),
            CODE_FILE_PATH => file_path.offer(Generation::Stable, value_text(value)),
            CODE_FILEPATH => file_path.offer(Generation::Old, value_text(value)),
            CODE_LINE_NUMBER => line.offer(Generation::Stable, value_int(value.as_deref())),
            CODE_LINENO => line.offer(Generation::Old, value_int(value.as_deref())),
            CODE_STACKTRACE => stacktrace = value_text(value),
            RPC_SYSTEM_NAME => rpc_system.offer(Generation::Stable, value_text(value)),
            RPC_SYSTEM => rpc_system.offer(Generation::Old, value_text(value)),
            RPC_SERVICE => rpc_service = value_text(value),
            MESSAGING_SYSTEM => messaging_system = value_text(value),
            MESSAGING_DESTINATION_NAME => destination.offer(Generation::Stable, value_text(value)),
            MESSAGING_DESTINATION => destination.offer(Generation::Old, value_text(value)),
            SERVER_ADDRESS => server_address.offer(Generation::Stable, value_text(value)),
            NET_PEER_NAME => server_address.offer(Generation::Old, value_text(value)),
            SERVER_PORT => server_port.offer(Generation::Stable, value_int(value.as_deref())),
            NET_PEER_PORT => server_port.offer(Generation::Old, value_int(value.as_deref())),
            _ => {}
        }
    }

    if !indexed_parameters.is_empty() {
        indexed_parameters.sort();
        let joined = indexed_parameters.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ");
        parameters.offer(Generation::Stable, Some(joined));
    }

    let system = system.take();
    let statement = boxed(statement.take());
    let db = if system.is_some() || statement.is_some() {
        let system_name = system.unwrap_or_default().to_ascii_lowercase();
        Some(Box::new(DbAttrs {
            system: intern_system(&system_name),
            statement,
            operation: boxed(operation.take()),
            parameters: boxed(parameters.take()),
            returned_rows: returned_rows.and_then(|r| u64::try_from(r).ok()),
        }))
    } else {
        None
    };

    let target = target.take();
    let url = url.take();
    let http = if any_http || target.is_some() || url.is_some() {
        let mut method = method.take();
        if method.as_deref() == Some("_OTHER") {
            method = method_original.or(method);
        }
        Some(Box::new(HttpAttrs {
            method: boxed(method),
            route: boxed(route),
            target: boxed(target),
            url: boxed(url),
            status_code: status.take().and_then(|s| u16::try_from(s).ok()),
            response_size: size.take().or(response_header_size).and_then(|s| u64::try_from(s).ok()),
            request_size: request_size.take().or(request_header_size).and_then(|s| u64::try_from(s).ok()),
        }))
    } else {
        None
    };

    let code = {
        let function = match (namespace, function.take_with_generation()) {
            (Some(namespace), Some((Generation::Old, function))) if !namespace.is_empty() => {
                Some(format!("{namespace}.{function}"))
            }
            (_, function) => function.map(|(_, f)| f),
        };
        let code = CodeAttrs {
            function: boxed(function),
            file_path: boxed(file_path.take()),
            line: line.take().and_then(|l| u32::try_from(l).ok()),
            stacktrace: boxed(stacktrace),
        };
        (code != CodeAttrs::default()).then_some(code)
    };
    // Peer facts are kept for outgoing calls only: DB spans carry `server.address` too, and
    // most spans are DB spans.
    let call = if db.is_some() {
        None
    } else {
        let rpc_system = rpc_system.take();
        let (protocol, system) = match (rpc_system, messaging_system) {
            (Some(system), _) => (CallProtocol::Rpc, Some(system)),
            (None, Some(system)) => (CallProtocol::Messaging, Some(system)),
            (None, None) => (CallProtocol::Unknown, None),
        };
        let call = CallAttrs {
            protocol,
            system: boxed(system.map(|s| s.to_ascii_lowercase())),
            server_address: boxed(server_address.take()),
            server_port: server_port.take().and_then(|p| u16::try_from(p).ok()),
            target: boxed(rpc_service.or_else(|| destination.take())),
        };
        (call != CallAttrs::default()).then_some(call)
    };
    let extra = (code.is_some() || call.is_some()).then(|| Box::new(SpanExtra { code, call }));

    SpanAttrs { http, db, extra }
}

/// Span name prefixes of Go's `database/sql` instrumentation (XSAM/otelsql): `sql.conn.query`,
/// `sql.conn.exec`, `sql.stmt.query`, `sql.conn.prepare`, `sql.conn.begin_tx`, `sql.tx.commit`,
/// `sql.connector.connect`, ... It sets `db.system` only when the app passes it, so these names
/// are how its spans are known to be database spans.
const GO_DATABASE_SQL_PREFIXES: [&str; 4] = ["sql.conn.", "sql.stmt.", "sql.tx.", "sql.connector."];
/// otelsql's span for reading a result set: never a query.
const GO_DATABASE_SQL_ROWS: &str = "sql.rows";

/// Whether a span name is one of Go `database/sql` instrumentation's (otelsql).
pub fn is_go_database_sql_span(name: &str) -> bool {
    name == GO_DATABASE_SQL_ROWS || GO_DATABASE_SQL_PREFIXES.iter().any(|prefix| name.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue { key: key.to_string(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
    }

    fn s(key: &str, value: &str) -> KeyValue {
        kv(key, any_value::Value::StringValue(value.to_string()))
    }

    fn read(mut attrs: Vec<KeyValue>) -> SpanAttrs {
        read_span_attributes(&mut attrs, &mut |s: &str| Arc::from(s))
    }

    #[test]
    fn old_db_names_are_read() {
        let attrs = read(vec![s(DB_SYSTEM, "postgresql"), s(DB_STATEMENT, "SELECT 1"), s(DB_OPERATION, "SELECT")]);
        let db = attrs.db.expect("db attrs");
        assert_eq!(&*db.system, "postgresql");
        assert_eq!(db.statement.as_deref(), Some("SELECT 1"));
        assert_eq!(db.operation.as_deref(), Some("SELECT"));
        assert!(attrs.http.is_none());
    }

    #[test]
    fn stable_db_names_win_over_old_ones_in_either_order() {
        for order in [false, true] {
            let mut list = vec![s(DB_STATEMENT, "old"), s(DB_QUERY_TEXT, "new"), s(DB_SYSTEM_NAME, "MySQL")];
            if order {
                list.reverse();
            }
            let db = read(list).db.expect("db attrs");
            assert_eq!(db.statement.as_deref(), Some("new"));
            assert_eq!(&*db.system, "mysql");
        }
    }

    #[test]
    fn http_old_and_new_names_give_the_same_attrs() {
        let old = read(vec![
            s(HTTP_METHOD, "GET"),
            s(HTTP_ROUTE, "/users/{id}"),
            kv(HTTP_STATUS_CODE, any_value::Value::IntValue(404)),
            s(HTTP_TARGET, "/users/7?x=1"),
        ])
        .http
        .expect("http");
        let new = read(vec![
            s(HTTP_REQUEST_METHOD, "GET"),
            s(HTTP_ROUTE, "/users/{id}"),
            kv(HTTP_RESPONSE_STATUS_CODE, any_value::Value::IntValue(404)),
            s(URL_PATH, "/users/7?x=1"),
        ])
        .http
        .expect("http");
        assert_eq!(old, new);
        assert_eq!(new.status_code, Some(404));
    }

    #[test]
    fn status_code_as_string_is_accepted() {
        let http = read(vec![s(HTTP_STATUS_CODE, "500")]).http.expect("http");
        assert_eq!(http.status_code, Some(500));
    }

    #[test]
    fn other_method_is_replaced_by_the_original() {
        let http =
            read(vec![s(HTTP_REQUEST_METHOD, "_OTHER"), s(HTTP_REQUEST_METHOD_ORIGINAL, "PURGE")]).http.expect("http");
        assert_eq!(http.method.as_deref(), Some("PURGE"));
    }

    #[test]
    fn indexed_query_parameters_are_joined_in_key_order() {
        let db = read(vec![
            s(DB_QUERY_TEXT, "SELECT * FROM t WHERE a = $1 AND b = $2"),
            s("db.query.parameter.1", "y"),
            s("db.query.parameter.0", "x"),
        ])
        .db
        .expect("db");
        assert_eq!(db.parameters.as_deref(), Some("0=x, 1=y"));
    }

    #[test]
    fn go_database_sql_span_names_are_known() {
        for name in ["sql.conn.query", "sql.stmt.exec", "sql.conn.prepare", "sql.rows", "sql.tx.commit"] {
            assert!(is_go_database_sql_span(name), "{name}");
        }
        for name in ["sql", "sql.rowsx", "SELECT", "pg.query:SELECT", "mysql.sql.conn.query"] {
            assert!(!is_go_database_sql_span(name), "{name}");
        }
    }

    #[test]
    fn code_location_in_either_generation() {
        let old = read(vec![
            s(CODE_NAMESPACE, "shop.views"),
            s(CODE_FUNCTION, "search"),
            s(CODE_FILEPATH, "/app/shop/views.py"),
            kv(CODE_LINENO, any_value::Value::IntValue(42)),
        ]);
        let code = old.extra.and_then(|e| e.code).expect("code");
        assert_eq!(code.location().as_deref(), Some("/app/shop/views.py:42 in shop.views.search"));
        let new = read(vec![
            s(CODE_FUNCTION_NAME, "com.shop.BookController.search"),
            s(CODE_FILE_PATH, "BookController.java"),
            kv(CODE_LINE_NUMBER, any_value::Value::IntValue(7)),
        ]);
        let code = new.extra.and_then(|e| e.code).expect("code");
        assert_eq!(code.location().as_deref(), Some("BookController.java:7 in com.shop.BookController.search"));
        let trace = read(vec![s(CODE_STACKTRACE, "java.lang.Thread.run\n  at com.shop.A.b(A.java:12)")]);
        assert!(trace.extra.and_then(|e| e.code).and_then(|c| c.location()).is_some());
    }

    #[test]
    fn outgoing_call_peers_and_sizes() {
        let grpc = read(vec![
            s(RPC_SYSTEM, "grpc"),
            s(RPC_SERVICE, "shop.Inventory"),
            s(NET_PEER_NAME, "inventory"),
            kv(NET_PEER_PORT, any_value::Value::IntValue(50051)),
        ]);
        let call = grpc.extra.and_then(|e| e.call).expect("call");
        assert_eq!(call.protocol, CallProtocol::Rpc);
        assert_eq!((call.server_address.as_deref(), call.server_port), (Some("inventory"), Some(50051)));
        let query = read(vec![s(DB_SYSTEM, "postgresql"), s(DB_STATEMENT, "SELECT 1"), s(NET_PEER_NAME, "db")]);
        assert!(query.extra.is_none(), "a DB span's peer is not kept: DB spans are no outgoing calls");
        let kafka = read(vec![s(MESSAGING_SYSTEM, "Kafka"), s(MESSAGING_DESTINATION_NAME, "orders")]);
        let call = kafka.extra.and_then(|e| e.call).expect("call");
        assert_eq!(
            (call.protocol, call.system.as_deref(), call.target.as_deref()),
            (CallProtocol::Messaging, Some("kafka"), Some("orders"))
        );
        let sized = read(vec![
            s(HTTP_METHOD, "POST"),
            kv(HTTP_REQUEST_CONTENT_LENGTH, any_value::Value::IntValue(512)),
            kv(HTTP_RESPONSE_BODY_SIZE, any_value::Value::IntValue(400_000)),
        ]);
        let http = sized.http.expect("http");
        assert_eq!((http.request_size, http.response_size), (Some(512), Some(400_000)));
        // A captured Content-Length header (an array of strings) when no size attribute is given.
        let header = AnyValue {
            value: Some(any_value::Value::ArrayValue(opentelemetry_proto::tonic::common::v1::ArrayValue {
                values: vec![AnyValue { value: Some(any_value::Value::StringValue("390123".into())) }],
            })),
        };
        let captured = read(vec![
            s(HTTP_METHOD, "GET"),
            KeyValue { key: HTTP_RESPONSE_HEADER_CONTENT_LENGTH_PY.into(), value: Some(header), ..Default::default() },
        ]);
        assert_eq!(captured.http.expect("http").response_size, Some(390_123));
        let rows = read(vec![
            s(DB_SYSTEM_NAME, "postgresql"),
            kv(DB_RESPONSE_RETURNED_ROWS, any_value::Value::IntValue(9000)),
        ]);
        assert_eq!(rows.db.expect("db").returned_rows, Some(9000));
    }

    #[test]
    fn span_without_known_keys_has_no_attrs() {
        let attrs = read(vec![s("thread.name", "main")]);
        assert!(attrs.http.is_none() && attrs.db.is_none() && attrs.extra.is_none());
    }
}
