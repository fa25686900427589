//! Turns a decoded OTLP `ExportTraceServiceRequest` into compact [`Span`]s, on the receiving task.
//!
//! Strings are moved out of the protobuf message rather than copied; resource-level facts
//! (`service.name`, SDK language) become one shared [`Service`] per resource. Spans with invalid
//! ids are counted as rejected, for the `partial_success` answer.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{Span as OtlpSpan, status::StatusCode};
use rustc_hash::FxHashMap;

use crate::model::{DbAttrs, SdkInfo, Service, Span, SpanBatch, SpanId, SpanKind, TraceId};
use crate::semconv;

/// Span flags bits 8 and 9: "is remote" is known, and the parent is remote.
const FLAG_PARENT_REMOTE_KNOWN_AND_SET: u32 = 0x300;

/// What one export call held.
#[derive(Debug, Default)]
pub struct DecodedExport {
    /// The valid spans.
    pub batch: SpanBatch,
    /// Spans rejected for invalid ids.
    pub rejected: u64,
}

impl DecodedExport {
    /// A sentence for `partial_success.error_message`, when spans were rejected.
    pub fn rejection_message(&self) -> Option<String> {
        (self.rejected > 0).then(|| {
            format!("{} span(s) rejected: trace_id must be 16 bytes and span_id 8 bytes, not all zero", self.rejected)
        })
    }
}

/// Converts one export request, consuming it.
pub fn convert_export(request: ExportTraceServiceRequest) -> DecodedExport {
    let mut out = DecodedExport::default();
    let total: usize =
        request.resource_spans.iter().flat_map(|rs| rs.scope_spans.iter()).map(|ss| ss.spans.len()).sum();
    out.batch.spans.reserve_exact(total);
    let mut systems: FxHashMap<String, Arc<str>> = FxHashMap::default();
    let mut intern = |name: &str| -> Arc<str> {
        if let Some(interned) = systems.get(name) {
            return Arc::clone(interned);
        }
        let interned: Arc<str> = Arc::from(name);
        systems.insert(name.to_string(), Arc::clone(&interned));
        interned
    };
    for resource_spans in request.resource_spans {
        let (service, sdk) = read_service(resource_spans.resource);
        let service = Arc::new(service);
        if !out.batch.origin.sdks.iter().any(|known| known.service == service.name) {
            out.batch.origin.sdks.push(SdkInfo { service: Arc::clone(&service.name), name: sdk.0, version: sdk.1 });
        }
        for scope_spans in resource_spans.scope_spans {
            for span in scope_spans.spans {
                match convert_span(span, &service, &mut intern) {
                    Some(span) => out.batch.spans.push(span),
                    None => out.rejected += 1,
                }
            }
        }
    }
    out
}

/// The service of a resource, and its SDK's name and version (empty when absent).
fn read_service(resource: Option<Resource>) -> (Service, (Arc<str>, Arc<str>)) {
    let mut name = None;
    let mut language = None;
    let mut sdk_name = None;
    let mut sdk_version = None;
    if let Some(mut resource) = resource {
        for kv in resource.attributes.iter_mut() {
            match kv.key.as_str() {
                semconv::SERVICE_NAME => name = semconv::value_text(kv.value.as_mut()),
                semconv::SDK_LANGUAGE => language = semconv::value_text(kv.value.as_mut()),
                semconv::SDK_NAME => sdk_name = semconv::value_text(kv.value.as_mut()),
                semconv::SDK_VERSION => sdk_version = semconv::value_text(kv.value.as_mut()),
                _ => {}
            }
        }
    }
    let mut name = name.filter(|n| !n.is_empty()).unwrap_or_else(|| semconv::UNKNOWN_SERVICE.to_string());
    truncate_at_char(&mut name, MAX_SERVICE_NAME_BYTES);
    let mut sdk = [sdk_name.unwrap_or_default(), sdk_version.unwrap_or_default()];
    for text in &mut sdk {
        truncate_at_char(text, MAX_SDK_TEXT_BYTES);
    }
    let [sdk_name, sdk_version] = sdk;
    let service = Service { name: Arc::from(name), language: language.filter(|l| !l.is_empty()).map(Arc::from) };
    (service, (Arc::from(sdk_name), Arc::from(sdk_version)))
}

/// Longest SDK name or version kept.
const MAX_SDK_TEXT_BYTES: usize = 64;

/// Longest service name kept: names key endpoints, so a hostile one must not be megabytes.
const MAX_SERVICE_NAME_BYTES: usize = 256;

fn truncate_at_char(text: &mut String, max: usize) {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
}

fn trace_id(bytes: &[u8]) -> Option<TraceId> {
    let id: [u8; 16] = bytes.try_into().ok()?;
    (id != [0; 16]).then_some(TraceId(id))
}

fn span_id(bytes: &[u8]) -> Option<SpanId> {
    let id: [u8; 8] = bytes.try_into().ok()?;
    (id != [0; 8]).then_some(SpanId(id))
}

fn convert_span(mut span: OtlpSpan, service: &Arc<Service>, intern: &mut impl FnMut(&str) -> Arc<str>) -> Option<Span> {
    let trace_id = trace_id(&span.trace_id)?;
    let span_id = span_id(&span.span_id)?;
    let parent_span_id = span_id_or_none(&span.parent_span_id);
    let mut attrs = semconv::read_span_attributes(&mut span.attributes, intern);
    if attrs.db.is_none() && semconv::is_go_database_sql_span(&span.name) {
        // otelsql without `db.system` and without text: a connection or driver span.
        attrs.db = Some(Box::new(DbAttrs { system: intern(""), ..DbAttrs::default() }));
    }
    let is_error = span.status.as_ref().is_some_and(|s| s.code == StatusCode::Error as i32);
    let start_ns = span.start_time_unix_nano;
    Some(Span {
        trace_id,
        span_id,
        parent_span_id,
        parent_is_remote: span.flags & FLAG_PARENT_REMOTE_KNOWN_AND_SET == FLAG_PARENT_REMOTE_KNOWN_AND_SET,
        service: Arc::clone(service),
        name: std::mem::take(&mut span.name).into_boxed_str(),
        kind: SpanKind::from_otlp(span.kind),
        start_ns,
        // Tolerate clocks that put the end before the start.
        end_ns: span.end_time_unix_nano.max(start_ns),
        is_error,
        http: attrs.http,
        db: attrs.db,
        extra: attrs.extra,
    })
}

/// A parent id: empty, wrong-sized or all-zero means "no parent".
fn span_id_or_none(bytes: &[u8]) -> Option<SpanId> {
    span_id(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Status};

    fn kv(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
            ..Default::default()
        }
    }

    fn request(spans: Vec<OtlpSpan>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", "shop"),
                        kv("telemetry.sdk.language", "python"),
                        kv("telemetry.sdk.name", "opentelemetry"),
                        kv("telemetry.sdk.version", "1.45.1"),
                    ],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
                ..Default::default()
            }],
        }
    }

    fn span(trace: u8, id: u8) -> OtlpSpan {
        OtlpSpan {
            trace_id: vec![trace; 16],
            span_id: vec![id; 8],
            name: "GET /x".into(),
            kind: 2,
            start_time_unix_nano: 1_000,
            end_time_unix_nano: 5_000,
            ..Default::default()
        }
    }

    #[test]
    fn valid_span_is_converted_with_resource_service() {
        let mut s = span(1, 2);
        s.parent_span_id = vec![3; 8];
        s.status = Some(Status { code: 2, ..Default::default() });
        s.attributes = vec![kv("db.system", "sqlite"), kv("db.statement", "SELECT 1")];
        let out = convert_export(request(vec![s]));
        assert_eq!(out.rejected, 0);
        let span = &out.batch.spans[0];
        assert_eq!(&*span.service.name, "shop");
        assert_eq!(span.service.language.as_deref(), Some("python"));
        assert_eq!(out.batch.origin.sdks.len(), 1);
        assert_eq!(&*out.batch.origin.sdks[0].name, "opentelemetry");
        assert_eq!(&*out.batch.origin.sdks[0].version, "1.45.1");
        assert_eq!(span.parent_span_id, Some(SpanId([3; 8])));
        assert_eq!(span.kind, SpanKind::Server);
        assert!(span.is_error);
        assert_eq!(span.duration_ns(), 4_000);
        assert!(span.is_query());
    }

    #[test]
    fn invalid_ids_are_rejected_and_counted() {
        let mut short = span(1, 2);
        short.trace_id = vec![1; 8];
        let zero = span(0, 2);
        let mut zero_span = span(1, 0);
        zero_span.span_id = vec![0; 8];
        let out = convert_export(request(vec![short, zero, zero_span, span(1, 4)]));
        assert_eq!(out.rejected, 3);
        assert_eq!(out.batch.spans.len(), 1);
        assert!(out.rejection_message().is_some());
    }

    #[test]
    fn empty_or_zero_parent_means_root_and_end_before_start_is_clamped() {
        let mut s = span(1, 2);
        s.parent_span_id = vec![0; 8];
        s.end_time_unix_nano = 10;
        let out = convert_export(request(vec![s]));
        assert_eq!(out.batch.spans[0].parent_span_id, None);
        assert_eq!(out.batch.spans[0].duration_ns(), 0);
    }

    #[test]
    fn missing_service_name_falls_back_to_unknown_service() {
        let mut req = request(vec![span(1, 2)]);
        req.resource_spans[0].resource = None;
        let out = convert_export(req);
        assert_eq!(&*out.batch.spans[0].service.name, "unknown_service");
    }

    #[test]
    fn huge_service_name_is_cut() {
        let mut req = request(vec![span(1, 2)]);
        req.resource_spans[0].resource =
            Some(Resource { attributes: vec![kv("service.name", &"é".repeat(1000))], ..Default::default() });
        let out = convert_export(req);
        assert!(out.batch.spans[0].service.name.len() <= MAX_SERVICE_NAME_BYTES);
    }

    #[test]
    fn go_database_sql_spans_without_db_system_are_db_spans() {
        let mut query = span(1, 2);
        query.name = "sql.conn.query".into();
        query.attributes = vec![kv("db.query.text", "SELECT 1")];
        let mut rows = span(1, 3);
        rows.name = "sql.rows".into();
        let mut prepare = span(1, 4);
        prepare.name = "sql.conn.prepare".into();
        let mut other = span(1, 5);
        other.name = "render".into();
        let out = convert_export(request(vec![query, rows, prepare, other]));
        let spans = &out.batch.spans;
        assert!(spans[0].is_query());
        assert!(spans[1].is_db_without_statement() && spans[2].is_db_without_statement());
        assert!(spans[3].db.is_none());
    }

    #[test]
    fn remote_parent_flag_is_read() {
        let mut s = span(1, 2);
        s.flags = 0x301;
        s.parent_span_id = vec![9; 8];
        let out = convert_export(request(vec![s]));
        assert!(out.batch.spans[0].parent_is_remote);
    }
}
