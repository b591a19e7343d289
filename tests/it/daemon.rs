//! Daemon mode (`-D`, `-Dp`): the pid file life cycle, SIGTERM to the
//! parent (exit 0, pid file removed, open connections finish), live and
//! stale pid files, paths relative to the start directory, reaping, and
//! SIGTERM to a child. The test process makes itself the subreaper of the
//! detached daemons so that it can collect their exit status.

use crate::harness::*;
use nix::sys::wait::WaitStatus;
use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The entry format of these tests.
const FMT: &str = "%c %x %b %B";

/// Kills (SIGKILL) and reaps the daemons a test started, even when the
/// test fails: the pid in the pid file and any pids added, if they are
/// still `ipprotd` processes.
struct Guard {
    pidfile: PathBuf,
    pids: Vec<i32>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut pids = self.pids.clone();
        if let Some(p) = read_pid(&self.pidfile) {
            pids.push(p);
        }
        // only our own: reparented to this test process (the subreaper)
        // or a child of one of them, so that a reused pid is never hit
        let me = std::process::id() as i32;
        let ours = |p: i32| ppid(p).is_some_and(|pp| pp == me || pids.contains(&pp));
        let mine: Vec<i32> = pids
            .iter()
            .copied()
            .filter(|p| comm(*p).as_deref() == Some("ipprotd") && ours(*p))
            .collect();
        for pid in mine {
            signal(pid, libc::SIGKILL);
            // collects the orphans reparented to us
            let _ = reap_pid(pid, Duration::from_secs(5));
        }
    }
}

/// One test's set-up: this process as the subreaper, a directory with the
/// pid file `ipprotd.pid` and the connection log `conn.log`, the guard of
/// the daemons started, and an echo backend.
struct Fixture {
    dir: PathBuf,
    pf: PathBuf,
    log: PathBuf,
    g: Guard,
    b: Backend,
}

fn fixture(name: &str) -> Fixture {
    set_subreaper();
    let dir = tmpdir(name);
    let pf = dir.join("ipprotd.pid");
    Fixture {
        log: dir.join("conn.log"),
        g: Guard {
            pidfile: pf.clone(),
            pids: Vec::new(),
        },
        b: Backend::echo(),
        dir,
        pf,
    }
}

impl Fixture {
    /// Start `ipprotd -Dp PIDFILE -p PORT@127.0.0.1 -P BACKEND` plus
    /// `-c LOG -C fmt` (with a `fmt`), detached; the listen port (held
    /// closed for the test) and the daemon's pid from the pid file.
    fn start_dp(&mut self, fmt: Option<&str>) -> (ClosedPort, i32) {
        let dest = self.b.dest();
        let mut args = vec!["-Dp", p(&self.pf), "-P", &dest];
        if let Some(f) = fmt {
            args.extend(["-c", p(&self.log), "-C", f]);
        }
        let port = start_detached(&args, None);
        let pid = pid_in(&self.pf);
        self.g.pids.push(pid);
        (port, pid)
    }
}

fn read_pid(f: &Path) -> Option<i32> {
    std::fs::read_to_string(f).ok()?.trim().parse().ok()
}

/// The pid in the pid file, which must hold `<decimal pid>\n` as soon as
/// the starting process has exited (start scripts run `kill $(cat f)`
/// right after it).
fn pid_in(f: &Path) -> i32 {
    let t = std::fs::read_to_string(f).unwrap_or_default();
    t.strip_suffix('\n')
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse::<i32>().ok())
        .unwrap_or_else(|| panic!("pid file {} holds {t:?} after the start", f.display()))
}

/// Start a detached ipprotd with `args` and `-p PORT@127.0.0.1` on a port
/// held for the test; the starting process must exit 0.
fn start_detached(args: &[&str], cwd: Option<&Path>) -> ClosedPort {
    let port = closed_port();
    let listen = port.dest();
    let mut v = vec!["-p", &listen];
    v.extend_from_slice(args);
    let out = run_in(&v, cwd);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{v:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    port
}

fn echo_once(port: u16, m: &[u8]) {
    assert_eq!(exchange(&mut connect(("127.0.0.1", port)), m), m);
}

/// Nothing listens on `port` any more.
fn assert_refused(port: u16) {
    let e = TcpStream::connect(("127.0.0.1", port)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "still listening");
}

/// Wait for `pid` (ours to reap) to exit 0.
fn reaped_with_0(pid: i32, what: &str) {
    let st = reap_pid(pid, DEADLINE).unwrap_or_else(|| panic!("{what} did not exit"));
    assert!(
        matches!(st, WaitStatus::Exited(_, 0)),
        "{what} ended with {st:?}"
    );
}

/// SIGTERM to a detached parent: it exits 0 (we reap it as subreaper).
fn term_and_reap(pid: i32) {
    signal(pid, libc::SIGTERM);
    reaped_with_0(pid, "daemon after SIGTERM");
}

/// Connect to `port`, send `m` and read its echo; the one child of `pid`
/// now serves it (added to the guard).
fn open_connection(g: &mut Guard, port: u16, pid: i32, m: &[u8]) -> (TcpStream, i32) {
    let mut s = connect(("127.0.0.1", port));
    echo_round(&mut s, m);
    let kids = children(pid);
    assert_eq!(kids.len(), 1, "children of {pid}: {kids:?}");
    g.pids.extend(&kids);
    (s, kids[0])
}

#[test]
fn pid_file_life_cycle() {
    let mut f = fixture("daemon-cycle");
    let (port, pid) = f.start_dp(Some(FMT));
    assert_eq!(comm(pid).as_deref(), Some("ipprotd"));
    assert_ne!(proc_state(pid), Some('Z'));
    // detached: its own session, working directory /
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap(),
        PathBuf::from("/")
    );
    echo_once(port.port(), b"hello");
    assert_eq!(wait_lines(&f.log, 1), vec!["1 ok 5 5"]);
    term_and_reap(pid);
    assert!(!f.pf.exists(), "pid file left after SIGTERM");
    assert_refused(port.port());
}

#[test]
fn plain_d_detaches() {
    let mut f = fixture("daemon-plain");
    let dest = f.b.dest();
    let port = start_detached(&["-D", "-P", &dest, "-c", p(&f.log), "-C", "%c %x"], None);
    let mut pids = Vec::new();
    assert!(wait_until(DEADLINE, || {
        pids = ipprotd_pids_with_arg(p(&f.log));
        !pids.is_empty()
    }));
    f.g.pids = pids.clone();
    assert_eq!(pids.len(), 1, "{pids:?}");
    echo_once(port.port(), b"x");
    assert_eq!(wait_lines(&f.log, 1), vec!["1 ok"]);
    term_and_reap(pids[0]);
}

#[test]
fn open_connection_survives_parent_sigterm() {
    let mut f = fixture("daemon-survive");
    let (port, pid) = f.start_dp(Some(FMT));
    let (mut s, kid) = open_connection(&mut f.g, port.port(), pid, b"abc");
    term_and_reap(pid);
    assert!(!f.pf.exists());
    assert_refused(port.port());
    assert!(lines(&f.log).is_empty());
    // the child carries on until its connection ends
    echo_round(&mut s, b"defg");
    finish(&mut s);
    assert_eq!(wait_lines(&f.log, 1), vec!["1 ok 7 7"]);
    reaped_with_0(kid, "child");
}

#[test]
fn second_instance_is_refused() {
    let mut f = fixture("daemon-second");
    let (port, pid) = f.start_dp(Some("%c"));
    // another port, so that only the pid file stands in the way
    let port2 = closed_port();
    let log_b = f.dir.join("conn-b.log");
    let out = run(&[
        "-Dp",
        p(&f.pf),
        "-p",
        &port2.dest(),
        "-P",
        &f.b.dest(),
        "-c",
        p(&log_b),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.starts_with("ipprotd: -Dp: "), "{err}");
    assert!(
        err.contains(p(&f.pf)) && err.contains(&pid.to_string()),
        "{err}"
    );
    assert!(err.contains("another ipprotd is running"), "{err}");
    assert_eq!(std::fs::read_to_string(&f.pf).unwrap(), format!("{pid}\n"));
    assert!(ipprotd_pids_with_arg(p(&log_b)).is_empty());
    assert!(TcpStream::connect(("127.0.0.1", port2.port())).is_err());
    // the first one still works
    echo_once(port.port(), b"still here");
    term_and_reap(pid);
}

#[test]
fn stale_pid_files_are_replaced() {
    let mut f = fixture("daemon-stale");
    let mut sleeper = Command::new("sleep")
        .arg("60")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut dead = Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    let stale: Vec<Vec<u8>> = vec![
        format!("{}\n", sleeper.id()).into_bytes(),
        format!("{dead_pid}\n").into_bytes(),
        b"garbage\n".to_vec(),
        Vec::new(),
        b"-1\n".to_vec(),
        b"\xff\xfe\x00\n".to_vec(),
    ];
    for content in &stale {
        std::fs::write(&f.pf, content).unwrap();
        let (port, pid) = f.start_dp(None);
        assert_ne!(format!("{pid}\n").into_bytes(), *content);
        assert_eq!(comm(pid).as_deref(), Some("ipprotd"), "stale {content:?}");
        echo_once(port.port(), b"fresh");
        term_and_reap(pid);
        assert!(!f.pf.exists());
    }
    let _ = sleeper.kill();
    let _ = sleeper.wait();
}

#[test]
fn relative_paths_resolve_against_start_directory() {
    let mut f = fixture("daemon-relative");
    f.g.pidfile = f.dir.join("pidfile");
    let dest = f.b.dest();
    let args = [
        "-Dp", "pidfile", "-P", &dest, "-c", "conn.log", "-C", "%x %f", "-f", "prot",
    ];
    let port = start_detached(&args, Some(&f.dir));
    let pid = pid_in(&f.g.pidfile);
    f.g.pids.push(pid);
    echo_once(port.port(), b"rel");
    let l = wait_lines(&f.log, 1);
    let file = l[0].strip_prefix("ok ").unwrap_or_else(|| panic!("{l:?}"));
    let prefix = format!("{}/prot_", f.dir.display());
    assert!(file.starts_with(&prefix), "{file} is not under {prefix}");
    assert_eq!(std::fs::read(file).unwrap(), b"rel");
    assert!(!Path::new("/pidfile").exists() && !Path::new("/conn.log").exists());
    term_and_reap(pid);
    assert!(!f.g.pidfile.exists());
}

#[test]
fn no_zombies_after_fifty_connections() {
    let mut f = fixture("daemon-zombies");
    let (port, pid) = f.start_dp(Some("%c"));
    for i in 0..50 {
        echo_once(port.port(), format!("conn {i}").as_bytes());
    }
    assert_eq!(wait_lines(&f.log, 50).len(), 50);
    let mut kids = Vec::new();
    assert!(
        wait_until(DEADLINE, || {
            kids = children(pid);
            kids.is_empty()
        }),
        "children left: {:?}",
        kids.iter()
            .map(|k| (*k, proc_state(*k)))
            .collect::<Vec<_>>()
    );
    term_and_reap(pid);
}

#[test]
fn sigterm_to_child_gives_killed() {
    let mut f = fixture("daemon-killchild");
    let (port, pid) = f.start_dp(Some(FMT));
    let (mut s, kid) = open_connection(&mut f.g, port.port(), pid, b"x");
    assert_eq!(comm(kid).as_deref(), Some("ipprotd"));
    signal(kid, libc::SIGTERM);
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty());
    assert_eq!(wait_lines(&f.log, 1), vec!["1 killed 1 1"]);
    // the parent reaps it and goes on serving
    assert!(wait_until(DEADLINE, || children(pid).is_empty()));
    assert_eq!(comm(pid).as_deref(), Some("ipprotd"));
    echo_once(port.port(), b"next");
    assert_eq!(wait_lines(&f.log, 2)[1], "2 ok 4 4");
    term_and_reap(pid);
}

#[test]
fn foreground_parent_ends_with_0_on_sigterm_and_sigint() {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let b = Backend::echo();
        let mut d = Daemon::start(&["-P", &b.dest()]);
        let port = d.port();
        echo_once(port, b"up");
        signal(d.pid(), sig);
        let st = d.wait_exit();
        assert_eq!(st.code(), Some(0), "signal {sig}: {st:?}");
        assert_refused(port);
    }
}

#[test]
fn sigint_to_foreground_child_gives_killed() {
    let dir = tmpdir("daemon-sigint-child");
    let b = Backend::echo();
    let (d, log) = Daemon::logged(&dir, &b.dest(), FMT, &[], &[]);
    let mut s = d.connect();
    echo_round(&mut s, b"yz");
    signal(d.the_child(), libc::SIGINT);
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert_eq!(wait_lines(&log, 1), vec!["1 killed 2 2"]);
    assert!(wait_until(DEADLINE, || children(d.pid()).is_empty()));
}
