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

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{Span, Timestamp};

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
        .position(|n| mon.len() >= 3 && n.eq_ignore_ascii_case(&mon[..3]))?;
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
    let mut open: HashMap<Key<'_>, VecDeque<usize>> = HashMap::new();
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
                if let Some(d) = anchor(msg) {
                    days.set(d);
                }
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

        if is_start_or_stop(msg) {
            let all = is_master(daemon);
            open.retain(|k, q| {
                if all || k.0 == daemon {
                    for &i in q.iter() {
                        out.checkouts[i].in_us = Some(t);
                        out.checkouts[i].reason = Some("SHUTDOWN");
                    }
                    false
                } else {
                    true
                }
            });
            continue;
        }

        let (kind, rest) = match msg.split_once(' ') {
            Some((k, r)) => (k, r),
            None => (msg, ""),
        };
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
                        licenses: ev.licenses.unwrap_or(1),
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
                        out.checkouts[i].in_us = Some(t);
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
                            out.checkouts[i].in_us = Some(t);
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
        Some(Checkout {
            daemon: daemon.to_string(),
            feature: unquote(feature.trim()).to_string(),
            user: user.to_string(),
            host: String::new(),
            cdstring: None,
            licenses: licenses.unwrap_or(1),
            out_us: in_us - used * US,
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
        let v: i64 = p.trim().parse().ok()?;
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
}
