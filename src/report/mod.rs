//! Usage report (`ipprotreport`): who used the service, from which IP,
//! when and for how long. Reads connection logs (`connlog`), optionally
//! FlexNet debug logs (`flexlm`), joins each checkout to its connection
//! (`join`), and renders text, CSV, JSON lines or HTML (`render`).
//! Pure except for reading the input files in `input`.
//!
//! Shared row types live here so that the reading, joining and rendering
//! modules agree on them. Times are epoch microseconds (UTC); rendering
//! turns them into RFC 3339 with the offset of the machine running the
//! report.

pub mod cli;
pub mod flexlm;
pub mod input;
pub mod join;
pub mod render;
pub mod run;
pub mod totals;

/// Text shared between rows: a connection log repeats the same user, host,
/// IP, status and protocol on many lines, so the reader keeps one copy of
/// each value (a million sessions with `String` fields took about 490 bytes
/// each; shared, about 190).
pub type Text = std::sync::Arc<str>;

/// One connection entry (a close entry; open events are not sessions).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Session {
    pub conn: Option<u64>,
    pub start_us: i64,
    pub end_us: i64,
    pub client_ip: Text,
    pub client_port: Option<u16>,
    pub user: Option<Text>,
    pub host: Option<Text>,
    pub display: Option<Text>,
    pub pid: Option<Text>,
    pub program: Option<Text>,
    pub service: Option<Text>,
    pub proto: Option<Text>,
    /// `ok`, `denied`, `refused`, ... as written by ipprotd.
    pub status: Text,
}

/// How sure the join of a checkout (or denial) to a connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Match {
    /// Exactly one candidate connection.
    Exact,
    /// Several candidates, all from one IP.
    Ip,
    /// Candidates from several IPs: the one that opened last before OUT.
    Nearest,
    /// No candidate.
    None,
}

impl Match {
    pub fn as_str(self) -> &'static str {
        match self {
            Match::Exact => "exact",
            Match::Ip => "ip",
            Match::Nearest => "nearest",
            Match::None => "none",
        }
    }
}

/// One license checkout from a FlexNet debug log (OUT, and its IN).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkout {
    pub daemon: String,
    pub feature: String,
    pub user: String,
    pub host: String,
    pub cdstring: Option<String>,
    pub licenses: u32,
    /// Corrected by the clock offset once joined.
    pub out_us: i64,
    pub in_us: Option<i64>,
    /// `INACTIVE`, `SHUTDOWN`, `REMOVED`.
    pub reason: Option<&'static str>,
    pub client_ip: Option<String>,
    pub conn: Option<u64>,
    pub matched: Match,
}

/// A DENIED line; `false_denial` when an OUT of the same feature for the
/// same user@host follows within the same second.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    pub daemon: String,
    pub feature: String,
    pub user: String,
    pub host: String,
    pub time_us: i64,
    pub false_denial: bool,
    pub message: String,
    pub client_ip: Option<String>,
    pub matched: Match,
}

/// An UNSUPPORTED request, counted apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsupported {
    pub daemon: String,
    pub feature: String,
    pub user: String,
    pub host: String,
    pub time_us: i64,
    pub message: String,
}

/// Most licenses of one feature out at once, and when first reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peak {
    pub daemon: String,
    pub feature: String,
    pub peak: u32,
    pub peak_at_us: i64,
}

/// What the FlexNet debug-log join gives (`report::flexlm::analyze`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlexReport {
    pub checkouts: Vec<Checkout>,
    pub denials: Vec<Denial>,
    pub unsupported: Vec<Unsupported>,
    pub peaks: Vec<Peak>,
    /// Estimated clock offset: connection-log time minus debug-log time.
    pub offset_us: i64,
    /// How many unambiguous matches the offset was estimated from.
    pub offset_samples: usize,
    /// `FILE:LINE: reason` for lines that were skipped.
    pub warnings: Vec<String>,
}
