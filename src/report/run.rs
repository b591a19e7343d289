//! One run of `ipprotreport`: read the connection logs (`input`), join the
//! debug logs (`flexlm::analyze`), keep what overlaps the window, add up
//! (`totals`) and write the report (`render`). Returns the exit status:
//! 0 (also when lines were skipped with a warning), 1 an input or the
//! output could not be read or written, 2 a usage error found late (a
//! `--log-tz` zone that does not exist).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};

use super::cli::Options;
use super::input::{self, Reader};
use super::render::{self, Clock, Report, offset_text};
use super::totals::{self, By, Weighted, Window};
use super::{FlexReport, Session, flexlm};

/// Warnings of the debug-log parser printed before the rest are counted.
const FLEX_WARNINGS_SHOWN: usize = 10;

/// `ipprotreport: msg` on standard error.
pub fn warn(msg: &str) {
    let _ = writeln!(io::stderr(), "ipprotreport: {msg}");
}

/// Run the report; `offset_at` gives the local UTC offset at an instant.
pub fn run(o: &Options, offset_at: &dyn Fn(i64) -> i32) -> u8 {
    if let Err(e) = flexlm::zone(o.log_tz.as_deref()) {
        warn(&e);
        return 2;
    }
    let mut reader = Reader::new(&o.template);
    for path in &o.connlogs {
        if let Err(e) = reader.read_path(path, &mut |w| warn(w)) {
            warn(&e.0);
            return 1;
        }
    }
    let sessions = reader.finish();

    let flex = if o.flexlm_logs.is_empty() {
        None
    } else {
        let mut logs = Vec::with_capacity(o.flexlm_logs.len());
        for path in &o.flexlm_logs {
            match input::read_text(path) {
                Ok(text) => logs.push((path.clone(), text)),
                Err(e) => {
                    warn(&e.0);
                    return 1;
                }
            }
        }
        let f = match flexlm::analyze(&logs, o.log_tz.as_deref(), &sessions) {
            Ok(f) => f,
            Err(e) => {
                warn(&e);
                return 1;
            }
        };
        drop(logs);
        for w in f.warnings.iter().take(FLEX_WARNINGS_SHOWN) {
            warn(w);
        }
        if f.warnings.len() > FLEX_WARNINGS_SHOWN {
            warn(&format!(
                "{} more debug-log warnings not shown",
                f.warnings.len() - FLEX_WARNINGS_SHOWN
            ));
        }
        if f.checkouts.is_empty() && f.denials.is_empty() && f.unsupported.is_empty() {
            warn(&format!(
                "{}: no checkouts, denials or unsupported requests found (is it a FlexNet debug log?)",
                o.flexlm_logs.join(", ")
            ));
        }
        warn(&format!(
            "clock offset {} (connection log minus debug log, from {} unambiguous matches)",
            offset_text(f.offset_us),
            f.offset_samples
        ));
        Some(f)
    };

    let report = build(o, &sessions, flex);
    let clock = Clock::new(offset_at);
    let written = match &o.output {
        None => {
            let stdout = io::stdout();
            let mut w = BufWriter::with_capacity(256 * 1024, stdout.lock());
            render::render(&report, o.format, &clock, &mut w).and_then(|()| w.flush())
        }
        Some(path) => {
            let f = match File::create(path) {
                Ok(f) => f,
                Err(e) => {
                    warn(&format!("-o: cannot create {path}: {e}"));
                    return 1;
                }
            };
            let mut w = BufWriter::with_capacity(256 * 1024, f);
            render::render(&report, o.format, &clock, &mut w)
                .and_then(|()| w.flush())
                .map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))
        }
    };
    match written {
        Ok(()) => 0,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            warn(&format!("cannot write the report: {e}"));
            1
        }
    }
}

/// The last instant any input speaks of (an open checkout lasts until then).
fn end_of_data(sessions: &[Session], f: Option<&FlexReport>) -> i64 {
    let s = sessions.iter().map(|s| s.end_us).max();
    let c = f.into_iter().flat_map(|f| {
        f.checkouts
            .iter()
            .map(|c| c.in_us.unwrap_or(c.out_us))
            .chain(f.denials.iter().map(|d| d.time_us))
            .chain(f.unsupported.iter().map(|u| u.time_us))
    });
    s.into_iter().chain(c).max().unwrap_or(0)
}

/// Filter to the window and add up.
pub fn build<'a>(o: &'a Options, sessions: &'a [Session], flex: Option<FlexReport>) -> Report<'a> {
    let w: Window = o.window;
    let end = end_of_data(sessions, flex.as_ref());
    let kept: Vec<&Session> = sessions
        .iter()
        .filter(|s| w.overlaps(s.start_us, s.end_us))
        .collect();
    let counted: Vec<Weighted> = kept
        .iter()
        .filter(|s| totals::reached(&s.status))
        .map(|s| {
            let (a, b) = w.clip(s.start_us, s.end_us);
            (a, b, 1)
        })
        .collect();
    let concurrency = totals::steps(&counted);
    drop(counted);

    let by_user = totals::session_totals(sessions, By::User, &w);
    let user_time = by_user
        .iter()
        .map(|t| {
            (
                t.key.as_deref().unwrap_or("-").to_string(),
                t.connected_secs(),
            )
        })
        .collect();
    let totals = match o.by {
        By::User => by_user,
        By::Feature => {
            let checkouts = flex.as_ref().map(|f| &f.checkouts[..]).unwrap_or(&[]);
            totals::feature_totals(checkouts, &w, end)
        }
        by => totals::session_totals(sessions, by, &w),
    };

    let mut feature_steps = Vec::new();
    let flex = flex.map(|mut f| {
        let whole = w == Window::default();
        if !whole {
            f.peaks = totals::window_peaks(&f.checkouts, &w, end);
            f.checkouts
                .retain(|c| w.overlaps(c.out_us, c.in_us.unwrap_or(end.max(c.out_us))));
            f.denials.retain(|d| w.holds(d.time_us));
            f.unsupported.retain(|u| w.holds(u.time_us));
        }
        let mut per: BTreeMap<&str, Vec<Weighted>> = BTreeMap::new();
        for c in &f.checkouts {
            let (a, b) = w.clip(c.out_us, c.in_us.unwrap_or(end.max(c.out_us)));
            per.entry(&c.feature)
                .or_default()
                .push((a, b, u64::from(c.licenses)));
        }
        feature_steps = per
            .into_iter()
            .map(|(k, iv)| (k.to_string(), totals::steps(&iv)))
            .collect();
        f
    });

    Report {
        inputs: &o.connlogs,
        debug_logs: &o.flexlm_logs,
        window: w,
        by: o.by,
        sessions: kept,
        totals,
        flex,
        concurrency,
        feature_steps,
        user_time,
    }
}
