//! The parent's side of "nothing lost, nothing leaked" (issue 10): a
//! SIGTERM during a burst reaches no child; a child that dies before its
//! entry gets a `crashed` one from the parent (a killed hook no second
//! one); start errors leave nothing behind and are checked as `--user`;
//! the pid file is renamed into place and held by nobody; the connection
//! log is created 0640 and followed across a rename; hook variables carry
//! no control characters; one log line per data-log error episode;
//! IPv4-mapped `-r` rules; whole diagnostic lines under concurrency;
//! inherited descriptors closed at start.

use crate::harness::*;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;

/// A JSON string or number field of a `-C json` entry, as text.
fn json_field(entry: &str, key: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(entry).unwrap();
    match &v[key] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "null".into(),
        other => other.to_string(),
    }
}

/// Live `ipprotd` processes (parent or children) of the test using `dir`.
fn live_in(dir: &Path) -> Vec<i32> {
    ipprotd_pids_with_arg(p(dir))
}

/// A detached daemon of this test: SIGTERM when dropped, pass or fail.
struct Detached(i32);

impl Drop for Detached {
    fn drop(&mut self) {
        signal(self.0, libc::SIGTERM);
    }
}

/// The pid in a pid file.
fn pid_in(f: &Path) -> i32 {
    std::fs::read_to_string(f).unwrap().trim().parse().unwrap()
}

// See: issue 10, defect 1.
#[test]
fn sigterm_during_a_burst_kills_no_accepted_connection() {
    const BURST: usize = 200;
    let dir = tmpdir("parent-term-burst");
    let b = Backend::echo();
    let (mut d, log) = Daemon::logged(&dir, &b.dest(), "%c %x", &["--max-connections", "0"], &[]);
    // queue the burst while the parent cannot accept, then let it fork
    // and signal it in the middle
    signal(d.pid(), libc::SIGSTOP);
    let mut clients: Vec<TcpStream> = (0..BURST)
        .map(|_| {
            let mut s = d.connect();
            s.write_all(b"x").unwrap();
            s
        })
        .collect();
    signal(d.pid(), libc::SIGCONT);
    // TERM once the first child has reached the backend, the parent still
    // forking the rest (a fixed pause could end before it ran at all)
    assert!(
        wait_until(DEADLINE, || b.count() >= 1),
        "no connection reached the backend"
    );
    signal(d.pid(), libc::SIGTERM);
    assert!(d.wait_exit().success());
    // the accepted connections end normally when their clients do
    for s in &mut clients {
        let _ = s.shutdown(Shutdown::Write);
        let mut v = Vec::new();
        let _ = s.read_to_end(&mut v);
    }
    assert!(
        wait_until(DEADLINE, || live_in(&dir).is_empty()),
        "children still running"
    );
    let entries = lines(&log);
    assert!(!entries.is_empty(), "no connection was accepted");
    let killed: Vec<&String> = entries.iter().filter(|e| e.ends_with(" killed")).collect();
    assert!(
        killed.is_empty(),
        "{} of {} accepted connections ended killed: {killed:?}",
        killed.len(),
        entries.len()
    );
    assert_eq!(entries.len(), b.count(), "{entries:?}");
}

// See: issue 10, defect 5.
#[test]
fn killed_children_get_crashed_entries() {
    const N: usize = 5;
    let dir = tmpdir("parent-crashed");
    let b = Backend::start(|mut s| {
        let mut buf = [0u8; 1000];
        if s.read_exact(&mut buf).is_ok() && s.write_all(b"hello").is_ok() {
            let _ = read_all(&mut s);
        }
    });
    let prefix = dir.join("prot");
    let (d, log) = Daemon::logged(
        &dir,
        &b.dest(),
        "json",
        &["-f", p(&prefix), "-L", "-z", "-M"],
        &[],
    );
    let mut clients = Vec::new();
    for _ in 0..N {
        let mut s = d.connect();
        s.write_all(&[b'A'; 1000]).unwrap();
        let mut got = [0u8; 5];
        s.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello");
        clients.push(s);
    }
    // the recordings reach the files at the idle flush
    assert!(
        wait_until(DEADLINE, || {
            let logs = data_logs(&dir);
            logs.len() == N
                && logs.iter().all(|f| {
                    let (v, _) = read_until_error(flate2::read::MultiGzDecoder::new(
                        std::fs::File::open(f).unwrap(),
                    ));
                    v.windows(5).any(|w| w == b"hello")
                })
        }),
        "no idle flush"
    );
    let kids = children(d.pid());
    assert_eq!(kids.len(), N);
    for k in &kids {
        signal(*k, libc::SIGKILL);
    }
    let entries = wait_lines(&log, N);
    assert_eq!(entries.len(), N, "{entries:?}");
    let mut conns: Vec<String> = Vec::new();
    for e in &entries {
        assert_eq!(json_field(e, "status"), "crashed", "{e}");
        assert_eq!(json_field(e, "dest_ip"), "127.0.0.1", "{e}");
        assert_eq!(json_field(e, "dest_port"), b.addr.port().to_string(), "{e}");
        assert_eq!(json_field(e, "bytes_in"), "1000", "{e}");
        assert_eq!(json_field(e, "bytes_out"), "5", "{e}");
        assert_eq!(json_field(e, "client_ip"), "127.0.0.1", "{e}");
        assert_eq!(json_field(e, "local_port"), d.port().to_string(), "{e}");
        let f = json_field(e, "file");
        assert!(Path::new(&f).is_file(), "{e}");
        // readable up to the last flush
        let (v, _) = read_until_error(flate2::read::MultiGzDecoder::new(
            std::fs::File::open(&f).unwrap(),
        ));
        assert!(v.windows(1000).any(|w| w == [b'A'; 1000]), "{f}");
        conns.push(json_field(e, "conn"));
    }
    conns.sort();
    assert_eq!(conns, ["1", "2", "3", "4", "5"]);
}

// See: issue 10, defect 5 (a hook that dies after the entry).
#[test]
fn killed_hook_gives_no_second_entry() {
    let dir = tmpdir("parent-hook-killed");
    let started = dir.join("started");
    let hook = script(
        &dir,
        "hook",
        &format!("#!/bin/sh\ntouch {}\nexec sleep 60\n", p(&started)),
    );
    let b = Backend::echo();
    let prefix = dir.join("prot");
    let (d, log) = Daemon::logged(
        &dir,
        &b.dest(),
        "%c %x",
        &["-f", p(&prefix), "-u", &hook],
        &[],
    );
    d.echo(b"abc");
    assert!(wait_for_file(&started), "the hook's start");
    let hook_pid = d.the_child();
    signal(hook_pid, libc::SIGKILL);
    assert!(
        d.wait_stderr(&format!("child {hook_pid}: exit signal SIGKILL")),
        "{}",
        d.stderr()
    );
    // one more connection: its entry comes after anything the parent
    // would have written for the killed hook
    d.echo(b"def");
    wait_lines(&log, 2);
    assert!(wait_for_file(&started), "the second hook");
    assert_eq!(lines(&log), ["1 ok", "2 ok"]);
}

// See: issue 10, defect 6.
#[test]
fn unknown_user_leaves_no_pid_file() {
    let dir = tmpdir("parent-nouser");
    let pidfile = dir.join("pid");
    let o = run(&[
        "-p",
        "0@127.0.0.1",
        "--user",
        "no-such-user-xyz",
        "-Dp",
        p(&pidfile),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "ipprotd: --user: no such user 'no-such-user-xyz'\n"
    );
    assert!(!pidfile.exists(), "a pid file was left behind");
}

// See: issue 10, defect 6.
#[test]
fn directories_are_checked_as_the_user() {
    if !is_root() {
        skip("--user needs root to test");
        return;
    }
    let dir = tmpdir("parent-user-dirs");
    // root's, 0755: root may write, nobody may not
    let closed = dir.join("closed");
    std::fs::create_dir(&closed).unwrap();
    std::fs::set_permissions(&closed, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let prefix = closed.join("prot");
    let log = closed.join("conn.log");
    for (opt, arg) in [("-f", &prefix), ("-c", &log)] {
        let o = run(&["-p", "0@127.0.0.1", "--user", "nobody", opt, p(arg), "-D"]);
        let left = live_in(&closed);
        for pid in &left {
            signal(*pid, libc::SIGTERM);
        }
        assert!(left.is_empty(), "{opt}: a daemon was left");
        assert_eq!(o.status.code(), Some(1), "{opt}");
        assert_eq!(
            String::from_utf8_lossy(&o.stderr),
            format!(
                "ipprotd: {opt}: cannot write to directory {} as --user nobody: Permission denied (os error 13)\n",
                p(&closed)
            ),
            "{opt}"
        );
    }
    // the hook too
    let hook = script(&closed, "hook", "#!/bin/sh\n");
    std::fs::set_permissions(
        Path::new(&hook),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let open = dir.join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let f = open.join("prot");
    let o = run(&[
        "-p",
        "0@127.0.0.1",
        "--user",
        "nobody",
        "-f",
        p(&f),
        "-u",
        &hook,
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).starts_with(&format!(
            "ipprotd: -u: cannot execute {hook} as --user nobody: "
        )),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

// See: issue 10, defect 6.
#[test]
fn hook_found_through_a_relative_path_entry_runs_in_the_daemon() {
    let dir = tmpdir("parent-relpath");
    std::fs::create_dir(dir.join("bin")).unwrap();
    let ran = dir.join("ran");
    script(
        &dir.join("bin"),
        "myhook",
        &format!("#!/bin/sh\necho \"$1\" > {}\n", p(&ran)),
    );
    let pidfile = dir.join("pid");
    let b = Backend::echo();
    let mut c = std::process::Command::new(BIN);
    c.args([
        "-p",
        "0@127.0.0.1",
        "--verbose",
        "-P",
        &b.dest(),
        "-f",
        "prot",
        "-u",
        "myhook",
        "-Dp",
        "pid",
    ])
    .current_dir(&dir)
    .env("PATH", "bin:/usr/bin:/bin");
    let o = run_limited(c, b"", DEADLINE).unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let addr = listening_on(&err).unwrap();
    let daemon = Detached(pid_in(&pidfile));
    let mut s = connect(addr);
    let got = exchange(&mut s, b"abc");
    drop(daemon);
    assert_eq!(got, b"abc");
    assert!(wait_for_file(&ran), "the hook's output");
    assert!(wait_until(DEADLINE, || lines(&ran).len() == 1));
    assert!(
        lines(&ran)[0].starts_with(p(&dir.join("prot_"))),
        "{:?}",
        lines(&ran)
    );
}

/// The targets of the descriptors of `pid`.
fn fd_targets(pid: i32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .map(|t| t.to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

// See: issue 10, defect 7.
#[test]
fn pid_file_is_renamed_into_place_and_held_by_nobody() {
    use std::os::unix::fs::MetadataExt;
    set_subreaper();
    let dir = tmpdir("parent-pidfile");
    let pidfile = dir.join("pid");
    std::fs::write(&pidfile, "stale\n").unwrap();
    let stale_ino = std::fs::metadata(&pidfile).unwrap().ino();
    let b = Backend::echo();
    let o = run(&[
        "-p",
        "0@127.0.0.1",
        "--verbose",
        "-P",
        &b.dest(),
        "-Dp",
        p(&pidfile),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let addr = listening_on(&err).unwrap();
    let pid = pid_in(&pidfile);
    let daemon = Detached(pid);
    // a new file renamed over the stale one, not the old one truncated
    assert_ne!(std::fs::metadata(&pidfile).unwrap().ino(), stale_ino);
    let mut s = connect(addr);
    echo_round(&mut s, b"hello");
    let kids = children(pid);
    assert_eq!(kids.len(), 1);
    for who in [pid, kids[0]] {
        let t = fd_targets(who);
        assert!(!t.is_empty());
        assert!(
            !t.iter().any(|t| t.contains(p(&pidfile))),
            "{who} holds the pid file: {t:?}"
        );
    }
    // no temporary file is left next to it
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["pid"]);
    finish(&mut s);
    drop(daemon);
    assert!(reap_pid(pid, DEADLINE).is_some());
    assert!(!pidfile.exists());
}

// See: issue 10, defect 7.
#[test]
fn connection_log_is_created_0640_and_an_existing_one_keeps_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tmpdir("parent-connlog-mode");
    let b = Backend::echo();
    let (d, log) = Daemon::logged(&dir, &b.dest(), "%x", &[], &[]);
    d.echo(b"a");
    wait_lines(&log, 1);
    let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "{mode:o}");
    drop(d);
    let dir2 = tmpdir("parent-connlog-keep");
    let log2 = dir2.join("conn.log");
    std::fs::write(&log2, "").unwrap();
    std::fs::set_permissions(&log2, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (d2, _) = Daemon::logged(&dir2, &b.dest(), "%x", &[], &[]);
    d2.echo(b"a");
    wait_lines(&log2, 1);
    let mode = std::fs::metadata(&log2).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
}

/// A PostgreSQL StartupMessage with these parameters.
fn pg_startup(params: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = vec![0, 3, 0, 0];
    for (k, v) in params {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v);
        body.push(0);
    }
    body.push(0);
    let mut m = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    m.extend(body);
    m
}

// See: issue 10, defect 7.
#[test]
fn hook_variables_carry_no_control_characters() {
    let dir = tmpdir("parent-hook-env");
    let out = dir.join("env");
    let hook = script(
        &dir,
        "hook",
        &format!(
            "#!/bin/sh\nprintf '%s|%s|%s' \"$IPPROT_USER\" \"$IPPROT_PROGRAM\" \"$IPPROT_SERVICE\" > {}.tmp && mv {0}.tmp {0}\n",
            p(&out)
        ),
    );
    let b = Backend::echo();
    let prefix = dir.join("prot");
    let (d, log) = Daemon::logged(
        &dir,
        &b.dest(),
        "%x %{user}",
        &["-f", p(&prefix), "-u", &hook],
        &[],
    );
    let m = pg_startup(&[
        ("user", b"al\x07ice\x1b[31m"),
        ("database", b"d\tb"),
        ("application_name", b"ps\x7fql\r\n"),
    ]);
    d.echo(&m);
    assert_eq!(wait_lines(&log, 1), ["ok al?ice?[31m"]);
    assert!(wait_for_file(&out), "the hook's output");
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "al?ice?[31m|ps?ql??|d?b"
    );
}

// See: issue 10, defect 8 (a data-log write error is one episode).
#[test]
fn a_write_error_episode_is_logged_once() {
    const N: usize = 4;
    let dir = tmpdir("parent-efbig-episode");
    let c = random_bytes(10_000, 21);
    let b = Backend::echo();
    let prefix = dir.join("prot");
    let (d, log) = Daemon::logged_sh(
        "ulimit -f 1; trap '' XFSZ;",
        &dir,
        &b.dest(),
        "%c %x %b %B",
        &["-f", p(&prefix), "-L"],
    );
    // overlapping connections, all failing on the same limit
    let mut clients: Vec<TcpStream> = (0..N).map(|_| d.connect()).collect();
    for s in &mut clients {
        s.write_all(&c).unwrap();
    }
    for s in &mut clients {
        let mut got = vec![0u8; c.len()];
        s.read_exact(&mut got).unwrap();
        assert!(got == c, "relay not byte-exact");
        finish(s);
    }
    let entries = wait_lines(&log, N);
    for e in &entries {
        assert!(e.ends_with(" record-error 10000 10000"), "{entries:?}");
    }
    // the entries may be read before the collector has read the line a
    // child wrote to stderr before them
    assert!(d.wait_stderr("cannot write data log"), "{}", d.stderr());
    let n = d.stderr().matches("cannot write data log").count();
    assert_eq!(n, 1, "{}", d.stderr());
}

// See: issue 10, defect 8.
#[test]
fn ipv4_mapped_rules_are_ipv4_rules() {
    let dir = tmpdir("parent-mapped-acl");
    let b = Backend::echo();
    let (d, log) = Daemon::logged(
        &dir,
        &b.dest(),
        "%c %x",
        &["-r", "::ffff:127.0.0.0/104"],
        &[],
    );
    d.echo(b"in");
    assert_eq!(wait_lines(&log, 1), ["1 ok"]);
    drop(d);
    let dir = tmpdir("parent-mapped-acl-deny");
    let (d, log) = Daemon::logged(
        &dir,
        &b.dest(),
        "%c %x",
        &["-r", "::ffff:10.0.0.0/104"],
        &[],
    );
    read_all(&mut d.connect());
    assert_eq!(wait_lines(&log, 1), ["1 denied"]);
}

// See: issue 10, defect 8 (denied flood: the log stays open, none lost,
// and a moved log is followed).
#[test]
fn denied_flood_loses_no_entry_and_follows_a_moved_log() {
    const FLOOD: usize = 2000;
    let dir = tmpdir("parent-denied-flood");
    let (d, log) = Daemon::logged(&dir, "9@127.0.0.1", "%c %x", &["-r", "10.9.9.9"], &[]);
    for _ in 0..3 {
        read_all(&mut d.connect());
    }
    wait_lines(&log, 3);
    let moved = dir.join("conn.log.1");
    std::fs::rename(&log, &moved).unwrap();
    let mut held = Vec::new();
    for _ in 0..FLOOD {
        let s = d.connect();
        set_linger_zero(&s);
        held.push(s);
        if held.len() == 200 {
            held.clear();
        }
    }
    drop(held);
    let entries = wait_lines(&log, FLOOD);
    assert_eq!(entries.len(), FLOOD);
    assert_eq!(lines(&moved), ["1 denied", "2 denied", "3 denied"]);
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(*e, format!("{} denied", i + 4));
    }
}

// See: issue 10, defect 9.
#[test]
fn verbose_lines_are_whole_under_concurrency() {
    const N: usize = 40;
    let b = Backend::echo();
    let d = Daemon::start(&["-P", &b.dest(), "--max-connections", "0"]);
    let addr = d.addr;
    let threads: Vec<_> = (0..N)
        .map(|i| {
            std::thread::spawn(move || {
                let mut s = connect(addr);
                for r in 0..5u8 {
                    echo_round(&mut s, &[b'a' + (i % 26) as u8 + r; 100]);
                }
                finish(&mut s);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // whole lines or not, N close messages end the run (or the deadline)
    wait_until(DEADLINE, || d.stderr().matches("close ").count() >= N);
    let err = d.stderr();
    for line in err.lines() {
        // a message line, or a hexdump line of a first-packet dump
        let hexdump = line.len() > 12
            && line[..8].bytes().all(|c| c.is_ascii_hexdigit())
            && &line[8..10] == "  "
            && line.ends_with('|')
            && !line.contains("ipprotd");
        let message = line.starts_with("ipprotd: ") && !line[9..].contains("ipprotd");
        assert!(message || hexdump, "garbled line {line:?} in\n{err}");
    }
    assert_eq!(err.matches("ipprotd: close ").count(), N, "{err}");
}

// See: issue 10, defect 10.
#[test]
fn inherited_descriptors_are_closed_at_start() {
    let dir = tmpdir("parent-inherited");
    let marker = dir.join("inherited-marker");
    let b = Backend::echo();
    let d = Daemon::start_sh(
        &format!("exec 7>{} 9<{0};", p(&marker)),
        &["-P", &b.dest()],
        &[],
    );
    let t = fd_targets(d.pid());
    assert!(!t.is_empty());
    assert!(
        !t.iter().any(|t| t.contains("inherited-marker")),
        "inherited descriptors kept: {t:?}"
    );
    d.echo(b"still works");
}

/// The `Threads:` count of a process.
fn threads(pid: i32) -> usize {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

// The parent forks with glibc's `_Fork` (no atfork handlers, no lock
// resets), which is sound only while it has one thread: after recorded
// connections came and went it still has one, and so has a child.
#[test]
fn parent_and_children_stay_single_threaded() {
    let dir = tmpdir("parent-one-thread");
    let b = Backend::echo();
    let prefix = dir.join("prot");
    let (d, log) = Daemon::logged(
        &dir,
        &b.dest(),
        "%c %x",
        &["-f", p(&prefix), "-L", "-M"],
        &[],
    );
    for i in 0..3u8 {
        d.echo(&[b'a' + i; 100]);
    }
    assert_eq!(wait_lines(&log, 3).len(), 3);
    let mut held = d.connect();
    echo_round(&mut held, b"held");
    let kid = d.the_child();
    assert_eq!(threads(d.pid()), 1, "parent");
    assert_eq!(threads(kid), 1, "child");
    finish(&mut held);
    let entries = wait_lines(&log, 4);
    assert!(entries.iter().all(|e| e.ends_with(" ok")), "{entries:?}");
}

// A child's own allocation arena reserves address space: under a limit
// of it (`ulimit -v`, far below the 1 GiB the arena asks for first) it
// takes less, and a recorded, compressed connection still goes through.
#[test]
fn a_child_relays_under_an_address_space_limit() {
    let dir = tmpdir("parent-ulimit-v");
    let b = Backend::echo();
    let prefix = dir.join("prot");
    let (d, log) = Daemon::logged_sh(
        "ulimit -v 300000;",
        &dir,
        &b.dest(),
        "%c %x",
        &["-f", p(&prefix), "-L", "-M", "-z"],
    );
    let data = random_bytes(200_000, 14);
    d.echo(&data);
    let entries = wait_lines(&log, 1);
    assert!(entries[0].ends_with(" ok"), "{entries:?}");
}
