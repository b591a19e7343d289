//! PostgreSQL statement decoder (protocol 3.x; AUDIT.md §2.1).
//!
//! Both directions are framed as continuous message streams: the client's
//! startup-phase packets (`Int32 len, Int32 code`), then typed messages
//! (`Byte1 type, Int32 len, body`) on both sides; the one-byte answers to
//! SSLRequest/GSSENCRequest are read as such. Messages whose body is never
//! needed (CopyData, DataRow, authentication, notices) are skipped as they
//! stream by and never buffered; the others are kept whole, at most
//! [`MAX_PENDING_BYTES`] each.
//!
//! Pairing: each client request that the server answers becomes an entry
//! of a FIFO in the order sent, and the server's answers are matched to its
//! head in order (the server processes requests strictly in order). A `Q`
//! is split into its statements as the server splits it; each gets its
//! own CommandComplete or ErrorResponse (the error position says which
//! statement failed; after a failure the rest did not run: `unknown`).
//! Extended protocol: Parse remembers statement name → SQL, Bind portal →
//! (SQL, parameters), and each Execute is one `execute` record; an error
//! makes the server skip every message up to Sync, so those are dropped.
//! Named Parse is a `prepare` record; an unnamed one only when it fails.
//!
//! Authentication messages are never decoded. SSL accepted (`S`), GSS
//! encryption, or TLS from the first byte give one `undecodable` record
//! and silence; a stream that cannot be followed gives one `lost` record
//! and silence. Pure: no I/O, no clock; never panics.

use super::{Dir, MAX_IN_FLIGHT, MAX_PENDING_BYTES, Outcome, Protocol, Record, sql};
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::rc::Rc;

/// `proto` of every record.
pub const PROTO: &str = "postgres";

/// Bytes of a typed message header: type byte and Int32 length.
const TYPED_HEADER: usize = 5;
/// Bytes of a startup-phase header: Int32 length.
const UNTYPED_HEADER: usize = 4;
/// Largest message the server accepts (PQ_LARGE_MESSAGE_LIMIT, bytes).
const MAX_MESSAGE_BYTES: usize = 0x3fff_ffff;
/// SSLRequest code (1234 << 16 | 5679).
const SSL_REQUEST: u32 = 80_877_103;
/// GSSENCRequest code (1234 << 16 | 5680).
const GSSENC_REQUEST: u32 = 80_877_104;
/// Bytes of a startup-phase packet that tell whether it is one (length
/// and code).
const PEEK: usize = 8;
/// The longest startup packet [`Postgres::detect`] takes for one (bytes;
/// a CancelRequest or an encryption request is shorter).
const STARTUP_MAX: u32 = 10_000;
/// CancelRequest code (1234 << 16 | 5678).
const CANCEL_REQUEST: u32 = 80_877_102;
/// Major protocol version 3, in the high half of a StartupMessage code.
const PROTOCOL_MAJOR_3: u32 = 3;
/// First byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;
/// Most named statements and portals remembered per connection.
pub const MAX_PREPARED: usize = 65_536;

/// What the decoder is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Before and during authentication: startup-phase packets from the
    /// client until the StartupMessage; then until the first ReadyForQuery.
    Startup,
    /// Statements.
    Ready,
    /// `lost` or `undecodable` said; nothing more.
    Dead,
}

/// A message as the framer returns it.
enum Frame {
    /// Nothing complete in the rest of the chunk.
    Empty,
    /// A whole message: type (0 for startup-phase packets), body range,
    /// and whether the body is in the framer's buffer (else in the chunk).
    Whole {
        typ: u8,
        start: usize,
        end: usize,
        buffered: bool,
        time_us: i64,
    },
    /// A message whose body is skipped: its type.
    Skipped {
        typ: u8,
    },
    /// The one-byte answer to SSLRequest/GSSENCRequest.
    Byte(u8),
    Lost(String),
}

/// Continuous framing of one direction.
struct Framer {
    /// Startup-phase packets (no type byte) until the StartupMessage.
    untyped: bool,
    /// One-byte answers expected next (server, after SSL/GSS requests).
    bytes_expected: usize,
    /// Partial header, or header and partial body of a kept message.
    buf: Vec<u8>,
    /// Body bytes of a skipped message still to come.
    skip: usize,
    /// When the message in `buf` started.
    start_us: i64,
    /// Which message types stream by without their body.
    skipped: fn(u8) -> bool,
}

impl Framer {
    fn new(untyped: bool, skipped: fn(u8) -> bool) -> Framer {
        Framer {
            untyped,
            bytes_expected: 0,
            buf: Vec::new(),
            skip: 0,
            start_us: 0,
            skipped,
        }
    }

    fn header_len(&self) -> usize {
        if self.untyped {
            UNTYPED_HEADER
        } else {
            TYPED_HEADER
        }
    }

    /// Type and body length from a complete header.
    fn parse_header(&self, h: &[u8]) -> Result<(u8, usize), String> {
        let (typ, len_at) = if self.untyped { (0, 0) } else { (h[0], 1) };
        let len =
            u32::from_be_bytes([h[len_at], h[len_at + 1], h[len_at + 2], h[len_at + 3]]) as usize;
        if !(4..=MAX_MESSAGE_BYTES).contains(&len) {
            return Err(format!(
                "message {:?} with impossible length {len}",
                typ as char
            ));
        }
        Ok((typ, len - 4))
    }

    /// The next frame from `data[*pos..]`, advancing `pos`.
    fn next(&mut self, data: &[u8], pos: &mut usize, time_us: i64) -> Frame {
        loop {
            let rest = &data[(*pos).min(data.len())..];
            if self.skip > 0 {
                let n = self.skip.min(rest.len());
                self.skip -= n;
                *pos += n;
                if self.skip > 0 {
                    return Frame::Empty;
                }
                continue;
            }
            let hl = self.header_len();
            if self.buf.len() >= hl {
                // a kept message: its body may already be whole
                let (typ, body) = match self.parse_header(&self.buf[..hl]) {
                    Ok(v) => v,
                    Err(e) => return Frame::Lost(e),
                };
                let want = hl + body - self.buf.len();
                let n = want.min(rest.len());
                self.buf.extend_from_slice(&rest[..n]);
                *pos += n;
                if n < want {
                    return Frame::Empty;
                }
                return Frame::Whole {
                    typ,
                    start: hl,
                    end: hl + body,
                    buffered: true,
                    time_us: self.start_us,
                };
            }
            if rest.is_empty() {
                return Frame::Empty;
            }
            if self.bytes_expected > 0 && self.buf.is_empty() {
                self.bytes_expected -= 1;
                *pos += 1;
                return Frame::Byte(rest[0]);
            }
            if self.buf.is_empty() {
                // fast path: a whole header in the chunk
                if rest.len() >= hl {
                    let (typ, body) = match self.parse_header(&rest[..hl]) {
                        Ok(v) => v,
                        Err(e) => return Frame::Lost(e),
                    };
                    if (self.skipped)(typ) && !self.untyped {
                        *pos += hl;
                        self.skip = body;
                        return Frame::Skipped { typ };
                    }
                    if rest.len() >= hl + body {
                        let start = *pos + hl;
                        *pos += hl + body;
                        return Frame::Whole {
                            typ,
                            start,
                            end: start + body,
                            buffered: false,
                            time_us,
                        };
                    }
                    if body > MAX_PENDING_BYTES {
                        return Frame::Lost(format!(
                            "message {:?} of {body} bytes exceeds the cap of {MAX_PENDING_BYTES} bytes",
                            typ as char
                        ));
                    }
                }
                self.start_us = time_us;
            }
            // slow path: gather the header in buf
            let n = (hl - self.buf.len()).min(rest.len());
            self.buf.extend_from_slice(&rest[..n]);
            *pos += n;
            if self.buf.len() < hl {
                return Frame::Empty;
            }
            let (typ, body) = match self.parse_header(&self.buf[..hl]) {
                Ok(v) => v,
                Err(e) => return Frame::Lost(e),
            };
            if (self.skipped)(typ) && !self.untyped {
                self.buf.clear();
                self.skip = body;
                return Frame::Skipped { typ };
            }
            if body > MAX_PENDING_BYTES {
                return Frame::Lost(format!(
                    "message {:?} of {body} bytes exceeds the cap of {MAX_PENDING_BYTES} bytes",
                    typ as char
                ));
            }
            continue;
        }
    }
}

/// Client messages streamed by: CopyData and every `p` (passwords, SASL).
fn client_skipped(typ: u8) -> bool {
    matches!(typ, b'd' | b'p')
}

/// Server messages streamed by: rows, descriptions, copy data,
/// authentication, parameter status, notices, notifications.
fn server_skipped(typ: u8) -> bool {
    matches!(
        typ,
        b'D' | b'T' | b'd' | b'R' | b'S' | b'N' | b'A' | b't' | b'V' | b'v'
    )
}

/// Parameter values of one Bind.
/// Shared by the portal and each Execute of it: cloned only into records.
type Params = Option<Rc<Vec<Option<String>>>>;

/// The values of `p` for a record.
fn owned(p: Params) -> Option<Vec<Option<String>>> {
    p.map(|rc| Rc::try_unwrap(rc).unwrap_or_else(|rc| (*rc).clone()))
}

/// One statement of a `Q` and what became of it.
struct QueryPiece {
    /// End of its byte range in the query string.
    end: usize,
    /// Shared with its record: made once per statement.
    text: Rc<str>,
    copy: bool,
    reply: Option<Reply>,
}

/// The server's answer to one statement.
#[derive(Clone)]
struct Reply {
    status: Outcome,
    tag: Option<String>,
    rows: Option<u64>,
    error: Option<String>,
    at_us: i64,
}

/// A client request waiting for its answer.
enum Pending {
    Query {
        time_us: i64,
        text: String,
        pieces: Vec<QueryPiece>,
        /// Answers so far (CommandComplete, EmptyQuery), for the next piece.
        done: usize,
        rows: u64,
        error: Option<(Reply, Option<usize>)>,
        empty: Option<i64>,
    },
    Parse {
        time_us: i64,
        name: String,
        sql: Rc<str>,
    },
    Bind {
        time_us: i64,
        sql: Option<Rc<str>>,
        params: Params,
    },
    Describe,
    Execute {
        time_us: i64,
        sql: Option<Rc<str>>,
        params: Params,
        rows: u64,
        copy: bool,
    },
    Close,
    Sync {
        time_us: i64,
    },
    Call {
        time_us: i64,
        oid: u32,
        params: Params,
        error: Option<Reply>,
    },
}

/// The PostgreSQL decoder of one connection.
pub struct Postgres {
    client: Framer,
    server: Framer,
    phase: Phase,
    user: Option<Rc<str>>,
    service: Option<Rc<str>>,
    program: Option<Rc<str>>,
    pid: Option<u64>,
    /// Time of the StartupMessage, for the `connect` record.
    startup_us: Option<i64>,
    /// An SSLRequest or GSSENCRequest was sent: the client's next bytes
    /// tell whether the server accepted it.
    asked_encryption: bool,
    pending: VecDeque<Pending>,
    /// Bytes of SQL and parameters held by `pending`.
    pending_bytes: usize,
    statements: FxHashMap<String, Rc<str>>,
    portals: FxHashMap<String, (Option<Rc<str>>, Params)>,
    /// The unnamed portal and statement, those nearly every Bind uses
    /// (kept out of the maps and their cap of names).
    unnamed_portal: Option<(Option<Rc<str>>, Params)>,
    unnamed_statement: Option<Rc<str>>,
    /// Bytes of SQL and parameters held by the maps.
    map_bytes: usize,
    /// The server skips client messages until Sync (after an error in
    /// the extended protocol), those not yet read included.
    skip_to_sync: bool,
    /// Only the client's direction will come: emit requests at once.
    one_sided: bool,
}

impl Default for Postgres {
    fn default() -> Self {
        Postgres::new()
    }
}

impl Postgres {
    pub fn new() -> Postgres {
        Postgres {
            client: Framer::new(true, client_skipped),
            server: Framer::new(false, server_skipped),
            phase: Phase::Startup,
            user: None,
            service: None,
            program: None,
            pid: None,
            startup_us: None,
            asked_encryption: false,
            pending: VecDeque::new(),
            pending_bytes: 0,
            statements: FxHashMap::default(),
            portals: FxHashMap::default(),
            unnamed_portal: None,
            unnamed_statement: None,
            map_bytes: 0,
            skip_to_sync: false,
            one_sided: false,
        }
    }

    /// Whether `data` (a client's first bytes) is PostgreSQL: a plausible
    /// startup-phase packet, `None` while too short to tell.
    pub fn detect(data: &[u8]) -> Option<bool> {
        if data.len() < 8 {
            if let Some(l) = data.get(..4) {
                // the length alone can say no: the same answer as with
                // the code, however the bytes were cut
                let len = u32::from_be_bytes([l[0], l[1], l[2], l[3]]);
                return if (8..=STARTUP_MAX).contains(&len) {
                    None
                } else {
                    Some(false)
                };
            }
            return if data.iter().take(2).all(|&b| b == 0) {
                None
            } else {
                Some(false)
            };
        }
        let len = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
        let code = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
        let ok = match code {
            SSL_REQUEST | GSSENC_REQUEST => len == 8,
            CANCEL_REQUEST => (16..=268).contains(&len),
            c => c >> 16 == PROTOCOL_MAJOR_3 && (9..=STARTUP_MAX).contains(&len),
        };
        Some(ok)
    }

    fn record(&self, kind: &'static str, time_us: i64) -> Record {
        Record {
            proto: PROTO,
            time_us,
            user: self.user.clone(),
            service: self.service.clone(),
            program: self.program.clone(),
            server_session: self.pid,
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

    fn with_reply(
        &self,
        kind: &'static str,
        time_us: i64,
        statement: Option<Rc<str>>,
        reply: Option<&Reply>,
    ) -> Record {
        let mut r = self.record(kind, time_us);
        r.statement = statement;
        if let Some(reply) = reply {
            r.status = reply.status;
            r.tag = reply.tag.clone();
            r.rows = reply.rows;
            r.error = reply.error.clone();
            r.duration_us = Some(reply.at_us.saturating_sub(time_us).max(0));
        }
        r
    }

    /// Stop with one record of `kind` (`lost` or `undecodable`).
    fn die(&mut self, kind: &'static str, time_us: i64, why: String, out: &mut Vec<Record>) {
        if self.phase == Phase::Dead {
            return;
        }
        let mut r = self.record(kind, time_us);
        r.error = Some(why);
        r.exact = false;
        out.push(r);
        self.phase = Phase::Dead;
        self.pending.clear();
        self.statements.clear();
        self.portals.clear();
        self.unnamed_portal = None;
        self.unnamed_statement = None;
        self.client.buf = Vec::new();
        self.server.buf = Vec::new();
    }

    fn push(&mut self, p: Pending, time_us: i64, out: &mut Vec<Record>) {
        let bytes = pending_size(&p);
        if self.pending.len() >= MAX_IN_FLIGHT || self.pending_bytes + bytes > MAX_PENDING_BYTES {
            let why = format!(
                "more than {MAX_IN_FLIGHT} requests or {MAX_PENDING_BYTES} bytes awaiting the server's answer"
            );
            self.die("lost", time_us, why, out);
            return;
        }
        self.pending_bytes += bytes;
        self.pending.push_back(p);
        if self.one_sided {
            self.flush_unanswered(out);
        }
    }

    fn pop(&mut self) -> Option<Pending> {
        let p = self.pending.pop_front()?;
        self.pending_bytes = self.pending_bytes.saturating_sub(pending_size(&p));
        Some(p)
    }

    fn remember(
        &mut self,
        statement: bool,
        name: &str,
        add: usize,
        time_us: i64,
        out: &mut Vec<Record>,
    ) -> bool {
        let known = if statement {
            name.is_empty() || self.statements.contains_key(name)
        } else {
            name.is_empty() || self.portals.contains_key(name)
        };
        let count = self.statements.len() + self.portals.len();
        if (!known && count >= MAX_PREPARED) || self.map_bytes + add > MAX_PENDING_BYTES {
            let what = if statement { "statement" } else { "portal" };
            let why = format!(
                "{what} {name:?}: more than {MAX_PREPARED} prepared statements and portals or {MAX_PENDING_BYTES} bytes of them"
            );
            self.die("lost", time_us, why, out);
            return false;
        }
        self.map_bytes += add;
        true
    }

    // ----- client side -----

    fn client_message(&mut self, typ: u8, body: &[u8], time_us: i64, out: &mut Vec<Record>) {
        if self.client.untyped {
            // startup-phase packets have no type byte (typ is 0); a typed
            // message whose type byte is 0 is not one
            return self.startup_packet(body, time_us, out);
        }
        if self.skip_to_sync && typ != b'S' {
            return;
        }
        let mut r = Reader::new(body);
        match typ {
            b'Q' => {
                let Some(text) = r.cstr() else {
                    return self.malformed(typ, time_us, out);
                };
                let text = lossy(text);
                let pieces = sql::split_postgres(&text)
                    .into_iter()
                    .map(|p| QueryPiece {
                        end: p.end,
                        text: Rc::from(&text[p.start..p.end]),
                        copy: false,
                        reply: None,
                    })
                    .collect();
                let p = Pending::Query {
                    time_us,
                    text,
                    pieces,
                    done: 0,
                    rows: 0,
                    error: None,
                    empty: None,
                };
                self.push(p, time_us, out);
            }
            b'P' => {
                let (Some(name), Some(text)) = (r.cstr(), r.cstr()) else {
                    return self.malformed(typ, time_us, out);
                };
                let name = lossy(name);
                let sql: Rc<str> = Rc::from(&*String::from_utf8_lossy(text));
                if !self.remember(true, &name, sql.len(), time_us, out) {
                    return;
                }
                let old = if name.is_empty() {
                    self.unnamed_statement.replace(Rc::clone(&sql))
                } else {
                    self.statements.insert(name.clone(), Rc::clone(&sql))
                };
                if let Some(old) = old {
                    self.map_bytes = self.map_bytes.saturating_sub(old.len());
                }
                self.push(Pending::Parse { time_us, name, sql }, time_us, out);
            }
            b'B' => {
                let (Some(portal), Some(stmt)) = (r.cstr(), r.cstr()) else {
                    return self.malformed(typ, time_us, out);
                };
                let Some(params) = r.values() else {
                    return self.malformed(typ, time_us, out);
                };
                let portal = String::from_utf8_lossy(portal);
                let sql = if stmt.is_empty() {
                    self.unnamed_statement.clone()
                } else {
                    self.statements
                        .get(&*String::from_utf8_lossy(stmt))
                        .cloned()
                };
                let add = values_size(&params);
                if !self.remember(false, &portal, add, time_us, out) {
                    return;
                }
                let params = Some(Rc::new(params));
                let entry = (sql.clone(), params.clone());
                let old = if portal.is_empty() {
                    self.unnamed_portal.replace(entry)
                } else {
                    self.portals.insert(portal.into_owned(), entry)
                };
                if let Some((_, old)) = old {
                    self.map_bytes = self.map_bytes.saturating_sub(params_size(&old));
                }
                self.push(
                    Pending::Bind {
                        time_us,
                        sql,
                        params,
                    },
                    time_us,
                    out,
                );
            }
            b'E' => {
                let Some(portal) = r.cstr() else {
                    return self.malformed(typ, time_us, out);
                };
                let found = if portal.is_empty() {
                    self.unnamed_portal.as_ref()
                } else {
                    self.portals.get(&*String::from_utf8_lossy(portal))
                };
                let (sql, params) = found.cloned().unwrap_or((None, None));
                self.push(
                    Pending::Execute {
                        time_us,
                        sql,
                        params,
                        rows: 0,
                        copy: false,
                    },
                    time_us,
                    out,
                );
            }
            b'D' => self.push(Pending::Describe, time_us, out),
            b'C' => {
                let (Some(which), Some(name)) = (r.byte(), r.cstr()) else {
                    return self.malformed(typ, time_us, out);
                };
                let name = lossy(name);
                if which == b'S' {
                    let old = if name.is_empty() {
                        self.unnamed_statement.take()
                    } else {
                        self.statements.remove(&name)
                    };
                    if let Some(old) = old {
                        self.map_bytes = self.map_bytes.saturating_sub(old.len());
                    }
                } else if let Some((_, old)) = if name.is_empty() {
                    self.unnamed_portal.take()
                } else {
                    self.portals.remove(&name)
                } {
                    self.map_bytes = self.map_bytes.saturating_sub(params_size(&old));
                }
                self.push(Pending::Close, time_us, out);
            }
            b'S' => {
                self.skip_to_sync = false;
                self.push(Pending::Sync { time_us }, time_us, out);
            }
            b'F' => {
                let Some(oid) = r.u32() else {
                    return self.malformed(typ, time_us, out);
                };
                let Some(params) = r.values() else {
                    return self.malformed(typ, time_us, out);
                };
                let p = Pending::Call {
                    time_us,
                    oid,
                    params: Some(Rc::new(params)),
                    error: None,
                };
                self.push(p, time_us, out);
            }
            // Flush, Terminate, CopyDone, CopyFail: no answer of their own
            b'H' | b'X' | b'c' | b'f' => {}
            _ => {
                let why = format!("unknown client message type {:?}", typ as char);
                self.die("lost", time_us, why, out);
            }
        }
    }

    fn malformed(&mut self, typ: u8, time_us: i64, out: &mut Vec<Record>) {
        let why = format!("malformed client message {:?}", typ as char);
        self.die("lost", time_us, why, out);
    }

    /// A startup-phase packet: `body` is the code and what follows it.
    fn startup_packet(&mut self, body: &[u8], time_us: i64, out: &mut Vec<Record>) {
        let mut r = Reader::new(body);
        let Some(code) = r.u32() else {
            return self.malformed(0, time_us, out);
        };
        match code {
            SSL_REQUEST | GSSENC_REQUEST => {
                self.asked_encryption = true;
                self.server.bytes_expected += 1;
            }
            CANCEL_REQUEST => {
                let mut rec = self.record("cancel", time_us);
                rec.server_session = r.u32().map(u64::from);
                out.push(rec);
                self.phase = Phase::Dead;
            }
            c if c >> 16 == PROTOCOL_MAJOR_3 => {
                while let Some(name) = r.cstr() {
                    if name.is_empty() {
                        break;
                    }
                    let Some(value) = r.cstr() else { break };
                    let slot = match name {
                        b"user" => &mut self.user,
                        b"database" => &mut self.service,
                        b"application_name" => &mut self.program,
                        _ => continue,
                    };
                    *slot = Some(Rc::from(lossy(value)));
                }
                if self.service.is_none() {
                    // the server's default database is the user's name
                    self.service = self.user.clone();
                }
                self.startup_us = Some(time_us);
                self.asked_encryption = false;
                self.client.untyped = false;
            }
            c => {
                let why = format!("unknown startup packet code {c}");
                self.die("lost", time_us, why, out);
            }
        }
    }

    // ----- server side -----

    fn server_message(&mut self, typ: u8, body: &[u8], time_us: i64, out: &mut Vec<Record>) {
        if self.phase == Phase::Startup {
            return self.server_startup(typ, body, time_us, out);
        }
        match typ {
            b'C' => {
                let tag = Reader::new(body).cstr().map(lossy).unwrap_or_default();
                self.complete(Some(tag), time_us, out);
            }
            b'I' => self.complete(None, time_us, out),
            b's' => self.suspended(time_us, out),
            b'E' => self.error(body, time_us, out),
            b'Z' => self.ready(time_us, out),
            b'1' => match self.pop() {
                Some(Pending::Parse {
                    time_us: t,
                    name,
                    sql,
                }) => {
                    if !name.is_empty() {
                        let reply = ok_reply(None, None, time_us);
                        out.push(self.with_reply("prepare", t, Some(sql), Some(&reply)));
                    }
                }
                _ => self.mismatch(typ, time_us, out),
            },
            b'2' => match self.pop() {
                Some(Pending::Bind { .. }) => {}
                _ => self.mismatch(typ, time_us, out),
            },
            b'3' => match self.pop() {
                Some(Pending::Close) => {}
                _ => self.mismatch(typ, time_us, out),
            },
            b'n' => match self.pending.front() {
                Some(Pending::Describe) => {
                    self.pop();
                }
                _ => self.mismatch(typ, time_us, out),
            },
            b'G' | b'H' | b'W' => match self.pending.front_mut() {
                Some(Pending::Query { pieces, done, .. }) => {
                    if let Some(p) = pieces.get_mut(*done) {
                        p.copy = true;
                    }
                }
                Some(Pending::Execute { copy, .. }) => *copy = true,
                _ => self.mismatch(typ, time_us, out),
            },
            b'c' => {}
            b'K' => {
                if let Some(pid) = Reader::new(body).u32() {
                    self.pid = Some(u64::from(pid));
                }
            }
            _ => self.mismatch(typ, time_us, out),
        }
    }

    /// Body-less server messages that matter: DataRow counts, a
    /// RowDescription ends a Describe.
    fn server_skipped_message(&mut self, typ: u8, time_us: i64, out: &mut Vec<Record>) {
        if self.phase != Phase::Ready {
            return;
        }
        match typ {
            b'D' => match self.pending.front_mut() {
                Some(Pending::Query { rows, .. }) | Some(Pending::Execute { rows, .. }) => {
                    *rows = rows.saturating_add(1);
                }
                _ => self.mismatch(typ, time_us, out),
            },
            b'T' => match self.pending.front() {
                Some(Pending::Describe) => {
                    self.pop();
                }
                Some(Pending::Query { .. }) => {}
                _ => self.mismatch(typ, time_us, out),
            },
            _ => {}
        }
    }

    fn server_startup(&mut self, typ: u8, body: &[u8], time_us: i64, out: &mut Vec<Record>) {
        match typ {
            b'K' => {
                if let Some(pid) = Reader::new(body).u32() {
                    self.pid = Some(u64::from(pid));
                }
            }
            b'E' => {
                let t = self.startup_us.unwrap_or(time_us);
                let reply = error_reply(body, time_us);
                out.push(self.with_reply("connect", t, None, Some(&reply)));
            }
            b'Z' => {
                let t = self.startup_us.unwrap_or(time_us);
                let reply = ok_reply(None, None, time_us);
                out.push(self.with_reply("connect", t, None, Some(&reply)));
                self.phase = Phase::Ready;
            }
            _ => {}
        }
    }

    /// The one-byte answer to an SSLRequest or GSSENCRequest.
    fn encryption_answer(&mut self, b: u8, time_us: i64, out: &mut Vec<Record>) {
        match b {
            b'N' => {}
            b'S' => self.die(
                "undecodable",
                time_us,
                "TLS (SSLRequest accepted)".into(),
                out,
            ),
            b'G' => self.die("undecodable", time_us, "GSSAPI encryption".into(), out),
            // an old server answers with an ErrorResponse: a typed message
            b'E' => {
                self.server.bytes_expected = 0;
                self.server.buf.clear();
                self.server.buf.push(b'E');
            }
            b => {
                let why = format!("unexpected answer {b:#04x} to an encryption request");
                self.die("lost", time_us, why, out);
            }
        }
    }

    fn mismatch(&mut self, typ: u8, time_us: i64, out: &mut Vec<Record>) {
        let why = format!(
            "server message {:?} answers no pending request",
            typ as char
        );
        self.die("lost", time_us, why, out);
    }

    /// CommandComplete (`tag`) or EmptyQueryResponse (`None`).
    fn complete(&mut self, tag: Option<String>, time_us: i64, out: &mut Vec<Record>) {
        match self.pending.front_mut() {
            Some(Pending::Query {
                pieces,
                done,
                rows,
                empty,
                ..
            }) => {
                *rows = 0;
                if tag.is_none() && pieces.is_empty() {
                    *empty = Some(time_us);
                    return;
                }
                if let Some(p) = pieces.get_mut(*done) {
                    let rows = rows_of(tag.as_deref());
                    p.reply = Some(ok_reply(tag, rows, time_us));
                }
                *done += 1;
            }
            Some(Pending::Execute { .. }) => {
                let Some(Pending::Execute {
                    time_us: t,
                    sql,
                    params,
                    copy,
                    ..
                }) = self.pop()
                else {
                    return;
                };
                let reply = ok_reply(tag.clone(), rows_of(tag.as_deref()), time_us);
                let kind = if copy { "copy" } else { "execute" };
                let mut r = self.with_reply(kind, t, sql, Some(&reply));
                r.params = owned(params);
                out.push(r);
            }
            _ => self.mismatch(if tag.is_some() { b'C' } else { b'I' }, time_us, out),
        }
    }

    fn suspended(&mut self, time_us: i64, out: &mut Vec<Record>) {
        match self.pop() {
            Some(Pending::Execute {
                time_us: t,
                sql,
                params,
                rows,
                copy,
            }) => {
                let reply = ok_reply(None, Some(rows), time_us);
                let kind = if copy { "copy" } else { "execute" };
                let mut r = self.with_reply(kind, t, sql, Some(&reply));
                r.params = owned(params);
                out.push(r);
            }
            _ => self.mismatch(b's', time_us, out),
        }
    }

    fn error(&mut self, body: &[u8], time_us: i64, out: &mut Vec<Record>) {
        let reply = error_reply(body, time_us);
        let position = error_position(body);
        match self.pending.front_mut() {
            None => {
                // FATAL without a request (shutdown, idle timeout)
                out.push(self.with_reply("error", time_us, None, Some(&reply)));
                return;
            }
            Some(Pending::Query { error, .. }) => {
                *error = Some((reply, position));
                return;
            }
            Some(Pending::Call { error, .. }) => {
                *error = Some(reply);
                return;
            }
            Some(Pending::Sync { time_us: t }) => {
                // the commit at Sync failed; its ReadyForQuery follows
                let t = *t;
                out.push(self.with_reply("sync", t, None, Some(&reply)));
                return;
            }
            Some(_) => {}
        }
        // an extended-protocol message failed: it gets the error, the
        // server skips every message up to Sync
        match self.pop() {
            Some(Pending::Parse {
                time_us: t, sql, ..
            }) => {
                out.push(self.with_reply("prepare", t, Some(sql), Some(&reply)));
            }
            Some(Pending::Bind {
                time_us: t,
                sql,
                params,
            })
            | Some(Pending::Execute {
                time_us: t,
                sql,
                params,
                ..
            }) => {
                let mut r = self.with_reply("execute", t, sql, Some(&reply));
                r.params = owned(params);
                out.push(r);
            }
            Some(Pending::Describe) | Some(Pending::Close) => {
                out.push(self.with_reply("error", time_us, None, Some(&reply)));
            }
            _ => {}
        }
        while let Some(p) = self.pending.front() {
            if matches!(p, Pending::Sync { .. }) {
                return;
            }
            self.pop();
        }
        self.skip_to_sync = true;
    }

    fn ready(&mut self, time_us: i64, out: &mut Vec<Record>) {
        match self.pop() {
            Some(Pending::Sync { .. }) => {}
            Some(Pending::Query {
                time_us: t,
                text,
                pieces,
                error,
                empty,
                ..
            }) => {
                self.query_records(t, text, pieces, error, empty, out);
            }
            Some(Pending::Call {
                time_us: t,
                oid,
                params,
                error,
            }) => {
                let reply = error.unwrap_or_else(|| ok_reply(None, None, time_us));
                let mut r = self.with_reply("call", t, Some(call_text(oid).into()), Some(&reply));
                r.params = owned(params);
                out.push(r);
            }
            _ => self.mismatch(b'Z', time_us, out),
        }
    }

    /// The records of one `Q`, once its ReadyForQuery came.
    fn query_records(
        &self,
        t: i64,
        text: String,
        mut pieces: Vec<QueryPiece>,
        error: Option<(Reply, Option<usize>)>,
        empty: Option<i64>,
        out: &mut Vec<Record>,
    ) {
        let answered = pieces.iter().filter(|p| p.reply.is_some()).count();
        let consistent = match &error {
            None => answered == pieces.len() && !pieces.is_empty(),
            Some((_, pos)) => {
                let failed = pos
                    .and_then(|c| piece_at(&text, &pieces, c))
                    .unwrap_or(answered);
                if failed < pieces.len() && (failed == answered || answered == 0) {
                    pieces[failed].reply = error.as_ref().map(|(r, _)| r.clone());
                    true
                } else {
                    false
                }
            }
        };
        if consistent {
            for p in pieces {
                let kind = if p.copy { "copy" } else { "query" };
                out.push(self.with_reply(kind, t, Some(p.text), p.reply.as_ref()));
            }
            return;
        }
        // the split did not match the server's answers: one record
        let reply = match (
            error,
            pieces.iter().rev().find_map(|p| p.reply.clone()),
            empty,
        ) {
            (Some((r, _)), _, _) => r,
            (None, Some(r), _) => r,
            (None, None, Some(at)) => ok_reply(None, None, at),
            (None, None, None) => ok_reply(None, None, t),
        };
        let kind = if pieces.iter().any(|p| p.copy) {
            "copy"
        } else {
            "query"
        };
        out.push(self.with_reply(kind, t, Some(text.into()), Some(&reply)));
    }

    /// Emit every request still waiting, status `unknown`.
    fn flush_unanswered(&mut self, out: &mut Vec<Record>) {
        while let Some(p) = self.pop() {
            match p {
                Pending::Query {
                    time_us,
                    text,
                    pieces,
                    ..
                } => {
                    if pieces.is_empty() {
                        out.push(self.with_reply("query", time_us, Some(text.into()), None));
                    }
                    for p in pieces {
                        let kind = if p.copy { "copy" } else { "query" };
                        out.push(self.with_reply(kind, time_us, Some(p.text), p.reply.as_ref()));
                    }
                }
                Pending::Parse { time_us, name, sql } if !name.is_empty() => {
                    out.push(self.with_reply("prepare", time_us, Some(sql), None));
                }
                Pending::Execute {
                    time_us,
                    sql,
                    params,
                    copy,
                    ..
                } => {
                    let kind = if copy { "copy" } else { "execute" };
                    let mut r = self.with_reply(kind, time_us, sql, None);
                    r.params = owned(params);
                    out.push(r);
                }
                Pending::Call {
                    time_us,
                    oid,
                    params,
                    error,
                } => {
                    let mut r = self.with_reply(
                        "call",
                        time_us,
                        Some(call_text(oid).into()),
                        error.as_ref(),
                    );
                    r.params = owned(params);
                    out.push(r);
                }
                _ => {}
            }
        }
    }

    /// Only the client's direction will be fed (a recording made with
    /// `-l`): requests are emitted at once with status `unknown`.
    pub fn set_one_sided(&mut self, out: &mut Vec<Record>) {
        self.one_sided = true;
        if self.phase == Phase::Startup && !self.client.untyped {
            self.phase = Phase::Ready;
        }
        self.flush_unanswered(out);
    }

    fn feed_client(&mut self, time_us: i64, data: &[u8], out: &mut Vec<Record>) {
        let mut pos = 0;
        while self.phase != Phase::Dead {
            if self.asked_encryption && self.client.buf.len() < PEEK && pos < data.len() {
                // after SSLRequest/GSSENCRequest: TLS or GSS tokens, or
                // (refused) another startup packet; judged on the first
                // bytes of the next packet, however they were cut
                let mut peek = [0u8; PEEK];
                let held = self.client.buf.len();
                let take = (PEEK - held).min(data.len() - pos);
                peek[..held].copy_from_slice(&self.client.buf);
                peek[held..held + take].copy_from_slice(&data[pos..pos + take]);
                let peek = &peek[..held + take];
                if peek[0] == TLS_HANDSHAKE {
                    return self.die("undecodable", time_us, "TLS (after SSLRequest)".into(), out);
                }
                if Postgres::detect(peek) == Some(false) {
                    return self.die("undecodable", time_us, "GSSAPI encryption".into(), out);
                }
            }
            match self.client.next(data, &mut pos, time_us) {
                Frame::Empty => return,
                Frame::Whole {
                    typ,
                    start,
                    end,
                    buffered,
                    time_us: t,
                } => {
                    if buffered {
                        let buf = std::mem::take(&mut self.client.buf);
                        self.client_message(typ, &buf[start..end], t, out);
                        self.client.buf = buf;
                        self.client.buf.clear();
                    } else {
                        self.client_message(typ, &data[start..end], t, out);
                    }
                    if self.one_sided && self.phase == Phase::Startup && !self.client.untyped {
                        self.phase = Phase::Ready;
                    }
                }
                Frame::Skipped { .. } => {}
                Frame::Byte(_) => {}
                Frame::Lost(why) => return self.die("lost", time_us, why, out),
            }
        }
    }

    fn feed_server(&mut self, time_us: i64, data: &[u8], out: &mut Vec<Record>) {
        let mut pos = 0;
        while self.phase != Phase::Dead {
            match self.server.next(data, &mut pos, time_us) {
                Frame::Empty => return,
                Frame::Whole {
                    typ,
                    start,
                    end,
                    buffered,
                    ..
                } => {
                    if buffered {
                        let buf = std::mem::take(&mut self.server.buf);
                        self.server_message(typ, &buf[start..end], time_us, out);
                        self.server.buf = buf;
                        self.server.buf.clear();
                    } else {
                        self.server_message(typ, &data[start..end], time_us, out);
                    }
                }
                Frame::Skipped { typ, .. } => self.server_skipped_message(typ, time_us, out),
                Frame::Byte(b) => self.encryption_answer(b, time_us, out),
                Frame::Lost(why) => return self.die("lost", time_us, why, out),
            }
        }
    }
}

impl Protocol for Postgres {
    fn feed(&mut self, dir: Dir, time_us: i64, data: &[u8], out: &mut Vec<Record>) {
        if self.phase == Phase::Dead {
            return;
        }
        match dir {
            Dir::FromClient => {
                let at_start = self.phase == Phase::Startup
                    && self.client.untyped
                    && self.client.buf.is_empty();
                if at_start && data.first() == Some(&TLS_HANDSHAKE) {
                    let why = "TLS from the first byte".to_string();
                    return self.die("undecodable", time_us, why, out);
                }
                self.feed_client(time_us, data, out);
            }
            Dir::ToClient => {
                if !self.one_sided {
                    self.feed_server(time_us, data, out);
                }
            }
        }
    }

    fn finish(&mut self, out: &mut Vec<Record>) {
        if self.phase != Phase::Dead {
            self.flush_unanswered(out);
        }
    }

    fn one_sided(&mut self, out: &mut Vec<Record>) {
        self.set_one_sided(out);
    }
}

fn ok_reply(tag: Option<String>, rows: Option<u64>, at_us: i64) -> Reply {
    Reply {
        status: Outcome::Ok,
        tag,
        rows,
        error: None,
        at_us,
    }
}

/// SQLSTATE and message of an ErrorResponse body.
fn error_reply(body: &[u8], at_us: i64) -> Reply {
    let (mut code, mut message) = (None, None);
    for (f, v) in error_fields(body) {
        match f {
            b'C' => code = Some(lossy(v)),
            b'M' => message = Some(lossy(v)),
            _ => {}
        }
    }
    let error = match (code, message) {
        (Some(c), Some(m)) => format!("{c} {m}"),
        (Some(c), None) => c,
        (None, Some(m)) => m,
        (None, None) => String::new(),
    };
    Reply {
        status: Outcome::Error,
        tag: None,
        rows: None,
        error: Some(error),
        at_us,
    }
}

/// The 1-based character position of an error in the query string.
fn error_position(body: &[u8]) -> Option<usize> {
    error_fields(body)
        .find(|(f, _)| *f == b'P')
        .and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse().ok())
}

fn error_fields(body: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    let mut r = Reader::new(body);
    std::iter::from_fn(move || {
        let f = r.byte().filter(|&f| f != 0)?;
        Some((f, r.cstr()?))
    })
}

/// Which piece holds the 1-based character position `chars`.
fn piece_at(text: &str, pieces: &[QueryPiece], chars: usize) -> Option<usize> {
    let (byte, _) = text.char_indices().nth(chars.checked_sub(1)?)?;
    pieces.iter().position(|p| byte < p.end)
}

/// Rows affected or returned, from a CommandComplete tag.
pub fn rows_of(tag: Option<&str>) -> Option<u64> {
    let tag = tag?;
    let mut words = tag.split(' ');
    let first = words.next()?;
    let counted = [
        "SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "FETCH", "MOVE", "COPY",
    ];
    if !counted.contains(&first) {
        return None;
    }
    words.next_back()?.parse().ok()
}

fn call_text(oid: u32) -> String {
    format!("function call oid {oid}")
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn params_size(p: &Params) -> usize {
    p.as_ref().map_or(0, |v| values_size(v))
}

/// Bytes of parameter text held (a NULL holds none).
fn values_size(v: &[Option<String>]) -> usize {
    v.iter().map(|p| p.as_ref().map_or(0, String::len)).sum()
}

fn pending_size(p: &Pending) -> usize {
    match p {
        Pending::Query { text, .. } => text.len() * 2,
        Pending::Bind { params, .. }
        | Pending::Execute { params, .. }
        | Pending::Call { params, .. } => params_size(params),
        _ => 0,
    }
}

/// Reads message fields; every read is checked.
struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(b: &'a [u8]) -> Reader<'a> {
        Reader { b }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let v = self.b.get(..n)?;
        self.b = &self.b[n..];
        Some(v)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn cstr(&mut self) -> Option<&'a [u8]> {
        let end = self.b.iter().position(|&b| b == 0)?;
        let v = &self.b[..end];
        self.b = &self.b[end + 1..];
        Some(v)
    }

    /// Format codes, then values (Bind, FunctionCall): text as text,
    /// binary as `\x` and lower-case hex, NULL as `None`.
    fn values(&mut self) -> Option<Vec<Option<String>>> {
        let nfmt = usize::from(self.u16()?);
        let mut formats = Vec::with_capacity(nfmt.min(self.b.len() / 2));
        for _ in 0..nfmt {
            formats.push(self.u16()?);
        }
        let n = usize::from(self.u16()?);
        let mut values = Vec::with_capacity(n.min(self.b.len() / 4));
        for i in 0..n {
            let len = self.u32()? as i32;
            if len < 0 {
                values.push(None);
                continue;
            }
            let v = self.take(len as usize)?;
            let binary = match formats.len() {
                0 => false,
                1 => formats[0] == 1,
                _ => formats.get(i).copied()? == 1,
            };
            values.push(Some(if binary { hex(v) } else { lossy(v) }));
        }
        Some(values)
    }
}

fn hex(v: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 + v.len() * 2);
    s.push_str("\\x");
    for &b in v {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

#[cfg(test)]
mod tests;
