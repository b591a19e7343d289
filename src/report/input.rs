//! Reading connection logs into [`Session`]s: text entries in the default
//! format or the `-C FORMAT` given again (read back by the daemon's own
//! template module, `log::template`, so the two can never disagree),
//! `-C json` lines (recognised per line by their `{`), plain or gzip
//! (recognised by content, so `conn.log.1.gz` and a renamed one alike).
//! Open events are not sessions. A malformed entry is warned about as
//! `FILE:LINE` and skipped; a file that cannot be opened or read is an
//! error naming the path and the OS error. The only I/O of the report.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};

use flate2::read::MultiGzDecoder;
use rustc_hash::FxHashSet;
use serde_json::Value;

use super::{Session, Text};
use crate::log::template::{Entry, Field, Template};
use crate::log::timefmt::LocalTime;

/// The first bytes of a gzip member.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Warnings printed per file before the rest are only counted.
pub const WARNINGS_PER_FILE: usize = 10;

/// A longest entry we read; longer lines are malformed (a binary file
/// without newlines must not be read into memory whole).
const MAX_LINE: usize = 64 * 1024;

/// Check that a `-C` format can give sessions: it needs the start, and
/// the end or the duration.
pub fn check_format(t: &Template) -> Result<(), String> {
    let Template::Text(parts) = t else {
        return Ok(());
    };
    let has = |f: Field| {
        parts
            .iter()
            .any(|p| matches!(p, crate::log::template::Part::Field(g) if *g == f))
    };
    if !has(Field::Start) {
        return Err("the format has no start time (%s)".into());
    }
    if !has(Field::End) && !has(Field::Secs) {
        return Err("the format has neither end time (%e) nor duration (%S)".into());
    }
    Ok(())
}

/// Reads entries from files, keeping one copy of each repeated text.
pub struct Reader<'t> {
    template: &'t Template,
    strings: FxHashSet<Text>,
    /// Every session read so far, in file order.
    pub sessions: Vec<Session>,
    /// Lines skipped, all files together.
    pub skipped: usize,
}

/// An input that could not be read: `PATH: cannot VERB: OS error`.
#[derive(Debug)]
pub struct InputError(pub String);

impl<'t> Reader<'t> {
    /// Text entries are read by `template` (`Template::Json` means: only
    /// JSON lines are expected, text lines are read in the default format).
    pub fn new(template: &'t Template) -> Reader<'t> {
        Reader {
            template,
            strings: FxHashSet::default(),
            sessions: Vec::new(),
            skipped: 0,
        }
    }

    fn text(&mut self, s: &str) -> Text {
        if let Some(t) = self.strings.get(s) {
            return t.clone();
        }
        let t: Text = s.into();
        self.strings.insert(t.clone());
        t
    }

    fn opt(&mut self, s: Option<&str>) -> Option<Text> {
        s.map(|s| self.text(s))
    }

    /// Read one file (`-` is standard input); `warn` gets each warning.
    pub fn read_path(&mut self, path: &str, warn: &mut dyn FnMut(&str)) -> Result<(), InputError> {
        let mut input = open(path)?;
        self.read_from(path, &mut input, warn)
            .map_err(|e| InputError(format!("{path}: cannot read: {e}")))
    }

    /// Read entries from `input`, named `name` in warnings.
    pub fn read_from(
        &mut self,
        name: &str,
        input: &mut dyn BufRead,
        warn: &mut dyn FnMut(&str),
    ) -> io::Result<()> {
        let per_entry = self.template.lines_per_entry();
        let mut line = Vec::new();
        let mut entry = String::new();
        let mut lineno = 0usize;
        let mut first_line = 0usize;
        let mut in_entry = 0usize;
        let mut warned = 0usize;
        let mut good = 0usize;
        let mut bad = 0usize;
        loop {
            line.clear();
            let n = read_line_capped(input, &mut line)?;
            if n == 0 {
                break;
            }
            lineno += 1;
            let mut text = String::from_utf8_lossy(&line);
            if lineno == 1
                && let Some(rest) = text.strip_prefix('\u{feff}')
            {
                text = rest.to_string().into();
            }
            let t = text.trim_end_matches(['\n', '\r']);
            let result = if n > MAX_LINE {
                Some(Err("line too long".to_string()))
            } else if t.trim_start().starts_with('{') {
                in_entry = 0;
                entry.clear();
                first_line = lineno;
                Some(self.json(t))
            } else if t.trim().is_empty() && in_entry == 0 {
                None
            } else {
                if in_entry == 0 {
                    first_line = lineno;
                    entry.clear();
                } else {
                    entry.push('\n');
                }
                entry.push_str(t);
                in_entry += 1;
                if in_entry < per_entry {
                    None
                } else {
                    in_entry = 0;
                    let e = std::mem::take(&mut entry);
                    let r = self.text_entry(&e);
                    entry = e;
                    Some(r)
                }
            };
            match result {
                None => {}
                Some(Ok(Some(s))) => {
                    good += 1;
                    self.sessions.push(s);
                }
                Some(Ok(None)) => good += 1, // an open event
                Some(Err(why)) => {
                    bad += 1;
                    if warned < WARNINGS_PER_FILE {
                        warned += 1;
                        warn(&format!("{name}:{first_line}: skipped: {why}"));
                    }
                }
            }
        }
        if in_entry > 0 {
            bad += 1;
            if warned < WARNINGS_PER_FILE {
                warned += 1;
                warn(&format!(
                    "{name}:{first_line}: skipped: incomplete entry at the end"
                ));
            }
        }
        if bad > warned {
            warn(&format!(
                "{name}: {} more malformed lines skipped",
                bad - warned
            ));
        }
        if bad > 0 && good == 0 {
            warn(&format!("{name}: no connection-log entries in this file"));
        }
        self.skipped += bad;
        Ok(())
    }

    /// One text entry: a session, `None` for an open event, or why not.
    fn text_entry(&mut self, line: &str) -> Result<Option<Session>, String> {
        let default = default_template();
        let e = match self.template {
            Template::Json => default.parse_line(line)?,
            // a `-C` format first, then the default (logs from before a
            // change of format)
            t => match t.parse_line(line) {
                Ok(e) => e,
                Err(why) => default.parse_line(line).map_err(|_| why)?,
            },
        };
        if e.get(Field::Status) == Some("open") {
            return Ok(None);
        }
        let time = |f: Field| e.get(f).and_then(LocalTime::parse).map(|t| t.epoch_us);
        let num = |f: Field| e.get(f).and_then(|v| v.parse::<u64>().ok());
        let start_us = time(Field::Start).ok_or("no start time")?;
        let end_us = match time(Field::End) {
            Some(t) => t,
            None => {
                let secs = num(Field::Secs).ok_or("no end time")?;
                start_us.saturating_add(
                    i64::try_from(secs)
                        .map_err(|_| "bad duration")?
                        .saturating_mul(1_000_000),
                )
            }
        };
        let client_port = match e.get(Field::ClientPort) {
            None => None,
            Some(p) => Some(p.parse::<u16>().map_err(|_| "bad client port")?),
        };
        Ok(Some(self.session(
            num(Field::Conn),
            start_us,
            end_us,
            client_port,
            &e,
        )))
    }

    fn session(
        &mut self,
        conn: Option<u64>,
        start_us: i64,
        end_us: i64,
        client_port: Option<u16>,
        e: &Entry<'_>,
    ) -> Session {
        Session {
            conn,
            start_us,
            end_us: end_us.max(start_us),
            client_ip: self.text(e.get(Field::ClientIp).unwrap_or("")),
            client_port,
            user: self.opt(e.get(Field::User)),
            host: self.opt(e.get(Field::Host)),
            display: self.opt(e.get(Field::Display)),
            pid: self.opt(e.get(Field::Pid)),
            program: self.opt(e.get(Field::Program)),
            service: self.opt(e.get(Field::Service)),
            proto: self.opt(e.get(Field::Proto)),
            status: self.text(e.get(Field::Status).unwrap_or("ok")),
        }
    }

    /// One `-C json` line.
    fn json(&mut self, line: &str) -> Result<Option<Session>, String> {
        let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
        let Value::Object(m) = v else {
            return Err("not a JSON object".into());
        };
        if m.get("event").and_then(Value::as_str) == Some("open")
            || m.get("status").and_then(Value::as_str) == Some("open")
        {
            return Ok(None);
        }
        let str_of = |k: &str| -> Result<Option<&str>, String> {
            match m.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.as_str())),
                Some(_) => Err(format!("\"{k}\" is not a string")),
            }
        };
        let num_of = |k: &str| -> Result<Option<u64>, String> {
            match m.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_u64()
                    .map(Some)
                    .ok_or(format!("\"{k}\" is not a number")),
            }
        };
        let time_of = |us: &str, text: &str| -> Result<Option<i64>, String> {
            match m.get(us) {
                Some(v) if !v.is_null() => {
                    return v
                        .as_i64()
                        .map(Some)
                        .ok_or(format!("\"{us}\" is not a number"));
                }
                _ => {}
            }
            match str_of(text)? {
                None => Ok(None),
                Some(s) => LocalTime::parse(s)
                    .map(|t| Some(t.epoch_us))
                    .ok_or(format!("\"{text}\" is not an RFC 3339 time")),
            }
        };
        let start_us = time_of("start_us", "start")?.ok_or("no start time")?;
        let end_us = match time_of("end_us", "end")? {
            Some(t) => t,
            None => {
                let secs = num_of("secs")?.ok_or("no end time")?;
                start_us.saturating_add(
                    i64::try_from(secs)
                        .unwrap_or(i64::MAX / 2)
                        .saturating_mul(1_000_000),
                )
            }
        };
        let client_port = match num_of("client_port")? {
            None => None,
            Some(p) => Some(u16::try_from(p).map_err(|_| "bad client port")?),
        };
        let conn = num_of("conn")?;
        let mut o =
            |k: &str| -> Result<Option<Text>, String> { Ok(str_of(k)?.map(|s| self.text(s))) };
        let client_ip = o("client_ip")?.unwrap_or_else(|| "".into());
        let user = o("user")?;
        let host = o("host")?;
        let display = o("display")?;
        let pid = o("pid")?;
        let program = o("program")?;
        let service = o("service")?;
        let proto = o("proto")?;
        let status = o("status")?;
        let status = status.unwrap_or_else(|| self.text("ok"));
        Ok(Some(Session {
            conn,
            start_us,
            end_us: end_us.max(start_us),
            client_ip,
            client_port,
            user,
            host,
            display,
            pid,
            program,
            service,
            proto,
            status,
        }))
    }

    /// All sessions, in time order (start, then sequence number).
    pub fn finish(mut self) -> Vec<Session> {
        self.sessions
            .sort_by_key(|s| (s.start_us, s.conn, s.end_us));
        self.sessions
    }
}

/// Open `path` (`-`: standard input) for reading, through gzip when its
/// first bytes say so.
fn open(path: &str) -> Result<Box<dyn BufRead>, InputError> {
    let cannot = |verb: &str, e: io::Error| InputError(format!("{path}: cannot {verb}: {e}"));
    let raw: Box<dyn Read> = if path == "-" {
        Box::new(io::stdin().lock())
    } else {
        let f = File::open(path).map_err(|e| cannot("open", e))?;
        if f.metadata().map(|m| m.is_dir()).unwrap_or(false) {
            return Err(InputError(format!("{path}: cannot read: Is a directory")));
        }
        Box::new(f)
    };
    let mut buf = BufReader::with_capacity(256 * 1024, raw);
    let head = buf.fill_buf().map_err(|e| cannot("read", e))?;
    Ok(if head.starts_with(&GZIP_MAGIC) {
        Box::new(BufReader::with_capacity(
            256 * 1024,
            MultiGzDecoder::new(buf),
        ))
    } else {
        Box::new(buf)
    })
}

/// A whole text file (a debug log), plain or gzip, invalid UTF-8 replaced.
pub fn read_text(path: &str) -> Result<String, InputError> {
    let mut input = open(path)?;
    let mut bytes = Vec::new();
    input
        .read_to_end(&mut bytes)
        .map_err(|e| InputError(format!("{path}: cannot read: {e}")))?;
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

fn default_template() -> &'static Template {
    use std::sync::OnceLock;
    static T: OnceLock<Template> = OnceLock::new();
    T.get_or_init(|| {
        Template::parse(crate::log::template::DEFAULT_FORMAT).unwrap_or(Template::Text(Vec::new()))
    })
}

/// Read one line into `out`, keeping at most [`MAX_LINE`] + 1 bytes of it
/// (the rest is read and dropped); returns the line's full length.
fn read_line_capped(input: &mut dyn BufRead, out: &mut Vec<u8>) -> io::Result<usize> {
    let mut total = 0;
    loop {
        let (done, used) = {
            let buf = match input.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                return Ok(total);
            }
            let (done, used) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (true, i + 1),
                None => (false, buf.len()),
            };
            let room = (MAX_LINE + 1).saturating_sub(out.len());
            out.extend_from_slice(&buf[..used.min(room)]);
            (done, used)
        };
        input.consume(used);
        total += used;
        if done {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::template::DEFAULT_FORMAT;

    fn read(t: &Template, text: &[u8]) -> (Vec<Session>, Vec<String>) {
        let mut r = Reader::new(t);
        let mut w = Vec::new();
        r.read_from("f", &mut &text[..], &mut |m| w.push(m.to_string()))
            .unwrap();
        (r.finish(), w)
    }

    const LINE: &str = "2026-11-23 21:30:05+01:00|2026-11-23 21:30:07+01:00|2|10.0.0.9|40000|147|53|ok|flexlm|frey|login01|/dev/pts/73|35174|-\n";

    #[test]
    fn default_and_json_lines() {
        let t = Template::parse(DEFAULT_FORMAT).unwrap();
        let json = r#"{"start":"2026-11-23T21:30:01.500000+01:00","end":"2026-11-23T21:30:09.000000+01:00","start_us":1795465801500000,"end_us":1795465809000000,"secs":7,"client_ip":"::1","client_port":5,"conn":3,"status":"ok","proto":"flexlm","user":"a b","host":null,"service":"MLM","event":"close"}"#;
        let open = r#"{"start_us":1,"end_us":1,"status":"open","event":"open"}"#;
        let text = format!("\u{feff}{LINE}{json}\r\n{open}\n\n");
        let (s, w) = read(&t, text.as_bytes());
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].conn, Some(3));
        assert_eq!(s[0].start_us, 1_795_465_801_500_000);
        assert_eq!(&*s[0].client_ip, "::1");
        assert_eq!(s[0].user.as_deref(), Some("a b"));
        assert_eq!(s[0].host, None);
        assert_eq!(s[0].service.as_deref(), Some("MLM"));
        assert_eq!(s[1].start_us, 1_795_465_805_000_000);
        assert_eq!(s[1].end_us, 1_795_465_807_000_000);
        assert_eq!(s[1].client_port, Some(40000));
        assert_eq!(s[1].user.as_deref(), Some("frey"));
        assert_eq!(s[1].program, None);
        assert_eq!(&*s[1].status, "ok");
        // repeated values share one copy
        let (s, _) = read(&t, format!("{LINE}{LINE}").as_bytes());
        assert!(std::sync::Arc::ptr_eq(
            s[0].user.as_ref().unwrap(),
            s[1].user.as_ref().unwrap()
        ));
    }

    #[test]
    fn custom_format_and_open_status() {
        let t = Template::parse("%c %s +%S %i %x %{user}@%{host}").unwrap();
        check_format(&t).unwrap();
        let text = "7 2026-11-23 21:30:05+01:00 +60 10.0.0.1 ok John Smith@pc 1\n\
                    8 2026-11-23 21:30:06+01:00 +0 10.0.0.1 open x@y\n";
        let (s, w) = read(&t, text.as_bytes());
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].end_us - s[0].start_us, 60_000_000);
        assert_eq!(s[0].user.as_deref(), Some("John Smith"));
        assert_eq!(s[0].host.as_deref(), Some("pc 1"));
        assert_eq!(s[0].conn, Some(7));
        assert!(check_format(&Template::parse("%i %e").unwrap()).is_err());
        // default-format lines are read too
        let (s, w) = read(&t, LINE.as_bytes());
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(s[0].user.as_deref(), Some("frey"));
        assert!(check_format(&Template::parse("%s %i").unwrap()).is_err());
    }

    #[test]
    fn two_line_entries() {
        let t = Template::parse("%s %e%n  %i %{user}").unwrap();
        let text = "2026-11-23 21:30:05+01:00 2026-11-23 21:30:07+01:00\n  10.0.0.2 u\n";
        let (s, w) = read(&t, text.as_bytes());
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(s.len(), 1);
        assert_eq!(&*s[0].client_ip, "10.0.0.2");
    }

    #[test]
    fn malformed_lines_warned_and_counted() {
        let t = Template::parse(DEFAULT_FORMAT).unwrap();
        let mut text = String::from(LINE);
        text.push_str("garbage\n{\"start_us\": \"x\"}\n{not json\n");
        for _ in 0..20 {
            text.push_str("more garbage\n");
        }
        text.push_str(&"x".repeat(MAX_LINE * 2));
        text.push('\n');
        text.push_str(LINE);
        let (s, w) = read(&t, text.as_bytes());
        assert_eq!(s.len(), 2);
        assert_eq!(w.len(), WARNINGS_PER_FILE + 1);
        assert_eq!(w[0], "f:2: skipped: does not match the format");
        assert!(
            w[1].starts_with("f:3: skipped: \"start_us\" is not a number"),
            "{w:?}"
        );
        assert!(w[2].starts_with("f:4: skipped: not JSON"), "{w:?}");
        assert_eq!(w[WARNINGS_PER_FILE], "f: 14 more malformed lines skipped");
        let (s, w) = read(&t, b"\x00\x01\xff binary\n\x7fELF");
        assert!(s.is_empty());
        assert_eq!(
            w.last().map(String::as_str),
            Some("f: no connection-log entries in this file")
        );
    }

    #[test]
    fn gzip_by_content_and_errors() {
        use std::io::Write;
        let dir = std::env::temp_dir().join(format!("ipprotreport-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("conn.log.1");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(LINE.as_bytes()).unwrap();
        let mut bytes = gz.finish().unwrap();
        // a second gzip member (concatenated rotation)
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(LINE.replace("40000", "40001").as_bytes())
            .unwrap();
        bytes.extend(gz.finish().unwrap());
        std::fs::write(&path, &bytes).unwrap();
        let t = Template::parse(DEFAULT_FORMAT).unwrap();
        let mut r = Reader::new(&t);
        r.read_path(path.to_str().unwrap(), &mut |m| panic!("{m}"))
            .unwrap();
        assert_eq!(r.sessions.len(), 2);
        let missing = dir.join("nope");
        let e = r
            .read_path(missing.to_str().unwrap(), &mut |_| {})
            .unwrap_err();
        assert_eq!(
            e.0,
            format!(
                "{}: cannot open: No such file or directory (os error 2)",
                missing.display()
            )
        );
        let e = r.read_path(dir.to_str().unwrap(), &mut |_| {}).unwrap_err();
        assert!(e.0.ends_with("cannot read: Is a directory"), "{}", e.0);
        std::fs::write(&path, &bytes[..bytes.len() / 3]).unwrap();
        let e = r
            .read_path(path.to_str().unwrap(), &mut |_| {})
            .unwrap_err();
        assert!(e.0.contains("cannot read"), "{}", e.0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
