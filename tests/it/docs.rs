//! The documentation stays in step with the code: the usage line and the
//! man page SYNOPSIS name the same options in the same order, every option
//! has its entry in OPTIONS, and the README's test command is the one CI
//! runs.

use std::collections::BTreeSet;

const MAN: &str = include_str!("../../man/ipprotd.8");
const README: &str = include_str!("../../README.md");
const CI: &str = include_str!("../../.ci/run");

/// Options of the usage line, in order: `-p`, `-Dp`, `--max-connections`…
fn usage_options() -> Vec<String> {
    let mut v = Vec::new();
    for tok in ipprotd::config::cli::USAGE.split(|c: char| c.is_whitespace() || "[]|".contains(c)) {
        if tok.starts_with('-') && tok.len() > 1 && tok != "-" {
            v.push(tok.to_string());
        }
    }
    v
}

/// Options of one mdoc line: every word after `Fl`.
fn fl_words(line: &str) -> Vec<String> {
    let w: Vec<&str> = line.split_whitespace().collect();
    w.windows(2)
        .filter(|p| p[0] == "Fl")
        .map(|p| format!("-{}", p[1].replace("\\-", "-").replace("\\&", "")))
        .collect()
}

fn section<'a>(name: &str) -> &'a str {
    let start = MAN.find(&format!(".Sh {name}\n")).expect("section");
    let rest = &MAN[start + 1..];
    let end = rest.find("\n.Sh ").unwrap_or(rest.len());
    &MAN[start..start + 1 + end]
}

#[test]
fn synopsis_equals_usage() {
    let man: Vec<String> = section("SYNOPSIS").lines().flat_map(fl_words).collect();
    assert!(usage_options().len() >= 28, "{:?}", usage_options());
    assert_eq!(man, usage_options(), "man SYNOPSIS and cli::USAGE differ");
}

#[test]
fn every_option_has_an_entry() {
    let entries: BTreeSet<String> = section("OPTIONS")
        .lines()
        .filter(|l| l.starts_with(".It Fl"))
        .flat_map(fl_words)
        .collect();
    for o in usage_options() {
        assert!(entries.contains(&o), "no .It entry for {o} in OPTIONS");
    }
}

/// The first command of the first `sh` block after `after` in the README.
fn readme_command(after: &str) -> String {
    let from = README
        .find(after)
        .unwrap_or_else(|| panic!("README has no {after:?}"));
    let block = README[from..]
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .unwrap_or_else(|| panic!("no sh block after {after:?} in README"));
    block
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or_else(|| panic!("empty sh block after {after:?}"))
        .to_string()
}

#[test]
fn readme_test_command_is_what_ci_runs() {
    let cmd = readme_command("Run the tests:");
    assert_eq!(cmd, "cargo test", "README's test command");
    assert!(
        CI.lines().any(|l| l.trim() == cmd),
        ".ci/run must run the README's test command {cmd:?}"
    );
}

/// How long the README's first command may take, a release build included
/// (fat LTO on two busy cores).
const RUN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(900);

/// The README's first command, verbatim, in the repository as a fresh
/// clone has it: it builds, starts and listens (a TCP connection is
/// accepted); then ipprotd is stopped by its pid and `cargo run` ends 0.
#[test]
fn readme_first_command_runs_and_listens() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::time::Instant;

    let first = README
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.lines().next())
        .expect("README has an sh block");
    assert_eq!(
        first,
        readme_command("## Quick start"),
        "the quick start command is the README's first"
    );
    assert!(first.starts_with("cargo run "), "{first}");
    assert!(
        !first.contains(['"', '\'', '\\', '$']),
        "plain words only: {first}"
    );
    let words: Vec<&str> = first.split_whitespace().collect();
    let port: u16 = words
        .windows(2)
        .find(|w| w[0] == "-p")
        .and_then(|w| w[1].split('@').next()?.parse().ok())
        .expect("the run command has -p PORT");
    if std::net::TcpListener::bind(("0.0.0.0", port)).is_err() {
        eprintln!("note: port {port} is taken on this machine; README run command not tried");
        return;
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let conn_log = std::path::Path::new(root).join("conn.log");
    let had_log = conn_log.exists();

    let mut cargo = Command::new(words[0])
        .args(&words[1..])
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cargo");
    let cargo_pid = cargo.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    let err = cargo.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let end = Instant::now() + RUN_DEADLINE;
    let mut seen = Vec::new();
    let listening = loop {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l.contains("listening on ") => break Some(l),
            Ok(l) => seen.push(l),
            Err(_) => break None,
        }
    };
    // cargo execs ipprotd in its own process (or runs it as its child):
    // stop it by its pid
    let children = std::fs::read_to_string(format!("/proc/{cargo_pid}/task/{cargo_pid}/children"))
        .unwrap_or_default();
    let ipprotd = std::iter::once(cargo_pid)
        .chain(
            children
                .split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok()),
        )
        .find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "ipprotd")
        });
    let accepted = listening.is_some() && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
    match ipprotd {
        // SAFETY: a signal to the process this test started (via cargo).
        Some(p) => unsafe {
            libc::kill(p, libc::SIGTERM);
        },
        None => {
            let _ = cargo.kill();
        }
    }
    let status = cargo.wait().expect("cargo wait");
    if !had_log {
        let _ = std::fs::remove_file(&conn_log);
    }
    assert!(
        listening.is_some(),
        "`{first}` did not listen within {RUN_DEADLINE:?}: {}",
        seen.join("\n")
    );
    assert!(
        accepted,
        "`{first}` printed listening but refused a connection"
    );
    assert!(ipprotd.is_some(), "no ipprotd process from cargo");
    assert!(
        status.success(),
        "`{first}` ended with {status}: {}",
        seen.join("\n")
    );
}

// ---------------------------------------------------------------------
// ipprotreport(1)
// ---------------------------------------------------------------------

const REPORT_MAN: &str = include_str!("../../man/ipprotreport.1");

fn report_section<'a>(name: &str) -> &'a str {
    let start = REPORT_MAN.find(&format!(".Sh {name}\n")).expect("section");
    let rest = &REPORT_MAN[start + 1..];
    let end = rest.find("\n.Sh ").unwrap_or(rest.len());
    &REPORT_MAN[start..start + 1 + end]
}

/// Options of ipprotreport's usage line, in order.
fn report_usage_options() -> Vec<String> {
    ipprotd::report::cli::USAGE
        .split(|c: char| c.is_whitespace() || "[]|".contains(c))
        .filter(|t| t.starts_with('-') && t.len() > 1)
        .map(str::to_string)
        .collect()
}

#[test]
fn report_synopsis_equals_usage() {
    let man: Vec<String> = report_section("SYNOPSIS")
        .lines()
        .flat_map(fl_words)
        .collect();
    assert_eq!(
        report_usage_options().len(),
        10,
        "{:?}",
        report_usage_options()
    );
    assert_eq!(
        man,
        report_usage_options(),
        "ipprotreport(1) SYNOPSIS and cli::USAGE differ"
    );
    // the value words too: FILE, ZONE, TIME, the keys and formats
    let usage = ipprotd::report::cli::USAGE;
    for word in ["FILE", "ZONE", "TIME", "FORMAT", "CONNLOG"] {
        assert!(
            report_section("SYNOPSIS").contains(&format!("Ar {word}")),
            "{word}"
        );
        assert!(usage.contains(word), "{word}");
    }
    for cm in ["user", "feature", "text", "html"] {
        assert!(
            report_section("SYNOPSIS").contains(&format!("Cm {cm}")),
            "{cm}"
        );
    }
}

#[test]
fn report_every_option_has_an_entry() {
    let entries: BTreeSet<String> = report_section("OPTIONS")
        .lines()
        .filter(|l| l.starts_with(".It Fl"))
        .flat_map(fl_words)
        .collect();
    for o in report_usage_options() {
        assert!(
            entries.contains(&o),
            "no .It entry for {o} in ipprotreport(1) OPTIONS"
        );
    }
    // and --help names every option too
    for o in report_usage_options() {
        assert!(ipprotd::report::cli::HELP.contains(&o), "--help lacks {o}");
    }
}

#[test]
fn every_statement_record_kind_and_key_is_documented() {
    let audit = section("STATEMENT AUDIT");
    for (proto, kinds) in ipprotd::audit::KINDS {
        for k in *kinds {
            assert!(
                audit.contains(&format!(".Li {k}")),
                "kind {k:?} of {proto} is not in ipprotd.8, STATEMENT AUDIT"
            );
        }
    }
    // the keys of a record, from the writer itself
    let r = ipprotd::audit::Record::new("postgres", "query", 0);
    let line = ipprotd::audit::json_line(&r, &ipprotd::audit::Conn::default(), &|_| 0);
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let items: Vec<Vec<&str>> = audit
        .lines()
        .filter_map(|l| l.strip_prefix(".It Li "))
        .map(|l| l.split([' ', ',']).filter(|w| !w.is_empty()).collect())
        .collect();
    for key in v.as_object().unwrap().keys() {
        assert!(
            items.iter().any(|words| words.contains(&key.as_str())),
            "key {key:?} has no entry in ipprotd.8, STATEMENT AUDIT"
        );
    }
}
