//! The listening socket: `-p port[@host]`, IPv6 dual-stack wildcard where
//! available, else IPv4; a large backlog so bursts wait instead of being
//! dropped. The only user of the listen address. A socket passed by
//! systemd or by a restarting ipprotd is taken in `activation` instead.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::OwnedFd;

use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage, bind, listen, setsockopt, socket,
    sockopt,
};

use crate::config::Config;
use crate::error::StartError;

fn bind_one(addr: SocketAddr) -> io::Result<TcpListener> {
    let family = if addr.is_ipv6() {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    };
    let fd: OwnedFd = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        setsockopt(&fd, sockopt::Ipv6V6Only, &false)?;
    }
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrStorage::from(addr),
    )?;
    listen(&fd, Backlog::MAXCONN)?;
    let l = TcpListener::from(fd);
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Bind the listener of `config`.
pub fn bind_listener(config: &Config) -> Result<TcpListener, StartError> {
    let port = config.listen_port;
    let fail =
        |what: String, e: io::Error| StartError::Other(format!("-p: cannot bind {what}: {e}"));
    match &config.listen_host {
        None => {
            let v6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port);
            match bind_one(v6) {
                Ok(l) => Ok(l),
                Err(e6)
                    if matches!(
                        e6.raw_os_error(),
                        Some(libc::EAFNOSUPPORT) | Some(libc::EADDRNOTAVAIL)
                    ) =>
                {
                    let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port);
                    bind_one(v4).map_err(|e| fail(format!("port {port}"), e))
                }
                Err(e) => Err(fail(format!("port {port}"), e)),
            }
        }
        Some(h) => {
            let addrs: Vec<SocketAddr> = (h.as_str(), port)
                .to_socket_addrs()
                .map_err(|e| {
                    StartError::Other(format!("-p: cannot resolve listen host '{h}': {e}"))
                })?
                .collect();
            let mut last = io::Error::from_raw_os_error(libc::EADDRNOTAVAIL);
            for a in addrs {
                match bind_one(a) {
                    Ok(l) => return Ok(l),
                    Err(e) => last = e,
                }
            }
            Err(fail(format!("{h} port {port}"), last))
        }
    }
}
