//! Connecting to the destination: each `-P` entry in order, each of its
//! resolved addresses in turn, each attempt bounded by
//! `--connect-timeout`; the first that accepts wins. The caller's `stop`
//! (SIGTERM) ends the attempt; `pipe` wakes the wait for it. Returns the stream and the address, or the status of the last
//! failure. Numeric hosts are parsed once in the parent ([`numeric`]), so
//! a child runs no address parser (every code page a fresh child runs
//! through is a page fault).

use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{getsockopt, sockopt};

use crate::config::addr::Dest;
use crate::log::conninfo::Status;
use crate::os::signals::SelfPipe;

fn status_of(e: &io::Error) -> Status {
    match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => Status::Refused,
        Some(libc::ETIMEDOUT) => Status::Timeout,
        Some(libc::ENETUNREACH)
        | Some(libc::EHOSTUNREACH)
        | Some(libc::EADDRNOTAVAIL)
        | Some(libc::ENETDOWN) => Status::Unreachable,
        _ => Status::Error,
    }
}

enum Attempt {
    Up(TcpStream),
    Down(Status),
    Killed,
}

fn attempt(
    addr: SocketAddr,
    timeout: Duration,
    pipe: &SelfPipe,
    stop: &dyn Fn() -> bool,
) -> Attempt {
    let fd: OwnedFd = match crate::os::socket::connect_nonblocking(addr) {
        Ok((fd, true)) => return Attempt::Up(TcpStream::from(fd)),
        Ok((fd, false)) => fd,
        Err(e) => return Attempt::Down(status_of(&e)),
    };
    let deadline = (!timeout.is_zero()).then(|| Instant::now() + timeout);
    loop {
        if stop() {
            return Attempt::Killed;
        }
        let left = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None => Duration::from_secs(60),
        };
        if left.is_zero() {
            return Attempt::Down(Status::Timeout);
        }
        let ms = (left.as_millis() + 1).min(60_000) as i32;
        let mut fds = [
            PollFd::new(fd.as_fd(), PollFlags::POLLOUT),
            PollFd::new(pipe.fd(), PollFlags::POLLIN),
        ];
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Attempt::Down(status_of(&e.into())),
        }
        if fds[1].revents().is_some_and(|r| !r.is_empty()) {
            pipe.drain();
        }
        let rev = fds[0].revents().unwrap_or(PollFlags::empty());
        if rev == PollFlags::POLLOUT {
            // writable without error or hang-up: connected
            return Attempt::Up(TcpStream::from(fd));
        }
        if !rev.is_empty() {
            return match getsockopt(&fd, sockopt::SocketError) {
                Ok(0) => Attempt::Up(TcpStream::from(fd)),
                Ok(err) => Attempt::Down(status_of(&io::Error::from_raw_os_error(err))),
                Err(e) => Attempt::Down(status_of(&e.into())),
            };
        }
    }
}

/// The address of each `-P` entry whose host is numeric (`None` for a
/// name, which the child resolves), in the parent before any fork.
pub fn numeric(dests: &[Dest]) -> Vec<Option<SocketAddr>> {
    dests
        .iter()
        .map(|d| {
            d.host
                .parse::<IpAddr>()
                .ok()
                .map(|ip| SocketAddr::new(ip, d.port))
        })
        .collect()
}

/// Connect to the first destination that accepts. A `timeout` of zero
/// leaves the limit to the OS. `numeric` is [`numeric`] of `dests` (or
/// shorter: the rest are parsed here).
pub fn connect_any(
    dests: &[Dest],
    numeric: &[Option<SocketAddr>],
    timeout: Duration,
    pipe: &SelfPipe,
    stop: &dyn Fn() -> bool,
) -> Result<(TcpStream, SocketAddr), Status> {
    let mut last = Status::Error;
    for (i, d) in dests.iter().enumerate() {
        // a numeric host needs no resolver and no allocation (every heap
        // page a child touches is a private copy)
        let one: [SocketAddr; 1];
        let resolved: Vec<SocketAddr>;
        let known = match numeric.get(i) {
            Some(n) => *n,
            None => d
                .host
                .parse::<IpAddr>()
                .ok()
                .map(|ip| SocketAddr::new(ip, d.port)),
        };
        let addrs: &[SocketAddr] = match known {
            Some(a) => {
                one = [a];
                &one
            }
            None => {
                resolved = match (d.host.as_str(), d.port).to_socket_addrs() {
                    Ok(a) => a.collect(),
                    Err(_) => Vec::new(),
                };
                &resolved
            }
        };
        if addrs.is_empty() {
            last = Status::Unreachable;
        }
        for &a in addrs {
            match attempt(a, timeout, pipe, stop) {
                Attempt::Up(s) => return Ok((s, a)),
                Attempt::Down(st) => last = st,
                Attempt::Killed => return Err(Status::Killed),
            }
        }
    }
    Err(last)
}
