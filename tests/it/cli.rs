//! The command line of the real binary: every usage error exits 2 with
//! `ipprotd: <message>` and the usage line; help and version exit 0; every
//! start error exits 1 with one line naming the option, the path and the
//! OS error, and leaves neither a pid file nor a detached process.

use crate::harness::*;
use ipprotd::config::cli::USAGE;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `args` is a usage error with exactly `msg`.
fn usage_error(args: &[&str], msg: &str) {
    let out = run(args);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(err, format!("ipprotd: {msg}\n{USAGE}\n"), "{args:?}");
    assert!(
        out.stdout.is_empty(),
        "{args:?}: stdout {:?}",
        text(&out.stdout)
    );
}

/// Each `(args, msg)` is a [`usage_error`] (`args` split at spaces).
fn usage_errors(cases: &[(&str, &str)]) {
    for (args, msg) in cases {
        let args: Vec<&str> = args.split(' ').collect();
        usage_error(&args, msg);
    }
}

/// `args` is a usage error whose message starts with `prefix` (messages of
/// the option parser library).
fn usage_error_like(args: &[&str], needle: &str) {
    let out = run(args);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    let (first, rest) = err.split_once('\n').unwrap_or((&err, ""));
    assert!(first.starts_with("ipprotd: "), "{args:?}: {err}");
    assert!(first.contains(needle), "{args:?}: {err}");
    assert_eq!(rest, format!("{USAGE}\n"), "{args:?}");
}

/// A path whose directory does not exist: a start error that preflight
/// reports after the whole command line was accepted. Used to show that a
/// value is valid (exit 1, not 2) without starting a daemon.
const CANARY: &[&str] = &["-c", "/nonexistent-ipprotd-test-dir/conn.log"];

/// `args` passes the command-line checks (the start then fails on CANARY).
fn accepted(args: &[&str]) {
    let mut v = args.to_vec();
    v.extend_from_slice(CANARY);
    let out = run(&v);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{v:?}: {err}");
    assert!(
        err.starts_with("ipprotd: -c: ") && err.contains("/nonexistent-ipprotd-test-dir"),
        "{v:?}: {err}"
    );
}

#[test]
fn conflicting_options() {
    usage_errors(&[
        ("-f p -z -j", "cannot use -z and -j together"),
        ("-f p -l -L", "cannot use -l and -L together"),
        ("-D -Dp pidfile", "cannot use -D and -Dp together"),
        ("-Dp pidfile -D", "cannot use -D and -Dp together"),
        (
            "-f p -u /bin/true -uT /bin/true",
            "cannot use -u and -uT together",
        ),
    ]);
}

#[test]
fn options_that_need_f() {
    for (args, opt) in [
        (&["-s"][..], "-s"),
        (&["-z"][..], "-z"),
        (&["-j"][..], "-j"),
        (&["-t", "5"][..], "-t"),
        (&["-M"][..], "-M"),
        (&["-l"][..], "-l"),
        (&["-L"][..], "-L"),
        (&["-u", "/bin/true"][..], "-u"),
        (&["-uT", "/bin/true"][..], "-uT"),
    ] {
        usage_error(args, &format!("{opt} needs -f"));
    }
}

#[test]
fn compress_level_needs_z_or_j_and_1_to_9() {
    usage_errors(&[
        ("--compress-level 1", "--compress-level needs -z or -j"),
        ("-f p --compress-level 9", "--compress-level needs -z or -j"),
        (
            "-f p -L --compress-level 5",
            "--compress-level needs -z or -j",
        ),
        (
            "-f p -z --compress-level 1 --compress-level 2",
            "--compress-level given more than once",
        ),
    ]);
    for bad in ["0", "10", "-1", "x", "1.5", "+5", " 5", ""] {
        for opt in ["-z", "-j"] {
            usage_error(
                &["-f", "p", opt, "--compress-level", bad],
                &format!("--compress-level: invalid level '{bad}' (must be 1 to 9)"),
            );
        }
    }
    usage_error_like(&["-f", "p", "-z", "--compress-level"], "--compress-level");
    let dir = tmpdir("cli-compress-level");
    let prefix = dir.join("p");
    for level in ["1", "6", "9"] {
        for opt in ["-z", "-j"] {
            accepted(&["-f", p(&prefix), opt, "--compress-level", level]);
        }
    }
}

#[test]
fn formats_need_c_or_syslog() {
    usage_errors(&[
        ("-C %i", "-C needs -c or --syslog"),
        ("-C json", "-C needs -c or --syslog"),
        ("--open-format %i", "--open-format needs -c or --syslog"),
        // --syslog is enough: the format itself is checked next
        ("--syslog -C %Q", "-C: unknown escape '%Q' at column 1"),
        (
            "--syslog --open-format x%Q",
            "--open-format: unknown escape '%Q' at column 2",
        ),
    ]);
}

#[test]
fn unknown_escapes_name_their_column() {
    usage_errors(&[
        ("-c l -C %i%Q", "-C: unknown escape '%Q' at column 3"),
        (
            "-c l -C ab%{nope}x",
            "-C: unknown escape '%{nope}' at column 3",
        ),
        ("-c l -C %{user", "-C: unknown escape '%{user' at column 1"),
        ("-c l -C %x%", "-C: unknown escape '%' at column 3"),
        (
            "-c l --open-format %%%z",
            "--open-format: unknown escape '%z' at column 3",
        ),
    ]);
    // every documented escape and long form is accepted
    accepted(&[
        "-C",
        "%%%n%s%e%S%i%p%a%A%o%O%b%B%f%c%x%{start}%{end}%{secs}%{client_ip}%{client_port}\
         %{local_ip}%{local_port}%{dest_ip}%{dest_port}%{bytes_in}%{bytes_out}%{file}%{conn}\
         %{status}%{proto}%{user}%{host}%{display}%{pid}%{program}%{service}%{vendor_host}\
         %{vendor_port}",
        "--open-format",
        "json",
    ]);
}

#[test]
fn port_ranges() {
    for (opt, bad, lowest) in [
        ("-p", "65536", 0),
        ("-p", "-1", 0),
        ("-p", "http", 0),
        ("-P", "0", 1),
        ("-P", "65536", 1),
    ] {
        let msg = format!("{opt}: invalid port '{bad}' (must be {lowest} to 65535)");
        usage_error(&[opt, bad], &msg);
    }
    usage_error(&["-p", "80@"], "-p: empty listen host in '80@'");
    usage_error(
        &["-P", "80,0@h"],
        "-P: invalid port '0' (must be 1 to 65535)",
    );
    usage_error(&["-P", "80@"], "-P: empty host in '80@'");
    accepted(&["-p", "65535@127.0.0.1", "-P", "1,65535@[::1]"]);
    accepted(&["-p", "0"]);
}

#[test]
fn buffer_size_range() {
    for bad in ["0", "67108865", "-1", "1k", ""] {
        usage_error(
            &["-b", bad],
            &format!("-b: invalid buffer size '{bad}' (must be 1 to 67108864)"),
        );
    }
    accepted(&["-b", "1"]);
    accepted(&["-b", "67108864"]);
}

#[test]
fn client_rules_are_addresses() {
    for bad in [
        "host.example",
        "localhost",
        "10.0.0.0/33",
        "10.0.0.1/",
        "::/129",
    ] {
        usage_error(
            &["-r", bad],
            &format!("-r: invalid client address '{bad}' (an IP address or CIDR, no host names)"),
        );
    }
    // several addresses after one -r, CIDR and IPv6
    accepted(&["-r", "10.0.0.1", "10.1.0.0/16", "-r", "fd00::/8", "::1"]);
    usage_error(
        &["-r", "10.0.0.1", "host.example"],
        "-r: invalid client address 'host.example' (an IP address or CIDR, no host names)",
    );
}

#[test]
fn numbers_are_non_negative_integers() {
    let max = u32::MAX;
    for opt in ["--max-connections", "--connect-timeout", "--idle-timeout"] {
        for bad in ["-1", "1.5", "x", ""] {
            usage_error(
                &[opt, bad],
                &format!("{opt}: invalid value '{bad}' (must be an integer from 0 to {max})"),
            );
        }
        accepted(&[opt, "0"]);
    }
    usage_error(
        &["-f", "p", "-t", "-1"],
        &format!("-t: invalid value '-1' (must be an integer from 0 to {max})"),
    );
}

#[test]
fn unexpected_and_unknown_arguments() {
    usage_error(&["stray"], "unexpected argument 'stray'");
    usage_error(&["-p", "1", "stray"], "unexpected argument 'stray'");
    // the option parser's own words: "Option 'p' given more than once"
    usage_error_like(&["-p", "1", "-p", "2"], "given more than once");
    usage_error_like(&["-x"], "x");
    usage_error_like(&["--nope"], "nope");
    usage_error_like(&["-p"], "p");
    usage_error_like(&["-Dp"], "Dp");
}

#[test]
fn help_and_version() {
    for a in ["-?", "--help"] {
        let out = run(&[a]);
        assert_eq!(out.status.code(), Some(0), "{a}");
        let o = text(&out.stdout);
        assert!(o.starts_with(&format!("{USAGE}\n")), "{a}: {o}");
        assert!(out.stderr.is_empty(), "{a}: {}", text(&out.stderr));
    }
    for a in ["-v", "--version"] {
        let out = run(&[a]);
        assert_eq!(out.status.code(), Some(0), "{a}");
        assert_eq!(
            text(&out.stdout),
            format!("ipprotd {}\n", env!("CARGO_PKG_VERSION")),
            "{a}"
        );
        assert!(out.stderr.is_empty(), "{a}: {}", text(&out.stderr));
    }
    // the usage line is the SPEC's synopsis plus the long options
    assert!(USAGE.starts_with("usage: ipprotd [-p inport[@listen_host]]"));
    for o in [
        "-Dp pid_file",
        "-uT cmd",
        "--max-connections N",
        "--connect-timeout secs",
        "--idle-timeout secs",
        "--user name",
        "--syslog",
        "--open-format format",
        "--verbose",
    ] {
        assert!(USAGE.contains(o), "usage lacks {o}");
    }
}

/// A start error: exit 1, exactly one stderr line that starts with
/// `ipprotd: <opt>: ` and names every needle; nothing on stdout. `args`
/// get `-p 0@127.0.0.1` unless they have a `-p`.
fn start_error(args: &[&str], cwd: Option<&Path>, opt: &str, needles: &[&str]) -> String {
    let mut with_p = args.to_vec();
    if !args.contains(&"-p") {
        with_p.splice(0..0, ["-p", "0@127.0.0.1"]);
    }
    let args = &with_p[..];
    let out = run_in(args, cwd);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    assert!(
        err.starts_with(&format!("ipprotd: {opt}: ")),
        "{args:?}: {err}"
    );
    for n in needles {
        assert!(err.contains(n), "{args:?}: {err:?} lacks {n:?}");
    }
    assert!(out.stdout.is_empty());
    err
}

/// The same start error in the foreground, with -D and with -Dp: no pid
/// file and no detached process afterwards.
fn start_error_all_modes(dir: &Path, args: &[&str], opt: &str, needles: &[&str]) {
    start_error(args, None, opt, needles);
    let pid = dir.join("ipprotd.pid");
    let pid_s = pid.to_str().unwrap();
    for mode in [&["-D"][..], &["-Dp", pid_s][..]] {
        let mut v = args.to_vec();
        v.extend_from_slice(mode);
        start_error(&v, None, opt, needles);
        assert!(!pid.exists(), "{v:?} left a pid file");
        assert!(
            ipprotd_pids_with_arg(dir.to_str().unwrap()).is_empty(),
            "{v:?} left a detached ipprotd"
        );
    }
}

/// A fresh directory `name`, its subdirectory `missing` that does not
/// exist, and `missing/<file>`.
fn in_missing_dir(name: &str, file: &str) -> (PathBuf, PathBuf, PathBuf) {
    let dir = tmpdir(name);
    let missing = dir.join("missing");
    let path = missing.join(file);
    (dir, missing, path)
}

/// The text of ENOENT.
const ENOENT: &str = "No such file or directory";

#[test]
fn start_error_connection_log_directory() {
    let (dir, missing, log) = in_missing_dir("cli-c", "conn.log");
    let enoent = [p(&missing), ENOENT];
    start_error_all_modes(&dir, &["-c", p(&log)], "-c", &enoent);
    // the connection log is a directory
    let eisdir = [p(&dir), "Is a directory"];
    start_error(&["-c", p(&dir)], None, "-c", &eisdir);
}

#[test]
fn start_error_data_log_directory() {
    let (dir, missing, prefix) = in_missing_dir("cli-f", "prot");
    let enoent = [p(&missing), ENOENT];
    start_error_all_modes(&dir, &["-f", p(&prefix)], "-f", &enoent);
    // the "directory" is a regular file (root passes any W_OK check)
    let file = dir.join("afile");
    std::fs::write(&file, b"x").unwrap();
    let prefix = file.join("prot");
    let enotdir = [p(&file), "Not a directory"];
    start_error_all_modes(&dir, &["-f", p(&prefix)], "-f", &enotdir);
    // relative to the start directory
    start_error(&["-f", "missing/prot"], Some(&dir), "-f", &enoent);
}

#[test]
fn start_error_pid_file_directory() {
    let (dir, missing, pid) = in_missing_dir("cli-dp", "ipprotd.pid");
    let enoent = [p(&missing), ENOENT];
    start_error(&["-Dp", p(&pid)], None, "-Dp", &enoent);
    assert!(!pid.exists());
    assert!(ipprotd_pids_with_arg(p(&dir)).is_empty());
}

#[test]
fn start_error_hook_program() {
    let dir = tmpdir("cli-u");
    let prefix = dir.join("prot");
    let missing = dir.join("no-such-hook");
    // present but not executable (mode 0644: even root may not exec it)
    let hook = dir.join("hook.sh");
    std::fs::write(&hook, b"#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o644)).unwrap();
    let in_path = "no-such-ipprotd-hook-xyz arg";
    for opt in ["-u", "-uT"] {
        let with = |prog| ["-f", p(&prefix), opt, prog];
        let enoent = [p(&missing), "No such file or directory"];
        start_error_all_modes(&dir, &with(p(&missing)), opt, &enoent);
        let enoent = ["no-such-ipprotd-hook-xyz", "No such file or directory"];
        start_error(&with(in_path), None, opt, &enoent);
        let eacces = [p(&hook), "Permission denied"];
        start_error_all_modes(&dir, &with(p(&hook)), opt, &eacces);
    }
    // a directory is not a program either
    start_error(&["-f", p(&prefix), "-u", p(&dir)], None, "-u", &[p(&dir)]);
}

#[test]
fn start_error_port_in_use() {
    let dir = tmpdir("cli-port");
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let p = format!("{port}@127.0.0.1");
    let log = dir.join("conn.log");
    start_error_all_modes(
        &dir,
        &["-p", &p, "-c", log.to_str().unwrap()],
        "-p",
        &[&port.to_string(), "Address already in use"],
    );
    // the listener that was there first is untouched
    let c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (_s, peer) = l.accept().unwrap();
    assert_eq!(peer, c.local_addr().unwrap());
    assert!(!log.exists());
}
