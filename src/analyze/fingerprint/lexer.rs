//! Tolerant SQL tokenizer shared by both fingerprint paths.
//!
//! Takes raw statement text and a [`Flavor`] and emits [`Token`]s that point back into the text
//! by byte range. It never fails: an unterminated string, quoted identifier or comment runs to
//! the end of the text and sets [`Lexed::unterminated`]. Comments and whitespace produce no
//! tokens. Every token boundary is a char boundary, so token ranges can always slice the text.
//!
//! After lexing, [`Lexed::mark_collapsible_lists`] marks the tokens of repeated list elements
//! (`IN (1, 2, 3)`, `ARRAY[1, 2]`, extra `VALUES` rows) as dropped. The parser input and the
//! fallback text both skip dropped tokens, so a list's length never changes a fingerprint and
//! a huge bulk insert costs the parser only its first row.

use super::Flavor;

/// What a token is, as far as fingerprinting cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TokenKind {
    /// Unquoted word: keyword, identifier, function or type name (also `@@system_var`).
    Word,
    /// Quoted identifier: `"x"`, `` `x` `` or `[x]` (the last only where the flavor allows it).
    QuotedIdent,
    /// String, number, hex, bit or boolean literal (`NULL` is a [`TokenKind::Word`]).
    Literal,
    /// Bind placeholder in any driver style.
    Placeholder(PlaceholderStyle),
    /// `(`
    OpenParen,
    /// `)`
    CloseParen,
    /// `[` where it is not an identifier quote.
    OpenBracket,
    /// `]`
    CloseBracket,
    /// `,`
    Comma,
    /// `.`
    Dot,
    /// `;`
    Semicolon,
    /// Operator or any other punctuation.
    Operator,
}

/// How a placeholder is spelled, where that changes how the parser input is prepared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PlaceholderStyle {
    /// `?`, `?1`, `$1`, `$?`, `%s`, `%(name)s`, `:name`, `:1`, `$name`, SQLAlchemy POSTCOMPILE.
    Bind,
    /// `@name` (SQL Server, Npgsql): could also be a local or user variable.
    AtName,
}

/// One token: its kind and where it sits in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Token {
    /// What the token is.
    pub(super) kind: TokenKind,
    /// Byte offset of the first byte.
    pub(super) start: usize,
    /// Byte offset one past the last byte.
    pub(super) end: usize,
    /// Part of a repeated list element that fingerprints leave out.
    pub(super) dropped: bool,
}

/// A statement cut into tokens.
#[derive(Debug)]
pub(super) struct Lexed<'a> {
    /// The raw statement text the tokens point into.
    pub(super) src: &'a str,
    /// Tokens in text order; comments and whitespace leave no token.
    pub(super) tokens: Vec<Token>,
    /// A string, quoted identifier or comment was still open at the end of the text.
    pub(super) unterminated: bool,
}

impl<'a> Lexed<'a> {
    /// Text of one token.
    pub(super) fn text(&self, token: &Token) -> &'a str {
        self.src.get(token.start..token.end).unwrap_or_default()
    }

    /// The token is a word equal to `keyword`, ignoring ASCII case.
    pub(super) fn is_word(&self, token: &Token, keyword: &str) -> bool {
        token.kind == TokenKind::Word && self.text(token).eq_ignore_ascii_case(keyword)
    }

    /// The text carries a bind placeholder.
    pub(super) fn has_placeholders(&self) -> bool {
        self.tokens.iter().any(|t| matches!(t.kind, TokenKind::Placeholder(_)))
    }

    /// The text carries a literal value (`NULL` does not count).
    pub(super) fn has_literals(&self) -> bool {
        self.tokens.iter().any(|t| t.kind == TokenKind::Literal)
    }

    /// More `(` than `)` were seen: the text was most likely cut off.
    pub(super) fn has_unclosed_paren(&self) -> bool {
        let mut depth = 0_i64;
        for token in &self.tokens {
            match token.kind {
                TokenKind::OpenParen => depth += 1,
                TokenKind::CloseParen => depth -= 1,
                _ => {}
            }
        }
        depth > 0
    }

    /// Marks repeated list elements as dropped: `IN (a, b, c)` keeps `a` when every element is
    /// a value, `ARRAY[a, b]` keeps `a`, `VALUES (..), (..)` keeps the first row.
    pub(super) fn mark_collapsible_lists(&mut self) {
        let partners = paren_partners(&self.tokens);
        let mut i = 0;
        while i < self.tokens.len() {
            let token = self.tokens[i];
            let next = if self.is_word(&token, "IN") {
                self.collapse_value_list(i + 1, TokenKind::OpenParen)
            } else if self.is_word(&token, "ARRAY") {
                self.collapse_value_list(i + 1, TokenKind::OpenBracket)
            } else if self.is_word(&token, "VALUES") {
                self.collapse_values_rows(i + 1, &partners)
            } else {
                None
            };
            i = next.unwrap_or(i + 1);
        }
    }

    /// Collapses the list opened at `open` when all its elements are values (a list cut off by
    /// the end of the text included); returns the index after the list.
    fn collapse_value_list(&mut self, open: usize, open_kind: TokenKind) -> Option<usize> {
        if self.kind_at(open)? != open_kind {
            return None;
        }
        let first_end = self.value_element_end(open + 1)?;
        let mut end = first_end;
        loop {
            match self.kind_at(end) {
                Some(TokenKind::Comma) if end + 1 == self.tokens.len() => {
                    end += 1;
                    break;
                }
                Some(TokenKind::Comma) => end = self.value_element_end(end + 1)?,
                Some(TokenKind::CloseParen | TokenKind::CloseBracket) | None => break,
                _ => return None,
            }
        }
        self.drop_tokens(first_end, end);
        Some(end + 1)
    }

    /// End (exclusive) of a value element starting at `i`: a literal or placeholder with an
    /// optional sign, or a parenthesized tuple of those.
    fn value_element_end(&self, i: usize) -> Option<usize> {
        if self.tokens.get(i)?.kind != TokenKind::OpenParen {
            return self.scalar_value_end(i);
        }
        let mut j = i + 1;
        loop {
            j = self.scalar_value_end(j)?;
            match self.tokens.get(j)?.kind {
                TokenKind::Comma => j += 1,
                TokenKind::CloseParen => return Some(j + 1),
                _ => return None,
            }
        }
    }

    /// End (exclusive) of a literal or placeholder starting at `i`, with an optional sign.
    fn scalar_value_end(&self, i: usize) -> Option<usize> {
        let mut j = i;
        let token = self.tokens.get(j)?;
        if token.kind == TokenKind::Operator && matches!(self.text(token), "-" | "+") {
            j += 1;
        }
        let token = self.tokens.get(j)?;
        let is_value =
            matches!(token.kind, TokenKind::Literal | TokenKind::Placeholder(_)) || self.is_word(token, "NULL");
        is_value.then_some(j + 1)
    }

    /// Drops every row after the first in `VALUES (..), (..)`, a last row cut off by the end of
    /// the text included; returns the index after the rows.
    fn collapse_values_rows(&mut self, open: usize, partners: &[usize]) -> Option<usize> {
        let first_end = matching_close(partners, open)? + 1;
        let mut end = first_end;
        while self.kind_at(end) == Some(TokenKind::Comma) && self.kind_at(end + 1) == Some(TokenKind::OpenParen) {
            match matching_close(partners, end + 1) {
                Some(close) => end = close + 1,
                None => {
                    end = self.tokens.len();
                    break;
                }
            }
        }
        self.drop_tokens(first_end, end);
        Some(end)
    }

    fn kind_at(&self, i: usize) -> Option<TokenKind> {
        self.tokens.get(i).map(|t| t.kind)
    }

    /// Marks tokens `from..to` as dropped.
    fn drop_tokens(&mut self, from: usize, to: usize) {
        if let Some(tokens) = self.tokens.get_mut(from..to) {
            for token in tokens {
                token.dropped = true;
            }
        }
    }
}

/// For each token index, the index of the `)` closing the `(` found there; [`NO_PARTNER`] for
/// other tokens and unclosed parentheses. One pass with a stack, so lookups stay O(1) even on
/// hostile input.
pub(super) fn paren_partners(tokens: &[Token]) -> Vec<usize> {
    let mut partners = vec![NO_PARTNER; tokens.len()];
    let mut open = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        match token.kind {
            TokenKind::OpenParen => open.push(i),
            TokenKind::CloseParen => {
                if let Some(opened) = open.pop()
                    && let Some(partner) = partners.get_mut(opened)
                {
                    *partner = i;
                }
            }
            _ => {}
        }
    }
    partners
}

/// Marks a token without a closing partner in [`paren_partners`].
pub(super) const NO_PARTNER: usize = usize::MAX;

/// The partner of the `(` at `open`, if it is one and it is closed.
pub(super) fn matching_close(partners: &[usize], open: usize) -> Option<usize> {
    partners.get(open).copied().filter(|&close| close != NO_PARTNER)
}

/// Cuts `src` into tokens the way `flavor` spells strings, identifiers and comments.
pub(super) fn lex(src: &str, flavor: Flavor) -> Lexed<'_> {
    let mut lexer = Lexer {
        src,
        bytes: src.as_bytes(),
        pos: 0,
        flavor,
        tokens: Vec::with_capacity(src.len() / 4 + 4),
        unterminated: false,
    };
    lexer.run();
    Lexed { src, tokens: lexer.tokens, unterminated: lexer.unterminated }
}

/// Operators of more than one character, longest first where one is a prefix of another.
const MULTI_CHAR_OPERATORS: &[&str] = &[
    "->>", "#>>", "<=>", "<->", "!~*", "::", "<=", ">=", "<>", "!=", "==", "||", "->", "#>", "@>", "<@", "&&", "<<",
    ">>", ":=", "=>", "!~", "~*", "?|", "?&", "~~",
];

/// The scanning state; see [`lex`].
struct Lexer<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    flavor: Flavor,
    tokens: Vec<Token>,
    unterminated: bool,
}

impl Lexer<'_> {
    fn run(&mut self) {
        while self.pos < self.bytes.len() {
            let start = self.pos;
            let kind = self.next_kind();
            self.ensure_progress(start);
            if let Some(kind) = kind {
                self.tokens.push(Token { kind, start, end: self.pos, dropped: false });
            }
        }
    }

    /// Keeps `pos` moving forward and on a char boundary whatever a scanning step did.
    fn ensure_progress(&mut self, start: usize) {
        if self.pos <= start {
            self.pos = start + 1;
        }
        self.pos = self.pos.min(self.bytes.len());
        while !self.src.is_char_boundary(self.pos) {
            self.pos += 1;
        }
    }

    fn peek(&self, ahead: usize) -> Option<u8> {
        self.bytes.get(self.pos + ahead).copied()
    }

    fn rest(&self) -> &[u8] {
        self.bytes.get(self.pos..).unwrap_or_default()
    }

    /// Consumes one token, or whitespace or a comment (returning `None`).
    fn next_kind(&mut self) -> Option<TokenKind> {
        let byte = self.peek(0)?;
        let mysql = self.flavor == Flavor::MySql;
        match byte {
            b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c' => {
                self.pos += 1;
                None
            }
            b'-' if self.peek(1) == Some(b'-') => self.skip_line_comment(),
            b'#' if mysql => self.skip_line_comment(),
            b'/' if self.peek(1) == Some(b'*') => self.skip_block_comment(),
            b'\'' => Some(self.quoted(b'\'', mysql, TokenKind::Literal)),
            b'"' if mysql => Some(self.quoted(b'"', true, TokenKind::Literal)),
            b'"' => Some(self.quoted(b'"', false, TokenKind::QuotedIdent)),
            b'`' => Some(self.quoted(b'`', false, TokenKind::QuotedIdent)),
            b'[' if self.flavor.brackets_quote_identifiers() => Some(self.quoted(b']', false, TokenKind::QuotedIdent)),
            b'0'..=b'9' => Some(self.number()),
            b'.' if self.peek(1).is_some_and(|b| b.is_ascii_digit()) && !self.after_name() => Some(self.number()),
            b'$' => Some(self.dollar()),
            b'?' => Some(self.question_mark()),
            b'%' => Some(self.percent()),
            b':' => Some(self.colon()),
            b'@' => Some(self.at_sign()),
            b'(' => Some(self.single(TokenKind::OpenParen)),
            b')' => Some(self.single(TokenKind::CloseParen)),
            b'[' => Some(self.single(TokenKind::OpenBracket)),
            b']' => Some(self.single(TokenKind::CloseBracket)),
            b',' => Some(self.single(TokenKind::Comma)),
            b'.' => Some(self.single(TokenKind::Dot)),
            b';' => Some(self.single(TokenKind::Semicolon)),
            _ if byte >= 0x80 => self.non_ascii(),
            _ if is_ident_start(byte) => Some(self.word()),
            _ => Some(self.operator()),
        }
    }

    fn single(&mut self, kind: TokenKind) -> TokenKind {
        self.pos += 1;
        kind
    }

    /// The previous token names something and touches `pos`, so a following `.5` is not a
    /// number.
    fn after_name(&self) -> bool {
        self.tokens.last().is_some_and(|t| {
            matches!(t.kind, TokenKind::Word | TokenKind::QuotedIdent | TokenKind::CloseParen) && t.end == self.pos
        })
    }

    /// The previous token is an operand, so a following `?` is an operator (PostgreSQL jsonb).
    fn after_operand(&self) -> bool {
        self.tokens.last().is_some_and(|t| match t.kind {
            TokenKind::Word => !is_keyword(self.src.get(t.start..t.end).unwrap_or_default()),
            TokenKind::QuotedIdent
            | TokenKind::Literal
            | TokenKind::Placeholder(_)
            | TokenKind::CloseParen
            | TokenKind::CloseBracket => true,
            _ => false,
        })
    }

    /// After the byte at `pos` and any spaces, a string literal starts.
    fn string_follows(&self) -> bool {
        self.rest().iter().skip(1).find(|b| !b.is_ascii_whitespace()).is_some_and(|&b| b == b'\'')
    }

    fn skip_line_comment(&mut self) -> Option<TokenKind> {
        let len = self.rest().iter().position(|&b| b == b'\n');
        self.pos = len.map_or(self.bytes.len(), |len| self.pos + len + 1);
        None
    }

    fn skip_block_comment(&mut self) -> Option<TokenKind> {
        let nested = self.flavor.nests_block_comments();
        self.pos += 2;
        let mut depth = 1_usize;
        while self.pos < self.bytes.len() {
            match (self.peek(0), self.peek(1)) {
                (Some(b'*'), Some(b'/')) => {
                    self.pos += 2;
                    depth -= 1;
                    if depth == 0 {
                        return None;
                    }
                }
                (Some(b'/'), Some(b'*')) if nested => {
                    self.pos += 2;
                    depth += 1;
                }
                _ => self.pos += 1,
            }
        }
        self.unterminated = true;
        None
    }

    /// Scans a quoted run whose opening byte is at `pos` and which ends at `close` (a doubled
    /// `close` escapes it).
    fn quoted(&mut self, close: u8, backslash_escapes: bool, kind: TokenKind) -> TokenKind {
        self.pos += 1;
        while let Some(byte) = self.peek(0) {
            if backslash_escapes && byte == b'\\' {
                self.pos += 2;
            } else if byte != close {
                self.pos += 1;
            } else if self.peek(1) == Some(close) {
                self.pos += 2;
            } else {
                self.pos += 1;
                return kind;
            }
        }
        self.pos = self.bytes.len();
        self.unterminated = true;
        kind
    }

    /// Digits with optional fraction and exponent, or `0x..` / `0b..`; a run that continues with
    /// letters is an identifier (MySQL allows `1abc`).
    fn number(&mut self) -> TokenKind {
        let radix_prefix = self.peek(0) == Some(b'0')
            && matches!(self.peek(1), Some(b'x' | b'X' | b'b' | b'B'))
            && self.peek(2).is_some_and(|b| b.is_ascii_hexdigit());
        if radix_prefix {
            self.pos += 2;
            self.skip_while(|b| b.is_ascii_hexdigit());
        } else {
            self.skip_while(|b| b.is_ascii_digit());
            if self.peek(0) == Some(b'.') && self.peek(1) != Some(b'.') {
                self.pos += 1;
                self.skip_while(|b| b.is_ascii_digit());
            }
            self.skip_exponent();
        }
        if self.peek(0).is_some_and(is_ident_continue) {
            self.skip_ident_chars(true);
            return TokenKind::Word;
        }
        TokenKind::Literal
    }

    fn skip_exponent(&mut self) {
        if !matches!(self.peek(0), Some(b'e' | b'E')) {
            return;
        }
        let digits_at = if matches!(self.peek(1), Some(b'+' | b'-')) { 2 } else { 1 };
        if self.peek(digits_at).is_some_and(|b| b.is_ascii_digit()) {
            self.pos += digits_at;
            self.skip_while(|b| b.is_ascii_digit());
        }
    }

    fn skip_while(&mut self, keep: impl Fn(u8) -> bool) {
        while self.peek(0).is_some_and(&keep) {
            self.pos += 1;
        }
    }

    /// Skips identifier characters: ASCII letters, digits, `_`, `$` when `dollar`, and any
    /// non-ASCII char that is not whitespace.
    fn skip_ident_chars(&mut self, dollar: bool) {
        while let Some(byte) = self.peek(0) {
            if byte < 0x80 {
                if !is_ident_continue(byte) || (byte == b'$' && !dollar) {
                    return;
                }
                self.pos += 1;
            } else {
                match self.src.get(self.pos..).and_then(|s| s.chars().next()) {
                    Some(ch) if !ch.is_whitespace() => self.pos += ch.len_utf8(),
                    _ => return,
                }
            }
        }
    }

    /// `$1`, Ruby's `$?`, `$$..$$` and `$tag$..$tag$` strings, SQLite `$name`, or an operator.
    fn dollar(&mut self) -> TokenKind {
        match self.peek(1) {
            Some(b'0'..=b'9') => {
                self.pos += 1;
                self.skip_while(|b| b.is_ascii_digit());
                TokenKind::Placeholder(PlaceholderStyle::Bind)
            }
            Some(b'?') => {
                self.pos += 2;
                TokenKind::Placeholder(PlaceholderStyle::Bind)
            }
            _ => {
                if let Some(tag_len) = self.dollar_tag_len() {
                    self.dollar_quoted(tag_len)
                } else if self.peek(1).is_some_and(is_ident_start) {
                    self.pos += 1;
                    self.skip_ident_chars(false);
                    TokenKind::Placeholder(PlaceholderStyle::Bind)
                } else {
                    self.operator()
                }
            }
        }
    }

    /// Length of a `$tag$` opener at `pos` (both `$` included), where the flavor has them.
    fn dollar_tag_len(&self) -> Option<usize> {
        if !self.flavor.has_dollar_quotes() {
            return None;
        }
        let rest = self.rest();
        let tag_len = rest.iter().skip(1).position(|&b| !(b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80))?;
        (rest.get(tag_len + 1) == Some(&b'$')).then_some(tag_len + 2)
    }

    fn dollar_quoted(&mut self, tag_len: usize) -> TokenKind {
        let body_start = self.pos + tag_len;
        let tag = self.bytes.get(self.pos..body_start).unwrap_or_default();
        let body = self.bytes.get(body_start..).unwrap_or_default();
        match body.windows(tag.len()).position(|w| w == tag) {
            Some(at) => self.pos = body_start + at + tag_len,
            None => {
                self.pos = self.bytes.len();
                self.unterminated = true;
            }
        }
        TokenKind::Literal
    }

    /// `?` and `?1` placeholders. In PostgreSQL `?|` and `?&` are jsonb operators, and so is
    /// `?` between an operand and a string (`data ? 'key'`); elsewhere (`fetch first ? rows`)
    /// it is a placeholder.
    fn question_mark(&mut self) -> TokenKind {
        if self.peek(1).is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
            self.skip_while(|b| b.is_ascii_digit());
            return TokenKind::Placeholder(PlaceholderStyle::Bind);
        }
        let jsonb = self.flavor == Flavor::Postgres
            && (matches!(self.peek(1), Some(b'|' | b'&')) || (self.after_operand() && self.string_follows()));
        if jsonb {
            return self.operator();
        }
        self.pos += 1;
        TokenKind::Placeholder(PlaceholderStyle::Bind)
    }

    /// Python DB-API `%s` and `%(name)s`; `%%` (an escaped `%`) and modulo are operators.
    fn percent(&mut self) -> TokenKind {
        match self.peek(1) {
            Some(b's') if !self.peek(2).is_some_and(is_ident_continue) => {
                self.pos += 2;
                TokenKind::Placeholder(PlaceholderStyle::Bind)
            }
            Some(b'(') => {
                let rest = self.rest();
                let name_len = rest.iter().skip(2).position(|&b| !is_ident_continue(b));
                let close = name_len.map(|len| len + 2);
                match close {
                    Some(at) if rest.get(at) == Some(&b')') && rest.get(at + 1) == Some(&b's') => {
                        self.pos += at + 2;
                        TokenKind::Placeholder(PlaceholderStyle::Bind)
                    }
                    _ => self.operator(),
                }
            }
            Some(b'%') => {
                self.pos += 2;
                TokenKind::Operator
            }
            _ => self.operator(),
        }
    }

    /// `:name` and `:1` placeholders; `::` and `:=` are operators.
    fn colon(&mut self) -> TokenKind {
        match self.peek(1) {
            Some(b) if is_ident_start(b) || b.is_ascii_digit() => {
                self.pos += 1;
                self.skip_ident_chars(true);
                TokenKind::Placeholder(PlaceholderStyle::Bind)
            }
            _ => self.operator(),
        }
    }

    /// `@name` placeholders and `@@system_variable` words.
    fn at_sign(&mut self) -> TokenKind {
        match (self.peek(1), self.peek(2)) {
            (Some(b'@'), Some(b)) if is_ident_start(b) => {
                self.pos += 2;
                self.skip_ident_chars(true);
                TokenKind::Word
            }
            (Some(b), _) if is_ident_start(b) => {
                self.pos += 1;
                self.skip_ident_chars(true);
                TokenKind::Placeholder(PlaceholderStyle::AtName)
            }
            _ => self.operator(),
        }
    }

    /// An unquoted word, or a string with a prefix (`E'..'`, `N'..'`, `X'..'`, `U&'..'`,
    /// `_utf8'..'`, Oracle `q'[..]'`), or SQLAlchemy's `__[POSTCOMPILE_name]`.
    fn word(&mut self) -> TokenKind {
        let start = self.pos;
        self.skip_ident_chars(true);
        let word = self.bytes.get(start..self.pos).unwrap_or_default();
        if self.peek(0) == Some(b'\'')
            && let Some(kind) = self.prefixed_string(word)
        {
            return kind;
        }
        if word.eq_ignore_ascii_case(b"U") && self.rest().starts_with(b"&'") {
            self.pos += 1;
            return self.quoted(b'\'', false, TokenKind::Literal);
        }
        if word == b"__" && self.rest().starts_with(b"[POSTCOMPILE_") {
            return self.post_compile();
        }
        let boolean = word.eq_ignore_ascii_case(b"TRUE") || word.eq_ignore_ascii_case(b"FALSE");
        let qualified = self.tokens.last().is_some_and(|t| t.kind == TokenKind::Dot);
        if boolean && !qualified {
            return TokenKind::Literal;
        }
        TokenKind::Word
    }

    /// A string literal right after `prefix` (no space between), when `prefix` introduces one.
    fn prefixed_string(&mut self, prefix: &[u8]) -> Option<TokenKind> {
        let is = |candidate: &[u8]| prefix.eq_ignore_ascii_case(candidate);
        let mysql = self.flavor == Flavor::MySql;
        if is(b"E") {
            Some(self.quoted(b'\'', true, TokenKind::Literal))
        } else if is(b"N") || is(b"X") || is(b"B") || is(b"R") || prefix.first() == Some(&b'_') {
            Some(self.quoted(b'\'', mysql, TokenKind::Literal))
        } else if (is(b"Q") || is(b"NQ")) && self.peek(1).is_some_and(|b| b.is_ascii_graphic()) {
            Some(self.quote_delimited())
        } else {
            None
        }
    }

    /// Oracle `q'<open>..<close>'`; `pos` is at the quote.
    fn quote_delimited(&mut self) -> TokenKind {
        let close = match self.peek(1) {
            Some(b'[') => b']',
            Some(b'{') => b'}',
            Some(b'<') => b'>',
            Some(b'(') => b')',
            Some(other) => other,
            None => return TokenKind::Word,
        };
        self.pos += 2;
        match self.rest().windows(2).position(|w| w == [close, b'\'']) {
            Some(at) => self.pos += at + 2,
            None => {
                self.pos = self.bytes.len();
                self.unterminated = true;
            }
        }
        TokenKind::Literal
    }

    /// SQLAlchemy's expanding parameter `__[POSTCOMPILE_name]`; `pos` is at the `[`.
    fn post_compile(&mut self) -> TokenKind {
        match self.rest().iter().position(|&b| b == b']') {
            Some(at) => self.pos += at + 1,
            None => {
                self.pos = self.bytes.len();
                self.unterminated = true;
            }
        }
        TokenKind::Placeholder(PlaceholderStyle::Bind)
    }

    /// A non-ASCII char: whitespace is skipped, anything else starts a word.
    fn non_ascii(&mut self) -> Option<TokenKind> {
        let ch = self.src.get(self.pos..)?.chars().next()?;
        if ch.is_whitespace() {
            self.pos += ch.len_utf8();
            return None;
        }
        Some(self.word())
    }

    /// A known multi-character operator, else one byte.
    fn operator(&mut self) -> TokenKind {
        let rest = self.rest();
        let len = MULTI_CHAR_OPERATORS.iter().find(|op| rest.starts_with(op.as_bytes())).map_or(1, |op| op.len());
        self.pos += len;
        TokenKind::Operator
    }
}

fn is_ident_start(byte: u8) -> bool {
    byte.is_ascii_alphabetic() || byte == b'_' || byte >= 0x80
}

fn is_ident_continue(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'$' || byte >= 0x80
}

/// Words the fallback prints upper case: reserved words that are rarely column names.
/// Sorted, upper case, for binary search.
const KEYWORDS: &[&str] = &[
    "ABORT",
    "ALL",
    "ALTER",
    "ANALYZE",
    "AND",
    "ANY",
    "AS",
    "ASC",
    "BEGIN",
    "BETWEEN",
    "BY",
    "CALL",
    "CASCADE",
    "CASE",
    "CAST",
    "COMMIT",
    "CONFLICT",
    "CONSTRAINT",
    "COPY",
    "CREATE",
    "CROSS",
    "DEALLOCATE",
    "DECLARE",
    "DEFAULT",
    "DELETE",
    "DESC",
    "DISTINCT",
    "DO",
    "DROP",
    "DUPLICATE",
    "ELSE",
    "END",
    "ESCAPE",
    "EXCEPT",
    "EXEC",
    "EXECUTE",
    "EXISTS",
    "EXPLAIN",
    "FALSE",
    "FETCH",
    "FOR",
    "FROM",
    "FULL",
    "GRANT",
    "GROUP",
    "HAVING",
    "ILIKE",
    "IN",
    "INNER",
    "INSERT",
    "INTERSECT",
    "INTERVAL",
    "INTO",
    "IS",
    "JOIN",
    "LATERAL",
    "LEFT",
    "LIKE",
    "LIMIT",
    "LOCK",
    "LOCKED",
    "MATCHED",
    "MATERIALIZED",
    "MERGE",
    "NATURAL",
    "NOT",
    "NOTHING",
    "NOWAIT",
    "NULL",
    "NULLS",
    "OFFSET",
    "ON",
    "ONLY",
    "OR",
    "ORDER",
    "OUTER",
    "OUTPUT",
    "OVER",
    "PARTITION",
    "PRAGMA",
    "PREPARE",
    "RECURSIVE",
    "REGEXP",
    "RELEASE",
    "REPLACE",
    "RETURNING",
    "REVOKE",
    "RIGHT",
    "ROLLBACK",
    "ROWS",
    "SAVEPOINT",
    "SELECT",
    "SET",
    "SHARE",
    "SHOW",
    "SIMILAR",
    "SKIP",
    "SOME",
    "START",
    "TABLE",
    "THEN",
    "TO",
    "TOP",
    "TRANSACTION",
    "TRUE",
    "TRUNCATE",
    "UNION",
    "UNIQUE",
    "UPDATE",
    "USE",
    "USING",
    "VACUUM",
    "VALUES",
    "WHEN",
    "WHERE",
    "WINDOW",
    "WITH",
];

/// Longest entry of [`KEYWORDS`].
const KEYWORD_MAX_LEN: usize = 12;

/// `word` is in [`KEYWORDS`], ignoring ASCII case.
pub(super) fn is_keyword(word: &str) -> bool {
    keyword(word).is_some()
}

/// The [`KEYWORDS`] entry equal to `word` ignoring ASCII case: its upper-case spelling.
pub(super) fn keyword(word: &str) -> Option<&'static str> {
    let bytes = word.as_bytes();
    let mut upper = [0_u8; KEYWORD_MAX_LEN];
    let upper = upper.get_mut(..bytes.len())?;
    for (out, byte) in upper.iter_mut().zip(bytes) {
        *out = byte.to_ascii_uppercase();
    }
    let upper: &[u8] = upper;
    KEYWORDS.binary_search_by(|probe| probe.as_bytes().cmp(upper)).ok().and_then(|at| KEYWORDS.get(at).copied())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn kinds(src: &str, flavor: Flavor) -> Vec<(TokenKind, String)> {
        let lexed = lex(src, flavor);
        lexed.tokens.iter().map(|t| (t.kind, lexed.text(t).to_owned())).collect()
    }

    const BIND: TokenKind = TokenKind::Placeholder(PlaceholderStyle::Bind);

    #[test]
    fn keyword_table_is_sorted_upper_case_and_short() {
        assert!(KEYWORDS.windows(2).all(|w| w[0] < w[1]));
        assert!(KEYWORDS.iter().all(|k| k.len() <= KEYWORD_MAX_LEN && *k == k.to_ascii_uppercase()));
        assert!(is_keyword("select") && is_keyword("Where") && !is_keyword("users"));
    }

    #[rstest]
    #[case::question("a = ?", Flavor::Generic, "?")]
    #[case::question_after_keyword("LIMIT ?", Flavor::Postgres, "?")]
    #[case::numbered_question("a = ?12", Flavor::Sqlite, "?12")]
    #[case::dollar("a = $3", Flavor::Postgres, "$3")]
    #[case::ruby_dollar("a = $?", Flavor::Postgres, "$?")]
    #[case::pyformat("a = %s", Flavor::Postgres, "%s")]
    #[case::pyformat_named("a = %(pk_1)s", Flavor::Postgres, "%(pk_1)s")]
    #[case::colon_name("a = :user_id", Flavor::Oracle, ":user_id")]
    #[case::colon_number("a = :1", Flavor::Oracle, ":1")]
    #[case::sqlite_dollar_name("a = $name", Flavor::Sqlite, "$name")]
    #[case::post_compile("a IN (__[POSTCOMPILE_id_1])", Flavor::Generic, "__[POSTCOMPILE_id_1]")]
    fn placeholders_are_recognized(#[case] src: &str, #[case] flavor: Flavor, #[case] want: &str) {
        let tokens = kinds(src, flavor);
        assert!(tokens.contains(&(BIND, want.to_owned())), "{src}: {tokens:?}");
    }

    #[test]
    fn at_names_are_their_own_placeholder_style() {
        let tokens = kinds("WHERE [u].[Id] = @__id_0", Flavor::MsSql);
        let at_name = TokenKind::Placeholder(PlaceholderStyle::AtName);
        assert!(tokens.contains(&(at_name, "@__id_0".to_owned())));
    }

    #[rstest]
    #[case::like_pattern("a LIKE '%s%'", Flavor::Postgres)]
    #[case::doubled_quote("a = 'it''s %s'", Flavor::Postgres)]
    #[case::mysql_backslash(r"a = 'it\'s %s'", Flavor::MySql)]
    #[case::escape_string(r"a = E'it\'s %s'", Flavor::Postgres)]
    #[case::dollar_quoted("a = $tag$ %s ? $tag$", Flavor::Postgres)]
    #[case::oracle_quote_delimited("a = q'[it's %s]'", Flavor::Oracle)]
    #[case::cast("a::text", Flavor::Postgres)]
    #[case::jsonb_operator("data ? 'key'", Flavor::Postgres)]
    #[case::escaped_percent("a LIKE 'x' || '%%'", Flavor::Postgres)]
    #[case::line_comment("a = 1 -- %s\n", Flavor::Postgres)]
    #[case::block_comment("a = 1 /* :x ? */", Flavor::Postgres)]
    #[case::mysql_hash_comment("a = 1 # ?", Flavor::MySql)]
    #[case::system_variable("SELECT @@version", Flavor::MsSql)]
    fn quoted_and_operator_text_is_not_a_placeholder(#[case] src: &str, #[case] flavor: Flavor) {
        let lexed = lex(src, flavor);
        assert!(!lexed.has_placeholders(), "{src}: {:?}", lexed.tokens);
        assert!(!lexed.unterminated, "{src}");
    }

    #[rstest]
    #[case::string("a = 'abc", Flavor::Generic)]
    #[case::identifier("a = \"abc", Flavor::Generic)]
    #[case::comment("a = 1 /* abc", Flavor::Generic)]
    #[case::nested_comment("a = 1 /* /* */", Flavor::Postgres)]
    #[case::dollar("DO $$ BEGIN", Flavor::Postgres)]
    #[case::bracket("SELECT [a", Flavor::MsSql)]
    #[case::trailing_backslash("a = 'abc\\", Flavor::MySql)]
    fn unterminated_text_is_flagged(#[case] src: &str, #[case] flavor: Flavor) {
        assert!(lex(src, flavor).unterminated);
    }

    #[rstest]
    #[case::integer("1", true)]
    #[case::decimal("1.5e-3", true)]
    #[case::leading_dot(".5", true)]
    #[case::hex("0x1F", true)]
    #[case::hex_string("X'1F'", true)]
    #[case::national("N'abc'", true)]
    #[case::boolean("TRUE", true)]
    #[case::null("NULL", false)]
    #[case::digit_led_identifier("1abc", false)]
    #[case::qualified_true("t.true", false)]
    fn literals_are_recognized(#[case] src: &str, #[case] literal: bool) {
        assert_eq!(lex(src, Flavor::Generic).has_literals(), literal, "{src}");
    }

    #[test]
    fn mysql_double_quotes_are_strings_elsewhere_identifiers() {
        assert_eq!(kinds("\"a\"", Flavor::MySql)[0].0, TokenKind::Literal);
        assert_eq!(kinds("\"a\"", Flavor::Postgres)[0].0, TokenKind::QuotedIdent);
    }

    #[test]
    fn ranges_slice_multibyte_text() {
        let tokens = kinds("SELECT 'é' FROM ünïcode WHERE x\u{3000}= '☃'", Flavor::Generic);
        assert!(tokens.contains(&(TokenKind::Word, "ünïcode".to_owned())));
        assert_eq!(tokens.len(), 8);
    }

    fn kept(src: &str) -> String {
        let mut lexed = lex(src, Flavor::Generic);
        lexed.mark_collapsible_lists();
        lexed.tokens.iter().filter(|t| !t.dropped).map(|t| lexed.text(t)).collect::<Vec<_>>().join(" ")
    }

    #[rstest]
    #[case::in_list("a IN (1, -2, 'x')", "a IN ( 1 )")]
    #[case::in_tuples("(a, b) IN ((1, 2), (3, 4))", "( a , b ) IN ( ( 1 , 2 ) )")]
    #[case::in_columns_kept("a IN (b, c)", "a IN ( b , c )")]
    #[case::in_subquery_kept("a IN (SELECT 1)", "a IN ( SELECT 1 )")]
    #[case::array("ARRAY[1, 2]", "ARRAY [ 1 ]")]
    #[case::values("VALUES (1, now()), (2, now()) RETURNING id", "VALUES ( 1 , now ( ) ) RETURNING id")]
    #[case::unclosed_values("VALUES (1), (2", "VALUES ( 1 )")]
    #[case::unclosed_in_list("a IN (1, 2,", "a IN ( 1")]
    fn repeated_list_elements_are_dropped(#[case] src: &str, #[case] want: &str) {
        assert_eq!(kept(src), want);
    }
}
