//! Plans, as the two databases print them, reduced to what the index advice needs: which tables
//! are read in full (and the plan line that says so, with its filter) and whether rows are sorted
//! after reading.
//!
//! SQLite's `EXPLAIN QUERY PLAN` gives rows `(id, parent, detail)`: `SCAN users` (every row,
//! named by alias when there is one), `SEARCH users USING INDEX ...` (an index seek),
//! `USE TEMP B-TREE FOR ORDER BY` (a sort). `SEARCH t USING AUTOMATIC ... INDEX` means SQLite
//! builds a throwaway index on every run: a full scan too. PostgreSQL's `EXPLAIN (FORMAT JSON)`
//! gives a tree of nodes: `Seq Scan` (with `Filter`), index scans without an `Index Cond` (a
//! full pass over an index), `Sort` and `Incremental Sort`.

use serde_json::Value;

/// A table read in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// The table, as the plan names it: SQLite gives the alias when there is one, PostgreSQL
    /// the relation name.
    pub table: String,
    /// The alias PostgreSQL reports (SQLite: none).
    pub alias: Option<String>,
    /// The schema PostgreSQL reports (SQLite: none).
    pub schema: Option<String>,
    /// The rows it keeps are filtered (PostgreSQL's `Filter`; SQLite does not say).
    pub filter: Option<String>,
    /// The plan line, as text.
    pub line: String,
}

/// A plan reduced to full scans and sorts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Tables read in full.
    pub scans: Vec<Scan>,
    /// Sort steps, as text (`USE TEMP B-TREE FOR ORDER BY`, `Sort (Sort Key: created_at DESC)`).
    pub sorts: Vec<String>,
    /// The whole plan, one line per step, indented by depth.
    pub text: String,
}

/// Why a plan could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unexpected plan format: {0}")]
pub struct PlanError(pub String);

/// One row of SQLite's `EXPLAIN QUERY PLAN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteRow {
    /// Step id.
    pub id: i64,
    /// Parent step id (0 at the top).
    pub parent: i64,
    /// What the step does.
    pub detail: String,
}

/// Reads SQLite's `EXPLAIN QUERY PLAN` rows.
pub fn from_sqlite(rows: &[SqliteRow]) -> Plan {
    let mut plan = Plan::default();
    let mut depths: Vec<(i64, usize)> = Vec::new();
    let mut lines = Vec::new();
    for row in rows {
        let depth = depths.iter().find(|(id, _)| *id == row.parent).map_or(0, |(_, d)| d + 1);
        depths.push((row.id, depth));
        lines.push(format!("{}{}", "  ".repeat(depth), row.detail));
        let detail = row.detail.as_str();
        if let Some(table) = sqlite_full_scan(detail) {
            plan.scans.push(Scan {
                table: table.to_string(),
                alias: None,
                schema: None,
                filter: None,
                line: detail.to_string(),
            });
        } else if detail.starts_with("USE TEMP B-TREE FOR") && detail.contains("ORDER BY") {
            plan.sorts.push(detail.to_string());
        }
    }
    plan.text = lines.join("\n");
    plan
}

/// The table of a `SCAN t ...` step (`SCAN TABLE t` before SQLite 3.36) or of a search through
/// an automatic index.
fn sqlite_full_scan(detail: &str) -> Option<&str> {
    let (verb, rest) = detail.split_once(' ')?;
    let rest = rest.strip_prefix("TABLE ").unwrap_or(rest);
    let table = rest.split(' ').next()?;
    match verb {
        "SCAN" if !matches!(table, "CONSTANT" | "SUBQUERY") => Some(table),
        "SEARCH" if rest.contains(" USING AUTOMATIC ") => Some(table),
        _ => None,
    }
}

/// Reads PostgreSQL's `EXPLAIN (FORMAT JSON)` output.
pub fn from_postgres_json(json: &str) -> Result<Plan, PlanError> {
    let value: Value = serde_json::from_str(json).map_err(|e| PlanError(e.to_string()))?;
    let root = value
        .as_array()
        .and_then(|plans| plans.first())
        .and_then(|first| first.get("Plan"))
        .ok_or_else(|| PlanError("no top-level Plan".to_string()))?;
    let mut plan = Plan::default();
    let mut lines = Vec::new();
    walk_postgres(root, 0, &mut plan, &mut lines);
    plan.text = lines.join("\n");
    Ok(plan)
}

fn walk_postgres(node: &Value, depth: usize, plan: &mut Plan, lines: &mut Vec<String>) {
    let text = |key: &str| node.get(key).and_then(Value::as_str).map(str::to_string);
    let node_type = text("Node Type").unwrap_or_else(|| "?".to_string());
    let relation = text("Relation Name");
    let alias = text("Alias");
    let mut line = node_type.clone();
    if let Some(index) = text("Index Name") {
        line.push_str(&format!(" using {index}"));
    }
    if let Some(relation) = &relation {
        line.push_str(&format!(" on {relation}"));
        if let Some(alias) = alias.as_ref().filter(|a| *a != relation) {
            line.push_str(&format!(" {alias}"));
        }
    }
    for key in ["Index Cond", "Filter", "Hash Cond", "Join Filter"] {
        if let Some(value) = text(key) {
            line.push_str(&format!("  {key}: {value}"));
        }
    }
    let sort_key = node
        .get("Sort Key")
        .and_then(Value::as_array)
        .map(|keys| keys.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "));
    if let Some(keys) = &sort_key {
        line.push_str(&format!("  Sort Key: {keys}"));
    }
    lines.push(format!("{}{}", "  ".repeat(depth), line));

    let is_index_scan = matches!(node_type.as_str(), "Index Scan" | "Index Only Scan");
    let full_scan = node_type == "Seq Scan" || (is_index_scan && text("Index Cond").is_none());
    if full_scan && let Some(table) = relation {
        plan.scans.push(Scan { table, alias, schema: text("Schema"), filter: text("Filter"), line: line.clone() });
    }
    if matches!(node_type.as_str(), "Sort" | "Incremental Sort") {
        plan.sorts.push(line);
    }
    if let Some(children) = node.get("Plans").and_then(Value::as_array) {
        for child in children {
            walk_postgres(child, depth + 1, plan, lines);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real `EXPLAIN (VERBOSE, FORMAT JSON) EXECUTE` output of PostgreSQL 15 (generic plans).
    const PG_SEQ_SCAN: &str = include_str!("testdata/pg15_seq_scan_filter_sort.json");
    const PG_INDEXED_JOIN: &str = include_str!("testdata/pg15_index_scans_join.json");

    fn real_sqlite_plan(schema: &str, statement: &str) -> Vec<SqliteRow> {
        let connection = rusqlite::Connection::open_in_memory().expect("in-memory SQLite");
        connection.execute_batch(schema).expect("schema");
        let mut explain = connection.prepare(&format!("EXPLAIN QUERY PLAN {statement}")).expect("prepare");
        let mut rows = explain.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next().expect("row") {
            out.push(SqliteRow {
                id: row.get(0).expect("id"),
                parent: row.get(1).expect("parent"),
                detail: row.get(3).expect("detail"),
            });
        }
        out
    }

    const SCHEMA: &str = "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, created_at INT);
        CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INT, status TEXT, created_at INT);
        CREATE INDEX orders_status ON orders (status);";

    #[test]
    fn sqlite_full_scan_and_sort_are_found_by_alias() {
        let plan =
            from_sqlite(&real_sqlite_plan(SCHEMA, "SELECT * FROM users u WHERE u.email = ?1 ORDER BY created_at"));
        let tables: Vec<&str> = plan.scans.iter().map(|s| s.table.as_str()).collect();
        assert_eq!(tables, ["u"]);
        assert_eq!(plan.sorts, ["USE TEMP B-TREE FOR ORDER BY"]);
        assert!(plan.text.contains("SCAN u"), "{}", plan.text);
    }

    #[test]
    fn sqlite_index_searches_are_not_full_scans() {
        let plan = from_sqlite(&real_sqlite_plan(SCHEMA, "SELECT * FROM orders WHERE status = ?1"));
        assert!(plan.scans.is_empty(), "{plan:?}");
        assert!(plan.text.starts_with("SEARCH orders USING INDEX orders_status"), "{}", plan.text);
        let plan = from_sqlite(&real_sqlite_plan(SCHEMA, "SELECT * FROM users WHERE id = ?1"));
        assert!(plan.scans.is_empty() && plan.sorts.is_empty(), "{plan:?}");
    }

    #[test]
    fn sqlite_subquery_scans_are_found_and_indented() {
        let plan = from_sqlite(&real_sqlite_plan(
            SCHEMA,
            "SELECT * FROM users WHERE id IN (SELECT user_id FROM orders WHERE created_at > ?1)",
        ));
        let tables: Vec<&str> = plan.scans.iter().map(|s| s.table.as_str()).collect();
        assert_eq!(tables, ["orders"]);
        assert!(plan.text.contains("\n  SCAN orders"), "{}", plan.text);
    }

    #[test]
    fn sqlite_older_scan_table_wording_is_read() {
        let rows = [SqliteRow { id: 2, parent: 0, detail: "SCAN TABLE users AS u".into() }];
        assert_eq!(from_sqlite(&rows).scans[0].table, "users");
    }

    #[test]
    fn postgres_seq_scan_with_filter_and_sort() {
        let plan = from_postgres_json(PG_SEQ_SCAN).expect("plan");
        assert_eq!(plan.scans.len(), 1);
        let scan = &plan.scans[0];
        assert_eq!(scan.table, "users");
        assert_eq!(scan.alias.as_deref(), Some("u"));
        assert_eq!(scan.schema.as_deref(), Some("public"));
        assert_eq!(scan.filter.as_deref(), Some("(u.email = $1)"));
        assert_eq!(scan.line, "Seq Scan on users u  Filter: (u.email = $1)");
        assert_eq!(plan.sorts, ["Sort  Sort Key: u.created_at DESC"]);
        assert_eq!(plan.text.lines().count(), 3, "{}", plan.text);
    }

    #[test]
    fn postgres_index_scans_are_not_full_scans() {
        let plan = from_postgres_json(PG_INDEXED_JOIN).expect("plan");
        assert!(plan.scans.is_empty(), "{plan:?}");
        assert_eq!(plan.sorts.len(), 1);
        assert!(plan.text.contains("Bitmap Index Scan using orders_status_idx"), "{}", plan.text);
    }

    #[test]
    fn postgres_unexpected_output_is_an_error() {
        assert!(from_postgres_json("[]").is_err());
        assert!(from_postgres_json("not json").is_err());
    }
}
