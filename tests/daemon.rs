//! Daemon mode (`-D`, `-Dp`): the pid file life cycle, SIGTERM to the
//! parent (exit 0, pid file removed, open connections finish), live and
//! stale pid files, paths relative to the start directory, reaping, and
//! SIGTERM to a child. The test process makes itself the subreaper of the
//! detached daemons so that it can collect their exit status.

mod common;
use common::*;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Kills (SIGKILL) and reaps the daemons a test started, even when the
/// test fails: the pid in the pid file and any pids added, if they are
/// still `ipprotd` processes.
struct Guard {
    pidfile: Option<PathBuf>,
    pids: Vec<i32>,
}

impl Guard {
    fn new(pidfile: Option<&Path>) -> Guard {
        Guard {
            pidfile: pidfile.map(Path::to_path_buf),
            pids: Vec::new(),
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut pids = self.pids.clone();
        if let Some(p) = self.pidfile.as_ref().and_then(|f| read_pid(f)) {
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

/// The parent pid of `pid`.
fn ppid(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
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

/// Start a detached ipprotd; the starting process must exit 0.
fn start_detached(args: &[&str], cwd: Option<&Path>) {
    let out = run_in(args, cwd);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s
}

fn echo_once(port: u16, m: &[u8]) {
    let mut s = connect(port);
    s.write_all(m).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_all(&mut s), m);
}

/// SIGTERM to a detached parent: it exits 0 (we reap it as subreaper).
fn term_and_reap(pid: i32) {
    signal(pid, libc::SIGTERM);
    let st = reap_pid(pid, DEADLINE).expect("daemon did not exit after SIGTERM");
    assert!(
        libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0,
        "daemon ended with wait status {st:#x}"
    );
}

#[test]
fn pid_file_life_cycle() {
    set_subreaper();
    let dir = tmpdir("daemon-cycle");
    let pf = dir.join("ipprotd.pid");
    let log = dir.join("conn.log");
    let mut g = Guard::new(Some(&pf));
    let b = Backend::echo();
    let port = closed_port();
    let p = format!("{port}@127.0.0.1");
    start_detached(
        &[
            "-Dp",
            pf.to_str().unwrap(),
            "-p",
            &p,
            "-P",
            &b.dest(),
            "-c",
            log.to_str().unwrap(),
            "-C",
            "%c %x %b %B",
        ],
        None,
    );
    let pid = pid_in(&pf);
    g.pids.push(pid);
    assert_eq!(comm(pid).as_deref(), Some("ipprotd"));
    assert_ne!(proc_state(pid), Some('Z'));
    // detached: its own session, working directory /
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap(),
        PathBuf::from("/")
    );
    echo_once(port, b"hello");
    assert_eq!(wait_lines(&log, 1), vec!["1 ok 5 5"]);
    term_and_reap(pid);
    assert!(!pf.exists(), "pid file left after SIGTERM");
    let e = TcpStream::connect(("127.0.0.1", port)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn plain_d_detaches() {
    set_subreaper();
    let dir = tmpdir("daemon-plain");
    let log = dir.join("conn.log");
    let mut g = Guard::new(None);
    let b = Backend::echo();
    let port = closed_port();
    let p = format!("{port}@127.0.0.1");
    start_detached(
        &[
            "-D",
            "-p",
            &p,
            "-P",
            &b.dest(),
            "-c",
            log.to_str().unwrap(),
            "-C",
            "%c %x",
        ],
        None,
    );
    let mut pids = Vec::new();
    assert!(wait_until(DEADLINE, || {
        pids = ipprotd_pids_with_arg(log.to_str().unwrap());
        !pids.is_empty()
    }));
    g.pids = pids.clone();
    assert_eq!(pids.len(), 1, "{pids:?}");
    echo_once(port, b"x");
    assert_eq!(wait_lines(&log, 1), vec!["1 ok"]);
    term_and_reap(pids[0]);
}

#[test]
fn open_connection_survives_parent_sigterm() {
    set_subreaper();
    let dir = tmpdir("daemon-survive");
    let pf = dir.join("ipprotd.pid");
    let log = dir.join("conn.log");
    let mut g = Guard::new(Some(&pf));
    let b = Backend::echo();
    let port = closed_port();
    let p = format!("{port}@127.0.0.1");
    start_detached(
        &[
            "-Dp",
            pf.to_str().unwrap(),
            "-p",
            &p,
            "-P",
            &b.dest(),
            "-c",
            log.to_str().unwrap(),
            "-C",
            "%c %x %b %B",
        ],
        None,
    );
    let pid = pid_in(&pf);
    g.pids.push(pid);
    let mut s = connect(port);
    s.write_all(b"abc").unwrap();
    let mut r = [0u8; 3];
    s.read_exact(&mut r).unwrap();
    let kids = children(pid);
    assert_eq!(kids.len(), 1, "children of {pid}: {kids:?}");
    g.pids.extend(&kids);
    term_and_reap(pid);
    assert!(!pf.exists());
    let e = TcpStream::connect(("127.0.0.1", port)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "still listening");
    assert!(lines(&log).is_empty());
    // the child carries on until its connection ends
    s.write_all(b"defg").unwrap();
    let mut r = [0u8; 4];
    s.read_exact(&mut r).unwrap();
    assert_eq!(&r, b"defg");
    s.shutdown(Shutdown::Write).unwrap();
    assert!(read_all(&mut s).is_empty());
    assert_eq!(wait_lines(&log, 1), vec!["1 ok 7 7"]);
    let st = reap_pid(kids[0], DEADLINE).expect("child did not exit");
    assert!(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0, "{st:#x}");
}

#[test]
fn second_instance_is_refused() {
    set_subreaper();
    let dir = tmpdir("daemon-second");
    let pf = dir.join("ipprotd.pid");
    let mut g = Guard::new(Some(&pf));
    let b = Backend::echo();
    let port = closed_port();
    let p = format!("{port}@127.0.0.1");
    let log_a = dir.join("conn-a.log");
    start_detached(
        &[
            "-Dp",
            pf.to_str().unwrap(),
            "-p",
            &p,
            "-P",
            &b.dest(),
            "-c",
            log_a.to_str().unwrap(),
        ],
        None,
    );
    let pid = pid_in(&pf);
    g.pids.push(pid);
    // another port, so that only the pid file stands in the way
    let port2 = closed_port();
    let p2 = format!("{port2}@127.0.0.1");
    let log_b = dir.join("conn-b.log");
    let out = run(&[
        "-Dp",
        pf.to_str().unwrap(),
        "-p",
        &p2,
        "-P",
        &b.dest(),
        "-c",
        log_b.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.starts_with("ipprotd: -Dp: "), "{err}");
    assert!(
        err.contains(pf.to_str().unwrap()) && err.contains(&pid.to_string()),
        "{err}"
    );
    assert!(err.contains("another ipprotd is running"), "{err}");
    assert_eq!(std::fs::read_to_string(&pf).unwrap(), format!("{pid}\n"));
    assert!(ipprotd_pids_with_arg(log_b.to_str().unwrap()).is_empty());
    assert!(TcpStream::connect(("127.0.0.1", port2)).is_err());
    // the first one still works
    echo_once(port, b"still here");
    term_and_reap(pid);
}

#[test]
fn stale_pid_files_are_replaced() {
    set_subreaper();
    let dir = tmpdir("daemon-stale");
    let pf = dir.join("ipprotd.pid");
    let mut g = Guard::new(Some(&pf));
    let b = Backend::echo();
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
        std::fs::write(&pf, content).unwrap();
        let port = closed_port();
        let p = format!("{port}@127.0.0.1");
        start_detached(
            &["-Dp", pf.to_str().unwrap(), "-p", &p, "-P", &b.dest()],
            None,
        );
        let pid = pid_in(&pf);
        g.pids.push(pid);
        assert_ne!(format!("{pid}\n").into_bytes(), *content);
        assert_eq!(comm(pid).as_deref(), Some("ipprotd"), "stale {content:?}");
        echo_once(port, b"fresh");
        term_and_reap(pid);
        assert!(!pf.exists());
    }
    let _ = sleeper.kill();
    let _ = sleeper.wait();
}

#[test]
fn relative_paths_resolve_against_start_directory() {
    set_subreaper();
    let dir = tmpdir("daemon-relative");
    let pf = dir.join("pidfile");
    let mut g = Guard::new(Some(&pf));
    let b = Backend::echo();
    let port = closed_port();
    let p = format!("{port}@127.0.0.1");
    start_detached(
        &[
            "-Dp",
            "pidfile",
            "-p",
            &p,
            "-P",
            &b.dest(),
            "-c",
            "conn.log",
            "-C",
            "%x %f",
            "-f",
            "prot",
        ],
        Some(&dir),
    );
    let pid = pid_in(&pf);
    g.pids.push(pid);
    echo_once(port, b"rel");
    let l = wait_lines(&dir.join("conn.log"), 1);
    let file = l[0].strip_prefix("ok ").unwrap_or_else(|| panic!("{l:?}"));
    let prefix = format!("{}/prot_", dir.display());
    assert!(file.starts_with(&prefix), "{file} is not under {prefix}");
    assert_eq!(std::fs::read(file).unwrap(), b"rel");
    assert!(!Path::new("/pidfile").exists() && !Path::new("/conn.log").exists());
    term_and_reap(pid);
    assert!(!pf.exists());
}

#[test]
fn no_zombies_after_fifty_connections() {
    set_subreaper();
    let dir = tmpdir("daemon-zombies");
    let pf = dir.join("ipprotd.pid");
    let log = dir.join("conn.log");
    let mut g = Guard::new(Some(&pf));
    let b = Backend::echo();
    let port = closed_port();
    let p = format!("{port}@127.0.0.1");
    start_detached(
        &[
            "-Dp",
            pf.to_str().unwrap(),
            "-p",
            &p,
            "-P",
            &b.dest(),
            "-c",
            log.to_str().unwrap(),
            "-C",
            "%c",
        ],
        None,
    );
    let pid = pid_in(&pf);
    g.pids.push(pid);
    for i in 0..50 {
        echo_once(port, format!("conn {i}").as_bytes());
    }
    assert_eq!(wait_lines(&log, 50).len(), 50);
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
    set_subreaper();
    let dir = tmpdir("daemon-killchild");
    let pf = dir.join("ipprotd.pid");
    let log = dir.join("conn.log");
    let mut g = Guard::new(Some(&pf));
    let b = Backend::echo();
    let port = closed_port();
    let p = format!("{port}@127.0.0.1");
    start_detached(
        &[
            "-Dp",
            pf.to_str().unwrap(),
            "-p",
            &p,
            "-P",
            &b.dest(),
            "-c",
            log.to_str().unwrap(),
            "-C",
            "%c %x %b %B",
        ],
        None,
    );
    let pid = pid_in(&pf);
    g.pids.push(pid);
    let mut s = connect(port);
    s.write_all(b"x").unwrap();
    let mut r = [0u8; 1];
    s.read_exact(&mut r).unwrap();
    let kids = children(pid);
    assert_eq!(kids.len(), 1, "{kids:?}");
    g.pids.extend(&kids);
    assert_eq!(comm(kids[0]).as_deref(), Some("ipprotd"));
    signal(kids[0], libc::SIGTERM);
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty());
    assert_eq!(wait_lines(&log, 1), vec!["1 killed 1 1"]);
    // the parent reaps it and goes on serving
    assert!(wait_until(DEADLINE, || children(pid).is_empty()));
    assert_eq!(comm(pid).as_deref(), Some("ipprotd"));
    echo_once(port, b"next");
    assert_eq!(wait_lines(&log, 2)[1], "2 ok 4 4");
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
        let e = TcpStream::connect(("127.0.0.1", port)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    }
}

#[test]
fn sigint_to_foreground_child_gives_killed() {
    let dir = tmpdir("daemon-sigint-child");
    let log = dir.join("conn.log");
    let b = Backend::echo();
    let d = Daemon::start(&[
        "-P",
        &b.dest(),
        "-c",
        log.to_str().unwrap(),
        "-C",
        "%c %x %b %B",
    ]);
    let mut s = d.connect();
    s.write_all(b"yz").unwrap();
    let mut r = [0u8; 2];
    s.read_exact(&mut r).unwrap();
    let kids = children(d.pid());
    assert_eq!(kids.len(), 1, "{kids:?}");
    signal(kids[0], libc::SIGINT);
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert_eq!(wait_lines(&log, 1), vec!["1 killed 2 2"]);
    assert!(wait_until(DEADLINE, || children(d.pid()).is_empty()));
}
