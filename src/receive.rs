//! OTLP ingest: the router both listeners serve, and the [`Ingest`] handle that passes decoded
//! batches to the aggregator over a bounded channel.
//!
//! - `grpc`: `TraceService/Export` (plus metrics and logs, counted and discarded) via tonic.
//! - `http`: `POST /v1/traces`, `/v1/metrics`, `/v1/logs`, protobuf or JSON, gzip or deflate.
//! - `decode`: OTLP message -> compact [`crate::model::Span`]s, on the receiving task.
//!
//! Every listener serves every route: an SDK pointed at the "wrong" port still works.
//!
//! Backpressure: a semaphore counts the spans in flight between the receivers and the
//! aggregator. When it has no room for an export within [`FULL_WAIT`], the export is refused with
//! the OTLP *retryable* answer (gRPC `UNAVAILABLE` with `RetryInfo`, HTTP 503 with
//! `Retry-After`); the README explains why throttling was chosen over accept-and-drop.

pub mod decode;
mod grpc;
mod http;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use crate::capture::CaptureRecord;
use crate::capture::recorder::Recorder;
use crate::model::{Protocol, Span, SpanBatch, Transport};
use crate::stats::Stats;
use decode::DecodedExport;

/// Largest export accepted, after decompression: the OTLP spec's recommended 64 MiB.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;

/// Bytes of decoded spans that count as one unit of pipeline room (a typical span is smaller).
const BYTES_PER_UNIT: usize = 1024;

/// How long an export waits for room in the pipeline before it is refused as retryable.
pub const FULL_WAIT: Duration = Duration::from_millis(500);

/// What a client is told to wait before it retries a refused export.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// A batch on its way to the aggregator; dropping it frees its room in the pipeline.
#[derive(Debug)]
pub struct Ingested {
    /// The spans.
    pub batch: SpanBatch,
    /// Room taken in the pipeline, given back on drop.
    _permit: OwnedSemaphorePermit,
}

/// Why an export was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The pipeline had no room in time: retry later.
    Full,
    /// apmtop is shutting down.
    ShuttingDown,
}

/// An export that was taken: how many of its spans were rejected as invalid, and why.
#[derive(Debug, Default, Clone)]
pub struct Accepted {
    /// Invalid spans dropped from the export.
    pub rejected: u64,
    /// The reason, for `partial_success.error_message`.
    pub message: Option<String>,
}

/// The receivers' side of the pipeline: clone one per handler.
#[derive(Clone)]
pub struct Ingest {
    tx: mpsc::Sender<Ingested>,
    room: Arc<Semaphore>,
    max_in_flight: usize,
    stats: Arc<Stats>,
    /// Where exports are recorded (`--record`), if anywhere.
    recorder: Option<Recorder>,
}

impl Ingest {
    /// Creates the handle and the aggregator's receiving end. `max_in_flight_spans` bounds the
    /// spans decoded but not yet processed.
    pub fn new(max_in_flight_spans: usize, stats: Arc<Stats>) -> (Ingest, mpsc::Receiver<Ingested>) {
        let max_in_flight = max_in_flight_spans.clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
        // The semaphore bounds memory; the channel only needs to hold many small batches.
        let (tx, rx) = mpsc::channel(4096);
        let room = Arc::new(Semaphore::new(max_in_flight));
        (Ingest { tx, room, max_in_flight, stats, recorder: None }, rx)
    }

    /// Records every trace export taken (or refused as malformed) with `recorder`.
    pub fn with_recorder(mut self, recorder: Recorder) -> Self {
        self.recorder = Some(recorder);
        self
    }

    /// Hands an export, as received, to the recorder, if there is one; never waits.
    pub fn record(&self, arrival_unix_ns: u64, protocol: Protocol, payload: Bytes) {
        if let Some(recorder) = &self.recorder {
            recorder.record(CaptureRecord { arrival_unix_ns, protocol, payload });
        }
    }

    /// The shared counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Hands a decoded export to the aggregator, waiting at most [`FULL_WAIT`] for room.
    pub async fn submit(&self, export: DecodedExport) -> Result<Accepted, Refusal> {
        let accepted = Accepted { rejected: export.rejected, message: export.rejection_message() };
        Stats::add(&self.stats.spans_rejected, export.rejected);
        let spans = export.batch.spans.len();
        if spans == 0 {
            Stats::add(&self.stats.trace_exports, 1);
            return Ok(accepted);
        }
        // Room is counted in spans, or in KiB when the spans are large (long statements), so that
        // memory stays bounded either way. An export larger than the whole pipeline takes all of
        // it rather than never fitting.
        let bytes: usize = export.batch.spans.iter().map(Span::approx_bytes).sum();
        let wanted = spans.max(bytes / BYTES_PER_UNIT).min(self.max_in_flight) as u32;
        let permit = match tokio::time::timeout(FULL_WAIT, Arc::clone(&self.room).acquire_many_owned(wanted)).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Err(self.refuse(spans, Refusal::ShuttingDown)),
            Err(_) => return Err(self.refuse(spans, Refusal::Full)),
        };
        if self.tx.send(Ingested { batch: export.batch, _permit: permit }).await.is_err() {
            return Err(self.refuse(spans, Refusal::ShuttingDown));
        }
        Stats::add(&self.stats.spans_received, spans as u64);
        Stats::add(&self.stats.trace_exports, 1);
        Ok(accepted)
    }

    fn refuse(&self, spans: usize, why: Refusal) -> Refusal {
        Stats::add(&self.stats.spans_refused, spans as u64);
        tracing::debug!(spans, ?why, "export refused");
        why
    }
}

/// The export request a recorded payload holds, decompressed and decoded as its receiver would.
pub fn parse_record(record: &CaptureRecord) -> Result<ExportTraceServiceRequest, String> {
    match record.protocol.transport {
        Transport::Grpc => grpc::parse_message(record.payload.clone()),
        Transport::HttpProtobuf | Transport::HttpJson => {
            http::parse_body(record.payload.clone(), record.protocol.compression, record.protocol.transport)
        }
    }
}

/// A recorded export decoded into spans as its receiver would have, with its protocol noted.
pub fn decode_record(record: &CaptureRecord) -> Result<DecodedExport, String> {
    let mut export = decode::convert_export(parse_record(record)?);
    export.batch.origin.protocol = Some(record.protocol);
    Ok(export)
}

/// The current time in unix nanoseconds, for the arrival time of recorded exports.
pub fn unix_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The router every listener serves: gRPC services and OTLP/HTTP routes side by side. Anything
/// else goes to a fallback that accepts OTLP/HTTP under a path prefix (a full
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` such as `http://host:4318/collector/v1/traces`) and
/// answers unknown gRPC methods with `UNIMPLEMENTED`.
pub fn router(ingest: Ingest) -> Router {
    grpc::routes().merge(http::routes()).fallback(http::fallback).with_state(ingest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DbAttrs, Service, SpanId, SpanKind, TraceId};

    fn export(spans: usize) -> DecodedExport {
        let service = Arc::new(Service { name: Arc::from("web"), language: None });
        let span = Span {
            trace_id: TraceId([1; 16]),
            span_id: SpanId([1; 8]),
            parent_span_id: None,
            parent_is_remote: false,
            service,
            name: "GET".into(),
            kind: SpanKind::Server,
            start_ns: 0,
            end_ns: 1,
            is_error: false,
            http: None,
            db: None,
            extra: None,
        };
        DecodedExport { batch: SpanBatch { spans: vec![span; spans], ..Default::default() }, rejected: 0 }
    }

    #[tokio::test(start_paused = true)]
    async fn full_pipeline_refuses_as_retryable_and_counts_the_spans() {
        let stats = Arc::new(Stats::default());
        let (ingest, mut batches) = Ingest::new(10, Arc::clone(&stats));
        ingest.submit(export(8)).await.expect("room for 8");
        assert_eq!(ingest.submit(export(5)).await.expect_err("no room for 5 more"), Refusal::Full);
        assert_eq!(Stats::get(&stats.spans_refused), 5);
        assert_eq!(Stats::get(&stats.spans_received), 8);
        // Processing the first batch frees its room.
        drop(batches.recv().await.expect("first batch"));
        ingest.submit(export(5)).await.expect("room again");
        assert_eq!(Stats::get(&stats.spans_received), 13);
    }

    #[tokio::test]
    async fn export_larger_than_the_pipeline_takes_all_of_it() {
        let stats = Arc::new(Stats::default());
        let (ingest, _batches) = Ingest::new(10, Arc::clone(&stats));
        ingest.submit(export(25)).await.expect("an oversized batch still fits alone");
        assert_eq!(Stats::get(&stats.spans_received), 25);
    }

    #[tokio::test(start_paused = true)]
    async fn large_spans_take_room_by_size() {
        let stats = Arc::new(Stats::default());
        let (ingest, _batches) = Ingest::new(100, Arc::clone(&stats));
        let mut big = export(2);
        for span in &mut big.batch.spans {
            span.db = Some(Box::new(DbAttrs { statement: Some("x".repeat(40 * 1024).into()), ..Default::default() }));
        }
        ingest.submit(big).await.expect("80 KiB take 80 of 100 units");
        assert_eq!(ingest.submit(export(30)).await.expect_err("only 20 units left"), Refusal::Full);
        ingest.submit(export(10)).await.expect("10 units fit");
    }

    #[tokio::test]
    async fn closed_pipeline_refuses_as_shutting_down() {
        let stats = Arc::new(Stats::default());
        let (ingest, batches) = Ingest::new(10, Arc::clone(&stats));
        drop(batches);
        assert_eq!(ingest.submit(export(1)).await.expect_err("closed"), Refusal::ShuttingDown);
    }
}
