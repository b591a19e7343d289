//! Syslog (ident `ipprotd`, facility daemon): the diagnostics of a
//! detached daemon and the optional mirror of connection-log entries.

use std::ffi::CString;

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
