//! The operating-system layer: the few raw libc calls ipprotd needs beyond
//! std and nix, grouped by topic (processes, sockets, memory maps, the allocator, pipes,
//! time, syslog, signals). The only place in the crate with `unsafe`; every block
//! carries a `// SAFETY:` comment, and the callers above see safe functions
//! (except [`process::fork`], whose precondition they must keep).

use std::io;

pub mod heap;
pub mod mmap;
pub mod pipe;
pub mod process;
pub mod signals;
pub mod socket;
pub mod syslog;
pub mod time;

/// Map a `-1` return to the OS error.
pub fn cerr(r: libc::c_int) -> io::Result<libc::c_int> {
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}
