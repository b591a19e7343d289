//! A small SQL lexer that knows each dialect's quoting, for splitting a
//! PostgreSQL `Q` into its statements and for redaction. It is not a
//! parser: it only says where words, literals, comments and punctuation
//! start and end, so that a `;` inside a string or a comment never splits
//! and a password literal is found whole.
//!
//! Quoting per dialect:
//! - PostgreSQL: `'...'` (`''` doubles, backslash literal), `E'...'`
//!   (backslash escapes), `B'' X'' N'' U&''` prefixes, `"..."` and
//!   `U&"..."` identifiers, `$tag$...$tag$` dollar quotes, `$1`
//!   parameters, `--` and nested `/* */` comments.
//! - MySQL/MariaDB: `'...'` and `"..."` strings with backslash escapes
//!   and doubled quotes (a backslash read as an escape gives the longer
//!   string, so `NO_BACKSLASH_ESCAPES` can only redact more), `` `...` ``
//!   identifiers, `_charset'...'` introducers, `?` parameters, `#`,
//!   `-- ` and `/* */` comments, `/*! ... */` read as code.
//! - Oracle: `'...'`, `q'[...]'` alternative quoting, `N''`, `"..."`
//!   identifiers, `--` and `/* */` comments.
//!
//! Pure; works on bytes (every delimiter is ASCII, so token bounds are
//! always `str` char boundaries); never panics.

/// SQL dialect of a statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    MySql,
    Oracle,
}

/// What a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Space,
    Comment,
    /// An unquoted identifier or keyword.
    Word,
    /// `"..."` or `` `...` ``.
    QuotedIdent,
    /// A string literal, prefix included (`E'..'`, `_utf8'..'`, `$$..$$`).
    Str,
    Number,
    /// A placeholder: PostgreSQL `$n`, MySQL `?`.
    Param,
    /// One byte of punctuation or operator.
    Punct,
    /// A literal, identifier or comment that does not end before the end
    /// of the text: what follows it cannot be read with certainty.
    Unterminated,
}

/// One token: its kind and byte range in the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

/// Iterator over the tokens of one text.
pub struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
    dialect: Dialect,
    /// Inside a MySQL `/*! ... */` executable comment.
    in_code_comment: bool,
}

impl<'a> Lexer<'a> {
    pub fn new(text: &'a str, dialect: Dialect) -> Lexer<'a> {
        Lexer {
            s: text.as_bytes(),
            pos: 0,
            dialect,
            in_code_comment: false,
        }
    }

    fn at(&self, i: usize) -> u8 {
        self.s.get(i).copied().unwrap_or(0)
    }

    /// End of a quoted run starting at `open` (the quote itself) closed by
    /// `quote`, where a doubled quote stands for one and, with
    /// `backslash`, a backslash escapes the next byte. `None` when it
    /// does not end.
    fn quoted_end(&self, open: usize, quote: u8, backslash: bool) -> Option<usize> {
        let mut i = open + 1;
        while i < self.s.len() {
            let b = self.s[i];
            if backslash && b == b'\\' {
                i += 2;
            } else if b == quote {
                if self.at(i + 1) == quote {
                    i += 2;
                } else {
                    return Some(i + 1);
                }
            } else {
                i += 1;
            }
        }
        None
    }

    /// End of a `/* */` comment starting at `open`; PostgreSQL nests them.
    fn block_comment_end(&self, open: usize) -> Option<usize> {
        let nests = self.dialect == Dialect::Postgres;
        let mut depth = 1usize;
        let mut i = open + 2;
        while i + 1 < self.s.len() {
            if self.s[i] == b'*' && self.s[i + 1] == b'/' {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return Some(i);
                }
            } else if nests && self.s[i] == b'/' && self.s[i + 1] == b'*' {
                depth += 1;
                i += 2;
            } else {
                i += 1;
            }
        }
        None
    }

    fn line_end(&self, from: usize) -> usize {
        self.s[from..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(self.s.len(), |p| from + p + 1)
    }

    /// PostgreSQL dollar quote opening at `open`: `$tag$` or `$$`. The end
    /// of the whole literal, `Some(None)` when it does not end, `None`
    /// when this `$` opens no dollar quote.
    fn dollar_quote(&self, open: usize) -> Option<Option<usize>> {
        let mut i = open + 1;
        while i < self.s.len() && is_word_byte(self.s[i]) && self.s[i] != b'$' {
            i += 1;
        }
        if self.at(i) != b'$' || (i > open + 1 && self.s[open + 1].is_ascii_digit()) {
            return None;
        }
        let tag = &self.s[open..=i];
        let body = i + 1;
        Some(find(&self.s[body..], tag).map(|p| body + p + tag.len()))
    }

    /// Oracle `q'X...X'` starting at the quote after `q`.
    fn q_quote_end(&self, quote: usize) -> Option<usize> {
        let open = self.at(quote + 1);
        let close = match open {
            b'[' => b']',
            b'{' => b'}',
            b'(' => b')',
            b'<' => b'>',
            0 => return None,
            b if b.is_ascii_whitespace() => return None,
            b => b,
        };
        let mut i = quote + 2;
        while i + 1 < self.s.len() {
            if self.s[i] == close && self.s[i + 1] == b'\'' {
                return Some(i + 2);
            }
            i += 1;
        }
        None
    }

    /// A literal starting at `start` whose quote is at `quote` (after a
    /// prefix, if any).
    fn string_at(&self, quote: usize, backslash: bool) -> (Kind, usize) {
        match self.quoted_end(quote, self.s[quote], backslash) {
            Some(end) => (Kind::Str, end),
            None => (Kind::Unterminated, self.s.len()),
        }
    }

    /// A word at `start`, or a prefixed literal when a quote follows it.
    fn word(&self, start: usize) -> (Kind, usize) {
        let mut end = start;
        while end < self.s.len() && is_word_byte(self.s[end]) {
            end += 1;
        }
        let word = &self.s[start..end];
        let next = self.at(end);
        match self.dialect {
            Dialect::Postgres => {
                if next == b'\'' {
                    if word.eq_ignore_ascii_case(b"e") {
                        return self.string_at(end, true);
                    }
                    if [&b"b"[..], b"x", b"n"]
                        .iter()
                        .any(|p| word.eq_ignore_ascii_case(p))
                    {
                        return self.string_at(end, false);
                    }
                }
                if word.eq_ignore_ascii_case(b"u") && next == b'&' {
                    match self.at(end + 1) {
                        b'\'' => return self.string_at(end + 1, false),
                        b'"' => {
                            return match self.quoted_end(end + 1, b'"', false) {
                                Some(e) => (Kind::QuotedIdent, e),
                                None => (Kind::Unterminated, self.s.len()),
                            };
                        }
                        _ => {}
                    }
                }
            }
            Dialect::MySql => {
                let introducer = word.first() == Some(&b'_')
                    || [&b"b"[..], b"x", b"n"]
                        .iter()
                        .any(|p| word.eq_ignore_ascii_case(p));
                if introducer && next == b'\'' {
                    return self.string_at(end, true);
                }
            }
            Dialect::Oracle => {
                if next == b'\'' {
                    if word.eq_ignore_ascii_case(b"q") || word.eq_ignore_ascii_case(b"nq") {
                        return match self.q_quote_end(end) {
                            Some(e) => (Kind::Str, e),
                            None => (Kind::Unterminated, self.s.len()),
                        };
                    }
                    if word.eq_ignore_ascii_case(b"n") {
                        return self.string_at(end, false);
                    }
                }
            }
        }
        (Kind::Word, end)
    }

    fn number(&self, start: usize) -> usize {
        let mut end = start;
        while end < self.s.len() && (self.s[end].is_ascii_alphanumeric() || self.s[end] == b'.') {
            end += 1;
        }
        end
    }
}

impl Iterator for Lexer<'_> {
    type Item = Token;

    fn next(&mut self) -> Option<Token> {
        let start = self.pos;
        let b = *self.s.get(start)?;
        let n = self.at(start + 1);
        let unterminated = (Kind::Unterminated, self.s.len());
        let (kind, end) = match b {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => {
                let mut e = start + 1;
                while e < self.s.len()
                    && matches!(self.s[e], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
                {
                    e += 1;
                }
                (Kind::Space, e)
            }
            b'-' if n == b'-' => {
                let mysql_comment =
                    self.dialect != Dialect::MySql || matches!(self.at(start + 2), 0..=b' ');
                if mysql_comment {
                    (Kind::Comment, self.line_end(start))
                } else {
                    (Kind::Punct, start + 1)
                }
            }
            b'#' if self.dialect == Dialect::MySql => (Kind::Comment, self.line_end(start)),
            b'/' if n == b'*' => {
                if self.dialect == Dialect::MySql && self.at(start + 2) == b'!' {
                    // executable comment: its body is code
                    let mut e = start + 3;
                    while e < self.s.len() && self.s[e].is_ascii_digit() {
                        e += 1;
                    }
                    self.in_code_comment = true;
                    (Kind::Comment, e)
                } else {
                    match self.block_comment_end(start) {
                        Some(e) => (Kind::Comment, e),
                        None => unterminated,
                    }
                }
            }
            b'*' if n == b'/' && self.in_code_comment => {
                self.in_code_comment = false;
                (Kind::Comment, start + 2)
            }
            b'\'' => self.string_at(start, self.dialect == Dialect::MySql),
            b'"' if self.dialect == Dialect::MySql => self.string_at(start, true),
            b'"' => match self.quoted_end(start, b'"', false) {
                Some(e) => (Kind::QuotedIdent, e),
                None => unterminated,
            },
            b'`' if self.dialect == Dialect::MySql => match self.quoted_end(start, b'`', false) {
                Some(e) => (Kind::QuotedIdent, e),
                None => unterminated,
            },
            b'$' if self.dialect == Dialect::Postgres => {
                if n.is_ascii_digit() {
                    let mut e = start + 1;
                    while e < self.s.len() && self.s[e].is_ascii_digit() {
                        e += 1;
                    }
                    (Kind::Param, e)
                } else {
                    match self.dollar_quote(start) {
                        Some(Some(e)) => (Kind::Str, e),
                        Some(None) => unterminated,
                        None => (Kind::Punct, start + 1),
                    }
                }
            }
            b'?' if self.dialect == Dialect::MySql => (Kind::Param, start + 1),
            b'0'..=b'9' => (Kind::Number, self.number(start)),
            b'.' if n.is_ascii_digit() => (Kind::Number, self.number(start)),
            b if is_word_byte(b) && b != b'$' => self.word(start),
            _ => (Kind::Punct, start + 1),
        };
        let end = end.clamp(start + 1, self.s.len());
        self.pos = end;
        Some(Token { kind, start, end })
    }
}

/// Bytes that continue an unquoted identifier (`$` included, as in
/// PostgreSQL and MySQL; non-ASCII bytes are letters).
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// Position of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One statement of a PostgreSQL query string: its byte range, the
/// terminating `;` included when there is one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    pub start: usize,
    pub end: usize,
}

/// Split a PostgreSQL simple-query string into its statements as the
/// server does: at top-level `;` (outside literals, comments and
/// parentheses, and outside the `BEGIN ... END` of a SQL-standard
/// function body, counted as psql counts it). Pieces that hold no token
/// but comments and blanks are no statements (the server skips them).
pub fn split_postgres(text: &str) -> Vec<Piece> {
    match split_one(text) {
        Some(p) => p.into_iter().collect(),
        None => split_lexed(text),
    }
}

/// Bytes the lexer takes for blanks.
fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// [`split_lexed`] without the lexer for the usual query string — one
/// statement, with no `;` or with only blanks after its first `;` — and
/// `None` for any other. Where a query string starts with something that
/// may be a comment or a `;`, or has more after its `;`, the lexer
/// decides. With at most one `;`, and that one last, the answer does not
/// depend on what the lexer would make of the text: a top-level `;` ends
/// the statement where the blanks begin, and a `;` inside a literal,
/// comment or parenthesis leaves the statement ending there too.
fn split_one(text: &str) -> Option<Option<Piece>> {
    let b = text.as_bytes();
    let Some(start) = b.iter().position(|&c| !is_blank(c)) else {
        return Some(None);
    };
    if matches!(b[start], b'-' | b'/' | b';') {
        return None;
    }
    match memchr::memchr(b';', b) {
        None => Some(Some(Piece {
            start,
            end: text.trim_end().len().max(start),
        })),
        Some(k) if b[k + 1..].iter().all(|&c| is_blank(c)) => {
            Some(Some(Piece { start, end: k + 1 }))
        }
        Some(_) => None,
    }
}

/// [`split_postgres`] token by token.
fn split_lexed(text: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut start: Option<usize> = None;
    let mut paren = 0usize;
    let mut begin_depth = 0usize;
    let mut words = 0usize;
    for t in Lexer::new(text, Dialect::Postgres) {
        match t.kind {
            Kind::Space | Kind::Comment => continue,
            Kind::Punct if text.as_bytes()[t.start] == b';' && paren == 0 && begin_depth == 0 => {
                if let Some(s) = start.take() {
                    pieces.push(Piece {
                        start: s,
                        end: t.end,
                    });
                }
                words = 0;
                continue;
            }
            Kind::Punct => match text.as_bytes()[t.start] {
                b'(' => paren += 1,
                b')' => paren = paren.saturating_sub(1),
                _ => {}
            },
            Kind::Word => {
                words += 1;
                let w = &text[t.start..t.end];
                if w.eq_ignore_ascii_case("begin") || w.eq_ignore_ascii_case("case") {
                    if words > 1 {
                        begin_depth += 1;
                    }
                } else if w.eq_ignore_ascii_case("end") {
                    begin_depth = begin_depth.saturating_sub(1);
                }
            }
            _ => {}
        }
        if start.is_none() {
            start = Some(t.start);
        }
        let _ = t;
    }
    if let Some(s) = start {
        let end = text.trim_end().len().max(s);
        pieces.push(Piece { start: s, end });
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str, d: Dialect) -> Vec<(Kind, &str)> {
        Lexer::new(text, d)
            .filter(|t| t.kind != Kind::Space)
            .map(|t| (t.kind, &text[t.start..t.end]))
            .collect()
    }

    fn split(text: &str) -> Vec<&str> {
        split_postgres(text)
            .iter()
            .map(|p| &text[p.start..p.end])
            .collect()
    }

    #[test]
    fn postgres_quoting() {
        use Kind::*;
        assert_eq!(
            kinds(
                "SELECT 'a''b;', E'x\\';', $$;$$, $f$ $$ ; $f$, \"q;\"\"\", $1",
                Dialect::Postgres
            ),
            vec![
                (Word, "SELECT"),
                (Str, "'a''b;'"),
                (Punct, ","),
                (Str, "E'x\\';'"),
                (Punct, ","),
                (Str, "$$;$$"),
                (Punct, ","),
                (Str, "$f$ $$ ; $f$"),
                (Punct, ","),
                (QuotedIdent, "\"q;\"\"\""),
                (Punct, ","),
                (Param, "$1"),
            ]
        );
        // standard strings keep backslashes literal
        assert_eq!(kinds("'a\\' x", Dialect::Postgres)[0], (Str, "'a\\'"));
        assert_eq!(
            kinds("/* a /* b */ c */ x", Dialect::Postgres)[0],
            (Comment, "/* a /* b */ c */")
        );
        assert_eq!(
            kinds("U&'d\\0061' u&\"x\"", Dialect::Postgres)[1],
            (QuotedIdent, "u&\"x\"")
        );
        assert_eq!(
            kinds("'open", Dialect::Postgres),
            vec![(Unterminated, "'open")]
        );
        assert_eq!(
            kinds("$q$ open", Dialect::Postgres),
            vec![(Unterminated, "$q$ open")]
        );
        assert_eq!(kinds("a$b", Dialect::Postgres), vec![(Word, "a$b")]);
    }

    #[test]
    fn mysql_quoting() {
        use Kind::*;
        assert_eq!(
            kinds(
                "SELECT 'a\\'b', \"c\"\"d\", `e``f`, _utf8mb4'g', ? # x",
                Dialect::MySql
            ),
            vec![
                (Word, "SELECT"),
                (Str, "'a\\'b'"),
                (Punct, ","),
                (Str, "\"c\"\"d\""),
                (Punct, ","),
                (QuotedIdent, "`e``f`"),
                (Punct, ","),
                (Str, "_utf8mb4'g'"),
                (Punct, ","),
                (Param, "?"),
                (Comment, "# x"),
            ]
        );
        assert_eq!(kinds("1--2", Dialect::MySql).len(), 4);
        assert_eq!(kinds("1 -- 2", Dialect::MySql)[1], (Comment, "-- 2"));
        assert_eq!(
            kinds("/*!50000 SELECT */ 1", Dialect::MySql),
            vec![
                (Comment, "/*!50000"),
                (Word, "SELECT"),
                (Comment, "*/"),
                (Number, "1")
            ]
        );
    }

    #[test]
    fn oracle_quoting() {
        use Kind::*;
        assert_eq!(
            kinds("q'[it's]' Q'!a'b!' N'x' \"Pw\"", Dialect::Oracle),
            vec![
                (Str, "q'[it's]'"),
                (Str, "Q'!a'b!'"),
                (Str, "N'x'"),
                (QuotedIdent, "\"Pw\"")
            ]
        );
    }

    #[test]
    fn splits_like_the_server() {
        assert_eq!(split("SELECT 1; SELECT 2;"), vec!["SELECT 1;", "SELECT 2;"]);
        assert_eq!(split("SELECT 1; SELECT 2 "), vec!["SELECT 1;", "SELECT 2"]);
        assert_eq!(split("SELECT ';'; -- c;\n ;; /* ; */"), vec!["SELECT ';';"]);
        assert!(split("  -- only a comment").is_empty());
        assert!(split("").is_empty());
        assert_eq!(
            split(
                "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END; SELECT f()"
            ),
            vec![
                "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END;",
                "SELECT f()"
            ]
        );
        assert_eq!(
            split("BEGIN; SELECT CASE WHEN true THEN 1 END; COMMIT"),
            vec!["BEGIN;", "SELECT CASE WHEN true THEN 1 END;", "COMMIT"]
        );
        assert_eq!(
            split("SELECT 'open; SELECT 2"),
            vec!["SELECT 'open; SELECT 2"]
        );
    }

    /// The shortcut of [`split_one`] gives what the lexer gives, on every
    /// text built from the bytes that matter to either.
    #[test]
    fn the_one_statement_shortcut_agrees_with_the_lexer() {
        let alphabet: &[&str] = &[
            " ", "\t", "\n", ";", "'", "\"", "$$", "$a$", "--", "/*", "*/", "(", ")", "begin",
            "end", "case", "x", "E'", "\\", "\u{a0}", "\u{3000}", "é", "-", "/",
        ];
        let mut rng = crate::testutil::Rng::new(0x9e37_79b9_7f4a_7c15);
        let mut shortcut = 0;
        for _ in 0..200_000 {
            let text = rng.text(alphabet, 9);
            if let Some(p) = split_one(&text) {
                shortcut += 1;
                assert_eq!(
                    p.into_iter().collect::<Vec<_>>(),
                    split_lexed(&text),
                    "{text:?}"
                );
            }
        }
        // the shortcut is taken often enough for the comparison to mean something
        assert!(shortcut > 20_000, "{shortcut}");
        for text in [
            "SELECT 1;",
            "  SELECT 1 ;  \n",
            "SELECT ';'",
            "x\u{a0}",
            "",
            "  ",
            "x -- ;",
        ] {
            assert_eq!(split_postgres(text), split_lexed(text), "{text:?}");
        }
    }

    #[test]
    fn never_panics_on_odd_text() {
        for text in [
            "$", "$$", "'", "E'\\", "/*", "/*!", "q'", "q'[", "U&", "-", "`", "\"", "é'x",
        ] {
            for d in [Dialect::Postgres, Dialect::MySql, Dialect::Oracle] {
                let total: usize = Lexer::new(text, d).map(|t| t.end - t.start).sum();
                assert_eq!(total, text.len(), "{text:?} {d:?}");
            }
            let _ = split_postgres(text);
        }
    }
}
