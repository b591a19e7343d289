//! ipprotreport end to end: connection logs written by the real daemon in
//! front of a FLEXlm-speaking backend written here (client HELLOs built
//! field by field and checked against IDENTIFY.md's FL1, lmgrd's reply
//! FL6), in the default format, a `-C` text format and `-C json`, plain and
//! gzip-rotated; overlapping sessions whose union is less than their sum;
//! `--by`, `--from`/`--to`; the four output formats giving the same
//! numbers; the HTML page rendered by headless Chromium; `--flexlm-log`
//! rows in every format; bad input. Expected numbers are computed here
//! from the entries the daemon wrote, never typed in.

use crate::harness::*;
use crate::vectors::{FL1, FL6, flexlm_client};

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;
use std::time::Duration;

use serde_json::Value as J;

const REPORT_BIN: &str = env!("CARGO_BIN_EXE_ipprotreport");

/// The `-C` text format of these tests: values separated by spaces, the
/// identity in the middle, so that reading it back relies on the shapes.
const CUSTOM_FMT: &str = "[%c] %s .. %e %i:%p %x %{user}@%{host} via %{service}";

// ---------------------------------------------------------------------
// FLEXlm client and server
// ---------------------------------------------------------------------

/// A 147-byte FLEXlm HELLO (IDENTIFY.md 2.1) with its checksum.
pub(crate) fn hello(user: &str, host: &str, display: &str, pid: &str, daemon: &str) -> Vec<u8> {
    let mut b = vec![0u8; 147];
    b[0] = b'h';
    b[2..4].copy_from_slice(b"13");
    let put = |b: &mut Vec<u8>, off: usize, max: usize, s: &str| {
        let s = &s.as_bytes()[..s.len().min(max)];
        b[off..off + s.len()].copy_from_slice(s);
    };
    put(&mut b, 4, 20, user);
    put(&mut b, 25, 32, host);
    put(&mut b, 58, 10, daemon);
    put(&mut b, 69, 32, display);
    b[102] = b'T';
    put(&mut b, 115, 10, pid);
    put(&mut b, 126, 12, "x64_lsb");
    b[139] = 11;
    b[140] = 16;
    b[141..143].copy_from_slice(b"78");
    b[144..146].copy_from_slice(b"14");
    let sum: u32 = u32::from(b[0]) + b[2..].iter().map(|&x| u32::from(x)).sum::<u32>();
    b[1] = (sum % 256) as u8;
    b
}

#[test]
fn hello_builder_gives_fl1() {
    assert_eq!(
        hello("frey", "login01", "/dev/pts/73", "35174", "MLM"),
        hex(FL1)
    );
}

/// lmgrd (or a vendor daemon): reads the HELLO, answers FL6, waits for EOF.
fn license_server() -> Backend {
    Backend::answering(147, hex(FL6))
}

/// One client: connects through `d` after `delay`, sends its HELLO, reads
/// the reply, keeps the connection `hold`, closes.
fn client(
    addr: std::net::SocketAddr,
    user: &'static str,
    host: &'static str,
    delay: Duration,
    hold: Duration,
) -> thread::JoinHandle<()> {
    flexlm_client(addr, [user, host, "/dev/pts/1", "4242"], delay, hold)
}

/// The scenario every log of these tests records: frey from two hosts
/// with overlapping sessions, ann once, alone.
fn scenario(addrs: &[std::net::SocketAddr]) {
    let ms = Duration::from_millis;
    let mut t = Vec::new();
    for &a in addrs {
        t.push(client(a, "frey", "login01", ms(0), ms(3000)));
        t.push(client(a, "frey", "login02", ms(1200), ms(3000)));
        t.push(client(a, "ann", "pc7", ms(100), ms(500)));
    }
    for h in t {
        h.join().unwrap();
    }
}

/// Three daemons in front of one license server, each writing its own
/// log: default format, [`CUSTOM_FMT`], JSON. A fourth daemon in front of
/// a closed port appends `refused` entries to the default log.
struct Logs {
    dir: PathBuf,
    default: PathBuf,
    custom: PathBuf,
    json: PathBuf,
}

fn record(name: &str) -> Logs {
    let dir = tmpdir(name);
    let server = license_server();
    let dest = server.dest();
    let default = dir.join("conn.log");
    let custom = dir.join("custom.log");
    let json = dir.join("json.log");
    let d1 = Daemon::start(&["-P", &dest, "-c", p(&default)]);
    let d2 = Daemon::start(&["-P", &dest, "-c", p(&custom), "-C", CUSTOM_FMT]);
    let d3 = Daemon::start(&["-P", &dest, "-c", p(&json), "-C", "json"]);
    let closed = closed_port();
    let d4 = Daemon::start(&["-P", &closed.dest(), "-c", p(&default)]);
    scenario(&[d1.addr, d2.addr, d3.addr]);
    let mut s = connect(d4.addr);
    let _ = s.write_all(&hello("eve", "nowhere", "/dev/tty", "1", "MLM"));
    let _ = std::io::Read::read_to_end(&mut s, &mut Vec::new()); // reset or EOF
    assert_eq!(wait_lines(&default, 4).len(), 4);
    assert_eq!(wait_lines(&custom, 3).len(), 3);
    assert_eq!(wait_lines(&json, 3).len(), 3);
    drop((d1, d2, d3, d4));
    Logs {
        dir,
        default,
        custom,
        json,
    }
}

// ---------------------------------------------------------------------
// Running the report
// ---------------------------------------------------------------------

pub(crate) fn report_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(REPORT_BIN);
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = run_limited(c, b"", DEADLINE).unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    assert!(out.status.code().is_some(), "{args:?}: killed by a signal");
    out
}

pub(crate) fn report(args: &[&str]) -> Output {
    report_env(args, &[])
}

/// Run and expect exit 0; standard output.
fn ok(args: &[&str]) -> String {
    let out = report(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// JSON lines of one `type`.
pub(crate) fn rows(json: &str, kind: &str) -> Vec<serde_json::Map<String, J>> {
    json.lines()
        .map(|l| serde_json::from_str::<J>(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .filter(|v| v["type"] == kind)
        .map(|v| v.as_object().unwrap().clone())
        .collect()
}

/// Totals rows as `key -> (sessions, connected_secs, peak)`.
fn totals_json(json: &str) -> BTreeMap<String, (i64, i64, i64)> {
    rows(json, "total")
        .into_iter()
        .map(|r| {
            let key = r["key"].as_str().unwrap_or("-").to_string();
            let n = |k: &str| r[k].as_i64().unwrap();
            (key, (n("sessions"), n("connected_secs"), n("peak")))
        })
        .collect()
}

/// `(start, end)` of the `ok` entries of a default-format log per user,
/// read here with a plain split (not by the code under test).
fn intervals(log: &Path) -> BTreeMap<String, Vec<(i64, i64)>> {
    let mut m: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for l in lines(log) {
        let f: Vec<&str> = l.split('|').collect();
        if f[7] != "ok" {
            continue;
        }
        let s = parse_local_text(f[0]).unwrap().0;
        let e = parse_local_text(f[1]).unwrap().0;
        m.entry(f[9].to_string()).or_default().push((s, e));
    }
    m
}

fn union(iv: &[(i64, i64)]) -> i64 {
    let mut v = iv.to_vec();
    v.sort();
    let (mut total, mut cur) = (0, None::<(i64, i64)>);
    for (s, e) in v {
        cur = match cur {
            Some((cs, ce)) if s <= ce => Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                total += ce - cs;
                Some((s, e))
            }
            None => Some((s, e)),
        };
    }
    total + cur.map_or(0, |(s, e)| e - s)
}

/// Most intervals open at once; closed intervals (whole-second times: a
/// session that starts in the second another ends may have overlapped it).
fn peak(iv: &[(i64, i64)]) -> i64 {
    let mut ev: Vec<(i64, i64)> = iv.iter().flat_map(|&(s, e)| [(s, 0), (e, 1)]).collect();
    ev.sort();
    let (mut cur, mut best) = (0, 0);
    for (_, close) in ev {
        cur += if close == 0 { 1 } else { -1 };
        best = best.max(cur);
    }
    best
}

// ---------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------

/// Union, not sum; the refused connection is a session but not in totals;
/// the three input formats give the same totals (text entries have whole
/// seconds, JSON microseconds: connected time within a second).
#[test]
fn three_formats_union_not_sum() {
    let logs = record("report-formats");
    let iv = intervals(&logs.default);
    let frey = &iv["frey"];
    let sum: i64 = frey.iter().map(|(s, e)| e - s).sum();
    let want = union(frey);
    assert!(want < sum, "sessions must overlap: {frey:?}");

    let j = ok(&["--format", "json", p(&logs.default)]);
    let t = totals_json(&j);
    assert_eq!(t["frey"], (2, want, peak(frey)), "{j}");
    assert_eq!(peak(frey), 2);
    assert_eq!(t["ann"].0, 1);
    assert!(
        !t.contains_key("eve"),
        "a refused connection is not in totals"
    );
    let sessions = rows(&j, "session");
    assert_eq!(sessions.len(), 4);
    assert!(sessions.iter().any(|s| s["status"] == "refused"));
    let frey_total = &rows(&j, "total")[0];
    assert_eq!(frey_total["ips"], serde_json::json!(["127.0.0.1"]));
    assert_eq!(
        frey_total["hosts"],
        serde_json::json!(["login01", "login02"])
    );

    let c = ok(&["--format", "json", "-C", CUSTOM_FMT, p(&logs.custom)]);
    let js = ok(&["--format", "json", p(&logs.json)]);
    for other in [totals_json(&c), totals_json(&js)] {
        assert_eq!(
            other.keys().collect::<Vec<_>>(),
            t.keys().collect::<Vec<_>>()
        );
        for (k, (n, secs, peak)) in &t {
            let (n2, secs2, peak2) = other[k];
            assert_eq!((n2, peak2), (*n, *peak), "{k}");
            assert!((secs2 - secs).abs() <= 1, "{k}: {secs2} vs {secs}");
        }
    }
    // the custom log also has the service, the JSON log everything
    let by_service = totals_json(&ok(&["--format", "json", "--by", "service", p(&logs.json)]));
    assert_eq!(by_service.keys().collect::<Vec<_>>(), ["MLM"]);
    assert_eq!(by_service["MLM"].0, 3);
    // all three logs at once, mixed: 10 sessions, 9 of them counted
    let all = ok(&[
        "--format",
        "json",
        "-C",
        CUSTOM_FMT,
        p(&logs.custom),
        p(&logs.json),
        p(&logs.default),
    ]);
    assert_eq!(rows(&all, "session").len(), 10);
    assert_eq!(totals_json(&all)["frey"].0, 6);
    let starts: Vec<String> = rows(&all, "session")
        .iter()
        .map(|s| s["start"].as_str().unwrap().to_string())
        .collect();
    let mut sorted = starts.clone();
    sorted.sort();
    assert_eq!(starts, sorted, "sessions in time order across files");
}

/// A log rotated into `conn.log.1.gz` (gzip, told by content) plus the
/// live `conn.log` give what the single file gave; order of the
/// arguments does not matter.
#[test]
fn gzip_rotated_logs() {
    let logs = record("report-gzip");
    let whole = ok(&["--format", "json", p(&logs.default)]);
    let all = lines(&logs.default);
    let rotated = logs.dir.join("conn.log.1.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for l in &all[..2] {
        writeln!(gz, "{l}").unwrap();
    }
    std::fs::write(&rotated, gz.finish().unwrap()).unwrap();
    let live = logs.dir.join("live.log");
    std::fs::write(
        &live,
        all[2..]
            .iter()
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
    )
    .unwrap();
    let split = ok(&["--format", "json", p(&live), p(&rotated)]);
    assert_eq!(split, whole);
    // a rotated file without the .gz name is still read as gzip
    let renamed = logs.dir.join("old-log");
    std::fs::copy(&rotated, &renamed).unwrap();
    assert_eq!(
        rows(&ok(&["--format", "json", p(&renamed)]), "session").len(),
        2
    );
}

/// `--by` keys, and `--from`/`--to` clipping the totals.
#[test]
fn by_keys_and_window() {
    let logs = record("report-by");
    let iv = intervals(&logs.default);
    let by_ip = totals_json(&ok(&["--format", "json", "--by", "ip", p(&logs.default)]));
    let everything: Vec<(i64, i64)> = iv.values().flatten().copied().collect();
    assert_eq!(
        by_ip["127.0.0.1"],
        (3, union(&everything), peak(&everything))
    );
    let by_host = totals_json(&ok(&["--format", "json", "--by", "host", p(&logs.default)]));
    assert_eq!(
        by_host.keys().collect::<Vec<_>>(),
        ["login01", "login02", "pc7"]
    );
    let by_program = totals_json(&ok(&[
        "--format",
        "json",
        "--by",
        "program",
        p(&logs.default),
    ]));
    assert_eq!(
        by_program.keys().collect::<Vec<_>>(),
        ["-"],
        "no program: one unknown key"
    );

    // a window from one second after frey's first start to one second
    // before his last end
    let frey = &iv["frey"];
    let from = frey.iter().map(|x| x.0).min().unwrap() + 1;
    let to = frey.iter().map(|x| x.1).max().unwrap() - 1;
    let text = |secs: i64| {
        let off = lines(&logs.default)[0][19..25].to_string();
        let (_, o) = parse_local_text(&format!("2000-01-01 00:00:00{off}")).unwrap();
        local_text(secs, o).replace(' ', "T")
    };
    let clipped: Vec<(i64, i64)> = frey
        .iter()
        .map(|&(s, e)| (s.max(from), e.min(to)))
        .collect();
    let j = ok(&[
        "--format",
        "json",
        "--from",
        &text(from),
        "--to",
        &text(to),
        p(&logs.default),
    ]);
    let t = totals_json(&j);
    assert_eq!(t["frey"].1, union(&clipped));
    assert_eq!(t["frey"].0, 2);
    let first = rows(&j, "total")
        .into_iter()
        .find(|r| r["key"] == "frey")
        .unwrap();
    assert_eq!(first["first"].as_str().unwrap(), text(from).as_str());
    // a window after everything keeps nothing
    let late = ok(&["--format", "json", "--from", "2100-01-01", p(&logs.default)]);
    assert!(late.is_empty(), "{late}");
    // local times without an offset, in the zone of TZ
    let out = report_env(
        &[
            "--format",
            "json",
            "--from",
            "2000-01-01 00:00",
            p(&logs.default),
        ],
        &[("TZ", "UTC")],
    );
    assert_eq!(
        rows(&String::from_utf8_lossy(&out.stdout), "session").len(),
        4
    );
}

/// Text, CSV, JSON and HTML of one log show the same rows and numbers.
#[test]
fn four_outputs_same_numbers() {
    let logs = record("report-outputs");
    let log = p(&logs.default);
    let j = ok(&["--format", "json", log]);
    let want: Vec<Vec<String>> = rows(&j, "total")
        .iter()
        .map(|r| {
            ["key", "sessions", "connected_secs", "peak"]
                .iter()
                .map(|k| match &r[*k] {
                    J::String(s) => s.clone(),
                    v => v.to_string(),
                })
                .collect()
        })
        .collect();
    assert_eq!(want.len(), 2);

    // CSV: the totals table, columns by its header
    let csv = ok(&["--format", "csv", log]);
    let tables: Vec<&str> = csv.split("\n\n").collect();
    assert_eq!(tables.len(), 2, "{csv}");
    let mut t = tables[1].lines();
    let head: Vec<&str> = t.next().unwrap().split(',').collect();
    let col = |name: &str| head.iter().position(|h| *h == name).unwrap();
    let got: Vec<Vec<String>> = t
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            ["key", "sessions", "connected_secs", "peak"]
                .iter()
                .map(|k| f[col(k)].to_string())
                .collect()
        })
        .collect();
    assert_eq!(got, want, "csv");
    assert_eq!(tables[0].lines().count(), 1 + 4, "sessions table");

    // text: the totals table, by column position of its header
    let text = ok(&["--format", "text", log]);
    let block = text.split("Totals by user\n").nth(1).unwrap();
    let mut tl = block.lines();
    let head: Vec<&str> = tl.next().unwrap().split_whitespace().collect();
    let col = |name: &str| head.iter().position(|h| *h == name).unwrap();
    let got: Vec<Vec<String>> = tl
        .take(2)
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // FIRST, LAST and PEAK_AT are two words each
            let at = |name: &str| {
                let i = col(name);
                let shift = head[..i]
                    .iter()
                    .filter(|h| ["FIRST", "LAST", "PEAK_AT"].contains(h))
                    .count();
                f[i + shift].to_string()
            };
            vec![at("KEY"), at("SESSIONS"), at("CONNECTED_SECS"), at("PEAK")]
        })
        .collect();
    assert_eq!(got, want, "text:\n{text}");

    // HTML: the totals table's cells
    let html = ok(&["--format", "html", log]);
    let table = html.split("<h2>Totals by user</h2>").nth(1).unwrap();
    let table = &table[..table.find("</table>").unwrap()];
    let got: Vec<Vec<String>> = table
        .split("<tr>")
        .skip(2)
        .map(|row| {
            let cells: Vec<String> = row
                .split("<td")
                .skip(1)
                .map(|c| {
                    let c = &c[c.find('>').unwrap() + 1..];
                    c[..c.find("</td>").unwrap()].to_string()
                })
                .collect();
            vec![
                cells[1].clone(),
                cells[2].clone(),
                cells[3].clone(),
                cells[8].clone(),
            ]
        })
        .collect();
    assert_eq!(got, want, "html");
    // -o writes the same bytes as standard output
    let out = logs.dir.join("r.html");
    assert_eq!(ok(&["--format", "html", "-o", p(&out), log]), "");
    assert!(
        std::fs::read_to_string(&out).unwrap() == html,
        "-o and stdout differ"
    );
}

/// The HTML page in a real browser: Chromium's DOM has the charts' SVG
/// elements and their paths; the page loads nothing from outside.
#[test]
fn html_renders_in_chromium() {
    if !need_tool("chromium", "rendering the HTML report") {
        return;
    }
    let logs = record("report-chromium");
    let page = logs.dir.join("report.html");
    ok(&["--format", "html", "-o", p(&page), p(&logs.default)]);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));
    let profile = logs.dir.join("chromium-profile");
    let mut c = Command::new("chromium");
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        &format!("--user-data-dir={}", p(&profile)),
        "--dump-dom",
        &format!("file://{}", p(&page)),
    ]);
    let out = run_limited(c, b"", Duration::from_secs(90)).unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dom.matches("<svg").count() >= 2, "{dom}");
    assert!(dom.matches("<path").count() + dom.matches("<polyline").count() >= 2);
    assert!(dom.contains("<rect"), "bars of connected time");
    assert!(dom.contains("Concurrent connections"));
    assert!(dom.contains(">frey<"));
}

/// A FlexNet debug log written here, in UTC, with checkouts during the
/// recorded sessions: the CLI passes `--flexlm-log`/`--log-tz` through and
/// every format shows the checkout with the client IP.
#[test]
fn flexlm_log_rows_in_every_format() {
    let logs = record("report-flexlm");
    let iv = intervals(&logs.default);
    let (s, e) = iv["ann"][0];
    let frey_start = iv["frey"].iter().map(|x| x.0).min().unwrap();
    let clock = |secs: i64| {
        let d = secs.rem_euclid(86_400);
        format!("{:2}:{:02}:{:02}", d / 3600, d % 3600 / 60, d % 60)
    };
    let date = local_text(frey_start, 0);
    let (y, m, d) = (&date[0..4], &date[5..7], &date[8..10]);
    let debug = logs.dir.join("lmgrd.log");
    std::fs::write(
        &debug,
        format!(
            "{} (lmgrd) TIMESTAMP {}/{}/{y}\n\
             {} (MLM) OUT: \"MATLAB\" frey@login01  \n\
             {} (MLM) OUT: \"MATLAB\" ann@pc7  \n\
             {} (MLM) IN: \"MATLAB\" ann@pc7  \n",
            clock(s - 60),
            m.trim_start_matches('0'),
            d.trim_start_matches('0'),
            clock(frey_start),
            clock(s),
            clock(e),
        ),
    )
    .unwrap();
    let args = |fmt: &'static str| -> Vec<String> {
        [
            "--flexlm-log",
            p(&debug),
            "--log-tz",
            "UTC",
            "--format",
            fmt,
            p(&logs.default),
        ]
        .iter()
        .map(|x| x.to_string())
        .collect()
    };
    let run = |fmt: &'static str| {
        let a = args(fmt);
        let out = report(&a.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(stderr(&out).contains("clock offset"), "{}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    let j = run("json");
    let co = rows(&j, "checkout");
    assert_eq!(co.len(), 2, "{j}");
    let ann = co.iter().find(|c| c["user"] == "ann").unwrap();
    assert_eq!(ann["client_ip"], "127.0.0.1");
    assert_ne!(ann["match"], "none");
    assert_eq!(ann["secs"].as_i64(), Some(e - s));
    let frey = co.iter().find(|c| c["user"] == "frey").unwrap();
    assert_eq!(frey["in"], J::Null);
    assert_eq!(rows(&j, "peak").len(), 1);
    let csv = run("csv");
    assert!(csv.contains("\ntype,daemon,feature,user,host,cdstring,licenses,out,in,secs,reason,client_ip,conn,match\n"));
    assert!(csv.contains(&format!(
        "\ncheckout,MLM,MATLAB,ann,pc7,,1,{},",
        ann["out"].as_str().unwrap()
    )));
    let text = run("text");
    assert!(text.contains("Clock offset:"), "{text}");
    assert!(text.contains("Checkouts\n"));
    assert!(
        text.lines()
            .any(|l| l.starts_with("MLM ") && l.contains(" ann ") && l.contains("127.0.0.1"))
    );
    let html = run("html");
    assert!(html.contains("<h2>Checkouts</h2>") && html.contains("<td>pc7</td>"));
    assert!(html.contains("Licenses out per feature"));
    // by feature: one row, MATLAB, two checkouts
    let a = args("json");
    let mut a: Vec<&str> = a.iter().map(String::as_str).collect();
    a.splice(0..0, ["--by", "feature"]);
    let t = totals_json(&ok(&a));
    assert_eq!(t.keys().collect::<Vec<_>>(), ["MATLAB"]);
    assert_eq!(t["MATLAB"].0, 2);
    // a zone that does not exist is a usage error
    let bad = report(&[
        "--flexlm-log",
        p(&debug),
        "--log-tz",
        "Mars/Olympus",
        p(&logs.default),
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("--log-tz"), "{}", stderr(&bad));
}

/// Bad input: clear messages, the right exit status, never a panic.
#[test]
fn bad_input() {
    let dir = tmpdir("report-bad");
    let missing = dir.join("missing.log");
    let o = report(&[p(&missing)]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "ipprotreport: {}: cannot open: No such file or directory (os error 2)\n",
            p(&missing)
        )
    );
    assert!(o.stdout.is_empty());

    let good = "2026-11-23 21:30:05+01:00|2026-11-23 21:30:07+01:00|2|10.0.0.9|40000|147|53|ok|flexlm|frey|login01|/dev/pts/73|35174|-";
    let mixed = dir.join("mixed.log");
    std::fs::write(
        &mixed,
        format!("{good}\nnot an entry\n{{\"start_us\":\"x\"}}\n{good}\n"),
    )
    .unwrap();
    let o = report(&["--format", "json", p(&mixed)]);
    assert_eq!(o.status.code(), Some(0));
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "{}:2: skipped: does not match the format",
            p(&mixed)
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{}:3: skipped: \"start_us\" is not a number",
            p(&mixed)
        )),
        "{err}"
    );
    assert_eq!(
        rows(&String::from_utf8_lossy(&o.stdout), "session").len(),
        2
    );

    let garbage = dir.join("garbage.bin");
    std::fs::write(&garbage, random_bytes(200_000, 7)).unwrap();
    let o = report(&[p(&garbage)]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("no connection-log entries in this file"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).lines().count() <= 13,
        "warnings are bounded per file"
    );

    let broken_gz = dir.join("conn.log.2.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for _ in 0..1000 {
        writeln!(gz, "{good}").unwrap();
    }
    let bytes = gz.finish().unwrap();
    std::fs::write(&broken_gz, &bytes[..bytes.len() / 2]).unwrap();
    let o = report(&[p(&broken_gz)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with(&format!("ipprotreport: {}: cannot read: ", p(&broken_gz))),
        "{}",
        stderr(&o)
    );

    let o = report(&[p(&dir)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cannot read: Is a directory"));

    // a debug log of another product: a warning, no rows, exit 0
    let other = dir.join("httpd.log");
    std::fs::write(
        &other,
        "127.0.0.1 - - [23/Nov/2026:21:30:05 +0100] \"GET / HTTP/1.1\" 200 12\n",
    )
    .unwrap();
    let o = report(&["--flexlm-log", p(&other), "--format", "json", p(&mixed)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("is it a FlexNet debug log?"),
        "{}",
        stderr(&o)
    );
    assert!(rows(&String::from_utf8_lossy(&o.stdout), "checkout").is_empty());
    let o = report(&["--flexlm-log", p(&missing), p(&mixed)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains(&format!("{}: cannot open", p(&missing))));

    // usage errors name the option, exit 2
    for (args, msg) in [
        (vec![], "no connection log given"),
        (vec!["--by", "dept", p(&mixed)], "--by: 'dept'"),
        (
            vec!["--by", "feature", p(&mixed)],
            "--by feature needs --flexlm-log",
        ),
        (
            vec!["--from", "soon", p(&mixed)],
            "--from: 'soon' is not a time",
        ),
        (
            vec!["-C", "%s %q", p(&mixed)],
            "-C: unknown escape '%q' at column 4",
        ),
        (vec!["--format", "pdf", p(&mixed)], "--format: 'pdf'"),
        (vec!["--nope", p(&mixed)], "unknown option --nope"),
    ] {
        let o = report(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = stderr(&o);
        assert!(
            err.starts_with(&format!("ipprotreport: {msg}")),
            "{args:?}: {err}"
        );
        assert!(err.contains("usage: ipprotreport "), "{err}");
    }
    // an output that cannot be created
    let o = report(&["-o", p(&dir.join("no/such/dir/r.txt")), p(&mixed)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("-o: cannot create"), "{}", stderr(&o));
    // help and version
    let h = ok(&["--help"]);
    assert!(h.starts_with("usage: ipprotreport "));
    assert!(ok(&["-v"]).starts_with("ipprotreport "));
}
