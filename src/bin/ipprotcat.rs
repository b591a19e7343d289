//! `ipprotcat`: print ipprotd data logs. Parses the command line, then
//! hands over to `ipprotd::cat::run`; the only place that exits. Exit
//! status: 0 ok, 1 a file could not be opened or read to its end, 2 usage.

use std::io::Write;
use std::process::ExitCode;

use ipprotd::cat::{self, cli};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args: Result<Vec<String>, _> = std::env::args_os()
        .skip(1)
        .map(|a| a.into_string())
        .collect();
    let parsed = match args {
        Ok(args) => cli::parse(&args),
        Err(bad) => Err(cli::UsageError(format!(
            "not valid UTF-8: {}",
            bad.to_string_lossy()
        ))),
    };
    match parsed {
        Ok(cli::Parsed::Run(opts)) => ExitCode::from(cat::run(&opts)),
        Ok(cli::Parsed::Help) => print(&format!("{}\n\n{}", cli::USAGE, cli::HELP)),
        Ok(cli::Parsed::Version) => print(&format!("ipprotcat {}\n", env!("CARGO_PKG_VERSION"))),
        Err(cli::UsageError(msg)) => {
            cat::warn(&msg);
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
            cat::warn(&format!("stdout: cannot write: {e}"));
            ExitCode::from(1)
        }
        _ => ExitCode::SUCCESS,
    }
}
