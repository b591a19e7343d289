//! Detaching (`-D`, `-Dp`) with the `daemonize` crate, and the `--user`
//! privilege drop. Paths were made absolute before: the daemon runs in `/`.
//!
//! The starting process stays until the daemon says it is ready (pid file
//! written, privileges dropped) over a pipe, so `ipprotd -Dp f && kill
//! $(cat f)` never reads an empty pid file, and an error after the fork
//! still reaches the user's terminal with exit status 1.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;

use daemonize::{Daemonize, Outcome};
use nix::unistd::User;

use crate::error::StartError;

/// Which process we are after [`detach`].
pub enum Detached {
    /// The starting process: exit with this status.
    Starter(u8),
    /// The daemon: report readiness (or failure) on this.
    Daemon(Ready),
}

/// The daemon's end of the readiness pipe.
pub struct Ready(OwnedFd);

impl Ready {
    /// The readiness pipe a restarting ipprotd handed over (same
    /// protocol: `R`, or `E` and the message).
    pub fn from_fd(fd: OwnedFd) -> Ready {
        Ready(fd)
    }

    /// Start-up finished: the starting process exits 0.
    pub fn done(self) {
        let _ = std::fs::File::from(self.0).write_all(b"R");
    }

    /// Start-up failed: the starting process prints `msg`, exits 1.
    pub fn fail(self, msg: &str) {
        let _ = std::fs::File::from(self.0).write_all(format!("E{msg}").as_bytes());
    }
}

/// Detach from the terminal: fork, setsid, fork, chdir /, stdio to
/// /dev/null.
pub fn detach() -> Result<Detached, StartError> {
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| StartError::Other(format!("cannot create a pipe: {e}")))?;
    match Daemonize::new()
        .working_directory("/")
        .umask(0o022)
        .execute()
    {
        Outcome::Parent(Ok(_)) => {
            drop(wr);
            let mut answer = Vec::new();
            let _ = std::fs::File::from(rd).read_to_end(&mut answer);
            match answer.split_first() {
                Some((b'R', _)) => Ok(Detached::Starter(0)),
                Some((b'E', msg)) => Err(StartError::Other(String::from_utf8_lossy(msg).into())),
                _ => Err(StartError::Other(
                    "the daemon ended before it was ready".into(),
                )),
            }
        }
        Outcome::Parent(Err(e)) => Err(StartError::Other(format!("cannot detach: {e}"))),
        Outcome::Child(Ok(_)) => {
            drop(rd);
            Ok(Detached::Daemon(Ready(wr)))
        }
        Outcome::Child(Err(e)) => {
            Ready(wr).fail(&format!("cannot detach: {e}"));
            std::process::exit(1);
        }
    }
}

/// Look up `--user`.
pub fn lookup(name: &str) -> Result<User, String> {
    match User::from_name(name) {
        Ok(Some(u)) => Ok(u),
        Ok(None) => Err(format!("--user: no such user '{name}'")),
        Err(e) => Err(format!("--user: cannot look up user '{name}': {e}")),
    }
}

/// Drop root to `user` and its groups.
pub fn drop_privileges(user: &User) -> Result<(), String> {
    let name = std::ffi::CString::new(user.name.as_str()).map_err(|e| e.to_string())?;
    nix::unistd::initgroups(&name, user.gid)
        .map_err(|e| format!("--user: cannot set groups of '{}': {e}", user.name))?;
    nix::unistd::setgid(user.gid)
        .map_err(|e| format!("--user: cannot set group {}: {e}", user.gid))?;
    nix::unistd::setuid(user.uid)
        .map_err(|e| format!("--user: cannot set user {}: {e}", user.uid))?;
    Ok(())
}
