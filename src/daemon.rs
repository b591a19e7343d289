//! Detaching (`-D`, `-Dp`) with the `daemonize` crate, and the `--user`
//! privilege drop. Paths were made absolute before: the daemon runs in `/`.

use nix::unistd::{Gid, Uid, User};

use crate::error::StartError;

/// Detach from the terminal: fork, setsid, chdir /, stdio to /dev/null.
/// Returns in the daemon only; the starting process exits 0.
pub fn detach() -> Result<(), StartError> {
    daemonize::Daemonize::new()
        .working_directory("/")
        .umask(0o022)
        .start()
        .map_err(|e| StartError::Other(format!("cannot detach: {e}")))
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

/// The ids of `user`, for chown.
pub fn ids(user: &User) -> (Uid, Gid) {
    (user.uid, user.gid)
}
