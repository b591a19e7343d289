//! Start-time checks, in the foreground: relative paths made absolute
//! against the start directory (the daemon runs in `/`), log directories
//! exist and are writable, the hook is executable, the destination
//! resolves (a warning only). Every failure is a [`StartError`].

use std::io;
use std::path::{Path, PathBuf};

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
        check_dir("-f", &parent_of(&d.prefix))?;
    }
    if let Some(c) = &mut config.connlog {
        *c = absolute(&cwd, c);
        check_dir("-c", &parent_of(c))?;
        if let Ok(m) = std::fs::symlink_metadata(&*c) {
            if m.is_dir() {
                return Err(StartError::path(
                    "-c",
                    "append to",
                    &*c,
                    io::Error::from_raw_os_error(libc::EISDIR),
                ));
            }
            nix::unistd::access(c.as_path(), nix::unistd::AccessFlags::W_OK)
                .map_err(|e| StartError::path("-c", "append to", &*c, e.into()))?;
        }
    }
    if let Some(p) = config.daemon.as_mut().and_then(|d| d.pid_file.as_mut()) {
        *p = absolute(&cwd, p);
        check_dir("-Dp", &parent_of(p))?;
    }
    if let Some(h) = &mut config.hook {
        let opt = if h.text_times { "-uT" } else { "-u" };
        let prog = h.argv[0].clone();
        let path = if prog.contains('/') {
            absolute(&cwd, Path::new(&prog))
        } else {
            which(&prog).ok_or_else(|| {
                StartError::path(
                    opt,
                    "find program",
                    prog.as_str(),
                    io::Error::from_raw_os_error(libc::ENOENT),
                )
            })?
        };
        let meta =
            std::fs::metadata(&path).map_err(|e| StartError::path(opt, "execute", &path, e))?;
        if !meta.is_file() || !crate::os::process::executable(&path) {
            return Err(StartError::path(
                opt,
                "execute",
                &path,
                io::Error::from_raw_os_error(libc::EACCES),
            ));
        }
        h.argv[0] = path.to_string_lossy().into_owned();
    }
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
