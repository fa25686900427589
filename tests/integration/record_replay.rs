//! Protocols per service, `--record`, `--replay` and `apmtop replay`, with the real binary.
//!
//! A live session receives exports over gRPC (gzip), OTLP/HTTP protobuf (gzip) and OTLP/HTTP
//! JSON while recording them; the capture is then processed by `apmtop --replay` and re-sent by
//! `apmtop replay --max` into a second apmtop, and both reports must equal the live one.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use prost::Message;
use serde_json::Value;
use tonic::codec::CompressionEncoding;

use crate::otlp_payloads::{JsonStyle, RequestTrace, batch, gzip, trace_request_json};
use crate::receive::{post, trace_client};
use crate::support::{self, Apmtop};

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";
const FAST_GRACE: [&str; 2] = ["--grace", "0.2"];

/// The N+1 statement every `GET /orders/{id}` runs 7 times.
const ITEM_QUERY: &str = "SELECT * FROM order_item WHERE order_id = $1";

fn order_trace(seed: u64, service: &str) -> RequestTrace {
    RequestTrace::new(seed, "GET", "/orders/{id}")
        .service(service)
        .query("SELECT * FROM orders WHERE id = $1")
        .repeat(ITEM_QUERY, 7)
}

/// Sends the same mix a polyglot system would: `grpc-svc` over gRPC with gzip (two exports),
/// `http-svc` over OTLP/HTTP protobuf with gzip and over OTLP/HTTP JSON (one export each).
async fn send_mixed(apmtop: &Apmtop) {
    let mut grpc = trace_client(apmtop.grpc_url(), Some(CompressionEncoding::Gzip)).await;
    for seed in [1, 2] {
        grpc.export(batch(&[order_trace(seed, "grpc-svc")])).await.expect("gRPC export");
    }
    let protobuf = batch(&[order_trace(3, "http-svc"), order_trace(4, "http-svc")]).encode_to_vec();
    let answer = post(&apmtop.http_url(), "/v1/traces", PROTOBUF, Some("gzip"), gzip(&protobuf)).await;
    assert_eq!(answer.status(), 200);
    let json = trace_request_json(&batch(&[order_trace(5, "http-svc")]), JsonStyle::SPEC).to_string();
    let answer = post(&apmtop.http_url(), "/v1/traces", JSON, None, json.into_bytes()).await;
    assert_eq!(answer.status(), 200);
}

fn service<'a>(report: &'a Value, name: &str) -> &'a Value {
    support::items(report, "services", "report")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no service {name} in {}", report["services"]))
}

fn protocols(service: &Value) -> Vec<(String, String, u64)> {
    support::items(service, "protocols", "service")
        .iter()
        .map(|p| {
            let text = |key: &str| p[key].as_str().unwrap_or_else(|| panic!("{key} in {p}")).to_string();
            (text("protocol"), text("compression"), support::num(&p["exports"], "exports") as u64)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_section_names_each_services_protocols_and_sdk() {
    let apmtop = Apmtop::start(&FAST_GRACE);
    send_mixed(&apmtop).await;
    let report = apmtop.stop();

    let grpc = service(&report, "grpc-svc");
    assert_eq!(protocols(grpc), [("grpc".to_string(), "gzip".to_string(), 2)]);
    assert_eq!(grpc["language"], "rust");
    assert_eq!(grpc["sdk_name"], "opentelemetry");
    assert_eq!(grpc["requests"], 2);
    assert_eq!(grpc["spans"], 2 * order_trace(1, "grpc-svc").span_count() as u64);

    let http = service(&report, "http-svc");
    let mut seen = protocols(http);
    seen.sort();
    assert_eq!(
        seen,
        [("http/json".to_string(), "none".to_string(), 1), ("http/protobuf".to_string(), "gzip".to_string(), 1)]
    );
    assert_eq!(http["requests"], 3);
}

/// Runs the binary with `args` to completion.
fn apmtop(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_apmtop")).args(args).env_remove("RUST_LOG").output().expect("run apmtop")
}

/// `apmtop --replay CAPTURE --headless --report OUT`, checked to succeed.
fn replay_file(capture: &Path, out: &Path) -> Value {
    let output = apmtop(&[
        "--replay",
        &capture.display().to_string(),
        "--headless",
        "--grace",
        "0.2",
        "--report",
        &out.display().to_string(),
    ]);
    assert!(output.status.success(), "--replay failed: {}", String::from_utf8_lossy(&output.stderr));
    support::read_report(out)
}

/// A report without what legitimately differs between two runs over the same exports: when it
/// was written, and (when `transport_too`) the per-service protocol counters, since
/// `apmtop replay` re-sends every export over gRPC whatever it arrived with.
fn comparable(mut report: Value, transport_too: bool) -> Value {
    report.as_object_mut().expect("report object").remove("generated_at");
    if transport_too {
        for service in report["services"].as_array_mut().expect("services") {
            service.as_object_mut().expect("service object").remove("protocols");
        }
        // The lossless aggregates hold the same per-service protocol counts.
        if let Some(services) = report.pointer_mut("/aggregates/services").and_then(Value::as_array_mut) {
            for entry in services {
                if let Some(facts) = entry.get_mut(1).and_then(Value::as_object_mut) {
                    facts.remove("protocols");
                }
            }
        }
    }
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_a_recording_gives_the_live_report() {
    let dir = tempfile::tempdir().expect("temp dir");
    let capture = dir.path().join("session.apmcap");
    let capture_arg = capture.display().to_string();
    let live = Apmtop::start(&["--grace", "0.2", "--record", &capture_arg]);
    send_mixed(&live).await;
    let (status, stderr, report_path, _live_dir) = live.stop_with(nix::sys::signal::Signal::SIGINT);
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("recorded 4 exports"), "{stderr}");
    let live_report = support::read_report(&report_path);
    assert_eq!(live_report["totals"]["trace_exports"], 4);
    assert_eq!(live_report["totals"]["requests"], 5);
    assert_eq!(live_report["totals"]["capture_records_dropped"], 0);
    let orders = support::endpoint(&live_report, "GET", "/orders/{id}").expect("orders endpoint");
    let offenders = support::items(orders, "n_plus_one", "orders");
    assert_eq!(offenders[0]["repeats"]["max"], 7, "the live session found the N+1: {orders}");

    // (a) processed directly: identical, protocols included (they are recorded).
    let direct = replay_file(&capture, &dir.path().join("direct.json"));
    assert_eq!(comparable(direct, false), comparable(live_report.clone(), false));

    // (b) re-sent over gRPC as fast as possible into a second apmtop.
    let second = Apmtop::start(&FAST_GRACE);
    let output = apmtop(&["replay", &capture_arg, "--max", "--endpoint", &second.grpc_url()]);
    assert!(output.status.success(), "replay failed: {}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("replayed 4 exports"));
    let resent = second.stop();
    assert_eq!(protocols(service(&resent, "http-svc")), [("grpc".to_string(), "none".to_string(), 2)]);
    assert_eq!(comparable(resent, true), comparable(live_report, true));
}

/// A capture of one valid record, as bytes.
fn one_record_capture(dir: &Path) -> Vec<u8> {
    let path = dir.join("one.apmcap");
    let mut file = apmtop::capture::header().to_vec();
    let record = apmtop::capture::CaptureRecord {
        arrival_unix_ns: 1,
        protocol: Default::default(),
        payload: batch(&[order_trace(9, "svc")]).encode_to_vec().into(),
    };
    apmtop::capture::write_record(&mut file, &record).expect("write");
    std::fs::write(&path, &file).expect("write capture");
    file
}

#[test]
fn corrupt_or_truncated_captures_exit_2_naming_the_offset() {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = one_record_capture(dir.path());
    let mut cases: Vec<(&str, Vec<u8>, &str)> = Vec::new();
    cases.push(("truncated.apmcap", good[..good.len() - 10].to_vec(), "truncated at byte offset 16"));
    let mut bad_transport = good.clone();
    bad_transport[16 + 12] = 7;
    cases.push(("corrupt.apmcap", bad_transport, "corrupt at byte offset 16"));
    cases.push(("report.json", b"{\"totals\": {}}".to_vec(), "not an apmtop capture"));
    for (name, bytes, expected) in cases {
        let path: PathBuf = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        let path = path.display().to_string();
        let out = dir.path().join("r.json").display().to_string();
        for args in [vec!["--replay", &path, "--headless", "--report", &out], vec!["replay", &path, "--max"]] {
            let output = apmtop(&args);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
            assert!(stderr.contains(expected), "{args:?}: expected {expected:?} in {stderr}");
            assert_eq!(stderr.lines().count(), 1, "one clear line: {stderr}");
        }
    }
}

#[test]
fn replay_to_an_unreachable_endpoint_exits_1() {
    let dir = tempfile::tempdir().expect("temp dir");
    one_record_capture(dir.path());
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", free.local_addr().expect("addr"));
    drop(free);
    let capture = dir.path().join("one.apmcap").display().to_string();
    let output = apmtop(&["replay", &capture, "--max", "--endpoint", &url]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot reach the OTLP/gRPC endpoint"), "{stderr}");
}

/// The capture shipped in `assets/`: the real Django test app (`tests/apps/django_app`) exporting
/// over gRPC while serving `/books/` and `/books/fixed/` twice each, `/authors/nested/`,
/// `/duplicates/` and `/health/` once.
const DJANGO_CAPTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/django_books.apmcap");

#[test]
fn the_shipped_django_capture_replays_to_its_n_plus_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let report = replay_file(Path::new(DJANGO_CAPTURE), &dir.path().join("r.json"));
    assert_eq!(report["totals"]["requests"], 7);
    let books = support::endpoint(&report, "GET", "/books/").expect("GET /books/");
    assert_eq!(books["requests"], 2);
    let offenders = support::items(books, "n_plus_one", "GET /books/");
    assert_eq!(offenders.len(), 1, "{books:#}");
    assert_eq!(offenders[0]["tables"], serde_json::json!(["library_author"]));
    assert_eq!(offenders[0]["repeats"]["max"], 13, "one author lookup per book");
    assert_eq!(offenders[0]["requests_affected"], 2);
    let fixed = support::endpoint(&report, "GET", "/books/fixed/").expect("GET /books/fixed/");
    assert!(support::items(fixed, "n_plus_one", "fixed").is_empty(), "{fixed:#}");
    assert_eq!(protocols(service(&report, "django-app")), [("grpc".to_string(), "none".to_string(), 1)]);
    // Django's start-up query (its migration check) is in the capture too, outside any request.
    let codes: Vec<&Value> = support::items(&report, "audit", "report").iter().map(|e| &e["code"]).collect();
    assert_eq!(codes, ["queries_outside_requests"], "{:#}", report["audit"]);
}
