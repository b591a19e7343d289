//! Evidence integrity end to end: the real daemon records real
//! connections (plain, `-z`, `-j`), its `%{sha256}` / JSON `sha256` /
//! `IPPROT_SHA256` equal `sha256sum` of the finished file (a digest taken
//! as the bytes were written, across the idle flushes); `ipprotcat
//! --verify` says OK, MISMATCH for a changed file, MISSING for a removed
//! one, and finds moved files with `--archive`; the archive hook writes
//! the digest ipprotd passed, without hashing again.

use crate::harness::*;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const CAT: &str = env!("CARGO_BIN_EXE_ipprotcat");

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// An echo backend and a daemon in front of it recording to `prefix`,
/// with the options `extra` added.
fn recording(prefix: &Path, extra: &[&str]) -> (Backend, Daemon) {
    let b = Backend::echo();
    let dest = b.dest();
    let mut args = vec!["-P", &dest, "-f", s(prefix)];
    args.extend_from_slice(extra);
    let d = Daemon::start(&args);
    (b, d)
}

fn entry_json(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"))
}

/// Send `first`, wait until the daemon's idle flush put something in the
/// data log (so the file is written in two parts), send `second`, close
/// the write side, read the echo.
fn two_part_session(d: &Daemon, dir: &Path, first: &[u8], second: &[u8]) {
    let mut c: TcpStream = d.connect();
    c.write_all(first).unwrap();
    let mut echo = vec![0u8; first.len()];
    c.read_exact(&mut echo).unwrap();
    assert_eq!(echo, first);
    assert!(
        wait_until(DEADLINE, || data_logs(dir)
            .iter()
            .any(|f| recoverable(f) >= first.len())),
        "the idle flush wrote nothing into {}",
        dir.display()
    );
    // read the echo while writing, so that no buffer on the way fills up
    let mut reader = c.try_clone().unwrap();
    // the debug build compresses slowly on a busy machine
    reader.set_read_timeout(Some(DEADLINE * 3)).unwrap();
    let want = second.len();
    let back = std::thread::spawn(move || {
        let mut rest = Vec::with_capacity(want);
        reader.read_to_end(&mut rest).map(|_| rest)
    });
    c.write_all(second).unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let rest = back
        .join()
        .unwrap()
        .unwrap_or_else(|e| panic!("the echo of the second part: {e}"));
    assert_eq!(rest, second);
}

/// How many bytes of a data log can be read back now (decompressed).
fn recoverable(path: &Path) -> usize {
    let Ok(raw) = std::fs::read(path) else {
        return 0;
    };
    match path.extension().and_then(|e| e.to_str()) {
        Some("gz") => read_until_error(flate2::read::MultiGzDecoder::new(&raw[..]))
            .0
            .len(),
        Some("bz2") => read_until_error(bzip2::read::MultiBzDecoder::new(&raw[..]))
            .0
            .len(),
        _ => raw.len(),
    }
}

/// The data logs (`prot_*`) in `dir`.
fn data_logs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("prot_"))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn verify(args: &[&str]) -> (Output, String) {
    let out = Command::new(CAT)
        .arg("--verify")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out, text)
}

/// One recorded connection per compression; returns the connection log
/// (JSON) and the data log of each.
fn record(dir: &Path, flag: Option<&str>, seed: u64) -> (PathBuf, PathBuf) {
    let rec = dir.join(format!("rec{seed}"));
    std::fs::create_dir(&rec).unwrap();
    let log = dir.join(format!("conn{seed}.json"));
    let b = Backend::echo();
    let prefix = rec.join("prot");
    let mut args = vec![
        "-P",
        Box::leak(b.dest().into_boxed_str()),
        "-f",
        s(&prefix),
        "-L",
        "-M",
        "-c",
        s(&log),
        "-C",
        "json",
    ];
    args.extend(flag);
    let mut d = Daemon::start(&args);
    // 100 kB in the second part: blocks larger than the plain write
    // buffer (64 kB) take the writev path
    two_part_session(
        &d,
        &rec,
        &random_bytes(5000, seed),
        &random_bytes(100_000, seed + 1),
    );
    let entry = entry_json(&wait_lines(&log, 1)[0]);
    d.term();
    let file = PathBuf::from(entry["file"].as_str().unwrap());
    assert_eq!(data_logs(&rec), vec![file.clone()]);
    let want = sha256sum(&file);
    assert_eq!(entry["sha256"].as_str(), Some(want.as_str()), "{entry}");
    (log, file)
}

#[test]
fn sha256_equals_sha256sum_plain_gzip_bzip2() {
    if !have_tool("sha256sum") {
        eprintln!("note: sha256sum not installed, test skipped");
        return;
    }
    let dir = tmpdir("sha256");
    for (i, flag) in [None, Some("-z"), Some("-j")].into_iter().enumerate() {
        let (_, file) = record(&dir, flag, i as u64 + 1);
        let ext = file.extension().and_then(|e| e.to_str()).unwrap_or("");
        match flag {
            Some("-z") => assert_eq!(ext, "gz"),
            Some("-j") => assert_eq!(ext, "bz2"),
            _ => assert!(ext != "gz" && ext != "bz2"),
        }
    }
}

#[test]
fn custom_format_and_no_file() {
    if !have_tool("sha256sum") {
        eprintln!("note: sha256sum not installed, test skipped");
        return;
    }
    let dir = tmpdir("sha256-custom");
    let log = dir.join("conn.log");
    let prefix = dir.join("prot");
    let (_b, mut d) = recording(&prefix, &["-z", "-c", s(&log), "-C", "%c|%f|%{sha256}|%x"]);
    two_part_session(&d, &dir, b"hello\n", b"world\n");
    let line = wait_lines(&log, 1).remove(0);
    d.term();
    let parts: Vec<&str> = line.split('|').collect();
    assert_eq!(parts.len(), 4, "{line}");
    assert_eq!(parts[0], "1");
    let file = PathBuf::from(parts[1]);
    assert_eq!(parts[2], sha256sum(&file), "{line}");
    assert_eq!(parts[3], "ok");

    // no data log (the destination refuses): `-` in text, null in JSON
    let closed = closed_port();
    let refused = closed.dest();
    let json = dir.join("refused.json");
    let text = dir.join("refused.log");
    for (l, fmt) in [(&json, "json"), (&text, "%f|%{sha256}|%x")] {
        let mut d = Daemon::start(&["-P", &refused, "-f", s(&prefix), "-c", s(l), "-C", fmt]);
        let mut c = d.connect();
        let _ = c.read_to_end(&mut Vec::new());
        wait_lines(l, 1);
        d.term();
    }
    let e = entry_json(&lines(&json)[0]);
    assert_eq!(e["status"], "refused");
    assert!(e["sha256"].is_null() && e["file"].is_null(), "{e}");
    assert_eq!(lines(&text)[0], "-|-|refused");
}

#[test]
fn hook_gets_ipprot_sha256() {
    if !have_tool("sha256sum") {
        eprintln!("note: sha256sum not installed, test skipped");
        return;
    }
    let dir = tmpdir("sha256-hook");
    let out = dir.join("hook.out");
    let hook = dir.join("hook.sh");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\nprintf '%s %s\\n' \"$IPPROT_SHA256\" \"$1\" >> {}\n",
            s(&out)
        ),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let log = dir.join("conn.json");
    let prefix = dir.join("prot");
    let (_b, mut d) = recording(
        &prefix,
        &["-j", "-L", "-u", s(&hook), "-c", s(&log), "-C", "json"],
    );
    two_part_session(&d, &dir, &random_bytes(3000, 7), &random_bytes(70_000, 8));
    let got = wait_lines(&out, 1).remove(0);
    let entry = entry_json(&wait_lines(&log, 1)[0]);
    d.term();
    let (sha, file) = got.split_once(' ').unwrap();
    assert_eq!(file, entry["file"].as_str().unwrap());
    assert_eq!(sha, sha256sum(Path::new(file)));
    assert_eq!(Some(sha), entry["sha256"].as_str());
}

#[test]
fn verify_ok_mismatch_missing_archive() {
    if !have_tool("sha256sum") {
        eprintln!("note: sha256sum not installed, test skipped");
        return;
    }
    let dir = tmpdir("verify");
    let (log1, plain) = record(&dir, None, 11);
    let (log2, gz) = record(&dir, Some("-z"), 13);
    let (log3, bz) = record(&dir, Some("-j"), 15);
    let logs = [s(&log1), s(&log2), s(&log3)];

    let (o, text) = verify(&logs);
    assert_eq!(
        text,
        format!(
            "OK {}\nOK {}\nOK {}\n",
            plain.display(),
            gz.display(),
            bz.display()
        )
    );
    assert_eq!(o.status.code(), Some(0), "{text}");

    // one byte appended to the gzip file: MISMATCH; the bzip2 file moved
    // away: MISSING
    std::fs::OpenOptions::new()
        .append(true)
        .open(&gz)
        .unwrap()
        .write_all(b"\0")
        .unwrap();
    let archive = dir.join("archive");
    let filed = archive.join("2026/11/23");
    std::fs::create_dir_all(&filed).unwrap();
    let moved = filed.join(bz.file_name().unwrap());
    std::fs::rename(&bz, &moved).unwrap();
    let (o, text) = verify(&logs);
    assert_eq!(
        text,
        format!(
            "OK {}\nMISMATCH {}\nMISSING {}\n",
            plain.display(),
            gz.display(),
            bz.display()
        )
    );
    assert_eq!(o.status.code(), Some(1));

    // --archive finds the moved file by its base name
    let (o, text) = verify(&["--archive", s(&archive), s(&log3)]);
    assert_eq!(text, format!("OK {}\n", moved.display()));
    assert_eq!(o.status.code(), Some(0), "{text}");
    // ... and a changed archived copy is a MISMATCH at its archived path
    std::fs::write(&moved, b"rewritten").unwrap();
    let (o, text) = verify(&["--archive", s(&archive), s(&log3)]);
    assert_eq!(text, format!("MISMATCH {}\n", moved.display()));
    assert_eq!(o.status.code(), Some(1));

    // a log in the default format names no file: nothing checked, exit 1
    let default = dir.join("default.log");
    std::fs::write(
        &default,
        "2026-11-23 21:30:05+01:00|2026-11-23 21:30:07+01:00|2|10.0.0.9|40000|147|53|ok|-|-|-|-|-|-\n",
    )
    .unwrap();
    let (o, text) = verify(&[s(&default)]);
    assert_eq!(text, "");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no entry names a data log"),
        "{o:?}"
    );
    // a connection log that does not exist
    let (o, _) = verify(&[s(&dir.join("nope.log"))]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("nope.log: cannot open"));
}

#[test]
fn archive_hook_uses_ipprot_sha256() {
    let dir = tmpdir("archive-sha");
    let file = dir.join("prot_2026-11-23_213005_1_127.0.0.1");
    std::fs::write(&file, b"recorded").unwrap();
    let archive = dir.join("archive");
    // a digest the file does not have: the hook must write it as given,
    // proof that it did not hash the file again
    let given = "ab".repeat(32);
    let hook = format!("{}/contrib/hooks/archive", env!("CARGO_MANIFEST_DIR"));
    let st = Command::new(&hook)
        .args([s(&file), "1795465805", "1795465807", "8", "0", "127.0.0.1"])
        .env("IPPROT_ARCHIVE_DIR", &archive)
        .env("IPPROT_SHA256", &given)
        .env("TZ", "UTC")
        .status()
        .unwrap();
    assert!(st.success());
    let m = lines(&archive.join("MANIFEST"));
    assert_eq!(m.len(), 1);
    assert!(m[0].starts_with(&format!("{given}  ")), "{m:?}");
}
