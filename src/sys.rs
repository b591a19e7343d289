//! The few raw libc calls ipprotd needs beyond std and nix: local UTC
//! offset, fork, syslog, closing descriptors before exec. `unsafe` lives
//! here and in `signals` only.

use std::ffi::CString;
use std::io;
use std::os::fd::AsRawFd;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::timefmt::LocalTime;

/// Map a `-1` return to the OS error.
pub fn cerr(r: libc::c_int) -> io::Result<libc::c_int> {
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Load the time-zone rules once (TZ), so `localtime_r` sees them.
pub fn tzset() {
    // SAFETY: tzset only reads the environment and initialises libc's
    // time-zone state; called while the process is single threaded.
    unsafe { tzset_c() }
}

unsafe extern "C" {
    #[link_name = "tzset"]
    fn tzset_c();
}

/// UTC offset in seconds in force at `epoch_secs`, local time zone.
pub fn local_offset(epoch_secs: i64) -> i32 {
    let t: libc::time_t = epoch_secs as libc::time_t;
    // SAFETY: tm is plain old data, fully written by localtime_r on
    // success; both pointers are valid for the call.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: see above.
    let r = unsafe { libc::localtime_r(&t, &mut tm) };
    if r.is_null() { 0 } else { tm.tm_gmtoff as i32 }
}

/// The current time with its local offset.
pub fn now_local() -> LocalTime {
    let us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    LocalTime {
        epoch_us: us,
        offset: local_offset(us.div_euclid(1_000_000)),
    }
}

/// Result of [`fork`].
pub enum Fork {
    Parent(libc::pid_t),
    Child,
}

/// Fork the process.
///
/// # Safety
/// The caller must be single threaded (ipprotd never starts threads), so
/// the child may run arbitrary code afterwards.
pub unsafe fn fork() -> io::Result<Fork> {
    // SAFETY: the caller guarantees a single-threaded process.
    let pid = cerr(unsafe { libc::fork() })?;
    Ok(if pid == 0 {
        Fork::Child
    } else {
        Fork::Parent(pid)
    })
}

/// Open the syslog connection (ident `ipprotd`, facility daemon).
pub fn openlog() {
    static IDENT: &[u8] = b"ipprotd\0";
    // SAFETY: IDENT is a static NUL-terminated string that outlives every
    // later syslog call, as openlog requires.
    unsafe {
        libc::openlog(
            IDENT.as_ptr().cast(),
            libc::LOG_PID | libc::LOG_NDELAY,
            libc::LOG_DAEMON,
        )
    }
}

/// Send one message to syslog at `priority`.
pub fn syslog(priority: libc::c_int, msg: &str) {
    let Ok(c) = CString::new(msg.replace('\0', "?")) else {
        return;
    };
    // SAFETY: the format is a static "%s" and c is a valid C string.
    unsafe { libc::syslog(priority, c"%s".as_ptr(), c.as_ptr()) }
}

/// Close every descriptor above 2 (before exec).
pub fn close_from_3() {
    // SAFETY: close_range only closes descriptors; nothing in this process
    // uses them any more (we are about to exec).
    let r = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    if r == 0 {
        return;
    }
    let max = match nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE) {
        Ok((soft, _)) => soft.min(65_536) as i32,
        Err(_) => 1024,
    };
    for fd in 3..max {
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

/// End a child at once: no atexit handlers, no runtime clean-up (nothing
/// is buffered; the kernel frees the rest).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions and does not return.
    unsafe { libc::_exit(code) }
}

/// A bit set in anonymous shared memory, created by the parent before it
/// forks, so that every child of one run sees the same bits (used to give
/// the FLEXlm vendor-port notice once per run).
pub struct SharedBits {
    words: *const std::sync::atomic::AtomicU64,
    len: usize,
}

impl SharedBits {
    /// `bits` bits, all clear; `None` if the mapping fails.
    pub fn new(bits: usize) -> Option<SharedBits> {
        let len = bits.div_ceil(64);
        let bytes = len * 8;
        // SAFETY: a fresh anonymous shared mapping; no existing memory is
        // touched; the result is checked against MAP_FAILED.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return None;
        }
        Some(SharedBits {
            words: p.cast(),
            len,
        })
    }

    /// Set bit `i`; true if it was clear (the first time in this run).
    pub fn set_first(&self, i: usize) -> bool {
        let (w, b) = (i / 64, i % 64);
        if w >= self.len {
            return false;
        }
        // SAFETY: w < len, inside the mapping, which lives as long as the
        // process (never unmapped); the mapping is zero-initialised, a
        // valid AtomicU64 bit pattern, and 8-byte aligned (page aligned).
        let word = unsafe { &*self.words.add(w) };
        let mask = 1u64 << b;
        word.fetch_or(mask, std::sync::atomic::Ordering::SeqCst) & mask == 0
    }
}

/// A zero-filled buffer in its own anonymous mapping: no allocator state
/// is touched (in a forked child every touched page is a private copy), and
/// its pages cost memory only once written.
pub struct Region {
    ptr: *mut u8,
    len: usize,
}

impl Region {
    /// Map `len` bytes (at least one).
    pub fn new(len: usize) -> io::Result<Region> {
        let len = len.max(1);
        // SAFETY: a fresh private anonymous mapping; no existing memory is
        // touched; the result is checked against MAP_FAILED.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Region { ptr: p.cast(), len })
    }
}

impl std::ops::Deref for Region {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: ptr..ptr+len is a live mapping owned by self, readable
        // and zero-initialised.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl std::ops::DerefMut for Region {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in deref; &mut self gives exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: the mapping was made by Region::new and is unmapped once.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}
