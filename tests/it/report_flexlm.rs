//! `ipprotreport --flexlm-log` end to end, row by row: connection logs
//! written by two real ipprotd (one on 127.0.0.1, one on ::1) in front of
//! a FLEXlm-speaking backend (client HELLO per IDENTIFY.md FL1, lmgrd's
//! reply FL6), and a debug log written here in the real layouts (BOM,
//! CRLF, one-digit hours, a start line and TIMESTAMP, quoted and unquoted
//! features, `[cdstring]`, `(N licenses)`, `(INACTIVE)`/`(SHUTDOWN)`,
//! REMOVING, DENIED and a false denial, UNSUPPORTED, SERVER-OUT and SLOG
//! lines that are not checkouts) whose times are the connections' own,
//! seen through a license-server clock that is deliberately off, in the
//! server's zone (`--log-tz`). Checked: each match kind with its IP and
//! connection, the estimated offset applied to every time, reasons,
//! denials, unsupported requests, the peak. Expected values come from the
//! entries the daemons wrote.

use crate::harness::*;
use crate::report::{report, rows, stderr};
use crate::vectors::{FL6, flexlm_client};

use std::net::SocketAddr;
use std::path::Path;
use std::thread;
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::Value as J;

const S: i64 = 1_000_000;
/// The license server's client takes this long from connecting to its
/// checkout.
const LATENCY_MS: i64 = 200;

/// One connection entry, read here from the log the daemon wrote.
#[derive(Clone, Debug)]
struct Entry {
    conn: Option<u64>,
    start_us: i64,
    end_us: i64,
    ip: String,
    user: String,
    host: String,
}

/// A FLEXlm client: after `delay` connects to `addr`, sends its HELLO,
/// reads lmgrd's reply, holds the connection for `hold`, closes.
fn client(
    addr: SocketAddr,
    user: &'static str,
    host: &'static str,
    delay: Duration,
    hold: Duration,
) -> thread::JoinHandle<()> {
    flexlm_client(addr, [user, host, "/dev/pts/4", "5150"], delay, hold)
}

/// The entries of a `-C json` log or a default-format log.
fn entries(log: &Path, json: bool) -> Vec<Entry> {
    lines(log)
        .iter()
        .map(|l| {
            if json {
                let v: J = serde_json::from_str(l).unwrap();
                Entry {
                    conn: v["conn"].as_u64(),
                    start_us: v["start_us"].as_i64().unwrap(),
                    end_us: v["end_us"].as_i64().unwrap(),
                    ip: v["client_ip"].as_str().unwrap().to_string(),
                    user: v["user"].as_str().unwrap().to_string(),
                    host: v["host"].as_str().unwrap().to_string(),
                }
            } else {
                let f: Vec<&str> = l.split('|').collect();
                Entry {
                    conn: None,
                    start_us: parse_local_text(f[0]).unwrap().0 * S,
                    end_us: parse_local_text(f[1]).unwrap().0 * S,
                    ip: f[3].to_string(),
                    user: f[9].to_string(),
                    host: f[10].to_string(),
                }
            }
        })
        .collect()
}

/// `h:mm:ss` (hour padded with a space) and `M/D/YYYY` of a debug-log
/// second in `tz`.
fn server_clock(secs: i64, tz: &TimeZone) -> (String, String) {
    let dt = tz.to_datetime(Timestamp::from_second(secs).unwrap());
    (
        format!("{:2}:{:02}:{:02}", dt.hour(), dt.minute(), dt.second()),
        format!("{}/{}/{}", dt.month(), dt.day(), dt.year()),
    )
}

fn time_us(v: &J) -> Option<i64> {
    v.as_str()
        .map(|s| s.parse::<Timestamp>().unwrap().as_microsecond())
}

/// Record the scenario, write the debug log with the server's clock
/// `skew_s` seconds behind the proxy's (negative: ahead) in `zone`, run the
/// report, check every row.
fn scenario(name: &str, skew_s: i64, zone: &str, json: bool) {
    if !need(have_ipv6_loopback(), "::1 is not available here")
        || !need(
            TimeZone::get(zone).is_ok(),
            "no zone database here (package tzdata)",
        )
    {
        return;
    }
    let dir = tmpdir(name);
    let server = Backend::answering(147, hex(FL6));
    let (log4, log6) = (dir.join("conn4.log"), dir.join("conn6.log"));
    let fmt: &[&str] = if json { &["-C", "json"] } else { &[] };
    let args = |log: &Path, bind: &str| -> Vec<String> {
        let mut a: Vec<String> = ["-p", bind, "-P", &server.dest(), "-c", p(log)]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.extend(fmt.iter().map(|s| s.to_string()));
        a
    };
    let a4 = args(&log4, "0@127.0.0.1");
    let a6 = args(&log6, "0@::1");
    let d4 = Daemon::start(&a4.iter().map(String::as_str).collect::<Vec<_>>());
    let d6 = Daemon::start(&a6.iter().map(String::as_str).collect::<Vec<_>>());
    let ms = Duration::from_millis;
    let (v4, v6) = (d4.addr, d6.addr);
    let clients = [
        client(v4, "alice", "ws1", ms(0), ms(4500)),
        client(v4, "bob", "ws2", ms(0), ms(4500)),
        client(v4, "bob", "ws2", ms(400), ms(4100)),
        client(v4, "carol", "ws3", ms(100), ms(4400)),
        client(v6, "carol", "ws3", ms(600), ms(3900)),
        client(v4, "dave", "ws4", ms(200), ms(600)),
        client(v4, "eve", "ws5", ms(300), ms(4200)),
    ];
    for c in clients {
        c.join().unwrap();
    }
    assert_eq!(wait_lines(&log4, 6).len(), 6);
    assert_eq!(wait_lines(&log6, 1).len(), 1);
    drop((d4, d6));

    let mut all = entries(&log4, json);
    all.extend(entries(&log6, json));
    let one = |user: &str, ip: &str| -> Entry {
        let mut v: Vec<&Entry> = all
            .iter()
            .filter(|e| e.user == user && e.ip == ip)
            .collect();
        v.sort_by_key(|e| e.start_us);
        v.last().map(|e| (*e).clone()).unwrap()
    };
    let alice = one("alice", "127.0.0.1");
    let bob = one("bob", "127.0.0.1"); // the later of bob's two
    let carol6 = one("carol", "::1");
    let dave = one("dave", "127.0.0.1");
    let eve = one("eve", "127.0.0.1");
    assert_eq!((alice.host.as_str(), carol6.host.as_str()), ("ws1", "ws3"));

    // The license server's second for an instant of the proxy's clock.
    let dbg = |us: i64, after_ms: i64| (us + after_ms * 1000).div_euclid(S) - skew_s;
    let mut ev: Vec<(i64, String)> = vec![
        (dbg(alice.start_us, 100), "(MLM) SERVER-OUT: Failed to send the message(71) <END>".into()),
        (dbg(alice.start_us, LATENCY_MS), "(MLM) OUT: \"MATLAB\" alice@ws1  ".into()),
        (dbg(alice.start_us, 2500), "(MLM) IN: \"MATLAB\" alice@ws1  (INACTIVE)".into()),
        (dbg(bob.start_us, LATENCY_MS), "(MLM) OUT: \"MATLAB\" bob@ws2".into()),
        (dbg(carol6.start_us, LATENCY_MS), "(MLM) OUT: MATLAB carol@WS3 [grp A]".into()),
        (dbg(carol6.start_us, 3000), "(MLM) IN: MATLAB carol@WS3 [grp A] (SHUTDOWN)".into()),
        (
            dbg(eve.start_us, LATENCY_MS),
            "(MLM) DENIED: \"MATLAB\" eve@ws5  (License server system does not support this version of this feature. (-25,334))".into(),
        ),
        (dbg(eve.start_us, LATENCY_MS), "(MLM) OUT: \"MATLAB\" eve@ws5  (2 licenses)".into()),
        (
            dbg(eve.start_us, 1500),
            "(MLM) DENIED: \"SIMULINK\" eve@ws5  (Licensed number of users already reached. (-4,342))".into(),
        ),
        (
            dbg(eve.start_us, 1500),
            "(MLM) UNSUPPORTED: \"Signal_Toolbox\" (PORT_AT_HOST_PLUS ) eve@ws5  (No such feature exists. (-5,346))".into(),
        ),
        (dbg(eve.start_us, 1600), "(MLM) (@MLM-SLOG@) Statistics Log Frequency is 240 minute(s).".into()),
        (dbg(eve.start_us, 3000), "(MLM) REMOVING eve@ws5 from MATLAB".into()),
        // long after dave's connection closed: no candidate
        (dbg(dave.end_us, 30_000), "(MLM) OUT: \"MATLAB\" dave@ws4".into()),
    ];
    ev.sort_by_key(|e| e.0);
    let tz = TimeZone::get(zone).unwrap();
    let first = ev[0].0;
    let (t, date) = server_clock(first - 120, &tz);
    let mut text = format!(
        "\u{feff}{t} (lmgrd) FlexNet Licensing (v11.19.0.0 build 300000 x64_lsb) started on lic01 (linux) ({date})\r\n"
    );
    let (t, date) = server_clock(first - 60, &tz);
    text.push_str(&format!("{t} (lmgrd) TIMESTAMP {date}\r\n"));
    text.push_str("this line is not from a license server\r\n");
    for (secs, msg) in &ev {
        text.push_str(&format!("{} {msg}\r\n", server_clock(*secs, &tz).0));
    }
    let debug = dir.join("lmgrd.log");
    std::fs::write(&debug, &text).unwrap();
    let other = dir.join("catalina.out");
    std::fs::write(
        &other,
        "01-Dec-2026 10:00:00.123 INFO [main] Server startup\n",
    )
    .unwrap();

    let out = report(&[
        "--flexlm-log",
        p(&debug),
        "--flexlm-log",
        p(&other),
        "--log-tz",
        zone,
        "--format",
        "json",
        p(&log4),
        p(&log6),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let j = String::from_utf8(out.stdout).unwrap();
    assert!(
        err.contains(&format!("{}:3: not a debug-log line", p(&debug))),
        "{err}"
    );
    assert!(
        err.contains(&format!("{}: not a FlexNet debug log", p(&other))),
        "{err}"
    );

    // The offset: the true one, give or take the second the debug log
    // truncates to (the client checks out 0.2 s after connecting).
    let line = err
        .lines()
        .find(|l| l.contains("clock offset"))
        .unwrap_or_else(|| panic!("{err}"));
    let off: i64 = line
        .split_whitespace()
        .skip_while(|w| *w != "offset")
        .nth(1)
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(
        (off - skew_s).abs() <= 1,
        "estimated {off} s, true {skew_s} s: {line}"
    );
    let samples: usize = line
        .split_whitespace()
        .skip_while(|w| *w != "from")
        .nth(1)
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert_eq!(samples, 2, "the exact matches, alice and eve: {line}");
    let fixed = |secs: i64| (secs + off) * S;

    let co = rows(&j, "checkout");
    assert_eq!(co.len(), 5, "{j}");
    let outs: Vec<i64> = co.iter().map(|c| time_us(&c["out"]).unwrap()).collect();
    assert!(
        outs.windows(2).all(|w| w[0] <= w[1]),
        "sorted by time: {outs:?}"
    );
    let row = |user: &str| {
        co.iter()
            .find(|c| c["user"] == user)
            .unwrap_or_else(|| panic!("{user}: {j}"))
    };
    let ip_conn = |e: &Entry| (J::from(e.ip.clone()), e.conn.map_or(J::Null, J::from));
    let check = |user: &str, e: Option<&Entry>, kind: &str, out_s: i64, in_s: Option<i64>| {
        let c = row(user);
        assert_eq!(c["match"], kind, "{user}: {c:?}");
        let (ip, conn) = e.map_or((J::Null, J::Null), ip_conn);
        assert_eq!((&c["client_ip"], &c["conn"]), (&ip, &conn), "{user}: {c:?}");
        assert_eq!(time_us(&c["out"]), Some(fixed(out_s)), "{user}: {c:?}");
        assert_eq!(time_us(&c["in"]), in_s.map(fixed), "{user}: {c:?}");
        assert_eq!(c["secs"].as_i64(), in_s.map(|i| i - out_s), "{user}: {c:?}");
        assert_eq!(
            (&c["daemon"], &c["feature"]),
            (&J::from("MLM"), &J::from("MATLAB"))
        );
        c
    };
    // exact: alice's one connection, checked in after the TIMEOUT
    let c = check(
        "alice",
        Some(&alice),
        "exact",
        dbg(alice.start_us, LATENCY_MS),
        Some(dbg(alice.start_us, 2500)),
    );
    assert_eq!(
        (&c["reason"], &c["licenses"], &c["cdstring"], &c["host"]),
        (&J::from("INACTIVE"), &J::from(1), &J::Null, &J::from("ws1"))
    );
    // ip: two connections of bob, one IP; the later one; never checked in
    let c = check("bob", Some(&bob), "ip", dbg(bob.start_us, LATENCY_MS), None);
    assert_eq!(c["reason"], J::Null);
    // nearest: carol from 127.0.0.1 and ::1, the one opened last (host case ignored)
    let c = check(
        "carol",
        Some(&carol6),
        "nearest",
        dbg(carol6.start_us, LATENCY_MS),
        Some(dbg(carol6.start_us, 3000)),
    );
    assert_eq!(
        (&c["reason"], &c["cdstring"], &c["host"]),
        (&J::from("SHUTDOWN"), &J::from("grp A"), &J::from("WS3"))
    );
    // none: dave's connection had closed
    let c = check("dave", None, "none", dbg(dave.end_us, 30_000), None);
    assert_eq!(c["host"], "ws4");
    // exact, 2 licenses, removed by lmremove
    let c = check(
        "eve",
        Some(&eve),
        "exact",
        dbg(eve.start_us, LATENCY_MS),
        Some(dbg(eve.start_us, 3000)),
    );
    assert_eq!(
        (&c["reason"], &c["licenses"]),
        (&J::from("REMOVED"), &J::from(2))
    );

    let dn = rows(&j, "denial");
    assert_eq!(dn.len(), 2, "{j}");
    let eve_ip = J::from(eve.ip.clone());
    assert_eq!(dn[0]["feature"], "MATLAB");
    assert_eq!(dn[0]["false"], true, "an OUT followed in the same second");
    assert_eq!(
        time_us(&dn[0]["time"]),
        Some(fixed(dbg(eve.start_us, LATENCY_MS)))
    );
    assert_eq!(
        dn[0]["message"],
        "License server system does not support this version of this feature. (-25,334)"
    );
    assert_eq!(dn[1]["feature"], "SIMULINK");
    assert_eq!(dn[1]["false"], false);
    assert_eq!(
        time_us(&dn[1]["time"]),
        Some(fixed(dbg(eve.start_us, 1500)))
    );
    assert_eq!(
        dn[1]["message"],
        "Licensed number of users already reached. (-4,342)"
    );
    for d in &dn {
        assert_eq!(
            (&d["match"], &d["client_ip"]),
            (&J::from("exact"), &eve_ip),
            "{d:?}"
        );
        assert_eq!(
            (&d["user"], &d["host"], &d["daemon"]),
            (&J::from("eve"), &J::from("ws5"), &J::from("MLM"))
        );
    }

    let un = rows(&j, "unsupported");
    assert_eq!(un.len(), 1, "{j}");
    assert_eq!(
        (&un[0]["feature"], &un[0]["user"], &un[0]["host"]),
        (&J::from("Signal_Toolbox"), &J::from("eve"), &J::from("ws5"))
    );
    assert_eq!(un[0]["message"], "No such feature exists. (-5,346)");
    assert_eq!(
        time_us(&un[0]["time"]),
        Some(fixed(dbg(eve.start_us, 1500)))
    );

    // The peak, recomputed here from the checkout rows: licenses summed,
    // closed intervals (a checkout in the second of a check-in overlaps it).
    let mut sweep: Vec<(i64, i64)> = Vec::new();
    for c in &co {
        let n = c["licenses"].as_i64().unwrap();
        sweep.push((time_us(&c["out"]).unwrap(), n));
        if let Some(t) = time_us(&c["in"]) {
            sweep.push((t, -n));
        }
    }
    sweep.sort_by_key(|&(t, n)| (t, n < 0));
    let (mut cur, mut best, mut at) = (0, 0, 0);
    for (t, n) in sweep {
        cur += n;
        if cur > best {
            (best, at) = (cur, t);
        }
    }
    let pk = rows(&j, "peak");
    assert_eq!(pk.len(), 1, "{j}");
    assert_eq!(
        (&pk[0]["daemon"], &pk[0]["feature"]),
        (&J::from("MLM"), &J::from("MATLAB"))
    );
    assert_eq!(pk[0]["peak"].as_i64(), Some(best), "{j}");
    assert!(best >= 4, "alice, bob, carol and eve's two overlap: {best}");
    assert_eq!(time_us(&pk[0]["peak_at"]), Some(at), "{j}");
}

/// The license server 17 s behind, in India (+05:30); JSON entries.
#[test]
fn checkouts_joined_with_server_behind() {
    scenario("report-flexlm-behind", 17, "Asia/Kolkata", true);
}

/// The license server 25 s ahead, in New York; default-format entries
/// (whole seconds, no connection numbers).
#[test]
fn checkouts_joined_with_server_ahead() {
    scenario("report-flexlm-ahead", -25, "America/New_York", false);
}
