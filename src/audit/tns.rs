//! Oracle TNS / TTC statement decoder, best effort (`"exact": false`),
//! SPEC "Statement audit", AUDIT.md §2.3.
//!
//! Each direction is framed as TNS packets (8-byte header: length, packet
//! checksum, type, flags, header checksum). The length is 2 bytes until
//! the server's ACCEPT, and 4 bytes from then on when the version it
//! accepted is 315 (12c) or later. DATA payloads (after their 2-byte data
//! flags) are joined per direction into the TTC stream: a request is the
//! client's bytes until the server answers, its reply the server's bytes
//! until the client's next request.
//!
//! The CONNECT descriptor gives `service` and `program` (through the
//! identity decoder), AUTH phase one the database `user`, the server's
//! AUTH_SESSION_ID `server_session`. An OALL8 (function 0x5E) that
//! parses a new cursor carries the SQL text; the server's error message
//! (TTI_OER, also sent on success) names the cursor, so later executes
//! and re-executes (0x04, 0x4E) by cursor id are shown with that text.
//! The error number, message and row count come from that message too;
//! ORA-01403 (no data found) is a normal end.
//!
//! What is heuristic: the position of the SQL text (the fixed part of
//! OALL8 depends on the TTC field version; when the layout does not fit,
//! the text is searched for by its length), piggybacks other than
//! close-cursors (skipped by scanning for the function header), the end
//! of a reply (a complete error or status message at its end), 11g/JDBC
//! layouts (raw SQL, ORA- text). Binds, LOBs and array DML are not
//! decoded. TCPS (TLS from byte 0) and Native Network Encryption or data
//! integrity negotiated in the advanced negotiation (`DE AD BE EF`) give
//! one `undecodable` record, then silence. Pure: no I/O, no clock; held
//! state is capped.

use std::collections::HashMap;
use std::rc::Rc;

use super::{Dir, MAX_PENDING_BYTES, Outcome, Protocol, Record};
use crate::identity::{self, Decode};

/// `proto` of every record.
pub const PROTO: &str = "tns";

/// TNS packet header (bytes).
const HEADER_BYTES: usize = 8;
/// Bytes of the CONNECT (and its DATA follow-up) kept for the descriptor.
const MAX_CONNECT_BYTES: usize = 4096;
/// Bytes kept of one request's TTC stream (SQL beyond is cut).
const MAX_REQUEST_BYTES: usize = MAX_PENDING_BYTES;
/// Bytes kept of the end of a reply, where its error or status message is.
const REPLY_TAIL_BYTES: usize = 4096;
/// How far back from a reply's end its final message is looked for.
const REPLY_SCAN_BYTES: usize = 1024;
/// Most cursors remembered.
const MAX_CURSORS: usize = 65_536;
/// Most bytes of SQL text remembered over all cursors.
const MAX_CURSOR_BYTES: usize = MAX_PENDING_BYTES;
/// First TNS version with 4-byte packet lengths after the handshake.
const VERSION_LARGE_SDU: u16 = 315;

// Packet types.
const TNS_CONNECT: u8 = 1;
const TNS_ACCEPT: u8 = 2;
const TNS_REFUSE: u8 = 4;
const TNS_REDIRECT: u8 = 5;
const TNS_DATA: u8 = 6;
const TNS_RESEND: u8 = 11;
const TNS_MAX_TYPE: u8 = 15;
/// DATA flag: the sender closes the connection.
const DATA_FLAG_EOF: u16 = 0x0040;
/// DATA flag: the last packet of a request (newer clients).
const DATA_FLAG_END_OF_REQUEST: u16 = 0x0800;

// TTC message types.
const MSG_PROTOCOL: u8 = 1;
const MSG_DATA_TYPES: u8 = 2;
const MSG_FUNCTION: u8 = 3;
const MSG_ERROR: u8 = 4;
const MSG_STATUS: u8 = 9;
const MSG_PIGGYBACK: u8 = 0x11;
const MSG_ONEWAY_FUNCTION: u8 = 26;
const MSG_END_OF_RESPONSE: u8 = 29;
/// Advanced negotiation (SNS) magic that opens its DATA payload.
const ANO_MAGIC: [u8; 4] = [0xde, 0xad, 0xbe, 0xef];
/// Advanced negotiation services whose activation hides the payload.
const ANO_ENCRYPTION: u16 = 2;
const ANO_INTEGRITY: u16 = 3;
/// Sub-packet type of a one-byte value (the chosen algorithm).
const ANO_UB1: u16 = 2;

// Function codes.
const FN_EXECUTE: u8 = 0x5e;
const FN_REEXECUTE: u8 = 0x04;
const FN_REEXECUTE_AND_FETCH: u8 = 0x4e;
const FN_FETCH: u8 = 0x05;
const FN_COMMIT: u8 = 0x0e;
const FN_ROLLBACK: u8 = 0x0f;
const FN_LOGOFF: u8 = 0x09;
const FN_CLOSE_CURSORS: u8 = 0x69;
const FN_AUTH_PHASE_ONE: u8 = 0x76;
const FN_AUTH_PHASE_TWO: u8 = 0x73;

/// Index of the field version in the DTY compile capabilities.
const CCAP_FIELD_VERSION: usize = 7;
/// Field versions that change the layouts read here.
const FIELD_VERSION_12_2: u8 = 8;
const FIELD_VERSION_12_2_EXT1: u8 = 9;
const FIELD_VERSION_20_1: u8 = 14;
const FIELD_VERSION_23_1_EXT_1: u8 = 18;
/// Assumed until the client's DTY message says otherwise.
const FIELD_VERSION_DEFAULT: u8 = 12;
/// Length byte announcing a chunked value.
const LONG_LENGTH: u8 = 0xfe;
/// Longest value with a one-byte length.
const SHORT_LENGTH_MAX: usize = 252;
/// ORA-01403 no data found: a normal end of fetch.
const ORA_NO_DATA_FOUND: u32 = 1403;

/// Key of the session id in the server's authentication reply.
const AUTH_SESSION_ID: &[u8] = b"AUTH_SESSION_ID";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Before the server's ACCEPT.
    Connect,
    /// DATA exchange.
    Data,
    Stopped,
}

/// TNS packet framer of one direction.
#[derive(Default)]
struct Framer {
    buf: Vec<u8>,
}

/// What a request asked.
#[derive(Debug)]
enum Req {
    /// Advanced negotiation.
    Ano,
    /// AUTH phase two: its reply gives the session id or an error.
    Auth,
    /// A statement: OALL8 or a re-execute.
    Sql {
        kind: &'static str,
        statement: Option<String>,
        /// The text to remember for the cursor the reply names.
        learn: bool,
    },
    Commit,
    Rollback,
    /// Nothing to record (PRO, DTY, AUTH phase one, FETCH, LOGOFF, ...).
    Other,
}

/// A request and what its reply said so far.
struct Pending {
    req: Req,
    time_us: i64,
}

/// The final message of a reply.
#[derive(Debug, Default, PartialEq, Eq)]
struct Answer {
    cursor: Option<u32>,
    number: u32,
    rows: Option<u64>,
    message: Option<String>,
}

/// The Oracle TNS decoder of one connection.
pub struct Tns {
    phase: Phase,
    large: bool,
    halves: [Framer; 2],
    connect: Vec<u8>,
    user: Option<Rc<str>>,
    service: Option<Rc<str>>,
    program: Option<Rc<str>>,
    server_session: Option<u64>,
    field_version: Option<u8>,
    ano_seen: bool,
    /// The client's TTC bytes of the request being sent.
    request: Vec<u8>,
    request_time: i64,
    /// The request is complete (the server answered); its reply follows.
    pending: Option<Pending>,
    reply_tail: Vec<u8>,
    reply_seen: bool,
    cursors: HashMap<u32, String>,
    cursor_bytes: usize,
    /// Only the client's direction is fed (a `-l` recording).
    one_sided: bool,
    /// The client's last DATA packet ended a request.
    request_ended: bool,
}

impl Default for Tns {
    fn default() -> Self {
        Self::new()
    }
}

impl Tns {
    pub fn new() -> Tns {
        Tns {
            phase: Phase::Connect,
            large: false,
            halves: [Framer::default(), Framer::default()],
            connect: Vec::new(),
            user: None,
            service: None,
            program: None,
            server_session: None,
            field_version: None,
            ano_seen: false,
            request: Vec::new(),
            request_time: 0,
            pending: None,
            reply_tail: Vec::new(),
            reply_seen: false,
            cursors: HashMap::new(),
            cursor_bytes: 0,
            one_sided: false,
            request_ended: false,
        }
    }

    fn record(&self, kind: &'static str, time_us: i64) -> Record {
        Record {
            proto: PROTO,
            time_us,
            user: self.user.clone(),
            service: self.service.clone(),
            program: self.program.clone(),
            server_session: self.server_session,
            kind,
            statement: None,
            params: None,
            status: Outcome::Unknown,
            tag: None,
            rows: None,
            error: None,
            duration_us: None,
            exact: false,
        }
    }

    fn stop(&mut self) {
        self.phase = Phase::Stopped;
        self.halves = [Framer::default(), Framer::default()];
        self.request = Vec::new();
        self.reply_tail = Vec::new();
        self.connect = Vec::new();
        self.cursors.clear();
        self.cursor_bytes = 0;
    }

    fn lose(&mut self, why: String, time_us: i64, out: &mut Vec<Record>) {
        self.flush(out);
        let mut r = self.record("lost", time_us);
        r.error = Some(why);
        out.push(r);
        self.stop();
    }

    fn undecodable(&mut self, why: &str, time_us: i64, out: &mut Vec<Record>) {
        let mut r = self.record("undecodable", time_us);
        r.error = Some(why.to_string());
        out.push(r);
        self.stop();
    }

    fn fv(&self) -> u8 {
        self.field_version.unwrap_or(FIELD_VERSION_DEFAULT)
    }

    /// One complete TNS packet.
    fn packet(&mut self, dir: Dir, p: &[u8], time_us: i64, out: &mut Vec<Record>) {
        let kind = p[4];
        match (self.phase, dir, kind) {
            (Phase::Stopped, ..) => {}
            (Phase::Connect, Dir::FromClient, TNS_DATA)
                if self.one_sided
                    && starts_request(p.get(HEADER_BYTES + 2..).unwrap_or_default()) =>
            {
                // no ACCEPT recorded: the handshake is over
                self.phase = Phase::Data;
                self.connect = Vec::new();
                self.client_data(p.get(HEADER_BYTES + 2..).unwrap_or_default(), time_us, out);
            }
            (Phase::Connect, Dir::FromClient, TNS_CONNECT | TNS_DATA) => {
                let room = MAX_CONNECT_BYTES.saturating_sub(self.connect.len());
                self.connect.extend_from_slice(&p[..p.len().min(room)]);
                if let Decode::Done(id) = identity::tns::decode(&self.connect, false) {
                    self.service = id.service.map(Rc::from).or(self.service.take());
                    self.program = id.program.map(Rc::from).or(self.program.take());
                }
            }
            (Phase::Connect, Dir::ToClient, TNS_ACCEPT) => {
                let version = be16(p, HEADER_BYTES).unwrap_or(0);
                self.large = version >= VERSION_LARGE_SDU;
                self.phase = Phase::Data;
                self.connect = Vec::new();
            }
            (Phase::Connect, Dir::ToClient, TNS_RESEND) => self.connect.clear(),
            (Phase::Connect, Dir::ToClient, TNS_REFUSE) => {
                let mut r = self.record("connect", time_us);
                r.status = Outcome::Error;
                let text = String::from_utf8_lossy(p.get(12..).unwrap_or_default()).into_owned();
                r.error = Some(match refuse_code(&text) {
                    Some(code) => format!("{code} {text}"),
                    None => text,
                });
                out.push(r);
                self.stop();
            }
            (Phase::Connect, Dir::ToClient, TNS_REDIRECT) => self.stop(),
            (Phase::Data, _, TNS_DATA) => {
                let flags = be16(p, HEADER_BYTES).unwrap_or(0);
                let payload = p.get(HEADER_BYTES + 2..).unwrap_or_default();
                match dir {
                    Dir::FromClient => {
                        self.client_data(payload, time_us, out);
                        self.request_ended = flags & DATA_FLAG_END_OF_REQUEST != 0;
                    }
                    Dir::ToClient => self.server_data(payload, time_us, out),
                }
                if flags & DATA_FLAG_EOF != 0 && self.phase != Phase::Stopped {
                    self.flush(out);
                }
            }
            // markers, attention, control, a client's RESEND...
            _ => {}
        }
    }

    /// Client TTC bytes: the start or the continuation of a request.
    fn client_data(&mut self, payload: &[u8], time_us: i64, out: &mut Vec<Record>) {
        if payload.is_empty() {
            return;
        }
        if self.pending.is_some() {
            // the reply to the last request is over
            self.complete(None, time_us, out);
        }
        if self.one_sided
            && !self.request.is_empty()
            && (self.request_ended || starts_request(payload))
        {
            // no reply will come: the request ends where the next begins
            self.flush(out);
        }
        if self.request.is_empty() {
            self.request_time = time_us;
        }
        let room = MAX_REQUEST_BYTES.saturating_sub(self.request.len());
        self.request
            .extend_from_slice(&payload[..payload.len().min(room)]);
    }

    /// Server TTC bytes: the reply to the request.
    fn server_data(&mut self, payload: &[u8], time_us: i64, out: &mut Vec<Record>) {
        if !self.request.is_empty() {
            let request = std::mem::take(&mut self.request);
            match self.parse_request(&request) {
                Ok(req) => {
                    self.pending = Some(Pending {
                        req,
                        time_us: self.request_time,
                    });
                    self.reply_tail.clear();
                    self.reply_seen = false;
                }
                Err(why) => {
                    if self.ano_seen {
                        self.undecodable(
                            "Native Network Encryption (TTC not readable)",
                            self.request_time,
                            out,
                        );
                    } else {
                        self.lose(why, self.request_time, out);
                    }
                    return;
                }
            }
        }
        let Some(pending) = &self.pending else {
            return;
        };
        let answered = matches!(
            pending.req,
            Req::Sql { .. } | Req::Commit | Req::Rollback | Req::Auth
        );
        if matches!(pending.req, Req::Ano) && !self.reply_seen {
            self.reply_seen = true;
            if payload.starts_with(&ANO_MAGIC) && ano_activates(payload) {
                self.undecodable(
                    "Native Network Encryption or data integrity negotiated",
                    time_us,
                    out,
                );
            }
            return;
        }
        self.reply_seen = true;
        self.reply_tail.extend_from_slice(payload);
        if self.reply_tail.len() > REPLY_TAIL_BYTES {
            let cut = self.reply_tail.len() - REPLY_TAIL_BYTES;
            self.reply_tail.drain(..cut);
        }
        if answered && let Some(answer) = self.final_message() {
            self.complete(Some(answer), time_us, out);
        }
    }

    /// The request's reply ended (`answer` when its final message was
    /// read): its record, if it gives one.
    fn complete(&mut self, answer: Option<Answer>, now: i64, out: &mut Vec<Record>) {
        let Some(p) = self.pending.take() else {
            return;
        };
        let tail = std::mem::take(&mut self.reply_tail);
        let answer = answer.or_else(|| ora_text(&tail));
        self.reply_seen = false;
        let (kind, statement, learn) = match p.req {
            Req::Sql {
                kind,
                statement,
                learn,
            } => (kind, statement, learn),
            Req::Commit => ("commit", None, false),
            Req::Rollback => ("rollback", None, false),
            Req::Auth => {
                if let Some(id) = session_id(&tail) {
                    self.server_session = Some(id);
                }
                if let Some(a) = answer.filter(|a| a.number != 0) {
                    let mut r = self.record("connect", p.time_us);
                    r.status = Outcome::Error;
                    r.error = Some(error_text(&a));
                    r.duration_us = Some(now.saturating_sub(p.time_us));
                    out.push(r);
                }
                return;
            }
            Req::Ano | Req::Other => return,
        };
        let mut r = self.record(kind, p.time_us);
        if let Some(a) = &answer {
            let ok = a.number == 0 || a.number == ORA_NO_DATA_FOUND;
            r.status = if ok { Outcome::Ok } else { Outcome::Error };
            r.rows = a.rows;
            if !ok {
                r.error = Some(error_text(a));
            }
            r.duration_us = Some(now.saturating_sub(p.time_us));
            if learn
                && let (Some(cursor), Some(sql)) = (a.cursor, &statement)
                && cursor != 0
            {
                self.learn(cursor, sql.clone());
            }
        }
        r.statement = statement.map(Into::into);
        out.push(r);
    }

    fn learn(&mut self, cursor: u32, sql: String) {
        if let Some(old) = self.cursors.remove(&cursor) {
            self.cursor_bytes = self.cursor_bytes.saturating_sub(old.len());
        }
        if self.cursors.len() >= MAX_CURSORS
            || self.cursor_bytes.saturating_add(sql.len()) > MAX_CURSOR_BYTES
        {
            // full: forget them all rather than grow
            self.cursors.clear();
            self.cursor_bytes = 0;
        }
        self.cursor_bytes += sql.len();
        self.cursors.insert(cursor, sql);
    }

    fn forget(&mut self, cursor: u32) {
        if let Some(old) = self.cursors.remove(&cursor) {
            self.cursor_bytes = self.cursor_bytes.saturating_sub(old.len());
        }
    }

    /// A complete error or status message at the end of the reply.
    fn final_message(&self) -> Option<Answer> {
        let tail = &self.reply_tail;
        let from = tail.len().saturating_sub(REPLY_SCAN_BYTES);
        let versions: &[u8] = match self.field_version {
            Some(fv) => &[fv][..],
            None => &[FIELD_VERSION_DEFAULT, FIELD_VERSION_20_1][..],
        };
        for p in (from..tail.len()).rev() {
            let rest = &tail[p + 1..];
            let found = match tail[p] {
                MSG_ERROR => versions.iter().find_map(|&fv| {
                    let mut r = Rd(rest);
                    let a = parse_error(&mut r, fv)?;
                    at_end(r.0).then_some(a)
                }),
                MSG_STATUS => {
                    let mut r = Rd(rest);
                    (r.ub4().is_some() && r.ub2().is_some() && at_end(r.0)).then(Answer::default)
                }
                _ => None,
            };
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// What a complete request asks.
    fn parse_request(&mut self, b: &[u8]) -> Result<Req, String> {
        match b.first().copied() {
            Some(0xde) if b.starts_with(&ANO_MAGIC) => {
                self.ano_seen = true;
                Ok(Req::Ano)
            }
            Some(MSG_PROTOCOL) => Ok(Req::Other),
            Some(MSG_DATA_TYPES) => {
                // charset u16 LE x2, encoding flags, compile caps with length
                let mut r = Rd(b.get(6..).unwrap_or_default());
                if let Some(caps) = r.u8().and_then(|n| r.take(usize::from(n)))
                    && let Some(&fv) = caps.get(CCAP_FIELD_VERSION)
                {
                    self.field_version = Some(fv);
                }
                Ok(Req::Other)
            }
            Some(MSG_FUNCTION | MSG_PIGGYBACK | MSG_ONEWAY_FUNCTION) => Ok(self.function(b)),
            Some(other) => Err(format!("TTC message type {other} is not followed")),
            None => Ok(Req::Other),
        }
    }

    /// Piggybacks, then one function call.
    fn function(&mut self, b: &[u8]) -> Req {
        let fv = self.fv();
        let mut r = Rd(b);
        loop {
            let Some(kind) = r.u8() else {
                return Req::Other;
            };
            let (Some(code), Some(_seq)) = (r.u8(), r.u8()) else {
                return Req::Other;
            };
            if fv >= FIELD_VERSION_23_1_EXT_1 && r.ub8().is_none() {
                return Req::Other;
            }
            match (kind, code) {
                (MSG_PIGGYBACK, FN_CLOSE_CURSORS) => {
                    let ids = (|| {
                        r.u8()?;
                        let n = r.ub4()?;
                        let mut ids = Vec::new();
                        for _ in 0..n.min(MAX_CURSORS as u32) {
                            ids.push(r.ub4()?);
                        }
                        Some(ids)
                    })();
                    match ids {
                        Some(ids) => ids.into_iter().for_each(|id| self.forget(id)),
                        None => return Req::Other,
                    }
                }
                (MSG_PIGGYBACK, _) => {
                    // an unknown piggyback body: find the function header
                    match find_function(r.0) {
                        Some(at) => r = Rd(&r.0[at..]),
                        None => return Req::Other,
                    }
                }
                (MSG_FUNCTION | MSG_ONEWAY_FUNCTION, _) => return self.call(code, r, fv),
                _ => return Req::Other,
            }
        }
    }

    /// The body of function `code`.
    fn call(&mut self, code: u8, mut r: Rd, fv: u8) -> Req {
        match code {
            FN_EXECUTE => {
                let Some(head) = (|| Some((r.ub4()?, r.ub4()?, r.u8()?, r.ub4()?)))() else {
                    return Req::Sql {
                        kind: "query",
                        statement: None,
                        learn: false,
                    };
                };
                let (_options, cursor, sql_ptr, sql_len) = head;
                let sql = if sql_ptr != 0 && sql_len > 0 {
                    find_sql(r.0, sql_len as usize, fv)
                } else {
                    None
                };
                match sql {
                    Some(sql) => Req::Sql {
                        kind: "query",
                        statement: Some(sql),
                        learn: true,
                    },
                    None => Req::Sql {
                        kind: "execute",
                        statement: self.cursors.get(&cursor).cloned(),
                        learn: false,
                    },
                }
            }
            FN_REEXECUTE | FN_REEXECUTE_AND_FETCH => {
                let statement = r.ub4().and_then(|c| self.cursors.get(&c).cloned());
                Req::Sql {
                    kind: "execute",
                    statement,
                    learn: false,
                }
            }
            FN_AUTH_PHASE_ONE => {
                let user = (|| {
                    let has_user = r.u8()?;
                    let len = r.ub4()?;
                    r.ub4()?;
                    r.u8()?;
                    r.ub4()?;
                    r.u8()?;
                    r.u8()?;
                    if has_user == 0 || len == 0 {
                        return None;
                    }
                    r.bytes_with_length()
                })();
                if let Some(user) = user {
                    self.user = Some(Rc::from(String::from_utf8_lossy(&user)));
                }
                Req::Other
            }
            FN_AUTH_PHASE_TWO => Req::Auth,
            FN_COMMIT => Req::Commit,
            FN_ROLLBACK => Req::Rollback,
            FN_FETCH | FN_LOGOFF => Req::Other,
            _ => Req::Other,
        }
    }

    /// The request still waiting and the one being sent: `unknown`.
    fn flush(&mut self, out: &mut Vec<Record>) {
        if !self.request.is_empty() {
            let request = std::mem::take(&mut self.request);
            if let Ok(req) = self.parse_request(&request) {
                self.complete(None, self.request_time, out);
                self.pending = Some(Pending {
                    req,
                    time_us: self.request_time,
                });
                self.reply_seen = false;
            }
        }
        self.complete(None, 0, out);
    }

    /// Whether the packet whose header starts `h` has a 4-byte length:
    /// as the ACCEPT negotiated, or, with no ACCEPT recorded, when the
    /// 2-byte reading would be shorter than a header (Wireshark's guess
    /// is the same: a 2-byte length has a zero checksum after it).
    fn large_lengths(&self, h: &[u8]) -> bool {
        if self.one_sided && !self.large {
            h.len() >= 2 && be16(h, 0).is_some_and(|n| usize::from(n) < HEADER_BYTES)
        } else {
            self.large && self.phase == Phase::Data
        }
    }

    fn feed_packets(&mut self, dir: Dir, time_us: i64, mut data: &[u8], out: &mut Vec<Record>) {
        let h = match dir {
            Dir::FromClient => 0,
            Dir::ToClient => 1,
        };
        while !data.is_empty() && self.phase != Phase::Stopped {
            let large = self.large_lengths(&self.halves[h].buf);
            let f = &mut self.halves[h].buf;
            // the header first, then the packet's length is known
            let want = if f.len() < HEADER_BYTES {
                HEADER_BYTES
            } else {
                match packet_len(f, large) {
                    Ok(n) => n,
                    Err(why) => {
                        self.lose(why, time_us, out);
                        return;
                    }
                }
            };
            let take = want.saturating_sub(f.len()).min(data.len());
            f.extend_from_slice(&data[..take]);
            data = &data[take..];
            let large = self.large_lengths(&self.halves[h].buf);
            let f = &self.halves[h].buf;
            if f.len() == HEADER_BYTES {
                // the length is now known: check it before reading on
                if let Err(why) = packet_len(f, large) {
                    self.lose(why, time_us, out);
                    return;
                }
            }
            if f.len() >= HEADER_BYTES && packet_len(f, large) == Ok(f.len()) {
                let p = std::mem::take(&mut self.halves[h].buf);
                self.packet(dir, &p, time_us, out);
            }
        }
    }
}

impl Protocol for Tns {
    fn feed(&mut self, dir: Dir, time_us: i64, data: &[u8], out: &mut Vec<Record>) {
        if self.phase == Phase::Stopped || data.is_empty() {
            return;
        }
        if self.phase == Phase::Connect
            && dir == Dir::FromClient
            && self.halves[0].buf.is_empty()
            && self.connect.is_empty()
            && data.first() == Some(&0x16)
        {
            self.undecodable("TLS (TCPS)", time_us, out);
            return;
        }
        self.feed_packets(dir, time_us, data, out);
    }

    fn finish(&mut self, out: &mut Vec<Record>) {
        if self.phase == Phase::Stopped {
            return;
        }
        self.flush(out);
        self.stop();
    }

    fn one_sided(&mut self, out: &mut Vec<Record>) {
        self.one_sided = true;
        if self.pending.is_some() {
            self.complete(None, 0, out);
        }
    }
}

/// Whether a client DATA payload begins a new request (and is not the
/// continuation of a long one): the advanced negotiation, the protocol
/// message, or a function call or piggyback with a known code.
fn starts_request(b: &[u8]) -> bool {
    match b {
        [0xde, 0xad, 0xbe, 0xef, ..] | [MSG_PROTOCOL, 6, 0, ..] => true,
        [MSG_FUNCTION | MSG_PIGGYBACK | MSG_ONEWAY_FUNCTION, code, ..] => matches!(
            *code,
            FN_EXECUTE
                | FN_REEXECUTE
                | FN_REEXECUTE_AND_FETCH
                | FN_FETCH
                | FN_COMMIT
                | FN_ROLLBACK
                | FN_LOGOFF
                | FN_CLOSE_CURSORS
                | FN_AUTH_PHASE_ONE
                | FN_AUTH_PHASE_TWO
        ),
        _ => false,
    }
}

/// Length of the packet whose header is at the start of `h`.
fn packet_len(h: &[u8], large: bool) -> Result<usize, String> {
    let n = if large {
        be32(h, 0).map(|n| n as usize)
    } else {
        be16(h, 0).map(usize::from)
    }
    .unwrap_or(0);
    let kind = h.get(4).copied().unwrap_or(0);
    if n < HEADER_BYTES || kind == 0 || kind > TNS_MAX_TYPE {
        return Err(format!("not a TNS packet (length {n}, type {kind})"));
    }
    if n > MAX_PENDING_BYTES {
        return Err(format!("TNS packet of {n} bytes is over the cap"));
    }
    Ok(n)
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at + 2)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Nothing, or only an END_OF_RESPONSE message, follows.
fn at_end(rest: &[u8]) -> bool {
    rest.is_empty() || rest == [MSG_END_OF_RESPONSE]
}

/// `ERR=nnnnn` in a REFUSE's text.
fn refuse_code(text: &str) -> Option<u32> {
    let at = text.find("(ERR=")?;
    let digits: String = text[at + 5..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// `number message` of an error answer.
fn error_text(a: &Answer) -> String {
    match &a.message {
        Some(m) => format!("{} {}", a.number, m.trim_end()),
        None => format!("{} ORA-{:05}", a.number, a.number),
    }
}

/// Whether the server's advanced negotiation reply activates encryption
/// or data integrity (a chosen algorithm other than 0).
fn ano_activates(b: &[u8]) -> bool {
    let parsed = (|| {
        let mut r = Rd(b.get(4..)?);
        r.take(2)?; // length
        r.take(4)?; // version
        let services = u16::from_be_bytes(r.take(2)?.try_into().ok()?);
        r.u8()?; // flags
        for _ in 0..services {
            let kind = u16::from_be_bytes(r.take(2)?.try_into().ok()?);
            let subs = u16::from_be_bytes(r.take(2)?.try_into().ok()?);
            r.take(4)?; // error
            for _ in 0..subs {
                let len = usize::from(u16::from_be_bytes(r.take(2)?.try_into().ok()?));
                let sub = u16::from_be_bytes(r.take(2)?.try_into().ok()?);
                let value = r.take(len)?;
                if (kind == ANO_ENCRYPTION || kind == ANO_INTEGRITY)
                    && sub == ANO_UB1
                    && value.first().is_some_and(|&algo| algo != 0)
                {
                    return Some(true);
                }
            }
        }
        Some(false)
    })();
    // a reply that cannot be read: assume the worst
    parsed.unwrap_or(true)
}

/// The SQL text of an OALL8 body after its first four fields.
fn find_sql(b: &[u8], len: usize, fv: u8) -> Option<String> {
    let exact = (|| {
        let mut r = Rd(b);
        r.u8()?;
        r.ub4()?; // al8i4 length
        r.u8()?;
        r.u8()?;
        r.ub4()?;
        r.ub4()?; // prefetch rows
        r.ub4()?; // max long
        r.u8()?;
        r.ub4()?; // binds
        for _ in 0..5 {
            r.u8()?;
        }
        r.u8()?;
        r.ub4()?; // defines
        r.ub4()?; // registration id
        r.u8()?;
        r.u8()?;
        r.u8()?;
        r.ub4()?;
        r.u8()?;
        r.ub4()?;
        r.ub4()?; // regid msb
        r.u8()?;
        r.ub4()?;
        r.u8()?; // dml rowcounts
        if fv >= FIELD_VERSION_12_2 {
            r.u8()?;
            r.ub4()?;
            r.u8()?;
            r.ub4()?;
            r.u8()?;
            if fv >= FIELD_VERSION_12_2_EXT1 {
                r.u8()?;
                r.ub4()?;
            }
        }
        let sql = r.bytes_with_length()?;
        (sql.len() == len).then_some(sql)
    })();
    let sql = exact.or_else(|| search_sql(b, len))?;
    Some(String::from_utf8_lossy(&sql).into_owned())
}

/// Looks for the SQL text by its length: a length-prefixed (or chunked)
/// value of exactly `len` bytes that reads as text, else raw text of
/// that length (11g / JDBC layouts).
fn search_sql(b: &[u8], len: usize) -> Option<Vec<u8>> {
    for p in 0..b.len() {
        if len <= SHORT_LENGTH_MAX && usize::from(b[p]) == len {
            if let Some(s) = b.get(p + 1..p + 1 + len)
                && looks_like_sql(s)
            {
                return Some(s.to_vec());
            }
        } else if b[p] == LONG_LENGTH
            && let Some(s) = Rd(&b[p..]).bytes_with_length()
            && s.len() == len
            && looks_like_sql(&s)
        {
            return Some(s);
        }
    }
    (0..b.len()).find_map(|p| {
        let s = b.get(p..p + len)?;
        (s[0].is_ascii_alphabetic() && looks_like_sql(s)).then(|| s.to_vec())
    })
}

/// UTF-8 text without control characters other than blanks, starting
/// the way a statement can.
fn looks_like_sql(s: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(s) else {
        return false;
    };
    let first_ok = text
        .trim_start()
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || "(/-{".contains(c));
    first_ok
        && text
            .chars()
            .all(|c| !c.is_control() || c == '\n' || c == '\r' || c == '\t')
}

/// Offset of a plausible function header (`03 code seq`) in `b`.
fn find_function(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| {
        w[0] == MSG_FUNCTION
            && matches!(
                w[1],
                FN_EXECUTE
                    | FN_REEXECUTE
                    | FN_REEXECUTE_AND_FETCH
                    | FN_FETCH
                    | FN_COMMIT
                    | FN_ROLLBACK
                    | FN_LOGOFF
            )
    })
}

/// TTI_OER after its type byte (python-oracledb `_process_error_info`).
fn parse_error(r: &mut Rd, fv: u8) -> Option<Answer> {
    r.ub4()?; // call status
    r.ub2()?; // end-to-end seq
    r.ub4()?; // current row
    r.ub2()?; // error number
    r.ub2()?; // array elem error
    r.ub2()?;
    let cursor = r.ub2()?;
    r.sb2()?; // error position
    r.take(6)?; // sql type, fatal, flags, cursor options, UPI, flags
    // rowid
    r.ub4()?;
    r.ub2()?;
    r.u8()?;
    r.ub4()?;
    r.ub2()?;
    r.ub4()?; // os error
    r.take(2)?; // statement number, call number
    r.ub2()?; // padding
    r.ub4()?; // success iters
    if r.ub4()? > 0 {
        r.bytes_with_length()?;
    }
    let errors = r.ub2()?;
    if errors > 0 {
        let first = r.u8()?;
        for _ in 0..errors {
            if first == LONG_LENGTH {
                r.ub4()?;
            }
            r.ub2()?;
        }
        if first == LONG_LENGTH {
            r.u8()?;
        }
    }
    let offsets = r.ub4()?;
    if offsets > 0 {
        if offsets > 65_535 {
            return None;
        }
        let first = r.u8()?;
        for _ in 0..offsets {
            if first == LONG_LENGTH {
                r.ub4()?;
            }
            r.ub4()?;
        }
        if first == LONG_LENGTH {
            r.u8()?;
        }
    }
    let messages = r.ub2()?;
    if messages > 0 {
        r.u8()?;
        for _ in 0..messages {
            r.ub2()?;
            r.bytes_with_length()?;
            r.take(2)?;
        }
    }
    let number = r.ub4()?;
    let rows = r.ub8()?;
    if fv >= FIELD_VERSION_20_1 {
        r.ub4()?;
        r.ub4()?;
    }
    let message = if number != 0 {
        Some(String::from_utf8_lossy(&r.bytes_with_length()?).into_owned())
    } else {
        None
    };
    Some(Answer {
        cursor: Some(u32::from(cursor)),
        number,
        rows: Some(rows),
        message,
    })
}

/// An `ORA-nnnnn: message` in a reply that could not be parsed.
fn ora_text(tail: &[u8]) -> Option<Answer> {
    let text = String::from_utf8_lossy(tail);
    let at = text.rfind("ORA-")?;
    let digits: String = text[at + 4..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    if digits.len() != 5 {
        return None;
    }
    let number: u32 = digits.parse().ok()?;
    let message: String = text[at..]
        .chars()
        .take_while(|c| !c.is_control() || *c == '\n')
        .collect();
    Some(Answer {
        cursor: None,
        number,
        rows: None,
        message: Some(message.trim_end().to_string()),
    })
}

/// AUTH_SESSION_ID from the authentication reply's key/value pairs.
fn session_id(tail: &[u8]) -> Option<u64> {
    let at = tail
        .windows(AUTH_SESSION_ID.len())
        .position(|w| w == AUTH_SESSION_ID)?;
    let mut r = Rd(&tail[at + AUTH_SESSION_ID.len()..]);
    r.ub4()?;
    let value = r.bytes_with_length()?;
    std::str::from_utf8(&value).ok()?.trim().parse().ok()
}

/// A bound-checked reader of TTC's variable-length integers.
#[derive(Clone)]
struct Rd<'a>(&'a [u8]);

impl<'a> Rd<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    /// A length byte (0 to `max`, sign in bit 7 allowed when `signed`)
    /// and that many big-endian bytes.
    fn int(&mut self, max: usize, signed: bool) -> Option<(u64, bool)> {
        let mut n = self.u8()?;
        let negative = signed && n & 0x80 != 0;
        if signed {
            n &= 0x7f;
        }
        let n = usize::from(n);
        if n > max {
            return None;
        }
        let v = self
            .take(n)?
            .iter()
            .fold(0u64, |v, &b| (v << 8) | u64::from(b));
        Some((v, negative))
    }

    fn ub2(&mut self) -> Option<u16> {
        self.int(2, false).map(|(v, _)| v as u16)
    }

    fn sb2(&mut self) -> Option<i16> {
        self.int(2, true).map(|(v, neg)| {
            let v = v as i16;
            if neg { v.wrapping_neg() } else { v }
        })
    }

    fn ub4(&mut self) -> Option<u32> {
        self.int(4, false).map(|(v, _)| v as u32)
    }

    fn ub8(&mut self) -> Option<u64> {
        self.int(8, false).map(|(v, _)| v)
    }

    /// A value with a one-byte length, or chunked after 0xfe.
    fn bytes_with_length(&mut self) -> Option<Vec<u8>> {
        match self.u8()? {
            0 | 0xff => Some(Vec::new()),
            LONG_LENGTH => {
                let mut v = Vec::new();
                loop {
                    let n = self.ub4()? as usize;
                    if n == 0 {
                        return Some(v);
                    }
                    v.extend_from_slice(self.take(n)?);
                }
            }
            n => self.take(usize::from(n)).map(<[u8]>::to_vec),
        }
    }
}

#[cfg(test)]
mod tests;
