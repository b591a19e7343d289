//! Test harness: a temp dir per test, the real `ipprotd` started on a
//! loopback port 0 and waited for (its `--verbose` "listening on" line,
//! under a deadline), backend servers written in the tests, and
//! wait-for-a-condition helpers. Never a fixed sleep for readiness.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_ipprotd");
/// Deadline for anything the tests wait for.
pub const DEADLINE: Duration = Duration::from_secs(20);

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh, empty directory for one test.
pub fn tmpdir(name: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let d = std::env::temp_dir().join(format!("ipprotd-test-{}-{name}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Poll `f` every few milliseconds until it is true or `limit` passed.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// The lines of a file (empty if missing).
pub fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

/// Wait until `path` has at least `n` lines; return them.
pub fn wait_lines(path: &Path, n: usize) -> Vec<String> {
    assert!(
        wait_until(DEADLINE, || lines(path).len() >= n),
        "{} did not get {n} lines: {:?}",
        path.display(),
        lines(path)
    );
    lines(path)
}

/// Run ipprotd to completion (usage and start errors), with a deadline.
pub fn run(args: &[&str]) -> Output {
    run_in(args, None)
}

pub fn run_in(args: &[&str], cwd: Option<&Path>) -> Output {
    let mut c = Command::new(BIN);
    c.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(d) = cwd {
        c.current_dir(d);
    }
    let mut child = c.spawn().unwrap();
    let end = Instant::now() + DEADLINE;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("ipprotd {args:?} did not exit");
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// `args` plus `-p 0@127.0.0.1` (unless `-p` is given) and `--verbose`.
fn daemon_args<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut v: Vec<&str> = Vec::new();
    if !args.contains(&"-p") {
        v.extend(["-p", "0@127.0.0.1"]);
    }
    v.push("--verbose");
    v.extend_from_slice(args);
    v
}

/// A running ipprotd in the foreground.
pub struct Daemon {
    pub child: Child,
    pub addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Daemon {
    /// Start with `args`; adds `-p 0@127.0.0.1` unless `-p` is given, and
    /// `--verbose`; waits for the "listening on" line.
    pub fn start(args: &[&str]) -> Daemon {
        Daemon::start_in(args, None)
    }

    pub fn start_in(args: &[&str], cwd: Option<&Path>) -> Daemon {
        Daemon::start_with(args, cwd, &[])
    }

    pub fn start_with(args: &[&str], cwd: Option<&Path>, env: &[(&str, &str)]) -> Daemon {
        let v = daemon_args(args);
        let mut c = Command::new(BIN);
        c.args(&v);
        Daemon::launch(c, cwd, env, format!("ipprotd {v:?}"))
    }

    /// Spawn `c` (ipprotd, possibly behind a wrapper) with stderr captured
    /// and wait for its "listening on" line.
    fn launch(mut c: Command, cwd: Option<&Path>, env: &[(&str, &str)], what: String) -> Daemon {
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(d) = cwd {
            c.current_dir(d);
        }
        for (k, val) in env {
            c.env(k, val);
        }
        let mut child = c.spawn().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let err = child.stderr.take().unwrap();
        let sink = stderr.clone();
        thread::spawn(move || {
            let mut r = BufReader::new(err);
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        let mut addr = None;
        let ok = wait_until(DEADLINE, || {
            let s = stderr.lock().unwrap();
            if let Some(i) = s.find("listening on ") {
                let rest = &s[i + 13..];
                let end = rest.find('\n').unwrap_or(rest.len());
                addr = rest[..end].trim().parse().ok();
            }
            addr.is_some()
        });
        if !ok {
            let _ = child.kill();
            panic!("{what} did not start: {}", stderr.lock().unwrap());
        }
        Daemon {
            child,
            addr: addr.unwrap(),
            stderr,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        s
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Wait until stderr contains `pat`.
    pub fn wait_stderr(&self, pat: &str) -> bool {
        wait_until(DEADLINE, || self.stderr().contains(pat))
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Send SIGTERM and wait for the exit.
    pub fn term(&mut self) -> ExitStatus {
        signal(self.pid(), libc::SIGTERM);
        self.wait_exit()
    }

    pub fn wait_exit(&mut self) -> ExitStatus {
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < end, "ipprotd did not exit");
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn signal(pid: i32, sig: i32) {
    // SAFETY: sending a signal to a process this test started.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// The children of `pid` (from /proc).
pub fn children(pid: i32) -> Vec<i32> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) {
                // the fields after the command name in parentheses
                if let Some(rest) = stat.rsplit_once(')').map(|x| x.1) {
                    let f: Vec<&str> = rest.split_whitespace().collect();
                    if f.get(1).and_then(|pp| pp.parse::<i32>().ok()) == Some(pid) {
                        v.push(p);
                    }
                }
            }
        }
    }
    v
}

/// Process state letter (`Z` = zombie) of `pid`, if it exists.
pub fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

/// A backend server on 127.0.0.1:0 running `handler` for every connection
/// in its own thread. Stops accepting when dropped (the threads of open
/// connections end with them).
pub struct Backend {
    pub addr: SocketAddr,
    pub accepted: Arc<AtomicUsize>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Backend {
    pub fn start<F>(handler: F) -> Backend
    where
        F: Fn(TcpStream) + Send + Sync + 'static,
    {
        Backend::start_on("127.0.0.1:0", handler)
    }

    pub fn start_on<F>(bind: &str, handler: F) -> Backend
    where
        F: Fn(TcpStream) + Send + Sync + 'static,
    {
        let l = TcpListener::bind(bind).unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let h = Arc::new(handler);
        let (acc, st) = (accepted.clone(), stop.clone());
        thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                match l.accept() {
                    Ok((s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        s.set_read_timeout(Some(DEADLINE)).unwrap();
                        acc.fetch_add(1, Ordering::SeqCst);
                        let h = h.clone();
                        thread::spawn(move || h(s));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Backend {
            addr,
            accepted,
            stop,
        }
    }

    /// Echo everything back until EOF, then close.
    pub fn echo() -> Backend {
        Backend::start(|mut s| {
            let mut b = vec![0u8; 65536];
            loop {
                match s.read(&mut b) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if s.write_all(&b[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
        })
    }

    /// `-P` argument for this backend.
    pub fn dest(&self) -> String {
        format!("{}@{}", self.addr.port(), self.addr.ip())
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Read until EOF.
pub fn read_all(s: &mut TcpStream) -> Vec<u8> {
    let mut v = Vec::new();
    s.read_to_end(&mut v).unwrap();
    v
}

/// Deterministic pseudo-random bytes (xorshift).
pub fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A port on 127.0.0.1 with nothing listening (bound, then released).
pub fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ---------------------------------------------------------------------
// Additions for relay.rs, connlog.rs, cli.rs, daemon.rs, datalog.rs.
// ---------------------------------------------------------------------

impl Daemon {
    /// Like [`Daemon::start_with`], but run through
    /// `sh -c '<prelude> exec "$0" "$@"'` (e.g. `ulimit -f 1; trap '' XFSZ;`).
    pub fn start_sh(
        prelude: &str,
        args: &[&str],
        cwd: Option<&Path>,
        env: &[(&str, &str)],
    ) -> Daemon {
        let v = daemon_args(args);
        let script = format!("{prelude} exec \"$0\" \"$@\"");
        let mut c = Command::new("sh");
        c.arg("-c").arg(&script).arg(BIN).args(&v);
        Daemon::launch(c, cwd, env, format!("sh -c {script:?} ipprotd {v:?}"))
    }
}

/// Time zone the tests run ipprotd in when they check local times: no
/// daylight saving time, and an offset that is not a whole hour.
pub const TZ_ENV: &[(&str, &str)] = &[("TZ", "Asia/Kolkata")];
/// Its UTC offset in seconds (+05:30).
pub const TZ_OFFSET: i32 = 19_800;

/// Seconds since the epoch, now.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Microseconds since the epoch, now.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

fn civil(secs: i64, offset: i32) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .unwrap()
        .to_offset(time::UtcOffset::from_whole_seconds(offset).unwrap())
}

fn offset_text(offset: i32) -> String {
    let sign = if offset < 0 { '-' } else { '+' };
    let a = offset.unsigned_abs();
    format!("{sign}{:02}:{:02}", a / 3600, a % 3600 / 60)
}

/// `yyyy-mm-dd HH:MM:SS+hh:mm` of `secs` at `offset`.
pub fn local_text(secs: i64, offset: i32) -> String {
    let t = civil(secs, offset);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}{}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        offset_text(offset)
    )
}

/// `yyyy-mm-ddTHH:MM:SS.uuuuuu+hh:mm` of `us` at `offset`.
pub fn rfc3339_us(us: i64, offset: i32) -> String {
    let t = civil(us.div_euclid(1_000_000), offset);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}{}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        us.rem_euclid(1_000_000),
        offset_text(offset)
    )
}

/// `yyyy-mm-dd_HHMMSS` (data-log file names) of `secs` at `offset`.
pub fn file_stamp(secs: i64, offset: i32) -> String {
    let t = civil(secs, offset);
    format!(
        "{:04}-{:02}-{:02}_{:02}{:02}{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Parse `yyyy-mm-dd HH:MM:SS+hh:mm` into (epoch seconds, offset seconds);
/// `None` unless it has exactly that shape.
pub fn parse_local_text(s: &str) -> Option<(i64, i32)> {
    let b = s.as_bytes();
    if b.len() != 25 {
        return None;
    }
    let shape = b.iter().enumerate().all(|(i, c)| match i {
        4 | 7 => *c == b'-',
        10 => *c == b' ',
        13 | 16 | 22 => *c == b':',
        19 => *c == b'+' || *c == b'-',
        _ => c.is_ascii_digit(),
    });
    if !shape {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().unwrap();
    let month = time::Month::try_from(n(5..7) as u8).ok()?;
    let date = time::Date::from_calendar_date(n(0..4) as i32, month, n(8..10) as u8).ok()?;
    let t = time::Time::from_hms(n(11..13) as u8, n(14..16) as u8, n(17..19) as u8).ok()?;
    let sign = if b[19] == b'-' { -1 } else { 1 };
    let offset = sign * (n(20..22) * 3600 + n(23..25) * 60) as i32;
    let off = time::UtcOffset::from_whole_seconds(offset).ok()?;
    let secs = time::PrimitiveDateTime::new(date, t)
        .assume_offset(off)
        .unix_timestamp();
    Some((secs, offset))
}

/// Whether an external program is installed (found in PATH).
pub fn have_tool(name: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p).any(|d| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(d.join(name))
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
    })
}

/// Read until EOF or the first error; return what was read and the
/// error, if any (for truncated compressed streams).
pub fn read_until_error(mut r: impl Read) -> (Vec<u8>, Option<std::io::Error>) {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 4096];
    // bounded: a data log in these tests is far below 1 GiB
    while out.len() < (1 << 30) {
        match r.read(&mut buf) {
            Ok(0) => return (out, None),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

/// The command line (NUL-separated, as text) of `pid`.
pub fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// The process name (`/proc/PID/comm`) of `pid`.
pub fn comm(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim_end().to_string())
}

/// Live (not zombie) `ipprotd` processes whose command line contains
/// `needle` (a path unique to one test).
pub fn ipprotd_pids_with_arg(needle: &str) -> Vec<i32> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if comm(p).as_deref() == Some("ipprotd")
                && !matches!(proc_state(p), Some('Z') | Some('X') | None)
                && cmdline(p).contains(needle)
            {
                v.push(p);
            }
        }
    }
    v
}

/// Make this test process the reaper of orphaned descendants (the
/// detached daemons), so that it can collect their exit status.
pub fn set_subreaper() {
    // SAFETY: prctl with integer arguments only changes a process flag.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(r, 0, "prctl(PR_SET_CHILD_SUBREAPER)");
}

/// Wait for `pid` (a child or an orphan we reap) to exit, within `limit`.
/// Returns the raw wait status, or `None` if it did not exit in time or
/// is not ours to wait for.
pub fn reap_pid(pid: i32, limit: Duration) -> Option<i32> {
    let end = Instant::now() + limit;
    loop {
        let mut st: libc::c_int = 0;
        // SAFETY: waitpid on one specific pid with a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
        if r == pid {
            return Some(st);
        }
        if r < 0 || Instant::now() >= end {
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Set SO_LINGER to 0, so that closing `s` sends a reset.
pub fn set_linger_zero(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a socket we own, with a valid linger struct.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&l as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "setsockopt(SO_LINGER)");
}

/// Whether `::1` can be used (IPv6 loopback configured).
pub fn have_ipv6_loopback() -> bool {
    TcpListener::bind("[::1]:0").is_ok()
}
