//! Command line of `ipprotreport`: argv in, [`Options`] (or help, version,
//! or a usage error naming the option) out. Pure but for the local UTC
//! offset that `--from`/`--to` in local time need (passed in).

use crate::error::getopts_message;

use super::render::Format;
use super::totals::{By, Window, parse_time};
use crate::log::template::{DEFAULT_FORMAT, Template};

/// The usage line; byte-identical to the SYNOPSIS of `ipprotreport(1)`.
pub const USAGE: &str = "usage: ipprotreport [--flexlm-log FILE]... [--log-tz ZONE] [--from TIME] [--to TIME] [--by user|host|ip|service|program|feature] [-C FORMAT] [--format text|csv|json|html] [-o FILE] [-? | -v] CONNLOG...";

/// `-?`/`--help`: what it does and one line per option.
pub const HELP: &str = "\
Who used the service behind ipprotd: sessions, totals per key and, with
FlexNet debug logs, every license checkout with the client's IP.

  --flexlm-log FILE   a FlexNet/FLEXlm debug log (lmgrd -l); repeatable
  --log-tz ZONE       time zone of the debug log (IANA name or UTC;
                      default: this machine's)
  --from TIME         only what overlaps TIME and later; RFC 3339 or
                      yyyy-mm-dd[ HH:MM[:SS]] local time
  --to TIME           only what overlaps TIME and earlier (a bare date:
                      the end of that day)
  --by KEY            totals per user (default), host, ip, service,
                      program, or feature (needs --flexlm-log)
  -C FORMAT           the -C format the connection logs were written with
                      (default format and JSON lines are always read)
  --format F          text (default), csv, json (lines) or html
  -o FILE             write the report to FILE instead of standard output
  -?, --help          this help
  -v, --version       the version

CONNLOG files may be gzip-compressed (conn.log.1.gz); '-' is standard input.
";

/// A validated command line.
#[derive(Clone, Debug)]
pub struct Options {
    pub flexlm_logs: Vec<String>,
    pub log_tz: Option<String>,
    pub window: Window,
    pub by: By,
    /// How text entries are read.
    pub template: Template,
    pub format: Format,
    pub output: Option<String>,
    pub connlogs: Vec<String>,
}

/// The outcome of parsing.
#[derive(Clone, Debug)]
pub enum Parsed {
    Run(Box<Options>),
    Help,
    Version,
}

/// A usage error: the message, without `ipprotreport: ` (exit status 2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

fn spec() -> getopts::Options {
    let mut o = getopts::Options::new();
    o.optmulti("", "flexlm-log", "", "")
        .optopt("", "log-tz", "", "")
        .optopt("", "from", "", "")
        .optopt("", "to", "", "")
        .optopt("", "by", "", "")
        .optopt("C", "", "", "")
        .optopt("", "format", "", "")
        .optopt("o", "", "", "")
        .optflag("?", "help", "")
        .optflag("v", "version", "");
    o
}

/// `C` -> `-C`, `by` -> `--by`.
const TIME_FORMS: &str = "RFC 3339 or yyyy-mm-dd[ HH:MM[:SS]]";

/// Parse the arguments after the program name; `offset_at` gives the
/// local UTC offset at an instant (for local `--from`/`--to`).
pub fn parse(args: &[String], offset_at: &dyn Fn(i64) -> i32) -> Result<Parsed, UsageError> {
    let m = spec()
        .parse(args)
        .map_err(|f| UsageError(getopts_message(f)))?;
    if m.opt_present("help") {
        return Ok(Parsed::Help);
    }
    if m.opt_present("version") {
        return Ok(Parsed::Version);
    }
    let flexlm_logs = m.opt_strs("flexlm-log");
    if flexlm_logs.iter().any(String::is_empty) {
        return Err(UsageError("--flexlm-log needs a file name".into()));
    }
    let log_tz = m.opt_str("log-tz");
    if log_tz.is_some() && flexlm_logs.is_empty() {
        return Err(UsageError("--log-tz needs --flexlm-log".into()));
    }
    let time = |opt: &str, end_of_day: bool| -> Result<Option<i64>, UsageError> {
        match m.opt_str(opt) {
            None => Ok(None),
            Some(v) => parse_time(v.trim(), end_of_day, offset_at)
                .map(Some)
                .ok_or_else(|| UsageError(format!("--{opt}: '{v}' is not a time ({TIME_FORMS})"))),
        }
    };
    let window = Window {
        from: time("from", false)?,
        to: time("to", true)?,
    };
    if let (Some(f), Some(t)) = (window.from, window.to)
        && f > t
    {
        return Err(UsageError("--from is later than --to".into()));
    }
    let by = match m.opt_str("by") {
        None => By::User,
        Some(v) => By::parse(&v)
            .ok_or_else(|| UsageError(format!("--by: '{v}' is not one of {}", By::NAMES)))?,
    };
    if by == By::Feature && flexlm_logs.is_empty() {
        return Err(UsageError("--by feature needs --flexlm-log".into()));
    }
    let template = match m.opt_str("C") {
        None => Template::parse(DEFAULT_FORMAT).map_err(UsageError)?,
        Some(f) => {
            let t = Template::parse(&f).map_err(|e| UsageError(format!("-C: {e}")))?;
            super::input::check_format(&t).map_err(|e| UsageError(format!("-C: {e}")))?;
            t
        }
    };
    let format = match m.opt_str("format") {
        None => Format::Text,
        Some(v) => Format::parse(&v).ok_or_else(|| {
            UsageError(format!("--format: '{v}' is not one of text|csv|json|html"))
        })?,
    };
    let output = m.opt_str("o");
    if output.as_deref() == Some("") {
        return Err(UsageError("-o needs a file name".into()));
    }
    if m.free.is_empty() {
        return Err(UsageError(
            "no connection log given ('-' reads standard input)".into(),
        ));
    }
    Ok(Parsed::Run(Box::new(Options {
        flexlm_logs,
        log_tz,
        window,
        by,
        template,
        format,
        output,
        connlogs: m.free,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(_: i64) -> i32 {
        0
    }

    fn p(args: &[&str]) -> Result<Parsed, UsageError> {
        parse(
            &args.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            &utc,
        )
    }

    fn run(args: &[&str]) -> Options {
        match p(args) {
            Ok(Parsed::Run(o)) => *o,
            other => panic!("{other:?}"),
        }
    }

    fn err(args: &[&str]) -> String {
        match p(args) {
            Err(UsageError(m)) => m,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let o = run(&["conn.log"]);
        assert_eq!(o.by, By::User);
        assert_eq!(o.format, Format::Text);
        assert_eq!(o.window, Window::default());
        assert_eq!(o.template, Template::parse(DEFAULT_FORMAT).unwrap());
        assert_eq!(o.connlogs, ["conn.log"]);
        assert!(matches!(p(&["-?"]), Ok(Parsed::Help)));
        assert!(matches!(p(&["--version"]), Ok(Parsed::Version)));
    }

    #[test]
    fn every_option() {
        let o = run(&[
            "--flexlm-log",
            "a.log",
            "--flexlm-log",
            "b.log",
            "--log-tz",
            "Europe/Paris",
            "--from",
            "2026-11-23",
            "--to",
            "2026-11-23 12:00",
            "--by",
            "feature",
            "-C",
            "%s %e %i",
            "--format",
            "html",
            "-o",
            "r.html",
            "x",
            "y.gz",
        ]);
        assert_eq!(o.flexlm_logs, ["a.log", "b.log"]);
        assert_eq!(o.log_tz.as_deref(), Some("Europe/Paris"));
        assert_eq!(o.window.from, Some(1_795_392_000_000_000));
        assert_eq!(o.window.to, Some(1_795_435_200_000_000));
        assert_eq!(o.by, By::Feature);
        assert_eq!(o.format, Format::Html);
        assert_eq!(o.output.as_deref(), Some("r.html"));
        assert_eq!(o.connlogs, ["x", "y.gz"]);
        assert_eq!(
            run(&["--to", "2026-11-23", "x"]).window.to,
            Some(1_795_478_400_000_000)
        );
    }

    #[test]
    fn usage_errors_name_the_option() {
        assert_eq!(
            err(&[]),
            "no connection log given ('-' reads standard input)"
        );
        assert_eq!(
            err(&["--by", "dept", "x"]),
            "--by: 'dept' is not one of user|host|ip|service|program|feature"
        );
        assert_eq!(
            err(&["--by", "feature", "x"]),
            "--by feature needs --flexlm-log"
        );
        assert_eq!(
            err(&["--log-tz", "UTC", "x"]),
            "--log-tz needs --flexlm-log"
        );
        assert_eq!(
            err(&["--from", "yesterday", "x"]),
            "--from: 'yesterday' is not a time (RFC 3339 or yyyy-mm-dd[ HH:MM[:SS]])"
        );
        assert_eq!(
            err(&["--from", "2026-11-24", "--to", "2026-11-22", "x"]),
            "--from is later than --to"
        );
        assert_eq!(
            err(&["-C", "%q", "x"]),
            "-C: unknown escape '%q' at column 1"
        );
        assert_eq!(
            err(&["-C", "%i %e", "x"]),
            "-C: the format has no start time (%s)"
        );
        assert_eq!(
            err(&["--format", "pdf", "x"]),
            "--format: 'pdf' is not one of text|csv|json|html"
        );
        assert_eq!(err(&["--format"]), "--format needs a value");
        assert_eq!(err(&["--frm", "x"]), "unknown option --frm");
        assert_eq!(
            err(&["--by", "ip", "--by", "user", "x"]),
            "--by given more than once"
        );
        assert_eq!(err(&["-o", "", "x"]), "-o needs a file name");
        assert_eq!(
            err(&["--flexlm-log", "", "x"]),
            "--flexlm-log needs a file name"
        );
    }
}
