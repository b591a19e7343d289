//! The join of debug-log rows to connection entries, the clock offset
//! between the two logs, and the per-feature peaks.
//!
//! A candidate connection for a checkout (or denial) has the same user
//! (exact) and host (case ignored) and an interval `[start − 1 s, end + 1 s]`
//! holding the corrected OUT time. Connections are indexed by (user,
//! lowercase host), sorted by start, with the running maximum of their ends,
//! so a look-up walks back from the last start before the time only while
//! some earlier connection can still be open.

use std::borrow::Cow;
use std::collections::HashMap;

use super::flexlm::Parsed;
use super::{FlexReport, Match, Peak, Session};

/// Slack around a connection's interval: the debug log has one-second
/// resolution.
pub const SLACK_US: i64 = 1_000_000;

/// Connection statuses that never reached the license server.
const UNREACHED: [&str; 5] = ["denied", "refused", "timeout", "unreachable", "error"];

/// One (user, host) key's connections, sorted by start.
#[derive(Debug, Default)]
struct Slot {
    /// (start, end, index into sessions).
    conns: Vec<(i64, i64, u32)>,
    /// Running maximum of the ends.
    max_end: Vec<i64>,
}

/// Connections by (user, lowercase host).
pub struct Index<'a> {
    sessions: &'a [Session],
    /// lowercase host -> user -> connections.
    slots: HashMap<String, HashMap<String, Slot>>,
}

fn lower(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) || !s.is_ascii() {
        Cow::Owned(s.to_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

impl<'a> Index<'a> {
    pub fn new(sessions: &'a [Session]) -> Index<'a> {
        let mut slots: HashMap<String, HashMap<String, Slot>> = HashMap::new();
        for (i, s) in sessions.iter().enumerate() {
            let (Some(user), Some(host)) = (s.user.as_deref(), s.host.as_deref()) else {
                continue;
            };
            if UNREACHED.contains(&&*s.status) {
                continue;
            }
            let Ok(i) = u32::try_from(i) else { break };
            let host = lower(host);
            let by_user = match slots.get_mut(host.as_ref()) {
                Some(m) => m,
                None => slots.entry(host.into_owned()).or_default(),
            };
            let slot = match by_user.get_mut(user) {
                Some(s) => s,
                None => by_user.entry(user.to_string()).or_default(),
            };
            slot.conns.push((s.start_us, s.end_us.max(s.start_us), i));
        }
        for slot in slots.values_mut().flat_map(|m| m.values_mut()) {
            slot.conns.sort_unstable();
            let mut m = i64::MIN;
            slot.max_end = slot
                .conns
                .iter()
                .map(|c| {
                    m = m.max(c.1);
                    m
                })
                .collect();
        }
        Index { sessions, slots }
    }

    fn slot(&self, user: &str, host: &str) -> Option<&Slot> {
        self.slots.get(lower(host).as_ref())?.get(user)
    }
}

/// The result of one look-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    pub matched: Match,
    /// Index into sessions of the chosen connection.
    pub session: Option<u32>,
    /// Its start.
    pub start_us: i64,
}

const NONE: Found = Found {
    matched: Match::None,
    session: None,
    start_us: 0,
};

/// Candidates of `slot` at `t`; the chosen one is the latest start.
fn lookup(idx: &Index<'_>, slot: Option<&Slot>, t: i64) -> Found {
    let Some(slot) = slot else { return NONE };
    let hi = slot.conns.partition_point(|c| c.0 - SLACK_US <= t);
    let mut count = 0usize;
    let mut chosen: Option<(i64, u32)> = None;
    let mut one_ip = true;
    let mut i = hi;
    while i > 0 {
        i -= 1;
        if slot.max_end[i] + SLACK_US < t {
            break;
        }
        let (start, end, s) = slot.conns[i];
        if end + SLACK_US < t {
            continue;
        }
        count += 1;
        match chosen {
            None => chosen = Some((start, s)),
            Some((_, c)) => {
                if idx.sessions[c as usize].client_ip != idx.sessions[s as usize].client_ip {
                    one_ip = false;
                }
            }
        }
    }
    let Some((start_us, s)) = chosen else {
        return NONE;
    };
    let matched = match (count, one_ip) {
        (1, _) => Match::Exact,
        (_, true) => Match::Ip,
        _ => Match::Nearest,
    };
    Found {
        matched,
        session: Some(s),
        start_us,
    }
}

/// Join the parsed rows to the connections: offset, matches, peaks, order.
pub fn join(parsed: Parsed, sessions: &[Session]) -> FlexReport {
    let Parsed {
        mut checkouts,
        mut denials,
        mut unsupported,
        mut warnings,
        dropped_warnings,
    } = parsed;
    if dropped_warnings > 0 {
        warnings.push(format!("{dropped_warnings} more warnings not shown"));
    }
    let idx = Index::new(sessions);
    let co_slots: Vec<Option<&Slot>> = checkouts
        .iter()
        .map(|c| idx.slot(&c.user, &c.host))
        .collect();
    let (offset_us, offset_samples) = estimate_offset(&idx, &checkouts, &co_slots);

    for (c, slot) in checkouts.iter_mut().zip(&co_slots) {
        c.out_us += offset_us;
        c.in_us = c.in_us.map(|t| t + offset_us);
        let f = lookup(&idx, *slot, c.out_us);
        c.matched = f.matched;
        if let Some(s) = f.session {
            let s = &sessions[s as usize];
            c.client_ip = Some(s.client_ip.to_string());
            c.conn = s.conn;
        }
    }
    for d in &mut denials {
        d.time_us += offset_us;
        let f = lookup(&idx, idx.slot(&d.user, &d.host), d.time_us);
        d.matched = f.matched;
        d.client_ip = f
            .session
            .map(|s| sessions[s as usize].client_ip.to_string());
    }
    for u in &mut unsupported {
        u.time_us += offset_us;
    }
    checkouts.sort_by_key(|c| c.out_us);
    denials.sort_by_key(|d| d.time_us);
    unsupported.sort_by_key(|u| u.time_us);
    let peaks = peaks(&checkouts);
    FlexReport {
        checkouts,
        denials,
        unsupported,
        peaks,
        offset_us,
        offset_samples,
        warnings,
    }
}

/// Clock offset (connection-log time minus debug-log time), whole seconds,
/// and how many matches it was estimated from.
fn estimate_offset(
    _idx: &Index<'_>,
    _checkouts: &[super::Checkout],
    _slots: &[Option<&Slot>],
) -> (i64, usize) {
    (0, 0)
}

/// Most licenses of each (daemon, feature) out at once, and when first
/// reached. A check-in at the same time as a checkout counts first.
pub fn peaks(checkouts: &[super::Checkout]) -> Vec<Peak> {
    let mut events: HashMap<(&str, &str), Vec<(i64, i64)>> = HashMap::new();
    for c in checkouts {
        let ev = events.entry((&c.daemon, &c.feature)).or_default();
        ev.push((c.out_us, i64::from(c.licenses)));
        if let Some(t) = c.in_us {
            ev.push((t.max(c.out_us), -i64::from(c.licenses)));
        }
    }
    let mut out: Vec<Peak> = events
        .into_iter()
        .map(|((daemon, feature), mut ev)| {
            ev.sort_unstable();
            let (mut cur, mut peak, mut at) = (0i64, 0i64, 0i64);
            for (t, d) in ev {
                cur += d;
                if cur > peak {
                    peak = cur;
                    at = t;
                }
            }
            Peak {
                daemon: daemon.to_string(),
                feature: feature.to_string(),
                peak: u32::try_from(peak).unwrap_or(u32::MAX),
                peak_at_us: at,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        (a.peak_at_us, &a.daemon, &a.feature).cmp(&(b.peak_at_us, &b.daemon, &b.feature))
    });
    out
}
