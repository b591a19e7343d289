//! Restart in place on SIGHUP: under continuous connection load no
//! connection fails, a connection open across the restarts completes and
//! gets its entry, sequence numbers and data-log names go on without a
//! repeat; with -Dp the pid file names the new parent; a new parent that
//! cannot start (a broken binary, a removed binary, a pid-file directory
//! gone) leaves the old one serving with the reason logged once.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use crate::harness::*;

/// Upper bound on the load loop (it stops earlier when told).
const MAX_LOAD: usize = 100_000;
/// Connections the load must complete between two restarts.
const LOAD_STEP: usize = 100;

/// Kills a parent we only know by pid (a new parent is not our child).
struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if alive(self.0) {
            signal(self.0, libc::SIGKILL);
        }
    }
}

/// Whether `pid` runs (not gone, not a zombie).
fn alive(pid: i32) -> bool {
    !matches!(proc_state(pid), None | Some('Z') | Some('X'))
}

/// One load connection: 16 bytes there and back, then both sides closed.
fn one(addr: SocketAddr, i: usize) -> Result<(), String> {
    let mut s = TcpStream::connect_timeout(&addr, DEADLINE).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(DEADLINE))
        .map_err(|e| e.to_string())?;
    let msg = format!("load {i:011}");
    s.write_all(msg.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    s.shutdown(Shutdown::Write)
        .map_err(|e| format!("shutdown: {e}"))?;
    let mut got = Vec::new();
    s.read_to_end(&mut got).map_err(|e| format!("read: {e}"))?;
    if got != msg.as_bytes() {
        return Err(format!("answer {:?}", String::from_utf8_lossy(&got)));
    }
    Ok(())
}

/// The pid in the `n`-th (1-based) "SIGHUP: restarted: pid N" line.
fn restarted_pid(text: &str, n: usize) -> Option<i32> {
    let line = text
        .lines()
        .filter(|l| l.contains("SIGHUP: restarted: pid "))
        .nth(n - 1)?;
    let rest = line.split("restarted: pid ").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

#[test]
fn three_restarts_under_load() {
    let dir = tmpdir("restart-load");
    let b = Backend::echo();
    let prefix = dir.join("prot");
    let (d, log) = Daemon::logged(&dir, &b.dest(), "%c %x %b %B", &["-f", p(&prefix)], &[]);
    let addr = d.addr;
    // open across all three restarts
    let mut long = d.connect();
    assert_eq!(round_trip(&mut long, b"before", 6), b"before");

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(Mutex::new(Vec::<String>::new()));
    let load = {
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        thread::spawn(move || {
            for i in 0..MAX_LOAD {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                match one(addr, i) {
                    Ok(()) => ok.fetch_add(1, Ordering::SeqCst),
                    Err(e) => {
                        failed.lock().unwrap().push(e);
                        0
                    }
                };
            }
        })
    };
    let mut parent = d.pid();
    let mut guards = Vec::new();
    for round in 1..=3 {
        let before = ok.load(Ordering::SeqCst);
        assert!(wait_until(DEADLINE, || ok.load(Ordering::SeqCst) >= before + LOAD_STEP));
        signal(parent, libc::SIGHUP);
        let mut new = None;
        assert!(
            wait_until(DEADLINE, || {
                new = restarted_pid(&d.stderr(), round);
                new.is_some()
            }),
            "restart {round}: {}",
            d.stderr()
        );
        let old = parent;
        parent = new.unwrap();
        guards.push(KillOnDrop(parent));
        assert!(
            wait_until(DEADLINE, || !alive(old)),
            "old parent {old} stays"
        );
        assert!(alive(parent), "new parent {parent} is gone");
    }
    let before = ok.load(Ordering::SeqCst);
    assert!(wait_until(DEADLINE, || ok.load(Ordering::SeqCst) >= before + LOAD_STEP));
    stop.store(true, Ordering::SeqCst);
    load.join().unwrap();
    let failed = failed.lock().unwrap().clone();
    assert!(failed.is_empty(), "failed connections: {failed:?}");

    // the connection from before the first restart still relays
    assert_eq!(round_trip(&mut long, b"after", 5), b"after");
    finish(&mut long);

    let total = ok.load(Ordering::SeqCst) + 1;
    let entries = wait_lines(&log, total);
    let mut seqs: Vec<u64> = entries
        .iter()
        .map(|e| {
            let f: Vec<&str> = e.split(' ').collect();
            assert_eq!(f[1], "ok", "{e}");
            f[0].parse().unwrap()
        })
        .collect();
    // the long connection was the first one
    assert!(entries.contains(&"1 ok 11 11".to_string()), "{entries:?}");
    seqs.sort_unstable();
    let want: Vec<u64> = (1..=total as u64).collect();
    assert!(seqs == want, "sequence numbers repeat or skip");
    // one data log per connection, named by its sequence number
    let files = data_logs(&dir);
    assert_eq!(files.len(), total, "data logs");
    signal(parent, libc::SIGTERM);
    assert!(wait_until(DEADLINE, || !alive(parent)));
    eprintln!("restart under load: {total} connections, 3 restarts, 0 failed");
}

/// Start a detached ipprotd (`-Dp pidf`) on the guarded `port` in front
/// of `b`, with `extra` options; its starter must exit 0.
fn detach(pidf: &Path, port: &ClosedPort, b: &Backend, extra: &[&str]) {
    let listen = port.dest();
    let dest = b.dest();
    let mut args = vec!["-Dp", p(pidf), "-p", &listen, "-P", &dest];
    args.extend_from_slice(extra);
    let out = run(&args);
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn detached_restart_rewrites_pid_file() {
    let dir = tmpdir("restart-dp");
    let b = Backend::echo();
    let pidf = dir.join("ipprotd.pid");
    let log = dir.join("conn.log");
    let port = closed_port();
    detach(&pidf, &port, &b, &["-c", p(&log), "-C", "%c %x"]);
    let read_pid = || -> Option<i32> { std::fs::read_to_string(&pidf).ok()?.trim().parse().ok() };
    let old = read_pid().expect("pid file");
    let _g_old = KillOnDrop(old);
    let addr = ("127.0.0.1", port.port());
    assert_eq!(exchange(&mut connect(addr), b"one"), b"one");
    signal(old, libc::SIGHUP);
    let mut new = None;
    assert!(wait_until(DEADLINE, || {
        new = read_pid().filter(|p| *p != old);
        new.is_some()
    }));
    let new = new.unwrap();
    let _g_new = KillOnDrop(new);
    assert!(wait_until(DEADLINE, || !alive(old)), "old parent stays");
    assert_eq!(comm(new).as_deref(), Some("ipprotd"));
    assert_eq!(exchange(&mut connect(addr), b"two"), b"two");
    assert_eq!(wait_lines(&log, 2), ["1 ok", "2 ok"]);
    signal(new, libc::SIGTERM);
    assert!(wait_until(DEADLINE, || !pidf.exists()), "pid file stays");
}

#[test]
fn broken_or_removed_binary_keeps_the_old_parent() {
    let dir = tmpdir("restart-broken");
    let bin_dir = dir.join("bin");
    std::fs::create_dir(&bin_dir).unwrap();
    let exe = bin_dir.join("ipprotd");
    std::fs::copy(BIN, &exe).unwrap();
    let b = Backend::echo();
    let mut c = Command::new(&exe);
    c.args(["-p", "0@127.0.0.1", "--verbose", "-P", &b.dest()]);
    let d = Daemon::start_cmd(c, &[]);
    let pid = d.pid();

    // an upgrade that does not start
    std::fs::remove_file(&exe).unwrap();
    script(&bin_dir, "ipprotd", "echo 'broken upgrade' >&2\nexit 1\n");
    signal(pid, libc::SIGHUP);
    let want = "ended before it was ready (exit status 1); still serving";
    assert!(d.wait_stderr(want), "{}", d.stderr());
    assert!(alive(pid));
    d.echo(b"still the old one");

    // no binary at all
    std::fs::remove_file(&exe).unwrap();
    signal(pid, libc::SIGHUP);
    let want = format!(
        "ipprotd: SIGHUP: cannot restart: executable {} was removed or cannot be read: \
         No such file or directory (os error 2); still serving",
        exe.display()
    );
    assert!(d.wait_stderr(&want), "{}", d.stderr());
    assert!(alive(pid));
    d.echo(b"and still");
    let err = d.stderr();
    assert_eq!(err.matches("SIGHUP: cannot restart").count(), 2, "{err}");
}

/// Datagrams from ipprotd's syslog client until one contains `pat`.
fn syslog_until(u: &UnixDatagram, pat: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut b = vec![0u8; 65536];
    while let Ok(n) = u.recv(&mut b) {
        let m = String::from_utf8_lossy(&b[..n]).into_owned();
        let done = m.contains(pat);
        seen.push(m);
        if done {
            break;
        }
    }
    seen
}

#[test]
fn pid_file_directory_gone_keeps_the_old_parent() {
    // root writes into read-only directories, so the test removes the
    // directory instead: the new parent cannot write the pid file either way
    let dir = tmpdir("restart-pidfile");
    let run_dir = dir.join("run");
    std::fs::create_dir(&run_dir).unwrap();
    let pidf = run_dir.join("ipprotd.pid");
    let sock = dir.join("log.sock");
    let u = UnixDatagram::bind(&sock).unwrap();
    u.set_read_timeout(Some(DEADLINE)).unwrap();
    let b = Backend::echo();
    let port = closed_port();
    detach(&pidf, &port, &b, &["--syslog", "--syslog-socket", p(&sock)]);
    let old: i32 = std::fs::read_to_string(&pidf)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _g = KillOnDrop(old);
    std::fs::remove_dir_all(&run_dir).unwrap();
    signal(old, libc::SIGHUP);
    let want = format!(
        "failed: -Dp: cannot use directory {}: No such file or directory (os error 2); \
         still serving",
        run_dir.display()
    );
    let seen = syslog_until(&u, &want);
    assert!(
        seen.iter().any(
            |m| m.contains("SIGHUP: cannot restart: the new parent (pid ") && m.contains(&want)
        ),
        "{seen:?}"
    );
    assert!(alive(old));
    let addr = ("127.0.0.1", port.port());
    assert_eq!(exchange(&mut connect(addr), b"old"), b"old");
    signal(old, libc::SIGTERM);
    assert!(wait_until(DEADLINE, || !alive(old)));
}
