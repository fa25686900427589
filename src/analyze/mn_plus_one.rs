//! MN+1 within one request: a loop that runs several queries per item (A, B, A, B, ... or
//! B, R, R, B, R, R, ...) under one parent span, found as one pattern, as a sequence of 2 to
//! [`MAX_PATTERN`] queries with at least two shapes, repeated back to back at least
//! [`MIN_REPEATS`] times.
//!
//! The pattern is read from the shapes (fingerprints) of the queries of each parent, in start
//! order; where several periods match at one place, the one covering the most queries wins (the
//! shortest on a tie). A pattern's subject is its sorted set of shapes, so the same loop gives
//! the same finding whichever query of the loop the scan started at. Its cost is the time of
//! every execution of its shapes under that parent (the whole loop).

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::QueryExec;
use super::detection::{Category, Detection};
use crate::model::SpanId;

/// Longest pattern looked for.
pub const MAX_PATTERN: usize = 8;
/// Back-to-back repeats that make a pattern.
pub const MIN_REPEATS: usize = 3;

/// The repeated patterns among `queries` (in start order), and the shapes they cover.
pub fn detect(queries: &[QueryExec]) -> (Vec<Detection>, Vec<u64>) {
    let first = queries.first().map(|q| q.fingerprint.id);
    if queries.len() < 2 * MIN_REPEATS || queries.iter().all(|q| Some(q.fingerprint.id) == first) {
        return (Vec::new(), Vec::new());
    }
    let mut by_parent: FxHashMap<Option<SpanId>, Vec<&QueryExec>> = FxHashMap::default();
    let mut parents = Vec::new();
    for query in queries.iter().filter(|q| q.is_groupable()) {
        let group = by_parent.entry(query.parent_span_id).or_default();
        if group.is_empty() {
            parents.push(query.parent_span_id);
        }
        group.push(query);
    }
    let mut found = Vec::new();
    let mut covered = Vec::new();
    for parent in parents {
        let Some(group) = by_parent.get(&parent) else { continue };
        let shapes: Vec<u64> = group.iter().map(|q| q.fingerprint.id).collect();
        for (at, period, repeats) in patterns(&shapes) {
            let mut pattern: Vec<u64> = shapes[at..at + period].to_vec();
            pattern.sort_unstable();
            pattern.dedup();
            if pattern.iter().any(|id| covered.contains(id)) {
                continue;
            }
            let members: Vec<&&QueryExec> = group.iter().filter(|q| pattern.contains(&q.fingerprint.id)).collect();
            let subject = pattern.iter().map(|id| format!("{id:016x}")).collect::<Vec<_>>().join("+");
            let loop_order = loop_order(&shapes, &shapes[at..at + period]);
            let first = group.iter().find(|q| q.fingerprint.id == loop_order[0]).unwrap_or(&group[at]);
            let mut detection = Detection::new(Category::MnPlusOne, "", subject);
            detection.fingerprint = Some(Arc::clone(&first.fingerprint));
            detection.system = Some(Arc::clone(&first.db_system));
            detection.example = Some(first.statement.clone());
            detection.count = u32::try_from(repeats).unwrap_or(u32::MAX);
            detection.cost_ns = members.iter().map(|q| q.duration_ns()).sum();
            detection.figure = period as u64;
            detection.code_location = members.iter().find_map(|q| q.code_location.clone());
            let mut tables: Vec<&str> = Vec::new();
            for id in &loop_order {
                let Some(query) = group.iter().find(|q| q.fingerprint.id == *id) else { continue };
                for table in &query.fingerprint.tables {
                    if !tables.contains(&table.as_str()) {
                        tables.push(table);
                    }
                }
            }
            detection.detail = Some(tables.join(", ").into());
            covered.extend(pattern);
            found.push(detection);
        }
    }
    (found, covered)
}

/// The pattern rotated to start at the shape that ran first in `shapes` (the scan may have
/// found the loop mid-item: R R B instead of B R R).
fn loop_order(shapes: &[u64], pattern: &[u64]) -> Vec<u64> {
    let first_run = |id: &u64| shapes.iter().position(|s| s == id).unwrap_or(usize::MAX);
    let start = (0..pattern.len()).min_by_key(|&i| first_run(&pattern[i])).unwrap_or(0);
    pattern[start..].iter().chain(&pattern[..start]).copied().collect()
}

/// `(start, period, repeats)` of each repeated pattern in `shapes`, left to right, not
/// overlapping.
fn patterns(shapes: &[u64]) -> Vec<(usize, usize, usize)> {
    let mut found = Vec::new();
    let mut at = 0;
    while at < shapes.len() {
        let mut best: Option<(usize, usize)> = None;
        for period in 2..=MAX_PATTERN {
            if at + period * MIN_REPEATS > shapes.len() {
                break;
            }
            let pattern = &shapes[at..at + period];
            if !has_two_shapes(pattern) || is_repetition(pattern) {
                continue;
            }
            let mut repeats = 1;
            while shapes.get(at + repeats * period..at + (repeats + 1) * period) == Some(pattern) {
                repeats += 1;
            }
            if repeats >= MIN_REPEATS && best.is_none_or(|(p, r)| repeats * period > p * r) {
                best = Some((period, repeats));
            }
        }
        match best {
            Some((period, repeats)) => {
                found.push((at, period, repeats));
                at += period * repeats;
            }
            None => at += 1,
        }
    }
    found
}

fn has_two_shapes(pattern: &[u64]) -> bool {
    pattern.iter().any(|id| *id != pattern[0])
}

/// `pattern` is a shorter pattern repeated (A B A B is A B twice).
fn is_repetition(pattern: &[u64]) -> bool {
    (1..pattern.len())
        .filter(|p| pattern.len().is_multiple_of(*p))
        .any(|p| pattern.chunks(p).all(|chunk| chunk == &pattern[..p]))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    const ORDER: &str = r#"SELECT "shop_order"."id" FROM "shop_order" WHERE "shop_order"."customer_id" = %s"#;
    const ADDRESS: &str = r#"SELECT "shop_address"."id" FROM "shop_address" WHERE "shop_address"."customer_id" = %s"#;

    #[test]
    fn alternating_queries_are_one_pattern() {
        let spans =
            (0..8u8).map(|i| query(2 + i, 1, if i % 2 == 0 { ORDER } else { ADDRESS }, u64::from(i) * 2)).collect();
        let analysis = analyze(spans);
        let (found, covered) = detect(&analysis.queries);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].count, found[0].figure, found[0].cost_ns), (4, 2, 8_000_000));
        assert_eq!(found[0].detail.as_deref(), Some("shop_order, shop_address"));
        assert_eq!(covered.len(), 2);
    }

    #[test]
    fn nested_loop_with_uneven_inner_counts() {
        // Django: for author: books; for book: reviews. Author 1 has 3 books, the others 2.
        let (a, b, r) = (1, 2, 3);
        let mut shapes = vec![a, b, r, r, r];
        for _ in 0..5 {
            shapes.extend([b, r, r]);
        }
        let found = patterns(&shapes);
        assert_eq!(found.len(), 1);
        let (at, period, repeats) = found[0];
        assert_eq!((period, repeats), (3, 5), "{found:?}");
        assert!(at <= 5);
        assert_eq!(loop_order(&shapes, &shapes[at..at + period]), [b, r, r], "the loop reads from its first query");
    }

    #[test]
    fn plain_repeats_and_short_runs_are_no_pattern() {
        assert!(patterns(&[1, 1, 1, 1, 1, 1]).is_empty(), "one shape is an N+1, not an MN+1");
        assert!(patterns(&[1, 2, 1, 2]).is_empty(), "two repeats are too few");
        assert_eq!(patterns(&[1, 2, 1, 2, 1, 2, 1, 2]), [(0, 2, 4)], "A B A B is found as A B");
    }

    #[test]
    fn queries_under_different_parents_do_not_form_a_pattern() {
        let spans = (0..6u8)
            .map(|i| query(2 + i, 1 + (i % 2) * 10, if i % 2 == 0 { ORDER } else { ADDRESS }, u64::from(i) * 2))
            .collect();
        assert!(detect(&analyze(spans).queries).0.is_empty());
    }
}
