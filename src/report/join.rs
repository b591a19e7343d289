//! The join of debug-log rows to connection entries, the clock offset
//! between the two logs, and the per-feature peaks.
//!
//! A candidate connection for a checkout (or denial) has the same user
//! (exact) and host (case ignored) and an interval `[start − 1 s, end + 1 s]`
//! holding the corrected OUT time. Connections are indexed by (user,
//! lowercase host), sorted by start, with the running maximum of their ends,
//! so a look-up walks back from the last start before the time only while
//! some earlier connection can still be open.

use rustc_hash::FxHashMap;
use std::borrow::Cow;

use super::flexlm::Parsed;
use super::{FlexReport, Match, Peak, Session};

/// Slack around a connection's interval: the debug log has one-second
/// resolution.
pub const SLACK_US: i64 = 1_000_000;

/// Connection statuses that never reached the license server.
const UNREACHED: [&str; 5] = ["denied", "refused", "timeout", "unreachable", "error"];

/// One (user, host) key's connections, sorted by start.
#[derive(Debug, Default)]
pub struct Slot {
    /// (start, end, index into sessions).
    conns: Vec<(i64, i64, u32)>,
    /// Running maximum of the ends.
    max_end: Vec<i64>,
}

/// Connections by (user, lowercase host).
pub struct Index<'a> {
    sessions: &'a [Session],
    /// lowercase host -> user -> slot number.
    names: FxHashMap<String, FxHashMap<String, u32>>,
    slots: Vec<Slot>,
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
        let mut names: FxHashMap<String, FxHashMap<String, u32>> = FxHashMap::default();
        let mut slots: Vec<Slot> = Vec::new();
        // The connection-log reader shares one copy of each repeated text,
        // so most look-ups are by address; the names decide.
        let mut by_addr: FxHashMap<(usize, usize), u32> = FxHashMap::default();
        for (i, s) in sessions.iter().enumerate() {
            let (Some(user), Some(host)) = (&s.user, &s.host) else {
                continue;
            };
            if UNREACHED.contains(&&*s.status) {
                continue;
            }
            let Ok(i) = u32::try_from(i) else { break };
            let addr = (user.as_ptr() as usize, host.as_ptr() as usize);
            let n = match by_addr.get(&addr) {
                Some(&n) => n,
                None => {
                    let host = lower(host);
                    let by_user = match names.get_mut(host.as_ref()) {
                        Some(m) => m,
                        None => names.entry(host.into_owned()).or_default(),
                    };
                    let n = match by_user.get(&**user) {
                        Some(&n) => n,
                        None => {
                            let n = u32::try_from(slots.len()).unwrap_or(u32::MAX);
                            slots.push(Slot::default());
                            by_user.insert(user.to_string(), n);
                            n
                        }
                    };
                    by_addr.insert(addr, n);
                    n
                }
            };
            if let Some(slot) = slots.get_mut(n as usize) {
                slot.conns.push((s.start_us, s.end_us.max(s.start_us), i));
            }
        }
        for slot in &mut slots {
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
        Index {
            sessions,
            names,
            slots,
        }
    }

    fn slot(&self, user: &str, host: &str) -> Option<&Slot> {
        let n = *self.names.get(lower(host).as_ref())?.get(user)?;
        self.slots.get(n as usize)
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

/// Search radius around an OUT for connection starts (coarse estimate).
const WINDOW_US: i64 = 3600 * 1_000_000;
/// Connection starts taken on each side of an OUT (coarse estimate).
const STARTS_PER_SIDE: usize = 3;
/// Width of the densest cluster of (start − OUT) the coarse estimate looks for.
const CLUSTER_US: i64 = 2_000_000;
/// A coarse estimate needs this many OUTs in its cluster.
const MIN_CLUSTER: usize = 3;
/// Clusters tried as the coarse offset (by the number of checkouts they
/// match).
const CANDIDATES: usize = 5;
/// Checkouts the coarse estimate looks at and scores its candidates on (an
/// even sample).
const SCORE_SAMPLE: usize = 20_000;
/// An OUT this close to its connection's start (after correction) is the
/// connection's first checkout: it measures the offset.
const TIGHT_US: i64 = 2_000_000;
const SECOND_US: i64 = 1_000_000;

/// Clock offset (connection-log time minus debug-log time), whole seconds,
/// and how many matches it was estimated from.
///
/// A client checks out right after it connects, so for the first checkout
/// of each connection (start − OUT) is the offset, give or take the
/// second the debug log truncates. Coarse: over an even sample of 20,000
/// checkouts, (start − OUT) for the nearest starts of the same user@host
/// within an hour; of the 5 densest 2-s clusters, the one whose offset
/// matches most of the sample (a later checkout of each connection makes
/// a cluster too, but it leaves the first checkouts before their
/// connections), then the denser, then the smaller. Refined (iterated
/// once): with the coarse offset, the OUTs that have exactly one candidate
/// connection that opened within 2 s of them; the offset is the median of
/// their (start − OUT), rounded to whole seconds (the debug log truncates,
/// the client checks out a little after it connects: rounding centres the
/// first checkouts on their connections). No offset (0) when no cluster
/// has 3 checkouts, or when the estimate matches fewer checkouts than 0.
pub fn estimate_offset(
    idx: &Index<'_>,
    checkouts: &[super::Checkout],
    slots: &[Option<&Slot>],
) -> (i64, usize) {
    let mut samples: Vec<i64> = Vec::new();
    let stride = (checkouts.len() / SCORE_SAMPLE).max(1);
    for (c, slot) in checkouts.iter().zip(slots).step_by(stride) {
        let Some(slot) = slot else { continue };
        let t = c.out_us;
        let i = slot.conns.partition_point(|x| x.0 < t);
        for x in slot.conns[i..].iter().take(STARTS_PER_SIDE) {
            if x.0 - t <= WINDOW_US {
                samples.push(x.0 - t);
            }
        }
        for x in slot.conns[..i].iter().rev().take(STARTS_PER_SIDE) {
            if t - x.0 <= WINDOW_US {
                samples.push(x.0 - t);
            }
        }
    }
    samples.sort_unstable();
    // The densest windows [samples[a], samples[a] + CLUSTER_US] that do not
    // overlap each other, densest first.
    let mut picked: Vec<(usize, usize)> = Vec::new();
    while picked.len() < CANDIDATES {
        let free = |lo: i64, hi: i64| {
            picked
                .iter()
                .all(|&(_, pa)| samples[pa] > hi || samples[pa] + CLUSTER_US < lo)
        };
        let mut best: Option<(usize, usize)> = None;
        let mut b = 0usize;
        for a in 0..samples.len() {
            b = b.max(a);
            while b < samples.len() && samples[b] - samples[a] <= CLUSTER_US {
                b += 1;
            }
            let n = b - a;
            if n >= MIN_CLUSTER
                && best.is_none_or(|(bn, _)| n > bn)
                && free(samples[a], samples[a] + CLUSTER_US)
            {
                best = Some((n, a));
            }
        }
        match best {
            Some(w) => picked.push(w),
            None => break,
        }
    }
    let matched = |off: i64| {
        checkouts
            .iter()
            .zip(slots)
            .step_by(stride)
            .filter(|(c, slot)| lookup(idx, **slot, c.out_us + off).matched != Match::None)
            .count()
    };
    // Score: checkouts matched, then cluster size, then the smaller offset.
    let mut best: Option<(usize, usize, i64)> = None;
    for (n, a) in picked {
        let c = samples[a + n / 2];
        let m = matched(c);
        let better = match best {
            None => true,
            Some((bm, bn, bc)) => {
                (m, n, std::cmp::Reverse(c.abs())) > (bm, bn, std::cmp::Reverse(bc.abs()))
            }
        };
        if better {
            best = Some((m, n, c));
        }
    }
    let Some((best_m, best_n, coarse)) = best else {
        return (0, 0);
    };
    let zero = matched(0);
    if best_m < zero {
        return (0, 0);
    }

    let mut tight: Vec<i64> = Vec::new();
    for (c, slot) in checkouts.iter().zip(slots) {
        let t = c.out_us + coarse;
        let f = lookup(idx, *slot, t);
        if f.matched == Match::Exact && (f.start_us - t).abs() <= TIGHT_US {
            tight.push(f.start_us - c.out_us);
        }
    }
    let (offset, n) = if tight.is_empty() {
        (coarse, best_n)
    } else {
        tight.sort_unstable();
        (tight[(tight.len() - 1) / 2], tight.len())
    };
    let offset = (offset + SECOND_US / 2).div_euclid(SECOND_US) * SECOND_US;
    if offset != 0 && offset != coarse && matched(offset) < zero {
        return (0, 0);
    }
    (offset, n)
}

/// Most licenses of each (daemon, feature) out at once, and when first
/// reached: the same rule as the other peaks of the report
/// (`totals::peak`, closed intervals: a checkout in the second of another's
/// check-in overlaps it); a checkout never checked in stays out.
pub fn peaks(checkouts: &[super::Checkout]) -> Vec<Peak> {
    let mut groups: FxHashMap<(&str, &str), Vec<super::totals::Weighted>> = FxHashMap::default();
    for c in checkouts {
        groups.entry((&c.daemon, &c.feature)).or_default().push((
            c.out_us,
            c.in_us.unwrap_or(i64::MAX).max(c.out_us),
            u64::from(c.licenses),
        ));
    }
    let mut out: Vec<Peak> = groups
        .into_iter()
        .map(|((daemon, feature), iv)| {
            let (peak, at) = super::totals::peak(&iv);
            Peak {
                daemon: daemon.to_string(),
                feature: feature.to_string(),
                peak: u32::try_from(peak).unwrap_or(u32::MAX),
                peak_at_us: at.unwrap_or(0),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        (a.peak_at_us, &a.daemon, &a.feature).cmp(&(b.peak_at_us, &b.daemon, &b.feature))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::super::flexlm::analyze;
    use super::super::{Checkout, FlexReport, Match, Session};
    use super::*;

    const S: i64 = 1_000_000;
    /// 2022-05-05T00:00:00Z
    const DAY: i64 = 1_651_708_800 * S;

    fn sess(conn: u64, start: i64, end: i64, ip: &str, user: &str, host: &str) -> Session {
        Session {
            conn: Some(conn),
            start_us: DAY + start,
            end_us: DAY + end,
            client_ip: ip.into(),
            user: Some(user.into()),
            host: Some(host.into()),
            status: "ok".into(),
            ..Session::default()
        }
    }

    /// `h:mm:ss` of `DAY + secs`.
    fn hms(secs: i64) -> String {
        format!("{:2}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
    }

    fn log(lines: &[(i64, &str)]) -> Vec<(String, String)> {
        let mut s = String::from(" 0:00:00 (lmgrd) TIMESTAMP 5/5/2022\n");
        let mut lines = lines.to_vec();
        lines.sort_by_key(|l| l.0);
        for (t, l) in lines {
            s.push_str(&format!("{} {l}\n", hms(t)));
        }
        vec![("lmgrd.log".to_string(), s)]
    }

    fn run(lines: &[(i64, &str)], sessions: &[Session]) -> FlexReport {
        analyze(&log(lines), Some("UTC"), sessions).expect("analyze")
    }

    fn kinds(r: &FlexReport) -> Vec<(Match, Option<&str>, Option<u64>)> {
        r.checkouts
            .iter()
            .map(|c| (c.matched, c.client_ip.as_deref(), c.conn))
            .collect()
    }

    #[test]
    fn match_kinds() {
        let h = 36_000; // 10:00:00
        // Clients check out right after they connect (here 0.4 s).
        let t = (h + 10) * S - 400_000;
        let end = (h + 600) * S;
        let sessions = [
            // exact: one connection of alice@pc1 (host case ignored)
            sess(1, t, end, "10.0.0.1", "alice", "PC1"),
            // ip: two connections of bob@pc2 from one IP
            sess(2, h * S, end, "10.0.0.2", "bob", "pc2"),
            sess(3, t, end, "10.0.0.2", "bob", "pc2"),
            // nearest: carol@pc3 from two IPs; conn 5 opened last before OUT
            sess(4, h * S, end, "10.0.0.3", "carol", "pc3"),
            sess(5, t, end, "10.0.0.4", "carol", "pc3"),
            sess(6, (h + 30) * S, end, "10.0.0.5", "carol", "pc3"),
            // user is exact: Alice is not alice
            sess(7, t, end, "10.0.0.9", "Alice", "pc9"),
            // a denied connection is no candidate
            Session {
                status: "denied".into(),
                ..sess(8, t, end, "10.0.0.8", "dave", "pc8")
            },
        ];
        let r = run(
            &[
                (h + 10, "(MLM) OUT: \"MATLAB\" alice@pc1"),
                (h + 10, "(MLM) OUT: \"MATLAB\" bob@pc2"),
                (h + 10, "(MLM) OUT: \"MATLAB\" carol@pc3"),
                (h + 10, "(MLM) OUT: \"MATLAB\" alice@pc9"),
                (h + 10, "(MLM) OUT: \"MATLAB\" dave@pc8"),
                (h + 601, "(MLM) OUT: \"MATLAB\" alice@pc1"),
                (h + 602, "(MLM) OUT: \"MATLAB\" alice@pc1"),
            ],
            &sessions,
        );
        assert_eq!(r.offset_us, 0);
        assert_eq!(
            kinds(&r),
            [
                (Match::Exact, Some("10.0.0.1"), Some(1)),
                (Match::Ip, Some("10.0.0.2"), Some(3)),
                (Match::Nearest, Some("10.0.0.4"), Some(5)),
                (Match::None, None, None),
                (Match::None, None, None),
                // end + 1 s still holds it; end + 2 s does not
                (Match::Exact, Some("10.0.0.1"), Some(1)),
                (Match::None, None, None),
            ]
        );
    }

    #[test]
    fn start_slack_is_one_second() {
        let h = 36_000;
        let sessions = [sess(1, (h + 1) * S, (h + 60) * S, "10.0.0.1", "a", "h")];
        let r = run(&[(h, "(MLM) OUT: \"M\" a@h")], &sessions);
        assert_eq!(r.checkouts[0].matched, Match::Exact);
        let sessions = [sess(1, (h + 1) * S + 1, (h + 60) * S, "10.0.0.1", "a", "h")];
        let r = run(&[(h, "(MLM) OUT: \"M\" a@h")], &sessions);
        assert_eq!(r.checkouts[0].matched, Match::None);
    }

    #[test]
    fn clock_offset_is_estimated_and_applied() {
        // The license server's clock is 37 s behind the proxy's.
        let off = 37;
        let mut sessions = Vec::new();
        let mut lines = Vec::new();
        let users = ["u0", "u1", "u2", "u3", "u4", "u5"];
        for (i, u) in users.iter().enumerate() {
            let start = 3600 * (i as i64 + 8);
            // connections open at .3 s; the OUT follows 0.2 s later
            sessions.push(sess(
                i as u64,
                start * S + 300_000,
                (start + 900) * S,
                "10.1.1.1",
                u,
                "ws",
            ));
            lines.push((start - off, format!("(MLM) OUT: \"MATLAB\" {u}@ws")));
            lines.push((start - off + 600, format!("(MLM) OUT: \"SIMULINK\" {u}@ws")));
            lines.push((start - off + 800, format!("(MLM) IN: \"MATLAB\" {u}@ws")));
        }
        let lines: Vec<(i64, &str)> = lines.iter().map(|(t, l)| (*t, l.as_str())).collect();
        let r = run(&lines, &sessions);
        assert_eq!(r.offset_us, off * S);
        assert_eq!(r.offset_samples, users.len());
        assert!(
            r.checkouts.iter().all(|c| c.matched == Match::Exact),
            "{:?}",
            kinds(&r)
        );
        let c = &r.checkouts[0];
        assert_eq!(c.out_us, DAY + 8 * 3600 * S);
        assert_eq!(c.in_us, Some(DAY + (8 * 3600 + 800) * S));
        // without the offset the first OUTs would fall before their connections
        let mut p = super::super::flexlm::Parsed::default();
        super::super::flexlm::parse_file(
            "x",
            &log(&lines)[0].1,
            &jiff::tz::TimeZone::UTC,
            None,
            &mut p,
        );
        let idx = Index::new(&sessions);
        let c0 = &p.checkouts[0];
        assert_eq!(
            lookup(&idx, idx.slot(&c0.user, &c0.host), c0.out_us).matched,
            Match::None
        );
    }

    #[test]
    fn negative_offset_and_denials_follow_it() {
        // The license server is 75 s ahead.
        let mut sessions = Vec::new();
        let mut lines = Vec::new();
        for i in 0..4i64 {
            let start = 40_000 + 1000 * i;
            sessions.push(sess(
                i as u64,
                start * S,
                (start + 100) * S,
                "10.2.0.1",
                "z",
                &format!("h{i}"),
            ));
            lines.push((start + 75, format!("(MLM) OUT: \"F\" z@h{i}")));
        }
        lines.push((
            40_000 + 75 + 99,
            "(MLM) DENIED: \"G\" z@h0  (Licensed number of users already reached. (-4,342))"
                .to_string(),
        ));
        lines.push((
            40_000 + 75 + 150,
            "(MLM) DENIED: \"G\" z@h0  (Licensed number of users already reached. (-4,342))"
                .to_string(),
        ));
        let lines: Vec<(i64, &str)> = lines.iter().map(|(t, l)| (*t, l.as_str())).collect();
        let r = run(&lines, &sessions);
        assert_eq!(r.offset_us, -75 * S);
        assert_eq!(r.denials[0].time_us, DAY + (40_000 + 99) * S);
        assert_eq!(r.denials[0].matched, Match::Exact);
        assert_eq!(r.denials[0].client_ip.as_deref(), Some("10.2.0.1"));
        assert_eq!(r.denials[1].matched, Match::None);
    }

    #[test]
    fn no_offset_from_too_few_samples() {
        let sessions = [sess(1, 36_000 * S, 37_000 * S, "10.0.0.1", "a", "h")];
        let r = run(&[(36_300, "(MLM) OUT: \"M\" a@h")], &sessions);
        assert_eq!((r.offset_us, r.offset_samples), (0, 0));
        assert_eq!(r.checkouts[0].matched, Match::Exact);
    }

    #[test]
    fn burst_of_41_from_one_host() {
        // An HPC job: 41 processes of one user@host connect within 3 s, each
        // checks out; one IP, so every match is `ip`. Then a second host's
        // 41 from another IP overlap: `nearest`.
        let h = 50_000;
        let mut sessions = Vec::new();
        let mut lines = Vec::new();
        for i in 0..41i64 {
            let t = h * S + i * 70_000;
            sessions.push(sess(i as u64, t, t + 3600 * S, "10.9.0.7", "hpc", "node07"));
            lines.push((h + i * 70_000 / S, "(MLM) OUT: \"MATLAB\" hpc@node07"));
        }
        let r = run(&lines, &sessions);
        assert_eq!(r.checkouts.len(), 41);
        assert!(
            r.checkouts.iter().all(|c| c.matched == Match::Ip),
            "{:?}",
            kinds(&r)
        );
        assert!(
            r.checkouts
                .iter()
                .all(|c| c.client_ip.as_deref() == Some("10.9.0.7"))
        );
        assert_eq!(r.peaks.len(), 1);
        assert_eq!(r.peaks[0].peak, 41);
        assert_eq!(r.peaks[0].peak_at_us, DAY + (h + 2) * S);

        sessions.push(sess(
            99,
            h * S + 1_500_000,
            (h + 3600) * S,
            "10.9.0.8",
            "hpc",
            "node07",
        ));
        let r = run(&lines, &sessions);
        assert_eq!(r.offset_us, 0);
        let kinds = kinds(&r);
        // The OUTs of second h (i = 0..=14) have the connections opened up
        // to h + 1 s as candidates, all from one IP: the latest is conn 14.
        assert_eq!(kinds[0], (Match::Ip, Some("10.9.0.7"), Some(14)));
        assert_eq!(kinds[14], (Match::Ip, Some("10.9.0.7"), Some(14)));
        // From second h + 1 on, conn 99 (another IP, opened at h + 1.5 s)
        // is a candidate: `nearest`, the latest opened wins.
        assert!(
            kinds[15..].iter().all(|k| k.0 == Match::Nearest),
            "{kinds:?}"
        );
        assert_eq!(kinds[15], (Match::Nearest, Some("10.9.0.7"), Some(28)));
        assert_eq!(kinds[40], (Match::Nearest, Some("10.9.0.7"), Some(40)));
    }

    #[test]
    fn peaks_sum_licenses_over_closed_intervals() {
        let h = 36_000;
        let r = run(
            &[
                (h, "(cdslmd) OUT: \"V\" a@h (2 licenses)"),
                (h + 10, "(cdslmd) OUT: \"V\" b@h (3 licenses)"),
                (h + 20, "(cdslmd) IN: \"V\" a@h (2 licenses)"),
                (h + 20, "(cdslmd) OUT: \"V\" c@h (2 licenses)"),
                (h + 30, "(cdslmd) OUT: \"V\" d@h"),
                (h + 40, "(MLM) OUT: \"V\" d@h"),
            ],
            &[],
        );
        let p: Vec<(&str, &str, u32, i64)> = r
            .peaks
            .iter()
            .map(|p| (p.daemon.as_str(), p.feature.as_str(), p.peak, p.peak_at_us))
            .collect();
        assert_eq!(
            p,
            [
                // a's check-in and c's checkout in one second overlap
                ("cdslmd", "V", 7, DAY + (h + 20) * S),
                ("MLM", "V", 1, DAY + (h + 40) * S),
            ]
        );
    }

    #[test]
    fn zero_length_checkout_is_a_peak_of_one() {
        // found by fuzzing: OUT and IN in the same second
        let r = run(
            &[
                (36_000, "(MLM) OUT: \"A\" a@h"),
                (36_000, "(MLM) IN: \"A\" a@h"),
            ],
            &[],
        );
        assert_eq!(r.checkouts[0].in_us, Some(r.checkouts[0].out_us));
        assert_eq!(
            (r.peaks[0].peak, r.peaks[0].peak_at_us),
            (1, DAY + 36_000 * S)
        );
    }

    #[test]
    fn rows_sorted_by_time_across_files() {
        let a = " 0:00:00 (lmgrd) TIMESTAMP 5/5/2022\n10:00:00 (MLM) OUT: \"B\" u@h\n".to_string();
        let b = " 0:00:00 (lmgrd) TIMESTAMP 5/5/2022\n 9:00:00 (MLM) OUT: \"A\" u@h\n".to_string();
        let r = analyze(&[("a".into(), a), ("b".into(), b)], Some("UTC"), &[]).expect("analyze");
        let f: Vec<&str> = r.checkouts.iter().map(|c| c.feature.as_str()).collect();
        assert_eq!(f, ["A", "B"]);
    }

    #[test]
    fn index_handles_many_connections_per_key() {
        // 20,000 short connections of one user@host and one long one: a
        // look-up stays correct (the long one is found behind the short ones).
        let mut sessions: Vec<Session> = (0..20_000)
            .map(|i| {
                sess(
                    i,
                    i as i64 * 10 * S,
                    (i as i64 * 10 + 2) * S,
                    "10.0.0.1",
                    "u",
                    "h",
                )
            })
            .collect();
        sessions.push(sess(99_999, 0, 300_000 * S, "10.0.0.2", "u", "h"));
        let idx = Index::new(&sessions);
        let slot = idx.slot("u", "H");
        let f = lookup(&idx, slot, DAY + 55 * S);
        assert_eq!((f.matched, f.session), (Match::Exact, Some(20_000)));
        let f = lookup(&idx, slot, DAY + 50 * S);
        assert_eq!(f.matched, Match::Nearest);
        assert_eq!(f.session, Some(5));
        let _ = Checkout::clone;
    }
}

#[cfg(test)]
mod bench {
    //! `cargo test --release --lib report::join::bench -- --ignored --nocapture`:
    //! N connection entries and N debug-log lines (N/2 checkouts with their
    //! check-ins, a TIMESTAMP every 6 h), 20,000 users on 5,000 hosts, the
    //! license server's clock 42 s behind; prints the time of `analyze`.
    use super::super::flexlm::analyze;
    use super::super::{Match, Session, Text};
    use std::fmt::Write as _;
    use std::time::Instant;

    const S: i64 = 1_000_000;
    /// 2026-01-01T00:00:00Z
    const T0: i64 = 1_767_225_600 * S;

    fn data(n: usize) -> (Vec<Session>, String) {
        let mut rng = crate::testutil::Rng::new(0x2545_f491_4f6c_dd1d);
        let mut rnd = move |m: u64| rng.next_u64() % m;
        let users: Vec<Text> = (0..20_000).map(|i| format!("user{i}").into()).collect();
        let hosts: Vec<Text> = (0..5_000).map(|i| format!("PC-{i:04}").into()).collect();
        let ips: Vec<Text> = (0..5_000)
            .map(|i| format!("10.{}.{}.{}", i / 65536, i / 256 % 256, i % 256).into())
            .collect();
        let ok: Text = "ok".into();
        let mut sessions = Vec::with_capacity(n);
        // (debug-log second, line without the time)
        let mut events: Vec<(i64, String)> = Vec::with_capacity(n);
        let mut t = T0;
        for i in 0..n {
            t += 1 + rnd(2 * S as u64) as i64;
            let len = 60 * S + rnd(3 * 3600 * S as u64) as i64;
            let u = rnd(users.len() as u64) as usize;
            let h = u % hosts.len();
            sessions.push(Session {
                conn: Some(i as u64),
                start_us: t,
                end_us: t + len,
                client_ip: ips[h].clone(),
                user: Some(users[u].clone()),
                host: Some(hosts[h].clone()),
                status: ok.clone(),
                ..Session::default()
            });
            if i % 2 == 0 {
                let out = (t + 300_000) / S - 42;
                let back = out + (len / S) / 2;
                let f = ["MATLAB", "SIMULINK", "Signal_Toolbox"][i % 3];
                events.push((
                    out,
                    format!("(MLM) OUT: \"{f}\" {}@{}  ", users[u], hosts[h]),
                ));
                events.push((
                    back,
                    format!("(MLM) IN: \"{f}\" {}@{}  ", users[u], hosts[h]),
                ));
            }
        }
        events.sort_by_key(|e| e.0);
        let mut log = String::with_capacity(n * 50);
        let mut next_stamp = i64::MIN;
        for (sec, line) in &events {
            let tod = sec.rem_euclid(86_400);
            if *sec >= next_stamp {
                let ts = jiff::Timestamp::from_second(*sec).expect("time");
                let d = jiff::tz::TimeZone::UTC.to_datetime(ts).date();
                let _ = writeln!(
                    log,
                    "{:2}:{:02}:{:02} (lmgrd) TIMESTAMP {}/{}/{}",
                    tod / 3600,
                    tod / 60 % 60,
                    tod % 60,
                    d.month(),
                    d.day(),
                    d.year()
                );
                next_stamp = sec - tod % 21_600 + 21_600;
            }
            let _ = writeln!(
                log,
                "{:2}:{:02}:{:02} {line}",
                tod / 3600,
                tod / 60 % 60,
                tod % 60
            );
        }
        (sessions, log)
    }

    /// CPU seconds of this thread (user + system), from /proc: the machine
    /// is shared, so wall time alone says little.
    fn cpu_secs() -> f64 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
        let after = stat.rsplit_once(')').map_or("", |x| x.1);
        let f: Vec<f64> = after
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0.0))
            .collect();
        // fields 14 and 15 of stat(5) (utime, stime), in clock ticks
        (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
    }

    #[test]
    #[ignore = "benchmark: run with --release --ignored --nocapture"]
    fn analyze_100k_to_1m() {
        for n in [100_000, 300_000, 1_000_000] {
            let (sessions, log) = data(n);
            let lines = log.lines().count();
            let logs = [("bench.log".to_string(), log)];
            // the phases alone, then analyze as a whole
            let c0 = cpu_secs();
            let mut parsed = super::super::flexlm::Parsed::default();
            super::super::flexlm::parse_file(
                "b",
                &logs[0].1,
                &jiff::tz::TimeZone::UTC,
                None,
                &mut parsed,
            );
            let c1 = cpu_secs();
            drop(super::Index::new(&sessions));
            let c2 = cpu_secs();
            drop(super::join(parsed, &sessions));
            let c3 = cpu_secs();
            println!(
                "n={n}: CPU parse {:.2} s, index {:.2} s, join with index {:.2} s",
                c1 - c0,
                c2 - c1,
                c3 - c2
            );
            let (t, c) = (Instant::now(), cpu_secs());
            let r = analyze(&logs, Some("UTC"), &sessions).expect("analyze");
            let secs = t.elapsed().as_secs_f64();
            let cpu = cpu_secs() - c;
            let none = r
                .checkouts
                .iter()
                .filter(|c| c.matched == Match::None)
                .count();
            println!(
                "n={n}: {lines} debug-log lines, {} sessions -> {} checkouts ({none} unmatched), offset {} s from {} samples: analyze {secs:.2} s wall, {cpu:.2} s CPU",
                sessions.len(),
                r.checkouts.len(),
                r.offset_us / S,
                r.offset_samples
            );
            assert_eq!(r.offset_us, 42 * S);
            assert!(
                r.warnings.is_empty(),
                "{:?}",
                &r.warnings[..r.warnings.len().min(5)]
            );
        }
    }
}
