//! `apmtop merge`: several real apmtop instances fed disjoint sets of whole traces (as a
//! collector routing by trace id does), merged, equal one instance fed all of them.

use std::process::Command;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use tonic::transport::Endpoint;

use crate::otlp_payloads::RequestTrace;
use crate::support::{Apmtop, read_report};

/// A mixed workload: three routes, N+1 offenders with varying repeats, duplicates, errors and a
/// spread of latencies, so percentiles, examples and slowest lists all matter.
fn workload() -> Vec<RequestTrace> {
    (0..36u64)
        .map(|i| {
            let route = ["/books/", "/authors/{id}", "/orders/"][(i % 3) as usize];
            let mut trace = RequestTrace::new(9_000 + i, "GET", route).duration_ms(50 + (i * 37) % 400);
            if route == "/books/" {
                trace = trace.query("SELECT * FROM book");
                for author in 0..5 + i % 4 {
                    trace = trace.query(&format!("SELECT * FROM author WHERE id = {author}"));
                }
            }
            if route == "/orders/" {
                trace = trace.repeat("SELECT count(*) FROM orders", 2).query("SELECT * FROM orders LIMIT 20");
            }
            if i % 11 == 0 {
                trace = trace.status_code(500);
            }
            trace
        })
        .collect()
}

async fn send_each(app: &Apmtop, traces: &[&RequestTrace]) {
    let channel = Endpoint::from_shared(app.grpc_url())
        .expect("endpoint")
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .await
        .expect("connect");
    let mut client = TraceServiceClient::new(channel);
    for trace in traces {
        client.export(trace.request()).await.expect("export");
    }
}

/// The report without what legitimately differs between runs.
fn comparable(mut report: serde_json::Value) -> serde_json::Value {
    let object = report.as_object_mut().expect("report object");
    object.remove("generated_at");
    object.remove("aggregates");
    report
}

fn apmtop(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_apmtop")).args(args).output().expect("run apmtop")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_merged_equal_one_instance_fed_every_trace() {
    let traces = workload();
    let grace = ["--grace", "0.2"];
    let (shard_a, shard_b, single) = (Apmtop::start(&grace), Apmtop::start(&grace), Apmtop::start(&grace));
    let (a, b): (Vec<&RequestTrace>, Vec<&RequestTrace>) = traces.iter().partition(|t| t.seed % 2 == 0);
    send_each(&shard_a, &a).await;
    send_each(&shard_b, &b).await;
    send_each(&single, &traces.iter().collect::<Vec<_>>()).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let mut paths = Vec::new();
    for (name, app) in [("a.json", shard_a), ("b.json", shard_b), ("single.json", single)] {
        let (status, stderr, path, _dir) = app.stop_with(nix::sys::signal::Signal::SIGTERM);
        assert!(status.success(), "{stderr}");
        let kept = dir.path().join(name);
        std::fs::copy(&path, &kept).expect("keep report");
        paths.push(kept);
    }
    let merged_path = dir.path().join("merged.json");
    let output = apmtop(&[
        "merge",
        paths[0].to_str().expect("utf-8"),
        paths[1].to_str().expect("utf-8"),
        "-o",
        merged_path.to_str().expect("utf-8"),
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("merged 2 reports (36 requests"));

    let merged = read_report(&merged_path);
    let single = read_report(&paths[2]);
    assert_eq!(single["totals"]["requests"], 36);
    let books = crate::support::endpoint(&single, "GET", "/books/").expect("books endpoint");
    assert_eq!(books["n_plus_one"][0]["repeats"]["max"], 8);
    assert_eq!(comparable(merged), comparable(single));
}

#[test]
fn merge_refuses_what_it_cannot_merge_with_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let not_report = dir.path().join("other.json");
    std::fs::write(&not_report, r#"{"hello": 1}"#).expect("write");
    let bare = dir.path().join("exported.json");
    std::fs::write(&bare, r#"{"apmtop_report": 1, "totals": {}, "endpoints": []}"#).expect("write");
    let out = dir.path().join("all.json");
    let out = out.to_str().expect("utf-8");

    let output = apmtop(&["merge", not_report.to_str().expect("utf-8"), "-o", out]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("is not an apmtop report"));

    let output = apmtop(&["merge", bare.to_str().expect("utf-8"), "-o", out]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("carries no aggregates"));

    let output = apmtop(&["merge", "/nonexistent/r.json", "-o", out]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot read the report"));
    assert!(!std::path::Path::new(out).exists());
}
