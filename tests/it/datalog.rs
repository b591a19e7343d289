//! The data log (`-f`): which directions are recorded, byte for byte;
//! `-M` markers and `-t` stamps parsed back; `-s`; file names, sequence
//! numbers and mode; O_EXCL and no symlink following; gzip and bzip2
//! output, also after SIGTERM and SIGKILL; the idle and the 10 s flush;
//! write errors; failed upstreams.

use crate::harness::*;
use ipprotd::record::block::{Dir, Piece, parse};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// Client side of the exchange with [`Backend::sequential`]: `c` up, then
/// `s` down.
fn talk(d: &Daemon, c: &[u8], s: &[u8], got: &Got) {
    let r = d.exchange(c);
    assert!(r == s, "client got {} bytes, want {}", r.len(), s.len());
    let g = take_got(got);
    assert!(g == c, "backend got {} bytes, want {}", g.len(), c.len());
}

fn pingpong(d: &Daemon, rounds: &[(Vec<u8>, Vec<u8>)]) {
    let mut k = d.connect();
    for (req, resp) in rounds {
        assert_eq!(&round_trip(&mut k, req, resp.len()), resp);
    }
    finish(&mut k);
}

fn rounds(n: usize, seed: u64) -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..n)
        .map(|i| {
            (
                random_bytes(100 + 37 * i, seed + 2 * i as u64),
                random_bytes(1000 + 53 * i, seed + 2 * i as u64 + 1),
            )
        })
        .collect()
}

/// One block of a `-M` data log.
#[derive(Debug)]
struct Block {
    dir: Dir,
    us: u64,
    stamp: Option<String>,
    payload: Vec<u8>,
}

fn blocks(data: &[u8]) -> Vec<Block> {
    let mut v: Vec<Block> = Vec::new();
    for p in parse(data) {
        match p {
            Piece::Marker(dir, us) => v.push(Block {
                dir,
                us,
                stamp: None,
                payload: Vec::new(),
            }),
            Piece::Stamp(t) => {
                let b = v.last_mut().expect("stamp before any marker");
                assert!(b.stamp.is_none() && b.payload.is_empty(), "misplaced stamp");
                b.stamp = Some(t.to_string());
            }
            Piece::Payload(p) => v
                .last_mut()
                .expect("payload before any marker")
                .payload
                .extend_from_slice(p),
        }
    }
    v
}

fn payload_of(bs: &[Block], dir: Dir) -> Vec<u8> {
    bs.iter()
        .filter(|b| b.dir == dir)
        .flat_map(|b| b.payload.iter().copied())
        .collect()
}

/// A daemon in front of `dest` recording to `DIR/prot` (`-f`) and logging
/// [`ENTRY_FMT`] entries to `DIR/conn.log`.
fn start_logged(dir: &Path, dest: &str, extra: &[&str], env: &[(&str, &str)]) -> (Daemon, PathBuf) {
    let prefix = dir.join("prot");
    let mut args = vec!["-f", p(&prefix)];
    args.extend_from_slice(extra);
    Daemon::logged(dir, dest, ENTRY_FMT, &args, env)
}

/// Wait for entry `n` (1-based) and split it: conn, status, %b, %B, %f.
fn entry(log: &Path, n: usize) -> (u64, String, u64, u64, String) {
    let l = wait_lines(log, n);
    let f: Vec<&str> = l[n - 1].split(' ').collect();
    assert_eq!(f.len(), 5, "{l:?}");
    (
        f[0].parse().unwrap(),
        f[1].to_string(),
        f[2].parse().unwrap(),
        f[3].parse().unwrap(),
        f[4].to_string(),
    )
}

fn check_direction_files(mode: &[&str], want: impl Fn(&[u8], &[u8]) -> Vec<u8>) {
    let dir = tmpdir("datalog-dir");
    let c = random_bytes(100_000, 1);
    let s = random_bytes(150_001, 2);
    let (b, got) = Backend::sequential(s.clone());
    let (d, log) = start_logged(&dir, &b.dest(), mode, &[]);
    talk(&d, &c, &s, &got);
    let (n, status, bi, bo, f) = entry(&log, 1);
    assert_eq!((n, status.as_str(), bi, bo), (1, "ok", 100_000, 150_001));
    let file = only_data_log(&dir);
    assert_eq!(f, file.to_str().unwrap());
    let data = std::fs::read(&file).unwrap();
    assert!(
        data == want(&c, &s),
        "{mode:?}: file of {} bytes differs",
        data.len()
    );
}

#[test]
fn default_records_only_to_client() {
    check_direction_files(&[], |_, s| s.to_vec());
}

#[test]
fn l_records_only_from_client() {
    check_direction_files(&["-l"], |c, _| c.to_vec());
}

#[test]
fn upper_l_records_both() {
    check_direction_files(&["-L"], |c, s| [c, s].concat());
}

#[test]
fn markers_parse_back() {
    for (mode, rec_from, rec_to) in [
        (&["-L"][..], true, true),
        (&["-l"][..], true, false),
        (&[][..], false, true),
    ] {
        let dir = tmpdir("datalog-markers");
        let r = rounds(5, 100);
        let b = Backend::scripted(r.clone());
        let mut extra = vec!["-M"];
        extra.extend_from_slice(mode);
        let (d, log) = start_logged(&dir, &b.dest(), &extra, &[]);
        let t0 = now_us() as u64;
        pingpong(&d, &r);
        entry(&log, 1);
        let t1 = now_us() as u64;
        let data = std::fs::read(only_data_log(&dir)).unwrap();
        let bs = blocks(&data);
        let ups: Vec<u8> = r.iter().flat_map(|x| x.0.clone()).collect();
        let downs: Vec<u8> = r.iter().flat_map(|x| x.1.clone()).collect();
        let from = payload_of(&bs, Dir::FromClient);
        let to = payload_of(&bs, Dir::ToClient);
        assert!(
            from == if rec_from { ups } else { vec![] },
            "{mode:?}: from-client payloads"
        );
        assert!(
            to == if rec_to { downs } else { vec![] },
            "{mode:?}: to-client payloads"
        );
        for dir in [Dir::FromClient, Dir::ToClient] {
            let n = bs.iter().filter(|b| b.dir == dir).count();
            assert!(n >= 5, "{mode:?}: only {n} {dir:?} blocks");
        }
        // marker-only blocks for the unrecorded direction
        for b in &bs {
            let recorded = match b.dir {
                Dir::FromClient => rec_from,
                Dir::ToClient => rec_to,
            };
            if !recorded {
                assert!(
                    b.payload.is_empty(),
                    "{mode:?}: payload in unrecorded {b:?}"
                );
            } else {
                assert!(!b.payload.is_empty(), "{mode:?}: empty recorded block");
            }
            assert!(b.stamp.is_none(), "stamp without -t");
        }
        let us: Vec<u64> = bs.iter().map(|b| b.us).collect();
        assert!(
            us.windows(2).all(|w| w[0] <= w[1]),
            "{mode:?}: times go back: {us:?}"
        );
        assert!(
            us.iter().all(|u| (t0..=t1).contains(u)),
            "{mode:?}: times {us:?} not in [{t0}, {t1}]"
        );
        // the first block is the client's request
        assert_eq!(bs[0].dir, Dir::FromClient);
    }
}

/// The stamp of a client block: local time with the real offset, the
/// second of its marker (or the next one).
fn check_stamp(text: &str, marker_us: Option<u64>, lo: i64, hi: i64) {
    let (secs, off) = parse_local_text(text).unwrap_or_else(|| panic!("bad stamp {text:?}"));
    assert_eq!(off, TZ_OFFSET, "stamp {text}");
    assert!(text.ends_with("+05:30"), "{text}");
    assert_eq!(local_text(secs, TZ_OFFSET), text);
    assert!(lo <= secs && secs <= hi, "stamp {text} not in [{lo}, {hi}]");
    if let Some(us) = marker_us {
        let m = (us / 1_000_000) as i64;
        assert!(secs == m || secs == m + 1, "stamp {text} vs marker {us}");
    }
}

#[test]
fn stamps_with_t0_on_every_client_block() {
    for (mode, rec_from) in [(&["-L"][..], true), (&[][..], false)] {
        let dir = tmpdir("datalog-t0");
        let r = rounds(4, 200);
        let b = Backend::scripted(r.clone());
        let mut extra = vec!["-M", "-t", "0"];
        extra.extend_from_slice(mode);
        let (d, log) = start_logged(&dir, &b.dest(), &extra, TZ_ENV);
        let t0 = now_secs();
        pingpong(&d, &r);
        entry(&log, 1);
        let t1 = now_secs();
        let bs = blocks(&std::fs::read(only_data_log(&dir)).unwrap());
        let mut stamped = 0;
        for b in &bs {
            match b.dir {
                Dir::FromClient => {
                    // recorded direction or not, every client block
                    let st = b
                        .stamp
                        .as_deref()
                        .unwrap_or_else(|| panic!("{mode:?}: no stamp in {b:?}"));
                    check_stamp(st, Some(b.us), t0, t1);
                    assert_eq!(b.payload.is_empty(), !rec_from);
                    stamped += 1;
                }
                Dir::ToClient => assert!(b.stamp.is_none(), "stamp on a to-client block"),
            }
        }
        assert!(stamped >= 4, "{mode:?}: {stamped} stamps");
        let ups: Vec<u8> = r.iter().flat_map(|x| x.0.clone()).collect();
        if rec_from {
            assert!(payload_of(&bs, Dir::FromClient) == ups);
        }
    }
}

#[test]
fn stamp_interval_without_markers() {
    let dir = tmpdir("datalog-t3600");
    let r = rounds(3, 300);
    let b = Backend::scripted(r.clone());
    let (d, log) = start_logged(&dir, &b.dest(), &["-l", "-t", "3600"], TZ_ENV);
    let t0 = now_secs();
    pingpong(&d, &r);
    entry(&log, 1);
    let t1 = now_secs();
    let data = std::fs::read(only_data_log(&dir)).unwrap();
    // one stamp line before the first client block, then the bytes
    assert!(
        data.len() > 34 && data.starts_with(b"#748369#") && data[33] == b'\n',
        "{:?}",
        &data[..40.min(data.len())]
    );
    let text = std::str::from_utf8(&data[8..33]).unwrap();
    check_stamp(text, None, t0, t1);
    let ups: Vec<u8> = r.iter().flat_map(|x| x.0.clone()).collect();
    assert!(data[34..] == ups[..], "payload after the stamp differs");
}

/// `-s` per block: CR, LF, space, tab and 0x21-0x7e kept; every run of
/// other bytes becomes one space.
fn printable(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut run = false;
    for &c in b {
        if matches!(c, b'\r' | b'\n' | b' ' | b'\t' | 0x21..=0x7e) {
            out.push(c);
            run = false;
        } else if !run {
            out.push(b' ');
            run = true;
        }
    }
    out
}

#[test]
fn printable_filter() {
    assert_eq!(printable(b"a\x00\x01b\x7f\r\n\tc\xff\x80"), b"a b \r\n\tc ");
    let dir = tmpdir("datalog-s");
    let msgs: Vec<Vec<u8>> = vec![
        b"SELECT 1;\r\n".to_vec(),
        b"\x00\x00\x00\x08\x04\xd2\x16\x2fuser\x00alice\x00\x00".to_vec(),
        b"tab\there \x7f\x7f\x7fdel \xc3\xa9t\xc3\xa9 ~!{}|\x1b[0m end\n".to_vec(),
        (0u8..=255).collect(),
    ];
    let r: Vec<(Vec<u8>, Vec<u8>)> = msgs
        .iter()
        .enumerate()
        .map(|(i, m)| (m.clone(), format!("reply {i}\x00\x01\n").into_bytes()))
        .collect();
    let b = Backend::scripted(r.clone());
    let (d, log) = start_logged(&dir, &b.dest(), &["-L", "-s", "-M"], &[]);
    pingpong(&d, &r);
    let (_, status, bi, bo, _) = entry(&log, 1);
    assert_eq!(status, "ok");
    // byte counts are of the traffic, not of the filtered log
    assert_eq!(bi, msgs.iter().map(|m| m.len() as u64).sum::<u64>());
    assert_eq!(bo, r.iter().map(|x| x.1.len() as u64).sum::<u64>());
    let bs = blocks(&std::fs::read(only_data_log(&dir)).unwrap());
    // one small write, one read: each message is one block
    let from: Vec<Vec<u8>> = bs
        .iter()
        .filter(|b| b.dir == Dir::FromClient)
        .map(|b| b.payload.clone())
        .collect();
    let want: Vec<Vec<u8>> = msgs.iter().map(|m| printable(m)).collect();
    assert_eq!(from, want);
    let to: Vec<u8> = payload_of(&bs, Dir::ToClient);
    let want_to: Vec<u8> = r.iter().flat_map(|x| printable(&x.1)).collect();
    assert_eq!(to, want_to);
}

#[test]
fn printable_filter_without_markers() {
    let dir = tmpdir("datalog-s-plain");
    let c = b"GET /\x00\x00\x01\x02 HTTP/1.0\r\n\r\n".to_vec();
    let s = b"200 \xff\xfe OK\n".to_vec();
    let (b, got) = Backend::sequential(s.clone());
    let (d, log) = start_logged(&dir, &b.dest(), &["-L", "-s"], &[]);
    talk(&d, &c, &s, &got);
    entry(&log, 1);
    let data = std::fs::read(only_data_log(&dir)).unwrap();
    assert_eq!(data, [printable(&c), printable(&s)].concat());
    assert_eq!(data, b"GET /  HTTP/1.0\r\n\r\n200   OK\n".to_vec());
}

/// The file name of the path `f`.
fn base_name(f: &str) -> String {
    Path::new(f)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string()
}

#[test]
fn file_names_sequence_and_mode() {
    for (opt, ext) in [(None, ""), (Some("-z"), ".gz"), (Some("-j"), ".bz2")] {
        let dir = tmpdir("datalog-names");
        let b = Backend::echo();
        // dual-stack wildcard: the IPv4 client shows as IPv4 in the name
        let mut extra = vec!["-p", "0"];
        extra.extend(opt);
        let (d, log) = start_logged(&dir, &b.dest(), &extra, TZ_ENV);
        let t0 = now_secs();
        for i in 1..=3u64 {
            let m = format!("conn {i}");
            let mut s = connect(("127.0.0.1", d.port()));
            assert_eq!(exchange(&mut s, m.as_bytes()), m.as_bytes());
            entry(&log, i as usize);
        }
        let t1 = now_secs();
        let files = data_logs(&dir);
        assert_eq!(files.len(), 3, "{files:?}");
        for i in 1..=3u64 {
            let (n, status, _, _, f) = entry(&log, i as usize);
            assert_eq!((n, status.as_str()), (i, "ok"));
            let name = base_name(&f);
            assert_eq!(Path::new(&f).parent().unwrap(), dir, "{f}");
            let ok = (t0..=t1)
                .any(|s| name == format!("prot_{}_{i}_127.0.0.1{ext}", file_stamp(s, TZ_OFFSET)));
            assert!(ok, "unexpected name {name} (conn {i}, {t0}..{t1})");
            let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o7777;
            assert_eq!(mode, 0o640, "{name}: mode {mode:o}");
            assert!(files.contains(&PathBuf::from(&f)));
        }
    }
}

/// Candidate names of conn `n` for the seconds around now.
fn candidates(prefix: &Path, n: u64) -> Vec<PathBuf> {
    let now = now_secs();
    (now - 2..now + 60)
        .map(|s| {
            PathBuf::from(format!(
                "{}_{}_{n}_127.0.0.1",
                prefix.display(),
                file_stamp(s, TZ_OFFSET)
            ))
        })
        .collect()
}

#[test]
fn existing_names_are_neither_overwritten_nor_followed() {
    let dir = tmpdir("datalog-excl");
    let prefix = dir.join("prot");
    let victim = dir.join("victim");
    std::fs::write(&victim, b"precious victim").unwrap();
    let c = random_bytes(20_000, 5);
    let s = random_bytes(30_000, 6);
    let (b, got) = Backend::sequential(s.clone());
    let (d, log) = start_logged(&dir, &b.dest(), &[], TZ_ENV);
    // conn 1: regular files; conn 2: symlinks to an existing file;
    // conn 3: dangling symlinks
    let mut planted = Vec::new();
    for p in candidates(&prefix, 1) {
        std::fs::write(&p, b"precious").unwrap();
        planted.push(p);
    }
    for p in candidates(&prefix, 2) {
        std::os::unix::fs::symlink(&victim, &p).unwrap();
        planted.push(p);
    }
    let mut dangling = Vec::new();
    for (i, p) in candidates(&prefix, 3).into_iter().enumerate() {
        let t = dir.join(format!("absent_{i}"));
        std::os::unix::fs::symlink(&t, &p).unwrap();
        planted.push(p);
        dangling.push(t);
    }
    for n in 1..=3 {
        talk(&d, &c, &s, &got);
        let e = entry(&log, n);
        assert_eq!(
            e,
            (
                n as u64,
                "record-error".to_string(),
                20_000,
                30_000,
                "-".to_string()
            ),
            "conn {n}"
        );
    }
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious victim");
    for p in candidates(&prefix, 1) {
        if p.exists() {
            assert_eq!(
                std::fs::read(&p).unwrap(),
                b"precious",
                "{} overwritten",
                p.display()
            );
        }
    }
    assert!(
        dangling.iter().all(|t| !t.exists()),
        "a symlink was followed"
    );
    let mut now: Vec<PathBuf> = data_logs(&dir);
    now.sort();
    planted.sort();
    assert_eq!(now, planted, "a data log was created");
    assert!(
        d.stderr().contains("cannot create data log"),
        "{}",
        d.stderr()
    );
}

/// `gzip -t` / `bzip2 -t` accept the file (skipped with a note if the
/// tool is missing).
fn tool_test(tool: &str, file: &Path) {
    if !need_tool(tool, &format!("{tool} -t check")) {
        return;
    }
    let out = Command::new(tool).arg("-t").arg(file).output().unwrap();
    assert!(
        out.status.success(),
        "{tool} -t {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn gzip_and_bzip2_decompress_exactly() {
    for (opt, ext, tool) in [("-z", ".gz", "gzip"), ("-j", ".bz2", "bzip2")] {
        let dir = tmpdir("datalog-compress");
        let c = random_bytes(300_000, 7);
        let mut s = random_bytes(100_000, 8);
        s.extend(std::iter::repeat_n(b'a', 200_000));
        let (b, got) = Backend::sequential(s.clone());
        let (d, log) = start_logged(&dir, &b.dest(), &["-L", opt], &[]);
        talk(&d, &c, &s, &got);
        assert_eq!(entry(&log, 1).1, "ok");
        let file = only_data_log(&dir);
        assert!(file.to_str().unwrap().ends_with(ext));
        let plain = decompressed(&file);
        assert!(
            plain == [c.clone(), s.clone()].concat(),
            "{opt}: content differs"
        );
        tool_test(tool, &file);
    }
}

#[test]
fn sigterm_mid_transfer_leaves_valid_archives() {
    for (opt, tool) in [("-z", "gzip"), ("-j", "bzip2")] {
        let dir = tmpdir("datalog-term");
        let b = Backend::echo();
        let (d, log) = start_logged(&dir, &b.dest(), &[opt], &[]);
        let data = Arc::new(random_bytes(16 << 20, 9));
        let mut s = d.connect();
        let mut w = s.try_clone().unwrap();
        let data2 = data.clone();
        let writer = thread::spawn(move || {
            for chunk in data2.chunks(64 * 1024) {
                if w.write_all(chunk).is_err() {
                    break;
                }
            }
        });
        let mut got = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        while got.len() < 1 << 20 {
            let n = read_some(&mut s, &mut buf).unwrap();
            assert!(n > 0, "EOF before 1 MiB");
            got.extend_from_slice(&buf[..n]);
        }
        signal(d.the_child(), libc::SIGTERM);
        // bounded by the data size and the read timeout
        loop {
            match read_some(&mut s, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        drop(s);
        writer.join().unwrap();
        assert!(got[..] == data[..got.len()], "{opt}: relayed bytes differ");
        assert!(
            got.len() < data.len(),
            "{opt}: the transfer was not interrupted"
        );
        let (_, status, _, bo, f) = entry(&log, 1);
        assert_eq!(status, "killed");
        let file = only_data_log(&dir);
        assert_eq!(f, file.to_str().unwrap());
        let plain = decompressed(&file);
        assert!(
            plain.len() as u64 >= bo && bo >= got.len() as u64,
            "{opt}: {} recorded, {bo} sent, {} received",
            plain.len(),
            got.len()
        );
        assert!(
            plain[..] == data[..plain.len()],
            "{opt}: recorded bytes differ"
        );
        tool_test(tool, &file);
    }
}

/// What a decoder recovers from a possibly truncated file.
fn recover(opt: &str, file: &Path) -> Vec<u8> {
    let f = std::fs::read(file).unwrap_or_default();
    match opt {
        "-z" => read_until_error(flate2::read::MultiGzDecoder::new(&f[..])).0,
        "-j" => read_until_error(bzip2::read::MultiBzDecoder::new(&f[..])).0,
        _ => f,
    }
}

/// Wait until the data log in `dir` (made with `opt`) holds exactly
/// `want` after an idle flush (1 s without data; 5 s at most).
fn wait_flushed(dir: &Path, opt: &str, want: &[u8]) {
    assert!(
        wait_until(Duration::from_secs(5), || {
            data_logs(dir)
                .first()
                .is_some_and(|f| recover(opt, f) == want)
        }),
        "{opt}: the idle data log was not flushed within 5 s"
    );
}

#[test]
fn sigkill_after_idle_second_loses_nothing_older() {
    for (opt, cat) in [("-z", "zcat"), ("-j", "bzcat"), ("", "cat")] {
        let dir = tmpdir("datalog-kill");
        let b = Backend::echo();
        let extra: Vec<&str> = [opt].into_iter().filter(|o| !o.is_empty()).collect();
        let (d, _log) = start_logged(&dir, &b.dest(), &extra, &[]);
        let d1 = random_bytes(100_000, 10);
        let d2 = random_bytes(100_000, 11);
        let mut s = d.connect();
        let child = d.the_child();
        echo_round(&mut s, &d1);
        // after 1 s without data everything so far is in the file
        wait_flushed(&dir, opt, &d1);
        echo_round(&mut s, &d2);
        signal(child, libc::SIGKILL);
        assert!(wait_until(DEADLINE, || proc_state(child).is_none()
            || proc_state(child) == Some('Z')));
        let file = only_data_log(&dir);
        let all = [d1.clone(), d2.clone()].concat();
        let rec = recover(opt, &file);
        assert!(
            rec.starts_with(&d1) && all.starts_with(&rec),
            "{opt}: recovered {} bytes",
            rec.len()
        );
        if have_tool(cat) {
            let out = Command::new(cat).arg(&file).output().unwrap();
            assert!(
                out.stdout.starts_with(&d1) && all.starts_with(&out.stdout),
                "{cat} recovered {} bytes: {}",
                out.stdout.len(),
                String::from_utf8_lossy(&out.stderr)
            );
        } else {
            println!("note: {cat} is not installed; check skipped");
        }
    }
}

/// Data that keeps coming (never 1 s apart) is still flushed to the file
/// at least every 10 s (SPEC "Data log", crash safety): gzip holds a few
/// kB of input in memory until then.
#[test]
fn busy_connection_is_flushed_within_ten_seconds() {
    let dir = tmpdir("datalog-busy-flush");
    let b = Backend::echo();
    let (d, _log) = start_logged(&dir, &b.dest(), &["-z"], &[]);
    let mut s = d.connect();
    let first = random_bytes(200, 20);
    echo_round(&mut s, &first);
    let t0 = std::time::Instant::now();
    let mut flushed = None;
    // a round every 250 ms, for 15 s at most
    for i in 0..60u64 {
        if data_logs(&dir)
            .first()
            .is_some_and(|f| recover("-z", f).starts_with(&first))
        {
            flushed = Some(t0.elapsed());
            break;
        }
        thread::sleep(Duration::from_millis(250));
        echo_round(&mut s, &random_bytes(200, 21 + i));
    }
    let at = flushed.expect("-z: nothing reached the file in 15 s of steady traffic");
    assert!(at < Duration::from_secs(12), "flushed after {at:?}");
    finish(&mut s);
}

/// [`start_logged`] where data log writes beyond 512 bytes fail with EFBIG
/// (`ulimit -f 1`, dash: 512-byte blocks); SIGXFSZ ignored so that the
/// write returns the error.
fn start_efbig(dir: &Path, dest: &str, extra: &[&str]) -> (Daemon, PathBuf) {
    let prefix = dir.join("prot");
    let mut args = vec!["-f", p(&prefix)];
    args.extend_from_slice(extra);
    Daemon::logged_sh("ulimit -f 1; trap '' XFSZ;", dir, dest, ENTRY_FMT, &args)
}

#[test]
fn write_failure_gives_record_error() {
    let dir = tmpdir("datalog-efbig");
    let c = random_bytes(10_000, 12);
    let s = random_bytes(200_000, 13);
    let (b, got) = Backend::sequential(s.clone());
    let (d, log) = start_efbig(&dir, &b.dest(), &[]);
    talk(&d, &c, &s, &got);
    let (n, status, bi, bo, f) = entry(&log, 1);
    assert_eq!(
        (n, status.as_str(), bi, bo),
        (1, "record-error", 10_000, 200_000)
    );
    let file = only_data_log(&dir);
    assert_eq!(f, file.to_str().unwrap());
    assert!(std::fs::metadata(&file).unwrap().len() <= 1024);
    assert!(d.wait_stderr("cannot write data log"), "{}", d.stderr());
    // the next connection is relayed too
    talk(&d, &c, &s, &got);
    assert_eq!(entry(&log, 2).1, "record-error");
}

#[test]
fn failed_upstream_leaves_no_file() {
    let dir = tmpdir("datalog-refused");
    let refused = closed_port();
    let (d, log) = start_logged(&dir, &refused.dest(), &["-z"], &[]);
    read_all(&mut d.connect());
    let (n, status, bi, bo, f) = entry(&log, 1);
    assert_eq!(
        (n, status.as_str(), bi, bo, f.as_str()),
        (1, "refused", 0, 0, "-")
    );
    assert!(data_logs(&dir).is_empty(), "{:?}", data_logs(&dir));
}

/// An idle flush in the middle of a connection (gzip sync flush, bzip2
/// new stream) still gives a valid, exact file at the normal end.
#[test]
fn idle_flush_then_close_stays_valid() {
    for (opt, tool) in [("-z", "gzip"), ("-j", "bzip2")] {
        let dir = tmpdir("datalog-flush-close");
        let b = Backend::echo();
        let (d, log) = start_logged(&dir, &b.dest(), &["-L", opt], &[]);
        let d1 = random_bytes(30_000, 14);
        let d2 = random_bytes(30_000, 15);
        let mut s = d.connect();
        echo_round(&mut s, &d1);
        wait_flushed(&dir, opt, &[d1.clone(), d1.clone()].concat());
        echo_round(&mut s, &d2);
        finish(&mut s);
        assert_eq!(entry(&log, 1).1, "ok");
        let file = only_data_log(&dir);
        let plain = decompressed(&file);
        assert!(
            plain == [d1.clone(), d1, d2.clone(), d2].concat(),
            "{opt}: content"
        );
        tool_test(tool, &file);
    }
}

/// `killed` and `idle` come before `record-error`.
#[test]
fn status_precedence_over_record_error() {
    for extra in [&[][..], &["--idle-timeout", "1"][..]] {
        let b = Backend::echo();
        let (d, log) = start_efbig(&tmpdir("datalog-precedence"), &b.dest(), extra);
        let mut s = d.connect();
        // more than the plain writer's buffer, so a write reaches the file
        let data = random_bytes(200_000, 16);
        let mut w = s.try_clone().unwrap();
        let data2 = data.clone();
        let writer = thread::spawn(move || w.write_all(&data2).unwrap());
        let mut r = vec![0u8; data.len()];
        s.read_exact(&mut r).unwrap();
        writer.join().unwrap();
        assert!(r == data);
        assert!(d.wait_stderr("cannot write data log"), "{}", d.stderr());
        let want = if extra.is_empty() {
            signal(d.the_child(), libc::SIGTERM);
            "killed"
        } else {
            "idle"
        };
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        assert_eq!(entry(&log, 1).1, want);
    }
}

#[test]
fn ipv6_client_in_file_name() {
    if !need(have_ipv6_loopback(), "::1 is not available here") {
        return;
    }
    let dir = tmpdir("datalog-v6");
    let b = Backend::echo();
    let (d, log) = start_logged(&dir, &b.dest(), &["-p", "0@::1", "-j"], TZ_ENV);
    let t0 = now_secs();
    d.echo(b"six");
    let (_, status, _, _, f) = entry(&log, 1);
    let t1 = now_secs();
    assert_eq!(status, "ok");
    let name = base_name(&f);
    assert!(
        (t0..=t1).any(|s| name == format!("prot_{}_1_::1.bz2", file_stamp(s, TZ_OFFSET))),
        "{name}"
    );
    assert_eq!(decompressed(Path::new(&f)), b"six");
}

/// `n` bytes of text-like data: words from a small vocabulary in lines,
/// chosen by a xorshift generator (compressible, but not trivially).
fn text_like(n: usize, seed: u64) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "the",
        "license",
        "server",
        "checkout",
        "feature",
        "granted",
        "denied",
        "user",
        "host",
        "port",
        "connection",
        "closed",
        "opened",
        "daemon",
        "vendor",
        "token",
        "expires",
        "renewal",
        "table",
        "select",
        "from",
        "where",
        "order",
        "insert",
    ];
    let r = random_bytes(n, seed);
    let mut out = Vec::with_capacity(n + 16);
    let mut i = 0;
    while out.len() < n {
        let w = WORDS[usize::from(r[i % n]) % WORDS.len()];
        out.extend_from_slice(w.as_bytes());
        out.push(if r[(i + 1) % n].is_multiple_of(11) {
            b'\n'
        } else {
            b' '
        });
        out.extend_from_slice(format!("{}", r[(i + 2) % n] % 97).as_bytes());
        out.push(b' ');
        i += 3;
    }
    out.truncate(n);
    out
}

/// Record `c` up and `s` down with `-L OPT --compress-level LEVEL`; the
/// data log decoded by the real `tool` must be `c` then `s`. Returns the
/// file's size (`None` if the tool is missing).
fn level_run(opt: &str, tool: &str, level: &str, c: &[u8], s: &[u8]) -> Option<u64> {
    if !need_tool(
        tool,
        &format!("{tool} of a {opt} --compress-level {level} log"),
    ) {
        return None;
    }
    let dir = tmpdir("datalog-level");
    let (b, got) = Backend::sequential(s.to_vec());
    let (d, log) = start_logged(
        &dir,
        &b.dest(),
        &["-L", opt, "--compress-level", level],
        &[],
    );
    talk(&d, c, s, &got);
    assert_eq!(entry(&log, 1).1, "ok", "{opt} --compress-level {level}");
    let file = only_data_log(&dir);
    let out = Command::new(tool).arg(&file).output().unwrap();
    assert!(
        out.status.success(),
        "{tool} {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout == [c, s].concat(),
        "{opt} --compress-level {level}: {tool} gives {} bytes, want {}",
        out.stdout.len(),
        c.len() + s.len()
    );
    Some(std::fs::metadata(&file).unwrap().len())
}

#[test]
fn compress_levels_decode_exactly_and_differ_in_size() {
    // bzip2's level is its block size: 1.2 MB of text spans many 100 kB
    // blocks at level 1 and two at level 9
    let c = text_like(400_000, 21);
    let s = text_like(800_000, 22);
    for (opt, tool) in [("-z", "zcat"), ("-j", "bzcat")] {
        let (Some(fast), Some(small)) = (
            level_run(opt, tool, "1", &c, &s),
            level_run(opt, tool, "9", &c, &s),
        ) else {
            continue;
        };
        assert!(
            small < fast,
            "{opt}: level 9 gives {small} bytes, level 1 {fast}: not smaller"
        );
    }
}
