//! The parent loop: wait in poll() on the self-pipe and (below the
//! connection cap) the listener; accept; check the allow-list; fork; count
//! and reap children; back off on accept and fork failures. Allocates no
//! relay buffers.
//!
//! It keeps what it knows of every live child (sequence number, addresses,
//! start, its published slot): a child that dies before it wrote its entry
//! gets one from the parent, status `crashed`. TERM, INT and CHLD are
//! blocked around fork(), so a signal meant for the parent never reaches a
//! child, and the accept loop stops as soon as TERM is pending.
//!
//! SIGHUP restarts in place (`restart`): the new parent gets the listener
//! and the next sequence number; while it starts, this loop reaps but does
//! not accept, so the two never accept at once and no number repeats.
//! Once it is ready this parent exits 0 like after SIGTERM: its children
//! carry on, and a `crashed` entry for one of them is no longer written
//! (nobody reaps them with the bookkeeping; the same as after SIGTERM).

use std::collections::hash_map::RandomState;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use allocator_api2::vec::Vec as ParentVec;
use hashbrown::HashMap;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};

use super::activation;
use super::restart::{self, Answer, Exec};
use crate::config::Config;
use crate::config::addr::{ip_text, sock_text};
use crate::log::Once;
use crate::log::conninfo::{ConnInfo, Status};
use crate::log::published;
use crate::log::timefmt::LocalTime;
use crate::os::mmap::{ParentOnly, SharedBits};
use crate::os::process::{self, Fork};
use crate::os::signals::{self, SelfPipe};
use crate::os::{socket, time};
use crate::record::sink;
use crate::session::{self, Accepted, Shared};

/// Pause after accept() or fork() ran out of a resource.
pub const BACKOFF: Duration = Duration::from_millis(100);

/// How long a new parent that closed its readiness pipe may take to exit.
const EXIT_GRACE: Duration = Duration::from_secs(1);

/// A wait status in words, for the log.
fn exit_text(w: &WaitStatus) -> String {
    match w {
        WaitStatus::Exited(_, c) => format!("exit status {c}"),
        WaitStatus::Signaled(_, s, _) => format!("exit signal {s}"),
        other => format!("{other:?}"),
    }
}

struct Parent<'a> {
    config: &'a Config,
    listener: TcpListener,
    pipe: SelfPipe,
    live: usize,
    conn: u64,
    backoff_until: Option<Instant>,
    accept_err: Once,
    fork_err: Once,
    vendor_ports: Option<SharedBits>,
    /// In memory no child inherits ([`ParentOnly`]): the parent writes it
    /// between forks.
    live_children: HashMap<libc::pid_t, Live, RandomState, ParentOnly>,
    /// Published slots no live child holds (parent-only memory, as above).
    free_slots: ParentVec<usize, ParentOnly>,
    exec: Exec,
    /// The new parent of a restart in progress, and how it ended once
    /// reaped.
    restarting: Option<(libc::pid_t, Option<String>)>,
    handed_over: bool,
    /// The listener's own address when it is bound to one (not a
    /// wildcard): then it is every connection's local address, and no
    /// getsockname() is needed.
    bound_local: Option<SocketAddr>,
    /// Whether accepted streams inherit keepalive and no-Nagle from the
    /// listener.
    tuned: bool,
}

/// Where [`run`] starts.
pub struct Start {
    /// Sequence number of the first connection (1, or what a restart
    /// handed over).
    pub next_conn: u64,
    /// How to start ourselves again on SIGHUP.
    pub exec: Exec,
}

/// How [`run`] ended in the parent.
pub struct Ended {
    pub code: i32,
    /// A new parent took over (it owns the pid file now).
    pub handed_over: bool,
}

/// What the parent knows of a live child from fork time.
struct Live {
    conn: u64,
    start: LocalTime,
    peer: SocketAddr,
    local: SocketAddr,
    slot: Option<usize>,
}

/// A connection handed to a fresh child.
struct Child {
    /// The child's own wake-up descriptor.
    pipe: SelfPipe,
    client: Accepted,
    start: LocalTime,
}

/// How [`Parent::serve`] ended.
enum Served {
    /// In the parent: exit with this status.
    Exit(i32),
    /// In a fresh child: serve this connection.
    Child(Child),
}

/// Run until SIGTERM/SIGINT or a restart handed over; returns the exit
/// status (0). In a child, the session runs and the process ends without
/// returning.
pub fn run(listener: TcpListener, config: &Config, pipe: SelfPipe, start: Start) -> Ended {
    // the time-zone rules are read now, not at the first connection
    let _ = time::now_local();
    // no rseq page rewritten by the kernel in the parent or its children
    process::unregister_rseq();
    let tuned = socket::tune_listener(&listener);
    let bound_local = listener
        .local_addr()
        .ok()
        .filter(|a| !a.ip().is_unspecified());
    let numeric_dests = session::upstream::numeric(&config.dests);
    let mut p = Parent {
        config,
        listener,
        pipe,
        live: 0,
        conn: start.next_conn.saturating_sub(1),
        backoff_until: None,
        accept_err: Once::default(),
        fork_err: Once::default(),
        vendor_ports: SharedBits::new(65_536),
        live_children: HashMap::with_hasher_in(RandomState::new(), ParentOnly),
        free_slots: ParentVec::new_in(ParentOnly),
        exec: start.exec,
        restarting: None,
        handed_over: false,
        bound_local,
        tuned,
    };
    if published::create(published::slots_for(config.max_connections)) {
        p.free_slots.extend((0..published::slots()).rev());
    }
    let c = match p.serve() {
        Served::Exit(code) => {
            return Ended {
                code,
                handed_over: p.handed_over,
            };
        }
        Served::Child(c) => c,
    };
    // in the child: the parent's listener and self-pipe go, the rest stays
    let Parent {
        listener,
        pipe,
        conn,
        vendor_ports,
        live_children,
        free_slots,
        ..
    } = p;
    drop(listener);
    drop(pipe);
    // parent-only memory: not mapped in a child, so never dropped here
    std::mem::forget(live_children);
    std::mem::forget(free_slots);
    let shared = Shared {
        config,
        vendor_ports: vendor_ports.as_ref(),
        numeric_dests: &numeric_dests,
    };
    let code = session::run(c.pipe, c.client, conn, c.start, &shared);
    process::exit_now(code);
}

impl Parent<'_> {
    fn below_cap(&self) -> bool {
        self.config.max_connections == 0 || self.live < self.config.max_connections
    }

    /// Reap, stop or restart as the signal flags say; `Some` when the
    /// parent must exit.
    fn on_signals(&mut self) -> Option<Served> {
        if signals::take_chld() {
            self.reap();
        }
        if signals::term_pending() {
            return Some(Served::Exit(0));
        }
        if signals::take_hup() && self.restart() {
            return Some(Served::Exit(0));
        }
        None
    }

    fn serve(&mut self) -> Served {
        loop {
            // what the accept loop's look at the signals found
            if let Some(s) = self.on_signals() {
                return s;
            }
            let (listener, pipe) = (&self.listener, &self.pipe);
            let now = Instant::now();
            if self.backoff_until.is_some_and(|t| t <= now) {
                self.backoff_until = None;
            }
            // at the cap or backing off, leave connections in the backlog
            let want_accept = self.below_cap() && self.backoff_until.is_none();
            let timeout = match self.backoff_until {
                Some(t) => PollTimeout::try_from((t - now).as_millis() as i32 + 1)
                    .unwrap_or(PollTimeout::MAX),
                None => PollTimeout::NONE,
            };
            let mut fds = [
                PollFd::new(pipe.fd(), PollFlags::POLLIN),
                PollFd::new(listener.as_fd(), PollFlags::POLLIN),
            ];
            let n = if want_accept { 2 } else { 1 };
            let ready = match poll(&mut fds[..n], timeout) {
                Ok(_) => {
                    if fds[0].revents().is_some_and(|r| !r.is_empty()) {
                        pipe.drain();
                    }
                    want_accept && fds[1].revents().is_some_and(|r| !r.is_empty())
                }
                Err(nix::errno::Errno::EINTR) => false,
                Err(e) => {
                    crate::log::error(&format!("poll failed: {e}"));
                    return Served::Exit(1);
                }
            };
            if let Some(s) = self.on_signals() {
                return s;
            }
            if ready && let Some(c) = self.accept_some() {
                return Served::Child(c);
            }
        }
    }

    fn reap(&mut self) {
        loop {
            let st = waitpid(None, Some(WaitPidFlag::WNOHANG));
            if let (Ok(w), Some((pid, end))) = (&st, &mut self.restarting)
                && w.pid().map(|p| p.as_raw()) == Some(*pid)
            {
                *end = Some(exit_text(w));
                continue;
            }
            match st {
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(WaitStatus::Exited(pid, code)) => {
                    self.live = self.live.saturating_sub(1);
                    if code != 0 && self.config.verbose {
                        crate::log::info(&format!("child {pid}: exit status {code}"));
                    }
                    self.ended(pid.as_raw());
                }
                Ok(WaitStatus::Signaled(pid, sig, _)) => {
                    self.live = self.live.saturating_sub(1);
                    if self.config.verbose {
                        crate::log::info(&format!("child {pid}: exit signal {sig}"));
                    }
                    self.ended(pid.as_raw());
                }
                Ok(_) => {}
            }
        }
    }

    /// SIGHUP: start the new parent and wait (reaping, not accepting) for
    /// its answer. True when it serves now and this parent must exit.
    fn restart(&mut self) -> bool {
        let next = self.conn + 1;
        let mut pending = match restart::spawn(&self.exec, &self.listener, next) {
            Ok(p) => p,
            Err(why) => {
                crate::log::error(&format!("SIGHUP: cannot restart: {why}; still serving"));
                return false;
            }
        };
        let pid = pending.pid;
        self.restarting = Some((pid, None));
        let deadline = Instant::now() + restart::READY_TIMEOUT;
        let outcome = loop {
            match pending.read() {
                Answer::Ready => break Ok(()),
                Answer::Failed(m) => break Err(format!("the new parent (pid {pid}) failed: {m}")),
                Answer::Closed => {
                    let how = self.end_of(pid);
                    break Err(format!(
                        "the new parent (pid {pid}) ended before it was ready ({how})"
                    ));
                }
                Answer::Waiting => {}
            }
            if signals::term_pending() {
                break Err(format!(
                    "SIGTERM arrived; stopped the new parent (pid {pid})"
                ));
            }
            let now = Instant::now();
            if now >= deadline {
                break Err(format!(
                    "the new parent (pid {pid}) was not ready within {} s; killed it",
                    restart::READY_TIMEOUT.as_secs()
                ));
            }
            let ms = (deadline - now).as_millis().min(i32::MAX as u128) as i32 + 1;
            let mut fds = [
                PollFd::new(self.pipe.fd(), PollFlags::POLLIN),
                PollFd::new(pending.answer.as_fd(), PollFlags::POLLIN),
            ];
            if poll(
                &mut fds,
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
            )
            .is_ok()
                && fds[0].revents().is_some_and(|r| !r.is_empty())
            {
                self.pipe.drain();
            }
            if signals::take_chld() {
                self.reap();
            }
        };
        match outcome {
            Ok(()) => {
                self.restarting = None;
                self.handed_over = true;
                crate::log::notice(&format!(
                    "SIGHUP: restarted: pid {pid} serves now, from connection {next} on; \
                     pid {} exits, {} open connections carry on",
                    std::process::id(),
                    self.live
                ));
                // we are still the unit's main process: name the new one
                activation::notify_ready(pid as u32);
                true
            }
            Err(why) => {
                // it never accepted (it accepts only once ready): nothing of
                // it is lost
                if self
                    .restarting
                    .as_ref()
                    .is_some_and(|(_, end)| end.is_none())
                {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                    let _ = waitpid(nix::unistd::Pid::from_raw(pid), None);
                }
                self.restarting = None;
                crate::log::error(&format!("SIGHUP: cannot restart: {why}; still serving"));
                false
            }
        }
    }

    /// How the new parent `pid` ended: waits for it a little after it
    /// closed its pipe.
    fn end_of(&mut self, pid: libc::pid_t) -> String {
        let until = Instant::now() + EXIT_GRACE;
        loop {
            if let Some((_, Some(end))) = &self.restarting {
                return end.clone();
            }
            match waitpid(nix::unistd::Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) if Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Ok(WaitStatus::StillAlive) => return "still running".into(),
                Ok(w) => {
                    let t = exit_text(&w);
                    self.restarting = Some((pid, Some(t.clone())));
                    return t;
                }
                Err(e) => return format!("cannot wait for it: {e}"),
            }
        }
    }

    /// A child (or the hook it became) was reaped: unless it wrote its
    /// entry, write one for it, status `crashed`; free its slot.
    fn ended(&mut self, pid: libc::pid_t) {
        let Some(c) = self.live_children.remove(&pid) else {
            return;
        };
        let p = c.slot.and_then(published::read).unwrap_or_default();
        if let Some(i) = c.slot {
            self.free_slots.push(i);
        }
        if p.entry_written {
            return;
        }
        let mut info = ConnInfo::new(c.start, c.peer, c.local, c.conn, Status::Crashed);
        info.end = time::now_local();
        info.dest = p.dest;
        info.bytes_in = p.bytes_in;
        info.bytes_out = p.bytes_out;
        info.identity = p.identity;
        if p.file_created
            && let Some(d) = &self.config.datalog
        {
            info.file = Some(sink::file_name(d, &c.start, c.conn, &ip_text(c.peer.ip())));
        }
        if self.config.verbose {
            crate::log::info(&format!(
                "close {} {} crashed in {} out {} secs {}",
                info.conn,
                sock_text(info.client),
                info.bytes_in,
                info.bytes_out,
                info.secs()
            ));
        }
        crate::log::connlog::append(self.config, &self.config.format, &info);
    }

    /// Accept what is waiting, up to the cap; in a fresh child, return its
    /// connection. Stops as soon as TERM is pending: what still waits in
    /// the backlog is not accepted.
    fn accept_some(&mut self) -> Option<Child> {
        loop {
            // signals are read from a descriptor, not delivered: look
            // before each accept (one read that finds nothing, as a rule)
            self.pipe.drain();
            if !self.below_cap() || signals::term_pending() {
                break;
            }
            let (stream, peer) = match socket::accept_nonblocking(&self.listener) {
                Ok(x) => x,
                Err(e) => {
                    if e.kind() == io::ErrorKind::WouldBlock {
                        self.accept_err.clear();
                        return None;
                    }
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ECONNABORTED) | Some(libc::EINTR) | Some(libc::EPROTO)
                    ) {
                        continue;
                    }
                    self.accept_err
                        .hit(&format!("cannot accept connections: {e}; backing off"));
                    self.backoff_until = Some(Instant::now() + BACKOFF);
                    return None;
                }
            };
            self.accept_err.clear();
            self.conn += 1;
            let start = time::now_local();
            if !self.config.allow.allows(peer.ip()) {
                if self.config.verbose {
                    crate::log::info(&format!("deny {} {}", self.conn, sock_text(peer)));
                }
                self.close_with_entry(stream, peer, start, Status::Denied);
                continue;
            }
            let local = match self.bound_local {
                Some(a) => a,
                None => stream.local_addr().unwrap_or(peer),
            };
            let slot = self.free_slots.pop();
            if let Some(i) = slot {
                published::clear(i);
            }
            let blocked = signals::block_for_fork();
            match process::fork() {
                Ok(Fork::Parent(pid)) => {
                    blocked.parent();
                    self.live += 1;
                    self.fork_err.clear();
                    let conn = self.conn;
                    self.live_children.insert(
                        pid,
                        Live {
                            conn,
                            start,
                            peer,
                            local,
                            slot,
                        },
                    );
                }
                Ok(Fork::Child) => {
                    // the child's allocations from here on in pages of
                    // its own, not the parent's heap (`os::heap`)
                    crate::os::heap::enter_child();
                    published::enter_child(slot);
                    // the child's own self-pipe first, then the parent's
                    // listener and pipe can go (in `run`)
                    let pipe = match signals::reinit_in_child(blocked) {
                        Ok(p) => p,
                        Err(e) => {
                            crate::log::error(&format!("cannot set up signals in child: {e}"));
                            process::exit_now(1);
                        }
                    };
                    return Some(Child {
                        pipe,
                        client: Accepted {
                            stream,
                            peer,
                            local,
                            tuned: self.tuned,
                        },
                        start,
                    });
                }
                Err(e) => {
                    blocked.parent();
                    if let Some(i) = slot {
                        self.free_slots.push(i);
                    }
                    self.fork_err.hit(&format!("cannot fork: {e}; backing off"));
                    self.backoff_until = Some(Instant::now() + BACKOFF);
                    self.close_with_entry(stream, peer, start, Status::Error);
                    return None;
                }
            }
        }
        None
    }

    /// Close a connection no child will serve and write its entry.
    fn close_with_entry(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        start: LocalTime,
        status: Status,
    ) {
        let local = stream.local_addr().unwrap_or(peer);
        drop(stream);
        let mut info = ConnInfo::new(start, peer, local, self.conn, status);
        info.end = time::now_local();
        crate::log::connlog::append(self.config, &self.config.format, &info);
    }
}
