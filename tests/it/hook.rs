//! The post-processing hook (`-u`, `-uT`): parameters, environment,
//! signal dispositions, descriptors, timing against the data log and the
//! parent's shutdown. Each hook is a small sh script written by the test.

use crate::harness::*;

use std::io::Write;
use std::net::Shutdown;
use std::path::{Path, PathBuf};

/// A hook that records its arguments, one per line, into `out`, and
/// insists on `want` arguments after its own leading ones.
fn recorder(dir: &Path, out: &Path, want: usize) -> String {
    let body = format!(
        "[ $# -eq {want} ] || {{ echo \"want {want} got $#\" > \"$OUT.err\"; exit 2; }}\n\
         for a in \"$@\"; do printf '%s\\n' \"$a\"; done > \"$OUT.tmp\" && mv \"$OUT.tmp\" \"$OUT\"\n"
    );
    out_script(dir, "rec", out, &body)
}

/// An executable hook `dir/name` running the sh `body` with `$OUT` set to
/// the path `out`.
fn out_script(dir: &Path, name: &str, out: &Path, body: &str) -> String {
    script(dir, name, &format!("OUT='{}'\n{body}", out.display()))
}

/// One test's set-up: a fresh directory `name`, an echo backend, and the
/// path `DIR/out` that the test's hook writes.
fn setup(name: &str, out: &str) -> (PathBuf, Backend, PathBuf) {
    let dir = tmpdir(name);
    let out = dir.join(out);
    (dir, Backend::echo(), out)
}

/// Wait for the hook's output file `out`.
fn hook_ran(d: &Daemon, out: &Path) {
    assert!(wait_for_file(out), "hook did not run: {}", d.stderr());
}

/// A daemon in front of `b` recording to `DIR/<prefix>` with the hook
/// option `opt` (`-u` or `-uT`) running `hook`, and `extra`.
fn with_hook(
    dir: &Path,
    prefix: &str,
    b: &Backend,
    opt: &str,
    hook: &str,
    extra: &[&str],
) -> Daemon {
    let prefix = dir.join(prefix);
    let dest = b.dest();
    let mut args = vec!["-P", &dest, "-f", p(&prefix), opt, hook];
    args.extend_from_slice(extra);
    Daemon::start(&args)
}

#[test]
fn six_parameters_equal_the_entry() {
    let (dir, b, out) = setup("hook6", "args");
    let hook = recorder(&dir, &out, 6);
    let prefix = dir.join("prot");
    let rec = ["-f", p(&prefix), "-L", "-z", "-u", &hook];
    let (d, log) = Daemon::logged(&dir, &b.dest(), "json", &rec, &[]);
    d.echo(b"select 1 from dual;\n");
    hook_ran(&d, &out);
    let args = lines(&out);
    let entry: serde_json::Value = serde_json::from_str(&wait_lines(&log, 1)[0]).unwrap();
    assert_eq!(args.len(), 6, "{args:?}");
    assert_eq!(args[0], entry["file"].as_str().unwrap());
    assert!(args[0].starts_with(prefix.to_str().unwrap()) && args[0].ends_with("_1_127.0.0.1.gz"));
    assert_eq!(
        args[1],
        (entry["start_us"].as_i64().unwrap() / 1_000_000).to_string()
    );
    assert_eq!(
        args[2],
        (entry["end_us"].as_i64().unwrap() / 1_000_000).to_string()
    );
    assert_eq!(args[3], entry["bytes_in"].to_string());
    assert_eq!(args[4], entry["bytes_out"].to_string());
    assert_eq!(args[3], "20");
    assert_eq!(args[5], "127.0.0.1");
}

#[test]
fn text_times_and_leading_arguments_kept_literally() {
    let (dir, b, out) = setup("hookT", "args");
    let hook = recorder(&dir, &out, 9);
    let prefix = dir.join("prot");
    // no shell: ';' and '$(...)' reach the program as they are
    let cmd = format!("{hook} a;b  $(touch\t{}/pwned)", dir.display());
    let rec = ["-f", p(&prefix), "-uT", &cmd];
    let (d, log) = Daemon::logged(&dir, &b.dest(), "%s|%e", &rec, TZ_ENV);
    d.echo(b"x");
    hook_ran(&d, &out);
    let args = lines(&out);
    assert_eq!(args[0], "a;b");
    assert_eq!(args[1], "$(touch");
    assert_eq!(args[2], format!("{}/pwned)", dir.display()));
    assert!(!dir.join("pwned").exists());
    let entry = wait_lines(&log, 1)[0].clone();
    let (s, e) = entry.split_once('|').unwrap();
    assert_eq!(args[4], s);
    assert_eq!(args[5], e);
    assert_eq!(args.len(), 9);
    assert!(s.ends_with("+05:30") && s.len() == 25, "{s}");
}

#[test]
fn environment_signals_and_descriptors() {
    let (dir, b, out) = setup("hookenv", "env");
    // the hook waits for a child of its own (SIGCHLD must be default) and
    // lists its descriptors and signal state
    let body = "sleep 0.1 & wait $!\n\
        echo \"waited=$?\" > \"$OUT.tmp\"\n\
        ls /proc/self/fd | sort -n | tr '\\n' ' ' | sed 's/^/fds=/' >> \"$OUT.tmp\"; echo >> \"$OUT.tmp\"\n\
        grep -E '^Sig(Ign|Blk)' /proc/self/status >> \"$OUT.tmp\"\n\
        env >> \"$OUT.tmp\"\n\
        mv \"$OUT.tmp\" \"$OUT\"\n";
    let hook = out_script(&dir, "envhook", &out, body);
    let log = dir.join("conn.log");
    let prefix = dir.join("prot");
    let d = Daemon::start_with(
        &[
            "-P",
            &b.dest(),
            "-f",
            p(&prefix),
            "-u",
            &hook,
            "-c",
            p(&log),
        ],
        None,
        &[("IPPROT_TEST_MARK", "kept")],
    );
    d.echo(b"hello");
    hook_ran(&d, &out);
    let text = std::fs::read_to_string(&out).unwrap();
    let has = |l: &str| text.lines().any(|x| x == l);
    assert!(has("waited=0"), "{text}");
    // ls itself opens one descriptor (3) to read the directory
    let fds = text.lines().find(|l| l.starts_with("fds=")).unwrap();
    assert!(
        fds.trim() == "fds=0 1 2 3",
        "descriptors leaked into the hook: {fds}"
    );
    // sh may ignore nothing and block nothing that it inherited
    assert!(has("SigIgn:\t0000000000000000"), "{text}");
    assert!(has("SigBlk:\t0000000000000000"), "{text}");
    for kv in [
        "IPPROT_TEST_MARK=kept",
        "TCPREMOTEIP=127.0.0.1",
        "TCPLOCALIP=127.0.0.1",
        &format!("TCPLOCALPORT={}", d.port()),
        "IPPROT_CONN=1",
        "IPPROT_STATUS=ok",
        "IPPROT_PROTO=-",
        "IPPROT_USER=-",
        "IPPROT_VENDOR_PORT=-",
    ] {
        assert!(has(kv), "missing {kv} in {text}");
    }
    assert!(
        text.lines().any(|l| l.starts_with("TCPREMOTEPORT=")),
        "{text}"
    );
}

#[test]
fn data_log_is_complete_when_the_hook_starts() {
    if !need_tool("gzip", "the hook checks the data log with gzip -t") {
        return;
    }
    let (dir, b, out) = setup("hookgz", "check");
    let data = random_bytes(300_000, 7);
    // written aside and renamed: the test reads the file once it exists
    let body = "{ gzip -t \"$1\" && echo valid || echo invalid; } > \"$OUT.tmp\"\n\
        mv \"$OUT.tmp\" \"$OUT\"\n";
    let hook = out_script(&dir, "gzcheck", &out, body);
    let d = with_hook(&dir, "prot", &b, "-u", &hook, &["-L", "-M", "-z"]);
    let mut s = d.connect();
    let w = {
        let mut s = s.try_clone().unwrap();
        let data = data.clone();
        std::thread::spawn(move || {
            s.write_all(&data).unwrap();
            s.shutdown(Shutdown::Write).unwrap();
        })
    };
    assert_eq!(read_all(&mut s).len(), data.len());
    w.join().unwrap();
    hook_ran(&d, &out);
    assert_eq!(std::fs::read_to_string(&out).unwrap().trim(), "valid");
}

#[test]
fn hook_runs_for_a_connection_open_across_parent_shutdown() {
    let (dir, b, out) = setup("hookterm", "args");
    let hook = recorder(&dir, &out, 6);
    let mut d = with_hook(&dir, "prot", &b, "-u", &hook, &[]);
    let mut s = d.connect();
    echo_round(&mut s, b"before");
    assert!(d.term().success());
    assert!(!out.exists(), "hook ran before the connection closed");
    assert_eq!(exchange(&mut s, b"after"), b"after");
    assert!(
        wait_for_file(&out),
        "hook did not run after the parent ended"
    );
    assert_eq!(lines(&out)[3], "11");
}

#[test]
fn no_hook_without_a_data_log() {
    let dir = tmpdir("hooknone");
    let out = dir.join("args");
    let hook = recorder(&dir, &out, 6);
    let refused = closed_port();
    let prefix = dir.join("prot");
    let rec = ["-f", p(&prefix), "-u", &hook];
    let (d, log) = Daemon::logged(&dir, &refused.dest(), "%x %f", &rec, &[]);
    let mut sink = Vec::new();
    let r = std::io::Read::read_to_end(&mut d.connect(), &mut sink);
    assert_eq!(wait_lines(&log, 1)[0], "refused -", "{r:?} {}", d.stderr());
    // the entry is written before a hook would start: give it the same time
    // a hook needs and check nothing came
    let b = Backend::echo();
    let again = with_hook(&dir, "prot2", &b, "-u", &hook, &[]);
    again.echo(b"z");
    hook_ran(&again, &out);
    assert_eq!(
        lines(&out)[3],
        "1",
        "the only hook run is the second daemon's"
    );
}

#[test]
fn start_errors_name_the_program() {
    let dir = tmpdir("hookerr");
    let prefix = dir.join("p");
    let plain = dir.join("notexec");
    std::fs::write(&plain, "#!/bin/sh\n").unwrap();
    for (opt, prog, want) in [
        (
            "-u",
            "/nonexistent/hook",
            "-u: cannot execute /nonexistent/hook: No such file or directory".to_string(),
        ),
        (
            "-uT",
            p(&plain),
            format!("-uT: cannot execute {}: Permission denied", plain.display()),
        ),
        (
            "-u",
            "no-such-hook-in-path",
            "-u: cannot find program no-such-hook-in-path".to_string(),
        ),
    ] {
        let o = run(&["-p", "0@127.0.0.1", "-f", p(&prefix), opt, prog]);
        assert_eq!(o.status.code(), Some(1), "{opt} {prog}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(&want), "{err}");
    }

    let o = run(&["-u", "/bin/true"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("ipprotd: -u needs -f\n"));
}

#[test]
fn exec_failure_is_reported() {
    let dir = tmpdir("hookexec");
    let b = Backend::echo();
    // executable at start, gone by the time the connection closes
    let hook = script(&dir, "vanishing", "exit 0\n");
    let d = with_hook(&dir, "prot", &b, "-u", &hook, &[]);
    std::fs::remove_file(&hook).unwrap();
    d.echo(b"q");
    assert!(
        d.wait_stderr(&format!(
            "-u: cannot execute {hook}: No such file or directory"
        )),
        "{}",
        d.stderr()
    );
}
