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

#[test]
fn readme_test_command_is_what_ci_runs() {
    assert!(
        README.contains("\ncargo test\n"),
        "README must give `cargo test`"
    );
    assert!(
        CI.lines().any(|l| l.trim() == "cargo test"),
        ".ci/run must run `cargo test`"
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
