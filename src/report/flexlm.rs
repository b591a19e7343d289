//! FlexNet / FLEXlm debug logs (`lmgrd -l FILE`): a tolerant parser for the
//! layouts of `shared/FLEXLM-LOGS.md` and the OUT/IN pairing.
//!
//! Lines are `h:mm:ss (daemon) message` with the time of day only, in the
//! license server's zone (`--log-tz`). The date comes from anchor lines
//! (`TIMESTAMP M/D/YYYY`, `started on ... (M/D/YYYY)`, `Server's System
//! Date and Time: ...`, SLOG `Start-Date:`/`Time:`), re-checked at every
//! anchor; between anchors the day advances whenever the time of day goes
//! backwards (except a step of an hour into a DST fold, and jitter of a
//! few seconds between interleaved daemons). Lines before the first anchor
//! are dated back from it.
//!
//! OUT/IN are paired per file, per daemon, feature, user@host and
//! cdstring, as a multiset, first in first out. `analyze` then hands the
//! rows to `join`, which corrects the clock offset and finds the
//! connections. The parser never panics, skips what it cannot read with a
//! `FILE:LINE: reason` warning, and keeps at most [`MAX_WARNINGS`] of
//! those.

use std::collections::VecDeque;
use std::sync::Mutex;

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{Span, Timestamp};
use rustc_hash::FxHashMap;

use super::{Checkout, Denial, FlexReport, Match, Session, Unsupported};

/// Warnings kept; later ones are only counted.
pub const MAX_WARNINGS: usize = 1000;
/// A backward step of the time of day this small is interleaving of
/// daemons writing to the same file, not a new day.
const JITTER_SECS: i32 = 10;
/// Longest backward step that a DST fold explains (one hour, plus jitter).
const FOLD_SECS: i32 = 3600 + JITTER_SECS;
/// Distinct unknown check-in reason words kept (process-wide).
const MAX_REASON_WORDS: usize = 64;
const US: i64 = 1_000_000;

/// Parse the debug logs, pair OUT/IN, join with the connection entries.
/// `log_tz`: IANA zone or `UTC`; `None` is the zone of this machine.
pub fn analyze(
    logs: &[(String, String)],
    log_tz: Option<&str>,
    sessions: &[Session],
) -> Result<FlexReport, String> {
    let tz = zone(log_tz)?;
    let fallback = fallback_date(sessions, &tz);
    let mut parsed = Parsed::default();
    for (name, content) in logs {
        parse_file(name, content, &tz, fallback, &mut parsed);
    }
    Ok(super::join::join(parsed, sessions))
}

/// The `--log-tz` zone.
pub fn zone(log_tz: Option<&str>) -> Result<TimeZone, String> {
    match log_tz {
        None => Ok(TimeZone::system()),
        Some(name) if name.eq_ignore_ascii_case("UTC") || name == "Z" => Ok(TimeZone::UTC),
        Some(name) => {
            TimeZone::get(name).map_err(|e| format!("--log-tz: cannot find time zone {name}: {e}"))
        }
    }
}

/// Date used for a log that has no anchor at all: the day of the first
/// connection entry, in the server's zone.
fn fallback_date(sessions: &[Session], tz: &TimeZone) -> Option<Date> {
    let first = sessions.iter().map(|s| s.start_us).min()?;
    let ts = Timestamp::from_microsecond(first).ok()?;
    Some(tz.to_datetime(ts).date())
}

/// What the parser gives to the join: times are debug-log times (not yet
/// corrected by the clock offset).
#[derive(Debug, Default)]
pub struct Parsed {
    pub checkouts: Vec<Checkout>,
    pub denials: Vec<Denial>,
    pub unsupported: Vec<Unsupported>,
    pub warnings: Vec<String>,
    /// Warnings beyond [`MAX_WARNINGS`].
    pub dropped_warnings: usize,
}

impl Parsed {
    fn warn(&mut self, msg: String) {
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(msg);
        } else {
            self.dropped_warnings += 1;
        }
    }
}

/// The time at the start of a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stamp {
    /// `h:mm:ss`, seconds of the day.
    Tod(i32),
    /// `mm/dd hh:mm` (very old FLEXlm).
    MonthDay(i8, i8, i32),
    /// `yyyy-mm-ddThh:mm:ss[Z]` (`lmgrd -datestamp`); `true` when UTC.
    Full(DateTime, bool),
}

/// Split a line into its time, daemon and message.
fn split_line(line: &str) -> Option<(Stamp, &str, &str)> {
    let s = line.trim_start_matches([' ', '\t']);
    let (stamp, rest) = stamp(s)?;
    let rest = rest.strip_prefix(' ')?.trim_start_matches(' ');
    let rest = rest.strip_prefix('(')?;
    let close = rest.find(')')?;
    let daemon = &rest[..close];
    if daemon.is_empty() || daemon.contains([' ', '(']) {
        return None;
    }
    let msg = &rest[close + 1..];
    let msg = match msg.strip_prefix(' ') {
        Some(m) => m,
        None if msg.is_empty() => msg,
        None => return None,
    };
    Some((stamp, daemon, msg))
}

fn digits(s: &str, min: usize, max: usize) -> Option<(i32, &str)> {
    let n = s.bytes().take(max).take_while(u8::is_ascii_digit).count();
    if n < min {
        return None;
    }
    Some((s[..n].parse().ok()?, &s[n..]))
}

fn hms(s: &str, hmin: usize) -> Option<(i32, &str)> {
    let (h, r) = digits(s, hmin, 2)?;
    let (m, r) = digits(r.strip_prefix(':')?, 2, 2)?;
    let (sec, r) = digits(r.strip_prefix(':')?, 2, 2)?;
    if h > 23 || m > 59 || sec > 60 {
        return None;
    }
    Some((h * 3600 + m * 60 + sec.min(59), r))
}

fn stamp(s: &str) -> Option<(Stamp, &str)> {
    if let Some(r) = hms(s, 1) {
        return Some((Stamp::Tod(r.0), r.1));
    }
    // yyyy-mm-ddThh:mm:ss[Z]
    if let Some((y, r)) = digits(s, 4, 4) {
        let (mo, r) = digits(r.strip_prefix('-')?, 2, 2)?;
        let (d, r) = digits(r.strip_prefix('-')?, 2, 2)?;
        let r = r.strip_prefix(['T', ' '])?;
        let (tod, r) = hms(r, 2)?;
        let (utc, r) = match r.strip_prefix('Z') {
            Some(r) => (true, r),
            None => (false, r),
        };
        let date = Date::new(y as i16, mo as i8, d as i8).ok()?;
        return Some((Stamp::Full(at(date, tod)?, utc), r));
    }
    // mm/dd hh:mm
    let (mo, r) = digits(s, 1, 2)?;
    let (d, r) = digits(r.strip_prefix('/')?, 1, 2)?;
    let r = r.strip_prefix(' ')?;
    let (h, r) = digits(r, 1, 2)?;
    let (mi, r) = digits(r.strip_prefix(':')?, 2, 2)?;
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 {
        return None;
    }
    Some((Stamp::MonthDay(mo as i8, d as i8, h * 3600 + mi * 60), r))
}

fn at(date: Date, tod: i32) -> Option<DateTime> {
    let t = Time::new(
        (tod / 3600) as i8,
        (tod / 60 % 60) as i8,
        (tod % 60) as i8,
        0,
    )
    .ok()?;
    Some(DateTime::from_parts(date, t))
}

fn add_days(date: Date, days: i64) -> Option<Date> {
    date.checked_add(Span::new().try_days(days).ok()?).ok()
}

/// `M/D/YYYY`.
fn mdy(s: &str) -> Option<Date> {
    let mut it = s.trim().split('/');
    let m: i8 = it.next()?.trim().parse().ok()?;
    let d: i8 = it.next()?.trim().parse().ok()?;
    let y: i16 = it.next()?.trim().parse().ok()?;
    if it.next().is_some() {
        return None;
    }
    Date::new(y, m, d).ok()
}

/// `Wed Mar 30 2016 ...` (weekday, month name, day, year).
fn wmdy(s: &str) -> Option<Date> {
    let mut it = s.split_whitespace();
    let _weekday = it.next()?;
    let mon = it.next()?;
    let m = MONTHS
        .iter()
        .position(|n| mon.get(..3).is_some_and(|m| n.eq_ignore_ascii_case(m)))?;
    let d: i8 = it.next()?.parse().ok()?;
    let y: i16 = it.next()?.parse().ok()?;
    Date::new(y, m as i8 + 1, d).ok()
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The date an anchor line states.
fn anchor(msg: &str) -> Option<Date> {
    if let Some(r) = msg.strip_prefix("TIMESTAMP ") {
        return mdy(r);
    }
    if let Some(i) = msg.find("System Date and Time:") {
        return wmdy(&msg[i + "System Date and Time:".len()..]);
    }
    if msg.starts_with("(@") && msg.contains("-SLOG@)") {
        for key in ["Start-Date:", "Time:"] {
            if let Some(i) = msg.find(key) {
                return wmdy(&msg[i + key.len()..]);
            }
        }
        return None;
    }
    if msg.contains("started on") {
        let r = msg.trim_end().strip_suffix(')')?;
        let open = r.rfind('(')?;
        return mdy(&r[open + 1..]);
    }
    None
}

/// A server start or stop: what is still out is closed (`SHUTDOWN`).
fn is_start_or_stop(msg: &str) -> bool {
    (msg.contains("started on") && !msg.starts_with("(@"))
        || msg.starts_with("SHUTDOWN request")
        || msg.starts_with("Shutting down")
        || msg.starts_with("EXITING DUE TO SIGNAL")
        || msg.starts_with("lmgrd will now shut down")
}

/// Daemons whose start or stop takes all vendor daemons with them.
fn is_master(daemon: &str) -> bool {
    daemon == "lmgrd" || daemon == "lmadmin"
}

/// The day of each line: anchors and backward steps of the time of day.
struct Days<'t> {
    tz: &'t TimeZone,
    date: Option<Date>,
    last: Option<i32>,
    /// In the second pass of a DST fold: ambiguous times take the later
    /// offset.
    fold: bool,
}

impl Days<'_> {
    /// Move on to a line at `tod` seconds of the day.
    fn step(&mut self, tod: i32) {
        let Some(last) = self.last else {
            self.last = Some(tod);
            return;
        };
        if tod >= last {
            self.last = Some(tod);
            return;
        }
        let back = last - tod;
        if back <= JITTER_SECS {
            return;
        }
        if back <= FOLD_SECS && !self.fold && self.in_fold(tod) {
            self.fold = true;
            self.last = Some(tod);
            return;
        }
        self.date = self.date.and_then(|d| d.tomorrow().ok());
        self.fold = false;
        self.last = Some(tod);
    }

    fn in_fold(&self, tod: i32) -> bool {
        let Some(dt) = self.date.and_then(|d| at(d, tod)) else {
            return false;
        };
        matches!(
            self.tz.to_ambiguous_timestamp(dt).offset(),
            AmbiguousOffset::Fold { .. }
        )
    }

    fn set(&mut self, date: Date) {
        if self.date != Some(date) {
            self.date = Some(date);
            self.fold = false;
        }
    }

    /// Epoch microseconds of `tod` on the current day.
    fn micros(&self, tod: i32) -> Option<i64> {
        let dt = at(self.date?, tod)?;
        let amb = self.tz.to_ambiguous_timestamp(dt);
        let ts = match amb.offset() {
            AmbiguousOffset::Fold { .. } if self.fold => amb.later(),
            AmbiguousOffset::Fold { .. } => amb.earlier(),
            _ => amb.compatible(),
        };
        ts.ok().map(Timestamp::as_microsecond)
    }
}

/// First pass: the date of the file's first line, dated back from its first
/// anchor (or a full date stamp). `None` when the file has neither.
fn start_date(content: &str, tz: &TimeZone) -> Option<Date> {
    // Count day changes on a day without DST transitions.
    let base = Date::new(2001, 1, 10).ok()?;
    let mut days = Days {
        tz: &TimeZone::UTC,
        date: Some(base),
        last: None,
        fold: false,
    };
    for line in lines(content) {
        let Some((stamp, _daemon, msg)) = split_line(line.1) else {
            continue;
        };
        match stamp {
            Stamp::Tod(tod) => {
                days.step(tod);
                if let Some(date) = anchor(msg) {
                    let passed = days.date?.since(base).ok()?.get_days();
                    return add_days(date, -i64::from(passed));
                }
            }
            Stamp::Full(dt, utc) => {
                let local = full_local(dt, utc, tz)?;
                days.step(tod_of(local));
                let passed = days.date?.since(base).ok()?.get_days();
                return add_days(local.date(), -i64::from(passed));
            }
            Stamp::MonthDay(..) => {}
        }
    }
    None
}

fn full_local(dt: DateTime, utc: bool, tz: &TimeZone) -> Option<DateTime> {
    if !utc {
        return Some(dt);
    }
    let ts = TimeZone::UTC.to_ambiguous_timestamp(dt).compatible().ok()?;
    Some(tz.to_datetime(ts))
}

fn tod_of(dt: DateTime) -> i32 {
    i32::from(dt.hour()) * 3600 + i32::from(dt.minute()) * 60 + i32::from(dt.second())
}

/// Lines with their 1-based numbers; BOM and CR removed.
fn lines(content: &str) -> impl Iterator<Item = (usize, &str)> {
    let content = content.strip_prefix('\u{feff}').unwrap_or(content);
    content.split('\n').enumerate().map(|(i, l)| {
        let l = l.strip_suffix('\r').unwrap_or(l);
        (i + 1, l)
    })
}

/// Key of an open checkout.
type Key<'a> = (&'a str, &'a str, &'a str, &'a str, Option<&'a str>);

/// Parse one file into `out`.
pub fn parse_file(
    name: &str,
    content: &str,
    tz: &TimeZone,
    fallback: Option<Date>,
    out: &mut Parsed,
) {
    let mut days = Days {
        tz,
        date: start_date(content, tz),
        last: None,
        fold: false,
    };
    if days.date.is_none()
        && let Some(d) = fallback
    {
        days.date = Some(d);
        out.warn(format!(
                "{name}: no date in the log (no TIMESTAMP or start line): assuming {d}, the day of the first connection entry"
            ));
    }
    let mut open: FxHashMap<Key<'_>, VecDeque<usize>> = FxHashMap::default();
    // DENIED lines of the current second: (index, feature, user, host).
    let mut recent: Vec<(usize, &str, &str, &str)> = Vec::new();
    let mut recent_at: Option<i64> = None;
    let mut shaped = 0usize;
    let mut file_warnings: Vec<String> = Vec::new();
    let mut file_dropped = 0usize;
    let mut nodate_warned = false;
    let mut warn = |msg: String, fw: &mut Vec<String>| {
        if fw.len() < MAX_WARNINGS {
            fw.push(msg);
        } else {
            file_dropped += 1;
        }
    };

    for (lineno, line) in lines(content) {
        if line.trim().is_empty() {
            continue;
        }
        let Some((stamp, daemon, msg)) = split_line(line) else {
            warn(
                format!("{name}:{lineno}: not a debug-log line (`h:mm:ss (daemon) message`)"),
                &mut file_warnings,
            );
            continue;
        };
        shaped += 1;
        let tod = match stamp {
            Stamp::Tod(tod) => {
                days.step(tod);
                tod
            }
            Stamp::Full(dt, utc) => {
                let Some(local) = full_local(dt, utc, tz) else {
                    continue;
                };
                let tod = tod_of(local);
                days.step(tod);
                days.set(local.date());
                tod
            }
            Stamp::MonthDay(m, d, tod) => {
                old_in(name, lineno, daemon, msg, m, d, tod, &days, out);
                continue;
            }
        };
        let (kind, rest) = match msg.split_once(' ') {
            Some((k, r)) => (k, r),
            None => (msg, ""),
        };
        let event = matches!(
            kind,
            "OUT:" | "IN:" | "DENIED:" | "UNSUPPORTED:" | "REMOVING"
        );
        if !event
            && matches!(stamp, Stamp::Tod(_))
            && let Some(d) = anchor(msg)
        {
            days.set(d);
        }
        let Some(t) = days.micros(tod) else {
            if !nodate_warned {
                nodate_warned = true;
                warn(
                    format!(
                        "{name}:{lineno}: no date known (no TIMESTAMP or start line in the log): lines skipped"
                    ),
                    &mut file_warnings,
                );
            }
            continue;
        };
        if recent_at != Some(t) {
            recent.clear();
            recent_at = Some(t);
        }

        if !event && is_start_or_stop(msg) {
            let all = is_master(daemon);
            open.retain(|k, q| {
                if all || k.0 == daemon {
                    for &i in q.iter() {
                        close(&mut out.checkouts[i], t);
                        out.checkouts[i].reason = Some("SHUTDOWN");
                    }
                    false
                } else {
                    true
                }
            });
            continue;
        }

        match kind {
            "OUT:" | "IN:" => {
                let Some(ev) = checkout_line(rest) else {
                    warn(
                        format!(
                            "{name}:{lineno}: cannot read {kind} line (no feature or user@host)"
                        ),
                        &mut file_warnings,
                    );
                    continue;
                };
                let key: Key<'_> = (daemon, ev.feature, ev.user, ev.host, ev.cdstring);
                if kind == "OUT:" {
                    for (i, f, u, h) in &recent {
                        if *f == ev.feature && *u == ev.user && *h == ev.host {
                            out.denials[*i].false_denial = true;
                        }
                    }
                    let idx = out.checkouts.len();
                    out.checkouts.push(Checkout {
                        daemon: daemon.to_string(),
                        feature: ev.feature.to_string(),
                        user: ev.user.to_string(),
                        host: ev.host.to_string(),
                        cdstring: ev.cdstring.map(str::to_string),
                        licenses: ev.licenses.unwrap_or(1).max(1),
                        out_us: t,
                        in_us: None,
                        reason: None,
                        client_ip: None,
                        conn: None,
                        matched: Match::None,
                    });
                    open.entry(key).or_default().push_back(idx);
                } else if let Some(q) = open.get_mut(&key) {
                    // An IN without its OUT is ignored.
                    if let Some(i) = q.pop_front() {
                        close(&mut out.checkouts[i], t);
                        out.checkouts[i].reason = ev.reason;
                    }
                    if q.is_empty() {
                        open.remove(&key);
                    }
                }
            }
            "DENIED:" | "UNSUPPORTED:" => {
                let Some(ev) = denial_line(rest, kind == "UNSUPPORTED:") else {
                    warn(
                        format!(
                            "{name}:{lineno}: cannot read {kind} line (no feature or user@host)"
                        ),
                        &mut file_warnings,
                    );
                    continue;
                };
                if kind == "DENIED:" {
                    recent.push((out.denials.len(), ev.feature, ev.user, ev.host));
                    out.denials.push(Denial {
                        daemon: daemon.to_string(),
                        feature: ev.feature.to_string(),
                        user: ev.user.to_string(),
                        host: ev.host.to_string(),
                        time_us: t,
                        false_denial: false,
                        message: ev.message.to_string(),
                        client_ip: None,
                        matched: Match::None,
                    });
                } else {
                    out.unsupported.push(Unsupported {
                        daemon: daemon.to_string(),
                        feature: ev.feature.to_string(),
                        user: ev.user.to_string(),
                        host: ev.host.to_string(),
                        time_us: t,
                        message: ev.message.to_string(),
                    });
                }
            }
            "REMOVING" => {
                let Some((uh, feature)) = rest.rsplit_once(" from ") else {
                    warn(
                        format!("{name}:{lineno}: cannot read REMOVING line (no `from FEATURE`)"),
                        &mut file_warnings,
                    );
                    continue;
                };
                let feature = unquote(feature.trim());
                let Some((user, host)) = user_host(uh) else {
                    warn(
                        format!("{name}:{lineno}: cannot read REMOVING line (no user@host)"),
                        &mut file_warnings,
                    );
                    continue;
                };
                open.retain(|k, q| {
                    if k.0 == daemon && k.1 == feature && k.2 == user && k.3 == host {
                        for &i in q.iter() {
                            close(&mut out.checkouts[i], t);
                            out.checkouts[i].reason = Some("REMOVED");
                        }
                        false
                    } else {
                        true
                    }
                });
            }
            _ => {}
        }
    }

    if shaped == 0 && !content.trim().is_empty() {
        out.warn(format!(
            "{name}: not a FlexNet debug log (no `h:mm:ss (daemon) message` line): no rows from it"
        ));
        return;
    }
    for w in file_warnings {
        out.warn(w);
    }
    out.dropped_warnings += file_dropped;
}

/// Check a checkout in at `t` (never before its OUT: interleaved daemons
/// may step back a few seconds).
fn close(c: &mut Checkout, t: i64) {
    c.in_us = Some(t.max(c.out_us));
}

/// Very old FLEXlm: `mm/dd hh:mm (DAEMON) IN: feature by user (N licenses)
/// (used: d:hh:mm:ss)`: the check-in with its duration.
#[allow(clippy::too_many_arguments)]
fn old_in(
    name: &str,
    lineno: usize,
    daemon: &str,
    msg: &str,
    m: i8,
    d: i8,
    tod: i32,
    days: &Days<'_>,
    out: &mut Parsed,
) {
    let Some(rest) = msg.strip_prefix("IN: ") else {
        return;
    };
    let parsed = (|| {
        let (feature, rest) = rest.split_once(" by ")?;
        let mut rest = rest.trim_end();
        let mut used = None;
        let mut licenses = None;
        while let Some((before, inner)) = paren_suffix(rest) {
            if let Some(u) = inner.strip_prefix("used:") {
                used = Some(dhms(u.trim())?);
            } else if let Some(n) = licenses_of(inner) {
                licenses = Some(n);
            } else {
                break;
            }
            rest = before.trim_end();
        }
        let user = rest.trim();
        if user.is_empty() {
            return None;
        }
        let year = days.date.map_or(1970, |d| d.year());
        let date = Date::new(year, m, d).ok()?;
        let dt = at(date, tod)?;
        let in_us = days
            .tz
            .to_ambiguous_timestamp(dt)
            .compatible()
            .ok()?
            .as_microsecond();
        let used = used?;
        // a `used:` too large for the clock is not a checkout (found by fuzzing)
        let out_us = in_us.checked_sub(used.checked_mul(US)?)?;
        Some(Checkout {
            daemon: daemon.to_string(),
            feature: unquote(feature.trim()).to_string(),
            user: user.to_string(),
            host: String::new(),
            cdstring: None,
            licenses: licenses.unwrap_or(1).max(1),
            out_us,
            in_us: Some(in_us),
            reason: None,
            client_ip: None,
            conn: None,
            matched: Match::None,
        })
    })();
    match parsed {
        Some(c) if days.date.is_some() => out.checkouts.push(c),
        Some(_) => out.warn(format!(
            "{name}:{lineno}: old-style IN line without a year (no TIMESTAMP line): skipped"
        )),
        None => out.warn(format!("{name}:{lineno}: cannot read old-style IN line")),
    }
}

/// `d:hh:mm:ss` as seconds.
fn dhms(s: &str) -> Option<i64> {
    let mut total: i64 = 0;
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() > 4 || parts.is_empty() {
        return None;
    }
    let mult = [86_400i64, 3600, 60, 1];
    for (p, m) in parts.iter().rev().zip(mult.iter().rev()) {
        // digits only: no sign, a duration is never negative
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let v: i64 = p.parse().ok()?;
        total = total.checked_add(v.checked_mul(*m)?)?;
    }
    Some(total)
}

/// An OUT or IN line after its keyword.
#[derive(Debug, PartialEq, Eq)]
struct Event<'a> {
    feature: &'a str,
    user: &'a str,
    host: &'a str,
    cdstring: Option<&'a str>,
    licenses: Option<u32>,
    reason: Option<&'static str>,
}

/// `FEATURE`, then the rest of the line; quoted or not.
fn feature(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start();
    if let Some(q) = s.strip_prefix('"') {
        let end = q.find('"')?;
        return Some((&q[..end], &q[end + 1..]));
    }
    let end = s.find(' ').unwrap_or(s.len());
    if end == 0 {
        return None;
    }
    Some((&s[..end], &s[end..]))
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

/// The last `( ... )` group of `s` (nested parentheses allowed): the text
/// before it and the text inside.
fn paren_suffix(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_end();
    let body = s.strip_suffix(')')?;
    let mut depth = 1usize;
    for (i, c) in body.char_indices().rev() {
        match c {
            ')' => depth += 1,
            '(' => {
                depth -= 1;
                if depth == 0 {
                    return Some((&s[..i], &body[i + 1..]));
                }
            }
            _ => {}
        }
    }
    None
}

/// `N licenses` / `1 license`.
fn licenses_of(inner: &str) -> Option<u32> {
    let (n, word) = inner.trim().split_once(' ')?;
    if word.trim() != "licenses" && word.trim() != "license" {
        return None;
    }
    n.parse().ok()
}

/// A check-in reason word: `INACTIVE`, `SHUTDOWN`, or any other single
/// word (kept as a static string, bounded).
fn reason_of(inner: &str) -> Option<&'static str> {
    let w = inner.trim();
    if w.is_empty()
        || w.len() > 32
        || !w
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        || w.chars().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    for known in ["INACTIVE", "SHUTDOWN", "REMOVED"] {
        if w == known {
            return Some(known);
        }
    }
    static WORDS: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut words = WORDS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(found) = words.iter().find(|x| **x == w) {
        return Some(found);
    }
    if words.len() >= MAX_REASON_WORDS {
        return Some("OTHER");
    }
    let leaked: &'static str = Box::leak(w.to_string().into_boxed_str());
    words.push(leaked);
    Some(leaked)
}

/// `user@host`: the host is the word after the last `@`; the user may hold
/// spaces.
fn user_host(s: &str) -> Option<(&str, &str)> {
    let s = s.trim();
    let (user, host) = s.rsplit_once('@')?;
    let user = user.trim();
    let host = host.split_whitespace().next()?;
    if user.is_empty() || host.is_empty() {
        return None;
    }
    Some((user, host))
}

/// Strip the verbose `^^^ ... ^^^` suffix.
fn strip_verbose(s: &str) -> &str {
    match s.find("^^^") {
        Some(i) => &s[..i],
        None => s,
    }
}

/// `FEATURE user@host [cdstring] (N licenses) (REASON)`.
fn checkout_line(rest: &str) -> Option<Event<'_>> {
    let (feature, rest) = feature(strip_verbose(rest))?;
    let mut rest = rest.trim_end();
    let mut licenses = None;
    let mut reason = None;
    while let Some((before, inner)) = paren_suffix(rest) {
        if let Some(n) = licenses_of(inner) {
            licenses.get_or_insert(n);
        } else if let Some(r) = reason_of(inner) {
            reason.get_or_insert(r);
        } else {
            break;
        }
        rest = before.trim_end();
    }
    let mut cdstring = None;
    if let Some(body) = rest.strip_suffix(']')
        && let Some(open) = body.rfind('[')
    {
        cdstring = Some(&body[open + 1..]);
        rest = body[..open].trim_end();
    }
    let (user, host) = user_host(rest)?;
    Some(Event {
        feature,
        user,
        host,
        cdstring,
        licenses,
        reason,
    })
}

/// A DENIED or UNSUPPORTED line after its keyword.
#[derive(Debug, PartialEq, Eq)]
struct Refusal<'a> {
    feature: &'a str,
    user: &'a str,
    host: &'a str,
    message: &'a str,
}

/// `FEATURE [(fragment)] user@host (message (-major,minor))`.
fn denial_line(rest: &str, unsupported: bool) -> Option<Refusal<'_>> {
    let (feature, rest) = feature(strip_verbose(rest))?;
    let mut rest = rest.trim();
    if unsupported && rest.starts_with('(') {
        let mut depth = 0usize;
        let mut end = None;
        for (i, c) in rest.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        end = Some(i);
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = rest[end? + 1..].trim_start();
    }
    let (uh, message) = match paren_suffix(rest) {
        Some((before, inner)) if before.contains('@') => (before, inner.trim()),
        _ => (rest, ""),
    };
    let uh = match uh.trim_end().strip_suffix(']') {
        Some(body) => body.rfind('[').map_or(uh, |i| &body[..i]),
        None => uh,
    };
    let (user, host) = user_host(uh)?;
    Some(Refusal {
        feature,
        user,
        host,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc_parse(content: &str) -> Parsed {
        let mut p = Parsed::default();
        parse_file("t.log", content, &TimeZone::UTC, None, &mut p);
        p
    }

    fn us(s: &str) -> i64 {
        s.parse::<Timestamp>().expect("test time").as_microsecond()
    }

    #[test]
    fn basic_out_in() {
        let p = utc_parse(
            "10:00:00 (lmgrd) TIMESTAMP 9/11/2013\n\
             10:25:38 (MLM) OUT: \"MATLAB\" alu-escuela@LIBRE-09  \n\
             10:55:05 (MLM) IN: \"MATLAB\" alu-escuela@LIBRE-09  \n",
        );
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        assert_eq!(p.checkouts.len(), 1);
        let c = &p.checkouts[0];
        assert_eq!(c.daemon, "MLM");
        assert_eq!(c.feature, "MATLAB");
        assert_eq!(c.user, "alu-escuela");
        assert_eq!(c.host, "LIBRE-09");
        assert_eq!(c.licenses, 1);
        assert_eq!(c.out_us, us("2013-09-11T10:25:38Z"));
        assert_eq!(c.in_us, Some(us("2013-09-11T10:55:05Z")));
        assert_eq!(c.reason, None);
    }

    #[test]
    fn line_shapes() {
        let e = checkout_line("\"x86-nehalem\" proskin@lucy  (8 licenses)").expect("line");
        assert_eq!(
            (e.feature, e.user, e.host, e.licenses),
            ("x86-nehalem", "proskin", "lucy", Some(8))
        );
        let e = checkout_line(
            "\"Virtuoso_Multi_mode_Simulation\" user1@server1.xyz.local [APS Base] (2 licenses)",
        )
        .expect("line");
        assert_eq!(e.cdstring, Some("APS Base"));
        assert_eq!(e.licenses, Some(2));
        assert_eq!(e.host, "server1.xyz.local");
        let e = checkout_line("DOORS indkach@indkach [telelogic]").expect("line");
        assert_eq!((e.feature, e.cdstring), ("DOORS", Some("telelogic")));
        let e = checkout_line("\"64300ACD_F\" USER07@COMPUTER04  (INACTIVE)").expect("line");
        assert_eq!(e.reason, Some("INACTIVE"));
        let e = checkout_line("\"Origin7\" José Juan Galera@Plasmon  ").expect("line");
        assert_eq!((e.user, e.host), ("José Juan Galera", "Plasmon"));
        assert_eq!(checkout_line("\"MATLAB\" nobody"), None);
        assert_eq!(checkout_line(""), None);
    }

    /// Parse in `zone`; `None` (with a note) when this machine has no
    /// zone database (CI installs tzdata).
    fn parse_in(zone: &str, content: &str) -> Option<Parsed> {
        let Ok(tz) = TimeZone::get(zone) else {
            eprintln!("skipped: no time zone {zone} here (package tzdata)");
            return None;
        };
        let mut p = Parsed::default();
        parse_file("t.log", content, &tz, None, &mut p);
        Some(p)
    }

    const HEAD: &str = " 8:42:23 (lmgrd) FlexNet Licensing (v11.18.0.0 build 275847 x64_n6) started on flexlm02 (IBM PC) (5/5/2022)\n";

    #[test]
    fn one_digit_hours_and_adskflex_pairs() {
        let p = utc_parse(&format!(
            "{HEAD} 9:57:39 (adskflex) OUT: \"64300ACD_F\" USER01@COMPUTER01  \n \
             9:57:39 (adskflex) OUT: \"85730ACD_2012_0F\" USER01@COMPUTER01  \n\
             11:02:14 (adskflex) IN: \"64300ACD_F\" USER01@COMPUTER01  (INACTIVE)\n"
        ));
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        assert_eq!(p.checkouts.len(), 2);
        assert_eq!(p.checkouts[0].out_us, us("2022-05-05T09:57:39Z"));
        assert_eq!(p.checkouts[0].in_us, Some(us("2022-05-05T11:02:14Z")));
        assert_eq!(p.checkouts[0].reason, Some("INACTIVE"));
        assert_eq!(p.checkouts[1].feature, "85730ACD_2012_0F");
        assert_eq!(p.checkouts[1].in_us, None);
    }

    #[test]
    fn day_changes_on_an_ordinary_line() {
        let p = utc_parse(
            "23:28:44 (lmgrd) TIMESTAMP 9/11/2013\n\
             23:59:58 (MLM) OUT: \"MATLAB\" a@h\n \
             0:00:03 (MLM) OUT: \"SIMULINK\" a@h\n \
             5:28:44 (lmgrd) TIMESTAMP 9/12/2013\n \
             6:00:00 (MLM) IN: \"MATLAB\" a@h\n",
        );
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        assert_eq!(p.checkouts[0].out_us, us("2013-09-11T23:59:58Z"));
        assert_eq!(p.checkouts[1].out_us, us("2013-09-12T00:00:03Z"));
        assert_eq!(p.checkouts[0].in_us, Some(us("2013-09-12T06:00:00Z")));
    }

    #[test]
    fn anchors_reset_the_date() {
        // A quiet weekend: the ordinary lines alone would say one day later;
        // the TIMESTAMP says two.
        let p = utc_parse(
            "10:00:00 (lmgrd) TIMESTAMP 3/4/2016\n\
             22:00:00 (MLM) OUT: \"A\" u@h\n \
             9:00:00 (lmgrd) TIMESTAMP 3/6/2016\n \
             9:00:01 (MLM) OUT: \"B\" u@h\n \
             1:56:00 (lmgrd) Server's System Date and Time: Wed Mar 30 2016 01:56:00 Romance Daylight Time\n \
             1:56:01 (MLM) OUT: \"C\" u@h\n \
             5:56:18 (adskflex) (@adskflex-SLOG@) Time: Thu Mar 31 2016 05:56:18 Romance Daylight Time\n \
             5:56:19 (MLM) OUT: \"D\" u@h\n\
             7:47:04 (lmgrd) (@lmgrd-SLOG@) Start-Date: Mon Oct 06 2014 07:47:04 Central Daylight Time\n\
             7:47:05 (MLM) OUT: \"E\" u@h\n",
        );
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        let outs: Vec<i64> = p.checkouts.iter().map(|c| c.out_us).collect();
        assert_eq!(
            outs,
            [
                us("2016-03-04T22:00:00Z"),
                us("2016-03-06T09:00:01Z"),
                us("2016-03-30T01:56:01Z"),
                us("2016-03-31T05:56:19Z"),
                us("2014-10-06T07:47:05Z"),
            ]
        );
    }

    #[test]
    fn lines_before_the_first_anchor_are_dated_back() {
        let p = utc_parse(
            "22:10:00 (MLM) IN: \"X\" u@h\n\
             23:00:00 (MLM) OUT: \"A\" u@h\n \
             1:00:00 (MLM) OUT: \"B\" u@h\n \
             2:00:00 (lmgrd) TIMESTAMP 1/1/2020\n",
        );
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        assert_eq!(p.checkouts[0].out_us, us("2019-12-31T23:00:00Z"));
        assert_eq!(p.checkouts[1].out_us, us("2020-01-01T01:00:00Z"));
    }

    #[test]
    fn no_anchor_uses_the_fallback_date_with_a_warning() {
        let mut p = Parsed::default();
        let day = Date::new(2024, 2, 29).expect("date");
        parse_file(
            "t.log",
            "10:00:00 (MLM) OUT: \"A\" u@h\n",
            &TimeZone::UTC,
            Some(day),
            &mut p,
        );
        assert_eq!(p.checkouts[0].out_us, us("2024-02-29T10:00:00Z"));
        assert_eq!(p.warnings.len(), 1);
        assert!(
            p.warnings[0].starts_with("t.log: no date"),
            "{:?}",
            p.warnings
        );
        // Without sessions either: a warning, no rows.
        let mut p = Parsed::default();
        parse_file(
            "t.log",
            "10:00:00 (MLM) OUT: \"A\" u@h\n",
            &TimeZone::UTC,
            None,
            &mut p,
        );
        assert!(p.checkouts.is_empty());
        assert!(
            p.warnings[0].starts_with("t.log:1: no date known"),
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn log_tz_and_dst() {
        // Europe/Paris: 2016-10-30 03:00 CEST -> 02:00 CET (fold);
        // 2016-03-27 02:00 CET -> 03:00 CEST (gap).
        let Some(p) = parse_in(
            "Europe/Paris",
            " 1:00:00 (lmgrd) TIMESTAMP 10/30/2016\n \
             2:30:00 (MLM) OUT: \"A\" u@h\n \
             2:59:59 (MLM) OUT: \"B\" u@h\n \
             2:00:10 (MLM) OUT: \"C\" u@h\n \
             2:30:00 (MLM) OUT: \"D\" u@h\n \
             4:00:00 (MLM) OUT: \"E\" u@h\n",
        ) else {
            return;
        };
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        let outs: Vec<i64> = p.checkouts.iter().map(|c| c.out_us).collect();
        assert_eq!(
            outs,
            [
                us("2016-10-30T00:30:00Z"),
                us("2016-10-30T00:59:59Z"),
                us("2016-10-30T01:00:10Z"),
                us("2016-10-30T01:30:00Z"),
                us("2016-10-30T03:00:00Z"),
            ]
        );
        let Some(p) = parse_in(
            "Europe/Paris",
            " 1:00:00 (lmgrd) TIMESTAMP 3/27/2016\n \
             1:59:59 (MLM) OUT: \"A\" u@h\n \
             3:00:01 (MLM) OUT: \"B\" u@h\n",
        ) else {
            return;
        };
        assert_eq!(p.checkouts[0].out_us, us("2016-03-27T00:59:59Z"));
        assert_eq!(p.checkouts[1].out_us, us("2016-03-27T01:00:01Z"));
        // A one-hour step back on an ordinary day is a new day.
        let Some(p) = parse_in(
            "Europe/Paris",
            " 1:00:00 (lmgrd) TIMESTAMP 6/1/2016\n \
             2:59:59 (MLM) OUT: \"A\" u@h\n \
             2:00:10 (MLM) OUT: \"B\" u@h\n",
        ) else {
            return;
        };
        assert_eq!(p.checkouts[1].out_us, us("2016-06-02T00:00:10Z"));
    }

    #[test]
    fn unknown_zone_is_an_error() {
        let e = zone(Some("Mars/Olympus")).expect_err("unknown zone");
        assert!(
            e.starts_with("--log-tz: cannot find time zone Mars/Olympus"),
            "{e}"
        );
        assert!(zone(Some("UTC")).is_ok());
        assert!(zone(None).is_ok());
    }

    #[test]
    fn bom_crlf_utf8_and_trailing_blanks() {
        let p = utc_parse(
            "\u{feff}10:00:00 (lmgrd) TIMESTAMP 1/2/2023\r\n\
             11:50:22 (orglab) OUT: \"Origin7\" José Juan Galera@Plasmon   \r\n\
             11:50:23 (orglab) (@orglab-SLOG@) Statistics Log Frequency is 240 minute(s).\r\n\
             12:50:22 (orglab) IN: \"Origin7\" José Juan Galera@Plasmon\r\n",
        );
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        assert_eq!(p.checkouts.len(), 1);
        let c = &p.checkouts[0];
        assert_eq!(
            (c.user.as_str(), c.host.as_str()),
            ("José Juan Galera", "Plasmon")
        );
        assert_eq!(c.out_us, us("2023-01-02T11:50:22Z"));
        assert_eq!(c.in_us, Some(us("2023-01-02T12:50:22Z")));
    }

    #[test]
    fn suffixes_cdstring_licenses_unquoted() {
        let p = utc_parse(&format!(
            "{HEAD}11:30:32 (cdslmd) OUT: \"Virtuoso_Multi_mode_Simulation\" user1@server1.xyz.local [APS Base] (2 licenses)\n\
             14:46:39 (telelogic) OUT: DOORS indkach@indkach [telelogic]\n\
             15:13:02 (simics) OUT: \"x86-nehalem\" proskin@lucy  (8 licenses)\n\
             15:20:00 (simics) IN: \"x86-nehalem\" proskin@lucy  (8 licenses)\n\
             15:30:00 (cdslmd) IN: \"Virtuoso_Multi_mode_Simulation\" user1@server1.xyz.local [other] (2 licenses)\n"
        ));
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        let c = &p.checkouts;
        assert_eq!(c[0].cdstring.as_deref(), Some("APS Base"));
        assert_eq!(c[0].licenses, 2);
        // an IN with another cdstring is another checkout's: ignored
        assert_eq!(c[0].in_us, None);
        assert_eq!(
            (c[1].feature.as_str(), c[1].cdstring.as_deref()),
            ("DOORS", Some("telelogic"))
        );
        assert_eq!(c[1].licenses, 1);
        assert_eq!(c[2].licenses, 8);
        assert_eq!(c[2].in_us, Some(us("2022-05-05T15:20:00Z")));
    }

    #[test]
    fn multiset_pairing_first_in_first_out() {
        let p = utc_parse(&format!(
            "{HEAD}10:00:00 (MLM) OUT: \"MATLAB\" u@h\n\
             10:00:05 (MLM) OUT: \"MATLAB\" u@h\n\
             10:00:06 (MLM) OUT: \"MATLAB\" u@other\n\
             10:00:07 (OTHER) IN: \"MATLAB\" u@h\n\
             10:10:00 (MLM) IN: \"MATLAB\" u@h\n\
             10:20:00 (MLM) IN: \"MATLAB\" u@h\n\
             10:30:00 (MLM) IN: \"MATLAB\" u@h\n"
        ));
        let ins: Vec<Option<i64>> = p.checkouts.iter().map(|c| c.in_us).collect();
        assert_eq!(
            ins,
            [
                Some(us("2022-05-05T10:10:00Z")),
                Some(us("2022-05-05T10:20:00Z")),
                None
            ]
        );
    }

    #[test]
    fn shutdown_start_and_removing_close_checkouts() {
        let p = utc_parse(&format!(
            "{HEAD} 9:00:00 (MLM) OUT: \"MATLAB\" a@h\n \
             9:00:00 (cdslmd) OUT: \"Virtuoso_Schematic_Editor_L\" user10@server1.xyz.local\n \
             9:00:01 (cdslmd) OUT: \"Other\" user10@server1.xyz.local\n\
             11:30:45 (cdslmd) REMOVING user10@server1.xyz.local from Virtuoso_Schematic_Editor_L\n\
             11:30:46 (cdslmd) IN: \"Virtuoso_Schematic_Editor_L\" user10@server1.xyz.local\n\
             12:00:00 (MLM) Server started on flexlm02 for:\tMATLAB\n\
             12:05:00 (MLM) OUT: \"MATLAB\" b@h\n\
             12:06:00 (MLM) IN: \"MATLAB\" b@h  (SHUTDOWN)\n\
             13:00:00 (lmgrd) SHUTDOWN request from root at node flexlm02\n"
        ));
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        let c = &p.checkouts;
        assert_eq!(
            (c[0].in_us, c[0].reason),
            (Some(us("2022-05-05T12:00:00Z")), Some("SHUTDOWN"))
        );
        assert_eq!(
            (c[1].in_us, c[1].reason),
            (Some(us("2022-05-05T11:30:45Z")), Some("REMOVED"))
        );
        assert_eq!(
            (c[2].in_us, c[2].reason),
            (Some(us("2022-05-05T13:00:00Z")), Some("SHUTDOWN"))
        );
        assert_eq!(
            (c[3].in_us, c[3].reason),
            (Some(us("2022-05-05T12:06:00Z")), Some("SHUTDOWN"))
        );
        // a new lmgrd start closes every daemon's checkouts
        let p = utc_parse(&format!(
            "{HEAD}10:00:00 (MLM) OUT: \"M\" a@h\n{}",
            HEAD.replace(" 8:42:23", "11:00:00")
        ));
        assert_eq!(p.checkouts[0].in_us, Some(us("2022-05-05T11:00:00Z")));
        assert_eq!(p.checkouts[0].reason, Some("SHUTDOWN"));
    }

    #[test]
    fn other_reason_words_are_kept() {
        let p = utc_parse(&format!(
            "{HEAD}10:00:00 (MLM) OUT: \"M\" a@h\n10:01:00 (MLM) IN: \"M\" a@h  (LINGER_EXPIRED)\n"
        ));
        assert_eq!(p.checkouts[0].reason, Some("LINGER_EXPIRED"));
    }

    #[test]
    fn denials_false_denials_unsupported() {
        let p = utc_parse(&format!(
            "{HEAD}15:28:58 (adskflex) DENIED: \"64300ACD_F\" TonyMontana@ANOTHERONE  (Licensed number of users already reached. (-4,342))\n\
             12:07:50 (SW_D) DENIED: \"solidworks\" peter@Peter-2019 (License server system does not support this version of this feature. (-25,334))\n\
             12:07:50 (SW_D) OUT: \"solidworks\" peter@Peter-2019\n\
             12:07:51 (SW_D) DENIED: \"solidworks\" paul@Paul-PC (License server system does not support this version of this feature. (-25,334))\n\
             12:07:52 (SW_D) OUT: \"solidworks\" paul@Paul-PC\n\
             12:08:00 (MLM) UNSUPPORTED: \"MATLAB\" (BF04C1B183DD400E147F) Javier@DESKTOP-PV69PK5  (No such feature exists. (-5,346))\n\
             12:09:40 (cdslmd) UNSUPPORTED: \"Virtuoso_Acceler_Parallel_sc\" (PORT_AT_HOST_PLUS ) user5@server4.xyz.local (License server system does not support this feature. (-18,327:104 \"Connection reset by peer\"))\n"
        ));
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        let d = &p.denials;
        assert_eq!(d.len(), 3);
        assert_eq!(
            d[0].message,
            "Licensed number of users already reached. (-4,342)"
        );
        assert_eq!(
            (d[0].user.as_str(), d[0].host.as_str()),
            ("TonyMontana", "ANOTHERONE")
        );
        assert!(!d[0].false_denial);
        // the day advanced (15:28 -> 12:07)
        assert_eq!(d[1].time_us, us("2022-05-06T12:07:50Z"));
        assert!(d[1].false_denial);
        assert!(
            !d[2].false_denial,
            "an OUT a second later does not make it false"
        );
        let u = &p.unsupported;
        assert_eq!(u.len(), 2);
        assert_eq!(
            (
                u[0].feature.as_str(),
                u[0].user.as_str(),
                u[0].host.as_str()
            ),
            ("MATLAB", "Javier", "DESKTOP-PV69PK5")
        );
        assert_eq!(u[0].message, "No such feature exists. (-5,346)");
        assert_eq!(u[1].host, "server4.xyz.local");
        assert_eq!(
            u[1].message,
            "License server system does not support this feature. (-18,327:104 \"Connection reset by peer\")"
        );
        assert_eq!(p.checkouts.len(), 2);
    }

    #[test]
    fn not_checkouts() {
        let p = utc_parse(&format!(
            "{HEAD}10:25:35 (MLM) SERVER-OUT: Failed to send the message(71) <END>\n\
             10:25:36 (orglab) (@orglab-SLOG@) OUT: \"x\" not@this\n\
             10:25:37 (MLM) QUEUED: \"MATLAB\" a@h\n\
             10:25:38 (MLM) Lost connection to a@h\n"
        ));
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        assert!(p.checkouts.is_empty());
        assert!(p.denials.is_empty());
    }

    #[test]
    fn mid_session_log() {
        // starts with INs whose OUT is before the log, ends with open OUTs
        let p = utc_parse(
            "10:00:00 (MLM) IN: \"MATLAB\" a@h\n\
             10:00:01 (lmgrd) TIMESTAMP 7/7/2021\n\
             10:00:02 (MLM) OUT: \"MATLAB\" b@h\n",
        );
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        assert_eq!(p.checkouts.len(), 1);
        assert_eq!(p.checkouts[0].in_us, None);
    }

    #[test]
    fn another_product_log_warns_once() {
        let p = utc_parse("2024-01-01 12:00:00,123 INFO [main] Starting Tomcat\nWARN something\n");
        assert!(p.checkouts.is_empty());
        assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
        assert!(
            p.warnings[0].contains("not a FlexNet debug log"),
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn bad_lines_warn_with_file_and_line() {
        let p = utc_parse(&format!(
            "{HEAD}garbage here\n10:00:00 (MLM) OUT: \"MATLAB\"\n10:00:01 (MLM) OUT: \"MATLAB\" a@h\n"
        ));
        assert_eq!(p.checkouts.len(), 1);
        assert_eq!(
            p.warnings,
            [
                "t.log:2: not a debug-log line (`h:mm:ss (daemon) message`)",
                "t.log:3: cannot read OUT: line (no feature or user@host)"
            ]
        );
    }

    #[test]
    fn warnings_are_bounded() {
        let mut log = String::from(HEAD);
        for _ in 0..(MAX_WARNINGS + 50) {
            log.push_str("10:00:00 (MLM) OUT: \"x\"\n");
        }
        let p = utc_parse(&log);
        assert_eq!(p.warnings.len(), MAX_WARNINGS);
        assert_eq!(p.dropped_warnings, 50);
    }

    #[test]
    fn old_style_and_datestamp_lines() {
        let p = utc_parse(&format!(
            "{HEAD}05/06 10:30 (DEMO) IN: f1 by jdoe (2 licenses) (used: 0:01:30:00)\n\
             2022-05-07T08:00:00Z (MLM) OUT: \"MATLAB\" a@h\n\
             2022-05-07T09:00:00 (MLM) IN: \"MATLAB\" a@h\n"
        ));
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        let c = &p.checkouts;
        assert_eq!(
            (c[0].feature.as_str(), c[0].user.as_str(), c[0].licenses),
            ("f1", "jdoe", 2)
        );
        assert_eq!(c[0].out_us, us("2022-05-06T09:00:00Z"));
        assert_eq!(c[0].in_us, Some(us("2022-05-06T10:30:00Z")));
        assert_eq!(c[1].out_us, us("2022-05-07T08:00:00Z"));
        assert_eq!(c[1].in_us, Some(us("2022-05-07T09:00:00Z")));
    }

    #[test]
    fn verbose_suffix_is_ignored() {
        let p = utc_parse(&format!(
            "{HEAD}10:00:00 (MLM) OUT: \"MATLAB\" a@h  ^^^ 1.0 a 10.0.0.1 4242 7 1 10 - 11.18 0 5/5/2022 10:00:00 0 ^^^\n"
        ));
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        assert_eq!(
            (p.checkouts[0].user.as_str(), p.checkouts[0].host.as_str()),
            ("a", "h")
        );
    }

    #[test]
    fn found_by_fuzzing() {
        // a month name cut inside a multi-byte character
        assert_eq!(wmdy("Thu Ma\u{fffd}05 2022"), None);
        let p = utc_parse(" 5:56:18 (a) (@a-SLOG@) Time: Thu Ma\u{fffd}05 2022 05:56:18\n");
        assert!(p.checkouts.is_empty());
        // `(0 licenses)` still takes a license
        let p = utc_parse(&format!(
            "{HEAD}11:30:32 (cdslmd) OUT: \"V\" a@h (0 licenses)\n"
        ));
        assert_eq!(p.checkouts[0].licenses, 1);
    }

    #[test]
    fn old_style_negative_duration_is_refused() {
        // found by fuzzing: `used: -0:30:00` made the OUT later than the IN
        assert_eq!(dhms("-0:30:00"), None);
        assert_eq!(dhms("1:02:03:04"), Some(93_784));
        let p = utc_parse(&format!(
            "{HEAD}05/06 10:30 (DEMO) IN: f9 by jdoe (used: -0:30:00)\n"
        ));
        assert!(p.checkouts.is_empty());
        assert_eq!(p.warnings, ["t.log:2: cannot read old-style IN line"]);
    }

    #[test]
    fn old_style_huge_duration_is_refused() {
        // found by fuzzing: a `used:` of billions of days overflowed OUT
        let p = utc_parse(&format!(
            "{HEAD}05/06 10:30 (DEMO) IN: f9 by jdoe (used: 9999999999999:00:00:00)\n"
        ));
        assert!(p.checkouts.is_empty());
        assert_eq!(p.warnings, ["t.log:2: cannot read old-style IN line"]);
    }

    #[test]
    fn never_panics_on_garbage() {
        let mut rng = crate::testutil::Rng::new(0x9e37_79b9_7f4a_7c15);
        let alphabet: Vec<char> = " 0123456789:()@[]\"/\n\r\u{feff}éOUTINDEAMSTLRVX-"
            .chars()
            .collect();
        for _ in 0..2000 {
            let mut s = String::from(HEAD);
            for _ in 0..200 {
                s.push(alphabet[rng.below(alphabet.len())]);
            }
            let _ = utc_parse(&s);
            let _ = utc_parse(&s[HEAD.len()..]);
        }
    }
}
