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

/// Direction of a chunk, as in the data log.
pub use crate::record::block::Dir;

/// Most bytes of unframed input (partial messages, reassembly buffers)
/// one connection may hold per direction; past it the stream is `lost`.
pub const MAX_PENDING_BYTES: usize = 16 * 1024 * 1024;

/// Most requests awaiting a reply (pipelining) before the stream is `lost`.
pub const MAX_IN_FLIGHT: usize = 4096;

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
    pub user: Option<String>,
    pub service: Option<String>,
    pub program: Option<String>,
    /// PostgreSQL backend pid, MySQL connection id, Oracle session id.
    pub server_session: Option<u64>,
    /// `query`, `prepare`, `execute`, `copy`, `call`, `init_db`,
    /// `change_user`, `lost`, `undecodable`, ...
    pub kind: &'static str,
    /// The statement text, already redacted unless `--no-redact`.
    pub statement: Option<String>,
    /// Parameter values as the client sent them (binary ones as hex).
    pub params: Option<Vec<String>>,
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
}

pub mod mysql;
pub mod tns;
