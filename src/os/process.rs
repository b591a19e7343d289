//! Processes: `fork` for one child per connection, `_exit` for children,
//! closing inherited descriptors before exec, and `access(2)` checks used
//! by preflight. Never touches signals (that is `os::signals`).

use std::io;

use super::cerr;

/// Result of [`fork`].
pub enum Fork {
    Parent(libc::pid_t),
    Child,
}

/// Fork the process.
///
/// Safe to call because ipprotd is single threaded: the parent never starts
/// a thread (no crate it uses does either), so the child may run arbitrary
/// code afterwards. A caller that starts threads must not use this.
///
/// Where glibc has `_Fork` (2.34 and later) and says the process never
/// started a thread (`__libc_single_threaded`), that is used instead of
/// `fork`: the same system call without the atfork handlers (ipprotd
/// registers none) and without the child's resets of the dynamic loader's
/// locks, its thread-stack lists and the fork generation, which are only
/// needed when other threads existed. Those resets write three pages
/// (two of ld.so's, one of libc's) that every child would have to copy.
pub fn fork() -> io::Result<Fork> {
    let pid = match plain_fork() {
        // SAFETY: _Fork has the signature of fork; the process has a single
        // thread (checked by `plain_fork`), so no lock or allocator state
        // can be held by a thread that does not exist in the child, and no
        // atfork handler exists that would have to run.
        Some(f) => cerr(unsafe { f() })?,
        // SAFETY: ipprotd's parent is single threaded (see above), so no
        // lock can be held by a thread that does not exist in the child.
        None => cerr(unsafe { libc::fork() })?,
    };
    Ok(if pid == 0 {
        Fork::Child
    } else {
        Fork::Parent(pid)
    })
}

type ForkFn = unsafe extern "C" fn() -> libc::pid_t;

/// glibc's `_Fork`, if it has one and the process never started a thread.
/// Looked up once, in the first process that forks (the parent, before its
/// first child), so children only read the answer.
fn plain_fork() -> Option<ForkFn> {
    static FORK: std::sync::OnceLock<Option<ForkFn>> = std::sync::OnceLock::new();
    let f = (*FORK.get_or_init(|| {
        // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only
        // looks the symbol up; a null result means it does not exist.
        let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"_Fork".as_ptr()) };
        // SAFETY: a non-null `_Fork` is glibc's, `pid_t _Fork(void)`.
        (!p.is_null()).then(|| unsafe { std::mem::transmute::<*mut libc::c_void, ForkFn>(p) })
    }))?;
    single_threaded().then_some(f)
}

/// glibc's `__libc_single_threaded`: true until the process first creates
/// a thread, and never set back. False where it cannot be read.
fn single_threaded() -> bool {
    static FLAG: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let p = *FLAG.get_or_init(|| {
        // SAFETY: as in plain_fork: a look-up only.
        unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"__libc_single_threaded".as_ptr()) as usize }
    });
    // SAFETY: a non-null `__libc_single_threaded` is glibc's `char`
    // variable, which lives as long as the process; reading it volatile
    // sees what pthread_create last stored (this thread is the only one
    // that could have called it).
    p != 0 && unsafe { std::ptr::read_volatile(p as *const libc::c_char) } != 0
}

/// Stop the kernel's restartable-sequences updates for this thread (glibc
/// 2.35 and later registers every thread): the kernel rewrites the
/// thread's rseq area (the CPU it runs on) whenever it returns to a
/// preempted or migrated thread, right after fork too, and that area lies
/// on a page of its own in the main thread's control block. Once the
/// parent unregisters, neither it nor its children (fork keeps the
/// registration state) write that page again, and a child copies one
/// page fewer. Only glibc's `sched_getcpu` reads the area; it falls back to
/// the system call when the area says "no CPU", which the kernel stores on
/// unregistering. Does nothing where glibc registered no area or on other
/// architectures than x86-64.
pub fn unregister_rseq() {
    #[cfg(target_arch = "x86_64")]
    {
        /// The signature glibc registers with on x86-64 (`RSEQ_SIG`).
        const RSEQ_SIG: u32 = 0x5305_3053;
        const RSEQ_FLAG_UNREGISTER: libc::c_int = 1;
        /// `sizeof (struct rseq)`: what glibc 2.35 to 2.39 register.
        const RSEQ_AREA_LEN: u32 = 32;
        // SAFETY: look-ups only; null means glibc does not export them.
        let (off, size) = unsafe {
            (
                libc::dlsym(libc::RTLD_DEFAULT, c"__rseq_offset".as_ptr()),
                libc::dlsym(libc::RTLD_DEFAULT, c"__rseq_size".as_ptr()),
            )
        };
        if off.is_null() || size.is_null() {
            return;
        }
        // SAFETY: glibc's `ptrdiff_t __rseq_offset` and `unsigned int
        // __rseq_size`, constant after start-up.
        let (off, size) = unsafe { (*(off as *const isize), *(size as *const u32)) };
        if size == 0 {
            return;
        }
        let tp: usize;
        // SAFETY: on x86-64 the first word of the thread control block,
        // at %fs:0, holds the thread pointer itself; reading it has no
        // side effect.
        unsafe {
            std::arch::asm!("mov {}, fs:0", out(reg) tp, options(nostack, readonly, preserves_flags))
        };
        let area = tp.wrapping_add_signed(off);
        for len in [size, RSEQ_AREA_LEN] {
            // SAFETY: rseq(2) with the area, length and signature glibc
            // registered: the kernel only forgets the registration (and
            // writes "no CPU" into the area, which stays valid memory of
            // this thread); a mismatch fails with EINVAL and changes
            // nothing.
            let r =
                unsafe { libc::syscall(libc::SYS_rseq, area, len, RSEQ_FLAG_UNREGISTER, RSEQ_SIG) };
            if r == 0 {
                return;
            }
        }
    }
}

/// End a child at once: no atexit handlers, no runtime clean-up (nothing
/// is buffered; the kernel frees the rest).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions and does not return.
    unsafe { libc::_exit(code) }
}

/// Close every descriptor above 2 (before exec).
pub fn close_from_3() {
    close_from(3);
}

/// Close every descriptor from `first` on: before exec, and at start for
/// what ipprotd inherited (as inetd does), when nothing of its own is open
/// at or above `first` yet.
pub fn close_from(first: u32) {
    // SAFETY: close_range only closes descriptors; the callers own none
    // at or above `first` that they still use.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0u32) };
    if r == 0 {
        return;
    }
    let max = match nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE) {
        Ok((soft, _)) => soft.min(65_536) as i32,
        Err(_) => 1024,
    };
    for fd in first.min(i32::MAX as u32) as i32..max {
        // SAFETY: closing a descriptor that may not exist is harmless.
        unsafe { libc::close(fd) };
    }
}

/// Whether a path is executable by us (access X_OK).
pub fn executable(path: &std::path::Path) -> bool {
    nix::unistd::access(path, nix::unistd::AccessFlags::X_OK).is_ok()
}

/// Whether a directory is writable by us (access W_OK|X_OK).
pub fn writable_dir(path: &std::path::Path) -> io::Result<()> {
    nix::unistd::access(
        path,
        nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK,
    )
    .map_err(io::Error::from)
}

/// Remove `names` from our environment, so that children and hooks do not
/// see them (the systemd and hand-over variables, once read).
///
/// Only for the start of `main`, while the process has a single thread.
pub fn unset_env(names: &[&str]) {
    for n in names {
        // SAFETY: called at start-up only, before any thread exists (the
        // parent never starts one), so no other thread reads the
        // environment meanwhile.
        unsafe { std::env::remove_var(n) };
    }
}

/// Spawn `cmd` with descriptor `from` placed at `to` in the new program
/// for each pair (without close-on-exec there); every other descriptor of
/// ours is close-on-exec and goes. The signal mask and the ignored
/// signals are reset by std before exec, caught ones by exec itself.
pub fn spawn_with_fds(
    cmd: &mut std::process::Command,
    fds: &[(std::os::fd::RawFd, std::os::fd::RawFd)],
) -> io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    /// Above every target: a source is moved here first, so that placing
    /// one pair cannot overwrite the source of another.
    const SCRATCH_FD: libc::c_int = 64;
    let pairs: Vec<(libc::c_int, libc::c_int)> = fds.to_vec();
    // SAFETY: the closure runs in the forked child before exec and only
    // calls fcntl and dup2, which are async-signal-safe; it allocates
    // nothing (the pairs were copied before the fork).
    unsafe {
        cmd.pre_exec(move || {
            let mut moved = [0 as libc::c_int; 8];
            for (i, (from, _)) in pairs.iter().enumerate().take(moved.len()) {
                let fd = libc::fcntl(*from, libc::F_DUPFD_CLOEXEC, SCRATCH_FD);
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                moved[i] = fd;
            }
            for (i, (_, to)) in pairs.iter().enumerate().take(moved.len()) {
                // dup2 gives the new descriptor without close-on-exec
                if libc::dup2(moved[i], *to) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        })
    };
    cmd.spawn()
}
