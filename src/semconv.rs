//! OpenTelemetry attribute keys we read, in both the old and the stable semantic conventions, and
//! the one place that folds an attribute list into [`HttpAttrs`] and [`DbAttrs`].
//!
//! When an instrumentation emits both generations (`OTEL_SEMCONV_STABILITY_OPT_IN=.../dup`), the
//! stable name wins.

use std::sync::Arc;

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};

use crate::model::{DbAttrs, HttpAttrs};

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
        _ => None,
    }
}

fn boxed(text: Option<String>) -> Option<Box<str>> {
    text.filter(|t| !t.is_empty()).map(String::into_boxed_str)
}

/// The HTTP and DB attributes found in one span's attribute list.
#[derive(Debug, Default)]
pub struct SpanAttrs {
    /// HTTP attributes, if any HTTP key was present.
    pub http: Option<Box<HttpAttrs>>,
    /// DB attributes, if the span is a DB span.
    pub db: Option<Box<DbAttrs>>,
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
            key => {
                if let Some(name) = key.strip_prefix(DB_QUERY_PARAMETER_PREFIX)
                    && let Some(text) = value_text(value)
                {
                    indexed_parameters.push((name.to_string(), text));
                }
            }
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
            response_size: size.take().and_then(|s| u64::try_from(s).ok()),
        }))
    } else {
        None
    };

    SpanAttrs { http, db }
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
    fn span_without_known_keys_has_no_attrs() {
        let attrs = read(vec![s("thread.name", "main")]);
        assert!(attrs.http.is_none() && attrs.db.is_none());
    }
}
