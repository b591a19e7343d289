//! The configuration: the command line (`cli`) with its address forms
//! (`addr`) and allow-list (`acl`) becomes the validated, immutable
//! [`Config`] defined here: plain data, no parsing here, no I/O anywhere in
//! this folder. Every later stage reads it; none changes it.

pub mod acl;
pub mod addr;
pub mod cli;

use std::path::PathBuf;
use std::time::Duration;

use crate::config::acl::Acl;
use crate::config::addr::Dest;
use crate::log::template::Template;

/// Which directions the data log records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    /// Default: only data sent to the client.
    ToClient,
    /// `-l`: only data from the client.
    FromClient,
    /// `-L`: both.
    Both,
}

/// Compression of the data log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compress {
    None,
    Gzip,
    Bzip2,
}

impl Compress {
    pub fn extension(self) -> &'static str {
        match self {
            Compress::None => "",
            Compress::Gzip => ".gz",
            Compress::Bzip2 => ".bz2",
        }
    }
}

/// `-f` and its companions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataLog {
    /// Path and file prefix; absolute once preflight ran.
    pub prefix: PathBuf,
    pub record: Record,
    pub printable: bool,
    pub compress: Compress,
    /// `--compress-level`: 1 (fastest) to 9 (smallest); `None` is the
    /// compressor's built-in default.
    pub compress_level: Option<u32>,
    /// `-t`: ISO stamp interval.
    pub stamp_every: Option<Duration>,
    pub markers: bool,
}

/// `-u` / `-uT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hook {
    /// Program (absolute once preflight ran) and its leading arguments.
    pub argv: Vec<String>,
    /// `-uT`: times as text instead of epoch seconds.
    pub text_times: bool,
}

/// Daemon mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Daemon {
    pub pid_file: Option<PathBuf>,
}

/// `--tls-upstream`: how the destination's TLS is treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsUpstream {
    /// Default: TLS, the certificate checked against `--tls-ca` or the
    /// system roots and the destination's name.
    Verify,
    /// TLS, any certificate accepted (the handshake is still done).
    Insecure,
    /// As `Verify`, but a destination that does not offer TLS is used in
    /// clear.
    PlainOk,
    /// Never TLS towards the destination.
    Plain,
}

impl TlsUpstream {
    /// The `--tls-upstream` value.
    pub fn parse(s: &str) -> Option<TlsUpstream> {
        match s {
            "verify" => Some(TlsUpstream::Verify),
            "insecure" => Some(TlsUpstream::Insecure),
            "plain-ok" => Some(TlsUpstream::PlainOk),
            "plain" => Some(TlsUpstream::Plain),
            _ => None,
        }
    }
}

/// `--tls-cert` and its companions: TLS termination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tls {
    /// PEM certificate chain shown to clients (absolute once preflight ran).
    pub cert: PathBuf,
    /// PEM private key of `cert`.
    pub key: PathBuf,
    /// `--tls-ca`: PEM roots for the destination instead of the system's.
    pub ca: Option<PathBuf>,
    pub upstream: TlsUpstream,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub listen_port: u16,
    pub listen_host: Option<String>,
    pub dests: Vec<Dest>,
    pub bufsize: usize,
    pub datalog: Option<DataLog>,
    pub hook: Option<Hook>,
    pub connlog: Option<PathBuf>,
    pub format: Template,
    pub open_format: Option<Template>,
    pub allow: Acl,
    pub daemon: Option<Daemon>,
    /// 0 = no limit.
    pub max_connections: usize,
    pub connect_timeout: Duration,
    pub idle_timeout: Option<Duration>,
    pub user: Option<String>,
    pub syslog: bool,
    /// `--syslog-socket`: the log daemon's socket instead of `/dev/log`
    /// (absolute once preflight ran).
    pub syslog_socket: Option<PathBuf>,
    pub verbose: bool,
    /// `--statement-log`: statement audit records, one JSON line each.
    pub statement_log: Option<PathBuf>,
    /// Password literals masked in statement records (no `--no-redact`).
    pub redact: bool,
    /// `--tls-cert`/`--tls-key`: terminate TLS.
    pub tls: Option<Tls>,
}

impl Config {
    /// Whether anyone will see a data log's SHA-256: a hook (it gets
    /// `IPPROT_SHA256`), or close entries (to `-c` or syslog) whose format
    /// shows `%{sha256}` (JSON entries always do). Otherwise the child
    /// does not compute it.
    pub fn shows_sha256(&self) -> bool {
        self.hook.is_some()
            || (self.connlog.is_some() || self.syslog)
                && self.format.shows(crate::log::template::Field::Sha256)
    }
}
