//! What ipprotd inherits on purpose at start, read once at the top of
//! `main`: a listening socket passed by systemd (`LISTEN_FDS=1` with
//! `LISTEN_PID` our pid, fd 3) or by the ipprotd it restarts in place
//! (`IPPROTD_LISTEN_FD`, `IPPROTD_READY_FD`, `IPPROTD_NEXT_CONN`), and
//! the `NOTIFY_SOCKET` readiness message. Every other inherited
//! descriptor is closed, and the variables are removed, so children and
//! hooks see none of them (`NOTIFY_SOCKET` stays: a later restart needs
//! it). Never binds, never forks.

use std::net::TcpListener;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    AddressFamily, SockType, SockaddrLike, SockaddrStorage, getsockopt, sockopt,
};

use crate::os::{process, socket};

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
pub const SD_LISTEN_FDS_START: RawFd = 3;
/// Where a restarting ipprotd puts the listening socket for the new one.
pub const HANDOVER_LISTEN_FD: RawFd = 3;
/// Where it puts the write end of the readiness pipe.
pub const HANDOVER_READY_FD: RawFd = 4;
/// The hand-over variables, set only by a restarting ipprotd.
pub const LISTEN_FD_ENV: &str = "IPPROTD_LISTEN_FD";
pub const READY_FD_ENV: &str = "IPPROTD_READY_FD";
pub const NEXT_CONN_ENV: &str = "IPPROTD_NEXT_CONN";
/// systemd's socket-activation variables.
const SD_VARS: [&str; 3] = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"];

/// Handed over by the ipprotd that restarted into us.
pub struct Restarted {
    /// The write end of the readiness pipe (see `detach::Ready`).
    pub ready: OwnedFd,
    /// The sequence number of the next connection.
    pub next_conn: u64,
    /// The old parent (it named itself in the pid file).
    pub old_pid: i32,
}

/// What [`take`] found.
#[derive(Default)]
pub struct Inherited {
    /// The socket to serve instead of binding `-p`.
    pub listener: Option<TcpListener>,
    /// Set when we are the new parent of a restart in place.
    pub restarted: Option<Restarted>,
    /// A line to log (e.g. `LISTEN_PID` of another process, ignored).
    pub note: Option<String>,
}

/// Read the variables, close what was inherited by accident, adopt what
/// was passed on purpose. An error is the whole message (exit 1).
pub fn take() -> Result<Inherited, String> {
    let var = |n: &str| std::env::var(n).ok();
    let handover = var(LISTEN_FD_ENV).zip(var(READY_FD_ENV));
    let next_conn = var(NEXT_CONN_ENV);
    let listen_pid = var("LISTEN_PID");
    let listen_fds = var("LISTEN_FDS");
    let mut all: Vec<&str> = SD_VARS.to_vec();
    all.extend([LISTEN_FD_ENV, READY_FD_ENV, NEXT_CONN_ENV]);
    process::unset_env(&all);

    let mut inh = Inherited::default();
    if let Some((l, r)) = handover {
        process::close_from(HANDOVER_READY_FD as u32 + 1);
        let fd = |name: &str, v: &str, want: RawFd| match v.parse::<RawFd>() {
            Ok(n) if n == want => socket::adopt_inherited(n)
                .map_err(|e| format!("{name}: cannot use descriptor {n}: {e}")),
            _ => Err(format!("{name}: expected {want}, got '{v}'")),
        };
        let listen = fd(LISTEN_FD_ENV, &l, HANDOVER_LISTEN_FD)?;
        let ready = fd(READY_FD_ENV, &r, HANDOVER_READY_FD)?;
        let next_conn = next_conn
            .as_deref()
            .and_then(|n| n.parse::<u64>().ok())
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{NEXT_CONN_ENV}: not a sequence number"))?;
        inh.listener = Some(tcp_listener(listen).map_err(|e| format!("{LISTEN_FD_ENV}: {e}"))?);
        inh.restarted = Some(Restarted {
            ready,
            next_conn,
            old_pid: nix::unistd::getppid().as_raw(),
        });
        return Ok(inh);
    }
    let me = std::process::id();
    let ours = match listen_pid.as_deref().map(str::parse::<u32>) {
        None => false,
        Some(Ok(p)) if p == me => true,
        Some(_) => {
            inh.note = Some(format!(
                "LISTEN_PID={} is not this process ({me}): ignoring LISTEN_FDS, binding -p",
                listen_pid.unwrap_or_default()
            ));
            false
        }
    };
    let n = if ours {
        match listen_fds.as_deref().map(str::parse::<u32>) {
            Some(Ok(n)) => n,
            _ => {
                return Err(format!(
                    "LISTEN_FDS: not a number of sockets: '{}'",
                    listen_fds.unwrap_or_default()
                ));
            }
        }
    } else {
        0
    };
    if n > 1 {
        process::close_from(SD_LISTEN_FDS_START as u32);
        return Err(format!(
            "LISTEN_FDS: {n} sockets passed; ipprotd serves exactly one (ListenStream= once per unit)"
        ));
    }
    process::close_from(SD_LISTEN_FDS_START as u32 + n);
    if n == 1 {
        let fd = socket::adopt_inherited(SD_LISTEN_FDS_START)
            .map_err(|e| format!("LISTEN_FDS: cannot use descriptor {SD_LISTEN_FDS_START}: {e}"))?;
        inh.listener = Some(tcp_listener(fd).map_err(|e| format!("LISTEN_FDS: {e}"))?);
    }
    Ok(inh)
}

/// `fd` as a non-blocking TCP listener, or why it is not one.
fn tcp_listener(fd: OwnedFd) -> Result<TcpListener, String> {
    let n = fd.as_raw_fd();
    let not = |what: String| format!("descriptor {n} is not a TCP listening socket: {what}");
    let ty = getsockopt(&fd, sockopt::SockType).map_err(|e| not(e.desc().to_string()))?;
    if ty != SockType::Stream {
        return Err(not(format!("socket type {ty:?}")));
    }
    let family = nix::sys::socket::getsockname::<SockaddrStorage>(n)
        .map_err(|e| not(e.desc().to_string()))?
        .family();
    if !matches!(family, Some(AddressFamily::Inet | AddressFamily::Inet6)) {
        return Err(not(format!("address family {family:?}")));
    }
    if !getsockopt(&fd, sockopt::AcceptConn).map_err(|e| not(e.desc().to_string()))? {
        return Err(not("not listening".into()));
    }
    let l = TcpListener::from(fd);
    l.set_nonblocking(true)
        .map_err(|e| format!("cannot make descriptor {n} non-blocking: {e}"))?;
    Ok(l)
}

/// Tell systemd (when `NOTIFY_SOCKET` is set) that `pid` is the main
/// process and serves. Failures are logged, never fatal.
pub fn notify_ready(pid: u32) {
    use sd_notify::NotifyState;
    if let Err(e) = sd_notify::notify(&[NotifyState::MainPid(pid), NotifyState::Ready]) {
        crate::log::warn(&format!("NOTIFY_SOCKET: cannot send READY=1: {e}"));
    }
}
