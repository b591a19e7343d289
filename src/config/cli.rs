//! The command line: a pre-scan turns the single tokens `-Dp` and `-uT`
//! into internal long options, getopts does the rest, then every value and
//! combination is checked. Produces a [`Config`]; no I/O.

use std::path::PathBuf;
use std::time::Duration;

use getopts::{Matches, Options, ParsingStyle};

use crate::config::acl::{Acl, Rule};
use crate::config::addr::{self, parse_dests, parse_port, split_port_host};
use crate::config::{Compress, Config, Daemon, DataLog, Hook, Record, Tls, TlsUpstream};
use crate::error::UsageError;
use crate::log::template::{DEFAULT_FORMAT, Template};

/// The usage line; identical to the man page SYNOPSIS.
pub const USAGE: &str = "usage: ipprotd [-p inport[@listen_host]] [-h out_host] [-P out_port[@out_host][,out_port[@out_host]...]]
        [-b buffsize] [-f data_log_file] [-l|-L] [-s] [-z|-j] [-t secs] [-M]
        [-u cmd | -uT cmd] [-c connection_log_file] [-C connection_log_format]
        [-r client_ip ...] [-D | -Dp pid_file] [-? | -v]
        [--max-connections N] [--connect-timeout secs] [--idle-timeout secs]
        [--user name] [--syslog] [--syslog-socket path] [--open-format format] [--verbose]
        [--compress-level N] [--statement-log file] [--no-redact]
        [--tls-cert file --tls-key file [--tls-ca file] [--tls-upstream verify|insecure|plain-ok|plain]]";

pub const DEFAULT_PORT: u16 = 8080;
pub const DEFAULT_HOST: &str = "localhost";
pub const DEFAULT_DEST_PORT: &str = "80";
pub const DEFAULT_BUFSIZE: usize = 300_000;
pub const MAX_BUFSIZE: usize = 67_108_864;
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// `--compress-level` range (gzip and bzip2 both take 1 to 9).
pub const MIN_COMPRESS_LEVEL: u32 = 1;
pub const MAX_COMPRESS_LEVEL: u32 = 9;

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    Run(Box<Config>),
    Help,
    Version,
}

/// Internal names of the single tokens `-Dp` and `-uT`.
const DP: &str = "Dp";
const UT: &str = "uT";

/// Short options that take a value (their value is never rewritten).
const SHORT_WITH_VALUE: &[&str] = &["-p", "-h", "-P", "-b", "-f", "-t", "-u", "-c", "-C", "-r"];
const LONG_WITH_VALUE: &[&str] = &[
    "--max-connections",
    "--connect-timeout",
    "--idle-timeout",
    "--user",
    "--open-format",
    "--statement-log",
    "--syslog-socket",
    "--compress-level",
    "--tls-cert",
    "--tls-key",
    "--tls-ca",
    "--tls-upstream",
];

fn prescan(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--" => {
                out.push(a.clone());
                out.extend(it.by_ref().cloned());
            }
            "-Dp" => out.push(format!("--{DP}")),
            "-uT" => out.push(format!("--{UT}")),
            s if SHORT_WITH_VALUE.contains(&s) || LONG_WITH_VALUE.contains(&s) => {
                out.push(a.clone());
                if let Some(v) = it.next() {
                    out.push(v.clone());
                }
            }
            _ => out.push(a.clone()),
        }
    }
    out
}

fn options() -> Options {
    let mut o = Options::new();
    o.parsing_style(ParsingStyle::FloatingFrees);
    o.optopt("p", "", "", "inport[@listen_host]");
    o.optopt("h", "", "", "out_host");
    o.optopt("P", "", "", "out_port[@out_host]");
    o.optopt("b", "", "", "buffsize");
    o.optopt("f", "", "", "data_log_file");
    o.optflag("l", "", "");
    o.optflag("L", "", "");
    o.optflag("s", "", "");
    o.optflag("z", "", "");
    o.optflag("j", "", "");
    o.optopt("t", "", "", "secs");
    o.optflag("M", "", "");
    o.optopt("u", "", "", "cmd");
    o.optopt("", UT, "", "cmd");
    o.optopt("c", "", "", "file");
    o.optopt("C", "", "", "format");
    o.optmulti("r", "", "", "client_ip");
    o.optflag("D", "", "");
    o.optopt("", DP, "", "pid_file");
    o.optflag("?", "help", "");
    o.optflag("v", "version", "");
    o.optopt("", "max-connections", "", "N");
    o.optopt("", "connect-timeout", "", "secs");
    o.optopt("", "idle-timeout", "", "secs");
    o.optopt("", "user", "", "name");
    o.optflag("", "syslog", "");
    o.optopt("", "syslog-socket", "", "path");
    o.optopt("", "open-format", "", "format");
    o.optflag("", "verbose", "");
    o.optopt("", "statement-log", "", "file");
    o.optflag("", "no-redact", "");
    o.optopt("", "compress-level", "", "N");
    o.optopt("", "tls-cert", "", "file");
    o.optopt("", "tls-key", "", "file");
    o.optopt("", "tls-ca", "", "file");
    o.optopt("", "tls-upstream", "", "mode");
    o
}

fn err<T>(s: impl Into<String>) -> Result<T, UsageError> {
    Err(UsageError(s.into()))
}

/// Name of an option as the user wrote it.
fn shown(name: &str) -> String {
    match name {
        DP => "-Dp".into(),
        UT => "-uT".into(),
        n if n.len() == 1 => format!("-{n}"),
        n => format!("--{n}"),
    }
}

fn once(m: &Matches, name: &str) -> Result<Option<String>, UsageError> {
    let v = m.opt_strs(name);
    if v.len() > 1 {
        return err(format!("{} given more than once", shown(name)));
    }
    Ok(v.into_iter().next())
}

fn number(m: &Matches, name: &str, max: u64) -> Result<Option<u64>, UsageError> {
    let Some(s) = once(m, name)? else {
        return Ok(None);
    };
    match s.parse::<u64>() {
        Ok(n) if n <= max && s.bytes().all(|b| b.is_ascii_digit()) => Ok(Some(n)),
        _ => err(format!(
            "{}: invalid value '{s}' (must be an integer from 0 to {max})",
            shown(name)
        )),
    }
}

/// Parse the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, UsageError> {
    let args = prescan(args);
    let m = match options().parse(&args) {
        Ok(m) => m,
        Err(e) => {
            use getopts::Fail;
            return err(match e {
                Fail::ArgumentMissing(o) => format!("{} needs a value", shown(&o)),
                Fail::UnrecognizedOption(o) => format!("unknown option {}", shown(&o)),
                Fail::OptionDuplicated(o) => format!("{} given more than once", shown(&o)),
                other => other.to_string(),
            });
        }
    };
    if m.opt_present("?") {
        return Ok(Command::Help);
    }
    if m.opt_present("v") {
        return Ok(Command::Version);
    }

    // -r client_ip ...: further addresses may follow one -r
    let mut rule_texts = m.opt_strs("r");
    if !m.free.is_empty() {
        if rule_texts.is_empty() {
            return err(format!("unexpected argument '{}'", m.free[0]));
        }
        rule_texts.extend(m.free.iter().cloned());
    }
    let mut rules = Vec::new();
    for r in &rule_texts {
        match Rule::parse(r) {
            Some(rule) => rules.push(rule),
            None => {
                return err(format!(
                    "-r: invalid client address '{r}' (an IP address or CIDR, no host names)"
                ));
            }
        }
    }

    // -p inport[@listen_host]
    let (listen_port, listen_host) = match once(&m, "p")? {
        None => (DEFAULT_PORT, None),
        Some(s) => {
            let (p, h) = split_port_host(&s);
            let port = parse_port(p, 0).ok_or_else(|| {
                UsageError(format!("-p: invalid port '{p}' (must be 0 to 65535)"))
            })?;
            if h == Some("") {
                return err(format!("-p: empty listen host in '{s}'"));
            }
            (port, h.map(|h| addr::unbracket(h).to_string()))
        }
    };

    let out_host = once(&m, "h")?.unwrap_or_else(|| DEFAULT_HOST.to_string());
    if out_host.is_empty() {
        return err("-h: empty host");
    }
    let dests_text = once(&m, "P")?.unwrap_or_else(|| DEFAULT_DEST_PORT.to_string());
    let dests = parse_dests(&dests_text, addr::unbracket(&out_host))
        .map_err(|e| UsageError(format!("-P: {e}")))?;

    let bufsize = match once(&m, "b")? {
        None => DEFAULT_BUFSIZE,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_BUFSIZE).contains(&n) => n,
            _ => {
                return err(format!(
                    "-b: invalid buffer size '{s}' (must be 1 to {MAX_BUFSIZE})"
                ));
            }
        },
    };

    // options that only make sense with -f
    let datalog_file = once(&m, "f")?;
    let hook_epoch = once(&m, "u")?;
    let hook_text = once(&m, UT)?;
    if datalog_file.is_none() {
        for name in ["s", "z", "j", "t", "M", "l", "L", "u", UT] {
            if m.opt_present(name) {
                return err(format!("{} needs -f", shown(name)));
            }
        }
    }
    for (a, b) in [("z", "j"), ("l", "L"), ("D", DP), ("u", UT)] {
        if m.opt_present(a) && m.opt_present(b) {
            return err(format!("cannot use {} and {} together", shown(a), shown(b)));
        }
    }

    let compress_level = match once(&m, "compress-level")? {
        None => None,
        Some(_) if !m.opt_present("z") && !m.opt_present("j") => {
            return err("--compress-level needs -z or -j");
        }
        Some(s) => match s.parse::<u32>() {
            Ok(n)
                if (MIN_COMPRESS_LEVEL..=MAX_COMPRESS_LEVEL).contains(&n)
                    && s.bytes().all(|b| b.is_ascii_digit()) =>
            {
                Some(n)
            }
            _ => {
                return err(format!(
                    "--compress-level: invalid level '{s}' (must be {MIN_COMPRESS_LEVEL} to {MAX_COMPRESS_LEVEL})"
                ));
            }
        },
    };
    let stamp_every = number(&m, "t", u64::from(u32::MAX))?.map(Duration::from_secs);
    let datalog = match datalog_file {
        None => None,
        Some(f) if f.is_empty() => return err("-f: empty data log file prefix"),
        Some(f) => Some(DataLog {
            prefix: PathBuf::from(f),
            record: if m.opt_present("L") {
                Record::Both
            } else if m.opt_present("l") {
                Record::FromClient
            } else {
                Record::ToClient
            },
            printable: m.opt_present("s"),
            compress: if m.opt_present("z") {
                Compress::Gzip
            } else if m.opt_present("j") {
                Compress::Bzip2
            } else {
                Compress::None
            },
            compress_level,
            stamp_every,
            markers: m.opt_present("M"),
        }),
    };

    let hook = match (hook_epoch, hook_text) {
        (Some(c), None) => Some((c, false, "-u")),
        (None, Some(c)) => Some((c, true, "-uT")),
        _ => None,
    };
    let hook = match hook {
        None => None,
        Some((cmd, text_times, opt)) => {
            let argv: Vec<String> = cmd
                .split([' ', '\t'])
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            if argv.is_empty() {
                return err(format!("{opt}: empty command"));
            }
            Some(Hook { argv, text_times })
        }
    };

    let connlog = once(&m, "c")?.map(PathBuf::from);
    let syslog = m.opt_present("syslog");
    let fmt_text = once(&m, "C")?;
    let open_text = once(&m, "open-format")?;
    if connlog.is_none() && !syslog {
        if fmt_text.is_some() {
            return err("-C needs -c or --syslog");
        }
        if open_text.is_some() {
            return err("--open-format needs -c or --syslog");
        }
    }
    let format = Template::parse(fmt_text.as_deref().unwrap_or(DEFAULT_FORMAT))
        .map_err(|e| UsageError(format!("-C: {e}")))?;
    let open_format = match open_text {
        None => None,
        Some(t) => {
            Some(Template::parse(&t).map_err(|e| UsageError(format!("--open-format: {e}")))?)
        }
    };

    let daemon = if m.opt_present("D") {
        Some(Daemon { pid_file: None })
    } else {
        match once(&m, DP)? {
            Some(p) if p.is_empty() => return err("-Dp: empty pid file name"),
            Some(p) => Some(Daemon {
                pid_file: Some(PathBuf::from(p)),
            }),
            None => None,
        }
    };

    let max_connections = number(&m, "max-connections", u64::from(u32::MAX))?
        .map(|n| n as usize)
        .unwrap_or(DEFAULT_MAX_CONNECTIONS);
    let connect_timeout = number(&m, "connect-timeout", u64::from(u32::MAX))?
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    let idle_timeout = number(&m, "idle-timeout", u64::from(u32::MAX))?
        .filter(|n| *n > 0)
        .map(Duration::from_secs);
    let user = once(&m, "user")?;
    if user.as_deref() == Some("") {
        return err("--user: empty user name");
    }
    let syslog_socket = match once(&m, "syslog-socket")? {
        None => None,
        Some(p) if p.is_empty() => return err("--syslog-socket: empty path"),
        Some(_) if !syslog && daemon.is_none() => {
            return err("--syslog-socket needs --syslog, -D or -Dp");
        }
        Some(p) => Some(PathBuf::from(p)),
    };

    let statement_log = once(&m, "statement-log")?.map(PathBuf::from);
    if statement_log
        .as_ref()
        .is_some_and(|p| p.as_os_str().is_empty())
    {
        return err("--statement-log: empty file name");
    }
    if m.opt_present("no-redact") && statement_log.is_none() {
        return err("--no-redact needs --statement-log");
    }

    let tls = tls_options(&m)?;

    Ok(Command::Run(Box::new(Config {
        listen_port,
        listen_host,
        dests,
        bufsize,
        datalog,
        hook,
        connlog,
        format,
        open_format,
        allow: Acl::new(rules),
        daemon,
        max_connections,
        connect_timeout,
        idle_timeout,
        user,
        syslog,
        syslog_socket,
        verbose: m.opt_present("verbose"),
        statement_log,
        redact: !m.opt_present("no-redact"),
        tls,
    })))
}

/// `--tls-cert`, `--tls-key`, `--tls-ca`, `--tls-upstream`: the pair or
/// nothing, the others only with it.
fn tls_options(m: &Matches) -> Result<Option<Tls>, UsageError> {
    let path = |name: &str| -> Result<Option<PathBuf>, UsageError> {
        match once(m, name)? {
            Some(p) if p.is_empty() => err(format!("--{name}: empty file name")),
            p => Ok(p.map(PathBuf::from)),
        }
    };
    let cert = path("tls-cert")?;
    let key = path("tls-key")?;
    let ca = path("tls-ca")?;
    let upstream = match once(m, "tls-upstream")? {
        None => None,
        Some(s) => Some(TlsUpstream::parse(&s).ok_or_else(|| {
            UsageError(format!(
                "--tls-upstream: invalid value '{s}' (must be verify, insecure, plain-ok or plain)"
            ))
        })?),
    };
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(Tls {
            cert,
            key,
            ca,
            upstream: upstream.unwrap_or(TlsUpstream::Verify),
        })),
        (Some(_), None) => err("--tls-cert needs --tls-key"),
        (None, Some(_)) => err("--tls-key needs --tls-cert"),
        (None, None) if ca.is_some() => err("--tls-ca needs --tls-cert"),
        (None, None) if upstream.is_some() => err("--tls-upstream needs --tls-cert"),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(a: &[&str]) -> Result<Config, String> {
        let v: Vec<String> = a.iter().map(|s| s.to_string()).collect();
        match parse(&v) {
            Ok(Command::Run(c)) => Ok(*c),
            Ok(_) => Err("not run".into()),
            Err(e) => Err(e.0),
        }
    }

    #[test]
    fn typical() {
        let c = run(&[
            "-p",
            "1726",
            "-P",
            "1726@licsrv",
            "-c",
            "conn.log",
            "-Dp",
            "pidfile",
        ])
        .unwrap();
        assert_eq!(c.listen_port, 1726);
        assert_eq!(c.dests[0].host, "licsrv");
        assert_eq!(
            c.daemon.unwrap().pid_file.unwrap(),
            PathBuf::from("pidfile")
        );
        assert_eq!(c.bufsize, DEFAULT_BUFSIZE);
    }

    /// The data log is hashed only where the digest shows: a hook, or
    /// entries (to -c or syslog) with `%{sha256}` or in JSON.
    #[test]
    fn sha256_only_where_it_shows() {
        let base = ["-p", "1", "-P", "2@h", "-L", "-f", "prot"];
        let shows = |extra: &[&str]| {
            let mut a = base.to_vec();
            a.extend_from_slice(extra);
            run(&a).unwrap().shows_sha256()
        };
        assert!(!shows(&[]));
        assert!(!shows(&["-c", "conn.log"]));
        assert!(shows(&["-c", "conn.log", "-C", "%f %{sha256}"]));
        assert!(shows(&["-c", "conn.log", "-C", "json"]));
        assert!(shows(&["--syslog", "-C", "json"]));
        assert!(!shows(&["--syslog"]));
        assert!(shows(&["-u", "/bin/true"]));
    }

    #[test]
    fn audit() {
        let c = run(&[
            "-p",
            "7777",
            "-P",
            "1521@db",
            "-L",
            "-s",
            "-f",
            "prot",
            "-j",
            "-uT",
            "/bin/hook a",
            "-t",
            "180",
            "-M",
        ])
        .unwrap();
        let d = c.datalog.unwrap();
        assert_eq!(d.record, Record::Both);
        assert_eq!(d.compress, Compress::Bzip2);
        assert_eq!(d.compress_level, None);
        assert!(d.printable && d.markers);
        assert_eq!(d.stamp_every, Some(Duration::from_secs(180)));
        let h = c.hook.unwrap();
        assert_eq!(h.argv, vec!["/bin/hook", "a"]);
        assert!(h.text_times);
    }

    #[test]
    fn compress_level() {
        for (opt, level) in [("-z", 1), ("-j", 9)] {
            let text = level.to_string();
            let c = run(&["-f", "p", opt, "--compress-level", &text]).unwrap();
            assert_eq!(c.datalog.unwrap().compress_level, Some(level));
        }
        assert_eq!(
            run(&["-f", "p", "-z", "--compress-level", "0"]).unwrap_err(),
            "--compress-level: invalid level '0' (must be 1 to 9)"
        );
    }

    #[test]
    fn errors() {
        assert_eq!(run(&["-s"]).unwrap_err(), "-s needs -f");
        assert_eq!(run(&["-uT", "x"]).unwrap_err(), "-uT needs -f");
        assert_eq!(
            run(&["-f", "a", "-z", "-j"]).unwrap_err(),
            "cannot use -z and -j together"
        );
        assert_eq!(
            run(&["-D", "-Dp", "x"]).unwrap_err(),
            "cannot use -D and -Dp together"
        );
        assert_eq!(run(&["-C", "%i"]).unwrap_err(), "-C needs -c or --syslog");
        assert_eq!(
            run(&["--syslog-socket", "/run/s"]).unwrap_err(),
            "--syslog-socket needs --syslog, -D or -Dp"
        );
        assert_eq!(
            run(&["--syslog", "--syslog-socket", ""]).unwrap_err(),
            "--syslog-socket: empty path"
        );
        assert_eq!(
            run(&["-D", "--syslog-socket", "s"]).unwrap().syslog_socket,
            Some(PathBuf::from("s"))
        );
        assert_eq!(
            run(&["-c", "l", "-C", "%i%Q"]).unwrap_err(),
            "-C: unknown escape '%Q' at column 3"
        );
        assert_eq!(
            run(&["-p", "65536"]).unwrap_err(),
            "-p: invalid port '65536' (must be 0 to 65535)"
        );
        assert_eq!(
            run(&["-P", "0"]).unwrap_err(),
            "-P: invalid port '0' (must be 1 to 65535)"
        );
        assert_eq!(
            run(&["-b", "0"]).unwrap_err(),
            "-b: invalid buffer size '0' (must be 1 to 67108864)"
        );
        assert_eq!(
            run(&["-r", "host.example"]).unwrap_err(),
            "-r: invalid client address 'host.example' (an IP address or CIDR, no host names)"
        );
        assert_eq!(
            run(&["--idle-timeout", "-1"]).unwrap_err(),
            "--idle-timeout: invalid value '-1' (must be an integer from 0 to 4294967295)"
        );
        assert_eq!(run(&["stray"]).unwrap_err(), "unexpected argument 'stray'");
    }

    #[test]
    fn tls_options() {
        assert_eq!(run(&[]).unwrap().tls, None);
        let t = run(&["--tls-cert", "c.pem", "--tls-key", "k.pem"])
            .unwrap()
            .tls
            .unwrap();
        assert_eq!(
            (t.cert, t.key, t.ca, t.upstream),
            (
                PathBuf::from("c.pem"),
                PathBuf::from("k.pem"),
                None,
                TlsUpstream::Verify
            )
        );
        let t = run(&[
            "--tls-cert",
            "c",
            "--tls-key",
            "k",
            "--tls-ca",
            "ca",
            "--tls-upstream",
            "plain-ok",
        ])
        .unwrap()
        .tls
        .unwrap();
        assert_eq!(
            (t.ca, t.upstream),
            (Some(PathBuf::from("ca")), TlsUpstream::PlainOk)
        );
        for (args, msg) in [
            (&["--tls-cert", "c"][..], "--tls-cert needs --tls-key"),
            (&["--tls-key", "k"][..], "--tls-key needs --tls-cert"),
            (&["--tls-ca", "a"][..], "--tls-ca needs --tls-cert"),
            (
                &["--tls-upstream", "plain"][..],
                "--tls-upstream needs --tls-cert",
            ),
            (
                &[
                    "--tls-cert",
                    "c",
                    "--tls-key",
                    "k",
                    "--tls-upstream",
                    "none",
                ][..],
                "--tls-upstream: invalid value 'none' (must be verify, insecure, plain-ok or plain)",
            ),
            (
                &["--tls-cert", "", "--tls-key", "k"][..],
                "--tls-cert: empty file name",
            ),
        ] {
            assert_eq!(run(args).unwrap_err(), msg, "{args:?}");
        }
    }

    #[test]
    fn rules_after_r() {
        let c = run(&["-r", "10.0.0.1", "10.0.0.2", "-r", "fd00::/8"]).unwrap();
        assert!(c.allow.allows("10.0.0.2".parse().unwrap()));
        assert!(!c.allow.allows("10.0.0.3".parse().unwrap()));
    }
}
