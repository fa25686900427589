//! Request assembly: collects the spans of each trace as they arrive (in any order, over any
//! number of export calls) and, once a trace has been quiet for the grace period, splits it into
//! [`Request`]s.
//!
//! A request is a request root (a SERVER span, or a local root: no parent, or a parent marked
//! remote, that is not itself a DB or CLIENT call) with every span below it at any depth, up to
//! the next request root. Spans whose parent never arrived are attached to the only request root
//! of their service when there is exactly one; otherwise they are reported as orphans.
//!
//! Deadlines: the grace period is the same for every trace, so deadlines are pushed in
//! non-decreasing order and a FIFO queue serves as the timer (stale entries are skipped). A trace
//! without any request root waits up to `root_wait` for one. Bounds on pending traces, total
//! pending spans and spans per trace keep memory flat: the oldest traces are closed early, and
//! spans past the per-trace cap are dropped and counted.

pub mod skew;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustc_hash::{FxHashMap, FxHashSet};

use crate::model::{Request, Service, Span, SpanId, SpanKind, TraceId};

/// Assembly limits and timings.
#[derive(Debug, Clone)]
pub struct AssemblyConfig {
    /// Quiet time after the last span of a trace before it is closed.
    pub grace: Duration,
    /// How long a trace without any request root waits for one.
    pub root_wait: Duration,
    /// Most traces pending at once.
    pub max_pending_traces: usize,
    /// Most spans pending at once, over all traces.
    pub max_pending_spans: usize,
    /// Most spans kept for one trace.
    pub max_spans_per_trace: usize,
    /// Most memory held by pending spans, approximately ([`Span::approx_bytes`]).
    pub max_pending_bytes: usize,
}

impl Default for AssemblyConfig {
    fn default() -> Self {
        AssemblyConfig {
            grace: Duration::from_secs(2),
            root_wait: Duration::from_secs(30),
            max_pending_traces: 100_000,
            max_pending_spans: 2_000_000,
            max_spans_per_trace: 20_000,
            max_pending_bytes: 1 << 30,
        }
    }
}

/// What closing traces produced, besides requests.
#[derive(Debug, Default)]
pub struct AssemblyOutput {
    /// Complete requests.
    pub requests: Vec<Request>,
    /// Spans whose parent never arrived and that belong to no request, per service.
    pub orphans: Vec<(Arc<Service>, u64)>,
    /// Spans that arrived after their trace had been closed (and so formed no request).
    pub late_spans: u64,
    /// Spans dropped by the per-trace cap.
    pub dropped_spans: u64,
    /// Spans received a second time (same trace and span id), dropped.
    pub duplicate_spans: u64,
    /// Traces closed with spans that belong to no request.
    pub incomplete_traces: u64,
    /// Traces closed early because a bound was reached.
    pub evicted_traces: u64,
    /// DB spans found outside any request (startup queries, scripts), per service.
    pub queries_outside_requests: Vec<(Arc<Service>, u64)>,
    /// Parent/child pairs across services whose timing shows the clocks disagree.
    pub clock_skew: Vec<skew::ClockSkew>,
}

struct PendingTrace {
    spans: Vec<Span>,
    first_seen: Instant,
    last_seen: Instant,
    has_request_root: bool,
    /// Summed [`Span::approx_bytes`] of `spans`.
    bytes: usize,
}

/// Trace ids closed recently, to tell late spans from orphans.
struct RecentlyClosed {
    set: FxHashSet<TraceId>,
    order: VecDeque<TraceId>,
    capacity: usize,
}

impl RecentlyClosed {
    fn new(capacity: usize) -> Self {
        RecentlyClosed { set: FxHashSet::default(), order: VecDeque::new(), capacity }
    }

    fn insert(&mut self, id: TraceId) {
        if self.set.insert(id) {
            self.order.push_back(id);
            if self.order.len() > self.capacity
                && let Some(old) = self.order.pop_front()
            {
                self.set.remove(&old);
            }
        }
    }

    fn contains(&self, id: &TraceId) -> bool {
        self.set.contains(id)
    }
}

/// Pending traces and their deadlines. Owned by the aggregator task: no locks.
pub struct Assembler {
    config: AssemblyConfig,
    pending: FxHashMap<TraceId, PendingTrace>,
    /// (deadline, trace): non-decreasing deadlines; entries may be stale.
    deadlines: VecDeque<(Instant, TraceId)>,
    pending_spans: usize,
    pending_bytes: usize,
    closed: RecentlyClosed,
}

impl Assembler {
    /// An empty assembler.
    pub fn new(config: AssemblyConfig) -> Self {
        let closed_capacity = config.max_pending_traces.max(1024);
        Assembler {
            config,
            pending: FxHashMap::default(),
            deadlines: VecDeque::new(),
            pending_spans: 0,
            pending_bytes: 0,
            closed: RecentlyClosed::new(closed_capacity),
        }
    }

    /// Traces waiting to be closed.
    pub fn pending_traces(&self) -> usize {
        self.pending.len()
    }

    /// Spans waiting in pending traces.
    pub fn pending_spans(&self) -> usize {
        self.pending_spans
    }

    /// Adds the spans of one batch, all received at `now`.
    pub fn add_batch(&mut self, spans: Vec<Span>, now: Instant, out: &mut AssemblyOutput) {
        for span in spans {
            self.add(span, now, out);
        }
        self.enforce_bounds(out);
    }

    fn add(&mut self, span: Span, now: Instant, out: &mut AssemblyOutput) {
        let trace_id = span.trace_id;
        let grace = self.config.grace;
        let trace = self.pending.entry(trace_id).or_insert_with(|| PendingTrace {
            spans: Vec::new(),
            first_seen: now,
            last_seen: now,
            has_request_root: false,
            bytes: 0,
        });
        if trace.spans.is_empty() || trace.last_seen != now {
            trace.last_seen = now;
            self.deadlines.push_back((now + grace, trace_id));
        }
        if trace.spans.len() >= self.config.max_spans_per_trace {
            out.dropped_spans += 1;
            return;
        }
        trace.has_request_root |= is_request_root(&span);
        let bytes = span.approx_bytes();
        trace.bytes += bytes;
        self.pending_bytes += bytes;
        trace.spans.push(span);
        self.pending_spans += 1;
    }

    fn enforce_bounds(&mut self, out: &mut AssemblyOutput) {
        while self.pending.len() > self.config.max_pending_traces
            || self.pending_spans > self.config.max_pending_spans
            || self.pending_bytes > self.config.max_pending_bytes
        {
            let Some((_, trace_id)) = self.deadlines.pop_front() else { break };
            if self.pending.contains_key(&trace_id) {
                out.evicted_traces += 1;
                self.close(trace_id, out);
            }
        }
    }

    /// Closes every trace whose grace period has passed by `now`.
    pub fn expire(&mut self, now: Instant, out: &mut AssemblyOutput) {
        while let Some(&(deadline, trace_id)) = self.deadlines.front() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_front();
            let Some(trace) = self.pending.get(&trace_id) else { continue };
            if trace.last_seen + self.config.grace > now {
                continue; // a newer deadline entry exists for this trace
            }
            if !trace.has_request_root && now.duration_since(trace.first_seen) < self.config.root_wait {
                // Keep waiting for the root; check again one grace period later.
                self.deadlines.push_back((now + self.config.grace, trace_id));
                continue;
            }
            self.close(trace_id, out);
        }
    }

    /// Closes every pending trace (at shutdown).
    pub fn flush(&mut self, out: &mut AssemblyOutput) {
        let ids: Vec<TraceId> = self.deadlines.drain(..).map(|(_, id)| id).collect();
        for id in ids {
            if self.pending.contains_key(&id) {
                self.close(id, out);
            }
        }
        let rest: Vec<TraceId> = self.pending.keys().copied().collect();
        for id in rest {
            self.close(id, out);
        }
    }

    fn close(&mut self, trace_id: TraceId, out: &mut AssemblyOutput) {
        let Some(trace) = self.pending.remove(&trace_id) else { return };
        self.pending_spans -= trace.spans.len();
        self.pending_bytes -= trace.bytes;
        let was_closed_before = self.closed.contains(&trace_id);
        self.closed.insert(trace_id);
        split_into_requests(trace.spans, was_closed_before, out);
    }
}

/// Whether a span starts a request.
pub fn is_request_root(span: &Span) -> bool {
    match span.kind {
        SpanKind::Server => true,
        SpanKind::Client | SpanKind::Producer => false,
        SpanKind::Internal | SpanKind::Consumer => {
            (span.parent_span_id.is_none() || span.parent_is_remote) && span.db.is_none()
        }
    }
}

/// Who a span belongs to while splitting.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Owner {
    Unknown,
    Visiting,
    Root(usize),
    /// The chain ends at a parent that never arrived.
    Orphan,
}

/// Drops spans received twice (an SDK re-sends an export whose answer it did not get; the OTLP
/// spec warns of such duplicates). The first copy of each span id is kept.
fn without_duplicate_spans(spans: Vec<Span>, out: &mut AssemblyOutput) -> Vec<Span> {
    let mut seen: FxHashSet<SpanId> = FxHashSet::default();
    seen.reserve(spans.len());
    let before = spans.len();
    let unique: Vec<Span> = spans.into_iter().filter(|s| seen.insert(s.span_id)).collect();
    out.duplicate_spans += (before - unique.len()) as u64;
    unique
}

/// Splits a closed trace's spans into requests; reports spans that belong to none.
fn split_into_requests(spans: Vec<Span>, was_closed_before: bool, out: &mut AssemblyOutput) {
    let spans = without_duplicate_spans(spans, out);
    let index: FxHashMap<SpanId, usize> = spans.iter().enumerate().map(|(i, s)| (s.span_id, i)).collect();
    for span in spans.iter().filter(|s| s.kind == SpanKind::Server) {
        if let Some(&parent) = span.parent_span_id.as_ref().and_then(|p| index.get(p))
            && let Some(found) = skew::pair_skew(&spans[parent], span)
        {
            out.clock_skew.push(found);
        }
    }
    let mut owner = vec![Owner::Unknown; spans.len()];
    let mut roots: Vec<usize> = Vec::new();
    for (i, span) in spans.iter().enumerate() {
        if is_request_root(span) {
            owner[i] = Owner::Root(roots.len());
            roots.push(i);
        }
    }
    let mut chain = Vec::new();
    for start in 0..spans.len() {
        if owner[start] != Owner::Unknown {
            continue;
        }
        // Walk up until a span whose owner is known, then assign it down the chain.
        chain.clear();
        let mut current = start;
        let found = loop {
            match owner[current] {
                Owner::Unknown => {
                    owner[current] = Owner::Visiting;
                    chain.push(current);
                    match spans[current].parent_span_id.and_then(|p| index.get(&p)) {
                        Some(&parent) => current = parent,
                        None => break Owner::Orphan,
                    }
                }
                Owner::Visiting => break Owner::Orphan, // a cycle: malformed input
                known => break known,
            }
        };
        for &i in &chain {
            owner[i] = found;
        }
    }

    // Orphans join the only request root of their service, if there is exactly one.
    let mut sole_root_of_service: FxHashMap<&str, Option<usize>> = FxHashMap::default();
    for (r, &i) in roots.iter().enumerate() {
        sole_root_of_service.entry(&spans[i].service.name).and_modify(|slot| *slot = None).or_insert(Some(r));
    }
    let mut orphan_counts: FxHashMap<Arc<str>, (Arc<Service>, u64)> = FxHashMap::default();
    let mut outside_queries: FxHashMap<Arc<str>, (Arc<Service>, u64)> = FxHashMap::default();
    for (i, span) in spans.iter().enumerate() {
        if owner[i] != Owner::Orphan {
            continue;
        }
        if let Some(Some(r)) = sole_root_of_service.get(&*span.service.name) {
            owner[i] = Owner::Root(*r);
            continue;
        }
        let orphan_is_a_lone_root = span.parent_span_id.is_none() || span.parent_is_remote;
        if orphan_is_a_lone_root && span.db.is_some() {
            // A DB call with no request around it (app start-up, a script): not an orphan.
            outside_queries
                .entry(Arc::clone(&span.service.name))
                .or_insert_with(|| (Arc::clone(&span.service), 0))
                .1 += u64::from(span.is_query());
            continue;
        }
        orphan_counts.entry(Arc::clone(&span.service.name)).or_insert_with(|| (Arc::clone(&span.service), 0)).1 += 1;
    }
    let orphaned: u64 = orphan_counts.values().map(|(_, n)| *n).sum();
    if orphaned > 0 {
        if was_closed_before {
            out.late_spans += orphaned;
        } else {
            out.incomplete_traces += 1;
            out.orphans.extend(orphan_counts.into_values());
        }
    }
    out.queries_outside_requests.extend(outside_queries.into_values().filter(|(_, n)| *n > 0));

    let mut members: Vec<Vec<Span>> = (0..roots.len()).map(|_| Vec::new()).collect();
    let mut root_spans: Vec<Option<Span>> = (0..roots.len()).map(|_| None).collect();
    let root_slot: FxHashMap<usize, usize> = roots.iter().enumerate().map(|(r, &i)| (i, r)).collect();
    for (i, span) in spans.into_iter().enumerate() {
        if let Some(&r) = root_slot.get(&i) {
            root_spans[r] = Some(span);
        } else if let Owner::Root(r) = owner[i] {
            members[r].push(span);
        }
    }
    for (root, spans) in root_spans.into_iter().zip(members) {
        if let Some(root) = root {
            out.requests.push(Request { root, spans });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DbAttrs, SpanId};

    fn service(name: &str) -> Arc<Service> {
        Arc::new(Service { name: Arc::from(name), language: None })
    }

    fn span(trace: u8, id: u8, parent: Option<u8>, kind: SpanKind, svc: &Arc<Service>) -> Span {
        Span {
            trace_id: TraceId([trace; 16]),
            span_id: SpanId([id; 8]),
            parent_span_id: parent.map(|p| SpanId([p; 8])),
            parent_is_remote: false,
            service: Arc::clone(svc),
            name: "s".into(),
            kind,
            start_ns: 0,
            end_ns: 10,
            is_error: false,
            http: None,
            db: None,
            extra: None,
        }
    }

    fn query(trace: u8, id: u8, parent: u8, svc: &Arc<Service>) -> Span {
        let mut s = span(trace, id, Some(parent), SpanKind::Client, svc);
        s.db = Some(Box::new(DbAttrs {
            system: Arc::from("sqlite"),
            statement: Some("SELECT 1".into()),
            ..Default::default()
        }));
        s
    }

    fn config(grace_ms: u64) -> AssemblyConfig {
        AssemblyConfig {
            grace: Duration::from_millis(grace_ms),
            root_wait: Duration::from_millis(grace_ms * 5),
            ..Default::default()
        }
    }

    #[test]
    fn children_before_parent_over_several_batches_make_one_request() {
        let svc = service("web");
        let mut asm = Assembler::new(config(100));
        let mut out = AssemblyOutput::default();
        let t0 = Instant::now();
        // Deep chain: server 1 <- handler 2 <- query 3, query 4 under 1.
        asm.add_batch(vec![query(1, 3, 2, &svc)], t0, &mut out);
        asm.add_batch(
            vec![query(1, 4, 1, &svc), span(1, 2, Some(1), SpanKind::Internal, &svc)],
            t0 + Duration::from_millis(50),
            &mut out,
        );
        asm.add_batch(vec![span(1, 1, None, SpanKind::Server, &svc)], t0 + Duration::from_millis(90), &mut out);
        asm.expire(t0 + Duration::from_millis(150), &mut out);
        assert!(out.requests.is_empty(), "grace restarts with each new span");
        asm.expire(t0 + Duration::from_millis(200), &mut out);
        assert_eq!(out.requests.len(), 1);
        assert_eq!(out.requests[0].spans.len(), 3);
        assert_eq!(asm.pending_traces(), 0);
        assert_eq!(asm.pending_spans(), 0);
    }

    #[test]
    fn nested_server_span_starts_its_own_request() {
        let front = service("front");
        let back = service("back");
        let mut asm = Assembler::new(config(10));
        let mut out = AssemblyOutput::default();
        let mut call = span(1, 2, Some(1), SpanKind::Client, &front);
        call.parent_span_id = Some(SpanId([1; 8]));
        let mut backend = span(1, 3, Some(2), SpanKind::Server, &back);
        backend.parent_is_remote = true;
        asm.add_batch(
            vec![span(1, 1, None, SpanKind::Server, &front), call, backend, query(1, 4, 3, &back)],
            Instant::now(),
            &mut out,
        );
        asm.flush(&mut out);
        assert_eq!(out.requests.len(), 2);
        let back_request = out.requests.iter().find(|r| &*r.root.service.name == "back").expect("back request");
        assert_eq!(back_request.spans.len(), 1);
        assert!(back_request.spans[0].is_query());
    }

    #[test]
    fn trace_without_root_waits_then_counts_as_incomplete() {
        let svc = service("web");
        let mut asm = Assembler::new(config(10));
        let mut out = AssemblyOutput::default();
        let t0 = Instant::now();
        asm.add_batch(vec![query(1, 3, 9, &svc)], t0, &mut out);
        asm.expire(t0 + Duration::from_millis(20), &mut out);
        assert_eq!(asm.pending_traces(), 1, "waits for a root up to root_wait");
        asm.expire(t0 + Duration::from_millis(100), &mut out);
        assert_eq!(asm.pending_traces(), 0);
        assert_eq!(out.incomplete_traces, 1);
        assert_eq!(out.orphans.len(), 1);
        assert_eq!(out.orphans[0].1, 1);
    }

    #[test]
    fn orphan_joins_the_only_root_of_its_service() {
        let svc = service("web");
        let mut asm = Assembler::new(config(10));
        let mut out = AssemblyOutput::default();
        // Query 3's parent (span 2) never arrives.
        asm.add_batch(vec![span(1, 1, None, SpanKind::Server, &svc), query(1, 3, 2, &svc)], Instant::now(), &mut out);
        asm.flush(&mut out);
        assert_eq!(out.requests.len(), 1);
        assert_eq!(out.requests[0].spans.len(), 1);
        assert_eq!(out.incomplete_traces, 0);
    }

    #[test]
    fn parentless_query_is_outside_requests_not_an_orphan() {
        let svc = service("web");
        let mut asm = Assembler::new(config(10));
        let mut out = AssemblyOutput::default();
        let mut q = query(1, 1, 0, &svc);
        q.parent_span_id = None;
        asm.add_batch(vec![q], Instant::now(), &mut out);
        asm.flush(&mut out);
        assert!(out.requests.is_empty());
        assert_eq!(out.incomplete_traces, 0);
        assert_eq!(out.queries_outside_requests.len(), 1);
    }

    #[test]
    fn bounds_close_oldest_traces_and_cap_spans_per_trace() {
        let svc = service("web");
        let mut asm = Assembler::new(AssemblyConfig { max_pending_traces: 2, max_spans_per_trace: 3, ..config(1000) });
        let mut out = AssemblyOutput::default();
        let now = Instant::now();
        for t in 1..=3 {
            asm.add_batch(vec![span(t, 1, None, SpanKind::Server, &svc)], now, &mut out);
        }
        assert_eq!(asm.pending_traces(), 2);
        assert_eq!(out.evicted_traces, 1);
        assert_eq!(out.requests.len(), 1);
        let many: Vec<Span> = (10..20).map(|i| query(3, i, 1, &svc)).collect();
        asm.add_batch(many, now, &mut out);
        assert_eq!(out.dropped_spans, 8);
    }

    #[test]
    fn a_resent_export_does_not_count_twice() {
        let svc = service("web");
        let mut asm = Assembler::new(config(10));
        let mut out = AssemblyOutput::default();
        let export = vec![span(1, 1, None, SpanKind::Server, &svc), query(1, 2, 1, &svc), query(1, 3, 1, &svc)];
        asm.add_batch(export.clone(), Instant::now(), &mut out);
        asm.add_batch(export, Instant::now(), &mut out);
        asm.flush(&mut out);
        assert_eq!(out.requests.len(), 1);
        assert_eq!(out.requests[0].spans.len(), 2);
        assert_eq!(out.duplicate_spans, 3);
    }

    #[test]
    fn pending_bytes_are_bounded_by_closing_the_oldest_traces() {
        let svc = service("web");
        let mut asm = Assembler::new(AssemblyConfig { max_pending_bytes: 64 * 1024, ..config(1000) });
        let mut out = AssemblyOutput::default();
        for t in 1..=10u8 {
            let mut q = query(t, 2, 1, &svc);
            q.db.as_mut().expect("db").statement = Some("x".repeat(20 * 1024).into());
            asm.add_batch(vec![span(t, 1, None, SpanKind::Server, &svc), q], Instant::now(), &mut out);
        }
        assert!(asm.pending_traces() <= 3, "{} traces pending", asm.pending_traces());
        assert_eq!(out.evicted_traces as usize + asm.pending_traces(), 10);
        asm.flush(&mut out);
        assert_eq!(out.requests.len(), 10, "evicted traces are analyzed, not lost");
        assert_eq!(asm.pending_spans(), 0);
    }

    #[test]
    fn span_arriving_after_its_trace_closed_is_late() {
        let svc = service("web");
        let mut asm = Assembler::new(config(10));
        let mut out = AssemblyOutput::default();
        asm.add_batch(vec![span(1, 1, None, SpanKind::Server, &svc)], Instant::now(), &mut out);
        asm.flush(&mut out);
        asm.add_batch(vec![query(1, 5, 4, &svc)], Instant::now(), &mut out);
        asm.flush(&mut out);
        assert_eq!(out.late_spans, 1);
        assert_eq!(out.incomplete_traces, 0);
    }

    #[test]
    fn parent_cycle_does_not_hang() {
        let svc = service("web");
        let mut asm = Assembler::new(config(10));
        let mut out = AssemblyOutput::default();
        asm.add_batch(
            vec![span(1, 1, Some(2), SpanKind::Internal, &svc), span(1, 2, Some(1), SpanKind::Internal, &svc)],
            Instant::now(),
            &mut out,
        );
        asm.flush(&mut out);
        assert!(out.requests.is_empty());
        assert_eq!(out.incomplete_traces, 1);
    }

    mod order {
        use super::*;
        use proptest::prelude::*;

        /// Three traces, each a server span over a handler over queries, plus a nested service.
        fn traces() -> Vec<Span> {
            let web = service("web");
            let back = service("back");
            let mut spans = Vec::new();
            for t in 1..=3u8 {
                spans.push(span(t, 1, None, SpanKind::Server, &web));
                spans.push(span(t, 2, Some(1), SpanKind::Internal, &web));
                for q in 0..4u8 {
                    spans.push(query(t, 10 + q, 2, &web));
                }
                let mut downstream = span(t, 3, Some(2), SpanKind::Server, &back);
                downstream.parent_is_remote = true;
                spans.push(downstream);
                spans.push(query(t, 20, 3, &back));
            }
            spans
        }

        fn summary(out: &AssemblyOutput) -> Vec<(TraceId, SpanId, usize)> {
            let mut rows: Vec<_> =
                out.requests.iter().map(|r| (r.root.trace_id, r.root.span_id, r.spans.len())).collect();
            rows.sort();
            rows
        }

        proptest! {
            #[test]
            fn any_arrival_order_and_batching_gives_the_same_requests(
                order in Just(traces()).prop_shuffle(),
                cuts in proptest::collection::vec(0usize..20, 0..6),
            ) {
                let mut expected_out = AssemblyOutput::default();
                let mut reference = Assembler::new(config(10));
                reference.add_batch(traces(), Instant::now(), &mut expected_out);
                reference.flush(&mut expected_out);

                let mut asm = Assembler::new(config(10));
                let mut out = AssemblyOutput::default();
                let start = Instant::now();
                let mut rest = order;
                let mut cuts = cuts;
                cuts.sort();
                let mut taken = 0;
                for (i, cut) in cuts.into_iter().enumerate() {
                    let at = cut.saturating_sub(taken).min(rest.len());
                    let tail = rest.split_off(at);
                    taken += rest.len();
                    asm.add_batch(std::mem::replace(&mut rest, tail), start + Duration::from_millis(i as u64), &mut out);
                }
                asm.add_batch(rest, start + Duration::from_millis(9), &mut out);
                asm.expire(start + Duration::from_millis(40), &mut out);
                prop_assert_eq!(asm.pending_traces(), 0);
                prop_assert_eq!(summary(&out), summary(&expected_out));
                prop_assert_eq!(out.incomplete_traces, 0);
                prop_assert_eq!(out.requests.len(), 6);
            }
        }
    }
}
