//! Restart in place (SIGHUP): start our executable again with the same
//! arguments, the listening socket at fd 3, the write end of a readiness
//! pipe at fd 4 and the next sequence number in the environment (see
//! `activation`). The new parent answers on the pipe like a detached
//! daemon answers its starter: `R` once it has written the pid file,
//! or `E` and why it failed. The loop in `server` waits for the answer
//! without accepting (connections wait in the backlog, none is refused),
//! then exits or keeps serving. Never forks a connection child.

use std::ffi::OsString;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::activation::{
    HANDOVER_LISTEN_FD, HANDOVER_READY_FD, LISTEN_FD_ENV, NEXT_CONN_ENV, READY_FD_ENV,
};
use crate::os::process;

/// How long the new parent has to say it is ready before it is killed
/// and the old one serves on.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How to start ourselves again: resolved once at start, because
/// `/proc/self/exe` names the file that was replaced once an upgrade has
/// renamed a new binary over it.
#[derive(Clone, Debug, Default)]
pub struct Exec {
    /// `/proc/self/exe` at start; `None` if it could not be read.
    pub path: Option<PathBuf>,
    pub args: Vec<OsString>,
}

impl Exec {
    /// Our executable and arguments, as started.
    pub fn current() -> Exec {
        Exec {
            path: std::fs::read_link("/proc/self/exe")
                .ok()
                .map(|p| strip_deleted(&p)),
            args: std::env::args_os().skip(1).collect(),
        }
    }
}

/// The kernel appends " (deleted)" to the link of a removed executable.
fn strip_deleted(p: &Path) -> PathBuf {
    let s = p.as_os_str().to_string_lossy();
    match s.strip_suffix(" (deleted)") {
        Some(t) => PathBuf::from(t),
        None => p.to_path_buf(),
    }
}

/// Longest failure message kept from the new parent.
const MAX_ANSWER: usize = 4096;

/// A new parent started, its answer not read yet.
pub struct Pending {
    pub pid: libc::pid_t,
    /// Read end of the readiness pipe.
    pub answer: OwnedFd,
    got: Vec<u8>,
}

/// What the new parent said.
pub enum Answer {
    /// Nothing complete yet.
    Waiting,
    Ready,
    /// It failed and said why.
    Failed(String),
    /// The pipe closed with no answer: it ended before it was ready.
    Closed,
}

/// Start the new parent, handing over `listener` and `next_conn`.
pub fn spawn(exec: &Exec, listener: &TcpListener, next_conn: u64) -> Result<Pending, String> {
    let Some(path) = &exec.path else {
        return Err("the path of the running executable is unknown (/proc/self/exe)".into());
    };
    if let Err(e) = std::fs::metadata(path) {
        return Err(format!(
            "executable {} was removed or cannot be read: {e}",
            path.display()
        ));
    }
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
        .map_err(|e| format!("cannot create a pipe: {e}"))?;
    let mut cmd = Command::new(path);
    cmd.args(&exec.args)
        .env(LISTEN_FD_ENV, HANDOVER_LISTEN_FD.to_string())
        .env(READY_FD_ENV, HANDOVER_READY_FD.to_string())
        .env(NEXT_CONN_ENV, next_conn.to_string());
    // the write end blocks in the new parent (it writes once and exits
    // or closes); only our read end is non-blocking
    let _ = nix::fcntl::fcntl(
        &wr,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()),
    );
    let child = process::spawn_with_fds(
        &mut cmd,
        &[
            (listener.as_raw_fd(), HANDOVER_LISTEN_FD),
            (wr.as_raw_fd(), HANDOVER_READY_FD),
        ],
    )
    .map_err(|e| format!("cannot start {}: {e}", path.display()))?;
    drop(wr);
    Ok(Pending {
        pid: child.id() as libc::pid_t,
        answer: rd,
        got: Vec::new(),
    })
}

impl Pending {
    /// Read what the pipe holds now (it is non-blocking).
    pub fn read(&mut self) -> Answer {
        let mut b = [0u8; 512];
        loop {
            match nix::unistd::read(&self.answer, &mut b) {
                Ok(0) => break,
                Ok(n) => {
                    self.got.extend_from_slice(&b[..n]);
                    if self.got.len() > MAX_ANSWER {
                        break;
                    }
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => return self.partial(),
            }
        }
        match self.got.split_first() {
            Some((b'R', _)) => Answer::Ready,
            Some((b'E', msg)) => Answer::Failed(String::from_utf8_lossy(msg).into()),
            _ => Answer::Closed,
        }
    }

    /// Would block: only a complete `R` counts so far.
    fn partial(&self) -> Answer {
        match self.got.first() {
            Some(b'R') => Answer::Ready,
            _ => Answer::Waiting,
        }
    }
}
