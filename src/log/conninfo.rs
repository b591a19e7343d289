//! What is known about one connection: the values behind the connection-log
//! escapes, the JSON keys and the hook parameters. Pure data.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::identity::Identity;
use crate::log::timefmt::LocalTime;

/// The status of a connection (`%x`), written once, used everywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    Denied,
    Refused,
    Timeout,
    Unreachable,
    Idle,
    Killed,
    RecordError,
    Error,
    /// Written by the parent for a child that died before its own entry.
    Crashed,
    /// Only in `--open-format` entries.
    Open,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Denied => "denied",
            Status::Refused => "refused",
            Status::Timeout => "timeout",
            Status::Unreachable => "unreachable",
            Status::Idle => "idle",
            Status::Killed => "killed",
            Status::RecordError => "record-error",
            Status::Error => "error",
            Status::Crashed => "crashed",
            Status::Open => "open",
        }
    }
}

/// One connection, as the entry, the hook and the JSON see it.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    pub start: LocalTime,
    pub end: LocalTime,
    pub client: SocketAddr,
    pub local: SocketAddr,
    pub dest: Option<SocketAddr>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub file: Option<PathBuf>,
    /// SHA-256 (lower-case hex) of the finished data log file.
    pub sha256: Option<String>,
    pub conn: u64,
    pub status: Status,
    pub identity: Identity,
}

impl ConnInfo {
    /// A connection accepted at `start`, nothing relayed yet.
    pub fn new(
        start: LocalTime,
        client: SocketAddr,
        local: SocketAddr,
        conn: u64,
        status: Status,
    ) -> ConnInfo {
        ConnInfo {
            start,
            end: start,
            client,
            local,
            dest: None,
            bytes_in: 0,
            bytes_out: 0,
            file: None,
            sha256: None,
            conn,
            status,
            identity: Identity::default(),
        }
    }

    /// Duration in whole seconds, truncated.
    pub fn secs(&self) -> i64 {
        ((self.end.epoch_us - self.start.epoch_us) / 1_000_000).max(0)
    }
}
