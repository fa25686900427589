//! Cache calls within one request: spans of Redis and Memcached clients (`db.system` `redis`,
//! `memcached`, `valkey`). Their statement is a command (`GET user:7`), never SQL: they are no
//! queries and take no part in the query counts or the N+1 and duplicate detectors.
//!
//! Two findings: many cache calls in one request (at least [`CACHE_CALLS_MIN`], or at least
//! [`CACHE_SHARE_MIN`] of the request's time), and the same key read more than once (an N+1 on
//! the cache: keep the value for the rest of the request, or read keys together with `MGET` /
//! `get_many`). A key the instrumentation hid (`GET ?`) proves nothing and is never compared.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::detection::{Category, Detection, covered_ns};
use crate::model::Span;

/// Cache calls in one request that make a finding.
pub const CACHE_CALLS_MIN: u32 = 10;
/// Share of the request's time in cache calls that makes a finding.
pub const CACHE_SHARE_MIN: f64 = 0.2;

/// Commands that read one key.
const READS: [&str; 8] = ["get", "gets", "hget", "hgetall", "exists", "smembers", "lrange", "zrange"];

/// The command and key of a cache statement (`GET user:7` -> `("GET", Some("user:7"))`).
fn command_and_key(statement: &str) -> (&str, Option<&str>) {
    let mut words = statement.split_whitespace();
    let command = words.next().unwrap_or_default();
    let key = words.next().filter(|key| *key != "?" && !key.is_empty());
    (command, key)
}

/// The cache findings of a request lasting `request_ns`.
pub fn detect(spans: &[Span], request_ns: u64) -> Vec<Detection> {
    let calls: Vec<&Span> = spans.iter().filter(|s| s.is_cache_call()).collect();
    if calls.is_empty() {
        return Vec::new();
    }
    let mut found = Vec::new();
    let time_ns = covered_ns(calls.iter().map(|s| (s.start_ns, s.end_ns)).collect());
    let count = u32::try_from(calls.len()).unwrap_or(u32::MAX);
    let system = calls[0].db.as_ref().map(|db| Arc::clone(&db.system));
    let share = if request_ns == 0 { 0.0 } else { time_ns as f64 / request_ns as f64 };
    if count >= CACHE_CALLS_MIN || share >= CACHE_SHARE_MIN {
        let mut many = Detection::new(Category::CacheCalls, "", system.as_deref().unwrap_or_default());
        many.count = count;
        many.cost_ns = time_ns;
        many.system = system.clone();
        many.example = calls[0].db.as_ref().and_then(|db| db.statement.clone());
        many.code_location = calls.iter().find_map(|s| s.code().and_then(|c| c.location())).map(String::into_boxed_str);
        found.push(many);
    }

    let mut reads: FxHashMap<&str, Vec<&Span>> = FxHashMap::default();
    let mut order = Vec::new();
    for span in &calls {
        let Some(statement) = span.db.as_ref().and_then(|db| db.statement.as_deref()) else { continue };
        let (command, key) = command_and_key(statement);
        if key.is_none() || !READS.iter().any(|read| command.eq_ignore_ascii_case(read)) {
            continue;
        }
        let group = reads.entry(statement).or_default();
        if group.is_empty() {
            order.push(statement);
        }
        group.push(span);
    }
    for statement in order {
        let Some(group) = reads.get(statement).filter(|g| g.len() >= 2) else { continue };
        let (_, key) = command_and_key(statement);
        let mut repeated = Detection::new(Category::RepeatedCacheGet, "", key.unwrap_or_default());
        repeated.count = u32::try_from(group.len()).unwrap_or(u32::MAX);
        repeated.cost_ns = group.iter().skip(1).map(|s| s.duration_ns()).sum();
        repeated.system = system.clone();
        repeated.example = Some(statement.into());
        repeated.code_location =
            group.iter().find_map(|s| s.code().and_then(|c| c.location())).map(String::into_boxed_str);
        found.push(repeated);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::model::SpanKind;

    /// A redis-py / ioredis client span.
    fn redis(id: u8, statement: &str, start_ms: u64) -> Span {
        let mut span = query(id, 1, statement, start_ms);
        span.name = statement.split(' ').next().unwrap_or_default().into();
        span.kind = SpanKind::Client;
        span.db.as_mut().expect("db").system = Arc::from("redis");
        span
    }

    #[test]
    fn cache_commands_are_not_queries() {
        let analysis = analyze(vec![
            redis(2, "GET session:1", 0),
            redis(3, "GET session:1", 2),
            redis(4, "GET user:1", 4),
            redis(5, "GET user:2", 6),
            redis(6, "GET user:3", 8),
            redis(7, "GET user:4", 10),
            query(8, 1, "SELECT 1", 12),
        ]);
        assert_eq!(analysis.queries.len(), 1, "only the SQL statement is a query");
        assert!(analysis.n_plus_one.is_empty() && analysis.duplicates.is_empty());
        assert_eq!(analysis.connection_spans, 0);
        let repeated: Vec<_> =
            analysis.detections.iter().filter(|d| d.category == Category::RepeatedCacheGet).collect();
        assert_eq!(repeated.len(), 1);
        assert_eq!((&*repeated[0].subject, repeated[0].count, repeated[0].cost_ns), ("session:1", 2, 1_000_000));
    }

    #[test]
    fn many_calls_or_a_large_share_make_a_finding() {
        let many: Vec<Span> = (0..10u8).map(|i| redis(2 + i, &format!("GET k{i}"), u64::from(i) * 2)).collect();
        let found = detect(&many, 100_000_000);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].category, found[0].count, found[0].cost_ns), (Category::CacheCalls, 10, 10_000_000));
        // Three 1 ms calls in a 10 ms request: 30 % of its time.
        let few: Vec<Span> = (0..3u8).map(|i| redis(2 + i, &format!("GET k{i}"), u64::from(i) * 2)).collect();
        assert_eq!(detect(&few, 10_000_000).len(), 1);
        assert!(detect(&few, 100_000_000).is_empty());
    }

    #[test]
    fn hidden_keys_and_writes_are_never_compared() {
        let spans = vec![redis(2, "GET ?", 0), redis(3, "GET ?", 2), redis(4, "SET k v", 4), redis(5, "SET k v", 6)];
        assert!(detect(&spans, 100_000_000).is_empty());
    }
}
