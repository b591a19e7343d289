//! The shared set-up of every integration test: a fresh temp dir per test
//! ([`tmpdir`]); the real `ipprotd` started on a loopback port the kernel
//! picks (`-p 0@127.0.0.1 --verbose`) and waited for by its "listening on"
//! line under [`DEADLINE`] ([`Daemon::start`], [`Daemon::start_with`] for a
//! working directory and environment, [`Daemon::logged`] for the usual
//! `-P dest -c DIR/conn.log -C fmt`); backends written in the tests
//! ([`Backend::echo`], [`Backend::scripted`] request/answer rounds,
//! [`Backend::answering`], [`Backend::sequential`], any handler with
//! [`Backend::start`]); client exchanges ([`exchange`], [`Daemon::echo`],
//! [`round_trip`], [`finish`], [`read_some`] which retries EINTR);
//! readiness waits that poll under a deadline, never a fixed sleep
//! ([`wait_until`], [`wait_lines`] for a line, [`wait_for_file`],
//! [`Daemon::wait_stderr`]); a port that stays refused for the whole test
//! and that nobody else can take ([`closed_port`], keep the guard); other
//! programs run under a deadline ([`run`], [`run_limited`],
//! [`ipprotcat_in`]); and tools or conditions that may be missing, checked
//! with a printed skip note ([`need_tool`], [`need`], [`skip`]). All
//! modules share one process: [`set_subreaper`] (the daemon tests) makes
//! it the reaper of every orphan. A new module starts with
//! `use crate::harness::*;`, e.g. `let b = Backend::echo(); let (d, log) =
//! Daemon::logged(&tmpdir("x"), &b.dest(), ENTRY_FMT, &[], &[]);
//! d.echo(b"hi"); wait_lines(&log, 1);`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::socket::{self as sock, AddressFamily, SockFlag, SockType, SockaddrIn, sockopt};
use nix::sys::wait::{WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// The daemon under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_ipprotd");
/// The recording reader under test.
pub const CAT_BIN: &str = env!("CARGO_BIN_EXE_ipprotcat");
/// Deadline for anything the tests wait for.
pub const DEADLINE: Duration = Duration::from_secs(20);
/// How often the waits poll.
const POLL: Duration = Duration::from_millis(10);
/// The connection log format most tests parse: conn, status, bytes, file.
pub const ENTRY_FMT: &str = "%c %x %b %B %f";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

// ---------------------------------------------------------------------
// Files, waits, skips
// ---------------------------------------------------------------------

/// A fresh, empty directory for one test (`name` makes it findable).
pub fn tmpdir(name: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let d = std::env::temp_dir().join(format!("ipprotd-test-{}-{name}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A path as the `&str` an argument list wants.
pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
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
        thread::sleep(POLL);
    }
}

/// Wait (under [`DEADLINE`]) until `path` exists; whether it does.
pub fn wait_for_file(path: &Path) -> bool {
    wait_until(DEADLINE, || path.exists())
}

/// The lines of a file (empty if missing).
pub fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

/// Wait (under [`DEADLINE`]) until `path` has at least `n` lines; return
/// them.
pub fn wait_lines(path: &Path, n: usize) -> Vec<String> {
    assert!(
        wait_until(DEADLINE, || lines(path).len() >= n),
        "{} did not get {n} lines: {:?}",
        path.display(),
        lines(path)
    );
    lines(path)
}

/// Print why a test (or a part of it) is skipped. Tests call it and return.
pub fn skip(why: &str) {
    eprintln!("note: {why}; skipped");
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

/// `cond`, printing a skip note with `why` when it is false:
/// `if !need(is_root(), "--user needs root") { return; }`.
pub fn need(cond: bool, why: &str) -> bool {
    if !cond {
        skip(why);
    }
    cond
}

/// [`have_tool`], printing a skip note naming `what` when it is missing.
pub fn need_tool(name: &str, what: &str) -> bool {
    need(have_tool(name), &format!("{name} is not installed: {what}"))
}

/// Whether the tests run as root.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Whether `::1` can be used (IPv6 loopback configured).
pub fn have_ipv6_loopback() -> bool {
    TcpListener::bind("[::1]:0").is_ok()
}

/// Write an executable (0755) `#!/bin/sh` script `dir/name`; its path.
pub fn script(dir: &Path, name: &str, body: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    p(&path).to_string()
}

/// The data logs (`prot_*`) in `dir`, sorted.
pub fn data_logs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|f| {
            f.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("prot_")
        })
        .collect();
    v.sort();
    v
}

/// The one data log in `dir`.
pub fn only_data_log(dir: &Path) -> PathBuf {
    let v = data_logs(dir);
    assert_eq!(v.len(), 1, "data logs: {v:?}");
    v[0].clone()
}

// ---------------------------------------------------------------------
// Running programs to completion
// ---------------------------------------------------------------------

/// Run `c` with `stdin` fed to it and stdout and stderr captured; killed
/// and `Err` if it has not exited within `limit`.
pub fn run_limited(mut c: Command, stdin: &[u8], limit: Duration) -> Result<Output, String> {
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {c:?}: {e}"))?;
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let feed = thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let drain = |mut r: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let end = Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{c:?} did not exit within {limit:?}"));
        }
        thread::sleep(POLL);
    };
    let _ = feed.join();
    Ok(Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    })
}

/// Run ipprotd to completion (usage and start errors, `-D` starts).
pub fn run(args: &[&str]) -> Output {
    run_in(args, None)
}

/// [`run`] in the working directory `cwd`.
pub fn run_in(args: &[&str], cwd: Option<&Path>) -> Output {
    let mut c = Command::new(BIN);
    c.args(args);
    if let Some(d) = cwd {
        c.current_dir(d);
    }
    run_limited(c, b"", DEADLINE).unwrap_or_else(|e| panic!("{e}"))
}

/// Run ipprotcat to completion in `cwd` with `TZ=tz` and `stdin`.
pub fn ipprotcat_in(args: &[&str], cwd: &Path, tz: &str, stdin: &[u8]) -> Output {
    let mut c = Command::new(CAT_BIN);
    c.args(args).current_dir(cwd).env("TZ", tz);
    run_limited(c, stdin, DEADLINE).unwrap_or_else(|e| panic!("{e}"))
}

// ---------------------------------------------------------------------
// The daemon
// ---------------------------------------------------------------------

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

/// A running ipprotd in the foreground, its stderr collected; killed when
/// dropped.
pub struct Daemon {
    pub child: Child,
    pub addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Daemon {
    /// Start with `args`; adds `-p 0@127.0.0.1` unless `-p` is given, and
    /// `--verbose`; waits (under [`DEADLINE`]) for the "listening on" line
    /// and takes the address from it.
    pub fn start(args: &[&str]) -> Daemon {
        Daemon::start_with(args, None, &[])
    }

    /// [`Daemon::start`] in the working directory `cwd` with `env` added.
    pub fn start_with(args: &[&str], cwd: Option<&Path>, env: &[(&str, &str)]) -> Daemon {
        let v = daemon_args(args);
        let mut c = Command::new(BIN);
        c.args(&v);
        Daemon::launch(c, cwd, env, format!("ipprotd {v:?}"))
    }

    /// Like [`Daemon::start_with`], but run through
    /// `sh -c '<prelude> exec "$0" "$@"'` (e.g. `ulimit -f 1; trap '' XFSZ;`).
    pub fn start_sh(prelude: &str, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let v = daemon_args(args);
        let script = format!("{prelude} exec \"$0\" \"$@\"");
        let mut c = Command::new("sh");
        c.arg("-c").arg(&script).arg(BIN).args(&v);
        Daemon::launch(c, None, env, format!("sh -c {script:?} ipprotd {v:?}"))
    }

    /// The usual set-up: `-P dest -c DIR/conn.log -C fmt` and `extra`, in
    /// the environment `env`; the daemon and the connection log's path.
    pub fn logged(
        dir: &Path,
        dest: &str,
        fmt: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> (Daemon, PathBuf) {
        let log = dir.join("conn.log");
        let args = logged_args(&log, dest, fmt, extra);
        (Daemon::start_with(&args, None, env), log)
    }

    /// [`Daemon::logged`] through [`Daemon::start_sh`] with `prelude`.
    pub fn logged_sh(
        prelude: &str,
        dir: &Path,
        dest: &str,
        fmt: &str,
        extra: &[&str],
    ) -> (Daemon, PathBuf) {
        let log = dir.join("conn.log");
        let args = logged_args(&log, dest, fmt, extra);
        (Daemon::start_sh(prelude, &args, &[]), log)
    }

    /// Spawn `c` (ipprotd with the arguments it needs, possibly behind a
    /// wrapper such as `systemd-socket-activate`) with stderr captured and
    /// wait for its "listening on" line.
    pub fn start_cmd(c: Command, env: &[(&str, &str)]) -> Daemon {
        let what = format!("{c:?}");
        Daemon::launch(c, None, env, what)
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
        let stderr = collect_stderr(&mut child);
        let mut addr = None;
        let ok = wait_until(DEADLINE, || {
            let s = stderr.lock().unwrap();
            addr = listening_on(&s);
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

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// A client connection, reads bounded by [`DEADLINE`].
    pub fn connect(&self) -> TcpStream {
        connect(self.addr)
    }

    /// One connection: send `data`, half-close, return the answer to EOF.
    pub fn exchange(&self, data: &[u8]) -> Vec<u8> {
        exchange(&mut self.connect(), data)
    }

    /// [`Daemon::exchange`] with an echo backend: the answer is `data`.
    pub fn echo(&self, data: &[u8]) {
        let got = self.exchange(data);
        assert!(
            got == data,
            "echo of {} bytes: got {}",
            data.len(),
            got.len()
        );
    }

    /// Everything the daemon wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Wait (under [`DEADLINE`]) until stderr contains `pat`.
    pub fn wait_stderr(&self, pat: &str) -> bool {
        wait_until(DEADLINE, || self.stderr().contains(pat))
    }

    /// The parent's pid.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Wait for exactly one child (connection) and return its pid.
    pub fn the_child(&self) -> i32 {
        let mut kids = Vec::new();
        assert!(
            wait_until(DEADLINE, || {
                kids = children(self.pid());
                kids.len() == 1
            }),
            "children of {}: {kids:?}",
            self.pid()
        );
        kids[0]
    }

    /// Send SIGTERM and wait for the exit.
    pub fn term(&mut self) -> ExitStatus {
        signal(self.pid(), libc::SIGTERM);
        self.wait_exit()
    }

    /// Wait (under [`DEADLINE`]) for the exit.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < end, "ipprotd did not exit");
            thread::sleep(POLL);
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

/// `-P dest -c log -C fmt` and `extra`.
fn logged_args<'a>(log: &'a Path, dest: &'a str, fmt: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["-P", dest, "-c", p(log), "-C", fmt];
    args.extend_from_slice(extra);
    args
}

/// The address of the first `listening on ADDR` line in `text`.
pub fn listening_on(text: &str) -> Option<SocketAddr> {
    let i = text.find("listening on ")?;
    let rest = &text[i + 13..];
    let end = rest.find('\n').unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

// ---------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------

/// Send signal `sig` to `pid` (a process this test started).
pub fn signal(pid: i32, sig: i32) {
    if let Ok(s) = nix::sys::signal::Signal::try_from(sig) {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), s);
    }
}

/// The fields of `/proc/PID/stat` after the command name (field 3 first).
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    Some(rest.split_whitespace().map(String::from).collect())
}

/// The parent pid of `pid`.
pub fn ppid(pid: i32) -> Option<i32> {
    stat_fields(pid)?.get(1)?.parse().ok()
}

/// The children of `pid` (from /proc).
pub fn children(pid: i32) -> Vec<i32> {
    all_pids().filter(|p| ppid(*p) == Some(pid)).collect()
}

/// Every pid in /proc.
fn all_pids() -> impl Iterator<Item = i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
}

/// Process state letter (`Z` = zombie) of `pid`, if it exists.
pub fn proc_state(pid: i32) -> Option<char> {
    stat_fields(pid)?.first()?.chars().next()
}

/// utime + stime of `pid`, in clock ticks.
pub fn cpu_ticks(pid: i32) -> u64 {
    let f = stat_fields(pid).unwrap();
    // fields 14 and 15 of stat; f[0] is field 3
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
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
    all_pids()
        .filter(|p| {
            comm(*p).as_deref() == Some("ipprotd")
                && !matches!(proc_state(*p), Some('Z') | Some('X') | None)
                && cmdline(*p).contains(needle)
        })
        .collect()
}

/// Make this test process the reaper of orphaned descendants (the
/// detached daemons), so that it can collect their exit status.
pub fn set_subreaper() {
    nix::sys::prctl::set_child_subreaper(true).expect("prctl(PR_SET_CHILD_SUBREAPER)");
}

/// Wait for `pid` (a child or an orphan we reap) to exit, within `limit`.
/// Returns its wait status, or `None` if it did not exit in time or is not
/// ours to wait for.
pub fn reap_pid(pid: i32, limit: Duration) -> Option<WaitStatus> {
    let end = Instant::now() + limit;
    loop {
        match nix::sys::wait::waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) if Instant::now() < end => thread::sleep(POLL),
            Ok(WaitStatus::StillAlive) | Err(_) => return None,
            Ok(st) => return Some(st),
        }
    }
}

// ---------------------------------------------------------------------
// Sockets and clients
// ---------------------------------------------------------------------

/// A port on 127.0.0.1 that refuses connections for as long as this guard
/// lives: a socket bound to it (with SO_REUSEADDR) and never listened on.
/// Nobody else can take the port meanwhile (the kernel's port-0 choice
/// and outgoing connections skip bound ports), so a test that needs
/// `refused` sees `refused`; ipprotd (SO_REUSEADDR) may still listen on it
/// when a test gives it to `-p`, e.g. for a detached daemon.
#[must_use = "the port stays closed only while the guard lives"]
pub struct ClosedPort {
    _socket: OwnedFd,
    port: u16,
}

impl ClosedPort {
    /// The port held closed.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `PORT@127.0.0.1`, for `-P` and `-p`.
    pub fn dest(&self) -> String {
        format!("{}@127.0.0.1", self.port)
    }
}

/// A [`ClosedPort`] guard (keep it alive for the whole test).
pub fn closed_port() -> ClosedPort {
    let fd = sock::socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .expect("socket");
    sock::setsockopt(&fd, sockopt::ReuseAddr, &true).expect("SO_REUSEADDR");
    sock::bind(fd.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, 0)).expect("bind 127.0.0.1:0");
    let port = sock::getsockname::<SockaddrIn>(fd.as_raw_fd())
        .expect("getsockname")
        .port();
    ClosedPort { _socket: fd, port }
}

/// A client connection to `addr`, reads bounded by [`DEADLINE`].
pub fn connect(addr: impl std::net::ToSocketAddrs) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s
}

/// Read until EOF.
pub fn read_all(s: &mut TcpStream) -> Vec<u8> {
    let mut v = Vec::new();
    s.read_to_end(&mut v).unwrap();
    v
}

/// One `read`, retried when a signal interrupts it (a socket with a read
/// timeout returns EINTR even for a handler installed with SA_RESTART).
pub fn read_some(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// Send `data`, half-close, return what comes back until EOF.
pub fn exchange(s: &mut TcpStream, data: &[u8]) -> Vec<u8> {
    s.write_all(data).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    read_all(s)
}

/// Half-close and read to EOF, which must bring nothing more.
pub fn finish(s: &mut TcpStream) {
    s.shutdown(Shutdown::Write).unwrap();
    assert!(read_all(s).is_empty(), "data after the last answer");
}

/// Send `data` and read exactly `n` bytes of answer.
pub fn round_trip(s: &mut TcpStream, data: &[u8], n: usize) -> Vec<u8> {
    s.write_all(data).unwrap();
    let mut got = vec![0u8; n];
    s.read_exact(&mut got).unwrap();
    got
}

/// Send `m` and read its echo, which must be `m`.
pub fn echo_round(s: &mut TcpStream, m: &[u8]) {
    assert_eq!(round_trip(s, m, m.len()), m);
}

/// Set SO_LINGER to 0, so that closing `s` sends a reset.
pub fn set_linger_zero(s: &TcpStream) {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    sock::setsockopt(s, sockopt::Linger, &l).expect("setsockopt(SO_LINGER)");
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

/// Bytes from hex text (test vectors).
pub fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

// ---------------------------------------------------------------------
// Backends
// ---------------------------------------------------------------------

/// What a backend read from its client, once the client has finished.
pub type Got = Arc<Mutex<Option<Vec<u8>>>>;

/// A backend server on 127.0.0.1:0 (or another address) running `handler`
/// for every connection in its own thread, reads bounded by [`DEADLINE`].
/// Stops accepting when dropped (the threads of open connections end with
/// them).
pub struct Backend {
    pub addr: SocketAddr,
    pub accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Backend {
    /// A backend on 127.0.0.1:0 running `handler` per connection.
    pub fn start<F>(handler: F) -> Backend
    where
        F: Fn(TcpStream) + Send + Sync + 'static,
    {
        Backend::start_on("127.0.0.1:0", handler)
    }

    /// A backend on `bind` (e.g. `[::1]:0`) running `handler` per
    /// connection.
    pub fn start_on<F>(bind: &str, handler: F) -> Backend
    where
        F: Fn(TcpStream) + Send + Sync + 'static,
    {
        let l = TcpListener::bind(bind).unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
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
            while let Ok(n @ 1..) = read_some(&mut s, &mut b) {
                if s.write_all(&b[..n]).is_err() {
                    break;
                }
            }
        })
    }

    /// A scripted server: for each `(request, answer)` in turn it reads
    /// exactly the request (and stops at any difference), then sends the
    /// answer; after the last round it waits for EOF.
    pub fn scripted(rounds: Vec<(Vec<u8>, Vec<u8>)>) -> Backend {
        let rounds = Arc::new(rounds);
        Backend::start(move |mut s| {
            for (req, resp) in rounds.iter() {
                let mut got = vec![0u8; req.len()];
                if s.read_exact(&mut got).is_err() || got != *req || s.write_all(resp).is_err() {
                    return;
                }
            }
            let _ = read_all(&mut s);
        })
    }

    /// A server that reads `expect` bytes (whatever they are), answers
    /// `answer`, then waits for EOF.
    pub fn answering(expect: usize, answer: Vec<u8>) -> Backend {
        Backend::start(move |mut s| {
            let mut got = vec![0u8; expect];
            if s.read_exact(&mut got).is_ok() && s.write_all(&answer).is_ok() {
                let _ = read_all(&mut s);
            }
        })
    }

    /// A server that reads the client's bytes until EOF (stored in the
    /// returned [`Got`]), then sends `send` and closes.
    pub fn sequential(send: Vec<u8>) -> (Backend, Got) {
        let got: Got = Arc::new(Mutex::new(None));
        let g = got.clone();
        let b = Backend::start(move |mut s| {
            let v = read_all(&mut s);
            *g.lock().unwrap() = Some(v);
            let _ = s.write_all(&send);
        });
        (b, got)
    }

    /// `-P` argument for this backend.
    pub fn dest(&self) -> String {
        format!("{}@{}", self.addr.port(), self.addr.ip())
    }

    /// How many connections it accepted so far.
    pub fn count(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Wait until a backend's [`Got`] is filled and take it.
pub fn take_got(got: &Got) -> Vec<u8> {
    assert!(
        wait_until(DEADLINE, || got.lock().unwrap().is_some()),
        "the backend did not get the client's EOF"
    );
    got.lock().unwrap().take().unwrap()
}

// ---------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------

/// Time zone the tests run ipprotd in when they check local times: no
/// daylight saving time, and an offset that is not a whole hour.
pub const TZ_ENV: &[(&str, &str)] = &[("TZ", "Asia/Kolkata")];
/// Its UTC offset in seconds (+05:30).
pub const TZ_OFFSET: i32 = 19_800;

/// Seconds since the epoch, now.
pub fn now_secs() -> i64 {
    now_us().div_euclid(1_000_000)
}

/// Microseconds since the epoch, now.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// `secs` at `offset`: year, month, day, hour, minute, second, offset text.
fn civil(secs: i64, offset: i32) -> (i32, u8, u8, u8, u8, u8, String) {
    let t = time::OffsetDateTime::from_unix_timestamp(secs)
        .unwrap()
        .to_offset(time::UtcOffset::from_whole_seconds(offset).unwrap());
    let sign = if offset < 0 { '-' } else { '+' };
    let a = offset.unsigned_abs();
    let off = format!("{sign}{:02}:{:02}", a / 3600, a % 3600 / 60);
    let (y, mo, d) = (t.year(), u8::from(t.month()), t.day());
    (y, mo, d, t.hour(), t.minute(), t.second(), off)
}

/// `yyyy-mm-dd HH:MM:SS+hh:mm` of `secs` at `offset`.
pub fn local_text(secs: i64, offset: i32) -> String {
    let (y, mo, d, h, mi, s, off) = civil(secs, offset);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}{off}")
}

/// `yyyy-mm-ddTHH:MM:SS.uuuuuu+hh:mm` of `us` at `offset`.
pub fn rfc3339_us(us: i64, offset: i32) -> String {
    let (y, mo, d, h, mi, s, off) = civil(us.div_euclid(1_000_000), offset);
    let frac = us.rem_euclid(1_000_000);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:06}{off}")
}

/// `yyyy-mm-dd_HHMMSS` (data-log file names) of `secs` at `offset`.
pub fn file_stamp(secs: i64, offset: i32) -> String {
    let (y, mo, d, h, mi, s, _) = civil(secs, offset);
    format!("{y:04}-{mo:02}-{d:02}_{h:02}{mi:02}{s:02}")
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

// ---------------------------------------------------------------------
// Recordings
// ---------------------------------------------------------------------

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

/// The whole content of a gzip (`.gz`, all members) or bzip2 (`.bz2`,
/// all streams) data log, by its name; a plain one as it is. Panics on a
/// damaged file.
pub fn decompressed(path: &Path) -> Vec<u8> {
    let raw = std::fs::read(path).unwrap();
    let name = p(path);
    let mut out = Vec::new();
    let r = if name.ends_with(".gz") {
        flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut out)
    } else if name.ends_with(".bz2") {
        bzip2::read::MultiBzDecoder::new(&raw[..]).read_to_end(&mut out)
    } else {
        return raw;
    };
    r.unwrap_or_else(|e| panic!("{name}: not a valid compressed file: {e}"));
    out
}

// ---------------------------------------------------------------------
// The harness's own checks
// ---------------------------------------------------------------------

/// A [`ClosedPort`] refuses connections, and while it lives no port-0
/// bind (listener or backend) is handed the same port.
#[test]
fn closed_port_stays_refused_and_untaken() {
    let guard = closed_port();
    let e = TcpStream::connect(("127.0.0.1", guard.port())).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    let taken: Vec<TcpListener> = (0..200)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    assert!(
        taken
            .iter()
            .all(|l| l.local_addr().unwrap().port() != guard.port()),
        "port {} handed out again",
        guard.port()
    );
    drop(taken);
    let e = TcpStream::connect(("127.0.0.1", guard.port())).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
}

// ---------------------------------------------------------------------
// A real PostgreSQL server
// ---------------------------------------------------------------------

/// A temporary PostgreSQL cluster on a loopback port, started by
/// [`PgCluster::start`]; stopped and removed when dropped.
pub struct PgCluster {
    pub bin: PathBuf,
    pub base: PathBuf,
    pub data: PathBuf,
    /// Run the server's tools as this user (we are root).
    pub run_as: Option<String>,
    /// The port it listens on (held refused until the server took it).
    pub port: ClosedPort,
}

impl PgCluster {
    /// initdb a cluster in a temp dir named after `name` and start it on
    /// 127.0.0.1 with the server settings `settings` (`name=value`, as
    /// for `-c`); its log is [`PgCluster::log`]. `None` (and a printed
    /// skip note) when PostgreSQL or psql is not installed.
    pub fn start(name: &str, settings: &[&str]) -> Option<PgCluster> {
        let bin = pg_bindir();
        if !need(
            bin.is_some(),
            "postgresql not installed (no /usr/lib/postgresql/*/bin/postgres)",
        ) {
            return None;
        }
        let run_as = if is_root() {
            let known = Command::new("id")
                .args(["-u", "postgres"])
                .output()
                .is_ok_and(|o| o.status.success());
            if !need(
                known,
                "postgresql not installed (no postgres user to run it as root)",
            ) {
                return None;
            }
            Some("postgres".to_string())
        } else {
            None
        };
        let base = tmpdir(name);
        let cluster = PgCluster {
            bin: bin?,
            data: base.join("data"),
            base: base.clone(),
            run_as,
            port: closed_port(),
        };
        if let Some(u) = &cluster.run_as {
            let st = Command::new("chown")
                .arg(format!("{u}:"))
                .arg(&base)
                .status()
                .unwrap();
            assert!(st.success(), "chown {u} {}", base.display());
        }
        let mut initdb = cluster.tool("initdb");
        initdb
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&cluster.data);
        let (ok, out) = run_ok(initdb, Duration::from_secs(120));
        assert!(ok, "initdb failed: {out}");
        let port = cluster.port.port();
        let mut opts = format!(
            "-h 127.0.0.1 -p {port} -k {} -c fsync=off -c max_connections=20",
            base.display()
        );
        for s in settings {
            opts.push_str(&format!(" -c {s}"));
        }
        let mut start = cluster.tool("pg_ctl");
        start
            .args(["start", "-W", "-D"])
            .arg(&cluster.data)
            .arg("-l")
            .arg(cluster.log())
            .args(["-o", &opts]);
        let (ok, out) = run_ok(start, Duration::from_secs(60));
        assert!(ok, "pg_ctl start failed: {out}");
        let ready = wait_until(Duration::from_secs(60), || {
            let mut c = cluster.tool("pg_isready");
            c.args(["-q", "-h", "127.0.0.1", "-p", &port.to_string(), "-t", "2"]);
            run_ok(c, Duration::from_secs(10)).0
        });
        assert!(
            ready,
            "postgres did not get ready: {}",
            std::fs::read_to_string(cluster.log()).unwrap_or_default()
        );
        Some(cluster)
    }

    /// The server's log file.
    pub fn log(&self) -> PathBuf {
        self.base.join("server.log")
    }

    /// `-P` for ipprotd in front of it.
    pub fn dest(&self) -> String {
        self.port.dest()
    }

    /// A command for one of the server's tools, as the cluster's owner.
    pub fn tool(&self, name: &str) -> Command {
        let prog = self.bin.join(name);
        let mut c = match &self.run_as {
            Some(u) => {
                let mut c = Command::new("runuser");
                c.args(["-u", u, "--"]).arg(prog);
                c
            }
            None => Command::new(prog),
        };
        c.current_dir(&self.base).stdin(Stdio::null());
        c
    }

    /// A client program (psql, pgbench): the cluster's own, else PATH's.
    pub fn client(&self, name: &str) -> Option<PathBuf> {
        if self.bin.join(name).is_file() {
            Some(self.bin.join(name))
        } else if have_tool(name) {
            Some(PathBuf::from(name))
        } else {
            None
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.data.join("postmaster.pid").exists() {
            let _ = self
                .tool("pg_ctl")
                .args(["stop", "-m", "immediate", "-D"])
                .arg(&self.data)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// The newest `/usr/lib/postgresql/<v>/bin` with a server, if any.
pub fn pg_bindir() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            let all = ["postgres", "initdb", "pg_ctl", "pg_isready"]
                .iter()
                .all(|t| bin.join(t).is_file());
            all.then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, b)| b)
}

/// Run `c` to completion within `limit`; whether it succeeded, and its
/// output.
pub fn run_ok(c: Command, limit: Duration) -> (bool, String) {
    match run_limited(c, b"", limit) {
        Ok(o) => (
            o.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        ),
        Err(e) => (false, e),
    }
}

// ---------------------------------------------------------------------
// A process whose stderr is watched (wrappers such as
// systemd-socket-activate, which start ipprotd only later)
// ---------------------------------------------------------------------

/// A spawned process, stderr collected in the background; killed (by its
/// pid) when dropped.
pub struct Watched {
    pub child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Watched {
    /// Spawn `c` with stdin/stdout on /dev/null and stderr collected.
    pub fn spawn(mut c: Command) -> Watched {
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let stderr = collect_stderr(&mut child);
        Watched { child, stderr }
    }

    /// Everything it (and what it started) wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Wait (under [`DEADLINE`]) until stderr contains `pat`.
    pub fn wait_stderr(&self, pat: &str) -> bool {
        wait_until(DEADLINE, || self.stderr().contains(pat))
    }

    /// Wait (under [`DEADLINE`]) for the exit.
    pub fn wait_exit(&mut self) -> Option<ExitStatus> {
        let mut st = None;
        wait_until(DEADLINE, || {
            st = self.child.try_wait().ok().flatten();
            st.is_some()
        });
        st
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `sha256sum FILE`, the digest only (lower-case hex), as an admin checks it.
pub fn sha256sum(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success(), "sha256sum {}", path.display());
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Collect `child`'s stderr in the background, line by line.
fn collect_stderr(child: &mut Child) -> Arc<Mutex<String>> {
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
    stderr
}
