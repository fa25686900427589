//! SQL fingerprints: the literal-free shape of a statement, so that queries differing only in
//! their values group together (the basis of N+1 detection).
//!
//! Takes a statement text as instrumentations send it (raw with driver placeholders, with
//! literals inlined, sanitized, truncated, or a sentinel message) plus the OpenTelemetry
//! `db.system` value, and emits a [`Fingerprint`]: normalized text and its stable hash, the
//! tables, the operation, the columns filtered on, and flags saying how far to trust it.
//!
//! Shape of the work, per statement:
//! 1. Sentinels and empty text become [`Fingerprint::opaque`] results (`sentinel`).
//! 2. One tolerant lexer pass (`lexer`) finds placeholders, literals, truncation, and marks
//!    repeated list elements (`IN (..)`, `VALUES` rows) to leave out.
//! 3. The sqlparser path (`normalize`) parses with the system's dialect and prints the
//!    rewritten AST; when nothing parses, the token fallback (`fallback`) builds the same kind of
//!    text from the tokens. Either way the operation comes from the tokens.
//!
//! [`FingerprintCache`] (`cache`) memoizes results by raw text, since computing one costs
//! microseconds while the same text usually repeats thousands of times.

mod cache;
mod facts;
mod fallback;
mod lexer;
mod normalize;

use std::borrow::Cow;

use xxhash_rust::xxh3::xxh3_64;

pub use cache::FingerprintCache;
pub use facts::ShapeFacts;

/// Result of fingerprinting one statement text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fingerprint {
    /// Stable 64-bit id: xxh3_64 of the normalized text (same across runs and machines).
    ///
    /// Equal to xxh3_64 of [`Fingerprint::text`] unless that text was cut at
    /// [`MAX_TEXT_BYTES`]; the id is always taken over the whole normalized text, so long
    /// statements sharing a prefix keep distinct ids.
    pub id: u64,
    /// Normalized statement: every literal and every placeholder style becomes `?`, `IN (...)`
    /// lists collapse to `IN (?)`, multi-row `VALUES (..), (..)` collapse to one row, keywords
    /// upper case, whitespace single spaces, comments dropped (sqlcommenter comments too).
    /// Identifier quoting is kept as written.
    ///
    /// At most [`MAX_TEXT_BYTES`] plus a trailing `…` that marks a cut (at a char boundary).
    /// Opaque statements get a text in a comment, like `/* empty statement */`, which no
    /// normalized statement can equal.
    pub text: String,
    /// Tables the statement reads or writes, unquoted (`"app_book"` -> `app_book`), schema kept
    /// (`public.users`), deduplicated, in order of first appearance. CTE names are not tables.
    pub tables: Vec<String>,
    /// Leading operation keyword upper case: `SELECT`, `INSERT`, `UPDATE`, `DELETE`, for
    /// `WITH` the main statement's verb (or `WITH` when none is found), `BEGIN`, `COMMIT`,
    /// `SAVEPOINT`, ...; `None` when empty, opaque or not led by a known verb.
    pub operation: Option<String>,
    /// Columns compared against a value in `WHERE` with `=`, `IN` or `= ANY`
    /// (`"app_author"."id" = %s` -> `id`), unquoted, without table qualifier, deduplicated.
    /// Used for fix hints ("WHERE id IN (...)").
    pub filter_columns: Vec<String>,
    /// The raw text carries at least one bind placeholder (`?`, `?1`, `$1`, `%s`,
    /// `%(name)s`, `:name`, `:1`, `@p0`/`@name`, Ruby `$?`). When false, the text is fully
    /// literal: two identical raw texts are the same query with the same values.
    pub has_placeholders: bool,
    /// The raw text carries at least one literal value (number, string, boolean; `NULL`
    /// doesn't count).
    pub has_literals: bool,
    /// sqlparser parsed it (true) or the token fallback produced it (false).
    pub parsed: bool,
    /// The text looks truncated: an unterminated quote or comment, an unclosed parenthesis,
    /// a trailing `..` (knex appends it), or exactly a known instrumentation length cap
    /// (1022, 2000, 32768 chars).
    pub truncated: bool,
    /// The text carries no query shape: empty, whitespace or comments only, or a known
    /// instrumentation sentinel (Ruby's "SQL not obfuscated, query exceeds 2000 characters",
    /// "Failed to obfuscate SQL query - quote characters remained after obfuscation").
    /// Such statements get a distinct fingerprint per sentinel, and N+1 detection must not
    /// group on them.
    pub opaque: bool,
    /// What the slow-query-shape rules look at (leading-wildcard `LIKE`, missing `LIMIT`, ...).
    pub facts: ShapeFacts,
}

/// What either path learns about a statement's shape.
#[derive(Debug, Default)]
struct Shape {
    /// Normalized text, uncut; statements of a batch are joined with `"; "`.
    text: String,
    /// Tables read or written, unquoted, in order of first appearance; no CTE names.
    tables: Vec<String>,
    /// Columns compared with `=`, `IN` or `= ANY` against a value in a `WHERE` clause.
    filter_columns: Vec<String>,
    /// Shape facts from the AST (the token fallback leaves them empty).
    facts: ShapeFacts,
}

/// Longest normalized text kept in [`Fingerprint::text`], in bytes.
pub const MAX_TEXT_BYTES: usize = 4096;

/// Longest parser input handed to sqlparser, in bytes, measured after list collapsing and with
/// every string literal shortened to `''` (so the choice of path never depends on values);
/// longer statements take the token fallback. Parsing costs about 0.1 to 0.2 µs per byte in a
/// release build (up to 0.5 µs for long operator chains), so this bounds one parse at a few ms.
const MAX_PARSE_INPUT_BYTES: usize = 8 * 1024;

/// Longest statement text looked at, in bytes; the rest is ignored and the fingerprint marked
/// truncated. Bounds the work and memory of one miss: the lexer keeps 24 bytes per token and
/// the fallback costs up to about 150 ns per token on hostile input (40 ms at this size), some
/// 5 to 20 ns per byte on real SQL.
const MAX_STATEMENT_BYTES: usize = 256 * 1024;

/// Lengths (in chars or UTF-16 units) at which instrumentations cut statement text: knex's
/// default `maxQueryLength` (1022, then it appends `..`), a common attribute length limit
/// (2000), the Java agent's sanitizer limit (32 KiB).
const KNOWN_LENGTH_CAPS: [usize; 3] = [1022, 2000, 32768];

/// Fingerprints one statement. Never panics, never errors, for any input.
///
/// `db_system` is the OpenTelemetry db system name, lower-case, old or new convention values
/// (`postgresql`, `mysql`, `mariadb`, `sqlite`, `mssql`, `microsoft.sql_server`, `oracle`,
/// `oracle.db`, `other_sql`, or `""` when unknown); it picks the sqlparser dialect and how
/// quotes and comments are read.
pub fn fingerprint(statement: &str, db_system: &str) -> Fingerprint {
    if let Some(sentinel) = sentinel::recognize(statement) {
        return opaque(sentinel);
    }
    let (statement, cut_here) = cap_statement(statement);
    let db_system = lower_case(db_system.trim());
    let flavor = Flavor::from_db_system(&db_system);
    let mut lexed = lexer::lex(statement, flavor);
    lexed.mark_collapsible_lists();
    let cut_off = lexed.unterminated || lexed.has_unclosed_paren();
    let parsed = if cut_off { None } else { normalize::parse(&lexed, flavor, &db_system, MAX_PARSE_INPUT_BYTES) };
    let is_parsed = parsed.is_some();
    let shape = parsed.unwrap_or_else(|| fallback::shape(&lexed));
    if shape.text.is_empty() {
        return opaque(sentinel::EMPTY);
    }
    let (id, text) = identify(shape.text);
    let mut facts = shape.facts;
    facts::like_facts(&lexed, &mut facts);
    Fingerprint {
        id,
        text,
        tables: shape.tables,
        operation: fallback::operation(&lexed),
        filter_columns: shape.filter_columns,
        has_placeholders: lexed.has_placeholders(),
        has_literals: lexed.has_literals(),
        parsed: is_parsed,
        truncated: cut_here || cut_off || ends_like_cut_text(statement),
        opaque: false,
        facts,
    }
}

/// `statement` cut to [`MAX_STATEMENT_BYTES`] at a char boundary, and whether it was cut.
fn cap_statement(statement: &str) -> (&str, bool) {
    if statement.len() <= MAX_STATEMENT_BYTES {
        return (statement, false);
    }
    let mut cut = MAX_STATEMENT_BYTES;
    while !statement.is_char_boundary(cut) {
        cut -= 1;
    }
    (statement.get(..cut).unwrap_or_default(), true)
}

impl Fingerprint {
    /// A fingerprint that stands for no query shape, labelled `label` (a sentinel message, or a
    /// row that folds many shapes together). Detectors never group on it.
    pub fn opaque(label: &str) -> Fingerprint {
        opaque(label)
    }
}

/// The fingerprint of a statement without query shape, one per sentinel text.
fn opaque(sentinel: &str) -> Fingerprint {
    let (id, text) = identify(format!("/* {sentinel} */"));
    Fingerprint {
        id,
        text,
        tables: Vec::new(),
        operation: None,
        filter_columns: Vec::new(),
        has_placeholders: false,
        has_literals: false,
        parsed: false,
        truncated: false,
        opaque: true,
        facts: ShapeFacts::default(),
    }
}

/// The id of a normalized text, and the text cut to [`MAX_TEXT_BYTES`].
fn identify(mut text: String) -> (u64, String) {
    let id = xxh3_64(text.as_bytes());
    if text.len() > MAX_TEXT_BYTES {
        let mut cut = MAX_TEXT_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    (id, text)
}

/// Trailing `..` or a known length cap: signs of text cut by an instrumentation.
fn ends_like_cut_text(statement: &str) -> bool {
    if statement.trim_end().ends_with("..") {
        return true;
    }
    let bytes = statement.len();
    let may_be_capped = KNOWN_LENGTH_CAPS.iter().any(|&cap| (cap..=cap * 4).contains(&bytes));
    if !may_be_capped {
        return false;
    }
    let chars = statement.chars().count();
    let utf16_units = statement.encode_utf16().count();
    KNOWN_LENGTH_CAPS.contains(&chars) || KNOWN_LENGTH_CAPS.contains(&utf16_units)
}

/// `text` in ASCII lower case, borrowed when it already is.
fn lower_case(text: &str) -> Cow<'_, str> {
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(text.to_ascii_lowercase())
    } else {
        Cow::Borrowed(text)
    }
}

/// How a database family spells strings, identifiers, comments and placeholders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    /// PostgreSQL and relatives: `$1`, `$$..$$`, nested comments, `?` is also a jsonb operator.
    Postgres,
    /// MySQL and MariaDB: `"..."` is a string, backslash escapes, `#` comments.
    MySql,
    /// SQLite: `[..]` identifiers too.
    Sqlite,
    /// SQL Server: `[..]` identifiers, `@name` parameters.
    MsSql,
    /// Oracle: `:name` and `:1` parameters, `q'[..]'` strings.
    Oracle,
    /// Anything else, or unknown.
    Generic,
}

impl Flavor {
    /// The family of a lower-case OpenTelemetry `db.system` / `db.system.name` value.
    fn from_db_system(db_system: &str) -> Self {
        match db_system {
            "postgresql" | "postgres" | "cockroachdb" | "redshift" | "aws.redshift" | "edb" => Self::Postgres,
            "mysql" | "mariadb" | "tidb" => Self::MySql,
            "sqlite" => Self::Sqlite,
            "mssql" | "microsoft.sql_server" | "mssqlcompact" => Self::MsSql,
            "oracle" | "oracle.db" => Self::Oracle,
            _ => Self::Generic,
        }
    }

    /// The placeholder spelling the family's sqlparser dialect accepts everywhere.
    fn canonical_placeholder(self) -> &'static str {
        match self {
            Self::Postgres => "$1",
            _ => "?",
        }
    }

    /// `[name]` is a quoted identifier rather than an array subscript.
    fn brackets_quote_identifiers(self) -> bool {
        matches!(self, Self::MsSql | Self::Sqlite)
    }

    /// `/* /* */ */` is one comment.
    fn nests_block_comments(self) -> bool {
        self == Self::Postgres
    }

    /// `$$..$$` and `$tag$..$tag$` are strings (assumed for unknown systems too).
    fn has_dollar_quotes(self) -> bool {
        matches!(self, Self::Postgres | Self::Generic)
    }
}

/// Statement texts that carry no query shape.
mod sentinel {
    /// Stands for empty, whitespace-only and comment-only statements.
    pub(super) const EMPTY: &str = "empty statement";

    /// Ruby's obfuscator, for text longer than its limit (the number is the configured limit).
    const RUBY_TOO_LONG_PREFIX: &str = "SQL not obfuscated, query exceeds ";

    /// Ruby's obfuscator, for text whose quotes it could not balance.
    const RUBY_FAILED: &str = "Failed to obfuscate SQL query - quote characters remained after obfuscation";

    /// Longest text still read as the too-long sentinel (its number is a configured limit).
    const MAX_SENTINEL_BYTES: usize = 96;

    /// The sentinel a statement is, if any: [`EMPTY`] for blank text, else the trimmed message.
    pub(super) fn recognize(statement: &str) -> Option<&str> {
        let trimmed = statement.trim();
        if trimmed.is_empty() {
            return Some(EMPTY);
        }
        let is_sentinel = trimmed == RUBY_FAILED
            || (trimmed.starts_with(RUBY_TOO_LONG_PREFIX) && trimmed.len() <= MAX_SENTINEL_BYTES);
        is_sentinel.then_some(trimmed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rstest::rstest;

    fn fp(statement: &str, db_system: &str) -> Fingerprint {
        fingerprint(statement, db_system)
    }

    // --- real ORM and driver statements --------------------------------------------------------

    struct Expect<'a> {
        text: &'a str,
        tables: &'a [&'a str],
        operation: &'a str,
        filter_columns: &'a [&'a str],
        has_placeholders: bool,
        has_literals: bool,
        parsed: bool,
    }

    #[rstest]
    #[case::django_pyformat(
        "SELECT \"app_book\".\"id\", \"app_book\".\"title\", \"app_book\".\"author_id\" FROM \
            \"app_book\" WHERE \"app_book\".\"author_id\" = %s LIMIT 21",
        "postgresql",
        Expect {
            text: "SELECT \"app_book\".\"id\", \"app_book\".\"title\", \
                \"app_book\".\"author_id\" FROM \"app_book\" WHERE \"app_book\".\"author_id\" = \
                ? LIMIT ?",
            tables: &["app_book"], operation: "SELECT", filter_columns: &["author_id"],
            has_placeholders: true, has_literals: true, parsed: true,
        }
    )]
    #[case::django_sqlite_qmark(
        "SELECT \"app_book\".\"id\" FROM \"app_book\" WHERE \"app_book\".\"author_id\" = ? LIMIT \
            21",
        "sqlite",
        Expect {
            text: "SELECT \"app_book\".\"id\" FROM \"app_book\" WHERE \"app_book\".\"author_id\" \
                = ? LIMIT ?",
            tables: &["app_book"], operation: "SELECT", filter_columns: &["author_id"],
            has_placeholders: true, has_literals: true, parsed: true,
        }
    )]
    #[case::rails_pg(
        "SELECT \"users\".* FROM \"users\" WHERE \"users\".\"id\" = $1 LIMIT $2",
        "postgresql",
        Expect {
            text: "SELECT \"users\".* FROM \"users\" WHERE \"users\".\"id\" = ? LIMIT ?",
            tables: &["users"], operation: "SELECT", filter_columns: &["id"],
            has_placeholders: true, has_literals: false, parsed: true,
        }
    )]
    #[case::rails_ruby_obfuscated(
        "SELECT \"users\".* FROM \"users\" WHERE \"users\".\"id\" = $? LIMIT $?",
        "postgresql",
        Expect {
            text: "SELECT \"users\".* FROM \"users\" WHERE \"users\".\"id\" = ? LIMIT ?",
            tables: &["users"], operation: "SELECT", filter_columns: &["id"],
            has_placeholders: true, has_literals: false, parsed: true,
        }
    )]
    #[case::hibernate6(
        "select b1_0.id,b1_0.title from book b1_0 where b1_0.author_id=?",
        "postgresql",
        Expect {
            text: "SELECT b1_0.id, b1_0.title FROM book b1_0 WHERE b1_0.author_id = ?",
            tables: &["book"], operation: "SELECT", filter_columns: &["author_id"],
            has_placeholders: true, has_literals: false, parsed: true,
        }
    )]
    #[case::hibernate6_paging(
        "select b1_0.id from book b1_0 order by b1_0.id offset ? rows fetch first ? rows only",
        "postgresql",
        Expect {
            text: "SELECT b1_0.id FROM book b1_0 ORDER BY b1_0.id OFFSET ? ROWS FETCH FIRST ? \
                ROWS ONLY",
            tables: &["book"], operation: "SELECT", filter_columns: &[],
            has_placeholders: true, has_literals: false, parsed: true,
        }
    )]
    #[case::sqlalchemy_pyformat(
        "SELECT users.id, users.name FROM users WHERE users.id = %(pk_1)s",
        "postgresql",
        Expect {
            text: "SELECT users.id, users.name FROM users WHERE users.id = ?",
            tables: &["users"], operation: "SELECT", filter_columns: &["id"],
            has_placeholders: true, has_literals: false, parsed: true,
        }
    )]
    #[case::sqlalchemy_postcompile(
        "SELECT users.id, users.name FROM users WHERE users.id IN (__[POSTCOMPILE_id_1])",
        "postgresql",
        Expect {
            text: "SELECT users.id, users.name FROM users WHERE users.id IN (?)",
            tables: &["users"], operation: "SELECT", filter_columns: &["id"],
            has_placeholders: true, has_literals: false, parsed: true,
        }
    )]
    #[case::node_postgres(
        "SELECT * FROM orders WHERE customer_id = $1",
        "postgresql",
        Expect {
            text: "SELECT * FROM orders WHERE customer_id = ?",
            tables: &["orders"], operation: "SELECT", filter_columns: &["customer_id"],
            has_placeholders: true, has_literals: false, parsed: true,
        }
    )]
    #[case::mysql2_inlined(
        "SELECT * FROM orders WHERE customer_id = 42 AND status = 'open'",
        "mysql",
        Expect {
            text: "SELECT * FROM orders WHERE customer_id = ? AND status = ?",
            tables: &["orders"], operation: "SELECT", filter_columns: &["customer_id", "status"],
            has_placeholders: false, has_literals: true, parsed: true,
        }
    )]
    #[case::ef_core(
        "SELECT [u].[Id] FROM [Users] AS [u] WHERE [u].[Id] = @__id_0",
        "microsoft.sql_server",
        Expect {
            text: "SELECT [u].[Id] FROM [Users] AS [u] WHERE [u].[Id] = ?",
            tables: &["Users"], operation: "SELECT", filter_columns: &["Id"],
            has_placeholders: true, has_literals: false, parsed: true,
        }
    )]
    #[case::prisma(
        "SELECT \"public\".\"User\".\"id\" FROM \"public\".\"User\" WHERE \
            \"public\".\"User\".\"id\" = $1 LIMIT $2 OFFSET $3",
        "postgresql",
        Expect {
            text: "SELECT \"public\".\"User\".\"id\" FROM \"public\".\"User\" WHERE \
                \"public\".\"User\".\"id\" = ? LIMIT ? OFFSET ?",
            tables: &["public.User"], operation: "SELECT", filter_columns: &["id"],
            has_placeholders: true, has_literals: false, parsed: true,
        }
    )]
    #[case::multi_row_insert(
        "INSERT INTO \"app_tag\" (\"name\", \"slug\") VALUES (%s, %s), (%s, %s), (%s, %s) \
            RETURNING \"app_tag\".\"id\"",
        "postgresql",
        Expect {
            text: "INSERT INTO \"app_tag\" (\"name\", \"slug\") VALUES (?, ?) RETURNING \
                \"app_tag\".\"id\"",
            tables: &["app_tag"], operation: "INSERT", filter_columns: &[],
            has_placeholders: true, has_literals: false, parsed: true,
        }
    )]
    #[case::cte_update(
        "WITH stale AS (SELECT id FROM carts WHERE updated_at < $1) UPDATE carts SET state = \
            'expired' WHERE id IN (SELECT id FROM stale)",
        "postgresql",
        Expect {
            text: "WITH stale AS (SELECT id FROM carts WHERE updated_at < ?) UPDATE carts SET \
                state = ? WHERE id IN (SELECT id FROM stale)",
            tables: &["carts"], operation: "UPDATE", filter_columns: &[],
            has_placeholders: true, has_literals: true, parsed: true,
        }
    )]
    #[case::transaction_control(
        "SAVEPOINT \"s140245_x1\"",
        "postgresql",
        Expect {
            text: "SAVEPOINT \"s140245_x1\"",
            tables: &[], operation: "SAVEPOINT", filter_columns: &[],
            has_placeholders: false, has_literals: false, parsed: true,
        }
    )]
    #[case::do_block_fallback(
        "DO $$ BEGIN PERFORM pg_sleep(0.1); END $$",
        "postgresql",
        Expect {
            text: "DO ?",
            tables: &[], operation: "DO", filter_columns: &[],
            has_placeholders: false, has_literals: true, parsed: false,
        }
    )]
    fn orm_statements_fingerprint(#[case] statement: &str, #[case] db_system: &str, #[case] want: Expect<'_>) {
        let got = fp(statement, db_system);
        assert_eq!(got.text, want.text);
        assert_eq!(got.id, xxh3_64(want.text.as_bytes()));
        assert_eq!(got.tables, want.tables);
        assert_eq!(got.operation.as_deref(), Some(want.operation));
        assert_eq!(got.filter_columns, want.filter_columns);
        assert_eq!(got.has_placeholders, want.has_placeholders, "has_placeholders");
        assert_eq!(got.has_literals, want.has_literals, "has_literals");
        assert_eq!(got.parsed, want.parsed, "parsed");
        assert!(!got.truncated && !got.opaque);
    }

    // --- same shape, different values or placeholder styles ---------------------------------

    #[rstest]
    #[case::literal("SELECT * FROM t WHERE id = 1", "postgresql")]
    #[case::negative_literal("SELECT * FROM t WHERE id = -17", "postgresql")]
    #[case::pyformat("SELECT * FROM t WHERE id = %s", "postgresql")]
    #[case::pyformat_named("SELECT * FROM t WHERE id = %(id)s", "postgresql")]
    #[case::dollar("SELECT * FROM t WHERE id = $1", "postgresql")]
    #[case::question_on_postgres("SELECT * FROM t WHERE id = ?", "postgresql")]
    #[case::question("SELECT * FROM t WHERE id = ?", "mysql")]
    #[case::numbered_question("SELECT * FROM t WHERE id = ?1", "sqlite")]
    #[case::colon_name("SELECT * FROM t WHERE id = :id", "sqlite")]
    #[case::colon_number("SELECT * FROM t WHERE id = :1", "oracle.db")]
    #[case::at_name("SELECT * FROM t WHERE id = @p0", "mssql")]
    #[case::ruby("SELECT * FROM t WHERE id = $?", "postgresql")]
    #[case::lower_case_and_comments("select *\n  from t -- hint\n where id=42 /* c */", "")]
    #[case::sqlcommenter("SELECT * FROM t WHERE id = 7 /*traceparent='00-a-b-01'*/", "mysql")]
    #[case::trailing_semicolon("SELECT * FROM t WHERE id = 7;", "other_sql")]
    fn literal_and_placeholder_variants_share_a_fingerprint(#[case] statement: &str, #[case] db_system: &str) {
        let want = "SELECT * FROM t WHERE id = ?";
        let got = fp(statement, db_system);
        assert_eq!(got.text, want);
        assert_eq!(got.id, xxh3_64(want.as_bytes()));
    }

    #[rstest]
    #[case::literals("1, 2, 3", "postgresql")]
    #[case::one_literal("99", "postgresql")]
    #[case::strings("'a', 'b'", "mysql")]
    #[case::dollars("$1, $2, $3, $4", "postgresql")]
    #[case::pyformat("%s, %s", "postgresql")]
    #[case::questions("?, ?, ?", "postgresql")]
    #[case::at_names("@p0, @p1", "mssql")]
    #[case::colon_names(":a, :b", "oracle")]
    #[case::postcompile("__[POSTCOMPILE_id_1]", "postgresql")]
    fn in_lists_of_any_length_share_a_fingerprint(#[case] list: &str, #[case] db_system: &str) {
        let got = fp(&format!("SELECT * FROM t WHERE id IN ({list})"), db_system);
        assert_eq!(got.text, "SELECT * FROM t WHERE id IN (?)");
        assert_eq!(got.filter_columns, ["id"]);
    }

    #[test]
    fn multi_row_inserts_share_a_fingerprint() {
        let one = fp("INSERT INTO t (a, b) VALUES (1, 'x')", "mysql");
        let three = fp("INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y'), (3, 'z')", "mysql");
        assert_eq!(one.id, three.id);
        assert_eq!(one.text, "INSERT INTO t (a, b) VALUES (?, ?)");
    }

    #[test]
    fn huge_in_list_matches_its_short_form() {
        let ids: Vec<String> = (0..20_000).map(|i| i.to_string()).collect();
        let long = fp(&format!("SELECT * FROM t WHERE id IN ({})", ids.join(", ")), "mysql");
        let short = fp("SELECT * FROM t WHERE id IN (?)", "mysql");
        assert_eq!(long.id, short.id);
        assert!(long.parsed);
    }

    #[rstest]
    #[case::table("SELECT * FROM orders WHERE id = $1", "SELECT * FROM invoices WHERE id = $1")]
    #[case::column("SELECT * FROM orders WHERE id = $1", "SELECT * FROM orders WHERE customer_id = $1")]
    #[case::operator("SELECT * FROM orders WHERE id = $1", "SELECT * FROM orders WHERE id > $1")]
    #[case::projection("SELECT id FROM orders WHERE id = $1", "SELECT id, total FROM orders WHERE id = $1")]
    #[case::quoting("SELECT * FROM \"orders\" WHERE id = $1", "SELECT * FROM orders WHERE id = $1")]
    #[case::fallback_table("SELECT * FROM orders WHERE a = 'x", "SELECT * FROM invoices WHERE a = 'x")]
    fn different_shapes_differ(#[case] a: &str, #[case] b: &str) {
        assert_ne!(fp(a, "postgresql").id, fp(b, "postgresql").id);
    }

    // --- text that does not parse ------------------------------------------------------------

    #[test]
    fn truncated_mid_string_still_fingerprints() {
        let a = fp("SELECT * FROM users WHERE email = 'alice@exa", "postgresql");
        let b = fp("SELECT * FROM users WHERE email = 'bob@example.co", "postgresql");
        assert!(!a.parsed && a.truncated && !a.opaque);
        assert_eq!(a.text, "SELECT * FROM users WHERE email = ?");
        assert_eq!(a.id, b.id);
        assert_eq!(a.tables, ["users"]);
        assert_eq!(a.filter_columns, ["email"]);
    }

    #[test]
    fn knex_text_cut_at_1022_chars() {
        let columns: Vec<String> = (0..200).map(|i| format!("\"c{i}\"")).collect();
        let full = format!("select {} from \"accounts\" where \"id\" = ?", columns.join(", "));
        let cut = format!("{}..", &full[..1022]);
        let got = fp(&cut, "postgresql");
        assert!(got.truncated && !got.parsed && !got.opaque);
        assert_eq!(got.operation.as_deref(), Some("SELECT"));
        let exact = fp(&full[..1022], "postgresql");
        assert!(exact.truncated);
    }

    #[test]
    fn unclosed_parenthesis_is_truncated() {
        let got = fp("SELECT * FROM t WHERE id IN (1, 2, 3", "mysql");
        assert!(got.truncated && !got.parsed);
        assert_eq!(got.text, "SELECT * FROM t WHERE id IN (?");
    }

    #[rstest]
    #[case::garbage_bytes("\u{0}\u{1f}\u{7f}\u{fffd}\u{fffd} ))(( ;; '")]
    #[case::binary_like("\u{fffd}PNG\r\n\u{1a}\n\u{0}\u{0}\u{0}\rIHDR")]
    #[case::words("hello there")]
    #[case::lone_operators("= = = <> ::")]
    fn garbage_gets_a_stable_non_opaque_fingerprint(#[case] statement: &str) {
        let a = fp(statement, "postgresql");
        assert_eq!(a, fp(statement, "postgresql"));
        assert!(!a.parsed && !a.opaque);
        assert_eq!(a.operation, None);
    }

    // --- opaque statements --------------------------------------------------------------------

    #[rstest]
    #[case::empty("")]
    #[case::spaces(" \n\t ")]
    #[case::comment_only("/* nothing */ -- at all")]
    #[case::semicolons(" ; ; ")]
    fn blank_statements_are_opaque(#[case] statement: &str) {
        let got = fp(statement, "postgresql");
        assert!(got.opaque && !got.parsed);
        assert_eq!(got.text, "/* empty statement */");
        assert_eq!(got.operation, None);
    }

    #[test]
    fn sentinels_are_opaque_and_distinct() {
        let too_long = fp("SQL not obfuscated, query exceeds 2000 characters", "mysql");
        let failed = fp("Failed to obfuscate SQL query - quote characters remained after obfuscation", "postgresql");
        let empty = fp("", "postgresql");
        let real = fp("SELECT 1", "postgresql");
        for sentinel in [&too_long, &failed, &empty] {
            assert!(sentinel.opaque && sentinel.tables.is_empty());
            assert!(!sentinel.has_placeholders && !sentinel.has_literals);
        }
        let ids = [too_long.id, failed.id, empty.id, real.id];
        for (i, a) in ids.iter().enumerate() {
            assert!(ids.iter().skip(i + 1).all(|b| a != b));
        }
    }

    // --- flags ----------------------------------------------------------------------------------

    #[rstest]
    #[case::placeholders_only("SELECT * FROM t WHERE a = $1", true, false)]
    #[case::literals_only("SELECT * FROM t WHERE a = 'x'", false, true)]
    #[case::both("SELECT * FROM t WHERE a = $1 LIMIT 10", true, true)]
    #[case::neither("SELECT * FROM t WHERE a IS NULL", false, false)]
    #[case::null_is_no_literal("UPDATE t SET a = NULL", false, false)]
    #[case::percent_in_string("SELECT * FROM t WHERE a LIKE '%s%'", false, true)]
    #[case::jsonb_operator("SELECT * FROM t WHERE data ? 'k'", false, true)]
    fn placeholder_and_literal_flags(#[case] statement: &str, #[case] placeholders: bool, #[case] literals: bool) {
        let got = fp(statement, "postgresql");
        assert_eq!((got.has_placeholders, got.has_literals), (placeholders, literals));
    }

    #[test]
    fn long_text_is_cut_but_keeps_a_full_length_id() {
        let columns: Vec<String> = (0..800).map(|i| format!("column_{i}")).collect();
        let a = fp(&format!("SELECT {} FROM t WHERE a = 1", columns.join(", ")), "");
        let b = fp(&format!("SELECT {} FROM t WHERE b = 1", columns.join(", ")), "");
        assert!(a.text.len() <= MAX_TEXT_BYTES + '…'.len_utf8());
        assert!(a.text.ends_with('…'));
        assert_eq!(a.text, b.text);
        assert_ne!(a.id, b.id);
    }

    #[test]
    fn text_cut_respects_char_boundaries() {
        let (_, text) = identify("é".repeat(MAX_TEXT_BYTES));
        assert!(text.len() <= MAX_TEXT_BYTES + '…'.len_utf8());
    }

    #[test]
    fn oversized_statements_are_cut_and_stable() {
        let rows = |n: usize| -> String {
            let rows: Vec<String> = (0..n).map(|i| format!("({i}, 'row {i}')")).collect();
            format!("INSERT INTO t (a, b) VALUES {}", rows.join(", "))
        };
        let (a, b) = (fp(&rows(30_000), "mysql"), fp(&rows(40_000), "mysql"));
        assert!(a.truncated && b.truncated && !a.parsed);
        assert_eq!(a.text, "INSERT INTO t (a, b) VALUES (?, ?)");
        assert_eq!(a.id, b.id);
        assert_eq!(a.id, fp("INSERT INTO t (a, b) VALUES (1, 'x')", "mysql").id);
    }

    #[test]
    fn percent_inside_strings_is_not_a_placeholder() {
        let got = fp("SELECT * FROM t WHERE a LIKE '%s%' AND b = %s", "postgresql");
        assert_eq!(got.text, "SELECT * FROM t WHERE a LIKE ? AND b = ?");
        assert!(got.parsed && got.has_placeholders && got.has_literals);
    }

    #[test]
    fn deep_nesting_does_not_overflow_a_small_stack() {
        let deep = format!("SELECT {}1{}", "(".repeat(5_000), ")".repeat(5_000));
        let chain = format!("SELECT 1{}", "+1".repeat(MAX_PARSE_INPUT_BYTES / 2 - 8));
        let handle = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || (fp(&deep, "postgresql").parsed, fp(&chain, "").parsed));
        let outcome = handle.ok().and_then(|h| h.join().ok());
        assert_eq!(outcome, Some((false, true)));
    }

    #[test]
    fn db_system_case_and_spaces_do_not_matter() {
        assert_eq!(
            fp("SELECT * FROM t WHERE a = %s", " PostgreSQL "),
            fp("SELECT * FROM t WHERE a = %s", "postgresql")
        );
    }

    // --- properties -----------------------------------------------------------------------------

    /// Statement templates with `{}` where an integer literal goes.
    const TEMPLATES: &[(&str, &str)] = &[
        ("SELECT * FROM t WHERE id = {} AND b = {}", "postgresql"),
        ("SELECT a FROM t WHERE id IN ({}, {}, {}) LIMIT {}", "mysql"),
        ("INSERT INTO t (a, b) VALUES ({}, {}), ({}, {})", "sqlite"),
        ("UPDATE t SET a = {} WHERE b = {} AND c = 'x'", "mssql"),
        ("SELECT * FROM t WHERE a = {} AND b = 'unterminated", "postgresql"),
        ("select * from \"t\" where \"a\" between {} and {} offset {}", ""),
    ];

    fn fill(template: &str, numbers: &[i64]) -> String {
        let mut out = String::new();
        let mut numbers = numbers.iter().cycle();
        for (i, part) in template.split("{}").enumerate() {
            if i > 0 {
                out.push_str(&numbers.next().map_or(0, |n| *n).to_string());
            }
            out.push_str(part);
        }
        out
    }

    proptest! {
        #[test]
        fn any_text_fingerprints_without_panic(statement in any::<String>(), system in
            prop_oneof![Just(""), Just("postgresql"), Just("mysql"), Just("mssql"),
                        Just("sqlite"), Just("oracle")]) {
            let got = fingerprint(&statement, system);
            if !got.text.ends_with('…') {
                prop_assert_eq!(got.id, xxh3_64(got.text.as_bytes()));
            }
        }

        #[test]
        fn sql_like_text_fingerprints_without_panic(
            statement in "[ a-zA-Z0-9_'\"`$?:@%().,;=<>*\\[\\]\\-/#\n]{0,200}",
            system in prop_oneof![Just(""), Just("postgresql"), Just("mysql"), Just("mssql")],
        ) {
            let got = fingerprint(&statement, system);
            prop_assert_eq!(&got, &fingerprint(&statement, system));
        }

        #[test]
        fn integer_literals_do_not_change_the_fingerprint(
            template in 0..TEMPLATES.len(),
            a in proptest::collection::vec(any::<i64>(), 1..8),
            b in proptest::collection::vec(any::<i64>(), 1..8),
        ) {
            let (template, system) = TEMPLATES[template];
            let left = fingerprint(&fill(template, &a), system);
            let right = fingerprint(&fill(template, &b), system);
            prop_assert_eq!(left.id, right.id);
            prop_assert_eq!(left.text, right.text);
        }

        #[test]
        fn string_literals_do_not_change_the_fingerprint(a in "\\PC{0,40}", b in "\\PC{0,40}") {
            let standard = |s: &str| {
                format!("SELECT * FROM t WHERE a = '{}' AND b = 1", s.replace('\'', "''"))
            };
            let mysql = |s: &str| {
                let escaped = s.replace('\\', "\\\\").replace('\'', "\\'");
                format!("SELECT * FROM t WHERE a = '{escaped}' AND b = 1")
            };
            prop_assert_eq!(
                fingerprint(&standard(&a), "postgresql"),
                fingerprint(&standard(&b), "postgresql")
            );
            prop_assert_eq!(fingerprint(&mysql(&a), "mysql"), fingerprint(&mysql(&b), "mysql"));
            prop_assert!(fingerprint(&mysql(&a), "mysql").parsed);
        }

        #[test]
        fn fingerprint_is_deterministic(statement in "\\PC{0,300}") {
            prop_assert_eq!(fingerprint(&statement, ""), fingerprint(&statement, ""));
        }
    }
}
