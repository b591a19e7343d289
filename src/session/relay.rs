//! The relay: one poll loop over the client, the destination and the
//! child's self-pipe, with two fixed buffers named by direction. A side is
//! read only when its buffer is drained, so one read is one chunk; every
//! chunk goes to the [`Tap`] right after the read, before it is written
//! on. Never opens files, never formats text, never looks at signals
//! itself: the caller says when to stop.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::os::mmap::Region;
use crate::os::signals::SelfPipe;
use crate::os::socket;
use crate::record::block::Dir;

/// What watches the traffic: the recorder and the identity sniffer.
/// Every call also gets the relay's byte totals so far (`data` included),
/// so a tap keeps no counters of its own.
pub trait Tap {
    /// A chunk was read from the side `dir` comes from.
    fn chunk(&mut self, dir: Dir, data: &[u8], totals: &Totals);
    /// A chunk read from the side `dir` comes from has been written on,
    /// whole: what may look at it without delaying the relay does it here.
    fn forwarded(&mut self, dir: Dir, data: &[u8]) {
        let _ = (dir, data);
    }
    /// The side `dir` comes from reached EOF.
    fn eof(&mut self, dir: Dir, totals: &Totals);
    /// When [`Tap::tick`] wants to be called next, if ever.
    fn deadline(&self) -> Option<Instant>;
    /// The deadline passed.
    fn tick(&mut self, now: Instant, totals: &Totals);
}

/// Why the relay ended.
#[derive(Debug)]
pub enum End {
    /// Both directions ended with EOF and were drained.
    Closed,
    /// A reset (or write to a closed peer) on either side.
    Reset,
    /// `--idle-timeout` passed with no traffic.
    Idle,
    /// SIGTERM or SIGINT.
    Killed,
    /// Any other socket error.
    Failed(io::Error),
}

/// Bytes relayed.
#[derive(Clone, Copy, Debug, Default)]
pub struct Totals {
    /// Read from the client.
    pub from_client: u64,
    /// Read from the destination.
    pub from_server: u64,
    /// Written to the client.
    pub to_client: u64,
}

impl Totals {
    fn add_read(&mut self, dir: Dir, n: usize) {
        match dir {
            Dir::FromClient => self.from_client += n as u64,
            Dir::ToClient => self.from_server += n as u64,
        }
    }

    fn add_written(&mut self, dir: Dir, n: usize) {
        if dir == Dir::ToClient {
            self.to_client += n as u64;
        }
    }
}

/// The relay buffers: at most two of `-b` bytes, allocated on first use.
/// A direction holds one only while it has data pending, so traffic that
/// goes back and forth touches one buffer, and an idle connection none.
struct Spare {
    bufs: [Option<Region>; 2],
    size: usize,
}

impl Spare {
    fn take(&mut self) -> io::Result<Region> {
        for b in &mut self.bufs {
            if let Some(v) = b.take() {
                return Ok(v);
            }
        }
        // a mapping of its own: pages are only touched as data arrives
        Region::new(self.size)
    }

    fn give(&mut self, v: Region) {
        if let Some(slot) = self.bufs.iter_mut().find(|b| b.is_none()) {
            *slot = Some(v);
        }
    }
}

/// One direction: the buffer holding its pending data, and its state.
struct Half {
    dir: Dir,
    buf: Option<Region>,
    start: usize,
    end: usize,
    eof: bool,
    shut: bool,
}

impl Half {
    fn new(dir: Dir) -> Half {
        Half {
            dir,
            buf: None,
            start: 0,
            end: 0,
            eof: false,
            shut: false,
        }
    }

    fn empty(&self) -> bool {
        self.buf.is_none()
    }

    fn done(&self) -> bool {
        self.eof && self.empty()
    }
}

enum Step {
    Go,
    Stop(End),
}

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ECONNRESET)
            | Some(libc::EPIPE)
            | Some(libc::ECONNABORTED)
            | Some(libc::ETIMEDOUT)
    )
}

fn fail(e: io::Error) -> Step {
    if is_reset(&e) {
        Step::Stop(End::Reset)
    } else {
        Step::Stop(End::Failed(e))
    }
}

/// Write what is pending from `h` to `dst`; hand the buffer back once it
/// is drained; shut `dst`'s write side once the source ended and
/// everything was written.
fn drain(
    h: &mut Half,
    spare: &mut Spare,
    mut dst: &TcpStream,
    active: &mut Instant,
    totals: &mut Totals,
    tap: &mut dyn Tap,
) -> Step {
    if let Some(buf) = h.buf.as_ref() {
        while h.start < h.end {
            match dst.write(&buf[h.start..h.end]) {
                Ok(0) => return Step::Stop(End::Reset),
                Ok(n) => {
                    h.start += n;
                    totals.add_written(h.dir, n);
                    *active = Instant::now();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Go,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return fail(e),
            }
        }
    }
    if let Some(buf) = h.buf.take() {
        tap.forwarded(h.dir, &buf[..h.end]);
        spare.give(buf);
    }
    if h.eof && !h.shut {
        h.shut = true;
        // the peer may already be gone; the other direction still runs
        let _ = dst.shutdown(Shutdown::Write);
    }
    Step::Go
}

/// Read one chunk from `src` into a buffer for the drained `h`, tap it,
/// write it on.
fn fill(
    h: &mut Half,
    spare: &mut Spare,
    mut src: &TcpStream,
    dst: &TcpStream,
    active: &mut Instant,
    totals: &mut Totals,
    tap: &mut dyn Tap,
) -> Step {
    let mut buf = match spare.take() {
        Ok(b) => b,
        Err(e) => return Step::Stop(End::Failed(e)),
    };
    match src.read(&mut buf) {
        Ok(0) => {
            spare.give(buf);
            h.eof = true;
            tap.eof(h.dir, totals);
        }
        Ok(n) => {
            totals.add_read(h.dir, n);
            *active = Instant::now();
            tap.chunk(h.dir, &buf[..n], totals);
            h.buf = Some(buf);
            h.start = 0;
            h.end = n;
        }
        Err(e) => {
            spare.give(buf);
            if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted {
                return Step::Go;
            }
            return fail(e);
        }
    }
    // optimistic write: most of the time the destination can take it now
    drain(h, spare, dst, active, totals, tap)
}

fn timeout_until(now: Instant, deadlines: &[Option<Instant>]) -> PollTimeout {
    match deadlines.iter().flatten().min() {
        None => PollTimeout::NONE,
        Some(d) => {
            let ms = d.saturating_duration_since(now).as_millis();
            // round up so we wake after the deadline, not just before it
            let ms = if d > &now { ms + 1 } else { 0 };
            PollTimeout::try_from(ms.min(60_000) as i32).unwrap_or(PollTimeout::MAX)
        }
    }
}

/// A poll entry for `fd`, or, with nothing wanted, for `idle` without
/// events.
fn slot<'a>(fd: BorrowedFd<'a>, ev: PollFlags, idle: BorrowedFd<'a>) -> PollFd<'a> {
    PollFd::new(if ev.is_empty() { idle } else { fd }, ev)
}

/// Relay between `client` and `server` (both non-blocking) until both
/// directions ended, a reset, the idle timeout or `stop()` says so
/// ([`End::Killed`]). `stop` is asked before every wait and whenever
/// `pipe` (the child's self-pipe) woke the wait.
pub fn run(
    client: &TcpStream,
    server: &TcpStream,
    bufsize: usize,
    idle: Option<Duration>,
    pipe: &SelfPipe,
    stop: &dyn Fn() -> bool,
    tap: &mut dyn Tap,
) -> (End, Totals) {
    let mut spare = Spare {
        bufs: [None, None],
        size: bufsize,
    };
    let mut from_client = Half::new(Dir::FromClient);
    let mut from_server = Half::new(Dir::ToClient);
    let mut totals = Totals::default();
    let mut active = Instant::now();

    let end = loop {
        if stop() {
            break End::Killed;
        }
        if from_client.done() && from_server.done() {
            break End::Closed;
        }
        let mut cev = PollFlags::empty();
        let mut sev = PollFlags::empty();
        // buffer drained and source open - read it
        if from_client.empty() && !from_client.eof {
            cev |= PollFlags::POLLIN;
        }
        if from_server.empty() && !from_server.eof {
            sev |= PollFlags::POLLIN;
        }
        // data pending - wait until the other side takes it
        if !from_server.empty() {
            cev |= PollFlags::POLLOUT;
        }
        if !from_client.empty() {
            sev |= PollFlags::POLLOUT;
        }
        let now = Instant::now();
        let idle_at = idle.map(|d| active + d);
        let timeout = timeout_until(now, &[idle_at, tap.deadline()]);
        let (prev, crev, srev) = {
            // a side with nothing wanted sits out on the self-pipe with no
            // events (which reports nothing: we hold its write end), so a
            // hang-up there does not wake us in a loop
            let mut fds = [
                PollFd::new(pipe.fd(), PollFlags::POLLIN),
                slot(client.as_fd(), cev, pipe.fd()),
                slot(server.as_fd(), sev, pipe.fd()),
            ];
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => break End::Failed(e.into()),
            }
            let rev = |i: usize| fds[i].revents().unwrap_or(PollFlags::empty());
            (rev(0), rev(1), rev(2))
        };
        if !prev.is_empty() {
            pipe.drain();
            if stop() {
                break End::Killed;
            }
        }
        let now = Instant::now();
        if tap.deadline().is_some_and(|d| d <= now) {
            tap.tick(now, &totals);
        }
        let ready = PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR;
        let writable = PollFlags::POLLOUT | PollFlags::POLLHUP | PollFlags::POLLERR;
        let mut ended = None;
        let mut step = |s: Step| {
            if let (None, Step::Stop(e)) = (&ended, s) {
                ended = Some(e);
            }
        };
        if srev.intersects(writable) && !from_client.empty() {
            step(drain(
                &mut from_client,
                &mut spare,
                server,
                &mut active,
                &mut totals,
                tap,
            ));
        }
        if crev.intersects(writable) && !from_server.empty() {
            step(drain(
                &mut from_server,
                &mut spare,
                client,
                &mut active,
                &mut totals,
                tap,
            ));
        }
        if crev.intersects(ready) && from_client.empty() && !from_client.eof {
            step(fill(
                &mut from_client,
                &mut spare,
                client,
                server,
                &mut active,
                &mut totals,
                tap,
            ));
        }
        if srev.intersects(ready) && from_server.empty() && !from_server.eof {
            step(fill(
                &mut from_server,
                &mut spare,
                server,
                client,
                &mut active,
                &mut totals,
                tap,
            ));
        }
        if let Some(e) = ended {
            break e;
        }
        if idle.is_some_and(|d| active + d <= Instant::now()) {
            break End::Idle;
        }
    };
    if matches!(end, End::Reset) {
        // pass the reset on to both peers instead of a normal close
        socket::reset_on_close(client);
        socket::reset_on_close(server);
    }
    // the child ends soon after the relay: unmapping is left to the kernel
    std::mem::forget(spare);
    (end, totals)
}
