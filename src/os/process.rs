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
pub fn fork() -> io::Result<Fork> {
    // SAFETY: ipprotd's parent is single threaded (see above), so no lock
    // can be held by a thread that does not exist in the child.
    let pid = cerr(unsafe { libc::fork() })?;
    Ok(if pid == 0 {
        Fork::Child
    } else {
        Fork::Parent(pid)
    })
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
