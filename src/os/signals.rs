//! Signals by self-pipe: handlers only set a flag and write one byte to a
//! pipe that the loops poll like any other descriptor. The only module
//! that calls `sigaction`/`sigprocmask`.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use nix::sys::signal::{
    SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal, sigaction, sigprocmask,
};

static PIPE_WR: AtomicI32 = AtomicI32::new(-1);
static TERM: AtomicBool = AtomicBool::new(false);
static CHLD: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(sig: libc::c_int) {
    if sig == libc::SIGCHLD {
        CHLD.store(true, Ordering::SeqCst);
    } else {
        TERM.store(true, Ordering::SeqCst);
    }
    let fd = PIPE_WR.load(Ordering::SeqCst);
    if fd >= 0 {
        let b = [0u8; 1];
        // SAFETY: write(2) is async-signal-safe; the pipe is non-blocking,
        // so a full pipe loses only a redundant wake-up.
        unsafe { libc::write(fd, b.as_ptr().cast(), 1) };
    }
}

/// The read end of the self-pipe (the write end stays with the handler).
pub struct SelfPipe {
    rd: OwnedFd,
    _wr: OwnedFd,
}

impl SelfPipe {
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.rd.as_fd()
    }

    /// Empty the pipe after poll said it is readable.
    pub fn drain(&self) {
        let mut b = [0u8; 64];
        while let Ok(n) = nix::unistd::read(&self.rd, &mut b) {
            if n < b.len() {
                break;
            }
        }
    }
}

fn new_pipe() -> io::Result<SelfPipe> {
    let (rd, wr) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)?;
    PIPE_WR.store(std::os::fd::AsRawFd::as_raw_fd(&wr), Ordering::SeqCst);
    Ok(SelfPipe { rd, _wr: wr })
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

/// The parent's signals: TERM and INT end the loop, CHLD reaps.
pub fn install_parent() -> io::Result<SelfPipe> {
    let p = new_pipe()?;
    set(Signal::SIGPIPE, SigHandler::SigIgn);
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGCHLD] {
        catch(s)?;
    }
    Ok(p)
}

/// In a fresh child: its own self-pipe.
///
/// The handlers are the parent's, inherited over fork (a child forks
/// nothing, so its SIGCHLD handler never runs; `reset_before_exec` sets
/// every signal to default before the hook): only the pipe is new.
pub fn reinit_in_child() -> io::Result<SelfPipe> {
    CHLD.store(false, Ordering::SeqCst);
    new_pipe()
}

/// Whether SIGTERM or SIGINT arrived.
pub fn term_pending() -> bool {
    TERM.load(Ordering::SeqCst)
}

/// Whether SIGCHLD arrived since the last call (and clear it).
pub fn take_chld() -> bool {
    CHLD.swap(false, Ordering::SeqCst)
}

/// Default disposition for every signal, real-time ones included, and an
/// empty mask (before exec).
pub fn reset_before_exec() {
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
