//! The connection log: one entry per connection, appended with O_APPEND and
//! exactly one write(), so entries of many children never interleave and
//! logrotate may move the file at any time; optionally mirrored to syslog.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use crate::config::Config;
use crate::log::conninfo::ConnInfo;
use crate::log::template::Template;

/// Write the entry of `info` rendered by `template` (the close format, or
/// the open format) to the `-c` file and/or syslog, as `config` says.
/// Errors are reported, never fatal.
pub fn append(config: &Config, template: &Template, info: &ConnInfo) {
    if config.connlog.is_none() && !config.syslog {
        return;
    }
    let line = template.render(info);
    if let Some(path) = &config.connlog {
        let r = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o644)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
            .and_then(|mut f| {
                let n = f.write(line.as_bytes())?;
                if n < line.len() {
                    // a short write on a regular file: disk full
                    f.write_all(&line.as_bytes()[n..])?;
                }
                Ok(())
            });
        if let Err(e) = r {
            crate::log::error(&format!("-c: cannot append to {}: {e}", path.display()));
        }
    }
    if config.syslog {
        crate::os::syslog::syslog(libc::LOG_INFO, line.trim_end_matches('\n'));
    }
}
