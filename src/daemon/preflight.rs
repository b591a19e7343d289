//! Start-time checks, in the foreground: relative paths made absolute
//! against the start directory (the daemon runs in `/`), log directories
//! exist and are writable, the hook is executable, the destination
//! resolves (a warning only); with `--user`, the same file-system checks
//! again as that user. Every failure is a [`StartError`].

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use nix::sys::wait::WaitStatus;

use crate::config::Config;
use crate::error::StartError;

fn absolute(cwd: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        cwd.join(p)
    }
}

fn parent_of(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("/"),
    }
}

/// The directory must exist, be a directory and be writable.
fn check_dir(option: &'static str, dir: &Path) -> Result<(), StartError> {
    match std::fs::metadata(dir) {
        Err(e) => return Err(StartError::path(option, "use directory", dir, e)),
        Ok(m) if !m.is_dir() => {
            return Err(StartError::path(
                option,
                "use directory",
                dir,
                io::Error::from_raw_os_error(libc::ENOTDIR),
            ));
        }
        Ok(_) => {}
    }
    crate::os::process::writable_dir(dir)
        .map_err(|e| StartError::path(option, "write to directory", dir, e))
}

/// An existing log file must be a writable file.
fn check_appendable(option: &'static str, file: &Path) -> Result<(), StartError> {
    if let Ok(m) = std::fs::symlink_metadata(file) {
        if m.is_dir() {
            return Err(StartError::path(
                option,
                "append to",
                file,
                io::Error::from_raw_os_error(libc::EISDIR),
            ));
        }
        nix::unistd::access(file, nix::unistd::AccessFlags::W_OK)
            .map_err(|e| StartError::path(option, "append to", file, e.into()))?;
    }
    Ok(())
}

/// Find a program name without `/` in PATH.
fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file() && crate::os::process::executable(p))
}

/// Check the configuration against the file system; absolutise paths.
pub fn check(config: &mut Config) -> Result<(), StartError> {
    let cwd = std::env::current_dir()
        .map_err(|e| StartError::Other(format!("cannot get the current directory: {e}")))?;

    if let Some(d) = &mut config.datalog {
        d.prefix = absolute(&cwd, &d.prefix);
    }
    if let Some(s) = &mut config.syslog_socket {
        // a missing socket is no start error: the log daemon may come later
        *s = absolute(&cwd, s);
    }
    if let Some(c) = &mut config.connlog {
        *c = absolute(&cwd, c);
    }
    if let Some(c) = &mut config.statement_log {
        *c = absolute(&cwd, c);
        check_dir("--statement-log", &parent_of(c))?;
        check_appendable("--statement-log", c)?;
    }
    if let Some(p) = config.daemon.as_mut().and_then(|d| d.pid_file.as_mut()) {
        *p = absolute(&cwd, p);
    }
    if let Some(t) = &mut config.tls {
        t.cert = absolute(&cwd, &t.cert);
        t.key = absolute(&cwd, &t.key);
        if let Some(ca) = &mut t.ca {
            *ca = absolute(&cwd, ca);
        }
        // read once here, before detaching and dropping privileges: the
        // children inherit the configurations
        crate::session::tls::install(crate::session::tls::load(t)?);
    }
    if let Some(h) = &mut config.hook {
        let opt = if h.text_times { "-uT" } else { "-u" };
        let prog = h.argv[0].clone();
        // absolute even when found through a relative PATH entry
        // (PATH=bin:...): the daemon runs in /
        let path = if prog.contains('/') {
            absolute(&cwd, Path::new(&prog))
        } else {
            absolute(
                &cwd,
                &which(&prog).ok_or_else(|| {
                    StartError::path(
                        opt,
                        "find program",
                        prog.as_str(),
                        io::Error::from_raw_os_error(libc::ENOENT),
                    )
                })?,
            )
        };
        h.argv[0] = path.to_string_lossy().into_owned();
    }
    access(config, true)?;
    // a destination that does not resolve now is only a warning
    for d in &config.dests {
        use std::net::ToSocketAddrs;
        if (d.host.as_str(), d.port).to_socket_addrs().is_err() {
            crate::log::warn(&format!(
                "-P: destination host '{}' does not resolve now (resolved again for every connection)",
                d.host
            ));
        }
    }
    Ok(())
}

/// The file-system checks of an absolutised configuration, as the current
/// user: log directories writable, an existing connection log appendable,
/// the hook executable (and the pid file's directory, if `pid_dir`).
fn access(config: &Config, pid_dir: bool) -> Result<(), StartError> {
    if let Some(d) = &config.datalog {
        check_dir("-f", &parent_of(&d.prefix))?;
    }
    if let Some(c) = &config.connlog {
        check_dir("-c", &parent_of(c))?;
        if let Ok(m) = std::fs::symlink_metadata(c) {
            if m.is_dir() {
                return Err(StartError::path(
                    "-c",
                    "append to",
                    c,
                    io::Error::from_raw_os_error(libc::EISDIR),
                ));
            }
            nix::unistd::access(c.as_path(), nix::unistd::AccessFlags::W_OK)
                .map_err(|e| StartError::path("-c", "append to", c, e.into()))?;
        }
    }
    if let Some(t) = &config.tls {
        // readable again as --user: a restart in place (SIGHUP) reads them
        // as that user
        for (opt, f) in [
            ("--tls-cert", Some(&t.cert)),
            ("--tls-key", Some(&t.key)),
            ("--tls-ca", t.ca.as_ref()),
        ] {
            if let Some(f) = f {
                std::fs::File::open(f).map_err(|e| StartError::path(opt, "read", f, e))?;
            }
        }
    }
    if pid_dir && let Some(p) = config.daemon.as_ref().and_then(|d| d.pid_file.as_ref()) {
        check_dir("-Dp", &parent_of(p))?;
    }
    if let Some(h) = &config.hook {
        let opt = if h.text_times { "-uT" } else { "-u" };
        let path = Path::new(&h.argv[0]);
        let meta =
            std::fs::metadata(path).map_err(|e| StartError::path(opt, "execute", path, e))?;
        if !meta.is_file() || !crate::os::process::executable(path) {
            return Err(StartError::path(
                opt,
                "execute",
                path,
                io::Error::from_raw_os_error(libc::EACCES),
            ));
        }
    }
    Ok(())
}

/// The same checks again as the `--user` user (in a child process that
/// drops privileges the way the daemon will), before detaching: a
/// directory root may write but the user may not would otherwise fail
/// every connection later. The pid file is written before the drop and is
/// not checked.
pub fn check_as_user(config: &Config, user: &nix::unistd::User) -> Result<(), StartError> {
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| StartError::Other(format!("--user: cannot create a pipe: {e}")))?;
    match crate::os::process::fork() {
        Err(e) => Err(StartError::Other(format!(
            "--user: cannot fork to check access as {}: {e}",
            user.name
        ))),
        Ok(crate::os::process::Fork::Child) => {
            drop(rd);
            let msg = match crate::daemon::detach::drop_privileges(user) {
                Err(e) => e,
                Ok(()) => match access(config, false) {
                    Ok(()) => String::new(),
                    Err(StartError::Path {
                        option,
                        verb,
                        path,
                        cause,
                    }) => format!(
                        "{option}: cannot {verb} {} as --user {}: {cause}",
                        path.display(),
                        user.name
                    ),
                    Err(e) => e.to_string(),
                },
            };
            let _ = std::fs::File::from(wr).write_all(msg.as_bytes());
            crate::os::process::exit_now(0);
        }
        Ok(crate::os::process::Fork::Parent(pid)) => {
            drop(wr);
            let mut msg = String::new();
            let r = std::fs::File::from(rd).read_to_string(&mut msg);
            let st = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            match (r, st) {
                (Ok(_), Ok(WaitStatus::Exited(_, 0))) if msg.is_empty() => Ok(()),
                (Ok(_), Ok(WaitStatus::Exited(_, 0))) => Err(StartError::Other(msg)),
                (r, st) => Err(StartError::Other(format!(
                    "--user: cannot check access as {}: {}",
                    user.name,
                    match (r, st) {
                        (Err(e), _) => e.to_string(),
                        (_, Err(e)) => e.to_string(),
                        (_, Ok(st)) => format!("checking process ended with {st:?}"),
                    }
                ))),
            }
        }
    }
}
