//! Connection churn within one request: spans that open a new database connection (`pg.connect`
//! of node-postgres, `mysql.connect`, a driver's `connect` span). A new connection on every
//! request points to missing pooling or persistent connections. A checkout from a pool
//! (`pg-pool.connect`, `pool.acquire`, ...) is no new connection, is cheap, and never counts;
//! nor does a connect in a request that checks out of a pool: that is the pool growing.

use std::sync::Arc;

use super::detection::{Category, Detection};
use crate::model::Span;

/// A DB span without statement that takes a connection from a pool (`pg-pool.connect`,
/// `pool.acquire`, `HikariPool.getConnection`).
pub fn is_pool_checkout(span: &Span) -> bool {
    span.is_db_without_statement()
        && ["pool", "acquire", "checkout", "getconnection"].iter().any(|word| contains_ignore_case(&span.name, word))
}

/// `haystack` contains `needle` (lower case ASCII), ignoring ASCII case, without allocating.
fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    haystack.as_bytes().windows(needle.len()).any(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
}

fn ends_with_ignore_case(haystack: &str, suffix: &str) -> bool {
    haystack.len() >= suffix.len()
        && haystack.as_bytes()[haystack.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
}

/// A span that opens a new database connection: a DB span without statement whose name is a
/// driver's connect, and no pool checkout.
pub fn is_new_connection(span: &Span) -> bool {
    if !span.is_db_without_statement() || is_pool_checkout(span) {
        return false;
    }
    let name = &*span.name;
    name.eq_ignore_ascii_case("connect")
        || ends_with_ignore_case(name, ".connect")
        || ends_with_ignore_case(name, " connect")
        || ends_with_ignore_case(name, ".createconnection")
}

/// The new-connection spans among `spans`, as one detection; none when the request uses a pool.
pub fn detect(spans: &[Span]) -> Vec<Detection> {
    if spans.iter().any(is_pool_checkout) {
        return Vec::new();
    }
    let connects: Vec<&Span> = spans.iter().filter(|s| is_new_connection(s)).collect();
    let Some(first) = connects.first() else { return Vec::new() };
    let system = first.db.as_ref().map(|db| Arc::clone(&db.system));
    let mut found = Detection::new(Category::ConnectionChurn, "", system.as_deref().unwrap_or_default());
    found.count = u32::try_from(connects.len()).unwrap_or(u32::MAX);
    found.cost_ns = connects.iter().map(|s| s.duration_ns()).sum();
    found.system = system;
    found.example = Some(first.name.clone());
    found.code_location = connects.iter().find_map(|s| s.code().and_then(|c| c.location())).map(String::into_boxed_str);
    vec![found]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    fn connect_span(id: u8, name: &str, system: &str, ms: u64) -> Span {
        let mut span = query(id, 1, "x", 0);
        span.name = name.into();
        span.end_ns = ms * 1_000_000;
        let db = span.db.as_mut().expect("db");
        db.statement = None;
        db.system = Arc::from(system);
        span
    }

    #[test]
    fn driver_connects_are_new_connections() {
        for (name, system) in [("pg.connect", "postgresql"), ("mysql.connect", "mysql"), ("connect", "postgresql")] {
            let found = detect(&[connect_span(2, name, system, 12)]);
            assert_eq!(found.len(), 1, "{name}");
            assert_eq!((found[0].count, found[0].cost_ns), (1, 12_000_000), "{name}");
        }
    }

    #[test]
    fn pool_checkouts_are_never_churn() {
        for name in ["pg-pool.connect", "pool.acquire", "HikariPool.getConnection", "mysql2 pool connect"] {
            assert!(detect(&[connect_span(2, name, "postgresql", 1)]).is_empty(), "{name}");
        }
    }

    #[test]
    fn a_pool_opening_a_connection_is_no_churn() {
        // node-postgres: pg-pool.connect, and under it pg.connect when the pool grows.
        let mut grow = connect_span(3, "pg.connect", "postgresql", 5);
        grow.parent_span_id = Some(crate::model::SpanId([2; 8]));
        assert!(detect(&[connect_span(2, "pg-pool.connect", "postgresql", 6), grow]).is_empty());
    }

    #[test]
    fn the_analysis_reports_churn_with_its_cost() {
        let analysis = analyze(vec![connect_span(2, "pg.connect", "postgresql", 8), query(3, 1, "SELECT 1", 9)]);
        let churn = analysis.detections.iter().find(|d| d.category == Category::ConnectionChurn).expect("churn");
        assert_eq!(churn.cost_ns, 8_000_000);
        assert_eq!(analysis.connection_spans, 1);
    }
}
