//! The index to propose for one table read in full, checked against the indexes it already has.
//!
//! Column order follows how a B-tree index is used: the columns compared for equality first
//! (any order serves a seek), then either the sort columns (so the index also delivers the rows in
//! order: a composite for filter + `ORDER BY`) or, when a range comparison comes before the sort,
//! the one range column (an index cannot serve a sort past a range). An existing index whose
//! leading columns are the proposal's (equality columns in any order) already covers it, and
//! nothing is proposed.

use super::query::TableUse;

/// An index the table already has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingIndex {
    /// Its name.
    pub name: String,
    /// Its key columns in order (expression keys make an index unusable here and are left out by
    /// the catalog readers).
    pub columns: Vec<String>,
}

/// What to do about one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Advice {
    /// Create this index.
    Create(Proposal),
    /// An existing index already has these leading columns.
    Covered {
        /// The index that covers it.
        index: String,
    },
    /// No column to index (no filter and no sort on plain columns).
    Nothing,
}

/// A proposed index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// Key columns in order, `true` for `DESC`.
    pub columns: Vec<(String, bool)>,
    /// The statement to run: `CREATE INDEX idx_orders_customer_id_created_at ON orders
    /// (customer_id, created_at);`.
    pub sql: String,
}

/// Longest identifier PostgreSQL keeps (SQLite has no limit; the same name serves both).
const MAX_IDENTIFIER: usize = 63;

/// Words that must be quoted as identifiers in SQLite or PostgreSQL (the common ones).
const RESERVED: &[&str] = &[
    "all",
    "and",
    "as",
    "asc",
    "between",
    "by",
    "case",
    "check",
    "column",
    "constraint",
    "create",
    "default",
    "desc",
    "distinct",
    "else",
    "end",
    "foreign",
    "from",
    "group",
    "having",
    "in",
    "index",
    "is",
    "join",
    "key",
    "limit",
    "not",
    "null",
    "offset",
    "on",
    "or",
    "order",
    "primary",
    "references",
    "select",
    "table",
    "then",
    "to",
    "union",
    "unique",
    "user",
    "using",
    "when",
    "where",
    "with",
];

/// The advice for `table` (written as `table_sql` in the statement) given what the statement
/// asks of it and the indexes it has.
pub fn advise(table_sql: &str, table_name: &str, used: &TableUse, existing: &[ExistingIndex]) -> Advice {
    let columns = key_columns(used);
    if columns.is_empty() {
        return Advice::Nothing;
    }
    let equality = used.equality.len().min(columns.len());
    if let Some(index) = existing.iter().find(|index| covers(index, &columns, equality)) {
        return Advice::Covered { index: index.name.clone() };
    }
    let name = index_name(table_name, &columns);
    let list = columns
        .iter()
        .map(|(column, desc)| format!("{}{}", quote(column), if *desc { " DESC" } else { "" }))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!("CREATE INDEX {} ON {} ({list});", quote(&name), table_sql);
    Advice::Create(Proposal { columns, sql })
}

/// Key columns: equality, then the sort (or the first range column when a different range comes
/// first).
fn key_columns(used: &TableUse) -> Vec<(String, bool)> {
    let mut columns: Vec<(String, bool)> = used.equality.iter().map(|c| (c.clone(), false)).collect();
    let order: Vec<&(String, bool)> = used.order_by.iter().filter(|(c, _)| !used.equality.contains(c)).collect();
    let sort_fits = !order.is_empty() && used.range.first().is_none_or(|range| *range == order[0].0);
    if sort_fits {
        // One direction throughout: an ascending index is read backwards for DESC.
        let mixed = order.iter().any(|(_, desc)| *desc) && order.iter().any(|(_, desc)| !*desc);
        for (column, desc) in order {
            if !columns.iter().any(|(c, _)| c == column) {
                columns.push((column.clone(), mixed && *desc));
            }
        }
    } else if let Some(range) = used.range.first() {
        columns.push((range.clone(), false));
    }
    columns
}

/// Whether `index` starts with `columns` (the first `equality` of them in any order).
fn covers(index: &ExistingIndex, columns: &[(String, bool)], equality: usize) -> bool {
    if index.columns.len() < columns.len() {
        return false;
    }
    let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let leading = &index.columns[..equality];
    let equality_match = columns[..equality].iter().all(|(c, _)| leading.iter().any(|l| same(l, c)));
    let rest_match = columns[equality..].iter().zip(&index.columns[equality..]).all(|((c, _), l)| same(l, c));
    equality_match && rest_match
}

/// `idx_<table>_<columns>`, lower case letters, digits and `_`, at most 63 bytes.
fn index_name(table: &str, columns: &[(String, bool)]) -> String {
    let mut name = format!("idx_{table}");
    for (column, _) in columns {
        name.push('_');
        name.push_str(column);
    }
    let mut clean: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    clean.truncate(MAX_IDENTIFIER);
    clean
}

/// `name` as an identifier: bare when it is a plain lower-case word, else double-quoted.
pub fn quote(name: &str) -> String {
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !RESERVED.contains(&name);
    if plain { name.to_string() } else { format!("\"{}\"", name.replace('"', "\"\"")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn used(equality: &[&str], range: &[&str], order_by: &[(&str, bool)]) -> TableUse {
        TableUse {
            equality: equality.iter().map(|c| c.to_string()).collect(),
            range: range.iter().map(|c| c.to_string()).collect(),
            order_by: order_by.iter().map(|(c, d)| (c.to_string(), *d)).collect(),
        }
    }

    fn existing(name: &str, columns: &[&str]) -> ExistingIndex {
        ExistingIndex { name: name.to_string(), columns: columns.iter().map(|c| c.to_string()).collect() }
    }

    fn sql(advice: Advice) -> String {
        match advice {
            Advice::Create(proposal) => proposal.sql,
            other => panic!("expected a proposal, got {other:?}"),
        }
    }

    #[test]
    fn equality_filter_gets_a_single_column_index() {
        let advice = advise("users", "users", &used(&["email"], &[], &[]), &[]);
        assert_eq!(sql(advice), "CREATE INDEX idx_users_email ON users (email);");
    }

    #[test]
    fn filter_and_order_by_get_a_composite_index() {
        let advice = advise("orders", "orders", &used(&["customer_id"], &[], &[("created_at", true)]), &[]);
        assert_eq!(sql(advice), "CREATE INDEX idx_orders_customer_id_created_at ON orders (customer_id, created_at);");
    }

    #[test]
    fn equality_then_range_columns() {
        let advice = advise("orders", "orders", &used(&["status", "user_id"], &["total", "created_at"], &[]), &[]);
        assert_eq!(sql(advice), "CREATE INDEX idx_orders_status_user_id_total ON orders (status, user_id, total);");
    }

    #[test]
    fn a_range_before_a_different_sort_keeps_the_range() {
        let advice = advise("orders", "orders", &used(&["status"], &["total"], &[("created_at", false)]), &[]);
        assert_eq!(sql(advice), "CREATE INDEX idx_orders_status_total ON orders (status, total);");
        let advice = advise("orders", "orders", &used(&["status"], &["created_at"], &[("created_at", false)]), &[]);
        assert_eq!(sql(advice), "CREATE INDEX idx_orders_status_created_at ON orders (status, created_at);");
    }

    #[test]
    fn mixed_sort_directions_are_spelled_out() {
        let advice = advise("t", "t", &used(&[], &[], &[("a", false), ("b", true)]), &[]);
        assert_eq!(sql(advice), "CREATE INDEX idx_t_a_b ON t (a, b DESC);");
    }

    #[test]
    fn sorting_by_a_filtered_column_adds_nothing() {
        let advice = advise("t", "t", &used(&["a"], &[], &[("a", false)]), &[]);
        assert_eq!(sql(advice), "CREATE INDEX idx_t_a ON t (a);");
    }

    #[test]
    fn an_index_with_the_same_leading_columns_covers_it() {
        let wanted = used(&["customer_id", "status"], &[], &[("created_at", false)]);
        let has = [existing("orders_by_status", &["status", "customer_id", "created_at", "id"])];
        assert_eq!(advise("orders", "orders", &wanted, &has), Advice::Covered { index: "orders_by_status".into() });
    }

    #[test]
    fn an_index_on_a_prefix_only_does_not_cover_the_composite() {
        let wanted = used(&["customer_id"], &[], &[("created_at", false)]);
        let has = [existing("orders_customer", &["customer_id"]), existing("orders_created", &["created_at"])];
        assert_eq!(
            sql(advise("orders", "orders", &wanted, &has)),
            "CREATE INDEX idx_orders_customer_id_created_at ON orders (customer_id, created_at);"
        );
    }

    #[test]
    fn column_order_after_the_equality_part_matters() {
        let wanted = used(&["a"], &[], &[("b", false)]);
        assert!(matches!(advise("t", "t", &wanted, &[existing("x", &["b", "a"])]), Advice::Create(_)));
        assert!(matches!(advise("t", "t", &wanted, &[existing("x", &["a", "b"])]), Advice::Covered { .. }));
    }

    #[test]
    fn nothing_to_index_without_columns() {
        assert_eq!(advise("t", "t", &used(&[], &[], &[]), &[]), Advice::Nothing);
    }

    #[test]
    fn awkward_names_are_quoted_and_the_index_name_is_clean() {
        let advice = advise("\"Order Items\"", "Order Items", &used(&["order", "Sku"], &[], &[]), &[]);
        assert_eq!(sql(advice), "CREATE INDEX idx_order_items_order_sku ON \"Order Items\" (\"order\", \"Sku\");");
    }

    #[test]
    fn long_index_names_are_cut_to_63_bytes() {
        let long = "a_really_long_column_name_that_goes_on";
        let advice = advise("t", "t", &used(&[long, "another_long_column_name_too"], &[], &[]), &[]);
        let Advice::Create(proposal) = advice else { panic!("expected a proposal") };
        let name = proposal.sql.split_whitespace().nth(2).expect("name");
        assert_eq!(name.len(), 63);
    }
}
