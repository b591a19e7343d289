//! The connection log (`-c`, `-C`, `--open-format`): every escape and
//! long form, the default format field by field, JSON entries, open
//! entries, entries of denied and refused connections, one line per entry
//! (sanitised identity values, no interleaving under load).

use crate::harness::*;
use crate::vectors::{FL1, FL6, pg_startup};
use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

// ---- a tiny JSON reader for flat objects (what -C json writes) ----

#[derive(Clone, Debug, PartialEq)]
enum J {
    Null,
    Bool(bool),
    /// The number as written (integers only in these entries).
    Num(String),
    Str(String),
}

struct P<'a> {
    s: &'a [u8],
    i: usize,
}

impl P<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> Result<(), String> {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected {:?} at {}", c as char, self.i))
        }
    }
    fn string(&mut self) -> Result<String, String> {
        self.eat(b'"')?;
        let mut out = String::new();
        loop {
            let Some(&c) = self.s.get(self.i) else {
                return Err("unterminated string".into());
            };
            self.i += 1;
            match c {
                b'"' => return Ok(out),
                b'\\' => {
                    let e = *self.s.get(self.i).ok_or("bad escape")?;
                    self.i += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let h = std::str::from_utf8(
                                self.s.get(self.i..self.i + 4).ok_or("short \\u")?,
                            )
                            .map_err(|e| e.to_string())?;
                            let v = u32::from_str_radix(h, 16).map_err(|e| e.to_string())?;
                            self.i += 4;
                            out.push(char::from_u32(v).ok_or("surrogate")?);
                        }
                        _ => return Err(format!("bad escape \\{}", e as char)),
                    }
                }
                c if c < 0x20 => return Err(format!("raw control byte {c:#x} in a string")),
                _ => {
                    // copy one UTF-8 sequence
                    let start = self.i - 1;
                    let mut end = self.i;
                    while end < self.s.len() && (self.s[end] & 0xc0) == 0x80 {
                        end += 1;
                    }
                    out.push_str(
                        std::str::from_utf8(&self.s[start..end]).map_err(|e| e.to_string())?,
                    );
                    self.i = end;
                }
            }
        }
    }
    fn value(&mut self) -> Result<J, String> {
        self.ws();
        let rest = &self.s[self.i..];
        if rest.starts_with(b"null") {
            self.i += 4;
            return Ok(J::Null);
        }
        if rest.starts_with(b"true") {
            self.i += 4;
            return Ok(J::Bool(true));
        }
        if rest.starts_with(b"false") {
            self.i += 5;
            return Ok(J::Bool(false));
        }
        match rest.first() {
            Some(b'"') => Ok(J::Str(self.string()?)),
            Some(c) if *c == b'-' || c.is_ascii_digit() => {
                let start = self.i;
                self.i += 1;
                while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
                    self.i += 1;
                }
                Ok(J::Num(
                    String::from_utf8(self.s[start..self.i].to_vec()).unwrap(),
                ))
            }
            _ => Err(format!("unexpected value at {}", self.i)),
        }
    }
}

/// Parse one line holding one flat JSON object; keys in order of
/// appearance (duplicates are an error).
fn json_object(line: &str) -> Result<Vec<(String, J)>, String> {
    let mut p = P {
        s: line.as_bytes(),
        i: 0,
    };
    p.eat(b'{')?;
    let mut v: Vec<(String, J)> = Vec::new();
    p.ws();
    if p.s.get(p.i) == Some(&b'}') {
        p.i += 1;
    } else {
        loop {
            let k = p.string()?;
            p.eat(b':')?;
            let val = p.value()?;
            if v.iter().any(|(n, _)| *n == k) {
                return Err(format!("duplicate key {k}"));
            }
            v.push((k, val));
            p.ws();
            match p.s.get(p.i) {
                Some(b',') => p.i += 1,
                Some(b'}') => {
                    p.i += 1;
                    break;
                }
                _ => return Err(format!("expected , or }} at {}", p.i)),
            }
        }
    }
    p.ws();
    if p.i != p.s.len() {
        return Err(format!("trailing bytes at {}", p.i));
    }
    Ok(v)
}

fn json_map(line: &str) -> BTreeMap<String, J> {
    json_object(line)
        .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line}"))
        .into_iter()
        .collect()
}

const JSON_KEYS: &[&str] = &[
    "start",
    "end",
    "start_us",
    "end_us",
    "secs",
    "client_ip",
    "client_port",
    "local_ip",
    "local_port",
    "dest_ip",
    "dest_port",
    "bytes_in",
    "bytes_out",
    "file",
    "conn",
    "status",
    "proto",
    "user",
    "host",
    "display",
    "pid",
    "program",
    "service",
    "vendor_host",
    "vendor_port",
    "sha256",
    "tls",
    "event",
];

/// Keys that are JSON numbers.
const JSON_NUMBERS: &[&str] = &[
    "start_us",
    "end_us",
    "secs",
    "client_port",
    "local_port",
    "dest_port",
    "bytes_in",
    "bytes_out",
    "conn",
];

#[test]
fn json_reader_self_check() {
    let v = json_object(r#"{"a":1,"b":"x\n\u0001\"","c":null}"#).unwrap();
    assert_eq!(v[1], ("b".into(), J::Str("x\n\u{1}\"".into())));
    assert!(json_object(r#"{"a":1,"a":2}"#).is_err());
    assert!(json_object(r#"{"a":"raw"#).is_err());
    assert!(json_object("{\"a\":\"\n\"}").is_err());
    assert!(json_object(r#"{"a":1}x"#).is_err());
}

// ---- helpers ----

/// `text` is a local time in the test time zone between `lo` and `hi`
/// (epoch seconds); returns its epoch seconds.
fn check_time(text: &str, lo: i64, hi: i64) -> i64 {
    let (secs, off) =
        parse_local_text(text).unwrap_or_else(|| panic!("not a local time: {text:?}"));
    assert_eq!(off, TZ_OFFSET, "offset of {text}");
    assert!(lo <= secs && secs <= hi, "{text} not in [{lo}, {hi}]");
    assert_eq!(local_text(secs, TZ_OFFSET), text);
    secs
}

/// Fields 4 to 14 of a default-format entry of a connection from
/// 127.0.0.1 that identified nothing: client ip and port, bytes, status,
/// and the six identity fields.
fn default_tail<'a>(port: &'a str, b_in: &'a str, b_out: &'a str, status: &'a str) -> Vec<&'a str> {
    let mut v = vec!["127.0.0.1", port, b_in, b_out, status];
    v.extend(["-"; 6]);
    v
}

/// The StartupMessage of alice (database sales, application psql).
fn alice_hello() -> Vec<u8> {
    pg_startup(&[
        ("user", b"alice"),
        ("database", b"sales"),
        ("application_name", b"psql"),
    ])
}

/// A daemon in [`TZ_ENV`] recording (`-f DIR/prot`) and logging `fmt`
/// entries, in front of a server that answers [`alice_hello`] with
/// `answer`: the directory, the hello, the server, the daemon, the log.
fn alice_recorded(
    name: &str,
    answer: &[u8],
    fmt: &str,
) -> (PathBuf, Vec<u8>, Backend, Daemon, PathBuf) {
    let dir = tmpdir(name);
    let prefix = dir.join("prot");
    let hello = alice_hello();
    let b = Backend::answering(hello.len(), answer.to_vec());
    let (d, log) = Daemon::logged(&dir, &b.dest(), fmt, &["-f", p(&prefix)], TZ_ENV);
    (dir, hello, b, d, log)
}

const SHORT: &str = "%%|%s|%e|%S|%i|%p|%a|%A|%o|%O|%b|%B|%f|%c|%x";
const LONG: &str = "%{start}|%{end}|%{secs}|%{client_ip}|%{client_port}|%{local_ip}|%{local_port}|\
%{dest_ip}|%{dest_port}|%{bytes_in}|%{bytes_out}|%{file}|%{conn}|%{status}|%{proto}|%{user}|%{host}|\
%{display}|%{pid}|%{program}|%{service}|%{vendor_host}|%{vendor_port}";

#[test]
fn every_escape_and_long_form() {
    let fmt = format!("{SHORT}%n{LONG}");
    let (dir, hello, b, d, log) = alice_recorded("connlog-escapes", b"worlds!", &fmt);
    let t0 = now_secs();
    let mut s = d.connect();
    let client_port = s.local_addr().unwrap().port().to_string();
    assert_eq!(round_trip(&mut s, &hello, 7), b"worlds!");
    // held open long enough for %S to be at least 1 (a span under test)
    thread::sleep(Duration::from_millis(1200));
    finish(&mut s);
    let l = wait_lines(&log, 2);
    let t1 = now_secs();
    assert_eq!(l.len(), 2, "one entry, two lines (one %n): {l:?}");
    let raw = std::fs::read_to_string(&log).unwrap();
    assert!(raw.ends_with('\n') && !raw.ends_with("\n\n"), "{raw:?}");
    let a: Vec<&str> = l[0].split('|').collect();
    let z: Vec<&str> = l[1].split('|').collect();
    assert_eq!(a.len(), 15, "{l:?}");
    assert_eq!(z.len(), 23, "{l:?}");
    assert_eq!(a[0], "%");
    let start = check_time(a[1], t0, t1);
    let end = check_time(a[2], start, t1);
    let secs: i64 = a[3].parse().unwrap();
    assert!(
        secs >= 1 && secs <= end - start && end - start <= secs + 1,
        "%S {secs}"
    );
    assert_eq!(a[4], "127.0.0.1");
    assert_eq!(a[5], client_port);
    assert_eq!(a[6], "127.0.0.1");
    assert_eq!(a[7], d.port().to_string());
    assert_eq!(a[8], "127.0.0.1");
    assert_eq!(a[9], b.addr.port().to_string());
    assert_eq!(a[10], hello.len().to_string());
    assert_eq!(a[11], "7");
    let file = only_data_log(&dir);
    assert_eq!(a[12], file.to_str().unwrap());
    assert_eq!(a[13], "1");
    assert_eq!(a[14], "ok");
    // the long forms say the same
    assert_eq!(&z[..14], &a[1..], "long forms differ from the escapes");
    assert_eq!(
        &z[14..],
        &[
            "postgres", "alice", "-", "-", "-", "psql", "sales", "-", "-"
        ]
    );
}

#[test]
fn percent_and_newline() {
    for (fmt, want) in [
        ("x%%y%nz", "x%y\nz\n"),
        ("end%n", "end\n"),
        ("%c", "1\n"),
        ("100%%", "100%\n"),
        ("%n", "\n"),
    ] {
        let b = Backend::echo();
        let (d, log) = Daemon::logged(&tmpdir("connlog-pct"), &b.dest(), fmt, &[], &[]);
        d.echo(b"");
        assert!(
            wait_until(DEADLINE, || std::fs::read_to_string(&log)
                .is_ok_and(|t| t.ends_with('\n'))),
            "{fmt}: no entry"
        );
        assert!(
            wait_until(DEADLINE, || std::fs::read_to_string(&log).unwrap() == want),
            "{fmt}: {:?}",
            std::fs::read_to_string(&log)
        );
    }
}

#[test]
fn default_format_field_by_field() {
    let dir = tmpdir("connlog-default");
    let log = dir.join("conn.log");
    let b = Backend::echo();
    let d = Daemon::start_with(&["-P", &b.dest(), "-c", p(&log)], None, TZ_ENV);
    let t0 = now_secs();
    let mut s = d.connect();
    let port = s.local_addr().unwrap().port().to_string();
    assert_eq!(exchange(&mut s, b"hello"), b"hello");
    let l = wait_lines(&log, 1);
    let t1 = now_secs();
    assert_eq!(l.len(), 1);
    let f: Vec<&str> = l[0].split('|').collect();
    assert_eq!(f.len(), 14, "{l:?}");
    let start = check_time(f[0], t0, t1);
    let end = check_time(f[1], start, t1);
    let secs: i64 = f[2].parse().unwrap();
    assert!(secs <= end - start && end - start <= secs + 1);
    assert_eq!(f[3..], default_tail(&port, "5", "5", "ok"));
}

#[test]
fn json_entries() {
    let (dir, hello, b, d, log) = alice_recorded("connlog-json", b"R", "json");
    let t0 = now_us();
    let mut s = d.connect();
    let port = s.local_addr().unwrap().port();
    assert_eq!(round_trip(&mut s, &hello, 1), b"R");
    finish(&mut s);
    let l = wait_lines(&log, 1);
    let t1 = now_us();
    assert_eq!(l.len(), 1);
    let keys: Vec<String> = json_object(&l[0])
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let mut want: Vec<&str> = JSON_KEYS.to_vec();
    let mut have: Vec<&str> = keys.iter().map(String::as_str).collect();
    want.sort_unstable();
    have.sort_unstable();
    assert_eq!(have, want, "JSON keys");
    let m = json_map(&l[0]);
    for k in JSON_KEYS {
        let v = &m[*k];
        if JSON_NUMBERS.contains(k) {
            assert!(matches!(v, J::Num(_)), "{k} is not a number: {v:?}");
        } else {
            assert!(
                matches!(v, J::Str(_) | J::Null),
                "{k} is not a string or null: {v:?}"
            );
        }
    }
    let num = |k: &str| match &m[k] {
        J::Num(n) => n.parse::<i64>().unwrap(),
        v => panic!("{k}: {v:?}"),
    };
    let st = |k: &str| match &m[k] {
        J::Str(s) => s.clone(),
        v => panic!("{k}: {v:?}"),
    };
    let (su, eu) = (num("start_us"), num("end_us"));
    assert!(
        t0 <= su && su <= eu && eu <= t1,
        "times {su} {eu} not in [{t0}, {t1}]"
    );
    assert_eq!(st("start"), rfc3339_us(su, TZ_OFFSET));
    assert_eq!(st("end"), rfc3339_us(eu, TZ_OFFSET));
    assert_eq!(num("secs"), (eu - su) / 1_000_000);
    assert_eq!(st("client_ip"), "127.0.0.1");
    assert_eq!(num("client_port"), i64::from(port));
    assert_eq!(st("local_ip"), "127.0.0.1");
    assert_eq!(num("local_port"), i64::from(d.port()));
    assert_eq!(st("dest_ip"), "127.0.0.1");
    assert_eq!(num("dest_port"), i64::from(b.addr.port()));
    assert_eq!(num("bytes_in"), hello.len() as i64);
    assert_eq!(num("bytes_out"), 1);
    assert_eq!(st("file"), only_data_log(&dir).to_str().unwrap());
    assert_eq!(num("conn"), 1);
    assert_eq!(st("status"), "ok");
    assert_eq!(st("proto"), "postgres");
    assert_eq!(st("user"), "alice");
    assert_eq!(st("service"), "sales");
    assert_eq!(st("program"), "psql");
    for k in ["host", "display", "pid", "vendor_host", "vendor_port"] {
        assert_eq!(m[k], J::Null, "{k}");
    }
    assert_eq!(st("event"), "close");
}

#[test]
fn json_entry_of_refused_connection() {
    let refused = closed_port();
    let dir = tmpdir("connlog-json-refused");
    let (d, log) = Daemon::logged(&dir, &refused.dest(), "json", &[], &[]);
    read_all(&mut d.connect());
    let l = wait_lines(&log, 1);
    let m = json_map(&l[0]);
    assert_eq!(m["status"], J::Str("refused".into()));
    for k in [
        "dest_ip",
        "dest_port",
        "file",
        "proto",
        "user",
        "host",
        "program",
        "service",
    ] {
        assert_eq!(m[k], J::Null, "{k}");
    }
    assert_eq!(m["bytes_in"], J::Num("0".into()));
    assert_eq!(m["bytes_out"], J::Num("0".into()));
    assert_eq!(m["conn"], J::Num("1".into()));
    assert_eq!(m["event"], J::Str("close".into()));
}

/// A daemon in front of an echo backend writing `%x %c %b %B` close
/// entries and `open` open entries to `conn.log` in a fresh directory.
fn open_logged(name: &str, open: &str) -> (Backend, Daemon, PathBuf) {
    let b = Backend::echo();
    let open = ["--open-format", open];
    let (d, log) = Daemon::logged(&tmpdir(name), &b.dest(), "%x %c %b %B", &open, &[]);
    (b, d, log)
}

#[test]
fn open_entry_precedes_close_entry() {
    let (_b, d, log) = open_logged("connlog-open", "%x %c %b %{proto}");
    let mut s = d.connect();
    echo_round(&mut s, b"hi");
    // the open entry is written while the connection is still open
    let l = wait_lines(&log, 1);
    assert_eq!(l, vec!["open 1 2 -".to_string()]);
    echo_round(&mut s, b"there");
    finish(&mut s);
    let l = wait_lines(&log, 2);
    assert_eq!(l, vec!["open 1 2 -".to_string(), "ok 1 7 7".to_string()]);
}

#[test]
fn open_entry_of_silent_client() {
    let (b, d, log) = open_logged("connlog-open-silent", "json");
    let mut s = d.connect();
    // nothing sent: the open entry comes about 1 s after the connection
    let l = wait_lines(&log, 1);
    assert_eq!(l.len(), 1);
    let m = json_map(&l[0]);
    assert_eq!(m["event"], J::Str("open".into()));
    assert_eq!(m["status"], J::Str("open".into()));
    assert_eq!(m["bytes_in"], J::Num("0".into()));
    assert_eq!(m["conn"], J::Num("1".into()));
    assert_eq!(m["dest_port"], J::Num(b.addr.port().to_string()));
    finish(&mut s);
    let l = wait_lines(&log, 2);
    assert_eq!(l[1], "ok 1 0 0");
}

#[test]
fn entries_for_denied_and_refused() {
    let dir = tmpdir("connlog-denied");
    let log = dir.join("conn.log");
    let b = Backend::echo();
    let d = Daemon::start_with(
        &["-P", &b.dest(), "-c", p(&log), "-r", "192.0.2.0/24"],
        None,
        TZ_ENV,
    );
    let t0 = now_secs();
    for _ in 0..3 {
        read_all(&mut d.connect());
    }
    let l = wait_lines(&log, 3);
    let t1 = now_secs();
    for line in &l {
        let f: Vec<&str> = line.split('|').collect();
        assert_eq!(f.len(), 14, "{line}");
        check_time(f[0], t0, t1);
        check_time(f[1], t0, t1);
        assert_eq!(f[3..], default_tail(f[4], "0", "0", "denied"));
    }
    drop(d);
    // denied connections take sequence numbers too
    let dir = tmpdir("connlog-denied-seq");
    let rule = ["-r", "192.0.2.1"];
    let (d, log) = Daemon::logged(&dir, &b.dest(), "%c %x %o %O %f", &rule, &[]);
    for _ in 0..3 {
        read_all(&mut d.connect());
    }
    let mut l = wait_lines(&log, 3);
    l.sort();
    assert_eq!(
        l,
        vec!["1 denied - - -", "2 denied - - -", "3 denied - - -"]
    );
    drop(d);
    // refused
    let dir = tmpdir("connlog-refused");
    let log = dir.join("conn.log");
    let refused = closed_port();
    let d = Daemon::start(&["-P", &refused.dest(), "-c", p(&log)]);
    let mut s = d.connect();
    let port = s.local_addr().unwrap().port().to_string();
    read_all(&mut s);
    let l = wait_lines(&log, 1);
    let f: Vec<&str> = l[0].split('|').collect();
    assert_eq!(f[3..], default_tail(&port, "0", "0", "refused"));
}

#[test]
fn network_values_stay_on_one_line() {
    let dir = tmpdir("connlog-sanitise");
    let hello = pg_startup(&[
        ("user", b"eve|x\ny\x01z"),
        ("database", b"d\x7fb\r"),
        ("application_name", b"p\tq\"\\"),
    ]);
    let b = Backend::answering(hello.len(), b"N".to_vec());
    let fmt = "%{user}|%{service}|%{program}|%x";
    let (d, log) = Daemon::logged(&dir, &b.dest(), fmt, &["--open-format", "json"], &[]);
    let mut s = d.connect();
    assert_eq!(round_trip(&mut s, &hello, 1), b"N");
    finish(&mut s);
    let l = wait_lines(&log, 2);
    assert_eq!(l.len(), 2, "{l:?}");
    // JSON: escaped, not replaced
    let m = json_map(&l[0]);
    assert_eq!(m["event"], J::Str("open".into()));
    assert_eq!(m["user"], J::Str("eve|x\ny\u{1}z".into()));
    assert_eq!(m["service"], J::Str("d\u{7f}b\r".into()));
    assert_eq!(m["program"], J::Str("p\tq\"\\".into()));
    // text: control characters and | become ?
    assert_eq!(l[1], "eve?x?y?z|d?b?|p?q\"\\|ok");
}

#[test]
fn entries_never_interleave() {
    const N: usize = 100;
    let dir = tmpdir("connlog-interleave");
    let b = Backend::echo();
    let pad = "x".repeat(9000);
    let fmt = format!("<{pad}%c>");
    let (d, log) = Daemon::logged(&dir, &b.dest(), &fmt, &[], &[]);
    let mut socks: Vec<TcpStream> = (0..N).map(|_| d.connect()).collect();
    for s in &mut socks {
        s.shutdown(std::net::Shutdown::Write).unwrap();
    }
    for s in &mut socks {
        read_all(s);
    }
    let l = wait_lines(&log, N);
    assert_eq!(l.len(), N);
    let mut conns = Vec::new();
    for line in &l {
        let n = line
            .strip_prefix(&format!("<{pad}"))
            .and_then(|r| r.strip_suffix('>'))
            .unwrap_or_else(|| panic!("mangled entry of {} bytes", line.len()));
        conns.push(n.parse::<usize>().unwrap());
    }
    conns.sort_unstable();
    assert_eq!(conns, (1..=N).collect::<Vec<_>>());
}

/// Entries are appended by path each time: after a rename (logrotate) the
/// next entry, also of a connection that was open across the rename,
/// goes to a new file.
#[test]
fn log_rotation_by_rename() {
    let dir = tmpdir("connlog-rotate");
    let old = dir.join("conn.log.1");
    let b = Backend::echo();
    let (d, log) = Daemon::logged(&dir, &b.dest(), "%c %x", &[], &[]);
    d.echo(b"");
    assert_eq!(wait_lines(&log, 1), vec!["1 ok"]);
    let mut s2 = d.connect();
    echo_round(&mut s2, b"x");
    std::fs::rename(&log, &old).unwrap();
    finish(&mut s2);
    d.echo(b"");
    let mut l = wait_lines(&log, 2);
    l.sort();
    assert_eq!(l, vec!["2 ok", "3 ok"]);
    assert_eq!(lines(&old), vec!["1 ok"]);
}

/// Identity fields in text and JSON entries, with the FLEXlm vendor
/// daemon address: `vendor_port` is a port, so a JSON number (SPEC: "Ports,
/// byte counts, secs, conn and the _us times are JSON numbers"); `pid`
/// comes from the client, so a string.
#[test]
fn flexlm_identity_in_text_and_json() {
    let hello = hex(FL1);
    let reply = hex(FL6);
    for fmt in [
        "json",
        "%{proto}|%{user}|%{host}|%{display}|%{pid}|%{service}|%{vendor_host}|%{vendor_port}",
    ] {
        let b = Backend::answering(hello.len(), reply.clone());
        let (d, log) = Daemon::logged(&tmpdir("connlog-flexlm"), &b.dest(), fmt, &[], &[]);
        let mut s = d.connect();
        assert_eq!(round_trip(&mut s, &hello, reply.len()), reply);
        finish(&mut s);
        let l = wait_lines(&log, 1);
        if fmt != "json" {
            assert_eq!(
                l[0],
                "flexlm|frey|login01|/dev/pts/73|35174|MLM|mathworks.lm.udel.edu|40000"
            );
            continue;
        }
        let m = json_map(&l[0]);
        assert_eq!(m["proto"], J::Str("flexlm".into()));
        assert_eq!(m["user"], J::Str("frey".into()));
        assert_eq!(m["pid"], J::Str("35174".into()));
        assert_eq!(m["vendor_host"], J::Str("mathworks.lm.udel.edu".into()));
        assert_eq!(
            m["vendor_port"],
            J::Num("40000".into()),
            "vendor_port is a port"
        );
    }
}
