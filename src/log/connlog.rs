//! The connection log: one entry per connection, appended with O_APPEND and
//! exactly one write(), so entries of many children never interleave and
//! logrotate may move the file at any time; optionally mirrored to syslog.
//!
//! The file stays open between entries (children inherit it), and before
//! each entry its path is checked with one stat(): when the path names
//! another file (logrotate moved it) or none, the log is opened again (and
//! created, mode 0640 whatever the umask; an existing file keeps its mode).
//! So a flood of denied clients costs the parent one stat() and one write()
//! per entry, not an open(), a write() and a close().

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Mutex;

use crate::config::Config;
use crate::log::conninfo::ConnInfo;
use crate::log::template::Template;

/// Mode of a connection log ipprotd creates: it names users and addresses.
pub const CONNLOG_MODE: u32 = 0o640;

/// The open connection log and the file it is (device, inode).
struct Open {
    file: File,
    id: (u64, u64),
}

static OPEN: Mutex<Option<Open>> = Mutex::new(None);

fn open_log(path: &Path) -> io::Result<Open> {
    let mut o = OpenOptions::new();
    o.append(true).custom_flags(libc::O_CLOEXEC);
    // created by us: 0640 whatever the umask; an existing file keeps its mode
    let file = match o.clone().create_new(true).mode(CONNLOG_MODE).open(path) {
        Ok(f) => {
            f.set_permissions(std::fs::Permissions::from_mode(CONNLOG_MODE))?;
            f
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match o.open(path) {
            // removed in between: create it after all
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                o.create(true).mode(CONNLOG_MODE).open(path)?
            }
            r => r?,
        },
        Err(e) => return Err(e),
    };
    let m = file.metadata()?;
    Ok(Open {
        file,
        id: (m.dev(), m.ino()),
    })
}

/// Append `line` to the log at `path` with one write().
fn write_line(path: &Path, line: &[u8]) -> io::Result<()> {
    let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
    let current = std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
    if open.as_ref().is_none_or(|o| Some(o.id) != current) {
        *open = None;
        *open = Some(open_log(path)?);
    }
    let Some(o) = open.as_mut() else {
        return Err(io::ErrorKind::NotFound.into());
    };
    let n = o.file.write(line)?;
    if n < line.len() {
        // a short write on a regular file: disk full
        o.file.write_all(&line[n..])?;
    }
    Ok(())
}

/// Write the entry of `info` rendered by `template` (the close format, or
/// the open format) to the `-c` file and/or syslog, as `config` says.
/// Errors are reported, never fatal. In a child, a close entry (rendered
/// by `config.format`) marks its published slot: the parent writes no
/// `crashed` entry for it.
pub fn append(config: &Config, template: &Template, info: &ConnInfo) {
    if config.connlog.is_some() || config.syslog {
        let line = template.render(info);
        if let Some(path) = &config.connlog
            && let Err(e) = write_line(path, line.as_bytes())
        {
            crate::log::error(&format!("-c: cannot append to {}: {e}", path.display()));
        }
        if config.syslog {
            crate::os::syslog::syslog(libc::LOG_INFO, line.trim_end_matches('\n'));
        }
    }
    if std::ptr::eq(template, &config.format) {
        crate::log::published::entry_written();
    }
}
