//! Clock skew between services, seen in a closed trace: a SERVER span of one service whose parent
//! (the call that caused it) belongs to another service must lie inside that parent in time. When
//! it starts before its parent, or ends after it while being no longer than it, by more than
//! [`TOLERANCE_NS`], the two hosts' clocks disagree.
//!
//! The offset is estimated the way NTP does for one exchange: with the request and the answer
//! taking about as long on the network, the child's midpoint is the parent's midpoint on a
//! correct clock, so `child midpoint - parent midpoint` is how far the child's clock is ahead.
//!
//! A child longer than its parent that ends after it is a caller that gave up (a timeout), not
//! skew; a child of a PRODUCER span is asynchronous work that may run any time later. Neither is
//! counted.

use std::sync::Arc;

use crate::model::{Service, Span, SpanKind};

/// How far a child may stick out of its parent before it counts as skew: smaller skews distort
/// a waterfall by less than a typical query takes.
pub const TOLERANCE_NS: u64 = 5_000_000;

/// One parent/child pair whose timing shows the two services' clocks disagree.
#[derive(Debug, Clone)]
pub struct ClockSkew {
    /// The calling service.
    pub parent_service: Arc<Service>,
    /// The called service, whose clock is off relative to the caller's.
    pub child_service: Arc<Service>,
    /// How far the child's clock is ahead of the parent's, nanoseconds (negative: behind).
    pub offset_ns: i64,
}

/// The skew a parent/child pair shows, if any.
pub fn pair_skew(parent: &Span, child: &Span) -> Option<ClockSkew> {
    if child.kind != SpanKind::Server
        || parent.kind == SpanKind::Producer
        || Arc::ptr_eq(&parent.service, &child.service)
        || parent.service.name == child.service.name
    {
        return None;
    }
    let starts_early = parent.start_ns.saturating_sub(child.start_ns) > TOLERANCE_NS;
    let ends_late =
        child.end_ns.saturating_sub(parent.end_ns) > TOLERANCE_NS && child.duration_ns() <= parent.duration_ns();
    if !starts_early && !ends_late {
        return None;
    }
    let midpoint = |span: &Span| i128::from(span.start_ns) + i128::from(span.duration_ns() / 2);
    let offset = midpoint(child) - midpoint(parent);
    Some(ClockSkew {
        parent_service: Arc::clone(&parent.service),
        child_service: Arc::clone(&child.service),
        offset_ns: i64::try_from(offset).unwrap_or(if offset < 0 { i64::MIN } else { i64::MAX }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SpanId, TraceId};
    use rstest::rstest;

    const MS: u64 = 1_000_000;

    fn span(service: &str, kind: SpanKind, start_ms: u64, end_ms: u64) -> Span {
        Span {
            trace_id: TraceId([1; 16]),
            span_id: SpanId([1; 8]),
            parent_span_id: None,
            parent_is_remote: false,
            service: Arc::new(Service { name: Arc::from(service), language: None }),
            name: "call".into(),
            kind,
            start_ns: start_ms * MS,
            end_ns: end_ms * MS,
            is_error: false,
            http: None,
            db: None,
            extra: None,
        }
    }

    #[rstest]
    // A 100 ms call from web; the API's server span is 80 ms.
    #[case::inside(span("api", SpanKind::Server, 1_010, 1_090), None)]
    #[case::within_tolerance(span("api", SpanKind::Server, 996, 1_076), None)]
    #[case::api_clock_behind(span("api", SpanKind::Server, 900, 980), Some(-110))]
    #[case::api_clock_ahead(span("api", SpanKind::Server, 1_200, 1_280), Some(190))]
    #[case::caller_timed_out(span("api", SpanKind::Server, 1_010, 1_300), None)]
    #[case::same_service(span("web", SpanKind::Server, 900, 980), None)]
    #[case::not_a_server_child(span("api", SpanKind::Internal, 900, 980), None)]
    fn pairs(#[case] child: Span, #[case] offset_ms: Option<i64>) {
        let parent = span("web", SpanKind::Client, 1_000, 1_100);
        let found = pair_skew(&parent, &child).map(|skew| skew.offset_ns / MS as i64);
        assert_eq!(found, offset_ms);
    }

    #[test]
    fn producer_children_run_later_by_design() {
        let parent = span("web", SpanKind::Producer, 1_000, 1_001);
        assert!(pair_skew(&parent, &span("worker", SpanKind::Server, 5_000, 5_100)).is_none());
    }
}
