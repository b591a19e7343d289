//! End-to-end tests of `ipprotcat`: data logs are built with the
//! recorder's own block writers (and the flate2/bzip2 encoders), the real
//! binary reads them, and the output is compared byte for byte. Captures
//! are read back by a small pcap parser below that checks checksums and
//! sequence numbers; `tshark` checks them too where it is installed.

use std::fs;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::harness::{ipprotcat_in, need, need_tool};
use crate::pcap::{self, ACK, FIN, PSH, Pkt, SYN, little_endian};
use base64::Engine;
use ipprotd::record::block::{Dir, push_marker, push_stamp};

/// A time zone with summer time, given as a POSIX rule (no tzdata needed).
const TZ: &str = "CET-1CEST,M3.5.0,M10.5.0/3";
/// 2026-07-23 18:30:05.25 UTC: summer, +02:00.
const SUMMER: u64 = 1_784_831_405_250_000;
/// 2026-11-23 20:30:05.123456 UTC: winter, +01:00.
const WINTER: u64 = 1_795_465_805_123_456;

const USAGE: &str = "usage: ipprotcat [-x | --json | --raw | --summary | --pcap pcap_file --server-port port [--server-ip ip] | --statements [--json] [--no-redact]] [--direction in|out] [-? | -v] file ...
       ipprotcat --verify [--archive dir] connection_log ...\n";

/// A fresh, empty directory for one test.
fn scratch(test: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(test);
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).expect("create test dir");
    d
}

/// Run the real ipprotcat in `cwd` with [`TZ`] (under a deadline).
fn ipprotcat(args: &[&str], cwd: &Path, stdin: Option<&[u8]>) -> Output {
    ipprotcat_in(args, cwd, TZ, stdin.unwrap_or_default())
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("UTF-8 output")
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("UTF-8 errors")
}

/// A recording with `-M -t -L`: both directions, a stamp, a marker-only
/// block, bytes that need escaping, summer and winter time.
fn sample_log() -> Vec<u8> {
    let mut v = Vec::new();
    push_marker(&mut v, Dir::FromClient, SUMMER);
    push_stamp(&mut v, "2026-07-23 20:30:05+02:00");
    v.extend_from_slice(b"LOGIN scott\r\n\x00\x01\\");
    push_marker(&mut v, Dir::ToClient, SUMMER + 50_000);
    v.extend_from_slice(b"OK\n");
    push_marker(&mut v, Dir::FromClient, WINTER);
    push_marker(&mut v, Dir::ToClient, 1_795_465_806_000_000);
    v.extend_from_slice(b"bye\xff");
    v
}

const SAMPLE_TEXT: &str = "\
2026-07-23 20:30:05+02:00 -- stamp
2026-07-23 20:30:05.250000+02:00 >> 16
LOGIN scott\r\n\\x00\\x01\\\\
2026-07-23 20:30:05.300000+02:00 << 3
OK
2026-11-23 21:30:05.123456+01:00 >> 0
2026-11-23 21:30:06.000000+01:00 << 4
bye\\xff
";

const NAME: &str = "prot_2026-07-23_203005_1_10.1.2.3";

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

fn bzip2(data: &[u8]) -> Vec<u8> {
    let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    e.write_all(data).expect("bzip2");
    e.finish().expect("bzip2")
}

/// Bytes that do not compress (a simple LCG).
fn noise(n: usize) -> Vec<u8> {
    let mut x: u32 = 12345;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect()
}

/// A fresh directory holding [`sample_log`] as [`NAME`].
fn with_sample(test: &str) -> PathBuf {
    let d = scratch(test);
    fs::write(d.join(NAME), sample_log()).expect("write log");
    d
}

/// `o` succeeded silently with exactly `want` on stdout.
fn assert_clean(o: &Output, want: &str) {
    assert_eq!(stderr(o), "");
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(o), want);
}

/// [`sample_log`] cut at `at`, each part compressed on its own, joined.
fn two_parts(at: usize, compress: fn(&[u8]) -> Vec<u8>) -> Vec<u8> {
    let log = sample_log();
    let (a, b) = log.split_at(at);
    [compress(a), compress(b)].concat()
}

#[test]
fn text_output_is_exact() {
    let d = with_sample("text_output_is_exact");
    assert_clean(&ipprotcat(&[NAME], &d, None), SAMPLE_TEXT);
}

#[test]
fn hexdump_output_is_exact() {
    let d = with_sample("hexdump_output_is_exact");
    let o = ipprotcat(&["-x", NAME], &d, None);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o),
        "\
2026-07-23 20:30:05+02:00 -- stamp
2026-07-23 20:30:05.250000+02:00 >> 16
00000000  4c 4f 47 49 4e 20 73 63  6f 74 74 0d 0a 00 01 5c  |LOGIN scott....\\|
2026-07-23 20:30:05.300000+02:00 << 3
00000000  4f 4b 0a                                          |OK.|
2026-11-23 21:30:05.123456+01:00 >> 0
2026-11-23 21:30:06.000000+01:00 << 4
00000000  62 79 65 ff                                       |bye.|
"
    );
}

#[test]
fn json_has_the_spec_keys() {
    let d = with_sample("json_has_the_spec_keys");
    let o = ipprotcat(&["--json", NAME], &d, None);
    assert_eq!(o.status.code(), Some(0));
    let objs: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(objs.len(), 5);
    for o in &objs {
        let keys: Vec<&str> = o
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        let mut want = vec!["bytes", "data_b64", "dir", "file", "time", "time_us"];
        let mut got = keys.clone();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want);
        assert_eq!(o["file"], NAME);
    }
    assert_eq!(objs[0]["dir"], "stamp");
    assert_eq!(objs[0]["time"], "2026-07-23T20:30:05+02:00");
    assert_eq!(objs[0]["time_us"], 1_784_831_405_000_000u64);
    assert_eq!(objs[1]["dir"], "in");
    assert_eq!(objs[1]["time"], "2026-07-23T20:30:05.250000+02:00");
    assert_eq!(objs[1]["time_us"], SUMMER);
    assert_eq!(objs[1]["bytes"], 16);
    let data = base64::engine::general_purpose::STANDARD
        .decode(objs[1]["data_b64"].as_str().expect("string"))
        .expect("base64");
    assert_eq!(data, b"LOGIN scott\r\n\x00\x01\\");
    assert_eq!(objs[2]["dir"], "out");
    assert_eq!(objs[3]["bytes"], 0);
    assert_eq!(objs[3]["data_b64"], "");
    assert_eq!(objs[4]["time"], "2026-11-23T21:30:06.000000+01:00");
}

#[test]
fn json_of_undated_stdin() {
    let d = scratch("json_of_undated_stdin");
    let o = ipprotcat(&["--json", "-"], &d, Some(&gzip(b"just bytes")));
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o),
        "{\"file\":\"-\",\"time\":null,\"time_us\":null,\"dir\":null,\"bytes\":10,\"data_b64\":\"anVzdCBieXRlcw==\"}\n"
    );
}

#[test]
fn raw_rebuilds_each_direction() {
    let d = with_sample("raw_rebuilds_each_direction");
    let o = ipprotcat(&["--raw", "--direction", "out", NAME], &d, None);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(o.stdout, b"OK\nbye\xff");
    let o = ipprotcat(&["--direction", "in", "--raw", NAME], &d, None);
    assert_eq!(o.stdout, b"LOGIN scott\r\n\x00\x01\\");
    let o = ipprotcat(&["--raw", NAME], &d, None);
    assert_eq!(o.stdout, b"LOGIN scott\r\n\x00\x01\\OK\nbye\xff");
}

#[test]
fn direction_filters_text() {
    let d = with_sample("direction_filters_text");
    let o = ipprotcat(&["--direction", "out", NAME], &d, None);
    assert_eq!(
        stdout(&o),
        "\
2026-07-23 20:30:05.300000+02:00 << 3
OK
2026-11-23 21:30:06.000000+01:00 << 4
bye\\xff
"
    );
    assert_eq!(stderr(&o), "");
}

#[test]
fn summary_is_exact() {
    let d = with_sample("summary_is_exact");
    fs::write(d.join("undated"), b"12345").expect("write log");
    let o = ipprotcat(&["--summary", NAME, "undated"], &d, None);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o),
        format!(
            "\
{NAME}
  in            2 blocks           16 bytes
  out           2 blocks            7 bytes
  first    2026-07-23 20:30:05.250000+02:00
  last     2026-11-23 21:30:06.000000+01:00
undated
  in            0 blocks            0 bytes
  out           0 blocks            0 bytes
  undated       1 blocks            5 bytes
  first    -
  last     -
"
        )
    );
}

#[test]
fn undated_file_is_one_block() {
    let d = scratch("undated_file_is_one_block");
    fs::write(d.join("plain"), b"SELECT 1;\n\x07").expect("write log");
    fs::write(d.join("empty"), b"").expect("write log");
    let o = ipprotcat(&["plain", "empty"], &d, None);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o),
        "==> plain <==\n- -- 11\nSELECT 1;\n\\x07\n==> empty <==\n- -- 0\n"
    );
    // A direction cannot be told: nothing is selected, and a warning says why.
    let o = ipprotcat(&["--raw", "--direction", "out", "plain"], &d, None);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(o.stdout, b"");
    assert_eq!(
        stderr(&o),
        "ipprotcat: plain: no direction markers (recorded without -M): undated data left out by --direction\n"
    );
}

#[test]
fn stamps_without_markers() {
    let d = scratch("stamps_without_markers");
    let mut v = Vec::new();
    push_stamp(&mut v, "2026-11-23 21:30:05+01:00");
    v.extend_from_slice(b"one");
    push_stamp(&mut v, "2026-11-23 21:40:00+01:00");
    v.extend_from_slice(b"two\n");
    fs::write(d.join("t"), v).expect("write log");
    let o = ipprotcat(&["t"], &d, None);
    assert_eq!(
        stdout(&o),
        "2026-11-23 21:30:05+01:00 -- stamp\n- -- 3\none\n2026-11-23 21:40:00+01:00 -- stamp\n- -- 4\ntwo\n"
    );
}

#[test]
fn multi_member_gzip_and_sniffing() {
    let d = scratch("multi_member_gzip_and_sniffing");
    let two = two_parts(60, gzip); // cut inside the first payload
    // Detected by content: the name says bzip2.
    fs::write(d.join("misnamed.bz2"), &two).expect("write log");
    assert_clean(&ipprotcat(&["misnamed.bz2"], &d, None), SAMPLE_TEXT);
}

#[test]
fn concatenated_bzip2_streams() {
    let d = scratch("concatenated_bzip2_streams");
    let two = two_parts(30, bzip2); // cut inside the stamp line
    fs::write(d.join(format!("{NAME}.bz2")), &two).expect("write log");
    assert_clean(&ipprotcat(&[&format!("{NAME}.bz2")], &d, None), SAMPLE_TEXT);
}

#[test]
fn truncated_gzip_trailer_prints_everything() {
    let d = scratch("truncated_gzip_trailer_prints_everything");
    let mut gz = gzip(&sample_log());
    gz.truncate(gz.len() - 4); // the size field of the trailer
    fs::write(d.join("t.gz"), &gz).expect("write log");
    fs::write(d.join("ok"), b"after").expect("write log");
    let o = ipprotcat(&["t.gz", "ok"], &d, None);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stdout(&o),
        format!("==> t.gz <==\n{SAMPLE_TEXT}==> ok <==\n- -- 5\nafter\n")
    );
    assert_eq!(
        stderr(&o),
        "ipprotcat: t.gz: cannot decompress gzip: unexpected end of file (truncated or corrupt; everything before the damage was shown)\n"
    );
}

#[test]
fn truncated_gzip_keeps_what_was_flushed() {
    let d = scratch("truncated_gzip_keeps_what_was_flushed");
    // As the recorder after 1 s idle: a sync flush, then more data, then a
    // crash in the middle of the next block.
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(&sample_log()).expect("gzip");
    e.flush().expect("sync flush");
    let flushed = e.get_ref().len();
    let mut more = Vec::new();
    push_marker(&mut more, Dir::ToClient, WINTER + 5_000_000);
    more.extend_from_slice(&noise(20_000));
    e.write_all(&more).expect("gzip");
    let gz = e.finish().expect("gzip");
    let cut = flushed + (gz.len() - flushed) / 2;
    fs::write(d.join("t.gz"), &gz[..cut]).expect("write log");
    let o = ipprotcat(&["t.gz"], &d, None);
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    assert!(text.starts_with(SAMPLE_TEXT), "{text}");
    assert!(!text.contains("#948366#"), "no marker fragment as payload");
    assert_eq!(
        stderr(&o),
        "ipprotcat: t.gz: cannot decompress gzip: incomplete deflate stream (truncated or corrupt; everything before the damage was shown)\n"
    );
    // The raw bytes recovered are an exact prefix of what was recorded.
    let o = ipprotcat(&["--raw", "t.gz"], &d, None);
    let mut all = b"LOGIN scott\r\n\x00\x01\\OK\nbye\xff".to_vec();
    all.extend_from_slice(&more[25..]);
    assert!(o.stdout.len() > 7 + 16);
    assert!(all.starts_with(&o.stdout));
}

#[test]
fn truncated_bzip2_keeps_complete_streams() {
    let d = scratch("truncated_bzip2_keeps_complete_streams");
    let mut bz = bzip2(&sample_log());
    let second = bzip2(&noise(5000));
    bz.extend_from_slice(&second[..second.len() / 2]);
    fs::write(d.join("t.bz2"), &bz).expect("write log");
    let o = ipprotcat(&["t.bz2"], &d, None);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), SAMPLE_TEXT);
    assert_eq!(
        stderr(&o),
        "ipprotcat: t.bz2: cannot decompress bzip2: decompression not finished but EOF reached (truncated or corrupt; everything before the damage was shown)\n"
    );
}

#[test]
fn damaged_from_the_start_prints_only_the_warning() {
    let d = scratch("damaged_from_the_start_prints_only_the_warning");
    fs::write(d.join("t.gz"), &gzip(b"x")[..5]).expect("write log");
    let o = ipprotcat(&["t.gz"], &d, None);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "");
    assert!(stderr(&o).starts_with("ipprotcat: t.gz: cannot decompress gzip: "));
}

#[test]
fn unreadable_files_do_not_stop_the_rest() {
    let d = scratch("unreadable_files_do_not_stop_the_rest");
    fs::write(d.join("ok"), b"data").expect("write log");
    fs::create_dir(d.join("adir")).expect("mkdir");
    let o = ipprotcat(&["missing", "adir", "ok"], &d, None);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "==> adir <==\n==> ok <==\n- -- 4\ndata\n");
    assert_eq!(
        stderr(&o),
        "ipprotcat: missing: cannot open: No such file or directory (os error 2)\n\
         ipprotcat: adir: cannot read: Is a directory (os error 21)\n"
    );
}

#[test]
fn usage_errors_exit_2() {
    let d = scratch("usage_errors_exit_2");
    for (args, msg) in [
        (&[][..], "no file given ('-' reads standard input)"),
        (&["-q", "f"][..], "unknown option -q"),
        (
            &["-x", "--json", "f"][..],
            "-x and --json cannot be used together",
        ),
        (&["--pcap", "o", "f"][..], "--pcap needs --server-port"),
        (
            &["--server-port", "80", "f"][..],
            "--server-port needs --pcap",
        ),
        (
            &["--direction", "both", "f"][..],
            "--direction: 'both' is neither in nor out",
        ),
        (
            &["--pcap", "o", "--server-port", "x", "f"][..],
            "--server-port: 'x' is not a port (1-65535)",
        ),
    ] {
        let o = ipprotcat(args, &d, None);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert_eq!(stdout(&o), "");
        assert_eq!(stderr(&o), format!("ipprotcat: {msg}\n{USAGE}"), "{args:?}");
    }
    assert!(!d.join("o").exists(), "no capture file on a usage error");
}

#[test]
fn help_and_version() {
    let d = scratch("help_and_version");
    let o = ipprotcat(&["-?"], &d, None);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).starts_with(USAGE));
    assert_eq!(ipprotcat(&["--help"], &d, None).stdout, o.stdout);
    let o = ipprotcat(&["-v"], &d, None);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o),
        format!("ipprotcat {}\n", env!("CARGO_PKG_VERSION"))
    );
}

/// The options of a usage line or an mdoc section, in order: `-x`,
/// `--json`, ...
fn usage_options(usage: &str) -> Vec<String> {
    usage
        .split(|c: char| c.is_whitespace() || "[]|".contains(c))
        .filter(|w| w.starts_with('-') && w.len() > 1)
        .map(str::to_string)
        .collect()
}

fn mdoc_options(section: &str, macro_prefix: &str) -> Vec<String> {
    section
        .lines()
        .filter(|l| l.starts_with(macro_prefix))
        .flat_map(|l| {
            let l = l.replace("\\-", "-").replace("\\&", "");
            let toks: Vec<String> = l.split_whitespace().map(str::to_string).collect();
            toks.windows(2)
                .filter(|w| w[0] == "Fl" || w[0] == ".Fl")
                .map(|w| format!("-{}", w[1].trim_end_matches(',')))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn man_section<'a>(man: &'a str, name: &str) -> &'a str {
    man.split(&format!(".Sh {name}\n"))
        .nth(1)
        .and_then(|s| s.split("\n.Sh ").next())
        .unwrap_or_default()
}

#[test]
fn usage_matches_the_man_page() {
    let man = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("man/ipprotcat.1"))
        .expect("man page");
    // SYNOPSIS: the same options in the same order as the usage line.
    let synopsis = mdoc_options(man_section(&man, "SYNOPSIS"), "");
    assert_eq!(synopsis, usage_options(USAGE));
    // OPTIONS: every option (long and short forms), sorted by name.
    let listed = mdoc_options(man_section(&man, "OPTIONS"), ".It");
    let mut want = usage_options(USAGE);
    want.extend(["--help".to_string(), "--version".to_string()]);
    let mut got = listed.clone();
    got.sort_unstable();
    want.sort_unstable();
    // --json is in the usage twice (alone, and with --statements)
    want.dedup();
    assert_eq!(got, want);
    let key = |o: &String| o.trim_start_matches('-').to_string();
    let firsts: Vec<String> = man_section(&man, "OPTIONS")
        .lines()
        .filter(|l| l.starts_with(".It Fl"))
        .map(|l| key(&mdoc_options(l, ".It")[0]))
        .collect();
    let mut sorted = firsts.clone();
    sorted.sort();
    assert_eq!(firsts, sorted, "OPTIONS sorted");
}

#[test]
fn broken_pipe_exits_quietly() {
    let d = scratch("broken_pipe_exits_quietly");
    let mut v = Vec::new();
    push_marker(&mut v, Dir::ToClient, WINTER);
    v.extend_from_slice(&noise(4 << 20));
    fs::write(d.join("big"), v).expect("write log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ipprotcat"))
        .args(["-x", "big"])
        .current_dir(&d)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ipprotcat");
    let mut out = child.stdout.take().expect("stdout piped");
    let mut first = [0u8; 100];
    out.read_exact(&mut first).expect("some output");
    drop(out);
    let o = child.wait_with_output().expect("wait");
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&o.stderr), "");
}

#[test]
fn full_disk_on_stdout_is_an_error() {
    if !need(Path::new("/dev/full").exists(), "no /dev/full") {
        return;
    }
    let d = with_sample("full_disk_on_stdout_is_an_error");
    let full = fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("open /dev/full");
    let o = Command::new(env!("CARGO_BIN_EXE_ipprotcat"))
        .arg(NAME)
        .current_dir(&d)
        .stdout(full)
        .stderr(Stdio::piped())
        .output()
        .expect("run ipprotcat");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "ipprotcat: stdout: cannot write: No space left on device (os error 28)\n"
    );
}

// ---- pcap ----------------------------------------------------------------

/// Parse a whole capture, which must be a little-endian one.
fn read_pcap(b: &[u8]) -> Vec<Pkt> {
    assert!(little_endian(b), "microsecond pcap, little endian");
    pcap::read_pcap(b)
}

/// What one conversation carried.
#[derive(Debug, Default)]
struct Conv {
    from_client: Vec<u8>,
    to_client: Vec<u8>,
    /// (time, from client, bytes) of every data segment.
    segments: Vec<(u64, bool, usize)>,
    /// Frames and frame bytes, (client to server, server to client).
    frames: [(usize, usize); 2],
    client: Option<IpAddr>,
    server: Option<IpAddr>,
}

/// Check the TCP state machine of the conversation with `client_port` and
/// collect its payload per direction.
fn conversation(pkts: &[Pkt], client_port: u16, server_port: u16) -> Conv {
    let mine: Vec<&Pkt> = pkts
        .iter()
        .filter(|p| {
            (p.sport, p.dport) == (client_port, server_port)
                || (p.sport, p.dport) == (server_port, client_port)
        })
        .collect();
    assert!(mine.len() >= 6, "handshake and close");
    let flags: Vec<u8> = mine.iter().map(|p| p.flags).collect();
    assert_eq!(flags[..3], [SYN, SYN | ACK, ACK]);
    assert_eq!(flags[flags.len() - 3..], [FIN | ACK, FIN | ACK, ACK]);
    let mut next = [mine[0].seq, mine[1].seq]; // client, server
    let mut c = Conv::default();
    for p in &mine {
        let from_client = p.sport == client_port;
        let (me, peer) = if from_client { (0, 1) } else { (1, 0) };
        assert_eq!(p.seq, next[me], "sequence continuity at {p:?}");
        if p.flags & ACK != 0 {
            assert_eq!(p.ack, next[peer], "acknowledgement at {p:?}");
        }
        assert!(p.payload.len() <= 65_000);
        let mut adv = p.payload.len() as u32;
        if p.flags & (SYN | FIN) != 0 {
            adv += 1;
        }
        next[me] = next[me].wrapping_add(adv);
        c.frames[me].0 += 1;
        c.frames[me].1 += p.frame_len;
        if !p.payload.is_empty() {
            assert_eq!(p.flags, PSH | ACK);
            c.segments.push((p.ts_us, from_client, p.payload.len()));
            if from_client {
                c.from_client.extend_from_slice(&p.payload);
            } else {
                c.to_client.extend_from_slice(&p.payload);
            }
        }
        let (client, server) = if from_client {
            (p.src, p.dst)
        } else {
            (p.dst, p.src)
        };
        assert_eq!(*c.client.get_or_insert(client), client);
        assert_eq!(*c.server.get_or_insert(server), server);
    }
    c
}

/// `tshark -z conv,tcp` must list exactly these conversations with these
/// frame and byte counts (both directions, in either column order).
fn tshark_conversations(pcap: &Path, convs: &[&Conv]) {
    if !need_tool("tshark", "capture not checked with it") {
        return;
    }
    let o = Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .args(["-q", "-z", "conv,tcp"])
        .output()
        .expect("run tshark");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    let rows: Vec<&str> = text.lines().filter(|l| l.contains("<->")).collect();
    assert_eq!(rows.len(), convs.len(), "{text}");
    for c in convs {
        let [(f0, b0), (f1, b1)] = c.frames;
        let a = format!("{f0} {b0} bytes");
        let b = format!("{f1} {b1} bytes");
        let total = format!("{} {} bytes", f0 + f1, b0 + b1);
        assert!(
            rows.iter().any(|r| {
                let r = r.split_whitespace().collect::<Vec<_>>().join(" ");
                (r.contains(&format!("{a} {b} {total}")) || r.contains(&format!("{b} {a} {total}")))
                    && r.contains(&c.client.expect("client").to_string())
            }),
            "no row with {a} / {b} in\n{text}"
        );
    }
}

#[test]
fn pcap_ipv4_two_files() {
    let d = with_sample("pcap_ipv4_two_files");
    let second = "prot_2026-11-23_213005_2_10.9.8.7.gz";
    let mut v = Vec::new();
    push_marker(&mut v, Dir::ToClient, WINTER);
    v.extend_from_slice(b"220 ready\r\n");
    push_marker(&mut v, Dir::FromClient, WINTER + 1000);
    v.extend_from_slice(b"QUIT\r\n");
    fs::write(d.join(second), gzip(&v)).expect("write log");
    let o = ipprotcat(
        &["--pcap", "out.pcap", "--server-port", "1521", NAME, second],
        &d,
        None,
    );
    assert_eq!(stderr(&o), "");
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), "");
    let pcap = fs::read(d.join("out.pcap")).expect("capture written");
    let pkts = read_pcap(&pcap);

    let c1 = conversation(&pkts, 49152, 1521);
    assert_eq!(c1.client, Some("10.1.2.3".parse().expect("literal")));
    assert_eq!(c1.server, Some("192.0.2.1".parse().expect("literal")));
    assert_eq!(c1.from_client, b"LOGIN scott\r\n\x00\x01\\");
    assert_eq!(c1.to_client, b"OK\nbye\xff");
    assert_eq!(
        c1.segments,
        vec![
            (SUMMER, true, 16),
            (SUMMER + 50_000, false, 3),
            (1_795_465_806_000_000, false, 4)
        ]
    );
    // The handshake is at the first marker; the close at the last.
    let mine: Vec<&Pkt> = pkts
        .iter()
        .filter(|p| p.sport == 49152 || p.dport == 49152)
        .collect();
    assert_eq!(mine[0].ts_us, SUMMER);
    assert_eq!(mine[mine.len() - 1].ts_us, 1_795_465_806_000_000);

    let c2 = conversation(&pkts, 49153, 1521);
    assert_eq!(c2.client, Some("10.9.8.7".parse().expect("literal")));
    assert_eq!(c2.from_client, b"QUIT\r\n");
    assert_eq!(c2.to_client, b"220 ready\r\n");
    assert_eq!(
        c2.segments,
        vec![(WINTER, false, 11), (WINTER + 1000, true, 6)]
    );

    tshark_conversations(&d.join("out.pcap"), &[&c1, &c2]);
}

#[test]
fn pcap_ipv6_big_blocks_to_stdout() {
    let d = scratch("pcap_ipv6_big_blocks_to_stdout");
    let name = "db_2026-11-23_213005_3_2001:db8::42.bz2";
    let big = noise(150_000);
    let mut v = Vec::new();
    push_marker(&mut v, Dir::FromClient, WINTER);
    v.extend_from_slice(b"SELECT * FROM t;\n");
    push_marker(&mut v, Dir::ToClient, WINTER + 10);
    v.extend_from_slice(&big);
    fs::write(d.join(name), bzip2(&v)).expect("write log");
    let o = ipprotcat(&["--pcap", "-", "--server-port", "5432", name], &d, None);
    assert_eq!(o.status.code(), Some(0));
    let pkts = read_pcap(&o.stdout);
    let c = conversation(&pkts, 49152, 5432);
    assert_eq!(c.client, Some("2001:db8::42".parse().expect("literal")));
    assert_eq!(c.server, Some("2001:db8::1".parse().expect("literal")));
    assert_eq!(c.from_client, b"SELECT * FROM t;\n");
    assert_eq!(c.to_client, big);
    let sizes: Vec<usize> = c.segments.iter().map(|s| s.2).collect();
    assert_eq!(sizes, vec![17, 65_000, 65_000, 20_000]);
    fs::write(d.join("out.pcap"), &o.stdout).expect("write capture");
    if need_tool("tshark", "capture not checked with it") {
        // Byte counts past 10 000 are shown in kB: check the frame counts.
        let o = Command::new("tshark")
            .arg("-r")
            .arg(d.join("out.pcap"))
            .args(["-q", "-z", "conv,tcp"])
            .output()
            .expect("run tshark");
        let text = String::from_utf8_lossy(&o.stdout);
        let rows: Vec<&str> = text.lines().filter(|l| l.contains("<->")).collect();
        assert_eq!(rows.len(), 1, "{text}");
        assert!(
            rows[0].contains("2001:db8::42:49152") && rows[0].contains("2001:db8::1:5432"),
            "{text}"
        );
    }
}

#[test]
fn pcap_server_ip_and_families() {
    let d = with_sample("pcap_server_ip_and_families");
    for (server, client) in [
        ("2001:db8::80", Some("::ffff:10.1.2.3")),
        ("10.0.0.1", None),
    ] {
        let args = ["--pcap", "-", "--server-port", "80", "--server-ip", server];
        let o = ipprotcat(&[&args[..], &[NAME]].concat(), &d, None);
        assert_eq!(o.status.code(), Some(0));
        let c = conversation(&read_pcap(&o.stdout), 49152, 80);
        if let Some(ip) = client {
            assert_eq!(c.client, Some(ip.parse().expect("literal")));
        }
        assert_eq!(c.server, Some(server.parse().expect("literal")));
    }
}

#[test]
fn pcap_undated_uses_mtime_and_server_direction() {
    let d = scratch("pcap_undated_uses_mtime_and_server_direction");
    let path = d.join("renamed");
    fs::write(&path, b"HTTP/1.0 200 OK\r\n\r\n").expect("write log");
    let mtime = std::time::UNIX_EPOCH + std::time::Duration::from_micros(WINTER);
    fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_modified(mtime))
        .expect("set mtime");
    let o = ipprotcat(
        &["--pcap", "c.pcap", "--server-port", "80", "renamed"],
        &d,
        None,
    );
    assert_eq!(o.status.code(), Some(0));
    let pkts = read_pcap(&fs::read(d.join("c.pcap")).expect("capture"));
    let c = conversation(&pkts, 49152, 80);
    assert_eq!(c.client, Some("198.51.100.1".parse().expect("literal")));
    assert_eq!(c.to_client, b"HTTP/1.0 200 OK\r\n\r\n");
    assert!(pkts.iter().all(|p| p.ts_us == WINTER));
    tshark_conversations(&d.join("c.pcap"), &[&c]);

    // From standard input there is no time at all.
    let o = ipprotcat(&["--pcap", "-", "--server-port", "80", "-"], &d, Some(b"x"));
    assert!(read_pcap(&o.stdout).iter().all(|p| p.ts_us == 0));
}

#[test]
fn pcap_cannot_create() {
    let d = with_sample("pcap_cannot_create");
    let o = ipprotcat(
        &["--pcap", "no/such/dir.pcap", "--server-port", "80", NAME],
        &d,
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "ipprotcat: no/such/dir.pcap: cannot create: No such file or directory (os error 2)\n"
    );
    // Never truncate a recording given as input.
    let before = fs::read(d.join(NAME)).expect("read log");
    let o = ipprotcat(
        &["--pcap", &format!("./{NAME}"), "--server-port", "80", NAME],
        &d,
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!("ipprotcat: ./{NAME}: cannot create: it is also an input file\n")
    );
    assert_eq!(fs::read(d.join(NAME)).expect("read log"), before);
}
