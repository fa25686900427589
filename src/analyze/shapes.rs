//! Slow query shapes within one request, judged from each fingerprint's [`ShapeFacts`] and the
//! executions' own figures: a `LIKE` with a leading wildcard, a `SELECT` without `LIMIT` that
//! returned many rows, a large `OFFSET`, a whole-table `COUNT(*)`, a function around a filtered
//! column, `SELECT *`.
//!
//! One [`Detection`] per shape and rule, costing the summed time of the shape's executions in
//! the request (the time the rule puts at stake), except `select_star`, whose cost cannot be
//! told without the table's width and is counted as zero.
//!
//! [`ShapeFacts`]: super::fingerprint::ShapeFacts

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::QueryExec;
use super::detection::{Category, Detection};

/// Rows a `SELECT` without `LIMIT` must return in one execution to be flagged.
pub const UNBOUNDED_ROWS_MIN: u64 = 1000;
/// `OFFSET` from which pagination by offset is flagged.
pub const LARGE_OFFSET_MIN: u64 = 1000;

/// Rule codes of the `slow_query_shape` category.
pub mod rule {
    /// `LIKE`/`ILIKE` pattern starting with `%` or `_`.
    pub const LEADING_WILDCARD_LIKE: &str = "leading_wildcard_like";
    /// `SELECT` without `LIMIT` returning many rows.
    pub const UNBOUNDED_SELECT: &str = "unbounded_select";
    /// `OFFSET` pagination deep into a table.
    pub const LARGE_OFFSET: &str = "large_offset";
    /// `COUNT(*)` over a table on every request.
    pub const COUNT_PER_REQUEST: &str = "count_per_request";
    /// A function wrapped around a filtered column.
    pub const FUNCTION_ON_FILTERED_COLUMN: &str = "function_on_filtered_column";
    /// `SELECT *`.
    pub const SELECT_STAR: &str = "select_star";
}

/// The slow shapes among `queries` (in start order), in order of first execution.
pub fn detect(queries: &[QueryExec]) -> Vec<Detection> {
    let any_rule_applies = queries.iter().any(|q| {
        let facts = &q.fingerprint.facts;
        q.pattern_leading_wildcard
            || facts.leading_wildcard
            || (facts.select_without_limit && q.returned_rows.is_some())
            || facts.offset.is_some()
            || facts.count_all
            || facts.function_on_filter.is_some()
            || facts.select_star
    });
    if !any_rule_applies {
        return Vec::new();
    }
    let mut groups: FxHashMap<u64, Vec<&QueryExec>> = FxHashMap::default();
    let mut order = Vec::new();
    for query in queries.iter().filter(|q| q.is_groupable()) {
        let group = groups.entry(query.fingerprint.id).or_default();
        if group.is_empty() {
            order.push(query.fingerprint.id);
        }
        group.push(query);
    }
    let mut found = Vec::new();
    for id in order {
        let Some(group) = groups.get(&id) else { continue };
        let facts = &group[0].fingerprint.facts;
        let time_ns: u64 = group.iter().map(|q| q.duration_ns()).sum();
        let wildcard = group.iter().find(|q| q.pattern_leading_wildcard);
        if facts.leading_wildcard || wildcard.is_some() {
            found.push(detection(rule::LEADING_WILDCARD_LIKE, wildcard.unwrap_or(&group[0]), group, time_ns, 0));
        }
        if facts.select_without_limit {
            let most =
                group.iter().filter_map(|q| q.returned_rows.map(|rows| (rows, *q))).max_by_key(|(rows, _)| *rows);
            if let Some((rows, example)) = most.filter(|(rows, _)| *rows >= UNBOUNDED_ROWS_MIN) {
                found.push(detection(rule::UNBOUNDED_SELECT, example, group, time_ns, rows));
            }
        }
        if let Some(offset) = facts.offset.filter(|&offset| offset >= LARGE_OFFSET_MIN) {
            found.push(detection(rule::LARGE_OFFSET, group[0], group, time_ns, offset));
        }
        if facts.count_all {
            found.push(detection(rule::COUNT_PER_REQUEST, group[0], group, time_ns, 0));
        }
        if facts.function_on_filter.is_some() {
            found.push(detection(rule::FUNCTION_ON_FILTERED_COLUMN, group[0], group, time_ns, 0));
        }
        if facts.select_star {
            found.push(detection(rule::SELECT_STAR, group[0], group, 0, 0));
        }
    }
    found
}

fn detection(rule: &'static str, example: &QueryExec, group: &[&QueryExec], cost_ns: u64, figure: u64) -> Detection {
    let mut found = Detection::new(Category::SlowQueryShape, rule, format!("{:016x}", example.fingerprint.id));
    found.fingerprint = Some(Arc::clone(&example.fingerprint));
    found.system = Some(Arc::clone(&example.db_system));
    found.example = Some(example.statement.clone());
    found.count = u32::try_from(group.len()).unwrap_or(u32::MAX);
    found.cost_ns = cost_ns;
    found.figure = figure;
    found.code_location = group.iter().find_map(|q| q.code_location.clone());
    found
}

/// Captured parameter text holds a value that starts with a wildcard (`('%tolkien%',)`,
/// `["%x%"]`, `0=%x%`).
pub fn parameters_start_with_wildcard(parameters: &str) -> bool {
    parameters.starts_with('%') || ["'%", "\"%", "=%", "'_"].iter().any(|marker| parameters.contains(marker))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::model::Span;

    fn rules(spans: Vec<Span>) -> Vec<(&'static str, u32, u64)> {
        analyze(spans)
            .detections
            .iter()
            .filter(|d| d.category == Category::SlowQueryShape)
            .map(|d| (d.rule, d.count, d.figure))
            .collect()
    }

    fn with_parameters(mut span: Span, parameters: &str) -> Span {
        span.db.as_mut().expect("db").parameters = Some(parameters.into());
        span
    }

    #[test]
    fn leading_wildcard_from_text_or_captured_parameters() {
        let search = r#"SELECT "library_book"."id" FROM "library_book" WHERE "library_book"."title" LIKE %s ESCAPE '\' LIMIT 21"#;
        // Without captured values the pattern is unknown: no finding.
        assert_eq!(rules(vec![query(2, 1, search, 0)]), []);
        let contains = with_parameters(query(2, 1, search, 0), "('%tolkien%',)");
        assert_eq!(rules(vec![contains]), [(rule::LEADING_WILDCARD_LIKE, 1, 0)]);
        let prefix = with_parameters(query(2, 1, search, 0), "('tolkien%',)");
        assert_eq!(rules(vec![prefix]), []);
        let literal = "SELECT id FROM products WHERE name ILIKE '%phone%' LIMIT 50";
        assert_eq!(
            rules(vec![query(2, 1, literal, 0), query(3, 1, literal, 2)]),
            [(rule::LEADING_WILDCARD_LIKE, 2, 0)]
        );
    }

    #[test]
    fn unbounded_select_needs_many_returned_rows() {
        let list = r#"SELECT "t"."id", "t"."title" FROM "t" ORDER BY "t"."id" ASC"#;
        let mut many = query(2, 1, list, 0);
        many.db.as_mut().expect("db").returned_rows = Some(25_000);
        assert_eq!(rules(vec![many]), [(rule::UNBOUNDED_SELECT, 1, 25_000)]);
        let mut few = query(2, 1, list, 0);
        few.db.as_mut().expect("db").returned_rows = Some(12);
        assert_eq!(rules(vec![few]), []);
        // Unknown row count: nothing is claimed.
        assert_eq!(rules(vec![query(2, 1, list, 0)]), []);
    }

    #[test]
    fn deep_offset_and_whole_table_count() {
        let page = r#"SELECT "t"."id" FROM "t" ORDER BY "t"."id" ASC LIMIT 20 OFFSET 4000"#;
        let count = r#"SELECT COUNT(*) AS "__count" FROM "t""#;
        let found = rules(vec![query(2, 1, count, 0), query(3, 1, page, 2)]);
        assert_eq!(found, [(rule::COUNT_PER_REQUEST, 1, 0), (rule::LARGE_OFFSET, 1, 4000)]);
        let shallow = r#"SELECT "t"."id" FROM "t" ORDER BY "t"."id" ASC LIMIT 20 OFFSET 40"#;
        assert_eq!(rules(vec![query(2, 1, shallow, 0)]), []);
    }

    #[test]
    fn function_on_filtered_column_costs_its_executions() {
        let login = "SELECT users.id FROM users WHERE lower(users.email) = $1 LIMIT 1";
        let analysis = analyze(vec![query(2, 1, login, 0)]);
        let found = analysis.detections.iter().find(|d| d.rule == rule::FUNCTION_ON_FILTERED_COLUMN).expect("found");
        assert_eq!(found.cost_ns, 1_000_000);
        assert_eq!(found.subject.len(), 16);
    }

    #[test]
    fn select_star_costs_nothing_known() {
        let analysis = analyze(vec![query(2, 1, "SELECT * FROM users WHERE id = ?", 0)]);
        let found = analysis.detections.iter().find(|d| d.rule == rule::SELECT_STAR).expect("found");
        assert_eq!(found.cost_ns, 0);
    }

    #[test]
    fn wildcard_markers_in_parameter_texts() {
        assert!(parameters_start_with_wildcard("('%x%',)"));
        assert!(parameters_start_with_wildcard(r#"["%x%"]"#));
        assert!(parameters_start_with_wildcard("0=%x%"));
        assert!(!parameters_start_with_wildcard("('x%',)"));
    }
}
