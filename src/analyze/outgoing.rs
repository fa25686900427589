//! Blocking outgoing calls within one request: CLIENT and PRODUCER spans that are not database
//! or cache calls (HTTP, gRPC and other RPC, messaging), grouped by the peer they call.
//!
//! For each peer: the calls, the time the request spent waiting for them (overlaps counted
//! once), and how many ran one after the other (a call that starts after the previous one to
//! the same peer ended): those could run concurrently, or move to a background job. A call
//! span nested in another call span (`requests` over `urllib3`, an RPC over its HTTP/2 call)
//! counts once, as the outer one.

use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};

use super::detection::{Category, Detection, covered_ns};
use crate::model::{CallProtocol, Span, SpanId, SpanKind};

/// Rule codes of the `blocking_outgoing_calls` category: the protocol.
pub mod rule {
    /// HTTP calls.
    pub const HTTP: &str = "http";
    /// RPC calls (`rpc.system`).
    pub const RPC: &str = "rpc";
    /// Messages sent (`messaging.system`).
    pub const MESSAGING: &str = "messaging";
}

/// An outgoing call: a CLIENT or PRODUCER span that is no DB or cache span.
pub fn is_outgoing_call(span: &Span) -> bool {
    matches!(span.kind, SpanKind::Client | SpanKind::Producer) && span.db.is_none()
}

/// The rule and the peer a call goes to: `host:port` of the URL or `server.address`, the RPC
/// service or the messaging destination; `(unknown peer)` when nothing says.
fn peer(span: &Span) -> (&'static str, String) {
    let call = span.call();
    let protocol = call.map_or(CallProtocol::Unknown, |c| c.protocol);
    let rule = match protocol {
        CallProtocol::Rpc => rule::RPC,
        CallProtocol::Messaging => rule::MESSAGING,
        CallProtocol::Unknown => rule::HTTP,
    };
    let address = call.and_then(|c| {
        let host = c.server_address.as_deref()?;
        Some(c.server_port.map_or_else(|| host.to_string(), |port| format!("{host}:{port}")))
    });
    let url_host = span.http.as_ref().and_then(|h| h.url.as_deref()).and_then(authority);
    let target = call.and_then(|c| c.target.as_deref());
    let peer = match protocol {
        CallProtocol::Unknown => url_host.map(str::to_string).or(address),
        _ => match (target, address) {
            (Some(target), Some(address)) => Some(format!("{target} at {address}")),
            (Some(target), None) => Some(target.to_string()),
            (None, address) => address,
        },
    };
    (rule, peer.unwrap_or_else(|| "(unknown peer)".to_string()))
}

/// `host:port` of a URL (`https://api.example.com:8443/v1?x` -> `api.example.com:8443`).
fn authority(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    (!authority.is_empty()).then_some(authority)
}

/// The outgoing calls among `spans`, one detection per peer, in order of first call; and the
/// time covered by all of them.
pub fn detect(spans: &[Span]) -> (Vec<Detection>, u64) {
    let calls: Vec<&Span> = spans.iter().filter(|s| is_outgoing_call(s)).collect();
    if calls.is_empty() {
        return (Vec::new(), 0);
    }
    let ids: FxHashSet<SpanId> = calls.iter().map(|s| s.span_id).collect();
    let mut outer: Vec<&Span> =
        calls.into_iter().filter(|s| s.parent_span_id.is_none_or(|p| !ids.contains(&p))).collect();
    outer.sort_by_key(|s| (s.start_ns, s.end_ns));
    let total_ns = covered_ns(outer.iter().map(|s| (s.start_ns, s.end_ns)).collect());

    let mut groups: FxHashMap<(&'static str, String), Vec<&Span>> = FxHashMap::default();
    let mut order = Vec::new();
    for span in outer {
        let key = peer(span);
        let group = groups.entry(key.clone()).or_default();
        if group.is_empty() {
            order.push(key);
        }
        group.push(span);
    }
    let found = order
        .into_iter()
        .filter_map(|key| {
            let group = groups.remove(&key)?;
            let (rule, peer) = key;
            let mut found = Detection::new(Category::BlockingOutgoingCalls, rule, peer);
            found.count = u32::try_from(group.len()).unwrap_or(u32::MAX);
            found.cost_ns = covered_ns(group.iter().map(|s| (s.start_ns, s.end_ns)).collect());
            found.figure = sequential_calls(&group);
            found.system = group[0].call().and_then(|c| c.system.as_deref()).map(Arc::from);
            found.example = group[0].http.as_ref().and_then(|h| h.url.clone()).or_else(|| Some(group[0].name.clone()));
            found.code_location =
                group.iter().find_map(|s| s.code().and_then(|c| c.location())).map(String::into_boxed_str);
            Some(found)
        })
        .collect();
    (found, total_ns)
}

/// Calls (sorted by start) that started after the previous one ended, plus the first of such a
/// chain: the calls that waited for each other. 0 when all ran concurrently or there is one.
fn sequential_calls(calls: &[&Span]) -> u64 {
    let mut sequential = 0u64;
    let mut latest_end = None;
    for call in calls {
        if let Some(end) = latest_end
            && call.start_ns >= end
        {
            sequential += if sequential == 0 { 2 } else { 1 };
        }
        latest_end = Some(latest_end.map_or(call.end_ns, |end: u64| end.max(call.end_ns)));
    }
    sequential
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::model::{CallAttrs, HttpAttrs, SpanExtra};

    /// A CLIENT HTTP span as opentelemetry-instrumentation-requests/urllib makes it.
    fn http_call(id: u8, parent: u8, url: &str, start_ms: u64, ms: u64) -> Span {
        let mut span = query(id, parent, "x", start_ms);
        span.db = None;
        span.name = "GET".into();
        span.end_ns = span.start_ns + ms * 1_000_000;
        span.http = Some(Box::new(HttpAttrs {
            method: Some("GET".into()),
            url: Some(url.into()),
            status_code: Some(200),
            ..Default::default()
        }));
        span
    }

    #[test]
    fn sequential_http_calls_to_one_peer() {
        let spans = vec![
            http_call(2, 1, "http://127.0.0.1:8765/rates?c=eur", 0, 30),
            http_call(3, 1, "http://127.0.0.1:8765/rates?c=usd", 31, 30),
            http_call(4, 1, "http://127.0.0.1:8765/rates?c=gbp", 62, 30),
        ];
        let analysis = analyze(spans);
        let found: Vec<_> =
            analysis.detections.iter().filter(|d| d.category == Category::BlockingOutgoingCalls).collect();
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].rule, &*found[0].subject), (rule::HTTP, "127.0.0.1:8765"));
        assert_eq!((found[0].count, found[0].cost_ns, found[0].figure), (3, 90_000_000, 3));
        assert_eq!(analysis.outgoing_time_ns, 90_000_000);
        assert!(analysis.queries.is_empty(), "calls are not queries");
    }

    #[test]
    fn concurrent_calls_are_not_sequential_and_nested_spans_count_once() {
        let mut inner = http_call(5, 2, "http://api.example.com/a", 1, 10);
        inner.name = "HTTP GET".into();
        let spans = vec![
            http_call(2, 1, "https://api.example.com/a", 0, 20),
            inner,
            http_call(3, 1, "https://api.example.com/b", 5, 20),
        ];
        let (found, total) = detect(&spans);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].count, found[0].figure), (2, 0));
        assert_eq!(total, 25_000_000);
    }

    #[test]
    fn grpc_and_messaging_peers() {
        let mut grpc = http_call(2, 1, "", 0, 5);
        grpc.http = None;
        grpc.extra = Some(Box::new(SpanExtra {
            code: None,
            call: Some(CallAttrs {
                protocol: CallProtocol::Rpc,
                system: Some("grpc".into()),
                server_address: Some("inventory".into()),
                server_port: Some(50051),
                target: Some("shop.Inventory".into()),
            }),
        }));
        let mut kafka = grpc.clone();
        kafka.span_id = SpanId([3; 8]);
        kafka.kind = SpanKind::Producer;
        kafka.extra = Some(Box::new(SpanExtra {
            code: None,
            call: Some(CallAttrs {
                protocol: CallProtocol::Messaging,
                system: Some("kafka".into()),
                target: Some("orders".into()),
                ..Default::default()
            }),
        }));
        let (found, _) = detect(&[grpc, kafka]);
        let peers: Vec<_> = found.iter().map(|d| (d.rule, &*d.subject, d.system.as_deref())).collect();
        assert_eq!(
            peers,
            [
                (rule::RPC, "shop.Inventory at inventory:50051", Some("grpc")),
                (rule::MESSAGING, "orders", Some("kafka"))
            ]
        );
    }

    #[test]
    fn authority_of_urls() {
        assert_eq!(authority("https://user:pw@api.example.com:8443/v1?x=1"), Some("api.example.com:8443"));
        assert_eq!(authority("http://127.0.0.1:9/"), Some("127.0.0.1:9"));
        assert_eq!(authority(""), None);
    }
}
