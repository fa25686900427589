//! Shape facts of a statement that the slow-query-shape rules (`analyze::shapes`) judge: a
//! `LIKE` pattern with a leading wildcard, a `SELECT` without `LIMIT`, the `OFFSET`, a
//! whole-table `COUNT(*)`, a function wrapped around a filtered column, `SELECT *`.
//!
//! Computed once per fingerprint (the cache keeps them with it): the `LIKE` facts from the
//! tokens (string contents never reach the parser), the rest from the sqlparser AST before it is
//! normalized (numbers still carry their digits there).

use sqlparser::ast::{
    BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, LimitClause, Query, Select,
    SelectItem, SetExpr, Statement, Value,
};

use super::lexer::{Lexed, TokenKind};

/// Facts about one statement's shape. All false / `None` for statements that did not parse,
/// except the `LIKE` facts, which come from the tokens.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ShapeFacts {
    /// A `LIKE`/`ILIKE` pattern written in the statement starts with a wildcard (`'%term%'`,
    /// `'%' || ?`, `CONCAT('%', ?)`): no B-tree index can serve it.
    pub leading_wildcard: bool,
    /// A `LIKE`/`ILIKE` pattern is a bind placeholder: its value decides (see the captured
    /// parameters).
    pub like_placeholder: bool,
    /// The statement is a `SELECT` from a table without `LIMIT`, `FETCH` or `TOP`, and not a
    /// single aggregate row.
    pub select_without_limit: bool,
    /// The `OFFSET` written as a number.
    pub offset: Option<u64>,
    /// `SELECT COUNT(*)` (or `COUNT(1)`, `COUNT(column)`) alone, without `GROUP BY` and without
    /// any equality filter: it counts a table or a large part of it.
    pub count_all: bool,
    /// A function wrapped around a column compared in `WHERE` (`lower(email)`), so that a plain
    /// index on the column cannot be used; the call as written, lower case.
    pub function_on_filter: Option<String>,
    /// The select list is an unqualified `*`.
    pub select_star: bool,
}

/// Most tokens looked at after `LIKE` for the start of its pattern.
const PATTERN_LOOKAHEAD: usize = 6;

/// Sets the `LIKE` facts from the tokens.
pub(super) fn like_facts(lexed: &Lexed<'_>, facts: &mut ShapeFacts) {
    let tokens: Vec<_> = lexed.tokens.iter().filter(|t| !t.dropped).collect();
    for (i, token) in tokens.iter().enumerate() {
        let is_like = token.kind == TokenKind::Word && {
            let word = lexed.text(token);
            word.eq_ignore_ascii_case("LIKE") || word.eq_ignore_ascii_case("ILIKE")
        };
        if !is_like {
            continue;
        }
        let pattern_start = tokens.iter().skip(i + 1).take(PATTERN_LOOKAHEAD).find(|t| {
            matches!(t.kind, TokenKind::Literal | TokenKind::Placeholder(_) | TokenKind::QuotedIdent)
                || (t.kind == TokenKind::Word && !is_function_name(lexed.text(t)))
        });
        match pattern_start.map(|t| (t.kind, lexed.text(t))) {
            Some((TokenKind::Literal, text)) if starts_with_wildcard(text) => facts.leading_wildcard = true,
            Some((TokenKind::Placeholder(_), _)) => facts.like_placeholder = true,
            _ => {}
        }
    }
}

/// Function names that may wrap a `LIKE` pattern (`UPPER(?)`, `CONCAT('%', ?)`).
fn is_function_name(word: &str) -> bool {
    ["UPPER", "LOWER", "CONCAT", "REPLACE", "UNACCENT", "CAST"].iter().any(|f| word.eq_ignore_ascii_case(f))
}

/// A string literal (with an optional `E`/`N` prefix) whose first character is `%` or `_`.
fn starts_with_wildcard(literal: &str) -> bool {
    let body = literal.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    body.strip_prefix('\'').is_some_and(|rest| rest.starts_with('%') || rest.starts_with('_'))
}

/// Sets the AST facts from the first statement, before normalization.
pub(super) fn ast_facts(statement: &Statement, facts: &mut ShapeFacts) {
    let Statement::Query(query) = statement else {
        if let Some(selection) = where_of_write(statement) {
            facts.function_on_filter = function_on_filter(selection);
        }
        return;
    };
    query_facts(query, facts);
}

fn where_of_write(statement: &Statement) -> Option<&Expr> {
    match statement {
        Statement::Update(update) => update.selection.as_ref(),
        Statement::Delete(delete) => delete.selection.as_ref(),
        _ => None,
    }
}

fn query_facts(query: &Query, facts: &mut ShapeFacts) {
    let SetExpr::Select(select) = query.body.as_ref() else { return };
    let limited = query.limit_clause.as_ref().is_some_and(has_limit) || query.fetch.is_some() || select.top.is_some();
    facts.offset = query.limit_clause.as_ref().and_then(offset_of);
    let aggregate_row = is_single_aggregate(select);
    facts.select_without_limit = !limited && !aggregate_row && !select.from.is_empty();
    facts.count_all = is_count(select)
        && aggregate_row
        && select.selection.as_ref().is_none_or(|selection| !has_equality_filter(selection));
    facts.select_star = select.projection.iter().any(|item| matches!(item, SelectItem::Wildcard(_)));
    facts.function_on_filter = select.selection.as_ref().and_then(function_on_filter);
}

fn has_limit(clause: &LimitClause) -> bool {
    match clause {
        LimitClause::LimitOffset { limit, .. } => limit.is_some(),
        LimitClause::OffsetCommaLimit { .. } => true,
    }
}

fn offset_of(clause: &LimitClause) -> Option<u64> {
    let expr = match clause {
        LimitClause::LimitOffset { offset, .. } => &offset.as_ref()?.value,
        LimitClause::OffsetCommaLimit { offset, .. } => offset,
    };
    match expr {
        Expr::Value(value) => match &value.value {
            Value::Number(digits, _) => digits.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

/// The select list is aggregate calls only, without `GROUP BY`: one row comes back.
fn is_single_aggregate(select: &Select) -> bool {
    let no_group_by = matches!(&select.group_by, GroupByExpr::Expressions(exprs, _) if exprs.is_empty());
    no_group_by
        && !select.projection.is_empty()
        && select.projection.iter().all(|item| projected_expr(item).is_some_and(is_aggregate_call))
}

fn projected_expr(item: &SelectItem) -> Option<&Expr> {
    match item {
        SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } => Some(expr),
        _ => None,
    }
}

fn function_name(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Function(function) => Some(function.name.to_string().to_ascii_lowercase()),
        _ => None,
    }
}

fn is_aggregate_call(expr: &Expr) -> bool {
    function_name(expr).is_some_and(|name| matches!(name.as_str(), "count" | "sum" | "avg" | "min" | "max"))
}

/// The select list is one `COUNT(...)`.
fn is_count(select: &Select) -> bool {
    select.projection.len() == 1
        && projected_expr(&select.projection[0]).and_then(function_name).is_some_and(|name| name == "count")
}

/// The `WHERE` has an `=` / `IN` comparison with a value somewhere in its `AND` structure.
fn has_equality_filter(expr: &Expr) -> bool {
    match expr {
        Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
            has_equality_filter(left) || has_equality_filter(right)
        }
        Expr::Nested(inner) => has_equality_filter(inner),
        Expr::BinaryOp { left, op: BinaryOperator::Eq, right } => is_value(left) || is_value(right),
        Expr::In { .. } | Expr::AnyOp { .. } => true,
        _ => false,
    }
}

fn is_value(expr: &Expr) -> bool {
    match expr {
        Expr::Value(_) => true,
        Expr::Nested(inner) | Expr::Cast { expr: inner, .. } | Expr::UnaryOp { expr: inner, .. } => is_value(inner),
        Expr::Function(_) => function_args(expr).iter().all(|arg| is_value(arg)),
        _ => false,
    }
}

fn is_column(expr: &Expr) -> bool {
    match expr {
        Expr::Identifier(ident) => !ident.value.starts_with('@'),
        Expr::CompoundIdentifier(_) => true,
        Expr::Nested(inner) | Expr::Cast { expr: inner, .. } => is_column(inner),
        _ => false,
    }
}

fn function_args(expr: &Expr) -> Vec<&Expr> {
    let Expr::Function(function) = expr else { return Vec::new() };
    let FunctionArguments::List(list) = &function.args else { return Vec::new() };
    list.args
        .iter()
        .filter_map(|arg| match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(expr)) => Some(expr),
            FunctionArg::Named { arg: FunctionArgExpr::Expr(expr), .. } => Some(expr),
            _ => None,
        })
        .collect()
}

/// A function call over a column that is compared with a value (`lower(email) = ?`,
/// `DATE(created_at) >= ?`, `UPPER(title::text) LIKE UPPER(?)`), in the `AND`/`OR` structure.
fn function_on_filter(expr: &Expr) -> Option<String> {
    let (left, right) = match expr {
        Expr::BinaryOp { left, op: BinaryOperator::And | BinaryOperator::Or, right } => {
            return function_on_filter(left).or_else(|| function_on_filter(right));
        }
        Expr::Nested(inner) => return function_on_filter(inner),
        Expr::BinaryOp {
            left,
            op:
                BinaryOperator::Eq
                | BinaryOperator::NotEq
                | BinaryOperator::Lt
                | BinaryOperator::LtEq
                | BinaryOperator::Gt
                | BinaryOperator::GtEq,
            right,
        } => (left.as_ref(), right.as_ref()),
        Expr::Like { expr, pattern, .. } | Expr::ILike { expr, pattern, .. } => (expr.as_ref(), pattern.as_ref()),
        Expr::In { expr, .. } => (expr.as_ref(), expr.as_ref()),
        _ => return None,
    };
    let wrapped = |side: &Expr, other: &Expr| {
        let over_column = function_args(side).iter().any(|arg| is_column(arg));
        (over_column && (is_value(other) || std::ptr::eq(side, other))).then(|| call_text(side))
    };
    wrapped(left, right).or_else(|| wrapped(right, left))
}

/// `lower(email)`: the function name and the columns it is applied to, lower case.
fn call_text(expr: &Expr) -> String {
    let name = function_name(expr).unwrap_or_default();
    let columns: Vec<String> = function_args(expr).iter().filter(|a| is_column(a)).map(|a| column_text(a)).collect();
    format!("{name}({})", columns.join(", "))
}

fn column_text(expr: &Expr) -> String {
    match expr {
        Expr::Identifier(ident) => ident.value.clone(),
        Expr::CompoundIdentifier(parts) => parts.last().map(|p| p.value.clone()).unwrap_or_default(),
        Expr::Nested(inner) | Expr::Cast { expr: inner, .. } => column_text(inner),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use crate::analyze::fingerprint::fingerprint;

    use super::*;

    fn facts(sql: &str, system: &str) -> ShapeFacts {
        fingerprint(sql, system).facts
    }

    #[test]
    fn leading_wildcard_in_literal_patterns() {
        // Django icontains with an expression right-hand side, on SQLite.
        let django = r#"SELECT "library_book"."id" FROM "library_book" WHERE "library_book"."title" LIKE '%' || UPPER(REPLACE(%s, '\', '\\')) || '%' ESCAPE '\'"#;
        assert!(facts(django, "sqlite").leading_wildcard);
        // Hibernate on MySQL.
        assert!(
            facts("select u1_0.id from users u1_0 where u1_0.name like concat('%', ?, '%')", "mysql").leading_wildcard
        );
        assert!(facts("SELECT * FROM products WHERE name ILIKE '%phone%'", "postgresql").leading_wildcard);
        // Prefix searches can use an index.
        let prefix = facts("SELECT * FROM products WHERE name LIKE 'phone%'", "postgresql");
        assert!(!prefix.leading_wildcard && !prefix.like_placeholder);
    }

    #[test]
    fn placeholder_patterns_are_marked_for_the_parameters_to_decide() {
        // Django icontains on PostgreSQL; Rails `where("name ILIKE ?", "%x%")`.
        let django = r#"SELECT "t"."id" FROM "t" WHERE UPPER("t"."title"::text) LIKE UPPER(%s)"#;
        let f = facts(django, "postgresql");
        assert!(f.like_placeholder && !f.leading_wildcard);
        assert_eq!(f.function_on_filter.as_deref(), Some("upper(title)"));
        assert!(facts(r#"SELECT "users".* FROM "users" WHERE (name ILIKE $1)"#, "postgresql").like_placeholder);
    }

    #[test]
    fn select_without_limit_and_offset() {
        let page = facts(r#"SELECT "t"."id" FROM "t" ORDER BY "t"."id" ASC LIMIT 20 OFFSET 5000"#, "postgresql");
        assert!(!page.select_without_limit);
        assert_eq!(page.offset, Some(5000));
        let mysql = facts("SELECT id FROM t ORDER BY id LIMIT 4000, 20", "mysql");
        assert_eq!(mysql.offset, Some(4000));
        assert!(facts(r#"SELECT "t"."id", "t"."title" FROM "t" ORDER BY "t"."id""#, "sqlite").select_without_limit);
        assert!(!facts("SELECT MAX(id) FROM t", "sqlite").select_without_limit);
        assert!(!facts("SELECT 1", "sqlite").select_without_limit);
        // Hibernate paging with FETCH, SQL Server TOP.
        assert!(
            !facts("select b.id from book b offset ? rows fetch first ? rows only", "postgresql").select_without_limit
        );
        assert!(!facts("SELECT TOP 10 id FROM t", "mssql").select_without_limit);
    }

    #[test]
    fn whole_table_counts() {
        assert!(facts(r#"SELECT COUNT(*) AS "__count" FROM "library_book""#, "sqlite").count_all);
        assert!(facts("SELECT COUNT(*) FROM orders WHERE created_at > $1", "postgresql").count_all);
        assert!(!facts(r#"SELECT COUNT(*) FROM "t" WHERE "t"."author_id" = %s"#, "sqlite").count_all);
        assert!(!facts("SELECT status, COUNT(*) FROM t GROUP BY status", "sqlite").count_all);
        assert!(!facts("SELECT id FROM t", "sqlite").count_all);
    }

    #[test]
    fn functions_on_filtered_columns() {
        let f = facts("SELECT id FROM users WHERE lower(email) = $1", "postgresql");
        assert_eq!(f.function_on_filter.as_deref(), Some("lower(email)"));
        let f = facts("SELECT id FROM orders WHERE status = 'x' AND DATE(created_at) >= '2024-01-01'", "mysql");
        assert_eq!(f.function_on_filter.as_deref(), Some("date(created_at)"));
        let f = facts("UPDATE users SET seen = 1 WHERE LOWER(email) = ?", "mysql");
        assert_eq!(f.function_on_filter.as_deref(), Some("lower(email)"));
        // A function on the value side is harmless.
        assert_eq!(facts("SELECT id FROM users WHERE email = lower($1)", "postgresql").function_on_filter, None);
    }

    #[test]
    fn select_star_is_unqualified_star_only() {
        assert!(facts("SELECT * FROM users WHERE id = ?", "mysql").select_star);
        // Rails always selects `"users".*`: no finding on every query of every Rails app.
        assert!(!facts(r#"SELECT "users".* FROM "users" WHERE "users"."id" = $1 LIMIT $2"#, "postgresql").select_star);
    }
}
