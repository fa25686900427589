//! The trace store: the spans of the few requests the dashboard can open as a waterfall.
//!
//! Only summaries reach the snapshot, so the spans of interesting requests are kept here: those
//! among an endpoint's slowest, and those that are the example trace of an N+1 offender or a
//! duplicate. The aggregator decides after recording a request whether the aggregates now point
//! at it ([`super::Aggregates::references`]); only then does the request's span list move in
//! here, as a compact [`TraceRecord`], so requests that are not kept cost no copy.
//!
//! The store is bounded in bytes: [`TraceStore::retain_referenced`] drops the traces the
//! aggregates no longer point at, and when the byte budget is exceeded the oldest traces go first.
//! It lives in the aggregator task, like the aggregates; the dashboard asks for one trace at a
//! time over the control channel and gets an `Arc` back.

use std::collections::VecDeque;
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::analyze::RequestAnalysis;
use crate::model::{SpanId, SpanKind, TraceId};

/// Default byte budget of the store.
pub const DEFAULT_MAX_BYTES: usize = 16 * 1024 * 1024;
/// Longest statement kept per span.
const MAX_STATEMENT_BYTES: usize = 2048;

/// One span of a kept request.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSpan {
    /// Its id.
    pub span_id: SpanId,
    /// Its parent; `None` for the trace root.
    pub parent: Option<SpanId>,
    /// Span name.
    pub name: Box<str>,
    /// Span kind.
    pub kind: SpanKind,
    /// The sending service.
    pub service: Arc<str>,
    /// Start, unix nanoseconds.
    pub start_ns: u64,
    /// End, unix nanoseconds.
    pub end_ns: u64,
    /// Status `ERROR`.
    pub is_error: bool,
    /// Statement text, for database spans that carried one (clipped).
    pub statement: Option<Box<str>>,
    /// The statement's fingerprint id, for spans counted as queries.
    pub fingerprint_id: Option<u64>,
}

impl TraceSpan {
    /// Duration in nanoseconds.
    pub fn duration_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }

    fn approx_bytes(&self) -> usize {
        std::mem::size_of::<TraceSpan>() + self.name.len() + self.statement.as_ref().map_or(0, |s| s.len())
    }
}

/// A query shape that repeated as an N+1 in a kept request.
#[derive(Debug, Clone, PartialEq)]
pub struct RepeatedShape {
    /// Fingerprint id.
    pub fingerprint_id: u64,
    /// The normalized statement.
    pub fingerprint: String,
}

/// The spans of one kept trace (one or more of its requests).
#[derive(Debug, Clone, PartialEq)]
pub struct TraceRecord {
    /// The trace.
    pub trace_id: TraceId,
    /// Endpoint label of the first request kept (`METHOD route`).
    pub endpoint: String,
    /// Spans, in start order.
    pub spans: Vec<TraceSpan>,
    /// Shapes found repeated as N+1 in the kept requests: the waterfall folds them.
    pub n_plus_one: Vec<RepeatedShape>,
}

impl TraceRecord {
    /// The compact copy of an analyzed request; moves its spans and statements.
    pub fn from_analysis(analysis: RequestAnalysis) -> TraceRecord {
        let RequestAnalysis { endpoint, trace_id, queries, root, spans, n_plus_one, .. } = analysis;
        let mut statements: FxHashMap<SpanId, (Box<str>, u64)> =
            queries.into_iter().map(|q| (q.span_id, (q.statement, q.fingerprint.id))).collect();
        let mut out: Vec<TraceSpan> = std::iter::once(root)
            .chain(spans)
            .map(|span| {
                let (statement, fingerprint_id) = match statements.remove(&span.span_id) {
                    Some((statement, id)) => (Some(statement), Some(id)),
                    None => (span.db.and_then(|db| db.statement), None),
                };
                TraceSpan {
                    span_id: span.span_id,
                    parent: span.parent_span_id,
                    name: span.name,
                    kind: span.kind,
                    service: Arc::clone(&span.service.name),
                    start_ns: span.start_ns,
                    end_ns: span.end_ns,
                    is_error: span.is_error,
                    statement: statement.map(|s| clip(s, MAX_STATEMENT_BYTES)),
                    fingerprint_id,
                }
            })
            .collect();
        out.sort_by(|a, b| a.start_ns.cmp(&b.start_ns).then(b.end_ns.cmp(&a.end_ns)));
        TraceRecord {
            trace_id,
            endpoint: endpoint.label(),
            spans: out,
            n_plus_one: n_plus_one
                .iter()
                .map(|g| RepeatedShape { fingerprint_id: g.fingerprint.id, fingerprint: g.fingerprint.text.clone() })
                .collect(),
        }
    }

    /// Approximate memory held, for the store's byte budget.
    pub fn approx_bytes(&self) -> usize {
        std::mem::size_of::<TraceRecord>()
            + self.endpoint.len()
            + self.spans.iter().map(TraceSpan::approx_bytes).sum::<usize>()
            + self.n_plus_one.iter().map(|s| std::mem::size_of::<RepeatedShape>() + s.fingerprint.len()).sum::<usize>()
    }

    /// Adds the spans of another request of the same trace (spans already kept are skipped).
    fn merge(&mut self, other: TraceRecord) {
        let known: FxHashSet<SpanId> = self.spans.iter().map(|s| s.span_id).collect();
        self.spans.extend(other.spans.into_iter().filter(|s| !known.contains(&s.span_id)));
        self.spans.sort_by(|a, b| a.start_ns.cmp(&b.start_ns).then(b.end_ns.cmp(&a.end_ns)));
        for shape in other.n_plus_one {
            if !self.n_plus_one.iter().any(|s| s.fingerprint_id == shape.fingerprint_id) {
                self.n_plus_one.push(shape);
            }
        }
    }
}

fn clip(text: Box<str>, max: usize) -> Box<str> {
    if text.len() <= max {
        return text;
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut]).into_boxed_str()
}

/// Kept traces, bounded in bytes. Single owner: the aggregator task.
#[derive(Debug)]
pub struct TraceStore {
    traces: FxHashMap<TraceId, (Arc<TraceRecord>, usize)>,
    /// Insertion order, oldest first (may name traces already removed).
    order: VecDeque<TraceId>,
    bytes: usize,
    max_bytes: usize,
}

impl TraceStore {
    /// An empty store holding at most about `max_bytes`.
    pub fn new(max_bytes: usize) -> Self {
        TraceStore { traces: FxHashMap::default(), order: VecDeque::new(), bytes: 0, max_bytes }
    }

    /// Keeps `record` (merged into what is kept of its trace), then evicts the oldest traces
    /// while over budget. A record larger than the whole budget is not kept.
    pub fn insert(&mut self, record: TraceRecord) {
        let trace_id = record.trace_id;
        let record = match self.remove(&trace_id) {
            Some(kept) => {
                self.order.retain(|id| *id != trace_id);
                let mut kept = Arc::unwrap_or_clone(kept);
                kept.merge(record);
                kept
            }
            None => record,
        };
        let bytes = record.approx_bytes();
        if bytes > self.max_bytes {
            return;
        }
        while self.bytes + bytes > self.max_bytes {
            let Some(oldest) = self.order.pop_front() else { break };
            self.remove(&oldest);
        }
        self.bytes += bytes;
        self.traces.insert(trace_id, (Arc::new(record), bytes));
        self.order.push_back(trace_id);
    }

    fn remove(&mut self, trace_id: &TraceId) -> Option<Arc<TraceRecord>> {
        let (record, bytes) = self.traces.remove(trace_id)?;
        self.bytes -= bytes;
        Some(record)
    }

    /// Drops every trace for which `referenced` is false.
    pub fn retain_referenced(&mut self, referenced: impl Fn(&TraceId) -> bool) {
        let mut freed = 0;
        self.traces.retain(|id, (_, bytes)| {
            let keep = referenced(id);
            if !keep {
                freed += *bytes;
            }
            keep
        });
        self.bytes -= freed;
        let traces = &self.traces;
        self.order.retain(|id| traces.contains_key(id));
    }

    /// The kept trace `trace_id`, if any.
    pub fn get(&self, trace_id: &TraceId) -> Option<Arc<TraceRecord>> {
        self.traces.get(trace_id).map(|(record, _)| Arc::clone(record))
    }

    /// Traces kept.
    pub fn len(&self) -> usize {
        self.traces.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.traces.is_empty()
    }

    /// Approximate bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Default for TraceStore {
    fn default() -> Self {
        TraceStore::new(DEFAULT_MAX_BYTES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(trace: u8, spans: usize, statement_bytes: usize) -> TraceRecord {
        let span = |i: usize| TraceSpan {
            span_id: SpanId([trace, i as u8, 0, 0, 0, 0, 0, 1]),
            parent: (i > 0).then_some(SpanId([trace, 0, 0, 0, 0, 0, 0, 1])),
            name: "SELECT".into(),
            kind: SpanKind::Client,
            service: Arc::from("shop"),
            start_ns: i as u64,
            end_ns: i as u64 + 10,
            is_error: false,
            statement: Some("x".repeat(statement_bytes).into()),
            fingerprint_id: Some(1),
        };
        TraceRecord {
            trace_id: TraceId([trace; 16]),
            endpoint: "GET /books".into(),
            spans: (0..spans).map(span).collect(),
            n_plus_one: Vec::new(),
        }
    }

    #[test]
    fn keeps_and_returns_a_trace() {
        let mut store = TraceStore::new(1 << 20);
        store.insert(record(1, 3, 10));
        let kept = store.get(&TraceId([1; 16])).expect("kept");
        assert_eq!(kept.spans.len(), 3);
        assert!(store.get(&TraceId([2; 16])).is_none());
    }

    #[test]
    fn retain_drops_unreferenced_traces_and_their_bytes() {
        let mut store = TraceStore::new(1 << 20);
        store.insert(record(1, 3, 10));
        store.insert(record(2, 3, 10));
        let one = store.bytes() / 2;
        store.retain_referenced(|id| *id == TraceId([2; 16]));
        assert_eq!(store.len(), 1);
        assert!(store.get(&TraceId([1; 16])).is_none());
        assert_eq!(store.bytes(), one);
    }

    #[test]
    fn the_byte_cap_evicts_the_oldest_first() {
        let size = record(1, 4, 1000).approx_bytes();
        let mut store = TraceStore::new(size * 3 + size / 2);
        for trace in 1..=5 {
            store.insert(record(trace, 4, 1000));
            assert!(store.bytes() <= size * 3 + size / 2);
        }
        assert_eq!(store.len(), 3);
        assert!(store.get(&TraceId([1; 16])).is_none() && store.get(&TraceId([2; 16])).is_none());
        assert!(store.get(&TraceId([5; 16])).is_some());
    }

    #[test]
    fn a_trace_larger_than_the_budget_is_not_kept() {
        let mut store = TraceStore::new(1000);
        store.insert(record(1, 4, 5000));
        assert!(store.is_empty());
        assert_eq!(store.bytes(), 0);
    }

    #[test]
    fn two_requests_of_one_trace_merge_without_repeating_spans() {
        let mut store = TraceStore::new(1 << 20);
        store.insert(record(1, 3, 10));
        let mut more = record(1, 5, 10);
        more.spans[4].span_id = SpanId([9; 8]);
        store.insert(more);
        assert_eq!(store.len(), 1);
        // Spans 0..3 of the second copy are already kept; its 4th and the renamed 5th are new.
        assert_eq!(store.get(&TraceId([1; 16])).expect("kept").spans.len(), 5);
        // A merge re-inserts: the trace is now the newest, and the cap evicts it last.
        store.retain_referenced(|_| true);
        assert_eq!(store.order.len(), 1);
    }

    #[test]
    fn long_statements_are_clipped() {
        let clipped = clip("é".repeat(2000).into(), MAX_STATEMENT_BYTES);
        assert!(clipped.len() <= MAX_STATEMENT_BYTES + '…'.len_utf8());
        assert!(clipped.ends_with('…'));
    }
}
