//! Placeholder rewriting: the example statement of a query shape, as the app sent it, turned into
//! text the target database accepts with every parameter left unbound.
//!
//! Drivers write placeholders as `?`, `?1`, `%s`, `%(name)s`, `$1`, `:name`, `@name` or `@p0`;
//! sanitizing instrumentations send `?` where a literal was; others inline the literals. The
//! scanner skips string literals, quoted identifiers, comments and PostgreSQL dollar-quoted bodies,
//! renumbers every placeholder (the same name keeps the same number) and writes `?N` for SQLite or
//! `$N` for PostgreSQL. Inlined literals are kept: the planner is happy with them.
//!
//! It also reports a second statement after a `;`, so that nothing but the one statement is ever
//! sent behind `EXPLAIN`.

use std::fmt::Write as _;

/// The SQL dialect to write placeholders for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `?N`.
    Sqlite,
    /// `$N`.
    Postgres,
}

/// A statement ready for the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    /// The statement with numbered placeholders and without a trailing `;`.
    pub sql: String,
    /// How many distinct parameters it has (the highest number used).
    pub params: usize,
}

/// Why a statement cannot be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// More than one statement: only one is ever explained.
    #[error("it holds more than one statement")]
    SeveralStatements,
    /// A literal, quoted identifier or comment is not closed (the text was cut).
    #[error("it is cut short (an unclosed quote or comment)")]
    Unterminated,
    /// Nothing but whitespace and comments.
    #[error("it is empty")]
    Empty,
}

/// Rewrites the placeholders of `statement` for `target`.
pub fn convert(statement: &str, target: Target) -> Result<Converted, ConvertError> {
    let mut scanner = Scanner { text: statement, bytes: statement.as_bytes(), pos: 0 };
    let pyformat = uses_pyformat(statement);
    let mut out = String::with_capacity(statement.len() + 8);
    let mut names: Vec<(String, usize)> = Vec::new();
    let mut highest = 0usize;
    let mut ended = false;
    let mut meaningful = false;
    while let Some(token) = scanner.next_token()? {
        if ended {
            match token {
                Token::Space(_) | Token::Comment(_) | Token::Semicolon => continue,
                _ => return Err(ConvertError::SeveralStatements),
            }
        }
        let number = match token {
            Token::Semicolon => {
                ended = true;
                continue;
            }
            Token::Space(text) | Token::Comment(text) => {
                out.push_str(text);
                continue;
            }
            Token::Text(text) => {
                meaningful = true;
                if pyformat && text == "%%" {
                    out.push('%');
                } else {
                    out.push_str(text);
                }
                continue;
            }
            Token::Positional => highest + 1,
            Token::Numbered(n) => n,
            Token::Named(name) => match names.iter().find(|(known, _)| *known == name) {
                Some((_, number)) => *number,
                None => {
                    names.push((name, highest + 1));
                    highest + 1
                }
            },
        };
        meaningful = true;
        highest = highest.max(number);
        match target {
            Target::Sqlite => write!(out, "?{number}"),
            Target::Postgres => write!(out, "${number}"),
        }
        .ok();
    }
    if !meaningful {
        return Err(ConvertError::Empty);
    }
    let sql = out.trim().to_string();
    Ok(Converted { sql, params: highest })
}

/// Whether the statement uses Python's `%s` / `%(name)s` style, where `%%` means one `%`.
fn uses_pyformat(statement: &str) -> bool {
    statement.contains("%s") || statement.contains(")s")
}

enum Token<'a> {
    Space(&'a str),
    Comment(&'a str),
    /// Anything copied as is: words, literals, quoted identifiers, operators.
    Text(&'a str),
    Semicolon,
    /// `?` or `%s`.
    Positional,
    /// `?N` or `$N`.
    Numbered(usize),
    /// `:name`, `@name`, `%(name)s`, `$name`.
    Named(String),
}

struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self, ahead: usize) -> Option<u8> {
        self.bytes.get(self.pos + ahead).copied()
    }

    fn take(&mut self, len: usize) -> &'a str {
        let start = self.pos;
        self.pos = (self.pos + len).min(self.bytes.len());
        &self.text[start..self.pos]
    }

    fn take_while(&mut self, from: usize, keep: impl Fn(u8) -> bool) -> usize {
        let mut end = self.pos + from;
        while end < self.bytes.len() && keep(self.bytes[end]) {
            end += 1;
        }
        end - self.pos
    }

    /// Length of a quoted run starting at `pos` and closed by `quote` (doubled quotes escape).
    fn quoted(&self, quote: u8) -> Result<usize, ConvertError> {
        let mut i = self.pos + 1;
        while i < self.bytes.len() {
            if self.bytes[i] == quote {
                if self.bytes.get(i + 1) == Some(&quote) {
                    i += 2;
                    continue;
                }
                return Ok(i + 1 - self.pos);
            }
            if self.bytes[i] == b'\\' && quote == b'\'' && self.escapes_backslash() {
                i += 2;
                continue;
            }
            i += 1;
        }
        Err(ConvertError::Unterminated)
    }

    /// `E'..'` strings (PostgreSQL) treat backslash as an escape; `time'..'` is not one.
    fn escapes_backslash(&self) -> bool {
        self.pos > 0
            && matches!(self.bytes[self.pos - 1], b'e' | b'E')
            && (self.pos == 1 || !is_word(self.bytes[self.pos - 2]))
    }

    fn next_token(&mut self) -> Result<Option<Token<'a>>, ConvertError> {
        let Some(byte) = self.peek(0) else { return Ok(None) };
        let next = self.peek(1);
        let token = match byte {
            b if b.is_ascii_whitespace() => {
                let len = self.take_while(0, |b| b.is_ascii_whitespace());
                Token::Space(self.take(len))
            }
            b'-' if next == Some(b'-') => {
                let len = self.take_while(0, |b| b != b'\n');
                Token::Comment(self.take(len))
            }
            b'/' if next == Some(b'*') => match self.text[self.pos + 2..].find("*/") {
                Some(end) => Token::Comment(self.take(end + 4)),
                None => return Err(ConvertError::Unterminated),
            },
            b'\'' | b'"' | b'`' => {
                let len = self.quoted(byte)?;
                Token::Text(self.take(len))
            }
            b'[' => match self.text[self.pos..].find(']') {
                Some(end) => Token::Text(self.take(end + 1)),
                None => Token::Text(self.take(1)),
            },
            b';' => {
                self.take(1);
                Token::Semicolon
            }
            b'?' => {
                let digits = self.take_while(1, |b| b.is_ascii_digit());
                if digits > 1 {
                    let number = self.take(digits)[1..].parse().unwrap_or(1);
                    Token::Numbered(number)
                } else if next.is_some_and(|b| matches!(b, b'|' | b'&' | b'-' | b'#')) {
                    // PostgreSQL JSON operators `?|`, `?&`, `?-`, `?#`.
                    Token::Text(self.take(2))
                } else {
                    self.take(1);
                    Token::Positional
                }
            }
            b'$' => {
                let digits = self.take_while(1, |b| b.is_ascii_digit());
                if digits > 1 {
                    let number = self.take(digits)[1..].parse().unwrap_or(1);
                    Token::Numbered(number)
                } else if let Some(len) = self.dollar_quote() {
                    Token::Text(self.take(len?))
                } else {
                    let len = self.take_while(1, is_word);
                    if len > 1 { Token::Named(self.take(len)[1..].to_string()) } else { Token::Text(self.take(1)) }
                }
            }
            b'%' if next == Some(b's') => {
                self.take(2);
                Token::Positional
            }
            b'%' if next == Some(b'%') => Token::Text(self.take(2)),
            b'%' if next == Some(b'(') => match self.text[self.pos..].find(")s") {
                Some(end) if self.text[self.pos + 2..self.pos + end].bytes().all(is_word) => {
                    let name = self.text[self.pos + 2..self.pos + end].to_string();
                    self.take(end + 2);
                    Token::Named(name)
                }
                _ => Token::Text(self.take(1)),
            },
            b':' if next == Some(b':') => Token::Text(self.take(2)),
            b':' | b'@' if next.is_some_and(|b| b.is_ascii_alphabetic() || b == b'_') => {
                let len = self.take_while(1, is_word);
                // `@@version` style variables are not placeholders; neither is `:=`.
                Token::Named(self.take(len)[1..].to_string())
            }
            b if is_word(b) => {
                let len = self.take_while(0, is_word);
                Token::Text(self.take(len))
            }
            _ => {
                let len = self.text[self.pos..].chars().next().map_or(1, char::len_utf8);
                Token::Text(self.take(len))
            }
        };
        Ok(Some(token))
    }

    /// A `$tag$ ... $tag$` body at `pos`: its length, or `None` when `$` does not open one.
    fn dollar_quote(&self) -> Option<Result<usize, ConvertError>> {
        let rest = &self.text[self.pos + 1..];
        let tag_len = rest.bytes().take_while(|b| is_word(*b) && !b.is_ascii_digit()).count();
        if rest.as_bytes().get(tag_len) != Some(&b'$') {
            return None;
        }
        let delimiter = &self.text[self.pos..self.pos + tag_len + 2];
        let body = &self.text[self.pos + delimiter.len()..];
        Some(match body.find(delimiter) {
            Some(end) => Ok(delimiter.len() * 2 + end),
            None => Err(ConvertError::Unterminated),
        })
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::qmark("SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = ?1 AND b = ?2", 2)]
    #[case::numbered_qmark("SELECT * FROM t WHERE a = ?2 AND b = ?1", "SELECT * FROM t WHERE a = ?2 AND b = ?1", 2)]
    #[case::format(
        "SELECT * FROM t WHERE a = %s AND b IN (%s, %s)",
        "SELECT * FROM t WHERE a = ?1 AND b IN (?2, ?3)",
        3
    )]
    #[case::pyformat(
        "SELECT * FROM t WHERE a = %(a)s OR b = %(b)s OR c = %(a)s",
        "SELECT * FROM t WHERE a = ?1 OR b = ?2 OR c = ?1",
        2
    )]
    #[case::pyformat_percent(
        "SELECT * FROM t WHERE a LIKE 'x%%' AND b = %s",
        "SELECT * FROM t WHERE a LIKE 'x%%' AND b = ?1",
        1
    )]
    #[case::dollar(
        "SELECT * FROM t WHERE a = $1 AND b = $2 AND c = $1",
        "SELECT * FROM t WHERE a = ?1 AND b = ?2 AND c = ?1",
        2
    )]
    #[case::colon(
        "SELECT * FROM t WHERE a = :id AND b = :name AND c = :id",
        "SELECT * FROM t WHERE a = ?1 AND b = ?2 AND c = ?1",
        2
    )]
    #[case::at("SELECT * FROM t WHERE a = @p0 AND b = @p1", "SELECT * FROM t WHERE a = ?1 AND b = ?2", 2)]
    #[case::dollar_name("SELECT * FROM t WHERE a = $id", "SELECT * FROM t WHERE a = ?1", 1)]
    #[case::literals(
        "SELECT * FROM t WHERE a = 'it''s ? here' AND b = 42",
        "SELECT * FROM t WHERE a = 'it''s ? here' AND b = 42",
        0
    )]
    #[case::quoted_ident("SELECT \"a?\" FROM t WHERE \"b:c\" = ?", "SELECT \"a?\" FROM t WHERE \"b:c\" = ?1", 1)]
    #[case::comments(
        "SELECT a -- what? :x\nFROM t /* $1 */ WHERE a = ?",
        "SELECT a -- what? :x\nFROM t /* $1 */ WHERE a = ?1",
        1
    )]
    #[case::trailing_semicolon("SELECT a FROM t WHERE a = ? ;  ", "SELECT a FROM t WHERE a = ?1", 1)]
    fn sqlite_placeholders_are_numbered(#[case] input: &str, #[case] sql: &str, #[case] params: usize) {
        assert_eq!(convert(input, Target::Sqlite), Ok(Converted { sql: sql.to_string(), params }));
    }

    #[rstest]
    #[case::qmark("SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = $1 AND b = $2", 2)]
    #[case::format("UPDATE t SET a = %s WHERE id = %s", "UPDATE t SET a = $1 WHERE id = $2", 2)]
    #[case::pyformat("SELECT * FROM t WHERE a = %(a)s", "SELECT * FROM t WHERE a = $1", 1)]
    #[case::pyformat_percent(
        "SELECT * FROM t WHERE a LIKE 'x%%' AND b = %s",
        "SELECT * FROM t WHERE a LIKE 'x%%' AND b = $1",
        1
    )]
    #[case::pyformat_percent_outside("SELECT a %% 2 FROM t WHERE b = %s", "SELECT a % 2 FROM t WHERE b = $1", 1)]
    #[case::dollar("SELECT * FROM t WHERE a = $1 AND b = $2", "SELECT * FROM t WHERE a = $1 AND b = $2", 2)]
    #[case::colon("SELECT * FROM t WHERE a = :id", "SELECT * FROM t WHERE a = $1", 1)]
    #[case::cast_is_not_a_name("SELECT a::text FROM t WHERE b = :b::int", "SELECT a::text FROM t WHERE b = $1::int", 1)]
    #[case::at("SELECT * FROM t WHERE a = @p0", "SELECT * FROM t WHERE a = $1", 1)]
    #[case::json_operators(
        "SELECT * FROM t WHERE tags ?| array['a'] AND b = ?",
        "SELECT * FROM t WHERE tags ?| array['a'] AND b = $1",
        1
    )]
    #[case::dollar_quoted("SELECT $$ ? $1 $$ FROM t WHERE a = ?", "SELECT $$ ? $1 $$ FROM t WHERE a = $1", 1)]
    #[case::inlined("SELECT * FROM t WHERE a = 'x' AND b = 3", "SELECT * FROM t WHERE a = 'x' AND b = 3", 0)]
    fn postgres_placeholders_are_dollar_numbers(#[case] input: &str, #[case] sql: &str, #[case] params: usize) {
        assert_eq!(convert(input, Target::Postgres), Ok(Converted { sql: sql.to_string(), params }));
    }

    #[rstest]
    #[case::second_statement("SELECT 1; DROP TABLE t", ConvertError::SeveralStatements)]
    #[case::second_after_comment("SELECT 1; -- fine\n DELETE FROM t", ConvertError::SeveralStatements)]
    #[case::cut_literal("SELECT * FROM t WHERE a = 'abc", ConvertError::Unterminated)]
    #[case::cut_comment("SELECT * FROM t /* note", ConvertError::Unterminated)]
    #[case::empty("  -- nothing\n", ConvertError::Empty)]
    fn unusable_statements_are_refused(#[case] input: &str, #[case] error: ConvertError) {
        assert_eq!(convert(input, Target::Postgres), Err(error.clone()));
        assert_eq!(convert(input, Target::Sqlite), Err(error));
    }

    #[test]
    fn only_e_strings_escape_with_backslash() {
        let converted = convert(r"SELECT * FROM t WHERE a = E'it\'s' AND b = ?", Target::Postgres).expect("one");
        assert_eq!(converted.params, 1);
        let sneaky = r"SELECT time'a\'; COMMIT; DROP TABLE t; --'";
        assert_eq!(convert(sneaky, Target::Postgres), Err(ConvertError::SeveralStatements));
    }

    #[test]
    fn a_semicolon_inside_a_literal_is_not_a_second_statement() {
        let converted = convert("SELECT * FROM t WHERE a = ';DROP TABLE t'", Target::Sqlite).expect("one statement");
        assert_eq!(converted.sql, "SELECT * FROM t WHERE a = ';DROP TABLE t'");
    }
}
