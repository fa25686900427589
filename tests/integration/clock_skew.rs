//! Clock skew between services, from spans sent over OTLP/gRPC: `web` calls `api`, whose host
//! clock runs behind, so `api`'s SERVER spans start before the `web` CLIENT spans that caused
//! them. The audit names both services and the offset; in-step clocks give no entry.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{Span, span};
use serde_json::Value;

use crate::otlp_payloads::{export_request, span_id, string_attr, trace_id};
use crate::receive::trace_client;
use crate::support::Apmtop;

const MS: u64 = 1_000_000;
/// A fixed start, so that the spans' absolute times do not matter.
const T0: u64 = 1_763_000_000_000 * MS;

fn server_or_client(seed: u64, index: u64, parent: Option<u64>, kind: span::SpanKind, from: u64, to: u64) -> Span {
    let route = "/api/items/{id}";
    Span {
        trace_id: trace_id(seed).to_vec(),
        span_id: span_id(seed, index).to_vec(),
        parent_span_id: parent.map(|p| span_id(seed, p).to_vec()).unwrap_or_default(),
        name: if kind == span::SpanKind::Client { "GET".to_string() } else { format!("GET {route}") },
        kind: kind as i32,
        start_time_unix_nano: T0 + from,
        end_time_unix_nano: T0 + to,
        attributes: vec![string_attr("http.request.method", "GET"), string_attr("http.route", route)],
        ..Default::default()
    }
}

/// One `web` request calling `api` once; `api`'s clock is `api_offset_ms` off (negative: behind).
fn call(seed: u64, api_offset_ms: i64) -> (Vec<Span>, Vec<Span>) {
    let shift = |t: u64| t.checked_add_signed(api_offset_ms * MS as i64).expect("in range");
    let web = vec![
        server_or_client(seed, 1, None, span::SpanKind::Server, 1_000 * MS, 1_200 * MS),
        server_or_client(seed, 2, Some(1), span::SpanKind::Client, 1_020 * MS, 1_120 * MS),
    ];
    let api = vec![server_or_client(seed, 3, Some(2), span::SpanKind::Server, shift(1_030 * MS), shift(1_110 * MS))];
    (web, api)
}

fn requests(api_offset_ms: i64) -> Vec<ExportTraceServiceRequest> {
    let (mut web, mut api) = (Vec::new(), Vec::new());
    for seed in 0..3 {
        let (w, a) = call(600 + seed, api_offset_ms);
        web.extend(w);
        api.extend(a);
    }
    vec![export_request("web", web), export_request("api", api)]
}

async fn audit_after(api_offset_ms: i64) -> Vec<Value> {
    let apmtop = Apmtop::start(&["--grace", "0.2"]);
    let mut client = trace_client(apmtop.grpc_url(), None).await;
    for request in requests(api_offset_ms) {
        client.export(request).await.expect("export");
    }
    let report = apmtop.stop();
    report["audit"].as_array().expect("audit").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_skew_between_services_is_audited_with_the_offset_and_the_fix() {
    let audit = audit_after(-150).await;
    let skew: Vec<&Value> = audit.iter().filter(|e| e["code"] == "clock_skew").collect();
    assert_eq!(skew.len(), 1, "{audit:#?}");
    assert_eq!(skew[0]["service"], "api");
    let problem = skew[0]["problem"].as_str().expect("problem");
    assert!(problem.starts_with("3 server spans fell outside the web calls"), "{problem}");
    assert!(problem.contains("about 150 ms behind web's"), "{problem}");
    assert!(skew[0]["fix"].as_str().expect("fix").contains("NTP"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clocks_in_step_give_no_clock_skew_entry() {
    let audit = audit_after(0).await;
    assert!(audit.iter().all(|e| e["code"] != "clock_skew"), "{audit:#?}");
}
