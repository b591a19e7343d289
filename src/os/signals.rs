//! Signals without handlers: the caught signals stay blocked and the loops
//! poll a `signalfd` like any other descriptor; [`SelfPipe::drain`] reads
//! it into flags. So no signal frame is written on the parent's stack
//! after every fork (SIGCHLD), no call is interrupted, the mask need not
//! change around fork(), and a connection's child, whose mask is the
//! parent's, only opens a signalfd of its own. Where the kernel has no
//! signalfd, handlers set the flags and write one byte to a self-pipe
//! instead. The only module that calls `sigaction`/`sigprocmask`.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use nix::sys::signal::{
    SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal, sigaction, sigprocmask,
};

static PIPE_WR: AtomicI32 = AtomicI32::new(-1);
static TERM: AtomicBool = AtomicBool::new(false);
static CHLD: AtomicBool = AtomicBool::new(false);
static HUP: AtomicBool = AtomicBool::new(false);
/// The parent polls a signalfd, its caught signals blocked for good.
static BLOCKED_FOR_GOOD: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(sig: libc::c_int) {
    // the interrupted code may be about to read errno (after a failed
    // accept, say): a failed write below must not change what it sees
    // SAFETY: __errno_location returns this thread's errno, always valid.
    let errno = unsafe { *libc::__errno_location() };
    note(sig);
    let fd = PIPE_WR.load(Ordering::SeqCst);
    if fd >= 0 {
        let b = [0u8; 1];
        // SAFETY: write(2) is async-signal-safe; the pipe is non-blocking,
        // so a full pipe loses only a redundant wake-up.
        unsafe { libc::write(fd, b.as_ptr().cast(), 1) };
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// What wakes a loop when a signal arrived: the read end of the
/// self-pipe (the write end stays with the handler), or in a child a
/// `signalfd` for the blocked caught signals.
pub struct SelfPipe {
    rd: OwnedFd,
    /// The pipe's write end; `None` for a signalfd.
    _wr: Option<OwnedFd>,
}

/// `struct signalfd_siginfo` is 128 bytes; `ssi_signo` is its first word.
const SIGINFO_BYTES: usize = 128;

impl SelfPipe {
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.rd.as_fd()
    }

    /// Empty the pipe after poll said it is readable. For a signalfd this
    /// takes the pending signals and sets their flags, as the handler
    /// would have.
    pub fn drain(&self) {
        let mut b = [0u8; 4 * SIGINFO_BYTES];
        let sigfd = self._wr.is_none();
        while let Ok(n) = nix::unistd::read(&self.rd, &mut b) {
            if sigfd {
                for info in b[..n].chunks_exact(SIGINFO_BYTES) {
                    let signo = u32::from_ne_bytes([info[0], info[1], info[2], info[3]]);
                    note(signo as libc::c_int);
                }
            }
            if n < b.len() || n == 0 {
                break;
            }
        }
    }
}

/// Set the flag of `sig` (the handler's work, without the wake-up).
fn note(sig: libc::c_int) {
    if sig == libc::SIGCHLD {
        CHLD.store(true, Ordering::SeqCst);
    } else if sig == libc::SIGHUP {
        HUP.store(true, Ordering::SeqCst);
    } else {
        TERM.store(true, Ordering::SeqCst);
    }
}

fn new_pipe() -> io::Result<SelfPipe> {
    let (rd, wr) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)?;
    PIPE_WR.store(std::os::fd::AsRawFd::as_raw_fd(&wr), Ordering::SeqCst);
    Ok(SelfPipe { rd, _wr: Some(wr) })
}

fn catch(sig: Signal) -> io::Result<()> {
    // no SA_RESTART: poll returns EINTR, and the pipe wakes it anyway
    let act = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_NOCLDSTOP,
        SigSet::empty(),
    );
    // SAFETY: the handler only touches atomics and calls write(2).
    unsafe { sigaction(sig, &act) }?;
    Ok(())
}

fn set(sig: Signal, h: SigHandler) {
    let act = SigAction::new(h, SaFlags::empty(), SigSet::empty());
    // SAFETY: installing SIG_DFL or SIG_IGN has no handler code to check.
    let _ = unsafe { sigaction(sig, &act) };
}

/// The signals the parent catches.
const CAUGHT: [Signal; 4] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGCHLD,
    Signal::SIGHUP,
];

/// A new non-blocking, close-on-exec signalfd for the caught signals, or
/// `None` if the kernel refuses one.
fn signal_fd() -> Option<OwnedFd> {
    // the kernel's sigset (64 bits, bit n-1 for signal n), built by hand
    // and passed to the raw call: no libc sigset code runs in a child
    let mask: u64 = CAUGHT
        .iter()
        .fold(0, |m, s| m | 1u64 << (*s as libc::c_int - 1));
    // SAFETY: signalfd4 reads 8 bytes of mask through a valid pointer;
    // -1 asks for a new descriptor, which we own from here on (checked
    // against -1).
    let fd = unsafe {
        libc::syscall(
            libc::SYS_signalfd4,
            -1,
            &mask as *const u64,
            8usize,
            libc::SFD_NONBLOCK | libc::SFD_CLOEXEC,
        )
    } as libc::c_int;
    // SAFETY: signalfd returned a new descriptor nothing else owns.
    (fd >= 0).then(|| unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// The parent's signals: TERM and INT end the loop, CHLD reaps, HUP
/// restarts in place. They are blocked from here on and come through
/// the returned signalfd (handlers stay installed for the self-pipe
/// fallback). A child never looks at the HUP flag: a hang-up does not
/// end a connection.
pub fn install_parent() -> io::Result<SelfPipe> {
    set(Signal::SIGPIPE, SigHandler::SigIgn);
    for s in CAUGHT {
        catch(s)?;
    }
    let _ = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&caught()), None);
    if let Some(rd) = signal_fd() {
        BLOCKED_FOR_GOOD.store(true, Ordering::SeqCst);
        return Ok(SelfPipe { rd, _wr: None });
    }
    let _ = sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&caught()), None);
    new_pipe()
}

/// The signals the parent's handlers catch.
fn caught() -> SigSet {
    let mut set = SigSet::empty();
    for s in CAUGHT {
        set.add(s);
    }
    set
}

/// The signal mask to restore after a fork, see [`block_for_fork`]
/// (`None`: they are blocked for good, nothing to restore).
pub struct Blocked(Option<SigSet>);

/// Block TERM, INT, CHLD and HUP until [`Blocked::parent`] or
/// [`reinit_in_child`]: a signal meant for the parent that arrives while it
/// forks stays pending in the parent (a child starts with no pending
/// signals), so it can never reach the child. With the parent's signalfd
/// they are blocked already: no system call.
pub fn block_for_fork() -> Blocked {
    if BLOCKED_FOR_GOOD.load(Ordering::Relaxed) {
        return Blocked(None);
    }
    let mut old = SigSet::empty();
    let _ = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&caught()), Some(&mut old));
    Blocked(Some(old))
}

impl Blocked {
    /// In the parent after the fork: the old mask; what arrived meanwhile
    /// is delivered now.
    pub fn parent(self) {
        if let Some(old) = self.0 {
            let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
        }
    }

    /// Back to the mask before [`block_for_fork`]: the caught signals are
    /// not blocked then.
    fn restore(self) {
        match self.0 {
            Some(old) => {
                let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
            }
            None => {
                let _ = sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&caught()), None);
            }
        }
    }
}

/// In a fresh child: clear the flags inherited from the parent (a TERM the
/// parent got before this fork is not the child's) and make its own
/// wake-up descriptor: a `signalfd` for the caught signals, which stay
/// blocked (as [`block_for_fork`] left them) for the rest of the child, so
/// a signal sent to the child itself from now on is seen when the loops
/// poll it and [`SelfPipe::drain`] takes it. No handler runs in a child
/// any more (its SIGCHLD would never come anyway: a child forks nothing);
/// `reset_before_exec` discards what is still pending and unblocks every
/// signal before the hook. Only if the kernel has no signalfd does the
/// child get a self-pipe of its own and the parent's mask back.
pub fn reinit_in_child(blocked: Blocked) -> io::Result<SelfPipe> {
    // each flag is stored only if it is set: a store to a page shared with
    // the parent would make the child copy it (as a rule all are clear)
    for f in [&TERM, &CHLD, &HUP] {
        if f.load(Ordering::SeqCst) {
            f.store(false, Ordering::SeqCst);
        }
    }
    // the parent's pipe is not ours to wake (with a signalfd there is none)
    if PIPE_WR.load(Ordering::SeqCst) != -1 {
        PIPE_WR.store(-1, Ordering::SeqCst);
    }
    if let Some(rd) = signal_fd() {
        return Ok(SelfPipe { rd, _wr: None });
    }
    let p = new_pipe();
    blocked.restore();
    p
}

/// Whether SIGTERM or SIGINT arrived.
pub fn term_pending() -> bool {
    TERM.load(Ordering::SeqCst)
}

/// Whether SIGHUP arrived since the last call (and clear it).
pub fn take_hup() -> bool {
    take(&HUP)
}

/// Whether SIGCHLD arrived since the last call (and clear it).
pub fn take_chld() -> bool {
    take(&CHLD)
}

/// Clear `flag` if it is set, and say whether it was. A flag that is clear
/// is only read: the parent writes no page between two forks that it need
/// not (every page it writes is one its last child must keep a copy of).
fn take(flag: &AtomicBool) -> bool {
    flag.load(Ordering::SeqCst) && flag.swap(false, Ordering::SeqCst)
}

/// Default disposition for every signal, real-time ones included, and an
/// empty mask (before exec).
pub fn reset_before_exec() {
    // a signal still pending in a child that polls a signalfd (blocked,
    // not yet read) is discarded by SIG_IGN, as the handler would have
    // ignored it at this point: it must not kill the hook once unblocked
    for s in CAUGHT {
        set(s, SigHandler::SigIgn);
    }
    // the kernel's struct sigaction all zero: SIG_DFL, no flags, no mask
    let dfl = [0u64; 4];
    for sig in 1..=libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction with a valid pointer to a zeroed kernel
        // sigaction (SIG_DFL), no old action, the kernel's sigset size.
        // The raw call because glibc refuses its two internal signals,
        // which may still arrive ignored from whoever started us.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                dfl.as_ptr(),
                std::ptr::null_mut::<u64>(),
                8usize,
            )
        };
    }
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handler_keeps_errno() {
        // a descriptor that is surely not open: the handler's write fails
        // with EBADF, which must not leak into the interrupted code
        let old = PIPE_WR.swap(i32::MAX - 1, Ordering::SeqCst);
        // SAFETY: this thread's errno, always valid.
        unsafe { *libc::__errno_location() = libc::EMFILE };
        on_signal(libc::SIGCHLD);
        // SAFETY: as above.
        let seen = unsafe { *libc::__errno_location() };
        PIPE_WR.store(old, Ordering::SeqCst);
        CHLD.store(false, Ordering::SeqCst);
        assert_eq!(seen, libc::EMFILE);
    }
}
