//! The hook scripts of contrib/hooks/ (archive, oracle-audit, syslog),
//! each run end to end by the real daemon after a real connection: the
//! client sends an Oracle TNS CONNECT packet, the hook gets the six
//! parameters, and its output is checked against the connection-log entry
//! of the same connection.

use crate::harness::*;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The connect descriptor the test client sends. The ADDRESS part has a
/// HOST too (the server's): the hooks must take HOST from CID only.
const DESCRIPTOR: &str = "(DESCRIPTION=(CONNECT_DATA=(SERVICE_NAME=ORCL)\
(CID=(PROGRAM=sqlplus)(HOST=app01)(USER=oracle)))\
(ADDRESS=(PROTOCOL=tcp)(HOST=10.0.0.5)(PORT=1521)))";

/// What the backend answers once the client has finished sending.
const REPLY: &[u8] = b"ACCEPTED\n";

fn hook(name: &str) -> String {
    format!("{}/contrib/hooks/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A TNS CONNECT packet (version 314, connect data inline at offset 58).
fn tns_connect(descriptor: &str) -> Vec<u8> {
    const OFFSET: u16 = 58;
    let data = descriptor.as_bytes();
    let len = u16::try_from(data.len()).unwrap();
    assert!(len <= 230, "inline connect data is at most 230 bytes");
    let mut p = Vec::new();
    p.extend((OFFSET + len).to_be_bytes()); // packet length
    p.extend([0, 0, 1, 0, 0, 0]); // checksum, type CONNECT, flags, header checksum
    p.extend(314u16.to_be_bytes()); // version
    p.extend(300u16.to_be_bytes()); // lowest compatible version
    p.extend([0x0c, 0x41, 0x20, 0x00, 0xff, 0xff, 0x7f, 0x08, 0, 0, 0, 1]);
    p.extend(len.to_be_bytes());
    p.extend(OFFSET.to_be_bytes());
    p.extend([0, 0, 0, 0, 0x41, 0x41]);
    p.extend([0u8; 24]);
    assert_eq!(p.len(), usize::from(OFFSET));
    p.extend_from_slice(data);
    p
}

/// A backend that reads until EOF, then answers [`REPLY`] and closes.
fn backend() -> Backend {
    Backend::start(|mut s| {
        let mut v = Vec::new();
        if s.read_to_end(&mut v).is_ok() {
            let _ = s.write_all(REPLY);
        }
    })
}

/// One client connection: send `data`, close the write side, read the
/// reply to the end.
fn talk(d: &Daemon, data: &[u8]) {
    assert_eq!(d.exchange(data), REPLY);
}

/// The daemon in front of [`backend`]: `-f DIR/<prefix> FLAGS -u|-uT
/// contrib/hooks/<hook> -c DIR/conn.log -C fmt` in the environment `env`;
/// the daemon and the connection log.
fn with_hook(
    dir: &Path,
    prefix: &str,
    flags: &[&str],
    hook_opt: &str,
    name: &str,
    fmt: &str,
    env: &[(&str, &str)],
) -> (Backend, Daemon, PathBuf) {
    let b = backend();
    let prefix = dir.join(prefix);
    let hook = hook(name);
    let mut args = vec!["-f", p(&prefix)];
    args.extend_from_slice(flags);
    args.extend([hook_opt, &hook]);
    let (d, log) = Daemon::logged(dir, &b.dest(), fmt, &args, env);
    (b, d, log)
}

/// The value of `"key":` in a one-line JSON entry (numbers and strings
/// without escapes, which is all these tests look at).
fn json_field(entry: &str, key: &str) -> String {
    let pat = format!("\"{key}\":");
    let at = entry
        .find(&pat)
        .unwrap_or_else(|| panic!("no {key} in {entry}"));
    let rest = &entry[at + pat.len()..];
    if let Some(r) = rest.strip_prefix('"') {
        r[..r.find('"').unwrap()].to_string()
    } else {
        let end = rest.find([',', '}']).unwrap();
        rest[..end].to_string()
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Split a MANIFEST line `sha  path  p2 p3 p4 p5 p6` into the hash, the
/// path and the rest.
fn manifest_line(line: &str) -> (String, PathBuf, String) {
    let mut it = line.splitn(3, "  ");
    let sum = it.next().unwrap().to_string();
    let path = PathBuf::from(it.next().unwrap());
    let rest = it.next().unwrap_or_else(|| panic!("short line {line:?}"));
    (sum, path, rest.to_string())
}

/// The local date `yyyy-mm-dd` of a data log, from its name
/// `<prefix>_<yyyy-mm-dd_HHMMSS>_<n>_<ip>`.
fn name_date(file: &Path) -> String {
    let name = file.file_name().unwrap().to_str().unwrap();
    let stamp = name.split('_').nth(1).unwrap();
    assert_eq!(stamp.len(), 10, "{name}");
    stamp.to_string()
}

/// Where the archive hook puts a file started on `date`.
fn archived_dir(root: &Path, date: &str) -> PathBuf {
    let mut d = root.to_path_buf();
    for part in date.split('-') {
        d.push(part);
    }
    d
}

#[test]
fn archive_moves_and_manifests_epoch_times() {
    let dir = tmpdir("hook-archive");
    std::fs::create_dir(dir.join("rec")).unwrap();
    let archive = dir.join("archive");
    let env = [("IPPROT_ARCHIVE_DIR", p(&archive))];
    let flags = ["-L", "-s", "-z"];
    let (_b, d, log) = with_hook(&dir, "rec/prot", &flags, "-u", "archive", "json", &env);
    talk(&d, &tns_connect(DESCRIPTOR));

    let manifest = archive.join("MANIFEST");
    let m = wait_lines(&manifest, 1);
    let entry = wait_lines(&log, 1).remove(0);
    let (sum, path, params) = manifest_line(&m[0]);

    // the file moved from the -f directory into <yyyy>/<mm>/<dd>/
    let original = PathBuf::from(json_field(&entry, "file"));
    assert!(original.starts_with(dir.join("rec")), "{entry}");
    assert!(!original.exists(), "{} was not moved", original.display());
    assert_eq!(
        path,
        archived_dir(&archive, &name_date(&original)).join(original.file_name().unwrap())
    );
    assert!(path.to_str().unwrap().ends_with(".gz"));
    assert_eq!(sum, sha256sum(&path));
    assert_eq!(sum.len(), 64);
    // the MANIFEST digest is the one ipprotd computed while writing
    assert_eq!(sum, json_field(&entry, "sha256"));

    // parameters 2-6 equal the entry: epoch seconds with -u
    let secs = |k: &str| (json_field(&entry, k).parse::<i64>().unwrap() / 1_000_000).to_string();
    let want = [
        secs("start_us"),
        secs("end_us"),
        json_field(&entry, "bytes_in"),
        json_field(&entry, "bytes_out"),
        json_field(&entry, "client_ip"),
    ]
    .join(" ");
    assert_eq!(params, want, "manifest {m:?} entry {entry}");
    assert_eq!(json_field(&entry, "bytes_out"), REPLY.len().to_string());

    // a valid gzip file holding the (printable) descriptor
    let text = decompressed(&path);
    assert!(
        contains(&text, DESCRIPTOR),
        "{}",
        String::from_utf8_lossy(&text)
    );
    assert!(contains(&text, "ACCEPTED"));
}

#[test]
fn archive_text_times_from_u_t() {
    let dir = tmpdir("hook-archive-t");
    let archive = dir.join("archive");
    let env = [("IPPROT_ARCHIVE_DIR", p(&archive))];
    let fmt = "%s|%e|%b|%B|%i|%f";
    let (_b, d, log) = with_hook(&dir, "prot", &["-l", "-j"], "-uT", "archive", fmt, &env);
    talk(&d, &tns_connect(DESCRIPTOR));
    talk(&d, b"second connection\n");

    let m = wait_lines(&archive.join("MANIFEST"), 2);
    let entries = wait_lines(&log, 2);
    for e in &entries {
        let f: Vec<&str> = e.split('|').collect();
        let original = PathBuf::from(f[5]);
        let line = m
            .iter()
            .find(|l| l.contains(original.file_name().unwrap().to_str().unwrap()))
            .unwrap_or_else(|| panic!("no manifest line for {e}: {m:?}"));
        let (sum, path, params) = manifest_line(line);
        // yyyy/mm/dd from the start as text
        let date = &f[0][..10];
        assert_eq!(date, name_date(&original));
        assert_eq!(
            path,
            archived_dir(&archive, date).join(original.file_name().unwrap())
        );
        assert!(!original.exists());
        assert_eq!(sum, sha256sum(&path));
        // "yyyy-mm-dd HH:MM:SS+hh:mm" twice, then bytes and client
        assert_eq!(params, f[..5].join(" "), "{line} / {e}");
        assert_eq!(f[0].len(), 25);
    }
    let first = m.iter().find(|l| l.contains("_1_127.0.0.1")).unwrap();
    let text = decompressed(&manifest_line(first).1);
    assert!(contains(&text, DESCRIPTOR));
    // -l: only the client's bytes
    assert!(!contains(&text, "ACCEPTED"));
}

/// Run the oracle-audit hook through the daemon with `extra` options and
/// check its summary line for a CONNECT and for a connection without one.
fn oracle_audit(name: &str, extra: &[&str], ext: &str) {
    let dir = tmpdir(name);
    let summary = dir.join("audit-summary.log");
    let env = [("IPPROT_AUDIT_SUMMARY", p(&summary))];
    let mut flags = vec!["-L"];
    flags.extend_from_slice(extra);
    let (_b, d, log) = with_hook(&dir, "prot", &flags, "-u", "oracle-audit", "json", &env);
    talk(&d, &tns_connect(DESCRIPTOR));
    wait_lines(&summary, 1);
    talk(&d, b"SELECT 1 FROM DUAL;\n");

    let lines = wait_lines(&summary, 2);
    let entries = wait_lines(&log, 2);
    let by_conn = |n: &str| {
        entries
            .iter()
            .find(|e| json_field(e, "conn") == n)
            .unwrap()
            .clone()
    };
    let (e1, e2) = (by_conn("1"), by_conn("2"));
    assert!(json_field(&e1, "file").ends_with(ext), "{e1}");
    let start =
        |e: &str| (json_field(e, "start_us").parse::<i64>().unwrap() / 1_000_000).to_string();
    assert_eq!(
        lines[0],
        format!(
            "{}|{}|sqlplus|app01|oracle|{}",
            start(&e1),
            json_field(&e1, "client_ip"),
            json_field(&e1, "file")
        )
    );
    assert_eq!(
        lines[1],
        format!(
            "{}|{}|-|-|-|{}",
            start(&e2),
            json_field(&e2, "client_ip"),
            json_field(&e2, "file")
        )
    );
    // the daemon identified the same client from the first packet
    assert_eq!(json_field(&e1, "proto"), "tns");
    assert_eq!(json_field(&e1, "program"), "sqlplus");
    // the hook leaves the recording in place
    assert!(Path::new(&json_field(&e1, "file")).exists());
}

#[test]
fn oracle_audit_gzip_printable() {
    oracle_audit("hook-audit-gz", &["-s", "-z"], ".gz");
}

#[test]
fn oracle_audit_bzip2_markers() {
    oracle_audit("hook-audit-bz2", &["-s", "-j", "-M", "-t", "0"], ".bz2");
}

#[test]
fn oracle_audit_plain_binary() {
    // no -s: the binary TNS header is in the file as it came
    oracle_audit("hook-audit-plain", &[], "_127.0.0.1");
}

/// A fake `logger` in `dir/bin` that appends its arguments, one a line,
/// then `--end--`, to `dir/logger.out`.
fn fake_logger(dir: &Path) -> (PathBuf, PathBuf) {
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).unwrap();
    let out = dir.join("logger.out");
    let body = format!("printf '%s\\n' \"$@\" --end-- >> '{}'\n", out.display());
    script(&bin, "logger", &body);
    (bin, out)
}

#[test]
fn syslog_hook_sends_one_line() {
    let dir = tmpdir("hook-syslog");
    let (bin, out) = fake_logger(&dir);
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let env = [("PATH", path.as_str())];
    let (_b, d, log) = with_hook(&dir, "prot", &["-L"], "-u", "syslog", "json", &env);
    let packet = tns_connect(DESCRIPTOR);
    talk(&d, &packet);

    let args = wait_lines(&out, 6);
    let entry = wait_lines(&log, 1).remove(0);
    assert_eq!(
        args[..5],
        ["-t", "ipprotd-hook", "-p", "daemon.info", "--"],
        "{args:?}"
    );
    assert_eq!(args[6], "--end--", "one message argument: {args:?}");
    let msg = &args[5];
    let secs = json_field(&entry, "secs");
    let want = format!(
        "client=127.0.0.1 port={} bytes_in={} bytes_out={} secs={secs} file={} conn=1 status=ok \
         proto=tns user=oracle host=app01 program=sqlplus service=ORCL",
        json_field(&entry, "client_port"),
        packet.len(),
        REPLY.len(),
        json_field(&entry, "file"),
    );
    assert_eq!(msg, &want);
}

#[test]
fn syslog_hook_with_the_real_logger() {
    // logger must exist and work here (it needs a syslog socket on some
    // systems); the message shows the test's own tag
    let works = Command::new("logger")
        .args([
            "-t",
            "ipprotd-test",
            "-p",
            "daemon.info",
            "--",
            "hooks test",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if !need(
        works,
        "logger(1) is missing or fails here: the real-logger run",
    ) {
        return;
    }
    let dir = tmpdir("hook-syslog-real");
    let b = backend();
    let prefix = dir.join("prot");
    let d = Daemon::start(&["-P", &b.dest(), "-f", p(&prefix), "-u", &hook("syslog")]);
    talk(&d, b"hello\n");
    // the hook replaced the child; the parent reaps it and, with
    // --verbose, reports a non-zero exit status
    assert!(d.wait_stderr("close 1 "));
    assert!(wait_until(DEADLINE, || children(d.pid()).is_empty()));
    let err = d.stderr();
    assert!(!err.contains("exit status"), "{err}");
    assert!(!err.contains("exit signal"), "{err}");
}

#[test]
fn hooks_insist_on_six_parameters() {
    for name in ["archive", "oracle-audit", "syslog"] {
        for n in [0usize, 5, 7] {
            let args: Vec<String> = (1..=n).map(|i| format!("p{i}")).collect();
            let out = Command::new(hook(name)).args(&args).output().unwrap();
            assert_eq!(out.status.code(), Some(2), "{name} with {n} parameters");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("expected 6 parameters") && err.contains(&format!("got {n}")),
                "{name}: {err}"
            );
        }
    }
}
