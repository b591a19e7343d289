//! Redaction of secrets in statements (SPEC "Statement audit", AUDIT.md
//! §5): every value that follows these words is shown as `'***'`:
//! - `PASSWORD` (and `MASTER_PASSWORD`, `SOURCE_PASSWORD`,
//!   `AUTHENTICATION_STRING`), after an optional `=` or `(`: `CREATE|ALTER
//!   ROLE|USER ... [ENCRYPTED] PASSWORD '...'`, user-mapping and server
//!   `OPTIONS (password '...')`, `CHANGE MASTER TO MASTER_PASSWORD='...'`,
//!   `UPDATE ... SET password = '...'`, `PASSWORD('...')`;
//! - `IDENTIFIED [WITH|VIA plugin] BY|AS|USING [VALUES|PASSWORD(] value`,
//!   quoted or not (Oracle's `IDENTIFIED BY pw`), then `REPLACE old` and
//!   MariaDB's `OR plugin USING ...`;
//! - `SET PASSWORD [FOR user] = value` (`= PASSWORD('...')` too);
//! - any string literal that is a connection string holding a password
//!   (`password=` in a libpq/ODBC DSN, `scheme://user:secret@host` URI),
//!   whole.
//!
//! A placeholder in such a place (`password = $1`, `= ?`) redacts the
//! parameter value; a parameter that is itself a connection string with a
//! password is redacted too. On doubt (a literal, identifier or comment
//! that does not end, a keyword with no readable value after it) the rest
//! of the statement is redacted. The tokenizer is [`super::sql`]'s,
//! which knows each dialect's quoting. Pure; never panics.

use super::sql::{Dialect, Kind, Lexer, Token};

/// What a redacted literal is shown as.
pub const MASK: &str = "'***'";

/// Keywords whose value (after `=` or `(`) is a password.
const PASSWORD_WORDS: &[&str] = &[
    "password",
    "master_password",
    "source_password",
    "authentication_string",
];

/// A statement after redaction.
#[derive(Debug, PartialEq, Eq)]
pub struct Redacted {
    pub text: String,
    /// 0-based indices of parameters whose value must be masked.
    pub params: Vec<usize>,
}

/// Where the secrets of one statement are.
#[derive(Default)]
struct Finds {
    ranges: Vec<(usize, usize)>,
    rest_from: Option<usize>,
    params: Vec<usize>,
}

struct Scan<'a> {
    text: &'a str,
    /// The tokens that are neither blanks nor comments.
    sig: Vec<Token>,
    dialect: Dialect,
    finds: Finds,
}

impl Scan<'_> {
    fn word(&self, i: usize) -> Option<&str> {
        let t = self.sig.get(i)?;
        (t.kind == Kind::Word).then(|| &self.text[t.start..t.end])
    }

    fn is_word(&self, i: usize, w: &str) -> bool {
        self.word(i).is_some_and(|x| x.eq_ignore_ascii_case(w))
    }

    fn is_punct(&self, i: usize, p: u8) -> bool {
        self.sig
            .get(i)
            .is_some_and(|t| t.kind == Kind::Punct && self.text.as_bytes()[t.start] == p)
    }

    /// Redact everything from token `i` on (the statement's end when
    /// there is no such token).
    fn rest(&mut self, i: usize) {
        let at = self.sig.get(i).map_or(self.text.len(), |t| t.start);
        self.finds.rest_from = Some(self.finds.rest_from.map_or(at, |r| r.min(at)));
    }

    /// Redact a placeholder's value.
    fn param(&mut self, i: usize) {
        let t = self.sig[i];
        let index = match self.dialect {
            Dialect::Postgres => self.text[t.start + 1..t.end]
                .parse::<usize>()
                .ok()
                .and_then(|n| n.checked_sub(1)),
            _ => Some(
                self.sig[..i]
                    .iter()
                    .filter(|t| t.kind == Kind::Param)
                    .count(),
            ),
        };
        match index {
            Some(n) => self.finds.params.push(n),
            None => self.rest(i),
        }
    }

    /// The value at token `i`: redact it. With `strict` anything but a
    /// value is a doubt; with `word_ok` an unquoted word is a value
    /// (Oracle's `IDENTIFIED BY tiger`). Returns the index after it.
    fn value(&mut self, i: usize, strict: bool, word_ok: bool) -> usize {
        let Some(t) = self.sig.get(i).copied() else {
            if strict {
                self.rest(i);
            }
            return i;
        };
        match t.kind {
            Kind::Str | Kind::QuotedIdent | Kind::Number => {
                self.finds.ranges.push((t.start, t.end))
            }
            Kind::Word if word_ok => self.finds.ranges.push((t.start, t.end)),
            Kind::Param => self.param(i),
            Kind::Unterminated => self.rest(i),
            _ if strict => self.rest(i),
            _ => return i,
        }
        i + 1
    }

    /// After a `PASSWORD` word at `i`: `[=] [PASSWORD] [(] value`.
    fn password(&mut self, i: usize) {
        let mut j = i + 1;
        while self.is_punct(j, b'=')
            || self.is_punct(j, b'(')
            || (self.is_word(j, "password") && self.is_punct(j + 1, b'('))
        {
            j += 1;
        }
        // `PASSWORD x` is a column or a clause, but `PASSWORD = x` and
        // `PASSWORD(x)` always take a value
        if !self.is_word(j, "null") {
            self.value(j, j > i + 1, false);
        }
    }

    fn is_auth_verb(&self, j: usize) -> bool {
        self.is_word(j, "by") || self.is_word(j, "as") || self.is_word(j, "using")
    }

    /// After `IDENTIFIED` at `i`: `[WITH|VIA plugin] [BY|AS|USING value]
    /// [REPLACE value] [OR plugin [USING value]]...`.
    fn identified(&mut self, i: usize) {
        let mut j = i + 1;
        // a plugin was just named: a value is optional
        let mut plugin = false;
        loop {
            if self.is_word(j, "with") || self.is_word(j, "via") {
                j += 2;
                plugin = true;
            }
            if self.is_word(j, "externally") || self.is_word(j, "globally") {
                return;
            }
            if !self.is_auth_verb(j) {
                if !plugin {
                    self.rest(j);
                }
                return;
            }
            j += 1;
            if self.is_word(j, "values") {
                j += 1;
            }
            if self.is_word(j, "password") && self.is_punct(j + 1, b'(') {
                j += 2;
            }
            j = self.value(j, true, true);
            while self.is_punct(j, b')') {
                j += 1;
            }
            if self.is_word(j, "replace") {
                j = self.value(j + 1, true, true);
            }
            if !self.is_word(j, "or") {
                return;
            }
            // MariaDB: `OR plugin USING ...`
            j += 2;
            plugin = true;
        }
    }
}

/// Whether `text` holds one of the words every secret found here comes
/// after (ASCII, any case): `password` (also in the other
/// [`PASSWORD_WORDS`] but one, and in a DSN's `password=`),
/// `authentication_string`, `identified`, a DSN's `pwd=`, a URI's `://`.
/// Without one, [`statement`] finds nothing and [`is_secret_param`] is
/// false. One pass over the bytes, no allocation: most statements hold no
/// secret, and the first two bytes tell which word to compare.
pub fn may_hold_secret(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    // eight positions at a time: the bytes at i.. and at i + 1.., each
    // with the 0x20 bit set, compared with the first two bytes of every
    // word at once; only a word of eight with a possible match is looked
    // at position by position
    while i + 9 <= b.len() {
        let word = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[at..at + 8]);
            u64::from_le_bytes(w) | LOWER
        };
        let (x, y) = (word(i), word(i + 1));
        let hit = FIRST_TWO.iter().fold(0, |h, &(c1, c2)| {
            h | zero_byte((x ^ splat(c1)) | (y ^ splat(c2)))
        });
        if hit != 0 && (i..i + 8).any(|j| secret_word_at(b, j)) {
            return true;
        }
        i += 8;
    }
    (i..b.len().saturating_sub(1)).any(|j| secret_word_at(b, j))
}

/// Every byte of a word with its 0x20 bit (ASCII lower case) set.
const LOWER: u64 = 0x2020_2020_2020_2020;

/// The first two bytes of the words [`secret_word_at`] looks for, with
/// their 0x20 bit set.
const FIRST_TWO: [(u8, u8); 5] = [
    (b'p', b'a'),
    (b'p', b'w'),
    (b'i', b'd'),
    (b'a', b'u'),
    (b':', b'/'),
];

fn splat(c: u8) -> u64 {
    u64::from(c) * 0x0101_0101_0101_0101
}

/// Non-zero when a byte of `v` is zero (it may flag bytes above a zero
/// one too: a hint to look, never a miss).
fn zero_byte(v: u64) -> u64 {
    v.wrapping_sub(0x0101_0101_0101_0101) & !v & 0x8080_8080_8080_8080
}

/// Whether one of the words of [`may_hold_secret`] starts at `i` (`i + 1`
/// is inside `b`).
fn secret_word_at(b: &[u8], i: usize) -> bool {
    let word: &[u8] = match (b[i] | 0x20, b[i + 1] | 0x20) {
        (b'p', b'a') => b"password",
        (b'p', b'w') => b"pwd",
        (b'i', b'd') => b"identified",
        (b'a', b'u') => b"authentication_string",
        // `:` and `/` have the 0x20 bit already
        (b':', b'/') => b"://",
        _ => return false,
    };
    b.len() - i >= word.len() && b[i..i + word.len()].eq_ignore_ascii_case(word)
}

/// Redact the secrets of one statement.
pub fn statement(text: &str, dialect: Dialect) -> Redacted {
    if !may_hold_secret(text) {
        return Redacted {
            text: text.to_string(),
            params: Vec::new(),
        };
    }
    let sig: Vec<Token> = Lexer::new(text, dialect)
        .filter(|t| !matches!(t.kind, Kind::Space | Kind::Comment))
        .collect();
    let mut s = Scan {
        text,
        sig,
        dialect,
        finds: Finds::default(),
    };
    for i in 0..s.sig.len() {
        let t = s.sig[i];
        match t.kind {
            Kind::Word => {
                let w = &text[t.start..t.end];
                if PASSWORD_WORDS.iter().any(|p| w.eq_ignore_ascii_case(p)) {
                    if w.eq_ignore_ascii_case("password") && i > 0 && s.is_word(i - 1, "set") {
                        set_password(&mut s, i);
                    } else {
                        s.password(i);
                    }
                } else if w.eq_ignore_ascii_case("identified") {
                    s.identified(i);
                }
            }
            Kind::Str if is_secret_dsn(&text[t.start..t.end]) => {
                s.finds.ranges.push((t.start, t.end))
            }
            Kind::Unterminated if has_trigger(&text[t.start..]) => s.rest(i),
            _ => {}
        }
    }
    let Finds {
        mut ranges,
        rest_from,
        mut params,
    } = s.finds;
    ranges.sort_unstable();
    params.sort_unstable();
    params.dedup();
    if ranges.is_empty() && rest_from.is_none() {
        return Redacted {
            text: text.to_string(),
            params,
        };
    }
    let limit = rest_from.unwrap_or(text.len());
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in ranges {
        if start >= limit {
            break;
        }
        if start < at {
            at = at.max(end);
            continue;
        }
        out.push_str(&text[at..start]);
        out.push_str(MASK);
        at = end;
    }
    if at < limit {
        out.push_str(&text[at..limit]);
    }
    if rest_from.is_some() {
        out.push_str(MASK);
    }
    Redacted { text: out, params }
}

/// `SET PASSWORD [FOR user] = value [REPLACE old]`, `PASSWORD` at `i`.
fn set_password(s: &mut Scan<'_>, i: usize) {
    let Some(eq) = (i + 1..s.sig.len()).find(|&j| s.is_punct(j, b'=')) else {
        return s.password(i);
    };
    let mut j = eq + 1;
    if s.is_word(j, "password") && s.is_punct(j + 1, b'(') {
        j += 2;
    }
    j = s.value(j, true, false);
    while s.is_punct(j, b')') {
        j += 1;
    }
    if s.is_word(j, "replace") {
        s.value(j + 1, true, false);
    }
}

/// A parameter value that must not be shown.
pub fn is_secret_param(value: &str) -> bool {
    may_hold_secret(value) && (is_dsn_password(value) || is_uri_password(value))
}

/// A string literal (quotes included) that is a connection string
/// holding a password.
fn is_secret_dsn(literal: &str) -> bool {
    is_dsn_password(literal) || is_uri_password(literal)
}

/// `password=` (any case, blanks around `=`), as in libpq and ODBC DSNs.
fn is_dsn_password(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    let mut from = 0;
    while let Some(p) = lower[from..].find("password") {
        let after = &lower[from + p + "password".len()..];
        if after.trim_start().starts_with('=') {
            return true;
        }
        from += p + 1;
    }
    lower.contains("pwd=")
}

/// `scheme://user:secret@host`.
fn is_uri_password(s: &str) -> bool {
    let Some(p) = s.find("://") else { return false };
    let authority = s[p + 3..]
        .split(['/', '?', '#', ' ', '\''])
        .next()
        .unwrap_or("");
    match authority.rfind('@') {
        Some(at) => authority[..at].contains(':'),
        None => false,
    }
}

/// Text after an unterminated token that may hide a secret.
fn has_trigger(rest: &str) -> bool {
    let lower = rest.to_ascii_lowercase();
    ["password", "identified", "pwd", "://"]
        .iter()
        .any(|w| lower.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The eight-at-a-time scan finds every word the byte-by-byte one
    /// finds, at every offset from a word boundary, in any case.
    #[test]
    fn the_wide_scan_agrees_with_the_byte_scan() {
        let by_byte =
            |t: &str| (0..t.len().saturating_sub(1)).any(|j| secret_word_at(t.as_bytes(), j));
        let pieces = [
            "password",
            "PassWord",
            "pwd",
            "PWD",
            "identified",
            "authentication_string",
            "://",
            "pa",
            "pw",
            "id",
            "au",
            ":",
            "/",
            "p",
            "a",
            "i",
            "x",
            " ",
            "é",
            "\u{0}",
            "@",
            "P\u{10}",
        ];
        let mut rng = crate::testutil::Rng::new(0x2545_f491_4f6c_dd1d);
        let mut found = 0;
        for _ in 0..100_000 {
            let text = rng.text(&pieces, 12);
            let want = by_byte(&text);
            found += usize::from(want);
            assert_eq!(may_hold_secret(&text), want, "{text:?}");
        }
        assert!(found > 10_000, "{found}");
        for pad in 0..20 {
            for w in [
                "password",
                "pwd",
                "identified",
                "authentication_string",
                "://",
            ] {
                let text = format!("{}{w}{}", "x".repeat(pad), "y".repeat(pad % 3));
                assert!(may_hold_secret(&text), "{text:?}");
                assert!(
                    !may_hold_secret(&text[..text.len() - 1 - pad % 3]),
                    "{text:?}"
                );
            }
        }
    }

    fn pg(s: &str) -> String {
        statement(s, Dialect::Postgres).text
    }
    fn my(s: &str) -> String {
        statement(s, Dialect::MySql).text
    }
    fn ora(s: &str) -> String {
        statement(s, Dialect::Oracle).text
    }

    #[test]
    fn postgres_role_passwords() {
        assert_eq!(
            pg("CREATE ROLE a LOGIN PASSWORD 'x''y'"),
            "CREATE ROLE a LOGIN PASSWORD '***'"
        );
        assert_eq!(
            pg(
                "alter user a with encrypted password 'SCRAM-SHA-256$4096:abc' valid until '2030-01-01'"
            ),
            "alter user a with encrypted password '***' valid until '2030-01-01'"
        );
        assert_eq!(
            pg("ALTER ROLE a PASSWORD E'a\\'b;c'; SELECT 1"),
            "ALTER ROLE a PASSWORD '***'; SELECT 1"
        );
        assert_eq!(
            pg("CREATE USER a PASSWORD $pw$ s'e;c $pw$"),
            "CREATE USER a PASSWORD '***'"
        );
        assert_eq!(
            pg("ALTER ROLE a PASSWORD NULL"),
            "ALTER ROLE a PASSWORD NULL"
        );
        assert_eq!(
            pg("CREATE ROLE a /* c */ PASSWORD -- x\n 'pw'"),
            "CREATE ROLE a /* c */ PASSWORD -- x\n '***'"
        );
    }

    #[test]
    fn postgres_options_and_dsns() {
        assert_eq!(
            pg("CREATE USER MAPPING FOR bob SERVER s OPTIONS (user 'bob', password 'pw')"),
            "CREATE USER MAPPING FOR bob SERVER s OPTIONS (user 'bob', password '***')"
        );
        assert_eq!(
            pg("SELECT dblink_connect('c', 'host=h dbname=d user=u password = pw')"),
            "SELECT dblink_connect('c', '***')"
        );
        assert_eq!(
            pg("CREATE SUBSCRIPTION s CONNECTION 'host=h PassWord=pw' PUBLICATION p"),
            "CREATE SUBSCRIPTION s CONNECTION '***' PUBLICATION p"
        );
        assert_eq!(
            pg("ALTER SYSTEM SET primary_conninfo = 'postgresql://rep:pw@h:5432/db'"),
            "ALTER SYSTEM SET primary_conninfo = '***'"
        );
        assert_eq!(
            pg("SELECT 'see https://example.org/a@b'"),
            "SELECT 'see https://example.org/a@b'"
        );
        // a password column is no secret by itself, its values are
        assert_eq!(
            pg("SELECT password FROM users"),
            "SELECT password FROM users"
        );
        assert_eq!(
            pg("UPDATE users SET password = 'x' WHERE id = 1"),
            "UPDATE users SET password = '***' WHERE id = 1"
        );
    }

    #[test]
    fn parameters_in_secret_places() {
        let r = statement(
            "UPDATE users SET password = $2 WHERE id = $1",
            Dialect::Postgres,
        );
        assert_eq!(r.params, vec![1]);
        let r = statement(
            "UPDATE u SET a = ?, password = ? WHERE id = ?",
            Dialect::MySql,
        );
        assert_eq!(r.params, vec![1]);
        assert_eq!(r.text, "UPDATE u SET a = ?, password = ? WHERE id = ?");
        assert!(is_secret_param("host=h password=pw"));
        assert!(is_secret_param("postgres://u:pw@h/db"));
        assert!(!is_secret_param("postgres://u@h/db"));
        assert!(!is_secret_param("hello"));
    }

    #[test]
    fn mysql_identified() {
        assert_eq!(
            my("CREATE USER 'u'@'%' IDENTIFIED BY 'p\\'w'"),
            "CREATE USER 'u'@'%' IDENTIFIED BY '***'"
        );
        assert_eq!(
            my("ALTER USER u IDENTIFIED WITH caching_sha2_password BY \"pw\" REPLACE 'old'"),
            "ALTER USER u IDENTIFIED WITH caching_sha2_password BY '***' REPLACE '***'"
        );
        assert_eq!(
            my(
                "CREATE USER u IDENTIFIED WITH mysql_native_password AS '*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19'"
            ),
            "CREATE USER u IDENTIFIED WITH mysql_native_password AS '***'"
        );
        assert_eq!(
            my("CREATE USER u IDENTIFIED VIA ed25519 USING PASSWORD('pw') OR unix_socket"),
            "CREATE USER u IDENTIFIED VIA ed25519 USING PASSWORD('***') OR unix_socket"
        );
        assert_eq!(
            my("CREATE USER u IDENTIFIED WITH auth_socket"),
            "CREATE USER u IDENTIFIED WITH auth_socket"
        );
        assert_eq!(
            my("GRANT ALL ON *.* TO u IDENTIFIED BY 'pw'"),
            "GRANT ALL ON *.* TO u IDENTIFIED BY '***'"
        );
        assert_eq!(
            my("CREATE USER u IDENTIFIED BY _utf8mb4'pw'"),
            "CREATE USER u IDENTIFIED BY '***'"
        );
    }

    #[test]
    fn mysql_set_password_and_replication() {
        assert_eq!(
            my("SET PASSWORD FOR 'u'@'h' = PASSWORD('pw')"),
            "SET PASSWORD FOR 'u'@'h' = PASSWORD('***')"
        );
        assert_eq!(my("SET PASSWORD = 'pw'"), "SET PASSWORD = '***'");
        assert_eq!(
            my("set password for u = 'pw' replace 'old'"),
            "set password for u = '***' replace '***'"
        );
        assert_eq!(
            my("CHANGE MASTER TO MASTER_HOST='h', MASTER_PASSWORD='pw', MASTER_PORT=3306"),
            "CHANGE MASTER TO MASTER_HOST='h', MASTER_PASSWORD='***', MASTER_PORT=3306"
        );
        assert_eq!(
            my("CHANGE REPLICATION SOURCE TO SOURCE_PASSWORD = 'pw'"),
            "CHANGE REPLICATION SOURCE TO SOURCE_PASSWORD = '***'"
        );
        assert_eq!(
            my("UPDATE mysql.user SET authentication_string = PASSWORD('pw') WHERE user = 'u'"),
            "UPDATE mysql.user SET authentication_string = PASSWORD('***') WHERE user = 'u'"
        );
        assert_eq!(
            my("CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (USER 'u', PASSWORD 'pw')"),
            "CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (USER 'u', PASSWORD '***')"
        );
        assert_eq!(
            my("/*!80000 CREATE USER u IDENTIFIED BY 'pw' */"),
            "/*!80000 CREATE USER u IDENTIFIED BY '***' */"
        );
    }

    #[test]
    fn oracle_identified() {
        assert_eq!(
            ora("CREATE USER scott IDENTIFIED BY tiger"),
            "CREATE USER scott IDENTIFIED BY '***'"
        );
        assert_eq!(
            ora("ALTER USER scott IDENTIFIED BY \"N3w!\" REPLACE old"),
            "ALTER USER scott IDENTIFIED BY '***' REPLACE '***'"
        );
        assert_eq!(
            ora("ALTER USER s IDENTIFIED BY VALUES 'S:ABC;T:DEF'"),
            "ALTER USER s IDENTIFIED BY VALUES '***'"
        );
        assert_eq!(
            ora("CREATE DATABASE LINK l CONNECT TO u IDENTIFIED BY pw USING 'tns'"),
            "CREATE DATABASE LINK l CONNECT TO u IDENTIFIED BY '***' USING 'tns'"
        );
        assert_eq!(
            ora("CREATE USER u IDENTIFIED EXTERNALLY"),
            "CREATE USER u IDENTIFIED EXTERNALLY"
        );
    }

    #[test]
    fn doubt_redacts_the_rest() {
        assert_eq!(
            pg("CREATE ROLE a PASSWORD 'unterminated; SELECT 1"),
            "CREATE ROLE a PASSWORD '***'"
        );
        assert_eq!(
            my("CREATE USER u IDENTIFIED BY 'pw\\' OR 1"),
            "CREATE USER u IDENTIFIED BY '***'"
        );
        assert_eq!(
            my("CREATE USER u IDENTIFIED BY"),
            "CREATE USER u IDENTIFIED BY'***'"
        );
        assert_eq!(
            my("CREATE USER u IDENTIFIED BY (x)"),
            "CREATE USER u IDENTIFIED BY '***'"
        );
        assert_eq!(
            my("CREATE USER u IDENTIFIED something 'pw'"),
            "CREATE USER u IDENTIFIED '***'"
        );
        assert_eq!(
            pg("SELECT dblink_connect('password=pw"),
            "SELECT dblink_connect('***'"
        );
        assert_eq!(
            pg("ALTER ROLE a PASSWORD = (SELECT 1)"),
            "ALTER ROLE a PASSWORD = ('***'"
        );
        // an unterminated literal without a secret word is left alone
        assert_eq!(pg("SELECT 'abc"), "SELECT 'abc");
    }

    #[test]
    fn nothing_to_redact_is_unchanged() {
        for s in [
            "SELECT 1",
            "INSERT INTO t VALUES ('password')",
            "",
            "SELECT \"password\" FROM t",
        ] {
            assert_eq!(pg(s), s);
            assert_eq!(my(s), s);
        }
    }
}
