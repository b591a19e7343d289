//! The report's four outputs from one set of tables: text (aligned
//! columns), CSV (one table per row type, each with its header row, a
//! blank line between), JSON lines (one object per row, `type` first, keys
//! as SPEC's table) and one self-contained HTML page (inline CSS and SVG
//! charts drawn with `plotters`, no external resource). Every format shows
//! the same rows and numbers; times are RFC 3339 with the local offset of
//! the machine running the report (text and HTML with a space instead of
//! `T`), durations whole seconds. Pure but for writing to the given sink.

use std::cell::Cell as StdCell;
use std::fmt::Write as _;
use std::io::{self, Write};

use plotters::prelude::*;

use super::totals::{By, Total, Window};
use super::{FlexReport, Session, Text};
use crate::log::template::json_str;
use crate::log::timefmt::LocalTime;

const US: i64 = 1_000_000;

/// The output formats of `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Csv,
    Json,
    Html,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        Some(match s {
            "text" => Format::Text,
            "csv" => Format::Csv,
            "json" => Format::Json,
            "html" => Format::Html,
            _ => return None,
        })
    }
}

/// Local time of instants, through a cache: the UTC offset is looked up
/// (`offset_at`, the C library's zone rules) once per quarter of an hour.
pub struct Clock<'f> {
    offset_at: &'f dyn Fn(i64) -> i32,
    cache: StdCell<(i64, i32)>,
}

/// Length of a time as shown, `yyyy-mm-dd HH:MM:SS+hh:mm`.
const TIME_LEN: usize = 25;

/// Offsets change at most on quarter hours.
const OFFSET_SLOT_SECS: i64 = 900;

impl<'f> Clock<'f> {
    pub fn new(offset_at: &'f dyn Fn(i64) -> i32) -> Clock<'f> {
        Clock {
            offset_at,
            cache: StdCell::new((i64::MIN, 0)),
        }
    }

    fn local(&self, us: i64) -> LocalTime {
        let secs = us.div_euclid(US);
        let slot = secs.div_euclid(OFFSET_SLOT_SECS);
        let (s, off) = self.cache.get();
        let offset = if s == slot {
            off
        } else {
            let off = (self.offset_at)(slot * OFFSET_SLOT_SECS);
            self.cache.set((slot, off));
            off
        };
        LocalTime {
            epoch_us: secs * US,
            offset,
        }
    }

    /// `yyyy-mm-ddTHH:MM:SS+hh:mm`.
    pub fn rfc3339(&self, us: i64) -> String {
        let mut s = String::with_capacity(TIME_LEN);
        self.local(us).push_seconds(&mut s, 'T');
        s
    }

    /// `yyyy-mm-dd HH:MM:SS+hh:mm`.
    pub fn spaced(&self, us: i64) -> String {
        let mut s = String::with_capacity(TIME_LEN);
        self.local(us).push_seconds(&mut s, ' ');
        s
    }

    /// Append [`Clock::rfc3339`] (`sep` `T`) or [`Clock::spaced`] (`sep` a space).
    fn push(&self, out: &mut String, us: i64, sep: char) {
        self.local(us).push_seconds(out, sep);
    }

    /// A chart-axis label: `HH:MM:SS` for a span of minutes, `mm-dd HH:MM`
    /// up to a few days, `yyyy-mm-dd` beyond.
    fn short(&self, us: i64, span_us: i64) -> String {
        let s = self.local(us).iso();
        let r = if span_us <= 20 * 60 * US {
            11..19
        } else if span_us <= 4 * 86_400 * US {
            5..16
        } else {
            0..10
        };
        s.get(r).unwrap_or_default().to_string()
    }
}

/// Everything a report shows, already filtered to the window.
pub struct Report<'a> {
    /// The connection logs read.
    pub inputs: &'a [String],
    /// The debug logs read (empty: no `--flexlm-log`).
    pub debug_logs: &'a [String],
    pub window: Window,
    pub by: By,
    /// Sessions overlapping the window, in time order.
    pub sessions: Vec<&'a Session>,
    pub totals: Vec<Total>,
    /// The debug-log rows, filtered to the window.
    pub flex: Option<FlexReport>,
    /// Concurrent connections (that reached the destination) over time.
    pub concurrency: Vec<(i64, u64)>,
    /// Licenses out per feature over time.
    pub feature_steps: Vec<(String, Vec<(i64, u64)>)>,
    /// Connected time per key of the sessions (for the chart, whatever `by`).
    pub user_time: Vec<(String, i64)>,
}

/// One value of a table.
enum Val<'r> {
    Null,
    Str(&'r str),
    Num(i64),
    Bool(bool),
    List(&'r [Text]),
    Time(i64),
}

fn opt<'r>(s: &'r Option<Text>) -> Val<'r> {
    match s {
        Some(s) => Val::Str(s),
        None => Val::Null,
    }
}

fn opt_s(s: &Option<String>) -> Val<'_> {
    match s {
        Some(s) => Val::Str(s),
        None => Val::Null,
    }
}

fn num<T: TryInto<i64>>(n: T) -> Val<'static> {
    Val::Num(n.try_into().unwrap_or(i64::MAX))
}

/// A table: the JSON row type, a title, the columns, the rows (made on
/// demand, so a million sessions are never held as text).
struct Table<'r> {
    kind: &'static str,
    title: String,
    cols: &'static [&'static str],
    len: usize,
    row: Box<dyn Fn(usize) -> Vec<Val<'r>> + 'r>,
}

const SESSION_COLS: &[&str] = &[
    "conn",
    "start",
    "end",
    "secs",
    "client_ip",
    "client_port",
    "user",
    "host",
    "display",
    "pid",
    "program",
    "service",
    "proto",
    "status",
];
const TOTAL_COLS: &[&str] = &[
    "by",
    "key",
    "sessions",
    "connected_secs",
    "first",
    "last",
    "ips",
    "hosts",
    "peak",
    "peak_at",
];
const CHECKOUT_COLS: &[&str] = &[
    "daemon",
    "feature",
    "user",
    "host",
    "cdstring",
    "licenses",
    "out",
    "in",
    "secs",
    "reason",
    "client_ip",
    "conn",
    "match",
];
const DENIAL_COLS: &[&str] = &[
    "daemon",
    "feature",
    "user",
    "host",
    "time",
    "false",
    "message",
    "client_ip",
    "match",
];
const UNSUPPORTED_COLS: &[&str] = &["daemon", "feature", "user", "host", "time", "message"];
const PEAK_COLS: &[&str] = &["daemon", "feature", "peak", "peak_at"];

/// The tables in SPEC's order (sessions, totals, checkouts, denials,
/// unsupported, peaks); the debug-log ones only with a debug log.
fn tables<'r>(r: &'r Report<'r>) -> Vec<Table<'r>> {
    let mut t = vec![
        Table {
            kind: "session",
            title: "Sessions".into(),
            cols: SESSION_COLS,
            len: r.sessions.len(),
            row: Box::new(move |i| {
                let s = r.sessions[i];
                vec![
                    s.conn.map_or(Val::Null, num),
                    Val::Time(s.start_us),
                    Val::Time(s.end_us),
                    num((s.end_us - s.start_us) / US),
                    if s.client_ip.is_empty() {
                        Val::Null
                    } else {
                        Val::Str(&s.client_ip)
                    },
                    s.client_port.map_or(Val::Null, num),
                    opt(&s.user),
                    opt(&s.host),
                    opt(&s.display),
                    opt(&s.pid),
                    opt(&s.program),
                    opt(&s.service),
                    opt(&s.proto),
                    Val::Str(&s.status),
                ]
            }),
        },
        Table {
            kind: "total",
            title: format!("Totals by {}", r.by.as_str()),
            cols: TOTAL_COLS,
            len: r.totals.len(),
            row: Box::new(move |i| {
                let t = &r.totals[i];
                vec![
                    Val::Str(t.by.as_str()),
                    opt(&t.key),
                    num(t.sessions),
                    num(t.connected_secs()),
                    Val::Time(t.first_us),
                    Val::Time(t.last_us),
                    Val::List(&t.ips),
                    Val::List(&t.hosts),
                    num(t.peak),
                    Val::Time(t.peak_at_us),
                ]
            }),
        },
    ];
    let Some(f) = &r.flex else {
        return t;
    };
    t.push(Table {
        kind: "checkout",
        title: "Checkouts".into(),
        cols: CHECKOUT_COLS,
        len: f.checkouts.len(),
        row: Box::new(move |i| {
            let c = &f.checkouts[i];
            vec![
                Val::Str(&c.daemon),
                Val::Str(&c.feature),
                Val::Str(&c.user),
                Val::Str(&c.host),
                opt_s(&c.cdstring),
                num(c.licenses),
                Val::Time(c.out_us),
                c.in_us.map_or(Val::Null, Val::Time),
                c.in_us.map_or(Val::Null, |t| num((t - c.out_us) / US)),
                c.reason.map_or(Val::Null, Val::Str),
                opt_s(&c.client_ip),
                c.conn.map_or(Val::Null, num),
                Val::Str(c.matched.as_str()),
            ]
        }),
    });
    t.push(Table {
        kind: "denial",
        title: "Denials".into(),
        cols: DENIAL_COLS,
        len: f.denials.len(),
        row: Box::new(move |i| {
            let d = &f.denials[i];
            vec![
                Val::Str(&d.daemon),
                Val::Str(&d.feature),
                Val::Str(&d.user),
                Val::Str(&d.host),
                Val::Time(d.time_us),
                Val::Bool(d.false_denial),
                Val::Str(&d.message),
                opt_s(&d.client_ip),
                Val::Str(d.matched.as_str()),
            ]
        }),
    });
    t.push(Table {
        kind: "unsupported",
        title: "Unsupported requests".into(),
        cols: UNSUPPORTED_COLS,
        len: f.unsupported.len(),
        row: Box::new(move |i| {
            let u = &f.unsupported[i];
            vec![
                Val::Str(&u.daemon),
                Val::Str(&u.feature),
                Val::Str(&u.user),
                Val::Str(&u.host),
                Val::Time(u.time_us),
                Val::Str(&u.message),
            ]
        }),
    });
    t.push(Table {
        kind: "peak",
        title: "Peak licenses out per feature".into(),
        cols: PEAK_COLS,
        len: f.peaks.len(),
        row: Box::new(move |i| {
            let p = &f.peaks[i];
            vec![
                Val::Str(&p.daemon),
                Val::Str(&p.feature),
                num(p.peak),
                Val::Time(p.peak_at_us),
            ]
        }),
    });
    t
}

/// Write the report in `format`.
pub fn render(
    r: &Report<'_>,
    format: Format,
    clock: &Clock<'_>,
    out: &mut dyn Write,
) -> io::Result<()> {
    match format {
        Format::Json => json(r, clock, out),
        Format::Csv => csv(r, clock, out),
        Format::Text => text(r, clock, out),
        Format::Html => html(r, clock, out),
    }
}

fn json(r: &Report<'_>, clock: &Clock<'_>, out: &mut dyn Write) -> io::Result<()> {
    let mut line = String::new();
    for t in tables(r) {
        for i in 0..t.len {
            line.clear();
            line.push_str("{\"type\":");
            json_str(&mut line, t.kind);
            for (col, v) in t.cols.iter().zip((t.row)(i)) {
                line.push(',');
                json_str(&mut line, col);
                line.push(':');
                match v {
                    Val::Null => line.push_str("null"),
                    Val::Str(s) => json_str(&mut line, s),
                    Val::Num(n) => {
                        let _ = write!(line, "{n}");
                    }
                    Val::Bool(b) => line.push_str(if b { "true" } else { "false" }),
                    Val::List(l) => {
                        line.push('[');
                        for (k, s) in l.iter().enumerate() {
                            if k > 0 {
                                line.push(',');
                            }
                            json_str(&mut line, s);
                        }
                        line.push(']');
                    }
                    Val::Time(us) => {
                        line.push('"');
                        clock.push(&mut line, us, 'T');
                        line.push('"');
                    }
                }
            }
            line.push_str("}\n");
            out.write_all(line.as_bytes())?;
        }
    }
    Ok(())
}

/// A value as plain text; `null` is `null_text`, lists joined by `sep`.
fn plain(v: Val<'_>, clock: &Clock<'_>, null_text: &str, sep: &str, spaced: bool) -> String {
    match v {
        Val::Null => null_text.to_string(),
        Val::Str(s) => s.to_string(),
        Val::Num(n) => n.to_string(),
        Val::Bool(b) => b.to_string(),
        Val::List(l) => l.iter().map(|s| &**s).collect::<Vec<_>>().join(sep),
        Val::Time(us) if spaced => clock.spaced(us),
        Val::Time(us) => clock.rfc3339(us),
    }
}

fn csv(r: &Report<'_>, clock: &Clock<'_>, out: &mut dyn Write) -> io::Result<()> {
    for (k, t) in tables(r).into_iter().enumerate() {
        if k > 0 {
            out.write_all(b"\n")?;
        }
        let mut w = ::csv::WriterBuilder::new().from_writer(&mut *out);
        let mut head = vec!["type"];
        head.extend_from_slice(t.cols);
        w.write_record(&head)?;
        let mut rec: Vec<String> = Vec::with_capacity(t.cols.len() + 1);
        for i in 0..t.len {
            rec.clear();
            rec.push(t.kind.to_string());
            rec.extend(
                (t.row)(i)
                    .into_iter()
                    .map(|v| plain(v, clock, "", " ", false)),
            );
            w.write_record(&rec)?;
        }
        w.flush()?;
    }
    Ok(())
}

/// Append `plain(v, clock, "-", ",", true)` without a String of its own.
fn push_plain(out: &mut String, v: Val<'_>, clock: &Clock<'_>) {
    match v {
        Val::Null => out.push('-'),
        Val::Str(s) => out.push_str(s),
        Val::Num(n) => {
            let _ = write!(out, "{n}");
        }
        Val::Bool(b) => out.push_str(if b { "true" } else { "false" }),
        Val::List(l) => {
            for (k, s) in l.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                out.push_str(s);
            }
        }
        Val::Time(us) => clock.push(out, us, ' '),
    }
}

/// How many characters `plain(v, .., "-", ",", true)` gives, without
/// making the text.
fn shown_width(v: &Val<'_>) -> usize {
    match v {
        Val::Null => 1,
        Val::Str(s) => s.chars().count(),
        Val::Num(n) => {
            let mut len = usize::from(*n < 0);
            let mut a = n.unsigned_abs();
            loop {
                len += 1;
                a /= 10;
                if a == 0 {
                    break len;
                }
            }
        }
        Val::Bool(b) => {
            if *b {
                4
            } else {
                5
            }
        }
        Val::List(l) => {
            l.iter().map(|s| s.chars().count()).sum::<usize>() + l.len().saturating_sub(1)
        }
        Val::Time(_) => TIME_LEN,
    }
}

/// Is this value shown right-aligned (a number)?
fn numeric(v: &Val<'_>) -> bool {
    matches!(v, Val::Num(_))
}

/// The clock offset as text: `+2 s`, `-0.250 s`.
pub fn offset_text(us: i64) -> String {
    if us % US == 0 {
        format!("{:+} s", us / US)
    } else {
        format!("{:+.3} s", us as f64 / US as f64)
    }
}

/// The lines above the tables (text and HTML).
fn header_lines(r: &Report<'_>, clock: &Clock<'_>) -> Vec<String> {
    let mut h = vec![format!(
        "Connection logs: {} ({} sessions)",
        r.inputs.join(", "),
        r.sessions.len()
    )];
    if let (Some(a), Some(b)) = (
        r.sessions.iter().map(|s| s.start_us).min(),
        r.sessions.iter().map(|s| s.end_us).max(),
    ) {
        h.push(format!(
            "Period: {} to {}",
            clock.spaced(a),
            clock.spaced(b)
        ));
    }
    if r.window.from.is_some() || r.window.to.is_some() {
        let end = |t: Option<i64>| t.map_or("-".to_string(), |t| clock.spaced(t));
        h.push(format!(
            "Window: {} to {} (times in totals clipped to it)",
            end(r.window.from),
            end(r.window.to)
        ));
    }
    if let Some(f) = &r.flex {
        h.push(format!("Debug logs: {}", r.debug_logs.join(", ")));
        h.push(format!(
            "Clock offset: {} (connection log minus debug log, from {} unambiguous matches)",
            offset_text(f.offset_us),
            f.offset_samples
        ));
    }
    h
}

fn text(r: &Report<'_>, clock: &Clock<'_>, out: &mut dyn Write) -> io::Result<()> {
    for l in header_lines(r, clock) {
        writeln!(out, "{l}")?;
    }
    // the answer first: totals, then the debug-log tables, sessions last
    let mut ts = tables(r);
    let sessions = ts.remove(0);
    ts.push(sessions);
    for t in ts {
        writeln!(out)?;
        writeln!(out, "{}", t.title)?;
        if t.len == 0 {
            writeln!(out, "  (none)")?;
            continue;
        }
        // two passes: widths first, then the rows (none kept as text)
        let mut width: Vec<usize> = t.cols.iter().map(|c| c.chars().count()).collect();
        let mut right = vec![false; t.cols.len()];
        for i in 0..t.len {
            for (k, v) in (t.row)(i).into_iter().enumerate() {
                right[k] |= numeric(&v);
                width[k] = width[k].max(shown_width(&v));
            }
        }
        let mut line = String::new();
        let pad_cell = |line: &mut String, k: usize, start: usize, last: bool| {
            let len = line[start..].chars().count();
            let pad = width[k].saturating_sub(len);
            if right[k] {
                let cell = line.split_off(start);
                line.extend(std::iter::repeat_n(' ', pad));
                line.push_str(&cell);
            } else if !last {
                line.extend(std::iter::repeat_n(' ', pad));
            }
        };
        let n = t.cols.len();
        for (k, c) in t.cols.iter().enumerate() {
            if k > 0 {
                line.push_str("  ");
            }
            let start = line.len();
            line.push_str(&c.to_uppercase());
            pad_cell(&mut line, k, start, k + 1 == n);
        }
        line.push('\n');
        out.write_all(line.as_bytes())?;
        for i in 0..t.len {
            line.clear();
            for (k, v) in (t.row)(i).into_iter().enumerate() {
                if k > 0 {
                    line.push_str("  ");
                }
                let start = line.len();
                push_plain(&mut line, v, clock);
                pad_cell(&mut line, k, start, k + 1 == n);
            }
            line.push('\n');
            out.write_all(line.as_bytes())?;
        }
    }
    Ok(())
}

/// `s` with the five HTML-special characters escaped.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const CSS: &str = "body{font-family:sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:90%}\
th,td{border:1px solid #ccc;padding:2px 6px;text-align:left;white-space:nowrap}\
th{background:#eee}td.n{text-align:right}h2{margin-top:1.5em}\
.chart{margin:.5em 0}p.h{margin:.2em 0}";

fn html(r: &Report<'_>, clock: &Clock<'_>, out: &mut dyn Write) -> io::Result<()> {
    write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>ipprotreport: who used the service</title><style>{CSS}</style></head><body>\n\
         <h1>Who used the service</h1>\n"
    )?;
    for l in header_lines(r, clock) {
        writeln!(out, "<p class=\"h\">{}</p>", esc(&l))?;
    }
    writeln!(out, "<h2>Charts</h2>")?;
    let (t0, t1) = span(r);
    let conc = vec![("connections".to_string(), r.concurrency.clone())];
    for svg in [
        step_chart("Concurrent connections", &conc, t0, t1, clock),
        (!r.feature_steps.is_empty())
            .then(|| step_chart("Licenses out per feature", &r.feature_steps, t0, t1, clock))
            .flatten(),
        time_chart(&r.user_time),
    ]
    .into_iter()
    .flatten()
    {
        writeln!(out, "<div class=\"chart\">{svg}</div>")?;
    }
    let mut ts = tables(r);
    let sessions = ts.remove(0);
    ts.push(sessions);
    for t in ts {
        writeln!(out, "<h2>{}</h2>", esc(&t.title))?;
        if t.len == 0 {
            writeln!(out, "<p>(none)</p>")?;
            continue;
        }
        let mut s = String::from("<table><thead><tr>");
        for c in t.cols {
            let _ = write!(s, "<th>{}</th>", esc(c));
        }
        s.push_str("</tr></thead><tbody>\n");
        out.write_all(s.as_bytes())?;
        for i in 0..t.len {
            s.clear();
            s.push_str("<tr>");
            for v in (t.row)(i) {
                let n = numeric(&v);
                let text = esc(&plain(v, clock, "-", ", ", true));
                if n {
                    let _ = write!(s, "<td class=\"n\">{text}</td>");
                } else {
                    let _ = write!(s, "<td>{text}</td>");
                }
            }
            s.push_str("</tr>\n");
            out.write_all(s.as_bytes())?;
        }
        writeln!(out, "</tbody></table>")?;
    }
    writeln!(out, "</body></html>")
}

/// The time span of the charts: the window, else the data.
fn span(r: &Report<'_>) -> (i64, i64) {
    let lo = r
        .concurrency
        .first()
        .map(|p| p.0)
        .into_iter()
        .chain(
            r.feature_steps
                .iter()
                .filter_map(|s| s.1.first().map(|p| p.0)),
        )
        .min()
        .unwrap_or(0);
    let hi = r
        .concurrency
        .last()
        .map(|p| p.0)
        .into_iter()
        .chain(
            r.feature_steps
                .iter()
                .filter_map(|s| s.1.last().map(|p| p.0)),
        )
        .max()
        .unwrap_or(0);
    let lo = r.window.from.unwrap_or(lo);
    let hi = r.window.to.unwrap_or(hi).max(lo + US);
    (lo, hi)
}

/// Points drawn per series at most; longer step functions are reduced to
/// the maximum per bucket (a peak is never lost).
const MAX_POINTS: usize = 1500;

/// A step function as the corner points of its line, reduced to about
/// [`MAX_POINTS`], in seconds.
fn corners(steps: &[(i64, u64)], t0: i64, t1: i64) -> Vec<(i64, u64)> {
    let mut pts: Vec<(i64, u64)> = Vec::new();
    let (s0, s1) = (t0 / US, t1 / US);
    let reduced: Vec<(i64, u64)> = if steps.len() > MAX_POINTS {
        let buckets = (MAX_POINTS / 2) as i64;
        let width = ((s1 - s0) / buckets).max(1);
        let mut out: Vec<(i64, u64)> = Vec::new();
        let mut prev: u64 = 0;
        for &(t, v) in steps {
            let b = s0 + ((t / US - s0) / width) * width;
            match out.last_mut() {
                Some(last) if last.0 == b => last.1 = last.1.max(v),
                _ => out.push((b, v.max(prev))),
            }
            prev = v;
        }
        out
    } else {
        steps.iter().map(|&(t, v)| (t / US, v)).collect()
    };
    let mut cur = 0;
    pts.push((s0, 0));
    for (t, v) in reduced {
        let t = t.clamp(s0, s1);
        pts.push((t, cur));
        pts.push((t, v));
        cur = v;
    }
    pts.push((s1, cur));
    pts
}

const CHART_SIZE: (u32, u32) = (960, 320);

/// A step chart of one or more series over `[t0, t1]` (microseconds).
fn step_chart(
    title: &str,
    series: &[(String, Vec<(i64, u64)>)],
    t0: i64,
    t1: i64,
    clock: &Clock<'_>,
) -> Option<String> {
    let mut svg = String::new();
    let ymax = series
        .iter()
        .flat_map(|s| s.1.iter().map(|p| p.1))
        .max()
        .unwrap_or(0)
        .max(1);
    let (s0, s1) = (t0 / US, (t1 / US).max(t0 / US + 1));
    let fmt = |t: &i64| clock.short(t * US, t1 - t0);
    let drawn: Result<(), Box<dyn std::error::Error>> = (|| {
        let root = SVGBackend::with_string(&mut svg, CHART_SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(44)
            .build_cartesian_2d(s0..s1, 0u64..ymax + ymax.div_ceil(10))?;
        chart
            .configure_mesh()
            .x_labels(8)
            .y_labels(6)
            .x_label_formatter(&fmt)
            .draw()?;
        for (i, (name, steps)) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let pts = corners(steps, t0, t1);
            if series.len() == 1 {
                chart.draw_series(
                    AreaSeries::new(pts, 0, color.mix(0.25)).border_style(color.stroke_width(2)),
                )?;
            } else {
                chart
                    .draw_series(LineSeries::new(pts, color.stroke_width(2)))?
                    .label(name.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                    });
            }
        }
        if series.len() > 1 {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()?;
        }
        root.present()?;
        Ok(())
    })();
    drawn.ok().map(|()| svg)
}

/// Keys shown in the connected-time chart at most (the heaviest).
const MAX_BARS: usize = 25;

/// A bar chart of connected time per user.
fn time_chart(rows: &[(String, i64)]) -> Option<String> {
    if rows.is_empty() {
        return None;
    }
    let rows = &rows[..rows.len().min(MAX_BARS)];
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0);
    let (unit, div) = if max >= 2 * 3600 {
        ("hours", 3600.0)
    } else if max >= 120 {
        ("minutes", 60.0)
    } else {
        ("seconds", 1.0)
    };
    let vals: Vec<f64> = rows.iter().map(|r| r.1 as f64 / div).collect();
    let ymax = vals.iter().cloned().fold(0.0, f64::max).max(1.0) * 1.1;
    let n = rows.len() as u32;
    let mut svg = String::new();
    let title = format!("Connected time per user ({unit})");
    let label = |x: &f64| {
        let i = x.round();
        if (x - i).abs() < 0.01 && i >= 0.0 {
            rows.get(i as usize)
                .map(|r| r.0.clone())
                .unwrap_or_default()
        } else {
            String::new()
        }
    };
    let drawn: Result<(), Box<dyn std::error::Error>> = (|| {
        let root = SVGBackend::with_string(&mut svg, CHART_SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title.as_str(), ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(-0.5f64..f64::from(n) - 0.5, 0f64..ymax)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_labels(6)
            .max_light_lines(1)
            .x_labels(rows.len() * 2 + 1)
            .x_label_formatter(&label)
            .draw()?;
        // one bar per key, in the rows' order (drawn in that order, so the
        // page is the same bytes on every run)
        let color = Palette99::pick(0).filled();
        chart.draw_series(vals.iter().enumerate().map(|(i, v)| {
            let x = i as f64;
            Rectangle::new([(x - 0.4, 0.0), (x + 0.4, *v)], color)
        }))?;
        root.present()?;
        Ok(())
    })();
    drawn.ok().map(|()| svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::totals::{self, session_totals};
    use crate::report::{Checkout, Match, Peak};

    fn sessions() -> Vec<Session> {
        let mk = |conn, start: i64, end: i64, user: &str, ip: &str| Session {
            conn: Some(conn),
            start_us: start * US,
            end_us: end * US,
            client_ip: ip.into(),
            client_port: Some(4000),
            user: Some(user.into()),
            host: Some("pc,1".into()),
            proto: Some("flexlm".into()),
            status: "ok".into(),
            ..Session::default()
        };
        vec![
            mk(1, 1_795_465_805, 1_795_465_905, "frey", "10.0.0.1"),
            mk(2, 1_795_465_855, 1_795_466_005, "frey", "10.0.0.2"),
            mk(3, 1_795_465_900, 1_795_465_910, "<b>\"ann\"</b>", "::1"),
        ]
    }

    fn utc(_: i64) -> i32 {
        3600
    }

    fn report<'a>(s: &'a [Session], inputs: &'a [String], flex: Option<FlexReport>) -> Report<'a> {
        let w = Window::default();
        let iv: Vec<_> = s.iter().map(|s| (s.start_us, s.end_us, 1)).collect();
        Report {
            inputs,
            debug_logs: inputs,
            window: w,
            by: By::User,
            sessions: s.iter().collect(),
            totals: session_totals(s, By::User, &w),
            flex,
            concurrency: totals::steps(&iv),
            feature_steps: Vec::new(),
            user_time: vec![("frey".into(), 200), ("ann".into(), 10)],
        }
    }

    fn flex() -> FlexReport {
        FlexReport {
            checkouts: vec![Checkout {
                daemon: "MLM".into(),
                feature: "MATLAB".into(),
                user: "frey".into(),
                host: "pc,1".into(),
                cdstring: None,
                licenses: 1,
                out_us: 1_795_465_806 * US,
                in_us: None,
                reason: None,
                client_ip: Some("10.0.0.1".into()),
                conn: Some(1),
                matched: Match::Exact,
            }],
            peaks: vec![Peak {
                daemon: "MLM".into(),
                feature: "MATLAB".into(),
                peak: 1,
                peak_at_us: 1_795_465_806 * US,
            }],
            offset_us: -2 * US,
            offset_samples: 1,
            ..FlexReport::default()
        }
    }

    fn out(r: &Report<'_>, f: Format) -> String {
        let clock = Clock::new(&utc);
        let mut v = Vec::new();
        render(r, f, &clock, &mut v).unwrap();
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn json_rows() {
        let s = sessions();
        let inputs = vec!["conn.log".to_string()];
        let r = report(&s, &inputs, Some(flex()));
        let j = out(&r, Format::Json);
        let lines: Vec<&str> = j.lines().collect();
        assert_eq!(lines.len(), 3 + 2 + 1 + 1);
        assert_eq!(
            lines[0],
            "{\"type\":\"session\",\"conn\":1,\"start\":\"2026-11-23T21:30:05+01:00\",\"end\":\"2026-11-23T21:31:45+01:00\",\"secs\":100,\"client_ip\":\"10.0.0.1\",\"client_port\":4000,\"user\":\"frey\",\"host\":\"pc,1\",\"display\":null,\"pid\":null,\"program\":null,\"service\":null,\"proto\":\"flexlm\",\"status\":\"ok\"}"
        );
        assert_eq!(
            lines[3],
            "{\"type\":\"total\",\"by\":\"user\",\"key\":\"frey\",\"sessions\":2,\"connected_secs\":200,\"first\":\"2026-11-23T21:30:05+01:00\",\"last\":\"2026-11-23T21:33:25+01:00\",\"ips\":[\"10.0.0.1\",\"10.0.0.2\"],\"hosts\":[\"pc,1\"],\"peak\":2,\"peak_at\":\"2026-11-23T21:30:55+01:00\"}"
        );
        assert!(lines[5].contains("\"out\":\"2026-11-23T21:30:06+01:00\",\"in\":null,\"secs\":null,\"reason\":null,\"client_ip\":\"10.0.0.1\",\"conn\":1,\"match\":\"exact\"}"));
        for l in lines {
            serde_json::from_str::<serde_json::Value>(l).unwrap();
        }
    }

    #[test]
    fn csv_tables() {
        let s = sessions();
        let inputs = vec!["conn.log".to_string()];
        let r = report(&s, &inputs, Some(flex()));
        let c = out(&r, Format::Csv);
        let blocks: Vec<&str> = c.split("\n\n").collect();
        assert_eq!(blocks.len(), 6, "{c}");
        assert!(blocks[0].starts_with("type,conn,start,end,secs,client_ip"));
        assert!(blocks[0].contains("\nsession,1,2026-11-23T21:30:05+01:00,2026-11-23T21:31:45+01:00,100,10.0.0.1,4000,frey,\"pc,1\",,,,,flexlm,ok"));
        assert!(blocks[1].contains("\ntotal,user,frey,2,200,"));
        assert!(blocks[1].contains(",10.0.0.1 10.0.0.2,\"pc,1\",2,"));
        assert_eq!(
            blocks[3],
            "type,daemon,feature,user,host,time,false,message,client_ip,match"
        );
    }

    #[test]
    fn text_aligned() {
        let s = sessions();
        let inputs = vec!["conn.log".to_string()];
        let r = report(&s, &inputs, Some(flex()));
        let t = out(&r, Format::Text);
        assert!(
            t.contains(
                "Clock offset: -2 s (connection log minus debug log, from 1 unambiguous matches)"
            ),
            "{t}"
        );
        let totals = t.split("Totals by user\n").nth(1).unwrap();
        let rows: Vec<&str> = totals.lines().take(3).collect();
        assert!(rows[0].starts_with("BY    KEY  "), "{rows:?}");
        // columns line up: SESSIONS column right-aligned under its header
        let col = rows[0].find("SESSIONS").unwrap() + "SESSIONS".len();
        assert_eq!(&rows[1][col - 1..col], "2");
        assert_eq!(&rows[2][col - 1..col], "1");
        assert!(t.find("Totals by").unwrap() < t.find("Sessions").unwrap());
        assert!(t.contains("Denials\n  (none)"));
        assert_eq!(offset_text(250_000), "+0.250 s");
        let clock = Clock::new(&utc);
        for v in [
            Val::Null,
            Val::Str("jösé"),
            Val::Num(0),
            Val::Num(-120),
            Val::Num(i64::MAX),
            Val::Bool(false),
            Val::List(&[]),
            Val::Time(-1),
        ] {
            let w = shown_width(&v);
            assert_eq!(plain(v, &clock, "-", ",", true).chars().count(), w);
        }
        let l: Vec<Text> = vec!["a".into(), "bc".into()];
        assert_eq!(shown_width(&Val::List(&l)), 4);
    }

    #[test]
    fn html_page() {
        let s = sessions();
        let inputs = vec!["conn.log".to_string()];
        let mut r = report(&s, &inputs, Some(flex()));
        r.feature_steps = vec![("MATLAB".into(), vec![(1_795_465_806 * US, 1)])];
        let h = out(&r, Format::Html);
        assert!(h.starts_with("<!DOCTYPE html>"));
        assert_eq!(h.matches("<svg").count(), 3);
        assert!(h.contains("<path") || h.contains("<polyline"));
        assert!(h.contains("&lt;b&gt;&quot;ann&quot;&lt;/b&gt;"));
        assert!(!h.contains("<b>\"ann\""));
        assert!(!h.contains("http://") || !h.contains("src=\"http"));
        assert!(!h.contains("<script"));
    }

    #[test]
    fn corners_bounded() {
        let steps: Vec<(i64, u64)> = (0..100_000).map(|i| (i * US, (i % 7) as u64)).collect();
        let c = corners(&steps, 0, 100_000 * US);
        assert!(c.len() <= 2 * MAX_POINTS + 4, "{}", c.len());
        assert_eq!(c.iter().map(|p| p.1).max(), Some(6));
    }
}
