//! MySQL / MariaDB statement decoder (exact), SPEC "Statement audit",
//! AUDIT.md §2.2.
//!
//! Each direction is a continuous stream of packets (`int<3> length,
//! int<1> seq, payload`; a payload of 16 MiB - 1 continues in the next
//! packet), framed across chunk boundaries. After the server's OK to the
//! authentication, a connection that negotiated `CLIENT_COMPRESS` wraps
//! both directions in compressed frames (`int<3> compressed length,
//! int<1> seq, int<3> inflated length`, zlib or stored): those are
//! inflated into the stream first, then framed, so a frame may hold part
//! of a packet or many.
//!
//! The greeting gives the connection id (`server_session`) and the
//! server's capabilities; the HandshakeResponse the user, the database
//! (`service`) and the `program_name` attribute. Authentication data
//! (the response, AuthSwitch and AuthMoreData exchanges, COM_CHANGE_USER's
//! auth part) is skipped and never reaches a record. An SSLRequest gives
//! one `undecodable` record, then silence.
//!
//! Commands queue in order and each is paired with the server's reply:
//! COM_QUERY (with or without query attributes) gives one record per
//! statement of a multi-statement query (results flagged
//! SERVER_MORE_RESULTS_EXISTS are matched to the statements of a
//! quoting-aware split); COM_INIT_DB changes `service`; COM_STMT_PREPARE
//! remembers the text, parameter count and (from the first execute that
//! binds them) the parameter types of each statement, so COM_STMT_EXECUTE
//! and MariaDB's COM_STMT_BULK_EXECUTE give their values decoded from the
//! binary protocol (MariaDB's id 0xFFFFFFFF means the last prepared one);
//! COM_CHANGE_USER changes `user`. Rows returned are counted from result
//! sets, rows affected taken from OK packets, with or without
//! CLIENT_DEPRECATE_EOF.
//!
//! When only the client's direction was recorded (no greeting before
//! the HandshakeResponse) every command is emitted at once with status
//! `unknown`; statement ids are then assumed to be handed out from 1 in
//! order, as both servers do, and the parameter count is the number of
//! `?` placeholders.
//!
//! A stream this decoder cannot follow gives one `lost` record (the
//! reason in `error`) and nothing more for the connection. Pure: no I/O,
//! no clock; every length is untrusted; held state is capped.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use flate2::{Decompress, FlushDecompress, Status};

use super::{Dir, MAX_IN_FLIGHT, MAX_PENDING_BYTES, Outcome, Params, Protocol, Record};

/// `proto` of every record.
pub const PROTO: &str = "mysql";

/// Packet header: u24 LE payload length and a sequence number (bytes).
const HEADER_BYTES: usize = 4;
/// A payload of exactly this length continues in the next packet.
const MAX_PACKET_PAYLOAD: usize = 0xFF_FFFF;
/// Compressed frame header: u24 compressed length, seq, u24 inflated
/// length (bytes).
const COMPRESSED_HEADER_BYTES: usize = 7;
/// Most bytes of one logical packet (continuations joined) kept; the
/// rest is counted but dropped, so a huge statement is cut here.
const MAX_MESSAGE_BYTES: usize = MAX_PENDING_BYTES;
/// Most prepared statements remembered per connection.
const MAX_STATEMENTS: usize = 65_536;
/// Most bytes of statement text remembered over all prepared statements.
const MAX_STATEMENT_CACHE_BYTES: usize = MAX_PENDING_BYTES;
/// Most bytes of COM_STMT_SEND_LONG_DATA kept per parameter.
const MAX_LONG_DATA_BYTES: usize = 64 * 1024;
/// Most parameters decoded per execute (the protocol allows 65535).
const MAX_PARAMS: usize = 65_535;
/// Most rows of values shown per COM_STMT_BULK_EXECUTE.
const MAX_BULK_ROWS: usize = 1024;

/// Protocol version byte that opens a HandshakeV10 greeting.
const GREETING_V10: u8 = 0x0a;
/// SSLRequest payload: caps, max packet, charset, filler (bytes).
const SSL_REQUEST_BYTES: usize = 32;
/// HandshakeResponse41 fixed part before the user name (bytes).
const RESPONSE41_FIXED_BYTES: usize = 32;
/// HandshakeResponse320 fixed part: caps u16, max packet u24 (bytes).
const RESPONSE320_FIXED_BYTES: usize = 5;
/// Offset of MariaDB's extended capabilities in the response's filler.
const RESPONSE_EXT_CAPS_AT: usize = 28;
/// Reserved bytes of the greeting; MariaDB's extended caps are the last 4.
const GREETING_RESERVED_BYTES: usize = 10;

// Capability flags (CLIENT_*); MariaDB's extended ones shifted by 32.
const CLIENT_LONG_PASSWORD: u64 = 1;
const CLIENT_CONNECT_WITH_DB: u64 = 0x8;
const CLIENT_COMPRESS: u64 = 0x20;
const CLIENT_PROTOCOL_41: u64 = 0x200;
const CLIENT_SSL: u64 = 0x800;
const CLIENT_SECURE_CONNECTION: u64 = 0x8000;
const CLIENT_PLUGIN_AUTH: u64 = 0x8_0000;
const CLIENT_CONNECT_ATTRS: u64 = 0x10_0000;
const CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA: u64 = 0x20_0000;
const CLIENT_SESSION_TRACK: u64 = 0x80_0000;
const CLIENT_DEPRECATE_EOF: u64 = 0x100_0000;
const CLIENT_OPTIONAL_RESULTSET_METADATA: u64 = 0x200_0000;
const CLIENT_ZSTD_COMPRESSION: u64 = 0x400_0000;
const CLIENT_QUERY_ATTRIBUTES: u64 = 0x800_0000;
const MARIADB_CLIENT_PROGRESS: u64 = 1 << 32;
const MARIADB_CLIENT_CACHE_METADATA: u64 = 1 << 36;

// Server status flags.
const SERVER_STATUS_CURSOR_EXISTS: u16 = 0x0040;
const SERVER_MORE_RESULTS_EXISTS: u16 = 0x0008;
const SERVER_SESSION_STATE_CHANGED: u16 = 0x4000;

// First payload bytes of the server's answers.
const OK: u8 = 0x00;
const AUTH_MORE_DATA: u8 = 0x01;
const LOCAL_INFILE: u8 = 0xfb;
const EOF: u8 = 0xfe;
const ERR: u8 = 0xff;
/// An EOF packet is shorter than this (a row starting 0xfe is longer).
const EOF_MAX_BYTES: usize = 9;
/// ERR code of a MariaDB progress report (not an answer).
const PROGRESS_REPORT: u16 = 0xffff;
/// Session-state-change entry type carrying the new default schema.
const SESSION_TRACK_SCHEMA: u8 = 1;

// Commands.
const COM_QUIT: u8 = 0x01;
const COM_INIT_DB: u8 = 0x02;
const COM_QUERY: u8 = 0x03;
const COM_FIELD_LIST: u8 = 0x04;
const COM_CREATE_DB: u8 = 0x05;
const COM_DROP_DB: u8 = 0x06;
const COM_REFRESH: u8 = 0x07;
const COM_SHUTDOWN: u8 = 0x08;
const COM_STATISTICS: u8 = 0x09;
const COM_PROCESS_INFO: u8 = 0x0a;
const COM_PROCESS_KILL: u8 = 0x0c;
const COM_DEBUG: u8 = 0x0d;
const COM_PING: u8 = 0x0e;
const COM_CHANGE_USER: u8 = 0x11;
const COM_STMT_PREPARE: u8 = 0x16;
const COM_STMT_EXECUTE: u8 = 0x17;
const COM_STMT_SEND_LONG_DATA: u8 = 0x18;
const COM_STMT_CLOSE: u8 = 0x19;
const COM_STMT_RESET: u8 = 0x1a;
const COM_SET_OPTION: u8 = 0x1b;
const COM_STMT_FETCH: u8 = 0x1c;
const COM_RESET_CONNECTION: u8 = 0x1f;
const COM_STMT_BULK_EXECUTE: u8 = 0xfa;

/// MariaDB's statement id for "the statement prepared last".
const LAST_PREPARED: u32 = 0xffff_ffff;
/// COM_STMT_EXECUTE flag: a parameter count follows (query attributes).
const PARAMETER_COUNT_AVAILABLE: u8 = 0x08;
/// COM_STMT_BULK_EXECUTE flag: types are sent.
const BULK_SEND_TYPES: u16 = 128;
// Bulk indicators.
const BULK_INDICATOR_NONE: u8 = 0;
const BULK_INDICATOR_NULL: u8 = 1;
const BULK_INDICATOR_DEFAULT: u8 = 2;
const BULK_INDICATOR_IGNORE: u8 = 3;
/// Parameter flag byte: the integer is unsigned.
const PARAM_UNSIGNED: u8 = 0x80;

// Binary protocol column types.
const T_DECIMAL: u8 = 0x00;
const T_TINY: u8 = 0x01;
const T_SHORT: u8 = 0x02;
const T_LONG: u8 = 0x03;
const T_FLOAT: u8 = 0x04;
const T_DOUBLE: u8 = 0x05;
const T_NULL: u8 = 0x06;
const T_TIMESTAMP: u8 = 0x07;
const T_LONGLONG: u8 = 0x08;
const T_INT24: u8 = 0x09;
const T_DATE: u8 = 0x0a;
const T_TIME: u8 = 0x0b;
const T_DATETIME: u8 = 0x0c;
const T_YEAR: u8 = 0x0d;
const T_NEWDATE: u8 = 0x0e;
const T_VARCHAR: u8 = 0x0f;
const T_BIT: u8 = 0x10;
const T_TIMESTAMP2: u8 = 0x11;
const T_DATETIME2: u8 = 0x12;
const T_TIME2: u8 = 0x13;
const T_JSON: u8 = 0xf5;
const T_NEWDECIMAL: u8 = 0xf6;
const T_GEOMETRY: u8 = 0xff;

/// How a NULL parameter value is shown.
/// A NULL query attribute, in its `name=value` text.
const NULL_PARAM: &str = "NULL";

/// Where the connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the server's greeting.
    Greeting,
    /// Greeting seen; waiting for the client's HandshakeResponse.
    Response,
    /// Authentication exchange until the server's OK or ERR.
    Auth,
    /// Command phase.
    Command,
    /// TLS, lost, or ended: nothing more is decoded.
    Stopped,
}

/// Framing state of one direction.
#[derive(Default)]
struct Half {
    framer: Framer,
    inflater: Inflater,
}

/// One logical packet: continuations joined.
struct Packet {
    seq: u8,
    /// The payload, at most [`MAX_MESSAGE_BYTES`] of it.
    payload: Vec<u8>,
    /// The payload's full length.
    len: usize,
    /// When its first byte was read.
    time_us: i64,
}

/// Packet framer: takes bytes of the plain stream, hands out packets.
#[derive(Default)]
struct Framer {
    header: [u8; HEADER_BYTES],
    header_fill: usize,
    /// Payload bytes still due of the current physical packet.
    left: usize,
    in_packet: bool,
    /// The current physical packet is a full one: another follows.
    continues: bool,
    /// A logical packet has begun.
    started: bool,
    seq: u8,
    time_us: i64,
    payload: Vec<u8>,
    len: usize,
}

impl Framer {
    /// Consumes `data` up to the end of the next complete logical packet
    /// (returned) or entirely.
    fn next(&mut self, data: &mut &[u8], time_us: i64) -> Option<Packet> {
        loop {
            if !self.in_packet {
                if data.is_empty() {
                    return None;
                }
                if self.header_fill == 0 && !self.started {
                    self.time_us = time_us;
                }
                let take = (HEADER_BYTES - self.header_fill).min(data.len());
                self.header[self.header_fill..self.header_fill + take]
                    .copy_from_slice(&data[..take]);
                self.header_fill += take;
                *data = &data[take..];
                if self.header_fill < HEADER_BYTES {
                    return None;
                }
                self.header_fill = 0;
                let [b0, b1, b2, seq] = self.header;
                let length = usize::from(b0) | usize::from(b1) << 8 | usize::from(b2) << 16;
                if !self.started {
                    self.started = true;
                    self.seq = seq;
                    self.payload = Vec::new();
                    self.len = 0;
                }
                self.left = length;
                self.continues = length == MAX_PACKET_PAYLOAD;
                self.in_packet = true;
            } else {
                let take = self.left.min(data.len());
                let room = MAX_MESSAGE_BYTES.saturating_sub(self.payload.len());
                self.payload.extend_from_slice(&data[..take.min(room)]);
                self.len = self.len.saturating_add(take);
                self.left -= take;
                *data = &data[take..];
            }
            if self.in_packet && self.left == 0 {
                self.in_packet = false;
                if !self.continues {
                    self.started = false;
                    return Some(Packet {
                        seq: self.seq,
                        payload: std::mem::take(&mut self.payload),
                        len: self.len,
                        time_us: self.time_us,
                    });
                }
            }
            if data.is_empty() && self.in_packet {
                return None;
            }
        }
    }
}

/// Compressed-frame reader: takes raw bytes, hands out inflated frames.
#[derive(Default)]
struct Inflater {
    header: [u8; COMPRESSED_HEADER_BYTES],
    header_fill: usize,
    in_frame: bool,
    /// Compressed bytes still due of the current frame.
    left: usize,
    /// Inflated length from the header (0: stored).
    inflated: usize,
    frame: Vec<u8>,
}

impl Inflater {
    /// Consumes `data` up to the end of the next frame and returns its
    /// plain bytes, or consumes all of `data` and returns `None`.
    fn next(&mut self, data: &mut &[u8]) -> Result<Option<Vec<u8>>, String> {
        loop {
            if !self.in_frame {
                if data.is_empty() {
                    return Ok(None);
                }
                let take = (COMPRESSED_HEADER_BYTES - self.header_fill).min(data.len());
                self.header[self.header_fill..self.header_fill + take]
                    .copy_from_slice(&data[..take]);
                self.header_fill += take;
                *data = &data[take..];
                if self.header_fill < COMPRESSED_HEADER_BYTES {
                    return Ok(None);
                }
                self.header_fill = 0;
                let h = self.header;
                self.left = usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16;
                self.inflated =
                    usize::from(h[4]) | usize::from(h[5]) << 8 | usize::from(h[6]) << 16;
                self.frame = Vec::with_capacity(self.left.min(64 * 1024));
                self.in_frame = true;
            } else {
                let take = self.left.min(data.len());
                self.frame.extend_from_slice(&data[..take]);
                self.left -= take;
                *data = &data[take..];
            }
            if self.in_frame && self.left == 0 {
                self.in_frame = false;
                let frame = std::mem::take(&mut self.frame);
                if self.inflated == 0 {
                    return Ok(Some(frame));
                }
                return inflate(&frame, self.inflated).map(Some);
            }
            if data.is_empty() {
                return Ok(None);
            }
        }
    }
}

/// Inflates one zlib frame to exactly `size` bytes (never more).
fn inflate(frame: &[u8], size: usize) -> Result<Vec<u8>, String> {
    let mut z = Decompress::new(true);
    let mut out = Vec::with_capacity(size);
    match z.decompress_vec(frame, &mut out, FlushDecompress::Finish) {
        Ok(Status::StreamEnd) if out.len() == size => Ok(out),
        Ok(_) => Err(format!(
            "compressed frame does not inflate to its stated {size} bytes"
        )),
        Err(e) => Err(format!("cannot inflate a compressed frame: {e}")),
    }
}

/// A prepared statement.
struct Stmt {
    sql: String,
    params: usize,
    /// Type and flag byte per parameter, from the last execute that sent them.
    types: Option<Vec<(u8, u8)>>,
    /// COM_STMT_SEND_LONG_DATA per parameter since the last execute.
    long: HashMap<u16, Vec<u8>>,
}

/// A statement and parameters resolved for an execute.
#[derive(Default)]
struct Resolved {
    sql: Option<String>,
    params: Option<Params>,
}

/// What a command is, for its record.
enum Req {
    Query {
        text: String,
        attrs: Option<Params>,
        /// Byte ranges of the statements, split when first needed.
        pieces: Option<Vec<(usize, usize)>>,
        /// Index of the statement the next result belongs to.
        piece: usize,
        /// `USE db` statements: their schema, for `service`.
        use_db: Option<String>,
    },
    InitDb(String),
    Prepare(String),
    Execute {
        payload: Vec<u8>,
        resolved: Option<Resolved>,
    },
    Bulk {
        payload: Vec<u8>,
        resolved: Option<Resolved>,
    },
    ChangeUser {
        user: Option<String>,
        db: Option<String>,
    },
    /// A command whose reply is consumed but gives no record.
    Silent,
}

/// The shape of the reply a command expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// OK, ERR, LOCAL INFILE or result set(s).
    ResultSet { binary: bool },
    /// One OK, ERR or EOF.
    Single,
    /// Any one packet.
    One,
    /// COM_STMT_PREPARE_OK and its metadata, or ERR.
    Prepare,
    /// Column definitions until EOF or ERR.
    FieldList,
    /// Rows until EOF or ERR.
    Rows,
    /// Authentication exchange until OK or ERR.
    Auth,
}

/// Where a reply is within a result set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rs {
    Start,
    Columns(u64),
    ColumnsEof,
    Rows,
    /// LOCAL INFILE: the client sends the file, then an empty packet.
    Infile,
    /// After the infile upload: the server's OK or ERR.
    InfileDone,
    /// PREPARE_OK seen: this many metadata packets are still due.
    Metadata(u64),
}

/// The answer to one statement (or one result of several).
#[derive(Clone, Debug, Default)]
struct Res {
    error: Option<String>,
    failed: bool,
    tag: Option<&'static str>,
    rows: Option<u64>,
    more: bool,
    /// A result set (not a bare OK).
    result_set: bool,
    schema: Option<String>,
}

impl Res {
    /// `self` followed by `next` for one record: rows add up, the last
    /// tag stands, the first error stands.
    fn then(self, next: Res) -> Res {
        Res {
            rows: match (self.rows, next.rows) {
                (Some(a), Some(b)) => Some(a.saturating_add(b)),
                (a, b) => a.or(b),
            },
            failed: self.failed || next.failed,
            error: self.error.or(next.error),
            tag: next.tag.or(self.tag),
            more: next.more,
            result_set: next.result_set,
            schema: next.schema.or(self.schema),
        }
    }
}

/// A command awaiting (the rest of) its reply.
struct Pending {
    req: Req,
    expect: Expect,
    time_us: i64,
    rs: Rs,
    rows: u64,
    /// Results folded into the current record so far.
    acc: Option<Res>,
}

/// The MySQL / MariaDB decoder of one connection.
pub struct MySql {
    phase: Phase,
    halves: [Half; 2],
    compressed: bool,
    /// Capabilities the server offered / both sides agreed on.
    server_caps: u64,
    caps: u64,
    /// Only the client's direction is recorded.
    one_way: bool,
    user: Option<Rc<str>>,
    service: Option<Rc<str>>,
    program: Option<Rc<str>>,
    server_session: Option<u64>,
    pending: VecDeque<Pending>,
    stmts: HashMap<u32, Stmt>,
    stmt_bytes: usize,
    last_prepared: Option<u32>,
    /// One-way mode: the id the server will give the next prepare.
    next_stmt_id: u32,
}

impl Default for MySql {
    fn default() -> Self {
        Self::new()
    }
}

impl MySql {
    pub fn new() -> MySql {
        MySql {
            phase: Phase::Greeting,
            halves: [Half::default(), Half::default()],
            compressed: false,
            server_caps: 0,
            caps: 0,
            one_way: false,
            user: None,
            service: None,
            program: None,
            server_session: None,
            pending: VecDeque::new(),
            stmts: HashMap::new(),
            stmt_bytes: 0,
            last_prepared: None,
            next_stmt_id: 1,
        }
    }

    fn has(&self, cap: u64) -> bool {
        self.caps & cap != 0
    }

    /// A record with the connection's identity filled in.
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
            exact: true,
        }
    }

    /// Stops decoding with one `lost` record saying why.
    fn lose(&mut self, why: String, time_us: i64, out: &mut Vec<Record>) {
        self.flush_pending(out);
        let mut r = self.record("lost", time_us);
        r.error = Some(why);
        r.exact = false;
        out.push(r);
        self.stop();
    }

    /// Stops decoding with one `undecodable` record.
    fn undecodable(&mut self, why: &str, time_us: i64, out: &mut Vec<Record>) {
        let mut r = self.record("undecodable", time_us);
        r.error = Some(why.to_string());
        r.exact = false;
        out.push(r);
        self.stop();
    }

    /// Drops all state; nothing more is decoded.
    fn stop(&mut self) {
        self.phase = Phase::Stopped;
        self.halves = [Half::default(), Half::default()];
        self.pending.clear();
        self.stmts.clear();
        self.stmt_bytes = 0;
    }

    fn half(dir: Dir) -> usize {
        match dir {
            Dir::FromClient => 0,
            Dir::ToClient => 1,
        }
    }

    fn packet(&mut self, dir: Dir, p: Packet, out: &mut Vec<Record>) {
        let time_us = p.time_us;
        let result = match (self.phase, dir) {
            (Phase::Stopped, _) => Ok(()),
            (Phase::Greeting, Dir::ToClient) => self.greeting(&p),
            (Phase::Greeting, Dir::FromClient) if p.seq == 1 => {
                // no greeting recorded: the client's direction only
                self.one_way = true;
                self.response(&p, out)
            }
            (Phase::Greeting, Dir::FromClient) => {
                Err("the client spoke before the server's greeting".to_string())
            }
            (Phase::Response, Dir::FromClient) => self.response(&p, out),
            (Phase::Response, Dir::ToClient) => {
                Err("the server sent a packet before the client's handshake".to_string())
            }
            (Phase::Auth, Dir::ToClient) => self.auth_reply(&p, out),
            (Phase::Auth, Dir::FromClient) => {
                if self.one_way && p.seq == 0 {
                    self.phase = Phase::Command;
                    if self.has(CLIENT_COMPRESS) {
                        // that "packet" is a compressed frame's start
                        self.compressed = true;
                        self.refeed_as_compressed(p, out)
                    } else {
                        self.command(p, out)
                    }
                } else {
                    // authentication data: never looked at
                    Ok(())
                }
            }
            (Phase::Command, Dir::FromClient) => self.client_in_command(p, out),
            (Phase::Command, Dir::ToClient) => self.reply(p, out),
        };
        if let Err(why) = result {
            self.lose(why, time_us, out);
        }
    }

    /// One-way mode: a compressed frame was framed as a plain packet;
    /// give its bytes back to the inflater.
    fn refeed_as_compressed(&mut self, p: Packet, out: &mut Vec<Record>) -> Result<(), String> {
        let len = u32::try_from(p.len).unwrap_or(u32::MAX).to_le_bytes();
        let mut bytes = vec![len[0], len[1], len[2], p.seq];
        bytes.extend_from_slice(&p.payload);
        self.feed_compressed(Dir::FromClient, p.time_us, &bytes, out);
        Ok(())
    }

    /// HandshakeV10 (or an ERR instead of one).
    fn greeting(&mut self, p: &Packet) -> Result<(), String> {
        let mut r = Rd(&p.payload);
        match r.u8() {
            Some(GREETING_V10) => {}
            Some(ERR) => {
                // refused before the handshake: nothing to audit
                self.stop();
                return Ok(());
            }
            _ => return Err("the server's first packet is not a greeting".to_string()),
        }
        let parsed = (|| {
            r.cstr()?;
            let id = r.u32()?;
            r.take(9)?;
            let low = u64::from(r.u16()?);
            Some((id, low))
        })();
        let Some((id, low)) = parsed else {
            return Err("the server's greeting is cut short".to_string());
        };
        self.server_session = Some(u64::from(id));
        let mut caps = low;
        let rest = (|| {
            r.u8()?;
            r.u16()?;
            let high = u64::from(r.u16()?);
            r.u8()?;
            let reserved = r.take(GREETING_RESERVED_BYTES)?;
            Some((high, reserved))
        })();
        if let Some((high, reserved)) = rest {
            caps |= high << 16;
            if caps & CLIENT_LONG_PASSWORD == 0 {
                // MariaDB: extended capabilities in the reserved bytes
                let ext = Rd(&reserved[GREETING_RESERVED_BYTES - 4..])
                    .u32()
                    .unwrap_or(0);
                caps |= u64::from(ext) << 32;
            }
        }
        self.server_caps = caps;
        self.phase = Phase::Response;
        Ok(())
    }

    /// SSLRequest, HandshakeResponse41 or HandshakeResponse320.
    fn response(&mut self, p: &Packet, out: &mut Vec<Record>) -> Result<(), String> {
        let b = &p.payload;
        let mut r = Rd(b);
        let Some(low) = r.clone().u16() else {
            return Err("the client's handshake response is cut short".to_string());
        };
        if u64::from(low) & CLIENT_PROTOCOL_41 == 0 {
            let caps = u64::from(low);
            if caps & CLIENT_SSL != 0 && b.len() == RESPONSE320_FIXED_BYTES {
                self.undecodable("TLS (SSLRequest)", p.time_us, out);
                return Ok(());
            }
            self.caps = caps & self.offered();
            let mut r = Rd(b.get(RESPONSE320_FIXED_BYTES..).unwrap_or_default());
            self.user = r.cstr().map(|b| Rc::from(text(b)));
            self.phase = Phase::Auth;
            return Ok(());
        }
        let Some(mut caps) = r.u32().map(u64::from) else {
            return Err("the client's handshake response is cut short".to_string());
        };
        if caps & CLIENT_SSL != 0 && b.len() == SSL_REQUEST_BYTES {
            self.undecodable("TLS (SSLRequest)", p.time_us, out);
            return Ok(());
        }
        // MariaDB: extended capabilities at the end of the filler
        let mariadb = if self.one_way {
            caps & CLIENT_LONG_PASSWORD == 0
        } else {
            self.server_caps & CLIENT_LONG_PASSWORD == 0
        };
        if mariadb && let Some(ext) = b.get(RESPONSE_EXT_CAPS_AT..).and_then(|s| Rd(s).u32()) {
            caps |= u64::from(ext) << 32;
        }
        self.caps = caps & self.offered();
        let Some(rest) = b.get(RESPONSE41_FIXED_BYTES..) else {
            return Err("the client's handshake response is cut short".to_string());
        };
        let mut r = Rd(rest);
        self.user = r.cstr().map(|b| Rc::from(text(b)));
        // auth data: skipped, never kept
        let skipped = if caps & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
            r.lenenc_bytes().map(|_| ())
        } else if caps & CLIENT_SECURE_CONNECTION != 0 {
            r.u8().and_then(|n| r.take(usize::from(n))).map(|_| ())
        } else {
            r.cstr().map(|_| ())
        };
        if skipped.is_some() {
            if caps & CLIENT_CONNECT_WITH_DB != 0 {
                self.service = r.cstr().map(text).filter(|s| !s.is_empty()).map(Rc::from);
            }
            if caps & CLIENT_PLUGIN_AUTH != 0 {
                r.cstr();
            }
            if caps & CLIENT_CONNECT_ATTRS != 0
                && let Some(attrs) = r.lenenc_bytes()
            {
                self.program = program_name(attrs).map(Rc::from);
            }
        }
        self.phase = Phase::Auth;
        Ok(())
    }

    /// Capabilities the server offered (all of them when it was not seen).
    fn offered(&self) -> u64 {
        if self.one_way {
            u64::MAX
        } else {
            self.server_caps
        }
    }

    /// The server's answers during authentication.
    fn auth_reply(&mut self, p: &Packet, out: &mut Vec<Record>) -> Result<(), String> {
        match p.payload.first() {
            Some(&OK) => {
                self.phase = Phase::Command;
                if self.has(CLIENT_COMPRESS) {
                    if self.has(CLIENT_ZSTD_COMPRESSION) {
                        self.undecodable("zstd compression", p.time_us, out);
                        return Ok(());
                    }
                    self.compressed = true;
                }
                Ok(())
            }
            Some(&ERR) => {
                let mut r = self.record("connect", p.time_us);
                r.status = Outcome::Error;
                r.error = Some(err_text(&p.payload, true));
                out.push(r);
                self.stop();
                Ok(())
            }
            // AuthSwitchRequest, AuthMoreData: more exchange follows
            Some(&EOF) | Some(&AUTH_MORE_DATA) => Ok(()),
            _ => Err("unexpected packet during authentication".to_string()),
        }
    }

    /// A client packet in the command phase: data owed to the current
    /// command (infile upload, change-user auth) or a new command.
    fn client_in_command(&mut self, p: Packet, out: &mut Vec<Record>) -> Result<(), String> {
        if let Some(head) = self.pending.front_mut() {
            if head.rs == Rs::Infile {
                if p.len == 0 {
                    head.rs = Rs::InfileDone;
                }
                return Ok(());
            }
            if head.expect == Expect::Auth && p.seq != 0 {
                return Ok(());
            }
        }
        self.command(p, out)
    }

    /// A new command from the client.
    fn command(&mut self, p: Packet, out: &mut Vec<Record>) -> Result<(), String> {
        let b = &p.payload;
        let Some((&cmd, body)) = b.split_first() else {
            return Err("empty command packet".to_string());
        };
        let (req, expect) = match cmd {
            COM_QUERY => {
                let (attrs, sql) = if self.has(CLIENT_QUERY_ATTRIBUTES) {
                    query_attributes(body)
                        .ok_or_else(|| "COM_QUERY attributes cut short".to_string())?
                } else {
                    (None, body)
                };
                let text = text(sql);
                let use_db = use_schema(&text);
                let req = Req::Query {
                    text,
                    attrs,
                    pieces: None,
                    piece: 0,
                    use_db,
                };
                (req, Expect::ResultSet { binary: false })
            }
            COM_INIT_DB => (Req::InitDb(text(body)), Expect::Single),
            COM_STMT_PREPARE => {
                let sql = text(body);
                if self.one_way {
                    let id = self.next_stmt_id;
                    self.next_stmt_id = id.wrapping_add(1);
                    let params = placeholders(&sql);
                    self.remember(id, sql.clone(), params)?;
                }
                (Req::Prepare(sql), Expect::Prepare)
            }
            COM_STMT_EXECUTE => {
                let resolved = self.resolvable(body).then(|| self.resolve_execute(body));
                let req = Req::Execute {
                    payload: if resolved.is_some() {
                        Vec::new()
                    } else {
                        body.to_vec()
                    },
                    resolved,
                };
                (req, Expect::ResultSet { binary: true })
            }
            COM_STMT_BULK_EXECUTE => {
                let resolved = self.resolvable(body).then(|| self.resolve_bulk(body));
                let req = Req::Bulk {
                    payload: if resolved.is_some() {
                        Vec::new()
                    } else {
                        body.to_vec()
                    },
                    resolved,
                };
                (req, Expect::ResultSet { binary: true })
            }
            COM_STMT_SEND_LONG_DATA => {
                self.long_data(body);
                return Ok(());
            }
            COM_STMT_CLOSE => {
                if let Some(id) = Rd(body).u32()
                    && let Some(s) = self.stmts.remove(&self.stmt_id(id))
                {
                    self.stmt_bytes = self.stmt_bytes.saturating_sub(s.sql.len());
                }
                return Ok(());
            }
            COM_QUIT => return Ok(()),
            COM_CHANGE_USER => {
                let (user, db) = self.change_user(body);
                (Req::ChangeUser { user, db }, Expect::Auth)
            }
            COM_RESET_CONNECTION => {
                self.forget_statements();
                (Req::Silent, Expect::Single)
            }
            COM_PING | COM_STMT_RESET | COM_SET_OPTION | COM_DEBUG | COM_PROCESS_KILL
            | COM_REFRESH | COM_SHUTDOWN | COM_CREATE_DB | COM_DROP_DB => {
                (Req::Silent, Expect::Single)
            }
            COM_STATISTICS => (Req::Silent, Expect::One),
            COM_PROCESS_INFO => (Req::Silent, Expect::ResultSet { binary: false }),
            COM_FIELD_LIST => (Req::Silent, Expect::FieldList),
            COM_STMT_FETCH => (Req::Silent, Expect::Rows),
            other => return Err(format!("command 0x{other:02x} is not followed")),
        };
        let pending = Pending {
            req,
            expect,
            time_us: p.time_us,
            rs: Rs::Start,
            rows: 0,
            acc: None,
        };
        if self.one_way {
            self.emit_unanswered(pending, out);
            return Ok(());
        }
        if self.pending.len() >= MAX_IN_FLIGHT {
            return Err(format!("more than {MAX_IN_FLIGHT} commands await a reply"));
        }
        self.pending.push_back(pending);
        Ok(())
    }

    /// The statement id an execute names (MariaDB's "last prepared").
    fn stmt_id(&self, id: u32) -> u32 {
        if id == LAST_PREPARED {
            self.last_prepared.unwrap_or(id)
        } else {
            id
        }
    }

    /// Whether an execute can be decoded now: no prepare it may depend
    /// on still awaits its reply.
    fn resolvable(&self, body: &[u8]) -> bool {
        let Some(id) = Rd(body).u32() else {
            return true;
        };
        let prepare_waits = self
            .pending
            .iter()
            .any(|p| matches!(p.req, Req::Prepare(_)));
        !(prepare_waits && (id == LAST_PREPARED || !self.stmts.contains_key(&id)))
    }

    /// Remembers a prepared statement, within the caps.
    fn remember(&mut self, id: u32, sql: String, params: usize) -> Result<(), String> {
        if let Some(old) = self.stmts.remove(&id) {
            self.stmt_bytes = self.stmt_bytes.saturating_sub(old.sql.len());
        }
        if self.stmts.len() >= MAX_STATEMENTS {
            return Err(format!("more than {MAX_STATEMENTS} prepared statements"));
        }
        self.stmt_bytes = self.stmt_bytes.saturating_add(sql.len());
        if self.stmt_bytes > MAX_STATEMENT_CACHE_BYTES {
            return Err(format!(
                "prepared statements hold more than {MAX_STATEMENT_CACHE_BYTES} bytes of text"
            ));
        }
        self.stmts.insert(
            id,
            Stmt {
                sql,
                params,
                types: None,
                long: HashMap::new(),
            },
        );
        self.last_prepared = Some(id);
        Ok(())
    }

    fn forget_statements(&mut self) {
        self.stmts.clear();
        self.stmt_bytes = 0;
        self.last_prepared = None;
    }

    /// COM_STMT_SEND_LONG_DATA: kept (capped) for the next execute.
    fn long_data(&mut self, body: &[u8]) {
        let mut r = Rd(body);
        let (Some(id), Some(param)) = (r.u32(), r.u16()) else {
            return;
        };
        let id = self.stmt_id(id);
        if let Some(s) = self.stmts.get_mut(&id) {
            if usize::from(param) >= s.params {
                return;
            }
            let slot = s.long.entry(param).or_default();
            let room = MAX_LONG_DATA_BYTES.saturating_sub(slot.len());
            let data = r.rest();
            slot.extend_from_slice(&data[..data.len().min(room)]);
        }
    }

    /// COM_STMT_EXECUTE: the statement and its parameter values.
    fn resolve_execute(&mut self, body: &[u8]) -> Resolved {
        let mut r = Rd(body);
        let Some(id) = r.u32() else {
            return Resolved::default();
        };
        let id = self.stmt_id(id);
        let query_attrs = self.has(CLIENT_QUERY_ATTRIBUTES);
        let Some(stmt) = self.stmts.get_mut(&id) else {
            return Resolved::default();
        };
        let sql = Some(stmt.sql.clone());
        let long = std::mem::take(&mut stmt.long);
        let params = execute_params(&mut r, stmt, &long, query_attrs);
        Resolved { sql, params }
    }

    /// COM_STMT_BULK_EXECUTE: the statement and its rows of values,
    /// flattened row after row.
    fn resolve_bulk(&mut self, body: &[u8]) -> Resolved {
        let mut r = Rd(body);
        let Some(id) = r.u32() else {
            return Resolved::default();
        };
        let id = self.stmt_id(id);
        let Some(stmt) = self.stmts.get_mut(&id) else {
            return Resolved::default();
        };
        let sql = Some(stmt.sql.clone());
        let params = bulk_params(&mut r, stmt);
        Resolved { sql, params }
    }

    /// COM_CHANGE_USER: new user and database; the auth part is skipped.
    fn change_user(&mut self, body: &[u8]) -> (Option<String>, Option<String>) {
        let mut r = Rd(body);
        let user = r.cstr().map(text);
        let skipped = if self.has(CLIENT_SECURE_CONNECTION) {
            r.u8().and_then(|n| r.take(usize::from(n)))
        } else {
            r.cstr()
        };
        let db = skipped
            .and_then(|_| r.cstr())
            .map(text)
            .filter(|s| !s.is_empty());
        (user, db)
    }

    /// A server packet in the command phase: part of the head command's
    /// reply.
    fn reply(&mut self, p: Packet, out: &mut Vec<Record>) -> Result<(), String> {
        let Some(mut head) = self.pending.pop_front() else {
            if p.payload.first() == Some(&ERR) {
                // a parting error (connection killed, shutdown)
                return Ok(());
            }
            return Err("the server sent a packet no command asked for".to_string());
        };
        self.resolve_late(&mut head);
        let done = self.step(&mut head, &p, out)?;
        if !done {
            self.pending.push_front(head);
        }
        Ok(())
    }

    /// Decodes an execute whose prepare has now been answered.
    fn resolve_late(&mut self, head: &mut Pending) {
        match &mut head.req {
            Req::Execute { payload, resolved } if resolved.is_none() => {
                let body = std::mem::take(payload);
                *resolved = Some(self.resolve_execute(&body));
            }
            Req::Bulk { payload, resolved } if resolved.is_none() => {
                let body = std::mem::take(payload);
                *resolved = Some(self.resolve_bulk(&body));
            }
            _ => {}
        }
    }

    /// Advances the head command's reply by one packet; true when the
    /// reply is complete.
    fn step(
        &mut self,
        head: &mut Pending,
        p: &Packet,
        out: &mut Vec<Record>,
    ) -> Result<bool, String> {
        let b = &p.payload;
        let first = b.first().copied();
        let deprecate_eof = self.has(CLIENT_DEPRECATE_EOF);
        match head.expect {
            Expect::One => Ok(true),
            Expect::Single => {
                let res = match first {
                    Some(ERR) if self.is_progress(b) => return Ok(false),
                    Some(ERR) => self.err_res(b),
                    Some(OK) | Some(EOF) => self.ok_res(b),
                    _ => return Err("unexpected reply to a command".to_string()),
                };
                self.finish_command(head, res, p.time_us, out);
                Ok(true)
            }
            Expect::Auth => match first {
                Some(OK) => {
                    let res = self.ok_res(b);
                    self.finish_command(head, res, p.time_us, out);
                    Ok(true)
                }
                Some(ERR) => {
                    let res = self.err_res(b);
                    self.finish_command(head, res, p.time_us, out);
                    Ok(true)
                }
                Some(EOF) | Some(AUTH_MORE_DATA) => Ok(false),
                _ => Err("unexpected packet during COM_CHANGE_USER".to_string()),
            },
            Expect::FieldList | Expect::Rows => match first {
                Some(ERR) if self.is_progress(b) => Ok(false),
                Some(ERR) => Ok(true),
                Some(EOF) if is_eof(p, deprecate_eof) => Ok(true),
                Some(_) => Ok(false),
                None => Err("empty packet in a reply".to_string()),
            },
            Expect::Prepare => match head.rs {
                Rs::Start => match first {
                    Some(ERR) => {
                        let res = self.err_res(b);
                        self.last_prepared = None;
                        self.finish_command(head, res, p.time_us, out);
                        Ok(true)
                    }
                    Some(OK) => {
                        let mut r = Rd(&b[1..]);
                        let parsed = (|| Some((r.u32()?, r.u16()?, r.u16()?)))();
                        let Some((id, columns, params)) = parsed else {
                            return Err("COM_STMT_PREPARE_OK cut short".to_string());
                        };
                        if let Req::Prepare(sql) = &head.req {
                            self.remember(id, sql.clone(), usize::from(params))?;
                        }
                        let eofs = |n: u16| u64::from(n > 0 && !deprecate_eof);
                        let left =
                            u64::from(params) + eofs(params) + u64::from(columns) + eofs(columns);
                        let res = Res {
                            tag: Some("OK"),
                            ..Res::default()
                        };
                        head.acc = Some(res);
                        if left == 0 {
                            self.finish_prepare(head, p.time_us, out);
                            return Ok(true);
                        }
                        head.rs = Rs::Metadata(left);
                        Ok(false)
                    }
                    _ => Err("unexpected reply to COM_STMT_PREPARE".to_string()),
                },
                Rs::Metadata(left) => {
                    if left <= 1 {
                        self.finish_prepare(head, p.time_us, out);
                        return Ok(true);
                    }
                    head.rs = Rs::Metadata(left - 1);
                    Ok(false)
                }
                _ => Err("invalid prepare state".to_string()),
            },
            Expect::ResultSet { binary } => self.result_set(head, p, binary, out),
        }
    }

    fn finish_prepare(&mut self, head: &mut Pending, now: i64, out: &mut Vec<Record>) {
        let res = head.acc.take().unwrap_or_default();
        self.finish_command(head, res, now, out);
    }

    /// One packet of an OK / ERR / LOCAL INFILE / result-set reply.
    fn result_set(
        &mut self,
        head: &mut Pending,
        p: &Packet,
        binary: bool,
        out: &mut Vec<Record>,
    ) -> Result<bool, String> {
        let b = &p.payload;
        let first = b.first().copied();
        let deprecate_eof = self.has(CLIENT_DEPRECATE_EOF);
        let res = match head.rs {
            Rs::Start | Rs::InfileDone => match first {
                Some(ERR) if self.is_progress(b) => return Ok(false),
                Some(ERR) => self.err_res(b),
                Some(OK) => self.ok_res(b),
                Some(LOCAL_INFILE) if head.rs == Rs::Start => {
                    head.rs = Rs::Infile;
                    return Ok(false);
                }
                Some(EOF) => self.ok_res(b),
                Some(_) => {
                    let mut r = Rd(b);
                    let Some(columns) = r.lenenc() else {
                        return Err("bad column count in a result set".to_string());
                    };
                    if columns == 0 {
                        return Err("result set with no columns".to_string());
                    }
                    let metadata = if self.has(CLIENT_OPTIONAL_RESULTSET_METADATA)
                        || (binary && self.has(MARIADB_CLIENT_CACHE_METADATA))
                    {
                        r.u8() != Some(0)
                    } else {
                        true
                    };
                    head.rows = 0;
                    head.rs = if !metadata {
                        Rs::Rows
                    } else {
                        Rs::Columns(columns)
                    };
                    return Ok(false);
                }
                None => return Err("empty packet in a reply".to_string()),
            },
            Rs::Columns(left) => {
                head.rs = if left > 1 {
                    Rs::Columns(left - 1)
                } else if deprecate_eof {
                    Rs::Rows
                } else {
                    Rs::ColumnsEof
                };
                return Ok(false);
            }
            Rs::ColumnsEof => {
                if first != Some(EOF) || !is_eof(p, false) {
                    return Err("no EOF after the column definitions".to_string());
                }
                let status = eof_status(b);
                if status & SERVER_STATUS_CURSOR_EXISTS == 0 {
                    head.rs = Rs::Rows;
                    return Ok(false);
                }
                // a cursor: rows come with COM_STMT_FETCH
                Res {
                    tag: Some("EOF"),
                    rows: Some(0),
                    more: status & SERVER_MORE_RESULTS_EXISTS != 0,
                    result_set: true,
                    ..Res::default()
                }
            }
            Rs::Rows => match first {
                Some(ERR) if self.is_progress(b) => return Ok(false),
                Some(ERR) => {
                    let mut res = self.err_res(b);
                    res.rows = Some(head.rows);
                    res
                }
                Some(EOF) if is_eof(p, deprecate_eof) => {
                    let status = if deprecate_eof {
                        ok_status(b)
                    } else {
                        eof_status(b)
                    };
                    Res {
                        tag: Some("EOF"),
                        rows: Some(head.rows),
                        more: status & SERVER_MORE_RESULTS_EXISTS != 0,
                        result_set: true,
                        ..Res::default()
                    }
                }
                _ => {
                    head.rows = head.rows.saturating_add(1);
                    return Ok(false);
                }
            },
            Rs::Infile | Rs::Metadata(_) => {
                return Err("the server answered before the client finished".to_string());
            }
        };
        head.rs = Rs::Start;
        let done = !res.more;
        self.result(head, res, p.time_us, out);
        Ok(done)
    }

    /// One complete result of a command that may have several.
    fn result(&mut self, head: &mut Pending, res: Res, now: i64, out: &mut Vec<Record>) {
        let Req::Query {
            text,
            pieces,
            piece,
            ..
        } = &mut head.req
        else {
            // one record for all results of an execute or CALL
            if res.more {
                head.acc = Some(match head.acc.take() {
                    Some(acc) => acc.then(res),
                    None => res,
                });
                return;
            }
            let res = match head.acc.take() {
                Some(acc) => acc.then(res),
                None => res,
            };
            self.finish_command(head, res, now, out);
            return;
        };
        if !res.more && *piece == 0 && head.acc.is_none() {
            // the common case: one statement, one result
            self.finish_command(head, res, now, out);
            return;
        }
        let ranges = pieces.get_or_insert_with(|| split_statements(text));
        if ranges.is_empty() {
            ranges.push((0, text.len()));
        }
        let last = ranges.len() - 1;
        let k = (*piece).min(last);
        let is_call = starts_with_keyword(&text[ranges[k].0..ranges[k].1], "CALL");
        let res = match head.acc.take() {
            Some(acc) => acc.then(res),
            None => res,
        };
        if res.more && (k == last || (is_call && res.result_set && !res.failed)) {
            // the statement's results go on (a CALL, or more than split)
            head.acc = Some(res);
            return;
        }
        let start = ranges[k].0;
        let end = if res.more || res.failed {
            ranges[k].1
        } else {
            ranges[last].1
        };
        let statement = text[start..end].to_string();
        let skipped: Vec<String> = if !res.more && res.failed {
            ranges[k + 1..]
                .iter()
                .map(|&(s, e)| text[s..e].to_string())
                .collect()
        } else {
            Vec::new()
        };
        *piece = k + 1;
        let use_db = use_schema(&statement);
        let mut r = self.answered(head, "query", &res, now);
        r.statement = Some(statement.into());
        out.push(r);
        self.follow_schema(&res, use_db);
        for s in skipped {
            // not run: the server stopped at the error
            let mut r = self.record("query", head.time_us);
            r.statement = Some(s.into());
            out.push(r);
        }
    }

    /// A record for the head command with the answer `res`.
    fn answered(&self, head: &Pending, kind: &'static str, res: &Res, now: i64) -> Record {
        let mut r = self.record(kind, head.time_us);
        r.status = if res.failed {
            Outcome::Error
        } else {
            Outcome::Ok
        };
        r.tag = if res.failed {
            None
        } else {
            res.tag.map(str::to_string)
        };
        r.rows = res.rows;
        r.error = res.error.clone();
        r.duration_us = Some(now.saturating_sub(head.time_us));
        r
    }

    /// `service` follows the schema the server reported or `USE db`.
    fn follow_schema(&mut self, res: &Res, use_db: Option<String>) {
        if res.failed {
            return;
        }
        if let Some(schema) = res.schema.clone().or(use_db) {
            self.service = Some(Rc::from(schema));
        }
    }

    /// The last reply of a command: its record, and what it changes.
    fn finish_command(&mut self, head: &mut Pending, res: Res, now: i64, out: &mut Vec<Record>) {
        let req = std::mem::replace(&mut head.req, Req::Silent);
        match req {
            Req::Silent => {}
            Req::Query {
                text,
                attrs,
                use_db,
                ..
            } => {
                let mut r = self.answered(head, "query", &res, now);
                r.statement = Some(text.into());
                r.params = attrs;
                out.push(r);
                self.follow_schema(&res, use_db);
            }
            Req::InitDb(db) => {
                let mut r = self.answered(head, "init_db", &res, now);
                r.statement = Some(db.clone().into());
                out.push(r);
                self.follow_schema(&res, Some(db));
            }
            Req::Prepare(sql) => {
                let mut r = self.answered(head, "prepare", &res, now);
                r.statement = Some(sql.into());
                r.rows = None;
                out.push(r);
            }
            Req::Execute { resolved, .. } | Req::Bulk { resolved, .. } => {
                let resolved = resolved.unwrap_or_default();
                let mut r = self.answered(head, "execute", &res, now);
                r.statement = resolved.sql.map(Into::into);
                r.params = resolved.params;
                out.push(r);
                self.follow_schema(&res, None);
            }
            Req::ChangeUser { user, db } => {
                if !res.failed {
                    self.user = user.map(Rc::from);
                    self.service = db.map(Rc::from);
                    self.forget_statements();
                }
                let mut r = self.answered(head, "change_user", &res, now);
                r.rows = None;
                r.tag = None;
                out.push(r);
            }
        }
    }

    /// Requests that never got (all of) their reply: status `unknown`.
    fn flush_pending(&mut self, out: &mut Vec<Record>) {
        while let Some(mut p) = self.pending.pop_front() {
            self.resolve_late(&mut p);
            self.emit_unanswered(p, out);
        }
    }

    fn emit_unanswered(&mut self, p: Pending, out: &mut Vec<Record>) {
        let t = p.time_us;
        match p.req {
            Req::Silent => {}
            Req::Query {
                text,
                attrs,
                pieces,
                piece,
                use_db,
            } => match pieces {
                Some(ranges) if piece > 0 => {
                    for &(s, e) in ranges.get(piece..).unwrap_or_default() {
                        let mut r = self.record("query", t);
                        r.statement = Some(text[s..e].to_string().into());
                        out.push(r);
                    }
                }
                _ => {
                    let mut r = self.record("query", t);
                    r.statement = Some(text.into());
                    r.params = attrs;
                    out.push(r);
                    if self.one_way {
                        self.follow_schema(&Res::default(), use_db);
                    }
                }
            },
            Req::InitDb(db) => {
                let mut r = self.record("init_db", t);
                r.statement = Some(db.clone().into());
                out.push(r);
                if self.one_way {
                    self.service = Some(Rc::from(db));
                }
            }
            Req::Prepare(sql) => {
                let mut r = self.record("prepare", t);
                r.statement = Some(sql.into());
                out.push(r);
            }
            Req::Execute { resolved, .. } | Req::Bulk { resolved, .. } => {
                let resolved = resolved.unwrap_or_default();
                let mut r = self.record("execute", t);
                r.statement = resolved.sql.map(Into::into);
                r.params = resolved.params;
                out.push(r);
            }
            Req::ChangeUser { user, db } => {
                out.push(self.record("change_user", t));
                if self.one_way {
                    self.user = user.map(Rc::from);
                    self.service = db.map(Rc::from);
                    self.forget_statements();
                }
            }
        }
    }

    fn is_progress(&self, b: &[u8]) -> bool {
        self.has(MARIADB_CLIENT_PROGRESS) && Rd(&b[1..]).u16() == Some(PROGRESS_REPORT)
    }

    fn err_res(&self, b: &[u8]) -> Res {
        Res {
            error: Some(err_text(b, self.has(CLIENT_PROTOCOL_41))),
            failed: true,
            ..Res::default()
        }
    }

    /// An OK packet (0x00, or 0xfe under CLIENT_DEPRECATE_EOF, or an EOF).
    fn ok_res(&self, b: &[u8]) -> Res {
        if b.first() == Some(&EOF) && b.len() < EOF_MAX_BYTES && !self.has(CLIENT_DEPRECATE_EOF) {
            let status = eof_status(b);
            return Res {
                tag: Some("EOF"),
                more: status & SERVER_MORE_RESULTS_EXISTS != 0,
                ..Res::default()
            };
        }
        let mut r = Rd(b.get(1..).unwrap_or_default());
        let rows = r.lenenc();
        let _insert_id = r.lenenc();
        let status = r.u16().unwrap_or(0);
        let _warnings = r.u16();
        let mut schema = None;
        if self.has(CLIENT_SESSION_TRACK) && status & SERVER_SESSION_STATE_CHANGED != 0 {
            let _info = r.lenenc_bytes();
            if let Some(track) = r.lenenc_bytes() {
                schema = tracked_schema(track);
            }
        }
        Res {
            tag: Some("OK"),
            rows,
            more: status & SERVER_MORE_RESULTS_EXISTS != 0,
            schema,
            ..Res::default()
        }
    }

    /// Plain bytes of one direction into packets.
    fn feed_plain(&mut self, dir: Dir, time_us: i64, mut data: &[u8], out: &mut Vec<Record>) {
        let h = Self::half(dir);
        while !data.is_empty() && self.phase != Phase::Stopped {
            if self.compressed {
                // the switch happened at the end of the last packet
                self.feed_compressed(dir, time_us, data, out);
                return;
            }
            if let Some(p) = self.halves[h].framer.next(&mut data, time_us) {
                self.packet(dir, p, out);
            }
        }
    }

    /// Compressed frames of one direction, inflated and framed.
    fn feed_compressed(&mut self, dir: Dir, time_us: i64, mut data: &[u8], out: &mut Vec<Record>) {
        let h = Self::half(dir);
        while !data.is_empty() && self.phase != Phase::Stopped {
            match self.halves[h].inflater.next(&mut data) {
                Err(why) => {
                    self.lose(why, time_us, out);
                    return;
                }
                Ok(None) => {}
                Ok(Some(plain)) => {
                    let mut rest = &plain[..];
                    while !rest.is_empty() && self.phase != Phase::Stopped {
                        if let Some(p) = self.halves[h].framer.next(&mut rest, time_us) {
                            self.packet(dir, p, out);
                        }
                    }
                }
            }
        }
    }
}

impl Protocol for MySql {
    fn feed(&mut self, dir: Dir, time_us: i64, data: &[u8], out: &mut Vec<Record>) {
        if self.phase == Phase::Stopped {
            return;
        }
        if self.compressed {
            self.feed_compressed(dir, time_us, data, out);
        } else {
            self.feed_plain(dir, time_us, data, out);
        }
    }

    fn finish(&mut self, out: &mut Vec<Record>) {
        if self.phase == Phase::Stopped {
            return;
        }
        self.flush_pending(out);
        self.stop();
    }
}

/// Bytes as text (invalid UTF-8 replaced).
fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `program_name` from the connection attributes.
fn program_name(mut attrs: &[u8]) -> Option<String> {
    while !attrs.is_empty() {
        let mut r = Rd(attrs);
        let key = r.lenenc_bytes()?;
        let value = r.lenenc_bytes()?;
        if key == b"program_name" {
            return Some(text(value));
        }
        attrs = r.rest();
    }
    None
}

/// `code message` of an ERR packet.
fn err_text(b: &[u8], protocol41: bool) -> String {
    let mut r = Rd(b.get(1..).unwrap_or_default());
    let code = r.u16().unwrap_or(0);
    let mut msg = r.rest();
    if protocol41 && msg.first() == Some(&b'#') && msg.len() >= 6 {
        msg = &msg[6..];
    }
    format!("{code} {}", text(msg))
}

/// Whether a packet starting 0xfe ends rows (an EOF, or an OK under
/// CLIENT_DEPRECATE_EOF), not a row whose first value is very long.
fn is_eof(p: &Packet, deprecate_eof: bool) -> bool {
    if deprecate_eof {
        p.len < MAX_PACKET_PAYLOAD
    } else {
        p.len < EOF_MAX_BYTES
    }
}

/// Status flags of an EOF packet (0xfe, warnings u16, status u16).
fn eof_status(b: &[u8]) -> u16 {
    Rd(b.get(3..).unwrap_or_default()).u16().unwrap_or(0)
}

/// Status flags of an OK packet.
fn ok_status(b: &[u8]) -> u16 {
    let mut r = Rd(b.get(1..).unwrap_or_default());
    r.lenenc();
    r.lenenc();
    r.u16().unwrap_or(0)
}

/// The new default schema from session-state-change data.
fn tracked_schema(mut track: &[u8]) -> Option<String> {
    let mut schema = None;
    while !track.is_empty() {
        let mut r = Rd(track);
        let kind = r.u8()?;
        let data = r.lenenc_bytes()?;
        if kind == SESSION_TRACK_SCHEMA {
            schema = Rd(data).lenenc_bytes().map(text);
        }
        track = r.rest();
    }
    schema
}

/// COM_QUERY with CLIENT_QUERY_ATTRIBUTES: the attributes as
/// `name=value` and the query text.
fn query_attributes(body: &[u8]) -> Option<(Option<Params>, &[u8])> {
    let mut r = Rd(body);
    let count = usize::try_from(r.lenenc()?).ok()?;
    let _sets = r.lenenc()?;
    if count == 0 {
        return Some((None, r.rest()));
    }
    if count > MAX_PARAMS {
        return None;
    }
    let nulls = r.take(count.div_ceil(8))?;
    let bound = r.u8()?;
    if bound != 1 {
        return None;
    }
    let mut types = Vec::with_capacity(count);
    let mut names = Vec::with_capacity(count);
    for _ in 0..count {
        let t = r.u8()?;
        let f = r.u8()?;
        types.push((t, f));
        names.push(text(r.lenenc_bytes()?));
    }
    let mut attrs = Vec::with_capacity(count);
    for (i, ((t, f), name)) in types.iter().zip(names).enumerate() {
        let value = if nulls[i / 8] & (1 << (i % 8)) != 0 {
            None
        } else {
            binary_value(&mut r, *t, *f)?
        };
        let value = value.as_deref().unwrap_or(NULL_PARAM);
        attrs.push(Some(format!("{name}={value}")));
    }
    Some((Some(attrs), r.rest()))
}

/// Parameter values of a COM_STMT_EXECUTE after the statement id.
fn execute_params(
    r: &mut Rd,
    stmt: &mut Stmt,
    long: &HashMap<u16, Vec<u8>>,
    query_attrs: bool,
) -> Option<Params> {
    let flags = r.u8()?;
    let _iterations = r.u32()?;
    let mut count = stmt.params;
    if query_attrs && (count > 0 || flags & PARAMETER_COUNT_AVAILABLE != 0) {
        count = usize::try_from(r.lenenc()?).ok()?;
    }
    if count == 0 {
        return Some(Vec::new());
    }
    if count > MAX_PARAMS {
        return None;
    }
    let nulls = r.take(count.div_ceil(8))?;
    let bound = r.u8()?;
    if bound == 1 {
        let mut types = Vec::with_capacity(count);
        for _ in 0..count {
            let t = r.u8()?;
            let f = r.u8()?;
            if query_attrs {
                r.lenenc_bytes()?;
            }
            types.push((t, f));
        }
        stmt.types = Some(types);
    }
    let types = stmt.types.as_ref()?;
    if types.len() != count {
        return None;
    }
    let mut values = Vec::with_capacity(count);
    for (i, &(t, f)) in types.iter().enumerate() {
        let long_data = u16::try_from(i).ok().and_then(|i| long.get(&i));
        let value = if nulls[i / 8] & (1 << (i % 8)) != 0 {
            None
        } else if let Some(data) = long_data {
            Some(bytes_value(data))
        } else {
            binary_value(r, t, f)?
        };
        values.push(value);
    }
    Some(values)
}

/// Rows of a COM_STMT_BULK_EXECUTE after the statement id, flattened.
fn bulk_params(r: &mut Rd, stmt: &mut Stmt) -> Option<Params> {
    let flags = r.u16()?;
    let count = stmt.params;
    if count > MAX_PARAMS {
        return None;
    }
    if flags & BULK_SEND_TYPES != 0 {
        let mut types = Vec::with_capacity(count);
        for _ in 0..count {
            types.push((r.u8()?, r.u8()?));
        }
        stmt.types = Some(types);
    }
    let types = stmt.types.as_ref()?;
    if types.len() != count || count == 0 {
        return None;
    }
    let mut values = Vec::new();
    let mut rows = 0;
    while !r.0.is_empty() && rows < MAX_BULK_ROWS {
        for &(t, f) in types {
            let value = match r.u8()? {
                BULK_INDICATOR_NONE => binary_value(r, t, f)?,
                BULK_INDICATOR_NULL => None,
                BULK_INDICATOR_DEFAULT => Some("DEFAULT".to_string()),
                BULK_INDICATOR_IGNORE => Some("IGNORE".to_string()),
                _ => return None,
            };
            values.push(value);
        }
        rows += 1;
    }
    Some(values)
}

/// One value of the binary protocol: `Some(None)` for the NULL type,
/// `None` when it cannot be read.
fn binary_value(r: &mut Rd, t: u8, flags: u8) -> Option<Option<String>> {
    if t == T_NULL {
        return Some(None);
    }
    binary_text(r, t, flags).map(Some)
}

/// One value of the binary protocol, as text.
fn binary_text(r: &mut Rd, t: u8, flags: u8) -> Option<String> {
    let unsigned = flags & PARAM_UNSIGNED != 0;
    Some(match t {
        T_NULL => NULL_PARAM.to_string(),
        T_TINY => {
            let v = r.u8()?;
            if unsigned {
                v.to_string()
            } else {
                (v as i8).to_string()
            }
        }
        T_SHORT | T_YEAR => {
            let v = r.u16()?;
            if unsigned {
                v.to_string()
            } else {
                (v as i16).to_string()
            }
        }
        T_LONG | T_INT24 => {
            let v = r.u32()?;
            if unsigned {
                v.to_string()
            } else {
                (v as i32).to_string()
            }
        }
        T_LONGLONG => {
            let v = r.u64()?;
            if unsigned {
                v.to_string()
            } else {
                (v as i64).to_string()
            }
        }
        T_FLOAT => f32::from_bits(r.u32()?).to_string(),
        T_DOUBLE => f64::from_bits(r.u64()?).to_string(),
        T_DATE | T_DATETIME | T_TIMESTAMP | T_NEWDATE | T_DATETIME2 | T_TIMESTAMP2 => {
            let n = usize::from(r.u8()?);
            datetime(r.take(n)?, t == T_DATE || t == T_NEWDATE)?
        }
        T_TIME | T_TIME2 => {
            let n = usize::from(r.u8()?);
            time_value(r.take(n)?)?
        }
        T_DECIMAL | T_NEWDECIMAL | T_VARCHAR | T_BIT | T_JSON | 0xf7..=0xfe | T_GEOMETRY => {
            bytes_value(r.lenenc_bytes()?)
        }
        // an unknown type: its length cannot be known
        _ => return None,
    })
}

/// A string value: text if UTF-8, else `\x` and hex.
fn bytes_value(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        Err(_) => {
            let mut s = String::with_capacity(2 + 2 * b.len());
            s.push_str("\\x");
            for byte in b {
                s.push_str(&format!("{byte:02x}"));
            }
            s
        }
    }
}

/// DATE / DATETIME / TIMESTAMP: 0, 4, 7 or 11 bytes.
fn datetime(b: &[u8], date_only: bool) -> Option<String> {
    let mut r = Rd(b);
    if b.is_empty() {
        return Some(if date_only {
            "0000-00-00".to_string()
        } else {
            "0000-00-00 00:00:00".to_string()
        });
    }
    let (y, m, d) = (r.u16()?, r.u8()?, r.u8()?);
    let mut s = format!("{y:04}-{m:02}-{d:02}");
    if b.len() >= 7 {
        let (h, mi, sec) = (r.u8()?, r.u8()?, r.u8()?);
        s.push_str(&format!(" {h:02}:{mi:02}:{sec:02}"));
        if b.len() >= 11 {
            s.push_str(&format!(".{:06}", r.u32()?));
        }
    } else if !date_only {
        s.push_str(" 00:00:00");
    }
    Some(s)
}

/// TIME: 0, 8 or 12 bytes (sign, days, h, m, s, µs).
fn time_value(b: &[u8]) -> Option<String> {
    if b.is_empty() {
        return Some("00:00:00".to_string());
    }
    let mut r = Rd(b);
    let negative = r.u8()? != 0;
    let days = u64::from(r.u32()?);
    let (h, mi, sec) = (u64::from(r.u8()?), r.u8()?, r.u8()?);
    let hours = days * 24 + h;
    let mut s = format!(
        "{}{hours:02}:{mi:02}:{sec:02}",
        if negative { "-" } else { "" }
    );
    if b.len() >= 12 {
        s.push_str(&format!(".{:06}", r.u32()?));
    }
    Some(s)
}

/// The schema of a `USE db` statement.
fn use_schema(sql: &str) -> Option<String> {
    let s = skip_space_and_comments(sql);
    if !starts_with_keyword(s, "USE") {
        return None;
    }
    let rest = s[3..].trim_start();
    let name = if let Some(quoted) = rest.strip_prefix('`') {
        let mut name = String::new();
        let mut chars = quoted.chars().peekable();
        loop {
            match chars.next()? {
                '`' if chars.peek() == Some(&'`') => {
                    chars.next();
                    name.push('`');
                }
                '`' => break,
                c => name.push(c),
            }
        }
        name
    } else {
        rest.split(|c: char| c.is_whitespace() || c == ';')
            .next()?
            .to_string()
    };
    (!name.is_empty()).then_some(name)
}

/// Whether `s` (after blanks and comments) begins with `keyword` as a word.
fn starts_with_keyword(s: &str, keyword: &str) -> bool {
    let s = skip_space_and_comments(s);
    s.len() >= keyword.len()
        && s.as_bytes()[..keyword.len()].eq_ignore_ascii_case(keyword.as_bytes())
        && s.as_bytes()
            .get(keyword.len())
            .is_none_or(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
}

fn skip_space_and_comments(mut s: &str) -> &str {
    loop {
        let t = s.trim_start();
        if let Some(rest) = t.strip_prefix("/*") {
            match rest.find("*/") {
                Some(end) => s = &rest[end + 2..],
                None => return "",
            }
        } else if t.starts_with('#') || is_dash_comment(t.as_bytes(), 0) {
            match t.find('\n') {
                Some(end) => s = &t[end + 1..],
                None => return "",
            }
        } else {
            return t;
        }
    }
}

/// `--` starts a comment only when a blank or control character (or the
/// end) follows.
fn is_dash_comment(b: &[u8], i: usize) -> bool {
    b.get(i) == Some(&b'-')
        && b.get(i + 1) == Some(&b'-')
        && b.get(i + 2)
            .is_none_or(|c| c.is_ascii_whitespace() || c.is_ascii_control())
}

/// What the scanner calls back for: a statement separator or a `?`.
#[derive(PartialEq, Eq)]
enum Mark {
    Semicolon,
    Placeholder,
}

/// Walks `sql` the way the server's lexer does for quoting (`'`, `"`
/// with backslash escapes and doubling, `` ` ``) and comments (`#`,
/// `-- `, `/* */`), calling `f` at each `;` and `?` outside them.
fn scan(sql: &str, mut f: impl FnMut(usize, Mark)) {
    let b = sql.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < b.len() {
                    if b[i] == b'\\' && q != b'`' {
                        i += 2;
                    } else if b[i] == q {
                        if b.get(i + 1) == Some(&q) {
                            i += 2;
                        } else {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                i += 1;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'-' if is_dash_comment(b, i) => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i += 2;
            }
            b';' => {
                f(i, Mark::Semicolon);
                i += 1;
            }
            b'?' => {
                f(i, Mark::Placeholder);
                i += 1;
            }
            _ => i += 1,
        }
    }
}

/// Byte ranges of the statements in a multi-statement text, trimmed,
/// empty ones left out.
fn split_statements(sql: &str) -> Vec<(usize, usize)> {
    let mut cuts = Vec::new();
    scan(sql, |i, m| {
        if m == Mark::Semicolon {
            cuts.push(i);
        }
    });
    cuts.push(sql.len());
    let mut ranges = Vec::new();
    let mut start = 0;
    for end in cuts {
        let piece = &sql[start..end];
        let lead = piece.len() - piece.trim_start().len();
        let trail = piece.len() - piece.trim_end().len();
        if lead + trail < piece.len() {
            ranges.push((start + lead, end - trail));
        }
        start = (end + 1).min(sql.len());
    }
    ranges
}

/// Number of `?` placeholders outside quotes and comments.
fn placeholders(sql: &str) -> usize {
    let mut n = 0;
    scan(sql, |_, m| {
        if m == Mark::Placeholder {
            n += 1;
        }
    });
    n
}

/// A bound-checked little-endian reader.
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

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }

    fn u24(&mut self) -> Option<u32> {
        self.take(3)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], 0]))
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Option<u64> {
        let b = self.take(8)?;
        let mut a = [0; 8];
        a.copy_from_slice(b);
        Some(u64::from_le_bytes(a))
    }

    /// A length-encoded integer (0xfb NULL and 0xff are not integers).
    fn lenenc(&mut self) -> Option<u64> {
        match self.u8()? {
            n @ 0..=0xfa => Some(u64::from(n)),
            0xfc => self.u16().map(u64::from),
            0xfd => self.u24().map(u64::from),
            0xfe => self.u64(),
            _ => None,
        }
    }

    fn lenenc_bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.lenenc()?).ok()?;
        self.take(n)
    }

    /// A NUL-terminated string (the NUL consumed, not returned).
    fn cstr(&mut self) -> Option<&'a [u8]> {
        let end = self.0.iter().position(|&b| b == 0)?;
        let s = &self.0[..end];
        self.0 = &self.0[end + 1..];
        Some(s)
    }

    fn rest(self) -> &'a [u8] {
        self.0
    }
}

#[cfg(test)]
mod tests;
