//! The Debian package as installed by `dpkg -i` (CI sets
//! IPPROTD_INSTALLED=1 after installing it): its files are where SPEC
//! "Packaging" says, the maintainer scripts made the user `ipprot` and
//! `/var/log/ipprot` (0750), nothing was enabled, and the installed
//! `/usr/bin/ipprotd`, dropping to `ipprot`, relays to a test backend and
//! logs into `/var/log/ipprot`, whose recording the installed
//! `/usr/bin/ipprotcat --verify` checks.

use crate::harness::*;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};

const INSTALLED_BIN: &str = "/usr/bin/ipprotd";
const INSTALLED_CAT: &str = "/usr/bin/ipprotcat";
const LOG_DIR: &str = "/var/log/ipprot";

fn installed() -> bool {
    if std::env::var("IPPROTD_INSTALLED").as_deref() != Ok("1") {
        eprintln!("note: IPPROTD_INSTALLED is not 1 (the package is not installed); skipped");
        return false;
    }
    true
}

fn uid_gid_of(user: &str) -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let line = passwd
        .lines()
        .find(|l| l.split(':').next() == Some(user))
        .unwrap_or_else(|| panic!("no user {user} in /etc/passwd"));
    let f: Vec<&str> = line.split(':').collect();
    assert_eq!(f[6], "/usr/sbin/nologin", "{line}");
    (f[2].parse().unwrap(), f[3].parse().unwrap())
}

#[test]
fn package_files_user_and_log_directory() {
    if !installed() {
        return;
    }
    for (path, mode) in [
        (INSTALLED_BIN, 0o755),
        (INSTALLED_CAT, 0o755),
        ("/usr/bin/ipprotreport", 0o755),
        ("/usr/lib/ipprotd/hooks/archive", 0o755),
        ("/usr/lib/ipprotd/hooks/oracle-audit", 0o755),
        ("/usr/lib/ipprotd/hooks/syslog", 0o755),
        ("/usr/share/man/man8/ipprotd.8.gz", 0o644),
        ("/usr/share/man/man1/ipprotcat.1.gz", 0o644),
        ("/usr/share/man/man1/ipprotreport.1.gz", 0o644),
        ("/lib/systemd/system/ipprotd@.service", 0o644),
        ("/lib/systemd/system/ipprotd@.socket", 0o644),
        ("/etc/logrotate.d/ipprotd", 0o644),
        ("/usr/share/doc/ipprotd/copyright", 0o644),
    ] {
        let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(m.permissions().mode() & 0o7777, mode, "{path}");
    }
    let unit = std::fs::read_to_string("/lib/systemd/system/ipprotd@.service").unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/ipprotd "), "{unit}");
    // nothing enabled
    for dir in [
        "/etc/systemd/system/multi-user.target.wants",
        "/etc/systemd/system/sockets.target.wants",
    ] {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            assert!(
                !n.starts_with("ipprotd"),
                "{dir}/{n} enabled by the package"
            );
        }
    }
    let (uid, gid) = uid_gid_of("ipprot");
    assert!(uid < 1000, "ipprot is a system user: uid {uid}");
    let m = std::fs::metadata(LOG_DIR).unwrap();
    assert!(m.is_dir());
    assert_eq!(m.permissions().mode() & 0o7777, 0o750);
    assert_eq!((m.uid(), m.gid()), (uid, gid));
    let v = Command::new(INSTALLED_BIN)
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&v.stdout),
        format!("ipprotd {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn installed_daemon_relays_and_records_as_ipprot() {
    if !installed() {
        return;
    }
    let b = Backend::echo();
    let tag = format!("ci-{}", std::process::id());
    let log = Path::new(LOG_DIR).join(format!("{tag}.json"));
    let prefix = Path::new(LOG_DIR).join(&tag);
    let mut child = Command::new(INSTALLED_BIN)
        .args([
            "-p",
            "0@127.0.0.1",
            "-P",
            &b.dest(),
            "-L",
            "-z",
            "-f",
            prefix.to_str().unwrap(),
            "-c",
            log.to_str().unwrap(),
            "-C",
            "json",
            "--user",
            "ipprot",
            "--verbose",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let mut addr: Option<SocketAddr> = None;
    while addr.is_none() && err.read_line(&mut line).unwrap_or(0) > 0 {
        addr = line
            .trim()
            .strip_prefix("ipprotd: listening on ")
            .and_then(|a| a.parse().ok());
        line.clear();
    }
    let Some(addr) = addr else {
        let _ = child.kill();
        panic!("installed ipprotd did not listen");
    };
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(DEADLINE)).unwrap();
    c.write_all(b"through the package").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut back = Vec::new();
    c.read_to_end(&mut back).unwrap();
    assert_eq!(back, b"through the package");
    let entry = wait_lines(&log, 1).remove(0);
    signal(child.id() as i32, libc::SIGTERM);
    assert!(child.wait().unwrap().success());

    let e: serde_json::Value = serde_json::from_str(&entry).unwrap();
    assert_eq!(e["status"], "ok");
    let file = e["file"].as_str().unwrap().to_string();
    let (uid, _) = uid_gid_of("ipprot");
    // the child ran as ipprot: the recording is its file
    assert_eq!(std::fs::metadata(&file).unwrap().uid(), uid);
    let v = Command::new(INSTALLED_CAT)
        .args(["--verify", log.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&v.stdout), format!("OK {file}\n"));
    assert!(v.status.success());
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_file(&log);
}
