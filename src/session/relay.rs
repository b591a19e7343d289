//! The relay: one poll loop over the client, the destination and the
//! child's self-pipe, with two fixed buffers named by direction. A side is
//! read only when its buffer is drained, so one read is one chunk; every
//! chunk is written on first (as far as the destination takes it at once)
//! and then handed to the [`Tap`], so recording and identification never
//! delay the bytes. Never opens files, never formats text, never looks at
//! signals itself: the caller says when to stop.
//!
//! TCP urgent data goes through as urgent data, in its place: a side is
//! polled for `POLLPRI` too, and when its read pointer is at the urgent
//! mark (`SIOCATMARK`) the urgent byte is taken with `MSG_OOB` as a chunk
//! of its own (a one-byte block for the tap, counted like any byte) and
//! sent on with `MSG_OOB`. A read never crosses the mark, and a side is
//! read only once what came before was written, so the bytes before the
//! urgent byte always go out first. A side with nothing wanted is still
//! watched for errors (a reset on a half-closed or idle side ends the
//! relay); only once it reported a hang-up is it parked on the self-pipe.
//!
//! Zero copy: a direction whose bytes the tap does not need to see (not
//! recorded, identification over, no statement audit: [`Tap::wants_bytes`])
//! is moved with `splice()` from the source socket into a pipe of its own
//! and from there to the destination, without entering the process. The
//! pipe is that direction's buffer: filled only when drained, at most `-b`
//! bytes at a time, its bytes pending for the destination and counted
//! exactly like a buffer's, each fill one chunk for the tap
//! ([`Tap::moved`]). Splice stops at the urgent mark; the urgent byte, and
//! the read right after it (which steps over the byte's place in the
//! stream), go the read/write way, and so does EOF. A direction falls back
//! to read/write for good if splice says EINVAL or ENOSYS.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::ops::Range;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::os::mmap::Region;
use crate::os::pipe::{self, Pipe};
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
    /// Whether the tap still has to see the bytes read from the side
    /// `dir` comes from (to record, identify or audit them). If not, the
    /// relay may move them without reading them (splice) and only tells
    /// [`Tap::moved`].
    fn wants_bytes(&self, dir: Dir) -> bool {
        let _ = dir;
        true
    }
    /// A chunk of `n` bytes from the side `dir` comes from was moved
    /// without being read into memory, and written on as far as the
    /// destination took it at once (the counterpart of [`Tap::chunk`]).
    fn moved(&mut self, dir: Dir, n: usize, totals: &Totals) {
        let _ = (dir, n, totals);
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
    /// Written to the destination.
    pub to_server: u64,
}

impl Totals {
    fn add_read(&mut self, dir: Dir, n: usize) {
        match dir {
            Dir::FromClient => self.from_client += n as u64,
            Dir::ToClient => self.from_server += n as u64,
        }
    }

    fn add_written(&mut self, dir: Dir, n: usize) {
        match dir {
            Dir::FromClient => self.to_server += n as u64,
            Dir::ToClient => self.to_client += n as u64,
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
        // zeroed memory: pages are only touched as data arrives
        Region::new(self.size)
    }

    fn give(&mut self, v: Region) {
        if let Some(slot) = self.bufs.iter_mut().find(|b| b.is_none()) {
            *slot = Some(v);
        }
    }
}

/// What one direction's buffer holds: the chunk read last (`0..end`), of
/// which `start..end` is still to be written, and whether it is the
/// urgent byte (written with `MSG_OOB`). Pure bookkeeping, fuzzed by
/// `fuzz_relay_oob`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Queue {
    start: usize,
    end: usize,
    urgent: bool,
}

impl Queue {
    /// A chunk of `n` bytes was read into the drained buffer.
    pub fn load(&mut self, n: usize) {
        *self = Queue {
            start: 0,
            end: n,
            urgent: false,
        };
    }

    /// The urgent byte was taken into the drained buffer (at offset 0).
    pub fn load_urgent(&mut self) {
        *self = Queue {
            start: 0,
            end: 1,
            urgent: true,
        };
    }

    /// What to write next (a range of the buffer), and whether as urgent
    /// data; an empty range once drained.
    pub fn pending(&self) -> (Range<usize>, bool) {
        (self.start..self.end.max(self.start), self.urgent)
    }

    /// The destination took `n` bytes of [`Queue::pending`]; how many of
    /// them count (never more than was pending).
    pub fn wrote(&mut self, n: usize) -> usize {
        let n = n.min(self.end.saturating_sub(self.start));
        self.start += n;
        n
    }

    /// Everything loaded has been written.
    pub fn drained(&self) -> bool {
        self.start >= self.end
    }

    /// The whole chunk loaded last (a range of the buffer), for the tap.
    pub fn chunk(&self) -> Range<usize> {
        0..self.end
    }

    /// Whether the chunk is the urgent byte.
    pub fn urgent(&self) -> bool {
        self.urgent
    }
}

/// One direction: the buffer or the pipe holding its pending data, and
/// its state.
struct Half {
    dir: Dir,
    buf: Option<Region>,
    /// The pending data is in `pipe` (spliced), not in `buf`.
    piped: bool,
    /// The tap saw the bytes of the chunk in `buf` (it did not if they
    /// were spliced first and then taken out of the pipe).
    seen: bool,
    /// This direction's pipe, made on its first splice.
    pipe: Option<Pipe>,
    /// Splice is not possible here (EINVAL, ENOSYS, no pipe): read/write.
    no_splice: bool,
    /// The urgent byte was taken: the next chunk is read, not spliced
    /// (splice stops where the byte was; a read steps over its place).
    after_urgent: bool,
    q: Queue,
    eof: bool,
    shut: bool,
}

impl Half {
    fn new(dir: Dir) -> Half {
        Half {
            dir,
            buf: None,
            piped: false,
            seen: false,
            pipe: None,
            no_splice: false,
            after_urgent: false,
            q: Queue::default(),
            eof: false,
            shut: false,
        }
    }

    fn empty(&self) -> bool {
        self.buf.is_none() && !self.piped
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

/// Splice what is pending in `h`'s pipe to `dst`: true once drained,
/// false when `dst` takes no more now.
fn write_piped(
    h: &mut Half,
    dst: &TcpStream,
    active: &mut Instant,
    totals: &mut Totals,
) -> io::Result<bool> {
    let Some(pipe) = h.pipe.as_ref() else {
        return Ok(true);
    };
    loop {
        let (range, _) = h.q.pending();
        if range.is_empty() {
            return Ok(true);
        }
        match pipe.drain_to(dst.as_fd(), range.len()) {
            Ok(0) => return Err(io::Error::from_raw_os_error(libc::EPIPE)),
            Ok(n) => {
                totals.add_written(h.dir, h.q.wrote(n));
                *active = Instant::now();
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
    }
}

/// `dst` takes no splice: move what is pending in `h`'s pipe into a
/// buffer, at its place in the chunk, and go on with read/write.
fn unpipe(h: &mut Half, spare: &mut Spare) -> io::Result<()> {
    let (Some(pipe), range) = (h.pipe.take(), h.q.pending().0) else {
        return Ok(());
    };
    let mut buf = spare.take()?;
    let mut at = range.start;
    while at < range.end {
        let dst = buf
            .get_mut(at..range.end)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        match pipe.read_into(dst)? {
            0 => return Err(io::Error::from_raw_os_error(libc::EPIPE)),
            n => at += n,
        }
    }
    h.buf = Some(buf);
    h.piped = false;
    h.seen = false;
    h.no_splice = true;
    Ok(())
}

/// Write what is pending from `h` to `dst`, urgent data with `MSG_OOB`:
/// true once drained, false when `dst` takes no more now.
fn write_out(
    h: &mut Half,
    spare: &mut Spare,
    dst: &TcpStream,
    active: &mut Instant,
    totals: &mut Totals,
) -> io::Result<bool> {
    if h.piped {
        match write_piped(h, dst, active, totals) {
            Err(e) if pipe::unsupported(&e) => unpipe(h, spare)?,
            other => return other,
        }
    }
    write_buffered(h, dst, active, totals)
}

/// Write what is pending in `h`'s buffer to `dst`, urgent data with
/// `MSG_OOB`: true once drained, false when `dst` takes no more now.
fn write_buffered(
    h: &mut Half,
    mut dst: &TcpStream,
    active: &mut Instant,
    totals: &mut Totals,
) -> io::Result<bool> {
    let Some(buf) = h.buf.as_ref() else {
        return Ok(true);
    };
    loop {
        let (range, urgent) = h.q.pending();
        let Some(&first) = buf.get(range.clone()).and_then(|r| r.first()) else {
            return Ok(true);
        };
        let sent = if urgent {
            socket::send_urgent(dst, first).map(usize::from)
        } else {
            match dst.write(&buf[range]) {
                Ok(0) => return Err(io::Error::from_raw_os_error(libc::EPIPE)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => other,
            }
        }?;
        if sent == 0 {
            return Ok(false);
        }
        totals.add_written(h.dir, h.q.wrote(sent));
        *active = Instant::now();
    }
}

/// `h` is drained: hand its buffer back, and shut `dst`'s write side once
/// the source ended.
fn settle(h: &mut Half, spare: &mut Spare, dst: &TcpStream, tap: &mut dyn Tap) {
    h.piped = false;
    if let Some(buf) = h.buf.take() {
        if h.seen {
            tap.forwarded(h.dir, &buf[h.q.chunk()]);
        }
        spare.give(buf);
    }
    if h.eof && !h.shut {
        h.shut = true;
        // the peer may already be gone; the other direction still runs
        let _ = dst.shutdown(Shutdown::Write);
    }
}

/// Write what is pending from `h` to `dst`; settle once drained.
fn drain(
    h: &mut Half,
    spare: &mut Spare,
    dst: &TcpStream,
    active: &mut Instant,
    totals: &mut Totals,
    tap: &mut dyn Tap,
) -> Step {
    let wrote = write_out(h, spare, dst, active, totals);
    settled(h, spare, dst, tap, wrote)
}

/// After a write: settle `h` if drained, end on an error.
fn settled(
    h: &mut Half,
    spare: &mut Spare,
    dst: &TcpStream,
    tap: &mut dyn Tap,
    wrote: io::Result<bool>,
) -> Step {
    match wrote {
        Ok(true) => {
            settle(h, spare, dst, tap);
            Step::Go
        }
        Ok(false) => Step::Go,
        Err(e) => fail(e),
    }
}

/// What one read of a side brought.
enum Got {
    Data(usize),
    Urgent,
    Eof,
    Nothing,
}

/// One read of `src` into `buf`: at the urgent mark (`pri`: poll saw
/// urgent data) the urgent byte, else normal data, which stops at the mark.
fn read_chunk(mut src: &TcpStream, buf: &mut [u8], pri: bool) -> io::Result<Got> {
    if pri
        && socket::at_mark(src)?
        && let Some(b) = socket::recv_urgent(src)?
        && let Some(slot) = buf.first_mut()
    {
        *slot = b;
        return Ok(Got::Urgent);
    }
    match src.read(buf) {
        Ok(0) => Ok(Got::Eof),
        Ok(n) => Ok(Got::Data(n)),
        Err(e)
            if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted =>
        {
            Ok(Got::Nothing)
        }
        Err(e) => Err(e),
    }
}

/// Splice one chunk from `src` into the pipe of the drained `h`, splice
/// it on as far as `dst` takes it now, then tell the tap. `None`: read
/// `src` the normal way instead (EOF or the urgent mark, where splice
/// moves nothing; or splice is not possible).
fn fill_piped(
    h: &mut Half,
    spare: &mut Spare,
    src: &TcpStream,
    dst: &TcpStream,
    active: &mut Instant,
    totals: &mut Totals,
    tap: &mut dyn Tap,
) -> Option<Step> {
    if h.pipe.is_none() {
        match Pipe::new(spare.size) {
            Ok(p) => h.pipe = Some(p),
            Err(_) => {
                h.no_splice = true;
                return None;
            }
        }
    }
    let pipe = h.pipe.as_ref()?;
    let n = match pipe.fill_from(src.as_fd(), spare.size.min(pipe.capacity())) {
        Ok(0) => return None,
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Some(Step::Go),
        Err(e) if pipe::unsupported(&e) => {
            h.no_splice = true;
            return None;
        }
        Err(e) => return Some(fail(e)),
    };
    h.q.load(n);
    h.piped = true;
    totals.add_read(h.dir, n);
    *active = Instant::now();
    let wrote = write_out(h, spare, dst, active, totals);
    tap.moved(h.dir, n, totals);
    Some(settled(h, spare, dst, tap, wrote))
}

/// Read one chunk from `src` into a buffer for the drained `h` (or splice
/// it into its pipe when the tap need not see it), write it on as far as
/// `dst` takes it now, then tap it.
#[allow(clippy::too_many_arguments)]
fn fill(
    h: &mut Half,
    spare: &mut Spare,
    src: &TcpStream,
    dst: &TcpStream,
    mut pri: bool,
    active: &mut Instant,
    totals: &mut Totals,
    tap: &mut dyn Tap,
) -> Step {
    if !pri && !h.after_urgent && !h.no_splice && !tap.wants_bytes(h.dir) {
        match fill_piped(h, spare, src, dst, active, totals, tap) {
            Some(step) => return step,
            // splice moved nothing: urgent data may be what stopped it
            None => pri = true,
        }
    }
    let mut buf = match spare.take() {
        Ok(b) => b,
        Err(e) => return Step::Stop(End::Failed(e)),
    };
    match read_chunk(src, &mut buf, pri) {
        Ok(Got::Data(n)) => {
            h.q.load(n);
            h.after_urgent = false;
        }
        Ok(Got::Urgent) => {
            h.q.load_urgent();
            h.after_urgent = true;
        }
        Ok(Got::Eof) => {
            spare.give(buf);
            h.eof = true;
            tap.eof(h.dir, totals);
            return drain(h, spare, dst, active, totals, tap);
        }
        Ok(Got::Nothing) => {
            spare.give(buf);
            return Step::Go;
        }
        Err(e) => {
            spare.give(buf);
            return fail(e);
        }
    }
    totals.add_read(h.dir, h.q.chunk().len());
    *active = Instant::now();
    h.buf = Some(buf);
    h.seen = true;
    // forward first: most of the time the destination takes it all now,
    // and the recorder's and the sniffer's work come after, not before
    let wrote = write_buffered(h, dst, active, totals);
    if let Some(buf) = h.buf.as_ref() {
        tap.chunk(h.dir, &buf[h.q.chunk()], totals);
    }
    settled(h, spare, dst, tap, wrote)
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

/// A poll entry for `fd`, or, with nothing wanted on a side that hung up
/// already (`parked`), for `idle` without events.
fn slot<'a>(fd: BorrowedFd<'a>, ev: PollFlags, parked: bool, idle: BorrowedFd<'a>) -> PollFd<'a> {
    PollFd::new(if ev.is_empty() && parked { idle } else { fd }, ev)
}

/// A side with nothing wanted reported `rev`: its pending error (a reset)
/// ends the relay; a hang-up without one parks it, as poll would report
/// it again and again.
fn unwanted(s: &TcpStream, rev: PollFlags, parked: &mut bool) -> Step {
    if rev.contains(PollFlags::POLLERR) {
        match s.take_error() {
            Ok(Some(e)) | Err(e) => return fail(e),
            Ok(None) => *parked = true,
        }
    }
    if rev.contains(PollFlags::POLLHUP) {
        *parked = true;
    }
    Step::Go
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
    // a side that hung up while nothing was wanted of it: client, server
    let mut parked = [false; 2];

    let end = loop {
        if stop() {
            break End::Killed;
        }
        if from_client.done() && from_server.done() {
            break End::Closed;
        }
        let mut cev = PollFlags::empty();
        let mut sev = PollFlags::empty();
        // buffer drained and source open - read it, urgent data too
        let input = PollFlags::POLLIN | PollFlags::POLLPRI;
        if from_client.empty() && !from_client.eof {
            cev |= input;
        }
        if from_server.empty() && !from_server.eof {
            sev |= input;
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
            // a side with nothing wanted is polled for no events, which
            // still reports errors and hang-ups; once it hung up it sits
            // out on the self-pipe with no events (which reports nothing:
            // we hold its write end), so the hang-up does not wake us in a
            // loop
            let mut fds = [
                PollFd::new(pipe.fd(), PollFlags::POLLIN),
                slot(client.as_fd(), cev, parked[0], pipe.fd()),
                slot(server.as_fd(), sev, parked[1], pipe.fd()),
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
        let ready =
            PollFlags::POLLIN | PollFlags::POLLPRI | PollFlags::POLLHUP | PollFlags::POLLERR;
        let writable = PollFlags::POLLOUT | PollFlags::POLLHUP | PollFlags::POLLERR;
        let mut ended = None;
        let mut step = |s: Step| {
            if let (None, Step::Stop(e)) = (&ended, s) {
                ended = Some(e);
            }
        };
        if cev.is_empty() && !parked[0] {
            step(unwanted(client, crev, &mut parked[0]));
        }
        if sev.is_empty() && !parked[1] {
            step(unwanted(server, srev, &mut parked[1]));
        }
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
                crev.contains(PollFlags::POLLPRI),
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
                srev.contains(PollFlags::POLLPRI),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A connected loopback pair: (the relay's end, the peer's end).
    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mine, _) = l.accept().unwrap();
        mine.set_nonblocking(true).unwrap();
        (mine, peer)
    }

    /// Records what the relay told it, and what had been written on by
    /// then.
    #[derive(Default)]
    struct Order {
        events: Vec<String>,
    }

    impl Tap for Order {
        fn chunk(&mut self, dir: Dir, data: &[u8], totals: &Totals) {
            self.events.push(format!(
                "chunk {dir:?} {} read {} written {}",
                data.len(),
                totals.from_client,
                totals.to_server
            ));
        }
        fn forwarded(&mut self, dir: Dir, data: &[u8]) {
            self.events
                .push(format!("forwarded {dir:?} {}", data.len()));
        }
        fn eof(&mut self, dir: Dir, _: &Totals) {
            self.events.push(format!("eof {dir:?}"));
        }
        fn deadline(&self) -> Option<Instant> {
            None
        }
        fn tick(&mut self, _: Instant, _: &Totals) {}
    }

    /// Forward first: when the tap (recorder, sniffer) sees a chunk, the
    /// destination has taken all of it already.
    #[test]
    fn chunk_is_written_before_the_tap_sees_it() {
        let (client, mut client_peer) = pair();
        let (server, mut server_peer) = pair();
        client_peer.write_all(b"hello").unwrap();
        client_peer.shutdown(Shutdown::Write).unwrap();
        let mut h = Half::new(Dir::FromClient);
        let mut spare = Spare {
            bufs: [None, None],
            size: 4096,
        };
        let (mut active, mut totals, mut tap) =
            (Instant::now(), Totals::default(), Order::default());
        let mut step = |h: &mut Half, totals: &mut Totals, tap: &mut Order| {
            // the bytes are in flight on loopback: retry the read briefly
            let deadline = Instant::now() + Duration::from_secs(5);
            while tap.events.len() < 2 && Instant::now() < deadline {
                let s = fill(
                    h,
                    &mut spare,
                    &client,
                    &server,
                    false,
                    &mut active,
                    totals,
                    tap,
                );
                assert!(matches!(s, Step::Go));
            }
        };
        step(&mut h, &mut totals, &mut tap);
        assert_eq!(
            tap.events,
            [
                "chunk FromClient 5 read 5 written 5",
                "forwarded FromClient 5"
            ]
        );
        let mut got = [0u8; 5];
        server_peer.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello");
    }

    #[test]
    fn queue_partial_writes_and_urgent() {
        let mut q = Queue::default();
        assert!(q.drained());
        q.load(10);
        assert_eq!(q.pending(), (0..10, false));
        assert_eq!(q.wrote(4), 4);
        assert_eq!(q.pending(), (4..10, false));
        assert_eq!(q.wrote(100), 6, "never more than was pending");
        assert!(q.drained());
        assert_eq!(q.chunk(), 0..10);
        q.load_urgent();
        assert_eq!(q.pending(), (0..1, true));
        assert!(q.urgent());
        assert_eq!(q.wrote(0), 0);
        assert_eq!(q.wrote(1), 1);
        assert!(q.drained());
        assert_eq!(q.pending().0.len(), 0);
    }
}
