//! `ipprotcat` on recordings made by the real `ipprotd`: a client talks to
//! a backend through the daemon (`-M -L`, `-M`, `-t`, no markers, `-z`,
//! `-j`), the connection-log entry (`-C '%f ...'`) says when the data log
//! is complete and where it is, and the real `ipprotcat` reads it back.
//! Every output mode is compared with the bytes that were actually sent:
//! header byte counts and payloads, `--raw` byte for byte, `--json`,
//! `--summary`, a truncated `.gz`, and `--pcap` parsed back by the reader
//! below (and by `tshark` where it is installed).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::sync::mpsc;
use std::thread;

use crate::harness::*;
use crate::pcap::{self, ACK, FIN, SYN};
use base64::Engine;
use std::net::IpAddr;

/// Time zone of the daemon and of `ipprotcat`: UTC as a POSIX rule (no
/// tzdata needed), so that shown times can be checked against the clock.
const TZ: &str = "UTC0";

/// The client's request, sent in two writes: two client blocks.
const REQ1: &[u8] = b"LOGIN scott\\tiger\r\n";
const REQ2: &[u8] = b"SELECT 1;\x00\x01\xff\n";

/// One recorded connection.
struct Recording {
    /// The data log, from the entry's `%f`.
    file: PathBuf,
    /// The request parts as sent, in order.
    parts: Vec<Vec<u8>>,
    /// The backend's answer as sent.
    resp: Vec<u8>,
    /// Wall clock before the connection and after its entry, epoch µs.
    t0: i64,
    t1: i64,
}

impl Recording {
    fn req(&self) -> Vec<u8> {
        self.parts.concat()
    }

    /// Everything in file order: the request (the backend answers only
    /// after all of it), then the answer.
    fn both(&self) -> Vec<u8> {
        [self.req(), self.resp.clone()].concat()
    }

    fn path(&self) -> &str {
        self.file.to_str().expect("UTF-8 path")
    }
}

impl Drop for Recording {
    /// Remove the test's directory, unless the test failed (keep it to
    /// look at).
    fn drop(&mut self) {
        if !thread::panicking()
            && let Some(dir) = self.file.parent()
        {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Run the real ipprotd with `flags` (plus `-f`, `-c`, `-C`) in front of a
/// backend that reads `parts` one by one (telling the client after each,
/// so that each part is relayed as its own block) and then answers
/// `resp` and closes. Returns once the entry is written.
fn record(name: &str, flags: &[&str], parts: &[&[u8]], resp: Vec<u8>) -> Recording {
    let dir = tmpdir(name);
    let prefix = dir.join("prot");
    let log = dir.join("conn.log");
    let (got_tx, got_rx) = mpsc::channel::<usize>();
    let got_tx = Mutex::new(got_tx);
    let lens: Vec<usize> = parts.iter().map(|p| p.len()).collect();
    let answer = resp.clone();
    let backend = Backend::start(move |mut s| {
        for (i, &n) in lens.iter().enumerate() {
            let mut b = vec![0u8; n];
            if s.read_exact(&mut b).is_err() {
                return;
            }
            let _ = got_tx.lock().unwrap().send(i);
        }
        let _ = s.write_all(&answer);
        // dropping `s` closes: the end of the answer
    });
    let dest = backend.dest();
    let mut args: Vec<&str> = vec!["-P", &dest, "-f", prefix.to_str().unwrap()];
    args.extend_from_slice(flags);
    let log_s = log.to_str().unwrap().to_string();
    args.extend(["-c", &log_s, "-C", "%f %x %b %B"]);
    let daemon = Daemon::start_with(&args, None, &[("TZ", TZ)]);

    let t0 = now_us();
    let mut c = daemon.connect();
    for (i, p) in parts.iter().enumerate() {
        c.write_all(p).unwrap();
        let got = got_rx.recv_timeout(DEADLINE).expect("backend got the part");
        assert_eq!(got, i);
    }
    let answer = read_all(&mut c);
    assert!(answer == resp, "the client got the backend's answer");
    drop(c);
    let entry = wait_lines(&log, 1).remove(0);
    let t1 = now_us();
    let f: Vec<&str> = entry.split(' ').collect();
    assert_eq!(f.len(), 4, "entry {entry:?}");
    let req_len: usize = parts.iter().map(|p| p.len()).sum();
    assert_eq!(
        f[1..],
        ["ok", &req_len.to_string(), &resp.len().to_string()],
        "entry {entry:?}; ipprotd: {}",
        daemon.stderr()
    );
    let file = PathBuf::from(f[0]);
    assert!(file.is_file(), "data log {entry:?}");
    Recording {
        file,
        parts: parts.iter().map(|p| p.to_vec()).collect(),
        resp,
        t0,
        t1,
    }
}

/// The usual conversation: the two-part request, `resp` as the answer.
fn record_std(name: &str, flags: &[&str], resp: Vec<u8>) -> Recording {
    record(name, flags, &[REQ1, REQ2], resp)
}

/// Run the real ipprotcat (TZ fixed) under a deadline.
fn ipprotcat(args: &[&str]) -> Output {
    ipprotcat_in(args, Path::new("."), TZ, b"")
}

/// ipprotcat that must succeed silently; its standard output.
fn cat_ok(args: &[&str]) -> Vec<u8> {
    let o = ipprotcat(args);
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "ipprotcat {args:?}: {:?}, stderr {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

/// One item of the default output.
#[derive(Debug, PartialEq)]
enum Shown {
    /// A `-t` stamp line: its time text.
    Stamp(String),
    /// A block: time text (`-` if undated), arrow, payload (unescaped).
    Block(String, String, Vec<u8>),
}

/// Parse the default output back: a header `TIME ARROW N`, then N payload
/// bytes escaped (`\xNN`, `\\`), then a newline unless the payload ended
/// in one.
fn parse_text(out: &[u8]) -> Vec<Shown> {
    let mut v = Vec::new();
    let mut i = 0;
    while i < out.len() {
        let eol = out[i..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|p| i + p)
            .unwrap_or_else(|| panic!("header without newline at {i}"));
        let line = std::str::from_utf8(&out[i..eol]).expect("UTF-8 header");
        i = eol + 1;
        if let Some(t) = line.strip_suffix(" -- stamp") {
            v.push(Shown::Stamp(t.to_string()));
            continue;
        }
        let (rest, n) = line.rsplit_once(' ').expect("header");
        let (time, arrow) = rest.rsplit_once(' ').expect("header");
        let n: usize = n
            .parse()
            .unwrap_or_else(|_| panic!("byte count in {line:?}"));
        let mut payload = Vec::with_capacity(n);
        while payload.len() < n {
            assert!(i < out.len(), "payload of {line:?} cut short");
            match out[i] {
                b'\\' if out.get(i + 1) == Some(&b'\\') => {
                    payload.push(b'\\');
                    i += 2;
                }
                b'\\' => {
                    assert_eq!(out.get(i + 1), Some(&b'x'), "escape at {i}");
                    let hex = std::str::from_utf8(&out[i + 2..i + 4]).unwrap();
                    assert_eq!(hex, hex.to_lowercase(), "lower-case hex");
                    let b = u8::from_str_radix(hex, 16).expect("hex escape");
                    assert!(
                        !(0x20..=0x7e).contains(&b) && !b"\n\r\t".contains(&b),
                        "{b:#x} needs no escape"
                    );
                    payload.push(b);
                    i += 4;
                }
                b => {
                    assert!(
                        (0x20..=0x7e).contains(&b) || b"\n\r\t".contains(&b),
                        "unescaped byte {b:#x} at {i}"
                    );
                    payload.push(b);
                    i += 1;
                }
            }
        }
        if payload.last().is_some_and(|&b| b != b'\n') {
            assert_eq!(out.get(i), Some(&b'\n'), "newline after a payload");
            i += 1;
        }
        v.push(Shown::Block(time.to_string(), arrow.to_string(), payload));
    }
    v
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `yyyy-mm-dd HH:MM:SS[.uuuuuu]+hh:mm` to epoch microseconds, checking
/// the layout exactly.
fn parse_time(s: &str, with_us: bool) -> i64 {
    let b = s.as_bytes();
    let frac = if with_us { 7 } else { 0 };
    assert_eq!(b.len(), 25 + frac, "time {s:?}");
    let num = |from: usize, to: usize| -> i64 {
        let t = &s[from..to];
        assert!(t.bytes().all(|c| c.is_ascii_digit()), "time {s:?}");
        t.parse().unwrap()
    };
    for (at, c) in [(4, b'-'), (7, b'-'), (10, b' '), (13, b':'), (16, b':')] {
        assert_eq!(b[at], c, "time {s:?}");
    }
    let us = if with_us {
        assert_eq!(b[19], b'.', "time {s:?}");
        num(20, 26)
    } else {
        0
    };
    let o = 19 + frac;
    assert!(b[o] == b'+' || b[o] == b'-', "time {s:?}");
    assert_eq!(b[o + 3], b':', "time {s:?}");
    let sign = if b[o] == b'-' { -1 } else { 1 };
    let offset = sign * (num(o + 1, o + 3) * 3600 + num(o + 4, o + 6) * 60);
    let days = days_from_civil(num(0, 4), num(5, 7), num(8, 10));
    let secs = days * 86_400 + num(11, 13) * 3600 + num(14, 16) * 60 + num(17, 19) - offset;
    secs * 1_000_000 + us
}

/// The blocks of one direction (`>>` or `<<`) of parsed output.
fn blocks<'a>(shown: &'a [Shown], arrow: &str) -> Vec<&'a [u8]> {
    shown
        .iter()
        .filter_map(|s| match s {
            Shown::Block(_, a, p) if a == arrow => Some(p.as_slice()),
            _ => None,
        })
        .collect()
}

#[test]
fn markers_both_directions_default_output() {
    let resp = [b"+OK \\ \x1b[0m\r\n".to_vec(), random_bytes(3000, 7)].concat();
    let r = record_std("text-ml", &["-M", "-L"], resp);
    let shown = parse_text(&cat_ok(&[r.path()]));
    // every item is a dated block; times in order, inside the test's span
    let mut last = r.t0 - 1;
    for s in &shown {
        let Shown::Block(time, arrow, _) = s else {
            panic!("no stamps without -t: {s:?}");
        };
        assert!(time.ends_with("+00:00"), "local time (TZ={TZ}): {time}");
        let us = parse_time(time, true);
        assert!(us >= last && us <= r.t1, "time {time} out of order or span");
        last = us;
        assert!(arrow == ">>" || arrow == "<<", "arrow {arrow}");
    }
    // the two client writes are two blocks, exactly as sent
    let inb = blocks(&shown, ">>");
    assert_eq!(inb, [REQ1, REQ2]);
    // the answer: byte counts sum to what was sent, payloads equal it
    let outb = blocks(&shown, "<<");
    assert!(!outb.is_empty());
    assert_eq!(outb.iter().map(|p| p.len()).sum::<usize>(), r.resp.len());
    assert!(outb.concat() == r.resp, "to-client payloads");
    // the answer follows the request
    let first_out = shown
        .iter()
        .position(|s| matches!(s, Shown::Block(_, a, _) if a == "<<"))
        .unwrap();
    assert_eq!(first_out, 2);
}

#[test]
fn markers_both_directions_raw_is_exact() {
    let r = record_std("raw-ml", &["-M", "-L"], random_bytes(50_000, 11));
    let out = cat_ok(&["--raw", "--direction", "out", r.path()]);
    assert!(out == r.resp, "--raw --direction out: the backend's bytes");
    let inn = cat_ok(&["--raw", "--direction", "in", r.path()]);
    assert_eq!(inn, r.req(), "--raw --direction in: the client's bytes");
    let all = cat_ok(&["--raw", r.path()]);
    assert!(all == r.both(), "--raw: both, in file order");
}

#[test]
fn markers_to_client_only() {
    let r = record_std("text-m", &["-M"], random_bytes(2000, 3));
    let shown = parse_text(&cat_ok(&[r.path()]));
    // the client's blocks are there (timing), but marker-only: `>> 0`
    let inb = blocks(&shown, ">>");
    assert_eq!(inb.len(), 2, "{shown:?}");
    assert!(inb.iter().all(|p| p.is_empty()));
    let outb = blocks(&shown, "<<");
    assert!(outb.concat() == r.resp, "to-client payloads");
    assert_eq!(shown.len(), inb.len() + outb.len());
    let out = cat_ok(&["--raw", r.path()]);
    assert!(out == r.resp, "--raw: only the recorded direction");
    assert!(cat_ok(&["--raw", "--direction", "in", r.path()]).is_empty());
}

#[test]
fn stamps_without_markers() {
    let r = record_std("text-t", &["-t", "1", "-L"], b"+OK ready\n".to_vec());
    let shown = parse_text(&cat_ok(&[r.path()]));
    assert_eq!(shown.len(), 2, "one stamp, one undated block: {shown:?}");
    let Shown::Stamp(t) = &shown[0] else {
        panic!("the stamp comes first: {shown:?}");
    };
    assert!(t.ends_with("+00:00"), "local time (TZ={TZ}): {t}");
    let us = parse_time(t, false);
    assert!(
        us >= r.t0 - r.t0 % 1_000_000 && us <= r.t1,
        "stamp {t} in the test's span"
    );
    assert_eq!(
        shown[1],
        Shown::Block("-".into(), "--".into(), r.both()),
        "undated data"
    );
}

#[test]
fn no_markers_is_one_undated_block() {
    let resp = [b"\\ok\t\r\n".to_vec(), random_bytes(1000, 5)].concat();
    let r = record_std("text-none", &["-L"], resp);
    // without -M and -t the file is exactly the recorded bytes
    assert!(std::fs::read(&r.file).unwrap() == r.both());
    let out = cat_ok(&[r.path()]);
    let shown = parse_text(&out);
    assert_eq!(shown, [Shown::Block("-".into(), "--".into(), r.both())]);
    assert!(out.starts_with(format!("- -- {}\n", r.both().len()).as_bytes()));
    assert!(cat_ok(&["--raw", r.path()]) == r.both());
}

/// A recording with `extra` flags reads the same as plain.
fn compressed_reads_like_plain(name: &str, flag: &str, ext: &str, magic: &[u8]) {
    let r = record_std(name, &["-M", "-L", flag], random_bytes(100_000, 13));
    assert!(r.path().ends_with(ext), "name {}", r.path());
    let head = std::fs::read(&r.file).unwrap();
    assert!(head.starts_with(magic), "{flag}: compressed file");
    assert!(cat_ok(&["--raw", r.path()]) == r.both());
    assert!(cat_ok(&["--raw", "--direction", "out", r.path()]) == r.resp);
    assert_eq!(
        cat_ok(&["--raw", "--direction", "in", r.path()]),
        r.req(),
        "{flag}"
    );
    let shown = parse_text(&cat_ok(&[r.path()]));
    assert_eq!(blocks(&shown, ">>"), [REQ1, REQ2]);
    assert!(blocks(&shown, "<<").concat() == r.resp);
}

#[test]
fn gzip_recording_reads_like_plain() {
    compressed_reads_like_plain("gz", "-z", ".gz", &[0x1f, 0x8b]);
}

#[test]
fn bzip2_recording_reads_like_plain() {
    compressed_reads_like_plain("bz2", "-j", ".bz2", b"BZh");
}

#[test]
fn truncated_gzip_gives_the_recovered_prefix() {
    let r = record_std("gz-cut", &["-M", "-L", "-z"], random_bytes(200_000, 17));
    let whole = std::fs::read(&r.file).unwrap();
    assert!(whole.len() > 150_000, "random data does not compress");
    let cut = r.file.with_file_name("cut.gz");
    std::fs::write(&cut, &whole[..whole.len() / 2]).unwrap();
    let cut_s = cut.to_str().unwrap();

    let o = ipprotcat(&["--raw", cut_s]);
    assert_eq!(o.status.code(), Some(1), "exit 1 for a truncated file");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(cut_s), "the warning names the file: {err}");
    let all = r.both();
    assert!(
        o.stdout.len() > 50_000 && o.stdout.len() < all.len(),
        "recovered {} of {} bytes",
        o.stdout.len(),
        all.len()
    );
    assert!(all.starts_with(&o.stdout), "a prefix of the real bytes");

    // the default output shows the same prefix, also with exit 1
    let o = ipprotcat(&[cut_s]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!o.stderr.is_empty());
    let shown = parse_text(&o.stdout);
    let payloads: Vec<u8> = shown
        .iter()
        .flat_map(|s| match s {
            Shown::Block(_, _, p) => p.clone(),
            Shown::Stamp(_) => Vec::new(),
        })
        .collect();
    assert!(payloads.len() > 50_000 && all.starts_with(&payloads));
}

/// `--json` lines, checked and parsed.
fn json_lines(args: &[&str]) -> Vec<serde_json::Value> {
    let out = String::from_utf8(cat_ok(args)).expect("UTF-8 JSON");
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn json_blocks_decode_to_what_was_sent() {
    let r = record_std("json", &["-M", "-L"], random_bytes(20_000, 19));
    let v = json_lines(&["--json", r.path()]);
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut per_dir: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    let mut last = 0;
    for o in &v {
        let m = o.as_object().expect("an object");
        let keys: Vec<&str> = m.keys().map(String::as_str).collect();
        let mut want = ["file", "time", "time_us", "dir", "bytes", "data_b64"];
        want.sort_unstable();
        let mut keys = keys.clone();
        keys.sort_unstable();
        assert_eq!(keys, want, "{o}");
        assert_eq!(m["file"], r.path());
        let us = m["time_us"].as_i64().expect("time_us");
        assert!(us >= last && us >= r.t0 && us <= r.t1, "{o}");
        last = us;
        // time: RFC 3339 with microseconds, the same instant
        let t = m["time"].as_str().expect("time");
        assert_eq!(t.as_bytes()[10], b'T', "{t}");
        assert_eq!(parse_time(&t.replacen('T', " ", 1), true), us, "{o}");
        let dir = m["dir"].as_str().expect("dir").to_string();
        assert!(dir == "in" || dir == "out", "{o}");
        let data = b64.decode(m["data_b64"].as_str().unwrap()).expect("base64");
        assert_eq!(m["bytes"].as_u64(), Some(data.len() as u64), "{o}");
        per_dir.entry(dir.clone()).or_default().extend(data);
        *count.entry(dir).or_default() += 1;
    }
    assert_eq!(per_dir["in"], r.req());
    assert!(per_dir["out"] == r.resp);
    assert_eq!(count["in"], 2);

    // the same blocks as the default output, with the same times
    let shown = parse_text(&cat_ok(&[r.path()]));
    assert_eq!(shown.len(), v.len());
    for (s, o) in shown.iter().zip(&v) {
        let Shown::Block(time, _, p) = s else {
            panic!("{s:?}")
        };
        assert_eq!(Some(parse_time(time, true)), o["time_us"].as_i64());
        assert_eq!(Some(p.len() as u64), o["bytes"].as_u64());
    }
}

#[test]
fn json_of_undated_file() {
    let r = record_std("json-none", &["-L"], b"pong\n".to_vec());
    let v = json_lines(&["--json", r.path()]);
    assert_eq!(v.len(), 1, "{v:?}");
    let o = &v[0];
    assert!(o["time"].is_null() && o["time_us"].is_null() && o["dir"].is_null());
    let data = base64::engine::general_purpose::STANDARD
        .decode(o["data_b64"].as_str().unwrap())
        .unwrap();
    assert_eq!(data, r.both());
}

/// `--summary` as a map: label -> the fields after it.
fn summary(r: &Recording) -> BTreeMap<String, Vec<String>> {
    let out = String::from_utf8(cat_ok(&["--summary", r.path()])).unwrap();
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some(r.path()), "{out}");
    lines
        .map(|l| {
            assert!(l.starts_with("  "), "{out}");
            let mut f = l.split_whitespace().map(String::from);
            let label = f.next().unwrap();
            (label, f.collect())
        })
        .collect()
}

fn counts(blocks: usize, bytes: usize) -> Vec<String> {
    vec![
        blocks.to_string(),
        "blocks".into(),
        bytes.to_string(),
        "bytes".into(),
    ]
}

#[test]
fn summary_counts() {
    let r = record_std("summary", &["-M", "-L"], random_bytes(30_000, 23));
    let v = json_lines(&["--json", r.path()]);
    let out_blocks = v.iter().filter(|o| o["dir"] == "out").count();
    let s = summary(&r);
    assert_eq!(s["in"], counts(2, r.req().len()), "{s:?}");
    assert_eq!(s["out"], counts(out_blocks, r.resp.len()), "{s:?}");
    assert!(!s.contains_key("undated"), "{s:?}");
    let first = parse_time(&s["first"].join(" "), true);
    let last = parse_time(&s["last"].join(" "), true);
    assert_eq!(Some(first), v[0]["time_us"].as_i64());
    assert_eq!(Some(last), v[v.len() - 1]["time_us"].as_i64());

    // without -L: the client's blocks are counted, with no bytes
    let r = record_std("summary-m", &["-M"], b"hello\n".to_vec());
    let s = summary(&r);
    assert_eq!(s["in"], counts(2, 0), "{s:?}");
    assert_eq!(s["out"], counts(1, 6), "{s:?}");

    // no markers: one undated block, no times
    let r = record_std("summary-none", &["-L"], b"hello\n".to_vec());
    let s = summary(&r);
    assert_eq!(s["in"], counts(0, 0), "{s:?}");
    assert_eq!(s["out"], counts(0, 0), "{s:?}");
    assert_eq!(s["undated"], counts(1, r.both().len()), "{s:?}");
    assert_eq!(s["first"], ["-"]);
}

/// One TCP segment of a capture, its addresses as (IPv4, port).
#[derive(Debug)]
struct Segment {
    ts_us: i64,
    /// Bytes of the whole frame (Ethernet header included).
    frame_len: usize,
    src: ([u8; 4], u16),
    dst: ([u8; 4], u16),
    seq: u32,
    ack: u32,
    flags: u8,
    payload: Vec<u8>,
}

/// A capture of Ethernet + IPv4 + TCP (read by [`crate::pcap`], every
/// header and both checksums checked).
fn parse_pcap(p: &[u8]) -> Vec<Segment> {
    let v4 = |ip: IpAddr| match ip {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(a) => panic!("IPv4 expected: {a}"),
    };
    pcap::read_pcap(p)
        .into_iter()
        .map(|k| Segment {
            ts_us: i64::try_from(k.ts_us).unwrap(),
            frame_len: k.frame_len,
            src: (v4(k.src), k.sport),
            dst: (v4(k.dst), k.dport),
            seq: k.seq,
            ack: k.ack,
            flags: k.flags,
            payload: k.payload,
        })
        .collect()
}

#[test]
fn pcap_is_one_tcp_conversation_of_the_recorded_bytes() {
    // more than one 65 000-byte segment in one block is possible
    let r = record_std("pcap", &["-M", "-L"], random_bytes(150_000, 29));
    let dir = r.file.parent().unwrap().to_path_buf();
    let pcap = dir.join("conv.pcap");
    let pcap_s = pcap.to_str().unwrap();
    let out = cat_ok(&["--pcap", pcap_s, "--server-port", "1521", r.path()]);
    assert!(out.is_empty(), "the capture goes to the file");
    let segs = parse_pcap(&std::fs::read(&pcap).unwrap());

    let server = ([192, 0, 2, 1], 1521);
    let client_ip = [127, 0, 0, 1]; // from the file name
    assert!(segs.len() >= 3 + 2 + 3 + 2);
    let client = segs[0].src;
    assert_eq!(client.0, client_ip);
    // the handshake
    assert_eq!((segs[0].flags, segs[0].dst), (SYN, server));
    assert_eq!(
        (segs[1].flags, segs[1].src, segs[1].dst),
        (SYN | ACK, server, client)
    );
    assert_eq!(segs[1].ack, segs[0].seq.wrapping_add(1));
    assert_eq!(segs[2].flags & (SYN | ACK | FIN), ACK);
    // every segment of the one conversation; sequence numbers follow the
    // payload, acknowledgements what the peer sent
    let mut next = BTreeMap::from([(client, segs[0].seq), (server, segs[1].seq)]);
    let mut data: BTreeMap<([u8; 4], u16), Vec<u8>> = BTreeMap::new();
    let mut fins = 0;
    for s in &segs {
        assert!(
            (s.src, s.dst) == (client, server) || (s.src, s.dst) == (server, client),
            "one conversation: {s:?}"
        );
        assert_eq!(s.seq, next[&s.src], "sequence number of {s:?}");
        if s.flags & ACK != 0 {
            assert_eq!(s.ack, next[&s.dst], "acknowledgement of {s:?}");
        }
        assert!(s.payload.len() <= 65_000, "segment size");
        let adv = s.payload.len() as u32 + u32::from(s.flags & (SYN | FIN) != 0);
        *next.get_mut(&s.src).unwrap() = s.seq.wrapping_add(adv);
        fins += usize::from(s.flags & FIN != 0);
        if !s.payload.is_empty() {
            assert!(s.ts_us >= r.t0 && s.ts_us <= r.t1, "block time {s:?}");
        }
        data.entry(s.src).or_default().extend_from_slice(&s.payload);
    }
    assert_eq!(fins, 2, "FIN from both sides");
    assert_eq!(data[&client], r.req(), "client -> server payload");
    assert!(data[&server] == r.resp, "server -> client payload");
    let ts: Vec<i64> = segs.iter().map(|s| s.ts_us).collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "time order");

    tshark_check(&pcap, &segs, client.1, r.req().len(), r.resp.len());
}

/// tshark, where installed: one TCP conversation whose frames and bytes
/// per direction are those of our own parse, and TCP payload totals per
/// direction equal to the recording.
fn tshark_check(pcap: &Path, segs: &[Segment], client_port: u16, req: usize, resp: usize) {
    if !need_tool("tshark", "the tshark check") {
        return;
    }
    let f = pcap.to_str().unwrap();
    let conv = Command::new("tshark")
        .args(["-n", "-r", f, "-q", "-z", "conv,tcp"])
        .output()
        .unwrap();
    assert!(conv.status.success(), "{conv:?}");
    let text = String::from_utf8_lossy(&conv.stdout);
    let rows: Vec<&str> = text.lines().filter(|l| l.contains("<->")).collect();
    assert_eq!(rows.len(), 1, "one TCP conversation:\n{text}");
    // "A <-> B  frames bytes unit  frames bytes unit  frames bytes unit
    // start duration": A<-B, A->B, total; bytes of whole frames, scaled
    // (bytes, kB, MB: SI, rounded or cut)
    let words: Vec<&str> = rows[0].split_whitespace().collect();
    assert!(words.len() >= 12 && words[1] == "<->", "{}", rows[0]);
    let client_is_a = words[0].ends_with(&format!(":{client_port}"));
    assert!(client_is_a || words[2].ends_with(&format!(":{client_port}")));
    let from = |port: u16| {
        let s: Vec<&Segment> = segs.iter().filter(|s| s.src.1 == port).collect();
        (
            s.len() as u64,
            s.iter().map(|s| s.frame_len as u64).sum::<u64>(),
        )
    };
    let (to_client, from_client) = (from(1521), from(client_port));
    let total = (segs.len() as u64, to_client.1 + from_client.1);
    let (b_to_a, a_to_b) = if client_is_a {
        (to_client, from_client)
    } else {
        (from_client, to_client)
    };
    for (k, (frames, bytes)) in [b_to_a, a_to_b, total].into_iter().enumerate() {
        let w = &words[3 + 3 * k..6 + 3 * k];
        assert_eq!(
            w[0].parse::<u64>().ok(),
            Some(frames),
            "frames: {}",
            rows[0]
        );
        let n: u64 = w[1]
            .parse()
            .unwrap_or_else(|_| panic!("bytes: {}", rows[0]));
        let scale = match w[2] {
            "bytes" => 1,
            "kB" => 1000,
            "MB" => 1_000_000,
            u => panic!("unit {u}: {}", rows[0]),
        };
        assert!(
            (n * scale).abs_diff(bytes) < scale,
            "{bytes} bytes of frames, tshark: {}",
            rows[0]
        );
    }

    let fields = Command::new("tshark")
        .args([
            "-n",
            "-r",
            f,
            "-T",
            "fields",
            "-e",
            "tcp.srcport",
            "-e",
            "tcp.len",
        ])
        .output()
        .unwrap();
    assert!(fields.status.success(), "{fields:?}");
    let mut per_port: BTreeMap<u16, usize> = BTreeMap::new();
    let text = String::from_utf8_lossy(&fields.stdout);
    for l in text.lines() {
        let (p, n) = l.split_once('\t').expect("two fields");
        *per_port.entry(p.parse().unwrap()).or_default() += n.parse::<usize>().unwrap();
    }
    assert_eq!(
        per_port,
        BTreeMap::from([(client_port, req), (1521, resp)]),
        "tcp.len per direction"
    );

    // Wireshark's TCP analysis finds nothing odd (no lost segments,
    // retransmissions, bad acks)
    let odd = Command::new("tshark")
        .args([
            "-n",
            "-r",
            f,
            "-Y",
            "tcp.analysis.flags && !tcp.analysis.window_update",
        ])
        .output()
        .unwrap();
    assert!(odd.status.success(), "{odd:?}");
    assert!(
        String::from_utf8_lossy(&odd.stdout).trim().is_empty(),
        "tshark TCP analysis:\n{}",
        String::from_utf8_lossy(&odd.stdout)
    );
}
