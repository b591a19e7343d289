//! The zero-copy relay: once identification is over, a direction that is
//! not recorded goes through a pipe with `splice()`. These tests wait for
//! the open entry (identification done) before the bulk of the traffic,
//! and check in the child's `/proc/PID/fd` that the bulk made it open a
//! pipe (the relay makes a direction's pipe on its first splice), next to the usual: bytes exact both ways, half-close, urgent data in
//! place, the idle timeout, `%b`/`%B` and the data log of the recorded
//! direction (read back with ipprotcat).

use crate::harness::*;
use crate::urgent::{at_mark, send_urgent_between};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{MsgFlags, recv};

/// Entries: the open one, then the close one.
const FMT: &str = "close %x %b %B %f";
const OPEN_FMT: &str = "open %c";

/// How many pipes the process `pid` has open (distinct pipe inodes).
fn pipes(pid: i32) -> usize {
    let dir = format!("/proc/{pid}/fd");
    let mut seen: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|t| t.to_string_lossy().into_owned())
        .filter(|t| t.starts_with("pipe:"))
        .collect();
    seen.sort();
    seen.dedup();
    seen.len()
}

/// A daemon in `dir` with the open entry on, in front of `dest`.
fn start(dir: &Path, dest: &str, extra: &[&str]) -> (Daemon, PathBuf) {
    let mut args = vec!["--open-format", OPEN_FMT];
    args.extend_from_slice(extra);
    Daemon::logged(dir, dest, FMT, &args, &[])
}

/// Connect, one round trip (`hello` / `world`: the backend answers it),
/// and wait for the open entry: from now on nothing needs to be sniffed.
fn identified(d: &Daemon, log: &Path) -> TcpStream {
    let mut c = d.connect();
    assert_eq!(round_trip(&mut c, b"hello", 5), b"world");
    let open = wait_lines(log, 1).remove(0);
    assert!(open.starts_with("open "), "{open}");
    c
}

/// The backend side of [`identified`].
fn greet(s: &mut TcpStream) {
    let mut b = [0u8; 5];
    s.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"hello");
    s.write_all(b"world").unwrap();
}

/// The close entry: status, `%b`, `%B`, `%f`.
fn close_entry(log: &Path) -> (String, u64, u64, String) {
    let line = wait_lines(log, 2).remove(1);
    let f: Vec<&str> = line.split(' ').collect();
    assert_eq!((f.len(), f[0]), (5, "close"), "{line}");
    (
        f[1].to_string(),
        f[2].parse().unwrap(),
        f[3].parse().unwrap(),
        f[4].to_string(),
    )
}

/// What one bulk transfer saw.
struct Bulk {
    /// Pipes the child opened during the transfer: one per direction
    /// spliced for the first time.
    new_pipes: usize,
    /// What the backend received after the greeting.
    at_backend: Vec<u8>,
    /// What the client received after the greeting.
    at_client: Vec<u8>,
}

/// After [`identified`], the client sends `up` and half-closes while the
/// backend sends `down` (with `serial`: only once it has all of `up`, so
/// the half-close travels while the other direction is still to come);
/// the backend closes only after the child's pipes were counted.
fn bulk(
    d: &Daemon,
    log: &Path,
    got: &Got,
    release: &AtomicBool,
    up: &[u8],
    down_len: usize,
) -> Bulk {
    let mut c = identified(d, log);
    let child = d.the_child();
    let before = pipes(child);
    let mut w = c.try_clone().unwrap();
    let up2 = up.to_vec();
    let writer = thread::spawn(move || {
        w.write_all(&up2).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
    });
    let mut at_client = vec![0u8; down_len];
    c.read_exact(&mut at_client).unwrap();
    writer.join().unwrap();
    let mut at_backend = None;
    assert!(
        wait_until(DEADLINE, || {
            at_backend = got.lock().unwrap().take();
            at_backend.is_some()
        }),
        "the backend did not get EOF"
    );
    let new_pipes = pipes(child) - before;
    release.store(true, Ordering::SeqCst);
    assert!(read_all(&mut c).is_empty(), "more than was sent");
    Bulk {
        new_pipes,
        at_backend: at_backend.unwrap_or_default(),
        at_client,
    }
}

/// A backend for [`bulk`]: greets, then sends `down` (at once, or with
/// `serial` after the client's EOF) while it reads to EOF; closes once
/// `release` is set.
fn bulk_backend(down: Vec<u8>, serial: bool) -> (Backend, Got, Arc<AtomicBool>) {
    let got: Got = Arc::new(Mutex::new(None));
    let release = Arc::new(AtomicBool::new(false));
    let (g, r) = (got.clone(), release.clone());
    let down = Arc::new(down);
    let b = Backend::start(move |mut s| {
        greet(&mut s);
        let mut w = s.try_clone().unwrap();
        let data = down.clone();
        let mut send_down = move || w.write_all(&data).unwrap();
        let mut v = Vec::new();
        if serial {
            s.read_to_end(&mut v).unwrap();
            send_down();
        } else {
            let t = thread::spawn(send_down);
            s.read_to_end(&mut v).unwrap();
            t.join().unwrap();
        }
        *g.lock().unwrap() = Some(v);
        wait_until(DEADLINE, || r.load(Ordering::SeqCst));
        let _ = s.shutdown(Shutdown::Write);
    });
    (b, got, release)
}

#[test]
fn spliced_up_recorded_down_byte_exact() {
    let dir = tmpdir("splice-one-way");
    let up = random_bytes(6 << 20, 31);
    let down = random_bytes(5 << 20, 32);
    let (b, got, release) = bulk_backend(down.clone(), false);
    // -f alone records what goes to the client; -M marks every chunk,
    // the spliced ones from the client too
    let prefix = dir.join("prot");
    let (d, log) = start(&dir, &b.dest(), &["-f", p(&prefix), "-M"]);
    let r = bulk(&d, &log, &got, &release, &up, down.len());
    assert!(
        r.at_backend == up,
        "backend got {} of {} bytes",
        r.at_backend.len(),
        up.len()
    );
    assert!(
        r.at_client == down,
        "client got {} of {} bytes",
        r.at_client.len(),
        down.len()
    );
    // the direction from the client is spliced, the recorded one is not
    assert_eq!(r.new_pipes, 1, "pipes opened for the transfer");
    let (down_n, up_n) = (down.len() as u64, up.len() as u64);
    let (status, bin, bout, file) = close_entry(&log);
    assert_eq!((status.as_str(), bin, bout), ("ok", 5 + up_n, 5 + down_n));
    // every recorded byte is there, and the spliced direction has marker
    // lines only
    let out = ipprotcat_in(&["--raw", "--direction", "out", &file], &dir, "UTC", b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout[5..] == down[..] && &out.stdout[..5] == b"world",
        "recorded {} bytes",
        out.stdout.len()
    );
    let inward = ipprotcat_in(&["--raw", "--direction", "in", &file], &dir, "UTC", b"");
    assert!(inward.status.success());
    assert!(
        inward.stdout.is_empty(),
        "{} bytes from the client recorded",
        inward.stdout.len()
    );
    let summary = ipprotcat_in(&["--summary", &file], &dir, "UTC", b"");
    let text = String::from_utf8_lossy(&summary.stdout);
    assert!(summary.status.success(), "{text}");
    assert!(text.contains("in") && text.contains("out"), "{text}");
}

#[test]
fn half_close_mid_splice_both_ways() {
    let dir = tmpdir("splice-half-close");
    let up = random_bytes(4 << 20, 41);
    let down = random_bytes(3 << 20, 42);
    // the backend answers only after the client's EOF reached it
    let (b, got, release) = bulk_backend(down.clone(), true);
    let (d, log) = start(&dir, &b.dest(), &[]);
    let r = bulk(&d, &log, &got, &release, &up, down.len());
    assert!(
        r.at_backend == up,
        "backend got {} of {} bytes",
        r.at_backend.len(),
        up.len()
    );
    assert!(
        r.at_client == down,
        "client got {} of {} bytes",
        r.at_client.len(),
        down.len()
    );
    // the direction to the client may have been spliced already (its
    // "world" once identification was over)
    assert!(r.new_pipes >= 1, "no pipe opened for the transfer");
    let (status, bin, bout, _) = close_entry(&log);
    assert_eq!(
        (status.as_str(), bin, bout),
        ("ok", 5 + up.len() as u64, 5 + down.len() as u64)
    );
}

/// Read a stream with an urgent byte somewhere in it, more than the
/// socket buffers hold before it: (bytes before the mark, the urgent
/// byte, the `after` bytes that follow it). Reads only what poll announced, and
/// at the mark only once the urgent byte is there, so no read steps
/// over it.
fn recv_urgent_between(s: &mut TcpStream, after: usize) -> (Vec<u8>, u8, Vec<u8>) {
    let end = std::time::Instant::now() + DEADLINE;
    let mut before = Vec::new();
    let mut b = vec![0u8; 65536];
    loop {
        assert!(
            std::time::Instant::now() < end,
            "no urgent byte after {} bytes",
            before.len()
        );
        let mut fds = [PollFd::new(
            s.as_fd(),
            PollFlags::POLLIN | PollFlags::POLLPRI,
        )];
        let _ = poll(&mut fds, PollTimeout::from(100u16));
        let rev = fds[0].revents().unwrap_or(PollFlags::empty());
        if rev.contains(PollFlags::POLLPRI) && at_mark(s) {
            let mut u = [0u8; 1];
            assert_eq!(recv(s.as_raw_fd(), &mut u, MsgFlags::MSG_OOB), Ok(1));
            let mut rest = vec![0u8; after];
            s.read_exact(&mut rest).unwrap();
            return (before, u[0], rest);
        }
        if rev.contains(PollFlags::POLLIN) && !at_mark(s) {
            let n = read_some(s, &mut b).unwrap();
            assert!(
                n > 0,
                "EOF before the urgent byte, after {} bytes",
                before.len()
            );
            before.extend_from_slice(&b[..n]);
        }
    }
}

#[test]
fn urgent_byte_in_place_during_a_spliced_transfer() {
    let dir = tmpdir("splice-urgent");
    let (b1, a1) = (random_bytes(2 << 20, 51), random_bytes(1 << 20, 52));
    let (b2, a2) = (random_bytes(2 << 20, 53), random_bytes(1 << 20, 54));
    let at_backend = Arc::new(Mutex::new(None));
    let g = at_backend.clone();
    let (sb, sa, up_after) = (b2.clone(), a2.clone(), a1.len());
    let release = Arc::new(AtomicBool::new(false));
    let r = release.clone();
    let backend = Backend::start(move |mut s| {
        greet(&mut s);
        let mut w = s.try_clone().unwrap();
        let (sb, sa) = (sb.clone(), sa.clone());
        let t = thread::spawn(move || send_urgent_between(&mut w, &sb, b'?', &sa));
        *g.lock().unwrap() = Some(recv_urgent_between(&mut s, up_after));
        t.join().unwrap();
        wait_until(DEADLINE, || r.load(Ordering::SeqCst));
        let _ = s.shutdown(Shutdown::Write);
        let _ = read_all(&mut s);
    });
    let (d, log) = start(&dir, &backend.dest(), &[]);
    let mut c = identified(&d, &log);
    let child = d.the_child();
    let before = pipes(child);
    let mut w = c.try_clone().unwrap();
    let (cb, ca) = (b1.clone(), a1.clone());
    let t = thread::spawn(move || send_urgent_between(&mut w, &cb, b'!', &ca));
    let down = recv_urgent_between(&mut c, a2.len());
    t.join().unwrap();
    assert!(
        down.0 == b2 && down.1 == b'?' && down.2 == a2,
        "to the client: {} + {:?} + {} bytes",
        down.0.len(),
        down.1,
        down.2.len()
    );
    let mut up = None;
    assert!(wait_until(DEADLINE, || {
        up = at_backend.lock().unwrap().take();
        up.is_some()
    }));
    // the client's bytes went through a pipe (the server's may have
    // since "world")
    assert!(pipes(child) > before, "no pipe opened for the transfer");
    release.store(true, Ordering::SeqCst);
    c.shutdown(Shutdown::Write).unwrap();
    assert!(read_all(&mut c).is_empty(), "more than was sent");
    let up = up.unwrap_or_default();
    assert!(
        up.0 == b1 && up.1 == b'!' && up.2 == a1,
        "to the server: {} + {:?} + {} bytes",
        up.0.len(),
        up.1,
        up.2.len()
    );
    let (status, bin, bout, _) = close_entry(&log);
    let n = |b: &[u8], a: &[u8]| 5 + b.len() as u64 + 1 + a.len() as u64;
    assert_eq!(
        (status.as_str(), bin, bout),
        ("ok", n(&b1, &a1), n(&b2, &a2))
    );
}

#[test]
fn idle_timeout_after_a_spliced_transfer() {
    let dir = tmpdir("splice-idle");
    let up = random_bytes(2 << 20, 61);
    let got: Got = Arc::new(Mutex::new(None));
    let g = got.clone();
    let n = up.len();
    let backend = Backend::start(move |mut s| {
        greet(&mut s);
        let mut v = vec![0u8; n];
        s.read_exact(&mut v).unwrap();
        *g.lock().unwrap() = Some(v);
        // then silence until the proxy gives up on the connection
        let _ = read_all(&mut s);
    });
    let (d, log) = start(&dir, &backend.dest(), &["--idle-timeout", "2"]);
    let mut c = identified(&d, &log);
    let child = d.the_child();
    let before = pipes(child);
    c.write_all(&up).unwrap();
    let mut at_backend = None;
    assert!(wait_until(DEADLINE, || {
        at_backend = got.lock().unwrap().take();
        at_backend.is_some()
    }));
    let new_pipes = pipes(child) - before;
    assert!(
        at_backend.is_some_and(|v| v == up),
        "backend did not get the bytes"
    );
    assert_eq!(new_pipes, 1, "pipes opened for the transfer");
    let t0 = std::time::Instant::now();
    assert!(read_all(&mut c).is_empty());
    let waited = t0.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(1500),
        "closed after {waited:?}"
    );
    let (status, bin, bout, _) = close_entry(&log);
    assert_eq!(
        (status.as_str(), bin, bout),
        ("idle", 5 + up.len() as u64, 5)
    );
}
