//! ipprotd's own syslog client, against a datagram socket the test binds
//! (`--syslog-socket`): a log daemon that cannot be reached is told on
//! standard error at start and once per episode, what was lost is
//! counted in the next message that gets through, and a daemon's
//! `--verbose` lines ("listening on", open, close, dumps) reach syslog
//! with facility daemon and ident `ipprotd[PID]`.

use crate::harness::*;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::Path;

/// `<30>`: facility daemon (3), severity info (6).
const DAEMON_INFO: &str = "<30>";
/// `<28>`: facility daemon, severity warning (4).
const DAEMON_WARNING: &str = "<28>";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn bind(path: &Path) -> UnixDatagram {
    let _ = std::fs::remove_file(path);
    let u = UnixDatagram::bind(path).unwrap();
    u.set_read_timeout(Some(DEADLINE)).unwrap();
    u
}

/// The next datagram, split into PRI, `ipprotd[PID]` and the message.
fn recv(u: &UnixDatagram) -> (String, i32, String) {
    let mut b = vec![0u8; 65536];
    let n = u
        .recv(&mut b)
        .expect("no syslog message within the deadline");
    let m = String::from_utf8_lossy(&b[..n]).into_owned();
    // <PRI>Mmm dd HH:MM:SS ipprotd[PID]: MSG
    let close = m.find('>').unwrap_or_else(|| panic!("{m}"));
    let pri = m[..=close].to_string();
    let rest = &m[close + 1..];
    assert_eq!(rest.as_bytes()[15], b' ', "BSD time stamp in {m}");
    let tagged = rest[16..]
        .strip_prefix("ipprotd[")
        .unwrap_or_else(|| panic!("no ident in {m}"));
    let (pid, msg) = tagged.split_once("]: ").unwrap_or_else(|| panic!("{m}"));
    (pri, pid.parse().unwrap(), msg.to_string())
}

fn echo_once(addr: SocketAddr) {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(DEADLINE)).unwrap();
    c.write_all(b"hi").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut v = Vec::new();
    c.read_to_end(&mut v).unwrap();
    assert_eq!(v, b"hi");
}

fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

#[test]
fn losses_are_told_once_per_episode_and_counted() {
    let dir = tmpdir("syslog-loss");
    let sock = dir.join("log.sock");
    let log = dir.join("conn.log");
    let b = Backend::echo();
    let dest = b.dest();
    let mut d = Daemon::start(&[
        "-P",
        &dest,
        "-c",
        s(&log),
        "--syslog",
        "--syslog-socket",
        s(&sock),
    ]);
    let start = format!(
        "ipprotd: --syslog: cannot reach the log daemon at {}: No such file or directory",
        sock.display()
    );
    assert!(d.stderr().contains(&start), "{}", d.stderr());

    // two entries lost: no second report in the same episode
    echo_once(d.addr);
    echo_once(d.addr);
    wait_lines(&log, 2);
    // a child writes its entry to the file before it tries syslog: the
    // log daemon must appear only after both children tried (and ended)
    assert!(
        wait_until(DEADLINE, || children(d.pid()).is_empty()),
        "connection children did not end"
    );
    assert_eq!(
        count(&d.stderr(), "are lost (and counted)"),
        1,
        "{}",
        d.stderr()
    );

    // the log daemon appears: first the count, then the entry
    let u = bind(&sock);
    echo_once(d.addr);
    let entries = wait_lines(&log, 3);
    let (pri, pid, msg) = recv(&u);
    assert_eq!(pri, DAEMON_WARNING);
    assert_eq!(
        msg,
        format!(
            "syslog: 2 messages were lost while {} could not be reached",
            sock.display()
        )
    );
    let (pri, pid2, msg) = recv(&u);
    assert_eq!((pri.as_str(), pid2), (DAEMON_INFO, pid));
    assert_eq!(msg, entries[2]);
    assert_ne!(pid, d.pid(), "entries come from the connection's child");

    // the log daemon goes away again: a new episode, told once more
    drop(u);
    std::fs::remove_file(&sock).unwrap();
    echo_once(d.addr);
    wait_lines(&log, 4);
    let again = format!("ipprotd: syslog: cannot send to {}", sock.display());
    assert!(d.wait_stderr(&again), "{}", d.stderr());
    let u = bind(&sock);
    echo_once(d.addr);
    let entries = wait_lines(&log, 5);
    assert_eq!(
        recv(&u).2,
        format!(
            "syslog: 1 message was lost while {} could not be reached",
            sock.display()
        )
    );
    assert_eq!(recv(&u).2, entries[4]);
    assert_eq!(
        count(&d.stderr(), "are lost (and counted)"),
        2,
        "{}",
        d.stderr()
    );
    d.term();
}

#[test]
fn daemon_verbose_lines_reach_syslog() {
    set_subreaper();
    let dir = tmpdir("syslog-daemon");
    let sock = dir.join("log.sock");
    let pf = dir.join("ipprotd.pid");
    let u = bind(&sock);
    let b = Backend::echo();
    let dest = b.dest();
    let out = run(&[
        "-Dp",
        s(&pf),
        "-p",
        "0@127.0.0.1",
        "-P",
        &dest,
        "--verbose",
        "--syslog-socket",
        s(&sock),
    ]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{err}");
    let pid: i32 = std::fs::read_to_string(&pf)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // the starter shows where it listens; the daemon tells its syslog
    let addr: SocketAddr = err
        .lines()
        .find_map(|l| l.strip_prefix("ipprotd: listening on "))
        .unwrap_or_else(|| panic!("{err}"))
        .parse()
        .unwrap();
    let (pri, from, msg) = recv(&u);
    assert_eq!(
        (pri.as_str(), from, msg.as_str()),
        (DAEMON_INFO, pid, format!("listening on {addr}").as_str())
    );

    echo_once(addr);
    let mut got = Vec::new();
    while !got.iter().any(|m: &String| m.starts_with("close 1 ")) {
        let (pri, from, msg) = recv(&u);
        assert_eq!(pri, DAEMON_INFO, "{msg}");
        assert_ne!(from, pid, "per-connection lines come from the child");
        got.push(msg);
    }
    assert!(got[0].starts_with("open 1 127.0.0.1:"), "{got:?}");
    assert!(
        got.iter()
            .any(|m| m.starts_with("conn 1: first client packet, 2 bytes:")),
        "{got:?}"
    );
    assert!(got.last().unwrap().contains(" ok in 2 out 2 "), "{got:?}");

    signal(pid, libc::SIGTERM);
    let st = reap_pid(pid, DEADLINE).expect("daemon did not exit after SIGTERM");
    assert!(
        matches!(st, nix::sys::wait::WaitStatus::Exited(_, 0)),
        "daemon ended with {st:?}"
    );
}
