//! Totals per `--by` key: sessions, connected time as the union of the
//! key's intervals (not their sum), first and last seen, distinct IPs and
//! hosts, the peak of concurrent connections and when it was first
//! reached; the `--from`/`--to` window (overlapping rows kept, their time
//! clipped). Only connections that reached the destination count. Pure.

use std::collections::{BTreeSet, HashMap};

use rustc_hash::FxHashMap;
use std::net::IpAddr;

use super::{Checkout, Peak, Session, Text};
use crate::log::timefmt::{LocalTime, parse_naive};

const US: i64 = 1_000_000;

/// What totals are grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum By {
    User,
    Host,
    Ip,
    Service,
    Program,
    /// The checkout's feature (needs a debug log).
    Feature,
}

impl By {
    pub const NAMES: &'static str = "user|host|ip|service|program|feature";

    pub fn parse(s: &str) -> Option<By> {
        Some(match s {
            "user" => By::User,
            "host" => By::Host,
            "ip" => By::Ip,
            "service" => By::Service,
            "program" => By::Program,
            "feature" => By::Feature,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            By::User => "user",
            By::Host => "host",
            By::Ip => "ip",
            By::Service => "service",
            By::Program => "program",
            By::Feature => "feature",
        }
    }

    /// The key of a session (`None`: unknown).
    fn of(self, s: &Session) -> Option<&Text> {
        match self {
            By::User => s.user.as_ref(),
            By::Host => s.host.as_ref(),
            By::Ip => (!s.client_ip.is_empty()).then_some(&s.client_ip),
            By::Service => s.service.as_ref(),
            By::Program => s.program.as_ref(),
            By::Feature => None,
        }
    }
}

/// Did the connection reach the destination (SPEC: totals count these)?
pub fn reached(status: &str) -> bool {
    !matches!(
        status,
        "denied" | "refused" | "timeout" | "unreachable" | "error"
    )
}

/// The `--from`/`--to` window, epoch microseconds, both ends included.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Window {
    pub from: Option<i64>,
    pub to: Option<i64>,
}

impl Window {
    /// Does `[start, end]` overlap the window?
    pub fn overlaps(&self, start: i64, end: i64) -> bool {
        self.from.is_none_or(|f| end >= f) && self.to.is_none_or(|t| start <= t)
    }

    /// `[start, end]` clipped to the window.
    pub fn clip(&self, start: i64, end: i64) -> (i64, i64) {
        let s = self.from.map_or(start, |f| start.max(f));
        let e = self.to.map_or(end, |t| end.min(t));
        (s, e.max(s))
    }

    /// Is an instant inside the window?
    pub fn holds(&self, t: i64) -> bool {
        self.overlaps(t, t)
    }
}

/// Read a `--from`/`--to` value: RFC 3339, or `yyyy-mm-dd[ HH:MM[:SS]]` in
/// local time (`offset_at` gives the local UTC offset at an instant). A
/// bare date as `--to` means the end of that day (`end_of_day`).
pub fn parse_time(s: &str, end_of_day: bool, offset_at: &dyn Fn(i64) -> i32) -> Option<i64> {
    if let Some(t) = LocalTime::parse(s) {
        return Some(t.epoch_us);
    }
    let mut naive = parse_naive(s)?;
    if end_of_day && s.len() == "yyyy-mm-dd".len() {
        naive += 86_400;
    }
    // the offset in force at that wall-clock time: guess, then re-check
    let guess = naive - i64::from(offset_at(naive));
    let secs = naive - i64::from(offset_at(guess));
    Some(secs * US)
}

/// An interval with a weight: `(start, end, weight)`.
pub type Weighted = (i64, i64, u64);

/// One row of totals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Total {
    pub by: By,
    /// The key's value; `None` when unknown (`-` in the entries).
    pub key: Option<Text>,
    pub sessions: usize,
    /// Union of the intervals, microseconds.
    pub connected_us: i64,
    pub first_us: i64,
    pub last_us: i64,
    pub ips: Vec<Text>,
    pub hosts: Vec<Text>,
    pub peak: u64,
    pub peak_at_us: i64,
}

impl Total {
    /// Connected time in whole seconds (truncated, as `%S`).
    pub fn connected_secs(&self) -> i64 {
        self.connected_us / US
    }
}

/// Length of the union of intervals (sorted in place).
pub fn union_us(iv: &mut [(i64, i64)]) -> i64 {
    iv.sort_unstable();
    let mut total = 0;
    let mut cur: Option<(i64, i64)> = None;
    for &(s, e) in iv.iter() {
        cur = match cur {
            Some((cs, ce)) if s <= ce => Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                total += ce - cs;
                Some((s, e))
            }
            None => Some((s, e)),
        };
    }
    if let Some((cs, ce)) = cur {
        total += ce - cs;
    }
    total
}

/// Length of the union of weighted intervals (weights ignored; sorted in
/// place, no copy).
fn union_weighted(iv: &mut [Weighted]) -> i64 {
    iv.sort_unstable_by_key(|x| (x.0, x.1));
    let mut total = 0;
    let mut cur: Option<(i64, i64)> = None;
    for &(s, e, _) in iv.iter() {
        cur = match cur {
            Some((cs, ce)) if s <= ce => Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                total += ce - cs;
                Some((s, e))
            }
            None => Some((s, e)),
        };
    }
    total + cur.map_or(0, |(cs, ce)| ce - cs)
}

/// Open/close events of weighted intervals, in time order, an open before
/// a close at the same instant: intervals are closed, so a connection
/// whose whole-second times are equal still counts, and two that touch
/// at a second (which at that resolution may have overlapped) count as
/// concurrent.
fn events(iv: &[(i64, i64, u64)]) -> Vec<(i64, i64)> {
    // (time, +weight) for an open, (time, -weight) for a close: 16 bytes
    // an event, sorted so that at one instant the opens come first
    let w = |x: u64| i64::try_from(x).unwrap_or(i64::MAX);
    let mut ev: Vec<(i64, i64)> = Vec::with_capacity(iv.len() * 2);
    for &(s, e, x) in iv {
        ev.push((s, w(x)));
        ev.push((e, -w(x)));
    }
    ev.sort_unstable_by_key(|&(t, d)| (t, d < 0));
    ev
}

/// Most weight open at once, and when first reached (0 and `None` for
/// nothing).
pub fn peak(iv: &[(i64, i64, u64)]) -> (u64, Option<i64>) {
    let mut cur: i64 = 0;
    let mut best = (0, None);
    for (t, d) in events(iv) {
        cur = (cur + d).max(0);
        if d > 0 && cur.unsigned_abs() > best.0 {
            best = (cur.unsigned_abs(), Some(t));
        }
    }
    best
}

/// The step function of weight open over time: `(time, value from then
/// on)`, one point per instant with events, preceded by `(time, high)`
/// when more was open at that very instant (a zero-length connection, or
/// one that ends in the second another starts) than after it.
pub fn steps(iv: &[(i64, i64, u64)]) -> Vec<(i64, u64)> {
    let mut out: Vec<(i64, u64)> = Vec::new();
    let mut cur: u64 = 0;
    let ev = events(iv);
    let mut i = 0;
    while i < ev.len() {
        // all events of one instant: opens first, so `high` is what was
        // open at that instant, `cur` what stays open after it
        let t = ev[i].0;
        let mut high = 0;
        while i < ev.len() && ev[i].0 == t {
            let d = ev[i].1;
            if d > 0 {
                cur += d.unsigned_abs();
                high = high.max(cur);
            } else {
                cur = cur.saturating_sub(d.unsigned_abs());
            }
            i += 1;
        }
        if high > cur {
            out.push((t, high));
        }
        out.push((t, cur));
    }
    out
}

/// Everything known about one key so far.
#[derive(Default)]
struct Acc {
    sessions: usize,
    iv: Vec<(i64, i64, u64)>,
    ips: BTreeSet<Text>,
    hosts: BTreeSet<Text>,
}

fn finish(by: By, groups: FxHashMap<Option<Text>, Acc>) -> Vec<Total> {
    let mut rows: Vec<Total> = groups
        .into_iter()
        .map(|(key, mut a)| {
            let (peak, at) = peak(&a.iv);
            let first_us = a.iv.iter().map(|x| x.0).min().unwrap_or(0);
            let last_us = a.iv.iter().map(|x| x.1).max().unwrap_or(0);

            let mut ips: Vec<Text> = a.ips.into_iter().collect();
            // addresses in address order (10.0.0.9 before 10.0.0.10)
            ips.sort_by_cached_key(|ip| (ip.parse::<IpAddr>().ok(), ip.clone()));
            Total {
                by,
                key,
                sessions: a.sessions,
                connected_us: union_weighted(&mut a.iv),
                first_us,
                last_us,
                ips,
                hosts: a.hosts.into_iter().collect(),
                peak,
                peak_at_us: at.unwrap_or(first_us),
            }
        })
        .collect();
    // the heaviest users first; ties (and unknown keys last) by name
    rows.sort_by(|a, b| {
        b.connected_us
            .cmp(&a.connected_us)
            .then_with(|| a.key.is_none().cmp(&b.key.is_none()))
            .then_with(|| a.key.cmp(&b.key))
    });
    rows
}

/// Totals of the sessions that reached the destination and overlap the
/// window, per `by` key (not [`By::Feature`]: see [`feature_totals`]).
pub fn session_totals(sessions: &[Session], by: By, w: &Window) -> Vec<Total> {
    let mut groups: FxHashMap<Option<Text>, Acc> = FxHashMap::default();
    for s in sessions {
        if !reached(&s.status) || !w.overlaps(s.start_us, s.end_us) {
            continue;
        }
        let a = groups.entry(by.of(s).cloned()).or_default();
        a.sessions += 1;
        let (cs, ce) = w.clip(s.start_us, s.end_us);
        a.iv.push((cs, ce, 1));
        if !s.client_ip.is_empty() {
            a.ips.insert(s.client_ip.clone());
        }
        if let Some(h) = &s.host {
            a.hosts.insert(h.clone());
        }
    }
    finish(by, groups)
}

/// Where an open checkout (no IN before the log ended) is taken to end.
fn checkout_end(c: &Checkout, end_of_data: i64) -> i64 {
    c.in_us.unwrap_or(end_of_data.max(c.out_us))
}

/// Totals per checkout feature: checkouts, time with the feature out
/// (union), IPs of the matched connections, hosts, peak of concurrent
/// checkouts. An open checkout counts until `end_of_data`.
pub fn feature_totals(checkouts: &[Checkout], w: &Window, end_of_data: i64) -> Vec<Total> {
    let mut groups: FxHashMap<Option<Text>, Acc> = FxHashMap::default();
    for c in checkouts {
        let end = checkout_end(c, end_of_data);
        if !w.overlaps(c.out_us, end) {
            continue;
        }
        let a = groups.entry(Some(c.feature.as_str().into())).or_default();
        a.sessions += 1;
        let (cs, ce) = w.clip(c.out_us, end);
        a.iv.push((cs, ce, 1));
        if let Some(ip) = &c.client_ip {
            a.ips.insert(ip.as_str().into());
        }
        a.hosts.insert(c.host.as_str().into());
    }
    finish(By::Feature, groups)
}

/// Peaks of licenses out per daemon and feature, within the window (a
/// window other than the whole log gives other peaks than the debug-log
/// join's).
pub fn window_peaks(checkouts: &[Checkout], w: &Window, end_of_data: i64) -> Vec<Peak> {
    let mut groups: HashMap<(&str, &str), Vec<Weighted>> = HashMap::new();
    for c in checkouts {
        let end = checkout_end(c, end_of_data);
        if w.overlaps(c.out_us, end) {
            let (cs, ce) = w.clip(c.out_us, end);
            groups.entry((&c.daemon, &c.feature)).or_default().push((
                cs,
                ce,
                u64::from(c.licenses),
            ));
        }
    }
    let mut peaks: Vec<Peak> = groups
        .into_iter()
        .map(|((daemon, feature), iv)| {
            let (p, at) = peak(&iv);
            Peak {
                daemon: daemon.to_string(),
                feature: feature.to_string(),
                peak: u32::try_from(p).unwrap_or(u32::MAX),
                peak_at_us: at.unwrap_or(0),
            }
        })
        .collect();
    peaks.sort_by(|a, b| (&a.daemon, &a.feature).cmp(&(&b.daemon, &b.feature)));
    peaks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Match;

    fn s(start: i64, end: i64, user: &str, ip: &str, status: &str) -> Session {
        Session {
            start_us: start * US,
            end_us: end * US,
            client_ip: ip.into(),
            user: Some(user.into()),
            host: Some(format!("{user}-pc").into()),
            status: status.into(),
            ..Session::default()
        }
    }

    #[test]
    fn union_not_sum_and_peak() {
        let v = vec![
            s(0, 100, "a", "10.0.0.1", "ok"),
            s(50, 150, "a", "10.0.0.2", "ok"),
            s(150, 160, "a", "10.0.0.1", "idle"), // touches: 2 at 150
            s(200, 210, "a", "10.0.0.1", "ok"),
            s(0, 1000, "a", "10.0.0.9", "refused"), // never reached
            s(10, 20, "b", "10.0.0.3", "ok"),
        ];
        let t = session_totals(&v, By::User, &Window::default());
        assert_eq!(t.len(), 2);
        let a = &t[0];
        assert_eq!(a.key.as_deref(), Some("a"));
        assert_eq!(a.sessions, 4);
        assert_eq!(a.connected_secs(), 170); // the sum would be 220
        assert_eq!((a.first_us, a.last_us), (0, 210 * US));
        assert_eq!(
            a.ips.iter().map(|x| &**x).collect::<Vec<_>>(),
            ["10.0.0.1", "10.0.0.2"]
        );
        assert_eq!(a.hosts.len(), 1);
        assert_eq!((a.peak, a.peak_at_us), (2, 50 * US));
        assert_eq!(t[1].connected_secs(), 10);
        // a zero-length session is open at its instant
        let z = vec![
            s(5, 5, "z", "x", "ok"),
            s(5, 9, "z", "x", "ok"),
            s(6, 9, "z", "x", "ok"),
        ];
        let t = session_totals(&z, By::User, &Window::default());
        assert_eq!((t[0].peak, t[0].peak_at_us), (2, 5 * US));
        let by_ip = session_totals(&v, By::Ip, &Window::default());
        assert_eq!(by_ip.len(), 3);
        assert_eq!(by_ip[0].key.as_deref(), Some("10.0.0.1"));
        assert_eq!(by_ip[0].connected_secs(), 120);
        let by_service = session_totals(&v, By::Service, &Window::default());
        assert_eq!(by_service.len(), 1);
        assert_eq!(by_service[0].key, None);
        assert_eq!(by_service[0].sessions, 5);
    }

    #[test]
    fn window_clips() {
        let v = vec![s(0, 100, "a", "x", "ok"), s(300, 400, "a", "x", "ok")];
        let w = Window {
            from: Some(50 * US),
            to: Some(320 * US),
        };
        let t = session_totals(&v, By::User, &w);
        assert_eq!(t[0].sessions, 2);
        assert_eq!(t[0].connected_secs(), 70);
        assert_eq!((t[0].first_us, t[0].last_us), (50 * US, 320 * US));
        let w = Window {
            from: Some(101 * US),
            to: Some(299 * US),
        };
        assert!(session_totals(&v, By::User, &w).is_empty());
        assert!(w.holds(200 * US) && !w.holds(300 * US));
    }

    #[test]
    fn time_arguments() {
        let paris = |secs: i64| if secs >= 1_795_000_000 { 3600 } else { 7200 };
        assert_eq!(
            parse_time("2026-11-23T21:30:05+01:00", false, &paris),
            Some(1_795_465_805 * US)
        );
        assert_eq!(
            parse_time("2026-11-23 21:30:05", false, &paris),
            Some(1_795_465_805 * US)
        );
        assert_eq!(
            parse_time("2026-11-23 21:30", false, &paris),
            Some(1_795_465_800 * US)
        );
        assert_eq!(
            parse_time("2026-11-23", false, &paris),
            Some((1_795_392_000 - 3600) * US)
        );
        assert_eq!(
            parse_time("2026-11-23", true, &paris),
            Some((1_795_478_400 - 3600) * US)
        );
        assert_eq!(parse_time("yesterday", false, &paris), None);
        assert_eq!(parse_time("2026-11-31", false, &paris), None);
    }

    fn co(feature: &str, out: i64, inn: Option<i64>, licenses: u32) -> Checkout {
        Checkout {
            daemon: "MLM".into(),
            feature: feature.into(),
            user: "u".into(),
            host: "h".into(),
            cdstring: None,
            licenses,
            out_us: out * US,
            in_us: inn.map(|x| x * US),
            reason: None,
            client_ip: Some("10.0.0.1".into()),
            conn: None,
            matched: Match::Exact,
        }
    }

    #[test]
    fn features_and_peaks() {
        let c = vec![
            co("MATLAB", 0, Some(100), 1),
            co("MATLAB", 50, None, 2),
            co("SIMULINK", 10, Some(20), 1),
        ];
        let t = feature_totals(&c, &Window::default(), 300 * US);
        assert_eq!(t[0].key.as_deref(), Some("MATLAB"));
        assert_eq!(
            (t[0].sessions, t[0].connected_secs(), t[0].peak),
            (2, 300, 2)
        );
        let p = window_peaks(&c, &Window::default(), 300 * US);
        assert_eq!(
            (p[0].feature.as_str(), p[0].peak, p[0].peak_at_us),
            ("MATLAB", 3, 50 * US)
        );
        let w = Window {
            from: Some(150 * US),
            to: None,
        };
        let p = window_peaks(&c, &w, 300 * US);
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].peak, p[0].peak_at_us), (2, 150 * US));
        assert_eq!(
            steps(&[(0, 10, 1), (5, 10, 1), (10, 20, 1), (30, 30, 1)]),
            vec![(0, 1), (5, 2), (10, 3), (10, 1), (20, 0), (30, 1), (30, 0)]
        );
    }
}
