//! sqlparser path: parse, rewrite the AST into its literal-free shape, print it.
//!
//! Takes the [`Lexed`] statement, rebuilds the parser input from its tokens (comments and
//! repeated list elements gone, strings shortened to `''`, every placeholder spelled the one
//! way the dialect parses: `$1` for PostgreSQL, `?` elsewhere), and parses it with the dialect
//! of the database system. A [`VisitorMut`] then turns every value into `?`, folds a sign on a
//! value, collapses value lists and extra `VALUES` rows, and meanwhile collects the tables and
//! the `WHERE` columns compared with a value. sqlparser's `Display` prints the result: keywords
//! upper case, single spaces, quoting as written.
//!
//! Rewriting placeholders before parsing replaces the parse-fail-then-retry dance (`%s` parses
//! nowhere, `?` not under PostgreSQL); a retry with the generic dialect stays as a last resort.
//! Returns `None` when no attempt parses; the caller then uses the token fallback.

use std::ops::ControlFlow;

use sqlparser::ast::{
    Array, BinaryOperator, Expr, FunctionArg, FunctionArgExpr, Ident, InTarget, ObjectName, ObjectNamePart, Query,
    Select, SetExpr, Statement, TableFactor, TopQuantity, UnaryOperator, Value, ValueWithSpan, VisitMut, VisitorMut,
};
use sqlparser::dialect::{
    ClickHouseDialect, Dialect, DuckDbDialect, GenericDialect, HiveDialect, MsSqlDialect, MySqlDialect, OracleDialect,
    PostgreSqlDialect, RedshiftSqlDialect, SQLiteDialect, SnowflakeDialect,
};
use sqlparser::parser::Parser;

use super::lexer::{Lexed, PlaceholderStyle, TokenKind};
use super::{Flavor, Shape};

/// Parses and normalizes `lexed`, trying the dialect of `db_system`, then (for `@name`
/// placeholders) the same dialect with those rewritten, then the generic dialect. Gives up
/// when the parser input exceeds `max_input_bytes`.
pub(super) fn parse(lexed: &Lexed<'_>, flavor: Flavor, db_system: &str, max_input_bytes: usize) -> Option<Shape> {
    let dialect = dialect_for(db_system, flavor);
    let canonical = flavor.canonical_placeholder();
    let input = parser_input(lexed, canonical, false, max_input_bytes)?;
    if let Some(shape) = parse_with(dialect, &input) {
        return Some(shape);
    }
    let has_at_names = lexed.tokens.iter().any(|t| t.kind == TokenKind::Placeholder(PlaceholderStyle::AtName));
    if has_at_names {
        let input = parser_input(lexed, canonical, true, max_input_bytes)?;
        if let Some(shape) = parse_with(dialect, &input) {
            return Some(shape);
        }
    }
    if dialect.is::<GenericDialect>() {
        return None;
    }
    parse_with(&GENERIC, &parser_input(lexed, "?", true, max_input_bytes)?)
}

static GENERIC: GenericDialect = GenericDialect;
static POSTGRES: PostgreSqlDialect = PostgreSqlDialect {};
static MYSQL: MySqlDialect = MySqlDialect {};
static SQLITE: SQLiteDialect = SQLiteDialect {};
static MSSQL: MsSqlDialect = MsSqlDialect {};
static ORACLE: OracleDialect = OracleDialect {};
static REDSHIFT: RedshiftSqlDialect = RedshiftSqlDialect {};
static CLICKHOUSE: ClickHouseDialect = ClickHouseDialect {};
static SNOWFLAKE: SnowflakeDialect = SnowflakeDialect;
static DUCKDB: DuckDbDialect = DuckDbDialect {};
static HIVE: HiveDialect = HiveDialect {};

/// The sqlparser dialect for an OpenTelemetry `db.system` value.
fn dialect_for(db_system: &str, flavor: Flavor) -> &'static dyn Dialect {
    match db_system {
        "redshift" | "aws.redshift" => &REDSHIFT,
        "clickhouse" => &CLICKHOUSE,
        "snowflake" => &SNOWFLAKE,
        "duckdb" => &DUCKDB,
        "hive" => &HIVE,
        _ => match flavor {
            Flavor::Postgres => &POSTGRES,
            Flavor::MySql => &MYSQL,
            Flavor::Sqlite => &SQLITE,
            Flavor::MsSql => &MSSQL,
            Flavor::Oracle => &ORACLE,
            Flavor::Generic => &GENERIC,
        },
    }
}

/// The statement as the parser should see it, rebuilt from the kept tokens: comments and
/// dropped list elements gone, whitespace one space, placeholders spelled `canonical` (`@name`
/// too when `at_names`), string literals spelled `''`. Only the statement's shape and the
/// digits of its numbers reach the parser, so whether it parses, what it prints and whether it
/// fits the size limit never depend on string contents. `None` beyond `max_bytes`.
fn parser_input(lexed: &Lexed<'_>, canonical: &str, at_names: bool, max_bytes: usize) -> Option<String> {
    let mut out = String::with_capacity(lexed.src.len().min(max_bytes));
    let mut previous_end = None;
    for token in lexed.tokens.iter().filter(|t| !t.dropped) {
        if previous_end.is_some_and(|end| end < token.start) {
            out.push(' ');
        }
        let text = lexed.text(token);
        let spelling = match token.kind {
            TokenKind::Placeholder(PlaceholderStyle::Bind) => canonical,
            TokenKind::Placeholder(PlaceholderStyle::AtName) if at_names => canonical,
            TokenKind::Literal if is_string_literal(text) => "''",
            _ => text,
        };
        out.push_str(spelling);
        if out.len() > max_bytes {
            return None;
        }
        previous_end = Some(token.end);
    }
    Some(out)
}

/// A literal token that is a string of some kind (quoted, prefixed or dollar-quoted), not a
/// number or boolean.
fn is_string_literal(text: &str) -> bool {
    let numeric = text.bytes().next().is_some_and(|b| b.is_ascii_digit() || b == b'.');
    let boolean = text.eq_ignore_ascii_case("TRUE") || text.eq_ignore_ascii_case("FALSE");
    !numeric && !boolean
}

/// One parse attempt; `None` on any parse error.
fn parse_with(dialect: &dyn Dialect, input: &str) -> Option<Shape> {
    let mut statements =
        Parser::new(dialect).try_with_sql(input).and_then(|mut parser| parser.parse_statements()).ok()?;
    if statements.is_empty() {
        return None;
    }
    let mut facts = super::ShapeFacts::default();
    super::facts::ast_facts(&statements[0], &mut facts);
    let mut normalizer = Normalizer::default();
    for statement in &mut statements {
        let _ = statement.visit(&mut normalizer);
    }
    let text = statements.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
    Some(Shape { text, tables: normalizer.tables, filter_columns: normalizer.filter_columns, facts })
}

/// Rewrites values to `?` and collects tables and filter columns in one walk.
#[derive(Debug, Default)]
struct Normalizer {
    tables: Vec<String>,
    filter_columns: Vec<String>,
    /// Names defined by `WITH`; a relation with one of these names is not a table.
    cte_names: Vec<String>,
    /// The table factor being visited calls a table function, so its name is no table.
    next_relation_is_function: bool,
}

impl VisitorMut for Normalizer {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                self.cte_names.push(cte.alias.name.value.clone());
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let SetExpr::Values(values) = query.body.as_mut() {
            values.rows.truncate(1);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        if let Some(top) = &mut select.top
            && let Some(TopQuantity::Constant(_)) = top.quantity
        {
            top.quantity = Some(TopQuantity::Expr(placeholder()));
        }
        if let Some(selection) = &select.selection {
            collect_filter_columns(selection, &mut self.filter_columns);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_statement(&mut self, statement: &mut Statement) -> ControlFlow<()> {
        let selection = match statement {
            Statement::Update(update) => update.selection.as_ref(),
            Statement::Delete(delete) => delete.selection.as_ref(),
            _ => None,
        };
        if let Some(selection) = selection {
            collect_filter_columns(selection, &mut self.filter_columns);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        self.next_relation_is_function = matches!(
            factor,
            TableFactor::Table { args: Some(args), .. } if !only_table_hints(&args.args)
        );
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &mut ObjectName) -> ControlFlow<()> {
        if std::mem::take(&mut self.next_relation_is_function) {
            return ControlFlow::Continue(());
        }
        let name = unquoted_name(relation);
        let is_cte = self.cte_names.iter().any(|cte| cte.eq_ignore_ascii_case(&name));
        if !is_cte && !name.is_empty() && !self.tables.contains(&name) {
            self.tables.push(name);
        }
        ControlFlow::Continue(())
    }

    fn post_visit_value(&mut self, value: &mut ValueWithSpan) -> ControlFlow<()> {
        value.value = Value::Placeholder("?".to_owned());
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        match expr {
            Expr::UnaryOp { op: UnaryOperator::Minus | UnaryOperator::Plus, expr: inner }
                if matches!(inner.as_ref(), Expr::Value(_)) =>
            {
                *expr = placeholder()
            }
            Expr::Identifier(ident) if is_at_name(ident) => *expr = placeholder(),
            Expr::In { target: InTarget::List(list), .. } if list.iter().all(is_value_like) => list.truncate(1),
            Expr::Array(Array { elem, .. }) if elem.iter().all(is_value_like) => elem.truncate(1),
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// The `?` placeholder expression every value becomes.
fn placeholder() -> Expr {
    Expr::value(Value::Placeholder("?".to_owned()))
}

/// `@name` parsed as an identifier (SQL Server, MySQL): a bind parameter. `@@name` is not.
fn is_at_name(ident: &Ident) -> bool {
    ident.quote_style.is_none() && ident.value.starts_with('@') && !ident.value.starts_with("@@")
}

/// A value, or a tuple of values, after normalization.
fn is_value_like(expr: &Expr) -> bool {
    match expr {
        Expr::Value(_) => true,
        Expr::Tuple(items) => items.iter().all(|item| matches!(item, Expr::Value(_))),
        _ => false,
    }
}

/// A value before normalization: literal or placeholder, signed, cast or parenthesized.
fn is_raw_value(expr: &Expr) -> bool {
    match expr {
        Expr::Value(_) => true,
        Expr::Identifier(ident) => is_at_name(ident),
        Expr::UnaryOp { expr, .. } | Expr::Nested(expr) | Expr::Cast { expr, .. } => is_raw_value(expr),
        _ => false,
    }
}

/// The column an expression names, without qualifier.
fn column_name(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Identifier(ident) if !is_at_name(ident) => Some(&ident.value),
        Expr::CompoundIdentifier(parts) => parts.last().map(|ident| ident.value.as_str()),
        _ => None,
    }
}

/// Walks the `AND`/`OR` structure of a `WHERE` expression and records every column compared
/// with `=`, `IN (values)` or `= ANY(value)` against a value. Subqueries are left to their own
/// `SELECT`.
fn collect_filter_columns(expr: &Expr, columns: &mut Vec<String>) {
    let column = match expr {
        Expr::BinaryOp { left, op: BinaryOperator::And | BinaryOperator::Or, right } => {
            collect_filter_columns(left, columns);
            collect_filter_columns(right, columns);
            None
        }
        Expr::Nested(inner) => {
            collect_filter_columns(inner, columns);
            None
        }
        Expr::BinaryOp { left, op: BinaryOperator::Eq, right } if is_raw_value(right) => column_name(left),
        Expr::BinaryOp { left, op: BinaryOperator::Eq, right } if is_raw_value(left) => column_name(right),
        Expr::In { expr, target: InTarget::List(list), negated: false, .. } if list.iter().all(is_raw_value) => {
            column_name(expr)
        }
        Expr::AnyOp { left, compare_op: BinaryOperator::Eq, right, .. } if is_raw_value(right) => column_name(left),
        _ => None,
    };
    if let Some(column) = column
        && !columns.iter().any(|c| c == column)
    {
        columns.push(column.to_owned());
    }
}

/// `schema.table` without quotes.
fn unquoted_name(name: &ObjectName) -> String {
    let mut out = String::new();
    for part in &name.0 {
        if let ObjectNamePart::Identifier(ident) = part {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&ident.value);
        }
    }
    out
}

/// SQL Server table hints parse as table-function arguments: `FROM t (NOLOCK)`.
fn only_table_hints(args: &[FunctionArg]) -> bool {
    !args.is_empty()
        && args.iter().all(|arg| {
            matches!(
                arg,
                FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Identifier(ident)))
                    if super::fallback::is_table_hint(&ident.value)
            )
        })
}

#[cfg(test)]
mod tests {
    use super::super::lexer::lex;
    use super::*;
    use rstest::rstest;

    fn run(src: &str, db_system: &str) -> Option<Shape> {
        let flavor = Flavor::from_db_system(db_system);
        let mut lexed = lex(src, flavor);
        lexed.mark_collapsible_lists();
        parse(&lexed, flavor, db_system, usize::MAX)
    }

    fn text(src: &str, db_system: &str) -> String {
        run(src, db_system).map(|p| p.text).unwrap_or_default()
    }

    #[rstest]
    #[case::pyformat_postgres(
        "SELECT * FROM t WHERE a = %s AND b = %(b)s",
        "postgresql",
        "SELECT * FROM t WHERE a = ? AND b = ?"
    )]
    #[case::question_postgres(
        "select * from t where a=? and data ? 'k' limit ?",
        "postgresql",
        "SELECT * FROM t WHERE a = ? AND data ? ? LIMIT ?"
    )]
    #[case::ruby_dollar(
        "SELECT \"users\".* FROM \"users\" WHERE \"users\".\"id\" = $? LIMIT $?",
        "postgresql",
        "SELECT \"users\".* FROM \"users\" WHERE \"users\".\"id\" = ? LIMIT ?"
    )]
    #[case::negative_and_lists(
        "SELECT * FROM t WHERE a = -1 AND b IN (1, 2, 3) AND c = ANY(ARRAY[1, 2])",
        "postgresql",
        "SELECT * FROM t WHERE a = ? AND b IN (?) AND c = ANY(ARRAY[?])"
    )]
    #[case::multi_row_insert(
        "INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y'), (3, 'z')",
        "mysql",
        "INSERT INTO t (a, b) VALUES (?, ?)"
    )]
    #[case::ef_core_paging(
        "SELECT [u].[Id] FROM [Users] AS [u] ORDER BY [u].[Id] OFFSET @__p_0 ROWS FETCH NEXT \
            @__p_1 ROWS ONLY",
        "microsoft.sql_server",
        "SELECT [u].[Id] FROM [Users] AS [u] ORDER BY [u].[Id] OFFSET ? ROWS FETCH FIRST ? ROWS \
            ONLY"
    )]
    #[case::top_constant("SELECT TOP 10 * FROM [t]", "mssql", "SELECT TOP (?) * FROM [t]")]
    #[case::oracle("SELECT * FROM t WHERE a = :1 AND b = :name", "oracle", "SELECT * FROM t WHERE a = ? AND b = ?")]
    #[case::sqlcommenter("SELECT 1 /*controller='index',traceparent='00-abc-def-01'*/", "postgresql", "SELECT ?")]
    fn statements_are_normalized(#[case] src: &str, #[case] db_system: &str, #[case] want: &str) {
        assert_eq!(text(src, db_system), want);
    }

    #[rstest]
    #[case::comments_and_strings(
        "SELECT  a /* c */ FROM t -- x\nWHERE b = 'long text' AND c = E'x' AND d = 1.5",
        "postgresql",
        "SELECT a FROM t WHERE b = '' AND c = '' AND d = 1.5"
    )]
    #[case::placeholders(
        "SELECT * FROM t WHERE a = %s AND b IN (%(x)s, %(y)s) AND c = @p",
        "postgresql",
        "SELECT * FROM t WHERE a = $1 AND b IN ($1 ) AND c = @p"
    )]
    #[case::adjacent_tokens("SELECT t.a::text,x=?,true FROM t", "mysql", "SELECT t.a::text,x=?,true FROM t")]
    fn parser_input_keeps_only_the_shape(#[case] src: &str, #[case] db_system: &str, #[case] want: &str) {
        let flavor = Flavor::from_db_system(db_system);
        let mut lexed = lex(src, flavor);
        lexed.mark_collapsible_lists();
        assert_eq!(parser_input(&lexed, flavor.canonical_placeholder(), false, usize::MAX), Some(want.to_owned()));
    }

    #[test]
    fn tables_skip_ctes_and_table_functions() {
        let parsed = run(
            "WITH recent AS (SELECT * FROM orders) \
             SELECT * FROM recent JOIN \"public\".\"users\" u ON u.id = recent.user_id, \
             generate_series(1, 3) g WHERE u.id IN (SELECT user_id FROM bans)",
            "postgresql",
        );
        let tables = parsed.map(|p| p.tables).unwrap_or_default();
        assert_eq!(tables, ["orders", "public.users", "bans"]);
    }

    #[test]
    fn table_hints_are_not_table_functions() {
        let parsed = run("SELECT * FROM [t] (NOLOCK) WHERE [t].[id] = @p0", "mssql");
        let tables = parsed.map(|p| p.tables).unwrap_or_default();
        assert_eq!(tables, ["t"]);
    }

    #[rstest]
    #[case::django(
        "SELECT \"app_book\".\"id\" FROM \"app_book\" WHERE \"app_book\".\"author_id\" = %s",
        &["author_id"]
    )]
    #[case::mixed(
        "SELECT * FROM t WHERE (a = 1 OR 2 = b) AND c IN (1, 2) AND d NOT IN (1) AND e > 1",
        &["a", "b", "c"]
    )]
    #[case::any("SELECT * FROM t WHERE t.id = ANY($1::int[])", &["id"])]
    #[case::update("UPDATE t SET a = 1 WHERE id = $1", &["id"])]
    #[case::delete("DELETE FROM t WHERE t.id = $1", &["id"])]
    #[case::at_name("SELECT * FROM [t] WHERE [t].[Id] = @__id_0", &["Id"])]
    fn filter_columns_are_collected(#[case] src: &str, #[case] want: &[&str]) {
        let system = if src.contains('[') { "mssql" } else { "postgresql" };
        let columns = run(src, system).map(|p| p.filter_columns);
        assert_eq!(columns.unwrap_or_default(), want);
    }

    #[rstest]
    #[case::unclosed("SELECT * FROM t WHERE a IN (1, 2")]
    #[case::do_block("DO $$ BEGIN PERFORM 1; END $$")]
    #[case::garbage("\u{1}\u{2} ??? !!")]
    #[case::empty("")]
    fn unparseable_text_gives_none(#[case] src: &str) {
        assert!(run(src, "postgresql").is_none());
    }
}
