//! Hot-path benchmarks, in spans per second: protobuf decode alone (the floor any receiver pays),
//! decode + conversion to apmtop's compact spans, and the aggregator's work (assemble, analyze,
//! aggregate). Compare the groups as ratios within one run; absolute numbers depend on the machine.

#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use apmtop::cli::Settings;
use apmtop::pipeline::Aggregator;
use apmtop::receive::decode::convert_export;
use apmtop::snapshot::Snapshot;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
        ..Default::default()
    }
}

/// An export like an SDK batch: `requests` Django-style requests of one server span and
/// `queries` DB spans each (an N+1 loop), plus noise attributes every SDK sends.
fn export(requests: u32, queries: u32, seed: u32) -> ExportTraceServiceRequest {
    let mut spans = Vec::new();
    for r in 0..requests {
        let mut trace_id = [0u8; 16];
        trace_id[..4].copy_from_slice(&seed.to_be_bytes());
        trace_id[4..8].copy_from_slice(&r.to_be_bytes());
        trace_id[15] = 1;
        let root_id = [1u8, 0, 0, 0, 0, 0, 0, 1];
        let start = 1_700_000_000_000_000_000u64 + u64::from(r) * 1_000_000;
        for q in 0..queries {
            let mut span_id = [2u8; 8];
            span_id[4..].copy_from_slice(&q.to_be_bytes());
            spans.push(Span {
                trace_id: trace_id.to_vec(),
                span_id: span_id.to_vec(),
                parent_span_id: root_id.to_vec(),
                name: "SELECT".into(),
                kind: 3,
                start_time_unix_nano: start + u64::from(q) * 10_000,
                end_time_unix_nano: start + u64::from(q) * 10_000 + 8_000,
                attributes: vec![
                    kv("db.system", "postgresql"),
                    kv("db.name", "shop"),
                    kv("db.statement", "SELECT \"app_author\".\"id\", \"app_author\".\"name\" FROM \"app_author\" WHERE \"app_author\".\"id\" = %s LIMIT 21"),
                    kv("net.peer.name", "localhost"),
                ],
                ..Default::default()
            });
        }
        spans.push(Span {
            trace_id: trace_id.to_vec(),
            span_id: root_id.to_vec(),
            name: "GET books/".into(),
            kind: 2,
            start_time_unix_nano: start,
            end_time_unix_nano: start + 900_000,
            attributes: vec![
                kv("http.method", "GET"),
                kv("http.route", "books/"),
                kv("http.target", "/books/"),
                kv("http.scheme", "http"),
                kv("net.host.name", "localhost"),
                kv("http.user_agent", "bench"),
            ],
            ..Default::default()
        });
    }
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "shop"), kv("telemetry.sdk.language", "python")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
}

fn receive(c: &mut Criterion) {
    // 512 spans: the SDKs' default batch size.
    let bytes = export(32, 15, 0).encode_to_vec();
    let spans = 32 * 16;
    let mut group = c.benchmark_group("receive");
    group.throughput(Throughput::Elements(spans));
    group.bench_function("protobuf_decode_only", |b| {
        b.iter(|| ExportTraceServiceRequest::decode(black_box(&bytes[..])).expect("valid"))
    });
    group.bench_function("decode_and_convert", |b| {
        b.iter(|| convert_export(ExportTraceServiceRequest::decode(black_box(&bytes[..])).expect("valid")))
    });
    group.finish();
}

fn aggregate(c: &mut Criterion) {
    let settings = Settings { grace: std::time::Duration::ZERO, ..Settings::default() };
    let mut group = c.benchmark_group("aggregate");
    group.throughput(Throughput::Elements(32 * 16));
    let (published, _snapshots) = tokio::sync::watch::channel(Arc::new(Snapshot::default()));
    let mut aggregator = Aggregator::new(&settings, Arc::default(), published);
    let mut seed = 0u32;
    group.bench_function("assemble_analyze_aggregate", |b| {
        b.iter_batched(
            || {
                seed += 1;
                convert_export(export(32, 15, seed)).batch
            },
            |batch| {
                aggregator.handle_batch(batch, Instant::now());
                aggregator.flush();
            },
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = receive, aggregate
}
criterion_main!(benches);
