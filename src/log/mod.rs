//! What ipprotd writes as text. This module: the diagnostics, to stderr in
//! the foreground, to syslog once detached. One voice: every line starts
//! with `ipprotd: ` on stderr. Errors that repeat are throttled by the
//! caller with [`Once`]. The submodules hold the connection log: the
//! fields of one connection (`conninfo`), the `-C` template that renders
//! them (`template`), the time formats (`timefmt`), the single-write
//! append (`connlog`), the statement log (`stmtlog`), the `--verbose` hex
//! dump (`hexdump`), and what a child publishes for its parent's `crashed`
//! entries (`published`). All but `connlog`, `stmtlog`, `published` and
//! the diagnostics are pure.

pub mod conninfo;
pub mod connlog;
pub mod hexdump;
pub mod published;
pub mod stmtlog;
pub mod template;
pub mod timefmt;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static SYSLOG: AtomicBool = AtomicBool::new(false);

/// From now on, diagnostics go to syslog.
pub fn use_syslog() {
    SYSLOG.store(true, Ordering::SeqCst);
}

/// Whether diagnostics go to syslog.
pub fn to_syslog() -> bool {
    SYSLOG.load(Ordering::SeqCst)
}

fn emit(priority: libc::c_int, msg: &str) {
    if to_syslog() {
        crate::os::syslog::syslog(priority, msg);
    } else {
        // the whole line in one write(): children share stderr, and a line
        // written in pieces interleaves with theirs
        let line = format!("ipprotd: {msg}\n");
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
}

pub fn error(msg: &str) {
    emit(libc::LOG_ERR, msg);
}

pub fn warn(msg: &str) {
    emit(libc::LOG_WARNING, msg);
}

pub fn notice(msg: &str) {
    emit(libc::LOG_NOTICE, msg);
}

pub fn info(msg: &str) {
    emit(libc::LOG_INFO, msg);
}

/// A log-once-per-episode latch: `hit` logs on the first failure of an
/// episode; `clear` ends the episode.
#[derive(Default)]
pub struct Once {
    active: bool,
}

impl Once {
    pub fn hit(&mut self, msg: &str) {
        if !self.active {
            self.active = true;
            error(msg);
        }
    }

    pub fn clear(&mut self) {
        self.active = false;
    }
}
