//! Command line of `ipprotcat`: argv in, [`Options`] (or help, version, or
//! a usage error) out. Pure: no I/O; `main` prints and exits. Validation
//! lives here so that everything after it can trust the options.

use std::net::IpAddr;

use crate::error::getopts_message;

use crate::record::block::Dir;

/// The usage line; byte-identical to the SYNOPSIS of `ipprotcat(1)`.
pub const USAGE: &str = "usage: ipprotcat [-x | --json | --raw | --summary | --pcap pcap_file --server-port port [--server-ip ip] | --statements [--json] [--no-redact]] [--direction in|out] [-? | -v] file ...
       ipprotcat --verify [--archive dir] connection_log ...";

/// `-?`/`--help`: the usage line and one line per option.
pub const HELP: &str = "\
Print ipprotd data logs (plain, gzip or bzip2; '-' is standard input).

  -x                    payloads as a hexdump
  --json                one JSON object per block
  --raw                 payload bytes only, exactly as recorded
  --summary             blocks and bytes per direction, first and last time
  --pcap pcap_file      write a pcap capture ('-': standard output)
  --server-port port    server port in the capture (needed with --pcap)
  --server-ip ip        server address in the capture (192.0.2.1, 2001:db8::1)
  --statements          one line per SQL statement and the server's answer
                        (with --json: one JSON object per statement)
  --no-redact           with --statements: show password literals as sent
  --verify              the files are connection logs: check every data log
                        an entry names against its sha256 (OK, MISMATCH, MISSING)
  --archive dir         with --verify: look moved files up under dir by name
  --direction in|out    only data from (in) or to (out) the client
  -?, --help            this help
  -v, --version         the version
";

/// What the output is made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    Text,
    Hex,
    Json,
    Raw,
    Summary,
    Pcap(PcapOptions),
    /// `--statements [--json] [--no-redact]`.
    Statements {
        json: bool,
        redact: bool,
    },
    /// `--verify`: the files are connection logs; `--archive DIR`.
    Verify {
        archive: Option<String>,
    },
}

/// `--pcap FILE --server-port N [--server-ip IP]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcapOptions {
    /// Output path; `-` is standard output.
    pub path: String,
    pub server_port: u16,
    pub server_ip: Option<IpAddr>,
}

/// A validated command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub mode: Mode,
    /// `--direction`: only blocks of this direction.
    pub direction: Option<Dir>,
    /// Input paths, at least one; `-` is standard input.
    pub files: Vec<String>,
}

/// The outcome of parsing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    Run(Options),
    Help,
    Version,
}

/// A usage error: the message, without `ipprotcat: ` (exit status 2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

/// The options that choose the output, in the order they are checked.
const MODES: [(&str, &str); 6] = [
    ("x", "-x"),
    ("json", "--json"),
    ("raw", "--raw"),
    ("summary", "--summary"),
    ("pcap", "--pcap"),
    ("verify", "--verify"),
];

fn spec() -> getopts::Options {
    let mut o = getopts::Options::new();
    o.optflag("x", "", "")
        .optflag("", "json", "")
        .optflag("", "raw", "")
        .optflag("", "summary", "")
        .optopt("", "pcap", "", "")
        .optopt("", "server-port", "", "")
        .optopt("", "server-ip", "", "")
        .optopt("", "direction", "", "")
        .optflag("", "statements", "")
        .optflag("", "no-redact", "")
        .optflag("", "verify", "")
        .optopt("", "archive", "", "")
        .optflag("?", "help", "")
        .optflag("v", "version", "");
    o
}

/// `q` -> `-q`, `json` -> `--json`.
/// Parse the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Parsed, UsageError> {
    let m = spec()
        .parse(args)
        .map_err(|f| UsageError(getopts_message(f)))?;
    if m.opt_present("help") {
        return Ok(Parsed::Help);
    }
    if m.opt_present("version") {
        return Ok(Parsed::Version);
    }

    // with --statements, --json chooses the form of the records
    let statements = m.opt_present("statements");
    let chosen: Vec<&str> = MODES
        .iter()
        .filter(|(name, _)| m.opt_present(name) && !(statements && *name == "json"))
        .map(|&(_, shown)| shown)
        .collect();
    if let (true, Some(other)) = (statements, chosen.first()) {
        return Err(UsageError(format!(
            "--statements and {other} cannot be used together"
        )));
    }
    if m.opt_present("no-redact") && !statements {
        return Err(UsageError("--no-redact needs --statements".into()));
    }
    if let [a, b, ..] = chosen[..] {
        return Err(UsageError(format!("{a} and {b} cannot be used together")));
    }
    for opt in ["server-port", "server-ip"] {
        if m.opt_present(opt) && !m.opt_present("pcap") {
            return Err(UsageError(format!("--{opt} needs --pcap")));
        }
    }
    if m.opt_present("archive") && !m.opt_present("verify") {
        return Err(UsageError("--archive needs --verify".into()));
    }

    let mode = match chosen.first().copied() {
        None if statements => Mode::Statements {
            json: m.opt_present("json"),
            redact: !m.opt_present("no-redact"),
        },
        None => Mode::Text,
        Some("-x") => Mode::Hex,
        Some("--json") => Mode::Json,
        Some("--raw") => Mode::Raw,
        Some("--summary") => Mode::Summary,
        Some("--verify") => Mode::Verify {
            archive: m.opt_str("archive"),
        },
        Some(_) => {
            let path = m.opt_str("pcap").unwrap_or_default();
            if path.is_empty() {
                return Err(UsageError("--pcap needs a file name".into()));
            }
            let Some(port) = m.opt_str("server-port") else {
                return Err(UsageError("--pcap needs --server-port".into()));
            };
            let server_port = match port.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => {
                    return Err(UsageError(format!(
                        "--server-port: '{port}' is not a port (1-65535)"
                    )));
                }
            };
            let server_ip = match m.opt_str("server-ip") {
                None => None,
                Some(ip) => Some(ip.parse::<IpAddr>().map_err(|_| {
                    UsageError(format!("--server-ip: '{ip}' is not an IP address"))
                })?),
            };
            Mode::Pcap(PcapOptions {
                path,
                server_port,
                server_ip,
            })
        }
    };

    let direction = match m.opt_str("direction").as_deref() {
        None => None,
        Some("in") => Some(Dir::FromClient),
        Some("out") => Some(Dir::ToClient),
        Some(other) => {
            return Err(UsageError(format!(
                "--direction: '{other}' is neither in nor out"
            )));
        }
    };
    if direction.is_some() && mode == Mode::Summary {
        return Err(UsageError(
            "--direction cannot be used with --summary".into(),
        ));
    }
    if direction.is_some() && matches!(mode, Mode::Verify { .. }) {
        return Err(UsageError(
            "--direction cannot be used with --verify".into(),
        ));
    }
    if direction.is_some() && statements {
        return Err(UsageError(
            "--direction cannot be used with --statements (it needs both directions)".into(),
        ));
    }

    if m.free.is_empty() {
        return Err(UsageError(
            "no file given ('-' reads standard input)".into(),
        ));
    }
    Ok(Parsed::Run(Options {
        mode,
        direction,
        files: m.free,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Parsed, UsageError> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    fn err(args: &[&str]) -> String {
        match p(args) {
            Err(UsageError(m)) => m,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_and_modes() {
        assert_eq!(
            p(&["f"]),
            Ok(Parsed::Run(Options {
                mode: Mode::Text,
                direction: None,
                files: vec!["f".into()],
            }))
        );
        assert_eq!(
            p(&["a", "-x", "--direction", "out", "-"]),
            Ok(Parsed::Run(Options {
                mode: Mode::Hex,
                direction: Some(Dir::ToClient),
                files: vec!["a".into(), "-".into()],
            }))
        );
        assert_eq!(
            p(&[
                "--pcap",
                "o.pcap",
                "--server-port",
                "1521",
                "--server-ip",
                "::1",
                "f"
            ]),
            Ok(Parsed::Run(Options {
                mode: Mode::Pcap(PcapOptions {
                    path: "o.pcap".into(),
                    server_port: 1521,
                    server_ip: Some("::1".parse().expect("literal")),
                }),
                direction: None,
                files: vec!["f".into()],
            }))
        );
        assert_eq!(p(&["-?"]), Ok(Parsed::Help));
        assert_eq!(p(&["--help", "f"]), Ok(Parsed::Help));
        assert_eq!(p(&["-v"]), Ok(Parsed::Version));
        assert_eq!(p(&["--version"]), Ok(Parsed::Version));
    }

    #[test]
    fn usage_errors() {
        assert_eq!(err(&[]), "no file given ('-' reads standard input)");
        assert_eq!(err(&["-q", "f"]), "unknown option -q");
        assert_eq!(err(&["--jsno", "f"]), "unknown option --jsno");
        assert_eq!(
            err(&["-x", "--json", "f"]),
            "-x and --json cannot be used together"
        );
        assert_eq!(
            err(&["--raw", "--summary", "f"]),
            "--raw and --summary cannot be used together"
        );
        assert_eq!(err(&["--pcap", "o", "f"]), "--pcap needs --server-port");
        assert_eq!(
            err(&["--server-port", "80", "f"]),
            "--server-port needs --pcap"
        );
        assert_eq!(
            err(&["--server-ip", "::1", "f"]),
            "--server-ip needs --pcap"
        );
        assert_eq!(
            err(&["--pcap", "o", "--server-port", "0", "f"]),
            "--server-port: '0' is not a port (1-65535)"
        );
        assert_eq!(
            err(&["--pcap", "o", "--server-port", "1", "--server-ip", "h", "f"]),
            "--server-ip: 'h' is not an IP address"
        );
        assert_eq!(
            err(&["--direction", "up", "f"]),
            "--direction: 'up' is neither in nor out"
        );
        assert_eq!(
            err(&["--summary", "--direction", "in", "f"]),
            "--direction cannot be used with --summary"
        );
        assert_eq!(err(&["f", "--pcap"]), "--pcap needs a value");
        assert_eq!(err(&["--archive", "d", "f"]), "--archive needs --verify");
        assert_eq!(
            err(&["--verify", "--direction", "in", "f"]),
            "--direction cannot be used with --verify"
        );
        assert_eq!(
            err(&["--verify", "--json", "f"]),
            "--json and --verify cannot be used together"
        );
        assert_eq!(
            p(&["--verify", "--archive", "/a", "c.log"]),
            Ok(Parsed::Run(Options {
                mode: Mode::Verify {
                    archive: Some("/a".into())
                },
                direction: None,
                files: vec!["c.log".into()],
            }))
        );
        assert_eq!(
            err(&["--json", "--json", "f"]),
            "--json given more than once"
        );
    }

    #[test]
    fn statements() {
        let mode = |args: &[&str]| match p(args) {
            Ok(Parsed::Run(o)) => o.mode,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            mode(&["--statements", "f"]),
            Mode::Statements {
                json: false,
                redact: true
            }
        );
        assert_eq!(
            mode(&["--statements", "--json", "--no-redact", "f"]),
            Mode::Statements {
                json: true,
                redact: false
            }
        );
        assert_eq!(err(&["--no-redact", "f"]), "--no-redact needs --statements");
        assert_eq!(
            err(&["--statements", "-x", "f"]),
            "--statements and -x cannot be used together"
        );
        assert_eq!(
            err(&["--statements", "--direction", "in", "f"]),
            "--direction cannot be used with --statements (it needs both directions)"
        );
    }
}
