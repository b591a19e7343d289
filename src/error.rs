//! Errors shown to the user. `Display` is the whole line after the
//! `ipprotd: ` prefix: the option or path concerned, then the OS error.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A usage error (exit status 2): bad option, value or combination.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An error at start (exit status 1), before the daemon detaches.
#[derive(Debug)]
pub enum StartError {
    /// `OPTION: cannot VERB PATH: CAUSE`.
    Path {
        option: &'static str,
        verb: &'static str,
        path: PathBuf,
        cause: io::Error,
    },
    /// Anything else, already a whole sentence.
    Other(String),
}

impl StartError {
    pub fn path(
        option: &'static str,
        verb: &'static str,
        path: impl Into<PathBuf>,
        cause: io::Error,
    ) -> StartError {
        StartError::Path {
            option,
            verb,
            path: path.into(),
            cause,
        }
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Path {
                option,
                verb,
                path,
                cause,
            } => write!(f, "{option}: cannot {verb} {}: {cause}", path.display()),
            StartError::Other(s) => f.write_str(s),
        }
    }
}
