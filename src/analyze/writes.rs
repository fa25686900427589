//! Row-by-row writes within one request: the same INSERT, UPDATE or DELETE shape run at least
//! `min` times (a `save()` in a loop), with the same values or not. The fix is the bulk form:
//! `bulk_create`, `insert_all`, a multi-row `VALUES`, `executemany`, JDBC batching.
//!
//! Such groups are also N+1 groups of the endpoint when their values differ; the findings list
//! shows them once, in this category.

use std::sync::Arc;

use super::QueryExec;
use super::detection::{Category, Detection};

/// The write operation of a shape, lower case (`insert`, `update`, `delete`), as the rule code.
pub fn write_rule(operation: Option<&str>) -> Option<&'static str> {
    match operation? {
        "INSERT" | "REPLACE" => Some("insert"),
        "UPDATE" => Some("update"),
        "DELETE" => Some("delete"),
        "MERGE" | "UPSERT" => Some("upsert"),
        _ => None,
    }
}

/// The write shapes among `queries` repeated at least `min` times, in order of first execution.
pub fn detect(queries: &[QueryExec], min: u32) -> Vec<Detection> {
    super::n_plus_one::shape_groups(queries, |q| write_rule(q.fingerprint.operation.as_deref()).is_some())
        .into_iter()
        .filter_map(|group| {
            let count = u32::try_from(group.len()).unwrap_or(u32::MAX);
            let first = group.first().filter(|_| count >= min)?;
            let rule = write_rule(first.fingerprint.operation.as_deref())?;
            let mut found = Detection::new(Category::RowByRowWrite, rule, format!("{:016x}", first.fingerprint.id));
            found.fingerprint = Some(Arc::clone(&first.fingerprint));
            found.system = Some(Arc::clone(&first.db_system));
            found.example = Some(first.statement.clone());
            found.count = count;
            found.cost_ns = group.iter().map(|q| q.duration_ns()).sum();
            found.code_location = group.iter().find_map(|q| q.code_location.clone());
            Some(found)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn save_in_a_loop_is_found_and_bulk_create_is_not() {
        // Django save() of new rows on SQLite, then one bulk_create.
        let insert = r#"INSERT INTO "library_note" ("book_id", "text") VALUES (%s, %s) RETURNING "library_note"."id""#;
        let bulk = r#"INSERT INTO "library_note" ("book_id", "text") VALUES (%s, %s), (%s, %s), (%s, %s) RETURNING "library_note"."id""#;
        let spans: Vec<_> = (0..6u8).map(|i| query(2 + i, 1, insert, u64::from(i) * 2)).collect();
        let found = detect(&analyze(spans).queries, 5);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].rule, found[0].count, found[0].cost_ns), ("insert", 6, 6_000_000));
        assert!(detect(&analyze(vec![query(20, 1, bulk, 30)]).queries, 5).is_empty(), "bulk_create is the fix");
    }

    #[test]
    fn hibernate_and_rails_updates_and_deletes() {
        let update = "update book set title=?, version=? where id=? and version=?";
        let delete = r#"DELETE FROM "line_items" WHERE "line_items"."id" = $1"#;
        let mut spans: Vec<_> = (0..5u8).map(|i| query(2 + i, 1, update, u64::from(i) * 2)).collect();
        spans.extend((0..4u8).map(|i| query(20 + i, 1, delete, 20 + u64::from(i) * 2)));
        let rules: Vec<_> = detect(&analyze(spans).queries, 5).iter().map(|d| (d.rule, d.count)).collect();
        assert_eq!(rules, [("update", 5)], "four deletes stay under the threshold");
    }

    #[test]
    fn reads_are_not_writes() {
        let spans = (0..8u8).map(|i| query(2 + i, 1, "SELECT * FROM t WHERE id = ?", u64::from(i))).collect();
        assert!(detect(&analyze(spans).queries, 5).is_empty());
    }
}
