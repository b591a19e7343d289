//! ipprotd entry: take what was passed on purpose (systemd socket
//! activation, a restart in place), parse, check, bind, (detach, pid file,
//! drop privileges), tell whoever waits that we serve, serve. The only
//! place that chooses the exit status: 0, 1 (start), 2 (usage).

use std::process::ExitCode;

use ipprotd::config::cli::{self, Command, USAGE};
use ipprotd::daemon::pidfile::PidFile;
use ipprotd::daemon::restart::Exec;
use ipprotd::daemon::{activation, detach, listen, preflight, server};
use ipprotd::error::StartError;
use ipprotd::log;
use ipprotd::os::{signals, syslog, time};

/// glibc's malloc in the parent, an arena of its own in each connection
/// child (`os::heap`): a child copies no heap pages of the parent's.
#[global_allocator]
static ALLOC: ipprotd::os::heap::ForkHeap = ipprotd::os::heap::ForkHeap;

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("ipprotd: {msg}\n{USAGE}");
    ExitCode::from(2)
}

fn start_error(e: StartError) -> ExitCode {
    eprintln!("ipprotd: {e}");
    ExitCode::from(1)
}

/// A start error, told to the old parent too when we are the new parent
/// of a restart in place.
fn start_fail(handover: &mut Option<detach::Ready>, e: StartError) -> ExitCode {
    if let Some(r) = handover.take() {
        r.fail(&e.to_string());
    }
    start_error(e)
}

fn main() -> ExitCode {
    // how to start ourselves again on SIGHUP, before anything can change
    let exec = Exec::current();
    // descriptors inherited from whoever started us (beyond stdio and what
    // a service manager or the ipprotd we replace passed on purpose) must
    // not leak into children and hooks, nor hold files or sockets open for
    // the daemon's lifetime
    let inherited = match activation::take() {
        Ok(i) => i,
        Err(e) => return start_error(StartError::Other(e)),
    };
    if let Some(n) = &inherited.note {
        log::warn(n);
    }
    let (next_conn, replacing, mut handover) = match inherited.restarted {
        Some(r) => (
            r.next_conn,
            Some(r.old_pid),
            Some(detach::Ready::from_fd(r.ready)),
        ),
        None => (1, None, None),
    };
    let mut args = Vec::new();
    for a in std::env::args_os().skip(1) {
        match a.into_string() {
            Ok(s) => args.push(s),
            Err(a) => {
                return usage_error(&format!(
                    "argument is not valid UTF-8: {}",
                    a.to_string_lossy()
                ));
            }
        }
    }
    let mut config = match cli::parse(&args) {
        Ok(Command::Run(c)) => c,
        Ok(Command::Help) => {
            println!(
                "{USAGE}\n\nSee ipprotd(8) for the options, file formats and hook parameters."
            );
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("ipprotd {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => return usage_error(&e.0),
    };
    time::tzset();
    if let Err(e) = preflight::check(&mut config) {
        return start_fail(&mut handover, e);
    }
    // before anything is created: an unknown user leaves nothing behind
    let user = match &config.user {
        Some(name) => match detach::lookup(name) {
            Ok(u) => Some(u),
            Err(e) => return start_fail(&mut handover, StartError::Other(e)),
        },
        None => None,
    };
    if let Some(u) = &user
        && let Err(e) = preflight::check_as_user(&config, u)
    {
        return start_fail(&mut handover, e);
    }
    let listener = match inherited.listener {
        Some(l) => l,
        None => match listen::bind_listener(&config) {
            Ok(l) => l,
            Err(e) => return start_fail(&mut handover, e),
        },
    };
    let mut pidfile = match config.daemon.as_ref().and_then(|d| d.pid_file.as_ref()) {
        Some(p) => match PidFile::check(p, replacing) {
            Ok(f) => Some(f),
            Err(e) => return start_fail(&mut handover, e),
        },
        None => None,
    };
    // before any fork: the count of lost syslog messages is shared by the
    // run; an unreachable log daemon is told now, on the terminal
    if config.syslog || config.daemon.is_some() {
        let what = match &config.daemon {
            _ if config.syslog => "--syslog",
            Some(d) if d.pid_file.is_some() => "-Dp",
            _ => "-D",
        };
        syslog::open(config.syslog_socket.as_deref(), what);
    }
    let listening = listener
        .local_addr()
        .ok()
        .filter(|_| config.verbose)
        .map(|a| format!("listening on {}", ipprotd::config::addr::sock_text(a)));
    // a daemon's starter shows it on the terminal; the process that serves
    // tells it once it is ready (signals handled, pid file written)
    if let (Some(l), Some(_)) = (&listening, &config.daemon) {
        log::info(l);
    }
    // in the daemon, what goes wrong from here on is told to the starter;
    // the new parent of a restart is detached already and tells the old one
    let mut ready = handover;
    if config.daemon.is_some() && ready.is_none() {
        match detach::detach() {
            Ok(detach::Detached::Starter(code)) => return ExitCode::from(code),
            Ok(detach::Detached::Daemon(r)) => ready = Some(r),
            Err(e) => {
                if let Some(p) = pidfile.take() {
                    p.remove();
                }
                return start_error(e);
            }
        }
    }
    if config.daemon.is_some() {
        log::use_syslog();
    }
    let fail = |ready: Option<detach::Ready>, pidfile: Option<PidFile>, msg: String| {
        if let Some(p) = pidfile {
            p.remove();
        }
        match ready {
            Some(r) => r.fail(&msg),
            None => eprintln!("ipprotd: {msg}"),
        }
        ExitCode::from(1)
    };
    let pipe = match signals::install_parent() {
        Ok(p) => p,
        Err(e) => return fail(ready, pidfile, format!("cannot set up signals: {e}")),
    };
    let owner = user.as_ref().map(|u| (u.uid, u.gid));
    if let Some(Err(e)) = pidfile.as_ref().map(|p| p.write_pid(owner)) {
        let path = pidfile.as_ref().map(|p| p.path().display().to_string());
        let msg = format!(
            "-Dp: cannot write pid file {}: {e}",
            path.unwrap_or_default()
        );
        return fail(ready, pidfile, msg);
    }
    // the new parent of a restart runs as --user already
    if let Some(u) = &user
        && nix::unistd::geteuid() != u.uid
        && let Err(e) = detach::drop_privileges(u)
    {
        return fail(ready, pidfile, e);
    }
    if let Some(l) = &listening {
        log::info(l);
    }
    if let Some(r) = ready {
        r.done();
    }
    activation::notify_ready(std::process::id());
    let start = server::Start { next_conn, exec };
    let ended = server::run(listener, &config, pipe, start);
    if let Some(p) = pidfile.take()
        && !ended.handed_over
    {
        p.remove();
    }
    ExitCode::from(ended.code as u8)
}
