//! apmtop's own counters: what was received, refused, rejected and dropped.
//!
//! Receivers update them per export call (never per span) with relaxed atomics; the aggregator
//! reads them when it builds a snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters shared between the receivers and the aggregator.
#[derive(Debug, Default)]
pub struct Stats {
    /// Valid spans accepted into the pipeline.
    pub spans_received: AtomicU64,
    /// Spans with invalid ids, answered with `partial_success`.
    pub spans_rejected: AtomicU64,
    /// Spans refused with a retryable answer because the pipeline was full.
    pub spans_refused: AtomicU64,
    /// Trace export calls accepted.
    pub trace_exports: AtomicU64,
    /// Metrics export calls received (counted, then discarded).
    pub metric_exports: AtomicU64,
    /// Logs export calls received (counted, then discarded).
    pub log_exports: AtomicU64,
    /// Export calls answered with a non-retryable error (malformed, too large, bad content type).
    pub exports_malformed: AtomicU64,
    /// Exports not written to the `--record` capture because the writer was behind.
    pub capture_records_dropped: AtomicU64,
}

impl Stats {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
