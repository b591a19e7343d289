//! `ipprotcat`: reads data logs and prints them. The stages, in the order a
//! file passes them: `cli` turns the command line into [`cli::Options`];
//! `read` opens a file (or standard input), sniffs plain/gzip/bzip2 by its
//! first bytes and cuts the decompressed stream into [`Item`]s, one block
//! at a time, keeping whatever precedes damage in a truncated or corrupt
//! file; `render` turns items into text, hexdump, JSON, raw bytes or a
//! summary; `pcap` turns them into a synthetic TCP conversation.
//!
//! [`run`] is the only part that touches standard output, standard error
//! and the file system; it decides the exit status: 0, or 1 when any file
//! could not be opened or read to its end (everything readable is printed
//! anyway). A closed pipe on standard output ends the run quietly with 0.

pub mod cli;
pub mod pcap;
pub mod read;
pub mod render;
pub mod verify;

use std::fs::File;
use std::io::{self, BufWriter, Write};

use crate::audit::{Auditor, Conn, Record, TimeText, push_json, push_text};
use crate::record::block::Dir;
use cli::{Mode, Options};

/// What a data log holds, in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// A `-t` stamp line: its text as recorded
    /// (`yyyy-mm-dd HH:MM:SS+hh:mm`).
    Stamp(String),
    /// One block.
    Block(Block),
}

/// One relayed chunk, or the payload of an undated file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Block {
    /// Microseconds since the epoch from the `-M` marker; `None` when the
    /// payload was not preceded by a marker (a file recorded without `-M`).
    pub time_us: Option<u64>,
    /// Direction from the marker; `None` for an undated block.
    pub dir: Option<Dir>,
    /// The recorded payload (empty for a marker-only block).
    pub payload: Vec<u8>,
}

/// Seconds since the epoch of a stamp text `yyyy-mm-dd HH:MM:SS+hh:mm`,
/// in microseconds; `None` if it names no valid instant.
pub fn stamp_epoch_us(text: &str) -> Option<i64> {
    use time::{Date, Month, PrimitiveDateTime, Time, UtcOffset};
    let b = text.as_bytes();
    if b.len() != crate::record::block::STAMP_TEXT_LEN {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i32> { text.get(from..to)?.parse().ok() };
    let date = Date::from_calendar_date(
        num(0, 4)?,
        Month::try_from(u8::try_from(num(5, 7)?).ok()?).ok()?,
        u8::try_from(num(8, 10)?).ok()?,
    )
    .ok()?;
    let tod = Time::from_hms(
        u8::try_from(num(11, 13)?).ok()?,
        u8::try_from(num(14, 16)?).ok()?,
        u8::try_from(num(17, 19)?).ok()?,
    )
    .ok()?;
    let sign: i8 = if b[19] == b'-' { -1 } else { 1 };
    let off = UtcOffset::from_hms(
        sign * i8::try_from(num(20, 22)?).ok()?,
        sign * i8::try_from(num(23, 25)?).ok()?,
        0,
    )
    .ok()?;
    let t = PrimitiveDateTime::new(date, tod).assume_offset(off);
    t.unix_timestamp().checked_mul(1_000_000)
}

/// Whether `item` passes `--direction` (`None`: everything does). Stamps
/// and undated blocks have no direction and never pass a filter.
pub fn selected(item: &Item, filter: Option<Dir>) -> bool {
    match (filter, item) {
        (None, _) => true,
        (Some(want), Item::Block(b)) => b.dir == Some(want),
        (Some(_), Item::Stamp(_)) => false,
    }
}

/// Why writing the output stopped.
enum OutError {
    /// The reader of standard output went away: not an error.
    BrokenPipe,
    /// Any other failure writing `what` (a path, or `stdout`).
    Write(String, io::Error),
}

/// Where `--pcap` and everything else go.
struct Output {
    stdout: BufWriter<io::StdoutLock<'static>>,
    pcap: Option<(String, BufWriter<File>)>,
}

impl Output {
    fn stdout(&mut self, bytes: &[u8]) -> Result<(), OutError> {
        self.stdout.write_all(bytes).map_err(stdout_error)
    }

    /// The pcap stream: the named file, or standard output for `-`.
    fn pcap(&mut self, bytes: &[u8]) -> Result<(), OutError> {
        match &mut self.pcap {
            Some((path, f)) => f
                .write_all(bytes)
                .map_err(|e| OutError::Write(path.clone(), e)),
            None => self.stdout(bytes),
        }
    }

    fn flush(&mut self) -> Result<(), OutError> {
        if let Some((path, f)) = &mut self.pcap {
            f.flush().map_err(|e| OutError::Write(path.clone(), e))?;
        }
        self.stdout.flush().map_err(stdout_error)
    }
}

fn stdout_error(e: io::Error) -> OutError {
    if e.kind() == io::ErrorKind::BrokenPipe {
        OutError::BrokenPipe
    } else {
        OutError::Write("stdout".to_string(), e)
    }
}

/// Print one diagnostic line; a failing standard error is ignored (there
/// is nowhere left to complain).
pub fn warn(msg: &str) {
    let _ = writeln!(io::stderr().lock(), "ipprotcat: {msg}");
}

/// Read every file of `opts` and write the chosen output. Returns the exit
/// status (0 or 1).
pub fn run(opts: &Options) -> u8 {
    if let Mode::Verify { archive } = &opts.mode {
        return verify::run(&opts.files, archive.as_deref());
    }
    let pcap = match &opts.mode {
        Mode::Pcap(p) if p.path != "-" && is_an_input(&p.path, &opts.files) => {
            warn(&format!(
                "{}: cannot create: it is also an input file",
                p.path
            ));
            return 1;
        }
        Mode::Pcap(p) if p.path != "-" => match File::create(&p.path) {
            Ok(f) => Some((p.path.clone(), BufWriter::new(f))),
            Err(e) => {
                warn(&format!("{}: cannot create: {e}", p.path));
                return 1;
            }
        },
        _ => None,
    };
    let mut out = Output {
        stdout: BufWriter::new(io::stdout().lock()),
        pcap,
    };
    let result = run_files(opts, &mut out).and_then(|status| out.flush().map(|()| status));
    match result {
        Ok(status) => status,
        Err(OutError::BrokenPipe) => 0,
        Err(OutError::Write(what, e)) => {
            warn(&format!("{what}: cannot write: {e}"));
            1
        }
    }
}

/// Whether `path` exists and is the same file as one of `inputs`
/// (creating the capture would truncate a recording).
fn is_an_input(path: &str, inputs: &[String]) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(target) = std::fs::metadata(path) else {
        return false;
    };
    inputs
        .iter()
        .filter_map(|i| std::fs::metadata(i).ok())
        .any(|m| (m.dev(), m.ino()) == (target.dev(), target.ino()))
}

fn run_files(opts: &Options, out: &mut Output) -> Result<u8, OutError> {
    let tz = crate::os::time::local_offset;
    let mut status = 0;
    let mut buf = Vec::new();
    if let Mode::Pcap(_) = opts.mode {
        pcap::global_header(&mut buf);
        out.pcap(&buf)?;
    }
    for (index, path) in opts.files.iter().enumerate() {
        let mut src = match read::open(path) {
            Ok(src) => src,
            Err(e) => {
                out.flush()?;
                warn(&format!("{path}: cannot open: {e}"));
                status = 1;
                continue;
            }
        };
        let mut conv = match &opts.mode {
            Mode::Pcap(p) => Some(pcap::Conversation::new(
                &pcap::Endpoints::for_file(path, p.server_ip, p.server_port, index),
                src.mtime_us().unwrap_or(0),
            )),
            _ => None,
        };
        if let Mode::Statements { json, redact } = opts.mode {
            statements(path, &mut src, json, redact, &tz, out)?;
            if let Some(e) = src.take_error() {
                out.flush()?;
                warn(&format!("{path}: {e}"));
                status = 1;
            }
            continue;
        }
        let mut summary = render::Summary::default();
        let mut undated_left_out = false;
        if opts.files.len() > 1 && matches!(opts.mode, Mode::Text | Mode::Hex) {
            out.stdout(format!("==> {path} <==\n").as_bytes())?;
        }
        for item in src.items() {
            buf.clear();
            if !selected(&item, opts.direction) {
                undated_left_out |= matches!(&item, Item::Block(b) if b.dir.is_none());
                continue;
            }
            match &opts.mode {
                Mode::Statements { .. } => {}
                Mode::Text => render::text(&item, &tz, &mut buf),
                Mode::Hex => render::hex(&item, &tz, &mut buf),
                Mode::Json => render::json(path, &item, &tz, &mut buf),
                Mode::Raw => render::raw(&item, &mut buf),
                Mode::Summary => summary.add(&item),
                // handled by verify::run before any file is read
                Mode::Verify { .. } => {}
                Mode::Pcap(_) => {
                    if let Some(c) = &mut conv {
                        c.item(&item, &mut buf);
                    }
                }
            }
            match opts.mode {
                Mode::Pcap(_) => out.pcap(&buf)?,
                _ => out.stdout(&buf)?,
            }
        }
        buf.clear();
        if let Some(c) = conv {
            c.finish(&mut buf);
            out.pcap(&buf)?;
        }
        if let Mode::Summary = opts.mode {
            buf.clear();
            summary.render(path, &tz, &mut buf);
            out.stdout(&buf)?;
        }
        if undated_left_out {
            out.flush()?;
            warn(&format!(
                "{path}: no direction markers (recorded without -M): undated data left out by --direction"
            ));
        }
        if let Some(e) = src.take_error() {
            out.flush()?;
            warn(&format!("{path}: {e}"));
            status = 1;
        }
    }
    Ok(status)
}

/// The connection number and client IP a data-log name carries:
/// `<prefix>_<yyyy-mm-dd_HHMMSS>_<n>_<client_ip>[.gz|.bz2]`.
pub fn conn_from_file_name(path: &str) -> Conn {
    let client = pcap::client_from_file_name(path);
    let name = path.rsplit('/').next().unwrap_or(path);
    let conn = name
        .rsplit('_')
        .nth(1)
        .filter(|_| client.is_some())
        .and_then(|n| n.parse().ok());
    Conn {
        conn,
        client_ip: client.map(crate::config::addr::ip_text),
        client_port: None,
    }
}

/// `--statements`: feed the blocks of one recording to the statement
/// audit and print its records. A marker-only block to the client (a
/// recording made with `-l`) or an undated file (one block, taken as the
/// client's) makes the audit one-sided: statuses `unknown`.
fn statements(
    path: &str,
    src: &mut read::Source,
    json: bool,
    redact: bool,
    tz: &dyn Fn(i64) -> i32,
    out: &mut Output,
) -> Result<(), OutError> {
    let conn = conn_from_file_name(path);
    let undated_us = src
        .mtime_us()
        .and_then(|t| i64::try_from(t).ok())
        .unwrap_or(0);
    let mut auditor = Auditor::new(redact);
    let mut records = Vec::new();
    let mut text = String::new();
    let mut times = TimeText::new(tz);
    let mut emit = |records: &mut Vec<Record>, out: &mut Output| -> Result<(), OutError> {
        text.clear();
        for r in records.drain(..) {
            if json {
                push_json(&mut text, &r, &conn, &mut times);
            } else {
                push_text(&mut text, &r, &conn, &mut times);
            }
        }
        out.stdout(text.as_bytes())
    };
    for item in src.items() {
        let Item::Block(b) = item else { continue };
        let time_us = b
            .time_us
            .and_then(|t| i64::try_from(t).ok())
            .unwrap_or(undated_us);
        match b.dir {
            Some(Dir::ToClient) if b.payload.is_empty() => auditor.one_sided(&mut records),
            Some(dir) => auditor.feed(dir, time_us, &b.payload, &mut records),
            None => {
                auditor.one_sided(&mut records);
                auditor.feed(Dir::FromClient, time_us, &b.payload, &mut records);
            }
        }
        if !records.is_empty() {
            emit(&mut records, out)?;
        }
    }
    auditor.finish(&mut records);
    emit(&mut records, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conn_and_client_from_names() {
        let c = conn_from_file_name("/var/log/ipprot/prot_2026-12-01_101500_17_10.1.2.3.gz");
        assert_eq!(
            (c.conn, c.client_ip.as_deref()),
            (Some(17), Some("10.1.2.3"))
        );
        let c = conn_from_file_name("db_a_2026-12-01_101500_3_::1");
        assert_eq!((c.conn, c.client_ip.as_deref()), (Some(3), Some("::1")));
        assert_eq!(conn_from_file_name("capture.bin"), Conn::default());
    }

    #[test]
    fn stamp_times() {
        assert_eq!(stamp_epoch_us("1970-01-01 01:00:00+01:00"), Some(0));
        assert_eq!(
            stamp_epoch_us("2026-11-23 20:30:05-03:30"),
            Some(1_795_478_405_000_000)
        );
        assert_eq!(stamp_epoch_us("2026-02-30 20:30:05+01:00"), None);
        assert_eq!(stamp_epoch_us("2026-11-23 20:30:05+01"), None);
    }

    #[test]
    fn direction_filter() {
        let b = |dir| {
            Item::Block(Block {
                time_us: Some(1),
                dir,
                payload: vec![],
            })
        };
        assert!(selected(&b(Some(Dir::FromClient)), Some(Dir::FromClient)));
        assert!(!selected(&b(Some(Dir::ToClient)), Some(Dir::FromClient)));
        assert!(!selected(&b(None), Some(Dir::ToClient)));
        assert!(selected(&b(None), None));
        assert!(!selected(&Item::Stamp(String::new()), Some(Dir::ToClient)));
    }
}
