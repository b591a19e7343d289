//! The pid file: a live `ipprotd` named in it refuses the start; anything
//! else is stale and replaced. Opened in the foreground (so errors reach
//! the user), written once the daemon's pid is known, removed on exit (or
//! emptied where the directory forbids removal). Nothing else touches it.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::StartError;

pub struct PidFile {
    path: PathBuf,
    file: File,
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

impl PidFile {
    /// Refuse a live instance, then open (create or truncate) the file.
    pub fn open(path: &Path) -> Result<PidFile, StartError> {
        if let Some(pid) = live_instance(path) {
            return Err(StartError::Other(format!(
                "-Dp: {}: another ipprotd is running (pid {pid})",
                path.display()
            )));
        }
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| StartError::path("-Dp", "write pid file", path, e))?;
        Ok(PidFile {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Write our pid and a newline.
    pub fn write_pid(&mut self) -> io::Result<()> {
        self.file.set_len(0)?;
        self.file.rewind()?;
        self.file
            .write_all(format!("{}\n", std::process::id()).as_bytes())?;
        self.file.flush()
    }

    /// Hand the file to the unprivileged user (`--user`).
    pub fn chown(&self, uid: nix::unistd::Uid, gid: nix::unistd::Gid) -> io::Result<()> {
        nix::unistd::fchown(&self.file, Some(uid), Some(gid)).map_err(io::Error::from)
    }

    /// Remove the file; empty it where removal is not allowed.
    pub fn remove(self) {
        if std::fs::remove_file(&self.path).is_err() {
            let _ = self.file.set_len(0);
        }
    }
}
