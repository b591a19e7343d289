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
    /// A TLS handshake of TLS termination failed.
    TlsError,
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
            Status::TlsError => "tls-error",
            Status::Error => "error",
            Status::Crashed => "crashed",
            Status::Open => "open",
        }
    }
}

/// `%{tls}` of a session the child terminated.
pub const TLS_TERMINATED: &str = "terminated";
/// `%{tls}` of TLS seen but not terminated.
pub const TLS_PASSTHROUGH: &str = "passthrough";

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
    /// TLS termination: `Some("terminated")` once the child ended the
    /// client's TLS itself; see [`ConnInfo::tls_text`].
    pub tls: Option<&'static str>,
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
            tls: None,
        }
    }

    /// `%{tls}`: `terminated`, `passthrough` (TLS seen in the identity but
    /// not terminated), or `None`.
    pub fn tls_text(&self) -> Option<&'static str> {
        use crate::identity::{PROTO_MYSQL_TLS, PROTO_POSTGRES_TLS, PROTO_TLS};
        self.tls.or(match self.identity.proto {
            Some(PROTO_TLS | PROTO_POSTGRES_TLS | PROTO_MYSQL_TLS) => Some(TLS_PASSTHROUGH),
            _ => None,
        })
    }

    /// Duration in whole seconds, truncated.
    pub fn secs(&self) -> i64 {
        ((self.end.epoch_us - self.start.epoch_us) / 1_000_000).max(0)
    }
}
