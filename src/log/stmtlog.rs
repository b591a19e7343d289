//! The statement log (`--statement-log`): the child appends one JSON line
//! per statement record, each with exactly one write() on a descriptor
//! opened with O_APPEND (mode 0640 when created), so the records of many
//! children never interleave. The file is opened again at most every
//! [`REOPEN_EVERY`], so a rotated log is let go of within that time
//! without an open() per record. With `--syslog` every record also goes to
//! syslog. Errors are logged once per episode, never fatal: the relay
//! goes on whatever happens here.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::log::Once;

/// How long one open descriptor of the statement log is used.
pub const REOPEN_EVERY: Duration = Duration::from_secs(1);
/// Mode of a statement log this process creates.
const MODE: u32 = 0o640;

/// The statement log of one child.
pub struct StatementLog {
    path: Option<PathBuf>,
    syslog: bool,
    file: Option<(File, Instant)>,
    failed: Once,
}

impl StatementLog {
    /// Records go to `path` (if any) and to syslog (if `syslog`).
    pub fn new(path: Option<PathBuf>, syslog: bool) -> StatementLog {
        StatementLog {
            path,
            syslog,
            file: None,
            failed: Once::default(),
        }
    }

    fn file(&mut self) -> std::io::Result<&mut File> {
        let stale = self
            .file
            .as_ref()
            .is_none_or(|(_, at)| at.elapsed() >= REOPEN_EVERY);
        if stale {
            self.file = None;
            let Some(path) = &self.path else {
                return Err(std::io::Error::from_raw_os_error(libc::EBADF));
            };
            let f = OpenOptions::new()
                .append(true)
                .create(true)
                .mode(MODE)
                .custom_flags(libc::O_CLOEXEC)
                .open(path)?;
            self.file = Some((f, Instant::now()));
        }
        match self.file.as_mut() {
            Some((f, _)) => Ok(f),
            None => Err(std::io::Error::from_raw_os_error(libc::EBADF)),
        }
    }

    /// Append one record line (ending in a newline).
    pub fn write(&mut self, line: &str) {
        if self.path.is_some() {
            let r = self.file().and_then(|f| {
                let n = f.write(line.as_bytes())?;
                if n < line.len() {
                    // a short write on a regular file: disk full
                    f.write_all(&line.as_bytes()[n..])?;
                }
                Ok(())
            });
            match r {
                Ok(()) => self.failed.clear(),
                Err(e) => {
                    self.file = None;
                    let path = self
                        .path
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default();
                    self.failed
                        .hit(&format!("--statement-log: cannot append to {path}: {e}"));
                }
            }
        }
        if self.syslog {
            crate::os::syslog::syslog(libc::LOG_INFO, line.trim_end_matches('\n'));
        }
    }
}
