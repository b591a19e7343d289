//! Statement audit: what a database client asked and what the server
//! answered, one [`Record`] per statement. Pure: bytes and times in,
//! records out; no I/O, no clock, no `unsafe`. Fed chunk by chunk per
//! direction, exactly like the identity sniffer; each protocol module
//! frames its directions as continuous message streams (a message may span
//! chunks, a chunk may hold many) and pairs requests with replies.
//!
//! Protocol modules (`postgres`, `mysql`, `tns`) implement [`Protocol`];
//! [`Auditor`] picks one from the first client bytes and guards the
//! per-connection memory cap. Front ends: `ipprotcat --statements` (from
//! recordings) and `ipprotd --statement-log` (live, in the child).

pub mod mysql;
pub mod postgres;
pub mod redact;
pub mod sql;
pub mod tns;

/// Direction of a chunk, as in the data log.
pub use crate::record::block::Dir;

use crate::log::timefmt::LocalTime;
use std::fmt::Write as _;
use std::rc::Rc;

/// Most bytes of unframed input (partial messages, reassembly buffers)
/// one connection may hold per direction; past it the stream is `lost`.
pub const MAX_PENDING_BYTES: usize = 16 * 1024 * 1024;

/// Most requests awaiting a reply (pipelining) before the stream is `lost`.
pub const MAX_IN_FLIGHT: usize = 4096;

/// Every `kind` a record can have, per protocol (SPEC "Statement audit";
/// ipprotd(8) documents each, which `tests/it/docs.rs` checks).
pub const KINDS: &[(&str, &[&str])] = &[
    (
        postgres::PROTO,
        &[
            "connect",
            "query",
            "prepare",
            "execute",
            "copy",
            "call",
            "cancel",
            "sync",
            "error",
            "undecodable",
            "lost",
        ],
    ),
    (
        mysql::PROTO,
        &[
            "connect",
            "query",
            "init_db",
            "prepare",
            "execute",
            "change_user",
            "undecodable",
            "lost",
        ],
    ),
    (
        tns::PROTO,
        &[
            "connect",
            "query",
            "execute",
            "commit",
            "rollback",
            "undecodable",
            "lost",
        ],
    ),
    // TLS from the first byte, protocol unknown
    ("tls", &["undecodable"]),
];

/// Whether `kind` is one of [`KINDS`] for `proto`.
pub fn known_kind(proto: &str, kind: &str) -> bool {
    KINDS
        .iter()
        .any(|(p, kinds)| *p == proto && kinds.contains(&kind))
}

/// Parameter values of one request, `None` for an SQL NULL.
pub type Params = Vec<Option<String>>;

/// Answer of the server to one statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Error,
    /// No reply seen (only the client's direction recorded, or the
    /// connection ended first).
    Unknown,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Unknown => "unknown",
        }
    }
}

/// One statement and its answer (SPEC "Statement audit", JSON keys). The
/// connection-level keys (`conn`, `client_ip`, `client_port`) are added
/// by the front end; `user`, `service`, `program` and `server_session`
/// come from the stream itself (startup, `USE db`, COM_CHANGE_USER).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// `postgres`, `mysql` or `tns`.
    pub proto: &'static str,
    /// When the request was read: epoch microseconds of its first chunk.
    pub time_us: i64,
    /// Shared with the decoder (one copy per connection, not per record).
    pub user: Option<Rc<str>>,
    pub service: Option<Rc<str>>,
    pub program: Option<Rc<str>>,
    /// PostgreSQL backend pid, MySQL connection id, Oracle session id.
    pub server_session: Option<u64>,
    /// `query`, `prepare`, `execute`, `copy`, `call`, `init_db`,
    /// `change_user`, `lost`, `undecodable`, ...
    pub kind: &'static str,
    /// The statement text, already redacted unless `--no-redact`.
    pub statement: Option<Rc<str>>,
    /// Parameter values as the client sent them (binary ones as hex),
    /// `None` for an SQL NULL.
    pub params: Option<Params>,
    pub status: Outcome,
    /// PostgreSQL CommandComplete tag (`SELECT 3`), MySQL `OK`/`EOF`.
    pub tag: Option<String>,
    /// Rows returned or affected.
    pub rows: Option<u64>,
    /// SQLSTATE or error number, a space, the message.
    pub error: Option<String>,
    /// Request read to reply complete.
    pub duration_us: Option<i64>,
    /// false for best-effort decoders (Oracle TNS) and for `lost`.
    pub exact: bool,
}

/// One protocol's decoder, fed both directions of one connection in the
/// order the relay read them. `feed` appends the records completed by
/// this chunk to `out`; `finish` (connection closed) flushes requests
/// still waiting, with status `unknown`. Neither may panic on any input
/// nor hold more than [`MAX_PENDING_BYTES`] per direction.
pub trait Protocol {
    fn feed(&mut self, dir: Dir, time_us: i64, data: &[u8], out: &mut Vec<Record>);
    fn finish(&mut self, out: &mut Vec<Record>);
    /// Only the client's direction will be fed from now on (a recording
    /// made with `-l`): emit requests without waiting for answers, status
    /// `unknown`, starting with those already waiting. A decoder that
    /// tells this from the stream itself may ignore it.
    fn one_sided(&mut self, out: &mut Vec<Record>) {
        let _ = out;
    }
}

/// Most bytes looked at before the protocol is known (a whole TLS
/// ClientHello fits); a connection that has not said what it is by then
/// is not audited.
const DETECT_BYTES: usize = 4096;
/// TLS record header: type, version, length (bytes).
const TLS_RECORD_HEADER: usize = 5;
/// Bytes that tell PostgreSQL and TNS apart: a startup packet's length and
/// code, a TNS packet header.
const DETECT_MIN: usize = 8;
/// TNS packet type of CONNECT.
const TNS_CONNECT: u8 = 1;
/// MySQL HandshakeV10 protocol version byte.
const MYSQL_PROTOCOL_10: u8 = 10;
/// Fixed part of a MySQL HandshakeResponse41 (caps, max packet, charset,
/// filler, a NUL user name) and the most a client sends (bytes).
const MYSQL_RESPONSE_MIN: usize = 33;
const MYSQL_RESPONSE_MAX: usize = 0x1_0000;
/// First byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;
/// ALPN protocol name of PostgreSQL direct TLS, as it appears in a
/// ClientHello (length byte included).
const ALPN_POSTGRES: &[u8] = b"\x0apostgresql";

/// The protocol a connection speaks, from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Detected {
    Postgres,
    MySql,
    Tns,
    /// TLS from the first byte: `postgres` (ALPN `postgresql`) or `tls`.
    Tls(&'static str),
    Other,
}

/// What the first bytes say, `None` while too few were seen.
fn detect(first: Dir, data: &[u8], end: bool) -> Option<Detected> {
    match first {
        Dir::ToClient => {
            // MySQL speaks first: `int<3> len, seq 0, protocol 10`
            if data.len() < 5 {
                return if end { Some(Detected::Other) } else { None };
            }
            let mysql = data[3] == 0 && data[4] == MYSQL_PROTOCOL_10;
            Some(if mysql {
                Detected::MySql
            } else {
                Detected::Other
            })
        }
        Dir::FromClient => {
            if data.first() == Some(&TLS_HANDSHAKE) {
                // the whole ClientHello record, for its ALPN
                let record = data
                    .get(3..5)
                    .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])));
                let whole = record.is_some_and(|l| data.len() >= TLS_RECORD_HEADER + l);
                if !whole && !end {
                    return None;
                }
                // only the first record, and only as much as any cut of
                // the stream into chunks shows: the same answer every time
                let upto = record
                    .map_or(data.len(), |l| TLS_RECORD_HEADER + l)
                    .min(data.len())
                    .min(DETECT_BYTES);
                let pg = sql::find(&data[..upto], ALPN_POSTGRES).is_some();
                return Some(Detected::Tls(if pg { postgres::PROTO } else { "tls" }));
            }
            match postgres::Postgres::detect(data) {
                Some(true) => return Some(Detected::Postgres),
                None if !end => return None,
                _ => {}
            }
            if data.len() < DETECT_MIN {
                return if end { Some(Detected::Other) } else { None };
            }
            // TNS: `len u16 BE, checksum 0, type CONNECT`
            let tns_len = usize::from(u16::from_be_bytes([data[0], data[1]]));
            if data[2] == 0 && data[3] == 0 && data[4] == TNS_CONNECT && tns_len >= DETECT_MIN {
                return Some(Detected::Tns);
            }
            // MySQL with the greeting unrecorded (`-l`): the client's
            // HandshakeResponse, `int<3> len, seq 1`, at least its fixed part
            let my_len =
                usize::from(data[0]) | usize::from(data[1]) << 8 | usize::from(data[2]) << 16;
            if data[3] == 1 && (MYSQL_RESPONSE_MIN..=MYSQL_RESPONSE_MAX).contains(&my_len) {
                return Some(Detected::MySql);
            }
            Some(Detected::Other)
        }
    }
}

/// A decoder for `d`; `None` for protocols not audited.
fn decoder(d: Detected) -> Option<Box<dyn Protocol>> {
    match d {
        Detected::Postgres => Some(Box::new(postgres::Postgres::new())),
        Detected::MySql => Some(Box::new(mysql::MySql::new())),
        Detected::Tns => Some(Box::new(tns::Tns::new())),
        Detected::Tls(_) | Detected::Other => None,
    }
}

enum State {
    /// Protocol not known yet: the chunks seen so far.
    Detecting(Vec<(Dir, i64, Vec<u8>)>),
    Active(Box<dyn Protocol>),
    Off,
}

/// The statement audit of one connection: picks the protocol from the
/// first bytes, feeds its decoder, redacts the records (unless told not
/// to). Used alike by `ipprotcat --statements` and the live child.
pub struct Auditor {
    redact: bool,
    state: State,
    one_sided: bool,
}

impl Auditor {
    pub fn new(redact: bool) -> Auditor {
        Auditor {
            redact,
            state: State::Detecting(Vec::new()),
            one_sided: false,
        }
    }

    /// Feed one chunk relayed in `dir` at `time_us`; completed records
    /// are appended to `out`.
    pub fn feed(&mut self, dir: Dir, time_us: i64, data: &[u8], out: &mut Vec<Record>) {
        if data.is_empty() {
            return;
        }
        let start = out.len();
        match &mut self.state {
            State::Active(p) => p.feed(dir, time_us, data, out),
            State::Off => {}
            State::Detecting(seen) => {
                seen.push((dir, time_us, data.to_vec()));
                self.detect(false, out);
            }
        }
        self.post(start, out);
    }

    /// From now on only the client's direction comes (see
    /// [`Protocol::one_sided`]).
    pub fn one_sided(&mut self, out: &mut Vec<Record>) {
        if self.one_sided {
            return;
        }
        self.one_sided = true;
        let start = out.len();
        if let State::Active(p) = &mut self.state {
            p.one_sided(out);
        }
        self.post(start, out);
    }

    /// The connection ended: flush what waits.
    pub fn finish(&mut self, out: &mut Vec<Record>) {
        let start = out.len();
        if matches!(self.state, State::Detecting(_)) {
            self.detect(true, out);
        }
        if let State::Active(p) = &mut self.state {
            p.finish(out);
        }
        self.state = State::Off;
        self.post(start, out);
    }

    fn detect(&mut self, end: bool, out: &mut Vec<Record>) {
        let State::Detecting(seen) = &mut self.state else {
            return;
        };
        let Some(&(first, time_us, _)) = seen.first() else {
            if end {
                self.state = State::Off;
            }
            return;
        };
        let mut head = Vec::new();
        for (d, _, b) in seen.iter() {
            if *d == first {
                head.extend_from_slice(b);
            }
        }
        let too_long = head.len() >= DETECT_BYTES;
        let found = match detect(first, &head, end || too_long) {
            Some(d) => d,
            None => return,
        };
        let seen = std::mem::take(seen);
        self.state = State::Off;
        if let Detected::Tls(proto) = found {
            let mut r = Record::new(proto, "undecodable", time_us);
            r.error = Some("TLS from the first byte".to_string());
            r.exact = false;
            out.push(r);
            return;
        }
        let Some(mut p) = decoder(found) else { return };
        if self.one_sided {
            p.one_sided(out);
        }
        for (d, t, b) in &seen {
            p.feed(*d, *t, b, out);
        }
        self.state = State::Active(p);
    }

    /// Redact the records from `start` on.
    fn post(&self, start: usize, out: &mut [Record]) {
        // every test and fuzz run checks that no record has a kind the
        // manual does not list
        debug_assert!(
            out.iter().skip(start).all(|r| known_kind(r.proto, r.kind)),
            "a record kind missing from audit::KINDS"
        );
        if !self.redact {
            return;
        }
        for r in out.iter_mut().skip(start) {
            redact_record(r);
        }
    }
}

/// The SQL dialect of a record's protocol.
fn dialect(proto: &str) -> sql::Dialect {
    match proto {
        "mysql" => sql::Dialect::MySql,
        "tns" => sql::Dialect::Oracle,
        _ => sql::Dialect::Postgres,
    }
}

/// Mask the password literals of a record's statement and its secret
/// parameters.
pub fn redact_record(r: &mut Record) {
    let mut secret_params = Vec::new();
    if let Some(text) = r.statement.as_ref().filter(|t| redact::may_hold_secret(t)) {
        let red = redact::statement(text, dialect(r.proto));
        secret_params = red.params;
        r.statement = Some(red.text.into());
    }
    if let Some(params) = &mut r.params {
        for (i, v) in params.iter_mut().enumerate() {
            let secret = match v {
                Some(text) => secret_params.contains(&i) || redact::is_secret_param(text),
                // a NULL hides nothing
                None => false,
            };
            if secret {
                *v = Some("***".to_string());
            }
        }
    }
}

impl Record {
    /// A record of `kind` with nothing known but the time.
    pub fn new(proto: &'static str, kind: &'static str, time_us: i64) -> Record {
        Record {
            proto,
            time_us,
            user: None,
            service: None,
            program: None,
            server_session: None,
            kind,
            statement: None,
            params: None,
            status: Outcome::Unknown,
            tag: None,
            rows: None,
            error: None,
            duration_us: None,
            exact: true,
        }
    }
}

/// The connection a record belongs to, as the front end knows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Conn {
    /// Sequence number (from the data log name for recordings).
    pub conn: Option<u64>,
    pub client_ip: Option<String>,
    pub client_port: Option<u16>,
}

/// Microseconds per second.
const US_PER_SEC: i64 = 1_000_000;
/// Length of `+hh:mm` at the end of [`LocalTime::push_seconds`].
const OFFSET_TEXT_LEN: usize = 6;
/// Length of `HH:MM:SS` before the offset, and the separator before it.
const TIME_TEXT_LEN: usize = 8;

/// The times of records as text. Records come in time order, many per
/// second: the local offset and the date and time to the second are
/// computed once per epoch second, only the microseconds per record.
pub struct TimeText<'a> {
    tz: &'a dyn Fn(i64) -> i32,
    /// The epoch second `text` is for.
    sec: Option<i64>,
    /// `yyyy-mm-ddTHH:MM:SS+hh:mm` of `sec`.
    text: String,
}

impl<'a> TimeText<'a> {
    /// `tz` gives the local UTC offset (seconds east) at an epoch second.
    pub fn new(tz: &'a dyn Fn(i64) -> i32) -> TimeText<'a> {
        TimeText {
            tz,
            sec: None,
            text: String::new(),
        }
    }

    /// Append `yyyy-mm-dd?HH:MM:SS.uuuuuu+hh:mm`, `sep` between date and
    /// time (`T` for RFC 3339).
    pub fn push(&mut self, out: &mut String, us: i64, sep: char) {
        let sec = us.div_euclid(US_PER_SEC);
        if self.sec != Some(sec) {
            self.text.clear();
            LocalTime {
                epoch_us: us,
                offset: (self.tz)(sec),
            }
            .push_seconds(&mut self.text, 'T');
            self.sec = Some(sec);
        }
        let t = self.text.as_str();
        let (head, offset) = t.split_at(t.len() - OFFSET_TEXT_LEN);
        let (date, time) = head.split_at(head.len() - TIME_TEXT_LEN - 1);
        out.push_str(date);
        out.push(sep);
        out.push_str(&time[1..]);
        out.push('.');
        push_digits(out, us.rem_euclid(US_PER_SEC) as u32, 6);
        out.push_str(offset);
    }
}

/// `v` as exactly `n` decimal digits (the lowest ones), zero-padded.
fn push_digits(out: &mut String, v: u32, n: usize) {
    let n = n.min(10);
    let v = u64::from(v) % 10u64.pow(n as u32);
    let mut b = itoa::Buffer::new();
    let digits = b.format(v);
    for _ in digits.len()..n {
        out.push('0');
    }
    out.push_str(digits);
}

/// A number in decimal (itoa: two digits per step from a table).
fn push_u64(out: &mut String, v: u64) {
    out.push_str(itoa::Buffer::new().format(v));
}

fn push_i64(out: &mut String, v: i64) {
    if v < 0 {
        out.push('-');
    }
    push_u64(out, v.unsigned_abs());
}

/// A JSON string: the check for bytes to escape in one branch-free pass
/// (the compiler vectorises it), the escaping itself in
/// [`crate::log::template::json_str`].
fn json_text(out: &mut String, s: &str) {
    if json_escape_needed(s.as_bytes()) {
        crate::log::template::json_str(out, s);
    } else {
        out.push('"');
        out.push_str(s);
        out.push('"');
    }
}

/// Whether `b` holds a byte a JSON string must escape: sixteen bytes at a
/// time without a branch (the compiler vectorises it), the rest from a
/// table — most strings here are short, and a vector loop's byte-by-byte
/// tail was what took the time.
fn json_escape_needed(b: &[u8]) -> bool {
    let flag = |b: u8| {
        u8::from(b < 0x20) | u8::from(b == b'"') | u8::from(b == b'\\') | u8::from(b == 0x7f)
    };
    let mut chunks = b.chunks_exact(16);
    let mut e = 0u8;
    for c in &mut chunks {
        e |= c.iter().fold(0u8, |e, &b| e | flag(b));
    }
    e != 0
        || chunks
            .remainder()
            .iter()
            .any(|&b| JSON_ESCAPE[usize::from(b)])
}

/// The bytes [`json_escape_needed`] looks for, as a table.
static JSON_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = i < 0x20 || i == b'"' as usize || i == b'\\' as usize || i == 0x7f;
        i += 1;
    }
    t
};

fn json_opt_str(out: &mut String, v: Option<&str>) {
    match v {
        Some(s) => json_text(out, s),
        None => out.push_str("null"),
    }
}

fn json_opt_u64(out: &mut String, v: Option<u64>) {
    match v {
        Some(n) => push_u64(out, n),
        None => out.push_str("null"),
    }
}

/// One record as one JSON object and a newline; keys in SPEC order.
/// `tz` gives the local UTC offset (seconds east) at an epoch second.
pub fn json_line(r: &Record, c: &Conn, tz: &dyn Fn(i64) -> i32) -> String {
    let mut o = String::with_capacity(256 + r.statement.as_ref().map_or(0, |s| s.len()));
    push_json(&mut o, r, c, &mut TimeText::new(tz));
    o
}

/// [`json_line`], appended to `o`, times from `t`.
pub fn push_json(o: &mut String, r: &Record, c: &Conn, t: &mut TimeText<'_>) {
    o.push_str("{\"time\":\"");
    t.push(o, r.time_us, 'T');
    o.push_str("\",\"time_us\":");
    push_i64(o, r.time_us);
    o.push_str(",\"conn\":");
    json_opt_u64(o, c.conn);
    o.push_str(",\"client_ip\":");
    json_opt_str(o, c.client_ip.as_deref());
    o.push_str(",\"client_port\":");
    json_opt_u64(o, c.client_port.map(u64::from));
    // proto and kind are names of ours: nothing to escape
    o.push_str(",\"proto\":\"");
    o.push_str(r.proto);
    o.push_str("\",\"user\":");
    json_opt_str(o, r.user.as_deref());
    o.push_str(",\"service\":");
    json_opt_str(o, r.service.as_deref());
    o.push_str(",\"program\":");
    json_opt_str(o, r.program.as_deref());
    o.push_str(",\"server_session\":");
    json_opt_u64(o, r.server_session);
    o.push_str(",\"kind\":\"");
    o.push_str(r.kind);
    o.push_str("\",\"statement\":");
    json_opt_str(o, r.statement.as_deref());
    o.push_str(",\"params\":");
    match &r.params {
        Some(ps) => {
            o.push('[');
            for (i, p) in ps.iter().enumerate() {
                if i > 0 {
                    o.push(',');
                }
                json_opt_str(o, p.as_deref());
            }
            o.push(']');
        }
        None => o.push_str("null"),
    }
    o.push_str(",\"status\":\"");
    o.push_str(r.status.as_str());
    o.push_str("\",\"tag\":");
    json_opt_str(o, r.tag.as_deref());
    o.push_str(",\"rows\":");
    json_opt_u64(o, r.rows);
    o.push_str(",\"error\":");
    json_opt_str(o, r.error.as_deref());
    o.push_str(",\"duration_us\":");
    match r.duration_us {
        Some(d) => push_i64(o, d),
        None => o.push_str("null"),
    }
    o.push_str(if r.exact {
        ",\"exact\":true}\n"
    } else {
        ",\"exact\":false}\n"
    });
}

/// Append `s` on one line: `\n`, `\r`, `\t`, `\\` and `\xNN` for the
/// other control characters.
fn one_line(out: &mut String, s: &str) {
    // the usual statement has nothing to escape: copy it whole
    // one branch-free pass the compiler vectorises, as in json_text
    let escape = s.bytes().fold(0u8, |e, b| {
        e | u8::from(b < 0x20) | u8::from(b == b'\\') | u8::from(b >= 0x7f)
    }) != 0;
    if !escape {
        out.push_str(s);
        return;
    }
    for ch in s.chars() {
        match ch {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// `v` with every control character and `|` as `?` (as
/// [`crate::log::template::sanitise`]), or `-` when unknown.
fn push_field(out: &mut String, v: Option<&str>) {
    match v {
        None => out.push('-'),
        Some(s)
            if s.bytes().fold(0u8, |e, b| {
                e | u8::from(b < 0x20) | u8::from(b == b'|') | u8::from(b >= 0x7f)
            }) == 0 =>
        {
            out.push_str(s)
        }
        Some(s) => out.push_str(&crate::log::template::sanitise(s)),
    }
}

/// One record as one text line: time, conn, client IP, `user@service`,
/// status, tag (for an error: SQLSTATE and message), statement; fields
/// separated by `|` as in the connection log, `-` when unknown.
pub fn text_line(r: &Record, c: &Conn, tz: &dyn Fn(i64) -> i32) -> String {
    let mut o = String::with_capacity(128 + r.statement.as_ref().map_or(0, |s| s.len()));
    push_text(&mut o, r, c, &mut TimeText::new(tz));
    o
}

/// [`text_line`], appended to `o`, times from `t`.
pub fn push_text(o: &mut String, r: &Record, c: &Conn, t: &mut TimeText<'_>) {
    t.push(o, r.time_us, ' ');
    o.push('|');
    match c.conn {
        Some(n) => push_u64(o, n),
        None => o.push('-'),
    }
    o.push('|');
    o.push_str(c.client_ip.as_deref().unwrap_or("-"));
    o.push('|');
    push_field(o, r.user.as_deref());
    o.push('@');
    push_field(o, r.service.as_deref());
    o.push('|');
    o.push_str(r.status.as_str());
    o.push('|');
    push_field(o, r.tag.as_deref().or(r.error.as_deref()));
    o.push('|');
    match &r.statement {
        Some(s) => one_line(o, s),
        None => {
            o.push('(');
            o.push_str(r.kind);
            o.push(')');
        }
    }
    o.push('\n');
}

#[cfg(test)]
mod tests;
