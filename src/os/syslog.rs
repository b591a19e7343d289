//! Syslog (ident `ipprotd`, facility daemon): the diagnostics of a
//! detached daemon and the optional mirror of connection-log entries.
//!
//! Messages go as datagrams in the BSD format glibc's `syslog()` uses,
//! `<PRI>Mmm dd HH:MM:SS ipprotd[PID]: MSG`, to `/dev/log` or the socket of
//! `--syslog-socket`. Unlike `syslog()`, a message that cannot be sent is
//! not dropped silently: the first loss of an episode is told on standard
//! error (at start already, if the socket cannot be reached), every loss
//! is counted in memory shared by the parent and all its children, and the
//! next message that gets through is preceded by one that says how many
//! were lost. A sender that fails reconnects (the log daemon may have been
//! restarted) and never blocks for more than [`SEND_TIMEOUT`].

use std::io::{self, Write};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::os::mmap::SharedBits;

/// Where the log daemon listens unless `--syslog-socket` says otherwise.
pub const DEFAULT_SOCKET: &str = "/dev/log";
/// The ident (tag) of every message.
pub const IDENT: &str = "ipprotd";
/// How long one send may wait for a log daemon that does not read.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(1);
/// Shared words: messages lost so far in this episode, and whether an
/// episode of losses is going on.
const LOST: usize = 0;
const FAILING: usize = 1;

struct Client {
    path: PathBuf,
    sock: Option<UnixDatagram>,
}

static CLIENT: Mutex<Option<Client>> = Mutex::new(None);
static SHARED: OnceLock<Option<SharedBits>> = OnceLock::new();

fn shared() -> Option<&'static SharedBits> {
    SHARED.get_or_init(|| SharedBits::new(128)).as_ref()
}

fn connect(path: &Path) -> io::Result<UnixDatagram> {
    let s = UnixDatagram::unbound()?;
    s.connect(path)?;
    s.set_write_timeout(Some(SEND_TIMEOUT))?;
    Ok(s)
}

/// Choose the socket (`None`: `/dev/log`) and connect to it; before any
/// fork, so the loss counter is shared by the whole run. If it cannot be
/// reached, say so on standard error now (`what` names the use, e.g.
/// `--syslog`).
pub fn open(socket: Option<&Path>, what: &str) {
    let path = socket.map_or_else(|| PathBuf::from(DEFAULT_SOCKET), Path::to_path_buf);
    let _ = shared();
    let sock = match connect(&path) {
        Ok(s) => Some(s),
        Err(e) => {
            start_episode();
            let _ = writeln!(
                io::stderr(),
                "ipprotd: {what}: cannot reach the log daemon at {}: {e}; syslog messages are lost (and counted) until it can be reached",
                path.display()
            );
            None
        }
    };
    if let Ok(mut c) = CLIENT.lock() {
        *c = Some(Client { path, sock });
    }
}

/// Mark an episode of losses as begun; true if it was not already.
fn start_episode() -> bool {
    shared()
        .and_then(|s| s.word(FAILING))
        .is_none_or(|w| w.swap(1, Ordering::SeqCst) == 0)
}

fn line(priority: libc::c_int, msg: &str) -> String {
    format!(
        "<{}>{} {IDENT}[{}]: {}",
        libc::LOG_DAEMON | priority,
        crate::os::time::now_local().syslog_stamp(),
        std::process::id(),
        msg.replace('\0', "?")
    )
}

impl Client {
    /// Send one datagram; on failure reconnect once and try again.
    fn send(&mut self, data: &str) -> io::Result<()> {
        if let Some(s) = &self.sock
            && s.send(data.as_bytes()).is_ok()
        {
            return Ok(());
        }
        self.sock = None;
        let s = connect(&self.path)?;
        s.send(data.as_bytes())?;
        self.sock = Some(s);
        Ok(())
    }
}

/// Send one message to syslog at `priority` (facility daemon).
pub fn syslog(priority: libc::c_int, msg: &str) {
    let Ok(mut guard) = CLIENT.lock() else {
        return;
    };
    let client = guard.get_or_insert_with(|| Client {
        path: PathBuf::from(DEFAULT_SOCKET),
        sock: None,
    });
    let words = shared().map(|s| (s.word(LOST), s.word(FAILING)));
    let (lost, failing) = match words {
        Some((Some(l), Some(f))) => (Some(l), Some(f)),
        _ => (None, None),
    };
    // in an episode of losses, first say how many were lost; the episode
    // ends only when something really got through
    let mut told = 0;
    let mut result = Ok(());
    if let (Some(l), Some(f)) = (lost, failing)
        && f.load(Ordering::SeqCst) != 0
    {
        told = l.load(Ordering::SeqCst);
        if told > 0 {
            result = client.send(&line(
                libc::LOG_WARNING,
                &format!(
                    "syslog: {told} message{} lost while {} could not be reached",
                    if told == 1 { " was" } else { "s were" },
                    client.path.display()
                ),
            ));
        }
    }
    if result.is_ok() {
        result = client.send(&line(priority, msg));
    }
    if result.is_ok()
        && let (Some(l), Some(f)) = (lost, failing)
    {
        l.fetch_sub(told, Ordering::SeqCst);
        f.store(0, Ordering::SeqCst);
    }
    if let Err(e) = result {
        if let Some(l) = lost {
            l.fetch_add(1, Ordering::SeqCst);
        }
        if start_episode() {
            let _ = writeln!(
                io::stderr(),
                "ipprotd: syslog: cannot send to {}: {e}; syslog messages are lost (and counted) until it can be reached",
                client.path.display()
            );
        }
    }
}
