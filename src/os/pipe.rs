//! Pipes for the zero-copy relay: a non-blocking, close-on-exec pipe of a
//! chosen capacity (`pipe2`, `F_SETPIPE_SZ`) and `splice()` between it and
//! a socket, so that bytes nobody needs to see go from one socket to the
//! other without being copied into the process.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::cerr;

/// The most a pipe is asked to hold: the default `/proc/sys/fs/pipe-max-size`
/// (1 MiB), which an unprivileged process may not exceed.
pub const MAX_CAPACITY: usize = 1 << 20;

/// A pipe used as the relay buffer of one direction.
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
}

/// Flags of every splice: move pages rather than copy them where the
/// kernel can, never block on the pipe (the sockets are non-blocking
/// themselves).
const FLAGS: libc::c_uint = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;

/// One `splice(2)` of at most `len` bytes from `from` to `to`, retried on
/// EINTR; EAGAIN comes back as [`io::ErrorKind::WouldBlock`].
fn splice(from: libc::c_int, to: libc::c_int, len: usize) -> io::Result<usize> {
    loop {
        // SAFETY: both descriptors are borrowed from live owners for the
        // call; null offsets mean "the file position" (pipes and sockets
        // have none), so the kernel writes through no pointer of ours.
        let n = unsafe {
            libc::splice(
                from,
                std::ptr::null_mut(),
                to,
                std::ptr::null_mut(),
                len,
                FLAGS,
            )
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Whether `e` says splice does not work between these descriptors (the
/// kernel or the file type does not support it): use read/write instead.
pub fn unsupported(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS))
}

impl Pipe {
    /// A pipe asked to hold `want` bytes (at most [`MAX_CAPACITY`]); if
    /// the kernel refuses the size (another user's limit), the default
    /// size is kept. [`Pipe::capacity`] says what it got.
    pub fn new(want: usize) -> io::Result<Pipe> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: pipe2 writes two descriptors into the array, which has
        // room for exactly two.
        cerr(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) })?;
        // SAFETY: pipe2 succeeded: both descriptors are new and ours alone.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let want = want.clamp(1, MAX_CAPACITY) as libc::c_int;
        // SAFETY: fcntl on a descriptor we own, with an int argument.
        let capacity =
            match cerr(unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, want) }) {
                Ok(n) => n,
                // SAFETY: as above; F_GETPIPE_SZ takes no argument.
                Err(_) => cerr(unsafe { libc::fcntl(write.as_raw_fd(), libc::F_GETPIPE_SZ) })?,
            };
        Ok(Pipe {
            read,
            write,
            capacity: usize::try_from(capacity).unwrap_or(0),
        })
    }

    /// How many bytes the pipe holds at most (a power of two pages).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Move at most `len` bytes from the socket `src` into the pipe:
    /// 0 at EOF, and also where a read would stop before 0 bytes (at the
    /// urgent mark): the caller then reads `src` the normal way.
    pub fn fill_from(&self, src: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
        splice(src.as_raw_fd(), self.write.as_raw_fd(), len)
    }

    /// Move at most `len` bytes from the pipe to the socket `dst`.
    pub fn drain_to(&self, dst: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
        splice(self.read.as_raw_fd(), dst.as_raw_fd(), len)
    }

    /// Read what the pipe holds into `buf` (the way back to read/write
    /// when the destination takes no splice).
    pub fn read_into(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // SAFETY: `buf` is valid for writing `buf.len()` bytes; the
            // descriptor is ours.
            let n =
                unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsFd;

    #[test]
    fn splices_socket_to_socket_through_the_pipe() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        let l2 = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l2.local_addr().unwrap()).unwrap();
        let (mut d, _) = l2.accept().unwrap();
        let p = Pipe::new(256 * 1024).unwrap();
        assert!(p.capacity() >= 256 * 1024, "{}", p.capacity());
        a.write_all(b"through the pipe").unwrap();
        a.shutdown(std::net::Shutdown::Write).unwrap();
        let mut moved = 0;
        loop {
            let n = p.fill_from(b.as_fd(), 1000).unwrap();
            if n == 0 {
                break;
            }
            moved += n;
            assert_eq!(p.drain_to(c.as_fd(), n).unwrap(), n);
        }
        assert_eq!(moved, 16);
        drop(c);
        let mut got = Vec::new();
        d.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"through the pipe");
    }

    #[test]
    fn an_empty_pipe_would_block_and_read_into_gets_its_bytes() {
        let p = Pipe::new(1).unwrap();
        assert!(p.capacity() >= 4096);
        let (l, r) = std::os::unix::net::UnixStream::pair().unwrap();
        let e = p.drain_to(l.as_fd(), 10).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        drop(r);
        let mut buf = [0u8; 4];
        assert_eq!(
            p.read_into(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
    }
}
