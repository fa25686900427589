//! Exact duplicate detection within one request: the same statement with the same values (fully
//! literal text, or placeholders with captured parameters) executed twice or more. The result is
//! the same every time, so the fix is to run it once and reuse it, not to eager-load.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::QueryExec;
use super::fingerprint::Fingerprint;

/// One duplicated query of a request.
#[derive(Debug, Clone)]
pub struct Duplicate {
    /// Its shape.
    pub fingerprint: Arc<Fingerprint>,
    /// The statement text, as sent.
    pub statement: Box<str>,
    /// Its identity (statement and values).
    pub identity: u64,
    /// Executions in the request (at least 2).
    pub repeats: u32,
    /// Summed duration of the executions after the first.
    pub wasted_ns: u64,
}

/// The duplicates among `queries`, in order of first execution.
pub fn detect(queries: &[QueryExec]) -> Vec<Duplicate> {
    let mut counts: FxHashMap<u64, (usize, u32, u64)> = FxHashMap::default();
    for (i, query) in queries.iter().enumerate().filter(|(_, q)| q.is_groupable()) {
        let Some(identity) = query.identity else { continue };
        let entry = counts.entry(identity).or_insert((i, 0, 0));
        if entry.1 > 0 {
            entry.2 += query.duration_ns();
        }
        entry.1 += 1;
    }
    let mut duplicates: Vec<(usize, Duplicate)> = counts
        .into_iter()
        .filter(|(_, (_, repeats, _))| *repeats >= 2)
        .map(|(identity, (first, repeats, wasted_ns))| {
            let query = &queries[first];
            (
                first,
                Duplicate {
                    fingerprint: Arc::clone(&query.fingerprint),
                    statement: query.statement.clone(),
                    identity,
                    repeats,
                    wasted_ns,
                },
            )
        })
        .collect();
    duplicates.sort_by_key(|(first, _)| *first);
    duplicates.into_iter().map(|(_, d)| d).collect()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use std::sync::Arc;

    #[test]
    fn same_literal_statement_twice_is_a_duplicate() {
        let analysis = analyze(vec![
            query(2, 1, "SELECT COUNT(*) FROM book WHERE author_id = 1", 0),
            query(3, 1, "SELECT COUNT(*) FROM book WHERE author_id = 1", 2),
            query(4, 1, "SELECT COUNT(*) FROM book WHERE author_id = 2", 4),
        ]);
        assert_eq!(analysis.duplicates.len(), 1);
        assert_eq!(analysis.duplicates[0].repeats, 2);
        assert_eq!(analysis.duplicates[0].wasted_ns, 1_000_000);
        assert_eq!(&*analysis.duplicates[0].statement, "SELECT COUNT(*) FROM book WHERE author_id = 1");
    }

    #[test]
    fn placeholders_without_parameters_are_never_duplicates() {
        let analysis = analyze(vec![
            query(2, 1, "SELECT * FROM book WHERE id = ?", 0),
            query(3, 1, "SELECT * FROM book WHERE id = ?", 2),
        ]);
        assert!(analysis.duplicates.is_empty());
    }

    #[test]
    fn placeholders_with_equal_captured_parameters_are_duplicates() {
        let mut spans =
            vec![query(2, 1, "SELECT * FROM book WHERE id = ?", 0), query(3, 1, "SELECT * FROM book WHERE id = ?", 2)];
        for span in &mut spans {
            span.db.as_mut().expect("db").parameters = Some("(1,)".into());
        }
        let analysis = analyze(spans);
        assert_eq!(analysis.duplicates.len(), 1);
        assert!(Arc::strong_count(&analysis.duplicates[0].fingerprint) >= 1);
    }
}
