//! N+1 detection within one request: the same query shape (fingerprint) executed at least
//! `min` times, not all of them known to be the identical query with identical values.
//!
//! Grouping is order-free and per request (as perf-sentinel and Scout do), so interleaved shapes
//! (A B A B ...) and nested loops are found too: a nested loop gives one group per level, since
//! each level runs its own shape. Executions whose values are unknown (placeholders, no captured
//! parameters) count as distinct; a shape whose executions are all the same known query is a
//! duplicate, not an N+1 (see `duplicates`).

use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};

use super::QueryExec;
use super::fingerprint::Fingerprint;

/// One N+1 group of a request.
#[derive(Debug, Clone)]
pub struct NPlusOne {
    /// The repeated shape.
    pub fingerprint: Arc<Fingerprint>,
    /// DB system of the first execution.
    pub db_system: Arc<str>,
    /// The first execution's statement text, as an example.
    pub example_statement: Box<str>,
    /// Executions of the shape in the request.
    pub repeats: u32,
    /// Summed duration of those executions.
    pub time_ns: u64,
}

/// The groupable `queries` that `keep` accepts, grouped by shape, groups in order of first
/// execution: what the N+1 and row-by-row write detectors both count.
pub fn shape_groups(queries: &[QueryExec], keep: impl Fn(&QueryExec) -> bool) -> Vec<Vec<&QueryExec>> {
    let mut groups: FxHashMap<u64, Vec<&QueryExec>> = FxHashMap::default();
    let mut order = Vec::new();
    for query in queries.iter().filter(|q| q.is_groupable() && keep(q)) {
        let group = groups.entry(query.fingerprint.id).or_default();
        if group.is_empty() {
            order.push(query.fingerprint.id);
        }
        group.push(query);
    }
    order.into_iter().filter_map(|id| groups.remove(&id)).collect()
}

/// The N+1 groups among `queries`, in order of first execution.
pub fn detect(queries: &[QueryExec], min: u32) -> Vec<NPlusOne> {
    shape_groups(queries, |_| true)
        .into_iter()
        .filter_map(|group| {
            let repeats = u32::try_from(group.len()).unwrap_or(u32::MAX);
            if repeats < min || all_identical(&group) {
                return None;
            }
            let first = group[0];
            Some(NPlusOne {
                fingerprint: Arc::clone(&first.fingerprint),
                db_system: Arc::clone(&first.db_system),
                example_statement: first.statement.clone(),
                repeats,
                time_ns: group.iter().map(|q| q.duration_ns()).sum(),
            })
        })
        .collect()
}

/// All executions are known to be the same statement with the same values.
fn all_identical(group: &[&QueryExec]) -> bool {
    let mut seen = FxHashSet::default();
    for query in group {
        match query.identity {
            None => return false,
            Some(identity) => {
                seen.insert(identity);
            }
        }
    }
    seen.len() <= 1
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::model::Span;

    fn loop_of(n: u8, statement: impl Fn(u8) -> String, first_id: u8) -> Vec<Span> {
        (0..n).map(|i| query(first_id + i, 1, &statement(i), u64::from(i) * 2)).collect()
    }

    #[test]
    fn placeholder_loop_at_threshold_is_an_n_plus_one() {
        let spans = loop_of(5, |_| "SELECT * FROM author WHERE id = ?".into(), 10);
        let analysis = analyze(spans);
        assert_eq!(analysis.n_plus_one.len(), 1);
        assert_eq!(analysis.n_plus_one[0].repeats, 5);
        assert_eq!(analysis.n_plus_one[0].time_ns, 5_000_000);
        assert!(analysis.duplicates.is_empty());
    }

    #[test]
    fn below_threshold_is_not_flagged() {
        let analysis = analyze(loop_of(4, |_| "SELECT * FROM author WHERE id = ?".into(), 10));
        assert!(analysis.n_plus_one.is_empty());
    }

    #[test]
    fn different_literals_of_one_shape_are_one_n_plus_one() {
        let analysis = analyze(loop_of(6, |i| format!("SELECT * FROM author WHERE id = {}", i + 7), 10));
        assert_eq!(analysis.n_plus_one.len(), 1);
        assert_eq!(analysis.n_plus_one[0].repeats, 6);
        assert!(analysis.duplicates.is_empty());
    }

    #[test]
    fn identical_literal_statement_is_a_duplicate_not_an_n_plus_one() {
        let analysis = analyze(loop_of(6, |_| "SELECT * FROM author WHERE id = 7".into(), 10));
        assert!(analysis.n_plus_one.is_empty());
        assert_eq!(analysis.duplicates.len(), 1);
        assert_eq!(analysis.duplicates[0].repeats, 6);
    }

    #[test]
    fn nested_loops_give_one_group_per_level() {
        let mut spans = loop_of(5, |_| "SELECT * FROM book WHERE author_id = ?".into(), 10);
        spans.extend(loop_of(10, |_| "SELECT * FROM review WHERE book_id = ?".into(), 40));
        let analysis = analyze(spans);
        let mut repeats: Vec<u32> = analysis.n_plus_one.iter().map(|g| g.repeats).collect();
        repeats.sort();
        assert_eq!(repeats, vec![5, 10]);
    }

    #[test]
    fn interleaved_shapes_are_both_found() {
        let spans: Vec<Span> = (0..12u8)
            .map(|i| {
                let statement = if i % 2 == 0 {
                    "SELECT * FROM author WHERE id = ?"
                } else {
                    "SELECT * FROM publisher WHERE id = ?"
                };
                query(10 + i, 1, statement, u64::from(i))
            })
            .collect();
        assert_eq!(analyze(spans).n_plus_one.len(), 2);
    }

    #[test]
    fn concurrent_queries_of_different_shapes_are_not_an_n_plus_one() {
        let tables = ["author", "book", "review", "publisher", "shelf", "store"];
        let spans: Vec<Span> = (0..6u8)
            .map(|i| query(10 + i, 1, &format!("SELECT * FROM {} WHERE id = ?", tables[usize::from(i)]), 0))
            .collect();
        assert!(analyze(spans).n_plus_one.is_empty());
    }

    #[test]
    fn transaction_control_is_never_grouped() {
        let analysis = analyze(loop_of(6, |_| "COMMIT".into(), 10));
        assert!(analysis.n_plus_one.is_empty());
        assert!(analysis.duplicates.is_empty());
    }
}
