//! The pid file: a live `ipprotd` named in it refuses the start; anything
//! else is stale and replaced. Checked in the foreground (so a refusal
//! reaches the user), written once the daemon's pid is known, removed on
//! exit (or emptied where the directory forbids removal). Nothing else
//! touches it.
//!
//! It is written as a temporary file in the same directory, then renamed
//! over the name: a reader sees the old content or the whole new pid,
//! never an empty or half-written file. No descriptor is kept open, so no
//! child inherits one.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::StartError;

/// Mode of the pid file.
pub const PIDFILE_MODE: u32 = 0o644;

pub struct PidFile {
    path: PathBuf,
}

/// The pid a pid file names, if it is a live process called `ipprotd`.
fn live_instance(path: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(path).ok()?;
    let pid: i32 = text.trim().parse().ok().filter(|p| *p > 0)?;
    if pid == std::process::id() as i32 {
        return None;
    }
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    // a zombie keeps its name but is no instance
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let state = stat.rsplit_once(')')?.1.split_whitespace().next()?;
    (comm.trim_end() == "ipprotd" && state != "Z").then_some(pid)
}

/// The temporary name next to `path`, unique to this process.
fn temp_name(path: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(format!(".{}.tmp", std::process::id()));
    path.with_file_name(name)
}

impl PidFile {
    /// Refuse a live instance (other than `replacing`, the parent a
    /// restart in place takes over from); nothing is written yet.
    pub fn check(path: &Path, replacing: Option<i32>) -> Result<PidFile, StartError> {
        if let Some(pid) = live_instance(path).filter(|p| Some(*p) != replacing) {
            return Err(StartError::Other(format!(
                "-Dp: {}: another ipprotd is running (pid {pid})",
                path.display()
            )));
        }
        Ok(PidFile {
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Write our pid and a newline, the file owned by `owner` if given
    /// (`--user`): a temporary file renamed over the name.
    pub fn write_pid(&self, owner: Option<(nix::unistd::Uid, nix::unistd::Gid)>) -> io::Result<()> {
        let tmp = temp_name(&self.path);
        let _ = std::fs::remove_file(&tmp);
        let r = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(PIDFILE_MODE)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
            .and_then(|mut f| {
                f.write_all(format!("{}\n", std::process::id()).as_bytes())?;
                if let Some((uid, gid)) = owner
                    && let Err(e) = nix::unistd::fchown(&f, Some(uid), Some(gid))
                {
                    crate::log::warn(&format!(
                        "-Dp: cannot hand the pid file {} to uid {uid}: {e}",
                        self.path.display()
                    ));
                }
                Ok(())
            })
            .and_then(|()| std::fs::rename(&tmp, &self.path));
        if r.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        r
    }

    /// Remove the file; empty it where removal is not allowed.
    pub fn remove(self) {
        if std::fs::remove_file(&self.path).is_err() {
            let _ = OpenOptions::new()
                .write(true)
                .truncate(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&self.path);
        }
    }
}
