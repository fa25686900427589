//! Token-based fingerprint: the path for SQL that sqlparser does not take.
//!
//! Takes the [`Lexed`] tokens of a statement (repeated list elements already marked dropped)
//! and emits the normalized text, the tables and the filter columns, best effort. Literals and
//! placeholders print as `?`, a sign before them folds away, known keywords print upper case,
//! identifiers print as written, and spacing follows the parser's output closely (no space
//! inside parentheses or before commas, none around `.` and `::`). It also derives the
//! statement's operation for both paths, since the leading verb needs no parse.
//!
//! Shaped as plain passes over the token slice: no backtracking, no allocation per token
//! beyond the output text, so it costs about as much as the lexer.

use std::borrow::Cow;

use super::Shape;
use super::lexer::{Lexed, Token, TokenKind, keyword, matching_close, paren_partners};

/// Runs every fallback pass over `lexed`: normalized text, tables after `FROM`, `JOIN`,
/// `INTO`, `UPDATE`, `TABLE`, `USING`, and `WHERE` columns compared with a value.
pub(super) fn shape(lexed: &Lexed<'_>) -> Shape {
    let tokens: Vec<Token> = lexed.tokens.iter().copied().filter(|t| !t.dropped).collect();
    let partners = paren_partners(&tokens);
    let keywords = tokens
        .iter()
        .map(|t| match t.kind {
            TokenKind::Word => keyword(lexed.text(t)),
            _ => None,
        })
        .collect();
    let last_statement_token = tokens.iter().rposition(|t| t.kind != TokenKind::Semicolon);
    let view = View { lexed, tokens, partners, keywords, last_statement_token };
    Shape {
        text: view.normalized_text(),
        tables: view.tables(),
        filter_columns: view.filter_columns(),
        facts: Default::default(),
    }
}

/// Verbs reported as a statement's operation.
const VERBS: &[&str] = &[
    "ABORT",
    "ALTER",
    "ANALYZE",
    "BEGIN",
    "CALL",
    "CHECKPOINT",
    "CLOSE",
    "CLUSTER",
    "COMMENT",
    "COMMIT",
    "COPY",
    "CREATE",
    "DEALLOCATE",
    "DECLARE",
    "DELETE",
    "DESC",
    "DESCRIBE",
    "DISCARD",
    "DO",
    "DROP",
    "END",
    "EXEC",
    "EXECUTE",
    "EXPLAIN",
    "FETCH",
    "FLUSH",
    "GRANT",
    "INSERT",
    "KILL",
    "LISTEN",
    "LOAD",
    "LOCK",
    "MERGE",
    "MOVE",
    "NOTIFY",
    "OPTIMIZE",
    "PRAGMA",
    "PREPARE",
    "REFRESH",
    "REINDEX",
    "RELEASE",
    "RENAME",
    "REPLACE",
    "RESET",
    "REVOKE",
    "ROLLBACK",
    "SAVEPOINT",
    "SELECT",
    "SET",
    "SHOW",
    "START",
    "TABLE",
    "TRUNCATE",
    "UNLISTEN",
    "UPDATE",
    "UPSERT",
    "USE",
    "VACUUM",
    "VALUES",
    "WITH",
];

/// Verbs that can follow a `WITH` clause as the main statement.
const MAIN_VERBS_AFTER_WITH: &[&str] = &["SELECT", "INSERT", "UPDATE", "DELETE", "MERGE"];

/// The leading verb, upper case: the main statement's verb for `WITH .. <verb>`, `None` when
/// the text starts with no known verb.
pub(super) fn operation(lexed: &Lexed<'_>) -> Option<String> {
    let first = lexed.tokens.iter().position(|t| t.kind != TokenKind::OpenParen)?;
    let token = lexed.tokens.get(first)?;
    if token.kind != TokenKind::Word {
        return None;
    }
    let verb = lexed.text(token).to_ascii_uppercase();
    if verb == "WITH" {
        return Some(main_verb_after_with(lexed, first + 1).unwrap_or(verb));
    }
    VERBS.contains(&verb.as_str()).then_some(verb)
}

/// First top-level `SELECT`/`INSERT`/`UPDATE`/`DELETE`/`MERGE` after the common table
/// expressions that start at `from`.
fn main_verb_after_with(lexed: &Lexed<'_>, from: usize) -> Option<String> {
    let mut depth = 0_usize;
    for token in lexed.tokens.get(from..)? {
        match token.kind {
            TokenKind::OpenParen => depth += 1,
            TokenKind::CloseParen => depth = depth.saturating_sub(1),
            TokenKind::Word if depth == 0 => {
                let word = lexed.text(token).to_ascii_uppercase();
                if MAIN_VERBS_AFTER_WITH.contains(&word.as_str()) {
                    return Some(word);
                }
            }
            _ => {}
        }
    }
    None
}

/// The kept tokens of a statement with the text they point into.
struct View<'a, 'b> {
    lexed: &'b Lexed<'a>,
    tokens: Vec<Token>,
    /// [`paren_partners`] of `tokens`.
    partners: Vec<usize>,
    /// For each token, its upper-case keyword spelling when it is a keyword word.
    keywords: Vec<Option<&'static str>>,
    /// Index of the last token that is not a `;`.
    last_statement_token: Option<usize>,
}

/// How a printed unit spaces against its neighbours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    /// Keyword printed upper case.
    Keyword,
    /// Identifier, function or type name, as written.
    Name,
    /// `?`
    Value,
    /// `(`, `[`
    Open,
    /// `)`, `]`
    Close,
    /// `,`, `;`
    Separator,
    /// `.`, `::`
    Joiner,
    /// Any other operator.
    Operator,
}

impl View<'_, '_> {
    fn text(&self, i: usize) -> &str {
        self.tokens.get(i).map_or("", |t| self.lexed.text(t))
    }

    fn kind(&self, i: usize) -> Option<TokenKind> {
        self.tokens.get(i).map(|t| t.kind)
    }

    fn keyword(&self, i: usize) -> Option<&'static str> {
        self.keywords.get(i).copied().flatten()
    }

    /// Token `i` is the keyword `word`, given upper case and present in the keyword table.
    fn is_word(&self, i: usize, word: &str) -> bool {
        debug_assert!(keyword(word) == Some(word), "{word} is not in the keyword table");
        self.keyword(i) == Some(word)
    }

    /// Quoted identifier, or word that is not a keyword or is part of a qualified name.
    fn is_name(&self, i: usize) -> bool {
        self.tokens.get(i).is_some_and(|t| match t.kind {
            TokenKind::QuotedIdent => true,
            TokenKind::Word => self.keyword(i).is_none() || self.is_qualified(i),
            _ => false,
        })
    }

    fn is_value(&self, i: usize) -> bool {
        matches!(self.kind(i), Some(TokenKind::Literal | TokenKind::Placeholder(_)))
    }

    fn is_sign(&self, i: usize) -> bool {
        self.kind(i) == Some(TokenKind::Operator) && matches!(self.text(i), "-" | "+")
    }

    /// A word that touches a `.` on either side is part of a qualified name.
    fn is_qualified(&self, i: usize) -> bool {
        let dot_before = i > 0 && self.kind(i - 1) == Some(TokenKind::Dot);
        dot_before || self.kind(i + 1) == Some(TokenKind::Dot)
    }

    /// `NULL` right after `IS` or `IS NOT` stays a keyword; elsewhere it is a value.
    fn is_null_value(&self, i: usize) -> bool {
        if !self.is_word(i, "NULL") {
            return false;
        }
        let after_is = i >= 1 && self.is_word(i - 1, "IS");
        let after_is_not = i >= 2 && self.is_word(i - 1, "NOT") && self.is_word(i - 2, "IS");
        !(after_is || after_is_not)
    }

    /// A `-` or `+` right before a value, where it cannot be a binary operator.
    fn is_foldable_sign(&self, i: usize, previous: Option<Unit>) -> bool {
        let unary_position = !matches!(previous, Some(Unit::Name | Unit::Value | Unit::Close));
        self.is_sign(i) && unary_position && (self.is_value(i + 1) || self.is_null_value(i + 1))
    }

    // --- text -------------------------------------------------------------------------------

    fn normalized_text(&self) -> String {
        let mut out = String::with_capacity(self.lexed.src.len().min(4096));
        let mut previous: Option<Unit> = None;
        let mut previous_text = String::new();
        let mut after_insert_target = false;
        for i in 0..self.tokens.len() {
            if self.is_foldable_sign(i, previous) {
                continue;
            }
            let Some((unit, text)) = self.unit(i) else {
                continue;
            };
            let redundant_semicolon =
                text == ";" && (previous.is_none() || self.rest_is_semicolons(i) || self.text(i - 1) == ";");
            if redundant_semicolon {
                continue;
            }
            let spacing =
                Spacing { previous, previous_text: &previous_text, next: unit, next_text: &text, after_insert_target };
            if spacing.needs_space() {
                out.push(' ');
            }
            out.push_str(&text);
            after_insert_target = self.continues_insert_target(i, after_insert_target);
            previous = Some(unit);
            previous_text.clear();
            previous_text.push_str(&text);
        }
        out
    }

    fn rest_is_semicolons(&self, i: usize) -> bool {
        self.last_statement_token.is_none_or(|last| i > last)
    }

    /// Tracks the name after `INTO` / `TABLE`, whose column list gets a space before `(`.
    fn continues_insert_target(&self, i: usize, current: bool) -> bool {
        if self.is_word(i, "INTO") || self.is_word(i, "TABLE") {
            return true;
        }
        current && (self.is_name(i) || self.kind(i) == Some(TokenKind::Dot))
    }

    /// How token `i` prints.
    fn unit(&self, i: usize) -> Option<(Unit, Cow<'_, str>)> {
        let token = self.tokens.get(i)?;
        let text = self.lexed.text(token);
        let unit = match token.kind {
            TokenKind::Literal | TokenKind::Placeholder(_) => {
                return Some((Unit::Value, "?".into()));
            }
            TokenKind::Word if self.is_null_value(i) => return Some((Unit::Value, "?".into())),
            TokenKind::Word if self.keyword(i).is_some() && !self.is_qualified(i) => {
                let keyword = self.keyword(i).unwrap_or(text);
                return Some((Unit::Keyword, Cow::Borrowed(keyword)));
            }
            TokenKind::Word | TokenKind::QuotedIdent => Unit::Name,
            TokenKind::OpenParen | TokenKind::OpenBracket => Unit::Open,
            TokenKind::CloseParen | TokenKind::CloseBracket => Unit::Close,
            TokenKind::Comma | TokenKind::Semicolon => Unit::Separator,
            TokenKind::Dot => Unit::Joiner,
            TokenKind::Operator if text == "::" => Unit::Joiner,
            TokenKind::Operator => Unit::Operator,
        };
        Some((unit, Cow::Borrowed(text)))
    }

    // --- tables -----------------------------------------------------------------------------

    fn tables(&self) -> Vec<String> {
        let ctes = self.cte_names();
        let mut tables: Vec<String> = Vec::new();
        let mut frames: Vec<bool> = Vec::new();
        for i in 0..self.tokens.len() {
            match self.kind(i) {
                Some(TokenKind::OpenParen) => frames.push(self.opens_call(i)),
                Some(TokenKind::CloseParen) => {
                    frames.pop();
                }
                _ => {}
            }
            if frames.last().copied().unwrap_or(false) || !self.introduces_table(i) {
                continue;
            }
            let mut at = i + 1;
            loop {
                let end = match self.table_name_at(at) {
                    Some((name, end)) => {
                        let is_cte = ctes.iter().any(|cte| cte.eq_ignore_ascii_case(&name));
                        if !is_cte && !tables.contains(&name) {
                            tables.push(name);
                        }
                        end
                    }
                    None => match self.skip_parenthesized_item(at) {
                        Some(end) => end,
                        None => break,
                    },
                };
                match self.next_listed_table(end) {
                    Some(next) if self.is_word(i, "FROM") => at = next,
                    _ => break,
                }
            }
        }
        tables
    }

    /// The `(` at `i` opens a function call's arguments (a name right before it).
    fn opens_call(&self, i: usize) -> bool {
        i > 0 && self.is_name(i - 1) && !self.after_insert_target(i)
    }

    /// The `(` at `i` follows `INTO name` or `TABLE name`: a column list.
    fn after_insert_target(&self, i: usize) -> bool {
        let mut j = i;
        while j > 0 && (self.is_name(j - 1) || self.kind(j - 1) == Some(TokenKind::Dot)) {
            j -= 1;
        }
        j > 0 && j < i && (self.is_word(j - 1, "INTO") || self.is_word(j - 1, "TABLE"))
    }

    fn introduces_table(&self, i: usize) -> bool {
        self.keyword(i).is_some_and(|word| ["FROM", "JOIN", "INTO", "UPDATE", "TABLE", "USING"].contains(&word))
    }

    /// A dotted name starting at `at` (after an optional `ONLY`) that is not a function call;
    /// returns it unquoted with the index after it.
    fn table_name_at(&self, at: usize) -> Option<(String, usize)> {
        let mut i = at;
        if self.is_word(i, "ONLY") {
            i += 1;
        }
        let mut parts: Vec<String> = Vec::new();
        loop {
            if !self.is_name(i) {
                return None;
            }
            parts.push(unquote(self.text(i)));
            i += 1;
            if self.kind(i) != Some(TokenKind::Dot) {
                break;
            }
            i += 1;
        }
        let call = self.kind(i) == Some(TokenKind::OpenParen)
            && !self.after_insert_target(i)
            && !(self.kind(i + 1) == Some(TokenKind::Word) && is_table_hint(self.text(i + 1)));
        (!call).then(|| (parts.join("."), i))
    }

    /// A subquery `(..)` or table function `name(..)` at `at` (after an optional `LATERAL`);
    /// returns the index after it. Tables inside a subquery are found by its own `FROM`.
    fn skip_parenthesized_item(&self, at: usize) -> Option<usize> {
        let mut i = at;
        if self.is_word(i, "LATERAL") {
            i += 1;
        }
        while self.is_name(i) || self.kind(i) == Some(TokenKind::Dot) {
            i += 1;
        }
        Some(self.matching_close(i)? + 1)
    }

    /// After a table at `end` in a `FROM a [AS x], b` list, the index of the next table.
    fn next_listed_table(&self, end: usize) -> Option<usize> {
        let mut i = end;
        if self.is_word(i, "AS") {
            i += 1;
        }
        if self.is_name(i) {
            i += 1;
        }
        (self.kind(i) == Some(TokenKind::Comma)).then_some(i + 1)
    }

    /// Names defined by `WITH [RECURSIVE] name [(cols)] AS (..), name AS (..)`.
    fn cte_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for i in 1..self.tokens.len() {
            let introduced = self.is_word(i - 1, "WITH")
                || self.is_word(i - 1, "RECURSIVE")
                || self.kind(i - 1) == Some(TokenKind::Comma);
            if introduced && self.is_name(i) && self.defines_cte(i + 1) {
                names.push(unquote(self.text(i)));
            }
        }
        names
    }

    /// Tokens from `i` read `[(cols)] AS [NOT] [MATERIALIZED] (`.
    fn defines_cte(&self, i: usize) -> bool {
        let mut j = i;
        if self.kind(j) == Some(TokenKind::OpenParen) {
            match self.matching_close(j) {
                Some(close) => j = close + 1,
                None => return false,
            }
        }
        if !self.is_word(j, "AS") {
            return false;
        }
        j += 1;
        if self.is_word(j, "NOT") {
            j += 1;
        }
        if self.is_word(j, "MATERIALIZED") {
            j += 1;
        }
        self.kind(j) == Some(TokenKind::OpenParen)
    }

    fn matching_close(&self, open: usize) -> Option<usize> {
        matching_close(&self.partners, open)
    }

    // --- filter columns ---------------------------------------------------------------------

    fn filter_columns(&self) -> Vec<String> {
        let mut columns: Vec<String> = Vec::new();
        let mut in_where = false;
        let mut saved: Vec<bool> = Vec::new();
        for i in 0..self.tokens.len() {
            match self.kind(i) {
                Some(TokenKind::OpenParen) => saved.push(in_where),
                Some(TokenKind::CloseParen) => in_where = saved.pop().unwrap_or(false),
                Some(TokenKind::Word) => in_where = self.where_state_after(i, in_where),
                _ => {}
            }
            if !in_where {
                continue;
            }
            if let Some(column) = self.filter_column_at(i)
                && !columns.contains(&column)
            {
                columns.push(column);
            }
        }
        columns
    }

    /// Whether a `WHERE` clause is open after word `i`.
    fn where_state_after(&self, i: usize, current: bool) -> bool {
        const CLAUSE_ENDS: &[&str] = &[
            "SELECT",
            "GROUP",
            "ORDER",
            "HAVING",
            "LIMIT",
            "OFFSET",
            "FETCH",
            "RETURNING",
            "UNION",
            "INTERSECT",
            "EXCEPT",
            "WINDOW",
            "FOR",
            "ON",
        ];
        match self.keyword(i) {
            Some("WHERE") => true,
            Some(word) if CLAUSE_ENDS.contains(&word) => false,
            _ => current,
        }
    }

    /// The column compared at `i` when `i` is `=` (with a name on one side and a value on the
    /// other) or a non-negated `IN` followed by a value list.
    fn filter_column_at(&self, i: usize) -> Option<String> {
        if i == 0 {
            return None;
        }
        let is_eq = self.kind(i) == Some(TokenKind::Operator) && self.text(i) == "=";
        if is_eq && self.value_follows(i + 1) && self.is_name(i - 1) {
            return Some(unquote(self.text(i - 1)));
        }
        if is_eq && self.is_value(i - 1) && self.is_name(i + 1) {
            return Some(unquote(self.text(self.last_name_part(i + 1))));
        }
        let is_in = self.is_word(i, "IN") && !self.is_word(i - 1, "NOT");
        if is_in && self.kind(i + 1) == Some(TokenKind::OpenParen) && self.value_follows(i + 2) && self.is_name(i - 1) {
            return Some(unquote(self.text(i - 1)));
        }
        None
    }

    /// A value (with optional sign) or `ANY(value)` starts at `i`.
    fn value_follows(&self, i: usize) -> bool {
        let j = if self.is_sign(i) { i + 1 } else { i };
        if self.is_word(j, "ANY") && self.kind(j + 1) == Some(TokenKind::OpenParen) {
            return self.is_value(j + 2);
        }
        self.is_value(j) || self.is_null_value(j)
    }

    /// Index of the last part of the dotted name starting at `i`.
    fn last_name_part(&self, i: usize) -> usize {
        let mut j = i;
        while self.kind(j + 1) == Some(TokenKind::Dot) && self.is_name(j + 2) {
            j += 2;
        }
        j
    }
}

/// Keywords the parser prints like functions, with no space before `(`.
const CALL_LIKE_KEYWORDS: &[&str] = &["ALL", "ANY", "CAST", "CONFLICT", "LEFT", "REPLACE", "RIGHT", "SOME"];

/// Two neighbouring printed units, to decide whether a space goes between them.
struct Spacing<'t> {
    previous: Option<Unit>,
    previous_text: &'t str,
    next: Unit,
    next_text: &'t str,
    /// The previous unit ends the target name of `INSERT INTO` or `CREATE TABLE`.
    after_insert_target: bool,
}

impl Spacing<'_> {
    fn needs_space(&self) -> bool {
        let Some(previous) = self.previous else {
            return false;
        };
        let bracket = self.next_text == "[";
        match (previous, self.next) {
            (Unit::Open | Unit::Joiner, _) => false,
            (_, Unit::Close | Unit::Separator | Unit::Joiner) => false,
            (Unit::Name, Unit::Open) => self.after_insert_target && !bracket,
            (Unit::Close, Unit::Open) => !bracket,
            (Unit::Keyword, Unit::Open) => !bracket && !CALL_LIKE_KEYWORDS.contains(&self.previous_text),
            _ => true,
        }
    }
}

/// SQL Server table hints, as in `FROM t (NOLOCK)`.
pub(super) fn is_table_hint(word: &str) -> bool {
    const HINTS: &[&str] = &[
        "HOLDLOCK",
        "NOLOCK",
        "NOWAIT",
        "PAGLOCK",
        "READCOMMITTED",
        "READPAST",
        "READUNCOMMITTED",
        "REPEATABLEREAD",
        "ROWLOCK",
        "SERIALIZABLE",
        "TABLOCK",
        "TABLOCKX",
        "UPDLOCK",
        "XLOCK",
    ];
    HINTS.iter().any(|hint| hint.eq_ignore_ascii_case(word))
}

/// Identifier text without its quotes (`"a""b"` -> `a"b`, `[x]` -> `x`).
pub(super) fn unquote(text: &str) -> String {
    let mut chars = text.chars();
    let (open, close) = match chars.next() {
        Some('"') => ('"', '"'),
        Some('`') => ('`', '`'),
        Some('[') => ('[', ']'),
        _ => return text.to_owned(),
    };
    let inner = text.get(open.len_utf8()..).unwrap_or_default();
    let inner = inner.strip_suffix(close).unwrap_or(inner);
    let doubled = format!("{close}{close}");
    inner.replace(&doubled, &close.to_string())
}

#[cfg(test)]
mod tests {
    use super::super::Flavor;
    use super::super::lexer::lex;
    use super::*;
    use rstest::rstest;

    fn run(src: &str, flavor: Flavor) -> Shape {
        let mut lexed = lex(src, flavor);
        lexed.mark_collapsible_lists();
        shape(&lexed)
    }

    #[rstest]
    #[case::hibernate(
        "select b1_0.id,b1_0.title from book b1_0 where b1_0.author_id=?",
        "SELECT b1_0.id, b1_0.title FROM book b1_0 WHERE b1_0.author_id = ?"
    )]
    #[case::literals_and_sign(
        "SELECT * FROM t WHERE a = -5 AND b = 'x' AND c - 1 > 0",
        "SELECT * FROM t WHERE a = ? AND b = ? AND c - ? > ?"
    )]
    #[case::in_list("select * from t where id in (1, 2, 3)", "SELECT * FROM t WHERE id IN (?)")]
    #[case::null("UPDATE t SET a = NULL WHERE b IS NOT NULL", "UPDATE t SET a = ? WHERE b IS NOT NULL")]
    #[case::insert(
        "insert into \"t\" (\"a\", b) values ($1, now()), ($2, now()) returning id",
        "INSERT INTO \"t\" (\"a\", b) VALUES (?, now()) RETURNING id"
    )]
    #[case::cast_and_call("SELECT count(*), x::int FROM t", "SELECT count(*), x::int FROM t")]
    #[case::comments_dropped("SELECT 1 /* controller='x' */ -- c\n;", "SELECT ?")]
    #[case::statements("BEGIN; SELECT 1;; COMMIT;", "BEGIN; SELECT ?; COMMIT")]
    #[case::qualified_keyword_kept("SELECT t.order FROM t", "SELECT t.order FROM t")]
    #[case::truncated_string("SELECT * FROM t WHERE a = 'abc", "SELECT * FROM t WHERE a = ?")]
    fn text_is_normalized(#[case] src: &str, #[case] want: &str) {
        assert_eq!(run(src, Flavor::Generic).text, want);
    }

    #[rstest]
    #[case::joins(
        "SELECT * FROM a JOIN \"public\".\"b\" ON a.id = b.a_id LEFT JOIN c USING (id)",
        &["a", "public.b", "c"]
    )]
    #[case::comma_list("SELECT * FROM a x, b AS y, c WHERE 1", &["a", "b", "c"])]
    #[case::subquery(
        "DELETE FROM t WHERE id IN (SELECT t_id FROM s)",
        &["t", "s"]
    )]
    #[case::insert_columns("INSERT INTO t (a) SELECT a FROM u", &["t", "u"])]
    #[case::update("UPDATE ONLY t SET a = 1 FROM u", &["t", "u"])]
    #[case::function_not_table(
        "SELECT EXTRACT(YEAR FROM d) FROM generate_series(1, 3) g, t",
        &["t"]
    )]
    #[case::for_update("SELECT * FROM t FOR UPDATE", &["t"])]
    #[case::upsert(
        "INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET a = 2",
        &["t"]
    )]
    #[case::cte(
        "WITH recent AS (SELECT * FROM orders) SELECT * FROM recent JOIN users ON 1",
        &["orders", "users"]
    )]
    #[case::brackets("SELECT [u].[Id] FROM [dbo].[Users] AS [u]", &["dbo.Users"])]
    #[case::cut_off("SELECT * FROM a JOIN", &["a"])]
    fn tables_are_found(#[case] src: &str, #[case] want: &[&str]) {
        assert_eq!(run(src, Flavor::MsSql).tables, want);
    }

    #[rstest]
    #[case::equals(
        "SELECT * FROM t WHERE \"t\".\"author_id\" = %s AND x > 1",
        &["author_id"]
    )]
    #[case::reversed("SELECT * FROM t WHERE 5 = t.id", &["id"])]
    #[case::in_list("SELECT * FROM t WHERE t.id IN (1, 2) AND b NOT IN (3)", &["id"])]
    #[case::any("SELECT * FROM t WHERE id = ANY($1)", &["id"])]
    #[case::nested(
        "SELECT * FROM t WHERE (a = 1 OR b = 2) AND c IN (SELECT d FROM u WHERE e = 3)",
        &["a", "b", "e"]
    )]
    #[case::not_join_condition("SELECT * FROM t JOIN u ON u.x = 1 WHERE t.y = 2", &["y"])]
    #[case::not_set("UPDATE t SET a = 1 WHERE b = 2", &["b"])]
    fn filter_columns_are_found(#[case] src: &str, #[case] want: &[&str]) {
        assert_eq!(run(src, Flavor::Generic).filter_columns, want);
    }

    #[rstest]
    #[case::select("  select 1", Some("SELECT"))]
    #[case::parenthesized("(SELECT 1) UNION (SELECT 2)", Some("SELECT"))]
    #[case::with_insert("WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x", Some("INSERT"))]
    #[case::with_only("WITH x AS (SELECT 1", Some("WITH"))]
    #[case::savepoint("savepoint s1", Some("SAVEPOINT"))]
    #[case::unknown("hello world", None)]
    #[case::empty("", None)]
    fn operation_is_the_leading_verb(#[case] src: &str, #[case] want: Option<&str>) {
        let lexed = lex(src, Flavor::Generic);
        assert_eq!(operation(&lexed).as_deref(), want);
    }

    #[rstest]
    #[case::double("\"a\"\"b\"", "a\"b")]
    #[case::backtick("`a`", "a")]
    #[case::bracket("[a]]b]", "a]b")]
    #[case::unterminated("\"abc", "abc")]
    #[case::plain("abc", "abc")]
    fn identifiers_are_unquoted(#[case] text: &str, #[case] want: &str) {
        assert_eq!(unquote(text), want);
    }
}
