//! systemd socket activation and readiness, with systemd's own
//! `systemd-socket-activate` (it binds, then starts ipprotd with
//! `LISTEN_FDS=1`, `LISTEN_PID` = the pid it execs into, fd 3, once a
//! first connection or datagram arrives), a `NOTIFY_SOCKET` made by the
//! test, and `systemd-analyze verify` on the shipped units.
//!
//! Ports: systemd-socket-activate must bind itself. The test holds the
//! port with a [`closed_port`] guard (bound, never listening, with
//! SO_REUSEADDR, which systemd also sets), so no other test or ephemeral
//! choice can take it meanwhile; systemd-socket-activate may still bind
//! it.

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::process::Command;

use crate::harness::*;

/// `systemd-socket-activate [extra] -l 127.0.0.1:PORT -- ipprotd args`.
fn activate(port: u16, extra: &[&str], args: &[&str]) -> Watched {
    let mut c = Command::new("systemd-socket-activate");
    c.args(extra)
        .arg("-l")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--")
        .arg(BIN)
        .args(args);
    let w = Watched::spawn(c);
    assert!(
        w.wait_stderr(&format!("Listening on 127.0.0.1:{port}")),
        "systemd-socket-activate did not listen: {}",
        w.stderr()
    );
    w
}

#[test]
fn passed_listener_is_served() {
    if !need_tool("systemd-socket-activate", "socket activation tests") {
        return;
    }
    let dir = tmpdir("activate");
    let b = Backend::echo();
    let guard = closed_port();
    let log = dir.join("conn.log");
    // -p names another port: the passed socket is served instead
    let w = activate(
        guard.port(),
        &[],
        &[
            "-p",
            "1@127.0.0.1",
            "--verbose",
            "-P",
            &b.dest(),
            "-c",
            p(&log),
            "-C",
            ENTRY_FMT,
        ],
    );
    // the connection waits in the passed socket's backlog until ipprotd
    // has started and accepts it
    let mut s = connect(("127.0.0.1", guard.port()));
    assert_eq!(round_trip(&mut s, b"through fd 3", 12), b"through fd 3");
    finish(&mut s);
    assert!(
        w.wait_stderr(&format!("listening on 127.0.0.1:{}", guard.port())),
        "{}",
        w.stderr()
    );
    let entries = wait_lines(&log, 1);
    assert!(entries[0].starts_with("1 ok 12 12"), "{entries:?}");
}

#[test]
fn passed_datagram_socket_is_refused() {
    if !need_tool("systemd-socket-activate", "socket activation tests") {
        return;
    }
    let guard = closed_port();
    let mut w = activate(guard.port(), &["-d"], &["-P", "1@127.0.0.1"]);
    // in datagram mode the program starts with the first datagram
    let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    u.send_to(b"x", ("127.0.0.1", guard.port())).unwrap();
    let st = w.wait_exit().expect("ipprotd did not exit");
    assert_eq!(st.code(), Some(1), "{}", w.stderr());
    // the exit can be seen before the stderr collector has read the line
    w.wait_stderr("socket type Datagram");
    let err = w.stderr();
    assert!(
        err.contains(
            "ipprotd: LISTEN_FDS: descriptor 3 is not a TCP listening socket: socket type Datagram"
        ),
        "{err}"
    );
    assert_eq!(err.matches("ipprotd:").count(), 1, "{err}");
}

#[test]
fn listen_pid_of_another_process_is_ignored() {
    let b = Backend::echo();
    let d = Daemon::start_with(
        &["-P", &b.dest()],
        None,
        &[("LISTEN_PID", "1"), ("LISTEN_FDS", "1")],
    );
    d.echo(b"bound by itself");
    let err = d.stderr();
    assert!(
        err.contains("ipprotd: LISTEN_PID=1 is not this process ("),
        "{err}"
    );
    assert!(err.contains("ignoring LISTEN_FDS, binding -p"), "{err}");
}

#[test]
fn notify_socket_gets_ready() {
    let dir = tmpdir("notify");
    let path = dir.join("notify.sock");
    let u = UnixDatagram::bind(&path).unwrap();
    u.set_read_timeout(Some(DEADLINE)).unwrap();
    let b = Backend::echo();
    let d = Daemon::start_with(&["-P", &b.dest()], None, &[("NOTIFY_SOCKET", p(&path))]);
    let mut buf = [0u8; 512];
    let n = u.recv(&mut buf).expect("no READY=1 within the deadline");
    let msg = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(msg.contains("READY=1"), "{msg}");
    assert!(msg.contains(&format!("MAINPID={}", d.pid())), "{msg}");
    // it serves by then
    d.echo(b"ready");
}

#[test]
fn units_verify() {
    if !need_tool("systemd-analyze", "systemd unit verification") {
        return;
    }
    let dir = tmpdir("units");
    let units = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/systemd");
    // an instance of each template (the socket instance names its port),
    // and an ExecStart that exists here
    for (from, to) in [
        ("ipprotd@.service", "ipprotd@1726.service"),
        ("ipprotd@.socket", "ipprotd@1726.socket"),
    ] {
        let text = std::fs::read_to_string(format!("{units}/{from}")).unwrap();
        let text = text.replace("/usr/bin/ipprotd", BIN);
        std::fs::File::create(dir.join(to))
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg("--man=no")
        .arg(dir.join("ipprotd@1726.socket"))
        .arg(dir.join("ipprotd@1726.service"))
        .env("SYSTEMD_LOG_LEVEL", "warning")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && err.contains("Failed to initialize manager") {
        skip(&format!("systemd-analyze verify cannot run here: {err}"));
        return;
    }
    // only our units are judged (the host's own units may warn)
    let ours: Vec<&str> = err.lines().filter(|l| l.contains("ipprotd@")).collect();
    assert!(ours.is_empty() && out.status.success(), "{err}");
}
