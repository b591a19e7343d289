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

/// A getopts failure in the words of ipprotcat and ipprotreport: the
/// option as the user typed it (`-x`, `--json`), then what is wrong.
pub fn getopts_message(f: getopts::Fail) -> String {
    let dashed = |name: &str| {
        if name.chars().count() == 1 {
            format!("-{name}")
        } else {
            format!("--{name}")
        }
    };
    match f {
        getopts::Fail::ArgumentMissing(o) => format!("{} needs a value", dashed(&o)),
        getopts::Fail::UnrecognizedOption(o) => format!("unknown option {}", dashed(&o)),
        getopts::Fail::OptionMissing(o) => format!("{} is required", dashed(&o)),
        getopts::Fail::OptionDuplicated(o) => format!("{} given more than once", dashed(&o)),
        getopts::Fail::UnexpectedArgument(o) => format!("{} takes no value", dashed(&o)),
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
