//! Sockets: `accept4` with non-blocking and close-on-exec set in the same
//! call, decoding the peer's raw address; the socket options of a relayed
//! connection.

use std::io;
use std::os::fd::AsRawFd;

use super::cerr;

/// Accept one connection, already non-blocking and close-on-exec (saves
/// the child two fcntl calls), with the peer's address.
pub fn accept_nonblocking(
    l: &std::net::TcpListener,
) -> io::Result<(std::net::TcpStream, std::net::SocketAddr)> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
    use std::os::fd::FromRawFd;
    // SAFETY: sockaddr_storage is plain old data; all zero is valid.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: ss and len are valid for writing and len holds ss's size.
    let fd = cerr(unsafe {
        libc::accept4(
            l.as_raw_fd(),
            (&mut ss as *mut libc::sockaddr_storage).cast(),
            &mut len,
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        )
    })?;
    // SAFETY: accept4 returned a new descriptor that nothing else owns.
    let stream = unsafe { std::net::TcpStream::from_raw_fd(fd) };
    let addr = match i32::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in for AF_INET, and
            // sockaddr_storage is large and aligned enough for it.
            let a = unsafe { &*(&ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            SocketAddr::from((
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            ))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, a sockaddr_in6 for AF_INET6.
            let a =
                unsafe { &*(&ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            ))
        }
        _ => return Err(io::Error::from_raw_os_error(libc::EAFNOSUPPORT)),
    };
    Ok((stream, addr))
}

/// TCP keepalive (dead peers end the child) and no Nagle delay (we only
/// pass on what the peers already decided to send). Best effort.
pub fn tune_relayed(s: &std::net::TcpStream) {
    use nix::sys::socket::{setsockopt, sockopt};
    let _ = setsockopt(s, sockopt::KeepAlive, &true);
    let _ = s.set_nodelay(true);
}

/// The options of [`tune_relayed`] on the listening socket, once: Linux
/// hands SO_KEEPALIVE and TCP_NODELAY down to every connection it
/// accepts, so a child need not set them on the client side (two system
/// calls fewer per connection). True when both were set.
pub fn tune_listener(l: &std::net::TcpListener) -> bool {
    use nix::sys::socket::{setsockopt, sockopt};
    setsockopt(l, sockopt::KeepAlive, &true).is_ok()
        && setsockopt(l, sockopt::TcpNoDelay, &true).is_ok()
}

/// A new non-blocking, close-on-exec TCP socket connecting to `addr`:
/// the descriptor and whether it is connected already (else the connect
/// is in progress: wait for it to be writable). Raw calls, so that the
/// expected EINPROGRESS costs no error-code translation.
pub fn connect_nonblocking(addr: std::net::SocketAddr) -> io::Result<(std::os::fd::OwnedFd, bool)> {
    use std::os::fd::FromRawFd;
    let family = if addr.is_ipv6() {
        libc::AF_INET6
    } else {
        libc::AF_INET
    };
    // SAFETY: socket(2) takes no pointers; the result is checked.
    let fd = cerr(unsafe {
        libc::socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    })?;
    // SAFETY: socket returned a new descriptor that nothing else owns.
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    let ss = nix::sys::socket::SockaddrStorage::from(addr);
    // SAFETY: ss is a valid socket address of ss.len() bytes, alive for
    // the call; the descriptor is ours.
    let r = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            nix::sys::socket::SockaddrLike::as_ptr(&ss),
            nix::sys::socket::SockaddrLike::len(&ss),
        )
    };
    if r == 0 {
        return Ok((fd, true));
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EINPROGRESS) {
        Ok((fd, false))
    } else {
        Err(e)
    }
}

/// Make closing `s` send a reset instead of a normal FIN (linger 0).
/// Best effort: the peer may be gone already.
pub fn reset_on_close(s: &std::net::TcpStream) {
    let _ = nix::sys::socket::setsockopt(
        s,
        nix::sys::socket::sockopt::Linger,
        &libc::linger {
            l_onoff: 1,
            l_linger: 0,
        },
    );
}

/// `SIOCATMARK` of `<asm-generic/sockios.h>` (the value on every Linux
/// architecture ipprotd is built for; alpha, mips and sparc differ).
const SIOCATMARK: libc::c_ulong = 0x8905;

/// Whether the next byte a read of `s` would return is where the peer's
/// urgent byte was (the read pointer is at the urgent mark).
pub fn at_mark(s: &std::net::TcpStream) -> io::Result<bool> {
    let mut at: libc::c_int = 0;
    // SAFETY: SIOCATMARK writes one int through the pointer, which points
    // to `at`, alive for the call; the descriptor is borrowed from `s`.
    cerr(unsafe { libc::ioctl(s.as_raw_fd(), SIOCATMARK as _, &mut at as *mut libc::c_int) })?;
    Ok(at != 0)
}

/// Take the urgent byte waiting on `s` (`recv` with `MSG_OOB`): `None`
/// when there is none (already taken, or its byte has not arrived yet).
pub fn recv_urgent(s: &std::net::TcpStream) -> io::Result<Option<u8>> {
    use nix::sys::socket::{MsgFlags, recv};
    let mut b = [0u8; 1];
    match recv(s.as_raw_fd(), &mut b, MsgFlags::MSG_OOB) {
        Ok(1) => Ok(Some(b[0])),
        Ok(_) => Ok(None),
        Err(nix::errno::Errno::EINVAL | nix::errno::Errno::EAGAIN) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Send `byte` on `s` as urgent data (`send` with `MSG_OOB`); whether the
/// socket took it (false: its buffer is full, try again when writable).
pub fn send_urgent(s: &std::net::TcpStream, byte: u8) -> io::Result<bool> {
    use nix::sys::socket::{MsgFlags, send};
    loop {
        match send(
            s.as_raw_fd(),
            &[byte],
            MsgFlags::MSG_OOB | MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
        ) {
            Ok(n) => return Ok(n == 1),
            Err(nix::errno::Errno::EAGAIN) => return Ok(false),
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Take ownership of a descriptor we inherited on purpose (systemd socket
/// activation, a restart hand-over), made close-on-exec; an error if it
/// is not open.
pub fn adopt_inherited(fd: std::os::fd::RawFd) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: fcntl on any number is harmless; it fails with EBADF when
    // the descriptor is not open.
    let flags = cerr(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    // SAFETY: as above, on a descriptor that is open.
    cerr(unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) })?;
    // SAFETY: the descriptor is open, and nothing else in the process
    // owns it: it was inherited and is adopted once, at start.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{getsockopt, sockopt};

    #[test]
    fn accepted_stream_inherits_listener_options() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(tune_listener(&l));
        let _c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = accept_nonblocking(&l).unwrap();
        assert!(getsockopt(&s, sockopt::KeepAlive).unwrap());
        assert!(getsockopt(&s, sockopt::TcpNoDelay).unwrap());
    }

    #[test]
    fn untuned_listener_gives_default_options() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = accept_nonblocking(&l).unwrap();
        assert!(!getsockopt(&s, sockopt::KeepAlive).unwrap());
        assert!(!getsockopt(&s, sockopt::TcpNoDelay).unwrap());
    }
}
