//! `ipprotreport`: who used the service behind ipprotd. Parses the command
//! line, then hands over to `ipprotd::report::run`; the only place that
//! exits. Exit status: 0 ok (also with skipped lines), 1 an input or the
//! output could not be read or written, 2 usage.

use std::io::Write;
use std::process::ExitCode;

use ipprotd::os::time::{local_offset, tzset};
use ipprotd::report::{cli, run};

fn main() -> ExitCode {
    tzset();
    let args: Result<Vec<String>, _> = std::env::args_os()
        .skip(1)
        .map(|a| a.into_string())
        .collect();
    let parsed = match args {
        Ok(args) => cli::parse(&args, &local_offset),
        Err(bad) => Err(cli::UsageError(format!(
            "not valid UTF-8: {}",
            bad.to_string_lossy()
        ))),
    };
    match parsed {
        Ok(cli::Parsed::Run(opts)) => ExitCode::from(run::run(&opts, &local_offset)),
        Ok(cli::Parsed::Help) => print(&format!("{}\n\n{}", cli::USAGE, cli::HELP)),
        Ok(cli::Parsed::Version) => print(&format!("ipprotreport {}\n", env!("CARGO_PKG_VERSION"))),
        Err(cli::UsageError(msg)) => {
            run::warn(&msg);
            let _ = writeln!(std::io::stderr(), "{}", cli::USAGE);
            ExitCode::from(2)
        }
    }
}

/// Help and version go to standard output; a closed pipe is not an error.
fn print(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            run::warn(&format!("stdout: cannot write: {e}"));
            ExitCode::from(1)
        }
        _ => ExitCode::SUCCESS,
    }
}
