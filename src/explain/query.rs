//! What a statement asks of each table it reads: the columns it compares with a value (`=`,
//! `IN`, `IS NULL`: equality; `<`, `>`, `BETWEEN`: range) and the columns it sorts by, per table
//! reference (name and alias), scope by scope (each `SELECT`, subqueries included).
//!
//! Only the conjuncts of a `WHERE` (parts joined by `AND`) are used: a comparison inside an `OR`,
//! against another column (a join), or on an expression (`lower(email)`) proposes nothing.
//! Unqualified columns are resolved later against the tables' real columns (see
//! [`Scope::resolve`]), since only the database knows which table has them.

use std::ops::ControlFlow;

use sqlparser::ast::{
    BinaryOperator, Expr, FromTable, Ident, InTarget, ObjectName, ObjectNamePart, OrderByExpr, OrderByKind,
    OrderBySort, Query, SetExpr, Statement, TableFactor, TableWithJoins,
};
use sqlparser::dialect::{Dialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;

use super::placeholders::Target;

/// What kind of statement it is: only these are explained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `SELECT` (with or without `WITH`).
    Select,
    /// `UPDATE`: explained, never run.
    Update,
    /// `DELETE`: explained, never run.
    Delete,
}

/// A column as written: `qualifier.column` or `column`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnRef {
    /// Table name or alias it was qualified with, if any.
    pub qualifier: Option<String>,
    /// The column name, unquoted, as written.
    pub column: String,
}

/// How a column is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// `=`, `IN (...)`, `= ANY`, `IS NULL`: an index seeks straight to it.
    Equality,
    /// `<`, `<=`, `>`, `>=`, `BETWEEN`: an index scans a range of it.
    Range,
}

/// A table named in a `FROM`, `JOIN`, `UPDATE` or `DELETE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRef {
    /// The table name as written, unquoted, schema kept (`public.users`).
    pub name: String,
    /// Its alias, if any.
    pub alias: Option<String>,
}

impl TableRef {
    /// The name without its schema.
    pub fn bare_name(&self) -> &str {
        self.name.rsplit('.').next().unwrap_or(&self.name)
    }

    /// Whether `qualifier` names this table (by alias, or by name without an alias).
    pub fn answers_to(&self, qualifier: &str) -> bool {
        match &self.alias {
            Some(alias) => alias.eq_ignore_ascii_case(qualifier),
            None => self.name.eq_ignore_ascii_case(qualifier) || self.bare_name().eq_ignore_ascii_case(qualifier),
        }
    }
}

/// One `SELECT` (or the `UPDATE`/`DELETE`): its tables, value comparisons and sort.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// The tables it reads.
    pub tables: Vec<TableRef>,
    /// Columns compared with a value, in order of appearance.
    pub filters: Vec<(ColumnRef, Comparison)>,
    /// `ORDER BY` columns in order, `true` for `DESC`; empty when it sorts by an expression.
    pub order_by: Vec<(ColumnRef, bool)>,
}

/// What one table reference is asked for within a scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableUse {
    /// Columns compared for equality, deduplicated, in order of appearance.
    pub equality: Vec<String>,
    /// Columns compared by range, deduplicated, in order of appearance.
    pub range: Vec<String>,
    /// The sort, when every `ORDER BY` column belongs to this table.
    pub order_by: Vec<(String, bool)>,
}

impl TableUse {
    /// Whether the statement filters this table on any column.
    pub fn is_filtered(&self) -> bool {
        !self.equality.is_empty() || !self.range.is_empty()
    }
}

impl Scope {
    /// What `table` (one of [`Scope::tables`]) is asked for. `has_column(table, column)` says
    /// whether the real table has that column; unqualified columns go to the one table of the
    /// scope that has them.
    pub fn resolve(&self, table: &TableRef, has_column: impl Fn(&TableRef, &str) -> bool) -> TableUse {
        let belongs = |column: &ColumnRef| match &column.qualifier {
            Some(qualifier) => table.answers_to(qualifier),
            None => {
                let owners = self.tables.iter().filter(|t| has_column(t, &column.column)).count();
                (self.tables.len() == 1 || owners == 1) && has_column(table, &column.column)
            }
        };
        let mut used = TableUse::default();
        for (column, comparison) in &self.filters {
            if !belongs(column) {
                continue;
            }
            let list = match comparison {
                Comparison::Equality => &mut used.equality,
                Comparison::Range => &mut used.range,
            };
            if !list.contains(&column.column) {
                list.push(column.column.clone());
            }
        }
        used.range.retain(|c| !used.equality.contains(c));
        if !self.order_by.is_empty() && self.order_by.iter().all(|(column, _)| belongs(column)) {
            used.order_by = self.order_by.iter().map(|(c, desc)| (c.column.clone(), *desc)).collect();
        }
        used
    }
}

/// A parsed statement: its kind and every scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysis {
    /// What kind of statement.
    pub kind: Kind,
    /// Every scope, outermost first.
    pub scopes: Vec<Scope>,
}

/// Why a statement is not explained.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unsupported {
    /// It does not parse in the target's dialect.
    #[error("it does not parse: {0}")]
    Unparsable(String),
    /// Not one statement.
    #[error("it is not exactly one statement")]
    NotOne,
    /// Not a SELECT, UPDATE or DELETE.
    #[error("{0} statements are never explained (only SELECT, UPDATE and DELETE)")]
    Kind(String),
}

/// Parses `sql` (placeholders already converted for `target`).
pub fn analyze(sql: &str, target: Target) -> Result<Analysis, Unsupported> {
    let dialect: &dyn Dialect = match target {
        Target::Sqlite => &SQLiteDialect {},
        Target::Postgres => &PostgreSqlDialect {},
    };
    let mut statements = Parser::parse_sql(dialect, sql).map_err(|e| Unsupported::Unparsable(e.to_string()))?;
    if statements.len() != 1 {
        return Err(Unsupported::NotOne);
    }
    let mut scopes = Vec::new();
    let kind = match statements.remove(0) {
        Statement::Query(query) => {
            collect_query(&query, &mut scopes);
            Kind::Select
        }
        Statement::Update(update) => {
            let mut scope = Scope::default();
            add_tables(std::slice::from_ref(&update.table), &mut scope, &mut scopes);
            let index = scopes.len();
            scopes.push(Scope::default());
            if let Some(selection) = &update.selection {
                collect_filters(selection, &mut scope, &mut scopes);
            }
            scopes[index] = scope;
            Kind::Update
        }
        Statement::Delete(delete) => {
            let mut scope = Scope::default();
            let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) = &delete.from;
            add_tables(from, &mut scope, &mut scopes);
            let index = scopes.len();
            scopes.push(Scope::default());
            if let Some(selection) = &delete.selection {
                collect_filters(selection, &mut scope, &mut scopes);
            }
            scopes[index] = scope;
            Kind::Delete
        }
        other => {
            let verb = other.to_string().split_whitespace().next().unwrap_or("these").to_uppercase();
            return Err(Unsupported::Kind(verb));
        }
    };
    Ok(Analysis { kind, scopes })
}

fn collect_query(query: &Query, scopes: &mut Vec<Scope>) {
    if let Some(with) = &query.with {
        for cte in &with.cte_tables {
            collect_query(&cte.query, scopes);
        }
    }
    let first = scopes.len();
    collect_set_expr(&query.body, scopes);
    // ORDER BY belongs to the query's own SELECT (the first scope it added), when it is one.
    if let (Some(order_by), SetExpr::Select(_)) = (&query.order_by, query.body.as_ref())
        && let OrderByKind::Expressions(exprs) = &order_by.kind
        && let Some(scope) = scopes.get_mut(first)
    {
        scope.order_by = order_columns(exprs);
    }
}

fn collect_set_expr(body: &SetExpr, scopes: &mut Vec<Scope>) {
    match body {
        SetExpr::Select(select) => {
            let index = scopes.len();
            scopes.push(Scope::default());
            let mut scope = Scope::default();
            add_tables(&select.from, &mut scope, scopes);
            if let Some(selection) = &select.selection {
                collect_filters(selection, &mut scope, scopes);
            }
            scopes[index] = scope;
        }
        SetExpr::Query(query) => collect_query(query, scopes),
        SetExpr::SetOperation { left, right, .. } => {
            collect_set_expr(left, scopes);
            collect_set_expr(right, scopes);
        }
        _ => {}
    }
}

fn add_tables(from: &[TableWithJoins], scope: &mut Scope, scopes: &mut Vec<Scope>) {
    for item in from {
        add_factor(&item.relation, scope, scopes);
        for join in &item.joins {
            add_factor(&join.relation, scope, scopes);
        }
    }
}

fn add_factor(factor: &TableFactor, scope: &mut Scope, scopes: &mut Vec<Scope>) {
    match factor {
        TableFactor::Table { name, alias, args: None, .. } => {
            scope.tables.push(TableRef { name: object_name(name), alias: alias.as_ref().map(|a| unquote(&a.name)) })
        }
        TableFactor::Derived { subquery, .. } => collect_query(subquery, scopes),
        TableFactor::NestedJoin { table_with_joins, .. } => {
            add_tables(std::slice::from_ref(table_with_joins), scope, scopes)
        }
        _ => {}
    }
}

/// Splits `expr` on `AND` and records each conjunct that compares a column with a value;
/// subqueries anywhere in it become scopes of their own.
fn collect_filters(expr: &Expr, scope: &mut Scope, scopes: &mut Vec<Scope>) {
    let _ = sqlparser::ast::visit_expressions(expr, |e| {
        match e {
            Expr::Subquery(query)
            | Expr::Exists { subquery: query, .. }
            | Expr::In { target: InTarget::Subquery(query), .. } => collect_query(query, scopes),
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    let mut conjuncts = Vec::new();
    split_and(expr, &mut conjuncts);
    for conjunct in conjuncts {
        if let Some(filter) = value_comparison(conjunct) {
            scope.filters.push(filter);
        }
    }
}

fn split_and<'a>(expr: &'a Expr, out: &mut Vec<&'a Expr>) {
    match expr {
        Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
            split_and(left, out);
            split_and(right, out);
        }
        Expr::Nested(inner) => split_and(inner, out),
        other => out.push(other),
    }
}

fn value_comparison(expr: &Expr) -> Option<(ColumnRef, Comparison)> {
    match expr {
        Expr::BinaryOp { left, op, right } => {
            let comparison = match op {
                BinaryOperator::Eq => Comparison::Equality,
                BinaryOperator::Lt | BinaryOperator::LtEq | BinaryOperator::Gt | BinaryOperator::GtEq => {
                    Comparison::Range
                }
                _ => return None,
            };
            match (column(left), column(right)) {
                (Some(c), None) if !mentions_column(right) => Some((c, comparison)),
                (None, Some(c)) if !mentions_column(left) => Some((c, comparison)),
                _ => None,
            }
        }
        Expr::AnyOp { left, compare_op: BinaryOperator::Eq, right, .. } if !mentions_column(right) => {
            column(left).map(|c| (c, Comparison::Equality))
        }
        Expr::In { expr, target: InTarget::List(list), negated: false, .. } if !list.iter().any(mentions_column) => {
            column(expr).map(|c| (c, Comparison::Equality))
        }
        Expr::IsNull(expr) => column(expr).map(|c| (c, Comparison::Equality)),
        Expr::Between { expr, negated: false, low, high } if !mentions_column(low) && !mentions_column(high) => {
            column(expr).map(|c| (c, Comparison::Range))
        }
        Expr::Nested(inner) => value_comparison(inner),
        _ => None,
    }
}

/// `expr` as a plain column reference (casts of a column count as the column).
fn column(expr: &Expr) -> Option<ColumnRef> {
    match expr {
        Expr::Identifier(ident) => Some(ColumnRef { qualifier: None, column: unquote(ident) }),
        Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
            let column = unquote(&parts[parts.len() - 1]);
            let qualifier = unquote(&parts[parts.len() - 2]);
            Some(ColumnRef { qualifier: Some(qualifier), column })
        }
        Expr::Nested(inner) => column(inner),
        _ => None,
    }
}

fn mentions_column(expr: &Expr) -> bool {
    sqlparser::ast::visit_expressions(expr, |e| match e {
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

fn order_columns(exprs: &[OrderByExpr]) -> Vec<(ColumnRef, bool)> {
    let mut out = Vec::new();
    for expr in exprs {
        let Some(column) = column(&expr.expr) else { return Vec::new() };
        out.push((column, matches!(expr.options.sort, Some(OrderBySort::Desc))));
    }
    out
}

fn object_name(name: &ObjectName) -> String {
    name.0
        .iter()
        .map(|part| match part {
            ObjectNamePart::Identifier(ident) => unquote(ident),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Unquoted identifiers fold to lower case as both databases do; quoted ones keep their case.
fn unquote(ident: &Ident) -> String {
    if ident.quote_style.is_some() { ident.value.clone() } else { ident.value.to_lowercase() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_table(sql: &str, target: Target) -> TableUse {
        let analysis = analyze(sql, target).expect("analyzes");
        let scope = &analysis.scopes[0];
        scope.resolve(&scope.tables[0], |_, _| true)
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn equality_range_and_order_by_are_told_apart() {
        let used = one_table(
            "SELECT * FROM orders WHERE customer_id = ?1 AND status IN ('a', 'b') AND total > ?2 ORDER BY created_at DESC",
            Target::Sqlite,
        );
        assert_eq!(used.equality, strings(&["customer_id", "status"]));
        assert_eq!(used.range, strings(&["total"]));
        assert_eq!(used.order_by, vec![("created_at".to_string(), true)]);
    }

    #[test]
    fn or_joins_and_expressions_propose_nothing() {
        let used = one_table(
            "SELECT * FROM users WHERE (email = $1 OR name = $2) AND lower(city) = $3 AND deleted_at IS NULL",
            Target::Postgres,
        );
        assert_eq!(used.equality, strings(&["deleted_at"]));
        assert!(used.range.is_empty());
    }

    #[test]
    fn qualified_columns_go_to_their_table_and_join_conditions_are_ignored() {
        let analysis = analyze(
            "SELECT o.id FROM orders o JOIN users u ON u.id = o.user_id WHERE u.email = $1 AND o.total > $2 ORDER BY o.created_at",
            Target::Postgres,
        )
        .expect("analyzes");
        let scope = &analysis.scopes[0];
        let orders = scope.resolve(&scope.tables[0], |_, _| true);
        let users = scope.resolve(&scope.tables[1], |_, _| true);
        assert_eq!((orders.equality.len(), orders.range.clone()), (0, strings(&["total"])));
        assert_eq!(orders.order_by, vec![("created_at".to_string(), false)]);
        assert_eq!(users.equality, strings(&["email"]));
        assert!(users.order_by.is_empty());
    }

    #[test]
    fn unqualified_columns_go_to_the_table_that_has_them() {
        let analysis =
            analyze("SELECT * FROM orders, users WHERE status = ?1 AND email = ?2", Target::Sqlite).expect("analyzes");
        let scope = &analysis.scopes[0];
        let has = |t: &TableRef, c: &str| (t.name == "orders") == (c == "status");
        assert_eq!(scope.resolve(&scope.tables[0], has).equality, strings(&["status"]));
        assert_eq!(scope.resolve(&scope.tables[1], has).equality, strings(&["email"]));
    }

    #[test]
    fn subqueries_are_scopes_of_their_own() {
        let analysis = analyze(
            "SELECT * FROM users WHERE id IN (SELECT user_id FROM orders WHERE created_at > $1)",
            Target::Postgres,
        )
        .expect("analyzes");
        assert_eq!(analysis.scopes.len(), 2);
        let inner = &analysis.scopes[1];
        assert_eq!(inner.tables[0].name, "orders");
        assert_eq!(inner.resolve(&inner.tables[0], |_, _| true).range, strings(&["created_at"]));
    }

    #[test]
    fn update_and_delete_are_analyzed() {
        let analysis = analyze("UPDATE users SET name = $1 WHERE email = $2", Target::Postgres).expect("analyzes");
        assert_eq!(analysis.kind, Kind::Update);
        let scope = &analysis.scopes[0];
        assert_eq!(scope.resolve(&scope.tables[0], |_, _| true).equality, strings(&["email"]));
        let analysis = analyze("DELETE FROM sessions WHERE expires_at < ?1", Target::Sqlite).expect("analyzes");
        assert_eq!(analysis.kind, Kind::Delete);
        let scope = &analysis.scopes[0];
        assert_eq!(scope.resolve(&scope.tables[0], |_, _| true).range, strings(&["expires_at"]));
    }

    #[test]
    fn other_statements_are_refused_with_their_verb() {
        let refused = analyze("INSERT INTO users (email) VALUES ($1)", Target::Postgres).expect_err("refused");
        assert_eq!(refused, Unsupported::Kind("INSERT".into()));
        assert!(refused.to_string().contains("never explained"));
        assert!(matches!(analyze("DROP TABLE users", Target::Sqlite), Err(Unsupported::Kind(_))));
        assert!(matches!(analyze("SELEC nonsense", Target::Sqlite), Err(Unsupported::Unparsable(_))));
    }

    #[test]
    fn quoted_names_keep_their_case_and_unquoted_fold() {
        let analysis =
            analyze("SELECT * FROM \"public\".\"Users\" AS U WHERE \"Email\" = $1", Target::Postgres).expect("ok");
        let table = &analysis.scopes[0].tables[0];
        assert_eq!((table.name.as_str(), table.alias.as_deref()), ("public.Users", Some("u")));
        assert_eq!(analysis.scopes[0].resolve(table, |_, _| true).equality, strings(&["Email"]));
    }
}
